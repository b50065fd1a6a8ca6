"""Why LLaMA's final loss at s6 falls in two groups across seeds: the timing of one skill.

    python benchmarks/probe_llama_s6_modes.py --runs RUNS_DIR [RUNS_DIR ...]    # about 15 minutes on 2 cores
    python benchmarks/probe_llama_s6_modes.py --runs runs /elsewhere/rerun/runs \
        --results benchmarks/results/X.md --tables results/probes/NAME

Across the committed studies (the main sweeps and the size_seeds ablations of results/cpu and
results/reruns/*/cpu), LLaMA's s6 runs end in two groups: some seeds near 1.47 nats, others near 1.50,
while every linear model's seeds spread evenly. This script

1. lists every s6 run's final validation loss in those tables, by architecture and seed;
2. splits the final checkpoint of every s6 run it finds under ``--runs`` (folders holding
   ``<sweep>/runs/<arch>-s6/export/step=*``; run folders are not committed, so this part reads what the
   machine kept) into excess loss by token role (``linscale.eval.roles``): which skill the groups differ in;
3. trains the runs of ``--train`` (``arch:seed``; default LLaMA seeds 0 and 6, one of each group) with
   ``--factor`` times the preset's s6 tokens, everything else as the study trains them (same data
   stream, warmup, constant LR, pinned CPU code paths), with checkpoints that include the study's final
   step: does a run of the upper group learn the skill later, or never? Its validation loss at the
   study's final step must equal the study's run bit for bit (checked; the longer budget changes nothing
   before it).

Runs land in ``--out`` (resumable: a finished run is not trained again); the tables go to the
``--results`` Markdown file with the machine and date, and as CSV files to ``--tables`` (the book's
downstream chapter reads them).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd

from linscale.bench import format_table, machine_info
from linscale.probes import run_cli, write_probe_outputs
from linscale.eval.roles import checkpoint_roles
from linscale.findings.downstream import committed_finals
from linscale.presets import load_preset
from linscale.train.settings import checkpoint_steps

SIZE = "s6"
ROLES_SHOWN = ("query_variable", "query_value", "fact_object")
# 10 checkpoints log-spaced from an eighth of the run: with a factor of 2 they include its half, the
# study's final step (2^(-3 + k/3) for k = 0..9 holds 2^-1); checked in main().
CHECKPOINTS, CHECKPOINT_START = 10, 0.125


def role_row(checkpoint: Path, source: str) -> dict:
    table = checkpoint_roles(checkpoint).set_index("role")
    first = table.iloc[0]
    return {"source": source, "arch": first["arch"], "seed": int(first["seed"]), "step": int(first["step"]),
            "tokens": float(first["tokens"]), "val_loss": float(first["val_loss"]),
            **{role: float(table.loc[role, "excess"]) for role in ROLES_SHOWN}}


def kept_finals(runs_dirs: list[Path]) -> pd.DataFrame:
    """Role excess at the final export of every s6 run of the main sweep (cpu) and the size_seeds
    ablation (cpu-ends-seed*) under the given run folders (not the context ablation's, trained on
    other contexts)."""
    rows = []
    for runs_dir in runs_dirs:
        runs = [*runs_dir.glob(f"cpu/runs/*-{SIZE}"), *runs_dir.glob(f"cpu-ends-seed*/runs/*-{SIZE}")]
        for run in sorted(runs):
            exports = sorted(run.glob("export/step=*"), key=lambda p: int(p.name.split("=")[1]))
            if exports:
                rows.append(role_row(exports[-1], f"{runs_dir}/{run.parent.parent.name}"))
    return pd.DataFrame(rows)


def train_longer(out: Path, arch: str, seed: int, tokens: int) -> Path:
    folder = out / f"{arch}-seed{seed}"
    run_cli("train", "--preset", "cpu", "--arch", arch, "--size", SIZE, "--out", str(folder), "--threads", "1",
             "--no-progress", "--set", f"train.seed={seed}", "--set", f"sizes.{SIZE}.train.tokens={tokens}",
             "--set", f"train.checkpoints={CHECKPOINTS}", "--set", f"train.checkpoint_start={CHECKPOINT_START}")
    return folder / "runs" / f"{arch}-{SIZE}"


def longer_runs(run_dirs: dict[tuple[str, int], Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(validation curve of each longer run, role excess at each of its exports)."""
    curves, roles = [], []
    for (arch, seed), run in run_dirs.items():
        # json, not pd.read_json: its float parser drops the last bits, and the check below is bit for bit
        records = pd.DataFrame(json.loads((run / "records.json").read_text()))
        curves.append(records[["arch", "seed", "step", "tokens", "val_loss"]])
        for export in sorted(run.glob("export/step=*"), key=lambda p: int(p.name.split("=")[1])):
            roles.append(role_row(export, "longer run"))
    return pd.concat(curves, ignore_index=True), pd.DataFrame(roles)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", nargs="*", default=["runs"], help="run folders holding <sweep>/runs/<arch>-s6")
    parser.add_argument("--train", nargs="*", default=["llama:0", "llama:6"], help="arch:seed runs to train longer")
    parser.add_argument("--factor", type=int, default=2, help="times the preset's s6 tokens")
    parser.add_argument("--out", default="runs/probe-s6-modes", help="folder of the longer runs (resumable)")
    parser.add_argument("--jobs", type=int, default=2, help="runs trained side by side (one thread each)")
    parser.add_argument("--results", default=None, help="Markdown file for the tables (default: print them)")
    parser.add_argument("--tables", default=None, help="folder for the CSV tables")
    args = parser.parse_args()

    preset = load_preset("cpu")
    base_tokens = float(preset["sizes"][SIZE]["train"]["tokens"])
    per_step = int(preset["train"]["seq_len"]) * int(preset["train"]["batch_size"])
    base_steps = int(base_tokens // per_step)
    tokens = args.factor * base_steps * per_step
    if base_steps not in checkpoint_steps(args.factor * base_steps, CHECKPOINTS, CHECKPOINT_START):
        raise SystemExit(f"--factor {args.factor}: the longer runs' checkpoints would miss the study's final step "
                         f"{base_steps}; use 2")
    wanted = []
    for item in args.train:
        arch, _, seed = item.partition(":")
        if not seed.isdigit():
            raise SystemExit(f"--train: expected arch:seed (e.g. llama:6), got {item!r}")
        wanted.append((arch, int(seed)))
    out = Path(args.out)
    with ThreadPoolExecutor(args.jobs) as pool:
        run_dirs = dict(zip(wanted, pool.map(lambda w: train_longer(out, w[0], w[1], tokens), wanted)))

    finals = committed_finals(Path("results"), SIZE)
    kept = kept_finals([Path(r) for r in args.runs])
    curves, longer = longer_runs(run_dirs)
    # the longer budget changes nothing before the study's final step: same loss there, bit for bit, as
    # the first committed run of that seed (the published study first, then the re-runs by date)
    at_base = curves[curves["step"] == base_steps].merge(
        finals.drop_duplicates(["arch", "seed"]).drop(columns="step"), on=["arch", "seed"], how="left",
        suffixes=("", "_study"))
    at_base["equal"] = at_base["val_loss"] == at_base["val_loss_study"]

    info = machine_info()
    lines = ["# Why LLaMA's s6 loss falls in two groups (cpu preset): the timing of one skill", "",
             f"Produced by `python benchmarks/probe_llama_s6_modes.py {' '.join(sys.argv[1:])}`.", "",
             f"- date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC",
             *(f"- {k}: {v}" for k, v in info.items() if k in ("host", "cpu", "cores", "python", "torch", "linscale")),
             "", "## Final validation loss of every s6 run in the committed tables", "",
             format_table(finals.pivot_table(index=["arch", "seed"], values="val_loss", aggfunc=["min", "max", "count"])
                          .round(4).reset_index().set_axis(["arch", "seed", "min", "max", "runs"], axis=1)),
             "", "## Excess loss by role at the final checkpoint of the s6 runs kept on this machine", "",
             "Nats per token of the role above the language's exact loss (linscale.eval.roles).", "",
             format_table(kept.round(4)) if len(kept) else "(no run folders given)",
             "", f"## Trained {args.factor}x longer: validation loss", "",
             format_table(curves.assign(run=curves["arch"] + " seed " + curves["seed"].astype(str))
                          .pivot_table(index="step", columns="run", values="val_loss").round(4).reset_index()
                          .rename_axis(columns=None)),
             "", f"At the study's final step ({base_steps}), against the committed run of the same seed:", "",
             format_table(at_base[["arch", "seed", "step", "val_loss", "study", "val_loss_study", "equal"]]),
             "", f"## Trained {args.factor}x longer: excess loss by role at each export", "",
             format_table(longer.drop(columns="source").round(4))]
    write_probe_outputs("\n".join(lines) + "\n", args.results, args.tables,
                        {"s6_final_losses": finals, "s6_roles": kept, "longer_curves": curves, "longer_roles": longer})

if __name__ == "__main__":
    main()
