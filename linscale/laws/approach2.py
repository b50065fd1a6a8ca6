"""Chinchilla Approach 2: IsoFLOP profiles.

For each compute budget C_j, every run whose checkpoints span C_j gives one point (N, L) (loss and
tokens interpolated linearly in log–log space between checkpoints). A parabola in log N,

    L(N; C_j) ≈ c0 + c1·log N + c2·(log N)²,     log N*(C_j) = −c1 / (2·c2),

is fitted per budget (statsmodels OLS); D* comes from the budget's log D–log N line at N*, and
L* from the parabola at its vertex. Then, by OLS in log space,

    N_opt(C) = k_N·C^a,   D_opt(C) = k_D·C^b,   L(C) = β·C^α (of the minima).

Budgets whose parabola has no minimum (c2 ≤ 0) or whose vertex lies outside the sampled sizes are
excluded and listed in ``points`` with their reason.

Pitfalls (``fitting.md`` §4.6): the vertex of a parabola in log N is biased whenever α ≠ β, because
the true profile L − E ∝ e^{−α u} + (α/β)·e^{β u} (u = log N − log N*) is asymmetric; it is a
cosh, symmetric, when α = β. Its shape does not depend on C, so a grid centred on the optimum at
every budget shifts every vertex by the same factor: the exponent a is unbiased and only k_N is.
A grid centred on a fixed tokens-per-parameter guess drifts off-centre as C grows (when a ≠ 0.5)
and biases a as well. Measured on noise-free tables of Chinchilla's law (E, A, B = 1.69, 406.4,
410.7), 9 budgets over 1e18–1e22 FLOPs, 7 sizes per budget (13 for the wider grids), the guess
exact at 1e20 FLOPs (``simulate_isoflop``; ``tests/test_laws.py`` re-measures the ±2× rows):

| α, β        | grid          | relative error of a | relative error of N*(1e20) |
|-------------|---------------|---------------------|----------------------------|
| 0.34, 0.34  | ±2×, centred  | < 1e-12             | < 1e-12                    |
| 0.34, 0.36  | ±2×, centred  | < 1e-12             | −1.2e-3                    |
| 0.34, 0.28  | ±2×, centred  | < 1e-12             | +3.7e-3                    |
| 0.34, 0.28  | ±2×, D/N fixed | −6.2e-5            | +3.1e-3                    |
| 0.34, 0.28  | ±4×, D/N fixed | −4.8e-4            | +1.3e-2                    |
| 0.34, 0.28  | ±8×, D/N fixed | −1.2e-3            | +3.0e-2                    |

So on a ±2× grid the bias is far below the noise of any real sweep; it grows with the grid's width
and with how far off-centre it is; VPNLS (arXiv:2603.22339) avoids it.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from linscale.laws.approach1 import COMPUTE_UNITS, _curves
from linscale.laws.data import LawsInputError, groups, prepare_runs
from linscale.laws.powerlaw import fit_power_law
from linscale.laws.result import LawFit, concat

MIN_SIZES = 3  # a parabola needs three distinct sizes per budget
MIN_BUDGETS = 3


def default_budgets(frame: pd.DataFrame, n_budgets: int = 8, min_sizes: int = MIN_SIZES) -> np.ndarray:
    """``n_budgets`` log-spaced FLOP budgets within the range that at least ``min_sizes`` sizes span."""
    curves = list(_curves(frame))
    lo = min(c[2][0] for c in curves)
    hi = max(c[2][-1] for c in curves)
    candidates = np.linspace(lo, hi, 400)
    sizes = np.array([c[1] for c in curves])
    count = np.array([len(np.unique(sizes[[c[2][0] <= x <= c[2][-1] for c in curves]])) for x in candidates])
    ok = candidates[count >= min_sizes]
    if len(ok) == 0:
        raise LawsInputError(f"approach2: no compute budget is spanned by at least {min_sizes} model sizes")
    return np.exp(np.linspace(ok[0], ok[-1], n_budgets))


def isoflop_profiles(runs: pd.DataFrame, budgets=None, n_budgets: int = 8, window: float | None = None,
                     prepared: bool = False, **columns) -> pd.DataFrame:
    """Loss against N at each FLOP budget: one row per (budget, run spanning it).

    ``window``: keep only sizes within a factor ``window`` of the budget's lowest-loss size (None: all).
    Columns: budget (FLOPs), run_id, params, tokens, loss.
    """
    frame = runs if prepared else prepare_runs(runs, **columns)
    n_sizes = frame["params"].nunique()
    if n_sizes < MIN_SIZES:
        raise LawsInputError(f"approach2: needs at least {MIN_SIZES} model sizes (distinct params), the table has {n_sizes}")
    budgets = default_budgets(frame, n_budgets) if budgets is None else np.asarray(budgets, dtype=float)
    curves = list(_curves(frame))
    rows = []
    for budget in budgets:
        x = np.log(budget)
        for run_id, n, lc, ll, ld in curves:
            if lc[0] - 1e-9 <= x <= lc[-1] + 1e-9:  # tolerance: budgets at a run's ends survive exp/log
                rows.append(dict(budget=float(budget), run_id=run_id, params=n,
                                 tokens=float(np.exp(np.interp(x, lc, ld))), loss=float(np.exp(np.interp(x, lc, ll)))))
    profiles = pd.DataFrame(rows, columns=["budget", "run_id", "params", "tokens", "loss"])
    if window is not None:
        best = profiles.loc[profiles.groupby("budget")["loss"].idxmin(), ["budget", "params"]]
        profiles = profiles.merge(best.rename(columns={"params": "best"}), on="budget")
        keep = (profiles["params"] <= profiles["best"] * window) & (profiles["params"] >= profiles["best"] / window)
        profiles = profiles[keep].drop(columns="best").reset_index(drop=True)
    return profiles


def parabola_minimum(params, loss, tokens):
    """Vertex of L = c0 + c1·log N + c2·(log N)², with D* and L* there; (N*, D*, L*, status)."""
    import statsmodels.api as sm  # here, not at import (see powerlaw.fit_power_law)

    x = np.log(np.asarray(params, float))
    res = sm.OLS(np.asarray(loss, float), np.column_stack([np.ones_like(x), x, x * x])).fit()
    c0, c1, c2 = res.params
    if not c2 > 0:
        return np.nan, np.nan, np.nan, "no minimum (parabola not convex)", res
    xs = -c1 / (2 * c2)
    if not x.min() <= xs <= x.max():
        return np.nan, np.nan, np.nan, "minimum outside the sampled sizes", res
    line = np.polyfit(x, np.log(np.asarray(tokens, float)), 1)
    return float(np.exp(xs)), float(np.exp(np.polyval(line, xs))), float(c0 + c1 * xs + c2 * xs * xs), "ok", res


def _fit_group(frame, group, budgets, n_budgets, window, compute_unit, alpha):
    profiles = isoflop_profiles(frame, budgets, n_budgets, window, prepared=True)
    unit = COMPUTE_UNITS[compute_unit]
    minima, points = [], []
    for budget, prof in profiles.groupby("budget", sort=True):
        if prof["params"].nunique() < MIN_SIZES:
            minima.append(dict(budget=budget, status=f"fewer than {MIN_SIZES} sizes"))
            continue
        n_star, d_star, l_star, status, res = parabola_minimum(prof["params"], prof["loss"], prof["tokens"])
        minima.append(dict(budget=budget, params=n_star, tokens=d_star, loss=l_star, status=status,
                           n_sizes=prof["params"].nunique()))
        points.append(pd.DataFrame({"group": group, "law": "isoflop profile", "compute": budget / unit,
                                    "flops": budget, "run_id": prof["run_id"].to_numpy(),
                                    "params": prof["params"].to_numpy(), "observed": prof["loss"].to_numpy(),
                                    "fitted": res.fittedvalues,
                                    "log_residual": np.log(prof["loss"].to_numpy()) - np.log(res.fittedvalues)}))
    minima = pd.DataFrame(minima)
    ok = minima[minima["status"] == "ok"] if "status" in minima else minima.iloc[:0]
    if len(ok) < MIN_BUDGETS:
        reasons = "; ".join(f"{b:.3g} FLOPs: {s}" for b, s in zip(minima["budget"], minima["status"]) if s != "ok")
        raise LawsInputError(f"approach2 [{group}]: {len(ok)} of {len(minima)} compute budgets have an interior "
                             f"minimum, {MIN_BUDGETS} needed ({reasons or 'no budgets'})")
    rows = []
    compute = ok["budget"].to_numpy() / unit
    for law, column in (("L(C)", "loss"), ("N_opt(C)", "params"), ("D_opt(C)", "tokens")):
        law_rows, fitted = fit_power_law(compute, ok[column], law, group, compute_unit, alpha)
        rows += law_rows
        points.append(pd.DataFrame({"group": group, "law": law, "compute": compute, "flops": ok["budget"].to_numpy(),
                                    "observed": ok[column].to_numpy(), "fitted": fitted,
                                    "log_residual": np.log(ok[column].to_numpy()) - np.log(fitted)}))
    excluded = minima[minima["status"] != "ok"]
    diag = dict(group=group, n_runs=frame["run_id"].nunique(), n_sizes=frame["params"].nunique(),
                n_budgets=len(minima), n_budgets_used=len(ok),
                excluded="; ".join(f"{b:.3g}: {s}" for b, s in zip(excluded["budget"], excluded["status"])),
                compute_unit=compute_unit)
    return rows, pd.concat(points, ignore_index=True), diag


def fit_approach2(runs: pd.DataFrame, by: str | None = "arch", budgets=None, n_budgets: int = 8,
                  window: float | None = None, compute_unit: str = "pf_days", alpha: float = 0.05,
                  prepared: bool = False, **columns) -> LawFit:
    """IsoFLOP fit of N_opt(C), D_opt(C) and L(C) (of the profile minima) for each group.

    ``budgets``: FLOP budgets (default: ``n_budgets`` log-spaced where ≥ 3 sizes overlap).
    ``params`` and ``points`` as in approach 1; ``points`` also holds each budget's profile with its
    parabola. Errors if the table has fewer than 3 sizes or fewer than 3 budgets have a minimum.
    """
    if compute_unit not in COMPUTE_UNITS:
        raise LawsInputError(f"compute_unit: {compute_unit!r} is not one of {', '.join(COMPUTE_UNITS)}")
    frame = runs if prepared else prepare_runs(runs, **columns)
    parts = [_fit_group(sub, g, budgets, n_budgets, window, compute_unit, alpha) for g, sub in groups(frame, by)]
    return concat("approach2", parts)
