"""Benchmark the Triton kernels against SDPA and flash-linear-attention (see linscale/kernels/bench.py).

    python benchmarks/bench_kernels.py                      # GPU: B=8, H=16, D=128, bf16, T = 1K..16K
    TRITON_INTERPRET=1 python benchmarks/bench_kernels.py --dry-run   # CPU: tiny shapes, checks it runs
"""
import os
import sys

import torch

if not torch.cuda.is_available():  # the kernels need the interpreter on a CPU, set before they are imported
    os.environ.setdefault("TRITON_INTERPRET", "1")

from linscale.kernels.bench import main  # noqa: E402

if __name__ == "__main__":
    main(sys.argv[1:])
