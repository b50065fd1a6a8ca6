"""A stand-in data module with the contract-2 interface, for the training tests: a first-order Markov
chain over a small vocabulary, so the exact Bayes loss (−log P(label | previous token)) is known.

Deterministic given the seed; the train stream is infinite and DDP-aware (rank r of W takes the r-th
slice of every global micro-batch, so W processes see exactly the batches one process would).
"""
from __future__ import annotations

import lightning as L
import torch
from tokenizers import Tokenizer, models, pre_tokenizers


def _transition(vocab: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(vocab, vocab, generator=g) * 2.5
    return logits.softmax(-1)  # (V, V) rows: P(next | current)


def _sample(P: torch.Tensor, n_seq: int, length: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.empty(n_seq, length, dtype=torch.long)
    x[:, 0] = torch.randint(0, P.shape[0], (n_seq,), generator=g)
    for t in range(1, length):
        x[:, t] = torch.multinomial(P[x[:, t - 1]], 1, generator=g).squeeze(1)
    return x


def _batch(P, tokens):
    input_ids, labels = tokens[:, :-1], tokens[:, 1:]
    bayes = -P[input_ids, labels].log()
    return {"input_ids": input_ids.contiguous(), "labels": labels.contiguous(), "bayes_nll": bayes.float()}


class MarkovStream(torch.utils.data.IterableDataset):
    def __init__(self, P, seq_len, batch_size, seed):
        self.P, self.seq_len, self.batch_size, self.seed = P, seq_len, batch_size, seed

    def __iter__(self):
        dist = torch.distributed
        rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_available() and dist.is_initialized() else (0, 1)
        step = 0
        while True:  # global micro-batch `step` = world x batch_size sequences; this rank takes its slice
            tokens = _sample(self.P, self.batch_size * world, self.seq_len + 1, self.seed * 1_000_003 + step)
            yield _batch(self.P, tokens[rank * self.batch_size:(rank + 1) * self.batch_size])
            step += 1


class MarkovDataModule(L.LightningDataModule):
    def __init__(self, data: dict, seq_len: int, batch_size: int, seed: int = 0, num_workers: int = 0):
        super().__init__()
        self.vocab_size = int(data.get("vocab_size", 24))
        self.seq_len, self.batch_size, self.seed = seq_len, batch_size, seed
        self.P = _transition(self.vocab_size, int(data.get("chain_seed", 1)))
        self.val_sequences = int(data.get("val_sequences", 16))
        words = {f"w{i}": i for i in range(self.vocab_size - 1)} | {"<eod>": self.vocab_size - 1}
        self.tokenizer = Tokenizer(models.WordLevel(words, unk_token="<eod>"))
        self.tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()

    def train_dataloader(self):
        return torch.utils.data.DataLoader(MarkovStream(self.P, self.seq_len, self.batch_size, self.seed),
                                           batch_size=None)

    def val_dataloader(self):
        tokens = _sample(self.P, self.val_sequences, self.seq_len + 1, seed=987654321)
        return [_batch(self.P, tokens[i:i + self.batch_size]) for i in range(0, len(tokens), self.batch_size)]

    def bayes_loss(self, split: str) -> float:
        batches = self.val_dataloader()
        return float(torch.cat([b["bayes_nll"].flatten() for b in batches]).mean())


def build(data, seq_len, batch_size, seed=0, num_workers=0):
    return MarkovDataModule(data, seq_len, batch_size, seed, num_workers)
