"""The four architectures: equivalent forms, causality, decoding, the papers' schedules, learning."""
import math

import pytest
import torch

from helpers import assert_close
from linscale.config import ARCHITECTURES, LINEAR_ARCHITECTURES, ConfigError, ModelConfig
from linscale.models import build_model
from linscale.models.hgrn2 import HGRN2LM
from linscale.models.tnl import alibi_slopes, tnl_log_decay

ARCHS = list(ARCHITECTURES)  # a new architecture is tested here as soon as config registers it
LINEAR = list(LINEAR_ARCHITECTURES)


def tiny(arch, **kw):
    fields = dict(arch=arch, n_layer=2, d_model=32, n_head=2, vocab_size=64, chunk_size=16, d_ffn=64)
    fields.update(kw)
    return ModelConfig(**fields)


def set_mode(model, mode):
    for module in model.modules():
        if hasattr(module, "mode"):
            module.mode = mode


@pytest.mark.parametrize("arch", LINEAR)
@pytest.mark.parametrize("T", [1, 63, 65, 200])
@pytest.mark.parametrize("chunk_size", [16, 64])
def test_linear_mixer_forms_agree(arch, T, chunk_size):
    """naive == chunked == recurrent for the whole mixer: outputs and gradients w.r.t. its input (fp32)."""
    model = build_model(tiny(arch, chunk_size=chunk_size))
    inputs = model.layer_inputs()[1]  # layer 1: HGRN2's lower bound is non-zero there
    mixer = model.blocks[1].token_mixer
    x = torch.randn(2, T, 32)
    dy = torch.randn(2, T, 32)
    results = {}
    for mode in ["naive", "chunk", "recurrent"]:
        mixer.mode = mode
        xm = x.clone().requires_grad_(True)
        y, _ = mixer(xm, **inputs)
        (dx,) = torch.autograd.grad((y * dy).sum(), [xm])
        results[mode] = (y, dx)
    for mode in ["chunk", "recurrent"]:
        assert_close(f"{mode} output", results["naive"][0], results[mode][0], 1e-4)
        assert_close(f"{mode} input grad", results["naive"][1], results[mode][1], 1e-4)


@pytest.mark.parametrize("arch", ARCHS)
def test_causal(arch):
    """Changing token t never changes the outputs before t."""
    model = build_model(tiny(arch))
    x = torch.randint(0, 64, (2, 50))
    y = x.clone()
    y[:, 30] = (y[:, 30] + 1) % 64
    a, b = model(x).logits, model(y).logits
    assert torch.equal(a[:, :30], b[:, :30]) or (a[:, :30] - b[:, :30]).abs().max() < 1e-6
    assert (a[:, 30:] - b[:, 30:]).abs().max() > 1e-4  # and the change is seen from t on


@pytest.mark.parametrize("arch", ARCHS)
def test_decoding_with_state_matches_full_forward(arch):
    """Prefill, then one token at a time through the state (KV cache for LLaMA) == one full forward."""
    model = build_model(tiny(arch))
    x = torch.randint(0, 64, (2, 45))
    full = model(x).logits
    out = model(x[:, :20], return_state=True)
    pieces, state = [out.logits], out.state
    for t in range(20, 45):
        out = model(x[:, t:t + 1], state=state)
        pieces.append(out.logits)
        state = out.state
    assert state.offset == 45
    assert_close("logits", full, torch.cat(pieces, dim=1), 1e-5)
    # a block of several tokens after a state works too
    out = model(x[:, :20], return_state=True)
    rest = model(x[:, 20:], state=out.state).logits
    assert_close("logits (block after state)", full[:, 20:], rest, 1e-5)


@pytest.mark.parametrize("arch", ARCHS)
def test_generate_is_greedy_decoding(arch):
    model = build_model(tiny(arch))
    prompt = torch.randint(0, 64, (2, 7))
    out = model.generate(prompt, max_new_tokens=6)
    assert out.shape == (2, 13) and torch.equal(out[:, :7], prompt)
    for t in range(7, 13):  # each token is the argmax of a full forward over what came before
        assert torch.equal(out[:, t], model(out[:, :t]).logits[:, -1].argmax(-1))


@pytest.mark.parametrize("arch", LINEAR)
def test_linear_state_is_constant_size(arch):
    model = build_model(tiny(arch))
    short = model(torch.randint(0, 64, (1, 10)), return_state=True).state.nbytes()
    long = model(torch.randint(0, 64, (1, 300)), return_state=True).state.nbytes()
    assert short == long > 0
    llama = build_model(tiny("llama"))
    assert llama(torch.randint(0, 64, (1, 300)), return_state=True).state.nbytes() == \
        30 * llama(torch.randint(0, 64, (1, 10)), return_state=True).state.nbytes()


def test_hgrn2_lower_bound_rises_with_depth():
    model = build_model(tiny("hgrn2", n_layer=5))
    assert isinstance(model, HGRN2LM)
    for _ in range(2):  # at the zero initialisation and after a random perturbation
        lb = model.lower_bound_per_layer()
        assert torch.equal(lb[0], torch.zeros_like(lb[0]))
        assert (lb[1:] > lb[:-1]).all() and (lb < 1).all()
        with torch.no_grad():
            model.lower_bounds.gamma.normal_()
    assert model.layer_inputs()[0]["lower_bound"] is None


def test_hgrn2_lower_bound_table_keeps_its_place_and_loads_old_checkpoints():
    """Γ moved from the model's root into a module of its own (so FSDP can keep it fp32). Its parameter is
    still the first, as the root's own was: the order sets the rounding of the gradient norm that clipping
    divides by, so training keeps every bit. A state dict written before (key ``lower_bounds``) loads."""
    torch.manual_seed(0)
    model = build_model(tiny("hgrn2", n_layer=3))
    assert next(iter(model.parameters())) is model.lower_bounds.gamma
    with torch.no_grad():
        model.lower_bounds.gamma.normal_()
    old = {("lower_bounds" if name == "lower_bounds.gamma" else name): w for name, w in model.state_dict().items()}
    again = build_model(tiny("hgrn2", n_layer=3))
    again.load_state_dict(old)  # strict
    assert torch.equal(again.lower_bounds.gamma, model.lower_bounds.gamma)


def test_tnl_decay_schedule_worked_example():
    """paper.md §8.2: H = 8, layer 0 of several: λ from e^-0.5 ≈ 0.61 (head 0) to e^-0.0039 ≈ 0.996 (head 7)."""
    lam = tnl_log_decay(8, layer_idx=0, n_layer=6).exp()
    assert lam[0].item() == pytest.approx(math.exp(-0.5 * (1 + 1e-5)), rel=1e-6)
    assert lam[0].item() == pytest.approx(0.61, abs=0.005)
    assert lam[7].item() == pytest.approx(math.exp(-(2 ** -8)), rel=1e-6)
    assert (lam[1:] > lam[:-1]).all()  # later heads decay less
    last = tnl_log_decay(8, layer_idx=5, n_layer=6).exp()
    assert (last > 0.99999).all()  # the last layer barely decays
    # ALiBi's rule for head counts that are not powers of two (Table 7 has 6 and 20)
    assert alibi_slopes(6) == pytest.approx([2**-2, 2**-4, 2**-6, 2**-8, 2**-1, 2**-3])
    # the paper's formula: head 0 does not decay; the strongest is e^-7.5 at H = 16, layer 0
    paper = tnl_log_decay(16, 0, 32, "paper")
    assert paper[0].item() == 0 and paper[-1].item() == pytest.approx(-7.5)
    # a single layer uses the first layer's decays
    assert torch.allclose(tnl_log_decay(8, 0, 1), tnl_log_decay(8, 0, 6))


@pytest.mark.parametrize("arch", ARCHS)
def test_tiny_model_learns_a_fixed_batch(arch):
    """50 AdamW steps on one toy batch at least halve the loss."""
    torch.manual_seed(0)
    model = build_model(tiny(arch))
    x = torch.randint(0, 64, (4, 33))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(50):
        loss = model(x[:, :-1], labels=x[:, 1:]).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses[::10]


@pytest.mark.parametrize("fields, message", [
    (dict(arch="mamba"), "arch: unknown architecture 'mamba'"),
    (dict(d_model=30, n_head=4), "d_model: 30 is not divisible by n_head=4"),
    (dict(n_layer=0), "n_layer: expected a positive integer, got 0"),
    (dict(d_model=-8), "d_model: expected a positive integer"),
    (dict(vocab_size=2.5), "vocab_size: expected a positive integer"),
    (dict(decay_schedule="linear"), "decay_schedule: 'linear' is not one of"),
    (dict(mixer_mode="fast"), "mixer_mode: 'fast' is not one of"),
    (dict(norm_eps=0), "norm_eps: expected a positive number, got 0"),
    (dict(rope_base=-1.0), "rope_base: expected a positive number, got -1.0"),
    (dict(init_std="0.02"), "init_std: expected a positive number, got '0.02'"),
    (dict(gate_rank=0), "gate_rank: expected a positive integer, got 0"),
    (dict(d_ffn=0), "d_ffn: expected a positive integer, got 0"),
    (dict(chunk_size=0), "chunk_size: expected a positive integer, got 0"),
    (dict(arch="llama", d_model=12, n_head=4), "n_head: LLaMA's rotary embedding needs an even head width, and "
                                                "d_model/n_head = 12/4 = 3"),
])
def test_bad_config_names_the_field(fields, message):
    base = dict(arch="tnl", n_layer=2, d_model=32, n_head=4, vocab_size=64)
    base.update(fields)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ModelConfig(**base)


def test_unknown_field_in_dict_config():
    with pytest.raises(ConfigError, match="n_layers: unknown model config field"):
        ModelConfig.from_dict(dict(arch="tnl", n_layers=2, d_model=32, n_head=4, vocab_size=64))


def test_a_missing_field_is_one_line_naming_it_wherever_a_preset_is_expanded():
    """A size without n_head was Python's TypeError (a traceback) in `linscale accounting`, the design
    check and `ModelConfig.from_dict`; `linscale sweep` named the size, the design check did not."""
    from linscale.presets import load_preset, model_configs

    with pytest.raises(ConfigError, match=r"^n_head: missing; a model config needs arch, n_layer, d_model, n_head"):
        ModelConfig.from_dict(dict(arch="tnl", n_layer=2, d_model=32, vocab_size=64))
    preset = load_preset("smoke")
    preset["sizes"]["s1"] = {k: v for k, v in preset["sizes"]["s1"].items() if k != "n_head"}
    with pytest.raises(ConfigError, match=r"^sizes.s1 \(llama\): n_head: missing"):
        model_configs(preset)
    preset = {**load_preset("smoke"), "archs": ["lama"]}
    with pytest.raises(ConfigError, match=r"^sizes.s1 \(lama\): arch: unknown architecture 'lama'"):
        model_configs(preset)


@pytest.mark.parametrize("arch", ARCHS)
def test_fused_loss_equals_the_unfused_loss(arch):
    """The model's fused loss (CPU training) gives the loss and every parameter's gradient of logits +
    F.cross_entropy to fp32 rounding; the logits, asked for, are the same tensor either way."""
    model = build_model(tiny(arch, vocab_size=97))
    x = torch.randint(0, 97, (3, 41))
    labels = x.roll(-1, 1)
    labels[:, -1] = -100
    results = {}
    for fused in (False, True):
        model.fused_loss = fused
        model.zero_grad()
        out = model(x, labels=labels)
        out.loss.backward()
        results[fused] = out.loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}, out.logits.detach()
    assert_close("loss", results[False][0], results[True][0], 1e-6)
    for name, grad in results[False][1].items():
        assert_close(f"{name} grad", grad, results[True][1][name], 1e-5)
    assert torch.equal(results[False][2], results[True][2])


def test_fused_loss_logits_are_refused_after_the_weights_change():
    model = build_model(tiny("llama"))
    x = torch.randint(0, 64, (2, 10))
    out = model(x, labels=x)
    assert out._logits is None  # training does not pay for logits it never reads
    with torch.no_grad():
        model.embed.weight.mul_(2)
    with pytest.raises(RuntimeError, match="output weights changed"):
        out.logits


def test_llama_attention_probabilities_are_the_weights_forward_applies():
    """The probe's weights (benchmarks/probe_retrieval.py), times V and the output projection, give the layer's
    own output; each row is a causal distribution (sums to 1, nothing on later tokens)."""
    torch.manual_seed(0)
    model = build_model(tiny("llama", n_head=2))
    attention = model.blocks[0].token_mixer
    x = torch.randn(2, 9, model.config.d_model)
    with torch.no_grad():
        p = attention.attention_probabilities(x)
        _, _, v = attention._qkv(x, 0)
        by_hand = attention.o_proj((p @ v).transpose(1, 2).reshape(2, 9, -1))
        out, _ = attention(x)
    assert p.shape == (2, 2, 9, 9)
    assert_close("rows sum to 1", p.sum(-1), torch.ones(2, 2, 9), 1e-6)
    assert float(p.triu(diagonal=1).abs().max()) == 0.0
    assert_close("p V W_o = forward", by_hand, out, 1e-5)


def test_hgrn2_mixer_is_the_gated_recurrence_written_out():
    """The module docstring's equations by hand, one token at a time: f = lb + (1 − lb)·sigmoid(X̄W_f),
    S_t = diag(f_t) S_{t−1} + (1 − f_t) i_tᵀ, o_t = S_tᵀ q_t. The forms of the mixer agree with one another
    (test_linear_mixer_forms_agree), so a mistake they share (a key of f rather than 1 − f) needs this."""
    torch.manual_seed(0)
    model = build_model(tiny("hgrn2", n_layer=3))
    with torch.no_grad():
        model.lower_bounds.gamma.normal_()
    lb = model.lower_bound_per_layer()[1].detach()
    assert float(lb.min()) > 0  # layer 1's bound is in play
    mixer = model.blocks[1].token_mixer
    B, T, H, D = 2, 7, mixer.n_head, mixer.head_dim
    x = torch.randn(B, T, H * D, dtype=torch.float64)
    mixer.double()
    with torch.no_grad():
        q = torch.nn.functional.silu(mixer.q_proj(x)).view(B, T, H, D)
        f = (lb.double() + (1 - lb.double()) * torch.sigmoid(mixer.f_proj(x))).view(B, T, H, D)
        i = mixer.i_proj(x).view(B, T, H, D)
        S = torch.zeros(B, H, D, D, dtype=torch.float64)
        outputs = []
        for t in range(T):
            S = f[:, t, :, :, None] * S + (1 - f[:, t, :, :, None]) * i[:, t, :, None, :]
            outputs.append(torch.einsum("bhkv,bhk->bhv", S, q[:, t]))
        by_hand = mixer.o_proj(mixer.norm(torch.stack(outputs, 1).reshape(B, T, H * D)))
        for mode in ["naive", "chunk", "recurrent"]:
            mixer.mode = mode
            out, _ = mixer(x, lower_bound=lb.double())
            assert_close(f"{mode} mixer = the recurrence by hand", by_hand, out, 1e-10)


def test_cosformer2_lrpe_reweights_scores_by_relative_position():
    """q̃_s·k̃_t = Σ_c q_c k_c cos((s − t)θ_c): the score depends on s − t only (cosFormer2's module
    docstring), so shifting both positions by one offset leaves it unchanged."""
    torch.manual_seed(0)
    attention = build_model(tiny("cosformer2")).blocks[0].token_mixer
    H, D = attention.n_head, attention.head_dim
    with torch.no_grad():
        attention.theta.uniform_(0.05, 1.5)  # away from the initial frequencies, some near 0
        q, k = torch.randn(1, 1, H, D), torch.randn(1, 1, H, D)
        for s, t, shift in [(5, 2, 0), (5, 2, 11), (3, 9, 40), (0, 0, 7)]:
            score = (attention.lrpe(q, s + shift) * attention.lrpe(k, t + shift)).sum(-1)  # (1, 1, H)
            expected = (q * k * torch.cos((s - t) * attention.theta)).sum(-1)
            assert_close(f"score at s={s}, t={t}, shift {shift}", expected, score, 1e-5)


def test_tnl_mixer_is_the_decayed_sum_written_out():
    """TNL's docstring by hand: o_t = Σ_{s≤t} λ^{t−s} (q_t·k_s) v_s per head, with λ = exp(log_decay) of the
    layer, then the norm, the low-rank gate and W_o (a decay the forms all took wrongly needs this)."""
    torch.manual_seed(0)
    mixer = build_model(tiny("tnl", n_head=4)).blocks[0].token_mixer.double()
    B, T, H, D = 2, 6, mixer.n_head, mixer.head_dim
    x = torch.randn(B, T, H * D, dtype=torch.float64)
    lam = mixer.log_decay.double().exp()  # (H,)
    assert float(lam.min()) < 0.9  # layer 0 decays visibly
    with torch.no_grad():
        q, k = (torch.nn.functional.silu(p(x)).view(B, T, H, D) for p in (mixer.q_proj, mixer.k_proj))
        v = mixer.v_proj(x).view(B, T, H, D)
        o = torch.zeros(B, T, H, D, dtype=torch.float64)
        for t in range(T):
            for s in range(t + 1):
                weight = lam ** (t - s) * (q[:, t] * k[:, s]).sum(-1)  # (B, H)
                o[:, t] += weight[..., None] * v[:, s]
        by_hand = mixer.o_proj(mixer.norm(o.reshape(B, T, H * D)) * mixer.gate(x))
        for mode in ["naive", "chunk", "recurrent"]:
            mixer.mode = mode
            assert_close(f"{mode} mixer = the decayed sum by hand", by_hand, mixer(x)[0], 1e-10)


def test_llama_trains_in_bf16_on_a_cpu_under_the_studys_avx2_pin():
    """With ATen held to AVX2 (as every linscale command holds it) on an AVX-512 CPU, torch's bf16 flash
    kernel raised "pack_vnni2 is only supported when avx512 is supported": the paper preset tried on a CPU
    (--accelerator cpu) failed for LLaMA alone. The pin must be set before torch starts, so in a process of
    its own; on a CPU without AVX-512 the kernel never took that path and this passes either way."""
    import os
    import subprocess
    import sys

    code = """
import torch
from linscale.config import ModelConfig
from linscale.models import build_model
model = build_model(ModelConfig(arch="llama", n_layer=1, d_model=64, n_head=2, vocab_size=64, d_ffn=128))
tokens = torch.randint(0, 64, (8, 128))
with torch.autocast("cpu", dtype=torch.bfloat16):
    out = model(tokens)
out.logits.float().sum().backward()
print(torch.backends.cpu.get_cpu_capability())
"""
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "avx2"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("AVX2")


# each architecture's tensors fixed by its config (common.config_constant), kept out of the buffers
CONFIG_CONSTANTS = {"tnl": {"log_decay"}, "cosformer2": {"log_gamma"}, "llama": {"inv_freq", "cos", "sin"},
                    "hgrn2": set()}


@pytest.mark.parametrize("arch", ARCHS)
def test_a_model_cast_to_bf16_keeps_its_decays_and_rotary_frequencies_exact(arch):
    """``model.to(torch.bfloat16)``, and FSDP under bf16-mixed (the paper preset's: Lightning gives FSDP a
    buffer_dtype of bf16), cast every floating buffer. TNL's and cosFormer2's decay rates and LLaMA's
    rotary frequencies were buffers, so a model trained so used rounded ones and was evaluated with exact
    ones. They are fp32 constants of the config now: no model has a floating buffer, and a bf16 model's
    constants (its rotary tables rebuilt after the cast, too) are its fp32 twin's, bit for bit."""
    torch.manual_seed(0)
    exact = build_model(tiny(arch, max_seq_len=16))
    cast = build_model(tiny(arch, max_seq_len=16)).to(torch.bfloat16)
    assert [name for name, b in cast.named_buffers() if b.is_floating_point()] == []
    x = torch.randint(0, 64, (1, 40))  # past the 16 positions LLaMA's tables were built for: rebuilt
    exact(x), cast(x)

    def constants(model):
        return {f"{name}.{attr}": value for name, module in model.named_modules()
                for attr, value in vars(module).items() if isinstance(value, torch.Tensor)}

    exact_constants, cast_constants = constants(exact), constants(cast)
    assert {key.rsplit(".", 1)[1] for key in exact_constants} == CONFIG_CONSTANTS[arch]
    assert cast_constants.keys() == exact_constants.keys()
    for key, value in cast_constants.items():
        assert value.dtype == torch.float32 and torch.equal(value, exact_constants[key]), key


def test_a_saturated_hgrn2_forget_gate_with_a_lower_bound_never_exceeds_one(monkeypatch):
    """log f = logaddexp(log lb, log(1 − lb) + logsigmoid(F)) is exactly ≤ 0, but with σ(F) rounding to 1
    (F ≳ 16) fp32 gave up to +6e-8 for a fifth of the lower bounds: a decay above one, which the Triton
    kernels refuse (kernels/utils.py check_inputs), stopping a GPU run the first time a gate saturated."""
    import linscale.models.hgrn2 as hgrn2

    seen = {}
    real = hgrn2.linear_attention
    monkeypatch.setattr(hgrn2, "linear_attention", lambda *args, **kw: seen.update(kw, k=args[2]) or real(*args, **kw))
    model = build_model(tiny("hgrn2"))
    mixer = model.blocks[1].token_mixer
    lower_bound = torch.linspace(0.01, 0.98, 32)
    torch.manual_seed(0)
    x = torch.randn(2, 8, 32)
    with torch.no_grad():
        mixer.f_proj.weight.copy_(torch.eye(32) * 40.0)  # F = 40·x: many gates past F = 16, both signs
        mixer(x, lower_bound=lower_bound)
    log_f, k = seen["g"], seen["k"]
    assert (40 * x > 16).sum() > 100
    assert (log_f <= 0).all() and (k >= 0).all(), log_f.max()
    exact = torch.log1p(-(1 - lower_bound.double()) * torch.sigmoid(-40.0 * x.double())).view_as(log_f)
    assert torch.allclose(log_f.double(), exact, rtol=1e-6, atol=1e-7)  # the clamp moved nothing beyond rounding


def test_hgrn2s_decays_reach_its_token_mixer_in_fp32_under_bf16_autocast(monkeypatch):
    """Layer 0 (no lower bound) took logsigmoid in bf16 under autocast, and its decays' cumulative sums over a
    chunk amplify that rounding; the layers with a bound were promoted to fp32 by it. All are fp32 now, as in
    flash-linear-attention."""
    import linscale.models.hgrn2 as hgrn2

    seen = []
    mix = hgrn2.linear_attention

    def recording(mode, q, k, v, g=None, **kwargs):
        seen.append(g.dtype)
        return mix(mode, q, k, v, g=g, **kwargs)

    monkeypatch.setattr(hgrn2, "linear_attention", recording)
    model = build_model(ModelConfig(arch="hgrn2", n_layer=2, d_model=32, n_head=2, vocab_size=50))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        model(torch.randint(0, 50, (2, 20)))
    assert seen == [torch.float32, torch.float32]


# ----------------------------------------------------------------------------- the forms written out by hand


def by_weight(x, linear):
    """x · W for a bias-free nn.Linear (torch stores Wᵀ)."""
    return x @ linear.weight.t()


def rms_normed(x, eps):
    """x / √(mean(x²) + ε): SRMSNorm, and RMSNorm before its gain."""
    return x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + eps)


def test_channel_mixers_and_the_low_rank_gate_are_the_papers_forms():
    """SwiGLU (U ⊙ swish(V))·W_down for LLaMA, SGLU (U ⊙ V)·W_down with no activation for the linear models and
    the output gate sigmoid(X̄·W_gd·W_gu) of TNL and cosFormer2 (paper.md §8.0, §8.2), with swish(z) = z·σ(z)."""
    torch.manual_seed(0)
    x = torch.randn(2, 5, 32, dtype=torch.float64)
    gated = set()
    with torch.no_grad():
        for arch in ARCHS:
            block = build_model(tiny(arch)).double().blocks[0]
            glu = block.channel_mixer
            u, v = by_weight(x, glu.w_u), by_weight(x, glu.w_v)
            hidden = u * v * torch.sigmoid(v) if arch == "llama" else u * v
            assert_close(f"{arch} channel mixer", by_weight(hidden, glu.w_down), glu(x), 1e-12)
            gate = getattr(block.token_mixer, "gate", None)
            if gate is not None:
                gated.add(arch)
                assert_close(f"{arch} gate", torch.sigmoid(by_weight(by_weight(x, gate.down), gate.up)), gate(x), 1e-12)
    assert gated == {"tnl", "cosformer2"}


@pytest.mark.parametrize("arch", ARCHS)
def test_a_block_is_pre_norm_residual_at_the_configs_epsilon(arch):
    """O = TokenMixer(Norm(X)) + X, X' = ChannelMixer(Norm(O)) + O (paper.md §8.0), Norm = x/√(mean(x²) + ε) at the
    config's ε, times a learnable gain for LLaMA's RMSNorm (set away from 1 here) and with none for SRMSNorm."""
    eps = 0.05  # large, so that the ε a norm takes shows
    torch.manual_seed(0)
    model = build_model(tiny(arch, norm_eps=eps)).double()
    block = model.blocks[1]
    inputs = model.layer_inputs()[1]
    norms = [block.norm1, block.norm2]
    with torch.no_grad():
        for norm in norms:
            assert [p.shape for p in norm.parameters()] == ([(32,)] if arch == "llama" else [])
            if arch == "llama":
                norm.weight.uniform_(0.5, 1.5)
        gain = [norm.weight if arch == "llama" else 1.0 for norm in norms]
        x = torch.randn(2, 6, 32, dtype=torch.float64)
        o = x + block.token_mixer(rms_normed(x, eps) * gain[0], **inputs)[0]
        by_hand = o + block.channel_mixer(rms_normed(o, eps) * gain[1])
        assert_close("block", by_hand, block(x, **inputs)[0], 1e-12)


@pytest.mark.parametrize("arch", ARCHS)
def test_the_model_is_embedding_blocks_final_norm_and_the_tied_projection(arch):
    """logits = Norm(blocks(TPE(E[ids]))) · Eᵀ: one matrix E embeds and projects back (tied, and trained as both),
    TPE for cosFormer2 alone, the final norm at the config's ε; the count without the embedding leaves out E alone."""
    eps = 0.05
    torch.manual_seed(0)
    model = build_model(tiny(arch, norm_eps=eps, vocab_size=97)).double()
    assert (model.input_transform is not None) == (arch == "cosformer2")
    assert [name for name, p in model.named_parameters() if p.shape == (97, 32)] == ["embed.weight"]
    assert model.num_params(non_embedding=False) - model.num_params() == 97 * 32
    ids = torch.randint(0, 97, (2, 9))
    with torch.no_grad():
        if arch == "llama":
            model.norm.weight.uniform_(0.5, 1.5)
        x = model.embed.weight[ids]
        if model.input_transform is not None:
            x = model.input_transform(x)[0]
        for block, inputs in zip(model.blocks, model.layer_inputs()):
            x = block(x, **inputs)[0]
        x = rms_normed(x, eps) * (model.norm.weight if arch == "llama" else 1.0)
        assert_close("logits", x @ model.embed.weight.t(), model(ids).logits, 1e-12)
    for fused in (True, False):  # the projection trains E too: rows of words never read as input get a gradient
        model.fused_loss = fused
        model.zero_grad()
        model(ids % 50, labels=ids).loss.backward()
        assert (model.embed.weight.grad[50:].abs().sum(-1) > 0).all(), fused


def test_llama_mixer_is_rope_softmax_attention_written_out():
    """paper.md §8.1 by hand: RoPE turns each pair (i, i + D/2) of q and k by the angle s·base^(−2i/D) at position s
    (counter-clockwise, LLaMA's rotate-half convention), then causal softmax(QKᵀ/√D)·V per head, then W_o."""
    torch.manual_seed(0)
    base = 500.0  # not the default, so that the config's base is the one used
    mixer = build_model(tiny("llama", n_head=2, rope_base=base)).blocks[0].token_mixer.double()
    B, T, H, D = 2, 7, 2, 16

    def rope(z, first):  # z (B, T, H, D) with its tokens at positions first, first + 1, ...
        s = torch.arange(first, first + z.shape[1], dtype=torch.float64)[:, None]  # (T, 1)
        angle = s * base ** (-2 * torch.arange(D // 2, dtype=torch.float64) / D)  # (T, D/2)
        cos, sin = angle.cos()[:, None], angle.sin()[:, None]  # (T, 1, D/2)
        a, b = z[..., :D // 2], z[..., D // 2:]
        return torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1)

    x = torch.randn(B, T, H * D, dtype=torch.float64)
    with torch.no_grad():
        z = torch.randn(B, T, H, D, dtype=torch.float64)
        assert_close("rotary at offset 5", rope(z, 5), mixer.rope(z, 5), 1e-6)  # fp32 tables
        q, k, v = (by_weight(x, p).view(B, T, H, D) for p in (mixer.q_proj, mixer.k_proj, mixer.v_proj))
        scores = torch.einsum("bthd,bshd->bhts", rope(q, 0), rope(k, 0)) / math.sqrt(D)
        future = torch.arange(T)[None, :] > torch.arange(T)[:, None]  # key s after query t
        weights = scores.masked_fill(future, float("-inf")).softmax(-1)
        o = torch.einsum("bhts,bshd->bthd", weights, v).reshape(B, T, H * D)
        assert_close("attention by hand", by_weight(o, mixer.o_proj), mixer(x)[0], 1e-6)


def test_cosformer2_mixer_is_lrpe_linear_attention_written_out():
    """paper.md §8.4 by hand: q̃_s = [cos(sθ) ⊙ q_s, sin(sθ) ⊙ q_s] (likewise k̃), o_t = Σ_{s≤t} (q̃_t·k̃_s) v_s with no
    decay and no scale, then SRMSNorm, the gate sigmoid(X̄·W_gd·W_gu) and W_o; from an offset positions start there."""
    torch.manual_seed(0)
    mixer = build_model(tiny("cosformer2", n_head=4)).blocks[0].token_mixer.double()
    B, T, H, D, offset = 2, 6, 4, 8, 3
    x = torch.randn(B, T, H * D, dtype=torch.float64)
    with torch.no_grad():
        mixer.theta.uniform_(0.05, 1.5)
        angle = torch.arange(offset, offset + T, dtype=torch.float64)[:, None, None] * mixer.theta  # (T, H, D)
        q, k = (torch.nn.functional.silu(by_weight(x, p)).view(B, T, H, D) for p in (mixer.q_proj, mixer.k_proj))
        q, k = (torch.cat([z * angle.cos(), z * angle.sin()], dim=-1) for z in (q, k))
        v = by_weight(x, mixer.v_proj).view(B, T, H, D)
        o = torch.zeros(B, T, H, D, dtype=torch.float64)
        for t in range(T):
            for s in range(t + 1):
                o[:, t] += (q[:, t] * k[:, s]).sum(-1)[..., None] * v[:, s]
        gate = torch.sigmoid(by_weight(by_weight(x, mixer.gate.down), mixer.gate.up))
        by_hand = by_weight(rms_normed(o.reshape(B, T, H * D), 1e-6) * gate, mixer.o_proj)
        for mode in ["naive", "chunk", "recurrent"]:
            mixer.mode = mode
            assert_close(f"{mode} mixer = the sum by hand", by_hand, mixer(x, offset=offset)[0], 1e-6)  # fp32 angles


def test_cosformer2_lrpe_angles_start_at_ropes_frequencies():
    """θ (H, D) is learnable, initialised like RoPE's frequencies (cosFormer2's module docstring): θ_c = base^(−c/D),
    from 1 down, the same for every head."""
    config = tiny("cosformer2", n_head=4, rope_base=500.0)
    theta = build_model(config).blocks[0].token_mixer.theta
    expected = [500.0 ** (-c / 8) for c in range(8)]
    assert theta.requires_grad and theta.shape == (4, 8)
    for head in theta.tolist():
        assert head == pytest.approx(expected, rel=1e-6)


def test_cosformer2_tpe_is_the_decayed_causal_mixing_written_out():
    """TPE(x)_t = x_t + (Σ_{s≤t} γ^{t−s} ⊙ x_s W) Wᵀ, W (d, e), e = d/h, γ_c = exp(−slope_c) with ALiBi's slopes
    over the e channels (cosFormer2's module docstring)."""
    torch.manual_seed(0)
    tpe = build_model(tiny("cosformer2", n_head=4)).input_transform.double()
    W = tpe.proj.detach()
    assert W.shape == (32, 8)
    gamma = torch.tensor(alibi_slopes(8), dtype=torch.float64).neg().exp()
    x = torch.randn(2, 7, 32, dtype=torch.float64)
    u, h, mixed = x @ W, torch.zeros(2, 8, dtype=torch.float64), []
    for t in range(7):
        h = gamma * h + u[:, t]
        mixed.append(h)
    by_hand = x + torch.stack(mixed, dim=1) @ W.t()
    with torch.no_grad():
        for mode in ["naive", "chunk", "recurrent"]:
            tpe.mode = mode
            assert_close(f"{mode} TPE = the recurrence by hand", by_hand, tpe(x)[0], 1e-10)


@pytest.mark.parametrize("schedule", ["alibi", "paper"])
def test_each_tnl_layer_takes_its_own_layers_decays(schedule):
    """log λ_{l,h} of every layer l of 4 (H = 4): ALiBi's 2^(−2(h+1)) times (1 − l/3 + 1e-5), or the paper's
    (8h/4)·(1 − l/4), by the formulas of paper.md §8.2."""
    model = build_model(tiny("tnl", n_layer=4, n_head=4, decay_schedule=schedule))
    for l, block in enumerate(model.blocks):
        if schedule == "paper":
            expected = [-(8 * h / 4) * (1 - l / 4) for h in range(4)]
        else:
            expected = [-(2 ** (-2 * (h + 1))) * (1 - l / 3 + 1e-5) for h in range(4)]
        assert block.token_mixer.log_decay.tolist() == pytest.approx(expected, rel=1e-6, abs=1e-12), l
    with pytest.raises(ValueError, match="^decay_schedule: 'linear' is not one of alibi, paper$"):
        tnl_log_decay(4, 0, 4, "linear")


def test_hgrn2_lower_bounds_are_the_cumulative_softmax_over_layers_each_to_its_layer():
    """lb_l = Σ_{j=1..l} softmax(Γ over layers)_j (the cumulative sum minus its first row, paper.md §8.3), and
    layer l's mixer is given row l (layer 0 none: its bound is 0)."""
    torch.manual_seed(0)
    model = build_model(tiny("hgrn2", n_layer=4))
    with torch.no_grad():
        model.lower_bounds.gamma.normal_()
    e = model.lower_bounds.gamma.detach().double().exp()
    p = e / e.sum(0)  # softmax over the layers, per channel
    lb = model.lower_bound_per_layer().detach()
    inputs = model.layer_inputs()
    assert inputs[0]["lower_bound"] is None and torch.equal(lb[0], torch.zeros(32))
    for l in range(1, 4):
        assert_close(f"layer {l} bound", p[1:l + 1].sum(0), lb[l], 1e-6)
        assert torch.equal(inputs[l]["lower_bound"].detach(), lb[l])


def test_initialisation_is_gpt2s_with_residual_outputs_scaled_by_depth():
    """The constructor's draws: N(0, init_std) for the embedding and every projection (cosFormer2's TPE's W too, drawn
    where it is built: it was N(0, 0.02) whatever init_std), N(0, init_std/√(2L)) for each residual branch's
    output projection (o_proj, w_down); sample stds of a seeded model within 6%."""
    L, std = 8, 0.03
    for arch in ARCHS:
        torch.manual_seed(0)
        model = build_model(tiny(arch, n_layer=L, d_model=64, n_head=2, d_ffn=128, vocab_size=256, init_std=std))
        seen = set()
        for name, p in model.named_parameters():
            if p.ndim < 2 or name.endswith(("theta", "gamma")):  # angles, bounds
                continue
            residual = name.endswith(("o_proj.weight", "w_down.weight"))
            seen.add(residual)
            expected = std / math.sqrt(2 * L) if residual else std
            assert p.std().item() == pytest.approx(expected, rel=0.06), (arch, name)
            assert abs(p.mean().item()) < 0.1 * expected, (arch, name)
        assert seen == {True, False}


def test_reset_parameters_draws_every_parameter_again_as_a_new_model_has_it():
    """reset_parameters of a trained model gives back a new model's parameters: the gains, LRPE angles and HGRN2's
    bound logits exactly, the drawn weights with a new model's spread. It re-drew the projections and the embedding
    alone, so the norms' gains, the angles, the bound logits and the TPE's W kept their trained values."""
    for arch in ARCHS:
        torch.manual_seed(0)
        config = tiny(arch, n_layer=4, d_model=64, n_head=2, d_ffn=128, vocab_size=256, init_std=0.03)
        fresh = build_model(config)
        model = build_model(config)
        with torch.no_grad():
            for p in model.parameters():  # as if trained: every parameter moved
                p.add_(torch.rand_like(p) + 0.5)
        model.reset_parameters()
        for (name, p), q in zip(model.named_parameters(), fresh.parameters()):
            if p.ndim < 2 or name.endswith(("theta", "gamma")):  # set, not drawn: a new model's values
                assert torch.equal(p, q), (arch, name)
            else:
                assert p.std().item() == pytest.approx(q.std().item(), rel=0.1), (arch, name)
                assert abs(p.mean().item()) < 0.1 * q.std().item(), (arch, name)


def test_sampling_follows_the_temperature_and_keeps_the_top_k():
    """Sampled tokens follow softmax(logits/τ) over the k largest: logits 0..4, τ = 2 and k = 2 give token 4 with
    probability e^0.5/(1 + e^0.5) ≈ 0.62 and token 3 otherwise; τ → 0, or k = 1 at any τ, is greedy decoding."""
    from linscale.models.common import _sample

    generator = torch.Generator().manual_seed(0)
    logits = torch.arange(5.0).expand(4000, 5)
    tokens = _sample(logits, temperature=2.0, top_k=2, generator=generator)
    assert set(tokens.tolist()) == {3, 4}
    assert (tokens == 4).float().mean().item() == pytest.approx(math.exp(0.5) / (1 + math.exp(0.5)), abs=0.025)
    torch.manual_seed(0)
    model = build_model(tiny("tnl"))
    prompt = torch.randint(0, 64, (3, 5))
    greedy = model.generate(prompt, max_new_tokens=8)
    assert torch.equal(model.generate(prompt, 8, temperature=1e-4, generator=generator), greedy)
    assert torch.equal(model.generate(prompt, 8, temperature=5.0, top_k=1, generator=generator), greedy)


def test_generate_continues_a_row_with_eos_once_it_ended_and_stop_needs_eos():
    """A row that produced eos_token_id is done: it continues with eos while the others decode greedily on."""
    torch.manual_seed(0)
    model = build_model(tiny("hgrn2"))
    prompt = torch.randint(0, 64, (2, 5))
    greedy = model.generate(prompt, max_new_tokens=10)
    eos = int(greedy[0, 5])  # row 0's first new token
    assert (greedy[0, 6:] != eos).any() and (greedy[1] != eos).all()  # greedy row 0 goes on past it; row 1 never ends
    out = model.generate(prompt, max_new_tokens=10, eos_token_id=eos)
    assert out.shape == greedy.shape and torch.equal(out[1], greedy[1])
    assert (out[0, 5:] == eos).all()
    with pytest.raises(ValueError, match="^generate: stop needs eos_token_id"):
        model.generate(prompt, max_new_tokens=3, stop=lambda tokens: torch.zeros(2, dtype=torch.bool))
