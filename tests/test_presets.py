"""linscale.presets: which file a preset's name reads, how a grid expands into models, and the checks of its
blocks. The commands' one-line errors for bad presets are in test_cli.py and test_study.py."""
import inspect
import os
import re

import pytest

from linscale.config import ConfigError
from linscale.presets import (PRESET_DIR, USER_PRESETS_ENV, available_presets, check_design_block, data_vocab_size,
                              load_preset, model_configs, named_preset, preset_argument, split_size, use_preset_file)

SMOKE = (PRESET_DIR / "smoke.yaml").read_text()


def grid(folder, name, text=SMOKE):
    """A preset file ``name``.yaml in ``folder``: the smoke grid under its own name."""
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(text.replace("name: smoke", f"name: {name}"))
    return path


def test_linscales_own_preset_file_given_by_its_path_is_that_preset(monkeypatch):
    """`linscale study --preset linscale/presets/smoke.yaml` was refused as a file with "the name of linscale's
    own preset" and told to rename it (a file of the package); `linscale sweep` takes that path. It is that
    preset, read by its name, and LINSCALE_PRESETS is left as it was."""
    monkeypatch.setenv(USER_PRESETS_ENV, "")
    assert named_preset(str(PRESET_DIR / "smoke.yaml")) == "smoke" == use_preset_file(PRESET_DIR / "smoke.yaml")
    assert os.environ[USER_PRESETS_ENV] == ""


def test_a_file_of_ones_own_is_read_by_its_name_before_any_other_of_that_name(tmp_path, monkeypatch):
    """The given file's folder goes first in LINSCALE_PRESETS (once, however often it is given): behind
    another folder with a file of the same name, the study would have read that other grid by the name."""
    other = grid(tmp_path / "other", "mine", SMOKE.replace("archs: [llama, tnl, hgrn2, cosformer2]", "archs: [tnl]"))
    mine = grid(tmp_path / "mine", "mine")
    monkeypatch.setenv(USER_PRESETS_ENV, str(other.parent))
    assert load_preset("mine")["archs"] == ["tnl"]
    for _ in range(2):
        assert use_preset_file(mine) == "mine"
        assert os.environ[USER_PRESETS_ENV] == os.pathsep.join([str(mine.parent), str(other.parent)])
    assert load_preset("mine")["archs"] == ["llama", "tnl", "hgrn2", "cosformer2"]
    assert preset_argument("mine") == str(mine) and preset_argument("smoke") == "smoke"
    assert preset_argument("nosuch") == "nosuch" and {"mine", "smoke", "paper"} <= set(available_presets())


def test_linscales_own_preset_wins_over_a_file_of_its_name_in_ones_folders(tmp_path, monkeypatch):
    """Its name is its study's (results/smoke/): a user's smoke.yaml in LINSCALE_PRESETS must not replace it."""
    theirs = grid(tmp_path, "smoke", SMOKE.replace("archs: [llama, tnl, hgrn2, cosformer2]", "archs: [tnl]"))
    monkeypatch.setenv(USER_PRESETS_ENV, str(theirs.parent))
    assert load_preset("smoke")["archs"] == ["llama", "tnl", "hgrn2", "cosformer2"]
    assert preset_argument("smoke") == "smoke"


def test_a_file_of_the_wrong_shape_is_refused_before_its_folder_joins_the_search(tmp_path, monkeypatch):
    monkeypatch.setenv(USER_PRESETS_ENV, "")
    bad = tmp_path / "bad.yaml"
    for text in ("name: bad\nsizes: {s: {n_layer: 1, d_model: 16, n_head: 2}}\n", "name: bad\narchs: [tnl]\n",
                 "- tnl\n"):
        bad.write_text(text)
        with pytest.raises(ConfigError, match=f"^preset: {bad} must be a mapping with at least 'archs' and 'sizes'$"):
            named_preset(str(bad))
        assert os.environ[USER_PRESETS_ENV] == ""


def test_a_folder_is_refused_as_a_preset_unless_a_preset_has_its_name(tmp_path, monkeypatch):
    """`--preset /tmp` is "a folder", not an unknown preset; a folder ./smoke leaves the name smoke to be read."""
    with pytest.raises(ConfigError, match=f"^--preset: {tmp_path} is a folder; expected a preset's .yaml file or one "
                                          "of "):
        named_preset(str(tmp_path))
    (tmp_path / "smoke").mkdir()
    monkeypatch.chdir(tmp_path)
    assert named_preset("smoke") == "smoke" and load_preset("smoke")["name"] == "smoke"


def test_a_sizes_fields_come_over_the_model_block_and_an_architectures_over_both():
    preset = {"archs": ["tnl", "llama"], "model": {"n_head": 2, "n_layer": 5, "vocab_size": 97},
              "sizes": {"s": {"n_layer": 2, "d_model": 32, "n_head": 4, "train": {"tokens": 100}}},
              "arch_overrides": {"tnl": {"s": {"n_layer": 3}}}}
    tnl, llama = model_configs(preset)
    assert (tnl.arch, tnl.name, tnl.n_layer, tnl.n_head, tnl.vocab_size) == ("tnl", "s", 3, 4, 97)
    assert (llama.arch, llama.n_layer, llama.n_head) == ("llama", 2, 4)
    assert split_size("s", preset["sizes"]["s"]) == ({"n_layer": 2, "d_model": 32, "n_head": 4}, {"tokens": 100})
    assert split_size("s", {"n_layer": 2, "train": None}) == ({"n_layer": 2}, {})  # YAML's empty `train:`
    preset["sizes"]["s"]["n_head"] = 3  # 32 is not a multiple of 3: named with its size and architecture
    with pytest.raises(ConfigError, match=r"^sizes\.s \(tnl\): "):
        model_configs(preset)


@pytest.mark.parametrize("shape, message", [
    (5, "sizes.s: expected a mapping of model fields, got 5"),
    ({"n_layer": 1, "train": [1]}, "sizes.s.train: expected a mapping of training settings, got [1]"),
    ({"n_layer": 1, "train": []}, "sizes.s.train: expected a mapping of training settings, got []"),
    ({"n_layer": 1, "train": 0}, "sizes.s.train: expected a mapping of training settings, got 0"),
])
def test_a_size_of_the_wrong_shape_is_named(shape, message):
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        split_size("s", shape)


def test_a_text_grid_without_a_vocabulary_takes_the_tokenizers_default_size():
    from linscale.data.text import train_tokenizer

    default = inspect.signature(train_tokenizer).parameters["vocab_size"].default
    assert data_vocab_size({"data": {"source": "text"}}) == default
    assert data_vocab_size({"data": {"source": "text", "vocab_size": 300}}) == 300


def test_a_design_block_takes_a_zero_floor_and_zero_noise_and_refuses_a_yes_for_a_number():
    """E (the irreducible loss) and the noise may be 0, the other law fields not; true is no number."""
    check_design_block({"law": {"E": 0, "A": 1.0, "alpha": 0.3, "tnl": {"E": 0.0}},
                        "noise": {"run": 0, "checkpoint": 0.0}})
    for design, message in (({"law": {"A": 0}}, "design.law.A: expected a positive number, got 0"),
                            ({"law": {"alpha": True}}, "design.law.alpha: expected a positive number, got True"),
                            ({"noise": {"run": False}}, "design.noise.run: expected a non-negative number, got False"),
                            ({"noise": {"run": -0.1}}, "design.noise.run: expected a non-negative number, got -0.1")):
        with pytest.raises(ConfigError, match=f"^{message}$"):
            check_design_block(design)


@pytest.mark.parametrize("override", ["design.law.alpha=nan", "design.law.tnl.A=.inf", "design.noise.run=.nan"])
def test_a_design_number_that_is_not_finite_is_named(override):
    """YAML reads .nan and .inf as numbers: passed as positive, a nan exponent ran the design check on to an
    unrelated error about compute budgets. A bare nan (--set keeps it as the word) is refused as well."""
    from linscale.train.settings import apply_overrides

    key = override.split("=")[0]
    design = apply_overrides({"design": {"law": {"E": 1.0}, "noise": {"run": 0.1}}}, [override])["design"]
    expected = rf"^{re.escape(key)}: expected a (positive|non-negative) number, got '?(nan|inf)'?$"
    with pytest.raises(ConfigError, match=expected):
        check_design_block(design)
