import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# First, before numpy or torch is imported: the CPU code paths a sweep's training worker runs (torch's and
# numpy's vector code at AVX2, MKL's AVX2 branch; linscale/train/code_paths.py), so that this process and
# every process it starts (`linscale train`, sweep workers, spawned pools) compute the same bits. Without
# it, on an AVX-512 CPU, a run trained here and its rerun in a pinned subprocess differ in the last bits,
# and so would a pool started after a test has run `linscale`'s main (which pins os.environ) here.
from linscale.train.code_paths import training_environment

_ALREADY_LOADED = [m for m in ("numpy", "torch") if m in sys.modules]
os.environ.update(training_environment(None, os.environ))  # the environment's own settings win

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_EVALUATE_OFFLINE", "1")
# Compiled on a GPU, Triton's fp32 dots run in TF32 by default (a 10-bit mantissa): the kernel tests hold fp32
# outputs to the naive reference within 5e-3, and a model trained through the kernels to the same greedy
# tokens, which TF32 need not meet. IEEE fp32 here, as benchmarks/gpu_check.sh sets it; the CPU interpreter
# ignores it. (Training on a GPU runs in bf16, where the setting does not apply.)
os.environ.setdefault("TRITON_F32_DEFAULT", "ieee")
# Trained tokenizers are cached (linscale.data.text.cached_tokenizer): keep the tests' out of ~/.cache.
os.environ.setdefault("LINSCALE_CACHE", tempfile.mkdtemp(prefix="linscale-test-cache-"))
# Without a GPU the Triton kernels (linscale.kernels) run only under Triton's interpreter, which must be
# switched on before the kernels are first imported. Nothing else in the suite uses Triton on the CPU, so
# this is harmless elsewhere; with a GPU the kernels compile (benchmarks/gpu_check.sh).
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

# Two cores: one intra-op thread per pytest-xdist worker avoids oversubscription.
torch.set_num_threads(max(1, int(os.environ.get("LINSCALE_TEST_THREADS", "1"))))


def pytest_configure(config):
    if _ALREADY_LOADED:  # a plugin imported them first: the pins above cannot reach this process
        config.issue_config_time_warning(pytest.PytestConfigWarning(
            f"{', '.join(_ALREADY_LOADED)} imported before tests/conftest.py pinned the CPU code paths; tests "
            "that compare runs in this process with runs in subprocesses may differ in the last bits"), stacklevel=2)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# The test files that take longest, about longest first, with their time on one worker of the 2-core CI
# (two pytest-xdist workers; --durations of a 15:33 pytest run). pytest-xdist's loadfile scheduler hands
# whole files to the workers in the order of its queue, one each to start with, and a worker gets its next
# file as soon as two or fewer of the tests it holds are left. By default (--loadscope-reorder) the queue
# is sorted by the number of tests in a file, which once put test_compare.py (10 tests, then about 12
# minutes) 14th of 30 files, so the suite ended with one worker still on it. tasks.py passes
# --no-loadscope-reorder, which keeps the collection order, and pytest_collection_modifyitems below puts
# these files first: the longest starts at once and the short ones fill in around it. The smoke sweep and
# the built book are made once for both workers (_once_for_all_workers).
SLOW_FILES = (
    "test_compare.py",        # ~420 s: the smoke sweep (~110 s), then the rest of a smoke study at its seed, compares
    "test_train_sweep.py",    # ~300 s: the smoke sweep (shared), a killed sweep re-run, a killed worker, DDP
    "test_book.py",           # ~130 s: the built book (~105 s) and a chapter re-executed
    "test_book_browser.py",   # ~50 s (the built book is test_book.py's)
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


# The shared smoke sweep trains at the seed of test_compare.py's re-executed study (the published
# results/smoke are seed 0), whose main sweep it then is: that study trains only its ablations.
SMOKE_SWEEP_ARGS = ("--preset", "smoke", "--set", "train.seed=1")


def _smoke_sweep(out: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parent), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, "-m", "linscale", "sweep", *SMOKE_SWEEP_ARGS, "--out", str(out),
                           "--jobs", "2", "--threads", "1"], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="session")
def smoke_sweep(tmp_path_factory):
    """`linscale sweep --preset smoke --set train.seed=1` (SMOKE_SWEEP_ARGS), run once per test session:
    (its output folder, the completed process). Tests read its table and checkpoints; any that write put
    their outputs elsewhere, or resume their own copy.

    Under pytest-xdist the workers' sessions share one sweep (about 140 core-seconds): the first worker
    that needs it trains it, in the run's folder above the workers' own, and a worker that needs it
    meanwhile waits for it; each worker then gets its own copy, which its tests may resume in place
    (test_train_sweep.py does) without touching another worker's."""
    def sweep(folder: Path) -> dict:
        proc = _smoke_sweep(folder)
        return {"folder": str(folder), "args": proc.args, "returncode": proc.returncode, "stdout": proc.stdout,
                "stderr": proc.stderr}

    done = _once_for_all_workers(tmp_path_factory, "smoke-sweep", sweep)
    out = Path(done.pop("folder"))
    if os.environ.get("PYTEST_XDIST_WORKER"):  # each worker's own copy, which its tests may resume in place
        out = shutil.copytree(out, tmp_path_factory.mktemp("smoke-sweep"), dirs_exist_ok=True)
    return out, subprocess.CompletedProcess(**done)


@pytest.fixture(scope="session")
def built_book(tmp_path_factory):
    """Every chapter of the table of contents executed on the smoke results and the book built, in a
    temporary copy of book/ and _config.yml (the repository's book/chapters is left alone). Shared by
    tests/test_book.py and the browser check, which only read it.

    Under pytest-xdist the workers share one build (about 190 s on one worker of the 2-core CI, which
    the last CI paid twice when the two files landed on different workers): the first worker that needs
    it builds it in the run's folder above the workers' own, and one that needs it meanwhile waits."""
    from linscale import book

    chapters = book.toc_chapters()

    def build(folder: Path) -> dict:
        root = book.copy_sources(folder)
        outputs = book.execute_book(book.SMOKE_PARAMETERS, chapters=chapters, out_dir=root / "book" / "chapters",
                                    force=True, workers=2)
        return {"root": str(root), "html": str(book.build_html(root)), "outputs": [str(o) for o in outputs]}

    built = _once_for_all_workers(tmp_path_factory, "book", build)
    return {"root": Path(built["root"]), "html": Path(built["html"]), "chapters": chapters,
            "outputs": dict(zip(chapters, map(Path, built["outputs"])))}


def _once_for_all_workers(tmp_path_factory, name: str, make) -> dict:
    """``make(folder)`` (a JSON-able dict) run once per test run: in this session's own folder without
    pytest-xdist; under it, by the first worker that asks, in the run's folder above the workers' own,
    while any other worker that asks waits for it, and then reads its result."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return make(tmp_path_factory.mktemp(name))
    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp().parent  # pytest-<n>/, above each worker's popen-gw<i>/
    done = shared / f"{name}.json"  # written once make() has succeeded
    with FileLock(shared / f"{name}.lock"):
        if not done.exists():
            shutil.rmtree(shared / name, ignore_errors=True)  # another worker's failed attempt
            (shared / name).mkdir()
            done.write_text(json.dumps(make(shared / name)))
    return json.loads(done.read_text())
