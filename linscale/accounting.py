"""Accounting tables: what a preset's grid costs, in the paper's units (its Table 7)."""
from __future__ import annotations

import pandas as pd
import torch

from linscale import flops
from linscale.config import ConfigError
from linscale.models import build_model
from linscale.presets import load_preset, model_configs, split_size


def accounting_table(preset: str | dict, seq_len: int | None = None, batch_size: int | None = None) -> pd.DataFrame:
    """One row per (size, arch): shape, non-embedding parameters (formula and instantiated on the
    meta device), FLOPs per token and PFLOPs per step at the context and batch each size trains at (its
    own ``train:`` block's, else the preset's), or at ``seq_len`` and ``batch_size`` where given."""
    preset = load_preset(preset) if not isinstance(preset, dict) else preset
    for key, kind in (("archs", "list of architectures"), ("sizes", "mapping of size name -> shape")):
        if not preset.get(key):  # an empty table, printed with exit status 0, said nothing was counted
            raise ConfigError(f"{key}: expected a non-empty {kind}")
    train = preset.get("train") or {}
    shapes = {}  # size -> (context, batch): a size's own train block counted too (the whole grid was at the preset's)
    for size, shape in preset["sizes"].items():
        own = {**train, **split_size(size, shape)[1]}
        for key, given in (("seq_len", seq_len), ("batch_size", batch_size)):
            if not given and not own.get(key):  # the defaults are linscale.train's (the CLI fills them in)
                raise ConfigError(f"train.{key}: not in the preset (nor in sizes.{size}.train); expected it, or "
                                  f"{key}= to count at")
        shapes[str(size)] = (seq_len or own["seq_len"], batch_size or own["batch_size"])
    # Study presets leave the vocabulary to their data module; nothing here depends on it (non-embedding
    # parameters and FLOPs), so a placeholder stands in when the preset gives none.
    preset = {**preset, "model": {"vocab_size": 2, **preset.get("model", {})}}
    rows = []
    for config in model_configs(preset):
        with torch.device("meta"):
            model = build_model(config)
        rows.append({
            "size": config.name, "arch": config.arch, "n_layer": config.n_layer, "d_model": config.d_model,
            "n_head": config.n_head, "d_ffn": config.d_ffn,
            "params_formula": flops.non_embedding_params(config),
            "params_model": model.num_params(non_embedding=True),
            "flops_per_token": flops.flops_per_token(config, shapes[config.name][0]),
            "pflops_per_step": flops.flops_per_step(config, *shapes[config.name]) / 1e15,
        })
    return pd.DataFrame(rows)


def table7_comparison(preset: str | dict = "paper") -> pd.DataFrame:
    """Our accounting of the paper's grid beside its Table 7 (``presets/paper_table7.csv``): non-embedding
    parameters in millions and PFLOPs per step, with the relative differences."""
    from linscale.presets import paper_table7

    ours = accounting_table(preset)
    paper = paper_table7()
    paper = paper.rename(columns={"params_M": "params_M_paper", "pflops_per_step": "pflops_per_step_paper"})
    table = ours.merge(paper[["size", "arch", "params_M_paper", "pflops_per_step_paper"]], on=["size", "arch"])
    table["params_M"] = table["params_formula"] / 1e6
    table["params_rel_diff"] = table["params_M"] / table["params_M_paper"] - 1
    table["pflops_rel_diff"] = table["pflops_per_step"] / table["pflops_per_step_paper"] - 1
    return table[["size", "arch", "n_layer", "d_model", "n_head", "params_M", "params_M_paper", "params_rel_diff",
                  "pflops_per_step", "pflops_per_step_paper", "pflops_rel_diff"]]


def flops_per_token_curve(preset: str | dict, size: str, seq_lens) -> pd.DataFrame:
    """Training FLOPs per token of one size of a preset's grid at several context lengths, per arch:
    the softmax term n/(6d) grows with n, the linear models' corrections do not."""
    preset = load_preset(preset) if not isinstance(preset, dict) else preset
    configs = [c for c in model_configs(preset) if c.name == str(size)]
    if not configs:
        raise ConfigError(f"size: {size!r} is not a size of preset {preset.get('name')}; expected one of "
                          f"{', '.join(map(str, preset['sizes']))}")
    return pd.DataFrame([{"arch": c.arch, "size": c.name, "seq_len": int(n),
                          "flops_per_token": flops.flops_per_token(c, int(n))} for c in configs for n in seq_lens])


def training_budget(preset: str | dict) -> pd.DataFrame:
    """What each run of a preset's grid costs to train on the preset's token budget: tokens, training
    FLOPs (Table 1) and PFLOP/s-days."""
    preset = load_preset(preset) if not isinstance(preset, dict) else preset
    table = accounting_table(preset)
    train = preset.get("train") or {}
    tokens = {str(size): float({**train, **split_size(size, shape)[1]}["tokens"])
              for size, shape in preset["sizes"].items()}
    table["tokens"] = table["size"].astype(str).map(tokens)
    table["training_flops"] = table["flops_per_token"] * table["tokens"]
    table["pf_days"] = table["training_flops"] / flops.PF_DAY
    return table
