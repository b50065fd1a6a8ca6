"""Installing linscale into an environment must not tie the environment to one checkout.

The ``linscale-lm-eval.pth`` start-up hook makes ``lm_eval --model linscale`` work without importing
``linscale`` (``linscale/_lm_eval_plugin.py``). If it imported the package at interpreter start, the
installed checkout would shadow the one a command runs in: a second clone using the first one's
environment would build the first clone's book. These tests run fresh interpreters of this
environment and a copy of the working tree standing for a second clone.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from linscale import book

ROOT = book.ROOT
PTH = Path(sysconfig.get_paths()["purelib"]) / "linscale-lm-eval.pth"

pytestmark = pytest.mark.skipif(not PTH.exists(), reason=f"linscale is not pip-installed here (no {PTH})")


def run(code: str, cwd: Path, timeout: int = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # only what the .pth files set up
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_the_installed_hook_is_this_checkouts():
    """tasks.py reinstalls when linscale-lm-eval.pth changes; a stale copy would test old behaviour."""
    assert PTH.read_text() == (ROOT / "linscale-lm-eval.pth").read_text()


def test_interpreter_start_leaves_linscale_unimported_until_lm_eval_asks(tmp_path):
    code = ("import sys\n"
            "print('at start', 'linscale' in sys.modules)\n"
            "assert any(getattr(f, 'linscale_lm_eval_hook', False) for f in sys.meta_path), 'hook not installed'\n"
            "import lm_eval.api.registry as registry\n"
            "print('after registry', 'linscale' in sys.modules)\n"
            "from lm_eval.api.registry import get_model\n"
            "print('model', get_model('linscale').__module__, 'linscale' in sys.modules)\n")
    proc = run(code, tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.splitlines() == ["at start False", "after registry False",
                                        "model linscale.eval.adapter True"], proc.stdout


def test_reading_settings_and_results_leaves_lightning_unimported(tmp_path):
    """What reads a preset or a results table (the study's own process, `linscale compare`, the book's
    chapters) must not import Lightning and torch (about 10 s of a process's start on 2 cores); what
    trains still gets them from the same package."""
    code = ("import sys\n"
            "import linscale.study, linscale.compare, linscale.findings\n"
            "from linscale.train import TrainSettings, read_results, resolve_preset\n"
            "resolve_preset('smoke')\n"
            "print('reading', 'lightning' in sys.modules, 'torch' in sys.modules)\n"
            "from linscale.train import LanguageModelTask\n"
            "print('training', 'lightning' in sys.modules, LanguageModelTask.__module__)\n")
    proc = run(code, tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.splitlines() == ["reading False False", "training True linscale.train.module"], proc.stdout


def _second_clone(tmp_path: Path) -> Path:
    """A copy of this working tree (tracked and untracked files, not ignored ones): another clone."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True,
                           check=True).stdout.decode().split("\0")
    clone = tmp_path / "clone"
    for name in filter(None, files):
        source = ROOT / name
        if source.is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, clone / name)
    return clone


def _snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")} if folder.exists() else {}


@pytest.mark.slow
def test_a_second_clone_sharing_the_environment_uses_and_writes_only_its_own_files(tmp_path):
    """From the clone, `import linscale` is the clone's package, and `linscale book` executes a chapter
    into the clone's book/chapters, writing nothing into this checkout's book/ or _build/."""
    clone = _second_clone(tmp_path)
    proc = run("import linscale, linscale.book as b; print(linscale.__file__); print(b.ROOT)", clone)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == [str(clone / "linscale" / "__init__.py"), str(clone)]

    before = {name: _snapshot(ROOT / name) for name in ("book", "_build")}
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-m", "linscale", "book", "--chapter", "architectures", "--no-html",
                           "-p", "seq_len", "16", "-y", "contexts: [32, 64]"], cwd=clone, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert (clone / "book" / "chapters" / "architectures.ipynb").exists()
    assert {name: _snapshot(ROOT / name) for name in ("book", "_build")} == before
