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


def test_an_empty_sequence_hands_back_a_copy_of_the_initial_state():
    """T = 0: every form returns the initial state as the final one, as a tensor of its own (the recurrent
    form handed back the caller's, so an in-place update of the one changed the other)."""
    q = torch.zeros(1, 0, 2, 8)
    h0 = torch.randn(1, 2, 8, 8)
    for fn in (naive_recurrent_gla, chunk_gla, fused_recurrent_gla):
        o, ht = fn(q, q, q, g=q, initial_state=h0, output_final_state=True)
        assert o.shape == (1, 0, 2, 8) and torch.equal(ht, h0) and ht.data_ptr() != h0.data_ptr(), fn.__name__


def test_strong_decay_is_stable():
    """Decays at the strong end (λ = e^-7.5, gates near 0) overflow a factorised (q e^b)(k e^-b)ᵀ; ours must not."""
    q, k, v, extra = make_inputs(200, "channel", with_h0=False, strength=30.0)
    o, ht = chunk_gla(q.float(), k.float(), v.float(), g=extra["g"].float(), output_final_state=True)
    ref, _ = naive_recurrent_gla(q, k, v, g=extra["g"])
    assert torch.isfinite(o).all() and torch.isfinite(ht).all()
    assert_close("o", ref, o.double(), 1e-5)
    o, _ = chunk_gla(q.float(), k.float(), v.float(), g_gamma=torch.full((H,), -7.5))
    assert torch.isfinite(o).all()


# ----------------------------------------------------------------------------- the fused loss


def _reference_loss(hidden, weight, labels):
    return F.cross_entropy(F.linear(hidden, weight), labels, ignore_index=-100)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 2e-6)])
@pytest.mark.parametrize("chunk_rows", [None, 7, 64])
def test_linear_cross_entropy_matches_f_cross_entropy(dtype, tol, chunk_rows):
    """Loss and both gradients equal F.cross_entropy(F.linear(...)), with ignored rows, ragged chunks,
    large logits (a loss far beyond exp's range) and a scaled incoming gradient."""
    from linscale.ops.cross_entropy import linear_cross_entropy

    g = torch.Generator().manual_seed(0)
    n, d, vocab = 50, 12, 37
    hidden = torch.randn(n, d, generator=g, dtype=dtype)
    weight = torch.randn(vocab, d, generator=g, dtype=dtype)
    hidden[3] *= 40  # logits of a few hundred: softmax underflows for most words of that row
    labels = torch.randint(0, vocab, (n,), generator=g)
    labels[::5] = -100
    results = []
    for loss_fn in (_reference_loss, lambda h, w, y: linear_cross_entropy(h, w, y, chunk_rows=chunk_rows)):
        h, w = hidden.clone().requires_grad_(), weight.clone().requires_grad_()
        loss = loss_fn(h, w, labels)
        (2.5 * loss).backward()
        results.append((loss.detach(), h.grad, w.grad))
    (ref_loss, ref_h, ref_w), (loss, grad_h, grad_w) = results
    assert loss.dtype == dtype and ref_loss.item() > 5  # the big row makes the mean loss large
    assert_close("loss", ref_loss, loss, tol)
    assert_close("hidden grad", ref_h, grad_h, tol)
    assert_close("weight grad", ref_w, grad_w, tol)
    assert (grad_h[::5] == 0).all()  # ignored rows get no gradient


def test_linear_cross_entropy_without_grad_and_edge_cases():
    from linscale.ops.cross_entropy import linear_cross_entropy

    hidden, weight = torch.randn(9, 4, requires_grad=True), torch.randn(6, 4, requires_grad=True)
    labels = torch.randint(0, 6, (9,))
    with torch.no_grad():
        loss = linear_cross_entropy(hidden, weight, labels)
    assert not loss.requires_grad and torch.allclose(loss, _reference_loss(hidden, weight, labels).detach())
    frozen = linear_cross_entropy(hidden, weight.detach(), labels)  # only hidden wants a gradient
    frozen.backward()
    assert weight.grad is None and hidden.grad is not None
    assert torch.isnan(linear_cross_entropy(hidden, weight, torch.full((9,), -100)))  # nothing counted, as torch
    with pytest.raises(ValueError, match="expected labels"):
        linear_cross_entropy(hidden, weight, labels[:3])
