"""Comparisons the book states as findings: each a pure function of the results tables or of the fits
(``linscale.laws``) returning a tidy DataFrame, so the prose can glue its numbers and the findings
chapter can put every claim of the paper beside the evidence.

Verdicts are one of ``reproduced``, ``not reproduced``, ``inconclusive`` (the evidence does not
separate the architectures: intervals overlap) and ``not testable`` (this study lacks the data, e.g. a
preset without the runs a claim needs).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

LINEAR = ("tnl", "hgrn2", "cosformer2")
REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_TESTABLE = "reproduced", "not reproduced", "inconclusive", "not testable"


def _env(fit) -> pd.DataFrame:
    points = fit.points[fit.points["law"] == "L(C)"].rename(columns={"group": "arch"})
    return points


def common_compute(fit) -> float:
    """The largest compute (PF-days) that every architecture's envelope reaches."""
    env = _env(fit)
    return float(env.groupby("arch")["compute"].max().min())


def envelope_at(fit, compute: float | None = None) -> pd.DataFrame:
    """Each architecture's envelope loss (interpolated in log-log) and fitted L(C) at one compute value
    (default: :func:`common_compute`), with the ratio to LLaMA's. Columns: arch, compute, envelope_loss,
    fitted_loss, vs_llama."""
    compute = common_compute(fit) if compute is None else float(compute)
    rows = []
    for arch, part in _env(fit).groupby("arch"):
        part = part.sort_values("compute")
        log_c = np.log(part["compute"].to_numpy())
        observed = float(np.exp(np.interp(np.log(compute), log_c, np.log(part["observed"].to_numpy()))))
        fitted = float(np.exp(np.interp(np.log(compute), log_c, np.log(part["fitted"].to_numpy()))))
        rows.append({"arch": arch, "compute": compute, "envelope_loss": observed, "fitted_loss": fitted})
    table = pd.DataFrame(rows)
    if "llama" in set(table["arch"]):
        llama = float(table.loc[table["arch"] == "llama", "envelope_loss"].iloc[0])
        table["vs_llama"] = table["envelope_loss"] / llama
    else:
        table["vs_llama"] = np.nan
    return table.sort_values("envelope_loss").reset_index(drop=True)


def compute_gap_decades(runs: pd.DataFrame, reference_preset: str = "paper") -> float:
    """How many decades of compute lie between our largest run and the cheapest run of a reference
    grid (the paper's 70M models on 300B tokens)."""
    from linscale.accounting import training_budget

    cheapest = float(training_budget(reference_preset)["pf_days"].min())
    return float(np.log10(cheapest / float(runs["pf_days"].max())))


# ----------------------------------------------------------------------------- fits


class FitAttempt:
    """A fit that may be impossible on a given grid (too few sizes, no interior IsoFLOP minimum, ...):
    ``fit`` is the LawFit or None, ``error`` the one-line reason (empty when the fit worked)."""

    def __init__(self, fit=None, error: str = ""):
        self.fit, self.error = fit, error

    @property
    def ok(self) -> bool:
        return self.fit is not None

    def __repr__(self) -> str:  # what a notebook cell shows
        return f"FitAttempt({self.fit.method} fitted)" if self.ok else f"FitAttempt(not possible: {self.error})"


def try_fit(runs: pd.DataFrame, method: str, bootstrap: int = 0, seed: int = 0, **kwargs) -> FitAttempt:
    """``linscale.laws.fit`` (with a bootstrap over runs when ``bootstrap`` ≥ 2), returning the reason
    instead of raising when the grid cannot support the method (``LawsInputError``)."""
    from linscale import laws

    try:
        return FitAttempt(laws.fit(runs, method, bootstrap_resamples=bootstrap if bootstrap >= 2 else 0,
                                   seed=seed, **kwargs))
    except laws.LawsInputError as err:
        return FitAttempt(None, str(err))


def try_extrapolation(runs: pd.DataFrame, method: str, holdout: str, **kwargs) -> FitAttempt:
    """``linscale.laws.extrapolation_check`` returning the reason instead of raising when impossible."""
    from linscale import laws

    try:
        return FitAttempt(laws.extrapolation_check(runs, method, holdout=holdout, **kwargs))
    except laws.LawsInputError as err:
        return FitAttempt(None, str(err))


def _fmt(value: float, digits: int = 4) -> str:
    if not np.isfinite(value):
        return "–"
    return f"{value:.{digits}g}" if abs(value) >= 1e4 or abs(value) < 1e-3 else f"{value:.{digits}f}"


def table3_side_by_side(comparison: pd.DataFrame) -> pd.DataFrame:
    """The paper's Table 3 beside ours: one row per architecture and law, columns paper's law, our law
    and our 95% intervals for the exponent and the coefficient (PF-days), and whether the paper's
    exponent lies inside our interval."""
    rows = []
    for (arch, law), part in comparison.groupby(["group", "law"], sort=False):
        part = part.set_index("parameter")
        k, e = part.loc["coefficient"], part.loc["exponent"]
        rows.append({
            "arch": arch, "law": law,
            "paper": f"{_fmt(k['paper'])} · C^{_fmt(e['paper'])}",
            "ours": f"{_fmt(k['estimate'])} · C^{_fmt(e['estimate'])}",
            "exponent 95% CI": f"[{_fmt(e['ci_low'])}, {_fmt(e['ci_high'])}]",
            "coefficient 95% CI": f"[{_fmt(k['ci_low'])}, {_fmt(k['ci_high'])}]",
            "paper exponent in CI": {True: "yes", False: "no"}.get(e["paper_in_ci"], "–"),
        })
    order = {a: i for i, a in enumerate(("llama", "tnl", "hgrn2", "cosformer2"))}
    laws_order = {"L(C)": 0, "N_opt(C)": 1, "D_opt(C)": 2}
    table = pd.DataFrame(rows)
    return table.sort_values(["arch", "law"], key=lambda c: c.map(order if c.name == "arch" else laws_order)) \
        .reset_index(drop=True)


def allocation_exponents(attempts: dict) -> pd.DataFrame:
    """The compute-optimal allocation N_opt ∝ C^a and D_opt ∝ C^b from each approach that could be
    fitted: one row per (method, arch) with a, b and their intervals. ``attempts``: {method: FitAttempt}."""
    rows = []
    for method, attempt in attempts.items():
        if not attempt.ok:
            continue
        params = attempt.fit.params
        for arch, part in params.groupby("group"):
            row = {"method": method, "arch": arch}
            for symbol, law, parameter in (("a", "N_opt(C)", "exponent" if method != "approach3" else "a"),
                                           ("b", "D_opt(C)", "exponent" if method != "approach3" else "b")):
                hit = part[(part["law"] == law) & (part["parameter"] == parameter)]
                if len(hit):
                    row[symbol] = float(hit["estimate"].iloc[0])
                    row[f"{symbol}_ci_low"] = float(hit["ci_low"].iloc[0])
                    row[f"{symbol}_ci_high"] = float(hit["ci_high"].iloc[0])
            rows.append(row)
    return pd.DataFrame(rows)


def irreducible_vs_bayes(fit3, bayes_loss: float) -> pd.DataFrame:
    """Approach 3's irreducible loss E per architecture (with its interval) beside the exact Bayes loss
    of the synthetic language: the fit's E should not fall below it. With ``fit3`` None (approach 3 not
    possible on the grid) the table is empty."""
    if fit3 is None:
        return pd.DataFrame(columns=["arch", "E", "ci_low", "ci_high", "bayes_loss", "E_minus_bayes", "bayes_in_ci"])
    e = fit3.params[(fit3.params["law"] == "L(N,D)") & (fit3.params["parameter"] == "E")]
    table = e.rename(columns={"group": "arch", "estimate": "E"})[["arch", "E", "ci_low", "ci_high"]].copy()
    table["bayes_loss"] = float(bayes_loss)
    table["E_minus_bayes"] = table["E"] - table["bayes_loss"]
    table["bayes_in_ci"] = (table["ci_low"] <= table["bayes_loss"]) & (table["bayes_loss"] <= table["ci_high"])
    return table.reset_index(drop=True)


def extrapolation_errors(check) -> pd.DataFrame:
    """Per architecture: mean and max absolute relative error of the held-out loss predictions, and the
    mean signed error (bias)."""
    p = check.params[check.params["law"] == "held-out loss"]
    return p.pivot(index="group", columns="parameter", values="estimate").reset_index().rename(
        columns={"group": "arch"})


def kernel_benchmarks(bench_dir: str = "benchmarks/results") -> pd.DataFrame:
    """The GPU kernel reports committed under ``bench_dir`` (``kernels-<date>-<gpu>-<host>.md``, written
    by ``benchmarks/bench_kernels.py``): one row per report with its file, date and title. Notes that are
    not measurements (no date in the name) are not listed."""
    import re
    from pathlib import Path

    rows = []
    for path in sorted(Path(bench_dir).glob("kernels-*.md")):
        match = re.match(r"kernels-(\d{4}-\d{2}-\d{2})", path.name)
        if not match:
            continue
        title = next((line[2:].strip() for line in path.read_text().splitlines() if line.startswith("# ")), "")
        rows.append({"file": str(path), "date": match.group(1), "title": title})
    return pd.DataFrame(rows, columns=["file", "date", "title"])


# ----------------------------------------------------------------------------- ablations


def read_ablation(preset: str, results_dir: str, name: str) -> pd.DataFrame:
    """An ablation sweep's results table (``results/<preset>/ablations/<name>.parquet``), or an empty
    table when the study ran without ablations."""
    from linscale.results import RUNS_COLUMNS, read_table, results_path

    path = results_path(preset, results_dir) / "ablations" / f"{name}.parquet"
    if not path.exists():
        return pd.DataFrame(columns=[*RUNS_COLUMNS, "ablation", "variant"])
    table = read_table(path, RUNS_COLUMNS)
    return table[~table["diverged"].astype(bool)].reset_index(drop=True)


def ablation_summary(table: pd.DataFrame, loss: str = "train_loss") -> pd.DataFrame:
    """One row per ablation run at its last checkpoint: arch, shape (l, d, d/l), N, training context,
    tokens and the final loss (column ``loss``)."""
    if not len(table):
        return pd.DataFrame(columns=["arch", "run_id", "n_layer", "d_model", "aspect", "params", "seq_len", "tokens",
                                     "loss"])
    last = table.sort_values("step").groupby(["variant", "run_id"], sort=False).tail(1).copy()
    last["aspect"] = last["d_model"] / last["n_layer"]
    last["loss"] = last[loss]
    return last[["arch", "run_id", "n_layer", "d_model", "aspect", "params", "seq_len", "tokens", "loss"]] \
        .sort_values(["arch", "aspect", "seq_len"]).reset_index(drop=True)


def loss_spread(summary: pd.DataFrame, by: str) -> pd.DataFrame:
    """Per architecture, how much the final loss moves across the ablation's settings (column ``by``):
    the best and worst loss, their settings, and the spread (worst/best − 1)."""
    rows = []
    for arch, part in summary.groupby("arch"):
        best, worst = part.loc[part["loss"].idxmin()], part.loc[part["loss"].idxmax()]
        rows.append({"arch": arch, "settings": int(len(part)), f"best_{by}": best[by], "best_loss": float(best["loss"]),
                     f"worst_{by}": worst[by], "worst_loss": float(worst["loss"]),
                     "spread": float(worst["loss"] / best["loss"] - 1)})
    return pd.DataFrame(rows)
