"""Task data for the linscale suites: generated from the world the model was trained on, cached.

Knowledge questions only make sense about the facts the model saw, so every item comes from the
synthetic language's generators (``linscale.data.synthetic``, its "Evaluation items" section) called with
the data dict stored in the checkpoint's meta (``meta["data"]``: world seed, vocabulary, ...). The items
are written once to a cache folder keyed by a hash of (kind, data dict, item parameters) and reused:

    <task_cache>/<kind>-<sha256[:16]>.jsonl       one JSON object per line, written atomically

``task_cache`` defaults to ``$LINSCALE_EVAL_CACHE`` or ``~/.cache/linscale/eval``; ``linscale eval``
uses ``<sweep>/eval/tasks``. lm-eval hands the task options to the ``custom_dataset`` functions of
``linscale/eval/tasks/utils.py`` as metadata (the CLI merges ``--model_args`` and ``--metadata``),
so ``lm_eval --model linscale --model_args checkpoint=DIR`` is enough to pick the right world.

Item kinds and their fields:
    knowledge  question, choices (list), label (int), band ("head" | "torso" | "tail"), rank, probability
    cloze      context, target (the word that completes the context; LAMBADA analogue)
    documents  text (held-out documents, for perplexity)
    niah       mode ("easy" | "standard"), length, depth, length_index, depth_index, context,
               question, answer
    mqar       context, question, answer, n_pairs, gap, distance (one query of a multi-query recall item)

Prompts start with the end-of-document token (DOC_START), as every document does in training
(``tasks/utils.py``). How many items each kind has and how hard they are is data: the knobs of
``difficulty.yaml`` (KNOBS says which knob shapes which kind).
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import yaml

from linscale.atomic import atomic_write
from linscale.config import ConfigError

BANDS = ("head", "torso", "tail")  # frequency bands of the knowledge suite, most frequent first
NIAH_MODES = ("easy", "standard")
NIAH_RESERVE = 1  # tokens of each grid length taken by the answer: a length is context + question + answer
DOC_START = "<eod>"  # every training document follows an end-of-document token; so does every prompt

# The item parameters, the difficulty knobs of the suites: one table of defaults (difficulty.yaml, with
# the reasons for each value), each overridable through model_args / --metadata / --option.
DIFFICULTY_FILE = Path(__file__).with_name("difficulty.yaml")
DEFAULTS = yaml.safe_load(DIFFICULTY_FILE.read_text())
# The knobs that determine each kind of item (with the data dict and eval_seed: its cache key).
KNOBS = {"knowledge": ("n_per_band", "n_choices", "knowledge_bands"),
         "cloze": ("n_cloze", "max_length"),
         "documents": ("n_documents", "max_length"),
         "niah": ("niah_lengths", "niah_min_length", "niah_depths", "niah_repeats", "niah_paired", "max_length"),
         "mqar": ("n_mqar", "mqar_pairs", "mqar_queries", "mqar_gap", "max_length")}
NON_NEGATIVE = ("eval_seed", "mqar_gap")  # integers that may be 0; every other integer knob is >= 1
FLAGS = ("niah_paired",)  # 0 or 1
# Everything the task functions accept; the model adapter ignores these keys (see LinscaleLM).
TASK_OPTIONS = ("checkpoint", "task_cache", "max_length", *DEFAULTS)


class TaskDataError(ConfigError):
    """The task data cannot be built for this checkpoint (no synthetic world, no generator, ...)."""


# the shortest context the items are made for (a haystack, a question and its answer must fit)
MIN_CONTEXT = 16


def default_cache() -> Path:
    return Path(os.environ.get("LINSCALE_EVAL_CACHE", Path.home() / ".cache" / "linscale" / "eval"))


def training_seq_len(meta: dict) -> int | None:
    """The context length a checkpoint was trained with, if its meta records it."""
    for source in (meta, meta.get("train") or {}):
        if isinstance(source, dict) and isinstance(source.get("seq_len"), int):
            return source["seq_len"]
    return None


def checkpoint_meta(checkpoint: str | os.PathLike) -> dict:
    """The meta dict of an exported checkpoint (without loading its weights)."""
    from linscale.models.checkpoint import CheckpointError

    file = Path(checkpoint) / "config.json"
    if not file.is_file():
        raise CheckpointError(f"{file}: checkpoint file is missing")
    try:
        return json.loads(file.read_text()).get("meta", {})
    except (json.JSONDecodeError, AttributeError) as err:
        raise CheckpointError(f"{file}: not a linscale checkpoint config ({err})") from None


def item_params(kind: str, options: dict) -> dict:
    """The parameters that determine the items of ``kind`` (the cache key), from the task options."""
    checkpoint = options.get("checkpoint")
    if not checkpoint:
        raise TaskDataError("checkpoint: the linscale task suites need checkpoint=<export folder> in "
                            "--model_args (or --metadata) to know which synthetic world the model learned")
    meta = checkpoint_meta(checkpoint)
    data = meta.get("data")
    if not isinstance(data, dict) or data.get("source") != "synthetic":
        raise TaskDataError(f"{checkpoint}: meta.data.source is {None if not isinstance(data, dict) else data.get('source')!r}; "
                            "the linscale suites need a checkpoint trained on the synthetic language "
                            "(for real text evaluate other tasks: your own, --tasks TASK --include_path DIR, or "
                            "lm-eval's, e.g. --tasks piqa,hellaswag; `linscale eval` runs them with --suites \"\", "
                            "lm-eval's with --real-tasks)")
    params = knob_values(options)
    params["data"] = data
    given = options.get("max_length")
    max_length = int(given if given not in (None, "") else training_seq_len(meta) or 0)
    if max_length < MIN_CONTEXT:
        raise TaskDataError(f"max_length: the linscale tasks' items are made for the model's context, of at least "
                            f"{MIN_CONTEXT} tokens (got {max_length}); pass a larger max_length=... (linscale eval: "
                            "--context-factor), or export checkpoints with meta.seq_len")
    params["max_length"] = max_length
    keyed = {k: params[k] for k in ("data", "eval_seed", *KNOBS[kind])}
    if kind == "documents" and data.get("doc_len") is not None:
        # training cut documents at min(doc_len, seq_len): its seq_len is part of these items (not of those of
        # a data without doc_len, whose documents are max_length long, so their cache keys stay as they were)
        keyed["train_seq_len"] = training_seq_len(meta)
    return keyed


def knob_values(options: dict) -> dict:
    """Every difficulty knob: its value in ``options`` (strings from a command line are parsed) or its
    default from difficulty.yaml, checked; a bad value is a one-line TaskDataError naming the knob."""
    values = {}
    for key, default in DEFAULTS.items():
        value = options.get(key, default)
        if key == "knowledge_bands":
            values[key] = parse_bands(value)
        elif isinstance(default, float):
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise TaskDataError(f"{key}: expected a number, got {value!r}") from None
            if not 0 < value <= 1:
                raise TaskDataError(f"{key}: expected a fraction in (0, 1], got {value}")
            values[key] = value
        else:
            try:
                value = int(value)
            except (TypeError, ValueError):
                raise TaskDataError(f"{key}: expected an integer, got {value!r}") from None
            if key in FLAGS and value not in (0, 1):
                raise TaskDataError(f"{key}: expected 0 or 1, got {value}")
            if value < (0 if key in NON_NEGATIVE + FLAGS else 1):
                raise TaskDataError(f"{key}: expected a {'non-negative' if key in NON_NEGATIVE else 'positive'} "
                                    f"integer, got {value}")
            values[key] = value
    return values


def parse_bands(value) -> dict[str, list[float]]:
    """``knowledge_bands``: four edges of cumulative Zipf mass, "0.5:0.7:0.8:0.9" (or a list), ->
    {"head": [e0, e1], "torso": [e1, e2], "tail": [e2, e3]}."""
    parts = value.split(":") if isinstance(value, str) else value
    try:
        edges = [float(e) for e in parts]
    except (TypeError, ValueError):
        edges = []
    if len(edges) != len(BANDS) + 1 or not all(0 <= a < b <= 1 for a, b in zip(edges, edges[1:])):
        raise TaskDataError(f"knowledge_bands: expected {len(BANDS) + 1} increasing cumulative-mass edges in "
                            f"[0, 1] such as '0.5:0.7:0.8:0.9', got {value!r}")
    return {band: [edges[i], edges[i + 1]] for i, band in enumerate(BANDS)}


def cache_file(kind: str, params: dict, task_cache=None) -> Path:
    from linscale.data.synthetic import LANGUAGE_VERSION

    key = hashlib.sha256(json.dumps({"kind": kind, "language_version": LANGUAGE_VERSION, **params}, sort_keys=True,
                                    default=str).encode()).hexdigest()
    return Path(task_cache or default_cache()) / f"{kind}-{key[:16]}.jsonl"


def write_items(file: Path, items: list[dict]) -> Path:
    """Write items as JSON lines, atomically (a temporary file renamed into place)."""
    def write(tmp: str) -> None:
        with open(tmp, "w") as fh:
            for item in items:
                fh.write(json.dumps(item, sort_keys=True) + "\n")

    return atomic_write(file, write)


def read_items(file: Path) -> list[dict]:
    with open(file) as fh:
        return [json.loads(line) for line in fh if line.strip()]


def niah_grid(max_length: int, n_lengths: int, n_depths: int, min_length: float = 0.125) -> tuple[list[int], list[float]]:
    """Context lengths linspace(min_length x max_length, max_length) and depths linspace(0, 100) percent
    (the paper: 35 lengths linspace(1000, 16000) x 35 depths 0..100 for 8K-context models)."""
    lo = max(8, round(min_length * max_length))
    if n_lengths == 1 or lo >= max_length:
        lengths = [max_length]
    else:
        lengths = [round(lo + (max_length - lo) * k / (n_lengths - 1)) for k in range(n_lengths)]
    depths = [100.0 * k / (n_depths - 1) if n_depths > 1 else 50.0 for k in range(n_depths)]
    return lengths, depths


def generate(kind: str, params: dict) -> list[dict]:
    """Items of ``kind`` from the synthetic language's generators (``linscale.data.synthetic``), normalised
    to the fields listed in the module docstring."""
    try:
        from linscale.data import synthetic
    except ImportError as err:
        raise TaskDataError(f"linscale.data.synthetic is not available ({err}); cannot generate {kind} items") from None
    lang = synthetic.SyntheticLanguage(synthetic.LanguageSpec.from_dict(params["data"]))
    return _GENERATORS[kind](synthetic, lang, params)


def _gen_knowledge(synthetic, lang, p):
    return synthetic.knowledge_mc(lang, n_per_band=p["n_per_band"], n_choices=p["n_choices"], seed=p["eval_seed"],
                                  bands=p["knowledge_bands"])


def _gen_cloze(synthetic, lang, p):
    return synthetic.cloze(lang, n_items=p["n_cloze"], context_len=p["max_length"], seed=p["eval_seed"])


def _gen_documents(synthetic, lang, p):
    """Held-out documents as the model saw them in training (one document per context, or doc_len
    tokens, at most the training seq_len, where training cut them), from the evaluation stream of the
    generator, which training never draws from."""
    import numpy as np

    rng = np.random.default_rng([p["eval_seed"], synthetic.SPLITS["eval"], 0xD0C])
    doc_len = lang.spec.doc_len
    length = p["max_length"] if doc_len is None else min(doc_len, p.get("train_seq_len") or doc_len)
    tokens, _ = lang.sample(rng, p["n_documents"], length)
    return [{"text": lang.decode(doc)} for doc in tokens]


def _gen_niah(synthetic, lang, p):
    lengths, depths = niah_grid(p["max_length"], p["niah_lengths"], p["niah_depths"], p["niah_min_length"])
    # a grid length counts the document's tokens: context + question + the answer (NIAH_RESERVE); the
    # model reads DOC_START + context + question, at most `length` tokens and so at most max_length: the
    # haystack is cut back to whole sentences, a few tokens short of the length (niah_cell_shapes)
    asked = [length - NIAH_RESERVE for length in lengths]
    items = []
    for mode in NIAH_MODES:
        for item in synthetic.needle_in_haystack(lang, context_lengths=asked, depths=[d / 100 for d in depths],
                                                 mode=mode, n_per_cell=p["niah_repeats"], seed=p["eval_seed"],
                                                 paired=bool(p["niah_paired"])):
            i = asked.index(item["context_length"])
            j = min(range(len(depths)), key=lambda k: abs(depths[k] / 100 - item["depth"]))
            items.append({"mode": mode, "length": lengths[i], "depth": depths[j], "length_index": i,
                          "depth_index": j, "context": item["context"], "question": item["question"],
                          "answer": item["answer"]})
    return items


def niah_cell_shapes(lang, max_length: int, options: dict | None = None):
    """What the NIAH items of each grid length are (a DataFrame, one row per length): the tokens of a
    prompt and its answer (``tokens_mean``, ``tokens_min``; the length is their most, since a haystack is
    cut back to whole sentences) and the haystack's sentences (``sentences_mean``), which leave the needle
    ``sentences + 1`` places (``places_mean``, at most ``niah_depths``): in the shortest cells several
    depths put the needle in one place."""
    import pandas as pd

    from linscale.data import synthetic

    p = {**DEFAULTS, **(options or {}), "max_length": int(max_length)}
    lengths, depths = niah_grid(p["max_length"], p["niah_lengths"], p["niah_depths"], p["niah_min_length"])
    items = synthetic.needle_in_haystack(lang, context_lengths=[length - NIAH_RESERVE for length in lengths],
                                         depths=[d / 100 for d in depths], mode="standard",
                                         n_per_cell=p["niah_repeats"], seed=p["eval_seed"])
    rows = pd.DataFrame({"length": [item["context_length"] + NIAH_RESERVE for item in items],
                         "tokens": [item["n_tokens"] + NIAH_RESERVE for item in items],
                         "sentences": [item["context"].split().count(".") - 1 for item in items]})  # less the needle
    rows["places"] = (rows["sentences"] + 1).clip(upper=len(depths))
    return rows.groupby("length").agg(tokens_mean=("tokens", "mean"), tokens_min=("tokens", "min"),
                                      sentences_mean=("sentences", "mean"),
                                      places_mean=("places", "mean")).reset_index()


def mqar_shape(p: dict, n_vars: int) -> tuple[int, int]:
    """(pairs, queries) of the recall items: as many of ``mqar_pairs`` as fit the context (4 tokens a
    binding "let VAR VAL .", then the gap, "what VAR" and the answer: within max_length)."""
    fit = (p["max_length"] - p["mqar_gap"] - 3) // 4
    if fit < 1:
        raise TaskDataError(f"mqar_gap: {p['mqar_gap']} tokens leave no room for a binding within "
                            f"max_length={p['max_length']}")
    n_pairs = min(p["mqar_pairs"], n_vars, fit)
    return n_pairs, min(p["mqar_queries"], n_pairs)


def _gen_mqar(synthetic, lang, p):
    """One document per query: the bindings (and the gap), then the question."""
    n_pairs, n_queries = mqar_shape(p, lang.spec.n_vars)
    items = []
    for item in synthetic.associative_recall(lang, n_items=p["n_mqar"], n_pairs=n_pairs, n_queries=n_queries,
                                             seed=p["eval_seed"], gap=p["mqar_gap"]):
        for q in item["queries"]:
            items.append({"context": item["context"], "question": q["question"], "answer": q["answer"],
                          "n_pairs": item["n_pairs"], "gap": item["gap"], "distance": q["distance"]})
    return items


_GENERATORS = {"knowledge": _gen_knowledge, "cloze": _gen_cloze, "documents": _gen_documents,
               "niah": _gen_niah, "mqar": _gen_mqar}
KINDS = tuple(_GENERATORS)  # the item kinds: one generator each


def load_items(kind: str, **options) -> list[dict]:
    """The items of ``kind`` for the checkpoint named in ``options``: from the cache, or generated
    (and cached) from the checkpoint's synthetic world."""
    if kind not in KINDS:
        raise TaskDataError(f"kind: unknown item kind {kind!r}; expected one of {', '.join(KINDS)}")
    params = item_params(kind, options)
    file = cache_file(kind, params, options.get("task_cache"))
    if file.is_file():
        return read_items(file)
    items = generate(kind, params)
    if not items:
        raise TaskDataError(f"{kind}: the generator returned no items for {options.get('checkpoint')}")
    write_items(file, items)
    return items


def as_dataset(items: list[dict]):
    """{"test": datasets.Dataset} as lm-eval's custom_dataset expects."""
    import datasets

    return {"test": datasets.Dataset.from_list(items)}
