"""CPU benchmarks: every figure a ratio of timings measured side by side in one run.

    linscale bench            # the full suite (minutes on an idle 2-core machine), writes benchmarks/results/
    linscale bench --quick    # tiny shapes, a minute or two: what CI runs so the code cannot rot

Each section is a function returning a pandas DataFrame (the efficiency notebook calls the same ones):

- :func:`training_throughput`: tokens/s of a full optimiser step (forward, backward, AdamW) for each
  architecture, and for Hugging Face transformers' ``LlamaForCausalLM`` of the same shape; ratio ours/HF.
- :func:`length_scaling`: forward+backward time per token of each token mixer at growing context T with a
  fixed number of tokens per batch (B·T constant), normalised to T=512. Linear cost means a flat row.
- :func:`decoding`: per-token latency of ``generate`` after a prompt of growing length, normalised to the
  shortest, and the memory the decoding state holds (KV cache for LLaMA, fixed matrices otherwise).
- :func:`end_to_end`: wall time of the whole smoke and default CPU studies (``linscale study``), per stage.

For the preset's own grid (its sizes read from the preset, its training settings; issue 19):

- :func:`utilisation`: model FLOP utilisation of a training step at each architecture's smallest and
  largest size, against the core's fp32 GEMM rate measured in the same run (:func:`gemm_peak`), counting
  FLOPs as the results table does (Table 1, non-embedding) and with every matrix product, and where the
  step's time goes (:func:`step_profile`: GEMM, token mixer, loss, optimizer, other kernels, framework);
- :func:`lightning_overhead`: Lightning's per-step time over a bare loop doing the same work;
- :func:`changes`: step time before and after the fused loss and the fused AdamW, at every size, and the
  grid's summed step time before over after;
- :func:`attention_paths`: SDPA against the math backend and explicit attention at LLaMA's tiny heads;
- :func:`batched_runs`: several runs of one shape as one vmapped model against one after another;
- :func:`compile_gain` (only on request: minutes per case): whether ``torch.compile`` repays its compile
  time within one run.

Timing discipline (a shared, noisy machine cannot fake a ratio): the cases compared in one table run
interleaved (A B C, then C B A, ...), each timing is one call, and tables report medians over ``repeats``.
:func:`goals` turns the tables into the issue's pass/fail lines; :func:`write_report` stores everything
with the machine, the versions and the date.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import pandas as pd
import torch
import torch.nn.functional as F

from linscale.config import ARCHITECTURES, LINEAR_ARCHITECTURES, ConfigError, ModelConfig
from linscale.models import build_model
from linscale.tables import read_pipe_table
from linscale.train.code_paths import in_effect

# Shape used while the `cpu` preset does not exist (or has no sizes): about the CPU study's largest model.
DEFAULT_SHAPE = dict(n_layer=4, d_model=192, n_head=4, vocab_size=512)
QUICK_SHAPE = dict(n_layer=2, d_model=32, n_head=2, vocab_size=64, d_ffn=64)

# length_repeats: one round of the 24 length cases takes about 3 s; with 5 rounds the medians moved the
# T=8192/T=512 ratios by up to 0.2 between runs on the idle 2-core VM, with 15 they are steadier
FULL = dict(train_seq_len=256, train_batch_size=8, train_repeats=9,
            seq_lens=(256, 512, 1024, 2048, 4096, 8192), tokens_per_batch=8192, length_repeats=15,
            contexts=(128, 512, 2048, 8192), decode_tokens=32, decode_repeats=7,
            utilisation_repeats=7, profile_steps=3, lightning_steps=30, lightning_rounds=3, changes_repeats=9,
            attention_repeats=9, batched_runs=3, batched_repeats=7, compile_timeout_s=600, compile_repeats=9)
QUICK = dict(train_seq_len=32, train_batch_size=2, train_repeats=2,
             seq_lens=(32, 64, 128), tokens_per_batch=128, length_repeats=2,
             contexts=(16, 64), decode_tokens=4, decode_repeats=2,
             utilisation_repeats=2, profile_steps=1, lightning_steps=5, lightning_rounds=2, changes_repeats=2,
             attention_repeats=2, batched_runs=2, batched_repeats=2, compile_timeout_s=300, compile_repeats=2)

# The goals: (name, threshold, direction) checked by `goals`.
GOAL_HF_SPEEDUP = 1.3  # our LLaMA's training tokens/s over LlamaForCausalLM's
GOAL_LENGTH_RATIO = 1.3  # linear mixers: time/token at the longest T over that at the reference T
GOAL_DECODE_RATIO = 1.15  # linear models: decode latency/token at the longest context over the shortest


# ----------------------------------------------------------------------------- timing


TIMERS = {"wall": time.perf_counter, "process": time.process_time}


def interleaved_medians(cases: dict, repeats: int, warmup: int = 1, timer: str = "wall") -> dict:
    """Median time (s) of each case (a dict of zero-argument callables), run interleaved, alternating order.

    Interleaving makes every case see the same machine load on average, so their ratio is meaningful
    even when absolute times are not; alternating the order cancels "who runs right after whom".
    ``timer="process"`` counts this process's CPU seconds instead of wall seconds: on a machine shared
    with other jobs it is far steadier, but it only means "time" with one thread (``--threads 1``).
    """
    clock = TIMERS[timer]
    names = list(cases)
    for _ in range(warmup):
        for name in names:
            cases[name]()
    times = {name: [] for name in names}
    for r in range(repeats):
        for name in (names if r % 2 == 0 else names[::-1]):
            start = clock()
            cases[name]()
            times[name].append(clock() - start)
    return {name: statistics.median(t) for name, t in times.items()}


# ----------------------------------------------------------------------------- shapes


def bench_configs(preset: str | None = "cpu", quick: bool = False) -> dict[str, ModelConfig]:
    """One config per architecture: the preset's largest size (by non-embedding parameters), or
    ``DEFAULT_SHAPE`` without a preset; ``QUICK_SHAPE`` with ``quick``. An unknown preset is a
    ConfigError naming it (timing a default shape in its place would report numbers for the wrong grid)."""
    if quick:
        return {arch: ModelConfig(arch=arch, name="quick", **QUICK_SHAPE) for arch in ARCHITECTURES}
    configs = []
    if preset:
        from linscale.presets import load_preset, model_configs

        spec = load_preset(preset)
        # Study presets (smoke, cpu) leave the vocabulary to their data module; time with the default
        # shape's vocabulary then (about the synthetic language's size).
        spec = {**spec, "model": {"vocab_size": DEFAULT_SHAPE["vocab_size"], **spec.get("model", {})}}
        configs = model_configs(spec)
    if not configs:
        return {arch: ModelConfig(arch=arch, name="default", **DEFAULT_SHAPE) for arch in ARCHITECTURES}
    from linscale.flops import non_embedding_params

    largest = {}
    for cfg in configs:
        if cfg.arch not in largest or non_embedding_params(cfg) > non_embedding_params(largest[cfg.arch]):
            largest[cfg.arch] = cfg
    return largest


def hf_llama(config: ModelConfig) -> torch.nn.Module:
    """transformers' LlamaForCausalLM with our LLaMA's width, depth, heads, FFN width and vocabulary
    (tied embeddings, no biases, SDPA attention, the same RoPE base and norm epsilon)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    hf_config = LlamaConfig(
        vocab_size=config.vocab_size, hidden_size=config.d_model, intermediate_size=config.d_ffn,
        num_hidden_layers=config.n_layer, num_attention_heads=config.n_head, num_key_value_heads=config.n_head,
        max_position_embeddings=config.max_seq_len, rms_norm_eps=config.norm_eps, tie_word_embeddings=True,
        rope_parameters={"rope_type": "default", "rope_theta": config.rope_base}, use_cache=False,
    )
    hf_config._attn_implementation = "sdpa"
    return LlamaForCausalLM(hf_config)


# ----------------------------------------------------------------------------- sections


def training_throughput(configs: dict[str, ModelConfig], seq_len: int = 256, batch_size: int = 8,
                        repeats: int = 7, with_hf: bool = True, seed: int = 0, timer: str = "wall") -> pd.DataFrame:
    """Tokens/s of one optimiser step (forward, backward, AdamW) per architecture, plus HF LLaMA.

    Every model sees the same random batch and the same optimiser settings; steps are interleaved.
    Column ``vs_hf_llama`` is tokens/s over HF LlamaForCausalLM's (the goal is ≥ 1.3 for our LLaMA).
    """
    torch.manual_seed(seed)
    tokens = torch.randint(0, min(c.vocab_size for c in configs.values()), (batch_size, seq_len + 1))
    inputs, labels = tokens[:, :-1], tokens[:, 1:]
    models = {arch: build_model(cfg) for arch, cfg in configs.items()}
    if with_hf and "llama" in configs:
        models["hf_llama"] = hf_llama(configs["llama"])

    def step_fn(name, model):
        # fused AdamW for every model alike: one kernel per step instead of a dozen per parameter, so the
        # ratio compares the models (training uses the default AdamW: about 1% of a cpu-preset step)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.1, fused=True)
        if name == "hf_llama":  # HF shifts the labels itself: give it the same T+1 tokens to predict from
            def loss_fn():
                return model(input_ids=tokens, labels=tokens).loss
        else:
            def loss_fn():
                return model(inputs, labels=labels).loss

        def step():
            loss = loss_fn()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return step

    steps = {name: step_fn(name, m) for name, m in models.items()}
    medians = interleaved_medians(steps, repeats, timer=timer)
    rows = []
    for name, seconds in medians.items():
        cfg = configs["llama" if name == "hf_llama" else name]
        kernels_s, other_s = kernel_split(steps[name])
        rows.append(dict(model=name, n_layer=cfg.n_layer, d_model=cfg.d_model, n_head=cfg.n_head, d_ffn=cfg.d_ffn,
                         vocab_size=cfg.vocab_size, seq_len=seq_len, batch_size=batch_size,
                         step_s=seconds, tokens_per_s=batch_size * seq_len / seconds,
                         kernels_ms=1e3 * kernels_s, other_ms=1e3 * other_s))
    table = pd.DataFrame(rows)
    if "hf_llama" in medians:
        table["vs_hf_llama"] = table["tokens_per_s"] / table.loc[table.model == "hf_llama", "tokens_per_s"].item()
    return table


# The aten kernels any fp32 implementation of the same model calls for the same work: matrix products,
# attention (forward and backward) and the loss's log-softmax. Everything else (element-wise operations,
# autograd and Python) is where one implementation can beat another without changing the arithmetic.
SHARED_KERNELS = ("aten::mm", "aten::addmm", "aten::addmm_", "aten::bmm", "aten::_log_softmax",
                  "aten::_log_softmax_backward_data", "aten::_softmax")  # _softmax, addmm_: our fused loss
SHARED_KERNEL_PREFIXES = ("aten::_scaled_dot_product_flash_attention", "aten::_scaled_dot_product_efficient_attention")


def kernel_split(step: Callable[[], None], steps: int = 3) -> tuple[float, float]:
    """(seconds per call of ``step`` spent in SHARED_KERNELS, seconds in everything else), from
    torch.profiler's self CPU times (profiling inflates the second a little)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    shared = sum(e.self_cpu_time_total for e in events
                 if e.key in SHARED_KERNELS or e.key.startswith(SHARED_KERNEL_PREFIXES))
    return shared / steps / 1e6, (total - shared) / steps / 1e6


def _mixer_case(model, block_idx: int, batch_size: int, seq_len: int):
    """forward+backward of one block's token mixer on random input (B, T, d)."""
    mixer = model.blocks[block_idx].token_mixer
    x = torch.randn(batch_size, seq_len, model.config.d_model, requires_grad=True)
    dy = torch.randn(batch_size, seq_len, model.config.d_model)

    def run():
        extra = model.layer_inputs()[block_idx]  # HGRN2's lower bound (part of its mixer's graph)
        y, _ = mixer(x, **extra)
        y.backward(dy)
        x.grad = None
        mixer.zero_grad(set_to_none=True)
    return run


def length_scaling(configs: dict[str, ModelConfig], seq_lens=(256, 512, 1024, 2048, 4096, 8192),
                   tokens_per_batch: int = 8192, repeats: int = 5, reference_len: int | None = None,
                   timer: str = "wall") -> pd.DataFrame:
    """Forward+backward time per token of each token mixer at context T, with B·T fixed.

    The mixer of a middle block (projections, gates, norm and the sequence mixing itself) is timed, so
    LLaMA's quadratic attention shows undiluted by the channel mixer. All mixers at one T run
    interleaved. ``vs_ref`` divides by the same mixer's time/token at ``reference_len`` (512 when
    present, else the shortest T); ``vs_llama`` by LLaMA's at the same T.
    """
    reference_len = reference_len or (512 if 512 in seq_lens else min(seq_lens))
    rows = []
    models = {arch: build_model(cfg.replace(max_seq_len=max(cfg.max_seq_len, max(seq_lens))))
              for arch, cfg in configs.items()}
    # every (mixer, T) in one interleaved schedule: the ratios across T are side by side too
    cases, shapes = {}, {}
    for T in seq_lens:
        B = max(1, tokens_per_batch // T)
        for arch, m in models.items():
            cases[arch, T], shapes[arch, T] = _mixer_case(m, len(m.blocks) // 2, B, T), (B, T)
    for (arch, T), seconds in interleaved_medians(cases, repeats, timer=timer).items():
        B = shapes[arch, T][0]
        rows.append(dict(mixer=arch, seq_len=T, batch_size=B, s_per_step=seconds, us_per_token=1e6 * seconds / (B * T)))
    table = pd.DataFrame(rows)
    ref = table[table.seq_len == reference_len].set_index("mixer")["us_per_token"]
    table["vs_ref"] = table["us_per_token"] / table["mixer"].map(ref)
    if "llama" in configs:
        llama = table[table.mixer == "llama"].set_index("seq_len")["us_per_token"]
        table["vs_llama"] = table["us_per_token"] / table["seq_len"].map(llama)
    table.attrs["reference_len"] = reference_len
    return table


def decoding(configs: dict[str, ModelConfig], contexts=(128, 512, 2048, 8192), new_tokens: int = 32,
             repeats: int = 7, seed: int = 0, timer: str = "wall") -> pd.DataFrame:
    """Per-token latency of ``generate`` (batch 1, greedy) after a prompt of each context length.

    The prompt is consumed once (``return_state=True``); each timed call is ``generate`` continuing that
    state by ``new_tokens`` tokens, so only decoding steps are timed. ``state_bytes`` is
    ``DecodeState.nbytes()`` after the prompt. ``vs_ref`` divides by the shortest context's latency,
    ``vs_llama`` by LLaMA's at the same context. ``n_layer`` and ``d_model`` name the shape timed, so that
    a report (or its rounds) says which shape it measured.
    """
    torch.manual_seed(seed)
    models = {arch: build_model(cfg.replace(max_seq_len=max(cfg.max_seq_len, max(contexts) + new_tokens + 1))).eval()
              for arch, cfg in configs.items()}
    cases, nbytes = {}, {}  # every (model, context) in one interleaved schedule
    for L in contexts:
        prompt = torch.randint(0, min(c.vocab_size for c in configs.values()), (1, L))
        for arch, model in models.items():
            with torch.no_grad():
                state = model(prompt[:, :-1], return_state=True).state
            nbytes[arch, L] = state.nbytes()
            cases[arch, L] = (lambda model=model, state=state, last=prompt[:, -1:]:
                              model.generate(last, new_tokens, state=state))
    rows = [dict(model=arch, n_layer=configs[arch].n_layer, d_model=configs[arch].d_model, context=L,
                 ms_per_token=1e3 * seconds / new_tokens, state_bytes=nbytes[arch, L])
            for (arch, L), seconds in interleaved_medians(cases, repeats, timer=timer).items()]
    table = pd.DataFrame(rows)
    ref = table[table.context == min(contexts)].set_index("model")
    table["vs_ref"] = table["ms_per_token"] / table["model"].map(ref["ms_per_token"])
    table["state_vs_ref"] = table["state_bytes"] / table["model"].map(ref["state_bytes"])
    if "llama" in configs:
        llama = table[table.model == "llama"].set_index("context")["ms_per_token"]
        table["vs_llama"] = table["ms_per_token"] / table["context"].map(llama)
    return table


def end_to_end(presets=("smoke", "cpu"), timeout_s: float | None = None) -> pd.DataFrame:
    """Wall time of the whole study, ``linscale study --preset P`` (sweeps with ablations, evaluation,
    fits, book), for each preset, in a fresh process with runs, results and book in a temporary folder
    (the repository's are left alone); with each stage's time from the study's log."""
    import re

    rows = []
    for preset in presets:
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, "-m", "linscale", "study", "--preset", preset, "--runs-dir", f"{tmp}/runs",
                   "--results-dir", f"{tmp}/results", "--book-dir", f"{tmp}/book"]
            start = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
            wall = time.perf_counter() - start
        stages = {f"{m[1]}_s": float(m[2]) for m in re.finditer(r"\[study\] stage (\w+): (\d+) s", proc.stdout)}
        note = "" if proc.returncode == 0 else (proc.stderr.strip().splitlines() or ["failed"])[-1][:200]
        rows.append(dict(preset=preset, wall_s=wall, **stages, ok=proc.returncode == 0, note=note))
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- utilisation (issue 19)
#
# Model FLOP utilisation against the core's own fp32 GEMM rate, where a step's time goes, and the changes
# that were measured to pay (or not) for the study's small models, each side by side in one run.

# 2048 x n by n x n, n = 96 to 1024 (the shapes); the study's GEMMs are 2048 rows (b·n tokens) by
# its widths, so the small ones say what the models can hope for, the large ones what the core can do.
PEAK_SHAPES = tuple((2048, n, n) for n in (96, 192, 384, 512, 768, 1024))
QUICK_PEAK_SHAPES = ((256, 32, 32), (256, 64, 64))
QUICK_SMALL_SHAPE = dict(n_layer=1, d_model=16, n_head=2, vocab_size=64, d_ffn=32)
# The matrix-product kernels: what the FLOP count counts, at whatever rate the shapes allow.
GEMM_KERNELS = frozenset({"aten::mm", "aten::addmm", "aten::addmm_", "aten::bmm", "aten::baddbmm", "aten::addbmm",
                          "aten::_addmm_activation"})
PROFILE_CATEGORIES = ("gemm", "mixer", "loss", "optimizer", "other", "framework")
GOAL_MFU_LARGEST = 0.40  # counted training FLOP/s over the core's GEMM peak, at the grid's largest size
GOAL_MFU_SMALLEST = 0.25  # ... and at its smallest
GOAL_GRID_SPEEDUP = 2.0  # the main grid's training time, before over after
GOAL_BATCHED_SPEEDUP = 1.3  # R runs trained as one batched model over R runs one after another


def gemm_peak(shapes=PEAK_SHAPES, repeats: int = 5, timer: str = "wall", seconds: float = 0.05) -> pd.DataFrame:
    """fp32 GEMM rate (GFLOP/s) of ``torch.mm`` for each (m, n, k), with this process's torch threads.

    Each timing is enough back-to-back products to last about ``seconds``; a shape's rate is its best
    timing of ``repeats`` (a peak is what the core can do, not what a noisy moment let it). ``attrs``:
    ``peak`` (the best shape) and ``typical`` (the median shape).
    """
    clock = TIMERS[timer]
    rows = []
    for m, n, k in shapes:
        a, b, out = torch.randn(m, k), torch.randn(k, n), torch.empty(m, n)
        flop = 2 * m * n * k
        calls = max(1, int(seconds * 50e9 / flop))  # about `seconds` at 50 GFLOP/s
        torch.mm(a, b, out=out)
        best = float("inf")
        for _ in range(repeats):
            start = clock()
            for _ in range(calls):
                torch.mm(a, b, out=out)
            best = min(best, (clock() - start) / calls)
        rows.append(dict(m=m, n=n, k=k, gflops=flop / max(best, 1e-12) / 1e9))
    table = pd.DataFrame(rows)
    table.attrs.update(peak=float(table.gflops.max()), typical=float(table.gflops.median()))
    return table


def grid_configs(preset: str | None = "cpu", quick: bool = False) -> dict[str, list[ModelConfig]]:
    """Every size of each architecture of ``preset``'s grid, smallest first (non-embedding parameters),
    at the vocabulary its data gives (the synthetic language's for the study presets); two tiny shapes
    with ``quick``. The sizes are read from the preset, whatever they are."""
    if quick:
        return {arch: [ModelConfig(arch=arch, name="quick-small", **QUICK_SMALL_SHAPE),
                       ModelConfig(arch=arch, name="quick", **QUICK_SHAPE)] for arch in ARCHITECTURES}
    from linscale.flops import non_embedding_params
    from linscale.presets import load_preset, model_configs

    grid: dict[str, list[ModelConfig]] = {}
    for config in model_configs(load_preset(preset)):
        grid.setdefault(config.arch, []).append(config)
    return {arch: sorted(configs, key=non_embedding_params) for arch, configs in grid.items()}


def grid_extremes(grid: dict[str, list[ModelConfig]]) -> dict[tuple[str, str], ModelConfig]:
    """{(arch, "smallest" | "largest"): config} from :func:`grid_configs`."""
    return {(arch, which): configs[index] for arch, configs in grid.items()
            for which, index in (("smallest", 0), ("largest", -1))}


def train_settings(preset: str | None = "cpu", quick: bool = False):
    """The preset's training settings (context, batch, optimiser, clipping, steps per run)."""
    from linscale.train.settings import TrainSettings

    if quick:
        return TrainSettings(seq_len=QUICK["train_seq_len"], batch_size=QUICK["train_batch_size"], tokens=1e5)
    from linscale.presets import load_preset

    return TrainSettings.from_dict(load_preset(preset).get("train") or {})


def size_steps(preset: str | None = "cpu") -> dict[str, int]:
    """{size: optimiser steps of its runs} in ``preset``: the preset's budget, or the size's own
    (``sizes.<size>.train.tokens``, as the cpu grid gives each size)."""
    from linscale.presets import load_preset, split_size
    from linscale.train.settings import TrainSettings

    spec = load_preset(preset)
    base = spec.get("train") or {}
    return {size: TrainSettings.from_dict({**base, **split_size(size, shape)[1]}).total_steps
            for size, shape in spec["sizes"].items()}


def _batches(config: ModelConfig, settings, count: int = 4, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """A few random (inputs, labels) batches of the run's shape, cycled so no model fits one batch."""
    g = torch.Generator().manual_seed(seed)
    rows = [torch.randint(0, config.vocab_size, (settings.batch_size, settings.seq_len + 1), generator=g)
            for _ in range(count)]
    return [(r[:, :-1], r[:, 1:]) for r in rows]


def train_step(model, settings, batches, fused_loss: bool = True, fused_optimizer: bool = True) -> Callable[[], None]:
    """One optimiser step as a run takes it, without Lightning: forward and loss, the finiteness check,
    backward, gradient clipping, AdamW (``linscale.train.module.build_optimizer``), the LR schedule and
    zero_grad. ``fused_loss=False`` / ``fused_optimizer=False``: the code before issue 19 (logits and
    ``F.cross_entropy``; torch's per-tensor AdamW loop)."""
    from torch.autograd.profiler import record_function

    from linscale.train.module import build_optimizer, lr_factor

    settings = settings.for_width(model.config.d_model)
    optimizer = build_optimizer(model.parameters(), settings, fused=fused_optimizer)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, settings.total_steps, settings))
    parameters = [p for p in model.parameters() if p.requires_grad]
    position = [0]

    def step():
        inputs, labels = batches[position[0] % len(batches)]
        position[0] += 1
        model.fused_loss = fused_loss
        loss = model(inputs, labels=labels).loss
        if not bool(torch.isfinite(loss)):  # training checks every loss (and skips the update)
            raise FloatingPointError("benchmark step: the loss is not finite")
        loss.backward()
        with record_function("linscale::optimizer"):  # the profile's optimizer category
            if settings.grad_clip:
                torch.nn.utils.clip_grad_norm_(parameters, settings.grad_clip)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
    return step


def _seeded_model(config: ModelConfig, seed: int = 0):
    torch.manual_seed(seed)
    return build_model(config)


def step_profile(model, step: Callable[[], None], steps: int = 3) -> dict[str, float]:
    """Share of a step's (profiled) time in each of PROFILE_CATEGORIES:

    - ``gemm``: matrix-product kernels (GEMM_KERNELS) wherever they run, forward and backward;
    - ``mixer``: the token mixers' other kernels (LLaMA: SDPA's fused attention; linear models: the chunk
      form's exponentials, masks and products of small tensors), forward and backward;
    - ``loss``: the other kernels of the output projection and the loss, forward and backward;
    - ``optimizer``: everything in gradient clipping, AdamW, the LR schedule and zero_grad;
    - ``other``: the remaining kernels (embedding, norms, channel-mixer activations, residual adds);
    - ``framework``: the rest of the step's time, outside any kernel: Python, module calls, the autograd
      engine, the dispatcher (the profiler's own cost lands here too, so it reads high).

    Backward kernels are attributed through their autograd node's sequence number to the forward
    region that created it (the regions are marked with ``record_function`` from forward hooks).
    """
    from torch.autograd.profiler import record_function
    from torch.profiler import ProfilerActivity, profile

    open_scopes: dict[int, list] = {}

    def enter(name):
        def hook(module, *args):
            scope = record_function(f"linscale::{name}")
            scope.__enter__()
            open_scopes.setdefault(id(module), []).append(scope)
        return hook

    def leave(module, *args):
        open_scopes[id(module)].pop().__exit__(None, None, None)

    mixers = [block.token_mixer for block in model.blocks]
    if model.input_transform is not None:  # cosFormer2's TPE: token mixing along time, once per model
        mixers.append(model.input_transform)
    handles = []
    for mixer in mixers:
        handles += [mixer.register_forward_pre_hook(enter("mixer")), mixer.register_forward_hook(leave)]
    # the loss: from the final norm's output to the end of the model's forward
    loss_scope = enter("loss")
    handles += [model.norm.register_forward_hook(lambda m, a, out: loss_scope(model)),
                model.register_forward_hook(leave)]
    try:
        step()  # warm
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            start = time.perf_counter()
            for _ in range(steps):
                step()
            wall = time.perf_counter() - start
    finally:
        for handle in handles:
            handle.remove()
    return _categorise(prof.events(), wall)


def _categorise(events, wall_s: float) -> dict[str, float]:
    """Shares of ``wall_s`` per PROFILE_CATEGORIES from torch.profiler events (see :func:`step_profile`)."""
    def region(event, forward_only: bool) -> str | None:
        while event is not None:
            if event.name.startswith("linscale::"):
                return event.name.split("::", 1)[1]
            if event.name.startswith("autograd::engine::evaluate_function"):
                return None if forward_only else made_in.get(event.sequence_nr, "other")
            event = event.cpu_parent
        return "other"

    made_in = {}  # autograd node (sequence number) -> the forward region that created it
    for event in events:
        if event.sequence_nr >= 0 and not event.name.startswith("autograd::"):
            where = region(event, forward_only=True)
            if where is not None:
                made_in.setdefault(event.sequence_nr, where)
    us = dict.fromkeys(PROFILE_CATEGORIES, 0.0)
    for event in events:
        if event.name == "linscale::optimizer":
            us["optimizer"] += event.cpu_time_total
            continue
        if not event.name.startswith("aten::"):
            continue
        where = region(event, forward_only=False)
        if where == "optimizer":
            continue  # inside the optimizer's total already
        us["gemm" if event.name in GEMM_KERNELS else where] += event.self_cpu_time_total
    total_us = wall_s * 1e6
    shares = {name: us[name] / total_us for name in PROFILE_CATEGORIES if name != "framework"}
    shares["framework"] = max(0.0, 1.0 - sum(shares.values()))
    return shares


def all_flops_per_token(config: ModelConfig, seq_len: int) -> float:
    """Training FLOPs per token with nothing left out of the matrix products: Table 1 with the actual GLU
    width, plus the output projection onto the vocabulary (2·d·V forward, twice that backward); the
    embedding lookup is a gather, no FLOPs. Next to :func:`linscale.flops.flops_per_token`, it shows how
    much of a small model's arithmetic the paper's (non-embedding) count leaves out."""
    from linscale import flops

    return flops.flops_per_token(config, seq_len, ffn="actual") + 6 * config.d_model * config.vocab_size


def utilisation(extremes: dict[tuple[str, str], ModelConfig], settings, repeats: int = 7, timer: str = "wall",
                peak_shapes=PEAK_SHAPES, profile_steps: int = 3) -> pd.DataFrame:
    """Model FLOP utilisation of a training step (as runs take it, without Lightning) at each of
    ``extremes`` (:func:`grid_extremes`), against the core's fp32 GEMM rate measured in the same call,
    before and after the model timings (the better of the two peaks is the anchor).

    Columns: ``gflops`` counted training FLOP/s (Table 1, non-embedding, as the results table counts),
    ``mfu`` = gflops / peak; ``all_gflops`` / ``mfu_all`` the same with every matrix product counted
    (:func:`all_flops_per_token`); ``*_pct`` the step's time by profile category (:func:`step_profile`),
    and ``*_ms`` the same in milliseconds of the measured step. ``attrs``: ``peak``, ``typical`` (GFLOP/s)
    and ``peaks`` (the two GEMM tables).
    """
    from linscale import flops

    before = gemm_peak(peak_shapes, timer=timer)
    models, steps = {}, {}
    for key, config in extremes.items():
        models[key] = _seeded_model(config)
        steps[key] = train_step(models[key], settings, _batches(config, settings))
    medians = interleaved_medians(steps, repeats, timer=timer)
    after = gemm_peak(peak_shapes, timer=timer)
    peak = max(before.attrs["peak"], after.attrs["peak"])
    typical = max(before.attrs["typical"], after.attrs["typical"])
    rows = []
    for (arch, which), seconds in medians.items():
        config = extremes[arch, which]
        tokens = settings.batch_size * settings.seq_len
        counted = flops.flops_per_token(config, settings.seq_len) * tokens / seconds / 1e9
        every = all_flops_per_token(config, settings.seq_len) * tokens / seconds / 1e9
        shares = step_profile(models[arch, which], steps[arch, which], profile_steps)
        row = dict(arch=arch, size=config.name, which=which, params=flops.non_embedding_params(config),
                   d_model=config.d_model, n_layer=config.n_layer, vocab_size=config.vocab_size,
                   step_ms=1e3 * seconds, tokens_per_s=tokens / seconds, gflops=counted, mfu=counted / peak,
                   all_gflops=every, mfu_all=every / peak)
        row.update({f"{name}_pct": 100 * share for name, share in shares.items()})
        row.update({f"{name}_ms": 1e3 * seconds * share for name, share in shares.items()})
        rows.append(row)
    table = pd.DataFrame(rows)
    table.attrs.update(peak=peak, typical=typical, peaks=(before, after))
    return table


def changes(grid: dict[str, list[ModelConfig]], settings, repeats: int = 5, timer: str = "wall",
            run_steps: dict[str, int] | None = None) -> pd.DataFrame:
    """Step time before and after the changes of issue 19, at every size of the grid, all interleaved:
    ``before`` (logits + F.cross_entropy, torch's per-tensor AdamW loop) and ``after`` (the fused loss and
    the fused AdamW, as runs now train); at the smallest and largest sizes also ``loss`` (the fused loss
    alone) and ``adamw`` (the fused AdamW alone). The gains are before / that.
    ``attrs["grid_speedup"]``: the grid's training time before over after, each run's step time times its
    steps (``run_steps``: {size: steps}, :func:`size_steps`, as the cpu grid gives each size its own
    budget; else every run takes ``settings``' steps), the training part of a sweep's wall time."""
    variants = {"before": (False, False), "after": (True, True), "loss": (True, False), "adamw": (False, True)}
    cases, order = {}, []
    for arch, configs in grid.items():
        for i, config in enumerate(configs):
            which = "smallest" if i == 0 else "largest" if i == len(configs) - 1 else ""
            order.append((arch, config, which))
            for variant, (fused_loss, fused_optimizer) in list(variants.items())[:4 if which else 2]:
                model = _seeded_model(config)  # one model per variant: optimiser states stay apart
                cases[arch, config.name, variant] = train_step(model, settings, _batches(config, settings),
                                                               fused_loss, fused_optimizer)
    medians = interleaved_medians(cases, repeats, timer=timer)
    rows = []
    nan = float("nan")
    for arch, config, which in order:
        t = {v: medians.get((arch, config.name, v), nan) for v in variants}
        rows.append(dict(arch=arch, size=config.name, which=which,
                         steps=(run_steps or {}).get(config.name, settings.total_steps), before_ms=1e3 * t["before"],
                         after_ms=1e3 * t["after"], loss_gain=t["before"] / t["loss"],
                         adamw_gain=t["before"] / t["adamw"], gain=t["before"] / t["after"]))
    table = pd.DataFrame(rows)
    table.attrs["grid_speedup"] = float((table.steps * table.before_ms).sum() / (table.steps * table.after_ms).sum())
    return table


def attention_paths(configs: dict[str, ModelConfig], settings, repeats: int = 7, timer: str = "wall") -> pd.DataFrame:
    """Forward+backward of causal softmax attention at LLaMA's head shapes, three ways, interleaved:
    ``sdpa`` (what the model calls: PyTorch's fused CPU flash attention), ``math`` (SDPA's unfused
    reference backend) and ``explicit`` (q·kᵀ, mask, softmax, ·v written out). Ratios > 1: slower than sdpa."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    B, T = settings.batch_size, settings.seq_len
    causal = torch.ones(T, T, dtype=torch.bool).tril()

    def explicit(q, k, v):
        scores = (q @ k.transpose(-1, -2)) * q.shape[-1] ** -0.5
        return scores.masked_fill(~causal, float("-inf")).softmax(-1) @ v

    def math_backend(q, k, v):
        with sdpa_kernel(SDPBackend.MATH):
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)

    def sdpa(q, k, v):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)

    cases, shapes = {}, {}
    for name, config in configs.items():
        H, D = config.n_head, config.head_dim
        q, k, v = (torch.randn(B, H, T, D, requires_grad=True) for _ in range(3))
        dy = torch.randn(B, H, T, D)
        shapes[name] = (config, H, D)
        for path, fn in (("sdpa", sdpa), ("math", math_backend), ("explicit", explicit)):
            cases[name, path] = (lambda fn=fn, q=q, k=k, v=v, dy=dy: torch.autograd.grad(fn(q, k, v), (q, k, v), dy))
    medians = interleaved_medians(cases, repeats, timer=timer)
    rows = []
    for name, (config, H, D) in shapes.items():
        sdpa_s = medians[name, "sdpa"]
        rows.append(dict(which=name, size=config.name, n_head=H, head_dim=D, batch_size=B, seq_len=T,
                         sdpa_ms=1e3 * sdpa_s, math_ms=1e3 * medians[name, "math"],
                         explicit_ms=1e3 * medians[name, "explicit"], math_vs_sdpa=medians[name, "math"] / sdpa_s,
                         explicit_vs_sdpa=medians[name, "explicit"] / sdpa_s))
    return pd.DataFrame(rows)


def batched_runs(configs: dict[str, ModelConfig], settings, runs: int = 3, repeats: int = 7,
                 timer: str = "wall") -> pd.DataFrame:
    """Do ``runs`` runs of one shape (seeds) train faster as one batched model than one after another?

    A prototype measured before building anything: the runs' parameters stacked along a leading axis
    (``torch.func.stack_module_state``) and the model vmapped over it (``functional_call`` + ``vmap``),
    one fused AdamW over the stacked tensors, against ``runs`` separate models each taking its own step.
    Both use the unfused loss (vmap cannot batch the fused loss's autograd.Function) and no clipping
    (per-run clipping would only cost the batched form more). ``upper_bound``: ``runs`` separate steps
    over one model at ``runs`` times the batch, the most any batching over runs could give here.
    """
    from torch.func import functional_call, stack_module_state, vmap

    settings = dataclasses.replace(settings, grad_clip=None)
    cases, shapes = {}, {}
    for arch, config in configs.items():
        models = [_seeded_model(config, seed) for seed in range(runs)]
        batches = [_batches(config, settings, seed=seed) for seed in range(runs)]
        sequential = [train_step(m, settings, b, fused_loss=False) for m, b in zip(models, batches)]
        cases[arch, "sequential"] = lambda sequential=sequential: [s() for s in sequential]
        params, buffers = stack_module_state([_seeded_model(config, seed) for seed in range(runs)])
        params = {k: v.detach().requires_grad_() for k, v in params.items()}
        template = _seeded_model(config).to("meta")
        template.fused_loss = False
        optimizer = torch.optim.AdamW(list(params.values()), lr=1e-3, weight_decay=settings.weight_decay, fused=True)

        def loss_of(p, b, inputs, labels, template=template):
            return functional_call(template, (p, b), (inputs,), {"labels": labels}).loss

        batched_loss = vmap(loss_of)
        stacked = [tuple(torch.stack(x) for x in zip(*group)) for group in zip(*batches)]  # (R, B, T) each
        position = [0]

        def batched(params=params, buffers=buffers, optimizer=optimizer, batched_loss=batched_loss,
                    stacked=stacked, position=position):
            inputs, labels = stacked[position[0] % len(stacked)]
            position[0] += 1
            batched_loss(params, buffers, inputs, labels).sum().backward()  # runs are independent: Σ keeps each gradient
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        cases[arch, "batched"] = batched
        wide = dataclasses.replace(settings, batch_size=settings.batch_size * runs)
        cases[arch, "one_model"] = train_step(_seeded_model(config), wide, _batches(config, wide), fused_loss=False)
        shapes[arch] = config
    medians = interleaved_medians(cases, repeats, timer=timer)
    rows = []
    for arch, config in shapes.items():
        seq, bat, one = (medians[arch, k] for k in ("sequential", "batched", "one_model"))
        tokens = runs * settings.batch_size * settings.seq_len
        rows.append(dict(arch=arch, size=config.name, runs=runs, sequential_ms=1e3 * seq, batched_ms=1e3 * bat,
                         tokens_per_s_sequential=tokens / seq, tokens_per_s_batched=tokens / bat,
                         speedup=seq / bat, upper_bound=seq / one))
    return pd.DataFrame(rows)


class _StepClock:
    """A Lightning callback (made on demand: Lightning is imported only when needed) noting the time at
    the start of every training batch."""

    def __new__(cls, clock):
        import lightning as L

        class StepClock(L.Callback):
            def __init__(self):
                self.times = []

            def on_train_batch_start(self, *args):
                self.times.append(clock())
        return StepClock()


def lightning_overhead(configs: dict[tuple[str, str], ModelConfig], settings, steps: int = 30, rounds: int = 3,
                       timer: str = "wall") -> pd.DataFrame:
    """Per-step time of the same model trained by Lightning (``linscale.train.run.build_trainer`` and
    ``LanguageModelTask``, as runs train, logging every 50 steps), by Lightning with ``self.log`` at every
    step (as before issue 19) and by a bare loop doing the same work (:func:`train_step`), in alternating
    rounds; each round's first two steps are dropped, the rest give medians. ``overhead_ms``: Lightning's
    step less the bare one; ``overhead_pct`` its share of Lightning's step; ``log_every_step_ms``: what
    logging at every step added on top. Lightning's cost per step does not grow with the model (the same
    hooks, whatever they wrap), so the smallest sizes, where it weighs most, are the ones to time: at the
    largest the difference drowns in the step's own noise."""
    import logging
    import warnings

    from torch.utils.data import DataLoader

    from linscale.train.module import LanguageModelTask
    from linscale.train.run import build_trainer

    clock = TIMERS[timer]
    short = dataclasses.replace(settings, tokens=steps * settings.tokens_per_step, seed=0)
    log_every = max(1, min(50, settings.total_steps // 20))  # what a full run logs at
    deterministic = torch.are_deterministic_algorithms_enabled()
    quiet = logging.getLogger("lightning.pytorch"), logging.getLogger("lightning.fabric")
    levels = [logger.level for logger in quiet]
    gate = LanguageModelTask._logs_this_step

    def fit(task, batches, log_every_step: bool) -> list[float]:
        step_clock = _StepClock(clock)
        LanguageModelTask._logs_this_step = (lambda self: True) if log_every_step else gate
        try:
            with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
                warnings.simplefilter("ignore")
                trainer = build_trainer(short.for_width(task.config.d_model), Path(tmp), [step_clock], accumulate=1)
                trainer.log_every_n_steps = log_every
                trainer.fit(task, train_dataloaders=DataLoader([batches[i % len(batches)] for i in range(steps)],
                                                               batch_size=None))
        finally:
            LanguageModelTask._logs_this_step = gate
        return step_clock.times

    rows = []
    try:
        for logger in quiet:
            logger.setLevel(logging.ERROR)
        for (arch, which), config in configs.items():
            batches = [dict(input_ids=i, labels=l) for i, l in _batches(config, settings)]
            torch.manual_seed(0)
            tasks = {kind: LanguageModelTask(model=config.to_dict(), train=short.for_width(config.d_model).to_dict())
                     for kind in ("lightning", "log_every_step")}
            bare_step = train_step(_seeded_model(config), settings, [(b["input_ids"], b["labels"]) for b in batches])

            def bare() -> list[float]:
                stamps = []
                for _ in range(steps):
                    stamps.append(clock())
                    bare_step()
                return stamps + [clock()]

            kinds = {"bare": bare,
                     "lightning": lambda tasks=tasks, batches=batches: fit(tasks["lightning"], batches, False),
                     "log_every_step": lambda tasks=tasks, batches=batches: fit(tasks["log_every_step"], batches, True)}
            times = {kind: [] for kind in kinds}
            for r in range(rounds):
                for kind in (list(kinds) if r % 2 == 0 else list(kinds)[::-1]):
                    stamps = kinds[kind]()
                    times[kind] += [b - a for a, b in zip(stamps[2:], stamps[3:])]
            t = {kind: statistics.median(v) for kind, v in times.items()}
            rows.append(dict(arch=arch, size=config.name, which=which, bare_ms=1e3 * t["bare"],
                             lightning_ms=1e3 * t["lightning"], overhead_ms=1e3 * (t["lightning"] - t["bare"]),
                             overhead_pct=100 * (t["lightning"] - t["bare"]) / t["lightning"],
                             log_every_step_ms=1e3 * (t["log_every_step"] - t["lightning"])))
    finally:
        for logger, level in zip(quiet, levels):
            logger.setLevel(level)
        torch.use_deterministic_algorithms(deterministic)  # Lightning's deterministic=True is process-wide
    return pd.DataFrame(rows)


def compile_gain(extremes: dict[tuple[str, str], ModelConfig], settings, timeout_s: float = 600, repeats: int = 9,
                 timer: str = "wall", run_steps: dict[str, int] | None = None) -> pd.DataFrame:
    """Does ``torch.compile`` repay its compile time within one run? For each of ``extremes``, in a fresh
    process with an empty Inductor cache (as a sweep's first run of a shape meets it): the compile time
    (the first compiled step's wall time less an eager step's), then eager and compiled steps interleaved.
    ``break_even_steps`` = compile time / time saved per step, against the run's ``run_steps``. A case
    still compiling after ``timeout_s`` is a row with ``compile_s`` = NaN and the note. ``run_steps``:
    {size: steps of its run} (:func:`size_steps`; a size may train its own token budget), else every run
    takes ``settings``' steps."""
    import json

    rows = []
    for (arch, which), config in extremes.items():
        job = json.dumps(dict(config=config.to_dict(), settings=settings.to_dict(), repeats=repeats, timer=timer))
        row = dict(arch=arch, size=config.name, which=which, compile_s=float("nan"), eager_ms=float("nan"),
                   compiled_ms=float("nan"), gain=float("nan"), break_even_steps=float("nan"),
                   run_steps=(run_steps or {}).get(config.name, settings.total_steps), repaid=False, note="")
        with tempfile.TemporaryDirectory() as cache:
            env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache, "OMP_NUM_THREADS": str(torch.get_num_threads())}
            try:
                proc = subprocess.run([sys.executable, "-c", "import sys; from linscale.bench import _compile_case; "
                                       "_compile_case(sys.argv[1])", job], capture_output=True, text=True,
                                      timeout=timeout_s, env=env)
                lines = [l for l in proc.stdout.splitlines() if l.startswith("{")]
                if proc.returncode == 0 and lines:
                    row.update(json.loads(lines[-1]))
                else:
                    row["note"] = (proc.stderr.strip().splitlines() or ["failed"])[-1][:160]
            except subprocess.TimeoutExpired:
                row["note"] = f"still compiling after {timeout_s:.0f} s"
        if row["gain"] == row["gain"]:  # measured
            saved = (row["eager_ms"] - row["compiled_ms"]) / 1e3
            row["break_even_steps"] = row["compile_s"] / saved if saved > 0 else float("inf")
            row["repaid"] = bool(row["break_even_steps"] < row["run_steps"])
        rows.append(row)
    return pd.DataFrame(rows)


def _compile_case(job: str) -> None:
    """One :func:`compile_gain` case, in its own process: prints a JSON line."""
    import json

    from linscale.train.settings import TrainSettings

    spec = json.loads(job)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    config, settings = ModelConfig.from_dict(spec["config"]), TrainSettings.from_dict(spec["settings"])
    batches = _batches(config, settings)
    eager = train_step(_seeded_model(config), settings, batches)
    compiled_model = _seeded_model(config)
    compiled = train_step(torch.compile(compiled_model), settings, batches)
    eager()
    start = time.perf_counter()
    eager()
    eager_once = time.perf_counter() - start
    start = time.perf_counter()
    compiled()  # compiles forward and backward
    compile_s = time.perf_counter() - start - eager_once
    medians = interleaved_medians({"eager": eager, "compiled": compiled}, spec["repeats"], timer=spec["timer"])
    print(json.dumps(dict(compile_s=compile_s, eager_ms=1e3 * medians["eager"], compiled_ms=1e3 * medians["compiled"],
                          gain=medians["eager"] / medians["compiled"])))


# ----------------------------------------------------------------------------- goals and report


def goals(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The issue's goals as rows (goal, figure, threshold, met) from whichever tables were measured."""
    rows = []

    def add(goal, figure, threshold, met, note=""):
        rows.append(dict(goal=goal, figure=round(float(figure), 3), threshold=threshold,
                         met="reported" if met is None else ("yes" if met else "no"), note=note))

    train = tables.get("training")
    if train is not None and "vs_hf_llama" in train:
        speedup = train.loc[train.model == "llama", "vs_hf_llama"].item()
        note = ""
        if "kernels_ms" in train:
            ours, hf = train.set_index("model").loc["llama"], train.set_index("model").loc["hf_llama"]
            # even with no time outside the shared kernels, ours could not beat HF's step by more than this
            ceiling = (hf.kernels_ms + hf.other_ms) / ours.kernels_ms
            note = (f"shared GEMM/attention/loss kernels {ours.kernels_ms:.0f} vs {hf.kernels_ms:.0f} ms/step, "
                    f"the rest {ours.other_ms:.0f} vs {hf.other_ms:.0f} ms (ours vs HF, profiled); "
                    f"ceiling with no overhead at all {ceiling:.2f}x")
        add("LLaMA training tokens/s vs HF LlamaForCausalLM", speedup, f">= {GOAL_HF_SPEEDUP}", speedup >= GOAL_HF_SPEEDUP,
            note)
    length = tables.get("length")
    if length is not None:
        longest = length.seq_len.max()
        ref = length.attrs.get("reference_len", length.seq_len.min())
        last = length[length.seq_len == longest].set_index("mixer")
        for arch in LINEAR_ARCHITECTURES:
            if arch in last.index:
                ratio = last.loc[arch, "vs_ref"]
                add(f"{arch} mixer time/token T={longest} vs T={ref}", ratio, f"<= {GOAL_LENGTH_RATIO}",
                    ratio <= GOAL_LENGTH_RATIO)
        if "llama" in last.index:
            add(f"llama mixer time/token T={longest} vs T={ref} (reported)", last.loc["llama", "vs_ref"], "-", None)
        if "vs_llama" in length:
            lin = length[length.mixer.isin(LINEAR_ARCHITECTURES) & (length.seq_len >= min(2048, longest))]
            worst = lin.vs_llama.max()
            add(f"linear mixers vs LLaMA time/token in training, worst at T >= {min(2048, longest)}", worst, "< 1",
                worst < 1, note=_worst(lin, "mixer", "seq_len", "vs_llama"))
    dec = tables.get("decoding")
    if dec is not None:
        longest, shortest = dec.context.max(), dec.context.min()
        last = dec[dec.context == longest].set_index("model")
        for arch in LINEAR_ARCHITECTURES:
            if arch in last.index:
                ratio, mem = last.loc[arch, "vs_ref"], last.loc[arch, "state_vs_ref"]
                add(f"{arch} decode ms/token context {longest} vs {shortest}; state memory ratio {mem:.2f}", ratio,
                    f"<= {GOAL_DECODE_RATIO}, memory 1.0", ratio <= GOAL_DECODE_RATIO and mem == 1.0)
        if "llama" in last.index:
            add(f"llama decode ms/token context {longest} vs {shortest} (reported; KV cache x"
                f"{last.loc['llama', 'state_vs_ref']:.0f})", last.loc["llama", "vs_ref"], "-", None)
        if "vs_llama" in dec:
            lin = dec[dec.model.isin(LINEAR_ARCHITECTURES) & (dec.context >= min(2048, longest))]
            worst = lin.vs_llama.max()
            add(f"linear models vs LLaMA decode ms/token, worst at context >= {min(2048, longest)}", worst, "< 1",
                worst < 1, note=_worst(lin, "model", "context", "vs_llama"))
    util = tables.get("utilisation")
    if util is not None:
        peak = util.attrs.get("peak", float("nan"))
        for row in util.itertuples():
            goal = GOAL_MFU_LARGEST if row.which == "largest" else GOAL_MFU_SMALLEST
            add(f"{row.arch} MFU at the {row.which} size ({row.size}): counted FLOP/s over the GEMM peak", row.mfu,
                f">= {goal:.0%}", row.mfu >= goal,
                note=f"all FLOPs counted {row.mfu_all:.1%}; peak {peak:.0f} GFLOP/s; step {row.step_ms:.1f} ms: "
                     f"GEMM {row.gemm_pct:.0f}%, mixer {row.mixer_pct:.0f}%, loss {row.loss_pct:.0f}%, optimizer "
                     f"{row.optimizer_pct:.0f}%, other kernels {row.other_pct:.0f}%, framework {row.framework_pct:.0f}%")
    change = tables.get("changes")
    if change is not None and len(change):
        speedup = change.attrs.get("grid_speedup", float("nan"))
        add("main grid training time before / after (step times x each run's steps, side by side)", speedup,
            f">= {GOAL_GRID_SPEEDUP}", speedup >= GOAL_GRID_SPEEDUP,
            note=f"per run {change.gain.min():.2f}-{change.gain.max():.2f}x; at the smallest and largest sizes the fused "
                 f"loss {change.loss_gain.min():.2f}-{change.loss_gain.max():.2f}x, the fused AdamW "
                 f"{change.adamw_gain.min():.2f}-{change.adamw_gain.max():.2f}x")
    batched = tables.get("batched")
    if batched is not None:
        for row in batched.itertuples():
            add(f"{row.arch} {row.size}: {row.runs} runs as one batched model vs one after another", row.speedup,
                f">= {GOAL_BATCHED_SPEEDUP} to build it", row.speedup >= GOAL_BATCHED_SPEEDUP,
                note=f"upper bound, one model at {row.runs}x the batch: {row.upper_bound:.2f}x")
    light = tables.get("lightning")
    if light is not None:
        for row in light.itertuples():
            add(f"{row.arch} {row.which} ({row.size}): Lightning's per-step time over a bare loop's (ms, reported)",
                row.overhead_ms, "-", None, note=f"{row.overhead_pct:.1f}% of Lightning's {row.lightning_ms:.1f} ms step; "
                                                 f"self.log at every step (before) added {row.log_every_step_ms:.2f} ms")
    attention = tables.get("attention")
    if attention is not None:
        for row in attention.itertuples():
            add(f"LLaMA {row.which} ({row.size}, head width {row.head_dim}): explicit attention time over SDPA's "
                f"(reported)", row.explicit_vs_sdpa, "-", None, note=f"SDPA math backend {row.math_vs_sdpa:.2f}x")
    compiled = tables.get("compile")
    if compiled is not None:
        for row in compiled.itertuples():
            add(f"{row.arch} {row.which} ({row.size}): torch.compile repaid within one run (break-even steps)",
                row.break_even_steps, f"< {row.run_steps}", bool(row.repaid),
                note=row.note or f"compile {row.compile_s:.0f} s, steady-state gain {row.gain:.2f}x")
    e2e = tables.get("end_to_end")
    if e2e is not None:
        for preset, limit in (("smoke", 180), ("cpu", 45 * 60)):
            row = e2e[e2e.preset == preset]
            if len(row):
                wall = row.wall_s.item()
                add(f"{preset} study wall time (s)", wall, f"<= {limit}", bool(row.ok.item()) and wall <= limit,
                    note=row.note.item())
    return pd.DataFrame(rows)


def _worst(table, who, where, column) -> str:
    row = table.loc[table[column].idxmax()]
    return f"worst: {row[who]} at {row[where]}"


def machine_info() -> dict:
    """CPU model, cores, threads, versions and date: what a results file must say to be comparable."""
    cpu = platform.processor() or platform.machine()
    fields: dict[str, str] = {}
    try:  # the first processor's model name, family and model: two EPYCs of one name can differ in both
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if not line.strip():
                break
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    if "model name" in fields:
        cpu = fields["model name"]
        if "cpu family" in fields:
            cpu += f" (family {fields['cpu family']}, model {fields.get('model', '?')})"
    try:
        import transformers
        hf_version = transformers.__version__
    except ImportError:
        hf_version = "not installed"
    from linscale import __version__ as linscale_version

    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return dict(date=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), host=platform.node(),
                cpu=cpu, cores=os.cpu_count(), torch_threads=torch.get_num_threads(),
                python=platform.python_version(), torch=torch.__version__, transformers=hf_version,
                linscale=linscale_version, load_average_at_end=" ".join(f"{x:.2f}" for x in load),
                code_paths=" ".join(f"{k}={v}" for k, v in in_effect().items()))


SECTIONS = ("training", "length", "decoding", "utilisation", "lightning", "changes", "attention", "batched", "compile",
            "end_to_end")
# compile (minutes per case) and end_to_end (the whole studies) only when asked for
DEFAULT_SECTIONS = ("training", "length", "decoding", "utilisation", "lightning", "changes", "attention", "batched")


def run_all(quick: bool = False, sections=DEFAULT_SECTIONS, preset: str | None = "cpu",
            log: Callable[[str], None] | None = print, timer: str = "wall",
            studies: tuple = ("smoke", "cpu")) -> dict[str, pd.DataFrame]:
    """Run the requested sections with the full (or ``quick``) shapes; returns {section: table}.

    training, length and decoding time the preset's largest size (``bench_configs``); the issue-19
    sections (utilisation, lightning, changes, attention, batched, compile) the preset's own grid
    (``grid_configs``) with its training settings, at its smallest and largest sizes or all of them."""
    p = dict(QUICK if quick else FULL)
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        raise ConfigError(f"sections: unknown {', '.join(unknown)}; expected some of {', '.join(SECTIONS)}")
    configs = bench_configs(preset, quick)
    if not quick and preset:  # train at the preset's own context and batch when it has them
        from linscale.presets import load_preset

        train = load_preset(preset).get("train", {}) or {}
        p["train_seq_len"] = int(train.get("seq_len", p["train_seq_len"]))
        p["train_batch_size"] = int(train.get("batch_size", p["train_batch_size"]))
    grid = settings = None
    tables = {}
    for section in sections:
        start = time.perf_counter()
        if section in ("utilisation", "lightning", "changes", "attention", "batched", "compile") and grid is None:
            grid, settings = grid_configs(preset, quick), train_settings(preset, quick)
        if section == "training":
            tables[section] = training_throughput(configs, p["train_seq_len"], p["train_batch_size"], p["train_repeats"],
                                                  timer=timer)
        elif section == "length":
            tables[section] = length_scaling(configs, p["seq_lens"], p["tokens_per_batch"], p["length_repeats"], timer=timer)
        elif section == "decoding":
            tables[section] = decoding(configs, p["contexts"], p["decode_tokens"], p["decode_repeats"], timer=timer)
        elif section == "utilisation":
            tables[section] = utilisation(grid_extremes(grid), settings, p["utilisation_repeats"], timer=timer,
                                          peak_shapes=QUICK_PEAK_SHAPES if quick else PEAK_SHAPES,
                                          profile_steps=p["profile_steps"])
        elif section == "lightning":
            smallest = {(arch, "smallest"): configs_[0] for arch, configs_ in grid.items()}
            tables[section] = lightning_overhead(smallest, settings, p["lightning_steps"], p["lightning_rounds"],
                                                 timer=timer)
        elif section == "changes":
            tables[section] = changes(grid, settings, p["changes_repeats"], timer=timer,
                                      run_steps=None if quick else size_steps(preset))
        elif section == "attention":
            llama = {which: cfg for (arch, which), cfg in grid_extremes(grid).items() if arch == "llama"}
            tables[section] = attention_paths(llama, settings, p["attention_repeats"], timer=timer)
        elif section == "batched":
            smallest = {arch: configs_[0] for arch, configs_ in grid.items()}
            tables[section] = batched_runs(smallest, settings, p["batched_runs"], p["batched_repeats"], timer=timer)
        elif section == "compile":
            tables[section] = compile_gain(grid_extremes(grid), settings, p["compile_timeout_s"], p["compile_repeats"],
                                           timer=timer, run_steps=None if quick else size_steps(preset))
        elif section == "end_to_end":
            tables[section] = end_to_end(("smoke",) if quick else studies)
        if log:
            log(f"## {section} ({time.perf_counter() - start:.0f} s)\n{format_table(tables[section])}\n")
    return tables


# A round ran on a loaded machine when other processes used more than a quarter of a core on average while
# it ran: timings on a shared core move by up to 2x (the 2026-12-05 decoding rounds: 0.48-2.01 loaded, 0.98-1.02
# idle). Fixed here so that every report labels its rounds the same way. (The 1-minute load average, tried
# first, lags: a 3-second round right after a build read as loaded with its ratios at 1.00.)
OTHERS_LOADED_CORES = 0.25


def cpu_seconds() -> tuple[float, float]:
    """(CPU seconds every process on the machine has used, this process's and its waited-for children's):
    the first from /proc/stat (user, nice, system, irq, softirq and steal: time the hypervisor gave away
    counts as contention too), NaN where there is none."""
    import resource

    own = sum(getattr(resource.getrusage(who), field) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
              for field in ("ru_utime", "ru_stime"))
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
        every = (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        every = float("nan")
    return every, own


def _wall_clock() -> float:
    return time.perf_counter()


def others_cores(before: tuple[float, float], after: tuple[float, float], wall_s: float) -> float:
    """Cores other processes used on average between two :func:`cpu_seconds` readings ``wall_s`` apart."""
    return max(0.0, ((after[0] - before[0]) - (after[1] - before[1])) / wall_s) if wall_s > 0 else float("nan")


def run_rounds(rounds: int, sections=DEFAULT_SECTIONS, log: Callable[[str], None] | None = print,
               **options) -> dict[str, pd.DataFrame]:
    """Run the same sections ``rounds`` times one after another (:func:`run_all` with ``options``), to
    see how far one run's ratios stray: returns ``{section + "_rounds": table}``, each round's table with
    ``round``, ``start_utc``, ``wall_s``, ``others_cores`` (cores other processes used meanwhile,
    :func:`others_cores`) and ``machine`` ("loaded" above :data:`OTHERS_LOADED_CORES`, else "idle") first.
    A single run's ratio far from its rounds' range belongs to that run, not to the models."""
    if rounds < 1:
        raise ConfigError(f"rounds: expected a whole number >= 1, got {rounds}")
    parts: dict[str, list[pd.DataFrame]] = {}
    for r in range(1, rounds + 1):
        started, before, clock = _dt.datetime.now(_dt.timezone.utc).strftime("%H:%M:%S"), cpu_seconds(), _wall_clock()
        tables = run_all(sections=sections, log=None, **options)
        wall_s = _wall_clock() - clock
        others = others_cores(before, cpu_seconds(), wall_s)
        label = "loaded" if others > OTHERS_LOADED_CORES else "idle"  # NaN (no /proc/stat): idle, unmeasured
        stamp = dict(round=r, start_utc=started, wall_s=round(wall_s, 1), others_cores=round(others, 2),
                     machine=label)
        for section, table in tables.items():
            parts.setdefault(section, []).append(
                pd.concat([pd.DataFrame([stamp] * len(table)), table.reset_index(drop=True)], axis=1))
        if log:
            log(f"round {r} of {rounds}: {label} (other processes used {others:.2f} cores)")
    return {f"{section}_rounds": pd.concat(tables, ignore_index=True) for section, tables in parts.items()}


def format_table(table: pd.DataFrame) -> str:
    return table.to_markdown(index=False, floatfmt=".4g") if _has_tabulate() else table.to_string(index=False)


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


def write_report(tables: dict[str, pd.DataFrame], out_dir: str | Path = "benchmarks/results", quick: bool = False,
                 conditions: str = "", sections=DEFAULT_SECTIONS, rounds: int = 1) -> Path:
    """Write ``<date>-<machine>-cpu-bench[-quick].md`` (machine, versions, goals, every table); atomic.
    A report of fewer than the default sections is named ``...-cpu-bench-only-<sections>.md``: the book
    shows the newest full report (:func:`cpu_reports`), which must hold every table it reads. Tables of
    :func:`run_rounds` (``rounds`` > 1) go to ``<date>-<sections>-rounds-<machine>.md``, e.g. the efficiency
    chapter's ``...-length-decoding-rounds-...``."""
    info = machine_info()
    machine = "".join(ch if ch.isalnum() else "-" for ch in f"{info['cpu']}-{info['cores']}c").strip("-").lower()
    while "--" in machine:
        machine = machine.replace("--", "-")
    only = "" if set(DEFAULT_SECTIONS) <= set(sections) else "-only-" + "-".join(sections)
    stem = f"{info['date'][:10]}-{machine}-cpu-bench{only}{'-quick' if quick else ''}"
    if rounds > 1:  # not a full report (cpu_reports skips it); the book finds it by its sections' names
        stem = f"{info['date'][:10]}-{'-'.join(sections)}-rounds-{machine}{'-quick' if quick else ''}"
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    command = "linscale bench" + (" --quick" if quick else "")
    if rounds > 1:
        command += f" --rounds {rounds} --sections {','.join(sections)}"
    lines = [f"# linscale CPU benchmark{' (quick shapes)' if quick else ''}"
             + (f": {rounds} rounds of {', '.join(sections)}" if rounds > 1 else ""), "",
             f"Produced by `{command}`; every ratio is between timings measured interleaved in "
             + ("one round (medians); the rounds ran one after another, and a round is *loaded* when other "
                f"processes used more than {OTHERS_LOADED_CORES} of a core on average while it ran (`others_cores`, "
                "from /proc/stat less this process's own CPU time; `linscale.bench.run_rounds`)."
                if rounds > 1 else "this one run (medians)."), ""]
    lines += [f"- {k}: {v}" for k, v in info.items()]
    if conditions:
        lines.append(f"- conditions: {conditions}")
    util = tables.get("utilisation")
    if util is not None and "peak" in util.attrs:
        lines.append(f"- fp32 GEMM rate of this core, measured in this run before and after the model timings: "
                     f"peak {util.attrs['peak']:.1f} GFLOP/s, typical (median shape) {util.attrs['typical']:.1f} GFLOP/s")
    goal_table = goals(tables)
    if len(goal_table):
        lines += ["", "## Goals", "", format_table(goal_table)]
    for name, table in tables.items():
        lines += ["", f"## {name}", "", format_table(table)]
        if name == "utilisation" and "peaks" in table.attrs:
            for label, peak_table in zip(("before", "after"), table.attrs["peaks"]):
                lines += ["", f"### fp32 GEMM rate, {label} the model timings", "", format_table(peak_table)]
    path = out_dir / f"{stem}.md"
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(path)
    return path


# ----------------------------------------------------------------------------- committed reports


@dataclasses.dataclass
class Report:
    """A benchmark report as committed (``write_report``'s Markdown): where it is, the machine and
    versions it lists (``meta``: date, cpu, cores, torch_threads, torch, conditions, ...) and its
    tables by section name (``Goals``, ``training``, ``length``, ``decoding``, ...)."""

    path: Path
    meta: dict
    tables: dict

    @property
    def date(self) -> str:
        return str(self.meta.get("date") or _file_date(self.path) or "unknown date")

    def machine(self) -> str:
        """The machine in one phrase, as the report states it."""
        m = self.meta
        threads = m.get("torch_threads")
        return (f"{m.get('cpu', 'an unrecorded CPU')}, {m.get('cores', '?')} cores"
                + (f", {threads} torch thread{'s' if str(threads) != '1' else ''}" if threads else "")
                + (f", torch {m['torch']}" if m.get("torch") else ""))


def _file_date(path: Path) -> str | None:
    import re

    match = re.match(r"(\d{4}-\d{2}-\d{2})", Path(path).name)
    return match.group(1) if match else None


def read_report(path: str | Path) -> Report:
    """Parse a report written by :func:`write_report`: the ``- key: value`` lines before the first
    section, then each ``## section`` with its pipe table (numbers as numbers). Sections without a
    pipe table (written without ``tabulate``) are left out."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: no such benchmark report")
    meta, tables, section, rows = {}, {}, None, []

    def close():
        if section is not None and len(rows) >= 2:
            tables[section] = read_pipe_table(rows)

    for line in path.read_text().splitlines():
        if line.startswith("## "):
            close()
            section, rows = line[3:].strip(), []
        elif section is None and line.startswith("- ") and ":" in line:
            key, value = line[2:].split(":", 1)
            meta[key.strip()] = value.strip()
        elif section is not None and line.lstrip().startswith("|"):
            rows.append(line)
    close()
    return Report(path, meta, tables)


def cpu_reports(bench_dir: str | Path = "benchmarks/results") -> list[Path]:
    """The full CPU benchmark reports in ``bench_dir`` (``*-cpu-bench.md``; ``--quick`` runs are not
    measurements of the study's shapes), oldest first by the date they record (then by name)."""
    return sorted(Path(bench_dir).glob("*-cpu-bench.md"), key=_recorded_when)


def rounds_reports(bench_dir: str | Path = "benchmarks/results", section: str = "decoding") -> list[Path]:
    """The reports holding a ``<section>_rounds`` table (``linscale bench --rounds``, or assembled by hand
    as the first decoding rounds were), oldest first by the date and time they record, not (as their names
    would) by the sections they name."""
    paths = [path for path in Path(bench_dir).glob(f"*-{section}-rounds-*.md")
             if f"## {section}_rounds" in path.read_text()]
    return sorted(paths, key=_recorded_when)


def _recorded_when(path: Path) -> tuple:
    """A report's ``- date:`` line as (date, time, name); written ``2026-12-05 08:30 UTC`` by write_report and
    ``2026-12-05, 00:04-00:16 UTC`` by hand, so the two are read into one form."""
    import re

    for line in path.read_text().splitlines():
        if line.startswith("- date:"):
            match = re.search(r"(\d{4}-\d{2}-\d{2})\D*(\d{2}:\d{2})?", line)
            if match:
                return (match.group(1), match.group(2) or "", path.name)
    return (_file_date(path) or "", "", path.name)


def committed_report(bench_dir: str | Path = "benchmarks/results", name: str = "latest",
                     sections: tuple[str, ...] = ()) -> Report:
    """The committed CPU benchmark report the book shows: the newest (``name="latest"``) or the named
    file in ``bench_dir``, which must hold a table for each of ``sections`` (a report of ``--only``
    some sections lacks the others). One clear error when there is none or a section is missing."""
    if name != "latest":
        path = Path(bench_dir) / name
        if not path.exists():
            available = ", ".join(p.name for p in cpu_reports(bench_dir)) or "none"
            raise ConfigError(f"report: no file {name!r} in {bench_dir} (CPU reports there: {available})")
        report = read_report(path)
    else:
        reports = cpu_reports(bench_dir)
        if not reports:
            raise ConfigError(f"bench_dir: no CPU benchmark report (*-cpu-bench.md) in {bench_dir}; "
                              f"run `linscale bench` and commit its report")
        report = read_report(reports[-1])
    missing = [s for s in sections if s not in report.tables]
    if missing:
        raise ConfigError(f"report: {report.path.name} has no {', '.join(missing)} table (it has "
                          f"{', '.join(report.tables) or 'none'}); name a full report (`linscale bench` "
                          f"without --only)")
    return report


def spread_over_rounds(measure: Callable[[], pd.DataFrame], rounds: int, keys: list[str],
                       value: str) -> pd.DataFrame:
    """Call ``measure`` ``rounds`` times (each call times every case once, interleaved) and summarise
    ``value`` per ``keys``: its median over the rounds and its range (``low``, ``high``). A live re-run
    shows this spread, because one run on a shared machine is not a number to quote."""
    tables = [measure().assign(round=r) for r in range(rounds)]
    together = pd.concat(tables, ignore_index=True)
    summary = together.groupby(keys, sort=False)[value].agg(["median", "min", "max"]).reset_index()
    return summary.rename(columns={"median": value, "min": "low", "max": "high"})
