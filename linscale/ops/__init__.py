"""Token-mixing operators, each in equivalent forms side by side (flash-linear-attention's layout).

- ``naive.py``: the specification, a token-by-token loop in fp32 (tests only, not API);
- ``chunk.py``: the chunked parallel form in PyTorch (CPU training);
- ``recurrent.py``: the step-wise form with an O(1) state (decoding);
- ``linscale.kernels``: the Triton kernels (GPU training and decoding).

:func:`chunk_linear_attention` is what the models call; it picks the implementation:
CUDA tensors use Triton when ``linscale.kernels`` provides it, CPU tensors use the PyTorch
chunked form. Setting the environment variable ``LINSCALE_BACKEND=triton`` (or passing
``backend="triton"``) forces the Triton path, which on a CPU needs ``TRITON_INTERPRET=1`` and is
meant for testing the kernels; ``LINSCALE_BACKEND=torch`` forces the PyTorch form everywhere.
"""
from __future__ import annotations

import os

import torch

from .chunk import chunk_gla
from .recurrent import fused_recurrent_gla, recurrent_gla_step

__all__ = ["chunk_gla", "fused_recurrent_gla", "recurrent_gla_step", "chunk_linear_attention", "resolve_backend"]

BACKENDS = ("torch", "triton")


def resolve_backend(x: torch.Tensor, backend: str | None = None) -> str:
    """The backend for tensors like ``x``: an explicit choice, then $LINSCALE_BACKEND, then by device."""
    backend = backend or os.environ.get("LINSCALE_BACKEND") or ("triton" if x.is_cuda else "torch")
    if backend not in BACKENDS:
        raise ValueError(f"LINSCALE_BACKEND / backend: {backend!r} is not one of {', '.join(BACKENDS)}")
    if backend == "triton" and not _triton_available():
        if x.is_cuda:
            return "torch"  # no kernels installed: correct, only slower
        raise RuntimeError("backend 'triton' on CPU tensors needs `triton` installed and TRITON_INTERPRET=1")
    return backend


def _triton_available() -> bool:
    try:
        from linscale import kernels  # noqa: F401
    except ImportError:
        return False
    return hasattr(kernels, "chunk_gla")


def chunk_linear_attention(q, k, v, g=None, g_gamma=None, scale=None, initial_state=None,
                           output_final_state=False, chunk_size=64, backend=None):
    """Chunked gated linear attention on the best available backend (see the module docstring).

    Shapes: q, k ``[B, T, H, K]``; v ``[B, T, H, V]``; g ``[B, T, H, K]`` or g_gamma ``[H]``
    (log-decays, at most one); initial_state ``[B, H, K, V]``. Returns ``(o, final_state)``.
    """
    if resolve_backend(q, backend) == "triton":
        from linscale import kernels

        return kernels.chunk_gla(q, k, v, g=g, g_gamma=g_gamma, scale=scale, initial_state=initial_state,
                                 output_final_state=output_final_state)
    return chunk_gla(q, k, v, g=g, g_gamma=g_gamma, scale=scale, initial_state=initial_state,
                     output_final_state=output_final_state, chunk_size=chunk_size)
