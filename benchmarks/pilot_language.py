"""The pilot behind the cpu preset's language, learning rates and reference law (issue 15).

    python benchmarks/pilot_language.py --out results/pilot/pilot.csv      # every pilot run (about 1 h on 2 cores)
    python benchmarks/pilot_language.py --fit results/pilot/pilot.csv      # the laws it implies, per language

A bare training loop (the study's model, optimiser, warmup, clipping and batch; no Lightning, no
validation) trains small LLaMA models on variants of the synthetic language and records the training
loss (mean of the last 8 steps) at 24 log-spaced token counts. ``--fit`` fits L(N, D) = E + A/N^α +
B/D^β with E at each language's exact entropy (``linscale.laws.fit_approach3``) on the rows after twice
the warmup. What it found (``results/pilot/pilot.csv``):

* the default language (393 words, 65,536 facts, Zipf 1.2) gives α ≈ 0.09: every size from 3K to 250K
  parameters was still learning from data at 2-12M tokens, and the compute-optimal run was ~5-8M tokens
  at any size, so a grid with a crossover between every pair of sizes would cost 10-16K core-seconds per
  architecture;
* the chosen language (``cpu``: 8,192 facts of 32 objects, Zipf 1.3, vocabulary 209, denser in facts)
  gives α ≈ 0.24, β ≈ 1.13, and crossovers within 2-9M tokens; steeper Zipf (1.6) or fewer bindings did
  not move the crossovers earlier;
* learning rate: at widths 8 and 16 both 0.5x and 2x of 1e-3·96/d were worse than 1x, at width 32 2x
  was better, so the best LR falls about as width^-0.5: the preset's 6e-3·(16/d)^0.5;
* batch 8 instead of 16 helped at width 32 and not below; the preset keeps 16 (and the paper's one batch
  for all sizes).
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

WARMUP = 50
LANGUAGES = {  # name -> data dict (synthetic LanguageSpec fields)
    "defaults (393 words, 65,536 facts)": {},
    "cpu (chosen)": {"n_first": 32, "n_last": 32, "n_relations": 8, "n_objects": 64, "objects_per_relation": 32,
                     "n_adj": 16, "n_noun": 16, "n_verb": 16, "n_vars": 16, "n_values": 32, "fact_zipf": 1.3,
                     "fact_zipf_offset": 5.0, "type_probs": [0.45, 0.15, 0.1, 0.15, 0.15]},
}
SHAPES = ((1, 8, 2), (1, 16, 2), (2, 24, 2), (3, 40, 2))


def train(language: dict, arch: str, shape, tokens: float, lr_multiplier: float = 1.0, batch_size: int = 16,
          seq_len: int = 128, seed: int = 0) -> list[dict]:
    """One bare-loop run; rows at 24 log-spaced steps."""
    import torch

    from linscale import flops
    from linscale.config import ModelConfig
    from linscale.data.synthetic import LanguageSpec, SyntheticLanguage
    from linscale.models import build_model

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    lang = SyntheticLanguage(LanguageSpec.from_dict(language))
    rng = np.random.default_rng(seed)
    l, d, h = shape
    config = ModelConfig(arch=arch, n_layer=l, d_model=d, n_head=h, vocab_size=lang.vocab_size, ffn_multiple_of=16,
                         chunk_size=16, max_seq_len=seq_len)
    model = build_model(config)
    decay = [p for p in model.parameters() if p.dim() >= 2 and not getattr(p, "no_weight_decay", False)]
    rest = [p for p in model.parameters() if not (p.dim() >= 2 and not getattr(p, "no_weight_decay", False))]
    lr = 1e-3 * 96 / d * lr_multiplier
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}], lr=lr,
                            betas=(0.9, 0.95))
    steps = int(tokens // (batch_size * seq_len))
    record = set(np.unique(np.round(np.geomspace(max(1, 0.005 * steps), steps, 24)).astype(int)).tolist())
    losses, rows, start = [], [], time.time()
    for step in range(1, steps + 1):
        for group in opt.param_groups:
            group["lr"] = lr * min(1.0, step / WARMUP)
        ids, _ = lang.sample_rows(rng, batch_size, seq_len)
        x = torch.from_numpy(ids.astype(np.int64))
        loss = model(x[:, :-1], labels=x[:, 1:]).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses = (losses + [loss.item()])[-8:]
        if step in record:
            rows.append(dict(arch=arch, n_layer=l, d_model=d, n_head=h, params=flops.non_embedding_params(config),
                             lr=lr, lr_multiplier=lr_multiplier, batch_size=batch_size, step=step,
                             tokens=step * batch_size * seq_len, train_loss=float(np.mean(losses)),
                             entropy=lang.expected_nll(seq_len), vocab_size=lang.vocab_size,
                             seconds=time.time() - start))
    return rows


def fit(table: pd.DataFrame) -> pd.DataFrame:
    """Per language: the law L = E + A/N^α + B/D^β with E exact, from the default-LR, batch-16 LLaMA runs."""
    from linscale.laws import fit_approach3

    rows = []
    base = table[(table["lr_multiplier"] == 1.0) & (table["batch_size"] == 16) & (table["arch"] == "llama")
                 & (table["step"] > 2 * WARMUP)]
    for language, part in base.groupby("language"):
        runs = part.assign(run_id=part["params"].astype(str), loss=part["train_loss"])
        law = fit_approach3(runs, by=None, fixed_E=float(part["entropy"].iloc[0]), n_refine=64)
        p = law.params.set_index("parameter")["estimate"]
        rows.append(dict(language=language, E=p["E"], A=p["A"], B=p["B"], alpha=p["alpha"], beta=p["beta"], a=p["a"],
                         mae_log=float(law.diagnostics["mae_log"].iloc[0])))
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", help="write every pilot run here (CSV)")
    parser.add_argument("--fit", help="fit the laws of a pilot table (CSV)")
    parser.add_argument("--tokens", type=float, default=4e6)
    args = parser.parse_args()
    if args.out:
        rows = []
        for name, language in LANGUAGES.items():
            for shape in SHAPES:
                rows += [dict(language=name, **r) for r in train(language, "llama", shape, args.tokens)]
        for shape in SHAPES[:3]:
            for multiplier in (0.5, 2.0):
                rows += [dict(language="cpu (chosen)", **r)
                         for r in train(LANGUAGES["cpu (chosen)"], "llama", shape, args.tokens / 2, multiplier)]
        pd.DataFrame(rows).to_csv(args.out, index=False)
    if args.fit:
        with pd.option_context("display.width", 200, "display.precision", 4):
            print(fit(pd.read_csv(args.fit)).to_string(index=False))


if __name__ == "__main__":
    main()
