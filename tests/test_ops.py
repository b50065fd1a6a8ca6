"""The three forms of gated linear attention agree: naive loop == chunked == step-wise recurrent.

Float64 so that the comparison tests the algebra, not rounding; all gradients (q, k, v, g, h0)."""
import pytest
import torch
import torch.nn.functional as F

from helpers import assert_close
from linscale.ops import chunk_gla, fused_recurrent_gla
from linscale.ops.naive import naive_recurrent_gla

B, H, K, V = 2, 3, 12, 10
DECAYS = ["none", "head", "channel"]


def make_inputs(T, decay, with_h0, strength=1.0):
    g = torch.Generator().manual_seed(T * 7 + len(decay))
    kw = dict(dtype=torch.float64)
    q = torch.randn(B, T, H, K, generator=g, **kw)
    k = torch.randn(B, T, H, K, generator=g, **kw)
    v = torch.randn(B, T, H, V, generator=g, **kw)
    extra = {}
    if decay == "head":
        extra["g_gamma"] = -torch.rand(H, generator=g, **kw) * strength
    if decay == "channel":
        extra["g"] = F.logsigmoid(torch.randn(B, T, H, K, generator=g, **kw) * strength)
    if with_h0:
        extra["initial_state"] = torch.randn(B, H, K, V, generator=g, **kw)
    tensors = [q, k, v, *extra.values()]
    for t in tensors:
        t.requires_grad_(True)
    return q, k, v, extra


def run(fn, q, k, v, extra, **kw):
    o, ht = fn(q, k, v, output_final_state=True, **extra, **kw)
    # torch.randn, not randn_like: randn_like copies strides, so non-contiguous outputs would get other values
    do = torch.randn(o.shape, dtype=o.dtype)
    dht = torch.randn(ht.shape, dtype=ht.dtype)
    grads = torch.autograd.grad((o * do).sum() + (ht * dht).sum(), [q, k, v, *extra.values()])
    return o, ht, grads


@pytest.mark.parametrize("decay", DECAYS)
@pytest.mark.parametrize("T", [1, 63, 65, 200])
@pytest.mark.parametrize("chunk_size", [16, 24, 32, 64])  # 24: sub-chunks of 12 (per-channel decay)
def test_chunk_matches_naive(decay, T, chunk_size):
    q, k, v, extra = make_inputs(T, decay, with_h0=True)
    torch.manual_seed(1)
    ref = run(naive_recurrent_gla, q, k, v, extra)
    torch.manual_seed(1)
    out = run(chunk_gla, q, k, v, extra, chunk_size=chunk_size)
    assert_close("o", ref[0], out[0], 1e-10)
    assert_close("ht", ref[1], out[1], 1e-10)
    for name, a, b in zip(["dq", "dk", "dv", *[f"d{n}" for n in extra]], ref[2], out[2]):
        assert_close(name, a, b, 1e-10)


@pytest.mark.parametrize("decay", DECAYS)
@pytest.mark.parametrize("with_h0", [False, True])
def test_recurrent_matches_naive(decay, with_h0):
    q, k, v, extra = make_inputs(65, decay, with_h0)
    torch.manual_seed(1)
    ref = run(naive_recurrent_gla, q, k, v, extra)
    torch.manual_seed(1)
    out = run(fused_recurrent_gla, q, k, v, extra)
    for name, a, b in zip(["o", "ht"], ref[:2], out[:2]):
        assert_close(name, a, b, 1e-12)
    for a, b in zip(ref[2], out[2]):
        assert_close("grad", a, b, 1e-12)


@pytest.mark.parametrize("decay", DECAYS)
def test_split_and_resume_through_state(decay):
    """Two halves joined through the final state equal one call over the whole sequence."""
    q, k, v, extra = make_inputs(100, decay, with_h0=False)
    whole, _ = chunk_gla(q, k, v, **extra)
    first = {n: (t[:, :37] if n == "g" else t) for n, t in extra.items()}
    second = {n: (t[:, 37:] if n == "g" else t) for n, t in extra.items()}
    o1, h1 = chunk_gla(q[:, :37], k[:, :37], v[:, :37], output_final_state=True, chunk_size=16, **first)
    o2, _ = chunk_gla(q[:, 37:], k[:, 37:], v[:, 37:], initial_state=h1, chunk_size=16, **second)
    assert_close("o", whole, torch.cat([o1, o2], dim=1), 1e-10)


def test_strong_decay_is_stable():
    """Decays at the strong end (λ = e^-7.5, gates near 0) overflow a factorised (q e^b)(k e^-b)ᵀ; ours must not."""
    q, k, v, extra = make_inputs(200, "channel", with_h0=False, strength=30.0)
    o, ht = chunk_gla(q.float(), k.float(), v.float(), g=extra["g"].float(), output_final_state=True)
    ref, _ = naive_recurrent_gla(q, k, v, g=extra["g"])
    assert torch.isfinite(o).all() and torch.isfinite(ht).all()
    assert_close("o", ref, o.double(), 1e-5)
    o, _ = chunk_gla(q.float(), k.float(), v.float(), g_gamma=torch.full((H,), -7.5))
    assert torch.isfinite(o).all()
