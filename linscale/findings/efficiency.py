"""The efficiency chapter's tables from committed benchmark reports."""
from __future__ import annotations

import numpy as np
import pandas as pd


def kernel_benchmarks(bench_dir: str = "benchmarks/results") -> pd.DataFrame:
    """The GPU kernel reports committed under ``bench_dir`` (``kernels-<date>-<gpu>-<host>.md``, written
    by ``benchmarks/bench_kernels.py``): one row per report with its file, date and title. Notes that are
    not measurements (no date in the name) are not listed."""
    import re
    from pathlib import Path

    rows = []
    for path in sorted(Path(bench_dir).glob("kernels-*.md")):
        match = re.match(r"kernels-(\d{4}-\d{2}-\d{2})", path.name)
        if not match:
            continue
        title = next((line[2:].strip() for line in path.read_text().splitlines() if line.startswith("# ")), "")
        rows.append({"file": str(path), "date": match.group(1), "title": title})
    return pd.DataFrame(rows, columns=["file", "date", "title"])


