"""Findings of the ablations: their runs' final losses and scores, the seed noise the seeds ablation
measures (:class:`Tolerances` for the chapters' tables; :class:`linscale.findings.rules.Noise` behind
the verdicts), and how far a setting moves the loss."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from linscale.eval.tasks import SCORES
from linscale.results import COMMON_CONTEXT
from linscale.findings.downstream import downstream_table
from linscale.findings.rules import LINEAR

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


def _grid_place(size: str, grid_sizes: list[str]) -> str:
    """"smallest" or "largest" where ``size`` ends the grid (``grid_sizes``, smallest first), else ""."""
    return "smallest" if size == grid_sizes[0] else "largest" if size == grid_sizes[-1] else ""


def context_size_words(preset: str, results_dir: str, grid_sizes: list[str]) -> str:
    """Where the context ablation trained, for the prose of the chapters that read it: the cpu preset's reading
    (its largest size, chosen because retrieval has emerged there), or the size another study's context runs
    trained and its place in that study's grid (``grid_sizes``, smallest first)."""
    if preset == "cpu":
        # HGRN2 scores above chance there (the ablations chapter's test) without having learned to find the needle
        return ("the cpu preset's largest, where retrieval has emerged in every model but HGRN2 (above chance there, "
                "it finds only a few needles)")
    sizes = read_ablation(preset, results_dir, "context")["size"].astype(str).unique()
    if len(sizes) != 1:
        return "no context ablation in this study" if not len(sizes) else "several sizes"
    size = sizes[0]
    place = _grid_place(size, grid_sizes) if size in grid_sizes else ""
    return f"here {size}" + (f", the {preset} grid's {place}" if place else "")


def size_seeds_words(preset: str, results_dir: str, grid_sizes: list[str], base: str = "the base size",
                     more: str = "") -> str:
    """What the size_seeds ablation retrains, for the prose that follows "retrains": the sizes by their place
    in the grid (``grid_sizes``, smallest first) and where the seeds ablation's size (``base``) stands, then
    ``more`` (how many seeds; said only where it retrained some size). The cpu study's reads "the grid's
    smallest and largest sizes, where the base size is neither"."""
    table = read_ablation(preset, results_dir, "size_seeds")
    sizes = sorted(set(table.loc[table["variant"] != "base", "size"].astype(str)),
                   key=lambda z: grid_sizes.index(z) if z in grid_sizes else len(grid_sizes))
    if not sizes:  # "retrains no size ..., with one more seed" read as if a seed had been added somewhere
        return "nothing in this study (its preset leaves that ablation out)"
    more = f", {more}" if more else ""
    place = {z: _grid_place(z, grid_sizes) for z in grid_sizes}
    seeded = read_ablation(preset, results_dir, "seeds")["size"].astype(str).unique()
    base_size = str(seeded[0]) if len(seeded) == 1 else None
    if all(place.get(z) for z in sizes):
        head = (f"the grid's {' and '.join(place[z] for z in sizes)} sizes" if len(sizes) > 1
                else f"the grid's {place[sizes[0]]} size, {sizes[0]}")
    else:
        head = ", ".join(sizes[:-1]) + (" and " if len(sizes) > 1 else "") + sizes[-1]
    if base_size is None:
        return head + more
    if base_size in sizes:
        return f"{head}, {base} among them{more}"
    return (f"{head} ({base}, {base_size}, is the {place[base_size]})" if place.get(base_size) else
            f"{head}, where {base} is neither") + more


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


# The downstream accuracies (columns of downstream_table) and their names in the prose: each task's headline
# accuracy that has a name of its own (the knowledge bands enter through their mean).
ACCURACY_LABELS = {score.column: score.label for score in SCORES if score.headline and score.label}
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
        columns = ["loss"] if column == "loss" else list(ACCURACY_LABELS)
        parts = []
        for name in columns:
            every, linear = self.measured(name), self.measured(name, LINEAR)
            if np.isfinite(every):
                text = f"{every:.2%} and {linear:.2%}" if name == "loss" else f"{every:.3f} and {linear:.3f}"
                parts.append(text if name == "loss" else f"{ACCURACY_LABELS[name]} {text}")
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
              for metric, label in ACCURACY_LABELS.items()
              if metric in seed_scores and seed_scores[metric].notna().any()]
    return pd.concat(frames, axis=1) if frames else pd.DataFrame(index=pd.Index([], name="arch"))


def ablation_scores(preset: str, results_dir: str, name: str, loss: str = "train_loss",
                    evaluation: str = COMMON_CONTEXT) -> pd.DataFrame:
    """The downstream scores of an ablation's runs at their final checkpoints
    (``results/<preset>/ablations/<name>-eval.parquet``): :func:`downstream_table`'s columns plus the
    ablation's ``variant``, ``seq_len`` and ``seed``. Empty when the study did not evaluate them.
    ``evaluation``: where the table holds several evaluations of the same runs (the context ablation:
    ``linscale.results.COMMON_CONTEXT``, ``TWICE_CONTEXT``), which one; a table without an ``evaluation``
    column holds one evaluation, taken as the common one."""
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
    elif evaluation != COMMON_CONTEXT:
        table = table.iloc[0:0]
    scores = downstream_table(keyed(table), runs, loss=loss)
    return scores.join(runs.drop_duplicates("run_id").set_index("run_id")[["variant", "seq_len", "seed"]], on="run_id")


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


def context_raw_sentence(spread: pd.DataFrame, best_excess: dict, bayes_spread: float, bayes_text: str,
                         loss: str = "train_loss") -> str:
    """Why the context ablation's raw losses are not compared, in words ("" without them or without a Bayes
    spread): what the raw loss would rank (each architecture's context of lowest raw loss, ``spread``:
    :func:`loss_spread` by ``seq_len``, indexed by arch), against ``best_excess`` (arch -> the context of
    lowest loss above the Bayes loss) and against how far the Bayes loss of those tokens moves across the
    contexts (``bayes_spread``, highest over lowest minus one; ``bayes_text`` those losses in words). Read
    on ``loss``: train_loss (the last training batch's) or val_loss."""
    from linscale.config import arch_label

    if not len(spread) or not math.isfinite(bayes_spread):
        return ""
    raw_best = {arch: int(row.best_seq_len) for arch, row in spread.iterrows()}
    raw_spread = float(spread["spread"].max())
    same = raw_best == best_excess
    # compared as printed: two spreads that read the same are said to move as much as each other
    moves = ("as much as" if f"{bayes_spread:.1%}" == f"{raw_spread:.1%}" else
             "more than" if bayes_spread > raw_spread else "too, if less than")
    # a Bayes spread under the raw one ("as much as" was said of it) leaves part of the ranking the models'
    languages = "the languages, not the models" if moves == "more than" else \
        "the languages as well as the models" if moves == "as much as" else "the languages rather than the models"
    reading = (f"It agrees here, but its differences measure {languages}." if same else
               f"That ranking measures {languages}." if moves == "more than" else
               f"So part of that ranking measures {languages}.")
    return (f"The raw {'training loss, of the last training batch,' if loss == 'train_loss' else 'validation loss'} "
            f"would suggest {'the same best contexts' if same else 'another ranking'} "
            f"(lowest at {', '.join(f'{arch_label(a)} {n}' for a, n in raw_best.items())}),"
            f" but the Bayes loss of those tokens changes with the context {moves} any model's raw loss does: "
            f"{bayes_text}, while the largest raw spread across contexts, "
            f"{arch_label(str(spread['spread'].idxmax()))}'s, is {raw_spread:.1%}. {reading}")


def noise_against_prediction(runs: pd.DataFrame, column: str, predicted_sd: float, predicted_dof: int) -> dict:
    """Check a noise model's sd at a size against runs of that size it was not estimated from.

    ``runs``: one row per run (``arch`` and ``column``), several seeds per architecture. Returns the sd per
    architecture (``per_arch``, a Series), the sd pooled over the architectures (each about its own mean)
    with its degrees of freedom, its ratio to ``predicted_sd``, and the two-sided p of the F test that the
    two variances are equal (the prediction's own estimate has ``predicted_dof`` degrees of freedom)."""
    from scipy import stats

    groups = runs.dropna(subset=[column]).groupby("arch", sort=False)[column]
    per_arch = groups.std(ddof=1)
    dof = int((groups.size() - 1).clip(lower=0).sum())
    if not dof or not predicted_sd > 0:
        return {"per_arch": per_arch, "pooled": float("nan"), "dof": dof, "ratio": float("nan"), "p": float("nan")}
    pooled = float(np.sqrt(((groups.size() - 1) * groups.var(ddof=1)).fillna(0).sum() / dof))
    f = (pooled / predicted_sd) ** 2
    p = float(min(1.0, 2 * min(stats.f.cdf(f, dof, predicted_dof), stats.f.sf(f, dof, predicted_dof))))
    return {"per_arch": per_arch, "pooled": pooled, "dof": dof, "ratio": pooled / predicted_sd, "p": p}
