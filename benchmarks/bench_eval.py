"""Cost of evaluating checkpoints on the study's suites: this tree against another commit, side by side.

    .venv/bin/python benchmarks/bench_eval.py runs/cpu                     # against main's 8a16c9c
    .venv/bin/python benchmarks/bench_eval.py runs/cpu --before HEAD~4 --repeats 3 --checkpoints 12

The goal (issue 16): evaluating the default study (60 exports of the main grid and 16 final checkpoints of
the ablations, plus the context ablation's two extra evaluations) stays within 3 minutes on 2 cores, while
NIAH has 336 items per mode instead of 48. On a shared machine wall times mean little, so the two trees
run in turns (before, after, before, ...) as one-thread `linscale eval` processes over the same
checkpoints with warm item caches, and the benchmark prints the ratio of their CPU seconds; multiply the
study's measured evaluation time by it. The item caches are filled first (the study generates each
kind of item once per world and context length) and that cost is printed too.
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUITES = "knowledge,linguistic,retrieval"


def checkout(commit: str, where: Path) -> Path:
    """The tree of ``commit`` (git archive, no worktree) under ``where``."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", commit], check=True,
                             capture_output=True).stdout
    where.mkdir(parents=True)
    with tempfile.TemporaryFile() as fh:
        fh.write(archive)
        fh.seek(0)
        with tarfile.open(fileobj=fh) as tar:
            tar.extractall(where, filter="data")
    return where


def run_eval(tree: Path, sweep: Path, checkpoints: list[Path], store: Path, cache: Path) -> tuple[float, float]:
    """One `linscale eval` process of ``tree`` over ``checkpoints``: (wall s, CPU s of the process)."""
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TQDM_DISABLE": "1"}
    cmd = [sys.executable, "-m", "linscale", "eval", str(sweep), "--suites", SUITES, "--out", str(store),
           "--task-cache", str(cache)] + [a for c in checkpoints for a in ("--checkpoint", str(c))]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, capture_output=True, cwd=tree)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sweep", type=Path, help="a sweep folder with exported checkpoints")
    parser.add_argument("--before", default="8a16c9c", help="the commit to compare with (default: 8a16c9c)")
    parser.add_argument("--repeats", type=int, default=2, help="turns per tree (default: 2)")
    parser.add_argument("--checkpoints", type=int, default=0, help="at most this many checkpoints (0: all)")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    from linscale.eval.runner import find_checkpoints

    checkpoints = find_checkpoints(args.sweep)
    checkpoints = checkpoints[: args.checkpoints] if args.checkpoints else checkpoints
    work = Path(tempfile.mkdtemp(prefix="bench-eval-"))
    try:
        trees = {"before": checkout(args.before, work / "before"), "after": ROOT}
        print(f"{len(checkpoints)} checkpoints of {args.sweep}; {args.before} against this tree; cpus: "
              f"{os.cpu_count()}; load average: {os.getloadavg()[0]:.1f} (shared machine: compare CPU seconds)")
        caches = {name: work / f"cache-{name}" for name in trees}
        for name, tree in trees.items():  # fill the item caches: generation happens once per world
            wall, cpu = run_eval(tree, args.sweep, checkpoints[:1], work / f"warm-{name}.parquet", caches[name])
            print(f"  {name:6s} first checkpoint with item generation: {cpu:6.1f} CPU s ({wall:.0f} s wall)")
        cpu = {name: [] for name in trees}
        for turn in range(args.repeats):
            for name, tree in trees.items():
                store = work / f"{name}-{turn}.parquet"
                wall, seconds = run_eval(tree, args.sweep, checkpoints, store, caches[name])
                cpu[name].append(seconds)
                print(f"  {name:6s} turn {turn + 1}: {seconds:6.1f} CPU s ({wall:.0f} s wall), "
                      f"{seconds / len(checkpoints):.2f} CPU s per checkpoint")
        best = {name: min(v) for name, v in cpu.items()}
        print(f"after / before: {best['after'] / best['before']:.2f} (best turn of each; process start-up "
              f"included in both)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
