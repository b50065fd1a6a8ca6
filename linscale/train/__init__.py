"""Training and sweeps (Lightning): one run, a grid of runs, and the results table they feed.

    from linscale.train import run_sweep, read_results
    run_sweep("smoke", out="runs/smoke", jobs=2)        # = `linscale sweep --preset smoke`
    table = read_results("runs/smoke/results.parquet")  # validated against the schema

Layout: ``settings`` (the preset's train block, overrides, checkpoint schedule), ``module`` (the
LightningModule: the science), ``callbacks`` (records, exports, resume checkpoints), ``run`` (one run's
folder and Trainer), ``sweep`` (the grid: processes, SLURM, lock, progress), ``results`` (the table).
"""
from __future__ import annotations

import importlib

# Imported on first use (PEP 562), so that reading a preset's settings or a results table (the book's
# chapters, `linscale compare`, `fit`, the study's own process) does not import Lightning and torch:
# about 10 s of a process's start on a 2-core machine.
_EXPORTS = {
    "callbacks": ("SafeCheckpointIO", "ScalingRecorder", "load_lightning_checkpoint"),
    "module": ("LanguageModelTask", "lr_factor"),
    "results": ("COLUMNS", "SCHEMA", "ResultsError", "read_results", "records_equal", "validate_results",
                "write_results"),
    "run": ("make_datamodule", "plan_runs", "prepare_run", "read_records", "read_status", "train_run"),
    "settings": ("TrainSettings", "apply_overrides", "checkpoint_steps", "resolve_preset"),
    "sweep": ("run_sweep",),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = [
    "LanguageModelTask", "lr_factor", "ScalingRecorder", "SafeCheckpointIO", "load_lightning_checkpoint",
    "TrainSettings", "apply_overrides", "checkpoint_steps", "resolve_preset",
    "plan_runs", "prepare_run", "train_run", "make_datamodule", "read_records", "read_status",
    "SCHEMA", "COLUMNS", "ResultsError", "read_results", "validate_results", "write_results", "records_equal",
    "run_sweep",
]


def __getattr__(name: str):
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'linscale.train' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"linscale.train.{_MODULE_OF[name]}"), name)
    globals()[name] = value  # looked up once
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
