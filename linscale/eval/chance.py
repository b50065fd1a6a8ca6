"""Chance levels of the linscale tasks: the accuracy of a model that knows the form of the answer but not
the answer.

    knowledge (head, torso, tail, and their mean)   1 / n_choices
        A question "FIRST LAST REL" comes with n_choices objects of that relation: the right one and
        n_choices − 1 others, in random order, all admissible answers to the relation. A model that has not
        learnt the fact has no reason to prefer one (each is the answer to equally many facts of the world),
        so it picks the right one with probability 1 / n_choices (difficulty.yaml: 4 choices, 0.25).

    cloze, NIAH (easy, standard; acc, weighted accuracy, NIAH score), associative recall   1 / n_values
        The answer is the value of a variable: one of the language's n_values values, each equally likely
        when the variable was bound (the language draws it uniformly). Scored by whether the answer is the
        model's greedy continuation, so a model that knows that a value comes next, but not which, is right
        with probability 1 / n_values (the default language: 1/64 = 0.016). For the NIAH score, which
        zeroes a column without a passing cell, this is an upper bound.

Other baselines sit above chance and are worth knowing when reading a score: in associative recall a model
that copies one of the item's bound values at random, without matching the variable, scores 1 / pairs
(:func:`copy_baseline`); the cloze's passages hold one binding or several.

Perplexities and bits per byte have no chance level (NaN here). lm-eval's own tasks (piqa, ...) are not
known to this module: NaN too.
"""
from __future__ import annotations

import math

import pandas as pd

from linscale.config import ResultsError
from linscale.eval.tasks import ANSWERS

ANSWER_IS_A_VALUE = tuple(task for task, answer in ANSWERS.items() if answer == "value")
MULTIPLE_CHOICE = tuple(task for task, answer in ANSWERS.items() if answer == "multiple choice")
ACCURACY_METRICS = ("acc", "acc_norm", "weighted_acc", "niah_score")


def _spec(data: dict | None):
    from linscale.data.synthetic import LanguageSpec

    return LanguageSpec.from_dict(data or {})


def _knob(options: dict | None, key: str) -> int:
    from linscale.eval.items import knob_values

    return knob_values(options or {})[key]


def chance_level(task: str, metric: str = "acc", data: dict | None = None, options: dict | None = None) -> float:
    """The chance accuracy of ``task`` (an lm-eval task or group name) for ``metric``, in the language of
    the data dict ``data`` (a checkpoint's ``meta["data"]``; None: the default language) with the task
    options ``options`` (None: difficulty.yaml); NaN where there is none (perplexities, unknown tasks)."""
    if metric not in ACCURACY_METRICS:
        return math.nan
    if task in MULTIPLE_CHOICE:
        return 1.0 / _knob(options, "n_choices")
    if task in ANSWER_IS_A_VALUE:
        return 1.0 / _spec(data).n_values
    return math.nan


def copy_baseline(data: dict | None = None, options: dict | None = None, max_length: int | None = None) -> float:
    """Associative recall's score for a model that answers with one of the item's bound values at random:
    1 / pairs (the pairs that fit ``max_length``; mqar_pairs when it is not given)."""
    from linscale.eval.items import knob_values, mqar_shape

    knobs = knob_values(options or {})
    if max_length is None:
        return 1.0 / min(knobs["mqar_pairs"], _spec(data).n_vars)
    return 1.0 / mqar_shape({**knobs, "max_length": int(max_length)}, _spec(data).n_vars)[0]


CHANCE_REASONS = {
    "multiple choice": "1 / n_choices: the right object and n_choices − 1 other objects of the relation",
    "value": "1 / n_values: the answer is one of the language's values, bound uniformly at random",
}


def chance_table(data: dict | None = None, options: dict | None = None,
                 recorded: dict[tuple[str, str], float] | None = None) -> pd.DataFrame:
    """One row per linscale accuracy task: task, answers (how many admissible answers), chance, and how
    it is derived — the table the downstream chapter shows. ``recorded``: the chances an evaluation store
    holds (:func:`store_chances`), which take precedence over the default language's."""
    rows = []
    for task in (*MULTIPLE_CHOICE, *ANSWER_IS_A_VALUE):
        kind = "multiple choice" if task in MULTIPLE_CHOICE else "value"
        chance = (recorded or {}).get((task, "acc"), math.nan)
        chance = chance if pd.notna(chance) else chance_level(task, "acc", data, options)
        rows.append({"task": task, "answers": int(round(1 / chance)), "chance": chance,
                     "derivation": CHANCE_REASONS[kind]})
    return pd.DataFrame(rows, columns=["task", "answers", "chance", "derivation"])


def store_chances(store: pd.DataFrame) -> dict[tuple[str, str], float]:
    """{(task, metric): chance} of an evaluation store: its ``chance`` column (written at evaluation, from
    each checkpoint's language and the task options), or, for a store written before that column
    existed, :func:`chance_level` in the default language with difficulty.yaml's knobs. A store whose
    checkpoints record different chances for one task (languages with different answer counts) is refused:
    the book shows one chance per task, and any one of them would be wrong for the other checkpoints."""
    pairs = store[["task", "metric"]].drop_duplicates()
    recorded = pd.Series(dtype=float)
    if "chance" in store:
        levels = store.dropna(subset=["chance"]).groupby(["task", "metric"])["chance"]
        for (task, metric), values in levels:
            distinct = sorted({round(float(v), 12) for v in values})
            if len(distinct) > 1:
                raise ResultsError(f"evaluation store: task {task} ({metric}) records chance levels "
                                   f"{', '.join(f'{v:.4g}' for v in distinct)}: its checkpoints come from languages "
                                   "with different answer counts; evaluate each language into its own store")
        recorded = levels.first()
    out = {}
    for task, metric in pairs.itertuples(index=False):
        value = recorded.get((task, metric), math.nan)
        out[(task, metric)] = float(value) if pd.notna(value) else chance_level(task, metric)
    return out


def with_chance_row(table: pd.DataFrame, chances: dict[str, float], label: str = "chance") -> pd.DataFrame:
    """A wide accuracy table (one column per metric) with a last row holding each column's chance level
    (``chances``: {column: chance}; other columns empty, ``arch`` = ``label``): how the book shows chance
    beside every row of scores."""
    row = {c: chances.get(c, math.nan) for c in table.columns}
    if "arch" in table:
        row["arch"] = label
    extra = pd.DataFrame([row], columns=table.columns)
    return pd.concat([table, extra.astype({c: table[c].dtype for c in table.columns
                                           if c in chances and pd.api.types.is_float_dtype(table[c])})],
                     ignore_index=True)
