"""The paper's claims, each tested by one rule of :mod:`linscale.findings.rules` on this study's data.

One function per claim family; each returns rows of :data:`CLAIM_COLUMNS`: the claim, the paper's
evidence, ours, the verdict, ``margin_to_flip`` (how many noise bounds a re-run would have to move the
evidence to change the verdict), and ``numbers``/``tolerance`` (each number the verdict rests on and how
far a re-run may move it; :mod:`linscale.compare` measures changes in these units).
:func:`claims_from_results` assembles the table the findings chapter shows from a results folder alone.

Where the evidence comes from:

* the laws (:func:`lower_loss_claim`, :func:`allocation_claims`, :func:`exponent_claim`): observed loss
  envelopes at compute values *inside* the data (never a law evaluated outside it), the IsoFLOP optima
  of approach 2 with their bootstrap intervals, and the bootstrap draws of the L(C) exponents; a law the
  design check says the grid cannot identify makes its claim not testable for that architecture;
* downstream (:func:`downstream_claims`) and the ablations (:func:`ablation_claims`): the seeds
  ablation's size, trained with three seeds, so that every difference is judged against the noise
  measured where it is observed (means over the seeds against the noise of means); the retrieval
  comparisons at the grid's largest size instead, with the size_seeds ablation's two seeds
  (:func:`largest_size_seeds`), since retrieval emerges only near the top of the grid; the context
  ablation's claims at the size it retrains (the preset's ``context_size``). Every bound is pooled over
  the four architectures, a loss's read from one trend over every measured size, an accuracy's pooled
  over every measured size (:meth:`~linscale.findings.rules.Noise.at`, :func:`sized_noise`).
"""
from __future__ import annotations

import re
from typing import NamedTuple

import numpy as np
import pandas as pd

from linscale.findings import rules as v
from linscale.findings.rules import LINEAR

CLAIM_COLUMNS = ["id", "claim", "paper", "evidence", "verdict", "margin_to_flip", "agreement", "numbers", "tolerance"]
N_COMPUTE = 5  # compute values at which the envelopes are compared


def _label(arch: str) -> str:
    from linscale.config import arch_label

    return arch_label(arch)


def _row(id_: str, claim: str, paper: str, evidence: str, verdict: str | list,
         numbers: dict | None = None, tolerance: dict | None = None, how=None) -> dict:
    """A claims-table row. ``verdict``: the verdict, or the claim's parts (:class:`~linscale.findings.rules.Part`),
    combined by ``how`` (default :func:`~linscale.findings.rules.combine`) into the verdict, its margin to
    flip (:func:`~linscale.findings.rules.claim_margin_to_flip`) and the predicted agreement of a re-run
    (:func:`~linscale.findings.rules.rerun_agreement`)."""
    agreement = flip = np.nan
    if not isinstance(verdict, str):
        parts, how = list(verdict), how or v.combine
        verdict, agreement = how([part.verdict() for part in parts]), v.rerun_agreement(parts, how)
        flip = v.claim_margin_to_flip(parts, how)
    return dict(id=id_, claim=claim, paper=paper, evidence=evidence, verdict=verdict, margin_to_flip=flip,
                agreement=agreement, numbers=numbers or {}, tolerance=tolerance or {})


# ----------------------------------------------------------------------------- laws


def envelope_losses(runs: pd.DataFrame, loss: str, n_compute: int = N_COMPUTE) -> pd.DataFrame:
    """Each architecture's observed lower envelope of ``loss`` (interpolated log-log between checkpoints)
    at ``n_compute`` log-spaced compute values strictly inside the range every architecture's envelope
    covers: columns flops, arch, loss, run_id (the run on the envelope there)."""
    from linscale.laws import LawsInputError, loss_envelope

    envs = {}
    for arch, part in runs.groupby("arch"):
        try:
            envs[arch] = loss_envelope(part, n_grid=600, compute_unit="flops", loss_column=loss)
        except LawsInputError:
            continue
    columns = ["flops", "arch", "loss", "run_id"]
    if not envs:
        return pd.DataFrame(columns=columns)
    lo = max(e["flops"].min() for e in envs.values())
    hi = min(e["flops"].max() for e in envs.values())
    if not lo < hi:
        return pd.DataFrame(columns=columns)
    grid = np.geomspace(lo, hi, n_compute + 2)[1:-1]
    rows = []
    for arch, env in envs.items():
        log_c, log_l = np.log(env["flops"].to_numpy()), np.log(env["loss"].to_numpy())
        for c in grid:
            i = int(np.argmin(np.abs(log_c - np.log(c))))
            rows.append(dict(flops=float(c), arch=arch, loss=float(np.exp(np.interp(np.log(c), log_c, log_l))),
                             run_id=str(env["run_id"].iloc[i])))
    return pd.DataFrame(rows, columns=columns)


def lower_loss_claim(runs: pd.DataFrame, noise: v.Noise, loss: str = "fitted_loss") -> dict:
    """Each linear model's observed envelope against LLaMA's at :data:`N_COMPUTE` compute values inside
    the data: relative difference against the noise bound of a difference of the two runs there, each
    with its own size's noise (:meth:`~linscale.findings.rules.Noise.bound_between`; ``noise`` samples
    without a ``size`` column: one noise for every size)."""
    claim = "At equal compute, the linear models reach a lower loss than LLaMA"
    paper = "Table 3 / Figure 1: L(C) of TNL, HGRN2, cosFormer2 below LLaMA's over 1e-2 to 1e3 PF-days"
    if "llama" not in set(runs["arch"]) or runs["arch"].nunique() < 2:
        return _row("lower_loss", claim, paper, "needs LLaMA and a linear model", v.NOT_TESTABLE)
    env = envelope_losses(runs, loss)
    if not len(env) or "llama" not in set(env["arch"]):
        return _row("lower_loss", claim, paper, "the architectures' envelopes share no compute range", v.NOT_TESTABLE)
    from linscale.findings import inputs

    wide = env.pivot(index="flops", columns="arch", values="loss")
    size_of = runs.drop_duplicates("run_id").set_index("run_id")["size"].astype(str)
    sizes = env.assign(size=env["run_id"].map(size_of)).pivot(index="flops", columns="arch", values="size")
    order = inputs.size_order(runs)
    parts, text, numbers, tolerance = [], [], {}, {}
    for arch in [a for a in LINEAR if a in wide]:
        bounds = np.array([noise.bound_between("loss", (sizes.at[c, arch], sizes.at[c, "llama"]), order,
                                               relative=True) for c in wide.index])
        rel = (wide[arch] / wide["llama"] - 1).to_numpy()
        dofs = [noise.dof_between("loss", (sizes.at[c, arch], sizes.at[c, "llama"]), order, relative=True)
                for c in wide.index]
        parts += [v.difference_part(d, u, dof, "negative", group=arch, shared="llama", noise="loss")
                  for d, u, dof in zip(rel, bounds, dofs)]
        # one bound where its ends print alike ("±2.26% to 2.26%" where they differed in the fifth digit)
        band = f"±{bounds.min():.2%}" if f"{bounds.min():.2%}" == f"{bounds.max():.2%}" else \
            f"±{bounds.min():.2%} to {bounds.max():.2%}"
        text.append(f"{_label(arch)} {rel.min():+.2%} to {rel.max():+.2%} ({band})")
        for c, d, u in zip(wide.index, rel, bounds):
            numbers[_lower_loss_key(arch, c)] = float(d)
            tolerance[_lower_loss_key(arch, c)] = float(u)
    evidence = (f"observed envelope loss relative to LLaMA's at {len(wide)} compute values from "
                f"{wide.index.min():.3g} to {wide.index.max():.3g} FLOPs: " + "; ".join(text) +
                " (±: how far a re-run moves a difference of the two runs there, each with its size's seed noise)")
    return _row("lower_loss", claim, paper, evidence, parts, numbers=numbers, tolerance=tolerance)


def _lower_loss_key(arch: str, flops: float) -> str:
    """The name of one part of the lower-loss claim in its row's numbers; :data:`_LOWER_LOSS_KEY` reads it back."""
    return f"loss/llama-1[{arch}, C={flops:.3g}]"


_LOWER_LOSS_KEY = re.compile(r"loss/llama-1\[(\w+), C=([^\]]+)\]")


def lower_loss_sides(row: dict) -> pd.DataFrame:
    """The parts of a :func:`lower_loss_claim` row, one per architecture and compute value: arch, flops,
    difference (loss relative to LLaMA's), bound (its noise bound u) and side: "below" LLaMA beyond the
    noise (for the claim), "above" it beyond the noise (against), "within" the noise. Empty for a row
    without numbers (a claim not testable)."""
    rows = []
    for key, d in (row.get("numbers") or {}).items():
        match = _LOWER_LOSS_KEY.fullmatch(key)
        if not match:
            continue
        u = float(row["tolerance"][key])
        # the claim's own rule (loss below LLaMA's), so a part's side is its verdict in words
        side = {v.REPRODUCED: "below", v.NOT_REPRODUCED: "above"}.get(v.difference(d, u, "negative"), "within")
        rows.append(dict(arch=match.group(1), flops=float(match.group(2)), difference=float(d), bound=u, side=side))
    return pd.DataFrame(rows, columns=["arch", "flops", "difference", "bound", "side"])


def _not_identified(fit, arch: str, identified: dict, missing: str) -> str | None:
    """Why ``arch``'s law cannot be read from ``fit`` (not fitted, or not identified by the design
    check), as the evidence says it; None when it can."""
    ok, why = identified.get(arch, (False, missing))
    if arch not in set(fit.params["group"]) or not ok:
        return f"{_label(arch)}: not identified ({why})"
    return None


def _draws_at(fit, arch: str, law: str, flops: np.ndarray) -> np.ndarray:
    """Bootstrap draws of a power law k·C^e at ``flops`` FLOPs (C in the fit's compute unit):
    [resamples, len(flops)]."""
    from linscale.laws.approach1 import COMPUTE_UNITS

    unit = str(fit.params["compute_unit"].iloc[0]) if "compute_unit" in fit.params else "flops"
    compute = flops / COMPUTE_UNITS[unit]
    d = fit.draws[(fit.draws["group"] == arch) & (fit.draws["law"] == law)]
    d = d.pivot(index="resample", columns="parameter", values="value").dropna()
    return d["coefficient"].to_numpy()[:, None] * compute[None, :] ** d["exponent"].to_numpy()[:, None]


def allocation_claims(approach2, identified: dict) -> list[dict]:
    """More parameters (N_opt) and more tokens (D_opt) at the compute optimum, from approach 2's IsoFLOP
    optima: the 95% bootstrap interval of log(linear / LLaMA) at three compute values inside the budgets
    both fitted. ``approach2``: its LawFit (compute in FLOPs, with draws) or None; ``identified``:
    {arch: (bool, reason)} from the design check (an architecture whose law is not identified makes the
    claim not testable for it)."""
    rows = []
    for law, what in (("N_opt(C)", "parameters"), ("D_opt(C)", "tokens")):
        claim = f"At the compute optimum, the linear models use more {what} than LLaMA"
        paper = f"Table 3: {law} of the linear models above LLaMA's at 1 PF-day"
        ok_llama, why = identified.get("llama", (False, "no approach-2 fit"))
        if approach2 is None or not ok_llama or "llama" not in set(approach2.params["group"]):
            rows.append(_row(f"more_{what}", claim, paper,
                             f"approach 2 (IsoFLOP optima) is not identified for LLaMA on this grid ({why})"
                             if why else "approach 2 (IsoFLOP optima) was not fitted for LLaMA", v.NOT_TESTABLE))
            continue
        if not len(approach2.draws):
            rows.append(_row(f"more_{what}", claim, paper, "no bootstrap draws of approach 2", v.INCONCLUSIVE))
            continue
        pts = approach2.points[approach2.points["law"] == law] if "law" in approach2.points else approach2.points
        parts, text, numbers, tolerance = [], [], {}, {}
        for arch in LINEAR:
            reason = _not_identified(approach2, arch, identified, "no approach-2 fit")
            if reason:
                parts.append(v.fixed_part(v.NOT_TESTABLE))
                text.append(reason)
                continue
            lo = max(pts.loc[pts["group"] == a, "flops"].min() for a in (arch, "llama"))
            hi = min(pts.loc[pts["group"] == a, "flops"].max() for a in (arch, "llama"))
            if not lo < hi:
                parts.append(v.fixed_part(v.NOT_TESTABLE))
                text.append(f"{_label(arch)}: no budgets in common with LLaMA")
                continue
            flops = np.geomspace(lo, hi, 3)
            a, b = _draws_at(approach2, arch, law, flops), _draws_at(approach2, "llama", law, flops)
            n = min(len(a), len(b))
            ratio = np.log(a[:n] / b[:n])  # the architectures' resamples are independent: paired by index
            lows, highs = np.percentile(ratio, 2.5, axis=0), np.percentile(ratio, 97.5, axis=0)
            median = np.median(ratio, axis=0)
            parts += [v.interval_part(m, l_, h_, lambda lo_, hi_: v.interval_difference(lo_, hi_, "positive"), 0.95,
                                      group=arch, shared="llama") for m, l_, h_ in zip(median, lows, highs)]
            # the bracket spans the three budgets' intervals (lowest low end, highest high end); each budget's
            # part is judged on its own interval
            text.append(f"{_label(arch)}/LLaMA {np.exp(median.min()):.2f}x to {np.exp(median.max()):.2f}x "
                        f"[{np.exp(lows.min()):.2f}, {np.exp(highs.max()):.2f}] at {lo:.3g} to {hi:.3g} FLOPs")
            for c, m, l_, h_ in zip(flops, median, lows, highs):
                numbers[f"log({law} ratio)[{arch}, C={c:.3g}]"] = float(m)
                tolerance[f"log({law} ratio)[{arch}, C={c:.3g}]"] = float((h_ - l_) / 2)
        rows.append(_row(f"more_{what}", claim, paper,
                         f"approach 2's {law} over LLaMA's at three budgets both fitted, each judged on its own 95% "
                         "bootstrap interval (median ratios; in brackets the lowest and highest ends of the three "
                         "intervals): "
                         + "; ".join(text), parts, numbers, tolerance))
    return rows


def exponent_claim(approach1, identified: dict) -> dict:
    """Loss exponents alike: an equivalence test (two one-sided tests at 5% each, so a 90% interval) of
    each linear model's L(C) exponent minus LLaMA's, on the bootstrap draws, with the margin
    ``MARGINS["exponent"]`` fixed in :mod:`~linscale.findings.rules`."""
    claim = "The linear models scale as well as LLaMA (loss exponents alike)"
    paper = "Table 3: L(C) exponents −0.0753 to −0.0798"
    margin = v.MARGINS["exponent"]
    ok_llama, why = identified.get("llama", (False, "no envelope fit"))
    if approach1 is None or not ok_llama or "llama" not in set(approach1.params["group"]):
        return _row("exponents", claim, paper, f"LLaMA's loss envelope is not identified on this grid ({why})",
                    v.NOT_TESTABLE)
    draws = approach1.draws
    if not len(draws):
        return _row("exponents", claim, paper, "no bootstrap draws: equality cannot be tested", v.INCONCLUSIVE)

    def exponents(arch):
        d = draws[(draws["group"] == arch) & (draws["law"] == "L(C)") & (draws["parameter"] == "exponent")]
        return d.set_index("resample")["value"].to_numpy()

    base = exponents("llama")
    parts, text, numbers, tolerance = [], [], {}, {}
    for arch in LINEAR:
        reason = _not_identified(approach1, arch, identified, "no envelope fit")
        if reason:
            parts.append(v.fixed_part(v.NOT_TESTABLE))
            text.append(reason)
            continue
        e = exponents(arch)
        n = min(len(e), len(base))
        diff = e[:n] - base[:n]
        low, high = np.percentile(diff, [5, 95])
        est = approach1.value("L(C)", "exponent", arch) - approach1.value("L(C)", "exponent", "llama")
        parts.append(v.interval_part(est, low, high, lambda lo_, hi_: v.interval_equivalence(lo_, hi_, margin), 0.90,
                                     shared="llama"))
        half = (high - low) / 2
        text.append(f"{_label(arch)} {est:+.4f} [{low:+.4f}, {high:+.4f}]")
        numbers[f"exponent-llama[{arch}]"], tolerance[f"exponent-llama[{arch}]"] = float(est), float(half)
    evidence = (f"L(C) exponent minus LLaMA's (90% bootstrap interval; alike means inside ±{margin}): "
                + "; ".join(text))
    return _row("exponents", claim, paper, evidence, parts, numbers=numbers, tolerance=tolerance)


# ----------------------------------------------------------------------------- downstream


class SeedRuns(NamedTuple):
    """Several seeds per architecture at one size: ``scores`` (one row per run at its final checkpoint),
    their ``noise`` (:class:`~linscale.findings.rules.Noise` of the same runs) and the size's name."""

    scores: pd.DataFrame
    noise: v.Noise
    size: str

    def where(self) -> str:
        """Where the means come from; seeds as a range where architectures have unequal numbers of them (a
        diverged run leaves its seed out): the smallest alone read as if every mean had that many."""
        counts = self.scores.groupby("arch").size() if len(self.scores) else pd.Series([0])
        low, high = int(counts.min()), int(counts.max())
        return f"size {self.size}, means over {low if low == high else f'{low} to {high}'} seeds"

    def diff(self, arch: str, other: str, column: str, relative: bool = False) -> tuple[float, float, int]:
        """Mean of ``arch`` minus mean of ``other`` (relative to ``other``'s when ``relative``) and its noise
        bound: the noise of a difference of means (pooled over every architecture, as every bound), and
        that bound's degrees of freedom."""
        if column not in self.scores:
            return np.nan, np.nan, 0
        g = self.scores.groupby("arch")[column]
        mean, n = g.mean(), g.count()
        if arch not in mean.index or other not in mean.index or not np.isfinite(mean[[arch, other]]).all():
            return np.nan, np.nan, 0
        d = mean[arch] - mean[other]
        if relative:
            d = d / mean[other]
        u = self.noise.bound_of_means(column, int(n[arch]), int(n[other]), relative=relative)
        return float(d), float(u), self.noise.dof(column, relative=relative)


def _decay_verdict(parts: list[str]) -> str:
    """The decay claim from its three parts (knowledge, bits per byte, retrieval): worse language
    modelling is either measure worse beyond the noise while the other is not better beyond it (two
    measures that disagree beyond their noise decide nothing), and better on both is against it; then
    both halves."""
    knowledge, bits, retrieval = parts
    language = v.REPRODUCED if v.REPRODUCED in (knowledge, bits) and v.NOT_REPRODUCED not in (knowledge, bits) \
        else v.NOT_REPRODUCED if knowledge == bits == v.NOT_REPRODUCED else v.INCONCLUSIVE
    return v.combine([language, retrieval])


# the paper's numbers behind the decay claim: cosFormer2 (no decay) against TNL (fixed decay), Table 4
DECAY_PAPER = ("§5.3 and Table 4: cosFormer2 below TNL on CSR at 1B (46.37 against 50.09) and LAMBADA perplexity "
               "(15.5 against 12.2); NIAH above it at 3B and 7B (25.8 against 11.1; 23.6 against 20.5), below it "
               "from 70M to 1B")


def downstream_claims(scores: pd.DataFrame, noise: v.Noise, size: str, retrieval: SeedRuns | None = None) -> list[dict]:
    """Knowledge and perplexity, retrieval, and decay, on models trained with several seeds per
    architecture (``scores``: one row per run at its final checkpoint, of the seeds ablation's size):
    means over seeds, each difference judged against the noise bound of a difference of means.

    ``retrieval``: the runs the retrieval comparisons (the retrieval claim, the decay claim's retrieval
    half) are judged on, when not these: the grid's largest size (the size_seeds ablation). Retrieval
    is compared where it has emerged, or the comparison measures seed luck: at the seeds ablation's size
    some seeds of a model find the needle and others do not (a seed-to-seed sd of NIAH up to 0.19 where
    the largest size's is 0.03), and the largest size is the one nearest the paper's. Knowledge and
    perplexity stay at the seeds ablation's size, three seeds, where they are not at the ceiling every
    model reaches at the largest."""
    base = SeedRuns(scores, noise, size)
    recall = retrieval if retrieval is not None and len(retrieval.scores) else base
    rows = []
    have = set(scores["arch"]) if len(scores) else set()
    have_recall = set(recall.scores["arch"]) if len(recall.scores) else set()

    claim = "The linear models match or beat LLaMA on knowledge and perplexity"
    paper = ("Table 4: CSR and WikiText-2/LAMBADA perplexity of linear models at or above LLaMA's (at 1B: CSR "
             "TNL 50.09, HGRN2 50.92, cosFormer2 46.37 against 49.14; WikiText-2 21.0-21.7 against 26.5)")
    if "llama" in have and have & set(LINEAR):
        parts, text, numbers, tolerance = [], [], {}, {}
        acc_margin, bpb_margin = v.MARGINS["accuracy"], v.MARGINS["bits_per_byte"]
        for arch in [a for a in LINEAR if a in have]:
            d, u, dof = base.diff(arch, "llama", "knowledge_acc")
            db, ub, dofb = base.diff(arch, "llama", "bits_per_byte", relative=True)
            # non-inferiority: "no worse than the margin" is "d + margin > 0" beyond the noise
            parts += [v.difference_part(d + acc_margin, u, dof, "positive", shared="llama/knowledge_acc",
                                        noise="knowledge_acc"),
                      v.difference_part(db - bpb_margin, ub, dofb, "negative", shared="llama/bits_per_byte",
                                        noise="bits_per_byte")]
            text.append(f"{_label(arch)} knowledge {d:+.3f} (±{u:.3f}), bits/byte {db:+.2%} (±{ub:.2%})")
            numbers[f"knowledge_acc-llama[{arch}]"], tolerance[f"knowledge_acc-llama[{arch}]"] = d, u
            numbers[f"bits_per_byte/llama-1[{arch}]"], tolerance[f"bits_per_byte/llama-1[{arch}]"] = db, ub
        rows.append(_row("knowledge", claim, paper, f"{base.where()}, difference from LLaMA: " + "; ".join(text) +
                         f" (matching means no worse than {acc_margin} in accuracy and {bpb_margin:.0%} in bits "
                         "per byte, beyond the noise)", parts, numbers=numbers, tolerance=tolerance))
    else:
        rows.append(_row("knowledge", claim, paper, "no downstream results of the seeds ablation", v.NOT_TESTABLE))

    claim = "LLaMA retrieves better than every linear model"
    paper = ("Table 4 / 11: NIAH of LLaMA far above the linear models from 410M on (at 1B: 44.1 against 10.0-28.0; "
             "at 7B: 59.7 against 20.5-30.8)")
    if "llama" in have_recall and have_recall & set(LINEAR) and "niah_easy_wa" in recall.scores:
        parts, text, numbers, tolerance = [], [], {}, {}
        for arch in [a for a in LINEAR if a in have_recall]:
            d, u, dof = recall.diff("llama", arch, "niah_easy_wa")
            parts.append(v.difference_part(d, u, dof, "positive", shared="llama", noise="niah_easy_wa"))
            text.append(f"LLaMA − {_label(arch)} {d:+.3f} (±{u:.3f})")
            numbers[f"niah_easy_wa llama-[{arch}]"], tolerance[f"niah_easy_wa llama-[{arch}]"] = d, u
        rows.append(_row("retrieval", claim, paper, f"{recall.where()}, NIAH (easy) weighted accuracy: " + "; ".join(text),
                         parts, numbers=numbers, tolerance=tolerance))
    else:
        rows.append(_row("retrieval", claim, paper, "no retrieval results of models trained with several seeds",
                         v.NOT_TESTABLE))

    claim = "Without decay (cosFormer2) language modelling is worse but retrieval better than with fixed decay (TNL)"
    if {"tnl", "cosformer2"} <= have and {"tnl", "cosformer2"} <= have_recall:
        dk, uk, dofk = base.diff("cosformer2", "tnl", "knowledge_acc")
        db, ub, dofb = base.diff("cosformer2", "tnl", "bits_per_byte", relative=True)
        dn, un, dofn = recall.diff("cosformer2", "tnl", "niah_easy_wa")
        parts = [v.difference_part(dk, uk, dofk, "negative", noise="knowledge_acc"),
                 v.difference_part(db, ub, dofb, "positive", noise="bits_per_byte"),
                 v.difference_part(dn, un, dofn, "positive", noise="niah_easy_wa")]
        numbers = {"knowledge_acc cosformer2-tnl": dk, "bits_per_byte cosformer2/tnl-1": db,
                   "niah_easy_wa cosformer2-tnl": dn}
        tolerance = {"knowledge_acc cosformer2-tnl": uk, "bits_per_byte cosformer2/tnl-1": ub,
                     "niah_easy_wa cosformer2-tnl": un}
        niah = f"NIAH (easy) {dn:+.3f} (±{un:.3f})"
        niah = niah if recall is base else f"{recall.where()}: {niah}"
        rows.append(_row("decay", claim, DECAY_PAPER,
                         f"cosFormer2 − TNL, {base.where()}: knowledge {dk:+.3f} (±{uk:.3f}), bits/byte {db:+.2%} "
                         f"(±{ub:.2%}); {niah}", parts,
                         numbers=numbers, tolerance=tolerance, how=_decay_verdict))
    else:
        rows.append(_row("decay", claim, DECAY_PAPER, "needs TNL and cosFormer2", v.NOT_TESTABLE))
    return rows


# ----------------------------------------------------------------------------- ablations


def ablation_claims(aspect: pd.DataFrame, context: pd.DataFrame, context_scores: pd.DataFrame,
                    noise: v.Noise, context_noise: v.Noise | None = None, context_size: str | None = None) -> list[dict]:
    """Aspect ratio and training context (the paper's §5.1-5.2) on the ablations' final losses and
    scores. ``aspect``: one row per run (arch, aspect, loss); ``context``: one row per run (arch, seq_len,
    ``excess``: the final loss above the Bayes loss of the same tokens, so that contexts whose languages
    differ in entropy compare alike); ``context_scores``: NIAH at one common context length. ``noise``:
    that of the aspect ablation's size (the seeds ablation's, :meth:`~linscale.findings.rules.Noise.at`),
    ``context_noise`` that of the context ablation's size ``context_size`` when it retrains another
    (default: ``noise``); every bound pooled over the four architectures (:mod:`~linscale.findings.rules`)."""
    rows = []
    context_noise = noise if context_noise is None else context_noise
    at = f"size {context_size}, " if context_size else ""
    claim = "Linear models are more sensitive to the aspect ratio than LLaMA"
    # the spreads are over the shapes both architectures have a final loss for (a run missing or without a
    # finite loss would narrow one spread: pandas' max and min skip NaN)
    finite = aspect[np.isfinite(aspect["loss"].to_numpy(dtype=float))] if len(aspect) else aspect
    shapes = [set(finite.loc[finite["arch"] == arch, "aspect"]) if len(finite) else set()
              for arch in ("llama", "cosformer2")]
    common = shapes[0] & shapes[1]
    if len(common) > 1:
        spread = finite[finite["aspect"].isin(common)].groupby("arch")["loss"].agg(lambda s: s.max() / s.min() - 1)
        d = float(spread["cosformer2"] - spread["llama"])
        # each spread is a difference of two runs' losses (bound √2·t·s); a difference of two spreads
        # has twice that variance
        u = noise.bound("loss", relative=True) * np.sqrt(2)
        rows.append(_row("aspect", claim, "Table 5 (1B, d/l from 48 to 384): CSR across the four shapes LLaMA "
                         "47.19-49.70, cosFormer2 45.80-49.53; WikiText-2 perplexity 19.8-26.5 and 21.0-23.4",
                         f"final-loss spread across shapes: cosFormer2 {spread['cosformer2']:.2%}, LLaMA "
                         f"{spread['llama']:.2%}; difference {d:+.2%} (±{u:.2%})",
                         [v.difference_part(d, u, noise.dof("loss", relative=True), "positive")],
                         {"spread cosformer2-llama": d}, {"spread cosformer2-llama": u}))
    else:
        rows.append(_row("aspect", claim, "Table 5", "no aspect-ratio ablation for LLaMA and cosFormer2 (final "
                         "losses of two or more shapes of both)", v.NOT_TESTABLE))

    claim = "The training context length barely changes the linear models' language modelling"
    linear = [a for a in LINEAR if len(context) and a in set(context["arch"])]
    # one architecture with two contexts or more is an ablation: one left with fewer (its other runs diverged,
    # and an ablation's table leaves those out) is its own part, not testable, beside the others judged
    if linear and context.groupby("arch")["seq_len"].nunique().max() > 1:
        parts, text, numbers, tolerance = [], [], {}, {}
        margin = v.MARGINS["context_excess"]
        for arch in linear:
            part = context[(context["arch"] == arch) & np.isfinite(context["excess"].to_numpy(dtype=float))]
            if part["seq_len"].nunique() < 2:  # pandas' max and min skip NaN: one context would be a spread of 0
                parts.append(v.fixed_part(v.NOT_TESTABLE))
                text.append(f"{_label(arch)} has a finite final loss at fewer than two contexts")
                continue
            spread = float(part["excess"].max() - part["excess"].min())
            u = context_noise.bound("excess")
            parts.append(v.equivalence_part(spread, u, context_noise.dof("excess"), margin, noise="excess"))
            text.append(f"{_label(arch)} {spread:.4f} (±{u:.4f})")
            numbers[f"excess spread[{arch}]"], tolerance[f"excess spread[{arch}]"] = spread, u
        # the paper's "flat" is for 2K-8K (its main context), with 16K "slightly worse": the rule spreads over
        # every trained context, so the evidence names them and the paper column says both
        lengths = ", ".join(str(int(n)) for n in sorted(set(context["seq_len"])))
        rows.append(_row("context_loss", claim, "Table 6: CSR and perplexity flat from 2K to 8K (its main context), "
                         "slightly worse at 16K (TNL at 2K, 4K, 8K, 16K: CSR 50.77, 51.22, 50.45, 48.34; "
                         "WikiText-2 26.4, 23.9, 20.6, 20.6)",
                         f"{at}spread across training contexts of {lengths} tokens of the final loss above the Bayes "
                         "loss of the same tokens, nats: " + "; ".join(text)
                         + f" (alike means within {margin} nats, noise included)",
                         parts, numbers=numbers, tolerance=tolerance))
    else:
        rows.append(_row("context_loss", claim, "Table 6", "no training-context ablation", v.NOT_TESTABLE))

    claim = "Short training contexts hurt the linear models' retrieval"
    metric = "niah_easy_wa"
    usable = context_scores is not None and len(context_scores) and metric in context_scores
    linear = [a for a in LINEAR if usable and a in set(context_scores["arch"])]
    if linear and context_scores.groupby("arch")["seq_len"].nunique().max() > 1:  # as the context claim above
        parts, text, numbers, tolerance = [], [], {}, {}
        for arch in linear:
            part = context_scores[(context_scores["arch"] == arch)
                                  & np.isfinite(context_scores[metric].to_numpy(dtype=float))].sort_values("seq_len")
            if part["seq_len"].nunique() < 2:
                parts.append(v.fixed_part(v.NOT_TESTABLE))
                text.append(f"{_label(arch)} has a score at fewer than two contexts")
                continue
            short, long_ = part.iloc[0], part.iloc[-1]
            d = float(long_[metric] - short[metric])
            u = context_noise.bound(metric)
            parts.append(v.difference_part(d, u, context_noise.dof(metric), "positive", noise=metric))
            text.append(f"{_label(arch)} {short[metric]:.3f} (n = {int(short['seq_len'])}) → {long_[metric]:.3f} "
                        f"(n = {int(long_['seq_len'])}), ±{u:.3f}")
            numbers[f"{metric} long-short[{arch}]"], tolerance[f"{metric} long-short[{arch}]"] = d, u
        rows.append(_row("context_retrieval", claim, "Table 6: NIAH peaks at 8K (at 2K, 4K, 8K, 16K: TNL 8.0, 12.1, "
                         "28.0, 14.2; HGRN2 2.3, 2.1, 10.0, 8.8; cosFormer2 6.8, 6.5, 10.9, 9.6)",
                         f"{at}NIAH (easy) weighted accuracy, every run evaluated at the main grid's context: "
                         + "; ".join(text), parts, numbers=numbers, tolerance=tolerance))
    else:
        rows.append(_row("context_retrieval", claim, "Table 6", "retrieval not evaluated on the context ablation",
                         v.NOT_TESTABLE))
    return rows


# ----------------------------------------------------------------------------- from a results folder


def claims_from_results(results_dir: str, preset: str) -> pd.DataFrame:
    """The study's verdicts from its results folder alone (``results_dir/preset/``): the runs, the stored
    fits (``fits/``, with their bootstrap draws and the design check's verdicts), the evaluation and
    the ablations. Nothing is refitted or resampled here, so the same folder always gives the same
    verdicts. The findings chapter and ``linscale compare`` both call this."""
    from linscale import results
    from linscale.findings import inputs
    from linscale.findings.ablations import ablation_scores, read_ablation

    runs = results.read_runs(preset, results_dir)
    results.read_eval(preset, results_dir)  # a study's folder has its evaluation: a missing one is a one-line error
    window = inputs.fitted_window(runs, preset, results_dir)
    order = inputs.size_order(runs)
    seeds = inputs.final_rows(inputs.with_fitted_loss(read_ablation(preset, results_dir, "seeds"), preset, results_dir))
    seed_scores = ablation_scores(preset, results_dir, "seeds")
    sized = sized_noise(preset, results_dir, seeds)
    size = str(seeds["size"].iloc[0]) if len(seeds) else "?"
    noise = sized.at(size, order)  # the seeds ablation's size: downstream and the aspect ablation

    rows = [lower_loss_claim(window, sized)]
    approach2, approach1 = inputs.read_fit(preset, results_dir, "approach2"), inputs.read_fit(preset, results_dir, "approach1")
    rows += allocation_claims(approach2, inputs.identified_archs(approach2, "N_opt(C)"))
    rows.append(exponent_claim(approach1, inputs.identified_archs(approach1, "L(C)")))
    base_scores = inputs.final_rows(seed_scores) if len(seed_scores) else seed_scores
    rows += downstream_claims(base_scores, noise, size, largest_size_seeds(preset, results_dir, order, sized))
    aspect = inputs.final_rows(inputs.with_fitted_loss(read_ablation(preset, results_dir, "aspect"), preset, results_dir))
    context = inputs.final_rows(inputs.with_fitted_loss(read_ablation(preset, results_dir, "context"), preset, results_dir))
    context_scores = ablation_scores(preset, results_dir, "context")
    context_size = str(context["size"].iloc[0]) if len(context) else size
    shapes = aspect.assign(loss=aspect.get("fitted_loss"), aspect=aspect["d_model"] / aspect["n_layer"])
    rows += ablation_claims(shapes, context,
                            inputs.final_rows(context_scores) if len(context_scores) else context_scores, noise,
                            sized.at(context_size, order), context_size)
    return pd.DataFrame(rows, columns=CLAIM_COLUMNS)


def largest_size_seeds(preset: str, results_dir: str, order, noise: v.Noise | None = None) -> SeedRuns | None:
    """The size_seeds ablation's evaluated runs at the largest grid size it retrained (``order``: the
    grid's sizes, smallest first), two seeds per architecture (the main sweep's and the next): where the
    retrieval claims are judged, with ``noise`` seen from that size (:func:`sized_noise`; default: these
    runs' own). None without them (a preset that leaves size_seeds out, a study that did not evaluate
    them, an architecture with one seed there)."""
    from linscale.findings import inputs
    from linscale.findings.ablations import ablation_scores

    scores = ablation_scores(preset, results_dir, "size_seeds")
    if not len(scores) or "niah_easy_wa" not in scores:
        return None
    scores = inputs.final_rows(scores)
    sizes = [str(name) for name in order if str(name) in set(scores["size"].astype(str))]
    if not sizes:
        return None
    largest = scores[scores["size"].astype(str) == sizes[-1]].reset_index(drop=True)
    if largest.groupby("arch").size().min() < 2:
        return None
    return SeedRuns(largest, (noise or v.Noise(largest)).at(sizes[-1], order), sizes[-1])


def retrieval_scores(preset: str, results_dir: str, order) -> tuple[pd.DataFrame, bool]:
    """The final scores the retrieval claims are judged on (as :func:`claims_from_results` passes them to
    :func:`downstream_claims`): the largest size's size_seeds runs where evaluated there, else the seeds
    ablation's; and whether they are the largest size's (the pages say where)."""
    from linscale.findings import inputs
    from linscale.findings.ablations import ablation_scores

    top = largest_size_seeds(preset, results_dir, order)
    if top is not None and len(top.scores):
        return top.scores, True
    return inputs.final_rows(ablation_scores(preset, results_dir, "seeds")), False


def sized_noise(preset: str, results_dir: str, seeds: pd.DataFrame | None = None) -> v.Noise:
    """The seed noise per size: the seeds ablation's runs (the base size) and the size_seeds ablation's
    (the grid's ends, beside the main sweep's runs of those sizes), each run's last row with its fitted
    loss and excess loss, and their downstream scores where evaluated; samples with ``arch``, ``size``,
    ``loss``, ``excess`` and the accuracies (a run's loss and its scores are separate rows), and the
    parameters of every size of the main grid (median over the architectures), where the trend of the
    losses' noise is read (:meth:`~linscale.findings.rules.Noise.trend`)."""
    from linscale import results
    from linscale.findings import inputs
    from linscale.findings.ablations import ablation_scores, read_ablation

    def finals(name):
        return inputs.final_rows(inputs.with_fitted_loss(read_ablation(preset, results_dir, name), preset, results_dir))

    seeds = finals("seeds") if seeds is None else seeds
    frames = [t[["arch", "size", "fitted_loss", "excess"]] for t in (seeds, finals("size_seeds")) if len(t)]
    for name in ("seeds", "size_seeds"):  # their downstream scores, where evaluated (one row per run)
        scores = ablation_scores(preset, results_dir, name)
        if len(scores):
            frames.append(inputs.final_rows(scores).drop(columns=["loss"], errors="ignore"))
    samples = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["arch", "size", "fitted_loss"])
    runs = results.read_runs(preset, results_dir)
    params = runs.groupby(runs["size"].astype(str))["params"].median().to_dict()
    return v.Noise(samples.rename(columns={"fitted_loss": "loss"}).assign(size=lambda t: t["size"].astype(str)),
                   params=params)


def measured_sized_noise(preset: str, results_dir: str) -> v.Noise:
    """:func:`sized_noise`, refused (ValueError) where the study trained no seeds or size_seeds runs (its
    preset's ``ablations`` leave them out, or ``--no-ablations``, as a study of real text may): every bound
    of its empty noise is NaN, which the training and scaling-laws pages printed as "nan%" beside "fitted
    to seeds at ;", where they say instead that no seed noise was measured."""
    noise = sized_noise(preset, results_dir)
    if not noise.samples["loss"].notna().any():
        raise ValueError(f"the {preset} study in {results_dir} measured no seed noise (no seeds or size_seeds runs)")
    return noise


def verdict_counts(table: pd.DataFrame) -> dict:
    """{verdict: count} over the claims table, every verdict present (0 when absent)."""
    counts = table["verdict"].value_counts()
    return {name: int(counts.get(name, 0)) for name in v.VERDICTS}
