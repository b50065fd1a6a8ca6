"""A sweep: every (architecture, size) run of a preset, into one results table.

    <out>/results.parquet   the table (schema: linscale.train.results), with results.csv beside it
    <out>/preset.yaml       the resolved preset (overrides applied) the sweep ran
    <out>/runs/<run_id>/    one folder per run (linscale.train.run)
    <out>/.sweep.lock       held while a sweep or a `linscale train` writes here (lock_output_folder:
                            another stops with a clear message)

Runs execute in ``jobs`` worker processes (``linscale.train.worker``), each training one run at a time
and then the next, so torch and Lightning are imported once per worker, not once per run: on a CPU,
two single-threaded processes train two small models faster than one two-threaded process trains
them in turn. A run trained on several devices (DDP) gets a process of its own
(``python -m linscale train --run-dir ...``), since Lightning's launcher re-runs that command per rank. With ``executor="slurm"`` each run becomes a SLURM job through
``submitit`` (``"submitit-local"`` runs the same path on this machine). The table is rewritten
atomically whenever a run reports a new checkpoint; a run's rows are replaced as a whole, so
re-running (which skips finished runs and resumes interrupted ones) never duplicates a row.
"""
from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from filelock import FileLock, Timeout
from submitit.helpers import Checkpointable

from linscale.config import ConfigError
from linscale.processes import SWEEP_PID, raise_terminated
from linscale.train.results import read_results, to_frame, upsert_runs
from linscale.train.run import (plan_runs, prepare_run, read_records, read_status, run_settings, spec_conflict,
                                train_run, validate_inputs)
from linscale.train.worker import RUN_LOCK_WAIT_S

EXECUTORS = ("local", "submitit-local", "slurm")


class SweepLockedError(RuntimeError):
    """Another sweep (or a `linscale train`) holds the output folder's lock."""


def lock_output_folder(out: Path) -> FileLock:
    """Hold `out`'s lock, the one that a sweep and a single `linscale train` both take before writing the
    folder's results table; SweepLockedError at once when another process holds it (waiting would hang a
    study behind a sweep that may run for hours)."""
    path = out / ".sweep.lock"
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise SweepLockedError(f"{out}: another sweep or a linscale train is writing here (lock {path} is held); "
                               "wait for it to finish or use another --out") from None
    return lock


@dataclass
class SweepResult:
    out: Path
    table: Path
    states: dict = field(default_factory=dict)  # run_id -> done | diverged | failed | skipped-...
    jobs: int = 1  # worker slots
    span_s: float = 0.0  # wall time from the first run's start to the last one's end (0: nothing ran)
    busy_s: float = 0.0  # summed over slots: time a run was training in it

    @property
    def failed(self) -> list[str]:
        return [r for r, s in self.states.items() if s == "failed"]

    @property
    def idle_fraction(self) -> float:
        """Share of jobs x span during which a slot had no run (the end of the sweep, when fewer runs than
        slots remain, and the moments between one run's end and the next one's start)."""
        return idle_fraction(self.busy_s, self.jobs, self.span_s)


def idle_fraction(busy_s: float, jobs: int, span_s: float) -> float:
    """1 - busy / (jobs x span): how much of the slots' time no run was training (0 when nothing ran)."""
    return max(0.0, 1.0 - busy_s / (jobs * span_s)) if span_s > 0 else 0.0


def check_writable(out: Path) -> None:
    """Create ``out`` and make sure files can be written there (one clear error otherwise)."""
    from linscale.atomic import cannot_write_in

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"out: cannot create the folder {out} ({err.strerror or err})") from None
    reason = cannot_write_in(out)
    if reason is not None:
        raise ConfigError(f"out: cannot write to {out} ({reason})")


def _child_options(threads: int | None, execution: dict) -> tuple[list[str], dict]:
    """Command-line options (``--threads``, ``--accelerator`` ...) and environment of a training process."""
    options = ["--threads", str(threads)] if threads else []
    for key, value in execution.items():
        if value is not None:
            options += [f"--{key.replace('_', '-')}", str(value)]
    from linscale.train.code_paths import training_environment
    return options, training_environment(threads, os.environ)  # the environment's own pins win


class _LocalRun:
    """A multi-device run on this machine: ``linscale train --run-dir`` in a child process of its own (it
    starts the other devices' processes). Killing the sweep's process group kills it too; when the sweep
    alone is killed (SIGKILL), the run gets SIGTERM (:data:`SWEEP_PID`) and stops at its next step with a
    checkpoint, as when the sweep cancels it."""

    def __init__(self, run_dir: Path, threads: int | None, execution: dict):
        options, env = _child_options(threads, execution)
        env[SWEEP_PID] = str(os.getpid())
        cmd = [sys.executable, "-m", "linscale", "train", "--run-dir", str(run_dir), "--no-progress", *options]
        self.log = open(run_dir / "train.log", "ab")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env)

    def poll(self) -> int | None:
        code = self.proc.poll()
        if code is not None:
            self.log.close()
        return code

    def cancel(self) -> None:
        _terminate_once(self)


def _terminate_once(handle) -> None:
    """SIGTERM to a run's process, once: a second stops a run at once, without the checkpoint the first
    asked for (an interrupted sweep cancelled its runs, then its pool's close cancelled them again)."""
    if not getattr(handle, "terminated", False):
        handle.terminated = True
        handle.proc.terminate()


class _Worker:
    """A ``linscale.train.worker`` process: give it one run folder at a time, poll for its answer."""

    def __init__(self, threads: int | None, execution: dict, wake: threading.Event | None = None):
        # the worker takes the settings of a single-process run (a multi-device run never comes here)
        options, env = _child_options(threads, {key: execution.get(key)
                                                for key in ("accelerator", "strategy", "num_workers")})
        cmd = [sys.executable, "-m", "linscale.train.worker", "--parent", str(os.getpid()), *options]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
                                     env=env)
        self.answers: queue.Queue = queue.Queue()
        self.current: str | None = None  # the run folder it is training
        self.wake = wake  # set on every answer (and when the worker ends): the sweep starts the next run at once
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            code, _, run_dir = line.rstrip("\n").partition("\t")
            self.answers.put((int(code), run_dir))
            if self.wake is not None:
                self.wake.set()
        if self.wake is not None:
            self.wake.set()

    @property
    def idle(self) -> bool:
        return self.current is None and self.proc.poll() is None

    def start(self, run_dir: Path) -> "_Worker":
        self.current = str(run_dir)
        self.proc.stdin.write(f"{run_dir}\n")
        self.proc.stdin.flush()
        return self

    def poll(self) -> int | None:
        """The current run's exit code once it has finished (the worker's own if the worker died)."""
        try:
            code, _ = self.answers.get_nowait()
        except queue.Empty:
            code = self.proc.poll()
            if code is None or not self.answers.empty():
                return None
            code = code or 1  # died mid-run (killed, out of memory, crash)
        self.current = None
        return code

    def cancel(self) -> None:
        _terminate_once(self)

    def close(self) -> None:
        """End of input: the worker exits after its current run (there is none when this is called)."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class WorkerPool:
    """Up to ``size`` training workers, started on demand and reused across runs (and across sweeps:
    ``linscale study`` passes one pool to the main and the ablation sweeps). Use as a context manager."""

    def __init__(self, size: int, threads: int | None = None, execution: dict | None = None):
        self.size, self.threads, self.execution = size, threads, execution or {}
        self.workers: list[_Worker] = []
        self.wake = threading.Event()  # a worker answered: a slot may be free

    def start(self, run_dir: Path) -> _Worker:
        self.workers = [w for w in self.workers if w.proc.poll() is None or w.current is not None]
        worker = next((w for w in self.workers if w.idle), None)
        if worker is None:
            if len(self.workers) >= self.size:
                raise RuntimeError(f"worker pool: all {self.size} workers are busy")
            worker = _Worker(self.threads, self.execution, self.wake)
            self.workers.append(worker)
        return worker.start(run_dir)

    def close(self) -> None:
        for worker in self.workers:
            if worker.current is not None:
                worker.cancel()
            worker.close()
        self.workers = []

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class TrainJob(Checkpointable):
    """``train_run`` as a submitit job that submitit requeues when its time runs out. submitit signals a job
    ahead of its time limit (SIGUSR2) and requeues only a callable with a ``checkpoint`` method
    (``Checkpointable``'s resubmits the same call); a plain function was marked failed ("timed-out and not
    checkpointable"), though the paper preset's largest runs outlast its 72-hour jobs. The requeued job
    calls ``train_run`` again, which resumes from the run's last checkpoint (every record step, and every
    ``train.save_every_minutes``)."""

    def __call__(self, run_dir: str, **execution):
        return train_run(run_dir, **execution)


class _SubmititRun:
    """A run as a submitit job (SLURM, or submitit's local executor)."""

    def __init__(self, executor, run_dir: Path, threads: int | None, execution: dict):
        import contextlib
        import io

        from submitit.core.utils import FailedJobError

        try:  # submitit prints a refused sbatch's stderr itself; the one line below says it
            with contextlib.redirect_stderr(io.StringIO()):
                self.job = executor.submit(TrainJob(), str(run_dir), **{"threads": threads, **execution})
        except FailedJobError as err:  # sbatch's refusal (a partition, an account, a limit) was a traceback
            why = "; ".join(line.strip() for line in str(err).splitlines() if line.strip()) or "no reason given"
            raise ConfigError(f"cluster: sbatch refused the job of {run_dir.name} ({why}); expected a cluster: "
                              f"block this cluster accepts (the jobs already submitted go on)") from None

    def poll(self) -> int | None:
        if not self.job.done():
            return None
        try:
            self.job.result()
            return 0
        except Exception:  # the run's status.json holds the error
            return 1

    def cancel(self) -> None:
        self.job.cancel()


def check_cluster(cluster, train: dict | None = None) -> dict:
    """The preset's ``cluster:`` block as submitit will take it, checked before any run is written: each
    key is one of submitit's shared parameters (``timeout_min``, ``nodes``, ``gpus_per_node``, ...) with its
    type, or ``slurm_`` and one of SLURM's (``slurm_partition``, ``slurm_account``, ...). submitit found a
    misspelled key only when the executor was built, after every run's spec.json had been written, and
    said so in a dozen lines."""
    from submitit import AutoExecutor
    from submitit.slurm.slurm import SlurmExecutor

    if cluster is None:
        return {}
    if not isinstance(cluster, dict):
        raise ConfigError(f"cluster: expected a mapping of submitit parameters, got {cluster!r}")
    shared = AutoExecutor._typed_parameters()  # {name: type}, e.g. timeout_min: int
    slurm = SlurmExecutor._valid_parameters()
    for key, value in cluster.items():
        if key == "executor":  # which executor is the command line's --executor; the key is left for it
            continue
        if key in shared:
            wanted = (int, float) if shared[key] is float else shared[key]
            if not isinstance(value, wanted) or (wanted is int and isinstance(value, bool)):
                raise ConfigError(f"cluster.{key}: expected {shared[key].__name__}, got {value!r}")
            continue
        prefix, _, name = str(key).partition("_")
        if prefix == "slurm" and (name in slurm or name in shared):
            expected = _slurm_types().get(name)
            if expected is not None and not _is_of(value, expected):
                # slurm_partition: [a, b] went into the job script as "--partition=['a', 'b']"
                names = [t.__name__ for t in expected if t is not type(None)] + ["null"] * (type(None) in expected)
                raise ConfigError(f"cluster.{key}: expected {' or '.join(names)}, got {value!r}")
            continue
        raise ConfigError(f"cluster.{key}: not a submitit parameter; expected one of {', '.join(sorted(shared))} "
                          f"or slurm_ and one of SLURM's ({', '.join(sorted(slurm))})")
    for key in ("timeout_min", "nodes", "tasks_per_node", "gpus_per_node", "cpus_per_task", "mem_gb"):
        if key in cluster and not cluster[key] > 0:
            raise ConfigError(f"cluster.{key}: expected a positive number, got {cluster[key]!r}")
    # Lightning's SLURMEnvironment makes one rank of each task: a job of other sizes than the run's own
    # (train.num_nodes x train.devices) waits for ranks that never come, or starts ranks that fight
    # (in submitit's spelling or SLURM's: slurm_nodes=4 passed where nodes=4 was refused)
    for keys, name in ((("nodes", "slurm_nodes"), "num_nodes"),
                       (("tasks_per_node", "slurm_ntasks_per_node", "slurm_tasks_per_node"), "devices")):
        wanted = (train or {}).get(name)
        for key in keys:
            if key in cluster and isinstance(wanted, int) and cluster[key] != wanted:
                raise ConfigError(f"cluster.{key}: {cluster[key]}, but each run trains on train.{name} = {wanted}; "
                                  f"expected the same number (set both, or --set cluster.{key}={wanted})")
    # each task drives the GPU of its local rank: a node with fewer GPUs than tasks failed only once the
    # job had started on the cluster
    devices = (train or {}).get("devices")
    if (train or {}).get("accelerator") != "cpu" and isinstance(devices, int):
        for key in ("gpus_per_node", "slurm_gpus_per_node"):
            gpus = _gpu_count(cluster.get(key))
            if gpus is not None and gpus < devices:
                raise ConfigError(f"cluster.{key}: {cluster[key]}, but each run trains on train.devices = {devices} "
                                  f"GPUs a node; expected at least {devices} (--set cluster.{key}={devices})")
    return cluster


def _gpu_count(value) -> int | None:
    """The count of a SLURM GPU request, ``8`` or ``[type:]count`` (``h100:8``); None where it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    count = str(value).rpartition(":")[2] if value is not None else ""
    return int(count) if count.isdigit() else None


def _slurm_types() -> dict[str, tuple[type, ...]]:
    """SLURM parameters of submitit with simple types (text, whole numbers, flags), as its job-script
    writer annotates them: ``partition: Optional[str]`` is (str, NoneType). Lists and mappings (setup,
    additional_parameters) are left to submitit; text takes a number too (a partition named 5)."""
    import inspect
    import typing

    from submitit.slurm import slurm

    types = {}
    for name, parameter in inspect.signature(slurm._make_sbatch_string).parameters.items():
        found = typing.get_args(parameter.annotation) or (parameter.annotation,)
        if all(t in (str, int, bool, float, type(None)) for t in found):
            # GPU counts are written into #SBATCH as given, and SLURM takes them as [type:]count (a100:4)
            types[name] = (*found, str) if name in ("num_gpus", "gpus_per_node", "gpus_per_task") else found
    return types


def _is_of(value, types: tuple[type, ...]) -> bool:
    """Whether ``value`` is of one of ``types`` (a flag only where a flag is asked, null where null is)."""
    if value is None or isinstance(value, bool):
        return type(value) in types
    if isinstance(value, (int, float)) and str in types:  # a number where text is asked: written as is
        return True
    return isinstance(value, tuple(t for t in types if t is not bool))


def make_submitit_executor(kind: str, folder: Path, cluster: dict):
    import submitit

    if kind == "submitit-local":
        executor = submitit.LocalExecutor(folder=str(folder))
        executor.update_parameters(timeout_min=int(cluster.get("timeout_min", 60)))
        return executor
    executor = submitit.AutoExecutor(folder=str(folder), cluster="slurm")
    params = {k: v for k, v in cluster.items() if k != "executor"}
    executor.update_parameters(**params)  # e.g. slurm_partition, nodes, tasks_per_node, gpus_per_node, timeout_min
    return executor


def run_sweep(preset: str | dict, out: str | os.PathLike | None = None, jobs: int | None = None,
              overrides: list[str] | tuple = (), threads: int | None = None, executor: str = "local",
              execution: dict | None = None, echo=print, poll_s: float = 0.5,
              pool: "WorkerPool | None" = None) -> SweepResult:
    """Run (or finish) every run of ``preset`` into ``out``; returns the per-run final states.

    Everything that can be wrong with the input is checked before the first write: the preset and
    overrides, every model shape, the output folder, the lock, and runs already there with other
    settings. ``jobs`` defaults to the number of cores on a CPU machine (1 with a GPU or on SLURM) and
    ``threads`` to the cores divided by ``jobs``: tiny models gain nothing from intra-op threads, and
    busy-waiting threads on an oversubscribed CPU cost more than they give. ``pool``: training workers to
    reuse (its size and threads then apply); by default the sweep starts and ends its own.
    """
    return run_sweeps([(preset, out)], jobs=jobs, overrides=overrides, threads=threads, executor=executor,
                      execution=execution, echo=echo, poll_s=poll_s, pool=pool)[0]


def run_sweeps(sweeps: list[tuple[str | dict, str | os.PathLike | None]], jobs: int | None = None,
               overrides: list[str] | tuple = (), threads: int | None = None, executor: str = "local",
               execution: dict | None = None, echo=print, poll_s: float = 0.5,
               pool: "WorkerPool | None" = None) -> list[SweepResult]:
    """Several sweeps, ``[(preset, out), ...]``, as one schedule on the same ``jobs`` slots: the pending
    runs of all of them, longest first, so that a slot never idles while any sweep has a run left (one
    sweep after another left a slot idle at the end of each: 7% of the cpu study's training time, most of
    it in the small ablation sweeps). Each sweep keeps its own folder, lock, table and SweepResult (in
    the order given); their span is the schedule's. Arguments as :func:`run_sweep`."""
    if executor not in EXECUTORS:
        raise ConfigError(f"executor: {executor!r} is not one of {', '.join(EXECUTORS)}")
    if jobs is None:
        jobs = default_jobs(executor)
    if not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"jobs: expected a positive integer, got {jobs!r}")
    planned = [(plan_runs(preset, overrides), out) for preset, out in sweeps]
    if executor != "local":  # the cluster block first, so that it can be checked off the cluster too
        for (resolved, specs), _ in planned:
            check_cluster(resolved.get("cluster"), run_settings(specs[0]["train"] if specs else {}, execution))
    if executor == "slurm" and not shutil.which("srun"):  # what submitit looks for; before the first spec is written
        raise ConfigError("executor: slurm needs SLURM's srun on this machine's PATH (run the sweep on a login "
                          "node); use --executor local or submitit-local here")
    plans = []
    for (resolved, specs), out in planned:
        # the data, checked once for all runs before anything is written; on this machine also prepared
        # once (tokenizer, tokenized text: cached for the runs); on a cluster the first run prepares it
        validate_inputs(specs, build=executor == "local", execution=execution)
        out = Path(out or Path("runs") / (resolved.get("name") or "sweep"))
        if any(p.out.resolve() == out.resolve() for p in plans):
            raise ConfigError(f"{out}: two sweeps of one schedule cannot share an output folder")
        check_writable(out)
        plans.append(_Sweep(resolved, specs, out))
    locks = []
    previous = None
    if threading.current_thread() is threading.main_thread():  # SIGTERM: stop the runs too, then exit
        previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        for plan in plans:
            locks.append(lock_output_folder(plan.out))
        return _run_locked(plans, jobs, threads, executor, execution or {}, echo, poll_s, pool)
    finally:
        for lock in locks:
            lock.release()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def default_jobs(executor: str = "local") -> int:
    """Runs at a time: on a CPU one single-threaded process per core; on a GPU (or SLURM) one, as it
    takes the whole device."""
    import torch

    return 1 if torch.cuda.is_available() or executor != "local" else (os.cpu_count() or 1)


def default_threads(jobs: int) -> int:
    """torch threads per training process: the cores shared out among the jobs."""
    return max(1, (os.cpu_count() or 1) // jobs)


@dataclass
class _Sweep:
    """One sweep of a schedule: its resolved preset, run specs and folder, and (once prepared) its runs'
    folders, table and result."""
    preset: dict
    specs: list
    out: Path
    run_dirs: dict = field(default_factory=dict)
    mtimes: dict = field(default_factory=dict)
    result: SweepResult | None = None

    @property
    def table(self) -> Path:
        return self.out / "results.parquet"

    def prepare(self) -> None:
        """Check every run against what its folder holds (a conflicting run aborts before anything is
        written), then write the preset and the runs' specs."""
        if self.table.exists():
            read_results(self.table)  # refuse to build on a table that is already broken
        # another preset's folder (an ablation's, say): its runs' names differ, so none conflicted, and the
        # sweep added its runs to that table and replaced its preset.yaml
        recorded = _recorded_name(self.out / "preset.yaml")
        if recorded is not None and recorded != self.preset.get("name"):
            raise ConfigError(f"{self.out}: holds the sweep of preset {recorded!r} (its preset.yaml), not of "
                              f"{self.preset.get('name')!r}; give this sweep a folder of its own (--out)")
        for spec in self.specs:
            run_dir = self.out / "runs" / spec["run_id"]
            if (run_dir / "spec.json").exists():
                prepare_check(run_dir, spec)
            self.run_dirs[spec["run_id"]] = run_dir
        self.mtimes = {r: None for r in self.run_dirs}
        self.result = SweepResult(out=self.out, table=self.table)

    def write(self) -> None:
        (self.out / "preset.yaml").write_text(yaml.safe_dump(self.preset, sort_keys=False))
        for spec in self.specs:
            # a process of a killed sweep may still train a run, stopping at its next step: waited for, as
            # the workers wait for it
            prepare_run(self.run_dirs[spec["run_id"]], spec, lock_wait_s=RUN_LOCK_WAIT_S)

    def merge(self) -> None:
        _merge(self.table, self.run_dirs, self.mtimes)


def _recorded_name(path: Path) -> str | None:
    """The preset name a sweep folder's preset.yaml records (None: no file, or none readable there)."""
    try:
        recorded = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    return recorded.get("name") if isinstance(recorded, dict) else None


def _run_locked(plans: list[_Sweep], jobs, threads, executor, execution, echo, poll_s, pool) -> list[SweepResult]:
    for plan in plans:  # all checks first: a conflicting run in any sweep aborts before anything is written
        plan.prepare()
    for plan in plans:
        plan.write()
    # this machine's cores shared out among its runs; a SLURM job runs on another machine, whose task's
    # own CPUs torch takes by default (the login node's count was set in every rank of every job)
    threads = threads or (default_threads(jobs) if executor != "slurm" else None)
    pending = []  # (sweep, run_id), longest first over all sweeps
    for plan in plans:
        todo = []
        for run_id, run_dir in plan.run_dirs.items():
            state = read_status(run_dir)["state"]
            if state in ("done", "diverged"):
                plan.result.states[run_id] = state
            else:
                todo.append(run_id)
                pending.append((plan, run_id, _cost(plan.specs, run_id)))
        echo(f"sweep {plan.preset.get('name', '')}: {len(plan.specs)} runs, {len(plan.specs) - len(todo)} already "
             f"finished, {len(todo)} to run ({jobs} at a time, {_threads_text(threads)} each) "
             f"-> {plan.out}")
        plan.merge()  # rows of runs finished or interrupted earlier
    pending = [(plan, run_id) for plan, run_id, _ in sorted(pending, key=lambda item: -item[2])]  # stable: ties keep sweep order
    total = sum(len(plan.specs) for plan in plans)
    # one executor for the schedule; submitit's files go beside the first sweep's runs
    submitter = make_submitit_executor(executor, plans[0].out / "submitit", plans[0].preset.get("cluster") or {}) \
        if executor != "local" else None
    multi_device = any((execution.get(key) or 1) > 1 for key in ("devices", "num_nodes"))
    own_pool = None
    if submitter is None and not multi_device and pool is None and pending:
        pool = own_pool = WorkerPool(jobs, threads, execution)
    running: dict[tuple[int, str], tuple[_Sweep, object]] = {}  # (sweep index, run_id) -> (sweep, handle)
    started: dict[tuple[int, str], float] = {}  # when its slot took it (for the idle fraction)
    first_start = last_end = None
    wake = pool.wake if pool is not None and submitter is None and not multi_device else None
    last_line, last_progress = 0.0, ""
    index = {id(plan): i for i, plan in enumerate(plans)}
    try:
        while pending or running:
            while pending and len(running) < jobs:  # a free slot never waits while runs remain
                plan, run_id = pending.pop(0)
                key = (index[id(plan)], run_id)
                started[key] = time.monotonic()
                first_start = first_start if first_start is not None else started[key]
                run_dir = plan.run_dirs[run_id]
                if submitter is not None:
                    handle = _SubmititRun(submitter, run_dir, threads, execution)
                elif multi_device:
                    handle = _LocalRun(run_dir, threads, execution)
                else:
                    handle = pool.start(run_dir)
                running[key] = (plan, handle)
            if wake is not None:  # woken by the first answer, not the next poll
                wake.wait(poll_s)
                wake.clear()
            else:
                time.sleep(poll_s)
            for key, (plan, handle) in list(running.items()):
                code = handle.poll()
                if code is None:
                    continue
                run_id = key[1]
                del running[key]
                last_end = time.monotonic()
                plan.result.busy_s += last_end - started.pop(key)
                status = read_status(plan.run_dirs[run_id])
                state = status["state"] if code == 0 else "failed"
                plan.result.states[run_id] = state
                note = f" (resumed from step {status['resumed_from'][0]})" if status.get("resumed_from") else ""
                if state == "failed":
                    note = f": {status.get('error', f'exit code {code}')} (log: {plan.run_dirs[run_id] / 'train.log'})"
                done = sum(s in ('done', 'diverged') for p in plans for s in p.result.states.values())
                where = f" ({plan.preset.get('name', plan.out.name)})" if len(plans) > 1 else ""
                echo(f"[{done}/{total}] {run_id}{where} {state}{note}")
            for plan in plans:
                plan.merge()
            if running and time.monotonic() - last_line > 10:
                last_line = time.monotonic()
                line = "  " + "; ".join(_progress_line(run_id, plan.run_dirs[run_id])
                                        for (_, run_id), (plan, _) in running.items())
                if line != last_progress:  # runs still loading their data said "starting" every 10 s
                    echo(line)
                last_progress = line
    except BaseException as err:
        if isinstance(err, KeyboardInterrupt):  # Ctrl-C or SIGTERM (processes.Terminated): let the runs save first
            _let_runs_stop(running, echo)
        for _, handle in running.values():
            handle.cancel()
        raise
    finally:
        for plan in plans:
            plan.merge()
        if own_pool is not None:
            own_pool.close()
    span = last_end - first_start if first_start is not None and last_end is not None else 0.0
    for plan in plans:
        plan.result.jobs, plan.result.span_s = jobs, span
    if span:
        busy = sum(plan.result.busy_s for plan in plans)
        echo(f"slots: {jobs} x {span:.0f} s, idle {idle_fraction(busy, jobs, span):.1%} "
             f"({jobs * span - busy:.0f} s with no run training)")
    for plan in plans:
        frame = read_results(plan.table) if plan.table.exists() else to_frame([])
        echo(f"results: {len(frame)} rows from {frame['run_id'].nunique()} runs -> {plan.table}"
             + (f"; FAILED: {', '.join(plan.result.failed)}" if plan.result.failed else ""))
    return [plan.result for plan in plans]


# How long a stopped sweep waits for its local runs to save a checkpoint and end before it goes on (its
# pool then gives them 30 s more, and kills what is left)
STOP_GRACE_S = 30.0


def _threads_text(threads: int | None) -> str:
    return "torch's own threads" if threads is None else f"{threads} thread{'s' if threads > 1 else ''}"


def _let_runs_stop(running: dict, echo, grace_s: float = STOP_GRACE_S, poll_s: float = 0.1) -> None:
    """Ask the local runs in ``running`` to stop (SIGTERM, once) and wait up to ``grace_s`` for them to end,
    removing those that did: each saves a checkpoint at its next step (a run that had Ctrl-C from the
    terminal too takes the SIGTERM as the same request, linscale.train.run.StopAtStep). The sweep went on
    at once before, and its pool's close signalled the runs again, which stopped them without a checkpoint.
    Another Ctrl-C ends the wait."""
    local = {key: handle for key, (_, handle) in running.items() if not isinstance(handle, _SubmititRun)}
    if not local:
        return
    for handle in local.values():
        handle.cancel()
    echo(f"stopping: {len(local)} run{'s' if len(local) > 1 else ''} saving a checkpoint at the next step "
         f"(at most {grace_s:.0f} s; Ctrl-C again: at once, without one)")
    deadline = time.monotonic() + grace_s
    try:
        while local and time.monotonic() < deadline:
            for key, handle in list(local.items()):
                if handle.poll() is not None:
                    del local[key], running[key]
            time.sleep(poll_s)
    except KeyboardInterrupt:
        pass


def prepare_check(run_dir: Path, spec: dict) -> None:
    """Raise ConfigError if ``run_dir`` holds a run with other settings than ``spec`` that has computed
    something (a run that never reached a checkpoint is taken over; see run.spec_conflict). Writes nothing."""
    conflict = spec_conflict(run_dir, spec)
    if conflict:
        raise ConfigError(conflict)


def _cost(specs: list[dict], run_id: str) -> float:
    """Training FLOPs of a run (Table 1): the order in which to start runs so that parallel jobs end together."""
    from linscale import flops
    from linscale.config import ModelConfig
    from linscale.train.settings import TrainSettings

    spec = next(s for s in specs if s["run_id"] == run_id)
    train = TrainSettings.from_dict(spec["train"])
    config = ModelConfig.from_dict({"vocab_size": 2, **spec["model"]})
    return flops.training_flops(config, train.total_steps * train.tokens_per_step, train.seq_len)


def _mtime(run_dir: Path) -> float | None:
    try:
        return (run_dir / "records.json").stat().st_mtime_ns
    except FileNotFoundError:
        return None


def _merge(table: Path, run_dirs: dict, mtimes: dict) -> None:
    """Upsert the rows of every run whose records changed since the last merge."""
    changed = {}
    for run_id, run_dir in run_dirs.items():
        m = _mtime(run_dir)
        if m is not None and m != mtimes.get(run_id):
            mtimes[run_id] = m
            changed[run_id] = read_records(run_dir)
    if changed:
        upsert_runs(table, changed)


def _progress_line(run_id: str, run_dir: Path) -> str:
    import json

    try:
        p = json.loads((run_dir / "progress.json").read_text())
    except (FileNotFoundError, ValueError):
        return f"{run_id}: starting"
    return f"{run_id}: step {p['step']}/{p['total_steps']}, {p['tokens'] / 1e6:.2f}M tokens, loss {p['train_loss']:.3f}"
