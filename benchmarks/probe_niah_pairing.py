"""Paired NIAH modes: does measuring easy and standard on the same haystacks make "easy is at least as
easy as standard" testable? (issue 16)

    python benchmarks/probe_niah_pairing.py --runs runs/probe-context-roles   # about 5 minutes on 2 cores
    python benchmarks/probe_niah_pairing.py --runs DIR --results benchmarks/results/X.md --tables results/probes/NAME

**Registered on 2026-12-04 (this script's first commit), before any paired item was scored.**

- *Why*: issue 16 asks that, for softmax attention, NIAH easy (the needle "what VAR VAL .", question and
  answer) be at least as easy as NIAH standard (the needle "let VAR VAL .", the answer alone). In the
  published evaluation LLaMA's easy is below its standard at s5 (0.476 vs 0.503, weighted accuracy) and
  s6 (0.533 vs 0.542), with standard errors of about 0.027 each: differences no evaluation of this size
  can sign. Until now the two modes drew their items from separate random streams: each mode had its own
  variables, values and haystacks, so their difference carries the noise of two independent samples,
  most of it from haystacks that one mode happened to get and the other did not.
- *Change*: ``niah_paired: 1`` (difficulty.yaml; ``linscale.data.synthetic.needle_in_haystack(...,
  paired=True)``): the k-th item of both modes has the same variable, value, haystack and depth; the
  needles have the same length and differ only in their first word. The difference easy − standard is
  then a mean of per-item differences (``linscale.eval.metrics.weighted_difference``), and an item both
  modes answer alike adds no noise.
- *Runs*: none trained. The final checkpoints of the 24 main-grid runs (exports of the committed models:
  the probe of 2026-12-04 retrained them to the last bit of every validation loss), each scored on both
  modes with ``niah_paired`` 0 (the published items: must reproduce the committed weighted accuracies
  exactly, the control) and 1.
- *Measure*: per checkpoint, the standard error of easy − standard, paired against unpaired; its ratio.
- *Rule (decides the default, on the design's precision, not on which mode wins)*: adopt ``niah_paired:
  1`` for the default study if the median ratio over the checkpoints where either mode scores between
  0.1 and 0.9 is at most 0.75; keep 0 otherwise (``pairing_verdict``).
- *My prediction*: ratio about 0.5 (most items are answered alike in both modes: the model finds the
  value or not whatever word leads the needle), so pairing is adopted. LLaMA's paired easy − standard at
  s4-s6: between −0.03 and +0.05, with a paired standard error near 0.015; easy ≥ standard at 2 of those
  3 sizes.

The tables go to ``--results`` (Markdown, with machine and date) and as CSV files to ``--tables``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

TASKS = ["linscale_niah_easy", "linscale_niah_standard"]
BAND = (0.1, 0.9)  # checkpoints whose easy or standard accuracy lies inside: the ratio's sample
ADOPT_AT = 0.75    # median SE ratio (paired / unpaired) at or below which pairing becomes the default


def pairing_verdict(ratios) -> str:
    """'adopt' if the median paired-over-unpaired SE ratio is at most ADOPT_AT, 'keep' otherwise."""
    import numpy as np

    ratios = [r for r in ratios if np.isfinite(r)]
    if not ratios:
        return "no data"
    return "adopt" if float(np.median(ratios)) <= ADOPT_AT else "keep"


def score(checkpoint: Path, paired: int, cache: Path) -> dict:
    from linscale.eval.metrics import weighted_accuracy, weighted_difference
    from linscale.eval.runner import evaluate_checkpoint, niah_records

    results = evaluate_checkpoint(checkpoint, TASKS, task_cache=cache, task_options={"niah_paired": paired})
    easy, standard = (niah_records(results["samples"][t]) for t in TASKS)
    diff, se, is_paired = weighted_difference(easy, standard)
    unpaired = weighted_difference(easy, standard, pair=False)[1]  # as if the two item sets were independent
    return {"easy": weighted_accuracy((i, j, c) for i, j, _, c in easy),
            "standard": weighted_accuracy((i, j, c) for i, j, _, c in standard),
            "difference": diff, "se": se, "se_unpaired": unpaired, "paired": is_paired,
            "discordant": sum(a[3] != b[3] for a, b in zip(sorted(easy, key=lambda r: r[2]), sorted(standard, key=lambda r: r[2])))
            if is_paired else float("nan")}


def main() -> None:
    from linscale.train.code_paths import pin_numerics

    pin_numerics()
    import pandas as pd
    import torch

    from linscale.bench import machine_info
    from linscale.eval.runner import final_checkpoints

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, required=True,
                        help="a folder of sweeps (one per run, as the context-roles probe keeps them) or one sweep")
    parser.add_argument("--archs", default="llama,tnl,hgrn2,cosformer2")
    parser.add_argument("--cache", type=Path, default=Path("runs/probe-niah-pairing/tasks"))
    parser.add_argument("--published", type=Path, default=Path("results/cpu/eval.parquet"))
    parser.add_argument("--results", type=Path)
    parser.add_argument("--tables", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)

    sweeps = [args.runs] if (args.runs / "runs").is_dir() else sorted(p for p in args.runs.iterdir() if (p / "runs").is_dir())
    archs = args.archs.split(",")
    checkpoints = [c for s in sweeps for c in final_checkpoints(s) if c.parent.parent.name.split("-")[0] in archs]
    if not checkpoints:
        sys.exit(f"--runs: no exported checkpoints of {archs} under {args.runs}")
    published = pd.read_parquet(args.published)
    published = published[(published.metric == "weighted_acc") & published.task.isin(TASKS)]
    rows = []
    for checkpoint in checkpoints:
        run_id, step = checkpoint.parent.parent.name, int(checkpoint.name.split("=")[1])
        for paired in (0, 1):
            row = {"run_id": run_id, "arch": run_id.split("-")[0], "size": run_id.split("-")[1], "step": step,
                   "niah_paired": paired, **score(checkpoint, paired, args.cache)}
            if paired == 0:
                pub = published[(published.run_id == run_id) & (published.step == step)].set_index("task")["value"]
                row["control_easy"] = pub.get(TASKS[0], float("nan"))
                row["control_standard"] = pub.get(TASKS[1], float("nan"))
            rows.append(row)
            print(f"{run_id} step {step} paired={paired}: easy {row['easy']:.3f} standard {row['standard']:.3f} "
                  f"diff {row['difference']:+.3f} se {row['se']:.3f} (unpaired form {row['se_unpaired']:.3f})", flush=True)
    table = pd.DataFrame(rows)
    unpaired, paired = (table[table.niah_paired == k].set_index("run_id") for k in (0, 1))
    control = unpaired[["easy", "standard", "control_easy", "control_standard"]]
    control_ok = bool(((control.easy == control.control_easy) & (control.standard == control.control_standard)).all())
    ratio = pd.DataFrame({"se_paired": paired["se"], "se_unpaired": unpaired["se"]})
    inside = ((paired[["easy", "standard"]].gt(BAND[0]) & paired[["easy", "standard"]].lt(BAND[1])).any(axis=1))
    ratio["ratio"] = ratio.se_paired / ratio.se_unpaired
    ratio["in_band"] = inside
    verdict = pairing_verdict(ratio.loc[ratio.in_band, "ratio"])
    llama = paired[paired.arch == "llama"][["size", "easy", "standard", "difference", "se", "discordant"]]

    lines = ["# Paired NIAH modes: the precision of easy minus standard (issue 16)", "",
             f"Produced by `python benchmarks/probe_niah_pairing.py {' '.join(sys.argv[1:])}`.", ""]
    lines += [f"- {k}: {v}" for k, v in {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                                          **machine_info()}.items()]
    lines += ["", f"Control (niah_paired 0 reproduces the published weighted accuracies exactly): "
              f"{'yes' if control_ok else 'NO'}", "",
              f"Rule: adopt pairing if the median SE ratio (paired / unpaired) over checkpoints with either mode in "
              f"{BAND} is at most {ADOPT_AT}. Median ratio {ratio.loc[ratio.in_band, 'ratio'].median():.3f} over "
              f"{int(ratio.in_band.sum())} checkpoints: **{verdict}**.", "",
              "## LLaMA, paired items", "", llama.to_markdown(index=False, floatfmt=".4f"), "",
              "## Every checkpoint", "", table.drop(columns=["control_easy", "control_standard"]).to_markdown(index=False, floatfmt=".4f"),
              "", "## Standard error of easy minus standard", "", ratio.reset_index().to_markdown(index=False, floatfmt=".4f")]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.results:
        args.results.parent.mkdir(parents=True, exist_ok=True)
        args.results.write_text(text)
    if args.tables:
        args.tables.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.tables / "scores.csv", index=False)
        ratio.reset_index().to_csv(args.tables / "se_ratio.csv", index=False)


if __name__ == "__main__":
    main()
