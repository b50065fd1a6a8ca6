"""The ``linscale`` command line: one subcommand per step of the study.

    linscale accounting --preset paper     # parameter and FLOP accounting of a preset's grid
    linscale train --preset cpu --arch tnl --size s3   # one training run
    linscale sweep --preset cpu --jobs 2   # every run of a preset, into one results table
    linscale study                         # the default CPU study, end to end

Each subcommand is a small function here that parses its options and calls the package; the science
lives in the package, not in this file.
"""
from __future__ import annotations

import argparse
import sys

from linscale.config import ConfigError


def cmd_accounting(args: argparse.Namespace) -> int:
    from linscale.accounting import accounting_table

    table = accounting_table(args.preset, seq_len=args.seq_len, batch_size=args.batch_size)
    print(table.to_string(index=False))
    return 0


def cmd_study(args: argparse.Namespace) -> int:
    from linscale.study import run_study

    run_study(args)
    return 0


def _execution(args: argparse.Namespace) -> dict:
    return {"accelerator": args.accelerator, "devices": args.devices, "num_nodes": args.num_nodes,
            "strategy": args.strategy, "num_workers": args.num_workers}


def cmd_train(args: argparse.Namespace) -> int:
    from pathlib import Path

    from linscale.train.run import plan_runs, prepare_run, train_run
    from linscale.train.sweep import check_writable

    execution = {**_execution(args), "threads": args.threads}
    if args.run_dir:
        if args.preset or args.arch or args.size or args.set:
            raise ConfigError("--run-dir: give either --run-dir or --preset/--arch/--size/--set, not both")
        state = train_run(args.run_dir, progress_bar=args.progress, **execution)
        print(f"{args.run_dir}: {state}")
        return 0
    if not (args.preset and args.arch and args.size):
        raise ConfigError("train: give --preset, --arch and --size (or --run-dir of a prepared run)")
    preset, specs = plan_runs(args.preset, [*args.set, f"archs=[{args.arch}]"])
    specs = [s for s in specs if s["size"] == args.size]
    if not specs:
        raise ConfigError(f"--size: {args.size!r} is not a size of preset {args.preset}; "
                          f"expected one of {', '.join(preset['sizes'])}")
    out = Path(args.out or Path("runs") / (preset.get("name") or "train"))
    check_writable(out)
    run_dir = prepare_run(out / "runs" / specs[0]["run_id"], specs[0])
    state = train_run(run_dir, progress_bar=args.progress, **execution)
    from lightning.pytorch.utilities import rank_zero_only

    if rank_zero_only.rank == 0:
        from linscale.train.results import upsert_runs
        from linscale.train.run import read_records

        upsert_runs(out / "results.parquet", {specs[0]["run_id"]: read_records(run_dir)})
        print(f"{run_dir}: {state}; rows in {out / 'results.parquet'}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from linscale.train.sweep import SweepLockedError, run_sweep

    if args.dry_run:
        from linscale.train.run import plan_runs
        from linscale.train.settings import TrainSettings

        preset, specs = plan_runs(args.preset, args.set)
        settings = TrainSettings.from_dict(preset.get("train") or {})
        print(f"{len(specs)} runs, {settings.total_steps} steps of {settings.tokens_per_step} tokens each; "
              f"records at steps {settings.checkpoint_steps()}; exports at {settings.export_steps()}")
        for spec in specs:
            print(f"  {spec['run_id']}: {spec['model']}")
        return 0
    try:
        result = run_sweep(args.preset, out=args.out, jobs=args.jobs, overrides=args.set, threads=args.threads,
                           executor=args.executor, execution=_execution(args))
    except SweepLockedError as err:
        print(f"linscale: error: {err}", file=sys.stderr)
        return 3
    return 1 if result.failed else 0


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a preset field by its dotted path, e.g. --set train.lr=1e-3 "
                        "--set sizes.s1.d_model=64 --set archs=[tnl,llama]; repeatable; unknown keys are errors")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads per training process (default: torch's own for train; cores/jobs for sweep)")
    g = p.add_argument_group("scaling out (Lightning; default: the preset's train.* values)")
    g.add_argument("--accelerator", default=None, choices=["auto", "cpu", "gpu", "cuda"],
                   help="device type (auto: GPU when there is one; bf16-mixed on GPU, fp32 on CPU)")
    g.add_argument("--devices", type=int, default=None,
                   help="devices per node for one run; > 1 trains data-parallel (DDP: gloo on CPU, NCCL on GPU)")
    g.add_argument("--num-nodes", type=int, default=None,
                   help="nodes for one run (launch with srun or torchrun; Lightning reads the cluster environment)")
    g.add_argument("--strategy", default=None, choices=["auto", "ddp", "fsdp", "ddp_spawn", "single_device"],
                   help="Lightning strategy: ddp, or fsdp (GPU only; shards parameters, gradients and optimizer state)")
    g.add_argument("--num-workers", type=int, default=None, help="DataLoader worker processes per training process")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="linscale", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("accounting", help="non-embedding parameters and training FLOPs (paper Table 1) of a preset")
    p.add_argument("--preset", default="paper", help="preset name or YAML path (default: paper)")
    p.add_argument("--seq-len", type=int, default=None, help="context length n (default: the preset's)")
    p.add_argument("--batch-size", type=int, default=None, help="sequences per step b (default: the preset's)")
    p.set_defaults(func=cmd_accounting)

    p = sub.add_parser(
        "train", help="train one run (one architecture at one size of a preset)",
        description="Train one run of a preset into OUT/runs/<arch>-<size>/ and add its checkpoint rows to "
                    "OUT/results.parquet. Re-running resumes from the run's last Lightning checkpoint; a "
                    "finished run is not trained again.")
    p.add_argument("--preset", default=None, help="preset name (smoke, cpu, paper) or path to a YAML file")
    p.add_argument("--arch", default=None, help="architecture: llama, tnl, hgrn2 or cosformer2")
    p.add_argument("--size", default=None, help="a size name of the preset (e.g. s3, or 1B for paper)")
    p.add_argument("--out", default=None, help="output folder (default: runs/<preset name>)")
    p.add_argument("--run-dir", default=None,
                   help="train (or resume) an already prepared run folder instead (used by sweeps)")
    p.add_argument("--progress", dest="progress", action="store_true", default=True,
                   help="show Lightning's progress bar (default)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar (logs, CI)")
    _add_run_options(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "sweep", help="train every run of a preset into one results table (resumable)",
        description="Train every (architecture, size) of a preset into OUT/runs/ and keep OUT/results.parquet "
                    "(one row per run and intermediate checkpoint; schema in linscale.train.results) up to date. "
                    "Re-running skips finished runs and resumes interrupted ones; a second sweep on the same OUT "
                    "stops with an error while the first holds the lock.")
    p.add_argument("--preset", required=True, help="preset name (smoke, cpu, paper) or path to a YAML file")
    p.add_argument("--out", default=None, help="output folder (default: runs/<preset name>)")
    p.add_argument("--jobs", type=int, default=None,
                   help="runs trained at the same time, each in its own process (default: one per CPU core, "
                        "each with 1 thread; 1 on a GPU machine or with --executor slurm)")
    p.add_argument("--executor", default="local", choices=["local", "submitit-local", "slurm"],
                   help="where runs execute: local processes (default), or submitit jobs (SLURM settings from the "
                        "preset's cluster: block, e.g. --set cluster.slurm_partition=gpu)")
    p.add_argument("--dry-run", action="store_true", help="print the runs and the checkpoint schedule, train nothing")
    _add_run_options(p)
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("study", help="run the default CPU study end to end")
    p.add_argument("--out", default="runs/study", help="output folder (default: runs/study)")
    p.set_defaults(func=cmd_study)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as err:
        print(f"linscale: error: {err}", file=sys.stderr)
        return 2
    except _user_errors() as err:
        print(f"linscale: error: {err}", file=sys.stderr)
        return 2


def _user_errors() -> tuple:
    """Errors that are the input's fault: one line, no traceback."""
    from linscale.checkpoint import CheckpointError
    from linscale.train.results import ResultsError

    return (CheckpointError, ResultsError)


if __name__ == "__main__":
    sys.exit(main())
