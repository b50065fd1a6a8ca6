"""The specification: gated linear attention as a plain token-by-token loop, in fp32.

One recurrence covers the three linear token mixers of the study (paper §2, Appendix A.1):

    S_t = diag(exp(g_t)) · S_{t-1} + k_t v_tᵀ          S_t ∈ R^{K×V} per head
    o_t = scale · S_tᵀ q_t

- TNL:        g_t = g_gamma[h], a constant per-head log-decay (log λ_h < 0);
- cosFormer2: no decay (g = 0, λ = 1);
- HGRN2:      g_t = log f_t ∈ R^K, a data-dependent per-key-channel log forget gate, with k = 1 - f.

This file is the reference the chunked form (``chunk.py``), the step-wise decoding form
(``recurrent.py``) and the Triton kernels (``linscale.kernels``) are all tested against. It is
deliberately slow and obvious; it is not part of the public API.
"""
from __future__ import annotations

import torch


def naive_recurrent_gla(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor | None = None,
    g_gamma: torch.Tensor | None = None,
    scale: float | None = None,
    initial_state: torch.Tensor | None = None,
    output_final_state: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Gated linear attention, one token at a time.

    Args:
        q: queries ``[B, T, H, K]``.
        k: keys ``[B, T, H, K]``.
        v: values ``[B, T, H, V]``.
        g: per-key-channel log-decay ``[B, T, H, K]`` (≤ 0), or None.
        g_gamma: constant per-head log-decay ``[H]`` (≤ 0), or None. At most one of g, g_gamma.
        scale: multiplies q; default ``K ** -0.5``.
        initial_state: ``[B, H, K, V]`` state before the first token, or None for zeros.
        output_final_state: also return the state after the last token (fp32).

    Returns:
        ``(o, final_state)``: o ``[B, T, H, V]`` in q's dtype; final_state ``[B, H, K, V]`` or None.
    """
    B, T, H, K = q.shape
    V = v.shape[-1]
    scale = K**-0.5 if scale is None else scale
    dtype = q.dtype
    work = torch.float64 if dtype == torch.float64 else torch.float32  # fp32 at least
    q, k, v = (x.to(work) for x in (q, k, v))
    S = q.new_zeros(B, H, K, V) if initial_state is None else initial_state.to(work, copy=True)  # never the caller's
    if g_gamma is not None:
        g = g_gamma.view(1, 1, H, 1).expand(B, T, H, K)
    outputs = []
    for t in range(T):
        if g is not None:
            S = S * g[:, t].to(work).exp().unsqueeze(-1)  # decay each key row: (B, H, K, 1)
        S = S + k[:, t].unsqueeze(-1) * v[:, t].unsqueeze(-2)  # k_t v_tᵀ: (B, H, K, V)
        outputs.append(torch.einsum("bhk,bhkv->bhv", q[:, t] * scale, S))
    o = torch.stack(outputs, dim=1) if T else v.new_zeros(B, 0, H, V)
    return o.to(dtype), (S if output_final_state else None)
