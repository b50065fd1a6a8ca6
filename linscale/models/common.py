"""The skeleton the four architectures share (paper Appendix A.1), read top to bottom.

    X̄ = Norm(X);  O  = TokenMixer(X̄) + X          token mixing (the part that differs)
    Ō = Norm(O);  X' = ChannelMixer(Ō) + O         channel mixing: SwiGLU (LLaMA) or SGLU (linear)

Embeddings are tied: the output projection is the transposed embedding matrix. A token mixer is
any module with ``forward(x, state=None, offset=0, return_state=False) -> (y, new_state)``, where
``state`` is whatever that mixer carries between decoding steps (a KV cache for LLaMA, an O(1)
matrix per head for the linear mixers) and ``offset`` the absolute position of x's first token.

Names follow one vocabulary everywhere: B batch, T tokens, H heads, D head width, d model width.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from linscale.config import ModelConfig
from linscale.ops import chunk_linear_attention, recurrent_linear_attention
from linscale.ops.cross_entropy import linear_cross_entropy
from linscale.ops.naive import naive_recurrent_gla


# ----------------------------------------------------------------------------- norms


class RMSNorm(nn.Module):
    """x / rms(x) · w: LLaMA's normalisation, with a learnable gain w."""

    def __init__(self, d: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def reset_parameters(self) -> None:
        nn.init.ones_(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x, (x.shape[-1],), self.weight, self.eps)


class SRMSNorm(nn.Module):
    """Simple RMSNorm, x / rms(x), no gain (TNL paper eq. 14; ε as in the released code)."""

    def __init__(self, d: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x, (x.shape[-1],), None, self.eps)


# ----------------------------------------------------------------------------- channel mixers


class SwiGLU(nn.Module):
    """LLaMA's channel mixer: (U ⊙ swish(V)) · W_down with U = x·W_u, V = x·W_v."""

    def __init__(self, d: int, g: int):
        super().__init__()
        self.w_u = nn.Linear(d, g, bias=False)
        self.w_v = nn.Linear(d, g, bias=False)
        self.w_down = nn.Linear(g, d, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w_down(self.w_u(x) * F.silu(self.w_v(x)))


class SGLU(SwiGLU):
    """The linear models' channel mixer: (U ⊙ V) · W_down, no activation ("the gate itself can
    introduce non-linearity", TransNormerLLM). Same weights as SwiGLU."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w_down(self.w_u(x) * self.w_v(x))


class LowRankGate(nn.Module):
    """TNL / cosFormer2 output gate G = sigmoid(x · W_gd · W_gu), W_gd ∈ R^{d×t}, W_gu ∈ R^{t×d}."""

    def __init__(self, d: int, rank: int):
        super().__init__()
        self.down = nn.Linear(d, rank, bias=False)
        self.up = nn.Linear(rank, d, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.up(self.down(x)))


# ----------------------------------------------------------------------------- constants of the config


def config_constant(module: nn.Module, name: str, device: torch.device) -> torch.Tensor:
    """``module.<name>``, an fp32 tensor fixed by the config (a decay rate, a rotary frequency), on
    ``device``: moved there at its first use and kept. Such tensors are plain attributes, not buffers,
    because what casts a model's buffers would round them: ``model.to(torch.bfloat16)``, and FSDP under
    bf16-mixed (the paper preset's; Lightning sets FSDP's buffer_dtype to bf16). Rounded to bf16 they are
    another model than the one evaluated in fp32: at a distance of 2047 tokens, a rotary angle (head
    width 128) off by up to 2.5 radians, a TNL decay's weight (12 heads, 6-32 layers) by up to 1.5% where it
    is above 0.001, and by several times itself below."""
    value = getattr(module, name)
    if value.device != device:
        value = value.to(device)
        setattr(module, name, value)
    return value


# ----------------------------------------------------------------------------- linear attention


def linear_attention(mode: str, q, k, v, g=None, g_gamma=None, scale=1.0, state=None,
                     return_state=False, chunk_size=64):
    """Run gated linear attention in one of its equivalent forms (``linscale.ops``).

    ``mode`` is ``chunk`` (training; dispatches to Triton on CUDA), ``naive`` (the fp32 token loop)
    or ``recurrent`` (the step-wise decoding form; Triton's fused recurrent kernel on CUDA). A single token with a state always takes the
    recurrent step: that is the O(1) decoding path.
    """
    T = q.shape[1]
    kwargs = dict(g=g, g_gamma=g_gamma, scale=scale, initial_state=state, output_final_state=return_state)
    if mode == "naive":
        return naive_recurrent_gla(q, k, v, **kwargs)
    if mode == "recurrent" or (state is not None and T == 1):
        return recurrent_linear_attention(q, k, v, **kwargs)
    return chunk_linear_attention(q, k, v, chunk_size=chunk_size, **kwargs)


# ----------------------------------------------------------------------------- block and model


class Block(nn.Module):
    """One pre-norm residual block: token mixer, then channel mixer."""

    def __init__(self, token_mixer: nn.Module, channel_mixer: nn.Module, norm: type[nn.Module], config: ModelConfig):
        super().__init__()
        self.norm1 = norm(config.d_model, config.norm_eps)
        self.token_mixer = token_mixer
        self.norm2 = norm(config.d_model, config.norm_eps)
        self.channel_mixer = channel_mixer

    def forward(self, x, state=None, offset=0, return_state=False, **mixer_inputs):
        h, state = self.token_mixer(self.norm1(x), state=state, offset=offset, return_state=return_state,
                                    **mixer_inputs)
        x = x + h
        x = x + self.channel_mixer(self.norm2(x))
        return x, state


@dataclass
class DecodeState:
    """Everything a model carries between decoding calls."""

    offset: int = 0  # tokens consumed so far (absolute position of the next token)
    layers: list = field(default_factory=list)  # one entry per block, mixer-defined
    extra: object = None  # model-level state (cosFormer2's TPE recurrence)

    def nbytes(self) -> int:
        """Memory held by the state (KV cache or recurrent matrices), in bytes."""
        tensors = []

        def collect(x):
            if isinstance(x, torch.Tensor):
                tensors.append(x)
            elif isinstance(x, (list, tuple)):
                for item in x:
                    collect(item)

        collect(self.layers)
        collect(self.extra)
        return sum(t.numel() * t.element_size() for t in tensors)


class LMOutput:
    """What a forward returns: ``logits`` (B, T, vocab), ``loss`` (mean cross-entropy in nats over labels
    != -100, when labels were given) and ``state`` (a DecodeState, when asked for).

    When the loss was computed fused with the output projection (:func:`linear_cross_entropy`, CPU
    training and evaluation) the logits were never formed; they are computed on first access from the
    final hidden states, and that access must come before the weights change (an optimizer step).
    """

    def __init__(self, logits: torch.Tensor | None = None, loss: torch.Tensor | None = None,
                 state: DecodeState | None = None, hidden: torch.Tensor | None = None,
                 head: torch.Tensor | None = None):
        self._logits, self.loss, self.state = logits, loss, state
        self._hidden, self._head = hidden, head
        self._head_version = head._version if head is not None else None

    @property
    def logits(self) -> torch.Tensor:
        if self._logits is None and self._hidden is not None:
            if self._head._version != self._head_version:
                raise RuntimeError("LMOutput.logits: the output weights changed since this forward (an optimizer "
                                   "step?); read the logits before changing them, or run the forward again")
            self._logits = F.linear(self._hidden, self._head)
        return self._logits


class CausalLM(nn.Module):
    """Embedding → (optional input transform) → blocks → final norm → tied output projection."""

    def __init__(self, config: ModelConfig, blocks: list[Block], norm: type[nn.Module],
                 input_transform: nn.Module | None = None):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.d_model)
        self.input_transform = input_transform
        self.blocks = nn.ModuleList(blocks)
        self.norm = norm(config.d_model, config.norm_eps)
        # The loss fused with the output projection (CPU, fp32/fp64, no autocast): 1.4-2.2x faster for those
        # two than logits + F.cross_entropy (`linscale bench`); False restores the unfused pair (same values
        # to fp32 rounding). Not a parameter: checkpoints and exports do not see it.
        self.fused_loss = True
        self._init_projections()

    def reset_parameters(self) -> None:
        """Every parameter drawn or set again as a new model's are: the parts with an initialisation of their
        own (norms' gains, cosFormer2's TPE and LRPE angles, HGRN2's lower-bound logits), then the projections
        and the embedding (``_init_projections``). Not called by the constructor, which draws those parts as
        it builds them: that order of draws is the committed runs' initial weights."""
        for module in self.modules():
            if module is not self and type(module).__module__.startswith("linscale.") and hasattr(
                    module, "reset_parameters"):
                module.reset_parameters()
        self._init_projections()

    def _init_projections(self) -> None:
        """N(0, init_std) for every projection and the embedding; output projections of each residual branch
        scaled by 1/√(2L) (GPT-2), so the residual stream's variance does not grow with depth. The paper gives
        no initialisation."""
        std = self.config.init_std
        residual_std = std / math.sqrt(2 * self.config.n_layer)
        for name, module in self.named_modules():
            if isinstance(module, nn.Linear):
                is_residual_out = name.endswith(("o_proj", "w_down"))
                nn.init.normal_(module.weight, mean=0.0, std=residual_std if is_residual_out else std)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, mean=0.0, std=std)

    def layer_inputs(self) -> list[dict]:
        """Extra per-layer inputs computed once per forward (HGRN2's lower bounds); none by default."""
        return [{} for _ in self.blocks]

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor | None = None,
                state: DecodeState | None = None, return_state: bool = False) -> LMOutput:
        """input_ids, labels: (B, T) token ids (labels already shifted; -100 is ignored).

        With ``state`` (or ``return_state=True``) the call continues from / returns a DecodeState, so a
        sequence can be processed in pieces: prefill once, then one token at a time.
        """
        B, T = input_ids.shape
        carry = state is not None or return_state
        state = state if state is not None else DecodeState(layers=[None] * len(self.blocks))
        x = self.embed(input_ids)  # (B, T, d)
        new_extra = None
        if self.input_transform is not None:
            x, new_extra = self.input_transform(x, state=state.extra, return_state=carry)
        new_layers = []
        for block, layer_state, extra in zip(self.blocks, state.layers, self.layer_inputs()):
            x, layer_state = block(x, state=layer_state, offset=state.offset, return_state=carry, **extra)
            new_layers.append(layer_state)
        x = self.norm(x)
        new_state = DecodeState(state.offset + T, new_layers, new_extra) if carry else None
        head = self.embed.weight  # tied embedding
        if labels is not None and self.fused_loss and _fusable(x):
            loss = linear_cross_entropy(x.reshape(B * T, -1), head, labels.reshape(B * T), ignore_index=-100)
            return LMOutput(None, loss, new_state, hidden=x, head=head)
        logits = F.linear(x, head)  # (B, T, vocab)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.float().reshape(B * T, -1), labels.reshape(B * T), ignore_index=-100)
        return LMOutput(logits, loss, new_state)

    def num_params(self, non_embedding: bool = True) -> int:
        """Parameter count; with ``non_embedding`` the (tied) embedding matrix is excluded, as in the
        paper, which counts non-embedding parameters "as our vocabulary size is large"."""
        n = sum(p.numel() for p in self.parameters())
        return n - self.embed.weight.numel() if non_embedding else n

    @torch.no_grad()
    def generate(self, input_ids: torch.Tensor, max_new_tokens: int, temperature: float = 0.0,
                 top_k: int | None = None, eos_token_id: int | None = None,
                 generator: torch.Generator | None = None, state: DecodeState | None = None,
                 stop=None) -> torch.Tensor:
        """Continue ``input_ids`` (B, T) by up to ``max_new_tokens`` tokens.

        The prompt is processed once in parallel (the chunked form, or SDPA for LLaMA); then each new
        token costs one recurrent step with an O(1) state (linear models) or one step against the KV
        cache (LLaMA). temperature 0 is greedy decoding. Returns prompt and continuation (B, T + new).
        With ``state`` (from a call with ``return_state=True``), ``input_ids`` continue that state: a
        shared prefix is consumed once, and the benchmark times decoding steps alone. ``stop``: called with
        the continuation so far (B, n), it says which rows are done (B,) bool, e.g. at a stop string; a
        done row continues with ``eos_token_id`` (required then), and all done ends the loop.
        """
        if stop is not None and eos_token_id is None:
            raise ValueError("generate: stop needs eos_token_id, which a stopped row continues with")
        if max_new_tokens <= 0:
            return input_ids
        out = self(input_ids, state=state, return_state=True)
        tokens = [input_ids]
        finished = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        for step in range(max_new_tokens):
            next_token = _sample(out.logits[:, -1], temperature, top_k, generator)  # (B,)
            if eos_token_id is not None:
                next_token = torch.where(finished, torch.full_like(next_token, eos_token_id), next_token)
                finished |= next_token == eos_token_id
            tokens.append(next_token[:, None])
            if stop is not None and not bool(finished.all()):
                finished |= stop(torch.cat(tokens[1:], dim=1))
            if (eos_token_id is not None and bool(finished.all())) or step == max_new_tokens - 1:
                break
            out = self(next_token[:, None], state=out.state)
        return torch.cat(tokens, dim=1)


def _fusable(x: torch.Tensor) -> bool:
    """The fused loss is written for full-precision CPU tensors; GPUs (bf16 autocast) keep F.cross_entropy."""
    return x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) and not torch.is_autocast_enabled("cpu")


def _sample(logits: torch.Tensor, temperature: float, top_k: int | None, generator) -> torch.Tensor:
    if temperature <= 0:
        return logits.argmax(-1)
    logits = logits.float() / temperature
    if top_k is not None:
        kth = torch.topk(logits, min(top_k, logits.shape[-1])).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return torch.multinomial(logits.softmax(-1), 1, generator=generator).squeeze(-1)
