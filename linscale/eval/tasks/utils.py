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


def niah_prompt(doc) -> str:
    return f"{doc['context']} {doc['question']}"


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
