"""Does the one-layer s1 bend the law? The cpu grid refitted with a two-layer s1 (issue 15)

    python benchmarks/probe_s1_depth.py                    # about 3 minutes on 2 cores
    python benchmarks/probe_s1_depth.py --results benchmarks/results/X.md --tables results/probes/NAME

**Registered on 2026-12-04 (this script's first commit), before any of these runs was trained** (the
rule is ``depth_verdict``, in ``linscale.findings``):

- *Why*: nine probes found no single cause of the misfit by size (each run's mean log residual around
  approach 3's law, E fixed). Every size of the cpu grid has two layers but s1, which has one (the
  preset's comment: two layers from s2 on, so that neighbours above s1 differ in width only), and s1
  sits below its law for LLaMA, TNL and cosFormer2 (-1.1% to -1.7% on the validation loss in the cooldown
  probe's constant-LR fit). A law in N alone cannot see a change of depth: if one layer spends its
  parameters better at width 8 than two would, s1 sits below the others' law and pulls the fitted law's
  slope, which shows up as a bend in the sizes above it.
- *Runs*: s1 of each architecture retrained with two layers and everything else as the study trains s1
  (width 8, 2 heads, its 6.1M tokens, its LR, seed 0, one thread, the pinned code paths): about twice
  s1's non-embedding parameters (2.0K against 1.0K). The other five sizes are the committed runs.
- *Measure*, per architecture: approach 3 with E fixed at the validation rows' Bayes nll on the
  validation loss (as the sixth to ninth probes), no bootstrap, on the rows the study fits (its window),
  once on the committed grid and once with s1's rows replaced by the two-layer s1's. Misfit: the sd over
  runs of each run's mean log residual (the study's). Ratio = the misfit with the two-layer s1 over the
  committed grid's.
- *Rule*, per architecture: the one-layer s1 explains the misfit if the ratio is at most 0.5, does not
  explain it if at least 0.8, partly between (``depth_verdict``); over all four with the same thresholds
  (``ratio_verdict``).
- *What it decides*: if it explains the misfit over all four, the next cpu grid gives s1 two layers (the
  preset changes and the study is re-run); otherwise the book says the bend is not s1's depth, and
  nothing else changes.
- *My prediction*: does not explain for all four (ratios 0.85-1.1): s1 is one run of six, and the bend's
  largest parts are s2/s3 above the law and s6 below it.
- *Also reported, outside the rule*: each run's mean log residual under both fits, both laws' a, and each
  s1's final validation loss with one and two layers.

*Registered on 2026-12-04 after the verdict above, before its runs* (a control, the same rule): the
two-layer s1 also has twice the parameters, which moves s1's N towards s2's. So s1 is retrained once
more with one layer at width 12 (``--variant "wide one-layer s1"``: 1.7K parameters, its width's LR, s1's
tokens), and the grid refitted with it in the same way. If depth is what s1 adds to the misfit, the wide
one-layer s1 leaves the misfit as it is (ratio at least 0.8, does not explain) for the architectures where
two layers explained it at least partly; if the control explains it as much, it was s1's N, not its depth.
*My prediction*: does not explain for all four.

Runs land in ``--out`` (resumable: a finished run is not trained again); the tables go to ``--results``
(Markdown, with machine and date) and as CSV files to ``--tables``.
"""
from __future__ import annotations

import argparse
import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

VARIANTS = {  # s1 refitted in place of the study's; everything else as the study's s1
    "two-layer s1": ("sizes.s1.n_layer=2",),
    "wide one-layer s1": ("sizes.s1.d_model=12",),  # the control: about the two-layer s1's N, one layer
}


def main() -> None:
    from linscale.train.code_paths import pin_numerics

    pin_numerics()  # before numpy and torch, as every linscale command: the fits below run in this process
    import pandas as pd

    from linscale.bench import format_table
    from linscale.probes import (benchmark_script, judge_probe, probe_arguments, probe_report_head, train_probe_run,
                                 verdict_lines, write_probe_outputs)
    from linscale.design import fit_settings
    from linscale.findings import DEPTH_DOES_NOT, DEPTH_EXPLAINS, depth_verdict
    from linscale.laws.suite import fit_window
    from linscale.presets import load_preset

    fit_part = benchmark_script("probe_context_roles").fit_part
    parser = probe_arguments(argparse.ArgumentParser(description=__doc__.split("\n\n")[0]), "")
    parser.add_argument("--variant", choices=list(VARIANTS), default="two-layer s1", help="the s1 refitted in place of "
                        "the study's (the control: 'wide one-layer s1')")
    args = parser.parse_args()
    variant = args.variant
    out = Path(args.out or ("runs/probe-s1-depth" if variant == "two-layer s1" else "runs/probe-s1-width"))
    preset = load_preset("cpu")
    archs = list(preset["archs"])
    results_dir = Path(args.results_dir)
    committed = pd.read_parquet(results_dir / "runs.parquet").assign(size=lambda t: t["size"].astype(str))
    if committed.empty or "s1" not in set(committed["size"]):
        raise SystemExit(f"--results-dir: {results_dir}/runs.parquet holds no s1 runs")
    started = dt.datetime.now(dt.timezone.utc)
    with ThreadPoolExecutor(args.jobs) as pool:
        folders = dict(zip(archs, pool.map(lambda arch: train_probe_run(out / f"{arch}-s1", arch, "s1",
                                                                        *VARIANTS[variant]), archs)))
    deeper = pd.concat([pd.read_parquet(folder / "results.parquet").assign(size="s1") for folder in folders.values()],
                       ignore_index=True)
    shape = {(int(row["n_layer"]), int(row["d_model"])) for _, row in deeper.iterrows()}
    if shape != {(2, 8) if variant == "two-layer s1" else (1, 12)}:
        raise SystemExit(f"the retrained s1 runs have (layers, width) {sorted(shape)}, not the {variant}'s")
    grids = {"committed": committed, variant: pd.concat([committed[committed["size"] != "s1"], deeper],
                                                                ignore_index=True)}
    floors = {name: set(grid["bayes_loss"].round(12)) for name, grid in grids.items()}
    if len(set.union(*floors.values())) != 1:
        raise SystemExit(f"the runs were not validated on one set of rows (Bayes nll {floors})")
    floor = float(committed["bayes_loss"].iloc[0])
    study = fit_settings(preset, bootstrap=0)

    fit_rows, residual_rows = [], []
    for name, grid in grids.items():
        window = fit_window(grid, study.warmup_steps, study.max_loss, study.loss_column)
        values = window[["run_id", "step", "val_loss", "bayes_loss"]].rename(columns={"val_loss": "loss",
                                                                                     "bayes_loss": "bayes"})
        got, residuals = fit_part(window.drop(columns=["val_loss", "bayes_loss"]), values, floor, archs, args.jobs)
        fit_rows += [dict(arch=row["arch"], grid=name, **{k: v for k, v in row.items() if k != "arch"}) for row in got]
        residual_rows += [r.assign(grid=name) for r in residuals]
    fits = pd.DataFrame(fit_rows)
    ratios, verdicts, overall = judge_probe(fits, "grid", variant, "committed", archs, depth_verdict,
                                            (DEPTH_EXPLAINS, DEPTH_DOES_NOT))
    residuals = pd.concat(residual_rows, ignore_index=True)

    # outside the rule: each s1's final validation loss and parameters with one and two layers
    finals = pd.concat([grid[grid["size"] == "s1"].sort_values("step").groupby("arch").tail(1).assign(grid=name)
                        for name, grid in grids.items()], ignore_index=True)
    finals = finals[["arch", "grid", "n_layer", "d_model", "params", "tokens", "val_loss"]]

    title = ("does the one-layer s1 bend the law?" if variant == "two-layer s1" else
             "is it s1's depth or its N? (the control: a wide one-layer s1)")
    decision = {"explains": "the next cpu grid gives s1 two layers",
                "partly": "s1's single layer is part of the bend, not all of it; the grid stays as it is (only "
                          "'explains' over all four changes it)"}.get(overall, "the bend is not s1's depth; nothing "
                                                                               "else changes")
    if variant != "two-layer s1":
        decision = ("depth, not N, for the architectures where the control does not explain the misfit and two "
                    "layers did at least partly; the grid stays as it is")
    lines = [*probe_report_head(f"Registered probe: {title} (cpu preset)",
                                "the design, the rule and my prediction are in the script's docstring, committed "
                                "before any run was trained.", started),
             f"- validation Bayes nll (E): {floor:.4f}",
             f"- s1 refitted in place of the study's: {variant} ({', '.join(VARIANTS[variant])})",
             *verdict_lines(f"Does the {variant} in place of the study's s1 explain the misfit?", archs, ratios,
                            verdicts, overall, (DEPTH_EXPLAINS, DEPTH_DOES_NOT), decision),
             "", "## Approach 3 (E fixed at the validation Bayes nll, no bootstrap) on both grids", "",
             "misfit: sd over runs of each run's mean log residual; rows: points fitted; ratio: "
             f"{variant} / committed.", "", format_table(fits.round(4)), "", "## Each run's mean log residual around its law", "",
             format_table(residuals.pivot_table(index=["arch", "size"], columns="grid", values="residual", sort=False)
                          .round(4).reset_index().rename_axis(columns=None)), "",
             f"## Outside the rule: s1's final checkpoint, the study's and the {variant}", "",
             format_table(finals.round(4))]
    write_probe_outputs("\n".join(lines) + "\n", args.results, args.tables,
                        {"fits": fits, "residuals": residuals, "finals": finals})


if __name__ == "__main__":
    main()
