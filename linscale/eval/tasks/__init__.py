"""lm-eval task YAMLs for the linscale suites; pass this folder as ``--include_path``.

    linscale_knowledge   group: linscale_knowledge_head/torso/tail (multiple choice, acc / acc_norm, macro average)
    linscale_linguistic  group: linscale_perplexity (word/byte perplexity, bits per byte),
                                linscale_cloze (LAMBADA analogue: perplexity, acc)
    linscale_retrieval   group: linscale_niah_easy, linscale_niah_standard (acc, weighted_acc,
                                niah_score), linscale_mqar (acc)

and the one table of what the study reads from them: :data:`ANSWERS` (each task's form of answer, which
sets its chance level) and :data:`SCORES` (each score's column, header and name in the book, and the
analyses it enters). The rest of the package derives its lists from these two, in their order, which is
the order of the book's columns and rows. A new task: its YAML here and its name in its suite's group
YAML (``linscale_<suite>.yaml``), its items (``utils.py``; a new kind of item also its generator in
``linscale/eval/items.py`` and, where it is a sentence of the language, ``linscale/data/synthetic.py``;
knobs in ``difficulty.yaml``), and its lines in the two tables below. A task of one's own outside this
folder (``--include_path DIR``) that reuses these items needs a ``utils.py`` beside its YAML (lm-eval reads
``!function utils.x`` from the YAML's own folder): ``from linscale.eval.tasks.utils import *``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

TASKS_DIR = Path(__file__).resolve().parent
SUITES = {
    "knowledge": ["linscale_knowledge"],
    "linguistic": ["linscale_linguistic"],
    "retrieval": ["linscale_retrieval"],
}

# task -> the form of its answer, which decides its chance level (linscale.eval.chance): "multiple choice"
# (1 / n_choices), "value" (one of the language's values: 1 / n_values), None (a perplexity: no chance).
ANSWERS = {
    "linscale_knowledge": "multiple choice",
    "linscale_knowledge_head": "multiple choice",
    "linscale_knowledge_torso": "multiple choice",
    "linscale_knowledge_tail": "multiple choice",
    "linscale_perplexity": None,
    "linscale_cloze": "value",
    "linscale_niah_easy": "value",
    "linscale_niah_standard": "value",
    "linscale_mqar": "value",
}


@dataclass(frozen=True)
class Score:
    """One score of a task as the study reads it.

    ``column``: its column in the wide downstream table (linscale.findings.downstream_table); ``header``:
    that column's header in the book's tables; ``label``: its name in the prose and the ablations' tables
    ("" for none: it is not judged on its own); ``headline``: the task's accuracy that ``linscale eval
    --calibrate`` judges (ceiling, chance, rise with size); ``retrieval``: in the retrieval figure and the
    probes; ``summary``: in the downstream chapter's summary table."""

    task: str
    metric: str
    column: str
    header: str
    label: str = ""
    headline: bool = False
    retrieval: bool = False
    summary: bool = False


SCORES = (
    Score("linscale_knowledge", "acc", "knowledge_acc", "knowledge acc.", "knowledge", headline=True, summary=True),
    Score("linscale_knowledge", "acc_norm", "knowledge_acc_norm", "knowledge acc. (norm.)"),
    Score("linscale_knowledge_head", "acc", "knowledge_head_acc", "knowledge head acc.", headline=True),
    Score("linscale_knowledge_torso", "acc", "knowledge_torso_acc", "knowledge torso acc.", headline=True),
    Score("linscale_knowledge_tail", "acc", "knowledge_tail_acc", "knowledge tail acc.", headline=True),
    Score("linscale_perplexity", "word_perplexity", "word_perplexity", "word perplexity"),
    Score("linscale_perplexity", "bits_per_byte", "bits_per_byte", "bits per byte", summary=True),
    Score("linscale_cloze", "acc", "cloze_acc", "cloze acc.", "cloze", headline=True, summary=True),
    Score("linscale_cloze", "perplexity", "cloze_perplexity", "cloze perplexity"),
    Score("linscale_niah_easy", "weighted_acc", "niah_easy_wa", "NIAH easy (w. acc.)", "NIAH easy", headline=True,
          retrieval=True, summary=True),
    Score("linscale_niah_easy", "niah_score", "niah_easy_score", "NIAH easy score"),
    Score("linscale_niah_standard", "weighted_acc", "niah_standard_wa", "NIAH std. (w. acc.)", "NIAH standard",
          headline=True, retrieval=True),
    Score("linscale_mqar", "acc", "mqar_acc", "MQAR acc.", "associative recall", headline=True, retrieval=True,
          summary=True),
)
