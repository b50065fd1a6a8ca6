"""Findings about the fitted laws: the loss envelope at a compute value, the fits a grid may not support
(:class:`FitAttempt`), the paper's Table 3 beside ours, extrapolation errors and size inversions."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from linscale.findings.rules import LINEAR  # noqa: F401  (re-exported)


def _env(fit) -> pd.DataFrame:
    points = fit.points[fit.points["law"] == "L(C)"].rename(columns={"group": "arch"})
    return points


def common_compute(fit) -> float:
    """The largest compute (PF-days) that every architecture's envelope reaches."""
    env = _env(fit)
    return float(env.groupby("arch")["compute"].max().min())


def envelope_at(fit, compute: float | None = None) -> pd.DataFrame:
    """Each architecture's envelope loss (interpolated in log-log) and fitted L(C) at one compute value
    (default: :func:`common_compute`), with the ratio to LLaMA's, and the run the envelope follows there
    (the envelope point nearest in log compute; whose seed noise a comparison there must allow for).
    Columns: arch, compute, envelope_loss, fitted_loss, run_id, vs_llama."""
    compute = common_compute(fit) if compute is None else float(compute)
    rows = []
    for arch, part in _env(fit).groupby("arch"):
        part = part.sort_values("compute")
        log_c = np.log(part["compute"].to_numpy())
        observed = float(np.exp(np.interp(np.log(compute), log_c, np.log(part["observed"].to_numpy()))))
        fitted = float(np.exp(np.interp(np.log(compute), log_c, np.log(part["fitted"].to_numpy()))))
        nearest = part["run_id"].iloc[int(np.argmin(np.abs(log_c - np.log(compute))))] if "run_id" in part else None
        rows.append({"arch": arch, "compute": compute, "envelope_loss": observed, "fitted_loss": fitted,
                     "run_id": nearest})
    table = pd.DataFrame(rows)
    if "llama" in set(table["arch"]):
        llama = float(table.loc[table["arch"] == "llama", "envelope_loss"].iloc[0])
        table["vs_llama"] = table["envelope_loss"] / llama
    else:
        table["vs_llama"] = np.nan
    return table.sort_values("envelope_loss").reset_index(drop=True)


def lowest_envelope_shares(fit, points: int = 200) -> tuple[pd.Series, tuple[float, float]]:
    """Which architecture's envelope is lowest where all of them are measured: over ``points`` log-spaced
    compute values from the largest of the envelopes' first computes to :func:`common_compute`, the
    share of that log range on which each architecture's envelope (:func:`envelope_at`) is the lowest.
    A ranking at one compute value can hide a lead that holds over most of the range, or reverses.
    Returns (shares by arch, largest first; (low, high) compute)."""
    env = _env(fit)
    low, high = float(env.groupby("arch")["compute"].min().max()), common_compute(fit)
    grid = np.geomspace(low, high, points) if high > low else np.array([high])
    lowest = pd.Series([envelope_at(fit, c)["arch"].iloc[0] for c in grid])
    return lowest.value_counts(normalize=True).rename("share"), (low, high)


def compute_gap_decades(runs: pd.DataFrame, reference_preset: str = "paper") -> float:
    """How many decades of compute lie between our largest run and the cheapest run of a reference
    grid (the paper's 70M models on 300B tokens)."""
    from linscale.accounting import training_budget

    cheapest = float(training_budget(reference_preset)["pf_days"].min())
    return float(np.log10(cheapest / float(runs["pf_days"].max())))


# ----------------------------------------------------------------------------- fits


METHOD_NAMES = {"approach1": "The paper's method (Chinchilla's approach 1)",
                "approach2": "Chinchilla's second approach (IsoFLOP profiles)",
                "approach3": "Chinchilla's third approach (the parametric law)"}


class FitAttempt:
    """A fit that may be impossible on a given grid (too few sizes, no interior IsoFLOP minimum, ...):
    ``fit`` is the LawFit or None, ``error`` the one-line reason it failed (empty when it worked) and
    ``note`` what was given up to make it work (the intervals, when the bootstrap was impossible).

    A notebook shows it as a sentence (:meth:`sentence`, Markdown), never as a Python repr."""

    def __init__(self, fit=None, error: str = "", note: str = "", method: str = ""):
        self.fit, self.error, self.note, self.method = fit, error, note, method or getattr(fit, "method", "")

    @property
    def ok(self) -> bool:
        return self.fit is not None

    def sentence(self) -> str:
        """What happened, as a sentence for the page: fitted (and what was given up), or why not."""
        name = METHOD_NAMES.get(self.method, f"The fit {self.method}".strip())
        if self.ok:
            return f"{name} was fitted" + (f" ({_readable(self.note)})." if self.note else ".")
        reason, details = _split_reason(self.error)
        if "; " in reason:  # several architectures' reasons, each with its own list by compute budget: the
            # page gives the reasons, the lists stay in fits/status.csv (a page of budgets said nothing more)
            reason = re.sub(r" \((?:[^()]|\([^()]*\))*FLOPs:(?:[^()]|\([^()]*\))*\)", "", reason)
            return f"{name} could not be fitted on this grid: {reason} (each compute budget's reason: fits/status.csv)."
        return f"{name} could not be fitted on this grid: {reason}" + (
            f" (by compute budget: {details})." if details else ".")

    def _repr_markdown_(self) -> str:
        return self.sentence()

    def __repr__(self) -> str:  # a Python prompt; notebooks show the sentence
        if not self.ok:
            return f"FitAttempt(not possible: {self.error})"
        return f"FitAttempt({self.fit.method} fitted{'; ' + self.note if self.note else ''})"


def _readable(text: str) -> str:
    """A linscale.laws message in the book's words: ``approach2 [cosformer2]: ...`` -> ``for cosFormer2, ...``."""
    from linscale.config import arch_label

    text = re.sub(r"approach\d\s*\[(\w+)\]:\s*", lambda m: "" if m.group(1) == "all" else f"for {arch_label(m.group(1))}, ", text.strip())
    text = re.sub(r"approach\d\s*(all)?:\s*", "", text)
    return re.sub(r"\[(\w+)\]", lambda m: arch_label(m.group(1)), text).rstrip(".")


def _split_reason(error: str) -> tuple[str, str]:
    """(the reason, the per-item details that laws put in a trailing parenthesis) of an error message."""
    text = _readable(error)
    if text.endswith(")") and " (" in text:
        depth, i = 0, len(text) - 1
        while i >= 0:
            depth += {")": 1, "(": -1}.get(text[i], 0)
            if depth == 0:
                break
            i -= 1
        if i > 0:
            return text[:i].rstrip(), text[i + 1:-1]
    return text, ""


def try_fit(runs: pd.DataFrame, method: str, bootstrap: int = 0, seed: int = 0, **kwargs) -> FitAttempt:
    """``linscale.laws.fit`` with a bootstrap over runs (when ``bootstrap`` ≥ 2), returning the reason
    instead of raising when the grid cannot support the method (``LawsInputError``). When only the
    bootstrap is impossible (too few runs to resample), the fit is made without intervals and ``note``
    says why."""
    from linscale import laws

    try:
        if bootstrap >= 2:
            try:
                return FitAttempt(laws.fit(runs, method, bootstrap_resamples=bootstrap, seed=seed, **kwargs))
            except laws.LawsInputError as err:
                fit = laws.fit(runs, method, **kwargs)
                return FitAttempt(fit, note=f"no bootstrap intervals: {err}", method=method)
        return FitAttempt(laws.fit(runs, method, **kwargs), method=method)
    except laws.LawsInputError as err:
        return FitAttempt(None, str(err), method=method)


def _fmt(value: float, digits: int = 4) -> str:
    if not np.isfinite(value):
        return "–"
    return f"{value:.{digits}g}" if abs(value) >= 1e4 or abs(value) < 1e-3 else f"{value:.{digits}f}"


def table3_side_by_side(comparison: pd.DataFrame) -> pd.DataFrame:
    """The paper's Table 3 beside ours: one row per architecture and law, columns paper's law, our law
    and our 95% intervals for the exponent and the coefficient (PF-days), and whether the paper's
    exponent lies inside our interval. A law marked not identified (column ``identified``, from the
    stored fits) shows no numbers."""
    from linscale.config import ARCHITECTURES, arch_label

    rows = []
    for (arch, law), part in comparison.groupby(["group", "law"], sort=False):
        part = part.set_index("parameter")
        k, e = part.loc["coefficient"], part.loc["exponent"]
        if "identified" in part and not bool(e.get("identified", True)):  # the design check says no: no numbers
            rows.append({"arch": arch_label(arch), "law": law,
                         "paper": f"{_fmt(k['paper'])} · C^{_fmt(e['paper'])}", "ours": "not identified",
                         "exponent 95% CI": "–", "coefficient 95% CI": "–", "interval": "",
                         "paper exponent in CI": "–"})
            continue
        rows.append({
            "arch": arch_label(arch), "law": law,
            "paper": f"{_fmt(k['paper'])} · C^{_fmt(e['paper'])}",
            "ours": f"{_fmt(k['estimate'])} · C^{_fmt(e['estimate'])}",
            "exponent 95% CI": f"[{_fmt(e['ci_low'])}, {_fmt(e['ci_high'])}]",
            "coefficient 95% CI": f"[{_fmt(k['ci_low'])}, {_fmt(k['ci_high'])}]",
            "interval": str(e.get("ci_method", "")),
            "paper exponent in CI": {True: "yes", False: "no"}.get(e["paper_in_ci"], "–"),
        })
    order = {arch_label(a): i for i, a in enumerate(ARCHITECTURES)}
    laws_order = {"L(C)": 0, "N_opt(C)": 1, "D_opt(C)": 2}
    table = pd.DataFrame(rows)
    return table.sort_values(["arch", "law"], key=lambda c: c.map(order if c.name == "arch" else laws_order)) \
        .reset_index(drop=True)


def allocation_exponents(attempts: dict) -> pd.DataFrame:
    """The compute-optimal allocation N_opt ∝ C^a and D_opt ∝ C^b from each approach that could be
    fitted: one row per (method, arch) with a, b and their intervals. ``attempts``: {method: FitAttempt}."""
    rows = []
    for method, attempt in attempts.items():
        if not attempt.ok:
            continue
        params = attempt.fit.params
        for arch, part in params.groupby("group"):
            row = {"method": method, "arch": arch}
            parametric = method.startswith("approach3")  # a and b follow from the law's alpha and beta
            for symbol, law, parameter in (("a", "N_opt(C)", "a" if parametric else "exponent"),
                                           ("b", "D_opt(C)", "b" if parametric else "exponent")):
                hit = part[(part["law"] == law) & (part["parameter"] == parameter)]
                if len(hit):
                    row[symbol] = float(hit["estimate"].iloc[0])
                    row[f"{symbol}_ci_low"] = float(hit["ci_low"].iloc[0])
                    row[f"{symbol}_ci_high"] = float(hit["ci_high"].iloc[0])
                    if "identified" in hit:  # the design check's verdict on this law (stored fits)
                        row["identified"] = bool(row.get("identified", True) and hit["identified"].astype(bool).all())
            rows.append(row)
    return pd.DataFrame(rows)


def irreducible_vs_bayes(fit3, bayes_loss: float) -> pd.DataFrame:
    """Approach 3's irreducible loss E per architecture (with its interval) beside the exact Bayes loss
    of the synthetic language: the fit's E should not fall below it. With ``fit3`` None (approach 3 not
    possible on the grid) the table is empty."""
    if fit3 is None:
        return pd.DataFrame(columns=["arch", "E", "ci_low", "ci_high", "bayes_loss", "E_minus_bayes", "bayes_in_ci"])
    e = fit3.params[(fit3.params["law"] == "L(N,D)") & (fit3.params["parameter"] == "E")]
    table = e.rename(columns={"group": "arch", "estimate": "E"})[["arch", "E", "ci_low", "ci_high"]].copy()
    table["bayes_loss"] = float(bayes_loss)
    table["E_minus_bayes"] = table["E"] - table["bayes_loss"]
    table["bayes_in_ci"] = (table["ci_low"] <= table["bayes_loss"]) & (table["bayes_loss"] <= table["ci_high"])
    return table.reset_index(drop=True)


HOLDOUT_TARGET = 0.02  # issue 15's acceptance: a refit predicts every held-out final loss within 2%


def holdout_against_design(holdout: pd.DataFrame, bounds: pd.DataFrame | None) -> pd.DataFrame:
    """Per (method, arch) of the study's hold-out check (fits/holdout.csv): how many runs were held out,
    the worst |predicted/observed − 1|, ``bias`` (the mean signed error: positive when the law predicts
    more loss than the runs reached), whether the worst is within ``HOLDOUT_TARGET``, and the design check's
    bound for it (fits/design_holdout.csv: what a refit of a true law misses by at most on this grid, at
    the design noise). ``beyond_design``: the refit misses by more than a true law would, so the law's form
    does not describe these models; NaN without a bound (no design check, or its refits failed)."""
    errors = holdout.dropna(subset=["rel_error"]).assign(abs_error=lambda t: t["rel_error"].abs())
    worst = errors.groupby(["method", "arch"], as_index=False, sort=False).agg(runs=("run_id", "count"),
                                                                              worst=("abs_error", "max"),
                                                                              bias=("rel_error", "mean"))
    worst["within_target"] = worst["worst"] <= HOLDOUT_TARGET
    if bounds is None or not len(bounds):
        return worst.assign(design_bound=np.nan, beyond_design=np.nan)
    worst = worst.merge(bounds[["method", "arch", "bound"]].rename(columns={"bound": "design_bound"}),
                        on=["method", "arch"], how="left")
    beyond = (worst["worst"] > worst["design_bound"]).astype(object)
    worst["beyond_design"] = beyond.where(worst["design_bound"].notna(), np.nan)
    return worst


def refit_failure_words(reasons) -> str:
    """Why no law could be refitted without the top decade, in words for the prose: the usual cause (too few
    checkpoints below the cut for the law's parameters, in the fitting code's message) said once for every
    architecture, or else the first reason as the fit gave it; "" when none was given."""
    reasons = [str(r) for r in reasons]
    too_few = [re.search(r"needs at least (\d+) rows for (\d+) parameters, got (\d+)", r) for r in reasons]
    if too_few and all(too_few):
        kept = sorted({int(m[3]) for m in too_few})
        kept_text = str(kept[0]) if len(kept) == 1 else f"{kept[0]} to {kept[-1]}"
        return (f"below the cut each architecture keeps {kept_text} checkpoints, fewer than the {too_few[0][1]} a "
                f"law of {too_few[0][2]} parameters needs")
    return reasons[0] if reasons else ""


def size_inversions(runs: pd.DataFrame, loss: str = "train_loss") -> pd.DataFrame:
    """Where a larger model of the main grid ends training with a higher loss than the next smaller one
    of its architecture: arch, the two sizes, their final losses and the relative gap (larger/smaller − 1).
    Compare the gap with :func:`seed_tolerance` to tell a real inversion from seed noise."""
    from linscale.results import run_summary

    rows = []
    for arch, part in run_summary(runs, loss=loss).groupby("arch", sort=False):
        part = part.sort_values("params")
        for (_, small), (_, large) in zip(part.iloc[:-1].iterrows(), part.iloc[1:].iterrows()):
            if large[loss] > small[loss]:
                rows.append({"arch": arch, "smaller": small["size"], "larger": large["size"],
                             "smaller_loss": float(small[loss]), "larger_loss": float(large[loss]),
                             "gap": float(large[loss] / small[loss] - 1)})
    return pd.DataFrame(rows, columns=["arch", "smaller", "larger", "smaller_loss", "larger_loss", "gap"])


def run_residuals(points: pd.DataFrame) -> pd.DataFrame:
    """Each run's mean log residual around a fitted law (its ``points``: group, run_id, log_residual),
    with its architecture and size (the run id's last part): how far a whole run sits from the law, which
    seed noise alone keeps to a few tenths of a percent. Columns: arch, run_id, size, residual."""
    means = points.groupby(["group", "run_id"], sort=False)["log_residual"].mean().reset_index()
    return pd.DataFrame({"arch": means["group"], "run_id": means["run_id"],
                         "size": means["run_id"].str.rsplit("-", n=1).str[-1], "residual": means["log_residual"]})


def law_points(fits: dict, archs, method: str = "approach3_fixed_e") -> pd.DataFrame:
    """The checkpoints of ``archs`` that the stored fit ``method`` used for its loss law L(N, D), each with
    its log residual (group, run_id, log_residual, ...); empty when that fit failed."""
    fit = fits[method]
    if not fit.ok:
        return pd.DataFrame(columns=["group", "run_id", "log_residual"])
    points = fit.fit.points
    return points[points["group"].isin(list(archs)) & (points.get("law", "L(N,D)") == "L(N,D)")]


def sizes_off_law(residuals: pd.DataFrame, noise: float) -> tuple[list[str], list[str]]:
    """The sizes that every architecture puts above, and below, its law by more than ``noise`` (a fraction,
    the simulated noise of a run): ``residuals`` as :func:`run_residuals` gives them. A size off the law in
    one architecture only may be that architecture's; off it in all of them, it is the grid's shape."""
    by_size = residuals.pivot_table(index="size", columns="arch", values="residual")
    return ([str(size) for size, row in by_size.iterrows() if (row > noise).all()],
            [str(size) for size, row in by_size.iterrows() if (row < -noise).all()])


def sizes_split(residuals: pd.DataFrame, noise: float) -> list[str]:
    """The sizes that some architecture puts above its law and another below it, each by more than
    ``noise``: where they exist, the architectures do not miss their laws in one pattern."""
    by_size = residuals.pivot_table(index="size", columns="arch", values="residual")
    return [str(size) for size, row in by_size.iterrows() if (row > noise).any() and (row < -noise).any()]


def split_sentence(residuals: pd.DataFrame, noise: float) -> str:
    """The sizes of :func:`sizes_split` in words, each with the architectures on either side of their law:
    "s1 sits above it in HGRN2 and below it in LLaMA, TNL and cosFormer2" ("" where no size is split). An
    architecture within ``noise`` of its law is on neither side. A reader is told which, not "in some".
    """
    from linscale.config import ARCHITECTURES, and_list, arch_label

    def listed(archs) -> str:  # in the book's order of architectures, then any other by name
        order = {a: i for i, a in enumerate(ARCHITECTURES)}
        return and_list(arch_label(a) for a in sorted(archs, key=lambda a: (order.get(a, len(order)), a)))

    by_size = residuals.pivot_table(index="size", columns="arch", values="residual")
    split = sizes_split(residuals, noise)
    parts = [f"{size} sits above it in {listed(row.index[row > noise])} and below it in "
             f"{listed(row.index[row < -noise])}" for size, row in by_size.iterrows() if str(size) in split]
    return "; ".join(parts)


# where no seeds ablation measured the noise, a larger model behind the smaller by less than this reads as level
LEVEL_WITHOUT_NOISE = 0.0005


def crossed_behind_sentence(cross: pd.DataFrame | None, bounds) -> str:
    """The pairs of neighbouring sizes whose larger model falls below the smaller one and still ends behind
    it, in words ("" where none): a pair can cross and come back. ``cross``: the crossovers table (arch,
    small, large, crossover in FLOPs or NaN where the pair never crosses, gap_at_end: the larger's loss over
    the smaller's minus one where their runs stop overlapping); ``bounds``: each row's seed-noise bound on
    that gap (relative), or empty where no seeds ablation measured the noise. A gap under its bound (under
    0.05% without one) ends "level with it"; a larger one is given in percent."""
    from linscale.config import arch_label

    if cross is None or not len(cross):
        return ""
    noise_measured = len(bounds) > 0
    bounded = cross.assign(bound=list(bounds) if noise_measured else LEVEL_WITHOUT_NOISE)
    behind = bounded[bounded["crossover"].notna() & (bounded["gap_at_end"] > 0)]
    if not len(behind):
        return ""
    level = ("level with it, inside the seed noise" if noise_measured else
             f"level with it (under {LEVEL_WITHOUT_NOISE:.2%}: this study measured no seed noise)")
    return "A pair can cross and still not end ahead: " + "; ".join(
        f"{arch_label(r.arch)}'s {r.large} falls below its {r.small} at {r.crossover:.2e} FLOPs and ends "
        + (level if r.gap_at_end < r.bound else f"{r.gap_at_end:+.1%} above it")
        for r in behind.itertuples()) + "."


def refit_misfit(runs: pd.DataFrame, preset: dict) -> tuple[float, pd.DataFrame, float]:
    """Approach 3 with E fixed (the study's fit settings, no bootstrap) on one architecture's runs: its
    allocation exponent a, each run's mean log residual (:func:`run_residuals`) and their sd over runs
    (the misfit); NaN and an empty table where the fit fails. The probes of the misfit by size compare
    variants of a grid with it."""
    import dataclasses

    from linscale import design
    from linscale.laws.suite import fit_suite

    settings = dataclasses.replace(design.fit_settings(preset, bootstrap=0), methods=("approach3_fixed_e",))
    fit = fit_suite(runs, settings, jobs=1)["approach3_fixed_e"]
    arch = runs["arch"].iloc[0]
    if not fit.ok or arch in fit.errors:
        return np.nan, pd.DataFrame(columns=["arch", "run_id", "size", "residual"]), np.nan
    residuals = run_residuals(fit.fit.points[fit.fit.points["law"] == "L(N,D)"])
    return design.estimate(fit.fit, "N_opt(C)", "a", arch), residuals, float(residuals["residual"].std(ddof=1))


def interval_probe(folder) -> dict | None:
    """What benchmarks/probe_interval_width.py found (its CSV tables in ``folder``), or None without them:
    why approach 3's interval of a is as wide as it is.

    * ``simulated``: per architecture and design (one or more seeds per size, with the measured noise),
      the median and largest width of the 95% interval of a that the study's own fit and bootstrap
      report on runs simulated from a known law;
    * ``left_out``: per architecture, the committed runs refitted without one size at a time, the size
      whose absence moves a most (``size``) and by how much (``change``);
    * ``misfit``: per number of sizes and seeds per size of the simulated grid, the median and largest
      width when every size also misses the law by the committed runs' misfit (``misfit``: its relative
      sd), and in how many replicates the interval covers the true a (``covered``); None when the probe
      did not simulate it."""
    from pathlib import Path

    folder = Path(folder)
    if not ((folder / "simulated.csv").exists() and (folder / "left_out.csv").exists()):
        return None
    draws, dropped = pd.read_csv(folder / "simulated.csv"), pd.read_csv(folder / "left_out.csv")
    noisy = draws[~draws["design"].str.contains("no noise")]
    simulated = (noisy.groupby(["arch", "seeds"], sort=False)["width"]
                 .agg(median="median", largest="max", replicates="size").reset_index())
    moved = dropped[dropped["left_out"] != "none"].dropna(subset=["change"])
    worst = moved.loc[moved["change"].abs().groupby(moved["arch"], sort=False).idxmax()]
    misfit = None
    if (folder / "misfit.csv").exists():
        table = pd.read_csv(folder / "misfit.csv")
        misfit = (table.groupby(["sizes", "seeds"], sort=True)
                  .agg(misfit=("misfit", "first"), median=("width", "median"), largest=("width", "max"),
                       replicates=("width", "size"), covered=("covers", "sum")).reset_index())
    return {"simulated": simulated,
            "left_out": worst.rename(columns={"left_out": "size"})[["arch", "size", "a", "change"]].reset_index(drop=True),
            "misfit": misfit}


# benchmarks/probe_lr_misfit.py's registered rule (2026-12-03): the bounds on the misfit at each size's
# best LR over the misfit at the preset's LR rule
LR_EXPLAINS, LR_DOES_NOT = 0.5, 0.8


def ratio_verdict(ratios: dict, explains: float, does_not: float) -> str:
    """The probes' shape of rule: 'explains' when every ratio (a variant's measure over the committed
    one's) is at most ``explains``, 'does not explain' when every one is at least ``does_not``, 'partly'
    otherwise, and 'inconclusive' when a ratio is missing."""
    values = [float(r) for r in ratios.values()]
    if not values or not all(np.isfinite(values)):
        return "inconclusive"
    if all(r <= explains for r in values):
        return "explains"
    if all(r >= does_not for r in values):
        return "does not explain"
    return "partly"


def per_arch_verdicts(ratios: dict, explains: float, does_not: float) -> dict[str, str]:
    """:func:`ratio_verdict` for each architecture on its own ratio: the per-architecture probe rules."""
    return {arch: ratio_verdict({arch: r}, explains, does_not) for arch, r in ratios.items()}


def lr_misfit_verdict(ratios: dict[str, float]) -> str:
    """The LR probe's rule: 'explains' when every architecture's misfit ratio (best LR over rule LR) is at
    most ``LR_EXPLAINS``, 'does not explain' when every one is at least ``LR_DOES_NOT``, 'partly'
    otherwise, and 'inconclusive' when a ratio is missing."""
    return ratio_verdict(ratios, LR_EXPLAINS, LR_DOES_NOT)


# benchmarks/probe_s6_heads.py's registered rule (2026-12-03): how much of s6's miss below its law is left
# when s6 has the 2 heads of every other size (|its residual with 2 heads| over |with 4|)
HEADS_EXPLAINS, HEADS_DOES_NOT = 0.5, 0.8


def heads_verdict(shrinks: dict[str, float]) -> dict[str, str]:
    """The s6-heads probe's rule, per architecture: the head count 'explains' s6's miss when the shrink is
    at most ``HEADS_EXPLAINS``, 'does not explain' it when at least ``HEADS_DOES_NOT``, 'partly' between,
    'inconclusive' when the shrink is missing (a fit failed)."""
    return per_arch_verdicts(shrinks, HEADS_EXPLAINS, HEADS_DOES_NOT)


# benchmarks/probe_total_params.py's registered rule (2026-12-04): each architecture's misfit with N counted
# with the tied embedding over its misfit with the paper's non-embedding count (the committed fits)
EMBEDDING_EXPLAINS, EMBEDDING_DOES_NOT = 0.5, 0.8


def embedding_verdict(ratios: dict[str, float]) -> dict[str, str]:
    """The total-parameter probe's rule, per architecture: counting the embedding 'explains' the misfit
    when the ratio (misfit with the total count over misfit with the non-embedding one) is at most
    ``EMBEDDING_EXPLAINS``, 'does not explain' it when at least ``EMBEDDING_DOES_NOT``, 'partly' between,
    'inconclusive' when a ratio is missing (a fit failed)."""
    return per_arch_verdicts(ratios, EMBEDDING_EXPLAINS, EMBEDDING_DOES_NOT)


# benchmarks/probe_fit_window.py's registered rule (2026-12-04): on each run's checkpoints from 0.3 of its
# tokens on, the misfit of approach 3 (E fixed) fitted on those rows over the misfit of the committed law
# (fitted on every row) on the same rows
WINDOW_EXPLAINS, WINDOW_DOES_NOT = 0.5, 0.8


def window_verdict(ratios: dict[str, float]) -> dict[str, str]:
    """The fit-window probe's rule, per architecture: the early checkpoints 'explain' the misfit when the
    ratio (late-row law over all-row law, both on the late rows) is at most ``WINDOW_EXPLAINS``, 'do not
    explain' it when at least ``WINDOW_DOES_NOT``, 'partly' between, 'inconclusive' when missing."""
    return per_arch_verdicts(ratios, WINDOW_EXPLAINS, WINDOW_DOES_NOT)


# benchmarks/probe_context_roles.py's registered rule (2026-12-04): approach 3 (E fixed) on the validation
# loss of the labels that do not read the document's own bindings, over the same fit on every label
CONTEXT_EXPLAINS, CONTEXT_DOES_NOT = 0.5, 0.8


def context_verdict(ratios: dict[str, float]) -> dict[str, str]:
    """The context-roles probe's rule, per architecture: the in-context skills 'explain' the misfit when
    the ratio (misfit of the law fitted on the other labels' loss over the misfit of the law fitted on
    every label's) is at most ``CONTEXT_EXPLAINS``, 'do not explain' it when at least
    ``CONTEXT_DOES_NOT``, 'partly' between, 'inconclusive' when a ratio is missing (a fit failed)."""
    return per_arch_verdicts(ratios, CONTEXT_EXPLAINS, CONTEXT_DOES_NOT)


# benchmarks/probe_law_form.py's registered rule (2026-12-04): the misfit of Kaplan's non-separable
# L(N, D) over the misfit of Chinchilla's separable one, both with E fixed, on the committed runs
FORM_EXPLAINS, FORM_DOES_NOT = 0.5, 0.8


def form_verdict(ratios: dict[str, float]) -> dict[str, str]:
    """The law-form probe's rule, per architecture: the separable form 'explains' the misfit when the ratio
    (Kaplan's form's misfit over the separable form's) is at most ``FORM_EXPLAINS``, 'does not explain' it
    when at least ``FORM_DOES_NOT``, 'partly' between, 'inconclusive' when a ratio is missing."""
    return per_arch_verdicts(ratios, FORM_EXPLAINS, FORM_DOES_NOT)


# benchmarks/probe_finite_knowledge.py's registered rule (2026-12-04): the misfit of approach 3 (E fixed) on
# the grid retrained on a language with four times the facts and grammar, over the committed language's
KNOWLEDGE_EXPLAINS, KNOWLEDGE_DOES_NOT = 0.5, 0.8


def knowledge_verdict(ratios: dict[str, float]) -> dict[str, str]:
    """The finite-knowledge probe's rule, per architecture: the finite tables 'explain' the misfit when the
    ratio (misfit on the larger language over misfit on the committed one) is at most
    ``KNOWLEDGE_EXPLAINS``, 'do not explain' it when at least ``KNOWLEDGE_DOES_NOT``, 'partly' between,
    'inconclusive' when a ratio is missing."""
    return per_arch_verdicts(ratios, KNOWLEDGE_EXPLAINS, KNOWLEDGE_DOES_NOT)


# benchmarks/probe_cooldown.py's registered rule (2026-12-04): on five checkpoints of every run, the misfit of
# approach 3 (E fixed) on cooldowns (the LR annealed to 0 over the last ~18% of the tokens) over its misfit on
# the constant-LR checkpoints themselves
COOLDOWN_EXPLAINS, COOLDOWN_DOES_NOT = 0.5, 0.8


def cooldown_verdict(ratios: dict[str, float]) -> dict[str, str]:
    """The cooldown probe's rule, per architecture: the constant LR 'explains' the misfit when the ratio
    (misfit on the annealed checkpoints over misfit on the constant-LR ones, the same points) is at most
    ``COOLDOWN_EXPLAINS``, 'does not explain' it when at least ``COOLDOWN_DOES_NOT``, 'partly' between,
    'inconclusive' when a ratio is missing."""
    return per_arch_verdicts(ratios, COOLDOWN_EXPLAINS, COOLDOWN_DOES_NOT)


# benchmarks/probe_s1_depth.py's registered rule (2026-12-04): the misfit of approach 3 (E fixed) on the grid
# with s1 retrained with two layers (as every other size) over its misfit on the committed grid
DEPTH_EXPLAINS, DEPTH_DOES_NOT = 0.5, 0.8


def depth_verdict(ratios: dict[str, float]) -> dict[str, str]:
    """The s1-depth probe's rule, per architecture: the one-layer s1 'explains' the misfit when the ratio
    (misfit with a two-layer s1 over the committed grid's) is at most ``DEPTH_EXPLAINS``, 'does not
    explain' it when at least ``DEPTH_DOES_NOT``, 'partly' between, 'inconclusive' when a ratio is missing."""
    return per_arch_verdicts(ratios, DEPTH_EXPLAINS, DEPTH_DOES_NOT)


# benchmarks/probe_uniform_heads.py's registered rules (2026-12-03): TNL's loss deficit against LLaMA with
# 4 heads at every size over its deficit on the committed ladder, per size; and each architecture's misfit
# on the 4-head ladder over its committed misfit
UNIFORM_EXPLAINS, UNIFORM_DOES_NOT = 0.5, 0.8


def heads_probe(folder) -> dict | None:
    """What benchmarks/probe_s6_heads.py found (its CSV tables in ``folder``), or None without them:
    whether s6's miss below every architecture's law is its head count (4, where s1-s5 have 2).

    * ``fits``: per architecture and head count at s6 (``heads`` 4: the committed runs; 2: s6 retrained
      with 2 heads), s6's final validation loss, a, the misfit and s6's mean log residual (``s6_residual``);
    * ``residuals``: each run's mean log residual around its law, per ``heads``;
    * ``crossings``: s5 against s6 at equal compute, per ``heads`` (``crossover`` NaN: never below);
    * ``retrieval``: the retrieval suite at s6's final checkpoint, per ``heads`` (outside the rule);
    * ``shrinks`` and ``verdicts``: :func:`heads_verdict` of |s6_residual with 2 heads| over |with 4|,
      recomputed from ``fits``; ``keep``: the registered decision for a next grid (2 heads at s6 when the
      head count explains TNL's miss and every 2-head s6 overtakes s5)."""
    from pathlib import Path

    folder = Path(folder)
    names = ("fits", "residuals", "crossings", "retrieval")
    if not all((folder / f"{name}.csv").exists() for name in names):
        return None
    found = {name: pd.read_csv(folder / f"{name}.csv") for name in names}
    residual = found["fits"].pivot_table(index="arch", columns="heads", values="s6_residual", sort=False)
    shrinks = {arch: abs(float(row[2])) / abs(float(row[4])) if row[4] else float("nan")
               for arch, row in residual.iterrows()}
    verdicts = heads_verdict(shrinks)
    two_heads = found["crossings"][found["crossings"]["heads"] == 2]
    crossed = len(two_heads) == len(shrinks) and bool(two_heads["crossover"].notna().all())
    return {**found, "shrinks": shrinks, "verdicts": verdicts,
            "keep": verdicts.get("tnl") == "explains" and crossed}


def uniform_probe(folder) -> dict | None:
    """What benchmarks/probe_uniform_heads.py found (its CSV tables in ``folder``), or None without them:
    whether TNL's deficit against LLaMA, and each architecture's misfit, are the committed ladder's head
    counts (2 heads at s1-s5, 4 at s6), from a ladder with 4 heads at every size.

    * ``losses``: per architecture and size, the final validation loss on both ladders
      (``val_committed``, ``val_4 heads``) and the relative ``change``;
    * ``deficits``: per size below s6, TNL's final loss over LLaMA's minus 1 on both ladders;
    * ``fits``, ``residuals``, ``crossings``: approach 3 (E fixed), each run's mean log residual and the
      neighbouring pairs at equal compute, per ``ladder``;
    * ``retrieval``: the retrieval suite at s4's and s5's final checkpoints, per ``heads`` (outside the rules);
    * ``deficit_ratios`` and ``deficit_verdict``; ``misfit_ratios`` and ``misfit_verdicts`` (per
      architecture), all recomputed from the tables with :func:`ratio_verdict`; ``uncrossed``: the pairs
      that do not cross on the 4-head ladder; ``adopt``: the registered decision for a next grid (every
      pair crosses and no misfit ratio is above 1)."""
    from pathlib import Path

    folder = Path(folder)
    names = ("losses", "deficits", "fits", "residuals", "crossings", "retrieval")
    if not all((folder / f"{name}.csv").exists() for name in names):
        return None
    found = {name: pd.read_csv(folder / f"{name}.csv") for name in names}
    deficits = found["deficits"]
    deficit_ratios = dict(zip(deficits["size"], deficits["deficit_4 heads"] / deficits["deficit_committed"]))
    misfit_ratios = probe_ratios(found["fits"], "ladder", "4 heads", "committed")
    four = found["crossings"][found["crossings"]["ladder"] == "4 heads"]
    uncrossed = four[four["crossover"].isna()][["arch", "small", "large"]].reset_index(drop=True)
    return {**found, "deficit_ratios": deficit_ratios,
            "deficit_verdict": ratio_verdict(deficit_ratios, UNIFORM_EXPLAINS, UNIFORM_DOES_NOT),
            "misfit_ratios": misfit_ratios,
            "misfit_verdicts": {arch: ratio_verdict({arch: r}, UNIFORM_EXPLAINS, UNIFORM_DOES_NOT)
                                for arch, r in misfit_ratios.items()},
            "uncrossed": uncrossed,
            "adopt": bool(len(four)) and uncrossed.empty and max(misfit_ratios.values(), default=np.inf) <= 1}


def retrain_change(control: pd.DataFrame) -> float:
    """The largest relative change of a retrained checkpoint's validation loss (``val_loss``) against the
    committed one (``val_loss_committed``): a retraining probe's control."""
    return float((control["val_loss"] / control["val_loss_committed"] - 1).abs().max())


def probe_ratios(fits: pd.DataFrame, column: str, variant: str, reference: str, values: str = "misfit") -> dict:
    """A probe's ratios, per architecture: ``values`` (the misfit) where ``column`` is ``variant`` over where it
    is ``reference``; NaN where either fit failed (the rules read it as inconclusive)."""
    spread = fits.pivot_table(index="arch", columns=column, values=values, sort=False, dropna=False)
    return {arch: float(row[variant] / row[reference]) for arch, row in spread.iterrows()}


def probe_tables(folder, names) -> dict[str, pd.DataFrame] | None:
    """A probe's CSV tables ``<folder>/<name>.csv`` by name, or None when any is missing (the probe was
    not run for this study): what every reader of a probe starts from."""
    from pathlib import Path

    folder = Path(folder)
    if not all((folder / f"{name}.csv").exists() for name in names):
        return None
    return {name: pd.read_csv(folder / f"{name}.csv") for name in names}


def embedding_probe(folder) -> dict | None:
    """What benchmarks/probe_total_params.py found (its CSV tables in ``folder``), or None without them:
    whether the misfit by size is the count of N (the paper's non-embedding count against the total, the
    tied embedding included), from the committed runs refitted under both counts.

    * ``fits``: per architecture and ``count``, a and the misfit (approach 3 with E fixed, no bootstrap);
    * ``residuals``: each run's mean log residual around its law, per ``count``;
    * ``intervals``: per count, method (approach 3 with E fixed and free) and architecture, a with its 95%
      bootstrap interval (``a_width``) and, E free, ``E_over_entropy`` (E over the exact entropy rate,
      minus 1);
    * ``holdout``: the study's hold-out check under each count; ``worst``: per count, method and
      architecture, the largest |predicted/observed − 1| over the held-out runs;
    * ``ratios``, ``verdicts`` (:func:`embedding_verdict`) and ``verdict`` (over all four,
      :func:`ratio_verdict`), recomputed from ``fits``; ``adopt``: the registered decision (count N with
      the embedding in the next grid's pilot law and design check only if the count explains the misfit
      for every architecture)."""
    found = probe_tables(folder, ("fits", "residuals", "intervals", "holdout"))
    if found is None:
        return None
    ratios = probe_ratios(found["fits"], "count", "total", "non-embedding")
    verdict = ratio_verdict(ratios, EMBEDDING_EXPLAINS, EMBEDDING_DOES_NOT)
    held = found["holdout"]  # a failed refit's row has no error; max() skips it
    worst = (held.assign(worst=held["rel_error"].abs()).groupby(["count", "method", "arch"], sort=False)["worst"]
             .max().reset_index())
    return {**found, "worst": worst, "ratios": ratios, "verdicts": embedding_verdict(ratios), "verdict": verdict,
            "adopt": verdict == "explains"}


def window_probe(folder) -> dict | None:
    """What benchmarks/probe_fit_window.py found (its CSV tables in ``folder``), or None without them:
    whether the early checkpoints of each run bend the law, from approach 3 (E fixed) refitted on each
    run's checkpoints from 0.3 of its tokens on.

    * ``fits``: per architecture and ``fit`` ('all rows': the committed law; 'late rows': the law fitted
      on the window), a and ``misfit_late`` (the misfit over the late rows);
    * ``residuals``, ``intervals``, ``holdout``: the probe's tables (the last two with the window);
    * ``ratios``, ``verdicts`` (:func:`window_verdict`) and ``verdict`` (over all four), recomputed from
      ``fits``; ``adopt``: the registered decision (fit from 0.3 of each run in the next study only if the
      early checkpoints explain the misfit for every architecture)."""
    found = probe_tables(folder, ("fits", "residuals", "intervals", "holdout"))
    if found is None:
        return None
    ratios = probe_ratios(found["fits"], "fit", "late rows", "all rows", values="misfit_late")
    verdict = ratio_verdict(ratios, WINDOW_EXPLAINS, WINDOW_DOES_NOT)
    return {**found, "ratios": ratios, "verdicts": window_verdict(ratios), "verdict": verdict,
            "adopt": verdict == "explains"}


def context_probe(folder) -> dict | None:
    """What benchmarks/probe_context_roles.py found (its CSV tables in ``folder``), or None without them:
    whether the in-context skills bend the law, from approach 3 (E fixed at each part's Bayes nll) fitted
    on the validation loss of every label and of the labels that do not read the document's bindings.

    * ``fits``: per architecture and ``part`` ('every label', 'context-free', 'in-context'), a and the
      misfit; ``residuals``: each run's mean log residual around its part's law; ``control``: the
      retrained checkpoints against the committed ones (``val_loss``, ``val_loss_committed``);
      ``by_role`` (read after the verdict): per role and architecture, its ``share`` of the labels, the
      misfit of a law fitted on its loss alone and each size's residual (no misfit for a role whose
      exact nll is 0);
    * ``ratios``, ``verdicts`` (:func:`context_verdict`) and ``verdict`` (over all four), recomputed from
      ``fits``; ``adopt``: the registered decision (report the context-free law beside the committed one
      only if the in-context skills explain every architecture's misfit); ``control_change``: the largest
      relative change of a retrained validation loss."""
    found = probe_tables(folder, ("fits", "residuals", "control", "by_role"))
    if found is None:
        return None
    ratios = probe_ratios(found["fits"], "part", "context-free", "every label")
    verdict = ratio_verdict(ratios, CONTEXT_EXPLAINS, CONTEXT_DOES_NOT)
    return {**found, "ratios": ratios, "verdicts": context_verdict(ratios), "verdict": verdict,
            "adopt": verdict == "explains", "control_change": retrain_change(found["control"])}


def form_probe(folder) -> dict | None:
    """What benchmarks/probe_law_form.py found (its CSV tables in ``folder``), or None without them:
    whether the separable form E + A/N^α + B/D^β is what misses the runs, from the committed runs refitted
    in Kaplan's non-separable form E + (A/N^α + B/D)^γ with as many free parameters, E fixed in both.

    * ``fits``: per architecture and ``form`` ('separable', 'kaplan'), the misfit and the parameters
      (Kaplan's exponents ``alpha_N``, ``alpha_D``); ``residuals``: each run's mean log residual per form;
      ``holdout`` (read after the verdict): the study's hold-out check in each form, one row per held-out
      run; ``worst``: per architecture (rows) and form (columns), the largest |rel_error| of it;
    * ``ratios``, ``verdicts`` (:func:`form_verdict`) and ``verdict`` (over all four), recomputed from
      ``fits``; ``adopt``: the registered decision (fit Kaplan's form beside approach 3 in the next study
      only if the separable form explains every architecture's misfit)."""
    found = probe_tables(folder, ("fits", "residuals", "holdout"))
    if found is None:
        return None
    held = found["holdout"]
    found["worst"] = held.assign(worst=held["rel_error"].abs()).pivot_table(index="arch", columns="form",
                                                                             values="worst", aggfunc="max")
    ratios = probe_ratios(found["fits"], "form", "kaplan", "separable")
    verdict = ratio_verdict(ratios, FORM_EXPLAINS, FORM_DOES_NOT)
    return {**found, "ratios": ratios, "verdicts": form_verdict(ratios), "verdict": verdict,
            "adopt": verdict == "explains"}


def knowledge_probe(folder) -> dict | None:
    """What benchmarks/probe_finite_knowledge.py found (its CSV tables in ``folder``), or None without them:
    whether the finite tables the weights memorise (the facts, the filler grammar) bend the law, from the
    grid retrained on a language with four times both.

    * ``fits``: per architecture and ``language`` ('committed', 'larger'), approach 3 (E fixed) on every
      label's validation loss: a and the misfit; ``residuals``: each larger-language run's mean log
      residual; ``by_role``: per role and architecture, the misfit of the role's own law on the larger
      language (``misfit``) and on the committed one (``misfit_committed``);
    * ``ratios``, ``verdicts`` (:func:`knowledge_verdict`) and ``verdict`` (over all four), recomputed from
      ``fits``; ``adopt``: the registered decision (the next cpu language takes the larger tables only if
      they explain every architecture's misfit)."""
    found = probe_tables(folder, ("fits", "residuals", "by_role"))
    if found is None:
        return None
    ratios = probe_ratios(found["fits"], "language", "larger", "committed")
    verdict = ratio_verdict(ratios, KNOWLEDGE_EXPLAINS, KNOWLEDGE_DOES_NOT)
    return {**found, "ratios": ratios, "verdicts": knowledge_verdict(ratios), "verdict": verdict,
            "adopt": verdict == "explains"}


def cooldown_probe(folder) -> dict | None:
    """What benchmarks/probe_cooldown.py found (its CSV tables in ``folder``), or None without them: whether
    the constant LR bends the law, from five checkpoints of every run of the grid and their cooldowns (the
    LR annealed to 0 over the last ~18% of the same tokens), each set fitted by approach 3 (E fixed).

    * ``fits``: per architecture and ``schedule`` ('constant', 'cooldown'), a and the misfit;
      ``residuals``: each run's mean log residual per schedule; ``points``: per run and target step, the
      constant run's validation loss (``val_loss``), the cooldown's (``annealed``) and ``gain`` (their
      ratio minus 1); ``control``: the retrained checkpoints against the committed ones;
    * ``final_gain``: per architecture (rows) and size (columns), the gain at each run's last step;
    * ``ratios``, ``verdicts`` (:func:`cooldown_verdict`) and ``verdict`` (over all four), recomputed from
      ``fits``; ``adopt``: the registered decision (the next cpu study fits annealed points only if the
      constant LR explains every architecture's misfit); ``control_change``: the largest relative change
      of a retrained validation loss."""
    found = probe_tables(folder, ("fits", "residuals", "points", "control"))
    if found is None:
        return None
    ratios = probe_ratios(found["fits"], "schedule", "cooldown", "constant")
    verdict = ratio_verdict(ratios, COOLDOWN_EXPLAINS, COOLDOWN_DOES_NOT)
    points = found["points"]
    last = points[points["step"] == points.groupby("run_id")["step"].transform("max")]
    return {**found, "ratios": ratios, "verdicts": cooldown_verdict(ratios), "verdict": verdict,
            "adopt": verdict == "explains",
            "final_gain": last.pivot_table(index="arch", columns="size", values="gain"),  # sizes in order
            "control_change": retrain_change(found["control"])}


def depth_probe(folder) -> dict | None:
    """What benchmarks/probe_s1_depth.py found (its CSV tables in ``folder``), or None without them: whether
    s1's single layer (every other size has two) bends the law, from the grid refitted with s1 retrained
    with two layers.

    * ``fits``: per architecture and ``grid`` ('committed', 'two-layer s1'), a and the misfit;
      ``residuals``: each run's mean log residual per grid; ``finals``: each s1's last checkpoint with one
      and two layers (``val_loss``, ``params``); ``variant``: the s1 refitted in place of the study's
      ('two-layer s1', or the control's 'wide one-layer s1': one layer at width 12, about the same N);
    * ``ratios``, ``verdicts`` (:func:`depth_verdict`) and ``verdict`` (over all four), recomputed from
      ``fits``; ``adopt``: the registered decision (the next cpu grid gives s1 two layers only if its
      single layer explains every architecture's misfit; never from the control)."""
    found = probe_tables(folder, ("fits", "residuals", "finals"))
    if found is None:
        return None
    variant = next(grid for grid in found["fits"]["grid"] if grid != "committed")
    ratios = probe_ratios(found["fits"], "grid", variant, "committed")
    verdict = ratio_verdict(ratios, DEPTH_EXPLAINS, DEPTH_DOES_NOT)
    return {**found, "variant": variant, "ratios": ratios, "verdicts": depth_verdict(ratios), "verdict": verdict,
            "adopt": variant == "two-layer s1" and verdict == "explains"}


def holdout_reach(folder, method: str = "approach3_fixed_e") -> dict | None:
    """What benchmarks/probe_holdout_reach.py simulated (its CSV tables in ``folder``), or None without them:
    on studies of the cpu grid simulated from a true law whose every run also misses it by a misfit
    (relative sd) of a given level, how often the refits meet the hold-out target (``HOLDOUT_TARGET``) and
    approach 3 with E free finds E within the design check's tolerance.

    * ``summary``, ``per_arch``, ``e_summary``, ``e_per_arch``: the probe's tables;
    * ``all_four``: for ``method``, level label -> share of studies in which every architecture's refit
      predicts every held-out run within the target (levels in the probe's order: the design noise alone,
      each architecture's measured misfit under the paper's and the total count, then fixed misfits);
      ``e_all_four``: the same for E free within its tolerance;
    * ``fixed`` and ``e_fixed``: misfit -> those shares, the fixed levels only (one misfit for all)."""
    found = probe_tables(folder, ("summary", "per_arch", "e_summary", "e_per_arch"))
    if found is None:
        return None
    rows = found["summary"][found["summary"]["method"] == method]
    all_four = dict(zip(rows["level"], rows["all_four_within"]))
    e_all_four = dict(zip(found["e_summary"]["level"], found["e_summary"]["all_four_within"]))

    def fixed_levels(per_arch, shares):  # a fixed level: one misfit for every architecture, labelled in %
        levels = per_arch.groupby("level", sort=False)["misfit"].agg(["min", "max"])
        return {float(row["min"]): shares[level] for level, row in levels.iterrows()
                if str(level).endswith("%") and row["min"] == row["max"]}

    return {**found, "all_four": all_four, "e_all_four": e_all_four,
            "fixed": fixed_levels(found["per_arch"][found["per_arch"]["method"] == method], all_four),
            "e_fixed": fixed_levels(found["e_per_arch"], e_all_four)}


def e_miss_reading(alone: pd.DataFrame, measured: pd.DataFrame, n_missed: int, misses: str) -> str:
    """The real fits' misses of the entropy (approach 3, E free) read against the hold-out probe's simulated
    studies (:func:`holdout_reach`'s ``e_per_arch``), in Markdown: ``alone`` the rows of the architectures
    shown at the design noise alone (arch, within: the share of studies with E within 5%, median_abs_error),
    ``measured`` those where whole sizes also miss the law by their measured misfit (median_abs_error);
    ``n_missed`` how many of the architectures shown miss the entropy by more than 5%, ``misses`` those
    misses in words. "" where no architecture shown was simulated (nothing to read them against)."""
    from linscale.config import arch_label, number_word, value_range

    if not len(alone):
        return ""
    sim_error = value_range(alone["median_abs_error"], ".1%")
    if not n_missed:
        return (f"None of the architectures shown misses the entropy by more than 5% (a simulated study misses "
                f"by a median of {sim_error} with the design noise alone)." if len(alone) > 1 else
                f"{arch_label(alone['arch'].iloc[0])}'s E does not miss the entropy by more than 5% (a simulated "
                f"study misses by a median of {sim_error} with the design noise alone).")
    if len(alone) > 1:
        # how often a simulated study misses E for as many architectures as the real one does, or more, if the
        # architectures miss independently: by_count[k], the chance of exactly k misses among those so far
        by_count = [1.0]
        for p_in in alone["within"]:
            by_count = [a * p_in + b * (1 - p_in) for a, b in zip(by_count + [0.0], [0.0] + by_count)]
        as_many = (f"If the architectures miss independently, {number_word(n_missed)} or more of the "
                   f"{number_word(len(alone))} miss in {sum(by_count[n_missed:]):.0%} of studies.")
    else:  # one architecture shown: its own rate (a count would read "one or more of the one miss")
        as_many = (f"{arch_label(alone['arch'].iloc[0])}'s E misses in {1 - float(alone['within'].iloc[0]):.0%} "
                   "of simulated studies.")
    return (f"{as_many} What sets the real misses apart is how far they miss: {misses}, while a simulated study "
            f"misses by a median of {sim_error} with the design noise alone, and of "
            f"{value_range(measured['median_abs_error'], '.1%')} when whole sizes also miss the law by their "
            "measured misfit (\"Three approaches, one allocation\"). Misses of that size say that the real runs "
            "pin $E$ down less well than the simulated ones: their losses depart from $E + A/N^\\alpha + B/D^\\beta$. "
            "Their fitted $E$ is then a fitting constant, not the entropy of the language; the width of its interval "
            "in the figure shows how loosely the runs hold it.")


def lr_probe(folder) -> dict | None:
    """What benchmarks/probe_lr_misfit.py found (its CSV tables in ``folder``), or None without them:
    whether the preset's learning-rate rule is why whole sizes miss their law.

    * ``losses``: per architecture and size, the final validation loss at each LR multiplier
      (``val_<m>x``), the ``best`` multiplier and its ``gain`` over 1x;
    * ``fits``: per architecture, a and the misfit (sd of the runs' mean log residuals) on the rule's
      and on the best LRs;
    * ``residuals``: each run's mean log residual, ``runs`` 'rule LR' or 'best LR';
    * ``ends``: per architecture and size, the fitted loss at each run's first and last checkpoint in the
      fit window (``first_<m>x``, ``last_<m>x``), read after the verdict; None where the probe lacks it;
    * ``ratios`` and ``verdict``: :func:`lr_misfit_verdict` of the best-LR misfit over the rule's."""
    from pathlib import Path

    folder = Path(folder)
    if not all((folder / f"{name}.csv").exists() for name in ("losses", "fits", "residuals")):
        return None
    losses, fits = pd.read_csv(folder / "losses.csv"), pd.read_csv(folder / "fits.csv")
    residuals = pd.read_csv(folder / "residuals.csv")
    spread = fits.pivot_table(index="arch", columns="runs", values="misfit", sort=False)
    ratios = {arch: float(row["best LR"] / row["rule LR"]) if row["rule LR"] > 0 else float("nan")
              for arch, row in spread.iterrows()}
    ends = pd.read_csv(folder / "ends.csv") if (folder / "ends.csv").exists() else None
    return {"losses": losses, "fits": fits, "residuals": residuals, "ends": ends, "ratios": ratios,
            "verdict": lr_misfit_verdict(ratios)}
