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
