"""Chunked gated linear attention in Triton: forward and backward (fla's "chunk" design).

One recurrence covers the three linear mixers (``linscale/ops/naive.py`` is the specification):

    S_t = diag(exp(g_t)) · S_{t-1} + k_t v_tᵀ,      o_t = scale · S_tᵀ q_t

with g_t = g_gamma[h] (TNL, per-head constant), no decay (cosFormer2), or g_t ∈ R^K (HGRN2, per key
channel, data-dependent). The sequence is cut into chunks of BT tokens; b_i is the cumulative log-decay
from the chunk start up to and including token i, L the chunk's last valid token. For chunk n with
incoming state h_n:

    o_i     = scale · (q_i ⊙ e^{b_i}) h_n + Σ_{j≤i} A_ij v_j,   A_ij = scale · Σ_c q_ic k_jc e^{b_ic − b_jc}
    h_{n+1} = e^{b_L} ⊙ h_n + Σ_j (k_j ⊙ e^{b_L − b_j})ᵀ v_j

Every exponent is "later minus earlier" ≤ 0, so nothing overflows however strong the decay.

Kernels (grids in brackets; NT = number of chunks, NK/NV = K/V tiles):
- ``chunk_fwd_h``  [NK, NV, B·H]: sequential over chunks, writes every h_n (fp32) and the final state;
- ``chunk_gla_fwd_A`` [NT, B·H] (per-channel decay only): the intra-chunk scores A, elementwise in the
  channel so that no e^{−b} factor appears (GLA's "secondary chunking" with one sub-chunk per chunk:
  chunks of 16 tokens); scalar and no decay form A inside the next kernel with one tl.dot;
- ``chunk_fwd_o``  [NV, NT, B·H]: chunk-parallel output;
- backward, recomputing h_n: ``chunk_bwd_dh`` [NK, NV, B·H] (reverse scan; gives dh0), ``chunk_bwd_dv``
  [NV, NT, B·H] and ``chunk_bwd_dqk`` [NK, NT, B·H] (chunk-parallel; also d b for per-channel gates,
  turned into dg by the reverse chunk-local cumsum).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from .utils import (INTERPRET, autotune_configs, block, check_inputs, chunk_local_cumsum,
                    chunk_local_reverse_cumsum, dot, empty_sequence, load_tile, load_token, store_tile)

# Chunk sizes: 64 for scalar/no decay (fewer state round trips); 16 for per-channel gates, where the
# intra-chunk scores are built elementwise (cost ∝ chunk size) to stay overflow-free.
CHUNK_SIZE = 64
GATED_CHUNK_SIZE = 16

_KEY = ["BT", "K", "V", "BK", "BV", "USE_G", "USE_GAMMA"]


# ----------------------------------------------------------------------------- forward


@triton.autotune(configs=autotune_configs(), key=_KEY)
@triton.jit(do_not_specialize=["T"])
def chunk_fwd_h_kernel(
    k, v, gc, g_gamma, h, h0, ht, T,
    H: tl.constexpr, K: tl.constexpr, V: tl.constexpr, BT: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
    USE_G: tl.constexpr, USE_GAMMA: tl.constexpr, USE_H0: tl.constexpr, STORE_HT: tl.constexpr,
):
    """h[b, n, h] = state entering chunk n (fp32), for one [BK, BV] tile; ht = state after token T-1."""
    i_k, i_v, i_bh = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    i_b, i_h = i_bh // H, i_bh % H
    NT = tl.cdiv(T, BT)
    o_k = i_k * BK + tl.arange(0, BK)
    o_v = i_v * BV + tl.arange(0, BV)
    m_k, m_v = o_k < K, o_v < V
    m_kv = m_k[:, None] & m_v[None, :]
    o_kv = o_k[:, None] * V + o_v[None, :]
    bos = i_b.to(tl.int64) * T  # first token of this sequence

    b_h = tl.zeros([BK, BV], dtype=tl.float32)
    if USE_H0:
        b_h += tl.load(h0 + i_bh.to(tl.int64) * K * V + o_kv, mask=m_kv, other=0).to(tl.float32)
    if USE_GAMMA:
        b_gamma = tl.load(g_gamma + i_h).to(tl.float32)

    for i_t in range(0, NT):
        tl.store(h + ((i_b.to(tl.int64) * NT + i_t) * H + i_h) * K * V + o_kv, b_h, mask=m_kv)
        o_t = i_t * BT + tl.arange(0, BT)
        m_t = o_t < T
        last = tl.minimum(T, i_t * BT + BT) - 1  # the chunk's last valid token
        b_k = load_tile(k, bos, o_t, i_h, o_k, T, H, K, TRANS=True).to(tl.float32)  # kᵀ [BK, BT]
        b_v = load_tile(v, bos, o_t, i_h, o_v, T, H, V)  # [BT, BV]
        if USE_G:
            b_g = load_tile(gc, bos, o_t, i_h, o_k, T, H, K, TRANS=True)
            b_glast = load_token(gc, bos, last, i_h, o_k, T, H, K)
            b_h *= tl.exp(b_glast)[:, None]
            b_k = b_k * tl.exp(b_glast[:, None] - b_g)  # <= 0: b is non-increasing along the chunk
        if USE_GAMMA:
            n_left = last - o_t  # tokens after j in the chunk; negative past the end: masked before exp
            b_k = b_k * tl.exp(tl.where(m_t, n_left.to(tl.float32) * b_gamma, 0))[None, :]
            b_h *= tl.exp((last - i_t * BT + 1).to(tl.float32) * b_gamma)
        b_h += dot(b_k.to(v.dtype.element_ty), b_v)

    if STORE_HT:
        tl.store(ht + i_bh.to(tl.int64) * K * V + o_kv, b_h, mask=m_kv)


@triton.autotune(configs=autotune_configs(), key=["BT", "K", "BK"])
@triton.jit(do_not_specialize=["T"])
def chunk_gla_fwd_A_kernel(
    q, k, gc, A, scale, T,
    H: tl.constexpr, K: tl.constexpr, BT: tl.constexpr, BK: tl.constexpr,
):
    """A[b, t, h, j] = scale · Σ_c q_tc k_jc e^{b_tc − b_jc} for j ≤ t in t's chunk (fp32, [B, T, H, BT])."""
    i_t, i_bh = tl.program_id(0), tl.program_id(1)
    i_b, i_h = i_bh // H, i_bh % H
    bos = i_b.to(tl.int64) * T
    o_t = i_t * BT + tl.arange(0, BT)
    o_j = tl.arange(0, BT)
    m_t = o_t < T
    b_A = tl.zeros([BT, BT], dtype=tl.float32)
    for i_k in range(0, tl.cdiv(K, BK)):
        o_k = i_k * BK + tl.arange(0, BK)
        b_q = load_tile(q, bos, o_t, i_h, o_k, T, H, K).to(tl.float32)
        b_g = load_tile(gc, bos, o_t, i_h, o_k, T, H, K)
        for j in range(0, BT):
            t_j = i_t * BT + j
            b_kj = load_token(k, bos, t_j, i_h, o_k, T, H, K).to(tl.float32)
            b_gj = load_token(gc, bos, t_j, i_h, o_k, T, H, K)
            causal = ((o_j >= j) & m_t)[:, None]  # valid rows only: padded rows have b = 0
            w = tl.exp(tl.where(causal, b_g - b_gj[None, :], 0))  # masked before exp
            a = tl.sum(tl.where(causal, b_q * b_kj[None, :] * w, 0), axis=1)  # [BT]
            b_A += tl.where(o_j[None, :] == j, a[:, None], 0)
    store_tile(A, b_A * scale, bos, o_t, i_h, o_j, T, H, BT)


@triton.autotune(configs=autotune_configs(), key=_KEY)
@triton.jit(do_not_specialize=["T"])
def chunk_fwd_o_kernel(
    q, k, v, gc, g_gamma, h, A, o, scale, T,
    H: tl.constexpr, K: tl.constexpr, V: tl.constexpr, BT: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
    USE_G: tl.constexpr, USE_GAMMA: tl.constexpr,
):
    """o = scale · (q ⊙ e^b) h_n + A v for one chunk and one V tile."""
    i_v, i_t, i_bh = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    i_b, i_h = i_bh // H, i_bh % H
    NT = tl.cdiv(T, BT)
    bos = i_b.to(tl.int64) * T
    o_t = i_t * BT + tl.arange(0, BT)
    o_i = tl.arange(0, BT)
    m_t = o_t < T
    o_v = i_v * BV + tl.arange(0, BV)
    m_v = o_v < V
    p_h = h + ((i_b.to(tl.int64) * NT + i_t) * H + i_h) * K * V
    dt = v.dtype.element_ty

    b_o = tl.zeros([BT, BV], dtype=tl.float32)
    b_A = tl.zeros([BT, BT], dtype=tl.float32)
    for i_k in range(0, tl.cdiv(K, BK)):
        o_k = i_k * BK + tl.arange(0, BK)
        m_k = o_k < K
        b_q = load_tile(q, bos, o_t, i_h, o_k, T, H, K)
        b_h = tl.load(p_h + o_k[:, None] * V + o_v[None, :], mask=m_k[:, None] & m_v[None, :], other=0)
        if USE_G:
            b_g = load_tile(gc, bos, o_t, i_h, o_k, T, H, K)
            b_o += dot((b_q.to(tl.float32) * tl.exp(b_g)).to(dt), b_h.to(dt))
        else:
            b_k = load_tile(k, bos, o_t, i_h, o_k, T, H, K, TRANS=True)  # kᵀ [BK, BT]
            b_o += dot(b_q, b_h.to(dt))
            b_A += dot(b_q, b_k)

    causal = (o_i[:, None] >= o_i[None, :]) & m_t[:, None] & m_t[None, :]
    if USE_G:
        b_A = load_tile(A, bos, o_t, i_h, o_i, T, H, BT)
    else:
        if USE_GAMMA:
            b_gamma = tl.load(g_gamma + i_h).to(tl.float32)
            b_b = (o_i + 1).to(tl.float32) * b_gamma  # cumulative log-decay inside the chunk
            b_o *= tl.exp(b_b)[:, None]
            b_A *= tl.exp(tl.where(causal, b_b[:, None] - b_b[None, :], 0))
        b_A = tl.where(causal, b_A, 0) * scale
    b_v = load_tile(v, bos, o_t, i_h, o_v, T, H, V)
    b_o = b_o * scale + dot(b_A.to(dt), b_v)
    store_tile(o, b_o, bos, o_t, i_h, o_v, T, H, V)


# ----------------------------------------------------------------------------- backward


@triton.autotune(configs=autotune_configs(), key=_KEY)
@triton.jit(do_not_specialize=["T"])
def chunk_bwd_dh_kernel(
    q, gc, g_gamma, do, dh, dht, dh0, scale, T,
    H: tl.constexpr, K: tl.constexpr, V: tl.constexpr, BT: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
    USE_G: tl.constexpr, USE_GAMMA: tl.constexpr, USE_DHT: tl.constexpr, STORE_DH0: tl.constexpr,
):
    """dh[b, n, h] = gradient w.r.t. the state leaving chunk n (reverse scan); dh0 w.r.t. the initial state.

        dh_in(n) = e^{b_L} ⊙ dh_out(n) + scale · Σ_i (q_i ⊙ e^{b_i})ᵀ do_i
    """
    i_k, i_v, i_bh = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    i_b, i_h = i_bh // H, i_bh % H
    NT = tl.cdiv(T, BT)
    o_k = i_k * BK + tl.arange(0, BK)
    o_v = i_v * BV + tl.arange(0, BV)
    m_k, m_v = o_k < K, o_v < V
    m_kv = m_k[:, None] & m_v[None, :]
    o_kv = o_k[:, None] * V + o_v[None, :]
    bos = i_b.to(tl.int64) * T
    dt = do.dtype.element_ty

    b_dh = tl.zeros([BK, BV], dtype=tl.float32)
    if USE_DHT:
        b_dh += tl.load(dht + i_bh.to(tl.int64) * K * V + o_kv, mask=m_kv, other=0).to(tl.float32)
    if USE_GAMMA:
        b_gamma = tl.load(g_gamma + i_h).to(tl.float32)
    for i_t in range(NT - 1, -1, -1):
        tl.store(dh + ((i_b.to(tl.int64) * NT + i_t) * H + i_h) * K * V + o_kv, b_dh, mask=m_kv)
        o_t = i_t * BT + tl.arange(0, BT)
        last = tl.minimum(T, i_t * BT + BT) - 1
        b_q = load_tile(q, bos, o_t, i_h, o_k, T, H, K, TRANS=True).to(tl.float32)  # qᵀ [BK, BT]
        b_do = load_tile(do, bos, o_t, i_h, o_v, T, H, V)
        if USE_G:
            b_g = load_tile(gc, bos, o_t, i_h, o_k, T, H, K, TRANS=True)
            b_glast = load_token(gc, bos, last, i_h, o_k, T, H, K)
            b_q = b_q * tl.exp(b_g)
            b_dh *= tl.exp(b_glast)[:, None]
        if USE_GAMMA:
            b_q = b_q * tl.exp((tl.arange(0, BT) + 1).to(tl.float32) * b_gamma)[None, :]
            b_dh *= tl.exp((last - i_t * BT + 1).to(tl.float32) * b_gamma)
        b_dh += dot((b_q * scale).to(dt), b_do)
    if STORE_DH0:
        tl.store(dh0 + i_bh.to(tl.int64) * K * V + o_kv, b_dh, mask=m_kv)


@triton.autotune(configs=autotune_configs(), key=_KEY)
@triton.jit(do_not_specialize=["T"])
def chunk_bwd_dv_kernel(
    q, k, gc, g_gamma, A, do, dh, dv, scale, T,
    H: tl.constexpr, K: tl.constexpr, V: tl.constexpr, BT: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
    USE_G: tl.constexpr, USE_GAMMA: tl.constexpr,
):
    """dv_j = Σ_{i≥j} A_ij do_i + (k_j ⊙ e^{b_L − b_j}) dh_out(n)."""
    i_v, i_t, i_bh = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    i_b, i_h = i_bh // H, i_bh % H
    NT = tl.cdiv(T, BT)
    bos = i_b.to(tl.int64) * T
    o_t = i_t * BT + tl.arange(0, BT)
    o_i = tl.arange(0, BT)
    m_t = o_t < T
    o_v = i_v * BV + tl.arange(0, BV)
    m_v = o_v < V
    last = tl.minimum(T, i_t * BT + BT) - 1
    p_dh = dh + ((i_b.to(tl.int64) * NT + i_t) * H + i_h) * K * V
    dt = do.dtype.element_ty
    if USE_GAMMA:
        b_gamma = tl.load(g_gamma + i_h).to(tl.float32)

    b_dv = tl.zeros([BT, BV], dtype=tl.float32)
    b_At = tl.zeros([BT, BT], dtype=tl.float32)  # Aᵀ: rows j (keys), columns i (queries)
    for i_k in range(0, tl.cdiv(K, BK)):
        o_k = i_k * BK + tl.arange(0, BK)
        m_k = o_k < K
        b_k = load_tile(k, bos, o_t, i_h, o_k, T, H, K).to(tl.float32)
        b_dh = tl.load(p_dh + o_k[:, None] * V + o_v[None, :], mask=m_k[:, None] & m_v[None, :], other=0)
        if USE_G:
            b_g = load_tile(gc, bos, o_t, i_h, o_k, T, H, K)
            b_glast = load_token(gc, bos, last, i_h, o_k, T, H, K)
            b_kd = b_k * tl.exp(b_glast[None, :] - b_g)
        else:
            b_qt = load_tile(q, bos, o_t, i_h, o_k, T, H, K, TRANS=True)
            b_At += dot(b_k.to(dt), b_qt)
            b_kd = b_k
            if USE_GAMMA:
                b_kd = b_k * tl.exp(tl.where(m_t, (last - o_t).to(tl.float32) * b_gamma, 0))[:, None]
        b_dv += dot(b_kd.to(dt), b_dh.to(dt))

    causal_t = (o_i[:, None] <= o_i[None, :]) & m_t[:, None] & m_t[None, :]  # j <= i
    if USE_G:
        b_At = load_tile(A, bos, o_t, i_h, o_i, T, H, BT, TRANS=True)
    else:
        if USE_GAMMA:
            b_b = (o_i + 1).to(tl.float32) * b_gamma
            b_At *= tl.exp(tl.where(causal_t, b_b[None, :] - b_b[:, None], 0))
        b_At = tl.where(causal_t, b_At, 0) * scale
    b_do = load_tile(do, bos, o_t, i_h, o_v, T, H, V)
    b_dv += dot(b_At.to(dt), b_do)
    store_tile(dv, b_dv, bos, o_t, i_h, o_v, T, H, V)


@triton.autotune(configs=autotune_configs(), key=_KEY)
@triton.jit(do_not_specialize=["T"])
def chunk_bwd_dqk_kernel(
    q, k, v, gc, g_gamma, h, do, dh, dq, dk, db, scale, T,
    H: tl.constexpr, K: tl.constexpr, V: tl.constexpr, BT: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
    USE_G: tl.constexpr, USE_GAMMA: tl.constexpr,
):
    """dq, dk for one chunk and K tile, with dA_ij = scale · do_i·v_j (j ≤ i):

        dq_i = scale · e^{b_i} ⊙ (do_i h_nᵀ) + Σ_{j≤i} dA_ij k_j ⊙ e^{b_i − b_j}
        dk_j = e^{b_L − b_j} ⊙ (v_j dh_outᵀ) + Σ_{i≥j} dA_ij q_i ⊙ e^{b_i − b_j}

    and, for per-channel gates, the gradient w.r.t. the cumulative gate b:
        db = q ⊙ dq − k ⊙ dk  (+ e^{b_L} Σ_v h_n ⊙ dh_out + Σ_j k_j ⊙ dk_state_j at the last token).
    """
    i_k, i_t, i_bh = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    i_b, i_h = i_bh // H, i_bh % H
    NT = tl.cdiv(T, BT)
    bos = i_b.to(tl.int64) * T
    o_t = i_t * BT + tl.arange(0, BT)
    o_i = tl.arange(0, BT)
    m_t = o_t < T
    o_k = i_k * BK + tl.arange(0, BK)
    m_k = o_k < K
    last = tl.minimum(T, i_t * BT + BT) - 1
    off_h = ((i_b.to(tl.int64) * NT + i_t) * H + i_h) * K * V
    dt = do.dtype.element_ty

    b_dq = tl.zeros([BT, BK], dtype=tl.float32)
    b_dk = tl.zeros([BT, BK], dtype=tl.float32)
    b_dA = tl.zeros([BT, BT], dtype=tl.float32)
    b_hdh = tl.zeros([BK], dtype=tl.float32)  # Σ_v h_n ⊙ dh_out (per-channel gates only)
    for i_v in range(0, tl.cdiv(V, BV)):
        o_v = i_v * BV + tl.arange(0, BV)
        m_v = o_v < V
        b_v = load_tile(v, bos, o_t, i_h, o_v, T, H, V)
        b_vt = load_tile(v, bos, o_t, i_h, o_v, T, H, V, TRANS=True)
        b_do = load_tile(do, bos, o_t, i_h, o_v, T, H, V)
        m_vk = m_v[:, None] & m_k[None, :]
        p_vk = o_k[None, :] * V + o_v[:, None]  # transposed [BV, BK] view of a [K, V] state
        b_ht = tl.load(h + off_h + p_vk, mask=m_vk, other=0)
        b_dht = tl.load(dh + off_h + p_vk, mask=m_vk, other=0)
        b_dA += dot(b_do, b_vt)
        b_dq += dot(b_do, b_ht.to(dt))
        b_dk += dot(b_v, b_dht.to(dt))
        if USE_G:
            b_hdh += tl.sum(b_ht * b_dht, axis=0)
    causal = (o_i[:, None] >= o_i[None, :]) & m_t[:, None] & m_t[None, :]
    b_dA = tl.where(causal, b_dA, 0) * scale

    b_q = load_tile(q, bos, o_t, i_h, o_k, T, H, K)
    b_k = load_tile(k, bos, o_t, i_h, o_k, T, H, K)
    if USE_G:
        b_qf, b_kf = b_q.to(tl.float32), b_k.to(tl.float32)
        b_g = load_tile(gc, bos, o_t, i_h, o_k, T, H, K)
        b_glast = load_token(gc, bos, last, i_h, o_k, T, H, K)
        b_dq = b_dq * scale * tl.exp(b_g)
        b_dk = b_dk * tl.exp(b_glast[None, :] - b_g)  # the state part of dk
        b_dblast = b_hdh * tl.exp(b_glast) + tl.sum(b_kf * b_dk, axis=0)
        # intra-chunk parts, elementwise in the channel (no e^{-b} factor, nothing overflows)
        for j in range(0, BT):
            t_j = i_t * BT + j
            b_kj = load_token(k, bos, t_j, i_h, o_k, T, H, K).to(tl.float32)
            b_qj = load_token(q, bos, t_j, i_h, o_k, T, H, K).to(tl.float32)
            b_gj = load_token(gc, bos, t_j, i_h, o_k, T, H, K)
            b_dA_col = tl.sum(tl.where(o_i[None, :] == j, b_dA, 0), axis=1)  # dA[i, j] over i
            b_dA_row = tl.sum(tl.where(o_i[:, None] == j, b_dA, 0), axis=0)  # dA[j, i'] over i'
            # masks before exp: padded tokens have b = 0, which is not <= the b of valid ones
            after = ((o_i >= j) & m_t)[:, None]  # valid rows i >= j: queries that see key j
            before = ((o_i <= j) & (t_j + 0 * o_i < T))[:, None]  # rows i' <= j, if query j is valid
            b_dq += tl.where(after, b_dA_col[:, None] * b_kj[None, :] *
                             tl.exp(tl.where(after, b_g - b_gj[None, :], 0)), 0)
            b_dk += tl.where(before, b_dA_row[:, None] * b_qj[None, :] *
                             tl.exp(tl.where(before, b_gj[None, :] - b_g, 0)), 0)
        b_db = b_qf * b_dq - b_kf * b_dk + tl.where((o_t == last)[:, None], b_dblast[None, :], 0)
        store_tile(db, b_db, bos, o_t, i_h, o_k, T, H, K)
    else:
        if USE_GAMMA:
            b_gamma = tl.load(g_gamma + i_h).to(tl.float32)
            b_b = (o_i + 1).to(tl.float32) * b_gamma
            b_dq *= tl.exp(b_b)[:, None]
            b_dk *= tl.exp(tl.where(m_t, (last - o_t).to(tl.float32) * b_gamma, 0))[:, None]
            b_dA *= tl.exp(tl.where(causal, b_b[:, None] - b_b[None, :], 0))
        b_dq = b_dq * scale + dot(b_dA.to(dt), b_k)
        b_dk += dot(tl.trans(b_dA).to(dt), b_q)
    store_tile(dq, b_dq, bos, o_t, i_h, o_k, T, H, K)
    store_tile(dk, b_dk, bos, o_t, i_h, o_k, T, H, K)


# ----------------------------------------------------------------------------- host side


def _flags(gc, g_gamma):
    return dict(USE_G=gc is not None, USE_GAMMA=g_gamma is not None)


def chunk_fwd_h(k, v, gc, g_gamma, h0, output_final_state, BT):
    """All incoming chunk states h [B, NT, H, K, V] (fp32) and, if asked, the final state [B, H, K, V]."""
    B, T, H, K = k.shape
    V = v.shape[-1]
    NT = triton.cdiv(T, BT)
    BK, BV = block(K), block(V)
    h = k.new_empty(B, NT, H, K, V, dtype=torch.float32)
    ht = k.new_empty(B, H, K, V, dtype=torch.float32) if output_final_state else None
    grid = (triton.cdiv(K, BK), triton.cdiv(V, BV), B * H)
    chunk_fwd_h_kernel[grid](k, v, gc, g_gamma, h, h0, ht, T, H=H, K=K, V=V, BT=BT, BK=BK, BV=BV,
                             USE_H0=h0 is not None, STORE_HT=output_final_state, **_flags(gc, g_gamma))
    return h, ht


def chunk_gla_fwd_A(q, k, gc, scale, BT):
    B, T, H, K = q.shape
    A = q.new_empty(B, T, H, BT, dtype=torch.float32)
    chunk_gla_fwd_A_kernel[(triton.cdiv(T, BT), B * H)](q, k, gc, A, scale, T, H=H, K=K, BT=BT, BK=block(K))
    return A


def chunk_fwd(q, k, v, gc, g_gamma, scale, h0, output_final_state, BT):
    B, T, H, K = q.shape
    V = v.shape[-1]
    h, ht = chunk_fwd_h(k, v, gc, g_gamma, h0, output_final_state, BT)
    A = chunk_gla_fwd_A(q, k, gc, scale, BT) if gc is not None else None
    o = torch.empty_like(v)
    BK, BV = block(K), block(V)
    chunk_fwd_o_kernel[(triton.cdiv(V, BV), triton.cdiv(T, BT), B * H)](
        q, k, v, gc, g_gamma, h, A, o, scale, T, H=H, K=K, V=V, BT=BT, BK=BK, BV=BV, **_flags(gc, g_gamma))
    return o, ht, A


def chunk_bwd(q, k, v, gc, g_gamma, scale, h0, A, do, dht, BT):
    """Gradients (dq, dk, dv, db, dh0) of Σ o·do + Σ ht·dht; db is w.r.t. the chunk-cumulative gate."""
    B, T, H, K = q.shape
    V = v.shape[-1]
    NT = triton.cdiv(T, BT)
    BK, BV = block(K), block(V)
    flags = _flags(gc, g_gamma)
    h, _ = chunk_fwd_h(k, v, gc, g_gamma, h0, False, BT)  # recompute the states, fp32
    dh = q.new_empty(B, NT, H, K, V, dtype=torch.float32)
    dh0 = torch.empty(B, H, K, V, dtype=torch.float32, device=q.device) if h0 is not None else None
    chunk_bwd_dh_kernel[(triton.cdiv(K, BK), triton.cdiv(V, BV), B * H)](
        q, gc, g_gamma, do, dh, dht, dh0, scale, T, H=H, K=K, V=V, BT=BT, BK=BK, BV=BV,
        USE_DHT=dht is not None, STORE_DH0=h0 is not None, **flags)
    dv = torch.empty_like(v)
    chunk_bwd_dv_kernel[(triton.cdiv(V, BV), NT, B * H)](
        q, k, gc, g_gamma, A, do, dh, dv, scale, T, H=H, K=K, V=V, BT=BT, BK=BK, BV=BV, **flags)
    dq, dk = torch.empty_like(q), torch.empty_like(k)
    db = torch.empty(B, T, H, K, dtype=torch.float32, device=q.device) if gc is not None else None
    chunk_bwd_dqk_kernel[(triton.cdiv(K, BK), NT, B * H)](
        q, k, v, gc, g_gamma, h, do, dh, dq, dk, db, scale, T, H=H, K=K, V=V, BT=BT, BK=BK, BV=BV, **flags)
    return dq, dk, dv, db, dh0


class ChunkGLAFunction(torch.autograd.Function):
    """Saves q, k, v, the cumulative gate, h0 (and A for per-channel gates); the backward recomputes h."""

    @staticmethod
    def forward(ctx, q, k, v, g, g_gamma, scale, initial_state, output_final_state, chunk_size):
        gc = chunk_local_cumsum(g, chunk_size) if g is not None else None
        gamma = g_gamma.float().contiguous() if g_gamma is not None else None
        h0 = initial_state
        o, ht, A = chunk_fwd(q, k, v, gc, gamma, scale, h0, output_final_state, chunk_size)
        ctx.save_for_backward(q, k, v, gc, gamma, h0, A)
        ctx.scale, ctx.chunk_size, ctx.g_dtype = scale, chunk_size, None if g is None else g.dtype
        ctx.h0_dtype = None if h0 is None else h0.dtype
        return o, ht

    @staticmethod
    def backward(ctx, do, dht):
        q, k, v, gc, gamma, h0, A = ctx.saved_tensors
        dq, dk, dv, db, dh0 = chunk_bwd(q, k, v, gc, gamma, ctx.scale, h0, A, do.contiguous(),
                                        None if dht is None else dht.contiguous(), ctx.chunk_size)
        dg = chunk_local_reverse_cumsum(db, ctx.chunk_size).to(ctx.g_dtype) if db is not None else None
        if dh0 is not None:
            dh0 = dh0.to(ctx.h0_dtype)
        return dq, dk, dv, dg, None, None, dh0, None, None


@torch.compiler.disable
def chunk_gla(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor | None = None,
    g_gamma: torch.Tensor | None = None,
    scale: float | None = None,
    initial_state: torch.Tensor | None = None,
    output_final_state: bool = False,
    chunk_size: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Chunked gated linear attention in Triton; arguments and returns as ``linscale.ops.chunk_gla``.

    Args:
        q, k: ``[B, T, H, K]``; v: ``[B, T, H, V]`` (fp32, fp16 or bf16, contiguous, one dtype).
        g: per-key-channel log-decay ``[B, T, H, K]`` (<= 0; differentiable), or
        g_gamma: per-head log-decay ``[H]`` (<= 0; fixed: no gradient is computed for it).
        scale: multiplies q; default ``K ** -0.5``.
        initial_state: ``[B, H, K, V]``, or None for zeros; differentiable.
        output_final_state: also return the state after the last token (fp32).
        chunk_size: tokens per chunk, a power of two >= 16; default 64, or 16 with ``g``.

    Returns:
        ``(o, final_state)``: o ``[B, T, H, V]`` in v's dtype; final_state ``[B, H, K, V]`` fp32 or None.
    """
    check_inputs(q, k, v, g, g_gamma, initial_state)
    if g_gamma is not None and g_gamma.requires_grad:
        raise ValueError("g_gamma: the Triton kernels treat the per-head decay as fixed and compute no gradient "
                         "for it; detach it, or use linscale.ops.chunk_gla")
    BT = chunk_size or (GATED_CHUNK_SIZE if g is not None else CHUNK_SIZE)
    if BT < 16 or BT & (BT - 1):
        raise ValueError(f"chunk_size: {BT} must be a power of two >= 16")
    B, T, H, K = q.shape
    scale = K**-0.5 if scale is None else float(scale)
    if T == 0:
        return empty_sequence(q, v, initial_state, output_final_state)
    o, ht = ChunkGLAFunction.apply(q, k, v, g, g_gamma, scale, initial_state, output_final_state, BT)
    return o, ht


__all__ = ["chunk_gla", "chunk_fwd", "chunk_bwd", "CHUNK_SIZE", "GATED_CHUNK_SIZE", "INTERPRET"]
