"""The CPU code paths a training process is pinned to (README, "Reproducibility"; measured by
``benchmarks/check_cpu_reproducibility.py``).

torch's own vectorised kernels (ATen: softmax, norms, reductions, element-wise ops) are compiled three
times, for no vector extensions, AVX2 and AVX-512, and torch runs the widest the CPU has. The widths sum
in different orders, so the same run trains to different last bits on an AVX-512 CPU than on an AVX2
one, and training amplifies those bits into final losses about 1% apart. ``ATEN_CPU_CAPABILITY=avx2``
runs the AVX2 kernels on every CPU that has AVX2 and FMA: ATen's AVX2 code uses exact IEEE operations
and FMA only (no approximate reciprocals), so those kernels compute the same bits on any such CPU. On an
AVX2 CPU (this project's machines) it is what torch runs anyway: no cost, no change.

MKL, torch's matrix-multiply library, picks its GEMM kernels by CPU model and vendor: an AVX-512 Intel
CPU runs other kernels than an AVX2 AMD one. ``MKL_CBWR=AVX2`` (conditional numerical reproducibility,
AVX2 branch) makes every CPU with AVX2 run MKL's AVX2 kernels. Measured on this project's AMD EPYC
(cpu preset s5, LLaMA and TNL, 200 steps): the AVX2, AUTO and SSE4_2 branches train to the same bits as
no setting at all, at the same speed, so the pin costs nothing here and cannot have changed the committed
results; that an Intel CPU under it then trains to these bits is MKL's documentation's promise, not yet
measured (no Intel machine). ``MKL_CBWR=COMPATIBLE``, the branch MKL documents for identical results on
Intel and non-Intel CPUs alike, trains to other bits here and costs about 1.3-1.5x on these small models,
so it is the reader's choice. The variables below only fill in what the environment does not set.

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
    pins = {"ATEN_CPU_CAPABILITY": "avx2"}
    if torch.backends.mkl.is_available():  # a torch built with MKL as its BLAS (the x86 wheels)
        pins["MKL_CBWR"] = "AVX2"
    return pins
