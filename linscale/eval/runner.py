"""``linscale eval``: run task suites over a sweep's exported checkpoints into one results store.

    <sweep>/runs/<run_id>/export/step=<step>/     checkpoints (linscale.models.checkpoint.save_checkpoint)
    <sweep>/eval/results.parquet                   one row per checkpoint x task x metric
    <sweep>/eval/tasks/                            task data cache (see linscale.eval.items)
    <sweep>/eval/niah_cells.parquet                NIAH accuracy per (checkpoint, mode, length, depth) cell
    <sweep>/eval/items.parquet                     each scored item's accuracy per checkpoint (paired tests)
    <sweep>/eval/json/<run_id>/step=<step>/<suite>.json   lm-eval's full results, per suite
    <sweep>/eval/results.settings.json             the settings every row was evaluated with (one per store)
    (a store of another name, <sweep>/eval/<name>.parquet, keeps its own niah_cells/<name>.parquet,
    items/<name>.parquet and json/<name>/: companion_paths)

Rows carry run_id, arch, size, step, tokens, flops, pf_days, params (from the checkpoint meta), so
the book can plot any metric against compute. The store is resumable like the sweep: a (checkpoint,
suite) whose rows are already there is skipped, rows are keyed by (run_id, step, task, metric)
and never duplicated, and every write replaces the file atomically under a lock.
"""
from __future__ import annotations

import contextlib
import copy
import functools
import json
import logging
import math
import os
import re
import time
from pathlib import Path

import pandas as pd
from filelock import FileLock, Timeout

from linscale.atomic import atomic_write, write_json
from linscale.config import ConfigError, error_line, read_table_file
from linscale.eval.tasks import SUITES, TASKS_DIR
from linscale.processes import end_with_parent, release_pool_pipes

log = logging.getLogger(__name__)

KEY = ["run_id", "step", "task", "metric"]
NIAH_KEY = ["run_id", "step", "task", "length", "depth"]
ITEM_KEY = ["run_id", "step", "task", "doc_id"]
NIAH_TASKS = ("linscale_niah_easy", "linscale_niah_standard")
# A derived row of the store: NIAH easy minus standard (weighted accuracy), with its standard error.
MODE_DIFFERENCE_TASK = "linscale_niah_easy_minus_standard"
COLUMNS = ["run_id", "arch", "size", "step", "tokens", "flops", "pf_days", "params", "suite", "task",
           "metric", "filter", "value", "stderr", "chance", "n_samples", "max_length", "checkpoint", "eval_time_s"]


def find_checkpoints(sweep_dir: str | os.PathLike) -> list[Path]:
    """Every exported checkpoint of a sweep, ordered by run and step."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise ConfigError(f"{sweep_dir}: is a file; expected a sweep folder (runs/<preset>)" if sweep_dir.exists()
                          else f"{sweep_dir}: sweep folder does not exist")
    found = [p.parent for p in sweep_dir.glob("runs/*/export/step=*/config.json")]

    def order(p: Path):
        # numbered steps by their number, then any other name (step=final, a copy): a number and a name in
        # one place of the key could not be compared (a TypeError)
        step = p.name.split("=", 1)[1]
        return p.parent.parent.name, (0, int(step), "") if step.isdigit() else (1, 0, step)

    return sorted(found, key=order)


def final_checkpoints(sweep_dir: str | os.PathLike) -> list[Path]:
    """Each run's last exported checkpoint (find_checkpoints orders them by run and step)."""
    return list({path.parent.parent.name: path for path in find_checkpoints(sweep_dir)}.values())


class DatasetUnavailableError(ConfigError):
    """An lm-eval task's dataset cannot be loaded (no network, not in the local Hugging Face cache)."""


def companion_paths(out: Path) -> tuple[Path, Path, Path]:
    """Where a results store's NIAH cells, per-item scores and lm-eval JSON go: beside the default store
    (``results.parquet``) ``niah_cells.parquet``, ``items.parquet`` and ``json/``; beside another
    (``twice.parquet``, one store per context setting) ``niah_cells/twice.parquet``,
    ``items/twice.parquet`` and ``json/twice/``, so that evaluating the same checkpoints at another
    context never overwrites the default store's files (and no companion file looks like a store)."""
    if out.name == "results.parquet":
        return out.parent / "niah_cells.parquet", out.parent / "items.parquet", out.parent / "json"
    return out.parent / "niah_cells" / out.name, out.parent / "items" / out.name, out.parent / "json" / out.stem


def settings_path(out: Path) -> Path:
    """Where a results store records the settings its rows were evaluated with (results.settings.json
    beside results.parquet): the store key has none of them, so without it a call with other settings
    found every checkpoint "already evaluated" and kept the old rows in silence."""
    return out.with_name(f"{out.stem}.settings.json")


def _settings_text(settings: dict) -> str:
    """Store settings as the options of `linscale eval` that give them."""
    parts = [f"--option {key}={value}" for key, value in sorted(settings["task_options"].items())]
    if settings["context_factor"] != 1.0:
        parts.append(f"--context-factor {settings['context_factor']:g}")
    if settings["limit"] is not None:
        parts.append(f"--limit {settings['limit']}")
    if settings["include_defaults"]:
        parts.append("--real-tasks")
    return " ".join(parts) or "the default settings"


def check_store_settings(out: Path, table: pd.DataFrame, settings: dict) -> None:
    """Refuse, in one line, to add rows evaluated with ``settings`` to a store whose rows were evaluated
    with others (each setting its own store); record them for a store that has no rows yet. A store
    written before settings were recorded (rows, no record) is taken as it is."""
    settings = json.loads(json.dumps(settings, sort_keys=True))  # as the file will read back
    file = settings_path(out)
    if len(table) and file.exists():
        try:
            recorded = json.loads(file.read_text())
        except ValueError:
            raise ConfigError(f"{file}: not readable JSON; delete it to take {out}'s rows as evaluated with "
                              "this call's settings") from None
        if recorded != settings:
            raise ConfigError(f"{out}: its rows were evaluated with {_settings_text(recorded)}, this call asks "
                              f"for {_settings_text(settings)}; give each setting its own --out (a study: its own "
                              "--runs-dir)")
    elif not len(table):
        write_json(file, settings, sort_keys=True)


def task_paths(include_path=None) -> list[str]:
    """The folders lm-eval indexes for task YAMLs: the linscale suites, then the user's ``include_path``
    (a folder or a list of them; each must exist)."""
    extra = [include_path] if isinstance(include_path, (str, os.PathLike)) else list(include_path or [])
    for path in extra:
        if not os.fspath(path):  # "" (an unset $DIR) reads as ".": the current folder was indexed to its depths
            raise ConfigError("--include_path: empty; expected a folder of lm-eval task YAMLs")
        if not Path(path).is_dir():
            raise ConfigError(f"--include_path: {path} is not a folder of lm-eval task YAMLs")
    return [str(TASKS_DIR), *(str(p) for p in extra)]


def check_user_tasks(include_path=None) -> None:
    """The user's task folders, before anything is evaluated: every YAML readable (a broken one was left out
    by lm-eval with a log line, and its task then called "unknown"), and no task named like one of
    linscale's (lm-eval lets the later folder's win: a user's `linscale_cloze` scored the linguistic suite
    in place of the package's, and the store then held those rows as the suite's)."""
    import yaml
    from lm_eval.tasks import TaskManager

    folders = task_paths(include_path)[1:]
    if not folders:
        return

    class Lenient(yaml.SafeLoader):  # lm-eval's own tags (!function) read as nothing: only the syntax is checked
        pass

    Lenient.add_multi_constructor("!", lambda loader, suffix, node: None)
    for folder in folders:
        for file in sorted(Path(folder).rglob("*.yaml")):
            try:
                yaml.load(file.read_text(encoding="utf-8"), Loader=Lenient)
            except (yaml.YAMLError, UnicodeDecodeError) as err:
                raise ConfigError(f"--include_path: {file}: not a readable task YAML ({error_line(err)})") from None
    own = set(TaskManager(include_path=[str(TASKS_DIR)], include_defaults=False).all_tasks)
    theirs = set(TaskManager(include_path=folders, include_defaults=False).all_tasks)
    clash = sorted(own & theirs)
    if clash:
        raise ConfigError(f"--include_path: {', '.join(folders)} defines {', '.join(clash)}, the name of linscale's "
                          "own task(s), which it would replace in linscale's suites; rename yours")


def resolve_tasks(suites: list[str], tasks: list[str] | None = None, include_defaults: bool = False,
                  include_path=None):
    """lm-eval task/group names for suite names plus extra task names (from the linscale suites, the
    user's ``include_path`` folders and, with ``include_defaults``, lm-eval's own); unknown -> ConfigError."""
    from lm_eval.tasks import TaskManager

    names = []
    for suite in suites:
        if suite not in SUITES:
            raise ConfigError(f"suite: unknown suite {suite!r}; expected one of {', '.join(SUITES)}")
        names += SUITES[suite]
    names += list(tasks or [])
    check_user_tasks(include_path)
    manager = TaskManager(include_path=task_paths(include_path), include_defaults=include_defaults)
    unknown = [n for n in names if n not in manager.all_tasks]
    if unknown:
        hint = "" if include_defaults else \
            " (lm-eval's own tasks need include_defaults / --real-tasks; your own, --include_path DIR)"
        raise ConfigError(f"tasks: unknown task name(s) {', '.join(unknown)}{hint}")
    return names


def evaluate_checkpoint(checkpoint: str | os.PathLike, tasks: list[str], *, task_cache=None,
                        limit: int | None = None, batch_size: int = 16, device: str = "cpu",
                        include_defaults: bool = False, task_options: dict | None = None,
                        bootstrap_iters: int = 100, include_path=None) -> dict:
    """lm-eval results dict of ``tasks`` on one exported checkpoint (with per-item samples).

    Standard errors: analytic for means (acc, acc_norm); ``bootstrap_iters`` resamples for lm-eval's
    bootstrappable aggregations (perplexity); none for the NIAH aggregations and weighted perplexities
    (``result_rows`` adds the NIAH weighted accuracy's). A task whose dataset cannot be loaded (lm-eval's
    own tasks download theirs) raises :class:`DatasetUnavailableError`, one line naming the dataset."""
    import lm_eval
    import lm_eval.evaluator
    from lm_eval.tasks import TaskManager

    from linscale.eval.adapter import LinscaleLM

    # lm-eval records the environment in every results dict by running `pip list` and friends in
    # subprocesses (0.3 s a call, a third of a small model's suite); within one process it cannot change.
    lm_eval.evaluator.add_env_info = _add_env_info_once
    options = {"checkpoint": str(checkpoint), **({"task_cache": str(task_cache)} if task_cache else {}),
               **(task_options or {})}
    lm = LinscaleLM(batch_size=batch_size, device=device, **options)
    manager = TaskManager(include_path=task_paths(include_path), include_defaults=include_defaults,
                          metadata=options)
    try:
        with _single_process_bootstrap(), _without_lm_eval_chatter():
            return lm_eval.simple_evaluate(model=lm, tasks=tasks, task_manager=manager, num_fewshot=None,
                                           limit=limit, log_samples=True, bootstrap_iters=bootstrap_iters,
                                           random_seed=0, numpy_random_seed=0, torch_random_seed=0,
                                           fewshot_random_seed=0)
    except (ConnectionError, *_dataset_errors()) as err:
        raise DatasetUnavailableError(_unavailable(tasks, err)) from None
    except FileNotFoundError as err:  # a user's task naming a data file that is not there (was a traceback)
        raise DatasetUnavailableError(f"tasks: {', '.join(tasks)}: a data file could not be found "
                                      f"({error_line(err)}); check the data_files of your task YAML") from None
    except task_yaml_errors() as err:
        error = task_yaml_error(err, tasks)
        if error is None:  # not raised where lm-eval reads a task's YAML: a bug, with its traceback
            raise
        raise error from None


def task_yaml_errors() -> tuple[type[Exception], ...]:
    """What lm-eval raises for a task YAML with a hole in it: Python's errors, and jinja's for a template
    that cannot be rendered (a misspelt field under doc_to_text)."""
    from jinja2.exceptions import TemplateError

    return TypeError, ValueError, KeyError, AttributeError, IndexError, SyntaxError, TemplateError


# what a task's field holds, where lm-eval's error does not say (other doc_to_* fields: the default)
_FIELD_EXPECTS = {"doc_to_choice": "a list, a field of the data or a template giving a list (a multiple_choice "
                                   "task needs one)"}


def task_yaml_error(err: BaseException, tasks=()) -> ConfigError | None:
    """``err`` as one line naming the task and the field of its YAML that lm-eval could not read (for
    ``linscale eval`` and ``linscale lm-eval``); None where lm-eval's Task did not raise it."""
    where = _task_yaml_field(err)
    if where is None:
        return None
    task, field = where
    expected = _FIELD_EXPECTS.get(field, "a field of the data or a template of its fields")
    return ConfigError(f"tasks: {task or ', '.join(tasks)}: lm-eval could not make a request from the task's "
                       f"YAML ({error_line(err)} in lm-eval's Task.{field}); expected {field}: {expected}")


def _task_yaml_field(err: BaseException) -> tuple[str | None, str] | None:
    """(task, field) where lm-eval's Task raised ``err`` reading a field of a task's YAML (its doc_to_*
    methods): ``doc_to_choice`` for a multiple_choice task of one's own without one (lm-eval's bare
    TypeError); the task's name as its config gives it. None where the error came from elsewhere,
    linscale's own code included."""
    package = Path(__file__).resolve().parent.parent  # linscale/, not a folder named linscale above a venv
    frames = []
    tb = err.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    paths = [Path(frame.f_code.co_filename).resolve() for frame in frames]
    task = [i for i, path in enumerate(paths) if path.parts[-3:] == ("lm_eval", "api", "task.py")]
    ours = [i for i, path in enumerate(paths) if path.is_relative_to(package)]
    if not task or (ours and ours[-1] > task[-1]):  # none, or raised in linscale's code that lm-eval called
        return None
    frame = frames[task[-1]]
    if not frame.f_code.co_name.startswith("doc_to_"):  # not reading a field (a task left with no documents)
        return None
    config = getattr(frame.f_locals.get("self"), "config", None)
    return getattr(config, "task", None), frame.f_code.co_name


@contextlib.contextmanager
def _single_process_bootstrap():
    """lm-eval's bootstrapped standard errors (perplexity's) without its process pool.

    By default lm-eval forks a pool of one process per core for every bootstrapped metric of every
    checkpoint: about 0.2 s each time, and, in the study, processes competing with the fits that run
    beside the evaluation. With DISABLE_MULTIPROC it draws the same resamples in a loop (chunk i seeded
    with random.Random(i) in both), so the standard errors are the same to the bit."""
    before = os.environ.get("DISABLE_MULTIPROC")
    os.environ["DISABLE_MULTIPROC"] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("DISABLE_MULTIPROC", None)
        else:
            os.environ["DISABLE_MULTIPROC"] = before


# What lm-eval writes while it scores one checkpoint that says nothing to a linscale user: every task's advice
# to pass --metadata (linscale passes it), the "bootstrapping for stddev" print of each bootstrapped metric,
# its progress bars, and git's complaint where it asks for a commit outside a clone. About ten lines a
# suite, thousands in a study, around the lines that say what ran.
LM_EVAL_CHATTER = re.compile(r"^(\S+: Custom kwargs can be passed to `--metadata`.*|For example --metadata=.*"
                             r"|bootstrapping for stddev: \S+|[\w ]*:?\s*\d+%\|.*\| \d+/\d+ \[.*\]\s*"
                             r"|fatal: not a git repository.*)$")


@contextlib.contextmanager
def _without_lm_eval_chatter():
    """Hold lm-eval's console output while it scores, then pass on every line but its chatter
    (LM_EVAL_CHATTER): a warning of its own still reaches the terminal, after the scoring. The
    subprocesses it starts (git) write to the process's stderr itself, so that is held too."""
    import io
    import sys
    import tempfile

    held = io.StringIO()
    with tempfile.TemporaryFile() as subprocesses:
        sys.stderr.flush()
        try:
            saved = os.dup(2)
        except OSError:  # no stderr to hold (a process started without one)
            saved = None
        else:
            os.dup2(subprocesses.fileno(), 2)
        try:
            with contextlib.redirect_stdout(held), contextlib.redirect_stderr(held):
                yield
        finally:
            if saved is not None:
                os.dup2(saved, 2)
                os.close(saved)
            subprocesses.seek(0)
            text = held.getvalue() + "\n" + subprocesses.read().decode(errors="replace")
            # progress bars redraw a line with carriage returns: each redraw is a line of its own here
            kept = [line for line in re.split(r"[\r\n]+", text) if line.strip() and not LM_EVAL_CHATTER.match(line)]
            if kept:
                print("\n".join(kept), file=sys.stderr)


def _dataset_errors() -> tuple:
    """The exceptions `datasets` raises for a dataset it cannot find (offline, or not on the Hub)."""
    from datasets.exceptions import DatasetNotFoundError

    return (DatasetNotFoundError,)


def _unavailable(tasks: list[str], err: Exception) -> str:
    message = " ".join(str(err).split())
    quoted = re.search(r"'([^'\s]+)'", message)  # the dataset's path, quoted in datasets' messages
    dataset = f"dataset {quoted.group(1)}" if quoted else "a dataset"
    return (f"tasks: {', '.join(tasks)}: {dataset} could not be loaded ({message}); lm-eval's own tasks download "
            "their data from the Hugging Face Hub: run once with a network, or set HF_HOME to a cache holding it")


@functools.cache
def _env_info() -> dict:
    from lm_eval.loggers.utils import add_env_info

    info: dict = {}
    add_env_info(info)
    return info


def _add_env_info_once(storage: dict) -> None:
    storage.update(copy.deepcopy(_env_info()))


def result_rows(results: dict, meta: dict, suite: str, checkpoint: str, eval_time_s: float,
                max_length: int | None = None, task_options: dict | None = None) -> pd.DataFrame:
    """One row per (task or group, metric) of an lm-eval results dict, with the metric's chance level
    (linscale.eval.chance) and, for NIAH's weighted accuracy, the standard error lm-eval does not give.
    When both NIAH modes were scored, one derived row more: ``MODE_DIFFERENCE_TASK``, metric
    ``weighted_acc_difference``, easy minus standard with its (paired) standard error."""
    from linscale.eval.chance import chance_level
    from linscale.flops import PF_DAY

    niah_stderr = _niah_stderr(results)
    entries = [(task, key, value, metrics) for task, metrics in results["results"].items()
               for key, value in metrics.items()]
    modes = _niah_mode_difference(results)
    if modes is not None:  # easy minus standard, from the per-item samples of both modes (paired when they are)
        entries.append((MODE_DIFFERENCE_TASK, "weighted_acc_difference,none", modes[0],
                        {"weighted_acc_difference_stderr,none": modes[1]}))
    params = meta.get("params")  # else the checkpoint's config.json, read once (each row read it again)
    rows = []
    for task, key, value, metrics in entries:
        if "," not in key or "_stderr," in key or not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        params = _non_embedding_params(checkpoint) if params is None else params
        metric, filt = key.split(",", 1)
        stderr = metrics.get(f"{metric}_stderr,{filt}")
        if metric == "weighted_acc" and task in niah_stderr:
            stderr = niah_stderr[task]
        n = results.get("n-samples", {}).get(task, {}).get("effective")
        rows.append({
            "run_id": str(meta.get("run_id", checkpoint)), "arch": meta.get("arch"), "size": meta.get("size"),
            "step": int(meta.get("step", -1)), "tokens": float(meta.get("tokens", math.nan)),
            "flops": float(meta.get("flops", math.nan)),
            "pf_days": float(meta.get("flops", math.nan)) / PF_DAY,
            "params": float(params), "suite": suite, "task": task, "metric": metric,
            "filter": filt, "value": float(value),
            "stderr": float(stderr) if isinstance(stderr, (int, float)) else math.nan,
            "chance": chance_level(task, metric, meta.get("data"), task_options),
            "n_samples": float(n) if n is not None else math.nan,
            "max_length": float(max_length) if max_length else math.nan, "checkpoint": checkpoint,
            "eval_time_s": eval_time_s,
        })
    return pd.DataFrame(rows, columns=COLUMNS)


def _niah_mode_difference(results: dict) -> tuple[float, float] | None:
    """(WA easy − WA standard, its standard error) when both NIAH modes were scored, else None. Items of
    the two modes pair up by their haystack, variable and value (the needle's first word aside): with
    ``niah_paired: 1`` every item has its twin and the standard error is the paired one
    (linscale.eval.metrics.weighted_difference)."""
    from linscale.eval.metrics import weighted_difference

    samples = results.get("samples") or {}
    if not all(task in samples for task in NIAH_TASKS):
        return None

    difference, se, _ = weighted_difference(*(niah_records(samples[task]) for task in NIAH_TASKS))
    return difference, se


def niah_records(samples: list[dict]) -> list[tuple[int, int, tuple[str, int], float]]:
    """(length_index, depth_index, pair key, correct) of each scored NIAH item. The key is the item's
    haystack with its needle written as the standard one ("let VAR VAL ."), its question, and which
    occurrence of that item it is: an easy item and its standard twin share it."""
    seen: dict = {}
    out = []
    for s in samples:
        doc = s["doc"]
        var, val = doc["question"].split()[1], doc["answer"]
        key = doc["context"].replace(f"what {var} {val} .", f"let {var} {val} .") + " | " + doc["question"]
        seen[key] = seen.get(key, 0) + 1
        out.append((doc["length_index"], doc["depth_index"], (key, seen[key]), float(s["acc"])))
    return out


def _niah_stderr(results: dict) -> dict[str, float]:
    """{NIAH task: standard error of its weighted accuracy} from the per-item samples."""
    from linscale.eval.metrics import weighted_stderr

    out = {}
    for task, samples in (results.get("samples") or {}).items():
        if task.startswith("linscale_niah"):
            out[task] = weighted_stderr((s["doc"]["length_index"], s["doc"]["depth_index"], s["acc"])
                                        for s in samples)
    return out


def _non_embedding_params(checkpoint: str) -> float:
    """N of the paper (non-embedding parameters), from the checkpoint's model config."""
    from linscale.config import ModelConfig
    from linscale.flops import non_embedding_params

    spec = json.loads((Path(checkpoint) / "config.json").read_text())
    return float(non_embedding_params(ModelConfig.from_dict(spec["model"])))


def niah_cell_rows(results: dict, meta: dict) -> pd.DataFrame:
    """Accuracy per NIAH grid cell (the paper's heat maps) from the per-item samples."""
    rows = []
    for task, samples in (results.get("samples") or {}).items():
        if not task.startswith("linscale_niah"):
            continue
        for sample in samples:
            doc = sample["doc"]
            rows.append({"run_id": str(meta.get("run_id")), "step": int(meta.get("step", -1)),
                         "tokens": float(meta.get("tokens", math.nan)), "task": task, "mode": doc["mode"],
                         "length": int(doc["length"]), "depth": float(doc["depth"]),
                         "length_index": int(doc["length_index"]), "depth_index": int(doc["depth_index"]),
                         "acc": float(sample["acc"])})
    if not rows:
        return pd.DataFrame(columns=NIAH_KEY + ["acc"])
    cols = [c for c in rows[0] if c != "acc"]
    # dropna=False: a meta without tokens (NaN) kept no cell, and the suite was then evaluated again on every call
    return pd.DataFrame(rows).groupby(cols, as_index=False, dropna=False)["acc"].mean()


def item_rows(results: dict, meta: dict) -> pd.DataFrame:
    """Each scored item's accuracy (0 or 1) per task, from the per-item samples: run_id, step, task,
    doc_id, acc. Two checkpoints answer the same items (the task cache fixes them), so a difference of
    two accuracies can be tested item by item, paired, where each task row's standard error treats the
    two as independent."""
    rows = [{"run_id": str(meta.get("run_id")), "step": int(meta.get("step", -1)), "task": task,
             "doc_id": int(sample["doc_id"]), "acc": float(sample["acc"])}
            for task, samples in (results.get("samples") or {}).items() for sample in samples if "acc" in sample]
    return pd.DataFrame(rows, columns=ITEM_KEY + ["acc"])


def read_store(path: str | os.PathLike, key: list[str] = KEY) -> pd.DataFrame:
    """The results store at ``path`` (empty if none yet); a file that is not one (no ``key`` columns) is
    a ConfigError naming it."""
    path = Path(path)
    if not path.exists():
        return pd.DataFrame(columns=COLUMNS)
    table = read_table_file(path, "results store is not a readable Parquet file",
                            "delete it, and what it held is evaluated again")
    missing = [column for column in key if column not in table.columns]
    if missing:  # another table (a runs.parquet, say): appending to it would fail deep in pandas, or mix tables
        raise ConfigError(f"{path}: not an evaluation results store (no {', '.join(missing)} column); "
                          f"choose another --out")
    return table


def append_rows(path: str | os.PathLike, rows: pd.DataFrame, key: list[str] = KEY) -> pd.DataFrame:
    """Merge ``rows`` into the store (new rows replace old ones with the same key), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    old = read_store(path, key)
    table = rows if not len(old) else pd.concat([old, rows], ignore_index=True) if len(rows) else old
    table = table.drop_duplicates(subset=key, keep="last").reset_index(drop=True)
    atomic_write(path, lambda tmp: table.to_parquet(tmp, index=False))
    return table


def evaluate_sweep(sweep_dir: str | os.PathLike, suites: list[str], *, checkpoints=None,
                   tasks: list[str] | None = None, out: str | os.PathLike | None = None,
                   task_cache=None, limit: int | None = None, batch_size: int = 16, device: str = "cpu",
                   include_defaults: bool = False, task_options: dict | None = None,
                   context_factor: float = 1.0, include_path=None, progress=print,
                   pool: "EvalPool | None" = None) -> pd.DataFrame:
    """Evaluate ``suites`` (and extra ``tasks``) on every exported checkpoint of ``sweep_dir`` (or on
    the given ``checkpoints``), appending to ``out`` (default ``<sweep>/eval/results.parquet``).

    ``context_factor`` sets each checkpoint's ``max_length`` to that multiple of its training
    ``seq_len`` (the paper tests its 8K models on NIAH up to 16K: factor 2). Rows record it in
    ``max_length``; the store key does not include it, so each factor (and each setting of
    ``task_options``, the difficulty knobs of linscale/eval/difficulty.yaml, of ``limit`` and of
    ``include_defaults``) needs its own ``out``: the store records its settings (:func:`settings_path`)
    and a call with others is refused in one line.
    ``include_path``: folders of the user's own lm-eval task YAMLs, for ``tasks``. ``pool``: an
    :class:`EvalPool` whose processes evaluate the checkpoints side by side (default: one after another,
    here); the store is written here, in checkpoint order, with the same rows either way."""
    from linscale.eval.items import checkpoint_meta, training_seq_len

    sweep_dir = Path(sweep_dir)
    out = Path(out) if out else sweep_dir / "eval" / "results.parquet"
    task_cache = Path(task_cache) if task_cache else sweep_dir / "eval" / "tasks"
    checkpoints = [Path(c) for c in checkpoints] if checkpoints else find_checkpoints(sweep_dir)
    if not checkpoints:
        raise ConfigError(f"{sweep_dir}: no exported checkpoints (runs/*/export/step=*/)")
    units = [(suite, resolve_tasks([suite], include_defaults=include_defaults)) for suite in suites]
    if tasks:
        units.append(("tasks", resolve_tasks([], tasks, include_defaults=include_defaults, include_path=include_path)))
    lock = FileLock(str(out) + ".lock")
    try:
        lock.acquire(timeout=1)
    except Timeout:
        raise ConfigError(f"{out}: another `linscale eval` is writing this results store") from None
    try:
        table = read_store(out)
        check_store_settings(out, table, {"task_options": dict(task_options or {}), "context_factor": context_factor,
                                          "limit": limit, "include_defaults": include_defaults})
        cells_file, items_file, json_root = companion_paths(out)
        itemized, celled = _stored_tasks(items_file, ITEM_KEY), _stored_tasks(cells_file, NIAH_KEY)
        todo = []  # (n, checkpoint, meta, suite, names, options): what is not in the store yet
        for n, checkpoint in enumerate(checkpoints, 1):
            meta = checkpoint_meta(checkpoint)
            run_id, step = str(meta.get("run_id", checkpoint)), int(meta.get("step", -1))
            _check_same_run(out, checkpoint, meta, table[(table.run_id == run_id) & (table.step == step)])
            options = dict(task_options or {})
            if context_factor != 1.0:
                seq_len = training_seq_len(meta)
                if not seq_len:
                    raise ConfigError(f"{checkpoint}: meta has no seq_len to scale by context_factor")
                options["max_length"] = int(round(context_factor * seq_len))
                if options["max_length"] < 2:  # 0 was read as "not given" and the run evaluated at seq_len
                    raise ConfigError(f"--context-factor: {context_factor:g} x {checkpoint}'s seq_len {seq_len} is a "
                                      f"context of {options['max_length']} tokens; expected at least 2")
            for suite, names in units:
                done = table[(table.run_id == run_id) & (table.step == step) & (table.suite == suite)]
                # a suite's lm-eval JSON, items and NIAH cells are written with its rows: where one is gone (a
                # json folder or a companion store deleted), the suite is evaluated again, its rows replaced
                lost = _lost_companions(done, itemized, celled)
                finished = len(done) > 0 and not lost and (
                    suite == "tasks" or (json_root / run_id / f"step={step}" / f"{suite}.json").is_file())
                if suite == "tasks":  # the user's own tasks: those of this call not evaluated yet (another call's
                    # were skipped), those whose items are lost, and a group where any are (its items are its
                    # subtasks', under their names; a group's rows score no items of their own)
                    groups = set(done.task[done.n_samples.isna()])
                    names = [name for name in names if name not in set(done.task) or name in lost
                             or (lost and name in groups)]
                    finished = not names
                if finished:
                    progress(f"[{n}/{len(checkpoints)}] {run_id} step {step} {suite}: already evaluated")
                    continue
                todo.append((n, checkpoint, meta, suite, names, options))
        evaluate = functools.partial(_timed_evaluation, task_cache=task_cache, limit=limit, batch_size=batch_size,
                                     device=device, include_defaults=include_defaults, include_path=include_path)
        # Submitted all at once, written as each finishes in checkpoint order: the pool works ahead, the store
        # grows in the order one process would give it, and an interrupted run keeps what was written.
        pending = [(item, (pool or _HERE).submit(evaluate, item[1], item[4], item[5])) for item in todo]
        for (n, checkpoint, meta, suite, names, options), future in pending:
            results, elapsed = future.result()
            run_id, step = str(meta.get("run_id", checkpoint)), int(meta.get("step", -1))
            json_file = json_root / run_id / f"step={step}" / f"{suite}.json"
            json_file.parent.mkdir(parents=True, exist_ok=True)
            _write_json(json_file, results)
            cells = niah_cell_rows(results, meta)
            if len(cells):  # first the cells and items, so a finished suite in the main store implies them
                append_rows(cells_file, cells, NIAH_KEY)
            items = item_rows(results, meta)
            if len(items):
                append_rows(items_file, items, ITEM_KEY)
            max_length = options.get("max_length") or training_seq_len(meta)
            table = append_rows(out, result_rows(results, meta, suite, str(checkpoint), elapsed, max_length,
                                                 options))
            progress(f"[{n}/{len(checkpoints)}] {run_id} step {step} {suite}: {elapsed:.1f}s")
    finally:
        if pool is not None:
            pool.cancel_pending()
        lock.release()
    return table


def _stored_tasks(path: Path, key: list[str]) -> set[tuple[str, int, str]]:
    """The (run_id, step, task) triples a companion store (items or NIAH cells) holds rows of."""
    table = read_store(path, key)
    if not len(table):
        return set()
    return set(zip(table["run_id"].astype(str), table["step"].astype(int), table["task"].astype(str)))


def _lost_companions(done: pd.DataFrame, itemized: set, celled: set) -> set[str]:
    """The tasks of ``done`` (one checkpoint's stored rows of one suite) that scored items (an accuracy
    over n_samples > 0) but whose items, or for NIAH whose cells, the companion stores do not hold: a
    deleted items.parquet or niah_cells.parquet was not noticed while the main store and the JSON stayed,
    and the paired tests and heat maps went without those checkpoints."""
    scored = done[(done.metric == "acc") & (done.n_samples.fillna(0) > 0)]
    lost = set()
    for key in zip(scored.run_id.astype(str), scored.step.astype(int), scored.task.astype(str)):
        if key not in itemized or (key[2].startswith("linscale_niah") and key not in celled):
            lost.add(key[2])
    return lost


def _check_same_run(out: Path, checkpoint: Path, meta: dict, stored: pd.DataFrame) -> None:
    """The store is keyed by run id and step, and every preset names its runs <arch>-<size>: another
    sweep's export with the same id and step was "already evaluated" and kept the other run's rows. The
    same run is the stored checkpoint itself, or one with its meta (a copy, a sweep folder moved); where
    the stored one is gone, the rows' arch, size, tokens and FLOPs are this checkpoint's."""
    from linscale.eval.items import checkpoint_meta
    from linscale.models.checkpoint import CheckpointError

    if stored.empty:
        return
    source = Path(str(stored.checkpoint.iloc[0]))
    if (source / "config.json").is_file():
        if source.resolve() == Path(checkpoint).resolve():
            return
        try:
            same = checkpoint_meta(source) == meta
        except CheckpointError:
            same = False
    else:
        row = stored.iloc[0]
        same = (row.arch == meta.get("arch") and str(row["size"]) == str(meta.get("size"))
                and all(_same_number(row[key], meta.get(key)) for key in ("tokens", "flops")))
    if not same:
        raise ConfigError(f"{checkpoint}: run {meta.get('run_id')} step {meta.get('step')} is already in {out}, "
                          f"evaluated from another checkpoint ({source}); evaluate this one into a store of "
                          f"its own (--out)")


def _same_number(stored, given) -> bool:
    stored, given = float(stored), float(math.nan if given is None else given)
    return stored == given or (math.isnan(stored) and math.isnan(given))


def _timed_evaluation(checkpoint, names, options, **kwargs) -> tuple[dict, float]:
    """(lm-eval's results of ``names`` on ``checkpoint``, seconds it took): one task of an EvalPool."""
    from lm_eval.utils import handle_non_serializable

    start = time.perf_counter()
    results = evaluate_checkpoint(checkpoint, names, task_options=options, **kwargs)
    # The task configs hold the tasks' Python functions (doc_to_text, ...), from modules lm-eval loads by
    # their file path, which a pool's parent cannot import to unpickle them: they go back as the JSON file
    # writes them (_write_json), which is all anything reads of them.
    results["configs"] = json.loads(json.dumps(results.get("configs", {}), default=handle_non_serializable))
    return results, time.perf_counter() - start


class _Here:
    """An executor that runs each task when its result is asked for: evaluate_sweep without a pool
    evaluates one checkpoint at a time, writing each before the next starts."""

    class _Deferred:
        def __init__(self, fn, args):
            self._fn, self._args = fn, args

        def result(self):
            return self._fn(*self._args)

    def submit(self, fn, *args):
        return self._Deferred(fn, args)


_HERE = _Here()


class EvalPool:
    """Processes that evaluate checkpoints for :func:`evaluate_sweep`, each with ``threads`` torch threads
    (the study evaluates with one, so that the scores do not depend on the machine's cores), shared by
    every call made while it is open::

        with EvalPool(jobs=2) as pool:
            evaluate_sweep(sweep, ["knowledge"], pool=pool)

    ``spawn`` processes: the caller may run threads (torch's, OpenMP's), and a fork copies their locks but
    not the threads. Each imports torch and lm-eval once (a few seconds), then takes checkpoint after
    checkpoint. The scores are the same as one process's: every evaluation is seeded on its own."""

    def __init__(self, jobs: int, threads: int = 1):
        if jobs < 1 or threads < 1:
            raise ConfigError(f"--jobs: expected at least one evaluation process of at least one thread, got "
                              f"{jobs} x {threads}")
        self.jobs, self.threads, self._executor, self._futures, self._processes = jobs, threads, None, [], {}

    def __enter__(self) -> "EvalPool":
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        spawn = multiprocessing.get_context("spawn")
        # cancel_pending's count, shared with the workers: a task submitted before the last cancel returns
        # unrun (see _unless_cancelled)
        self._cancels = spawn.Value("i", 0)
        self._executor = ProcessPoolExecutor(max_workers=self.jobs, mp_context=spawn, initializer=_start_worker,
                                             initargs=(self.threads, self._cancels, os.getpid()))
        return self

    def __exit__(self, exc_type, *exc) -> None:
        # before the workers are ended, not left to shutdown(cancel_futures=True): a queued task could
        # otherwise reach a worker in between (tests/test_eval_suites.py fails without it)
        self.cancel_pending()
        if exc_type is not None:
            # An error (or Ctrl-C) in the caller: end the workers now. Left to shutdown(), a worker in the
            # middle of a checkpoint finishes it first, and after a broken pool (a result that could not be
            # unpickled, say) the executor had let go of two workers that then outlived the study.
            for process in self._processes.values():
                if process.is_alive():
                    process.terminate()
            for process in self._processes.values():
                process.join(10)  # gone when the caller's error surfaces, not some time after
            release_pool_pipes(self._executor)
        self._executor.shutdown(wait=exc_type is None, cancel_futures=True)

    def submit(self, fn, *args):
        future = self._executor.submit(_unless_cancelled, self._cancels.value, fn, *args)
        self._futures.append(future)
        # the executor starts its workers on submit; kept here too, since a broken executor forgets them
        self._processes.update(getattr(self._executor, "_processes", None) or {})
        return future

    def cancel_pending(self) -> None:
        """Drop the tasks not started (an error in the caller: they would only delay it). A worker that
        takes one returns at once without running it. Not Future.cancel(): on Python 3.11 a cancelled
        future still queued when the workers are ended (Ctrl-C, an error) makes the executor's own thread
        print an InvalidStateError traceback (fixed in 3.12)."""
        with self._cancels.get_lock():
            self._cancels.value += 1
        self._futures = [f for f in self._futures if not f.done()]


_CANCELS = None  # a worker's view of EvalPool._cancels


def _start_worker(threads: int, cancels, parent: int | None = None) -> None:
    import signal
    import threading

    import torch

    if parent is not None:  # the caller killed outright (SIGKILL, SIGTERM): its evaluation processes end too
        end_with_parent(parent)

    global _CANCELS
    _CANCELS = cancels
    torch.set_num_threads(threads)
    # tqdm's default lock is a multiprocessing one, a named semaphore that a worker ended by terminate()
    # never releases: the resource tracker then warned of "leaked semaphore objects" after every Ctrl-C
    from tqdm import tqdm

    tqdm.set_lock(threading.RLock())
    # Ctrl-C reaches every process of the terminal's group: the pool's owner ends the workers (EvalPool's
    # __exit__), and a worker's own KeyboardInterrupt would only add its traceback to the one line
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _unless_cancelled(cancels_at_submit: int, fn, *args):
    """Run ``fn(*args)`` in a worker unless its pool's cancel_pending was called after it was submitted."""
    if _CANCELS is not None and _CANCELS.value != cancels_at_submit:
        return None
    return fn(*args)


def _write_json(path: Path, results: dict) -> None:
    from lm_eval.utils import handle_non_serializable

    write_json(path, {k: v for k, v in results.items() if k != "samples"}, indent=2,
               default=handle_non_serializable)
