"""Our fits next to the paper's Table 3 (L(C), N_opt(C), D_opt(C) per architecture)."""
from __future__ import annotations

from importlib import resources

import pandas as pd

from linscale.flops import PF_DAY
from linscale.laws.data import LawsInputError
from linscale.laws.result import LawFit


def paper_table3() -> pd.DataFrame:
    """The paper's Table 3 as a tidy table: arch, law, parameter, value, compute_unit (PF-days)."""
    with resources.files("linscale.laws").joinpath("paper_table3.csv").open() as f:
        return pd.read_csv(f, comment="#")


def compare_with_paper(fit: LawFit) -> pd.DataFrame:
    """One row per (arch, law, parameter) that both our fit and Table 3 have.

    The fit's ``group`` must be the architecture (fit with ``by="arch"``). Coefficients are converted
    to the fit's compute unit (k_FLOPs = k_PF-days · PF_DAY^−e). Columns: group, law, parameter, paper,
    estimate, ci_low, ci_high, ci_method, ratio (estimate/paper), paper_in_ci.
    """
    if "compute_unit" not in fit.params or fit.method not in ("approach1", "approach2"):
        raise LawsInputError(f"compare_with_paper: Table 3 has L(C), N_opt(C), D_opt(C) power laws; "
                             f"a {fit.method} fit has none")
    paper = paper_table3().rename(columns={"arch": "group", "value": "paper"})
    ours = fit.params[fit.params["law"].isin(paper["law"].unique())]
    table = paper.drop(columns="compute_unit").merge(ours, on=["group", "law", "parameter"], how="inner")
    if len(table) == 0:
        raise LawsInputError(f"compare_with_paper: no fitted group is one of the paper's architectures "
                             f"({', '.join(sorted(paper['group'].unique()))}); fit with by='arch'")
    flops_unit = table["compute_unit"] == "flops"
    exponents = paper.set_index(["group", "law", "parameter"])["paper"]
    for i in table.index[flops_unit & (table["parameter"] == "coefficient")]:
        e = exponents[(table.at[i, "group"], table.at[i, "law"], "exponent")]
        table.at[i, "paper"] = table.at[i, "paper"] * PF_DAY ** (-e)
    table["ratio"] = table["estimate"] / table["paper"]
    inside = ((table["ci_low"] <= table["paper"]) & (table["paper"] <= table["ci_high"])).astype("boolean")
    inside[table["ci_low"].isna()] = pd.NA  # no interval, no verdict
    table["paper_in_ci"] = inside
    return table[["group", "law", "parameter", "paper", "estimate", "ci_low", "ci_high", "ci_method", "ratio",
                  "paper_in_ci", "compute_unit"]]
