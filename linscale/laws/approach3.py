"""Chinchilla Approach 3: the parametric law L(N, D) = E + A/N^α + B/D^β.

Fitted exactly as Hoffmann et al. (arXiv:2203.15556, App. D.2) describe and Besiroglu et al.
(arXiv:2404.10102) corrected it: in log-loss space with the LogSumExp parameterisation that keeps
A, B, E positive,

    log L̂(N, D) = LSE(a − α·log N,  b − β·log D,  e),     A = e^a, B = e^b, E = e^e,

minimising the SUM over rows of Huber_δ(log L̂_i − log L_i), δ = 1e-3, with L-BFGS (scipy, analytic
gradient) from many starts, keeping the best: Chinchilla's 4500-point grid is ranked by the objective
at each start and L-BFGS runs from the best 256 (``n_refine``; None runs all 4500; on Besiroglu et
al.'s data both reach the same optimum, 1144 of the 4500 starts reach it). The compute-optimal allocation
under C = 6·N·D is N_opt = G·(C/6)^a, D_opt = G^−1·(C/6)^b with

    a = β/(α+β),   b = α/(α+β),   G = (αA/(βB))^(1/(α+β)).

Pitfalls (``fitting.md`` §2–4): use the sum, not the mean: with the mean the objective is ~1e-6 and
L-BFGS's tolerances stop it before convergence (the cause of Chinchilla's inconsistent estimates);
tolerances here are tightened as well and every start's convergence is recorded. With δ = 1e-3 and
log-loss residuals larger than that, Huber behaves like an L1 (median) fit. Intermediate checkpoints
of one run are correlated: bootstrap whole runs. Marginal intervals of (A, B, E, α, β) are wide and
strongly correlated; a, b are better determined. N is non-embedding in this project, so G and the
allocation exponents describe non-embedding parameters; C = 6ND is this law's own compute model,
not the Table 1 accounting.
"""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import scipy
from scipy.optimize import _lbfgsb, minimize
from threadpoolctl import threadpool_limits

from linscale.laws.data import LawsInputError, groups, prepare_runs
from linscale.laws.result import LawFit, concat

HUBER_DELTA = 1e-3
MIN_ROWS = 6  # five parameters
# Chinchilla's grid of initialisations (fitting.md §2): 5·5·5·6·6 = 4500 starts.
CHINCHILLA_GRID = dict(alpha=np.arange(0, 2.01, 0.5), beta=np.arange(0, 2.01, 0.5), e=np.arange(-1, 1.01, 0.5),
                       a=np.arange(0, 26, 5.0), b=np.arange(0, 26, 5.0))
# scipy stops when the objective's change is below ftol·max(|f|, 1): with the sum of Huber losses f is
# ~1e-3 here, so ftol = 1e-12 asks for ~1e-9 relative change (the default 2.2e-9 would be ~1e-6).
LBFGS_OPTIONS = dict(ftol=1e-12, gtol=1e-8, maxiter=1000)
# lbfgsb drives scipy's L-BFGS-B routine itself only on the scipy whose loop it copies (1.17, the one
# constraints.txt pins); any other scipy gets minimize, the same result more slowly.
DIRECT_LBFGSB = scipy.__version__.startswith("1.17.") and hasattr(_lbfgsb, "setulb")
N_REFINE = 256  # L-BFGS runs from this many best grid starts (None: from every start, as Chinchilla)
N_OPTIMA = 3  # distinct local optima kept (besides the best) to warm-start bootstrap refits
PARAMETERS = ("E", "A", "B", "alpha", "beta", "a", "b", "G")


def start_grid(alpha=None, beta=None, e=None, a=None, b=None) -> np.ndarray:
    """Starts (θ = a, b, e, α, β) as the Cartesian product of the given values (default: Chinchilla's)."""
    g = dict(CHINCHILLA_GRID)
    g.update({k: np.asarray(v, dtype=float) for k, v in dict(alpha=alpha, beta=beta, e=e, a=a, b=b).items()
              if v is not None})
    return np.array(list(itertools.product(g["a"], g["b"], g["e"], g["alpha"], g["beta"])), dtype=float)


def huber_objective(theta: np.ndarray, log_n: np.ndarray, log_d: np.ndarray, log_loss: np.ndarray,
                    weights: np.ndarray, delta: float = HUBER_DELTA):
    """Σ_i w_i·Huber_δ(LSE(a − α log N_i, b − β log D_i, e) − log L_i) and its gradient in θ.

    Huber_δ(r) = r²/2 for |r| ≤ δ, δ(|r| − δ/2) otherwise (scipy.special.huber's convention).
    """
    a, b, e, alpha, beta = theta
    t1 = a - alpha * log_n  # [rows]
    t2 = b - beta * log_d
    lse = np.logaddexp(np.logaddexp(t1, t2), e)
    r = lse - log_loss
    absr = np.abs(r)
    quad = absr <= delta
    loss = np.where(quad, 0.5 * r * r, delta * (absr - 0.5 * delta))
    psi = weights * np.where(quad, r, delta * np.sign(r))  # w·dHuber/dr
    s1 = psi * np.exp(t1 - lse)  # softmax weight of each term times psi
    s2 = psi * np.exp(t2 - lse)
    s3 = psi * np.exp(e - lse)
    grad = np.array([s1.sum(), s2.sum(), s3.sum(), -(s1 @ log_n), -(s2 @ log_d)])
    return float(weights @ loss), grad


def start_losses(starts: np.ndarray, log_n, log_d, log_loss, delta: float = HUBER_DELTA) -> np.ndarray:
    """Huber_δ of every row's residual at every start: [starts, rows]. A bootstrap resample only
    reweights the rows, so its objective at every start is this matrix times its weights: computed once
    per fit, not once per resample (the 4500-start grid made that most of a resample's time)."""
    a, b, e, alpha, beta = (starts[:, i:i + 1] for i in range(5))
    lse = np.logaddexp(np.logaddexp(a - alpha * log_n, b - beta * log_d), e)  # [starts, rows]
    absr = np.abs(lse - log_loss)
    return np.where(absr <= delta, 0.5 * absr**2, delta * (absr - 0.5 * delta))


def fix_irreducible(starts: np.ndarray, fixed_E: float | None) -> np.ndarray:
    """Starts with e = log ``fixed_E`` (duplicates merged); unchanged when ``fixed_E`` is None."""
    if fixed_E is None:
        return starts
    starts = np.array(starts, dtype=float)
    starts[:, 2] = np.log(fixed_E)
    _, first = np.unique(starts, axis=0, return_index=True)
    return starts[np.sort(first)]


def _bounds(fixed_E: float | None):
    """L-BFGS-B bounds: e pinned at log E when E is fixed (a variable with equal bounds stays put)."""
    if fixed_E is None:
        return None
    e = float(np.log(fixed_E))
    return [(None, None), (None, None), (e, e), (None, None), (None, None)]


def minimise(starts: np.ndarray, log_n, log_d, log_loss, weights=None, delta: float = HUBER_DELTA,
             fixed_E: float | None = None):
    """L-BFGS from every start; returns (best θ, best objective, outcomes [starts, 8]).

    Each outcome row: objective, success, iterations, then the end point θ (5 values). ``fixed_E``: the
    irreducible loss is known (the exact entropy of the synthetic language) and held there.
    """
    weights = np.ones_like(log_loss) if weights is None else np.asarray(weights, dtype=float)
    starts = fix_irreducible(np.atleast_2d(starts), fixed_E)
    bounds = _bounds(fixed_E)
    outcomes = []
    best_theta, best_f = None, np.inf
    # One BLAS thread: the vectors are tiny, and on a shared machine OpenBLAS's spinning threads made
    # each L-BFGS run ~30x slower.
    with threadpool_limits(limits=1, user_api="blas"):
        for x0 in starts:
            fun, success, nit, x = lbfgsb(huber_objective, x0, (log_n, log_d, log_loss, weights, delta), bounds)
            outcomes.append((fun, success, nit, *x))
            if np.isfinite(fun) and fun < best_f:
                best_theta, best_f = x, float(fun)
    if best_theta is None:
        raise LawsInputError("approach3: the optimiser found no finite objective from any start")
    return best_theta, best_f, np.array(outcomes, dtype=float)


def lbfgsb(fun_and_grad, x0, args=(), bounds=None, ftol=LBFGS_OPTIONS["ftol"], gtol=LBFGS_OPTIONS["gtol"],
           maxiter=LBFGS_OPTIONS["maxiter"], maxcor=10, maxls=20, maxfun=15000):
    """``scipy.optimize.minimize(fun_and_grad, x0, args, jac=True, method="L-BFGS-B", bounds=bounds,
    options=dict(ftol=ftol, gtol=gtol, maxiter=maxiter))``, the same iterates bit for bit, as
    (objective, success, iterations, x).

    The loop of scipy's ``_minimize_lbfgsb`` (scipy 1.17) around its L-BFGS-B routine ``setulb``, with the
    objective called directly: approach 3 runs L-BFGS from ~30 starts per bootstrap resample, and with 5
    parameters and ~100 rows scipy's wrappers (ScalarFunction, MemoizeJac, the result object) took about
    two thirds of each evaluation. ``setulb`` is scipy's private routine, so this runs only on scipy 1.17
    (``DIRECT_LBFGSB``; tests/test_laws.py checks it against ``minimize`` to the bit), and any other scipy
    gets ``minimize`` itself.
    """
    if not DIRECT_LBFGSB:
        res = minimize(fun_and_grad, x0, args=args, jac=True, method="L-BFGS-B", bounds=bounds,
                       options=dict(ftol=ftol, gtol=gtol, maxiter=maxiter, maxcor=maxcor, maxls=maxls, maxfun=maxfun))
        return float(res.fun), bool(res.success), int(res.nit), res.x
    x = np.array(np.asarray(x0, dtype=float).ravel(), dtype=np.float64)
    n = x.size
    low, high, kind = np.zeros(n, np.float64), np.zeros(n, np.float64), np.zeros(n, np.int32)
    if bounds is not None:  # (lower, upper) per variable, None for none; kind: 0 free, 1 lower, 2 both, 3 upper
        for i, (lo, hi) in enumerate(bounds):
            lo = -np.inf if lo is None else float(lo)
            hi = np.inf if hi is None else float(hi)
            x[i] = min(max(x[i], lo), hi)
            low[i], high[i] = (lo if np.isfinite(lo) else 0.0), (hi if np.isfinite(hi) else 0.0)
            kind[i] = {(True, True): 2, (True, False): 1, (False, True): 3}.get((np.isfinite(lo), np.isfinite(hi)), 0)
    # scipy evaluates once at the start, and then only where x has moved: the last evaluation is kept
    value, grad = fun_and_grad(x.copy(), *args)
    value, grad, at, nfev = float(value), np.atleast_1d(grad), x.copy(), 1
    f, g = np.array(0.0), np.zeros(n, np.float64)  # what setulb is first called with
    wa = np.zeros(2 * maxcor * n + 5 * n + 11 * maxcor * maxcor + 8 * maxcor, np.float64)
    iwa = np.zeros(3 * n, np.int32)
    task, ln_task, lsave = np.zeros(2, np.int32), np.zeros(2, np.int32), np.zeros(4, np.int32)
    isave, dsave = np.zeros(44, np.int32), np.zeros(29, np.float64)
    factr = ftol / np.finfo(float).eps
    iterations = 0
    while True:
        g = g.astype(np.float64)
        _lbfgsb.setulb(maxcor, x, low, high, kind, f, g, factr, gtol, wa, iwa, task, lsave, isave, dsave, maxls,
                       ln_task)
        if task[0] == 3:  # evaluate f and g at x
            if not np.array_equal(x, at):
                value, grad = fun_and_grad(x.copy(), *args)
                value, grad, at, nfev = float(value), np.atleast_1d(grad), x.copy(), nfev + 1
            f, g = value, grad
        elif task[0] == 1:  # a new iterate
            iterations += 1
            if iterations >= maxiter:
                task[0], task[1] = 5, 504
            elif nfev > maxfun:
                task[0], task[1] = 5, 502
        else:
            break
    return f, bool(task[0] == 4), iterations, x


def derived(theta: np.ndarray) -> dict:
    """E, A, B, α, β and the allocation a, b, G from θ = (a, b, e, α, β)."""
    la, lb, le, alpha, beta = (float(v) for v in theta)
    out = dict(E=np.exp(le), A=np.exp(la), B=np.exp(lb), alpha=alpha, beta=beta)
    s = alpha + beta
    out["a"] = beta / s if s != 0 else np.nan
    out["b"] = alpha / s if s != 0 else np.nan
    with np.errstate(all="ignore"):
        out["G"] = float(np.exp((np.log(alpha * out["A"]) - np.log(beta * out["B"])) / s)) if alpha > 0 and beta > 0 else np.nan
    return out


def predict_loss(theta_or_params, params, tokens) -> np.ndarray:
    """L(N, D) from θ (array) or from a dict with E, A, B, alpha, beta."""
    p = derived(theta_or_params) if not isinstance(theta_or_params, dict) else theta_or_params
    return p["E"] + p["A"] / np.asarray(params, float) ** p["alpha"] + p["B"] / np.asarray(tokens, float) ** p["beta"]


def _arrays(frame: pd.DataFrame):
    return np.log(frame["params"].to_numpy()), np.log(frame["tokens"].to_numpy()), np.log(frame["loss"].to_numpy())


def _check(frame: pd.DataFrame, group: str):
    if len(frame) < MIN_ROWS:
        raise LawsInputError(f"approach3 [{group}]: needs at least {MIN_ROWS} rows for 5 parameters, got {len(frame)}")
    if frame["params"].nunique() < 2 or frame["tokens"].nunique() < 2:
        raise LawsInputError(f"approach3 [{group}]: needs at least 2 distinct params and 2 distinct tokens values")
    corr = np.corrcoef(np.log(frame["params"]), np.log(frame["tokens"]))[0, 1]
    if abs(corr) > 0.999:
        raise LawsInputError(f"approach3 [{group}]: log params and log tokens are collinear (correlation {corr:.4f}, "
                             f"e.g. a fixed tokens-per-parameter ratio): L(N, D) cannot separate A/N^alpha from B/D^beta")


def _rows(group: str, theta: np.ndarray, reference_compute=()) -> list[dict]:
    """Tidy rows of E, A, B, α, β, a, b, G and, per reference compute C_ref (FLOPs), the
    compute-optimal N_opt, D_opt and tokens per parameter there (law "at C=<C_ref>")."""
    values = derived(theta)
    law = {"E": "L(N,D)", "A": "L(N,D)", "B": "L(N,D)", "alpha": "L(N,D)", "beta": "L(N,D)",
           "a": "N_opt(C)", "b": "D_opt(C)", "G": "N_opt(C)"}
    items = [(law[k], k, values[k]) for k in PARAMETERS]
    for c_ref in reference_compute:
        n_opt, d_opt = values["G"] * (c_ref / 6) ** values["a"], (c_ref / 6) ** values["b"] / values["G"]
        items += [(f"at C={c_ref:.3g}", "N_opt", n_opt), (f"at C={c_ref:.3g}", "D_opt", d_opt),
                  (f"at C={c_ref:.3g}", "tokens_per_param", d_opt / n_opt),
                  (f"at C={c_ref:.3g}", "loss", float(predict_loss(values, n_opt, d_opt)))]
    return [dict(group=group, law=lw, parameter=k, estimate=float(v), se=np.nan, ci_low=np.nan, ci_high=np.nan,
                 ci_method="none (run the bootstrap)", compute_unit="flops (C = 6ND)") for lw, k, v in items]


def screen(starts: np.ndarray, n_refine: int | None, log_n, log_d, log_loss, weights=None,
           delta: float = HUBER_DELTA, losses: np.ndarray | None = None) -> np.ndarray:
    """The ``n_refine`` starts with the lowest objective (all of them if None or fewer). ``losses``:
    :func:`start_losses` of these starts and rows, when already computed."""
    if n_refine is None or len(starts) <= n_refine:
        return starts
    weights = np.ones_like(log_loss) if weights is None else weights
    if losses is None:
        losses = start_losses(starts, log_n, log_d, log_loss, delta)
    f0 = losses @ weights
    return starts[np.argsort(f0, kind="stable")[:n_refine]]


def _fit_group(frame: pd.DataFrame, group: str, starts: np.ndarray, delta: float, n_refine: int | None = N_REFINE,
               reference_compute=(), fixed_E: float | None = None):
    _check(frame, group)
    log_n, log_d, log_loss = _arrays(frame)
    starts = fix_irreducible(starts, fixed_E)
    n_grid = len(starts)
    starts = screen(starts, n_refine, log_n, log_d, log_loss, delta=delta)
    theta, fun, outcomes = minimise(starts, log_n, log_d, log_loss, delta=delta, fixed_E=fixed_E)
    if not (theta[3] > 0 and theta[4] > 0):
        raise LawsInputError(f"approach3 [{group}]: degenerate optimum alpha = {theta[3]:.4g}, beta = {theta[4]:.4g} "
                             f"(both must be > 0 for a compute-optimal allocation); the table does not constrain the law")
    fitted = predict_loss(theta, frame["params"], frame["tokens"])
    points = pd.DataFrame({"group": group, "law": "L(N,D)", "run_id": frame["run_id"].to_numpy(),
                           "params": frame["params"].to_numpy(), "tokens": frame["tokens"].to_numpy(),
                           "flops": frame["flops"].to_numpy(), "observed": frame["loss"].to_numpy(),
                           "fitted": fitted, "log_residual": log_loss - np.log(fitted)})
    near = np.isclose(outcomes[:, 0], fun, rtol=1e-6, atol=1e-12)
    # Distinct local optima after the best: warm starts for the bootstrap's refits.
    order = np.argsort(outcomes[:, 0])
    _, first = np.unique(np.round(outcomes[order, 3:], 2), axis=0, return_index=True)
    optima = tuple(tuple(float(v) for v in outcomes[order[i], 3:]) for i in sorted(first)[1:1 + N_OPTIMA])
    diag = dict(group=group, n_runs=frame["run_id"].nunique(), n_rows=len(frame), n_grid=n_grid, n_starts=len(starts),
                objective=fun, huber_delta=delta, best_converged=bool(outcomes[np.argmin(outcomes[:, 0]), 1]),
                starts_converged=int(outcomes[:, 1].sum()), starts_at_best=int(near.sum()),
                mean_iterations=float(outcomes[:, 2].mean()),
                mae_log=float(np.mean(np.abs(points["log_residual"]))),
                theta=tuple(float(t) for t in theta), optima=optima, fixed_E=np.nan if fixed_E is None else fixed_E)
    return _rows(group, theta, reference_compute), points, diag


def fit_approach3(runs: pd.DataFrame, by: str | None = "arch", starts: np.ndarray | None = None,
                  n_refine: int | None = N_REFINE, delta: float = HUBER_DELTA, reference_compute=(),
                  fixed_E: float | None = None, prepared: bool = False, **columns) -> LawFit:
    """Fit L(N, D) = E + A/N^α + B/D^β to every row (run × checkpoint) of each group.

    ``starts``: θ = (a, b, e, α, β) rows, default ``start_grid()`` (Chinchilla's 4500). The objective
    is evaluated at every start and L-BFGS is run from the ``n_refine`` best (default 256; None runs
    it from all of them, as Chinchilla did: about 20x slower, same optimum on the tests' tables). ``params``
    rows: E, A, B, alpha, beta (law L(N,D)) and the allocation a, G (N_opt(C)), b (D_opt(C)); se/ci
    are filled in by ``bootstrap``. ``diagnostics``: objective, convergence of the best start, how
    many starts converged and reached the best objective, mean iterations, θ of the optimum.
    ``reference_compute``: FLOP budgets at which to also report N_opt, D_opt, D/N and the optimal
    loss (the quantities decisions depend on, with intervals once bootstrapped; ``fitting.md`` §5).
    ``fixed_E``: hold the irreducible loss at this value (the exact entropy rate of the synthetic
    language, when the fitted loss is measured on its tokens) and fit A, B, α, β only; the row E then
    carries that value with no interval.
    """
    if fixed_E is not None and not (np.isfinite(fixed_E) and fixed_E > 0):
        raise LawsInputError(f"fixed_E: expected a positive irreducible loss, got {fixed_E!r}")
    frame = runs if prepared else prepare_runs(runs, **columns)
    starts = start_grid() if starts is None else np.atleast_2d(np.asarray(starts, dtype=float))
    if starts.shape[1] != 5:
        raise LawsInputError(f"starts: expected rows of 5 values (a, b, e, alpha, beta), got shape {starts.shape}")
    reference_compute = tuple(float(c) for c in np.atleast_1d(reference_compute))
    parts = [_fit_group(sub, g, starts, delta, n_refine, reference_compute, fixed_E) for g, sub in groups(frame, by)]
    return concat("approach3", parts)
