"""The Lightning data modules of the study's two sources and ``build_datamodule`` (see the package
docstring, :mod:`linscale.data`, for what they serve and how the streams are made)."""
from __future__ import annotations

import collections
import functools
import hashlib
import itertools
import math
import time
from typing import Callable, Iterator

import lightning as L
from lightning.fabric.utilities.rank_zero import rank_zero_warn
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, get_worker_info

from linscale.data.synthetic import SPLITS, DataError, LanguageSpec, SyntheticLanguage
from linscale.data import text as text_data
from linscale.data.keys import SOURCES, check_data
from linscale.data.shards import build_shards


def say(message: str) -> None:
    """A ``[data]`` progress line, from the first process only (every DDP rank builds the same data)."""
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    if getattr(rank_zero_only, "rank", 0) == 0:
        print(f"[data] {message}", flush=True)


def _loader_worker_init(worker_id: int) -> None:
    """DataLoader workers leave SIGINT and SIGTERM to the training process, which stops at the next
    optimiser step and then ends them (linscale.train.run): a Ctrl-C or a cluster's SIGTERM reaching the
    whole process group must not kill a worker the training still reads from. Then Lightning's seeding."""
    import signal

    from lightning.fabric.utilities.seed import pl_worker_init_function

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    pl_worker_init_function(worker_id)


class BatchStream(IterableDataset):
    """An endless stream of whole batches: batch j = make_batch(j); worker w of K makes j = w, w+K, ...
    (use with ``DataLoader(batch_size=None)``, whose round-robin over workers restores the order j)."""

    def __init__(self, make_batch: Callable[[int], dict], start: int = 0):
        self.make_batch, self.start = make_batch, start

    def __iter__(self):
        info = get_worker_info()
        w, k = (info.id, info.num_workers) if info else (0, 1)
        j = self.start + w
        while True:
            yield self.make_batch(j)
            j += k


class RowDataset(Dataset):
    """A fixed set of rows [n, T+1] (and optional per-label nll [n, T]) served as input/label dicts."""

    def __init__(self, rows: np.ndarray, nll: np.ndarray | None = None):
        self.rows = torch.from_numpy(np.ascontiguousarray(rows, dtype=np.int64))
        self.nll = None if nll is None else torch.from_numpy(np.ascontiguousarray(nll, dtype=np.float32))

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        item = {"input_ids": self.rows[i, :-1], "labels": self.rows[i, 1:]}
        if self.nll is not None:
            item["bayes_nll"] = self.nll[i]
        return item


def _batch_dict(rows: np.ndarray, nll: np.ndarray | None = None) -> dict:
    rows = torch.from_numpy(np.ascontiguousarray(rows, dtype=np.int64))
    out = {"input_ids": rows[:, :-1], "labels": rows[:, 1:]}
    if nll is not None:
        out["bayes_nll"] = torch.from_numpy(np.ascontiguousarray(nll, dtype=np.float32))
    return out


class _Base(L.LightningDataModule):
    def __init__(self, data: dict, seq_len: int, batch_size: int, seed: int = 0, num_workers: int = 0,
                 rank: int | None = None, world_size: int | None = None):
        super().__init__()
        for name, value in (("seq_len", seq_len), ("batch_size", batch_size)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise DataError(f"{name}: expected a positive integer, got {value!r}")
        if not isinstance(num_workers, int) or isinstance(num_workers, bool) or num_workers < 0:
            raise DataError(f"num_workers: expected a non-negative integer, got {num_workers!r}")
        self.data, self.seq_len, self.batch_size = dict(data), seq_len, batch_size
        self.seed, self.num_workers = int(seed), num_workers
        self._rank, self._world = rank, world_size
        self.train_start_batch: int | None = None  # None: from the trainer's restored progress (resuming)

    @property
    def rank(self) -> int:
        if self._rank is not None:
            return self._rank
        trainer = getattr(self, "trainer", None)
        return trainer.global_rank if trainer is not None else 0

    @property
    def world_size(self) -> int:
        if self._world is not None:
            return self._world
        trainer = getattr(self, "trainer", None)
        return trainer.world_size if trainer is not None else 1

    def _start_batch(self) -> int:
        """Where the train stream starts: ``train_start_batch`` if set, else the number of batches the
        attached trainer has processed (restored from its checkpoint when resuming), so a resumed run
        continues the stream instead of repeating it."""
        if self.train_start_batch is not None:
            return int(self.train_start_batch)
        trainer = getattr(self, "trainer", None)
        try:
            return int(trainer.fit_loop.epoch_loop.batch_progress.total.processed) if trainer is not None else 0
        except AttributeError:
            return 0

    def _loader_kwargs(self):
        kwargs = {"num_workers": self.num_workers, "persistent_workers": self.num_workers > 0}
        return {**kwargs, "worker_init_fn": _loader_worker_init} if self.num_workers else kwargs

    def train_dataloader(self):
        """The endless training stream of this rank (whole batches)."""
        rank, world = self.rank, self.world_size
        if not 0 <= rank < world:
            raise DataError(f"rank: {rank} is not in [0, world_size={world})")
        stream = BatchStream(lambda j: self.train_batch(j, rank, world), start=self._start_batch())
        return DataLoader(stream, batch_size=None, **self._loader_kwargs())

    def val_dataloader(self):
        """The fixed validation rows. The records' validation (train.callbacks.ScalingRecorder) reads this loader
        itself, outside Lightning's loop: every rank evaluates every row, and the token sums are reduced over
        ranks, so the loss is the rows' mean at any world size (at the cost of each rank evaluating them all).
        Lightning's own ``trainer.validate`` shards them over DDP ranks."""
        return DataLoader(self.split_dataset("validation"), batch_size=self.batch_size, shuffle=False,
                          **self._loader_kwargs())

    def test_dataloader(self):
        """The fixed test rows."""
        return DataLoader(self.split_dataset("test"), batch_size=self.batch_size, shuffle=False,
                          **self._loader_kwargs())

    def state_dict(self) -> dict:
        """What the train stream is a function of, saved in the resume checkpoint (see :meth:`load_state_dict`)."""
        return {"seed": self.seed, "seq_len": self.seq_len, "batch_size": self.batch_size,
                "world_size": self.world_size}

    def load_state_dict(self, state: dict) -> None:
        """A resumed run continues its stream exactly only where seed, sequence length, micro-batch and number
        of processes are the ones it was saved with: batch j of rank r is a function of them all. Lightning
        lets a run resume on another number of devices (its micro-batch then changes too); it trains on, with
        a warning saying that the rest of its stream is another draw of the same data."""
        saved = {key: state[key] for key in ("seed", "seq_len", "batch_size", "world_size") if key in state}
        now = self.state_dict()
        changed = [f"{key} {saved[key]} -> {now[key]}" for key in saved if saved[key] != now[key]]
        if changed:  # once, not once per rank
            rank_zero_warn(f"resuming with {', '.join(changed)}: the rest of the run reads another draw of its data "
                           "than the one it started on (resume with the original devices to continue it exactly)",
                           category=UserWarning)


class SyntheticDataModule(_Base):
    """Rows of the synthetic language (see :mod:`linscale.data.synthetic`), with exact ``bayes_nll``."""

    def __init__(self, data: dict, *args, **kwargs):
        super().__init__(data, *args, **kwargs)
        self.language = SyntheticLanguage(LanguageSpec.from_dict(self.data))
        self.tokenizer = self.language.tokenizer
        self.vocab_size = self.language.vocab_size
        self.val_seed = int(self.data.get("val_seed", 0))
        self._splits: dict[str, RowDataset] = {}

    #: rows generated at once: per-call overhead of the vectorised sampler is amortised over a block
    block_rows = 512

    def train_batch(self, j: int, rank: int = 0, world: int = 1) -> dict:
        """Batch j of this rank. Batches come in blocks of G = ceil(block_rows / batch_size); block c of
        rank r is generated from the seed sequence (seed, train, c·world + r) and cached, so batch j is a
        pure function of (seed, rank, world, j) however the loader's workers divide the stream."""
        per_block = max(1, math.ceil(self.block_rows / self.batch_size))
        c, i = divmod(j, per_block)
        key = (c, rank, world)
        if getattr(self, "_block_key", None) != key:
            rng = np.random.default_rng([self.seed, SPLITS["train"], c * world + rank])
            self._block = self.language.sample_rows(rng, per_block * self.batch_size, self.seq_len)
            self._block_key = key
        rows, nll = self._block
        sl = slice(i * self.batch_size, (i + 1) * self.batch_size)
        return _batch_dict(rows[sl], nll[sl, 1:])

    def split_dataset(self, split: str) -> RowDataset:
        split = "validation" if split == "val" else split
        if split not in ("validation", "test"):
            raise DataError(f"split: expected 'validation' or 'test', got {split!r}")
        if split not in self._splits:
            tokens = int(self.data.get("val_tokens" if split == "validation" else "test_tokens", 65536))
            n_rows = max(1, math.ceil(tokens / self.seq_len))
            rng = np.random.default_rng([self.val_seed, SPLITS[split]])
            rows, nll = self.language.sample_rows(rng, n_rows, self.seq_len)
            self._splits[split] = RowDataset(rows, nll[:, 1:])
        return self._splits[split]

    def bayes_loss(self, split: str = "validation") -> float:
        """Exact loss of the ideal predictor (nats/label): the mean exact nll of the fixed validation or
        test rows; for ``train`` (an endless stream) the exact expectation, the entropy rate."""
        if split == "train":
            return self.language.expected_nll(self.seq_len)
        return float(self.split_dataset(split).nll.double().mean())


def _read_first_document(source) -> None:
    """The validation text is read after the tokenizer is trained and the training text tokenized (hours,
    for a large corpus): a validation file that cannot be read (not UTF-8 or not JSON at its start, no such
    text field, no permission) stopped the run only then. Its first document is read before anything."""
    try:
        next(iter(source.pieces()), None)
    except OSError as err:
        raise DataError(f"data.{source.role}: {source.describe()}: not readable ({err.strerror or err})") from None


class TextDataModule(_Base):
    """Packed rows of real text with a byte-level BPE tokenizer (see :mod:`linscale.data.text`).

    The training text and the validation text come from ``path``/``split`` and ``val_path``/``val_split``
    (:func:`linscale.data.text.resolve_splits`); a local or non-streamed text is tokenized once into
    cached token shards (:mod:`linscale.data.shards`) and its rows are read from them batch by batch, so
    a corpus larger than memory trains in a process whose memory does not grow with it. What was done
    (tokenizer trained or loaded, tokens of each split, validation rows) is said in ``[data]`` lines."""

    def __init__(self, data: dict, *args, **kwargs):
        super().__init__(data, *args, **kwargs)
        self.data = check_data({"source": "text", **self.data})
        self.splits = text_data.resolve_splits(self.data)
        for note in self.splits.notes:
            say(note)
        self.path = str(self.data["path"])
        self.val_fraction = self.data.get("val_fraction", 0.01)
        self.max_tokens = self.data.get("max_tokens")
        self.val_tokens = self.data.get("val_tokens", 65536)
        self.streaming = self.splits.train.streaming
        if self.splits.validation is not None and self.splits.validation.kind == "files":
            _read_first_document(self.splits.validation)
        self.tokenizer = self._tokenizer()
        self.vocab_size = self.tokenizer.get_vocab_size()
        self.eod_id = self.tokenizer.token_to_id(text_data.EOD)
        self._n_train_rows = 0
        if not self.streaming:
            self._load_shards()
        else:
            self._load_stream_val()

    # ---- documents ----
    @property
    def _every(self) -> int:
        """Every this-many-th training document is held out for validation (0: a validation text is given)."""
        return 0 if self.splits.validation is not None else max(2, round(1 / self.val_fraction))

    @functools.cached_property
    def _parts(self) -> int:
        """Parts of the streamed training text (files, or a dataset's shards)."""
        return self.splits.train.parts()

    def _stream_documents(self, shard: int, n_shards: int, held_out: bool = False) -> Iterator[str]:
        """A streamed corpus's documents, part by part: with ``held_out``, the validation documents; else
        shard ``shard``'s training documents (:func:`linscale.data.text.is_held_out`: counted within each
        part, so validation is the same whatever the number of shards, and as in the shards of the corpus
        read whole). Where the parts can be shared out evenly
        (:meth:`_reads_own_parts`), shard s reads only the parts p ≡ s (mod shards), whole: at scale, a
        rank's loader processes read their own files rather than every one of them reading the corpus to
        keep a 1/shards share. Else every shard reads them all and keeps every shards-th training document,
        which keeps the corpus's proportions whatever its files."""
        source, parts = self.splits.train, self._parts
        own_parts = not held_out and self._reads_own_parts(n_shards)
        kept = 0
        for part in range(shard, parts, n_shards) if own_parts else range(parts):
            for i, doc in enumerate(source.part_documents(part)):
                if text_data.is_held_out(part, i, self._every) != held_out:
                    continue
                if held_out or own_parts or kept % n_shards == shard:
                    yield doc
                kept += 1

    #: shards read only their own parts when the smallest shard's files hold at least this share of the
    #: largest shard's bytes
    PART_BALANCE = 0.9

    def _reads_own_parts(self, n_shards: int) -> bool:
        """Whether shard s of ``n_shards`` reads only the parts p ≡ s (mod n_shards). Every shard gives each
        batch the same number of rows, so a shard with less text would repeat it sooner, and its documents
        would weigh more than the corpus's others: only where the shards' parts are alike in size. Local
        files: each shard's bytes at least PART_BALANCE of the largest shard's. A dataset's parts, whose
        sizes are not known before reading: as many parts for every shard."""
        parts, sizes = self._parts, self._part_bytes
        if parts < n_shards:
            return False
        if sizes is None:
            return parts % n_shards == 0
        shares = [sum(sizes[s::n_shards]) for s in range(n_shards)]
        return min(shares) >= self.PART_BALANCE * max(shares)

    @functools.cached_property
    def _part_bytes(self) -> list[int] | None:
        return self.splits.train.part_bytes()

    def _tokenizer(self):
        if self.data.get("tokenizer"):
            tokenizer = text_data.load_tokenizer_file(self.data["tokenizer"])
            say(f"tokenizer: {self.data['tokenizer']} ({tokenizer.get_vocab_size():,} tokens)")
            return tokenizer
        n_docs, vocab_size = self.data.get("tokenizer_docs", 20000), self.data.get("vocab_size", 8192)
        source = self.splits.train
        seen = {"documents": 0, "text": False}

        def sample():  # pieces of n_docs documents, each file's first in turn: never a whole long text
            document = 0
            for piece, last, part, index in source.pieces_across_files():
                if document >= n_docs:
                    break
                if not text_data.is_held_out(part, index, self._every):  # no validation document
                    seen["text"] = seen["text"] or bool(piece.strip())
                    yield piece
                seen["documents"] = document = document + last

        def train():
            started = time.monotonic()
            tokenizer = text_data.train_tokenizer(sample(), vocab_size=vocab_size)
            if not seen["text"]:
                raise DataError(f"data.path: corpus {source.describe()} is empty (no text)")
            docs, files = seen["documents"], len(source.files) if source.kind == "files" else 1
            spread = f" (each of its {files} files' first in turn)" if files > 1 else ""
            say(f"tokenizer: trained a byte-level BPE of {tokenizer.get_vocab_size():,} tokens on {docs:,} "
                f"document{'s' if docs != 1 else ''} of {source.describe()}{spread} in "
                f"{time.monotonic() - started:.0f} s" + short_of(tokenizer))
            return tokenizer

        def short_of(tokenizer) -> str:  # a small corpus ends BPE's merges before the size asked for
            size = tokenizer.get_vocab_size()
            return (f"; data.vocab_size asks for {vocab_size:,}, but the sample had no more pairs to merge (more "
                    f"text, or a larger data.tokenizer_docs, gives more)" if size < vocab_size else "")

        # everything the trained tokenizer depends on; the recipe changes with train_tokenizer's or the sample's
        key = dict(recipe=3, vocab_size=vocab_size, tokenizer_docs=n_docs, every=self._every,
                   corpus=source.fingerprint())
        key.update(self._held_out_key())
        tokenizer, file, trained = text_data.cached_tokenizer(key, train)
        if not trained:
            say(f"tokenizer: {tokenizer.get_vocab_size():,} tokens, trained earlier on {source.describe()} ({file})"
                + short_of(tokenizer))
        return tokenizer

    def _held_out_key(self) -> dict:
        """Part of the cache keys where the held-out documents of a corpus of several parts are chosen by
        their place in each part (text.is_held_out), no longer in the whole corpus (a sample or shards made
        under the old rule would hold validation documents); one part's keys are as they were."""
        return {"held_out": "by part"} if self._every and self._parts > 1 else {}

    def _corpus_key(self) -> dict:
        """What the documents read from the corpus depend on (part of the cache keys)."""
        return dict(corpus=self.splits.train.fingerprint())

    def _tokenizer_key(self) -> str:
        return hashlib.sha256(self.tokenizer.to_str().encode()).hexdigest()

    def _load_shards(self):
        """Tokenize the training (and validation) text once into cached shards; read the validation rows."""
        width, train = self.seq_len + 1, self.splits.train
        # recipe 2: a literal <eod> in the text is text (text.text_only), no longer a document boundary
        key = dict(recipe=2, tokenizer=self._tokenizer_key(), every=self._every, max_tokens=self.max_tokens,
                   val_fraction=self.val_fraction if self._every else None, **self._corpus_key(),
                   **self._held_out_key())
        self.shards = build_shards(key, train, self.tokenizer, holdout_every=self._every,
                                   val_fraction=self.val_fraction, limit=self.max_tokens, say=say)
        n_tok, n_docs = self.shards.count("train"), int(self.shards.meta["documents"])
        if n_tok + self.shards.count("validation") <= n_docs:  # only <eod> tokens
            raise DataError(f"data.path: corpus {train.describe()} is empty (no text)")
        self._n_train_rows = n_tok // width
        say(f"training text: {train.describe()}: {n_tok:,} tokens ({self._n_train_rows:,} rows of {width})")
        asked = max(1, math.ceil(self.val_tokens / self.seq_len))
        if self.splits.validation is not None:
            validation = self.splits.validation
            val_key = dict(recipe=2, tokenizer=self._tokenizer_key(), corpus=validation.fingerprint(),
                           limit=asked * width)
            self.val_shards = build_shards(val_key, validation, self.tokenizer, split="validation",
                                           limit=asked * width, say=say)
            where = validation.describe()
        else:
            self.val_shards = self.shards
            each = f"each of the {self._parts} parts of " if self._parts > 1 else ""
            where = (f"every {self._every}th document of {each}{train.describe()}" if n_docs >= 2 * self._every else
                     f"the last {self.val_fraction:.0%} of the tokens of {train.describe()} (fewer than "
                     f"{2 * self._every} documents)")
        available = self.val_shards.count("validation") // width
        if self._n_train_rows >= 1 and available < 1:  # the training text is long enough: name the short part
            role = self.splits.validation.role if self.splits.validation is not None else "path"
            raise DataError(f"data.{role}: the validation text, {where}, has {self.val_shards.count('validation'):,} "
                            f"tokens, too short for one validation sequence of seq_len + 1 = {width} tokens")
        if self._n_train_rows < 1 or available < 1:
            raise DataError(f"data.path: corpus {train.describe()} has {n_tok + self.shards.count('validation'):,} "
                            f"tokens, too short for one training and one validation sequence of seq_len + 1 = "
                            f"{width} tokens")
        n_val = min(asked, available)
        if n_val < asked:
            say(f"warning: data.val_tokens asks for {self.val_tokens:,} validation tokens ({asked:,} rows of {width}); "
                f"{where} has {available:,} rows: validating on those ({n_val * self.seq_len:,} tokens)")
        else:
            say(f"validation text: {where}: {n_val} rows of {width} ({n_val * self.seq_len:,} tokens)")
        # rows spread over all the held-out text: its first rows are the first documents of the first file,
        # one part of a corpus of many files (one language of the paper's two, say)
        rows = np.linspace(0, available - 1, n_val).round().astype(np.int64) if n_val < available else range(n_val)
        self.val_rows = np.stack([self.val_shards.read("validation", int(row) * width, (int(row) + 1) * width)
                                  for row in rows])
        self.n_tokens = n_tok

    @property
    def train_tokens(self) -> int | None:
        """Tokens one pass over the training rows trains on (None for a streamed corpus)."""
        return None if self.streaming else self._n_train_rows * self.seq_len

    @property
    def train_rows(self) -> np.ndarray | None:
        """The training rows [n, seq_len + 1] as a memory map (None for a streamed corpus). For looking
        at; training reads its batches through :meth:`train_batch`, which maps the file only briefly."""
        return None if self.streaming else self.shards.memmap("train", self.seq_len + 1)

    def _load_stream_val(self):
        """Streaming corpora: validation rows from the validation text, or from the held-out documents at
        the start of the stream."""
        n_val = max(1, math.ceil(self.val_tokens / self.seq_len))
        if self.splits.validation is not None:
            held_out = text_data.tokenize_documents(self.tokenizer, self.splits.validation.documents())
        else:
            held_out = text_data.tokenize_documents(self.tokenizer, self._stream_documents(0, 1, held_out=True))
        rows = []
        for row in text_data.pack_rows(held_out, self.seq_len):
            rows.append(row)
            if len(rows) == n_val:
                break
        if not rows:
            why = (f" (held out: document i of part p where i + p is one short of a multiple of {self._every}, "
                   f"data.val_fraction = {self.val_fraction}; give data.val_path or a larger data.val_fraction)"
                   if self._every and self._parts > 1 else "")
            raise DataError(f"data.path: corpus {self.path} is too short for one validation sequence of "
                            f"{self.seq_len + 1} tokens{why}")
        if len(rows) < n_val:
            say(f"warning: data.val_tokens asks for {self.val_tokens:,} validation tokens ({n_val} rows); the "
                f"validation text has {len(rows)} rows: validating on those")
        self.val_rows = np.stack(rows)
        parts = self._parts
        say(f"training text: {self.splits.train.describe()}, streamed in {parts} part{'s' if parts != 1 else ''}"
            + (" (loader processes over all ranks read only their own parts where the parts share out evenly "
               "among them, else each reads it all and keeps its share)" if parts > 1 else "")
            + f"; validation: {len(self.val_rows)} rows of {self.seq_len + 1}")

    # ---- batches ----
    def train_batch(self, j: int, rank: int = 0, world: int = 1) -> dict:
        """Batch j of this rank: rows of a seeded per-epoch permutation of the training rows, read from the
        shards (the permutation is the only per-row state: 4 bytes a row); streamed corpora: the shard's
        next rows (see _stream_at)."""
        if not self.streaming:
            n = self._n_train_rows
            per_epoch = max(1, n // (world * self.batch_size))
            epoch, i = divmod(j, per_epoch)
            perm = self._permutation(epoch)
            start = (i * world + rank) * self.batch_size
            return _batch_dict(self.shards.rows("train", perm[np.arange(start, start + self.batch_size) % n],
                                                self.seq_len + 1))
        stream = self._stream_at(j, rank, world)
        return _batch_dict(np.stack([next(stream) for _ in range(self.batch_size)]))

    def _permutation(self, epoch: int) -> np.ndarray:
        """The order of the training rows in ``epoch`` (kept for the current epoch only)."""
        if getattr(self, "_perm_epoch", None) != epoch:
            n = self._n_train_rows
            rows = np.arange(n, dtype=np.uint32 if n < 2**32 else np.int64)
            self._perm = np.random.default_rng([self.seed, epoch]).permutation(rows)  # = permutation(n), smaller
            self._perm_epoch = epoch
        return self._perm

    #: rows between two bookmarks of a streamed shard (text.StreamBookmarks): 4096 rows are 34M tokens at n = 8192
    STREAM_BOOKMARK_ROWS = 4096

    def _stream_at(self, j: int, rank: int, world: int):
        """Streaming: the rows of batch j's shard, positioned at batch j. With K loader workers a rank's
        documents are split into K shards (document index ≡ shard mod shards), and batch j is the
        (j // K)-th batch of shard j mod K: worker w of a loader started at batch S makes the batches
        j ≡ S + w (mod K), so the shard follows j, not the worker. A stream asked for a batch other
        than its next one (a resumed run) starts again at the last bookmark before that batch, skipping
        the documents before it untokenized, and reads on from there: exact, at the cost of at most
        STREAM_BOOKMARK_ROWS rows re-read (all of them up to the batch when no bookmark was kept)."""
        info = get_worker_info()
        n_sub = info.num_workers if info else 1
        sub, position = j % n_sub, j // n_sub
        key = (rank, world, sub, n_sub)
        if getattr(self, "_stream_key", None) != key or self._stream_next != position:
            shard, n_shards = rank * n_sub + sub, world * n_sub
            bookmarks = text_data.StreamBookmarks(self._stream_key_of(shard, n_shards))
            row = position * self.batch_size  # the shard's rows before batch j
            mark = bookmarks.at_or_before(row)
            self._stream_key, self._stream = key, self._stream_gen(shard, n_shards, mark, bookmarks)
            if shard == 0 and self._parts > 1:  # from the job's first shard: does the job read the corpus once?
                if self._reads_own_parts(n_shards):
                    how = f"each reads only its own of the {self._parts} parts"
                else:
                    how = (f"each reads all {self._parts} parts and keeps 1/{n_shards} of the documents, as the "
                           f"parts do not share out evenly (a multiple of {n_shards} files of similar size would "
                           f"be read once)")
                say(f"streamed in {n_shards} shards ({world} rank{'s' if world != 1 else ''} x {n_sub} loader "
                    f"process{'es' if n_sub != 1 else ''}): {how}")
            if row:
                print(f"[data] resuming the streamed corpus {self.path} at batch {j}: from its bookmark at row "
                      f"{mark[0]}, re-reading {row - mark[0]} rows of its shard", flush=True)
            for _ in range(row - mark[0]):
                next(self._stream)
        self._stream_next = position + 1
        return self._stream

    def _stream_key_of(self, shard: int, n_shards: int) -> dict:
        """Everything a streamed shard's rows depend on (the key of its bookmarks)."""
        # recipe 3: documents held out and shared out part by part (_stream_documents)
        return dict(recipe=3, seq_len=self.seq_len, every=self._every, shard=shard, n_shards=n_shards,
                    tokenizer=hashlib.sha256(self.tokenizer.to_str().encode()).hexdigest(), **self._corpus_key())

    def _stream_gen(self, shard: int, n_shards: int, start=(0, 0, 0, 0, 0), bookmarks=None):
        """The shard's rows from ``start`` (a bookmark: row, epoch, row within the epoch, document, token
        offset), epoch after epoch; every STREAM_BOOKMARK_ROWS-th row is bookmarked in ``bookmarks``.
        Rows are the shard's documents' tokens (each ending in <eod>) cut every seq_len + 1 tokens, the
        remainder of an epoch dropped: text.pack_rows, with the position of each row's first token kept."""
        width = self.seq_len + 1
        row, epoch, epoch_row, skip, offset = start
        while True:
            docs = self._stream_documents(shard, n_shards)
            starts = collections.deque()  # (document, where its first token lies in the epoch's token stream)

            def tokens_from(skip: int, offset: int, at: int):
                """The documents' tokens from document ``skip``'s token ``offset`` on, which lies at ``at``
                in the epoch's token stream; notes in ``starts`` where each document begins."""
                at -= offset
                for doc, ids in enumerate(text_data.tokenize_documents(self.tokenizer, itertools.islice(docs, skip, None)),
                                          start=skip):
                    starts.append((doc, at))
                    at += len(ids)
                    yield ids[offset:] if doc == skip else ids

            got = False
            for tokens in text_data.pack_rows(tokens_from(skip, offset, epoch_row * width), self.seq_len):
                at = epoch_row * width  # where this row's first token lies
                while len(starts) > 1 and starts[1][1] <= at:  # documents wholly before this row
                    starts.popleft()
                if bookmarks is not None and row and row % self.STREAM_BOOKMARK_ROWS == 0:
                    bookmarks.add(row, epoch, epoch_row, starts[0][0], at - starts[0][1])
                got = True
                yield tokens
                row, epoch_row = row + 1, epoch_row + 1
            if not got:
                raise DataError(f"data.path: corpus {self.path} has no training sequence for shard {shard} of {n_shards}")
            epoch, epoch_row, skip, offset = epoch + 1, 0, 0, 0

    def split_dataset(self, split: str) -> RowDataset:
        if split in ("validation", "val", "test"):  # real text: the held-out documents serve both
            return RowDataset(self.val_rows)
        raise DataError(f"split: expected 'validation' or 'test', got {split!r}")

    def bayes_loss(self, split: str = "validation") -> None:
        """Unknown for real text."""
        return None


def build_datamodule(data: dict, seq_len: int, batch_size: int, seed: int = 0, num_workers: int = 0, *,
                     rank: int | None = None, world_size: int | None = None) -> L.LightningDataModule:
    """The data module for ``data["source"]`` ("synthetic" or "text"); see the module docstring.
    ``rank``/``world_size`` override the trainer's (for tests or custom launchers)."""
    check_data(data)  # unknown keys, wrong types: one line naming the key
    cls = {"synthetic": SyntheticDataModule, "text": TextDataModule}[data.get("source", "synthetic")]
    return cls(data, seq_len, batch_size, seed=seed, num_workers=num_workers, rank=rank, world_size=world_size)


def validate_data(data: dict) -> None:
    """What can be checked of a data dict without tokenizing anything (before a run writes a file): the
    keys and their values, that local paths exist (and a folder of split files has the split asked for),
    that a given tokenizer file is one. Dataset names are left to loading (DataError naming data.path)."""
    data = check_data(data)  # the synthetic language's parameters included
    if data.get("source", "synthetic") != "text":
        return
    for note in text_data.resolve_splits(data).notes:
        say(note)
    if data.get("tokenizer"):
        text_data.load_tokenizer_file(data["tokenizer"])


__all__ = ["build_datamodule", "validate_data", "check_data", "say", "SOURCES", "SyntheticDataModule",
           "TextDataModule", "BatchStream", "DataError", "LanguageSpec", "SyntheticLanguage"]
