"""The CPU code paths a training process is pinned to (README, "Reproducibility"; measured by
``benchmarks/check_cpu_reproducibility.py``).

torch's own vectorised kernels (ATen: softmax, norms, reductions, element-wise ops) are compiled three
times, for no vector extensions, AVX2 and AVX-512, and torch runs the widest the CPU has. The widths sum
in different orders, so the same run trains to different last bits on an AVX-512 CPU than on an AVX2
one, and training amplifies those bits into final losses about 1% apart. ``ATEN_CPU_CAPABILITY=avx2``
runs the AVX2 kernels on every CPU that has AVX2 and FMA: ATen's AVX2 code uses exact IEEE operations
and FMA only (no approximate reciprocals), so those kernels compute the same bits on any such CPU. On an
AVX2 CPU (this project's machines) it is what torch runs anyway: no cost, no change.

It does not pin MKL, torch's matrix-multiply library, which picks GEMM kernels by CPU model and vendor:
``MKL_CBWR=COMPATIBLE`` is the setting MKL documents for identical results on Intel and non-Intel CPUs,
and it costs the study's training more than its time budget allows (see the README), so it is the
reader's choice: the variables below only fill in what the environment does not already set.

These variables are read once, when torch is first imported, so they go into the environment of the
sweep's training processes (:func:`linscale.train.sweep._child_options`).
"""
from __future__ import annotations


def pinned_code_paths() -> dict[str, str]:
    """Environment variables that pin a training process's CPU code paths on this machine (empty where
    there is nothing to pin: a CPU without AVX2 and FMA, or not x86)."""
    import torch

    capabilities = getattr(torch.cpu, "get_capabilities", lambda: {})()
    if capabilities.get("architecture") != "x86_64" or not (capabilities.get("avx2") and capabilities.get("fma3")):
        return {}
    return {"ATEN_CPU_CAPABILITY": "avx2"}
