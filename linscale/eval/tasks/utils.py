"""Dataset loaders and scorers for the linscale task YAMLs (loaded by lm-eval from this folder).

The loaders receive lm-eval's task metadata, i.e. ``--model_args`` merged with ``--metadata``,
so they know the checkpoint and hence the synthetic world; see ``linscale.eval.items``.
"""
from linscale.eval import metrics
from linscale.eval.items import DOC_START, as_dataset, load_items


def knowledge(band: str, **options):
    return as_dataset([item for item in load_items("knowledge", **options) if item["band"] == band])


def cloze(**options):
    return as_dataset(load_items("cloze", **options))


def documents(**options):
    return as_dataset(load_items("documents", **options))


def niah(mode: str, **options):
    return as_dataset([item for item in load_items("niah", **options) if item["mode"] == mode])


def mqar(**options):
    return as_dataset(load_items("mqar", **options))


# Prompts and targets are functions or plain field names, not Jinja templates: lm-eval compiles a
# template anew for every document, which took half of a small model's evaluation time. Every prompt
# starts with DOC_START, as every document does in training.


def question(doc) -> str:  # knowledge: "FIRST LAST REL", the start of a fact sentence
    return f"{DOC_START} {doc['question']}"


def context(doc) -> str:  # cloze: a document up to "what VAR"
    return f"{DOC_START} {doc['context']}"


def context_and_question(doc) -> str:  # NIAH, MQAR
    return f"{DOC_START} {doc['context']} {doc['question']}"


def spaced_answer(doc) -> str:  # loglikelihood requests get no target_delimiter
    return " " + doc["answer"]


def spaced_target(doc) -> str:
    return " " + doc["target"]


def no_text(doc) -> str:  # rolling log-likelihood scores the whole document: no prompt
    return ""


def niah_process_results(doc, results):
    """results: [(log-likelihood of the answer, whether greedy decoding produces it)]. A one-word answer
    is the greedy continuation exactly when greedy generation's first word matches it, so this is the
    generation task's exact match, for one forward pass (batched across lengths) instead of a decode."""
    correct = float(results[0][1])
    cell = (doc["length_index"], doc["depth_index"], correct)
    return {"acc": correct, "weighted_acc": cell, "niah_score": cell}


def weighted_accuracy(cells):
    return metrics.weighted_accuracy(cells)


def niah_score(cells):
    return metrics.niah_score(cells)
