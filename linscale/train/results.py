"""The results table: one row per (run, intermediate checkpoint), written by the sweep, read by the
scaling-law fits (``linscale.laws``) and the book. Stored as Parquet (``results.parquet``) with a CSV
copy (``results.csv``) beside it; both are replaced atomically.

| column       | type    | meaning                                                                    |
|--------------|---------|----------------------------------------------------------------------------|
| run_id       | string  | ``<arch>-<size>`` (unique within a sweep folder)                           |
| arch         | string  | llama, tnl, hgrn2, cosformer2                                              |
| size         | string  | the preset's size name                                                     |
| n_layer      | int64   | l                                                                          |
| d_model      | int64   | d                                                                          |
| n_head       | int64   | h                                                                          |
| d_ffn        | int64   | GLU width g                                                                |
| params       | int64   | N: non-embedding parameters (Table 1 terms, as the paper counts)          |
| params_total | int64   | all trainable parameters, tied embedding included                          |
| seq_len      | int64   | context n                                                                  |
| batch_size   | int64   | global batch b in sequences                                                |
| step         | int64   | optimiser steps taken                                                      |
| tokens       | int64   | D = step · b · n, training tokens seen                                     |
| flops        | float64 | C: cumulative training FLOPs, Table 1 (non-embedding, forward + backward)  |
| pf_days      | float64 | C / 8.64e19                                                                |
| train_loss   | float64 | mean training loss over the last ``loss_window`` steps (nats/token)        |
| val_loss     | float64 | held-out loss (nats/token); NaN on a diverged row                          |
| bayes_loss   | float64 | exact Bayes loss on the same held-out tokens (synthetic corpus; NaN else)  |
| train_bayes_loss | float64 | exact Bayes loss of the training tokens behind train_loss (the same window; |
|              |         | synthetic corpus; NaN else): train_loss − train_bayes_loss is the excess   |
|              |         | loss without the sampling noise of the batches                             |
| lr           | float64 | learning rate of the last step                                             |
| diverged     | bool    | the loss became NaN/inf at this step; the run stopped there                |
| seed         | int64   | training seed                                                              |
| preset       | string  | the preset's name                                                          |
| wall_time_s  | float64 | training wall time up to this checkpoint (summed over resumed attempts)    |
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from linscale.atomic import atomic_write
from linscale.config import ARCHITECTURES, ResultsError, read_table_file  # ResultsError: any results table's problem
from linscale.flops import PF_DAY

SCHEMA: dict[str, str] = {
    "run_id": "string", "arch": "string", "size": "string",
    "n_layer": "int64", "d_model": "int64", "n_head": "int64", "d_ffn": "int64",
    "params": "int64", "params_total": "int64", "seq_len": "int64", "batch_size": "int64",
    "step": "int64", "tokens": "int64", "flops": "float64", "pf_days": "float64",
    "train_loss": "float64", "val_loss": "float64", "bayes_loss": "float64", "train_bayes_loss": "float64",
    "lr": "float64",
    "diverged": "bool", "seed": "int64", "preset": "string", "wall_time_s": "float64",
}
COLUMNS = tuple(SCHEMA)
ARCHS = ARCHITECTURES  # one list (linscale.config): a new architecture's rows were refused after its runs trained




def to_frame(records: list[dict]) -> pd.DataFrame:
    """Records (dicts with the schema's keys) as a DataFrame with the schema's columns and types."""
    frame = pd.DataFrame.from_records(records, columns=list(COLUMNS))
    return frame.astype(SCHEMA)


def validate_results(frame: pd.DataFrame) -> pd.DataFrame:
    """Check ``frame`` against the schema; return it (typed) or raise ResultsError naming the problem."""
    frame = _as_schema(_complete(frame, "results"), "results")

    def bad(mask, what):
        if mask.any():
            row = frame[mask].iloc[0]
            raise ResultsError(f"results: {what} (run {row['run_id']}, step {row['step']}; {int(mask.sum())} rows)")

    bad(frame.duplicated(["run_id", "step"]), "duplicate (run_id, step) rows")
    bad(~frame["arch"].isin(ARCHS), f"arch not one of {', '.join(ARCHS)}")
    for col in ("n_layer", "d_model", "n_head", "d_ffn", "params", "params_total", "seq_len", "batch_size", "step"):
        bad(frame[col] <= 0, f"{col} must be positive")
    bad(frame["tokens"] != frame["step"] * frame["batch_size"] * frame["seq_len"], "tokens != step x batch_size x seq_len")
    bad(~(frame["flops"] > 0), "flops must be positive")
    bad(~np.isclose(frame["pf_days"], frame["flops"] / PF_DAY, rtol=1e-9, atol=0), "pf_days != flops / 8.64e19")
    ok = ~frame["diverged"]
    bad(ok & ~np.isfinite(frame["train_loss"]), "train_loss is not finite on a row not marked diverged")
    bad(ok & ~np.isfinite(frame["val_loss"]), "val_loss is not finite on a row not marked diverged")
    bad(ok & ((frame["train_loss"] < 0) | (frame["val_loss"] < 0)), "negative loss")
    bad(frame["params_total"] < frame["params"], "params_total < params")
    for run_id, rows in frame.groupby("run_id", sort=False):
        if rows["diverged"].sum() > 1 or (rows["diverged"].any() and not rows.sort_values("step")["diverged"].iloc[-1]):
            raise ResultsError(f"results: run {run_id} has rows after its diverged row")
        if not rows.sort_values("step")["flops"].is_monotonic_increasing:
            raise ResultsError(f"results: run {run_id}: flops do not grow with step")
    return frame


def _as_schema(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    """``frame`` (holding every column) with the schema's types, or a ResultsError naming the column: pandas'
    astype alone cut a step of 1.5 to 1 and read any text, "False" too, as a diverged True."""
    for column, dtype in SCHEMA.items():
        values = frame[column]
        if dtype == "int64" and pd.api.types.is_float_dtype(values):
            fractions = values[values % 1 != 0].dropna()  # NaN is astype's to refuse
            if len(fractions):
                raise ResultsError(f"{where}: column {column!r} holds a fraction ({fractions.iloc[0]:g}); "
                                   "expected whole numbers")
        if dtype == "bool" and not pd.api.types.is_bool_dtype(values):
            flags = values[~values.isin([True, False])]
            if len(flags):
                raise ResultsError(f"{where}: column {column!r} holds {str(flags.iloc[0])!r}; expected True or False")
    try:
        return frame.astype(SCHEMA)
    except (ValueError, TypeError) as err:
        raise ResultsError(f"{where}: a column does not have the schema's type ({err})") from None


def _complete(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    """``frame`` with the columns later versions added (train_bayes_loss, which tables of linscale 0.1 did
    not record, as NaN), or a ResultsError naming the first column it lacks."""
    frame = frame if "train_bayes_loss" in frame.columns else frame.assign(train_bayes_loss=np.nan)
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise ResultsError(f"{where}: missing column {missing[0]!r} (expected {', '.join(COLUMNS)})")
    return frame


def read_results(path: str | os.PathLike) -> pd.DataFrame:
    """Read and validate a results table (``.parquet`` or ``.csv``)."""
    path = Path(path)
    if not path.is_file():
        raise ResultsError(f"{path}: results table does not exist")
    return validate_results(_read_table(path))


def _read_table(path: Path) -> pd.DataFrame:
    """The table at ``path`` as it is; a damaged file is one line (pyarrow's traceback before) saying how
    to get it back: every row is also in its run's records.json."""
    return read_table_file(path, "not a readable results table", "delete it and run the sweep again, which "
                           "rebuilds it from its runs' records.json", error=ResultsError)


def write_results(frame: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Validate and write ``frame`` to ``path`` (.parquet) and its .csv twin, each atomically."""
    path = Path(path)
    frame = validate_results(frame).sort_values(["run_id", "step"], kind="stable").reset_index(drop=True)
    atomic_write(path, lambda tmp: frame.to_parquet(tmp, index=False))
    atomic_write(path.with_suffix(".csv"), lambda tmp: frame.to_csv(tmp, index=False))
    return path


def upsert_runs(path: str | os.PathLike, runs: dict[str, list[dict]]) -> pd.DataFrame:
    """Replace the rows of each run in ``runs`` (run_id -> records) in the table at ``path``."""
    path = Path(path)
    old = _complete(_read_table(path), str(path)) if path.exists() else to_frame([])  # a linscale 0.1 table too
    kept = _as_schema(old[~old["run_id"].isin(list(runs))], str(path))
    new = [to_frame(records) for records in runs.values() if records]
    frame = pd.concat([kept, *new], ignore_index=True) if new else kept
    write_results(frame, path)
    return frame


def records_equal(a: pd.DataFrame, b: pd.DataFrame, ignore=("wall_time_s",), atol: float = 0.0) -> bool:
    """Same rows (by run_id, step) with equal values, ignoring ``ignore`` columns; NaN equals NaN."""
    cols = [c for c in COLUMNS if c not in ignore]
    a = a[cols].sort_values(["run_id", "step"]).reset_index(drop=True)
    b = b[cols].sort_values(["run_id", "step"]).reset_index(drop=True)
    if len(a) != len(b) or not (a[["run_id", "step"]].values == b[["run_id", "step"]].values).all():
        return False
    for col in cols:
        x, y = a[col].to_numpy(), b[col].to_numpy()
        if x.dtype.kind == "f":
            if not np.allclose(x, y, atol=atol, rtol=0, equal_nan=True):
                return False
        elif not (x == y).all():
            return False
    return True

