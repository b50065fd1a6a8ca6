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

A claim over several architectures or compute values is reproduced only if every one of its parts is;
not reproduced if some part is against it and none for it (:func:`combine`). *Not testable* means the
study lacks the data (a preset without the runs, a law the design check says the grid cannot identify).

The noise bound is what an honest re-run changes: the seed (weights and data order) and, through
floating-point rounding, the CPU code path and thread count, whose effect on a trained model is itself a
perturbation that seed noise bounds (a re-run on another CPU moved final losses by less than the seeds
do; pinned code paths give the same bits on CPUs of one vendor, not across vendors). It is measured
where the claims compare runs, and pooled over the architectures a claim compares: u = t · √2 · s, with s
the pooled standard deviation of one run and t Student's quantile at the pooled degrees of freedom
(:class:`Noise`). Claims about one size use the seeds ablation at that size; a claim that compares runs
of every size (the loss envelopes) uses each run's own size's noise, measured at the grid's smallest,
base and largest sizes (the seeds and size_seeds ablations) and, between two measured sizes, the larger
of theirs (:meth:`Noise.bound_between`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

LINEAR = ("tnl", "hgrn2", "cosformer2")
REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_TESTABLE = "reproduced", "not reproduced", "inconclusive", "not testable"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_TESTABLE)

# Equivalence margins, fixed before the data (see each claim for why this size).
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
    """A claim made of several parts (architectures, compute values, halves): reproduced if every part
    is, not reproduced if some part is against it and none for it, not testable if every part is,
    inconclusive otherwise."""
    parts = list(parts)
    if not parts or all(p == NOT_TESTABLE for p in parts):
        return NOT_TESTABLE
    if all(p == REPRODUCED for p in parts):
        return REPRODUCED
    if any(p == NOT_REPRODUCED for p in parts) and not any(p == REPRODUCED for p in parts):
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


@dataclass
class Noise:
    """Run-to-run noise of a quantity, per architecture, from repeated runs (the seeds ablation).

    ``samples``: one row per run with ``arch`` and the quantity's columns. :meth:`bound` is the noise
    bound of a difference between two single runs, u = t·√2·s; :meth:`bound_of_means` that of a
    difference between means of n₁ and n₂ runs, t·s·√(1/n₁ + 1/n₂). ``relative`` divides by the mean
    (for losses)."""

    samples: pd.DataFrame = field(default_factory=pd.DataFrame)
    confidence: float = CONFIDENCE

    def table(self, column: str) -> pd.DataFrame:
        """Per architecture: runs, mean, sd, relative sd."""
        rows = []
        if column in self.samples:
            for arch, part in self.samples.groupby("arch"):
                v = part[column].astype(float).dropna()
                sd = float(v.std(ddof=1)) if len(v) > 1 else np.nan
                rows.append(dict(arch=arch, runs=len(v), mean=float(v.mean()) if len(v) else np.nan, sd=sd,
                                 rel_sd=sd / float(v.mean()) if len(v) and v.mean() else np.nan))
        return pd.DataFrame(rows, columns=["arch", "runs", "mean", "sd", "rel_sd"])

    def pooled(self, column: str, archs=None, relative: bool = False) -> tuple[float, int]:
        """(pooled sd, degrees of freedom) over ``archs`` (all when None)."""
        t = self.table(column)
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

    def bound_of_means(self, column: str, n1: int, n2: int, archs=None, relative: bool = False) -> float:
        sd, dof = self.pooled(column, archs, relative)
        return self._t(dof) * sd * np.sqrt(1 / n1 + 1 / n2) if dof else np.nan

    def _by_size(self, column: str, archs, relative: bool) -> dict[str, tuple[float, int]]:
        return {str(name): Noise(part, self.confidence).pooled(column, archs, relative)
                for name, part in self.samples.groupby(self.samples["size"].astype(str))}

    def source_size(self, size: str, order, column: str, archs=None, relative: bool = False) -> str | None:
        """The measured size whose noise a run of grid size ``size`` takes (samples with a ``size``
        column, measured at several sizes: the seeds ablation's and the size_seeds ablation's): its own
        when it was measured; else, of the measured sizes nearest below and above it in ``order`` (the
        grid's sizes, smallest first), the one with the larger sd (the nearest one beyond the measured
        range). Fixed here, before the data: noise is not assumed to shrink between measurements. None
        when no size was measured."""
        by_size = self._by_size(column, archs, relative)
        order = [str(name) for name in order]
        measured = [name for name in order if by_size.get(name, (np.nan, 0))[1] > 0]
        if not measured or str(size) not in order:
            return None
        if str(size) in measured:
            return str(size)
        at = order.index(str(size))
        below = [name for name in measured if order.index(name) < at]
        above = [name for name in measured if order.index(name) > at]
        return max(below[-1:] + above[:1], key=lambda name: by_size[name][0])

    def of_size(self, size: str, order, column: str, archs=None) -> "Noise":
        """The samples of the one measured size whose noise a claim about grid size ``size`` takes
        (:meth:`source_size`), as a Noise of their own; no samples when no size was measured."""
        source = self.source_size(size, order, column, archs)
        samples = self.samples
        return Noise(samples[samples["size"].astype(str) == source] if source is not None else samples.iloc[0:0],
                     self.confidence)

    def at_size(self, size: str, order, column: str, archs=None, relative: bool = False) -> tuple[float, int]:
        """(pooled sd, degrees of freedom) of one run of grid size ``size``: that of
        :meth:`source_size`; without a ``size`` column in the samples, :meth:`pooled`."""
        if "size" not in self.samples:
            return self.pooled(column, archs, relative)
        source = self.source_size(size, order, column, archs, relative)
        return self._by_size(column, archs, relative)[source] if source else (np.nan, 0)

    def bound_between(self, column: str, sizes: tuple[str, str], order, archs=None, relative: bool = False) -> float:
        """Noise bound of a difference between two single runs of grid sizes ``sizes``, each with the
        noise of its own size (:meth:`at_size`): u = t·√(s₁² + s₂²), t at the fewer degrees of freedom
        of the two. Equal to :meth:`bound` when both sizes have the same noise."""
        (sd1, dof1), (sd2, dof2) = (self.at_size(size, order, column, archs, relative) for size in sizes)
        if not (dof1 and dof2):
            return np.nan
        return self._t(min(dof1, dof2)) * float(np.sqrt(sd1 ** 2 + sd2 ** 2))
