"""Far from the statement, does cosFormer2 copy a fresh query's value less often than a let's? A test of
what was read after the binder probe's verdict, on new documents (issue 16)

    python benchmarks/probe_binder_distance.py     # about 2 minutes on 2 cores (the binder probe's runs)
    python benchmarks/probe_binder_distance.py --results benchmarks/results/X.md --tables results/probes/NAME

**Registered on 2026-12-04 (this script's first commit), after reading benchmarks/probe_binder.py's
strata and before any document of this script's stream was scored.** The rule is
``replication_verdict`` in ``linscale.findings`` (``findings/downstream.py``).

- *Why*: the binder probe's verdict was that the training language does not explain cosFormer2's
  harder NIAH-easy needle: every model copies a value stated by a fresh query (``what VAR VAL .``) more
  often than one stated by ``let``. Read after that verdict, outside its rule: in the longest distance
  stratum, 65-128 tokens, cosFormer2 alone copied a fresh query's value less often (s5 −0.060, s6 −0.061,
  SE 0.022 each; the other models +0.002 to +0.034), and its NIAH-easy misses all lie at contexts of 96
  tokens and more. A pattern found by looking at 32 cells can be chance; this tests it once on items
  no model has been scored on.
- *Runs*: the eight final checkpoints the binder probe retrained (its folder; they equal the committed
  runs' validation losses to the last bit). None trained.
- *Items*: 16,384 new documents of the preset's language from their own stream (``[0, eval split,
  0xB1E]``, the binder probe's was ``0xB1D``), each variable's first re-query
  (``linscale.data.synthetic.first_requeries``), scored by the model's greedy next token
  (``probe_binder.score_requeries``).
- *Measure*, per model: in the stratum of distances (64, 128], accuracy after a fresh query minus after
  ``let``, with its binomial standard error (``stratum_difference``).
- *Rule*, per size, for cosFormer2: **replicated** if that difference is negative beyond two standard
  errors, **not replicated** otherwise; over both sizes their verdict when they agree, partly if not.
- *What it decides*: what the downstream chapter may say. If replicated, it states that far from the
  statement cosFormer2 alone loses its advantage for a question's answer, in the training language as in
  NIAH; if not, it says the pattern did not hold on new documents.
- *My prediction*: replicated at both sizes, with differences between −0.08 and −0.03; the other
  models' differences at or above −0.02.

The tables go to ``--results`` (Markdown, with machine and date) and as CSV files to ``--tables``.
"""
from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

N_DOCS = 16384
STREAM = 0xB1E


def main() -> None:
    from linscale.train.code_paths import pin_numerics

    pin_numerics()
    import pandas as pd
    import torch

    from linscale.bench import format_table
    from linscale.probes import benchmark_script, probe_report_head, write_probe_outputs
    from linscale.eval.runner import final_checkpoints
    from linscale.findings import LONG_STRATUM, binder_distance_summary

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", default="runs/probe-binder", help="the binder probe's runs (one sweep per run)")
    parser.add_argument("--results-dir", default="results/cpu", help="the committed study (its final steps)")
    parser.add_argument("--docs", type=int, default=N_DOCS)
    parser.add_argument("--results", help="the Markdown report (printed without one)")
    parser.add_argument("--tables", help="a folder for the CSV tables")
    args = parser.parse_args()
    torch.set_num_threads(1)
    binder = benchmark_script("probe_binder")

    committed = pd.read_parquet(Path(args.results_dir) / "runs.parquet")
    final_step = committed.groupby("run_id")["step"].max()
    wanted = [(arch, size) for size in reversed(binder.SIZES) for arch in binder.ARCHS]
    started = dt.datetime.now(dt.timezone.utc)
    frames = []
    for arch, size in wanted:
        run_id = f"{arch}-{size}"
        found = final_checkpoints(Path(args.runs) / run_id)
        if len(found) != 1 or int(found[0].name.split("=")[1]) != int(final_step[run_id]):
            raise SystemExit(f"--runs: {Path(args.runs) / run_id} has no export of the committed final step "
                             f"{int(final_step[run_id])} (run benchmarks/probe_binder.py first)")
        scored = binder.score_requeries(found[0], args.docs, stream=STREAM)
        frames.append(scored.assign(run_id=run_id, arch=arch, size=size, step=int(final_step[run_id])))
        print(f"{run_id}: {len(scored)} items scored", flush=True)
    items = pd.concat(frames, ignore_index=True)
    counts = binder.count_items(items)
    found = binder_distance_summary(counts)
    lines = [*probe_report_head("Registered probe: far from the statement, a fresh query's value against a let's",
                                "the design, the rule and my prediction are in the script's docstring, committed "
                                "after reading the binder probe and before any document of this stream was "
                                "scored.", started),
             f"- items: {args.docs} documents of the preset's language, stream [0, eval, {STREAM:#x}]; per model "
             f"{int((items['binder'] == 'let').sum() / len(wanted))} stated by let, "
             f"{int((items['binder'] == 'what').sum() / len(wanted))} by a fresh query", "",
             "## Verdict", "", f"In the stratum {LONG_STRATUM}, does cosFormer2 copy a fresh query's value less "
             "often than a let's (beyond two standard errors)?", "",
             *[f"- {size}: **{verdict}**" for size, verdict in found["verdicts"].items()],
             f"- over both sizes: **{found['overall']}**", "",
             f"## Accuracy after a fresh query minus after let, distances {LONG_STRATUM}", "",
             format_table(found["table"].round(4)), "",
             "## Every stratum", "",
             format_table(counts.assign(accuracy=counts["correct"] / counts["n"]).round(4))]
    write_probe_outputs("\n".join(lines) + "\n", args.results, args.tables or str(Path(args.runs) / "distance-tables"),
                        {"counts": counts})


if __name__ == "__main__":
    main()
