"""The data module's contract (linscale.data): batch format, workers, DDP shards, Lightning, resuming."""
from __future__ import annotations

import warnings

import lightning as L
import numpy as np
import pytest
import torch

from linscale.data import build_datamodule
from linscale.data.synthetic import DataError


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
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer(4).fit(resumed, datamodule=build_datamodule(data, seq_len=16, batch_size=2),
                       ckpt_path=str(next((tmp_path / "ck").glob("*.ckpt"))))
    assert len(resumed.seen) == 2
    assert torch.equal(resumed.seen[0], full.seen[2]) and torch.equal(resumed.seen[1], full.seen[3])
    assert not [w for w in caught if "resuming with" in str(w.message)]  # the same settings: continued exactly
    resized = Recorder(456)  # another micro-batch (as another number of devices gives): trains on, and says so
    with pytest.warns(UserWarning, match=r"^resuming with batch_size 2 -> 1: the rest of the run reads another draw"):
        trainer(3).fit(resized, datamodule=build_datamodule(data, seq_len=16, batch_size=1),
                       ckpt_path=str(next((tmp_path / "ck").glob("*.ckpt"))))
    assert len(resized.seen) == 1


def test_a_resume_on_another_stream_names_each_setting_that_changed():
    """seed, seq_len, micro-batch and number of processes each decide the stream; a checkpoint saved before
    the number of processes was recorded (no world_size) is compared on what it has."""
    data = {"source": "synthetic", "val_tokens": 64}
    saved = build_datamodule(data, seq_len=16, batch_size=2, seed=3, world_size=2).state_dict()
    assert saved == {"seed": 3, "seq_len": 16, "batch_size": 2, "world_size": 2}
    with pytest.warns(UserWarning, match=r"^resuming with seed 3 -> 4, seq_len 16 -> 32, world_size 2 -> 1: "):
        build_datamodule(data, seq_len=32, batch_size=2, seed=4, world_size=1).load_state_dict(saved)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_datamodule(data, seq_len=16, batch_size=2, seed=3, world_size=1).load_state_dict(
            {k: v for k, v in saved.items() if k != "world_size"})


def test_sizes_workers_and_rank_out_of_range_are_one_line_each():
    """seq_len and batch_size are positive integers (not bools), num_workers is not negative, and a rank is
    one of the world's: each is refused naming the argument, before any row is made."""
    data = {"source": "synthetic", "val_tokens": 64}
    for kwargs, match in (({"seq_len": 0}, "seq_len: expected a positive integer, got 0"),
                          ({"batch_size": 0}, "batch_size: expected a positive integer, got 0"),
                          ({"batch_size": True}, "batch_size: expected a positive integer, got True"),
                          ({"num_workers": -1}, "num_workers: expected a non-negative integer, got -1"),
                          ({"num_workers": True}, "num_workers: expected a non-negative integer, got True")):
        with pytest.raises(DataError, match=f"^{match}$"):
            build_datamodule(data, **{"seq_len": 16, "batch_size": 2, **kwargs})
    for rank in (2, -1):
        dm = build_datamodule(data, seq_len=16, batch_size=2, rank=rank, world_size=2)
        with pytest.raises(DataError, match=rf"^rank: {rank} is not in \[0, world_size=2\)$"):
            dm.train_dataloader()


def test_the_seed_changes_the_training_stream_and_val_seed_alone_the_validation_and_test_rows():
    """Runs of several seeds are compared on one validation set: the training stream follows ``seed``, the
    validation and test rows follow ``val_seed`` only, and they are distinct sets of the sizes asked for."""
    data = {"source": "synthetic", "val_tokens": 100, "test_tokens": 40}

    def rows(dm, split):
        return dm.split_dataset(split).rows

    a, b = (build_datamodule(data, seq_len=16, batch_size=4, seed=s) for s in (1, 2))
    assert not torch.equal(a.train_batch(0)["input_ids"], b.train_batch(0)["input_ids"])
    again = build_datamodule(data, seq_len=16, batch_size=4, seed=1)
    assert torch.equal(a.train_batch(0)["input_ids"], again.train_batch(0)["input_ids"])
    for split in ("validation", "test"):
        assert torch.equal(rows(a, split), rows(b, split))
    assert (len(rows(a, "validation")), len(rows(a, "test"))) == (7, 3)  # ceil(100 / 16), ceil(40 / 16)
    assert torch.equal(rows(a, "val"), rows(a, "validation"))
    other = build_datamodule({**data, "val_seed": 1}, seq_len=16, batch_size=4, seed=1)
    assert not torch.equal(rows(other, "validation"), rows(a, "validation"))
    assert not torch.equal(rows(other, "test"), rows(a, "test"))
    assert torch.equal(other.train_batch(0)["input_ids"], a.train_batch(0)["input_ids"])
    val, test = (torch.cat([b["input_ids"] for b in loader]) for loader in (a.val_dataloader(), a.test_dataloader()))
    assert torch.equal(val, rows(a, "validation")[:, :-1]) and torch.equal(test, rows(a, "test")[:, :-1])
    with pytest.raises(DataError, match="^split: expected 'validation' or 'test', got 'train'$"):
        a.split_dataset("train")


def test_bayes_nll_is_the_nll_of_each_label():
    """bayes_nll[:, t] is the exact nll of labels[:, t]: 0 at each <eod> (certain), and the first label, a
    document's first token, is uncertain; its mean is the entropy rate ``bayes_loss("train")``; the
    validation and test losses are the means of their own rows."""
    dm = build_datamodule({"source": "synthetic", "val_tokens": 256, "test_tokens": 128, "doc_len": 10},
                          seq_len=32, batch_size=64, seed=1)
    batches = [dm.train_batch(j) for j in range(32)]
    nll, labels = (torch.cat([b[k] for b in batches]) for k in ("bayes_nll", "labels"))
    at_eod = labels == dm.tokenizer.token_to_id("<eod>")
    assert at_eod.any() and (nll[at_eod] == 0).all() and (nll[:, 0] > 0).all()
    assert abs(nll.double().mean().item() - dm.bayes_loss("train")) < 0.03 * dm.bayes_loss("train")
    for split in ("validation", "test"):
        rows = dm.split_dataset(split)
        assert dm.bayes_loss(split) == rows.nll.double().mean().item()
        assert (rows.nll[rows.rows[:, 1:] == dm.tokenizer.token_to_id("<eod>")] == 0).all()
    assert dm.bayes_loss("validation") != dm.bayes_loss("test")


def test_a_batch_is_the_same_whichever_rank_the_module_made_before():
    """Batch j is a pure function of (seed, rank, world, j): the cached block of one rank is not served to
    another."""
    data = {"source": "synthetic", "val_tokens": 64}
    dm = build_datamodule(data, seq_len=16, batch_size=4, seed=1)
    first = dm.train_batch(0, 1, 2)["input_ids"]
    assert not torch.equal(dm.train_batch(0, 0, 2)["input_ids"], first)
    assert torch.equal(dm.train_batch(0, 0, 2)["input_ids"],
                       build_datamodule(data, seq_len=16, batch_size=4, seed=1).train_batch(0, 0, 2)["input_ids"])


def test_loader_processes_leave_ctrl_c_and_sigterm_to_the_training_process():
    """A Ctrl-C or a cluster's SIGTERM reaches the whole process group: the loader's worker processes
    ignore both (the training process stops at its next step and ends them), and they persist between
    the validations that reuse them. The worker's start is run in a forked process of its own (a real
    loader's worker that ignores SIGTERM outlives a failed assertion and hangs the test process's exit)."""
    import multiprocessing
    import signal

    dm = build_datamodule({"source": "synthetic", "val_tokens": 64}, seq_len=16, batch_size=2, num_workers=1)
    loader = dm.train_dataloader()
    assert loader.persistent_workers and dm.val_dataloader().persistent_workers
    context = multiprocessing.get_context("fork")
    answer = context.Queue()

    def worker():
        loader.worker_init_fn(0)
        answer.put([signal.getsignal(s) == signal.SIG_IGN for s in (signal.SIGINT, signal.SIGTERM)])

    # both signals handled by default here first: a process started in the background by a non-interactive
    # shell (a CI runner's `cmd &`) ignores SIGINT already, and its workers would inherit that
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.signal(s, signal.SIG_DFL) for s in signals}
    try:
        process = context.Process(target=worker)
        process.start()
        try:
            assert answer.get(timeout=30) == [True, True]
        finally:
            process.join(30)
            if process.is_alive():
                process.kill()
        assert [signal.getsignal(s) for s in signals] == [signal.SIG_DFL] * 2  # this process still stops on them
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
