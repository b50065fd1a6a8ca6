"""Does the constant learning rate bend the law? The cpu grid's checkpoints annealed and refitted (issue 15)

    python benchmarks/probe_cooldown.py                    # about 35 minutes on 2 cores
    python benchmarks/probe_cooldown.py --results benchmarks/results/X.md --tables results/probes/NAME

**Registered on 2026-12-04 (this script's first commit), before any of these runs was trained** (the
rule is ``cooldown_verdict``, in ``linscale.findings``):

- *Why*: eight probes found no single cause of the misfit by size (each run's mean log residual around
  approach 3's law, E fixed): s2 and s3 sit above their law, s5 and s6 below it, in every architecture.
  The study trains at a constant LR after warmup (the paper's fixed LR) and fits every checkpoint, and its
  LR falls with width (6e-3·(16/d)^0.5: 8.5e-3 at s1, 2.8e-3 at s6). A checkpoint at a constant LR carries
  an excess loss from the LR's own noise, which an anneal removes (Hägele et al. 2024, "Scaling laws and
  compute-optimal training beyond fixed training durations": a short cooldown from a constant-LR run
  matches a full cosine run); when that excess differs by size as the LR does, the sizes' losses bend away
  from one power law in N. The LR probe scaled the whole rule (every size's LR times 0.5, 1, 2), which
  moves every size's excess together; it did not take the excess away.
- *Runs*: the 24 runs of the cpu grid's main sweep, retrained exactly as the study trains them (seed 0,
  each size's budget and LR, one thread, the pinned code paths), keeping the resume checkpoint (weights
  and AdamW state) at the record steps the cooldowns start from (``train.keep_checkpoints``: what is
  kept, not what is computed). From each run's record steps s_0 < ... < s_23 (log-spaced, a ratio of
  about 1.22 between neighbours), five targets: s_11, s_14, s_17, s_20, s_23 (about 9%, 17%, 30%, 55%,
  100% of its tokens; every one inside the study's fit window). For each target s_t, a cooldown run
  branched from s_(t-1) (``linscale.train.branch_run``): the same run, then the LR decayed linearly to 0
  over the steps from s_(t-1) to s_t (``wsd``, decay fraction 1 - s_(t-1)/s_t, about 18%: Hägele et al.'s
  20%), so it has seen exactly the tokens of the constant run's checkpoint s_t. 120 cooldowns, about 0.4
  of the grid's compute. Controls: every retrained run's validation loss at every checkpoint equals the
  committed one within 0.1% (relative); one cooldown (LLaMA s2 to s_11) also trained from step 0 as a
  ``wsd`` run gives the branch's validation loss within 1e-6 (relative).
- *Measure*, per architecture: on the 30 (run, target) points, two validation losses: the constant run's
  at s_t and the cooldown's. Each is fitted by approach 3 with E fixed at the validation rows' Bayes nll
  (as the sixth and eighth probes), no bootstrap. Misfit: the sd over runs of each run's mean log residual
  (the study's). Ratio = the cooldowns' misfit / the constant checkpoints' misfit, on the same points.
- *Rule*, per architecture: the constant LR explains the misfit if the ratio is at most 0.5, does not
  explain it if at least 0.8, partly between (``cooldown_verdict``); over all four with the same
  thresholds (``ratio_verdict``).
- *What it decides*: if it explains the misfit over all four, the next cpu study fits annealed points (a
  cooldown branched at every fitted checkpoint, or at a few per run), and its design check's noise model
  is measured on them; otherwise the book says the bend is not the constant LR's noise, and nothing else
  changes.
- *My prediction*: partly for all four (ratios 0.55-0.8): the cooldown's gain is largest for the small,
  high-LR sizes, which takes s2 and s3 down towards their law but s1 further below it.
- *Also reported, outside the rule*: each run's mean log residual under both laws; each size's gain from
  the cooldown at each target (constant over annealed validation loss, minus 1); both laws' a.

Runs land in ``--out`` (resumable: a finished run or cooldown is not trained again); the tables go to
``--results`` (Markdown, with machine and date) and as CSV files to ``--tables``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

CONTROL_TOLERANCE = 0.001  # relative, every checkpoint's validation loss against the committed one
BRANCH_TOLERANCE = 1e-6  # relative, a branched cooldown against the same cooldown trained from step 0
TARGETS = (11, 14, 17, 20, 23)  # record-step indices (of 24) the cooldowns end at; each starts at the one before


def cooldown_overrides(size: str, start: int, target: int, tokens_per_step: int) -> list[str]:
    """``--set`` overrides that make a run of ``size`` a cooldown: ``target`` steps in all, the LR constant
    (after the preset's warmup) until step ``start``, then linear to 0 (``wsd``); one record, no export."""
    fraction = (target - start) / target
    if target - round(fraction * target) != start:  # the schedule's own rounding (linscale.train.lr_factor)
        raise SystemExit(f"{size}: a decay fraction of {fraction!r} does not start the decay at step {start}")
    return [f"sizes.{size}.train.tokens={target * tokens_per_step}", "train.schedule=wsd",
            f"train.decay_fraction={fraction!r}", "train.min_lr_ratio=0", "train.checkpoints=1", "train.exports=0"]


def spec_for(arch: str, size: str, overrides) -> dict:
    from linscale.train import plan_runs

    _, specs = plan_runs("cpu", [*overrides, f"archs=[{arch}]"])
    return next(spec for spec in specs if spec["size"] == size)


def train_cooldown(source: Path, folder: Path, arch: str, size: str, start: int, target: int) -> float:
    """The cooldown of run ``source`` from its record step ``start`` to ``target`` (branched from the
    checkpoint kept at ``start``; resumable); returns its final validation loss."""
    from linscale.probes import run_cli
    from linscale.train import branch_run, read_records, read_status

    if read_status(folder).get("state") != "done":
        tokens_per_step = json.loads((source / "spec.json").read_text())["train"]
        overrides = cooldown_overrides(size, start, target, tokens_per_step["batch_size"] * tokens_per_step["seq_len"])
        branch_run(source, start, folder, spec_for(arch, size, overrides))
        run_cli("train", "--run-dir", str(folder), "--threads", "1", "--no-progress")
    last = read_records(folder)[-1]
    if last["step"] != target:
        raise SystemExit(f"{folder}: its last record is step {last['step']}, not the target {target}")
    return float(last["val_loss"])


def main() -> None:
    from linscale.train.code_paths import pin_numerics

    pin_numerics()  # before numpy and torch, as every linscale command: the fits below run in this process
    import pandas as pd

    from linscale.bench import format_table
    from linscale.probes import (benchmark_script, judge_probe, probe_arguments, probe_report_head, retrain_control,
                                 train_probe_run, verdict_lines, write_probe_outputs)
    from linscale.design import fit_settings
    from linscale.findings import COOLDOWN_DOES_NOT, COOLDOWN_EXPLAINS, cooldown_verdict
    from linscale.laws.suite import fit_window
    from linscale.presets import load_preset
    from linscale.train import TrainSettings, read_records, read_status

    fit_part = benchmark_script("probe_context_roles").fit_part

    args = probe_arguments(argparse.ArgumentParser(description=__doc__.split("\n\n")[0]),
                           "runs/probe-cooldown").parse_args()
    preset = load_preset("cpu")
    archs, sizes = list(preset["archs"]), list(preset["sizes"])
    results_dir = Path(args.results_dir)
    committed = pd.read_parquet(results_dir / "runs.parquet").assign(size=lambda t: t["size"].astype(str))
    if committed.empty:
        raise SystemExit(f"--results-dir: {results_dir}/runs.parquet holds no runs")
    out = Path(args.out)
    started = dt.datetime.now(dt.timezone.utc)

    # the constant-LR runs, keeping the checkpoints the cooldowns start from
    steps = {}
    for arch in archs:
        for spec in (spec_for(arch, size, []) for size in sizes):
            record = TrainSettings.from_dict(spec["train"]).checkpoint_steps()
            if len(record) != 24:
                raise SystemExit(f"{spec['run_id']}: {len(record)} record steps, the probe needs the preset's 24")
            steps[(arch, spec["size"])] = [(record[t - 1], record[t]) for t in TARGETS]
    seconds = committed.groupby("run_id")["wall_time_s"].max()
    wanted = sorted(steps, key=lambda w: -float(seconds.get(f"{w[0]}-{w[1]}", 0)))  # longest first

    def constant(w):
        keep = ",".join(str(start) for start, _ in steps[w])
        return train_probe_run(out / "constant" / f"{w[0]}-{w[1]}", *w, f"sizes.{w[1]}.train.keep_checkpoints=[{keep}]")

    with ThreadPoolExecutor(args.jobs) as pool:
        folders = dict(zip(wanted, pool.map(constant, wanted)))
    retrained = pd.concat([pd.read_parquet(folder / "results.parquet").assign(size=size)
                           for (arch, size), folder in folders.items()], ignore_index=True)
    both, control_line = retrain_control(retrained, committed, CONTROL_TOLERANCE)

    # the cooldowns, longest first
    jobs = sorted(((w, start, target) for w in wanted for start, target in steps[w]),
                  key=lambda job: -(job[2] - job[1]) * float(seconds.get(f"{job[0][0]}-{job[0][1]}", 0)))

    def cooldown(job):
        (arch, size), start, target = job
        source = folders[(arch, size)] / "runs" / f"{arch}-{size}"
        loss = train_cooldown(source, out / "cooldown" / f"{arch}-{size}-to{target}", arch, size, start, target)
        return dict(run_id=f"{arch}-{size}", arch=arch, size=size, start=start, step=target, annealed=loss)

    with ThreadPoolExecutor(args.jobs) as pool:
        annealed = pd.DataFrame(list(pool.map(cooldown, jobs)))

    # the branch control: one cooldown trained from step 0
    (arch, size), (start, target) = ("llama", "s2"), steps[("llama", "s2")][0]
    scratch = out / "scratch" / f"{arch}-{size}-to{target}"
    source_train = json.loads((folders[(arch, size)] / "runs" / f"{arch}-{size}" / "spec.json").read_text())["train"]
    overrides = cooldown_overrides(size, start, target, source_train["batch_size"] * source_train["seq_len"])
    if read_status(scratch / "runs" / f"{arch}-{size}").get("state") != "done":
        train_probe_run(scratch, arch, size, *overrides)
    scratch_loss = float(read_records(scratch / "runs" / f"{arch}-{size}")[-1]["val_loss"])
    branch_loss = float(annealed[(annealed["run_id"] == f"{arch}-{size}") & (annealed["step"] == target)]["annealed"].iloc[0])
    branch_change = abs(branch_loss / scratch_loss - 1)
    branch_line = (f"{arch} {size}'s cooldown to step {target}, branched at step {start} and trained from step 0: "
                   f"validation loss {branch_loss:.6f} and {scratch_loss:.6f}, relative difference {branch_change:.2g} "
                   f"({'within' if branch_change <= BRANCH_TOLERANCE else 'OUTSIDE'} the registered "
                   f"{BRANCH_TOLERANCE:g})")
    print(branch_line, flush=True)

    # the two losses on the same points, each fitted by approach 3 with E fixed at the validation Bayes nll
    points = annealed.merge(retrained[["run_id", "step", "val_loss", "bayes_loss"]], on=["run_id", "step"])
    if len(points) != len(annealed) or points["bayes_loss"].nunique() != 1:
        raise SystemExit("the cooldowns' targets are not checkpoints of the retrained runs on one set of validation rows")
    floor = float(points["bayes_loss"].iloc[0])
    study = fit_settings(preset, bootstrap=0)
    window = fit_window(retrained, study.warmup_steps, study.max_loss, study.loss_column)
    base = window.drop(columns=["val_loss", "bayes_loss"]).merge(points[["run_id", "step"]], on=["run_id", "step"])
    outside = len(points) - len(base)
    fit_rows, residual_rows = [], []
    for schedule, column in (("constant", "val_loss"), ("cooldown", "annealed")):
        values = points.assign(loss=points[column], bayes=points["bayes_loss"])
        got, residuals = fit_part(base, values, floor, archs, args.jobs)
        fit_rows += [dict(arch=row["arch"], schedule=schedule, **{k: v for k, v in row.items() if k != "arch"})
                     for row in got]
        residual_rows += [r.assign(schedule=schedule) for r in residuals]
    fits = pd.DataFrame(fit_rows)
    ratios, verdicts, overall = judge_probe(fits, "schedule", "cooldown", "constant", archs, cooldown_verdict,
                                            (COOLDOWN_EXPLAINS, COOLDOWN_DOES_NOT))
    residuals = pd.concat(residual_rows, ignore_index=True)

    # outside the rule: each size's gain from the cooldown at each target
    points["gain"] = points["val_loss"] / points["annealed"] - 1
    points["target"] = points.groupby("run_id")["step"].rank().astype(int).map(dict(enumerate(TARGETS, 1)))
    gains = (points.pivot_table(index=["arch", "size"], columns="target", values="gain")
             .reindex([(arch, size) for arch in archs for size in sizes]).rename(columns=lambda t: f"s_{t}")
             .round(4).reset_index().rename_axis(columns=None))

    decision = ("the next cpu study fits annealed points, its design check's noise measured on "
               "them" if overall == "explains" else "the bend is not the constant LR's noise; "
               "nothing else changes")
    lines = [*probe_report_head("Registered probe: does the constant learning rate bend the law? (cpu preset)",
                                "the design, the rule and my prediction are in the script's docstring, committed "
                                "before any run was trained.", started),
             f"- control: {control_line}",
             f"- branch control: {branch_line}",
             f"- points: {len(points)} (run, target) pairs, {outside} outside the study's fit window; validation "
             f"Bayes nll (E) {floor:.4f}",
             *verdict_lines("Does the constant LR explain the misfit?", archs, ratios, verdicts, overall,
                            (COOLDOWN_EXPLAINS, COOLDOWN_DOES_NOT), decision),
             "", "## Approach 3 (E fixed at the validation Bayes nll, no bootstrap) on both losses", "",
             "misfit: sd over runs of each run's mean log residual; rows: points fitted; ratio: cooldown / "
             "constant.", "", format_table(fits.round(4)), "", "## Each run's mean log residual around its law", "",
             format_table(residuals.pivot_table(index=["arch", "size"], columns="schedule", values="residual",
                                                sort=False).round(4).reset_index().rename_axis(columns=None)), "",
             "## Outside the rule: the cooldown's gain (constant over annealed validation loss, minus 1) by target", "",
             "s_t: the record step the cooldown ends at (of 24; s_23 is the run's last).", "", format_table(gains)]
    write_probe_outputs("\n".join(lines) + "\n", args.results, args.tables,
                        {"fits": fits, "residuals": residuals, "points": points, "control": both})


if __name__ == "__main__":
    main()
