"""Token-mixing operators, each in equivalent forms side by side (flash-linear-attention's layout).

- ``naive.py``: the specification, a token-by-token loop in fp32 (tests only, not API);
- ``chunk.py``: the chunked parallel form in PyTorch (CPU training);
- ``recurrent.py``: the step-wise form with an O(1) state (decoding);
- ``linscale.kernels``: the Triton kernels (GPU training and decoding);
- ``cross_entropy.py``: not a mixer, the loss fused with the output projection (CPU training and evaluation).

:func:`chunk_linear_attention` (training, prefill) and :func:`recurrent_linear_attention` (decoding)
are what the models call; they pick the implementation: CUDA tensors use Triton when
``linscale.kernels`` provides it (``kernels.chunk_gla`` / ``kernels.fused_recurrent_gla``), CPU tensors
use the PyTorch forms. Setting the environment variable ``LINSCALE_BACKEND=triton`` (or passing
``backend="triton"``) forces the Triton path, which on a CPU needs ``TRITON_INTERPRET=1`` set before
``linscale.kernels`` is first imported, and is meant for testing the kernels;
``LINSCALE_BACKEND=torch`` forces the PyTorch forms everywhere.

The Triton kernels choose their own chunk size (64, or 16 for per-channel decays); ``chunk_size`` only
applies to the PyTorch form. The results agree to rounding either way.
"""
from __future__ import annotations

import os

import torch

from .chunk import chunk_gla
from .recurrent import fused_recurrent_gla, recurrent_gla_step

__all__ = ["chunk_gla", "fused_recurrent_gla", "recurrent_gla_step", "chunk_linear_attention",
           "recurrent_linear_attention", "resolve_backend"]

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
    if backend == "triton" and not x.is_cuda:
        from linscale import kernels

        if not kernels.INTERPRET:
            raise RuntimeError("backend 'triton' on CPU tensors needs TRITON_INTERPRET=1 in the environment "
                               "before linscale.kernels is first imported")
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

        q, k, v, g, initial_state = _for_kernels(q, k, v, g, initial_state)
        return kernels.chunk_gla(q, k, v, g=g, g_gamma=g_gamma, scale=scale, initial_state=initial_state,
                                 output_final_state=output_final_state)
    return chunk_gla(q, k, v, g=g, g_gamma=g_gamma, scale=scale, initial_state=initial_state,
                     output_final_state=output_final_state, chunk_size=chunk_size)


def recurrent_linear_attention(q, k, v, g=None, g_gamma=None, scale=None, initial_state=None,
                               output_final_state=False, backend=None):
    """Token-by-token gated linear attention (decoding) on the best available backend; as
    :func:`chunk_linear_attention`, without a chunk size."""
    if resolve_backend(q, backend) == "triton":
        from linscale import kernels

        q, k, v, g, initial_state = _for_kernels(q, k, v, g, initial_state)
        return kernels.fused_recurrent_gla(q, k, v, g=g, g_gamma=g_gamma, scale=scale, initial_state=initial_state,
                                           output_final_state=output_final_state)
    return fused_recurrent_gla(q, k, v, g=g, g_gamma=g_gamma, scale=scale, initial_state=initial_state,
                               output_final_state=output_final_state)


def _for_kernels(q, k, v, g, initial_state):
    """The kernels take one dtype and contiguous tensors; model code may mix dtypes under autocast
    (HGRN2's k = 1 - f is computed from fp32 gates), so align k and v with q here, not in every model."""
    k, v = k.to(q.dtype), v.to(q.dtype)
    q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
    g = g.contiguous() if g is not None else None
    initial_state = initial_state.contiguous() if initial_state is not None else None
    return q, k, v, g, initial_state
