#!/usr/bin/env bash
# One-shot GPU check of the Triton kernels (issue 3): run on a machine with a CUDA GPU, from anywhere.
#
#   1. the kernel test suite, compiled (not interpreted): every interpreter case on CUDA tensors, plus
#      the GPU-only cases (bf16 at T up to 8K, K = 256, non-power-of-two widths) — fp32 dots in IEEE
#      mode (TRITON_F32_DEFAULT=ieee), one autotune config per kernel (LINSCALE_AUTOTUNE=0) so that
#      compiling stays within a couple of minutes;
#   2. the benchmark (B=8, H=16, D=128, bf16, T = 1K..16K) with autotuning on.
#
# Everything is written to benchmarks/results/kernels-<UTC date>-<GPU>-<host>.md; commit that file.
# Usage: benchmarks/gpu_check.sh [python]   (default: .venv/bin/python if present, else python3)
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${1:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
unset TRITON_INTERPRET

if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_check.sh: no CUDA GPU visible to $PY; nothing measured" >&2
    exit 2
fi
# linscale.kernels is the top-level kernels/ folder mapped by pyproject.toml: needs an (editable) install.
if ! "$PY" -c "import linscale.kernels" 2>/dev/null; then
    "$PY" -m pip install --no-deps --no-build-isolation -q -e . || exit 3
fi

gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr -c 'A-Za-z0-9\n' '-' | tr -s '-')
out="benchmarks/results/kernels-$(date -u +%Y-%m-%d)-${gpu%-}-$(hostname -s).md"
mkdir -p benchmarks/results
status=0
exec > >(tee "$out") 2>&1  # live output and the results file
{
    echo "# GPU kernel check, $(date -u '+%Y-%m-%d %H:%M') UTC, $(hostname -s)"
    echo
    echo '```'
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
    "$PY" -c "import torch, triton, numpy; print('torch', torch.__version__, 'cuda', torch.version.cuda, '| triton', triton.__version__, '| numpy', numpy.__version__)"
    "$PY" -c "import fla; print('fla', fla.__version__)" 2>/dev/null || echo "fla not installed"
    echo "git $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
    echo '```'
    echo
    echo "## Tests (compiled): TRITON_F32_DEFAULT=ieee LINSCALE_AUTOTUNE=0 pytest tests/test_kernels.py"
    echo
    echo '```'
    start=$(date +%s)
    TRITON_F32_DEFAULT=ieee LINSCALE_AUTOTUNE=0 "$PY" -m pytest tests/test_kernels.py -p no:xdist -q -rfEs \
        --durations=10 2>&1 || status=1
    echo "tests took $(( $(date +%s) - start )) s"
    echo '```'
    echo
    echo "## Benchmark: benchmarks/bench_kernels.py"
    echo
    start=$(date +%s)
    "$PY" benchmarks/bench_kernels.py 2>&1 || status=1
    echo
    echo "benchmark took $(( $(date +%s) - start )) s"
}
echo "wrote $out (exit status $status)" >&2
exit $status
