"""Kernel benchmark: forward and forward+backward of each mixer's kernel against SDPA and fla.

    python benchmarks/bench_kernels.py                      # GPU: B=8, H=16, D=128, bf16, T = 1K..16K
    TRITON_INTERPRET=1 python benchmarks/bench_kernels.py --dry-run   # CPU: tiny shapes, checks it runs

(the dry run is what the tests run, so the script cannot rot). Times come from ``triton.testing.do_bench``
(median, after warm-up calls that trigger autotuning); on a CPU a plain wall-clock median stands in.

Achieved throughput uses cost models, not counters (``kernels.md`` §6), for the chunked design with
chunk C, widths K and V, s bytes per input element and fp32 chunk states:

    FLOPs/token/head (forward)  ≈ 4·K·V + 2·C·(K + V)          (kᵀv, q·h, q·kᵀ, A·v)
    bytes (forward)             ≈ s·(3K + 3V)·BTH + 8·K·V·B·H·T/C   (q,k,v,o + k,v re-read; h written, read)
    forward+backward FLOPs      ≈ 3 × forward (the usual convention); bytes by the same kind of count
    SDPA causal forward         = 2·B·H·T²·D FLOPs; forward+backward = 3.5 × forward

and compares them with the H200 ceilings measured for this project: 4.3 TB/s and 790 TFLOP/s (bf16).
"""
from __future__ import annotations

import argparse
import importlib
import math
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.nn.functional as F

if not torch.cuda.is_available():  # the kernels need the interpreter on a CPU, set before they are imported
    os.environ.setdefault("TRITON_INTERPRET", "1")

# Measured on the project's H200 (shared/reference/kernels.md §6).
H200_TBPS = 4.3
H200_TFLOPS = 790.0
MIXERS = ("tnl", "cosformer2", "hgrn2")


CPU_REPS = 3  # wall-clock repetitions on a CPU (1 in a dry run: only the code path matters there)


def _timer(fn, device: str) -> float:
    """Median milliseconds of fn(): do_bench on a GPU, a wall-clock median on the CPU."""
    if device == "cuda":
        import triton.testing

        for _ in range(3):  # autotuning and allocator warm-up
            fn()
        return float(triton.testing.do_bench(fn, warmup=25, rep=100, quantiles=[0.5, 0.2, 0.8])[0])
    times = []
    for _ in range(CPU_REPS):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def mixer_inputs(mixer: str, B: int, T: int, H: int, D: int, dtype, device: str):
    """q, k, v and the decay of one mixer at head width D (cosFormer2's q/k are 2D wide)."""
    K = 2 * D if mixer == "cosformer2" else D
    q = torch.randn(B, T, H, K, dtype=dtype, device=device) * K**-0.5
    k = torch.randn(B, T, H, K, dtype=dtype, device=device) * K**-0.5
    v = torch.randn(B, T, H, D, dtype=dtype, device=device)
    decay = {}
    if mixer == "tnl":
        from linscale.models.tnl import tnl_log_decay

        decay["g_gamma"] = tnl_log_decay(H, 0, 2).to(device)
    elif mixer == "hgrn2":  # realistic gates, as fla's benchmarks: logsigmoid clamped at -5
        decay["g"] = F.logsigmoid(torch.randn(B, T, H, K, device=device)).clamp_min(-5)
    return q, k, v, decay


def cost_model(mixer: str, B: int, T: int, H: int, D: int, elem_bytes: int, chunk: int) -> dict:
    """FLOPs and bytes of the chunked kernels, forward and forward+backward (see the module docstring)."""
    K, V = (2 * D if mixer == "cosformer2" else D), D
    BTH = B * T * H
    state = 4 * K * V * B * H * math.ceil(T / chunk)  # one fp32 pass over all chunk states
    flops = BTH * (4 * K * V + 2 * chunk * (K + V))
    fwd_bytes = elem_bytes * (3 * K + 3 * V) * BTH + 2 * state
    # backward: recompute h (k, v; write h), dh scan (q, do; write dh), dv (q, k, do, dh; write dv),
    # dq/dk (q, k, v, do, h, dh; write dq, dk)
    bwd_bytes = elem_bytes * (K + V + K + V + 2 * K + 2 * V + 4 * K + 2 * V) * BTH + 6 * state
    if mixer == "hgrn2":  # fp32 gates (cumsum, h, o, dh, dv, dqk, reverse cumsum) and fp32 scores A
        fwd_bytes += BTH * (4 * K * 4 + 4 * chunk * 2)
        bwd_bytes += BTH * (4 * K * 8 + 4 * chunk * 2)
    return {"fwd_flops": flops, "fwdbwd_flops": 3 * flops, "fwd_bytes": fwd_bytes,
            "fwdbwd_bytes": fwd_bytes + bwd_bytes}


def _fla_op(mixer: str):
    """flash-linear-attention's matching op, or None when fla is not importable."""
    try:
        if mixer == "hgrn2":
            return importlib.import_module("fla.ops.gla").chunk_gla
        return importlib.import_module("fla.ops.simple_gla").chunk_simple_gla
    except Exception:  # noqa: BLE001 - any import failure means "not available"
        return None


def _fwd_and_fwdbwd(call, inputs, device):
    """Times of call(*inputs) forward only and forward + backward w.r.t. inputs that require grad."""
    with torch.no_grad():
        fwd = _timer(lambda: call(*inputs), device)
    out = call(*inputs)
    do = torch.randn_like(out)
    params = [x for x in inputs if isinstance(x, torch.Tensor) and x.requires_grad]

    def fwd_bwd():
        torch.autograd.grad(call(*inputs), params, do)

    return fwd, _timer(fwd_bwd, device)


def bench_mixer(mixer, B, T, H, D, dtype, device):
    """Rows for one mixer and length: ours, fla's (if importable)."""
    from linscale import kernels
    from linscale.kernels.chunk import CHUNK_SIZE, GATED_CHUNK_SIZE

    q, k, v, decay = mixer_inputs(mixer, B, T, H, D, dtype, device)
    for x in (q, k, v, decay.get("g")):
        if x is not None:
            x.requires_grad_(True)
    g, g_gamma = decay.get("g"), decay.get("g_gamma")
    rows = []
    cost = cost_model(mixer, B, T, H, D, q.element_size(), GATED_CHUNK_SIZE if g is not None else CHUNK_SIZE)

    def ours(q, k, v, g=None):
        return kernels.chunk_gla(q, k, v, g=g, g_gamma=g_gamma, scale=1.0)[0]

    args = (q, k, v) if g is None else (q, k, v, g)
    fwd, fwdbwd = _fwd_and_fwdbwd(ours, args, device)
    rows.append(dict(mixer=mixer, impl="linscale", T=T, fwd_ms=fwd, fwdbwd_ms=fwdbwd, **cost))

    fla = _fla_op(mixer)
    if fla is not None:
        try:
            if mixer == "hgrn2":
                def theirs(q, k, v, g):
                    return fla(q, k, v, g, scale=1.0)[0]
            else:
                gamma = g_gamma

                def theirs(q, k, v):
                    return fla(q, k, v, g_gamma=gamma, scale=1.0)[0]
            fwd_f, fwdbwd_f = _fwd_and_fwdbwd(theirs, args, device)
            with torch.no_grad():  # a timing only counts if both compute the same thing
                o_ours, o_fla = ours(*args).float(), theirs(*args).float()
                diff = ((o_ours - o_fla).abs().max() / o_ours.abs().max()).item()
            rows.append(dict(mixer=mixer, impl="fla", T=T, fwd_ms=fwd_f, fwdbwd_ms=fwdbwd_f, **cost,
                             diff_vs_ours=diff))
        except Exception as err:  # noqa: BLE001 - report, keep benchmarking
            print(f"fla {mixer} T={T}: {type(err).__name__}: {err}", file=sys.stderr)
    return rows


def bench_sdpa(B, T, H, D, dtype, device):
    q, k, v = (torch.randn(B, H, T, D, dtype=dtype, device=device, requires_grad=True) for _ in range(3))

    def sdpa(q, k, v):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)

    fwd, fwdbwd = _fwd_and_fwdbwd(sdpa, (q, k, v), device)
    flops = 2 * B * H * T * T * D
    nbytes = 4 * B * T * H * D * q.element_size()
    return dict(mixer="sdpa", impl="torch", T=T, fwd_ms=fwd, fwdbwd_ms=fwdbwd, fwd_flops=flops,
                fwdbwd_flops=3.5 * flops, fwd_bytes=nbytes, fwdbwd_bytes=nbytes * 3)


def bench_decode(mixer, B, H, D, dtype, device):
    """One decoding step (T = 1 with a state) through the recurrent kernel: bandwidth-bound."""
    from linscale import kernels

    q, k, v, decay = mixer_inputs(mixer, B, 1, H, D, dtype, device)
    state = torch.randn(B, H, q.shape[-1], D, device=device)
    with torch.no_grad():
        ms = _timer(lambda: kernels.fused_recurrent_gla(q, k, v, **decay, scale=1.0, initial_state=state,
                                                        output_final_state=True), device)
    nbytes = state.numel() * 4 * 2  # read and write the fp32 state
    return dict(mixer=mixer, impl="decode step", T=1, fwd_ms=ms, fwdbwd_ms=float("nan"), fwd_flops=2 * state.numel(),
                fwdbwd_flops=float("nan"), fwd_bytes=nbytes, fwdbwd_bytes=float("nan"))


def format_table(rows: list[dict]) -> str:
    lines = ["| mixer | impl | T | fwd ms | fwd TB/s (of 4.3) | fwd TFLOP/s (of 790) | fwd+bwd ms | fwd+bwd TB/s | fwd+bwd TFLOP/s "
             "| fwd vs sdpa | fwd+bwd vs sdpa | fwd vs fla | fwd+bwd vs fla | max diff vs ours |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    sdpa = {r["T"]: r for r in rows if r["mixer"] == "sdpa"}
    fla = {(r["mixer"], r["T"]): r for r in rows if r["impl"] == "fla"}

    def rate(amount, ms, unit):
        return amount / (ms * 1e-3) / unit if ms == ms and ms > 0 else float("nan")

    def num(x, fmt):
        return "-" if x != x else format(x, fmt)  # NaN: not measured (decode has no backward)

    for r in rows:
        s, f = sdpa.get(r["T"]), fla.get((r["mixer"], r["T"]))
        vs_sdpa = f"{s['fwd_ms'] / r['fwd_ms']:.2f}x" if s and r["mixer"] != "sdpa" else "-"
        vs_sdpa_b = f"{s['fwdbwd_ms'] / r['fwdbwd_ms']:.2f}x" if s and r["mixer"] != "sdpa" and \
            r["fwdbwd_ms"] == r["fwdbwd_ms"] else "-"
        vs_fla = f"{f['fwd_ms'] / r['fwd_ms']:.2f}x" if f and r["impl"] == "linscale" else "-"
        vs_fla_b = f"{f['fwdbwd_ms'] / r['fwdbwd_ms']:.2f}x" if f and r["impl"] == "linscale" else "-"
        # fla's output against ours on the same inputs, relative to max |ours| (bf16: about 1e-2 is agreement)
        diff = f"{r['diff_vs_ours']:.1e}" if "diff_vs_ours" in r else "-"
        tbps, tflops = rate(r["fwd_bytes"], r["fwd_ms"], 1e12), rate(r["fwd_flops"], r["fwd_ms"], 1e12)
        lines.append(
            f"| {r['mixer']} | {r['impl']} | {r['T']} | {r['fwd_ms']:.3f}"
            f" | {tbps:.2f} ({tbps / H200_TBPS:.0%}) | {tflops:.1f} ({tflops / H200_TFLOPS:.0%}) | {num(r['fwdbwd_ms'], '.3f')}"
            f" | {num(rate(r['fwdbwd_bytes'], r['fwdbwd_ms'], 1e12), '.2f')}"
            f" | {num(rate(r['fwdbwd_flops'], r['fwdbwd_ms'], 1e12), '.1f')}"
            f" | {vs_sdpa} | {vs_sdpa_b} | {vs_fla} | {vs_fla_b} | {diff} |")
    return "\n".join(lines)


def _progress(rows: list[dict]) -> None:
    """One stderr line per measurement as it is taken: a run cut short by a time limit (a lent GPU comes
    with minutes) still shows what it measured."""
    for r in rows:
        print(f"measured {r['mixer']} {r['impl']} T={r['T']}: fwd {r['fwd_ms']:.3f} ms, fwd+bwd {r['fwdbwd_ms']:.3f} ms",
              file=sys.stderr, flush=True)


def run(dry_run: bool = False, seq_lens=None, batch: int = 8, heads: int = 16, dim: int = 128,
        output: str | Path | None = None) -> str:
    """Benchmark every mixer's kernel, SDPA and fla; return (and optionally write) a Markdown report.

    Ratios ("vs sdpa", "vs fla") are other's time / ours: above 1 means ours is faster.
    """
    import triton

    global CPU_REPS
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if dry_run:
        seq_lens, batch, heads, dim = seq_lens or [40], 1, 2, 16
        CPU_REPS = 1
        dtype = torch.float32 if device == "cpu" else torch.bfloat16
    else:
        if device != "cuda":
            raise SystemExit("the full benchmark needs a CUDA GPU; use --dry-run on a CPU (TRITON_INTERPRET=1)")
        seq_lens, dtype = seq_lens or [1024, 2048, 4096, 8192, 16384], torch.bfloat16
    machine = torch.cuda.get_device_name() if device == "cuda" else f"CPU {platform.processor() or platform.machine()}"
    rows = []
    for T in seq_lens:
        for mixer in MIXERS:
            measured = bench_mixer(mixer, batch, T, heads, dim, dtype, device)
            _progress(measured)
            rows += measured
        rows.append(bench_sdpa(batch, T, heads, dim, dtype, device))
        _progress(rows[-1:])
        if device == "cuda":
            torch.cuda.empty_cache()
    for mixer in MIXERS:
        rows.append(bench_decode(mixer, batch, heads, dim, dtype, device))
    fla_version = getattr(importlib.import_module("fla"), "__version__", "?") if _fla_op("tnl") else "not installed"
    header = [
        f"# Kernel benchmark, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
        "",
        f"- machine: {machine}; torch {torch.__version__}; triton {triton.__version__}; fla {fla_version}",
        f"- shape: B={batch}, H={heads}, D={dim} (cosFormer2: K=2D), {str(dtype).removeprefix('torch.')}"
        + ("; DRY RUN (tiny shapes, timings meaningless)" if dry_run else ""),
        f"- ceilings (H200, measured): {H200_TBPS} TB/s, {H200_TFLOPS:.0f} TFLOP/s bf16; throughput from the cost"
        " models in benchmarks/bench_kernels.py; ratios are other time / ours (> 1: ours faster)",
        "",
    ]
    report = "\n".join(header) + "\n" + format_table(rows) + "\n"
    if device == "cuda":
        peak = max(r["fwd_bytes"] / (r["fwd_ms"] * 1e-3) / 1e12 for r in rows if r["impl"] == "linscale")
        report += f"\nBest forward bandwidth of the chunked kernels: {peak:.2f} TB/s = {peak / H200_TBPS:.0%} of 4.3 TB/s\n"
    if output:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(str(output) + ".tmp")
        tmp.write_text(report)
        tmp.replace(output)
    return report


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="tiny shapes; runs on a CPU under TRITON_INTERPRET=1")
    parser.add_argument("--seq-lens", type=int, nargs="+", help="sequence lengths (default 1K..16K)")
    parser.add_argument("--output", help="also write the Markdown report here")
    args = parser.parse_args(argv)
    print(run(dry_run=args.dry_run, seq_lens=args.seq_lens, output=args.output))


if __name__ == "__main__":
    main(sys.argv[1:])
