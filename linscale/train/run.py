"""One training run: its folder, its spec, and the Lightning Trainer that executes it.

A run lives in a folder (``<sweep>/runs/<run_id>/``):

    spec.json            what the run computes: model config, train settings, data dict, seed
    status.json          running | done | diverged | interrupted | failed (+ step, resumed_from, signal, error)
    records.json         one results-table row per intermediate checkpoint so far
    progress.json        current step, tokens and loss (for the sweep's progress line)
    checkpoints/last.ckpt  Lightning checkpoint to resume from (atomic; loaded with weights_only=True)
    export/step=<s>/     safetensors exports for evaluation (linscale.models.checkpoint)
    logs/                Lightning CSVLogger output (hparams.yaml, metrics.csv)
    train.log            the run's stdout/stderr when launched by a sweep
    train.lock           held by the process that trains the run (its global rank 0): one at a time

``train_run(folder)`` is idempotent: a finished run returns at once, an interrupted one resumes from
``last.ckpt`` (a corrupt one is an error, never a silent restart), a new one starts from step 0.
It runs unchanged under ``torchrun``, SLURM or Lightning's own launcher: Lightning picks up the
cluster environment, and only global rank 0 writes files.

Signals: SIGTERM (what SLURM and most schedulers send before preemption or at the time limit) and SIGINT
(Ctrl-C) stop a run at the next optimiser step, where every rank agrees to stop, the resume checkpoint is
saved and ``status.json`` says ``interrupted`` (with the signal and step); the process then exits with
128 + the signal number (143, 130), the shell's convention, so a job script or a requeue rule sees that
the run did not finish. Under SLURM, the requeue signal of Lightning's ``SLURMEnvironment`` (SIGUSR1,
sent ahead of the time limit with ``#SBATCH --signal=SIGUSR1@120``) does the same and then requeues the
job (``scontrol requeue``); the requeued job runs the same command and resumes from that checkpoint.
A signal before training starts (while the data is prepared) or the same one again stops at once.

Nothing is written before the settings and the data have been checked (:func:`validate_inputs`), and a
run that never wrote a checkpoint holds nothing a corrected command would lose: its folder is taken over
by the new settings instead of refusing them.
"""
from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import subprocess
import sys
import threading
import traceback
from pathlib import Path

import lightning as L
import torch
from lightning.fabric.plugins.environments import SLURMEnvironment
from lightning.fabric.utilities.types import _Stateful
from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.utilities import rank_zero_only
from lightning.pytorch.utilities.exceptions import SIGTERMException

from linscale import flops
from linscale.atomic import remove_temporaries
from linscale.models.checkpoint import CheckpointError
from linscale.config import ConfigError, ModelConfig
from linscale.presets import split_size
from linscale.train import code_paths
from linscale.train.callbacks import SafeCheckpointIO, ScalingRecorder, load_lightning_checkpoint, write_json
from linscale.train.module import LanguageModelTask, lr_factor
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
                config = ModelConfig.from_dict({"vocab_size": VOCAB_PLACEHOLDER, **fields, "arch": arch,
                                                "name": str(size)})
                flops.require_formula(config)  # training counts its FLOPs from the first step
            except (ConfigError, ValueError) as err:
                raise ConfigError(f"sizes.{size} ({arch}): {err}") from None
            d_model = int(fields["d_model"])  # validated just above
            train.check_run_steps()
            specs.append({"run_id": f"{arch}-{size}", "preset": preset.get("name", ""), "arch": arch,
                          "size": str(size), "model": {**fields, "arch": arch, "name": str(size)},
                          "train": train.for_width(d_model).to_dict(), "data": preset.get("data") or {}})
    return preset, specs


def spec_identity(spec: dict) -> dict:
    """The parts of a spec that determine the results (not the preset's name, not how it is executed)."""
    return {"model": spec["model"], "data": spec["data"],
            "train": TrainSettings.from_dict(spec["train"]).identity()}


def prepare_run(run_dir: str | os.PathLike, spec: dict, lock_wait_s: float = 0) -> Path:
    """Create ``run_dir`` with ``spec.json``; an existing run with a different spec is an error, unless it
    never wrote a checkpoint or a record (a failed or interrupted start): then the new spec replaces it.
    Checked and written under the run's lock (:func:`run_lock`, ``lock_wait_s`` as in :func:`train_run`):
    a process training the run has read its spec, and one replaced beneath it (the run had no checkpoint
    yet) would name settings that the run's checkpoints and records do not have."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)  # the lock file's folder
    with run_lock(run_dir, lock_wait_s):
        conflict = spec_conflict(run_dir, spec, say=lambda line: print(line, flush=True))
        if conflict:
            raise ConfigError(conflict)
        # execution settings (devices, threads, ...) may change between attempts
        write_json(run_dir / "spec.json", spec)
    return run_dir


def spec_conflict(run_dir: Path, spec: dict, say=None) -> str | None:
    """Why ``run_dir`` cannot take ``spec`` (a one-line message), or None. Reads, writes nothing: a run
    with other settings that has computed something (a checkpoint, a record, an export) is refused; one
    that has not (its start failed, e.g. on a wrong data.path, or it was stopped before its first
    checkpoint) loses nothing, so the corrected command takes it over (said in a line)."""
    spec_file = Path(run_dir) / "spec.json"
    if not spec_file.exists():
        return None
    try:
        old = json.loads(spec_file.read_text())
        a = spec_identity(old)
    except (ValueError, KeyError, TypeError, ConfigError):
        a = None  # a damaged spec: replaceable like any run that computed nothing
    b = spec_identity(spec)
    if a == b:
        return None
    if not computed_anything(run_dir):
        if say is not None:
            key = _what_changed(a, b) if a is not None else "spec.json unreadable"
            say(f"{run_dir}: never reached its first checkpoint; starting it again with the new settings ({key})")
        return None
    if a is None:  # "started with different settings (: None -> {the whole spec})" said nothing true
        return (f"{spec_file}: not a readable run spec, and the run has computed something (a checkpoint, a "
                f"record or an export) whose settings it no longer says; delete {run_dir} to train it again")
    return (f"{spec_file}: this run was started with different settings ({_what_changed(a, b)}); "
            f"use another output folder or delete {run_dir}")


def branch_run(source_dir: str | os.PathLike, step: int, run_dir: str | os.PathLike, spec: dict) -> Path:
    """Prepare ``run_dir`` for ``spec``, a run that starts from ``source_dir``'s checkpoint kept at ``step``
    (``train.keep_checkpoints``) instead of from step 0: a cooldown (``wsd``, its decay starting at ``step``)
    branched from a constant-LR run costs only its decay steps (Hägele et al. 2024). ``spec`` must have the
    source's model, data and seed, and a schedule that gives the same LR as the source's at every step before
    ``step``; its optimiser's LR at ``step`` is set to what its own schedule gives there, so the branch trains
    on exactly as ``spec`` trained from step 0 would (tested). Train it with :func:`train_run`. Idempotent:
    a branch that already holds work is left as it is."""
    source_dir, run_dir = Path(source_dir), Path(run_dir)
    kept = source_dir / "checkpoints" / f"step={step}.ckpt"
    if not kept.is_file():
        raise ConfigError(f"{kept}: no checkpoint kept at step {step} (train the source with "
                          f"train.keep_checkpoints=[{step}])")
    source = read_spec(source_dir)
    for key in ("model", "data"):
        if spec[key] != source[key]:
            raise ConfigError(f"{run_dir}: a branch must have its source's {key} ({source_dir})")
    old, new = TrainSettings.from_dict(source["train"]), TrainSettings.from_dict(spec["train"])
    if new.seed != old.seed or new.total_steps <= step:
        raise ConfigError(f"{run_dir}: a branch keeps its source's seed and trains past step {step}")
    differs = next((s for s in range(step) if new.lr * lr_factor(s, new.total_steps, new)
                    != old.lr * lr_factor(s, old.total_steps, old)), None)
    if differs is not None:
        raise ConfigError(f"train.schedule: the branch's LR differs from its source's at step {differs}, before "
                          f"the branch point {step}")
    prepare_run(run_dir, spec)
    if computed_anything(run_dir):
        return run_dir
    checkpoint = load_lightning_checkpoint(kept)
    if int(checkpoint["global_step"]) != step:
        raise CheckpointError(f"{kept}: holds step {checkpoint['global_step']}, not {step}")
    factor = lr_factor(step, new.total_steps, new)  # the LR the branch's own scheduler would have set
    for group in checkpoint["optimizer_states"][0]["param_groups"]:
        group["lr"] = group["initial_lr"] * factor
    for scheduler in checkpoint.get("lr_schedulers", []):
        scheduler["_last_lr"] = [base * factor for base in scheduler["base_lrs"]]
    # the source's rows that the branch would have recorded itself (the same computation: the LR agreed), the
    # branch point's with the LR the branch's scheduler sets there
    record_steps = set(new.checkpoint_steps())
    for state in _recorder_states(checkpoint):
        state["records"] = [dict(row, run_id=spec["run_id"], lr=row["lr"] if row["step"] < step else new.lr * factor)
                            for row in state["records"] if row["step"] in record_steps and row["step"] <= step]
    SafeCheckpointIO().save_checkpoint(checkpoint, run_dir / "checkpoints" / "last.ckpt")
    return run_dir


def computed_anything(run_dir: Path) -> bool:
    """Whether a run folder holds work: a resume checkpoint, a record or an export."""
    run_dir = Path(run_dir)
    return (any((run_dir / "checkpoints").glob("*.ckpt")) or (run_dir / "records.json").exists()
            or any((run_dir / "export").glob("step=*")))


def _differences(a, b, prefix="") -> list[str]:
    """Every leaf where two specs differ, as 'key.path: old -> new'."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [line for key in sorted(set(a) | set(b), key=str) if a.get(key) != b.get(key)
                for line in _differences(a.get(key), b.get(key), f"{prefix}{key}.")]
    return [f"{prefix.rstrip('.')}: {a!r} -> {b!r}"]


def _what_changed(a, b, shown: int = 3) -> str:
    """The differences of two specs for a one-line message: all of them up to ``shown`` (a user who changed
    two settings by mistake learns of both at once), then how many more."""
    lines = _differences(a, b)
    more = f"; and {len(lines) - shown} more" if len(lines) > shown else ""
    return "; ".join(lines[:shown]) + more


def read_status(run_dir: str | os.PathLike) -> dict:
    """The run's status.json; a damaged one (cut short by a full disk, say) reads as ``damaged``, a run not
    finished: training it again resumes from its checkpoint, or ends at once where that was the last step."""
    file = Path(run_dir) / "status.json"
    if not file.exists():
        return {"state": "new"}
    try:
        status = json.loads(file.read_text())
    except ValueError:
        return {"state": "damaged"}
    return status if isinstance(status, dict) and "state" in status else {"state": "damaged"}


def read_records(run_dir: str | os.PathLike) -> list[dict]:
    """The run's results rows so far (records.json). A damaged file is rebuilt from the rows its resume
    checkpoint holds (the ScalingRecorder's state), which are what a resumed run continues from: read as
    no rows, it had a sweep drop a finished run's rows from its table without a word."""
    run_dir = Path(run_dir)
    file = run_dir / "records.json"
    if not file.exists():
        return []
    try:
        return json.loads(file.read_text())
    except ValueError:
        pass
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    try:
        rows = _recorder_states(load_lightning_checkpoint(ckpt, mmap=True))[0]["records"]
    except (CheckpointError, IndexError, KeyError, TypeError):
        raise RecordsDamaged(f"{file}: not readable JSON, and no checkpoint holds its rows ({ckpt}); delete "
                             f"{run_dir} to train the run again") from None
    write_json(file, rows)
    print(f"linscale: {file}: not readable JSON; its {len(rows)} rows are rebuilt from {ckpt}", file=sys.stderr,
          flush=True)
    return rows


def _recorder_states(checkpoint: dict) -> list[dict]:
    """The ScalingRecorder's state in a Lightning checkpoint (a list: none, or one): its ``records`` are
    the run's rows up to the checkpoint's step."""
    return [state for key, state in checkpoint.get("callbacks", {}).items() if key.startswith("ScalingRecorder")]


class RecordsDamaged(ConfigError):
    """A run's records.json cannot be read and no checkpoint holds its rows (one line)."""


# ---------------------------------------------------------------------------- checks before writing


def validate_inputs(specs: list[dict], build: bool = True, execution: dict | None = None, train_here: bool = True):
    """Check everything the runs of ``specs`` will read, before any file is written: the data block
    (keys, values, that local files exist, a given tokenizer: ``linscale.data.validate_data``) and, with
    ``build`` (runs that train on this machine), the strategy against its devices, the data itself
    (tokenizer trained or loaded, text tokenized into linscale's cache, which the runs then load instead
    of doing it again) and every model's vocabulary against the data's.
    Returns the data module built for the first spec (None without ``build``); every spec of a preset
    shares its data block. One-line ConfigErrors (DataError is one) name what is wrong. ``train_here=False``
    (``linscale data --prepare``, on a CPU machine ahead of a GPU cluster's runs) builds the data without
    checking the runs' devices and memory against this machine."""
    if not specs:
        return None
    if not build:
        if "factory" not in specs[0]["data"]:
            from linscale.data import validate_data

            validate_data(specs[0]["data"])
        return None
    spec = specs[0]
    train = TrainSettings.from_dict(run_settings(spec["train"], execution))
    if train_here:
        check_execution(train)  # runs that train here (a cluster's jobs run on nodes this machine is not)
        for each in specs:  # before the data are built: a synthetic validation set is made in memory
            check_memory(each, TrainSettings.from_dict(run_settings(each["train"], execution)))
    datamodule = build_datamodule_for(spec, train)
    for spec in specs:
        check_vocabulary(spec["model"], int(datamodule.vocab_size), spec["run_id"])
    return datamodule


def build_datamodule_for(spec: dict, train: TrainSettings):
    """The data module a run of ``spec`` trains on with the settings ``train`` (its micro-batch)."""
    micro, _ = train.accumulation(train.devices * train.num_nodes)
    return make_datamodule(spec["data"], train.seq_len, micro, seed=train.seed, num_workers=train.num_workers)


def check_vocabulary(model: dict, vocab: int, where: str = "") -> None:
    """A model needs an embedding row for every token of the data; rows beyond it are never used (a line)."""
    given = model.get("vocab_size")
    prefix = f"{where}: " if where else ""
    if given is None:
        return
    if given < vocab:
        raise ConfigError(f"{prefix}model.vocab_size: {given} is smaller than the data's vocabulary {vocab}")
    if given > vocab:
        print(f"[data] warning: {prefix}model.vocab_size {given:,} is larger than the data's vocabulary "
              f"{vocab:,}: {given - vocab:,} embedding rows are never used (leave model.vocab_size out to "
              f"take the data's)", flush=True)


def physical_memory() -> int | None:
    """The memory this process may use, in bytes: the machine's, or a container's (or SLURM job's) cgroup
    limit where that is less; None where the system does not say."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None
    for limit in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):  # v2, v1
        try:
            text = Path(limit).read_text().strip()
        except OSError:
            continue
        if text.isdigit():  # "max" (v2) or a huge number (v1): no limit
            total = min(total, int(text))
    return total


STATE_PART = "parameters, gradients and Adam's state"  # memory_floor's part that FSDP shards


def memory_floor(spec: dict, train: TrainSettings) -> dict[str, int]:
    """Bytes that one process of a run of ``spec`` certainly holds when it trains on a CPU, by what holds
    them: its parameters with their gradients and Adam's two moments (16 bytes each in fp32, 8 under
    bf16-true; Table 1's count plus the tied embedding), each block's input for one micro-batch (kept for
    the backward pass: its norm's input; no activation checkpointing here) and a synthetic validation set
    (made in memory). A floor: the other activations, the logits (none on a CPU in fp32: the fused loss),
    the optimiser's scratch and torch itself come on top."""
    model, data = spec["model"], spec.get("data") or {}
    source = None if "factory" in data else data.get("source", "synthetic")  # a data module of one's own: unknown
    vocab = model.get("vocab_size")  # else the data's, where it is known before they are built
    if vocab is None and (source == "synthetic" or (source == "text" and not data.get("tokenizer"))):
        from linscale.presets import data_vocab_size

        vocab = data_vocab_size({"data": data})
    config = ModelConfig.from_dict({**model, "vocab_size": vocab or 1})
    params = flops.non_embedding_params(config) + (vocab or 0) * config.d_model
    micro, _ = train.accumulation(train.devices * train.num_nodes)
    fp32 = train.precision in ("32-true", "auto")  # auto: 32-true on a CPU
    floor = {STATE_PART: (16 if train.precision != "bf16-true" else 8) * params,
             "one micro-batch's block inputs": config.n_layer * micro * train.seq_len * config.d_model *
             (4 if fp32 else 2)}
    if source == "synthetic":
        floor["the validation set"] = 4 * int(data.get("val_tokens", 65536))
    return floor


def check_memory(spec: dict, train: TrainSettings) -> None:
    """Refuse a CPU run whose floor (:func:`memory_floor`, times its processes on this machine; the
    parameters and optimiser state once where FSDP shards them) is more than the memory it may use
    (:func:`physical_memory`): a value off by some powers of ten (n_layer 2e6, vocab_size 1e9, val_tokens
    1e12) passed every check and ended in the kernel's out-of-memory kill, or a validation set that never
    finished. A GPU's memory is left to torch's own out-of-memory error."""
    if trains_on_gpu(train):
        return
    total = physical_memory()
    floor = memory_floor(spec, train)
    need = sum(floor.values()) * train.devices  # DDP on a CPU: one process with its own copy per device
    if train.strategy == "fsdp":  # on a CPU only as LINSCALE_FSDP_ON_CPU's test path: the state is split, once
        need -= floor[STATE_PART] * (train.devices - 1)
    if total is None or need <= total:
        return
    gib = 2 ** 30
    parts = ", ".join(f"{what} {size / gib:,.1f} GiB" for what, size in floor.items() if size >= 0.05 * gib)
    processes = ""
    if train.devices > 1 and train.strategy == "fsdp":
        processes = f"; the {STATE_PART} split over {train.devices} processes (FSDP), the rest in each"
    elif train.devices > 1:
        processes = f" in each of {train.devices} processes"
    raise ConfigError(f"{spec['run_id']}: needs at least {need / gib:,.1f} GiB of memory ({parts}{processes}), "
                      f"more than the {total / gib:,.1f} GiB this process may use here; expected a smaller model "
                      "(n_layer, d_model, vocab_size), train.micro_batch_size or data.val_tokens")


# ---------------------------------------------------------------------------- data


def make_datamodule(data: dict, seq_len: int, batch_size: int, seed: int = 0, num_workers: int = 0):
    """``linscale.data.build_datamodule`` (batches as :mod:`linscale.data` describes), or
    ``data["factory"] = "module:function"`` for a data module of one's own with the same signature."""
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


# ---------------------------------------------------------------------------- signals


class RunInterrupted(SystemExit):
    """A run stopped by a signal: a SystemExit whose code is 128 + the signal number (the shell's
    convention: 143 for SIGTERM, 130 for SIGINT), so that a process ending with it tells a job script, a
    requeue rule or a supervisor that the run did not finish. ``step``: where it stopped (None: before
    training started)."""

    def __init__(self, signum: int, step: int | None = None):
        super().__init__(128 + int(signum))
        self.signum, self.step = int(signum), step

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def requeue_signal() -> int | None:
    """Under SLURM, the signal Lightning's ``SLURMEnvironment`` takes as the request to requeue (SIGUSR1)."""
    return int(SLURMEnvironment().requeue_signal) if SLURMEnvironment.detect() else None


@contextlib.contextmanager
def _signal_handlers(signals, handler):
    """While inside: ``handler`` for each of ``signals``, the previous handlers restored after. Only the
    main thread can handle signals; elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, handler) for s in signals}
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


def stop_on_signals(signals=STOP_SIGNALS):
    """While inside: SIGTERM and SIGINT raise :class:`RunInterrupted` (instead of killing the process
    without a word, or Python's traceback for Ctrl-C); in the main thread only."""
    def stop(signum, frame):
        raise RunInterrupted(signum)

    return _signal_handlers(signals, stop)


def stop_signals_ignored(signals=STOP_SIGNALS):
    """While inside: SIGTERM and SIGINT are ignored. Around the record of a stop (status ``interrupted``):
    a second signal there (the sweep's SIGTERM after a Ctrl-C, or a sweep's SIGTERM twice) raised in the
    middle of it, and the run was left ``running`` at step 0 with a checkpoint its status did not name."""
    return _signal_handlers(signals, signal.SIG_IGN)


class StopAtStep(L.Callback):
    """Inside the training loop a stop signal is noted, not raised: the run goes on to the end of the
    optimiser step (gradient accumulation included, so nothing of the step is lost), every rank learns
    whether any of them was signalled (one all-reduce of a flag per step), the resume checkpoint is saved
    there and :class:`RunInterrupted` raised on every rank. The same signal again stops at once (another
    one is the same request: Ctrl-C reaches a sweep's worker and the sweep's SIGTERM follows). Under SLURM
    the requeue signal also requeues the job. Lightning's own SIGTERM handling (it raises at the end of the
    next batch, mid-accumulation too, with a SystemExit that exits 0) is replaced for the loop."""

    def __init__(self, save, requeue: int | None = None):
        self.save, self.requeue = save, requeue
        self.signals = (*STOP_SIGNALS, *([requeue] if requeue else []))
        self.received: int | None = None
        self._seen_step = -1

    def _note(self, signum, frame) -> None:
        if self.received == signum:  # at once, in the step after the last one done (not "before training")
            raise RunInterrupted(signum, step=self._seen_step if self._seen_step >= 0 else None)
        if self.received is not None:  # another signal, the same request: Ctrl-C from the terminal and the
            return  # SIGTERM of the sweep it also reached (linscale.train.sweep._let_runs_stop)
        self.received = signum
        print(f"\nreceived {signal.Signals(signum).name}: stopping after this step with a checkpoint "
              f"({signal.Signals(signum).name} again: at once, without one)", file=sys.stderr, flush=True)

    def on_train_start(self, trainer, pl_module) -> None:
        self._seen_step = trainer.global_step
        if threading.current_thread() is threading.main_thread():
            for s in self.signals:  # after Lightning registered its handlers for the fit
                signal.signal(s, self._note)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if trainer.global_step == self._seen_step:  # within gradient accumulation: not a step yet
            return
        self._seen_step = trainer.global_step
        if trainer.global_step >= trainer.max_steps:  # the last step: the run ends anyway, done
            return
        if not trainer.strategy.reduce_boolean_decision(self.received is not None, all=False):
            return
        signum = self.received if self.received is not None else signal.SIGTERM  # another rank's signal
        self.save(trainer)
        if signum == self.requeue and trainer.is_global_zero:
            requeue_slurm_job()
        raise RunInterrupted(signum, step=trainer.global_step)


def requeue_slurm_job() -> None:
    """``scontrol requeue`` this SLURM job (an array task by its array job and task ids), as Lightning's
    SLURM auto-requeue does."""
    array_job = os.environ.get("SLURM_ARRAY_JOB_ID")
    job = f"{array_job}_{os.environ['SLURM_ARRAY_TASK_ID']}" if array_job else os.environ["SLURM_JOB_ID"]
    try:
        result = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True)
        ok, why = result.returncode == 0, (result.stderr or result.stdout).strip()
    except OSError as err:
        ok, why = False, str(err)
    print(f"SLURM job {job}: " + ("requeued" if ok else f"requeue failed ({why})"), file=sys.stderr, flush=True)


class StepProgressBar(TQDMProgressBar):
    """Optimiser steps done out of the run's total, right after a resume too (Lightning's own bar counts
    the batches of an 'epoch' of the endless train stream: 'Epoch 0/-2', and 488/343 after a resume)."""

    def on_train_start(self, trainer, *_) -> None:
        super().on_train_start(trainer)
        self._steps_bar(trainer)  # a resumed run starts mid-'epoch': Lightning skips on_train_epoch_start

    def on_train_epoch_start(self, trainer, *_) -> None:
        self._steps_bar(trainer)

    def _steps_bar(self, trainer) -> None:
        bar = self.train_progress_bar
        bar.reset(total=trainer.max_steps)
        bar.initial = bar.n = trainer.global_step  # the rate counts this attempt's steps only
        bar.set_description("steps")
        bar.refresh()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        step = trainer.global_step
        if step != self.train_progress_bar.n and self._should_update(step, trainer.max_steps):
            self.train_progress_bar.n = step
            self.train_progress_bar.set_postfix(self.get_metrics(trainer, pl_module), refresh=False)
            self.train_progress_bar.refresh()

    def get_metrics(self, trainer, pl_module) -> dict:
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)  # the logger's version: not news on every step
        return metrics


# ---------------------------------------------------------------------------- the run


def _full_state_dicts_stay_in_place() -> None:
    """FSDP on a CPU (tests): Lightning gathers full state dicts with ``offload_to_cpu=True``; with two
    ranks on a CPU rank 0 crashed in that gather (segmentation fault, at the first checkpoint). Gathering
    without the offload, which has nothing to move on a CPU, does not crash."""
    import lightning.pytorch.strategies.fsdp as lightning_fsdp
    from torch.distributed.fsdp import FullStateDictConfig, StateDictType
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
    from torch.distributed.fsdp.api import FullOptimStateDictConfig

    def full_state_dict_context(module, world_size: int, rank0_only: bool = True):
        return FSDP.state_dict_type(module=module, state_dict_type=StateDictType.FULL_STATE_DICT,
                                    state_dict_config=FullStateDictConfig(offload_to_cpu=False, rank0_only=rank0_only),
                                    optim_state_dict_config=FullOptimStateDictConfig(offload_to_cpu=False,
                                                                                     rank0_only=rank0_only))

    lightning_fsdp._get_full_state_dict_context = full_state_dict_context


FSDP_NEEDS_GPU = "train.strategy: fsdp needs GPUs (Lightning refuses it on CPU); use ddp on CPU"


def trains_on_gpu(settings: TrainSettings) -> bool:
    """Whether a run with these settings trains on a GPU (accelerator gpu or cuda, or auto with one here)."""
    return settings.accelerator in ("gpu", "cuda") or (settings.accelerator == "auto" and torch.cuda.is_available())


def check_strategy(settings: TrainSettings) -> None:
    """Refuse FSDP without a GPU when the inputs are checked, before a run's folder is written (Lightning
    refuses it only when the trainer is built, after spec.json and status.json were); see fsdp_strategy."""
    if settings.strategy == "fsdp" and not trains_on_gpu(settings) \
            and os.environ.get("LINSCALE_FSDP_ON_CPU") != "1":
        raise ConfigError(FSDP_NEEDS_GPU)


def run_settings(train: dict, execution: dict | None) -> dict:
    """A run's train block with the command line's execution options (--devices, --num-nodes, ...) over it:
    those given, not None."""
    return {**train, **{k: v for k, v in (execution or {}).items() if v is not None}}


def launched_on_several_nodes() -> bool:
    """Whether a launcher that starts one process per node is behind this one (srun, torchrun, LSF, MPI,
    Kubeflow), or NODE_RANK is set by hand on each node as Lightning's own environment reads it."""
    from lightning.fabric.plugins.environments import (KubeflowEnvironment, LSFEnvironment, MPIEnvironment,
                                                       SLURMEnvironment, TorchElasticEnvironment)

    kinds = (SLURMEnvironment, TorchElasticEnvironment, KubeflowEnvironment, LSFEnvironment, MPIEnvironment)
    return "NODE_RANK" in os.environ or any(_detects(kind) for kind in kinds)


def _detects(kind) -> bool:
    try:
        return bool(kind.detect())
    except Exception:  # MPIEnvironment.detect needs mpi4py; a detector that cannot run has found nothing
        return False


def check_execution(settings: TrainSettings) -> None:
    """Refuse, before a run's folder is written, what would fail or hang only once the trainer starts: FSDP
    without a GPU (check_strategy), a GPU asked for where torch finds none (a traceback after the data
    were prepared), several nodes without a launcher (Lightning then waits for the other nodes' processes
    forever, SIGTERM included) and a token-mixing backend that is not one of linscale.ops's."""
    from linscale.ops import BACKENDS

    check_strategy(settings)
    if settings.accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ConfigError(f"train.accelerator: {settings.accelerator}, but torch finds no GPU here; expected a "
                          "machine with one, or --accelerator cpu (with --set to shrink the model) to try the "
                          "code path on this one")
    # Lightning refuses it too, but in a multi-line traceback once the trainer is built, after the data
    gpus = torch.cuda.device_count() if trains_on_gpu(settings) and torch.cuda.is_available() else None
    if gpus is not None and settings.devices > gpus:
        raise ConfigError(f"train.devices: {settings.devices} GPUs a node, but torch finds {gpus} on this one; "
                          f"expected at most {gpus} (--devices {gpus}, and a batch that splits over them)")
    if settings.num_nodes > 1 and not launched_on_several_nodes():
        raise ConfigError(f"train.num_nodes: {settings.num_nodes} nodes, but no launcher started this process "
                          "(srun, torchrun, LSF or MPI; or NODE_RANK set on each node); expected --num-nodes 1 "
                          "on one machine, or the launcher's command (README, 'Training on a GPU cluster')")
    for name in ("NODE_RANK", "GROUP_RANK"):  # a node's rank left in the shell: the run took itself for a
        value = os.environ.get(name, "").strip()  # rank > 0 and wrote no results row, exit 0
        if settings.num_nodes == 1 and value not in ("", "0"):
            raise ConfigError(f"{name}: {value}, but train.num_nodes is 1 (its one node is node 0); expected {name} "
                              f"unset or 0 (left from another job? unset it), or --num-nodes with the node count")
    backend = os.environ.get("LINSCALE_BACKEND")
    if backend and backend not in BACKENDS:
        raise ConfigError(f"LINSCALE_BACKEND: {backend!r}; expected one of {', '.join(BACKENDS)}")
    if backend == "triton" and not trains_on_gpu(settings) and os.environ.get("TRITON_INTERPRET") != "1":
        raise ConfigError("LINSCALE_BACKEND: triton on a CPU needs TRITON_INTERPRET=1 (the Triton interpreter, "
                          "slow: for checking kernels); expected torch for training on a CPU")


def fsdp_mixed_precision(precision: str):
    """FSDP's mixed precision under ``precision``; None (Lightning's own) but for the mixed ones. As in
    Lightning's, each unit's parameters are gathered in the half type for compute, and the fp32 ones are
    the optimiser's. Unlike Lightning's:

    - gradients are reduced across ranks in fp32 (Lightning's sums them in the half type: 96 ranks' at
      the paper's scale);
    - the modules of ``linscale.models.FP32_MODULES`` (cosFormer2's attention, HGRN2's lower-bound table)
      keep their parameters fp32 (FSDP wraps them apart, without mixed precision; autocast still runs
      their matmuls in the half type): cosFormer2's LRPE angles θ enter as s·θ, and in bf16 the angle at
      position 8191 is off by up to 11 radians, a model other than the one evaluated in fp32; HGRN2's
      bounds would be off by up to 0.4% (Γ of scale 0.5) to 11% (scale 2) in 1 − lb;
    - buffers stay fp32 (the models keep their fixed tensors out of buffers, common.config_constant)."""
    half = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(precision)
    if half is None:
        return None
    from torch.distributed.fsdp import MixedPrecision

    from linscale.models import FP32_MODULES

    return MixedPrecision(param_dtype=half, reduce_dtype=torch.float32, buffer_dtype=torch.float32,
                          _module_classes_to_ignore=FP32_MODULES)


def fsdp_strategy(on_gpu: bool, precision: str = "32-true"):
    """The paper preset's strategy: FSDP with each transformer block a unit, fully sharded, checkpoints
    gathered into one full state dict (the same files as any other run), mixed precision as
    :func:`fsdp_mixed_precision` sets it for ``precision``.

    Lightning refuses FSDP without a GPU. ``LINSCALE_FSDP_ON_CPU=1`` lets it run on a CPU over gloo, so
    the test suite can take the FSDP path end to end (gradient clipping, checkpoints, resume) on a machine
    without a GPU; slow, for checking the code path only. Lightning's check compares the strategy's exact
    type, so a subclass passes it."""
    from lightning.pytorch.strategies import FSDPStrategy

    from linscale.models.common import Block

    kind = FSDPStrategy
    if not on_gpu:
        if os.environ.get("LINSCALE_FSDP_ON_CPU") != "1":
            raise ConfigError(FSDP_NEEDS_GPU)

        class CPUFSDPStrategy(FSDPStrategy):
            """FSDP over gloo on a CPU (tests)."""

            def _setup_model(self, model):
                # Lightning passes device_id=root_device.index, None on a CPU, which FSDP refuses: wrap here
                # with the CPU as the device; Lightning then finds the model wrapped and does the rest
                from torch.distributed.fsdp import FullyShardedDataParallel

                wrapped = FullyShardedDataParallel(module=model, cpu_offload=self.cpu_offload,
                                                   mixed_precision=self.mixed_precision_config,
                                                   sharding_strategy=self.sharding_strategy,
                                                   device_id=torch.device("cpu"), **self.kwargs)
                self.kwargs.pop("auto_wrap_policy", None)  # applied above
                return super()._setup_model(wrapped)

        kind = CPUFSDPStrategy
        _full_state_dicts_stay_in_place()
    return kind(auto_wrap_policy={Block}, sharding_strategy="FULL_SHARD", state_dict_type="full",
                checkpoint_io=SafeCheckpointIO(), mixed_precision=fsdp_mixed_precision(precision))


def build_trainer(settings: TrainSettings, run_dir: Path, callbacks: list, accumulate: int,
                  progress_bar: bool = False) -> L.Trainer:
    accelerator = settings.accelerator
    on_gpu = trains_on_gpu(settings)
    precision = settings.precision if settings.precision != "auto" else ("bf16-mixed" if on_gpu else "32-true")
    strategy = settings.strategy
    if strategy == "fsdp":
        strategy = fsdp_strategy(on_gpu, precision)
    plugins = [SafeCheckpointIO()] if isinstance(strategy, str) else []
    if SLURMEnvironment.detect():  # requeueing is StopAtStep's: at a step boundary, with an exact checkpoint
        plugins.append(SLURMEnvironment(auto_requeue=False))
    if progress_bar:
        callbacks = [*callbacks, StepProgressBar()]
    return L.Trainer(
        accelerator=accelerator, devices=settings.devices, num_nodes=settings.num_nodes, strategy=strategy,
        precision=precision, max_steps=settings.total_steps, max_epochs=-1,
        accumulate_grad_batches=accumulate, gradient_clip_val=settings.grad_clip or None,
        deterministic=True, benchmark=False,
        limit_val_batches=0, num_sanity_val_steps=0,  # validation happens at the record steps (ScalingRecorder)
        enable_checkpointing=False,  # resume checkpoints are written by ScalingRecorder at record steps
        plugins=plugins or None,
        logger=CSVLogger(run_dir, name="logs"), log_every_n_steps=max(1, min(50, settings.total_steps // 20)),
        callbacks=callbacks, enable_progress_bar=progress_bar, enable_model_summary=False,
        default_root_dir=run_dir,
    )


class RunLockedError(RuntimeError):
    """Another process trains this run: it holds the run folder's ``train.lock``."""


# The environment variables by which a launcher tells a process its rank: torchrun's (RANK, LOCAL_RANK,
# GROUP_RANK), Lightning's own launcher's for the ranks it starts (LOCAL_RANK, NODE_RANK: its DDP on one
# machine re-runs our command line per rank), SLURM's (SLURM_PROCID) and LSF's (JSM_NAMESPACE_RANK)
RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")


def is_global_rank_zero() -> bool:
    """Whether this process is (or will become) global rank 0 of its run, known before a Trainer exists:
    every rank variable of :data:`RANK_VARIABLES` unset or 0, and Lightning's ``rank_zero_only.rank`` 0.
    Lightning's own guess at import looks at RANK, LOCAL_RANK and SLURM_PROCID only, so the first process
    on node 1 of a multi-node run (NODE_RANK=1, no LOCAL_RANK yet) passes for rank 0 until its Trainer is
    set up; any variable that says otherwise decides here, since a rank > 0 taken for rank 0 would wait on
    (or fail at) the lock rank 0 holds, while the reverse only loses the lock."""
    def zero(name: str) -> bool:
        value = os.environ.get(name, "").strip()
        return value in ("", "0")

    return all(zero(name) for name in RANK_VARIABLES) and rank_zero_only.rank == 0


@contextlib.contextmanager
def run_lock(run_dir: Path, wait_s: float = 0):
    """While inside: this process alone trains ``run_dir`` (its ``train.lock``). Taken by global rank 0
    only: the other ranks of a multi-device run run the same command line, and would wait on the lock
    their rank 0 holds (a deadlock: rank 0 waits for them in DDP's set-up); rank 0 holding it keeps out any
    other process started on the folder. ``wait_s``: how long to wait for another process to let go of it
    (a sweep's worker waits for one of a killed sweep, stopping at its next step); then
    :class:`RunLockedError`. Re-entrant in this process: filelock's lock is re-entrant for one lock object
    only (a second FileLock of the same file finds it held), so every caller gets the same one (its
    singleton per file); a caller holding the run through this can call :func:`train_run`."""
    if not is_global_rank_zero():
        yield
        return
    from filelock import FileLock, Timeout

    lock = FileLock(str(run_dir / "train.lock"), is_singleton=True)
    try:
        lock.acquire(timeout=wait_s)
    except Timeout:
        held = f"has trained this run for {wait_s:g} s more" if wait_s > 0 else "trains this run"
        raise RunLockedError(f"{run_dir}: another process {held} (it holds {lock.lock_file}); wait for it to "
                             "finish or stop it, then run the command again") from None
    try:
        if lock.lock_counter == 1:  # first taken here: no write of this run is under way in any process
            for folder in (run_dir, run_dir / "checkpoints", run_dir / "export"):
                for left in remove_temporaries(folder):
                    print(f"{run_dir}: removed {left.relative_to(run_dir)}, left by a process killed while writing")
        yield
    finally:
        lock.release()


def train_run(run_dir: str | os.PathLike, progress_bar: bool = False, datamodule=None, lock_wait_s: float = 0,
              **execution) -> str:
    """Train (or resume, or skip) the run in ``run_dir``; returns its final state: done | diverged.

    ``execution`` overrides execution settings for this attempt (accelerator, devices, num_nodes,
    strategy, threads, num_workers); ``datamodule``: the run's data, already built (by
    :func:`validate_inputs`). A failure writes status "failed" with the error and re-raises; a stop
    signal writes "interrupted" and raises :class:`RunInterrupted` (see the module docstring). One process
    trains a run at a time (:func:`run_lock`): one started while another trains it raises
    :class:`RunLockedError` after ``lock_wait_s``, having written nothing.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():  # before the lock, which would create the folder of a mistyped --run-dir
        raise ConfigError(f"{run_dir / 'spec.json'}: no run spec here (create runs with `linscale train` or "
                          "`linscale sweep`)")
    # every entry path comes here (linscale train, a sweep's worker or its own process, a submitit job);
    # the spec and status are read under the lock, so a process that waited sees what the other one left
    with run_lock(run_dir, lock_wait_s):
        return _train_run(run_dir, progress_bar, datamodule, execution)


SPEC_KEYS = ("run_id", "model", "data", "train")  # what every run's spec.json holds (plan_runs)


def read_spec(run_dir: Path) -> dict:
    """A run's spec.json, or a one-line ConfigError naming it: missing, not JSON, or JSON of another shape
    (a list, or without a key the run reads: a TypeError or KeyError deep in training)."""
    spec_file = Path(run_dir) / "spec.json"
    if not spec_file.is_file():
        raise ConfigError(f"{spec_file}: no run spec here (create runs with `linscale train` or `linscale sweep`)")
    recreate = "recreate the run with `linscale train --preset ... --arch ... --size ...` or `linscale sweep`"
    try:
        spec = json.loads(spec_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{spec_file}: not a readable run spec ({err}); {recreate}") from None
    missing = [key for key in SPEC_KEYS if key not in spec] if isinstance(spec, dict) else None
    if missing is None or missing or not all(isinstance(spec[k], dict) for k in ("model", "data", "train")):
        what = (f"a JSON {type(spec).__name__}" if missing is None else f"no {', '.join(missing)}" if missing else
                "model, data and train must each be a mapping")
        raise ConfigError(f"{spec_file}: not a run spec ({what}; expected a mapping of {', '.join(SPEC_KEYS)}); "
                          f"{recreate}")
    return spec


def _train_run(run_dir: Path, progress_bar: bool, datamodule, execution: dict) -> str:
    spec = read_spec(run_dir)
    status = read_status(run_dir)
    if status["state"] in ("done", "diverged"):
        return status["state"]
    train = TrainSettings.from_dict(run_settings(spec["train"], execution))
    train.check_run_steps()
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    if ckpt.exists():  # check it before anything else: a corrupt checkpoint must stop us, not restart us
        try:
            load_lightning_checkpoint(ckpt, mmap=True)
        except CheckpointError as err:  # the status says why (a sweep prints it), not only the run's train.log
            _write_status(run_dir, state="failed", error=str(err))
            raise
    if train.threads:
        torch.set_num_threads(train.threads)
    deterministic = torch.are_deterministic_algorithms_enabled()
    with stop_on_signals():
        _write_status(run_dir, state="running", step=0)
        try:
            state = _fit(run_dir, spec, train, ckpt if ckpt.exists() else None, progress_bar, datamodule)
        except (RunInterrupted, SIGTERMException, KeyboardInterrupt) as err:
            # SIGTERMException / KeyboardInterrupt: Lightning's or Python's own, where ours could not be installed
            stop = err if isinstance(err, RunInterrupted) else RunInterrupted(
                signal.SIGINT if isinstance(err, KeyboardInterrupt) else signal.SIGTERM)
            with stop_signals_ignored():  # the run is stopping already: another signal must not cut its record
                _interrupted(run_dir, stop, train)
            raise stop from None
        except BaseException as err:
            _write_status(run_dir, state="failed", error=f"{type(err).__name__}: {err}",
                          traceback=traceback.format_exc(limit=8))
            raise
        finally:
            torch.use_deterministic_algorithms(deterministic)  # Lightning's deterministic=True is process-wide
    return state


def _interrupted(run_dir: Path, stop: RunInterrupted, train: TrainSettings) -> None:
    """Status ``interrupted`` and one line saying where the run stopped and how it resumes."""
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    saved = None
    if ckpt.exists():
        try:
            saved = int(load_lightning_checkpoint(ckpt, mmap=True)["global_step"])
        except CheckpointError:
            saved = None
    _write_status(run_dir, state="interrupted", signal=stop.signal_name, step=stop.step, checkpoint_step=saved,
                  total_steps=train.total_steps, exit_code=stop.code)
    where = f"at step {stop.step} of {train.total_steps}" if stop.step is not None else "before training"
    resume = (f"resumes from the checkpoint of step {saved}" if saved else "starts from step 0") + \
        ": run the same command again"
    if rank_zero_only.rank == 0:
        print(f"linscale: {run_dir}: interrupted by {stop.signal_name} {where}; it {resume}", file=sys.stderr,
              flush=True)
    stop.reported = True


def _fit(run_dir: Path, spec: dict, train: TrainSettings, ckpt: Path | None, progress_bar: bool,
         datamodule=None) -> str:
    L.seed_everything(train.seed, workers=True, verbose=False)
    world = train.devices * train.num_nodes
    micro, accumulate = train.accumulation(world)
    if datamodule is None:
        datamodule = make_datamodule(spec["data"], train.seq_len, micro, seed=train.seed, num_workers=train.num_workers)
        check_vocabulary(spec["model"], int(datamodule.vocab_size))
    vocab = int(datamodule.vocab_size)
    model_fields = dict(spec["model"])
    model_fields.setdefault("vocab_size", vocab)
    _say_epochs(datamodule, train)
    task = LanguageModelTask(model=model_fields, train=train.to_dict())
    recorder = ScalingRecorder(run_dir, {**spec, "train": train.to_dict()}, tokenizer=getattr(datamodule, "tokenizer", None))
    stopper = StopAtStep(recorder._save, requeue=requeue_signal())
    trainer = build_trainer(train, run_dir, [recorder, stopper], accumulate, progress_bar)
    trainer.fit(task, datamodule=ResumableData(datamodule), ckpt_path=ckpt, weights_only=True)
    state = "diverged" if task.diverged else "done"
    if trainer.global_step < train.total_steps and not task.diverged:
        state = "failed"
        raise RuntimeError(f"{run_dir}: training stopped at step {trainer.global_step} of {train.total_steps}")
    if trainer.is_global_zero:
        _write_status(run_dir, state=state, step=int(trainer.global_step), resumed_from=recorder.resumed_from,
                      wall_time_s=recorder.wall_time + recorder._elapsed(), params=task.params,
                      params_total=task.params_total, cpu_code_path=code_paths.in_effect())
    return state


def _say_epochs(datamodule, train: TrainSettings) -> None:
    """How many passes over the training text the token budget makes (text that is not streamed)."""
    tokens = getattr(datamodule, "train_tokens", None)
    if not tokens:
        return
    budget = train.total_steps * train.tokens_per_step
    epochs = budget / tokens
    more = "; each pass reshuffles the rows" if epochs > 1 else ""
    from linscale.data import say

    say(f"the budget of {budget:,} training tokens ({train.total_steps:,} steps) is {epochs:.3g} "
        f"epoch{'s' if epochs != 1 else ''} of the training text ({tokens:,} tokens){more}")


@rank_zero_only
def _write_status(run_dir: Path, **status) -> None:
    write_json(run_dir / "status.json", status)
