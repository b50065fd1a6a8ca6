"""A tiny stand-in world for the evaluation tests: facts "s<i> r<j> o<k> ." with a WordLevel
tokenizer, checkpoints written with linscale.models.checkpoint.save_checkpoint and items in the shapes
linscale.data.synthetic generates, written straight into the task cache so no generator is needed."""
from __future__ import annotations

import random
from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, decoders

from linscale.models.checkpoint import save_checkpoint
from linscale.config import ModelConfig
from linscale.eval.items import KINDS, cache_file, item_params, write_items
from linscale.models import build_model

N_SUBJECTS, N_RELATIONS, N_OBJECTS, N_KEYS = 24, 2, 16, 12
DATA = {"source": "synthetic", "seed": 7, "note": "eval test world"}
SEQ_LEN = 64


def vocabulary() -> list[str]:
    words = ["<eod>", "[UNK]", ".", "?", "the", "and"]
    words += [f"s{i}" for i in range(N_SUBJECTS)] + [f"r{j}" for j in range(N_RELATIONS)]
    words += [f"o{k}" for k in range(N_OBJECTS)] + [f"k{k}" for k in range(N_KEYS)] + [f"v{k}" for k in range(N_KEYS)]
    return words


def tokenizer() -> Tokenizer:
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(vocabulary())}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    return tok


def facts() -> dict[tuple[int, int], int]:
    rng = random.Random(DATA["seed"])
    return {(s, r): rng.randrange(N_OBJECTS) for s in range(N_SUBJECTS) for r in range(N_RELATIONS)}


def fact_corpus(n_sentences: int, seed: int = 0) -> str:
    rng, world = random.Random(seed), facts()
    keys = list(world)
    return " ".join(f"s{s} r{r} o{world[(s, r)]} ." for s, r in (rng.choice(keys) for _ in range(n_sentences)))


def make_items(kind: str, max_length: int = SEQ_LEN) -> list[dict]:
    rng, world = random.Random(1), facts()
    if kind == "knowledge":
        items = []
        for (s, r), o in world.items():
            wrong = rng.sample([k for k in range(N_OBJECTS) if k != o], 3)
            choices = [f"o{k}" for k in wrong]
            label = rng.randrange(4)
            choices.insert(label, f"o{o}")
            items.append({"question": f"s{s} r{r}", "choices": choices, "label": label, "band": ("head", "torso", "tail")[s % 3]})
        return items
    if kind == "cloze":
        return [{"context": f"s{s} r{r} o{o} . the s{s} r{r}", "target": f"o{o}"}
                for (s, r), o in list(world.items())[:12]]
    if kind == "documents":
        return [{"text": fact_corpus(12, seed=100 + i)} for i in range(4)]
    if kind == "niah":
        from linscale.eval.items import NIAH_MODES, NIAH_RESERVE, niah_grid

        lengths, depths = niah_grid(max_length, 3, 3)
        items = []
        for mode in NIAH_MODES:
            for i, length in enumerate(lengths):
                for j, depth in enumerate(depths):
                    k, v = rng.randrange(N_KEYS), rng.randrange(N_KEYS)
                    n_fill = max(1, (length - NIAH_RESERVE - 8) // 4)
                    filler = fact_corpus(n_fill, seed=i * 10 + j).split(" . ")
                    pos = round(depth / 100 * len(filler))
                    needle = f"k{k} v{v}" + (f" ? k{k}" if mode == "easy" else "")
                    context = " . ".join(filler[:pos] + [needle] + filler[pos:])
                    items.append({"mode": mode, "length": length, "depth": depth, "length_index": i,
                                  "depth_index": j, "context": context, "question": f"? k{k}",
                                  "answer": f"v{v}"})
        return items
    if kind == "mqar":
        items = []
        for _ in range(8):
            pairs = {k: rng.randrange(N_KEYS) for k in rng.sample(range(N_KEYS), 4)}
            context = " ".join(f"k{k} v{v}" for k, v in pairs.items())
            items += [{"context": context, "question": f"k{k}", "answer": f"v{v}"} for k, v in pairs.items()]
        return items
    raise ValueError(kind)


def export(path: Path, model, step: int = 0, tokens: int = 0, run_id: str = "test-run") -> Path:
    meta = {"run_id": run_id, "arch": model.config.arch, "size": "tiny", "step": step, "tokens": tokens,
            "flops": 6.0 * model.num_params() * tokens, "data": DATA, "seq_len": SEQ_LEN, "seed": 0}
    return save_checkpoint(model, path, meta, tokenizer=tokenizer())


def tiny_model(arch: str = "llama", seed: int = 0, **overrides):
    torch.manual_seed(seed)
    cfg = dict(arch=arch, n_layer=2, d_model=32, n_head=2, vocab_size=len(vocabulary()), d_ffn=64, chunk_size=16)
    return build_model(ModelConfig(**{**cfg, **overrides}))


def fill_cache(checkpoint: Path, task_cache: Path) -> None:
    """Write the stub items where load_items will look for this checkpoint's world."""
    options = {"checkpoint": str(checkpoint), "task_cache": str(task_cache)}
    for kind in KINDS:
        write_items(cache_file(kind, item_params(kind, options), task_cache), make_items(kind))
