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



@pytest.mark.parametrize("override", ["design.law.alpha=nan", "design.law.tnl.A=.inf", "design.noise.run=.nan"])
def test_a_design_number_that_is_not_finite_is_named(override):
    """--set and YAML read nan, .nan and inf as numbers: passed as positive, a nan exponent ran the design
    check on to an unrelated error about compute budgets."""
    from linscale.train.settings import apply_overrides

    key = override.split("=")[0]
    design = apply_overrides({"design": {"law": {"E": 1.0}, "noise": {"run": 0.1}}}, [override])["design"]
    expected = rf"^{re.escape(key)}: expected a (positive|non-negative) number, got (nan|inf)$"
    with pytest.raises(ConfigError, match=expected):
        check_design_block(design)
