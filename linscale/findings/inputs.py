"""What the claims read from a results folder besides the tables themselves: the stored fits with the
design check's verdicts, and the loss the fits use (E + loss − Bayes loss of the same tokens)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def fit_settings(preset: str | dict, results_dir: str | Path | None = None):
    """The FitSettings the study's fits used: fits/settings.json of the results folder when it has one
    (a folder compared under another name than its preset's), else :func:`linscale.design.fit_settings`
    of the preset."""
    import json

    from linscale.laws.suite import FitSettings

    if results_dir is not None and isinstance(preset, str):
        from linscale.results import results_path

        stored = results_path(preset, results_dir) / "fits" / "settings.json"
        if stored.exists():
            values = json.loads(stored.read_text())
            known = {f for f in FitSettings.__dataclass_fields__}
            return FitSettings(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in known})
    from linscale.design import fit_settings as from_preset

    return from_preset(preset)


def with_fitted_loss(table: pd.DataFrame, preset: str | dict, results_dir: str | Path | None = None) -> pd.DataFrame:
    """``table`` with ``fitted_loss`` (what the suite fits: E + train loss − Bayes loss of the same
    tokens, where known) and ``excess``: the loss above what the language allows on the same tokens,
    comparable across languages of different entropy; on the held-out tokens (validation loss − their
    Bayes loss: thousands of tokens, where the training loss is one batch's) when the table has both,
    else on the training batch; NaN without a Bayes column."""
    from linscale.laws.suite import fitted_loss

    if not len(table):
        return table.assign(fitted_loss=pd.Series(dtype=float), excess=pd.Series(dtype=float))
    train = table["train_loss"] - (table["train_bayes_loss"] if "train_bayes_loss" in table else np.nan)
    held_out = table["val_loss"] - table["bayes_loss"] if {"val_loss", "bayes_loss"} <= set(table) else np.nan
    excess = pd.Series(held_out, index=table.index).where(lambda x: np.isfinite(x), train) \
        if isinstance(held_out, pd.Series) else train
    return table.assign(fitted_loss=fitted_loss(table, fit_settings(preset, results_dir)), excess=excess)


def fitted_window(runs: pd.DataFrame, preset: str | dict, results_dir: str | Path | None = None) -> pd.DataFrame:
    """The rows of the main grid the laws are fitted to (after twice the warmup, below the unigram
    entropy), with ``fitted_loss``."""
    from linscale.laws.suite import fit_window

    settings = fit_settings(preset, results_dir)
    window = fit_window(runs, settings.warmup_steps, settings.max_loss, settings.loss_column)
    return with_fitted_loss(window, preset, results_dir)


def size_order(runs: pd.DataFrame) -> list[str]:
    """The grid's size names, smallest first (by the median non-embedding parameters over the
    architectures): the order in which a size between two measured ones borrows their noise."""
    return runs.groupby(runs["size"].astype(str))["params"].median().sort_values().index.tolist()


def final_rows(table: pd.DataFrame) -> pd.DataFrame:
    """Each run's last row (a run of an ablation is its variant and run id)."""
    if not len(table):
        return table
    keys = [k for k in ("variant", "run_id") if k in table]
    return table.sort_values("step").groupby(keys, sort=False).tail(1).reset_index(drop=True)


def read_fit(preset: str, results_dir: str | Path, method: str):
    """A stored fit of the study (fits/<method>.csv and its .points/.draws/.diagnostics files) as a
    LawFit, or None when the study could not fit it (fits/status.csv says why)."""
    from linscale.laws.result import LawFit
    from linscale.results import results_path

    base = results_path(preset, results_dir) / "fits"
    params = base / f"{method}.csv"
    if not params.exists():
        return None
    optional = {name: base / f"{method}.{name}.parquet" for name in ("points", "draws")}
    diagnostics = base / f"{method}.diagnostics.csv"
    return LawFit(method=method, params=pd.read_csv(params),
                  points=pd.read_parquet(optional["points"]) if optional["points"].exists() else pd.DataFrame(),
                  diagnostics=pd.read_csv(diagnostics) if diagnostics.exists() else pd.DataFrame(),
                  draws=pd.read_parquet(optional["draws"]) if optional["draws"].exists() else pd.DataFrame())


def identified_archs(fit, law: str) -> dict:
    """{arch: (identified, reason)} for one law of a stored fit, from its ``identified``/``reason``
    columns (a fit without them, from before the design check, counts as identified)."""
    if fit is None:
        return {}
    rows = fit.params[fit.params["law"] == law]
    out = {}
    for arch, part in rows.groupby("group"):
        ok = bool(part["identified"].astype(bool).all()) if "identified" in part else True
        reasons = part["reason"].dropna().astype(str) if "reason" in part else pd.Series(dtype=str)
        out[arch] = (ok, "; ".join(dict.fromkeys(r for r in reasons if r and r != "nan")))
    return out


SUITE_METHODS = ("approach1", "approach1_excess", "approach2", "approach3", "approach3_fixed_e")


def stored_attempts(preset: str, results_dir: str | Path, methods=SUITE_METHODS) -> dict:
    """{method: FitAttempt} of the study's stored fits: the fit, or (from fits/status.csv) why it could
    not be made."""
    from linscale.findings.laws import FitAttempt

    status = read_fit_status(preset, results_dir)
    out = {}
    for method in methods:
        fit = read_fit(preset, results_dir, method)
        failed = status[(status["method"] == method) & (status["status"] == "failed")] if len(status) else status
        error = "; ".join(f"[{r.arch}]: {r.reason}" for r in failed.itertuples()) if len(failed) else ""
        out[method] = FitAttempt(fit, error if fit is None else "", note="" if fit is None or not error else
                                 f"not fitted {error}", method=method)
    return out


def narrowed(attempts: dict, archs) -> dict:
    """``attempts`` (:func:`stored_attempts`) with each fit's parameters, points, draws and diagnostics
    kept for ``archs`` only: what a chapter narrowed with its ``archs`` parameter shows in its tables,
    figures and sentences (it showed every architecture's Table 3 and exponents beside a text about one)."""
    import dataclasses

    from linscale.findings.laws import FitAttempt

    def keep(frame: pd.DataFrame) -> pd.DataFrame:
        return frame[frame["group"].isin(list(archs))].reset_index(drop=True) if "group" in frame else frame

    out = {}
    for method, attempt in attempts.items():
        fit = attempt.fit
        if fit is not None:
            fit = dataclasses.replace(fit, params=keep(fit.params), points=keep(fit.points),
                                      diagnostics=keep(fit.diagnostics), draws=keep(fit.draws))
        out[method] = FitAttempt(fit, attempt.error, attempt.note, attempt.method)
    return out


def read_fit_status(preset: str, results_dir: str | Path) -> pd.DataFrame:
    """fits/status.csv: per method and architecture, fitted / not identified / failed, with the reason."""
    from linscale.results import results_path

    path = results_path(preset, results_dir) / "fits" / "status.csv"
    return pd.read_csv(path).fillna({"reason": ""}) if path.exists() else \
        pd.DataFrame(columns=["method", "arch", "status", "reason"])


def read_fits_table(preset: str, results_dir: str | Path, name: str) -> pd.DataFrame | None:
    """One of the fits stage's tables (design, design_verdicts, crossovers, holdout), None if absent."""
    from linscale.results import results_path

    path = results_path(preset, results_dir) / "fits" / f"{name}.csv"
    return pd.read_csv(path) if path.exists() else None
