"""The ``data:`` keys of a preset, with their types, defaults and meaning: one table that checks the
values (``check_data``, before anything is written), prints the help (``linscale data --help-keys``) and
is quoted in the README.

    >>> check_data({"source": "text", "path": "corpus/", "vocab_size": "abc"})
    Traceback (most recent call last):
    ...
    linscale.data.synthetic.DataError: data.vocab_size: expected an integer >= 258, got 'abc'
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from linscale.data.synthetic import DataError, LanguageSpec

SOURCES = ("synthetic", "text")


@dataclass(frozen=True)
class Key:
    """One data key: ``kind`` is int, number, bool, str or choice; ``minimum`` bounds numbers from below
    (``above``: strictly), ``maximum`` strictly from above; ``nullable`` allows null."""
    name: str
    kind: str
    default: object
    doc: str
    minimum: float | None = None
    maximum: float | None = None
    above: bool = False
    nullable: bool = False

    def check(self, value):
        """``value`` validated (an integral float such as 1e9 becomes an int); DataError naming the key."""
        if value is None:
            if self.nullable:
                return None
            raise DataError(f"data.{self.name}: expected {self.expected()}, got null")
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise DataError(f"data.{self.name}: expected true or false, got {value!r}")
            return value
        if self.kind == "str":
            if not isinstance(value, str) or not value:
                raise DataError(f"data.{self.name}: expected {self.expected()}, got {value!r}")
            return value
        number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
        if self.kind == "int" and isinstance(number, float) and number.is_integer():
            number = int(number)
        ok = number is not None and math.isfinite(number) and (self.kind != "int" or isinstance(number, int))
        if ok and self.minimum is not None:
            ok = number > self.minimum if self.above else number >= self.minimum
        if ok and self.maximum is not None:
            ok = number < self.maximum
        if not ok:
            raise DataError(f"data.{self.name}: expected {self.expected()}, got {value!r}")
        return number

    def expected(self) -> str:
        what = {"int": "an integer", "number": "a number", "bool": "true or false", "str": "a non-empty string"}[self.kind]
        if self.minimum is not None and self.maximum is not None:
            what += f" in {'(' if self.above else '['}{self.minimum:g}, {self.maximum:g})"
        elif self.minimum is not None:
            what += f" {'>' if self.above else '>='} {self.minimum:g}"
        return what + (" or null" if self.nullable else "")


TEXT_KEYS = (
    Key("path", "str", None, "the training text: a .txt, .jsonl or .parquet file; a folder of them (files named "
        "train*, valid*/val*/dev*, test* are splits: training reads only the `split` files); a folder written by "
        "datasets' save_to_disk; or a Hugging Face dataset name (streamed)"),
    Key("split", "str", "train", "the split of `path` to train on: a dataset split, or the file-name word in a "
        "folder of split files"),
    Key("val_path", "str", None, "validation text, in any form `path` takes (default: the `val_split` of `path`, "
        "else held-out documents of `path`)", nullable=True),
    Key("val_split", "str", "validation", "the split to validate on (of `val_path` if given, else of `path`); "
        "null: hold out documents of the training split instead", nullable=True),
    Key("val_tokens", "int", 65536, "validation tokens evaluated at every record (rounded up to whole rows); "
        "fewer are used, with a warning, when the validation text is shorter", minimum=1),
    Key("val_fraction", "number", 0.01, "without a validation split: every round(1/val_fraction)-th document "
        "of the training text is held out (with fewer than 2/val_fraction documents, the last val_fraction of "
        "its tokens)", minimum=0, maximum=1, above=True),
    Key("text_field", "str", "text", "the text column of .jsonl/.parquet files and datasets"),
    Key("doc_separator", "str", None, "split .txt files into documents on this string, e.g. \"\\n\\n\" "
        "(default: a .txt file is one document); blank text between separators, as a blank row of any source, is "
        "no document", nullable=True),
    Key("dataset_config", "str", None, "the configuration of a Hugging Face dataset (e.g. wikitext-2-raw-v1)",
        nullable=True),
    Key("streaming", "bool", None, "read the text as a stream instead of tokenizing it once into cached shards "
        "(default: true for a dataset name, false for local files)", nullable=True),
    Key("tokenizer", "str", None, "a tokenizer.json (Hugging Face tokenizers) with an `<eod>` token; default: "
        "train a byte-level BPE of `vocab_size` tokens (cached)", nullable=True),
    Key("vocab_size", "int", 8192, "tokens of the trained BPE tokenizer (also the model's vocabulary when the "
        "preset's model block gives none)", minimum=258),
    Key("tokenizer_docs", "int", 20000, "documents of the training text the BPE tokenizer is trained on "
        "(each file's first in turn)", minimum=1),
    Key("max_tokens", "int", None, "read at most this many tokens of the training text", minimum=1,
        nullable=True),
    Key("cache_dir", "str", None, "where datasets keeps its Arrow cache of Hugging Face datasets (default: "
        "HF_DATASETS_CACHE)", nullable=True),
)

SYNTHETIC_KEYS = (
    Key("val_tokens", "int", 65536, "held-out tokens of the validation split (whole rows)", minimum=1),
    Key("test_tokens", "int", 65536, "tokens of the test split", minimum=1),
    Key("val_seed", "int", 0, "seed of the validation and test documents", minimum=0),
)


def _language_keys() -> tuple[Key, ...]:
    """The synthetic language's parameters (LanguageSpec fields; their ranges are checked by LanguageSpec)."""
    keys = []
    for f in dataclasses.fields(LanguageSpec):
        default = f.default
        if f.name == "type_probs":
            continue  # a tuple: LanguageSpec checks it
        kind = "int" if isinstance(default, int) and not isinstance(default, bool) else "number"
        if f.name == "doc_len":
            kind = "int"
        keys.append(Key(f.name, kind, default, "synthetic language parameter (linscale.data.synthetic.LanguageSpec)",
                        nullable=default is None))
    return tuple(keys)


def keys_of(source: str) -> dict[str, Key]:
    """The keys a data dict of ``source`` may hold besides ``source`` (type_probs: any, LanguageSpec checks it)."""
    if source == "text":
        return {k.name: k for k in TEXT_KEYS}
    if source == "synthetic":
        return {k.name: k for k in (*SYNTHETIC_KEYS, *_language_keys())} | {
            "type_probs": Key("type_probs", "list", (0.30, 0.15, 0.10, 0.20, 0.25), "synthetic sentence-type mix")}
    raise DataError(f"data.source: {source!r} is not one of {', '.join(SOURCES)}")


def _unknown_key_message(name: str, source: str, keys: dict) -> str:
    """One line for a key ``source`` does not take. A key of the other source (or a misspelt ``source``,
    which leaves the default synthetic source in force) is named first: the list of the synthetic
    language's keys alone does not help a user who wrote ``sorce: text`` or forgot ``source: text``."""
    import difflib

    others = [other for other in SOURCES if other != source and name in keys_of(other)]
    close = difflib.get_close_matches(name, ["source", *keys], n=1)
    if others:
        hint = f" (a key of source {others[0]!r}: set data.source: {others[0]})"
    elif close:
        hint = f" (did you mean data.{close[0]}?)"
    else:
        hint = ""
    return f"data.{name}: unknown key for source {source!r}{hint}; expected one of {', '.join(sorted(keys))}"


def check_data(data: dict) -> dict:
    """``data`` with every value checked against its key (unknown keys, wrong types and ranges are one-line
    DataErrors naming the key); integral floats such as 1e9 become ints. Reads no file."""
    if not isinstance(data, dict):
        raise DataError(f"data: expected a mapping with a 'source' key, got {data!r}")
    source = data.get("source", "synthetic")
    if not isinstance(source, str):
        raise DataError(f"data.source: expected one of {', '.join(SOURCES)}, got {source!r}")
    keys = keys_of(source)
    out = {"source": source} if "source" in data else {}
    for name, value in data.items():
        if name == "source":
            continue
        if name not in keys:  # a misspelt key would otherwise be ignored silently
            raise DataError(_unknown_key_message(name, source, keys))
        key = keys[name]
        out[name] = value if key.kind == "list" else key.check(value)
    if source == "synthetic":
        try:
            LanguageSpec.from_dict(out)
        except (TypeError, ValueError) as err:
            raise DataError(f"data: the synthetic language's parameters are invalid ({err})") from None
    return out


def help_table(width: int = 100) -> str:
    """The data keys as a text table (``linscale data --help-keys``)."""
    import textwrap

    lines = []
    for source, keys in (("text", TEXT_KEYS), ("synthetic", (*SYNTHETIC_KEYS, *_language_keys()))):
        lines.append(f"data.source: {source}" + ("" if source == "text" else " (the default)"))
        for key in keys:
            default = "required" if key.name == "path" else f"default {key.default!r}".replace("None", "null")
            head = f"  data.{key.name} ({key.expected()}; {default})"
            lines.append(head)
            lines.extend(textwrap.wrap(key.doc, width, initial_indent="      ", subsequent_indent="      "))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def markdown_table() -> str:
    """The text source's keys as a Markdown table (the README's)."""
    rows = ["| key | value | default | meaning |", "|---|---|---|---|"]
    for key in TEXT_KEYS:
        default = "required" if key.name == "path" else ("null" if key.default is None else f"`{key.default}`")
        rows.append(f"| `{key.name}` | {key.expected()} | {default} | {key.doc.replace('|', '/')} |")
    return "\n".join(rows)


__all__ = ["Key", "TEXT_KEYS", "SYNTHETIC_KEYS", "SOURCES", "keys_of", "check_data", "help_table", "markdown_table"]
