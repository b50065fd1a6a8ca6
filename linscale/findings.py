"""Comparisons the book states as findings: each a pure function of the results tables or of the fits
(``linscale.laws``) returning a tidy DataFrame, so the prose can glue its numbers and the findings
chapter can put every claim of the paper beside the evidence.

Verdicts are one of ``reproduced``, ``not reproduced``, ``inconclusive`` (the evidence does not
separate the architectures: intervals overlap) and ``not testable`` (this study lacks the data, e.g. a
preset without the runs a claim needs).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

LINEAR = ("tnl", "hgrn2", "cosformer2")
REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_TESTABLE = "reproduced", "not reproduced", "inconclusive", "not testable"


def _env(fit) -> pd.DataFrame:
    points = fit.points[fit.points["law"] == "L(C)"].rename(columns={"group": "arch"})
    return points


def common_compute(fit) -> float:
    """The largest compute (PF-days) that every architecture's envelope reaches."""
    env = _env(fit)
    return float(env.groupby("arch")["compute"].max().min())


def envelope_at(fit, compute: float | None = None) -> pd.DataFrame:
    """Each architecture's envelope loss (interpolated in log-log) and fitted L(C) at one compute value
    (default: :func:`common_compute`), with the ratio to LLaMA's. Columns: arch, compute, envelope_loss,
    fitted_loss, vs_llama."""
    compute = common_compute(fit) if compute is None else float(compute)
    rows = []
    for arch, part in _env(fit).groupby("arch"):
        part = part.sort_values("compute")
        log_c = np.log(part["compute"].to_numpy())
        observed = float(np.exp(np.interp(np.log(compute), log_c, np.log(part["observed"].to_numpy()))))
        fitted = float(np.exp(np.interp(np.log(compute), log_c, np.log(part["fitted"].to_numpy()))))
        rows.append({"arch": arch, "compute": compute, "envelope_loss": observed, "fitted_loss": fitted})
    table = pd.DataFrame(rows)
    if "llama" in set(table["arch"]):
        llama = float(table.loc[table["arch"] == "llama", "envelope_loss"].iloc[0])
        table["vs_llama"] = table["envelope_loss"] / llama
    else:
        table["vs_llama"] = np.nan
    return table.sort_values("envelope_loss").reset_index(drop=True)


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
    import re

    from linscale.plotting import arch_label

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


def try_extrapolation(runs: pd.DataFrame, method: str, holdout: str, **kwargs) -> FitAttempt:
    """``linscale.laws.extrapolation_check`` returning the reason instead of raising when impossible."""
    from linscale import laws

    try:
        return FitAttempt(laws.extrapolation_check(runs, method, holdout=holdout, **kwargs), method=method)
    except laws.LawsInputError as err:
        return FitAttempt(None, str(err), method=method)


def _fmt(value: float, digits: int = 4) -> str:
    if not np.isfinite(value):
        return "–"
    return f"{value:.{digits}g}" if abs(value) >= 1e4 or abs(value) < 1e-3 else f"{value:.{digits}f}"


def table3_side_by_side(comparison: pd.DataFrame) -> pd.DataFrame:
    """The paper's Table 3 beside ours: one row per architecture and law, columns paper's law, our law
    and our 95% intervals for the exponent and the coefficient (PF-days), and whether the paper's
    exponent lies inside our interval."""
    from linscale.plotting import ARCH_LABELS, arch_label

    rows = []
    for (arch, law), part in comparison.groupby(["group", "law"], sort=False):
        part = part.set_index("parameter")
        k, e = part.loc["coefficient"], part.loc["exponent"]
        rows.append({
            "arch": arch_label(arch), "law": law,
            "paper": f"{_fmt(k['paper'])} · C^{_fmt(e['paper'])}",
            "ours": f"{_fmt(k['estimate'])} · C^{_fmt(e['estimate'])}",
            "exponent 95% CI": f"[{_fmt(e['ci_low'])}, {_fmt(e['ci_high'])}]",
            "coefficient 95% CI": f"[{_fmt(k['ci_low'])}, {_fmt(k['ci_high'])}]",
            "interval": str(e.get("ci_method", "")),
            "paper exponent in CI": {True: "yes", False: "no"}.get(e["paper_in_ci"], "–"),
        })
    order = {ARCH_LABELS[a]: i for i, a in enumerate(("llama", "tnl", "hgrn2", "cosformer2"))}
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
            for symbol, law, parameter in (("a", "N_opt(C)", "exponent" if method != "approach3" else "a"),
                                           ("b", "D_opt(C)", "exponent" if method != "approach3" else "b")):
                hit = part[(part["law"] == law) & (part["parameter"] == parameter)]
                if len(hit):
                    row[symbol] = float(hit["estimate"].iloc[0])
                    row[f"{symbol}_ci_low"] = float(hit["ci_low"].iloc[0])
                    row[f"{symbol}_ci_high"] = float(hit["ci_high"].iloc[0])
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


def extrapolation_errors(check) -> pd.DataFrame:
    """Per architecture: mean and max absolute relative error of the held-out loss predictions, and the
    mean signed error (bias)."""
    p = check.params[check.params["law"] == "held-out loss"]
    return p.pivot(index="group", columns="parameter", values="estimate").reset_index().rename(
        columns={"group": "arch"})


def kernel_benchmarks(bench_dir: str = "benchmarks/results") -> pd.DataFrame:
    """The GPU kernel reports committed under ``bench_dir`` (``kernels-<date>-<gpu>-<host>.md``, written
    by ``benchmarks/bench_kernels.py``): one row per report with its file, date and title. Notes that are
    not measurements (no date in the name) are not listed."""
    import re
    from pathlib import Path

    rows = []
    for path in sorted(Path(bench_dir).glob("kernels-*.md")):
        match = re.match(r"kernels-(\d{4}-\d{2}-\d{2})", path.name)
        if not match:
            continue
        title = next((line[2:].strip() for line in path.read_text().splitlines() if line.startswith("# ")), "")
        rows.append({"file": str(path), "date": match.group(1), "title": title})
    return pd.DataFrame(rows, columns=["file", "date", "title"])


# ----------------------------------------------------------------------------- ablations


def read_ablation(preset: str, results_dir: str, name: str) -> pd.DataFrame:
    """An ablation sweep's results table (``results/<preset>/ablations/<name>.parquet``), or an empty
    table when the study ran without ablations."""
    from linscale.results import RUNS_COLUMNS, read_table, results_path

    path = results_path(preset, results_dir) / "ablations" / f"{name}.parquet"
    if not path.exists():
        return pd.DataFrame(columns=[*RUNS_COLUMNS, "ablation", "variant"])
    table = read_table(path, RUNS_COLUMNS)
    return table[~table["diverged"].astype(bool)].reset_index(drop=True)


def ablation_summary(table: pd.DataFrame, loss: str = "train_loss") -> pd.DataFrame:
    """One row per ablation run at its last checkpoint: arch, shape (l, d, d/l), N, training context,
    tokens, seed and the final loss (column ``loss``)."""
    columns = ["arch", "run_id", "n_layer", "d_model", "aspect", "params", "seq_len", "tokens", "seed", "loss"]
    if not len(table):
        return pd.DataFrame(columns=columns)
    last = table.sort_values("step").groupby(["variant", "run_id"], sort=False).tail(1).copy()
    last["aspect"] = last["d_model"] / last["n_layer"]
    last["loss"] = last[loss]
    return last[columns].sort_values(["arch", "aspect", "seq_len", "seed"]).reset_index(drop=True)


def seed_noise(summary: pd.DataFrame, column: str = "loss") -> pd.DataFrame:
    """Per architecture, ``column`` over the seeds ablation's runs (one size, several seeds; an
    :func:`ablation_summary` table for the final loss, an :func:`ablation_scores` table for a downstream
    metric): the number of seeds, the mean, the sample standard deviation and its ratio to the mean
    (``rel_sd``), and the range (largest/smallest − 1, as :func:`loss_spread`)."""
    rows = []
    for arch, part in summary.groupby("arch"):
        value = part[column].astype(float).dropna()
        sd = float(value.std(ddof=1)) if len(value) > 1 else np.nan
        mean = float(value.mean()) if len(value) else np.nan
        rows.append({"arch": arch, "seeds": int(len(value)), "mean": mean, "sd": sd, "rel_sd": sd / mean,
                     "spread": float(value.max() / value.min() - 1) if len(value) and value.min() > 0 else np.nan})
    return pd.DataFrame(rows, columns=["arch", "seeds", "mean", "sd", "rel_sd", "spread"])


def seed_tolerance(noise: pd.DataFrame, confidence: float = 0.95, relative: bool = True) -> float:
    """The smallest difference between two single-seed runs that seed noise alone would not reach with
    probability ``confidence``: t · √2 · s, with s the standard deviation (relative to the mean, or
    absolute when not ``relative``) pooled over architectures (:func:`seed_noise`; each contributes
    seeds − 1 degrees of freedom) and t Student's two-sided quantile at those degrees of freedom (Fisher's
    least significant difference). NaN when no architecture has two seeds."""
    from scipy import stats

    usable = noise[noise["seeds"] > 1]
    dof = int((usable["seeds"] - 1).sum())
    if dof == 0:
        return float("nan")
    sd = usable["rel_sd" if relative else "sd"]
    pooled = float(np.sqrt(((usable["seeds"] - 1) * sd ** 2).sum() / dof))
    return float(stats.t.ppf(0.5 + confidence / 2, dof) * np.sqrt(2) * pooled)


# The downstream accuracies (columns of downstream_table) and their names in the prose.
ACCURACY_METRICS = {"knowledge_acc": "knowledge", "cloze_acc": "cloze", "niah_easy_wa": "NIAH easy",
                    "niah_standard_wa": "NIAH standard", "mqar_acc": "associative recall"}
DEFAULT_TOLERANCE = 0.005  # when neither the reader nor a seeds ablation gives one


@dataclass
class Tolerances:
    """How large a difference between single runs must be to count, per comparison.

    ``loss`` (relative, for losses and bits per byte) and ``accuracy`` (absolute): numbers set by hand,
    or None to take the seed noise that the seeds ablation measured (``seed_losses``: its
    :func:`ablation_summary`; ``seed_scores``: its :func:`ablation_scores`), pooled over the
    architectures a comparison involves, since the noise differs between architectures
    (:func:`seed_tolerance`). Without either, :data:`DEFAULT_TOLERANCE`."""

    loss: float | None = None
    accuracy: float | None = None
    seed_losses: pd.DataFrame | None = None
    seed_scores: pd.DataFrame | None = None
    confidence: float = 0.95

    def for_loss(self, archs) -> float:
        if self.loss is not None:
            return float(self.loss)
        return _or_default(self.measured("loss", archs))

    def for_accuracy(self, metric: str, archs) -> float:
        if self.accuracy is not None:
            return float(self.accuracy)
        return _or_default(self.measured(metric, archs))

    def measured(self, column: str, archs=None) -> float:
        """The seed tolerance of ``column`` ("loss" or an accuracy) pooled over ``archs`` (all when None);
        NaN when the seeds ablation did not measure it."""
        table = self.seed_losses if column == "loss" else self.seed_scores
        if table is None or column not in table or not table[column].notna().any():
            return float("nan")
        table = table if archs is None else table[table["arch"].isin(list(archs))]
        return seed_tolerance(seed_noise(table, column), self.confidence, relative=column == "loss")

    def describe(self, column: str) -> str:
        """Where the tolerance of ``column`` ("loss", or "accuracy" for all of them) comes from, for the prose."""
        fixed = self.loss if column == "loss" else self.accuracy
        if fixed is not None:
            return f"{fixed:.2%} for every claim, set by hand" if column == "loss" else \
                f"{fixed:.3f} for every claim, set by hand"
        columns = ["loss"] if column == "loss" else list(ACCURACY_METRICS)
        parts = []
        for name in columns:
            every, linear = self.measured(name), self.measured(name, LINEAR)
            if np.isfinite(every):
                text = f"{every:.2%} and {linear:.2%}" if name == "loss" else f"{every:.3f} and {linear:.3f}"
                parts.append(text if name == "loss" else f"{ACCURACY_METRICS[name]} {text}")
        if not parts:
            return f"{DEFAULT_TOLERANCE} by default: this study did not measure its seed noise"
        return ("measured by the seeds ablation, pooled over the architectures each claim compares "
                "(over all four, and over the linear models alone): " + "; ".join(parts))


def _or_default(tolerance: float) -> float:
    return tolerance if np.isfinite(tolerance) else DEFAULT_TOLERANCE


def accuracy_noise(seed_scores: pd.DataFrame) -> pd.DataFrame:
    """The standard deviation over seeds of each downstream accuracy the seeds ablation measured
    (:func:`ablation_scores`): one row per architecture, one column per accuracy (its prose name)."""
    frames = [seed_noise(seed_scores, metric).set_index("arch")["sd"].rename(label)
              for metric, label in ACCURACY_METRICS.items()
              if metric in seed_scores and seed_scores[metric].notna().any()]
    return pd.concat(frames, axis=1) if frames else pd.DataFrame(index=pd.Index([], name="arch"))


def ablation_scores(preset: str, results_dir: str, name: str, loss: str = "train_loss",
                    evaluation: str = "common") -> pd.DataFrame:
    """The downstream scores of an ablation's runs at their final checkpoints
    (``results/<preset>/ablations/<name>-eval.parquet``): :func:`downstream_table`'s columns plus the
    ablation's ``variant``, ``seq_len`` and ``seed``. Empty when the study did not evaluate them.
    ``evaluation``: where the table holds several evaluations of the same runs (the context ablation: at
    one ``common`` context for all, and at ``twice`` each run's training context), which one; a table
    without an ``evaluation`` column holds one evaluation, taken as the common one."""
    from linscale.results import EVAL_COLUMNS, read_table, results_path

    path = results_path(preset, results_dir) / "ablations" / f"{name}-eval.parquet"
    runs = read_ablation(preset, results_dir, name)
    if not path.exists() or not len(runs):
        return pd.DataFrame(columns=["run_id", "arch", "size", "step", "params", "tokens", "pf_days", "loss",
                                     "variant", "seq_len", "seed"])

    def keyed(table):  # run ids repeat across an ablation's sweeps: the variant tells them apart
        return table.assign(run_id=table["variant"].astype(str) + "/" + table["run_id"].astype(str))

    runs = keyed(runs)
    table = read_table(path, (*EVAL_COLUMNS, "variant"))
    if "evaluation" in table:
        table = table[table["evaluation"] == evaluation]
    elif evaluation != "common":
        table = table.iloc[0:0]
    scores = downstream_table(keyed(table), runs, loss=loss)
    return scores.join(runs.drop_duplicates("run_id").set_index("run_id")[["variant", "seq_len", "seed"]], on="run_id")


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


def loss_spread(summary: pd.DataFrame, by: str) -> pd.DataFrame:
    """Per architecture, how much the final loss moves across the ablation's settings (column ``by``):
    the best and worst loss, their settings, and the spread (worst/best − 1)."""
    rows = []
    for arch, part in summary.groupby("arch"):
        best, worst = part.loc[part["loss"].idxmin()], part.loc[part["loss"].idxmax()]
        rows.append({"arch": arch, "settings": int(len(part)), f"best_{by}": best[by], "best_loss": float(best["loss"]),
                     f"worst_{by}": worst[by], "worst_loss": float(worst["loss"]),
                     "spread": float(worst["loss"] / best["loss"] - 1)})
    columns = ["arch", "settings", f"best_{by}", "best_loss", f"worst_{by}", "worst_loss", "spread"]
    return pd.DataFrame(rows, columns=columns)  # keeps its columns when the study ran no ablations


# ----------------------------------------------------------------------------- downstream

# (task, metric) -> column of the wide downstream table; lower is better for the perplexities.
DOWNSTREAM_METRICS = {
    ("linscale_knowledge", "acc"): "knowledge_acc",
    ("linscale_knowledge", "acc_norm"): "knowledge_acc_norm",
    ("linscale_knowledge_head", "acc"): "knowledge_head_acc",
    ("linscale_knowledge_torso", "acc"): "knowledge_torso_acc",
    ("linscale_knowledge_tail", "acc"): "knowledge_tail_acc",
    ("linscale_perplexity", "word_perplexity"): "word_perplexity",
    ("linscale_perplexity", "bits_per_byte"): "bits_per_byte",
    ("linscale_cloze", "acc"): "cloze_acc",
    ("linscale_cloze", "perplexity"): "cloze_perplexity",
    ("linscale_niah_easy", "weighted_acc"): "niah_easy_wa",
    ("linscale_niah_easy", "niah_score"): "niah_easy_score",
    ("linscale_niah_standard", "weighted_acc"): "niah_standard_wa",
    ("linscale_mqar", "acc"): "mqar_acc",
}


def downstream_table(eval_table: pd.DataFrame, runs: pd.DataFrame, loss: str = "train_loss") -> pd.DataFrame:
    """One row per evaluated checkpoint: arch, size, N, tokens, compute, the loss at that checkpoint (from
    the runs table) and one column per downstream metric (``DOWNSTREAM_METRICS``)."""
    keys = pd.Series(list(zip(eval_table["task"], eval_table["metric"])), index=eval_table.index)
    known = eval_table[keys.isin(DOWNSTREAM_METRICS.keys())].copy()
    known["column"] = [DOWNSTREAM_METRICS[(t, m)] for t, m in zip(known["task"], known["metric"])]
    wide = known.pivot_table(index=["run_id", "step"], columns="column", values="value", aggfunc="last").reset_index()
    wide.columns.name = None
    meta = runs[["run_id", "step", "arch", "size", "params", "tokens", "pf_days", loss]].rename(columns={loss: "loss"})
    table = wide.merge(meta, on=["run_id", "step"], how="left")
    order = ["run_id", "arch", "size", "step", "params", "tokens", "pf_days", "loss"]
    return table[order + [c for c in DOWNSTREAM_METRICS.values() if c in table.columns]] \
        .sort_values(["arch", "params", "step"]).reset_index(drop=True)


def downstream_chance(eval_table: pd.DataFrame) -> dict[str, float]:
    """{downstream_table column: its chance level} (linscale.eval.chance: as the store records it, else in the
    default language), NaN for perplexities."""
    from linscale.eval.chance import chance_level, store_chances

    chances = store_chances(eval_table)
    return {column: chances[key] if key in chances else chance_level(*key) for key, column in DOWNSTREAM_METRICS.items()}


def with_chance(table: pd.DataFrame, chances: dict[str, float]) -> pd.DataFrame:
    """An accuracy table as the book shows it: its rows, then one of chance levels (``downstream_chance``)."""
    from linscale.eval.chance import with_chance_row

    return with_chance_row(table, chances)


# The columns of the downstream summary table the book shows (the figures use the rest).
SUMMARY_COLUMNS = ["arch", "size", "params", "pf_days", "loss", "knowledge_acc", "bits_per_byte", "cloze_acc",
                   "niah_easy_wa", "mqar_acc"]


def final_checkpoints(table: pd.DataFrame) -> pd.DataFrame:
    """The last evaluated checkpoint of each run."""
    last = table.sort_values("step").groupby("run_id", sort=False).tail(1).sort_values(["arch", "params"])
    return last.reindex(columns=list(dict.fromkeys([*table.columns, *SUMMARY_COLUMNS]))).reset_index(drop=True)


def compare_at_largest(table: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """Each architecture's final checkpoint of its largest model: the metrics, for a like-for-like
    comparison at equal size (the paper's Table 4 reads its models the same way)."""
    last = final_checkpoints(table)
    largest = last.loc[last.groupby("arch")["params"].idxmax()]
    return largest[["arch", "size", "params", "pf_days", "loss", *[m for m in metrics if m in largest]]] \
        .reset_index(drop=True)


def ranking(table: pd.DataFrame, metric: str, higher_is_better: bool = True) -> str:
    """"HGRN2 > TNL > ...": architectures by one metric, best first ("better than", whatever the
    metric's direction)."""
    from linscale.plotting import arch_label

    part = table.dropna(subset=[metric]).sort_values(metric, ascending=not higher_is_better)
    return " > ".join(arch_label(a) for a in part["arch"]) if len(part) else "–"


def largest_model_cells(cells: pd.DataFrame, archs=None, mode: str = "easy") -> pd.DataFrame:
    """NIAH per-cell accuracy (columns arch, params, step, mode, context, depth, acc) of each
    architecture's largest model at its last evaluated step, renamed for the heatmap (score)."""
    part = cells[cells["mode"] == mode] if "mode" in cells else cells
    if archs is not None:
        part = part[part["arch"].isin(archs)]
    keep = []
    for arch, sub in part.groupby("arch"):
        sub = sub[sub["params"] == sub["params"].max()]
        keep.append(sub[sub["step"] == sub["step"].max()])
    return pd.concat(keep, ignore_index=True).rename(columns={"acc": "score"})


RETRIEVAL_TASKS = {"mqar_acc": "associative recall", "niah_easy_wa": "NIAH easy", "niah_standard_wa": "NIAH standard"}


def retrieval_long(largest: pd.DataFrame, chances: dict[str, float] | None = None) -> pd.DataFrame:
    """The retrieval scores of :func:`compare_at_largest`'s table in long form (arch, task, score, and
    each task's ``chance`` level from ``chances``: :func:`downstream_chance`)."""
    columns = [c for c in RETRIEVAL_TASKS if c in largest]
    long = largest.melt(id_vars=["arch"], value_vars=columns, var_name="metric", value_name="score")
    long["task"] = long["metric"].map(RETRIEVAL_TASKS)
    long["chance"] = long["metric"].map(chances or {}).astype(float)
    return long.dropna(subset=["score"])


def retrieval_verdict(largest: pd.DataFrame, margin: float | dict = 0.0) -> str:
    """The paper's retrieval claim (softmax attention retrieves better than every linear model) on the
    largest models: reproduced when LLaMA's score is above every linear model's on every retrieval task
    measured, not reproduced when a linear model beats it on all of them, inconclusive otherwise (or when
    every model is at zero), not testable without LLaMA or without retrieval scores. ``margin``: by more
    than this (absolute; a {metric: margin} dict for one per task)."""
    columns = [c for c in RETRIEVAL_TASKS if c in largest and largest[c].notna().any()]
    if "llama" not in set(largest["arch"]) or not columns or len(set(largest["arch"])) < 2:
        return NOT_TESTABLE
    table = largest.set_index("arch")[columns]
    llama = table.loc["llama"]
    linear = table.drop(index="llama")
    if float(table.to_numpy().max()) <= 0:
        return INCONCLUSIVE
    margins = {c: margin.get(c, 0.0) if isinstance(margin, dict) else margin for c in columns}
    if all(llama[c] > linear[c].max() + margins[c] for c in columns):
        return REPRODUCED
    if all(llama[c] < linear[c].min() - margins[c] for c in columns):
        return NOT_REPRODUCED
    return INCONCLUSIVE


# ----------------------------------------------------------------------------- the paper's claims


def law_at_compute(fit, law: str, compute: float, ci: float = 0.95) -> pd.DataFrame:
    """A fitted power law k·C^e of an approach-1/2 fit evaluated at one compute value (PF-days), per
    architecture, with a percentile interval from the bootstrap draws (NaN without draws)."""
    rows = []
    params = fit.params[fit.params["law"] == law]
    for arch, part in params.groupby("group"):
        part = part.set_index("parameter")["estimate"]
        value = float(part["coefficient"] * compute ** part["exponent"])
        low = high = np.nan
        if len(fit.draws):
            d = fit.draws[(fit.draws["group"] == arch) & (fit.draws["law"] == law)]
            d = d.pivot(index="resample", columns="parameter", values="value").dropna()
            if len(d):
                values = d["coefficient"] * compute ** d["exponent"]
                low, high = (float(np.quantile(values, q)) for q in ((1 - ci) / 2, (1 + ci) / 2))
        rows.append({"arch": arch, "law": law, "compute": compute, "value": value, "ci_low": low, "ci_high": high})
    return pd.DataFrame(rows)


def _versus_llama(table: pd.DataFrame, lower_is_claimed: bool) -> tuple[str, str]:
    """Verdict for "every linear model's value is below (or above) LLaMA's", from intervals: reproduced
    when every linear interval is entirely on the claimed side of LLaMA's, not reproduced when every one
    is entirely on the other side, inconclusive otherwise. Returns (verdict, evidence text)."""
    from linscale.plotting import arch_label

    if "llama" not in set(table["arch"]) or len(table) < 2:
        return NOT_TESTABLE, "needs LLaMA and at least one linear model"
    t = table.set_index("arch")
    if t[["ci_low", "ci_high"]].isna().any().any():  # point estimates alone cannot separate architectures
        return INCONCLUSIVE, "no bootstrap intervals (too few runs to resample); estimates: " + "; ".join(
            f"{arch_label(a)} {t.loc[a, 'value']:.4g}" for a in t.index)
    lo, hi = t["ci_low"], t["ci_high"]
    linear = [a for a in t.index if a != "llama"]
    if lower_is_claimed:
        claimed = all(hi[a] < lo["llama"] for a in linear)
        opposite = all(lo[a] > hi["llama"] for a in linear)
    else:
        claimed = all(lo[a] > hi["llama"] for a in linear)
        opposite = all(hi[a] < lo["llama"] for a in linear)
    evidence = "; ".join(f"{arch_label(a)} {t.loc[a, 'value']:.4g} [{lo[a]:.4g}, {hi[a]:.4g}]"
                         for a in ["llama", *linear])
    return (REPRODUCED if claimed else NOT_REPRODUCED if opposite else INCONCLUSIVE), evidence


def tolerances_from_results(results_dir: str, preset: str, loss: str = "train_loss", tolerance: float | None = None,
                            loss_tolerance: float | None = None) -> Tolerances:
    """The :class:`Tolerances` a study's verdicts are judged against: ``loss_tolerance`` (relative) and
    ``tolerance`` (absolute, accuracies) when given, else the seed noise its seeds ablation measured
    (``results_dir/preset/ablations/seeds*.parquet``)."""
    return Tolerances(loss=loss_tolerance, accuracy=tolerance,
                      seed_losses=ablation_summary(read_ablation(preset, results_dir, "seeds"), loss=loss),
                      seed_scores=ablation_scores(preset, results_dir, "seeds", loss=loss))


def claims_from_results(results_dir: str, preset: str, loss: str = "train_loss", bootstrap: int = 200, seed: int = 0,
                        tolerance: float | None = None, loss_tolerance: float | None = None) -> pd.DataFrame:
    """The study's verdicts from its results folder alone (``results_dir/preset/``: runs, eval, ablations):
    :func:`claims` on the paper's envelope fit (``bootstrap`` resamples over runs, seeded by ``seed``, so
    the same folder always gives the same verdicts), the downstream scores, the ablation summaries and
    :func:`tolerances_from_results`. The findings chapter and ``linscale compare`` both call this.
    A missing table is a one-line :class:`~linscale.results.ResultsError` naming it."""
    from linscale import results

    runs = results.read_runs(preset, results_dir)
    envelope_fit = try_fit(runs, "approach1", bootstrap=bootstrap, seed=seed, loss_column=loss)
    scores = downstream_table(results.read_eval(preset, results_dir), runs, loss=loss)
    aspect = ablation_summary(read_ablation(preset, results_dir, "aspect"), loss=loss)
    context = ablation_summary(read_ablation(preset, results_dir, "context"), loss=loss)
    context_scores = ablation_scores(preset, results_dir, "context", loss=loss)
    tolerances = tolerances_from_results(results_dir, preset, loss=loss, tolerance=tolerance,
                                         loss_tolerance=loss_tolerance)
    return claims(runs, envelope_fit.fit, scores, aspect, context, tolerances=tolerances,
                  context_scores=context_scores)


def claims(runs: pd.DataFrame, fit1, scores: pd.DataFrame | None = None, aspect: pd.DataFrame | None = None,
           context: pd.DataFrame | None = None, tolerances: Tolerances | None = None,
           context_scores: pd.DataFrame | None = None) -> pd.DataFrame:
    """Each claim of the paper beside this study's evidence and a verdict.

    ``fit1``: the paper's method, with a bootstrap when possible (:func:`try_fit`), or None when the
    grid cannot support it (the law-based claims are then not testable);
    ``scores``: :func:`downstream_table`; ``aspect``/``context``: :func:`ablation_summary` tables;
    ``context_scores``: the context ablation's :func:`ablation_scores`.
    ``tolerances``: differences between single runs smaller than these count as none (:class:`Tolerances`;
    default :data:`DEFAULT_TOLERANCE` for everything).
    Columns: id, claim, paper, evidence, verdict, numbers and tolerance: ``numbers`` maps a name
    ("knowledge_acc[tnl]") to each number the verdict rests on; ``tolerance`` maps the same names to how
    far that number may move by chance, in its own units (the seed tolerance for single runs, the half
    width of the 95% interval for a fitted value; NaN where there is none). :mod:`linscale.compare`
    measures a change between two studies in these units.
    """
    from linscale.plotting import arch_label

    rows = []
    if fit1 is None:
        for key, claim in (("lower_loss", "At equal compute, the linear models reach a lower loss than LLaMA"),
                           ("more_parameters", "At the compute optimum, the linear models use more parameters than LLaMA"),
                           ("more_tokens", "At the compute optimum, the linear models use more tokens than LLaMA"),
                           ("exponents", "The linear models scale as well as LLaMA (loss exponents alike)")):
            rows.append({"id": key, "claim": claim, "paper": "Table 3", "verdict": NOT_TESTABLE,
                         "evidence": "the paper's laws cannot be fitted on this grid"})
    else:
        rows += _law_claims(fit1)
    rows += _other_claims(scores, aspect, context, tolerances or Tolerances(), context_scores)
    for row in rows:  # a claim without evidence rests on no numbers
        row.setdefault("numbers", {})
        row.setdefault("tolerance", {})
    return pd.DataFrame(rows, columns=CLAIM_COLUMNS)


CLAIM_COLUMNS = ["id", "claim", "paper", "evidence", "verdict", "numbers", "tolerance"]


def _interval_numbers(table: pd.DataFrame, name: str) -> tuple[dict, dict]:
    """({name[arch]: estimate}, {name[arch]: half width of its interval}) of a :func:`law_at_compute`
    table (columns arch, value, ci_low, ci_high) or of fitted parameters (group, estimate, ...)."""
    table = table.rename(columns={"group": "arch", "estimate": "value"})
    numbers = {f"{name}[{row.arch}]": float(row.value) for row in table.itertuples()}
    noise = {f"{name}[{row.arch}]": float((row.ci_high - row.ci_low) / 2) for row in table.itertuples()}
    return numbers, noise


def _law_claims(fit1) -> list[dict]:
    from linscale.plotting import arch_label

    rows = []
    compute = common_compute(fit1)

    # 1. Lower loss at equal compute.
    at_compute = law_at_compute(fit1, "L(C)", compute)
    verdict, evidence = _versus_llama(at_compute, lower_is_claimed=True)
    numbers, noise = _interval_numbers(at_compute, "L(C)")
    rows.append({"id": "lower_loss", "claim": "At equal compute, the linear models reach a lower loss than LLaMA",
                 "paper": "Table 3 / Figure 1: L(C) of TNL, HGRN2, cosFormer2 below LLaMA's over 1e-2 to 1e3 PF-days",
                 "evidence": f"fitted L at C = {compute:.3g} PF-days (95% bootstrap interval): {evidence}",
                 "verdict": verdict, "numbers": numbers, "tolerance": noise})

    # 2. More parameters and more tokens at the compute optimum.
    for law, what in (("N_opt(C)", "parameters"), ("D_opt(C)", "tokens")):
        at_compute = law_at_compute(fit1, law, compute)
        verdict, evidence = _versus_llama(at_compute, lower_is_claimed=False)
        numbers, noise = _interval_numbers(at_compute, law)
        rows.append({"id": f"more_{what}", "claim": f"At the compute optimum, the linear models use more {what} than LLaMA",
                     "paper": f"Table 3: {law} of the linear models above LLaMA's at 1 PF-day",
                     "evidence": f"{law} at C = {compute:.3g} PF-days: {evidence}", "verdict": verdict,
                     "numbers": numbers, "tolerance": noise})

    # 3. Similar scaling exponents.
    exps = fit1.params[(fit1.params["law"] == "L(C)") & (fit1.params["parameter"] == "exponent")].set_index("group")
    bootstrapped = exps.get("ci_method", pd.Series(dtype=str)).astype(str).str.contains("bootstrap").all()
    if "llama" in exps.index and len(exps) > 1 and (not bootstrapped or exps[["ci_low", "ci_high"]].isna().any().any()):
        verdict = INCONCLUSIVE
        evidence = "no bootstrap intervals (too few runs to resample); estimates: " + "; ".join(
            f"{arch_label(a)} {exps.loc[a, 'estimate']:.4f}" for a in exps.index)
    elif "llama" in exps.index and len(exps) > 1:
        lo, hi = exps["ci_low"].fillna(exps["estimate"]), exps["ci_high"].fillna(exps["estimate"])
        overlap = all(lo[a] <= hi["llama"] and lo["llama"] <= hi[a] for a in exps.index if a != "llama")
        verdict = REPRODUCED if overlap else NOT_REPRODUCED
        evidence = "; ".join(f"{arch_label(a)} {exps.loc[a, 'estimate']:.4f} [{lo[a]:.4f}, {hi[a]:.4f}]"
                             for a in exps.index)
    else:
        verdict, evidence = NOT_TESTABLE, "needs LLaMA and a linear model"
    numbers, noise = _interval_numbers(exps.reset_index(), "L(C) exponent")
    rows.append({"id": "exponents", "claim": "The linear models scale as well as LLaMA (loss exponents alike)",
                 "paper": "Table 3: L(C) exponents −0.0753 to −0.0798",
                 "evidence": f"L(C) exponents (95% intervals): {evidence}", "verdict": verdict,
                 "numbers": numbers, "tolerance": noise})
    return rows


def _other_claims(scores, aspect, context, tol: Tolerances, context_scores) -> list[dict]:
    from linscale.plotting import arch_label

    rows = []

    # 4-6. Downstream at the largest size.
    if scores is not None and len(scores):
        largest = compare_at_largest(scores, ["knowledge_acc", "bits_per_byte", "cloze_acc", "niah_easy_wa",
                                              "niah_standard_wa", "mqar_acc"]).set_index("arch")
        if "llama" in largest.index and len(largest) > 1:
            linear = [a for a in largest.index if a != "llama"]
            know_ok = all(largest.loc[a, "knowledge_acc"] >= largest.loc["llama", "knowledge_acc"]
                          - tol.for_accuracy("knowledge_acc", largest.index) for a in linear)
            bpb_margin = tol.for_loss(largest.index)
            bpb_ok = all(largest.loc[a, "bits_per_byte"] <= largest.loc["llama", "bits_per_byte"] * (1 + bpb_margin)
                         for a in linear)
            verdict = REPRODUCED if know_ok and bpb_ok else NOT_REPRODUCED if not know_ok and not bpb_ok \
                else INCONCLUSIVE
            evidence = "; ".join(f"{arch_label(a)} knowledge {largest.loc[a, 'knowledge_acc']:.3f}, "
                                 f"bits/byte {largest.loc[a, 'bits_per_byte']:.3f}" for a in largest.index)
            numbers, noise = {}, {}
            for a in largest.index:
                numbers[f"knowledge_acc[{a}]"] = float(largest.loc[a, "knowledge_acc"])
                noise[f"knowledge_acc[{a}]"] = tol.for_accuracy("knowledge_acc", largest.index)
                numbers[f"bits_per_byte[{a}]"] = float(largest.loc[a, "bits_per_byte"])
                noise[f"bits_per_byte[{a}]"] = bpb_margin * float(largest.loc[a, "bits_per_byte"])
        else:
            verdict, evidence = NOT_TESTABLE, "needs LLaMA and a linear model"
            numbers, noise = {}, {}
        rows.append({"id": "knowledge", "claim": "The linear models match or beat LLaMA on knowledge and perplexity",
                     "paper": "Table 4: CSR and WikiText-2/LAMBADA perplexity of linear models at or above LLaMA's",
                     "evidence": f"largest size, final checkpoint: {evidence}", "verdict": verdict,
                     "numbers": numbers, "tolerance": noise})
        margins = {m: tol.for_accuracy(m, largest.index) for m in RETRIEVAL_TASKS}
        verdict = retrieval_verdict(largest.reset_index(), margin=margins)
        evidence = "; ".join(f"{arch_label(a)} " + ", ".join(f"{RETRIEVAL_TASKS[c]} {largest.loc[a, c]:.3f}"
                                                              for c in RETRIEVAL_TASKS if c in largest)
                             for a in largest.index)
        numbers = {f"{c}[{a}]": float(largest.loc[a, c]) for a in largest.index for c in RETRIEVAL_TASKS if c in largest}
        rows.append({"id": "retrieval", "claim": "LLaMA retrieves better than every linear model",
                     "paper": "Table 4 / 11: NIAH of LLaMA far above the linear models from 410M on",
                     "evidence": f"largest size, final checkpoint: {evidence}", "verdict": verdict,
                     "numbers": numbers, "tolerance": {key: margins[key.split("[")[0]] for key in numbers}})
        if {"tnl", "cosformer2"} <= set(largest.index):
            t, c = largest.loc["tnl"], largest.loc["cosformer2"]

            def beyond(metric, first, second, relative=False):  # first above second beyond the noise
                if relative:
                    return first > second * (1 + tol.for_loss(["tnl", "cosformer2"]))
                return first > second + tol.for_accuracy(metric, ["tnl", "cosformer2"])

            know, bpb = "knowledge_acc", "bits_per_byte"
            worse_lm = beyond(know, t[know], c[know]) or beyond(bpb, c[bpb], t[bpb], relative=True)
            better_lm = beyond(know, c[know], t[know]) or beyond(bpb, t[bpb], c[bpb], relative=True)
            retrieval = [m for m in ("niah_easy_wa", "mqar_acc") if m in c]
            better_ret = any(beyond(m, c[m], t[m]) for m in retrieval)
            worse_ret = any(beyond(m, t[m], c[m]) for m in retrieval)
            # reproduced: both halves seen; not reproduced: evidence against and none for; else inconclusive
            verdict = REPRODUCED if worse_lm and better_ret else NOT_REPRODUCED \
                if (better_lm or worse_ret) and not (worse_lm or better_ret) else INCONCLUSIVE
            evidence = (f"cosFormer2 vs TNL: knowledge {c['knowledge_acc']:.3f} vs {t['knowledge_acc']:.3f}, bits/byte "
                        f"{c['bits_per_byte']:.3f} vs {t['bits_per_byte']:.3f}, NIAH {c.get('niah_easy_wa', np.nan):.3f} vs "
                        f"{t.get('niah_easy_wa', np.nan):.3f}, recall {c.get('mqar_acc', np.nan):.3f} vs "
                        f"{t.get('mqar_acc', np.nan):.3f}")
            numbers, noise = {}, {}
            for arch, values in (("cosformer2", c), ("tnl", t)):
                for m in (know, bpb, *retrieval):
                    numbers[f"{m}[{arch}]"] = float(values[m])
                    noise[f"{m}[{arch}]"] = tol.for_loss(["tnl", "cosformer2"]) * float(values[m]) if m == bpb \
                        else tol.for_accuracy(m, ["tnl", "cosformer2"])
        else:
            verdict, evidence = NOT_TESTABLE, "needs TNL and cosFormer2"
            numbers, noise = {}, {}
        rows.append({"id": "decay", "claim": "Without decay (cosFormer2) language modelling is worse but retrieval better than with "
                              "fixed decay (TNL)",
                     "paper": "§5.3 and Table 4", "evidence": evidence, "verdict": verdict,
                     "numbers": numbers, "tolerance": noise})
    else:
        for key, claim in (("knowledge", "The linear models match or beat LLaMA on knowledge and perplexity"),
                           ("retrieval", "LLaMA retrieves better than every linear model"),
                           ("decay", "Without decay (cosFormer2) language modelling is worse but retrieval better "
                                     "than with fixed decay (TNL)")):
            rows.append({"id": key, "claim": claim, "paper": "Table 4", "evidence": "no downstream results in this study",
                         "verdict": NOT_TESTABLE})

    # 7. Aspect ratio.
    if aspect is not None and {"llama", "cosformer2"} <= set(aspect["arch"]) and aspect.groupby("arch").size().min() > 1:
        spread = loss_spread(aspect, by="aspect").set_index("arch")
        s_lin, s_llama = spread.loc["cosformer2", "spread"], spread.loc["llama", "spread"]
        margin = tol.for_loss(["llama", "cosformer2"])
        verdict = REPRODUCED if s_lin > s_llama + margin else NOT_REPRODUCED if s_lin < s_llama - margin \
            else INCONCLUSIVE
        evidence = (f"final-loss spread across shapes: cosFormer2 {s_lin:.2%}, LLaMA {s_llama:.2%} "
                    f"(differences below {margin:.2%} count as none)")
        # a spread is already relative: the relative loss tolerance is its noise as it stands
        numbers = {"spread[cosformer2]": float(s_lin), "spread[llama]": float(s_llama)}
        noise = {key: margin for key in numbers}
    else:
        verdict, evidence = NOT_TESTABLE, "no aspect-ratio ablation for LLaMA and cosFormer2 in this study"
        numbers, noise = {}, {}
    rows.append({"id": "aspect", "claim": "Linear models are more sensitive to the aspect ratio than LLaMA",
                 "paper": "Table 5 (1B, d/l from 48 to 384)", "evidence": evidence, "verdict": verdict,
                 "numbers": numbers, "tolerance": noise})

    # 8. Training context and loss.
    if context is not None and len(context) and context.groupby("arch")["seq_len"].nunique().min() > 1:
        spread = loss_spread(context, by="seq_len").set_index("arch")
        linear = [a for a in spread.index if a != "llama"]
        worst = float(spread.loc[linear, "spread"].max()) if linear else np.nan
        margin = tol.for_loss(linear)
        verdict = REPRODUCED if worst <= margin else NOT_REPRODUCED if np.isfinite(worst) else NOT_TESTABLE
        evidence = "final-loss spread across training contexts: " + "; ".join(
            f"{arch_label(a)} {spread.loc[a, 'spread']:.2%}" for a in spread.index) + \
            f" (for the linear models, below {margin:.2%} counts as none)"
        numbers = {f"spread[{a}]": float(spread.loc[a, "spread"]) for a in linear}
        noise = {key: margin for key in numbers}
    else:
        verdict, evidence = NOT_TESTABLE, "no training-context ablation in this study"
        numbers, noise = {}, {}
    rows.append({"id": "context_loss", "claim": "The training context length barely changes the linear models' language modelling",
                 "paper": "Table 6: CSR and perplexity flat from 2K to 8K",
                 "evidence": evidence, "verdict": verdict, "numbers": numbers, "tolerance": noise})
    # 9. Training context and retrieval: NIAH (easy) at the shortest against the longest context.
    metric = "niah_easy_wa"
    usable = context_scores is not None and len(context_scores) and metric in context_scores
    linear = [a for a in LINEAR if usable and a in set(context_scores["arch"])]
    if linear and context_scores.groupby("arch")["seq_len"].nunique().min() > 1:
        margin = tol.for_accuracy(metric, linear)
        parts = []
        drops = {}
        numbers = {}
        for arch in linear:
            part = context_scores[context_scores["arch"] == arch].sort_values("seq_len")
            short, long_ = part.iloc[0], part.iloc[-1]
            drops[arch] = float(long_[metric] - short[metric])
            numbers[f"{metric}[{arch}, n={int(short['seq_len'])}]"] = float(short[metric])
            numbers[f"{metric}[{arch}, n={int(long_['seq_len'])}]"] = float(long_[metric])
            parts.append(f"{arch_label(arch)} {short[metric]:.3f} at n = {int(short['seq_len'])}, "
                         f"{long_[metric]:.3f} at n = {int(long_['seq_len'])}")
        hurt = [a for a in linear if drops[a] > margin]
        helped = [a for a in linear if drops[a] < -margin]  # shorter contexts retrieve better
        at_floor = float(context_scores.loc[context_scores["arch"].isin(linear), metric].max()) <= margin
        verdict = INCONCLUSIVE if at_floor else REPRODUCED if len(hurt) == len(linear) else \
            NOT_REPRODUCED if helped and not hurt else INCONCLUSIVE
        evidence = "NIAH (easy) weighted accuracy, final checkpoint: " + "; ".join(parts) + \
            f" (differences below {margin:.3f} count as none{'; every score is below it' if at_floor else ''})"
        noise = {key: margin for key in numbers}
    else:
        verdict, evidence = NOT_TESTABLE, "retrieval is not evaluated on this study's training-context ablation"
        numbers, noise = {}, {}
    rows.append({"id": "context_retrieval", "claim": "Short training contexts hurt the linear models' retrieval",
                 "paper": "Table 6: NIAH peaks at 8K", "evidence": evidence, "verdict": verdict,
                 "numbers": numbers, "tolerance": noise})
    return rows


def verdict_counts(table: pd.DataFrame) -> dict:
    """{verdict: count} over the claims table, every verdict present (0 when absent)."""
    counts = table["verdict"].value_counts()
    return {v: int(counts.get(v, 0)) for v in (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_TESTABLE)}
