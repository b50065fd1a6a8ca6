"""linscale.train.settings without training: each bad training setting is one error naming its key and what
was expected, the derived quantities (accumulation, a width's LR, a run's identity), and --set's reading of
keys and values. The settings' tests that train runs are in test_train.py."""
from __future__ import annotations

import re

import pytest

import linscale.train.settings as settings_module
from linscale.config import ConfigError
from linscale.train.settings import apply_overrides

# (override on the smoke preset, the refusal): the key named is the one that is wrong, with what may stand there
UNKNOWN_KEYS = [
    ("sizes.s1.train.lrr=1", "unknown key 'lrr' in sizes.s1.train; expected one of accelerator, batch_size, "),
    ("sizes.s1.trian.lr=1", "unknown key 'trian' in sizes.s1; expected one of chunk_size, "),
    ("sizes.s9.n_layr=1", "unknown key 'n_layr' in sizes.s9; expected one of chunk_size, "),
    ("arch_overrides.tnl.s1.d_modl=3", "unknown key 'd_modl' in arch_overrides.tnl.s1; expected one of chunk_size, "),
    ("train.lrr.x=1", "unknown key 'lrr' in train; expected one of accelerator, "),
    ("model.foo.bar=1", "unknown key 'foo' in model; expected one of chunk_size, "),
    ("nonsense.key=1", "unknown key 'nonsense' in the preset; expected one of ablations, "),
]


@pytest.mark.parametrize("override, message", UNKNOWN_KEYS, ids=[o for o, _ in UNKNOWN_KEYS])
def test_an_unknown_key_is_named_where_it_is_wrong(override, message):
    """`--set sizes.s1.train.lrr=1` (s1 has no train block) was "unknown key 'train' in sizes.s1", with a list
    of choices that left out train; `--set arch_overrides.tnl.s1.d_modl=3` was "unknown key 'arch_overrides'"."""
    with pytest.raises(ConfigError, match=f"^--set {re.escape(override.split('=')[0])}: {re.escape(message)}"):
        apply_overrides(settings_module.load_preset("smoke"), [override])


def test_sizes_own_train_block_lists_training_settings_and_a_sizes_fields_include_train():
    preset = settings_module.load_preset("smoke")
    with pytest.raises(ConfigError) as refused:
        apply_overrides(preset, ["sizes.s1.train.lrr=1"])
    choices = str(refused.value).split("expected one of ")[1].split(", ")
    assert set(choices) == set(settings_module.TRAIN_FIELDS)
    with pytest.raises(ConfigError) as refused:
        apply_overrides(preset, ["sizes.s1.trian=1"])
    assert "train" in str(refused.value).split("expected one of ")[1].split(", ")
