"""One training run: its folder, its spec, and the Lightning Trainer that executes it.

A run lives in a folder (``<sweep>/runs/<run_id>/``):

    spec.json            what the run computes: model config, train settings, data dict, seed
    status.json          running | done | diverged | failed (+ step, resumed_from, error)
    records.json         one results-table row per intermediate checkpoint so far
    progress.json        current step, tokens and loss (for the sweep's progress line)
    checkpoints/last.ckpt  Lightning checkpoint to resume from (atomic; loaded with weights_only=True)
    export/step=<s>/     safetensors exports for evaluation (linscale.checkpoint)
    logs/                Lightning CSVLogger output (hparams.yaml, metrics.csv)
    train.log            the run's stdout/stderr when launched by a sweep

``train_run(folder)`` is idempotent: a finished run returns at once, an interrupted one resumes from
``last.ckpt`` (a corrupt one is an error, never a silent restart), a new one starts from step 0.
It runs unchanged under ``torchrun``, SLURM or Lightning's own launcher: Lightning picks up the
cluster environment, and only global rank 0 writes files.
"""
from __future__ import annotations

import importlib
import json
import os
import traceback
from pathlib import Path

import lightning as L
import torch
from lightning.fabric.utilities.types import _Stateful
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.utilities import rank_zero_only

from linscale.checkpoint import CheckpointError
from linscale.config import ConfigError, ModelConfig
from linscale.presets import split_size
from linscale.train.callbacks import SafeCheckpointIO, ScalingRecorder, load_lightning_checkpoint, write_json
from linscale.train.module import LanguageModelTask
from linscale.train.settings import TrainSettings, resolve_preset

VOCAB_PLACEHOLDER = 2  # validates shapes before the data module (which decides the vocabulary) exists


# ---------------------------------------------------------------------------- specs


def plan_runs(preset: str | dict, overrides: list[str] | tuple = ()) -> tuple[dict, list[dict]]:
    """(resolved preset, one spec per (arch, size)); every config is validated here, before any work."""
    preset = resolve_preset(preset, overrides)
    shared = preset.get("model") or {}
    specs = []
    for arch in preset["archs"]:
        for size, shape in preset["sizes"].items():
            shape, size_train = split_size(size, shape)
            train = TrainSettings.from_dict({**(preset.get("train") or {}), **size_train})
            fields = {**shared, **shape, **((preset.get("arch_overrides") or {}).get(arch) or {}).get(size, {})}
            try:
                ModelConfig.from_dict({"vocab_size": VOCAB_PLACEHOLDER, **fields, "arch": arch, "name": str(size)})
            except ConfigError as err:
                raise ConfigError(f"sizes.{size} ({arch}): {err}") from None
            d_model = int(fields["d_model"])  # validated just above
            specs.append({"run_id": f"{arch}-{size}", "preset": preset.get("name", ""), "arch": arch,
                          "size": str(size), "model": {**fields, "arch": arch, "name": str(size)},
                          "train": train.for_width(d_model).to_dict(), "data": preset.get("data") or {}})
    return preset, specs


def spec_identity(spec: dict) -> dict:
    """The parts of a spec that determine the results (not the preset's name, not how it is executed)."""
    return {"model": spec["model"], "data": spec["data"],
            "train": TrainSettings.from_dict(spec["train"]).identity()}


def prepare_run(run_dir: str | os.PathLike, spec: dict) -> Path:
    """Create ``run_dir`` with ``spec.json``; an existing run with a different spec is an error."""
    run_dir = Path(run_dir)
    spec_file = run_dir / "spec.json"
    if spec_file.exists():
        old = json.loads(spec_file.read_text())
        a, b = spec_identity(old), spec_identity(spec)
        if a != b:
            key = _first_difference(a, b)
            raise ConfigError(f"{spec_file}: this run was started with different settings ({key}); "
                              f"use another output folder or delete {run_dir}")
        # execution settings (devices, threads, ...) may change between attempts
    write_json(spec_file, spec)
    return run_dir


def _first_difference(a, b, prefix="") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            if a.get(key) != b.get(key):
                return _first_difference(a.get(key), b.get(key), f"{prefix}{key}.")
    return f"{prefix.rstrip('.')}: {a!r} -> {b!r}"


def read_status(run_dir: str | os.PathLike) -> dict:
    file = Path(run_dir) / "status.json"
    return json.loads(file.read_text()) if file.exists() else {"state": "new"}


def read_records(run_dir: str | os.PathLike) -> list[dict]:
    file = Path(run_dir) / "records.json"
    return json.loads(file.read_text()) if file.exists() else []


# ---------------------------------------------------------------------------- data


def make_datamodule(data: dict, seq_len: int, batch_size: int, seed: int = 0, num_workers: int = 0):
    """``linscale.data.build_datamodule`` (contract 2), or ``data["factory"] = "module:function"`` for a
    data module of one's own with the same signature."""
    data = dict(data)
    factory = data.pop("factory", None)
    if factory:
        module, _, name = str(factory).partition(":")
        try:
            build = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as err:
            raise ConfigError(f"data.factory: cannot import {factory!r} ({err})") from None
    else:
        from linscale.data import build_datamodule as build
    return build(data, seq_len, batch_size, seed=seed, num_workers=num_workers)


class ResumableLoader:
    """A train loader that Lightning can put back where it was: the checkpoint stores how many batches
    of the current pass were consumed, and the next pass skips that many. (The contract's train stream
    is deterministic given the seed, so skipping reproduces the uninterrupted run exactly.)"""

    def __init__(self, loader, datamodule: L.LightningDataModule):
        self.loader = loader
        self.datamodule = datamodule
        self._skip = 0

    def __iter__(self):
        skip, self._skip = self._skip, 0
        iterator = iter(self.loader)
        for _ in range(skip):
            next(iterator)
        return iterator

    def state_dict(self) -> dict:
        return {"batches": int(self.datamodule.trainer.fit_loop.epoch_loop.batch_idx) + 1}

    def load_state_dict(self, state: dict) -> None:
        self._skip = int(state["batches"])


class ResumableData(L.LightningDataModule):
    """Wraps a data module so its train loader resumes mid-stream (unless it already can)."""

    def __init__(self, inner: L.LightningDataModule):
        super().__init__()
        self.inner = inner

    def prepare_data(self) -> None:
        self.inner.prepare_data()

    def setup(self, stage: str) -> None:
        self.inner.trainer = self.trainer
        self.inner.setup(stage)

    def train_dataloader(self):
        loader = self.inner.train_dataloader()
        if isinstance(loader, _Stateful) or hasattr(self.inner, "train_start_batch"):
            return loader  # it resumes by itself (linscale.data starts at the trainer's restored batch count)
        dataset = getattr(loader, "dataset", None)
        if isinstance(loader, torch.utils.data.DataLoader) and not isinstance(
                dataset, torch.utils.data.IterableDataset) and self.trainer.world_size > 1:
            return loader  # map-style: Lightning must inject its DistributedSampler (resume restarts the pass)
        return ResumableLoader(loader, self)

    def val_dataloader(self):
        return self.inner.val_dataloader()

    def state_dict(self) -> dict:
        return self.inner.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.inner.load_state_dict(state)


# ---------------------------------------------------------------------------- the run


def build_trainer(settings: TrainSettings, run_dir: Path, callbacks: list, accumulate: int,
                  progress_bar: bool = False) -> L.Trainer:
    accelerator = settings.accelerator
    on_gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    precision = settings.precision if settings.precision != "auto" else ("bf16-mixed" if on_gpu else "32-true")
    strategy = settings.strategy
    if strategy == "fsdp":
        if not on_gpu:
            raise ConfigError("train.strategy: fsdp needs GPUs (Lightning refuses it on CPU); use ddp on CPU")
        from lightning.pytorch.strategies import FSDPStrategy

        from linscale.models.common import Block

        strategy = FSDPStrategy(auto_wrap_policy={Block}, sharding_strategy="FULL_SHARD", state_dict_type="full",
                                checkpoint_io=SafeCheckpointIO())
    return L.Trainer(
        accelerator=accelerator, devices=settings.devices, num_nodes=settings.num_nodes, strategy=strategy,
        precision=precision, max_steps=settings.total_steps, max_epochs=-1,
        accumulate_grad_batches=accumulate, gradient_clip_val=settings.grad_clip or None,
        deterministic=True, benchmark=False,
        limit_val_batches=0, num_sanity_val_steps=0,  # validation happens at the record steps (ScalingRecorder)
        enable_checkpointing=False,  # resume checkpoints are written by ScalingRecorder at record steps
        plugins=[SafeCheckpointIO()] if isinstance(strategy, str) else None,
        logger=CSVLogger(run_dir, name="logs"), log_every_n_steps=max(1, min(50, settings.total_steps // 20)),
        callbacks=callbacks, enable_progress_bar=progress_bar, enable_model_summary=False,
        default_root_dir=run_dir,
    )


def train_run(run_dir: str | os.PathLike, progress_bar: bool = False, **execution) -> str:
    """Train (or resume, or skip) the run in ``run_dir``; returns its final state: done | diverged.

    ``execution`` overrides execution settings for this attempt (accelerator, devices, num_nodes,
    strategy, threads, num_workers). A failure writes status "failed" with the error and re-raises.
    """
    run_dir = Path(run_dir)
    spec_file = run_dir / "spec.json"
    if not spec_file.is_file():
        raise ConfigError(f"{spec_file}: no run spec here (create runs with `linscale train` or `linscale sweep`)")
    spec = json.loads(spec_file.read_text())
    status = read_status(run_dir)
    if status["state"] in ("done", "diverged"):
        return status["state"]
    train = TrainSettings.from_dict({**spec["train"], **{k: v for k, v in execution.items() if v is not None}})
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    if ckpt.exists():  # check it before anything else: a corrupt checkpoint must stop us, not restart us
        load_lightning_checkpoint(ckpt)
    if train.threads:
        torch.set_num_threads(train.threads)
    _write_status(run_dir, state="running", step=0)
    deterministic = torch.are_deterministic_algorithms_enabled()
    try:
        state = _fit(run_dir, spec, train, ckpt if ckpt.exists() else None, progress_bar)
    except BaseException as err:
        if not isinstance(err, KeyboardInterrupt):
            _write_status(run_dir, state="failed", error=f"{type(err).__name__}: {err}",
                          traceback=traceback.format_exc(limit=8))
        raise
    finally:
        torch.use_deterministic_algorithms(deterministic)  # Lightning's deterministic=True is process-wide
    return state


def _fit(run_dir: Path, spec: dict, train: TrainSettings, ckpt: Path | None, progress_bar: bool) -> str:
    L.seed_everything(train.seed, workers=True, verbose=False)
    world = train.devices * train.num_nodes
    micro, accumulate = train.accumulation(world)
    datamodule = make_datamodule(spec["data"], train.seq_len, micro, seed=train.seed, num_workers=train.num_workers)
    vocab = int(datamodule.vocab_size)
    model_fields = dict(spec["model"])
    if model_fields.get("vocab_size", vocab) < vocab:
        raise ConfigError(f"model.vocab_size: {model_fields['vocab_size']} is smaller than the data's vocabulary {vocab}")
    model_fields.setdefault("vocab_size", vocab)
    task = LanguageModelTask(model=model_fields, train=train.to_dict())
    recorder = ScalingRecorder(run_dir, {**spec, "train": train.to_dict()}, tokenizer=getattr(datamodule, "tokenizer", None))
    trainer = build_trainer(train, run_dir, [recorder], accumulate, progress_bar)
    trainer.fit(task, datamodule=ResumableData(datamodule), ckpt_path=ckpt, weights_only=True)
    state = "diverged" if task.diverged else "done"
    if trainer.global_step < train.total_steps and not task.diverged:
        state = "failed"
        raise RuntimeError(f"{run_dir}: training stopped at step {trainer.global_step} of {train.total_steps}")
    if trainer.is_global_zero:
        _write_status(run_dir, state=state, step=int(trainer.global_step), resumed_from=recorder.resumed_from,
                      wall_time_s=recorder.wall_time + recorder._elapsed(), params=task.params,
                      params_total=task.params_total)
    return state


@rank_zero_only
def _write_status(run_dir: Path, **status) -> None:
    write_json(run_dir / "status.json", status)
