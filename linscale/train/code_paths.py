"""The CPU code paths a training process is pinned to (README, "Reproducibility"; measured by
``benchmarks/check_cpu_reproducibility.py``).

torch's own vectorised kernels (ATen: softmax, norms, reductions, element-wise ops) are compiled three
times, for no vector extensions, AVX2 and AVX-512, and torch runs the widest the CPU has. The widths sum
in different orders, so the same run trains to different last bits on an AVX-512 CPU than on an AVX2
one, and training amplifies those bits into final losses about 1% apart. ``ATEN_CPU_CAPABILITY=avx2``
runs the AVX2 kernels on every CPU that has AVX2 and FMA: ATen's AVX2 code uses exact IEEE operations
and FMA only (no approximate reciprocals), so those kernels compute the same bits on any such CPU. On an
AVX2-only CPU (the AMD EPYC of family 25 that trained the published results) it is what torch runs
anyway; on an AVX-512 one (the family-26 EPYC of 2026-12-02) it replaces torch's AVX-512 kernels, at
1.13x the training time of the cpu preset's s5 there (benchmarks/results/2026-12-02-cpu-reproducibility-
amd-epyc-f26-2c.md): the price of that machine's bit-for-bit agreement with AVX2 ones.

MKL, torch's matrix-multiply library, picks its GEMM kernels by CPU model and vendor: an AVX-512 Intel
CPU runs other kernels than an AVX2 AMD one. ``MKL_CBWR=AVX2`` (conditional numerical reproducibility,
AVX2 branch) makes every CPU with AVX2 run MKL's AVX2 kernels. Measured on the family-25 AMD EPYC
(cpu preset s5, LLaMA and TNL, 200 steps): the AVX2, AUTO and SSE4_2 branches train to the same bits as
no setting at all, at the same speed (but not at every shape: the README's "Reproducibility"); that an
Intel CPU under it then trains to these bits is MKL's documentation's promise, not yet measured (no
Intel machine). ``MKL_CBWR=COMPATIBLE``, the branch MKL documents for identical results on Intel and
non-Intel CPUs alike, trains to other bits here and costs about 1.3-1.5x on these small models,
so it is the reader's choice. The variables below only fill in what the environment does not set.

numpy dispatches its loops at run time as well, to AVX-512 where the CPU has it. The study's fits run on
numpy and scipy: on a family-26 EPYC its AVX-512 loops moved the bootstrap ends of approach 3 with E free
(by up to 0.04 in a) although every training table was the published one bit for bit; with numpy held to
its AVX2 level (``NPY_DISABLE_CPU_FEATURES``, :func:`numerics_pins`) and ATen to AVX2, its evaluation and
fits gave the published tables bit for bit too (2026-12-02).

numpy and scipy hand their linear algebra (the fits' least squares and the optimiser's) to OpenBLAS, which
also picks its kernels by CPU model: on a family-25 EPYC of model 17 (Zen 4, AVX-512) it ran its SkylakeX
kernels, and although every training and evaluation table was the published one bit for bit, 115 of the
136 fitted estimates and interval ends moved: approach 3's bootstrap ends (E free) by up to 0.017 in a
and 3.8x in A, and its numbers of distinct resampled outcomes with them. With
``OPENBLAS_CORETYPE=Haswell`` (its AVX2 and FMA kernels, which OpenBLAS also runs on the family-25 EPYC
of model 1 that fitted the published laws) the fits were the published ones bit for bit, at the same
speed (2026-12-03; ``benchmarks/results/2026-12-03-clean-clone-study-zen4-amd-epyc-f25m17-2c.md``).

These variables are read once, when numpy or torch is first imported. The command line sets the numerics
pins (ATen, numpy) first thing, for every command (:func:`pin_numerics`), so the processes it starts
inherit them; training processes add MKL's branch and their thread counts (:func:`training_environment`,
used by :func:`linscale.train.sweep._child_options`, and by `linscale train` for itself before it imports
torch, :func:`pin_this_process`): one run trained alone then gives the sweep's bits for the same spec.
Without that, a lone `linscale train` of the cpu preset's LLaMA s4 on an AVX-512 AMD EPYC (family 26)
ran torch's AVX-512 kernels and ended 0.12% off the published validation loss, which the pinned run
matched bit for bit (2026-12-02).

What ran is recorded: each finished run's ``status.json`` holds ``cpu_code_path`` (:func:`in_effect`).
"""
from __future__ import annotations

import os
import platform
import sys
from collections.abc import Mapping


def _cpu_flags() -> set[str] | None:
    """The CPU's feature flags from /proc/cpuinfo (Linux), or None where there is no such file."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        return None
    return None


# numpy's run-time dispatch targets above AVX2, by numpy release (major.minor): the names it accepts in
# NPY_DISABLE_CPU_FEATURES (it warns about any other). A release not listed here is left unpinned;
# tests/test_train_sweep.py checks the installed release's names against numpy's own dispatch list.
NUMPY_ABOVE_AVX2 = {"2.4": "X86_V4 AVX512_ICL AVX512_SPR"}


def _has_avx2_fma() -> bool:
    """x86 with AVX2 and FMA (every CPU these pins are for), decided without importing torch where
    /proc/cpuinfo says: the variables must be set before torch is imported."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    flags = _cpu_flags()
    if flags is not None:
        return {"avx2", "fma"} <= flags
    import torch  # macOS, Windows: ask torch (then this process itself can no longer be pinned)

    capabilities = getattr(torch.cpu, "get_capabilities", lambda: {})()
    return bool(capabilities.get("avx2") and capabilities.get("fma3"))


def _numpy_release() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return ".".join(version("numpy").split(".")[:2])
    except PackageNotFoundError:
        return None


def numerics_pins() -> dict[str, str]:
    """Environment variables that pin every linscale process's own vectorised code (empty where there is
    nothing to pin): torch's ATen kernels to AVX2, numpy's dispatch to its AVX2 level (the fits'
    optimiser: with numpy's AVX-512 loops the bootstrap ends of approach 3 with E free moved by up to 0.04
    in a on a family-26 EPYC, from the same runs), and OpenBLAS, numpy's and scipy's linear algebra, to
    its Haswell (AVX2, FMA) kernels (with its SkylakeX kernels on a Zen 4 EPYC the fits' intervals moved).
    Evaluation runs MKL's default branch, as the published evaluation did."""
    if not _has_avx2_fma():
        return {}
    pins = {"ATEN_CPU_CAPABILITY": "avx2", "OPENBLAS_CORETYPE": "Haswell"}
    above_avx2 = NUMPY_ABOVE_AVX2.get(_numpy_release() or "")
    if above_avx2:
        pins["NPY_DISABLE_CPU_FEATURES"] = above_avx2
    return pins


def pinned_code_paths() -> dict[str, str]:
    """Environment variables that pin a training process's CPU code paths on this machine: the numerics
    pins and MKL's AVX2 branch (``MKL_CBWR``, harmless where torch has no MKL)."""
    pins = numerics_pins()
    return {**pins, "MKL_CBWR": "AVX2"} if pins else {}


def training_environment(threads: int | None, environ: Mapping[str, str]) -> dict[str, str]:
    """The environment of a training process: ``environ`` with the thread counts (when given) and the
    pins, where ``environ`` does not set them itself (the reader's own choice wins)."""
    env = dict(environ)
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    for key, value in pinned_code_paths().items():
        env.setdefault(key, value)
    return env


def pin_numerics() -> None:
    """The numerics pins into this process's environment, where it does not set them (the command line
    does this first, before numpy or torch is imported; the processes it starts inherit them)."""
    for key, value in numerics_pins().items():
        os.environ.setdefault(key, value)


def pin_this_process(threads: int | None) -> bool:
    """Give this process the training environment of a sweep's worker, if torch is not imported yet;
    whether it could (a caller that imported torch already keeps its code paths)."""
    if "torch" in sys.modules:
        return False
    os.environ.update(training_environment(threads, os.environ))
    return True


def in_effect() -> dict:
    """The code paths this process runs: torch's CPU capability (ATen's kernels), MKL's branch, the
    targets numpy dispatches to, and the kernels of each OpenBLAS loaded (numpy's, scipy's)."""
    import torch
    from threadpoolctl import threadpool_info

    try:
        from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
        numpy_dispatch = [name for name in __cpu_dispatch__ if __cpu_features__.get(name)]
    except ImportError:  # numpy's private module moved: record nothing rather than fail a finished run
        numpy_dispatch = None
    openblas = sorted({info.get("architecture") or "?" for info in threadpool_info()
                       if info.get("internal_api") == "openblas"})
    return {"aten": torch.backends.cpu.get_cpu_capability(), "mkl_cbwr": os.environ.get("MKL_CBWR"),
            "numpy": numpy_dispatch, "openblas": openblas}
