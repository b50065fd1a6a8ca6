#!/usr/bin/env bash
# One-shot GPU check (issue 3 and the paper preset's GPU path): run on a machine with a CUDA GPU.
#
#   A. untimed, side by side (compiling is CPU work; a 16-core GPU machine has cores to spare):
#      1. the kernel test suite, compiled (not interpreted): every interpreter case on CUDA tensors, plus
#         the GPU-only cases (bf16 at T up to 8K, K = 256, non-power-of-two widths); fp32 dots in IEEE
#         mode (TRITON_F32_DEFAULT=ieee), one autotune config per kernel (LINSCALE_AUTOTUNE=0);
#      2. Lightning end to end: `linscale train --preset smoke --size s1` of each architecture on the GPU
#         (bf16-mixed, Triton kernels) and the same run on the CPU (fp32, PyTorch forms) beside it. Rule,
#         fixed before any GPU ran it: the final validation losses agree within 5% (bf16 against fp32
#         over 600 steps), else the line says DIFFERS;
#      3. the paper preset through Lightning on one GPU, as a cluster run would take it but short: its own
#         strategy (FSDP, here over one device), bf16-mixed, context 8192, gradient accumulation (batch 4
#         as 2 micro-batches of 2), its text source with a BPE trained on a generated corpus; 20 steps of
#         each architecture at 70M. Rule: every run ends 'done', with finite losses, lower at the end
#         than at its first record.
#   B. timed, one at a time:
#      4. benchmarks/gpu_train_check.py: the GPU's measured bf16 peak; Triton vs PyTorch forms in one
#         training forward/backward (limits in the script); an optimiser step of the paper's 70M, 410M and
#         1B shapes at context 8192: tokens/s, model FLOP utilisation against the measured peak;
#      5. benchmarks/bench_kernels.py (B=8, H=16, D=128, bf16) with autotuning on; against
#         flash-linear-attention too when it is importable (WHEELS below), with fla's output compared to ours.
#
# Each step has its own time limit (a lent GPU comes with minutes, not hours). Everything is written to
# RESULTS_DIR (default benchmarks/results) as <UTC date>-<HHMM>-gpu-check-<gpu>.md (its full logs beside it
# in gpu-logs.tgz); commit the report. The efficiency chapter reads its tables by their headings
# (linscale.findings.efficiency.GPU_REPORT_TABLES), each from the newest report that has it: keep the two
# in step.
# Usage: [RESULTS_DIR=dir] [STEPS="1 2 3 4 5"] [WHEELS=dir] [BENCH_LIMIT=s] benchmarks/gpu_check.sh [python]
#   python: default .venv/bin/python if present, else python3. STEPS: the steps to run (a second visit to a
#   GPU can skip what an earlier report already measured). WHEELS: a folder of wheels installed first, into a
#   scratch folder on PYTHONPATH (the machine may have no network): flash-linear-attention's
#   fla_core-*.whl and einops-*.whl give step 5 its "vs fla" columns (`pip download --no-deps fla-core einops`).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${1:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
RESULTS_DIR=${RESULTS_DIR:-benchmarks/results}
SEQ_LENS=${SEQ_LENS:-1024 4096 16384}
PAPER_SEQ=${PAPER_SEQ:-8192}          # step 3's context (a CPU rehearsal shrinks it)
PAPER_ARGS=${PAPER_ARGS:-}            # step 3's extra arguments (a CPU rehearsal: --accelerator cpu --strategy auto)
STEPS=" ${STEPS:-1 2 3 4 5} "
WHEELS=${WHEELS:-}
# step 5's limit: our kernels and SDPA need under 120 s on an H200; fla's kernels autotune on first use (12-48
# configurations each) and did not finish their first case in 120 s there: give a run with fla STEPS=5 alone
BENCH_LIMIT=${BENCH_LIMIT:-240}
want() { [[ "$STEPS" == *" $1 "* ]]; }
skipped() { echo "(step $1 not run: STEPS=\"${STEPS# }\")"; }
unset TRITON_INTERPRET
export PYTHONUNBUFFERED=1

if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_check.sh: no CUDA GPU visible to $PY; nothing measured" >&2
    exit 2
fi
# linscale.kernels is the top-level kernels/ folder mapped by pyproject.toml: needs an (editable) install.
if ! "$PY" -c "import linscale.kernels" 2>/dev/null; then
    if ! "$PY" -m pip install --no-deps --no-build-isolation -q -e .; then
        # no install possible (read-only environment): map the folder by hand, as pyproject.toml does
        [ -e linscale/kernels ] || ln -s ../kernels linscale/kernels
        export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
        "$PY" -c "import linscale.kernels" || exit 3
    fi
fi

gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr -c 'A-Za-z0-9\n' '-' | tr -s '-')
mkdir -p "$RESULTS_DIR"
gpu=${gpu%-}
out="$RESULTS_DIR/$(date -u +%Y-%m-%d-%H%M)-gpu-check-${gpu,,}.md"
work=$(mktemp -d)
status=0
if [ -n "$WHEELS" ]; then
    if "$PY" -m pip install --no-deps --no-index -q --target "$work/site" "$WHEELS"/*.whl; then
        export PYTHONPATH="$work/site${PYTHONPATH:+:$PYTHONPATH}"
    else
        echo "gpu_check.sh: could not install the wheels in $WHEELS; going on without them" >&2
    fi
fi
exec > >(tee "$out") 2>&1  # live output and the results file

echo "# GPU check, $(date -u '+%Y-%m-%d %H:%M') UTC, $(hostname -s)"
echo
echo '```'
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
"$PY" -c "import torch, triton, numpy, lightning; print('torch', torch.__version__, 'cuda', torch.version.cuda, '| triton', triton.__version__, '| numpy', numpy.__version__, '| lightning', lightning.__version__)"
echo "git $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(nproc) CPU cores; steps:$STEPS"
"$PY" -c "import fla; print('fla', fla.__version__)" 2>/dev/null || echo "fla not importable"
echo '```'

# ---- A: untimed work side by side
start=$(date +%s)
jobs_a=()
want 1 && { (TRITON_F32_DEFAULT=ieee LINSCALE_AUTOTUNE=0 timeout 240 "$PY" -m pytest tests/test_kernels.py -n 6 -q -p no:benchmark \
    -rfEs --durations=5 >"$work/tests.log" 2>&1; echo "exit $?" >>"$work/tests.log") & jobs_a+=($!); }
for arch in llama tnl hgrn2 cosformer2; do
    want 2 || break
    for accel in gpu cpu; do
        (timeout 180 "$PY" -m linscale train --preset smoke --arch "$arch" --size s1 --accelerator "$accel" \
            --threads 1 --no-progress --out "$work/smoke-$accel-$arch" >"$work/smoke-$accel-$arch.log" 2>&1
         echo "exit $?" >>"$work/smoke-$accel-$arch.log") &
        jobs_a+=($!)
    done
done
want 3 && (   # step 3: one architecture after another (each its own FSDP process group on one port)
    "$PY" - "$work/corpus" <<'EOF' >"$work/paper.log" 2>&1
import random, sys, pathlib
# A generated corpus of Zipf-distributed pseudo-words, enough for 20 steps of 4 x 8192 tokens
out = pathlib.Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True)
rng = random.Random(0)
words = ["".join(rng.choice("etaoinshrdlucmfwyp") for _ in range(rng.randint(2, 9))) for _ in range(5000)]
weights = [1 / (i + 1) for i in range(len(words))]
for name, count in (("train.txt", 1_500_000), ("valid.txt", 50_000)):
    text = rng.choices(words, weights, k=count)
    (out / name).write_text("\n".join(" ".join(text[i:i + 40]) for i in range(0, count, 40)) + "\n")
EOF
    for arch in llama tnl hgrn2 cosformer2; do
        # shellcheck disable=SC2086
        timeout 150 "$PY" -m linscale train --preset paper --arch "$arch" --size 70M --out "$work/paper" \
            --no-progress --devices 1 --num-nodes 1 --threads 4 $PAPER_ARGS --set data.path="$work/corpus" \
            --set data.vocab_size=8192 --set train.seq_len="$PAPER_SEQ" --set train.batch_size=4 \
            --set train.micro_batch_size=2 --set train.tokens=$((20 * 4 * PAPER_SEQ)) \
            --set train.checkpoints=4 --set train.val_batches=2 >>"$work/paper.log" 2>&1
        echo "exit $arch $?" >>"$work/paper.log"
    done
) &
jobs_a+=($!)
wait "${jobs_a[@]}"  # not a bare wait: that would also wait for the tee above, which never ends
echo
echo "## 1. Kernel tests, compiled: TRITON_F32_DEFAULT=ieee LINSCALE_AUTOTUNE=0 pytest tests/test_kernels.py"
echo
if want 1; then
    echo '```'
    tail -n 40 "$work/tests.log"
    echo '```'
    grep -q "^exit 0" "$work/tests.log" || status=1
else skipped 1; fi
echo
echo "## 2. Lightning, smoke preset s1, 600 steps: GPU (bf16-mixed, Triton) beside CPU (fp32, PyTorch)"
echo
want 2 && { "$PY" - "$work" <<'EOF' || status=1; } || skipped 2
import sys, pathlib, pandas as pd
work, ok = pathlib.Path(sys.argv[1]), True
print("| arch | GPU val loss | CPU val loss | relative difference | GPU wall s | verdict (5%) |")
print("|---|---|---|---|---|---|")
for arch in ("llama", "tnl", "hgrn2", "cosformer2"):
    try:
        gpu, cpu = (pd.read_csv(work / f"smoke-{a}-{arch}" / "results.csv").iloc[-1] for a in ("gpu", "cpu"))
    except (FileNotFoundError, IndexError) as error:
        ok = False
        print(f"| {arch} | failed: {error} | | | | |")
        for a in ("gpu", "cpu"):
            log = work / f"smoke-{a}-{arch}.log"
            sys.stderr.write(f"--- {log.name}\n" + (log.read_text()[-1500:] if log.exists() else "no log\n"))
        continue
    diff = abs(gpu.val_loss - cpu.val_loss) / cpu.val_loss
    ok &= bool(diff <= 0.05)
    print(f"| {arch} | {gpu.val_loss:.4f} | {cpu.val_loss:.4f} | {diff:.2%} | {gpu.wall_time_s:.1f} | "
          f"{'agrees' if diff <= 0.05 else 'DIFFERS'} |")
sys.exit(0 if ok else 1)
EOF
echo
echo "## 3. The paper preset through Lightning: 70M, FSDP on one GPU, bf16-mixed, 4 x $PAPER_SEQ tokens a step in 2 micro-batches, 20 steps"
echo
want 3 && { "$PY" - "$work" <<'EOF' || status=1; } || skipped 3
import sys, math, pathlib, pandas as pd
work, ok = pathlib.Path(sys.argv[1]), True
log = (work / "paper.log").read_text() if (work / "paper.log").exists() else ""
try:
    rows = pd.read_csv(work / "paper" / "results.csv")
except FileNotFoundError:
    rows = pd.DataFrame(columns=["arch", "step", "train_loss", "val_loss", "wall_time_s"])
print("| arch | steps | first train loss | final train loss | final val loss | wall s | verdict |")
print("|---|---|---|---|---|---|---|")
for arch in ("llama", "tnl", "hgrn2", "cosformer2"):
    run = rows[rows["arch"] == arch].sort_values("step")
    if run.empty or f"exit {arch} 0" not in log:
        ok = False
        print(f"| {arch} | - | | | | | FAILED (paper.log in gpu-logs.tgz) |")
        continue
    first, last = run.iloc[0], run.iloc[-1]
    good = all(math.isfinite(x) for x in run["train_loss"]) and last.train_loss < first.train_loss
    ok &= good
    print(f"| {arch} | {int(last.step)} | {first.train_loss:.3f} | {last.train_loss:.3f} | {last.val_loss:.3f} | "
          f"{last.wall_time_s:.0f} | {'learns' if good else 'DOES NOT LEARN'} |")
if not ok:
    sys.stderr.write(log[-3000:])
sys.exit(0 if ok else 1)
EOF
echo
echo "(part A took $(( $(date +%s) - start )) s)"

# ---- B: timed, one at a time
echo
start=$(date +%s)
if want 4; then
    timeout 240 "$PY" benchmarks/gpu_train_check.py --output "$work/train.md" >"$work/train.log" 2>&1 || status=1
    if [ -s "$work/train.md" ]; then sed 's/^## /### /; s/^# /## 4. /' "$work/train.md"; else tail -n 60 "$work/train.log"; fi
    echo "(step 4 took $(( $(date +%s) - start )) s)"
else echo "## 4. GPU training check"; echo; skipped 4; fi
echo
echo "## 5. Kernel benchmark: benchmarks/bench_kernels.py --seq-lens $SEQ_LENS"
echo
start=$(date +%s)
if want 5; then
    # shellcheck disable=SC2086
    TRITON_PRINT_AUTOTUNING=1 timeout "$BENCH_LIMIT" "$PY" benchmarks/bench_kernels.py --seq-lens $SEQ_LENS 2>&1 |
        sed -u 's/^# /### /' || status=1  # each autotuning printed: where a slow first call spends its time
    echo "(step 5 took $(( $(date +%s) - start )) s; exit status so far $status)"
else skipped 5; fi
tar -czf "$RESULTS_DIR/gpu-logs.tgz" -C "$work" $(cd "$work" && ls *.log) 2>/dev/null || true  # full logs
echo "wrote $out (exit status $status)" >&2
exit $status
