"""Real text: tokenizer training and round trip, local files and dataset directories, bad input."""
from __future__ import annotations

import functools
import json
import random
import re
from pathlib import Path

import numpy as np
import pytest

from linscale.data import build_datamodule
from linscale.data.synthetic import DataError
from linscale.data import text as text_data
from linscale.data.text import iter_documents, train_tokenizer

WORDS = ("the quick brown fox jumps over a lazy dog while naïve émigrés sip café au lait in 東京 "
         "— “quoted” text, tabs\tand  double  spaces; numbers 3.14159 and emoji 🙂").split(" ")


def _docs(n=240, seed=0):
    rng = random.Random(seed)
    return [f"doc{i} " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(15, 60))) + ("\n" if i % 3 else "")
            for i in range(n)]


@pytest.fixture
def corpus(tmp_path):
    docs = _docs()
    (tmp_path / "corpus.jsonl").write_text("\n".join(json.dumps({"text": d}) for d in docs), encoding="utf-8")
    return tmp_path, docs


def _data(path, tmp_path, **kw):
    return {"source": "text", "path": str(path), "vocab_size": 400, "cache_dir": str(tmp_path / "hf"), **kw}


def test_tokenizer_trains_and_round_trips(corpus):
    tmp_path, docs = corpus
    (tmp_path / "corpus.txt").write_text("\n\n".join(docs), encoding="utf-8")
    dm = build_datamodule(_data(tmp_path / "corpus.txt", tmp_path, doc_separator="\n\n"), seq_len=32, batch_size=4)
    tok = dm.tokenizer
    assert tok.token_to_id("<eod>") is not None and dm.vocab_size == tok.get_vocab_size() <= 400
    for text in docs[:50] + ["", " leading and trailing ", "unseen ✓ glyphs ßø", "\n\n\t"]:
        assert tok.decode(tok.encode(text).ids) == text
    assert len(tok.encode(docs[0]).ids) < len(docs[0].encode())  # BPE merged something
    batch = next(iter(dm.train_dataloader()))
    assert set(batch) == {"input_ids", "labels"} and batch["input_ids"].shape == (4, 32)
    assert dm.bayes_loss("validation") is None


@pytest.mark.parametrize("kind", ["jsonl", "parquet", "saved", "folder"])
def test_same_pipeline_loads_files_and_local_dataset_directories(corpus, kind, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    tmp_path, docs = corpus
    if kind == "jsonl":
        path = tmp_path / "corpus.jsonl"
    elif kind == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = tmp_path / "corpus.parquet"
        pq.write_table(pa.table({"text": docs}), path)
    elif kind == "saved":
        import datasets

        path = tmp_path / "saved"
        datasets.Dataset.from_dict({"text": docs}).save_to_disk(str(path))
    else:
        path = tmp_path / "folder"
        path.mkdir()
        (path / "part0.jsonl").write_text("\n".join(json.dumps({"text": d}) for d in docs), encoding="utf-8")
    assert list(iter_documents(path, cache_dir=str(tmp_path / "hf"))) == docs
    dm = build_datamodule(_data(path, tmp_path, val_fraction=0.1), seq_len=32, batch_size=4)
    assert dm.train_rows.shape[1] == 33 and len(dm.val_rows) >= 10
    # held-out documents never appear in training rows
    tok = dm.tokenizer
    def doc_ids(rows):  # the "docN" words, leaving out the words cut at row ends
        words = [w for r in rows for w in tok.decode(r.tolist()).split()[1:-1]]
        return {w for w in words if w.startswith("doc") and w[3:].isdigit()}

    train_ids, val_ids = doc_ids(dm.train_rows), doc_ids(dm.val_rows)
    assert val_ids and train_ids and not val_ids & train_ids


def test_text_stream_is_deterministic_and_ddp_shards_are_disjoint(corpus):
    tmp_path, _ = corpus
    data = _data(tmp_path / "corpus.jsonl", tmp_path)
    a = [build_datamodule(data, 16, 4, seed=3, rank=0, world_size=1).train_batch(j)["input_ids"] for j in range(3)]
    b = [build_datamodule(data, 16, 4, seed=3, rank=0, world_size=1).train_batch(j)["input_ids"] for j in range(3)]
    assert all((x == y).all() for x, y in zip(a, b))
    dm = build_datamodule(data, 16, 4, seed=3)
    per_epoch = len(dm.train_rows) // (2 * 4)
    seen = []
    for rank in (0, 1):
        rows = np.concatenate([dm.train_batch(j, rank, 2)["input_ids"].numpy() for j in range(per_epoch)])
        seen.append({r.tobytes() for r in rows})
    assert seen[0] and not seen[0] & seen[1]


def _one_line_error(data, seq_len=32, match=None):
    with pytest.raises(DataError) as err:
        build_datamodule(data, seq_len=seq_len, batch_size=2)
    msg = str(err.value)
    assert "\n" not in msg, msg
    if match:
        assert match in msg, msg
    return msg


def test_bad_input_gives_one_clear_error_each(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    missing = tmp_path / "missing.txt"
    _one_line_error({"source": "text", "path": str(missing)}, match=str(missing))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert "empty" in _one_line_error({"source": "text", "path": str(empty)}, match=str(empty))
    blank = tmp_path / "blank.txt"
    blank.write_text("   \n")
    assert "empty" in _one_line_error({"source": "text", "path": str(blank)}, match=str(blank))
    binary = tmp_path / "latin1.txt"
    binary.write_bytes("caf\xe9 au lait".encode("latin-1"))
    assert "UTF-8" in _one_line_error({"source": "text", "path": str(binary)}, match=str(binary))
    short = tmp_path / "short.txt"
    short.write_text("just a few words here")
    assert "too short" in _one_line_error({"source": "text", "path": str(short)}, seq_len=64, match=str(short))
    name = "no-such-org/no-such-dataset-xyz"
    assert "offline" in _one_line_error({"source": "text", "path": name, "cache_dir": str(tmp_path / "hf")}, match=name)
    jsonl = tmp_path / "other_field.jsonl"
    jsonl.write_text(json.dumps({"body": "x"}))
    _one_line_error({"source": "text", "path": str(jsonl)}, match="'text'")
    _one_line_error({"source": "text"}, match="data.path")
    _one_line_error({"source": "text", "path": str(blank), "tokenizer": str(tmp_path / "nope.json")}, match="nope.json")


def test_loads_a_saved_tokenizer(corpus, tmp_path):
    _, docs = corpus
    tok = train_tokenizer(docs, vocab_size=300)
    tok.save(str(tmp_path / "tokenizer.json"))
    dm = build_datamodule(_data(tmp_path / "corpus.jsonl", tmp_path, tokenizer=str(tmp_path / "tokenizer.json")),
                          seq_len=16, batch_size=2)
    assert dm.tokenizer.get_vocab() == tok.get_vocab()


def test_streaming_ranks_read_disjoint_documents(corpus, monkeypatch):
    """Streamed corpora (never materialised): each rank keeps its own documents of the stream."""
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    tmp_path, docs = corpus
    folder = tmp_path / "stream"
    folder.mkdir()
    (folder / "part0.jsonl").write_text("\n".join(json.dumps({"text": d}) for d in docs), encoding="utf-8")
    seen = []
    for rank in (0, 1):
        dm = build_datamodule(_data(folder, tmp_path, streaming=True, val_tokens=64), seq_len=16, batch_size=4,
                              rank=rank, world_size=2)
        assert dm.train_rows is None and len(dm.val_rows) == 4
        it = iter(dm.train_dataloader())
        words = [w for _ in range(30) for row in next(it)["input_ids"]
                 for w in dm.tokenizer.decode(row.tolist()).split()[1:-1]]  # not the words cut at row ends
        seen.append({w for w in words if w.startswith("doc") and w[3:].isdigit()})
    assert seen[0] and seen[1] and not seen[0] & seen[1]


def _parts_folder(tmp_path, docs, n_files: int) -> Path:
    """A corpus of ``n_files`` jsonl files, document i in file i mod n_files."""
    folder = tmp_path / f"parts{n_files}"
    folder.mkdir()
    for f in range(n_files):
        (folder / f"part{f}.jsonl").write_text("\n".join(json.dumps({"text": d}) for d in docs[f::n_files]),
                                              encoding="utf-8")
    return folder


def _doc_numbers(dm, rows) -> set[int]:
    """The N of the "docN" words in ``rows``, leaving out the words cut at row ends."""
    words = [w for row in rows for w in dm.tokenizer.decode(row.tolist()).split()[1:-1]]
    return {int(w[3:]) for w in words if w.startswith("doc") and w[3:].isdigit()}


@pytest.mark.parametrize("hub", [False, True], ids=["files", "dataset"])
def test_a_streamed_corpus_of_several_files_is_read_part_by_part(corpus, monkeypatch, hub, capsys):
    """At scale every rank's loader processes streaming the whole corpus to keep a 1/shards share of it is
    shards times the reading (and, for a dataset on the Hub, the downloading). Where the files (a dataset's
    shards) share out evenly among the shards, shard s reads only the files p ≡ s (mod shards); with fewer
    files, or files unlike in size, every shard reads them all and keeps its share of the documents. Either
    way validation, held out file by file, is the same at any number of shards, and no validation document
    is trained on. The job's first shard says which way it reads."""
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    tmp_path, docs = corpus
    folder = _parts_folder(tmp_path, docs, 4)
    # document j of file f is held out when (j + f) % 5 == 4
    data = _data(folder, tmp_path, streaming=True, val_tokens=64, val_fraction=0.2)
    if hub:  # a dataset name, loaded as datasets would stream it: one shard per data file
        import datasets

        files = [str(folder / f"part{f}.jsonl") for f in range(4)]
        monkeypatch.setattr(text_data, "_load_hf", lambda *a, **kw: datasets.load_dataset(
            "json", data_files=files, split="train", streaming=True, cache_dir=str(tmp_path / "hf")))
        monkeypatch.setattr(text_data, "_hub_splits", lambda source: ["train"])
        data = {**data, "path": "some-org/some-corpus"}
    opened = []
    read = text_data.TextSource.part_documents
    monkeypatch.setattr(text_data.TextSource, "part_documents",
                        lambda self, part: opened.append(part) or read(self, part))
    held_out = {f + 4 * j for f in range(4) for j in range(60) if (j + f) % 5 == 4}

    def shard(rank, world, batches):
        dm = build_datamodule(data, seq_len=16, batch_size=4, rank=rank, world_size=world)
        assert dm._parts == 4
        opened.clear()
        rows = [row for j in range(batches) for row in dm.train_batch(j, rank, world)["input_ids"]]
        return dm, _doc_numbers(dm, rows), set(opened)

    whole, trained, _ = shard(0, 1, 30)
    assert trained and not trained & held_out and _doc_numbers(whole, whole.val_rows) <= held_out
    capsys.readouterr()
    for rank in (0, 1):  # 4 files over 2 shards: each reads its two files alone
        dm, trained, opened_parts = shard(rank, 2, 12)
        assert dm._reads_own_parts(2) and opened_parts == {rank, rank + 2}
        if rank == 0:  # the first shard says how the job reads the corpus
            assert "streamed in 2 shards (2 ranks x 1 loader process): each reads only its own of the 4 parts" in \
                capsys.readouterr().out
        assert trained and {n % 4 for n in trained} <= {rank, rank + 2} and not trained & held_out
        assert np.array_equal(dm.val_rows, whole.val_rows)
    firsts = []
    capsys.readouterr()
    for rank in (0, 1):  # 4 files over 8 shards: each reads every file and keeps every 8th document
        dm, trained, opened_parts = shard(rank, 8, 6)
        if rank == 0:
            assert "streamed in 8 shards (8 ranks x 1 loader process): each reads all 4 parts and keeps 1/8 of " \
                   "the documents" in capsys.readouterr().out
        assert opened_parts == {0, 1, 2, 3} and not trained & held_out
        assert np.array_equal(dm.val_rows, whole.val_rows)
        firsts.append(trained)
    assert firsts[0] and firsts[1] and not firsts[0] & firsts[1]
    # files unlike in size (200 and 40 documents): every shard reads both and keeps its share, so that the
    # small file's documents weigh no more than the large one's (a shard of its own would repeat it 5x as often)
    uneven = tmp_path / "uneven"
    uneven.mkdir()
    for name, part in (("a", docs[:200]), ("b", docs[200:])):
        (uneven / f"{name}.jsonl").write_text("\n".join(json.dumps({"text": d}) for d in part), encoding="utf-8")
    if not hub:
        for rank in (0, 1):
            dm = build_datamodule({**data, "path": str(uneven)}, seq_len=16, batch_size=4, rank=rank, world_size=2)
            opened.clear()
            rows = [row for j in range(200) for row in dm.train_batch(j, rank, 2)["input_ids"]]
            assert set(opened) == {0, 1} and not dm._reads_own_parts(2)
            firsts[rank] = _doc_numbers(dm, rows)
        assert all(any(n < 200 for n in seen) and any(n >= 200 for n in seen) for seen in firsts)
        assert not firsts[0] & firsts[1]
    # 4 files of 60 documents hold out none at one in 100 (i + p = 99 never comes): one line says what to do
    if not hub:
        _one_line_error({**data, "val_fraction": 0.01}, seq_len=16,
                        match="give data.val_path or a larger data.val_fraction")


@pytest.mark.parametrize("parts, sizes, shards, own", [
    (1, [10], 2, False),                  # fewer parts than shards: every shard reads the one part
    (0, None, 2, False),                  # none at all (0 is a multiple of every count)
    (4, None, 2, True), (6, None, 4, False),  # a dataset's parts (sizes unknown): only as many for every shard
    (4, [10, 9, 10, 9], 2, True),         # shares 20 and 18: the smaller exactly PART_BALANCE of the larger
    (4, [10, 8, 10, 9], 2, False),        # 20 and 17: the small shard would repeat its text sooner
    (3, [5, 5, 5], 3, True), (3, [5, 5, 5], 2, False),  # p = s (mod 2): parts {0, 2} and {1} are 10 and 5
])
def test_shards_read_their_own_parts_only_where_the_parts_share_out_evenly(parts, sizes, shards, own):
    from types import SimpleNamespace

    from linscale.data.datamodule import TextDataModule

    module = SimpleNamespace(_parts=parts, _part_bytes=sizes, PART_BALANCE=TextDataModule.PART_BALANCE)
    assert TextDataModule.PART_BALANCE == 0.9
    assert TextDataModule._reads_own_parts(module, shards) is own


@pytest.mark.parametrize("streaming", [False, True], ids=["read-whole", "streamed"])
@pytest.mark.parametrize("hub", [False, True], ids=["files", "dataset"])
def test_shards_stream_and_tokenizer_sample_hold_out_by_place_in_each_part(corpus, monkeypatch, hub, streaming,
                                                                          capsys):
    """A streamed corpus holds out document i of part p (file, or a dataset's shard) when i + p is one short
    of a multiple of round(1/val_fraction), so that each process can read its own parts; a corpus tokenized
    into shards held out every such document by its place in the whole corpus, other documents, and the
    BPE's sample left them out only where it knew that place (the first file's): so it trained on
    validation documents of later files, streamed or not. One rule now, text.is_held_out, for the
    shards, the stream and the sample; the cache keys of a corpus of several parts say so. Files hold out
    the same documents read whole or streamed; a dataset read whole is one part (datasets keeps no file
    boundaries in it): every 5th document of the whole."""
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    tmp_path, docs = corpus
    folder = _parts_folder(tmp_path, docs, 4)
    data = _data(folder, tmp_path, streaming=streaming, val_tokens=64, val_fraction=0.2, tokenizer_docs=10_000)
    files = [str(folder / f"part{f}.jsonl") for f in range(4)]
    if hub:  # a dataset name, loaded as datasets would load it (streamed: one shard per data file)
        import datasets

        monkeypatch.setattr(text_data, "_load_hf", lambda *a, **kw: datasets.load_dataset(
            "json", data_files=files, split="train", streaming=streaming, cache_dir=str(tmp_path / "hf")))
        monkeypatch.setattr(text_data, "_hub_splits", lambda source: ["train"])
        data = {**data, "path": "some-org/some-corpus"}
    sampled = []
    train = text_data.train_tokenizer
    monkeypatch.setattr(text_data, "train_tokenizer", lambda texts, **kw: train(
        (sampled.append(text) or text for text in texts), **kw))
    dm = build_datamodule(data, seq_len=16, batch_size=4)
    # document n is document j = n // 4 of file f = n % 4; held out: (j + f) % 5 == 4
    held_out = {f + 4 * j for f in range(4) for j in range(60) if (j + f) % 5 == 4}
    if hub and not streaming:  # place p in the corpus, file by file: p % 5 == 4
        held_out = {f + 4 * j for f in range(4) for j in range(60) if (60 * f + j) % 5 == 4}
    sampled = [int(re.match(r"doc(\d+) ", text).group(1)) for text in sampled]
    assert len(sampled) == len(set(sampled)) and set(sampled) == set(range(240)) - held_out
    if streaming:
        trained = _doc_numbers(dm, [row for j in range(40) for row in dm.train_batch(j, 0, 1)["input_ids"]])
    else:
        trained = _doc_numbers(dm, dm.train_rows)
        each = "" if hub else "each of the 4 parts of "
        assert f"validation text: every 5th document of {each}" in capsys.readouterr().out
    assert len(trained) > 15 and not trained & held_out and _doc_numbers(dm, dm.val_rows) <= held_out
    assert dm._held_out_key() == ({} if hub and not streaming else {"held_out": "by part"})  # old caches unused
    one_file = build_datamodule({**data, "path": str(folder / "part0.jsonl")}, seq_len=16, batch_size=4)
    assert one_file._held_out_key() == {}  # one part: the rule is the old one, and so are its caches


def test_trained_tokenizer_is_cached_per_corpus_and_settings(corpus, monkeypatch):
    """A sweep's runs and a job's ranks train the BPE tokenizer once; new settings, an edited corpus or
    a damaged cache file train it again."""
    tmp_path, _ = corpus
    monkeypatch.setenv("LINSCALE_CACHE", str(tmp_path / "cache"))
    trained = []
    real = text_data.train_tokenizer
    monkeypatch.setattr(text_data, "train_tokenizer", lambda *a, **kw: trained.append(1) or real(*a, **kw))
    data = _data(tmp_path / "corpus.jsonl", tmp_path)
    first, second = build_datamodule(data, 16, 4), build_datamodule(data, 16, 4, rank=1, world_size=2)
    assert len(trained) == 1 and first.tokenizer.get_vocab() == second.tokenizer.get_vocab()
    assert (first.train_rows == second.train_rows).all()
    build_datamodule({**data, "vocab_size": 300}, 16, 4)
    assert len(trained) == 2
    with open(tmp_path / "corpus.jsonl", "a", encoding="utf-8") as f:
        f.write("\n" + json.dumps({"text": "one more document, so a different corpus"}))
    build_datamodule(data, 16, 4)
    assert len(trained) == 3
    cached = list((tmp_path / "cache" / "tokenizers").glob("*.json"))
    assert len(cached) == 3
    for file in cached:
        file.write_text("{damaged")
    again = build_datamodule(data, 16, 4)
    assert len(trained) == 4 and again.tokenizer.token_to_id("<eod>") is not None


@pytest.mark.parametrize("n_files,rank,world", [(1, 1, 2), (4, 0, 1)])  # 4 files: 2 workers read two each
def test_streamed_corpus_resumes_at_the_batch_it_stopped(corpus, capsys, n_files, rank, world):
    """A resumed run (train_start_batch, as the trainer's restored batch count sets it) continues the
    stream exactly, rather than starting the shard's documents over."""
    tmp_path, docs = corpus
    folder = _parts_folder(tmp_path, docs, n_files)
    data = _data(folder, tmp_path, streaming=True, val_tokens=64, val_fraction=0.05)

    def batches(start, n, workers=0):
        dm = build_datamodule(data, seq_len=16, batch_size=4, rank=rank, world_size=world, num_workers=workers)
        assert dm._reads_own_parts(world * max(1, workers)) == (n_files > 1)  # both ways of reading are resumed
        dm.train_start_batch = start
        it = iter(dm.train_dataloader())
        return [next(it)["input_ids"] for _ in range(n)]

    uninterrupted = batches(0, 12)
    assert not (uninterrupted[0] == uninterrupted[7]).all()
    resumed = batches(7, 5)
    assert all((a == b).all() for a, b in zip(uninterrupted[7:], resumed))
    assert "re-reading 28 rows" in capsys.readouterr().out
    # with loader workers each reads its own shard: resuming restores every worker's position
    uninterrupted, resumed = batches(0, 12, workers=2), batches(7, 5, workers=2)
    assert all((a == b).all() for a, b in zip(uninterrupted[7:], resumed))


@pytest.mark.parametrize("n_docs", [240, 24])  # 24: the 12 batches run through the shard's documents twice
def test_streamed_resume_starts_at_the_last_bookmark_without_tokenizing_what_is_before(corpus, capsys,
                                                                                         monkeypatch, n_docs):
    import linscale.data as data_module

    tmp_path, docs = corpus
    folder = tmp_path / "stream"
    folder.mkdir()
    (folder / "part0.jsonl").write_text("\n".join(json.dumps({"text": d}) for d in docs[:n_docs]), encoding="utf-8")
    data = _data(folder, tmp_path, streaming=True, val_tokens=64, val_fraction=0.2)
    monkeypatch.setattr(data_module.TextDataModule, "STREAM_BOOKMARK_ROWS", 8)
    tokenized = []
    real_tokenize = text_data.tokenize_documents

    def counting_tokenize(tokenizer, docs, batch=256):
        for ids in real_tokenize(tokenizer, docs, batch):
            tokenized.append(len(ids))
            yield ids

    monkeypatch.setattr(text_data, "tokenize_documents", counting_tokenize)

    def batches(start, n, workers=0):
        dm = build_datamodule(data, seq_len=16, batch_size=4, rank=1, world_size=2, num_workers=workers)
        dm.train_start_batch = start
        tokenized.clear()
        it = iter(dm.train_dataloader())
        return [next(it)["input_ids"] for _ in range(n)], len(tokenized)

    uninterrupted, read_through = batches(0, 12)  # keeps bookmarks at rows 8, 16, ..., 40
    capsys.readouterr()
    resumed, read_resuming = batches(9, 3)  # row 36: from the bookmark at row 32
    assert all((a == b).all() for a, b in zip(uninterrupted[9:], resumed))
    assert "from its bookmark at row 32, re-reading 4 rows" in capsys.readouterr().out
    assert read_resuming < read_through  # the documents before the bookmark were skipped, not tokenized
    resumed, _ = batches(10, 2)  # row 40: a bookmark itself (with 24 documents, in the second epoch)
    assert all((a == b).all() for a, b in zip(uninterrupted[10:], resumed))
    assert "from its bookmark at row 40, re-reading 0 rows" in capsys.readouterr().out
    # with loader workers, each worker's shard keeps bookmarks of its own
    uninterrupted_w, _ = batches(0, 12, workers=2)
    resumed_w, _ = batches(9, 3, workers=2)
    assert all((a == b).all() for a, b in zip(uninterrupted_w[9:], resumed_w))
    capsys.readouterr()
    # a damaged bookmarks file is no bookmarks: the stream is read from its start, still exactly
    dm = build_datamodule(data, seq_len=16, batch_size=4, rank=1, world_size=2)
    text_data.StreamBookmarks(dm._stream_key_of(1, 2)).file.write_text("{not json")  # rank 1 of 2, no workers
    resumed, _ = batches(9, 3)
    assert all((a == b).all() for a, b in zip(uninterrupted[9:], resumed))
    assert "from its bookmark at row 0, re-reading 36 rows" in capsys.readouterr().out


def test_bookmarks_kept_by_a_resumed_stream_are_exact_too(corpus, monkeypatch):
    """Rows short against the documents (seq_len 4) and a bookmark at every row: a resumed stream starts
    inside a document, and the bookmarks it keeps for the rows after must point at the same tokens."""
    import linscale.data as data_module

    tmp_path, docs = corpus
    folder = tmp_path / "stream"
    folder.mkdir()
    (folder / "part0.jsonl").write_text("\n".join(json.dumps({"text": d}) for d in docs), encoding="utf-8")
    data = _data(folder, tmp_path, streaming=True, val_tokens=64)
    monkeypatch.setattr(data_module.TextDataModule, "STREAM_BOOKMARK_ROWS", 1)

    def batches(start, n):
        dm = build_datamodule(data, seq_len=4, batch_size=3, rank=0, world_size=1)
        dm.train_start_batch = start
        it = iter(dm.train_dataloader())
        return [next(it)["input_ids"] for _ in range(n)]

    # this stream's bookmarks (rank 0 of 1, no loader workers: shard 0 of 1)
    file = text_data.StreamBookmarks(build_datamodule(data, seq_len=4, batch_size=3)._stream_key_of(0, 1)).file

    def keep_only(row):
        marks = json.loads(file.read_text())
        assert marks[str(row)][3] > 0  # the bookmark lies inside a document
        file.write_text(json.dumps({str(row): marks[str(row)]}))
        return marks

    uninterrupted = batches(0, 8)
    first = keep_only(7)["7"]
    assert all((a == b).all() for a, b in zip(uninterrupted[3:5], batches(3, 2)))  # from row 7; keeps 8..14
    same_document = [int(r) for r, m in json.loads(file.read_text()).items() if int(r) > 7 and m[2] == first[2]]
    assert same_document  # a bookmark the resumed stream kept inside the document it started in
    row = max(same_document)
    keep_only(row)
    start = -(-row // 3)  # the first batch at or after that row
    assert all((a == b).all() for a, b in zip(uninterrupted[start:8], batches(start, 8 - start)))


# ---------------------------------------------------------------------------- explicit splits, shards

TINY_TEXT = Path(__file__).parent / "data" / "tiny_text"  # train.txt, valid.txt, test.txt (a few KB)


class Killed(BaseException):
    """As if the process were killed mid-build (not an Exception: nothing may catch it on the way)."""


def _token_count(tokenizer, path):
    return len(tokenizer.encode(path.read_text(encoding="utf-8"), add_special_tokens=False).ids) + 1  # + <eod>


def _words(tokenizer, rows):
    return {w for row in rows for w in tokenizer.decode(np.asarray(row).tolist()).split()}


def test_a_folder_of_split_files_trains_on_train_and_validates_on_valid(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LINSCALE_CACHE", str(tmp_path / "cache"))
    dm = build_datamodule({"source": "text", "path": str(TINY_TEXT), "vocab_size": 300, "val_tokens": 10_000},
                          seq_len=16, batch_size=4)
    tok = dm.tokenizer
    n_train, n_valid = _token_count(tok, TINY_TEXT / "train.txt"), _token_count(tok, TINY_TEXT / "valid.txt")
    assert dm.shards.count("train") == n_train and dm.shards.count("validation") == 0  # nothing held out
    assert dm.val_shards.count("validation") == n_valid
    assert len(dm.train_rows) == n_train // 17 and len(dm.val_rows) == n_valid // 17  # all of valid.txt
    train_words, val_words = _words(tok, dm.train_rows), _words(tok, dm.val_rows)
    assert "Lighthouses" in train_words and "market" in val_words
    assert not {"market", "estuary", "curlews"} & train_words  # validation and test text never trains
    assert not {"estuary", "Lighthouses"} & val_words
    out = capsys.readouterr().out
    assert "asks for 10,000 validation tokens" in out and f"{n_valid // 17} rows" in out  # fewer than asked: said
    assert "training text:" in out and "tokenizer: trained" in out
    # the training split by name: data.split picks the files, and validation must then be another split
    dm = build_datamodule({"source": "text", "path": str(TINY_TEXT), "vocab_size": 300, "split": "valid",
                           "val_split": "test"}, seq_len=16, batch_size=4)
    assert dm.shards.count("train") == _token_count(dm.tokenizer, TINY_TEXT / "valid.txt")
    assert dm.val_shards.count("validation") == _token_count(dm.tokenizer, TINY_TEXT / "test.txt")
    _one_line_error({"source": "text", "path": str(TINY_TEXT), "split": "dev"}, match="is the training split too")


def test_validation_from_another_file_and_a_single_file_with_held_out_documents(tmp_path, corpus, monkeypatch):
    monkeypatch.setenv("LINSCALE_CACHE", str(tmp_path / "cache"))
    folder, docs = corpus
    data = {"source": "text", "path": str(folder / "corpus.jsonl"), "vocab_size": 300,
            "val_path": str(TINY_TEXT / "valid.txt")}
    dm = build_datamodule(data, seq_len=16, batch_size=4)
    assert dm.shards.count("validation") == 0 and dm.shards.meta["documents"] == len(docs)  # all docs train
    assert dm.val_shards.count("validation") == _token_count(dm.tokenizer, TINY_TEXT / "valid.txt")
    held = build_datamodule({**data, "val_path": None, "val_fraction": 0.1}, seq_len=16, batch_size=4)
    every_tenth = [d for i, d in enumerate(docs) if i % 10 == 9]
    assert held.shards.count("validation") == sum(len(held.tokenizer.encode(d).ids) + 1 for d in every_tenth)


@pytest.mark.parametrize("name,content,expected", [
    ("valid.txt", b"caf\xe9 au lait\n", r"valid\.txt: not valid UTF-8 text \(byte 0xe9 at offset 3\)"),
    ("valid.jsonl", b'{"body": "no text field"}\n', r"valid\.jsonl:1: no field 'text' \(set data\.text_field\)"),
])
def test_an_unreadable_validation_file_stops_the_run_before_the_tokenizer_is_trained(
        tmp_path, monkeypatch, name, content, expected):
    """The validation text was first read after the tokenizer had been trained and the training text
    tokenized, which for a large corpus is hours of work before the error."""
    import linscale.data.datamodule as datamodule

    monkeypatch.setenv("LINSCALE_CACHE", str(tmp_path / "cache"))
    (tmp_path / name).write_bytes(content)
    trained = []
    monkeypatch.setattr(datamodule.text_data, "train_tokenizer", lambda *a, **k: trained.append(1))
    with pytest.raises(DataError, match=expected):
        build_datamodule({"source": "text", "path": str(TINY_TEXT / "train.txt"), "vocab_size": 300,
                          "val_path": str(tmp_path / name)}, seq_len=16, batch_size=4)
    assert not trained


@pytest.mark.parametrize("n_docs", [15, 20])
def test_a_corpus_of_fewer_than_twice_every_documents_validates_on_its_last_tokens(tmp_path, monkeypatch, n_docs):
    """val_fraction 0.1 holds out every 10th document; with fewer than 20 there would be one held-out document
    (or none), so the last 10% of the tokens are the validation text instead. From 20 on, whole documents."""
    import json

    monkeypatch.setenv("LINSCALE_CACHE", str(tmp_path / "cache"))
    words = (TINY_TEXT / "train.txt").read_text(encoding="utf-8").split()
    docs = [" ".join(words[25 * i:25 * i + 10 + i]) for i in range(n_docs)]  # none blank (a blank one is none)
    assert all(docs)
    (tmp_path / "c.jsonl").write_text("".join(json.dumps({"text": d}) + "\n" for d in docs))
    dm = build_datamodule({"source": "text", "path": str(tmp_path / "c.jsonl"), "vocab_size": 300,
                           "val_fraction": 0.1, "val_tokens": 16}, seq_len=8, batch_size=2)
    total = dm.shards.count("train") + dm.shards.count("validation")
    assert total == sum(len(dm.tokenizer.encode(d).ids) + 1 for d in docs)  # each document and its <eod>
    if n_docs < 20:
        assert dm.shards.count("validation") == int(total * 0.1)
    else:  # the 10th and the 20th documents
        assert dm.shards.count("validation") == sum(len(dm.tokenizer.encode(docs[i]).ids) + 1 for i in (9, 19))


def test_a_shard_file_shorter_than_its_meta_says_is_built_again(tmp_path, monkeypatch):
    """A disk that lost writes (a crash after meta.json reached it, before the tokens did) leaves a shard
    file shorter than its count: its rows would be read past the end, so the folder is built again."""
    monkeypatch.setenv("LINSCALE_CACHE", str(tmp_path / "cache"))
    data = {"source": "text", "path": str(TINY_TEXT / "train.txt"), "vocab_size": 300, "val_tokens": 16}
    first = build_datamodule(data, seq_len=8, batch_size=2)
    train_bin = first.shards.folder / "train.bin"
    size = train_bin.stat().st_size
    with open(train_bin, "r+b") as f:
        f.truncate(size // 2)
    again = build_datamodule(data, seq_len=8, batch_size=2)
    assert again.shards.folder == first.shards.folder and train_bin.stat().st_size == size
    assert again.shards.count("train") == first.shards.count("train")


def test_long_text_is_tokenized_in_pieces_exactly_as_whole(tmp_path, monkeypatch):
    """A .txt file is read in blocks and a long document handed to the tokenizer in pieces, cut only where
    the byte-level pre-tokenizer splits anyway: the ids equal those of the whole document."""
    text = (TINY_TEXT / "train.txt").read_text(encoding="utf-8") * 3
    (tmp_path / "long.txt").write_text(text, encoding="utf-8")
    tok = train_tokenizer([text], vocab_size=300)
    whole = tok.encode(text, add_special_tokens=False).ids
    pieces = list(text_data._txt_pieces(tmp_path / "long.txt", None, piece_chars=200))
    assert len(pieces) > 20 and [last for _, last in pieces] == [False] * (len(pieces) - 1) + [True]
    assert "".join(p for p, _ in pieces) == text
    ids = np.concatenate([ids for ids, _ in text_data.tokenize_pieces(tok, pieces, max_items=3)])
    assert ids.tolist() == whole + [tok.token_to_id("<eod>")]
    # with a separator the documents come out whole, however the blocks fall
    separated = list(text_data._txt_pieces(tmp_path / "long.txt", " = = ", piece_chars=10_000))
    assert ["".join(p for p, _ in separated)] and sum(last for _, last in separated) == len(text.split(" = = "))


def test_a_tokenizer_that_may_tokenize_a_cut_document_otherwise_is_named_once(tmp_path):
    """The pieces are exact only for a pre-tokenizer that splits where they are cut (byte-level, whitespace);
    a user's Metaspace BPE, or one without a pre-tokenizer, gave a few other tokens at each cut in silence."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    text = (TINY_TEXT / "train.txt").read_text(encoding="utf-8") * 3
    (tmp_path / "long.txt").write_text(text, encoding="utf-8")
    pieces = list(text_data._txt_pieces(tmp_path / "long.txt", None, piece_chars=200))

    def bpe(pre):
        tok = Tokenizer(models.BPE(unk_token="<unk>"))
        if pre is not None:
            tok.pre_tokenizer = pre
        tok.train_from_iterator([text], trainers.BpeTrainer(vocab_size=300, special_tokens=["<eod>", "<unk>"]))
        return tok

    byte_level = train_tokenizer([text], vocab_size=300)
    cases = [(byte_level, True), (bpe(pre_tokenizers.Whitespace()), True),
             (bpe(pre_tokenizers.Sequence([pre_tokenizers.Digits(), pre_tokenizers.WhitespaceSplit()])), True),
             (bpe(pre_tokenizers.Metaspace()), False), (bpe(None), False),
             (bpe(pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)), False)]  # merges across spaces
    for tok, exact in cases:
        assert text_data.cuts_exactly(tok) == exact, tok.pre_tokenizer
        said = []
        ids = np.concatenate([ids for ids, _ in text_data.tokenize_pieces(tok, pieces, say=said.append)])
        assert len(said) == (0 if exact else 1) and all("not byte-level" in line for line in said)
        if exact:  # and the pieces' ids are the whole document's
            assert ids.tolist() == tok.encode(text, add_special_tokens=False).ids + [tok.token_to_id("<eod>")]
    said = []  # nothing cut, nothing said
    list(text_data.tokenize_pieces(bpe(None), [("a short document", True)], say=said.append))
    assert said == []


def test_shards_use_the_smallest_integer_type_of_the_vocabulary(tmp_path, monkeypatch):
    from linscale.data.shards import token_dtype

    assert [token_dtype(v).name for v in (256, 257, 65536, 65537, 100280)] == \
        ["uint8", "uint16", "uint16", "uint32", "uint32"]
    monkeypatch.setenv("LINSCALE_CACHE", str(tmp_path / "cache"))
    dm = build_datamodule({"source": "text", "path": str(TINY_TEXT), "vocab_size": 300}, seq_len=16, batch_size=4)
    assert dm.shards.file("train").stat().st_size == 2 * dm.shards.count("train")  # uint16
    assert dm.shards.folder.parent == tmp_path / "cache" / "shards"


def test_shard_build_resumes_where_it_was_killed_and_equals_an_uninterrupted_one(tmp_path, corpus, monkeypatch):
    import linscale.data.shards as shards

    folder, docs = corpus
    data = {"source": "text", "path": str(folder / "corpus.jsonl"), "vocab_size": 300, "val_fraction": 0.1}
    monkeypatch.setenv("LINSCALE_CACHE", str(tmp_path / "whole"))
    whole = build_datamodule(data, seq_len=16, batch_size=4).shards
    monkeypatch.setenv("LINSCALE_CACHE", str(tmp_path / "killed"))
    monkeypatch.setattr(shards, "CHECKPOINT_TOKENS", 500)  # a checkpoint every few documents
    tokenized, kill = [], [True]
    real = shards.tokenize_pieces

    def dies_after_150(tokenizer, pieces, **kw):
        for n, item in enumerate(real(tokenizer, pieces, max_items=8)):
            tokenized.append(n)
            if kill[0] and len(tokenized) == 150:
                raise Killed
            yield item

    monkeypatch.setattr(shards, "tokenize_pieces", dies_after_150)
    with pytest.raises(Killed):
        build_datamodule(data, seq_len=16, batch_size=4)
    meta = json.loads(next((tmp_path / "killed" / "shards").glob("*/meta.json")).read_text())
    assert not meta["complete"] and 0 < meta["pieces"] < 150
    tokenized.clear()
    kill[0] = False
    resumed = build_datamodule(data, seq_len=16, batch_size=4).shards
    assert len(tokenized) == len(docs) - meta["pieces"]  # only the pieces after the checkpoint were tokenized
    for split in ("train", "validation"):
        assert resumed.file(split).read_bytes() == whole.file(split).read_bytes()
    assert resumed.meta["counts"] == whole.meta["counts"] and resumed.meta["complete"]


def test_rows_from_shards_resume_exactly_and_ranks_stay_disjoint(tmp_path, corpus, monkeypatch):
    monkeypatch.setenv("LINSCALE_CACHE", str(tmp_path / "cache"))
    folder, _ = corpus
    data = {"source": "text", "path": str(folder / "corpus.jsonl"), "vocab_size": 300}

    def batches(start, n, workers=0, rank=0, world=1):
        dm = build_datamodule(data, seq_len=16, batch_size=4, seed=5, num_workers=workers, rank=rank, world_size=world)
        dm.train_start_batch = start
        it = iter(dm.train_dataloader())
        return [next(it)["input_ids"] for _ in range(n)]

    per_epoch = len(build_datamodule(data, 16, 4).train_rows) // 4
    uninterrupted = batches(0, per_epoch + 3)  # into the second epoch
    assert all((a == b).all() for a, b in zip(uninterrupted[per_epoch - 1:], batches(per_epoch - 1, 4)))
    assert all((a == b).all() for a, b in zip(uninterrupted, batches(0, 6, workers=2)))
    rows = [{r.numpy().tobytes() for b in batches(0, per_epoch // 2, rank=r, world=2) for r in b} for r in (0, 1)]
    assert rows[0] and not rows[0] & rows[1]


# ---------------------------------------------------------------------------- bad input, one line each


def test_a_missing_relative_path_taken_as_a_dataset_name_says_so_and_stays_offline(tmp_path, monkeypatch, capsys):
    import socket

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)

    def no_network(*args, **kwargs):
        raise AssertionError("tried to open a network connection while offline")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    msg = _one_line_error({"source": "text", "path": "corpora/wiki", "cache_dir": str(tmp_path / "hf")},
                          match="cannot load dataset 'corpora/wiki' (offline")
    assert msg.startswith(f"data.path: no local file or folder 'corpora/wiki' in {tmp_path}, and as a Hugging "
                          f"Face dataset name"), msg


def test_cache_dir_is_a_data_key_overrides_accept(tmp_path):
    from linscale.train.settings import resolve_preset

    preset = resolve_preset("text", [f"data.cache_dir={tmp_path}", "data.max_tokens=1e6"])
    assert preset["data"]["cache_dir"] == str(tmp_path)
    from linscale.data.keys import check_data

    assert check_data(preset["data"])["max_tokens"] == 1_000_000  # 1e6 read as an integer


def test_jsonl_rows_without_text_are_skipped_and_other_values_refused(tmp_path):
    """A null text became the document "None" and a number or a list its repr, trained on in silence."""
    path = tmp_path / "docs.jsonl"
    path.write_text('{"text": null}\n{"text": "hello there"}\n', encoding="utf-8")
    assert list(iter_documents(path)) == ["hello there"]  # as Parquet and Hugging Face rows skip a null
    for value, kind in (("42", "int"), ('["a", "b"]', "list")):
        path.write_text(f'{{"text": "hello"}}\n{{"text": {value}}}\n', encoding="utf-8")
        with pytest.raises(DataError, match=f"docs.jsonl:2: field 'text' is a {kind}, expected a string"):
            list(iter_documents(path))


def test_tokenizer_file_errors_say_what_the_file_is(tmp_path):
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        text_data.load_tokenizer_file(tmp_path / "broken.json")
    tok = train_tokenizer(["some text to train on"] * 4, vocab_size=300)
    tok.save(str(tmp_path / "tokenizer.json"))
    with pytest.raises(DataError, match=r"is a folder; expected a tokenizer.json file \(it holds .*tokenizer.json"):
        text_data.load_tokenizer_file(tmp_path)
    assert text_data.load_tokenizer_file(tmp_path / "tokenizer.json").get_vocab() == tok.get_vocab()


def test_a_tokenizer_with_gaps_in_its_ids_or_no_unknown_token_is_one_line(tmp_path):
    """A vocabulary of 5 with <eod> at id 5000 was 'ready': its shards were uint8 (sized by the count), <eod>
    was stored as 136, and training failed with an index error; a WordLevel tokenizer without [UNK] failed
    with tokenizers' own exception when it met a new word."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    def word_level(vocab, unk):
        tok = Tokenizer(models.WordLevel(vocab, unk_token=unk))
        tok.pre_tokenizer = pre_tokenizers.Whitespace()
        path = tmp_path / f"{len(vocab)}-{unk}.json"
        tok.save(str(path))
        return path

    sparse = word_level({"the": 0, "cat": 1, "sat": 2, "[UNK]": 3, "<eod>": 5000}, "[UNK]")
    with pytest.raises(DataError, match=r"numbers its 5 tokens up to 5,000; expected the ids 0 to 4, each once"):
        text_data.load_tokenizer_file(sparse)
    no_unk = text_data.load_tokenizer_file(word_level({"the": 0, "cat": 1, "<eod>": 2}, None))
    assert [ids.tolist() for ids, _ in text_data.tokenize_pieces(no_unk, [("the cat", True)])] == [[0, 1, 2]]
    with pytest.raises(DataError, match=r"data.tokenizer: cannot encode the text \(.*\); a tokenizer that may meet "
                                        r"words outside its vocabulary needs an unknown token"):
        list(text_data.tokenize_pieces(no_unk, [("the dog", True)]))

    class Failing:  # tokenizers' other failures are bare Exceptions too: no hint about an unknown token for them
        def token_to_id(self, token):
            return 0

        def encode_batch(self, texts, add_special_tokens):
            raise Exception("Truncation error: Second sequence not provided")
    with pytest.raises(DataError, match=r"^data.tokenizer: cannot encode the text \(Truncation error: Second sequence "
                                        r"not provided\)$"):
        list(text_data.tokenize_pieces(Failing(), [("the dog", True)]))


def test_a_cache_that_cannot_be_a_folder_is_one_line_naming_linscale_cache(tmp_path, monkeypatch):
    """LINSCALE_CACHE=/etc/passwd was a NotADirectoryError traceback from the tokenizer cache's mkdir."""
    (tmp_path / "file").write_text("not a folder")
    for cache, said in ((tmp_path / "file", f"{tmp_path / 'file'} is a file"),
                        (tmp_path / "file" / "cache", f"{tmp_path / 'file' / 'cache'} lies under the file {tmp_path / 'file'}")):
        monkeypatch.setenv("LINSCALE_CACHE", str(cache))
        with pytest.raises(DataError, match=f"LINSCALE_CACHE: {re.escape(said)}; expected a folder"):
            text_data.cached_tokenizer({"k": 1}, lambda: None)
    monkeypatch.setenv("LINSCALE_CACHE", str(tmp_path / "new" / "cache"))  # a folder still to be made is fine
    assert text_data.cache_dir() == tmp_path / "new" / "cache"


def test_a_folder_without_data_files_says_so(tmp_path):
    """A folder holding only readme.md went to datasets' folder loader ("The split names could not be parsed
    from the dataset config"); one holding only a hidden file was called empty, without a word of it."""
    from linscale.data.text import resolve_source

    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "readme.md").write_text("hello")
    with pytest.raises(DataError, match=f"data.path: folder {notes} has no data files \\(it holds readme.md\\); "
                                        "expected .txt, .jsonl, .parquet, .json"):
        resolve_source(str(notes), "train", {})
    (notes / "readme.md").unlink()
    (notes / ".secret.txt").write_text("hello")
    with pytest.raises(DataError, match=r"folder .* is empty \(but for hidden files, which are not read\)"):
        resolve_source(str(notes), "train", {})
    (notes / "train.csv.gz").write_bytes(b"")  # datasets' loader reads other formats, compressed too
    assert resolve_source(str(notes), "train", {}).kind == "folder"
    # a malformed file: datasets' "An error occurred while generating the dataset" hid the parser's reason
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "train.json").write_text('{"text": "a"\n{broken\n')
    with pytest.raises(DataError, match=r"An error occurred while generating the dataset: JSON parse error"):
        list(iter_documents(bad))


def test_a_streamed_corpus_validates_on_its_validation_files(corpus, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    tmp_path, docs = corpus
    folder = tmp_path / "split"
    folder.mkdir()
    (folder / "train.jsonl").write_text("\n".join(json.dumps({"text": d}) for d in docs[:200]), encoding="utf-8")
    (folder / "valid.jsonl").write_text("\n".join(json.dumps({"text": d}) for d in docs[200:]), encoding="utf-8")
    dm = build_datamodule(_data(folder, tmp_path, streaming=True, val_tokens=1024), seq_len=16, batch_size=4)
    assert dm.train_rows is None and dm._every == 0  # nothing held out of the training files

    def doc_numbers(rows):  # the "docN" words, leaving out the words cut at row ends
        words = [w for r in rows for w in dm.tokenizer.decode(np.asarray(r).tolist()).split()[1:-1]]
        return {int(w[3:]) for w in words if w.startswith("doc") and w[3:].isdigit()}

    it = iter(dm.train_dataloader())
    train = doc_numbers(row for _ in range(30) for row in next(it)["input_ids"])
    assert doc_numbers(dm.val_rows) and min(doc_numbers(dm.val_rows)) >= 200
    assert train and max(train) < 200


def test_a_literal_eod_in_the_text_is_text_not_a_document_boundary(tmp_path):
    """tokenizers splits an added special token out of raw text even with add_special_tokens=False: a
    web page or a source file that spells "<eod>" got a document boundary there (and lost the word when
    decoded). Only the <eod> linscale appends ends a document, in training and in evaluation."""
    from linscale.models.checkpoint import load_tokenizer

    docs = [d + (" a literal <eod> here" if i % 2 else "") for i, d in enumerate(_docs())]
    (tmp_path / "corpus.jsonl").write_text("\n".join(json.dumps({"text": d}) for d in docs), encoding="utf-8")
    dm = build_datamodule(_data(tmp_path / "corpus.jsonl", tmp_path), seq_len=32, batch_size=4)
    tok, text = dm.tokenizer, "x <eod> y"
    eod = tok.token_to_id("<eod>")
    ids = tok.encode(text, add_special_tokens=False).ids
    assert eod not in ids and tok.decode(ids) == text
    tokens = np.concatenate([dm.shards.read(split, 0, dm.shards.count(split)) for split in ("train", "validation")])
    assert int((tokens == eod).sum()) == len(docs)  # one boundary per document
    tok.save(str(tmp_path / "tokenizer.json"))  # a checkpoint's tokenizer, as evaluation loads it
    assert load_tokenizer(tmp_path).encode(text, add_special_tokens=False).ids == ids


def test_validation_rows_are_spread_over_the_whole_corpus_not_its_first_file(tmp_path):
    """The validation rows were the first rows of the held-out text: the first documents of the first
    file, so in a corpus of two files (two languages, say) only the first was validated on."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    for name, word in (("a.jsonl", "apple"), ("b.jsonl", "banana")):
        docs = [f"{word} {d}" for d in _docs(600, seed=len(word))]
        (folder / name).write_text("\n".join(json.dumps({"text": d}) for d in docs), encoding="utf-8")
    dm = build_datamodule(_data(folder, tmp_path, val_tokens=4 * 32), seq_len=32, batch_size=4)
    available = dm.val_shards.count("validation") // 33
    assert len(dm.val_rows) == 4 < available
    text = dm.tokenizer.decode(dm.val_rows.reshape(-1).tolist())
    assert "apple" in text and "banana" in text
    first, last = dm.val_shards.read("validation", 0, 33), dm.val_shards.read("validation", (available - 1) * 33,
                                                                                available * 33)
    assert dm.val_rows[0].tolist() == first.tolist() and dm.val_rows[-1].tolist() == last.tolist()


def test_the_tokenizer_learns_from_every_file_of_a_corpus_not_the_first_alone(tmp_path, capsys):
    """The BPE was trained on the corpus's first data.tokenizer_docs documents: in a folder of files
    sorted by name, the first file's alone (a corpus of two languages in two files got a tokenizer of
    one, the other's text left in bytes). It now takes each file's first documents in turn; held-out
    documents stay out where their place in the corpus is known (the first file's)."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    for name, word in (("a.jsonl", "apple"), ("b.jsonl", "banana")):
        docs = [f"{word} {word} {d}" for d in _docs(400, seed=len(word))]
        (folder / name).write_text("\n".join(json.dumps({"text": d}) for d in docs), encoding="utf-8")
    dm = build_datamodule(_data(folder, tmp_path, tokenizer_docs=200), seq_len=32, batch_size=4)
    assert len(dm.tokenizer.encode(" banana").ids) == len(dm.tokenizer.encode(" apple").ids) == 1
    assert "documents of " in (out := capsys.readouterr().out) and "(each of its 2 files' first in turn)" in out
    source = text_data.TextSource(str(folder), "files", files=(folder / "a.jsonl", folder / "b.jsonl"))
    firsts = [(piece.split()[0], part, index) for piece, last, part, index in source.pieces_across_files() if last]
    assert firsts[:6] == [("apple", 0, 0), ("banana", 1, 0), ("apple", 0, 1), ("banana", 1, 1), ("apple", 0, 2),
                          ("banana", 1, 2)]


# ---------------------------------------------------------------------------- shards on disk, readers' edge cases


def _word_tokenizer(words=("a", "b", "c", "d", "e")):
    """A whitespace WordLevel tokenizer whose ids can be worked out by hand: <eod> is 0, word i is i + 1."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.WordLevel({"<eod>": 0, **{w: i + 1 for i, w in enumerate(words)}}, unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return tok


def _jsonl(path: Path, texts) -> text_data.TextSource:
    """A .jsonl file of ``texts`` and the TextSource that reads it."""
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    return text_data.TextSource(str(path), "files", (path,))


def test_token_shards_address_tokens_not_bytes_and_stop_at_the_count(tmp_path):
    """read(split, start, stop) is tokens start:stop and rows(...) row i is tokens i·w .. (i+1)·w, also where a
    token takes two bytes (uint16): an offset taken in bytes gave the validation rows (read at row·width) other
    tokens than the ones counted. A file longer than its count (meta.json accepts one: "at least as long as it
    says") is read only up to the count: what lies beyond was never recorded as written."""
    from linscale.data.shards import TokenShards

    (tmp_path / "train.bin").write_bytes(np.arange(1000, 1110, dtype=np.uint16).tobytes())  # 110 tokens
    shards = TokenShards(tmp_path, {"dtype": "uint16", "counts": {"train": 100}})  # 100 of them recorded
    assert shards.read("train", 10, 14).tolist() == [1010, 1011, 1012, 1013]
    assert shards.read("train", 97, 200).tolist() == [1097, 1098, 1099]  # stops at the count, not the file's end
    assert shards.read("train", 100, 105).size == 0 and shards.count("validation") == 0
    assert shards.memmap("train", 7).shape == (14, 7)  # 100 // 7 whole rows, the remainder left out
    rows = shards.rows("train", np.array([3, 0, 13]), 7)
    assert rows.dtype == np.int64
    assert rows.tolist() == [list(range(1021, 1028)), list(range(1000, 1007)), list(range(1091, 1098))]


def test_finished_shards_are_opened_not_built_again_and_only_for_their_own_key(tmp_path, monkeypatch):
    """Every run, rank and sweep worker reading one text must share one tokenization: a second build_shards
    of the same key opens the finished files without touching the tokenizer (a full tokenization of the corpus
    per run otherwise). A meta.json written for another key is not taken as this key's."""
    from linscale.data import shards

    monkeypatch.setenv("LINSCALE_CACHE", str(tmp_path / "cache"))
    source = _jsonl(tmp_path / "c.jsonl", ["a b", "c d e"])
    first = shards.build_shards({"k": 1}, source, _word_tokenizer(), say=lambda line: None)
    assert first.read("train", 0, 10).tolist() == [1, 2, 0, 3, 4, 5, 0]  # each document followed by <eod>
    again = shards.build_shards({"k": 1}, source, None, say=lambda line: None)  # None: fails if it is used
    assert again.folder == first.folder and again.meta == first.meta
    assert shards._read_meta(first.folder, {"k": 1}) == first.meta
    assert shards._read_meta(first.folder, {"k": 2}) is None


def test_a_shard_build_stops_at_the_piece_that_reaches_its_token_limit(tmp_path, monkeypatch):
    """data.max_tokens (and the validation text's limit of the rows asked for) stops the build after the
    piece at which that many tokens are written: 4 tokens a document ("a b c" and <eod>), a limit of 8 is
    2 documents, not the corpus, and not a third one past an exact limit."""
    from linscale.data import shards

    monkeypatch.setenv("LINSCALE_CACHE", str(tmp_path / "cache"))
    source = _jsonl(tmp_path / "c.jsonl", ["a b c"] * 5)
    for limit, tokens in ((8, 8), (9, 12), (None, 20)):
        built = shards.build_shards({"limit": limit}, source, _word_tokenizer(), limit=limit, say=lambda line: None)
        assert built.count("train") == tokens and built.meta["documents"] == tokens // 4
        assert built.file("train").stat().st_size == tokens  # uint8: a byte a token, nothing past the count


def test_copy_tokens_copies_exactly_count_tokens_a_chunk_at_a_time(tmp_path):
    """_hold_out_tail moves the held-out documents and the tail with _copy_tokens, a chunk (4M tokens) at a
    time: a corpus of a few very long documents moves more than a chunk. Counting a chunk's bytes as tokens
    stopped a uint16 copy halfway (tokens lost); reading a whole chunk past ``count`` appended tokens that
    are not asked for."""
    from linscale.data.shards import _copy_tokens

    (tmp_path / "src.bin").write_bytes(np.arange(300, 330, dtype=np.uint16).tobytes())
    with open(tmp_path / "out.bin", "wb") as out:
        _copy_tokens(tmp_path / "src.bin", 5, 11, out, np.dtype(np.uint16), chunk=4)  # chunks of 4, 4 and 3
    assert np.fromfile(tmp_path / "out.bin", dtype=np.uint16).tolist() == list(range(305, 316))
    with open(tmp_path / "out.bin", "wb") as out:  # a file shorter than counted: it looped for ever
        with pytest.raises(DataError, match=r"src\.bin: ends before token 40, which this build counted; delete "):
            _copy_tokens(tmp_path / "src.bin", 5, 35, out, np.dtype(np.uint16), chunk=4)


def test_txt_documents_split_on_the_separator_exactly(tmp_path):
    """data.doc_separator cuts a .txt file into documents: each is the text between two separators, the
    separator itself in none of them (a separator half-removed would start every later document with its
    rest). A file ending in a cut-off UTF-8 character is an error, as a bad byte anywhere else is, not text
    silently dropped at its end. Blank text after the last separator or between two is no document (a file
    ending in its separator gave an empty one); nor is a blank file."""
    path = tmp_path / "docs.txt"
    path.write_text("first doc\n\nsecond one\n\n\nthird", encoding="utf-8")
    assert list(iter_documents(path, doc_separator="\n\n")) == ["first doc", "second one", "\nthird"]
    path.write_text("first doc\n\n \n\nsecond one\n\n", encoding="utf-8")
    assert list(iter_documents(path, doc_separator="\n\n")) == ["first doc", "second one"]
    path.write_text("\n \n", encoding="utf-8")
    assert list(iter_documents(path)) == [] == list(iter_documents(path, doc_separator="\n\n"))
    # a document handed on in pieces from the first 1 MB block whose rest, read in the next, is blank: still
    # one document, closed by its blank last piece
    long = "word " * 200_000 + " " * 100_000
    path.write_text(long + "\n\nsecond\n\n", encoding="utf-8")
    pieces = list(text_data._txt_pieces(path, "\n\n", piece_chars=1000))
    assert [last for _, last in pieces].count(True) == 2 and pieces[-1] == ("second", True)
    assert "".join(piece for piece, _ in pieces) == long + "second" and not pieces[-2][0].strip()
    path.write_bytes("café ".encode() + "é".encode()[:1])  # the last character's second byte missing
    with pytest.raises(DataError, match=r"docs\.txt: not valid UTF-8 text \(byte 0xc3 at offset 6\)"):
        list(iter_documents(path))


def test_a_bad_utf8_byte_after_a_block_boundary_is_placed_at_its_offset_in_the_file(tmp_path):
    """A .txt file is decoded in 1 MB blocks; a character started at the end of one block and broken in the
    next is reported at the offset of its first byte in the file (where an editor finds it), not one block
    further on."""
    path = tmp_path / "big.txt"
    block = 1 << 20
    path.write_bytes(b"x" * (block - 1) + b"\xc3(")  # a 2-byte character cut by the block boundary, then "("
    with pytest.raises(DataError, match=rf"not valid UTF-8 text \(byte 0xc3 at offset {block - 1}\)"):
        list(iter_documents(path))


def test_a_jsonl_file_ending_in_a_cut_off_character_is_an_error(tmp_path):
    """A .jsonl file whose last line (no newline after it) ends in half a UTF-8 character: the byte was
    dropped without a word, where the .txt reader reports it; a bad byte mid-file is placed as there."""
    path = tmp_path / "docs.jsonl"
    path.write_bytes(b'{"text": "x"}\n{"text": "y"}\xc3')
    with pytest.raises(DataError, match=r"docs\.jsonl: not valid UTF-8 text \(byte 0xc3 at offset 27\)"):
        list(iter_documents(path))
    path.write_bytes(b'{"text": "x"}\n{"text": "\xc3("}\n')
    with pytest.raises(DataError, match=r"docs\.jsonl: not valid UTF-8 text \(byte 0xc3 at offset 24\)"):
        list(iter_documents(path))
    path.write_bytes('{"text": "café"}\n{"text": "y"}'.encode())
    assert list(iter_documents(path)) == ["café", "y"]


def test_jsonl_blank_lines_and_parquet_nulls_are_no_documents(tmp_path):
    """A blank line in a .jsonl file (an editor's trailing newlines, files joined with cat) is no row; a null
    in a Parquet text column is skipped, not trained on as the document "None". A Parquet file without the
    text column says which columns it has."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "docs.jsonl"
    path.write_text('{"text": "one"}\n\n   \n{"text": "two"}\n\n', encoding="utf-8")
    assert list(iter_documents(path)) == ["one", "two"]
    pq.write_table(pa.table({"text": ["one", None, "two"], "id": [1, 2, 3]}), tmp_path / "docs.parquet")
    assert list(iter_documents(tmp_path / "docs.parquet")) == ["one", "two"]
    with pytest.raises(DataError, match=r"docs\.parquet: no column 'body' \(columns: text, id; set data.text_field\)"):
        list(iter_documents(tmp_path / "docs.parquet", text_field="body"))


def test_a_blank_text_is_no_document_in_any_source(tmp_path, monkeypatch):
    """A row whose text is empty or whitespace (a Hugging Face corpus of lines, as WikiText's, holds thousands)
    was a document of its own: a lone end-of-document token in training, and a place among the documents that
    are held out. Skipped in every source, as a null text is; the caches' corpus key says so."""
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    texts = ["one", "", "  \n", "two", None]
    (tmp_path / "docs.jsonl").write_text("\n".join(json.dumps({"text": t}) for t in texts), encoding="utf-8")
    pq.write_table(pa.table({"text": texts}), tmp_path / "docs.parquet")
    datasets.Dataset.from_dict({"text": texts}).save_to_disk(str(tmp_path / "saved"))
    for path in ("docs.jsonl", "docs.parquet", "saved"):
        assert list(iter_documents(tmp_path / path, cache_dir=str(tmp_path / "hf"))) == ["one", "two"], path
    source = text_data.resolve_source(str(tmp_path / "docs.jsonl"), "train", {"text_field": "text"})
    assert source.fingerprint()["blank"] == "skipped, any length"


def test_split_words_are_found_in_any_case_and_a_name_of_two_splits_is_refused():
    """Files named as datasets names them, in any case (Train.txt, wiki.VALID.txt), belong to their split;
    a name holding two split words (train_valid.jsonl) is an error rather than training on what may be
    validation text."""
    assert text_data.split_of("Train.txt") == "train" and text_data.split_of("wiki.VALID.txt") == "validation"
    assert text_data.split_of("TEST/part-0.jsonl") == "test" and text_data.split_of("notes/part-0.txt") is None
    with pytest.raises(DataError, match="train_valid.jsonl names the splits train and validation; rename it"):
        text_data.split_of("train_valid.jsonl")


def test_a_long_document_cut_into_pieces_is_still_one_document_for_held_out_places(tmp_path):
    """pieces_by_part gives each piece its document's place in the part: a document cut into several pieces
    is one place, so the shards hold out the same documents (is_held_out by place) as the stream, which
    counts whole documents. Counting pieces moved every later held-out document."""
    long = " ".join(["word"] * 30)  # 149 characters: 7 pieces of 20 to 25 (cut before a " word")
    source = _jsonl(tmp_path / "c.jsonl", ["first", long, "third", "fourth"])
    places = [(part, index) for _, last, part, index in source.pieces_by_part(piece_chars=20) if last]
    assert places == [(0, 0), (0, 1), (0, 2), (0, 3)]
    assert sum(1 for _, last, _, index in source.pieces_by_part(piece_chars=20) if index == 1) > 2


def test_cut_places_are_the_same_for_a_txt_file_and_a_document_in_memory(tmp_path):
    """A long document is cut only where the pre-tokenizer splits anyway (before " word"), looking up to 4
    pieces' length for such a place; _txt_pieces (a .txt file, read in blocks) and _pieces_of (a .jsonl or
    Parquet document) cut the same text the same way, so one corpus tokenizes alike in either format. A
    window of 2 pieces cut a run of 25 letters in the middle, where the tokens differ from the whole's."""
    text = "x" * 25 + " y" * 30
    pieces = list(text_data._pieces_of(text, piece_chars=10))
    assert pieces[0] == ("x" * 25, False) and "".join(p for p, _ in pieces) == text
    (tmp_path / "doc.txt").write_text(text, encoding="utf-8")
    assert list(text_data._txt_pieces(tmp_path / "doc.txt", None, piece_chars=10)) == pieces


def test_the_corpus_fingerprint_changes_with_an_edit_of_the_same_size_and_with_how_it_is_read(tmp_path):
    """The shards and the tokenizer are cached by the corpus's fingerprint: a file rewritten with as many
    bytes (a fixed typo) must change it through its modification time, or the old tokens are trained on;
    so must another text_field or doc_separator, which read other documents from the same files."""
    import os

    path = tmp_path / "c.jsonl"
    source = _jsonl(path, ["a typo"])
    before = source.fingerprint()
    path.write_text(json.dumps({"text": "a typi"}) + "\n", encoding="utf-8")
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000_000))
    assert source.fingerprint() != before and path.stat().st_size == before["files"][0][1]
    for change in ({"text_field": "body"}, {"doc_separator": "\n\n"}):
        other = text_data.TextSource(str(path), "files", (path,), **change)
        assert other.fingerprint() != source.fingerprint()


def test_a_tokenizer_file_without_eod_is_refused_and_a_loaded_one_reads_a_literal_eod_as_text(tmp_path):
    """A given tokenizer.json must have <eod> (it ends every document); one that has it, saved by the user's own
    tokenizers code, reads the string "<eod>" in a document as text, as a trained one does (text.text_only):
    otherwise a web page spelling it got a document boundary there, in the shards and in evaluation."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    tok.train_from_iterator(["a few words of text"] * 4, trainers.BpeTrainer(
        vocab_size=280, special_tokens=["<eod>"], initial_alphabet=alphabet, show_progress=False))
    tok.save(str(tmp_path / "with.json"))
    eod = tok.token_to_id("<eod>")
    assert eod in tok.encode("a <eod> b", add_special_tokens=False).ids  # tokenizers' own default
    loaded = text_data.load_tokenizer_file(tmp_path / "with.json")
    ids = loaded.encode("a <eod> b", add_special_tokens=False).ids
    assert loaded.token_to_id("<eod>") == eod and eod not in ids and len(ids) > 5  # "<eod>" spelt in bytes
    without = Tokenizer(models.WordLevel({"a": 0, "[UNK]": 1}, unk_token="[UNK]"))
    without.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    without.save(str(tmp_path / "without.json"))
    with pytest.raises(DataError, match=r"without\.json has no '<eod>' token \(add it as a special token"):
        text_data.load_tokenizer_file(tmp_path / "without.json")


def test_shuffled_rows_follow_the_seed_and_are_shuffled_again_every_epoch(corpus):
    """The training rows are read in a seeded order, a new one each epoch: the same seed gives the same
    batches, another seed other ones, and the second epoch is not the first one repeated."""
    tmp_path, _ = corpus
    data = _data(tmp_path / "corpus.jsonl", tmp_path)
    a, again, other = (build_datamodule(data, 16, 4, seed=s) for s in (3, 3, 4))
    per_epoch = len(a.train_rows) // 4
    first, second = ([a.train_batch(j)["input_ids"].numpy() for j in range(e * per_epoch, (e + 1) * per_epoch)]
                     for e in (0, 1))
    assert all((x == again.train_batch(j)["input_ids"].numpy()).all() for j, x in enumerate(first))
    assert not all((x == other.train_batch(j)["input_ids"].numpy()).all() for j, x in enumerate(first))
    assert not all((x == y).all() for x, y in zip(first, second))
    assert len({r.tobytes() for b in first for r in b}) == per_epoch * 4  # an epoch repeats no row


def test_text_validates_and_tests_on_its_held_out_rows(corpus):
    """Real text has no test split of its own: the test loader serves the held-out validation rows too."""
    tmp_path, _ = corpus
    dm = build_datamodule(_data(tmp_path / "corpus.jsonl", tmp_path), 16, 4)
    for split in ("validation", "val", "test"):
        assert np.array_equal(dm.split_dataset(split).rows.numpy(), dm.val_rows)
    test = np.concatenate([b["input_ids"].numpy() for b in dm.test_dataloader()])
    assert np.array_equal(test, dm.val_rows[:, :-1])
    with pytest.raises(DataError, match="^split: expected 'validation' or 'test', got 'train'$"):
        dm.split_dataset("train")


def test_ddp_ranks_start_the_next_epoch_when_together_they_have_read_the_rows_once(corpus):
    """With W ranks an epoch is n // (W * batch_size) batches of each: then every rank goes on in the next
    epoch's order, the order one process reaches after its n // batch_size batches."""
    tmp_path, _ = corpus
    dm = build_datamodule(_data(tmp_path / "corpus.jsonl", tmp_path), 16, 4, seed=3)
    n = len(dm.train_rows)
    for rank in (0, 1):
        assert np.array_equal(dm.train_batch(n // 8, rank, 2)["input_ids"], dm.train_batch(n // 4 + rank)["input_ids"])
        assert np.array_equal(dm.train_batch(0, rank, 2)["input_ids"], dm.train_batch(rank)["input_ids"])


def test_a_corpus_without_a_training_row_is_one_line(tmp_path):
    """Every second document held out: long held-out documents and training documents of a word each
    leave validation rows but no training row."""
    docs = [("x" if i % 2 == 0 else " ".join(["held out words"] * 40)) for i in range(8)]
    (tmp_path / "corpus.jsonl").write_text("\n".join(json.dumps({"text": d}) for d in docs), encoding="utf-8")
    with pytest.raises(DataError, match="^data.path: corpus .+ too short for one training and one validation "):
        build_datamodule(_data(tmp_path / "corpus.jsonl", tmp_path, val_fraction=0.5), 16, 4)


def test_a_validation_text_too_short_for_a_row_is_named_not_the_training_text(tmp_path):
    """A long train.txt beside a valid.txt of two words: the message named the training text and its
    thousands of tokens as 'too short for one training and one validation sequence'."""
    words = " ".join(f"word{i % 50}" for i in range(2000))
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "train.txt").write_text(words, encoding="utf-8")
    (tmp_path / "folder" / "valid.txt").write_text("hello world", encoding="utf-8")
    with pytest.raises(DataError, match=r"^data.path: the validation text, .+\(valid.txt\), has \d+ tokens, too short"):
        build_datamodule(_data(tmp_path / "folder", tmp_path), 16, 4)
    (tmp_path / "valid.txt").write_text("hello world", encoding="utf-8")
    with pytest.raises(DataError, match="^data.val_path: the validation text, .+valid.txt, has"):
        data = _data(tmp_path / "folder" / "train.txt", tmp_path, val_path=str(tmp_path / "valid.txt"))
        build_datamodule(data, 16, 4)


def test_a_streamed_module_asked_again_for_an_earlier_batch_reads_it_again(corpus):
    """One module whose loader starts over (a second fit, or a resume in the same process) is asked for a
    batch other than its stream's next: the batch is read again, not the stream's next one served."""
    tmp_path, _ = corpus
    dm = build_datamodule(_data(tmp_path / "corpus.jsonl", tmp_path, streaming=True, val_tokens=60), 16, 4)
    assert len(dm.val_rows) == 4  # val_tokens rounded up to whole rows
    first = [dm.train_batch(j)["input_ids"] for j in range(5)]
    assert not (first[1] == first[4]).all()
    assert all((dm.train_batch(j)["input_ids"] == first[j]).all() for j in (1, 2, 0))


# ---------------------------------------------------------------------------- what a mutation audit found untested


def test_a_document_up_to_twice_the_piece_size_is_one_piece_and_a_longer_one_is_cut():
    """The note on a tokenizer that may cut inexactly names documents longer than 2 * PIECE_CHARS: a document
    up to that length is handed to the tokenizer whole (one piece), as evaluation encodes it; a longer one is cut
    at its first safe place a piece's length in."""
    text = " word" * 8  # 40 characters, a safe cut before each " word"
    assert list(text_data._pieces_of(text, piece_chars=20)) == [(text, True)]
    pieces = list(text_data._pieces_of(text + " w", piece_chars=20))
    assert pieces == [(" word" * 4, False), (" word" * 4 + " w", True)]
    # no safe place in 4 pieces' length: cut at piece_chars (not at twice that), in memory and in a file alike
    assert [len(piece) for piece, _ in text_data._pieces_of("x" * 50, piece_chars=10)] == [10, 10, 10, 20]


def test_a_long_txt_document_whose_rest_is_blank_still_ends(tmp_path):
    """A .txt document handed on in pieces while the file is read, whose text after them is blank up to the end
    of the file, still ends with a last piece (its <eod>): dropping the blank rest left the document open, its
    pieces joined to nothing and counted as no document."""
    text = "word " * 100 + " " * 200
    (tmp_path / "doc.txt").write_text(text, encoding="utf-8")
    pieces = list(text_data._txt_pieces(tmp_path / "doc.txt", None, piece_chars=50))
    assert len(pieces) > 3 and [last for _, last in pieces] == [False] * (len(pieces) - 1) + [True]
    assert list(text_data._joined(pieces)) == [text]


def test_a_blank_txt_document_longer_than_a_piece_is_no_document(tmp_path):
    """A document of nothing but whitespace is skipped however long it is: one longer than two pieces was handed
    on piece by piece before its end was read, so it still became a document (a lone <eod> after blank tokens).
    A document that starts with blank pieces and then shows text keeps them, in the same pieces as before."""
    blank, text = " \n\t" * 2000, "word " * 300  # no separator inside, none made with the next one
    path = tmp_path / "docs.txt"
    path.write_text(f"first\n\n{blank}\n\n{blank}{text}\n\n{blank}", encoding="utf-8")
    pieces = list(text_data._txt_pieces(path, "\n\n", piece_chars=1000))
    assert list(text_data._joined(pieces)) == ["first", blank + text]
    assert pieces[1:] == list(text_data._pieces_of(blank + text, piece_chars=1000))
    path.write_text(blank * 2, encoding="utf-8")
    assert list(text_data._txt_pieces(path, None, piece_chars=1000)) == []
    path.write_text(blank + "end", encoding="utf-8")  # text only in the last piece, after blank ones held back
    assert list(text_data._txt_pieces(path, None, piece_chars=1000)) == list(
        text_data._pieces_of(blank + "end", piece_chars=1000))


def test_a_separator_cut_by_a_block_boundary_still_ends_its_document(tmp_path):
    """A .txt file is read in 1 MB blocks and a long document handed on in pieces as it comes; the last
    len(separator) characters of a block are kept back, so a separator split by the block boundary is still
    found in the next one (a piece cut inside it, as before "END" in "\\nEND\\n", joined two documents)."""
    block = 1 << 20
    head = "a" * (block - 3) + "x\nE"  # the block ends in the separator's first characters
    (tmp_path / "docs.txt").write_bytes((head + "ND\nsecond document").encode())
    pieces = list(text_data._txt_pieces(tmp_path / "docs.txt", "\nEND\n", piece_chars=1000))
    assert list(text_data._joined(pieces)) == ["a" * (block - 3) + "x", "second document"]


def test_a_txt_file_read_in_blocks_is_cut_where_the_whole_document_is(tmp_path):
    """Where a 1 MB block of a .txt file ends inside a run with no safe cut (a long word, a URL), the reader
    waits for the next block rather than cutting inside it: a cut there split a word that _pieces_of (the same
    document from a .jsonl file) keeps whole, and the tokens differed."""
    block = 1 << 20
    # the run of x starts 700 characters into what is left of the first block (its pieces are 1000 long)
    text = " word" * ((block - 1876) // 5) + "x" * 3000 + " word" * 400
    (tmp_path / "doc.txt").write_text(text, encoding="utf-8")
    pieces = list(text_data._txt_pieces(tmp_path / "doc.txt", None, piece_chars=1000))
    assert pieces == list(text_data._pieces_of(text, piece_chars=1000))
    assert [len(piece) for piece, _ in pieces if "x" in piece] == [700 + 3000]  # cut at the first " word" after


def test_split_names_in_any_case_and_the_files_a_folder_of_splits_leaves_unread(tmp_path):
    """data.split "DEV" or "Valid" picks the validation files, as split_of finds them in "wiki.Valid.txt";
    the files of a folder of split files that name no split are not read, and a note names them."""
    for name in ("train.txt", "wiki.Valid.txt", "notes.txt"):
        (tmp_path / name).write_text(f"the text of {name}", encoding="utf-8")
    assert text_data.canonical_split("Valid") == "validation" and text_data.canonical_split("shard0") == "shard0"
    source = text_data.resolve_source(str(tmp_path), "DEV", {})
    assert source.split == "validation" and source.files == (tmp_path / "wiki.Valid.txt",)
    train = text_data.resolve_source(str(tmp_path), "train", {})
    assert train.files == (tmp_path / "train.txt",)
    assert train.notes == [f"{tmp_path}: not read (no split word in the name): notes.txt"]


def test_a_folder_source_names_its_first_three_files_and_how_many_more(tmp_path):
    """Every line about a corpus names it (describe): a folder with its first three files and a count of the
    others, not a list of thousands; a file by the path as given."""
    for i in range(5):
        (tmp_path / f"part{i}.txt").write_text("text", encoding="utf-8")
    assert text_data.resolve_source(str(tmp_path), "train", {}).describe() == \
        f"{tmp_path} (part0.txt, part1.txt, part2.txt and 2 more)"
    assert text_data.resolve_source(str(tmp_path / "part0.txt"), "train", {}).describe() == str(tmp_path / "part0.txt")


def test_a_missing_or_unsupported_file_is_one_line_naming_the_key(tmp_path, monkeypatch):
    """A mistyped corpus.txt (relative, as typed) is a missing file, not a Hugging Face dataset name to look
    up; a file of another type is refused naming its key when the sources are resolved, not when the tokenizer
    first reads it; data.split other than train on a file without split files is refused."""
    monkeypatch.chdir(tmp_path)
    looked_in = re.escape(str(tmp_path))
    with pytest.raises(DataError, match=rf"^data.path: no file or folder corpus.txt \(looked in {looked_in}\)$"):
        text_data.resolve_source("corpus.txt", "train", {})
    (tmp_path / "notes.md").write_text("# notes", encoding="utf-8")
    with pytest.raises(DataError, match=r"^data.val_path: notes.md: unsupported file type '.md'; expected one of "
                                        r"\.txt, \.jsonl, \.parquet \(or a folder of them\)$"):
        text_data.resolve_source("notes.md", "validation", {}, role="val_path")
    (tmp_path / "c.txt").write_text("some text", encoding="utf-8")
    with pytest.raises(DataError, match=r"^data.split: 'test', but data.path c.txt has no split files"):
        text_data.resolve_splits({"path": "c.txt", "split": "test"})
    assert text_data.resolve_splits({"path": "c.txt", "split": "train"}).train.files == (Path("c.txt"),)


def test_a_split_slice_of_a_dataset_folder_is_checked_by_its_split_name(tmp_path, monkeypatch):
    """data.split "train[:10%]" (datasets' slice syntax) names the split "train": accepted where the dataset
    has that split, and validation still found by name; a slice of a split it lacks is refused naming its splits."""
    (tmp_path / "train.csv").write_text("text\nhello\n", encoding="utf-8")
    monkeypatch.setattr(text_data, "_hub_splits", lambda source: ["train", "validation"])
    splits = text_data.resolve_splits({"path": str(tmp_path), "split": "train[:10%]"})
    assert (splits.train.kind, splits.train.split, splits.validation.split) == ("folder", "train[:10%]", "validation")
    with pytest.raises(DataError, match=r"^data.split: .+ has no split 'test\[:5\]' \(splits: train, validation\)$"):
        text_data.resolve_splits({"path": str(tmp_path), "split": "test[:5]"})


def test_the_fingerprint_of_a_dataset_names_its_split_and_configuration(tmp_path):
    """The tokenizer and shard caches are keyed by the training text's fingerprint: a save_to_disk folder's
    train and test splits, or a Hub dataset's two configurations or splits, are other documents and must not
    share a cache (data.split=test reused the train split's shards)."""
    (tmp_path / "dataset_dict.json").write_text('{"splits": ["train", "test"]}', encoding="utf-8")
    for kind, location in (("saved", str(tmp_path)), ("folder", str(tmp_path)), ("hub", "org/name")):
        prints = [text_data.TextSource(location, kind, split=split, dataset_config=config).fingerprint()
                  for split, config in (("train", None), ("test", None), ("train", "en"))]
        assert len({json.dumps(p, sort_keys=True) for p in prints}) == 3, kind


def test_pieces_are_tokenized_in_batches_bounded_by_characters_too():
    """tokenize_pieces hands the tokenizer at most max_chars characters at once, as well as max_items pieces
    (256 pieces of a long document are 256 MB of text at once otherwise); the ids are the same however the
    batches fall."""
    tok, batches = _word_tokenizer(), []

    class Counting:  # the tokenizer, counting the pieces of each batch
        def token_to_id(self, token):
            return tok.token_to_id(token)

        def encode_batch(self, texts, add_special_tokens):
            batches.append(len(texts))
            return tok.encode_batch(texts, add_special_tokens=add_special_tokens)

    pieces = [("a b c", False), ("d e", True)] * 3  # 5 + 3 characters a document
    ids = [ids.tolist() for ids, _ in text_data.tokenize_pieces(Counting(), pieces, max_chars=8)]
    assert batches == [2, 2, 2] and ids == [[1, 2, 3], [4, 5, 0]] * 3


def test_train_tokenizer_refuses_a_vocabulary_without_room_for_a_merge():
    """The 256 bytes and <eod> take 257 ids: train_tokenizer (public, called without check_data's check too)
    refuses a vocabulary of 257 or a non-integer in one line and trains one of 258."""
    for bad in (257, 300.0):
        with pytest.raises(DataError, match=rf"^data.vocab_size: expected an integer > 257 \(256 bytes \+ <eod>\), "
                                            rf"got {bad}$"):
            train_tokenizer(["ab ab ab"], vocab_size=bad)
    assert train_tokenizer(["ab ab ab"], vocab_size=258).get_vocab_size() == 258


def test_stream_bookmarks_keep_every_processes_marks_and_drop_impossible_ones(tmp_path, monkeypatch):
    """Processes reading one stream add their bookmarks to one file: an add keeps what others wrote since this
    process read it (a process's own list alone dropped theirs). A mark with a negative number or not four of
    them is no bookmark (a resumed stream would start before its start)."""
    monkeypatch.setenv("LINSCALE_CACHE", str(tmp_path))
    first, second = text_data.StreamBookmarks({"k": 1}), text_data.StreamBookmarks({"k": 1})
    first.add(10, 0, 10, 3, 5)
    second.add(20, 0, 20, 7, 0)  # second read the file before first wrote to it
    assert text_data.StreamBookmarks({"k": 1}).marks == {10: (0, 10, 3, 5), 20: (0, 20, 7, 0)}
    assert text_data.StreamBookmarks({"k": 1}).at_or_before(15) == (10, 0, 10, 3, 5)
    first.file.write_text(json.dumps({"5": [0, 5, 1, 0], "-1": [0, 0, 0, 0], "8": [0, -8, 2, 0], "9": [1, 2, 3]}))
    assert text_data.StreamBookmarks({"k": 1}).marks == {5: (0, 5, 1, 0)}


def test_token_shards_of_a_split_without_a_whole_row_are_empty(tmp_path):
    """A split shorter than one row, empty, or never written (no validation.bin where a validation text is
    given) maps to no rows: mapping it failed (an empty file cannot be mapped, a missing one cannot be opened)."""
    from linscale.data.shards import TokenShards

    (tmp_path / "train.bin").write_bytes(np.arange(5, dtype=np.uint16).tobytes())
    (tmp_path / "test.bin").write_bytes(b"")
    shards = TokenShards(tmp_path, {"dtype": "uint16", "counts": {"train": 5, "test": 0}})
    for split in ("train", "test", "validation"):
        assert shards.memmap(split, 7).shape == (0, 7) and shards.rows(split, np.zeros(0, dtype=int), 7).shape == (0, 7)


def test_a_resumed_shard_build_cuts_back_what_was_written_after_its_last_checkpoint(tmp_path, monkeypatch):
    """A build killed between two checkpoints has written tokens that meta.json does not count: the resumed
    build cuts the files back to the checkpoint before it appends, so no document is stored twice (the resume
    test above happens to be killed right at a checkpoint, so it did not reach this)."""
    from linscale.data import shards

    monkeypatch.setenv("LINSCALE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(shards, "CHECKPOINT_TOKENS", 8)  # a checkpoint every second document ("x y z" and <eod>)
    source = _jsonl(tmp_path / "c.jsonl", ["a b c", "b c d", "c d e", "d e a", "e a b"])
    real = shards.tokenize_pieces

    def dies_at_the_fourth_document(tokenizer, pieces, **kw):
        for n, item in enumerate(real(tokenizer, pieces, **kw)):
            if n == 3:
                raise Killed
            yield item

    monkeypatch.setattr(shards, "tokenize_pieces", dies_at_the_fourth_document)
    with pytest.raises(Killed):
        shards.build_shards({"k": 1}, source, _word_tokenizer(), say=lambda line: None)
    folder = shards.shards_folder({"k": 1})
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["pieces"] == 2 and (folder / "train.bin").stat().st_size == 12  # 3 documents written, 2 counted
    monkeypatch.setattr(shards, "tokenize_pieces", real)
    resumed = shards.build_shards({"k": 1}, source, _word_tokenizer(), say=lambda line: None)
    assert resumed.read("train", 0, 100).tolist() == [1, 2, 3, 0, 2, 3, 4, 0, 3, 4, 5, 0, 4, 5, 1, 0, 5, 1, 2, 0]
    assert (folder / "train.bin").stat().st_size == 20 and resumed.meta["documents"] == 5


def test_a_shard_build_counts_documents_not_pieces(tmp_path, monkeypatch):
    """meta.json's documents, and with them whether the held-out text is whole documents or the last tokens
    (fewer than 2 * holdout_every documents), count documents, however many pieces a long one is tokenized in.
    Here 4 documents, every 3rd held out: too few, so the last quarter of the tokens validates, taken after
    the held-out document ("c d") is put back behind the training ones."""
    from linscale.data import shards

    monkeypatch.setenv("LINSCALE_CACHE", str(tmp_path / "cache"))
    source = _jsonl(tmp_path / "c.jsonl", ["a b c d e " * 4, "a b", "c d", "e a"])
    monkeypatch.setattr(source, "pieces_by_part", lambda: text_data.TextSource.pieces_by_part(source, piece_chars=4))
    assert sum(1 for _ in source.pieces_by_part()) > 5  # the first document in pieces
    built = shards.build_shards({"k": 1}, source, _word_tokenizer(), holdout_every=3, val_fraction=0.25,
                                say=lambda line: None)
    assert built.meta["documents"] == 4 and (built.count("train"), built.count("validation")) == (23, 7)
    assert built.file("train").stat().st_size == 23  # uint8, and the tail moved out of the training file
    assert built.read("validation", 0, 7).tolist() == [0, 5, 1, 0, 3, 4, 0]  # "a b"'s <eod>, "e a", "c d"


def test_a_shard_build_killed_while_it_holds_out_the_tail_starts_over(tmp_path, monkeypatch):
    """The tail hold-out (fewer than 2 * holdout_every documents) rewrites both files in place after the last
    checkpoint: a build killed there left the validation file holding training tokens, which the resumed build
    cut to the checkpoint's count and took as its held-out documents. It now builds afresh, equal to an
    uninterrupted build."""
    from linscale.data import shards

    monkeypatch.setenv("LINSCALE_CACHE", str(tmp_path / "cache"))
    source = _jsonl(tmp_path / "c.jsonl", ["a b c d e a b", "a b", "c d", "e a"])
    build = functools.partial(shards.build_shards, source=source, tokenizer=_word_tokenizer(), holdout_every=3,
                              val_fraction=0.25, say=lambda line: None)
    whole = build({"k": "whole"})
    real = shards._copy_tokens

    copies = []

    def dies_after_the_second_copy(*args, **kw):  # the tail copied into the emptied validation file
        real(*args, **kw)
        copies.append(args[0].name)
        if len(copies) == 2:
            raise Killed

    monkeypatch.setattr(shards, "_copy_tokens", dies_after_the_second_copy)
    with pytest.raises(Killed):
        build({"k": "killed"})
    assert copies == ["validation.bin", "train.bin"]
    monkeypatch.setattr(shards, "_copy_tokens", real)
    again = build({"k": "killed"})
    for name in ("train", "validation"):
        assert again.count(name) == whole.count(name)
        assert again.read(name, 0, 100).tolist() == whole.read(name, 0, 100).tolist(), name
    assert "rewriting" not in again.meta and again.meta["complete"]


def test_a_damaged_bookmarks_file_of_other_json_is_no_bookmarks(tmp_path, monkeypatch):
    """A missing or damaged bookmarks file means no bookmarks (the stream read from its start); a file of
    valid JSON that is not a mapping (null, a list, a string) raised AttributeError instead."""
    monkeypatch.setenv("LINSCALE_CACHE", str(tmp_path))
    file = text_data.StreamBookmarks({"k": 1}).file
    file.parent.mkdir(parents=True)
    for damaged in ("null", "[]", '"text"', "{not json", '{"1": 5}'):
        file.write_text(damaged)
        bookmarks = text_data.StreamBookmarks({"k": 1})
        assert bookmarks.marks == {} and bookmarks.at_or_before(7) == (0, 0, 0, 0, 0), damaged
    bookmarks.add(4, 0, 4, 2, 0)  # and a new bookmark replaces the damaged file
    assert text_data.StreamBookmarks({"k": 1}).marks == {4: (0, 4, 2, 0)}



def test_a_byte_level_tokenizer_that_adds_a_prefix_space_is_said_to_cut_inexactly(tmp_path):
    """ByteLevel(add_prefix_space=True) puts a space before a text that starts with none: a piece cut after a
    newline ("...\\n" | "delta ...") starts with one more space than the same words in the whole document, so
    its tokens differ; cuts_exactly said it cut exactly, and the note on inexact cuts was not given."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    text = "alpha beta gamma\ndelta epsilon zeta\n" * 50
    pieces = [("alpha beta gamma\n", False), ("delta epsilon zeta", True)]
    for prefix, exact in ((False, True), (True, False)):
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=prefix)
        tok.train_from_iterator([text], trainers.BpeTrainer(vocab_size=300, special_tokens=["<eod>"],
                                                            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                                            show_progress=False))
        whole = tok.encode("".join(piece for piece, _ in pieces), add_special_tokens=False).ids
        said = []
        cut = np.concatenate([ids for ids, _ in text_data.tokenize_pieces(tok, pieces, say=said.append)]).tolist()
        assert (cut == whole + [tok.token_to_id("<eod>")]) == exact == text_data.cuts_exactly(tok), prefix
        assert len(said) == (0 if exact else 1)
