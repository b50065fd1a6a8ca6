"""Accounting tables: what a preset's grid costs, in the paper's units (its Table 7)."""
from __future__ import annotations

import pandas as pd
import torch

from linscale import flops
from linscale.models import build_model
from linscale.presets import load_preset, model_configs


def accounting_table(preset: str | dict, seq_len: int | None = None, batch_size: int | None = None) -> pd.DataFrame:
    """One row per (size, arch): shape, non-embedding parameters (formula and instantiated on the
    meta device), FLOPs per token and PFLOPs per step at the preset's context and batch."""
    preset = load_preset(preset) if not isinstance(preset, dict) else preset
    train = preset.get("train", {})
    seq_len = seq_len or train["seq_len"]
    batch_size = batch_size or train["batch_size"]
    rows = []
    for config in model_configs(preset):
        with torch.device("meta"):
            model = build_model(config)
        rows.append({
            "size": config.name, "arch": config.arch, "n_layer": config.n_layer, "d_model": config.d_model,
            "n_head": config.n_head, "d_ffn": config.d_ffn,
            "params_formula": flops.non_embedding_params(config),
            "params_model": model.num_params(non_embedding=True),
            "flops_per_token": flops.flops_per_token(config, seq_len),
            "pflops_per_step": flops.flops_per_step(config, seq_len, batch_size) / 1e15,
        })
    return pd.DataFrame(rows)
