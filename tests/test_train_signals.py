"""Signals a cluster can trust: SIGTERM and SIGINT sent to a real `linscale train` process (and SLURM's
requeue signal under a stand-in SLURM) end it with 128 + the signal and status `interrupted`; running the
same command again resumes from the checkpoint taken at the signal and gives the uninterrupted table.
A tiny model on the fixture corpus (tests/data/tiny_text), 600 steps with gradient accumulation, records
(and their resume checkpoints) only at steps 1 and 600, so the checkpoint the rerun resumes from can only
be the one taken at the signal; only the signalled process is a separate one, the reference and the
resumed runs train in this process."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from linscale.cli import main
from linscale.train import read_results, read_status, records_equal
from linscale.train.callbacks import load_lightning_checkpoint

from helpers import ends_within

TINY_TEXT = Path(__file__).parent / "data" / "tiny_text"
STEPS = 600  # long enough that a signal sent once progress shows step 2 arrives before the end


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """(the preset file, environment, the uninterrupted run's table)."""
    root = tmp_path_factory.mktemp("signals")
    preset = {"name": "signals", "archs": ["tnl"], "model": {"chunk_size": 16, "ffn_multiple_of": 16, "max_seq_len": 16},
              "sizes": {"s1": {"n_layer": 1, "d_model": 16, "n_head": 2}},
              "data": {"source": "text", "path": str(TINY_TEXT), "vocab_size": 300, "val_tokens": 64},
              "train": {"seq_len": 16, "batch_size": 8, "micro_batch_size": 4,  # two micro-batches a step
                        "tokens": 16 * 8 * STEPS, "lr": 3e-3, "checkpoints": 2, "exports": 1,
                        "save_every_minutes": 1000}}  # resume checkpoints only at records (and at the signal)
    file = root / "signals.yaml"
    file.write_text(yaml.safe_dump(preset))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LINSCALE_CACHE": str(root / "cache")}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LINSCALE_CACHE", env["LINSCALE_CACHE"])
        assert main(arguments(file, root / "ref", "--no-progress")) == 0
    return file, env, read_results(root / "ref" / "results.parquet")


def arguments(preset: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--preset", str(preset), "--arch", "tnl", "--size", "s1", "--out", str(out), "--threads", "1",
            *extra]


def progress_step(run_dir: Path) -> int:
    try:
        return json.loads((run_dir / "progress.json").read_text())["step"]
    except (OSError, ValueError):
        return 0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, "requeue"])
def test_a_signal_stops_with_its_exit_code_and_the_rerun_resumes_to_the_same_table(setup, tmp_path, signum,
                                                                                      monkeypatch, capsys):
    preset, env, expected = setup
    out = tmp_path / "out"
    if signum == "requeue":  # a stand-in SLURM job: Lightning's SLURMEnvironment, and an scontrol that logs
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        (bin_dir / "scontrol").write_text(f'#!/bin/sh\necho "$@" >> {tmp_path / "scontrol.log"}\n')
        (bin_dir / "scontrol").chmod(0o755)
        env = {**env, "PATH": f"{bin_dir}{os.pathsep}{env['PATH']}", "SLURM_NTASKS": "1", "SLURM_PROCID": "0",
               "SLURM_LOCALID": "0", "SLURM_NODEID": "0", "SLURM_JOB_ID": "4242", "SLURM_JOB_NAME": "linscale",
               "SLURM_NODELIST": "localhost"}
        signum = signal.SIGUSR1  # Lightning's SLURMEnvironment.requeue_signal
    run_dir = out / "runs" / "tnl-s1"
    proc = subprocess.Popen([sys.executable, "-m", "linscale", *arguments(preset, out, "--no-progress")], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while progress_step(run_dir) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)  # until training is under way, past the record at step 1 (progress: every 2 s)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, err[-3000:]
    status = read_status(run_dir)
    assert status["state"] == "interrupted" and status["signal"] == signal.Signals(signum).name, status
    stopped = status["step"]
    assert 1 < stopped < STEPS and status["checkpoint_step"] == stopped  # a checkpoint where it stopped
    assert load_lightning_checkpoint(run_dir / "checkpoints" / "last.ckpt")["global_step"] == stopped
    assert f"interrupted by {signal.Signals(signum).name} at step {stopped} of {STEPS}" in err
    if signum == signal.SIGUSR1:
        assert (tmp_path / "scontrol.log").read_text().split() == ["requeue", "4242"]
    # the same command again (with the progress bar: steps out of the run's total, from where it resumes)
    monkeypatch.setenv("LINSCALE_CACHE", env["LINSCALE_CACHE"])
    capsys.readouterr()
    assert main(arguments(preset, out)) == 0
    shown = capsys.readouterr().out
    assert read_status(run_dir)["state"] == "done" and read_status(run_dir)["resumed_from"] == [stopped]
    assert records_equal(expected, read_results(out / "results.parquet"))
    bar = re.findall(r"steps:\s+\d+%\|[^|]*\| (\d+)/(\d+)", shown)
    assert bar and bar[0] == (str(stopped), str(STEPS)) and bar[-1] == (str(STEPS), str(STEPS)), shown[-2000:]
    assert "Epoch" not in shown and f"/{STEPS - stopped}" not in shown


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl(PR_SET_PDEATHSIG) is Linux's")
def test_a_multi_device_run_stops_with_a_checkpoint_when_its_sweep_is_killed(setup, tmp_path):
    """A sweep trains a multi-device run with `linscale train --run-dir` in a process of its own
    (linscale.train.sweep._LocalRun); a sweep killed outright left it training. It now stops as when the
    sweep cancels it: SIGTERM, at its next step, with a checkpoint. Here the sweep is a process that
    prepares the run and starts it as the sweep does."""
    preset, env, _ = setup
    run_dir = tmp_path / "runs" / "tnl-s1"
    sweep = ("import sys; from linscale.train.run import plan_runs, prepare_run; "
             "from linscale.train.sweep import _LocalRun; "
             "_, specs = plan_runs(sys.argv[1], ['archs=[tnl]']); "
             "run = _LocalRun(prepare_run(sys.argv[2], specs[0]), 1, {}); "
             "print(run.proc.pid, flush=True); run.proc.wait()")
    proc = subprocess.Popen([sys.executable, "-c", sweep, str(preset), str(run_dir)], env=env, stdout=subprocess.PIPE,
                            text=True)
    try:
        run = int(proc.stdout.readline())
        deadline = time.monotonic() + 120
        while progress_step(run_dir) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert progress_step(run_dir) >= 2, (run_dir / "train.log").read_text()[-3000:]
    finally:
        proc.kill()
        proc.wait()
    assert ends_within(run, 60)
    status = read_status(run_dir)
    assert status["state"] == "interrupted" and status["signal"] == "SIGTERM", status
    assert 1 < status["step"] < STEPS and status["checkpoint_step"] == status["step"]


SECOND_SIGNAL_WHILE_RECORDING = """
import os, signal, sys
import linscale.train.run as run
from linscale.cli import main

step_end = run.StopAtStep.on_train_batch_end
def first(self, trainer, *args):  # the first request, at step 2: a checkpoint at the step's end
    if trainer.global_step == 2 and self.received is None:
        os.kill(os.getpid(), signal.SIGTERM)
    return step_end(self, trainer, *args)
run.StopAtStep.on_train_batch_end = first

load = run.load_lightning_checkpoint
def second(*args, **kwargs):  # the second, while the stop is being recorded (it reads the checkpoint's step)
    os.kill(os.getpid(), signal.SIGTERM)
    return load(*args, **kwargs)
run.load_lightning_checkpoint = second
sys.exit(main(sys.argv[1:]))
"""


def test_a_second_signal_while_the_stop_is_recorded_leaves_the_record_whole(setup, tmp_path):
    """A second SIGTERM that arrived while a stopped run wrote its status (a sweep's SIGTERM after Ctrl-C;
    seen once in CI, in the multi-device test above) raised in the middle of it: the run was left "running"
    at step 0, with a checkpoint its status did not name, and the command said only "interrupted"."""
    preset, env, _ = setup
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-c", SECOND_SIGNAL_WHILE_RECORDING, *arguments(preset, out, "--no-progress")],
                          env=env, capture_output=True, text=True, timeout=300)
    run_dir = out / "runs" / "tnl-s1"
    status = read_status(run_dir)
    assert status["state"] == "interrupted" and status["signal"] == "SIGTERM", (status, done.stderr[-2000:])
    assert status["step"] == status["checkpoint_step"] == 2 and done.returncode == 143
    assert f"{run_dir}: interrupted by SIGTERM at step 2 of {STEPS}" in done.stderr


def test_the_same_signal_again_stops_at_once_and_another_is_the_same_request(capsys):
    """Ctrl-C reaches a sweep's worker and the sweep's SIGTERM follows: one request, still a checkpoint at the
    step's end. The same signal twice is the user insisting: at once, from the step the run had reached (it
    said "before training")."""
    from linscale.train.run import RunInterrupted, StopAtStep

    stop = StopAtStep(save=None)
    stop._seen_step = 5
    stop._note(signal.SIGINT, None)
    stop._note(signal.SIGTERM, None)  # the same request: noted, not raised
    assert stop.received == signal.SIGINT
    with pytest.raises(RunInterrupted) as again:
        stop._note(signal.SIGINT, None)
    assert again.value.signum == signal.SIGINT and again.value.step == 5 and again.value.code == 130
    assert "received SIGINT: stopping after this step with a checkpoint" in capsys.readouterr().err
