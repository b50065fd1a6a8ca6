"""Do the early checkpoints bend the law? The committed runs refitted on the last 70% of each run (issue 15)

    python benchmarks/probe_fit_window.py                    # a few minutes on 2 cores: fits only, no training
    python benchmarks/probe_fit_window.py --results benchmarks/results/X.md --tables results/probes/NAME

**Registered on 2026-12-04 (this script's first commit), before the committed runs were ever fitted on
such a window** (the rule is ``window_verdict``, in ``linscale.findings``):

- *Why*: approach 3 fits every checkpoint after twice the warmup, from about 2-4% of each run's tokens
  on. The learning-rate probe found, after its verdict, that a run's LR moves where its fitted curve
  *starts* far more than where it ends, and a law fitted to every checkpoint must fit both. If the early
  checkpoints (the fast fall right after warmup, at a constant LR) are what the law E + A/N^α + B/D^β
  cannot follow, a law fitted only on each run's later checkpoints should sit much closer to them.
- *Fits*: the committed runs (no run is trained), the study's own fit settings (window, Bayes-corrected
  loss, E the exact entropy rate), approach 3 with E fixed, on the rows the study fits that also lie at
  or after ``WINDOW_START`` (0.3) of their run's final tokens: about 7 of each run's 24 checkpoints. A
  control: the same code on the study's own rows must give the committed a within 1e-6.
- *Measure*, per architecture, on those late rows only: the misfit (sd over runs of each run's mean log
  residual) of the law fitted on them, over the misfit of the committed law (fitted on every row)
  evaluated on the same late rows; ratio = window fit / committed fit.
- *Rule*, per architecture: the early checkpoints explain the misfit if the ratio is at most 0.5, do not
  explain it if at least 0.8, partly between (``linscale.findings.window_verdict``); and over all four
  with the same thresholds (``ratio_verdict``).
- *What it decides*: if the early checkpoints explain the misfit for every architecture, the next
  study fits approach 3 from 0.3 of each run (the design check simulating the same window); otherwise
  the fit window stays.
- *My prediction*: partly for LLaMA and cosFormer2 (ratios 0.5-0.8), does not explain for TNL and HGRN2
  (at least 0.8): their misfit is mostly whole sizes (s6 for TNL, s1 and s6 for HGRN2) that still sit off
  the law at the end of their runs. Over all four: partly.
- *Also reported, outside the rule*: with the window, the 95% interval of a (E fixed, the study's 200
  resamples over runs), E free against the exact entropy rate, and the study's hold-out check (its refits
  on the same window).

The tables go to ``--results`` (Markdown, with machine and date) and as CSV files to ``--tables``.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as dt

WINDOW_START = 0.3  # fit only rows at or after this share of their run's final tokens
CONTROL_TOLERANCE = 1e-6  # absolute, a of approach 3 (E fixed): the full-window refit is the committed fit
METHODS = ("approach3_fixed_e", "approach3")


def late_rows(runs, start: float = WINDOW_START):
    """The rows of each run at or after ``start`` of its final tokens."""
    final = runs.groupby("run_id")["tokens"].transform("max")
    return runs[runs["tokens"] >= start * final]


def misfit_on(points, keep):
    """sd over runs of each run's mean log residual, over the points (a fit's, with run_id, tokens,
    log_residual) that ``keep`` (run_id, tokens pairs) holds."""
    from linscale.findings import run_residuals

    rows = points.merge(keep[["run_id", "tokens"]].drop_duplicates(), on=["run_id", "tokens"])
    return float(run_residuals(rows)["residual"].std(ddof=1)), run_residuals(rows)


def main() -> None:
    from linscale.train.code_paths import pin_numerics

    pin_numerics()  # before numpy and torch, as every linscale command: the fits below run in this process
    import pandas as pd

    from linscale.bench import format_table
    from linscale.probes import (committed_study, interval_rows, probe_report_head, refit_probe_arguments,
                                 write_probe_outputs)
    from linscale.design import estimate, fit_settings
    from linscale.findings import WINDOW_DOES_NOT, WINDOW_EXPLAINS, ratio_verdict, window_verdict
    from linscale.laws.suite import fit_study, fit_suite
    from linscale.presets import load_preset
    from linscale.study import FITS_BOOTSTRAP

    args = refit_probe_arguments(argparse.ArgumentParser(description=__doc__.split("\n\n")[0]),
                                 FITS_BOOTSTRAP).parse_args()
    preset = load_preset("cpu")
    committed, committed_a = committed_study(args.results_dir)
    archs = sorted(committed["arch"].unique())
    started = dt.datetime.now(dt.timezone.utc)

    # the rule: both laws' misfit on the late rows (approach 3, E fixed, no bootstrap)
    plain = dataclasses.replace(fit_settings(preset, bootstrap=0), methods=("approach3_fixed_e",))
    late = late_rows(committed)
    fits = {name: fit_suite(runs, plain, jobs=args.jobs)["approach3_fixed_e"]
            for name, runs in (("all rows", committed), ("late rows", late))}
    failed = [name for name, fit in fits.items() if not fit.ok or fit.errors]
    if failed:
        raise SystemExit(f"approach 3 (E fixed) failed on {', '.join(failed)}: "
                         f"{'; '.join(str(fits[n].error or fits[n].errors) for n in failed)}")
    rows, residual_rows, ratios = [], [], {}
    for arch in archs:
        spread = {}
        for name, fit in fits.items():
            points = fit.fit.points[(fit.fit.points["law"] == "L(N,D)") & (fit.fit.points["group"] == arch)]
            spread[name], residuals = misfit_on(points, late[late["arch"] == arch])
            rows.append(dict(arch=arch, fit=name, a=estimate(fit.fit, "N_opt(C)", "a", arch), misfit_late=spread[name],
                             rows=int(len(points))))
            residual_rows.append(residuals.assign(fit=name))
        ratios[arch] = spread["late rows"] / spread["all rows"]
        print(f"{arch}: misfit on the late rows {spread['all rows']:.4f} (all-row law) -> {spread['late rows']:.4f} "
              f"(late-row law), ratio {ratios[arch]:.2f}", flush=True)
    table = pd.DataFrame(rows)
    verdicts = window_verdict(ratios)
    overall = ratio_verdict(ratios, WINDOW_EXPLAINS, WINDOW_DOES_NOT)
    table["ratio"] = table["arch"].map(ratios).where(table["fit"] == "late rows")
    table["verdict"] = table["arch"].map(verdicts).where(table["fit"] == "late rows")
    residuals = pd.concat(residual_rows, ignore_index=True)
    control = {arch: abs(float(table.loc[(table["arch"] == arch) & (table["fit"] == "all rows"), "a"].iloc[0])
                         - float(committed_a.get(arch, float("nan")))) for arch in archs}
    control_ok = all(d <= CONTROL_TOLERANCE for d in control.values())
    control_line = (f"the all-row refit against the committed a (approach 3, E fixed): largest difference "
                    f"{max(control.values()):.2g} ({'within' if control_ok else 'OUTSIDE'} the registered "
                    f"{CONTROL_TOLERANCE:g})")
    print(control_line, flush=True)

    # outside the rule: issue 15's acceptance quantities on the late rows, with the study's bootstrap
    settings = dataclasses.replace(fit_settings(preset, bootstrap=args.bootstrap), methods=METHODS)
    got, held = fit_study(late, settings, args.jobs)
    intervals = pd.DataFrame(interval_rows(got, METHODS, archs, settings.entropy)).drop(columns=["alpha", "beta"])
    intervals["a_width"] = intervals["a_high"] - intervals["a_low"]
    worst = (held.assign(abs_error=held["rel_error"].abs()).groupby(["method", "arch"], sort=False)["abs_error"]
             .max().reset_index(name="worst"))

    lines = [*probe_report_head("Registered probe: do the early checkpoints bend the law? (cpu preset)",
                                "the design, the rule and my prediction are in the script's docstring, committed "
                                "before the runs were fitted on this window. No run is trained: the committed runs are"
                                " refitted.", started),
             f"- window: rows at or after {WINDOW_START:g} of their run's final tokens ({len(late)} of "
             f"{len(committed)} rows, before the study's own window rules)",
             f"- control: {control_line}", f"- bootstrap: {args.bootstrap} resamples over runs", "", "## Verdict", "",
             "Do the early checkpoints explain the misfit?", "",
             *(f"- {arch}: **{verdicts[arch]}** (ratio {ratios[arch]:.2f}; explains: at most {WINDOW_EXPLAINS}, does not "
               f"explain: at least {WINDOW_DOES_NOT})" for arch in archs),
             f"- over all four: **{overall}**",
             "- what it decides: " + (f"the next study fits approach 3 from {WINDOW_START:g} of each run"
                                      if overall == "explains" else "the fit window stays"),
             "", "## Approach 3 (E fixed, no bootstrap): misfit on the late rows", "",
             "fit: which rows the law was fitted on; misfit_late: sd over runs of each run's mean log residual over its "
             "late rows; rows: points fitted; ratio: late-row law / all-row law.", "",
             format_table(table.round(4)), "", "## Each run's mean log residual over its late rows", "",
             format_table(residuals.pivot_table(index=["arch", "size"], columns="fit", values="residual", sort=False)
                          .round(4).reset_index().rename_axis(columns=None)), "",
             "## Outside the rule: issue 15's acceptance quantities with the window", "",
             f"a with its 95% bootstrap interval ({args.bootstrap} resamples over runs); E_over_entropy: approach 3's E "
             "over the exact entropy rate, minus 1.", "", format_table(intervals.round(4)), "",
             "Worst held-out error (laws refitted on the window without the top compute decade):", "",
             format_table(worst.round(4))]
    write_probe_outputs("\n".join(lines) + "\n", args.results, args.tables,
                        {"fits": table, "residuals": residuals, "intervals": intervals, "holdout": held})


if __name__ == "__main__":
    main()
