"""Input tables for the fits: validation, column names, and simulated tables with a known law.

Expected input (the sweep's results table, :mod:`linscale.train.results`, or any published table of runs):

| column    | meaning                                              | aliases accepted      |
|-----------|------------------------------------------------------|-----------------------|
| run_id    | one training run; its rows are checkpoints           | (absent: one run/row) |
| params    | N, non-embedding parameters (the paper's definition) | ``N``                 |
| tokens    | D, tokens seen at that checkpoint                    | ``D``                 |
| flops     | C, cumulative training FLOPs                         | (absent: C = 6·N·D)   |
| loss      | the loss to fit, nats/token (configurable column)    | ``train_loss``        |

If ``tokens`` is missing but ``flops`` is there (as in tables extracted from published figures),
D = C/(6N). Rows of diverged runs (``diverged`` true) and step-0 rows (tokens = 0) are dropped with a
warning; anything else that is not a positive finite number is an error naming the column and row.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from linscale.config import ConfigError
from linscale.flops import PF_DAY

LOSS_COLUMNS = ("loss", "train_loss")  # tried in this order when no loss column is named (paper: training loss)
PARAMS_ALIASES = ("params", "N")
TOKENS_ALIASES = ("tokens", "D")


class LawsInputError(ConfigError):
    """The runs table cannot be fitted as asked; the message names the column, group or method."""


def _pick(frame: pd.DataFrame, given: str | None, aliases: tuple[str, ...], what: str, required: bool = True):
    if given is not None:
        if given not in frame.columns:
            raise LawsInputError(f"{what}: column {given!r} not in the table (columns: {', '.join(map(str, frame.columns))})")
        return given
    for name in aliases:
        if name in frame.columns:
            return name
    if required:
        raise LawsInputError(f"{what}: no column named {' or '.join(map(repr, aliases))} in the table "
                             f"(columns: {', '.join(map(str, frame.columns))})")
    return None


def read_table(path) -> pd.DataFrame:
    """Read a runs table from CSV or Parquet (by suffix); errors name the file."""
    from pathlib import Path

    path = Path(path)
    if path.is_dir():  # a study's results folder, most likely: name the table in it
        inside = sorted(p.name for p in path.iterdir() if p.suffix.lower() in (".parquet", ".csv"))
        hint = f" such as {path / ('runs.parquet' if 'runs.parquet' in inside else inside[0])}" if inside else ""
        raise LawsInputError(f"{path}: a folder; expected a .csv or .parquet file{hint}")
    if not path.is_file():
        raise LawsInputError(f"{path}: no such file")
    if path.suffix.lower() not in (".parquet", ".pq", ".csv", ".txt", ".gz"):
        raise LawsInputError(f"{path}: expected a .csv or .parquet file")
    try:
        table = pd.read_parquet(path) if path.suffix.lower() in (".parquet", ".pq") else pd.read_csv(path)
    except Exception as err:  # pandas raises many kinds; the user needs the file name and the reason
        raise LawsInputError(f"{path}: cannot read the table ({type(err).__name__}: "
                             f"{(str(err).strip().splitlines() or [''])[0]})") from None
    if not len(table):  # said here, where the file is known ("runs: the table is empty" named none)
        raise LawsInputError(f"{path}: the table has no rows")
    return table


PREPARE_KEYS = ("loss_column", "params_column", "tokens_column", "flops_column", "run_column", "drop_diverged",
                "drop_highest_loss")


def pop_prepare_kwargs(kwargs: dict) -> dict:
    """Remove and return the ``prepare_runs`` options from a fit's keyword arguments."""
    return {k: kwargs.pop(k) for k in PREPARE_KEYS if k in kwargs}


def prepare_runs(runs: pd.DataFrame, loss_column: str | None = None, params_column: str | None = None,
                 tokens_column: str | None = None, flops_column: str | None = None,
                 run_column: str | None = None, drop_diverged: bool = True,
                 drop_highest_loss: int = 0) -> pd.DataFrame:
    """Validate a runs table and return it with canonical columns.

    ``drop_highest_loss``: an explicit outlier rule, dropping that many rows with the highest loss
    (Besiroglu et al. drop 5 of the 245 points they extracted from Chinchilla's figure).

    Returns a copy with ``run_id, params, tokens, flops, pf_days, loss`` (floats, run_id as str) plus
    every other column of the input (``arch``, ``step``, ...). ``attrs["loss_column"]`` records which
    column the loss came from and ``attrs["derived"]`` which quantities were derived (C = 6ND or D = C/6N).
    """
    if not isinstance(runs, pd.DataFrame):
        raise LawsInputError(f"runs: expected a pandas DataFrame, got {type(runs).__name__}")
    if len(runs) == 0:
        raise LawsInputError("runs: the table is empty")
    frame = runs.copy()
    loss_col = _pick(frame, loss_column, LOSS_COLUMNS, "loss")
    n_col = _pick(frame, params_column, PARAMS_ALIASES, "params")
    d_col = _pick(frame, tokens_column, TOKENS_ALIASES, "tokens", required=False)
    c_col = _pick(frame, flops_column, ("flops",), "flops", required=False)
    r_col = _pick(frame, run_column, ("run_id",), "run_id", required=False)
    roles = {"loss": loss_col, "params": n_col, "tokens": d_col, "flops": c_col, "run": r_col}
    for role, column in roles.items():  # renamed to both, one would be lost: a KeyError deep in pandas
        both = [other for other, chosen in roles.items() if chosen == column and other != role]
        if column is not None and both:
            raise LawsInputError(f"{column}: the {role} column and the {both[0]} column; each needs its own "
                                 f"({role}_column, {both[0]}_column)")
    if d_col is None and c_col is None:
        raise LawsInputError("tokens: the table needs a tokens (D) column, or a flops column to derive D = C/(6N)")

    if drop_diverged and "diverged" in frame.columns:
        bad = frame["diverged"].astype(bool)
        if bad.any():
            warnings.warn(f"dropping {int(bad.sum())} rows of diverged runs", stacklevel=2)
            frame = frame[~bad]
    out = frame.drop(columns=[c for c in ("run_id", "params", "tokens", "flops", "pf_days", "loss")
                              if c in frame.columns and c not in (loss_col, n_col, d_col, c_col, r_col)])
    out = out.rename(columns={loss_col: "loss", n_col: "params"})
    derived = []
    numeric = {"loss": loss_col, "params": n_col}
    if d_col is not None:
        out = out.rename(columns={d_col: "tokens"})
        numeric["tokens"] = d_col
    if c_col is not None:
        out = out.rename(columns={c_col: "flops"})
        numeric["flops"] = c_col
    for canon, original in numeric.items():
        try:
            out[canon] = pd.to_numeric(out[canon], errors="raise").astype(float)
        except (ValueError, TypeError) as err:
            raise LawsInputError(f"{original}: expected numbers ({err})") from None

    if "tokens" in out.columns:
        step0 = out["tokens"] == 0
        if step0.any():
            warnings.warn(f"dropping {int(step0.sum())} rows with {numeric['tokens']} = 0 (before training)", stacklevel=2)
            out = out[~step0]
    nan_loss = out["loss"].isna()
    if nan_loss.any():
        warnings.warn(f"dropping {int(nan_loss.sum())} rows where {loss_col} is missing", stacklevel=2)
        out = out[~nan_loss]
    if len(out) == 0:
        raise LawsInputError(f"{loss_col}: no rows left to fit after dropping missing/diverged/step-0 rows")

    for canon, original in numeric.items():
        values = out[canon].to_numpy()
        bad = ~np.isfinite(values) | (values <= 0)
        if bad.any():
            row = out.index[np.argmax(bad)]
            raise LawsInputError(f"{original}: expected positive finite values, got {values[np.argmax(bad)].item()!r} "
                                 f"at row {row}")
    if drop_highest_loss:
        if not 0 <= drop_highest_loss < len(out):
            raise LawsInputError(f"drop_highest_loss: expected 0 to {len(out) - 1}, got {drop_highest_loss}")
        warnings.warn(f"dropping the {drop_highest_loss} rows with the highest {loss_col} (outlier rule)", stacklevel=2)
        out = out.drop(out["loss"].nlargest(drop_highest_loss).index)
    if "tokens" not in out.columns:
        out["tokens"] = out["flops"] / (6 * out["params"])
        derived.append("tokens = flops / (6 params)")
    if "flops" not in out.columns:
        out["flops"] = 6 * out["params"] * out["tokens"]
        derived.append("flops = 6 params tokens")
    out["pf_days"] = out["flops"] / PF_DAY
    if r_col is None:
        out["run_id"] = [f"row{i}" for i in range(len(out))]
        derived.append("run_id = one run per row")
    else:
        out = out.rename(columns={r_col: "run_id"})
        out["run_id"] = out["run_id"].astype(str)
    out = out.sort_values(["run_id", "flops"], kind="stable").reset_index(drop=True)
    out.attrs = {"loss_column": loss_col, "derived": derived}
    return out


def groups(frame: pd.DataFrame, by: str | None):
    """Yield (group name, sub-frame): one per value of ``by``, or ("all", frame).

    The default grouping column "arch" is optional: a table without it is one group.
    """
    if by is None or (by == "arch" and by not in frame.columns):
        yield "all", frame
        return
    if by not in frame.columns:
        raise LawsInputError(f"{by}: cannot group by a column that is not in the table")
    unnamed = frame[by].isna()
    if unnamed.any():  # groupby drops them without a word, as prepare_runs says of a missing loss
        warnings.warn(f"dropping {int(unnamed.sum())} rows where {by} is missing (no group to fit them in)",
                      stacklevel=2)
    for name, sub in frame.groupby(by, sort=True):
        yield str(name), sub


def simulate_runs(E: float = 1.69, A: float = 406.4, B: float = 410.7, alpha: float = 0.34, beta: float = 0.28,
                  sizes=(1e7, 2e7, 5e7, 1e8, 2e8, 5e8, 1e9), tokens_per_param=(2.0, 200.0), n_checkpoints: int = 10,
                  runs_per_size: int = 1, noise: float = 0.0, seed: int = 0, arch: str = "sim") -> pd.DataFrame:
    """A results table drawn from L(N, D) = E + A/N^alpha + B/D^beta with multiplicative noise.

    Each run of size N has ``n_checkpoints`` checkpoints log-spaced in D between
    ``tokens_per_param[0]·N`` and ``tokens_per_param[1]·N``; C = 6·N·D, and
    log L = log L(N, D) + noise·ε, ε ~ N(0, 1), independently per checkpoint. Every checkpoint lies
    on the law, as if each were the end of its own properly annealed run. Columns follow the results table's
    (run_id, arch, params, tokens, flops, pf_days, step, loss, train_loss).
    """
    rng = np.random.default_rng(seed)
    rows = []
    for n in sizes:
        for rep in range(runs_per_size):
            d = n * np.geomspace(tokens_per_param[0], tokens_per_param[1], n_checkpoints)
            law = E + A / n**alpha + B / d**beta
            loss = law * np.exp(noise * rng.standard_normal(len(d)))
            for step, (dd, ll) in enumerate(zip(d, loss), start=1):
                rows.append({"run_id": f"{arch}-{n:.3g}-{rep}", "arch": arch, "params": float(n), "tokens": float(dd),
                             "flops": 6.0 * n * dd, "step": step, "loss": float(ll)})
    frame = pd.DataFrame(rows)
    frame["pf_days"] = frame["flops"] / PF_DAY
    frame["train_loss"] = frame["loss"]
    return frame


def optimal_allocation(C, E: float, A: float, B: float, alpha: float, beta: float):
    """Chinchilla's closed form under C = 6ND: (N_opt, D_opt) = (G·(C/6)^a, G^−1·(C/6)^b)."""
    a, b = beta / (alpha + beta), alpha / (alpha + beta)
    G = (alpha * A / (beta * B)) ** (1 / (alpha + beta))
    C = np.asarray(C, dtype=float)
    return G * (C / 6) ** a, (C / 6) ** b / G


def simulate_isoflop(E: float = 1.69, A: float = 406.4, B: float = 410.7, alpha: float = 0.34, beta: float = 0.28,
                     budgets=tuple(np.geomspace(1e18, 1e22, 9)), sizes_per_budget: int = 7, width: float = 2.0,
                     centre: str = "optimum", tokens_per_param: float = 20.0, noise: float = 0.0,
                     seed: int = 0) -> pd.DataFrame:
    """An IsoFLOP design: at each budget C, sizes log-spaced over [N_c/width, N_c·width], D = C/(6N).

    ``centre="optimum"`` puts N_c at the law's true N_opt(C); ``"tokens_per_param"`` at the common guess
    D/N = ``tokens_per_param`` (N_c = sqrt(C / (6·tokens_per_param))). One run (one row) per point.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for C in budgets:
        if centre == "optimum":
            n_c = float(optimal_allocation(C, E, A, B, alpha, beta)[0])
        elif centre == "tokens_per_param":
            n_c = float(np.sqrt(C / (6 * tokens_per_param)))
        else:
            raise LawsInputError(f"centre: {centre!r} is not 'optimum' or 'tokens_per_param'")
        for n in n_c * np.geomspace(1 / width, width, sizes_per_budget):
            d = C / (6 * n)
            loss = (E + A / n**alpha + B / d**beta) * np.exp(noise * rng.standard_normal())
            rows.append({"run_id": f"C{C:.3g}-N{n:.4g}", "params": n, "tokens": d, "flops": float(C), "loss": loss})
    frame = pd.DataFrame(rows)
    frame["pf_days"] = frame["flops"] / PF_DAY
    return frame
