"""CPU benchmarks: every figure a ratio of timings measured side by side in one run.

    linscale bench            # the full suite (a few minutes on 2 cores), writes benchmarks/results/
    linscale bench --quick    # tiny shapes, under a minute: what CI runs so the code cannot rot

Four sections, each a function returning a pandas DataFrame (the efficiency notebook calls the same ones):

- :func:`training_throughput`: tokens/s of a full optimiser step (forward, backward, AdamW) for each
  architecture, and for Hugging Face transformers' ``LlamaForCausalLM`` of the same shape; ratio ours/HF.
- :func:`length_scaling`: forward+backward time per token of each token mixer at growing context T with a
  fixed number of tokens per batch (B·T constant), normalised to T=512. Linear cost means a flat row.
- :func:`decoding`: per-token latency of ``generate`` after a prompt of growing length, normalised to the
  shortest, and the memory the decoding state holds (KV cache for LLaMA, fixed matrices otherwise).
- :func:`end_to_end`: wall time of the whole smoke and default CPU studies (``linscale study``), per stage.

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

from linscale.config import ARCHITECTURES, LINEAR_ARCHITECTURES, ConfigError, ModelConfig
from linscale.models import build_model

# Shape used while the `cpu` preset does not exist (or has no sizes): about the CPU study's largest model.
DEFAULT_SHAPE = dict(n_layer=4, d_model=192, n_head=4, vocab_size=512)
QUICK_SHAPE = dict(n_layer=2, d_model=32, n_head=2, vocab_size=64, d_ffn=64)

# length_repeats: one round of the 24 length cases takes about 3 s; with 5 rounds the medians moved the
# T=8192/T=512 ratios by up to 0.2 between runs on the idle 2-core VM, with 15 they are steadier
FULL = dict(train_seq_len=256, train_batch_size=8, train_repeats=9,
            seq_lens=(256, 512, 1024, 2048, 4096, 8192), tokens_per_batch=8192, length_repeats=15,
            contexts=(128, 512, 2048, 8192), decode_tokens=32, decode_repeats=7)
QUICK = dict(train_seq_len=32, train_batch_size=2, train_repeats=2,
             seq_lens=(32, 64, 128), tokens_per_batch=128, length_repeats=2,
             contexts=(16, 64), decode_tokens=4, decode_repeats=2)

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
    ``DEFAULT_SHAPE`` while the preset does not exist; ``QUICK_SHAPE`` with ``quick``."""
    if quick:
        return {arch: ModelConfig(arch=arch, name="quick", **QUICK_SHAPE) for arch in ARCHITECTURES}
    configs = []
    if preset:
        from linscale.presets import load_preset, model_configs

        try:
            spec = load_preset(preset)
            # Study presets (smoke, cpu) leave the vocabulary to their data module; time with the default
            # shape's vocabulary then (about the synthetic language's size).
            spec = {**spec, "model": {"vocab_size": DEFAULT_SHAPE["vocab_size"], **spec.get("model", {})}}
            configs = model_configs(spec)
        except ConfigError:
            configs = []  # no such preset yet: fall back to the default shape
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
SHARED_KERNELS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::_log_softmax", "aten::_log_softmax_backward_data")
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
    ``vs_llama`` by LLaMA's at the same context.
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
    rows = [dict(model=arch, context=L, ms_per_token=1e3 * seconds / new_tokens, state_bytes=nbytes[arch, L])
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
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
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
                linscale=linscale_version, load_average_at_end=" ".join(f"{x:.2f}" for x in load))


def run_all(quick: bool = False, sections=("training", "length", "decoding"), preset: str | None = "cpu",
            log: Callable[[str], None] | None = print, timer: str = "wall",
            studies: tuple = ("smoke", "cpu")) -> dict[str, pd.DataFrame]:
    """Run the requested sections with the full (or ``quick``) shapes; returns {section: table}."""
    p = dict(QUICK if quick else FULL)
    configs = bench_configs(preset, quick)
    if not quick and preset:  # train at the preset's own context and batch when it has them
        from linscale.presets import load_preset

        try:
            train = load_preset(preset).get("train", {}) or {}
        except ConfigError:
            train = {}
        p["train_seq_len"] = int(train.get("seq_len", p["train_seq_len"]))
        p["train_batch_size"] = int(train.get("batch_size", p["train_batch_size"]))
    tables = {}
    unknown = set(sections) - {"training", "length", "decoding", "end_to_end"}
    if unknown:
        raise ConfigError(f"sections: unknown {sorted(unknown)}; expected training, length, decoding, end_to_end")
    for section in sections:
        start = time.perf_counter()
        if section == "training":
            tables[section] = training_throughput(configs, p["train_seq_len"], p["train_batch_size"], p["train_repeats"],
                                                  timer=timer)
        elif section == "length":
            tables[section] = length_scaling(configs, p["seq_lens"], p["tokens_per_batch"], p["length_repeats"], timer=timer)
        elif section == "decoding":
            tables[section] = decoding(configs, p["contexts"], p["decode_tokens"], p["decode_repeats"], timer=timer)
        elif section == "end_to_end":
            tables[section] = end_to_end(("smoke",) if quick else studies)
        if log:
            log(f"## {section} ({time.perf_counter() - start:.0f} s)\n{format_table(tables[section])}\n")
    return tables


def format_table(table: pd.DataFrame) -> str:
    return table.to_markdown(index=False, floatfmt=".4g") if _has_tabulate() else table.to_string(index=False)


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


def write_report(tables: dict[str, pd.DataFrame], out_dir: str | Path = "benchmarks/results", quick: bool = False,
                 conditions: str = "") -> Path:
    """Write ``<date>-<machine>-cpu-bench[-quick].md`` (machine, versions, goals, every table); atomic."""
    info = machine_info()
    machine = "".join(ch if ch.isalnum() else "-" for ch in f"{info['cpu']}-{info['cores']}c").strip("-").lower()
    while "--" in machine:
        machine = machine.replace("--", "-")
    stem = f"{info['date'][:10]}-{machine}-cpu-bench{'-quick' if quick else ''}"
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = [f"# linscale CPU benchmark{' (quick shapes)' if quick else ''}", "",
             "Produced by `linscale bench" + (" --quick" if quick else "") + "`; every ratio is between timings "
             "measured interleaved in this one run (medians).", ""]
    lines += [f"- {k}: {v}" for k, v in info.items()]
    if conditions:
        lines.append(f"- conditions: {conditions}")
    goal_table = goals(tables)
    if len(goal_table):
        lines += ["", "## Goals", "", format_table(goal_table)]
    for name, table in tables.items():
        lines += ["", f"## {name}", "", format_table(table)]
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
            header = [c.strip() for c in rows[0].strip().strip("|").split("|")]
            body = [[c.strip() for c in r.strip().strip("|").split("|")] for r in rows[2:]]
            table = pd.DataFrame([r for r in body if len(r) == len(header)], columns=header)
            for column in table.columns:  # a column of numbers (empty cells allowed) becomes numeric
                filled = table[column].ne("")
                converted = pd.to_numeric(table[column].where(filled), errors="coerce")
                if filled.any() and converted[filled].notna().all():
                    table[column] = converted
            tables[section] = table

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
    paths = sorted(Path(bench_dir).glob("*-cpu-bench.md"))

    def when(path: Path) -> tuple:
        for line in path.read_text().splitlines():
            if line.startswith("- date:"):
                return (line.split(":", 1)[1].strip(), path.name)
        return (_file_date(path) or "", path.name)

    return sorted(paths, key=when)


def committed_report(bench_dir: str | Path = "benchmarks/results", name: str = "latest") -> Report:
    """The committed CPU benchmark report the book shows: the newest (``name="latest"``) or the named
    file in ``bench_dir``. One clear error when there is none."""
    if name != "latest":
        path = Path(bench_dir) / name
        if not path.exists():
            available = ", ".join(p.name for p in cpu_reports(bench_dir)) or "none"
            raise ConfigError(f"report: no file {name!r} in {bench_dir} (CPU reports there: {available})")
        return read_report(path)
    reports = cpu_reports(bench_dir)
    if not reports:
        raise ConfigError(f"bench_dir: no CPU benchmark report (*-cpu-bench.md) in {bench_dir}; "
                          f"run `linscale bench` and commit its report")
    return read_report(reports[-1])


def spread_over_rounds(measure: Callable[[], pd.DataFrame], rounds: int, keys: list[str],
                       value: str) -> pd.DataFrame:
    """Call ``measure`` ``rounds`` times (each call times every case once, interleaved) and summarise
    ``value`` per ``keys``: its median over the rounds and its range (``low``, ``high``). A live re-run
    shows this spread, because one run on a shared machine is not a number to quote."""
    tables = [measure().assign(round=r) for r in range(rounds)]
    together = pd.concat(tables, ignore_index=True)
    summary = together.groupby(keys, sort=False)[value].agg(["median", "min", "max"]).reset_index()
    return summary.rename(columns={"median": value, "min": "low", "max": "high"})
