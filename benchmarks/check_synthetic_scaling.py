"""Quick study check for the synthetic language (a script, not a CI test).

Trains two model sizes for two token budgets on the default synthetic corpus and prints, side by side,
the validation loss, the exact Bayes loss (the irreducible E) and the unigram entropy. The language is
fit for the study when the larger model and the larger budget each lower the loss and the loss stays
well above the Bayes loss (not learned out at CPU scale).

    .venv/bin/python benchmarks/check_synthetic_scaling.py --arch llama --sizes small large --tokens 200000 800000
"""
from __future__ import annotations

import argparse
import math
import time

import torch

from linscale.config import ModelConfig
from linscale.data import build_datamodule
from linscale.models import build_model

SIZES = {"small": dict(n_layer=2, d_model=32, n_head=2), "medium": dict(n_layer=2, d_model=64, n_head=4), "large": dict(n_layer=4, d_model=96, n_head=4)}


def evaluate(model, loader) -> float:
    model.eval()
    total, n = 0.0, 0
    with torch.no_grad():
        for batch in loader:
            out = model(batch["input_ids"], labels=batch["labels"])
            total += out.loss.item() * batch["labels"].numel()
            n += batch["labels"].numel()
    model.train()
    return total / n


def train(arch: str, size: str, tokens_list: list[int], dm, lr: float, seed: int) -> list[tuple[int, float]]:
    """Train once up to max(tokens_list); evaluate at each budget (a constant LR, as in the paper, so an
    intermediate checkpoint is a run with the smaller budget)."""
    torch.manual_seed(seed)
    cfg = ModelConfig(arch=arch, vocab_size=dm.vocab_size, ffn_multiple_of=32, **SIZES[size])
    model = build_model(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.1, betas=(0.9, 0.95))
    tokens_per_step = dm.batch_size * dm.seq_len
    checkpoints = sorted({math.ceil(t / tokens_per_step) for t in tokens_list})
    results, step = [], 0
    val = dm.val_dataloader()
    warmup = 50
    for batch in dm.train_dataloader():
        step += 1
        for group in opt.param_groups:
            group["lr"] = lr * min(1.0, step / warmup)
        loss = model(batch["input_ids"], labels=batch["labels"]).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step in checkpoints:
            results.append((step * tokens_per_step, evaluate(model, val)))
            if step == checkpoints[-1]:
                break
    return model.num_params(non_embedding=True), results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="llama")
    parser.add_argument("--sizes", nargs=2, default=["small", "large"], choices=list(SIZES))
    parser.add_argument("--tokens", type=int, nargs=2, default=[200_000, 800_000])
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--val-tokens", type=int, default=32768)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    dm = build_datamodule({"source": "synthetic", "val_tokens": args.val_tokens}, args.seq_len, args.batch_size, seed=args.seed)
    bayes = dm.bayes_loss("validation")
    unigram = dm.language.unigram_entropy(args.seq_len)
    print(f"synthetic language: vocab {dm.vocab_size}, seq_len {args.seq_len}; exact Bayes loss (validation) "
          f"{bayes:.4f} nats/token, entropy rate {dm.bayes_loss('train'):.4f}, unigram entropy {unigram:.4f}")
    table = {}
    for size in args.sizes:
        t0 = time.time()
        n_params, results = train(args.arch, size, args.tokens, dm, args.lr, args.seed)
        for tokens, loss in results:
            table[size, tokens] = loss
            print(f"{args.arch:6s} {size:5s} N={n_params:8d} D={tokens:8d}  val_loss {loss:.4f}  "
                  f"excess over Bayes {loss - bayes:.4f}  ({time.time() - t0:.0f}s)")
    sizes = args.sizes
    toks = sorted({t for _, t in table})
    bigger_model = all(table[sizes[1], t] < table[sizes[0], t] for t in toks)
    more_tokens = all(table[s, toks[-1]] < table[s, toks[0]] for s in sizes)
    best = min(table.values())
    print(f"larger model lowers the loss at every budget: {bigger_model}")
    print(f"larger budget lowers the loss for every size: {more_tokens}")
    print(f"best loss {best:.4f} vs Bayes {bayes:.4f}: excess {best - bayes:.4f} nats "
          f"({(best - bayes) / (unigram - bayes):.0%} of the unigram-to-Bayes gap left)")


if __name__ == "__main__":
    main()
