"""The data module's contract (linscale.data): batch format, workers, DDP shards, Lightning, resuming."""
from __future__ import annotations

import lightning as L
import numpy as np
import torch

from linscale.data import build_datamodule


def _docs(batches, eod):
    out = set()
    for b in batches:
        rows = torch.cat([b["input_ids"][:, :1], b["labels"]], 1).numpy()
        for row in rows:
            out.add(row.tobytes())
    return out


def test_batch_contract():
    dm = build_datamodule({"source": "synthetic", "val_tokens": 1024}, seq_len=48, batch_size=3)
    batch = next(iter(dm.train_dataloader()))
    assert set(batch) == {"input_ids", "labels", "bayes_nll"}
    assert batch["input_ids"].dtype == batch["labels"].dtype == torch.long
    assert batch["bayes_nll"].dtype == torch.float32
    assert batch["input_ids"].shape == batch["labels"].shape == batch["bayes_nll"].shape == (3, 48)
    assert torch.equal(batch["input_ids"][:, 1:], batch["labels"][:, :-1])  # labels are the shifted inputs
    assert (batch["bayes_nll"] >= 0).all()
    assert batch["input_ids"][0, 0] == dm.tokenizer.token_to_id("<eod>")
    assert dm.vocab_size == dm.tokenizer.get_vocab_size()
    val = list(dm.val_dataloader())  # finite
    assert sum(b["labels"].numel() for b in val) >= 1024 and "bayes_nll" in val[0]


def test_ddp_ranks_get_disjoint_data():
    """Two ranks (passed explicitly, no processes launched) see different batches of one stream."""
    data = {"source": "synthetic", "val_tokens": 1024}
    ranks = [build_datamodule(data, seq_len=32, batch_size=8, seed=1, rank=r, world_size=2) for r in (0, 1)]
    streams = [iter(dm.train_dataloader()) for dm in ranks]
    seen = [_docs([next(s) for _ in range(70)], None) for s in streams]  # crosses a block boundary
    assert len(seen[0]) == len(seen[1]) == 70 * 8
    assert not seen[0] & seen[1]
    # the ranks split the single-process stream by blocks: rank r takes blocks r, r + 2, ...
    single = build_datamodule(data, seq_len=32, batch_size=8, seed=1)
    per_block = 512 // 8
    assert torch.equal(single.train_batch(per_block)["input_ids"], ranks[1].train_batch(0, 1, 2)["input_ids"])


def test_stream_is_the_same_for_any_number_of_workers_and_resumes():
    data = {"source": "synthetic", "val_tokens": 1024}
    dm0 = build_datamodule(data, seq_len=32, batch_size=64, seed=2)
    dm2 = build_datamodule(data, seq_len=32, batch_size=64, seed=2, num_workers=2)
    a = [b["input_ids"] for _, b in zip(range(10), dm0.train_dataloader())]
    b = [b["input_ids"] for _, b in zip(range(10), dm2.train_dataloader())]
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    dm0.train_start_batch = 7  # resuming after 7 batches continues the same stream
    c = [b["input_ids"] for _, b in zip(range(3), dm0.train_dataloader())]
    assert all(torch.equal(x, y) for x, y in zip(a[7:], c))


class _TinyLM(L.LightningModule):
    def __init__(self, vocab):
        super().__init__()
        self.emb = torch.nn.Embedding(vocab, 8)
        self.out = torch.nn.Linear(8, vocab)
        self.val_losses = []

    def _loss(self, batch):
        logits = self.out(self.emb(batch["input_ids"]))
        return torch.nn.functional.cross_entropy(logits.flatten(0, 1), batch["labels"].flatten())

    def training_step(self, batch, _):
        return self._loss(batch)

    def validation_step(self, batch, _):
        self.val_losses.append(self._loss(batch).item())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_works_in_a_lightning_trainer(tmp_path):
    dm = build_datamodule({"source": "synthetic", "val_tokens": 512}, seq_len=32, batch_size=4)
    model = _TinyLM(dm.vocab_size)
    trainer = L.Trainer(accelerator="cpu", devices=1, max_steps=3, val_check_interval=3, limit_val_batches=2,
                        logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(model, datamodule=dm)
    assert trainer.global_step == 3 and len(model.val_losses) >= 2
    assert dm.rank == 0 and dm.world_size == 1
    assert np.isfinite(model.val_losses).all()


def test_resumed_lightning_run_continues_the_stream(tmp_path):
    """Fit 4 steps with a checkpoint at step 2; resuming from it must see batches 2 and 3 again, not 0, 1."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    class Recorder(_TinyLM):
        def __init__(self, vocab):
            super().__init__(vocab)
            self.seen = []

        def training_step(self, batch, i):
            self.seen.append(batch["input_ids"].clone())
            return super().training_step(batch, i)

    def trainer(steps, callbacks=()):
        return L.Trainer(accelerator="cpu", devices=1, max_steps=steps, limit_val_batches=0, logger=False,
                         enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
                         callbacks=list(callbacks))

    data = {"source": "synthetic", "val_tokens": 256}
    full = Recorder(256 + 200)
    trainer(4).fit(full, datamodule=build_datamodule(data, seq_len=16, batch_size=2))
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ck", every_n_train_steps=2, save_top_k=-1)
    first = Recorder(456)
    trainer(2, [ckpt]).fit(first, datamodule=build_datamodule(data, seq_len=16, batch_size=2))
    resumed = Recorder(456)
    trainer(4).fit(resumed, datamodule=build_datamodule(data, seq_len=16, batch_size=2),
                   ckpt_path=str(next((tmp_path / "ck").glob("*.ckpt"))))
    assert len(resumed.seen) == 2
    assert torch.equal(resumed.seen[0], full.seen[2]) and torch.equal(resumed.seen[1], full.seen[3])
