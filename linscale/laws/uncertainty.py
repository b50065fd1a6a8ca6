"""Bootstrap over runs and the extrapolation (hold-out) check, for every method.

Bootstrap (``fitting.md`` §2, §4.8, §4.11): checkpoints of one run are correlated, so whole runs are
resampled with replacement, duplicates kept (a cluster bootstrap), each resample is refitted, and every
fitted quantity gets its bootstrap standard error and percentile interval. A run drawn twice counts
twice: approach 3 weights its rows by how often the run was drawn, approach 2's parabolas see its points
twice, approach 1's envelope is a minimum and cannot change (so its intervals come only from which runs
were drawn at all). Approach 3 repeats the multi-start search in every resample: the ``refine`` best
starts of the start grid under that resample's weights, plus the full fit's optimum and next-best local
optima, so a resample can leave the full-data optimum for an equally good one. With few runs the
resamples have few distinct outcomes (5 runs: about 3.3 distinct runs per resample); each interval
carries ``n_distinct``, the number of distinct values its resamples gave. Resamples that cannot be fitted
(e.g. too few sizes drawn) are counted in ``diagnostics.n_failed``; if more than half fail the bootstrap
raises.
"""
from __future__ import annotations

import zlib

import numpy as np
import pandas as pd

from linscale.laws import approach1, approach2, approach3
from linscale.laws.data import LawsInputError, groups, pop_prepare_kwargs, prepare_runs
from linscale.laws.result import LawFit

FITTERS = {"approach1": approach1.fit_approach1, "approach2": approach2.fit_approach2,
           "approach3": approach3.fit_approach3}
GROUP_FITTERS = {"approach1": approach1._fit_group, "approach2": approach2._fit_group}
GROUP_ARGS = {"approach1": ("n_grid", "compute_range", "compute_unit", "alpha", "irreducible"),
              "approach2": ("budgets", "n_budgets", "window", "compute_unit", "alpha")}
GROUP_DEFAULTS = {"n_grid": 1500, "compute_range": None, "compute_unit": "pf_days", "alpha": 0.05,
                  "budgets": None, "n_budgets": 8, "window": None, "irreducible": None}


def _method(method: str):
    if method not in FITTERS:
        raise LawsInputError(f"method: {method!r} is not one of {', '.join(FITTERS)}")
    return FITTERS[method]


def _warm_starts(diag) -> np.ndarray:
    """θ* (the full-data optimum) plus the full fit's next-best distinct local optima."""
    return np.vstack([np.array(diag["theta"])] + [np.array(o) for o in diag["optima"]])


def group_stream(group) -> int:
    """The random stream of one group's resamples, from its name: each architecture draws its own runs,
    whichever others are fitted with it. Streams by position ([seed, 0], [seed, 1], ...) gave every
    architecture fitted alone, as the study's suite fits them, stream 0: the same runs drawn in every
    resample for all four (same sizes, sorted alike), so a claim that pairs two architectures' draws by
    resample (a difference of their exponents) compared correlated draws (0.78-0.97) and read intervals far
    narrower than independent runs give."""
    return zlib.crc32(str(group).encode())


BOOTSTRAP_REFINE = 24  # approach 3: L-BFGS runs per resample from the best grid starts (besides the warm starts)


def resample_runs(sub: pd.DataFrame, run_ids: np.ndarray, drawn: np.ndarray) -> pd.DataFrame:
    """The rows of the drawn runs, a run drawn k times present k times (its copies renamed ``id#2``...)."""
    parts, seen = [], {}
    by_run = dict(tuple(sub.groupby("run_id", sort=False)))
    for i in drawn:
        run_id = run_ids[i]
        seen[run_id] = seen.get(run_id, 0) + 1
        part = by_run[run_id]
        parts.append(part if seen[run_id] == 1 else part.assign(run_id=f"{run_id}#{seen[run_id]}"))
    return pd.concat(parts, ignore_index=True)


def bootstrap(runs: pd.DataFrame, method: str = "approach3", n_resamples: int = 1000, seed: int = 0,
              ci: float = 0.95, by: str | None = "arch", prepared: bool = False,
              refine: int = BOOTSTRAP_REFINE, **kwargs) -> LawFit:
    """Fit ``method`` on all runs, then on ``n_resamples`` resamples of runs; seeded and reproducible.

    Returns the full-data LawFit with ``se`` (bootstrap standard deviation), ``ci_low``/``ci_high``
    (percentile interval at level ``ci``), ``ci_method`` and ``n_resamples`` (resamples that gave a
    value) and ``n_distinct`` (distinct values among them) filled in, and ``draws``: one row per
    (resample, group, law, parameter). ``refine``: approach 3's multi-start per resample (see the module
    docstring). ``kwargs`` go to the method's fit function (see ``fit_approach1/2/3``).
    """
    fitter = _method(method)
    if n_resamples < 2:
        raise LawsInputError(f"n_resamples: expected at least 2, got {n_resamples}")
    if not 0 < ci < 1:
        raise LawsInputError(f"ci: expected a level between 0 and 1, got {ci}")
    columns = pop_prepare_kwargs(kwargs)
    frame = runs if prepared else prepare_runs(runs, **columns)
    full = fitter(frame, by=by, prepared=True, **kwargs)
    draws, failures = [], {}
    for group, sub in groups(frame, by):
        rng = np.random.default_rng([seed, group_stream(group)])
        run_ids = np.array(sorted(sub["run_id"].unique()))
        n_runs = len(run_ids)
        failed, first_error = 0, ""
        if method == "approach3":
            diag = full.diagnostics[full.diagnostics["group"] == group].iloc[0]
            delta = kwargs.get("delta", approach3.HUBER_DELTA)
            fixed_E = kwargs.get("fixed_E")
            warm = _warm_starts(diag)
            grid = approach3.fix_irreducible(approach3.start_grid() if kwargs.get("starts") is None
                                             else np.atleast_2d(kwargs["starts"]), fixed_E)
            reference = tuple(float(c) for c in np.atleast_1d(kwargs.get("reference_compute", ())))
            log_n, log_d, log_loss = approach3._arrays(sub)
            losses = approach3.start_losses(grid, log_n, log_d, log_loss, delta)  # resamples only reweight rows
            codes = np.searchsorted(run_ids, sub["run_id"].to_numpy())
        for r in range(n_resamples):
            drawn = rng.integers(0, n_runs, n_runs)
            try:
                if method == "approach3":
                    weights = np.bincount(drawn, minlength=n_runs)[codes].astype(float)
                    if np.count_nonzero(weights) < approach3.MIN_ROWS:
                        raise LawsInputError("too few rows drawn")
                    starts = np.vstack([warm, approach3.screen(grid, refine, log_n, log_d, log_loss, weights, delta,
                                                                       losses)])
                    theta, _, _ = approach3.minimise(starts, log_n, log_d, log_loss, weights, delta, fixed_E=fixed_E)
                    rows = [dict(law=row["law"], parameter=row["parameter"], value=row["estimate"])
                            for row in approach3._rows(group, theta, reference)]
                else:
                    chosen = resample_runs(sub, run_ids, drawn)
                    args = [kwargs.get(k, GROUP_DEFAULTS[k]) for k in GROUP_ARGS[method]]
                    law_rows, _, _ = GROUP_FITTERS[method](chosen, group, *args)
                    rows = [dict(law=row["law"], parameter=row["parameter"], value=row["estimate"]) for row in law_rows]
            except LawsInputError as err:
                failed += 1
                first_error = first_error or str(err)
                continue
            draws += [dict(resample=r, group=group, **row) for row in rows]
        if failed > n_resamples / 2:
            raise LawsInputError(f"{method} [{group}]: {failed} of {n_resamples} bootstrap resamples of {n_runs} runs "
                                 f"could not be fitted (first: {first_error}); too few runs to bootstrap")
        failures[group] = failed
    draws = pd.DataFrame(draws, columns=["resample", "group", "law", "parameter", "value"])
    lo, hi = 100 * (1 - ci) / 2, 100 * (1 + ci) / 2
    summary = (draws.dropna(subset=["value"]).groupby(["group", "law", "parameter"])["value"]
               .agg(se="std", ci_low=lambda v: np.percentile(v, lo), ci_high=lambda v: np.percentile(v, hi),
                    n_resamples="count", n_distinct=lambda v: int(np.unique(np.round(v, 9)).size))
               .reset_index())
    params = full.params.drop(columns=["se", "ci_low", "ci_high"]).merge(summary, on=["group", "law", "parameter"],
                                                                          how="left")
    missing = params["se"].isna()
    if missing.any():
        row = params[missing].iloc[0]
        raise LawsInputError(f"{method} [{row['group']}]: no bootstrap resample gave a value for {row['law']}.{row['parameter']}")
    params["ci_method"] = f"bootstrap percentile {100 * ci:g}% over runs"
    params = params[[c for c in full.params.columns if c not in ("n_resamples", "n_distinct")]
                    + ["n_resamples", "n_distinct"]]
    diagnostics = full.diagnostics.copy()
    diagnostics["bootstrap_seed"] = seed
    diagnostics["bootstrap_resamples"] = n_resamples
    diagnostics["n_failed"] = diagnostics["group"].map(failures)
    return full.with_(params=params, diagnostics=diagnostics, draws=draws)


HOLDOUTS = ("largest_size", "top_decade")


def extrapolation_check(runs: pd.DataFrame, method: str = "approach3", holdout: str = "largest_size",
                        by: str | None = "arch", prepared: bool = False, **kwargs) -> LawFit:
    """Refit without the largest model size (or the top decade of compute) and predict what was left out.

    ``holdout="largest_size"`` holds out every row of the runs with the largest N; ``"top_decade"``
    every row with C above a tenth of the group's largest C. Approach 3 predicts each held-out row's
    loss from L(N, D); approaches 1 and 2 predict the held-out part of the loss envelope (of all runs)
    from their L(C). ``points``: observed, predicted and rel_error = predicted/observed − 1 per
    held-out point. ``params``: the refit's parameters plus law "held-out loss" with
    mean_abs_rel_error, max_abs_rel_error and mean_rel_error (bias) per group.
    """
    fitter = _method(method)
    if holdout not in HOLDOUTS:
        raise LawsInputError(f"holdout: {holdout!r} is not one of {', '.join(HOLDOUTS)}")
    columns = pop_prepare_kwargs(kwargs)
    frame = runs if prepared else prepare_runs(runs, **columns)
    fits, points, summaries, diags = [], [], [], []
    for group, sub in groups(frame, by):
        if holdout == "largest_size":
            held = sub["params"] == sub["params"].max()
        else:
            held = sub["flops"] > sub["flops"].max() / 10
        if held.all() or not held.any():
            raise LawsInputError(f"holdout [{group}]: {holdout} leaves nothing to {'fit' if held.all() else 'predict'}")
        train, test = sub[~held], sub[held]
        try:
            refit = fitter(train, by=None, prepared=True, **kwargs)
        except LawsInputError as err:
            raise LawsInputError(f"holdout [{group}]: refitting without the {holdout.replace('_', ' ')}: {err}") from None
        if method == "approach3":
            values = refit.params.set_index("parameter")["estimate"].to_dict()
            observed = test["loss"].to_numpy()
            predicted = approach3.predict_loss(values, test["params"], test["tokens"])
            pts = pd.DataFrame({"run_id": test["run_id"].to_numpy(), "params": test["params"].to_numpy(),
                                "tokens": test["tokens"].to_numpy(), "flops": test["flops"].to_numpy()})
        else:
            unit = kwargs.get("compute_unit", "pf_days")
            env = approach1.loss_envelope(sub, n_grid=kwargs.get("n_grid", 1500), compute_unit=unit, prepared=True)
            if holdout == "largest_size":
                env = env[env["run_id"].isin(test["run_id"].unique())]
            else:
                env = env[env["flops"] > sub["flops"].max() / 10]
            if len(env) == 0:
                raise LawsInputError(f"holdout [{group}]: the held-out runs are nowhere on the loss envelope")
            k, e = (refit.value("L(C)", p) for p in ("coefficient", "exponent"))
            observed = env["loss"].to_numpy()
            predicted = k * env["compute"].to_numpy() ** e
            pts = env[["run_id", "params", "tokens", "flops"]].reset_index(drop=True)
        pts.insert(0, "group", group)
        pts["observed"], pts["predicted"] = observed, predicted
        pts["rel_error"] = predicted / observed - 1
        points.append(pts)
        p = refit.params.copy()
        p["group"] = group
        fits.append(p)
        err = pts["rel_error"].to_numpy()
        for name, value in (("mean_abs_rel_error", np.mean(np.abs(err))), ("max_abs_rel_error", np.max(np.abs(err))),
                            ("mean_rel_error", np.mean(err))):
            summaries.append(dict(method=method, group=group, law="held-out loss", parameter=name, estimate=float(value),
                                  n_points=len(err), ci_method=f"holdout {holdout}"))
        d = refit.diagnostics.copy()
        d["group"], d["holdout"] = group, holdout
        d["n_train_rows"], d["n_test_rows"] = len(train), len(test)
        diags.append(d)
    params = pd.concat(fits + [pd.DataFrame(summaries)], ignore_index=True)
    points = pd.concat(points, ignore_index=True)
    points.insert(1, "holdout", holdout)
    return LawFit(method=method, params=params, points=points,
                  diagnostics=pd.concat(diags, ignore_index=True))


def fit(runs: pd.DataFrame, method: str = "approach1", bootstrap_resamples: int = 0, seed: int = 0,
        ci: float = 0.95, **kwargs) -> LawFit:
    """One entry point: ``method`` in approach1 | approach2 | approach3, with an optional bootstrap."""
    if bootstrap_resamples:
        return bootstrap(runs, method, n_resamples=bootstrap_resamples, seed=seed, ci=ci, **kwargs)
    return _method(method)(runs, **kwargs)
