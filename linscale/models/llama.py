"""LLaMA: the softmax-attention baseline (paper §2, Appendix A.1.1).

    Q_i, K_i, V_i = X̄W_qi, X̄W_ki, X̄W_vi            per head, width D = d/h
    Q_i, K_i      = RoPE(Q_i), RoPE(K_i)
    O_i           = softmax(Q_i K_iᵀ / √D + causal mask) · V_i
    O             = concat(O_1 … O_h) · W_o

RMSNorm (with gain) and SwiGLU around it. The RoPE base is not given in the paper; LLaMA-2's 10000 is
the default. Training uses ``scaled_dot_product_attention``; decoding keeps a KV cache whose size grows
with the context (contrast with the linear mixers' fixed state).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from linscale.config import ModelConfig
from linscale.models.common import Block, CausalLM, RMSNorm, SwiGLU, config_constant


def attention(q, k, v, **kwargs):
    """softmax(qkᵀ/√D)v by torch's fused kernels, except in bf16/fp16 on a CPU: there torch's flash kernel
    fails ("pack_vnni2 is only supported when avx512 is supported") where ATen's dispatch is held to AVX2 on
    an AVX-512 CPU, as every linscale command holds it (linscale/train/code_paths.py), so the plain (math)
    form runs instead. fp32, which the study trains in, is unchanged."""
    if q.device.type == "cpu" and q.dtype in (torch.bfloat16, torch.float16):
        from torch.nn.attention import SDPBackend, sdpa_kernel

        with sdpa_kernel(SDPBackend.MATH):
            return F.scaled_dot_product_attention(q, k, v, **kwargs)
    return F.scaled_dot_product_attention(q, k, v, **kwargs)


class RotaryEmbedding(nn.Module):
    """cos/sin tables for rotary position embedding (rotate-half convention), grown on demand."""

    def __init__(self, head_dim: int, base: float, max_len: int):
        super().__init__()
        # fixed by the config: not trained, not saved, kept fp32 (common.config_constant), as are the tables
        self.inv_freq = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
        self._cache_len = 0
        self._build(min(max_len, 2048), self.inv_freq.device)

    def _build(self, length: int, device: torch.device) -> None:
        inv_freq = config_constant(self, "inv_freq", device)
        t = torch.arange(length, dtype=torch.float32, device=device)
        freqs = torch.outer(t, inv_freq)  # (L, D/2)
        emb = torch.cat([freqs, freqs], dim=-1)  # (L, D)
        self.cos, self.sin, self._cache_len = emb.cos(), emb.sin(), length

    def forward(self, x: torch.Tensor, offset: int) -> torch.Tensor:
        """Rotate x (B, T, H, D) as if its first token sat at position ``offset``."""
        T = x.shape[1]
        if offset + T > self._cache_len or self.cos.device != x.device:
            self._build(max(offset + T, 2 * self._cache_len), x.device)
        cos = self.cos[offset:offset + T, None, :].to(x.dtype)  # (T, 1, D)
        sin = self.sin[offset:offset + T, None, :].to(x.dtype)
        x1, x2 = x.chunk(2, dim=-1)
        return x * cos + torch.cat([-x2, x1], dim=-1) * sin


class LlamaAttention(nn.Module):
    """Causal multi-head softmax attention with RoPE; the decoding state is a (K, V) cache."""

    def __init__(self, config: ModelConfig, layer_idx: int):
        super().__init__()
        d, self.n_head, self.head_dim = config.d_model, config.n_head, config.head_dim
        self.q_proj = nn.Linear(d, d, bias=False)
        self.k_proj = nn.Linear(d, d, bias=False)
        self.v_proj = nn.Linear(d, d, bias=False)
        self.o_proj = nn.Linear(d, d, bias=False)
        self.rope = RotaryEmbedding(self.head_dim, config.rope_base, config.max_seq_len)

    def _qkv(self, x: torch.Tensor, offset: int):
        B, T, _ = x.shape
        H, D = self.n_head, self.head_dim
        q = self.rope(self.q_proj(x).view(B, T, H, D), offset).transpose(1, 2)  # (B, H, T, D)
        k = self.rope(self.k_proj(x).view(B, T, H, D), offset).transpose(1, 2)  # (B, H, T, D)
        v = self.v_proj(x).view(B, T, H, D).transpose(1, 2)  # (B, H, T, D)
        return q, k, v

    def attention_probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """softmax(Q Kᵀ/√D + causal mask) for this layer's input x (B, T, d): (B, H, T, T), row t the weights
        query t puts on keys 0..t; the weights forward() applies through scaled_dot_product_attention,
        spelled out for probes (which token a head reads: benchmarks/probe_retrieval.py)."""
        q, k, _ = self._qkv(x, 0)
        T = x.shape[1]
        scores = q @ k.transpose(-1, -2) / self.head_dim ** 0.5  # (B, H, T, T)
        causal = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
        return scores.masked_fill(~causal, float("-inf")).softmax(dim=-1)

    def forward(self, x, state=None, offset=0, return_state=False):
        B, T, d = x.shape
        q, k, v = self._qkv(x, offset)
        if state is not None:  # KV cache from earlier calls
            k = torch.cat([state[0], k], dim=2)  # (B, H, S, D), S = past + T
            v = torch.cat([state[1], v], dim=2)
        S = k.shape[2]
        if S == T:
            o = attention(q, k, v, is_causal=True)
        elif T == 1:
            o = attention(q, k, v)  # one new query sees the whole cache
        else:  # a block of new queries after a cache: query i sees keys up to position past + i
            allowed = torch.ones(T, S, dtype=torch.bool, device=x.device).tril(diagonal=S - T)
            o = attention(q, k, v, attn_mask=allowed)
        o = o.transpose(1, 2).reshape(B, T, d)  # (B, T, d)
        return self.o_proj(o), ((k, v) if return_state else None)


def build(config: ModelConfig) -> CausalLM:
    blocks = [Block(LlamaAttention(config, i), SwiGLU(config.d_model, config.d_ffn), RMSNorm, config)
              for i in range(config.n_layer)]
    return CausalLM(config, blocks, RMSNorm)
