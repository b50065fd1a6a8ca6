"""Is s6's miss below every architecture's law its head count? (issue 15)

    python benchmarks/probe_s6_heads.py                    # about 15 minutes on 2 cores
    python benchmarks/probe_s6_heads.py --results benchmarks/results/X.md --tables results/probes/NAME

**Registered on 2026-12-03 (this script's first commit), before any of these runs was trained** (the rule
is ``heads_verdict``, in ``linscale.findings``):

- *Why*: the cpu ladder's own principle is that neighbouring sizes above s1 differ in width only (the
  preset's comment on s2), but s6 alone has 4 heads (s1-s5 have 2). For TNL the head count sets the
  decays themselves (ALiBi slopes 2^(-8i/h), i = 1..h, in layer 0): only s6 has heads of slope 2^-2 and
  2^-6 (a local head, λ = e^-0.25), against 2^-4 and 2^-8 at every other size. For the linear models it
  also halves the state per head (h heads of (d/h)²: 1,296 entries per layer at s6, 2,592 with 2 heads).
  Around its own law (approach 3, E fixed) s6 sits below for every architecture: TNL -4.7%, HGRN2 -3.2%,
  LLaMA and cosFormer2 -1.3% (mean log residual of the run); TNL's s6 is 4.9% below its s5 at the end,
  the other architectures' 1.4-2.1%, and TNL's s6 ends at 1.508-1.522 in all six seeds the committed
  studies hold: not seed luck. If s6's miss is its head count, the next grid should keep 2 heads.
- *Runs*: s6 of every architecture with ``n_head = 2`` (head width 36), everything else as the study
  trains it (seed 0, the LR rule of its width, 4.8M tokens, pinned CPU code paths): 4 runs. A control,
  TNL s6 with ``n_head = 4`` set explicitly (the committed configuration), must give the committed final
  validation loss within 0.1% (on this machine's pins, expected bit for bit): the probe trains what the
  study trained.
- *Measure*: per architecture, approach 3 with E fixed (the study's settings, no bootstrap) refitted on
  the committed runs with s6 replaced by its 2-head run; s6's mean log residual around that law against
  the committed s6's around the committed fit: shrink = |residual with 2 heads| / |residual with 4
  heads|. Also: the misfit (sd of the runs' mean log residuals) and a before and after, and whether the
  2-head s6 still overtakes s5 at equal compute inside the compute both cover (``crossovers``, training
  loss, as the study's table).
- *Rule*, per architecture: the head count explains s6's miss if shrink <= 0.5, does not explain it if
  shrink >= 0.8, partly otherwise (``linscale.findings.heads_verdict``).
- *What it decides* (the next grid, not this one): keep 2 heads at s6 for every architecture if the
  head count explains TNL's miss and every architecture's 2-head s6 still overtakes s5.
- *My prediction*: TNL explains (its 2-head s6 ends 2-3% higher, near 1.55: the local head was what
  s6 gained beyond its width); LLaMA, HGRN2 and cosFormer2 do not explain (their final losses move by
  less than 0.5%). Every 2-head s6 still overtakes s5.
- *Also measured, outside the rule*: the retrieval suite (NIAH easy and standard, weighted accuracy;
  associative recall) at each 2-head run's final checkpoint, next to the committed s6's: TNL's s6 scores
  0.42 on NIAH easy against 0.96 at s5.

Runs land in ``--out`` (resumable: a finished run is not trained again); the tables go to ``--results``
(Markdown, with machine and date) and as CSV files to ``--tables``.
"""
from __future__ import annotations

import argparse
import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

SIZE, HEADS, COMMITTED_HEADS = "s6", 2, 4
CONTROL = "tnl"  # retrained with the committed head count: the probe must train what the study trained
CONTROL_TOLERANCE = 0.001  # relative, final validation loss


def main() -> None:
    from linscale.train.code_paths import pin_numerics

    pin_numerics()  # before numpy and torch, as every linscale command: the fits below run in this process
    import pandas as pd

    from linscale.bench import format_table
    from linscale.probes import (final_retrieval, probe_arguments, probe_report_head, probe_retrieval, train_probe_run,
                                 write_probe_outputs)
    from linscale.design import fit_settings
    from linscale.findings import HEADS_DOES_NOT, HEADS_EXPLAINS, heads_verdict, refit_misfit
    from linscale.laws.suite import crossovers, fit_window
    from linscale.presets import load_preset

    parser = probe_arguments(argparse.ArgumentParser(description=__doc__.split("\n\n")[0]), "runs/probe-s6-heads",
                             "the committed study (its 4-head s6 runs)")
    parser.add_argument("--archs", nargs="*", default=None, help="architectures (registered: all four)")
    args = parser.parse_args()

    preset = load_preset("cpu")
    archs = args.archs or list(preset["archs"])
    bad = [a for a in archs if a not in preset["archs"]]
    if bad or not archs:
        raise SystemExit(f"--archs: expected architectures among {', '.join(preset['archs'])}, got {bad or 'none'}")
    if int(preset["sizes"][SIZE]["n_head"]) != COMMITTED_HEADS:
        raise SystemExit(f"the cpu preset's {SIZE} has {preset['sizes'][SIZE]['n_head']} heads, not the "
                         f"{COMMITTED_HEADS} this probe compares against: it probes the committed study")
    results_dir = Path(args.results_dir)
    committed = pd.read_parquet(results_dir / "runs.parquet")
    committed = committed[committed["arch"].isin(archs)].assign(size=lambda t: t["size"].astype(str))
    if committed.empty:
        raise SystemExit(f"--results-dir: {results_dir}/runs.parquet has no runs of {archs}")
    out = Path(args.out)
    wanted = [(arch, HEADS) for arch in sorted(archs, key=lambda a: -float(committed.loc[
        (committed["arch"] == a) & (committed["size"] == SIZE), "wall_time_s"].max()))]  # longest first
    if CONTROL in archs:
        wanted.append((CONTROL, COMMITTED_HEADS))
    started = dt.datetime.now(dt.timezone.utc)
    with ThreadPoolExecutor(args.jobs) as pool:
        folders = dict(zip(wanted, pool.map(lambda w: train_probe_run(out / f"{w[0]}-{SIZE}-h{w[1]}", w[0], SIZE,
                                                                        f"sizes.{SIZE}.n_head={w[1]}"), wanted)))
    probe = {key: pd.read_parquet(folder / "results.parquet").assign(size=SIZE) for key, folder in folders.items()}

    control_line = f"not retrained ({CONTROL} not among the probe's architectures)"
    if (CONTROL, COMMITTED_HEADS) in probe:
        mine = float(probe[(CONTROL, COMMITTED_HEADS)].sort_values("step")["val_loss"].iloc[-1])
        theirs = committed[(committed["arch"] == CONTROL) & (committed["size"] == SIZE)].sort_values("step")
        theirs = float(theirs["val_loss"].iloc[-1])
        change = mine / theirs - 1
        control_line = (f"{CONTROL} {SIZE} with {COMMITTED_HEADS} heads retrained: final validation loss {mine!r}, "
                        f"committed {theirs!r} ({change:+.3%}; "
                        f"{'within' if abs(change) <= CONTROL_TOLERANCE else 'OUTSIDE'} the registered {CONTROL_TOLERANCE:.1%})")
    print(control_line, flush=True)

    settings = fit_settings(preset, bootstrap=0)
    rows, residual_rows, cross_rows, shrinks = [], [], [], {}
    for arch in archs:
        mine = committed[committed["arch"] == arch]
        swapped = pd.concat([mine[mine["size"] != SIZE], probe[(arch, HEADS)]], ignore_index=True)
        finals = {}
        for heads, runs in ((COMMITTED_HEADS, mine), (HEADS, swapped)):
            a, residuals, spread = refit_misfit(runs, preset)
            s6 = residuals.loc[residuals["size"] == SIZE, "residual"]
            last = runs[runs["size"] == SIZE].sort_values("step").iloc[-1]
            finals[heads] = float(last["val_loss"])
            rows.append(dict(arch=arch, heads=heads, params=int(last["params"]), val_loss=finals[heads],
                             a=a, misfit=spread, s6_residual=float(s6.iloc[0]) if len(s6) else float("nan")))
            residual_rows.append(residuals.assign(heads=heads))
            window = fit_window(runs, settings.warmup_steps, settings.max_loss, settings.loss_column)
            pair = crossovers(window[window["size"].isin(["s5", SIZE])], settings.loss_column)
            cross_rows.append(pair.assign(heads=heads))
        before, after = rows[-2]["s6_residual"], rows[-1]["s6_residual"]
        shrinks[arch] = abs(after) / abs(before) if before else float("nan")
        print(f"{arch}: s6 residual {before:+.4f} (4 heads) -> {after:+.4f} (2 heads), shrink {shrinks[arch]:.2f}; "
              f"final val loss {finals[COMMITTED_HEADS]:.4f} -> {finals[HEADS]:.4f}", flush=True)
    fits = pd.DataFrame(rows)
    fits["shrink"] = fits["arch"].map(shrinks).where(fits["heads"] == HEADS)
    verdicts = heads_verdict(shrinks)
    fits["verdict"] = fits["arch"].map(verdicts).where(fits["heads"] == HEADS)
    residuals = pd.concat(residual_rows, ignore_index=True)
    crossings = pd.concat(cross_rows, ignore_index=True)[["arch", "heads", "small", "large", "crossover", "gap_at_end"]]

    # outside the rule: the retrieval suite at the final checkpoint, 2 heads against the committed 4
    committed_eval = pd.read_parquet(results_dir / "eval.parquet")
    committed_eval = committed_eval[committed_eval["arch"].isin(archs) & (committed_eval["size"].astype(str) == SIZE)]
    scores = pd.concat([final_retrieval(committed_eval).assign(heads=COMMITTED_HEADS),
                        *(probe_retrieval(folders[(arch, HEADS)], arch, SIZE).assign(heads=HEADS) for arch in archs)],
                       ignore_index=True)

    crossed = crossings[crossings["heads"] == HEADS]["crossover"].notna()
    keep = verdicts.get("tnl") == "explains" and bool(crossed.all()) and len(crossed) == len(archs)
    registered = sorted(archs) == sorted(preset["archs"])
    lines = [*probe_report_head(f"{'Registered probe' if registered else 'Not the registered probe'}: is s6's miss its head count? "
                                "(cpu preset)",
                                "the design, the rule and my prediction are in the script's docstring, committed "
                                "before any run was trained.", started),
             f"- control: {control_line}", "", "## Verdict", "",
             *(f"- {arch}: the head count **{verdicts[arch]}** s6's miss (shrink {shrinks[arch]:.2f}; explains: at most "
               f"{HEADS_EXPLAINS}, does not explain: at least {HEADS_DOES_NOT})" for arch in archs),
             f"- the 2-head s6 overtakes s5 inside the compute both cover: "
             f"{', '.join(f'{r.arch} ' + ('yes' if r.crossover == r.crossover else 'no') for r in crossings[crossings['heads'] == HEADS].itertuples())}",
             f"- what it decides for the next grid: {'keep 2 heads at s6' if keep else 'nothing: the registered condition (TNL explains, every s6 overtakes s5) is not met'}",
             "", "## Approach 3 (E fixed) with the committed s6 (4 heads) and with the 2-head s6", "",
             "s6_residual: s6's mean log residual around its architecture's law; shrink: |2 heads| / |4 heads|.", "",
             format_table(fits.round(4)), "", "## Each run's mean log residual around its law", "",
             format_table(residuals.pivot_table(index=["arch", "size"], columns="heads", values="residual").round(4)
                          .reset_index().rename_axis(columns=None)), "",
             "## s5 against s6 at equal compute (training loss, the fit window)", "",
             "crossover: the first compute (FLOPs) at which s6 is below s5; gap_at_end: s6 over s5 at the end of the "
             "compute both cover, minus 1.", "", format_table(crossings), "",
             "## Outside the rule: retrieval at the final checkpoint", "", format_table(scores.round(3))]
    write_probe_outputs("\n".join(lines) + "\n", args.results, args.tables,
                        {"fits": fits, "residuals": residuals, "crossings": crossings, "retrieval": scores})


if __name__ == "__main__":
    main()
