"""Data for the study: the synthetic language with known entropy (default) and real text.

    >>> dm = build_datamodule({"source": "synthetic"}, seq_len=64, batch_size=4)
    >>> batch = next(iter(dm.train_dataloader()))
    >>> sorted(batch), tuple(batch["input_ids"].shape)
    (['bayes_nll', 'input_ids', 'labels'], (4, 64))

``build_datamodule(data, seq_len, batch_size, seed, num_workers)`` returns a LightningDataModule (its
batches: below). ``data["source"]`` is ``"synthetic"`` (other keys: :class:`~linscale.data.synthetic.LanguageSpec`
fields, plus ``val_tokens``, ``test_tokens``, ``val_seed``) or ``"text"`` (keys: ``path`` and ``split``,
``val_path`` and ``val_split``, ``tokenizer`` or ``vocab_size`` and ``tokenizer_docs``, ...). Every key,
with its type, default and meaning, is in :mod:`linscale.data.keys` (``linscale data --help-keys``);
:func:`validate_data` checks a data dict and its files without tokenizing anything.

Batches are dicts ``{"input_ids": LongTensor[B, T], "labels": LongTensor[B, T]}`` plus, for the synthetic
source, ``"bayes_nll": FloatTensor[B, T]`` (exact −log p of each label under the generating process).

The train loader is an endless stream of whole batches. Batch j of rank r is a pure function of
(seed, r, j) (synthetic: a freshly generated batch; text: rows of a seeded per-epoch permutation), and
loader worker w produces the batches j ≡ w (mod num_workers), so the stream is identical for any
number of workers; under DDP each rank gets different batches (rank and world size come from the
trainer, or are given explicitly). A run resumed from a Lightning checkpoint continues the stream where
it stopped (the trainer's processed-batch count); ``train_start_batch`` sets the start by hand. A
streamed text corpus (``streaming``) is the exception to "any number of workers": each worker reads its
own shard of the documents (its own files, where there are as many), so its batches depend on
num_workers; it resumes exactly too, from the last
bookmark (a stream position kept every few thousand rows in linscale's cache) before the batch where it
stopped, skipping the documents before it without tokenizing them.
The validation and test loaders are fixed, finite sets of rows disjoint from training (synthetic:
separate random streams of documents; text: the validation text, or held-out documents; the test loader
of text serves the same rows: evaluate test text with lm-eval).

Layout: :mod:`~linscale.data.synthetic` (the language), :mod:`~linscale.data.text` (tokenizers,
corpora), :mod:`~linscale.data.shards` (token shards), :mod:`~linscale.data.keys` (the data block's
keys) and :mod:`~linscale.data.datamodule` (the Lightning data modules; imported on first use, so that
checking a preset or computing the language's entropy does not import Lightning and torch).

Real text that is not streamed is tokenized once into cached token shards (:mod:`linscale.data.shards`)
and its training rows are read from them batch by batch: a process training on it holds the validation
rows and one epoch's row order (4 bytes a row), not the corpus.
"""
from __future__ import annotations

from linscale.lazy import lazy_exports

# Names served from linscale.data.datamodule, which imports Lightning and torch when first asked for
# (linscale.lazy): reading a preset (its data keys) or the language (its entropy) needs neither.
_EXPORTS = {"datamodule": ("build_datamodule", "validate_data", "say", "BatchStream", "RowDataset",
                           "SyntheticDataModule", "TextDataModule")}
__all__ = list(_EXPORTS["datamodule"])
__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
