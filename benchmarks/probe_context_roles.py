"""Do the in-context skills bend the law? The cpu grid's loss split by token role and refitted (issue 15)

    python benchmarks/probe_context_roles.py                    # about 25 minutes on 2 cores
    python benchmarks/probe_context_roles.py --results benchmarks/results/X.md --tables results/probes/NAME

**Registered on 2026-12-04 (this script's first commit), before any of these runs was trained** (the
rule is ``context_verdict``, in ``linscale.findings``):

- *Why*: five probes found no single cause of the misfit by size (each run's mean log residual around
  approach 3's law). Its shape is the same for all four architectures on the committed runs: s2 and s3
  above their law (+0.7% to +3.2%), s5 and s6 below it (-0.2% to -4.7%), a bend rather than scatter.
  The retrieval tasks jump at the same place: the needle's weighted accuracy goes from 0.04 to 0.50
  (LLaMA), 0.11 to 0.60 (TNL) and 0.26 to 0.82 (cosFormer2) between s3 and s4. A skill that appears
  between two sizes lowers the loss in a step that no single power law in N follows. The role table
  (``linscale.eval.roles``) splits the validation loss exactly by what each label asks of the model;
  three roles read the document's own bindings (``binding``, ``query_variable``, ``query_value``: about
  12% of the labels), the other five (sentence starts, which fact, a fact's object, filler grammar,
  determined words) ask for knowledge and grammar that the weights hold. If the in-context skills'
  arrival is what the law cannot follow, a law fitted on the other labels' loss sits much closer to it.
- *Runs*: the 24 runs of the cpu grid's main sweep, retrained exactly as the study trains them (seed 0,
  each size's budget and LR, one thread, the pinned code paths), with one change: an export at every one
  of their 24 checkpoints (``train.exports=all``), which the role table needs and the committed study
  does not keep. A control: every retrained run's validation loss at every checkpoint equals the
  committed one within 0.1% (relative), so the probe reads the committed runs.
- *Measure*, per architecture: from the role table of every export on the validation rows, two losses
  per checkpoint: the mean model nll over every label (the validation loss) and over the labels of the
  five roles that do not read the bindings (the context-free loss). Each is fitted by approach 3 with E
  fixed at its own exact value on the same labels (the mean Bayes nll: the language's own loss there),
  no bootstrap, on the rows the study fits (its window on the training loss). Misfit: the sd over runs
  of each run's mean log residual (the study's). Ratio = context-free misfit / every-label misfit.
- *Rule*, per architecture: the in-context skills explain the misfit if the ratio is at most 0.5, do not
  explain it if at least 0.8, partly between (``context_verdict``); over all four with the same
  thresholds (``ratio_verdict``).
- *What it decides*: if they explain it over all four, the scaling-laws chapter reports the context-free
  law beside the committed one, and the next grid's design check simulates a loss with a step in it;
  otherwise the book says the bend is not the in-context skills, and nothing else changes.
- *Level*: the context-free loss sits about 10% lower than the validation loss (its Bayes value 1.22
  against 1.34 nats), so the same misfit in nats is about 10% larger in log terms: the rule is, if
  anything, harder to meet for the context-free loss.
- *My prediction*: explains for LLaMA, TNL and cosFormer2 (ratios 0.3-0.5), whose needle appears between
  s3 and s4; partly for HGRN2 (0.5-0.8), whose needle never does (0.02-0.22) and whose misfit is mostly
  its s6. Over all four: partly.
- *Also reported, outside the rule*: each run's mean log residual under both laws; the law fitted on the
  in-context labels alone (its misfit and a); both laws' a.

*Amended on 2026-12-04, after the verdict was read* (the rule, its inputs and the verdict are unchanged):
the report adds a table read after the verdict, approach 3 (E fixed at the role's exact nll) fitted on
each role's loss alone, to see where the bend lives; roles whose exact nll is 0 (a fact's object,
determined words) cannot be fitted in that form and are listed without a fit.

Runs land in ``--out`` (resumable: a finished run is not trained again, a role table not evaluated
again); the tables go to ``--results`` (Markdown, with machine and date) and as CSV files to ``--tables``.
"""
from __future__ import annotations

import argparse
import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

CONTEXT_ROLES = ("binding", "query_variable", "query_value")  # the labels that read the document's bindings
CONTROL_TOLERANCE = 0.001  # relative, every checkpoint's validation loss against the committed one
PARTS = ("every label", "context-free", "in-context")


def part_losses(roles):
    """Per run and step of a role table (``linscale.eval.roles``): the mean model nll and the mean Bayes nll
    over every label, over the labels of the roles outside ``CONTEXT_ROLES`` (context-free) and over those
    inside (in-context). Columns run_id, step, part, loss, bayes, share (the part's share of the labels)."""
    import pandas as pd

    rows = []
    for part, chosen in (("every label", roles),
                         ("context-free", roles[~roles["role"].isin(CONTEXT_ROLES)]),
                         ("in-context", roles[roles["role"].isin(CONTEXT_ROLES)])):
        weighted = chosen.assign(model=chosen["share"] * chosen["model_nll"], exact=chosen["share"] * chosen["bayes_nll"])
        sums = weighted.groupby(["run_id", "step"], sort=False)[["model", "exact", "share"]].sum()
        rows.append(pd.DataFrame({"run_id": sums.index.get_level_values(0), "step": sums.index.get_level_values(1),
                                  "part": part, "loss": (sums["model"] / sums["share"]).to_numpy(),
                                  "bayes": (sums["exact"] / sums["share"]).to_numpy(), "share": sums["share"].to_numpy()}))
    return pd.concat(rows, ignore_index=True)


def train_and_read_roles(folder: Path, arch: str, size: str, *overrides: str) -> Path:
    """One run of the grid (with ``--set`` ``overrides``) with an export at every checkpoint, then its role
    table (both resumable)."""
    from linscale.probes import run_cli, train_probe_run

    train_probe_run(folder, arch, size, "train.exports=all", *overrides)
    if not (folder / "eval" / "roles.parquet").is_file():
        run_cli("eval", str(folder), "--suites", "", "--roles")
    return folder


def fit_part(base, values, floor: float, archs, jobs: int):
    """Approach 3 with E fixed at ``floor`` on one part's validation loss: ``values`` (run_id, step, loss,
    bayes) joined to ``base`` (the fitted rows of the runs table, without val_loss and bayes_loss). Returns
    per architecture its a, misfit (NaN where the fit failed) and rows fitted, and each run's mean log
    residual (``linscale.findings.run_residuals``)."""
    import numpy as np
    import pandas as pd

    from linscale.design import estimate
    from linscale.findings import run_residuals
    from linscale.laws.suite import FitSettings, fit_suite

    runs = base.merge(values[["run_id", "step", "loss", "bayes"]].rename(columns={"loss": "val_loss",
                                                                                   "bayes": "bayes_loss"}),
                      on=["run_id", "step"])
    fit = fit_suite(runs, FitSettings(entropy=floor, loss_column="val_loss", methods=("approach3_fixed_e",)),
                    jobs=jobs)["approach3_fixed_e"]
    rows, residual_rows = [], []
    for arch in archs:
        ok = fit.ok and arch not in fit.errors
        points = fit.fit.points if ok else None
        residuals = (run_residuals(points[(points["law"] == "L(N,D)") & (points["group"] == arch)]) if ok
                     else pd.DataFrame(columns=["arch", "run_id", "size", "residual"]))
        rows.append(dict(arch=arch, E=floor, a=estimate(fit.fit, "N_opt(C)", "a", arch) if ok else np.nan,
                         misfit=float(residuals["residual"].std(ddof=1)) if ok else np.nan,
                         rows=int(len(runs[runs["arch"] == arch]))))
        residual_rows.append(residuals)
    return rows, residual_rows


def role_fits(base, roles, archs, jobs: int) -> list[dict]:
    """Approach 3 (E fixed at the role's exact nll) on each role's validation loss alone (:func:`fit_part`):
    per role and architecture its share of the labels, E, the misfit and each size's mean log residual. A
    role whose exact nll is 0 (a fact's object, determined words) cannot be fitted in that form: its rows
    have no misfit."""
    rows = []
    for role in roles["role"].unique():
        chosen = roles[roles["role"] == role]
        floor, share = float(chosen["bayes_nll"].iloc[0]), float(chosen["share"].iloc[0])
        if floor <= 0:
            rows += [dict(role=role, arch=arch, share=share, E=floor) for arch in archs]
            continue
        got, residuals = fit_part(base, chosen.rename(columns={"model_nll": "loss", "bayes_nll": "bayes"}), floor,
                                  archs, jobs)
        rows += [dict(role=role, arch=row["arch"], share=share, E=floor, misfit=row["misfit"],
                      **dict(zip(residual["size"], residual["residual"]))) for row, residual in zip(got, residuals)]
    return rows


def main() -> None:
    from linscale.train.code_paths import pin_numerics

    pin_numerics()  # before numpy and torch, as every linscale command: the fits below run in this process
    import pandas as pd

    from linscale.bench import format_table
    from linscale.probes import (judge_probe, probe_arguments, probe_report_head, retrain_control, verdict_lines,
                                 write_probe_outputs)
    from linscale.design import fit_settings
    from linscale.findings import CONTEXT_DOES_NOT, CONTEXT_EXPLAINS, context_verdict, refit_misfit
    from linscale.laws.suite import fit_window
    from linscale.presets import load_preset

    args = probe_arguments(argparse.ArgumentParser(description=__doc__.split("\n\n")[0]),
                           "runs/probe-context-roles").parse_args()
    preset = load_preset("cpu")
    archs, sizes = list(preset["archs"]), list(preset["sizes"])
    results_dir = Path(args.results_dir)
    committed = pd.read_parquet(results_dir / "runs.parquet").assign(size=lambda t: t["size"].astype(str))
    if committed.empty:
        raise SystemExit(f"--results-dir: {results_dir}/runs.parquet holds no runs")
    seconds = committed.groupby("run_id")["wall_time_s"].max()
    wanted = sorted(((arch, size) for arch in archs for size in sizes),
                    key=lambda w: -float(seconds.get(f"{w[0]}-{w[1]}", 0)))  # longest first
    started = dt.datetime.now(dt.timezone.utc)
    with ThreadPoolExecutor(args.jobs) as pool:
        folders = dict(zip(wanted, pool.map(lambda w: train_and_read_roles(Path(args.out) / f"{w[0]}-{w[1]}", *w),
                                            wanted)))
    retrained = pd.concat([pd.read_parquet(folder / "results.parquet").assign(size=size)
                           for (arch, size), folder in folders.items()], ignore_index=True)
    roles = pd.concat([pd.read_parquet(folder / "eval" / "roles.parquet") for folder in folders.values()],
                      ignore_index=True)

    # the control: the retrained runs are the committed ones
    both, control_line = retrain_control(retrained, committed, CONTROL_TOLERANCE)

    # the losses by part, on the rows the study fits
    parts = part_losses(roles)
    every = parts[parts["part"] == "every label"].merge(retrained[["run_id", "step", "val_loss"]], on=["run_id", "step"])
    split_error = float((every["loss"] - every["val_loss"]).abs().max())
    exact = parts.groupby("part")["bayes"].agg(["min", "max", "mean"])
    if float((exact["max"] - exact["min"]).max()) > 1e-9:
        raise SystemExit(f"the parts' Bayes nll differs between checkpoints ({exact.to_dict()}): the runs were not "
                         "validated on one set of rows")
    study = fit_settings(preset, bootstrap=0)
    window = fit_window(retrained, study.warmup_steps, study.max_loss, study.loss_column)
    fitted_rows = window[["run_id", "step"]].drop_duplicates()
    base = window.drop(columns=["val_loss", "bayes_loss"])

    fit_rows, residual_rows = [], []
    for part in PARTS:
        values = parts[parts["part"] == part].merge(fitted_rows, on=["run_id", "step"])
        got, residuals = fit_part(base, values, float(exact.loc[part, "mean"]), archs, args.jobs)
        fit_rows += [dict(arch=row["arch"], part=part, **{k: v for k, v in row.items() if k != "arch"}) for row in got]
        residual_rows += [r.assign(part=part) for r in residuals]
    fits = pd.DataFrame(fit_rows)
    ratios, verdicts, overall = judge_probe(fits, "part", "context-free", "every label", archs, context_verdict,
                                            (CONTEXT_EXPLAINS, CONTEXT_DOES_NOT))
    residuals = pd.concat(residual_rows, ignore_index=True)

    # read after the verdict: where the bend lives, approach 3 (E fixed) on each role's loss alone
    by_role = pd.DataFrame(role_fits(base, roles, archs, args.jobs))

    # outside the rule: the committed measure (training loss) on the retrained runs, against the committed fit
    committed_fit = pd.DataFrame([dict(arch=arch, **dict(zip(("a", "misfit"), (lambda r: (r[0], r[2]))(
        refit_misfit(retrained[retrained["arch"] == arch], preset))))) for arch in archs])
    shares = parts.groupby("part")["share"].mean()
    floors = ", ".join(f"{part} {exact.loc[part, 'mean']:.4f}" for part in PARTS)

    decision = ("the scaling-laws chapter reports the context-free law beside the committed one"
               if overall == "explains" else "the bend is not the in-context skills; nothing "
               "else changes")
    lines = [*probe_report_head("Registered probe: do the in-context skills bend the law? (cpu preset)",
                                "the design, the rule and my prediction are in the script's docstring, committed "
                                "before any run was trained.", started),
             f"- control: {control_line}",
             f"- the role table's parts against the recorded validation loss: largest difference {split_error:.2g} nats",
             f"- in-context roles: {', '.join(CONTEXT_ROLES)} ({shares['in-context']:.1%} of the labels); Bayes nll "
             f"{floors}",
             *verdict_lines("Do the in-context skills explain the misfit?", archs, ratios, verdicts, overall,
                            (CONTEXT_EXPLAINS, CONTEXT_DOES_NOT), decision),
             "", "## Approach 3 (E fixed at each part's Bayes nll, no bootstrap) on the validation loss by part", "",
             "misfit: sd over runs of each run's mean log residual; rows: points fitted; ratio: context-free / every "
             "label.", "", format_table(fits.round(4)), "", "## Each run's mean log residual around its law", "",
             format_table(residuals.pivot_table(index=["arch", "size"], columns="part", values="residual", sort=False)
                          .round(4).reset_index().rename_axis(columns=None)), "",
             "## Outside the rule: the study's own fit (training loss) on the retrained runs", "",
             format_table(committed_fit.round(4)), "",
             "## Read after the verdict: approach 3 (E fixed) on each role's loss alone", "",
             "share: the role's share of the labels; E: its exact nll (a role whose exact nll is 0 cannot be fitted "
             "in this form: no misfit); misfit and one column per size: each run's mean log residual around the "
             "role's own law.", "", format_table(by_role.round(4))]
    write_probe_outputs("\n".join(lines) + "\n", args.results, args.tables,
                        {"fits": fits, "residuals": residuals, "parts": parts, "control": both, "by_role": by_role})


if __name__ == "__main__":
    main()
