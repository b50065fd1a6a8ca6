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
                                     knowledge_mc, mass_ranks, needle_in_haystack)

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


# ---- guards found by mutation: each test names what a mutant of linscale/data/synthetic.py got past ---------------
def test_language_parameters_at_their_limits_are_accepted_and_past_them_are_one_line_errors():
    """Each relation may take every object, the values may be every object, and the Zipf offset may be 0
    (pure Zipf); but more values than objects would index words outside the object group, a query needs
    bindings, and a document needs at least one whole token."""
    spec = LanguageSpec(n_objects=8, objects_per_relation=8, n_values=8, fact_zipf_offset=0.0)
    assert set(SyntheticLanguage(spec).relation_objects[0]) == set(range(8))
    for kwargs, field in [({"n_values": 200}, "n_values"), ({"doc_len": 0}, "doc_len"), ({"doc_len": 2.5}, "doc_len"),
                          ({"type_probs": (0.5, 0.2, 0.1, 0.0, 0.2)}, "type_probs"), ({"fact_zipf": 0.0}, "fact_zipf"),
                          ({"fact_zipf_offset": -1.0}, "fact_zipf_offset"),
                          ({"grammar_concentration": 0.0}, "grammar_concentration"),
                          # a flag is not a length, and numpy's seed refused -1 with a traceback
                          ({"doc_len": True}, "doc_len"), ({"world_seed": -1}, "world_seed"),
                          ({"world_seed": 1.5}, "world_seed"), ({"world_seed": True}, "world_seed")]:
        with pytest.raises(DataError, match=f"data.{field}") as err:
            LanguageSpec(**kwargs)
        assert "\n" not in str(err.value)
    assert LanguageSpec(world_seed=0).world_seed == 0 and LanguageSpec(doc_len=1).doc_len == 1
    with pytest.raises(DataError, match="query sentences need bind sentences"):
        LanguageSpec(type_probs=(0.5, 0.2, 0.1, 0.0, 0.2))


def test_relations_beyond_the_named_ones_are_distinct_pseudo_words():
    """More relations than RELATION_WORDS: the named ones first, then pseudo-words, none shared with
    another group (an id would otherwise decode to a word of the wrong kind)."""
    from linscale.data.synthetic import RELATION_WORDS

    spec = LanguageSpec(n_first=3, n_last=2, n_relations=len(RELATION_WORDS) + 6, n_objects=16,
                        objects_per_relation=4, n_values=8)
    lang = SyntheticLanguage(spec)
    relations = lang.words[lang.offset["relation"]:lang.offset["object"]]
    assert len(relations) == spec.n_relations and relations[:len(RELATION_WORDS)] == list(RELATION_WORDS)
    assert len(set(lang.words)) == lang.vocab_size == 2 + 7 + sum(
        getattr(spec, f"n_{k}") for k in ("first", "last", "relations", "objects", "adj", "noun", "verb", "vars"))
    assert lang.fact_words(spec.n_relations - 1)[2] == relations[-1]


def test_fact_probabilities_follow_zipf_mandelbrot_by_rank():
    """p(fact of rank i) ∝ (i + offset)^-zipf with i = 1, 2, ...: the top fact of the defaults holds about
    2 % of the mass (the figure LanguageSpec quotes)."""
    lang = SyntheticLanguage(SMALL)
    by_rank = lang.p_fact.ravel()[lang.fact_rank]
    weight = (np.arange(1, by_rank.size + 1) + SMALL.fact_zipf_offset) ** -SMALL.fact_zipf
    np.testing.assert_allclose(by_rank, weight / weight.sum(), rtol=1e-12)
    np.testing.assert_array_equal(lang.rank_of[lang.fact_rank], np.arange(by_rank.size))
    default = SyntheticLanguage()
    assert default.p_fact.max() == pytest.approx(0.0218, abs=5e-4)
    # a band up to the whole mass ends at the last fact, though the sorted masses sum to 1 - 7e-15 here
    assert mass_ranks(default, 0.9, 1.0)[1] == default.p_fact.size


def test_sentence_types_follow_the_sticky_chain_and_a_document_starts_unbiased():
    """P(type | previous) = (1 - s)·type_probs + s·[type == previous]; the first sentence of a document
    (previous type START) takes type_probs alone. The sampler and the exact recursion both read this."""
    from linscale.data.synthetic import START

    lang = SyntheticLanguage(SMALL)
    base, s = np.array(SMALL.type_probs), SMALL.stickiness
    prev = np.array([0, 1, 2, 3, 4, START])
    p = lang.type_probabilities(prev, np.full(6, 1))
    for row, t in zip(p[:5], range(5)):
        np.testing.assert_allclose(row, (1 - s) * base + s * np.eye(5)[t])
    np.testing.assert_allclose(p[5], base)


def test_the_same_spec_writes_the_same_text_until_language_version_is_bumped():
    """Every committed result and every cache of task items assumes a LanguageSpec writes the same text:
    a change to the generator (or to how rows are cut from documents) must bump LANGUAGE_VERSION."""
    import hashlib

    from linscale.data.synthetic import LANGUAGE_VERSION

    lang = SyntheticLanguage()
    docs, nll = lang.sample(np.random.default_rng(0), 8, 64)
    rows, row_nll = lang.sample_rows(np.random.default_rng(0), 4, 64)
    digest = [hashlib.sha256(a.tobytes() + b.tobytes()).hexdigest()[:16] for a, b in ((docs, nll), (rows, row_nll))]
    assert (LANGUAGE_VERSION, digest) == (2, ["dc3e58c68d04302e", "9d93fffae7cbbfa2"]), \
        "the language writes other text: bump LANGUAGE_VERSION and update these digests (and the results)"
    assert lang.expected_nll(64) == pytest.approx(1.612152, abs=1e-6)


def test_summary_and_unigram_entropy_are_of_the_labels_at_the_length_asked():
    lang = SyntheticLanguage(SMALL)
    summary = lang.summary(48)
    assert summary["seq_len"] == 48 and summary["bayes_loss"] == lang.expected_nll(48)
    assert (summary["vocab_size"], summary["n_facts"]) == (lang.vocab_size, 6 * 5 * 4)
    rows, _ = lang.sample_rows(np.random.default_rng([0, 0xC0DE]), 256, 48)
    counts = np.bincount(rows[:, 1:].ravel(), minlength=lang.vocab_size)  # labels: not the row's first <eod>
    p = counts[counts > 0] / counts.sum()
    assert summary["unigram_entropy"] == pytest.approx(float(-(p * np.log(p)).sum()), rel=1e-12)


def test_knowledge_items_use_every_label_every_choice_count_and_no_fact_twice():
    """The right answer is at every position (a model preferring the last choice is at chance), n_choices
    may be every object of a relation, and a band with fewer facts than asked gives each of them once."""
    lang = SyntheticLanguage(SMALL)
    items = knowledge_mc(lang, n_per_band=40, n_choices=4)
    assert {it["label"] for it in items} == {0, 1, 2, 3}
    full = knowledge_mc(lang, n_per_band=3, n_choices=SMALL.objects_per_relation)
    assert all(len(set(it["choices"])) == SMALL.objects_per_relation for it in full)
    small = knowledge_mc(lang, n_per_band=50, bands={"head": (0.0, 0.2)})
    ranks = [it["rank"] for it in small]
    assert len(ranks) == len(set(ranks)) < 50
    with pytest.raises(DataError, match="n_choices"):
        knowledge_mc(lang, n_choices=SMALL.objects_per_relation + 1)


def test_cloze_gives_as_many_items_as_asked():
    assert len(cloze(SyntheticLanguage(SMALL), n_items=5, context_len=64)) == 5


def test_needle_sits_at_its_depth_rounded_to_a_sentence():
    lang = SyntheticLanguage()
    depths = (0.0, 0.25, 0.4, 0.5, 0.75, 1.0)
    for it in needle_in_haystack(lang, context_lengths=(64, 96), depths=depths, mode="standard", n_per_cell=2):
        sentences = it["context"].rstrip(" .").split(" . ")
        at = next(i for i, s in enumerate(sentences) if s.startswith("let "))
        assert at == round(it["depth"] * (len(sentences) - 1)), it


def test_associative_recall_bounds_and_distinct_queries():
    lang = SyntheticLanguage(SMALL)
    items = associative_recall(lang, n_items=20, n_pairs=SMALL.n_vars, n_queries=SMALL.n_vars)
    for it in items:
        assert len({q["question"] for q in it["queries"]}) == SMALL.n_vars  # every pair asked once
    for kwargs, field in [({"n_pairs": SMALL.n_vars + 1}, "n_pairs"), ({"n_pairs": 2, "n_queries": 3}, "n_queries"),
                          ({"n_pairs": 2, "n_queries": 1, "gap": -1}, "gap")]:
        with pytest.raises(DataError, match=field):
            associative_recall(lang, **kwargs)


def test_write_eval_items_writes_each_set_of_the_seed_asked(tmp_path):
    from linscale.data.synthetic import write_eval_items

    lang = SyntheticLanguage(dataclasses.replace(SMALL, n_vars=8))  # the recall set binds 8 variables
    paths = write_eval_items(lang, tmp_path, seed=3, context_lengths=(32,))
    read = {p.stem: [json.loads(line) for line in p.read_text().splitlines()] for p in paths}
    assert read == {"knowledge_mc": knowledge_mc(lang, seed=3), "cloze": cloze(lang, seed=3),
                    "niah_easy": needle_in_haystack(lang, (32,), mode="easy", seed=3),
                    "niah_standard": needle_in_haystack(lang, (32,), mode="standard", seed=3),
                    "associative_recall": associative_recall(lang, seed=3)}
    assert not list(tmp_path.glob("*.tmp"))


def test_the_numbers_the_module_quotes_for_the_defaults_are_the_languages():
    """The module's docstring quotes the defaults' exact entropy rate and unigram entropy at three lengths
    (``linscale data`` prints them); they had gone stale (1.498 / 1.491 / 1.496) when the language changed."""
    import re

    import linscale.data.synthetic as synthetic

    doc = " ".join(synthetic.__doc__.split())
    quoted = re.search(r"(\d+) words; exact entropy rate (\d+\.\d+) / (\d+\.\d+) / (\d+\.\d+) nats per label for "
                       r"T = 128 / 256 / 512; unigram entropy (\d+\.\d+) / (\d+\.\d+) / (\d+\.\d+)", doc)
    assert quoted, "the docstring's numbers for the defaults moved: update this test"
    lang = SyntheticLanguage()
    lengths = (128, 256, 512)
    assert int(quoted[1]) == lang.vocab_size
    assert [float(quoted[i]) for i in (2, 3, 4)] == [round(lang.expected_nll(t), 3) for t in lengths]
    assert [float(quoted[i]) for i in (5, 6, 7)] == [round(lang.unigram_entropy(t), 2) for t in lengths]
