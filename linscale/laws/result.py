"""The result of a fit: tidy DataFrames that notebooks render directly."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import pandas as pd

from linscale.laws.data import LawsInputError


@dataclass(frozen=True)
class LawFit:
    """One method's fit of one or more groups (architectures).

    params:      tidy, one row per (group, law, parameter): estimate, se, ci_low, ci_high, ci_method, ...
    points:      the points the laws were fitted to, with fitted values and log residuals
    diagnostics: one row per group: counts, optimiser status, what was excluded
    draws:       bootstrap replicates (resample, group, law, parameter, value); empty without bootstrap
    """

    method: str
    params: pd.DataFrame
    points: pd.DataFrame
    diagnostics: pd.DataFrame
    draws: pd.DataFrame = field(default_factory=pd.DataFrame)

    def value(self, law: str, parameter: str, group: str | None = None, column: str = "estimate") -> float:
        """One number from ``params``, e.g. ``fit.value("L(C)", "exponent", "tnl")``."""
        rows = self.params[(self.params["law"] == law) & (self.params["parameter"] == parameter)]
        if group is not None:
            rows = rows[rows["group"] == group]
        if len(rows) != 1:
            raise LawsInputError(f"{law}.{parameter}: {len(rows)} rows match (groups: {sorted(self.params['group'].unique())})")
        return float(rows[column].iloc[0])

    def with_(self, **changes) -> "LawFit":
        return replace(self, **changes)


def concat(method: str, parts: list[tuple]) -> LawFit:
    """Join per-group (params rows, points frame, diagnostics dict) into one LawFit."""
    params = pd.DataFrame([row for rows, _, _ in parts for row in rows])
    params.insert(0, "method", method)
    points = pd.concat([p for _, p, _ in parts], ignore_index=True)
    diagnostics = pd.DataFrame([d for _, _, d in parts])
    diagnostics.insert(0, "method", method)
    return LawFit(method=method, params=params, points=points, diagnostics=diagnostics)


def concat_fits(fits: list[LawFit]) -> LawFit:
    """LawFits of one method over disjoint groups (e.g. one per architecture) as one LawFit."""
    if not fits:
        raise LawsInputError("concat_fits: no fits to join")
    draws = [f.draws for f in fits if len(f.draws)]
    return LawFit(method=fits[0].method, params=pd.concat([f.params for f in fits], ignore_index=True),
                  points=pd.concat([f.points for f in fits], ignore_index=True),
                  diagnostics=pd.concat([f.diagnostics for f in fits], ignore_index=True),
                  draws=pd.concat(draws, ignore_index=True) if draws else pd.DataFrame())
