"""The chunked parallel form of gated linear attention, in plain PyTorch (the CPU training path).

The sequence is cut into chunks of C tokens. Let b_i be the cumulative log-decay from the chunk
start up to and including token i (per head for TNL, per key channel for HGRN2, 0 for cosFormer2).
For token i of a chunk whose incoming state is S:

    o_i   = (q_i ⊙ e^{b_i}) · S                      inter-chunk: the past, through the state
          + Σ_{j≤i} [Σ_c q_ic k_jc e^{b_ic − b_jc}] v_j   intra-chunk: a causal, decay-masked q·kᵀ·v
    S_out = e^{b_C} ⊙ S + Σ_j (k_j ⊙ e^{b_C − b_j})ᵀ v_j    state passed to the next chunk

Every exponent is a difference b_later − b_earlier ≤ 0, so nothing overflows however strong the
decay (``kernels.md`` §1). Work inside a chunk is matrix products; only the state passing loops,
once per chunk. For a per-channel decay the intra-chunk scores need the full [C, C, K] weight
(no factorisation into (q e^b)(k e^{-b})ᵀ, which overflows); GLA's secondary chunking keeps that
elementwise part to sub-chunks of c tokens and does the rest with matrix products, all exponents
still ≤ 0 (:func:`_channel_decay_scores`). On CPUs, C = 16 is fastest for it (``linscale bench``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def chunk_gla(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor | None = None,
    g_gamma: torch.Tensor | None = None,
    scale: float | None = None,
    initial_state: torch.Tensor | None = None,
    output_final_state: bool = False,
    chunk_size: int = 64,
    sub_chunk_size: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Gated linear attention, chunk by chunk. Arguments and returns as ``naive_recurrent_gla``.

    Args:
        chunk_size: tokens per chunk C; any positive integer, T need not be a multiple of it.
        sub_chunk_size: per-channel decay only: the block size c of the elementwise part of the
            intra-chunk scores (see :func:`_channel_decay_scores`); default 16, or the largest divisor
            of C below it.

    Example:
        >>> q, k, v = (torch.randn(2, 100, 4, 16) for _ in range(3))
        >>> o, ht = chunk_gla(q, k, v, g_gamma=-torch.rand(4), output_final_state=True)
        >>> o.shape, ht.shape
        (torch.Size([2, 100, 4, 16]), torch.Size([2, 4, 16, 16]))
    """
    B, T, H, K = q.shape
    V = v.shape[-1]
    C = chunk_size
    scale = K**-0.5 if scale is None else scale
    out_dtype = v.dtype
    work = torch.float64 if q.dtype == torch.float64 else torch.float32  # accumulate in >= fp32
    N = max(1, -(-T // C))  # number of chunks
    pad = N * C - T

    def to_chunks(x: torch.Tensor) -> torch.Tensor:  # (B, T, H, D) -> (B, H, N, C, D)
        x = x.to(work)
        if pad:  # F.pad copies even when it adds nothing
            x = F.pad(x, (0, 0, 0, 0, 0, pad))
        return x.reshape(B, N, C, H, -1).permute(0, 3, 1, 2, 4).contiguous()  # contiguous: bmm would copy

    q, k, v = to_chunks(q), to_chunks(k), to_chunks(v)
    if scale != 1.0:  # the study's three mixers all take scale 1: a multiply (and its backward) saved
        q = q * scale
    causal = torch.ones(C, C, dtype=torch.bool, device=q.device).tril()

    # b: cumulative log-decay inside each chunk; padded tokens add no decay, so the final state
    # is exactly the state after token T-1.
    if g is not None:
        b = to_chunks(g).cumsum(-2)  # (B, H, N, C, K)
        b_last = b[..., -1:, :]  # (B, H, N, 1, K)
        q_inter, k_state, chunk_decay = q * b.exp(), k * (b_last - b).exp(), b_last.exp().squeeze(-2)
        scores = _channel_decay_scores(q, k, b, sub_chunk_size or 16)  # (B, H, N, C, C)
    elif g_gamma is not None:
        valid = torch.ones(N * C, dtype=work, device=q.device)
        valid[T:] = 0
        b = (g_gamma.to(work).view(H, 1, 1) * valid.view(1, N, C)).cumsum(-1)  # (H, N, C)
        b_last = b[..., -1:]  # (H, N, 1)
        q_inter = q * b.exp().unsqueeze(-1)
        k_state = k * (b_last - b).exp().unsqueeze(-1)
        chunk_decay = b_last.exp().view(1, H, N, 1)
        diff = (b.unsqueeze(-1) - b.unsqueeze(-2)).masked_fill(~causal, float("-inf"))  # (H, N, C, C)
        scores = (q @ k.transpose(-1, -2)) * diff.exp()
    else:
        q_inter, k_state, chunk_decay = q, k, None
        scores = (q @ k.transpose(-1, -2)).masked_fill(~causal, 0.0)

    o = scores @ v  # intra-chunk: (B, H, N, C, V)

    # State passing: the only sequential part, one step per chunk.
    kv = k_state.transpose(-1, -2) @ v  # each chunk's contribution: (B, H, N, K, V)
    state = q.new_zeros(B, H, K, V) if initial_state is None else initial_state.to(work)
    # unbind, not kv[:, :, n]: each indexing's backward would write a full-size zero gradient, O(N²) in all
    kv_chunks = kv.unbind(2)
    decays = [None] * N if chunk_decay is None else chunk_decay.unsqueeze(-1).unbind(2)  # (B|1, H, K|1, 1)
    incoming = []
    for kv_n, decay in zip(kv_chunks, decays):
        incoming.append(state)
        state = kv_n + (state if decay is None else state * decay)
    o = o + q_inter @ torch.stack(incoming, dim=2)  # inter-chunk: (B, H, N, C, V)

    o = o.permute(0, 2, 3, 1, 4).reshape(B, N * C, H, V)[:, :T]
    final = state.float() if work == torch.float32 else state
    return o.to(out_dtype), (final if output_final_state else None)


def _channel_decay_scores(q: torch.Tensor, k: torch.Tensor, b: torch.Tensor, sub: int) -> torch.Tensor:
    """Intra-chunk scores A_ij = Σ_c q_ic k_jc e^{b_ic − b_jc} (j ≤ i) for a per-channel decay.

    q, k, b: (..., C, K) with b the cumulative log-decay inside the chunk (non-increasing along C).
    GLA's secondary chunking (fla ``chunk_gla_fwd_intra_gk``), so that the [C, C, K] weight is never
    built: cut the chunk into S = C/c sub-chunks and

    - diagonal blocks (i, j in the same sub-chunk): elementwise over K, the c(c+1)/2 pairs j ≤ i;
    - j in an earlier sub-chunk than i: with r the cumulative decay at the first token of i's sub-chunk,
      e^{b_i − b_j} = e^{b_i − r} · e^{r − b_j}, both exponents ≤ 0 since b_i ≤ r ≤ b_j, so the block
      is a matrix product (q ⊙ e^{b − r}) · (k ⊙ e^{r − b})ᵀ that cannot overflow.

    Costs about (S + c/2)·K elementwise terms per token instead of C·K (the [C, C, K] weight).
    """
    C, K = q.shape[-2:]
    c = max(d for d in range(1, min(max(sub, 1), C) + 1) if C % d == 0)  # sub-chunk length dividing C
    S = C // c
    lead = q.shape[:-2]
    qs, ks, bs = (x.view(*lead, S, c, K) for x in (q, k, b))
    # Diagonal blocks, one sub-diagonal i - j = δ at a time (slices, no masked half): c(c+1)/2 pairs, not c².
    diag = torch.diag_embed((qs * ks).sum(-1))  # δ = 0, weight 1: (..., S, c, c)
    for delta in range(1, c):
        weight = (bs[..., delta:, :] - bs[..., :-delta, :]).exp()  # e^{b_i - b_{i-δ}} ≤ 1: (..., S, c-δ, K)
        band = (qs[..., delta:, :] * ks[..., :-delta, :] * weight).sum(-1)  # (..., S, c-δ)
        diag = diag + torch.diag_embed(band, offset=-delta)
    if S == 1:
        return diag.view(*lead, C, C)
    r = bs[..., :1, :]  # (..., S, 1, K): reference decay at each sub-chunk's first token
    q_ref = qs * (bs - r).exp()  # (..., S, c, K)
    # j strictly before sub-chunk s: exponent r_s - b_j ≤ 0; other keys are masked before the exp
    before = torch.arange(C, device=q.device).view(1, C) < (torch.arange(S, device=q.device) * c).view(S, 1)
    rel = (r - b.unsqueeze(-3)).masked_fill(~before[..., None], float("-inf"))  # (..., S, C, K)
    k_ref = k.unsqueeze(-3) * rel.exp()  # (..., S, C, K)
    off = q_ref @ k_ref.transpose(-1, -2)  # (..., S, c, C): zero on and after the diagonal block
    eye = torch.eye(S, dtype=q.dtype, device=q.device).view(S, 1, S, 1)
    scores = off.view(*lead, S, c, S, c) + diag.unsqueeze(-2) * eye  # diagonal blocks placed in
    return scores.view(*lead, C, C)
