import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_EVALUATE_OFFLINE", "1")
# Trained tokenizers are cached (linscale.data.text.cached_tokenizer): keep the tests' out of ~/.cache.
os.environ.setdefault("LINSCALE_CACHE", tempfile.mkdtemp(prefix="linscale-test-cache-"))
# Without a GPU the Triton kernels (linscale.kernels) run only under Triton's interpreter, which must be
# switched on before the kernels are first imported. Nothing else in the suite uses Triton on the CPU, so
# this is harmless elsewhere; with a GPU the kernels compile (benchmarks/gpu_check.sh).
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

# Two cores: one intra-op thread per pytest-xdist worker avoids oversubscription.
torch.set_num_threads(max(1, int(os.environ.get("LINSCALE_TEST_THREADS", "1"))))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# The test files that take longest, about longest first, with their time on one worker of the 2-core CI
# (two pytest-xdist workers; --durations of the 20:55 run, pytest 17:00). pytest-xdist's loadfile
# scheduler hands whole files to the workers in the order of its queue, one each to start with, and a
# worker gets its next file as soon as two or fewer of the tests it holds are left. By default (--loadscope-reorder) the queue is sorted by the number of tests in a file, which
# put test_compare.py (10 tests, about 12 minutes) 14th of 30 files, so the suite ended with one worker
# still on it. tasks.py passes --no-loadscope-reorder, which keeps the collection order, and
# pytest_collection_modifyitems below puts these files first: the longest starts at once and the short
# ones fill in around it. (test_compare.py's two studies start with four of its tests left, so no file
# waits behind them.) The book's browser check follows the book, so that both usually run on the same
# worker and share its built book (a session fixture: one build per worker).
SLOW_FILES = (
    "test_compare.py",        # ~750 s: two smoke studies (fixture ~640 s), `linscale compare` runs
    "test_train_sweep.py",    # ~250 s: a killed sweep re-run, a killed worker, DDP on two processes
    "test_book.py",           # ~150 s: the built book (~110 s) and a chapter re-executed
    "test_book_browser.py",   # ~35 s (the built book is test_book.py's)
    "test_train_signals.py",  # ~95 s: three signal-and-resume runs
    "test_eval_suites.py",    # ~60 s: lm-eval's own CLI on every suite (beside the smoke sweep it reads)
    "test_laws.py",           # ~55 s: approach 3's bootstrap
    "test_kernels.py",        # ~30 s per architecture trained through the Triton interpreter
)


def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist, the SLOW_FILES first (see there); the tests of a file keep their order, and a
    run in one process (-n 0) keeps the usual order."""
    if not hasattr(config, "workerinput"):  # the controller, or no xdist: nothing is handed out
        return
    rank = {name: i for i, name in enumerate(SLOW_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest as collected


def _smoke_sweep(out: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parent), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, "-m", "linscale", "sweep", "--preset", "smoke", "--out", str(out),
                           "--jobs", "2", "--threads", "1"], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="session")
def smoke_sweep(tmp_path_factory):
    """`linscale sweep --preset smoke`, run once per test session: (its output folder, the completed
    process). Tests read its table and checkpoints; any that write put their outputs elsewhere.

    Under pytest-xdist the workers' sessions share one sweep (about 140 core-seconds): the first worker
    that needs it trains it, in the run's folder above the workers' own, and a worker that needs it
    meanwhile waits for it; each worker then gets its own copy, which its tests may resume in place
    (test_train_sweep.py does) without touching another worker's."""
    out = tmp_path_factory.mktemp("smoke-sweep")
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return out, _smoke_sweep(out)
    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp().parent  # pytest-<n>/, above each worker's popen-gw<i>/
    done = shared / "smoke-sweep.json"  # written once the sweep has succeeded
    with FileLock(shared / "smoke-sweep.lock"):
        if not done.exists():
            shutil.rmtree(shared / "smoke-sweep", ignore_errors=True)  # another worker's failed attempt
            proc = _smoke_sweep(shared / "smoke-sweep")
            done.write_text(json.dumps({"args": proc.args, "returncode": proc.returncode, "stdout": proc.stdout,
                                        "stderr": proc.stderr}))
    shutil.copytree(shared / "smoke-sweep", out, dirs_exist_ok=True)
    return out, subprocess.CompletedProcess(**json.loads(done.read_text()))


@pytest.fixture(scope="session")
def built_book(tmp_path_factory):
    """Every chapter of the table of contents executed on the smoke results and the book built, in a
    temporary copy of book/ and _config.yml (the repository's book/chapters is left alone). Shared by
    tests/test_book.py and the browser check."""
    from linscale import book

    root = book.copy_sources(tmp_path_factory.mktemp("book"))
    chapters = book.toc_chapters()
    outputs = book.execute_book(book.SMOKE_PARAMETERS, chapters=chapters, out_dir=root / "book" / "chapters",
                                force=True, workers=2)
    html = book.build_html(root)
    return {"root": root, "html": html, "chapters": chapters, "outputs": dict(zip(chapters, outputs))}
