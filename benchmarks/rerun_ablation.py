"""Train one ablation of a committed study whose main sweep's run folders are gone, and add its tables.

A study's ablation table holds the main sweep's runs it compares with (read from the study's own
``runs.parquet``) beside the ablation's runs; `linscale study` trains both. When an ablation is added to
the study after a re-run was committed (size_seeds, 2026-12-02, after results/reruns/2026-12-01-seed1/),
this trains the new ablation alone, with the re-run's settings, writes its table into the re-run's
results folder and evaluates its final checkpoints where the study does (``ABLATION_SUITES``, beside the
study's own scores of the runs they are compared with), so that its verdicts are judged by the same rules
as the published study's. Finished runs are skipped, so a second call only rewrites the tables:

    .venv/bin/python benchmarks/rerun_ablation.py results/reruns/2026-12-01-seed1/cpu size_seeds \\
        --preset cpu --set train.seed=1 --runs-dir runs/rerun-seed1

The runs are trained exactly as `linscale study` would (the same worker pool, the same pins), so a
run already in the published study's ablations with the same seed gives the same bits.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from linscale.train.code_paths import pin_numerics

    pin_numerics()  # before numpy and torch, as every linscale command
    import pandas as pd

    from linscale.config import ConfigError
    from linscale.study import (ABLATION_SUITES, ABLATIONS, EVAL_THREADS, _eval_ablations, _resolved, _write_table, ablation_presets,
                                ablation_table)
    from linscale.train.sweep import WorkerPool, default_jobs, default_threads, run_sweeps

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results", type=Path, help="the study's results folder (holding runs.parquet), e.g. results/cpu")
    p.add_argument("ablation", choices=ABLATIONS)
    p.add_argument("--preset", default="cpu")
    p.add_argument("--set", action="append", default=[], dest="overrides", help="the study's --set overrides")
    p.add_argument("--runs-dir", type=Path, default=Path("runs"))
    p.add_argument("--jobs", type=int, default=None)
    args = p.parse_args(argv)
    runs_table = args.results / "runs.parquet"
    if not runs_table.is_file():
        raise ConfigError(f"{args.results}: no runs.parquet (expected a study's results folder, e.g. results/cpu)")
    main_runs = pd.read_parquet(runs_table)
    resolved = _resolved(args.preset, tuple(args.overrides))
    base_size, ablations = ablation_presets(resolved)
    items = ablations[args.ablation]
    if not items:
        print(f"{args.ablation}: nothing to train for this grid")
        return 0
    jobs = args.jobs or default_jobs()
    with WorkerPool(jobs, default_threads(jobs)) as pool:
        swept = run_sweeps([(variant, args.runs_dir / variant["name"]) for variant in items], jobs=jobs, pool=pool)
    failed = [run for result in swept for run in result.failed]
    if failed:
        print(f"runs failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    table = ablation_table(main_runs, base_size, args.ablation, items, [pd.read_parquet(r.table) for r in swept])
    _write_table(table, args.results / "ablations" / f"{args.ablation}.parquet")
    if args.ablation in ABLATION_SUITES:
        import torch

        torch.set_num_threads(EVAL_THREADS)  # as the study evaluates
        _eval_ablations(resolved, args.runs_dir, args.results, None, ablations=(args.ablation,))
    return 0


if __name__ == "__main__":
    from linscale.config import ConfigError

    try:
        sys.exit(main())
    except ConfigError as error:  # bad input: one line naming the field or file, as linscale's commands
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
