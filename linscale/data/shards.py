"""Token shards: a text tokenized once into flat files of token ids, read back row by row in training.

    <cache>/shards/<hash of key>/meta.json        key, dtype, token counts, progress
    <cache>/shards/<hash of key>/<split>.bin      token ids of one split, concatenated (each document
                                                  followed by <eod>), as the smallest unsigned integer
                                                  type that holds the vocabulary (uint16 up to 65,536)

``<cache>`` is linscale's cache (``$LINSCALE_CACHE``, default ``~/.cache/linscale``); the key holds
everything the ids depend on (the source's files with sizes and modification times, or the dataset's
name and split; the tokenizer; how validation is held out; the token limit), so every run, rank and
sweep reading the same text shares one tokenization, and an edited corpus is tokenized again.

Building (:func:`build_shards`) happens once per key under a file lock: the first process tokenizes
while the others (DDP ranks, a sweep's workers) wait and then read the result. It is resumable: every
``CHECKPOINT_TOKENS`` tokens the files are flushed and ``meta.json`` records how many pieces of the text
(:meth:`linscale.data.text.TextSource.pieces_by_part`) are in them, so a build that was killed continues where
it was (the files cut back to the recorded length, the pieces before skipped unread by the tokenizer),
and its files equal those of an uninterrupted build.

Reading (:meth:`TokenShards.rows`) maps the file for each batch and drops the mapping afterwards
(numpy's ``memmap``), so a training process keeps only the rows it is using: its memory does not grow
with the corpus (a mapping kept open would count every page read so far in the process's RSS).
"""
from __future__ import annotations

import collections
import itertools
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from linscale.atomic import atomic_write
from linscale.data.synthetic import DataError
from linscale.data.text import TextSource, cache_dir, cache_key_digest, is_held_out, tokenize_pieces

#: tokens written between two resumable checkpoints of a build (32 MB of uint16)
CHECKPOINT_TOKENS = 1 << 24
#: seconds between two progress lines of a build
PROGRESS_SECONDS = 30.0


def token_dtype(vocab_size: int) -> np.dtype:
    """The smallest unsigned integer type that holds ids 0 .. vocab_size - 1."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if vocab_size <= np.iinfo(dtype).max + 1:
            return np.dtype(dtype)
    return np.dtype(np.uint64)


@dataclass
class TokenShards:
    """A finished tokenization: ``folder`` with ``meta.json`` and one ``<split>.bin`` per split."""
    folder: Path
    meta: dict

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.meta["dtype"])

    def count(self, split: str) -> int:
        """Tokens of ``split`` (0 if there are none)."""
        return int(self.meta["counts"].get(split, 0))

    def file(self, split: str) -> Path:
        return self.folder / f"{split}.bin"

    def read(self, split: str, start: int, stop: int) -> np.ndarray:
        """Tokens ``start:stop`` of ``split`` as int64 (read, not mapped)."""
        stop = min(stop, self.count(split))
        if stop <= start:
            return np.zeros(0, dtype=np.int64)
        with open(self.file(split), "rb") as f:
            f.seek(start * self.dtype.itemsize)
            return np.fromfile(f, dtype=self.dtype, count=stop - start).astype(np.int64)

    def memmap(self, split: str, width: int) -> np.ndarray:
        """``split`` as a read-only [rows, width] memory map (the remainder after the last whole row left
        out). Keep it only briefly: pages read through it stay in the process's memory while it lives."""
        n = self.count(split) // width
        if n == 0:
            return np.zeros((0, width), dtype=self.dtype)
        return np.memmap(self.file(split), dtype=self.dtype, mode="r", shape=(n * width,)).reshape(n, width)

    def rows(self, split: str, indices: np.ndarray, width: int) -> np.ndarray:
        """Rows ``indices`` (of ``width`` tokens each, row i = tokens i·width .. (i+1)·width) as int64; the
        file is mapped for this call only."""
        mapped = self.memmap(split, width)
        try:
            return np.asarray(mapped[np.asarray(indices)], dtype=np.int64)
        finally:
            del mapped


def shards_folder(key: dict) -> Path:
    return cache_dir() / "shards" / cache_key_digest(key)


def build_shards(key: dict, source: TextSource, tokenizer, *, split: str = "train", holdout_every: int = 0,
                 val_fraction: float = 0.01, limit: int | None = None,
                 say: Callable[[str], None] = print) -> TokenShards:
    """Tokenize ``source`` into shards (or open the finished ones of ``key``; resume an interrupted build).

    Every document goes to ``split``, except, with ``holdout_every`` = k > 0, every k-th document (by
    its place in its part: :func:`linscale.data.text.is_held_out`), which goes to ``validation``; with
    fewer than 2k documents the last ``val_fraction`` of the tokens is held out instead. ``limit``: stop
    after the piece at which this many tokens are written.
    """
    from filelock import FileLock, Timeout

    folder = shards_folder(key)
    folder.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(f"{folder}.lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        say(f"waiting for another process tokenizing {source.describe()} into {folder}")
        lock.acquire()
    try:
        meta = _read_meta(folder, key)
        if meta is not None and meta.get("complete"):
            return TokenShards(folder, meta)
        return _build(folder, key, meta, source, tokenizer, split, holdout_every, val_fraction, limit, say)
    finally:
        lock.release()


def _read_meta(folder: Path, key: dict) -> dict | None:
    """The folder's meta.json if it belongs to ``key`` and its files are at least as long as it says
    (a shorter file means the disk lost writes: start over), and were not being rewritten (the tail hold-out)."""
    try:
        meta = json.loads((folder / "meta.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("key") != key or meta.get("rewriting"):
        return None
    try:
        itemsize = np.dtype(meta["dtype"]).itemsize
        for name, count in meta["counts"].items():
            if (folder / f"{name}.bin").stat().st_size < count * itemsize:
                return None
    except (OSError, KeyError, TypeError, AttributeError):
        return None
    return meta


def _write_meta(folder: Path, meta: dict) -> None:
    text = json.dumps(meta, indent=1)
    atomic_write(folder / "meta.json", lambda tmp: Path(tmp).write_text(text), mode=0o644)


def _build(folder, key, meta, source, tokenizer, split, every, val_fraction, limit, say) -> TokenShards:
    dtype = token_dtype(tokenizer.get_vocab_size())
    splits = (split, "validation") if every else (split,)
    if meta is None:  # a fresh build: no stale files of an older one
        folder.mkdir(parents=True, exist_ok=True)
        for f in folder.glob("*.bin"):
            f.unlink()
        meta = {"key": key, "dtype": dtype.name, "complete": False, "pieces": 0, "documents": 0,
                "counts": {name: 0 for name in splits}}
    else:
        say(f"resuming the interrupted tokenization of {source.describe()} at {sum(meta['counts'].values()):,} "
            f"tokens ({meta['documents']:,} documents)")
    counts, pieces_done, documents = dict(meta["counts"]), int(meta["pieces"]), int(meta["documents"])
    files = {}
    for name in splits:  # cut back to what the last checkpoint recorded, then append
        files[name] = open(folder / f"{name}.bin", "ab")
        files[name].truncate(counts[name] * dtype.itemsize)
    started, last_line, since_checkpoint, written = time.monotonic(), time.monotonic(), 0, 0

    def checkpoint(complete: bool = False) -> None:
        for f in files.values():
            f.flush()
            os.fsync(f.fileno())
        meta.update(counts=dict(counts), pieces=pieces_done, documents=documents, complete=complete)
        _write_meta(folder, meta)

    try:
        pieces = itertools.islice(source.pieces_by_part(), pieces_done, None)  # skipped ones read, not tokenized
        held_out = collections.deque()  # whether each piece handed to the tokenizer is a validation document's

        def text(pieces):
            for piece, last, part, index in pieces:
                held_out.append(is_held_out(part, index, every))
                yield piece, last

        for ids, last in tokenize_pieces(tokenizer, text(pieces), say=say):  # one (ids, last) a piece, in order
            name = "validation" if held_out.popleft() else split
            files[name].write(ids.astype(dtype).tobytes())
            counts[name] += len(ids)
            pieces_done, documents = pieces_done + 1, documents + last
            since_checkpoint += len(ids)
            written += len(ids)
            if limit is not None and sum(counts.values()) >= limit:
                break
            if since_checkpoint >= CHECKPOINT_TOKENS:  # at any piece: a resumed build skips whole pieces
                checkpoint()
                since_checkpoint = 0
            if time.monotonic() - last_line > PROGRESS_SECONDS:
                last_line = time.monotonic()
                say(f"tokenizing {source.describe()}: {sum(counts.values()):,} tokens, {documents:,} documents "
                    f"({written / (last_line - started):,.0f} tokens/s)")
        if every and documents < 2 * every:
            # the tail hold-out rewrites both files in place, so a build killed inside it has files no
            # checkpoint describes: marked, the next build starts over (_read_meta) rather than resume from them
            meta["rewriting"] = True
            checkpoint()
            _hold_out_tail(folder, files, counts, split, val_fraction, dtype)
            del meta["rewriting"]
        checkpoint(complete=True)
    finally:
        for f in files.values():
            f.close()
    seconds = time.monotonic() - started
    say(f"tokenized {source.describe()}: {sum(counts.values()):,} tokens, {documents:,} "
        f"document{'s' if documents != 1 else ''} in {seconds:.0f} s "
        f"({written / max(seconds, 1e-9):,.0f} tokens/s; {dtype.name}) -> {folder}")
    return TokenShards(folder, meta)


def _hold_out_tail(folder, files, counts, split, val_fraction, dtype) -> None:
    """Too few documents to hold out whole ones: the held-out documents go back behind the training
    ones, and the last ``val_fraction`` of all tokens becomes the validation split."""
    for f in files.values():
        f.flush()
    held = counts["validation"]
    _copy_tokens(folder / "validation.bin", 0, held, files[split], dtype)
    total = counts[split] + held
    cut = total - int(total * val_fraction)
    files["validation"].truncate(0)
    _copy_tokens(folder / f"{split}.bin", cut, total - cut, files["validation"], dtype)
    files[split].truncate(cut * dtype.itemsize)
    counts[split], counts["validation"] = cut, total - cut


def _copy_tokens(path: Path, start: int, count: int, out, dtype: np.dtype, chunk: int = 1 << 22) -> None:
    """Append tokens ``start:start+count`` of ``path`` to the open file ``out``, a chunk at a time."""
    end = start + count
    with open(path, "rb") as f:
        f.seek(start * dtype.itemsize)
        while count > 0:
            block = f.read(min(chunk, count) * dtype.itemsize)
            if not block:  # a file cut short since it was counted: an error, not a loop reading nothing for ever
                raise DataError(f"{path}: ends before token {end:,}, which this build counted; delete the "
                                f"folder {path.parent} to build its shards again")
            out.write(block)
            count -= len(block) // dtype.itemsize
    out.flush()


__all__ = ["TokenShards", "build_shards", "token_dtype", "shards_folder", "CHECKPOINT_TOKENS"]
