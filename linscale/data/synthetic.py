"""A synthetic language whose every token has a known probability: the default corpus of the study.

Why: a scaling law L(N, D) = E + A/N^α + B/D^β has an irreducible term E, the entropy of the text. For
real text E is unknown; for this language it is computed exactly, so the book can check whether a fit
recovers it. The language is built so that small models keep improving with parameters and tokens
over the CPU grid (it is not learned out) and so that recalling things from the context matters (the
paper's retrieval finding: softmax attention re-reads the context, a fixed-size recurrent state cannot).

The language
------------
A **world** (fixed by ``world_seed``, shared by every split) holds

* entities e = (first, last): ``n_first × n_last`` two-word names (pseudo-words such as ``bako tiru``);
* relations r (``n_relations`` English nouns: ``color``, ``city``, ...); each relation has its own set of
  ``objects_per_relation`` admissible objects out of ``n_objects`` pseudo-words;
* one **fact** per (entity, relation): object o(e, r), drawn uniformly from r's objects. The facts are
  ranked by a random permutation and fact i is mentioned with probability
  p_i ∝ (i + ``fact_zipf_offset``)^(−``fact_zipf``) (Zipf–Mandelbrot: a power-law tail, a flattened head). Frequent facts are seen often and learned first; rare ones need more tokens (D) and more
  memory (N), which is what makes the loss fall like a power law instead of saturating
  (the "quanta" picture of scaling: the loss left is the Zipf tail mass of the facts not yet learned);
* a small **grammar** of adjectives, nouns and verbs with sparse random transition tables.

A **document** is a sequence of sentences, cut after exactly ``doc_len`` tokens. Sentence types follow
a Markov chain (``type_probs``, mixed with ``stickiness`` towards repeating the previous type), and each
type starts with its own marker word, so the type is always visible from the prefix:

============  =====================================  ===========================================
type          form                                   entropy lives in
============  =====================================  ===========================================
fact          ``FIRST LAST REL OBJ .``               which fact (Zipf); OBJ is determined (0 nats)
fact_rev      ``the REL of FIRST LAST is OBJ .``     the same facts in another word order
filler        ``a ADJ NOUN VERB ADJ NOUN .``         the grammar (a first-order chain over slots)
bind          ``let VAR VAL .``                      an unbound variable (uniform) and a value
query         ``what VAR VAL .``                     a bound variable (uniform; VAL is determined), or,
                                                     with probability ``fresh_query_prob``, an unbound
                                                     one (uniform) with a new value, which binds it
============  =====================================  ===========================================

``bind`` introduces a binding inside the document and ``query`` asks for one later, at a distance that
varies up to the document length: the answer has probability 1 for a model that can look it up in its
context and costs up to log(``n_values``) nats for one that cannot. A query may also ask a variable not
bound yet (a "fresh" query, as a question-answer pair stated in passing): its value is new, and later
queries of that variable must repeat it. So a value can be stated in two forms, ``let VAR VAL`` and
``what VAR VAL``, and both are retrieved later in the document: the needle-in-a-haystack task's two
modes (standard: only the answer, ``let``; easy: the question and its answer, ``what``) are both in the
training distribution. A variable is bound at most once per document; ``bind`` is impossible once all
``n_vars`` are bound, a fresh query likewise, and a query of a bound variable before anything is bound
(the type distribution is renormalised over the possible types, which is visible from the prefix; with
``fresh_query_prob`` = 0 a query needs an earlier binding, the language of linscale 0.1).

Why the entropy is known exactly
--------------------------------
Every random choice of the generator is visible in the text it writes (the marker word gives the
sentence type, the names give the entity, ...), and nothing else is random. So the conditional
probability of each token given its prefix is just the probability with which the generator chose it,
e.g. p(LAST | FIRST) = p(e) / Σ_l p(first, l). The generator writes it next to every token
(``nll``: −log p in nats). Its expectation, the entropy rate, is computed exactly — no sampling — by
:meth:`SyntheticLanguage.expected_nll`, a forward recursion over the only state that matters
(position, previous sentence type, number of bound variables). ``tests/test_data_synthetic.py``
checks that the Monte-Carlo mean of the sampled ``nll`` agrees with it.

Sequences for training are rows of T+1 tokens ``<eod> doc <eod> doc ...`` (each document starts inside
its row, so the model always sees a document's whole prefix); inputs are row[:-1], labels row[1:]. The
``<eod>`` after a full document has probability 1 (the length is fixed); the first word of a document
has its unconditional probability.

Numbers for the defaults (``linscale data --seq-len T`` prints them): 393 words; exact entropy rate
1.590 / 1.586 / 1.575 nats per label for T = 128 / 256 / 512; unigram entropy 4.79 / 4.79 / 4.79. The
sampler writes 0.8–2.7 million tokens per second on one core (numpy, all documents of a block advance
one sentence per step), far more than CPU training consumes. At CPU scale the loss stays well above
the entropy: a 443k-parameter LLaMA after 0.8M tokens is 0.57 nats above it
(``benchmarks/check_synthetic_scaling.py``).

Where the reducible loss lives, and why it is learned gradually: (1) the grammar's transitions are
bigram statistics, learned first; (2) the Zipf distribution over facts must be learned for names and
relations (−log p of FIRST, LAST, REL); (3) the object of a fact has probability 1 but must be
memorised, fact by fact, frequent ones first: this is the power-law part, limited by parameters
(memory) and tokens (how often a rare fact is seen); (4) the answer of a ``query`` is a copy from the
context (an induction-head pattern: the value directly follows the variable in both ``let VAR VAL``
and ``what VAR VAL``), exact for attention at any distance but lossy for a fixed-size state that must
hold up to ``n_vars`` bindings.

Evaluation sets (plain JSON-able dicts of strings in this language): :func:`knowledge_mc` (multiple
choice questions on facts in frequency bands, the analogue of commonsense tasks), :func:`cloze` (the
answer of a ``query`` sentence, which needs the context: the analogue of LAMBADA),
:func:`needle_in_haystack` (modes ``easy`` and ``standard`` as in the paper) and
:func:`associative_recall` (multi-query associative recall); :func:`write_eval_items` writes them as JSONL.
Contexts are document text without the leading ``<eod>``; an adapter should put ``<eod>`` first, as in
training rows, where every document follows one.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from linscale.config import ConfigError

# Bumped whenever the same LanguageSpec starts producing different text (caches of task items key on it).
# 2: queries may ask unbound variables ("fresh" queries, fresh_query_prob).
LANGUAGE_VERSION = 2
EOD = "<eod>"
UNK = "<unk>"
SENTENCE_TYPES = ("fact", "fact_rev", "filler", "bind", "query")
FACT, FACT_REV, FILLER, BIND, QUERY = range(5)
START = 5  # the "previous type" at the start of a document
SENTENCE_LEN = np.array([5, 8, 7, 4, 4])  # tokens per sentence type (see the table above)
MAX_SENTENCE_LEN = int(SENTENCE_LEN.max())
FUNCTION_WORDS = ("the", "of", "is", "a", "let", "what", ".")
RELATION_WORDS = ("color", "city", "pet", "food", "job", "tool", "sport", "song", "friend", "car", "book",
                  "game", "drink", "plant", "star", "shape", "river", "team", "dance", "coin", "gem",
                  "bird", "tree", "fruit")

# Split names map to disjoint random streams (the world is shared, the documents are not).
SPLITS = {"train": 0, "validation": 1, "val": 1, "test": 2, "eval": 3}


class DataError(ConfigError):
    """Bad data settings or unreadable data; the message names the field, file or dataset."""


@dataclass(frozen=True)
class LanguageSpec:
    """Parameters of the synthetic language (all have defaults; the book varies them).

    The defaults give a vocabulary of 393 words, 65,536 facts and, for 128-token documents, an exact
    entropy rate of 1.590 nats/token (the pilot's record, ``results/pilot/pilot.csv``; 1.58 at 512
    tokens) against a unigram entropy of about 4.8 (see :meth:`SyntheticLanguage.summary`)."""
    n_first: int = 64  # first names; entities = n_first × n_last
    n_last: int = 64
    n_relations: int = 16
    n_objects: int = 128
    objects_per_relation: int = 64  # an unknown fact costs up to log(64) = 4.16 nats
    fact_zipf: float = 1.2  # p(fact of rank i) ∝ (i + fact_zipf_offset)^-fact_zipf over all n_first·n_last·n_relations facts
    fact_zipf_offset: float = 10.0  # flattens the head (Zipf–Mandelbrot): the top fact has 2%, not 22%, of the mass
    n_adj: int = 24
    n_noun: int = 32
    n_verb: int = 24
    grammar_concentration: float = 0.1  # Dirichlet concentration of the grammar's transition rows
    n_vars: int = 32  # in-context variables
    n_values: int = 64  # values a variable can be bound to (the first n_values objects)
    fresh_query_prob: float = 0.25  # a query asks an unbound variable (and binds it) with this probability
    type_probs: tuple = (0.30, 0.15, 0.10, 0.20, 0.25)  # fact, fact_rev, filler, bind, query
    stickiness: float = 0.3  # P(type) = (1 - s)·type_probs + s·[type == previous type]
    doc_len: int | None = None  # tokens per document; None: one document per training row (seq_len)
    world_seed: int = 0

    def __post_init__(self):
        for name in ("n_first", "n_last", "n_relations", "n_objects", "objects_per_relation", "n_adj",
                     "n_noun", "n_verb", "n_vars", "n_values"):
            value = getattr(self, name)
            if not _whole(value, 1):
                raise DataError(f"data.{name}: expected a positive integer, got {value!r}")
        if self.objects_per_relation > self.n_objects:
            raise DataError(f"data.objects_per_relation: {self.objects_per_relation} > n_objects={self.n_objects}")
        if self.n_values > self.n_objects:
            raise DataError(f"data.n_values: {self.n_values} > n_objects={self.n_objects}")
        if not self.fact_zipf > 0:
            raise DataError(f"data.fact_zipf: expected a positive number, got {self.fact_zipf!r}")
        if not self.fact_zipf_offset >= 0:
            raise DataError(f"data.fact_zipf_offset: expected a non-negative number, got {self.fact_zipf_offset!r}")
        if not self.grammar_concentration > 0:
            raise DataError(f"data.grammar_concentration: expected a positive number, got {self.grammar_concentration!r}")
        probs = tuple(float(p) for p in self.type_probs)
        if len(probs) != 5 or min(probs) < 0 or not math.isclose(sum(probs), 1.0, abs_tol=1e-6):
            raise DataError(f"data.type_probs: expected 5 non-negative numbers summing to 1 "
                            f"({', '.join(SENTENCE_TYPES)}), got {self.type_probs!r}")
        if probs[BIND] == 0 and probs[QUERY] > 0:
            raise DataError("data.type_probs: query sentences need bind sentences (bind probability is 0)")
        if not 0 <= self.fresh_query_prob < 1:
            raise DataError(f"data.fresh_query_prob: expected a number in [0, 1), got {self.fresh_query_prob!r}")
        if not 0 <= self.stickiness < 1:
            raise DataError(f"data.stickiness: expected a number in [0, 1), got {self.stickiness!r}")
        if self.doc_len is not None and not _whole(self.doc_len, 1):
            raise DataError(f"data.doc_len: expected a positive integer or null, got {self.doc_len!r}")
        # numpy seeds the world with it: a negative seed was its "expected non-negative integer" traceback
        if not _whole(self.world_seed, 0):
            raise DataError(f"data.world_seed: expected a whole number >= 0, got {self.world_seed!r}")
        object.__setattr__(self, "type_probs", probs)

    @classmethod
    def from_dict(cls, data: dict) -> "LanguageSpec":
        """The spec from a data dict (``source`` and keys that are not language parameters are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: (tuple(v) if k == "type_probs" else v) for k, v in data.items() if k in names}
        return cls(**kwargs)


def _whole(value, least: int) -> bool:
    """Whether ``value`` is an integer of at least ``least``, a YAML true or false being no count."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _pseudo_words(n: int, seed: int = 12345, exclude=()) -> list[str]:
    """n distinct pronounceable words (consonant-vowel syllables), the same for every world."""
    rng = np.random.default_rng(seed)
    consonants, vowels = list("bdfgklmnprstvz"), list("aeiou")
    words, seen = [], set(exclude)
    while len(words) < n:
        n_syl = 2 if rng.random() < 0.8 else 3
        w = "".join(consonants[rng.integers(len(consonants))] + vowels[rng.integers(len(vowels))]
                    for _ in range(n_syl))
        if w not in seen:
            seen.add(w)
            words.append(w)
    return words


def _entropy(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def _categorical(rng: np.random.Generator, cdf: np.ndarray) -> np.ndarray:
    """One draw per row of ``cdf`` (rows: cumulative probabilities ending at 1)."""
    u = rng.random(cdf.shape[0])
    return np.minimum((u[:, None] >= cdf).sum(1), cdf.shape[1] - 1)


def _mix_rows(rng, n_rows, n_cols, concentration):
    """Sparse random transition rows: Dirichlet(concentration) plus a 5% uniform floor (no zeros)."""
    rows = rng.dirichlet(np.full(n_cols, concentration), size=n_rows)
    return 0.95 * rows + 0.05 / n_cols


class SyntheticLanguage:
    """The world, the vocabulary and the sampler of one :class:`LanguageSpec`.

    >>> lang = SyntheticLanguage(LanguageSpec())
    >>> tokens, nll = lang.sample(np.random.default_rng(0), n_docs=2, length=12)
    >>> tokens.shape, nll.shape
    ((2, 12), (2, 12))
    """

    def __init__(self, spec: LanguageSpec | None = None):
        self.spec = spec = spec or LanguageSpec()
        rng = np.random.default_rng([spec.world_seed, 0x5EED])
        # ---- vocabulary ---------------------------------------------------------------------------------
        n_pseudo = spec.n_first + spec.n_last + spec.n_objects + spec.n_adj + spec.n_noun + spec.n_verb + spec.n_vars
        n_rel_words = min(spec.n_relations, len(RELATION_WORDS))
        relations = list(RELATION_WORDS[:n_rel_words])
        pseudo = _pseudo_words(n_pseudo + spec.n_relations - n_rel_words, exclude=set(FUNCTION_WORDS) | set(relations))
        relations += pseudo[n_pseudo:]
        groups, start = {}, 0
        for name, n in (("first", spec.n_first), ("last", spec.n_last), ("object", spec.n_objects),
                        ("adj", spec.n_adj), ("noun", spec.n_noun), ("verb", spec.n_verb), ("var", spec.n_vars)):
            groups[name] = pseudo[start:start + n]
            start += n
        groups["relation"] = relations
        self.words = [EOD, UNK, *FUNCTION_WORDS]
        self.offset = {}
        for name in ("first", "last", "relation", "object", "adj", "noun", "verb", "var"):
            self.offset[name] = len(self.words)
            self.words += groups[name]
        self.word_id = {w: i for i, w in enumerate(self.words)}
        self.fn = {w: self.word_id[w] for w in FUNCTION_WORDS}
        self.eod_id = self.word_id[EOD]
        # ---- the world: facts ---------------------------------------------------------------------------
        nf, nl, nr = spec.n_first, spec.n_last, spec.n_relations
        n_facts = nf * nl * nr
        rank_weight = (np.arange(1, n_facts + 1, dtype=np.float64) + spec.fact_zipf_offset) ** -spec.fact_zipf
        self.fact_rank = rng.permutation(n_facts)  # fact_rank[k] = flat index (first, last, rel) of rank k
        p_fact = np.empty(n_facts)
        p_fact[self.fact_rank] = rank_weight / rank_weight.sum()
        self.p_fact = p_fact.reshape(nf, nl, nr)  # p(first, last, rel)
        self.rank_of = np.empty(n_facts, dtype=np.int64)
        self.rank_of[self.fact_rank] = np.arange(n_facts)
        self.relation_objects = np.stack([rng.choice(spec.n_objects, spec.objects_per_relation, replace=False)
                                          for _ in range(nr)])  # (nr, objects_per_relation)
        self.answer = self.relation_objects[np.arange(nr)[None, None, :],
                                            rng.integers(spec.objects_per_relation, size=(nf, nl, nr))]  # (nf, nl, nr)
        self.fact_cdf = np.cumsum(self.p_fact.ravel())
        self.fact_cdf /= self.fact_cdf[-1]
        p_ent = self.p_fact.sum(2)  # p(first, last)
        p_first = p_ent.sum(1)
        p_rel = self.p_fact.sum((0, 1))
        p_rel_first = self.p_fact.sum(1).T  # p(rel, first): (nr, nf)
        with np.errstate(divide="ignore"):
            self._log_p_fact = np.log(self.p_fact)
            self._log_p_ent = np.log(p_ent)
            self._log_p_first = np.log(p_first)
            self._log_p_rel = np.log(p_rel)
            self._log_p_rel_first = np.log(p_rel_first)
        # ---- the grammar ---------------------------------------------------------------------------------
        self.p_adj = rng.dirichlet(np.ones(spec.n_adj))
        self.adj_noun = _mix_rows(rng, spec.n_adj, spec.n_noun, spec.grammar_concentration)
        self.noun_verb = _mix_rows(rng, spec.n_noun, spec.n_verb, spec.grammar_concentration)
        self.verb_adj = _mix_rows(rng, spec.n_verb, spec.n_adj, spec.grammar_concentration)
        # ---- sentence-type chain: M[prev, type], prev in 0..4 or START -----------------------------------
        base = np.array(spec.type_probs)
        self.type_matrix = np.vstack([(1 - spec.stickiness) * base + spec.stickiness * np.eye(5)[t] for t in range(5)]
                                     + [base])
        # ---- per-token entropies of each sentence type (expected −log p, given the type) -----------------
        h_fact, h_ent, h_first = _entropy(self.p_fact.ravel()), _entropy(p_ent.ravel()), _entropy(p_first)
        h_rel, h_rel_first = _entropy(p_rel), _entropy(p_rel_first.ravel())
        p_noun1 = self.p_adj @ self.adj_noun
        p_verb = p_noun1 @ self.noun_verb
        p_adj2 = p_verb @ self.verb_adj
        cond = lambda p_prev, rows: float(p_prev @ np.array([_entropy(r) for r in rows]))
        self.token_entropy = {
            FACT: [h_first, h_ent - h_first, h_fact - h_ent, 0.0, 0.0],
            FACT_REV: [0.0, h_rel, 0.0, h_rel_first - h_rel, h_fact - h_rel_first, 0.0, 0.0, 0.0],
            FILLER: [0.0, _entropy(self.p_adj), cond(self.p_adj, self.adj_noun), cond(p_noun1, self.noun_verb),
                     cond(p_verb, self.verb_adj), cond(p_adj2, self.adj_noun), 0.0],
            BIND: [0.0, None, math.log(spec.n_values), 0.0],  # None: log(#unbound variables)
            QUERY: [0.0, None, None, 0.0],  # None: depends on the number of bound variables
        }
        self._cdf = lambda rows: np.cumsum(rows, axis=-1) / rows.sum(-1, keepdims=True)
        self._adj_noun_cdf = self._cdf(self.adj_noun)
        self._noun_verb_cdf = self._cdf(self.noun_verb)
        self._verb_adj_cdf = self._cdf(self.verb_adj)
        self._p_adj_cdf = np.cumsum(self.p_adj) / self.p_adj.sum()

    # ------------------------------------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return len(self.words)

    @cached_property
    def tokenizer(self):
        """A ``tokenizers.Tokenizer``: WordLevel over :attr:`words`, whitespace pre-tokenizer, ``<eod>``."""
        from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers

        tok = Tokenizer(models.WordLevel(vocab=dict(self.word_id), unk_token=UNK))
        tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        tok.add_special_tokens([AddedToken(EOD, normalized=False), AddedToken(UNK, normalized=False)])
        return tok

    def decode(self, ids) -> str:
        """Token ids → text (words joined by single spaces)."""
        return " ".join(self.words[i] for i in np.asarray(ids).ravel())

    def encode(self, text: str) -> list[int]:
        """Text → token ids, strictly (an unknown word raises DataError naming it)."""
        try:
            return [self.word_id[w] for w in text.split()]
        except KeyError as err:
            raise DataError(f"text: {err.args[0]!r} is not a word of the synthetic language") from None

    def type_probabilities(self, prev: np.ndarray, n_bound: np.ndarray) -> np.ndarray:
        """P(next sentence type | previous type, number of bound variables): (n, 5), rows sum to 1."""
        p = self.type_matrix[prev].copy()
        p[:, BIND] *= n_bound < self.spec.n_vars
        if self.spec.fresh_query_prob == 0:  # every query needs a bound variable
            p[:, QUERY] *= n_bound > 0
        return p / p.sum(1, keepdims=True)

    def fresh_probability(self, n_bound: np.ndarray) -> np.ndarray:
        """P(a query asks an unbound variable | number of bound variables): ``fresh_query_prob``, or 1
        when nothing is bound yet (a query is then necessarily fresh), or 0 when everything is bound."""
        n_bound = np.asarray(n_bound)
        q = self.spec.fresh_query_prob
        p = np.full(n_bound.shape, q, dtype=np.float64)
        if q > 0:
            p[n_bound == 0] = 1.0
        p[n_bound >= self.spec.n_vars] = 0.0
        return p

    # ------------------------------------------------------------------------------------------------------
    def sample(self, rng: np.random.Generator, n_docs: int, length: int) -> tuple[np.ndarray, np.ndarray]:
        """``n_docs`` documents of ``length`` tokens: (tokens int32 [n, length], nll float64 [n, length]),
        nll[i, t] = −log p(tokens[i, t] | tokens[i, :t]) in nats. Vectorised over documents: every step
        appends one sentence to every unfinished document."""
        spec = self.spec
        n = n_docs
        tokens = np.zeros((n, length + MAX_SENTENCE_LEN), dtype=np.int32)
        nll = np.zeros((n, length + MAX_SENTENCE_LEN), dtype=np.float64)
        pos = np.zeros(n, dtype=np.int64)
        prev = np.full(n, START, dtype=np.int64)
        n_bound = np.zeros(n, dtype=np.int64)
        bound = np.zeros((n, spec.n_vars), dtype=bool)
        value = np.zeros((n, spec.n_vars), dtype=np.int64)
        fn, off = self.fn, self.offset
        while True:
            active = np.flatnonzero(pos < length)
            if active.size == 0:
                break
            p_type = self.type_probabilities(prev[active], n_bound[active])
            kind = _categorical(rng, np.cumsum(p_type, 1))
            lp_kind = np.log(p_type[np.arange(active.size), kind])
            for t in range(5):
                sel = kind == t
                idx = active[sel]
                k = idx.size
                if k == 0:
                    continue
                toks = np.zeros((k, SENTENCE_LEN[t]), dtype=np.int32)
                lp = np.zeros((k, SENTENCE_LEN[t]))
                if t in (FACT, FACT_REV):
                    flat = np.searchsorted(self.fact_cdf, rng.random(k), side="right")
                    flat = np.minimum(flat, self.fact_cdf.size - 1)
                    f, l, r = np.unravel_index(flat, self.p_fact.shape)
                    obj = self.answer[f, l, r]
                    if t == FACT:  # FIRST LAST REL OBJ .
                        toks[:] = np.stack([off["first"] + f, off["last"] + l, off["relation"] + r,
                                            off["object"] + obj, np.full(k, fn["."])], 1)
                        lp[:, 0] = self._log_p_first[f]
                        lp[:, 1] = self._log_p_ent[f, l] - self._log_p_first[f]
                        lp[:, 2] = self._log_p_fact[f, l, r] - self._log_p_ent[f, l]
                    else:  # the REL of FIRST LAST is OBJ .
                        toks[:] = np.stack([np.full(k, fn["the"]), off["relation"] + r, np.full(k, fn["of"]),
                                            off["first"] + f, off["last"] + l, np.full(k, fn["is"]),
                                            off["object"] + obj, np.full(k, fn["."])], 1)
                        lp[:, 1] = self._log_p_rel[r]
                        lp[:, 3] = self._log_p_rel_first[r, f] - self._log_p_rel[r]
                        lp[:, 4] = self._log_p_fact[f, l, r] - self._log_p_rel_first[r, f]
                elif t == FILLER:  # a ADJ NOUN VERB ADJ NOUN .
                    a1 = _categorical(rng, np.broadcast_to(self._p_adj_cdf, (k, spec.n_adj)))
                    n1 = _categorical(rng, self._adj_noun_cdf[a1])
                    v = _categorical(rng, self._noun_verb_cdf[n1])
                    a2 = _categorical(rng, self._verb_adj_cdf[v])
                    n2 = _categorical(rng, self._adj_noun_cdf[a2])
                    toks[:] = np.stack([np.full(k, fn["a"]), off["adj"] + a1, off["noun"] + n1, off["verb"] + v,
                                        off["adj"] + a2, off["noun"] + n2, np.full(k, fn["."])], 1)
                    lp[:, 1] = np.log(self.p_adj[a1])
                    lp[:, 2] = np.log(self.adj_noun[a1, n1])
                    lp[:, 3] = np.log(self.noun_verb[n1, v])
                    lp[:, 4] = np.log(self.verb_adj[v, a2])
                    lp[:, 5] = np.log(self.adj_noun[a2, n2])
                elif t == BIND:  # let VAR VAL .
                    keys = rng.random((k, spec.n_vars))
                    keys[bound[idx]] = -1.0  # uniform over the unbound variables
                    var = keys.argmax(1)
                    val = rng.integers(spec.n_values, size=k)
                    lp[:, 1] = -np.log(spec.n_vars - n_bound[idx])
                    lp[:, 2] = -math.log(spec.n_values)
                    bound[idx, var] = True
                    value[idx, var] = val
                    n_bound[idx] += 1
                    toks[:] = np.stack([np.full(k, fn["let"]), off["var"] + var, off["object"] + val,
                                        np.full(k, fn["."])], 1)
                else:  # what VAR VAL .
                    p_fresh = self.fresh_probability(n_bound[idx])
                    fresh = rng.random(k) < p_fresh if spec.fresh_query_prob > 0 else np.zeros(k, dtype=bool)
                    keys = rng.random((k, spec.n_vars))
                    # uniform over the unbound variables (fresh) or over the bound ones
                    keys[bound[idx] == fresh[:, None]] = -1.0
                    var = keys.argmax(1)
                    with np.errstate(divide="ignore"):  # log 0 only on the branch np.where drops
                        lp[:, 1] = np.where(fresh, np.log(p_fresh) - np.log(np.maximum(spec.n_vars - n_bound[idx], 1)),
                                            np.log1p(-p_fresh) - np.log(np.maximum(n_bound[idx], 1)))
                    val = np.where(fresh, rng.integers(spec.n_values, size=k), value[idx, var])
                    lp[:, 2] = np.where(fresh, -math.log(spec.n_values), 0.0)
                    bound[idx[fresh], var[fresh]] = True
                    value[idx[fresh], var[fresh]] = val[fresh]
                    n_bound[idx[fresh]] += 1
                    toks[:] = np.stack([np.full(k, fn["what"]), off["var"] + var, off["object"] + val,
                                        np.full(k, fn["."])], 1)
                lp[:, 0] += lp_kind[sel]
                cols = pos[idx, None] + np.arange(SENTENCE_LEN[t])
                tokens[idx[:, None], cols] = toks
                nll[idx[:, None], cols] = -lp
            pos[active] += SENTENCE_LEN[kind]
            prev[active] = kind
        return tokens[:, :length], nll[:, :length]

    def sample_rows(self, rng: np.random.Generator, n_rows: int, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
        """Training rows of ``seq_len + 1`` tokens ``<eod> doc <eod> doc ...`` (the last document cut off)
        and the nll of each position (0 at position 0, which is never a label, and at each ``<eod>``)."""
        width = seq_len + 1
        if n_rows == 0:  # `linscale data --sample 0`: the summary (or the eval items) without a sample
            return np.zeros((0, width), dtype=np.int32), np.zeros((0, width))
        doc_len = min(self.spec.doc_len or seq_len, seq_len)
        per_row = math.ceil(width / (doc_len + 1))
        docs, nll = self.sample(rng, n_rows * per_row, doc_len)
        rows = np.zeros((n_rows, per_row, doc_len + 1), dtype=np.int32)
        row_nll = np.zeros((n_rows, per_row, doc_len + 1))
        rows[:, :, 0] = self.eod_id
        rows[:, :, 1:] = docs.reshape(n_rows, per_row, doc_len)
        row_nll[:, :, 1:] = nll.reshape(n_rows, per_row, doc_len)
        return rows.reshape(n_rows, -1)[:, :width], row_nll.reshape(n_rows, -1)[:, :width]

    # ------------------------------------------------------------------------------------------------------
    def position_entropy(self, length: int) -> np.ndarray:
        """Exact expected −log p of the token at each position 0..length−1 of a document: [length].

        A forward recursion over the state (position, previous type, number of bound variables); each
        sentence adds its per-token entropies (:attr:`token_entropy`) and the entropy of its type choice
        to the positions it covers, weighted by the probability of being in that state."""
        nv = self.spec.n_vars
        e = np.zeros(length + MAX_SENTENCE_LEN)
        mass = np.zeros((length + MAX_SENTENCE_LEN, 6, nv + 1))  # P(a sentence starts at pos in state)
        mass[0, START, 0] = 1.0
        nb = np.arange(nv + 1)
        prevs = np.repeat(np.arange(6), nv + 1)
        nbs = np.tile(nb, 6)
        p_type = self.type_probabilities(prevs, nbs).reshape(6, nv + 1, 5)
        with np.errstate(divide="ignore", invalid="ignore"):
            type_nll = np.where(p_type > 0, -np.log(p_type), 0.0)
            log_unbound = np.log(np.maximum(nv - nb, 1))
            log_bound = np.log(np.maximum(nb, 1))
        # A query: fresh (an unbound variable, uniform, and a new value) with probability f, else a bound
        # variable (uniform) whose value is determined. Entropy of VAR and VAL by bound count.
        fresh = self.fresh_probability(nb)
        h_fresh = -sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1)), 0.0) for p in (fresh, 1 - fresh))
        query_var = h_fresh + fresh * log_unbound + (1 - fresh) * log_bound
        query_val = fresh * math.log(self.spec.n_values)
        for pos in range(length):
            s = mass[pos]
            if not s.any():
                continue
            for t in range(5):
                m = s * p_type[:, :, t]  # (6, nv+1)
                total = m.sum()
                if total == 0:
                    continue
                by_nb = m.sum(0)
                e[pos] += (m * type_nll[:, :, t]).sum()
                for j, h in enumerate(self.token_entropy[t]):
                    if h is None:
                        per_nb = log_unbound if t == BIND else query_var if j == 1 else query_val
                        e[pos + j] += by_nb @ per_nb
                    else:
                        e[pos + j] += total * h
                nxt = pos + SENTENCE_LEN[t]
                if t == BIND:
                    mass[nxt, t, 1:] += by_nb[:-1]
                elif t == QUERY:  # a fresh query binds its variable
                    mass[nxt, t, 1:] += (by_nb * fresh)[:-1]
                    mass[nxt, t, :] += by_nb * (1 - fresh)
                else:
                    mass[nxt, t, :] += by_nb
        return e[:length]

    def expected_nll(self, seq_len: int) -> float:
        """The exact entropy rate (nats per label) of training rows of ``seq_len`` labels: the loss of the
        ideal predictor, E in the scaling law, for this language at this sequence length."""
        doc_len = min(self.spec.doc_len or seq_len, seq_len)
        cum = np.concatenate([[0.0], np.cumsum(self.position_entropy(doc_len))])
        total, labels = 0.0, seq_len
        while labels > 0:  # each document: doc_len labels then a certain <eod>
            take = min(doc_len, labels)
            total += cum[take]
            labels -= take + 1
        return float(total / seq_len)

    def unigram_entropy(self, seq_len: int, n_rows: int = 256, seed: int = 0) -> float:
        """Entropy of the token frequencies (the loss of the best context-free predictor), estimated on
        ``n_rows`` training rows."""
        rows, _ = self.sample_rows(np.random.default_rng([seed, 0xC0DE]), n_rows, seq_len)
        counts = np.bincount(rows[:, 1:].ravel(), minlength=self.vocab_size)
        return _entropy(counts / counts.sum())

    def summary(self, seq_len: int = 256) -> dict:
        """The numbers the book quotes: vocabulary size, number of facts, exact entropy rate, unigram entropy."""
        return {"vocab_size": self.vocab_size, "n_facts": int(self.p_fact.size), "seq_len": seq_len,
                "bayes_loss": self.expected_nll(seq_len), "unigram_entropy": self.unigram_entropy(seq_len)}

    # ---- helpers for evaluation items ------------------------------------------------------------------
    def fact_words(self, flat: int) -> tuple[str, str, str, str]:
        f, l, r = np.unravel_index(flat, self.p_fact.shape)
        return (self.words[self.offset["first"] + f], self.words[self.offset["last"] + l],
                self.words[self.offset["relation"] + r], self.words[self.offset["object"] + self.answer[f, l, r]])


# ================================================================================================================
# Evaluation items: lists of plain dicts of strings in the language (linscale.eval.items caches them)
# ================================================================================================================

FREQUENCY_BANDS = ("head", "torso", "tail")
# The bands as intervals of the cumulative probability mass of the facts ranked by frequency: head = the
# facts holding the first 50 % of the mass, torso = the next 40 %, tail = the last 10 %. The evaluation
# suites choose their own (linscale/eval/difficulty.yaml) to keep every band off ceiling and chance.
MASS_BANDS = {"head": (0.0, 0.5), "torso": (0.5, 0.9), "tail": (0.9, 1.0)}


# ---------------------------------------------------------------------------------------------------------
# Token roles: what each token of a document is, so a model's loss can be read skill by skill.

# The role of each position of each sentence type (the table at the top), by the skill it asks for.
# "start" is a sentence's first token: for a fact it is also the entity's first name, so the choice of
# the next sentence type and of the fact are in it; "determined" tokens have probability 1 for the
# generator once the sentence type is known (".", "of", "is", and the document end at doc_len).
ROLES = ("start", "fact_choice", "fact_object", "grammar", "binding", "query_variable", "query_value",
         "determined")
ROLE_LABELS = {  # short names for tables and figure panels
    "start": "sentence start",
    "fact_choice": "which fact",
    "fact_object": "a fact's object",
    "grammar": "filler grammar",
    "binding": "a new binding",
    "query_variable": "a query's variable",
    "query_value": "a query's answer",
    "determined": "determined words",
}
_SENTENCE_ROLES = {  # sentence type -> the role of its tokens, position by position
    FACT: ("start", "fact_choice", "fact_choice", "fact_object", "determined"),
    FACT_REV: ("start", "fact_choice", "determined", "fact_choice", "fact_choice", "determined",
               "fact_object", "determined"),
    FILLER: ("start", "grammar", "grammar", "grammar", "grammar", "grammar", "determined"),
    BIND: ("start", "binding", "binding", "determined"),
    QUERY: ("start", "query_variable", "query_value", "determined"),
}


def token_roles(lang: SyntheticLanguage, rows: np.ndarray) -> np.ndarray:
    """The role (an index into ``ROLES``) of every token of rows of this language ([R, T] ids, as
    :meth:`SyntheticLanguage.sample_rows` writes them: documents after ``<eod>``, possibly cut).

    A sentence starts after ``<eod>`` or ``.``; its first token gives its type (``the``, ``a``, ``let``,
    ``what``, or a first name for a fact), and a token's position in its sentence gives its role. So
    the mean loss of a model over a set of labels splits exactly into one mean per role, weighted by
    the share of the labels each role has (:mod:`linscale.eval.roles`)."""
    rows = np.asarray(rows)
    if rows.ndim != 2:
        raise DataError(f"rows: expected a 2-D array of token ids, got shape {rows.shape}")
    is_eod = rows == lang.eod_id
    starts = np.zeros(rows.shape, dtype=bool)
    starts[:, 1:] = is_eod[:, :-1] | (rows[:, :-1] == lang.fn["."])
    starts[:, 0] = ~is_eod[:, 0]  # a row that does not begin with <eod> begins a sentence (best guess)
    starts &= ~is_eod
    position = np.arange(rows.shape[1])
    first = np.maximum.accumulate(np.where(starts, position, 0), axis=1)  # each token's sentence start
    offset = position - first
    marker = np.take_along_axis(rows, first, axis=1)
    kind = np.full(rows.shape, FACT)
    for word, sentence in (("the", FACT_REV), ("a", FILLER), ("let", BIND), ("what", QUERY)):
        kind[marker == lang.fn[word]] = sentence
    table = np.full((len(SENTENCE_TYPES), MAX_SENTENCE_LEN + 1), ROLES.index("determined"))
    for sentence, names in _SENTENCE_ROLES.items():
        table[sentence, :len(names)] = [ROLES.index(name) for name in names]
    roles = table[kind, np.minimum(offset, MAX_SENTENCE_LEN)]
    roles[is_eod] = ROLES.index("determined")
    return roles


def mass_ranks(lang: SyntheticLanguage, lo: float, hi: float) -> tuple[int, int]:
    """The Zipf ranks [first, last) of the facts between cumulative probability mass ``lo`` and ``hi``
    (0 <= lo < hi <= 1): the fact whose mass straddles an edge belongs to the band below it."""
    if not 0 <= lo < hi <= 1:
        raise DataError(f"knowledge band: expected 0 <= lo < hi <= 1 (cumulative mass), got ({lo}, {hi})")
    cum = np.cumsum(np.sort(lang.p_fact.ravel())[::-1])
    first = 0 if lo == 0 else int(np.searchsorted(cum, lo)) + 1
    last = cum.size if hi >= 1 else int(np.searchsorted(cum, hi)) + 1
    return first, max(first, last)


def knowledge_mc(lang: SyntheticLanguage, n_per_band: int = 100, n_choices: int = 4, seed: int = 0,
                 bands: dict | None = None) -> list[dict]:
    """Multiple-choice questions on facts: ``question`` "FIRST LAST REL" (the start of a ``fact``
    sentence), ``choices`` objects of that relation (the right one and distractors), ``label`` the index
    of the right one; ``band`` says how frequent the fact is, ``rank`` its Zipf rank. ``bands``:
    {name: (lo, hi)} intervals of cumulative probability mass (default :data:`MASS_BANDS`); the facts of
    a band are drawn uniformly by rank, without replacement. The analogue of the paper's commonsense
    tasks: knowledge learned in training."""
    rng = np.random.default_rng([seed, 0xA11])
    items = []
    opr = lang.spec.objects_per_relation
    if not 2 <= n_choices <= opr:
        raise DataError(f"n_choices: expected 2..objects_per_relation={opr}, got {n_choices}")
    for band, (lo_mass, hi_mass) in (MASS_BANDS if bands is None else bands).items():
        lo, hi = mass_ranks(lang, lo_mass, hi_mass)
        for rank in rng.choice(np.arange(lo, hi), size=min(n_per_band, hi - lo), replace=False):
            flat = int(lang.fact_rank[rank])
            first, last, rel, obj = lang.fact_words(flat)
            r = np.unravel_index(flat, lang.p_fact.shape)[2]
            right = lang.word_id[obj] - lang.offset["object"]
            others = [o for o in lang.relation_objects[r] if o != right]
            choices = [int(o) for o in rng.choice(others, n_choices - 1, replace=False)]
            label = int(rng.integers(n_choices))
            choices.insert(label, right)
            items.append({"question": f"{first} {last} {rel}",
                          "choices": [lang.words[lang.offset["object"] + o] for o in choices],
                          "label": label, "band": band, "rank": int(rank),
                          "probability": float(lang.p_fact.ravel()[flat])})
    return items


def cloze(lang: SyntheticLanguage, n_items: int = 200, context_len: int = 256, seed: int = 0) -> list[dict]:
    """Cloze items that need the context (the analogue of LAMBADA): ``context`` is a document up to
    "what VAR", ``target`` the value bound to VAR earlier in it ("let VAR VAL ."), ``distance`` the number
    of tokens from the bound value to the target. Only the first question about a variable is used, so
    the answer must come from the binding, not from an earlier answer. One item per document."""
    rng = np.random.default_rng([seed, SPLITS["eval"], 0xC10])
    items: list[dict] = []
    what, let = lang.fn["what"], lang.fn["let"]
    while len(items) < n_items:
        docs, _ = lang.sample(rng, 64, context_len)
        for doc in docs:
            starts = np.flatnonzero(doc[:-2] == what)  # "what VAR VAL": a query whose answer is in the document
            seen = set()
            for s in starts:
                var = int(doc[s + 1])
                if var in seen:
                    continue
                seen.add(var)
                binds = np.flatnonzero((doc[:s] == let) & (doc[1:s + 1] == var))
                if binds.size == 0:
                    continue
                items.append({"context": lang.decode(doc[:s + 2]), "target": lang.words[doc[s + 2]],
                              "distance": int(s + 2 - (binds[0] + 2))})
                break
            if len(items) == n_items:
                break
    return items


def first_requeries(lang: SyntheticLanguage, docs: np.ndarray) -> list[dict]:
    """Where documents of this language ask a bound variable again: for every variable a document states
    and later queries, the first such query, whose answer can only be copied from the statement (a
    variable is bound at most once, and a later query could copy an earlier answer instead, so only the
    first counts, as in :func:`cloze`). ``binder`` says how the value was stated: ``let`` (``let VAR
    VAL .``, NIAH standard's needle) or ``what`` (a fresh query ``what VAR VAL .``, NIAH easy's needle).

    docs: [n, length] token ids of whole documents (:meth:`SyntheticLanguage.sample`; a query cut off by
    the document's end is skipped). Fields: doc, position (of the answer in its document), answer (its
    token id), binder, distance (answer position minus the stated value's position)."""
    docs = np.asarray(docs)
    if docs.ndim != 2:
        raise DataError(f"docs: expected a 2-D array of token ids, got shape {docs.shape}")
    let, what = lang.fn["let"], lang.fn["what"]
    lo, hi = lang.offset["var"], lang.offset["var"] + lang.spec.n_vars
    items = []
    for d, doc in enumerate(docs):
        # a variable's token appears only as the second word of a let or what sentence
        at = [t for t in np.flatnonzero((doc >= lo) & (doc < hi)) if t > 0 and doc[t - 1] in (let, what)]
        first: dict[int, int] = {}
        for t in at:
            var = int(doc[t])
            if var not in first:
                first[var] = t
                continue
            if first[var] is None or t + 1 >= len(doc):
                continue
            stated = first[var]
            if doc[t + 1] != doc[stated + 1]:
                raise DataError(f"docs[{d}]: a query at {t} answers {lang.words[doc[t + 1]]!r}, the statement at "
                                f"{stated} {lang.words[doc[stated + 1]]!r}: not a document of this language")
            items.append({"doc": d, "position": int(t + 1), "answer": int(doc[t + 1]),
                          "binder": "let" if doc[stated - 1] == let else "what", "distance": int(t - stated)})
            first[var] = None  # its first re-query is taken; later ones could copy an earlier answer
    return items


def _haystack(lang: SyntheticLanguage, rng, n_tokens: int) -> list[np.ndarray]:
    """Whole sentences of knowledge and grammar only (no bindings), at least ``n_tokens`` tokens."""
    sub = lang.__dict__.get("_haystack_language")
    if sub is None:  # the same world, without bind and query sentences
        sub = SyntheticLanguage(dataclasses.replace(lang.spec, type_probs=(0.4, 0.2, 0.4, 0.0, 0.0)))
        lang.__dict__["_haystack_language"] = sub
    doc, _ = sub.sample(rng, 1, n_tokens + MAX_SENTENCE_LEN)
    doc = doc[0]
    ends = np.flatnonzero(doc == lang.fn["."]) + 1
    return np.split(doc[: ends[-1]], ends[:-1])


def needle_in_haystack(lang: SyntheticLanguage, context_lengths=(64, 128, 256, 512),
                       depths=(0.0, 0.25, 0.5, 0.75, 1.0), mode: str = "easy", n_per_cell: int = 4,
                       seed: int = 0, paired: bool = True) -> list[dict]:
    """Needle-in-a-haystack items on a grid of context lengths (tokens, question included) × depths
    (0 = the needle first, 1 = last).

    The haystack is knowledge and grammar sentences; the needle binds a variable; the question at the
    end is "what VAR" and the answer its value. Modes as in the paper (§6): ``easy`` puts question and
    answer both in the haystack (needle "what VAR VAL ."), ``standard`` only the answer (needle
    "let VAR VAL ."). Fields: context_length, depth, mode, context, question, answer, n_tokens.

    ``paired`` (the default): the k-th item of either mode has the same variable, value, haystack and
    depth, and the two needles have the same length, so the modes differ only in the needle's first word
    and easy-minus-standard is measured on identical haystacks (a paired comparison). ``paired=False``
    draws each mode from its own stream, as the items of linscale 0.1 before 2026-12-04 did."""
    if mode not in ("easy", "standard"):
        raise DataError(f"mode: expected 'easy' or 'standard', got {mode!r}")
    stream = [seed, SPLITS["eval"], 0x4EED] + ([] if paired else [("easy", "standard").index(mode)])
    rng = np.random.default_rng(stream)
    items = []
    for length in context_lengths:
        for depth in depths:
            for _ in range(n_per_cell):
                var = lang.words[lang.offset["var"] + int(rng.integers(lang.spec.n_vars))]
                val = lang.words[lang.offset["object"] + int(rng.integers(lang.spec.n_values))]
                needle = f"what {var} {val} ." if mode == "easy" else f"let {var} {val} ."
                question = f"what {var}"
                budget = int(length) - len(needle.split()) - len(question.split())
                hay = _haystack(lang, rng, max(budget, 1))
                while hay and sum(map(len, hay)) > budget:
                    hay.pop()
                at = int(round(depth * len(hay)))
                parts = [lang.decode(h) for h in hay[:at]] + [needle] + [lang.decode(h) for h in hay[at:]]
                context = " ".join(parts)
                items.append({"context_length": int(length), "depth": float(depth), "mode": mode,
                              "context": context, "question": question, "answer": val,
                              "n_tokens": len(context.split()) + len(question.split())})
    return items


def associative_recall(lang: SyntheticLanguage, n_items: int = 100, n_pairs: int = 8, n_queries: int = 4,
                       seed: int = 0, gap: int = 0) -> list[dict]:
    """Multi-query associative recall: ``context`` binds ``n_pairs`` distinct variables ("let VAR VAL ."
    ...), then (``gap`` > 0) up to ``gap`` tokens of haystack sentences (facts and grammar, as in
    :func:`needle_in_haystack`); ``queries`` asks for ``n_queries`` of them: a list of {"question":
    "what VAR", "answer": VAL, "distance": tokens from the bound value to the answer when the question
    directly follows the context}. Score each query on its own (context + " " + question → answer):
    a model must find which of the ``n_pairs`` values belongs to the variable asked, where NIAH has one."""
    if n_pairs > lang.spec.n_vars:
        raise DataError(f"n_pairs: {n_pairs} > n_vars={lang.spec.n_vars}")
    if n_queries > n_pairs:
        raise DataError(f"n_queries: {n_queries} > n_pairs={n_pairs}")
    if gap < 0:
        raise DataError(f"gap: expected a non-negative number of tokens, got {gap}")
    rng = np.random.default_rng([seed, SPLITS["eval"], 0xA55])
    items = []
    for _ in range(n_items):
        var_ids = rng.choice(lang.spec.n_vars, n_pairs, replace=False)
        val_ids = rng.integers(lang.spec.n_values, size=n_pairs)
        vars_ = [lang.words[lang.offset["var"] + int(v)] for v in var_ids]
        vals = [lang.words[lang.offset["object"] + int(v)] for v in val_ids]
        context = " ".join(f"let {v} {x} ." for v, x in zip(vars_, vals))
        filler = 0
        if gap > 0:
            hay = _haystack(lang, rng, gap)
            while hay and sum(map(len, hay)) > gap:
                hay.pop()
            filler = int(sum(map(len, hay)))
            context = " ".join([context, *(lang.decode(h) for h in hay)])
        asked = rng.choice(n_pairs, n_queries, replace=False)
        # the value of pair i is token 4i + 2; the answer follows context + "what VAR"
        queries = [{"question": f"what {vars_[i]}", "answer": vals[i], "distance": int(4 * (n_pairs - i) + filler)}
                   for i in asked]
        items.append({"context": context, "n_pairs": n_pairs, "gap": filler, "queries": queries})
    return items


def write_eval_items(lang: SyntheticLanguage, out_dir, seed: int = 0, context_lengths=(64, 128, 256, 512)) -> list:
    """Write the default evaluation sets as JSONL files in ``out_dir`` (atomically, one file per set):
    knowledge_mc, cloze, niah_easy, niah_standard, associative_recall. Returns the paths."""
    import json
    import os
    from pathlib import Path

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sets = {"knowledge_mc": knowledge_mc(lang, seed=seed), "cloze": cloze(lang, seed=seed),
            "niah_easy": needle_in_haystack(lang, context_lengths, mode="easy", seed=seed),
            "niah_standard": needle_in_haystack(lang, context_lengths, mode="standard", seed=seed),
            "associative_recall": associative_recall(lang, seed=seed)}
    paths = []
    for name, items in sets.items():
        path = out / f"{name}.jsonl"
        tmp = path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(json.dumps(it) + "\n" for it in items))
        os.replace(tmp, path)
        paths.append(path)
    return paths


__all__ = ["LanguageSpec", "write_eval_items", "SyntheticLanguage", "DataError", "SENTENCE_TYPES", "EOD", "knowledge_mc", "cloze",
           "first_requeries",
           "token_roles", "ROLES", "ROLE_LABELS",
           "needle_in_haystack", "associative_recall", "FREQUENCY_BANDS", "SPLITS"]
