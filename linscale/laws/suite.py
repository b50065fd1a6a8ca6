"""The study's fits, as one function: which rows are fitted, which laws, with which options.

The study (``linscale study``'s fits stage), the book and the design check (``linscale.design``) all
call :func:`fit_suite`, so the laws a simulated grid is checked with are exactly the laws the study
reports. The suite:

====================  ============================================================================
``approach1``         the paper's method: L(C) = β·C^α, N_opt(C), D_opt(C) on the loss envelope
``approach1_excess``  the same envelope, loss law L(C) − E = β·C^α with E the exact entropy rate
``approach2``         IsoFLOP parabolas: N_opt(C), D_opt(C), L(C) of the profile minima
``approach3``         L(N, D) = E + A/N^α + B/D^β, every parameter free
``approach3_fixed_e`` the same with E held at the exact entropy rate of the language
====================  ============================================================================

Every method is fitted per architecture on its own: one architecture's failure (no interior IsoFLOP
minimum, say) never drops another's fit, and the reason names the architecture. Approach 1's envelopes
are fitted inside the compute every architecture's runs span (``FitSettings.compute_range``, set by the
study and the design check from :func:`common_compute_range`), so that architectures are compared over
the same FLOPs. Methods that need the
exact entropy rate are skipped (with that reason) when it is unknown (real text).

The loss fitted (:func:`fitted_loss`): on the synthetic language every token's exact Bayes loss is known,
so the study fits E + (loss − Bayes loss of the same tokens), the loss with the sampling noise of its
batches (or of the held-out sample) taken out. It has the same expectation as the loss itself, since the
Bayes loss of tokens drawn from the language averages to its exact entropy rate E; on real text, or
with ``corrected=False``, the loss itself is fitted.

Rows fitted (:func:`fit_window`): checkpoints after warmup (a constant-LR run's first steps measure the
warmup, not the model: the first cpu grid's first four checkpoints sat inside a 50-step warmup at
losses near log(vocabulary) and set the L(C) exponent), and below the unigram entropy (a model above
it has not yet learnt the token frequencies, the first thing any model learns).

Processes (``jobs``): the methods, and each method's architectures, are independent, so :func:`fit_suite`
(and :func:`fit_study`, which adds the hold-out check) fits them in a pool of processes, one method and
architecture per task, the longest first. Every task
runs with one BLAS thread whether it runs in a worker or in the caller (``jobs=1``), so both give the same
bits. The pool uses the ``spawn`` start method: a script that calls these functions with ``jobs`` other
than 1 needs the usual ``if __name__ == "__main__":`` guard.
"""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from linscale.laws.data import LawsInputError
from linscale.laws.result import LawFit, concat_fits
from linscale.processes import end_with_parent, release_pool_pipes

SUITE = ("approach1", "approach1_excess", "approach2", "approach3", "approach3_fixed_e")
NEEDS_ENTROPY = ("approach1_excess", "approach3_fixed_e")
WARMUP_FACTOR = 2  # rows at or before this many warmup lengths are not fitted


@dataclass(frozen=True)
class FitSettings:
    """What the suite fits and how. ``entropy``: the exact entropy rate E of the training language
    (nats/token; None for real text); ``max_loss``: rows at or above it are not fitted (the unigram
    entropy); ``warmup_steps``: rows at or before ``WARMUP_FACTOR`` times it are not fitted;
    ``bootstrap``: resamples over runs for the intervals (0: none); ``loss_column``: train_loss (the
    paper's) or val_loss; ``n_refine``: approach 3's L-BFGS starts; ``compute_range``: the FLOPs approach
    1's envelopes are fitted in (None: each architecture's own)."""

    entropy: float | None = None
    max_loss: float | None = None
    warmup_steps: int = 0
    bootstrap: int = 0
    seed: int = 0
    loss_column: str = "train_loss"
    n_refine: int = 64
    bootstrap_refine: int = 8
    methods: tuple = SUITE
    corrected: bool = True  # fit E + loss − Bayes loss of the same tokens where both are known
    # approach 1's envelopes are fitted inside these FLOPs (low, high) only: the range every architecture's
    # runs span (common_compute_range), so that their loss exponents are slopes over the same compute
    compute_range: tuple | None = None


@dataclass
class MethodFit:
    """One method over all architectures: ``fit`` holds the architectures that could be fitted (None if
    none could), ``errors`` the one-line reason for each that could not, ``note`` what was given up (the
    intervals, when the bootstrap was impossible)."""

    method: str
    fit: LawFit | None = None
    errors: dict = field(default_factory=dict)
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.fit is not None

    @property
    def error(self) -> str:
        """All reasons in one line ("" when every architecture was fitted)."""
        return "; ".join(f"{arch}: {reason}" for arch, reason in self.errors.items())

    def describe(self) -> str:
        """A sentence for the book: what was fitted and what was not, and why."""
        if not self.errors:
            return f"{self.method}: fitted for every architecture" + (f" ({self.note})" if self.note else "")
        done = sorted(self.fit.params["group"].unique()) if self.ok else []
        text = f"{self.method}: " + (f"fitted for {', '.join(done)}; " if done else "")
        return text + "not fitted for " + "; ".join(f"{arch} ({reason})" for arch, reason in self.errors.items())


BAYES_COLUMNS = {"train_loss": "train_bayes_loss", "val_loss": "bayes_loss"}
FITTED = "fitted_loss"


def fitted_loss(runs: pd.DataFrame, settings: FitSettings) -> pd.Series:
    """The loss the suite fits (see the module docstring): E + loss − Bayes loss of the same tokens when
    ``settings.corrected``, the entropy E is known and the table has the Bayes loss for every row; else
    the loss column itself."""
    loss = runs[settings.loss_column]
    bayes = BAYES_COLUMNS.get(settings.loss_column)
    if (settings.corrected and settings.entropy is not None and bayes in runs
            and np.isfinite(runs[bayes].to_numpy(dtype=float)).all()):
        return loss - runs[bayes] + settings.entropy
    return loss


def fit_window(runs: pd.DataFrame, warmup_steps: int = 0, max_loss: float | None = None,
               loss_column: str = "train_loss") -> pd.DataFrame:
    """The rows the laws are fitted to (see the module docstring): after ``WARMUP_FACTOR`` × warmup
    steps and, when ``max_loss`` is given, with the loss below it; diverged rows dropped."""
    keep = pd.Series(True, index=runs.index)
    if "diverged" in runs:
        keep &= ~runs["diverged"].astype(bool)
    if warmup_steps and "step" in runs:
        keep &= runs["step"] > WARMUP_FACTOR * warmup_steps
    if max_loss is not None:
        keep &= runs[loss_column] < max_loss
    return runs[keep]


def common_compute_range(runs: pd.DataFrame, warmup_steps: int = 0) -> tuple[float, float] | None:
    """The FLOPs that every architecture's runs span after warmup (:func:`fit_window`, without the loss
    bound, so that a grid without losses gives the same range as its trained table): from the largest of
    their first checkpoints to the smallest of their last. A pure power law L(C) bends over a curved
    envelope, so its exponent depends on the range it is fitted over; LLaMA's smallest run costs more
    FLOPs per token than a linear model's and starts its envelope later (2.6x on the cpu grid), and
    exponents fitted over different ranges differed by as much as the equivalence margin for that alone.
    None with fewer than two architectures, or when their spans do not overlap."""
    rows = fit_window(runs, warmup_steps)
    if "arch" not in rows or rows["arch"].nunique() < 2:
        return None
    spans = rows.groupby("arch")["flops"].agg(["min", "max"])
    low, high = float(spans["min"].max()), float(spans["max"].min())
    return (low, high) if low < high else None


def _fit_one(runs: pd.DataFrame, method: str, settings: FitSettings) -> LawFit:
    from linscale import laws
    from linscale.laws.approach1 import COMPUTE_UNITS

    kwargs = dict(loss_column=FITTED if FITTED in runs else settings.loss_column)
    base = method.removesuffix("_excess").removesuffix("_fixed_e")
    if base == "approach1" and settings.compute_range is not None:
        kwargs["compute_range"] = tuple(c / COMPUTE_UNITS["pf_days"] for c in settings.compute_range)
    if method == "approach1_excess":
        kwargs["irreducible"] = settings.entropy
    if base == "approach3":
        kwargs["n_refine"] = settings.n_refine
        if method == "approach3_fixed_e":
            kwargs["fixed_E"] = settings.entropy
    if settings.bootstrap >= 2:
        if base == "approach3":
            kwargs["refine"] = settings.bootstrap_refine
        return laws.bootstrap(runs, base, n_resamples=settings.bootstrap, seed=settings.seed, **kwargs)
    return laws.fit(runs, base, **kwargs)


def fit_method(runs: pd.DataFrame, method: str, settings: FitSettings) -> MethodFit:
    """One method of the suite for every architecture of ``runs`` (already windowed), each on its own."""
    _check_method(method)
    if method in NEEDS_ENTROPY and settings.entropy is None:
        return _method_fit(method, {}, settings)
    return _method_fit(method, {arch: _fit_arch(part, method, settings)
                                for arch, part in runs.groupby("arch", sort=True)}, settings)


def _check_method(method: str) -> None:
    if method not in SUITE:
        raise LawsInputError(f"method: {method!r} is not one of {', '.join(SUITE)}")


def _fit_arch(part: pd.DataFrame, method: str, settings: FitSettings) -> tuple[LawFit | None, str, str]:
    """One architecture's fit by ``method``: (its LawFit or None, why not ("" when fitted), a note on what
    was given up: the intervals, when its bootstrap was impossible)."""
    arch = str(part["arch"].iloc[0])
    try:
        try:
            return _fit_one(part, method, settings), "", ""
        except LawsInputError as err:
            if settings.bootstrap < 2:
                raise
            no_bootstrap = FitSettings(**{**settings.__dict__, "bootstrap": 0})
            return _fit_one(part, method, no_bootstrap), "", f"no bootstrap intervals: {err}"
    except LawsInputError as err:
        return None, str(err).replace(f" [{arch}]", ""), ""


def _method_fit(method: str, outcomes: dict, settings: FitSettings) -> MethodFit:
    """The MethodFit of ``method`` from {arch: :func:`_fit_arch` outcome}, in architecture order."""
    result = MethodFit(method)
    if method in NEEDS_ENTROPY and settings.entropy is None:
        result.errors = {"all": "needs the exact entropy rate of the language (unknown for real text)"}
        return result
    fits, notes = [], set()
    for arch, (fit, error, note) in sorted(outcomes.items()):
        if fit is None:
            result.errors[str(arch)] = error
            continue
        fits.append(fit)
        if note:
            notes.add(note)
    if fits:
        fit = concat_fits(fits)
        params, diagnostics = fit.params.copy(), fit.diagnostics.copy()
        params["method"] = diagnostics["method"] = method  # approach3_fixed_e, not its base approach3
        result.fit = fit.with_(method=method, params=params, diagnostics=diagnostics)
    result.note = "; ".join(sorted(notes))
    return result


HOLDOUT = "holdout"  # fit_study's extra task: holdout_check on the same window
# Seconds each method took (all four architectures) on the committed cpu table (results/cpu/runs.parquet,
# fit_settings("cpu", bootstrap=200), one process of two shared cores): approach1 18.8, approach1_excess
# 19.4, approach2 44.5, holdout 14.6, and approach 3 since it drives L-BFGS-B directly (approach3.lbfgsb)
# 196.8, approach3_fixed_e 82.6 (before: 271.8 and 132.7). The pool gets one task per method and
# architecture (about a quarter of these each), the longest first (unknown tasks last): as one task per
# method, approach 3 alone set the stage's length, its 272 s against 230 s for all the rest.
TASK_SECONDS = {"approach3": 196.8, "approach3_fixed_e": 82.6, "approach2": 44.5, "approach1_excess": 19.4,
                "approach1": 18.8, HOLDOUT: 14.6}


def fit_suite(runs: pd.DataFrame, settings: FitSettings, jobs: int | None = None) -> dict[str, MethodFit]:
    """Every method of ``settings.methods`` on the windowed rows of ``runs``: {method: MethodFit}, in
    ``settings.methods`` order. ``jobs``: processes (default: one per method, at most one per core);
    1 fits them one after another in this process. The result is the same, bit for bit, for every ``jobs``."""
    return _run_tasks(windowed(runs, settings), settings, tuple(settings.methods), jobs)


def fit_study(runs: pd.DataFrame, settings: FitSettings, jobs: int | None = None) -> tuple[dict[str, MethodFit], pd.DataFrame]:
    """What the study's fits stage computes: :func:`fit_suite` and :func:`holdout_check` of the same rows,
    all in one pool of ``jobs`` processes (default: one per task, at most one per core).
    Returns ({method: MethodFit}, the hold-out table)."""
    results = _run_tasks(windowed(runs, settings), settings, (*settings.methods, HOLDOUT), jobs)
    return results, results.pop(HOLDOUT)


def windowed(runs: pd.DataFrame, settings: FitSettings) -> pd.DataFrame:
    """The rows every fit reads (:func:`fit_window`), with the loss they fit (:func:`fitted_loss`)."""
    unknown = [m for m in settings.methods if m not in SUITE]
    if unknown:  # before any fit or process starts
        raise LawsInputError(f"method: {unknown[0]!r} is not one of {', '.join(SUITE)}")
    window = fit_window(runs, settings.warmup_steps, settings.max_loss, settings.loss_column)
    if len(window) == 0:  # said in the preset's terms: the fields that move the window
        in_warmup = int((runs["step"] <= WARMUP_FACTOR * settings.warmup_steps).sum()) if "step" in runs else 0
        above = int((runs[settings.loss_column] >= settings.max_loss).sum()) if settings.max_loss is not None else 0
        raise LawsInputError(
            f"fit window: none of the {len(runs)} records is fitted: {in_warmup} lie within {WARMUP_FACTOR:g} x "
            f"train.warmup_steps ({settings.warmup_steps}) and {above} have a loss above the language's unigram "
            f"entropy ({settings.max_loss if settings.max_loss is None else round(settings.max_loss, 3)} nats); "
            f"train longer (train.tokens){' or warm up for fewer steps' if in_warmup else ''}")
    return window.assign(**{FITTED: fitted_loss(window, settings)})


def _run_task(part: pd.DataFrame, settings: FitSettings, task: tuple):
    """One task: (``HOLDOUT``, None) on the whole window, or (method, arch) on that architecture's rows;
    in a worker or in the caller. One BLAS thread in both: a
    multithreaded BLAS may split a product's sums differently (approach 3's screening of the start grid
    is a 4500-row matrix-vector product; approach 1/2's least squares call LAPACK), and OpenBLAS's default
    is one thread per core, so a worker and the caller could differ in the last bits; the arrays are small,
    so one thread costs nothing (and OpenBLAS's spinning threads on a shared machine cost a lot, see
    approach3.minimise). The BLAS libraries (numpy's and scipy's) are loaded by then: importing this
    module imports linscale.laws, and threadpoolctl limits only the libraries already loaded."""
    method, _ = task
    with threadpool_limits(limits=1, user_api="blas"):
        if method == HOLDOUT:
            return holdout_check(part, settings)
        return _fit_arch(part, method, settings)


def _label(task: tuple) -> str:
    method, arch = task
    return method if arch is None else f"{method} [{arch}]"


def _run_tasks(window: pd.DataFrame, settings: FitSettings, tasks: tuple, jobs: int | None) -> dict:
    """{task: result} in ``tasks`` order (methods, or ``HOLDOUT``), from ``jobs`` processes (1: here, one
    after another). A method is fitted as one task per architecture (the architectures' fits are
    independent: the pool can balance them), reassembled into its MethodFit as :func:`fit_method` would.
    An exception in a task is raised here as it is (a fit's LawsInputError per architecture is already in
    its MethodFit.errors), with a note naming the task; the other tasks are stopped."""
    if jobs is not None and jobs < 0:
        raise LawsInputError(f"jobs: expected a number of processes (None or 0: the default), got {jobs}")
    archs = sorted(window["arch"].unique())
    units = []
    for task in tasks:
        if task == HOLDOUT:
            units.append((HOLDOUT, None))
        elif not (task in NEEDS_ENTROPY and settings.entropy is None):  # else no fit: _method_fit says why
            units += [(task, arch) for arch in archs]
    parts = {arch: part for arch, part in window.groupby("arch", sort=True)}

    def rows(unit):
        return window if unit[0] == HOLDOUT else parts[unit[1]]

    jobs = min(jobs or os.cpu_count() or 1, max(1, len(units)))
    results = {}
    if jobs <= 1:
        for unit in units:
            try:
                results[unit] = _run_task(rows(unit), settings, unit)
            except Exception as err:
                err.add_note(f"fits: raised by {_label(unit)}")
                raise
    else:
        results = _run_in_pool(units, rows, settings, jobs, len(archs))
    out = {}
    for task in tasks:
        if task == HOLDOUT:
            out[task] = results[(HOLDOUT, None)]
        else:
            out[task] = _method_fit(task, {arch: results[(task, arch)] for arch in archs if (task, arch) in results},
                                    settings)
    return out


def _run_in_pool(units: list, rows, settings: FitSettings, jobs: int, n_archs: int) -> dict:
    """{unit: result} of every unit, in a spawn pool of ``jobs`` processes, the longest first."""
    def seconds(unit) -> float:
        method, arch = unit
        return TASK_SECONDS.get(method, 0.0) / (1 if arch is None else max(1, n_archs))

    order = sorted(units, key=lambda unit: -seconds(unit))  # stable: unknown tasks keep their order, last
    results = {}
    with fit_pool(jobs) as pool:
        futures = {pool.submit(_run_task, rows(unit), settings, unit): unit for unit in order}
        try:
            for future in as_completed(futures):
                unit = futures[future]
                try:
                    results[unit] = future.result()
                except BrokenProcessPool as err:  # a worker died (killed, out of memory): no exception to show
                    err.add_note("fits: a worker process died while fitting one of "
                                 + ", ".join(_label(u) for u in order if u not in results))
                    raise
                except Exception as err:
                    err.add_note(f"fits: raised by {_label(unit)} (in a worker process)")
                    raise
        except BaseException:
            _stop(pool)
            raise
    return results


def fit_pool(jobs: int) -> ProcessPoolExecutor:
    """The pool the fits run in: ``jobs`` spawned processes that end with the process that started them.
    Spawn, not fork: the caller may run threads (torch's, OpenMP's, BLAS's), and a fork copies their locks
    but not the threads, which can deadlock the child. Ending with the caller: a study killed outright
    (SIGKILL, or a scheduler's) left its fitting processes running for minutes, finishing fits nobody would
    read, beside the re-run's."""
    return ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                               initializer=end_with_parent, initargs=(os.getpid(),))


def _stop(pool: ProcessPoolExecutor) -> None:
    """End the workers: else the error would wait for the running fits (approach 3: minutes) to finish.
    The pool then fails the tasks not started (a broken pool starts no worker). Not Future.cancel(): on
    Python 3.11 the executor's own thread then died of an InvalidStateError (its traceback under the
    study's one line), leaving the thread that feeds the tasks blocked, and the exit waited for it for ever:
    a study stopped during its fits hung."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(10)
    release_pool_pipes(pool)  # else the pool's thread, its shutdown and the interpreter's exit could hang


def crossovers(runs: pd.DataFrame, loss_column: str = "train_loss") -> pd.DataFrame:
    """For every architecture and every pair of neighbouring sizes: does the larger model reach a lower
    loss than the smaller one at equal compute, inside the compute range both runs cover? One row per
    pair: arch, small, large, overlap (the shared compute range, FLOPs), crossover (the first compute at
    which the larger is below, interpolated log-log; NaN if never) and gap_at_end (the larger's loss over
    the smaller's at the end of the overlap, minus 1). A size trained with several seeds is the mean of its
    runs' losses at each checkpoint (their schedules are the same); ``small``/``large`` name the sizes."""
    rows = []
    for arch, part in runs.groupby("arch", sort=True):
        curves = []
        for n, size in part.groupby("params"):
            mean = size.groupby("flops")[loss_column].mean().sort_index()
            name = str(size["size"].iloc[0]) if "size" in size else str(size["run_id"].iloc[0])
            curves.append((float(n), name, np.log(mean.index.to_numpy()), np.log(mean.to_numpy())))
        curves.sort(key=lambda c: c[0])
        for (n_small, id_small, c_small, l_small), (n_large, id_large, c_large, l_large) in zip(curves, curves[1:]):
            lo, hi = max(c_small[0], c_large[0]), min(c_small[-1], c_large[-1])
            row = dict(arch=arch, small=id_small, large=id_large, params_small=n_small, params_large=n_large,
                       overlap_low=np.exp(lo) if lo < hi else np.nan, overlap_high=np.exp(hi) if lo < hi else np.nan,
                       crossover=np.nan, gap_at_end=np.nan)
            if lo < hi:
                grid = np.linspace(lo, hi, 400)
                diff = np.interp(grid, c_large, l_large) - np.interp(grid, c_small, l_small)
                row["gap_at_end"] = float(np.exp(diff[-1]) - 1)
                below = np.flatnonzero(diff < 0)
                if below.size:
                    row["crossover"] = float(np.exp(grid[below[0]]))
            rows.append(row)
    return pd.DataFrame(rows, columns=["arch", "small", "large", "params_small", "params_large", "overlap_low",
                                       "overlap_high", "crossover", "gap_at_end"])


HOLDOUT_METHODS = ("approach3_fixed_e", "approach3")


def holdout_check(runs: pd.DataFrame, settings: FitSettings, methods=HOLDOUT_METHODS) -> pd.DataFrame:
    """Refit each parametric law without the top decade of compute (rows above a tenth of the largest
    compute of each architecture) and predict the final loss of every run that ends in that decade.
    One row per (method, arch, run): observed, predicted, rel_error = predicted/observed − 1 (and a row
    with the reason when the refit fails). ``runs``: already windowed (:func:`fit_window`)."""
    from linscale.laws.approach3 import predict_loss

    rows = []
    for arch, part in runs.groupby("arch", sort=True):
        cut = part["flops"].max() / 10
        train = part[part["flops"] <= cut]
        last = part.sort_values("step").groupby("run_id").tail(1)
        held = last[last["flops"] > cut]
        for method in methods:
            if method in NEEDS_ENTROPY and settings.entropy is None:
                continue
            refit = fit_method(train, method, FitSettings(**{**settings.__dict__, "bootstrap": 0}))
            if not refit.ok:
                rows.append(dict(method=method, arch=arch, run_id="", reason=refit.error))
                continue
            values = refit.fit.params.set_index("parameter")["estimate"].to_dict()
            predicted = predict_loss(values, held["params"], held["tokens"])
            for (_, row), p in zip(held.iterrows(), predicted):
                observed = float(row[FITTED if FITTED in row else settings.loss_column])
                rows.append(dict(method=method, arch=arch, run_id=row["run_id"], size=row.get("size", ""),
                                 params=float(row["params"]), tokens=float(row["tokens"]), flops=float(row["flops"]),
                                 observed=observed, predicted=float(p), rel_error=float(p) / observed - 1,
                                 cutoff_flops=float(cut), reason=""))
    return pd.DataFrame(rows, columns=["method", "arch", "run_id", "size", "params", "tokens", "flops", "observed",
                                       "predicted", "rel_error", "cutoff_flops", "reason"])
