"""The harness of the registered probes under benchmarks/ (``probe_*.py``): each trains or refits a few
runs to test one explanation of a finding against a rule committed before its runs, and writes a
Markdown report and tables the book's chapters read. Here: training a probe's runs as a sweep's worker
does, evaluating their retrieval, judging the registered rule, and the report's common parts.
(:mod:`linscale.bench` is the CPU benchmark; the probes take its machine description and Markdown tables.)
"""
from __future__ import annotations

import datetime as _dt
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pandas as pd

from linscale.bench import machine_info
from linscale.eval.tasks import SCORES
from linscale.processes import end_with_parent
from linscale.results import final_scores


def run_cli(*args: str) -> None:
    """``python -m linscale ARGS`` in a child process, quietly (a probe's runs); on failure a one-line
    error naming the command and the CLI's own last line, instead of a traceback with its output hidden.
    The child ends with this process (:func:`linscale.processes.end_with_parent`): a probe stopped with
    SIGTERM or killed left its `linscale train` training, and its re-run trained the same run beside it."""
    parent = os.getpid()
    proc = subprocess.run([sys.executable, "-m", "linscale", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True, preexec_fn=lambda: end_with_parent(parent))
    if proc.returncode != 0:
        last = next((line for line in reversed(proc.stderr.splitlines()) if line.strip()), "no message")
        raise SystemExit(f"linscale {' '.join(args[:1])} failed (exit {proc.returncode}): {last}")


def train_probe_run(folder: Path, arch: str, size: str, *overrides: str, preset: str = "cpu") -> Path:
    """One run of a probe: ``arch`` at ``size`` of ``preset`` with ``--set`` ``overrides``, trained as a
    sweep's worker trains it (one thread, the pinned code paths) into ``folder`` (resumable: a finished run
    is found, not trained again); returns ``folder``."""
    sets = [arg for override in overrides for arg in ("--set", override)]
    run_cli("train", "--preset", preset, "--arch", arch, "--size", size, "--out", str(folder), "--threads", "1",
            "--no-progress", *sets)
    return Path(folder)


# the retrieval suite's scores a probe reports, task -> metric
PROBE_RETRIEVAL = {score.task: score.metric for score in SCORES if score.retrieval}


def final_retrieval(evaluations: pd.DataFrame) -> pd.DataFrame:
    """Per run: the retrieval scores of its last evaluated step (columns arch, size, one per task)."""
    wanted = evaluations[[PROBE_RETRIEVAL.get(task) == metric
                          for task, metric in zip(evaluations["task"], evaluations["metric"])]]
    return final_scores(wanted).pivot_table(index=["arch", "size"], columns="task", values="value").reset_index() \
        .rename_axis(columns=None)


def probe_retrieval(folder: Path, arch: str, size: str) -> pd.DataFrame:
    """The retrieval suite at the final export of a probe's run in ``folder`` (evaluated once: the store is
    resumable), as :func:`final_retrieval`."""
    exports = sorted((Path(folder) / "runs" / f"{arch}-{size}" / "export").glob("step=*"),
                     key=lambda p: int(p.name.split("=")[1]))
    if not exports:
        raise SystemExit(f"{folder}: no export of {arch}-{size} to evaluate (expected runs/{arch}-{size}/export/step=*)")
    run_cli("eval", str(folder), "--suites", "retrieval", "--checkpoint", str(exports[-1]))
    return final_retrieval(pd.read_parquet(Path(folder) / "eval" / "results.parquet"))


def judge_probe(fits: pd.DataFrame, column: str, variant: str, reference: str, archs, rule: Callable,
                thresholds: tuple[float, float]) -> tuple[dict, dict, str]:
    """A registered probe's verdicts from its ``fits`` table (one row per architecture and ``column`` value,
    with a ``misfit``): per architecture the ratio of the ``variant``'s misfit over the ``reference``'s and
    its verdict by the probe's registered ``rule`` (in ``linscale.findings``), and the verdict over all four
    by ``ratio_verdict`` with the rule's ``thresholds`` (explains, does not explain). Adds ``ratio`` and
    ``verdict`` columns on the variant's rows and prints one line an architecture; returns (ratios,
    verdicts, overall)."""
    from linscale.findings import probe_ratios, ratio_verdict

    ratios = probe_ratios(fits, column, variant, reference)
    ratios = {arch: ratios[arch] for arch in archs}
    verdicts = rule(ratios)
    chosen = fits[column] == variant
    fits["ratio"] = fits["arch"].map(ratios).where(chosen)
    fits["verdict"] = fits["arch"].map(verdicts).where(chosen)
    misfit = fits.set_index(["arch", column])["misfit"]
    for arch in archs:
        print(f"{arch}: misfit {reference} {misfit[(arch, reference)]:.4f}, {variant} {misfit[(arch, variant)]:.4f}, "
              f"ratio {ratios[arch]:.2f}: {verdicts[arch]}", flush=True)
    return ratios, verdicts, ratio_verdict(ratios, *thresholds)


def verdict_lines(question: str, archs, ratios: dict, verdicts: dict, overall: str, thresholds: tuple[float, float],
                  decision: str) -> list[str]:
    """A registered probe report's verdict section: the question, each architecture's verdict with its ratio
    and the rule's thresholds (explains, does not explain), the verdict over all four and what it decides."""
    explains, does_not = thresholds
    return ["", "## Verdict", "", question, "",
            *(f"- {arch}: **{verdicts[arch]}** (ratio {ratios[arch]:.2f}; explains: at most {explains}, does not "
              f"explain: at least {does_not})" for arch in archs),
            f"- over all four: **{overall}**", f"- what it decides: {decision}"]


def retrain_control(retrained: pd.DataFrame, committed: pd.DataFrame, tolerance: float) -> tuple[pd.DataFrame, str]:
    """A probe's control that its retrained runs are the committed ones: every committed checkpoint's
    validation loss beside the retrained one (columns of ``retrained`` plus ``val_loss_committed``) and a
    line saying how many were retrained and the largest relative change, within ``tolerance`` or not
    (printed too)."""
    from linscale.findings import retrain_change

    both = retrained.merge(committed[["run_id", "step", "val_loss"]], on=["run_id", "step"], suffixes=("", "_committed"))
    change = retrain_change(both)
    ok = len(both) == len(committed) and change <= tolerance
    line = (f"{len(both)} of the committed {len(committed)} checkpoints retrained; largest relative change of the "
            f"validation loss {change:.2g} ({'within' if ok else 'OUTSIDE'} the registered {tolerance:.1%})")
    print(line, flush=True)
    return both, line


def benchmark_script(name: str):
    """``benchmarks/<name>.py`` of this checkout as a module (the scripts are not a package): a probe that
    reuses another's measure unchanged, and the tests of a probe's helpers, load it through here."""
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "benchmarks" / f"{name}.py"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such benchmark script (run from a checkout of the repository)")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def probe_arguments(parser, out: str, results_dir_help: str = "the committed study"):
    """The arguments every training probe takes: where its runs go, the committed study it compares with,
    how many runs train side by side, and where its report and tables go."""
    parser.add_argument("--out", default=out, help="folder of the runs (resumable)")
    parser.add_argument("--results-dir", default="results/cpu", help=results_dir_help)
    parser.add_argument("--jobs", type=int, default=2, help="runs trained side by side (one thread each)")
    parser.add_argument("--results", default=None, help="Markdown file for the tables (default: print them)")
    parser.add_argument("--tables", default=None, help="folder for the CSV tables")
    return parser


def refit_probe_arguments(parser, bootstrap: int):
    """The arguments of the probes that refit the committed runs without training any (the total-parameter
    and fit-window probes): the study they refit, processes, resamples, and where the report and tables go."""
    parser.add_argument("--results-dir", default="results/cpu", help="the committed study (its runs and fits)")
    parser.add_argument("--jobs", type=int, default=2, help="processes for the fits")
    parser.add_argument("--bootstrap", type=int, default=bootstrap,
                        help=f"resamples behind the intervals (registered: the study's {bootstrap})")
    parser.add_argument("--results", default=None, help="Markdown file for the tables (default: print them)")
    parser.add_argument("--tables", default=None, help="folder for the CSV tables")
    return parser


def committed_study(results_dir) -> tuple[pd.DataFrame, dict[str, float]]:
    """A study's runs table (sizes as text) and its committed approach-3 (E fixed) estimate of a per
    architecture, which a refitting probe's control must reproduce; a one-line exit when either is missing."""
    results_dir = Path(results_dir)
    for name in ("runs.parquet", "fits/approach3_fixed_e.csv"):
        if not (results_dir / name).exists():
            raise SystemExit(f"--results-dir: {results_dir / name} is missing (expected a study's results folder)")
    runs = pd.read_parquet(results_dir / "runs.parquet").assign(size=lambda t: t["size"].astype(str))
    fits = pd.read_csv(results_dir / "fits" / "approach3_fixed_e.csv")
    fits = fits[(fits["law"] == "N_opt(C)") & (fits["parameter"] == "a")]
    return runs, dict(zip(fits["group"], fits["estimate"]))


def interval_rows(got: dict, methods, archs, entropy: float) -> list[dict]:
    """Per method of a fit suite's results (``got``) and architecture: a with its bootstrap interval and
    the number of distinct resampled outcomes, α and β, and (approach 3, E free) E over the exact entropy
    rate minus 1: the acceptance quantities of issue 15 that the refitting probes report."""
    from linscale.design import estimate

    rows = []
    for method in methods:
        fit = got[method].fit if got[method].ok else None
        for arch in archs:
            row = dict(method=method, arch=arch, a=estimate(fit, "N_opt(C)", "a", arch))
            if fit is not None:
                part = fit.params[(fit.params["group"] == arch) & (fit.params["law"] == "N_opt(C)")
                                  & (fit.params["parameter"] == "a")]
                if len(part):
                    row.update(a_low=float(part["ci_low"].iloc[0]), a_high=float(part["ci_high"].iloc[0]),
                               distinct=int(part["n_distinct"].iloc[0]))
                row.update(alpha=estimate(fit, "L(N,D)", "alpha", arch), beta=estimate(fit, "L(N,D)", "beta", arch))
                if method == "approach3":
                    row["E_over_entropy"] = estimate(fit, "L(N,D)", "E", arch) / entropy - 1
            rows.append(row)
    return rows


PROBE_MACHINE_KEYS = ("host", "cpu", "cores", "python", "torch", "linscale")  # what a probe's report says it ran on


def probe_report_head(title: str, provenance: str, started) -> list[str]:
    """The first lines of a probe's Markdown report: its ``title``, the command that produced it (this
    process's script under benchmarks/ and its arguments) followed by ``provenance`` (where its rule and
    prediction were committed, and when), when it ran (from ``started``, a UTC datetime, to now) and on
    which machine (:func:`machine_info`)."""
    info = machine_info()
    return [f"# {title}", "",
            f"Produced by `python benchmarks/{Path(sys.argv[0]).name} {' '.join(sys.argv[1:])}`; {provenance}", "",
            f"- date: {started:%Y-%m-%d %H:%M} UTC (start) to {_dt.datetime.now(_dt.timezone.utc):%H:%M} UTC",
            *(f"- {k}: {v}" for k, v in info.items() if k in PROBE_MACHINE_KEYS)]


def write_probe_outputs(text: str, results: str | None = None, tables: str | None = None,
                        frames: dict[str, pd.DataFrame] | None = None) -> None:
    """What a benchmark probe found: ``text`` (its Markdown report) into the file ``results``, or printed
    without one; each of ``frames`` as ``<tables>/<name>.csv`` when a ``tables`` folder is given (the
    book's chapters read those). Each file is written whole or not at all."""
    from linscale.atomic import atomic_write

    if tables:
        folder = Path(tables)
        folder.mkdir(parents=True, exist_ok=True)
        for name, frame in (frames or {}).items():
            atomic_write(folder / f"{name}.csv", lambda tmp, frame=frame: frame.to_csv(tmp, index=False), mode=0o644)
        print(f"wrote {folder}/*.csv")
    if results:
        atomic_write(Path(results), lambda tmp: Path(tmp).write_text(text), mode=0o644)
        print(f"wrote {results}")
    else:
        print(text)
