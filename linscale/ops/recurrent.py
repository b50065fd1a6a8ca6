"""The step-wise recurrent form: O(1) state per head, used for decoding.

``recurrent_gla_step`` advances the state by one token; ``fused_recurrent_gla`` applies it along a
sequence (same signature and return as the naive reference and the chunked form). Unlike the naive
reference it keeps the input dtype for q/k/v and is written for the decode loop: no upcasting of
whole sequences, no Python-level branching inside the step.
"""
from __future__ import annotations

import torch


def recurrent_gla_step(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    state: torch.Tensor,
    decay: torch.Tensor | None = None,
    scale: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One token of gated linear attention.

    Args:
        q, k: ``[B, H, K]``; v: ``[B, H, V]``; state: ``[B, H, K, V]`` fp32 (or fp64).
        decay: multiplicative decay exp(g) broadcastable to ``[B, H, K]`` (per head ``[1, H, 1]`` or
            per channel ``[B, H, K]``), or None for no decay.

    Returns:
        ``(o, new_state)`` with o ``[B, H, V]`` in v's dtype and new_state fp32.
    """
    work = state.dtype  # fp32 (fp64 in tests)
    if decay is not None:
        state = state * decay.unsqueeze(-1)
    state = state + k.to(work).unsqueeze(-1) * v.to(work).unsqueeze(-2)  # (B, H, K, V)
    o = torch.einsum("bhk,bhkv->bhv", q.to(work) * scale, state)
    return o.to(v.dtype), state


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
    """Gated linear attention by repeated :func:`recurrent_gla_step`; shapes as in the naive form."""
    B, T, H, K = q.shape
    V = v.shape[-1]
    scale = K**-0.5 if scale is None else scale
    work = torch.float64 if q.dtype == torch.float64 else torch.float32
    state = q.new_zeros(B, H, K, V, dtype=work) if initial_state is None else initial_state.to(work)
    head_decay = None if g_gamma is None else g_gamma.to(work).exp().view(1, H, 1)
    outputs = []
    for t in range(T):
        decay = g[:, t].to(work).exp() if g is not None else head_decay
        o_t, state = recurrent_gla_step(q[:, t], k[:, t], v[:, t], state, decay, scale)
        outputs.append(o_t)
    o = torch.stack(outputs, dim=1) if T else v.new_zeros(B, 0, H, V)
    if state is initial_state:  # T = 0 (no step made a new state): the caller's own tensor is not handed back
        state = state.clone()
    return o, (state if output_final_state else None)
