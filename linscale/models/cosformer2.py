"""cosFormer2: linear attention without decay (paper §2.2, Appendix A.1.4).

    X   = TPE(Embedding(tokens))                                  once, after the embedding
    Q_i = swish(X̄W_qi),  K_i = swish(X̄W_ki),  V_i = X̄W_vi           per head, width D = d/h
    Q_i ← [cos(sθ_i) ⊙ Q_i, sin(sθ_i) ⊙ Q_i]   (likewise K_i)          LRPE: q/k width doubles to 2D
    O_i = linear attention with λ = 1 (no decay)
    O   = (SRMSNorm(concat O_i) ⊙ G) · W_o,   G = sigmoid(X̄ · W_gd · W_gu)

With the angle at position s equal to s·θ (inferred, paper.md §8.4), q̃_s·k̃_t = Σ_c q_sc k_tc cos((s−t)θ_c):
a relative, per-channel cosine reweighting of the attention scores, in place of cosFormer's single
angle and its denominator (the norm replaces the denominator). θ ∈ R^{H×D} is learnable (xmixers' legacy
LRPE type 3, which matches the paper's text), initialised like RoPE's frequencies.

TPE (Toeplitz positional encoding, LightNet arXiv:2405.21022) is **uncertain**: the paper gives only its
cost (4nde FLOPs and de parameters, e = d/h) and the released code's module does not match that cost.
Our reading: a causal Toeplitz (relative-position) mixing of the embeddings along time, realised as an
e-channel decayed recurrence,

    u_t = x_t W (W ∈ R^{d×e}),  h_t = γ ⊙ h_{t-1} + u_t,  TPE(x)_t = x_t + h_t Wᵀ

with fixed per-channel decays γ (ALiBi-style slopes, so channels cover short to long ranges). It has
exactly de parameters and costs 2nde + O(ne) + 2nde FLOPs forward; it is relative-position (time
invariant), causal, and has an O(e) decoding state.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from linscale.config import ModelConfig
from linscale.models.common import (SGLU, Block, CausalLM, LowRankGate, SRMSNorm, config_constant,
                                    linear_attention)
from linscale.models.tnl import alibi_slopes


class ToeplitzPositionalEncoding(nn.Module):
    """x + (causal decayed recurrence over x·W)·Wᵀ; the state between decoding calls is h (B, e)."""

    def __init__(self, d: int, e: int, mode: str, chunk_size: int, init_std: float = 0.02):
        super().__init__()
        self.mode, self.chunk_size, self.init_std = mode, chunk_size, init_std
        self.proj = nn.Parameter(torch.empty(d, e))  # W, (d, e)
        # drawn here, before CausalLM._init_projections draws the rest (that order is the committed runs')
        self.reset_parameters()
        # (e,) fixed by the config: not trained, not saved, kept fp32 (common.config_constant)
        self.log_gamma = -torch.tensor(alibi_slopes(e), dtype=torch.float32)

    def forward(self, x, state=None, return_state=False):
        B, T, d = x.shape
        u = (x @ self.proj).unsqueeze(-1)  # (B, T, e, 1): each channel is a "head" of width 1
        ones = torch.ones_like(u)
        # h_t = γ h_{t-1} + u_t is gated linear attention with q = k = 1 and a constant decay per channel.
        log_gamma = config_constant(self, "log_gamma", x.device)  # (e,)
        h, state = linear_attention(self.mode, ones, ones, u, g_gamma=log_gamma, scale=1.0, state=state,
                                    return_state=return_state, chunk_size=self.chunk_size)  # (B, T, e, 1)
        return x + h.squeeze(-1) @ self.proj.t(), state

    def reset_parameters(self) -> None:
        nn.init.normal_(self.proj, std=self.init_std)


class CosFormer2Attention(nn.Module):
    """No-decay linear attention with per-channel cos/sin reweighting and a low-rank output gate."""

    def __init__(self, config: ModelConfig, layer_idx: int):
        super().__init__()
        d, self.n_head, self.head_dim = config.d_model, config.n_head, config.head_dim
        self.mode, self.chunk_size = config.mixer_mode, config.chunk_size
        self.q_proj = nn.Linear(d, d, bias=False)
        self.k_proj = nn.Linear(d, d, bias=False)
        self.v_proj = nn.Linear(d, d, bias=False)
        self.gate = LowRankGate(d, config.gate_rank)
        self.norm = SRMSNorm(d, config.norm_eps)
        self.o_proj = nn.Linear(d, d, bias=False)
        self.rope_base = config.rope_base
        self.theta = nn.Parameter(torch.empty(config.n_head, self.head_dim))  # (H, D), learnable LRPE angles
        self.theta.no_weight_decay = True  # angles, not weights: decay would pull every frequency to 0
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """θ_j = base^(-j/D) in every head (RoPE's frequencies); the projections are CausalLM's to draw."""
        D = self.head_dim
        with torch.no_grad():
            self.theta.copy_(self.rope_base ** (-torch.arange(D, dtype=torch.float32) / D))

    def lrpe(self, x: torch.Tensor, offset: int) -> torch.Tensor:
        """[cos(sθ) ⊙ x, sin(sθ) ⊙ x] for x (B, T, H, D) at positions s = offset … offset+T-1."""
        T = x.shape[1]
        s = torch.arange(offset, offset + T, device=x.device, dtype=torch.float32)
        angle = s[:, None, None] * self.theta.float()  # (T, H, D)
        return torch.cat([x * angle.cos().to(x.dtype), x * angle.sin().to(x.dtype)], dim=-1)  # (B, T, H, 2D)

    def forward(self, x, state=None, offset=0, return_state=False):
        B, T, d = x.shape
        H, D = self.n_head, self.head_dim
        q = self.lrpe(F.silu(self.q_proj(x)).view(B, T, H, D), offset)  # (B, T, H, 2D)
        k = self.lrpe(F.silu(self.k_proj(x)).view(B, T, H, D), offset)  # (B, T, H, 2D)
        v = self.v_proj(x).view(B, T, H, D)
        o, state = linear_attention(self.mode, q, k, v, scale=1.0, state=state, return_state=return_state,
                                    chunk_size=self.chunk_size)  # (B, T, H, D)
        o = self.norm(o.reshape(B, T, d)) * self.gate(x)
        return self.o_proj(o), state


def build(config: ModelConfig) -> CausalLM:
    blocks = [Block(CosFormer2Attention(config, i), SGLU(config.d_model, config.d_ffn), SRMSNorm, config)
              for i in range(config.n_layer)]
    tpe = ToeplitzPositionalEncoding(config.d_model, config.head_dim, config.mixer_mode, config.chunk_size,
                                     config.init_std) if config.tpe else None
    return CausalLM(config, blocks, SRMSNorm, input_transform=tpe)
