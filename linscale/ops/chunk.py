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
(no factorisation into (q e^b)(k e^{-b})ᵀ, which overflows), so HGRN2 favours small chunks.
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
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Gated linear attention, chunk by chunk. Arguments and returns as ``naive_recurrent_gla``.

    Args:
        chunk_size: tokens per chunk C; any positive integer, T need not be a multiple of it.

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
        x = F.pad(x.to(work), (0, 0, 0, 0, 0, pad))
        return x.view(B, N, C, H, -1).permute(0, 3, 1, 2, 4)

    q, k, v = to_chunks(q) * scale, to_chunks(k), to_chunks(v)
    causal = torch.ones(C, C, dtype=torch.bool, device=q.device).tril()

    # b: cumulative log-decay inside each chunk; padded tokens add no decay, so the final state
    # is exactly the state after token T-1.
    if g is not None:
        b = to_chunks(g).cumsum(-2)  # (B, H, N, C, K)
        b_last = b[..., -1:, :]  # (B, H, N, 1, K)
        q_inter, k_state, chunk_decay = q * b.exp(), k * (b_last - b).exp(), b_last.exp().squeeze(-2)
        diff = b.unsqueeze(-2) - b.unsqueeze(-3)  # b_i - b_j: (B, H, N, C, C, K)
        weight = diff.masked_fill(~causal[..., None], float("-inf")).exp()
        scores = (q.unsqueeze(-2) * k.unsqueeze(-3) * weight).sum(-1)  # (B, H, N, C, C)
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
    incoming = []
    for n in range(N):
        incoming.append(state)
        decay = 1.0 if chunk_decay is None else chunk_decay[:, :, n].unsqueeze(-1)  # (B|1, H, K|1, 1)
        state = state * decay + kv[:, :, n]
    o = o + q_inter @ torch.stack(incoming, dim=2)  # inter-chunk: (B, H, N, C, V)

    o = o.permute(0, 2, 3, 1, 4).reshape(B, N * C, H, V)[:, :T]
    final = state.float() if work == torch.float32 else state
    return o.to(out_dtype), (final if output_final_state else None)
