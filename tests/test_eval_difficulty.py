"""The difficulty of the linscale suites as data (difficulty.yaml), their items in the training language,
chance levels, the calibration report and the NIAH standard error."""
import ast
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from linscale.config import ResultsError
from linscale.data.synthetic import LanguageSpec, SyntheticLanguage, mass_ranks
from linscale.eval import calibration, chance, metrics
from linscale.eval.calibration import calibration_report, niah_modes
from linscale.eval.items import (DEFAULTS, DOC_START, KNOBS, TaskDataError, generate, knob_values, mqar_shape,
                                 niah_cell_shapes, niah_grid)

DATA = {"source": "synthetic"}


def params(kind, max_length=128, **knobs):
    values = knob_values(knobs)
    return {"data": DATA, "eval_seed": 3, "max_length": max_length,
            **{k: values[k] for k in KNOBS[kind] if k != "max_length"}}


def test_every_knob_has_a_default_and_belongs_to_a_task():
    used = {k for knobs in KNOBS.values() for k in knobs} | {"eval_seed"}
    assert set(DEFAULTS) <= used | {"max_length"} and used - {"max_length"} <= set(DEFAULTS)
    assert knob_values({}) == knob_values({k: str(v) for k, v in DEFAULTS.items()})  # strings from a CLI parse


@pytest.mark.parametrize("knob, value, expected", [
    ("niah_repeats", "0", "niah_repeats: expected a positive integer"),
    ("mqar_gap", "-1", "mqar_gap: expected a non-negative integer"),
    ("n_per_band", "many", "n_per_band: expected an integer"),
    ("niah_min_length", "1.5", "niah_min_length: expected a fraction"),
    ("niah_min_length", "0", r"niah_min_length: expected a fraction in \(0, 1\], got 0.0"),
    ("knowledge_bands", "0.5:0.7:0.8:1.2", "knowledge_bands: expected 4 increasing"),  # past the whole mass
    ("knowledge_bands", "-0.1:0.7:0.8:0.9", "knowledge_bands: expected 4 increasing"),
    ("knowledge_bands", "0.5:0.4:0.8:0.9", "knowledge_bands: expected 4 increasing"),
    ("knowledge_bands", "0.5:0.5:0.8:0.9", "knowledge_bands: expected 4 increasing"),  # an empty head band
    ("knowledge_bands", "0.5:0.7", "knowledge_bands: expected 4 increasing")])
def test_bad_knobs_are_one_line_errors_naming_the_knob(knob, value, expected):
    with pytest.raises(TaskDataError, match=expected) as err:
        knob_values({knob: value})
    assert "\n" not in str(err.value)


def test_a_fraction_knob_takes_its_upper_end_and_a_whole_length_grid_is_one_length():
    """niah_min_length is a fraction in (0, 1]: 1 (every NIAH item at the full context) must be accepted,
    and niah_grid must then list the full length once, not once per grid length (three identical cells)."""
    assert knob_values({"niah_min_length": "1"})["niah_min_length"] == 1.0
    assert niah_grid(64, 3, 3, 1.0)[0] == [64]


def test_niah_depths_run_from_the_start_to_the_end_of_the_context():
    """The depths are linspace(0, 100) percent, the paper's grid: both ends (needle first, needle last) are
    cells of the heatmap."""
    lengths, depths = niah_grid(64, 3, 3)
    assert depths == [0.0, 50.0, 100.0] and lengths == [8, 36, 64]
    assert niah_grid(64, 3, 1)[1] == [50.0]  # one depth: the middle
    assert niah_grid(64, 3, 3, 0.01)[0] == [8, 36, 64]  # no length under 8 tokens, however small the fraction


def test_mqar_items_take_as_many_pairs_as_fit_and_no_more_queries_than_pairs():
    """A binding is 4 tokens and the question with its answer 3: with max_length 66 and no gap 15 bindings
    fit (66 - 3 = 63 = 15 x 4 + 3) and a 16th would push the answer out of the model's context; a query asks
    a bound variable, so there are never more queries than pairs; a gap that leaves no room for even one
    binding is one line naming the knob."""
    assert mqar_shape({"max_length": 66, "mqar_gap": 0, "mqar_pairs": 100, "mqar_queries": 3}, 100) == (15, 3)
    assert mqar_shape({"max_length": 66, "mqar_gap": 0, "mqar_pairs": 100, "mqar_queries": 3}, 9) == (9, 3)
    assert mqar_shape({"max_length": 64, "mqar_gap": 0, "mqar_pairs": 2, "mqar_queries": 5}, 16) == (2, 2)
    assert mqar_shape({"max_length": 16, "mqar_gap": 9, "mqar_pairs": 4, "mqar_queries": 1}, 16) == (1, 1)
    with pytest.raises(TaskDataError, match="mqar_gap: 13 tokens leave no room for a binding within max_length=16"):
        mqar_shape({"max_length": 16, "mqar_gap": 13, "mqar_pairs": 4, "mqar_queries": 1}, 16)


def test_knowledge_bands_take_their_facts_from_the_mass_intervals():
    lang = SyntheticLanguage(LanguageSpec())
    items = generate("knowledge", params("knowledge", n_per_band=30, knowledge_bands="0.2:0.5:0.6:0.9"))
    for band, (lo, hi) in (("head", (0.2, 0.5)), ("torso", (0.5, 0.6)), ("tail", (0.6, 0.9))):
        first, last = mass_ranks(lang, lo, hi)
        ranks = [it["rank"] for it in items if it["band"] == band]
        assert len(ranks) == 30 and all(first <= r < last for r in ranks), band
    # the mass between the edges is what the band holds
    p = np.sort(lang.p_fact.ravel())[::-1]
    first, last = mass_ranks(lang, 0.5, 0.6)
    assert p[:first].sum() == pytest.approx(0.5, abs=p[first - 1]) and p[:last].sum() == pytest.approx(0.6, abs=p[last - 1])
    # the fact that straddles an edge belongs to the band below it: neighbouring bands meet, no fact in both
    assert p[:first - 1].sum() < 0.5 <= p[:first].sum()
    assert mass_ranks(lang, 0.2, 0.5)[1] == first and mass_ranks(lang, 0.6, 0.9)[0] == last
    assert {len(it["choices"]) for it in generate("knowledge", params("knowledge", n_per_band=5, n_choices=3))} == {3}


def test_niah_cell_shapes_describe_the_items_evaluated():
    """The downstream chapter says what a NIAH cell holds (cell lengths are an upper bound; the shortest
    cells have too few sentences for every depth): from the items the suites generate, not from the grid."""
    knobs = {"niah_lengths": 4, "niah_depths": 6, "niah_repeats": 3}
    shapes = niah_cell_shapes(SyntheticLanguage(LanguageSpec()), 64, {**knobs, "eval_seed": 3}).set_index("length")
    items = pd.DataFrame([it for it in generate("niah", params("niah", max_length=64, **knobs))
                          if it["mode"] == "standard"])
    items["tokens"] = [len(f"{DOC_START} {c} {q}".split()) for c, q in zip(items["context"], items["question"])]
    items["places"] = [min(c.split().count("."), 6) for c in items["context"]]  # haystack sentences + 1
    by_length = items.groupby("length")
    assert list(shapes.index) == sorted(items["length"].unique())
    np.testing.assert_allclose(shapes["tokens_mean"], by_length["tokens"].mean())
    np.testing.assert_allclose(shapes["places_mean"], by_length["places"].mean())
    assert (shapes["tokens_min"] <= shapes["tokens_mean"]).all() and (shapes["tokens_mean"] <= shapes.index).all()
    assert shapes["places_mean"].iloc[0] < 6 and shapes["places_mean"].iloc[-1] == 6  # few places only when short


@pytest.mark.parametrize("mode, marker", [("easy", "what"), ("standard", "let")])
def test_niah_items_are_documents_of_the_training_language_of_the_grid_length(mode, marker):
    """easy: the needle is a question with its answer ("what VAR VAL ."), standard: a binding ("let VAR VAL .");
    the question is "what VAR"; the model reads <eod> + context + question, at most the grid's length."""
    lang = SyntheticLanguage(LanguageSpec())
    items = [it for it in generate("niah", params("niah", niah_lengths=3, niah_depths=3, niah_repeats=2))
             if it["mode"] == mode]
    lengths, _ = niah_grid(128, 3, 3, DEFAULTS["niah_min_length"])
    assert len(items) == 3 * 3 * 2 and {it["length"] for it in items} == set(lengths)
    for it in items:
        words = it["context"].split()
        var = it["question"].split()[1]
        assert it["question"] == f"what {var}"
        at = [i for i in range(len(words) - 3) if words[i:i + 2] == [marker, var]]
        assert len(at) == 1 and words[at[0] + 2:at[0] + 4] == [it["answer"], "."]
        assert words.count("let") + words.count("what") == 1  # the only binding in the haystack
        prompt = f"{DOC_START} {it['context']} {it['question']}"
        assert it["length"] - 8 <= len(prompt.split()) <= it["length"] <= 128
        lang.encode(it["context"] + " " + it["question"])


def test_both_needles_occur_in_training_documents():
    """The training language states a value both ways before it is asked again: "let VAR VAL" and a fresh
    question "what VAR VAL"; so both NIAH needles are in distribution."""
    lang = SyntheticLanguage(LanguageSpec())
    docs, _ = lang.sample(np.random.default_rng(0), 200, 128)
    first_mention = {"let": 0, "what": 0}
    for doc in docs:
        words = lang.decode(doc).split()
        seen = set()
        for i in range(len(words) - 2):
            if words[i] in first_mention and words[i + 1] not in seen:
                seen.add(words[i + 1])
                first_mention[words[i]] += 1
    assert first_mention["let"] > 100 and first_mention["what"] > 50


def test_mqar_items_fit_the_context_and_put_the_gap_before_the_question():
    items = generate("mqar", params("mqar", max_length=64, mqar_pairs=20, mqar_queries=3, mqar_gap=20, n_mqar=10))
    n_pairs, n_queries = mqar_shape({**knob_values({"mqar_pairs": 20, "mqar_queries": 3, "mqar_gap": 20}),
                                     "max_length": 64}, 32)
    assert n_pairs == (64 - 20 - 3) // 4 == 10 and n_queries == 3 and len(items) == 10 * 3
    for it in items:
        words = it["context"].split()
        bindings = {words[i + 1]: (i + 2, words[i + 2]) for i in range(0, 4 * n_pairs, 4)}
        assert all(words[i] == "let" for i in range(0, 4 * n_pairs, 4)) and "let" not in words[4 * n_pairs:]
        assert len(words) - 4 * n_pairs == it["gap"] <= 20
        position, value = bindings[it["question"].split()[1]]
        assert value == it["answer"] and it["distance"] == len(words) + 2 - position
        assert 1 + len(words) + 2 <= 64  # <eod>, context, question; the answer is predicted at the end
    with pytest.raises(TaskDataError, match="mqar_gap"):
        mqar_shape({**knob_values({"mqar_gap": 70}), "max_length": 64}, 32)


def test_chance_levels_follow_the_language_and_the_knobs():
    assert chance.chance_level("linscale_knowledge_tail", "acc") == 1 / DEFAULTS["n_choices"]
    assert chance.chance_level("linscale_knowledge", "acc_norm", options={"n_choices": "5"}) == 0.2
    for task in ("linscale_cloze", "linscale_niah_easy", "linscale_niah_standard", "linscale_mqar"):
        assert chance.chance_level(task, "acc") == 1 / LanguageSpec().n_values
        assert chance.chance_level(task, "acc", data={"source": "synthetic", "n_values": 16}) == 1 / 16
    assert chance.chance_level("linscale_niah_easy", "weighted_acc") == 1 / 64
    assert math.isnan(chance.chance_level("linscale_cloze", "perplexity"))
    assert math.isnan(chance.chance_level("piqa", "acc"))
    assert chance.copy_baseline(options={"mqar_pairs": 4}) == 0.25
    assert chance.copy_baseline(options={"mqar_pairs": 8}, max_length=20) == 1 / 4  # (20 - 3) // 4 pairs fit
    table = chance.chance_table()
    assert set(table["task"]) >= {"linscale_knowledge", "linscale_mqar"} and (table["answers"] > 1).all()


def test_a_chance_row_closes_a_wide_accuracy_table():
    table = pd.DataFrame({"arch": ["llama", "tnl"], "size": ["s1", "s1"], "knowledge_acc": [0.6, 0.5],
                          "bits_per_byte": [0.7, 0.8]})
    shown = chance.with_chance_row(table, {"knowledge_acc": 0.25, "bits_per_byte": float("nan")})
    assert list(shown["arch"]) == ["llama", "tnl", "chance"] and shown["knowledge_acc"].iloc[-1] == 0.25
    assert shown["bits_per_byte"].isna().iloc[-1] and shown["knowledge_acc"].dtype == float
    store = pd.DataFrame({"task": ["linscale_mqar", "linscale_mqar"], "metric": ["acc", "perplexity"],
                          "chance": [0.1, float("nan")]})
    chances = chance.store_chances(store)
    assert chances[("linscale_mqar", "acc")] == 0.1 and math.isnan(chances[("linscale_mqar", "perplexity")])
    assert chance.store_chances(store.drop(columns="chance"))[("linscale_mqar", "acc")] == 1 / 64  # older stores


def test_a_store_mixing_two_languages_chances_for_one_task_is_refused_in_one_line():
    """The book shows one chance per task: the first of two (1/64 beside checkpoints of a 16-value language)
    was shown in silence. Equal chances, NaN ones (older rows) and another task's own chance are accepted."""
    store = pd.DataFrame({"task": ["linscale_mqar", "linscale_mqar", "linscale_mqar", "linscale_cloze"],
                          "metric": ["acc"] * 4, "chance": [1 / 64, 1 / 64, float("nan"), 1 / 16]})
    assert chance.store_chances(store) == {("linscale_mqar", "acc"): 1 / 64, ("linscale_cloze", "acc"): 1 / 16}
    mixed = pd.concat([store, store.assign(task="linscale_mqar", chance=1 / 16).iloc[[3]]], ignore_index=True)
    with pytest.raises(ResultsError) as caught:
        chance.store_chances(mixed)
    message = str(caught.value)
    assert "\n" not in message and "linscale_mqar (acc)" in message and "0.01562, 0.0625" in message


def test_chance_levels_of_every_accuracy_metric_and_the_chance_table_follow_the_language_and_the_knobs():
    """The NIAH score's chance (the weighted accuracy's, an upper bound), the copy baseline of a language with few
    variables at a given context, and the chance table of a language and knobs of one's own: each was the default
    language's or difficulty.yaml's (or NaN) under a mutant; the table's derivations name each task's own kind, the
    answers survive a chance that is not exactly 1 / n in floating point, and a chance row keeps its label."""
    for data, n_values in ((None, LanguageSpec().n_values), ({"source": "synthetic", "n_values": 16}, 16)):
        assert chance.chance_level("linscale_niah_standard", "niah_score", data=data) == 1 / n_values
    few = {"source": "synthetic", "n_vars": 3}
    assert LanguageSpec.from_dict(few).n_vars == 3 < DEFAULTS["mqar_pairs"]
    assert chance.copy_baseline(few, max_length=64) == 1 / 3  # 3 variables to bind, not mqar_pairs of them
    table = chance.chance_table(data={"source": "synthetic", "n_values": 16}, options={"n_choices": 5})
    table = table.set_index("task")
    for task, row in table.iterrows():
        multiple_choice = task in chance.MULTIPLE_CHOICE
        assert (row["answers"], row["chance"]) == ((5, 0.2) if multiple_choice else (16, 1 / 16)), task
        assert row["derivation"].startswith("1 / n_choices" if multiple_choice else "1 / n_values"), task
    assert 1 / (1 / 93) < 93  # a recorded chance of 1 / 93 is 93 answers, not 92
    recorded = chance.chance_table(recorded={("linscale_mqar", "acc"): 1 / 93}).set_index("task")
    assert recorded.loc["linscale_mqar", "answers"] == 93
    shown = chance.with_chance_row(pd.DataFrame({"arch": ["llama"], "knowledge_acc": [0.6]}), {"knowledge_acc": 0.25},
                                   label="copy baseline")
    assert list(shown["arch"]) == ["llama", "copy baseline"]


def _package_tasks() -> dict[str, list[str]]:
    """{task or group: its metrics} of every YAML in the package's task folder (includes followed; a
    group's are its aggregate metrics; lm-eval's !function tags read as nothing)."""
    import yaml

    from linscale.eval.tasks import TASKS_DIR

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)

    def read(path: Path) -> dict:
        spec = yaml.load(path.read_text(), Loader=Loader)
        return {**read(path.parent / spec["include"]), **spec} if "include" in spec else spec

    specs = [read(path) for path in sorted(TASKS_DIR.glob("*.yaml"))]
    return {spec.get("group", spec.get("task")): [m["metric"] for m in spec.get("metric_list",
                                                                              spec.get("aggregate_metric_list", []))]
            for spec in specs}


def test_the_task_table_matches_the_task_folder():
    """linscale.eval.tasks' two tables are the one place the study learns a task's chance, columns,
    headers and analyses from: a task of the folder missing from them got NaN in every accuracy table and
    figure and no column in the book's tables, without a word; a score naming a metric its task does not
    compute was an empty column (review: a new task touched a dozen places)."""
    from linscale.eval.tasks import ANSWERS, SCORES

    tasks = _package_tasks()
    assert {"linscale_mqar", "linscale_niah_easy", "linscale_niah_standard", "linscale_knowledge_head",
            "linscale_cloze", "linscale_perplexity", "linscale_knowledge"} <= set(tasks)
    scored = {task: [s for s in SCORES if s.task == task] for task in tasks if tasks[task]}
    for task, scores in scored.items():
        assert task in ANSWERS, f"{task}: no form of answer (linscale/eval/tasks/__init__.py ANSWERS)"
        assert scores, f"{task}: no score (linscale/eval/tasks/__init__.py SCORES)"
        accuracies = [m for m in tasks[task] if m in chance.ACCURACY_METRICS]
        assert all(np.isfinite(chance.chance_level(task, m)) for m in accuracies), \
            f"{task}: no chance level for {accuracies} (linscale/eval/tasks/__init__.py ANSWERS)"
        assert (ANSWERS[task] is None) == (not accuracies), f"{task}: its form of answer {ANSWERS[task]!r}"
        assert not accuracies or sum(s.headline for s in scores) == 1, \
            f"{task}: not one headline accuracy for the calibration (linscale/eval/tasks/__init__.py SCORES)"
    for score in SCORES:
        assert score.metric in tasks.get(score.task, []), f"{score.column}: {score.task} computes no {score.metric}"
        assert score.header and score.column
        assert not (score.headline or score.retrieval) or score.metric in chance.ACCURACY_METRICS, score.column
    assert len({s.column for s in SCORES}) == len(SCORES) and set(ANSWERS) <= set(tasks)


def test_the_study_reads_its_task_lists_from_the_task_table():
    """Every list of tasks or scores in the findings, the calibration, the probes, the chance levels and
    the book's headers follows linscale.eval.tasks, in its order."""
    from linscale import probes, tables
    from linscale.eval.calibration import HEADLINES
    from linscale.eval.tasks import ANSWERS, SCORES
    from linscale.findings.ablations import ACCURACY_LABELS
    from linscale.findings.downstream import DOWNSTREAM_METRICS, RETRIEVAL_TASKS, SUMMARY_COLUMNS

    assert list(DOWNSTREAM_METRICS.values()) == [s.column for s in SCORES]
    assert all(DOWNSTREAM_METRICS[(s.task, s.metric)] == s.column for s in SCORES)
    assert [t for t, m in HEADLINES] == [s.task for s in SCORES if s.headline]
    assert list(ACCURACY_LABELS) == [s.column for s in SCORES if s.headline and s.label]
    assert list(RETRIEVAL_TASKS.values()) == [s.label for s in SCORES if s.retrieval]
    assert SUMMARY_COLUMNS[5:] == [s.column for s in SCORES if s.summary]
    assert probes.PROBE_RETRIEVAL == {s.task: s.metric for s in SCORES if s.retrieval}
    assert all(tables.header(s.column) == s.header for s in SCORES)
    assert set(chance.MULTIPLE_CHOICE) | set(chance.ANSWER_IS_A_VALUE) == {t for t, a in ANSWERS.items() if a}


def test_weighted_accuracy_stderr():
    # equal weights: the binomial standard error of the pooled accuracy
    records = [(i, j, (i + j + k) % 3 == 0) for i in range(4) for j in range(3) for k in range(5)]
    p = np.mean([r[2] for r in records])
    assert metrics.weighted_stderr(records, alpha=1.0) == pytest.approx(math.sqrt(p * (1 - p) / len(records)))
    # unequal weights: larger than that, and it matches a simulation of the estimator
    rng = np.random.default_rng(0)
    cells = [(i, j) for i in range(8) for j in range(6)]
    draws = [metrics.weighted_accuracy([(i, j, rng.random() < 0.5) for i, j in cells for _ in range(7)])
             for _ in range(2000)]
    assert metrics.worst_case_stderr(8, 6, 7) == pytest.approx(np.std(draws), rel=0.1)
    one = [(i, j, rng.random() < 0.5) for i, j in cells for _ in range(7)]  # one checkpoint's records
    assert metrics.weighted_stderr(one) == pytest.approx(np.std(draws), rel=0.1)
    # the default grid meets the bound of 0.03 for one checkpoint
    assert metrics.worst_case_stderr(DEFAULTS["niah_lengths"], DEFAULTS["niah_depths"], DEFAULTS["niah_repeats"]) <= 0.03


def store_rows(task, metric, values, archs=None, params=None, n=200, stderr=None, chance_value=0.25):
    archs = archs or ["llama"] * len(values)
    params = params or [1e4 * 10 ** i for i in range(len(values))]
    return [{"run_id": f"{a}-{k}", "arch": a, "size": f"s{k}", "params": p, "step": 100, "task": task,
             "metric": metric, "value": v, "stderr": stderr if stderr is not None else math.sqrt(v * (1 - v) / n),
             "n_samples": n, "chance": chance_value}
            for k, (a, v, p) in enumerate(zip(archs, values, params))]


def test_calibration_flags_ceiling_chance_and_flat_tasks():
    rows = (store_rows("linscale_knowledge_head", "acc", [0.99, 1.0, 0.985])  # every model at ceiling
            + store_rows("linscale_knowledge_torso", "acc", [0.3, 0.6, 0.9])  # calibrated
            + store_rows("linscale_knowledge_tail", "acc", [0.24, 0.27, 0.22])  # every model at chance
            + store_rows("linscale_knowledge", "acc", [0.6, 0.99, 0.995])  # at ceiling for some models only
            + store_rows("linscale_cloze", "acc", [0.5, 0.45, 0.52], chance_value=1 / 64))  # flat for LLaMA
    # an earlier checkpoint does not count: the report reads each run's last one
    early = [dict(r, step=10, value=0.99) for r in store_rows("linscale_knowledge_torso", "acc", [0.3, 0.6, 0.9])]
    report = calibration_report(pd.DataFrame(rows + early)).set_index("task")
    assert report.loc["linscale_knowledge_head", "at_ceiling"] and not report.loc["linscale_knowledge_head", "ok"]
    assert not report.loc["linscale_knowledge", "at_ceiling"] and report.loc["linscale_knowledge", "ok"]
    assert report.loc["linscale_knowledge_tail", "at_chance"] and not report.loc["linscale_knowledge_tail", "ok"]
    torso = report.loc["linscale_knowledge_torso"]
    assert torso["ok"] and torso["llama_rises"] and torso["llama_gain"] == pytest.approx(0.6)
    assert torso["min"] == 0.3 and torso["max"] == 0.9
    assert not report.loc["linscale_cloze", "llama_rises"] and not report.loc["linscale_cloze", "ok"]
    assert not report.loc["linscale_cloze", "at_chance"]
    # "within two standard errors of chance" uses the standard error of a model at chance: 0.31 on 200 items
    # is not chance (2 x 0.031 = 0.061 above 0.25 is 0.311), 0.30 is
    for value, at_chance in ((0.312, False), (0.30, True)):
        one = calibration_report(pd.DataFrame(store_rows("linscale_mqar", "acc", [value], chance_value=0.25)))
        assert bool(one["at_chance"].item()) is at_chance, value


def test_weighted_difference_is_paired_when_every_item_has_its_twin():
    rng = np.random.default_rng(1)
    cells = [(i, j) for i in range(4) for j in range(3) for _ in range(5)]
    found = rng.random(len(cells)) < 0.5  # whether the model finds this haystack's needle at all
    flip = rng.random(len(cells)) < 0.1  # a tenth of the items answered differently in the other mode
    easy = [(i, j, k, float(f)) for k, ((i, j), f) in enumerate(zip(cells, found))]
    standard = [(i, j, k, float(f != x)) for k, ((i, j), f, x) in enumerate(zip(cells, found, flip))]
    difference, se, paired = metrics.weighted_difference(easy, standard)
    plain = lambda rows: [(i, j, c) for i, j, _, c in rows]
    assert paired and difference == pytest.approx(metrics.weighted_accuracy(plain(easy))
                                                   - metrics.weighted_accuracy(plain(standard)))
    unpaired_se = math.hypot(metrics.weighted_stderr(plain(easy)), metrics.weighted_stderr(plain(standard)))
    assert 0 < se < 0.6 * unpaired_se  # the items both modes answer alike add no noise
    # equal weights: the standard error of a mean of per-item differences
    d = np.array([e[3] - s[3] for e, s in zip(easy, standard)])
    assert metrics.weighted_difference(easy, standard, alpha=1.0)[1] == pytest.approx(d.std() / math.sqrt(len(d)))
    for scored in (([], standard), ([], [])):  # a mode not scored, or neither (both "pair up" vacuously)
        assert all(math.isnan(x) for x in metrics.weighted_difference(*scored)[:2])
    # identical answers: no difference and no noise
    assert metrics.weighted_difference(easy, easy)[:2] == (0.0, 0.0)
    # items that do not pair up (each mode its own haystacks): two independent standard errors
    other = [(i, j, k + 1000, c) for i, j, k, c in standard]
    assert metrics.weighted_difference(easy, other) == (pytest.approx(difference), pytest.approx(unpaired_se), False)


def test_niah_items_fill_every_cell_of_the_grid_at_its_length_and_depth():
    """Each item is placed in the cell of its length and depth (the heat maps and the weighted accuracy read
    length_index and depth_index): every cell holds niah_repeats items of each mode, and in the longer cells
    the needle is the haystack's first sentence at depth 0, its last at 100 % and one between at 50 %."""
    items = generate("niah", params("niah", max_length=64, niah_lengths=2, niah_depths=3, niah_repeats=2))
    lengths, depths = niah_grid(64, 2, 3, DEFAULTS["niah_min_length"])
    cells = pd.Series([(it["mode"], it["length_index"], it["depth_index"]) for it in items]).value_counts()
    assert len(cells) == 2 * 2 * 3 and set(cells) == {2}
    assert all((it["length"], it["depth"]) == (lengths[it["length_index"]], depths[it["depth_index"]]) for it in items)
    for it in (it for it in items if it["length_index"] == 1):  # the needle: "let VAR VAL ." or "what VAR VAL ."
        sentences = it["context"].rstrip(" .").split(" . ")
        needle = f"{it['question'].split()[1]} {it['answer']}"
        at = [n for n, sentence in enumerate(sentences) if sentence.endswith(needle)]
        assert len(at) == 1, it
        assert {0: at[0] == 0, 1: 0 < at[0] < len(sentences) - 1, 2: at[0] == len(sentences) - 1}[it["depth_index"]]


def test_paired_niah_items_differ_only_in_the_needles_first_word():
    items = generate("niah", params("niah", niah_lengths=2, niah_depths=3, niah_repeats=2))
    easy, standard = ([it for it in items if it["mode"] == m] for m in ("easy", "standard"))
    assert len(easy) == len(standard) == 12
    for e, s in zip(easy, standard):
        var, val = e["question"].split()[1], e["answer"]
        assert (s["question"], s["answer"], s["length"], s["depth"]) == (e["question"], val, e["length"], e["depth"])
        assert f"what {var} {val} ." in e["context"]
        assert s["context"] == e["context"].replace(f"what {var} {val} .", f"let {var} {val} .")
    # niah_paired 0: each mode draws its own haystacks (the items before 2026-12-04); easy's are the same
    unpaired = generate("niah", params("niah", niah_lengths=2, niah_depths=3, niah_repeats=2, niah_paired=0))
    assert [it for it in unpaired if it["mode"] == "easy"] == easy
    assert sum(u["context"] == s["context"] for u, s in zip(unpaired[12:], standard)) == 0
    with pytest.raises(TaskDataError, match="niah_paired: expected 0 or 1"):
        knob_values({"niah_paired": "2"})


def test_niah_modes_compare_easy_with_standard_per_model():
    rows = (store_rows("linscale_niah_easy", "weighted_acc", [0.3, 0.9, 0.99], stderr=0.01, chance_value=1 / 64)
            + store_rows("linscale_niah_standard", "weighted_acc", [0.2, 0.95, 1.0], stderr=0.01, chance_value=1 / 64))
    modes = niah_modes(pd.DataFrame(rows))
    assert list(modes["easy_ge_standard"]) == [True, False, False] and list(modes["easy"]) == [0.3, 0.9, 0.99]
    # 0.05 below is beyond two standard errors of the difference (0.028), 0.01 below is not
    assert list(modes["easy_not_harder"]) == [True, False, True]
    assert modes["difference"].tolist() == pytest.approx([0.1, -0.05, -0.01])
    # with the store's paired difference row, its standard error decides: 0.01 below is now beyond 2 x 0.004
    paired = store_rows("linscale_niah_easy_minus_standard", "weighted_acc_difference", [0.1, -0.05, -0.01],
                        stderr=0.004, chance_value=float("nan"))
    modes = niah_modes(pd.DataFrame(rows + paired))
    assert list(modes["easy_not_harder"]) == [True, False, False] and list(modes["se"]) == [0.004] * 3


def test_eval_modules_import_one_way():
    """Imports inside linscale/eval flow one way (no cycle), as the whole package's do."""
    root = Path(__file__).resolve().parents[1] / "linscale" / "eval"
    graph = {}
    for path in root.glob("*.py"):
        name = path.stem
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("linscale.eval."):
                targets.add(node.module.split(".")[2])
            elif isinstance(node, ast.ImportFrom) and node.module == "linscale.eval":
                targets |= {alias.name for alias in node.names if (root / f"{alias.name}.py").exists()}
        graph[name] = targets - {name, "tasks"}

    def reaches(start, goal, seen=()):
        return any(t == goal or (t not in seen and reaches(t, goal, (*seen, t))) for t in graph.get(start, ()))

    cycles = sorted(n for n in graph if reaches(n, n))
    assert not cycles, {n: sorted(graph[n]) for n in cycles}
    assert "items" in graph["adapter"] and "adapter" not in graph["items"]
    json.dumps({k: sorted(v) for k, v in graph.items()})


def test_calibration_null_stderr_of_the_weighted_accuracy_and_of_the_knowledge_group():
    """"At chance" compares with the standard error of a model at chance: for NIAH's weighted accuracy the
    measured one rescaled from the model's plain accuracy p to c (as √(p (1 − p)) scales), for the knowledge
    group (no n-samples of its own in lm-eval's results) the binomial one over its bands' items together."""
    c, se, p = 1 / 64, 0.04, 0.5
    null = se * math.sqrt(c * (1 - c) / (p * (1 - p)))  # 0.0099: 0.05 is 3.5 of them above chance, 0.03 1.4
    for value, at_chance in ((0.05, False), (0.03, True)):
        rows = (store_rows("linscale_niah_easy", "weighted_acc", [value], stderr=se, chance_value=c)
                + store_rows("linscale_niah_easy", "acc", [p], chance_value=c))
        report = calibration_report(pd.DataFrame(rows)).set_index("task")
        assert bool(report.loc["linscale_niah_easy", "at_chance"]) is at_chance, (value, null)
    bands = [r for band in ("head", "torso", "tail")
             for r in store_rows(f"linscale_knowledge_{band}", "acc", [0.5], n=200)]
    null = math.sqrt(0.25 * 0.75 / 600)  # 0.0177 over the 3 x 200 items of the bands
    for value, at_chance in ((0.28, True), (0.3, False)):
        group = store_rows("linscale_knowledge", "acc", [value], n=float("nan"))
        report = calibration_report(pd.DataFrame(bands + group)).set_index("task")
        assert bool(report.loc["linscale_knowledge", "at_chance"]) is at_chance, (value, null)


def test_calibration_llama_trend_needs_two_sizes_and_z_standard_errors():
    """One LLaMA size: no trend to judge (gain NaN, rises None) and the task may be ok; two: the gain must
    exceed z standard errors of the difference, the binomial ones where the store has none. A score at
    the ceiling itself is at ceiling."""
    one = calibration_report(pd.DataFrame(store_rows("linscale_cloze", "acc", [0.5], chance_value=1 / 64)))
    assert math.isnan(one["llama_gain"].item()) and one["llama_rises"].item() is None and one["ok"].item()
    # 0.06 on 200 items: above one standard error of the difference (0.050), below two
    for stderr in (None, float("nan")):
        rows = store_rows("linscale_cloze", "acc", [0.5, 0.56], chance_value=1 / 64, stderr=stderr)
        two = calibration_report(pd.DataFrame(rows)).iloc[0]
        assert two["llama_gain"] == pytest.approx(0.06) and not two["llama_rises"] and not two["ok"]
        rows = store_rows("linscale_cloze", "acc", [0.5, 0.65], chance_value=1 / 64, stderr=stderr)
        assert calibration_report(pd.DataFrame(rows)).iloc[0]["llama_rises"]
    at = calibration_report(pd.DataFrame(store_rows("linscale_mqar", "acc", [0.98, 0.99], n=200)))
    assert at["at_ceiling"].item() and not at["ok"].item()


def test_the_weighted_null_stderr_is_the_measured_one_rescaled_not_the_binomial_of_the_items():
    """NIAH's items weigh unequally, so its null standard error is the store's own rescaled from the plain
    accuracy to chance, not the binomial one of its n items: with a measured stderr of 0.1 at p = 0.5 the
    null is 0.0248 (0.05 is 1.4 of them above chance), while the binomial one over 200 items is 0.0088
    (3.9 of them). Without the plain accuracy there is nothing to rescale from: the binomial one."""
    c, se, p, n = 1 / 64, 0.1, 0.5, 200
    rescaled, binomial = se * math.sqrt(c * (1 - c) / (p * (1 - p))), math.sqrt(c * (1 - c) / n)
    assert abs(0.05 - c) <= 2 * rescaled and abs(0.05 - c) > 2 * binomial  # the case tells the two apart
    weighted = store_rows("linscale_niah_easy", "weighted_acc", [0.05], stderr=se, n=n, chance_value=c)
    plain = store_rows("linscale_niah_easy", "acc", [p], n=n, chance_value=c)
    assert calibration_report(pd.DataFrame(weighted + plain))["at_chance"].item()
    assert not calibration_report(pd.DataFrame(weighted))["at_chance"].item()


def test_the_calibration_ceiling_and_chance_band_are_inclusive_and_the_stores_stderr_is_used():
    """0.98 is the ceiling (0.96 and 0.97 are not at it); a score exactly z null standard errors from
    chance is at chance (0.75 against 0.25 on 3 items: the null stderr is exactly 0.25); LLaMA's rise is
    judged on the store's own standard errors where it has them, and on the sign alone where neither a
    standard error nor a count of items is known."""
    below = calibration_report(pd.DataFrame(store_rows("linscale_mqar", "acc", [0.96, 0.97]))).iloc[0]
    assert not below["at_ceiling"]
    edge = calibration_report(pd.DataFrame(store_rows("linscale_mqar", "acc", [0.75], n=3, chance_value=0.25)))
    assert edge["at_chance"].item()
    # 0.15 is 2.1 binomial standard errors of the difference on 200 items, but 1.1 of the store's 0.1 each
    rows = store_rows("linscale_cloze", "acc", [0.5, 0.65], stderr=0.1, chance_value=1 / 64)
    assert not calibration_report(pd.DataFrame(rows)).iloc[0]["llama_rises"]
    for values, rises in (([0.5, 0.6], True), ([0.6, 0.5], False)):
        rows = store_rows("linscale_cloze", "acc", values, n=float("nan"), stderr=float("nan"), chance_value=1 / 64)
        report = calibration_report(pd.DataFrame(rows)).iloc[0]
        assert report["llama_rises"] is not None and bool(report["llama_rises"]) is rises, values
        assert bool(report["ok"]) is rises, values


def test_a_store_with_a_chance_level_missing_takes_every_one_from_the_language():
    """A store whose ``chance`` column is missing for some rows (an older evaluation) is not judged against
    NaN: the task's chance level comes from linscale.eval.chance for every row."""
    rows = store_rows("linscale_mqar", "acc", [0.3, 0.5], chance_value=float("nan"))
    rows[1]["chance"] = 0.5  # a wrong value beside a missing one is not taken either
    expected = chance.chance_level("linscale_mqar", "acc")
    assert np.isfinite(expected)
    report = calibration_report(pd.DataFrame(rows)).iloc[0]
    assert report["chance"] == pytest.approx(expected)


def test_the_calibration_report_names_what_is_wrong_with_each_task():
    rows = (store_rows("linscale_knowledge_head", "acc", [0.99, 1.0])
            + store_rows("linscale_knowledge_tail", "acc", [0.24, 0.26])
            + store_rows("linscale_cloze", "acc", [0.5, 0.45], chance_value=1 / 64)
            + store_rows("linscale_niah_easy", "weighted_acc", [0.3, 0.9, 0.5], stderr=0.01, chance_value=1 / 64)
            + store_rows("linscale_niah_standard", "weighted_acc", [0.2, 0.95, 0.52], stderr=0.01,
                         chance_value=1 / 64))
    store = pd.DataFrame(rows)
    text = calibration.format_report(calibration_report(store), niah_modes(store))
    assert ("not calibrated: linscale_knowledge_head (at ceiling); linscale_knowledge_tail (at chance); "
            "linscale_cloze (LLaMA does not rise)") in text
    assert "LLaMA: NIAH easy < standard at size(s) s1 (beyond noise), s2 (within noise)" in text
    fine = store_rows("linscale_cloze", "acc", [0.3, 0.6], chance_value=1 / 64)
    assert "every task is calibrated" in calibration.format_report(calibration_report(pd.DataFrame(fine)))


def test_a_store_of_no_headline_task_is_not_reported_calibrated():
    """`linscale eval --calibrate --tasks` of tasks without a headline accuracy (the NIAH mode difference,
    say) judged no task and printed "every task is calibrated": it says there was nothing to calibrate, with no
    empty table above (pandas' "Empty DataFrame" block)."""
    rows = store_rows("linscale_niah_easy_minus_standard", "weighted_acc_difference", [0.1, 0.2], stderr=0.01)
    report = calibration_report(pd.DataFrame(rows))
    assert report.empty
    text = calibration.format_report(report)
    assert "every task is calibrated" not in text
    assert text.startswith("no task to calibrate: none of the tasks evaluated has a headline accuracy")


def test_paired_items_are_every_item_of_both_modes():
    """Easy items that are all among the standard ones, with standard items left over, are not paired (the
    paired form would score only the shared ones); pair=False asks for the independent form."""
    cells = [(i, j, k) for i in range(3) for j in range(2) for k in range(4)]
    easy = [(i, j, (i, j, k), float(k % 2)) for i, j, k in cells]
    standard = [(i, j, (i, j, k), float(k < 2)) for i, j, k in cells]
    plain = lambda rows: [(i, j, c) for i, j, _, c in rows]
    independent = lambda a, b: math.hypot(metrics.weighted_stderr(plain(a)), metrics.weighted_stderr(plain(b)))
    assert metrics.weighted_difference(easy, standard)[2]
    # a standard item given twice (one key, two items): one of them would go unscored in the paired form
    assert not metrics.weighted_difference(easy, standard + standard[:1])[2]
    half = [row for row in easy if row[2][2] < 2]
    assert metrics.weighted_difference(half, standard)[1:] == (pytest.approx(independent(half, standard)), False)
    assert metrics.weighted_difference(easy, standard, pair=False)[1:] == (pytest.approx(independent(easy, standard)),
                                                                            False)


def test_niah_score_zeroes_a_length_without_a_passing_cell():
    """A column whose every cell is under the pass threshold scores nothing, however close it comes."""
    records = [(0, j, 1) for j in range(2)] + [(1, j, c) for j in range(2) for c in (1, 0, 0)]  # a_1j = 1/3
    w = {(i, j): metrics.ALPHA ** i * metrics.ALPHA ** (1 - j) for i in range(2) for j in range(2)}
    assert metrics.niah_score(records) == pytest.approx((w[0, 0] + w[0, 1]) / sum(w.values()))
    assert metrics.niah_score(records) < metrics.weighted_accuracy(records)
    assert math.isnan(metrics.weighted_accuracy([])) and math.isnan(metrics.weighted_stderr([]))


def test_chance_tables_take_the_stores_chances_and_copying_is_capped_by_the_variables():
    table = chance.chance_table(recorded={("linscale_mqar", "acc"): 1 / 16}).set_index("task")
    assert table.loc["linscale_mqar", "chance"] == 1 / 16 and table.loc["linscale_mqar", "answers"] == 16
    assert table.loc["linscale_cloze", "chance"] == 1 / LanguageSpec().n_values  # not recorded: the language's
    # more pairs asked for than the language has variables: a binding per variable at most
    assert chance.copy_baseline(options={"mqar_pairs": 1000}) == 1 / LanguageSpec().n_vars
    assert chance.copy_baseline({"source": "synthetic", "n_vars": 8}, {"mqar_pairs": 1000}) == 1 / 8


def test_weighted_difference_weighs_the_cells_by_the_alpha_asked_for():
    """The difference and both of its standard errors take ``alpha``: the difference and the unpaired error
    were weighed with the default 1.1 whatever was asked, while the paired error took the alpha given."""
    easy = [(i, j, (i, j, k), float(i + j + k > 2)) for i in range(3) for j in range(2) for k in range(3)]
    standard = [(i, j, key, float(key[2] == 0)) for i, j, key, _ in easy]
    other = [(i, j, ("other", key), c) for i, j, key, c in standard]  # no twins: the unpaired form
    plain = lambda rows: [(i, j, c) for i, j, _, c in rows]
    for alpha in (1.0, 1.5):
        expected = metrics.weighted_accuracy(plain(easy), alpha) - metrics.weighted_accuracy(plain(standard), alpha)
        assert metrics.weighted_difference(easy, standard, alpha=alpha)[0] == pytest.approx(expected)
        unpaired = math.hypot(metrics.weighted_stderr(plain(easy), alpha), metrics.weighted_stderr(plain(other), alpha))
        assert metrics.weighted_difference(easy, other, alpha=alpha) == (pytest.approx(expected),
                                                                         pytest.approx(unpaired), False)
    # alpha 1: every item weighs the same, the difference of the plain means
    assert metrics.weighted_difference(easy, standard, alpha=1.0)[0] == pytest.approx(
        np.mean([c for *_, c in easy]) - np.mean([c for *_, c in standard]))
