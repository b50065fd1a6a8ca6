"""Is it the law's form? The committed runs refitted with Kaplan's non-separable L(N, D) (issue 15)

    python benchmarks/probe_law_form.py                    # under a minute on 2 cores: fits only, no training
    python benchmarks/probe_law_form.py --results benchmarks/results/X.md --tables results/probes/NAME

**Registered on 2026-12-04 (this script's first commit), before the committed runs were ever fitted in
this form** (the rule is ``form_verdict``, in ``linscale.findings``):

- *Why*: six probes found no cause of the misfit by size in the grid (LR, heads, count of N, fit window)
  or in the in-context skills; the sixth put the bend in the labels the weights memorise. Every one of
  them kept the law's form, Chinchilla's E + A/N^α + B/D^β, which is *separable*: how much a token lowers
  the loss does not depend on the model's size. Kaplan et al. (2020, eq. 1.5) fitted the non-separable
  L(N, D) = [(N_c/N)^(α_N/α_D) + D_c/D]^α_D, in which a larger model learns more from the same tokens. The
  committed runs bend as such a law would: the larger sizes, late in their runs, fall below the separable
  law. If the separable form is what cannot follow the runs, Kaplan's form, with the same number of free
  parameters, sits much closer to them.
- *Fits*: the committed runs (no run is trained), the study's rows and fitted loss (its window, the
  Bayes-corrected training loss), E fixed at the exact entropy rate in both forms, each fitted here in log
  space by the same objective as approach 3 (the sum of Huber losses, δ = 1e-3, of log L̂ − log L) with
  L-BFGS from the best 64 of a grid of starts:
  - separable: log L̂ = LSE(a − α log N, b − β log D, log E) (free a, b, α, β: approach 3 with E fixed);
  - Kaplan: log L̂ = LSE(γ·LSE(a − α log N, b − log D), log E) (free a, b, α, γ; α_N = αγ, α_D = γ).
  A control: the separable fit here must give each architecture's misfit within 2% (relative) of the
  study's own approach 3 with E fixed (``refit_misfit``), so that both forms are fitted alike.
- *Measure*, per architecture: the misfit (sd over runs of each run's mean log residual, the study's) of
  each form; ratio = Kaplan / separable.
- *Rule*, per architecture: the separable form explains the misfit if the ratio is at most 0.5, does not
  explain it if at least 0.8, partly between (``form_verdict``); over all four with the same thresholds
  (``ratio_verdict``).
- *What it decides*: if it explains the misfit over all four, the next study fits Kaplan's form beside
  approach 3 and its design check simulates both; otherwise the study keeps Chinchilla's form alone.
- *My prediction*: does not explain for all four (ratios 0.8-1.0): the fit-window probe found whole sizes
  still off the law over the last 70% of their runs, where the two forms differ least, and the sixth
  probe found the bend within single roles. Over all four: does not explain.
- *Also reported, outside the rule*: each run's mean log residual under both forms, and Kaplan's fitted
  exponents.

*Amended on 2026-12-04, after the verdict was read* (the rule, its inputs and the verdict are unchanged):
the report adds the study's hold-out check in both forms (each form refitted without the top decade of
compute, predicting the final loss of every run that ends in it), which the verdict's reading asked for;
no rule was registered for it.

The tables go to ``--results`` (Markdown, with machine and date) and as CSV files to ``--tables``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import itertools

import numpy as np

CONTROL_TOLERANCE = 0.02  # relative: the separable fit here against the study's approach 3 (E fixed) misfit
N_REFINE = 64  # L-BFGS runs from this many of the best grid starts
HUBER_DELTA = 1e-3  # approach 3's
STARTS = dict(a=np.arange(0, 26, 5.0), b=np.arange(0, 26, 5.0), alpha=np.array([0.1, 0.3, 0.6, 1.0, 1.5]),
              last=np.array([0.05, 0.1, 0.3, 0.6, 1.0, 1.5]))  # last: β (separable) or γ (Kaplan)


def predicted_log_loss(form: str, theta, log_n, log_d, log_e):
    """log L̂ and its gradient in θ = (a, b, α, β or γ) for the ``form`` ('separable' or 'kaplan'), E fixed."""
    a, b, alpha, last = theta
    t1 = a - alpha * log_n
    if form == "separable":
        t2 = b - last * log_d
        lse = np.logaddexp(np.logaddexp(t1, t2), log_e)
        s1, s2 = np.exp(t1 - lse), np.exp(t2 - lse)
        return lse, np.stack([s1, s2, -s1 * log_n, -s2 * log_d])
    if form == "kaplan":
        t2 = b - log_d
        inner = np.logaddexp(t1, t2)
        lse = np.logaddexp(last * inner, log_e)
        w = np.exp(last * inner - lse)
        p1, p2 = np.exp(t1 - inner), np.exp(t2 - inner)
        return lse, np.stack([w * last * p1, w * last * p2, -w * last * p1 * log_n, w * inner])
    raise ValueError(f"form: expected 'separable' or 'kaplan', got {form!r}")


def huber(theta, form, log_n, log_d, log_loss, log_e):
    """Σ Huber_δ(log L̂ − log L) and its gradient (approach 3's objective, any form)."""
    lse, dlse = predicted_log_loss(form, theta, log_n, log_d, log_e)
    r = lse - log_loss
    quad = np.abs(r) <= HUBER_DELTA
    value = np.where(quad, 0.5 * r * r, HUBER_DELTA * (np.abs(r) - 0.5 * HUBER_DELTA)).sum()
    psi = np.where(quad, r, HUBER_DELTA * np.sign(r))
    return float(value), dlse @ psi


def fit_form(form: str, log_n, log_d, log_loss, log_e):
    """The best θ of ``form`` over L-BFGS runs from the ``N_REFINE`` best starts of the grid ``STARTS``."""
    from scipy.optimize import minimize

    grid = np.array(list(itertools.product(*STARTS.values())), dtype=float)
    with np.errstate(over="ignore", invalid="ignore"):
        ranked = np.argsort([huber(theta, form, log_n, log_d, log_loss, log_e)[0] for theta in grid])
    best = None
    for theta in grid[ranked[:N_REFINE]]:
        got = minimize(huber, theta, args=(form, log_n, log_d, log_loss, log_e), jac=True, method="L-BFGS-B",
                       options=dict(ftol=1e-12, gtol=1e-8, maxiter=1000))
        if np.isfinite(got.fun) and (best is None or got.fun < best.fun):
            best = got
    return best.x


def main() -> None:
    from linscale.train.code_paths import pin_numerics

    pin_numerics()  # before numpy and torch, as every linscale command: the fits below run in this process
    import pandas as pd

    from linscale.bench import format_table
    from linscale.probes import (committed_study, probe_report_head, refit_probe_arguments, verdict_lines,
                                 write_probe_outputs)
    from linscale.design import fit_settings
    from linscale.findings import FORM_DOES_NOT, FORM_EXPLAINS, form_verdict, ratio_verdict, refit_misfit, run_residuals
    from linscale.laws.suite import FITTED, windowed
    from linscale.presets import load_preset
    from linscale.study import FITS_BOOTSTRAP

    args = refit_probe_arguments(argparse.ArgumentParser(description=__doc__.split("\n\n")[0]),
                                 FITS_BOOTSTRAP).parse_args()
    preset = load_preset("cpu")
    committed, _ = committed_study(args.results_dir)
    archs = sorted(committed["arch"].unique())
    settings = fit_settings(preset, bootstrap=0)
    rows = windowed(committed, settings)
    log_e = float(np.log(settings.entropy))
    started = dt.datetime.now(dt.timezone.utc)

    fit_rows, residual_rows, control = [], [], {}
    for arch in archs:
        part = rows[rows["arch"] == arch]
        log_n, log_d = np.log(part["params"].to_numpy(float)), np.log(part["tokens"].to_numpy(float))
        log_loss = np.log(part[FITTED].to_numpy(float))
        study_misfit = refit_misfit(committed[committed["arch"] == arch], preset)[2]
        for form in ("separable", "kaplan"):
            theta = fit_form(form, log_n, log_d, log_loss, log_e)
            points = pd.DataFrame({"group": arch, "run_id": part["run_id"].to_numpy(),
                                   "log_residual": log_loss - predicted_log_loss(form, theta, log_n, log_d, log_e)[0]})
            residuals = run_residuals(points)
            misfit = float(residuals["residual"].std(ddof=1))
            a, b, alpha, last = theta
            fit_rows.append(dict(arch=arch, form=form, misfit=misfit, A=float(np.exp(a)), B=float(np.exp(b)),
                                 alpha=alpha, beta=last if form == "separable" else 1.0,
                                 gamma=last if form == "kaplan" else 1.0,
                                 alpha_N=alpha * last if form == "kaplan" else np.nan,
                                 alpha_D=last if form == "kaplan" else np.nan, rows=len(part)))
            residual_rows.append(residuals.assign(form=form))
            if form == "separable":
                control[arch] = misfit / study_misfit - 1
        print(f"{arch}: misfit separable {fit_rows[-2]['misfit']:.4f}, Kaplan {fit_rows[-1]['misfit']:.4f}", flush=True)
    fits = pd.DataFrame(fit_rows)
    spread = fits.pivot_table(index="arch", columns="form", values="misfit", sort=False)
    ratios = {arch: float(spread.loc[arch, "kaplan"] / spread.loc[arch, "separable"]) for arch in archs}
    verdicts = form_verdict(ratios)
    overall = ratio_verdict(ratios, FORM_EXPLAINS, FORM_DOES_NOT)
    fits["ratio"] = fits["arch"].map(ratios).where(fits["form"] == "kaplan")
    fits["verdict"] = fits["arch"].map(verdicts).where(fits["form"] == "kaplan")
    residuals = pd.concat(residual_rows, ignore_index=True)
    control_ok = all(abs(c) <= CONTROL_TOLERANCE for c in control.values())
    control_line = (f"the separable fit here against the study's approach 3 (E fixed) misfit: "
                    f"{', '.join(f'{a} {c:+.2%}' for a, c in control.items())} "
                    f"({'within' if control_ok else 'OUTSIDE'} the registered {CONTROL_TOLERANCE:.0%})")
    print(control_line, flush=True)

    # read after the verdict: the study's hold-out check (laws.suite.holdout_check) in both forms
    held_rows = []
    for arch in archs:
        part = rows[rows["arch"] == arch]
        cut = part["flops"].max() / 10
        train = part[part["flops"] <= cut]
        last = part.sort_values("step").groupby("run_id").tail(1)
        held = last[last["flops"] > cut]
        arrays = lambda t: (np.log(t["params"].to_numpy(float)), np.log(t["tokens"].to_numpy(float)))
        for form in ("separable", "kaplan"):
            theta = fit_form(form, *arrays(train), np.log(train[FITTED].to_numpy(float)), log_e)
            predicted = np.exp(predicted_log_loss(form, theta, *arrays(held), log_e)[0])
            held_rows += [dict(arch=arch, form=form, run_id=r, observed=o, predicted=q, rel_error=q / o - 1)
                          for r, o, q in zip(held["run_id"], held[FITTED].to_numpy(float), predicted)]
    holdout = pd.DataFrame(held_rows)
    worst = (holdout.assign(worst=holdout["rel_error"].abs()).groupby(["arch", "form"], sort=False)["worst"].max()
             .unstack("form").reset_index().rename_axis(columns=None))

    decision = ("the next study fits Kaplan's form beside approach 3" if overall == "explains"
               else "the study keeps Chinchilla's form alone")
    lines = [*probe_report_head("Registered probe: is it the law's form? (cpu preset)",
                                "the design, the rule and my prediction are in the script's docstring, committed "
                                "before the runs were fitted in this form. No run is trained: the committed runs are "
                                "refitted.", started),
             f"- rows: the study's fit window ({len(rows)} of {len(committed)} checkpoints), its Bayes-corrected training "
             f"loss, E fixed at the entropy rate {settings.entropy:.4f}",
             f"- control: {control_line}",
             *verdict_lines("Does the separable form explain the misfit?", archs, ratios, verdicts, overall,
                            (FORM_EXPLAINS, FORM_DOES_NOT), decision),
             "", "## Both forms, E fixed", "",
             "misfit: sd over runs of each run's mean log residual; separable: L = E + A/N^alpha + B/D^beta; Kaplan: "
             "L = E + (A/N^alpha + B/D)^gamma (alpha_N = alpha*gamma, alpha_D = gamma); ratio: Kaplan / separable.", "",
             format_table(fits.round(4)), "", "## Each run's mean log residual around each form", "",
             format_table(residuals.pivot_table(index=["arch", "size"], columns="form", values="residual", sort=False)
                          .round(4).reset_index().rename_axis(columns=None)), "",
             "## Read after the verdict: the study's hold-out check in both forms", "",
             "Each form refitted on the rows up to a tenth of the architecture's largest compute, predicting the final "
             "loss of every run that ends above it; rel_error = predicted / observed - 1 (the study's target: "
             "within 2%).", "", format_table(holdout.round(4)), "", "Worst |rel_error| per architecture:", "",
             format_table(worst.round(4))]
    write_probe_outputs("\n".join(lines) + "\n", args.results, args.tables,
                        {"fits": fits, "residuals": residuals, "holdout": holdout})


if __name__ == "__main__":
    main()
