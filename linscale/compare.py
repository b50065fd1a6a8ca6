"""Two studies side by side: ``linscale compare A B``.

    linscale compare results/cpu ../rerun/results/cpu            # readable report; exit 1 if a verdict differs
    linscale compare results/cpu ../rerun/results/cpu --json cmp.json   # and a machine-readable copy

A and B are results folders as ``linscale study`` writes them (``results/<preset>/``: runs.parquet,
eval.parquet, ablations/, fits/). For a re-executor, A is usually the published folder and B their own.

* **Tables**: every table of either folder (Parquet, and CSV files without a Parquet twin), rows matched
  by their key columns (run, step, task, metric, ...): rows only in one, and per column how many values
  changed and the largest relative change, B against A. Values are compared bit for bit. Wall-clock
  columns (``wall_time_s``, ``eval_time_s``) and locations (``checkpoint`` paths) are reported apart and
  never make a table differ: they change on every run. Other files (a fit's error or note) are compared
  by content.
* **Fitted laws**: ``fits/*.csv`` estimate by estimate, with both 95% intervals and whether they overlap.
* **Verdicts**: :func:`linscale.findings.claims_from_results` on each folder (seeded bootstrap: the same
  folder always gives the same verdicts). Every verdict that differs is marked, with how far the numbers
  it rests on moved, in units of their noise (the claims table's ``tolerance``): a verdict that changed
  while no number moved beyond its noise is flagged as a flip inside the noise.

The exit status is 1 when any verdict differs and 0 otherwise (2 for bad input), so a script or CI can
ask "does my re-run reach the published conclusions?".
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from linscale.config import ConfigError, read_table_file
from linscale.results import ResultsError, read_table, study_overrides

WALL_CLOCK_COLUMNS = ("wall_time_s", "eval_time_s")  # time, not results: shown apart, never a difference
LOCATION_COLUMNS = ("checkpoint",)  # where the study kept a file (its --runs-dir), not what it measured
# Columns that identify a row, in the order they appear in the study's tables: a table's key is the
# subset it has (runs: run_id, step; eval: run_id, step, task, metric, filter; fits: method, group,
# law, parameter; ablations add their variant).
KEY_COLUMNS = ("variant", "run_id", "step", "task", "metric", "filter", "mode", "context", "depth", "method",
               "group", "law", "parameter")
SAME, DIFFERS, ONLY_A, ONLY_B = "same", "differs", "only in A", "only in B"


class CompareError(ConfigError):
    """Bad input to ``linscale compare``: not a results folder, or a table that cannot be read."""


@dataclass
class Comparison:
    """What :func:`compare_studies` found. ``tables``: one row per file (status, rows, what changed);
    ``columns``: one row per (table, column) that changed, wall-clock and location columns included and
    marked by ``kind``; ``fits``: every fitted estimate of A and B with its interval; ``verdicts``: the
    claims of both studies side by side."""

    a: str
    b: str
    tables: pd.DataFrame
    columns: pd.DataFrame
    fits: pd.DataFrame
    verdicts: pd.DataFrame
    labels: tuple[str, str] = ("A", "B")

    @property
    def changed_tables(self) -> list[str]:
        """Files that differ or exist in one folder only (wall-clock and location columns do not count)."""
        return self.tables.loc[self.tables["status"] != SAME, "table"].tolist()

    @property
    def differing_verdicts(self) -> list[str]:
        return self.verdicts.loc[self.verdicts["differs"], "id"].tolist()

    @property
    def exit_status(self) -> int:
        return 1 if self.differing_verdicts else 0

    def to_dict(self) -> dict:
        """Plain JSON-ready data (NaN and infinities as null)."""
        return _plain({"a": self.a, "b": self.b, "labels": list(self.labels),
                       "changed_tables": self.changed_tables, "differing_verdicts": self.differing_verdicts,
                       "tables": self.tables.to_dict("records"), "columns": self.columns.to_dict("records"),
                       "fits": self.fits.to_dict("records"), "verdicts": self.verdicts.to_dict("records")})

    def format_text(self) -> str:
        return format_comparison(self)


# ----------------------------------------------------------------------------- reading


def check_results_folder(path: str | Path, label: str = "") -> Path:
    """``path`` as a Path if it is a study's results folder (it holds runs.parquet or runs.csv); else a
    one-line CompareError naming it."""
    path = Path(path)
    name = f"{label} " if label else ""
    if path.is_file():
        raise CompareError(f"{name}{path}: a file; expected a study's results folder, e.g. results/cpu")
    if not path.is_dir():
        raise CompareError(f"{name}{path}: no such folder (expected a study's results folder, e.g. results/cpu)")
    if not ((path / "runs.parquet").is_file() or (path / "runs.csv").is_file()):
        raise CompareError(f"{name}{path}: not a results folder (no runs.parquet or runs.csv; expected the folder "
                           f"`linscale study` writes, e.g. results/cpu)")
    return path


def study_files(folder: Path) -> dict[str, Path]:
    """{relative path: file} of every file of a results folder, hidden files (stamps) left out, and a
    table's CSV twin (runs.csv beside runs.parquet) left out as the same data."""
    files = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if not path.is_file() or any(part.startswith(".") for part in rel.parts):
            continue
        if path.suffix == ".csv" and path.with_suffix(".parquet").exists():
            continue
        files[rel.as_posix()] = path
    return files


def _read(path: Path) -> pd.DataFrame:
    return read_table_file(path, "cannot be read as a table", "compare folders a study wrote, or write this one "
                           "again with `linscale study`", error=CompareError)


def _is_table(name: str) -> bool:
    return name.endswith((".parquet", ".csv"))


# ----------------------------------------------------------------------------- tables


def _keyed(table: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """``table`` indexed by its key columns as text (so that a string and an object column match), with
    a running number where a key repeats, so that every row has an index of its own."""
    # object first: a pandas string column keeps a missing key missing through astype(str), and a
    # missing key would fall out of the running number, leaving two rows one index
    index = table[keys].astype(object).fillna("<missing>").astype(str) if keys else pd.DataFrame(index=table.index)
    index = index.assign(_occurrence=index.groupby(keys, dropna=False).cumcount() if keys else np.arange(len(table)))
    return table.set_index(pd.MultiIndex.from_frame(index))


def _kind(column: str) -> str:
    return "wall clock" if column in WALL_CLOCK_COLUMNS else "location" if column in LOCATION_COLUMNS else "value"


def _row_label(index: tuple, keys: list[str]) -> str:
    if not keys:  # a table without key columns: its row number (a one-level index gives a bare value)
        return f"row {index[-1] if isinstance(index, tuple) else index}"
    return ", ".join(f"{k}={v}" for k, v in zip(keys, index))


def diff_tables(name: str, a: pd.DataFrame, b: pd.DataFrame) -> tuple[dict, list[dict]]:
    """One table of both studies compared: (a summary row, one row per changed column)."""
    keys = [k for k in KEY_COLUMNS if k in a.columns and k in b.columns]
    ka, kb = _keyed(a, keys), _keyed(b, keys)
    shared = ka.index.intersection(kb.index)
    only_a, only_b = len(ka.index.difference(kb.index)), len(kb.index.difference(ka.index))
    ka, kb = ka.loc[shared], kb.loc[shared]
    columns = []
    for column in [c for c in dict.fromkeys([*a.columns, *b.columns]) if c not in keys]:
        kind = _kind(column)
        if column not in a.columns or column not in b.columns:
            columns.append({"table": name, "column": column, "kind": kind, "changed": len(shared),
                            "compared": len(shared), "note": f"column only in {'A' if column in a.columns else 'B'}"})
            continue
        x, y = ka[column], kb[column]
        numeric = pd.api.types.is_numeric_dtype(x) and pd.api.types.is_numeric_dtype(y) \
            and not pd.api.types.is_bool_dtype(x) and not pd.api.types.is_bool_dtype(y)
        if numeric:
            xv, yv = x.to_numpy(dtype=float), y.to_numpy(dtype=float)
            changed = ~((xv == yv) | (np.isnan(xv) & np.isnan(yv)))
        else:
            changed = ~((x.astype(str).to_numpy() == y.astype(str).to_numpy()) | (x.isna().to_numpy() & y.isna().to_numpy()))
        if not changed.any():
            continue
        row = {"table": name, "column": column, "kind": kind, "changed": int(changed.sum()), "compared": len(shared)}
        if numeric:
            with np.errstate(divide="ignore", invalid="ignore"):
                absolute = np.abs(yv - xv)
                relative = np.where(xv != 0, (yv - xv) / np.abs(xv), np.where(yv == xv, 0.0, np.inf))
            relative = np.where(np.isnan(xv) != np.isnan(yv), np.inf, relative)  # a value against none
            at = int(np.nanargmax(np.where(changed, np.abs(relative), -1.0)))
            # over the changed rows; pandas' max gives NaN, without numpy's all-NaN warning, when every change
            # is a value against none
            row.update(largest_rel_change=float(relative[at]),
                       largest_abs_change=float(pd.Series(absolute[changed]).max()),
                       min_rel_change=float(np.nanmin(np.where(changed, relative, np.nan))),
                       max_rel_change=float(np.nanmax(np.where(changed, relative, np.nan))),
                       at=_row_label(shared[at], keys), a_value=float(xv[at]), b_value=float(yv[at]))
        columns.append(row)
    counted = [c for c in columns if c["kind"] == "value"]
    status = DIFFERS if counted or only_a or only_b else SAME
    summary = {"table": name, "status": status, "rows_a": len(a), "rows_b": len(b), "rows_only_a": only_a,
               "rows_only_b": only_b, "key": ", ".join(keys),
               "changed_columns": ", ".join(c["column"] for c in counted),
               "wall_clock_columns": ", ".join(c["column"] for c in columns if c["kind"] == "wall clock")}
    return summary, columns


def compare_tables(a: Path, b: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every file of two results folders: (one row per file, one row per changed column)."""
    files_a, files_b = study_files(a), study_files(b)
    summaries, columns = [], []
    for name in sorted(set(files_a) | set(files_b)):
        if name not in files_b or name not in files_a:
            summaries.append({"table": name, "status": ONLY_A if name in files_a else ONLY_B})
            continue
        if not _is_table(name):  # a fit's error or note, or any other file: by content
            same = files_a[name].read_bytes() == files_b[name].read_bytes()
            summaries.append({"table": name, "status": SAME if same else DIFFERS})
            continue
        summary, changed = diff_tables(name, _read(files_a[name]), _read(files_b[name]))
        summaries.append(summary)
        columns += changed
    table_columns = ["table", "status", "rows_a", "rows_b", "rows_only_a", "rows_only_b", "key", "changed_columns",
                     "wall_clock_columns"]
    column_columns = ["table", "column", "kind", "changed", "compared", "largest_rel_change", "min_rel_change",
                      "max_rel_change", "largest_abs_change", "at", "a_value", "b_value", "note"]
    return pd.DataFrame(summaries, columns=table_columns), pd.DataFrame(columns, columns=column_columns)


# ----------------------------------------------------------------------------- fits


FIT_KEYS = ["method", "group", "law", "parameter"]


def compare_fits(a: Path, b: Path) -> pd.DataFrame:
    """fits/*.csv of both studies side by side: one row per (method, arch, law, parameter) with each
    estimate and 95% interval, B's relative change and whether the two intervals overlap."""
    frames = []
    for side, folder in (("a", a), ("b", b)):
        parts = [_read(path) for path in sorted((folder / "fits").glob("*.csv"))]
        # the laws' parameter tables only (fits/ also holds status, crossovers, holdout, design tables)
        parts = [part for part in parts if {"parameter", "estimate"} <= set(part.columns)]
        table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=[*FIT_KEYS, "estimate"])
        table = table.reindex(columns=[*FIT_KEYS, "estimate", "ci_low", "ci_high"])
        table[FIT_KEYS] = table[FIT_KEYS].astype(str)
        frames.append(table.rename(columns={c: f"{side}_{c}" for c in ("estimate", "ci_low", "ci_high")}))
    fits = frames[0].merge(frames[1], on=FIT_KEYS, how="outer")
    with np.errstate(divide="ignore", invalid="ignore"):
        fits["rel_change"] = (fits["b_estimate"] - fits["a_estimate"]) / fits["a_estimate"].abs()
    overlap = (fits["a_ci_low"] <= fits["b_ci_high"]) & (fits["b_ci_low"] <= fits["a_ci_high"])
    missing = fits[["a_ci_low", "a_ci_high", "b_ci_low", "b_ci_high"]].isna().any(axis=1)
    fits["intervals_overlap"] = overlap.astype(object).where(~missing, None)  # None: an interval is missing
    def equal(x, y):  # NaN on both sides (no estimate, no interval) is the same
        return (fits[x] == fits[y]) | (fits[x].isna() & fits[y].isna())

    fits["same"] = equal("a_estimate", "b_estimate") & equal("a_ci_low", "b_ci_low") & equal("a_ci_high", "b_ci_high")
    return fits.rename(columns={"group": "arch"}).sort_values(["method", "arch", "law", "parameter"]).reset_index(drop=True)


# ----------------------------------------------------------------------------- verdicts


def noise_shift(numbers_a: dict, numbers_b: dict, tolerance_a: dict, tolerance_b: dict) -> tuple[float, str]:
    """How far the numbers a verdict rests on moved from A to B, in units of their noise: the largest
    |b − a| / tolerance over the numbers both studies report (tolerance: the larger of the two studies'
    own; a number without one is left out), and that number's name. (NaN, "") when nothing is comparable."""
    largest, name = math.nan, ""
    for key in sorted(numbers_a.keys() & numbers_b.keys()):
        tolerances = [t for t in (tolerance_a.get(key), tolerance_b.get(key)) if t is not None and np.isfinite(t)]
        tol = max(tolerances) if tolerances else math.nan
        change = abs(numbers_b[key] - numbers_a[key])
        if not np.isfinite(tol) or not np.isfinite(change):
            continue
        shift = change / tol if tol > 0 else (0.0 if change == 0 else math.inf)
        if math.isnan(largest) or shift > largest:
            largest, name = shift, key
    return largest, name


def bound_change(tolerance_a: dict, tolerance_b: dict) -> tuple[float, str]:
    """How much the noise bounds themselves changed from A to B: a re-run measures its own seed noise, and
    a bound estimated from a few seeds can move several-fold between two honest re-runs, which can flip a
    verdict with no number moving. The largest ratio of the two tolerances (larger over smaller, so 1 is
    no change) over the numbers both give a positive finite one, and that number's name; (NaN, "") when
    there is none."""
    largest, name = math.nan, ""
    for key in sorted(tolerance_a.keys() & tolerance_b.keys()):
        ta, tb = tolerance_a[key], tolerance_b[key]
        if ta is None or tb is None or not (np.isfinite(ta) and np.isfinite(tb)) or ta <= 0 or tb <= 0:
            continue
        ratio = max(ta, tb) / min(ta, tb)
        if math.isnan(largest) or ratio > largest:
            largest, name = ratio, key
    return largest, name


VERDICT_COLUMNS = ["id", "claim", "verdict_a", "verdict_b", "differs", "shift", "moved", "within_noise",
                   "bound_ratio", "bound_moved", "agreement_a", "evidence_a", "evidence_b"]


def compare_verdicts(claims_a: pd.DataFrame, claims_b: pd.DataFrame) -> pd.DataFrame:
    """Two claims tables (:func:`linscale.findings.claims_from_results`) side by side: id, claim, each
    verdict, ``differs``, ``shift`` (:func:`noise_shift`) with the number that moved most,
    ``within_noise``: the verdict changed although no number moved beyond its noise, and
    ``bound_ratio`` (:func:`bound_change`) with the number whose noise bound changed most: where a
    verdict changed within the noise, whether its bound moved instead; ``agreement_a``: the probability
    A's own evidence and noise gave that a re-run reaches A's verdict (the claims table's
    ``agreement``), so that the verdicts that differ can be held against what A predicted."""
    claims_a, claims_b = (c if "agreement" in c else c.assign(agreement=math.nan) for c in (claims_a, claims_b))
    merged = claims_a.merge(claims_b, on="id", how="outer", suffixes=("_a", "_b"))
    order = {key: i for i, key in enumerate([*claims_a["id"], *claims_b["id"]][::-1])}  # A's order, then B's
    merged = merged.sort_values("id", key=lambda ids: ids.map(order), ascending=False)
    rows = []
    for row in merged.itertuples(index=False):
        row = row._asdict()
        numbers_a, numbers_b, tolerance_a, tolerance_b = (row.get(k) if isinstance(row.get(k), dict) else {}
                                                          for k in ("numbers_a", "numbers_b", "tolerance_a", "tolerance_b"))
        shift, moved = noise_shift(numbers_a, numbers_b, tolerance_a, tolerance_b)
        ratio, rebound = bound_change(tolerance_a, tolerance_b)
        differs = row["verdict_a"] != row["verdict_b"]
        rows.append({"id": row["id"], "claim": row["claim_a"] if isinstance(row["claim_a"], str) else row["claim_b"],
                     "verdict_a": row["verdict_a"], "verdict_b": row["verdict_b"], "differs": bool(differs),
                     "shift": shift, "moved": moved, "within_noise": bool(differs and shift <= 1),
                     "bound_ratio": ratio, "bound_moved": rebound, "agreement_a": row.get("agreement_a", math.nan),
                     "evidence_a": row["evidence_a"], "evidence_b": row["evidence_b"]})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- the comparison


def expected_agreement_line(verdicts: pd.DataFrame) -> str:
    """A's prediction (the sum of its verdicts' agreement probabilities: the expected number a re-run
    reaches again, and the probability that all do, the verdicts taken as independent) against B."""
    p = verdicts["agreement_a"].astype(float).fillna(1.0) if "agreement_a" in verdicts else None
    if p is None or not len(p):
        return "A predicted nothing (a comparison of a claims table without agreement probabilities)"
    return (f"A predicted {p.sum():.1f} of {len(p)} verdicts to agree with a re-run (all {len(p)}: "
            f"probability {p.prod():.2f}); {int((~verdicts['differs'].astype(bool)).sum())} agree")


def compare_studies(a: str | Path, b: str | Path, labels: tuple[str, str] | None = None) -> Comparison:
    """Compare two results folders (tables, fitted laws, verdicts); see the module docstring."""
    from linscale.findings import claims_from_results

    a, b = check_results_folder(a, "A"), check_results_folder(b, "B")
    tables, columns = compare_tables(a, b)
    fits = compare_fits(a, b)
    if not (a / "eval.parquet").exists() and not (b / "eval.parquet").exists():
        # two studies without suite scores (real text: the suites need the synthetic language) have tables and
        # laws to compare but no verdicts, which all rest on the scores; they were refused for the lack
        return Comparison(a=str(a), b=str(b), tables=tables, columns=columns, fits=fits,
                          verdicts=pd.DataFrame(columns=VERDICT_COLUMNS), labels=tuple(labels or (str(a), str(b))))
    claims = []
    for label, folder in (("A", a), ("B", b)):  # a table one study lacks, named with the study's label
        try:
            claims.append(claims_from_results(str(folder.parent), folder.name))
        except ResultsError as err:
            raise CompareError(f"{label} {err}") from None
    return Comparison(a=str(a), b=str(b), tables=tables, columns=columns, fits=fits,
                      verdicts=compare_verdicts(*claims), labels=tuple(labels or (str(a), str(b))))


def write_json(comparison: Comparison, path: str | Path) -> Path:
    import datetime

    from linscale.atomic import write_json as write

    written = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return write(path, {"written": written, **comparison.to_dict()}, default=None, mode=0o644)


def rerun_comparisons(results_dir: str | Path, preset: str) -> list[Path]:
    """The comparisons of a study with its re-runs committed beside it, oldest first. A re-run is a
    results folder of its own, ``RESULTS_DIR/reruns/<date>-<what changed>/``, holding the re-run's tables
    (``PRESET/``) and ``PRESET-comparison.json`` (``linscale compare RESULTS_DIR/PRESET <that>/PRESET
    --json ...``)."""
    return sorted((Path(results_dir) / "reruns").glob(f"*/{preset}-comparison.json"))


TRAINED = ["run_id", "step", "train_loss", "val_loss"]  # what a draw of the training is: every logged loss


def training_fingerprint(losses: pd.DataFrame) -> tuple:
    """What tells one draw of the training from another: every logged loss (the :data:`TRAINED` columns
    ``losses`` has), in run and step order, with NaN equal to NaN. Two runs or studies with the same
    fingerprint trained to the same bits, whichever CPU or items scored them."""
    columns = [c for c in TRAINED if c in losses]
    ordered = losses[columns].sort_values([c for c in ("run_id", "step") if c in columns])
    return tuple(ordered.astype(object).where(ordered.notna(), None).itertuples(index=False, name=None))


def distinct_draws(comparisons: list[Path], preset: str) -> tuple[list[Path], dict[str, str]]:
    """The re-runs (paths from :func:`rerun_comparisons`, oldest first) that are independent draws of
    the training, for tallies that treat re-runs as independent: a re-run whose main grid trained to the
    losses of an earlier one bit for bit (``PRESET/runs.parquet``: every logged training and validation
    loss; for example the same seed on a second CPU whose code paths the pins make identical) is the
    same draw, counted once. Re-runs without committed tables are left out. Returns the kept paths and,
    for each one left out as a repeat, the name of the earlier re-run it repeats."""
    kept, repeats, seen = [], {}, []
    for path in comparisons:
        table = path.parent / preset / "runs.parquet"
        if not table.is_file():
            continue
        key = training_fingerprint(read_table(table, tuple(TRAINED)))
        earlier = next((name for name, other in seen if other == key), None)
        if earlier:
            repeats[path.parent.name] = earlier
        else:
            kept.append(path)
            seen.append((path.parent.name, key))
    return kept, repeats


def summarise(data: dict) -> dict:
    """The headline numbers of a comparison read by :func:`read_comparison`, for the book: how many
    tables, fitted estimates and verdicts differ, and how far the validation losses moved."""
    tables, columns, fits, verdicts = data["tables"], data["columns"], data["fits"], data["verdicts"]
    losses = columns[(columns["table"] == "runs.parquet") & (columns["column"] == "val_loss")] if len(columns) else columns
    overlap = fits["intervals_overlap"] if "intervals_overlap" in fits else pd.Series(dtype=object)
    return {"tables": len(tables), "tables_changed": len(data["changed_tables"]),
            "val_loss_changed": int(losses["changed"].iloc[0]) if len(losses) else 0,
            "val_loss_compared": int(losses["compared"].iloc[0]) if len(losses) else 0,
            "val_loss_min_change": float(losses["min_rel_change"].iloc[0]) if len(losses) else 0.0,
            "val_loss_max_change": float(losses["max_rel_change"].iloc[0]) if len(losses) else 0.0,
            "val_loss_moved": (f"{int(losses['changed'].iloc[0])} of {int(losses['compared'].iloc[0])} validation "
                               f"losses moved, by {float(losses['min_rel_change'].iloc[0]):+.1%} to "
                               f"{float(losses['max_rel_change'].iloc[0]):+.1%}") if len(losses) else
                              "no validation loss moved",
            "estimates": len(fits), "estimates_changed": int((~fits["same"].astype(bool)).sum()) if len(fits) else 0,
            "intervals_apart": int((overlap == False).sum()),  # noqa: E712 (None: no interval on a side)
            "verdicts": len(verdicts), "verdicts_differ": len(data["differing_verdicts"]),
            "flips_inside_noise": int(verdicts["within_noise"].astype(bool).sum()) if len(verdicts) else 0,
            # reproduced <-> not reproduced: what the rules are built to make impossible within the noise
            "definite_flips": int(sum({a, b} == {"reproduced", "not reproduced"}
                                      for a, b in zip(verdicts.get("verdict_a", []), verdicts.get("verdict_b", [])))),
            # A's prediction: the expected number of verdicts a re-run reaches again (NaN: an older comparison)
            "expected_agree": float(verdicts["agreement_a"].astype(float).fillna(1.0).sum())
            if "agreement_a" in verdicts and len(verdicts) else math.nan}


def agreement_tally(comparisons: list[dict]) -> pd.DataFrame:
    """Per claim, over several re-runs of one study (comparisons read by :func:`read_comparison`, each
    with A's predicted agreement): the agreement A predicted, how many re-runs reached A's verdict, and
    how surprising that count is if the prediction is right (the probability of as few agreeing, the
    re-runs taken as independent draws): a calibration check of the predictions on real re-runs. One
    row per claim and a last row ``all``; ``expected_differ`` and ``differed``: how many re-runs A
    predicted to differ and how many did."""
    rows = {}
    for data in comparisons:
        verdicts = data["verdicts"]
        if "agreement_a" not in verdicts:
            continue
        for _, row in verdicts.iterrows():
            entry = rows.setdefault(row["id"], dict(claim=row["id"], predicted=float(row["agreement_a"]), reruns=0, agreed=0))
            entry["reruns"] += 1
            entry["agreed"] += int(not bool(row["differs"]))
    columns = ["claim", "predicted", "reruns", "agreed", "expected_differ", "differed", "p_as_few"]
    table = pd.DataFrame(list(rows.values()), columns=["claim", "predicted", "reruns", "agreed"])
    if not len(table):
        return pd.DataFrame(columns=columns)
    from scipy import stats

    p = table["predicted"].fillna(1.0).clip(0, 1)
    table["expected_differ"] = (1 - p) * table["reruns"]
    table["differed"] = table["reruns"] - table["agreed"]
    table["p_as_few"] = [float(stats.binom.cdf(k, n, q)) for k, n, q in zip(table["agreed"], table["reruns"], p)]
    total = dict(claim="all", predicted=math.nan, reruns=int(table["reruns"].sum()), agreed=int(table["agreed"].sum()),
                 expected_differ=float(table["expected_differ"].sum()), differed=int(table["differed"].sum()),
                 p_as_few=math.nan)
    return pd.concat([table, pd.DataFrame([total])], ignore_index=True)[columns]


def differing_verdicts_reached(comparisons: list[dict], claim: str) -> dict[str, int]:
    """The verdicts that the re-runs :func:`agreement_tally` counts reached on ``claim`` where they differ from
    A's, with how many reached each, most first: which way the re-runs went where a verdict did not hold."""
    reached = [row["verdict_b"] for data in comparisons if "agreement_a" in data["verdicts"]
               for _, row in data["verdicts"].iterrows() if row["id"] == claim and row["differs"]]
    return {v: reached.count(v) for v in sorted(set(reached), key=lambda v: (-reached.count(v), v))}


def read_comparison(path: str | Path) -> dict:
    """A comparison written by ``linscale compare --json``, its tables as DataFrames (for the book)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise CompareError(f"{path}: not readable as a comparison (expected the JSON of `linscale compare "
                           f"--json`): {error}") from None
    missing = [k for k in ("labels", "changed_tables", "differing_verdicts", "tables", "columns", "fits", "verdicts")
               if not isinstance(data, dict) or k not in data]
    if missing:
        raise CompareError(f"{path}: not a comparison written by `linscale compare --json` (no {', '.join(missing)})")
    for key in ("tables", "columns", "fits", "verdicts"):
        data[key] = pd.DataFrame(data[key])
    return data


def _plain(value):
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if value is pd.NA or value is pd.NaT:
        return None
    return value


# ----------------------------------------------------------------------------- the report


def _pct(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if math.isinf(value):
        return "+inf (from 0)"  # from zero, or from no value
    if abs(value) >= 9:  # tenfold and more, or a sign turned: a factor reads better than thousands of percent
        return f"x{1 + value:.3g}"
    return f"{value:+.3%}" if abs(value) < 1e-3 else f"{value:+.2%}"


def _bound(ratio: float) -> str:
    return "–" if ratio != ratio else f"x{ratio:.2f}"  # NaN: no bound on both sides


def _move(shift: float, moved: str) -> str:
    if shift != shift:  # NaN: no number with a tolerance to compare
        return "–"
    return "inf" if math.isinf(shift) else f"{shift:.2f}" + (f" ({moved})" if shift > 0 else "")


def _num(value: float) -> str:
    return "–" if value is None or not np.isfinite(value) else f"{value:.4g}"


def _text_table(frame: pd.DataFrame, indent: str = "") -> list[str]:
    """Rows of left-aligned columns (pandas right-aligns text, which reads badly for words)."""
    cells = [[str(c) for c in frame.columns]] + [[str(v) for v in row] for row in frame.itertuples(index=False)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(frame.columns))]
    return [indent + "  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]


def study_preset(folder: str | Path) -> str:
    """The preset a results folder is a study of: the one its runs table records (``preset``), else the
    folder's name (``linscale study`` writes ``results/<preset>``; a copy may be named otherwise). The runs
    table is runs.parquet, or runs.csv in a folder of CSV alone (which compare takes as a results folder)."""
    parquet, csv = Path(folder) / "runs.parquet", Path(folder) / "runs.csv"
    try:
        table = (pd.read_parquet(parquet, columns=["preset"]) if parquet.is_file() or not csv.is_file()
                 else pd.read_csv(csv, usecols=["preset"]))
        recorded = table["preset"].dropna().unique()
    except (OSError, KeyError, ValueError):  # no runs table, or one without the column: the name says it
        recorded = []
    return str(recorded[0]) if len(recorded) == 1 else Path(folder).name


def preset_note(a: str | Path, b: str | Path) -> str | None:
    """A line for two folders of different presets (each side's verdicts are judged on its own grid), else
    None."""
    presets = study_preset(a), study_preset(b)
    if presets[0] == presets[1]:
        return None
    return (f"note: A is a study of preset {presets[0]}, B of preset {presets[1]}: their grids differ, so their "
            "tables cannot agree, and each side's verdicts are judged on its own grid")


# the overrides a re-run may differ in: A's predicted agreement is made for a re-run with another seed (or CPU)
RERUN_OVERRIDES = ("train.seed",)


def settings_note(a: str | Path, b: str | Path) -> str | None:
    """A line for two studies made with different ``--set`` overrides (their overrides.json) beyond the seed,
    else None: B is then another study, not a re-run of A, and A's predicted agreement does not apply (a
    study at another learning rate was held to it, with nothing said)."""
    def settings(folder: Path) -> dict:
        pairs = (item.split("=", 1) for item in study_overrides(folder.name, folder.parent))
        return {key.strip(): value.strip() for key, value in pairs if key.strip() not in RERUN_OVERRIDES}

    def show(chosen: dict) -> str:
        return ("--set " + " ".join(f"{k}={v}" for k, v in chosen.items())) if chosen else "no --set"

    ours, theirs = settings(Path(a)), settings(Path(b))
    if ours == theirs:
        return None
    return (f"note: A was made with {show(ours)}, B with {show(theirs)} (beyond the seed): B is another study, not "
            "a re-run of A, so A's predicted agreement, made for a re-run with another seed or CPU, does not apply")


def format_comparison(c: Comparison) -> str:
    """The comparison as text for a terminal."""
    lines = [f"A: {c.labels[0]}" + (f"  ({c.a})" if c.labels[0] != c.a else ""),
             f"B: {c.labels[1]}" + (f"  ({c.b})" if c.labels[1] != c.b else "")]
    note, other_study = preset_note(c.a, c.b), settings_note(c.a, c.b)
    lines += [line for line in (note, other_study) if line] + [""]
    changed = c.changed_tables
    lines.append(f"== Tables: {len(changed)} of {len(c.tables)} differ (values compared bit for bit; "
                 f"wall-clock and location columns shown apart, never counted) ==")
    for t in c.tables.itertuples(index=False):
        if t.status in (ONLY_A, ONLY_B):
            lines.append(f"{t.table}: {t.status}")
            continue
        if isinstance(t.rows_a, float) and math.isnan(t.rows_a):  # a file compared by content
            lines.append(f"{t.table}: {t.status}")
            continue
        rows = f"{int(t.rows_a)} rows" if t.rows_a == t.rows_b else f"{int(t.rows_a)} rows in A, {int(t.rows_b)} in B"
        extra = [f"{int(t.rows_only_a)} only in A"] * bool(t.rows_only_a) + [f"{int(t.rows_only_b)} only in B"] * bool(t.rows_only_b)
        lines.append(f"{t.table}: {t.status} ({rows}{'; ' + ', '.join(extra) if extra else ''})")
        for col in c.columns[c.columns["table"] == t.table].itertuples(index=False):
            tag = "" if col.kind == "value" else f" [{col.kind}, not counted]"
            if isinstance(col.note, str):
                lines.append(f"    {col.column}{tag}: {col.note}")
            elif pd.notna(col.largest_rel_change):
                lines.append(f"    {col.column}{tag}: {col.changed}/{col.compared} changed, relative change "
                             f"{_pct(col.min_rel_change)} to {_pct(col.max_rel_change)}; largest at {col.at} "
                             f"({_num(col.a_value)} -> {_num(col.b_value)})")
            else:
                lines.append(f"    {col.column}{tag}: {col.changed}/{col.compared} changed")
    lines.append("")
    fits = c.fits
    moved = fits[~fits["same"]]
    lines.append(f"== Fitted laws (fits/*.csv): {len(moved)} of {len(fits)} estimates or intervals differ ==")
    if len(moved):
        def show(prefix, row):
            return f"{_num(row[prefix + 'estimate'])} [{_num(row[prefix + 'ci_low'])}, {_num(row[prefix + 'ci_high'])}]"

        view = pd.DataFrame({"method": moved["method"], "arch": moved["arch"], "law": moved["law"],
                             "parameter": moved["parameter"],
                             "A": [show("a_", r) for _, r in moved.iterrows()],
                             "B": [show("b_", r) for _, r in moved.iterrows()],
                             "change": moved["rel_change"].map(_pct),
                             "intervals overlap": moved["intervals_overlap"].map(
                                 lambda v: "–" if pd.isna(v) else "yes" if v else "NO")})
        lines += _text_table(view, "    ")
    lines.append("")
    v = c.verdicts
    if not len(v):
        lines.append("== Verdicts: none (neither folder has eval.parquet, the suites' scores every verdict rests on: "
                     "a study of real text has none) ==")
        return "\n".join(lines)
    lines.append(f"== Verdicts: {int(v['differs'].sum())} of {len(v)} differ "
                 f"(move: the largest change of the numbers a verdict rests on, in units of their noise; "
                 f"bound: the largest change of a noise bound itself, B's over A's or A's over B's) ==")
    view = pd.DataFrame({"": np.where(v["differs"], np.where(v["within_noise"], "!!", "≠"), ""),
                         "claim": v["id"], "A": v["verdict_a"], "B": v["verdict_b"],
                         "move": [_move(s, m) for s, m in zip(v["shift"], v["moved"])],
                         "bound": v["bound_ratio"].map(_bound),
                         "A predicted": v["agreement_a"].map(lambda p: "–" if pd.isna(p) else f"{p:.2f}")})
    lines += _text_table(view)
    lines.append(expected_agreement_line(v) if not (note or other_study) else
                 "A's predicted agreement does not apply: B is not a re-run of A (the note at the top)")
    if v["within_noise"].any():
        lines.append("!! the verdict changed although no number it rests on moved beyond its noise")
    lines.append("")
    lines.append("verdicts differ: " + ", ".join(c.differing_verdicts) if c.differing_verdicts else
                 "every verdict is the same")
    return "\n".join(lines)
