"""The synthetic language: exact entropy, determinism, disjoint splits, learnability, evaluation items."""
from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from linscale.data import build_datamodule
from linscale.data.synthetic import (DataError, LanguageSpec, SyntheticLanguage, associative_recall, cloze,
                                     knowledge_mc, needle_in_haystack)

# A small world so that Monte Carlo is cheap and every part of the language (binding exhaustion included)
# is exercised many times.
SMALL = LanguageSpec(n_first=6, n_last=5, n_relations=4, n_objects=16, objects_per_relation=6, n_adj=4,
                     n_noun=5, n_verb=4, n_vars=5, n_values=8, fact_zipf=1.1, doc_len=40)


@pytest.mark.parametrize("spec,seq_len", [(SMALL, 96), (LanguageSpec(), 64),
                                          (dataclasses.replace(SMALL, fresh_query_prob=0.0), 96),
                                          (dataclasses.replace(SMALL, fresh_query_prob=0.7), 96)],
                         ids=["small-docs40-T96", "default-T64", "small-no-fresh-queries", "small-fresh-0.7"])
def test_bayes_loss_matches_monte_carlo(spec, seq_len):
    """The exact entropy rate (a forward recursion, no sampling) equals the mean sampled −log p within 3 SE.
    A sampler that drew tokens from a distribution other than the one it reports would fail this:
    E_q[−log p] = H(q) + KL(q‖p) differs from H(p) unless p = q."""
    lang = SyntheticLanguage(spec)
    exact = lang.expected_nll(seq_len)
    _, nll = lang.sample_rows(np.random.default_rng(123), 6000, seq_len)
    per_row = nll[:, 1:].mean(1)  # rows are independent
    mc, se = per_row.mean(), per_row.std(ddof=1) / math.sqrt(len(per_row))
    assert abs(mc - exact) < 3 * se, f"exact {exact:.5f} vs Monte Carlo {mc:.5f} ± {se:.5f}"
    # position by position too (the recursion's per-position entropies), pooled as a chi-square
    doc_len = min(spec.doc_len or seq_len, seq_len)
    docs_nll = lang.sample(np.random.default_rng(7), 6000, doc_len)[1]
    z = (docs_nll.mean(0) - lang.position_entropy(doc_len)) / (docs_nll.std(0, ddof=1) / math.sqrt(6000) + 1e-12)
    informative = docs_nll.std(0) > 0
    chi2 = float((z[informative] ** 2).sum())
    dof = int(informative.sum())
    assert chi2 < dof + 5 * math.sqrt(2 * dof), f"per-position chi-square {chi2:.1f} for {dof} positions"


def _queries(lang, doc):
    """(position, variable, value, fresh) of every ``what VAR VAL`` in a document, fresh when VAR had no
    earlier binding (neither ``let VAR`` nor an earlier ``what VAR``)."""
    what, let = lang.fn["what"], lang.fn["let"]
    seen, out = {}, []
    for i in range(len(doc) - 2):
        if doc[i] in (what, let):
            var, val = int(doc[i + 1]), int(doc[i + 2])
            if doc[i] == what:
                out.append((i, var, val, var not in seen))
            seen.setdefault(var, val)
    return out


@pytest.mark.parametrize("fresh_prob", [0.0, 0.25])
def test_fresh_queries_state_a_value_that_later_queries_repeat(fresh_prob):
    """The needle of NIAH's easy mode ("what VAR VAL" with VAR unbound) is part of the training language
    when fresh_query_prob > 0, and never when it is 0 (then every query follows a binding); either way a
    later query of a variable repeats the value it was first given, whichever form gave it."""
    lang = SyntheticLanguage(dataclasses.replace(LanguageSpec(), fresh_query_prob=fresh_prob))
    docs, _ = lang.sample(np.random.default_rng(3), 400, 128)
    what, let = lang.fn["what"], lang.fn["let"]
    n_repeat = 0
    for doc in docs:
        given = {}
        for i in range(len(doc) - 2):
            if doc[i] in (what, let):
                var, val = int(doc[i + 1]), int(doc[i + 2])
                if var in given:
                    assert doc[i] == what and given[var] == val, "a variable is bound once and queries repeat it"
                    n_repeat += 1
                else:
                    given[var] = val
    n_fresh = sum(fresh for doc in docs for *_, fresh in _queries(lang, doc))
    assert n_repeat > 100
    if fresh_prob == 0:
        assert n_fresh == 0
    else:
        n_queries = sum(len(_queries(lang, doc)) for doc in docs)
        assert 0.15 < n_fresh / n_queries < 0.6, (n_fresh, n_queries)


def test_datamodule_bayes_loss_is_the_entropy_rate_and_the_split_mean():
    dm = build_datamodule({"source": "synthetic", "val_tokens": 4096}, seq_len=64, batch_size=8)
    assert dm.bayes_loss("train") == pytest.approx(dm.language.expected_nll(64))
    val = dm.split_dataset("validation")
    assert dm.bayes_loss("validation") == pytest.approx(float(val.nll.double().mean()))
    assert abs(dm.bayes_loss("validation") - dm.bayes_loss("train")) < 0.1


def _rows(batch) -> np.ndarray:
    """The rows [B, T+1] a batch was cut from."""
    return torch.cat([batch["input_ids"][:, :1], batch["labels"]], 1).numpy()


def _bigram_loss(train_rows, val_rows, vocab, alpha=0.1):
    counts = np.full((vocab, vocab), alpha)
    np.add.at(counts, (train_rows[:, :-1].ravel(), train_rows[:, 1:].ravel()), 1)
    logp = np.log(counts / counts.sum(1, keepdims=True))
    return float(-logp[val_rows[:, :-1], val_rows[:, 1:]].mean())


def test_unigram_and_bigram_models_are_above_the_bayes_loss():
    dm = build_datamodule({"source": "synthetic", "val_tokens": 8192}, seq_len=128, batch_size=64)
    train = np.concatenate([_rows(dm.train_batch(j)) for j in range(16)])
    val = dm.split_dataset("validation").rows.numpy()
    counts = np.bincount(train[:, 1:].ravel(), minlength=dm.vocab_size) + 0.1
    unigram = float(-np.log(counts / counts.sum())[val[:, 1:]].mean())
    bigram = _bigram_loss(train, val, dm.vocab_size)
    bayes = dm.bayes_loss("validation")
    assert bayes < bigram < unigram, f"bayes {bayes:.3f}, bigram {bigram:.3f}, unigram {unigram:.3f}"
    assert bigram - bayes > 0.3, "the language must leave much to learn beyond bigram statistics"


def test_generator_is_byte_for_byte_deterministic():
    def stream(seed):
        dm = build_datamodule({"source": "synthetic", "val_tokens": 2048}, seq_len=64, batch_size=4, seed=seed)
        it = iter(dm.train_dataloader())
        batches = [next(it) for _ in range(3)]
        return b"".join(b[k].numpy().tobytes() for b in batches for k in sorted(b)) + \
            dm.split_dataset("validation").rows.numpy().tobytes()

    assert stream(0) == stream(0)
    assert stream(0) != stream(1)
    assert SyntheticLanguage().words == SyntheticLanguage(LanguageSpec(world_seed=5)).words  # vocabulary fixed


def _documents(rows: np.ndarray, eod: int, doc_len: int) -> set[tuple]:
    """The complete documents in rows (the one cut off at the end of a row is left out)."""
    docs = set()
    for row in rows:
        for part in np.split(row, np.flatnonzero(row == eod)):
            if len(part) == doc_len + 1:
                docs.add(tuple(part[1:].tolist()))
    return docs


def test_splits_share_no_document():
    # short documents (32 tokens) so there are many; much shorter ones could coincide by chance, as
    # duplicates do in real corpora
    spec = {"source": "synthetic", "doc_len": 32, "val_tokens": 20000, "test_tokens": 20000}
    dm = build_datamodule(spec, seq_len=64, batch_size=32)
    eod = dm.language.eod_id
    train = np.concatenate([_rows(dm.train_batch(j)) for j in range(40)])
    val, test = (dm.split_dataset(s).rows.numpy() for s in ("validation", "test"))
    d_train, d_val, d_test = (_documents(r, eod, 32) for r in (train, val, test))
    assert min(len(d_train), len(d_val), len(d_test)) > 300
    assert not d_train & d_val and not d_train & d_test and not d_val & d_test


def test_tokenizer_round_trips_and_has_eod():
    lang = SyntheticLanguage()
    rows, _ = lang.sample_rows(np.random.default_rng(0), 2, 100)
    text = lang.decode(rows[0])
    tok = lang.tokenizer
    assert tok.token_to_id("<eod>") == lang.eod_id
    assert tok.encode(text).ids == rows[0].tolist()
    assert tok.decode(tok.encode(text).ids, skip_special_tokens=False) == text
    assert tok.get_vocab_size() == lang.vocab_size
    with pytest.raises(DataError, match="'zzzz' is not a word"):
        lang.encode("the zzzz")


def test_tiny_model_learns_something_but_not_everything():
    """A 2-layer d=32 model trained briefly lands strictly between the unigram entropy and the Bayes loss."""
    from linscale.config import ModelConfig
    from linscale.models import build_model

    torch.manual_seed(0)
    dm = build_datamodule({"source": "synthetic", "val_tokens": 4096}, seq_len=64, batch_size=16)
    model = build_model(ModelConfig(arch="llama", n_layer=2, d_model=32, n_head=2, vocab_size=dm.vocab_size, d_ffn=64))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for j, batch in zip(range(150), dm.train_dataloader()):
        loss = model(batch["input_ids"], labels=batch["labels"]).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        losses = [model(b["input_ids"], labels=b["labels"]).loss.item() for b in dm.val_dataloader()]
    val_loss = float(np.mean(losses))
    unigram = dm.language.unigram_entropy(64)
    bayes = dm.bayes_loss("validation")
    assert bayes < val_loss < unigram, f"bayes {bayes:.3f} < val {val_loss:.3f} < unigram {unigram:.3f}"


def test_bad_language_parameters_raise_one_line_errors():
    for kwargs, field in [({"n_first": 0}, "n_first"), ({"type_probs": (0.5, 0.5)}, "type_probs"),
                          ({"objects_per_relation": 500}, "objects_per_relation"), ({"doc_len": -3}, "doc_len"),
                          ({"stickiness": 1.5}, "stickiness"), ({"fresh_query_prob": 1.0}, "fresh_query_prob")]:
        with pytest.raises(DataError, match=f"data.{field}") as err:
            LanguageSpec(**kwargs)
        assert "\n" not in str(err.value)
    with pytest.raises(DataError, match="data.source"):
        build_datamodule({"source": "nope"}, 8, 2)
    with pytest.raises(DataError, match=r"data.n_frist: unknown key .*\(did you mean data.n_first\?\)"):
        build_datamodule({"source": "synthetic", "n_frist": 3}, 8, 2)
    # a text key under the default source says which source takes it; a misspelt source is named
    with pytest.raises(DataError, match=r"data.path: .*\(a key of source 'text': set data.source: text\)"):
        build_datamodule({"path": "corpus/"}, 8, 2)
    with pytest.raises(DataError, match=r"data.sorce: .*\(did you mean data.source\?\)"):
        build_datamodule({"sorce": "text"}, 8, 2)


# ---- evaluation items -----------------------------------------------------------------------------------
def test_knowledge_questions_are_true_facts_in_frequency_bands():
    lang = SyntheticLanguage()
    items = knowledge_mc(lang, n_per_band=20, n_choices=4)
    json.dumps(items)
    assert {it["band"] for it in items} == {"head", "torso", "tail"}
    head = [it["probability"] for it in items if it["band"] == "head"]
    tail = [it["probability"] for it in items if it["band"] == "tail"]
    assert min(head) > max(tail)
    for it in items:
        first, last, rel = it["question"].split()
        f, l, r = (lang.word_id[w] - lang.offset[k] for w, k in ((first, "first"), (last, "last"), (rel, "relation")))
        assert it["choices"][it["label"]] == lang.words[lang.offset["object"] + lang.answer[f, l, r]]
        assert len(set(it["choices"])) == 4


def test_cloze_targets_are_bound_in_the_context():
    lang = SyntheticLanguage()
    items = cloze(lang, n_items=30, context_len=128)
    json.dumps(items)
    for it in items:
        words = it["context"].split()
        assert words[-2] == "what"
        var = words[-1]
        i = next(i for i in range(len(words) - 2) if words[i] == "let" and words[i + 1] == var)
        assert words[i + 2] == it["target"]
        assert it["distance"] == len(words) - (i + 2)
        lang.encode(it["context"])  # every word is in the language


@pytest.mark.parametrize("mode", ["easy", "standard"])
def test_needle_in_haystack_grid(mode):
    lang = SyntheticLanguage()
    items = needle_in_haystack(lang, context_lengths=(32, 96), depths=(0.0, 0.5, 1.0), mode=mode, n_per_cell=2)
    json.dumps(items)
    assert len(items) == 2 * 3 * 2
    for it in items:
        words = it["context"].split()
        lang.encode(it["context"] + " " + it["question"])
        assert it["context_length"] - 8 <= it["n_tokens"] <= it["context_length"]
        var = it["question"].split()[1]
        marker = "what" if mode == "easy" else "let"
        at = [i for i in range(len(words) - 2) if words[i] == marker and words[i + 1] == var]
        assert len(at) == 1 and words[at[0] + 2] == it["answer"]
        if it["depth"] == 0.0:
            assert at[0] == 0
        if it["depth"] == 1.0:
            assert at[0] == len(words) - 4
    with pytest.raises(DataError, match="mode"):
        needle_in_haystack(lang, mode="hard")


def test_associative_recall_items():
    lang = SyntheticLanguage()
    items = associative_recall(lang, n_items=5, n_pairs=6, n_queries=3)
    json.dumps(items)
    for it in items:
        words = it["context"].split()
        binding = {words[i + 1]: words[i + 2] for i in range(0, len(words), 4)}
        assert len(binding) == 6 and len(it["queries"]) == 3
        for q in it["queries"]:
            assert binding[q["question"].split()[1]] == q["answer"]
