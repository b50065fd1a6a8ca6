"""Presets: plain YAML files describing a grid of runs (architectures x sizes) and how to train them.

``paper.yaml`` holds the paper's 24 Table 7 configurations (``paper_table7.csv`` the table itself, for
checks). ``load_preset(name)`` reads a preset; ``model_configs(preset)`` expands its grid into
:class:`~linscale.config.ModelConfig` objects.

A grid of one's own is a YAML file anywhere: ``linscale sweep`` reads it by path, and ``linscale study``
and ``linscale book`` take the path too and then read it by its name (the file's stem: its tables go to
``results/<name>/``), from the folders named in ``LINSCALE_PRESETS`` (:data:`USER_PRESETS_ENV`), which
they extend for themselves and for the chapters' kernels and training workers they start.
"""
from __future__ import annotations

import math
import os
from importlib import resources
from pathlib import Path

from linscale.config import ARCHITECTURES, ConfigError, ModelConfig, parse_yaml

PRESET_DIR = Path(str(resources.files(__name__)))
# folders (os.pathsep-separated) of one's own presets, read by name after linscale's own
USER_PRESETS_ENV = "LINSCALE_PRESETS"


def _user_preset_dirs() -> list[Path]:
    return [Path(folder) for folder in os.environ.get(USER_PRESETS_ENV, "").split(os.pathsep) if folder]


def _is_yaml_path(argument) -> bool:
    return str(argument).lower().endswith((".yaml", ".yml"))


def _preset_files(folder: Path) -> list[Path]:
    """The preset files in ``folder`` (.yaml or .yml, in any case), sorted; none where it is no folder."""
    return sorted(p for p in folder.iterdir() if p.is_file() and _is_yaml_path(p)) if folder.is_dir() else []


def available_presets() -> list[str]:
    return sorted({p.stem for folder in (PRESET_DIR, *_user_preset_dirs()) for p in _preset_files(folder)})


def _named_preset_file(name: str) -> Path | None:
    """The file of the preset called ``name``: linscale's own, else the first in LINSCALE_PRESETS."""
    own = PRESET_DIR / f"{name}.yaml"
    if own.exists():
        return own
    return next((p for folder in _user_preset_dirs() for p in _preset_files(folder) if p.stem == name), None)


def _not_folders_note() -> str:
    """What is wrong with LINSCALE_PRESETS, where it names a path that is not a folder (it was passed over
    without a word, and the preset looked for there was only 'unknown')."""
    wrong = [str(folder) for folder in _user_preset_dirs() if not folder.is_dir()]
    return f"; {USER_PRESETS_ENV} names {', '.join(wrong)}, not a folder" if wrong else ""


def preset_argument(name: str) -> str:
    """What to pass as ``--preset`` for the preset called ``name``: the name of linscale's own, the path of
    one's own file (``linscale study`` takes that by path), else the name as given."""
    found = _named_preset_file(name)
    return str(found) if found is not None and found.parent != PRESET_DIR else name


def named_preset(argument: str, option: str = "--preset") -> str:
    """The name to read the preset ``argument`` by: a path to a file of one's own is made readable by its
    name (:func:`use_preset_file`); a name is returned as given."""
    if _is_yaml_path(argument):
        return use_preset_file(argument, option)
    _refuse_folder(argument, option)
    return argument


def _refuse_folder(argument: str | Path, option: str) -> None:
    """A folder given where a preset's name was looked for (`--preset /tmp`) is named a folder, not "an
    unknown preset '/tmp'"; a folder that happens to share a preset's name leaves the name to be read."""
    if _named_preset_file(str(argument)) is None and Path(argument).is_dir():
        raise ConfigError(f"{option}: {argument} is a folder; expected a preset's .yaml file or one of "
                          f"{', '.join(available_presets())}")


def use_preset_file(path: str | Path, option: str = "--preset") -> str:
    """Make the preset file ``path`` readable by its name (the file's stem) in this process and in the
    processes it starts (the chapters' kernels, training workers): its folder joins LINSCALE_PRESETS,
    first (linscale's own preset file, given by its path, is read by its name as it is). Returns the name; a
    study's tables go to ``results/<name>/``."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{option}: {path} is a folder; expected a preset's .yaml file" if path.is_dir() else
                          f"{option}: file {path} does not exist")
    name, own = path.stem, PRESET_DIR / f"{path.stem}.yaml"
    if own.exists():
        if path.resolve() == own.resolve():
            return name  # linscale's own preset file by its path: that preset, read by its name
        raise ConfigError(f"{option}: {path} has the name of linscale's own preset {name!r} (its tables would be "
                          "taken for that study's); rename the file")
    load_preset(path)  # its shape checked before it is used by name
    folder = str(path.resolve().parent)
    others = [str(f) for f in _user_preset_dirs() if str(f) != folder]
    os.environ[USER_PRESETS_ENV] = os.pathsep.join([folder, *others])
    return name


def paper_table7():
    """The paper's Table 7 as committed (``paper_table7.csv``): size, arch, shape, parameters, FLOPs a step."""
    import pandas as pd

    return pd.read_csv(PRESET_DIR / "paper_table7.csv")


def load_preset(name_or_path: str | Path) -> dict:
    """A preset by name (``paper``) or by path to a YAML file."""
    path = Path(name_or_path)
    if not _is_yaml_path(path):
        _refuse_folder(name_or_path, "preset")
        path = _named_preset_file(str(name_or_path))
        if path is None:
            raise ConfigError(f"preset: unknown preset {str(name_or_path)!r}; expected one of "
                              f"{', '.join(available_presets())} or a path to a .yaml file (a preset of your own "
                              f"is read by name from the folders in {USER_PRESETS_ENV}{_not_folders_note()})")
    elif path.is_dir():
        raise ConfigError(f"preset: {path} is a folder; expected a preset's .yaml file")
    elif not path.exists():
        raise ConfigError(f"preset: file {path} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"preset: {path}: not UTF-8 text (byte {err.object[err.start]:#04x} at position "
                          f"{err.start}); expected a YAML file") from None
    preset = parse_yaml(text, f"preset: {path}")
    if not isinstance(preset, dict) or "sizes" not in preset or "archs" not in preset:
        raise ConfigError(f"preset: {path} must be a mapping with at least 'archs' and 'sizes'")
    # A preset is known by its file's name: the study's results/<name>/, the sweep's runs/<name>/ and the
    # runs tables' preset column. A `name:` of its own split them (a copy of cpu.yaml that kept its name
    # went to runs/cpu, beside the cpu study's runs, while its study went to results/<file name>).
    name = preset.get("name")
    if name is None or str(name) == path.stem:  # none (or an empty `name:`), or the stem as YAML read it (2024)
        preset["name"] = name = path.stem
    if name != path.stem:
        own = (", the name of linscale's own preset" if isinstance(name, str) and path.resolve().parent !=
               PRESET_DIR.resolve() and (PRESET_DIR / f"{name}.yaml").exists() else "")
        raise ConfigError(f"preset: {path} has name: {name}{own}; expected name: {path.stem}, its file's name "
                          "(a preset's study, sweep folder and tables take the name it is read by)")
    return preset


def data_vocab_size(preset: dict) -> int:
    """The vocabulary of a preset's data when its ``model`` block does not fix one: the synthetic
    language's word count, or a text source's BPE ``vocab_size`` (linscale.data)."""
    data = preset.get("data") or {}
    source = data.get("source", "synthetic")
    if source == "synthetic":
        from linscale.data.synthetic import LanguageSpec, SyntheticLanguage

        return SyntheticLanguage(LanguageSpec.from_dict(data)).vocab_size
    if source == "text":
        return int(data.get("vocab_size", 8192))  # linscale.data.text's default BPE size
    raise ConfigError(f"model.vocab_size: not given, and data source {source!r} does not define one")


def split_size(size: str, shape) -> tuple[dict, dict]:
    """A size entry of a preset, ``{n_layer, d_model, n_head, ..., train: {tokens, lr, ...}}``, as (model
    fields, training overrides): a size may set its own token budget or learning rate (a design with
    compute-matched run ends gives each size its own ``tokens``)."""
    if not isinstance(shape, dict):
        raise ConfigError(f"sizes.{size}: expected a mapping of model fields, got {shape!r}")
    fields = dict(shape)
    train = fields.pop("train", None)
    train = {} if train is None else train  # an empty `train:` in YAML; 0, "" or [] are mistakes, named below
    if not isinstance(train, dict):
        raise ConfigError(f"sizes.{size}.train: expected a mapping of training settings, got {train!r}")
    return fields, dict(train)


def model_configs(preset: dict) -> list[ModelConfig]:
    """Every (architecture, size) model of a preset's grid, in preset order (the vocabulary comes
    from the data when the preset does not give ``model.vocab_size``)."""
    configs, vocab = [], None
    for arch in preset["archs"]:
        for size, shape in preset["sizes"].items():
            fields = {**(preset.get("model") or {}), **split_size(size, shape)[0],
                      **((preset.get("arch_overrides") or {}).get(arch) or {}).get(size, {})}
            if "vocab_size" not in fields:
                vocab = vocab or data_vocab_size(preset)
                fields["vocab_size"] = vocab
            try:  # named as `linscale sweep` names it (train.run.plan_runs), for accounting and the design check
                configs.append(ModelConfig.from_dict({**fields, "arch": arch, "name": str(size)}))
            except ConfigError as err:
                raise ConfigError(f"sizes.{size} ({arch}): {err}") from None
    return configs


# The design block: the reference law and noise of a preset's design check (linscale.design), checked here,
# where a preset is resolved (linscale.train.settings), below the design check that uses them
LAW_FIELDS = ("E", "A", "B", "alpha", "beta")
NOISE_FIELDS = ("run", "checkpoint")


def check_design_block(design) -> None:
    """A preset's ``design`` block, checked where the preset is resolved: ``law`` (the fields of
    :data:`LAW_FIELDS`, or one such mapping per architecture) and ``noise`` (relative sds of
    :data:`NOISE_FIELDS`). A misspelled key was passed over, and a negative exponent surfaced as a
    complex number deep in the simulation; a nan or an inf (YAML and --set read .nan, nan and inf as
    numbers) ran on without a word."""
    if design is None:
        return
    if not isinstance(design, dict):
        raise ConfigError(f"design: expected a mapping with law and noise, got {design!r}")
    for key in design:
        if key not in ("law", "noise"):
            raise ConfigError(f"design.{key}: unknown key; expected law or noise")

    def numbers(block, where, fields, positive):
        if not isinstance(block, dict):
            raise ConfigError(f"{where}: expected a mapping of {', '.join(fields)}, got {block!r}")
        for key, value in block.items():
            if key not in fields:
                raise ConfigError(f"{where}.{key}: unknown key; expected one of {', '.join(fields)}")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or (
                    value < 0 or (positive and key != "E" and value == 0)):
                raise ConfigError(f"{where}.{key}: expected a {'positive' if positive else 'non-negative'} number, "
                                  f"got {value!r}")

    law = design.get("law")
    if law is not None:
        if not isinstance(law, dict):
            raise ConfigError(f"design.law: expected a mapping of {', '.join(LAW_FIELDS)}, got {law!r}")
        numbers({k: v for k, v in law.items() if k not in ARCHITECTURES}, "design.law", LAW_FIELDS, True)
        for arch in (k for k in law if k in ARCHITECTURES):
            numbers(law[arch], f"design.law.{arch}", LAW_FIELDS, True)
    if design.get("noise") is not None:
        numbers(design["noise"], "design.noise", NOISE_FIELDS, False)
