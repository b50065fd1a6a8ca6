"""Live demonstrations of the four token mixers for the book's architectures chapter.

* :func:`forms_agreement`: the same weights run in every equivalent form (naive token loop, chunked
  parallel, recurrent step; softmax attention in parallel and against a KV cache) give the same logits.
* :func:`decode_memory`: the memory a model carries while decoding, measured from its ``DecodeState``
  after a prefill of T tokens: a KV cache grows as 2·l·T·d numbers, a linear model's state stays
  l·h·(d/h)² (twice that in the key dimension for cosFormer2).
"""
from __future__ import annotations

import pandas as pd
import torch

from linscale.config import ARCHITECTURES, ModelConfig
from linscale.models import build_model


def tiny_config(arch: str, d_model: int = 64, n_layer: int = 2, n_head: int = 4, vocab_size: int = 128,
                chunk_size: int = 16, **fields) -> ModelConfig:
    """A small model of ``arch`` for demonstrations (fast on a CPU)."""
    return ModelConfig(arch=arch, n_layer=n_layer, d_model=d_model, n_head=n_head, vocab_size=vocab_size,
                       d_ffn=2 * d_model, chunk_size=chunk_size, **fields)


@torch.no_grad()
def forms_agreement(archs=ARCHITECTURES, seq_len: int = 96, seed: int = 0, **shape) -> pd.DataFrame:
    """Logits of one model (fixed random weights) computed in each equivalent form, compared with the
    reference form in fp32.

    Reference: the naive token-by-token recurrence for linear models, parallel SDPA for LLaMA. Other
    forms: ``chunk`` (parallel within chunks, recurrent across), ``recurrent`` (the step form over the
    whole sequence), and ``decode`` (a prefill of half the sequence, then one token at a time through
    the DecodeState). Returns one row per (arch, form): max_abs_diff and rel_error = ‖Δ‖/‖ref‖.
    """
    rows = []
    for arch in archs:
        torch.manual_seed(seed)
        config = tiny_config(arch, **shape)
        ids = torch.randint(0, config.vocab_size, (2, seq_len), generator=torch.Generator().manual_seed(seed))
        if config.is_linear:
            reference_model = build_model(config.replace(mixer_mode="naive")).eval()
            forms = {"chunk": config.replace(mixer_mode="chunk"), "recurrent": config.replace(mixer_mode="recurrent")}
            reference_name = "naive"
        else:
            reference_model = build_model(config).eval()
            forms = {}
            reference_name = "parallel"
        weights = reference_model.state_dict()
        reference = reference_model(ids).logits
        outputs = {}
        for form, form_config in forms.items():
            model = build_model(form_config).eval()
            model.load_state_dict(weights)
            outputs[form] = model(ids).logits
        outputs["decode"] = _decode_logits(reference_model if not config.is_linear else _with(weights, config), ids)
        for form, out in outputs.items():
            delta = (out - reference).float()
            rows.append({"arch": arch, "reference": reference_name, "form": form,
                         "max_abs_diff": float(delta.abs().max()),
                         "rel_error": float(delta.norm() / reference.float().norm())})
    return pd.DataFrame(rows)


def _with(weights: dict, config: ModelConfig):
    model = build_model(config).eval()
    model.load_state_dict(weights)
    return model


def _decode_logits(model, ids: torch.Tensor) -> torch.Tensor:
    """Logits of ``ids`` computed as decoding does: a parallel prefill of the first half, then one
    token per call, each call continuing from the previous call's DecodeState."""
    half = ids.shape[1] // 2
    out = model(ids[:, :half], return_state=True)
    logits, state = [out.logits], out.state
    for t in range(half, ids.shape[1]):
        out = model(ids[:, t:t + 1], state=state, return_state=True)
        logits.append(out.logits)
        state = out.state
    return torch.cat(logits, dim=1)


@torch.no_grad()
def decode_memory(archs=ARCHITECTURES, contexts=(64, 128, 256, 512, 1024), **shape) -> pd.DataFrame:
    """Bytes held by the DecodeState after a prefill of each context length (batch 1, fp32).

    Returns columns arch, context, state_bytes, params (non-embedding), bytes_per_param.
    """
    rows = []
    for arch in archs:
        torch.manual_seed(0)
        config = tiny_config(arch, **shape)
        model = build_model(config).eval()
        for context in contexts:
            ids = torch.randint(0, config.vocab_size, (1, int(context)))
            state = model(ids, return_state=True).state
            rows.append({"arch": arch, "context": int(context), "state_bytes": state.nbytes(),
                         "params": model.num_params(non_embedding=True)})
    table = pd.DataFrame(rows)
    table["bytes_per_param"] = table["state_bytes"] / table["params"]
    return table
