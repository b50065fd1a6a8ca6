"""Training machinery, fast parts: settings and overrides, schedules, the results schema, bad input,
safe checkpoint loading, determinism and divergence on tiny in-process runs."""
from __future__ import annotations

import json
import math
import shutil
import socket
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from filelock import FileLock

from linscale.models.checkpoint import CheckpointError, load_checkpoint
from linscale.cli import main
from linscale.config import ConfigError
from linscale.train import (TrainSettings, apply_overrides, checkpoint_steps, lr_factor, plan_runs, prepare_run,
                            read_records, read_status, records_equal, resolve_preset, train_run, validate_results,
                            write_results)
from linscale.train.module import LanguageModelTask
from linscale.train.results import ResultsError, to_frame
from linscale.train.sweep import SweepLockedError, run_sweep

sys.path.insert(0, str(Path(__file__).parent))
STANDIN = {"factory": "train_standin:build"}


def tiny_preset(**train) -> dict:
    return {"name": "tiny", "archs": ["tnl"],
            "sizes": {"s1": {"n_layer": 1, "d_model": 16, "n_head": 2}},
            "model": {"chunk_size": 16, "ffn_multiple_of": 16},
            "data": dict(STANDIN),
            "train": {"seq_len": 32, "batch_size": 8, "tokens": 32 * 8 * 24, "lr": 3e-3, "checkpoints": 5,
                      "exports": 1, "threads": 1, **train}}


def free_port() -> str:
    """A free local port for a gloo process group (xdist workers run side by side)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return str(probe.getsockname()[1])


def run_tiny(tmp: Path, name: str, preset: dict | None = None) -> Path:
    _, specs = plan_runs(preset or tiny_preset())
    run_dir = prepare_run(tmp / name, specs[0])
    train_run(run_dir)
    return run_dir


# ---------------------------------------------------------------------------- settings


def test_checkpoint_steps_are_log_spaced_and_end_at_the_last_step():
    steps = checkpoint_steps(10_000, 16, 0.01)
    assert steps[0] == 100 and steps[-1] == 10_000 and steps == sorted(set(steps))
    ratios = np.diff(np.log(steps))
    assert np.allclose(ratios, ratios.mean(), atol=0.01)
    assert checkpoint_steps(5, 16, 0.01) == [1, 2, 3, 4, 5]  # short runs: every step, no duplicates
    assert checkpoint_steps(7, 1) == [7]


def test_exports_are_the_final_checkpoint_and_log_spaced_ones_of_the_last_two_thirds():
    """The first third of the records are near-random models, which evaluation has no use for."""
    import dataclasses

    settings = TrainSettings(seq_len=8, batch_size=1, tokens=8 * 10_000, checkpoints=16, exports=3)
    steps = settings.checkpoint_steps()
    assert settings.export_steps() == [steps[5], steps[10], steps[15]]
    assert dataclasses.replace(settings, exports=40).export_steps() == steps[5:]  # at most every one of them
    assert dataclasses.replace(settings, exports="all").export_steps() == steps
    assert dataclasses.replace(settings, exports=0).export_steps() == []


@pytest.mark.parametrize("schedule", ["constant", "warmup", "cosine", "wsd"])
def test_lr_schedules(schedule):
    s = TrainSettings(seq_len=8, batch_size=1, tokens=800, schedule=schedule, warmup_steps=10, min_lr_ratio=0.1,
                      decay_fraction=0.2)
    f = [lr_factor(i, s.total_steps, s) for i in range(s.total_steps)]
    if schedule == "constant":
        assert f == [1.0] * 100
        return
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)
    if schedule == "warmup":
        assert f[10:] == [1.0] * 90
    elif schedule == "cosine":
        assert f[10] == pytest.approx(1.0) and f[-1] == pytest.approx(0.1, abs=1e-3)
        assert all(a >= b for a, b in zip(f[10:], f[11:]))
    else:
        assert f[10:80] == [1.0] * 70 and f[-1] == pytest.approx(0.1) and f[80] < 1.0


def test_overrides_set_fields_and_reject_typos():
    preset = resolve_preset("smoke", ["train.lr=1e-3", "sizes.s1.d_model=64", "archs=[tnl, llama]",
                                      "train.warmup_steps=5", "sizes.s9={n_layer: 1, d_model: 8, n_head: 1}"])
    assert preset["train"]["lr"] == 1e-3 and isinstance(preset["train"]["lr"], float)
    assert preset["sizes"]["s1"]["d_model"] == 64 and preset["archs"] == ["tnl", "llama"]
    assert preset["train"]["warmup_steps"] == 5 and "s9" in preset["sizes"]
    for bad, name in [("train.lrr=1", "lrr"), ("sizes.s1.d_modl=3", "d_modl"), ("trian.lr=1", "trian"),
                      ("model.chunksize=4", "chunksize")]:
        with pytest.raises(ConfigError, match=name):
            resolve_preset("smoke", [bad])
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        apply_overrides({}, ["train.lr"])
    with pytest.raises(ConfigError, match="train.batch_size"):
        resolve_preset("smoke", ["train.batch_size=-4"])
    # 1e30 tokens was a TypeError from numpy's geomspace in the checkpoint schedule
    with pytest.raises(ConfigError, match=r"train.tokens: 1e\+30 tokens is 3.91e\+27 steps of .*; expected at most 1e\+12"):
        resolve_preset("smoke", ["train.tokens=1e30"])


def test_lr_reference_width_scales_each_runs_lr_as_one_over_width():
    """train.lr_reference_width = d_ref: a run of width d trains at lr·d_ref/d (the rule resolved in its spec)."""
    _, specs = plan_runs("smoke", ["train.lr=1e-3", "train.lr_reference_width=32", "archs=[tnl]"])
    lrs = {s["model"]["d_model"]: s["train"]["lr"] for s in specs}
    assert lrs == {16: pytest.approx(2e-3), 32: pytest.approx(1e-3)}
    assert all(s["train"]["lr_reference_width"] is None for s in specs)  # resolved: never applied twice
    assert {s["train"]["lr"] for s in plan_runs("paper")[1]} == {3e-4}  # no reference width: one LR for all
    with pytest.raises(ConfigError, match="train.lr_reference_width"):
        plan_runs("smoke", ["train.lr_reference_width=0"])


def test_a_size_may_set_its_own_token_budget_and_lr():
    """sizes.<name>.train overrides the train block for that size only (a compute-matched design gives
    each size its own tokens); a bad value names the size and the key."""
    _, specs = plan_runs("smoke", ["sizes.s1.train.tokens=20480", "sizes.s2.train={lr: 1e-3}", "archs=[tnl]"])
    by_size = {s["size"]: s["train"] for s in specs}
    assert by_size["s1"]["tokens"] == 20480 and by_size["s2"]["tokens"] == 153600
    assert by_size["s2"]["lr"] == pytest.approx(1e-3) and by_size["s1"]["lr"] == pytest.approx(3e-3)
    with pytest.raises(ConfigError, match=r"sizes.s1.train.tokens"):
        plan_runs("smoke", ["sizes.s1.train.tokens=-5"])
    with pytest.raises(ConfigError, match=r"sizes.s1.train.nope"):
        plan_runs("smoke", ["sizes.s1.train.nope=1"])


def test_an_override_that_every_sizes_own_setting_masks_is_refused(capsys):
    """The cpu preset gives each size its own token budget: `--set train.tokens=1e6` changed nothing there,
    without a word. Masked for every size it is an error; for some, a note."""
    with pytest.raises(ConfigError, match=r"train.tokens: every size of this preset sets its own "
                                          r"\(sizes.<size>.train.tokens\), which wins over train.tokens"):
        plan_runs("cpu", ["train.tokens=1e6"])
    _, specs = plan_runs("smoke", ["sizes.s1.train.tokens=20480", "train.tokens=30720", "archs=[tnl]"])
    assert {s["size"]: s["train"]["tokens"] for s in specs} == {"s1": 20480, "s2": 30720}
    assert "note: train.tokens: sizes s1 set their own (sizes.<size>.train.tokens), which wins there" in \
        capsys.readouterr().err
    plan_runs("cpu", ["train.lr=1e-3"])  # no size sets its own: no word
    assert capsys.readouterr().err == ""
    # the model block too: every size gives its own heads, and `--set model.n_head=3` changed nothing
    with pytest.raises(ConfigError, match=r"model.n_head: every size of this preset sets its own "
                                          r"\(sizes.<size>.n_head\), which wins over model.n_head; .* sizes.s1.n_head"):
        plan_runs("smoke", ["model.n_head=3"])
    plan_runs("smoke", ["model.chunk_size=8"])  # no size sets its own
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("arch,names", [("cosformer2", {"theta"}), ("hgrn2", {"gamma"}),
                                        ("tnl", set()), ("llama", set())])
def test_weight_decay_spares_angles_and_lower_bounds(arch, names):
    """AdamW decays matrices and embeddings, but not cosFormer2's LRPE angles θ nor HGRN2's lower-bound
    table Γ (2-D, but not weights: decay would pull them to 0), nor 1-D gains."""
    task = LanguageModelTask(model={"arch": arch, "n_layer": 2, "d_model": 16, "n_head": 2, "vocab_size": 32},
                             train={"tokens": 1024, "seq_len": 16, "batch_size": 4, "weight_decay": 0.1})
    groups = task.configure_optimizers()["optimizer"].param_groups
    undecayed = {id(p) for g in groups if g["weight_decay"] == 0 for p in g["params"]}
    spared = {n.rsplit(".", 1)[-1] for n, p in task.named_parameters() if id(p) in undecayed and p.dim() >= 2}
    assert spared == names
    decayed = {id(p) for g in groups if g["weight_decay"] > 0 for p in g["params"]}
    assert id(task.model.embed.weight) in decayed


def test_weight_decay_is_chosen_by_name_through_wrappers_and_unknown_names_are_an_error():
    """Under FSDP the optimizer sees 1-D shards named through wrappers (``_fsdp_wrapped_module.``): the
    decay groups come from the names of the model as built, and a name the task does not know is an error
    rather than a silent change of the decay."""
    task = LanguageModelTask(model={"arch": "hgrn2", "n_layer": 2, "d_model": 16, "n_head": 2, "vocab_size": 32},
                             train={"tokens": 1024, "seq_len": 16, "batch_size": 4, "weight_decay": 0.1})
    plain = {id(p) for p in task._parameters_to_decay()}
    block = task.model.blocks[0]
    task.model.blocks[0] = torch.nn.Module()  # the block under a wrapper, as FSDP's auto-wrap puts it
    task.model.blocks[0]._fsdp_wrapped_module = block
    assert {id(p) for p in task._parameters_to_decay()} == plain
    task.model.blocks[0].extra = torch.nn.Parameter(torch.zeros(2, 2))  # a parameter the task never saw
    with pytest.raises(RuntimeError, match="unknown names.*extra"):
        task._parameters_to_decay()


def test_gradient_clipping_under_fsdp_clips_the_global_norm(monkeypatch):
    """The paper preset trains with FSDP and grad_clip 1.0; Lightning's FSDP precision plugin refuses norm
    clipping. The task clips through the root FSDP module instead: checked here on a CPU (FSDP over one
    gloo rank; Lightning itself only runs FSDP on GPUs), the global norm ends at the limit."""
    from types import SimpleNamespace

    import torch.distributed as dist
    from torch.distributed.fsdp import FullyShardedDataParallel

    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", free_port())
    dist.init_process_group("gloo", rank=0, world_size=1)
    try:
        task = LanguageModelTask(model={"arch": "tnl", "n_layer": 2, "d_model": 16, "n_head": 2, "vocab_size": 32},
                                 train={"tokens": 1024, "seq_len": 16, "batch_size": 4, "grad_clip": 1.0})
        class Loss(torch.nn.Module):  # FSDP's backward hooks follow tensors out of forward, not a ModelOutput
            def __init__(self, task):
                super().__init__()
                self.task = task

            def forward(self, ids):
                return self.task(ids, labels=ids).loss

        root = FullyShardedDataParallel(Loss(task), device_id=torch.device("cpu"))
        task._trainer = SimpleNamespace(strategy=SimpleNamespace(model=root))  # what Lightning's FSDPStrategy holds
        ids = torch.randint(0, 32, (4, 16), generator=torch.Generator().manual_seed(0))
        (root(ids) * 1e3).backward()  # a norm far above the limit

        def norm():
            return float(torch.stack([p.grad.norm() for p in root.parameters() if p.grad is not None]).norm())

        assert norm() > 10
        task.configure_gradient_clipping(None, gradient_clip_val=1.0, gradient_clip_algorithm="norm")
        assert norm() == pytest.approx(1.0, rel=1e-4)
    finally:
        dist.destroy_process_group()


def test_presets_cover_the_required_grids():
    from linscale import flops
    from linscale.config import ModelConfig

    for name, min_sizes in (("smoke", 2), ("cpu", 5), ("paper", 6)):
        preset, specs = plan_runs(name)
        assert set(preset["archs"]) == {"llama", "tnl", "hgrn2", "cosformer2"}
        assert len(preset["sizes"]) >= min_sizes
        assert preset["data"]["source"] in ("synthetic", "text")
    preset, specs = plan_runs("cpu")
    for arch in preset["archs"]:
        n = [flops.non_embedding_params(ModelConfig.from_dict({"vocab_size": 2, **s["model"]}))
             for s in specs if s["arch"] == arch]
        assert math.log10(max(n) / min(n)) >= 1.5, f"{arch}: {min(n)}..{max(n)} spans < 1.5 decades"
    paper = TrainSettings.from_dict(resolve_preset("paper")["train"])
    assert (paper.seq_len, paper.batch_size, paper.tokens) == (8192, 480, 300e9)
    assert paper.total_steps == 76293 and paper.lr == 3e-4 and paper.schedule == "constant"


# ---------------------------------------------------------------------------- results schema


def _rows(n=3, run_id="tnl-s1"):
    rows = []
    for step in range(1, n + 1):
        tokens = step * 8 * 32
        rows.append(dict(run_id=run_id, arch="tnl", size="s1", n_layer=1, d_model=16, n_head=2, d_ffn=48,
                         params=1000, params_total=1400, seq_len=32, batch_size=8, step=step, tokens=tokens,
                         flops=6e3 * tokens, pf_days=6e3 * tokens / 8.64e19, train_loss=3.0 - step / 10,
                         val_loss=3.1 - step / 10, bayes_loss=1.5, lr=3e-3, diverged=False, seed=0, preset="x",
                         wall_time_s=float(step)))
    return rows


def test_results_schema_validation():
    frame = validate_results(to_frame(_rows()))
    assert list(frame.columns)[:3] == ["run_id", "arch", "size"] and len(frame) == 3
    bad_cases = {
        "duplicate": to_frame(_rows() + _rows()[:1]),
        "tokens": to_frame(_rows()).assign(tokens=lambda f: f.tokens + 1),
        "pf_days": to_frame(_rows()).assign(pf_days=1.0),
        "val_loss": to_frame(_rows()).assign(val_loss=float("nan")),
        "missing column 'flops'": to_frame(_rows()).drop(columns="flops"),
        "arch": to_frame(_rows()).assign(arch="gpt"),
        "negative loss": to_frame(_rows()).assign(val_loss=-0.1),
        "params_total < params": to_frame(_rows()).assign(params_total=999),
        "rows after its diverged row": to_frame([{**r, "diverged": r["step"] == 2} for r in _rows()]),
        "flops do not grow with step": to_frame(_rows()).assign(flops=lambda f: f.flops[::-1].to_numpy(),
                                                               pf_days=lambda f: f.flops / 8.64e19),
        "d_model must be positive": to_frame(_rows()).assign(d_model=0),
        "step must be positive": to_frame(_rows()).assign(step=lambda f: f.step - 1, tokens=lambda f: f.step * 8 * 32),
    }
    for what, frame in bad_cases.items():
        with pytest.raises(ResultsError, match=what):
            validate_results(frame)
    diverged = _rows()
    diverged[-1].update(diverged=True, train_loss=float("nan"), val_loss=float("nan"))
    validate_results(to_frame(diverged))  # a diverged row may hold NaN


def test_a_records_train_loss_is_the_mean_over_the_last_loss_window_steps(tmp_path):
    """train_loss (and train_bayes_loss) average the last train.loss_window optimiser steps, not every step
    so far. Two runs that differ only in the window train the same model on the same batches (the window is
    read, not trained), so the one that records each step alone gives the other's averages."""
    one = read_records(run_tiny(tmp_path, "one", tiny_preset(loss_window=1, checkpoints=24)))
    three = read_records(run_tiny(tmp_path, "three", tiny_preset(loss_window=3, checkpoints=24)))
    assert [r["step"] for r in one] == [r["step"] for r in three]
    for column in ("train_loss", "train_bayes_loss"):
        each = {r["step"]: r[column] for r in one}  # recorded steps: 1 to 10 every step, then log-spaced
        checked = [(r[column], np.mean([each[s] for s in range(max(1, r["step"] - 2), r["step"] + 1)]))
                   for r in three if all(s in each for s in range(max(1, r["step"] - 2), r["step"] + 1))]
        assert len(checked) >= 8 and [got for got, _ in checked] == pytest.approx([want for _, want in checked],
                                                                                  rel=1e-6), column


def test_records_equal_sees_one_bit_a_step_a_row_and_nan():
    """records_equal is the equality of every resume and determinism test: it must also say 'different'."""
    from linscale.train.results import records_equal

    a = to_frame(_rows())
    assert records_equal(a, a.copy()) and records_equal(a, a.iloc[::-1])  # row order does not matter
    assert records_equal(a, a.assign(wall_time_s=9.0))  # ignored by default
    one_bit = a.copy()
    one_bit.loc[1, "val_loss"] = np.nextafter(one_bit.loc[1, "val_loss"], np.inf)
    nan = a.copy()
    nan.loc[0, "train_loss"] = np.nan
    for other in (one_bit, a.assign(step=lambda f: f.step * 2, tokens=lambda f: f.tokens * 2), a.iloc[:2], nan,
                  a.assign(seed=1)):
        assert not records_equal(a, other) and not records_equal(other, a)
    assert records_equal(nan, nan.copy())  # NaN equals NaN (a diverged row)
    assert records_equal(a, one_bit, atol=1e-12)


def test_a_damaged_results_table_is_one_line_naming_the_way_back(tmp_path):
    """Garbage in a sweep's results.parquet was pyarrow's traceback; every row is also in a records.json."""
    from linscale.train.results import read_results, upsert_runs

    table = tmp_path / "results.parquet"
    table.write_bytes(b"garbage, not parquet")
    for read in (lambda: read_results(table), lambda: upsert_runs(table, {"tnl-s1": _rows()})):
        with pytest.raises(ResultsError, match=f"{table}: not a readable results table .*delete it and run the "
                                               "sweep again, which rebuilds it from its runs' records.json"):
            read()
    assert table.read_bytes() == b"garbage, not parquet"
    # a sweep into that folder says so before it trains anything (not at its first merge of records)
    with pytest.raises(ResultsError, match=f"{table}: not a readable results table"):
        run_sweep(tiny_preset(), out=tmp_path, jobs=1)
    assert not (tmp_path / "runs").exists() and table.read_bytes() == b"garbage, not parquet"


def test_results_validation_catches_what_the_schema_test_let_through():
    """Each check must catch the smallest breach: a duplicate row that differs in a loss, zero compute, a
    pf_days off by one part in a million, a bad train_loss (not only val_loss) and a run diverged twice."""
    ok = to_frame(_rows())
    bad_cases = {
        r"duplicate \(run_id, step\) rows": to_frame(_rows() + [dict(_rows()[0], val_loss=9.0)]),
        "flops must be positive": ok.assign(flops=0.0, pf_days=0.0),
        r"pf_days != flops / 8.64e19": ok.assign(pf_days=lambda f: f.flops / 8.64e19 * (1 + 1e-6)),
        "train_loss is not finite on a row not marked diverged": ok.assign(train_loss=np.nan),
        "negative loss": ok.assign(train_loss=-0.1),
        "run tnl-s1 has rows after its diverged row": to_frame([{**r, "diverged": r["step"] >= 2} for r in _rows()]),
    }
    for what, frame in bad_cases.items():
        with pytest.raises(ResultsError, match=what):
            validate_results(frame)


def test_results_validation_checks_every_count_and_names_the_first_bad_row():
    """Each count column must be positive (not only the two the schema test tries); a refusal names the first
    bad row's run and step and how many rows are bad; text in a number column is a ResultsError, not
    pandas' ValueError."""
    for column in ("n_layer", "d_model", "n_head", "d_ffn", "params", "params_total", "seq_len", "batch_size"):
        with pytest.raises(ResultsError, match=f"^results: {column} must be positive"):
            validate_results(to_frame(_rows()).assign(**{column: 0}))
    rows = _rows(run_id="tnl-s2") + _rows()
    rows[4]["val_loss"] = rows[5]["val_loss"] = -1.0  # tnl-s1's steps 2 and 3
    with pytest.raises(ResultsError, match=r"^results: negative loss \(run tnl-s1, step 2; 2 rows\)$"):
        validate_results(to_frame(rows))
    with pytest.raises(ResultsError, match="^results: a column does not have the schema's type"):
        validate_results(to_frame(_rows()).astype({"step": object}).assign(step=["1", "two", "3"]))
    # a hand-edited table: a fraction where a count stands, text where a flag does (pandas made 1 and True of them)
    with pytest.raises(ResultsError, match=r"^results: column 'step' holds a fraction \(2\.5\); expected whole"):
        validate_results(to_frame(_rows()).assign(step=[1.0, 2.5, 3.0]))
    with pytest.raises(ResultsError, match=r"^results: column 'diverged' holds 'False'; expected True or False$"):
        validate_results(to_frame(_rows()).astype({"diverged": object}).assign(diverged=["False"] * 3))
    typed = validate_results(to_frame(_rows()).astype({"step": float, "diverged": object}))  # whole floats, bools
    assert typed["step"].dtype == "int64" and list(typed["step"]) == [1, 2, 3] and typed["diverged"].dtype == bool


def test_results_validation_reads_old_tables_and_rows_in_any_order(tmp_path):
    """A linscale 0.1 table has no train_bayes_loss (read as NaN, not refused); a diverged run's rows in
    reverse order are still a run that stopped at its diverged row; a missing table says so."""
    from linscale.train.results import read_results

    old = validate_results(to_frame(_rows()).drop(columns="train_bayes_loss"))
    assert len(old) == 3 and old["train_bayes_loss"].isna().all()
    diverged = _rows()
    diverged[-1].update(diverged=True, train_loss=np.nan, val_loss=np.nan)
    assert validate_results(to_frame(diverged[::-1]))["diverged"].sum() == 1
    with pytest.raises(ResultsError, match=f"{tmp_path / 'none.parquet'}: results table does not exist"):
        read_results(tmp_path / "none.parquet")


def test_an_upsert_into_a_linscale_0_1_table_keeps_its_rows_and_a_table_without_a_column_is_one_line(tmp_path):
    """read_results reads a linscale 0.1 table (no train_bayes_loss) and a sweep goes on into its folder, yet
    merging the sweep's new rows into it was a KeyError traceback after the training; a table lacking
    another column, or holding text in a number column, is one line naming the table."""
    from linscale.train.results import read_results, upsert_runs

    table = tmp_path / "results.parquet"
    to_frame(_rows(run_id="tnl-s2")).drop(columns="train_bayes_loss").to_parquet(table)
    upsert_runs(table, {"tnl-s1": [dict(r, train_bayes_loss=1.2) for r in _rows()]})
    got = read_results(table)
    assert list(got["run_id"]) == ["tnl-s1"] * 3 + ["tnl-s2"] * 3
    assert (got["train_bayes_loss"][:3] == 1.2).all() and got["train_bayes_loss"][3:].isna().all()
    other = to_frame(_rows(run_id="tnl-s2"))
    for frame, what in ((other.drop(columns="seed"), "missing column 'seed'"),
                        (other.assign(seed="x"), "a column does not have the schema's type")):
        frame.to_parquet(table)
        with pytest.raises(ResultsError, match=f"^{table}: {what}"):
            upsert_runs(table, {"tnl-s1": _rows()})


def test_a_results_table_is_written_sorted_and_an_upsert_replaces_a_runs_rows(tmp_path):
    """The table is committed and diffed: its rows in (run_id, step) order whatever order the runs finished
    in; a re-trained run's rows replace its old ones (same row count), they are not appended."""
    from linscale.train.results import read_results, upsert_runs

    table = tmp_path / "results.parquet"
    write_results(to_frame(_rows(run_id="tnl-s2")[::-1] + _rows()[::-1]), table)
    for got in (read_results(table), read_results(tmp_path / "results.csv")):
        assert list(got["run_id"]) == ["tnl-s1"] * 3 + ["tnl-s2"] * 3 and list(got["step"]) == [1, 2, 3] * 2
    upsert_runs(table, {"tnl-s1": [dict(r, val_loss=2.0) for r in _rows()]})
    got = read_results(table)
    assert len(got) == 6 and list(got["run_id"]) == ["tnl-s1"] * 3 + ["tnl-s2"] * 3
    assert (got[got["run_id"] == "tnl-s1"]["val_loss"] == 2.0).all()
    assert (got[got["run_id"] == "tnl-s2"]["val_loss"] != 2.0).all()


def test_results_rows_are_typed_a_nan_compute_is_named_and_a_run_without_records_loses_its_rows(tmp_path):
    """to_frame gives the schema's types (not pandas' guesses); a NaN in flops is refused as flops (not as
    the pf_days that follow from it); an upsert of a run with no records removes its rows, no other run's."""
    from linscale.train.results import SCHEMA, read_results, upsert_runs

    assert to_frame(_rows()).dtypes.astype(str).to_dict() == SCHEMA
    assert to_frame([]).dtypes.astype(str).to_dict() == SCHEMA
    with pytest.raises(ResultsError, match="flops must be positive"):
        validate_results(to_frame(_rows()).assign(flops=np.nan, pf_days=np.nan))
    table = tmp_path / "results.parquet"
    write_results(to_frame(_rows(run_id="tnl-s2") + _rows()), table)
    upsert_runs(table, {"tnl-s1": []})
    assert set(read_results(table)["run_id"]) == {"tnl-s2"} and len(read_results(table)) == 3


# ---------------------------------------------------------------------------- bad input


def _table_with_rows(out: Path) -> bytes:
    write_results(to_frame(_rows()), out / "results.parquet")
    return (out / "results.parquet").read_bytes()


@pytest.mark.parametrize("argv, expected", [
    (["--preset", "no-such-preset"], "unknown preset 'no-such-preset'"),
    (["--preset", "smoke", "--set", "train.lrr=1e-3"], "train.lrr"),
    (["--preset", "smoke", "--set", "sizes.s1.d_model=-8"], "d_model"),
    (["--preset", "smoke", "--set", "sizes.s2.n_layer=-1"], "n_layer"),
    (["--preset", "smoke", "--set", "data.val_tokenz=64"], "data.val_tokenz"),
])
def test_bad_sweep_input_is_one_clear_error_and_keeps_the_table(tmp_path, capsys, argv, expected):
    before = _table_with_rows(tmp_path)
    assert main(["sweep", *argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and len(err.splitlines()) == 1, err
    assert (tmp_path / "results.parquet").read_bytes() == before
    assert not (tmp_path / "runs").exists()


def test_unwritable_output_folder(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert main(["sweep", "--preset", "smoke", "--out", str(blocker / "sub")]) == 2
    err = capsys.readouterr().err.strip()
    # the option's own check, as for every command's folder option: it names the file in the way
    assert f"--out: {blocker} is a file; expected a folder" in err and len(err.splitlines()) == 1
    with pytest.raises(ConfigError, match=f"out: cannot create the folder {blocker / 'sub'}"):
        run_sweep("smoke", out=blocker / "sub")  # the sweep's own check, for callers of run_sweep


def test_second_sweep_on_the_same_table_is_refused(tmp_path):
    before = _table_with_rows(tmp_path)
    with FileLock(str(tmp_path / ".sweep.lock")):
        with pytest.raises(SweepLockedError, match="another sweep or a linscale train is writing"):
            run_sweep("smoke", out=tmp_path)
    assert (tmp_path / "results.parquet").read_bytes() == before


def test_run_with_other_settings_in_the_same_folder_is_refused(tmp_path):
    _, specs = plan_runs(tiny_preset())
    run_dir = prepare_run(tmp_path / "r", specs[0])
    (run_dir / "records.json").write_text(json.dumps(_rows(1)))  # it has computed something
    _, other = plan_runs(tiny_preset(lr=1e-2))
    with pytest.raises(ConfigError, match="train.lr: 0.003 -> 0.01"):
        prepare_run(tmp_path / "r", other[0])
    # every change is named (only the first was), up to three and then how many more
    _, other = plan_runs(tiny_preset(lr=1e-2, seed=7))
    with pytest.raises(ConfigError, match=r"\(train.lr: 0.003 -> 0.01; train.seed: 0 -> 7\)"):
        prepare_run(tmp_path / "r", other[0])
    _, other = plan_runs(tiny_preset(lr=1e-2, seed=7, warmup_steps=1, min_lr_ratio=0.5, weight_decay=0.0))
    with pytest.raises(ConfigError, match=r"; and 2 more\)"):
        prepare_run(tmp_path / "r", other[0])
    (run_dir / "spec.json").write_text('{"run_id": "tnl-')  # cut short: not "(: None -> {...})"
    with pytest.raises(ConfigError, match="spec.json: not a readable run spec, and the run has computed something"):
        prepare_run(tmp_path / "r", specs[0])


@pytest.mark.parametrize("ending", ["done", "failed"])
def test_a_run_with_loader_workers_ends_them_however_it_ends(tmp_path, monkeypatch, ending):
    """With train.num_workers > 0 the validation loader's workers persist across evaluations. Left to garbage
    collection (the trainer is a web of reference cycles), their queues were closed before the loader could
    tell them to stop: `linscale train --num-workers 2` finished its run and then hung at exit for good,
    waiting for workers that leave SIGTERM to the training process. They end with the fit, failed too."""
    import gc
    import multiprocessing

    from linscale.train import callbacks

    preset = tiny_preset(num_workers=2)
    preset["data"] = {"source": "synthetic", "val_tokens": 512}
    before = set(multiprocessing.active_children())
    if ending == "failed":  # an error after the first evaluation (step 1) started the loader's workers
        record = callbacks.ScalingRecorder._record

        def record_then_fail(self, trainer, pl_module, step):
            record(self, trainer, pl_module, step)
            if step > 1:
                raise RuntimeError("a failure mid-run")
        monkeypatch.setattr(callbacks.ScalingRecorder, "_record", record_then_fail)
        with pytest.raises(RuntimeError, match="a failure mid-run"):
            run_tiny(tmp_path, "r", preset)
    else:
        run_tiny(tmp_path, "r", preset)
    gc.collect()
    left = [p for p in multiprocessing.active_children() if p not in before]
    for process in left:  # not left behind this test, whatever it found
        process.kill()
    assert left == []


def test_a_run_that_never_reached_a_checkpoint_takes_the_corrected_settings(tmp_path, capsys):
    """A failed or interrupted start loses nothing when replaced, so it does not block the corrected command."""
    _, specs = plan_runs(tiny_preset())
    run_dir = prepare_run(tmp_path / "r", specs[0])
    (run_dir / "status.json").write_text(json.dumps({"state": "failed", "error": "DataError: ..."}))
    _, other = plan_runs(tiny_preset(lr=1e-2))
    prepare_run(run_dir, other[0])
    assert json.loads((run_dir / "spec.json").read_text())["train"]["lr"] == 1e-2
    assert "never reached its first checkpoint" in capsys.readouterr().out
    (run_dir / "checkpoints").mkdir()
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"a checkpoint")
    with pytest.raises(ConfigError, match="train.lr: 0.01 -> 0.003"):
        prepare_run(run_dir, specs[0])


# ---------------------------------------------------------------------------- tiny real runs


def test_same_seed_gives_identical_loss_curves_and_exports(tmp_path):
    a, b = run_tiny(tmp_path, "a"), run_tiny(tmp_path, "b")
    ra, rb = read_records(a), read_records(b)
    assert [r["step"] for r in ra] == checkpoint_steps(24, 5, 0.01)
    assert [(r["train_loss"], r["val_loss"]) for r in ra] == [(r["train_loss"], r["val_loss"]) for r in rb]
    assert ra[-1]["val_loss"] < ra[0]["val_loss"] - 0.1  # it learns
    assert all(r["bayes_loss"] < r["val_loss"] for r in ra)  # the Bayes loss is a floor
    model, meta = load_checkpoint(a / "export" / "step=24")
    assert meta["step"] == 24 and meta["tokens"] == 24 * 256 and meta["data"] == STANDIN
    assert (a / "export" / "step=24" / "tokenizer.json").is_file()
    c = run_tiny(tmp_path, "c", tiny_preset(seed=1))
    assert read_records(c)[-1]["train_loss"] != ra[-1]["train_loss"]  # the seed matters


def test_checkpoints_load_safely_and_corruption_is_an_error(tmp_path):
    run_dir = run_tiny(tmp_path, "r")
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    from linscale.train import load_lightning_checkpoint

    state = load_lightning_checkpoint(ckpt)  # weights_only=True succeeds on our own checkpoints
    assert state["global_step"] == 24 and state["hyper_parameters"]["model"]["arch"] == "tnl"
    # An interrupted run with a truncated checkpoint: a clear error, the run is not restarted.
    (run_dir / "status.json").write_text(json.dumps({"state": "running"}))
    records = read_records(run_dir)
    ckpt.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        train_run(run_dir)
    assert read_records(run_dir) == records
    status = read_status(run_dir)  # what a sweep prints for the run ("failed: exit code 1" before)
    assert status["state"] == "failed" and "corrupt or truncated Lightning checkpoint" in status["error"]
    # A checkpoint that would run code when unpickled is refused (weights_only=True).
    torch.save({"state_dict": {}, "payload": _Payload()}, ckpt)
    with pytest.raises(CheckpointError, match=str(ckpt)) as refused:
        train_run(run_dir)
    # torch's reason, without its advice to load with weights_only=False (code execution) ...
    assert "Unsupported global" in str(refused.value) and "weights_only" not in str(refused.value)
    # ... and a file of two bytes, which torch's unpickler fails on with an IndexError, is named too
    ckpt.write_bytes(b"ab")
    with pytest.raises(CheckpointError, match="corrupt or truncated Lightning checkpoint \\(IndexError"):
        train_run(run_dir)


def test_the_checkpoint_io_lightning_resumes_through_is_weights_only_too(tmp_path):
    """Lightning's resume loads through SafeCheckpointIO with weights_only=None (its default): that must
    mean weights only, so a checkpoint that would run code is refused there as well, and a file holding no
    state_dict is not taken for a Lightning checkpoint."""
    from linscale.train.callbacks import SafeCheckpointIO

    ckpt = tmp_path / "last.ckpt"
    SafeCheckpointIO().save_checkpoint({"state_dict": {"w": torch.ones(2)}, "global_step": 3}, ckpt)
    assert SafeCheckpointIO().load_checkpoint(ckpt, weights_only=None)["global_step"] == 3
    torch.save({"state_dict": {}, "payload": _Payload()}, ckpt)
    with pytest.raises(CheckpointError, match="Unsupported global"):
        SafeCheckpointIO().load_checkpoint(ckpt, weights_only=None)
    torch.save({"weights": torch.ones(2)}, ckpt)
    with pytest.raises(CheckpointError, match="not a Lightning checkpoint"):
        SafeCheckpointIO().load_checkpoint(ckpt)
    with pytest.raises(CheckpointError, match=f"^{tmp_path / 'none.ckpt'}: Lightning checkpoint does not exist$"):
        SafeCheckpointIO().load_checkpoint(tmp_path / "none.ckpt")  # not "corrupt ... delete it"


def test_a_runs_look_at_its_checkpoint_maps_the_file_instead_of_reading_it(tmp_path, monkeypatch):
    """Before it trains, every rank of a multi-device run looks at the run's checkpoint (does it load, which
    step it holds). Read whole, a paper-scale checkpoint with its optimiser state (about 84 GB at 7B) by
    each of a node's 8 ranks would not fit in the node's memory; Lightning itself loads it lazily. The
    look maps the file (its pages read where touched): the file is among this process's mappings."""
    import linscale.train.run as run

    run_dir = run_tiny(tmp_path, "r")
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    looks, load = [], run.load_lightning_checkpoint

    def look(path, **kwargs):
        state = load(path, **kwargs)
        looks.append((Path(path), str(path) in Path("/proc/self/maps").read_text()))
        return state

    monkeypatch.setattr(run, "load_lightning_checkpoint", look)
    (run_dir / "status.json").write_text(json.dumps({"state": "running"}))  # a run to resume
    assert train_run(run_dir) == "done"
    assert looks == [(ckpt, True)]


def test_a_finished_runs_damaged_files_lose_none_of_its_rows(tmp_path, capsys):
    """A cut-short records.json read as no rows, and a sweep then dropped the finished run's rows from its
    table without a word; a cut-short status.json was a JSONDecodeError traceback."""
    from linscale.train.run import RecordsDamaged

    run_dir = run_tiny(tmp_path, "r")
    records = read_records(run_dir)
    (run_dir / "records.json").write_text(json.dumps(records)[:100])
    assert read_records(run_dir) == records  # rebuilt from the resume checkpoint's rows
    assert json.loads((run_dir / "records.json").read_text()) == records
    assert "rows are rebuilt from" in capsys.readouterr().err
    (run_dir / "status.json").write_text('{"state": "do')
    assert read_status(run_dir) == {"state": "damaged"}
    assert train_run(run_dir) == "done" and read_records(run_dir) == records  # ends at once: its last step
    assert read_status(run_dir)["state"] == "done"
    (run_dir / "records.json").write_text("[{")
    (run_dir / "checkpoints" / "last.ckpt").unlink()
    with pytest.raises(RecordsDamaged, match="records.json: not readable JSON, and no checkpoint holds its rows"):
        read_records(run_dir)


class _Payload:
    def __reduce__(self):
        return (shutil.rmtree, ("/nonexistent-linscale-test",))


def test_divergence_is_recorded_and_stops_the_run(tmp_path):
    preset = tiny_preset()
    preset["sizes"]["s1"]["init_std"] = 1e30  # overflows at once
    run_dir = run_tiny(tmp_path, "d", preset)
    records = read_records(run_dir)
    assert read_status(run_dir)["state"] == "diverged"
    assert records[-1]["diverged"] and not any(r["diverged"] for r in records[:-1])
    validate_results(to_frame(records))
    assert train_run(run_dir) == "diverged"  # finished: not trained again


def test_a_loss_that_turns_non_finite_between_records_is_recorded_at_its_own_step(tmp_path, monkeypatch):
    """The diverged row is the step whose loss was not finite (no update applied there): its step, tokens
    and compute are that step's, not the next record's."""
    from linscale.train.module import LanguageModelTask

    trained = LanguageModelTask.training_step

    def poisoned(self, batch, batch_idx):  # the 7th optimiser step's loss is NaN
        if self.trainer.global_step != 6:
            return trained(self, batch, batch_idx)
        forward = self.model.forward

        def nan_loss(*args, **kwargs):
            out = forward(*args, **kwargs)
            out.loss = torch.full_like(out.loss, float("nan"))
            return out

        self.model.forward = nan_loss
        try:
            return trained(self, batch, batch_idx)
        finally:
            del self.model.forward

    monkeypatch.setattr(LanguageModelTask, "training_step", poisoned)
    run_dir = run_tiny(tmp_path, "d", tiny_preset())
    records = read_records(run_dir)
    assert read_status(run_dir)["state"] == "diverged"
    assert [(r["step"], r["diverged"]) for r in records] == [(1, False), (2, False), (5, False), (7, True)]
    assert records[-1]["tokens"] == 7 * 32 * 8 and records[-1]["flops"] == pytest.approx(7 * records[0]["flops"])


def test_bf16_mixed_precision_trains_every_architecture_like_fp32(tmp_path):
    """The paper preset trains in bf16-mixed (on GPUs); on the CPU Lightning autocasts to bf16 the same
    way, so a dtype mistake in any model's mixed-precision path shows here, not first on a cluster."""
    archs = ["llama", "tnl", "hgrn2", "cosformer2"]
    final = {}
    for precision in ("32-true", "bf16-mixed"):
        preset = {**tiny_preset(precision=precision), "archs": archs}
        for spec in plan_runs(preset)[1]:
            run_dir = prepare_run(tmp_path / precision / spec["arch"], spec)
            train_run(run_dir)
            records = read_records(run_dir)
            assert read_status(run_dir)["state"] == "done"
            assert all(math.isfinite(r["val_loss"]) for r in records)
            final[precision, spec["arch"]] = records[-1]["val_loss"]
            assert final[precision, spec["arch"]] < records[0]["val_loss"] - 0.1  # it learns
    for arch in archs:
        assert abs(final["bf16-mixed", arch] - final["32-true", arch]) < 0.05, arch
    # bf16 rounding shows somewhere: the precision setting reached the trainer
    assert any(final["bf16-mixed", arch] != final["32-true", arch] for arch in archs)


def test_fsdp_on_cpu_is_a_clear_error():
    from linscale.train.run import build_trainer

    settings = TrainSettings(seq_len=8, batch_size=2, tokens=64, strategy="fsdp", accelerator="cpu")
    with pytest.raises(ConfigError, match="fsdp needs GPUs"):
        build_trainer(settings, Path("/nonexistent"), [], 1)


def test_single_run_cli_refuses_a_folder_a_sweep_is_writing(tmp_path, capsys):
    with FileLock(str(tmp_path / ".sweep.lock")):
        assert main(["train", "--preset", "smoke", "--arch", "tnl", "--size", "s1", "--out", str(tmp_path)]) == 3
    held = f"another sweep or a linscale train is writing here (lock {tmp_path / '.sweep.lock'} is held)"
    assert held in capsys.readouterr().err  # the words of a sweep's refusal (one message, one place)
    assert not (tmp_path / "runs").exists()


def test_a_sweep_or_a_studys_sweep_stage_on_a_held_folder_is_one_line(tmp_path, capsys):
    """A study whose sweep stage met a folder another sweep (or a linscale train) held ended in a traceback
    of SweepLockedError; linscale sweep said it in one line (exit 3)."""
    held = tmp_path / "runs" / "smoke"
    held.mkdir(parents=True)
    commands = (["sweep", "--preset", "smoke", "--out", str(held)],
                ["study", "--preset", "smoke", "--stages", "sweep", "--no-ablations", "--runs-dir",
                 str(tmp_path / "runs"), "--results-dir", str(tmp_path / "results")])
    with FileLock(str(held / ".sweep.lock")):
        for command in commands:
            assert main(command) == 3, command
            err = capsys.readouterr().err.strip()
            assert err == (f"linscale: error: {held}: another sweep or a linscale train is writing here (lock "
                           f"{held / '.sweep.lock'} is held); wait for it to finish or use another --out"), err
    assert not (held / "runs").exists()


def test_fused_adamw_makes_the_same_updates_as_the_per_tensor_loop():
    """build_optimizer fuses AdamW on the CPU (one kernel for all tensors); it trains like torch's
    per-tensor loop to fp32 rounding (weight decay on matrices only included): the two differ in the
    last bits from the first steps on, and Adam's normalisation lets that grow, but stays a thousandth
    of the distance the weights travel (weight decay alone moves them several times more)."""
    from linscale.models import build_model
    from linscale.config import ModelConfig
    from linscale.train.module import build_optimizer

    config = ModelConfig(arch="hgrn2", n_layer=2, d_model=16, n_head=2, vocab_size=32, d_ffn=32)
    settings = TrainSettings(seq_len=8, batch_size=2, tokens=1e3, lr=1e-2, weight_decay=0.1)
    x = torch.randint(0, 32, (2, 9))
    models, losses = [], []
    for fused in (False, True):
        torch.manual_seed(0)
        model = build_model(config)
        optimizer = build_optimizer(model.parameters(), settings, fused=fused)
        assert optimizer.defaults["fused"] is (True if fused else None)
        for _ in range(5):
            loss = model(x[:, :-1], labels=x[:, 1:]).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            losses.append(loss.item())
        models.append(dict(model.named_parameters()))
    assert build_optimizer(models[0].values(), settings).defaults["fused"]  # the default on a CPU
    assert losses[:5] == pytest.approx(losses[5:], rel=1e-5)
    travel = 5 * settings.lr  # Adam moves a weight by at most about lr a step
    for name, p in models[0].items():
        assert (p - models[1][name]).abs().max() < 1e-3 * travel, name
    gamma = models[0]["lower_bounds.gamma"]
    assert not torch.equal(gamma, torch.zeros_like(gamma))  # it trained


def test_train_loss_is_logged_only_at_the_steps_the_logger_writes(tmp_path, monkeypatch):
    """LanguageModelTask calls self.log only every log_every_n_steps steps (it costs as much as the rest
    of Lightning's step); the CSV log holds the same rows as when it logged every step."""
    from linscale.train.module import LanguageModelTask

    preset = tiny_preset(tokens=32 * 8 * 60)  # 60 steps: Lightning logs every 3rd
    calls = []
    original = LanguageModelTask._logs_this_step
    monkeypatch.setattr(LanguageModelTask, "_logs_this_step", lambda self: calls.append(original(self)) or calls[-1])
    ours = run_tiny(tmp_path, "ours", preset)
    assert calls.count(True) == 20 and len(calls) == 60
    monkeypatch.setattr(LanguageModelTask, "_logs_this_step", lambda self: True)
    every = run_tiny(tmp_path, "every", preset)
    logged = [(run / "logs" / "version_0" / "metrics.csv").read_text() for run in (ours, every)]
    assert logged[0] == logged[1] and logged[0].count("\n") > 20


def test_a_cooldown_branched_from_a_kept_checkpoint_is_the_run_trained_from_scratch(tmp_path):
    """``branch_run``: a wsd cooldown started from a constant-LR run's checkpoint kept at step 11 gives the
    same records and weights as the wsd run trained from step 0 (the cooldown probe's measure rests on it)."""
    from linscale.train import branch_run

    source = run_tiny(tmp_path, "constant", tiny_preset(keep_checkpoints=[11]))
    assert checkpoint_steps(24, 5) == [1, 2, 5, 11, 24]
    assert (source / "checkpoints" / "step=11.ckpt").is_file()
    assert not (source / "checkpoints" / "step=5.ckpt").exists()
    cooldown = tiny_preset(schedule="wsd", decay_fraction=13 / 24, min_lr_ratio=0.0)
    scratch = run_tiny(tmp_path, "scratch", cooldown)
    _, specs = plan_runs(cooldown)
    branch = branch_run(source, 11, tmp_path / "branch", specs[0])
    train_run(branch)
    assert read_status(branch)["resumed_from"] == [11]
    assert records_equal(to_frame(read_records(branch)), to_frame(read_records(scratch)))
    ours, theirs = load_checkpoint(branch / "export" / "step=24")[0], load_checkpoint(scratch / "export" / "step=24")[0]
    assert all(torch.equal(a, b) for a, b in zip(ours.state_dict().values(), theirs.state_dict().values()))
    # a branch that records fewer steps keeps only the source's rows at its own record steps
    _, sparse = plan_runs(tiny_preset(schedule="wsd", decay_fraction=13 / 24, min_lr_ratio=0.0, checkpoints=2))
    train_run(branch_run(source, 11, tmp_path / "sparse", sparse[0]))
    wanted = to_frame(read_records(scratch))
    assert records_equal(to_frame(read_records(tmp_path / "sparse")), wanted[wanted["step"].isin([1, 24])])
    # the constant run itself is not the cooldown: the branch did change the schedule
    assert read_records(source)[-1]["val_loss"] != read_records(branch)[-1]["val_loss"]


def test_a_branch_whose_schedule_differs_before_its_branch_point_is_refused(tmp_path):
    from linscale.train import branch_run

    source = run_tiny(tmp_path, "constant", tiny_preset(keep_checkpoints=[11]))
    _, early = plan_runs(tiny_preset(schedule="wsd", decay_fraction=0.75, min_lr_ratio=0.0))  # decays from step 6
    with pytest.raises(ConfigError, match="differs from its source's at step 6"):
        branch_run(source, 11, tmp_path / "early", early[0])
    with pytest.raises(ConfigError, match="no checkpoint kept at step 5"):
        branch_run(source, 5, tmp_path / "missing", early[0])
    with pytest.raises(ConfigError, match="train.keep_checkpoints: 12 is not one of this run's record steps"):
        plan_runs(tiny_preset(keep_checkpoints=[12]))
    # a preset's train block is not a run's settings: its sizes may set their own budgets
    preset = tiny_preset(keep_checkpoints=[18], tokens=32 * 8 * 10)
    preset["sizes"]["s1"]["train"] = {"tokens": 32 * 8 * 48}
    assert TrainSettings.from_dict(plan_runs(preset)[1][0]["train"]).keep_checkpoints == [18]


def test_a_warmup_that_outlasts_its_run_is_refused_per_run():
    # tiny_preset trains 24 steps: a 24-step warmup never reaches train.lr
    with pytest.raises(ConfigError, match="train.warmup_steps: 24 is not less than this run's 24 steps"):
        plan_runs(tiny_preset(schedule="warmup", warmup_steps=24))
    assert plan_runs(tiny_preset(schedule="cosine", warmup_steps=23))[1][0]["train"]["warmup_steps"] == 23
    assert plan_runs(tiny_preset(schedule="constant", warmup_steps=24))  # a constant LR has no warmup to end
    # judged on the run's own budget: a size that trains longer than the train block's tokens keeps its warmup
    preset = tiny_preset(schedule="warmup", warmup_steps=30)
    preset["sizes"]["s1"]["train"] = {"tokens": 32 * 8 * 48}
    assert plan_runs(preset)[1][0]["train"]["warmup_steps"] == 30


FSDP_DTYPES = """
import os, sys, torch, torch.distributed as dist
os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=sys.argv[1])
dist.init_process_group("gloo", rank=0, world_size=1)
from torch.distributed.fsdp import FullyShardedDataParallel
from torch.distributed.fsdp.wrap import ModuleWrapPolicy
from linscale.config import ModelConfig
from linscale.models import build_model
from linscale.models.common import Block
from linscale.train.run import fsdp_strategy
model = build_model(ModelConfig(arch=sys.argv[3], vocab_size=64, d_model=32, n_layer=2, n_head=4, chunk_size=16))
seen = {}
mixer, ffn = model.blocks[0].token_mixer, model.blocks[0].channel_mixer
if sys.argv[3] == "cosformer2":
    mixer.register_forward_pre_hook(lambda m, a: seen.update(theta=m.theta.dtype, q_proj=m.q_proj.weight.dtype))
else:  # hgrn2: the lower-bound table's forward runs inside the root's
    model.lower_bounds.register_forward_pre_hook(lambda m, a: seen.update(gamma=m.gamma.dtype))
    mixer.register_forward_pre_hook(lambda m, a: seen.update(q_proj=m.q_proj.weight.dtype))
ffn.register_forward_pre_hook(lambda m, a: seen.update(ffn=next(m.parameters()).dtype))
strategy = fsdp_strategy(on_gpu=True, precision=sys.argv[2])  # the paper preset's, as the trainer builds it
wrapped = FullyShardedDataParallel(model, auto_wrap_policy=ModuleWrapPolicy({Block}), device_id=torch.device("cpu"),
                                   mixed_precision=strategy.mixed_precision_config, use_orig_params=True)
wrapped(torch.randint(0, 64, (2, 40)))
print(" ".join(f"{name}={dtype}".replace("torch.", "") for name, dtype in sorted(seen.items())))
dist.destroy_process_group()
"""


@pytest.mark.parametrize("arch,expected", [("cosformer2", "ffn=bfloat16 q_proj=float32 theta=float32"),
                                           ("hgrn2", "ffn=bfloat16 gamma=float32 q_proj=bfloat16")])
def test_fsdp_reduces_in_fp32_and_keeps_angles_and_lower_bounds_fp32(arch, expected):
    """Under bf16-mixed (the paper preset's), Lightning gives FSDP param_dtype = reduce_dtype = bf16: every
    parameter is gathered in bf16 for the forward, and gradients are summed across ranks in bf16. For
    cosFormer2's LRPE angles θ, used as s·θ, that is an angle off by up to 11 rad at position 8191: the
    model trained is not the one evaluated in fp32; for HGRN2's lower-bound table Γ, 1 − lb off by up to
    0.4-11% (Γ of scale 0.5-2). The strategy reduces in fp32, and FSDP wraps cosFormer2's attention and HGRN2's
    table apart in fp32 (the attention's matmuls still run in bf16 under autocast); the rest computes in
    bf16. Here the model is wrapped as on a GPU, in one process over gloo."""
    import subprocess

    from linscale.train.run import fsdp_mixed_precision

    mixed = fsdp_mixed_precision("bf16-mixed")
    assert (mixed.param_dtype, mixed.reduce_dtype, mixed.buffer_dtype) == (torch.bfloat16, torch.float32, torch.float32)
    assert fsdp_mixed_precision("32-true") is None and fsdp_mixed_precision("bf16-true") is None  # Lightning's own
    proc = subprocess.run([sys.executable, "-c", FSDP_DTYPES, free_port(), "bf16-mixed", arch], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == expected


# ---------------------------------------------------------------------------- resume: what a run folder decides


def test_a_finished_or_diverged_run_is_not_trained_again_and_keeps_its_status(tmp_path, monkeypatch):
    """A sweep run again trains only what is missing: a done or diverged run returns its state at once, its
    status.json (wall time, resumed_from) untouched."""
    from linscale.train import run as run_module

    done = run_tiny(tmp_path, "done")
    preset = tiny_preset()
    preset["sizes"]["s1"]["init_std"] = 1e30  # overflows at once
    diverged = run_tiny(tmp_path, "diverged", preset)
    before = {run_dir: (run_dir / "status.json").read_bytes() for run_dir in (done, diverged)}
    monkeypatch.setattr(run_module, "_fit", lambda *a, **k: pytest.fail("a finished run was trained again"))
    assert train_run(done) == "done" and train_run(diverged) == "diverged"
    assert {run_dir: (run_dir / "status.json").read_bytes() for run_dir in before} == before


def test_a_status_without_a_state_reads_as_damaged(tmp_path):
    """A status.json that is JSON but has no state is as unreadable as a cut-short one (a KeyError before)."""
    (tmp_path / "status.json").write_text('{"step": 3}')
    assert read_status(tmp_path) == {"state": "damaged"}
    (tmp_path / "status.json").write_text('["done"]')
    assert read_status(tmp_path) == {"state": "damaged"}


def test_a_records_file_is_not_rebuilt_from_a_checkpoint_without_a_recorder(tmp_path):
    """Only the ScalingRecorder's state holds a run's rows: a checkpoint without it is no source for them."""
    from linscale.train.run import RecordsDamaged

    run_dir = run_tiny(tmp_path, "r")
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    state = torch.load(ckpt, weights_only=True)
    state["callbacks"] = {}
    torch.save(state, ckpt)
    (run_dir / "records.json").write_text("[{")
    with pytest.raises(RecordsDamaged, match="records.json: not readable JSON, and no checkpoint holds its rows"):
        read_records(run_dir)


def test_a_run_folder_holding_only_an_export_refuses_other_settings(tmp_path):
    """An export is computed work (evaluation reads it): a folder with one but no checkpoint or record must
    not take another run's settings, or the export would be named by settings it was not trained with."""
    _, specs = plan_runs(tiny_preset())
    run_dir = prepare_run(tmp_path / "r", specs[0])
    (run_dir / "export" / "step=24").mkdir(parents=True)
    _, other = plan_runs(tiny_preset(lr=1e-2))
    with pytest.raises(ConfigError, match="started with different settings"):
        prepare_run(run_dir, other[0])
    assert json.loads((run_dir / "spec.json").read_text())["train"]["lr"] == 3e-3


def test_a_changed_data_setting_or_three_changes_are_named_in_the_refusal(tmp_path):
    """The data are part of a run's identity (another data.seed is another corpus); three changes are all
    named, with no 'and N more'; a spec.json that is JSON but not a spec is unreadable, not a diff."""
    _, specs = plan_runs(tiny_preset())
    run_dir = prepare_run(tmp_path / "r", specs[0])
    (run_dir / "records.json").write_text(json.dumps(_rows(1)))  # it has computed something
    other_data = json.loads(json.dumps(specs[0]))
    other_data["data"]["seed"] = 1
    with pytest.raises(ConfigError, match=r"different settings \(data.seed: None -> 1\)"):
        prepare_run(run_dir, other_data)
    _, three = plan_runs(tiny_preset(lr=1e-2, seed=7, warmup_steps=1))
    with pytest.raises(ConfigError, match=r"\(train.lr: 0.003 -> 0.01; train.seed: 0 -> 7; "
                                          r"train.warmup_steps: 0 -> 1\); use another") as err:
        prepare_run(run_dir, three[0])
    assert "more" not in str(err.value)
    (run_dir / "spec.json").write_text('{"run_id": "tnl-s1"}')
    with pytest.raises(ConfigError, match="spec.json: not a readable run spec, and the run has computed something"):
        prepare_run(run_dir, specs[0])


def test_a_run_whose_training_stops_short_is_failed_not_done(tmp_path, monkeypatch):
    """Lightning may return from fit early (a callback's stop, a data loader that runs dry): the run must not
    be marked done with fewer steps than its budget, or its rows would enter the fits as a finished run."""
    import lightning as L

    _, specs = plan_runs(tiny_preset())
    run_dir = prepare_run(tmp_path / "r", specs[0])
    monkeypatch.setattr(L.Trainer, "fit", lambda self, *a, **k: None)
    with pytest.raises(RuntimeError, match="training stopped at step 0 of 24"):
        train_run(run_dir)
    status = read_status(run_dir)
    assert status["state"] == "failed" and "training stopped at step 0 of 24" in status["error"]


def test_branching_again_leaves_a_trained_branch_alone(tmp_path):
    """branch_run is idempotent: called again on a branch that trained (a study's stage run twice), it must
    not put the source's step-11 checkpoint back over the branch's finished one."""
    from linscale.train import branch_run
    from linscale.train.callbacks import load_lightning_checkpoint

    source = run_tiny(tmp_path, "constant", tiny_preset(keep_checkpoints=[11]))
    _, specs = plan_runs(tiny_preset(schedule="wsd", decay_fraction=13 / 24, min_lr_ratio=0.0))
    branch = branch_run(source, 11, tmp_path / "branch", specs[0])
    assert train_run(branch) == "done"
    records = read_records(branch)
    assert branch_run(source, 11, branch, specs[0]) == branch
    assert load_lightning_checkpoint(branch / "checkpoints" / "last.ckpt")["global_step"] == 24
    assert read_records(branch) == records and train_run(branch) == "done"


# ---------------------------------------------------------------------------- the recorder without Lightning


class _Clock:
    """time.monotonic for the recorder: each optimiser step of the drive below takes ``per_step`` seconds."""

    def __init__(self, per_step: float = 1.0):
        self.now, self.per_step = 100.0, per_step

    def monotonic(self) -> float:
        return self.now

    @staticmethod
    def time() -> float:
        return 0.0


class _Trainer:
    """What ScalingRecorder reads of a Lightning trainer; a checkpoint's bytes name the step it was saved at."""

    def __init__(self, step: int = 0):
        from types import SimpleNamespace

        self.global_step, self.is_global_zero, self.logger, self.should_stop = step, True, None, False
        self.datamodule, self.val_dataloaders = None, []
        self.optimizers = [SimpleNamespace(param_groups=[{"lr": 1e-3}])]
        self.saved: list[int] = []

    def save_checkpoint(self, path, weights_only=False):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(str(self.global_step))
        self.saved.append(self.global_step)


class _Task:
    """What ScalingRecorder reads of a LanguageModelTask: step s's loss is 3 - s/100 (its Bayes loss 1 + s/1000),
    popped once per optimiser step as the real task's is; every held-out loss 2.5."""

    def __init__(self, trainer: _Trainer):
        from types import SimpleNamespace

        self.trainer = trainer
        self.config = SimpleNamespace(arch="tnl", n_layer=1, d_model=16, n_head=2, d_ffn=48)
        self.params, self.params_total, self.tokens_per_step, self.flops_per_token = 1000, 1400, 256, 6e3
        self.diverged, self.diverged_step = False, None
        self.val_loss = 2.5

    def pop_step_loss(self) -> float:
        return 3.0 - self.trainer.global_step / 100

    def pop_step_bayes(self) -> float:
        return 1.0 + self.trainer.global_step / 1000

    def evaluate(self, loader, max_batches=None) -> dict:
        return {"val_loss": self.val_loss, "bayes_loss": 1.0}


def _recorder(tmp_path, monkeypatch, clock: _Clock, **train):
    from linscale.train import callbacks

    monkeypatch.setattr(callbacks, "time", clock)
    _, specs = plan_runs(tiny_preset(**train))
    recorder = callbacks.ScalingRecorder(tmp_path, specs[0])
    exported = []
    monkeypatch.setattr(recorder, "_export", lambda trainer, task, step: exported.append(step))
    return recorder, exported


def _drive(recorder, trainer, task, clock, last: int, accumulate: int = 2) -> None:
    """Lightning's calls for the optimiser steps up to ``last``: ``accumulate`` micro-batches each, whose
    batch-end hooks before the last see the previous global step (no optimiser step yet)."""
    recorder.on_train_start(trainer, task)
    while trainer.global_step < last:
        step = trainer.global_step + 1
        for micro in range(accumulate):
            if micro == accumulate - 1:
                trainer.global_step = step
                clock.now += clock.per_step
            recorder.on_train_batch_end(trainer, task, None, None, micro)


def test_the_recorder_writes_a_row_and_a_resume_checkpoint_at_each_record_step_only(tmp_path, monkeypatch):
    """With two micro-batches per optimiser step, each step counts once: its tokens (b·n), its compute
    (flops_per_token · tokens), its loss in the train_loss window; and a resume checkpoint is written at
    each record step, a kept copy of it at each keep step, an export at each export step."""
    clock = _Clock()
    recorder, exported = _recorder(tmp_path, monkeypatch, clock, keep_checkpoints=[5], loss_window=3)
    trainer = _Trainer()
    task = _Task(trainer)
    _drive(recorder, trainer, task, clock, 24)
    steps = checkpoint_steps(24, 5, 0.01)
    records = read_records(tmp_path)
    assert [r["step"] for r in records] == steps == trainer.saved and records == recorder.records
    for row in records:
        s = row["step"]
        assert row["tokens"] == s * 8 * 32 and row["flops"] == 6e3 * s * 8 * 32
        assert row["pf_days"] == pytest.approx(row["flops"] / 8.64e19, rel=1e-12)
        window = range(max(1, s - 2), s + 1)  # the last three steps
        assert row["train_loss"] == pytest.approx(np.mean([3.0 - k / 100 for k in window]), rel=1e-12)
        assert row["train_bayes_loss"] == pytest.approx(np.mean([1.0 + k / 1000 for k in window]), rel=1e-12)
        assert row["wall_time_s"] == pytest.approx(s * clock.per_step) and not row["diverged"]
    assert exported == TrainSettings.from_dict(tiny_preset()["train"]).export_steps() == [24]
    assert (tmp_path / "checkpoints" / "step=5.ckpt").read_text() == "5"  # the copy of step 5's checkpoint
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["last.ckpt", "step=5.ckpt"]
    assert json.loads((tmp_path / "progress.json").read_text())["tokens"] == 24 * 256


def test_a_resume_checkpoint_is_also_written_every_save_every_minutes_between_record_steps(tmp_path, monkeypatch):
    clock = _Clock(per_step=25.0)  # a step every 25 s: more than a minute has passed every third step
    recorder, _ = _recorder(tmp_path, monkeypatch, clock, save_every_minutes=1.0)
    trainer = _Trainer()
    _drive(recorder, trainer, _Task(trainer), clock, 24)
    records = set(checkpoint_steps(24, 5, 0.01))
    between = [s for s in trainer.saved if s not in records]
    assert set(trainer.saved) >= records and between
    last = 0
    for s in trainer.saved:  # a save between records comes only when a minute has passed since the last save
        assert s in records or (s - last) * 25.0 > 60, trainer.saved
        last = s


def test_a_resumed_recorder_continues_the_same_rows_losses_and_wall_time(tmp_path, monkeypatch):
    """A run stopped after record step 5, resumed, stopped after record step 11 and resumed again, each time
    from that step's checkpoint (the recorder's state, Lightning's global step), ends with the uninterrupted
    run's rows: no row twice, the train_loss window (8 steps) carried over, the wall time summed over the
    three attempts, the steps it resumed from listed."""
    clock = _Clock()
    whole, _ = _recorder(tmp_path / "whole", monkeypatch, clock)
    trainer = _Trainer()
    _drive(whole, trainer, _Task(trainer), clock, 24)
    assert whole.resumed_from == []

    clock, state = _Clock(), None
    for start, stop in ((0, 5), (5, 11), (11, 24)):
        clock.now += 1000.0  # the time between the attempts is not training time
        recorder, _ = _recorder(tmp_path / "cut", monkeypatch, clock)
        if state is not None:
            recorder.load_state_dict(state)
        trainer = _Trainer(step=start)
        _drive(recorder, trainer, _Task(trainer), clock, stop)
        state = recorder.state_dict()
        assert state["wall_time"] == pytest.approx(stop * clock.per_step)
    assert recorder.resumed_from == [5, 11]
    assert read_records(tmp_path / "cut") == recorder.records
    assert recorder.records == whole.records  # wall_time_s included: 1 s a step in both


def test_a_recorder_writes_a_diverged_row_at_the_step_whose_loss_was_not_finite(tmp_path, monkeypatch):
    """The loss of step 7 not finite (the task's diverged_step): one diverged row of step 7's tokens and
    compute, after which nothing is recorded; a held-out loss that is not finite at a record step marks
    that row diverged and stops training."""
    clock = _Clock()
    recorder, _ = _recorder(tmp_path / "loss", monkeypatch, clock)
    trainer = _Trainer()
    task = _Task(trainer)
    _drive(recorder, trainer, task, clock, 6)
    task.diverged, task.diverged_step = True, 7
    trainer.global_step = 7  # Lightning 2.6 counts the skipped step too by the time the callbacks run
    recorder.on_train_batch_end(trainer, task, None, None, 0)
    recorder.on_train_batch_end(trainer, task, None, None, 1)
    rows = read_records(tmp_path / "loss")
    assert [(r["step"], r["diverged"]) for r in rows] == [(1, False), (2, False), (5, False), (7, True)]
    assert rows[-1]["tokens"] == 7 * 256 and rows[-1]["flops"] == 6e3 * 7 * 256

    recorder, _ = _recorder(tmp_path / "weights", monkeypatch, clock)
    trainer = _Trainer()
    task = _Task(trainer)
    _drive(recorder, trainer, task, clock, 4)
    task.val_loss = float("nan")
    _drive(recorder, trainer, task, clock, 5)
    rows = read_records(tmp_path / "weights")
    assert [(r["step"], r["diverged"]) for r in rows] == [(1, False), (2, False), (5, True)]
    assert trainer.should_stop and task.diverged and trainer.saved == [1, 2]  # no resume checkpoint of bad weights


def test_a_loss_not_finite_in_an_early_micro_batch_is_recorded_at_the_step_being_taken(tmp_path, monkeypatch):
    """With gradient accumulation the loss can turn non-finite in a micro-batch before the step's last, while
    Lightning's global step is still the previous step's: the diverged row is the task's diverged_step, the
    step being taken, not the global step (here record step 5, already in the table: a duplicate row)."""
    clock = _Clock()
    recorder, _ = _recorder(tmp_path, monkeypatch, clock)
    trainer = _Trainer()
    task = _Task(trainer)
    _drive(recorder, trainer, task, clock, 5)
    task.diverged, task.diverged_step = True, 6
    recorder.on_train_batch_end(trainer, task, None, None, 0)  # step 6's first micro-batch: global step 5
    rows = read_records(tmp_path)
    assert [(r["step"], r["diverged"]) for r in rows] == [(1, False), (2, False), (5, False), (6, True)]
    assert rows[-1]["tokens"] == 6 * 256 and rows[-1]["flops"] == 6e3 * 6 * 256
    assert (rows[-1]["train_loss"], rows[-1]["train_bayes_loss"]) == (task.pop_step_loss(), task.pop_step_bayes())
    validate_results(to_frame(rows))


def test_a_recorders_rows_take_the_optimisers_lr_and_the_runs_seed_and_progress_shows_each_record(tmp_path,
                                                                                                   monkeypatch):
    """lr is the last step's learning rate as the optimiser holds it (the schedule's value, not train.lr),
    seed the run's; progress.json shows a record step and its held-out loss when it is recorded, not only
    every 2 s; a checkpoint of a recorder that kept no Bayes losses yet (an older linscale) resumes."""
    clock = _Clock(per_step=0.5)  # progress every 2 s alone: steps 5 and 10, not 11
    recorder, _ = _recorder(tmp_path, monkeypatch, clock, seed=3)
    trainer = _Trainer()
    trainer.optimizers[0].param_groups[0]["lr"] = 1.25e-4
    _drive(recorder, trainer, _Task(trainer), clock, 11)
    rows = read_records(tmp_path)
    assert [r["step"] for r in rows] == [1, 2, 5, 11]
    assert {r["lr"] for r in rows} == {1.25e-4} and {r["seed"] for r in rows} == {3}
    progress = json.loads((tmp_path / "progress.json").read_text())
    assert (progress["step"], progress["val_loss"]) == (11, 2.5)
    state = recorder.state_dict()
    del state["bayes_losses"]
    resumed, _ = _recorder(tmp_path / "resumed", monkeypatch, clock, seed=3)
    resumed.load_state_dict(state)
    assert resumed.records == rows and resumed.losses == recorder.losses and resumed.bayes_losses == []
