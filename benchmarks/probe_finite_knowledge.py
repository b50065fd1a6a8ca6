"""Do the finite tables bend the law? The cpu grid retrained on a language with four times the facts and grammar (issue 15)

    python benchmarks/probe_finite_knowledge.py                    # about 30 minutes on 2 cores
    python benchmarks/probe_finite_knowledge.py --results benchmarks/results/X.md --tables results/probes/NAME

**Registered on 2026-12-04 (this script's first commit), before any of these runs was trained** (the
rule is ``knowledge_verdict``, in ``linscale.findings``):

- *Why*: the context-roles probe (``benchmarks/probe_context_roles.py``) found, after its verdict, the
  misfit by size largest in two roles: which fact a sentence states (misfit 1.8-3.4%) and the filler
  grammar (2.8-4.8%), both with s2/s3 above their law and s5/s6 below it. Both are finite tables the
  weights memorise: 8,192 Zipf-distributed facts (32 first names x 32 last names x 8 relations) and a
  Markov chain over 16 adjectives, nouns and verbs. A power law in N has no end; a model that begins to
  exhaust a finite table falls faster than one near the end, which would put the largest sizes below
  their law. If that is the bend, the same grid on a language whose tables are four times larger (none
  of its sizes near exhausting them) follows its law much more closely.
- *Runs*: the 24 runs of the cpu grid's main sweep, trained as the study trains them (seed 0, each size's
  budget and LR rule, one thread, the pinned code paths), on the cpu language with ``n_first = n_last =
  64`` (32,768 facts) and ``n_adj = n_noun = n_verb = 32`` (four times the grammar's transition entries),
  everything else unchanged; an export at every checkpoint and the role table of each (as the context-roles
  probe, whose tables give the committed language's side).
- *Measure*, per architecture and language: approach 3 with E fixed at the validation rows' exact loss
  (the mean Bayes nll), no bootstrap, fitted on every label's validation loss over the rows the study fits
  (its window on the training loss, under each language's own unigram entropy). Misfit: the sd over runs
  of each run's mean log residual (the study's). Ratio = larger language / committed language (its value
  from ``results/probes/2026-12-04-context-roles/fits.csv``, part 'every label').
- *Rule*, per architecture: the finite tables explain the misfit if the ratio is at most 0.5, do not
  explain it if at least 0.8, partly between (``knowledge_verdict``); over all four with the same
  thresholds (``ratio_verdict``).
- *What it decides*: if they explain it over all four, the next cpu language takes the larger tables (with
  a new pilot law and design check); otherwise the language stays.
- *My prediction*: partly for LLaMA, HGRN2 and cosFormer2 (0.5-0.8): s2 and s3 sit above their law, which
  exhaustion at the top does not explain; does not explain for TNL (at least 0.8), whose largest miss is
  its s6's head count. Over all four: partly.
- *Also reported, outside the rule*: the misfit of each role's own law (which fact, filler grammar, the
  others) on both languages, and each run's mean log residual.

Runs land in ``--out`` (resumable); the tables go to ``--results`` (Markdown, with machine and date) and as
CSV files to ``--tables``.
"""
from __future__ import annotations

import argparse
import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

LARGER = {"n_first": 64, "n_last": 64, "n_adj": 32, "n_noun": 32, "n_verb": 32}  # the cpu preset's: 32, 32, 16, 16, 16
COMMITTED_SIDE = Path("results/probes/2026-12-04-context-roles")  # the committed language's role tables and fits


def main() -> None:
    from linscale.train.code_paths import pin_numerics

    pin_numerics()  # before numpy and torch, as every linscale command: the fits below run in this process
    import copy

    import pandas as pd

    from linscale.bench import format_table
    from linscale.probes import benchmark_script, probe_arguments, probe_report_head, verdict_lines, write_probe_outputs
    from linscale.design import fit_settings
    from linscale.findings import KNOWLEDGE_DOES_NOT, KNOWLEDGE_EXPLAINS, knowledge_verdict, ratio_verdict
    from linscale.laws.suite import fit_window
    from linscale.presets import load_preset

    args = probe_arguments(argparse.ArgumentParser(description=__doc__.split("\n\n")[0]),
                           "runs/probe-finite-knowledge").parse_args()
    roles_probe = benchmark_script("probe_context_roles")
    preset = load_preset("cpu")
    larger = copy.deepcopy(preset)
    larger["data"].update(LARGER)
    archs, sizes = list(preset["archs"]), list(preset["sizes"])
    committed_fits = pd.read_csv(COMMITTED_SIDE / "fits.csv")
    committed_roles = pd.read_csv(COMMITTED_SIDE / "by_role.csv")
    committed = pd.read_parquet(Path(args.results_dir) / "runs.parquet")
    seconds = committed.groupby("run_id")["wall_time_s"].max()
    wanted = sorted(((arch, size) for arch in archs for size in sizes),
                    key=lambda w: -float(seconds.get(f"{w[0]}-{w[1]}", 0)))  # longest first
    overrides = [f"data.{key}={value}" for key, value in LARGER.items()]
    started = dt.datetime.now(dt.timezone.utc)
    with ThreadPoolExecutor(args.jobs) as pool:
        folders = dict(zip(wanted, pool.map(
            lambda w: roles_probe.train_and_read_roles(Path(args.out) / f"{w[0]}-{w[1]}", *w, *overrides), wanted)))
    runs = pd.concat([pd.read_parquet(folder / "results.parquet").assign(size=size)
                      for (arch, size), folder in folders.items()], ignore_index=True)
    roles = pd.concat([pd.read_parquet(folder / "eval" / "roles.parquet") for folder in folders.values()],
                      ignore_index=True)

    # the measure: every label's validation loss, approach 3 with E fixed, on the study's rows
    parts = roles_probe.part_losses(roles)
    every = parts[parts["part"] == "every label"]
    if every["bayes"].max() - every["bayes"].min() > 1e-9:
        raise SystemExit("the runs' validation rows differ (their Bayes nll is not one value)")
    study = fit_settings(larger, bootstrap=0)
    window = fit_window(runs, study.warmup_steps, study.max_loss, study.loss_column)
    base = window.drop(columns=["val_loss", "bayes_loss"])
    values = every.merge(window[["run_id", "step"]], on=["run_id", "step"])
    got, residuals = roles_probe.fit_part(base, values, float(every["bayes"].iloc[0]), archs, args.jobs)
    fits = pd.DataFrame(got).assign(language="larger")
    before = committed_fits[committed_fits["part"] == "every label"].set_index("arch")
    fits = pd.concat([before.reset_index()[["arch", "E", "a", "misfit", "rows"]].assign(language="committed"), fits],
                     ignore_index=True)
    ratios = {arch: float(fits[(fits["language"] == "larger") & (fits["arch"] == arch)]["misfit"].iloc[0]
                          / before.loc[arch, "misfit"]) for arch in archs}
    verdicts = knowledge_verdict(ratios)
    overall = ratio_verdict(ratios, KNOWLEDGE_EXPLAINS, KNOWLEDGE_DOES_NOT)
    fits["ratio"] = fits["arch"].map(ratios).where(fits["language"] == "larger")
    fits["verdict"] = fits["arch"].map(verdicts).where(fits["language"] == "larger")
    residuals = pd.concat(residuals, ignore_index=True)
    after = fits[fits["language"] == "larger"].set_index("arch")["misfit"]
    for arch in archs:
        print(f"{arch}: misfit committed {before.loc[arch, 'misfit']:.4f}, larger tables {after[arch]:.4f}, ratio "
              f"{ratios[arch]:.2f}: {verdicts[arch]}", flush=True)

    # outside the rule: each role's own law on the larger language, beside the committed language's
    fitted_roles = pd.DataFrame(roles_probe.role_fits(base, roles, archs, args.jobs)).dropna(subset=["misfit"])
    by_role = fitted_roles[["role", "arch", "share", "E", "misfit"]].merge(
        committed_roles[["role", "arch", "misfit"]].rename(columns={"misfit": "misfit_committed"}), on=["role", "arch"],
        how="left")

    decision = ("the next cpu language takes the larger tables" if overall == "explains"
               else "the language stays")
    lines = [*probe_report_head("Registered probe: do the finite tables bend the law? (cpu preset)",
                                "the design, the rule and my prediction are in the script's docstring, committed "
                                "before any run was trained.", started),
             f"- language: the cpu preset's with {', '.join(f'{k} = {v}' for k, v in LARGER.items())}; validation "
             f"Bayes nll {float(every['bayes'].iloc[0]):.4f} (committed language: {before['E'].iloc[0]:.4f})",
             f"- the committed side: `{COMMITTED_SIDE}/fits.csv` (the context-roles probe, part 'every label')",
             *verdict_lines("Do the finite tables explain the misfit?", archs, ratios, verdicts, overall,
                            (KNOWLEDGE_EXPLAINS, KNOWLEDGE_DOES_NOT), decision),
             "", "## Approach 3 (E fixed) on every label's validation loss, both languages", "",
             "misfit: sd over runs of each run's mean log residual; ratio: larger / committed.", "",
             format_table(fits.round(4)), "", "## Each run's mean log residual, larger tables", "",
             format_table(residuals.round(4)), "",
             "## Outside the rule: each role's own law (E fixed at its exact nll), both languages", "",
             format_table(by_role.round(4))]
    write_probe_outputs("\n".join(lines) + "\n", args.results, args.tables,
                        {"fits": fits, "residuals": residuals, "by_role": by_role})


if __name__ == "__main__":
    main()
