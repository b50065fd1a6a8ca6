"""Findings downstream: the wide table of evaluated checkpoints, chance levels, the largest models
compared, NIAH cells and retrieval."""
from __future__ import annotations

import numpy as np
import pandas as pd

# ----------------------------------------------------------------------------- downstream

# (task, metric) -> column of the wide downstream table; lower is better for the perplexities.
DOWNSTREAM_METRICS = {
    ("linscale_knowledge", "acc"): "knowledge_acc",
    ("linscale_knowledge", "acc_norm"): "knowledge_acc_norm",
    ("linscale_knowledge_head", "acc"): "knowledge_head_acc",
    ("linscale_knowledge_torso", "acc"): "knowledge_torso_acc",
    ("linscale_knowledge_tail", "acc"): "knowledge_tail_acc",
    ("linscale_perplexity", "word_perplexity"): "word_perplexity",
    ("linscale_perplexity", "bits_per_byte"): "bits_per_byte",
    ("linscale_cloze", "acc"): "cloze_acc",
    ("linscale_cloze", "perplexity"): "cloze_perplexity",
    ("linscale_niah_easy", "weighted_acc"): "niah_easy_wa",
    ("linscale_niah_easy", "niah_score"): "niah_easy_score",
    ("linscale_niah_standard", "weighted_acc"): "niah_standard_wa",
    ("linscale_mqar", "acc"): "mqar_acc",
}


def downstream_table(eval_table: pd.DataFrame, runs: pd.DataFrame, loss: str = "train_loss") -> pd.DataFrame:
    """One row per evaluated checkpoint: arch, size, N, tokens, compute, the loss at that checkpoint (from
    the runs table) and one column per downstream metric (``DOWNSTREAM_METRICS``)."""
    keys = pd.Series(list(zip(eval_table["task"], eval_table["metric"])), index=eval_table.index)
    known = eval_table[keys.isin(DOWNSTREAM_METRICS.keys())].copy()
    known["column"] = [DOWNSTREAM_METRICS[(t, m)] for t, m in zip(known["task"], known["metric"])]
    wide = known.pivot_table(index=["run_id", "step"], columns="column", values="value", aggfunc="last").reset_index()
    wide.columns.name = None
    meta = runs[["run_id", "step", "arch", "size", "params", "tokens", "pf_days", loss]].rename(columns={loss: "loss"})
    table = wide.merge(meta, on=["run_id", "step"], how="left")
    order = ["run_id", "arch", "size", "step", "params", "tokens", "pf_days", "loss"]
    return table[order + [c for c in DOWNSTREAM_METRICS.values() if c in table.columns]] \
        .sort_values(["arch", "params", "step"]).reset_index(drop=True)


def downstream_chance(eval_table: pd.DataFrame) -> dict[str, float]:
    """{downstream_table column: its chance level} (linscale.eval.chance: as the store records it, else in the
    default language), NaN for perplexities."""
    from linscale.eval.chance import chance_level, store_chances

    chances = store_chances(eval_table)
    return {column: chances[key] if key in chances else chance_level(*key) for key, column in DOWNSTREAM_METRICS.items()}


def with_chance(table: pd.DataFrame, chances: dict[str, float]) -> pd.DataFrame:
    """An accuracy table as the book shows it: its rows, then one of chance levels (``downstream_chance``)."""
    from linscale.eval.chance import with_chance_row

    return with_chance_row(table, chances)


# The columns of the downstream summary table the book shows (the figures use the rest).
SUMMARY_COLUMNS = ["arch", "size", "params", "pf_days", "loss", "knowledge_acc", "bits_per_byte", "cloze_acc",
                   "niah_easy_wa", "mqar_acc"]


def final_checkpoints(table: pd.DataFrame) -> pd.DataFrame:
    """The last evaluated checkpoint of each run."""
    last = table.sort_values("step").groupby("run_id", sort=False).tail(1).sort_values(["arch", "params"])
    return last.reindex(columns=list(dict.fromkeys([*table.columns, *SUMMARY_COLUMNS]))).reset_index(drop=True)


def compare_at_largest(table: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """Each architecture's final checkpoint of its largest model: the metrics, for a like-for-like
    comparison at equal size (the paper's Table 4 reads its models the same way)."""
    last = final_checkpoints(table)
    largest = last.loc[last.groupby("arch")["params"].idxmax()]
    return largest[["arch", "size", "params", "pf_days", "loss", *[m for m in metrics if m in largest]]] \
        .reset_index(drop=True)


def ranking(table: pd.DataFrame, metric: str, higher_is_better: bool = True) -> str:
    """"HGRN2 > TNL > ...": architectures by one metric, best first ("better than", whatever the
    metric's direction)."""
    from linscale.plotting import arch_label

    part = table.dropna(subset=[metric]).sort_values(metric, ascending=not higher_is_better)
    return " > ".join(arch_label(a) for a in part["arch"]) if len(part) else "–"


def largest_model_cells(cells: pd.DataFrame, archs=None, mode: str = "easy") -> pd.DataFrame:
    """NIAH per-cell accuracy (columns arch, params, step, mode, context, depth, acc) of each
    architecture's largest model at its last evaluated step, renamed for the heatmap (score)."""
    part = cells[cells["mode"] == mode] if "mode" in cells else cells
    if archs is not None:
        part = part[part["arch"].isin(archs)]
    keep = []
    for arch, sub in part.groupby("arch"):
        sub = sub[sub["params"] == sub["params"].max()]
        keep.append(sub[sub["step"] == sub["step"].max()])
    return pd.concat(keep, ignore_index=True).rename(columns={"acc": "score"})


RETRIEVAL_TASKS = {"mqar_acc": "associative recall", "niah_easy_wa": "NIAH easy", "niah_standard_wa": "NIAH standard"}


def retrieval_long(largest: pd.DataFrame, chances: dict[str, float] | None = None) -> pd.DataFrame:
    """The retrieval scores of :func:`compare_at_largest`'s table in long form (arch, task, score, and
    each task's ``chance`` level from ``chances``: :func:`downstream_chance`)."""
    columns = [c for c in RETRIEVAL_TASKS if c in largest]
    long = largest.melt(id_vars=["arch"], value_vars=columns, var_name="metric", value_name="score")
    long["task"] = long["metric"].map(RETRIEVAL_TASKS)
    long["chance"] = long["metric"].map(chances or {}).astype(float)
    return long.dropna(subset=["score"])
