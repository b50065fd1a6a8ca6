"""linscale.train.settings without training: each bad training setting is one error naming its key and what
was expected, the derived quantities (accumulation, a width's LR, a run's identity), and --set's reading of
keys and values. The settings' tests that train runs are in test_train.py."""
from __future__ import annotations

import math
import re

import pytest

import linscale.train.settings as settings_module
from linscale.config import ConfigError
from linscale.train.settings import TrainSettings, apply_overrides, parse_override, resolve_preset

SMALL = dict(seq_len=8, batch_size=4, tokens=8 * 4 * 100)  # 100 steps of 32 tokens


# (field, bad value, the whole error): a check dropped let the value through to an error far from its key (a
# zero seq_len divided by zero), to a run that silently trained otherwise (a negative grad_clip), or to none
BAD_SETTINGS = [
    ("seq_len", 0, "train.seq_len: expected an integer >= 1, got 0"),
    ("batch_size", True, "train.batch_size: expected an integer >= 1, got True"),
    ("seed", -1, "train.seed: expected an integer >= 0, got -1"),
    ("micro_batch_size", 0, "train.micro_batch_size: expected an integer >= 1, got 0"),
    ("warmup_steps", -1, "train.warmup_steps: expected an integer >= 0, got -1"),
    ("warmup_steps", 2.5, "train.warmup_steps: expected an integer >= 0, got 2.5"),
    ("eps", 0, "train.eps: expected a positive number, got 0"),
    ("lr", math.nan, "train.lr: expected a positive number, got nan"),
    ("lr", "fast", "train.lr: expected a number, got 'fast'"),
    ("checkpoint_start", 0, "train.checkpoint_start: expected a fraction in (0, 1], got 0"),
    ("decay_fraction", 1.5, "train.decay_fraction / train.min_lr_ratio: expected fractions in [0, 1]"),
    ("min_lr_ratio", 2, "train.decay_fraction / train.min_lr_ratio: expected fractions in [0, 1]"),
    ("grad_clip", -1.0, "train.grad_clip: expected a non-negative number, got -1.0"),
    ("grad_clip", [1], "train.grad_clip: expected a non-negative number, got [1]"),
    ("betas", [0.9, 1.0], "train.betas: expected two numbers in [0, 1), got (0.9, 1.0)"),
    ("betas", [False, 0.9], "train.betas: expected two numbers in [0, 1), got (False, 0.9)"),  # YAML's false: no 0
    ("precision", "fp8", "train.precision: 'fp8' is not one of auto, 32-true, bf16-mixed, 16-mixed, bf16-true"),
    ("exports", True, "train.exports: expected a count >= 0 or 'all', got True"),
    ("exports", -1, "train.exports: expected a count >= 0 or 'all', got -1"),
    ("tokens", 31, "train.tokens: 31 tokens is less than one step of batch_size x seq_len = 32 tokens"),
    ("tokens", 10**400, "train.tokens: 1.00000e+400 tokens is 3.12e+398 steps of batch_size x seq_len = 32 tokens; "
                        "expected at most 1e+12 steps"),  # past float's range: an OverflowError traceback
    ("keep_checkpoints", 5, "train.keep_checkpoints: expected a list of record steps, got 5"),
]


@pytest.mark.parametrize("field, value, message", BAD_SETTINGS, ids=[f"{f}={v!r}" for f, v, _ in BAD_SETTINGS])
def test_a_bad_training_setting_is_one_error_naming_its_key(field, value, message):
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        TrainSettings(**{**SMALL, field: value})


def test_the_edges_the_checks_allow_are_allowed():
    """The other side of each refusal above: what a preset may write."""
    edge = TrainSettings(**SMALL, seed=0, warmup_steps=0, checkpoint_start=1, decay_fraction=1, min_lr_ratio=0,
                         grad_clip=None, betas=[0.0, 0.99], exports="all", keep_checkpoints=(100,))
    assert edge.betas == (0.0, 0.99) and edge.keep_checkpoints == [100] and edge.checkpoint_steps() == [100]
    assert TrainSettings(**SMALL, grad_clip=0).grad_clip == 0  # 0 disables clipping
    assert TrainSettings(**{**SMALL, "tokens": 32}).total_steps == 1
    read = TrainSettings(**SMALL, lr="1e-3", eps="1e-6")  # YAML 1.1 reads 1e-3 (no dot) as text
    assert (read.lr, read.eps) == (1e-3, 1e-6)
    # an integer written as a number of another form: --set train.batch_size=1e3 was refused as "1000.0"
    whole = TrainSettings(**{**SMALL, "batch_size": "4e0", "seq_len": 8.0}, warmup_steps="1e1", threads=2.0)
    assert (whole.batch_size, whole.seq_len, whole.warmup_steps, whole.threads) == (4, 8, 10, 2)
    assert all(type(v) is int for v in (whole.batch_size, whole.seq_len, whole.warmup_steps, whole.threads))
    assert resolve_preset("smoke", ["train.batch_size=1e3"])["train"]["batch_size"] == 1000
    for value, shown in (("2.5", "'2.5'"), ("1e400", "'1e400'"), (math.inf, "inf")):  # still refused, as written
        with pytest.raises(ConfigError, match=f"^train.batch_size: expected an integer >= 1, got {shown}$"):
            TrainSettings(**{**SMALL, "batch_size": value})


def test_the_accumulation_splits_the_batch_over_devices_or_names_what_does_not_divide():
    settings = TrainSettings(**{**SMALL, "batch_size": 12})
    assert settings.accumulation(1) == (12, 1) and settings.accumulation(3) == (4, 1)
    assert TrainSettings(**{**SMALL, "batch_size": 12, "micro_batch_size": 2}).accumulation(3) == (2, 2)
    with pytest.raises(ConfigError, match=r"^train\.batch_size: 12 sequences do not split over 5 devices$"):
        settings.accumulation(5)
    with pytest.raises(ConfigError, match=r"^train\.micro_batch_size: 3 does not divide the per-device batch 4 "
                                          r"\(batch_size 12 over 3 devices\)$"):
        TrainSettings(**{**SMALL, "batch_size": 12, "micro_batch_size": 3}).accumulation(3)


def test_a_widths_settings_resolve_the_lr_rule_into_the_run_of_that_lr():
    """for_width leaves no rule behind (the resolved run is the one with that LR written out, identity and
    all), and without a reference width it is the settings themselves."""
    rule = TrainSettings(**SMALL, lr=1e-3, lr_reference_width=32, lr_width_exponent=0.5)
    wide = rule.for_width(128)
    assert wide.lr == pytest.approx(1e-3 * 0.5) and wide.lr_reference_width is None
    assert wide.identity() == TrainSettings(**SMALL, lr=wide.lr).identity()
    plain = TrainSettings(**SMALL)
    assert plain.for_width(128) is plain


def test_a_runs_identity_leaves_out_how_it_is_executed_and_which_checkpoints_are_kept():
    base = TrainSettings(**SMALL)
    executed = TrainSettings(**SMALL, accelerator="cpu", devices=2, num_nodes=2, strategy="ddp", threads=3,
                             num_workers=1, keep_checkpoints=[100])
    assert executed.identity() == base.identity()
    assert TrainSettings(**SMALL, seed=1).identity() != base.identity()
    assert set(base.to_dict()) - set(base.identity()) == set(TrainSettings.EXECUTION)


def test_set_reads_yaml_values_and_refuses_an_empty_key_part():
    assert parse_override("train.lr=1e-3") == (["train", "lr"], 1e-3)
    assert parse_override("train.tokens=3e9")[1] == 3e9 and isinstance(parse_override("train.tokens=3e9")[1], float)
    assert parse_override("train.seed=7")[1] == 7 and parse_override("archs=[tnl, llama]")[1] == ["tnl", "llama"]
    assert parse_override("train.lr=-2.5E+2")[1] == -250.0 and parse_override("train.lr=.5e-3")[1] == 5e-4
    # only an exponent YAML 1.1 leaves as text is read as a number: a word stays the word it is
    words = ("nan", "inf", "Infinity")
    assert [parse_override(f"description={word}")[1] for word in words] == list(words)
    # nothing after '=' is empty text, not YAML's null: `--set train.grad_clip=` does not turn clipping off
    assert parse_override("train.grad_clip=") == (["train", "grad_clip"], "")
    with pytest.raises(ConfigError, match=r"^train\.grad_clip: expected a number, got ''$"):
        resolve_preset("smoke", ["train.grad_clip="])
    for text in ("train..lr=1", ".lr=1", "train.=1", "=1"):
        with pytest.raises(ConfigError, match="expected KEY=VALUE with a dotted KEY"):
            parse_override(text)


# (override on the smoke preset, the refusal): the key named is the one that is wrong, with what may stand there
UNKNOWN_KEYS = [
    ("sizes.s1.train.lrr=1", "unknown key 'lrr' in sizes.s1.train; expected one of accelerator, batch_size, "),
    ("sizes.s1.trian.lr=1", "unknown key 'trian' in sizes.s1; expected one of chunk_size, "),
    ("sizes.s9.n_layr=1", "unknown key 'n_layr' in sizes.s9; expected one of chunk_size, "),
    ("arch_overrides.tnl.s1.d_modl=3", "unknown key 'd_modl' in arch_overrides.tnl.s1; expected one of chunk_size, "),
    ("train.lrr.x=1", "unknown key 'lrr' in train; expected one of accelerator, "),
    ("train.warmup_steps.x=1", "unknown key 'x' in train.warmup_steps"),  # a setting is no mapping
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


@pytest.mark.parametrize("override, message", [
    ("archs=[]", "archs: expected a non-empty list of architectures"),
    ("ablations=[seeds, sedes]", "ablations: unknown ablation(s) sedes; expected some of aspect, context, seeds, "
                                 "size_seeds"),
    ("ablations=[1]", "ablations: expected a list of ablation names (some of aspect, context, seeds, size_seeds), "
                      "got [1]"),
    ("arch_overrides.tnl.s9={n_layer: 3}", "arch_overrides.tnl.s9: no such size; sizes are s1, s2"),
    ("arch_overrides.tnll.s1={n_layer: 3}", "arch_overrides.tnll: no such architecture; expected one of llama, tnl, "
                                            "hgrn2, cosformer2"),
    ("train.seq_len=0", "train.seq_len: expected an integer >= 1, got 0"),
])
def test_a_resolved_preset_refuses_what_no_run_would_read(override, message):
    """Read by the study only (ablations) or applied to no model (an override of a size or architecture that
    is not there), these passed resolve_preset: a typo went as far as the study's ablations, or trained the
    default without a word."""
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        resolve_preset("smoke", [override])
    assert resolve_preset("smoke", ["ablations=[seeds]", "archs=[tnl]"])["ablations"] == ["seeds"]


def test_a_preset_train_block_is_checked_even_where_every_size_sets_that_key():
    """The sizes' own settings win, but a bad value in the train block itself is still refused."""
    preset = settings_module.load_preset("smoke")
    preset["sizes"] = {name: {**shape, "train": {"lr": 1e-3}} for name, shape in preset["sizes"].items()}
    preset["train"] = {**preset["train"], "lr": -1}
    with pytest.raises(ConfigError, match=r"^train\.lr: expected a positive number, got -1$"):
        resolve_preset(preset)


def test_a_note_of_a_partly_masked_override_is_printed_once_however_often_the_preset_is_resolved(monkeypatch,
                                                                                                   capsys):
    monkeypatch.setattr(settings_module, "_NOTED", set())
    for _ in range(3):  # a command resolves its preset several times (checks, plan, sweep)
        resolve_preset("smoke", ["sizes.s1.train.tokens=20480", "train.tokens=30720"])
    assert capsys.readouterr().err.count("note: train.tokens: sizes s1 set their own") == 1
