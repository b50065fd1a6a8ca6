"""The suites end to end on a stub world: the real lm_eval command line offline, a local copy of a real
task's format, `linscale eval` on a sweep (resumable, one-line errors). test_eval_world.py runs the
suites on the real synthetic language."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import eval_fixtures as fx
from linscale.eval import TASKS_DIR
from linscale.eval.runner import evaluate_sweep, read_store

OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_EVALUATE_OFFLINE": "1"}


def test_real_lm_eval_cli_runs_every_suite_offline(smoke_sweep, tmp_path):
    """`lm_eval --model linscale` on a smoke-preset checkpoint: the items come from its own world."""
    (ckpt,) = sorted((smoke_sweep[0] / "runs" / "tnl-s1" / "export").glob("step=*"))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "lm_eval", "--model", "linscale",
           "--model_args", f"checkpoint={ckpt},task_cache={tmp_path / 'cache'}", "--batch_size", "8",
           "--tasks", "linscale_knowledge,linscale_linguistic,linscale_retrieval",
           "--include_path", str(TASKS_DIR), "--device", "cpu", "--output_path", str(out)]
    env = {**os.environ, **OFFLINE, "HF_HOME": str(tmp_path / "hf"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (results_file,) = out.rglob("results_*.json")
    results = json.loads(results_file.read_text())["results"]
    assert 0 <= results["linscale_knowledge"]["acc,none"] <= 1
    assert results["linscale_perplexity"]["bits_per_byte,none"] > 0
    assert 0 <= results["linscale_cloze"]["acc,none"] <= 1
    for task in ("linscale_niah_easy", "linscale_niah_standard"):
        assert {"acc,none", "weighted_acc,none", "niah_score,none"} <= set(results[task])
    assert 0 <= results["linscale_mqar"]["acc,none"] <= 1


def test_linscale_lm_eval_answers_a_users_mistake_in_one_line(tmp_path):
    """`linscale lm-eval` showed lm-eval's traceback for a missing checkpoint, an unknown model option and a
    misspelled task; `linscale eval` answered each in one line (in a process of its own, as a user runs
    it: lm-eval's log handlers keep the stream they were first given); and a hole in a task's YAML."""
    ckpt = fx.export(tmp_path / "ck", fx.tiny_model("llama"))
    cases = [(f"checkpoint={tmp_path / 'missing'}", "linscale_knowledge", "checkpoint folder does not exist", []),
             (f"pretrained={tmp_path}", "linscale_knowledge", "model_args: unknown option(s) pretrained", []),
             (f"checkpoint={tmp_path}", "linscale_knowlege", "--tasks: Tasks not found: linscale_knowlege", []),
             # lm_eval always passes its --batch_size (default 1): one in model_args was a TypeError
             (f"checkpoint={ckpt},batch_size=4", "linscale_cloze", "model_args: batch_size=4 is also given by "
              "lm_eval's --batch_size (1; ", []),
             (f"checkpoint={ckpt}", "linscale_cloze", "a task has no documents to evaluate (", ["--limit", "0"]),
             # a multiple_choice task of one's own without doc_to_choice: lm-eval's bare TypeError
             (f"checkpoint={ckpt}", "nochoice", "tasks: nochoice: lm-eval could not make a request from the task's "
              "YAML (TypeError in lm-eval's Task.doc_to_choice); expected doc_to_choice: a list, a field of the data "
              "or a template giving a list",
              ["--include_path", str(tmp_path / "mine")])]
    shutil.copytree(Path(__file__).parent / "data" / "piqa_local", tmp_path / "mine")
    text = (tmp_path / "mine" / "piqa_local.yaml").read_text()
    (tmp_path / "mine" / "piqa_local.yaml").write_text("\n".join(
        line for line in text.replace("task: piqa_local", "task: nochoice").splitlines()
        if not line.startswith("doc_to_choice: ")))
    env = {**os.environ, **OFFLINE, "HF_HOME": str(tmp_path / "hf"), "OMP_NUM_THREADS": "1"}
    for model_args, task, expected, extra in cases:
        proc = subprocess.run([sys.executable, "-m", "linscale", "lm-eval", "--model", "linscale", "--model_args",
                               model_args, "--tasks", task, "--include_path", str(TASKS_DIR), "--device", "cpu",
                               *extra], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
        err = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and err[-1].startswith("linscale lm-eval: error: ") and expected in err[-1], err
        assert "Traceback" not in proc.stderr, proc.stderr[-2000:]


def test_real_task_format_runs_offline(tmp_path):
    """A local copy of PIQA's format (original field names, prompt and metrics) through the adapter."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    from linscale.eval import LinscaleLM

    lm = LinscaleLM(model=fx.tiny_model("cosformer2"), tokenizer=fx.tokenizer(), meta={"seq_len": fx.SEQ_LEN})
    manager = TaskManager(include_path=str(Path(__file__).parent / "data" / "piqa_local"), include_defaults=False)
    out = lm_eval.simple_evaluate(model=lm, tasks=["piqa_local"], task_manager=manager, log_samples=True)
    assert out["n-samples"]["piqa_local"]["effective"] == 4
    first = next(s for s in out["samples"]["piqa_local"] if s["doc"]["goal"] == "s0 r0")
    assert [tuple(a) for a in first["arguments"]] == [("Question: s0 r0\nAnswer:", " o1 ."),
                                                     ("Question: s0 r0\nAnswer:", " o2 .")]
    assert 0 <= out["results"]["piqa_local"]["acc_norm,none"] <= 1


def test_bad_input_from_the_command_line(tmp_path, capsys):
    """`linscale eval` answers a missing checkpoint, a corrupt one and an unknown task in one line each."""
    from linscale.cli import main

    ckpt = fx.export(tmp_path / "runs" / "r" / "export" / "step=1", fx.tiny_model("llama"))
    cases = [(["--checkpoint", str(tmp_path / "missing")], "missing"),
             (["--tasks", "nosuchtask"], "unknown task name(s) nosuchtask"),
             (["--suites", "knowlege"], "unknown suite 'knowlege'")]
    for extra, expected in cases:
        assert main(["eval", str(tmp_path), *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert expected in err and len(err.splitlines()) == 1, err
    text = fx.tiny_model("llama")
    from linscale.models.checkpoint import save_checkpoint
    save_checkpoint(text, tmp_path / "text", {"run_id": "t", "step": 1, "data": {"source": "text", "path": "x"},
                                              "seq_len": fx.SEQ_LEN}, tokenizer=fx.tokenizer())
    assert main(["eval", str(tmp_path), "--suites", "knowledge", "--checkpoint", str(tmp_path / "text")]) == 2
    err = capsys.readouterr().err.strip()
    assert "synthetic language" in err and len(err.splitlines()) == 1, err
    (ckpt / "model.safetensors").write_bytes(b"truncated")
    assert main(["eval", str(tmp_path), "--suites", "knowledge"]) == 2
    err = capsys.readouterr().err.strip()
    assert "model.safetensors" in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "eval" / "results.parquet").exists()


def sweep(tmp_path, models):
    ckpts = []
    for run_id, step, model in models:
        ckpts.append(fx.export(tmp_path / "sweep" / "runs" / run_id / "export" / f"step={step}", model,
                               step=step, tokens=1000 * step, run_id=run_id))
    for c in ckpts:
        fx.fill_cache(c, tmp_path / "sweep" / "eval" / "tasks")
    return tmp_path / "sweep", ckpts


def test_linscale_eval_is_resumable_without_duplicates(tmp_path):
    sweep_dir, ckpts = sweep(tmp_path, [("a", 10, fx.tiny_model("llama")), ("a", 20, fx.tiny_model("llama", 1)),
                                        ("b", 10, fx.tiny_model("hgrn2"))])
    messages = []
    first = evaluate_sweep(sweep_dir, ["knowledge"], progress=messages.append)
    assert len(first) and not first.duplicated(["run_id", "step", "task", "metric"]).any()
    assert set(first.run_id) == {"a", "b"} and set(first.step) == {10, 20}
    assert {"tokens", "flops", "pf_days", "value"} <= set(first.columns)
    row = first[(first.run_id == "a") & (first.step == 20) & (first.task == "linscale_knowledge") & (first.metric == "acc")]
    assert len(row) == 1 and row.tokens.item() == 20000
    assert 0 < row.stderr.item() < 0.2  # analytic standard error of the mean accuracy
    again = evaluate_sweep(sweep_dir, ["knowledge"], progress=messages.append)
    assert sum("already evaluated" in m for m in messages) == 3
    pd.testing.assert_frame_equal(read_store(sweep_dir / "eval" / "results.parquet"), first)
    assert len(again) == len(first)
    written = json.loads((sweep_dir / "eval" / "json" / "a" / "step=20" / "knowledge.json").read_text())
    assert "linscale_knowledge" in written["results"]
    assert "samples" not in written  # the per-item samples go to items.parquet, not into every suite's JSON
    # a suite's JSON deleted (its items and cells may be gone with it): that suite is evaluated again, alone
    (sweep_dir / "eval" / "json" / "a" / "step=20" / "knowledge.json").unlink()
    messages.clear()
    third = evaluate_sweep(sweep_dir, ["knowledge"], progress=messages.append)
    assert sum("already evaluated" in m for m in messages) == 2 and any("a step 20 knowledge: " in m and
                                                                        "already" not in m for m in messages)
    assert (sweep_dir / "eval" / "json" / "a" / "step=20" / "knowledge.json").is_file() and len(third) == len(first)


def test_a_suite_whose_items_are_gone_is_evaluated_again(tmp_path):
    """The paired tests read items.parquet and the heat maps niah_cells.parquet: a deleted companion store,
    with the main store and the JSON still there, left every checkpoint "already evaluated" without them."""
    from linscale.eval.runner import _lost_companions

    sweep_dir, _ = sweep(tmp_path, [("a", 10, fx.tiny_model("llama")), ("b", 10, fx.tiny_model("hgrn2"))])
    items_file = sweep_dir / "eval" / "items.parquet"
    evaluate_sweep(sweep_dir, ["knowledge"], progress=lambda m: None)
    items = read_store(items_file, ["run_id", "step", "task", "doc_id"])
    assert set(items.run_id) == {"a", "b"}
    items_file.unlink()
    messages = []
    evaluate_sweep(sweep_dir, ["knowledge"], progress=messages.append)
    assert not any("already evaluated" in m for m in messages), messages
    pd.testing.assert_frame_equal(read_store(items_file, ["run_id", "step", "task", "doc_id"]), items)
    # one checkpoint's items lost: that one alone
    items[items.run_id == "a"].to_parquet(items_file, index=False)
    messages.clear()
    evaluate_sweep(sweep_dir, ["knowledge"], progress=messages.append)
    assert [m for m in messages if "already evaluated" in m] == ["[1/2] a step 10 knowledge: already evaluated"]
    assert set(read_store(items_file, ["run_id", "step", "task", "doc_id"]).run_id) == {"a", "b"}
    # NIAH tasks need their cells too; a group's accuracy (no items of its own) needs nothing
    done = pd.DataFrame({"run_id": ["a"] * 3, "step": [10] * 3, "metric": ["acc"] * 3, "n_samples": [4, 4, None],
                         "task": ["linscale_niah_easy", "linscale_cloze", "linscale_knowledge"]})
    itemized = {("a", 10, "linscale_niah_easy"), ("a", 10, "linscale_cloze")}
    assert _lost_companions(done, itemized, celled=set()) == {"linscale_niah_easy"}
    assert _lost_companions(done, itemized, celled={("a", 10, "linscale_niah_easy")}) == set()
    niah = {("a", 10, "linscale_niah_easy")}
    assert _lost_companions(done, niah, niah) == {"linscale_cloze"}


def test_a_users_group_whose_subtasks_items_are_gone_is_evaluated_again(tmp_path):
    """A group of one's own (--tasks my_group) stores its items under its subtasks' names: where they were
    gone the group, asked for by its own name, was "already evaluated"."""
    import shutil

    mine = tmp_path / "mine"
    shutil.copytree(Path(__file__).parent / "data" / "piqa_local", mine)
    (mine / "my_group.yaml").write_text("group: my_group\ntask:\n  - piqa_local\naggregate_metric_list:\n"
                                        "  - metric: acc\n    aggregation: mean\n    weight_by_size: true\n"
                                        "metadata:\n  version: 1.0\n")
    sweep_dir, _ = sweep(tmp_path, [("a", 10, fx.tiny_model("llama"))])
    items_file = sweep_dir / "eval" / "items.parquet"
    ask = dict(tasks=["my_group"], include_path=str(mine))
    evaluate_sweep(sweep_dir, [], progress=lambda m: None, **ask)
    assert set(read_store(items_file, ["run_id", "step", "task", "doc_id"]).task) == {"piqa_local"}
    messages = []
    evaluate_sweep(sweep_dir, [], progress=messages.append, **ask)
    assert messages == ["[1/1] a step 10 tasks: already evaluated"]
    items_file.unlink()
    messages.clear()
    evaluate_sweep(sweep_dir, [], progress=messages.append, **ask)
    assert len(messages) == 1 and "already evaluated" not in messages[0], messages
    assert set(read_store(items_file, ["run_id", "step", "task", "doc_id"]).task) == {"piqa_local"}


def test_another_sweeps_run_of_the_same_id_and_step_is_not_taken_for_one_evaluated(tmp_path):
    """Every preset names its runs <arch>-<size> and the store is keyed by run id and step: another sweep's
    export of the same id and step was "already evaluated" into a shared store, with the other run's rows."""
    import shutil

    from linscale.config import ConfigError

    sweep_dir, (ckpt,) = sweep(tmp_path, [("a", 10, fx.tiny_model("llama"))])
    store = sweep_dir / "eval" / "results.parquet"
    evaluate_sweep(sweep_dir, ["knowledge"], progress=lambda m: None)
    other = fx.export(tmp_path / "other" / "runs" / "a" / "export" / "step=10", fx.tiny_model("llama", 1),
                      step=10, tokens=30_000, run_id="a")
    fx.fill_cache(other, sweep_dir / "eval" / "tasks")
    for stored_checkpoint_kept in (True, False):
        with pytest.raises(ConfigError, match=f"{other}: run a step 10 is already in {store}, evaluated from "
                                              f"another checkpoint .*; evaluate this one into a store of its own"):
            evaluate_sweep(sweep_dir, ["knowledge"], checkpoints=[other], progress=lambda m: None)
        if stored_checkpoint_kept:  # then the same, judged by the stored rows alone
            shutil.move(ckpt, tmp_path / "moved")
    copy = tmp_path / "copy" / "step=10"
    shutil.copytree(tmp_path / "moved", copy)  # the same run, its folder moved: evaluated already
    messages = []
    evaluate_sweep(sweep_dir, ["knowledge"], checkpoints=[copy], progress=messages.append)
    assert messages == ["[1/1] a step 10 knowledge: already evaluated"]


@pytest.mark.slow  # two spawned evaluation processes import torch and lm-eval (a few seconds)
def test_checkpoints_evaluated_side_by_side_give_the_store_one_process_gives(tmp_path):
    from linscale.eval.runner import EvalPool

    sweep_dir, _ = sweep(tmp_path, [("a", 10, fx.tiny_model("llama")), ("a", 20, fx.tiny_model("tnl", 1)),
                                    ("b", 10, fx.tiny_model("hgrn2"))])
    suites = ["linguistic", "retrieval"]  # a bootstrapped perplexity and the NIAH cells
    alone = evaluate_sweep(sweep_dir, suites, out=tmp_path / "alone" / "results.parquet", progress=lambda m: None)
    messages = []
    with EvalPool(jobs=2, threads=1) as pool:
        pooled = evaluate_sweep(sweep_dir, suites, out=tmp_path / "pooled" / "results.parquet",
                                progress=messages.append, pool=pool)
        again = evaluate_sweep(sweep_dir, suites, out=tmp_path / "pooled" / "results.parquet",
                               progress=messages.append, pool=pool)  # the same pool serves another call
    assert len(alone) == len(pooled) == len(again) > 0
    pd.testing.assert_frame_equal(alone.drop(columns="eval_time_s"), pooled.drop(columns="eval_time_s"), check_exact=True)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "alone" / "niah_cells.parquet"),
                                  pd.read_parquet(tmp_path / "pooled" / "niah_cells.parquet"), check_exact=True)
    # written in checkpoint order as the pool finishes them, then skipped when asked again
    done = [m for m in messages if not m.endswith("already evaluated")]
    assert [m.split(":")[0] for m in done] == [f"[{n}/3] {r} step {s} {suite}" for n, (r, s) in
                                               enumerate([("a", 10), ("a", 20), ("b", 10)], 1) for suite in suites]
    assert sum(m.endswith("already evaluated") for m in messages) == 6


def test_an_error_in_the_caller_ends_the_evaluation_processes_at_once(monkeypatch):
    """A study that fails (or is interrupted) while its EvalPool evaluates must not leave the pool's
    processes behind, nor wait for them to finish the checkpoints they hold, nor print the executor's
    own traceback (an InvalidStateError for each queued task cancelled with Future.cancel on 3.11)."""
    import threading
    import time

    from linscale.eval.runner import EvalPool

    thread_errors = []
    monkeypatch.setattr(threading, "excepthook", thread_errors.append)
    start = time.monotonic()
    with pytest.raises(RuntimeError, match="the caller failed"):
        with EvalPool(jobs=2) as pool:
            for _ in range(12):  # two started, three in the workers' queue, seven held back by the executor
                pool.submit(time.sleep, 120)
            processes = list(pool._processes.values())
            manager = pool._executor._executor_manager_thread
            time.sleep(1)  # the executor's thread has taken up the queue (the old race showed only then)
            raise RuntimeError("the caller failed")
    manager.join(10)
    assert not manager.is_alive() and thread_errors == []
    assert len(processes) == 2
    # the executor's own thread reaps a dead worker too; between its waitpid and its note of the exit
    # code, is_alive() still says True (CI saw it once), so the test waits that moment out
    deadline = time.monotonic() + 10
    while any(process.is_alive() for process in processes) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(process.is_alive() for process in processes)
    assert time.monotonic() - start < 90  # not after the 120 s of the started tasks (spawning takes seconds)


def test_a_task_queued_before_cancel_pending_never_runs_and_the_pool_goes_on(tmp_path):
    """cancel_pending (evaluate_sweep's error path) drops the tasks no worker has started; the pool stays
    open for the caller's next call."""
    import time

    from linscale.eval.runner import EvalPool

    with EvalPool(jobs=2) as pool:
        busy = [pool.submit(time.sleep, 1.5) for _ in range(2)]  # both workers busy
        queued = [pool.submit(Path.mkdir, tmp_path / f"queued{i}") for i in range(3)]
        pool.cancel_pending()
        after = pool.submit(Path.mkdir, tmp_path / "after")
        assert [f.result(timeout=60) for f in busy + queued + [after]] == [None] * 6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["after"]


def test_ctrl_c_during_linscale_eval_is_one_line(smoke_sweep, tmp_path):
    """Ctrl-C (to the terminal's whole process group) while two evaluation processes work: the one line
    and status 130, with neither the executor's traceback nor the resource tracker's warning of leaked
    semaphores (tqdm's lock in the workers) beside it."""
    import signal
    import time

    proc = subprocess.Popen([sys.executable, "-m", "linscale", "eval", str(smoke_sweep[0]), "--jobs", "2",
                             "--out", str(tmp_path / "eval" / "results.parquet")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                            env={**os.environ, **OFFLINE, "HF_HOME": str(tmp_path / "hf")},
                            start_new_session=True,  # a group of its own, as a terminal's foreground job
                            # as from a terminal: a pytest-xdist worker ignores SIGINT, and its children inherit that
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    first = proc.stdout.readline()  # "[1/8] ...": the first checkpoint written, the next ones under way
    assert first.startswith("[1/"), first  # no lm-eval chatter before it ("bootstrapping for stddev: ...")
    time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:  # hung (the executor's thread waiting on a half-written result): not left behind
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err and "leaked" not in err, err[-3000:]
    # the one line alone: nor lm-eval's advice to pass --metadata, its progress bars
    assert err.strip().splitlines() == [
        "linscale: interrupted; what finished is kept, and the same command goes on from there"], err[-3000:]
    assert all(line.startswith("[") for line in out.splitlines()), out[-3000:]
    assert "[8/8]" not in first + out  # interrupted before the end, so the test tested an interrupt


def test_lm_eval_chatter_is_held_back_and_its_warnings_are_not(capfd):
    """While a checkpoint is scored, lm-eval's advice to pass --metadata (every task, every checkpoint),
    its "bootstrapping for stddev" prints, its progress bars and git's "not a git repository" (lm-eval asks
    it for a commit) are dropped; any other line it writes still reaches the terminal."""
    import sys

    from linscale.eval.runner import _without_lm_eval_chatter

    with _without_lm_eval_chatter():
        print("bootstrapping for stddev: perplexity")
        print("linscale_mqar: Custom kwargs can be passed to `--metadata` in console (as json string) or to the "
              "TaskManager.\nFor example --metadata='{\"max_seq_lengths\":[4096, 8192]}'. For details see task Readme.",
              file=sys.stderr)
        print("loglikelihood:   0%|          | 0/38 [00:00<?, ?it/s]\rloglikelihood: 100%|██████████| 38/38 "
              "[00:00<00:00, 98.45it/s]", file=sys.stderr)
        print("  0%|          | 0/200 [00:00<?, ?it/s]100%|██████████| 200/200 [00:00<00:00, 12840.56it/s]".replace(
            "?it/s]100%", "?it/s]\r100%"), file=sys.stderr)
        print("WARNING: a task's own warning", file=sys.stderr)
        subprocess.run(["git", "describe", "--always"], cwd="/")  # lm-eval asks git, outside a clone here
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == "WARNING: a task's own warning\n"


def test_linscale_eval_retrieval_writes_niah_cells(tmp_path):
    sweep_dir, _ = sweep(tmp_path, [("a", 10, fx.tiny_model("tnl"))])
    table = evaluate_sweep(sweep_dir, ["retrieval"], progress=lambda m: None)
    cells = pd.read_parquet(sweep_dir / "eval" / "niah_cells.parquet")
    assert len(cells) == 2 * 3 * 3 and set(cells["mode"]) == {"easy", "standard"}  # the stub's 3 x 3 grid
    for task in ("linscale_niah_easy", "linscale_niah_standard"):
        mean = table[(table.task == task) & (table.metric == "acc")].value.item()
        assert cells[cells.task == task].acc.mean() == pytest.approx(mean)
    # the derived row: easy minus standard, as the two weighted accuracies give it, with a standard error
    wa = table[table.metric == "weighted_acc"].set_index("task")["value"]
    difference = table[table.task == "linscale_niah_easy_minus_standard"]
    assert list(difference.metric) == ["weighted_acc_difference"]
    assert difference.value.item() == pytest.approx(wa["linscale_niah_easy"] - wa["linscale_niah_standard"])
    assert np.isfinite(difference.stderr.item()) and difference.stderr.item() >= 0


def test_each_checkpoints_items_are_stored_so_two_accuracies_can_be_compared_item_by_item(tmp_path):
    sweep_dir, _ = sweep(tmp_path, [("a", 10, fx.tiny_model("tnl")), ("b", 10, fx.tiny_model("llama", 1))])
    table = evaluate_sweep(sweep_dir, ["linguistic", "retrieval"], progress=lambda m: None)
    items = pd.read_parquet(sweep_dir / "eval" / "items.parquet")
    assert not items.duplicated(["run_id", "step", "task", "doc_id"]).any() and set(items["acc"]) <= {0.0, 1.0}
    accuracy = table[table["metric"] == "acc"].set_index(["run_id", "task"])["value"]
    assert {"linscale_cloze", "linscale_niah_easy", "linscale_mqar"} <= set(items["task"])
    for (run_id, task), part in items.groupby(["run_id", "task"]):  # each task's accuracy is its items' mean
        assert part["acc"].mean() == pytest.approx(accuracy[run_id, task])
    # both checkpoints answered the same items: every item has its twin, so a paired difference exists
    by_run = items.pivot_table(index=["task", "doc_id"], columns="run_id", values="acc")
    assert len(by_run) == len(items) / 2 and by_run.notna().all().all()


def test_a_second_store_of_the_same_checkpoints_keeps_its_own_niah_cells(tmp_path):
    """The study evaluates the context ablation's base runs at twice their context into another store
    beside the main one: their cells at other lengths must not overwrite the main store's."""
    sweep_dir, _ = sweep(tmp_path, [("a", 10, fx.tiny_model("tnl"))])
    evaluate_sweep(sweep_dir, ["retrieval"], progress=lambda m: None)
    main = pd.read_parquet(sweep_dir / "eval" / "niah_cells.parquet")
    evaluate_sweep(sweep_dir, ["retrieval"], out=sweep_dir / "eval" / "twice.parquet", context_factor=2.0,
                   progress=lambda m: None)
    pd.testing.assert_frame_equal(pd.read_parquet(sweep_dir / "eval" / "niah_cells.parquet"), main, check_exact=True)
    twice = pd.read_parquet(sweep_dir / "eval" / "niah_cells" / "twice.parquet")
    assert twice["length"].max() > main["length"].max()  # the longer haystacks, in their own file
    assert (sweep_dir / "eval" / "json" / "twice" / "a" / "step=10" / "retrieval.json").is_file()
    assert (sweep_dir / "eval" / "items" / "twice.parquet").is_file() and (sweep_dir / "eval" / "items.parquet").is_file()
    assert (sweep_dir / "eval" / "json" / "a" / "step=10" / "retrieval.json").is_file()


def test_task_prompts_are_fields_or_functions_not_templates():
    """lm-eval compiles a Jinja prompt anew for every document (half of a small model's evaluation
    time), so the task YAMLs name a document field or a function in tasks/utils.py instead."""
    import re

    for path in sorted(TASKS_DIR.glob("*yaml")):
        for line in path.read_text().splitlines():
            if re.match(r"\s*doc_to_(text|target|choice):", line):
                assert "{{" not in line, f"{path.name}: {line.strip()}"


def test_users_own_task_folder_runs_through_linscale_eval(tmp_path):
    """--include_path DIR: a local WikiText-style task (rolling log-likelihood of "page") into the store."""
    from linscale.cli import main

    sweep_dir, _ = sweep(tmp_path, [("a", 10, fx.tiny_model("llama"))])
    folder = Path(__file__).parent / "data" / "wikitext_local"
    assert main(["eval", str(sweep_dir), "--suites", "", "--tasks", "wikitext_local", "--include_path", str(folder)]) == 0
    table = read_store(sweep_dir / "eval" / "results.parquet")
    rows = table[table.task == "wikitext_local"].set_index("metric")
    assert {"word_perplexity", "byte_perplexity", "bits_per_byte"} <= set(rows.index)
    assert rows.loc["bits_per_byte", "value"] > 0 and rows.loc["word_perplexity", "n_samples"] == 3
    assert rows["chance"].isna().all()  # not a linscale task: no chance level known


def test_a_store_keeps_one_setting_and_takes_the_users_new_tasks(tmp_path, capsys):
    """The store key has no settings: a call with another --option or --context-factor found every
    checkpoint "already evaluated" and kept the old rows in silence, and a second --tasks call was skipped
    because the first had filled the suite "tasks"."""
    from linscale.cli import main

    sweep_dir, _ = sweep(tmp_path, [("a", 10, fx.tiny_model("llama"))])
    store = sweep_dir / "eval" / "results.parquet"
    assert main(["eval", str(sweep_dir), "--suites", "knowledge"]) == 0
    before = store.read_bytes()
    for extra, asked in [(["--option", "n_per_band=5"], "--option n_per_band=5"),
                         (["--context-factor", "2"], "--context-factor 2"), (["--limit", "3"], "--limit 3")]:
        assert main(["eval", str(sweep_dir), "--suites", "knowledge", *extra]) == 2, extra
        err = capsys.readouterr().err.strip()
        assert (f"{store}: its rows were evaluated with the default settings, this call asks for {asked}; give "
                "each setting its own --out (a study: its own --runs-dir)") in err and len(err.splitlines()) == 1, err
    assert store.read_bytes() == before
    data = Path(__file__).parent / "data"
    for task in ("wikitext_local", "piqa_local"):
        assert main(["eval", str(sweep_dir), "--suites", "", "--tasks", task, "--include_path", str(data / task)]) == 0
    assert {"wikitext_local", "piqa_local", "linscale_knowledge"} <= set(read_store(store).task)
    assert "already evaluated" not in capsys.readouterr().out


def test_task_folder_and_options_errors_are_one_line(tmp_path, capsys):
    from linscale.cli import main

    sweep_dir, _ = sweep(tmp_path, [("a", 10, fx.tiny_model("llama"))])
    cases = [(["--tasks", "wikitext_local"], "your own, --include_path DIR"),
             (["--tasks", "x", "--include_path", str(tmp_path / "nowhere")], "--include_path: "),
             # an unset $DIR: Path("") is the current folder, whose every YAML was read and indexed as the user's
             (["--tasks", "x", "--include_path", ""], "--include_path: empty; expected a folder of lm-eval task YAMLs"),
             (["--option", "niah_repeats"], "--option: expected KEY=VALUE"),
             (["--option", "niah_repeat=3"], "--option: expected KEY=VALUE"),
             (["--suites", "retrieval", "--option", "niah_repeats=0"], "niah_repeats: expected a positive integer"),
             # rounded to a context of 0, which read as "not given": evaluated at the training length in silence
             (["--context-factor", "0.005"], "seq_len 64 is a context of 0 tokens; expected at least 2"),
             (["--suites", "knowledge", "--context-factor", "0.1", "--out", str(tmp_path / "tiny.parquet")],
              "made for the model's context, of at least 16 tokens (got 6); pass a larger max_length=... (linscale "
              "eval: --context-factor)"),
             # lm_eval's advice (max_length=, truncation=left) is not this command's
             (["--suites", "", "--tasks", "piqa_local", "--include_path", str(Path(__file__).parent / "data" /
              "piqa_local"), "--context-factor", "0.05", "--out", str(tmp_path / "short.parquet")],
              "is longer than the model's context max_length=3; give a larger --context-factor (max_length is "
              "that times each checkpoint's training seq_len)")]
    for extra, expected in cases:
        assert main(["eval", str(sweep_dir), *extra]) == 2, extra
        err = capsys.readouterr().err.strip()
        assert expected in err and len(err.splitlines()) == 1, err


def test_a_users_task_folder_may_neither_break_nor_replace_linscales_tasks(tmp_path, capsys):
    """A user's task named linscale_cloze scored the linguistic suite in place of the package's (lm-eval
    lets the later folder win) and the store kept those rows as the suite's; a YAML with a syntax error was
    left out by lm-eval with a log line, and its task then called "unknown", the file never named."""
    import shutil

    from linscale.cli import main

    sweep_dir, _ = sweep(tmp_path, [("a", 10, fx.tiny_model("llama"))])
    mine = tmp_path / "mine"
    shutil.copytree(Path(__file__).parent / "data" / "wikitext_local", mine)
    text = (mine / "wikitext_local.yaml").read_text()
    (mine / "dup.yaml").write_text(text.replace("task: wikitext_local", "task: linscale_cloze"))
    argv = ["eval", str(sweep_dir), "--suites", "linguistic", "--tasks", "wikitext_local", "--include_path", str(mine)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert f"--include_path: {mine} defines linscale_cloze, the name of linscale's own task(s)" in err, err
    assert len(err.splitlines()) == 1 and not (sweep_dir / "eval" / "results.parquet").exists()
    (mine / "dup.yaml").write_text("task: [broken\n")
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert f"--include_path: {mine / 'dup.yaml'}: not a readable task YAML (" in err and len(err.splitlines()) == 1, err


def test_a_users_task_whose_data_file_is_missing_is_one_line(tmp_path, capsys):
    """A task YAML naming a local data file that is not there was a FileNotFoundError traceback."""
    from linscale.cli import main

    sweep_dir, _ = sweep(tmp_path, [("a", 10, fx.tiny_model("llama"))])
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "gone.yaml").write_text(f"task: gone_local\ndataset_path: json\ndataset_kwargs:\n  data_files:\n"
                                    f"    test: {tmp_path / 'nope.jsonl'}\noutput_type: loglikelihood_rolling\n"
                                    "test_split: test\ndoc_to_text: ''\ndoc_to_target: page\nmetric_list:\n"
                                    "  - metric: word_perplexity\n")
    assert main(["eval", str(sweep_dir), "--suites", "", "--tasks", "gone_local", "--include_path", str(mine)]) == 2
    err = capsys.readouterr().err.strip()
    assert "tasks: gone_local: " in err and "nope.jsonl" in err and len(err.splitlines()) == 1, err


def test_a_users_task_with_a_hole_in_its_yaml_is_one_line_naming_the_field(tmp_path, capsys):
    """A multiple_choice task without doc_to_choice was lm-eval's bare TypeError, a misspelt field in a
    template jinja's UndefinedError, a generation task with `until: 5` lm-eval's ValueError and `until: [5]`
    a TypeError in linscale's model: four tracebacks."""
    import shutil

    from linscale.cli import main
    from linscale.config import ConfigError
    from linscale.eval.items import TaskDataError
    from linscale.eval.runner import evaluate_checkpoint

    sweep_dir, (ckpt,) = sweep(tmp_path, [("a", 10, fx.tiny_model("llama"))])
    mine = tmp_path / "mine"
    shutil.copytree(Path(__file__).parent / "data" / "piqa_local", mine)
    text = (mine / "piqa_local.yaml").read_text()
    assert text.count("doc_to_choice: ") == 1 and text.count("output_type: multiple_choice") == 1
    (mine / "piqa_local.yaml").unlink()
    (mine / "nochoice.yaml").write_text("\n".join(line for line in text.replace("task: piqa_local", "task: nochoice")
                                                  .splitlines() if not line.startswith("doc_to_choice: ")))
    generation = text.replace("task: piqa_local", "task: stops").replace("doc_to_choice: ", "# ").replace(
        "output_type: multiple_choice", "output_type: generate_until\ngeneration_kwargs:\n  max_gen_toks: 2\n"
        "  until: UNTIL").replace("doc_to_target: label", 'doc_to_target: "{{sol1}}"').replace("acc_norm", "acc")
    generation = generation.replace("metric: acc", "metric: exact_match")
    (mine / "typo.yaml").write_text(text.replace("task: piqa_local", "task: typo").replace("{{goal}}", "{{gaol}}"))
    cases = [("nochoice", "tasks: nochoice: lm-eval could not make a request from the task's YAML (TypeError in "
              "lm-eval's Task.doc_to_choice); expected doc_to_choice: a list, a field of the data or a template "
              "giving a list (a multiple_choice task needs one)"),
             ("typo", "tasks: typo: lm-eval could not make a request from the task's YAML ('gaol' is undefined in "
              "lm-eval's Task.doc_to_text); expected doc_to_text: a field of the data or a template of its "
              "fields")]  # jinja's UndefinedError
    for until in ("5", "[5]"):
        (mine / f"stops{len(cases)}.yaml").write_text(generation.replace("task: stops", f"task: stops{len(cases)}")
                                                     .replace("UNTIL", until))
        cases.append((f"stops{len(cases)}", f"generation_kwargs.until (task stops{len(cases)}, doc 0): expected a "
                      f"string or a list of strings, got {until}"))
    for task, expected in cases:
        assert main(["eval", str(sweep_dir), "--suites", "", "--tasks", task, "--include_path", str(mine)]) == 2
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert err == f"linscale: error: {expected}", err
    (mine / "stops3.yaml").write_text(generation.replace("task: stops", "task: stops3").replace("UNTIL", "'.'"))
    assert main(["eval", str(sweep_dir), "--suites", "", "--tasks", "stops3", "--include_path", str(mine)]) == 0
    # of several tasks evaluated together, the one whose YAML has the hole is named
    with pytest.raises(ConfigError, match=r"^tasks: typo: lm-eval could not make a request"):
        evaluate_checkpoint(ckpt, ["stops3", "typo"], include_path=str(mine), limit=2)
    # linscale's own error, raised in its task code that lm-eval's Task calls, is passed on as it was
    with pytest.raises(TaskDataError, match=r"^mqar_pairs: expected an integer, got 'abc'$"):
        evaluate_checkpoint(ckpt, ["linscale_mqar"], task_options={"mqar_pairs": "abc"}, limit=2)


def test_offline_real_task_is_a_one_line_error_naming_its_dataset(tmp_path, capsys, monkeypatch):
    """`--tasks wikitext --real-tasks` without a network: one line naming the dataset, no traceback. The
    task here is lm-eval's wikitext.yaml's dataset fields in a folder of its own (indexing all of lm-eval's
    14,000 task files with --real-tasks takes tens of seconds; the error path is the same)."""
    from linscale.cli import main

    for name, value in OFFLINE.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache: the dataset is nowhere
    folder = tmp_path / "wikitext_remote"
    folder.mkdir()
    (folder / "wikitext_remote.yaml").write_text(
        "task: wikitext_remote\ndataset_path: EleutherAI/wikitext_document_level\ndataset_name: wikitext-2-raw-v1\n"
        "output_type: loglikelihood_rolling\ntest_split: test\ndoc_to_text: ''\ndoc_to_target: page\n"
        "metric_list:\n  - metric: word_perplexity\n")
    sweep_dir, (ckpt,) = sweep(tmp_path, [("a", 10, fx.tiny_model("llama"))])
    assert main(["eval", str(sweep_dir), "--suites", "", "--tasks", "wikitext_remote", "--include_path", str(folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "wikitext_remote" in err, err
    assert "dataset EleutherAI/wikitext_document_level could not be loaded" in err, err
    assert not (sweep_dir / "eval" / "results.parquet").exists()


def test_calibrate_evaluates_final_checkpoints_and_reports_every_task(tmp_path, capsys):
    from linscale.cli import main

    sweep_dir, _ = sweep(tmp_path, [("llama-s1", 10, fx.tiny_model("llama")), ("llama-s1", 20, fx.tiny_model("llama", 1)),
                                    ("hgrn2-s1", 20, fx.tiny_model("hgrn2"))])
    assert main(["eval", str(sweep_dir), "--calibrate"]) == 0
    out = capsys.readouterr().out
    store = read_store(sweep_dir / "eval" / "calibration.parquet")
    assert set(zip(store.run_id, store.step)) == {("llama-s1", 20), ("hgrn2-s1", 20)}  # final checkpoints only
    for task in ("linscale_knowledge_head", "linscale_cloze", "linscale_niah_easy", "linscale_mqar"):
        assert task in out
    assert "at_ceiling" in out and "NIAH easy" in out or "easy_ge_standard" in out
    acc = store[(store.task == "linscale_mqar") & (store.metric == "acc")]
    assert (acc["chance"] == 1 / 64).all()  # the stub world's data dict has the default n_values
    niah = store[(store.task == "linscale_niah_easy") & (store.metric == "weighted_acc")]
    # a standard error for every score: positive where some items are right and some wrong, zero at 0 or 1
    inside = (niah["value"] > 0) & (niah["value"] < 1)
    assert niah["stderr"].notna().all() and (niah.loc[inside, "stderr"] > 0).all()
    assert (niah.loc[~inside, "stderr"] == 0).all()
    # another knob setting goes to a store of its own
    assert main(["eval", str(sweep_dir), "--calibrate", "--suites", "knowledge", "--option", "n_per_band=5"]) == 0
    assert len(list((sweep_dir / "eval").glob("calibration-*.parquet"))) == 1


def test_bootstrapped_standard_errors_are_the_same_without_lm_evals_process_pool(monkeypatch):
    """The runner draws lm-eval's bootstrap resamples in one process (no pool forked per metric per
    checkpoint); the standard errors must be those of lm-eval's pool, to the bit."""
    from lm_eval.api.metrics import bootstrap_stderr, perplexity

    from linscale.eval.runner import _single_process_bootstrap

    monkeypatch.delenv("DISABLE_MULTIPROC", raising=False)
    xs = [float(x) for x in _item_loglikelihoods(60)]
    pooled = bootstrap_stderr(perplexity, xs, iters=2000)  # two chunks of 1000, each its own seed
    with _single_process_bootstrap():
        assert os.environ["DISABLE_MULTIPROC"] == "1"
        alone = bootstrap_stderr(perplexity, xs, iters=2000)
    assert "DISABLE_MULTIPROC" not in os.environ  # restored
    assert alone == pooled and alone > 0


def _item_loglikelihoods(n: int) -> list[float]:
    """n per-item log-likelihoods, spread like a small model's (deterministic)."""
    import random

    rnd = random.Random(7)
    return [-rnd.uniform(0.5, 6.0) for _ in range(n)]


# Fast checks of the runner's parts (no lm-eval run): each guards a behaviour a mutant of linscale/eval/runner.py
# changed without any test above failing.


def test_checkpoints_are_ordered_by_step_as_a_number_and_the_last_one_is_the_final(tmp_path):
    """step=1000 comes after step=500 (as text it sorts first, and the calibration then took a run's
    step=500 for its final checkpoint); a missing sweep folder, or a file given for one, is one line."""
    from linscale.config import ConfigError
    from linscale.eval.runner import final_checkpoints, find_checkpoints

    for run_id, step in [("b", 500), ("a", 1000), ("a", 500), ("a", 20)]:
        folder = tmp_path / "runs" / run_id / "export" / f"step={step}"
        folder.mkdir(parents=True)
        (folder / "config.json").write_text("{}")
    found = [(p.parent.parent.name, p.name) for p in find_checkpoints(tmp_path)]
    assert found == [("a", "step=20"), ("a", "step=500"), ("a", "step=1000"), ("b", "step=500")]
    assert [(p.parent.parent.name, p.name) for p in final_checkpoints(tmp_path)] == [("a", "step=1000"),
                                                                                   ("b", "step=500")]
    with pytest.raises(ConfigError, match=f"^{tmp_path / 'nowhere'}: sweep folder does not exist$"):
        find_checkpoints(tmp_path / "nowhere")
    # an export of another name beside the numbered ones (a user's step=final) comes after them, not a TypeError
    for name in ("step=final", "step=1000.bak"):
        (tmp_path / "runs" / "a" / "export" / name).mkdir()
        (tmp_path / "runs" / "a" / "export" / name / "config.json").write_text("{}")
    assert [p.name for p in find_checkpoints(tmp_path)][:6] == ["step=20", "step=500", "step=1000", "step=1000.bak",
                                                                "step=final", "step=500"]
    with pytest.raises(ConfigError, match=r": is a file; expected a sweep folder \(runs/<preset>\)$"):
        find_checkpoints(tmp_path / "runs" / "a" / "export" / "step=20" / "config.json")


def test_store_settings_name_every_option_and_a_damaged_record_is_one_line(tmp_path):
    from linscale.config import ConfigError
    from linscale.eval.runner import _settings_text, check_store_settings, settings_path

    settings = {"task_options": {"n_choices": "5"}, "context_factor": 2.0, "limit": 3, "include_defaults": True}
    assert _settings_text(settings) == "--option n_choices=5 --context-factor 2 --limit 3 --real-tasks"
    out = tmp_path / "results.parquet"
    rows = pd.DataFrame({"run_id": ["a"]})
    settings_path(out).write_text("{not json")
    with pytest.raises(ConfigError, match=f"^{settings_path(out)}: not readable JSON; delete it to take {out}'s rows"):
        check_store_settings(out, rows, settings)


def test_a_users_task_folder_is_a_path_or_a_list_and_every_yaml_in_it_is_read(tmp_path):
    """task_paths takes a pathlib.Path as well as a string (a Path was iterated over: a TypeError); a broken
    YAML in a subfolder (lm-eval indexes those too) and one that is not UTF-8 are named in one line."""
    from linscale.config import ConfigError
    from linscale.eval.runner import check_user_tasks, task_paths

    mine = tmp_path / "mine"
    (mine / "deeper").mkdir(parents=True)
    assert task_paths(mine) == task_paths(str(mine)) == task_paths([mine]) == [str(TASKS_DIR), str(mine)]
    (mine / "deeper" / "broken.yaml").write_text("task: [broken\n")
    with pytest.raises(ConfigError, match=f"^--include_path: {mine / 'deeper' / 'broken.yaml'}: not a readable task "
                                          r"YAML \("):
        check_user_tasks(mine)
    (mine / "deeper" / "broken.yaml").write_bytes("task: caf\u00e9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=f"^--include_path: {mine / 'deeper' / 'broken.yaml'}: not a readable task "
                                          r"YAML \(.*utf-8"):
        check_user_tasks(mine)


def test_an_error_lm_eval_raises_outside_a_tasks_fields_is_not_blamed_on_its_yaml(tmp_path):
    """A task left with no documents (limit 0) fails in lm-eval's Task, but not reading a doc_to_* field:
    that is no hole in the task's YAML, and is passed on as lm-eval raised it (linscale lm-eval words it)."""
    from linscale.eval.runner import evaluate_checkpoint, task_yaml_error

    ckpt = fx.export(tmp_path / "ck", fx.tiny_model("llama"))
    fx.fill_cache(ckpt, tmp_path / "cache")
    with pytest.raises(ValueError, match="did not find any docs") as err:
        evaluate_checkpoint(ckpt, ["linscale_cloze"], task_cache=tmp_path / "cache", limit=0)
    assert task_yaml_error(err.value, ["linscale_cloze"]) is None


def test_a_sweep_without_checkpoints_a_context_under_two_tokens_and_a_locked_store_are_one_line(tmp_path):
    """Each refused before any checkpoint is evaluated: a round(factor x seq_len) of 1 token evaluated a
    one-token context; a second `linscale eval` on the same store waits a second, then names it."""
    from filelock import FileLock

    from linscale.config import ConfigError

    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"empty: no exported checkpoints \(runs/\*/export/step=\*/\)$"):
        evaluate_sweep(tmp_path / "empty", ["knowledge"], progress=lambda m: None)
    ckpt = fx.export(tmp_path / "sweep" / "runs" / "a" / "export" / "step=1", fx.tiny_model("llama"), run_id="a")
    for factor in (1, 0.6):  # a context rounded, not cut: 0.6 tokens is 1
        with pytest.raises(ConfigError, match=rf"seq_len {fx.SEQ_LEN} is a context of 1 tokens; expected at least 2$"):
            evaluate_sweep(tmp_path / "sweep", ["knowledge"], context_factor=factor / fx.SEQ_LEN,
                           progress=lambda m: None)
    out = tmp_path / "store.parquet"
    with FileLock(str(out) + ".lock"):
        with pytest.raises(ConfigError, match=f"^{out}: another `linscale eval` is writing this results store$"):
            evaluate_sweep(tmp_path / "sweep", ["knowledge"], out=out, checkpoints=[ckpt], progress=lambda m: None)
    assert not out.exists()


def test_a_checkpoint_whose_meta_has_no_tokens_is_the_same_run_as_its_stored_rows():
    """Where the stored checkpoint is gone, the rows' tokens and FLOPs are compared with the meta's: NaN
    (a meta without them) must equal NaN, or a moved sweep was refused as another run."""
    import math

    from linscale.eval.runner import _same_number

    assert _same_number(math.nan, None) and _same_number(math.nan, math.nan) and _same_number(20000.0, 20000)
    assert not _same_number(math.nan, 1.0) and not _same_number(1.0, None) and not _same_number(1.0, 2.0)


def test_appended_rows_replace_the_stored_rows_of_their_key(tmp_path):
    from linscale.eval.runner import append_rows

    store = tmp_path / "results.parquet"
    row = {"run_id": "a", "step": 10, "task": "linscale_cloze", "metric": "acc", "value": 0.2}
    append_rows(store, pd.DataFrame([row, dict(row, metric="perplexity", value=9.0)]))
    table = append_rows(store, pd.DataFrame([dict(row, value=0.7)]))
    assert sorted(zip(table.metric, table.value)) == [("acc", 0.7), ("perplexity", 9.0)]
    pd.testing.assert_frame_equal(read_store(store), table)


def test_result_rows_hold_each_metric_once_with_its_stderr_chance_and_compute(tmp_path, monkeypatch):
    """lm-eval's results dict: "metric,filter" keys, each metric's "_stderr" beside it, and non-metric
    entries (alias, a bool) that are not rows; N from the meta, else from the checkpoint's model config."""
    from linscale.eval.chance import chance_level
    from linscale.eval import runner
    from linscale.eval.runner import result_rows
    from linscale.flops import PF_DAY, non_embedding_params

    results = {"results": {"linscale_cloze": {"alias": "linscale_cloze", "acc,none": 0.25, "acc_stderr,none": 0.05,
                                              "perplexity,none": 12.0, "perplexity_stderr,none": "N/A",
                                              "flag,none": True}},
               "n-samples": {"linscale_cloze": {"original": 80, "effective": 80}}}
    meta = {"run_id": "a", "arch": "llama", "size": "s1", "step": 10, "tokens": 1e6, "flops": 3e15, "params": 1e5}
    model = fx.tiny_model("llama")
    ckpt = str(fx.export(tmp_path / "ck", model))
    rows = result_rows(results, meta, "linguistic", ckpt, 1.5, max_length=64).set_index("metric")
    assert sorted(rows.index) == ["acc", "perplexity"]
    assert rows.loc["acc", "stderr"] == 0.05 and np.isnan(rows.loc["perplexity", "stderr"])
    assert rows.loc["acc", "chance"] == chance_level("linscale_cloze", "acc") and np.isnan(rows.loc["perplexity",
                                                                                                   "chance"])
    assert rows.loc["acc", "pf_days"] == pytest.approx(3e15 / PF_DAY) and rows.loc["acc", "n_samples"] == 80
    assert (rows["max_length"] == 64).all() and (rows["filter"] == "none").all() and (rows["params"] == 1e5).all()
    del meta["params"]
    assert (result_rows(results, meta, "linguistic", ckpt, 1.5)["params"]
            == non_embedding_params(model.config)).all()
    calls = []  # the checkpoint's config is read once for all rows, and not at all where the meta has N
    monkeypatch.setattr(runner, "_non_embedding_params", lambda path: calls.append(path) or 7.0)
    assert (result_rows(results, meta, "linguistic", ckpt, 1.5)["params"] == 7.0).all() and calls == [ckpt]
    result_rows(results, {**meta, "params": 1e5}, "linguistic", ckpt, 1.5)
    assert calls == [ckpt]


def test_niah_items_of_the_two_modes_pair_up_and_cells_average_their_items():
    """The paired standard error of NIAH easy minus standard needs each easy item matched with its standard
    twin: the needle's first word aside, and the n-th of identical items with the n-th (the stub world's
    items never pair, so the suite tests above cannot see it)."""
    from linscale.eval import metrics
    from linscale.eval.items import generate, knob_values
    from linscale.eval.runner import niah_cell_rows, niah_records

    knobs = knob_values({"niah_lengths": 2, "niah_depths": 2, "niah_repeats": 2})
    items = generate("niah", {"data": {"source": "synthetic"}, "eval_seed": 3, "max_length": 64,
                              **{k: knobs[k] for k in ("niah_lengths", "niah_depths", "niah_repeats",
                                                       "niah_min_length", "niah_paired")}})
    samples = {mode: [{"doc": it, "acc": float(n % 3 == 0)} for n, it in enumerate(items) if it["mode"] == mode]
               for mode in ("easy", "standard")}
    for twice in (1, 2):  # each item twice: the second of each pairs with the other mode's second
        easy, standard = (niah_records(samples[mode] * twice) for mode in ("easy", "standard"))
        assert len(easy) == len(standard) == 8 * twice and metrics.weighted_difference(easy, standard)[2]
    one = samples["easy"][0]
    cells = niah_cell_rows({"samples": {"linscale_niah_easy": [one, dict(one, acc=0.0)]}}, {"run_id": "a", "step": 1,
                                                                                         "tokens": 1e6})
    assert len(cells) == 1 and cells["acc"].item() == 0.5 and cells["length"].item() == one["doc"]["length"]


def test_an_evaluation_pool_needs_a_process_and_a_thread():
    from linscale.config import ConfigError
    from linscale.eval.runner import EvalPool

    for jobs, threads in [(0, 1), (1, 0)]:
        with pytest.raises(ConfigError, match=f"^--jobs: expected at least one evaluation process of at least one "
                                              f"thread, got {jobs} x {threads}$"):
            EvalPool(jobs, threads)


def test_a_yaml_hole_is_an_error_raised_where_lm_evals_task_reads_a_field_and_not_in_linscales_code():
    """task_yaml_error judges by the traceback: the error raised in lm-eval's Task.doc_to_* (the task named
    as its config gives it) is the YAML's; one raised further in, in linscale's own code, or in a Task
    method that reads no field, is passed on as it was (None)."""
    import lm_eval.api.task

    from linscale.eval.runner import task_yaml_error

    def raised(fields_code: str, method: str = "doc_to_text"):
        """The error of lm-eval's Task.<method> calling a function compiled as if from ``fields_code``."""
        space = {}
        exec(compile("def field(doc):\n    return doc['gaol']\n", fields_code, "exec"), space)
        exec(compile(f"def {method}(self, doc):\n    return field(doc)\n", lm_eval.api.task.__file__, "exec"), space)
        task = type("Task", (), {"config": type("Config", (), {"task": "mine"})()})()
        try:
            space[method](task, {"goal": "g"})
        except KeyError as err:
            return err
        raise AssertionError("no error")

    error = task_yaml_error(raised("/elsewhere/utils.py"), ["other", "mine"])
    assert str(error) == ("tasks: mine: lm-eval could not make a request from the task's YAML ('gaol' in lm-eval's "
                          "Task.doc_to_text); expected doc_to_text: a field of the data or a template of its fields")
    assert task_yaml_error(raised(str(TASKS_DIR / "utils.py"))) is None
    assert task_yaml_error(raised("/elsewhere/utils.py", "build_all_requests")) is None
    assert task_yaml_error(KeyError("gaol")) is None  # not raised in lm-eval's Task at all


def test_a_checkpoint_whose_meta_has_no_tokens_keeps_its_niah_cells_and_is_evaluated_once(tmp_path):
    """The cells were grouped on the meta's tokens, NaN for a checkpoint saved without them, and pandas drops
    NaN groups: niah_cells.parquet got nothing, so the retrieval suite counted as lost and was evaluated
    again on every call."""
    from linscale.models.checkpoint import save_checkpoint

    ckpt = save_checkpoint(fx.tiny_model("tnl"), tmp_path / "sweep" / "runs" / "a" / "export" / "step=1",
                           {"run_id": "a", "step": 1, "data": fx.DATA, "seq_len": fx.SEQ_LEN}, tokenizer=fx.tokenizer())
    fx.fill_cache(ckpt, tmp_path / "sweep" / "eval" / "tasks")
    messages = []
    for _ in range(2):
        evaluate_sweep(tmp_path / "sweep", ["retrieval"], progress=messages.append)
    cells = pd.read_parquet(tmp_path / "sweep" / "eval" / "niah_cells.parquet")
    assert len(cells) == 2 * 3 * 3 and cells["tokens"].isna().all()
    assert messages[1] == "[1/1] a step 1 retrieval: already evaluated", messages


def test_each_store_keeps_its_own_settings_record_which_names_a_context_below_one(tmp_path):
    """Settings are recorded per store (twice.parquet beside results.parquet has its own), the first call on a
    store without rows records its settings, even over a record left from rows since deleted, and a store
    written before settings were recorded (rows, no record) is taken as it is. A --context-factor under 1 is
    named in the refusal too (a factor of 0.5 read "the default settings")."""
    from linscale.config import ConfigError
    from linscale.eval.runner import check_store_settings, settings_path

    plain = {"task_options": {}, "context_factor": 1.0, "limit": None, "include_defaults": False}
    half = dict(plain, context_factor=0.5)
    rows, none = pd.DataFrame({"run_id": ["a"]}), pd.DataFrame({"run_id": []})
    default, twice = tmp_path / "results.parquet", tmp_path / "twice.parquet"
    check_store_settings(default, none, plain)
    check_store_settings(twice, none, half)
    assert json.loads(settings_path(twice).read_text()) == half != json.loads(settings_path(default).read_text())
    check_store_settings(default, rows, plain)
    check_store_settings(twice, rows, half)
    with pytest.raises(ConfigError, match=rf"^{twice}: its rows were evaluated with --context-factor 0.5, this call "
                                          "asks for the default settings; give each setting its own --out"):
        check_store_settings(twice, rows, plain)
    check_store_settings(twice, none, plain)  # its rows gone: this call's settings are the store's
    assert json.loads(settings_path(twice).read_text()) == plain
    old = tmp_path / "old.parquet"
    check_store_settings(old, rows, half)
    assert not settings_path(old).exists()


def test_the_bootstrap_setting_of_the_caller_is_restored_after_scoring(monkeypatch):
    """lm-eval's DISABLE_MULTIPROC, set by the caller (to 0, say), is its own again after a checkpoint is
    scored, not removed."""
    from linscale.eval.runner import _single_process_bootstrap

    monkeypatch.setenv("DISABLE_MULTIPROC", "0")
    with _single_process_bootstrap():
        assert os.environ["DISABLE_MULTIPROC"] == "1"
    assert os.environ["DISABLE_MULTIPROC"] == "0"


def test_each_niah_mode_gets_its_weighted_stderr_and_one_mode_alone_no_difference_row():
    """Both NIAH tasks' weighted accuracies carry the standard error lm-eval does not give (from their items);
    the easy-minus-standard row needs both modes: one scored alone (--tasks linscale_niah_easy) has none."""
    from linscale.eval import metrics
    from linscale.eval.items import generate, knob_values
    from linscale.eval.runner import MODE_DIFFERENCE_TASK, niah_records, result_rows

    knobs = knob_values({"niah_lengths": 2, "niah_depths": 2, "niah_repeats": 2})
    items = generate("niah", {"data": {"source": "synthetic"}, "eval_seed": 3, "max_length": 64,
                              **{k: knobs[k] for k in ("niah_lengths", "niah_depths", "niah_repeats",
                                                       "niah_min_length", "niah_paired")}})
    samples = {f"linscale_niah_{mode}": [{"doc": it, "acc": float((n + len(mode)) % 3 == 0)}
                                         for n, it in enumerate(items) if it["mode"] == mode]
               for mode in ("easy", "standard")}
    records = {task: [(s["doc"]["length_index"], s["doc"]["depth_index"], s["acc"]) for s in part]
               for task, part in samples.items()}
    results = {"results": {task: {"weighted_acc,none": metrics.weighted_accuracy(records[task]),
                                  "weighted_acc_stderr,none": "N/A"} for task in samples},
               "samples": samples}
    meta = {"run_id": "a", "step": 1, "params": 1e5}
    rows = result_rows(results, meta, "retrieval", "ck", 1.0).set_index("task")
    for task in samples:
        assert rows.loc[task, "stderr"] == pytest.approx(metrics.weighted_stderr(records[task]))
        assert rows.loc[task, "stderr"] > 0
    difference, se, paired = metrics.weighted_difference(*(niah_records(samples[task]) for task in samples))
    assert paired and rows.loc[MODE_DIFFERENCE_TASK, "metric"] == "weighted_acc_difference"
    assert rows.loc[MODE_DIFFERENCE_TASK, ["value", "stderr"]].tolist() == pytest.approx([difference, se])
    alone = {"results": {"linscale_niah_easy": results["results"]["linscale_niah_easy"]},
             "samples": {"linscale_niah_easy": samples["linscale_niah_easy"]}}
    assert list(result_rows(alone, meta, "tasks", "ck", 1.0).task) == ["linscale_niah_easy"]


def test_a_perplexity_task_scores_no_items_and_is_not_lost_and_a_moved_run_is_matched_by_its_arch_too(tmp_path):
    """Only accuracies score items: a perplexity row (documents, n_samples > 0) with no items stored is not a
    lost companion (it was evaluated again on every call). Where the stored checkpoint is gone, the rows are
    matched by arch, size, tokens and FLOPs: another architecture's run of the same id, step and compute is
    another run."""
    from linscale.config import ConfigError
    from linscale.eval.runner import _check_same_run, _lost_companions

    done = pd.DataFrame({"run_id": ["a", "a"], "step": [10, 10], "task": ["linscale_documents", "linscale_cloze"],
                         "metric": ["perplexity", "acc"], "n_samples": [4.0, 8.0]})
    assert _lost_companions(done, {("a", 10, "linscale_cloze")}, set()) == set()
    assert _lost_companions(done, set(), set()) == {"linscale_cloze"}
    stored = pd.DataFrame({"checkpoint": [str(tmp_path / "gone")], "arch": ["tnl"], "size": ["s1"],
                           "tokens": [1e6], "flops": [2e12]})
    meta = {"run_id": "a", "step": 10, "arch": "tnl", "size": "s1", "tokens": 1e6, "flops": 2e12}
    _check_same_run(tmp_path / "store.parquet", tmp_path / "moved", meta, stored)
    for other in ({"arch": "llama"}, {"size": "s2"}, {"tokens": 2e6}, {"flops": None}):
        with pytest.raises(ConfigError, match=r"moved: run a step 10 is already in .*store.parquet, evaluated from "
                                              r"another checkpoint \(.*gone\)"):
            _check_same_run(tmp_path / "store.parquet", tmp_path / "moved", {**meta, **other}, stored)
