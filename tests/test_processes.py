"""linscale.processes: a worker asks for the signal it ends with when its parent dies, and a stopped pool
lets go of its pipes. Sweeps and pools of real workers are in test_train_sweep.py; these take a second."""
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest

from linscale.processes import Terminated, raise_terminated, release_pool_pipes

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl(PR_SET_PDEATHSIG) is Linux's")

# A worker asking to end with its parent by SIGUSR1, which it records: "early" asks while the parent lives (the
# kernel sends the signal when the parent dies), "late" once the parent is gone, "alive" while it goes on living
WORKER = """
import os, signal, sys, time
from pathlib import Path
from linscale.processes import end_with_parent
parent, out, when = int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
signal.signal(signal.SIGUSR1, lambda signum, frame: (out.write_text(signal.Signals(signum).name), sys.exit(0)))
while when == "late" and os.getppid() == parent:
    time.sleep(0.01)
assert end_with_parent(parent, signal.SIGUSR1)
print("asked", flush=True)
time.sleep(0.5 if when == "alive" else 10)
out.write_text("no signal")
"""
PARENT = """
import os, subprocess, sys
worker = subprocess.Popen([sys.executable, "-c", sys.argv[1], str(os.getpid()), sys.argv[2], sys.argv[3]],
                          stdout=subprocess.PIPE if sys.argv[3] == "early" else subprocess.DEVNULL, text=True)
if sys.argv[3] == "early":
    assert worker.stdout.readline().strip() == "asked"
"""


def outcome(out, within):
    deadline = time.monotonic() + within
    while not (out.is_file() and out.read_text()) and time.monotonic() < deadline:
        time.sleep(0.02)
    return out.read_text() if out.is_file() else "nothing"


@linux_only
@pytest.mark.parametrize("when", ["early", "late"])
def test_a_worker_gets_the_asked_signal_when_its_parent_dies_before_or_after_it_asks(tmp_path, when):
    """The signal asked for, not SIGTERM whatever was asked; and a parent already dead when the worker asks
    (the kernel will never send it then) sends it at once, else the worker went on alone."""
    out = tmp_path / "signal"
    subprocess.run([sys.executable, "-c", PARENT, WORKER, str(out), when], check=True, timeout=60)
    assert outcome(out, 15) == "SIGUSR1"


@linux_only
def test_a_worker_whose_parent_lives_gets_no_signal(tmp_path):
    """A worker that asks while its parent lives is not signalled for asking."""
    out = tmp_path / "signal"
    worker = subprocess.run([sys.executable, "-c", WORKER, str(os.getpid()), str(out), "alive"], check=True,
                            timeout=60, capture_output=True, text=True)
    assert worker.stdout.strip() == "asked" and outcome(out, 5) == "no signal"


def test_a_stopped_pool_lets_go_of_its_result_and_task_pipes():
    """The results pipe's writing end closed (its thread reads an end of file and ends) and the tasks queue's
    feeder not joined at exit (a study stopped during its fits hung there); an executor without these private
    attributes is passed over, and a second call does nothing more."""
    context = multiprocessing.get_context("spawn")
    reader, writer = context.Pipe(duplex=False)
    tasks = context.Queue()
    pool = SimpleNamespace(_result_queue=SimpleNamespace(_writer=writer), _call_queue=tasks)
    release_pool_pipes(pool)
    assert writer.closed and not reader.closed and tasks._joincancelled
    release_pool_pipes(pool)
    release_pool_pipes(SimpleNamespace())
    reader.close()
    tasks.close()


def test_sigterms_handler_raises_an_interrupt_told_apart_from_ctrl_c():
    """Handled where Ctrl-C is (runs save a checkpoint, pools end), yet told apart: exit 143, not 130."""
    with pytest.raises(Terminated) as raised:
        raise_terminated(signal.SIGTERM, None)
    assert isinstance(raised.value, KeyboardInterrupt)
