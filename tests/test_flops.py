"""Accounting against the paper's Table 7 (non-embedding parameters, PFLOPs per step)."""
import re

import pandas as pd
import pytest
import torch

from linscale import flops
from linscale.config import ARCHITECTURES, ConfigError, ModelConfig
from linscale.models import build_model
from linscale.presets import PRESET_DIR, load_preset, model_configs

TABLE7 = pd.read_csv(PRESET_DIR / "paper_table7.csv")
PAPER = model_configs(load_preset("paper"))


def table7_row(config):
    return TABLE7[(TABLE7["size"] == config.name) & (TABLE7.arch == config.arch)].iloc[0]


def test_paper_preset_has_24_configs():
    assert len(PAPER) == 24 and len(TABLE7) == 24
    assert {(c.name, c.arch) for c in PAPER} == set(zip(TABLE7["size"], TABLE7.arch))


def counted_params(model) -> int:
    """The built model's non-embedding parameters that the paper's N counts: not the norms' gains nor
    cosFormer2's LRPE angles."""
    uncounted = sum(p.numel() for name, p in model.named_parameters()
                    if (p.ndim == 1 and "norm" in name.rsplit(".", 2)[-2]) or name.endswith(".theta"))
    return model.num_params(non_embedding=True) - uncounted


@pytest.mark.parametrize("config", PAPER, ids=lambda c: f"{c.arch}-{c.name}")
def test_parameter_counts_match_table7(config):
    """Instantiated on the meta device (no memory), within 1% of Table 7."""
    with torch.device("meta"):
        model = build_model(config)
    expected = table7_row(config).params_M * 1e6
    assert model.num_params(non_embedding=True) == pytest.approx(expected, rel=0.01)
    assert flops.non_embedding_params(config) == pytest.approx(expected, rel=0.01)


@pytest.mark.parametrize("config", PAPER, ids=lambda c: f"{c.arch}-{c.name}")
def test_flops_per_step_match_table7(config):
    """Within 2%, or within the table's printed precision (one decimal: 0.5 may be 0.45..0.55)."""
    expected = table7_row(config).pflops_per_step
    got = flops.flops_per_step(config, seq_len=8192, batch_size=480) / 1e15
    assert abs(got - expected) <= max(0.02 * expected, 0.05 + 1e-9), (got, expected)


def test_only_softmax_cost_grows_with_context():
    for arch in ["llama", "tnl", "hgrn2", "cosformer2"]:
        c = ModelConfig(arch=arch, n_layer=4, d_model=256, n_head=4, vocab_size=100)
        ratio = flops.flops_per_token(c, 8192) / flops.flops_per_token(c, 512)
        assert (ratio > 1.5) if arch == "llama" else ratio == 1.0


def test_actual_ffn_accounting_differs_only_when_g_is_not_8_thirds_d():
    c = ModelConfig(arch="tnl", n_layer=4, d_model=768, n_head=6, vocab_size=100)  # g = 2048 = 8/3·768
    assert flops.flops_per_token(c, 1024, ffn="actual") == pytest.approx(flops.flops_per_token(c, 1024))
    wide = c.replace(d_ffn=4 * 768)
    assert flops.flops_per_token(wide, 1024, ffn="actual") > flops.flops_per_token(wide, 1024)
    assert flops.training_flops(c, 1e9, 1024) == pytest.approx(1e9 * flops.flops_per_token(c, 1024))


def test_1b_row_follows_table7_counts_with_12_heads():
    """Table 7 prints 16 heads for 1B, but its own counts imply 12 (head width 128, as at every other size):
    with 12 heads every 1B parameter count is within 0.1% of the table and its PFLOPs per step equal the
    table's one printed decimal (with 16 the linear models' PFLOPs are 1-1.4% low and TNL's count 0.35% low)."""
    for config in (c for c in PAPER if c.name == "1B"):
        assert config.n_head == 12
        row = table7_row(config)
        assert flops.non_embedding_params(config) == pytest.approx(row.params_M * 1e6, rel=1e-3)
        got = flops.flops_per_step(config, 8192, 480) / 1e15
        assert got == pytest.approx(row.pflops_per_step, rel=2.5e-3 + 0.05 / row.pflops_per_step)


def test_accounting_command_prints_table7_beside_ours(capsys):
    """`linscale accounting --table7`: the README's one-line check of Table 7, printed row by row with the
    paper's numbers and the relative differences; other presets and other contexts get a one-line error."""
    from linscale.cli import main

    assert main(["accounting", "--table7"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header, rows = lines[0].split(), [line.split() for line in lines[1:]]
    assert {"params_M_paper", "pflops_per_step_paper", "params_rel_diff", "pflops_rel_diff"} <= set(header)
    assert len(rows) == 24
    by_name = {(row[0], row[1]): dict(zip(header, row)) for row in rows}
    tnl_1b = by_name[("1B", "tnl")]
    assert tnl_1b["n_head"] == "12" and tnl_1b["params_M_paper"] == "918.6"
    for row in by_name.values():  # the printed differences are those of the printed numbers (to their rounding)
        paper = float(row["params_M_paper"])
        assert float(row["params_rel_diff"].rstrip("%")) == pytest.approx(
            100 * (float(row["params_M"]) / paper - 1), abs=100 * 0.005 / paper + 1e-3)
    for extra, expected in ((["--preset", "cpu"], "--table7: preset cpu"), (["--seq-len", "1024"], "--seq-len")):
        assert main(["accounting", "--table7", *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert expected in err and len(err.splitlines()) == 1, err


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_every_architecture_is_built_counted_and_drawn(arch):
    """What the README's "Where to change what" asks of a new architecture, checked for each one in
    linscale.config.ARCHITECTURES (a helper adding a fifth found its parameter count 6% short without a
    word, its FLOPs a KeyError and its colour missing only in the first figure): the Table 1 count is
    the built model's, exactly, less its norm gains and LRPE angles (which neither Table 1 nor Table 7
    counts), its FLOPs have a formula, and every figure can draw it."""
    from linscale import plotting
    from linscale.models import BUILDERS

    config = ModelConfig(arch=arch, n_layer=2, d_model=32, n_head=4, vocab_size=97)
    assert arch in BUILDERS
    model = build_model(config)
    assert flops.non_embedding_params(config) == counted_params(model)
    assert flops.flops_per_token(config, 64) > 0
    assert {arch} <= set(plotting.ARCH_LABELS) & set(plotting.ARCH_COLORS) & set(plotting.ARCH_MARKERS)


def test_the_papers_linear_models_are_linear_architectures():
    """The claims judge the paper's three linear models (findings.rules.LINEAR, the context ablation's
    architectures); each must also be a linear architecture to the models and FLOP formulas."""
    from linscale.config import LINEAR_ARCHITECTURES, PAPER_LINEAR_ARCHITECTURES
    from linscale.findings import rules
    from linscale.study import CONTEXT_ARCHS

    assert rules.LINEAR == CONTEXT_ARCHS == PAPER_LINEAR_ARCHITECTURES
    assert "llama" not in PAPER_LINEAR_ARCHITECTURES and set(PAPER_LINEAR_ARCHITECTURES) <= set(LINEAR_ARCHITECTURES)
    assert all(ModelConfig(arch=arch, n_layer=1, d_model=8, n_head=2, vocab_size=11).is_linear
               for arch in PAPER_LINEAR_ARCHITECTURES)


def test_an_architecture_without_a_flops_formula_is_named():
    config = ModelConfig(arch="tnl", n_layer=2, d_model=32, n_head=4, vocab_size=97)
    object.__setattr__(config, "arch", "retnet")  # past the config's own check, as a half-added architecture is
    with pytest.raises(ValueError, match="no FLOPs formula for architecture 'retnet'"):
        flops.flops_per_token(config, 64)
    with pytest.raises(ValueError, match="no FLOPs formula for architecture 'retnet'"):  # not a LLaMA's count
        flops.non_embedding_params(config)


def test_a_half_added_architecture_is_refused_when_its_runs_are_planned(monkeypatch):
    """Registered as a model but given no FLOPs formula: a dry run listed its runs, and training failed at
    its first step with a traceback."""
    import linscale.config
    from linscale.config import ConfigError
    from linscale.train.run import plan_runs

    monkeypatch.setattr(linscale.config, "ARCHITECTURES", (*linscale.config.ARCHITECTURES, "retnet"))
    with pytest.raises(ConfigError, match=r"^sizes\.s1 \(retnet\): linscale\.flops: no FLOPs formula for "
                                          r"architecture 'retnet'"):
        plan_runs("smoke", ["archs=[tnl,retnet]"])
    assert len(plan_runs("smoke", ["archs=[tnl]"])[1]) > 0


# ---------------------------------------------------------------------------- accounting tables (linscale.accounting)


def test_the_accounting_table_counts_at_the_asked_context_and_batch_and_counts_parameters_two_ways():
    """`linscale accounting --seq-len/--batch-size` must change the FLOPs columns (ignored, the table silently
    showed the preset's own context and batch), and params_model is the instantiated model, params_formula the
    Table 1 formula: the two columns are how the accounting is checked against a real model."""
    from linscale.accounting import accounting_table

    preset = load_preset("smoke")
    configs = {(c.name, c.arch): c for c in model_configs(preset)}
    own = accounting_table(preset)
    table = accounting_table(preset, seq_len=4 * preset["train"]["seq_len"], batch_size=3)
    assert len(table) == len(configs) == 8
    for row in table.itertuples():
        config = configs[(row.size, row.arch)]
        with torch.device("meta"):
            model = build_model(config)
        assert row.params_model == model.num_params(non_embedding=True)
        assert row.params_formula == flops.non_embedding_params(config)
        assert row.flops_per_token == pytest.approx(flops.flops_per_token(config, 128), rel=1e-12, abs=0)
        assert row.pflops_per_step == pytest.approx(flops.flops_per_step(config, 128, 3) / 1e15, rel=1e-12, abs=0)
    assert (table["params_model"] != table["params_formula"]).any()  # not one count written twice
    llama = table["arch"] == "llama"  # softmax attention's cost grows with the context, the others' does not
    assert (table["flops_per_token"][llama] > own["flops_per_token"][llama]).all()
    assert (table["flops_per_token"][~llama] == own["flops_per_token"][~llama]).all()
    same_context = accounting_table(preset, batch_size=3)
    assert same_context["pflops_per_step"].to_numpy() == pytest.approx(
        own["pflops_per_step"].to_numpy() * 3 / 8, rel=1e-12, abs=0)


def test_table7_comparison_differences_are_ours_over_the_papers_minus_one():
    """The README's Table 7 check reads params_rel_diff as 'ours relative to the paper': paper/ours - 1, or a
    difference in millions, would print the wrong sign or scale."""
    from linscale.accounting import table7_comparison

    table = table7_comparison("paper")
    assert len(table) == 24
    for row in table.itertuples():
        config = next(c for c in PAPER if (c.name, c.arch) == (row.size, row.arch))
        assert row.params_M == pytest.approx(flops.non_embedding_params(config) / 1e6, rel=1e-12, abs=0)
        assert row.params_M_paper == table7_row(config).params_M
        assert row.pflops_per_step_paper == table7_row(config).pflops_per_step
    assert table["params_rel_diff"].to_numpy() == pytest.approx(
        (table["params_M"] / table["params_M_paper"] - 1).to_numpy(), rel=1e-12, abs=0)
    assert table["pflops_rel_diff"].to_numpy() == pytest.approx(
        (table["pflops_per_step"] / table["pflops_per_step_paper"] - 1).to_numpy(), rel=1e-12, abs=0)


def test_a_flops_per_token_curve_is_one_size_for_every_architecture():
    """The context chapter's curve of one size: rows of other sizes would draw several models as one."""
    from linscale.accounting import flops_per_token_curve

    curve = flops_per_token_curve("paper", "410M", [2048])
    assert len(curve) == 4 and set(curve["size"]) == {"410M"} and set(curve["arch"]) == set(ARCHITECTURES)
    assert set(curve["seq_len"]) == {2048}
    for row in curve.itertuples():
        config = next(c for c in PAPER if (c.name, c.arch) == ("410M", row.arch))
        assert row.flops_per_token == pytest.approx(flops.flops_per_token(config, 2048), rel=1e-12, abs=0)


def test_a_flops_per_token_curve_finds_a_size_named_by_a_number_and_names_the_sizes_otherwise():
    """YAML reads a size named 1 as a number: the curve of size 1 is that size's, given as 1 or as '1'."""
    from linscale.accounting import flops_per_token_curve
    from linscale.config import ConfigError

    smoke = load_preset("smoke")
    preset = {**smoke, "sizes": {1: smoke["sizes"]["s1"], 2: smoke["sizes"]["s2"]}}
    for size in (1, "1"):
        curve = flops_per_token_curve(preset, size, [32, 64])
        assert len(curve) == 8 and set(curve["size"]) == {"1"} and set(curve["arch"]) == set(smoke["archs"])
    with pytest.raises(ConfigError, match=r"^size: 3 is not a size of preset smoke; expected one of 1, 2$"):
        flops_per_token_curve(preset, 3, [32])


def test_a_training_budget_is_in_pf_days_and_takes_a_sizes_own_token_budget():
    """A compute-matched design gives each size its own train.tokens: costing every size at the preset's
    tokens misstates the budget, and pf_days is the paper's unit (1 PF-day = 8.64e19 FLOPs)."""
    from linscale.accounting import training_budget

    preset = load_preset("smoke")
    preset["sizes"]["s2"] = {**preset["sizes"]["s2"], "train": {"tokens": 2560}}
    budget = training_budget(preset)
    s2 = budget["size"] == "s2"
    assert (budget["tokens"][s2] == 2560).all() and (budget["tokens"][~s2] == preset["train"]["tokens"]).all()
    assert budget["training_flops"].to_numpy() == pytest.approx(
        (budget["flops_per_token"] * budget["tokens"]).to_numpy(), rel=1e-12, abs=0)
    assert budget["pf_days"].to_numpy() == pytest.approx(
        (budget["training_flops"] / 8.64e19).to_numpy(), rel=1e-12, abs=0)


@pytest.mark.parametrize("train", [{"lr": 1e-3}, None], ids=["defaults", "empty-block"])
def test_the_accounting_command_counts_a_grid_at_the_context_and_batch_its_runs_train_at(train, tmp_path, capsys,
                                                                                          monkeypatch):
    """A train block that leaves seq_len and batch_size to their defaults (or an empty `train:`) trains at
    those defaults; `linscale accounting` of it was a KeyError traceback."""
    import yaml

    from linscale import accounting
    from linscale.cli import main
    from linscale.train.settings import TrainSettings

    preset = {**load_preset("smoke"), "name": "mine", "train": train}
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(preset))
    count, counted = accounting.accounting_table, []
    monkeypatch.setattr(accounting, "accounting_table", lambda *a, **k: counted.append(count(*a, **k)) or counted[-1])
    assert main(["accounting", "--preset", str(tmp_path / "mine.yaml")]) == 0
    assert "s2 cosformer2" in capsys.readouterr().out and len(counted) == 1
    defaults = TrainSettings()
    pd.testing.assert_frame_equal(counted[0], count(load_preset("smoke"), seq_len=defaults.seq_len,
                                                    batch_size=defaults.batch_size))


def test_an_accounting_table_counts_each_size_at_the_context_and_batch_it_trains_at():
    """A size's own train block (sizes.s2.train.seq_len) sets the context and batch its runs train at; the table
    counted the whole grid at the preset's. Given ones count every size at them; a preset with none is one line."""
    from linscale import accounting

    preset = load_preset("smoke")
    base = accounting.accounting_table(preset)
    n, b = preset["train"]["seq_len"], preset["train"]["batch_size"]
    mixed = {**preset, "sizes": {**preset["sizes"], "s2": {**preset["sizes"]["s2"],
                                                            "train": {"seq_len": 4 * n, "batch_size": 3 * b}}}}
    table = accounting.accounting_table(mixed)
    s1, s2 = table["size"] == "s1", table["size"] == "s2"
    pd.testing.assert_frame_equal(table[s1], base[s1])
    configs = {(c.name, c.arch): c for c in model_configs(mixed)}
    for row in table[s2].itertuples():
        assert row.flops_per_token == flops.flops_per_token(configs[row.size, row.arch], 4 * n)
        assert row.pflops_per_step == flops.flops_per_step(configs[row.size, row.arch], 4 * n, 3 * b) / 1e15
    pd.testing.assert_frame_equal(accounting.accounting_table(mixed, seq_len=n, batch_size=b), base)
    with pytest.raises(ConfigError, match=r"^train\.seq_len: not in the preset \(nor in sizes\.s1\.train\); "):
        accounting.accounting_table({**preset, "train": {"lr": 1e-3}})


@pytest.mark.parametrize("key, what", [("sizes", "mapping of size name -> shape"), ("archs", "list of architectures")])
def test_an_accounting_table_of_an_empty_grid_is_an_error(key, what):
    """An empty table with exit status 0 said nothing was counted; callers of the function get the error too."""
    from linscale.accounting import accounting_table
    from linscale.config import ConfigError

    preset = {**load_preset("smoke"), key: {} if key == "sizes" else []}
    with pytest.raises(ConfigError, match=f"{key}: expected a non-empty {what}"):
        accounting_table(preset)


# Appendix A.1's forward FLOPs of one layer per token (its per-layer counts over n), with g the GLU width: the
# token mixer's, then the channel mixer's 6dg + g. The softmax (LLaMA's 3n²h) is not counted (Table 1's rules).
A1_MIXER = {
    "llama": lambda n, d, h: 8 * d * d + 4 * n * d + 4 * d,
    "tnl": lambda n, d, h: 8 * d * d + 12 * d * d / h + 4 * d,
    "hgrn2": lambda n, d, h: 8 * d * d + 8 * d * d / h + 7 * d,
    "cosformer2": lambda n, d, h: 8 * d * d + 18 * d * d / h + 5 * d,
}


@pytest.mark.parametrize("arch", sorted(A1_MIXER))
@pytest.mark.parametrize("n_layer, d_model, n_head, seq_len", [(3, 96, 4, 1024), (2, 768, 6, 8192)])
def test_flops_per_token_are_appendix_a1s_forward_counts_times_three(arch, n_layer, d_model, n_head, seq_len):
    """Table 1's corrections (5/(18d), 29/(72d), ...) are Appendix A.1's per-layer counts, forward plus backward
    (x3), at g = 8/3·d: checked term by term, exactly, where the Table 7 checks (2%, one printed decimal) miss
    a d-term off by half. ffn="actual" puts the configured g into the GLU's 6dg and keeps the rest."""
    config = ModelConfig(arch=arch, n_layer=n_layer, d_model=d_model, n_head=n_head, vocab_size=100)
    d, g = d_model, 8 * d_model / 3
    mixer = A1_MIXER[arch](seq_len, d, n_head)
    assert flops.flops_per_token(config, seq_len) == pytest.approx(3 * n_layer * (mixer + 6 * d * g + g), rel=1e-12)
    wide = config.replace(d_ffn=3 * d_model)
    assert flops.flops_per_token(wide, seq_len, ffn="actual") == pytest.approx(
        3 * n_layer * (mixer + 6 * d * wide.d_ffn + g), rel=1e-12)
    assert flops.flops_per_token(wide, seq_len) == flops.flops_per_token(config, seq_len)  # table1: g = 8/3·d


def test_step_and_run_totals_keep_the_asked_ffn_accounting():
    """flops_per_step and training_flops pass ffn on: dropped, an "actual" total was Table 1's."""
    config = ModelConfig(arch="hgrn2", n_layer=2, d_model=64, n_head=4, vocab_size=100, d_ffn=256)
    actual = flops.flops_per_token(config, 128, ffn="actual")
    assert actual != flops.flops_per_token(config, 128)
    assert flops.flops_per_step(config, 128, 3, ffn="actual") == pytest.approx(actual * 128 * 3, rel=1e-12)
    assert flops.training_flops(config, 1e6, 128, ffn="actual") == pytest.approx(actual * 1e6, rel=1e-12)


@pytest.mark.parametrize("seq_len, ffn, message", [
    (0, "table1", "seq_len: expected a positive integer, got 0"),
    (-8, "table1", "seq_len: expected a positive integer, got -8"),
    (1024.0, "table1", "seq_len: expected a positive integer, got 1024.0"),
    (1024, "paper", "ffn: 'paper' is not one of table1, actual"),
])
def test_a_bad_context_or_ffn_accounting_is_named(seq_len, ffn, message):
    """A zero context counted no FLOPs at all; an unknown ffn was Table 1's accounting without a word."""
    config = ModelConfig(arch="tnl", n_layer=2, d_model=32, n_head=4, vocab_size=97)
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        flops.flops_per_token(config, seq_len, ffn=ffn)


@pytest.mark.parametrize("arch, changes, forward", [  # Appendix A.1's forward count per layer and token it changes
    ("tnl", {"gate_rank": 16}, lambda d, h: 4 * (16 - d / h) * d),  # the output gate's 4td at t = 16, not d/h
    ("cosformer2", {"gate_rank": 3}, lambda d, h: 4 * (3 - d / h) * d),
    ("cosformer2", {"tpe": False}, lambda d, h: -4 * d * d / h),  # the TPE's 4de (e = d/h) left out
    ("cosformer2", {"tpe": False, "gate_rank": 2}, lambda d, h: 4 * (2 - d / h) * d - 4 * d * d / h),
    ("hgrn2", {"gate_rank": 3}, lambda d, h: 0.0),  # HGRN2 has no low-rank gate
    ("llama", {"tpe": False}, lambda d, h: 0.0),  # nor TPE
])
def test_training_flops_follow_the_configured_gate_width_and_tpe(arch, changes, forward):
    """Table 1's corrections take t = e = d/h and the TPE as present; the parameter count followed a config's
    gate_rank and tpe, the FLOPs did not (a cosFormer2 without TPE was charged for it). Training counts each
    forward FLOP three times, in every layer."""
    base = ModelConfig(arch=arch, n_layer=3, d_model=96, n_head=4, vocab_size=97)
    changed = base.replace(**changes)
    for seq_len in (64, 2048):
        assert flops.flops_per_token(changed, seq_len) - flops.flops_per_token(base, seq_len) == pytest.approx(
            3 * base.n_layer * forward(96, 4), rel=1e-12, abs=1e-6)


@pytest.mark.parametrize("arch, changes", [("cosformer2", {"tpe": False}), ("cosformer2", {"gate_rank": 3}),
                                           ("tnl", {"gate_rank": 5}), ("hgrn2", {"d_ffn": 40})])
def test_the_parameter_count_follows_the_configured_gate_tpe_and_glu(arch, changes):
    """The count takes the configured gate width t, the TPE's presence (its d·e, e = d/h whatever t is) and g,
    as the built model has them: with the defaults (t = e = d/h) a count that used t for e, or kept the TPE's
    d·e when it is off, matched the model in every other check."""
    config = ModelConfig(arch=arch, n_layer=2, d_model=32, n_head=4, vocab_size=97, **changes)
    model = build_model(config)
    assert flops.non_embedding_params(config) == counted_params(model)
