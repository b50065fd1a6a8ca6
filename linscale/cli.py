"""The ``linscale`` command line: one subcommand per step of the study.

    linscale accounting --preset paper     # parameter and FLOP accounting of a preset's grid
    linscale accounting --table7           # the paper preset's accounting beside the paper's Table 7
    linscale train --preset cpu --arch tnl --size s3   # one training run
    linscale sweep --preset cpu --jobs 2   # every run of a preset, into one results table
    linscale study                         # the default CPU study, end to end
    linscale book                          # execute the chapters (papermill) and build the HTML book
    linscale fit --table runs.parquet --method approach3 --bootstrap 1000   # scaling-law fits
    linscale bench [--quick]               # CPU benchmarks and the efficiency goals, into benchmarks/results/
    linscale data --seq-len 256 --sample 2 # the synthetic language: entropy, vocabulary, sample documents
    linscale eval runs/cpu                 # lm-eval suites over a sweep's checkpoints -> results store
    linscale compare results/cpu OTHER     # two studies side by side; exit 1 if a verdict differs
    linscale lm-eval --model linscale ...  # lm_eval's own command line, with the linscale model

Each subcommand is a small function here that parses its options and calls the package; the science
lives in the package, not in this file.
"""
from __future__ import annotations

import argparse
import errno
import json
import math
import os
import signal
import sys
import threading

from linscale.config import ARCHITECTURES, ConfigError
from linscale.processes import SWEEP_PID, Terminated, end_with_parent, raise_terminated


def cmd_accounting(args: argparse.Namespace) -> int:
    import pandas as pd

    from linscale.accounting import accounting_table, table7_comparison
    from linscale.train.settings import TrainSettings, resolve_preset

    # checked as sweep checks it: a preset sweep refused (tokens: -5, an unknown key) was tabulated here
    preset = resolve_preset(args.preset)
    # counted at the context and batch its runs train at: a train block that leaves them to their defaults
    # (or an empty `train:`) was a KeyError traceback here
    preset = {**preset, "train": TrainSettings.from_dict(preset.get("train") or {}).to_dict()}
    if not args.table7:
        print(accounting_table(preset, seq_len=args.seq_len, batch_size=args.batch_size).to_string(index=False))
        return 0
    if args.seq_len or args.batch_size:  # Table 7 was counted at the paper's context and batch only
        raise ConfigError("--table7: compares at Table 7's context and batch (the preset's); drop --seq-len and "
                          "--batch-size")
    table = table7_comparison(preset)
    if table.empty:
        raise ConfigError(f"--table7: preset {args.preset} has none of Table 7's sizes (70M..7B); expected "
                          f"--preset paper")
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.to_string(index=False, formatters={"params_M": "{:.2f}".format, "pflops_per_step": "{:.3f}".format,
                                                       "params_rel_diff": "{:+.3%}".format,
                                                       "pflops_rel_diff": "{:+.3%}".format}))
    return 0


def cmd_fit(args: argparse.Namespace) -> int:
    import warnings

    import pandas as pd

    from linscale.laws import fit, read_table

    _writable_file(args.out, "--out", ".csv", inputs={"--table": args.table})
    runs = read_table(args.table)
    columns = dict(loss_column=args.loss_column, params_column=args.params_column,
                   tokens_column=args.tokens_column, flops_column=args.flops_column, run_column=args.run_column,
                   drop_highest_loss=args.drop_highest_loss)
    kwargs = dict(by=args.by, **columns)
    if args.method != "approach3":
        kwargs["compute_unit"] = args.compute_unit
    with warnings.catch_warnings():  # dropped rows (diverged, step 0, missing loss): one line each
        warnings.showwarning = lambda message, *_, **__: print(f"linscale: warning: {message}", file=sys.stderr)
        result = fit(runs, args.method, bootstrap_resamples=args.bootstrap, seed=args.seed, **kwargs)
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.precision", 6):
        print(result.params.drop(columns=["method"]).to_string(index=False))
    if args.out:
        from linscale.atomic import atomic_write

        atomic_write(args.out, lambda tmp: result.params.to_csv(tmp, index=False), mode=0o644)  # makes its folder
        print(f"wrote {args.out}")
    return 0


def cmd_study(args: argparse.Namespace) -> int:
    from linscale.study import STAGES, StudyOptions, run_study

    # the book stage comes last: a --book-dir that is a file failed there, a traceback after every stage ran
    _writable_folder(getattr(args, "book_dir", None), "--book-dir")
    # the folders the chosen stages write (the book stage alone only reads the tables: they may be read-only)
    stages = {name.strip() for name in args.stages.split(",")} if args.stages is not None else set(STAGES)
    if stages & {"sweep", "eval"}:
        _writable_folder(args.runs_dir, "--runs-dir")
    if stages - {"book"}:
        _writable_folder(args.results_dir, "--results-dir")
    return run_study(StudyOptions.from_arguments(args))


def _chapter_parameters(args: argparse.Namespace) -> dict:
    """-p NAME VALUE pairs (values read as YAML scalars, as papermill's -p does) and -y YAML mappings."""
    from linscale.config import parse_yaml

    parameters = {}
    for text in args.yaml or []:
        mapping = parse_yaml(text, f"-y {text!r}")
        if not isinstance(mapping, dict):
            raise ConfigError(f"-y: expected a YAML mapping such as 'contexts: [256, 1024]', got {text!r}")
        parameters.update(mapping)
    for name, value in args.parameter or []:
        parameters[name] = parse_yaml(value, f"-p {name}")
    return parameters


def _writable_file(path, option: str, suffix: str | None = None, inputs: dict | None = None) -> None:
    """Refuse, before anything is computed, an output FILE the command could not write as asked: a folder,
    a path under a file, the wrong format for its name (fit writes CSV, eval Parquet), or one of the
    command's own inputs (`fit --out` onto its --table replaced the runs with the fitted parameters).
    These were tracebacks after the work was done, or silent overwrites."""
    from pathlib import Path

    if path is None or path == "-":
        return
    if not str(path).strip():
        raise ConfigError(f"{option}: expected a file path, got ''")
    target = Path(path)
    if target.is_dir():
        raise ConfigError(f"{option}: {target} is a folder; expected a file path")
    above = next((folder for folder in target.parents if folder.exists()), None)
    if above is not None and not above.is_dir():
        raise ConfigError(f"{option}: {above} is a file, so {target} cannot be written under it")
    if above is not None:
        _can_write_in(above, option)
    if suffix and target.suffix.lower() != suffix:
        raise ConfigError(f"{option}: {target}: this command writes {suffix} files; expected a name ending in {suffix}")
    for name, given in (inputs or {}).items():
        if given and target.exists():
            given = Path(given).resolve()
            if target.resolve() == given or (given.is_dir() and given in target.resolve().parents):
                raise ConfigError(f"{option}: {target} is {'in ' if given.is_dir() else ''}this command's "
                                  f"{name}; writing it would replace an input")


def _writable_folder(path, option: str) -> None:
    """Refuse, before anything is computed, a FOLDER option that names a file, lies under one, or lies in a
    folder that cannot be written."""
    from pathlib import Path

    if path is None:
        return
    if not str(path).strip():
        raise ConfigError(f"{option}: expected a folder, got ''")
    target = Path(path)
    above = next((folder for folder in (target, *target.parents) if folder.exists()), None)
    if above is not None and not above.is_dir():
        raise ConfigError(f"{option}: {above} is a file; expected a folder (new or existing)")
    if above is not None:
        _can_write_in(above, option)


def _can_write_in(folder, option: str) -> None:
    """Refuse an output option whose nearest existing folder cannot be written: a read-only place failed at
    the command's first write, a PermissionError traceback (after the work, for a file)."""
    from linscale.atomic import cannot_write_in

    reason = cannot_write_in(folder)
    if reason is not None:
        raise ConfigError(f"{option}: cannot write in {folder} ({reason}); expected a folder you can write")


def cmd_compare(args: argparse.Namespace) -> int:
    from linscale.compare import compare_studies, write_json

    _writable_file(args.json, "--json", inputs={"study A": args.a, "study B": args.b})
    comparison = compare_studies(args.a, args.b, labels=(args.label_a or args.a, args.label_b or args.b))
    if args.json == "-":
        print(json.dumps(comparison.to_dict(), indent=1))
    else:
        print(comparison.format_text())
        if args.json:
            print(f"wrote {write_json(comparison, args.json)}")
    return comparison.exit_status


def cmd_book(args: argparse.Namespace) -> int:
    from linscale import book

    parameters = _chapter_parameters(args)
    for name in args.chapter or []:
        if name not in book.CHAPTERS:
            raise ConfigError(f"--chapter: unknown chapter {name!r}; expected one of {', '.join(book.CHAPTERS)}")
    if args.preset:  # a grid of one's own by path is read by its name from here on
        from linscale.presets import named_preset

        args.preset = named_preset(args.preset)
    # a study of text has a book of its own chapters (the others need the synthetic language)
    toc = book.study_toc(args.preset or parameters.get("preset"), args.results_dir or parameters.get("results_dir"))
    # a chapter named twice ran twice at once, and the second failed renaming the first's notebook
    chapters = list(dict.fromkeys(args.chapter)) if args.chapter else book.toc_chapters(toc)
    shared = {"preset": args.preset, "results_dir": args.results_dir}
    for name, value in shared.items():  # named as typed (the chapters' check says "parameter preset")
        if value is not None and not value.strip():
            wanted = "a preset name" if name == "preset" else "a folder"
            raise ConfigError(f"--{name.replace('_', '-')}: expected {wanted}, got {value!r}")
    parameters = {**book.preset_parameters(args.preset, chapters), **{k: v for k, v in shared.items() if v is not None},
                  **parameters}
    _writable_folder(args.book_dir, "--book-dir")
    root = book.book_root(args.book_dir, parameters, shared)
    chapter_dir = root / "book" / "chapters" if args.book_dir else book.CHAPTER_DIR
    # two kernels at once: a chapter's start-up and imports are mostly waiting (as the study does)
    # an executed chapter is reused only where its stamp (source, parameters, input tables) is the same
    book.execute_book(parameters, chapters=chapters, force=args.force,
                      workers=min(2, os.cpu_count() or 1), out_dir=chapter_dir)
    if not args.no_html:
        # the introduction and the glossary glue and link to every chapter, so on a fresh clone one chapter
        # alone built a book that failed on their missing targets: the others first, on the study shown
        missing = [c for c in book.toc_chapters(toc) if c not in chapters
                   and not (chapter_dir / f"{c}.ipynb").exists()]
        if missing:
            print(f"[book] the HTML links every chapter; executing those not yet executed ({', '.join(missing)})",
                  flush=True)
            book.execute_book({k: v for k, v in shared.items() if v is not None
                               and any(k in book.PARAMETERS[c] for c in missing)}, chapters=missing,
                              workers=min(2, os.cpu_count() or 1), out_dir=chapter_dir)
        html = book.build_html(root, toc=toc)
        problems = book.check_html(html, chapters=book.toc_chapters(toc), min_figures=book.MIN_FIGURES)
        for problem in problems:
            print(f"linscale book: {problem}", file=sys.stderr)
        print(f"book: {html / 'index.html'}")
        return 1 if problems else 0
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from contextlib import nullcontext
    from pathlib import Path

    from linscale.eval.adapter import ContextLengthError
    from linscale.eval.runner import EvalPool, companion_paths, evaluate_sweep, final_checkpoints, settings_path
    from linscale.models.checkpoint import CheckpointError, usable_device

    options = _task_options(args.option)
    checkpoints, out = args.checkpoint, args.out
    _writable_file(out, "--out", ".parquet")
    if args.roles is not True:
        _writable_file(args.roles, "--roles", ".parquet")
    _writable_folder(args.task_cache, "--task-cache")
    device = str(usable_device(args.device, "--device"))  # here, before any worker loads a checkpoint
    if args.calibrate:  # each run's final checkpoint, into a store of its own per knob setting
        checkpoints = checkpoints or final_checkpoints(args.sweep_dir)
        out = out or Path(args.sweep_dir) / "eval" / _calibration_store(options, args.context_factor)
    suites, tasks = [s for s in args.suites.split(",") if s], [t for t in (args.tasks or "").split(",") if t]
    if not (suites or tasks or args.roles):  # it evaluated nothing and said nothing
        raise ConfigError("--suites: empty; name a suite, or give --tasks or --roles")
    if args.calibrate and not (suites or tasks):  # the roles were evaluated, then the report of no task failed
        raise ConfigError("--calibrate: reports on the tasks of --suites and --tasks; --suites is empty, expected a "
                          "suite or --tasks")
    if args.roles and (suites or tasks):  # the roles table written over the store the same call had just filled
        store_path = Path(out) if out else Path(args.sweep_dir) / "eval" / "results.parquet"
        roles = Path(args.sweep_dir) / "eval" / "roles.parquet" if args.roles is True else Path(args.roles)
        # the store, its NIAH cells and item files (the third companion is its lm-eval JSON folder) and settings
        beside = (store_path, *companion_paths(store_path)[:2], settings_path(store_path))
        if roles.resolve() in {p.resolve() for p in beside}:
            raise ConfigError(f"--roles: {roles} is where this call writes its results store or a file beside it; "
                              "expected another file")
    try:
        with EvalPool(args.jobs, threads=1) if (args.jobs or 1) > 1 else nullcontext() as pool:
            if suites or tasks or not args.roles:
                store = evaluate_sweep(args.sweep_dir, suites, checkpoints=checkpoints, tasks=tasks, out=out,
                                       task_cache=args.task_cache, limit=args.limit, batch_size=args.batch_size,
                                       device=device, include_defaults=args.real_tasks, task_options=options,
                                       context_factor=args.context_factor, include_path=args.include_path, pool=pool)
            if args.roles:
                _eval_roles(args, checkpoints, pool)
    except CheckpointError as err:
        raise ConfigError(str(err)) from None
    except ContextLengthError as err:  # its advice is lm_eval's model_args, which this command does not take
        raise ConfigError(f"{err.problem}; give a larger --context-factor (max_length is that times each "
                          "checkpoint's training seq_len)") from None
    if args.calibrate:
        from linscale.eval.calibration import calibration_report, format_report, niah_modes

        print(format_report(calibration_report(store), niah_modes(store)))
    return 0


def _eval_roles(args: argparse.Namespace, checkpoints, pool) -> None:
    """`linscale eval --roles`: excess loss by token role of the chosen checkpoints (default: every export
    of the sweep) into one table (default: <sweep>/eval/roles.parquet), written atomically."""
    from pathlib import Path

    from linscale.atomic import atomic_write
    from linscale.eval.roles import evaluate_roles
    from linscale.eval.runner import find_checkpoints

    chosen = [Path(c) for c in checkpoints] if checkpoints else find_checkpoints(args.sweep_dir)
    table = evaluate_roles(chosen, pool=pool)
    dst = Path(args.sweep_dir) / "eval" / "roles.parquet" if args.roles is True else Path(args.roles)
    dst.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(dst, lambda tmp: table.to_parquet(tmp, index=False), mode=0o644)
    print(f"wrote {dst}: excess loss by token role of {len(chosen)} checkpoints")


def _task_options(pairs: list[str] | None) -> dict:
    """--option KEY=VALUE (repeatable) -> {KEY: VALUE}; the knobs of linscale/eval/difficulty.yaml."""
    from linscale.eval.items import TASK_OPTIONS

    options = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or key not in TASK_OPTIONS or key in ("checkpoint", "task_cache"):
            raise ConfigError(f"--option: expected KEY=VALUE with KEY one of "
                              f"{', '.join(k for k in TASK_OPTIONS if k not in ('checkpoint', 'task_cache'))}, "
                              f"got {pair!r}")
        options[key] = value
    from linscale.eval.items import TaskDataError, knob_values

    try:  # before lm-eval starts (it printed its own lines about the keyword arguments first)
        knob_values(options)
    except TaskDataError as err:
        raise ConfigError(f"--option {err}") from None
    return options


def _calibration_store(options: dict, context_factor: float) -> str:
    """calibration.parquet, or calibration-<digest>.parquet for other knobs (the store key has none)."""
    import hashlib
    import json

    if not options and context_factor == 1.0:
        return "calibration.parquet"
    digest = hashlib.sha256(json.dumps([options, context_factor], sort_keys=True).encode()).hexdigest()[:10]
    return f"calibration-{digest}.parquet"


def _execution(args: argparse.Namespace) -> dict:
    return {"accelerator": args.accelerator, "devices": args.devices, "num_nodes": args.num_nodes,
            "strategy": args.strategy, "num_workers": args.num_workers}


def cmd_train(args: argparse.Namespace) -> int:
    sweep_pid = os.environ.pop(SWEEP_PID, None)  # not passed on to the processes of the other devices
    if sweep_pid:  # a sweep's multi-device run: SIGTERM (a stop with a checkpoint) when the sweep is killed
        end_with_parent(int(sweep_pid))
    # before torch is imported: the CPU code paths and thread counts of a sweep's worker, so that a run
    # trained alone gives the sweep's bits for the same spec (linscale/train/code_paths.py)
    from linscale.train.code_paths import pin_this_process
    pin_this_process(args.threads)
    from linscale.train.run import RunInterrupted, RunLockedError, stop_on_signals
    from linscale.train.worker import RUN_LOCK_WAIT_S

    # a sweep's multi-device run waits for a process of a killed sweep to let go of the run, as its
    # workers do; one started by hand on a run that another process trains fails at once
    lock_wait_s = RUN_LOCK_WAIT_S if sweep_pid else 0
    try:
        with stop_on_signals():  # SIGTERM / Ctrl-C while the data is prepared: exit 128 + signal, one line
            return _train(args, lock_wait_s)
    except RunLockedError as err:  # one line, the code of a sweep's worker for the same (2), nothing written
        print(f"linscale: error: {err}", file=sys.stderr)
        return 2
    except RunInterrupted as stop:
        if not getattr(stop, "reported", False):
            print(f"linscale: interrupted by {stop.signal_name}", file=sys.stderr)
        raise


def _train(args: argparse.Namespace, lock_wait_s: float = 0) -> int:
    from pathlib import Path

    from linscale.train.run import plan_runs, prepare_run, train_run, validate_inputs
    from linscale.train.sweep import check_writable

    execution = {**_execution(args), "threads": args.threads}
    if args.run_dir:
        if args.preset or args.arch or args.size or args.set:
            raise ConfigError("--run-dir: give either --run-dir or --preset/--arch/--size/--set, not both")
        state = train_run(args.run_dir, progress_bar=args.progress, lock_wait_s=lock_wait_s, **execution)
        print(f"{args.run_dir}: {state}")
        return 0
    if not (args.preset and args.arch and args.size):
        raise ConfigError("train: give --preset, --arch and --size (or --run-dir of a prepared run)")
    _writable_folder(args.out, "--out")  # --out '' (an unset $DIR) trained into runs/<preset> without a word
    preset, specs = plan_runs(args.preset, [*args.set, f"archs=[{args.arch}]"])
    specs = [s for s in specs if s["size"] == args.size]
    if not specs:
        raise ConfigError(f"--size: {args.size!r} is not a size of preset {args.preset}; "
                          f"expected one of {', '.join(preset['sizes'])}")
    # the settings and the data (tokenizer, tokenized text) are checked before anything is written
    datamodule = validate_inputs(specs, build=True, execution=execution)
    out = Path(args.out or Path("runs") / (preset.get("name") or "train"))
    check_writable(out)
    from linscale.train.run import is_global_rank_zero
    from linscale.train.sweep import lock_output_folder

    # DDP ranks > 0 re-run this command; only rank 0 writes the table (known from the launchers' variables
    # too: Lightning's guess alone took node 1's first process of a multi-node run for rank 0, and it found
    # the folder locked by node 0)
    rank_zero = is_global_rank_zero()
    lock = lock_output_folder(out) if rank_zero else None  # held by another: one line, exit 3 (main)
    run_dir = out / "runs" / specs[0]["run_id"]
    try:
        prepare_run(run_dir, specs[0])
        state = train_run(run_dir, progress_bar=args.progress, datamodule=datamodule, **execution)
        if rank_zero:
            print(f"{run_dir}: {state}; rows in {out / 'results.parquet'}")
    finally:
        if rank_zero and (run_dir / "records.json").exists():  # the rows so far, also if stopped
            from linscale.train.results import upsert_runs
            from linscale.train.run import read_records

            upsert_runs(out / "results.parquet", {specs[0]["run_id"]: read_records(run_dir)})
        if lock is not None:
            lock.release()
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from linscale.train.sweep import run_sweep

    if args.check_design:
        import pandas as pd

        from linscale.design import check_design, holdout_expectation, holdout_lines

        check = check_design(args.preset, args.set, replicates=args.replicates,
                             progress=lambda line: print(line, file=sys.stderr))
        print("design check: simulating the hold-out check (under a minute)", file=sys.stderr)
        draws = holdout_expectation(args.preset, args.set)
        with pd.option_context("display.width", 200, "display.max_columns", 20, "display.max_colwidth", 90,
                               "display.precision", 3):
            print(check.summary().to_string(index=False))
            print()
            print(check.verdicts().to_string(index=False))
            print()
            print("What a true law's refit, without the largest compute decade, misses the held-out runs by:")
            print("\n".join(holdout_lines(draws)))
        return 0 if check.verdicts()["identified"].all() else 1
    _writable_folder(args.out, "--out")  # a dry run too: it promises the sweep would start
    if args.dry_run:
        from linscale.train.run import check_strategy, plan_runs, run_settings, validate_inputs
        from linscale.train.settings import TrainSettings
        from linscale.train.sweep import check_cluster

        preset, specs = plan_runs(args.preset, args.set)
        if args.executor != "local":  # the cluster block, as the sweep checks it before submitting
            check_cluster(preset.get("cluster"), run_settings(specs[0]["train"] if specs else {}, _execution(args)))
        data = specs[0]["data"] if specs else {}
        if data.get("source") == "text" and not data.get("path"):
            # a plan needs no corpus (e.g. sizing the paper grid before the data is there); the sweep will.
            # The data block's keys were checked when the preset was resolved (plan_runs)
            print("note: data.path is not set; the sweep will need it (--set data.path=...)", file=sys.stderr)
        else:
            validate_inputs(specs, build=False)  # the data block's keys and files, as the sweep checks them
        # the strategy and devices as each run would take them: a dry run printed its plan, exit 0, for FSDP on
        # a CPU or a batch that the devices do not divide, which the sweep refuses. Not whether this machine
        # has the GPUs: a GPU grid is planned on any machine (`sweep --preset paper --dry-run`)
        for spec in specs:
            settings = TrainSettings.from_dict(run_settings(spec["train"], _execution(args)))
            check_strategy(settings)
            settings.accumulation(settings.devices * settings.num_nodes)
        print(f"{len(specs)} runs")
        schedules = {}
        for spec in specs:
            settings = TrainSettings.from_dict(spec["train"])
            line = (f"{settings.total_steps} steps of {settings.tokens_per_step} tokens at lr {settings.lr:.3g}; "
                    f"records at steps {settings.checkpoint_steps()}; exports at {settings.export_steps()}")
            schedules.setdefault(line, []).append(spec["run_id"])
            print(f"  {spec['run_id']}: {spec['model']}")
        for line, runs in schedules.items():
            print(f"{', '.join(runs)}: {line}")
        return 0
    result = run_sweep(args.preset, out=args.out, jobs=args.jobs, overrides=args.set, threads=args.threads,
                       executor=args.executor, execution=_execution(args))  # a folder another holds: exit 3 (main)
    return 1 if result.failed else 0


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a preset field by its dotted path, e.g. --set train.lr=1e-3 "
                        "--set sizes.s1.d_model=64 --set archs=[tnl,llama]; repeatable; unknown keys are errors")
    p.add_argument("--threads", type=_whole_number(1), default=None,
                   help="torch threads per training process (default: torch's own for train and a SLURM job; "
                        "cores/jobs for a local sweep)")
    g = p.add_argument_group("scaling out (Lightning; default: the preset's train.* values)")
    g.add_argument("--accelerator", default=None, choices=["auto", "cpu", "gpu", "cuda"],
                   help="device type (auto: GPU when there is one; bf16-mixed on GPU, fp32 on CPU)")
    g.add_argument("--devices", type=int, default=None,
                   help="devices per node for one run; > 1 trains data-parallel (DDP: gloo on CPU, NCCL on GPU)")
    g.add_argument("--num-nodes", type=int, default=None,
                   help="nodes for one run (launch with srun or torchrun; Lightning reads the cluster environment)")
    g.add_argument("--strategy", default=None, choices=["auto", "ddp", "fsdp", "ddp_spawn", "single_device"],
                   help="Lightning strategy: ddp, or fsdp (GPU only; shards parameters, gradients and optimizer state)")
    g.add_argument("--num-workers", type=int, default=None, help="DataLoader worker processes per training process")


def cmd_bench(args: argparse.Namespace) -> int:
    from linscale.presets import available_presets, load_preset

    # typos are one line before anything is timed: the library refuses an unknown preset too, but not with
    # --quick (its fixed shapes ignore the preset), and reaches an unknown study only after every other section
    load_preset(args.preset)
    if args.out:  # the report is written after every timing: a file there lost them all
        _writable_folder(args.out, "--out")
    studies = tuple(x for x in args.studies.split(",") if x)
    timed = args.end_to_end or "end_to_end" in (args.sections or "").split(",")
    unknown = [name for name in studies if name not in available_presets()] if timed else []
    if unknown:
        raise ConfigError(f"--studies: unknown preset(s) {', '.join(unknown)}; expected some of "
                          f"{', '.join(available_presets())}")
    # the code paths training runs (MKL's AVX2 branch too), so that a step and the GEMM peak it is measured
    # against are timed as the study trains
    from linscale.train.code_paths import pin_this_process
    pin_this_process(args.threads)
    import torch

    from linscale import bench

    if args.threads:
        torch.set_num_threads(args.threads)
    sections = args.sections.split(",") if args.sections else (
        [*bench.DEFAULT_SECTIONS] + (["end_to_end"] if args.end_to_end else []))
    options = dict(quick=args.quick, preset=args.preset, timer=args.timer, studies=studies)
    if args.rounds != 1:  # the spread of one run's ratios, not the goals (those are read from one full run)
        tables = bench.run_rounds(args.rounds, sections, **options)
        for name, table in tables.items():
            print(f"## {name}\n{bench.format_table(table)}\n")
    else:
        tables = bench.run_all(sections=sections, **options)
    goal_table = bench.goals(tables)
    if len(goal_table):
        print("## goals\n" + bench.format_table(goal_table))
    if args.out:
        conditions = f"timer={args.timer}, torch threads={torch.get_num_threads()}. {args.conditions}".strip()
        print(f"wrote {bench.write_report(tables, args.out, quick=args.quick, conditions=conditions, sections=sections, rounds=args.rounds)}")
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    import json

    import numpy as np

    if args.help_keys:
        from linscale.data.keys import help_table

        print(help_table(), end="")
        return 0
    if args.prepare:
        from linscale.train.run import plan_runs, validate_inputs

        if not args.preset:
            raise ConfigError("data --prepare: give --preset (and --set data.path=... as for train or sweep)")
        _, specs = plan_runs(args.preset, args.set)
        # the data only: the runs train elsewhere (the paper preset's on GPUs), so their devices are not this machine's
        datamodule = validate_inputs(specs, build=True, train_here=False)
        print(f"data of preset {args.preset}: ready ({datamodule.vocab_size:,} tokens in the vocabulary)")
        return 0
    if args.preset or args.set:  # without --prepare they would be ignored, and the sample not the preset's
        raise ConfigError("--preset/--set: only with --prepare; the sample and summary are of the default "
                          "synthetic language (--world-seed picks another)")
    _writable_folder(args.write_eval, "--write-eval")
    from linscale.data.synthetic import LanguageSpec, SyntheticLanguage, write_eval_items

    lang = SyntheticLanguage(LanguageSpec(world_seed=args.world_seed))
    print(json.dumps(lang.summary(args.seq_len), indent=1))
    rows, nll = lang.sample_rows(np.random.default_rng(args.seed), args.sample, args.seq_len)
    for row, row_nll in zip(rows, nll):
        print("\n" + lang.decode(row))
        print(f"  (exact nll of this row: {row_nll[1:].mean():.3f} nats/token)")
    if args.write_eval:
        for path in write_eval_items(lang, args.write_eval, seed=args.seed):
            print(f"wrote {path}")
    return 0


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose epilog may be a function, called only when the help is printed: `linscale
    train`'s epilog lists the text source's data keys, and importing them (linscale.data, hence Lightning)
    took about 10 CPU-seconds that every `linscale` command paid before parsing its arguments. The
    subcommands' parsers are of this class too (argparse gives them the root's)."""

    def format_help(self) -> str:
        if callable(self.epilog):
            self.epilog = self.epilog()
        return super().format_help()

    def error(self, message: str):
        """One line naming the option and what it expected (argparse prints the whole usage first, a dozen
        lines for `linscale study` above the one that says what was wrong), and where the usage is."""
        self.exit(2, f"{self.prog}: error: {message} (usage: {self.prog} --help)\n")


def _whole_number(minimum: int, maximum: int | None = None):
    """An argparse type: an integer of at least ``minimum`` (a count of items, jobs, threads, resamples), so
    that `--eval-limit -1` or `--bootstrap -1` is one line naming the option before anything runs (a negative
    bootstrap count once refitted the stored laws without intervals and deleted their draws); and of at most
    ``maximum`` where a larger one would run out of memory rather than fail (`data --seq-len 100000000`)."""
    expected = f"expected a whole number >= {minimum}" + (f" and <= {maximum:,}" if maximum is not None else "")

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{expected}, got {text!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"{expected}, got {value}")
        return value
    return parse


def _resample_count(text: str) -> int:
    """An argparse type: bootstrap resamples, 0 for none or at least 2 (one resample has no spread)."""
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < 0 or value == 1:
        raise argparse.ArgumentTypeError(f"expected 0 (no intervals) or a whole number >= 2, got {text!r}")
    return value


def _positive_number(text: str) -> float:
    """An argparse type: a finite number above 0 (a factor): `--context-factor inf` (or 1e400) was an
    OverflowError traceback where the first checkpoint's context was scaled by it."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number above 0, got {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a number above 0, got {value:g}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="linscale", description=__doc__.split("\n")[0].replace("``", ""))  # no reST in --help
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("accounting", help="non-embedding parameters and training FLOPs (paper Table 1) of a preset")
    p.add_argument("--preset", default="paper", help="preset name or YAML path (default: paper)")
    p.add_argument("--seq-len", type=_whole_number(1), default=None,
                   help="context length n (default: the preset's)")
    p.add_argument("--batch-size", type=_whole_number(1), default=None,
                   help="sequences per step b (default: the preset's)")
    p.add_argument("--table7", action="store_true", help="the paper preset's counts beside the paper's Table 7 "
                   "(non-embedding parameters in millions, PFLOPs per step) with their relative differences")
    p.set_defaults(func=cmd_accounting)

    p = sub.add_parser(
        "train", help="train one run (one architecture at one size of a preset)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train one run of a preset into OUT/runs/<arch>-<size>/ and add its checkpoint rows to "
                    "OUT/results.parquet. Re-running resumes from the run's last Lightning checkpoint; a "
                    "finished run is not trained again. SIGTERM or Ctrl-C stop it at the next step with a "
                    "checkpoint (exit code 143 or 130, status 'interrupted').",
        epilog=_data_keys_epilog)  # called when the help is printed
    p.add_argument("--preset", default=None, help="preset name (linscale's own: smoke, cpu, text, paper; "
                   "more from LINSCALE_PRESETS=DIR) or path to a YAML file")
    p.add_argument("--arch", default=None, help=f"architecture: one of {', '.join(ARCHITECTURES)}")
    p.add_argument("--size", default=None, help="a size name of the preset (e.g. s3, or 1B for paper)")
    p.add_argument("--out", default=None, help="output folder (default: runs/<preset name>)")
    p.add_argument("--run-dir", default=None,
                   help="train (or resume) an already prepared run folder instead (used by sweeps)")
    p.add_argument("--progress", dest="progress", action="store_true", default=True,
                   help="show Lightning's progress bar (default)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar (logs, CI)")
    _add_run_options(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "sweep", help="train every run of a preset into one results table (resumable)",
        description="Train every (architecture, size) of a preset into OUT/runs/ and keep OUT/results.parquet "
                    "(one row per run and intermediate checkpoint; schema in linscale.train.results) up to date. "
                    "Re-running skips finished runs and resumes interrupted ones; a second sweep on the same OUT "
                    "stops with an error while the first holds the lock.")
    p.add_argument("--preset", required=True, help="preset name (linscale's own: smoke, cpu, text, paper; "
                   "more from LINSCALE_PRESETS=DIR) or path to a YAML file")
    p.add_argument("--out", default=None, help="output folder (default: runs/<preset name>)")
    p.add_argument("--jobs", type=_whole_number(1), default=None,
                   help="runs trained at the same time, each in its own process (default: one per CPU core, "
                        "each with 1 thread; 1 on a GPU machine or with --executor slurm)")
    p.add_argument("--executor", default="local", choices=["local", "submitit-local", "slurm"],
                   help="where runs execute: local processes (default), or submitit jobs (SLURM settings from the "
                        "preset's cluster: block, e.g. --set cluster.slurm_partition=gpu)")
    p.add_argument("--dry-run", action="store_true", help="print the runs and the checkpoint schedule, train nothing")
    p.add_argument("--check-design", action="store_true",
                   help="train nothing: simulate the grid from known laws (the preset's design.law with allocation "
                        "exponents 0.5, 0.7, 0.85) and report what the study's fits recover; exit 1 if a law is "
                        "not identified (linscale.design)")
    p.add_argument("--replicates", type=_whole_number(1), default=4,
                   help="noisy tables per law for --check-design (default: 4, as the study's design stage)")
    _add_run_options(p)
    p.set_defaults(func=cmd_sweep)
    p = sub.add_parser("fit", help="fit scaling laws to a table of runs (CSV or Parquet)",
                       description="Fit scaling laws to a table with one row per (run, checkpoint): columns "
                       "params (or N; non-embedding parameters), tokens (or D), a loss column, and optionally "
                       "run_id (absent: one run per row) and flops (absent: C = 6ND; with flops but no tokens, "
                       "D = C/(6N)). Prints one row per fitted parameter with its interval.")
    p.add_argument("--table", required=True, help="CSV or Parquet file of runs")
    p.add_argument("--method", required=True, choices=("approach1", "approach2", "approach3"),
                   help="approach1: the paper's envelope method; approach2: IsoFLOP parabolas; "
                        "approach3: L(N, D) = E + A/N^alpha + B/D^beta")
    p.add_argument("--loss-column", default=None, help="loss column (default: loss, else train_loss)")
    p.add_argument("--params-column", default=None, help="parameter-count column (default: params, else N)")
    p.add_argument("--tokens-column", default=None, help="token column (default: tokens, else D)")
    p.add_argument("--flops-column", default=None, help="compute column (default: flops if present)")
    p.add_argument("--run-column", default=None, help="run identifier column (default: run_id if present)")
    p.add_argument("--drop-highest-loss", type=_whole_number(0), default=0, metavar="K",
                   help="outlier rule: drop the K rows with the highest loss (default: 0)")
    p.add_argument("--by", default="arch", help="fit each value of this column separately (default: arch, if present)")
    p.add_argument("--compute-unit", default="pf_days", choices=("pf_days", "flops"),
                   help="unit of C in the approach1/2 laws (default: pf_days, as the paper)")
    p.add_argument("--bootstrap", type=_resample_count, default=0, metavar="N",
                   help="bootstrap resamples over runs, 0 or at least 2 (default: 0)")
    p.add_argument("--seed", type=_whole_number(0), default=0, help="bootstrap seed (default: 0)")
    p.add_argument("--out", default=None, help="also write the parameter table to this CSV")
    p.set_defaults(func=cmd_fit)
    p = sub.add_parser("data", help="the data.* keys (--help-keys); the synthetic language (exact entropy, "
                       "samples) and its eval items")
    p.add_argument("--help-keys", action="store_true",
                   help="print every data.* key of the presets (text and synthetic sources): type, default, meaning")
    p.add_argument("--prepare", action="store_true",
                   help="check and prepare a preset's data ahead of training (tokenizer trained, text tokenized into "
                        "$LINSCALE_CACHE), e.g. as a CPU job before a cluster sweep; with --preset and --set")
    p.add_argument("--preset", default=None, help="with --prepare: the preset whose data to prepare")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="with --prepare: preset overrides")
    # The summary's exact entropy walks the positions of a document one by one and its unigram estimate samples
    # 256 rows: 65,536 takes about 25 s and 0.5 GB; 10^8 ran out of memory instead of failing.
    p.add_argument("--seq-len", type=_whole_number(1, maximum=65_536), default=256,
                   help="training row length, at most 65,536 (default: 256)")
    p.add_argument("--sample", type=_whole_number(0, maximum=1_000), default=1,
                   help="sample rows to print, at most 1,000 (default: 1)")
    p.add_argument("--seed", type=_whole_number(0), default=0, help="seed of the sample and the eval items")
    p.add_argument("--world-seed", type=_whole_number(0), default=0, help="seed of the language's world")
    p.add_argument("--write-eval", default=None, metavar="DIR", help="write the evaluation item sets as JSONL files")
    p.set_defaults(func=cmd_data)

    p = sub.add_parser("book", help="execute the book's chapters with papermill and build the HTML",
                       description="Execute each chapter (notebooks/<chapter>.md) with papermill into "
                       "book/chapters/, skipping chapters whose source, parameters and input tables are "
                       "unchanged, then build _build/html with Jupyter Book and check it.")
    p.add_argument("--chapter", action="append", help="only this chapter (repeatable); default: all")
    p.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"),
                   help="set a chapter parameter (VALUE read as YAML: 500, val_loss, '[tnl, llama]')")
    p.add_argument("-y", "--yaml", action="append", metavar="YAML",
                   help="parameters as a YAML mapping, e.g. 'contexts: [256, 1024]'")
    p.add_argument("--preset", default=None, help="which results/<preset>/ the chapters read (default: each "
                   "chapter's own default, cpu); a YAML file of yours by path, as linscale study takes it")
    p.add_argument("--results-dir", default=None, help="folder holding results/<preset>/ (default: results)")
    p.add_argument("--force", action="store_true", help="re-execute chapters even when unchanged")
    p.add_argument("--no-html", action="store_true", help="execute the chapters only; do not build the HTML")
    p.add_argument("--book-dir", default=None, help="execute and build in a copy of the book's sources here "
                   "(BOOK_DIR/book/chapters, BOOK_DIR/_build/html); default: the repository's")
    p.set_defaults(func=cmd_book)

    p = sub.add_parser("study", help="run the default CPU study end to end: sweep, eval, fits, book",
                       description="Sweep -> evaluation -> fits -> chapters executed with papermill -> Jupyter "
                       "Book in _build/html. Resumable: each stage skips work already done. The tables the "
                       "book reads go to RESULTS_DIR/PRESET/ (commit them); checkpoints stay in RUNS_DIR.")
    p.add_argument("--preset", default="cpu", help="study preset: cpu (default, about an hour on 2 cores), smoke "
                        "(CI, a few minutes), or a YAML file of yours, by path (its tables go to "
                        "RESULTS_DIR/<file name>/)")
    p.add_argument("--runs-dir", default="runs", help="where sweeps keep runs and checkpoints (default: runs)")
    p.add_argument("--results-dir", default="results", help="where the committed tables go (default: results)")
    p.add_argument("--stages", default=None,
                   help="comma-separated subset of design,sweep,eval,fits,book (default: all, a study of real text all "
                        "but eval; fits runs the design check first, a no-op when it is up to date)")
    p.add_argument("--jobs", type=_whole_number(1), default=None,
                   help="processes in parallel: training runs, evaluations, and the fits stage's tasks (default: one per core)")
    p.add_argument("--ablations", default=None,
                   help="comma-separated ablation sweeps to train: aspect, context, seeds, size_seeds (default: the preset's `ablations` list, else all)")
    p.add_argument("--no-ablations", action="store_true", help="skip the ablation sweeps (aspect ratio, training context, seeds, size_seeds)")
    p.add_argument("--book-dir", default=None,
                   help="execute and build the book in a copy of its sources here (default: the repository's "
                        "book/chapters and _build/html)")
    p.add_argument("--bootstrap", type=_whole_number(2), default=200,
                   help="bootstrap resamples of the stored fits (default: 200)")
    p.add_argument("--eval-limit", type=_whole_number(1), default=None,
                   help="at most this many items per task (default: all)")
    p.add_argument("--eval-checkpoints", choices=("all", "final"), default="all",
                   help="evaluate every exported checkpoint, or only each run's final one (default: all)")
    p.add_argument("--force-book", action="store_true", help="re-execute every chapter even when unchanged")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a preset field in every sweep of the study, ablations included, e.g. "
                        "--set train.seed=1 (it needs a --runs-dir and --results-dir of its own; compare with `linscale "
                        "compare`); repeatable")
    p.set_defaults(func=cmd_study)

    p = sub.add_parser(
        "compare", help="two studies' results folders side by side: tables, fitted laws, verdicts",
        description="Compare two results folders (e.g. the published results/cpu and a re-run's): per table, "
                    "rows only in one and each column's largest relative change (values bit for bit; wall-clock "
                    "columns shown apart, never counted); the fitted laws with their intervals; and the book's "
                    "verdicts, every one that differs marked. Exit status 1 when a verdict differs, 0 otherwise.")
    p.add_argument("a", help="results folder A, e.g. results/cpu (the published study)")
    p.add_argument("b", help="results folder B, e.g. a re-run's results/cpu")
    p.add_argument("--json", default=None, metavar="FILE",
                   help="also write the comparison as JSON to FILE ('-': print only the JSON)")
    p.add_argument("--label-a", default=None, help="what A is, for the report (default: its path), "
                   "e.g. 'published, AMD EPYC 2 cores'")
    p.add_argument("--label-b", default=None, help="what B is, for the report (default: its path)")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("eval", help="evaluate a sweep's exported checkpoints with lm-eval into a results store")
    p.add_argument("sweep_dir", help="sweep folder (checkpoints in runs/<run_id>/export/step=<step>/)")
    p.add_argument("--suites", default="knowledge,linguistic,retrieval",
                   help="comma-separated linscale suites: knowledge, linguistic, retrieval (default: all)")
    p.add_argument("--checkpoint", action="append", default=None,
                   help="evaluate only this export folder (repeatable; default: every checkpoint of the sweep)")
    p.add_argument("--tasks", default=None,
                   help="extra lm-eval task names: a linscale task (linscale_mqar), one of your own (with "
                        "--include_path) or one of lm-eval's (piqa,hellaswag; needs --real-tasks)")
    p.add_argument("--real-tasks", action="store_true",
                   help="also index lm-eval's built-in tasks (piqa, hellaswag, ...; their data needs a network)")
    p.add_argument("--out", default=None, help="results store (default: <sweep>/eval/results.parquet)")
    p.add_argument("--task-cache", default=None, help="task data cache (default: <sweep>/eval/tasks)")
    p.add_argument("--limit", type=_whole_number(1), default=None,
                   help="at most this many items per task (for quick looks)")
    p.add_argument("--batch-size", type=_whole_number(1), default=16,
                   help="sequences per forward pass (default: 16; lm-eval's own default of 1 is several times "
                        "slower on small models, with identical scores)")
    p.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    p.add_argument("--jobs", type=_whole_number(1), default=None,
                   help="checkpoints evaluated side by side, each in its own process with one torch thread "
                        "(default: one at a time, here); the store is the same")
    p.add_argument("--context-factor", type=_positive_number, default=1.0,
                   help="max_length = this x the training seq_len (2 probes length extrapolation like the "
                        "paper's 16K NIAH on 8K models; use another --out)")
    p.add_argument("--include_path", "--include-path", action="append", default=None, metavar="DIR",
                   help="a folder of your own lm-eval task YAMLs, for --tasks (repeatable), as lm_eval's option")
    p.add_argument("--option", action="append", default=None, metavar="KEY=VALUE",
                   help="a difficulty knob of the linscale suites (linscale/eval/difficulty.yaml), e.g. "
                        "mqar_pairs=2 or knowledge_bands=0.5:0.7:0.8:0.9 (repeatable; use another --out)")
    p.add_argument("--roles", nargs="?", const=True, default=None, metavar="FILE",
                   help="also split each checkpoint's validation loss by token role (linscale.eval.roles; the "
                        "synthetic language only) into FILE (default: <sweep>/eval/roles.parquet); with "
                        "--suites '' only that")
    p.add_argument("--calibrate", action="store_true",
                   help="evaluate each run's final checkpoint (into <sweep>/eval/calibration*.parquet unless "
                        "--out) and report per task: all at ceiling, all at chance, rising with size for LLaMA")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("lm-eval", add_help=False,
                       help="lm-eval's own command line with the linscale model registered (all arguments pass through)")
    p.add_argument("lm_eval_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_lm_eval)

    p = sub.add_parser("bench", help="CPU benchmarks (throughput, length scaling, decoding, FLOP utilisation, "
                                     "what pays for small models) against the goals")
    p.add_argument("--quick", action="store_true", help="tiny shapes, under a minute (what CI runs)")
    p.add_argument("--sections", default=None,
                   help="comma-separated subset of training,length,decoding,utilisation,lightning,changes,attention,"
                        "batched,compile,end_to_end (default: all but compile and end_to_end)")
    p.add_argument("--end-to-end", action="store_true",
                   help="also time the whole study, `linscale study`, of each of --studies (the cpu one: about "
                        "an hour)")
    p.add_argument("--studies", default="smoke,cpu",
                   help="presets whose study end_to_end times, in temporary folders (default: smoke,cpu)")
    p.add_argument("--preset", default="cpu",
                   help="preset whose grid is benchmarked: its largest size, and its smallest for utilisation "
                        "(default: cpu)")
    p.add_argument("--threads", type=_whole_number(1), default=None,
                   help="torch threads (default: torch's, one per core)")
    p.add_argument("--timer", choices=("wall", "process"), default="wall",
                   help="wall seconds (default) or this process's CPU seconds (steadier on a shared machine; "
                        "use with --threads 1)")
    p.add_argument("--out", default="benchmarks/results", help="results folder; '' to only print")
    p.add_argument("--conditions", default="", help="free text stored in the report (e.g. 'idle machine')")
    p.add_argument("--rounds", type=_whole_number(1), default=1,
                   help="run the sections this many times one after another and store every round, labelled "
                        "idle or loaded by the cores other processes used meanwhile (e.g. --rounds 8 --sections length,decoding: how "
                        "far one run's ratios stray); no goals")
    p.set_defaults(func=cmd_bench)
    return parser


def _data_keys_epilog() -> str:
    """The text source's data.* keys for `linscale train --help` (all of them: `linscale data --help-keys`)."""
    import textwrap

    from linscale.data.keys import TEXT_KEYS

    lines = ["real text: --set data.source=text --set data.path=CORPUS, or --preset text; its data.* keys",
             "(`linscale data --help-keys` prints these with the synthetic language's):"]
    for key in TEXT_KEYS:
        default = "required" if key.name == "path" else f"default {key.default!r}".replace("None", "null")
        lines.append(f"  data.{key.name} ({default})")
        lines.extend(textwrap.wrap(key.doc, 96, initial_indent="      ", subsequent_indent="      "))
    return "\n".join(lines)


def cmd_lm_eval(args: argparse.Namespace) -> int:
    """lm_eval's own command line with the linscale model: the errors of linscale's adapter (a checkpoint
    that is missing or damaged, a model option, a prompt longer than the context), a hole in a task's YAML
    and lm-eval's unknown task name are one line, as in `linscale eval`; anything else keeps lm-eval's
    traceback."""
    from linscale.eval.adapter import ContextLengthError
    from linscale.eval.lm_eval_cli import main as lm_eval_main
    from linscale.eval.runner import task_yaml_error, task_yaml_errors
    from linscale.models.checkpoint import CheckpointError

    try:
        lm_eval_main(args.lm_eval_args)
    except (ConfigError, CheckpointError, ContextLengthError) as err:
        print(f"linscale lm-eval: error: {err}", file=sys.stderr)
        return 2
    except task_yaml_errors() as err:
        yaml_error = task_yaml_error(err)  # a task of one's own with a hole in its YAML (as linscale eval says)
        if yaml_error is not None:
            print(f"linscale lm-eval: error: {yaml_error}", file=sys.stderr)
            return 2
        if not isinstance(err, ValueError):
            raise
        if str(err).startswith("Tasks not found"):  # lm-eval 0.4's words for a misspelled --tasks name
            print(f"linscale lm-eval: error: --tasks: {err} (your own tasks need --include_path DIR)", file=sys.stderr)
            return 2
        if "did not find any docs" in str(err):  # lm-eval's words for a task left with no documents
            print(f"linscale lm-eval: error: a task has no documents to evaluate ({err}); expected --limit of at "
                  f"least 1 and a task whose data has documents", file=sys.stderr)
            return 2
        raise
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # before numpy or torch is imported: the vectorised code paths every linscale process runs, so that
    # two CPUs of one family compute the same bits (linscale/train/code_paths.py)
    from linscale.train.code_paths import pin_numerics
    pin_numerics()
    if argv[:1] == ["lm-eval"]:  # everything after it belongs to lm_eval's own parser
        return cmd_lm_eval(argparse.Namespace(lm_eval_args=argv[1:]))
    args = build_parser().parse_args(argv)
    # `linscale train` stops a run at its next step itself; only the main thread may set a handler
    stops = args.func in (cmd_sweep, cmd_study, cmd_eval) and threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, raise_terminated) if stops else None
    try:
        return _run_command(args)
    finally:
        if previous is not None:  # main() called in a process that goes on (a test, a notebook)
            signal.signal(signal.SIGTERM, previous)


def _run_command(args: argparse.Namespace) -> int:
    """The command, its user's errors as one line each (exit 2) and its interruption as one (128 + signal)."""
    try:
        code = args.func(args)
        sys.stdout.flush()  # a reader gone away shows here, not as "Exception ignored" at exit
        return code
    except BrokenPipeError:
        # `linscale accounting | head -3`: the reader stopped reading, nobody is left to tell (Python's
        # recipe: point stdout at devnull so that the flush at exit does not fail again)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    except ConfigError as err:
        print(f"linscale: error: {err}", file=sys.stderr)
        return 2
    # before the clauses below, whose tuples import torch and Lightning to be evaluated: during the book
    # stage, whose process had not loaded them, Ctrl-C was told 14-39 s late
    except KeyboardInterrupt as err:  # Ctrl-C is the user's, not a fault: one line (it was a traceback per stage)
        signum = signal.SIGTERM if isinstance(err, Terminated) else signal.SIGINT
        print(f"linscale: interrupted{' by SIGTERM' if signum == signal.SIGTERM else ''}; what finished is kept, "
              "and the same command goes on from there", file=sys.stderr)
        return 128 + signum
    except _locked_errors() as err:  # a folder another sweep or train writes: wait, or use another
        print(f"linscale: error: {err}", file=sys.stderr)
        return 3
    except _user_errors() as err:
        print(f"linscale: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        if err.errno not in _UNWRITABLE:
            raise
        # a read-only folder, or a full disk, met by a write: what is written stays (atomic writes), and
        # the same command goes on from it
        print(f"linscale: error: {err.filename or 'a write'}: {err.strerror}; nothing already written is lost: "
              f"make room or choose a writable folder, then run the command again", file=sys.stderr)
        return 2


# the errors of a write the user's setup refuses (permissions, a read-only file system, no space left)
_UNWRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT}


def _user_errors() -> tuple:
    """Errors whose message says all there is (the input's fault, or a failed chapter or build whose own
    output or notebook holds the rest): one line, no traceback."""
    from linscale.book import BookBuildFailed, ChapterFailed
    from linscale.models.checkpoint import CheckpointError
    from linscale.train.run import RunLockedError

    # a results table's ResultsError is a ConfigError; RunLockedError: a sweep met a run another process trains
    return (BookBuildFailed, ChapterFailed, CheckpointError, RunLockedError)


def _locked_errors() -> tuple:
    """The error of a folder that another sweep or linscale train holds (exit 3): a sweep's, and a study's
    sweep stage's, where it was a traceback."""
    from linscale.train.sweep import SweepLockedError

    return (SweepLockedError,)


if __name__ == "__main__":
    sys.exit(main())
