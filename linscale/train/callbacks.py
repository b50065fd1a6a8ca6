"""Everything around the optimisation: the intermediate-checkpoint records, evaluation exports, resume
checkpoints, divergence and progress. The science stays in ``LanguageModelTask``.

``ScalingRecorder`` acts after each optimiser step s:
- at the log-spaced record steps (``TrainSettings.checkpoint_steps``) it evaluates the held-out loss,
  appends one results-table row (``linscale.train.results``) to ``records.json``, exports the model
  for evaluation at the chosen steps (``<run>/export/step=<s>/``, safetensors via
  ``linscale.models.checkpoint``) and saves a Lightning checkpoint to resume from;
- every ``save_every_minutes`` it also saves that checkpoint;
- when the loss is NaN or inf it writes a ``diverged`` row and training stops.
Its records, loss window and wall time are part of the Lightning checkpoint (``state_dict``), so a
resumed run continues the same table instead of duplicating or losing rows.

``SafeCheckpointIO`` writes Lightning checkpoints atomically and reads them with
``torch.load(weights_only=True)``: a checkpoint cannot run code, and a truncated one is an error
naming the file, never a silent restart.
"""
from __future__ import annotations

import math
import os
import shutil
import time
import zipfile
from pathlib import Path

import lightning as L
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from linscale.atomic import atomic_write, write_json
from linscale.models.checkpoint import CheckpointError, save_checkpoint
from linscale.flops import PF_DAY
from linscale.models import build_model


class ScalingRecorder(L.Callback):
    def __init__(self, run_dir: str | os.PathLike, spec: dict, tokenizer=None):
        self.run_dir = Path(run_dir)
        self.spec = spec
        self.tokenizer = tokenizer
        settings = spec["train"]
        from linscale.train.settings import TrainSettings

        self.settings = TrainSettings.from_dict(settings)
        self.record_steps = set(self.settings.checkpoint_steps())
        self.export_steps = set(self.settings.export_steps())
        self.keep_steps = set(self.settings.keep_checkpoints)
        # state saved in every Lightning checkpoint
        self.records: list[dict] = []
        self.losses: list[float] = []
        self.bayes_losses: list[float] = []  # Bayes loss of the same training tokens (synthetic language)
        self.wall_time = 0.0
        self.resumed_from: list[int] = []
        self._seen_step = -1
        self._val_loader = None

    # ------------------------------------------------------------------ checkpointed state

    def state_dict(self) -> dict:
        return {"records": self.records, "losses": self.losses, "bayes_losses": self.bayes_losses,
                "resumed_from": self.resumed_from, "wall_time": self.wall_time + self._elapsed()}

    def load_state_dict(self, state: dict) -> None:
        self.records = list(state["records"])
        self.losses = list(state["losses"])
        self.bayes_losses = list(state.get("bayes_losses", []))
        self.resumed_from = list(state["resumed_from"])
        self.wall_time = float(state["wall_time"])

    def _elapsed(self) -> float:
        return time.monotonic() - self._t0 if hasattr(self, "_t0") else 0.0

    # ------------------------------------------------------------------ hooks

    def on_train_start(self, trainer: L.Trainer, pl_module) -> None:
        self._t0 = time.monotonic()
        self._last_save = self._last_progress = self._t0
        self._seen_step = trainer.global_step
        if trainer.global_step > 0:
            self.resumed_from.append(int(trainer.global_step))
        datamodule = trainer.datamodule
        self._val_loader = datamodule.val_dataloader() if datamodule is not None else trainer.val_dataloaders

    def teardown(self, trainer: L.Trainer, pl_module, stage: str) -> None:
        self._release_val_loader()

    def on_exception(self, trainer: L.Trainer, pl_module, exception: BaseException) -> None:
        self._release_val_loader()

    def _release_val_loader(self) -> None:
        """Ends the validation loader's worker processes (persistent across evaluations) when the fit ends,
        however it ends. Left to garbage collection, the trainer's reference cycles reach the loader's
        queues first: their finalizers close them, the loader's own shutdown then cannot tell its workers
        to stop, and the process hangs at exit waiting for them (they leave SIGTERM to the training
        process). Lightning ends its own loaders' workers the same way (combined_loader's
        _shutdown_workers_and_reset_iterator)."""
        loader, self._val_loader = self._val_loader, None
        iterator = getattr(loader, "_iterator", None)
        if iterator is not None and hasattr(iterator, "_shutdown_workers"):
            iterator._shutdown_workers()
            loader._iterator = None

    def on_train_batch_end(self, trainer: L.Trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if pl_module.diverged and not (self.records and self.records[-1]["diverged"]):
            self._record_divergence(trainer, pl_module)
            return
        step = trainer.global_step
        if step == self._seen_step:  # gradient accumulation: no optimiser step yet
            return
        self._seen_step = step
        self.losses = (self.losses + [pl_module.pop_step_loss()])[-self.settings.loss_window:]
        self.bayes_losses = (self.bayes_losses + [pl_module.pop_step_bayes()])[-self.settings.loss_window:]
        now = time.monotonic()
        if step in self.record_steps:
            self._record(trainer, pl_module, step)
            if pl_module.diverged:
                return
            if step in self.export_steps:
                self._export(trainer, pl_module, step)
            self._save(trainer)
            if step in self.keep_steps and trainer.is_global_zero:
                self._keep(step)
        elif now - self._last_save > 60 * self.settings.save_every_minutes:
            self._save(trainer)
        if trainer.is_global_zero and (now - self._last_progress > 2.0 or step in self.record_steps):
            self._last_progress = now
            last = self.records[-1] if self.records else {}
            write_json(self.run_dir / "progress.json", {
                "step": step, "total_steps": self.settings.total_steps, "tokens": step * pl_module.tokens_per_step,
                "train_loss": self.losses[-1], "val_loss": last.get("val_loss"), "time": time.time()})

    # ------------------------------------------------------------------ actions

    def _row(self, trainer, pl_module, step: int) -> dict:
        config, spec = pl_module.config, self.spec
        tokens = step * pl_module.tokens_per_step
        flops = pl_module.flops_per_token * tokens
        return {
            "run_id": spec["run_id"], "arch": config.arch, "size": spec["size"], "n_layer": config.n_layer,
            "d_model": config.d_model, "n_head": config.n_head, "d_ffn": config.d_ffn,
            "params": pl_module.params, "params_total": pl_module.params_total,
            "seq_len": self.settings.seq_len, "batch_size": self.settings.batch_size, "step": step,
            "tokens": tokens, "flops": flops, "pf_days": flops / PF_DAY,
            "lr": float(trainer.optimizers[0].param_groups[0]["lr"]), "seed": self.settings.seed,
            "preset": spec.get("preset", ""), "wall_time_s": self.wall_time + self._elapsed(),
        }

    def _record(self, trainer, pl_module, step: int) -> None:
        metrics = pl_module.evaluate(self._val_loader, self.settings.val_batches)
        row = self._row(trainer, pl_module, step)
        row.update(train_loss=sum(self.losses) / len(self.losses), diverged=False,
                   train_bayes_loss=sum(self.bayes_losses) / len(self.bayes_losses) if self.bayes_losses else math.nan,
                   **metrics)
        if not (finite(row["train_loss"]) and finite(row["val_loss"])):  # the weights themselves went bad
            row["diverged"] = pl_module.diverged = trainer.should_stop = True
        self.records.append(row)
        if trainer.is_global_zero:
            write_json(self.run_dir / "records.json", self.records)
            if trainer.logger is not None:
                trainer.logger.log_metrics({k: row[k] for k in ("train_loss", "val_loss", "bayes_loss", "tokens",
                                                                "flops")}, step=step)

    def _record_divergence(self, trainer, pl_module) -> None:
        step = pl_module.diverged_step  # the step whose loss was not finite (no update was applied)
        row = self._row(trainer, pl_module, step)
        row.update(train_loss=pl_module.pop_step_loss(), val_loss=float("nan"), bayes_loss=float("nan"),
                   train_bayes_loss=pl_module.pop_step_bayes(), diverged=True)
        self.records.append(row)
        if trainer.is_global_zero:
            write_json(self.run_dir / "records.json", self.records)

    def _export(self, trainer, pl_module, step: int) -> None:
        state = trainer.strategy.lightning_module_state_dict()  # collective under FSDP: every rank calls it
        if not trainer.is_global_zero:
            return
        weights = {k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")}
        with torch.device("meta"):
            model = build_model(pl_module.config)
        model.load_state_dict(weights, assign=True)
        row = self.records[-1]
        meta = {k: row[k] for k in ("run_id", "arch", "size", "step", "tokens", "flops", "params", "val_loss",
                                    "train_loss", "seed", "preset")}
        meta.update(data=self.spec.get("data"), seq_len=self.settings.seq_len)
        save_checkpoint(model, self.run_dir / "export" / f"step={step}", meta, tokenizer=self.tokenizer)

    def _keep(self, step: int) -> None:
        """A copy of the resume checkpoint just saved at record step ``step`` (``train.keep_checkpoints``)."""
        source = self.run_dir / "checkpoints" / "last.ckpt"
        atomic_write(self.run_dir / "checkpoints" / f"step={step}.ckpt", lambda tmp: shutil.copyfile(source, tmp))

    def _save(self, trainer) -> None:
        trainer.save_checkpoint(self.run_dir / "checkpoints" / "last.ckpt", weights_only=False)  # all ranks call; rank 0 writes
        self._last_save = time.monotonic()


class SafeCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoints written atomically and loaded with ``torch.load(weights_only=True)``."""

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        def write(tmp: str) -> None:
            torch.save(checkpoint, tmp)
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())

        atomic_write(path, write)

    def load_checkpoint(self, path, map_location=None, weights_only=None) -> dict:
        return load_lightning_checkpoint(path, map_location=map_location or "cpu",
                                         weights_only=True if weights_only is None else weights_only)


def load_lightning_checkpoint(path, map_location="cpu", weights_only: bool = True, mmap: bool = False) -> dict:
    """``torch.load`` a Lightning ``.ckpt`` safely; corrupt or truncated files raise CheckpointError.
    ``mmap``: the tensors mapped from the file, read only where touched, for a look at the checkpoint (its
    step, its records, whether it loads): every rank of a multi-device run looks, and a paper-scale
    checkpoint with its optimiser state (about 84 GB at 7B) read whole by each of a node's 8 ranks
    would not fit in its memory."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: Lightning checkpoint does not exist")
    try:
        # torch maps its zip format only; anything else (a damaged file too) is read, and fails, as before
        mmap = mmap and zipfile.is_zipfile(path)
        checkpoint = torch.load(path, map_location=map_location, weights_only=weights_only, mmap=mmap)
    except Exception as err:  # a damaged file reaches torch's unpickler as anything (IndexError for 2 bytes)
        raise CheckpointError(f"{path}: corrupt or truncated Lightning checkpoint ({_load_failure(err)}); "
                              f"delete it to restart this run from scratch") from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise CheckpointError(f"{path}: not a Lightning checkpoint (no state_dict)")
    return checkpoint


def _load_failure(err: Exception) -> str:
    """What torch.load found wrong, in a few words. The weights-only unpickler's message opens with advice
    to load with weights_only=False (arbitrary code execution, and wrong for a damaged file of our own);
    its reason is the part after 'WeightsUnpickler error:'."""
    text = str(err).strip()
    reason = text.split("WeightsUnpickler error:", 1)[1] if "WeightsUnpickler error:" in text else text
    reason = reason.strip().splitlines()[0].split(". ")[0].strip() if reason.strip() else ""  # its first sentence
    return f"{type(err).__name__}: {reason}" if reason else type(err).__name__


def finite(x: float) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)
