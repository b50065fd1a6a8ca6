"""The paper's method (Chinchilla Approach 1): power laws fitted on the lower envelope of loss over compute.

For each run, loss, tokens and compute are interpolated (linearly in log–log space) between its
checkpoints. On a grid of ``n_grid`` log-spaced compute values C_j, the envelope keeps the run with
the lowest loss among the runs whose checkpoints span C_j, recording (C_j, N, D, L). Then, by OLS in
log space (statsmodels),

    L(C)     = β·C^α        (the paper's Table 3 form: no irreducible term)
    N_opt(C) = k_N·C^a
    D_opt(C) = k_D·C^b

with C in PF-days (``compute_unit="pf_days"``, the paper's unit; 1 PF-day = 8.64e19 FLOPs) or FLOPs,
and N the non-embedding parameter count.

Pitfalls (``fitting.md`` §4): envelope points are not independent (hundreds of them come from a handful
of runs), so the OLS standard errors are far too small: use the bootstrap over runs. With one
constant-LR run per size (as in the paper) the envelope is made of un-annealed checkpoints. N_opt(C)
from a ladder of a few sizes is a step function, so its exponent rests on where the steps fall. Early
checkpoints are dominated by warm-up; restrict ``compute_range`` if they distort the fit. A pure power
law for L(C) curves away from the data as the loss approaches its irreducible value.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from linscale.flops import PF_DAY
from linscale.laws.data import LawsInputError, groups, prepare_runs
from linscale.laws.powerlaw import fit_power_law
from linscale.laws.result import LawFit, concat

COMPUTE_UNITS = {"pf_days": PF_DAY, "flops": 1.0}
MIN_RUNS = 2


def _curves(frame: pd.DataFrame):
    """Per run: sorted log C, log L, log D and N."""
    for run_id, run in frame.groupby("run_id", sort=True):
        run = run.sort_values("flops")
        yield run_id, float(run["params"].iloc[0]), np.log(run["flops"].to_numpy()), \
            np.log(run["loss"].to_numpy()), np.log(run["tokens"].to_numpy())


def loss_envelope(runs: pd.DataFrame, n_grid: int = 1500, compute_range: tuple[float, float] | None = None,
                  compute_unit: str = "pf_days", prepared: bool = False, **columns) -> pd.DataFrame:
    """The lower envelope of loss over compute across all runs and checkpoints of one group.

    Returns one row per grid point: ``compute`` (in ``compute_unit``), ``flops``, ``loss``, ``run_id``,
    ``params`` (N of the winning run) and ``tokens`` (its D at that compute). Runs with a single
    checkpoint take part at their own compute value.
    """
    if compute_unit not in COMPUTE_UNITS:
        raise LawsInputError(f"compute_unit: {compute_unit!r} is not one of {', '.join(COMPUTE_UNITS)}")
    frame = runs if prepared else prepare_runs(runs, **columns)
    curves = list(_curves(frame))
    if len(curves) < MIN_RUNS:
        raise LawsInputError(f"approach1: needs at least {MIN_RUNS} runs for an envelope, got {len(curves)}")
    lo = min(c[2][0] for c in curves)
    hi = max(c[2][-1] for c in curves)
    if compute_range is not None:
        unit = COMPUTE_UNITS[compute_unit]
        lo, hi = max(lo, np.log(compute_range[0] * unit)), min(hi, np.log(compute_range[1] * unit))
        if not lo < hi:
            raise LawsInputError(f"compute_range: {compute_range} does not overlap the runs' compute")
    grid = np.linspace(lo, hi, n_grid)
    singles = [c[2][0] for c in curves if len(c[2]) == 1 and lo <= c[2][0] <= hi]
    grid = np.unique(np.concatenate([grid, singles]))
    log_loss = np.full((len(curves), len(grid)), np.inf)
    log_tokens = np.zeros_like(log_loss)
    for i, (_, _, lc, ll, ld) in enumerate(curves):
        inside = (grid >= lc[0]) & (grid <= lc[-1])
        log_loss[i, inside] = np.interp(grid[inside], lc, ll)
        log_tokens[i, inside] = np.interp(grid[inside], lc, ld)
    covered = np.isfinite(log_loss).any(axis=0)  # gaps between runs' compute ranges have no envelope
    grid, log_loss, log_tokens = grid[covered], log_loss[:, covered], log_tokens[:, covered]
    best = np.argmin(log_loss, axis=0)
    cols = np.arange(len(grid))
    flops = np.exp(grid)
    return pd.DataFrame({
        "compute": flops / COMPUTE_UNITS[compute_unit],
        "flops": flops,
        "loss": np.exp(log_loss[best, cols]),
        "run_id": [curves[b][0] for b in best],
        "params": [curves[b][1] for b in best],
        "tokens": np.exp(log_tokens[best, cols]),
    })


def _fit_group(frame: pd.DataFrame, group: str, n_grid: int, compute_range, compute_unit: str, alpha: float,
               irreducible: float | None = None):
    env = loss_envelope(frame, n_grid=n_grid, compute_range=compute_range, compute_unit=compute_unit, prepared=True)
    rows, points = [], []
    for law, column in (("L(C)", "loss"), ("N_opt(C)", "params"), ("D_opt(C)", "tokens")):
        observed = env[column]
        if law == "L(C)" and irreducible is not None:  # the reducible loss L − E as a power law of C
            law, observed = "L(C)-E", env["loss"] - irreducible
            if not (observed > 0).all():
                raise LawsInputError(f"approach1 [{group}]: the envelope reaches {env['loss'].min():.4g}, not above "
                                     f"the irreducible loss {irreducible:.4g}; L(C) − E cannot be a power law")
        law_rows, fitted = fit_power_law(env["compute"], observed, law, group, compute_unit, alpha)
        rows += law_rows
        points.append(pd.DataFrame({"group": group, "law": law, "compute": env["compute"], "flops": env["flops"],
                                    "run_id": env["run_id"], "observed": observed, "fitted": fitted,
                                    "log_residual": np.log(observed) - np.log(fitted)}))
    diag = dict(group=group, n_runs=frame["run_id"].nunique(), n_rows=len(frame), n_envelope=len(env),
                n_envelope_runs=env["run_id"].nunique(), compute_min=float(env["compute"].min()),
                compute_max=float(env["compute"].max()), compute_unit=compute_unit)
    return rows, pd.concat(points, ignore_index=True), diag


def fit_approach1(runs: pd.DataFrame, by: str | None = "arch", n_grid: int = 1500,
                  compute_range: tuple[float, float] | None = None, compute_unit: str = "pf_days",
                  alpha: float = 0.05, irreducible: float | None = None, prepared: bool = False,
                  **columns) -> LawFit:
    """Fit L(C), N_opt(C) and D_opt(C) on the loss envelope of each group (``by``, e.g. architecture).

    ``params`` rows: law in {L(C), N_opt(C), D_opt(C)}, parameter in {coefficient, exponent}, with
    OLS-nominal se/ci (``ci_method`` says so), R² and the number of envelope points. ``points``: the
    envelope with fitted values and log residuals per law. ``columns``: see ``prepare_runs``.
    ``irreducible``: a known irreducible loss E; the loss law is then L(C) − E = β·C^α (law "L(C)-E"),
    which a pure power law can follow down to E, where L(C) itself must bend (Pearce & Song fit it so).
    """
    if compute_unit not in COMPUTE_UNITS:
        raise LawsInputError(f"compute_unit: {compute_unit!r} is not one of {', '.join(COMPUTE_UNITS)}")
    frame = runs if prepared else prepare_runs(runs, **columns)
    parts = [_fit_group(sub, g, n_grid, compute_range, compute_unit, alpha, irreducible) for g, sub in groups(frame, by)]
    return concat("approach1", parts)
