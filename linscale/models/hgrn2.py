"""HGRN2: gated linear RNN with outer-product state expansion (paper §2, Appendix A.1.3).

Per head (width D = d/h), with a data-dependent forget gate per key channel:

    q = swish(X̄W_q)                   the output gate plays the query
    f = lb_l + (1 − lb_l) ⊙ sigmoid(X̄W_f)   forget gate, bounded below by the layer's lower bound
    i = X̄W_i                          the input plays the value
    S_t = diag(f_t) · S_{t-1} + (1 − f_t) i_tᵀ,   o_t = S_tᵀ q_t     (the key is tied: k = 1 − f)
    O = SRMSNorm(concat O_h) · W_o

Lower bounds (HGRN): a learnable table Γ ∈ R^{L×d} (``LowerBoundTable``), zero-initialised;
lb = cumsum(softmax(Γ, dim=layers)) minus its first row, so layer 0's bound is 0 and the bound rises with
depth (lower layers short range, upper layers long range). Applied in log space:
log f = logaddexp(log lb, log(1 − lb) + logsigmoid(F)).
Following flash-linear-attention's HGRN2 layer (which the paper trained with), q gets a swish; no
short convolution. The state is D×D per head: d·D numbers per layer, with no extra parameters.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from linscale.config import ModelConfig
from linscale.models.common import SGLU, Block, CausalLM, SRMSNorm, linear_attention


HGRN2_MAX_CHUNK = 16


class HGRN2Attention(nn.Module):
    """The HGRN2 token mixer; its layer's lower bound (d,) comes from the model at each forward."""

    def __init__(self, config: ModelConfig, layer_idx: int):
        super().__init__()
        d, self.n_head, self.head_dim = config.d_model, config.n_head, config.head_dim
        # The per-channel chunk form is fastest with short chunks on CPUs (C=16 is ~2.5x faster than C=64,
        # measured with `linscale bench`); config.chunk_size caps it. Results do not depend on C.
        self.mode, self.chunk_size = config.mixer_mode, min(config.chunk_size, HGRN2_MAX_CHUNK)
        self.q_proj = nn.Linear(d, d, bias=False)
        self.f_proj = nn.Linear(d, d, bias=False)
        self.i_proj = nn.Linear(d, d, bias=False)
        self.norm = SRMSNorm(d, config.norm_eps)
        self.o_proj = nn.Linear(d, d, bias=False)

    def forward(self, x, lower_bound=None, state=None, offset=0, return_state=False):
        B, T, d = x.shape
        H, D = self.n_head, self.head_dim
        q = F.silu(self.q_proj(x)).view(B, T, H, D)
        # at least fp32 under bf16 autocast, as flash-linear-attention does: the decays' cumulative sums over
        # a chunk amplify their rounding (the layers with a lower bound were promoted by it; layer 0 was not)
        gate = self.f_proj(x)
        log_f = F.logsigmoid(gate.to(torch.promote_types(gate.dtype, torch.float32)))
        if lower_bound is not None:  # log f = log(lb + (1 - lb)·sigmoid(F)), without leaving log space
            log_f = torch.logaddexp(lower_bound.log(), torch.log1p(-lower_bound) + log_f)
            # a gate open to σ(F) ≈ 1 (F ≳ 16, fp32) rounds to f = 1 + 6e-8: a decay above one, which the
            # Triton kernels refuse (a long GPU run stopped when one gate saturated). No-op below f = 1.
            log_f = log_f.clamp(max=0)
        log_f = log_f.view(B, T, H, D)
        k = -torch.expm1(log_f)  # 1 - f
        i = self.i_proj(x).view(B, T, H, D)
        o, state = linear_attention(self.mode, q, k, i, g=log_f, scale=1.0, state=state,
                                    return_state=return_state, chunk_size=self.chunk_size)  # (B, T, H, D)
        return self.o_proj(self.norm(o.reshape(B, T, d))), state


class LowerBoundTable(nn.Module):
    """Γ (L, d), the logits of HGRN2's lower bounds, and the bounds they give: lb = cumsum(softmax(Γ, dim=
    layers)) minus its first row. A module of its own so that FSDP can gather it apart in fp32 under bf16
    mixed precision (``linscale.models.FP32_MODULES``): gathered in bf16, 1 − lb is off by up to 0.4% for Γ
    of scale 0.5 and 5-11% for scale 2 (32 layers, d = 4096; the worst in the top layer, where 1 − lb is
    smallest), and a decay's error compounds over the thousands of steps a long-range layer remembers."""

    def __init__(self, n_layer: int, d_model: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(n_layer, d_model))  # Γ, (L, d), zero-initialised
        self.gamma.no_weight_decay = True  # logits of a softmax over layers, not weights

    def reset_parameters(self) -> None:
        nn.init.zeros_(self.gamma)

    def forward(self) -> torch.Tensor:
        """lb (L, d) in fp32, rising with depth, layer 0's exactly 0."""
        lb = self.gamma.float().softmax(dim=0).cumsum(dim=0)
        return lb - lb[0]


class HGRN2LM(CausalLM):
    """CausalLM plus the layer-wise lower-bound table shared by all HGRN2 layers."""

    def __init__(self, config: ModelConfig):
        blocks = [Block(HGRN2Attention(config, i), SGLU(config.d_model, config.d_ffn), SRMSNorm, config)
                  for i in range(config.n_layer)]
        super().__init__(config, blocks, SRMSNorm)
        self.lower_bounds = LowerBoundTable(config.n_layer, config.d_model)
        # first among the submodules, where Γ stood as the root's own parameter: the parameters keep their
        # order, and with it the gradient norm's rounding (clipping) and every bit of training
        self._modules = {"lower_bounds": self._modules.pop("lower_bounds"), **self._modules}
        self._register_load_state_dict_pre_hook(_rename_lower_bounds)

    def lower_bound_per_layer(self) -> torch.Tensor:
        """lb (L, d): cumulative softmax over layers, shifted so that layer 0's bound is exactly 0."""
        return self.lower_bounds()

    def layer_inputs(self) -> list[dict]:
        # Layer 0's bound is exactly 0: pass none, since log(0) would make its gradient 0·∞ = NaN.
        bounds = self.lower_bound_per_layer()
        return [{"lower_bound": None if i == 0 else lb} for i, lb in enumerate(bounds)]


def _rename_lower_bounds(state_dict, prefix, *args) -> None:
    """Checkpoints and exports written before Γ had a module of its own hold it as ``lower_bounds``. (Their
    weights load; a run checkpointed under FSDP before then cannot resume its optimiser state, which FSDP
    keys by parameter name, and starts again.)"""
    if prefix + "lower_bounds" in state_dict and prefix + "lower_bounds.gamma" not in state_dict:
        state_dict[prefix + "lower_bounds.gamma"] = state_dict.pop(prefix + "lower_bounds")


def build(config: ModelConfig) -> CausalLM:
    return HGRN2LM(config)
