"""The book: parameterised chapters executed by papermill, rendered by Jupyter Book 1.x.

Pipeline (``linscale book``; the last stage of ``linscale study``)::

    notebooks/<chapter>.md  --(MyST-NB reader)-->  .ipynb  --(papermill, parameters)-->
    book/chapters/<chapter>.ipynb  --(jupyter-book build book --config _config.yml, -W, execution off)-->
    _build/html/

* The chapter sources are MyST Markdown notebooks (text, reviewable diffs); they are converted to
  .ipynb with MyST-NB's own reader, which is what Jupyter Book uses, so nothing else is needed.
* Each chapter has one cell tagged ``parameters``; its names, types and allowed values are declared
  once in :data:`PARAMETERS`, checked before papermill starts (:func:`execute_chapter`) and again in the
  chapter's first cell (:func:`validate_parameters`), so a typo fails in one clear line.
* Executed chapters carry a stamp (source, parameters, input tables); an unchanged chapter is not
  re-executed, so ``linscale book`` after a finished study only rebuilds the HTML.
* The HTML build renders stored outputs (``execute_notebooks: off``) with warnings as errors, so a
  missing glue key, a broken reference or a failing notebook stops the build.

Re-running one chapter with new parameters::

    linscale book --chapter scaling_laws -p bootstrap 500 -p loss val_loss
    # or, with papermill's own CLI on a converted notebook:
    papermill book/chapters/scaling_laws.ipynb out.ipynb -p bootstrap 500
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from linscale.config import ARCHITECTURES, ConfigError

ROOT = Path(__file__).resolve().parent.parent  # the repository (editable install)
NOTEBOOKS = ROOT / "notebooks"
BOOK = ROOT / "book"
CHAPTER_DIR = BOOK / "chapters"
HTML_DIR = ROOT / "_build" / "html"

# The book's chapters in reading order (notebooks/<name>.md).
CHAPTERS = ("architectures", "accounting", "training", "scaling_laws", "downstream", "efficiency",
            "ablations", "findings")


# Parameters for the smoke study (CI): the committed results/smoke/ tables, small live measurements.
SMOKE_PARAMETERS = {"preset": "smoke", "bootstrap": 20, "seq_lens": [64, 128, 256], "contexts": [32, 128, 512],
                    "tokens_per_batch": 512, "repeats": 2}
# Figures each chapter must show in the built HTML (the CI check).
MIN_FIGURES = {"architectures": 1, "accounting": 1, "training": 3, "scaling_laws": 2, "downstream": 6,
               "efficiency": 2, "ablations": 4, "findings": 0}


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
    ok = all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in xs) and len(xs) > 0
    return None if ok else "must be a non-empty list of positive integers"


def _results_folder(preset: str) -> str | None:
    return None if preset.strip() and "/" not in preset else "must be a preset name (a folder under results_dir)"


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
        "reference_preset": Parameter(str, "the paper-scale preset whose accounting is checked against Table 7"),
        "context_lengths": Parameter((list, tuple), "context lengths n for the FLOPs-per-token figure",
                                     check=_positive_ints),
        "figure_size": Parameter(str, "the paper size whose FLOPs per token are plotted against n"),
    },
    "training": {**_COMMON, "archs": _ARCHS, "loss": _LOSS},
    "scaling_laws": {**_COMMON, "archs": _ARCHS, "loss": _LOSS,
                     "bootstrap": Parameter(int, "bootstrap resamples over runs for the 95% intervals",
                                            check=_non_negative),
                     "seed": Parameter(int, "seed of the bootstrap", check=_non_negative),
                     "holdout": Parameter(str, "what the extrapolation check holds out: the largest model "
                                          "size or the top compute decade", choices=("largest_size", "top_decade"))},
    "downstream": {**_COMMON, "archs": _ARCHS},
    "efficiency": {"preset": Parameter(str, "model shapes: each architecture at this preset's largest size",
                                       check=_results_folder),
                   "archs": _ARCHS,
                   "seq_lens": Parameter((list, tuple), "training sequence lengths timed", check=_positive_ints),
                   "contexts": Parameter((list, tuple), "decoding context lengths timed", check=_positive_ints),
                   "tokens_per_batch": Parameter(int, "tokens per timed batch (fixed across lengths)",
                                                 check=_positive),
                   "repeats": Parameter(int, "timed repetitions (median reported)", check=_positive),
                   "bench_dir": Parameter(str, "folder of committed benchmark results (GPU kernel figures)")},
    "ablations": {**_COMMON, "loss": _LOSS},
    "findings": {**_COMMON, "loss": _LOSS,
                 "bootstrap": Parameter(int, "bootstrap resamples for the intervals behind each verdict (>= 2)",
                                        check=lambda b: None if b >= 2 else "must be at least 2"),
                 "seed": Parameter(int, "seed of the bootstrap", check=_non_negative),
                 "tolerance": Parameter((float, type(None)), "accuracy differences smaller than this (absolute) "
                                        "count as no difference; None: each metric's seed noise, measured by the "
                                        "seeds ablation (0.005 when the study has none)",
                                        check=lambda t: None if t is None or 0 <= t < 1 else "must be in [0, 1)"),
                 "loss_tolerance": Parameter((float, type(None)), "relative loss differences smaller than this "
                                             "count as no difference; None: the seed noise measured by the seeds "
                                             "ablation (0.005 when the study has none)",
                                             check=lambda t: None if t is None or 0 <= t < 1 else "must be in [0, 1)")},
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
    return {name: schema[name].validate(name, value) for name, value in values.items()}


def glue(name: str, value: Any, display: bool = False) -> None:
    """``myst_nb.glue`` with NumPy scalars turned into Python numbers (their NumPy 2 text form,
    ``np.float64(0.96)``, would break format specs in the prose). Returns nothing, so a cell ending
    in a glue shows no stray output."""
    from myst_nb import glue as myst_glue

    if isinstance(value, np.generic):
        value = value.item()
    myst_glue(name, value, display=display)


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


def _inputs_stamp(chapter: str, parameters: dict, source: str, inputs: list[Path]) -> str:
    digest = hashlib.sha256(source.encode())
    digest.update(json.dumps(parameters, sort_keys=True, default=str).encode())
    for path in sorted(inputs):
        digest.update(f"{path}:{path.stat().st_size}:{path.stat().st_mtime_ns}".encode())
    return digest.hexdigest()


def _input_tables(parameters: dict, cwd: Path) -> list[Path]:
    """The results files a chapter reads (for the up-to-date check)."""
    if "preset" not in parameters or "results_dir" not in parameters:
        return []
    folder = cwd / parameters["results_dir"] / parameters["preset"]
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def execute_chapter(chapter: str, parameters: dict | None = None, out_dir: Path = CHAPTER_DIR,
                    notebooks: Path = NOTEBOOKS, cwd: Path = ROOT, force: bool = False,
                    timeout: int = 1800, log_output: bool = False) -> Path:
    """Execute one chapter with papermill into ``out_dir/<chapter>.ipynb`` and return that path.

    ``parameters`` override the defaults of the chapter's parameters cell; unknown names and bad
    values fail here, before a kernel starts. The chapter is skipped when its previous output was made
    from the same source, parameters and input tables (unless ``force``). The output appears only
    when execution succeeded (written beside it, then renamed); a failing cell raises
    ``papermill.PapermillExecutionError`` and the failed notebook is kept as ``<chapter>.failed.ipynb``.
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

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{chapter}.ipynb"
    source = (Path(notebooks) / f"{chapter}.md").read_text() if (Path(notebooks) / f"{chapter}.md").exists() else ""
    stamp = _inputs_stamp(chapter, parameters, source, _input_tables(_effective(chapter, parameters, notebooks),
                                                                          Path(cwd)))
    if out.exists() and not force:
        try:
            if nbformat.read(out, as_version=4).metadata.get("linscale", {}).get("stamp") == stamp:
                return out
        except Exception:  # an unreadable old output is simply re-made
            pass

    nb = read_chapter_source(chapter, notebooks)
    with tempfile.TemporaryDirectory() as tmp:
        source_nb = Path(tmp) / f"{chapter}.ipynb"
        nbformat.write(nb, source_nb)
        partial = out_dir / f".{chapter}.partial.ipynb"
        try:
            papermill.execute_notebook(str(source_nb), str(partial), parameters=parameters, kernel_name="python3",
                                       language="python", progress_bar=False, log_output=log_output,
                                       cwd=str(cwd), execution_timeout=timeout)
        except Exception:
            if partial.exists():
                os.replace(partial, out_dir / f"{chapter}.failed.ipynb")
            raise
    executed = nbformat.read(partial, as_version=4)
    executed.metadata["linscale"] = {"stamp": stamp, "parameters": parameters}
    for cell in executed.cells:  # papermill's injected overrides: kept, collapsed under the defaults
        tags = cell.get("metadata", {}).get("tags", [])
        if "injected-parameters" in tags and "hide-input" not in tags:
            tags.append("hide-input")
    nbformat.write(executed, partial)
    os.replace(partial, out)
    failed = out_dir / f"{chapter}.failed.ipynb"
    if failed.exists():
        failed.unlink()
    return out


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


def execute_book(parameters: dict | None = None, chapters=CHAPTERS, force: bool = False, workers: int = 1,
                 **kwargs) -> list[Path]:
    """Execute every chapter; ``parameters`` apply to each chapter that declares them (e.g. preset).

    With ``workers`` > 1, chapters run in that many kernels at once (a kernel's start-up and imports are
    mostly waiting, so two overlap well on two cores). Returns the executed notebooks in chapter order;
    the first failure is raised after the others finished.
    """
    parameters = parameters or {}
    check_results(parameters, chapters, cwd=Path(kwargs.get("cwd", ROOT)))

    def run(chapter: str) -> Path:
        own = {k: v for k, v in parameters.items() if k in PARAMETERS[chapter]}
        print(f"[book] executing {chapter} {own or ''}", flush=True)
        return execute_chapter(chapter, own, force=force, **kwargs)

    if workers <= 1:
        return [run(chapter) for chapter in chapters]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(run, chapter) for chapter in chapters]
    return [future.result() for future in futures]


def check_results(parameters: dict, chapters, cwd: Path = ROOT) -> None:
    """Fail in one line, before any kernel starts, when a chapter would read a results folder that does
    not exist (for instance ``results/cpu`` before the default study was run and committed)."""
    for chapter in chapters:
        if "results_dir" not in PARAMETERS[chapter]:
            continue
        values = {**default_parameters(chapter), **{k: v for k, v in parameters.items() if k in PARAMETERS[chapter]}}
        folder = Path(cwd) / values["results_dir"] / values["preset"]
        if not (folder / "runs.parquet").exists():
            raise ConfigError(f"{folder}: no results of preset {values['preset']!r} (run `linscale study --preset "
                              f"{values['preset']}` first, or choose another with --preset)")


# ----------------------------------------------------------------------------- build and check


def copy_sources(root: Path) -> Path:
    """A copy of the book's sources (``book/`` without executed chapters or builds, and ``_config.yml``)
    under ``root``, to execute and build a book there without touching the repository's."""
    root = Path(root)
    shutil.copytree(BOOK, root / "book", ignore=shutil.ignore_patterns("chapters", "_build"), dirs_exist_ok=True)
    shutil.copy(ROOT / "_config.yml", root / "_config.yml")
    return root


def build_html(root: Path = ROOT, all_pages: bool = True) -> Path:
    """Render the executed chapters with Jupyter Book 1.x into ``<root>/_build/html``.

    Equivalent to ``jupyter-book build book --config _config.yml --path-output . -W --keep-going --all``
    run in ``root``: the top-level ``_config.yml`` configures the book whose sources (``_toc.yml``,
    intro, bibliography, executed chapters) are in ``book/``. Warnings are errors.
    """
    cmd = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()", "build", "book",
           "--config", "_config.yml", "--path-output", ".", "-W", "--keep-going"]
    if all_pages:
        cmd.append("--all")
    subprocess.run(cmd, cwd=root, check=True)
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
