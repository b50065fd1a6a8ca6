"""The study end to end: sweep -> evaluation -> fits -> chapters (papermill) -> book.

Each stage keeps every core busy: the main and ablation sweeps run as one schedule on one pool of
training processes, the evaluation takes checkpoints side by side in a pool of one-thread processes, and
the fits stage fits each method and architecture as a task of its own pool. (The fits once ran in a
process of their own beside a one-process evaluation: 490 s for both on the cpu study, against 139 s +
about 185 s one after the other with both pools.)

    linscale study --preset cpu      # the default CPU study; 35-70 min on 2 cores by CPU (see the README)
    linscale study --preset smoke    # the same pipeline in a few minutes (CI)
    linscale book                    # only the last two stages, from the committed results

Folders::

    runs/<preset>/                 the sweep: run folders, checkpoints, exports (not committed)
    runs/<preset>-<ablation>/      the ablation sweeps (aspect ratio, training context, seeds, size_seeds)
    results/<preset>/              the tables the book reads (committed):
        runs.parquet (+ .csv)          the sweep's results table (linscale.train.results)
        eval.parquet                   downstream scores (linscale eval's store)
        ablations/<name>.parquet       the ablation sweeps' results tables
        ablations/<name>-eval.parquet  downstream scores of their final checkpoints
        roles.parquet                  excess loss by token role (linscale.eval.roles)
        fits/<method>.csv              fitted laws (linscale.laws), with bootstrap intervals
        overrides.json                 the --set overrides of a study made with some (the chapters read them)
    book/chapters/                 executed chapters;  _build/html/  the book

Every stage is resumable and skips work already done: the sweep skips finished runs and resumes an
interrupted one from its checkpoint; evaluation skips (checkpoint, suite) pairs already in its store;
fits are redone only when the runs table changed; a chapter is re-executed only when its source,
parameters or input tables changed. Tables are copied into results/ atomically.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import hashlib
import os
import shutil
import time
from pathlib import Path

import pandas as pd

from linscale.atomic import atomic_update, atomic_write, write_json
from linscale.config import PAPER_LINEAR_ARCHITECTURES, ConfigError, read_table_file
from linscale.eval.tasks import SUITES as TASK_SUITES  # only the task folder's names: no torch, no lm-eval
from linscale.train.settings import ABLATIONS, check_context_size  # ABLATIONS: ablation_presets' sweeps, in order

STAGES = ("design", "sweep", "eval", "fits", "book")
SUITES = tuple(TASK_SUITES)  # the main sweep's checkpoints are evaluated on every suite
# One bootstrap setting for the whole study: the fits stage computes every interval once, the book reads them.
FITS_BOOTSTRAP = 200  # linscale.design.FITS_BOOTSTRAP (checked in tests): the CLI's help reads it without importing design
DESIGN_REPLICATES = 4  # linscale.design.REPLICATES, which the CLI's --check-design also uses (checked in tests)
# The suites each ablation's final checkpoints are evaluated on: what the findings use them for (the
# context ablation's retrieval claim; the accuracies' seed noise). The aspect ablation's claim is about loss.
ABLATION_SUITES = {"context": ("retrieval",), "seeds": ("knowledge", "linguistic", "retrieval"),  # seeds: every claim downstream is judged on them
                   "size_seeds": ("retrieval",)}  # size_seeds: retrieval's seed noise where it has emerged (s6) and not (s1)


def _log(message: str) -> None:
    print(f"[study] {message}", flush=True)


SHARED = 0o644  # the results tables are committed and shared: not mkstemp's 0600


def _copy_atomic(src: Path, dst: Path) -> None:
    atomic_write(dst, lambda tmp: shutil.copyfile(src, tmp), mode=SHARED)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fitting_code_digest(laws_dir: Path | None = None) -> str:
    """The content of the fitting code (``linscale/laws``): part of the fits' up-to-date stamp, so that a
    study re-run after a change there (a bug fixed in the bootstrap) refits its laws, as the book
    re-executes its chapters after a change anywhere in the package."""
    laws_dir = Path(__file__).resolve().parent / "laws" if laws_dir is None else Path(laws_dir)
    digest = hashlib.sha256()
    for path in sorted(laws_dir.rglob("*")):
        if path.is_file() and path.suffix in (".py", ".csv") and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(laws_dir)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


# ----------------------------------------------------------------------------- ablations


ASPECT_ARCHS = ("llama", "cosformer2")  # the paper's Table 5
CONTEXT_ARCHS = PAPER_LINEAR_ARCHITECTURES  # Table 6: the paper's linear models (the claims are about them)
ASPECT_FACTORS = (0.71, 1.41)  # widths relative to the base (0.5 would mean 4x the depth: most of the cost)
SEED_OFFSETS = (1, 2)  # the seeds ablation retrains the base size at seed + 1 and seed + 2: three seeds in all


def aspect_shape(shape: dict, factor: float) -> tuple[int, int]:
    """(width, layers) of the aspect ablation's shape ``factor`` times as wide as ``shape`` at about its
    non-embedding count (layers x width² fixed): widths stay divisible by the heads with an even head width,
    and both round to whole units, so the count drifts (the ablations chapter measures by how much)."""
    l0, d0, step = shape["n_layer"], shape["d_model"], 2 * shape["n_head"]
    d = max(step, int(round(d0 * factor / step)) * step)
    return d, max(1, int(round(l0 * (d0 / d) ** 2)))


def ablation_presets(preset: str | dict) -> tuple[str, dict[str, list[dict]]]:
    """The CPU-sized ablations of the paper's §5, around one size of a study preset (the one below the
    middle, to keep the cost down). Returns (that size's name, {ablation: [preset dicts]}).

    * ``aspect``: aspect ratio at (about) fixed non-embedding parameters N ≈ 12·l·d²: widths 0.71 and
      1.41 times the base width (``ASPECT_FACTORS``, rounded to a multiple of twice the heads, which stay
      the same) with the depth scaled by (d_base/d)²; LLaMA and cosFormer2, as in the paper's Table 5.
    * ``context``: training context n/2 and 2n at a fixed number of tokens per batch (b·n constant, as in
      the paper); the linear models, as in the paper's Table 6. At the preset's ``context_size`` (a size
      of its grid; default the base size): half of the paper's question is retrieval, which must have
      emerged at the size the ablation retrains for short and long contexts to differ in it (the cpu
      preset's s6; the paper's Table 6 is at 1B).
    * ``seeds``: the base size retrained with other seeds (weights and data order; the language is
      fixed by its world seed), all architectures, every other setting as in the main sweep. Not an
      ablation of the paper's, which trains one seed per run: it measures how far one run's final loss
      moves by chance, the yardstick for every single-seed comparison in the book.
    * ``size_seeds``: the grid's smallest and largest sizes retrained once with the next seed (seed + 1,
      as the seeds ablation's first), all architectures, evaluated on retrieval only (ABLATION_SUITES): the
      seed noise at the ends of the grid, where a claim that compares runs of every size (the loss
      envelopes) also looks, and retrieval's where it has emerged (s6) and where it has not (s1). A re-run with
      another seed moved the smallest size's final losses beyond the bound measured at the base size
      (README, "Reproducibility"); one size's noise is not every size's.

    The base shape, context and seed themselves are not retrained: their rows come from the main sweep.
    """
    from linscale.presets import load_preset, split_size

    base = load_preset(preset) if not isinstance(preset, dict) else preset
    sizes = list(base["sizes"].items())
    name, shape = sizes[max(0, len(sizes) // 2 - 1)]
    size_train = split_size(name, shape)[1]  # the base size's own token budget and LR, if it has one
    d0, h0 = shape["d_model"], shape["n_head"]
    label = base.get("name", "study")
    aspect_sizes = {}
    for factor in ASPECT_FACTORS:
        d, layers = aspect_shape(shape, factor)
        if d != d0:
            aspect_sizes[f"d{d}-l{layers}"] = {"n_layer": layers, "d_model": d, "n_head": h0,
                                              **({"train": dict(size_train)} if size_train else {})}
    aspect = copy.deepcopy(base)
    aspect.update(name=f"{label}-aspect", archs=[a for a in base["archs"] if a in ASPECT_ARCHS],
                  sizes=aspect_sizes, arch_overrides={})
    contexts = []
    check_context_size(base)  # a preset given here unresolved too
    context_size = str(base.get("context_size", name))
    n0, b0 = int(base["train"]["seq_len"]), int(base["train"]["batch_size"])
    for factor in (0.5, 2):
        n = int(n0 * factor)
        variant = copy.deepcopy(base)
        variant.update(name=f"{label}-context{n}", archs=[a for a in base["archs"] if a in CONTEXT_ARCHS],
                       sizes={context_size: base["sizes"][context_size]}, arch_overrides={})
        variant["train"].update(seq_len=n, batch_size=max(1, (n0 * b0) // n))
        variant.setdefault("model", {})["max_seq_len"] = max(int(variant["model"].get("max_seq_len", 0)), n)
        contexts.append(variant)
    seeds = []
    for offset in SEED_OFFSETS:
        seed = int(base["train"].get("seed", 0)) + offset
        variant = copy.deepcopy(base)
        variant.update(name=f"{label}-seed{seed}", sizes={name: shape})
        variant["train"]["seed"] = seed
        seeds.append(variant)
    ends = {n: s for n, s in (sizes[0], sizes[-1]) if n != name}  # the base size has its seeds already
    size_seeds = []
    if ends:
        variant = copy.deepcopy(base)
        seed = int(base["train"].get("seed", 0)) + SEED_OFFSETS[0]
        variant.update(name=f"{label}-ends-seed{seed}", sizes=copy.deepcopy(ends))
        variant["train"]["seed"] = seed
        size_seeds.append(variant)
    variants = {"aspect": [aspect], "context": contexts, "seeds": seeds, "size_seeds": size_seeds}
    for variant in (v for items in variants.values() for v in items):
        # a variant is a sweep of its own sizes: the base's context_size (s6) and its arch_overrides of other
        # sizes (the paper's 410M) were refused by the sweep as sizes it does not have, stopping the study
        variant.pop("context_size", None)
        if variant.get("arch_overrides"):
            variant["arch_overrides"] = {arch: {size: fields for size, fields in (overrides or {}).items()
                                                if size in variant["sizes"]}
                                         for arch, overrides in variant["arch_overrides"].items()}
    return name, variants


# ----------------------------------------------------------------------------- stages


def _subset(option: str, what: str, spec: str | None, allowed: tuple[str, ...]) -> tuple[str, ...]:
    """A comma-separated subset of ``allowed`` given to ``option`` (None: all of them)."""
    if spec is None:
        return allowed
    names = tuple(n.strip() for n in spec.split(",") if n.strip())
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise ConfigError(f"{option}: unknown {what}(s) {', '.join(unknown)}; expected some of {', '.join(allowed)}")
    return names


def ablation_names(spec: str | None) -> tuple[str, ...]:
    """``--ablations``: a comma-separated subset of ABLATIONS (None: all of them)."""
    return _subset("--ablations", "ablation", spec, ABLATIONS)


def default_ablations(preset: str | dict) -> tuple[str, ...]:
    """The ablations a study trains when ``--ablations`` is not given: the preset's ``ablations`` list
    (the paper preset leaves size_seeds out: 70M and 7B retrained would cost about 60% of its grid), else
    all of ABLATIONS."""
    from linscale.presets import load_preset

    from linscale.train.settings import preset_ablations

    chosen = preset_ablations(preset if isinstance(preset, dict) else load_preset(preset))
    return ABLATIONS if chosen is None else chosen


def _resolved(preset: str, overrides: tuple[str, ...] | list[str]) -> str | dict:
    """The preset with ``--set`` overrides applied (its name when there are none)."""
    from linscale.train.settings import resolve_preset

    return resolve_preset(preset, list(overrides)) if overrides else preset


def stage_sweep(preset: str, runs_dir: Path, results: Path, jobs: int | None,
                ablations: tuple[str, ...] = ABLATIONS, overrides: tuple[str, ...] = ()) -> None:
    """Train the grid and the ``ablations`` sweeps, then copy each results table into results/.
    ``overrides`` (``--set KEY=VALUE``) apply to every sweep, the ablations included."""
    from linscale.train.sweep import WorkerPool, default_jobs, default_threads

    jobs = jobs or default_jobs()  # one process per core on a CPU
    # One pool of training processes for the main and the ablation sweeps: each imports torch and
    # Lightning once (seconds), instead of once per run.
    with WorkerPool(jobs, default_threads(jobs)) as pool:
        _sweeps(preset, runs_dir, results, jobs, ablations, pool, overrides)


def _sweeps(preset: str, runs_dir: Path, results: Path, jobs: int, ablations: tuple[str, ...], pool,
            overrides: tuple[str, ...] = ()) -> list:
    """Run the main and the ablation sweeps as one schedule (:func:`linscale.train.sweep.run_sweeps`:
    every run of all of them, longest first, so no slot idles between sweeps), then write the tables;
    returns their SweepResults (the main sweep's first)."""
    from linscale.train.sweep import run_sweeps  # it reports the schedule's slots and idle time

    sweeps = [(f"sweep {preset}", _resolved(preset, overrides), runs_dir / preset)]
    base_size, variants = None, {}
    if ablations:
        base_size, ablations_ = ablation_presets(_resolved(preset, overrides))
        variants = {ablation: ablations_[ablation] for ablation in ablations_ if ablation in ablations}
        sweeps += [(f"ablation {ablation}: sweep {variant['name']}", variant, runs_dir / variant["name"])
                   for ablation, items in variants.items() for variant in items]
    for what, _, out in sweeps:
        _log(f"{what} -> {out}")
    swept = run_sweeps([(spec, out) for _, spec, out in sweeps], jobs=jobs, pool=pool)
    failed = [(what, out, result.failed) for (what, _, out), result in zip(sweeps, swept) if result.failed]
    if failed:
        raise RuntimeError("; ".join(f"{what}: runs failed: {', '.join(runs)} (see {out}/runs/*/)"
                                     for what, out, runs in failed))
    _export_table(swept[0].table, results / "runs.parquet")
    main = pd.read_parquet(results / "runs.parquet")
    done = iter(swept[1:])
    for ablation, items in variants.items():
        if not items:  # size_seeds of a one-size grid: nothing to retrain, no table
            continue
        tables = [pd.read_parquet(next(done).table) for _ in items]
        _write_table(ablation_table(main, base_size, ablation, items, tables), results / "ablations" / f"{ablation}.parquet")
    return swept


def ablation_table(main: pd.DataFrame, base_size: str, ablation: str, items: list[dict],
                   tables: list[pd.DataFrame]) -> pd.DataFrame:
    """An ablation's results table: the main sweep's runs it is compared with (``variant`` "base"),
    then each variant's sweep table (``tables``, in the order of ``items``), with columns ``ablation``
    and ``variant``. The base runs are the main sweep's runs of the sizes the variants retrain
    (size_seeds: the grid's ends), else of the base size (the aspect ablation's shapes are new sizes)."""
    base_rows = _compared_rows(main, base_size, items)
    frames = [base_rows.assign(ablation=ablation, variant="base")]
    frames += [table.assign(ablation=ablation, variant=variant["name"]) for variant, table in zip(items, tables)]
    return pd.concat(frames, ignore_index=True)


def _compared_rows(main: pd.DataFrame, base_size: str, items: list[dict]) -> pd.DataFrame:
    """The rows of a main-sweep table (runs or scores) that an ablation's variants are compared with: its
    architectures at the sizes the variants retrain (size_seeds: the grid's ends), else at the base size
    (the aspect ablation's shapes are new sizes; the others retrain the base size)."""
    archs = sorted({a for v in items for a in v["archs"]})
    grid_sizes = {str(n) for v in items for n in v["sizes"]} & set(main["size"].astype(str))
    return main[main["size"].astype(str).isin(grid_sizes or {base_size}) & main["arch"].isin(archs)]


def _export_table(src: Path, dst: Path) -> None:
    src = Path(src)
    if dst.exists() and _digest(dst) == _digest(src):
        _log(f"{dst}: up to date")
        return
    _copy_atomic(src, dst)
    csv = src.with_suffix(".csv")
    if csv.exists():
        _copy_atomic(csv, dst.with_suffix(".csv"))
    _log(f"wrote {dst}")


def _write_table(frame: pd.DataFrame, dst: Path) -> None:
    _write_kept_if_same(dst, lambda tmp: frame.to_parquet(tmp, index=False))


def _write_kept_if_same(dst: Path, write) -> None:
    """Write a results file, leaving it untouched when its bytes would not change: a re-run of a finished
    study rewrote 11 tables with the same bytes, and the book, which is up to date by its input files'
    times, re-executed 7 of its 10 chapters."""
    _log(f"wrote {dst}" if atomic_update(dst, write, mode=SHARED) else f"{dst}: up to date")


EVAL_CHECKPOINTS = ("all", "final")
# The study evaluates with one torch thread per evaluation process, on every machine: the scores' last
# bits depended on the thread count (2 threads against 1 moved 15 of the cpu study's 1,512 scores by up to
# 7e-7); the cores are used by evaluating checkpoints side by side (_eval_pool).
EVAL_THREADS = 1


def stage_eval(preset: str, runs_dir: Path, results: Path, limit: int | None = None,
               checkpoints: str = "all", overrides: tuple[str, ...] = (), pool=None) -> None:
    """Evaluate the sweep's exported checkpoints (every one, or each run's last: ``checkpoints``),
    resumably, and write the store into results/ (checkpoints as runs/... paths: portable_checkpoints).
    ``pool``: an EvalPool (linscale.eval.runner) whose processes evaluate side by side (default: one
    checkpoint at a time, in this process)."""
    from linscale.eval import evaluate_sweep
    from linscale.eval.runner import find_checkpoints

    if checkpoints not in EVAL_CHECKPOINTS:
        raise ConfigError(f"eval checkpoints: {checkpoints!r} is not one of {', '.join(EVAL_CHECKPOINTS)}")
    if not (results / "runs.parquet").exists():  # before the first table is written: none lands beside no runs
        raise ConfigError(f"{results / 'runs.parquet'}: no runs table to evaluate the checkpoints of; run the sweep "
                          "stage first (linscale study --stages sweep,eval)")
    sweep_dir = runs_dir / preset
    chosen = find_checkpoints(sweep_dir) if checkpoints == "all" else _final_checkpoints(sweep_dir)
    _log(f"eval {sweep_dir} ({', '.join(SUITES)}; {len(chosen)} checkpoints)")
    evaluate_sweep(sweep_dir, list(SUITES), checkpoints=chosen, limit=limit, progress=_log, pool=pool)
    _write_table(portable_checkpoints(pd.read_parquet(sweep_dir / "eval" / "results.parquet"), runs_dir),
                 results / "eval.parquet")
    _eval_ablations(_resolved(preset, overrides), runs_dir, results, limit, pool)
    _eval_roles(_resolved(preset, overrides), runs_dir, results, chosen, pool)
    # The store keys NIAH cells (the heatmaps) and items (paired tests) by run; the book also needs each
    # run's architecture and size.
    runs = pd.read_parquet(results / "runs.parquet")[["run_id", "arch", "size", "params"]].drop_duplicates("run_id")
    cells_file = sweep_dir / "eval" / "niah_cells.parquet"  # NIAH accuracy per (length, depth)
    if cells_file.exists():
        cells = pd.read_parquet(cells_file).merge(runs, on="run_id", how="left").rename(columns={"length": "context"})
        _write_table(cells, results / "niah_cells.parquet")
    items_file = sweep_dir / "eval" / "items.parquet"  # each item's accuracy per checkpoint
    if items_file.exists():
        items = pd.read_parquet(items_file).merge(runs[["run_id", "arch", "size"]], on="run_id", how="left")
        _write_table(items, results / "items.parquet")




def _eval_ablations(preset: str | dict, runs_dir: Path, results: Path, limit: int | None, pool=None,
                    ablations: tuple[str, ...] = tuple(ABLATION_SUITES)) -> None:
    """Evaluate the final export of every run of the ablations in ``ABLATION_SUITES`` (those of them in
    ``ablations``) on their suites into results/ablations/<name>-eval.parquet, beside the main sweep's
    scores of the runs they are compared with (:func:`_compared_rows`), with the
    ablation table's ``variant`` column (and, for the context ablation, ``evaluation``:
    ``linscale.results.COMMON_CONTEXT`` or ``TWICE_CONTEXT``)."""
    from linscale.eval import evaluate_sweep
    from linscale.presets import load_preset
    from linscale.results import COMMON_CONTEXT, TWICE_CONTEXT, final_scores

    base_size, ablations_ = ablation_presets(preset)
    main = pd.read_parquet(results / "eval.parquet")
    spec = preset if isinstance(preset, dict) else load_preset(preset)
    base_context, main_sweep = int(spec["train"]["seq_len"]), runs_dir / (spec["name"] if isinstance(preset, dict) else preset)
    for ablation, suites in ABLATION_SUITES.items():
        variants = ablations_[ablation]
        if ablation not in ablations or not variants:
            continue
        base = final_scores(_compared_rows(main[main["suite"].isin(suites)], base_size, variants))
        sweeps = [(variant["name"], runs_dir / variant["name"]) for variant in variants]
        sweeps = [(name, sweep) for name, sweep in sweeps if sweep.is_dir()]  # none with --no-ablations
        if not sweeps:
            continue

        def scores(sweep: Path, out: Path | None = None, checkpoints=None, **settings) -> pd.DataFrame:
            finals = _final_checkpoints(sweep) if checkpoints is None else checkpoints
            _log(f"eval ablation {ablation}: {sweep} ({len(finals)} final checkpoints{', ' if settings else ''}"
                 f"{', '.join(f'{k} {v}' for k, v in settings.items())})")
            store = evaluate_sweep(sweep, list(suites), checkpoints=finals, limit=limit, progress=_log, out=out,
                                   pool=pool, **settings)
            # only the runs asked for: a store may hold others (the base runs of an earlier context_size)
            asked = {c.parent.parent.name for c in finals}
            return final_scores(store[store["suite"].isin(suites) & store["run_id"].astype(str).isin(asked)])

        if ablation != "context":
            frames = [base.assign(variant="base")]
            frames += [scores(sweep).assign(variant=name) for name, sweep in sweeps]
        else:
            frames = [base.assign(variant="base", evaluation=COMMON_CONTEXT)]
            frames += [scores(sweep, sweep / "eval" / "common.parquet", task_options={"max_length": base_context})
                       .assign(variant=name, evaluation=COMMON_CONTEXT) for name, sweep in sweeps]
            # the main sweep's checkpoints are gone when an ablation is added to a committed study
            # (benchmarks/rerun_ablation.py): its base runs then have their common-context scores only
            if main_sweep.is_dir():
                base_finals = [c for c in _final_checkpoints(main_sweep)
                               if c.parent.parent.name in set(base["run_id"].astype(str))]
            else:
                base_finals = []
                _log(f"eval ablation context: no {main_sweep}: the base runs are not evaluated at twice their context")
            if base_finals:
                frames.append(scores(main_sweep, main_sweep / "eval" / "context-twice.parquet",
                                     checkpoints=base_finals, context_factor=2.0)
                              .assign(variant="base", evaluation=TWICE_CONTEXT))
            frames += [scores(sweep, sweep / "eval" / "twice.parquet", context_factor=2.0)
                       .assign(variant=name, evaluation=TWICE_CONTEXT) for name, sweep in sweeps]
        _write_table(portable_checkpoints(pd.concat(frames, ignore_index=True), runs_dir),
                     results / "ablations" / f"{ablation}-eval.parquet")


# The ablations whose final checkpoints join the main sweep's in the role table: the seeds, where the
# excess loss of one skill tells a run that learned it from one that did not (LLaMA at s6: the variable a
# query asks; linscale.eval.roles).
ROLE_ABLATIONS = ("seeds", "size_seeds")


def _eval_roles(preset: str | dict, runs_dir: Path, results: Path, main_checkpoints: list[Path], pool=None) -> None:
    """Excess loss by token role (linscale.eval.roles) of the main sweep's evaluated checkpoints and the
    seed ablations' final ones into results/roles.parquet (``sweep``: the sweep folder of each run;
    ``ablation``: the ablation it belongs to, or "main").
    Only the synthetic language has roles: for another data source nothing is written."""
    from linscale.eval.roles import evaluate_roles
    from linscale.presets import load_preset

    spec = preset if isinstance(preset, dict) else load_preset(preset)
    if (spec.get("data") or {}).get("source", "synthetic") != "synthetic":
        _log(f"roles: data.source is {spec['data'].get('source')!r}, not the synthetic language: no role table")
        (results / "roles.parquet").unlink(missing_ok=True)  # an earlier study's table would pass for this one's
        return
    _, ablations = ablation_presets(preset)
    sweeps = {variant["name"]: ablation for ablation in ROLE_ABLATIONS for variant in ablations.get(ablation, [])}
    checkpoints = list(main_checkpoints)
    for name in sweeps:
        if (runs_dir / name).is_dir():
            checkpoints += _final_checkpoints(runs_dir / name)
    table = evaluate_roles(checkpoints, progress=_log, pool=pool)
    sweep = [Path(c).parent.parent.parent.parent.name for c in table["checkpoint"]]  # <sweep>/runs/<run>/export/step=N
    table.insert(0, "sweep", sweep)
    table.insert(1, "ablation", [sweeps.get(name, "main") for name in sweep])  # "main": the main sweep's runs
    _write_table(portable_checkpoints(table, runs_dir), results / "roles.parquet")


def portable_checkpoints(scores: pd.DataFrame, runs_dir: Path) -> pd.DataFrame:
    """``scores`` with each ``checkpoint`` under ``runs_dir`` written as ``runs/<its path inside
    runs_dir>``, as the default ``--runs-dir runs`` records it: the committed tables then say which export
    was scored, not where on the evaluating machine the runs were kept (an absolute --runs-dir put
    /tmp/... paths into them). Paths outside ``runs_dir`` are left as they are."""
    if "checkpoint" not in scores:
        return scores
    root = Path(runs_dir).resolve()

    def portable(path: str) -> str:
        try:
            return (Path("runs") / Path(path).resolve().relative_to(root)).as_posix()
        except ValueError:
            return path

    return scores.assign(checkpoint=scores["checkpoint"].astype(str).map(portable).astype(scores["checkpoint"].dtype))


def _final_checkpoints(sweep_dir: Path) -> list[Path]:
    """Each run's last exported checkpoint."""
    from linscale.eval.runner import final_checkpoints

    return final_checkpoints(sweep_dir)


def stage_design(preset: str, results: Path, replicates: int = DESIGN_REPLICATES, seed: int = 0,
                 overrides: tuple[str, ...] = ()) -> None:
    """The design check (:mod:`linscale.design`) of the preset's grid, before any compute is spent:
    fits/design.csv (per architecture, method and true allocation exponent: what the study's fits
    recover from simulated runs), fits/design_verdicts.csv (identified or not, with the reason) and
    fits/design_holdout.csv (how far a true law's refit misses the held-out runs on this grid: the bound
    the hold-out check is read against). ``overrides`` (``--set KEY=VALUE``): the grid checked is the one
    the sweep trains. Redone only when the grid or the preset's design block changed (a training seed is
    not the grid: a seed re-run's check is the published one's). A preset without a reference law
    records why."""
    import json

    from linscale import design
    from linscale.train.settings import resolve_preset

    resolved = resolve_preset(preset, list(overrides))
    grid = {k: resolved.get(k) for k in ("archs", "model", "sizes", "arch_overrides", "train", "data", "design")}
    grid["train"] = {k: v for k, v in (grid["train"] or {}).items() if k != "seed"}
    key = json.dumps(grid | {"replicates": replicates, "seed": seed, "version": design.VERSION},
                     sort_keys=True, default=str)
    digest = hashlib.sha256(key.encode()).hexdigest()
    stamp = results / "fits" / ".design-digest"
    if stamp.exists() and stamp.read_text() == digest:
        _log("design check: up to date")
        return
    (results / "fits").mkdir(parents=True, exist_ok=True)
    try:
        check = design.check_design(resolved, replicates=replicates, seed=seed, progress=None)
    except ConfigError as err:
        _log(f"design check: not possible ({err})")
        # nothing is identified without a check, approach 1's loss law (the envelope's crossings) included; the
        # reason is read in the book's prose, so a preset without a law (the common case) gets words, not the error
        reason = ("no design check: the preset records no reference law in design.law"
                  if not design.has_reference_law(resolved) else str(err))
        verdicts = pd.DataFrame([{"arch": "all", "method": m, "identified": False, "reason": reason}
                                 for m in (design.ENVELOPE, *design.METHODS)])
        _write_csv(verdicts, results / "fits" / "design_verdicts.csv")
        (results / "fits" / "design.csv").unlink(missing_ok=True)
        (results / "fits" / "design_holdout.csv").unlink(missing_ok=True)
    else:
        _write_csv(check.summary(), results / "fits" / "design.csv")
        _write_csv(check.verdicts(), results / "fits" / "design_verdicts.csv")
        for row in check.verdicts().itertuples():
            _log(f"design check {row.arch} {row.method}: " + ("identified" if row.identified else
                                                              f"NOT identified ({row.reason})"))
        draws = design.holdout_expectation(resolved, seed=seed)
        _write_csv(design.holdout_bounds(draws), results / "fits" / "design_holdout.csv")
        for line in design.holdout_lines(draws):
            _log(f"design check {line}")
    stamp.write_text(digest)


def fits_stamp(results: Path, settings) -> str:
    """What the fits of ``results`` depend on: its runs table, the fit settings, the design check's verdicts
    and the fitting code. The fits stage refits when it differs from the stamp written with the fits."""
    verdicts_file = results / "fits" / "design_verdicts.csv"
    design_digest = _digest(verdicts_file) if verdicts_file.exists() else "none"
    return f"{_digest(results / 'runs.parquet')}:{settings}:{design_digest}:{fitting_code_digest()}"


def stage_fits(results: Path, preset: str, bootstrap: int = FITS_BOOTSTRAP, seed: int = 0,
               loss_column: str = "train_loss", jobs: int | None = None, overrides: tuple[str, ...] = ()) -> None:
    """Fit the study's laws (:func:`linscale.laws.suite.fit_suite`) with bootstrap intervals and write,
    per method, fits/<method>.csv (parameters; columns ``identified`` and ``status`` say whether the design
    check lets the study report them), fits/<method>.points.parquet, .draws.parquet and
    .diagnostics.csv; fits/status.csv (method x architecture: fitted, not identified, or failed, with the
    reason); fits/crossovers.csv; fits/holdout.csv (laws refitted without the top compute decade,
    predicting its final losses). Redone only when the runs table, the settings or the fitting code
    (:func:`fitting_code_digest`) changed. ``jobs``: processes for the methods and the hold-out check
    (:func:`linscale.laws.suite.fit_study`; default one per task, at most one per core); the files are the
    same, byte for byte, for every ``jobs``.
    ``overrides`` (``--set KEY=VALUE``): the settings (warmup, the language's entropy) of the grid trained.
    A law is reported only where fits/design_verdicts.csv (:func:`stage_design`) identifies it."""
    from linscale.design import fit_settings
    from linscale.laws import suite
    from linscale.train.settings import resolve_preset

    runs_file = results / "runs.parquet"
    if not runs_file.exists():
        raise ConfigError(f"{runs_file}: no runs table to fit the laws to; run the sweep stage first (linscale study "
                          "--stages sweep,fits)")
    runs = read_table_file(runs_file, "cannot be read as a table",
                           "run the sweep stage again, which writes it anew from the runs' records")
    settings = fit_settings(resolve_preset(preset, list(overrides)), bootstrap=bootstrap, seed=seed,
                            loss_column=loss_column)
    settings = dataclasses.replace(settings, compute_range=suite.common_compute_range(runs, settings.warmup_steps))
    # what the fits assumed (entropy, window, approach 1's compute), beside them: a results folder is read
    # without its preset
    _write_json(results / "fits" / "settings.json", dataclasses.asdict(settings))
    stamp = results / "fits" / ".runs-digest"
    digest = fits_stamp(results, settings)
    if stamp.exists() and _fits_up_to_date(stamp.read_text(), digest, results / "fits"):
        _log("fits: up to date")
        return
    for stale in [*(results / "fits").glob("*.error.txt"), *(results / "fits").glob("*.note.txt")]:
        stale.unlink()  # the per-method files of linscale 0.1; status.csv holds the reasons now
    identified = _identified(results)
    fits, holdout = suite.fit_study(runs, settings, jobs)
    status = []
    for method, result in fits.items():
        archs = sorted(runs["arch"].unique())
        for arch in archs:
            if arch in result.errors or "all" in result.errors:
                status.append(dict(method=method, arch=arch, status="failed",
                                   reason=result.errors.get(arch, result.errors.get("all"))))
                continue
            checks = [identified(method, arch, law) for law in _laws(result, arch)]
            ok = all(flag for flag, _ in checks)
            status.append(dict(method=method, arch=arch, status="fitted" if ok else "partly identified"
                               if any(flag for flag, _ in checks) else "not identified",
                               reason="; ".join(dict.fromkeys(r for flag, r in checks if not flag))))
        for name in ("params", "points", "draws", "diagnostics"):
            (results / "fits" / f"{method}.{name}.parquet").unlink(missing_ok=True)
        (results / "fits" / f"{method}.csv").unlink(missing_ok=True)
        if not result.ok:
            _log(f"fits {method}: not possible ({result.error})")
            continue
        params = result.fit.params.copy()
        flags = [identified(method, arch, law) for arch, law in zip(params["group"], params["law"])]
        params["identified"] = [ok for ok, _ in flags]
        params["status"] = ["fitted" if ok else "not identified" for ok, _ in flags]
        params["reason"] = [reason for _, reason in flags]
        _write_csv(params, results / "fits" / f"{method}.csv")
        _write_table(result.fit.points, results / "fits" / f"{method}.points.parquet")
        if len(result.fit.draws):
            _write_table(result.fit.draws, results / "fits" / f"{method}.draws.parquet")
        _write_csv(result.fit.diagnostics.astype({c: str for c in ("theta", "optima")
                                                  if c in result.fit.diagnostics}),
                   results / "fits" / f"{method}.diagnostics.csv")
    _write_csv(pd.DataFrame(status), results / "fits" / "status.csv")
    window = suite.fit_window(runs, settings.warmup_steps, settings.max_loss, loss_column)
    window = window.assign(**{suite.FITTED: suite.fitted_loss(window, settings)})
    _write_csv(suite.crossovers(window, suite.FITTED), results / "fits" / "crossovers.csv")
    _write_csv(holdout, results / "fits" / "holdout.csv")
    written = "\n".join(f"{name} {_digest(results / 'fits' / name)}" for name in _fits_outputs(results / "fits"))
    atomic_write(stamp, lambda tmp: Path(tmp).write_text(f"{digest}\n{written}\n"))


def _fits_outputs(folder: Path) -> list[str]:
    """The files the fits stage writes in ``folder`` (not the design stage's, nor its settings.json)."""
    return sorted(f.name for f in folder.iterdir() if f.is_file() and not f.name.startswith((".", "design"))
                  and f.suffix in (".csv", ".parquet"))


def _fits_up_to_date(stamp: str, digest: str, folder: Path) -> bool:
    """The stamp (the inputs' digest, then a line "file sha256" for each file the fits wrote) holds
    ``digest``, and every file it lists is there unchanged, and no other: a fits folder damaged or edited
    since (a table cut short, one deleted to have it redone) is fitted again. A stamp of the inputs alone
    (written before the files were listed) vouches for the inputs only."""
    lines = stamp.splitlines()
    if not lines or lines[0] != digest:
        return False
    try:
        listed = dict(line.rsplit(" ", 1) for line in lines[1:] if line.strip())
        return not listed or (set(listed) == set(_fits_outputs(folder)) and all(
            _digest(folder / name) == sha for name, sha in listed.items()))
    except (OSError, ValueError):  # a file gone while read, a line of the stamp damaged
        return False


def _laws(result, arch: str) -> list[str]:
    params = result.fit.params if result.ok else pd.DataFrame(columns=["group", "law"])
    return list(dict.fromkeys(params.loc[params["group"] == arch, "law"])) or [""]


def _identified(results: Path):
    """(method, arch, law) -> (identified, reason), from fits/design_verdicts.csv (a law the design check
    does not cover counts as identified; in a study without a design check, none is: nothing showed that
    its grid can identify them)."""
    from linscale.design import checked_by

    path = results / "fits" / "design_verdicts.csv"
    if not path.exists():
        return lambda method, arch, law="": (False, "no design check of this grid (linscale study --stages design)")
    table = pd.read_csv(path)

    def lookup(method: str, arch: str, law: str = "") -> tuple[bool, str]:
        checked = checked_by(method, law)
        rows = table[(table["method"] == checked) & table["arch"].isin([arch, "all"])]
        if not len(rows):
            return True, ""
        row = rows.iloc[0]
        reason = str(row["reason"])
        return bool(row["identified"]), "" if bool(row["identified"]) else \
            reason if reason.startswith("no design check") else f"design check: {reason}"

    return lookup


def _write_json(dst: Path, value: dict) -> None:
    write_json(dst, value, sort_keys=True, mode=SHARED, keep_same=True)


def _write_csv(frame: pd.DataFrame, dst: Path) -> None:
    _write_kept_if_same(dst, lambda tmp: frame.to_csv(tmp, index=False))


def stage_book(preset: str, results_dir: Path, force: bool = False, html: bool = True,
               book_dir: Path | None = None) -> int:
    """Execute every chapter on results/<preset>/ with papermill, then build and check the HTML: in the
    repository (book/chapters, _build/html), or in a copy of the book's sources under ``book_dir``."""
    from linscale import book

    toc = book.study_toc(preset, Path(results_dir).resolve())  # a study of text has a book of its own chapters
    parameters = book.preset_parameters(preset, book.toc_chapters(toc))
    parameters.update(preset=preset, results_dir=str(results_dir))
    root = book.book_root(book_dir, parameters)
    # chapters in parallel kernels, one per core: a kernel's start-up and imports take most of a chapter
    book.execute_book(parameters, chapters=book.toc_chapters(toc), force=force, workers=min(4, os.cpu_count() or 1),
                      out_dir=root / "book" / "chapters")
    if not html:
        return 0
    out = book.build_html(root, toc=toc)
    problems = book.check_html(out, chapters=book.toc_chapters(toc), min_figures=book.MIN_FIGURES)
    for problem in problems:
        _log(f"book problem: {problem}")
    _log(f"book: {out / 'index.html'}")
    return 1 if problems else 0


@dataclasses.dataclass
class StudyOptions:
    """What ``linscale study`` runs, its options by name (``--set`` is ``overrides``), for a caller without a
    command line: ``run_study(StudyOptions("smoke", stages="fits,book"))``."""
    preset: str
    stages: str | None = None  # comma-separated subset of STAGES; None: all
    runs_dir: str | Path = "runs"
    results_dir: str | Path = "results"
    jobs: int | None = None
    ablations: str | None = None  # comma-separated; None: the preset's own list
    no_ablations: bool = False
    book_dir: str | Path | None = None
    bootstrap: int = FITS_BOOTSTRAP
    eval_limit: int | None = None
    eval_checkpoints: str = "all"
    force_book: bool = False
    overrides: tuple[str, ...] = ()

    @classmethod
    def from_arguments(cls, args: argparse.Namespace) -> "StudyOptions":
        """The options of ``linscale study``'s parsed command line."""
        names = {f.name for f in dataclasses.fields(cls)} - {"overrides"}
        return cls(**{name: getattr(args, name) for name in names if hasattr(args, name)},
                   overrides=tuple(getattr(args, "set", None) or ()))


def run_study(options: StudyOptions) -> int:
    """``linscale study``: run the stages in order (see the module docstring)."""
    from linscale.presets import available_presets, named_preset

    options = dataclasses.replace(options)  # its preset's name is set below; the caller's stays as given
    # a study's tables go to results/<name>/ and its chapters load the preset by that name: a file's folder
    # is searched by name from here on, in this process and the ones it starts
    options.preset = named_preset(options.preset)
    if options.preset not in available_presets():
        raise ConfigError(f"--preset: {options.preset!r} is not a preset; linscale study takes one of "
                          f"{', '.join(available_presets())} or a path to a .yaml file of your own")
    stages = _subset("--stages", "stage", options.stages, STAGES)
    if not stages:  # an empty --stages ran every stage (some 200 s on the smoke preset, 45 min on cpu)
        raise ConfigError(f"--stages: empty; expected some of {', '.join(STAGES)} (or leave it out for all)")
    overrides = tuple(options.overrides)
    stages = _text_stages(options.preset, overrides, stages, given=options.stages is not None)  # before any write
    runs_dir, results_dir = Path(options.runs_dir), Path(options.results_dir)
    results = results_dir / options.preset
    if overrides:
        _resolved(options.preset, overrides)  # a typo in --set is one line before any stage runs
        _check_own_folders(options)
        overrides = _record_overrides(results, options.preset, overrides)
    else:
        overrides = _recorded_overrides(results_dir, options.preset)
    chosen = options.ablations
    ablations = () if options.no_ablations else (ablation_names(chosen) if chosen is not None
                                               else default_ablations(_resolved(options.preset, overrides)))
    start = time.perf_counter()
    status = 0
    if "fits" in stages and "design" not in stages:
        stages = ("design", *stages)  # the fits report a law only where the design check identifies it
    for stage in (s for s in STAGES if s in stages):
        stage_start = time.perf_counter()
        if stage == "design":
            stage_design(options.preset, results, overrides=overrides)
        elif stage == "sweep":
            stage_sweep(options.preset, runs_dir, results, options.jobs, ablations=ablations, overrides=overrides)
        elif stage == "eval":
            with _torch_threads(EVAL_THREADS), _eval_pool(options.jobs) as pool:
                stage_eval(options.preset, runs_dir, results, limit=options.eval_limit,
                           checkpoints=options.eval_checkpoints, overrides=overrides, pool=pool)
        elif stage == "fits":
            stage_fits(results, options.preset, bootstrap=options.bootstrap, jobs=options.jobs, overrides=overrides)
        elif stage == "book":
            status = stage_book(options.preset, results_dir, force=options.force_book, book_dir=options.book_dir)
        _log(f"stage {stage}: {time.perf_counter() - stage_start:.0f} s")
    _log(f"done in {time.perf_counter() - start:.0f} s")
    return status


def _text_stages(preset: str, overrides: tuple[str, ...], stages: tuple[str, ...], given: bool) -> tuple[str, ...]:
    """The stages a study of real text runs: not the eval stage, whose suites ask about the synthetic language's
    world (a text study trained its whole grid, then stopped at eval). Left out, in a line, where the stages
    are the default; refused, before anything trains, where ``--stages`` names it. Its book is the chapters
    that need no synthetic language (:data:`linscale.book.TEXT_TOC`)."""
    from linscale.train.settings import resolve_preset

    source = (resolve_preset(preset, list(overrides)).get("data") or {}).get("source", "synthetic")
    if source == "synthetic" or "eval" not in stages:
        return stages
    evaluate = 'evaluate text with `linscale eval SWEEP --suites "" --tasks TASK --include_path DIR`'
    if given:
        raise ConfigError(f"--stages: preset {preset} trains on {source} (data.source), and the eval stage's suites "
                          f"need the synthetic language; expected --stages design,sweep,fits,book ({evaluate})")
    _log(f"stage eval: left out, preset {preset} trains on {source} (data.source) and the suites need the "
         f"synthetic language ({evaluate})")
    return tuple(stage for stage in stages if stage != "eval")


def _record_overrides(results: Path, preset: str, overrides: tuple[str, ...]) -> tuple[str, ...]:
    """Keep a study's ``--set`` overrides beside its tables (:data:`linscale.results.OVERRIDES_FILE`): the
    book's chapters and the later stages read the grid trained from there. A folder that holds another
    study (overrides giving another grid, or the preset's own tables) is refused: its tables would mix two
    grids. Returns the overrides the stages use: the recorded ones where they give the same grid (the same
    settings in another order, or ``1e-3`` for ``0.001``, are the same study)."""
    from linscale.results import OVERRIDES_FILE, study_overrides

    recorded = study_overrides(preset, results.parent)
    if recorded and _resolved(preset, recorded) == _resolved(preset, overrides):
        return recorded
    file = results / OVERRIDES_FILE
    if recorded:
        raise ConfigError(f"--set: {results} holds the study made with --set {' '.join(recorded)} ({file}); give "
                          f"this one a --results-dir of its own")
    if (results / "runs.parquet").exists():
        raise ConfigError(f"--set: {results} holds a study of the {preset} preset as it is; give this one a "
                          f"--results-dir of its own")
    _write_json(file, {"preset": preset, "set": list(overrides)})
    _log(f"study: {file} records the overrides ({' '.join(overrides)})")
    return overrides


def _recorded_overrides(results_dir: Path, preset: str) -> tuple[str, ...]:
    """The overrides a study without ``--set`` goes on with: those its folder recorded (a later
    ``--stages fits`` or ``book`` of a study made with ``--set`` reads the grid it trained)."""
    from linscale.results import study_overrides

    recorded = study_overrides(preset, results_dir)
    if recorded:
        _log(f"study: {results_dir / preset} was made with --set {' '.join(recorded)}; the stages use them")
    return recorded


def _check_own_folders(options: StudyOptions) -> None:
    """A study with ``--set`` is another study than the published one: its tables must not land in the
    repository's results/ (the book would show them as the preset's study, and the committed ones would be
    overwritten) nor its runs in runs/ (whose runs a sweep with other settings refuses to reuse)."""
    from linscale.book import ROOT

    for option, folder, published in (("--results-dir", options.results_dir, "results"),
                                      ("--runs-dir", options.runs_dir, "runs")):
        if Path(folder).resolve() == (ROOT / published).resolve():
            raise ConfigError(f"--set: a study with overrides is not the published one; give it a {option} of its "
                              f"own (e.g. {option} rerun/{published}), not the repository's {published}/")


def _eval_pool(jobs: int | None):
    """The evaluation's processes: ``jobs`` (default: one per core), each with EVAL_THREADS torch threads;
    none (the checkpoints one after another, here) for one job."""
    from linscale.eval.runner import EvalPool

    jobs = jobs or os.cpu_count() or 1
    return EvalPool(jobs, threads=EVAL_THREADS) if jobs > 1 else contextlib.nullcontext()


@contextlib.contextmanager
def _torch_threads(threads: int):
    """torch's intra-op threads set to ``threads`` inside the block."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
