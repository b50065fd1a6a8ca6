"""Real text: where documents come from (files, folders with split files, Hugging Face datasets), a
byte-level BPE tokenizer, packing.

Sources (``data["path"]``, and ``data["val_path"]`` for validation):

* a ``.txt`` file (one document; or several, split on ``doc_separator`` such as ``"\\n\\n"``), a ``.jsonl``
  file (one JSON object per line, text in ``text_field``), a ``.parquet`` file (column ``text_field``); a
  blank document (nothing but whitespace: a row's empty text, what a .txt file holds after its last
  separator) is skipped;
* a folder of such files. Files whose path holds a split word (as ``datasets`` names them: ``train``/
  ``training``; ``validation``/``valid``/``val``/``dev``; ``test``/``testing``/``eval``/``evaluation``,
  e.g. ``train.txt``, ``wiki.valid.txt``, ``test/part-0.jsonl``) are splits: training reads only the
  ``split`` files, validation the ``val_split`` ones, and test files are never read for training.
  A folder without split files is all training text;
* a folder written by ``datasets``' ``save_to_disk`` (splits of a ``DatasetDict`` by name), or holding
  other data files that ``datasets.load_dataset(<folder>)`` understands (csv, ...);
* any other string that looks like a dataset name (``name`` or ``org/name``) and names no local file or
  folder is a Hugging Face dataset, loaded with ``load_dataset(name, dataset_config, split=...)``. Offline
  (``HF_DATASETS_OFFLINE=1`` or ``HF_HUB_OFFLINE=1``) only names already in the local cache work, and
  nothing is fetched.

Files are read as a stream: a ``.txt`` file in 1 MB blocks, ``.jsonl`` line by line, ``.parquet`` by
record batch, so no file is ever held whole in memory. A long document is handed to the tokenizer in
pieces of about ``PIECE_CHARS`` characters, cut only before a space that starts a word (or after a
newline between two non-spaces): the byte-level pre-tokenizer splits there anyway, so the pieces'
tokens are exactly the document's (a text with no such place in 4 MB is cut anyway). A given tokenizer
whose pre-tokenizer splits elsewhere may tokenize a cut otherwise: a note says so (:func:`cuts_exactly`).

Tokenizer: :func:`train_tokenizer` trains byte-level BPE (``tokenizers``) on a sample of documents with
``<eod>`` as a special token; decode(encode(x)) == x for any string. Or give ``data["tokenizer"]``: a
``tokenizer.json`` (it must contain ``<eod>``). A trained tokenizer is kept in a cache
(:func:`cached_tokenizer`), keyed by the corpus and the training settings, so that the runs of a sweep,
the ranks of a DDP job and a resumed run train it once and all use the same file.

Packing (:func:`pack_rows`): documents are tokenized, each followed by ``<eod>``, concatenated and cut
into rows of T+1 tokens (inputs row[:-1], labels row[1:]).

Validation without a validation split: every ``round(1/val_fraction)``-th document is held out, so train
and validation share no document; with too few documents the last ``val_fraction`` of the token stream is
held out instead. The positions are counted within each of the corpus's parts (:meth:`TextSource.parts`:
files, or a streamed dataset's shards; :func:`is_held_out`), so that a streamed corpus's process can read its
own parts alone (``linscale.data.datamodule.TextDataModule._stream_documents``) and a corpus tokenized into
shards holds out the same documents as when it is streamed.
"""
from __future__ import annotations

import codecs
import functools
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from linscale.config import error_line
from linscale.data.synthetic import EOD, DataError

LOCAL_SUFFIXES = (".txt", ".jsonl", ".parquet")
# the files a folder may hold for datasets' own folder loader (compressed too: x.json.gz)
FOLDER_SUFFIXES = (*LOCAL_SUFFIXES, ".json", ".csv", ".tsv", ".arrow")
#: split words in file and folder names, as ``datasets`` infers splits (datasets.data_files.SPLIT_KEYWORDS)
SPLIT_WORDS = {"train": ("train", "training"), "validation": ("validation", "valid", "dev", "val"),
               "test": ("test", "testing", "eval", "evaluation")}
#: characters of a document handed to the tokenizer at once (a longer one is cut into pieces)
PIECE_CHARS = 1 << 20
# Where the byte-level pre-tokenizer (GPT-2's pattern) splits whatever follows: before a space that starts a
# word (" word" is one pre-token, and whatever precedes it ends there), or after a newline between two
# non-spaces. Cutting a text there leaves its pre-tokens, hence its token ids, as they are.
_SAFE_CUT = re.compile(r"(?= [A-Za-z0-9])|(?<=\S\n)(?=\S)")
_SAVED_MARKERS = ("state.json", "dataset_dict.json")  # a folder written by datasets' save_to_disk


def _offline() -> bool:
    return os.environ.get("HF_DATASETS_OFFLINE") == "1" or os.environ.get("HF_HUB_OFFLINE") == "1"


# ---- reading documents -----------------------------------------------------------------------------------
def _pieces_of(text: str, piece_chars: int = PIECE_CHARS) -> Iterator[tuple[str, bool]]:
    """``text`` as (piece, is_last) pieces of about ``piece_chars`` characters, cut at safe newlines (see
    the module docstring); a text with no safe newline for 4 pieces' length is cut at ``piece_chars``."""
    start = 0
    while len(text) - start > 2 * piece_chars:
        cut = _SAFE_CUT.search(text, start + piece_chars, start + 4 * piece_chars)
        end = cut.start() if cut else start + piece_chars
        yield text[start:end], False
        start = end
    yield text[start:], True


def _decode(decoder, raw: bytes, path: Path, offset: int, final: bool = False) -> str:
    pending = len(decoder.getstate()[0])
    try:
        return decoder.decode(raw, final)
    except UnicodeDecodeError as err:
        at = offset - pending + err.start
        raise DataError(f"{path}: not valid UTF-8 text (byte {err.object[err.start]:#04x} at offset {at})") from None


def _txt_pieces(path: Path, separator: str | None, piece_chars: int) -> Iterator[tuple[str, bool]]:
    """A .txt file's documents as (piece, is_last) pieces, read in 1 MB blocks. Blank text (nothing but
    whitespace) after the last separator, between two, or as the whole file is no document: a file ending in
    its separator gave one empty document, a lone end-of-document token in training. A long document's
    blank first pieces are held back until its text shows, so a blank one longer than a piece is none too."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    buf, offset, keep = "", 0, len(separator) if separator else 0
    started = False  # pieces of the current document handed on already (its rest may be blank)
    held: list[tuple[str, bool]] = []  # its first pieces while they are blank: handed on once its text shows
    with open(path, "rb") as f:
        while True:
            raw = f.read(1 << 20)
            buf += _decode(decoder, raw, path, offset, final=not raw)
            offset += len(raw)
            if separator:
                while (i := buf.find(separator)) >= 0:
                    if started or buf[:i].strip():
                        yield from held
                        yield from _pieces_of(buf[:i], piece_chars)
                    started, held = False, []
                    buf = buf[i + len(separator):]
            while len(buf) > 2 * piece_chars + keep:  # an unfinished long document: hand on its first pieces
                cut = _SAFE_CUT.search(buf, piece_chars, min(len(buf) - keep, 4 * piece_chars))
                if cut is None and len(buf) - keep < 4 * piece_chars:
                    break  # wait for a safe cut in the next block
                end = cut.start() if cut else piece_chars  # as _pieces_of cuts the same text
                if started or buf[:end].strip():
                    yield from held
                    yield buf[:end], False
                    started, held = True, []
                else:
                    held.append((buf[:end], False))
                buf = buf[end:]
            if not raw:
                break
    if started or buf.strip():
        yield from held
        yield from _pieces_of(buf, piece_chars)


def _jsonl_documents(path: Path, text_field: str) -> Iterator[str]:
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with open(path, "rb") as f:
        for i, raw in enumerate(f, 1):
            # final: a line ends at a newline, never inside a character (a last line cut in one was dropped)
            line = _decode(decoder, raw, path, offset, final=True)
            offset += len(raw)
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(f"{path}:{i}: not valid JSON ({err.msg})") from None
            if not isinstance(row, dict) or text_field not in row:
                raise DataError(f"{path}:{i}: no field {text_field!r} (set data.text_field)")
            text = row[text_field]
            if text is not None and not isinstance(text, str):  # a number or a list: a wrong text_field, likely
                raise DataError(f"{path}:{i}: field {text_field!r} is a {type(text).__name__}, expected a string "
                                "(set data.text_field)")
            text = _text_or_none(text)  # a missing or blank text is no document, as in every source
            if text is not None:
                yield text


def _parquet_documents(path: Path, text_field: str) -> Iterator[str]:
    import pyarrow.parquet as pq

    try:
        file = pq.ParquetFile(path)
        columns = file.schema_arrow.names
    except Exception as err:  # pyarrow raises several types for corrupt files
        raise DataError(f"{path}: not a readable Parquet file ({type(err).__name__}: {err})".splitlines()[0]) from None
    if text_field not in columns:
        raise DataError(f"{path}: no column {text_field!r} (columns: {', '.join(columns)}; set data.text_field)")
    for batch in file.iter_batches(batch_size=1024, columns=[text_field]):
        yield from (text for text in map(_text_or_none, batch.column(0).to_pylist()) if text is not None)


def _text_or_none(value) -> str | None:
    """A row's text as a document, or None where it is none: a missing text (once trained on as the word
    "None"), or a blank one (a lone end-of-document token; a Hugging Face corpus of lines, as WikiText's,
    holds thousands)."""
    if value is None:
        return None
    text = str(value)
    return text if text.strip() else None


def _file_pieces(path: Path, text_field: str, doc_separator: str | None,
                 piece_chars: int = PIECE_CHARS) -> Iterator[tuple[str, bool]]:
    if path.suffix == ".txt":
        yield from _txt_pieces(path, doc_separator, piece_chars)
        return
    if path.suffix == ".jsonl":
        docs = _jsonl_documents(path, text_field)
    elif path.suffix == ".parquet":
        docs = _parquet_documents(path, text_field)
    else:
        raise DataError(f"{path}: unsupported file type {path.suffix!r}; expected one of {', '.join(LOCAL_SUFFIXES)}")
    for doc in docs:
        yield from _pieces_of(doc, piece_chars)


def split_of(relative: str) -> str | None:
    """The split a file's path inside a folder names (``train``, ``validation`` or ``test``), if any:
    a split word between non-letters, e.g. ``train.txt``, ``wiki.valid.txt``, ``test/part-0.jsonl``."""
    words = set(re.split(r"[^a-z]+", relative.lower()))
    found = [split for split, names in SPLIT_WORDS.items() if words & set(names)]
    if len(found) > 1:
        raise DataError(f"data.path: {relative} names the splits {' and '.join(found)}; rename it")
    return found[0] if found else None


def canonical_split(name: str) -> str:
    """``valid``, ``dev`` ... -> ``validation``; a name that is no split word is kept as given."""
    return next((split for split, names in SPLIT_WORDS.items() if name.lower() in names), name)


@dataclass
class TextSource:
    """Where a split's documents come from: local ``files``, a ``save_to_disk`` folder, a folder of other
    data files or a Hugging Face dataset name (``kind``: files, saved, folder, hub), with the split."""
    location: str
    kind: str
    files: tuple[Path, ...] = ()
    split: str | None = None
    text_field: str = "text"
    doc_separator: str | None = None
    dataset_config: str | None = None
    streaming: bool = False
    cache_dir: str | None = None
    role: str = "path"  # the data key it came from (path or val_path), for messages
    notes: list = field(default_factory=list)

    def describe(self) -> str:
        if self.kind == "files":
            root = Path(self.location).expanduser()
            names = [str(f.relative_to(root)) if f != root else f.name for f in self.files]
            shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            return f"{self.location} ({shown})" if root.is_dir() else self.location
        return f"{self.location} [{self.split}]" if self.split else self.location

    def fingerprint(self) -> dict:
        """What identifies the documents for the caches: the files with their sizes and modification times
        (an edited corpus is tokenized again), or the dataset's name, configuration and split."""
        # "blank": blank documents are skipped (_txt_pieces, _text_or_none); caches made before read them, and
        # those made before "any length" read a blank .txt document longer than two pieces
        reading = {"text_field": self.text_field, "doc_separator": self.doc_separator,
                   "blank": "skipped, any length"}
        if self.kind == "files":
            return {"files": [[str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns] for f in self.files], **reading}
        if self.kind in ("saved", "folder"):
            root = Path(self.location).expanduser()
            files = sorted(f for f in root.rglob("*") if f.is_file())
            return {"path": str(root.resolve()), "split": self.split, "dataset_config": self.dataset_config,
                    "files": [[str(f.relative_to(root)), f.stat().st_size, f.stat().st_mtime_ns] for f in files],
                    **reading}
        return {"name": self.location, "dataset_config": self.dataset_config, "split": self.split, **reading}

    def pieces(self, piece_chars: int = PIECE_CHARS) -> Iterator[tuple[str, bool]]:
        """Every document as (piece, is_last) pieces, in corpus order."""
        for piece, last, _, _ in self.pieces_by_part(piece_chars):
            yield piece, last

    def pieces_by_part(self, piece_chars: int = PIECE_CHARS) -> Iterator[tuple[str, bool, int, int]]:
        """Every document as (piece, is_last, part, index) pieces, in corpus order: part 0's, then part 1's,
        ... (:meth:`parts`), ``index`` the document's place in its part (for :func:`is_held_out`)."""
        for part in range(self.parts()):
            index = 0
            for piece, last in self.part_pieces(part, piece_chars):
                yield piece, last, part, index
                index += last

    def part_pieces(self, part: int, piece_chars: int = PIECE_CHARS) -> Iterator[tuple[str, bool]]:
        """The documents of one part (:meth:`part_documents`) as (piece, is_last) pieces."""
        if self.kind == "files":
            yield from _file_pieces(self.files[part], self.text_field, self.doc_separator, piece_chars)
            return
        for doc in self.part_documents(part):
            yield from _pieces_of(doc, piece_chars)

    def pieces_across_files(self, piece_chars: int = PIECE_CHARS) -> Iterator[tuple[str, bool, int, int]]:
        """The documents of every file in turn (each file's first, then each file's second, ...) as
        (piece, is_last, part, index) pieces, so that the first documents are a sample of all the files, not
        of the first file alone (the first language of a corpus sorted by language, say). ``part``: the
        document's file, or a streamed dataset's shard (:meth:`part_documents`; a dataset's parts are read
        one after the other, as a shard is read whole); ``index``: its place in that part. One part: its
        place in the corpus."""
        if self.kind != "files":
            yield from self.pieces_by_part(piece_chars)
            return
        files = [iter(_file_pieces(f, self.text_field, self.doc_separator, piece_chars)) for f in self.files]
        index = [0] * len(files)
        while any(stream is not None for stream in files):
            for part, stream in enumerate(files):
                if stream is None:
                    continue
                last = False
                for piece, last in stream:  # one document of this file
                    yield piece, last, part, index[part]
                    if last:
                        break
                if last:
                    index[part] += 1
                else:  # the file has no more documents
                    files[part] = None

    def documents(self) -> Iterator[str]:
        """Every document (a string), in corpus order."""
        if self.kind != "files":
            yield from self._dataset_documents()
            return
        yield from _joined(self.pieces())

    def parts(self) -> int:
        """How many parts the documents come in, each readable on its own (:meth:`part_documents`): the
        files, or a streamed dataset's shards (its data files); 1 for a dataset read whole."""
        if self.kind == "files":
            return len(self.files)
        return max(1, int(getattr(self._dataset, "num_shards", 1) or 1))

    def part_bytes(self) -> list[int] | None:
        """Each part's size in bytes where it is known before reading the part (local files), else None."""
        return [f.stat().st_size for f in self.files] if self.kind == "files" else None

    def part_documents(self, part: int) -> Iterator[str]:
        """The documents of one part, in corpus order: :meth:`documents` is part 0's, then part 1's, ...
        A streamed dataset's part is its shard ``part`` (``IterableDataset.shard``), read without the others."""
        if self.kind == "files":
            yield from _joined(self.part_pieces(part))
            return
        ds = self._dataset
        n = self.parts()
        yield from self._dataset_documents(ds.shard(num_shards=n, index=part) if n > 1 else ds)

    @functools.cached_property
    def _dataset(self):
        """The dataset, loaded once: a streamed Hub dataset resolves its data files over the network."""
        return _load_hf(self.location, self.dataset_config, self.split or "train", self.streaming,
                        is_dir=self.kind != "hub", cache_dir=self.cache_dir, role=self.role)

    def _dataset_documents(self, ds=None) -> Iterator[str]:
        ds = self._dataset if ds is None else ds
        features = getattr(ds, "column_names", None) or []
        if features and self.text_field not in features:
            raise DataError(f"data.text_field: dataset {self.location!r} has no column {self.text_field!r} "
                            f"(columns: {', '.join(features)})")
        # .iter() rather than iterating the dataset: a streamed dataset would otherwise split itself over
        # DataLoader workers on its own, on top of linscale's per-document sharding
        for batch in ds.iter(batch_size=256):
            yield from (text for text in map(_text_or_none, batch[self.text_field]) if text is not None)


def is_held_out(part: int, index: int, every: int) -> bool:
    """Whether document ``index`` of part ``part`` (:meth:`TextSource.parts`) is a validation document when
    every ``every``-th is held out (0: a validation text is given, none is): when index + part is one short
    of a multiple of ``every``. Counted within each part, so that a process can read its own parts alone
    and hold out the same documents (a streamed corpus); shifted by the part, so that a corpus of parts
    shorter than ``every`` documents (a file a document, say) still holds out one in ``every``. One part:
    every ``every``-th document of the corpus."""
    return every > 0 and (index + part) % every == every - 1


def _joined(pieces: Iterable[tuple[str, bool]]) -> Iterator[str]:
    """Documents from (piece, is_last) pieces."""
    parts = []
    for piece, last in pieces:
        parts.append(piece)
        if last:
            yield "".join(parts)
            parts = []


def _load_hf(path_or_name: str, dataset_config, split: str, streaming: bool, is_dir: bool, cache_dir=None,
             role: str = "path"):
    import datasets

    try:
        if is_dir and any((Path(path_or_name) / f).exists() for f in _SAVED_MARKERS):
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
        why = error_line(err)
        if is_dir:
            raise DataError(f"data.{role}: cannot load the dataset folder {path_or_name}: {why}") from None
        hint = " (offline: HF_DATASETS_OFFLINE=1, and it is not in the local cache)" if _offline() else ""
        raise DataError(f"data.{role}: no local file or folder {path_or_name!r} in {Path.cwd()}, and as a Hugging "
                        f"Face dataset name it cannot load dataset {path_or_name!r}{hint}: {why}") from None


def _looks_like_dataset_name(text: str) -> bool:
    """``name`` or ``org/name`` (what the Hugging Face Hub accepts), not a path such as ./x, ~/x, a/b/c, x.txt."""
    return (re.fullmatch(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?", text) is not None
            and Path(text).suffix not in (*LOCAL_SUFFIXES, ".json", ".csv"))


def _hub_splits(source: "TextSource") -> list[str]:
    """The split names of a Hugging Face dataset or a folder of data files for ``datasets``; a dataset
    that cannot be found (offline: not in the cache) is a DataError like a failed load."""
    import datasets

    try:
        return list(datasets.get_dataset_split_names(source.location, source.dataset_config,
                                                     cache_dir=source.cache_dir))
    except Exception as err:
        why = error_line(err)
        if source.kind != "hub":
            raise DataError(f"data.{source.role}: cannot read the data files of folder {source.location}: {why}") from None
        hint = " (offline: HF_DATASETS_OFFLINE=1, and it is not in the local cache)" if _offline() else ""
        raise DataError(f"data.{source.role}: no local file or folder {source.location!r} in {Path.cwd()}, and as a "
                        f"Hugging Face dataset name it cannot load dataset {source.location!r}{hint}: {why}") from None


def _saved_splits(folder: Path) -> list[str] | None:
    """The splits of a save_to_disk folder (None for a single Dataset)."""
    file = folder / "dataset_dict.json"
    if not file.exists():
        return None
    try:
        return list(json.loads(file.read_text())["splits"])
    except (ValueError, KeyError, TypeError):
        return None


def resolve_source(location: str, split: str | None, data: dict, role: str = "path") -> TextSource:
    """The :class:`TextSource` for ``data[role]`` = ``location`` and ``split``: checks that local paths
    exist and that a folder of split files has files of ``split`` (DataError naming ``data.<role>``).
    ``split`` None: all of the location (a folder's split files are then an error: say which split)."""
    common = dict(text_field=data.get("text_field") or "text", doc_separator=data.get("doc_separator"),
                  dataset_config=data.get("dataset_config"), cache_dir=data.get("cache_dir"), role=role)
    p = Path(location).expanduser()
    if p.is_file():
        if p.suffix not in LOCAL_SUFFIXES:
            raise DataError(f"data.{role}: {p}: unsupported file type {p.suffix!r}; expected one of "
                            f"{', '.join(LOCAL_SUFFIXES)} (or a folder of them)")
        return TextSource(location, "files", (p,), None, streaming=bool(data.get("streaming")), **common)
    if p.is_dir():
        streaming = bool(data.get("streaming"))
        if any((p / f).exists() for f in _SAVED_MARKERS):
            splits = _saved_splits(p)
            if splits is not None and split not in splits:
                raise DataError(f"data.{role}: {p} has no split {split!r} (splits: {', '.join(splits)})")
            return TextSource(location, "saved", split=split if splits is not None else None, streaming=streaming,
                              **common)
        everything = sorted(f for f in p.rglob("*") if f.is_file()
                            and not any(part.startswith(".") for part in f.relative_to(p).parts))
        files = [f for f in everything if f.suffix in LOCAL_SUFFIXES]
        if not files:
            if not everything:
                hidden = any(f.is_file() for f in p.rglob(".*"))
                raise DataError(f"data.{role}: folder {p} is empty" + (" (but for hidden files, which are not read)"
                                                                        if hidden else ""))
            # other formats go to datasets' folder loader, which said "The split names could not be parsed from
            # the dataset config" of a folder holding only readme.md
            if not any(suffix.lower() in FOLDER_SUFFIXES for f in everything for suffix in f.suffixes):
                shown = ", ".join(str(f.relative_to(p)) for f in everything[:3]) + (", ..." if len(everything) > 3 else "")
                raise DataError(f"data.{role}: folder {p} has no data files (it holds {shown}); expected "
                                f"{', '.join(FOLDER_SUFFIXES)} files")
            return TextSource(location, "folder", split=split or "train", streaming=streaming, **common)
        by_split: dict[str | None, list[Path]] = {}
        for f in files:
            by_split.setdefault(split_of(str(f.relative_to(p))), []).append(f)
        if set(by_split) == {None}:  # no split files: all of it is one text
            return TextSource(location, "files", tuple(files), None, streaming=streaming, **common)
        wanted = canonical_split(split or "train")
        if wanted not in by_split:
            named = ", ".join(f"{s} ({len(fs)} files)" for s, fs in by_split.items() if s)
            raise DataError(f"data.{role}: folder {p} has no {wanted!r} files (it has {named}); "
                            f"set data.{'split' if role == 'path' else 'val_split'}")
        source = TextSource(location, "files", tuple(by_split[wanted]), wanted, streaming=streaming, **common)
        ignored = [str(f.relative_to(p)) for f in by_split.get(None, [])]
        if ignored:
            source.notes.append(f"{p}: not read (no split word in the name): {', '.join(ignored[:5])}"
                                + (" ..." if len(ignored) > 5 else ""))
        return source
    if not _looks_like_dataset_name(location):
        raise DataError(f"data.{role}: no file or folder {location} (looked in {Path.cwd()})")
    source = TextSource(location, "hub", split=split or "train",
                        streaming=True if data.get("streaming") is None else bool(data["streaming"]), **common)
    source.notes.append(f"data.{role}: no local file or folder {location!r} in {Path.cwd()}: reading it as a "
                        f"Hugging Face dataset name" + (" (offline: only the local cache)" if _offline() else ""))
    return source


@dataclass
class TextSplits:
    """The training source, the validation source (None: hold out documents of the training text) and
    notes worth a line each (what was ignored, what stands in for a missing split)."""
    train: TextSource
    validation: TextSource | None
    notes: list[str]


def resolve_splits(data: dict) -> TextSplits:
    """Which text trains and which validates, from ``path``/``split`` and ``val_path``/``val_split`` (see
    :mod:`linscale.data.keys`); a folder of split files never trains on its validation or test files."""
    path = data.get("path")
    if not path:
        raise DataError("data.path: required for source 'text' (a file, a folder or a dataset name)")
    split, val_split = data.get("split") or "train", data.get("val_split", "validation")
    train = resolve_source(str(path), split, data)
    notes = list(train.notes)
    if train.kind == "files" and train.split is None and "split" in data and canonical_split(split) != "train":
        raise DataError(f"data.split: {split!r}, but data.path {path} has no split files (names with "
                        f"train/valid/test); drop data.split or name the files")
    if data.get("val_path"):  # a file, a folder (its val_split files, if it has split files) or a dataset
        validation = resolve_source(str(data["val_path"]), val_split or "validation", data, role="val_path")
        notes += validation.notes
        return TextSplits(train, validation, notes)
    if val_split is None:
        return TextSplits(train, None, notes)
    if canonical_split(val_split) == canonical_split(split):
        raise DataError(f"data.val_split: {val_split!r} is the training split too; name another split "
                        f"or set data.val_split to null to hold out documents")
    validation = None
    if train.kind == "files" and train.split is None and "val_split" in data:
        notes.append(f"data.val_split: {path} has no split files: holding out documents for validation")
    if train.kind == "files" and train.split is not None:  # a folder of split files
        try:
            validation = resolve_source(str(path), val_split, data)
        except DataError:
            notes.append(f"data.path: {path} has no {canonical_split(val_split)!r} files: holding out documents "
                         f"of the training files for validation")
    elif train.kind == "saved":
        splits = _saved_splits(Path(str(path)).expanduser()) or []
        if val_split in splits:
            validation = TextSource(str(path), "saved", split=val_split, **_common(train))
        else:
            notes.append(f"data.path: {path} has no split {val_split!r}: holding out documents for validation")
    elif train.kind in ("hub", "folder"):
        splits = _hub_splits(train)
        if re.split(r"[\[+]", split)[0] not in splits:  # "train[:10%]" and the like name the split "train"
            raise DataError(f"data.split: {path} has no split {split!r} (splits: {', '.join(splits)})")
        if val_split in splits:
            validation = TextSource(str(path), train.kind, split=val_split, **_common(train))
        else:
            notes.append(f"data.path: {path} has no split {val_split!r} (its splits: {', '.join(splits)}): "
                         f"holding out documents of {split!r} for validation")
    return TextSplits(train, validation, notes)


def _common(source: TextSource) -> dict:
    return dict(text_field=source.text_field, doc_separator=source.doc_separator, role=source.role,
                dataset_config=source.dataset_config, streaming=source.streaming, cache_dir=source.cache_dir)


def iter_documents(path: str | os.PathLike, text_field: str = "text", doc_separator: str | None = None,
                   dataset_config: str | None = None, split: str = "train", streaming: bool | None = None,
                   cache_dir: str | None = None) -> Iterator[str]:
    """The documents (strings) of a local file, a local folder (its ``split`` files, if it has split
    files) or a Hugging Face dataset name (``cache_dir``: where ``datasets`` keeps its Arrow cache;
    default ``HF_DATASETS_CACHE``)."""
    data = dict(text_field=text_field, doc_separator=doc_separator, dataset_config=dataset_config,
                streaming=streaming, cache_dir=cache_dir)
    yield from resolve_source(str(path), split, data).documents()


# Pre-tokenizers that split before a space that starts a word and after a newline: a document cut there
# (_SAFE_CUT) gives the ids of the whole document. Others (Metaspace, none: BPE merges across spaces) may
# give a few other tokens at each cut, and evaluation encodes documents whole. ByteLevel splits there with its
# regex, and only without add_prefix_space: that puts a space before a piece cut after a newline.
_CUT_SAFE_PRE_TOKENIZERS = ("Whitespace", "WhitespaceSplit", "BertPreTokenizer")


def cuts_exactly(tokenizer) -> bool:
    """Whether ``tokenizer`` gives a long document cut into pieces (:func:`_pieces_of`) the ids it gives
    the document whole: its pre-tokenizer (or one of a sequence of them) splits where the pieces are cut."""
    def safe(pre) -> bool:
        if not isinstance(pre, dict):
            return False
        if pre.get("type") == "Sequence":
            return any(safe(p) for p in pre.get("pretokenizers", []))
        if pre.get("type") == "ByteLevel":  # tokenizers' defaults: use_regex and add_prefix_space both true
            return bool(pre.get("use_regex", True)) and not pre.get("add_prefix_space", True)
        return pre.get("type") in _CUT_SAFE_PRE_TOKENIZERS

    return safe(json.loads(tokenizer.to_str()).get("pre_tokenizer"))


def tokenize_pieces(tokenizer, pieces: Iterable[tuple[str, bool]], max_chars: int = 4 << 20,
                    max_items: int = 256, say=None) -> Iterator[tuple[np.ndarray, bool]]:
    """Token ids of each (piece, is_last) piece, ``<eod>`` after each document's last piece (int64
    arrays), tokenized in batches of at most ``max_items`` pieces or ``max_chars`` characters. ``say``:
    told once, at the first cut document, when the tokenizer does not cut exactly (:func:`cuts_exactly`)."""
    eod = tokenizer.token_to_id(EOD)
    buf, chars = [], 0
    unsafe = say is not None and not cuts_exactly(tokenizer)

    encode = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)  # same ids, no offsets: faster

    def flush():
        try:
            encodings = encode([text for text, _ in buf], add_special_tokens=False)
        except Exception as err:  # tokenizers raises Exception itself: a WordLevel one without [UNK], say
            if type(err) is not Exception:
                raise
            # tokenizers raises Exception itself for every failure: the hint only where it is the missing [UNK]
            hint = ("; a tokenizer that may meet words outside its vocabulary needs an unknown token"
                    if "unk" in str(err).lower() else "")
            raise DataError(f"data.tokenizer: cannot encode the text ({error_line(err)}){hint}") from None
        for enc, (_, last) in zip(encodings, buf):
            yield np.array(enc.ids + [eod] if last else enc.ids, dtype=np.int64), last

    for text, last in pieces:
        if unsafe and not last:
            say(f"note: a document longer than {2 * PIECE_CHARS:,} characters is tokenized in pieces, and this "
                "tokenizer's pre-tokenizer is not byte-level without a prefix space (or whitespace): each cut may "
                "give a few tokens other than the whole document's (evaluation encodes it whole); split long "
                "documents (data.doc_separator)")
            unsafe = False
        buf.append((text, last))
        chars += len(text)
        if len(buf) >= max_items or chars >= max_chars:
            yield from flush()
            buf, chars = [], 0
    if buf:
        yield from flush()


# ---- tokenizer -------------------------------------------------------------------------------------------
def text_only(tokenizer):
    """``tokenizer``, encoding a special token's spelling in the text as text: tokenizers splits added
    special tokens out of raw text even with ``add_special_tokens=False``, so a literal ``<eod>`` in a
    web page or a source file became a document boundary (and decoded to nothing). Only the ``<eod>``
    that linscale appends after each document ends one."""
    tokenizer.encode_special_tokens = True
    return tokenizer


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
    return text_only(tok)


def load_tokenizer_file(path: str | os.PathLike, role: str = "data.tokenizer"):
    """A saved ``tokenizer.json`` (Hugging Face tokenizers); it must have an ``<eod>`` token. Errors say
    what the file is instead: missing, a folder, not JSON, JSON of something else."""
    from tokenizers import Tokenizer

    p = Path(path).expanduser()
    if p.is_dir():
        hint = f" (it holds {p / 'tokenizer.json'}: give that)" if (p / "tokenizer.json").is_file() else ""
        raise DataError(f"{role}: {p} is a folder; expected a tokenizer.json file{hint}")
    if not p.is_file():
        raise DataError(f"{role}: file not found: {p}")
    try:
        content = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        why = err.msg if isinstance(err, json.JSONDecodeError) else "not UTF-8 text"
        raise DataError(f"{role}: {p} is not a tokenizer.json file (not valid JSON: {why})") from None
    if not isinstance(content, dict) or not isinstance(content.get("model"), dict):
        raise DataError(f"{role}: {p} is JSON but not a Hugging Face tokenizers file (it has no 'model' "
                        f"mapping; write one with tokenizers' Tokenizer.save)")
    try:
        tok = Tokenizer.from_str(json.dumps(content))
    except Exception as err:
        raise DataError(f"{role}: {p} is not a valid tokenizers file ({str(err).splitlines()[0]})") from None
    if tok.token_to_id(EOD) is None:
        raise DataError(f"{role}: {p} has no {EOD!r} token (add it as a special token: "
                        f"tokenizer.add_special_tokens(['{EOD}']))")
    # the model's vocabulary and the shards' integer type are sized by the count of tokens: an id beyond it
    # (a vocabulary of 5 with <eod> at 5000) was stored as 5000 mod 256 and failed in training
    ids, size = set(tok.get_vocab(with_added_tokens=True).values()), tok.get_vocab_size(with_added_tokens=True)
    if ids != set(range(size)):
        raise DataError(f"{role}: {p} numbers its {size:,} tokens up to {max(ids):,}; expected the ids 0 to "
                        f"{size - 1:,}, each once (renumber its vocabulary)")
    return text_only(tok)


def cache_dir() -> Path:
    """linscale's cache: ``$LINSCALE_CACHE``, else ``$XDG_CACHE_HOME/linscale`` (default ``~/.cache/linscale``)."""
    root = os.environ.get("LINSCALE_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache") / "linscale"
    path = Path(root).expanduser()
    # a file on the way (LINSCALE_CACHE=/etc/passwd) was NotADirectoryError from the first mkdir under it
    for folder in (path, *path.parents):
        if folder.exists():
            if not folder.is_dir():
                name = "LINSCALE_CACHE" if os.environ.get("LINSCALE_CACHE") else "the cache folder"
                where = f"{path} is a file" if folder == path else f"{path} lies under the file {folder}"
                raise DataError(f"{name}: {where}; expected a folder (set LINSCALE_CACHE to one)")
            break
    return path


def tokenizer_cache_dir() -> Path:
    """Where trained tokenizers are kept: ``<cache_dir()>/tokenizers``."""
    return cache_dir() / "tokenizers"


def cache_key_digest(key: dict) -> str:
    """The file name stem of a cache entry: a hash of its key (a JSON-able dict)."""
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def cached_tokenizer(key: dict, train: Callable[[], object]) -> tuple[object, Path, bool]:
    """(the tokenizer ``train()`` returns, its cache file, whether it was trained now): trained once per
    ``key`` (a JSON-able dict) and kept as ``<tokenizer_cache_dir()>/<hash of key>.json``. Processes asking
    at once (DDP ranks, a sweep's workers) wait on a file lock for the first to finish; a damaged cache
    file is trained again."""
    from filelock import FileLock

    from linscale.atomic import atomic_write

    file = tokenizer_cache_dir() / f"{cache_key_digest(key)}.json"
    file.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{file}.lock"):
        if file.exists():
            try:
                return load_tokenizer_file(file), file, False
            except DataError:
                pass  # a damaged or foreign file: replaced below
        tokenizer = train()
        atomic_write(file, lambda tmp: tokenizer.save(tmp), mode=0o644)
    return tokenizer, file, True


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
        self.file = cache_dir() / "streams" / f"{cache_key_digest(key)}.json"
        self.marks = self._read()

    def _read(self) -> dict[int, tuple[int, int, int, int]]:
        try:
            marks = {int(row): tuple(int(x) for x in mark) for row, mark in json.loads(self.file.read_text()).items()}
        except (OSError, ValueError, TypeError, AttributeError):  # AttributeError: JSON other than a mapping
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
    """Token ids of each document followed by ``<eod>`` (int64 arrays), tokenized in batches."""
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


__all__ = ["TextSource", "TextSplits", "resolve_source", "resolve_splits", "split_of", "iter_documents", "is_held_out",
           "train_tokenizer", "load_tokenizer_file", "cached_tokenizer", "cache_dir", "tokenizer_cache_dir",
           "StreamBookmarks", "tokenize_pieces", "tokenize_documents", "pack_rows"]
