"""Exported model checkpoints: a folder anyone can load without running code from it.

    <dir>/config.json         {"model": ModelConfig fields, "meta": {...}}  (meta: tokens seen, data, ...)
    <dir>/model.safetensors   the weights (safetensors: no pickle, so a checkpoint cannot run code)
    <dir>/tokenizer.json      optional: the Hugging Face `tokenizers` tokenizer the model was trained with

Writes are atomic (a temporary folder renamed into place), so a crash never leaves half a checkpoint.
Lightning's own ``.ckpt`` files (for resuming training) are handled by the training code; they are
loaded with ``torch.load(weights_only=True)`` there.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from linscale.atomic import default_file_mode
from linscale.config import ConfigError, ModelConfig, error_line
from linscale.models import CausalLM, build_model

log = logging.getLogger(__name__)


class CheckpointError(RuntimeError):
    """A checkpoint is missing, truncated or inconsistent; the message names the file."""


def usable_device(device: str | torch.device | None = None, option: str = "device") -> torch.device:
    """``device`` as a torch device that holds a checkpoint's tensors in this process, or a one-line
    ConfigError that names ``option``. The one check for ``linscale eval --device`` (before its workers
    start) and ``lm_eval --model_args device=`` (where the model loads): torch named a bad device deep in
    a worker ("tpu" a traceback, "mps" on a build without it an error from safetensors, "cpu:1" reported
    as corrupt weights). None means the GPU where there is one, as lm-eval's own Hugging Face model does;
    a CUDA device on a machine without CUDA falls back to the CPU with a warning."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        found = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"{option}: expected a torch device such as cpu, cuda or cuda:1, got {device!r}") from None
    if found.type == "cuda" and not torch.cuda.is_available():
        log.warning("%s %s requested but CUDA is not available: using the CPU", option, device)
        return torch.device("cpu")
    try:
        if found.type == "cpu":  # safetensors takes "cpu" only
            if found.index not in (None, 0):
                raise ValueError("a CPU is one device: cpu")
            return torch.device("cpu")
        if found.type == "meta":  # takes tensors, but no values
            raise ValueError("meta tensors hold no values")
        if found.type == "cuda":  # counted without starting CUDA in this process (a CLI's workers start it)
            if (found.index or 0) >= torch.cuda.device_count():
                raise ValueError(f"this machine has {torch.cuda.device_count()} CUDA device(s)")
            return found
        torch.empty(0, device=found)  # mps, xpu, ...: failed at the first tensor
    # ImportError: torch looks for a module named after the device (privateuseone, hpu) that this build lacks
    except (RuntimeError, NotImplementedError, AssertionError, ValueError, TypeError, ImportError) as err:
        reason = error_line(err).split(". ")[0][:200]  # torch's first sentence: its list of backends runs on
        raise ConfigError(f"{option}: {device!r} cannot hold tensors here ({reason}); "
                          "expected cpu or cuda[:N]") from None
    return found


def save_checkpoint(model: CausalLM, path: str | os.PathLike, meta: dict | None = None,
                    tokenizer=None) -> Path:
    """Write ``model`` (and its tokenizer, if given) to the folder ``path``, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
        save_file(state, str(tmp / "model.safetensors"))
        (tmp / "config.json").write_text(json.dumps({"model": model.config.to_dict(), "meta": meta or {}},
                                                    indent=2, default=str))
        if tokenizer is not None:
            tokenizer.save(str(tmp / "tokenizer.json"))
        # the modes a folder and files made by hand get (mkdtemp's 0700 and safetensors' 0600 kept an
        # export from the rest of a group on a shared cluster)
        file_mode = default_file_mode()
        for written in tmp.iterdir():
            os.chmod(written, file_mode)
        os.chmod(tmp, file_mode | (file_mode & 0o444) >> 2)
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[CausalLM, dict]:
    """Load ``(model, meta)`` from a folder written by :func:`save_checkpoint`; the model is in eval mode."""
    path = Path(path)
    config_file, weights_file = path / "config.json", path / "model.safetensors"
    for f in (config_file, weights_file):
        if not f.is_file():
            raise CheckpointError(f"{f}: checkpoint file is missing")
    try:
        spec = json.loads(config_file.read_text())
        config = ModelConfig.from_dict(spec["model"])
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise CheckpointError(f"{config_file}: not a linscale checkpoint config ({err})") from None
    except ConfigError as err:
        raise CheckpointError(f"{config_file}: {err}") from None
    try:
        state = load_file(str(weights_file), device=str(device))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{weights_file}: corrupt or truncated weights ({err})") from None
    model = build_model(config).to(device)
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as err:  # a tensor of another shape than the config's (torch lists each, line by line)
        shapes = [line.strip() for line in str(err).splitlines() if line.strip().startswith("size mismatch")]
        raise CheckpointError(f"{weights_file}: weights do not match {config_file.name} ("
                              f"{len(shapes)} of another shape, first: {shapes[0] if shapes else error_line(err)})") \
            from None
    if missing or unexpected:
        raise CheckpointError(f"{weights_file}: weights do not match the config "
                              f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    return model.eval(), spec.get("meta", {})


def load_tokenizer(path: str | os.PathLike):
    """The ``tokenizers.Tokenizer`` saved beside a checkpoint."""
    from tokenizers import Tokenizer

    file = Path(path) / "tokenizer.json"
    if not file.is_file():
        raise CheckpointError(f"{file}: checkpoint has no tokenizer")
    from linscale.data.text import text_only

    try:
        tokenizer = Tokenizer.from_file(str(file))
    except Exception as err:  # tokenizers raises a bare Exception on malformed JSON
        raise CheckpointError(f"{file}: not a valid tokenizer file ({err})") from None
    return text_only(tokenizer)  # a prompt's "<eod>" is text, as it was in training
