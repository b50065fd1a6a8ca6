#!/usr/bin/env python3
"""The project's entry points, runnable on a fresh machine that has only Python 3.11 and pip.

    python3 tasks.py study     # set up, then run the default CPU study end to end into the book
    python3 tasks.py book      # set up, then rebuild the book from the committed results (no training)
    python3 tasks.py test      # set up, then run the test suite (what CI runs)
    python3 tasks.py setup     # only create .venv and install the pinned environment

Every command first makes sure `.venv/` holds the pinned environment (requirements.txt with
constraints.txt, the package installed in editable mode). The install is redone only when one of
those files changes, so repeated commands start in seconds. Standard library only, on purpose: this
file must run before anything is installed.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PYTHON = VENV / "bin" / "python"
STAMP = VENV / ".linscale-installed"
INPUTS = ("requirements.txt", "constraints.txt", "pyproject.toml", "setup.py", "linscale-lm-eval.pth")


def _inputs_digest() -> str:
    digest = hashlib.sha256()
    for name in INPUTS:
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()


def _run(*cmd: str | os.PathLike, env: dict | None = None) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], cwd=ROOT, check=True, env=env)


def setup() -> None:
    """Create .venv and install the pinned environment unless it is already current."""
    if sys.version_info[:2] != (3, 11):
        print(f"warning: the environment is pinned for Python 3.11; this is {sys.version.split()[0]}",
              file=sys.stderr)
    digest = _inputs_digest()
    if STAMP.exists() and STAMP.read_text() == digest:
        return
    if not PYTHON.exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    # --no-compile: pip byte-compiles every module of every package it installs (torch's and lm-eval's
    # thousands among them), about half of a fresh set-up here (240 s with, 122 s without); Python
    # compiles the modules actually imported on first use instead, and keeps them (_venv_env lets it).
    pip = (PYTHON, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile")
    # torch first and alone, so that nothing else can resolve a different (CUDA) build of it.
    _run(*pip, "torch==2.13.0")
    _run(*pip, "-r", "requirements.txt", "-c", "constraints.txt")
    _run(*pip, "--no-deps", "-e", ".")
    STAMP.write_text(digest)


def _venv_env() -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(VENV)
    # Nothing in the default paths may reach the Hugging Face Hub: fail fast instead of waiting.
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("HF_DATASETS_OFFLINE", "1")
    env.setdefault("HF_EVALUATE_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    # The environment's modules are installed without bytecode (setup: --no-compile), so Python must be
    # free to write it on first import: with PYTHONDONTWRITEBYTECODE (set on some machines, this one among
    # them) every process would compile torch and lm-eval from source again, and the test suite, which
    # starts hundreds of processes, ran several times slower.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def test(args: list[str]) -> None:
    """Run the test suite with pytest (extra arguments are passed to pytest, after ours: `-n 0` runs it in
    one process). One pytest-xdist worker per core, a test file per worker at a time (``loadfile``): the
    session fixtures (the smoke sweep and the built book, made once for both workers; the seed-1 smoke
    study of test_compare.py) serve the tests of one file together, and most tests use one core, so two
    workers halve the wall time. The files are handed out in collection order (``--no-loadscope-reorder``;
    xdist's default is the files with the most tests first), which tests/conftest.py begins with the
    longest files (SLOW_FILES)."""
    setup()
    workers = str(min(2, os.cpu_count() or 1))
    _run(PYTHON, "-m", "pytest", "-n", workers, "--dist", "loadfile", "--no-loadscope-reorder", *args,
         env=_venv_env())


def study(args: list[str]) -> None:
    """Run the default CPU study end to end (extra arguments go to `linscale study`)."""
    setup()
    _run(PYTHON, "-m", "linscale", "study", *args, env=_venv_env())


def book(args: list[str]) -> None:
    """Rebuild the book from the committed results/ tables: execute the chapters with papermill (skipping
    unchanged ones) and build _build/html (extra arguments go to `linscale book`)."""
    setup()
    _run(PYTHON, "-m", "linscale", "book", *args, env=_venv_env())


COMMANDS = {"setup": lambda args: setup(), "test": test, "study": study, "book": book}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in COMMANDS:
        print(__doc__)
        print(f"error: expected one of {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    try:
        COMMANDS[argv[0]](argv[1:])
    except subprocess.CalledProcessError as err:
        return err.returncode or 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
