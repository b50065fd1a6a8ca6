"""Bad input at the command line is one line that names the option or file and what it expected, with a
non-zero exit and nothing written: the cases a user hit (a sweep of 112 bad commands, 2026-12-05) that
were tracebacks, were accepted, or lost what was computed."""
from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

import pytest

from linscale import book
from linscale.cli import main

# (arguments, what the one line must say): counts parsed by argparse, before any stage runs
OUT_OF_RANGE = [
    # --bootstrap -1 refitted the stored laws without intervals, deleted their draws and exited 0
    (["study", "--bootstrap", "-1"], "argument --bootstrap: expected a whole number >= 2, got -1"),
    (["study", "--eval-limit", "-1"], "argument --eval-limit: expected a whole number >= 1, got -1"),
    (["study", "--jobs", "0"], "argument --jobs: expected a whole number >= 1, got 0"),
    (["eval", "runs/x", "--limit", "0"], "argument --limit: expected a whole number >= 1, got 0"),
    # refused only when something was left to evaluate: with every checkpoint done, --batch-size 0 passed
    (["eval", "runs/x", "--batch-size", "0"], "argument --batch-size: expected a whole number >= 1, got 0"),
    (["eval", "runs/x", "--context-factor", "0"], "argument --context-factor: expected a number above 0, got 0"),
    # inf (and 1e400) was an OverflowError traceback where a checkpoint's context was scaled by it
    (["eval", "runs/x", "--context-factor", "inf"], "argument --context-factor: expected a number above 0, got inf"),
    (["eval", "runs/x", "--context-factor", "1e400"], "argument --context-factor: expected a number above 0, got inf"),
    (["eval", "runs/x", "--context-factor", "nan"], "argument --context-factor: expected a number above 0, got nan"),
    (["sweep", "--preset", "smoke", "--dry-run", "--jobs", "0"], "argument --jobs: expected a whole number >= 1"),
    (["sweep", "--preset", "smoke", "--dry-run", "--threads", "0"], "argument --threads: expected a whole number"),
    (["data", "--seq-len", "0"], "argument --seq-len: expected a whole number >= 1 and <= 65,536, got 0"),
    (["data", "--sample", "-2"], "argument --sample: expected a whole number >= 0 and <= 1,000, got -2"),
    # ran out of memory (the summary's exact entropy and its unigram sample grow with the row length)
    (["data", "--seq-len", "100000000"], "argument --seq-len: expected a whole number >= 1 and <= 65,536, got 100000000"),
    (["data", "--sample", "1000000"], "argument --sample: expected a whole number >= 0 and <= 1,000, got 1000000"),
    (["accounting", "--preset", "smoke", "--seq-len", "-5"], "argument --seq-len: expected a whole number >= 1"),
    (["bench", "--threads", "0"], "argument --threads: expected a whole number >= 1, got 0"),
    # refused by the library after torch was imported, naming "rounds:", not the option typed
    (["bench", "--rounds", "0"], "argument --rounds: expected a whole number >= 1, got 0"),
    (["study", "--bootstrap", "many"], "argument --bootstrap: expected a whole number >= 2, got 'many'"),
    # fit's were refused as "n_resamples: ..." and "drop_highest_loss: ...", names the user never typed
    (["fit", "--method", "approach1", "--table", "runs.csv", "--bootstrap", "1"],
     "argument --bootstrap: expected 0 (no intervals) or a whole number >= 2, got '1'"),
    (["fit", "--method", "approach1", "--table", "runs.csv", "--drop-highest-loss", "-1"],
     "argument --drop-highest-loss: expected a whole number >= 0, got -1"),
    # numpy's "expected non-negative integer" traceback, deep in the language's world
    (["data", "--seed", "-5"], "argument --seed: expected a whole number >= 0, got -5"),
    (["data", "--world-seed", "-1"], "argument --world-seed: expected a whole number >= 0, got -1"),
]


@pytest.mark.parametrize("argv, expected", OUT_OF_RANGE, ids=[" ".join(a) for a, _ in OUT_OF_RANGE])
def test_a_count_out_of_range_is_one_line_naming_the_option(argv, expected, capsys):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and expected in err and err.count("\n") == 1, err


def one_line_error(argv, capsys) -> str:
    """main(argv)'s one line on stderr, after checking it exits 2."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("linscale: error: ") and err.count("\n") == 1, err
    return err


# (--set override, what the one line must say): a block of the wrong type was a TypeError or an AttributeError
# where the block was read; a misspelled design key passed in silence; a negative exponent became complex
BAD_BLOCKS = [
    ("train=5", "train: expected a mapping, got 5"),
    ("model=5", "model: expected a mapping, got 5"),
    ("arch_overrides=5", "arch_overrides: expected a mapping, got 5"),
    ("arch_overrides.tnl=5", "arch_overrides.tnl: expected a mapping of size -> shape changes, got 5"),
    ("cluster=5", "cluster: expected a mapping, got 5"),
    ("description=[1]", "description: expected text, got [1]"),
    ("design=5", "design: expected a mapping with law and noise, got 5"),
    ("design.nosuch=1", "design.nosuch: unknown key; expected law or noise"),
    ("design.law=5", "design.law: expected a mapping of E, A, B, alpha, beta, got 5"),
    ("design.law.alpha=-1", "design.law.alpha: expected a positive number, got -1"),
    ("design.law.gamma=1", "design.law.gamma: unknown key; expected one of E, A, B, alpha, beta"),
    ("design.law.tnl={A: x}", "design.law.tnl.A: expected a positive number, got 'x'"),
    ("design.noise.run=-0.1", "design.noise.run: expected a non-negative number, got -0.1"),
    # read only by the study's ablations: a typo got as far as the sweep stage (the design check recorded it)
    ("context_size=abc", "context_size: 'abc' is not a size of the grid; expected one of s1, s2, s3, s4, s5, s6"),
]


@pytest.mark.parametrize("override, expected", BAD_BLOCKS, ids=[o for o, _ in BAD_BLOCKS])
def test_a_preset_block_of_the_wrong_shape_is_one_line(override, expected, capsys):
    for command in (["sweep", "--preset", "cpu", "--dry-run"], ["sweep", "--preset", "cpu", "--check-design"]):
        assert expected in one_line_error([*command, "--set", override], capsys)


def test_an_empty_stage_list_or_a_file_for_a_sweep_folder_is_one_line(tmp_path, capsys):
    """`linscale study --stages ""` ran every stage (about 200 s on the smoke preset); `linscale eval FILE`
    said the sweep folder 'does not exist'."""
    mine = ["--runs-dir", str(tmp_path / "runs"), "--results-dir", str(tmp_path / "results")]
    for stages in ("", ","):
        assert "--stages: empty; expected some of design, sweep" in one_line_error(
            ["study", "--preset", "smoke", *mine, "--stages", stages], capsys)
    assert not any(tmp_path.iterdir())
    (tmp_path / "afile").write_text("")
    assert f"{tmp_path / 'afile'}: is a file; expected a sweep folder" in one_line_error(
        ["eval", str(tmp_path / "afile")], capsys)


def test_every_help_text_is_plain_text():
    """--help prints text, not reStructuredText: the command's description, taken from the module docstring,
    showed its ``linscale`` with the backticks, and a subcommand's help could do the same."""
    from linscale.cli import build_parser

    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    texts = {"linscale": parser.format_help(), **{name: p.format_help() for name, p in subparsers.items()}}
    assert len(texts) > 10 and "The linscale command line" in texts["linscale"]
    assert [name for name, text in texts.items() if "``" in text or ":func:" in text or ":mod:" in text] == []


def test_accounting_refuses_a_preset_that_sweep_refuses(tmp_path, capsys):
    """`linscale accounting` tabulated, with exit status 0, presets that `linscale sweep` refuses."""
    from linscale.presets import PRESET_DIR

    bad = tmp_path / "bad.yaml"
    bad.write_text((PRESET_DIR / "smoke.yaml").read_text().replace("\nname: smoke", "\nname: bad") + "\nwobble: 1\n")
    for command in (["accounting"], ["accounting", "--table7"], ["sweep", "--dry-run"]):
        assert "preset: unknown top-level key 'wobble'" in one_line_error([*command, "--preset", str(bad)], capsys)


def test_a_preset_file_that_cannot_be_read_is_one_line(tmp_path, capsys, monkeypatch):
    """A non-UTF-8 preset file and a folder named like one were UnicodeDecodeError and IsADirectoryError
    tracebacks (study and book called the folder a file that 'does not exist'); a LINSCALE_PRESETS that
    names no folder was passed over in silence; a file ending in .YAML was taken for a preset's name."""
    from linscale.presets import PRESET_DIR, USER_PRESETS_ENV

    (tmp_path / "latin.yaml").write_bytes("name: caf\xe9\n".encode("latin-1"))
    (tmp_path / "folder.yaml").mkdir()
    for command in (["accounting", "--preset"], ["sweep", "--dry-run", "--preset"], ["study", "--preset"]):
        err = one_line_error([*command, str(tmp_path / "latin.yaml")], capsys)
        assert f"{tmp_path / 'latin.yaml'}: not UTF-8 text (byte 0xe9 at position 9)" in err
        assert f"{tmp_path / 'folder.yaml'} is a folder; expected a preset's .yaml file" in one_line_error(
            [*command, str(tmp_path / "folder.yaml")], capsys)
        # a folder not named like a preset file was "unknown preset '/tmp/...'", as if it were a name
        assert f"{tmp_path} is a folder; expected a preset's .yaml file or one of cpu" in one_line_error(
            [*command, str(tmp_path)], capsys)
    monkeypatch.setenv(USER_PRESETS_ENV, str(tmp_path / "nosuch"))
    err = one_line_error(["accounting", "--preset", "mine"], capsys)
    assert "unknown preset 'mine'" in err and f"{USER_PRESETS_ENV} names {tmp_path / 'nosuch'}, not a folder" in err
    monkeypatch.setenv(USER_PRESETS_ENV, str(tmp_path))
    assert "unknown preset 'folder'" in one_line_error(["accounting", "--preset", "folder"], capsys)
    loud = (PRESET_DIR / "smoke.yaml").read_text().replace("\nname: smoke", "\nname: Loud")
    (tmp_path / "Loud.YAML").write_text(loud)
    assert main(["accounting", "--preset", str(tmp_path / "Loud.YAML")]) == 0
    assert main(["accounting", "--preset", "Loud"]) == 0  # by name, from the folder in LINSCALE_PRESETS


def test_malformed_yaml_is_one_line_naming_where(tmp_path, capsys):
    preset = tmp_path / "bad.yaml"
    preset.write_text("name: bad\narchs: [llama\n  sizes: {\n")
    err = one_line_error(["accounting", "--preset", str(preset)], capsys)
    assert f"preset: {preset}: not valid YAML at line 3, column 8" in err
    err = one_line_error(["book", "--chapter", "architectures", "-y", "contexts: [256, 1024", "--no-html"], capsys)
    assert "-y 'contexts: [256, 1024': not valid YAML" in err
    err = one_line_error(["book", "--chapter", "training", "-p", "archs", "[tnl"], capsys)
    assert "-p archs: not valid YAML" in err


def test_data_options_that_would_be_ignored_or_clash_with_a_file_are_refused(tmp_path, capsys):
    assert "--preset/--set: only with --prepare" in one_line_error(["data", "--set", "data.source=text"], capsys)
    taken = tmp_path / "items.txt"
    taken.write_text("x")
    err = one_line_error(["data", "--write-eval", str(taken), "--sample", "0"], capsys)
    assert f"--write-eval: {taken} is a file; expected a folder" in err


def test_a_damaged_run_spec_is_named(tmp_path, capsys):
    run = tmp_path / "llama-s1"
    run.mkdir()
    (run / "spec.json").write_text('{"run_id": "llama-s1", "train": {')
    assert f"{run / 'spec.json'}: not a readable run spec" in one_line_error(["train", "--run-dir", str(run)], capsys)
    # JSON of another shape was a TypeError or a KeyError traceback from inside training
    for text, what in (("[]", "a JSON list"), ('{"run_id": "llama-s1", "train": {}, "data": {}}', "no model"),
                       ('{"run_id": "r", "model": 3, "train": {}, "data": {}}', "model, data and train must each")):
        (run / "spec.json").write_text(text)
        assert f"{run / 'spec.json'}: not a run spec ({what}" in one_line_error(["train", "--run-dir", str(run)], capsys)


def test_a_dry_run_checks_the_data_block_as_the_sweep_does(tmp_path, capsys):
    err = one_line_error(["sweep", "--preset", "smoke", "--dry-run", "--set", "data.source=text",
                          "--set", f"data.path={tmp_path / 'absent.txt'}"], capsys)
    assert f"data.path: no file or folder {tmp_path / 'absent.txt'}" in err
    err = one_line_error(["sweep", "--preset", "smoke", "--dry-run", "--set", "data.source=text",
                          "--set", "data.text_feild=body"], capsys)
    assert "data.text_feild: unknown key for source 'text'" in err


def test_a_dry_run_plans_a_text_grid_before_its_corpus_is_there(capsys):
    """A GPU user sizes the paper grid before the corpus is downloaded: the plan, and a note that the sweep
    will need data.path (it was an error that printed no plan)."""
    assert main(["sweep", "--preset", "paper", "--dry-run"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("24 runs\n") and "tnl-7B:" in out and "76293 steps" in out
    assert "data.path is not set; the sweep will need it" in err


def test_a_slurm_sweep_without_slurm_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)  # no srun on this PATH
    out = tmp_path / "sweep"
    err = one_line_error(["sweep", "--preset", "smoke", "--out", str(out), "--executor", "slurm"], capsys)
    assert "executor: slurm needs SLURM's srun" in err and not out.exists()


def test_a_misspelled_cluster_key_is_named_before_any_run_is_written(tmp_path, monkeypatch, capsys):
    """submitit found an unknown key only when its executor was built, after every spec.json was written."""
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: f"/usr/bin/{name}")  # as on a login node
    out = tmp_path / "sweep"
    err = one_line_error(["sweep", "--preset", "smoke", "--out", str(out), "--executor", "slurm",
                          "--set", "cluster.slurm_partiton=gpu"], capsys)
    assert err.startswith("linscale: error: cluster.slurm_partiton: not a submitit parameter") and "partition" in err
    err = one_line_error(["sweep", "--preset", "smoke", "--out", str(out), "--executor", "submitit-local",
                          "--set", "cluster.timeout_min=an hour"], capsys)
    assert "cluster.timeout_min: expected int, got 'an hour'" in err and not out.exists()


def test_cluster_values_the_runs_cannot_use_are_refused_off_the_cluster_too(tmp_path, monkeypatch, capsys):
    """A negative time limit, or a job of other sizes than the runs' own (Lightning makes a rank of each
    task: 2 nodes for a run of 12 waits for ranks that never come), went to SLURM as written; and without
    srun here a bad cluster block could not be checked before the job was on the cluster."""
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)  # off the cluster
    out = tmp_path / "sweep"
    base = ["sweep", "--preset", "paper", "--out", str(out), "--executor", "slurm", "--set", f"data.path={tmp_path}"]
    for setting, message in (("cluster.timeout_min=-5", "cluster.timeout_min: expected a positive number, got -5"),
                             # no time at all: the job would be killed at its start, each requeue again
                             ("cluster.timeout_min=0", "cluster.timeout_min: expected a positive number, got 0"),
                             ("cluster.nodes=2", "cluster.nodes: 2, but each run trains on train.num_nodes = 12"),
                             ("cluster.tasks_per_node=4", "cluster.tasks_per_node: 4, but each run trains on "
                                                          "train.devices = 8"),
                             # SLURM's own spelling of the same passed
                             ("cluster.slurm_nodes=2", "cluster.slurm_nodes: 2, but each run trains on train.num_nodes = 12"),
                             ("cluster.slurm_ntasks_per_node=4", "cluster.slurm_ntasks_per_node: 4, but each run trains "
                                                                 "on train.devices = 8"),
                             # SLURM's parameters by submitit's types: a list went into the job script as text
                             ("cluster.slurm_partition=[a,b]", "cluster.slurm_partition: expected str or null, got "
                                                               "['a', 'b']"),
                             ("cluster.slurm_time=an hour", "cluster.slurm_time: expected int, got 'an hour'"),
                             ("cluster.slurm_use_srun=5", "cluster.slurm_use_srun: expected bool, got 5")):
        assert message in one_line_error([*base, "--set", setting], capsys), setting
    # the command line's --num-nodes is what the runs train on
    assert "train.num_nodes = 3" in one_line_error([*base, "--num-nodes", "3"], capsys)
    for fine in ("slurm_partition=5", "slurm_exclusive=user", "slurm_mem=32G",  # a partition named 5 is text
                 "slurm_gpus_per_task=a100:1"):  # SLURM's [type:]count, where submitit says int
        assert "needs SLURM's srun" in one_line_error([*base, "--set", f"cluster.{fine}"], capsys), fine
    assert "needs SLURM's srun" in one_line_error(base, capsys)  # a good block gets as far as the cluster check
    assert not out.exists()


def test_a_node_with_fewer_gpus_than_the_runs_tasks_is_refused_before_the_job_is_submitted(tmp_path, monkeypatch,
                                                                                           capsys):
    """cluster.gpus_per_node below train.devices went to sbatch as written: each task drives the GPU of its
    local rank, so ranks 4-7 of an 8-task node with 4 GPUs failed only once the job ran."""
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)  # off the cluster
    base = ["sweep", "--preset", "paper", "--out", str(tmp_path / "sweep"), "--executor", "slurm",
            "--set", f"data.path={tmp_path}"]
    for setting in ("gpus_per_node=4", "slurm_gpus_per_node=h100:4"):
        err = one_line_error([*base, "--set", f"cluster.{setting}"], capsys)
        assert "but each run trains on train.devices = 8 GPUs a node; expected at least 8" in err, setting
    assert "train.devices = 10" in one_line_error([*base, "--devices", "10", "--set", "cluster.tasks_per_node=10"],
                                                  capsys)
    for fine in ("gpus_per_node=8", "slurm_gpus_per_node=h100:8"):
        assert "needs SLURM's srun" in one_line_error([*base, "--set", f"cluster.{fine}"], capsys), fine


def test_a_job_that_sbatch_refuses_is_one_line_naming_sbatchs_reason(tmp_path, monkeypatch, capsys):
    """sbatch's refusal (here an unknown partition) came back as submitit's traceback of 40 lines."""
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: f"/usr/bin/{name}")  # as on a login node
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    sbatch = bin_dir / "sbatch"
    sbatch.write_text("#!/bin/sh\necho 'sbatch: error: invalid partition specified: gpu' >&2\nexit 1\n")
    sbatch.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    err = one_line_error(["sweep", "--preset", "smoke", "--out", str(tmp_path / "sweep"), "--executor", "slurm",
                          "--set", "cluster.slurm_partition=gpu"], capsys)
    assert err.startswith("linscale: error: cluster: sbatch refused the job of ")
    assert "(sbatch: error: invalid partition specified: gpu)" in err


def test_a_dry_run_refuses_what_the_sweep_would_refuse(tmp_path, capsys):
    """`sweep --dry-run` exited 0 with a cluster block the sweep refuses and with --out naming a file."""
    dry = ["sweep", "--preset", "smoke", "--dry-run"]
    assert "cluster.nosuch: not a submitit parameter" in one_line_error(
        [*dry, "--executor", "slurm", "--set", "cluster.nosuch=1"], capsys)
    afile = tmp_path / "afile"
    afile.write_text("")
    assert f"--out: {afile} is a file; expected a folder" in one_line_error([*dry, "--out", str(afile)], capsys)
    assert main([*dry, "--out", str(tmp_path / "new")]) == 0 and not (tmp_path / "new").exists()
    # it printed its plan, exit 0, for FSDP on a CPU and for a batch the devices do not divide
    assert "train.strategy: fsdp needs GPUs" in one_line_error([*dry, "--strategy", "fsdp", "--accelerator", "cpu"],
                                                               capsys)
    assert "train.batch_size: 8 sequences do not split over 3 devices" in one_line_error(
        [*dry, "--devices", "3", "--set", "train.batch_size=8"], capsys)
    assert main(["sweep", "--preset", "paper", "--dry-run"]) == 0  # a GPU grid is planned on any machine


def test_a_benchmark_of_an_unknown_preset_or_study_stops_before_timing(capsys):
    assert "preset: unknown preset 'smok'" in one_line_error(["bench", "--preset", "smok", "--out", ""], capsys)
    err = one_line_error(["bench", "--sections", "end_to_end", "--studies", "smoke,smok", "--out", ""], capsys)
    assert "--studies: unknown preset(s) smok" in err


def test_a_benchmark_report_folder_that_is_a_file_stops_before_timing(tmp_path, capsys, monkeypatch):
    """The report is written after every benchmark: `--out` naming a file failed there, a traceback after
    the timings (an hour, with the studies), all of them lost."""
    from linscale import bench

    monkeypatch.setattr(bench, "run_all", lambda **kw: pytest.fail("benchmarks timed before --out was checked"))
    afile = tmp_path / "afile"
    afile.write_text("")
    err = one_line_error(["bench", "--quick", "--sections", "training", "--out", str(afile)], capsys)
    assert f"--out: {afile} is a file; expected a folder" in err


def test_evaluation_without_a_runs_table_writes_nothing_into_the_results(tmp_path, capsys):
    """`study --stages eval` on a results folder without runs.parquet wrote eval.parquet and roles.parquet
    into it, then failed with a traceback."""
    results = tmp_path / "results"
    err = one_line_error(["study", "--preset", "smoke", "--stages", "eval", "--jobs", "1", "--runs-dir",
                          str(tmp_path / "runs"), "--results-dir", str(results)], capsys)
    assert "runs.parquet: no runs table to evaluate" in err
    assert not list(results.rglob("*.parquet"))


def test_a_fit_written_into_a_new_folder_creates_it(tmp_path, capsys):
    out = tmp_path / "new" / "params.csv"
    assert main(["fit", "--table", str(book.ROOT / "results" / "smoke" / "runs.csv"), "--method", "approach1",
                 "--out", str(out)]) == 0
    assert "estimate" in out.read_text().splitlines()[0]


def test_a_chapter_that_fails_is_one_line_with_where_its_traceback_is(tmp_path):
    """A corrupt table under a chapter was two tracebacks, 150 lines, and no word of the failed notebook."""
    shutil.copytree(book.ROOT / "results" / "smoke", tmp_path / "smoke")
    runs = tmp_path / "smoke" / "runs.parquet"
    runs.write_bytes(runs.read_bytes()[:300])
    with pytest.raises(book.ChapterFailed, match=r"^chapter training: a cell raised ResultsError: .*runs\.parquet: not a "
                       r"readable results table .*\(the traceback: .*training\.failed\.ipynb\)$"):
        book.execute_chapter("training", {"preset": "smoke", "results_dir": str(tmp_path)}, out_dir=tmp_path / "out")
    assert (tmp_path / "out" / "training.failed.ipynb").exists()


def test_one_chapter_on_a_fresh_clone_first_executes_the_chapters_the_html_links(tmp_path, monkeypatch):
    """`linscale book --chapter accounting -p figure_size 70M` on a fresh clone (no executed chapters) ran
    that chapter alone, and the HTML build stopped on the introduction's glues and links to the others."""
    calls = []
    chapters = tmp_path / "chapters"
    chapters.mkdir()
    (chapters / "training.ipynb").write_text("{}")  # executed before: not executed again
    monkeypatch.setattr(book, "CHAPTER_DIR", chapters)
    forced = []
    monkeypatch.setattr(book, "execute_book", lambda parameters, chapters, force=False, **kw:
                        calls.append((parameters, chapters)) or forced.append(force))
    monkeypatch.setattr(book, "build_html", lambda *a, **k: tmp_path)
    monkeypatch.setattr(book, "check_html", lambda *a, **k: [])
    assert main(["book", "--chapter", "accounting", "-p", "figure_size", "70M", "--preset", "smoke"]) == 0
    asked, rest = calls
    assert asked == ({"preset": "smoke", "figure_size": "70M"}, ["accounting"])
    # the same command again reuses what it executed (the chapter's stamp holds its parameters): only --force
    # re-executes a chapter whose source, parameters and tables are unchanged
    assert forced == [False, False]
    assert rest[0] == {"preset": "smoke"} and "accounting" not in rest[1] and "training" not in rest[1]
    assert set(rest[1]) | {"accounting", "training"} == set(book.toc_chapters())
    calls.clear()
    assert main(["book", "--chapter", "accounting", "--no-html"]) == 0 and len(calls) == 1  # no HTML, no others
    assert main(["book", "--chapter", "accounting", "--no-html", "--force"]) == 0 and forced[-1] is True


def test_the_book_of_a_study_of_real_text_executes_and_builds_its_own_chapters(tmp_path, monkeypatch):
    """`linscale book --preset text` (and the study's book stage) executed every chapter of the full book, and
    the downstream chapter was refused: a study of text had no book. Now both take the text table of
    contents, its chapters and its build."""
    from linscale import study

    calls, built = [], []
    monkeypatch.setattr(book, "execute_book", lambda parameters, chapters, **kw: calls.append((parameters, chapters)))
    monkeypatch.setattr(book, "build_html", lambda root, toc=None, **kw: built.append(toc) or tmp_path)
    monkeypatch.setattr(book, "check_html", lambda html, chapters, **kw: built.append(chapters) or [])
    text = book.toc_chapters(book.TEXT_TOC)
    assert main(["book", "--preset", "text", "--book-dir", str(tmp_path / "b")]) == 0
    assert calls[0][1] == text and built == [book.TEXT_TOC, text]
    calls.clear(), built.clear()
    assert study.stage_book("text", tmp_path / "results", book_dir=tmp_path / "b") == 0
    assert calls[0][1] == text and built == [book.TEXT_TOC, text]
    calls.clear(), built.clear()
    assert main(["book", "--preset", "smoke", "--book-dir", str(tmp_path / "b")]) == 0  # the synthetic language's
    assert calls[0][1] == book.toc_chapters() and built == [book.BOOK / "_toc.yml", book.toc_chapters()]


def test_a_book_of_ones_own_is_executed_and_built_in_book_dir(tmp_path, monkeypatch):
    """`linscale book` wrote into the repository's book/chapters and _build/html whatever study it showed
    (a helper's own grid overwrote the clone's published book); `--book-dir` keeps both in a copy of the
    book's sources, as `linscale study --book-dir` does, and reads a relative results folder from here."""
    executed, built = [], []
    monkeypatch.setattr(book, "execute_book", lambda parameters, chapters, **kw: executed.append((parameters, kw)))
    monkeypatch.setattr(book, "build_html", lambda root=book.ROOT, **k: built.append(root) or root / "_build" / "html")
    monkeypatch.setattr(book, "check_html", lambda *a, **k: [])
    mine = tmp_path / "mine"
    assert main(["book", "--chapter", "accounting", "--preset", "smoke", "--results-dir", "results",
                 "--book-dir", str(mine)]) == 0
    assert built == [mine] and (mine / "book" / "_toc.yml").exists() and (mine / "_config.yml").exists()
    assert {kw["out_dir"] for _, kw in executed} == {mine / "book" / "chapters"}
    assert executed[0][0]["results_dir"] == str(Path("results").resolve())
    # the study's book stage does the same with its own --book-dir (one place: book.book_root)
    from linscale import study

    executed.clear()
    built.clear()
    assert study.stage_book("smoke", Path("results"), book_dir=tmp_path / "study") == 0
    assert built == [tmp_path / "study"] and executed[0][1]["out_dir"] == tmp_path / "study" / "book" / "chapters"
    assert executed[0][0]["results_dir"] == str(Path("results").resolve())
    executed.clear()
    built.clear()
    assert study.stage_book("smoke", Path("results")) == 0  # no --book-dir: the repository's
    assert built == [book.ROOT] and executed[0][0]["results_dir"] == "results"


def _read_only_folder() -> Path:
    """A folder no one may write in, root included (the helpers and CI run as root, whom chmod does not
    stop): Linux's /sys."""
    try:
        Path("/sys/linscale-write-test").mkdir()
    except PermissionError:
        return Path("/sys")
    Path("/sys/linscale-write-test").rmdir()
    pytest.fail("/sys is writable here: this test needs a folder no one may write in")


def test_a_folder_that_cannot_be_written_is_one_line_before_any_stage(tmp_path, capsys, monkeypatch):
    """A read-only --book-dir, --runs-dir or --results-dir was a PermissionError traceback at the first write;
    a folder the chosen stages only read (the book stage's tables) is not refused. A write refused later (a
    full disk) is one line too, and other errors are not swallowed."""
    import errno

    from linscale import study

    locked = _read_only_folder() / "linscale"
    mine = ["--runs-dir", str(tmp_path / "runs"), "--results-dir", str(tmp_path / "results")]
    for option in ("--runs-dir", "--results-dir", "--book-dir"):
        argv = ["study", "--preset", "smoke", *mine, option, str(locked / "x")]
        assert f"{option}: cannot write in {locked.parent} (" in one_line_error(argv, capsys)
    assert f"--book-dir: cannot write in {locked.parent}" in one_line_error(
        ["book", "--chapter", "accounting", "--no-html", "--book-dir", str(locked)], capsys)
    assert f"--out: cannot write in {locked.parent}" in one_line_error(
        ["fit", "--table", str(book.ROOT / "results" / "smoke" / "runs.parquet"), "--method", "approach1",
         "--out", str(locked / "f.csv")], capsys)
    assert (f"--out: cannot write in {locked.parent} (creating a file there fails: "
            in one_line_error(["sweep", "--preset", "smoke", "--out", str(locked / "runs")], capsys))
    assert not any(tmp_path.iterdir())
    calls = []
    monkeypatch.setattr(study, "run_study", lambda args: calls.append(args) or 0)
    assert main(["study", "--preset", "smoke", "--stages", "book", "--results-dir", str(locked)]) == 0 and calls
    def full(args):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "runs" / "x.ckpt"))
    monkeypatch.setattr(study, "run_study", full)
    err = one_line_error(["study", "--preset", "smoke", *mine], capsys)
    assert f"{tmp_path / 'runs' / 'x.ckpt'}: No space left on device; nothing already written is lost" in err
    monkeypatch.setattr(study, "run_study", lambda args: open(tmp_path / "no" / "such"))
    with pytest.raises(FileNotFoundError):
        main(["study", "--preset", "smoke", *mine])


def test_a_book_dir_that_is_a_file_is_one_line_before_any_stage(tmp_path, capsys):
    """`linscale study --book-dir FILE` ran every stage and then failed copying the book's sources, a
    NotADirectoryError traceback; `linscale book --book-dir FILE` was already one line."""
    a_file = tmp_path / "afile"
    a_file.write_text("")
    for command in (["study", "--preset", "smoke", "--runs-dir", str(tmp_path / "runs"), "--results-dir",
                     str(tmp_path / "results")], ["book", "--chapter", "accounting"]):
        err = one_line_error([*command, "--book-dir", str(a_file)], capsys)
        assert f"--book-dir: {a_file} is a file; expected a folder" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_fsdp_on_a_cpu_is_refused_before_the_runs_folder_is_written(tmp_path, monkeypatch, capsys):
    """Lightning refuses FSDP without a GPU only when the trainer is built: the run's spec.json and a
    'failed' status.json were already written."""
    monkeypatch.delenv("LINSCALE_FSDP_ON_CPU", raising=False)
    out = tmp_path / "train"
    err = one_line_error(["train", "--preset", "smoke", "--arch", "tnl", "--size", "s1", "--strategy", "fsdp",
                          "--accelerator", "cpu", "--out", str(out)], capsys)
    assert "train.strategy: fsdp needs GPUs" in err and not (out / "runs").exists()


@pytest.mark.parametrize("options, env, message", [
    (["--accelerator", "gpu"], {}, "train.accelerator: gpu, but torch finds no GPU here"),
    (["--accelerator", "cpu", "--num-nodes", "2"], {}, "train.num_nodes: 2 nodes, but no launcher started"),
    ([], {"LINSCALE_BACKEND": "bogus"}, "LINSCALE_BACKEND: 'bogus'; expected one of torch, triton"),
    ([], {"LINSCALE_BACKEND": "triton", "TRITON_INTERPRET": "0"}, "LINSCALE_BACKEND: triton on a CPU needs"),
    # a node's rank left in the shell: the run took itself for a rank > 0, trained, wrote no results row, exit 0
    ([], {"NODE_RANK": "1"}, "NODE_RANK: 1, but train.num_nodes is 1 (its one node is node 0); expected NODE_RANK"),
])
def test_what_would_fail_or_hang_in_the_trainer_is_refused_before_the_run_is_written(tmp_path, monkeypatch, capsys,
                                                                                     options, env, message):
    """A GPU run where torch sees none was a traceback after the data were prepared; several nodes without
    a launcher waited for the other nodes forever (SIGTERM too, its status.json 'running'); a bad
    LINSCALE_BACKEND was a traceback at the first forward. A GPU user meets these trying a command first."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for name in ("NODE_RANK", "SLURM_NTASKS", "SLURM_JOB_NAME", "TORCHELASTIC_RUN_ID", "LSB_JOBID",
                 "KUBERNETES_PORT", "LINSCALE_BACKEND"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "train"
    err = one_line_error(["train", "--preset", "smoke", "--arch", "tnl", "--size", "s1", *options, "--out", str(out)],
                         capsys)
    assert message in err and not (out / "runs").exists()
    monkeypatch.setenv("NODE_RANK", "0")  # set by hand on each node, as Lightning's own environment reads it
    from linscale.train.run import launched_on_several_nodes

    assert launched_on_several_nodes()


def test_more_devices_than_the_node_has_gpus_is_refused_before_the_run_is_written(tmp_path, monkeypatch, capsys):
    """--devices 16 on an 8-GPU node was Lightning's multi-line traceback ("You requested gpu: [0, ..., 15]
    But your machine only has: [0, ..., 7]"), raised when the trainer was built, after the data."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 8)
    out = tmp_path / "train"
    err = one_line_error(["train", "--preset", "smoke", "--arch", "tnl", "--size", "s1", "--accelerator", "gpu",
                          "--devices", "16", "--set", "train.batch_size=16", "--out", str(out)], capsys)
    assert "train.devices: 16 GPUs a node, but torch finds 8 on this one; expected at most 8" in err
    assert not (out / "runs").exists()


def test_a_failed_html_build_is_one_line(monkeypatch, capsys):
    """Jupyter Book stopping on a warning ended `linscale book` in a CalledProcessError traceback."""
    import subprocess

    monkeypatch.setattr(subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 1))
    with pytest.raises(book.BookBuildFailed, match=r"the HTML build failed \(jupyter-book exit 1\)"):
        book.build_html()
    monkeypatch.setattr(book, "execute_book", lambda *a, **k: [])  # no chapter is executed
    assert "the HTML build failed" in one_line_error(["book", "--chapter", "accounting"], capsys)


def test_an_empty_out_folder_is_refused_not_taken_for_the_default(capsys):
    """`--out ""` (an unset $DIR) trained into runs/<preset> without a word; a sweep refused it already."""
    for command in (["train", "--preset", "smoke", "--arch", "tnl", "--size", "s1"], ["sweep", "--preset", "smoke"]):
        assert "--out: expected a folder, got ''" in one_line_error([*command, "--out", ""], capsys)


def test_roles_written_over_the_results_store_are_refused_before_any_work(tmp_path, capsys):
    """`eval --out X.parquet --roles X.parquet` filled the results store, then wrote the roles table over it."""
    store = tmp_path / "store.parquet"
    err = one_line_error(["eval", str(tmp_path), "--out", str(store), "--roles", str(store)], capsys)
    assert f"--roles: {store} is where this call writes its results store" in err
    # the default store's per-item table beside it, and the default store itself under the default roles name
    items = tmp_path / "eval" / "items.parquet"
    assert "--roles:" in one_line_error(["eval", str(tmp_path), "--roles", str(items)], capsys)
    roles = tmp_path / "eval" / "roles.parquet"
    assert "--roles:" in one_line_error(["eval", str(tmp_path), "--out", str(roles), "--roles"], capsys)


def test_the_html_build_ends_with_the_process_that_started_it(monkeypatch):
    """A `linscale book` killed outright left jupyter-book writing _build/html for seconds: the build asks
    for a signal when its parent (this process) dies, as a probe's and a sweep's children do."""
    import subprocess

    calls, asked = [], []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: calls.append(k) or subprocess.CompletedProcess(a, 0))
    monkeypatch.setattr(book, "end_with_parent", lambda pid: asked.append(pid))
    book.build_html()
    calls[0]["preexec_fn"]()  # what the child runs before jupyter-book starts
    assert asked == [os.getpid()]


def test_the_html_build_prints_its_warnings_and_not_its_status(tmp_path, capfd):
    """The study's console showed Jupyter Book's and Sphinx's whole log (about 100 lines of status and a
    banner) after the chapters' progress lines. A book that builds prints nothing; one with a warning (an
    error under -W) prints the warning, naming the file, and fails in a line."""
    (tmp_path / "book").mkdir()
    (tmp_path / "_config.yml").write_text('title: "t"\nonly_build_toc_files: true\n')
    (tmp_path / "book" / "_toc.yml").write_text("format: jb-book\nroot: intro\n")
    (tmp_path / "book" / "intro.md").write_text("# Intro\n\nA page.\n")
    html = book.build_html(tmp_path)
    assert (html / "intro.html").exists()
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    (tmp_path / "book" / "intro.md").write_text("# Intro\n\nSee {ref}`no-such-label`.\n")
    with pytest.raises(book.BookBuildFailed, match=r"the HTML build failed \(jupyter-book exit 1\)"):
        book.build_html(tmp_path)
    out, err = capfd.readouterr()
    assert "intro.md" in err and "no-such-label" in err and "Running Sphinx" not in out + err


def test_a_fit_pointed_at_a_results_folder_names_the_table_in_it(tmp_path, capsys):
    """`fit --table results/cpu` said "no such file" of a folder that exists."""
    (tmp_path / "runs.parquet").write_bytes(b"")
    err = one_line_error(["fit", "--method", "approach1", "--table", str(tmp_path)], capsys)
    assert f"{tmp_path}: a folder; expected a .csv or .parquet file such as {tmp_path / 'runs.parquet'}" in err
    header_only = tmp_path / "header.csv"  # "runs: the table is empty" named no file
    header_only.write_text("run_id,params,tokens,loss\n")
    assert one_line_error(["fit", "--method", "approach1", "--table", str(header_only)], capsys) \
        .endswith(f"{header_only}: the table has no rows\n")
    cut = tmp_path / "cut.parquet"  # pyarrow's reason, first line only
    cut.write_bytes((book.ROOT / "results" / "smoke" / "runs.parquet").read_bytes()[:400])
    assert f"{cut}: cannot read the table (ArrowInvalid: " in one_line_error(
        ["fit", "--method", "approach1", "--table", str(cut)], capsys)


def test_an_output_file_that_cannot_be_written_as_asked_is_refused_before_any_work(tmp_path, capsys):
    """Tracebacks after the fit or evaluation had run (a folder, a path under a file), silent overwrites of
    an input (`fit --out` onto its own --table), and a format the name does not say (Parquet in a .csv)."""
    table = tmp_path / "runs.csv"
    shutil.copy(book.ROOT / "results" / "smoke" / "runs.csv", table)
    before = table.read_bytes()
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    fit = ["fit", "--method", "approach1", "--table", str(table), "--out"]
    for out, expected in [(tmp_path, f"--out: {tmp_path} is a folder; expected a file path"),
                          (table, f"--out: {table} is this command's --table; writing it would replace an input"),
                          (tmp_path / "p.parquet", "this command writes .csv files; expected a name ending in .csv"),
                          (a_file / "p.csv", f"--out: {a_file} is a file, so {a_file / 'p.csv'} cannot be written")]:
        assert expected in one_line_error(fit + [str(out)], capsys)
    assert table.read_bytes() == before
    sweep = str(tmp_path / "no-sweep")  # the options are checked before the sweep folder is looked at
    for options, expected in [(["--out", str(tmp_path / "e.csv")], "expected a name ending in .parquet"),
                              (["--roles", str(tmp_path)], f"--roles: {tmp_path} is a folder"),
                              (["--task-cache", str(a_file)], f"--task-cache: {a_file} is a file; expected a folder"),
                              (["--device", "banana"], "--device: expected a torch device such as cpu"),
                              # a device torch knows but this build lacks: a traceback in the evaluation's worker
                              (["--device", "xpu"], "--device: 'xpu' cannot hold tensors here ("),  # no Intel GPU
                              (["--suites", ""], "--suites: empty; name a suite, or give --tasks or --roles"),
                              (["--option", "mqar_pairs=abc"], "--option mqar_pairs: expected an integer, got 'abc'")]:
        assert expected in one_line_error(["eval", sweep, *options], capsys)
    err = one_line_error(["data", "--write-eval", str(a_file / "items")], capsys)
    assert f"--write-eval: {a_file} is a file; expected a folder" in err
    assert "--json: expected a file path, got ''" in one_line_error(["compare", sweep, sweep, "--json", ""], capsys)


def test_an_eval_store_that_is_another_table_is_named_not_appended_to(tmp_path):
    from linscale.config import ConfigError
    from linscale.eval.runner import read_store

    other = tmp_path / "runs.parquet"
    shutil.copy(book.ROOT / "results" / "smoke" / "runs.parquet", other)
    with pytest.raises(ConfigError, match=r"runs.parquet: not an evaluation results store \(no task, metric column"):
        read_store(other)
    assert len(read_store(book.ROOT / "results" / "smoke" / "eval.parquet"))
    damaged = tmp_path / "eval.parquet"  # cut short: one line, saying how the study goes on
    damaged.write_bytes((book.ROOT / "results" / "smoke" / "eval.parquet").read_bytes()[:500])
    with pytest.raises(ConfigError, match=r"eval.parquet: results store is not a readable Parquet file \(.*\); delete "
                                          r"it, and what it held is evaluated again") as err:
        read_store(damaged)
    assert "\n" not in str(err.value)


def test_data_without_a_sample_prints_the_summary(capsys):
    """`data --sample 0` (the summary, or the eval items, alone) failed reshaping an empty sample."""
    assert main(["data", "--sample", "0"]) == 0
    out = capsys.readouterr().out
    assert '"vocab_size"' in out and "exact nll of this row" not in out


def test_an_empty_grid_is_refused_by_accounting(tmp_path, capsys):
    """It printed an empty table with exit status 0."""
    preset = tmp_path / "empty.yaml"
    preset.write_text("name: empty\narchs: [tnl]\nsizes: {}\n")
    err = one_line_error(["accounting", "--preset", str(preset)], capsys)
    assert "sizes: expected a non-empty mapping of size name -> shape" in err


def test_a_fit_says_how_many_rows_it_could_not_group(tmp_path, capsys):
    """Rows with no architecture were left out of every group without a word."""
    import pandas as pd

    runs = pd.read_csv(book.ROOT / "results" / "smoke" / "runs.csv")
    runs.loc[runs.index[:3], "arch"] = None
    table = tmp_path / "runs.csv"
    runs.to_csv(table, index=False)
    assert main(["fit", "--method", "approach1", "--table", str(table)]) == 0
    assert "linscale: warning: dropping 3 rows where arch is missing" in capsys.readouterr().err


def test_an_empty_study_option_of_the_book_is_named_as_typed(capsys):
    """It was refused as "parameter preset", a chapter's name for it."""
    assert "--preset: expected a preset name, got ''" in one_line_error(["book", "--preset", ""], capsys)
    assert "--results-dir: expected a folder, got ' '" in one_line_error(["book", "--results-dir", " "], capsys)


def test_a_chapter_named_twice_runs_once(monkeypatch):
    """It ran twice at once, and the second failed renaming the first's notebook."""
    calls = []
    monkeypatch.setattr(book, "execute_book", lambda parameters, chapters, **kwargs: calls.append(chapters))
    assert main(["book", "--no-html", "--chapter", "accounting", "--chapter", "accounting"]) == 0
    assert calls == [["accounting"]]


def test_a_chapter_of_the_suites_scores_on_a_text_study_is_refused_before_any_kernel(tmp_path):
    """A study of real text has no eval.parquet (its suites need the synthetic language): the downstream,
    ablations and findings chapters failed in their kernels, a minute in, advising `linscale study` first."""
    from linscale.config import ConfigError

    study = tmp_path / "results" / "text"
    shutil.copytree(book.ROOT / "results" / "smoke", study)
    (study / "eval.parquet").unlink()
    out = tmp_path / "chapters"
    for chapter in book.READS_SUITES:
        with pytest.raises(ConfigError, match=rf"^parameter preset: text trains on text \(data.source\); chapter "
                                              rf"{chapter} reads the linscale suites' scores .+ expected --chapter of "
                                              rf"architectures, accounting, training, scaling_laws, efficiency, "
                                              rf"law_probes \(the book of a study of text\)$"):
            book.execute_book({"preset": "text", "results_dir": str(tmp_path / "results")}, chapters=[chapter],
                              out_dir=out)
    assert not out.exists()


def test_a_chapter_refuses_what_its_study_lacks_before_any_kernel(tmp_path):
    """A partial study's chapter failed several cells in with a KeyError (no fits), an IndexError or a
    division by zero (no runs of an architecture shown); a study named for a chapter that reads none was
    ignored; a reference preset that does not exist, or a figure size it lacks, was named as 'preset' or
    'size'."""
    from linscale.config import ConfigError

    partial = tmp_path / "results" / "smoke"
    shutil.copytree(book.ROOT / "results" / "smoke", partial)
    shutil.rmtree(partial / "fits")
    out = tmp_path / "chapters"
    with pytest.raises(ConfigError, match=r"smoke/fits: no fitted laws \(chapter scaling_laws reads them; run "
                                          r"`linscale study --preset smoke --results-dir .* --stages fits` first\)"):
        book.execute_book({"preset": "smoke", "results_dir": str(tmp_path / "results")}, chapters=["scaling_laws"],
                          out_dir=out)
    import pandas as pd

    runs = pd.read_parquet(partial / "runs.parquet")
    runs[runs["arch"] != "llama"].to_parquet(partial / "runs.parquet")
    with pytest.raises(ConfigError, match=r"parameter archs: no runs of llama in .*runs.parquet \(it has tnl, hgrn2"):
        book.execute_book({"preset": "smoke", "results_dir": str(tmp_path / "results")}, chapters=["downstream"],
                          out_dir=out)
    with pytest.raises(ConfigError, match=r"^--results-dir: chapter architectures reads no study's results; drop it"):
        book.execute_book({"results_dir": "elsewhere"}, chapters=["architectures"], out_dir=out)
    with pytest.raises(ConfigError, match=r"parameter reference_preset: must be a preset \(cpu, paper"):
        book.execute_book({"reference_preset": "nope"}, chapters=["accounting"], out_dir=out)
    with pytest.raises(ConfigError, match=r"parameter figure_size: expected a size of reference_preset paper "
                                          r"\(70M, .*7B\), got '99B'"):
        book.execute_book({"figure_size": "99B"}, chapters=["accounting"], out_dir=out)
    with pytest.raises(ConfigError, match=r"parameter reference_preset: must be a paper-scale preset, with sizes "
                                          r"of Table 7 \(70M, .*7B\); cpu has s1, .*s6, got 'cpu'"):
        book.execute_book({"reference_preset": "cpu", "figure_size": "s6"}, chapters=["accounting"], out_dir=out)
    import yaml

    from linscale.presets import load_preset

    small = load_preset("paper")
    small["sizes"], small["name"] = {"70M": small["sizes"]["70M"]}, "paper70m"
    (tmp_path / "paper70m.yaml").write_text(yaml.safe_dump(small))
    with pytest.raises(ConfigError, match=r"parameter figure_size: expected a size of reference_preset .*paper70m"):
        book.validate_parameters("accounting", **{**book.default_parameters("accounting"),  # in the kernel too
                                                  "reference_preset": str(tmp_path / "paper70m.yaml")})
    with pytest.raises(ConfigError, match=r"parameter preset: paper trains on text \(data.source\); chapter "
                                          r"synthetic_language shows the synthetic language"):
        book.execute_book({"preset": "paper"}, chapters=["synthetic_language"], out_dir=out)
    assert not out.exists()


def test_ctrl_c_during_the_book_starts_no_further_chapter(monkeypatch):
    """The queued chapters all ran before the process exited (103 s after a Ctrl-C in the resume review)."""
    import os
    import signal
    import threading
    import time

    started = []

    def chapter(name, parameters, **kwargs):
        started.append(name)
        if len(started) == 1:  # Ctrl-C while the first two chapters run
            threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()
        time.sleep(0.6)
        return name

    monkeypatch.setattr(book, "execute_chapter", chapter)
    monkeypatch.setattr(book, "check_results", lambda *args, **kwargs: None)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # a pytest-xdist worker ignores SIGINT
    try:
        with pytest.raises(KeyboardInterrupt):
            book.execute_book({}, chapters=["architectures", "accounting", "efficiency", "synthetic_language"],
                              workers=2)
    finally:
        signal.signal(signal.SIGINT, previous)
    time.sleep(1.0)  # long enough for a queued chapter to have started, were any left in the queue
    assert sorted(started) == ["accounting", "architectures"]


def test_ctrl_c_during_the_book_ends_the_running_chapters_kernels_and_keeps_no_failed_notebook(tmp_path, monkeypatch):
    """After a Ctrl-C the chapters already executing ran to their end (or the process's exit waited for their
    threads): a minute or more on the cpu study. Their kernels are killed now, their threads end at once, and
    a chapter stopped so is not a failure (no .failed notebook, no partial left). Kernels are stand-ins."""
    import os
    import signal
    import subprocess
    import sys
    import threading
    import time

    class Manager:  # a kernel manager as stop_running_chapters reads it
        def __init__(self, process):
            self.provisioner = type("Provisioner", (), {"process": process})()

    kernels, managers, sent = [], [], []

    def interrupt():
        sent.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGINT)

    def run_notebook(source, out, parameters, **kwargs):
        kernel = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        kernels.append(kernel)
        managers.append(Manager(kernel))
        book._RUNNING_KERNELS.add(managers[-1])
        Path(out).write_text("{}")  # papermill's partial output
        if len(kernels) == 1:
            threading.Timer(0.5, interrupt).start()
        kernel.wait()
        raise RuntimeError("Kernel died")  # nbclient's DeadKernelError, as papermill raises it

    monkeypatch.setattr(book, "run_notebook", run_notebook)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # a pytest-xdist worker ignores SIGINT
    try:
        with pytest.raises(KeyboardInterrupt):
            book.execute_book({}, chapters=["architectures", "accounting"], workers=2, out_dir=tmp_path, force=True)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert time.monotonic() - sent[0] < 5  # not the minute the stand-in kernels would have run
    assert len(kernels) == 2 and [k.wait(timeout=10) for k in kernels] == [-signal.SIGKILL] * 2
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no output, no partial, no failed notebook
    assert not book._STOPPING.is_set()  # the next book in this process (a notebook, a test) runs its chapters


def test_a_chapters_kernel_is_known_while_it_runs_and_ended_by_a_stop():
    """What the test above stands in for: the chapters' kernel manager registers each kernel it launches,
    and stop_running_chapters kills it (a real ipykernel, a few seconds)."""
    import asyncio
    import signal

    async def launch_and_stop():
        manager = book._chapter_kernel_manager()(kernel_name="python3")  # papermill's is asynchronous
        await manager.start_kernel(extra_arguments=["--IPKernelApp.log_level=ERROR"])
        try:
            process = manager.provisioner.process
            assert manager in book._RUNNING_KERNELS and process.poll() is None
            book.stop_running_chapters()
            assert process.wait(timeout=10) == -signal.SIGKILL
        finally:
            book._STOPPING.clear()
            await manager.shutdown_kernel(now=True)

    asyncio.run(launch_and_stop())


def test_an_interrupt_is_told_before_any_error_class_that_imports_the_training_stack(monkeypatch, capsys):
    """The except clauses for a held folder and the user's errors import torch and Lightning to name their
    classes; they came before Ctrl-C's, so the book stage (whose process had not loaded them) told an
    interrupt 14-39 s late, the chapters running on meanwhile. Ctrl-C and SIGTERM are matched first."""
    import argparse

    from linscale import cli
    from linscale.processes import Terminated

    def imports(*args):
        raise AssertionError("an except clause before the interrupt's imported the training stack")

    monkeypatch.setattr(cli, "_locked_errors", imports)
    monkeypatch.setattr(cli, "_user_errors", imports)
    for stop, status, words in ((KeyboardInterrupt, 130, "interrupted;"), (Terminated, 143, "interrupted by SIGTERM;")):
        def command(args, stop=stop):
            raise stop()

        assert cli._run_command(argparse.Namespace(func=command)) == status
        assert capsys.readouterr().err.startswith(f"linscale: {words} what finished is kept")


def test_ctrl_c_is_one_line_and_the_exit_status_of_an_interrupt(tmp_path):
    """A sweep stopped by Ctrl-C printed a KeyboardInterrupt traceback; now one line, status 130."""
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen([sys.executable, "-m", "linscale", "sweep", "--preset", "smoke", "--jobs", "1",
                             "--out", str(tmp_path / "runs")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=book.ROOT,
                            # as from a terminal: a pytest-xdist worker ignores SIGINT, and its children inherit that
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while not list((tmp_path / "runs" / "runs").glob("*/status.json")) and time.monotonic() < deadline:
        time.sleep(0.1)  # until the first run is under way
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err, err[-3000:]
    assert err.strip().splitlines()[-1] == ("linscale: interrupted; what finished is kept, and the same command "
                                            "goes on from there")


def test_a_reader_that_stops_reading_ends_the_command_without_a_traceback():
    """`linscale data --sample 300 | head -1` printed a BrokenPipeError traceback under head's line."""
    import subprocess
    import sys

    reader = subprocess.Popen([sys.executable, "-m", "linscale", "data", "--sample", "300"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert reader.stdout.readline() == b"{\n"
    reader.stdout.close()  # as head does once it has its line
    err = reader.stderr.read().decode()
    assert reader.wait(timeout=120) == 141 and err == "", err


def test_the_smoke_books_chapters_are_executed_with_the_parameters_the_study_gives_them(monkeypatch, tmp_path):
    """`linscale book --preset smoke` ran the architectures and efficiency chapters with the cpu study's
    measurement sizes, while `linscale study --preset smoke` had run them with SMOKE_PARAMETERS: the rebuilt
    book was not the study's. A chapter that declares none of them gets none (they would be refused)."""
    calls = []

    class Stop(Exception):
        pass

    def execute_book(parameters, chapters, **kwargs):
        calls.append((dict(parameters), list(chapters)))
        raise Stop

    monkeypatch.setattr(book, "execute_book", execute_book)
    for chapters in ([], ["training"], ["efficiency"]):
        with pytest.raises(Stop):
            main(["book", "--preset", "smoke", "--book-dir", str(tmp_path / "b"), "--no-html",
                  *[a for c in chapters for a in ("--chapter", c)]])
    everything, training, efficiency = (parameters for parameters, _ in calls)
    assert everything == book.SMOKE_PARAMETERS
    assert training == {"preset": "smoke"}
    assert efficiency == {"preset": "smoke", "seq_lens": [64, 128, 256], "tokens_per_batch": 512, "repeats": 2}


# ---- the mutation audit of linscale/cli.py (2026-12-07): what a dropped guard or a lost option passed unseen ----

def test_table7_is_refused_another_batch_and_the_accounting_takes_the_context_and_batch_asked(capsys):
    """`--table7` compares at Table 7's own context and batch, so --batch-size is refused as --seq-len is; without
    --table7 the table printed is the accounting at the context and batch asked."""
    from linscale.accounting import accounting_table

    err = one_line_error(["accounting", "--table7", "--batch-size", "8"], capsys)
    assert "--table7: compares at Table 7's context and batch (the preset's); drop --seq-len and --batch-size" in err
    printed = {}
    for extra, asked in (([], {}), (["--seq-len", "64"], {"seq_len": 64}), (["--batch-size", "3"], {"batch_size": 3})):
        assert main(["accounting", "--preset", "smoke", *extra]) == 0
        printed[len(printed)] = out = capsys.readouterr().out
        assert out == accounting_table("smoke", **asked).to_string(index=False) + "\n"
    assert len(set(printed.values())) == 3  # the context and the batch each change the FLOPs


def test_fit_passes_the_seed_the_grouping_and_the_compute_unit_to_the_fit(tmp_path, monkeypatch, capsys):
    """--seed, --by and --compute-unit reach the fit; approach3 fits L(N, D), in which C has no unit (its
    keyword arguments name columns: a compute unit there is no column). --out takes a .CSV name as a .csv."""
    import types

    import pandas as pd

    from linscale import laws

    calls = []

    def fit(runs, method, **kwargs):
        calls.append((method, kwargs))
        return types.SimpleNamespace(params=pd.DataFrame({"method": [method], "estimate": [1.0]}))

    monkeypatch.setattr(laws, "fit", fit)
    table = str(book.ROOT / "results" / "smoke" / "runs.csv")
    out = tmp_path / "PARAMS.CSV"
    assert main(["fit", "--table", table, "--method", "approach1", "--bootstrap", "5", "--seed", "7", "--by", "size",
                 "--compute-unit", "flops", "--out", str(out)]) == 0
    assert out.read_text() == "method,estimate\napproach1,1.0\n"
    assert main(["fit", "--table", table, "--method", "approach3", "--seed", "3"]) == 0
    (first, asked), (third, default) = calls
    assert first == "approach1" and (asked["seed"], asked["by"], asked["compute_unit"], asked["bootstrap_resamples"]) \
        == (7, "size", "flops", 5)
    assert third == "approach3" and (default["seed"], default["by"]) == (3, "arch") and "compute_unit" not in default


def test_the_eval_stage_alone_checks_the_runs_folder_it_writes(tmp_path, capsys, monkeypatch):
    """The evaluation writes its stores into the runs folder: `study --stages eval` with a read-only --runs-dir
    is one line before any stage; stages that do not write there (fits, book) do not check it."""
    from linscale import study

    locked = _read_only_folder() / "linscale"
    calls = []
    monkeypatch.setattr(study, "run_study", lambda options: calls.append(options) or 0)
    results = ["--results-dir", str(tmp_path / "results")]
    argv = ["study", "--preset", "smoke", "--runs-dir", str(locked / "x"), *results]
    assert f"--runs-dir: cannot write in {locked.parent} (" in one_line_error([*argv, "--stages", "eval"], capsys)
    assert not calls
    assert main([*argv, "--stages", "fits,book"]) == 0 and len(calls) == 1


def test_book_parameters_are_a_yaml_mapping_and_p_wins_over_y(monkeypatch, capsys):
    """-y takes a YAML mapping (a list was a TypeError where it was merged); -p NAME VALUE is applied after
    it, as papermill does."""
    calls = []
    monkeypatch.setattr(book, "execute_book", lambda parameters, chapters, **kw: calls.append(parameters))
    err = one_line_error(["book", "--chapter", "accounting", "--no-html", "-y", "[1, 2]"], capsys)
    assert "-y: expected a YAML mapping such as 'contexts: [256, 1024]', got '[1, 2]'" in err and not calls
    assert main(["book", "--chapter", "accounting", "--no-html", "-p", "figure_size", "70M",
                 "-y", "{figure_size: 1B, reference_preset: paper}"]) == 0
    assert calls == [{"figure_size": "70M", "reference_preset": "paper"}]


def test_book_refuses_an_unknown_chapter_and_fails_when_the_html_has_a_problem(tmp_path, monkeypatch, capsys):
    """A misspelled --chapter is one line before any kernel; a built book whose check finds a problem prints
    it and exits 1 (a CI job would have passed a book with a missing figure)."""
    monkeypatch.setattr(book, "execute_book", lambda *a, **k: pytest.fail("a chapter was executed"))
    err = one_line_error(["book", "--chapter", "acounting"], capsys)
    assert f"--chapter: unknown chapter 'acounting'; expected one of {', '.join(book.CHAPTERS)}" in err
    monkeypatch.setattr(book, "execute_book", lambda *a, **k: [])
    monkeypatch.setattr(book, "build_html", lambda *a, **k: tmp_path)
    for problems, status in ((["chapters/training.html: 0 figures"], 1), ([], 0)):
        monkeypatch.setattr(book, "check_html", lambda *a, problems=problems, **k: problems)
        assert main(["book", "--chapter", "accounting"]) == status
        out, err = capsys.readouterr()
        assert err == "".join(f"linscale book: {p}\n" for p in problems) and f"book: {tmp_path / 'index.html'}" in out


def test_an_eval_option_takes_only_the_suites_knobs(tmp_path, capsys):
    """--option checkpoint=... or task_cache=... would have replaced what the command itself passes to each
    task (its own --checkpoint and --task-cache); they are not knobs, and are refused before anything runs."""
    for pair in ("checkpoint=/elsewhere", "task_cache=/elsewhere"):
        err = one_line_error(["eval", str(tmp_path / "sweep"), "--option", pair], capsys)
        assert "--option: expected KEY=VALUE with KEY one of " in err and f"got {pair!r}" in err
        listed = err.split("one of ")[1].split(", got")[0].split(", ")
        assert "mqar_pairs" in listed and "checkpoint" not in listed and "task_cache" not in listed
    assert not (tmp_path / "sweep").exists()


def test_a_calibration_with_other_settings_has_a_store_of_its_own():
    """The store key has no knob settings nor context factor: each setting calibrates into its own file."""
    import re

    from linscale.cli import _calibration_store

    assert _calibration_store({}, 1.0) == "calibration.parquet"
    names = [_calibration_store({}, 2.0), _calibration_store({"mqar_pairs": "2"}, 1.0),
             _calibration_store({"mqar_pairs": "2"}, 2.0), _calibration_store({"mqar_pairs": "3"}, 1.0)]
    assert len(set(names)) == 4 and all(re.fullmatch(r"calibration-[0-9a-f]{10}\.parquet", n) for n in names)
    assert _calibration_store({"mqar_pairs": "2"}, 2.0) == names[2]  # the same setting: the same store


def test_train_names_what_is_missing_or_clashes_before_anything_is_written(tmp_path, capsys):
    from linscale.presets import load_preset

    out = tmp_path / "train"
    err = one_line_error(["train", "--run-dir", str(tmp_path / "run"), "--set", "train.lr=1e-3"], capsys)
    assert "--run-dir: give either --run-dir or --preset/--arch/--size/--set, not both" in err
    base = ["train", "--preset", "smoke", "--arch", "tnl", "--out", str(out)]
    assert "train: give --preset, --arch and --size (or --run-dir" in one_line_error(base, capsys)
    sizes = ", ".join(load_preset("smoke")["sizes"])
    assert f"--size: 's9' is not a size of preset smoke; expected one of {sizes}" in one_line_error(
        [*base, "--size", "s9"], capsys)
    assert not out.exists() and not (tmp_path / "run").exists()


def test_sweep_exit_status_says_whether_a_run_failed_or_a_law_is_not_identified(tmp_path, monkeypatch, capsys):
    """The exit status a script reads: 1 when a run of the sweep failed, or when --check-design finds a law
    the grid does not identify; 0 otherwise. The sweep and the design check are stand-ins."""
    import types

    import pandas as pd

    from linscale import design
    from linscale.train import sweep

    for failed, status in ((["tnl-s1"], 1), ([], 0)):
        monkeypatch.setattr(sweep, "run_sweep", lambda *a, failed=failed, **k: types.SimpleNamespace(failed=failed))
        assert main(["sweep", "--preset", "smoke", "--out", str(tmp_path / "runs")]) == status
    for identified, status in (([True, False], 1), ([True, True], 0)):
        check = types.SimpleNamespace(summary=lambda: pd.DataFrame({"law": ["L(C)"]}),
                                      verdicts=lambda identified=identified: pd.DataFrame(
                                          {"method": ["approach1", "approach3"], "identified": identified}))
        monkeypatch.setattr(design, "check_design", lambda *a, check=check, **k: check)
        monkeypatch.setattr(design, "holdout_expectation", lambda *a, **k: None)
        monkeypatch.setattr(design, "holdout_lines", lambda draws: ["(stand-in)"])
        assert main(["sweep", "--preset", "smoke", "--check-design"]) == status
    capsys.readouterr()


def test_data_options_that_need_prepare_and_prepare_without_a_preset_are_refused(capsys):
    assert "--preset/--set: only with --prepare" in one_line_error(["data", "--preset", "smoke"], capsys)
    assert "data --prepare: give --preset" in one_line_error(["data", "--prepare"], capsys)


def test_counts_and_factors_at_their_limits_are_taken():
    """The bounds of the counts are inclusive: --seq-len 65,536 and --sample 1,000 are the documented maxima,
    1 job, 2 resamples (0 for fit: none) and 0 outliers dropped the minima."""
    from linscale.cli import build_parser

    parse = build_parser().parse_args
    data = parse(["data", "--seq-len", "65536", "--sample", "1000", "--seed", "0"])
    assert (data.seq_len, data.sample, data.seed) == (65536, 1000, 0)
    study = parse(["study", "--jobs", "1", "--bootstrap", "2", "--eval-limit", "1"])
    assert (study.jobs, study.bootstrap, study.eval_limit) == (1, 2, 1)
    fit = parse(["fit", "--table", "t.csv", "--method", "approach1", "--bootstrap", "0", "--drop-highest-loss", "0"])
    assert (fit.bootstrap, fit.drop_highest_loss) == (0, 0)
    assert parse(["eval", "runs/x", "--context-factor", "0.5"]).context_factor == 0.5


def test_a_long_command_stops_on_sigterm_in_one_line_and_gives_the_callers_handler_back(tmp_path, monkeypatch,
                                                                                          capsys):
    """sweep, study and eval run for long in this process: SIGTERM (a scheduler's stop) is their one-line stop,
    exit 143. main() called by a process that goes on (a notebook, a test) gets its own handler back."""
    import os
    import signal
    import time

    from linscale import study

    def stopped(options):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(2)  # the handler raises first
        return 0

    monkeypatch.setattr(study, "run_study", stopped)
    ours = []

    def handler(*args):  # the caller's (here: not the test process's end)
        ours.append(args)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        status = main(["study", "--preset", "smoke", "--runs-dir", str(tmp_path / "runs"), "--results-dir",
                       str(tmp_path / "results")])
        after = signal.getsignal(signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert status == 143 and not ours
    assert capsys.readouterr().err == ("linscale: interrupted by SIGTERM; what finished is kept, and the same command "
                                       "goes on from there\n")
    assert after is handler


def test_compare_labels_each_study_as_asked(monkeypatch, capsys):
    """--label-a and --label-b name A and B in the report; each defaults to its own path. The comparison is a
    stand-in."""
    import types

    from linscale import compare

    seen = []
    result = types.SimpleNamespace(exit_status=1, format_text=lambda: "the report")
    monkeypatch.setattr(compare, "compare_studies", lambda a, b, labels: seen.append(labels) or result)
    assert main(["compare", "results/a", "results/b", "--label-a", "published"]) == 1
    assert main(["compare", "results/a", "results/b", "--label-b", "re-run"]) == 1
    assert seen == [("published", "results/b"), ("results/a", "re-run")]
    assert capsys.readouterr().out == "the report\n" * 2


def test_a_calibration_of_no_task_is_refused_before_the_roles_are_evaluated(tmp_path, monkeypatch, capsys):
    """`eval --calibrate --suites '' --roles` evaluated every final checkpoint's roles, wrote them, and then
    failed on the report of tasks it had not evaluated (an UnboundLocalError traceback). The roles'
    evaluation is a stand-in."""
    from linscale.eval import roles, runner

    monkeypatch.setattr(runner, "final_checkpoints", lambda sweep_dir: [tmp_path / "export"])
    monkeypatch.setattr(roles, "evaluate_roles", lambda *a, **k: pytest.fail("the roles were evaluated"))
    err = one_line_error(["eval", str(tmp_path), "--calibrate", "--suites", "", "--roles"], capsys)
    assert "--calibrate: reports on the tasks of --suites and --tasks; --suites is empty, expected a suite" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == []
