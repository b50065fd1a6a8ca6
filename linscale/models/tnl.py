"""TNL: TransNormerLLM blocks with Lightning Attention (paper §2, Appendix A.1.2).

Linear attention with a fixed, data-independent decay λ per head and layer:

    Q_i = swish(X̄W_qi),  K_i = swish(X̄W_ki),  V_i = X̄W_vi          per head, width D = d/h
    S_t = λ · S_{t-1} + k_t v_tᵀ,   o_t = S_tᵀ q_t                    (o_t = Σ_{s≤t} λ^{t-s} (q_t·k_s) v_s)
    G   = sigmoid(X̄ · W_gd · W_gu)                                    low-rank output gate, rank t = d/h
    O   = (SRMSNorm(concat O_i) ⊙ G) · W_o

The channel mixer is SGLU and the norms SRMSNorm. No 1/√D scale (Lightning Attention takes none; the
norm after the mixer makes the output invariant to it). The decay is fixed, not learned: the TNL paper
found learnable λ unstable.

Decay schedule (``config.decay_schedule``; the paper's formula and the released code disagree):

- ``alibi`` (default, the released code, OpenNLPLab/lightning-attention and xmixers): ALiBi head slopes
  s_h (2^(-8(h+1)/H) for H a power of two, the ALiBi interleaving rule otherwise), scaled per layer by
  (1 − l/(L−1) + 1e-5), and λ_{l,h} = exp(−s_{l,h}). Layer 0 decays fastest; the last barely decays.
  With a single layer (L = 1, where l/(L−1) is undefined) we take the layer factor as 1 + 1e-5, i.e.
  treat the only layer as the first.
- ``paper`` (TNL paper eq. 10): λ_{l,h} = exp(−(8h/H)·(1 − l/L)), h = 0…H−1 (fla's indexing), so head 0
  does not decay.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from linscale.config import ModelConfig
from linscale.models.common import SGLU, Block, CausalLM, LowRankGate, SRMSNorm, config_constant, linear_attention


def alibi_slopes(n_head: int) -> list[float]:
    """ALiBi's head slopes (Press et al., arXiv:2108.12409): geometric from 2^(-8/n) for n a power of
    two; otherwise the slopes of the largest power of two below n, then every other slope of twice it."""
    def power_of_two(n: int) -> list[float]:
        start = 2 ** (-8 / n)
        return [start ** (i + 1) for i in range(n)]

    if math.log2(n_head).is_integer():
        return power_of_two(n_head)
    closest = 2 ** math.floor(math.log2(n_head))
    return power_of_two(closest) + alibi_slopes(2 * closest)[0::2][: n_head - closest]


def tnl_log_decay(n_head: int, layer_idx: int, n_layer: int, schedule: str = "alibi") -> torch.Tensor:
    """log λ for every head of one layer, shape (H,). See the module docstring for both schedules."""
    if schedule == "alibi":
        depth = layer_idx / (n_layer - 1) if n_layer > 1 else 0.0
        slopes = torch.tensor(alibi_slopes(n_head), dtype=torch.float64)
        return (-slopes * (1 - depth + 1e-5)).float()
    if schedule == "paper":
        h = torch.arange(n_head, dtype=torch.float64)
        return (-(8 * h / n_head) * (1 - layer_idx / n_layer)).float()
    raise ValueError(f"decay_schedule: {schedule!r} is not one of alibi, paper")


class TNLAttention(nn.Module):
    """Lightning-attention token mixer with a constant per-head decay and a low-rank output gate."""

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
        # Fixed, derived from the config: not trained, not saved, kept fp32 (common.config_constant)
        self.log_decay = tnl_log_decay(config.n_head, layer_idx, config.n_layer, config.decay_schedule)

    def forward(self, x, state=None, offset=0, return_state=False):
        B, T, d = x.shape
        H, D = self.n_head, self.head_dim
        q = F.silu(self.q_proj(x)).view(B, T, H, D)
        k = F.silu(self.k_proj(x)).view(B, T, H, D)
        v = self.v_proj(x).view(B, T, H, D)
        log_decay = config_constant(self, "log_decay", x.device)  # (H,)
        o, state = linear_attention(self.mode, q, k, v, g_gamma=log_decay, scale=1.0, state=state,
                                    return_state=return_state, chunk_size=self.chunk_size)  # (B, T, H, D)
        o = self.norm(o.reshape(B, T, d)) * self.gate(x)
        return self.o_proj(o), state


def build(config: ModelConfig) -> CausalLM:
    blocks = [Block(TNLAttention(config, i), SGLU(config.d_model, config.d_ffn), SRMSNorm, config)
              for i in range(config.n_layer)]
    return CausalLM(config, blocks, SRMSNorm)
