"""The book: parameterised chapters executed by papermill, rendered by Jupyter Book 1.x.

Pipeline (``linscale book``; the last stage of ``linscale study``)::

    notebooks/<chapter>.md  --(MyST-NB reader)-->  .ipynb  --(papermill, parameters)-->
    book/chapters/<chapter>.ipynb  --(jupyter-book build book --config _config.yml, -W, execution off)-->
    _build/html/

* The chapter sources are MyST Markdown notebooks (text, reviewable diffs); they are converted to
  .ipynb with MyST-NB's own reader, which is what Jupyter Book uses, so nothing else is needed.
* Each chapter has one cell tagged ``parameters``; its names, types and allowed values are declared
  once in :data:`PARAMETERS`, checked before papermill starts (:func:`execute_chapter`) and again in the
  chapter's next cell (:func:`check_parameters`, which also catches a misspelled name that papermill
  itself only warns about), so a typo fails in one clear line however the chapter is executed. That
  cell shows the values used, and which were set for the run, at the top of the page.
* Executed chapters carry a stamp (source, parameters, input tables, the package's code); an unchanged chapter is not
  re-executed, so ``linscale book`` after a finished study only rebuilds the HTML.
* The HTML build renders stored outputs (``execute_notebooks: off``) with warnings as errors, so a
  missing glue key, a broken reference or a failing notebook stops the build.

Re-running one chapter with new parameters::

    linscale book --chapter training -p loss val_loss -y "archs: [llama, hgrn2]"
    # or, with papermill's own CLI on a converted notebook:
    papermill book/chapters/training.ipynb out.ipynb -p loss val_loss
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from linscale.config import ARCHITECTURES, ConfigError
# re-exported for the chapters (book.and_list, ...): they live below findings, whose sentences use them too
from linscale.config import NUMBER_WORDS, and_list, count_text, number_word, value_range  # noqa: F401
from linscale.processes import end_with_parent

ROOT = Path(__file__).resolve().parent.parent  # the repository (editable install)
NOTEBOOKS = ROOT / "notebooks"
BOOK = ROOT / "book"
CHAPTER_DIR = BOOK / "chapters"
HTML_DIR = ROOT / "_build" / "html"

# The book's chapters in reading order (notebooks/<name>.md).
CHAPTERS = ("architectures", "accounting", "training", "scaling_laws", "downstream", "ablations",
            "efficiency", "findings", "synthetic_language", "law_probes")
# chapters whose prose interprets the study's results (written on the cpu study): run on another preset,
# their parameter table says so (ChapterParameters._reading_note)
INTERPRETS_THE_CPU_STUDY = ("training", "scaling_laws", "downstream", "ablations", "findings", "law_probes")
# A markdown cell tagged so reads numbers only the published cpu study has (its probes, its seeds' history,
# its re-runs): on any other study's page it is left out, a short note in its place (leave_out_cpu_readings)
READS_THE_CPU_STUDY = "reads-cpu-study"
# A markdown cell tagged so explains or quotes the tables of the study's committed re-runs
# (results_dir/reruns/*/<preset>-comparison.json): where the study has none it is left out, no note in its
# place (the chapter's list of re-runs says there are none; four explanations of absent tables would not)
READS_RERUNS = "reads-reruns"
# A markdown cell tagged so reads the study's role table (results_dir/<preset>/roles.parquet): where the study
# has none (a study committed before it wrote one) it is left out, no note in its place (the page says once
# that there is no role table; a paragraph explaining the absent table's columns read as if it were there)
READS_ROLE_TABLE = "reads-role-table"
# The heading under which a chapter sets its exercises; on another study's page a note follows it
# (note_exercises_study), since their commands run the published study and their figures to expect are its
EXERCISES_HEADING = "## Exercises"
# Markdown cells tagged so quote an ablation's runs (their spreads, best shapes, contexts): where the study
# trained none of that ablation (its preset's ``ablations`` left it out), they are left out with a note
# naming it, where they read "nan%" and "none" (the figures and tables stay, empty, with their captions)
READS_ABLATION = {"aspect": "reads-aspect-runs", "context": "reads-context-runs"}
ABLATION_LEFT_OUT_NOTE = ("*This study trained no {what} runs (its preset's `ablations` leaves them out), so the "
                          "passage that reads them is left out of its page.*")
ABLATION_WHAT = {"aspect": "aspect-ratio", "context": "context-length"}
# Markdown cells tagged so are about one architecture's runs (TNL's head count): on the page of a study that
# did not train it they are left out, no note in their place (the page names the architectures it shows)
READS_ARCH = {"tnl": "reads-tnl-runs"}
# Markdown cells tagged so read the language's exact entropy rate (its value, a loss's gap to it, fits with E
# fixed at it): on the page of a study of real text, which has none, they are left out and the cells tagged
# WITHOUT_EXACT_ENTROPY, which say so in words, stand in their place (they read "nan"); a study of the
# synthetic language keeps the first and leaves out the second (knows_exact_entropy)
READS_EXACT_ENTROPY = "reads-exact-entropy"
WITHOUT_EXACT_ENTROPY = "without-exact-entropy"
LEFT_OUT_NOTE = ("*A passage here reads numbers that only the published cpu study has (probes of its grid, the "
                 "history of its seeds and re-runs), so it is left out of this study's page; the published book "
                 "(`linscale book`) shows it.*")
# the notes after a page's first: the law-probes appendix of another study is a dozen sections left out,
# and the same three lines under each of their headings were noise to read past
LEFT_OUT_AGAIN_NOTE = "*Another passage that reads only the published cpu study's numbers, left out here.*"


# Parameters for the smoke study (CI): the committed results/smoke/ tables, small live measurements.
SMOKE_PARAMETERS = {"preset": "smoke", "seq_lens": [64, 128, 256], "contexts": [32, 128, 512],
                    "tokens_per_batch": 512, "repeats": 2}


def preset_parameters(preset: str | None, chapters=None) -> dict:
    """The chapter parameters a preset's book is executed with, beyond ``preset`` itself: the smoke study's
    small live measurements (:data:`SMOKE_PARAMETERS`), for those of ``chapters`` that declare them. The
    study and `linscale book --preset smoke` both take them here (the rebuilt book's architectures and
    efficiency chapters measured the cpu study's sizes while the study's own had measured these)."""
    if preset != "smoke":
        return {}
    chapters = CHAPTERS if chapters is None else chapters
    return {name: value for name, value in SMOKE_PARAMETERS.items()
            if name != "preset" and any(name in PARAMETERS.get(chapter, {}) for chapter in chapters)}


# Figures each chapter must show in the built HTML (the CI check).
MIN_FIGURES = {"architectures": 1, "accounting": 1, "training": 3, "scaling_laws": 2, "downstream": 6,
               "efficiency": 2, "ablations": 4, "findings": 0, "synthetic_language": 2,
               "law_probes": 0}


# ----------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class Parameter:
    """One notebook parameter: its type, allowed values (or a check) and what it means."""

    kind: type | tuple[type, ...]
    doc: str
    choices: tuple | None = None  # allowed values (for lists: allowed elements)
    check: Callable[[Any], str | None] | None = None  # returns a complaint, or None when fine

    def validate(self, name: str, value: Any) -> Any:
        kinds = self.kind if isinstance(self.kind, tuple) else (self.kind,)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            expected = " or ".join(k.__name__ for k in kinds)
            raise ConfigError(f"parameter {name}: expected {expected}, got {value!r} ({type(value).__name__})")
        if isinstance(value, (list, tuple)):
            value = list(value)
            bad = [v for v in value if self.choices is not None and v not in self.choices]
            if bad:
                raise ConfigError(f"parameter {name}: unknown value(s) {bad}; expected a list drawn from "
                                  f"{', '.join(map(str, self.choices))}")
        elif self.choices is not None and value not in self.choices:
            raise ConfigError(f"parameter {name}: unknown value {value!r}; expected one of "
                              f"{', '.join(map(str, self.choices))}")
        complaint = self.check(value) if self.check else None
        if complaint:
            raise ConfigError(f"parameter {name}: {complaint}, got {value!r}")
        return value


def _positive(x):
    return None if x > 0 else "must be positive"


def _non_negative(x):
    return None if x >= 0 else "must be >= 0"


def _non_empty(x):
    return None if len(x) > 0 else "must not be empty"


def _positive_ints(xs):
    # distinct: a length given twice (contexts: [64, 64, 256]) failed deep in a chapter's pivot of its table
    ok = all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in xs) and len(xs) > 0
    return None if ok and len(set(xs)) == len(xs) else "must be a non-empty list of distinct positive integers"


def _results_folder(preset: str) -> str | None:
    return None if preset.strip() and "/" not in preset else "must be a preset name (a folder under results_dir)"


def _known_preset(name: str) -> str | None:
    from linscale.presets import available_presets

    known = available_presets()
    return None if name in known or name.endswith((".yaml", ".yml")) else \
        f"must be a preset ({', '.join(known)}) or a .yaml file"


def _table7_preset(name: str) -> str | None:
    """A preset the accounting chapter can hold against Table 7: some of its sizes are the paper's (the cpu
    preset gave an empty comparison, and the chapter's prose read 'within nan of the paper's')."""
    if (unknown := _known_preset(name)) is not None:
        return unknown
    from linscale.presets import load_preset, paper_table7

    try:
        sizes = [str(size) for size in load_preset(name).get("sizes") or {}]
    except ConfigError as error:
        return str(error)
    table7 = list(dict.fromkeys(paper_table7()["size"].astype(str)))
    return None if set(sizes) & set(table7) else \
        f"must be a paper-scale preset, with sizes of Table 7 ({', '.join(table7)}); {name} has {', '.join(sizes)}"


_COMMON = {
    "preset": Parameter(str, "which study to show: the folder results/<preset>/ (cpu: the default study; "
                             "smoke: the 3-minute CI study)", check=_results_folder),
    "results_dir": Parameter(str, "folder holding results/<preset>/ (committed tables)", check=lambda p: None
                             if p.strip() else "must be a folder path"),
}
_ARCHS = Parameter((list, tuple), "architectures to include", choices=ARCHITECTURES, check=_non_empty)
_LOSS = Parameter(str, "which loss the laws and figures use: train_loss (as the paper) or val_loss",
                  choices=("train_loss", "val_loss"))

PARAMETERS: dict[str, dict[str, Parameter]] = {
    "architectures": {
        "archs": _ARCHS,
        "d_model": Parameter(int, "width of the demonstration models", check=_positive),
        "n_layer": Parameter(int, "depth of the demonstration models", check=_positive),
        "n_head": Parameter(int, "heads of the demonstration models (must divide d_model)", check=_positive),
        "seq_len": Parameter(int, "tokens in the equivalence demonstration", check=_positive),
        "chunk_size": Parameter(int, "chunk length of the chunked form", check=_positive),
        "contexts": Parameter((list, tuple), "context lengths for the decoding-memory figure",
                              check=_positive_ints),
        "seed": Parameter(int, "random seed of the weights and tokens", check=_non_negative),
    },
    "accounting": {
        "preset": _COMMON["preset"],
        # a study of the preset with --set overrides tabulates the grid it trained (no results needed)
        "results_dir": Parameter(str, "folder of results/<preset>/overrides.json, the --set overrides of a study "
                                      "of this preset (none: the preset as it is)",
                                 check=_COMMON["results_dir"].check),
        "reference_preset": Parameter(str, "the paper-scale preset whose accounting is checked against Table 7",
                                      check=_table7_preset),
        "context_lengths": Parameter((list, tuple), "context lengths n for the FLOPs-per-token figure",
                                     check=_positive_ints),
        "figure_size": Parameter(str, "the paper size whose FLOPs per token are plotted against n"),
    },
    "training": {**_COMMON, "archs": _ARCHS, "loss": _LOSS},
    # the stored fits of the study (one bootstrap for the whole book): no fitting knobs here
    "scaling_laws": {**_COMMON, "archs": _ARCHS},
    # the misfit probes' tables (results/probes/) read against the stored fits: the cpu study's
    "law_probes": {**_COMMON, "archs": _ARCHS},
    "downstream": {**_COMMON, "archs": _ARCHS},
    "efficiency": {"bench_dir": Parameter(str, "folder of the committed benchmark reports"),
                   "report": Parameter(str, "which committed CPU report to show: latest, or a file name in bench_dir",
                                       check=lambda r: None if r.strip() and "/" not in r else
                                       "must be 'latest' or a file name"),
                   "archs": _ARCHS,
                   "live": Parameter(bool, "also re-time on the executing machine (the committed figures stay)"),
                   "preset": Parameter(str, "live only: model shapes, each architecture at this preset's largest size",
                                       check=_results_folder),
                   "seq_lens": Parameter((list, tuple), "live only: training sequence lengths timed",
                                         check=_positive_ints),
                   "tokens_per_batch": Parameter(int, "live only: tokens per timed batch (fixed across lengths)",
                                                 check=_positive),
                   "repeats": Parameter(int, "live only: rounds (median and range shown)", check=_positive)},
    "ablations": {**_COMMON, "loss": _LOSS},
    "synthetic_language": {"preset": Parameter(str, "whose language: the data settings and training context of "
                                               "this preset", check=_results_folder),
                           "results_dir": _COMMON["results_dir"],  # the trained models' NIAH modes, when measured
                           "seed": Parameter(int, "seed of the sampled examples", check=_non_negative)},
    # no knobs for the verdicts: their rules, margins and noise are fixed in linscale.findings.rules
    "findings": dict(_COMMON),
}


def validate_parameters(chapter: str, **values) -> dict:
    """Check a chapter's parameters (the first cell after the parameters cell calls this): every
    declared name present, of the right type, with an allowed value. Returns the values."""
    if chapter not in PARAMETERS:
        raise ConfigError(f"chapter: unknown chapter {chapter!r}; expected one of {', '.join(PARAMETERS)}")
    schema = PARAMETERS[chapter]
    unknown = sorted(set(values) - set(schema))
    if unknown:
        raise ConfigError(f"chapter {chapter}: unknown parameter(s) {', '.join(unknown)}; "
                          f"expected {', '.join(schema)}")
    missing = sorted(set(schema) - set(values))
    if missing:
        raise ConfigError(f"chapter {chapter}: parameter(s) {', '.join(missing)} not set")
    checked = {name: schema[name].validate(name, value) for name, value in values.items()}
    check_together(chapter, checked)
    return checked


def check_together(chapter: str, values: dict) -> None:
    """The rules between two parameters of a chapter: the accounting chapter's ``figure_size`` is a size
    of its ``reference_preset`` (a size it lacks was reported as "size: ...", a name no reader set)."""
    if chapter == "accounting" and {"figure_size", "reference_preset"} <= set(values):
        from linscale.presets import load_preset

        sizes = [str(size) for size in load_preset(values["reference_preset"]).get("sizes") or {}]
        if str(values["figure_size"]) not in sizes:
            raise ConfigError(f"parameter figure_size: expected a size of reference_preset "
                              f"{values['reference_preset']} ({', '.join(sizes)}), got {values['figure_size']!r}")


class ChapterParameters(dict):
    """The parameter values a chapter runs with (a dict), shown in the page as a table that says which
    values were set for this run and what the chapter's defaults are: the top of every executed
    chapter tells its reader what produced it, whether it ran through ``linscale book`` or papermill."""

    def __init__(self, chapter: str, values: dict, defaults: dict | None = None):
        super().__init__(values)
        self.chapter, self.defaults = chapter, dict(defaults or {})

    def changed(self) -> list[str]:
        """Names whose value differs from the chapter's default (all of them when the defaults are unknown)."""
        return [name for name in self if name not in self.defaults or self.defaults[name] != self[name]]

    def _repr_html_(self) -> str:
        import html

        changed = set(self.changed()) if self.defaults else set()
        rows = []
        for name, value in self.items():
            note = (f"set for this run; default <code>{html.escape(_literal(self.defaults[name]))}</code>"
                    if name in changed and name in self.defaults else "set for this run" if name in changed
                    else "default" if self.defaults else "")
            rows.append(f"<tr><td><code>{html.escape(name)}</code></td>"
                        f"<td><code>{html.escape(_literal(value))}</code></td><td>{note}</td></tr>")
        # a notebook run away from its source has no defaults to compare with: say so, not "all defaults"
        summary = (f"{len(changed)} set for this run: {', '.join(sorted(changed))}" if changed
                   else "all defaults" if self.defaults else "the chapter's defaults are not known here")
        return ('<div class="linscale-parameters"><p><strong>Parameters of this run</strong> '
                f'({html.escape(summary)})</p><table class="linscale-table">'
                '<thead><tr><th>parameter</th><th>value</th><th></th></tr></thead><tbody>'
                + "".join(rows) + "</tbody></table>" + self._reading_note() + "</div>")

    def _reading_note(self) -> str:
        """For a chapter that interprets a study, run on another preset than the default: which parts of the
        page are this run's and which were written on the cpu study."""
        import html

        preset = self.get("preset")
        if self.chapter not in INTERPRETS_THE_CPU_STUDY or preset in (None, "cpu"):
            return ""
        name = html.escape(str(preset))
        return (f"<p><strong>Reading this page on the {name} study.</strong> Its numbers, tables and figures are "
                f"this run's, from the {name} study's results. The sentences around them were written on the "
                "default cpu study: where the two studies differ, a sentence that interprets a number may describe "
                "what the cpu study shows rather than this one, so read the numbers first. Passages that read numbers "
                "only the published cpu study has (probes of its grid, its seeds' history) are left out, a note "
                "in their place.</p>")

    def __repr__(self) -> str:  # plain-text front ends: one line per parameter, as Python literals
        return "\n".join(f"{name} = {_literal(value)}" for name, value in self.items())


def _literal(value: Any) -> str:
    """A parameter value as one would type it in the parameters cell."""
    return json.dumps(value) if isinstance(value, str) else repr(value)


def check_parameters(chapter: str, namespace: dict) -> ChapterParameters:
    """Check the parameters a chapter's kernel received; the first call of the cell after the
    parameters cell (``params = book.check_parameters("<chapter>", globals())``).

    Papermill only warns about a name the parameters cell does not define (``Passed unknown parameter``)
    and injects it anyway, so this looks at the kernel's namespace itself: every name defined by then
    that is not one of the chapter's documented parameters is a misspelled parameter and fails, in one
    line, however the chapter was executed (``linscale book``, papermill's CLI or API, Jupyter). Names
    IPython defines (``In``, ``Out``, ``get_ipython``, ...), private names, modules and functions (the
    cell's imports) are not parameters. Then each value is validated (:func:`validate_parameters`)."""
    import types

    if chapter not in PARAMETERS:
        raise _one_line(ConfigError(f"chapter: unknown chapter {chapter!r}; expected one of {', '.join(PARAMETERS)}"))
    schema = PARAMETERS[chapter]
    hidden: set = set()
    try:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None and shell.user_ns is namespace:
            hidden = set(shell.user_ns_hidden)
    except ImportError:
        pass
    own = _chapter_variables(chapter)  # a kernel that ran the chapter and re-runs this cell holds them
    unknown = sorted(name for name, value in namespace.items()
                     if name not in schema and name not in hidden and name not in own and not name.startswith("_")
                     and not isinstance(value, (types.ModuleType, type)) and not callable(value))
    if unknown:
        raise _one_line(ConfigError(f"chapter {chapter}: unknown parameter(s) {', '.join(unknown)}; "
                                    f"expected {', '.join(schema)}"))
    try:
        values = validate_parameters(chapter, **{name: namespace[name] for name in schema if name in namespace})
    except ConfigError as error:
        raise _one_line(error)
    try:
        defaults = default_parameters(chapter)
    except (ConfigError, OSError):  # a notebook run away from its source: no defaults to compare with
        defaults = {}
    return ChapterParameters(chapter, values, defaults)


def _one_line(error: ConfigError) -> ConfigError:
    """The error as IPython shows it: its one line, as ``linscale book`` prints it (in Jupyter and in
    papermill's report, a parameter the teacher mistyped came with a traceback through linscale/book.py)."""
    error._render_traceback_ = lambda: [f"ConfigError: {error}"]
    return error


def _chapter_variables(chapter: str) -> set[str]:
    """The names the chapter's own code cells bind, its parameters cell aside: in Jupyter, a teacher who ran
    the chapter, changed a parameter and ran the check again was told "unknown parameter(s) curve, table7, ..."
    of the chapter's own variables. Empty for a notebook run away from its source."""
    import ast

    try:
        nb = read_chapter_source(chapter)
    except (ConfigError, OSError):
        return set()
    names: set[str] = set()
    for cell in nb.cells:
        if cell.cell_type != "code" or "parameters" in cell.get("metadata", {}).get("tags", []):
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:  # a cell with IPython syntax binds nothing we need to know of
            continue
        names |= {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)}
    return names


def glue(name: str, value: Any, display: bool = False) -> None:
    """``myst_nb.glue`` with NumPy scalars turned into Python numbers (their NumPy 2 text form,
    ``np.float64(0.96)``, would break format specs in the prose). Returns nothing, so a cell ending
    in a glue shows no stray output."""
    from myst_nb import glue as myst_glue

    if isinstance(value, np.generic):
        value = value.item()
    myst_glue(name, value, display=display)


def all_of(n: int, noun: str = "") -> str:
    """A glued count of the architectures shown: "both" for two, else "all four" (``number_word``), the
    noun (singular) made plural after it; one is "the one" ("all one architectures" read as a slip).

    >>> all_of(4, "envelope"), all_of(1, "architecture")
    ('all four envelopes', 'the one architecture')
    """
    if n == 1:
        return f"the one {noun}".rstrip()
    return ("both" if n == 2 else f"all {number_word(n)}") + (f" {noun}s" if noun else "")


# ----------------------------------------------------------------------------- execution


def read_chapter_source(chapter: str, notebooks: Path = NOTEBOOKS):
    """A chapter's MyST Markdown source as an nbformat notebook (no outputs)."""
    from myst_nb.core.read import read_myst_markdown_notebook

    path = Path(notebooks) / f"{chapter}.md"
    if not path.exists():
        raise ConfigError(f"chapter: no source {path}; expected one of {', '.join(CHAPTERS)}")
    nb = read_myst_markdown_notebook(path.read_text(), path=path)
    nb.metadata.setdefault("kernelspec", {"name": "python3", "display_name": "Python 3", "language": "python"})
    tagged = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(tagged) != 1:
        raise ConfigError(f"{path}: expected exactly one cell tagged 'parameters', found {len(tagged)}")
    return nb


def _package_digest() -> bytes:
    """The content of the linscale package's code and task files: a chapter draws its numbers, rules and
    figures through it, so a change there (a verdict rule, a figure) must re-execute every chapter."""
    root = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in (".py", ".yaml", ".json")
                       and "__pycache__" not in p.parts):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.digest()


def _inputs_stamp(chapter: str, parameters: dict, source: str, inputs: list[Path]) -> str:
    digest = hashlib.sha256(source.encode())
    digest.update(_package_digest())
    digest.update(json.dumps(parameters, sort_keys=True, default=str).encode())
    for path in sorted(inputs):
        digest.update(f"{path}:{path.stat().st_size}:{path.stat().st_mtime_ns}".encode())
    return digest.hexdigest()


def _input_tables(parameters: dict, cwd: Path) -> list[Path]:
    """The files a chapter reads (for the up-to-date check): its results tables, the re-runs of the same
    study committed beside them (the findings chapter compares them: a new or changed comparison must
    re-execute it), the probes' tables (results/probes/: the downstream, findings, scaling-laws and
    law-probes chapters read them), and the committed benchmark reports for the efficiency chapter
    (likewise)."""
    folders, files = [], []
    if "preset" in parameters and "results_dir" in parameters:
        results, preset = cwd / parameters["results_dir"], parameters["preset"]
        folders += [results / preset, results / "probes"]
        for comparison in sorted((results / "reruns").glob(f"*/{preset}-comparison.json")):
            files.append(comparison)
            folders.append(comparison.parent / preset)  # the re-run's own tables, where committed
    if "bench_dir" in parameters:
        folders.append(cwd / parameters["bench_dir"])
    return files + [p for folder in folders if folder.exists() for p in folder.rglob("*") if p.is_file()]


# The chapters' kernels while they run, and whether the book is being stopped: on Ctrl-C execute_book ends
# the kernels of the chapters still executing in its threads, which then end at once (they ran to the end
# of their chapter, or the process's exit waited for them, a minute or more) and keep no failed notebook.
_RUNNING_KERNELS: "weakref.WeakSet" = weakref.WeakSet()
_STOPPING = threading.Event()


def stop_running_chapters() -> None:
    """Kill the kernels of the chapters executing now, and mark the book as stopping (see _RUNNING_KERNELS)."""
    _STOPPING.set()
    for manager in list(_RUNNING_KERNELS):
        process = getattr(getattr(manager, "provisioner", None), "process", None)
        if process is not None and process.poll() is None:
            process.kill()


def _chapter_kernel_manager() -> type:
    """jupyter_client's kernel manager, less the interrupt it sends every kernel it shuts down.

    papermill ends a chapter by asking its kernel for ``kernel_info`` and shuts the kernel down as soon
    as the reply arrives, while the kernel is still inside that request's handler; the interrupt that
    jupyter_client sends first (to stop a busy kernel) then lands in the handler, and ipykernel logs
    ``[IPKernelApp] ERROR | KeyboardInterrupt caught in kernel.`` on the console: about one chapter in
    ten, a line in the study's output that reports no error. A chapter's kernel is shut down only after
    its last cell, so there is nothing to interrupt; one that ignores the shutdown request is still
    terminated, then killed (``shutdown_wait_time``). Interrupts outside a shutdown (a cell's timeout)
    are unchanged."""
    from jupyter_client import AsyncKernelManager

    class ChapterKernelManager(AsyncKernelManager):
        async def _async_interrupt_kernel(self) -> None:
            if not self.shutting_down:
                await super()._async_interrupt_kernel()

        async def _async_launch_kernel(self, kernel_cmd, **kw) -> None:
            await super()._async_launch_kernel(kernel_cmd, **kw)
            _RUNNING_KERNELS.add(self)  # for stop_running_chapters
            if _STOPPING.is_set():  # started as the book was being stopped
                stop_running_chapters()

    return ChapterKernelManager


def run_notebook(source: Path, out: Path, parameters: dict, cwd: Path, timeout: int = 1800,
                 log_output: bool = False) -> None:
    """Execute the notebook ``source`` into ``out`` with papermill, as every chapter is executed."""
    import papermill

    papermill.execute_notebook(str(source), str(out), parameters=parameters, kernel_name="python3",
                               language="python", progress_bar=False, log_output=log_output,
                               cwd=str(cwd), execution_timeout=timeout,
                               kernel_manager_class=_chapter_kernel_manager(),
                               # the kernel's own log, not the chapter's: ipykernel 7 warns on every
                               # start that its local TCP sockets are unencrypted, a line per chapter
                               extra_arguments=["--IPKernelApp.log_level=ERROR"])


class ChapterFailed(RuntimeError):
    """A cell of a chapter raised while papermill executed it: the error in one line and where the
    executed notebook with its traceback is (papermill's own error was 150 lines of two tracebacks)."""


def execute_chapter(chapter: str, parameters: dict | None = None, out_dir: Path = CHAPTER_DIR,
                    notebooks: Path = NOTEBOOKS, cwd: Path = ROOT, force: bool = False,
                    timeout: int = 1800, log_output: bool = False,
                    progress: Callable[[str], None] | None = None) -> Path:
    """Execute one chapter with papermill into ``out_dir/<chapter>.ipynb`` and return that path.

    ``parameters`` override the defaults of the chapter's parameters cell; unknown names and bad
    values fail here, before a kernel starts. The chapter is skipped when its previous output was made
    from the same source, parameters and input tables (unless ``force``). The output appears only
    when execution succeeded (written beside it, then renamed); a failing cell raises ChapterFailed
    (papermill's error chained) and the failed notebook is kept as ``<chapter>.failed.ipynb``; a chapter
    whose kernel a Ctrl-C ended (:func:`stop_running_chapters`) raises KeyboardInterrupt and keeps none.
    ``progress``: told which of the two it was (a line).
    """
    import nbformat
    import papermill

    parameters = dict(parameters or {})
    schema = PARAMETERS.get(chapter)
    if schema is None:
        raise ConfigError(f"chapter: unknown chapter {chapter!r}; expected one of {', '.join(PARAMETERS)}")
    unknown = sorted(set(parameters) - set(schema))
    if unknown:
        raise ConfigError(f"chapter {chapter}: unknown parameter(s) {', '.join(unknown)}; "
                          f"expected {', '.join(schema)}")
    for name, value in parameters.items():
        parameters[name] = schema[name].validate(name, value)
    check_together(chapter, _effective(chapter, parameters, notebooks))

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{chapter}.ipynb"
    source = (Path(notebooks) / f"{chapter}.md").read_text() if (Path(notebooks) / f"{chapter}.md").exists() else ""
    stamp = _inputs_stamp(chapter, parameters, source, _input_tables(_effective(chapter, parameters, notebooks),
                                                                          Path(cwd)))
    if out.exists() and not force:
        try:
            if nbformat.read(out, as_version=4).metadata.get("linscale", {}).get("stamp") == stamp:
                if progress:
                    progress(f"[book] {chapter}: up to date")
                return out
        except Exception:  # an unreadable old output is simply re-made
            pass
    if progress:
        progress(f"[book] executing {chapter} {parameters or ''}".rstrip())

    nb = read_chapter_source(chapter, notebooks)
    with tempfile.TemporaryDirectory() as tmp:
        source_nb = Path(tmp) / f"{chapter}.ipynb"
        nbformat.write(nb, source_nb)
        partial = out_dir / f".{chapter}.partial.ipynb"
        try:
            run_notebook(source_nb, partial, parameters, cwd=cwd, timeout=timeout, log_output=log_output)
        except Exception as err:
            if _STOPPING.is_set():  # its kernel was ended by a Ctrl-C (stop_running_chapters): no failure of its own
                partial.unlink(missing_ok=True)
                raise KeyboardInterrupt(f"chapter {chapter} stopped") from err
            failed = out_dir / f"{chapter}.failed.ipynb"
            if partial.exists():
                os.replace(partial, failed)
            if isinstance(err, papermill.PapermillExecutionError):  # the error in a line, its traceback in the file
                first = (str(err.evalue).strip().splitlines() or [""])[0]
                raise ChapterFailed(f"chapter {chapter}: a cell raised {err.ename}: {first} (the traceback: "
                                    f"{failed if failed.exists() else 'above'})") from err
            raise
    executed = nbformat.read(partial, as_version=4)
    effective = _effective(chapter, parameters, notebooks)
    published = shows_published_study(effective, Path(cwd))
    # the flag is what the book's Sphinx extension (linscale.sphinx_study) tags the build with, for the
    # pages outside the chapters (the introduction); it is decided here, where the results' folder is known
    executed.metadata["linscale"] = {"stamp": stamp, "parameters": parameters, "shows_published_study": published}
    label_injected_parameters(executed)
    carry_parameters_into_defaults(executed, parameters)
    if not published:
        leave_out_cpu_readings(executed)
        if chapter in INTERPRETS_THE_CPU_STUDY:
            note_exercises_study(executed, *_study_of(effective))
    if not has_reruns(effective, Path(cwd)):
        leave_out_tagged(executed, READS_RERUNS)
    if not has_role_table(effective, Path(cwd)):
        leave_out_tagged(executed, READS_ROLE_TABLE)
    for ablation in untrained_ablations(effective, Path(cwd)):
        leave_out_tagged(executed, READS_ABLATION[ablation],
                         ABLATION_LEFT_OUT_NOTE.format(what=ABLATION_WHAT[ablation]))
    for arch in untrained_archs(effective, Path(cwd)):
        leave_out_tagged(executed, READS_ARCH[arch])
    entropy_known = knows_exact_entropy(effective, Path(cwd))
    leave_out_tagged(executed, WITHOUT_EXACT_ENTROPY if entropy_known else READS_EXACT_ENTROPY)
    nbformat.write(executed, partial)
    os.replace(partial, out)
    failed = out_dir / f"{chapter}.failed.ipynb"
    if failed.exists():
        failed.unlink()
    return out


INJECTED_LABEL = ("# Set for this run (injected by papermill; written into the cell above too, so that papermill "
                  "run on this notebook keeps them)")
CARRIED_LABEL = "# Parameters: the chapter's defaults, with this run's values written in (papermill overrides these)."


def _is_literal(text: str, value) -> bool:
    """Whether the Python literal ``text`` is ``value`` (a default the run did not change stays as written)."""
    import ast

    try:
        return ast.literal_eval(text.strip()) == value
    except (ValueError, SyntaxError):
        return False


def carry_parameters_into_defaults(nb, parameters: dict) -> None:
    """Write this run's values into the executed chapter's parameters cell. Papermill run on an executed
    chapter drops its injected cell and injects only what it is given, so `papermill chapter.ipynb out.ipynb
    -p loss val_loss` on a smoke study's chapter fell back to the cpu study's defaults (preset, results_dir)
    and showed the published numbers as the reader's own. Each replaced line keeps its comment and names
    the default."""
    import re

    cell = next((c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])), None)
    if cell is None or not parameters:
        return
    lines = []
    for line in cell.source.splitlines():
        match = re.match(r"^(\w+)(\s*=\s*)(.*?)(\s+#.*)?$", line)
        if match and match.group(1) in parameters and not _is_literal(match.group(3), parameters[match.group(1)]):
            name, equals, default, comment = match.groups()
            line = f"{name}{equals}{_literal(parameters[name])}{comment or '  #'} (default: {default.strip()})"
        lines.append(line)
    if lines != cell.source.splitlines():  # the head says so only where a default was replaced
        lines = [CARRIED_LABEL if line.startswith("# Parameters") else line for line in lines]
    source = "\n".join(lines)
    namespace: dict = {}
    try:  # a default written over several lines is not rewritten in place: the values then follow the cell
        exec(compile(source, "parameters", "exec"), {}, namespace)
    except SyntaxError:
        pass
    if any(namespace.get(name, object()) != value for name, value in parameters.items()):
        source = "\n".join([cell.source, "# this run's values", *(f"{n} = {_literal(v)}" for n, v in parameters.items())])
    cell.source = source


def label_injected_parameters(nb) -> None:
    """Say what papermill's injected cell is (papermill heads it with a bare ``# Parameters``): the page
    shows it, labelled, right under the defaults it replaces. It keeps its tag, so a later papermill
    run on the executed chapter replaces it rather than adding a second one."""
    for cell in nb.cells:
        if "injected-parameters" in cell.get("metadata", {}).get("tags", []):
            lines = cell.source.splitlines()
            if lines and lines[0].strip() == "# Parameters":
                lines = lines[1:]
            cell.source = "\n".join([INJECTED_LABEL, *lines])


def _study_of(parameters: dict) -> tuple[str, str]:
    """The (preset, results_dir) a chapter's parameters show; a chapter without them counts as showing the
    published study."""
    return parameters.get("preset", "cpu"), parameters.get("results_dir", "results")


def shows_published_study(parameters: dict, cwd: Path = ROOT) -> bool:
    """Whether a chapter's parameters show the published study, results/cpu of this repository (a chapter
    without the study's parameters shows no study's results and counts as showing it)."""
    preset, results_dir = _study_of(parameters)
    return preset == "cpu" and (Path(cwd) / results_dir / "cpu").resolve() == (ROOT / "results" / "cpu").resolve()


def grid_sizes_text(sizes: list[str], params_min: float, params_max: float) -> str:
    """A grid's sizes in a phrase, as the introduction quotes them: ``"five small sizes, s1 to s5, of about
    14K to 578K non-embedding parameters"``. "Small" only for a grid of CPU scale (under ten million
    parameters): the paper preset's 70M to 7B are its sizes, not small ones."""
    small = " small" if params_max < 1e7 else ""
    head = f"{number_word(len(sizes))}{small} size{'s' if len(sizes) != 1 else ''}, "
    if len(sizes) > 1:
        return head + f"{sizes[0]} to {sizes[-1]}, of about {count_text(params_min)} to {count_text(params_max)} " \
                      "non-embedding parameters"
    return head + f"{sizes[0]}, of about {count_text(params_min)} non-embedding parameters"


def study_title(preset: str, results_dir: str | Path = "results", cwd: Path = ROOT) -> str:
    """A page's name for the study it shows: ``"cpu study"`` for the repository's results/<preset>, else
    with its folder, ``"cpu study in results/reruns/X/cpu"`` (a re-run's page said "The cpu study has 24
    runs" of the re-run's runs, which read as the published study's)."""
    folder = Path(results_dir) / preset
    if (Path(cwd) / folder).resolve() == (ROOT / "results" / preset).resolve():
        return f"{preset} study"
    return f"{preset} study in {shown_path(folder)}"


def shown_path(path: str | Path) -> str:
    """``path`` as a page names it: relative to the repository where it is inside it (a book built with
    --book-dir has its results_dir made absolute, and named a re-run as /home/.../results/reruns/x/cpu, the
    builder's own checkout), else as given."""
    if Path(path).is_absolute() and Path(path).resolve().is_relative_to(ROOT):
        return str(Path(path).resolve().relative_to(ROOT))
    return str(path)


def untrained_ablations(parameters: dict, cwd: Path = ROOT) -> list[str]:
    """The ablations of :data:`READS_ABLATION` of which the study a chapter's parameters show has no runs
    (none for a chapter without the study's parameters)."""
    import pandas as pd

    if not {"preset", "results_dir"} <= set(parameters):
        return []
    folder = Path(cwd) / parameters["results_dir"] / parameters["preset"] / "ablations"
    untrained = []
    for ablation in READS_ABLATION:
        table = folder / f"{ablation}.parquet"
        if not table.exists() or pd.read_parquet(table, columns=["run_id"]).empty:
            untrained.append(ablation)
    return untrained


def untrained_archs(parameters: dict, cwd: Path = ROOT) -> list[str]:
    """The architectures of :data:`READS_ARCH` that the study a chapter's parameters show did not train
    (none for a chapter without the study's parameters, or a folder named after no preset)."""
    if not {"preset", "results_dir"} <= set(parameters):
        return []
    trained = _trained_archs(parameters["preset"], parameters["results_dir"], cwd)
    return [] if trained is None else [arch for arch in READS_ARCH if arch not in trained]


def knows_exact_entropy(parameters: dict, cwd: Path = ROOT) -> bool:
    """Whether the language of the study a chapter's parameters show has an exact entropy rate: the synthetic
    language has (design.language_entropy), real text (its recorded --set overrides included) has not. A
    chapter without the study's parameters, or a folder named after no preset, counts as having one."""
    if not {"preset", "results_dir"} <= set(parameters):
        return True
    return not trains_on_text(parameters["preset"], parameters["results_dir"], cwd)


def budget_overrides(preset: str, results_dir: str | Path = "results", cwd: Path = ROOT) -> tuple[str, ...]:
    """The ``--set`` overrides of the study in ``results_dir/preset`` that set a token budget other than its
    preset's (none where the preset's YAML sets them all, or the folder is named after no preset): the text
    study made with ``--set train.tokens=4e5`` read that "the text preset sets them in its YAML"."""
    from linscale.presets import split_size
    from linscale.results import study_overrides, study_preset
    from linscale.train.settings import resolve_preset

    def budgets(grid: dict) -> dict:
        train = grid.get("train") or {}
        return {str(size): float({**train, **split_size(size, shape)[1]}["tokens"])
                for size, shape in (grid.get("sizes") or {}).items()}

    folder = Path(cwd) / results_dir
    try:
        overrides = study_overrides(preset, folder)
        changed = bool(overrides) and budgets(study_preset(preset, folder)) != budgets(resolve_preset(preset))
    except ConfigError:
        return ()
    return tuple(o for o in overrides if "tokens" in o.split("=")[0] or o.startswith("sizes")) if changed else ()


def _trained_archs(preset: str, results_dir: str, cwd: Path = ROOT) -> list[str] | None:
    """The architectures the study in ``results_dir/<preset>`` trained (its preset with its recorded --set
    overrides); None for a folder named after no preset."""
    from linscale.results import study_preset

    try:
        return list(study_preset(preset, Path(cwd) / results_dir).get("archs") or [])
    except ConfigError:
        return None


def has_reruns(parameters: dict, cwd: Path = ROOT) -> bool:
    """Whether the study a chapter's parameters show has re-runs committed beside it (a chapter without
    the study's parameters counts as showing the published study, which has)."""
    from linscale.compare import rerun_comparisons

    preset, results_dir = _study_of(parameters)
    return bool(rerun_comparisons(Path(cwd) / results_dir, preset))


def has_role_table(parameters: dict, cwd: Path = ROOT) -> bool:
    """Whether the study a chapter's parameters show wrote a role table (a chapter without the study's
    parameters counts as showing the published study, which has)."""
    preset, results_dir = _study_of(parameters)
    return (Path(cwd) / results_dir / preset / "roles.parquet").exists()


def leave_out_cpu_readings(nb) -> None:
    """Replace the markdown cells tagged READS_THE_CPU_STUDY by LEFT_OUT_NOTE, one note for each run of
    neighbouring tagged cells, LEFT_OUT_AGAIN_NOTE after the first (for a page that shows another study
    than the published one)."""
    leave_out_tagged(nb, READS_THE_CPU_STUDY, LEFT_OUT_NOTE, LEFT_OUT_AGAIN_NOTE)


def exercises_note(preset: str, results_dir: str) -> str:
    """What a page of another study says under its exercises' heading: they were written for the published
    study, and the options that point their `linscale` commands at the study the page shows."""
    options = [f"--preset {preset}"] if preset != "cpu" else []
    results_dir = shown_path(results_dir)  # the commands run in the repository
    if results_dir != "results" or not options:  # "results" of the cpu preset: shown from another folder
        options.append(f"--results-dir {results_dir}")
    return ("*These exercises were written for the published study (`results/cpu`): their commands run on it, and "
            "the figures they tell you to expect are its figures. To run one on the study this page shows, add "
            f"`{' '.join(options)}` to its `linscale book` or `linscale study` command, and expect this study's "
            "own numbers.*")


def note_exercises_study(nb, preset: str, results_dir: str) -> None:
    """Put exercises_note under the chapter's EXERCISES_HEADING (a chapter without exercises is left as it is)."""
    for cell in nb.cells:
        lines = cell.source.splitlines() if cell.cell_type == "markdown" else []
        for i, line in enumerate(lines):
            if line.strip() == EXERCISES_HEADING:
                cell.source = "\n".join([*lines[:i + 1], "", exercises_note(preset, results_dir), *lines[i + 1:]])
                return


def leave_out_tagged(nb, tag: str, note: str | None = None, later_note: str | None = None) -> None:
    """Drop the markdown cells tagged ``tag``; with a ``note``, one note in place of each run of
    neighbouring dropped cells (``later_note``, where given, in place of every run after the first), where
    code cells whose source is hidden and that show no output (at most glued values, which the page shows
    elsewhere) do not part a run. Notes that end up neighbours (two left-out passages, once a cell between
    them is dropped for another tag) are one note."""
    import nbformat

    def shows_nothing(cell):
        hidden = {"hide-input", "remove-input", "remove-cell"} & set(cell.get("metadata", {}).get("tags", []))
        return (cell.cell_type == "code" and bool(hidden)
                and all("scrapbook" in out.get("metadata", {}) for out in cell.get("outputs", [])))

    def noted(cells):  # whether the last cell with something to read is a note
        for cell in reversed(cells):
            if cell.get("metadata", {}).get("linscale_left_out"):
                return True
            if not shows_nothing(cell):
                return False
        return False

    cells = []
    for cell in nb.cells:
        if cell.cell_type == "markdown" and tag in cell.get("metadata", {}).get("tags", []):
            if note is not None and not noted(cells):
                first = not any(c.get("metadata", {}).get("linscale_left_out") for c in cells)
                made = nbformat.v4.new_markdown_cell(note if first or later_note is None else later_note)
                made.metadata["linscale_left_out"] = True
                cells.append(made)
        elif not (cell.get("metadata", {}).get("linscale_left_out") and noted(cells)):
            cells.append(cell)
    nb.cells = cells


def default_parameters(chapter: str, notebooks: Path = NOTEBOOKS) -> dict:
    """The defaults of a chapter's parameters cell (evaluated: it holds only literal assignments)."""
    nb = read_chapter_source(chapter, notebooks)
    cell = next(c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", []))
    namespace: dict = {}
    exec(compile(cell.source, f"{chapter}:parameters", "exec"), {}, namespace)  # literals only, our own file
    return {k: v for k, v in namespace.items() if not k.startswith("_")}


def _effective(chapter: str, parameters: dict, notebooks: Path) -> dict:
    try:
        return {**default_parameters(chapter, notebooks), **parameters}
    except ConfigError:
        return parameters


# the study's own parameters, which `linscale book` passes to every chapter that declares them
STUDY_PARAMETERS = ("preset", "results_dir")


# the chapters that show the study's trained runs: their ``archs`` default to the study's architectures
SHOWS_TRAINED_RUNS = tuple(c for c, schema in PARAMETERS.items() if {"archs", "preset", "results_dir"} <= set(schema))


def study_archs(parameters: dict, notebooks: Path = NOTEBOOKS, cwd: Path = ROOT) -> list[str] | None:
    """The architectures the study of ``parameters`` (preset, results_dir) trained, in the chapters'
    order, where they are not the chapters' default four: the ``archs`` of the chapters that show
    trained runs (:data:`SHOWS_TRAINED_RUNS`), unless given. A preset (or ``--set archs=[...]``) of two
    architectures is then shown as such, where the chapters asked for the four and stopped on the
    absent ones. None: the default (also for a results folder named after no preset)."""
    defaults = default_parameters(SHOWS_TRAINED_RUNS[0], notebooks)
    values, default = {**defaults, **parameters}, defaults["archs"]
    trained = _trained_archs(values["preset"], values["results_dir"], cwd)  # None: no preset of that name
    if not trained or set(trained) == set(default):
        return None
    return [a for a in default if a in trained] + [a for a in trained if a not in default]


def execute_book(parameters: dict | None = None, chapters=CHAPTERS, force: bool = False, workers: int = 1,
                 **kwargs) -> list[Path]:
    """Execute every chapter; ``parameters`` apply to each chapter that declares them (e.g. preset).

    With ``workers`` > 1, chapters run in that many kernels at once (a kernel's start-up and imports are
    mostly waiting, so two overlap well on two cores). Returns the executed notebooks in chapter order;
    the first failure is raised after the others finished.
    """
    parameters = parameters or {}
    # every name and value checked before the first chapter runs: a typo must neither pass silently (a
    # name no chapter declares) nor fail only after the chapters before it were executed
    for name, value in parameters.items():
        owners = [chapter for chapter in chapters if name in PARAMETERS.get(chapter, {})]
        where = f"chapter {chapters[0]}" if len(chapters) == 1 else f"any of the chapters {', '.join(chapters)}"
        if not owners and name not in STUDY_PARAMETERS:  # --preset, --results-dir: for the chapters that read results
            declared = sorted({n for chapter in chapters for n in PARAMETERS.get(chapter, {})})
            raise ConfigError(f"parameter {name}: not a parameter of {where}; expected one of {', '.join(declared)}")
        if not owners:  # a study named for chapters that read none (it was ignored without a word)
            raise ConfigError(f"--{name.replace('_', '-')}: {where} reads no study's results; drop it")
        for chapter in owners:
            PARAMETERS[chapter][name].validate(name, value)
    for chapter in chapters:
        check_together(chapter, _effective(chapter, {k: v for k, v in parameters.items() if k in PARAMETERS[chapter]},
                                           Path(kwargs.get("notebooks", NOTEBOOKS))))
    trained = None if "archs" in parameters else study_archs(parameters, Path(kwargs.get("notebooks", NOTEBOOKS)),
                                                             Path(kwargs.get("cwd", ROOT)))

    def own_parameters(chapter: str) -> dict:
        own = {k: v for k, v in parameters.items() if k in PARAMETERS[chapter]}
        return {**own, "archs": trained} if trained and chapter in SHOWS_TRAINED_RUNS else own

    for chapter in chapters:
        check_results(own_parameters(chapter), [chapter], cwd=Path(kwargs.get("cwd", ROOT)))

    def run(chapter: str) -> Path:
        own = own_parameters(chapter)
        return execute_chapter(chapter, own, force=force, progress=lambda line: print(line, flush=True), **kwargs)

    _STOPPING.clear()
    if workers <= 1:
        return [run(chapter) for chapter in chapters]
    from concurrent.futures import ThreadPoolExecutor, wait

    pool = ThreadPoolExecutor(max_workers=workers)
    futures = [pool.submit(run, chapter) for chapter in chapters]
    try:
        pool.shutdown(wait=True)
    except KeyboardInterrupt:  # Ctrl-C: the queued chapters never start (they all ran before it exited)
        pool.shutdown(wait=False, cancel_futures=True)
        stop_running_chapters()  # and the running ones end now
        try:
            wait(futures, timeout=30)  # their threads end once their kernels are gone: seconds
        finally:
            _STOPPING.clear()  # a process that goes on (a notebook, the tests) executes chapters again
        raise
    return [future.result() for future in futures]


def check_results(parameters: dict, chapters, cwd: Path = ROOT) -> None:
    """Fail in one line, before any kernel starts, when a chapter would read a results folder that does
    not exist (for instance ``results/cpu`` before the default study was run and committed)."""
    from linscale.presets import preset_argument

    for chapter in chapters:
        if "results_dir" not in PARAMETERS[chapter] or chapter in NEEDS_NO_RUNS:
            continue
        values = {**default_parameters(chapter), **{k: v for k, v in parameters.items() if k in PARAMETERS[chapter]}}
        folder = Path(cwd) / values["results_dir"] / values["preset"]
        source = study_data_source(values["preset"], values["results_dir"], cwd)
        if chapter == "synthetic_language":  # a preset of real text has no synthetic language to show
            if source not in (None, "synthetic"):
                raise ConfigError(f"parameter preset: {values['preset']} trains on {source} (data.source); chapter "
                                  f"synthetic_language shows the synthetic language of a preset such as cpu or smoke")
        # a text study has no such scores: its kernel said "run study"
        if chapter in READS_SUITES and not (folder / "eval.parquet").exists() and source not in (None, "synthetic"):
            raise ConfigError(f"parameter preset: {values['preset']} trains on {source} (data.source); chapter "
                              f"{chapter} reads the linscale suites' scores (eval.parquet), which need the "
                              f"synthetic language; expected --chapter of {', '.join(toc_chapters(TEXT_TOC))} "
                              f"(the book of a study of text)")
        given = preset_argument(values["preset"])  # a file of one's own by its path, as linscale study takes it
        if not (folder / "runs.parquet").exists():
            from linscale.presets import available_presets

            known = available_presets()
            if values["preset"] not in known:  # the advice was to run `linscale study --preset nosuch`
                raise ConfigError(f"{folder}: no results of {values['preset']!r}, and no preset has that name "
                                  f"(presets: {', '.join(known)}; a file of your own by its path)")
            # results_dir given as the study's own folder (results/reruns/X/cpu) or a folder of re-runs: say which
            # folder it means, not `linscale study` (a teacher who only reads committed results)
            given_dir = Path(cwd) / values["results_dir"]
            meant = [str(Path(values["results_dir"]).parent)] if (given_dir / "runs.parquet").exists() else sorted(
                str(Path(values["results_dir"]) / sub.parent.parent.name)
                for sub in given_dir.glob(f"*/{values['preset']}/runs.parquet"))
            if meant:
                raise ConfigError(f"parameter results_dir: {values['results_dir']} holds no {values['preset']}/ "
                                  f"folder; expected the folder above a study's tables, e.g. {', '.join(meant[:3])}")
            raise ConfigError(f"{folder}: no results of preset {values['preset']!r} (run `linscale study --preset "
                              f"{given}` first, or choose another with --preset)")
        # what a partial study lacks, said here: inside the kernel it was a KeyError, an IndexError or a
        # division by zero several cells in
        if chapter in READS_FITS and not (folder / "fits" / "status.csv").exists():
            raise ConfigError(f"{folder / 'fits'}: no fitted laws (chapter {chapter} reads them; run `linscale "
                              f"study --preset {given} --results-dir {values['results_dir']} "
                              f"--stages fits` first)")
        if "archs" in values:
            from linscale.results import read_table

            present = set(read_table(folder / "runs.parquet", ("arch",))["arch"].astype(str))  # one line if damaged
            absent = [arch for arch in values["archs"] if arch not in present]
            if absent:
                raise ConfigError(f"parameter archs: no runs of {', '.join(absent)} in {folder / 'runs.parquet'} "
                                  f"(it has {', '.join(a for a in ARCHITECTURES if a in present)})")


def study_data_source(preset: str, results_dir: str | Path = "results", cwd: Path = ROOT) -> str | None:
    """What the study in ``results_dir/preset`` trains on (``data.source``): its preset with the ``--set``
    overrides recorded beside its tables (a preset of one's own with ``--set data.source=text`` trains on
    text). None when no preset has that name: a results folder may be named otherwise."""
    from linscale.results import study_preset

    try:
        return (study_preset(preset, Path(cwd) / results_dir).get("data") or {}).get("source", "synthetic")
    except ConfigError:
        return None


def trains_on_text(preset: str, results_dir: str | Path = "results", cwd: Path = ROOT) -> bool:
    """Whether the study in ``results_dir/preset`` trains on real text (:func:`study_data_source`); a folder
    named after no preset counts as the synthetic language's."""
    return study_data_source(preset, results_dir, cwd) not in (None, "synthetic")


# the chapters that read a study's folder only for its --set overrides, and run from the preset without one
NEEDS_NO_RUNS = ("accounting",)
# the chapters that read the study's stored fits (results/<preset>/fits/)
READS_FITS = ("training", "scaling_laws", "law_probes", "findings")
# the chapters that read the linscale suites' scores (results/<preset>/eval.parquet): none on real text
READS_SUITES = ("downstream", "ablations", "findings")
# The table of contents of a book on a study of real text: the chapters above that need no synthetic language
TEXT_TOC = BOOK / "_toc_text.yml"


def corpus_phrase(data: dict) -> str:
    """What a study trained on, in words, from its preset's ``data`` mapping."""
    source = data.get("source", "synthetic")
    if source == "synthetic":
        return "the synthetic language"
    if data.get("tokenizer"):
        return f"real text, {data.get('path')} (data.path), in the tokens of {data['tokenizer']} (data.tokenizer)"
    from linscale.data.keys import keys_of

    vocab = data.get("vocab_size") or keys_of("text")["vocab_size"].default
    return f"real text, {data.get('path')} (data.path), in a byte-level BPE of {vocab:,} tokens trained on it"


def study_toc(preset: str | None, results_dir: str | Path | None = None, cwd: Path = ROOT) -> Path:
    """The table of contents of the book on the study ``results_dir/preset`` (the published study's when
    ``preset`` is None): :data:`TEXT_TOC` where it trains on text (:func:`trains_on_text`), else the full
    book's."""
    if preset is not None and trains_on_text(preset, results_dir or "results", cwd):
        return TEXT_TOC
    return BOOK / "_toc.yml"


# ----------------------------------------------------------------------------- build and check


def copy_sources(root: Path) -> Path:
    """A copy of the book's sources (``book/`` without executed chapters or builds, and ``_config.yml``)
    under ``root``, to execute and build a book there without touching the repository's."""
    root = Path(root)
    shutil.copytree(BOOK, root / "book", ignore=shutil.ignore_patterns("chapters", "_build"), dirs_exist_ok=True)
    shutil.copy(ROOT / "_config.yml", root / "_config.yml")
    return root


def book_root(book_dir: Path | str | None, *parameter_sets: dict) -> Path:
    """Where a book is executed and built: the repository, or a copy of its sources under ``book_dir``
    (:func:`copy_sources`), so that showing another study leaves the repository's book/chapters and
    _build/html as they are. The chapters' kernels still run in the repository, so a relative
    ``results_dir`` in ``parameter_sets`` is made absolute (in place) for the copy."""
    if book_dir is None:
        return ROOT
    root = copy_sources(Path(book_dir))
    for values in parameter_sets:
        if values.get("results_dir"):
            values["results_dir"] = str(Path(values["results_dir"]).resolve())
    return root


class BookBuildFailed(RuntimeError):
    """Jupyter Book stopped on a warning (-W): the warnings are its own output, this names the step."""


def build_html(root: Path = ROOT, all_pages: bool = True, toc: Path = BOOK / "_toc.yml") -> Path:
    """Render the executed chapters with Jupyter Book 1.x into ``<root>/_build/html``.

    Equivalent to ``jupyter-book build book --config _config.yml --path-output . -W --keep-going --all``
    run in ``root``: the top-level ``_config.yml`` configures the book whose sources (``_toc.yml``,
    intro, bibliography, executed chapters) are in ``book/``. Warnings are errors. ``toc``: which of
    ``book/``'s tables of contents (by its file name; :func:`study_toc`).

    Quiet (``-q``): Sphinx's warnings still reach stderr, but not its hundred lines of status nor Jupyter
    Book's banner, which said where the pages are (the caller prints that in a line); on a failure the
    banner's output is printed too.

    The build ends with this process (:func:`linscale.processes.end_with_parent`): a `linscale book` killed
    outright left it writing ``_build/html`` for seconds, racing a re-run started at once.
    """
    cmd = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()", "build", "book",
           "--config", "_config.yml", "--path-output", ".", "-W", "--keep-going", "-q",
           "--toc", str(Path(root) / "book" / Path(toc).name)]
    if all_pages:
        cmd.append("--all")
    parent = os.getpid()
    proc = subprocess.run(cmd, cwd=root, stdout=subprocess.PIPE, text=True, preexec_fn=lambda: end_with_parent(parent))
    if proc.returncode:
        sys.stderr.write(proc.stdout or "")
        raise BookBuildFailed(f"the HTML build failed (jupyter-book exit {proc.returncode}); its warnings, "
                              "errors with -W, are printed above")
    return Path(root) / "_build" / "html"


def check_html(html_dir: Path = HTML_DIR, chapters=CHAPTERS, min_figures: dict | None = None) -> list[str]:
    """Problems in the built book (an empty list when it is sound): each chapter page present; no
    error output in any cell (tracebacks, stderr); every local link and image resolving to a file
    (and anchor); at least ``min_figures[chapter]`` images per chapter (1 by default)."""
    from urllib.parse import unquote, urlparse

    from bs4 import BeautifulSoup

    html_dir = Path(html_dir)
    problems: list[str] = []
    pages = sorted(html_dir.rglob("*.html"))
    if not pages:
        return [f"{html_dir}: no HTML pages"]
    ids_cache: dict[Path, set] = {}

    def ids_of(page: Path) -> set:
        if page not in ids_cache:
            soup = BeautifulSoup(page.read_text(errors="replace"), "html.parser")
            ids_cache[page] = {tag["id"] for tag in soup.find_all(id=True)}
        return ids_cache[page]

    for chapter in chapters:
        page = html_dir / "chapters" / f"{chapter}.html"
        if not page.exists():
            problems.append(f"chapter {chapter}: page {page.relative_to(html_dir)} missing")
            continue
        soup = BeautifulSoup(page.read_text(errors="replace"), "html.parser")
        figures = [img for img in soup.select("div.cell_output img, figure img")]
        wanted = (min_figures or {}).get(chapter, 1)
        if len(figures) < wanted:
            problems.append(f"chapter {chapter}: {len(figures)} figure(s), expected at least {wanted}")
        for selector in ("div.output.traceback", "div.output.error", "div.output.stderr", ".ansi-red-fg"):
            if soup.select(selector):
                problems.append(f"chapter {chapter}: error output ({selector}) in a cell")
        if "Traceback (most recent call last)" in soup.get_text():
            problems.append(f"chapter {chapter}: a traceback in the page")
    for page in pages:
        if "_static" in page.parts or "_sources" in page.parts:
            continue
        soup = BeautifulSoup(page.read_text(errors="replace"), "html.parser")
        for raw in raw_output(soup):
            problems.append(f"{page.relative_to(html_dir)}: raw output in the page: {raw}")
        refs = [("link", a.get("href")) for a in soup.find_all("a")] + \
               [("image", img.get("src")) for img in soup.find_all("img")]
        for kind, ref in refs:
            if not ref or ref.startswith(("mailto:", "javascript:", "data:")):
                continue
            url = urlparse(ref)
            if url.scheme or url.netloc:
                continue  # external: not checked offline
            target = page if not url.path else (page.parent / unquote(url.path)).resolve()
            if url.path and target.is_dir():
                target = target / "index.html"
            rel = page.relative_to(html_dir)
            if not target.exists():
                problems.append(f"{rel}: broken {kind} {ref}")
            elif url.fragment and target.suffix == ".html" and unquote(url.fragment) not in ids_of(target):
                problems.append(f"{rel}: broken anchor {ref}")
    return problems


# What a reader must never see in a page (outside code listings): Python reprs, tracebacks, error text,
# and paths with a placeholder swallowed as an HTML tag ("results/<preset>/" rendered as "results//").
RAW_OUTPUT = (r"Traceback \(most recent call last\)", r"\bFitAttempt\(", r"\b[A-Z]\w*(Error|Exception): ",
              r"<[\w.]+ object at 0x[0-9a-f]+>", r"\bnp\.(float|int)\d*\(", r"\w//\w",
              r"\b[A-Z]\w+\((\w+=|not possible)")


def raw_output(soup) -> list[str]:
    """Raw output in a page's visible text, code listings left out (an empty list when there is none)."""
    import copy
    import re

    soup = copy.copy(soup)  # a deep copy: the caller's soup keeps its code listings
    for tag in soup.select("pre, code, script, style, .highlight, div.cell_input, head, nav, footer"):
        tag.decompose()
    text = soup.get_text(" ")
    found = []
    for pattern in RAW_OUTPUT:
        match = re.search(pattern, text)
        if match:
            found.append(repr(text[max(0, match.start() - 30):match.end() + 40].strip()))
    return found


def toc_chapters(toc: Path = BOOK / "_toc.yml") -> list[str]:
    """The chapters the table of contents lists (file: chapters/<name>), in order."""
    import yaml

    entries = []

    def walk(node):
        if isinstance(node, dict):
            f = node.get("file", "")
            if f.startswith("chapters/"):
                entries.append(f.split("/", 1)[1].removesuffix(".ipynb"))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(yaml.safe_load(Path(toc).read_text()))
    return entries
