import os
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_EVALUATE_OFFLINE", "1")
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
