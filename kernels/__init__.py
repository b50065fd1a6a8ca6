"""Triton kernels for the linear token mixers, imported as ``linscale.kernels`` (fla's layout).

- ``chunk.py``: chunked gated linear attention, forward and backward (training);
- ``fused_recurrent.py``: the token-by-token kernel (decoding);
- ``utils.py``: the interpreter-safe tl.dot, autotune configs, input checks, chunk-local cumsums.

Timings against SDPA and flash-linear-attention: ``benchmarks/bench_kernels.py``.

Both ops take the layout and arguments of ``linscale.ops.chunk_gla``: q, k ``[B, T, H, K]``, v
``[B, T, H, V]``, per-channel log-decay g ``[B, T, H, K]`` (HGRN2) or per-head log-decay g_gamma ``[H]``
(TNL) or neither (cosFormer2), optional initial state ``[B, H, K, V]``; they return ``(o, final_state)``
with the final state in fp32. On a machine without a GPU they run under Triton's interpreter: set
``TRITON_INTERPRET=1`` before this package is imported (``linscale.ops`` picks the backend).
"""
from .chunk import chunk_gla
from .utils import INTERPRET
from .fused_recurrent import fused_recurrent_gla

__all__ = ["chunk_gla", "fused_recurrent_gla", "INTERPRET"]
