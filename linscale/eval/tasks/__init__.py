"""lm-eval task YAMLs for the linscale suites; pass this folder as ``--include_path``.

    linscale_knowledge   group: linscale_knowledge_head/torso/tail (multiple choice, acc / acc_norm, macro average)
    linscale_linguistic  group: linscale_perplexity (word/byte perplexity, bits per byte),
                                linscale_cloze (LAMBADA analogue: perplexity, acc)
    linscale_retrieval   group: linscale_niah_easy, linscale_niah_standard (acc, weighted_acc,
                                niah_score), linscale_mqar (acc)
"""
from pathlib import Path

TASKS_DIR = Path(__file__).resolve().parent
SUITES = {
    "knowledge": ["linscale_knowledge"],
    "linguistic": ["linscale_linguistic"],
    "retrieval": ["linscale_retrieval"],
}
