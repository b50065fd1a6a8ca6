"""Training settings (a preset's ``train:`` block), command-line overrides and the checkpoint schedule.

A preset is a plain YAML mapping (see ``linscale/presets/``); ``resolve_preset(name, ["train.lr=1e-3"])``
reads it and applies ``--set KEY=VALUE`` overrides, where KEY is a dotted path into the mapping. Keys are
checked: a path that names nothing the preset or the schema knows is an error naming it, so a typo
never silently trains the default.

The intermediate checkpoints are log-spaced in tokens, as the paper's scaling fits need (its 1,376
checkpoints are read against compute on a log axis):

    steps_k = round(s_0 · (S / s_0)^(k / (K - 1))),  k = 0..K-1,  s_0 = max(1, round(f · S))

with S the run's optimiser steps, K = ``checkpoints`` and f = ``checkpoint_start``; duplicates merge,
and S itself is always a checkpoint.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import re
import sys
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import yaml

from linscale.config import ARCHITECTURES, ConfigError, ModelConfig
from linscale.presets import check_design_block, load_preset, split_size

SCHEDULES = ("constant", "warmup", "cosine", "wsd")
PRECISIONS = ("auto", "32-true", "bf16-mixed", "16-mixed", "bf16-true")
STRATEGIES = ("auto", "ddp", "fsdp", "ddp_spawn", "single_device")
ACCELERATORS = ("auto", "cpu", "gpu", "cuda")
# the most optimiser steps a run may take: far beyond any run (the paper's 300B tokens are 76,000 steps),
# short of where numpy's float arithmetic in the checkpoint schedule stops being exact for step counts
MAX_STEPS = 10**12


@dataclass
class TrainSettings:
    """Everything a preset's ``train:`` block may set. Defaults follow the paper where it says something
    (constant LR 3e-4, weight decay 0.1); the rest are common choices, marked as such."""

    seq_len: int = 8192  # context n (tokens per sequence)
    batch_size: int = 480  # global batch b in sequences per optimiser step (all devices together)
    tokens: float = 300e9  # training tokens D of each run; steps = floor(D / (b·n))
    micro_batch_size: int | None = None  # sequences per device per forward; None -> b / world (no accumulation)
    lr: float = 3e-4  # peak learning rate (paper: constant 3e-4); at width lr_reference_width when that is set
    # None: every size trains at ``lr`` (the paper). A width d_ref: a run of width d trains at lr·d_ref/d, the
    # μP rule for Adam (hidden-layer updates shrink as 1/width), so one number tunes a whole grid of sizes.
    lr_reference_width: int | None = None
    lr_width_exponent: float = 1.0  # p in lr·(d_ref/d)^p: 1 is the μP rule; a pilot may find a gentler slope
    schedule: str = "constant"  # constant | warmup (linear warmup, then constant) | cosine | wsd
    warmup_steps: int = 0  # linear warmup length (paper: not reported)
    min_lr_ratio: float = 0.1  # cosine / wsd: final LR as a fraction of the peak
    decay_fraction: float = 0.2  # wsd: fraction of the run spent in the final linear decay
    weight_decay: float = 0.1  # AdamW, on matrices and embeddings only (not norm gains)
    betas: tuple = (0.9, 0.95)  # AdamW (paper: not reported)
    eps: float = 1e-8
    grad_clip: float | None = 1.0  # max global gradient norm; None or 0 disables (paper: not reported)
    precision: str = "auto"  # auto -> bf16-mixed on GPU, 32-true on CPU
    seed: int = 0
    checkpoints: int = 16  # K log-spaced intermediate checkpoints (records in the results table)
    checkpoint_start: float = 0.01  # first checkpoint at this fraction of the run's steps
    exports: int | str = 3  # safetensors exports for evaluation: the final + log-spaced ones, or "all"
    val_batches: int | None = None  # cap on validation batches per checkpoint (None: the whole split)
    loss_window: int = 8  # train_loss = mean over the last this-many optimiser steps
    save_every_minutes: float = 10.0  # resume checkpoints also this often (besides every record)
    num_workers: int = 0  # DataLoader workers per process
    # Execution (how, not what: changing these does not change a run's identity)
    accelerator: str = "auto"
    devices: int = 1  # devices per node for one run (DDP/FSDP when > 1)
    num_nodes: int = 1
    strategy: str = "auto"  # auto | ddp | fsdp (GPU only) | ddp_spawn | single_device
    threads: int | None = None  # torch intra-op threads per process (None: torch's default)
    # record steps whose resume checkpoint is also kept, as checkpoints/step=<s>.ckpt: a run that branches
    # from one (a cooldown from a constant-LR run, benchmarks/probe_cooldown.py) starts there with the
    # optimiser's state. What is kept, not what is computed: not part of a run's identity.
    keep_checkpoints: list = dataclasses.field(default_factory=list)

    EXECUTION = ("accelerator", "devices", "num_nodes", "strategy", "threads", "num_workers", "keep_checkpoints")

    def __post_init__(self) -> None:
        if isinstance(self.betas, list):
            self.betas = tuple(self.betas)
        # YAML 1.1 reads "1e-3" (no dot) as a string: accept numbers written that way in presets and --set
        for name in ("tokens", "lr", "eps", "weight_decay", "min_lr_ratio", "decay_fraction", "checkpoint_start",
                     "save_every_minutes", "grad_clip", "lr_width_exponent"):
            if isinstance(getattr(self, name), str):
                setattr(self, name, _number(f"train.{name}", getattr(self, name)))
        # and an integer written as one (--set train.batch_size=1e3, 1000.0): the integer, as data.* keys take it
        for name in (*_INTS, *_OPTIONAL_INTS, *_COUNTS):
            setattr(self, name, _integral(getattr(self, name)))
        for name in _INTS:
            _require_int(f"train.{name}", getattr(self, name), minimum=0 if name == "seed" else 1)
        for name in _OPTIONAL_INTS:
            if getattr(self, name) is not None:
                _require_int(f"train.{name}", getattr(self, name), minimum=1)
        for name in _COUNTS:
            _require_int(f"train.{name}", getattr(self, name), minimum=0)
        for name in ("tokens", "lr", "eps", "save_every_minutes"):
            _require_number(f"train.{name}", getattr(self, name), positive=True)
        for name in ("weight_decay", "min_lr_ratio", "decay_fraction", "checkpoint_start", "lr_width_exponent"):
            _require_number(f"train.{name}", getattr(self, name), positive=False)
        if not 0 < self.checkpoint_start <= 1:
            raise ConfigError(f"train.checkpoint_start: expected a fraction in (0, 1], got {self.checkpoint_start!r}")
        if not 0 <= self.decay_fraction <= 1 or not 0 <= self.min_lr_ratio <= 1:
            raise ConfigError("train.decay_fraction / train.min_lr_ratio: expected fractions in [0, 1]")
        if self.grad_clip is not None:
            _require_number("train.grad_clip", self.grad_clip, positive=False)
        if (not isinstance(self.betas, tuple) or len(self.betas) != 2
                or not all(isinstance(b, (int, float)) and not isinstance(b, bool) and 0 <= b < 1
                           for b in self.betas)):  # a YAML false is no 0
            raise ConfigError(f"train.betas: expected two numbers in [0, 1), got {self.betas!r}")
        for name, allowed in (("schedule", SCHEDULES), ("precision", PRECISIONS), ("strategy", STRATEGIES),
                              ("accelerator", ACCELERATORS)):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"train.{name}: {getattr(self, name)!r} is not one of {', '.join(allowed)}")
        if not (self.exports == "all" or (isinstance(self.exports, int) and not isinstance(self.exports, bool)
                                          and self.exports >= 0)):
            raise ConfigError(f"train.exports: expected a count >= 0 or 'all', got {self.exports!r}")
        if self.total_steps < 1:
            raise ConfigError(f"train.tokens: {self.tokens:g} tokens is less than one step of "
                              f"batch_size x seq_len = {self.tokens_per_step} tokens")
        if self.total_steps > MAX_STEPS:  # 1e30 tokens was a TypeError from numpy in the checkpoint schedule
            raise ConfigError(f"train.tokens: {_g(self.tokens, '.6g')} tokens is {_g(self.total_steps, '.3g')} steps "
                              f"of batch_size x seq_len = {self.tokens_per_step} tokens; expected at most "
                              f"{MAX_STEPS:.0e} steps")
        if not isinstance(self.keep_checkpoints, (list, tuple)):
            raise ConfigError(f"train.keep_checkpoints: expected a list of record steps, got {self.keep_checkpoints!r}")
        self.keep_checkpoints = list(self.keep_checkpoints)

    # ---------------------------------------------------------------- derived quantities

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.seq_len

    @property
    def total_steps(self) -> int:
        return int(self.tokens // self.tokens_per_step)

    def accumulation(self, world_size: int) -> tuple[int, int]:
        """(micro batch per device, gradient-accumulation steps) for ``world_size`` processes."""
        if self.batch_size % world_size:
            raise ConfigError(f"train.batch_size: {self.batch_size} sequences do not split over {world_size} devices")
        per_device = self.batch_size // world_size
        micro = self.micro_batch_size or per_device
        if per_device % micro:
            raise ConfigError(f"train.micro_batch_size: {micro} does not divide the per-device batch {per_device} "
                              f"(batch_size {self.batch_size} over {world_size} devices)")
        return micro, per_device // micro

    def for_width(self, d_model: int) -> "TrainSettings":
        """These settings for a model of width ``d_model``: the LR scaled by (lr_reference_width /
        d_model)^lr_width_exponent when a reference width is set (the rule is then resolved: the result has
        none)."""
        if self.lr_reference_width is None:
            return self
        factor = (self.lr_reference_width / d_model) ** self.lr_width_exponent
        return dataclasses.replace(self, lr=self.lr * factor, lr_reference_width=None, lr_width_exponent=1.0)

    def checkpoint_steps(self) -> list[int]:
        return checkpoint_steps(self.total_steps, self.checkpoints, self.checkpoint_start)

    def check_run_steps(self) -> None:
        """A warmup must end before the run's last step (else the LR reaches ``lr`` only there, or never, and
        the run is not the one its settings describe), and ``keep_checkpoints`` must name record steps (only
        there is a resume checkpoint saved at that very step). Checked on a run's own settings, not on a
        preset's train block, whose sizes set their budgets."""
        if self.schedule != "constant" and self.warmup_steps >= self.total_steps:
            raise ConfigError(f"train.warmup_steps: {self.warmup_steps} is not less than this run's {self.total_steps} "
                              f"steps (train.tokens / (batch_size x seq_len)), so its LR would reach train.lr at its "
                              f"last step if at all; expected fewer warmup steps (--set train.warmup_steps=N) or "
                              f"more tokens")
        stray = [s for s in self.keep_checkpoints if s not in set(self.checkpoint_steps())]
        if stray:
            raise ConfigError(f"train.keep_checkpoints: {stray[0]!r} is not one of this run's record steps "
                              f"({', '.join(map(str, self.checkpoint_steps()))})")

    def export_steps(self) -> list[int]:
        steps = self.checkpoint_steps()
        if self.exports == "all":
            return steps
        if self.exports == 0:
            return []
        # log-spaced over the last two thirds of the checkpoints (the first ones are near-random models)
        idx = np.unique(np.round(np.linspace(len(steps) - 1, len(steps) // 3, min(self.exports, len(steps))))
                        .astype(int))
        return sorted(steps[i] for i in idx)

    def identity(self) -> dict:
        """The fields that define what a run computes (execution settings left out)."""
        return {k: v for k, v in self.to_dict().items() if k not in self.EXECUTION}

    def to_dict(self) -> dict:
        values = dataclasses.asdict(self)
        values["betas"] = list(self.betas)
        return values

    @classmethod
    def from_dict(cls, values: dict) -> "TrainSettings":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"train.{unknown[0]}: unknown training setting; expected one of {', '.join(sorted(known))}")
        return cls(**values)


def checkpoint_steps(total_steps: int, count: int, start_fraction: float = 0.01) -> list[int]:
    """``count`` log-spaced optimiser steps ending at ``total_steps`` (duplicates merged)."""
    first = max(1, round(start_fraction * total_steps))
    if count == 1 or first >= total_steps:
        return [total_steps]
    steps = np.unique(np.round(np.geomspace(first, total_steps, count)).astype(int))
    return [int(s) for s in steps]


# ---------------------------------------------------------------------------- presets and overrides


MODEL_FIELDS = tuple(f.name for f in dataclasses.fields(ModelConfig) if f.name not in ("arch",))
TRAIN_FIELDS = tuple(f.name for f in dataclasses.fields(TrainSettings))
TOP_LEVEL = ("name", "description", "archs", "model", "sizes", "arch_overrides", "train", "data", "cluster", "design",
             "ablations", "context_size")  # the ablation sweeps `linscale study` trains without --ablations, and
# the grid size its context ablation retrains (linscale.study.ablation_presets)


def parse_override(text: str) -> tuple[list[str], object]:
    """``"train.lr=1e-3"`` -> (["train", "lr"], 0.001). Values are YAML (lists, mappings, numbers, strings)."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE with a dotted KEY, e.g. train.lr=1e-3")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    # YAML 1.1 reads "1e-3" (an exponent without a dot) as a string; any other text stays text, so
    # `--set description=nan` or `=inf` is the word it says, not a float
    if isinstance(value, str) and _EXPONENT_NUMBER.fullmatch(value.strip()):
        value = _number(key, value.strip())
    return key.split("."), value


_EXPONENT_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+")


def _allowed_new_key(path: list[str], preset: dict) -> bool:
    """May ``path`` be added to ``preset`` even though it is not there yet?"""
    head = path[0]
    if len(path) == 1:
        return head in TOP_LEVEL
    if head == "train":
        return len(path) == 2 and path[1] in TRAIN_FIELDS
    if head == "model":
        return len(path) == 2 and path[1] in MODEL_FIELDS
    if head == "sizes":  # a new size (whole mapping), a field of one, or one of its training overrides
        return (len(path) == 2 or (len(path) == 3 and path[2] in (*MODEL_FIELDS, "train"))
                or (len(path) == 4 and path[2] == "train" and path[3] in TRAIN_FIELDS))
    if head == "arch_overrides":
        return len(path) <= 3 or (len(path) == 4 and path[3] in MODEL_FIELDS)
    if head == "data":  # checked against the source's keys in resolve_preset (after every override)
        return True
    if head in ("cluster", "design"):  # design: the reference law and noise of the design check (linscale.design)
        return True
    return False


def apply_overrides(preset: dict, overrides: list[str] | tuple = ()) -> dict:
    """A copy of ``preset`` with each ``KEY=VALUE`` applied; unknown keys raise ConfigError naming them."""
    preset = copy.deepcopy(preset)
    for text in overrides:
        path, value = parse_override(text)
        node = preset
        for i, part in enumerate(path[:-1]):
            if not isinstance(node, dict):
                raise ConfigError(f"--set {'.'.join(path)}: {'.'.join(path[:i])} is not a mapping")
            if part not in node:
                if not _allowed_new_key(path, preset):
                    raise ConfigError(_unknown_key_message(path, _first_unknown(path, i, preset), preset))
                node[part] = {}
            node = node[part]
        if not isinstance(node, dict):
            raise ConfigError(f"--set {'.'.join(path)}: {'.'.join(path[:-1])} is not a mapping")
        if path[-1] not in node and not _allowed_new_key(path, preset):
            raise ConfigError(_unknown_key_message(path, len(path) - 1, preset))
        node[path[-1]] = value
    return preset


def _first_unknown(path: list[str], depth: int, preset: dict) -> int:
    """The depth of the key to name in the refusal of ``path``, whose part at ``depth`` is missing from the
    preset: the first part there or below that may not be added. (`sizes.s1.train.lrr`, where s1 has no train
    block, was refused as "unknown key 'train' in sizes.s1", a key that may be added, instead of 'lrr'.)"""
    while depth < len(path) - 1 and _allowed_new_key(path[:depth + 1], preset):
        depth += 1
    return depth


def _unknown_key_message(path: list[str], depth: int, preset: dict) -> str:
    where = ".".join(path[:depth]) or "the preset"
    node = preset
    for part in path[:depth]:  # the mapping the key is missing from ({} where that is to be added too)
        node = node.get(part, {}) if isinstance(node, dict) else {}
    choices = set(node) if isinstance(node, dict) else set()
    if depth == 0:
        choices |= set(TOP_LEVEL)
    elif path[0] == "train" and depth == 1:
        choices |= set(TRAIN_FIELDS)
    elif path[0] == "sizes" and depth == 3 and path[2] == "train":  # a size's own training settings
        choices |= set(TRAIN_FIELDS)
    elif path[0] == "sizes" and depth == 2:  # a size's shape, or its own training settings
        choices |= {*MODEL_FIELDS, "train"}
    elif path[0] in ("model", "sizes", "arch_overrides") and depth >= 1:
        choices |= set(MODEL_FIELDS) if path[0] == "model" or depth >= 2 else set()
    hint = f"; expected one of {', '.join(sorted(map(str, choices)))}" if choices else ""
    return f"--set {'.'.join(path)}: unknown key {path[depth]!r} in {where}{hint}"


# The ablation sweeps a study may train beside a preset's grid (linscale.study.ablation_presets, in its
# order); a preset's ``ablations`` chooses some of them (all when it has none)
ABLATIONS = ("aspect", "context", "seeds", "size_seeds")


def preset_ablations(preset: dict) -> tuple[str, ...] | None:
    """The preset's ``ablations``, checked (None: the preset chooses none, so a study trains all)."""
    chosen = preset.get("ablations")
    if chosen is None:
        return None
    if not isinstance(chosen, list) or not all(isinstance(name, str) for name in chosen):
        raise ConfigError(f"ablations: expected a list of ablation names (some of {', '.join(ABLATIONS)}), got {chosen!r}")
    unknown = [name for name in chosen if name not in ABLATIONS]
    if unknown:
        raise ConfigError(f"ablations: unknown ablation(s) {', '.join(unknown)}; expected some of {', '.join(ABLATIONS)}")
    return tuple(chosen)


def _check_masked_overrides(preset: dict, overrides) -> None:
    """An override ``train.KEY=...`` or ``model.KEY=...`` that a size's own ``sizes.<size>.train.KEY`` or
    ``sizes.<size>.KEY`` masks (the size's wins): masked for every size it is an error, for some a note.
    The cpu preset gives each size its own token budget, and `--set train.tokens=1e6` changed nothing
    there in silence; every size gives its own heads, and `--set model.n_head=3` changed nothing either."""
    for override in overrides or ():
        key = str(override).split("=", 1)[0].strip()
        parts = key.split(".")
        if len(parts) != 2 or parts[0] not in ("train", "model"):
            continue
        block = 1 if parts[0] == "train" else 0  # split_size: (model fields, training settings)
        own = [str(size) for size, shape in preset["sizes"].items() if parts[1] in split_size(size, shape)[block]]
        if not own:
            continue
        inner = f"train.{parts[1]}" if block else parts[1]
        where = f"sizes.<size>.{inner}"
        if len(own) == len(preset["sizes"]):
            raise ConfigError(f"{key}: every size of this preset sets its own ({where}), which wins over {key}; "
                              f"set {where}=... for the sizes to change, e.g. sizes.{own[0]}.{inner}")
        note = f"note: {key}: sizes {', '.join(own)} set their own ({where}), which wins there"
        if note not in _NOTED:  # a command resolves its preset several times (checks, plan, sweep)
            _NOTED.add(note)
            print(note, file=sys.stderr)


_NOTED: set[str] = set()


def resolve_preset(name_or_preset: str | dict, overrides: list[str] | tuple = ()) -> dict:
    """Load a preset (name, path or dict), apply overrides, and check its train block and grid."""
    preset = load_preset(name_or_preset) if not isinstance(name_or_preset, dict) else name_or_preset
    preset = apply_overrides(preset, overrides)
    unknown = sorted(set(preset) - set(TOP_LEVEL))
    if unknown:
        raise ConfigError(f"preset: unknown top-level key {unknown[0]!r}; expected one of {', '.join(TOP_LEVEL)}")
    if not isinstance(preset.get("archs"), list) or not preset["archs"]:
        raise ConfigError("archs: expected a non-empty list of architectures")
    if not isinstance(preset.get("sizes"), dict) or not preset["sizes"]:
        raise ConfigError("sizes: expected a non-empty mapping of size name -> shape")
    # the blocks' own types first: `--set train=5` was a TypeError where each block is read
    for key in ("model", "train", "arch_overrides", "cluster"):  # data and design: checked below, by their own
        if preset.get(key) is not None and not isinstance(preset[key], dict):
            raise ConfigError(f"{key}: expected a mapping, got {preset[key]!r}")
    for key in ("name", "description"):
        if key in preset and not isinstance(preset[key], str):
            raise ConfigError(f"{key}: expected text, got {preset[key]!r}")
    check_design_block(preset.get("design"))
    TrainSettings.from_dict(preset.get("train") or {})

    for size, shape in preset["sizes"].items():
        size_train = split_size(size, shape)[1]
        try:
            TrainSettings.from_dict({**(preset.get("train") or {}), **size_train})
        except ConfigError as err:
            raise ConfigError(f"sizes.{size}.{err}") from None
    _check_masked_overrides(preset, overrides)
    check_context_size(preset)  # here, as every key: only the study's ablations read it, a typo got to the sweep
    check_data_keys(preset.get("data") or {})
    preset_ablations(preset)  # `linscale sweep` trains none of them, but a typo there is still a typo
    for arch, sizes in (preset.get("arch_overrides") or {}).items():
        if sizes is not None and not isinstance(sizes, dict):
            raise ConfigError(f"arch_overrides.{arch}: expected a mapping of size -> shape changes, got {sizes!r}")
        if arch not in preset["archs"] and arch not in ARCHITECTURES:  # a typo's changes applied to no model
            raise ConfigError(f"arch_overrides.{arch}: no such architecture; expected one of "
                              f"{', '.join(dict.fromkeys([*map(str, preset['archs']), *ARCHITECTURES]))}")
        for size in sizes or {}:
            if size not in preset["sizes"]:
                raise ConfigError(f"arch_overrides.{arch}.{size}: no such size; sizes are {', '.join(preset['sizes'])}")
    return preset


def check_context_size(preset: dict) -> None:
    """The preset's ``context_size`` (where the study's context ablation trains), when given, is a size of
    its grid."""
    if preset.get("context_size") is not None and str(preset["context_size"]) not in map(str, preset["sizes"]):
        raise ConfigError(f"context_size: {str(preset['context_size'])!r} is not a size of the grid; expected one "
                          f"of {', '.join(map(str, preset['sizes']))}")


def check_data_keys(data: dict) -> None:
    """The data block's keys and values (linscale.data.keys: one table for checks, help and README); a
    data module of one's own (``factory``) checks its own."""
    if not isinstance(data, dict):
        raise ConfigError(f"data: expected a mapping with a 'source' key, got {data!r}")
    if "factory" in data:
        return
    from linscale.data.keys import check_data

    check_data(data)


# ---------------------------------------------------------------------------- small validators


def _number(name: str, text: str) -> float | int:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{name}: expected a number, got {text!r}") from None
    return int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value


def _g(value, spec: str) -> str:
    """``format(value, spec)`` of a number, also for an int past float's range (10**400 raised OverflowError)."""
    try:
        return format(value, spec)
    except OverflowError:
        return format(Decimal(value), spec)


# the integer settings: required (seed from 0, the others from 1), optional (None: chosen at run time), counts from 0
_INTS = ("seq_len", "batch_size", "checkpoints", "loss_window", "devices", "num_nodes", "seed")
_OPTIONAL_INTS = ("micro_batch_size", "val_batches", "threads", "lr_reference_width")
_COUNTS = ("warmup_steps", "num_workers")


def _integral(value):
    """``value`` as an int where it is a whole number written otherwise (1000.0, or "1e3", which YAML 1.1
    reads as a string); anything else as it is, for the checks to refuse."""
    number = value
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value
    if isinstance(number, float) and math.isfinite(number) and number.is_integer():
        return int(number)
    return value


def _require_int(name: str, value, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"{name}: expected an integer >= {minimum}, got {value!r}")


def _require_number(name: str, value, positive: bool) -> None:
    ok = (isinstance(value, (int, float)) and not isinstance(value, bool)
          and (isinstance(value, int) or math.isfinite(value)))  # an int past float's range is finite (isfinite raised)
    if not ok or (value <= 0 if positive else value < 0):
        raise ConfigError(f"{name}: expected a {'positive' if positive else 'non-negative'} number, got {value!r}")
