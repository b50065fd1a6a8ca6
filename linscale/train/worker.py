"""A training process that trains many runs, one after another: what a sweep keeps per job slot.

    python -m linscale.train.worker [--threads N] [--accelerator cpu] ...

reads prepared run folders (``linscale.train.run.prepare_run``) from stdin, one per line, trains each
with ``train_run`` and answers one line per run on stdout, ``<exit code><TAB><run folder>`` (0 done or
diverged, 1 failed, 2 bad input, as ``linscale train`` exits). While a run trains, everything printed
goes to that run's ``train.log``. End of input ends the process.

Why: importing torch and Lightning takes about 6 s on a 2-core CPU, longer than training a smoke-sized
model; a process per run spent most of the smoke study importing. Each run still starts from its own
seed (``train_run`` seeds everything), so its results do not depend on what the process ran before.
A run that needs launcher-spawned processes (DDP on several devices) keeps a process of its own.
"""
from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m linscale.train.worker", description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, help="torch threads for every run")
    parser.add_argument("--accelerator")
    parser.add_argument("--strategy")
    parser.add_argument("--num-workers", type=int)
    return parser.parse_args(argv)


def serve(lines, answer, execution: dict) -> None:
    """Train the run folder named by each line of ``lines``; ``answer(code, run_dir)`` after each."""
    from linscale.config import ConfigError
    from linscale.train.run import train_run

    for line in lines:
        run_dir = line.strip()
        if not run_dir:
            continue
        with open(Path(run_dir) / "train.log", "ab") as log:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(log.fileno(), 1)  # the run's output (Lightning's, warnings, tracebacks) into its log
            os.dup2(log.fileno(), 2)
            try:
                print(f"{run_dir}: {train_run(run_dir, **execution)}")
                code = 0
            except ConfigError as err:
                print(f"linscale: error: {err}", file=sys.stderr)
                code = 2
            except Exception:  # the run's status.json says "failed" (train_run wrote it); go on
                traceback.print_exc()
                code = 1
            sys.stdout.flush()
            sys.stderr.flush()
        answer(code, run_dir)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    protocol = os.fdopen(os.dup(1), "w", buffering=1)  # stdout itself is lent to each run's log

    def answer(code: int, run_dir: str) -> None:
        protocol.write(f"{code}\t{run_dir}\n")

    execution = {"threads": args.threads, "accelerator": args.accelerator, "strategy": args.strategy,
                 "num_workers": args.num_workers}
    serve(sys.stdin, answer, {k: v for k, v in execution.items() if v is not None})
    return 0


if __name__ == "__main__":
    sys.exit(main())
