"""Timing of the approach-3 fit with its bootstrap: a 300-run table, 1000 resamples over runs.

    .venv/bin/python -m benchmarks.bench_laws            # or: .venv/bin/python benchmarks/bench_laws.py
    .venv/bin/python benchmarks/bench_laws.py --rows-per-run 10 --resamples 200

The goal (issue 6) is under 2 minutes on 2 cores. The table is drawn from L(N, D) = E + A/N^α + B/D^β
(Besiroglu et al.'s estimates) with 1% log-normal noise, sizes 5e7–1.6e10, 1–100 tokens per parameter
(a random tenfold slice of it per run when runs have several checkpoints).
Side by side it times a few cold bootstrap refits (the full screened multi-start per resample) against
the warm-started ones the bootstrap uses, and prints the ratio.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas as pd

from linscale.laws import approach3, bootstrap, fit_approach3, simulate_runs

LAW = dict(E=1.82, A=482.01, B=2085.43, alpha=0.3478, beta=0.3658)


def table(n_runs: int, rows_per_run: int, seed: int) -> pd.DataFrame:
    """Runs of random size; each run's checkpoints span a random tenfold slice of 1–100 tokens/param."""
    rng = np.random.default_rng(seed)
    parts = []
    for i in range(n_runs):
        n = float(np.exp(rng.uniform(np.log(5e7), np.log(1.6e10))))
        lo = rng.uniform(0.0, 1.0)  # log10 tokens per parameter at the first checkpoint
        hi = lo + 1.0 if rows_per_run > 1 else lo
        run = simulate_runs(**LAW, sizes=(n,), n_checkpoints=rows_per_run, tokens_per_param=(10**lo, 10**hi),
                            noise=0.01, seed=seed * 100_000 + i)
        parts.append(run.assign(run_id=f"run{i}"))
    return pd.concat(parts, ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--rows-per-run", type=int, default=1)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    runs = table(args.runs, args.rows_per_run, args.seed)
    print(f"table: {args.runs} runs x {args.rows_per_run} rows; cpus: {os.cpu_count()}; "
          f"load average: {os.getloadavg()[0]:.1f} (shared machine: timings vary)")

    t0 = time.perf_counter()
    result = bootstrap(runs, "approach3", n_resamples=args.resamples, seed=args.seed)
    total = time.perf_counter() - t0
    t0 = time.perf_counter()
    full = fit_approach3(runs)
    t_full = time.perf_counter() - t0
    warm_each = (total - t_full) / args.resamples

    # Cold refits: what each resample would cost without warm starts (screened grid of 256 starts).
    frame = runs.assign(run_id=runs["run_id"].astype(str))
    log_n, log_d, log_loss = (np.log(frame[c].to_numpy()) for c in ("params", "tokens", "loss"))
    rng = np.random.default_rng(1)
    n_cold, t0 = 3, time.perf_counter()
    for _ in range(n_cold):
        w = rng.multinomial(len(frame), np.full(len(frame), 1 / len(frame))).astype(float)
        starts = approach3.screen(approach3.start_grid(), approach3.N_REFINE, log_n, log_d, log_loss, w)
        approach3.minimise(starts, log_n, log_d, log_loss, w)
    cold_each = (time.perf_counter() - t0) / n_cold

    print(f"full fit (4500-start grid screened to {approach3.N_REFINE} L-BFGS runs): {t_full:.1f} s")
    print(f"fit + {args.resamples} bootstrap resamples: {total:.1f} s  (goal: < 120 s)")
    print(f"per resample: warm {1e3 * warm_each:.1f} ms vs cold {1e3 * cold_each:.0f} ms "
          f"-> warm starts {cold_each / warm_each:.0f}x faster")
    print(result.params[["parameter", "estimate", "ci_low", "ci_high"]].to_string(index=False))
    assert full.diagnostics["best_converged"].all()


if __name__ == "__main__":
    main()
