"""Where a study's results tables live and how the book reads them.

A study (``linscale study --preset P``) keeps its tables, not its checkpoints, under
``results/<P>/`` so they can be committed and the book rebuilt without retraining::

    results/<P>/runs.parquet     one row per (run, checkpoint): the results table (linscale.train.results)
    results/<P>/eval.parquet     downstream scores per (run, checkpoint, task, metric)
    results/<P>/fits/*.csv       the fitted laws (linscale.laws outputs), for readers without Python
    results/<P>/ablations/       the ablation sweeps' tables (aspect ratio, context, seeds)
    results/<P>/overrides.json   the ``--set`` overrides the study ran with (only a study that had some)

(:mod:`linscale.study` lists every file.) The efficiency chapter reads ``benchmarks/results/``, not a study.

:func:`read_runs` checks the columns the book relies on and fails with one line naming the file.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from linscale.config import ARCHITECTURES, ResultsError, read_table_file
from linscale.train.settings import resolve_preset

# The columns of the results table (linscale.train.results.SCHEMA) the book requires: all but
# train_bayes_loss, which the tables of linscale 0.1 lack (read as NaN there)
RUNS_COLUMNS = (
    "run_id", "arch", "size", "n_layer", "d_model", "n_head", "d_ffn", "params", "params_total", "seq_len",
    "batch_size", "step", "tokens", "flops", "pf_days", "train_loss", "val_loss", "bayes_loss", "lr",
    "diverged", "seed", "preset", "wall_time_s",
)


def results_path(preset: str, results_dir: str | Path = "results") -> Path:
    """The folder holding a preset's committed results tables."""
    return Path(results_dir) / str(preset)


# What a study made with ``linscale study --set KEY=VALUE`` keeps beside its tables: its overrides, so that
# whoever reads the folder (the book's chapters, a later stage) sees the grid that was trained, not the
# preset's own. {"preset": "cpu", "set": ["sizes.s1.d_model=12", ...]}
OVERRIDES_FILE = "overrides.json"


def study_overrides(preset: str, results_dir: str | Path = "results") -> tuple[str, ...]:
    """The ``--set`` overrides the study in ``results_dir/<preset>/`` was made with (none: the preset as it is)."""
    import json

    path = results_path(preset, results_dir) / OVERRIDES_FILE
    if not path.exists():
        return ()
    try:
        chosen = json.loads(path.read_text()).get("set")
    except (ValueError, AttributeError):
        chosen = None
    if not isinstance(chosen, list) or not all(isinstance(item, str) and "=" in item for item in chosen):
        raise ResultsError(f'{path}: expected {{"set": ["KEY=VALUE", ...]}} (the study\'s --set overrides)')
    return tuple(chosen)


def study_preset(preset: str, results_dir: str | Path = "results") -> dict:
    """The preset whose grid, language and settings the study in ``results_dir/<preset>/`` trained: the
    named preset with the overrides recorded beside its tables (:data:`OVERRIDES_FILE`) applied. What a
    chapter reads instead of the preset by name."""
    return resolve_preset(preset, list(study_overrides(preset, results_dir)))


def read_table(path: str | Path, required: tuple[str, ...] = ()) -> pd.DataFrame:
    """A Parquet or CSV table, with a one-line error if it is missing or lacks ``required`` columns."""
    path = Path(path)
    if not path.exists():
        csv = path.with_suffix(".csv")
        if path.suffix == ".parquet" and csv.exists():
            path = csv
        else:
            # a relative path is the kernel's working directory's: papermill run away from the repository without
            # --cwd read results/cpu under /tmp, and the line did not say so
            where = "" if path.is_absolute() else f"; a relative path is read from {Path.cwd()}"
            raise ResultsError(f"{path}: no such results table (run `linscale study` first, or check the "
                               f"folder{where})")
    table = read_table_file(path, "not a readable results table", "write it again with `linscale study` (the same "
                            "preset and folders) or, for a committed study, restore it from git", error=ResultsError)
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise ResultsError(f"{path}: missing column(s) {', '.join(missing)}")
    return table


def read_runs(preset: str, results_dir: str | Path = "results", include_diverged: bool = False) -> pd.DataFrame:
    """The results table of a preset (:mod:`linscale.train.results`), diverged runs dropped unless asked for."""
    runs = read_table(results_path(preset, results_dir) / "runs.parquet", RUNS_COLUMNS)
    if not include_diverged:
        runs = runs[~runs["diverged"].astype(bool)]
    return runs.reset_index(drop=True)


def run_summary(runs: pd.DataFrame, loss: str = "train_loss") -> pd.DataFrame:
    """One row per run at its last checkpoint: shape, N, tokens, compute, losses and wall time."""
    last = runs.sort_values("step").groupby("run_id", sort=False).tail(1)
    columns = ["arch", "size", "n_layer", "d_model", "n_head", "params", "tokens", "pf_days", "train_loss",
               "val_loss", "bayes_loss", "wall_time_s"]
    table = last[columns].copy()
    table["checkpoints"] = table.index.map(lambda i: int((runs["run_id"] == last.loc[i, "run_id"]).sum()))
    order = {a: i for i, a in enumerate(ARCHITECTURES)}
    return table.sort_values(["arch", "params"], key=lambda c: c.map(order) if c.name == "arch" else c) \
        .reset_index(drop=True)


def grid_facts(runs: pd.DataFrame) -> dict:
    """Plain numbers about a results table for the prose: runs, checkpoints, N and C ranges, time."""
    import math

    summary = run_summary(runs)
    positive = runs[runs["pf_days"] > 0]["pf_days"]
    return {
        "n_runs": int(runs["run_id"].nunique()),
        "n_checkpoints": int(len(runs)),
        "n_archs": int(runs["arch"].nunique()),
        "n_sizes": int(runs["size"].nunique()),
        "params_min": float(runs["params"].min()),
        "params_max": float(runs["params"].max()),
        "params_decades": float(math.log10(runs["params"].max() / runs["params"].min())),
        "compute_decades": float(math.log10(positive.max() / positive.min())),
        "tokens_max": float(runs["tokens"].max()),
        "wall_time_h": float(summary["wall_time_s"].sum() / 3600),
        "bayes_loss": float(runs["bayes_loss"].median()),
        "n_diverged": int(runs.groupby("run_id")["diverged"].any().sum()),
    }


# linscale eval's store (linscale.eval.runner): one row per (run, checkpoint, task, metric).
EVAL_COLUMNS = ("run_id", "arch", "size", "step", "tokens", "flops", "pf_days", "params", "suite", "task", "metric",
                "value")

# How the context ablation's final checkpoints are evaluated (the ``evaluation`` column of
# ablations/context-eval.parquet), so that retrieval compares like with like: COMMON_CONTEXT, every run at
# one context length, the main grid's training context (the base runs' scores are the main sweep's);
# TWICE_CONTEXT, each run at twice its own training context (the paper's 8K-trained models tested on NIAH
# up to 16K). Each is its own evaluation store (the store key has no context length).
COMMON_CONTEXT, TWICE_CONTEXT = "common", "twice"


def final_scores(store: pd.DataFrame) -> pd.DataFrame:
    """The rows of an evaluation store (EVAL_COLUMNS) at each run's last evaluated checkpoint."""
    return store[store["step"] == store.groupby("run_id")["step"].transform("max")]


def read_eval(preset: str, results_dir: str | Path = "results") -> pd.DataFrame:
    """The downstream scores of a preset (``results/<preset>/eval.parquet``)."""
    return read_table(results_path(preset, results_dir) / "eval.parquet", EVAL_COLUMNS)


def read_optional(preset: str, results_dir: str | Path, name: str) -> pd.DataFrame | None:
    """``results/<preset>/<name>.parquet`` when the study wrote it, else None."""
    path = results_path(preset, results_dir) / f"{name}.parquet"
    return read_table(path) if path.exists() else None
