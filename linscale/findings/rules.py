"""How a claim's evidence becomes a verdict: rules and margins fixed here, before any data is seen.

Every claim of the paper the book tests is one of three kinds, each with one rule:

* **a difference** ("the linear models reach a lower loss than LLaMA"): the observed difference d is
  compared with its noise bound u (what a re-run would move it by, :class:`Noise`): the claim is
  *reproduced* when d is on the claimed side beyond u, *not reproduced* when it is on the other side beyond
  u, and *inconclusive* in between (:func:`difference`);
* **an equality** ("the loss exponents are alike", "the training context barely changes the loss"): an
  equivalence test against a margin Δ fixed in :data:`MARGINS`: *reproduced* when |d| + u ≤ Δ (the whole
  noise band inside the margin), *not reproduced* when |d| − u > Δ (the whole band outside), *inconclusive*
  otherwise (:func:`equivalence`); overlapping intervals alone never count as equality;
* **an interval comparison** (fitted laws with bootstrap intervals): the same two rules applied to the
  interval of the difference instead of d ± u (:func:`interval_difference`, :func:`interval_equivalence`).

A claim over several architectures or compute values is the conjunction of its parts: reproduced only if
every part is, not reproduced as soon as one part is against it beyond the noise (a claim about "every
linear model" is refuted by one that is clearly the other way, whatever the others show), inconclusive
otherwise (:func:`combine`). *Not testable* means the
study lacks the data (a preset without the runs, a law the design check says the grid cannot identify).

The noise bound is what an honest re-run changes: the seed (weights and data order) and, through
floating-point rounding, the CPU code path and thread count, whose effect on a trained model is itself a
perturbation that seed noise bounds (a re-run on another CPU moved final losses by less than the seeds
do; pinned code paths give the same bits on CPUs of one vendor, not across vendors): u = t · √2 · s for a
difference of two single runs, with s the standard deviation of one run and t Student's quantile at the
degrees of freedom s was estimated with (:class:`Noise`). Fixed here, before the data, because the bound
is itself an estimate: from the two or three seeds of the pair of architectures a claim compares it
had 2-4 degrees of freedom, so little that it changed up to 4.5-fold between two honest re-runs and
turned a verdict with it while the evidence moved 0.40 of the bound. So:

* every noise estimate is **pooled over all four architectures** (run-to-run noise is a property of the
  training recipe at a size; the claim's own pair would leave a quarter to a half of the runs out);
* a **loss** (:data:`TREND_COLUMNS`) takes its noise from **one trend over every measured size**,
  log σ²(N) = a + b·log N (:func:`fit_size_trend`; the seeds ablation's base size and the size_seeds
  ablation's smallest and largest sizes, about 16 degrees of freedom, 14 left after the trend's two),
  evaluated at the size of each run a claim compares: losses and their seed noise both shrink smoothly
  with size, so one trend measures where each claim is made with the degrees of freedom of all of them;
* an **accuracy** takes **one noise pooled over every measured size and architecture** (the seeds
  ablation's and the size_seeds ablation's cells: about 16 degrees of freedom for retrieval, 8 for the
  scores the size_seeds ablation does not evaluate). An accuracy does not
  shrink smoothly with size: where a model is near learning a skill (lookup, for NIAH), a seed either
  learns it or not, and its accuracy lands in one of two modes far apart. Two seeds that happen to agree
  cannot show that a size is such a lottery: the published study measured HGRN2's NIAH at s6 as 0.169
  and 0.172, and a re-run's next seed learned lookup there (0.995). So the lotteries the study saw
  anywhere (the seeds ablation's size has them: one of three LLaMA seeds finds the needle) bound every
  accuracy comparison. Decided after that re-run (2026-12-03) and judged by a re-run made after it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import numpy as np
import pandas as pd

from linscale.config import PAPER_LINEAR_ARCHITECTURES

LINEAR = PAPER_LINEAR_ARCHITECTURES  # the paper's three, whom its claims are about
REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_TESTABLE = "reproduced", "not reproduced", "inconclusive", "not testable"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_TESTABLE)

# Equivalence margins, fixed before the data (see each claim for why this size). After changing one: build
# the book again (`python3 tasks.py book`: the claims table and every verdict read it), write the committed
# re-runs' comparisons again (`linscale compare`, results/reruns/*/cpu-comparison.json, which keep the
# verdicts as judged when they were written), and correct the margins quoted in the README and the findings
# chapter. The probes' registered thresholds are beside their rules in findings/laws.py (LR_EXPLAINS,
# HEADS_EXPLAINS, ...) and findings/downstream.py (AT_CHANCE_MARGIN, BINDER_SHARE).
MARGINS = {
    # L(C) exponents: 0.01 changes the loss ratio over three decades of compute by 10^0.03 = 7%; the
    # paper's four exponents span 0.0045.
    "exponent": 0.01,
    # final loss above the language's entropy across training contexts, in nats: 0.02 nats is 1.3% of a
    # loss of 1.5, the size of the paper's CSR differences between contexts (about one point of 50).
    "context_excess": 0.02,
    # downstream non-inferiority ("match or beat"): two points of accuracy, 1% of bits per byte.
    "accuracy": 0.02,
    "bits_per_byte": 0.01,
}
CONFIDENCE = 0.95
# Columns of the noise samples that are losses: their noise is one trend over sizes (the module's text).
TREND_COLUMNS = ("loss", "excess")


def difference(d: float, u: float, claimed: str) -> str:
    """Verdict for "d is positive" (``claimed="positive"``) or negative, with noise bound u ≥ 0."""
    if not (np.isfinite(d) and np.isfinite(u)):
        return INCONCLUSIVE
    sign = 1.0 if claimed == "positive" else -1.0
    if sign * d > u:
        return REPRODUCED
    if sign * d < -u:
        return NOT_REPRODUCED
    return INCONCLUSIVE


def equivalence(d: float, u: float, margin: float) -> str:
    """Verdict for "d is zero within ``margin``": reproduced when |d| + u ≤ margin, not reproduced when
    |d| − u > margin, inconclusive otherwise."""
    if not (np.isfinite(d) and np.isfinite(u)):
        return INCONCLUSIVE
    if abs(d) + u <= margin:
        return REPRODUCED
    if abs(d) - u > margin:
        return NOT_REPRODUCED
    return INCONCLUSIVE


def interval_difference(low: float, high: float, claimed: str) -> str:
    """Verdict for "the difference is positive" (or negative) from its interval [low, high]."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return INCONCLUSIVE
    if claimed == "positive":
        return REPRODUCED if low > 0 else NOT_REPRODUCED if high < 0 else INCONCLUSIVE
    return REPRODUCED if high < 0 else NOT_REPRODUCED if low > 0 else INCONCLUSIVE


def interval_equivalence(low: float, high: float, margin: float) -> str:
    """Two one-sided tests: reproduced when [low, high] lies inside (−margin, margin), not reproduced
    when it lies entirely outside [−margin, margin], inconclusive otherwise."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return INCONCLUSIVE
    if -margin < low and high < margin:
        return REPRODUCED
    if low > margin or high < -margin:
        return NOT_REPRODUCED
    return INCONCLUSIVE


def combine(parts) -> str:
    """A claim made of several parts (architectures, compute values, halves), their conjunction:
    reproduced if every part is, not reproduced if some part is against it (one clear counterexample
    refutes "every"), not testable if every part is, inconclusive otherwise."""
    parts = list(parts)
    if not parts or all(p == NOT_TESTABLE for p in parts):
        return NOT_TESTABLE
    if all(p == REPRODUCED for p in parts):
        return REPRODUCED
    if any(p == NOT_REPRODUCED for p in parts):
        return NOT_REPRODUCED
    return INCONCLUSIVE


def margin_to_flip(d: float, u: float, kind: str = "difference", margin: float = 0.0) -> float:
    """How far (in units of the noise bound u) the evidence lies from the nearest verdict boundary: a
    re-run would have to move it by this many u to change the verdict. Reported beside every verdict."""
    if not (np.isfinite(d) and np.isfinite(u)) or u <= 0:
        return np.nan
    if kind == "difference":
        edges = (u, -u)
    else:
        edges = (margin - u, margin + u, -(margin - u), -(margin + u))
    return float(min(abs(d - e) for e in edges) / u)


def claim_margin_to_flip(parts: list, how: Callable[[list[str]], str] = None, reach: float = 10.0,
                         step: float = 0.01) -> float:
    """A claim's margin to flip: the smallest move of one of its parts, in units of that part's noise
    bound, that changes the claim's verdict (every other part held where it is): :func:`margin_to_flip`
    for a claim of one part, and for a conjunction the weakest of the parts that decide it (a part
    against a claim that other parts also refute must move with them, so alone it flips nothing).
    Searched on a grid of ``step`` bounds up to ``reach``; infinite when no single part's move within
    ``reach`` bounds changes the verdict. NaN when no part can move."""
    how = how or combine
    parts = list(parts)
    verdicts = [p.verdict() for p in parts]
    observed = how(verdicts)
    movable = [i for i, p in enumerate(parts) if np.isfinite(p.d) and np.isfinite(p.u) and p.u > 0]
    if not movable:
        return np.nan
    for move in np.arange(step, reach + step / 2, step):
        for i in movable:
            p = parts[i]
            for sign in (1.0, -1.0):
                moved = verdicts[:i] + [p.judge(p.d + sign * move * p.u, p.u)] + verdicts[i + 1:]
                if how(moved) != observed:
                    return float(move)
    return np.inf


# ----------------------------------------------------------------------------- will a re-run agree?

AGREEMENT_DRAWS = 4000  # simulated re-runs per claim (fixed seed: every machine computes the same number)
# The share of a part's re-run variance that comes from runs it shares with other parts (``Part.shared``):
# a difference of two sides of equal noise, one side common to every part (LLaMA's runs), half.
SHARED_VARIANCE = 0.5


class Part(NamedTuple):
    """One part of a claim's evidence with the rule that judges it: the number ``d``, its noise bound
    ``u`` (what a re-run moves it by), the quantile ``q`` that made u from the standard deviation of d
    (Student's t at the noise's degrees of freedom ``dof``; the normal quantile of a bootstrap
    interval, ``dof`` infinite) and ``judge(d, u) -> verdict``. In a re-run, parts of one ``group`` (one
    architecture's numbers at several compute values, read off the same runs or draws) move together;
    parts that name the same ``shared`` runs (every linear model's difference from LLaMA's runs: "llama")
    move together by the share of their noise those runs carry (:data:`SHARED_VARIANCE`); parts whose
    bounds come from the same ``noise`` estimate (one pooled sd of one column) have those bounds
    re-estimated together. Parts without any of these move independently."""

    d: float
    u: float
    q: float
    dof: float
    judge: Callable[[float, float], str]
    group: str = ""
    shared: str = ""
    noise: str = ""

    def verdict(self) -> str:
        return self.judge(self.d, self.u)


def _t_quantile(dof: float, confidence: float = CONFIDENCE) -> float:
    from scipy import stats

    return float(stats.t.ppf(0.5 + confidence / 2, dof)) if np.isfinite(dof) and dof > 0 else \
        float(stats.norm.ppf(0.5 + confidence / 2))


def difference_part(d: float, u: float, dof: float, claimed: str, group: str = "", shared: str = "",
                    noise: str = "") -> Part:
    """A :func:`difference` part, u a t bound at ``dof`` degrees of freedom (``group``, ``shared``,
    ``noise``: what it has in common with the claim's other parts, :class:`Part`)."""
    return Part(d, u, _t_quantile(dof), dof, lambda d_, u_: difference(d_, u_, claimed), group, shared, noise)


def equivalence_part(d: float, u: float, dof: float, margin: float, noise: str = "") -> Part:
    """An :func:`equivalence` part, u a t bound at ``dof`` degrees of freedom."""
    return Part(d, u, _t_quantile(dof), dof, lambda d_, u_: equivalence(d_, u_, margin), noise=noise)


def interval_part(estimate: float, low: float, high: float, rule: Callable[[float, float], str],
                  confidence: float, group: str = "", shared: str = "") -> Part:
    """A part judged on a bootstrap interval [low, high] around ``estimate`` by ``rule(low, high)``
    (:func:`interval_difference` or :func:`interval_equivalence` with its argument bound): a re-run
    moves the interval with its estimate, keeping its shape."""
    below, above = estimate - low, high - estimate
    half = (high - low) / 2

    def judge(d_, u_):
        scale = u_ / half if half > 0 else 1.0
        return rule(d_ - below * scale, d_ + above * scale)

    return Part(estimate, half, _t_quantile(np.inf, confidence), np.inf, judge, group, shared)


def fixed_part(verdict: str) -> Part:
    """A part whose verdict no re-run changes (an architecture the design cannot identify)."""
    return Part(np.nan, np.nan, np.nan, np.inf, lambda d_, u_: verdict)


def rerun_agreement(parts: list[Part], how: Callable[[list[str]], str] = None,
                    draws: int = AGREEMENT_DRAWS, seed: int = 0) -> float:
    """The probability that an honest re-run of the study reaches this claim's verdict again, predicted
    from its own evidence and noise: the true sd is drawn from what ours tells of it (σ = s·√(dof/χ²_dof)),
    each part's number moves by d' − d ~ N(0, 2·σ²·(u/(q·s))²) (the re-run's number and this one both
    carry the noise; a flat prior on the true value), the re-run's noise bound is its own estimate of σ
    (u·(σ/s)·√(χ²_dof/dof)), the parts are judged again and combined by ``how`` (default
    :func:`combine`). What parts have in common moves them together (:class:`Part`): one draw per
    ``group``, a common draw carrying :data:`SHARED_VARIANCE` of the variance of parts that share runs,
    one χ² draw per noise estimate. NaN when the claim has no part a re-run can move."""
    how = how or combine
    parts = list(parts)
    if not parts or all(not np.isfinite(p.d) for p in parts):
        return np.nan
    observed = how([p.verdict() for p in parts])
    rng = np.random.default_rng(seed)
    verdicts = [[] for _ in range(draws)]
    groups: dict[str, np.ndarray] = {}
    shared: dict[str, np.ndarray] = {}
    estimates: dict[tuple, np.ndarray] = {}
    for p in parts:
        if not (np.isfinite(p.d) and np.isfinite(p.u) and p.u > 0):
            for row in verdicts:
                row.append(p.verdict())
            continue
        z = groups.setdefault(p.group, rng.standard_normal(draws)) if p.group else rng.standard_normal(draws)
        if p.shared:
            common = shared.setdefault(p.shared, rng.standard_normal(draws))
            z = np.sqrt(1 - SHARED_VARIANCE) * z + np.sqrt(SHARED_VARIANCE) * common
        if np.isfinite(p.dof):
            # the true sd over ours, σ/s ~ √(dof/χ²), and the re-run's estimate of it, s'/σ ~ √(χ²/dof)
            true, again = estimates[(p.noise, p.dof)] if p.noise and (p.noise, p.dof) in estimates else \
                (np.sqrt(p.dof / rng.chisquare(p.dof, draws)), np.sqrt(rng.chisquare(p.dof, draws) / p.dof))
            if p.noise:
                estimates[(p.noise, p.dof)] = (true, again)
        else:  # a bootstrap interval: its width is not re-estimated
            true, again = np.ones(draws), np.ones(draws)
        moved = p.d + np.sqrt(2) * (p.u / p.q) * true * z
        bound = p.u * true * again
        for row, d_, u_ in zip(verdicts, moved, bound):
            row.append(p.judge(float(d_), float(u_)))
    return float(np.mean([how(row) == observed for row in verdicts]))


@dataclass(frozen=True)
class SizeTrend:
    """The standard deviation of one run as a function of its size, log σ²(N) = a + b·log N, fitted to
    per-cell sample variances (:func:`fit_size_trend`), with the degrees of freedom left for Student's t."""

    a: float
    b: float
    dof: int

    def sd(self, params: float) -> float:
        return float(np.exp(0.5 * (self.a + self.b * np.log(params))))


def fit_size_trend(cells: pd.DataFrame) -> SizeTrend | None:
    """Maximum-likelihood fit of log σ²(N) = a + b·log N to cells (one per architecture and size) with
    columns ``var`` (the sample variance s² of the cell's runs), ``dof`` (k, runs − 1) and ``params``
    (N). Each s² is σ²(N)·χ²ₖ/k, so the negative log-likelihood is, up to constants,
    Σ k/2 · (log σ² + s²/σ²), convex in (a, b). One size measured: b = 0 and a is the pooled variance's
    log (the same s as :meth:`Noise.pooled`). Degrees of freedom: Σk less the parameters fitted. None
    when nothing was measured (no cell with two runs, or every variance zero)."""
    from scipy import optimize

    if not len(cells):  # a study without the seeds ablations (its empty table's columns are not numeric)
        return None
    cells = cells[(cells["dof"] > 0) & np.isfinite(cells["var"].astype(float)) & (cells["params"] > 0)]
    k, var, x = (cells[c].to_numpy(float) for c in ("dof", "var", "params"))
    if not len(cells) or not (var > 0).any():
        return None
    pooled = float((k * var).sum() / k.sum())
    x = np.log(x)
    if np.ptp(x) == 0:
        return SizeTrend(float(np.log(pooled)), 0.0, int(k.sum()) - 1)
    centre = float(np.average(x, weights=k))

    def nll(theta):
        log_var = theta[0] + theta[1] * (x - centre)
        return float((k / 2 * (log_var + var * np.exp(-log_var))).sum())

    fit = optimize.minimize(nll, np.array([np.log(pooled), 0.0]), method="Nelder-Mead",
                            options=dict(xatol=1e-10, fatol=1e-12, maxiter=4000))
    a, b = fit.x
    return SizeTrend(float(a - b * centre), float(b), int(k.sum()) - 2)


@dataclass
class Noise:
    """Run-to-run noise of a quantity, from repeated runs (the seeds and size_seeds ablations).

    ``samples``: one row per run with ``arch``, the quantity's columns and, when measured at several
    sizes, ``size``; ``params``: the non-embedding parameters of each size name (the grid's, for the
    trend of the losses; samples with a ``params`` column give their own sizes'). :meth:`bound` is the
    noise bound of a difference between two single runs, u = t·√2·s; :meth:`bound_of_means` that of a
    difference between means of n₁ and n₂ runs, t·s·√(1/n₁ + 1/n₂); :meth:`bound_between` that of two
    runs of two sizes. ``relative`` divides by the mean (for losses). :meth:`at` gives the noise of one
    size, whose :meth:`bound` is then that size's (the trend's, for a loss)."""

    samples: pd.DataFrame = field(default_factory=pd.DataFrame)
    confidence: float = CONFIDENCE
    params: dict = field(default_factory=dict)
    size: str | None = None  # set by :meth:`at`: every bound is this size's
    order: tuple = ()
    _trends: dict = field(default_factory=dict, repr=False, compare=False)  # fitted once per column

    def table(self, column: str) -> pd.DataFrame:
        """Per architecture: runs, mean, sd, relative sd."""
        return self.cells(column, ["arch"])

    def cells(self, column: str, by: list[str]) -> pd.DataFrame:
        """Per group of ``by`` (e.g. architecture and size): runs, mean, sd, relative sd."""
        rows = []
        if column in self.samples:
            for key, part in self.samples.groupby(by):
                v = part[column].astype(float).dropna()
                sd = float(v.std(ddof=1)) if len(v) > 1 else np.nan
                rows.append(dict(zip(by, key if isinstance(key, tuple) else (key,)), runs=len(v),
                                 mean=float(v.mean()) if len(v) else np.nan, sd=sd,
                                 rel_sd=sd / float(v.mean()) if len(v) and v.mean() else np.nan))
        return pd.DataFrame(rows, columns=[*by, "runs", "mean", "sd", "rel_sd"])

    def measured_sizes(self, column: str, order) -> list[str]:
        """The sizes at which ``column``'s noise was measured (some architecture ran there twice or more), in
        the grid's ``order`` (smallest first)."""
        if "size" not in self.samples:
            return []
        cells = self.cells(column, ["arch", "size"]).dropna(subset=["sd"])
        return sorted(set(cells["size"].astype(str)), key=lambda z: list(order).index(z) if z in order else len(order))

    def basis_words(self, column: str, order, several: str = "each size's seed noise") -> str:
        """Whose noise a bound of two sizes' runs is, for the prose: ``several`` (a trend over several
        measured sizes), or one size's taken as every size's (one measured size fits no slope)."""
        measured = self.measured_sizes(column, order)
        if len(measured) == 1:
            return f"the seed noise measured at {measured[0]}, taken as the same at every size"
        return several if measured else "each size's seed noise"

    def at(self, size: str, order) -> "Noise":
        """This noise as seen from grid size ``size`` (``order``: the grid's sizes, smallest first): its
        :meth:`pooled`, :meth:`bound` and :meth:`bound_of_means` are those of one run of that size
        (:meth:`at_size`)."""
        return Noise(self.samples, self.confidence, self.params, str(size), tuple(str(s) for s in order), self._trends)

    def pooled(self, column: str, archs=None, relative: bool = False) -> tuple[float, int]:
        """(pooled sd, degrees of freedom) over ``archs`` (all when None); of :attr:`size` when set."""
        if self.size is not None and "size" in self.samples:
            return self.at_size(self.size, self.order, column, archs, relative)
        return self._pooled(column, archs, relative)

    def _pooled(self, column: str, archs=None, relative: bool = False, by: tuple = ("arch",)) -> tuple[float, int]:
        """(sd, degrees of freedom) pooled over the cells of ``by`` (architectures; with ``"size"`` also,
        every (architecture, size) cell): each cell's variance about its own mean, weighted by its
        degrees of freedom."""
        t = self.cells(column, list(by))
        if archs is not None:
            t = t[t["arch"].isin(list(archs))]
        t = t[t["runs"] > 1]
        dof = int((t["runs"] - 1).sum())
        if dof == 0:
            return np.nan, 0
        sd = t["rel_sd" if relative else "sd"]
        return float(np.sqrt(((t["runs"] - 1) * sd ** 2).sum() / dof)), dof

    def _t(self, dof: int) -> float:
        from scipy import stats

        return float(stats.t.ppf(0.5 + self.confidence / 2, dof)) if dof else np.nan

    def bound(self, column: str, archs=None, relative: bool = False) -> float:
        sd, dof = self.pooled(column, archs, relative)
        return self._t(dof) * np.sqrt(2) * sd if dof else np.nan

    def dof(self, column: str, archs=None, relative: bool = False) -> int:
        """The degrees of freedom behind :meth:`bound` and :meth:`bound_of_means`."""
        return self.pooled(column, archs, relative)[1]

    def dof_between(self, column: str, sizes: tuple[str, str], order, archs=None, relative: bool = False) -> int:
        """The degrees of freedom behind :meth:`bound_between`."""
        return min(self.at_size(size, order, column, archs, relative)[1] for size in sizes)

    def bound_of_means(self, column: str, n1: int, n2: int, archs=None, relative: bool = False) -> float:
        sd, dof = self.pooled(column, archs, relative)
        return self._t(dof) * sd * np.sqrt(1 / n1 + 1 / n2) if dof else np.nan

    def size_params(self) -> dict[str, float]:
        """Non-embedding parameters per size name: :attr:`params`, and the samples' own (median over
        their runs) where they have a ``params`` column."""
        known = {str(k): float(v) for k, v in self.params.items()}
        if {"size", "params"} <= set(self.samples):
            own = self.samples.dropna(subset=["params"]).groupby(self.samples["size"].astype(str))["params"].median()
            known = {**{str(k): float(v) for k, v in own.items()}, **known}
        return known

    def trend(self, column: str, archs=None, relative: bool = False) -> SizeTrend | None:
        """The trend of one run's sd with size (:func:`fit_size_trend`) over every measured size and the
        architectures ``archs`` (all when None); None without sizes or their parameters."""
        if "size" not in self.samples or column not in self.samples:
            return None
        key = (column, tuple(archs) if archs is not None else None, relative)
        if key not in self._trends:
            self._trends[key] = self._fit_trend(column, archs, relative)
        return self._trends[key]

    def _fit_trend(self, column: str, archs, relative: bool) -> SizeTrend | None:
        samples = self.samples if archs is None else self.samples[self.samples["arch"].isin(list(archs))]
        cells = Noise(samples).cells(column, ["arch", "size"])
        params = self.size_params()
        cells = cells.assign(var=(cells["rel_sd" if relative else "sd"]) ** 2, dof=cells["runs"] - 1,
                             params=cells["size"].astype(str).map(params).astype(float))
        if cells["params"].isna().any():  # a measured size of unknown parameters: no trend to read
            return None
        return fit_size_trend(cells)

    def at_size(self, size: str, order, column: str, archs=None, relative: bool = False) -> tuple[float, int]:
        """(sd, degrees of freedom) of one run of grid size ``size``: for a loss (:data:`TREND_COLUMNS`)
        the size trend's at that size's parameters (:meth:`trend`), for anything else (and a loss without
        a trend) one sd pooled over every measured (architecture, size) cell, the same at every size (the
        module's text says why); without a ``size`` column in the samples, :meth:`pooled`. NaN outside
        the grid (``order``)."""
        if "size" not in self.samples:
            return self._pooled(column, archs, relative)
        if str(size) not in [str(name) for name in order]:
            return np.nan, 0
        if column in TREND_COLUMNS:
            trend, n = self.trend(column, archs, relative), self.size_params().get(str(size))
            if trend is not None and n is not None and trend.dof > 0:
                return trend.sd(n), trend.dof
        return self._pooled(column, archs, relative, by=("arch", "size"))

    def bound_between(self, column: str, sizes: tuple[str, str], order, archs=None, relative: bool = False) -> float:
        """Noise bound of a difference between two single runs of grid sizes ``sizes``, each with the
        noise of its own size (:meth:`at_size`): u = t·√(s₁² + s₂²), t at the fewer degrees of freedom
        of the two. Equal to :meth:`bound` when both sizes have the same noise."""
        (sd1, dof1), (sd2, dof2) = (self.at_size(size, order, column, archs, relative) for size in sizes)
        if not (dof1 and dof2):
            return np.nan
        return self._t(min(dof1, dof2)) * float(np.sqrt(sd1 ** 2 + sd2 ** 2))
