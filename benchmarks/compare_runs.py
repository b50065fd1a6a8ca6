"""The same training runs, trained by an earlier commit and by this tree, side by side: time and losses.

    .venv/bin/python benchmarks/compare_runs.py --before db3351f --runs llama-s1,hgrn2-s2,tnl-s3,cosformer2-s4

Each run of ``--preset`` (``<arch>-<size>``) is trained once by each version with ``linscale train``
(one torch thread, as a sweep's workers train), the two alternating which goes first so both see the
same machine on average. The earlier commit's ``linscale`` package is taken with ``git archive`` into a
temporary folder and put first on PYTHONPATH; everything else (the virtual environment) is shared.

Reported per run and summed: the training time the results table records (``wall_time_s`` of the
final row: the training loop, evaluations and checkpoints included, start-up excluded), the CPU seconds
of the whole process (start-up included; on a shared machine steadier than wall time), their ratios
before / after, and how far the losses moved: the largest difference of train and validation loss at
any record, absolute and relative. Equal arithmetic to fp32 rounding gives equal first records and
curves that drift apart only slowly (rounding differences grow over hundreds of optimiser steps).

The cpu grid's time is dominated by its largest sizes; a subset with one run of each size (different
architectures) stands for it when the machine cannot be spared for the whole grid.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def export_commit(rev: str, dest: Path) -> Path:
    """The ``linscale`` package of commit ``rev`` under ``dest`` (``git archive``; no work tree touched)."""
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "linscale"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest


def train(version: str, source: Path | None, preset: str, run: str, out: Path, overrides: list[str]) -> dict:
    """Train ``run`` with one version; returns its timings and records."""
    arch, size = run.rsplit("-", 1)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    if source is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(source), env.get("PYTHONPATH")]))
    cmd = [sys.executable, "-m", "linscale", "train", "--preset", preset, "--arch", arch, "--size", size,
           "--out", str(out), "--threads", "1", "--no-progress", *(a for o in overrides for a in ("--set", o))]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tempfile.gettempdir(), env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{version} {run}: exit {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    records = json.loads((out / "runs" / run / "records.json").read_text())
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return dict(records=records, train_s=records[-1]["wall_time_s"], process_wall_s=wall, process_cpu_s=cpu)


def compare(before: dict, after: dict) -> dict:
    """Largest loss differences over the records both have (same steps)."""
    diffs = {}
    for column in ("train_loss", "val_loss"):
        pairs = [(a[column], b[column]) for a, b in zip(before["records"], after["records"])]
        diffs[f"max_abs_{column}"] = max(abs(a - b) for a, b in pairs)
        diffs[f"max_rel_{column}"] = max(abs(a - b) / abs(a) for a, b in pairs)
        diffs[f"first_abs_{column}"] = abs(pairs[0][0] - pairs[0][1])
    return diffs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", required=True, help="git revision of the earlier code (e.g. main's commit)")
    parser.add_argument("--runs", required=True, help="comma-separated <arch>-<size> runs of the preset")
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--set", action="append", default=[], help="preset override, as linscale train --set")
    parser.add_argument("--out", default="", help="markdown report to write ('' prints only)")
    parser.add_argument("--conditions", default="", help="free text for the report (machine load, ...)")
    args = parser.parse_args(argv)
    runs = [r.strip() for r in args.runs.split(",") if r.strip()]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        source = export_commit(args.before, tmp / "before-src")
        for i, run in enumerate(runs):
            order = ("before", "after") if i % 2 == 0 else ("after", "before")
            result = {}
            for version in order:
                result[version] = train(version, source if version == "before" else None, args.preset, run,
                                        tmp / version / run, args.set)
                print(f"{run} {version}: {result[version]['train_s']:.1f} s training, "
                      f"{result[version]['process_cpu_s']:.1f} CPU s", flush=True)
            b, a = result["before"], result["after"]
            rows.append(dict(run=run, train_s_before=b["train_s"], train_s_after=a["train_s"],
                             train_ratio=b["train_s"] / a["train_s"], cpu_s_before=b["process_cpu_s"],
                             cpu_s_after=a["process_cpu_s"], cpu_ratio=b["process_cpu_s"] / a["process_cpu_s"],
                             final_val_before=b["records"][-1]["val_loss"], final_val_after=a["records"][-1]["val_loss"],
                             **compare(b, a)))
    import pandas as pd

    table = pd.DataFrame(rows)
    sums = dict(train=table.train_s_before.sum() / table.train_s_after.sum(),
                cpu=table.cpu_s_before.sum() / table.cpu_s_after.sum())
    lines = [f"# The same runs trained before ({args.before}) and after (this tree)", "",
             "Produced by `benchmarks/compare_runs.py`; each run trained once by each version, alternating which "
             "goes first.", "",
             f"- date: {_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M UTC}",
             f"- preset: {args.preset} {' '.join(args.set)}".rstrip(),
             f"- summed training time (results table's wall_time_s) before / after: {sums['train']:.3f}",
             f"- summed process CPU seconds before / after: {sums['cpu']:.3f}"]
    if args.conditions:
        lines.append(f"- conditions: {args.conditions}")
    lines += ["", table.to_markdown(index=False, floatfmt=".4g")]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
