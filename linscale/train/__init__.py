"""Training and sweeps (Lightning): one run, a grid of runs, and the results table they feed.

    from linscale.train import run_sweep, read_results
    run_sweep("smoke", out="runs/smoke", jobs=2)        # = `linscale sweep --preset smoke`
    table = read_results("runs/smoke/results.parquet")  # validated against the schema

Layout: ``settings`` (the preset's train block, overrides, checkpoint schedule), ``module`` (the
LightningModule: the science), ``callbacks`` (records, exports, resume checkpoints), ``run`` (one run's
folder and Trainer), ``sweep`` (the grid: processes, SLURM, lock, progress), ``results`` (the table).
"""
from __future__ import annotations

from linscale.lazy import lazy_exports

# Imported on first use (linscale.lazy), so that reading a preset's settings or a results table (the
# book's chapters, `linscale compare`, `fit`, the study's own process) does not import Lightning and
# torch: about 10 s of a process's start on a 2-core machine.
_EXPORTS = {
    "callbacks": ("SafeCheckpointIO", "ScalingRecorder", "load_lightning_checkpoint"),
    "module": ("LanguageModelTask", "lr_factor"),
    "results": ("COLUMNS", "SCHEMA", "ResultsError", "read_results", "records_equal", "validate_results",
                "write_results"),
    "run": ("branch_run", "make_datamodule", "plan_runs", "prepare_run", "read_records", "read_status", "train_run"),
    "settings": ("TrainSettings", "apply_overrides", "checkpoint_steps", "resolve_preset"),
    "sweep": ("run_sweep",),
}

__all__ = [
    "LanguageModelTask", "lr_factor", "ScalingRecorder", "SafeCheckpointIO", "load_lightning_checkpoint",
    "TrainSettings", "apply_overrides", "checkpoint_steps", "resolve_preset",
    "plan_runs", "prepare_run", "branch_run", "train_run", "make_datamodule", "read_records", "read_status",
    "SCHEMA", "COLUMNS", "ResultsError", "read_results", "validate_results", "write_results", "records_equal",
    "run_sweep",
]

__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
