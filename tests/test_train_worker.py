"""The training worker process (linscale.train.worker) on its own, without training: a stand-in for
``linscale.train.run`` answers each run folder at once, so the worker's protocol with the sweep (one line
``<exit code><TAB><run folder>`` per run), its run logs and its own exit codes are checked in about a second.
test_train_sweep.py runs real workers under a sweep (minutes)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
       "OMP_NUM_THREADS": "1"}
# A worker whose runs are answered by the folder's name: done, bad input, held by another process, a crash,
# or Ctrl-C in the middle of the run (train_run's own stop is a SystemExit; a KeyboardInterrupt is not).
WORKER = """
import signal, sys, types
signal.signal(signal.SIGINT, signal.default_int_handler)  # as a shell starts it (pytest-xdist ignores SIGINT)
run = types.ModuleType("linscale.train.run")
class RunLockedError(RuntimeError):
    pass
def train_run(run_dir, **execution):
    print("execution", sorted(execution.items()))
    name = run_dir.rsplit("/", 1)[-1]
    if name == "bad":
        from linscale.config import ConfigError
        raise ConfigError("train.tokens: expected a positive integer, got 0")
    if name == "held":
        raise RunLockedError("another process trains this run")
    if name == "broken":
        raise RuntimeError("boom")
    return "done"
run.RunLockedError, run.train_run = RunLockedError, train_run
sys.modules["linscale.train.run"] = run
from linscale.train.worker import main
sys.exit(main(sys.argv[1:]))
"""


def worker(cwd: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WORKER, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV, cwd=cwd)


def test_the_worker_answers_each_run_with_its_exit_code_and_logs_it_in_the_runs_folder(tmp_path):
    """One line a run, code TAB folder (0 done, 2 bad input or a run another process holds, 1 failed), blank
    lines skipped; what a run prints (its result, its one-line error, its traceback) goes to its train.log, not
    to the protocol; every run gets the worker's execution options and the wait for a held run."""
    from linscale.train.worker import RUN_LOCK_WAIT_S

    runs = {name: tmp_path / name for name in ("good", "bad", "held", "broken")}
    for folder in runs.values():
        folder.mkdir()
    proc = worker(tmp_path, "--threads", "2")
    out, err = proc.communicate("\n".join([str(runs["good"]), "", str(runs["bad"]), str(runs["held"]),
                                           str(runs["broken"])]) + "\n", timeout=60)
    assert proc.returncode == 0, err
    assert out.splitlines() == [f"0\t{runs['good']}", f"2\t{runs['bad']}", f"2\t{runs['held']}",
                                f"1\t{runs['broken']}"]
    logs = {name: (folder / "train.log").read_text() for name, folder in runs.items()}
    for log in logs.values():
        assert f"execution [('lock_wait_s', {RUN_LOCK_WAIT_S}), ('threads', 2)]" in log, log
    assert f"{runs['good']}: done" in logs["good"]
    assert "linscale: error: train.tokens: expected a positive integer, got 0" in logs["bad"]
    assert "linscale: error: another process trains this run" in logs["held"]
    assert "Traceback" in logs["broken"] and "RuntimeError: boom" in logs["broken"]
    assert "Traceback" not in err and not (tmp_path / "train.log").exists()  # a blank line is no run folder


def test_ctrl_c_between_runs_ends_the_worker_with_130_and_a_sweep_gone_with_143(tmp_path):
    """Ctrl-C while the worker waits for its next run: exit code 130 (the sweep reports an interruption), no
    traceback. A sweep that is gone when a run ends (its answer meets a closed pipe): the worker ends
    quietly with 143 (SIGTERM's code) rather than 0, which would say it ended of its own accord."""
    (tmp_path / "good").mkdir()
    proc = worker(tmp_path)
    proc.stdin.write(f"{tmp_path / 'good'}\n")
    proc.stdin.flush()
    assert proc.stdout.readline() == f"0\t{tmp_path / 'good'}\n"  # between runs now
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    proc.stdin.close()
    proc.stdout.close()
    assert "Traceback" not in proc.stderr.read() + (tmp_path / "good" / "train.log").read_text()
    proc.stderr.close()

    gone = worker(tmp_path)
    gone.stdout.close()  # the sweep's end of the pipe
    gone.stdin.write(f"{tmp_path / 'good'}\n")
    gone.stdin.close()
    assert gone.wait(timeout=60) == 143
    assert "Traceback" not in gone.stderr.read()
    gone.stderr.close()


def test_a_worker_whose_sweep_is_already_gone_stops_at_once(tmp_path):
    """--parent names the sweep's process; one that is no longer the worker's parent (killed outright before the
    worker asked to end with it) ends the worker with SIGTERM before it trains anything."""
    (tmp_path / "good").mkdir()
    proc = worker(tmp_path, "--parent", str(os.getpid() + 10_000_000))  # no such process: not the worker's parent
    out, _ = proc.communicate(f"{tmp_path / 'good'}\n", timeout=60)
    assert proc.returncode == -signal.SIGTERM and out == ""
    assert not (tmp_path / "good" / "train.log").exists()


def test_a_run_folder_deleted_mid_sweep_fails_that_run_alone_and_says_so_on_the_console(tmp_path):
    """A run folder gone before its turn (its train.log cannot be opened): that run is answered 2 with a one-line
    error on the worker's stderr (the sweep's console), not in the previous run's log; the next run trains."""
    for name in ("good", "next"):
        (tmp_path / name).mkdir()
    proc = worker(tmp_path)
    out, err = proc.communicate("\n".join(str(tmp_path / name) for name in ("good", "gone", "next")) + "\n",
                                timeout=60)
    assert proc.returncode == 0, err
    assert out.splitlines() == [f"0\t{tmp_path / 'good'}", f"2\t{tmp_path / 'gone'}", f"0\t{tmp_path / 'next'}"]
    assert f"linscale: error: {tmp_path / 'gone'}: cannot write its train.log (No such file or directory)" in err
    assert "Traceback" not in err
    assert "gone" not in (tmp_path / "good" / "train.log").read_text()
    assert f"{tmp_path / 'next'}: done" in (tmp_path / "next" / "train.log").read_text()
