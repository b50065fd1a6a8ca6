"""Sweeps end to end, through the command line: the smoke preset, SIGKILL and resume, DDP on CPU, and
submitit's local executor. These start real training processes; all shapes are tiny."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
import pytest

from linscale.train import (TrainSettings, read_records, read_results, read_status, records_equal,
                            resolve_preset)
from linscale.train.callbacks import load_lightning_checkpoint
from linscale.cli import main
from linscale.config import ConfigError
from linscale.train.sweep import run_sweep
from linscale.presets import load_preset

from conftest import SMOKE_SWEEP_ARGS
from helpers import ends_within, running

TESTS = Path(__file__).parent
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])),
       "OMP_NUM_THREADS": "1"}
DATA: list[str] = []  # the presets' own data: the synthetic language (linscale.data)
ARCHS = tuple(load_preset("smoke")["archs"])  # the smoke sweep's


def linscale(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "linscale", *map(str, args)], env=ENV, capture_output=True,
                          text=True, timeout=timeout)


def test_smoke_sweep_writes_a_valid_table_and_exports(smoke_sweep):
    out, r = smoke_sweep  # `linscale sweep --preset smoke --set train.seed=1 --jobs 2` (conftest.py)
    table = read_results(out / "results.parquet")  # validates against the schema
    settings = TrainSettings.from_dict(resolve_preset("smoke")["train"])
    assert set(table["run_id"]) == {f"{a}-{s}" for a in ARCHS for s in ("s1", "s2")}
    for run_id, rows in table.groupby("run_id"):
        assert list(rows["step"]) == settings.checkpoint_steps(), run_id
        assert rows["val_loss"].iloc[-1] < rows["val_loss"].iloc[0], f"{run_id} did not learn"
        assert (rows["tokens"] == rows["step"] * settings.tokens_per_step).all()
        final = out / "runs" / run_id / "export" / f"step={settings.total_steps}"
        meta = json.loads((final / "config.json").read_text())["meta"]
        assert {"run_id", "arch", "size", "step", "tokens", "flops", "data"} <= set(meta)
        assert meta["run_id"] == run_id and (final / "tokenizer.json").is_file()
    pd.testing.assert_frame_equal(table, read_results(out / "results.csv"), check_dtype=False)
    assert "[8/8]" in r.stdout
    assert "slots: 2 x" in r.stdout and "idle" in r.stdout  # the sweep reports how busy its workers were
    # Re-running skips every finished run and leaves the table as it was.
    again = linscale("sweep", *SMOKE_SWEEP_ARGS, "--out", out, "--jobs", "2", *DATA)
    assert again.returncode == 0 and "8 already finished, 0 to run" in again.stdout, again.stdout
    assert records_equal(table, read_results(out / "results.parquet"), ignore=())


def test_sigkill_mid_run_then_rerun_gives_the_uninterrupted_table(tmp_path):
    run = ["--preset", "smoke", "--set", "train.tokens=51200", "--set", "train.checkpoints=12",
           "--set", "sizes={s1: {n_layer: 1, d_model: 16, n_head: 2}}", *DATA]  # 1 run of 200 steps
    args = [*run, "--set", "archs=[hgrn2]", "--jobs", "1", "--threads", "1"]
    # The uninterrupted reference, trained in this process (one thread, as the sweep's worker): a sweep
    # would start two more processes, each importing torch and Lightning (~10 s of the CI's CPU apiece).
    assert main(["train", *run, "--arch", "hgrn2", "--size", "s1", "--no-progress", "--threads", "1",
                 "--out", str(tmp_path / "ref")]) == 0

    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "linscale", "sweep", *args, "--out", str(out)], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    victim, deadline = None, time.monotonic() + 240
    while victim is None and time.monotonic() < deadline and proc.poll() is None:
        for run_dir in sorted((out / "runs").glob("*")):
            if (read_status(run_dir)["state"] == "running" and (run_dir / "checkpoints" / "last.ckpt").exists()
                    and 5 <= len(read_records(run_dir)) < 12):
                victim = run_dir
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its training process, mid-run
    proc.wait()
    assert victim is not None, "no run was caught in the middle"
    assert read_status(victim)["state"] == "running"
    ckpt_step = load_lightning_checkpoint(victim / "checkpoints" / "last.ckpt")["global_step"]
    assert 0 < ckpt_step < 200

    again = linscale("sweep", *args, "--out", out)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"resumed from step {ckpt_step}" in again.stdout, again.stdout
    assert read_status(victim)["resumed_from"] == [ckpt_step]
    expected, got = read_results(tmp_path / "ref" / "results.parquet"), read_results(out / "results.parquet")
    assert len(got) == 12 and records_equal(expected, got)  # same run and rows, same losses, no duplicates


@pytest.mark.parametrize("how", ["sigterm to the sweep", "ctrl-c to the terminal's group"])
def test_a_stopped_sweep_stops_its_run_with_a_checkpoint_and_says_so(tmp_path, how):
    """A scheduler's SIGTERM to the sweep alone exited 143 without a word. Ctrl-C, which reaches the worker
    too, was followed by the sweep's SIGTERM, taken for a second signal: the run stopped without a checkpoint
    (the sweep also sent it twice: its cancel, then its pool's close)."""
    args = ["--preset", "smoke", "--set", "train.tokens=51200", "--set", "train.checkpoints=12",
            "--set", "sizes={s1: {n_layer: 1, d_model: 16, n_head: 2}}", "--set", "archs=[hgrn2]",
            "--jobs", "1", "--threads", "1", *DATA]  # 1 run of 200 steps
    out, ctrl_c = tmp_path / "stopped", how.startswith("ctrl-c")
    proc = subprocess.Popen([sys.executable, "-m", "linscale", "sweep", *args, "--out", str(out)], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=ctrl_c,
                            # as from a terminal: a pytest-xdist worker ignores SIGINT, and its children inherit that
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    run_dir, deadline = out / "runs" / "hgrn2-s1", time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None and not (run_dir / "records.json").exists():
        time.sleep(0.02)  # until the run trains
    if ctrl_c:
        os.killpg(proc.pid, signal.SIGINT)  # the sweep and its worker, as Ctrl-C in a terminal
    else:
        proc.send_signal(signal.SIGTERM)  # the sweep alone, as `kill` or a scheduler's stop of its process
    stdout, stderr = proc.communicate(timeout=240)
    assert proc.returncode == (130 if ctrl_c else 143) and "Traceback" not in stderr, stderr[-3000:]
    said = "linscale: interrupted; what finished" if ctrl_c else "linscale: interrupted by SIGTERM; what finished"
    assert stderr.strip().splitlines()[-1].startswith(said), stderr[-3000:]
    assert "stopping: 1 run saving a checkpoint at the next step" in stdout, stdout
    status = read_status(run_dir)
    assert status["state"] == "interrupted" and status["signal"] == ("SIGINT" if ctrl_c else "SIGTERM"), status
    assert status["step"] is not None and status["checkpoint_step"] == status["step"] < 200  # saved where it stopped


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl(PR_SET_PDEATHSIG) is Linux's")
def test_a_worker_ends_when_the_process_that_started_it_is_killed(tmp_path):
    """A sweep killed outright (SIGKILL) left its workers training, and the re-run trained the same run
    beside them; the study's evaluation processes were left behind too (linscale.processes)."""
    child = ("import sys, time; from linscale.processes import end_with_parent; "
             "assert end_with_parent(int(sys.argv[1])); print('ready', flush=True); time.sleep(120)")
    parent = ("import os, subprocess, sys, time; "
              f"c = subprocess.Popen([sys.executable, '-c', {child!r}, str(os.getpid())], stdout=subprocess.PIPE); "
              "print(c.pid, flush=True); c.stdout.readline(); print('ready', flush=True); time.sleep(120)")
    proc = subprocess.Popen([sys.executable, "-c", parent], stdout=subprocess.PIPE, text=True, env=ENV)
    child_pid = int(proc.stdout.readline())
    assert proc.stdout.readline().strip() == "ready" and running(child_pid)
    proc.kill()
    proc.wait()
    assert ends_within(child_pid, 10)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl(PR_SET_PDEATHSIG) is Linux's")
def test_a_probes_linscale_command_ends_when_the_probe_is_killed(tmp_path):
    """A probe (benchmarks/probe_*.py) stopped with SIGTERM or killed left the `linscale train` it had
    started training, and its re-run trained the same run beside it. The child here stands in for the
    command (it records its pid and sleeps, under the command line run_cli gives it)."""
    stand_in = tmp_path / "python"
    stand_in.write_text(f"#!/bin/sh\necho $$ > {tmp_path / 'child'}\nexec sleep 120\n")
    stand_in.chmod(0o755)
    parent = (f"import sys; sys.executable = {str(stand_in)!r}\n"
              "from linscale.probes import run_cli; run_cli('train', '--preset', 'cpu')\n")
    proc = subprocess.Popen([sys.executable, "-c", parent], env=ENV)
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "child").is_file() or not (tmp_path / "child").read_text().strip():
            assert time.monotonic() < deadline and proc.poll() is None, "the probe's command did not start"
            time.sleep(0.05)
        child = int((tmp_path / "child").read_text())
        assert running(child)
    finally:
        proc.kill()
        proc.wait()
    assert ends_within(child, 10)


# How each pool of the study starts its processes: a worker prints its pid, then sleeps (as a fit or an
# evaluation in progress would go on)
POOLS = {
    "fits": "from linscale.laws.suite import fit_pool; pool = fit_pool(1)",
    "evaluation": "from linscale.eval.runner import EvalPool; pool = EvalPool(1).__enter__()",
}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl(PR_SET_PDEATHSIG) is Linux's")
@pytest.mark.parametrize("pool", sorted(POOLS))
def test_a_pool_worker_ends_when_the_study_is_killed(pool):
    """A study killed outright left its fitting processes finishing fits for minutes beside the re-run's
    (the evaluation pool's workers already ended with it)."""
    parent = (f"import os, sys, time\nif __name__ == '__main__':\n    {POOLS[pool]}\n"
              "    print(pool.submit(os.getpid).result(), flush=True); time.sleep(120)\n")
    proc = subprocess.Popen([sys.executable, "-c", parent], stdout=subprocess.PIPE, text=True, env=ENV)
    try:
        worker = int(proc.stdout.readline())
        assert running(worker)
    finally:
        proc.kill()
        proc.wait()
    assert ends_within(worker, 10)


def test_a_run_that_another_process_trains_is_not_trained_beside_it(tmp_path):
    """A worker trains a run under its folder's train.lock: one left over from a killed sweep (stopping at
    its next step) is waited for, and one that goes on is not trained beside (code 2, its log says why)."""
    from filelock import FileLock

    run_dir = tmp_path / "tnl-s1"
    run_dir.mkdir()
    code = ("import os, sys; from linscale.train.worker import serve; out = os.fdopen(os.dup(1), 'w'); "
            "serve([sys.argv[1]], lambda code, run: print(code, file=out, flush=True), {}, lock_wait_s=0.5)")
    with FileLock(str(run_dir / "train.lock")):
        done = subprocess.run([sys.executable, "-c", code, str(run_dir)], capture_output=True, text=True, env=ENV,
                              timeout=120)
    assert done.returncode == 0 and done.stdout.strip().splitlines()[-1] == "2", done
    log = (run_dir / "train.log").read_text()
    assert f"{run_dir}: another process has trained this run for 0.5 s more" in log, log


@contextlib.contextmanager
def held_by_another_process(lock_file: Path):
    """``lock_file`` held by a process of its own, as a sweep's worker or another `linscale train` holds
    the run's ``train.lock`` while it trains the run (with filelock alone: no torch to import)."""
    code = ("import sys; from filelock import FileLock; lock = FileLock(sys.argv[1]); lock.acquire(timeout=30); "
            "print('held', flush=True); sys.stdin.read()")
    proc = subprocess.Popen([sys.executable, "-c", code, str(lock_file)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        yield
    finally:
        proc.stdin.close()  # it lets go
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def tiny_run(run_dir: Path) -> Path:
    """A prepared run of the smallest shape the sweep tests train (the smoke preset's tnl, one tiny layer)."""
    from linscale.train.run import plan_runs, prepare_run

    _, specs = plan_runs("smoke", ["archs=[tnl]", "sizes={s1: {n_layer: 1, d_model: 16, n_head: 2}}",
                                   "train.tokens=5120"])
    return prepare_run(run_dir, specs[0])


@pytest.fixture
def rank_zero(monkeypatch):
    """This process as a launcher leaves rank 0 (or a process started by hand): none of the variables by
    which torchrun, Lightning's launcher, SLURM or LSF give a process its rank."""
    for name in ("RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK"):
        monkeypatch.delenv(name, raising=False)


def test_linscale_train_on_a_run_that_another_process_trains_fails_at_once(tmp_path, capsys, rank_zero):
    """`linscale train --run-dir` started by hand on a run that a sweep (or another `linscale train`)
    trains: only a sweep's worker took the run's train.lock, so both trained it, their checkpoints and
    records interleaved. It now exits 2 with one line naming the run, at once, having written nothing."""
    run_dir = tiny_run(tmp_path / "tnl-s1")
    with held_by_another_process(run_dir / "train.lock"):
        code = main(["train", "--run-dir", str(run_dir), "--no-progress", "--threads", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert err == [f"linscale: error: {run_dir}: another process trains this run (it holds {run_dir / 'train.lock'}); "
                   "wait for it to finish or stop it, then run the command again"]
    assert sorted(p.name for p in run_dir.iterdir()) == ["spec.json", "train.lock"]  # no status, no checkpoint


def test_a_runs_spec_is_not_replaced_while_another_process_trains_it(tmp_path, rank_zero):
    """A run that has computed nothing yet takes a new spec (its start failed, say), but not while a
    process trains it: that process has read the old spec, and its checkpoints would come under settings
    they do not have. prepare_run checks and writes under the run's lock: it fails at once (or after its
    wait), and takes the run once the other process lets go."""
    import linscale.train.run as run

    run_dir = tiny_run(tmp_path / "tnl-s1")
    before = (run_dir / "spec.json").read_text()
    spec = {**json.loads(before), "train": {**json.loads(before)["train"], "lr": 0.5}}
    with held_by_another_process(run_dir / "train.lock"):
        with pytest.raises(run.RunLockedError, match=f"{run_dir}: another process has trained this run for 0.2 s"):
            run.prepare_run(run_dir, spec, lock_wait_s=0.2)
        assert (run_dir / "spec.json").read_text() == before
    run.prepare_run(run_dir, spec)
    assert json.loads((run_dir / "spec.json").read_text())["train"]["lr"] == 0.5


def test_a_sweep_waits_for_a_process_that_still_trains_one_of_its_runs(tmp_path, capsys, monkeypatch, rank_zero):
    """A sweep (re)started while another process trains one of its runs (a killed sweep's worker finishing
    its step, or a `linscale train --run-dir` by hand) waits for it as its workers would; one that goes on
    past the wait stops the sweep with one line naming the run, before any run is trained."""
    import linscale.train.sweep as sweep

    monkeypatch.setattr(sweep, "RUN_LOCK_WAIT_S", 0.2)
    out = tmp_path / "out"
    run_dir = out / "runs" / "tnl-s1"
    run_dir.mkdir(parents=True)
    args = ["sweep", "--preset", "smoke", "--set", "archs=[tnl]", "--out", str(out), "--jobs", "1", "--threads", "1"]
    with held_by_another_process(run_dir / "train.lock"):
        code = main(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert err == [f"linscale: error: {run_dir}: another process has trained this run for 0.2 s more (it holds "
                   f"{run_dir / 'train.lock'}); wait for it to finish or stop it, then run the command again"]
    assert not (run_dir / "spec.json").exists() and not list(out.glob("runs/*/status.json"))


@pytest.mark.parametrize("rank", [{"LOCAL_RANK": "1"}, {"RANK": "1", "LOCAL_RANK": "1"},
                                  {"NODE_RANK": "1"},  # node 1's first process before its Trainer exists
                                  {"SLURM_PROCID": "1"}], ids=lambda rank: "+".join(rank))
def test_ranks_other_than_zero_do_not_take_the_run_lock(tmp_path, monkeypatch, rank_zero, rank):
    """The other ranks of a multi-device run run the same command line (Lightning's DDP launcher) and so
    train_run: were they to take the lock their rank 0 holds, they would wait on it (or fail at it) and
    the run would never start. Rank 0 here is another process holding the lock; training is stubbed."""
    import linscale.train.run as run

    trained = []
    monkeypatch.setattr(run, "_fit", lambda run_dir, *args: trained.append(run_dir) or "done")
    run_dir = tiny_run(tmp_path / "tnl-s1")
    with held_by_another_process(run_dir / "train.lock"):
        with pytest.raises(run.RunLockedError):  # rank 0 (no rank variables) would have taken it
            run.train_run(run_dir)
        for name, value in rank.items():
            monkeypatch.setenv(name, value)
        assert run.train_run(run_dir) == "done"
    assert trained == [run_dir]


def test_node_one_of_a_multi_node_linscale_train_does_not_take_the_folders_lock(tmp_path, monkeypatch, rank_zero):
    """`linscale train --preset` on a multi-node run: node 1's first process (NODE_RANK=1, no LOCAL_RANK
    before its Trainer exists) took Lightning's guess of rank 0 for its own, reached for the output folder's
    .sweep.lock that node 0 holds on the shared disk, and exited 3. Rank 0 alone takes it and writes the
    results table; training is stubbed."""
    import linscale.train.run as run

    monkeypatch.setattr(run, "train_run", lambda *args, **kwargs: "done")
    out = tmp_path / "out"
    out.mkdir()
    args = ["train", "--preset", "smoke", "--arch", "tnl", "--size", "s1", "--out", str(out), "--no-progress",
            "--threads", "1"]
    with held_by_another_process(out / ".sweep.lock"):
        assert main(args) == 3  # rank 0: another sweep writes here
        monkeypatch.setenv("NODE_RANK", "1")  # node 1 of two (on one node, NODE_RANK=1 is refused: a stale variable)
        assert main([*args, "--num-nodes", "2"]) == 0
    assert not (out / "results.parquet").exists()


def test_a_process_that_holds_a_run_can_train_it_and_lets_go_after(tmp_path, monkeypatch, rank_zero):
    """The run lock is one object per run in a process (filelock is re-entrant per lock object only): a
    caller holding the run (run_lock) trains it with train_run instead of finding it held by itself."""
    import linscale.train.run as run

    monkeypatch.setattr(run, "_fit", lambda *args: "done")
    run_dir = tiny_run(tmp_path / "tnl-s1")
    with run.run_lock(run_dir):
        assert run.train_run(run_dir) == "done"
    with held_by_another_process(run_dir / "train.lock"):  # let go of: another process takes it at once
        pass


def test_ddp_on_two_cpu_processes_matches_one_process(tmp_path):
    # The stand-in data module gives rank r of W the r-th slice of each global batch, so both runs see
    # exactly the same global batches (linscale.data draws each rank's batches independently instead).
    common = ["train", "--preset", "smoke", "--arch", "tnl", "--size", "s2", "--no-progress", "--accelerator",
              "cpu", "--threads", "1", "--set", "train.tokens=5120", "--set", "train.checkpoints=100",  # every step
              "--set", "data={factory: train_standin:build}", "--set", "train.val_batches=null"]
    assert main([*common, "--out", str(tmp_path / "one")]) == 0  # in this process: one start-up fewer
    two = linscale(*common, "--out", tmp_path / "two", "--devices", "2", "--strategy", "ddp")
    assert two.returncode == 0, two.stderr[-3000:]
    a = read_records(tmp_path / "one" / "runs" / "tnl-s2")
    b = read_records(tmp_path / "two" / "runs" / "tnl-s2")
    assert [r["step"] for r in a] == [r["step"] for r in b] == list(range(1, 21))
    for ra, rb in zip(a, b):
        assert abs(ra["train_loss"] - rb["train_loss"]) < 1e-4, (ra["step"], ra["train_loss"], rb["train_loss"])
        assert abs(ra["val_loss"] - rb["val_loss"]) < 1e-4, (ra["step"], ra["val_loss"], rb["val_loss"])
    assert a[-1]["train_loss"] < a[0]["train_loss"] - 0.05
    assert read_results(tmp_path / "two" / "results.parquet")["step"].tolist() == list(range(1, 21))


def test_fsdp_over_two_cpu_ranks_matches_one_process_and_resumes_after_sigterm(tmp_path):
    """The paper preset's strategy, FSDP, fully sharded over two ranks on a CPU (gloo, through
    ``LINSCALE_FSDP_ON_CPU=1``: Lightning runs FSDP only on GPUs, and CI has none): global-norm gradient
    clipping (a small limit, so that it acts every step and a per-shard norm would change the losses),
    gradient accumulation, validation through the root module's hooks, full-state-dict checkpoints, a stop on SIGTERM and a
    resume. Its records equal one plain process's (the same global batches) to fp32 tolerance. Each of
    these broke before: clipping on the first GPU run (Lightning refuses norm clipping under FSDP),
    validation and checkpoints only once two ranks shard the parameters."""
    common = ["train", "--preset", "smoke", "--arch", "tnl", "--size", "s2", "--no-progress", "--accelerator",
              "cpu", "--threads", "1", "--set", "train.tokens=5120", "--set", "train.checkpoints=100",  # every step
              "--set", "data={factory: train_standin:build}", "--set", "train.val_batches=null",
              "--set", "train.grad_clip=0.05"]
    # gradient accumulation, two micro-batches a step in both: one process takes each global micro-batch
    # of 4 rows whole, each of the two ranks takes its half (the stand-in data module's slicing)
    assert main([*common, "--set", "train.micro_batch_size=4", "--out", str(tmp_path / "one")]) == 0
    fsdp = [sys.executable, "-m", "linscale", *common, "--set", "train.micro_batch_size=2",
            "--out", str(tmp_path / "two"), "--devices", "2", "--strategy", "fsdp"]
    env = {**ENV, "LINSCALE_FSDP_ON_CPU": "1"}
    run_dir = tmp_path / "two" / "runs" / "tnl-s2"
    proc = subprocess.Popen(fsdp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if (run_dir / "records.json").exists() and len(read_records(run_dir)) >= 5:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)  # to rank 0, the launching process: every rank stops at the step's end
    stderr = proc.communicate(timeout=120)[1]
    status = read_status(run_dir)
    assert status["state"] == "interrupted", stderr[-3000:]
    stopped = status["step"]
    assert 5 <= stopped < 20
    again = subprocess.run(fsdp, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert read_status(run_dir)["resumed_from"] == [stopped]
    a, b = read_records(tmp_path / "one" / "runs" / "tnl-s2"), read_records(run_dir)
    assert [r["step"] for r in a] == [r["step"] for r in b] == list(range(1, 21))
    for ra, rb in zip(a, b):
        assert abs(ra["train_loss"] - rb["train_loss"]) < 1e-5, (ra["step"], ra["train_loss"], rb["train_loss"])
        assert abs(ra["val_loss"] - rb["val_loss"]) < 1e-5, (ra["step"], ra["val_loss"], rb["val_loss"])
    assert a[-1]["train_loss"] < a[0]["train_loss"] - 0.05
    # the exported model (gathered from the shards) is the plain run's, loadable as any export
    from linscale.models.checkpoint import load_checkpoint

    plain, _ = load_checkpoint(tmp_path / "one" / "runs" / "tnl-s2" / "export" / "step=20")
    sharded, meta = load_checkpoint(run_dir / "export" / "step=20")
    assert meta["step"] == 20 and plain.state_dict().keys() == sharded.state_dict().keys()
    for name, weight in plain.state_dict().items():
        assert torch.allclose(weight, sharded.state_dict()[name], atol=1e-5), name


@pytest.mark.parametrize("arch", ["cosformer2", "hgrn2"])
def test_fp32_modules_train_under_the_paper_presets_precision_and_strategy(tmp_path, arch):
    """FSDP under bf16-mixed, as the paper preset trains, with linscale's own mixed precision
    (train.run.fsdp_mixed_precision): cosFormer2's attention wrapped apart in fp32 inside each block's
    unit, HGRN2's lower-bound table apart in fp32 inside the root's (its forward runs within the root's),
    the rest gathered in bf16, gradients reduced in fp32. Over two CPU ranks (gloo; Lightning's autocast is
    CUDA's, so the bf16 units compute in bf16 outright): clipping, a checkpoint at every step and the
    exports go through the nested units, the loss falls, and Γ trains through its unit. The exports are
    gathered in fp32 whatever the units computed in, so this guards the path; the dtypes in the forward
    are test_train.py's to check (test_fsdp_reduces_in_fp32_and_keeps_angles_and_lower_bounds_fp32)."""
    from linscale.models.checkpoint import load_checkpoint

    env = {**ENV, "LINSCALE_FSDP_ON_CPU": "1"}
    args = [sys.executable, "-m", "linscale", "train", "--preset", "smoke", "--arch", arch, "--size", "s2",
            "--no-progress", "--accelerator", "cpu", "--threads", "1", "--set", "train.tokens=5120",
            "--set", "train.checkpoints=100", "--set", "data={factory: train_standin:build}",
            "--set", "train.val_batches=null", "--set", "train.grad_clip=0.05", "--set", "train.precision=bf16-mixed",
            "--set", "train.micro_batch_size=2", "--devices", "2", "--strategy", "fsdp", "--out", str(tmp_path)]
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    run_dir = tmp_path / "runs" / f"{arch}-s2"
    records = read_records(run_dir)
    assert read_status(run_dir)["state"] == "done" and [r["step"] for r in records] == list(range(1, 21))
    assert records[-1]["train_loss"] < records[0]["train_loss"] - 0.2
    model, _ = load_checkpoint(run_dir / "export" / "step=20")
    if arch == "hgrn2":
        assert model.lower_bounds.gamma.abs().max() > 0  # zero-initialised: it trained


def test_submitit_local_sweep_goes_on_after_a_divergence(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", ENV["PYTHONPATH"])
    preset = {"name": "mixed", "archs": ["tnl"], "model": {"chunk_size": 16, "ffn_multiple_of": 16},
              "sizes": {"ok": {"n_layer": 1, "d_model": 16, "n_head": 2},
                        "bad": {"n_layer": 1, "d_model": 16, "n_head": 2, "init_std": 1e30}},
              "data": {"factory": "train_standin:build"},
              "train": {"seq_len": 32, "batch_size": 8, "tokens": 8 * 32 * 16, "lr": 3e-3, "checkpoints": 4,
                        "exports": 1}}
    lines = []
    result = run_sweep(preset, out=tmp_path, jobs=2, executor="submitit-local", threads=1, echo=lines.append)
    assert result.states == {"tnl-ok": "done", "tnl-bad": "diverged"}, lines
    table = read_results(tmp_path / "results.parquet")
    assert table.groupby("run_id")["diverged"].any().to_dict() == {"tnl-bad": True, "tnl-ok": False}
    assert len(table[table.run_id == "tnl-ok"]) == 4 and any((tmp_path / "submitit").iterdir())


def test_a_submitit_job_is_requeued_when_its_time_runs_out(tmp_path):
    """submitit requeues a job signalled ahead of its time limit only when the submitted callable has a
    ``checkpoint`` method; train_run itself was marked failed ("timed-out and not checkpointable"). The
    requeued call is the same run folder with the same options: train_run resumes it from its checkpoint.
    (Seen end to end with submitit's local executor and one-minute jobs: a run finished "resumed from
    step 6437" after its first job ran out.)"""
    from submitit.helpers import DelayedSubmission

    from linscale.train import sweep

    submitted = []

    class Executor:
        def submit(self, function, *args, **kwargs):
            submitted.append((function, args, kwargs))

    sweep._SubmititRun(Executor(), tmp_path / "tnl-s1", threads=2, execution={"accelerator": "cpu"})
    (job, args, kwargs), = submitted
    assert isinstance(job, sweep.TrainJob) and args == (str(tmp_path / "tnl-s1"),)
    assert kwargs == {"threads": 2, "accelerator": "cpu"}
    again = job.checkpoint(*args, **kwargs)
    assert isinstance(again, DelayedSubmission) and again.function is job
    assert (again.args, again.kwargs) == (args, kwargs)


def test_local_workers_survive_a_killed_worker(tmp_path, monkeypatch):
    """A sweep trains its runs in reusable worker processes (linscale.train.worker): a worker killed
    mid-run fails only that run, a fresh worker takes the rest, and the next sweep resumes the killed run.
    (A run whose settings cannot train, such as a vocabulary smaller than the data's, no longer reaches a
    worker: the sweep checks every run before it launches any, tests/test_train_inputs.py.)"""
    import threading

    from linscale.train import sweep as sweep_module

    monkeypatch.setenv("PYTHONPATH", ENV["PYTHONPATH"])
    preset = {"name": "workers", "archs": ["tnl"], "model": {"chunk_size": 16, "ffn_multiple_of": 16},
              "sizes": {"a": {"n_layer": 1, "d_model": 16, "n_head": 2},
                        "b": {"n_layer": 1, "d_model": 16, "n_head": 2, "init_std": 0.03}},
              "data": {"factory": "train_standin:build"},
              "train": {"seq_len": 32, "batch_size": 8, "tokens": 8 * 32 * 100, "lr": 3e-3, "checkpoints": 10,
                        "exports": 1, "save_every_minutes": 1e-3}}
    started, worker_class = [], sweep_module._Worker

    class CountedWorker(worker_class):
        def __init__(self, *args):
            started.append(1)
            super().__init__(*args)

    monkeypatch.setattr(sweep_module, "_Worker", CountedWorker)
    lines, result = [], {}
    with sweep_module.WorkerPool(1, threads=1) as pool:
        sweeper = threading.Thread(target=lambda: result.update(r=sweep_module.run_sweep(
            preset, out=tmp_path, jobs=1, echo=lines.append, poll_s=0.05, pool=pool)))
        sweeper.start()
        victim, deadline = tmp_path / "runs" / "tnl-a", time.monotonic() + 240
        while time.monotonic() < deadline and sweeper.is_alive():  # kill the worker once tnl-a is mid-run
            if (victim / "checkpoints" / "last.ckpt").exists() and len(read_records(victim)) >= 5:
                pool.workers[0].proc.kill()
                break
            time.sleep(0.02)
        sweeper.join(timeout=300)
    states = result["r"].states
    assert states["tnl-a"] == "failed" and states["tnl-b"] == "done", lines
    assert len(started) == 2  # a in the first worker; b in a fresh one after the kill
    again = run_sweep(preset, out=tmp_path, jobs=1, echo=lines.append)
    assert again.states == {"tnl-a": "done", "tnl-b": "done"}, lines
    assert read_status(victim)["resumed_from"], "the killed run started over instead of resuming"
    per_run = len(TrainSettings.from_dict(preset["train"]).checkpoint_steps())
    assert len(read_results(tmp_path / "results.parquet")) == 2 * per_run  # no duplicate rows from the restart


def test_a_free_slot_takes_the_next_run_at_once_and_idle_time_is_reported(tmp_path, monkeypatch):
    """A worker's answer wakes the sweep: the next run starts when the last one ends, not at the next
    poll. With one slot and a 60 s poll, three tiny runs would take over 3 minutes of mostly idle slot if
    the sweep waited for its polls; and the sweep's idle fraction says how much of its slots' time no run
    was training."""
    from linscale.train.sweep import idle_fraction

    assert idle_fraction(busy_s=150, jobs=2, span_s=100) == 0.25 and idle_fraction(0, 2, 0) == 0.0
    monkeypatch.setenv("PYTHONPATH", ENV["PYTHONPATH"])
    preset = {"name": "wake", "archs": ["tnl"], "model": {"chunk_size": 16, "ffn_multiple_of": 16},
              "sizes": {name: {"n_layer": 1, "d_model": 16, "n_head": 2, "init_std": std}
                        for name, std in (("a", 0.02), ("b", 0.03), ("c", 0.04))},
              "data": {"factory": "train_standin:build"},
              "train": {"seq_len": 32, "batch_size": 8, "tokens": 8 * 32 * 40, "lr": 3e-3, "checkpoints": 3,
                        "exports": 1}}
    lines = []
    result = run_sweep(preset, out=tmp_path, jobs=1, threads=1, echo=lines.append, poll_s=60)
    assert set(result.states.values()) == {"done"}, lines
    assert 0 < result.busy_s <= result.span_s < 150, (result.busy_s, result.span_s)
    assert result.jobs == 1 and result.idle_fraction < 0.5
    assert any(line.startswith("slots: 1 x") and "idle" in line for line in lines), lines


def test_several_sweeps_share_one_schedule_longest_first(tmp_path, monkeypatch):
    """run_sweeps: the runs of several sweeps in one queue on the same slots, longest first over all of
    them (one sweep after another left a slot idle at the end of each), each sweep keeping its own folder,
    table and states, returned in the order given."""
    from linscale.train import sweep as sweep_module

    monkeypatch.setenv("PYTHONPATH", ENV["PYTHONPATH"])
    preset = scheduled_preset  # one run per size, `steps` optimiser steps each (defined below)

    started = []
    start = sweep_module.WorkerPool.start
    monkeypatch.setattr(sweep_module.WorkerPool, "start",
                        lambda pool, run_dir: started.append(f"{run_dir.parent.parent.name}/{run_dir.name}")
                        or start(pool, run_dir))
    lines = []
    one, two = tmp_path / "one", tmp_path / "two"
    results = sweep_module.run_sweeps([(preset("one", {"a": 20}), one), (preset("two", {"b": 60, "c": 40}), two)],
                                      jobs=2, threads=1, echo=lines.append)
    assert started == ["two/tnl-b", "two/tnl-c", "one/tnl-a"], lines  # by cost, across the sweeps
    assert [r.out for r in results] == [one, two]
    assert results[0].states == {"tnl-a": "done"} and results[1].states == {"tnl-b": "done", "tnl-c": "done"}
    assert set(read_results(one / "results.parquet")["run_id"]) == {"tnl-a"}
    assert set(read_results(two / "results.parquet")["run_id"]) == {"tnl-b", "tnl-c"}
    assert results[0].span_s == results[1].span_s > 0  # one schedule, one span
    assert sum(line.startswith("slots: 2 x") for line in lines) == 1, lines
    with pytest.raises(ConfigError, match="share an output folder"):
        sweep_module.run_sweeps([(preset("one", {"a": 20}), one), (preset("one", {"a": 20}), one)], jobs=1)
    # another preset's folder (the smoke sweep aimed at smoke's aspect ablation) is refused before any write;
    # it added its runs to that folder's table and replaced its preset.yaml
    before = {p: p.read_bytes() for p in one.rglob("*") if p.is_file()}
    with pytest.raises(ConfigError, match=f"{one}: holds the sweep of preset 'one' .*, not of 'two'"):
        sweep_module.run_sweeps([(preset("two", {"d": 20}), one)], jobs=1)
    assert {p: p.read_bytes() for p in one.rglob("*") if p.is_file()} == before


def test_training_processes_get_the_pinned_code_paths_unless_the_environment_sets_its_own(monkeypatch):
    from linscale.train import sweep
    from linscale.train.code_paths import pinned_code_paths

    for key in ("ATEN_CPU_CAPABILITY", "MKL_CBWR"):
        monkeypatch.delenv(key, raising=False)
    pins = pinned_code_paths()
    capabilities = torch.cpu.get_capabilities()
    if capabilities.get("architecture") == "x86_64" and capabilities.get("avx2") and capabilities.get("fma3"):
        assert {k: pins[k] for k in ("ATEN_CPU_CAPABILITY", "MKL_CBWR")} == {"ATEN_CPU_CAPABILITY": "avx2",
                                                                           "MKL_CBWR": "AVX2"}  # this project's machines
    else:
        assert pins == {}
    options, env = sweep._child_options(1, {})
    assert options == ["--threads", "1"] and env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "1"
    assert {k: env[k] for k in pins} == pins
    monkeypatch.setenv("MKL_CBWR", "COMPATIBLE")  # the reader's own choice wins
    assert sweep._child_options(None, {})[1]["MKL_CBWR"] == "COMPATIBLE"


def test_a_run_trained_alone_runs_the_code_paths_of_a_sweeps_worker(tmp_path):
    """`linscale train` pins its own CPU code paths before it imports torch, as a sweep pins its workers',
    so one run trained alone gives the sweep's bits (on an AVX-512 EPYC a lone run once ran torch's AVX-512
    kernels and ended 0.12% off the published loss); the finished run's status.json says what ran."""
    from linscale.train.code_paths import pinned_code_paths

    env = {k: v for k, v in ENV.items() if k not in ("ATEN_CPU_CAPABILITY", "MKL_CBWR")}
    command = [sys.executable, "-m", "linscale", "train", "--preset", "smoke", "--arch", "tnl", "--size", "s1",
               "--out", str(tmp_path), "--no-progress", "--threads", "1", "--set", "train.tokens=2048",
               "--set", "data={factory: train_standin:build}", "--set", "train.val_batches=null"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    ran = read_status(tmp_path / "runs" / "tnl-s1")["cpu_code_path"]
    pins = pinned_code_paths()
    if pins:
        assert (ran["aten"], ran["mkl_cbwr"], ran["openblas"]) == ("AVX2", "AVX2", ["Haswell"])
        assert not any("512" in target or target == "X86_V4" for target in ran["numpy"]), ran["numpy"]
    else:
        assert ran["aten"] == torch.backends.cpu.get_cpu_capability() and ran["mkl_cbwr"] is None


def test_numpy_pins_name_only_targets_this_numpy_dispatches():
    """NPY_DISABLE_CPU_FEATURES names numpy's dispatch targets above AVX2; numpy warns about a name it does
    not dispatch, and the names change between releases (numpy 2.4 renamed them to x86-64 levels), so a
    new numpy in constraints.txt needs its own row in NUMPY_ABOVE_AVX2."""
    from numpy._core._multiarray_umath import __cpu_dispatch__

    from linscale.train.code_paths import NUMPY_ABOVE_AVX2, _numpy_release

    release = _numpy_release()
    assert release in NUMPY_ABOVE_AVX2, f"numpy {release}: no row in NUMPY_ABOVE_AVX2"
    names = NUMPY_ABOVE_AVX2[release].split()
    assert set(names) <= set(__cpu_dispatch__), (names, __cpu_dispatch__)
    above = [t for t in __cpu_dispatch__ if "512" in t or t.startswith("X86_V4")]
    assert set(above) <= set(names), f"numpy {release} dispatches {above}; the pins leave some on"


def test_every_command_runs_numpys_and_atens_pinned_code_paths(tmp_path):
    """The command line pins numpy's dispatch and ATen's kernels before either is imported, for every
    command (the fits' optimiser and the evaluation compute other last bits without them on an AVX-512
    CPU), and the processes it starts inherit the pins."""
    from linscale.train.code_paths import numerics_pins

    keys = ("ATEN_CPU_CAPABILITY", "NPY_DISABLE_CPU_FEATURES", "OPENBLAS_CORETYPE")
    script = ("import json, os, sys\nfrom linscale.cli import main\nmain(['accounting', '--preset', 'smoke'])\n"
              "import scipy.linalg\nfrom threadpoolctl import threadpool_info\n"
              "from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__\n"
              f"print(json.dumps({{'env': {{k: os.environ.get(k) for k in {keys!r}}}, "
              "'numpy': [t for t in __cpu_dispatch__ if __cpu_features__[t]], "
              "'openblas': [i.get('architecture') for i in threadpool_info() if i.get('internal_api') == 'openblas']}))")
    env = {k: v for k, v in ENV.items() if k not in keys}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    pins = numerics_pins()
    assert {k: v for k, v in seen["env"].items() if v is not None} == pins
    if pins:
        assert not any("512" in target or target == "X86_V4" for target in seen["numpy"]), seen["numpy"]
        # numpy's and scipy's OpenBLAS (the fits' linear algebra) on their AVX2 kernels, whatever the CPU
        assert seen["openblas"] and set(seen["openblas"]) == {"Haswell"}, seen["openblas"]


HALF_A_RESULT = """
import os, struct, sys, time, multiprocessing
from concurrent.futures import ProcessPoolExecutor
from linscale.processes import release_pool_pipes

if __name__ == "__main__":
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    pool.submit(os.getpid).result()
    os.write(pool._result_queue._writer.fileno(), struct.pack("!i", 1000) + b"half")  # a result cut off
    time.sleep(0.5)  # the pool's thread is reading it
    for process in pool._processes.values():
        process.terminate()
        process.join()
    if sys.argv[1] == "release":
        release_pool_pipes(pool)
    pool.shutdown(wait=True)
    print("ended", flush=True)
"""


@pytest.mark.parametrize("release", [True, False])
def test_a_pool_whose_worker_ended_mid_result_still_shuts_down(release):
    """A Ctrl-C'd `linscale eval` printed its line and hung (one run in seven): a worker ended while it wrote
    its result leaves half a message in the result pipe, and the pool's thread waits for the rest, which
    the interpreter's exit (or the pool's shutdown) then waits for. Without the fix the same cut-off
    message hangs the shutdown (the control); with it the shutdown ends."""
    try:
        done = subprocess.run([sys.executable, "-c", HALF_A_RESULT, "release" if release else "keep"], env=ENV,
                              capture_output=True, text=True, timeout=30 if release else 8)
    except subprocess.TimeoutExpired:
        assert not release, "the pool's shutdown hung although the result pipe was released"
        return
    assert release and done.returncode == 0 and done.stdout.strip() == "ended", done


# ----------------------------------------------------------------------------- the schedule, without training


class ScriptedPool:
    """Stands in for a WorkerPool (``run_sweeps(pool=...)``): it trains nothing. A run it starts ends at the
    sweep's second poll with the exit code and final state ``outcomes`` give its folder's name (default: 0,
    done, written to status.json as a run does); it records the order runs started and how many ran at once."""

    def __init__(self, outcomes: dict | None = None):
        import threading

        self.wake = threading.Event()  # never set: the sweep polls every poll_s
        self.outcomes, self.started, self.running, self.most = outcomes or {}, [], set(), 0

    def start(self, run_dir: Path) -> "ScriptedRun":
        self.started.append(f"{run_dir.parent.parent.name}/{run_dir.name}")
        self.running.add(run_dir)
        self.most = max(self.most, len(self.running))
        return ScriptedRun(self, run_dir)


class ScriptedRun:
    def __init__(self, pool: ScriptedPool, run_dir: Path):
        self.pool, self.run_dir, self.polls = pool, run_dir, 0

    def poll(self) -> int | None:
        self.polls += 1
        if self.polls < 2:
            return None
        code, state = self.pool.outcomes.get(self.run_dir.name, (0, "done"))
        (self.run_dir / "status.json").write_text(json.dumps({"state": state}))
        self.pool.running.discard(self.run_dir)
        return code

    def cancel(self) -> None:
        pass


def scheduled_preset(name: str, steps: dict) -> dict:
    """One tnl run per size, ``steps`` optimiser steps each (so its training FLOPs, the schedule's cost)."""
    return {"name": name, "archs": ["tnl"], "model": {"chunk_size": 16, "ffn_multiple_of": 16},
            "sizes": {size: {"n_layer": 1, "d_model": 16, "n_head": 2, "train": {"tokens": 8 * 32 * n}}
                      for size, n in steps.items()},
            "data": {"factory": "train_standin:build"},
            "train": {"seq_len": 32, "batch_size": 8, "tokens": 8 * 32 * 10, "lr": 3e-3, "checkpoints": 3,
                      "exports": 1}}


def test_the_schedule_runs_longest_first_on_its_slots_and_a_rerun_starts_only_the_unfinished_runs(tmp_path):
    """What run_sweeps decides, with a stand-in pool (nothing trains, under a second): the pending runs of
    all its sweeps start longest first (the costliest run last would leave the other slots idle at the end),
    never more at once than ``jobs`` (each slot's process has its share of the cores), and a run whose
    worker died fails, whatever its status.json last said. A second sweep skips the runs that finished,
    diverged ones included (a divergence is a result, which the table records), and starts the failed
    one again; the folders' locks are let go of, so that it can take them."""
    from filelock import FileLock

    from linscale.train import sweep

    sweeps = [(scheduled_preset("one", {"a": 20}), tmp_path / "one"),
              (scheduled_preset("two", {"b": 60, "c": 40, "d": 30}), tmp_path / "two")]
    # the worker training tnl-c is killed (its run's status still says running); tnl-d diverges
    pool, lines = ScriptedPool({"tnl-c": (-9, "running"), "tnl-d": (0, "diverged")}), []
    one, two = sweep.run_sweeps(sweeps, jobs=2, threads=1, echo=lines.append, poll_s=0.01, pool=pool)
    assert pool.started == ["two/tnl-b", "two/tnl-c", "two/tnl-d", "one/tnl-a"], lines  # by cost, across sweeps
    assert pool.most == 2, lines
    assert one.states == {"tnl-a": "done"} and two.states == {"tnl-b": "done", "tnl-c": "failed", "tnl-d": "diverged"}
    assert two.failed == ["tnl-c"] and one.failed == []
    assert [line for line in lines if line.startswith("[")][-1] == "[3/4] tnl-a (one) done", lines  # finished: 3
    # one schedule: its span holds every run, and its two slots can have been busy for at most twice that
    assert one.span_s == two.span_s > 0 and 0 < one.busy_s + two.busy_s <= 2 * one.span_s
    for out in (tmp_path / "one", tmp_path / "two"):
        lock = FileLock(str(out / ".sweep.lock"))
        lock.acquire(timeout=0)  # let go of: another lock object takes it at once
        lock.release()

    pool, lines = ScriptedPool(), []
    one, two = sweep.run_sweeps(sweeps, jobs=2, threads=1, echo=lines.append, poll_s=0.01, pool=pool)
    assert pool.started == ["two/tnl-c"], lines
    assert two.states == {"tnl-b": "done", "tnl-c": "done", "tnl-d": "diverged"} and one.states == {"tnl-a": "done"}
    assert any(line.startswith("sweep two: 3 runs, 2 already finished, 1 to run") for line in lines), lines


def test_a_worker_pool_reuses_its_idle_workers_never_exceeds_its_size_and_stops_only_busy_ones(monkeypatch):
    """WorkerPool with stand-in processes: an idle worker takes the next run (a fresh one would import torch
    and Lightning again), a pool whose workers are all busy refuses another run rather than oversubscribe
    the cores, a worker that ended without answering failed its run even with exit status 0, and closing
    the pool sends SIGTERM to the busy workers once (a second would stop the run without its checkpoint)
    and to the idle ones not at all (they end when their input closes)."""
    import queue

    from linscale.train import sweep

    class Process:
        def __init__(self):
            self.returncode, self.terminated = None, 0
            self.stdin = self

        def poll(self):
            return self.returncode

        def terminate(self):
            self.terminated += 1

        def write(self, text):
            pass

        def flush(self):
            pass

        def close(self):
            pass

        def wait(self, timeout=None):
            return self.returncode

    made = []

    class StandInWorker(sweep._Worker):
        def __init__(self, threads, execution, wake=None):  # no process: answers come from the test
            self.proc, self.answers, self.current, self.wake = Process(), queue.Queue(), None, wake
            made.append(self)

    monkeypatch.setattr(sweep, "_Worker", StandInWorker)
    pool = sweep.WorkerPool(2, threads=1)
    first, second = pool.start(Path("a")), pool.start(Path("b"))
    assert made == [first, second] and first.current == "a"
    with pytest.raises(RuntimeError, match="all 2 workers are busy"):
        pool.start(Path("c"))
    first.answers.put((0, "a"))
    assert first.poll() == 0 and first.current is None
    assert pool.start(Path("c")) is first and len(made) == 2  # the idle worker, not a third process
    second.proc.returncode = 0  # it ended mid-run without a word
    assert second.poll() == 1 and second.current is None
    assert pool.start(Path("d")) is not second and len(made) == 3  # a fresh worker in the dead one's place
    idle = made[2]
    idle.answers.put((0, "d"))
    assert idle.poll() == 0
    pool.close()  # first still trains c
    assert (first.proc.terminated, idle.proc.terminated) == (1, 0) and pool.workers == []
    first.cancel()  # a stopped sweep cancels its runs too (before or after the close): no second SIGTERM
    assert first.proc.terminated == 1


def test_more_jobs_than_cores_still_give_each_training_process_a_thread(monkeypatch):
    """default_threads shares the cores out among the jobs, but never gives a process none: with more jobs
    than cores, 0 threads would leave torch's own default (every core, per process) in force."""
    from linscale.train.sweep import default_threads

    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    assert [default_threads(jobs) for jobs in (1, 2, 3, 4, 8)] == [4, 2, 1, 1, 1]


def test_taking_a_run_removes_what_writers_killed_outright_left_in_its_folders(tmp_path, capsys, rank_zero):
    """A process killed outright (SIGKILL at the end of a cluster's grace period, mid-save) leaves its atomic
    write's temporary beside the file, as large as a resume checkpoint, and nothing removed it: the process that
    next takes the run's lock (no write of the run is under way then) removes them, in the run folder, its
    checkpoints and its exports, and says so; other hidden files stay, and a nested take removes nothing."""
    from linscale.train.run import run_lock

    run_dir = tmp_path / "tnl-s1"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "export").mkdir()
    writer = ("import sys, time; from linscale.atomic import atomic_write; "
              "atomic_write(sys.argv[1], lambda tmp: (open(tmp, 'w').write('x' * 1000), print('writing', flush=True), "
              "time.sleep(60)))")
    for target in (run_dir / "checkpoints" / "last.ckpt", run_dir / "status.json"):
        proc = subprocess.Popen([sys.executable, "-c", writer, str(target)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline() == "writing\n"
        proc.kill()  # SIGKILL: no cleanup of its own runs
        proc.wait()
        proc.stdout.close()
    export_left = Path(tempfile.mkdtemp(prefix=".step=4.", dir=run_dir / "export"))  # as save_checkpoint names it
    (export_left / "model.safetensors").write_bytes(b"half")
    left = sorted(p.relative_to(run_dir) for p in run_dir.rglob(".*") if p.parent.name != export_left.name)
    assert len(left) == 3
    kept = [run_dir / ".sweep.lock", run_dir / ".notes", run_dir / "checkpoints" / "last.ckpt"]
    for path in kept:
        path.write_text("mine")
    with run_lock(run_dir):
        said = capsys.readouterr().out
        assert all(f"{run_dir}: removed {p}, left by a process killed while writing" in said for p in left), said
        assert not any((run_dir / p).exists() for p in left) and all(p.read_text() == "mine" for p in kept)
        busy = Path(tempfile.mkstemp(prefix=".records.json.", dir=run_dir)[1])  # this process's write under way
        with run_lock(run_dir):
            assert busy.exists()


def test_a_slurm_jobs_torch_threads_are_its_own_not_the_login_nodes(tmp_path, monkeypatch):
    """A SLURM sweep passed every job the login node's cores / jobs as torch threads (64 on a 64-core login
    node, in each of a GPU node's 8 ranks of 12 CPUs); the job's own task takes torch's default."""
    import shutil

    from linscale.train import sweep

    submitted = []

    class Job:
        def done(self):
            return True

        def result(self):
            return 0

    class Executor:
        def submit(self, function, run_dir, **kwargs):
            submitted.append(kwargs["threads"])
            return Job()

    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: f"/usr/bin/{name}")  # as on a login node
    monkeypatch.setattr(sweep, "make_submitit_executor", lambda *a, **k: Executor())
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    run_sweep("smoke", out=tmp_path / "slurm", executor="slurm", overrides=["archs=[tnl]"], echo=lambda *a: None,
              poll_s=0.01)
    assert submitted == [None, None]
    run_sweep("smoke", out=tmp_path / "local", executor="submitit-local", overrides=["archs=[tnl]"],
              echo=lambda *a: None, poll_s=0.01)
    assert submitted[2:] == [64, 64]  # submitit's local jobs share this machine's cores
