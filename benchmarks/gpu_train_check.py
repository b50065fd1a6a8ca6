"""Training on a GPU, as the paper preset's runs take it: do the models train right and how fast, against
the GPU's own measured matrix rate (the complement of gpu_check.sh's kernel tests).

    python benchmarks/gpu_train_check.py --output report.md     # a CUDA GPU: the paper's shapes
    python benchmarks/gpu_train_check.py --dry-run              # CPU: tiny shapes, Triton interpreted

1. **Peak.** The bf16 matrix product rate of this GPU, measured here (8192^3, random operands, CUDA events,
   median of 10 after 3 warm-ups): the anchor of every utilisation figure below.
2. **Agreement.** One forward and backward of each linear model at the paper's smallest shape (70M), with
   the Triton kernels and with the PyTorch chunked form on the same GPU, same weights, same batch: the
   relative difference of the loss and of all gradients together, in fp32 and under bf16 autocast (as
   `precision: bf16-mixed` trains). The limits are fixed here, before any GPU has run the code: fp32
   (Triton's tf32 dots) loss 1e-4, gradients 1e-2; bf16 loss 1e-2, gradients 5e-2.
3. **Throughput.** An optimiser step as a run takes it (`linscale.bench.train_step`: loss, finiteness
   check, backward, clipping, fused AdamW, schedule) under bf16 autocast at the paper's context (8192) for
   the 70M, 410M and 1B shapes of all four architectures: tokens/s, counted FLOP/s and model FLOP
   utilisation against the measured peak, peak memory; for the linear models at 70M (``--compare-sizes``)
   also with the PyTorch chunked form, side by side (the kernels' speed-up in training, in one run).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
from pathlib import Path

import torch

if not torch.cuda.is_available():  # the kernels need the interpreter on a CPU, set before import
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pandas as pd  # noqa: E402

from linscale import bench, flops  # noqa: E402
from linscale.config import ModelConfig  # noqa: E402
from linscale.models import build_model  # noqa: E402

LINEAR = ("tnl", "hgrn2", "cosformer2")
# (loss, gradients) relative-difference limits between the Triton and PyTorch forms, fixed before any run
LIMITS = {"fp32": (1e-4, 1e-2), "bf16": (1e-2, 5e-2)}


def bf16_peak(n: int, device: str, warmup: int = 3, repeats: int = 10) -> float:
    """FLOP/s of an n x n x n product (bf16 on a GPU, fp32 on a CPU): median of ``repeats``."""
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    g = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(n, n, device=device, dtype=dtype, generator=g)
    b = torch.randn(n, n, device=device, dtype=dtype, generator=g)
    for _ in range(warmup):
        a @ b
    times = []
    for _ in range(repeats):
        start = _now(device)
        a @ b
        times.append(_now(device) - start)
    return 2 * n ** 3 / statistics.median(times)


def _now(device: str) -> float:
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter()


def _autocast(device: str, precision: str):
    if precision == "bf16":
        return torch.autocast(device, dtype=torch.bfloat16)
    return torch.autocast(device, enabled=False)


def _with_backend(backend: str):
    os.environ["LINSCALE_BACKEND"] = backend


def agreement(configs: dict[str, ModelConfig], device: str, batch: int, seq_len: int,
              precisions=("fp32", "bf16")) -> pd.DataFrame:
    """Triton kernels against the PyTorch chunked form in one forward and backward (see the docstring)."""
    rows = []
    for arch, config in configs.items():
        torch.manual_seed(0)
        with torch.device(device):
            model = build_model(config)
        g = torch.Generator().manual_seed(1)
        tokens = torch.randint(0, config.vocab_size, (batch, seq_len + 1), generator=g).to(device)
        for precision in precisions:
            got = {}
            for backend in ("torch", "triton"):
                _with_backend(backend)
                model.zero_grad(set_to_none=True)
                with _autocast(device, precision):
                    loss = model(tokens[:, :-1], labels=tokens[:, 1:]).loss
                loss.backward()
                grads = torch.cat([p.grad.double().flatten() for p in model.parameters() if p.grad is not None])
                got[backend] = (float(loss.detach()), grads)
            (loss_ref, grad_ref), (loss_k, grad_k) = got["torch"], got["triton"]
            loss_diff = abs(loss_k - loss_ref) / abs(loss_ref)
            grad_diff = float((grad_k - grad_ref).norm() / grad_ref.norm())
            finite = bool(torch.isfinite(grad_k).all()) and loss_k == loss_k
            loss_limit, grad_limit = LIMITS[precision]
            rows.append(dict(arch=arch, size=config.name, precision=precision, loss_torch=loss_ref,
                             loss_triton=loss_k, loss_rel_diff=loss_diff, grad_rel_diff=grad_diff,
                             passed=finite and loss_diff <= loss_limit and grad_diff <= grad_limit))
        del model
    os.environ.pop("LINSCALE_BACKEND", None)
    return pd.DataFrame(rows)


def throughput(configs: list[ModelConfig], device: str, batch: int, seq_len: int, peak: float,
               warmup: int = 3, repeats: int = 8, compare_sizes=None) -> pd.DataFrame:
    """Median step time of ``bench.train_step`` under bf16 autocast (fp32 on a CPU), both backends for
    the linear models (see the docstring)."""
    settings = dataclasses.replace(bench.train_settings("paper"), seq_len=seq_len, batch_size=batch,
                                   micro_batch_size=batch)
    precision = "bf16" if device == "cuda" else "fp32"
    rows = []
    for config in configs:
        # the PyTorch form beside the kernels only at compare_sizes (all when None): at 1B HGRN2's runs out
        # of memory and at 410M its steps take 1.8 s, most of a lent GPU's minutes
        if config.arch not in LINEAR:
            backends = ("sdpa",)
        elif compare_sizes is None or config.name in compare_sizes:
            backends = ("triton", "torch")
        else:
            backends = ("triton",)
        for backend in backends:
            _with_backend("torch" if backend == "torch" else "triton")
            torch.manual_seed(0)
            with torch.device(device):
                model = build_model(config)
            batches = [(x.to(device), y.to(device)) for x, y in bench._batches(config, settings, count=2)]
            step = bench.train_step(model, settings, batches)
            if device == "cuda":
                torch.cuda.reset_peak_memory_stats()
            try:
                times = []
                for i in range(warmup + repeats):
                    start = _now(device)
                    with _autocast(device, precision):
                        step()
                    if i >= warmup:
                        times.append(_now(device) - start)
            except torch.OutOfMemoryError:
                rows.append(dict(arch=config.arch, size=config.name, backend=backend, note="out of memory"))
                continue
            finally:  # an out-of-memory step must not leave its cache to the next model
                del model, step
                if device == "cuda":
                    torch.cuda.empty_cache()
            seconds = statistics.median(times)
            tokens = batch * seq_len
            counted = flops.flops_per_token(config, seq_len) * tokens / seconds
            every = bench.all_flops_per_token(config, seq_len) * tokens / seconds
            rows.append(dict(arch=config.arch, size=config.name, backend=backend,
                             params_M=flops.non_embedding_params(config) / 1e6, step_ms=1e3 * seconds,
                             tokens_per_s=tokens / seconds, tflops=counted / 1e12, mfu=counted / peak,
                             mfu_all=every / peak,
                             peak_mem_GiB=(torch.cuda.max_memory_allocated() / 2 ** 30) if device == "cuda" else None))
            print(rows[-1], flush=True)  # the report is written at the end; a time limit keeps these
    os.environ.pop("LINSCALE_BACKEND", None)
    table = pd.DataFrame(rows)
    if "step_ms" in table:  # the kernels' speed-up over the PyTorch form, measured in this run
        ms = table.pivot_table(index=["arch", "size"], columns="backend", values="step_ms")
        if {"torch", "triton"} <= set(ms.columns):
            speedup = (ms["torch"] / ms["triton"]).rename("triton_speedup").reset_index()
            table = table.merge(speedup, on=["arch", "size"], how="left")
    return table


def machine() -> str:
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        return f"{p.name}, {p.multi_processor_count} SMs, {p.total_memory / 2 ** 30:.0f} GiB"
    return "CPU (dry run)"


def run(dry_run: bool = False, sizes=("70M", "410M", "1B"), archs=None, agree: bool = True,
        warmup: int = 3, repeats: int = 8, compare_sizes=("70M",)) -> str:
    import triton

    # A dry run takes the GPU where there is one, as bench_kernels.py's does: the H200 image's Triton 3.6
    # interpreter fails with its NumPy 2.5 (reference/kernels.md section 5), so interpreting there cannot work.
    device = "cuda" if torch.cuda.is_available() else "cpu"
    grid = bench.grid_configs("paper")
    if dry_run:
        quick = dict(n_layer=2, d_model=32, n_head=2, vocab_size=64, d_ffn=64)
        small = {arch: ModelConfig(arch=arch, name="quick", **quick) for arch in grid}
        agree_at, sizes, seq_len, batch, n = small, list(small.values()), 64, 2, 256
    else:
        by_name = {arch: {c.name: c for c in configs} for arch, configs in grid.items()}
        agree_at = {arch: by_name[arch]["70M"] for arch in LINEAR}
        sizes = [by_name[arch][size] for size in sizes for arch in grid if arch in (archs or grid)]
        seq_len, batch, n = 8192, 2, 8192
    lines = [f"# Training on the GPU: {machine()}", "",
             f"torch {torch.__version__} (CUDA {torch.version.cuda}), Triton {triton.__version__}, "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", ""]
    peak = bf16_peak(n, device)
    lines += [f"Measured matrix-product peak ({'bf16' if device == 'cuda' else 'fp32'}, {n}^3): "
              f"**{peak / 1e12:.1f} TFLOP/s**", ""]
    print("\n".join(lines), flush=True)
    agreed = True
    if agree:
        table = agreement({a: c for a, c in agree_at.items() if a in LINEAR}, device, batch=2,
                          seq_len=2048 if device == "cuda" else 64,
                          precisions=("fp32", "bf16") if device == "cuda" else ("fp32",))
        agreed = bool(table["passed"].all())
        section = ["## Agreement: Triton kernels vs the PyTorch chunked form (one forward + backward)", "",
                   f"Limits fixed in advance (loss, gradients): {LIMITS}", "", bench.format_table(table), ""]
        print("\n".join(section), flush=True)
        lines += section
    speed = throughput(sizes, device, batch=batch, seq_len=seq_len, peak=peak,
                       warmup=1 if dry_run else warmup, repeats=1 if dry_run else repeats,
                       compare_sizes=None if dry_run else compare_sizes)
    section = [f"## Throughput: an optimiser step, {batch} x {seq_len} tokens, "
               f"{'bf16 autocast' if device == 'cuda' else 'fp32'}", "",
               "`mfu`: counted (Table 1, non-embedding) FLOP/s over the measured peak; `mfu_all`: every "
               "matrix product counted (vocabulary projection too).", "", bench.format_table(speed), ""]
    verdict = ("agreement not checked" if not agree else
               "all agreement checks passed" if agreed else "AGREEMENT CHECK FAILED")
    section += [f"**{verdict}**", ""]
    print("\n".join(section), flush=True)
    lines += section
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dry-run", action="store_true",
                        help="tiny shapes: on the GPU where there is one, else on the CPU with Triton interpreted")
    parser.add_argument("--output", help="also write the Markdown report here")
    parser.add_argument("--sizes", nargs="+", default=["70M", "410M", "1B"], help="paper sizes to time")
    parser.add_argument("--archs", nargs="+", help="architectures to time (default: all four)")
    parser.add_argument("--skip-agreement", action="store_true", help="time only")
    parser.add_argument("--compare-sizes", nargs="+", default=["70M"],
                        help="sizes at which the PyTorch form is timed beside the kernels (2026-12-04: all three)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=8)
    args = parser.parse_args(argv)
    report = run(dry_run=args.dry_run, sizes=args.sizes, archs=args.archs, agree=not args.skip_agreement,
                 warmup=args.warmup, repeats=args.repeats, compare_sizes=args.compare_sizes)  # printed as it goes
    if args.output:
        from linscale.atomic import atomic_write

        atomic_write(args.output, lambda tmp: Path(tmp).write_text(report))
    return 0 if "FAILED" not in report else 1


if __name__ == "__main__":
    sys.exit(main())
