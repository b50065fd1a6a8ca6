"""The ``linscale`` command line: one subcommand per step of the study.

    linscale accounting --preset paper     # parameter and FLOP accounting of a preset's grid
    linscale study                         # the default CPU study, end to end
    linscale eval runs/cpu                 # lm-eval suites over a sweep's checkpoints -> results store
    linscale lm-eval --model linscale ...  # lm_eval's own command line, with the linscale model

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


def cmd_eval(args: argparse.Namespace) -> int:
    from linscale.checkpoint import CheckpointError
    from linscale.eval.adapter import ContextLengthError
    from linscale.eval.runner import evaluate_sweep

    try:
        evaluate_sweep(args.sweep_dir, [s for s in args.suites.split(",") if s], checkpoints=args.checkpoint,
                       tasks=[t for t in (args.tasks or "").split(",") if t], out=args.out,
                       task_cache=args.task_cache, limit=args.limit, batch_size=args.batch_size,
                       device=args.device, include_defaults=args.real_tasks,
                       context_factor=args.context_factor)
    except (CheckpointError, ContextLengthError) as err:
        raise ConfigError(str(err)) from None
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="linscale", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("accounting", help="non-embedding parameters and training FLOPs (paper Table 1) of a preset")
    p.add_argument("--preset", default="paper", help="preset name or YAML path (default: paper)")
    p.add_argument("--seq-len", type=int, default=None, help="context length n (default: the preset's)")
    p.add_argument("--batch-size", type=int, default=None, help="sequences per step b (default: the preset's)")
    p.set_defaults(func=cmd_accounting)

    p = sub.add_parser("study", help="run the default CPU study end to end")
    p.add_argument("--out", default="runs/study", help="output folder (default: runs/study)")
    p.set_defaults(func=cmd_study)

    p = sub.add_parser("eval", help="evaluate a sweep's exported checkpoints with lm-eval into a results store")
    p.add_argument("sweep_dir", help="sweep folder (checkpoints in runs/<run_id>/export/step=<step>/)")
    p.add_argument("--suites", default="knowledge,linguistic,retrieval",
                   help="comma-separated linscale suites: knowledge, linguistic, retrieval (default: all)")
    p.add_argument("--checkpoint", action="append", default=None,
                   help="evaluate only this export folder (repeatable; default: every checkpoint of the sweep)")
    p.add_argument("--tasks", default=None, help="extra lm-eval task names, e.g. piqa,hellaswag (needs --real-tasks)")
    p.add_argument("--real-tasks", action="store_true",
                   help="also index lm-eval's built-in tasks (piqa, hellaswag, ...; their data needs a network)")
    p.add_argument("--out", default=None, help="results store (default: <sweep>/eval/results.parquet)")
    p.add_argument("--task-cache", default=None, help="task data cache (default: <sweep>/eval/tasks)")
    p.add_argument("--limit", type=int, default=None, help="at most this many items per task (for quick looks)")
    p.add_argument("--batch-size", type=int, default=16, help="sequences per forward pass (default: 16)")
    p.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    p.add_argument("--context-factor", type=float, default=1.0,
                   help="max_length = this x the training seq_len (2 probes length extrapolation like the "
                        "paper's 16K NIAH on 8K models; use another --out)")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("lm-eval", add_help=False,
                       help="lm-eval's own command line with the linscale model registered (all arguments pass through)")
    p.add_argument("lm_eval_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_lm_eval)
    return parser


def cmd_lm_eval(args: argparse.Namespace) -> int:
    from linscale.eval.lm_eval_cli import main as lm_eval_main

    lm_eval_main(args.lm_eval_args)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["lm-eval"]:  # everything after it belongs to lm_eval's own parser
        return cmd_lm_eval(argparse.Namespace(lm_eval_args=argv[1:]))
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as err:
        print(f"linscale: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
