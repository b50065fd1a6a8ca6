"""`linscale bench --quick`: the benchmark code runs end to end and its tables have the promised shape.

Speed itself is never asserted here (a loaded CI machine would make that flaky); the goals are checked by
the benchmark's own report, from ratios measured side by side."""
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from linscale import bench
from linscale.cli import main
from linscale.config import ARCHITECTURES, LINEAR_ARCHITECTURES


@pytest.fixture(scope="module")
def tables():
    return bench.run_all(quick=True, log=None)


def test_training_table(tables):
    assert set(tables) == set(bench.DEFAULT_SECTIONS)  # compile and end_to_end only on request
    t = tables["training"]
    assert list(t.model) == [*ARCHITECTURES, "hf_llama"]
    assert {"tokens_per_s", "step_s", "vs_hf_llama", "seq_len", "batch_size"} <= set(t.columns)
    assert (t.tokens_per_s > 0).all() and (t.vs_hf_llama > 0).all()
    assert t.loc[t.model == "hf_llama", "vs_hf_llama"].item() == 1.0


def test_length_and_decoding_tables(tables):
    length, dec = tables["length"], tables["decoding"]
    assert set(length.mixer) == set(ARCHITECTURES) and set(length.seq_len) == set(bench.QUICK["seq_lens"])
    assert (length.batch_size * length.seq_len == bench.QUICK["tokens_per_batch"]).all()  # fixed tokens/batch
    assert (length.us_per_token > 0).all() and (length[length.seq_len == length.attrs["reference_len"]].vs_ref == 1.0).all()
    assert set(dec.context) == set(bench.QUICK["contexts"]) and (dec.ms_per_token > 0).all()
    # every row names the shape it timed (the efficiency chapter compares two reports only on one shape)
    configs = bench.bench_configs("cpu", quick=True)
    assert all((row.n_layer, row.d_model) == (configs[row.model].n_layer, configs[row.model].d_model)
               for row in dec.itertuples())
    # memory is a structural fact, not a timing: constant for the linear models, growing for LLaMA's cache
    assert (dec[dec.model.isin(LINEAR_ARCHITECTURES)].state_vs_ref == 1.0).all()
    assert dec[dec.model == "llama"].state_vs_ref.max() > 1


def test_goals_and_report(tables, tmp_path):
    g = bench.goals(tables)
    assert {"goal", "figure", "threshold", "met"} <= set(g.columns) and len(g) >= 8
    mfu = g[g.goal.str.contains("MFU")]
    assert len(mfu) == 8 and set(mfu.threshold) == {">= 25%", ">= 40%"}  # every arch, smallest and largest
    assert g.goal.str.contains("main grid training time").sum() == 1
    assert g.goal.str.contains("batched model").sum() == len(ARCHITECTURES)
    path = bench.write_report(tables, tmp_path, quick=True)
    text = path.read_text()
    assert path.name.endswith("-cpu-bench-quick.md") and "torch" in text and "## Goals" in text
    assert "fp32 GEMM rate of this core" in text and "### fp32 GEMM rate, after the model timings" in text
    # a report of some sections only is not a full report, which the book reads
    partial = bench.write_report({"utilisation": tables["utilisation"]}, tmp_path / "p", sections=["utilisation"])
    assert partial.name.endswith("-cpu-bench-only-utilisation.md") and bench.cpu_reports(tmp_path / "p") == []
    full = bench.write_report(tables, tmp_path / "f", sections=[*bench.DEFAULT_SECTIONS, "end_to_end"])
    assert full.name.endswith("-cpu-bench.md") and bench.cpu_reports(tmp_path / "f") == [full]
    # the book names the sections it reads: a partial report is refused in one line naming what it lacks
    assert bench.committed_report(tmp_path / "f", sections=("length", "decoding")).path == full
    with pytest.raises(bench.ConfigError, match=r"only-utilisation\.md has no length, decoding table"):
        bench.committed_report(tmp_path / "p", partial.name, sections=("length", "decoding", "utilisation"))


def test_utilisation_table(tables):
    """MFU is counted FLOP/s over the GEMM peak measured in the same call; the profile's shares add up."""
    u = tables["utilisation"]
    assert set(zip(u.arch, u.which)) == {(a, w) for a in ARCHITECTURES for w in ("smallest", "largest")}
    peak = u.attrs["peak"]
    assert peak > 0 and u.attrs["typical"] <= peak
    assert peak == max(t.gflops.max() for t in u.attrs["peaks"])
    assert ((u.mfu - u.gflops / peak).abs() < 1e-12).all() and ((u.mfu_all - u.all_gflops / peak).abs() < 1e-12).all()
    shares = u[[f"{c}_pct" for c in bench.PROFILE_CATEGORIES]]
    assert (shares >= 0).all().all() and ((shares.sum(axis=1) - 100).abs() < 1e-6).all()
    assert (u.gemm_pct > 0).all() and (u.mixer_pct > 0).all() and (u.loss_pct > 0).all() and (u.optimizer_pct > 0).all()
    small, large = (u[u.which == w].set_index("arch") for w in ("smallest", "largest"))
    assert (small.params < large.params).all()


def test_changes_lightning_attention_and_batched_tables(tables):
    c = tables["changes"]
    assert set(c.which) == {"smallest", "largest"} and len(c) == 2 * len(ARCHITECTURES)
    assert abs(c.attrs["grid_speedup"] - c.before_ms.sum() / c.after_ms.sum()) < 1e-12
    assert ((c.gain - c.before_ms / c.after_ms).abs() < 1e-9).all() and (c[["loss_gain", "adamw_gain"]] > 0).all().all()
    light = tables["lightning"]
    assert list(light.which) == ["smallest"] * len(ARCHITECTURES) and (light.bare_ms > 0).all()
    assert light.log_every_step_ms.notna().all()
    assert ((light.overhead_ms - (light.lightning_ms - light.bare_ms)).abs() < 1e-9).all()
    att = tables["attention"]
    assert list(att["which"]) == ["smallest", "largest"] and (att[["sdpa_ms", "math_ms", "explicit_ms"]] > 0).all().all()
    b = tables["batched"]
    assert list(b.arch) == list(ARCHITECTURES) and ((b.speedup - b.sequential_ms / b.batched_ms).abs() < 1e-9).all()
    assert (b.upper_bound > 0).all()


def test_the_reproducibility_scripts_presets_plan_as_the_sweep_takes_them(tmp_path):
    """benchmarks/check_cpu_reproducibility.py and check_cross_machine.py cut the cpu preset to one size:
    both stopped at plan when the preset gained context_size (a size they cut away), and again when a
    preset file had to be named as its name: says. Nothing ran them."""
    import importlib.util

    import yaml

    from linscale.train.run import plan_runs

    def script(name):
        spec = importlib.util.spec_from_file_location(name, Path(__file__).parent.parent / "benchmarks" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    repro, cross = script("check_cpu_reproducibility"), script("check_cross_machine")
    presets = {f"repro-{size}": repro.preset(size, 8) for size in ("s1", "s5")}
    presets["cross-machine"] = cross.cross_machine_preset("s1", ["llama", "tnl"])
    for name, preset in presets.items():
        assert preset["name"] == name  # the file each script writes is named so
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(preset))
        _, specs = plan_runs(str(tmp_path / f"{name}.yaml"))
        assert {s["size"] for s in specs} == set(preset["sizes"]) and {s["arch"] for s in specs} == set(preset["archs"])


def test_grid_sizes_come_from_the_preset(tmp_path):
    """The benchmark reads the grid from the preset (the cpu grid is being redesigned): any sizes, smallest
    and largest by non-embedding parameters whatever their order in the file."""
    preset = tmp_path / "mine.yaml"
    preset.write_text("name: mine\narchs: [tnl, llama]\nmodel: {vocab_size: 50, ffn_multiple_of: 16}\n"
                      "sizes:\n  mid: {n_layer: 2, d_model: 32, n_head: 2}\n  big: {n_layer: 3, d_model: 48, n_head: 2}\n"
                      "  tiny: {n_layer: 1, d_model: 16, n_head: 2}\ntrain: {seq_len: 16, batch_size: 2}\n")
    grid = bench.grid_configs(str(preset))
    assert [c.name for c in grid["tnl"]] == ["tiny", "mid", "big"]
    extremes = bench.grid_extremes(grid)
    assert extremes["llama", "smallest"].name == "tiny" and extremes["llama", "largest"].name == "big"
    assert bench.train_settings(str(preset)).batch_size == 2


def test_an_unknown_preset_is_refused_by_the_library_not_timed_as_a_default_shape():
    """A caller from Python (not only the CLI) gets the preset's one-line error: the benchmark used to time
    a default shape for a misspelled preset and report it as that preset's largest size."""
    from linscale.config import ConfigError

    with pytest.raises(ConfigError, match=r"^preset: unknown preset 'cpuu'"):
        bench.bench_configs("cpuu")
    with pytest.raises(ConfigError, match=r"^preset: unknown preset 'cpuu'"):
        bench.run_all(sections=("training",), preset="cpuu", log=None)
    assert set(bench.bench_configs(None)) == set(ARCHITECTURES)  # no preset: the default shape, as documented


def test_profile_categories_follow_backward_kernels_to_their_forward_region():
    """_categorise on hand-made profiler events: a backward kernel counts where the autograd node that ran
    it was created (the mixer), matrix products count as GEMM anywhere, the optimizer's scope counts
    whole, and what no kernel took is framework."""
    class Event:
        def __init__(self, name, us=0.0, parent=None, seq=-1, total=None):
            self.name, self.self_cpu_time_total, self.cpu_parent, self.sequence_nr = name, us, parent, seq
            self.cpu_time_total = us if total is None else total

    mixer = Event("linscale::mixer")
    backward = Event("autograd::engine::evaluate_function: SigmoidBackward0", seq=7)
    optimizer = Event("linscale::optimizer", 5, total=150)
    events = [mixer, Event("aten::sigmoid", 100, mixer, seq=7), Event("aten::mm", 300, mixer, seq=8), backward,
              Event("aten::sigmoid_backward", 200, backward), Event("aten::mul", 50), optimizer,
              Event("aten::add_", 40, optimizer), Event("aten::mm", 100, Event("autograd::engine::evaluate_function: X", seq=99))]
    shares = bench._categorise(events, wall_s=0.001)  # 1000 us
    assert shares == pytest.approx(dict(gemm=0.4, mixer=0.3, loss=0.0, optimizer=0.15, other=0.05, framework=0.1))


def test_compile_gain_reports_a_case_still_compiling():
    cfg = bench.grid_configs(quick=True)["tnl"][0]
    t = bench.compile_gain({("tnl", "smallest"): cfg}, bench.train_settings(quick=True), timeout_s=0.5)
    row = t.iloc[0]
    assert "still compiling after" in row.note and not row.repaid and row.compile_s != row.compile_s  # NaN


def test_compile_gain_weighs_each_size_against_its_own_run_length():
    """The cpu grid gives every size its own token budget: the compile time is repaid, or not, within
    that size's run, which is as many steps as the study trained it (results/cpu/runs.parquet)."""
    import pandas as pd

    steps = bench.size_steps("cpu")
    trained = pd.read_parquet(Path(__file__).parent.parent / "results" / "cpu" / "runs.parquet")
    assert steps == trained.groupby("size")["step"].max().to_dict()
    assert len(set(steps.values())) > 1  # not one budget for all
    cfg = bench.grid_configs(quick=True)["tnl"][0]
    t = bench.compile_gain({("tnl", "smallest"): cfg}, bench.train_settings(quick=True), timeout_s=0.5,
                           run_steps={cfg.name: 1234})
    assert t.iloc[0].run_steps == 1234


def test_cli_quick_prints_and_writes(tmp_path, capsys):
    assert main(["bench", "--quick", "--sections", "decoding", "--out", str(tmp_path)]) == 0
    assert "decoding" in capsys.readouterr().out and len(list(tmp_path.glob("*.md"))) == 1


def test_rounds_are_labelled_by_what_other_processes_used_and_land_in_a_report_the_efficiency_chapter_finds(monkeypatch, tmp_path):
    import pandas as pd

    ratios = iter([1.00, 0.70, 1.02])  # one row per round: its decoding ratio
    monkeypatch.setattr(bench, "run_all", lambda sections, log, **options: {
        "decoding": pd.DataFrame({"model": ["tnl"], "context": [8192], "ms_per_token": [0.6], "vs_ref": [next(ratios)]})})
    # (every process's CPU seconds, this one's) read before and after each round; the clock moves 10 s a round
    readings = iter([(0, 0), (10, 10),        # round 1: others used nothing
                     (10, 10), (25, 20),      # round 2: others used 5 s of 10: half a core
                     (25, 20), (37.5, 30)])   # round 3: 2.5 s of 10, a quarter of a core: not more, idle
    monkeypatch.setattr(bench, "cpu_seconds", lambda: next(readings))
    clock = iter(range(0, 100, 10))
    monkeypatch.setattr(bench, "_wall_clock", lambda: next(clock))
    tables = bench.run_rounds(3, ["decoding"], log=None)
    t = tables["decoding_rounds"]
    assert list(t["round"]) == [1, 2, 3] and list(t["machine"]) == ["idle", "loaded", "idle"]
    assert list(t["others_cores"]) == [0.0, 0.5, 0.25] and list(t["wall_s"]) == [10, 10, 10]
    assert list(t["vs_ref"]) == [1.00, 0.70, 1.02] and list(t.columns[:5]) == ["round", "start_utc", "wall_s",
                                                                               "others_cores", "machine"]
    path = bench.write_report(tables, tmp_path, sections=["length", "decoding"], rounds=3)
    assert "--rounds 3 --sections length,decoding" in path.read_text() and "## Goals" not in path.read_text()
    assert bench.rounds_reports(tmp_path, "decoding") == [path] and bench.cpu_reports(tmp_path) == []
    read = bench.read_report(path).tables["decoding_rounds"]
    assert list(read["machine"]) == ["idle", "loaded", "idle"] and list(read["vs_ref"]) == [1.00, 0.70, 1.02]
    # newest by the time each records, not by the sections its name lists: a hand-assembled report of the
    # same day, later in it, whose name sorts first
    day = path.name[:10]
    later = tmp_path / f"{day}-decoding-rounds-x.md"
    later.write_text(f"- date: {day}, 23:59-23:59 UTC\n\n## decoding_rounds\n")
    assert sorted(tmp_path.glob("*.md"))[-1] == path and bench.rounds_reports(tmp_path, "decoding") == [path, later]
    with pytest.raises(bench.ConfigError, match="rounds: expected a whole number >= 1"):
        bench.run_rounds(0, ["decoding"])


def test_cli_rounds_writes_every_round(tmp_path, capsys):
    assert main(["bench", "--quick", "--sections", "decoding", "--rounds", "2", "--out", str(tmp_path)]) == 0
    assert "## decoding_rounds" in capsys.readouterr().out
    (report,) = bench.rounds_reports(tmp_path, "decoding")
    assert set(bench.read_report(report).tables["decoding_rounds"]["round"]) == {1, 2}


def test_end_to_end_reports_failures_without_raising():
    """A preset that cannot run (or a missing `sweep` subcommand) is a row with ok=False and the reason."""
    t = bench.end_to_end(("no-such-preset",), timeout_s=120)
    assert list(t.columns) == ["preset", "wall_s", "ok", "note"]
    assert not t.ok.item() and t.note.item()


def test_a_probe_writes_its_report_and_tables_or_prints_the_report(tmp_path, capsys):
    import pandas as pd

    from linscale.probes import write_probe_outputs

    frame = pd.DataFrame({"arch": ["llama", "tnl"], "excess": [0.25, 0.9]})
    write_probe_outputs("# report\n", str(tmp_path / "r.md"), str(tmp_path / "t"), {"roles": frame})
    assert (tmp_path / "r.md").read_text() == "# report\n"
    assert pd.read_csv(tmp_path / "t" / "roles.csv").equals(frame)
    assert "# report" not in capsys.readouterr().out  # written, not printed
    write_probe_outputs("# printed\n")
    assert "# printed" in capsys.readouterr().out and sorted(p.name for p in tmp_path.iterdir()) == ["r.md", "t"]


def test_a_probes_failed_linscale_command_ends_in_one_line_naming_the_cli_error():
    from linscale.probes import run_cli

    with pytest.raises(SystemExit, match=r"^linscale train failed \(exit 2\): .*--set nonsense.key: unknown key"):
        run_cli("train", "--preset", "smoke", "--arch", "tnl", "--size", "s1", "--set", "nonsense.key=1")


def test_a_probes_failed_command_ends_in_the_clis_last_line_not_its_first(monkeypatch):
    """The CLI's error is its last line: a warning printed before it must not stand in for it."""
    from linscale import probes

    seen = {}

    def failed(command, **options):
        seen.update(command=command, **options)
        return SimpleNamespace(returncode=1, stderr=stderr)

    monkeypatch.setattr(probes.subprocess, "run", failed)
    stderr = "UserWarning: something slow\nlinscale: error: train.lr: expected a positive number, got -1\n\n"
    with pytest.raises(SystemExit, match=r"^linscale eval failed \(exit 1\): linscale: error: train\.lr: expected a "
                                         r"positive number, got -1$"):
        probes.run_cli("eval", "folder")
    assert seen["command"][1:] == ["-m", "linscale", "eval", "folder"] and callable(seen["preexec_fn"])
    stderr = "\n"
    with pytest.raises(SystemExit, match=r"^linscale eval failed \(exit 1\): no message$"):
        probes.run_cli("eval", "folder")


def test_a_probe_report_says_which_machine_by_the_keys_it_reports_and_no_others(monkeypatch):
    """probes.probe_report_head lists PROBE_MACHINE_KEYS of the machine's description, not all of it."""
    import datetime as dt

    from linscale import probes

    info = {"host": "h1", "cpu": "EPYC", "cores": 2, "python": "3.11", "torch": "2.9", "linscale": "0.1",
            "mkl_cbwr": "AVX2", "gpu": "none"}
    monkeypatch.setattr(probes, "machine_info", lambda: info)
    head = probes.probe_report_head("T", "p.", dt.datetime(2026, 12, 4, tzinfo=dt.timezone.utc))
    assert head[5:] == [f"- {key}: {info[key]}" for key in probes.PROBE_MACHINE_KEYS]


def test_a_retrain_control_at_exactly_its_tolerance_is_within_it():
    """The registered tolerance is the largest change allowed ("within": at most, not below)."""
    from linscale.findings import retrain_change
    from linscale.probes import retrain_control

    committed = pd.DataFrame({"run_id": ["a", "a"], "step": [1, 2], "val_loss": [2.0, 1.0]})
    retrained = committed.assign(val_loss=[2.0, 1.004])
    tolerance = retrain_change(retrained.assign(val_loss_committed=committed["val_loss"]))
    assert 0.0039 < tolerance < 0.0041
    assert "(within the registered" in retrain_control(retrained, committed, tolerance)[1]
    assert "(OUTSIDE the registered" in retrain_control(retrained, committed, tolerance * 0.99)[1]


def test_a_probe_reads_each_runs_last_retrieval_scores_and_names_a_run_it_cannot_evaluate(tmp_path):
    """probes.final_retrieval keeps each run's last evaluated step and the one metric a probe reports per
    retrieval task (NIAH's weighted accuracy, not its plain accuracy); probes.probe_retrieval ends in one
    line naming the folder when a run has no export to evaluate."""
    import pandas as pd

    from linscale.probes import final_retrieval, probe_retrieval

    rows = [("tnl-s5", "tnl", "s5", step, task, metric, value)
            for step, scale in ((100, 0.5), (200, 1.0))
            for task, metric, value in (("linscale_niah_easy", "weighted_acc", 0.8), ("linscale_niah_easy", "acc", 0.1),
                                        ("linscale_mqar", "acc", 0.3), ("linscale_knowledge", "acc", 0.9))
            for value in [value * scale]]
    evaluations = pd.DataFrame(rows, columns=["run_id", "arch", "size", "step", "task", "metric", "value"])
    scores = final_retrieval(evaluations)
    assert list(scores.columns) == ["arch", "size", "linscale_mqar", "linscale_niah_easy"]
    assert scores.iloc[0][["linscale_mqar", "linscale_niah_easy"]].tolist() == [0.3, 0.8]  # step 200's, weighted
    with pytest.raises(SystemExit, match=r"no export of tnl-s5 to evaluate"):
        probe_retrieval(tmp_path, "tnl", "s5")


# ----------------------------------------------------------------------------- the figures' arithmetic
# The quick run above checks that the tables have their shape; the tests below feed the sections synthetic
# timings (the timed parts replaced) and check each reported figure against a value worked out by hand.


def _scripted_clock(monkeypatch, elapsed):
    """A timer named "scripted" whose successive (start, end) readings are ``elapsed`` seconds apart."""
    readings = []
    for i, seconds in enumerate(elapsed):
        readings += [10.0 * i, 10.0 * i + seconds]
    clock = iter(readings)
    monkeypatch.setitem(bench.TIMERS, "scripted", lambda: next(clock))


def test_gemm_peak_counts_two_flops_a_multiply_add_and_keeps_each_shapes_best_timing(monkeypatch):
    """gemm_peak: an m×k by k×n product is 2·m·n·k FLOPs, a shape's rate is its fastest of the repeats (a
    peak), ``peak`` the best shape and ``typical`` the median shape (not the mean). With one call per timing
    (``seconds`` tiny), (10, 10, 10) = 2000 FLOP in 2 µs is 1 GFLOP/s."""
    _scripted_clock(monkeypatch, [4e-6, 2e-6,    # (10, 10, 10): best 2 µs -> 1 GFLOP/s
                                  1e-6, 3e-6,    # (20, 10, 10): 4000 FLOP, best 1 µs -> 4 GFLOP/s
                                  3e-6, 2e-6])   # (10, 20, 30): 12000 FLOP, best 2 µs -> 6 GFLOP/s
    table = bench.gemm_peak(((10, 10, 10), (20, 10, 10), (10, 20, 30)), repeats=2, timer="scripted", seconds=1e-12)
    assert table.gflops.tolist() == pytest.approx([1.0, 4.0, 6.0])
    assert table.attrs["peak"] == pytest.approx(6.0) and table.attrs["typical"] == pytest.approx(4.0)


def test_interleaved_medians_alternate_the_order_and_report_medians(monkeypatch):
    """interleaved_medians: after the untimed warm-up, the cases run A B, then B A, ... (so neither always
    follows the other), and each case's figure is the median of its timings: one slow outlier (10 s) does
    not move it, where a mean would report 4.33 s."""
    now, order = [0.0], []
    durations = {"a": iter([0.0, 1.0, 10.0, 2.0]), "b": iter([0.0, 3.0, 3.0, 3.0])}  # the first: warm-up

    def case(name):
        def run():
            order.append(name)
            now[0] += next(durations[name])
        return run

    monkeypatch.setitem(bench.TIMERS, "scripted", lambda: now[0])
    medians = bench.interleaved_medians({"a": case("a"), "b": case("b")}, repeats=3, timer="scripted")
    assert order == ["a", "b", "a", "b", "b", "a", "a", "b"]
    assert medians == {"a": 2.0, "b": 3.0}


def test_utilisation_is_counted_flops_per_second_over_the_better_gemm_peak(monkeypatch):
    """utilisation on synthetic timings: at QUICK_SHAPE's TNL (l=2, d=32, h=2, g=64, V=64) and T=32, Table 1
    counts 72ld²(1 + 1/(2h) + 5/(18d)) = 185600 FLOPs a token; with every product (the actual GLU width,
    6(4ld² + 3ldg) + 72ld²(1/(2h) + 5/(18d)), plus 6dV for the output projection) 173312. A step of 2×32
    tokens in 1.6 ms is 40000 tokens/s: 7.424 and 6.93248 GFLOP/s. The GEMM peak measured before (100) and
    after (80) gives the anchor 100, the typical rate the better of 40 and 50; the profile's shares become
    percentages and milliseconds of the 1.6 ms step."""
    config = bench.ModelConfig(arch="tnl", name="quick", **bench.QUICK_SHAPE)
    assert bench.all_flops_per_token(config, 32) == 173312
    peaks = iter([(100.0, 40.0), (80.0, 50.0)])

    def gemm_peak(shapes, timer):
        table = pd.DataFrame({"gflops": [1.0]})
        table.attrs["peak"], table.attrs["typical"] = next(peaks)
        return table

    shares = dict(gemm=0.5, mixer=0.2, loss=0.1, optimizer=0.1, other=0.05, framework=0.05)
    monkeypatch.setattr(bench, "gemm_peak", gemm_peak)
    monkeypatch.setattr(bench, "_seeded_model", lambda config: "model")
    monkeypatch.setattr(bench, "_batches", lambda config, settings: [])
    monkeypatch.setattr(bench, "train_step", lambda model, settings, batches: "step")
    monkeypatch.setattr(bench, "interleaved_medians", lambda steps, repeats, timer: dict.fromkeys(steps, 0.0016))
    monkeypatch.setattr(bench, "step_profile", lambda model, step, steps: shares)
    settings = SimpleNamespace(batch_size=2, seq_len=32)
    table = bench.utilisation({("tnl", "smallest"): config}, settings)
    row = table.iloc[0]
    assert (row.arch, row["size"], row.which) == ("tnl", "quick", "smallest")
    assert (row.step_ms, row.tokens_per_s) == pytest.approx((1.6, 40000))
    assert (row.gflops, row.mfu) == pytest.approx((7.424, 0.07424))
    assert (row.all_gflops, row.mfu_all) == pytest.approx((6.93248, 0.0693248))
    assert (table.attrs["peak"], table.attrs["typical"]) == (100.0, 50.0)
    assert (row.gemm_pct, row.framework_pct, row.gemm_ms, row.mixer_ms) == pytest.approx((50, 5, 0.8, 0.32))


def test_profile_shares_never_leave_the_framework_a_negative_share():
    """_categorise: the profiler can count more kernel time than the wall time it measured (its own
    overhead); the framework's share, the rest of the step, is then 0, not a negative figure."""
    class Event:
        name, cpu_parent, sequence_nr, self_cpu_time_total = "aten::mm", None, -1, 1200.0

    shares = bench._categorise([Event()], wall_s=0.001)
    assert shares["gemm"] == pytest.approx(1.2) and shares["framework"] == 0.0


def test_changes_times_each_variant_and_labels_the_extreme_sizes(monkeypatch):
    """changes on synthetic timings: a grid of three sizes times before/after at every size and the fused
    loss and AdamW alone only at the smallest and the largest (the middle one has no gains of its own);
    each gain is the before time over that variant's, and the grid's speedup its training time before over
    after: step times weighted by each size's steps (the cpu grid gives each size its own budget)."""
    seconds = {(False, False): 0.004, (True, True): 0.001, (True, False): 0.002, (False, True): 0.003}  # by flags
    scale = {"s1": 1, "s2": 2, "s3": 4}
    monkeypatch.setattr(bench, "_seeded_model", lambda config: config.name)
    monkeypatch.setattr(bench, "_batches", lambda config, settings: [])
    monkeypatch.setattr(bench, "train_step", lambda model, settings, batches, fused_loss, fused_optimizer:
                        (model, fused_loss, fused_optimizer))
    monkeypatch.setattr(bench, "interleaved_medians", lambda cases, repeats, timer: {
        key: scale[name] * seconds[tuple(flags)] for key, (name, *flags) in cases.items()})
    grid = {"tnl": [bench.ModelConfig(arch="tnl", name=name, **bench.QUICK_SHAPE) for name in ("s1", "s2", "s3")]}
    table = bench.changes(grid, SimpleNamespace(total_steps=10))
    assert table.which.tolist() == ["smallest", "", "largest"]
    assert table.before_ms.tolist() == pytest.approx([4, 8, 16]) and table.after_ms.tolist() == pytest.approx([1, 2, 4])
    assert table.gain.tolist() == pytest.approx([4, 4, 4])
    assert table.loss_gain[[0, 2]].tolist() == pytest.approx([2, 2]) and np.isnan(table.loss_gain[1])
    assert table.adamw_gain[[0, 2]].tolist() == pytest.approx([4 / 3, 4 / 3])
    assert table.attrs["grid_speedup"] == pytest.approx(28 / 7)  # every size 10 steps: the gain, 4
    after = {"s1": 0.001, "s2": 0.004, "s3": 0.008}  # s1 gains 4x, s2 and s3 2x
    monkeypatch.setattr(bench, "interleaved_medians", lambda cases, repeats, timer: {
        (arch, name, variant): after[name] if variant == "after" else scale[name] * 0.004
        for arch, name, variant in cases})
    table = bench.changes(grid, SimpleNamespace(total_steps=10), run_steps={"s1": 100, "s2": 1, "s3": 1})
    assert table.steps.tolist() == [100, 1, 1] and table.gain.tolist() == pytest.approx([4, 2, 2])
    # ms: step times times steps; unweighted it would be 28 / 13
    assert table.attrs["grid_speedup"] == pytest.approx((4 * 100 + 8 + 16) / (1 * 100 + 4 + 8))


def test_goals_attach_each_threshold_to_its_figure_and_judge_it():
    """goals on hand-made tables: the MFU goal is 40% at the largest size and 25% at the smallest; a linear
    model's decoding passes only with a constant state too; the worst linear mixer against LLaMA is named;
    the cpu study's limit is 45 minutes; the HF ceiling is HF's whole step over our shared kernels' time."""
    training = pd.DataFrame({"model": ["llama", "hf_llama"], "vs_hf_llama": [1.5, 1.0], "kernels_ms": [40.0, 50.0],
                             "other_ms": [20.0, 30.0]})
    length = pd.DataFrame({"mixer": ["tnl", "hgrn2", "llama"] * 2, "seq_len": [512] * 3 + [8192] * 3,
                           "vs_ref": [1, 1, 1, 1.2, 1.4, 9.0], "vs_llama": [1, 1, 1, 0.2, 0.1, 1.0]})
    length.attrs["reference_len"] = 512
    decoding = pd.DataFrame({"model": ["tnl", "tnl", "llama", "llama"], "context": [128, 8192] * 2,
                             "vs_ref": [1, 1.1, 1, 8], "state_vs_ref": [1, 1.5, 1, 64], "vs_llama": [1, 0.2, 1, 1]})
    util = pd.DataFrame({"arch": ["tnl", "tnl"], "size": ["s1", "s9"], "which": ["smallest", "largest"],
                         "mfu": [0.3, 0.3], "mfu_all": [0.35, 0.32], "step_ms": [5.0, 50.0],
                         **{f"{c}_pct": [10.0, 10.0] for c in bench.PROFILE_CATEGORIES}})
    util.attrs["peak"] = 100.0
    e2e = pd.DataFrame({"preset": ["smoke", "cpu"], "wall_s": [200.0, 1000.0], "ok": [True, True], "note": ["", ""]})
    g = bench.goals(dict(training=training, length=length, decoding=decoding, utilisation=util, end_to_end=e2e))
    g = g.set_index("goal")
    hf = g.loc["LLaMA training tokens/s vs HF LlamaForCausalLM"]
    assert (hf.figure, hf.met) == (1.5, "yes") and hf.note.endswith("ceiling with no overhead at all 2.00x")
    assert g.loc["tnl mixer time/token T=8192 vs T=512", ["figure", "met"]].tolist() == [1.2, "yes"]
    assert g.loc["hgrn2 mixer time/token T=8192 vs T=512", "met"] == "no"
    worst = g.loc["linear mixers vs LLaMA time/token in training, worst at T >= 2048"]
    assert (worst.figure, worst.met, worst.note) == (0.2, "yes", "worst: tnl at 8192")
    decode = g.loc["tnl decode ms/token context 8192 vs 128; state memory ratio 1.50"]
    assert (decode.figure, decode.met) == (1.1, "no")  # fast enough, but its state grew
    mfu = g[g.index.str.contains("MFU")]
    assert mfu.threshold.tolist() == [">= 25%", ">= 40%"] and mfu.met.tolist() == ["yes", "no"]
    assert g.loc["smoke study wall time (s)", "met"] == "no" and g.loc["cpu study wall time (s)", "met"] == "yes"


def test_length_scaling_and_decoding_report_time_per_token_against_the_reference(monkeypatch):
    """length_scaling and decoding on synthetic timings: a mixer's step of B·T tokens is divided by B·T
    (B = tokens_per_batch // T), and by the same mixer's at the reference length (512 when timed, else the
    shortest, never the longest); a decode call of ``new_tokens`` tokens is divided by their number."""
    configs = {arch: bench.ModelConfig(arch=arch, name="quick", **bench.QUICK_SHAPE) for arch in ("tnl", "llama")}
    us = {"tnl": {256: 1.0, 1024: 1.5, 4096: 3.0}, "llama": {256: 2.0, 1024: 6.0, 4096: 30.0}}  # µs a token
    monkeypatch.setattr(bench, "build_model", lambda config: SimpleNamespace(blocks=[None, None]))
    monkeypatch.setattr(bench, "_mixer_case", lambda model, block, B, T: (B, T))
    monkeypatch.setattr(bench, "interleaved_medians", lambda cases, repeats, timer: {
        (arch, T): 1e-6 * B * T * us[arch][T] for (arch, T), (B, _) in cases.items()})
    length = bench.length_scaling(configs, seq_lens=(256, 1024, 4096), tokens_per_batch=4096)
    length = length.set_index(["mixer", "seq_len"])
    assert length.attrs["reference_len"] == 256
    assert length.loc["tnl", "batch_size"].tolist() == [16, 4, 1]
    assert length.loc["tnl", "us_per_token"].tolist() == pytest.approx([1.0, 1.5, 3.0])
    assert length.loc["llama", "vs_ref"].tolist() == pytest.approx([1, 3, 15])
    assert length.loc["tnl", "vs_llama"].tolist() == pytest.approx([0.5, 0.25, 0.1])

    ms = {"tnl": {128: 0.5, 2048: 0.55}, "llama": {128: 0.5, 2048: 2.0}}  # ms a decoded token
    state_bytes = {"tnl": lambda L: 1000, "llama": lambda L: 100 * L}  # fixed matrices; a KV cache

    class Model:
        def __init__(self, config):
            self.arch = config.arch

        def eval(self):
            return self

        def __call__(self, prompt, return_state):
            return SimpleNamespace(state=SimpleNamespace(nbytes=lambda: state_bytes[self.arch](prompt.shape[1] + 1)))

    monkeypatch.setattr(bench, "build_model", Model)
    monkeypatch.setattr(bench, "interleaved_medians", lambda cases, repeats, timer: {
        (arch, L): ms[arch][L] * 4 / 1e3 for arch, L in cases})
    dec = bench.decoding(configs, contexts=(128, 2048), new_tokens=4).set_index(["model", "context"])
    assert dec.loc["tnl", "ms_per_token"].tolist() == pytest.approx([0.5, 0.55])
    assert dec.loc["tnl", "vs_ref"].tolist() == pytest.approx([1, 1.1])
    assert dec.loc["llama", "state_vs_ref"].tolist() == [1, 16] and dec.loc["tnl", "state_vs_ref"].tolist() == [1, 1]
    assert dec.loc["tnl", "vs_llama"].tolist() == pytest.approx([1, 0.275])


def test_compile_gain_breaks_even_when_the_compile_time_is_saved_back(monkeypatch):
    """compile_gain on a stubbed child process: compiling for 10 s to save 5 ms a step (20 ms eager, 15 ms
    compiled) breaks even after 2000 steps, so a run of 1500 steps does not repay it and one of 2500 does;
    a compiled step slower than eager never breaks even."""
    import json

    results = {"s1": (20.0, 15.0), "s2": (20.0, 15.0), "s3": (20.0, 25.0)}  # eager, compiled ms

    def run(cmd, **kwargs):
        eager, compiled = results[json.loads(cmd[-1])["config"]["name"]]
        line = json.dumps(dict(compile_s=10.0, eager_ms=eager, compiled_ms=compiled, gain=eager / compiled))
        return SimpleNamespace(returncode=0, stdout=f"compiling...\n{line}\n", stderr="")

    monkeypatch.setattr(bench.subprocess, "run", run)
    extremes = {("tnl", name): bench.ModelConfig(arch="tnl", name=name, **bench.QUICK_SHAPE) for name in results}
    t = bench.compile_gain(extremes, bench.train_settings(quick=True), run_steps={"s1": 1500, "s2": 2500, "s3": 10**6})
    assert t.break_even_steps.tolist() == pytest.approx([2000, 2000, float("inf")])
    assert t.repaid.tolist() == [False, True, False] and t.run_steps.tolist() == [1500, 2500, 10**6]


def test_a_reports_file_is_named_by_its_date_and_machine_in_lower_case(monkeypatch, tmp_path):
    """write_report's file name: the date, the CPU and core count with every run of other characters one
    hyphen, lower case (cpu_reports and rounds_reports find the files by these names)."""
    monkeypatch.setattr(bench, "machine_info", lambda: dict(date="2026-12-07 10:00 UTC", cores=2,
                                                            cpu="AMD EPYC 7B13 (family 25, model 1)"))
    machine = "amd-epyc-7b13-family-25-model-1-2c"
    assert bench.write_report({}, tmp_path, quick=True).name == f"2026-12-07-{machine}-cpu-bench-quick.md"
    rounds = bench.write_report({}, tmp_path, sections=["length", "decoding"], rounds=3)
    assert rounds.name == f"2026-12-07-length-decoding-rounds-{machine}.md"


def test_a_probe_evaluates_its_runs_latest_export_by_step_number(monkeypatch, tmp_path):
    """probes.probe_retrieval evaluates the export of the highest step (step=1000, not step=200, which
    sorts after it as text) and reads the scores the evaluation stored."""
    from linscale import probes

    for step in (200, 1000):
        (tmp_path / "runs" / "tnl-s5" / "export" / f"step={step}").mkdir(parents=True)
    (tmp_path / "eval").mkdir()
    pd.DataFrame({"run_id": ["tnl-s5"], "arch": ["tnl"], "size": ["s5"], "step": [1000], "task": ["linscale_mqar"],
                  "metric": ["acc"], "value": [0.4]}).to_parquet(tmp_path / "eval" / "results.parquet")
    calls = []
    monkeypatch.setattr(probes, "run_cli", lambda *args: calls.append(args))
    scores = probes.probe_retrieval(tmp_path, "tnl", "s5")
    assert calls == [("eval", str(tmp_path), "--suites", "retrieval", "--checkpoint",
                      str(tmp_path / "runs" / "tnl-s5" / "export" / "step=1000"))]
    assert scores.to_dict("records") == [{"arch": "tnl", "size": "s5", "linscale_mqar": 0.4}]


def test_a_probes_run_trains_as_a_sweeps_worker_with_its_overrides(monkeypatch, tmp_path):
    """probes.train_probe_run: one thread, no progress bar, each override its own --set, the cpu preset
    unless named (a probe's run must train as the committed study's did)."""
    from linscale import probes

    calls = []
    monkeypatch.setattr(probes, "run_cli", lambda *args: calls.append(args))
    assert probes.train_probe_run(str(tmp_path), "tnl", "s1", "train.lr=0.001", "model.n_head=2") == tmp_path
    assert calls == [("train", "--preset", "cpu", "--arch", "tnl", "--size", "s1", "--out", str(tmp_path),
                      "--threads", "1", "--no-progress", "--set", "train.lr=0.001", "--set", "model.n_head=2")]


def test_a_refitting_probe_reads_the_committed_a_of_each_architecture(tmp_path):
    """probes.committed_study: the runs (sizes as text) and, per architecture, the committed approach-3
    estimate of N_opt(C)'s exponent a (not its coefficient, nor another law's a); a missing file is one line."""
    from linscale.probes import committed_study

    with pytest.raises(SystemExit, match=r"--results-dir: .*runs\.parquet is missing"):
        committed_study(tmp_path)
    pd.DataFrame({"run_id": ["tnl-1"], "size": [1]}).to_parquet(tmp_path / "runs.parquet")
    (tmp_path / "fits").mkdir()
    pd.DataFrame({"law": ["N_opt(C)", "N_opt(C)", "D_opt(C)", "N_opt(C)"], "parameter": ["a", "coef", "a", "a"],
                  "group": ["tnl", "tnl", "tnl", "llama"], "estimate": [0.5, 3.0, 0.45, 0.52]}) \
        .to_csv(tmp_path / "fits" / "approach3_fixed_e.csv", index=False)
    runs, a = committed_study(tmp_path)
    assert a == {"tnl": 0.5, "llama": 0.52} and runs["size"].tolist() == ["1"]


def test_a_refitting_probe_reports_a_with_its_interval_and_e_over_the_entropy_rate():
    """probes.interval_rows: per method and architecture, a with its bootstrap interval (low, high) and
    distinct outcomes, α and β, and for approach 3 E over the entropy rate less 1 (2.2 over 2.0: 0.1); a
    failed method is a row with a = NaN and nothing else."""
    from linscale.probes import interval_rows

    params = pd.DataFrame({"law": ["N_opt(C)", "L(N,D)", "L(N,D)", "L(N,D)"], "parameter": ["a", "alpha", "beta", "E"],
                           "group": ["tnl"] * 4, "estimate": [0.5, 0.3, 0.28, 2.2], "ci_low": [0.4, 0, 0, 0],
                           "ci_high": [0.6, 0, 0, 0], "n_distinct": [37, 0, 0, 0]})
    got = {"approach3": SimpleNamespace(ok=True, fit=SimpleNamespace(params=params)),
           "approach1": SimpleNamespace(ok=False, fit=None)}
    ok, failed = interval_rows(got, ["approach3", "approach1"], ["tnl"], entropy=2.0)
    assert ok == pytest.approx(dict(method="approach3", arch="tnl", a=0.5, a_low=0.4, a_high=0.6, distinct=37,
                                    alpha=0.3, beta=0.28, E_over_entropy=0.1))
    assert failed.keys() == {"method", "arch", "a"} and np.isnan(failed["a"])


def test_training_throughput_counts_a_steps_tokens_over_its_time(monkeypatch):
    """training_throughput on synthetic timings: a step of 2 sequences of 32 tokens in 16 ms is 4000
    tokens/s; ``vs_hf_llama`` divides by HF LLaMA's tokens/s (2000 in its 32 ms), not by its time."""
    import torch

    configs = {arch: bench.ModelConfig(arch=arch, name="quick", **bench.QUICK_SHAPE) for arch in ("llama", "tnl")}
    monkeypatch.setattr(bench, "build_model", lambda config: torch.nn.Linear(2, 2))
    monkeypatch.setattr(bench, "hf_llama", lambda config: torch.nn.Linear(2, 2))
    monkeypatch.setattr(bench, "kernel_split", lambda step: (0.001, 0.002))
    seconds = {"llama": 0.016, "tnl": 0.008, "hf_llama": 0.032}
    monkeypatch.setattr(bench, "interleaved_medians", lambda steps, repeats, timer: {name: seconds[name]
                                                                                     for name in steps})
    t = bench.training_throughput(configs, seq_len=32, batch_size=2).set_index("model")
    assert t.tokens_per_s.tolist() == pytest.approx([4000, 8000, 2000])
    assert t.vs_hf_llama.tolist() == pytest.approx([2, 4, 1]) and t.step_s.tolist() == [0.016, 0.008, 0.032]
    assert (t.kernels_ms.tolist(), t.other_ms.tolist()) == ([1.0] * 3, [2.0] * 3)


def test_batched_runs_compare_one_batched_model_with_runs_one_after_another(monkeypatch):
    """batched_runs on synthetic timings: 3 runs of 2×32 tokens are 192 tokens; 30 ms one after another
    against 20 ms batched is a speedup of 1.5, and one model at 3 times the batch in 12 ms bounds any
    batching at 2.5 (sequential over that one model's time)."""
    config = bench.grid_configs(quick=True)["tnl"][0]
    seconds = {"sequential": 0.03, "batched": 0.02, "one_model": 0.012}
    monkeypatch.setattr(bench, "interleaved_medians", lambda cases, repeats, timer: {
        (arch, kind): seconds[kind] for arch, kind in cases})
    row = bench.batched_runs({"tnl": config}, bench.train_settings(quick=True), runs=3).iloc[0]
    assert (row.tokens_per_s_sequential, row.tokens_per_s_batched) == pytest.approx((6400, 9600))
    assert (row.sequential_ms, row.batched_ms, row.speedup, row.upper_bound) == pytest.approx((30, 20, 1.5, 2.5))


def test_lightnings_overhead_is_its_step_less_the_bare_loops_as_a_share_of_its_step(monkeypatch):
    """lightning_overhead on a scripted clock and a stand-in trainer: bare steps of 1 ms, Lightning's of
    1.5 ms and 1.7 ms when it logs at every step give an overhead of 0.5 ms, a third (33.3%) of Lightning's
    step (not half of the bare one's), and 0.2 ms for logging at every step."""
    import linscale.train.run
    from linscale.train.module import LanguageModelTask

    now, gate = [0.0], LanguageModelTask._logs_this_step
    monkeypatch.setitem(bench.TIMERS, "scripted", lambda: now[0])

    def bare_step():
        now[0] += 0.001

    class Trainer:
        def __init__(self, callbacks):
            self.callbacks = callbacks

        def fit(self, task, train_dataloaders):
            seconds = 0.0015 if LanguageModelTask._logs_this_step is gate else 0.0017
            for _ in train_dataloaders:
                self.callbacks[0].on_train_batch_start()
                now[0] += seconds

    monkeypatch.setattr(bench, "train_step", lambda model, settings, batches: bare_step)
    monkeypatch.setattr(linscale.train.run, "build_trainer", lambda settings, folder, callbacks, accumulate:
                        Trainer(callbacks))
    config = bench.grid_configs(quick=True)["tnl"][0]
    row = bench.lightning_overhead({("tnl", "smallest"): config}, bench.train_settings(quick=True), steps=6, rounds=2,
                                   timer="scripted").iloc[0]
    assert (row.bare_ms, row.lightning_ms, row.overhead_ms) == pytest.approx((1.0, 1.5, 0.5))
    assert (row.overhead_pct, row.log_every_step_ms) == pytest.approx((100 / 3, 0.2))
