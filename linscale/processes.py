"""How linscale's processes end: workers with the process that started them, a sweep, a study or an
evaluation on SIGTERM as on Ctrl-C.

A sweep's training workers (and a multi-device run's `linscale train`), the evaluation pool's and the
fits' pool's processes are children of one linscale process.
When that process is killed outright (SIGKILL, the out-of-memory killer), nothing in it runs to stop
them: the workers went on training, and a re-run of the same command then trained the same run a second
time beside them. On Linux a child can ask the kernel for a signal when its parent dies
(``prctl(PR_SET_PDEATHSIG)``); SIGTERM stops a training run at its next step with a checkpoint, and ends
any other worker.
"""
from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def end_with_parent(parent_pid: int, signum: int = signal.SIGTERM) -> bool:
    """Ask for ``signum`` when the parent ``parent_pid`` dies; a parent already gone sends it now.
    Returns whether the request was made (False off Linux, where nothing happens)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    if os.getppid() != parent_pid:  # it died before the request: no signal will come
        os.kill(os.getpid(), signum)
    return True


# The environment variable through which a sweep asks a `linscale train` of its own to end with it: an
# environment variable, not an option, since Lightning starts the other devices' processes with the same
# command line (their parent is that run's process, not the sweep); `linscale train` takes it out of its
# environment before they start
SWEEP_PID = "LINSCALE_SWEEP_PID"


class Terminated(KeyboardInterrupt):
    """SIGTERM to a sweep, a study or an evaluation (a scheduler's stop, `kill`), raised where Ctrl-C's
    KeyboardInterrupt would be and handled as it is: the runs save a checkpoint at their next step, pools
    end, and the command says so in one line and exits 143. Python's default ended the process at once,
    without a word, and left its evaluation processes behind."""


def raise_terminated(signum, frame):
    """A SIGTERM handler: :class:`Terminated`."""
    raise Terminated()


def release_pool_pipes(executor) -> None:
    """After a ProcessPoolExecutor's workers were ended (an error, Ctrl-C, SIGTERM): let go of the two pipes
    that tie this process to them, which otherwise hung it.

    - The results pipe: a worker ended while it wrote leaves half a message there, and the executor's
      thread waited for the rest for ever; the interpreter's exit (or the pool's shutdown) joins that
      thread, so a Ctrl-C'd `linscale eval` printed its line and hung (one run in seven). With this
      process's writing end closed, no writer is left: the thread reads an end of file, marks the pool
      broken and ends.
    - The tasks pipe: the thread that feeds it blocks once the pipe is full and no worker reads (a fit's
      task carries its rows). The executor's own thread ends it as it winds down; where that thread died
      instead (on Python 3.11, of an InvalidStateError when a future had been cancelled), multiprocessing's
      exit joined the feeder for ever: a study stopped during its fits said so and hung. With
      ``cancel_join_thread`` (multiprocessing's way out) the exit does not wait for it; its tasks are
      dropped, which is what stopping means.

    Private attributes of concurrent.futures; skipped where absent."""
    writer = getattr(getattr(executor, "_result_queue", None), "_writer", None)
    if writer is not None and not writer.closed:
        writer.close()
    tasks = getattr(executor, "_call_queue", None)
    if tasks is not None:
        tasks.cancel_join_thread()
