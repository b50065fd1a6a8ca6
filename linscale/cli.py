"""The ``linscale`` command line: one subcommand per step of the study.

    linscale accounting --preset paper     # parameter and FLOP accounting of a preset's grid
    linscale study                         # the default CPU study, end to end
    linscale data --seq-len 256 --sample 2 # the synthetic language: entropy, vocabulary, sample documents

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


def cmd_data(args: argparse.Namespace) -> int:
    import json

    import numpy as np

    from linscale.data.synthetic import LanguageSpec, SyntheticLanguage, write_eval_items

    lang = SyntheticLanguage(LanguageSpec(world_seed=args.world_seed))
    print(json.dumps(lang.summary(args.seq_len), indent=1))
    rows, nll = lang.sample_rows(np.random.default_rng(args.seed), args.sample, args.seq_len)
    for row, row_nll in zip(rows, nll):
        print("\n" + lang.decode(row))
        print(f"  (exact nll of this row: {row_nll[1:].mean():.3f} nats/token)")
    if args.write_eval:
        for path in write_eval_items(lang, args.write_eval, seed=args.seed):
            print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="linscale", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("accounting", help="non-embedding parameters and training FLOPs (paper Table 1) of a preset")
    p.add_argument("--preset", default="paper", help="preset name or YAML path (default: paper)")
    p.add_argument("--seq-len", type=int, default=None, help="context length n (default: the preset's)")
    p.add_argument("--batch-size", type=int, default=None, help="sequences per step b (default: the preset's)")
    p.set_defaults(func=cmd_accounting)

    p = sub.add_parser("data", help="describe the synthetic language (exact entropy, samples) and write eval items")
    p.add_argument("--seq-len", type=int, default=256, help="training row length (default: 256)")
    p.add_argument("--sample", type=int, default=1, help="sample rows to print (default: 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--world-seed", type=int, default=0)
    p.add_argument("--write-eval", default=None, metavar="DIR", help="write the evaluation item sets as JSONL files")
    p.set_defaults(func=cmd_data)

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


if __name__ == "__main__":
    sys.exit(main())
