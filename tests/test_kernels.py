"""The Triton kernels (linscale.kernels) against the fp32 naive reference: outputs and all gradients.

Without a GPU the kernels run under Triton's interpreter: tests/conftest.py sets TRITON_INTERPRET=1
before anything imports linscale.kernels. With a GPU the same tests run compiled on CUDA tensors,
plus the ``gpu``-marked cases (bf16 and long sequences) that are too slow to interpret.

Tolerance: relative RMS error ||ref − out|| / ||ref|| < 5e-3 for fp32 inputs (the interpreter gives
about 1e-7). bf16 inputs are compared with the reference run on the same bf16 values in fp32, so the
error measured is the kernels' own rounding (bf16 outputs and bf16 dot operands), < 2e-2.

Cases are a covering set, not the Cartesian product (the interpreter is slow; the whole file takes
about two minutes on two busy cores): every T in {1, 63, 65, 200}, every head width in {16, 32, 64,
96, 128, 256} (and K = 2V, cosFormer2's doubled q/k width: 64/32, 192/96, 256/128), the extreme decays of both TNL
schedules (λ = 1 and λ = e^-7.5; λ = e^-0.71 and 1 − 4e-8), HGRN2 gates near 0 and near 1, with and
without an initial state, chunk sizes 16/32/64.
"""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from helpers import assert_close
from linscale import kernels
from linscale.models.tnl import tnl_log_decay
from linscale.ops.naive import naive_recurrent_gla

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
ON_GPU = DEVICE == "cuda"
gpu = pytest.mark.skipif(not ON_GPU, reason="needs a CUDA GPU (compiled Triton); covered by benchmarks/gpu_check.sh")

if not ON_GPU and not kernels.INTERPRET:
    pytest.skip("TRITON_INTERPRET=1 must be set before linscale.kernels is imported (tests/conftest.py does)",
                allow_module_level=True)


def schedule_ends(schedule: str) -> torch.Tensor:
    """The strongest and the weakest log-decay of a TNL schedule over a 24-layer, 16-head model."""
    table = torch.stack([tnl_log_decay(16, layer, 24, schedule) for layer in range(24)])
    return torch.stack([table.min(), table.max()])  # alibi: -0.707, -3.9e-8; paper: -7.5, 0


@dataclass(frozen=True)
class Case:
    op: str  # "chunk" | "recurrent"
    decay: str  # none | paper | alibi (TNL schedule ends) | gate | gate0 (f near 0) | gate1 (f near 1)
    T: int
    K: int
    V: int
    h0: bool
    chunk_size: int | None = None
    dtype: torch.dtype = torch.float32
    B: int = 1
    scale: float | None = None  # None: K^-0.5

    @property
    def id(self) -> str:
        name = f"{self.op}-{self.decay}-T{self.T}-K{self.K}-V{self.V}-{'h0' if self.h0 else 'noh0'}"
        if self.chunk_size:
            name += f"-C{self.chunk_size}"
        if self.scale is not None:
            name += f"-s{self.scale}"
        if self.B != 1:
            name += f"-B{self.B}"
        if self.dtype != torch.float32:
            name += f"-{str(self.dtype).removeprefix('torch.')}"
        return name


H = 2
CASES = [
    # no decay (cosFormer2), including K = 2V
    Case("chunk", "none", 1, 16, 16, True),
    Case("chunk", "none", 63, 64, 32, False),
    Case("chunk", "none", 200, 192, 96, True),
    Case("chunk", "none", 65, 256, 128, False, chunk_size=32),
    # scalar per-head decay (TNL), both ends of both schedules
    Case("chunk", "paper", 65, 96, 96, True, scale=0.1),
    Case("chunk", "paper", 200, 32, 32, True, chunk_size=16),
    Case("chunk", "alibi", 200, 128, 128, False),
    Case("chunk", "alibi", 63, 16, 64, True, B=2),
    # per-channel data-dependent decay (HGRN2), gates near 0 and near 1
    Case("chunk", "gate", 1, 96, 96, True, B=2, scale=1.0),
    Case("chunk", "gate0", 63, 32, 32, True),
    Case("chunk", "gate1", 65, 16, 64, False),
    Case("chunk", "gate", 200, 32, 16, True),
    Case("chunk", "gate0", 40, 128, 16, False, chunk_size=32),
    # the recurrent (decoding) kernel, with the chunked backward
    Case("recurrent", "none", 65, 64, 32, True, B=2, scale=1.0),
    Case("recurrent", "paper", 63, 96, 96, True),
    Case("recurrent", "alibi", 1, 128, 128, True),
    Case("recurrent", "gate0", 65, 32, 32, True),
    Case("recurrent", "gate1", 63, 16, 16, False),
    # head widths that are no power of two: the kernels pad them to their blocks and mask the rest
    Case("chunk", "none", 65, 100, 60, True),
    Case("recurrent", "gate", 63, 40, 24, True),
    # bf16 through the interpreter-safe cast
    Case("chunk", "none", 65, 64, 64, True, dtype=torch.bfloat16),
    Case("chunk", "paper", 65, 32, 32, False, dtype=torch.bfloat16),
    Case("chunk", "gate", 63, 32, 32, True, dtype=torch.bfloat16),
    Case("recurrent", "gate0", 65, 32, 32, True, dtype=torch.bfloat16),
]

# Too slow to interpret: run compiled whenever a GPU is present.
GPU_CASES = [
    Case("chunk", "none", 4096, 256, 128, True, dtype=torch.bfloat16, B=2),
    Case("chunk", "paper", 4096, 128, 128, True, dtype=torch.bfloat16, B=2),
    Case("chunk", "alibi", 8192, 128, 128, False, dtype=torch.bfloat16),
    Case("chunk", "gate0", 2048, 128, 128, True, dtype=torch.bfloat16),
    Case("chunk", "gate1", 2048, 96, 96, True),
    Case("chunk", "none", 1000, 100, 60, True),
    Case("recurrent", "gate", 1000, 128, 128, True, dtype=torch.bfloat16),
]


def make_inputs(case: Case, seed: int = 0):
    """Leaf tensors (fp32 values, rounded to case.dtype's grid) and the decay for one case."""
    gen = torch.Generator().manual_seed(seed)
    B, T, K, V = case.B, case.T, case.K, case.V

    def randn(*shape):
        return torch.randn(*shape, generator=gen).to(case.dtype).float()

    q, k, v = randn(B, T, H, K), randn(B, T, H, K), randn(B, T, H, V)
    extra = {}
    if case.decay in ("paper", "alibi"):
        extra["g_gamma"] = schedule_ends(case.decay)
    elif case.decay.startswith("gate"):
        shift = {"gate": 0.0, "gate0": -8.0, "gate1": 8.0}[case.decay]  # f = sigmoid(x + shift)
        extra["g"] = F.logsigmoid(torch.randn(B, T, H, K, generator=gen) + shift)
    if case.h0:
        extra["initial_state"] = randn(B, H, K, V)
    return q, k, v, extra


def forward_backward(fn, case, q, k, v, extra, dtype, device, **kw):
    """o, ht and the gradients of Σ o·do + Σ ht·dht w.r.t. q, k, v, g, h0 (all in fp32 on the CPU)."""
    leaves = {"q": q, "k": k, "v": v, **extra}
    inputs = {n: x.to(device=device, dtype=dtype if n in "qkv" else x.dtype).requires_grad_(n != "g_gamma")
              for n, x in leaves.items()}
    gen = torch.Generator().manual_seed(1)
    o, ht = fn(inputs["q"], inputs["k"], inputs["v"], g=inputs.get("g"), g_gamma=inputs.get("g_gamma"),
               initial_state=inputs.get("initial_state"), output_final_state=True, **kw)
    do = torch.randn(o.shape, generator=gen).to(device)
    dht = torch.randn(ht.shape, generator=gen).to(device)
    wrt = [n for n in inputs if n != "g_gamma"]
    grads = torch.autograd.grad((o.float() * do).sum() + (ht * dht).sum(), [inputs[n] for n in wrt])
    out = {"o": o, "ht": ht, **{f"d{n}": gr for n, gr in zip(wrt, grads)}}
    return {n: x.detach().float().cpu() for n, x in out.items()}


def check_case(case: Case, device: str = DEVICE) -> None:
    q, k, v, extra = make_inputs(case)
    fn = kernels.chunk_gla if case.op == "chunk" else kernels.fused_recurrent_gla
    kw = {"chunk_size": case.chunk_size} if case.chunk_size else {}
    ref = forward_backward(naive_recurrent_gla, case, q, k, v, extra, torch.float32, "cpu", scale=case.scale)
    out = forward_backward(fn, case, q, k, v, extra, case.dtype, device, scale=case.scale, **kw)
    tol = 5e-3 if case.dtype == torch.float32 else 2e-2
    for name in ref:
        assert torch.isfinite(out[name]).all(), f"{case.id}: {name} is not finite"
        assert_close(f"{case.id}: {name}", ref[name], out[name], tol)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_kernel_matches_naive(case):
    check_case(case)


@gpu
@pytest.mark.parametrize("case", GPU_CASES, ids=[c.id for c in GPU_CASES])
def test_kernel_matches_naive_on_gpu(case):
    check_case(case, "cuda")


def test_cases_cover_the_grid():
    """The covering set really covers every length, width, decay end and state option it claims to."""
    assert {c.T for c in CASES} >= {1, 63, 65, 200}
    assert {c.K for c in CASES} | {c.V for c in CASES} >= {16, 32, 64, 96, 128, 256}
    assert {c.decay for c in CASES} >= {"none", "paper", "alibi", "gate0", "gate1"}
    assert {c.h0 for c in CASES} == {True, False}
    assert {c.op for c in CASES if c.dtype == torch.bfloat16} == {"chunk", "recurrent"}
    assert any(c.K == 2 * c.V for c in CASES)
    assert schedule_ends("paper").tolist() == [-7.5, 0.0]


def test_strong_decay_has_no_overflow():
    """Gates near 0 at the longest interpreted T: a factorised (q e^b)(k e^-b)ᵀ would overflow here."""
    case = Case("chunk", "gate0", 128, 16, 16, False)
    q, k, v, extra = make_inputs(case)
    extra["g"] = extra["g"] * 10  # log f ≈ -80 per token: e^{-b} over one chunk would be e^{1280}
    o, ht = kernels.chunk_gla(q.to(DEVICE), k.to(DEVICE), v.to(DEVICE), g=extra["g"].to(DEVICE),
                              output_final_state=True)
    ref, ref_ht = naive_recurrent_gla(q, k, v, g=extra["g"], output_final_state=True)
    assert_close("o", ref, o.cpu(), 5e-3)
    assert_close("ht", ref_ht, ht.cpu(), 5e-3)


def test_split_sequence_through_states():
    """Prefill in two pieces joined by the final state == one call (the decode contract)."""
    case = Case("chunk", "paper", 100, 32, 32, False)
    q, k, v, extra = make_inputs(case)
    q, k, v = (x.to(DEVICE) for x in (q, k, v))
    gamma = extra["g_gamma"].to(DEVICE)
    whole, whole_ht = kernels.chunk_gla(q, k, v, g_gamma=gamma, output_final_state=True)
    o1, h1 = kernels.chunk_gla(q[:, :37].contiguous(), k[:, :37].contiguous(), v[:, :37].contiguous(),
                               g_gamma=gamma, output_final_state=True)
    o2, h2 = kernels.fused_recurrent_gla(q[:, 37:].contiguous(), k[:, 37:].contiguous(), v[:, 37:].contiguous(),
                                         g_gamma=gamma, initial_state=h1, output_final_state=True)
    assert_close("o", whole.cpu(), torch.cat([o1, o2], 1).cpu(), 1e-5)
    assert_close("ht", whole_ht.cpu(), h2.cpu(), 1e-5)


def _fenced(x: torch.Tensor) -> torch.Tensor:
    """x's values in a contiguous view whose neighbours in memory are NaN on both sides."""
    buf = torch.full((x.numel() + 2 * 1024,), float("nan"), dtype=x.dtype, device=x.device)
    return buf[1024:1024 + x.numel()].view(x.shape).copy_(x)


def test_kernels_read_nothing_outside_their_inputs():
    """Tiles that overhang a head width no power of two (24 in a 32 tile, 20 in a 32 tile) or the sequence end are
    masked: NaN next to the inputs in memory reaches neither outputs nor gradients (nor, on a GPU, an address
    past the allocation)."""
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 5, 1, d, generator=gen) for d in (24, 24, 20))
    h0 = torch.randn(1, 1, 24, 20, generator=gen)
    ref_o, ref_ht = naive_recurrent_gla(q, k, v, initial_state=h0, output_final_state=True)
    for fn in (kernels.chunk_gla, kernels.fused_recurrent_gla):
        leaves = [_fenced(x.to(DEVICE)).requires_grad_() for x in (q, k, v, h0)]
        o, ht = fn(*leaves[:3], initial_state=leaves[3], output_final_state=True)
        assert_close(f"{fn.__name__}: o", ref_o, o.detach().cpu(), 1e-4)
        assert_close(f"{fn.__name__}: ht", ref_ht, ht.detach().cpu(), 1e-4)
        (o.sum() + ht.sum()).backward()
        for name, x in zip("qkvh", leaves):
            assert torch.isfinite(x.grad).all(), f"{fn.__name__}: d{name} is not finite"


def test_empty_sequence():
    """T = 0: no output, the initial state (zeros where none) as the final one, in fp32 and a tensor of its own:
    the caller's own state was handed back, so an in-place update of either changed the other."""
    q = torch.zeros(1, 0, 2, 16, device=DEVICE)
    h0 = torch.randn(1, 2, 16, 16, device=DEVICE)
    for fn in (kernels.chunk_gla, kernels.fused_recurrent_gla):
        o, ht = fn(q, q, q, initial_state=h0, output_final_state=True)
        assert o.shape == (1, 0, 2, 16) and torch.equal(ht, h0) and ht.data_ptr() != h0.data_ptr()
        _, zeros = fn(q, q, q, output_final_state=True)
        assert zeros.dtype == torch.float32 and zeros.shape == (1, 2, 16, 16) and not zeros.any()
        o, none = fn(q, q, q, initial_state=h0)
        assert o.shape == (1, 0, 2, 16) and none is None


# ----------------------------------------------------------------------------- bad inputs


def _good(**over):
    x = {"q": torch.randn(1, 8, 2, 16), "k": torch.randn(1, 8, 2, 16), "v": torch.randn(1, 8, 2, 8)}
    x.update(over)
    return x


BAD = {
    "k-shape": (_good(k=torch.randn(1, 8, 2, 12)), {}, "k: shape"),
    "v-shape": (_good(v=torch.randn(1, 7, 2, 8)), {}, "v: shape"),
    "q-3d": (_good(q=torch.randn(8, 2, 16)), {}, "q: expected a 4-D"),
    "dtype-mix": (_good(k=torch.randn(1, 8, 2, 16, dtype=torch.float16)), {}, "k: dtype"),
    "dtype-int": (_good(q=torch.ones(1, 8, 2, 16, dtype=torch.int64)), {}, "q: dtype"),
    "non-contiguous": (_good(q=torch.randn(1, 2, 8, 16).transpose(1, 2)), {}, "q: the Triton kernels need contiguous"),
    "g-shape": (_good(), {"g": -torch.rand(1, 8, 2, 8)}, "g: shape"),
    "g-positive": (_good(), {"g": torch.rand(1, 8, 2, 16) + 0.1}, "g: log-decays must be finite and <= 0"),
    "g-inf": (_good(), {"g": torch.full((1, 8, 2, 16), float("-inf"))}, "g: log-decays must be finite"),
    "gamma-positive": (_good(), {"g_gamma": torch.tensor([-0.1, 0.2])}, "g_gamma: log-decays must be finite"),
    "gamma-shape": (_good(), {"g_gamma": torch.tensor([-0.1])}, "g_gamma: shape"),
    "both-decays": (_good(), {"g": -torch.rand(1, 8, 2, 16), "g_gamma": -torch.rand(2)}, "g, g_gamma"),
    "h0-shape": (_good(), {"initial_state": torch.randn(1, 2, 16, 16)}, "initial_state: shape"),
    "gamma-grad": (_good(), {"g_gamma": (-torch.rand(2)).requires_grad_()}, "g_gamma: the Triton kernels treat"),
    "v-heads": (_good(v=torch.randn(1, 8, 3, 8)), {}, "v: shape"),
    "g-dtype": (_good(), {"g": -torch.ones(1, 8, 2, 16, dtype=torch.int64)}, "g: dtype"),
    "gamma-dtype": (_good(), {"g_gamma": -torch.ones(2, dtype=torch.int64)}, "g_gamma: dtype"),
    "h0-width": (_good(), {"initial_state": torch.randn(1, 2, 8, 8)}, "initial_state: shape"),
    "h0-dtype": (_good(), {"initial_state": torch.ones(1, 2, 16, 8, dtype=torch.int64)}, "initial_state: dtype"),
    # a strided state would be read as if it were contiguous: silently wrong
    "h0-non-contiguous": (_good(), {"initial_state": torch.randn(1, 2, 8, 16).transpose(2, 3)},
                          "initial_state: the Triton kernels need contiguous"),
}


@pytest.mark.parametrize("op", ["chunk", "recurrent"])
@pytest.mark.parametrize("name", list(BAD))
def test_bad_inputs_raise_one_clear_error(name, op):
    tensors, extra, message = BAD[name]
    fn = kernels.chunk_gla if op == "chunk" else kernels.fused_recurrent_gla
    with pytest.raises(ValueError, match=message) as info:
        fn(**{n: t.to(DEVICE) for n, t in {**tensors, **extra}.items()})
    assert "\n" not in str(info.value)


def test_inputs_on_another_device_are_refused():
    """A tensor on another device than q is named (meta stands in for a second device on a CPU-only machine)."""
    q, v = torch.randn(1, 8, 2, 16, device=DEVICE), torch.randn(1, 8, 2, 8, device=DEVICE)
    for fn in (kernels.chunk_gla, kernels.fused_recurrent_gla):
        with pytest.raises(ValueError, match="k: on meta, but q is on"):
            fn(q, q.to("meta"), v)


def test_interpreter_version_problem_is_named_up_front(monkeypatch):
    """Triton 3.6's interpreter with NumPy >= 2.4 fails inside every kernel; the ops say so first."""
    from linscale.kernels import utils

    assert "triton>=3.7" in utils.interpreter_problem("3.6.0", "2.4.6")
    assert utils.interpreter_problem("3.6.0", "2.2.6") is None
    assert utils.interpreter_problem("3.9.0", "2.4.6") is None
    assert utils.interpreter_problem("3.7", "2.4.0") is None  # 3.7 is the first fixed release
    assert utils.interpreter_problem("3.10.0", "2.10.1") is None
    monkeypatch.setattr(utils, "INTERPRETER_PROBLEM", utils.interpreter_problem("3.6.0", "2.4.6"))
    for fn in (kernels.chunk_gla, kernels.fused_recurrent_gla):
        with pytest.raises(RuntimeError, match="Triton 3.6.0's interpreter fails with NumPy 2.4.6"):
            fn(**{n: t.to(DEVICE) for n, t in _good().items()})


def test_bad_chunk_size():
    with pytest.raises(ValueError, match="chunk_size"):
        kernels.chunk_gla(**{n: t.to(DEVICE) for n, t in _good().items()}, chunk_size=24)
    # a power of two, but tl.dot needs every dimension >= 16 on a GPU, which the interpreter does not check
    with pytest.raises(ValueError, match="chunk_size: 8 must be a power of two >= 16"):
        kernels.chunk_gla(**{n: t.to(DEVICE) for n, t in _good().items()}, chunk_size=8)


def test_block_widths():
    """Head dims are tiled in powers of two from 16 (tl.dot's floor on a GPU) to 64, masked where they overhang."""
    from linscale.kernels.utils import block

    assert [block(w) for w in (1, 8, 16, 17, 24, 60, 64, 65, 100, 256)] == [16, 16, 16, 32, 32, 64, 64, 64, 64, 64]


def test_default_chunk_sizes(monkeypatch):
    """64 tokens a chunk by default, 16 with per-channel gates (their intra-chunk scores are built one key at a
    time: cost ∝ chunk size), in the chunked op and in the recurrent op's chunked backward."""
    from linscale.kernels import chunk, fused_recurrent

    seen = []
    fwd, bwd = chunk.chunk_fwd, fused_recurrent.chunk_bwd
    monkeypatch.setattr(chunk, "chunk_fwd", lambda *a: seen.append(("chunk", a[-1])) or fwd(*a))
    monkeypatch.setattr(fused_recurrent, "chunk_bwd", lambda *a: seen.append(("recurrent", a[-1])) or bwd(*a))
    q = torch.randn(1, 4, 1, 16, device=DEVICE, requires_grad=True)
    g = -torch.rand(1, 4, 1, 16, device=DEVICE)
    for fn in (kernels.chunk_gla, kernels.fused_recurrent_gla):
        fn(q, q, q)[0].sum().backward()
        fn(q, q, q, g=g)[0].sum().backward()
    assert seen == [("chunk", 64), ("chunk", 16), ("recurrent", 64), ("recurrent", 16)]


# ----------------------------------------------------------------------------- dispatch and models


def test_backend_switch(monkeypatch):
    """LINSCALE_BACKEND=triton routes linscale.ops through the kernels; torch through PyTorch."""
    from linscale import ops

    calls = []
    monkeypatch.setattr(kernels, "chunk_gla", lambda *a, **kw: calls.append("chunk") or (a[2], None))
    monkeypatch.setattr(kernels, "fused_recurrent_gla", lambda *a, **kw: calls.append("recurrent") or (a[2], None))
    q = torch.randn(1, 4, 2, 16, device=DEVICE)
    monkeypatch.setenv("LINSCALE_BACKEND", "triton")
    ops.chunk_linear_attention(q, q, q)
    ops.recurrent_linear_attention(q, q, q)
    monkeypatch.setenv("LINSCALE_BACKEND", "torch")
    ops.chunk_linear_attention(q, q, q)
    ops.recurrent_linear_attention(q, q, q)
    assert calls == ["chunk", "recurrent"]
    assert ops.resolve_backend(q, "torch") == "torch"
    monkeypatch.delenv("LINSCALE_BACKEND")
    assert ops.resolve_backend(q) == ("triton" if q.is_cuda else "torch")


def tiny_config(arch):
    from linscale.config import ModelConfig

    return ModelConfig(arch=arch, n_layer=2, d_model=32, n_head=2, vocab_size=64, chunk_size=16, d_ffn=64)


def train_losses(arch, backend, monkeypatch, steps=3):
    from linscale.models import build_model

    monkeypatch.setenv("LINSCALE_BACKEND", backend)
    torch.manual_seed(0)
    model = build_model(tiny_config(arch)).to(DEVICE)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    ids = torch.randint(0, 64, (2, 25), generator=torch.Generator().manual_seed(0)).to(DEVICE)
    losses = []
    for _ in range(steps):  # one batch, repeated: the loss must fall
        loss = model(ids[:, :-1], labels=ids[:, 1:]).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses, model


@pytest.mark.parametrize("arch", ["tnl", "hgrn2", "cosformer2"])
def test_model_trains_the_same_through_triton(arch, monkeypatch):
    """A few optimiser steps give the same losses (1e-4 relative) through the kernels as through PyTorch,
    and greedy decoding (prefill + the recurrent kernel) gives the same tokens."""
    ref, ref_model = train_losses(arch, "torch", monkeypatch)
    out, model = train_losses(arch, "triton", monkeypatch)
    assert ref[-1] < ref[0]  # it learns at all
    for step, (a, b) in enumerate(zip(ref, out)):
        assert abs(a - b) <= 1e-4 * abs(a), f"{arch} step {step}: loss {b} (triton) vs {a} (torch)"
    prompt = torch.randint(0, 64, (1, 5), generator=torch.Generator().manual_seed(3)).to(DEVICE)
    tokens_triton = model.generate(prompt, max_new_tokens=4)
    monkeypatch.setenv("LINSCALE_BACKEND", "torch")
    assert torch.equal(tokens_triton, model.generate(prompt, max_new_tokens=4))


# ----------------------------------------------------------------------------- benchmark


def test_benchmark_dry_run(tmp_path):
    """The benchmark script runs end to end on tiny shapes (interpreter on CPU) so it cannot rot."""
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, TRITON_INTERPRET="1" if not ON_GPU else os.environ.get("TRITON_INTERPRET", "0"))
    result = subprocess.run([sys.executable, str(root / "benchmarks" / "bench_kernels.py"), "--dry-run",
                             "--output", str(tmp_path / "bench.md")], capture_output=True, text=True, env=env,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    report = (tmp_path / "bench.md").read_text()
    for name in ("tnl", "cosformer2", "hgrn2", "sdpa", "TB/s", "TFLOP/s"):
        assert name in report, f"{name} missing from the benchmark report"


@pytest.mark.parametrize("mixer", ["tnl", "hgrn2"])
def test_benchmark_checks_fla_against_ours(monkeypatch, mixer):
    """The "vs fla" timings come with fla's output measured against ours on the same inputs, so a speed
    ratio of two different computations shows up as a large difference. fla itself needs a GPU (its import
    finds no Triton driver under the interpreter): stand-ins with its two signatures take its place."""
    from linscale.probes import benchmark_script

    bench = benchmark_script("bench_kernels")  # a script of benchmarks/, not a module of the package

    def simple_gla(q, k, v, g_gamma=None, scale=None, factor=1.0):  # fla.ops.simple_gla.chunk_simple_gla
        o, state = naive_recurrent_gla(q, k, v, g_gamma=g_gamma, scale=scale)
        return o * factor, state

    def gla(q, k, v, g, scale=None, factor=1.0):  # fla.ops.gla.chunk_gla
        o, state = naive_recurrent_gla(q, k, v, g=g, scale=scale)
        return o * factor, state

    for factor, agrees in ((1.0, True), (1.1, False)):
        stand_in = gla if mixer == "hgrn2" else simple_gla
        monkeypatch.setattr(bench, "_fla_op", lambda m: lambda *a, **kw: stand_in(*a, **kw, factor=factor))
        rows = bench.bench_mixer(mixer, 1, 40, 2, 16, torch.float32, DEVICE)
        fla_row = next(r for r in rows if r["impl"] == "fla")
        assert (fla_row["diff_vs_ours"] < 1e-4) == agrees, (factor, fla_row["diff_vs_ours"])
        table = bench.format_table(rows)
        assert f"{fla_row['diff_vs_ours']:.1e}" in table and "fwd+bwd vs fla" in table


def test_kernels_compile_for_hopper(tmp_path):
    """The interpreter checks no GPU limits: compile the largest kernel (the dq/dk backward) for sm_90 with
    each decay type, without a GPU (Triton's compiler and bundled ptxas). All variants: ``python -m
    linscale.kernels.compile_check --all``."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_CACHE_DIR"] = str(tmp_path)  # really compile, not a cache hit
    result = subprocess.run([sys.executable, "-m", "linscale.kernels.compile_check", "--arch", "90", "--only",
                             "chunk_bwd_dqk"], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert result.stdout.count("ok ") == 3, result.stdout


def test_compile_check_names_every_kernel_argument():
    """Every kernel × decay type × dtype × width of ``compile_check --all`` gives each kernel argument a type and
    names no other: a variant that left one out would fail only when compiled, which the test above does for
    the dq/dk backward alone."""
    from linscale.kernels import chunk, compile_check, fused_recurrent

    widths = ((128, 128), (256, 128), (96, 96))
    names = []
    for name, kernel, pointers, scalars, constexprs in compile_check.variants(("bf16", "fp32"), widths):
        fn = kernel.fn if hasattr(kernel, "fn") else kernel  # unwrap @triton.autotune
        given = {**pointers, **scalars, **constexprs}
        assert set(fn.arg_names) <= set(given), f"{name}: no type for {set(fn.arg_names) - set(given)}"
        assert set(given) <= set(fn.arg_names), f"{name}: {set(given) - set(fn.arg_names)} are no arguments"
        names.append(name)
    for decay, count in {"none": 6, "gamma": 6, "gated": 7}.items():  # chunk_gla_fwd_A: per-channel gates only
        for dtype in ("bf16", "fp32"):
            for K, V in widths:
                found = [n for n in names if n.endswith(f" {dtype} {decay} K={K} V={V}")]
                assert len(found) == count, (dtype, decay, K, V, found)
    jitted = {n for module in (chunk, fused_recurrent) for n in dir(module) if n.endswith("_kernel")}
    assert {n.split()[0] + "_kernel" for n in names} == jitted


def test_compile_check_fails_when_a_variant_fails(monkeypatch, capsys):
    """Exit status 1 and a FAIL line for each variant that does not compile (stand-in compiler: no GPU
    compile here); refused under the interpreter, which would compile nothing."""
    from linscale.kernels import compile_check

    def compile_kernel(kernel, pointers, scalars, constexprs, arch, **kw):
        if constexprs["USE_GAMMA"]:
            raise RuntimeError("out of shared memory")
        return SimpleNamespace(metadata=SimpleNamespace(shared=1024))

    monkeypatch.setattr(compile_check, "compile_kernel", compile_kernel)
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    assert compile_check.main(["--all", "--only", "chunk_bwd_dv"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  chunk_bwd_dv fp32 gamma K=96 V=96: RuntimeError: out of shared memory" in out
    assert out.count("ok    chunk_bwd_dv") == 12 and out.count("FAIL  chunk_bwd_dv") == 6
    assert "6 of the variants failed to compile for sm_90" in out
    assert compile_check.main(["--only", "chunk_bwd_dv bf16 none"]) == 0
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    with pytest.raises(SystemExit):
        compile_check.main([])
    assert "unset TRITON_INTERPRET" in capsys.readouterr().err


def test_gpu_train_check_dry_run(tmp_path):
    """The GPU training check (benchmarks/gpu_check.sh step 4) runs end to end on tiny shapes on a CPU,
    and its agreement rule passes there: the Triton kernels, interpreted, against the PyTorch forms."""
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, TRITON_INTERPRET="1" if not ON_GPU else os.environ.get("TRITON_INTERPRET", "0"))
    result = subprocess.run([sys.executable, str(root / "benchmarks" / "gpu_train_check.py"), "--dry-run",
                             "--output", str(tmp_path / "train.md")], capture_output=True, text=True, env=env,
                            timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    report = (tmp_path / "train.md").read_text()
    assert "all agreement checks passed" in report
    for name in ("tnl", "hgrn2", "cosformer2", "llama", "triton_speedup", "mfu"):
        assert name in report, f"{name} missing from the report"
