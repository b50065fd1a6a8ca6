"""Dataset loaders and scorers for the linscale task YAMLs (loaded by lm-eval from this folder).

The loaders receive lm-eval's task metadata, i.e. ``--model_args`` merged with ``--metadata``,
so they know the checkpoint and hence the synthetic world; see ``linscale.eval.items``.
"""
from linscale.eval import metrics
from linscale.eval.items import as_dataset, load_items


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
# template anew for every document, which took half of a small model's evaluation time.


def context_and_question(doc) -> str:
    return f"{doc['context']} {doc['question']}"


def spaced_answer(doc) -> str:  # loglikelihood requests get no target_delimiter
    return " " + doc["answer"]


def spaced_target(doc) -> str:
    return " " + doc["target"]


def no_text(doc) -> str:  # rolling log-likelihood scores the whole document: no prompt
    return ""


def answer_matches(generated: str, answer: str) -> bool:
    """Exact match of the first words of the greedy continuation against the answer's words."""
    want = answer.split()
    return generated.split()[: len(want)] == want


def niah_process_results(doc, results):
    correct = float(answer_matches(results[0], doc["answer"]))
    cell = (doc["length_index"], doc["depth_index"], correct)
    return {"acc": correct, "weighted_acc": cell, "niah_score": cell}


def weighted_accuracy(cells):
    return metrics.weighted_accuracy(cells)


def niah_score(cells):
    return metrics.niah_score(cells)
