"""Real text: documents from local files or Hugging Face ``datasets``, a byte-level BPE tokenizer, packing.

Sources (``data["path"]``):

* a ``.txt`` file (one document; or several, split on ``doc_separator`` such as ``"\\n\\n"``), a ``.jsonl``
  file (one JSON object per line, text in ``text_field``), a ``.parquet`` file (column ``text_field``);
* a directory: written by ``datasets``' ``save_to_disk`` (loaded with ``load_from_disk``), or holding
  data files that ``datasets.load_dataset(<dir>)`` understands (json, parquet, csv, txt);
* any other string is a Hugging Face dataset name, loaded with ``load_dataset(name, dataset_config,
  split=..., streaming=True)`` (so large corpora are never materialised). Offline
  (``HF_DATASETS_OFFLINE=1``) only names already in the local cache work.

Tokenizer: :func:`train_tokenizer` trains byte-level BPE (``tokenizers``) on a sample of documents with
``<eod>`` as a special token; decode(encode(x)) == x for any string. Or give ``data["tokenizer"]``: a
``tokenizer.json`` (it must contain ``<eod>``). A trained tokenizer is kept in a cache
(:func:`cached_tokenizer`), keyed by the corpus and the training settings, so that the runs of a sweep,
the ranks of a DDP job and a resumed run train it once and all use the same file.

Packing (:func:`pack_rows`): documents are tokenized, each followed by ``<eod>``, concatenated and cut
into rows of T+1 tokens (inputs row[:-1], labels row[1:]).

Validation split: every ``round(1/val_fraction)``-th document (by position in the corpus) is held out, so
train and validation share no document; with too few documents the last ``val_fraction`` of the token
stream is held out instead.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from linscale.data.synthetic import EOD, DataError

LOCAL_SUFFIXES = (".txt", ".jsonl", ".parquet")


# ---- reading documents -----------------------------------------------------------------------------------
def _read_utf8(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not valid UTF-8 text (byte {raw[err.start]:#04x} at offset {err.start})") from None


def _iter_file(path: Path, text_field: str, doc_separator: str | None) -> Iterator[str]:
    if path.suffix == ".txt":
        text = _read_utf8(path)
        yield from (text.split(doc_separator) if doc_separator else [text])
    elif path.suffix == ".jsonl":
        for i, line in enumerate(_read_utf8(path).splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(f"{path}:{i}: not valid JSON ({err.msg})") from None
            if not isinstance(row, dict) or text_field not in row:
                raise DataError(f"{path}:{i}: no field {text_field!r} (set data.text_field)")
            yield str(row[text_field])
    elif path.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except Exception as err:  # pyarrow raises several types for corrupt files
            raise DataError(f"{path}: not a readable Parquet file ({type(err).__name__}: {err})".splitlines()[0]) from None
        if text_field not in table.column_names:
            raise DataError(f"{path}: no column {text_field!r} (columns: {', '.join(table.column_names)}; set data.text_field)")
        yield from (str(x) for x in table.column(text_field).to_pylist() if x is not None)
    else:
        raise DataError(f"{path}: unsupported file type {path.suffix!r}; expected one of {', '.join(LOCAL_SUFFIXES)}")


def _load_hf(path_or_name: str, dataset_config, split: str, streaming: bool, is_dir: bool, cache_dir=None):
    import datasets

    try:
        if is_dir and any((Path(path_or_name) / f).exists() for f in ("state.json", "dataset_dict.json")):
            ds = datasets.load_from_disk(path_or_name)
            if isinstance(ds, datasets.DatasetDict):
                if split not in ds:
                    raise DataError(f"{path_or_name}: no split {split!r} (splits: {', '.join(ds)}; set data.split)")
                ds = ds[split]
            return ds
        return datasets.load_dataset(path_or_name, dataset_config, split=split, streaming=streaming, cache_dir=cache_dir)
    except DataError:
        raise
    except Exception as err:
        offline = os.environ.get("HF_DATASETS_OFFLINE") == "1" or os.environ.get("HF_HUB_OFFLINE") == "1"
        why = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        hint = " (offline: HF_DATASETS_OFFLINE=1, and it is not in the local cache)" if offline and not is_dir else ""
        raise DataError(f"data.path: cannot load dataset {path_or_name!r}{hint}: {why}") from None


def iter_documents(path: str | os.PathLike, text_field: str = "text", doc_separator: str | None = None,
                   dataset_config: str | None = None, split: str = "train", streaming: bool | None = None,
                   cache_dir: str | None = None) -> Iterator[str]:
    """The documents (strings) of a local file, a local directory or a Hugging Face dataset name
    (``cache_dir``: where ``datasets`` keeps its Arrow cache; default ``HF_DATASETS_CACHE``)."""
    p = Path(path).expanduser()
    if p.is_file():
        yield from _iter_file(p, text_field, doc_separator)
        return
    if p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.suffix in LOCAL_SUFFIXES and f.is_file())
        is_saved = any((p / f).exists() for f in ("state.json", "dataset_dict.json"))
        if files and not is_saved and all(f.suffix == ".txt" for f in files):
            for f in files:  # a folder of text files: one document per file (or per separator)
                yield from _iter_file(f, text_field, doc_separator)
            return
        ds = _load_hf(str(p), dataset_config, split, bool(streaming), is_dir=True, cache_dir=cache_dir)
    else:
        looks_local = str(path).startswith((".", "/", "~")) or Path(str(path)).suffix in LOCAL_SUFFIXES
        if looks_local:
            raise DataError(f"data.path: file not found: {path}")
        ds = _load_hf(str(path), dataset_config, split, True if streaming is None else streaming, is_dir=False,
                      cache_dir=cache_dir)
    features = getattr(ds, "column_names", None) or []
    if features and text_field not in features:
        raise DataError(f"data.text_field: dataset {str(path)!r} has no column {text_field!r} (columns: {', '.join(features)})")
    # .iter() rather than iterating the dataset: a streamed dataset would otherwise split itself over
    # DataLoader workers on its own, on top of linscale's per-document sharding
    for batch in ds.iter(batch_size=256):
        yield from (str(text) for text in batch[text_field] if text is not None)


# ---- tokenizer -------------------------------------------------------------------------------------------
def train_tokenizer(texts: Iterable[str], vocab_size: int = 8192, min_frequency: int = 2):
    """A byte-level BPE ``tokenizers.Tokenizer`` trained on ``texts`` with ``<eod>`` as special token 0.
    Byte-level means every string round-trips: decode(encode(x).ids) == x."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    if not isinstance(vocab_size, int) or vocab_size < 257 + 1:
        raise DataError(f"data.vocab_size: expected an integer > 257 (256 bytes + <eod>), got {vocab_size!r}")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=[EOD],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def load_tokenizer_file(path: str | os.PathLike):
    """A saved ``tokenizer.json``; it must have an ``<eod>`` token."""
    from tokenizers import Tokenizer

    p = Path(path).expanduser()
    if not p.is_file():
        raise DataError(f"data.tokenizer: file not found: {p}")
    try:
        tok = Tokenizer.from_file(str(p))
    except Exception as err:
        raise DataError(f"data.tokenizer: {p} is not a tokenizers JSON file ({str(err).splitlines()[0]})") from None
    if tok.token_to_id(EOD) is None:
        raise DataError(f"data.tokenizer: {p} has no {EOD!r} token")
    return tok


def cache_dir() -> Path:
    """linscale's cache: ``$LINSCALE_CACHE``, else ``$XDG_CACHE_HOME/linscale`` (default ``~/.cache/linscale``)."""
    root = os.environ.get("LINSCALE_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache") / "linscale"
    return Path(root).expanduser()


def tokenizer_cache_dir() -> Path:
    """Where trained tokenizers are kept: ``<cache_dir()>/tokenizers``."""
    return cache_dir() / "tokenizers"


def corpus_fingerprint(path: str | os.PathLike) -> dict:
    """What identifies a corpus for the tokenizer cache: a local file's or folder's files with their sizes
    and modification times (an edited corpus gets a new tokenizer), or a dataset name as given."""
    p = Path(path).expanduser()
    if not p.exists():
        return {"name": str(path)}
    files = [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.is_file())
    return {"path": str(p.resolve()),
            "files": [[str(f.relative_to(p)) if f != p else f.name, f.stat().st_size, f.stat().st_mtime_ns]
                      for f in files]}


def cached_tokenizer(key: dict, train: Callable[[], object]):
    """The tokenizer ``train()`` returns, trained once per ``key`` (a JSON-able dict) and kept as
    ``<tokenizer_cache_dir()>/<hash of key>.json``. Processes asking at once (DDP ranks, a sweep's workers) wait on a
    file lock for the first to finish; a damaged cache file is trained again."""
    from filelock import FileLock

    from linscale.atomic import atomic_write

    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    file = tokenizer_cache_dir() / f"{digest}.json"
    file.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{file}.lock"):
        if file.exists():
            try:
                return load_tokenizer_file(file)
            except DataError:
                pass  # a damaged or foreign file: replaced below
        tokenizer = train()
        atomic_write(file, lambda tmp: tokenizer.save(tmp), mode=0o644)
    return tokenizer


# ---- stream bookmarks ------------------------------------------------------------------------------------
class StreamBookmarks:
    """Where rows of one streamed shard start, so that a resumed run skips the documents before its
    position without tokenizing them (re-tokenizing is what made resuming a long streamed run slow).

    A bookmark maps a row of the shard's stream to (epoch, row within the epoch, index of the document
    among the shard's documents of that epoch, token offset in it). They are kept in
    ``<cache_dir()>/streams/<hash of key>.json``; ``key`` holds everything the rows depend on (corpus,
    tokenizer, row width, shard), so every run reading the same stream shares them. A missing or damaged
    file just means no bookmarks: the stream is then read from its start, as before."""

    def __init__(self, key: dict):
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        self.file = cache_dir() / "streams" / f"{digest}.json"
        self.marks = self._read()

    def _read(self) -> dict[int, tuple[int, int, int, int]]:
        try:
            marks = {int(row): tuple(int(x) for x in mark) for row, mark in json.loads(self.file.read_text()).items()}
        except (OSError, ValueError, TypeError):
            return {}
        return {row: mark for row, mark in marks.items() if len(mark) == 4 and min(row, *mark) >= 0}

    def at_or_before(self, row: int) -> tuple[int, int, int, int, int]:
        """(row, epoch, row within the epoch, document, offset) of the last bookmark at or before ``row``
        (the stream's start when there is none)."""
        best = max((r for r in self.marks if r <= row), default=None)
        return (0, 0, 0, 0, 0) if best is None else (best, *self.marks[best])

    def add(self, row: int, epoch: int, epoch_row: int, doc: int, offset: int) -> None:
        if row in self.marks:
            return
        from filelock import FileLock

        from linscale.atomic import atomic_write

        self.marks[row] = (epoch, epoch_row, doc, offset)
        self.file.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(f"{self.file}.lock"):  # other processes may be adding theirs
            self.marks = {**self._read(), **self.marks}
            text = json.dumps({str(r): list(m) for r, m in sorted(self.marks.items())})
            atomic_write(self.file, lambda tmp: Path(tmp).write_text(text), mode=0o644)


# ---- packing ---------------------------------------------------------------------------------------------
def tokenize_documents(tokenizer, docs: Iterable[str], batch: int = 256) -> Iterator[np.ndarray]:
    """Token ids of each document followed by ``<eod>`` (uint32 arrays), tokenized in batches."""
    eod = tokenizer.token_to_id(EOD)
    buf = []
    for doc in docs:
        buf.append(doc)
        if len(buf) == batch:
            for enc in tokenizer.encode_batch(buf, add_special_tokens=False):
                yield np.array(enc.ids + [eod], dtype=np.int64)
            buf = []
    if buf:
        for enc in tokenizer.encode_batch(buf, add_special_tokens=False):
            yield np.array(enc.ids + [eod], dtype=np.int64)


def pack_rows(token_stream: Iterable[np.ndarray], seq_len: int) -> Iterator[np.ndarray]:
    """Concatenate token arrays and cut them into rows of ``seq_len + 1`` tokens (the remainder is dropped)."""
    width = seq_len + 1
    pending = np.zeros(0, dtype=np.int64)
    for ids in token_stream:
        pending = np.concatenate([pending, ids])
        n = len(pending) // width
        if n:
            yield from pending[: n * width].reshape(n, width)
            pending = pending[n * width:]


__all__ = ["iter_documents", "train_tokenizer", "load_tokenizer_file", "cached_tokenizer", "corpus_fingerprint",
           "cache_dir", "tokenizer_cache_dir", "StreamBookmarks", "tokenize_documents", "pack_rows"]
