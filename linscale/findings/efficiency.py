"""The efficiency chapter's tables from committed benchmark reports."""
from __future__ import annotations

from itertools import takewhile

import pandas as pd


def gpu_reports(bench_dir: str = "benchmarks/results") -> pd.DataFrame:
    """The GPU reports committed under ``bench_dir``, oldest first: ``<date>-<HHMM>-gpu-check-<gpu>.md``
    written by ``benchmarks/gpu_check.sh`` (and the older ``kernels-<date>-...md`` of ``bench_kernels.py``).
    One row per report with its file, date and title; notes without a date in the name are not listed."""
    import re
    from pathlib import Path

    rows = []
    for path in Path(bench_dir).glob("*.md"):
        match = (re.match(r"(\d{4}-\d{2}-\d{2})(?:-\d{4})?-gpu-check-", path.name)
                 or re.match(r"kernels-(\d{4}-\d{2}-\d{2})", path.name))
        if not match:
            continue
        title = next((line[2:].strip() for line in path.read_text().splitlines() if line.startswith("# ")), "")
        rows.append({"file": str(path), "date": match.group(1), "title": title})
    return pd.DataFrame(rows, columns=["file", "date", "title"]).sort_values(["date", "file"], ignore_index=True)


# The tables of a GPU check report, by the start of the heading that precedes each (gpu_check.sh's sections)
GPU_REPORT_TABLES = {"lightning": "## 2. Lightning", "paper": "## 3. The paper preset", "agreement": "### Agreement",
                     "training": "### Throughput", "kernels": "### Kernel benchmark"}


def markdown_table(lines: list[str]) -> pd.DataFrame:
    """The first Markdown pipe table in ``lines`` (:func:`linscale.tables.read_pipe_table`, as the CPU
    benchmark reports are read)."""
    from linscale.tables import read_pipe_table

    start = next((i for i, line in enumerate(lines) if line.startswith("|")), None)
    if start is None:
        raise ValueError("no Markdown table found")
    return read_pipe_table(list(takewhile(lambda line: line.startswith("|"), lines[start:])))


def gpu_report_tables(path, required=("lightning", "agreement", "training", "kernels")) -> dict[str, pd.DataFrame]:
    """The tables of one GPU check report (:func:`gpu_reports`): ``lightning`` (GPU beside CPU final
    losses), ``paper`` (the paper preset through Lightning), ``agreement`` (Triton vs PyTorch in a training
    step), ``training`` (step time and model FLOP utilisation at the paper's shapes) and ``kernels``
    (bench_kernels.py, with ``fwd_vs_sdpa``, ``fwd_vs_fla`` and ``fwd_bandwidth_pct`` read out as numbers).
    A table is read from its section only (up to the next heading), so a step the run skipped has none. A
    section named in ``required`` that has no table raises, naming it; the others are left out."""
    from pathlib import Path

    lines = Path(path).read_text().splitlines()
    tables = {}
    for name, heading in GPU_REPORT_TABLES.items():
        at = next((i for i, line in enumerate(lines) if line.startswith(heading)), None)
        section = [] if at is None else list(takewhile(lambda line: not line.startswith(("## ", "### ")),
                                                        lines[at + 1:]))
        if any(line.startswith("|") for line in section):
            tables[name] = markdown_table(section)
        elif name in required:
            raise ValueError(f"{path}: no table in a section starting {heading!r} (the {name} table)")
    if "kernels" in tables:
        kernels = tables["kernels"]
        for ratio in ("sdpa", "fla"):
            column = kernels.get(f"fwd vs {ratio}", pd.Series(index=kernels.index, dtype=str))
            kernels[f"fwd_vs_{ratio}"] = pd.to_numeric(column.astype(str).str.rstrip("x"), errors="coerce")
        # "fwd TB/s (% of peak)": a report without that column (or with bare numbers in it) has no share
        bandwidth = next((c for c in kernels if c.startswith("fwd TB/s")), None)
        shares = (kernels[bandwidth].astype(str) if bandwidth else pd.Series("", index=kernels.index, dtype=str))
        kernels["fwd_bandwidth_pct"] = pd.to_numeric(shares.str.extract(r"\((\d+)%\)")[0], errors="coerce")
    return tables


def newest_gpu_tables(bench_dir: str = "benchmarks/results") -> dict[str, tuple[pd.DataFrame, str]]:
    """Each table of :data:`GPU_REPORT_TABLES` from the newest committed GPU report that has it, with that
    report's file: a later visit to a GPU may run only some steps (``STEPS=`` of gpu_check.sh), and what it
    did not measure is still shown from the report that did. Tables no report has are left out."""
    newest = {}
    for path in reversed(gpu_reports(bench_dir)["file"].tolist()):
        for name, table in gpu_report_tables(path, required=()).items():
            newest.setdefault(name, (table, path))
    return newest


