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


class CheckpointError(RuntimeError):
    """A checkpoint is missing, truncated or inconsistent; the message names the file."""


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
