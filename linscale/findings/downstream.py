"""Findings downstream: the wide table of evaluated checkpoints, chance levels, the largest models
compared, NIAH cells and retrieval."""
from __future__ import annotations

import numpy as np
import pandas as pd

from linscale.eval.tasks import SCORES

# ----------------------------------------------------------------------------- downstream

# (task, metric) -> column of the wide downstream table (linscale.eval.tasks.SCORES, in its order); lower is
# better for the perplexities.
DOWNSTREAM_METRICS = {(score.task, score.metric): score.column for score in SCORES}


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


# A score at most this far above its chance level counts as at chance (about two standard errors of one
# checkpoint's NIAH weighted accuracy): the pages' "no model retrieves" and "above chance"
AT_CHANCE_MARGIN = 0.05


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
SUMMARY_COLUMNS = ["arch", "size", "params", "pf_days", "loss", *(score.column for score in SCORES if score.summary)]


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


def paired_difference(items: pd.DataFrame, a: tuple[str, int], b: tuple[str, int], task: str) -> tuple[float, float, int]:
    """(accuracy of checkpoint ``a`` minus that of ``b`` on ``task``, its standard error, items), both
    ``(run_id, step)``, from the per-item scores (``results/<preset>/items.parquet``): the mean of the
    item-by-item differences and their sd (ddof 1) over root n, on the items both answered. Two models
    tend to get the same items right, so this is smaller than the root of the two accuracies' squared
    standard errors, which treats them as independent; NaN without common items."""
    part = items[items["task"] == task]

    def scores(run_id, step):
        mine = part[(part["run_id"] == run_id) & (part["step"] == step)]
        return mine.set_index("doc_id")["acc"]

    both = pd.concat([scores(*a), scores(*b)], axis=1, join="inner").dropna()
    if len(both) < 2:
        return float("nan"), float("nan"), len(both)
    diff = both.iloc[:, 0] - both.iloc[:, 1]
    return float(diff.mean()), float(diff.std(ddof=1) / np.sqrt(len(diff))), len(diff)


def ranking(table: pd.DataFrame, metric: str, higher_is_better: bool = True, tolerance: float = 0.0) -> str:
    """"HGRN2 > TNL ≈ ...": architectures by one metric, best first (">" reads "better than", whatever
    the metric's direction). Neighbours whose difference is not larger than ``tolerance`` (a noise bound
    in the metric's units; 0: exact ties only) are written "≈": an order inside the noise is no order."""
    from linscale.config import arch_label

    part = table.dropna(subset=[metric]).sort_values(metric, ascending=not higher_is_better)
    if not len(part):
        return "–"
    values, names = part[metric].astype(float).tolist(), [arch_label(a) for a in part["arch"]]
    text = names[0]
    for previous, value, name in zip(values, values[1:], names[1:]):
        text += (" > " if abs(value - previous) > tolerance else " ≈ ") + name
    return text


def largest_model_cells(cells: pd.DataFrame, archs=None, mode: str = "easy") -> pd.DataFrame:
    """NIAH per-cell accuracy (columns arch, params, step, mode, context, depth, acc) of each
    architecture's largest model at its last evaluated step, renamed for the heatmap (score); no rows
    where no cell is of ``mode`` and ``archs`` (a chapter narrowed to architectures the cells lack)."""
    part = cells[cells["mode"] == mode] if "mode" in cells else cells
    if archs is not None:
        part = part[part["arch"].isin(archs)]
    keep = [part.iloc[:0]]
    for arch, sub in part.groupby("arch"):
        sub = sub[sub["params"] == sub["params"].max()]
        keep.append(sub[sub["step"] == sub["step"].max()])
    return pd.concat(keep, ignore_index=True).rename(columns={"acc": "score"})


# The retrieval scores (columns of downstream_table) and their names in the prose.
RETRIEVAL_TASKS = {score.column: score.label for score in SCORES if score.retrieval}


def retrieval_long(largest: pd.DataFrame, chances: dict[str, float] | None = None,
                   baselines: dict[str, float] | None = None) -> pd.DataFrame:
    """The retrieval scores of :func:`compare_at_largest`'s table in long form (arch, task, score, and
    each task's ``chance`` level from ``chances``: :func:`downstream_chance`; ``baseline``: a task's
    score without the skill it asks for, e.g. associative recall's copy baseline, from ``baselines``)."""
    columns = [c for c in RETRIEVAL_TASKS if c in largest]
    long = largest.melt(id_vars=["arch"], value_vars=columns, var_name="metric", value_name="score")
    long["task"] = long["metric"].map(RETRIEVAL_TASKS)
    long["chance"] = long["metric"].map(chances or {}).astype(float)
    long["baseline"] = long["metric"].map(baselines or {}).astype(float)
    return long.dropna(subset=["score"])


# ----------------------------------------------------------------------------- excess loss by token role

# The roles the downstream chapter shows (linscale.eval.roles): retrieval in the loss itself, the two
# halves of a query, beside memorised knowledge.
ROLE_SKILLS = ("query_variable", "query_value", "fact_object")


def role_finals(roles: pd.DataFrame) -> pd.DataFrame:
    """The role table (results/<preset>/roles.parquet) at each run's last checkpoint, per sweep (the main
    sweep's and each seed ablation's runs are runs of their own), with ``main``: the run is the main
    sweep's (its ``ablation`` column says "main")."""
    if roles is None or not len(roles):
        # a study without a role table (re-runs committed before roles.parquet existed) still has the columns
        # a chapter selects on (role_ends["arch"]: the downstream chapter of such a re-run raised KeyError)
        from linscale.eval.roles import COLUMNS

        columns = roles.columns if roles is not None else ["sweep", "ablation", *COLUMNS]
        return pd.DataFrame(columns=[*columns, "main"])
    last = roles[roles["step"] == roles.groupby(["sweep", "run_id"])["step"].transform("max")]
    return last.assign(main=last["ablation"] == "main").reset_index(drop=True)


def context_blind_excess(roles: pd.DataFrame, data: dict) -> dict[str, float]:
    """What a model that does not read the document pays above the exact loss on the two query roles:
    it can only guess uniformly among all ``n_vars`` variables (the query's variable) and all
    ``n_values`` values (its answer). Mean exact nll per role from the table; {} without the counts."""
    sizes = {"query_variable": data.get("n_vars"), "query_value": data.get("n_values")}
    out = {}
    for role, count in sizes.items():
        part = roles[roles["role"] == role]
        if count and len(part):
            out[role] = float(np.log(count) - part["bayes_nll"].mean())
    return out


def role_contributions(finals: pd.DataFrame) -> pd.DataFrame:
    """At each architecture's largest size (main sweep, final checkpoint): how much of the loss above the
    exact one each role holds, nats per token of the validation set (role x arch, plus ``share``: the
    fraction of the tokens with that role), with a ``total`` row."""
    from linscale.data.synthetic import ROLES

    main = finals[finals["main"]]
    largest = main[main["params"] == main.groupby("arch")["params"].transform("max")]
    wide = largest.pivot_table(index="role", columns="arch", values="contribution", aggfunc="first")
    wide = wide.reindex([r for r in ROLES if r in wide.index])
    wide.insert(0, "share", largest.groupby("role")["share"].first().reindex(wide.index))
    total = wide.drop(columns="share").sum().to_frame("total").T.assign(share=wide["share"].sum())
    return pd.concat([wide, total])[wide.columns]


def split_at_largest_gap(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(lower group, upper group) of ``values``, split at the largest gap between neighbours when sorted:
    two groups of runs whose final losses part (one skill learned within the budget or not)."""
    ordered = values.sort_values()
    if len(ordered) < 2:
        return ordered, ordered.iloc[:0]
    cut = int(np.argmax(np.diff(ordered.to_numpy()))) + 1
    return ordered.iloc[:cut], ordered.iloc[cut:]


def committed_finals(results, size: str = "s6", preset: str = "cpu") -> pd.DataFrame:
    """Final validation loss of every ``size`` run in the committed studies (``results/<preset>`` and
    ``results/reruns/*/<preset>``; main sweep and size_seeds): study, table, arch, seed, step, val_loss.
    What benchmarks/probe_llama_s6_modes.py froze into its table on 2026-12-03; the book reads it again
    to place the seeds of studies committed since."""
    from pathlib import Path

    results = Path(results)
    rows = []
    for study in [results / preset, *sorted(results.glob(f"reruns/*/{preset}"))]:
        name = "published" if study == results / preset else study.parent.name
        for table in (study / "runs.parquet", study / "ablations" / "size_seeds.parquet"):
            if not table.exists():
                continue
            runs = pd.read_parquet(table)
            runs = runs[runs["size"].astype(str) == size]
            last = runs[runs["step"] == runs.groupby(["run_id", "seed"])["step"].transform("max")]
            rows += [{"study": name, "table": table.stem, "arch": r.arch, "seed": int(r.seed), "step": int(r.step),
                      "val_loss": float(r.val_loss)} for r in last.itertuples()]
    return pd.DataFrame(rows, columns=["study", "table", "arch", "seed", "step", "val_loss"])


def later_seeds(probe: dict, results, arch: str = "llama", size: str = "s6", preset: str = "cpu",
                role: str = "query_variable") -> pd.DataFrame:
    """``arch``'s ``size`` seeds in the committed studies that :func:`mode_probe`'s groups lack (studies
    committed after the probe), one row each: seed, study, val_loss, ``place`` against the probe's groups
    ("lower" or "upper" inside a group's range, "between" in the gap, "below" or "above" outside both) and
    ``excess`` on ``role`` at the final checkpoint (the study's roles table; NaN where it has none)."""
    from pathlib import Path

    finals = committed_finals(results, size, preset)
    finals = finals[(finals["arch"] == arch) & ~finals["seed"].isin([*probe["lower"].index, *probe["upper"].index])]
    finals = finals.drop_duplicates("seed")
    lower, upper = probe["lower"], probe["upper"]
    rows = []
    for r in finals.itertuples():
        place = ("below" if r.val_loss < lower.min() else "lower" if r.val_loss <= lower.max() else
                 "between" if r.val_loss < upper.min() else "upper" if r.val_loss <= upper.max() else "above")
        study = Path(results) / preset if r.study == "published" else Path(results) / "reruns" / r.study / preset
        excess = float("nan")
        if (study / "roles.parquet").exists():
            roles = pd.read_parquet(study / "roles.parquet")
            mine = roles[(roles["arch"] == arch) & (roles["size"].astype(str) == size) & (roles["seed"] == r.seed)
                         & (roles["role"] == role)]
            if len(mine):
                excess = float(mine.loc[mine["step"].idxmax(), "excess"])
        rows.append({"seed": int(r.seed), "study": r.study, "val_loss": r.val_loss, "place": place, "excess": excess})
    return pd.DataFrame(rows, columns=["seed", "study", "val_loss", "place", "excess"])


def mode_probe(folder, arch: str = "llama", learned_below: float = 0.45) -> dict | None:
    """What benchmarks/probe_llama_s6_modes.py found (its CSV tables in ``folder``), or None without them:

    * ``lower``, ``upper``: the final validation losses of ``arch``'s s6 seeds in the committed studies
      (each seed's first committed run, the published study first), split at the largest gap;
    * ``kept``: role excess at the final checkpoint of the s6 runs the probe found on its machine;
    * ``longer``: role excess at each export of the runs trained longer, ``curves``: their validation
      loss at every checkpoint, and ``base``: the study's final step (where each longer run equals its
      study run);
    * ``learned``: for each longer run, the two exports between which its excess on a query's variable
      fell below ``learned_below`` nats (about half of what not reading the document costs on the cpu
      preset), or None when it never did; (None, step) when it already had at the first export."""
    from pathlib import Path

    folder = Path(folder)
    names = ("s6_final_losses", "s6_roles", "longer_curves", "longer_roles")
    if not all((folder / f"{name}.csv").exists() for name in names):
        return None
    finals, kept, curves, longer = (pd.read_csv(folder / f"{name}.csv") for name in names)
    seeds = finals[finals["arch"] == arch].drop_duplicates("seed").set_index("seed")["val_loss"]
    lower, upper = split_at_largest_gap(seeds)
    learned = {}
    for (run_arch, seed), run in longer.groupby(["arch", "seed"]):
        run = run.sort_values("step")
        below = np.flatnonzero(run["query_variable"].to_numpy() < learned_below)
        steps = run["step"].to_numpy()
        learned[run_arch, int(seed)] = None if not len(below) else \
            (int(steps[below[0] - 1]) if below[0] else None, int(steps[below[0]]))
    base = int(finals.loc[finals["arch"] == arch, "step"].max())
    return {"lower": lower, "upper": upper, "kept": kept, "longer": longer, "curves": curves, "learned": learned,
            "base": base}


# ----------------------------------------------------------------------------- a registered retrieval test

# The paper's retrieval claim (linear models retrieve worse than softmax attention) in the form the role
# split measures, fixed here on 2026-12-03 before any of its runs was trained
# (benchmarks/registered_binding_s5.py trains them): at the cpu preset's s5, with seeds no committed study
# used, does LLaMA learn which variables a document has bound more often than the linear models do?
# A run has learned it when its excess loss on a query's variable at its final checkpoint is under half of
# what a model that does not read the document pays (0.45 of 0.90 nats on the cpu preset; the threshold
# `mode_probe` and the chapter already use). The test: Fisher's exact test, one-sided, on LLaMA's runs
# against the three linear models' runs pooled (the claim is about linear models as a class).
BINDING_ROLE = "query_variable"
BINDING_ALPHA = 0.05


def binding_learned(finals: pd.DataFrame, data: dict, roles: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per run of ``finals`` (the role table at each run's final checkpoint): arch, seed, the
    excess on a query's variable, the threshold (half the context-blind excess, from ``roles`` or
    ``finals`` and the language's ``data``) and ``learned``."""
    part = finals[finals["role"] == BINDING_ROLE]
    blind = context_blind_excess(roles if roles is not None else finals, data).get(BINDING_ROLE)
    if blind is None:
        raise ValueError(f"binding_learned: data needs n_vars and the table rows of role {BINDING_ROLE!r}")
    threshold = 0.5 * blind
    out = part[["arch", "seed", "excess"]].reset_index(drop=True)
    return out.assign(threshold=threshold, learned=out["excess"] < threshold)


def binding_verdict(learned: pd.DataFrame, alpha: float = BINDING_ALPHA) -> dict:
    """The registered verdict from :func:`binding_learned`'s rows: *reproduced* when LLaMA's share of
    runs that learned is higher than the linear models' pooled share with one-sided Fisher p ≤ ``alpha``,
    *not reproduced* when the linear share is higher with p ≤ ``alpha``, *inconclusive* otherwise (also
    when either side has no runs). Returns the verdict, both p-values and the counts per architecture."""
    from scipy import stats

    from linscale.findings.rules import INCONCLUSIVE, LINEAR, NOT_REPRODUCED, REPRODUCED

    llama = learned[learned["arch"] == "llama"]["learned"]
    linear = learned[learned["arch"].isin(LINEAR)]["learned"]
    k, n, j, m = int(llama.sum()), len(llama), int(linear.sum()), len(linear)
    counts = {arch: (int(rows["learned"].sum()), len(rows)) for arch, rows in learned.groupby("arch", sort=False)}
    if not n or not m:
        return {"verdict": INCONCLUSIVE, "p_llama_higher": float("nan"), "p_linear_higher": float("nan"),
                "llama": (k, n), "linear": (j, m), "counts": counts, "alpha": alpha}
    table = [[k, n - k], [j, m - j]]
    p_higher = float(stats.fisher_exact(table, alternative="greater").pvalue)
    p_lower = float(stats.fisher_exact(table, alternative="less").pvalue)
    verdict = REPRODUCED if p_higher <= alpha else NOT_REPRODUCED if p_lower <= alpha else INCONCLUSIVE
    return {"verdict": verdict, "p_llama_higher": p_higher, "p_linear_higher": p_lower, "llama": (k, n),
            "linear": (j, m), "counts": counts, "alpha": alpha}


def binding_finals(roles: pd.DataFrame) -> pd.DataFrame:
    """The registered test's role table (every export of every run, one run per arch and seed) at each
    run's final checkpoint."""
    return roles[roles["step"] == roles.groupby(["arch", "seed"])["step"].transform("max")]


def binding_summary(roles: pd.DataFrame, runs: pd.DataFrame, data: dict) -> dict:
    """The registered test judged from its tables: ``roles`` (every export's role table) and ``runs`` (one
    row per run: arch, seed and its measures). Returns ``runs``, ``learned`` and ``result``
    (:func:`binding_learned` and :func:`binding_verdict` by the registered rule, on the final checkpoints)
    and ``spread`` (mean and seed sd of every measure of ``runs`` per architecture)."""
    learned = binding_learned(binding_finals(roles), data, roles)
    spread = runs.drop(columns=["seed", "learned"], errors="ignore").groupby("arch", sort=False).agg(["mean", "std"])
    return {"runs": runs, "learned": learned, "result": binding_verdict(learned), "spread": spread}


def binding_probe(folder, data: dict) -> dict | None:
    """What benchmarks/registered_binding_s5.py found, from its CSV tables ``runs.csv`` and ``roles.csv`` in
    ``folder`` (:func:`binding_summary`: "learned" is recomputed from the role table by the registered
    rule, not read from the report), or None without them."""
    from pathlib import Path

    folder = Path(folder)
    if not ((folder / "runs.csv").exists() and (folder / "roles.csv").exists()):
        return None
    return binding_summary(pd.read_csv(folder / "roles.csv"), pd.read_csv(folder / "runs.csv"), data)


# ----------------------------------------------------------------- why one needle is harder than the other

# Registered on 2026-12-04 before any model was scored on it (benchmarks/probe_binder.py measures it):
# cosFormer2 finds NIAH easy's needle ("what VAR VAL .") less often than standard's ("let VAR VAL .") at s5
# and s6 by more than two paired standard errors. Does the training language itself show that gap? In the
# language's own documents, the first re-query of a variable copies a value stated either by "let" or by a
# fresh query "what"; the gap is accuracy after "let" minus after "what" (greedy next token), stratified by
# the distance from the stated value to the answer, so that the two statements are compared at equal
# distances. It explains the NIAH gap (standard − easy, paired) at a size when it is positive beyond two
# standard errors and at least half the NIAH gap; it does not when it is not positive beyond two standard
# errors; partly otherwise (positive, but under half).
BINDER_BUCKETS = (0, 16, 32, 64, 128)  # distance strata (tokens), right-closed
# A size is a lottery of the seed for retrieval where its seeds' NIAH (easy) sd exceeds this (issue 16's bound on
# that sd): some seeds find the needle and others do not. The downstream and ablations chapters read it.
RETRIEVAL_LOTTERY_SD = 0.1

BINDER_Z = 2.0
BINDER_SHARE = 0.5  # the language gap must be at least this share of the NIAH gap to explain it
BINDER_EXPLAINS, BINDER_PARTLY, BINDER_DOES_NOT = "explains", "partly", "does not explain"
BINDER_NOT_MEASURED = "not measured"


def seeds_are_a_lottery(scores) -> bool:
    """Whether one configuration's seeds' NIAH (easy) scores are a lottery of the seed by the rule both chapters
    state: their sd exceeds RETRIEVAL_LOTTERY_SD. Their range is not the rule: a seed re-run's cosFormer2 s3
    seeds at 0.17, 0.08 and 0.03 (sd 0.068, none finding the needle) were called a lottery by a range above 0.1,
    beside the ablations page's own sentence that no architecture's seeds' sd exceeds the bound."""
    scores = pd.Series(scores, dtype=float).dropna()
    return len(scores) > 1 and float(scores.std()) > RETRIEVAL_LOTTERY_SD


def binder_gap(counts: pd.DataFrame) -> pd.DataFrame:
    """Per model (``run_id``, with ``arch`` and ``size``) of ``counts`` (one row per model, ``binder``
    (let or what) and ``bucket`` (distance stratum) with ``n`` items and ``correct`` answers): accuracy
    after each statement (``acc_let``, ``acc_what``, ``n_let``, ``n_what``), the stratified ``gap`` (let
    minus what, each stratum weighted by its items; strata lacking either statement are dropped) and its
    standard error ``se`` (binomial, independent strata)."""
    rows = []
    for (run_id, arch, size), model in counts.groupby(["run_id", "arch", "size"], sort=False):
        n = model.pivot_table(index="bucket", columns="binder", values="n", aggfunc="sum") \
            .reindex(columns=["let", "what"]).fillna(0)
        correct = model.pivot_table(index="bucket", columns="binder", values="correct", aggfunc="sum") \
            .reindex(index=n.index, columns=["let", "what"]).fillna(0)
        both = (n["let"] > 0) & (n["what"] > 0)
        n, correct = n[both], correct[both]
        row = dict(run_id=run_id, arch=arch, size=size, n_let=int(n["let"].sum()), n_what=int(n["what"].sum()))
        if n.empty:
            rows.append({**row, "acc_let": np.nan, "acc_what": np.nan, "gap": np.nan, "se": np.nan})
            continue
        p = correct / n
        weight = n.sum(axis=1) / float(n.to_numpy().sum())
        variance = (weight ** 2 * (p * (1 - p) / n).sum(axis=1)).sum()
        rows.append({**row, "acc_let": float(correct["let"].sum() / n["let"].sum()),
                     "acc_what": float(correct["what"].sum() / n["what"].sum()),
                     "gap": float((weight * (p["let"] - p["what"])).sum()), "se": float(np.sqrt(variance))})
    return pd.DataFrame(rows)


def binder_verdict(gap: float, se: float, niah_gap: float) -> str:
    """The registered rule at one size: does the language's gap (``gap`` ± ``se``, let minus what) explain
    a NIAH gap of ``niah_gap`` (standard minus easy)?"""
    if not (np.isfinite(gap) and np.isfinite(se) and np.isfinite(niah_gap)):
        return BINDER_NOT_MEASURED
    if gap <= BINDER_Z * se:
        return BINDER_DOES_NOT
    return BINDER_EXPLAINS if gap >= BINDER_SHARE * niah_gap else BINDER_PARTLY


def _over_sizes(verdicts: dict[str, str]) -> str:
    """One verdict over a probe's sizes: theirs when they agree, partly when they do not."""
    distinct = set(verdicts.values())
    return distinct.pop() if len(distinct) == 1 else (BINDER_PARTLY if verdicts else BINDER_NOT_MEASURED)


def binder_summary(counts: pd.DataFrame, niah: pd.DataFrame, arch: str = "cosformer2") -> dict:
    """The binder probe judged by its registered rule, from ``counts`` (items and correct answers per model,
    statement and distance stratum) and ``niah`` (each model's paired NIAH easy − standard, ``difference``,
    and its ``se``, from the evaluation store). Returns ``table`` (:func:`binder_gap` beside the NIAH gap,
    standard − easy, per model), ``verdicts`` (``arch``'s verdict per size), ``overall`` (the one verdict
    when every size agrees, else partly) and ``strata`` (accuracy after ``let`` and after ``what`` per model
    and distance stratum, outside the rule)."""
    table = binder_gap(counts).merge(niah[["run_id", "difference", "se"]].rename(
        columns={"se": "niah_se"}), on="run_id", how="left")
    table["niah_gap"] = 0.0 - table.pop("difference")  # standard − easy: positive when the easy needle is harder (no -0)
    chosen = table[table["arch"] == arch]
    verdicts = {str(r.size): binder_verdict(r.gap, r.se, r.niah_gap) for r in chosen.itertuples()}
    strata = counts.assign(accuracy=counts["correct"] / counts["n"]).pivot_table(
        index=["run_id", "arch", "size", "bucket"], columns="binder", values="accuracy", sort=False).reset_index() \
        .rename_axis(columns=None)
    return {"table": table, "verdicts": verdicts, "overall": _over_sizes(verdicts), "arch": arch, "strata": strata}


def binder_probe(folder, arch: str = "cosformer2") -> dict | None:
    """What benchmarks/probe_binder.py found, from its CSV tables ``counts.csv`` and ``niah.csv`` in
    ``folder``, judged again here by the registered rule (:func:`binder_summary`); None without them."""
    from pathlib import Path

    folder = Path(folder)
    if not ((folder / "counts.csv").exists() and (folder / "niah.csv").exists()):
        return None
    return binder_summary(pd.read_csv(folder / "counts.csv"), pd.read_csv(folder / "niah.csv"), arch)


# Registered on 2026-12-04 after reading binder_probe's strata and before any new document was scored
# (benchmarks/probe_binder_distance.py scores them): what was read after that verdict, that at distances
# of 65-128 tokens cosFormer2 alone copies a value stated by a fresh query less often than one stated by
# let, tested again on documents no model had been scored on (an independent stream, twice as many).
# Per size: replicated when cosFormer2's difference in that stratum (accuracy after a fresh query minus
# after let) is negative beyond two standard errors, not replicated otherwise; over both sizes the one
# verdict when they agree, partly when not.
LONG_STRATUM = "(64, 128]"
REPLICATED, NOT_REPLICATED = "replicated", "not replicated"


def stratum_difference(counts: pd.DataFrame, stratum: str = LONG_STRATUM) -> pd.DataFrame:
    """Per model of ``counts`` (as :func:`binder_gap` reads them): in distance stratum ``stratum`` alone,
    the items and accuracy after each statement, accuracy after a fresh query minus after ``let``
    (``difference``: :func:`binder_gap`'s gap of that one stratum, the other way round) and its binomial
    standard error."""
    part = binder_gap(counts[counts["bucket"].astype(str) == stratum])
    if part.empty:
        return pd.DataFrame(columns=["run_id", "arch", "size", "n_let", "n_what", "acc_let", "acc_what",
                                     "difference", "se"])
    return part.rename(columns={"gap": "difference"}).assign(difference=lambda t: 0.0 - t["difference"])


def replication_verdict(difference: float, se: float) -> str:
    """The registered rule at one size (see above)."""
    if not (np.isfinite(difference) and np.isfinite(se)):
        return BINDER_NOT_MEASURED
    return REPLICATED if difference < -BINDER_Z * se else NOT_REPLICATED


def binder_distance_summary(counts: pd.DataFrame, arch: str = "cosformer2") -> dict:
    """The replication judged by its registered rule from ``counts`` (as :func:`binder_gap` reads them):
    ``table`` (:func:`stratum_difference` per model), ``verdicts`` (``arch``'s, per size) and ``overall``."""
    table = stratum_difference(counts)
    chosen = table[table["arch"] == arch]
    verdicts = {str(r.size): replication_verdict(r.difference, r.se) for r in chosen.itertuples()}
    return {"table": table, "verdicts": verdicts, "overall": _over_sizes(verdicts), "arch": arch}


def binder_distance_probe(folder, arch: str = "cosformer2") -> dict | None:
    """What benchmarks/probe_binder_distance.py found, from its ``counts.csv`` in ``folder``, judged again
    by the registered rule (:func:`binder_distance_summary`); None without it."""
    from pathlib import Path

    path = Path(folder) / "counts.csv"
    return binder_distance_summary(pd.read_csv(path), arch) if path.exists() else None
