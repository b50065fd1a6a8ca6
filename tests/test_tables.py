"""Book tables (linscale.tables): units in headers, numbers to a few significant digits that never wrap,
long tables cut with the full table one click away, and the same HTML for the same table."""
from __future__ import annotations

import base64
import io
import re

import numpy as np
import pandas as pd

from linscale import tables


def test_columns_are_formatted_for_reading():
    assert tables.format_column(pd.Series([13824, 2998272])) == ["13,824", "2,998,272"]
    assert tables.format_column(pd.Series([2.037835, 1.8447])) == ["2.04", "1.84"]
    assert tables.format_column(pd.Series([0.52, 0.586667])) == ["0.520", "0.587"]
    assert tables.format_column(pd.Series([41.278, 376.4])) == ["41", "376"]
    # spanning decades or tiny: scientific, one layout for the column
    assert tables.format_column(pd.Series([5.470181e-09, 1.2e-07])) == ["5.47e-09", "1.20e-07"]
    assert tables.format_column(pd.Series([1.0, np.nan])) == ["1.00", "–"]
    assert tables.format_column(pd.Series([True, False])) == ["yes", "no"]
    assert tables.percent(1, signed=True)(-0.0003) == "0.0%" and tables.percent(2, True)(0.0123) == "+1.23%"


def test_a_long_table_shows_its_first_rows_and_keeps_every_row_one_click_away():
    table = pd.DataFrame({"arch": ["tnl", "llama"] * 15, "params": range(30), "pf_days": np.geomspace(1e-10, 1e-7, 30),
                          "note": ["x"] * 30})
    shown = tables.show(table, ["arch", "params", "pf_days"], name="grid", max_rows=10)
    html = shown._repr_html_()
    body = html.split("<details")[0]
    assert body.count("<tr>") == 1 + 10  # header and 10 rows in the page
    assert "First 10 of 30 rows" in html and "Full table: 30 rows × 4 columns" in html
    assert ">TNL<" in body and ">N (params)<" in body and ">C (PF-days)<" in body  # labels and units
    # numbers never wrap; text may
    assert re.search(r'<td style="text-align:right;white-space:nowrap">1\.00e-10</td>', body)
    assert '<td style="text-align:left">TNL</td>' in body
    csv = base64.b64decode(re.search(r'href="data:text/csv;base64,([^"]+)"', html).group(1)).decode()
    assert pd.read_csv(io.StringIO(csv)).shape == (30, 4) and 'download="grid.csv"' in html
    assert html == tables.show(table, ["arch", "params", "pf_days"], name="grid", max_rows=10)._repr_html_()
    assert "C (PF-days)" in str(shown) and "object at" not in repr(shown)


def test_a_short_complete_table_has_no_dropdown():
    html = tables.show(pd.DataFrame({"arch": ["tnl"], "loss": [2.0]}))._repr_html_()
    assert "<details" not in html and "csv" not in html.lower()


def test_a_pipe_table_is_read_back_as_the_reports_hold_it():
    """A body row of another width (a note inside the table) is dropped, a column of numbers with blanks
    is numeric with NaN, and a column with no filled cell keeps its (empty) text."""
    rows = ["| arch | mfu | note | blank |", "|:-----|----:|:-----|:------|", "| tnl | 0.5 | fast |  |",
            "| llama |  | out of memory |  |", "| a note that spans the table |"]
    table = tables.read_pipe_table(rows)
    assert table["arch"].tolist() == ["tnl", "llama"] and table["note"].tolist() == ["fast", "out of memory"]
    assert table["mfu"].iloc[0] == 0.5 and np.isnan(table["mfu"].iloc[1])
    assert table["blank"].tolist() == ["", ""]


def test_format_column_switches_to_scientific_at_its_documented_bounds():
    """Fixed decimals inside [1e-3, 1e5) spanning under three decades; scientific outside; zeros print 0."""
    assert tables.format_column(pd.Series([99999.0, 1000.0])) == ["99,999", "1,000"]
    assert tables.format_column(pd.Series([100000.0, 2000.0])) == ["1.00e+05", "2.00e+03"]
    assert tables.format_column(pd.Series([0.001, 0.9])) == ["0.001", "0.900"]
    assert tables.format_column(pd.Series([0.0009, 0.09])) == ["9.00e-04", "9.00e-02"]
    assert tables.format_column(pd.Series([2.0, 1999.0])) == ["2", "1,999"]  # under three decades
    assert tables.format_column(pd.Series([2.0, 2000.0])) == ["2.00e+00", "2.00e+03"]
    assert tables.format_column(pd.Series([0.0, 1e-6, 2.0])) == ["0", "1.00e-06", "2.00e+00"]
    assert tables.format_column(pd.Series([0.0, np.nan])) == ["0", "–"]
    assert tables.header("fwd_ms") == "fwd ms"  # not in HEADERS: its name, readable


def test_a_table_of_exactly_max_rows_is_shown_whole_and_formats_skip_missing_values():
    table = pd.DataFrame({"arch": ["tnl", "llama"], "share": [0.25, np.nan], "note": ["a<b", None]})
    shown = tables.show(table, max_rows=2, formats={"share": "{:.0%}", "note": str.upper})
    assert shown.note == "" and shown.full is None
    assert shown.cells(shown.shown) == {"arch": ["TNL", "LLaMA"], "share": ["25%", "–"], "note": ["A<B", "–"]}
    assert "a&lt;b" in tables.show(table)._repr_html_()  # text is escaped, and so is a number's format
    assert ">&lt;1%<" in tables.show(table[["share"]], formats={"share": lambda v: "<1%"})._repr_html_()
    # the CSV behind the link holds the full table, every column, not the page's part
    cut = tables.show(table, ["arch"], name="part")
    assert list(pd.read_csv(io.StringIO(cut.csv())).columns) == ["arch", "share", "note"]
    assert tables.show(table, ["arch"], full=False).full is None



def test_missing_values_of_pandas_nullable_columns_print_a_dash():
    """An Int64, boolean or Float64 column (pandas' nullable types, e.g. after ``convert_dtypes``) raised
    TypeError on its first <NA> ("int() argument must be ... not 'NAType'") instead of printing a dash."""
    assert tables.format_column(pd.Series([13824, None], dtype="Int64")) == ["13,824", "–"]
    assert tables.format_column(pd.Series([True, None, False], dtype="boolean")) == ["yes", "–", "no"]
    assert tables.format_column(pd.Series([2.037835, None], dtype="Float64")) == ["2.04", "–"]
    assert "13,824" in str(tables.show(pd.DataFrame({"params": [13824, None]}).convert_dtypes()))


def test_the_page_shows_the_columns_asked_for_in_order_and_the_dropdown_labels_its_architectures_too():
    """The page holds the columns given, in the order given; the full table behind the dropdown shows the
    architectures' labels as the page does; a yes/no column is text (left-aligned) and numbers are right;
    a header is escaped as a cell is; a row without an architecture prints a dash; the text form ends
    with the note on the rows left out."""
    table = pd.DataFrame({"arch": ["tnl", None, "llama"], "params": [13824, 2, 3], "diverged": [True, False, False],
                          "a<b": [1.5, 2.5, 3.5]})
    shown = tables.show(table, ["params", "arch", "diverged", "a<b"], max_rows=2)
    page, full = shown._repr_html_().split("<details")
    assert re.findall(r"<th[^>]*>([^<]*)</th>", page) == ["N (params)", "architecture", "diverged", "a&lt;b"]
    assert re.findall(r"<th[^>]*>([^<]*)</th>", full) == ["architecture", "N (params)", "diverged", "a&lt;b"]
    assert re.findall(r'<td style="text-align:left">([^<]*)</td>', page) == ["TNL", "yes", "–", "no"]
    assert '<td style="text-align:right;white-space:nowrap">13,824</td>' in page
    assert ">TNL<" in full and ">LLaMA<" in full and ">tnl<" not in full and ">llama<" not in full
    assert str(shown).splitlines()[-1] == "First 2 of 3 rows; every row is in the full table."
