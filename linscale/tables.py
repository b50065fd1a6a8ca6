"""Tables as the book shows them: headers with units, numbers to a few significant digits that never
wrap, and long or wide tables summarised in the page with the full table one click away.

Every chapter shows a DataFrame with one call::

    >>> import pandas as pd
    >>> from linscale import tables
    >>> table = tables.show(pd.DataFrame({"arch": ["tnl"], "params": [13824], "pf_days": [5.47e-9]}))
    >>> print(table)
    architecture  N (params)  C (PF-days)
             TNL      13,824     5.47e-09

In a notebook the same object renders as HTML: the columns given (all by default) under readable
headers (:data:`HEADERS`; any column not listed keeps its name), formatted per column
(:func:`format_column`), right-aligned and unbreakable; with ``full=``, or when rows or columns were
left out, a "Full table" dropdown holds every row and column and a link downloads them as CSV (a
``data:`` URL: the book stays one self-contained folder that needs no server). The HTML is the same
for the same table, so two builds of the book give identical pages.
"""
from __future__ import annotations

import base64
import html
import math
from typing import Callable, Iterable

import numpy as np
import pandas as pd

from linscale.eval.tasks import SCORES

# Display headers, with units, of the columns the study's tables share (one place for the whole book).
HEADERS = {
    "arch": "architecture", "size": "size", "n_layer": "layers l", "d_model": "width d", "n_head": "heads h",
    "d_ffn": "FFN width", "params": "N (params)", "params_formula": "N, formula", "params_model": "N, model",
    "tokens": "tokens D", "pf_days": "C (PF-days)", "flops": "C (FLOPs)", "training_flops": "C (FLOPs)",
    "flops_per_token": "FLOPs per token", "pflops_per_step": "PFLOPs per step",
    "train_loss": "train loss (nats/token)", "val_loss": "val. loss (nats/token)",
    "bayes_loss": "Bayes loss (nats/token)", "loss": "loss (nats/token)", "wall_time_s": "wall time (s)",
    "checkpoints": "check-points", "seq_len": "context n (tokens)", "aspect": "d / l", "seed": "seed",
    "run_id": "run", "estimate": "estimate", "ci_low": "95% low", "ci_high": "95% high",
    "params_M": "N (M), ours", "params_M_paper": "N (M), paper", "params_rel_diff": "N diff.",
    "pflops_per_step_paper": "PFLOPs per step, paper", "pflops_rel_diff": "PFLOPs diff.",
    **{score.column: score.header for score in SCORES},  # the downstream scores' (linscale.eval.tasks)
}
SIGNIFICANT = 3  # significant digits of a float column (at least; see format_column)
MAX_ROWS = 16  # rows shown in the page before the rest moves into the full table


def read_pipe_table(rows: list[str]) -> pd.DataFrame:
    """A Markdown pipe table read back (header line, separator line, body lines), as the committed reports
    hold them: cells stripped, body rows of another width dropped, and a column whose filled cells are
    all numbers made numeric (its empty cells NaN); other columns keep their text."""
    header = [c.strip() for c in rows[0].strip().strip("|").split("|")]
    body = [[c.strip() for c in r.strip().strip("|").split("|")] for r in rows[2:]]
    table = pd.DataFrame([r for r in body if len(r) == len(header)], columns=header)
    for column in table.columns:
        filled = table[column].ne("")
        converted = pd.to_numeric(table[column].where(filled), errors="coerce")
        if filled.any() and converted[filled].notna().all():
            table[column] = converted
    return table


def header(column: str) -> str:
    """The display header of a column (its name when :data:`HEADERS` has none)."""
    return HEADERS.get(column, column.replace("_", " "))


def scientific(value: float, digits: int = SIGNIFICANT) -> str:
    """``5.47e-09`` style, with the exponent's leading zeros kept as Python writes them (short and familiar)."""
    return f"{value:.{digits - 1}e}"


def format_column(values: pd.Series, digits: int = SIGNIFICANT) -> list[str]:
    """The column's values as the book prints them.

    Integers get thousands separators; booleans yes/no; missing values a dash. Floats share one layout
    per column, so they line up: fixed decimals giving ``digits`` significant digits to the column's
    largest value when the values span less than three decades and lie within [1e-3, 1e5); otherwise
    scientific notation (``5.47e-09``)."""
    if pd.api.types.is_bool_dtype(values):  # pandas' nullable "boolean" and "Int64" may hold <NA>
        return ["–" if _missing(v) else "yes" if v else "no" for v in values]
    if pd.api.types.is_integer_dtype(values):
        return ["–" if _missing(v) else f"{int(v):,}" for v in values]
    if not pd.api.types.is_float_dtype(values):
        return ["–" if _missing(v) else str(v) for v in values]
    values = pd.Series(values.to_numpy(dtype=float, na_value=np.nan), index=values.index)  # "Float64": <NA> is NaN
    finite = np.abs(values[np.isfinite(values)].to_numpy(dtype=float))
    nonzero = finite[finite > 0]
    if not len(nonzero):
        return ["–" if not np.isfinite(v) else "0" for v in values]
    top, bottom = float(nonzero.max()), float(nonzero.min())
    if top >= 1e5 or bottom < 1e-3 or top / bottom >= 1e3:
        return ["–" if not np.isfinite(v) else ("0" if v == 0 else scientific(v, digits)) for v in values]
    decimals = max(0, digits - 1 - math.floor(math.log10(top)))
    return ["–" if not np.isfinite(v) else f"{v:,.{decimals}f}" for v in values]


def percent(decimals: int = 1, signed: bool = False) -> Callable[[float], str]:
    """A format for fractions as percents (``0.0123`` -> ``1.2%``); a value that rounds to zero prints
    as ``0.0%``, not ``-0.0%``."""
    def fmt(value: float) -> str:
        if round(abs(value) * 100, decimals) == 0:
            value = 0.0
        return f"{value:{'+' if signed and value else ''}.{decimals}%}"
    return fmt


def _missing(value) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _labelled(table: pd.DataFrame) -> pd.DataFrame:
    if "arch" in table:
        from linscale.config import arch_label

        table = table.assign(arch=table["arch"].map(lambda a: arch_label(a) if isinstance(a, str) else a))
    return table


class BookTable:
    """A table ready for a page (see :func:`show`): ``_repr_html_`` for the book, ``str`` for text."""

    def __init__(self, shown: pd.DataFrame, full: pd.DataFrame | None, name: str, formats: dict,
                 digits: int, note: str = ""):
        self.shown, self.full, self.name, self.formats, self.digits, self.note = shown, full, name, formats, digits, note

    def cells(self, table: pd.DataFrame) -> dict[str, list[str]]:
        """{column: formatted values} of ``table`` (formats given per column win)."""
        out = {}
        for column in table.columns:
            fmt = self.formats.get(column)
            if fmt is None:
                out[column] = format_column(table[column], self.digits)
            elif callable(fmt):
                out[column] = ["–" if _missing(v) else fmt(v) for v in table[column]]
            else:
                out[column] = ["–" if _missing(v) else fmt.format(v) for v in table[column]]
        return out

    def _html_table(self, table: pd.DataFrame) -> str:
        cells = self.cells(table)
        numeric = {c: pd.api.types.is_numeric_dtype(table[c]) and not pd.api.types.is_bool_dtype(table[c])
                   for c in table.columns}
        head = "".join(f'<th style="text-align:{"right" if numeric[c] else "left"}">{html.escape(header(c))}</th>'
                       for c in table.columns)
        body = []
        for i in range(len(table)):
            tds = "".join(f'<td style="text-align:right;white-space:nowrap">{html.escape(cells[c][i])}</td>'
                          if numeric[c] else f'<td style="text-align:left">{html.escape(cells[c][i])}</td>'
                          for c in table.columns)
            body.append(f"<tr>{tds}</tr>")
        return (f'<table class="dataframe linscale-table"><thead><tr>{head}</tr></thead>'
                f'<tbody>{"".join(body)}</tbody></table>')

    def csv(self) -> str:
        """The full table as CSV (raw values, original column names: for reading back with pandas)."""
        return (self.full if self.full is not None else self.shown).to_csv(index=False)

    def _repr_html_(self) -> str:
        parts = [f'<div class="linscale-table-block">{self._html_table(self.shown)}']
        if self.note:
            parts.append(f'<p class="linscale-table-note">{html.escape(self.note)}</p>')
        if self.full is not None:
            rows, cols = self.full.shape
            data = base64.b64encode(self.csv().encode()).decode()
            parts.append(
                f'<details class="linscale-full-table"><summary>Full table: {rows} rows × {cols} columns</summary>'
                f'<div class="linscale-scroll">{self._html_table(_labelled(self.full))}</div></details>'
                f'<p class="linscale-table-note"><a download="{html.escape(self.name)}.csv" '
                f'href="data:text/csv;base64,{data}">Download the full table as CSV</a> '
                f'({rows} rows × {cols} columns).</p>')
        parts.append("</div>")
        return "".join(parts)

    def __str__(self) -> str:
        cells = self.cells(self.shown)
        text = pd.DataFrame({header(c): cells[c] for c in self.shown.columns}).to_string(index=False)
        return text + (f"\n{self.note}" if self.note else "")

    __repr__ = __str__


def show(table: pd.DataFrame, columns: Iterable[str] | None = None, *, full: pd.DataFrame | bool | None = None,
         name: str = "table", max_rows: int = MAX_ROWS, formats: dict[str, str | Callable] | None = None,
         digits: int = SIGNIFICANT) -> BookTable:
    """A DataFrame as a book table.

    ``columns``: the columns to show in the page, in order (default: all). ``full``: the table behind
    the "Full table" dropdown and the CSV link (``True``: ``table`` itself; default: ``table`` when
    columns or rows were left out of the page, else none). ``max_rows``: longer tables show their first
    rows and say how many more the full table has. ``formats``: per-column format strings
    (``"{:.1%}"``) or functions, for columns the defaults do not fit. ``name``: the CSV's file name."""
    table = table.reset_index(drop=True)
    shown = table[list(columns)] if columns is not None else table
    note = ""
    if len(shown) > max_rows:
        note = f"First {max_rows} of {len(shown)} rows; every row is in the full table."
        shown = shown.head(max_rows)
    if full is True or (full is None and (shown.shape != table.shape)):
        full = table
    elif full is False:
        full = None
    return BookTable(_labelled(shown), full, name, dict(formats or {}), digits, note)
