"""The default study, end to end. For now: the smallest path that exists (accounting of the paper's
grid, and a few optimiser steps of a tiny model of each architecture); the training, evaluation,
fitting and book stages join as they land."""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from linscale.accounting import accounting_table
from linscale.config import ModelConfig
from linscale.models import build_model


def run_study(args: argparse.Namespace) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table = accounting_table("paper")
    table.to_csv(out / "paper_accounting.csv", index=False)
    print(f"wrote {out / 'paper_accounting.csv'} ({len(table)} configs)")
    torch.manual_seed(0)
    tokens = torch.randint(0, 64, (4, 65))
    for arch in ("llama", "tnl", "hgrn2", "cosformer2"):
        model = build_model(ModelConfig(arch=arch, n_layer=2, d_model=32, n_head=2, vocab_size=64, d_ffn=64))
        opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
        for step in range(20):
            loss = model(tokens[:, :-1], labels=tokens[:, 1:]).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
            if step in (0, 19):
                print(f"{arch:>10} step {step:2d} loss {loss.item():.3f}")
