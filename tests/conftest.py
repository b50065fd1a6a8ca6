import os
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


@pytest.fixture(scope="session")
def smoke_sweep(tmp_path_factory):
    """`linscale sweep --preset smoke`, run once per test session: (its output folder, the completed
    process). Tests read its table and checkpoints; any that write put their outputs elsewhere."""
    import subprocess

    out = tmp_path_factory.mktemp("smoke-sweep")
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parent), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, "-m", "linscale", "sweep", "--preset", "smoke", "--out", str(out),
                           "--jobs", "2", "--threads", "1"], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return out, proc


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
