"""Training and sweeps (Lightning): one run, a grid of runs, and the results table they feed.

    from linscale.train import run_sweep, read_results
    run_sweep("smoke", out="runs/smoke", jobs=2)        # = `linscale sweep --preset smoke`
    table = read_results("runs/smoke/results.parquet")  # validated against the schema

Layout: ``settings`` (the preset's train block, overrides, checkpoint schedule), ``module`` (the
LightningModule: the science), ``callbacks`` (records, exports, resume checkpoints), ``run`` (one run's
folder and Trainer), ``sweep`` (the grid: processes, SLURM, lock, progress), ``results`` (the table).
"""
from linscale.train.callbacks import SafeCheckpointIO, ScalingRecorder, load_lightning_checkpoint
from linscale.train.module import LanguageModelTask, lr_factor
from linscale.train.results import (COLUMNS, SCHEMA, ResultsError, read_results, records_equal, validate_results,
                                    write_results)
from linscale.train.run import make_datamodule, plan_runs, prepare_run, read_records, read_status, train_run
from linscale.train.settings import TrainSettings, apply_overrides, checkpoint_steps, resolve_preset

__all__ = [
    "LanguageModelTask", "lr_factor", "ScalingRecorder", "SafeCheckpointIO", "load_lightning_checkpoint",
    "TrainSettings", "apply_overrides", "checkpoint_steps", "resolve_preset",
    "plan_runs", "prepare_run", "train_run", "make_datamodule", "read_records", "read_status",
    "SCHEMA", "COLUMNS", "ResultsError", "read_results", "validate_results", "write_results", "records_equal",
]
