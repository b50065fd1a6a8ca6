"""Is each task's difficulty right for a grid of models? The report behind difficulty.yaml.

A task tells the architectures apart only if the grid's models spread over its range: not all at ceiling,
not all at chance, and, for the softmax baseline at least, better with size. For the final checkpoint of
every run in an evaluation store (``linscale eval``'s results table), per task, on its headline accuracy:

    models        how many final checkpoints scored the task
    min, max      their lowest and highest score
    chance        the task's chance level (linscale.eval.chance; the store's ``chance`` column)
    at_ceiling    every model scores >= ceiling (0.98)
    at_chance     every model is within z = 2 standard errors of chance, the standard error being that
                  of a model at chance, sqrt(c (1 − c) / n) for n items (for NIAH's weighted accuracy,
                  the weighted form, linscale.eval.metrics.weighted_stderr at p = c)
    llama_gain    LLaMA's largest model minus its smallest (at their final checkpoints)
    llama_rises   that gain exceeds z standard errors of the difference
    ok            neither at ceiling nor at chance (and, where LLaMA has two sizes or more, it rises)

    linscale eval runs/cpu --calibrate                          # evaluate final checkpoints, then report
    linscale eval runs/cpu --calibrate --option mqar_pairs=2    # another knob setting, its own store

:func:`niah_modes` adds the NIAH check of the issue that set these knobs: softmax attention must find
the easy needle (a question and its answer) at least as well as the standard one (the answer alone).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from linscale.eval.tasks import SCORES
from linscale.results import final_scores

CEILING = 0.98
Z = 2.0
# The headline accuracy of each task: (lm-eval task, metric).
HEADLINES = tuple((score.task, score.metric) for score in SCORES if score.headline)
REPORT_COLUMNS = ["task", "metric", "models", "min", "max", "chance", "at_ceiling", "at_chance", "llama_gain",
                  "llama_rises", "ok"]


def _null_stderr(chance: float, row: pd.Series) -> float:
    """The standard error of a model at chance, for the row's number of items. NIAH's weighted accuracy
    weighs its items unequally: its stderr scales as √(p (1 − p)), so rescale the measured one to p = c."""
    if row["metric"] == "weighted_acc":
        p = row.get("acc_value", math.nan)
        se = row["stderr"]
        if np.isfinite(se) and np.isfinite(p) and 0 < p < 1:
            return float(se * math.sqrt(chance * (1 - chance) / (p * (1 - p))))
    n = row["n_samples"]
    if row["task"] == "linscale_knowledge":  # the group: the mean of its bands, n is theirs together
        n = row.get("group_items", n)
    return math.sqrt(chance * (1 - chance) / n) if n and np.isfinite(n) else math.nan


def _chances(rows: pd.DataFrame) -> pd.Series:
    if "chance" in rows and rows["chance"].notna().all():
        return rows["chance"].astype(float)
    from linscale.eval.chance import chance_level

    return pd.Series([chance_level(t, m) for t, m in zip(rows["task"], rows["metric"])], index=rows.index)


def calibration_report(store: pd.DataFrame, ceiling: float = CEILING, z: float = Z) -> pd.DataFrame:
    """The per-task report described in the module docstring, from an evaluation store."""
    final = final_scores(store)
    rows = []
    for task, metric in HEADLINES:
        part = final[(final["task"] == task) & (final["metric"] == metric)].copy()
        if not len(part):
            continue
        part["chance"] = _chances(part)
        if metric == "weighted_acc":  # the plain accuracy of the same items, for the null standard error
            acc = final[(final["task"] == task) & (final["metric"] == "acc")].set_index("run_id")["value"]
            part["acc_value"] = part["run_id"].map(acc)
        if task == "linscale_knowledge":
            bands = final[final["task"].str.startswith("linscale_knowledge_") & (final["metric"] == "acc")]
            part["group_items"] = part["run_id"].map(bands.groupby("run_id")["n_samples"].sum())
        null = np.array([_null_stderr(c, r) for c, (_, r) in zip(part["chance"], part.iterrows())])
        values = part["value"].astype(float).to_numpy()
        chance = float(part["chance"].iloc[0])
        at_chance = bool(np.all(np.abs(values - part["chance"].to_numpy()) <= z * null))
        gain, rises = _llama_trend(part, z)
        at_ceiling = bool(np.all(values >= ceiling))
        rows.append({"task": task, "metric": metric, "models": int(len(part)), "min": float(values.min()),
                     "max": float(values.max()), "chance": chance, "at_ceiling": at_ceiling, "at_chance": at_chance,
                     "llama_gain": gain, "llama_rises": rises,
                     "ok": not at_ceiling and not at_chance and rises is not False})
    return pd.DataFrame(rows, columns=REPORT_COLUMNS)


def _llama_trend(part: pd.DataFrame, z: float) -> tuple[float, bool | None]:
    """LLaMA's largest minus smallest model and whether it exceeds z standard errors (None: < 2 sizes)."""
    llama = part[part["arch"] == "llama"]
    if "params" not in llama or llama["params"].nunique() < 2:
        return math.nan, None
    small, large = llama.loc[llama["params"].idxmin()], llama.loc[llama["params"].idxmax()]
    gain = float(large["value"] - small["value"])
    se = math.hypot(*(_own_stderr(r) for r in (small, large)))
    return gain, bool(gain > z * se) if np.isfinite(se) else bool(gain > 0)


def _own_stderr(row: pd.Series) -> float:
    """The row's standard error; where the store has none, the binomial one of its accuracy."""
    se, n = row.get("stderr", math.nan), row.get("n_samples", math.nan)
    if np.isfinite(se):
        return float(se)
    return math.sqrt(row["value"] * (1 - row["value"]) / n) if np.isfinite(n) and n > 0 else math.nan


def niah_modes(store: pd.DataFrame, z: float = Z) -> pd.DataFrame:
    """Per architecture and size (final checkpoints): NIAH easy and standard weighted accuracy, their
    difference and its standard error ``se``, whether easy >= standard (the paper's easy mode is the
    easier one; for softmax attention it must be), and whether easy is at least not harder beyond noise
    (easy >= standard − z se): at ceiling the two tie up to a few items. ``se`` is the store's own for
    the difference (its ``linscale_niah_easy_minus_standard`` row: paired when the two modes share their
    haystacks, ``niah_paired: 1``), else that of two independent accuracies."""
    from linscale.eval.runner import MODE_DIFFERENCE_TASK, NIAH_TASKS

    columns = ["arch", "size", "params", "easy", "standard", "difference", "se", "easy_ge_standard",
               "easy_not_harder"]
    final = final_scores(store)
    part = final[final["task"].isin(NIAH_TASKS) & (final["metric"] == "weighted_acc")]
    if not len(part):
        return pd.DataFrame(columns=columns)
    keys = ["arch", "size", "params"]
    wide = part.pivot_table(index=keys, columns="task", values="value", aggfunc="mean") \
        .rename(columns={"linscale_niah_easy": "easy", "linscale_niah_standard": "standard"})
    se = part.pivot_table(index=keys, columns="task", values="stderr", aggfunc="mean").pow(2).sum(axis=1).pow(0.5)
    paired = final[final["task"] == MODE_DIFFERENCE_TASK]
    if len(paired):
        se = paired.groupby(keys)["stderr"].mean().reindex(se.index).fillna(se)
    wide = wide.assign(se=se).reset_index()
    wide["difference"] = wide["easy"] - wide["standard"]
    wide.columns.name = None
    wide["easy_ge_standard"] = wide["easy"] >= wide["standard"]
    wide["easy_not_harder"] = wide["easy"] >= wide["standard"] - z * wide["se"].fillna(0)
    return wide[columns].sort_values(["arch", "params"]).reset_index(drop=True)


def format_report(report: pd.DataFrame, modes: pd.DataFrame | None = None) -> str:
    """The report as text, for the command line."""
    lines = []
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.precision", 3):
        if not len(report):  # a store of no headline task (--tasks of probes alone, say): none judged, and no
            # table (an empty one is pandas' "Empty DataFrame" block)
            lines.append("no task to calibrate: none of the tasks evaluated has a headline accuracy "
                         "(linscale/eval/tasks/__init__.py SCORES)")
        else:
            lines.append(report.to_string(index=False))
            why = [f"{r.task} ("
                   f"{'at ceiling' if r.at_ceiling else 'at chance' if r.at_chance else 'LLaMA does not rise'})"
                   for r in report[~report["ok"]].itertuples()]
            lines.append("not calibrated: " + "; ".join(why) if why else "every task is calibrated")
        if modes is not None and len(modes):
            lines.append("")
            lines.append(modes.to_string(index=False))
            llama = modes[modes["arch"] == "llama"]
            if len(llama):
                worse = llama[~llama["easy_ge_standard"]]
                lines.append("LLaMA: NIAH easy >= standard at every size" if not len(worse) else
                             "LLaMA: NIAH easy < standard at size(s) " + ", ".join(
                                 f"{r.size} ({'beyond' if not r.easy_not_harder else 'within'} noise)"
                                 for r in worse.itertuples()))
    return "\n".join(lines)
