"""Shared test helpers: named comparisons that report the error they measured."""
from __future__ import annotations

import torch


def rel_error(ref: torch.Tensor, out: torch.Tensor) -> float:
    """Relative L2 error ||ref - out|| / ||ref|| (0 when both are exactly zero)."""
    ref, out = ref.detach().double(), out.detach().double()
    denom = ref.norm().item()
    diff = (ref - out).norm().item()
    return diff if denom == 0 else diff / denom


def assert_close(name: str, ref: torch.Tensor, out: torch.Tensor, tol: float) -> None:
    assert ref.shape == out.shape, f"{name}: shape {tuple(out.shape)} != reference {tuple(ref.shape)}"
    assert not torch.isnan(out).any(), f"{name}: NaN in output"
    err = rel_error(ref, out)
    assert err < tol, f"{name}: relative error {err:.3e} >= {tol:.1e}"


def running(pid: int) -> bool:
    """Whether a process runs (a zombie, dead but not yet reaped by its new parent, does not)."""
    from pathlib import Path

    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False


def ends_within(pid: int, seconds: float) -> bool:
    """Whether the process ``pid`` ends within ``seconds``; one still running then is killed, so that a
    failing test leaves nothing behind."""
    import os
    import signal
    import time

    deadline = time.monotonic() + seconds
    while running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if running(pid):
        os.kill(pid, signal.SIGKILL)
        return False
    return True
