"""A training process that trains many runs, one after another: what a sweep keeps per job slot.

    python -m linscale.train.worker [--threads N] [--accelerator cpu] ...

reads prepared run folders (``linscale.train.run.prepare_run``) from stdin, one per line, trains each
with ``train_run`` and answers one line per run on stdout, ``<exit code><TAB><run folder>`` (0 done or
diverged, 1 failed, 2 bad input, as ``linscale train`` exits). While a run trains, everything printed
goes to that run's ``train.log``. End of input ends the process; so does the sweep's end (``--parent``,
:mod:`linscale.processes`: a sweep killed outright left its workers training), its run stopping at the
next step with a checkpoint. One process trains a run at a time (the run folder's ``train.lock``).

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
    parser.add_argument("--parent", type=int, help="the sweep's process: this one stops when it dies")
    parser.add_argument("--threads", type=int, help="torch threads for every run")
    parser.add_argument("--accelerator")
    parser.add_argument("--strategy")
    parser.add_argument("--num-workers", type=int)
    return parser.parse_args(argv)


# How long a worker waits for another process to let go of a run (a worker of a sweep killed outright,
# stopping at its next step with a checkpoint) before it gives the run up as failed
RUN_LOCK_WAIT_S = 120


def serve(lines, answer, execution: dict, lock_wait_s: float = RUN_LOCK_WAIT_S) -> None:
    """Train the run folder named by each line of ``lines``; ``answer(code, run_dir)`` after each. A run is
    trained under its folder's ``train.lock`` (``train_run`` takes it): one process trains it at a time (one
    that holds it for ``lock_wait_s`` more: the run fails, code 2)."""
    from linscale.config import ConfigError
    from linscale.train.run import RunLockedError, train_run

    # the worker's own stderr (the sweep's console): where output goes between runs, and the error of a run
    # whose log cannot be opened; left on the last run's log, it would get the next run's error
    console = os.dup(2)
    for line in lines:
        run_dir = line.strip()
        if not run_dir:
            continue
        try:
            log = open(Path(run_dir) / "train.log", "ab")
        except OSError as err:  # the run folder deleted mid-sweep, or not writable: that run fails, the rest go on
            print(f"linscale: error: {run_dir}: cannot write its train.log ({err.strerror})", file=sys.stderr)
            answer(2, run_dir)
            continue
        with log:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(log.fileno(), 1)  # the run's output (Lightning's, warnings, tracebacks) into its log
            os.dup2(log.fileno(), 2)
            try:
                # the lock is train_run's (every way of training a run takes it there), not a FileLock of
                # the worker's own: filelock is re-entrant per lock object only, so a second one in this
                # process would find the run held by the first
                print(f"{run_dir}: {train_run(run_dir, lock_wait_s=lock_wait_s, **execution)}")
                code = 0
            except (RunLockedError, ConfigError) as err:
                print(f"linscale: error: {err}", file=sys.stderr)
                code = 2
            except Exception:  # the run's status.json says "failed" (train_run wrote it); go on
                traceback.print_exc()
                code = 1
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(console, 1)
            os.dup2(console, 2)
        answer(code, run_dir)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.parent:  # a sweep killed outright: this worker stops its run at the next step, with a checkpoint
        from linscale.processes import end_with_parent

        end_with_parent(args.parent)
    protocol = os.fdopen(os.dup(1), "w", buffering=1)  # stdout itself is lent to each run's log

    def answer(code: int, run_dir: str) -> None:
        try:
            protocol.write(f"{code}\t{run_dir}\n")
        except BrokenPipeError:  # the sweep is gone (its run is saved): end quietly, not with a traceback
            os._exit(code or 143)

    execution = {"threads": args.threads, "accelerator": args.accelerator, "strategy": args.strategy,
                 "num_workers": args.num_workers}
    try:
        serve(sys.stdin, answer, {k: v for k, v in execution.items() if v is not None})
    except KeyboardInterrupt:  # Ctrl-C while importing or between runs (a run's own is its RunInterrupted):
        return 130  # the sweep says it was interrupted; a traceback here only reached its output
    return 0


if __name__ == "__main__":
    sys.exit(main())
