"""Pure power laws y = k·x^e fitted by ordinary least squares in log space (statsmodels).

    log y = log k + e·log x + ε

The paper's laws (L(C), N_opt(C), D_opt(C)) have no irreducible term, so they are linear in
log–log space. Standard errors and intervals are OLS-nominal: they assume independent residuals,
which envelope points (many per run) are not, so prefer the bootstrap over runs for intervals.
"""
from __future__ import annotations

import numpy as np

from linscale.laws.data import LawsInputError


def fit_power_law(x, y, law: str, group: str = "all", compute_unit: str = "", alpha: float = 0.05):
    """OLS of log y on log x. Returns (tidy parameter rows, fitted y) for law y = k·x^e.

    Rows: ``coefficient`` k (se by the delta method k·se(log k); interval exp of the log-k interval)
    and ``exponent`` e, each with R² of the log-space fit and the number of points.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if len(x) < 3:
        raise LawsInputError(f"{law} [{group}]: needs at least 3 points to fit a power law with errors, got {len(x)}")
    if np.ptp(np.log(x)) == 0:
        raise LawsInputError(f"{law} [{group}]: all points have the same x; cannot fit an exponent")
    import statsmodels.api as sm  # here, not at import: reading fitted laws (compare, the book) needs no fit

    design = sm.add_constant(np.log(x))
    res = sm.OLS(np.log(y), design).fit()
    ci = res.conf_int(alpha=alpha)
    log_k, e = res.params
    r2 = float(res.rsquared) if np.ptp(np.log(y)) > 0 else 1.0
    level = f"ols-t {int(round(100 * (1 - alpha)))}%"
    rows = [
        dict(group=group, law=law, parameter="coefficient", estimate=float(np.exp(log_k)),
             se=float(np.exp(log_k) * res.bse[0]), ci_low=float(np.exp(ci[0, 0])), ci_high=float(np.exp(ci[0, 1])),
             ci_method=level, r2=r2, n_points=len(x), compute_unit=compute_unit),
        dict(group=group, law=law, parameter="exponent", estimate=float(e), se=float(res.bse[1]),
             ci_low=float(ci[1, 0]), ci_high=float(ci[1, 1]), ci_method=level, r2=r2, n_points=len(x),
             compute_unit=compute_unit),
    ]
    return rows, np.exp(res.fittedvalues)
