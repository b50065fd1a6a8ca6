"""Token-by-token gated linear attention in Triton: the decoding kernel (fla's "fused_recurrent").

One program per (batch·head, V tile) keeps its [K, BV] slice of the state in registers (fp32) and walks
the sequence:

    S ← diag(exp(g_t)) · S + k_t v_tᵀ,      o_t = scale · Sᵀ q_t

Decoding is bandwidth-bound: one step reads and writes the K×V state once (``kernels.md`` §2).

The backward pass reuses the chunked kernels (``chunk.py``): the gradient of a function does not
depend on how its forward was evaluated, and the chunked backward is the parallel one.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from .chunk import CHUNK_SIZE, GATED_CHUNK_SIZE, chunk_bwd, chunk_gla_fwd_A
from .utils import autotune_configs, check_inputs, chunk_local_cumsum, chunk_local_reverse_cumsum, empty_sequence


@triton.autotune(configs=autotune_configs(num_warps=(1, 2, 4), num_stages=(1,)), key=["K", "V", "BK", "BV"])
@triton.jit(do_not_specialize=["T"])
def fused_recurrent_fwd_kernel(
    q, k, v, g, g_gamma, o, h0, ht, scale, T,
    H: tl.constexpr, K: tl.constexpr, V: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
    USE_G: tl.constexpr, USE_GAMMA: tl.constexpr, USE_H0: tl.constexpr, STORE_HT: tl.constexpr,
):
    i_v, i_bh = tl.program_id(0), tl.program_id(1)
    i_b, i_h = i_bh // H, i_bh % H
    o_k = tl.arange(0, BK)
    o_v = i_v * BV + tl.arange(0, BV)
    m_k, m_v = o_k < K, o_v < V
    m_kv = m_k[:, None] & m_v[None, :]
    o_kv = o_k[:, None] * V + o_v[None, :]

    b_h = tl.zeros([BK, BV], dtype=tl.float32)
    if USE_H0:
        b_h += tl.load(h0 + i_bh.to(tl.int64) * K * V + o_kv, mask=m_kv, other=0).to(tl.float32)
    if USE_GAMMA:
        b_decay = tl.exp(tl.load(g_gamma + i_h).to(tl.float32))
    p_qk = (i_b.to(tl.int64) * T * H + i_h) * K + o_k  # token 0 of this sequence and head
    p_vo = (i_b.to(tl.int64) * T * H + i_h) * V + o_v
    for _ in range(0, T):
        b_q = tl.load(q + p_qk, mask=m_k, other=0).to(tl.float32) * scale
        b_k = tl.load(k + p_qk, mask=m_k, other=0).to(tl.float32)
        b_v = tl.load(v + p_vo, mask=m_v, other=0).to(tl.float32)
        if USE_G:
            b_h *= tl.exp(tl.load(g + p_qk, mask=m_k, other=0).to(tl.float32))[:, None]
        if USE_GAMMA:
            b_h *= b_decay
        b_h += b_k[:, None] * b_v[None, :]
        b_o = tl.sum(b_h * b_q[:, None], axis=0)  # [BV]
        tl.store(o + p_vo, b_o.to(o.dtype.element_ty), mask=m_v)
        p_qk += H * K
        p_vo += H * V
    if STORE_HT:
        tl.store(ht + i_bh.to(tl.int64) * K * V + o_kv, b_h, mask=m_kv)


def recurrent_blocks(K: int, V: int) -> tuple[int, int]:
    """(BK, BV): the whole K per program, >= 16 lanes (masked) for tiny widths; register tile <= 8K floats."""
    BK = max(16, triton.next_power_of_2(K))
    return BK, min(max(16, triton.next_power_of_2(V)), 64 if BK <= 128 else 32)


def fused_recurrent_fwd(q, k, v, g, g_gamma, scale, h0, output_final_state):
    B, T, H, K = q.shape
    V = v.shape[-1]
    BK, BV = recurrent_blocks(K, V)
    o = torch.empty_like(v)
    ht = q.new_empty(B, H, K, V, dtype=torch.float32) if output_final_state else None
    fused_recurrent_fwd_kernel[(triton.cdiv(V, BV), B * H)](
        q, k, v, g, g_gamma, o, h0, ht, scale, T, H=H, K=K, V=V, BK=BK, BV=BV,
        USE_G=g is not None, USE_GAMMA=g_gamma is not None, USE_H0=h0 is not None, STORE_HT=output_final_state)
    return o, ht


class FusedRecurrentGLAFunction(torch.autograd.Function):
    """Recurrent forward; chunked backward (same gradients, parallel over chunks)."""

    @staticmethod
    def forward(ctx, q, k, v, g, g_gamma, scale, initial_state, output_final_state):
        gamma = g_gamma.float().contiguous() if g_gamma is not None else None
        o, ht = fused_recurrent_fwd(q, k, v, g, gamma, scale, initial_state, output_final_state)
        ctx.save_for_backward(q, k, v, g, gamma, initial_state)
        ctx.scale = scale
        return o, ht

    @staticmethod
    def backward(ctx, do, dht):
        q, k, v, g, gamma, h0 = ctx.saved_tensors
        BT = GATED_CHUNK_SIZE if g is not None else CHUNK_SIZE
        gc = chunk_local_cumsum(g, BT) if g is not None else None
        A = chunk_gla_fwd_A(q, k, gc, ctx.scale, BT) if gc is not None else None
        dq, dk, dv, db, dh0 = chunk_bwd(q, k, v, gc, gamma, ctx.scale, h0, A, do.contiguous(),
                                        None if dht is None else dht.contiguous(), BT)
        dg = chunk_local_reverse_cumsum(db, BT).to(g.dtype) if db is not None else None
        if dh0 is not None:
            dh0 = dh0.to(h0.dtype)
        return dq, dk, dv, dg, None, None, dh0, None


@torch.compiler.disable
def fused_recurrent_gla(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor | None = None,
    g_gamma: torch.Tensor | None = None,
    scale: float | None = None,
    initial_state: torch.Tensor | None = None,
    output_final_state: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Recurrent gated linear attention in Triton; arguments and returns as ``linscale.ops.fused_recurrent_gla``.

    Meant for decoding (T small, often 1, with ``initial_state`` and ``output_final_state``); it is
    differentiable like :func:`linscale.kernels.chunk_gla` (g_gamma excepted).
    """
    check_inputs(q, k, v, g, g_gamma, initial_state)
    if g_gamma is not None and g_gamma.requires_grad:
        raise ValueError("g_gamma: the Triton kernels treat the per-head decay as fixed and compute no gradient "
                         "for it; detach it, or use linscale.ops.fused_recurrent_gla")
    B, T, H, K = q.shape
    scale = K**-0.5 if scale is None else float(scale)
    if T == 0:
        return empty_sequence(q, v, initial_state, output_final_state)
    return FusedRecurrentGLAFunction.apply(q, k, v, g, g_gamma, scale, initial_state, output_final_state)


__all__ = ["fused_recurrent_gla", "fused_recurrent_fwd"]
