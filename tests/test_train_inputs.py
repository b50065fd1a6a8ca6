"""Everything checked before anything is written: bad data settings are one line naming the key, a failed
start leaves nothing that blocks the corrected command, and the data keys are documented in --help."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from linscale.cli import main
from linscale.config import ConfigError

TINY_TEXT = Path(__file__).parent / "data" / "tiny_text"  # train.txt, valid.txt, test.txt (a few KB)


def test_bad_data_settings_are_one_line_naming_the_key(tmp_path, monkeypatch, capsys):
    from linscale.cli import main

    monkeypatch.setenv("LINSCALE_CACHE", str(tmp_path / "cache"))
    base = ["train", "--preset", "text", "--arch", "tnl", "--size", "s1", "--out", str(tmp_path / "out"),
            "--set", f"data.path={TINY_TEXT}"]
    folder_tok = tmp_path / "tokfolder"
    folder_tok.mkdir()
    not_tok = tmp_path / "config.json"
    not_tok.write_text(json.dumps({"vocab_size": 300, "merges": []}))
    for override, expected in [
        ("data.vocab_size=abc", "data.vocab_size: expected an integer >= 258, got 'abc'"),
        ("data.val_fraction=2", "data.val_fraction: expected a number in (0, 1), got 2"),
        (f"data.tokenizer={folder_tok}", f"data.tokenizer: {folder_tok} is a folder; expected a tokenizer.json file"),
        (f"data.tokenizer={not_tok}", f"data.tokenizer: {not_tok} is JSON but not a Hugging Face tokenizers file"),
        ("data.source=txt", "data.source: 'txt' is not one of synthetic, text"),
        ("data.path=corpora/missing", "no local file or folder 'corpora/missing'"),
        ("data.path=./missing.txt", "data.path: no file or folder ./missing.txt"),
    ]:
        assert main([*base, "--set", override]) == 2, override
        err = capsys.readouterr().err.strip()
        assert expected in err and len(err.splitlines()) == 1, (override, err)
    assert not (tmp_path / "out").exists()  # nothing written by a start that failed its checks



def test_data_keys_help_lists_every_key():
    from linscale.cli import build_parser
    from linscale.data.keys import TEXT_KEYS, help_table

    table = help_table()
    assert all(f"data.{k.name} " in table for k in TEXT_KEYS) and "data.world_seed" in table
    train_help = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    assert all(f"data.{k.name} " in train_help for k in TEXT_KEYS)


def test_building_the_command_line_imports_neither_lightning_nor_torch():
    """Every `linscale` command builds the whole parser first: the train command's data-keys epilog is
    computed only when its help is printed (it imports linscale.data and Lightning: about 10 s)."""
    import subprocess
    import sys

    code = ("import sys; from linscale.cli import build_parser; build_parser().parse_args(['accounting']); "
            "print(sorted(m for m in ('lightning', 'torch', 'linscale.data') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "[]", (out.stdout, out.stderr)


def test_after_a_start_with_a_wrong_path_the_corrected_command_trains_in_the_same_folder(tmp_path, monkeypatch,
                                                                                          capsys):
    monkeypatch.setenv("LINSCALE_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "out"
    command = ["train", "--preset", "text", "--arch", "tnl", "--size", "s1", "--out", str(out), "--no-progress",
               "--threads", "1", "--set", "data.vocab_size=300", "--set", "train.seq_len=16", "--set",
               "model.max_seq_len=16", "--set", "train.tokens=2048", "--set", "train.warmup_steps=2",  # of 8 steps
               "--set", "data.val_tokens=32"]
    assert main([*command, "--set", f"data.path={TINY_TEXT / 'nope'}"]) == 2
    err = capsys.readouterr().err.strip()
    assert f"data.path: no file or folder {TINY_TEXT / 'nope'}" in err and len(err.splitlines()) == 1
    assert not out.exists()
    assert main([*command, "--set", f"data.path={TINY_TEXT}"]) == 0
    assert json.loads((out / "runs" / "tnl-s1" / "status.json").read_text())["state"] == "done"


def test_a_sweep_checks_the_data_once_before_launching_any_run(tmp_path, monkeypatch, capsys):
    import linscale.train.sweep as sweep

    monkeypatch.setenv("LINSCALE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(sweep, "WorkerPool", None)  # a run launched would fail loudly here
    out = tmp_path / "out"
    assert main(["sweep", "--preset", "text", "--out", str(out), "--set", "data.path=corpora/wiki-missing/"]) == 2
    err = capsys.readouterr().err.strip()
    assert "data.path: no file or folder corpora/wiki-missing/" in err and len(err.splitlines()) == 1, err
    assert not out.exists()
    # the data itself (not only its path) is prepared and checked once: a corpus too short for a row
    (tmp_path / "short.txt").write_text("a few words")
    assert main(["sweep", "--preset", "text", "--out", str(out), "--set", f"data.path={tmp_path / 'short.txt'}",
                 "--set", "data.vocab_size=300"]) == 2
    assert "too short for one training and one validation sequence" in capsys.readouterr().err
    assert not out.exists()


def test_a_model_vocabulary_below_the_datas_is_refused_before_writing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LINSCALE_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "out"
    assert main(["train", "--preset", "text", "--arch", "tnl", "--size", "s1", "--out", str(out), "--set",
                 f"data.path={TINY_TEXT}", "--set", "data.vocab_size=300", "--set", "model.vocab_size=100"]) == 2
    assert "model.vocab_size: 100 is smaller than the data's vocabulary 300" in capsys.readouterr().err
    assert not out.exists()


def test_fsdp_on_a_cpu_counts_the_sharded_state_once(monkeypatch):
    """FSDP (on a CPU only as LINSCALE_FSDP_ON_CPU's test path) splits the parameters, gradients and Adam's
    state over its processes: the floor counts them once, and each process's activations and validation set
    in every process. DDP keeps a full copy per process, so the same run there needs more."""
    import linscale.train.run as run
    from linscale.train.run import STATE_PART, check_memory, memory_floor, plan_runs, run_settings
    from linscale.train.settings import TrainSettings

    _, specs = plan_runs("smoke", ["archs=[llama]"])
    spec = specs[-1]
    settings = {name: TrainSettings.from_dict(run_settings(spec["train"], {"accelerator": "cpu", "devices": 4,
                                                                          "strategy": name}))
                for name in ("ddp", "fsdp")}
    floor = memory_floor(spec, settings["ddp"])
    assert floor == memory_floor(spec, settings["fsdp"])
    rest = sum(floor.values()) - floor[STATE_PART]
    sharded = floor[STATE_PART] + 4 * rest
    assert sharded < 4 * sum(floor.values())
    monkeypatch.setattr(run, "physical_memory", lambda: sharded)  # room for FSDP's floor, not DDP's
    check_memory(spec, settings["fsdp"])
    with pytest.raises(ConfigError, match=r"GiB of memory \(.*in each of 4 processes\)"):
        check_memory(spec, settings["ddp"])
    monkeypatch.setattr(run, "physical_memory", lambda: sharded - 1)
    fsdp = r"; the parameters, gradients and Adam's state split over 4 processes \(FSDP\), the rest in each\)"
    with pytest.raises(ConfigError, match=fsdp):
        check_memory(spec, settings["fsdp"])


def test_a_run_that_cannot_fit_in_this_machines_memory_is_refused_before_anything_is_built(tmp_path, monkeypatch,
                                                                                           capsys):
    """A value off by powers of ten passed every check: n_layer 2e6 or vocab_size 1e9 ended in the
    kernel's out-of-memory kill, val_tokens 1e12 in a validation set that was never done. The floor is
    what a run certainly holds (parameters with gradients and Adam's state, each block's input for one
    micro-batch, a synthetic validation set), so a run that fits is never refused."""
    import linscale.train.run as run
    import linscale.train.sweep as sweep
    from linscale.train.run import memory_floor, plan_runs, run_settings
    from linscale.train.settings import TrainSettings

    assert run.physical_memory() > 2 ** 30  # this machine's, as the system says
    read_text = Path.read_text  # a container's cgroup limit (v2's memory.max) where it is less

    def limited(self, *args, **kwargs):
        return "1073741824\n" if self.as_posix() == "/sys/fs/cgroup/memory.max" else read_text(self, *args, **kwargs)

    with monkeypatch.context() as patched:
        patched.setattr(Path, "read_text", limited)
        assert run.physical_memory() == 2 ** 30
    monkeypatch.setenv("LINSCALE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(sweep, "WorkerPool", None)  # a run launched would fail loudly here
    monkeypatch.setattr(run, "physical_memory", lambda: 24 * 2 ** 30)  # the same verdicts on a bigger machine
    out = tmp_path / "out"
    for override, what in (("sizes.s1.n_layer=2000000", "parameters, gradients and Adam's state"),
                           ("model.vocab_size=1000000000", "parameters, gradients and Adam's state"),
                           ("data.val_tokens=1000000000000", "the validation set 3,725.3 GiB")):
        assert main(["sweep", "--preset", "smoke", "--out", str(out), "--accelerator", "cpu", "--set", override]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "-s1: needs at least " in err and what in err, err
        assert "more than the 24.0 GiB this process may use here; expected a smaller model" in err, err
        assert " 0.0 GiB" not in err, err  # parts that round to nothing are left out
    assert not out.exists()
    _, specs = plan_runs("smoke", ["archs=[llama]"])
    spec = max(specs, key=lambda s: s["model"]["n_layer"])  # a floor per layer: more than one
    floor = memory_floor(spec, TrainSettings.from_dict(run_settings(spec["train"], None)))
    from linscale.config import ModelConfig
    from linscale.models import build_model
    from linscale.presets import data_vocab_size

    model = build_model(ModelConfig.from_dict({**spec["model"], "vocab_size": data_vocab_size({"data": spec["data"]})}))
    counted = sum(p.numel() for p in model.parameters())  # the floor counts all but the norms' gains
    assert 0.95 * counted <= floor["parameters, gradients and Adam's state"] / 16 < counted
    train = TrainSettings.from_dict(spec["train"])
    micro, _ = train.accumulation(1)
    config = model.config
    assert floor["one micro-batch's block inputs"] == 4 * config.n_layer * micro * train.seq_len * config.d_model
    assert floor["the validation set"] == 4 * spec["data"]["val_tokens"]


def test_presets_give_models_the_tokenizers_vocabulary():
    from linscale.presets import load_preset, model_configs
    from linscale.train.run import plan_runs

    for name, vocab in (("paper", 100280), ("text", 2048)):
        preset, specs = plan_runs(name)
        assert all("vocab_size" not in s["model"] for s in specs), name  # taken from the tokenizer
        assert preset["data"]["vocab_size"] == vocab
        assert {c.vocab_size for c in model_configs(load_preset(name))} == {vocab}  # what accounting assumes
    # the sizes of the first cpu grid (14K..553K): with 2,048 embedding rows, the redesigned cpu grid's
    # widths of 8..72 would be mostly embedding
    text = plan_runs("text")[1]
    first = plan_runs(str(Path(__file__).parent / "data" / "cpu_first_grid.yaml"))[1]
    assert [s["model"] for s in text] == [s["model"] for s in first]


def test_the_readme_lists_the_data_keys_as_the_code_checks_them():
    from linscale.data.keys import markdown_table

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert markdown_table() in readme  # the table in "Real text", generated from linscale.data.keys


def test_data_can_be_prepared_ahead_of_training(tmp_path, monkeypatch, capsys):
    """`linscale data --prepare` trains the tokenizer and tokenizes the text into the cache, so the runs of a
    cluster sweep find it ready; a run then loads both instead of building them."""
    monkeypatch.setenv("LINSCALE_CACHE", str(tmp_path / "cache"))
    overrides = ["--set", f"data.path={TINY_TEXT}", "--set", "data.vocab_size=300"]
    assert main(["data", "--prepare", "--preset", "text", *overrides]) == 0
    said = capsys.readouterr().out
    assert "tokenizer: trained" in said and "tokenized" in said and "ready (300 tokens" in said
    assert len(list((tmp_path / "cache" / "shards").glob("*/train.bin"))) == 1
    assert main(["data", "--prepare", "--preset", "text", *overrides]) == 0
    said = capsys.readouterr().out
    assert "trained earlier" in said and "tokenized" not in said  # loaded from the cache
    assert "data.vocab_size asks for" not in said
    # a corpus too small for the vocabulary asked for says so (the paper preset's 100,280 on a few MB gave
    # 28,712 without a word)
    assert main(["data", "--prepare", "--preset", "text", "--set", f"data.path={TINY_TEXT}",
                 "--set", "data.vocab_size=50000"]) == 0
    assert "data.vocab_size asks for 50,000, but the sample had no more pairs to merge" in capsys.readouterr().out


def test_the_paper_presets_data_is_prepared_on_a_machine_without_a_gpu(tmp_path, monkeypatch, capsys):
    """The README prepares the paper preset's data "ahead, on CPUs, so no GPU waits for it"; the command
    refused, as the runs' train.accelerator gpu was checked against the machine that only prepares."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("LINSCALE_CACHE", str(tmp_path / "cache"))
    assert main(["data", "--prepare", "--preset", "paper", "--set", f"data.path={TINY_TEXT}",
                 "--set", "data.vocab_size=300", "--set", "train.seq_len=32"]) == 0
    assert "data of preset paper: ready (300 tokens" in capsys.readouterr().out
