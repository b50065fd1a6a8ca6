"""Model configuration: one dataclass for all four architectures, validated on construction.

A config names the architecture and the shape of the shared skeleton (paper Appendix A.1):
``n_layer`` pre-norm blocks of width ``d_model`` with ``n_head`` heads and a GLU channel mixer of
width ``d_ffn``. Architecture-specific knobs (TNL's decay schedule, cosFormer2's TPE, ...) are plain
fields with defaults; they are ignored by the architectures they do not concern.

Bad values raise :class:`ConfigError` with a one-line message naming the field.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

ARCHITECTURES = ("llama", "tnl", "hgrn2", "cosformer2")
# Two meanings of "linear": every architecture whose token mixer is linear (an added one joins it, and so
# its models, FLOP formulas and benchmarks), and the paper's three linear models, whom its claims and its
# context ablation (Table 6) are about (an added architecture is compared, not judged)
LINEAR_ARCHITECTURES = ("tnl", "hgrn2", "cosformer2")
PAPER_LINEAR_ARCHITECTURES = ("tnl", "hgrn2", "cosformer2")
# How the book and the verdicts write each name (an added architecture needs one; tests/test_flops.py checks)
ARCH_LABELS = {"llama": "LLaMA", "tnl": "TNL", "hgrn2": "HGRN2", "cosformer2": "cosFormer2"}
DECAY_SCHEDULES = ("alibi", "paper")
MIXER_MODES = ("chunk", "naive", "recurrent")


def arch_label(arch: str) -> str:
    """Display name of an architecture (``hgrn2`` -> ``HGRN2``)."""
    return ARCH_LABELS.get(arch, arch)


# Counts, lists and ranges as the book's prose writes them: here, below both the chapters' glue (linscale.book) and
# the sentences linscale.findings builds, so that findings need not import the book for them
NUMBER_WORDS = "no one two three four five six seven eight nine ten eleven twelve".split()


def number_word(n: int) -> str:
    """A count as prose: ``"no"``, ``"one"`` ... ``"twelve"``, digits above (for glued counts)."""
    return NUMBER_WORDS[n] if 0 <= n < len(NUMBER_WORDS) else str(n)


def and_list(items) -> str:
    """Items joined as prose: ``"a"``, ``"a and b"``, ``"a, b and c"`` (``""`` for none), for glued lists.

    >>> and_list(["LLaMA", "TNL", "HGRN2"])
    'LLaMA, TNL and HGRN2'
    """
    items = [str(item) for item in items]
    return ", ".join(items[:-1]) + " and " + items[-1] if len(items) > 1 else "".join(items)


def count_text(n: float) -> str:
    """A parameter count as prose, to two figures at most: ``"950"``, ``"14K"``, ``"578K"``, ``"85M"``,
    ``"6.9B"`` (the paper grid's 6,9xx,xxx,xxx was written "6906123K").

    >>> count_text(13_824), count_text(84_934_656), count_text(6_906_123_904)
    ('14K', '85M', '6.9B')
    """
    if n < 1e3:
        return f"{n:,.0f}"
    if round(n / 1e3) < 1000:  # thousands whole, as the cpu grid's "1K to 120K"
        return f"{n / 1e3:.0f}K"
    unit, scale = ("M", 1e6) if round(n / 1e6) < 1000 else ("B", 1e9)
    return f"{n / scale:.0f}{unit}" if n / scale >= 9.95 else f"{n / scale:.1f}{unit}"


def value_range(values, spec: str, sep: str = " to ") -> str:
    """The smallest and largest of ``values`` as prose, each formatted with ``spec``; one number where
    both read the same (a chapter narrowed to one architecture said "in 83% to 83% of studies").

    >>> value_range([0.91, 1.18], ".2f"), value_range([0.83, 0.831], ".0%")
    ('0.91 to 1.18', '83%')
    """
    import numpy as np  # here, not at the top: this module stays importable without NumPy's import time

    values = np.asarray(list(values), dtype=float)
    low, high = format(np.nanmin(values), spec), format(np.nanmax(values), spec)
    return low if low == high else f"{low}{sep}{high}"


class ConfigError(ValueError):
    """A configuration value is missing or out of range; the message names the field."""


class ResultsError(ConfigError):
    """A results table is missing, damaged, or off its schema (the sweep's: linscale.train.results); the
    message names the file, the column or the row. Here, below both the tables' writer (linscale.train)
    and their readers (linscale.results), so that neither imports the other for it."""


def error_line(err: BaseException) -> str:
    """What a one-line error quotes of an exception from a library: its message's first line, or its type's
    name where it has none (pyarrow's and datasets' messages run over several lines); with the first line
    of the exception it was raised from where that says more (datasets' "An error occurred while generating
    the dataset" of a malformed JSON file hid the parser's reason)."""
    def first(e: BaseException) -> str:
        text = str(e).strip()
        return text.splitlines()[0] if text else type(e).__name__

    cause = err.__cause__
    return f"{first(err)}: {first(cause)}" if cause is not None and first(cause) not in first(err) else first(err)


def read_table_file(path, what: str, remedy: str, error: type[ConfigError] = ConfigError):
    """The table at ``path`` (CSV if its name ends in .csv, else Parquet), or a one-line ``error``:
    "<path>: <what> (<the reader's reason>); <remedy>" (pyarrow and pandas raise several types, over
    several lines, for a damaged file)."""
    import pandas as pd

    try:
        return pd.read_csv(path) if str(path).endswith(".csv") else pd.read_parquet(path)
    except Exception as err:
        raise error(f"{path}: {what} ({error_line(err)}); {remedy}") from None


def parse_yaml(text: str, where: str):
    """``text`` read as YAML, or a one-line ConfigError naming ``where`` (a file, an option) and the spot
    (a preset file or a `-y` mapping with an unclosed bracket was a 50-line yaml traceback)."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        spot = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"{where}: not valid YAML{spot} ({problem})") from None


def glu_width(d_model: int, multiple_of: int = 256) -> int:
    """The LLaMA rule for the GLU width: 8/3·d rounded up to a multiple of ``multiple_of``.

    With multiple_of = 256 this gives every FFN width of the paper's Table 7 (1536, 2048, 2816,
    4096, 6912, 11008) except the 1B row's printed 5632; see ``linscale.presets.paper``.
    """
    return multiple_of * math.ceil(8 * d_model / 3 / multiple_of)


@dataclass
class ModelConfig:
    arch: str
    n_layer: int
    d_model: int
    n_head: int
    vocab_size: int
    d_ffn: int | None = None  # GLU width g; None -> glu_width(d_model, ffn_multiple_of)
    ffn_multiple_of: int = 256
    max_seq_len: int = 8192  # longest context LLaMA's RoPE tables are built for (grown on demand)
    norm_eps: float = 1e-6
    rope_base: float = 10000.0  # not given in the paper; LLaMA-2's default
    init_std: float = 0.02
    chunk_size: int = 64  # chunk length of the chunked linear-attention form
    mixer_mode: str = "chunk"  # which equivalent form the linear mixers run: chunk | naive | recurrent
    decay_schedule: str = "alibi"  # TNL: released-code ALiBi slopes (default) or the paper's formula
    gate_rank: int | None = None  # TNL / cosFormer2 low-rank output gate width t; None -> d/h
    tpe: bool = True  # cosFormer2: Toeplitz positional encoding once after the embedding
    name: str = ""  # free-form label, e.g. "70M"
    extra: dict = field(default_factory=dict)  # carried along untouched (e.g. provenance)

    def __post_init__(self) -> None:
        if self.arch not in ARCHITECTURES:
            raise ConfigError(f"arch: unknown architecture {self.arch!r}; expected one of {', '.join(ARCHITECTURES)}")
        for name in ("n_layer", "d_model", "n_head", "vocab_size", "max_seq_len", "chunk_size", "ffn_multiple_of"):
            _require_positive_int(name, getattr(self, name))
        if self.d_model % self.n_head:
            raise ConfigError(f"d_model: {self.d_model} is not divisible by n_head={self.n_head}")
        if self.arch == "llama" and self.head_dim % 2:  # rotate-half RoPE pairs dimension i with i + head_dim/2
            raise ConfigError(f"n_head: LLaMA's rotary embedding needs an even head width, and d_model/n_head = "
                              f"{self.d_model}/{self.n_head} = {self.head_dim}")
        if self.d_ffn is None:
            self.d_ffn = glu_width(self.d_model, self.ffn_multiple_of)
        _require_positive_int("d_ffn", self.d_ffn)
        if self.gate_rank is None:
            self.gate_rank = self.head_dim
        _require_positive_int("gate_rank", self.gate_rank)
        if self.decay_schedule not in DECAY_SCHEDULES:
            raise ConfigError(f"decay_schedule: {self.decay_schedule!r} is not one of {', '.join(DECAY_SCHEDULES)}")
        if self.mixer_mode not in MIXER_MODES:
            raise ConfigError(f"mixer_mode: {self.mixer_mode!r} is not one of {', '.join(MIXER_MODES)}")
        for name in ("norm_eps", "rope_base", "init_std"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
                raise ConfigError(f"{name}: expected a positive number, got {value!r}")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head

    @property
    def is_linear(self) -> bool:
        return self.arch in LINEAR_ARCHITECTURES

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "ModelConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"{unknown[0]}: unknown model config field; expected one of {', '.join(sorted(known))}")
        required = [f.name for f in dataclasses.fields(cls)
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        missing = [name for name in required if name not in values]
        if missing:  # was Python's TypeError from the constructor, a traceback
            raise ConfigError(f"{missing[0]}: missing; a model config needs {', '.join(required)}")
        return cls(**values)

    def replace(self, **changes) -> "ModelConfig":
        values = self.to_dict()
        values.update(changes)
        return ModelConfig.from_dict(values)


def _require_positive_int(name: str, value) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ConfigError(f"{name}: expected a positive integer, got {value!r}")
