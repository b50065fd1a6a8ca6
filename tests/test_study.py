"""The study pipeline's pure parts: the ablation grids derived from a study preset."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
import pytest

from linscale.config import ConfigError
from linscale.study import ASPECT_FACTORS, ablation_presets

BASE = {
    "name": "toy", "archs": ["llama", "tnl", "hgrn2", "cosformer2"], "model": {"vocab_size": 64},
    "sizes": {"a": {"n_layer": 2, "d_model": 32, "n_head": 2}, "b": {"n_layer": 4, "d_model": 64, "n_head": 4},
              "c": {"n_layer": 6, "d_model": 96, "n_head": 6}},
    "train": {"seq_len": 128, "batch_size": 16, "tokens": 1e6},
}


def test_aspect_ablation_keeps_parameters_and_head_width_and_varies_the_shape():
    base_size, ablations = ablation_presets(BASE)
    assert base_size == "a"  # the size below the middle one
    (aspect,) = ablations["aspect"]
    assert aspect["archs"] == ["llama", "cosformer2"]  # the paper's Table 5 pair
    shapes = list(aspect["sizes"].values())
    assert len({s["d_model"] / s["n_layer"] for s in shapes}) == len(shapes) == len(ASPECT_FACTORS)
    for shape in shapes:
        assert shape["n_head"] == 2 and shape["d_model"] % 4 == 0  # the base's heads, even head width
        # N ≈ 12·l·d² stays within a factor of 1.5 of the base's (widths are rounded to whole heads).
        assert 12 * shape["n_layer"] * shape["d_model"] ** 2 == pytest.approx(12 * 2 * 32**2, rel=0.5)
    assert BASE["sizes"]["a"] not in shapes  # the base shape comes from the main sweep, not retrained


def test_context_ablation_keeps_tokens_per_batch():
    _, ablations = ablation_presets(BASE)
    contexts = ablations["context"]
    assert [c["train"]["seq_len"] for c in contexts] == [64, 256]
    for variant in contexts:
        assert variant["train"]["seq_len"] * variant["train"]["batch_size"] == 128 * 16
        assert variant["sizes"] == {"a": BASE["sizes"]["a"]}
        assert variant["model"]["max_seq_len"] >= variant["train"]["seq_len"]
    assert BASE["train"]["seq_len"] == 128  # the base preset is not modified


def test_context_ablation_retrains_the_presets_context_size():
    import copy

    preset = copy.deepcopy(BASE) | {"context_size": "c"}
    base_size, ablations = ablation_presets(preset)
    assert base_size == "a"  # the other ablations stay at the base size
    assert [v["sizes"] for v in ablations["context"]] == [{"c": BASE["sizes"]["c"]}] * 2
    assert [list(v["sizes"]) for v in ablations["seeds"]] == [["a"], ["a"]]
    with pytest.raises(ConfigError, match="context_size: 'z' is not a size of the grid; expected one of a, b, c"):
        ablation_presets(copy.deepcopy(BASE) | {"context_size": "z"})


@pytest.mark.parametrize("name", ["cpu", "paper", "smoke", "text"])
def test_every_ablation_sweep_of_a_shipped_preset_is_a_preset_the_sweep_takes(name):
    """The cpu preset's context_size (s6) went into every ablation's variant, whose grids hold other sizes:
    the sweep refused the aspect and seeds variants, and `python3 tasks.py study` stopped at its sweep stage
    before training anything. Each variant is planned here as the sweep plans it."""
    from linscale.presets import load_preset
    from linscale.train.run import plan_runs

    _, ablations = ablation_presets(load_preset(name))
    for ablation, variants in ablations.items():
        for variant in variants:
            _, specs = plan_runs(variant, [])
            assert specs, (ablation, variant["name"])


def test_seeds_ablation_retrains_the_base_size_with_other_seeds_and_nothing_else():
    base = {**BASE, "train": {**BASE["train"], "seed": 7}, "arch_overrides": {"tnl": {"a": {"lr": 1e-3}}}}
    _, ablations = ablation_presets(base)
    seeds = ablations["seeds"]
    assert [v["train"]["seed"] for v in seeds] == [8, 9]
    assert len({v["name"] for v in seeds}) == 2
    for variant in seeds:
        assert variant["sizes"] == {"a": BASE["sizes"]["a"]} and variant["archs"] == BASE["archs"]
        # every other setting equals the main sweep's, per-architecture overrides included
        assert {k: v for k, v in variant["train"].items() if k != "seed"} == BASE["train"]
        assert variant["arch_overrides"] == base["arch_overrides"] and variant["model"] == BASE["model"]
    assert base["train"]["seed"] == 7


def test_size_seeds_ablation_retrains_the_grids_ends_with_the_next_seed():
    base = {**BASE, "train": {**BASE["train"], "seed": 7}}
    base_size, ablations = ablation_presets(base)
    (variant,) = ablations["size_seeds"]
    # the smallest size is the base size here (it has its seeds ablation): only the largest is retrained
    assert base_size == "a" and variant["sizes"] == {"c": BASE["sizes"]["c"]}
    assert variant["train"]["seed"] == 8 and variant["archs"] == BASE["archs"]
    assert {k: v for k, v in variant["train"].items() if k != "seed"} == BASE["train"]
    four = {**BASE, "sizes": {**BASE["sizes"], "d": {"n_layer": 8, "d_model": 128, "n_head": 8}}}
    base_size, ablations = ablation_presets(four)
    assert base_size == "b" and list(ablations["size_seeds"][0]["sizes"]) == ["a", "d"]
    one = {**BASE, "sizes": {"a": BASE["sizes"]["a"]}}
    assert ablation_presets(one)[1]["size_seeds"] == []  # one size: its seeds ablation is all there is


def test_ablation_eval_scores_each_runs_final_checkpoint_beside_the_base_runs(tmp_path, monkeypatch):
    import pandas as pd

    import linscale.eval
    import linscale.eval.runner
    from linscale.study import _eval_ablations

    preset = {**BASE, "name": "toy"}
    runs_dir, results = tmp_path / "runs", tmp_path / "results"
    for sweep in ("toy", "toy-context64", "toy-seed1", "toy-aspect", "toy-ends-seed1"):  # toy-context256, toy-seed2 were not trained
        (runs_dir / sweep).mkdir(parents=True)

    def rows(run_id, size, steps, suites):
        return [{"run_id": run_id, "arch": run_id.split("-")[0], "size": size, "step": step, "suite": suite,
                 "task": suite, "metric": "acc", "value": step / 100} for step in steps for suite in suites]

    results.mkdir()
    main = rows("tnl-a", "a", (5, 10), ("knowledge", "linguistic", "retrieval")) + \
        rows("tnl-b", "b", (5, 10), ("knowledge", "retrieval")) + rows("tnl-c", "c", (5, 10), ("knowledge", "retrieval"))
    pd.DataFrame(main).to_parquet(results / "eval.parquet")
    evaluated = []

    def fake_find(sweep):
        return [sweep / "runs" / "tnl-a" / "export" / f"step={s}" for s in (5, 10)]

    def fake_evaluate(sweep, suites, checkpoints, limit, progress, out=None, pool=None, **settings):
        assert pool == "the study's pool"  # every ablation sweep is evaluated by the one pool given
        evaluated.append((sweep.name, tuple(suites), [c.name for c in checkpoints],
                          None if out is None else out.name, settings))
        # the store may hold more than was asked for (an earlier `linscale eval` of every export, and the
        # runs of an earlier context_size)
        return pd.DataFrame(rows("tnl-a", "a", (5, 10), (*suites, "linguistic")) + rows("tnl-z", "z", (10,), suites))

    monkeypatch.setattr(linscale.eval.runner, "find_checkpoints", fake_find)
    monkeypatch.setattr(linscale.eval, "evaluate_sweep", fake_evaluate)
    _eval_ablations(preset, runs_dir, results, limit=None, pool="the study's pool")

    # only the trained sweeps of the evaluated ablations, each run's last export, on that ablation's suites;
    # the context ablation at one common context (the main grid's, 128) and at twice each run's own, each
    # into its own store; the base runs' common-context scores are the main sweep's
    assert sorted(evaluated, key=str) == sorted([
        ("toy-context64", ("retrieval",), ["step=10"], "common.parquet", {"task_options": {"max_length": 128}}),
        ("toy", ("retrieval",), ["step=10"], "context-twice.parquet", {"context_factor": 2.0}),
        ("toy-context64", ("retrieval",), ["step=10"], "twice.parquet", {"context_factor": 2.0}),
        ("toy-seed1", ("knowledge", "linguistic", "retrieval"), ["step=10"], None, {}),
        ("toy-ends-seed1", ("retrieval",), ["step=10"], None, {})], key=str)
    assert not (results / "ablations" / "aspect-eval.parquet").exists()
    for name in ("context", "seeds", "size_seeds"):  # only the runs asked for
        assert "tnl-z" not in set(pd.read_parquet(results / "ablations" / f"{name}-eval.parquet")["run_id"])
    context = pd.read_parquet(results / "ablations" / "context-eval.parquet")
    assert sorted(set(zip(context["evaluation"], context["variant"], context["size"], context["step"],
                          context["suite"]))) == [
        ("common", "base", "a", 10, "retrieval"), ("common", "toy-context64", "a", 10, "retrieval"),
        ("twice", "base", "a", 10, "retrieval"), ("twice", "toy-context64", "a", 10, "retrieval")]
    seeds = pd.read_parquet(results / "ablations" / "seeds-eval.parquet")
    assert set(seeds["suite"]) == {"knowledge", "linguistic", "retrieval"} and set(seeds["step"]) == {10}
    assert set(seeds["variant"]) == {"base", "toy-seed1"} and "evaluation" not in seeds
    # size_seeds: retrieval, beside the main sweep's scores of the size it retrains (c), not the base size's
    ends = pd.read_parquet(results / "ablations" / "size_seeds-eval.parquet")
    assert sorted(set(zip(ends["variant"], ends["run_id"], ends["step"], ends["suite"]))) == [
        ("base", "tnl-c", 10, "retrieval"), ("toy-ends-seed1", "tnl-a", 10, "retrieval")]


def test_ablations_to_train_are_chosen_by_name_and_typos_are_one_clear_error(tmp_path, capsys):
    from linscale.cli import main
    from linscale.study import ABLATIONS, ablation_names

    assert ablation_names(None) == ABLATIONS == tuple(ablation_presets(BASE)[1])
    assert ablation_names("seeds, aspect") == ("seeds", "aspect")
    with pytest.raises(ConfigError, match="--ablations: unknown ablation"):
        ablation_names("aspect,seed")
    # from the command line: one line, before any stage runs (nothing is written)
    assert main(["study", "--preset", "smoke", "--ablations", "aspect,seed", "--runs-dir", str(tmp_path / "runs"),
                 "--results-dir", str(tmp_path / "results")]) != 0
    err = capsys.readouterr().err.strip()
    assert "--ablations: unknown ablation(s) seed" in err and len(err.splitlines()) == 1
    assert not list(tmp_path.iterdir())


def test_a_study_takes_a_preset_by_name_or_by_path_and_a_bad_one_is_one_line(tmp_path, capsys, monkeypatch):
    """A study's tables go to results/<preset>/ and its chapters load the preset by that name, so a path
    (which `linscale sweep` takes) was refused and a grid of one's own had to be put inside the package.
    A path is now read by its name (its folder joins LINSCALE_PRESETS, which the chapters' kernels
    inherit); a misspelled name, a missing file or a file named like linscale's own preset is one line
    naming the field, nothing written."""
    from linscale.cli import main
    from linscale.presets import USER_PRESETS_ENV, load_preset

    monkeypatch.setenv(USER_PRESETS_ENV, "")  # restored after the test: the study extends it
    (tmp_path / "grids").mkdir()
    smoke = Path("linscale/presets/smoke.yaml").read_text()
    (tmp_path / "grids" / "smoke.yaml").write_text(smoke)
    mine = tmp_path / "grids" / "mine.yaml"
    mine.write_text(smoke.replace("name: smoke", "name: mine"))
    (tmp_path / "grids" / "copy.yaml").write_text(smoke)  # a copy that kept linscale's name: runs/smoke
    (tmp_path / "grids" / "other.yaml").write_text(smoke.replace("name: smoke", "name: elsewhere"))
    (tmp_path / "grids" / "nameless.yaml").write_text(smoke.replace("name: smoke\n", ""))
    (tmp_path / "grids" / "empty.yaml").write_text(smoke.replace("name: smoke\n", "name:\n"))
    (tmp_path / "grids" / "2024.yaml").write_text(smoke.replace("name: smoke\n", "name: 2024\n"))  # YAML's int
    study = ["--runs-dir", str(tmp_path / "runs"), "--results-dir", str(tmp_path / "results")]
    for preset, message in (("smok", "--preset: 'smok' is not a preset; linscale study takes one of"),
                            (str(tmp_path / "nosuch.yaml"),
                             f"--preset: file {tmp_path / 'nosuch.yaml'} does not exist"),
                            (str(tmp_path / "grids" / "smoke.yaml"), "has the name of linscale's own preset 'smoke'"),
                            (str(tmp_path / "grids" / "copy.yaml"), "copy.yaml has name: smoke, the name of "
                             "linscale's own preset; expected name: copy, its file's name (a preset's study, sweep "
                             "folder and tables take the name it is read by)"),
                            # a name of its own split them: results/other (the study), runs/elsewhere (a sweep)
                            (str(tmp_path / "grids" / "other.yaml"), "other.yaml has name: elsewhere; expected "
                             "name: other, its file's name")):
        assert main(["study", "--preset", preset, *study]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("linscale: error: ") and message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "results").exists()

    assert main(["study", "--preset", str(mine), *study, "--stages", "design"]) == 0
    assert (tmp_path / "results" / "mine" / "fits" / "design_verdicts.csv").exists()
    assert load_preset("mine")["name"] == "mine"  # by name from here on (os.environ: the kernels' too)
    for stem in ("nameless", "empty", "2024"):  # no name, an empty one, or the stem as YAML reads it: the stem
        assert load_preset(tmp_path / "grids" / f"{stem}.yaml")["name"] == stem
    # and the book's advice for a study not yet run names the file, which linscale study takes (not the name)
    from linscale import book

    with pytest.raises(ConfigError, match=f"run `linscale study --preset {mine.resolve()}` first"):
        book.check_results({"preset": "mine", "results_dir": str(tmp_path / "elsewhere")}, ["training"])


def test_a_study_runs_from_python_with_the_options_of_its_command_line(tmp_path, monkeypatch):
    """run_study takes StudyOptions (not the command line's Namespace): a caller without a command line
    names what it wants, and its options come back as it gave them."""
    from linscale.presets import USER_PRESETS_ENV
    from linscale.study import StudyOptions, run_study

    monkeypatch.setenv(USER_PRESETS_ENV, "")
    mine = tmp_path / "mine.yaml"
    mine.write_text(Path("linscale/presets/smoke.yaml").read_text().replace("name: smoke", "name: mine"))
    options = StudyOptions(str(mine), stages="design", runs_dir=tmp_path / "runs", results_dir=tmp_path / "results")
    assert run_study(options) == 0 and options.preset == str(mine)
    assert (tmp_path / "results" / "mine" / "fits" / "design_verdicts.csv").exists()
    with pytest.raises(ConfigError, match=r"--stages: unknown stage\(s\) sweeep"):
        run_study(StudyOptions("smoke", stages="sweeep"))
    parsed = StudyOptions.from_arguments(argparse.Namespace(preset="smoke", set=["train.seed=1"], jobs=2, stages=None))
    assert parsed == StudyOptions("smoke", jobs=2, overrides=("train.seed=1",))


def test_a_study_of_real_text_leaves_out_the_eval_stage_and_refuses_it_when_asked_before_anything_trains(
        tmp_path, monkeypatch, capsys):
    """The eval stage's suites need the synthetic language: a text study trained its whole grid, then
    stopped at eval. By default its study runs the other stages (its book is the chapters without the
    synthetic language) and says eval is left out; --stages naming eval is one line, and nothing is written."""
    from linscale.presets import USER_PRESETS_ENV
    from linscale.study import STAGES, StudyOptions, _text_stages, run_study

    monkeypatch.setenv(USER_PRESETS_ENV, "")
    folders = dict(runs_dir=tmp_path / "runs", results_dir=tmp_path / "results")
    for stages in ("sweep,eval", "eval"):
        with pytest.raises(ConfigError, match=r"^--stages: preset text trains on text \(data.source\), and the eval "
                                              r"stage's suites need .+ expected --stages design,sweep,fits,book \("):
            run_study(StudyOptions("text", stages=stages, overrides=("data.path=corpus",), **folders))
    assert not list(tmp_path.iterdir())
    text = ("data.path=corpus",)
    assert _text_stages("text", text, STAGES, given=False) == ("design", "sweep", "fits", "book")
    assert "[study] stage eval: left out, preset text trains on text" in capsys.readouterr().out
    assert _text_stages("text", text, ("sweep", "book"), given=True) == ("sweep", "book")
    assert _text_stages("cpu", (), STAGES, given=False) == STAGES and _text_stages("cpu", (), STAGES, True) == STAGES


def test_a_preset_names_the_ablations_its_study_trains_by_default():
    from linscale.study import ABLATIONS, default_ablations

    assert default_ablations("cpu") == ABLATIONS  # no list: all of them
    assert default_ablations("paper") == ("aspect", "context", "seeds")  # size_seeds would cost ~60% of its grid
    assert default_ablations("text") == ("seeds", "size_seeds")  # the noise its book reads, no unshown sweeps
    assert default_ablations({**BASE, "ablations": []}) == ()
    with pytest.raises(ConfigError, match="ablations: unknown ablation\\(s\\) seed; expected some of"):
        default_ablations({**BASE, "ablations": ["aspect", "seed"]})
    with pytest.raises(ConfigError, match="ablations: expected a list of ablation names"):
        default_ablations({**BASE, "ablations": "aspect"})
    # `linscale sweep` trains no ablation, but its preset check (resolve_preset) refused none: a typo passed
    from linscale.train.settings import resolve_preset

    with pytest.raises(ConfigError, match="ablations: unknown ablation\\(s\\) seed; expected some of"):
        resolve_preset({**BASE, "ablations": ["seed"]})


def test_only_the_chosen_ablations_are_trained_and_tabled(tmp_path, monkeypatch):
    import types

    import pandas as pd

    import linscale.study as study
    import linscale.train.sweep

    trained = []

    def fake_run_sweeps(sweeps, jobs, pool):
        results = []
        for preset, out in sweeps:
            name = preset if isinstance(preset, str) else preset["name"]
            trained.append(name)
            out.mkdir(parents=True)
            table = out / "results.parquet"
            pd.DataFrame({"run_id": ["tnl-a"], "arch": ["tnl"], "size": ["a"], "step": [1]}).to_parquet(table)
            results.append(types.SimpleNamespace(failed=[], table=table, span_s=0.0, busy_s=0.0))
        return results

    monkeypatch.setattr(linscale.train.sweep, "run_sweeps", fake_run_sweeps)
    monkeypatch.setattr(study, "ablation_presets", lambda preset: ablation_presets({**BASE, "name": preset}))
    study._sweeps("toy", tmp_path / "runs", tmp_path / "results", jobs=1, ablations=("seeds",), pool=None)
    assert trained == ["toy", "toy-seed1", "toy-seed2"]
    assert sorted(p.name for p in (tmp_path / "results" / "ablations").iterdir()) == ["seeds.parquet"]
    seeds = pd.read_parquet(tmp_path / "results" / "ablations" / "seeds.parquet")
    assert seeds["variant"].tolist() == ["base", "toy-seed1", "toy-seed2"]
    # size_seeds: beside its runs, the main sweep's runs of the sizes it retrains (not the base size's)
    trained.clear()
    main_table = pd.DataFrame({"run_id": ["tnl-a", "tnl-c"], "arch": ["tnl", "tnl"], "size": ["a", "c"], "step": [1, 1]})

    def fake_with_main(sweeps, jobs, pool):
        out = fake_run_sweeps(sweeps, jobs, pool)
        main_table.to_parquet(out[0].table)
        return out

    monkeypatch.setattr(linscale.train.sweep, "run_sweeps", fake_with_main)
    study._sweeps("toy", tmp_path / "runs2", tmp_path / "results", jobs=1, ablations=("size_seeds",), pool=None)
    assert trained == ["toy", "toy-ends-seed1"]
    ends = pd.read_parquet(tmp_path / "results" / "ablations" / "size_seeds.parquet")
    assert ends["variant"].tolist() == ["base", "toy-ends-seed1"] and ends["size"].tolist() == ["c", "a"]


def test_the_study_evaluates_in_one_thread_processes_then_fits(tmp_path, monkeypatch):
    """`linscale study --stages eval,fits --jobs 2`: the evaluation takes checkpoints side by side in a
    pool of processes of EVAL_THREADS torch threads each (the scores' last bits depend on the thread
    count), the caller's threads are restored afterwards, and the fits stage runs after it."""
    import torch

    import linscale.study as study
    from linscale.cli import main
    from linscale.eval.runner import EvalPool

    calls = []

    def fake_eval(*args, pool=None, **kwargs):
        calls.append(("eval", torch.get_num_threads(), pool))

    def fake_fits(*args, jobs=None, **kwargs):
        calls.append(("fits", jobs))

    monkeypatch.setattr(study, "stage_eval", fake_eval)
    monkeypatch.setattr(study, "stage_fits", fake_fits)
    before = torch.get_num_threads()
    assert main(["study", "--preset", "smoke", "--stages", "fits,eval", "--jobs", "2", "--runs-dir",
                 str(tmp_path / "runs"), "--results-dir", str(tmp_path / "results")]) == 0
    (stage, threads, pool), fits = calls
    assert stage == "eval" and threads == study.EVAL_THREADS == 1 and fits == ("fits", 2)
    assert isinstance(pool, EvalPool) and (pool.jobs, pool.threads) == (2, study.EVAL_THREADS)
    assert torch.get_num_threads() == before
    calls.clear()
    main(["study", "--preset", "smoke", "--stages", "eval", "--jobs", "1", "--runs-dir", str(tmp_path / "runs"),
          "--results-dir", str(tmp_path / "results")])
    assert calls == [("eval", 1, None)]  # one job: no pool, the checkpoints one after another here


def test_the_fits_stage_checks_the_design_of_the_grid_the_sweep_trained(tmp_path, monkeypatch):
    """`linscale study --stages fits --set ...`: the fits report a law only where the design check
    identifies it, so the design check runs first even when --stages leaves it out, and it checks the grid
    with the --set overrides applied (the grid the sweep trained), as the fits' settings do; a seed
    override is not a new grid (the published check stays up to date). Without any design check, no law
    counts as identified."""
    import linscale.design as design
    import linscale.study as study
    from linscale.cli import main
    from linscale.config import ConfigError

    checked, fitted = [], []

    def fake_check(resolved, **kwargs):
        checked.append(resolved)
        raise ConfigError("stop here")

    monkeypatch.setattr(design, "check_design", fake_check)
    monkeypatch.setattr(study, "stage_fits", lambda *args, overrides=(), **kw: fitted.append(overrides))
    results = tmp_path / "results"
    assert main(["study", "--preset", "smoke", "--stages", "fits", "--set", "sizes.s1.d_model=12",
                 "--runs-dir", str(tmp_path / "runs"), "--results-dir", str(results)]) == 0
    assert [r["sizes"]["s1"]["d_model"] for r in checked] == [12] and fitted == [("sizes.s1.d_model=12",)]
    stamp = (results / "smoke" / "fits" / ".design-digest").read_text()
    seeded = tmp_path / "seeded"  # a seed re-run of that study, in a folder of its own with the check's stamp
    (seeded / "smoke" / "fits").mkdir(parents=True)
    (seeded / "smoke" / "fits" / ".design-digest").write_text(stamp)
    main(["study", "--preset", "smoke", "--stages", "design", "--set", "sizes.s1.d_model=12", "--set",
          "train.seed=5", "--runs-dir", str(tmp_path / "runs"), "--results-dir", str(seeded)])
    assert len(checked) == 1 and (seeded / "smoke" / "fits" / ".design-digest").read_text() == stamp
    # a later stage without --set goes on with the overrides its folder recorded: still up to date
    main(["study", "--preset", "smoke", "--stages", "design", "--runs-dir", str(tmp_path / "runs"),
          "--results-dir", str(results)])
    assert len(checked) == 1
    main(["study", "--preset", "smoke", "--stages", "design", "--runs-dir", str(tmp_path / "runs"),
          "--results-dir", str(tmp_path / "plain")])
    assert len(checked) == 2 and checked[1]["sizes"]["s1"]["d_model"] != 12  # the preset's own grid

    ok, reason = study._identified(tmp_path / "no-design")("approach3", "tnl", "N_opt(C)")
    assert not ok and "no design check" in reason


def test_a_change_in_the_fitting_code_refits_a_study_whose_runs_did_not_change(tmp_path, monkeypatch):
    """The fits' stamp covers linscale/laws: after a fix there (the bootstrap's streams, 2026-12-06) the
    study's fits stage said "fits: up to date" and kept the intervals of the old code."""
    import shutil

    import linscale.study as study

    laws = tmp_path / "laws"
    shutil.copytree(Path(study.__file__).parent / "laws", laws, ignore=shutil.ignore_patterns("__pycache__"))
    before = study.fitting_code_digest(laws)
    assert before == study.fitting_code_digest()  # the package's own fitting code
    (laws / "__pycache__").mkdir()
    (laws / "__pycache__" / "uncertainty.cpython-311.pyc").write_bytes(b"compiled")
    assert study.fitting_code_digest(laws) == before  # compiled files are not the code
    (laws / "uncertainty.py").write_text((laws / "uncertainty.py").read_text() + "\n# changed\n")
    assert study.fitting_code_digest(laws) != before
    from linscale.design import fit_settings

    results = Path(study.__file__).parents[1] / "results" / "smoke"
    settings = fit_settings("smoke")
    stamp = study.fits_stamp(results, settings)
    monkeypatch.setattr(study, "fitting_code_digest", lambda laws_dir=None: "other code")
    assert study.fits_stamp(results, settings) != stamp


def _smoke_copy(tmp_path: Path) -> Path:
    """A copy of the committed results/smoke (the stages below write into it, never into results/)."""
    import shutil

    import linscale.study as study

    shutil.copytree(Path(study.__file__).parents[1] / "results" / "smoke", tmp_path / "smoke")
    return tmp_path / "smoke"


def _record_design_checks(monkeypatch) -> list:
    """Replace the design check by one that records the grid it was given and stops as the smoke preset's
    does (no reference law): the stage's skipping is tested without simulating a grid."""
    import linscale.design as design

    checked = []

    def fake_check(resolved, **kwargs):
        checked.append(resolved)
        raise ConfigError("design.law: no reference law (test)")

    monkeypatch.setattr(design, "check_design", fake_check)
    return checked


def test_the_design_stage_checks_again_when_its_stamp_holds_another_grid(tmp_path, monkeypatch):
    """The design stamp is the digest of the grid checked, and it is compared, not only found: a stamp of
    another grid (a study re-run after the preset changed) would otherwise keep the old verdicts, and the
    fits would report laws by a check of a grid never trained."""
    from linscale.study import stage_design

    results = _smoke_copy(tmp_path)
    stamp = results / "fits" / ".design-digest"
    committed = stamp.read_text()
    checked = _record_design_checks(monkeypatch)
    stage_design("smoke", results)
    assert checked == []  # the committed stamp is the smoke grid's: up to date
    stamp.write_text("stale")
    stage_design("smoke", results)
    assert len(checked) == 1 and stamp.read_text() == committed


def test_a_change_of_the_presets_design_block_alone_checks_the_design_again(tmp_path, monkeypatch):
    """The design block (the reference law and the simulated noise) decides the verdicts as much as the grid:
    `--set design.noise.run=...` with the earlier stamp present must re-check, not keep the verdicts of the
    other noise."""
    from linscale.study import stage_design

    checked = _record_design_checks(monkeypatch)
    stage_design("smoke", tmp_path)  # the stamp of the preset's own grid
    stage_design("smoke", tmp_path)
    assert len(checked) == 1  # up to date
    stage_design("smoke", tmp_path, overrides=("design.noise.run=0.01",))
    assert [r.get("design") for r in checked] == [None, {"noise": {"run": 0.01}}]


class _Refitted(Exception):
    """Raised by the stand-in fit: the fits stage decided to fit again."""


def test_the_fits_stage_refits_when_its_stamp_or_a_fitted_table_does_not_match(tmp_path, monkeypatch):
    """The fits stage skips only when its stamp holds the inputs' digest and every table it lists is as
    written: a stamp of other inputs, or approach3.csv cut short, must be fitted again, where a stage that
    only looked for the stamp would keep the stale or damaged tables and call them up to date."""
    import linscale.laws.suite as suite
    from linscale.study import stage_fits

    def refit(*args, **kwargs):
        raise _Refitted

    monkeypatch.setattr(suite, "fit_study", refit)
    results = _smoke_copy(tmp_path)
    stamp = results / "fits" / ".runs-digest"
    committed = stamp.read_text()
    stage_fits(results, "smoke")  # the committed stamp holds: nothing is fitted
    stamp.write_text("other\n")
    with pytest.raises(_Refitted):
        stage_fits(results, "smoke")
    stamp.write_text(committed)
    table = results / "fits" / "approach3.csv"
    table.write_bytes(table.read_bytes()[:300])
    with pytest.raises(_Refitted):
        stage_fits(results, "smoke")


def test_the_fits_stamp_follows_the_design_verdicts_and_the_fit_settings(tmp_path):
    """The fits report a law only where design_verdicts.csv identifies it and are computed with the fit
    settings (bootstrap draws, entropy, window): a change of either must change the stamp, or the fits
    stage would keep tables made under the old verdicts or settings."""
    import dataclasses

    from linscale.design import fit_settings
    from linscale.study import fits_stamp

    results = _smoke_copy(tmp_path)
    settings = fit_settings("smoke")
    before = fits_stamp(results, settings)
    assert fits_stamp(results, settings) == before
    assert fits_stamp(results, dataclasses.replace(settings, bootstrap=settings.bootstrap + 1)) != before
    verdicts = results / "fits" / "design_verdicts.csv"
    original = verdicts.read_bytes()
    verdicts.write_bytes(original.replace(b"False", b"True", 1))
    assert fits_stamp(results, settings) != before
    verdicts.unlink()
    assert fits_stamp(results, settings) != before
    verdicts.write_bytes(original)
    assert fits_stamp(results, settings) == before


def test_a_study_with_overrides_keeps_out_of_the_published_folders(tmp_path, capsys):
    """`linscale study --set ...` is another study: writing its tables into the repository's results/
    would overwrite the published ones and show them in the book as the preset's study. One line, nothing
    written."""
    from linscale.book import ROOT
    from linscale.cli import main

    published = {p: p.stat().st_mtime_ns for p in (ROOT / "results" / "smoke").rglob("*") if p.is_file()}
    for folders, option in ((["--results-dir", str(ROOT / "results"), "--runs-dir", str(tmp_path / "runs")], "--results-dir"),
                            (["--results-dir", str(tmp_path / "results"), "--runs-dir", str(ROOT / "runs")], "--runs-dir")):
        assert main(["study", "--preset", "smoke", "--set", "train.seed=2", "--stages", "design,fits", *folders]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"give it a {option} of its own" in err[0], err
    assert not (tmp_path / "results").exists()
    assert {p: p.stat().st_mtime_ns for p in (ROOT / "results" / "smoke").rglob("*") if p.is_file()} == published


def test_a_study_with_overrides_records_them_for_its_later_stages_and_chapters(tmp_path, capsys):
    """`linscale study --set ...` keeps its overrides beside its tables: a later stage without --set and
    the book's chapters (results.study_preset) read the grid it trained, not the preset's. A folder holding
    another study (other overrides, or the preset's own tables) is refused in one line, nothing changed."""
    import json

    from linscale import results as results_module
    from linscale.cli import main

    results, runs = tmp_path / "results", ["--runs-dir", str(tmp_path / "runs")]
    assert results_module.study_preset("smoke", results)["sizes"]["s1"]["d_model"] != 12  # nothing recorded
    assert main(["study", "--preset", "smoke", "--stages", "design", "--set", "sizes.s1.d_model=12",
                 "--results-dir", str(results), *runs]) == 0
    record = results / "smoke" / results_module.OVERRIDES_FILE
    assert json.loads(record.read_text()) == {"preset": "smoke", "set": ["sizes.s1.d_model=12"]}
    assert results_module.study_overrides("smoke", results) == ("sizes.s1.d_model=12",)
    assert results_module.study_preset("smoke", results)["sizes"]["s1"]["d_model"] == 12
    capsys.readouterr()
    assert main(["study", "--preset", "smoke", "--stages", "design", "--results-dir", str(results), *runs]) == 0
    assert "made with --set sizes.s1.d_model=12" in capsys.readouterr().out

    # overrides that give the same grid are the same study (here a setting given twice, the last one
    # counting): it goes on with the record
    assert main(["study", "--preset", "smoke", "--stages", "design", "--set", "sizes.s1.d_model=16",
                 "--set", "sizes.s1.d_model=12", "--results-dir", str(results), *runs]) == 0
    assert json.loads(record.read_text())["set"] == ["sizes.s1.d_model=12"]
    two = tmp_path / "two"
    for order in (("sizes.s1.d_model=12", "train.lr=0.002"), ("train.lr=2e-3", "sizes.s1.d_model=12")):
        assert main(["study", "--preset", "smoke", "--stages", "design", "--set", order[0], "--set", order[1],
                     "--results-dir", str(two), *runs]) == 0, order  # the same settings in another order
    assert results_module.study_overrides("smoke", two) == ("sizes.s1.d_model=12", "train.lr=0.002")
    before = record.read_text()
    assert main(["study", "--preset", "smoke", "--stages", "design", "--set", "sizes.s1.d_model=16",
                 "--results-dir", str(results), *runs]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds the study made with --set sizes.s1.d_model=12" in err[0], err
    assert record.read_text() == before

    plain = tmp_path / "plain" / "smoke"
    plain.mkdir(parents=True)
    (plain / "runs.parquet").write_bytes(b"")  # the preset's own study already there
    assert main(["study", "--preset", "smoke", "--stages", "design", "--set", "sizes.s1.d_model=12",
                 "--results-dir", str(plain.parent), *runs]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds a study of the smoke preset as it is" in err[0], err
    assert not (plain / results_module.OVERRIDES_FILE).exists()

    record.write_text('{"set": "sizes.s1.d_model=12"}')
    with pytest.raises(ConfigError, match="overrides.json: expected"):
        results_module.study_preset("smoke", results)


def test_committed_seed_reruns_record_the_overrides_they_were_made_with():
    """A committed re-run made with `--set train.seed=N` (results/reruns/<date>-seedN) keeps its overrides
    beside its tables, as `linscale study --set` now writes them, so a chapter executed on its folder reads
    the study it trained: the recorded seed is the seed of its runs."""
    import re

    import pandas as pd

    from linscale import results as results_module
    from linscale.book import ROOT

    folders = sorted(p.parent for p in (ROOT / "results" / "reruns").glob("*-seed*/cpu/runs.parquet"))
    assert folders, "no committed seed re-run"
    for folder in folders:
        seed = int(re.search(r"-seed(\d+)$", folder.parent.name).group(1))
        assert results_module.study_overrides("cpu", folder.parent) == (f"train.seed={seed}",), folder
        assert set(pd.read_parquet(folder / "runs.parquet")["seed"]) == {seed}, folder


def test_committed_eval_tables_name_checkpoints_as_runs_paths_wherever_the_runs_were_kept(tmp_path, monkeypatch):
    import pandas as pd

    from linscale.study import portable_checkpoints

    runs_dir = tmp_path / "scratch" / "runs-elsewhere"
    inside = runs_dir / "cpu" / "runs" / "llama-s1" / "export" / "step=10"
    scores = pd.DataFrame({"checkpoint": [str(inside), "/somewhere/else/step=3"], "value": [0.5, 0.25]})
    out = portable_checkpoints(scores, runs_dir)
    assert out["checkpoint"].tolist() == ["runs/cpu/runs/llama-s1/export/step=10", "/somewhere/else/step=3"]
    assert out["value"].tolist() == [0.5, 0.25] and scores["checkpoint"][0] == str(inside)  # a copy
    # The default --runs-dir runs, relative to where the study runs, keeps its paths as they were.
    monkeypatch.chdir(tmp_path)
    relative = pd.DataFrame({"checkpoint": ["runs/smoke/runs/tnl-s2/export/step=600"]})
    assert portable_checkpoints(relative, tmp_path / "runs")["checkpoint"].tolist() == relative["checkpoint"].tolist()
    assert portable_checkpoints(pd.DataFrame({"value": [1.0]}), runs_dir).columns.tolist() == ["value"]


@pytest.mark.slow
def test_an_ablation_added_later_joins_a_committed_study_without_its_run_folders(tmp_path):
    """benchmarks/rerun_ablation.py (how the committed studies gained size_seeds): it trains the ablation
    alone, tables it beside the study's own runs of those sizes, and evaluates it beside the study's own
    scores, as `linscale study` would have."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    import pandas as pd

    root = Path(__file__).resolve().parent.parent
    results = tmp_path / "smoke"
    results.mkdir()
    for table in ("runs.parquet", "eval.parquet"):  # a committed study: its tables, no run folders
        shutil.copy(root / "results" / "smoke" / table, results / table)
    proc = subprocess.run([sys.executable, str(root / "benchmarks" / "rerun_ablation.py"), str(results), "size_seeds",
                           "--preset", "smoke", "--set", "train.tokens=5120", "--runs-dir", str(tmp_path / "runs"),
                           "--jobs", "2"], capture_output=True, text=True, cwd=root)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    table = pd.read_parquet(results / "ablations" / "size_seeds.parquet")
    main = pd.read_parquet(results / "runs.parquet")
    base = table[table["variant"] == "base"].drop(columns=["ablation", "variant"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(base, main[main["size"] == "s2"].reset_index(drop=True), check_exact=True)
    retrained = table[table["variant"] == "smoke-ends-seed1"]
    assert set(retrained["size"]) == {"s2"} and set(retrained["seed"]) == {1} and retrained["arch"].nunique() == 4
    scores = pd.read_parquet(results / "ablations" / "size_seeds-eval.parquet")
    assert set(scores["suite"]) == {"retrieval"} and set(scores["variant"]) == {"base", "smoke-ends-seed1"}
    assert set(scores.loc[scores["variant"] == "base", "run_id"]) == set(main.loc[main["size"] == "s2", "run_id"])


@pytest.mark.slow
def test_a_context_ablation_added_later_is_evaluated_without_the_main_sweeps_checkpoints(tmp_path):
    """The context ablation moved to the preset's ``context_size`` after the studies were committed; added
    with benchmarks/rerun_ablation.py, its base runs keep their committed common-context scores, and
    with their checkpoints gone they are not evaluated at twice their context (said, not an error)."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    import pandas as pd

    root = Path(__file__).resolve().parent.parent
    results = tmp_path / "smoke"
    results.mkdir()
    for table in ("runs.parquet", "eval.parquet"):
        shutil.copy(root / "results" / "smoke" / table, results / table)
    proc = subprocess.run([sys.executable, str(root / "benchmarks" / "rerun_ablation.py"), str(results), "context",
                           "--preset", "smoke", "--set", "train.tokens=5120", "--set", "context_size=s2",
                           "--runs-dir", str(tmp_path / "runs"), "--jobs", "2"], capture_output=True, text=True, cwd=root)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "the base runs are not evaluated at twice their context" in proc.stdout
    table = pd.read_parquet(results / "ablations" / "context.parquet")
    assert set(table["size"]) == {"s2"} and set(table["arch"]) == {"tnl", "hgrn2", "cosformer2"}
    assert sorted(table.groupby("variant")["seq_len"].first().tolist()) == [16, 32, 64]  # half, base, twice
    scores = pd.read_parquet(results / "ablations" / "context-eval.parquet")
    assert set(scores["size"]) == {"s2"}
    common, twice = (scores[scores["evaluation"] == e] for e in ("common", "twice"))
    assert set(common["variant"]) == {"base", "smoke-context16", "smoke-context64"}
    assert set(twice["variant"]) == {"smoke-context16", "smoke-context64"}  # the base runs' checkpoints are gone


def test_a_preset_without_a_reference_law_identifies_no_law_not_even_the_envelopes(tmp_path):
    """The smoke preset records no reference law, so its design check cannot run: every law is 'not
    identified' with that reason, approach 1's loss law L(C) too (it is identified only by an envelope of
    crossings, which nothing checked; the smoke grid has none), so its scaling-laws page shows no numbers
    for it. The committed results/smoke agrees with what the stage writes."""
    from linscale import design
    from linscale.study import _identified, stage_design

    stage_design("smoke", tmp_path)
    verdicts = pd.read_csv(tmp_path / "fits" / "design_verdicts.csv")
    assert set(verdicts["method"]) == {design.ENVELOPE, *design.METHODS} and not verdicts["identified"].any()
    identified = _identified(tmp_path)
    for law in ("L(C)", "N_opt(C)"):
        ok, reason = identified("approach1", "tnl", law)
        # in words the book's prose can quote (not the ConfigError the command line prints)
        assert not ok and reason == "no design check: the preset records no reference law in design.law", (law, reason)
    committed = pd.read_csv("results/smoke/fits/approach1.csv")
    assert not committed["identified"].any()
    assert set(committed["reason"]) == {reason}


def _pool_workers(pid: int) -> list[int]:
    """The spawned pool workers among the children of the process ``pid``."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    pids = [int(child) for child in children.read_text().split()] if children.exists() else []
    return [child for child in pids if "spawn_main" in Path(f"/proc/{child}/cmdline").read_text(errors="replace")]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_study_stopped_during_its_fits_says_so_and_exits(tmp_path):
    """SIGTERM (or Ctrl-C) while the fits' pool works on the cpu study's rows: the study said it was
    interrupted and then hung, every time (the thread feeding the pool's tasks blocked on a full pipe that
    no worker read, and the interpreter's exit waited for it), with the executor's InvalidStateError
    traceback beside the line."""
    import signal
    import shutil
    import subprocess
    import time

    shutil.copytree("results/cpu", tmp_path / "cpu")
    (tmp_path / "cpu" / "fits" / ".runs-digest").unlink()  # the fits are redone
    proc = subprocess.Popen([sys.executable, "-m", "linscale", "study", "--preset", "cpu", "--stages", "fits",
                             "--jobs", "2", "--results-dir", str(tmp_path), "--runs-dir", str(tmp_path / "runs")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while len(_pool_workers(proc.pid)) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(_pool_workers(proc.pid)) == 2, proc.communicate(timeout=60)
        time.sleep(3)  # the workers are fitting, and more tasks wait in the pipe
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 128 + signal.SIGTERM, err[-2000:]
    assert err.strip() == "linscale: interrupted by SIGTERM; what finished is kept, and the same command goes on " \
                          "from there", err[-2000:]


def test_the_fits_stage_refits_a_damaged_folder_and_names_a_missing_or_damaged_runs_table(tmp_path, capsys):
    """The fits' stamp lists the files the fits wrote with their digests, after the inputs' digest: a folder
    damaged or edited since is fitted again, where only the inputs were checked (a table cut to 300 bytes
    stayed "up to date", and `linscale compare` then found 31 estimates changed). A runs table missing or
    unreadable is one line naming it, where it was a traceback."""
    import shutil

    from linscale import study

    shutil.copytree(Path(study.__file__).parents[1] / "results" / "smoke", tmp_path / "smoke")
    folder = tmp_path / "smoke" / "fits"
    stamp = (folder / ".runs-digest").read_text()
    inputs = stamp.splitlines()[0]
    study.stage_fits(tmp_path / "smoke", "smoke")  # the committed stamp holds: nothing is refitted
    assert "fits: up to date" in capsys.readouterr().out
    # approach 1 was fitted inside the FLOPs every architecture spans, recorded beside the fits
    import json

    from linscale.laws.suite import common_compute_range

    settings = json.loads((folder / "settings.json").read_text())
    low, high = settings["compute_range"]
    assert (low, high) == common_compute_range(pd.read_parquet(tmp_path / "smoke" / "runs.parquet"),
                                               settings["warmup_steps"])
    envelope = pd.read_parquet(folder / "approach1.points.parquet")["flops"]
    assert envelope.min() >= low * (1 - 1e-9) and envelope.max() <= high * (1 + 1e-9)
    assert study._fits_up_to_date(stamp, inputs, folder)
    assert not study._fits_up_to_date(stamp, "other inputs", folder)
    table = folder / "approach3.csv"
    original = table.read_bytes()
    table.write_bytes(original[:300])
    assert not study._fits_up_to_date(stamp, inputs, folder)
    table.unlink()
    assert not study._fits_up_to_date(stamp, inputs, folder)
    table.write_bytes(original)
    (folder / "notes.csv").write_text("a\n1\n")  # a file the fits did not write: the folder is not theirs alone
    assert not study._fits_up_to_date(stamp, inputs, folder)
    (folder / "notes.csv").unlink()
    assert study._fits_up_to_date(stamp, inputs, folder)
    assert study._fits_up_to_date(inputs, inputs, folder)  # a stamp of the inputs alone vouches for them only
    assert not study._fits_up_to_date(f"{inputs}\nstatus.csv", inputs, folder)  # a damaged stamp

    runs = tmp_path / "smoke" / "runs.parquet"
    runs.write_bytes(runs.read_bytes()[:1000])
    with pytest.raises(ConfigError, match=r"runs.parquet: cannot be read as a table \(.*\); run the sweep stage") as err:
        study.stage_fits(tmp_path / "smoke", "smoke")
    assert "\n" not in str(err.value)
    runs.unlink()
    with pytest.raises(ConfigError, match="runs.parquet: no runs table to fit the laws to; run the sweep stage first"):
        study.stage_fits(tmp_path / "smoke", "smoke")


# ------------------------------------------------------------------------ reading a study's tables (linscale.results)


def _runs_rows(archs=("tnl",), sizes=(("s1", 1000),), steps=(1, 2, 3), diverged_run=None) -> pd.DataFrame:
    """A results table (linscale.train.results' schema), its rows not in step order."""
    from linscale.train.results import to_frame

    rows = []
    for arch in archs:
        for size, params in sizes:
            for step in reversed(steps):
                tokens = step * 8 * 32
                rows.append(dict(run_id=f"{arch}-{size}", arch=arch, size=size, n_layer=1, d_model=16, n_head=2,
                                 d_ffn=48, params=params, params_total=params + 400, seq_len=32, batch_size=8,
                                 step=step, tokens=tokens, flops=6.0 * params * tokens,
                                 pf_days=6.0 * params * tokens / 8.64e19, train_loss=3.0 - step / 10,
                                 val_loss=3.1 - step / 10, bayes_loss=1.5, lr=3e-3,
                                 diverged=f"{arch}-{size}" == diverged_run and step == max(steps), seed=0,
                                 preset="x", wall_time_s=float(step)))
    return to_frame(rows)


@pytest.mark.parametrize("content", ['{"set": ["nokey"]}', '{"set": [1]}', "[1]", '{"set": "a=1"}',
                                     '{"set": [["train.lr=1"]]}'])
def test_a_studys_overrides_file_that_is_not_a_list_of_settings_is_an_error(tmp_path, content):
    """A chapter reads the grid the study trained from its overrides.json: one that is not a list of KEY=VALUE
    strings must be refused, not applied as a different grid or a traceback."""
    from linscale import results as results_module
    from linscale.config import ResultsError

    (tmp_path / "smoke").mkdir()
    (tmp_path / "smoke" / results_module.OVERRIDES_FILE).write_text(content)
    with pytest.raises(ResultsError, match=r'overrides.json: expected \{"set": \["KEY=VALUE", ...\]\}'):
        results_module.study_overrides("smoke", tmp_path)


def test_a_parquet_table_missing_beside_its_csv_copy_is_read_from_the_csv(tmp_path):
    """A study committed without its Parquet files (or a reader without pyarrow's files) still has the CSV
    twins; a table that lacks a column the book needs is one line naming the column."""
    from linscale import results as results_module
    from linscale.config import ResultsError

    _runs_rows().to_csv(tmp_path / "runs.csv", index=False)
    table = results_module.read_table(tmp_path / "runs.parquet", results_module.RUNS_COLUMNS)
    assert len(table) == 3 and list(table["run_id"]) == ["tnl-s1"] * 3
    with pytest.raises(ResultsError, match="no such results table"):
        results_module.read_table(tmp_path / "eval.parquet")
    _runs_rows().drop(columns=["val_loss", "seed"]).to_csv(tmp_path / "runs.csv", index=False)
    with pytest.raises(ResultsError, match=r"runs.csv: missing column\(s\) val_loss, seed$"):
        results_module.read_table(tmp_path / "runs.parquet", results_module.RUNS_COLUMNS)


def test_a_studys_runs_leave_out_diverged_rows_unless_asked_for(tmp_path):
    """The scaling-law fits read read_runs: a diverged row's NaN losses would poison them (the run's rows
    before it are kept), yet the training chapter must be able to show that the run diverged."""
    from linscale import results as results_module

    (tmp_path / "smoke").mkdir()
    runs = _runs_rows(sizes=(("s1", 1000), ("s2", 2000)), diverged_run="tnl-s2")
    runs.to_parquet(tmp_path / "smoke" / "runs.parquet")
    kept = results_module.read_runs("smoke", tmp_path)
    assert len(kept) == 5 and not kept["diverged"].any() and list(kept.index) == list(range(5))
    every = results_module.read_runs("smoke", tmp_path, include_diverged=True)
    assert len(every) == 6 and every["diverged"].sum() == 1


def test_a_run_summary_is_each_runs_last_step_in_the_books_architecture_order():
    """The training chapter's table: one row per run at its last checkpoint (not the first row found), the
    architectures in the order every figure uses (llama, tnl, hgrn2, cosformer2, not alphabetical), then by N."""
    from linscale import results as results_module
    from linscale.config import ARCHITECTURES

    runs = _runs_rows(archs=("cosformer2", "tnl", "llama", "hgrn2"), sizes=(("s2", 2000), ("s1", 1000)))
    runs = runs.sample(frac=1, random_state=0)
    summary = results_module.run_summary(runs)
    assert list(summary["arch"]) == [arch for arch in ARCHITECTURES for _ in range(2)]
    assert list(summary["size"]) == ["s1", "s2"] * 4 and list(summary["params"]) == [1000, 2000] * 4
    assert (summary["tokens"] == 3 * 8 * 32).all() and (summary["wall_time_s"] == 3.0).all()
    assert (summary["checkpoints"] == 3).all()


def test_grid_facts_count_runs_and_take_each_runs_last_wall_time():
    """The prose's numbers: runs and checkpoints counted, N and C spans in decades, and the training time
    the sum of each run's last checkpoint's wall time (it is cumulative), not of every row's."""
    from linscale import results as results_module

    runs = pd.concat([_runs_rows(archs=("tnl", "llama"), sizes=(("s1", 1000), ("s2", 100000)), diverged_run="tnl-s2"),
                      _runs_rows(archs=("hgrn2",), steps=(1, 2))], ignore_index=True)  # a shorter run
    facts = results_module.grid_facts(runs)
    assert (facts["n_runs"], facts["n_checkpoints"], facts["n_archs"], facts["n_sizes"]) == (5, 14, 3, 2)
    assert (facts["params_min"], facts["params_max"]) == (1000, 100000)
    assert facts["params_decades"] == pytest.approx(2.0)
    assert 10 ** facts["compute_decades"] == pytest.approx(100 * 3)  # 100x the params, 3x the tokens
    assert facts["tokens_max"] == 3 * 8 * 32 and facts["bayes_loss"] == 1.5 and facts["n_diverged"] == 1
    assert facts["wall_time_h"] == pytest.approx((4 * 3.0 + 2.0) / 3600)  # each run's last step: 3 s (2 s)


def test_the_books_tables_need_the_schemas_columns_and_an_eval_store_its_own(tmp_path):
    """read_runs requires every column of the results schema but train_bayes_loss (which linscale 0.1
    tables lack), so a chapter's first use of a missing column is not a KeyError; read_eval requires the
    store's columns, naming the one missing."""
    from linscale import results as results_module
    from linscale.config import ResultsError
    from linscale.train.results import SCHEMA

    assert sorted(results_module.RUNS_COLUMNS) == sorted(set(SCHEMA) - {"train_bayes_loss"})
    (tmp_path / "smoke").mkdir()
    _runs_rows().drop(columns="wall_time_s").to_parquet(tmp_path / "smoke" / "runs.parquet")
    with pytest.raises(ResultsError, match=r"runs.parquet: missing column\(s\) wall_time_s$"):
        results_module.read_runs("smoke", tmp_path)
    store = pd.DataFrame([{c: 1 for c in results_module.EVAL_COLUMNS}])
    store.to_parquet(tmp_path / "smoke" / "eval.parquet")
    assert len(results_module.read_eval("smoke", tmp_path)) == 1
    store.drop(columns="value").to_parquet(tmp_path / "smoke" / "eval.parquet")
    with pytest.raises(ResultsError, match=r"eval.parquet: missing column\(s\) value$"):
        results_module.read_eval("smoke", tmp_path)


def test_final_scores_are_each_runs_last_evaluated_checkpoint():
    """The downstream chapters compare runs at their final model: each run's own largest step, not the
    largest step of the whole store (runs of different lengths) nor an earlier checkpoint."""
    from linscale import results as results_module

    store = pd.DataFrame({"run_id": ["a", "a", "a", "b", "b"], "step": [10, 30, 20, 5, 7],
                          "value": [0.1, 0.3, 0.2, 0.5, 0.7]})
    final = results_module.final_scores(store)
    assert sorted(zip(final["run_id"], final["step"], final["value"])) == [("a", 30, 0.3), ("b", 7, 0.7)]


def test_an_optional_table_the_study_did_not_write_is_none(tmp_path):
    """Chapters show a section only where the study wrote its table (roles, niah_cells): a missing one is
    None, not an error; a written one is read."""
    from linscale import results as results_module

    assert results_module.read_optional("smoke", tmp_path, "roles") is None
    (tmp_path / "smoke").mkdir()
    pd.DataFrame({"x": [1, 2]}).to_parquet(tmp_path / "smoke" / "roles.parquet")
    assert list(results_module.read_optional("smoke", tmp_path, "roles")["x"]) == [1, 2]
