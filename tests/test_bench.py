"""`linscale bench --quick`: the benchmark code runs end to end and its tables have the promised shape.

Speed itself is never asserted here (a loaded CI machine would make that flaky); the goals are checked by
the benchmark's own report, from ratios measured side by side."""
from pathlib import Path

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
                     (25, 20), (36, 30)])     # round 3: 1 s of 10, under a quarter of a core
    monkeypatch.setattr(bench, "cpu_seconds", lambda: next(readings))
    clock = iter(range(0, 100, 10))
    monkeypatch.setattr(bench, "_wall_clock", lambda: next(clock))
    tables = bench.run_rounds(3, ["decoding"], log=None)
    t = tables["decoding_rounds"]
    assert list(t["round"]) == [1, 2, 3] and list(t["machine"]) == ["idle", "loaded", "idle"]
    assert list(t["others_cores"]) == [0.0, 0.5, 0.1] and list(t["wall_s"]) == [10, 10, 10]
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
