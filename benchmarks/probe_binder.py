"""Why is NIAH easy's needle harder than standard's for cosFormer2? Its training language asked (issue 16)

    python benchmarks/probe_binder.py                      # about 20 minutes on 2 cores (8 runs retrained)
    python benchmarks/probe_binder.py --results benchmarks/results/X.md --tables results/probes/NAME

**Registered on 2026-12-04 (this script's first commit), before any model was scored on it.** The rule
is ``binder_verdict`` in ``linscale.findings`` (``findings/downstream.py``), which the downstream chapter
applies again to this probe's tables.

- *Why*: on the same haystacks, cosFormer2 finds the easy needle (``what VAR VAL .``, a question with
  its answer) less often than the standard one (``let VAR VAL .``) at s5 (easy − standard −0.028, paired
  SE 0.008) and s6 (−0.041, SE 0.010), while LLaMA finds both alike (+0.005, +0.006). In 9 of cosFormer2
  s6's 10 discordant items the easy answer was a value absent from the context: the model did not copy
  a wrong value, it answered as if nothing had bound the variable. Both needles are in the training
  distribution (a fresh query ``what VAR VAL .`` binds its variable, and later queries repeat the value).
  So either the model learned, from the language itself, to retrieve a value stated by ``let`` more
  reliably than one stated by a fresh query, or the gap comes from the NIAH items (a haystack without
  any other binding, which the language's documents rarely are).
- *Runs*: the final checkpoints of LLaMA, TNL, HGRN2 and cosFormer2 at s5 and s6 of the cpu preset,
  retrained exactly as the study trains them (seed 0, each size's budget and LR, one thread, the pinned
  code paths). Control: every retrained checkpoint's validation loss equals the committed one within
  0.1% (relative), so the probe reads the published models.
- *Items*: 8,192 documents of the preset's language (128 tokens, the training length), drawn from their
  own stream (``[0, eval split, 0xB1D]``); in each, the first re-query of every variable the document
  states (``linscale.data.synthetic.first_requeries``; later re-queries could copy an earlier answer).
  About 7,400 values stated by ``let`` and 4,600 by ``what``; the same items for every model.
- *Measure*, per model: greedy accuracy of the answer (the model's most likely next token is the value)
  after each kind of statement, in four strata of the distance from the stated value to the answer
  ((0, 16], (16, 32], (32, 64], (64, 128] tokens); the language gap is accuracy after ``let`` minus after
  ``what``, each stratum weighted by its items, with its binomial standard error (``binder_gap``).
- *Rule*, per size, for cosFormer2: the language **explains** its NIAH gap (standard − easy, paired, from
  the committed evaluation store) if the language gap is positive beyond two standard errors and at
  least half the NIAH gap; it **does not explain** it if the language gap is not positive beyond two
  standard errors; **partly** otherwise. Over both sizes: their verdict when they agree, partly if not.
- *What it decides*: nothing in the study's code or items. The downstream chapter replaces "why was not
  probed" with this probe's answer: if the language explains it, easy's extra difficulty for cosFormer2
  is what it learned from its training language, not an artefact of the task; if not, the NIAH items'
  construction is the suspect (and a later probe would embed the needles in the language's documents).
- *My prediction*: explains at both sizes (a language gap of +0.03 to +0.08 for cosFormer2), and for
  LLaMA a language gap within ±0.02 (it finds both needles alike).
- *Also reported, outside the rule*: the other three architectures' language gaps beside their NIAH
  gaps; the accuracies per stratum.

Runs land in ``--out`` (resumable: a finished run is found, not trained again); the tables go to
``--results`` (Markdown, with machine and date) and as CSV files to ``--tables``.
"""
from __future__ import annotations

import argparse
import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ARCHS = ("llama", "tnl", "hgrn2", "cosformer2")
SIZES = ("s5", "s6")
N_DOCS = 8192
STREAM = 0xB1D
CONTROL_TOLERANCE = 0.001  # relative, every checkpoint's validation loss against the committed one
DIFFERENCE_TASK = "linscale_niah_easy_minus_standard"


def score_requeries(checkpoint: Path, n_docs: int = N_DOCS, batch_size: int = 64, stream: int = STREAM):
    """The first re-queries of ``n_docs`` documents of the checkpoint's language (drawn from the stream
    ``[0, eval split, stream]``), each scored by the model's greedy next token: one row per item (doc, position, binder,
    distance, correct, nll)."""
    import numpy as np
    import pandas as pd
    import torch

    from linscale.models.checkpoint import load_checkpoint
    from linscale.data.datamodule import SyntheticDataModule
    from linscale.data.synthetic import SPLITS, first_requeries
    from linscale.eval.items import training_seq_len

    model, meta = load_checkpoint(checkpoint)
    seq_len = training_seq_len(meta)
    language = SyntheticDataModule(meta["data"], seq_len=seq_len, batch_size=16).language
    docs, _ = language.sample(np.random.default_rng([0, SPLITS["eval"], stream]), n_docs, seq_len)
    items = pd.DataFrame(first_requeries(language, docs))
    rows = np.concatenate([np.full((len(docs), 1), language.eod_id, dtype=docs.dtype), docs], axis=1)
    predicted, nll = np.zeros(docs.shape, dtype=np.int64), np.zeros(docs.shape)
    with torch.no_grad():
        for start in range(0, len(rows), batch_size):
            batch = torch.as_tensor(rows[start:start + batch_size], dtype=torch.long)
            logits = model(batch[:, :-1]).logits.float()  # position p predicts document token p
            predicted[start:start + batch_size] = logits.argmax(-1).numpy()
            nll[start:start + batch_size] = torch.nn.functional.cross_entropy(
                logits.transpose(1, 2), batch[:, 1:], reduction="none").double().numpy()
    at = (items["doc"].to_numpy(), items["position"].to_numpy())
    return items.assign(correct=predicted[at] == items["answer"].to_numpy(), nll=nll[at]).drop(columns="answer")


def count_items(items):
    """Scored items (``score_requeries`` rows with run_id, arch and size) counted per model, statement and
    distance stratum (``findings.BINDER_BUCKETS``): the ``counts.csv`` the findings readers judge."""
    import pandas as pd

    from linscale.findings import BINDER_BUCKETS

    strata = pd.cut(items["distance"], list(BINDER_BUCKETS)).astype(str)
    return (items.assign(bucket=strata).groupby(["run_id", "arch", "size", "binder", "bucket"], sort=False)
            .agg(n=("correct", "size"), correct=("correct", "sum"), nll=("nll", "mean")).reset_index())


def main() -> None:
    from linscale.train.code_paths import pin_numerics

    pin_numerics()
    import pandas as pd
    import torch

    from linscale.bench import format_table
    from linscale.probes import probe_report_head, retrain_control, train_probe_run, write_probe_outputs
    from linscale.eval.runner import final_checkpoints
    from linscale.findings import binder_summary

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/probe-binder", help="the runs' folder (resumable)")
    parser.add_argument("--results-dir", default="results/cpu", help="the committed study (control, NIAH gaps)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--docs", type=int, default=N_DOCS)
    parser.add_argument("--results", help="the Markdown report (printed without one)")
    parser.add_argument("--tables", help="a folder for the CSV tables")
    args = parser.parse_args()
    torch.set_num_threads(1)

    results_dir = Path(args.results_dir)
    committed = pd.read_parquet(results_dir / "runs.parquet")
    wanted = [(arch, size) for size in reversed(SIZES) for arch in ARCHS]  # the longest runs first
    started = dt.datetime.now(dt.timezone.utc)
    with ThreadPoolExecutor(args.jobs) as pool:
        folders = dict(zip(wanted, pool.map(lambda w: train_probe_run(Path(args.out) / f"{w[0]}-{w[1]}", *w), wanted)))
    retrained = pd.concat([pd.read_parquet(folder / "results.parquet") for folder in folders.values()],
                          ignore_index=True)
    ids = {f"{arch}-{size}" for arch, size in wanted}
    control, control_line = retrain_control(retrained, committed[committed["run_id"].isin(ids)], CONTROL_TOLERANCE)

    frames = []
    for (arch, size), folder in folders.items():
        (checkpoint,) = final_checkpoints(folder)
        scored = score_requeries(checkpoint, args.docs)
        frames.append(scored.assign(run_id=f"{arch}-{size}", arch=arch, size=size,
                                    step=int(checkpoint.name.split("=")[1])))
        print(f"{arch}-{size}: {len(scored)} items scored", flush=True)
    items = pd.concat(frames, ignore_index=True)
    counts = count_items(items)

    store = pd.read_parquet(results_dir / "eval.parquet")
    final = store[(store["task"] == DIFFERENCE_TASK) & store["run_id"].isin(ids)]
    final = final[final["step"] == final.groupby("run_id")["step"].transform("max")]
    niah = final[final["metric"] == "weighted_acc_difference"][["run_id", "value", "stderr"]] \
        .rename(columns={"value": "difference", "stderr": "se"})

    found = binder_summary(counts, niah)
    strata = found["strata"].drop(columns="run_id")
    lines = [*probe_report_head("Registered probe: NIAH easy's needle against standard's, in the training language",
                                "the design, the rule and my prediction are in the script's docstring, committed "
                                "before any model was scored on it.", started),
             f"- control: {control_line}",
             f"- items: {args.docs} documents of the preset's language, stream [0, eval, {STREAM:#x}]; "
             f"{int((items['binder'] == 'let').sum() / len(folders))} stated by let, "
             f"{int((items['binder'] == 'what').sum() / len(folders))} by what, per model", "",
             "## Verdict", "", "Does the training language explain cosFormer2's harder easy needle?", "",
             *[f"- {size}: **{verdict}**" for size, verdict in found["verdicts"].items()],
             f"- over both sizes: **{found['overall']}**", "",
             "## Language gap (let − what, stratified by distance) beside the NIAH gap (standard − easy, paired)", "",
             format_table(found["table"].round(4)), "",
             "## Accuracy per distance stratum", "", format_table(strata.round(4))]
    write_probe_outputs("\n".join(lines) + "\n", args.results, args.tables or str(Path(args.out) / "tables"),
                        {"counts": counts, "niah": niah, "control": control})


if __name__ == "__main__":
    main()
