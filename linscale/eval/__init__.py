"""Downstream evaluation with lm-evaluation-harness (paper §3.4).

    LinscaleLM           the lm-eval model ``linscale`` (adapter.py): loglikelihood, rolling
                         perplexity and greedy generation for any exported checkpoint
    tasks/               lm-eval YAML suites (knowledge, linguistic, retrieval); TASKS_DIR
    items                task data generated from the checkpoint's synthetic world, cached
    metrics              NIAH weighted accuracy and score
    runner               ``linscale eval``: suites x checkpoints of a sweep -> results store

Importing this package is cheap; the adapter (which imports torch and lm_eval) loads on first use.
"""
from __future__ import annotations

from linscale.eval.tasks import SUITES, TASKS_DIR

__all__ = ["LinscaleLM", "ContextLengthError", "SUITES", "TASKS_DIR", "evaluate_checkpoint", "evaluate_sweep"]


def __getattr__(name):
    if name in ("LinscaleLM", "ContextLengthError"):
        from linscale.eval import adapter

        return getattr(adapter, name)
    if name in ("evaluate_checkpoint", "evaluate_sweep"):
        from linscale.eval import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'linscale.eval' has no attribute {name!r}")
