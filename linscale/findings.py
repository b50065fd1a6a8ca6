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
