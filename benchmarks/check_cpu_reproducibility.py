"""Does pinning the CPU code paths make a training run bit-for-bit independent of them, and at what cost?

    .venv/bin/python benchmarks/check_cpu_reproducibility.py                 # report into benchmarks/results/
    .venv/bin/python benchmarks/check_cpu_reproducibility.py --steps 50 --speed-steps 10 --out ''   # quick look

Every setting trains the same runs in a fresh training worker (``linscale.train.worker``, what a sweep
runs) whose environment holds the setting (torch, MKL and oneDNN read these variables once, when they
load): the cpu preset's s1 of every architecture for ``--steps`` steps (bit-for-bit comparison), and
for the settings marked so its s5 for ``--speed-steps`` steps, side by side with a baseline worker
(speed, and a second bit-for-bit comparison at larger matrices). Each results table is compared with
the baseline's (nothing pinned, one thread, as the study's sweep workers run) and with the pinned
setting's, every column except the wall time. Times are the runs' own training time (``wall_time_s``,
import and start-up excluded) and the worker's CPU time, each as a ratio to the baseline's.

What one machine can show: a setting that changes the results here changes a code path that a
different CPU would also change (ATen's vector width, MKL's kernel dispatch, the thread count); a
setting under which those perturbations no longer change the results is what pins them. What it
cannot show is a run on another CPU vendor: MKL documents which of its settings hold across vendors
(see the report this writes).
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parent.parent
from linscale.train.code_paths import pinned_code_paths  # noqa: E402  (what sweeps set: ATen AVX2, MKL's AVX2 branch)

PINNED = pinned_code_paths()
PINNED_NAME = "pinned as sweeps run: " + (" ".join(f"{k}={v}" for k, v in PINNED.items()) or "nothing to pin here")
# (name, environment, torch threads per process, also trained at s5)
SETTINGS = [
    ("baseline (nothing pinned, 1 thread)", {}, 1, True),
    ("2 threads", {}, 2, False),
    ("ATEN_CPU_CAPABILITY=default", {"ATEN_CPU_CAPABILITY": "default"}, 1, False),
    ("ATEN_CPU_CAPABILITY=avx2", {"ATEN_CPU_CAPABILITY": "avx2"}, 1, False),
    ("ATEN_CPU_CAPABILITY=avx512", {"ATEN_CPU_CAPABILITY": "avx512"}, 1, False),
    ("MKL_ENABLE_INSTRUCTIONS=SSE4_2", {"MKL_ENABLE_INSTRUCTIONS": "SSE4_2"}, 1, False),
    ("MKL_CBWR=AUTO", {"MKL_CBWR": "AUTO"}, 1, False),
    ("MKL_CBWR=AVX2", {"MKL_CBWR": "AVX2"}, 1, False),
    ("MKL_CBWR=AVX2,STRICT", {"MKL_CBWR": "AVX2,STRICT"}, 1, False),
    ("MKL_CBWR=COMPATIBLE", {"MKL_CBWR": "COMPATIBLE"}, 1, True),
    ("ONEDNN_MAX_CPU_ISA=SSE41", {"ONEDNN_MAX_CPU_ISA": "SSE41"}, 1, False),
    (PINNED_NAME, PINNED, 1, True),
    ("pinned + ATEN_CPU_CAPABILITY=default", {**PINNED, "ATEN_CPU_CAPABILITY": "default"}, 1, False),
    ("pinned + MKL_CBWR=COMPATIBLE", {**PINNED, "MKL_CBWR": "COMPATIBLE"}, 1, False),
    ("pinned + 2 threads", PINNED, 2, False),
]
BASELINE = SETTINGS[0][0]
# Variables that would leak a setting from the calling shell into every run.
CLEARED = ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA",
           "NPY_DISABLE_CPU_FEATURES",
           "MKL_DYNAMIC", "OMP_DYNAMIC")


def preset(size: str, steps: int) -> dict:
    """The cpu preset cut to one size and ``steps`` steps, every architecture."""
    from linscale.presets import load_preset

    p = load_preset("cpu")
    p["name"] = f"repro-{size}"
    p.pop("context_size", None)  # the context ablation's size, which a grid of one size may not have
    tokens = steps * p["train"]["seq_len"] * p["train"]["batch_size"]
    shape = dict(p["sizes"][size])
    if "train" in shape:  # a size's own token budget would override the steps asked for
        shape["train"] = {**shape["train"], "tokens": tokens}
    p["sizes"] = {size: shape}
    p["train"].update(tokens=tokens, checkpoints=min(4, steps),
                      exports=1, warmup_steps=min(p["train"].get("warmup_steps", 0), steps // 2))
    p["data"]["val_tokens"] = 4096  # 32 held-out rows per checkpoint: the comparison needs no more
    return p


def start_setting(env_vars: dict, threads: int, preset_file: Path, out: Path) -> subprocess.Popen:
    """The preset's runs prepared under ``out`` and trained, one after another, by one training worker
    (``linscale.train.worker``, what a sweep runs) started with the setting's environment."""
    from linscale.train.run import plan_runs, prepare_run

    _, specs = plan_runs(str(preset_file))
    run_dirs = [prepare_run(out / "runs" / spec["run_id"], spec) for spec in specs]
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    env.update(env_vars, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    log = open(f"{out}.log", "w")  # a file, not a pipe: a full pipe would stall one of two concurrent runs
    proc = subprocess.Popen([sys.executable, "-m", "linscale.train.worker", "--threads", str(threads)], env=env,
                            stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, text=True)
    proc.stdin.write("".join(f"{d}\n" for d in run_dirs))
    proc.stdin.close()  # end of input: the worker exits after the last run
    return proc


def finish_setting(proc: subprocess.Popen, out: Path) -> dict:
    """Wait for a worker: the runs' results table, training seconds (the runs' own wall_time_s, start-up
    and imports excluded), the worker's CPU seconds, and an error line if a run failed."""
    from linscale.train.results import to_frame
    from linscale.train.run import read_records, read_status

    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    result = {"table": pd.DataFrame(), "train_s": float("nan"), "cpu_s": usage.ru_utime + usage.ru_stime, "error": ""}
    run_dirs = sorted((out / "runs").iterdir())
    states = {d.name: read_status(d)["state"] for d in run_dirs}
    if proc.returncode != 0 or any(state != "done" for state in states.values()):
        tail = " / ".join(Path(f"{out}.log").read_text().strip().splitlines()[-2:])
        result["error"] = f"failed (exit {proc.returncode}, runs {states}): {tail}"
        return result
    table = to_frame([record for d in run_dirs for record in read_records(d)])
    result.update(table=table, train_s=float(table.groupby("run_id")["wall_time_s"].max().sum()))
    return result


def difference(a: pd.DataFrame, b: pd.DataFrame) -> tuple[bool, str]:
    """(bit-for-bit equal, a short description of the difference) of two results tables, wall time aside."""
    from linscale.train.results import records_equal

    if a.empty or b.empty:
        return False, "–"
    if records_equal(a, b):
        return True, "identical"
    m = a.merge(b, on=["run_id", "step"], suffixes=("_a", "_b"))
    changed = (m["val_loss_a"] != m["val_loss_b"]).sum()
    last = m.sort_values("step").groupby("run_id").tail(1)
    rel = (last["val_loss_b"] / last["val_loss_a"] - 1).abs().max()
    return False, f"{changed}/{len(m)} val losses differ; final val loss up to {rel:.2e} relative"


def machine() -> dict:
    import torch

    info = {"date": datetime.date.today().isoformat(), "python": platform.python_version(), "torch": torch.__version__,
            "torch cpu capability": torch.backends.cpu.get_cpu_capability(), "cores": os.cpu_count(),
            "load average at start": f"{os.getloadavg()[0]:.1f}"}
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        fields = dict(line.split(":", 1) for line in lscpu.splitlines() if ":" in line)
        info["cpu"] = f"{fields.get('Vendor ID', '?').strip()} {fields.get('Model name', '?').strip()} " \
                      f"(family {fields.get('CPU family', '?').strip()}, model {fields.get('Model', '?').strip()})"
        flags = fields.get("Flags", "").split()
        info["vector extensions"] = ", ".join(f for f in ("avx", "avx2", "fma", "avx512f") if f in flags)
    except OSError:
        info["cpu"] = platform.processor()
    blas = [line.strip() for line in torch.__config__.show().splitlines() if "Math Kernel" in line or "MKL-DNN" in line]
    info["libraries"] = "; ".join(blas)
    return info


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=100, help="steps of the s1 runs (bit-for-bit check)")
    parser.add_argument("--speed-steps", type=int, default=10, help="steps of the s5 runs (speed, and a second "
                        "check, for the settings marked so)")
    parser.add_argument("--rounds", type=int, default=1, help="side-by-side s5 pairs per setting (the start "
                        "order alternates)")
    parser.add_argument("--only", default=None, help="comma-separated indices of SETTINGS to run (0 is the baseline)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="report folder; '' to only print")
    args = parser.parse_args()
    chosen = [SETTINGS[i] for i in sorted({0, *map(int, args.only.split(","))})] if args.only else SETTINGS
    work = Path(tempfile.mkdtemp(prefix="linscale-repro-"))
    info = machine()
    rows, tables = {}, {}
    try:
        presets = {}
        for size, steps in (("s1", args.steps), ("s5", args.speed_steps)):
            presets[size] = work / f"repro-{size}.yaml"  # a preset file is named as its name: says
            presets[size].write_text(yaml.safe_dump(preset(size, steps)))
        # 1. every setting at s1, two at a time: the bit-for-bit comparison
        for first in range(0, len(chosen), 2):
            batch = list(enumerate(chosen))[first:first + 2]
            started = [(name, work / f"{i}-s1", start_setting(env_vars, threads, presets["s1"], work / f"{i}-s1"))
                       for i, (name, env_vars, threads, _) in batch]
            for name, out, proc in started:
                result = finish_setting(proc, out)
                tables[(name, "s1")] = result["table"]
                rows[name] = {"setting": name, "s1 cpu s": result["cpu_s"], "error": result["error"]}
                print(f"{name}: s1 {result['cpu_s']:.1f} CPU s {result['error']}", flush=True)
        # 2. at s5, each marked setting side by side with the baseline (two processes at once, so that both
        # see the same machine): the speed ratio, and a second comparison
        for i, (name, env_vars, threads, at_s5) in enumerate(chosen):
            if not at_s5 or name == BASELINE:
                continue
            ratios, cpu_ratios = [], []
            for order in range(args.rounds):
                pair = [(BASELINE, {}, 1), (name, env_vars, threads)][::1 if order == 0 else -1]
                procs = [(n, work / f"{i}-s5-{order}-{j}") for j, (n, _, _) in enumerate(pair)]
                started = [start_setting(e, t, presets["s5"], out) for (_, e, t), (_, out) in zip(pair, procs)]
                results = {n: finish_setting(proc, out) for proc, (n, out) in zip(started, procs)}
                for n, result in results.items():
                    tables.setdefault((n, "s5"), result["table"])
                    if result["error"]:
                        rows[name]["error"] = result["error"]
                ratios.append(results[name]["train_s"] / results[BASELINE]["train_s"])
                cpu_ratios.append(results[name]["cpu_s"] / results[BASELINE]["cpu_s"])
            rows[name].update({"s5 time ratio": float(np.mean(ratios)), "s5 cpu ratio": float(np.mean(cpu_ratios)),
                               "s5 ratios": ", ".join(f"{r:.2f}" for r in ratios)})
            print(f"{name}: s5 training time {rows[name]['s5 ratios']} x the baseline's", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report = pd.DataFrame(list(rows.values()))
    base_cpu = rows[BASELINE]["s1 cpu s"]
    report["s1 cpu ratio"] = report["s1 cpu s"] / base_cpu
    empty = pd.DataFrame()
    for size in ("s1", "s5"):
        for reference, column in ((BASELINE, "baseline"), (PINNED_NAME, "pinned")):
            if (reference, size) in tables:
                report[f"{size} vs {column}"] = [difference(tables[(reference, size)], tables.get((n, size), empty))[1]
                                                 for n in report["setting"]]
    text = render(report, info, args)
    print(text)
    if args.out:
        cpu = "amd" if "AMD" in info.get("cpu", "") else "intel" if "Intel" in info.get("cpu", "") else "cpu"
        path = Path(args.out) / f"{info['date']}-cpu-reproducibility-{cpu}-{os.cpu_count()}c.md"
        path.write_text(text + "\n")
        print(f"wrote {path}")
    return 0


def render(report: pd.DataFrame, info: dict, args) -> str:
    def cell(value, fmt="{}"):
        return "–" if value is None or (isinstance(value, float) and np.isnan(value)) else fmt.format(value)

    lines = ["# Numerical reproducibility of one training run across CPU code paths", "",
             f"`{' '.join(['benchmarks/check_cpu_reproducibility.py', *sys.argv[1:]])}`: the cpu preset's s1 "
             f"(every architecture, {args.steps} steps) under each setting, in a fresh training worker "
             f"(`linscale.train.worker`, as a sweep runs) per setting, two at a time; results tables compared bit "
             f"for bit (every column but the wall time). For the settings with a speed figure, the s5 runs "
             f"({args.speed_steps} steps, every architecture) side by side with a baseline worker (two processes "
             f"at once, {args.rounds} round(s), start order alternating).", ""]
    lines += [f"- {k}: {v}" for k, v in info.items()]
    lines += ["", "| setting | s1 vs baseline | s1 vs pinned | s5 vs baseline | s5 vs pinned | s1 CPU time | "
              "s5 training time | s5 CPU time |", "|---|---|---|---|---|---|---|---|"]
    for r in report.to_dict("records"):
        cells = [r["setting"], *(cell(r.get(f"{size} vs {ref}")) for size in ("s1", "s5") for ref in ("baseline", "pinned")),
                 cell(r.get("s1 cpu ratio"), "{:.2f}x"),
                 cell(r.get("s5 time ratio"), "{:.2f}x") + (f" ({r['s5 ratios']})" if isinstance(r.get("s5 ratios"), str) else ""),
                 cell(r.get("s5 cpu ratio"), "{:.2f}x")]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Times are ratios to the baseline. s1 CPU time: the whole worker (start-up and imports "
              "included, which dominate so short a run). s5: the runs' own training time (`wall_time_s`) and the "
              "workers' CPU time, each setting running at the same time as a baseline worker."]
    errors = [f"- {r['setting']}: {r['error']}" for r in report.to_dict("records") if r.get("error")]
    if errors:
        lines += ["", "Errors:", "", *errors]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
