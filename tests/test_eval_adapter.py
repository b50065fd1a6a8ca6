"""The lm-eval adapter against the model's own forward pass, and the NIAH metrics."""
import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from lm_eval.api.instance import Instance

import eval_fixtures as fx
from linscale.config import ConfigError
from linscale.models.checkpoint import CheckpointError
from linscale.eval import metrics
from linscale.eval.adapter import ContextLengthError, LinscaleLM
from linscale.eval.runner import resolve_tasks


def request(kind, *args):
    return Instance(request_type=kind, doc={}, arguments=args, idx=0)


@pytest.fixture(params=["llama", "tnl", "hgrn2"])
def lm(request, tmp_path):
    ckpt = fx.export(tmp_path / "ck", fx.tiny_model(request.param))
    return LinscaleLM(checkpoint=str(ckpt), batch_size=3)


def forward_logprobs(model, ids):
    with torch.no_grad():
        return F.log_softmax(model(torch.tensor([ids])).logits.float(), -1)[0]  # (T, vocab)


def greedy_reference(lm, prompt: str, budget: int) -> str:
    """Greedy decoding of ``prompt`` by full forward passes, at most ``budget`` tokens, up to <eod>."""
    ids, want = lm.tokenizer.encode(prompt).ids, []
    for _ in range(budget):
        nxt = int(forward_logprobs(lm.model, ids + want)[-1].argmax())
        if nxt == lm.eot_token_id:
            break
        want.append(nxt)
    return lm.tokenizer.decode(want)


def test_loglikelihood_equals_forward_pass(lm):
    tok = lm.tokenizer
    pairs = [("s1 r0", " o3"), ("s2 r1 o4 . the s5", " r0 o7 ."), ("", "s3 r1 o2"), ("k1 v2 k3 v4 k1", " v2")]
    got = lm.loglikelihood([request("loglikelihood", c, x) for c, x in pairs])
    for (context, continuation), (logprob, is_greedy) in zip(pairs, got):
        ctx = tok.encode(context).ids if context else [lm.eot_token_id]
        cont = tok.encode(continuation).ids
        lp = forward_logprobs(lm.model, ctx + cont)[len(ctx) - 1: -1]  # predictions of the continuation
        want = lp.gather(-1, torch.tensor(cont)[:, None]).sum().item()
        assert abs(logprob - want) < 1e-5, (context, continuation, logprob, want)
        assert is_greedy == bool((lp.argmax(-1) == torch.tensor(cont)).all())


def test_is_greedy_true_for_argmax_continuation(lm):
    ctx = lm.tokenizer.encode("s4 r1 o2 . s4").ids
    best = int(forward_logprobs(lm.model, ctx)[-1].argmax())
    second = int(forward_logprobs(lm.model, ctx)[-1].topk(2).indices[1])
    word = lambda i: " " + lm.tokenizer.id_to_token(i)
    (_, greedy), (_, not_greedy) = lm.loglikelihood(
        [request("loglikelihood", "s4 r1 o2 . s4", word(best)), request("loglikelihood", "s4 r1 o2 . s4", word(second))])
    assert greedy is True and not_greedy is False


def test_loglikelihood_rolling_sums_disjoint_windows(lm):
    text = fx.fact_corpus(40, seed=3)  # 160 tokens > max_length 64
    ids = lm.tokenizer.encode(text).ids
    W = lm.max_length
    assert len(ids) > 2 * W
    # the documented windows: first [<eod>, x1..x(W-1)] -> x1..xW, then each next W tokens predicted
    # from the W tokens before them (the window input ends one token before the last prediction)
    want, start = 0.0, 0
    while start < len(ids):
        end = min(start + W, len(ids))
        inp = [lm.eot_token_id] + ids[: end - 1] if start == 0 else ids[end - W - 1: end - 1]
        lp = forward_logprobs(lm.model, inp)[len(inp) - (end - start):]
        want += lp.gather(-1, torch.tensor(ids[start:end])[:, None]).sum().item()
        start = end
    (got,) = lm.loglikelihood_rolling([request("loglikelihood_rolling", text)])
    assert abs(got - want) < 1e-4 * max(1.0, abs(want)), (got, want)
    # and it is not the single long forward pass (the window boundary matters)
    whole = forward_logprobs(lm.model, [lm.eot_token_id] + ids[:-1]).gather(-1, torch.tensor(ids)[:, None]).sum().item()
    assert abs(got - whole) > 1e-3


def test_generate_until_is_greedy_and_stops(lm):
    """generate_until (one prefill, then recurrent / KV-cache steps) equals greedy decoding by full
    forward passes, and the text is cut before the first stop string."""
    prompts = ["s1 r0 o3 . s2", "k1 v2 k3"]
    outs = lm.generate_until([request("generate_until", p, {"until": ["<eod>"], "max_gen_toks": 6}) for p in prompts])
    for prompt, out in zip(prompts, outs):
        assert out == greedy_reference(lm, prompt, 6)
    words = outs[0].split()
    if len(words) >= 2:  # stop at the second generated word: only the first remains
        (cut,) = lm.generate_until([request("generate_until", prompts[0], {"until": [" " + words[1]], "max_gen_toks": 6})])
        assert cut == outs[0][: outs[0].index(" " + words[1])]


def test_registered_for_lm_eval():
    from lm_eval.api.registry import get_model

    assert get_model("linscale") is LinscaleLM
    assert get_model("dummy").__name__ == "DummyLM"  # lm-eval's own models stay visible


def test_context_longer_than_model_raises(lm):
    long = fx.fact_corpus(30)  # 120 tokens > 64
    with pytest.raises(ContextLengthError, match="max_length=64"):
        lm.loglikelihood([request("loglikelihood", long, " o1")])
    with pytest.raises(ContextLengthError, match="max_length=64"):
        lm.generate_until([request("generate_until", long, {"until": ["."], "max_gen_toks": 4})])
    lm.truncation = "left"  # opt-in: keep the last max_length tokens, as lm-eval's HF model does
    assert math.isfinite(lm.loglikelihood([request("loglikelihood", long, " o1")])[0][0])
    # a continuation longer than the context: left truncation leaves no room to score it (a tensor-size error)
    with pytest.raises(ContextLengthError, match=r"continuation of \d+ tokens .*longer than the model's context "
                                                 r"max_length=64, which truncation=left cannot shorten"):
        lm.loglikelihood([request("loglikelihood", "f1", " " + long)])


def test_a_generation_budget_must_be_positive_and_leave_room_for_the_prompt(tmp_path):
    """max_gen_toks of 0 (a task's, or the model's) read as "not given": 256 new tokens in silence; one of
    max_length or more kept a single prompt token under truncation=left and generated past the model's context."""
    lm = LinscaleLM(checkpoint=str(fx.export(tmp_path / "ck", fx.tiny_model("llama"))), truncation="left")
    for bad in (0, -3, 2.5, True, "many"):
        with pytest.raises(ConfigError, match=rf"generation_kwargs.max_gen_toks: expected a positive integer, "
                                              rf"got {re.escape(repr(bad))}"):
            lm.generate_until([request("generate_until", "s1 r0", {"until": ["."], "max_gen_toks": bad})])
        with pytest.raises(ConfigError, match=rf"^max_gen_toks: expected a positive integer, "
                                              rf"got {re.escape(repr(bad))}"):
            LinscaleLM(model=lm.model, tokenizer=lm.tokenizer, max_gen_toks=bad)
    W = lm.max_length
    with pytest.raises(ContextLengthError, match=rf"max_gen_toks={W} leaves no room for the prompt in the model's "
                                                 rf"context max_length={W}; ask for at most {W - 1} new tokens"):
        lm.generate_until([request("generate_until", "s1 r0", {"until": ["."], "max_gen_toks": W})])
    lm.max_gen_toks = W + 5  # the model's own budget, where the task gives none
    with pytest.raises(ContextLengthError, match=rf"max_gen_toks={W + 5} leaves no room"):
        lm.generate_until([request("generate_until", "s1 r0", {"until": ["."]})])
    for given in ("3", np.int64(3)):  # digits (a command line's), numpy's integers
        (text,) = lm.generate_until([request("generate_until", "s1 r0", {"until": ["<eod>"], "max_gen_toks": given})])
        assert isinstance(text, str)
    (longest,) = lm.generate_until([request("generate_until", "s1 r0", {"until": ["<eod>"], "max_gen_toks": W - 1})])
    assert isinstance(longest, str)


def test_a_max_length_of_zero_is_refused_not_read_as_unset(tmp_path):
    """--context-factor 0.01 rounded max_length to 0, which read as "not given": evaluated at 32 in silence."""
    ckpt = fx.export(tmp_path / "ck", fx.tiny_model("llama"))
    for bad in (0, "abc"):
        with pytest.raises(ConfigError, match=f"max_length: expected an integer >= 2, got {bad!r}"):
            LinscaleLM(checkpoint=str(ckpt), max_length=bad)


def test_one_device_check_for_linscale_eval_and_lm_eval(monkeypatch, caplog):
    """The CLI's --device and lm_eval's device= go through one check (they were two, with two messages).
    A GPU that is not there is counted, not started (the CLI checks in its main process, before its
    workers start CUDA); a CUDA device without CUDA is the CPU, with a warning that names the option."""
    import logging

    from linscale.models.checkpoint import usable_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert usable_device("cuda:1", "--device") == torch.device("cuda:1")
    assert usable_device(None) == torch.device("cuda")
    with pytest.raises(ConfigError, match=r"^--device: 'cuda:2' cannot hold tensors here \(this machine has 2 CUDA "):
        usable_device("cuda:2", "--device")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert usable_device(None) == torch.device("cpu")
    with caplog.at_level(logging.WARNING, logger="linscale.models.checkpoint"):
        assert usable_device("cuda:1", "--device") == torch.device("cpu")
    assert "--device cuda:1 requested but CUDA is not available: using the CPU" in caplog.text
    with pytest.raises(ConfigError, match=r"^--device: 'xpu' cannot hold tensors here \(.+\); expected cpu or cuda"):
        usable_device("xpu", "--device")  # torch knows it; this build lacks it (was a traceback in a worker)
    for device in ("privateuseone", "hpu"):  # torch imports a module of the device's name: ModuleNotFoundError
        with pytest.raises(ConfigError, match=rf"^--device: '{device}' cannot hold tensors here \(No module named "):
            usable_device(device, "--device")


def test_a_device_that_cannot_hold_tensors_is_one_line(tmp_path):
    """torch's traceback for a device it does not know (tpu), safetensors' for one this build lacks, and
    "cpu:1" reported as corrupt weights; a model option lm_eval also passes (its --batch_size, always) was
    Python's TypeError."""
    ckpt = fx.export(tmp_path / "ck", fx.tiny_model("llama"))
    with pytest.raises(ConfigError, match=r"^device: expected a torch device such as cpu, cuda or cuda:1, got 'tpu'$"):
        LinscaleLM(checkpoint=str(ckpt), device="tpu")
    for device, reason in (("cpu:1", "a CPU is one device: cpu"), ("meta", "meta tensors hold no values")):
        with pytest.raises(ConfigError, match=rf"^device: '{device}' cannot hold tensors here \({reason}"):
            LinscaleLM(checkpoint=str(ckpt), device=device)
    assert LinscaleLM(checkpoint=str(ckpt), device="cpu:0").device == torch.device("cpu")
    with pytest.raises(ConfigError, match=r"^model_args: batch_size=4 is also given by lm_eval's --batch_size \(1; "):
        LinscaleLM.create_from_arg_string(f"checkpoint={ckpt},batch_size=4", {"batch_size": 1, "device": None})
    lm = LinscaleLM.create_from_arg_string(f"checkpoint={ckpt},device=cpu", {"batch_size": 4, "device": None})
    assert (lm.batch_size, lm.device) == (4, torch.device("cpu"))  # an option lm_eval leaves unset is no clash


def test_missing_or_corrupt_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        LinscaleLM(checkpoint=str(tmp_path / "nope"))
    ckpt = fx.export(tmp_path / "ck", fx.tiny_model("llama"))
    (ckpt / "model.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match="model.safetensors"):
        LinscaleLM(checkpoint=str(ckpt))
    (ckpt / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="config.json"):
        LinscaleLM(checkpoint=str(ckpt))


def test_unknown_task_and_option():
    from linscale.config import ConfigError

    with pytest.raises(ConfigError, match="unknown task name.*linscale_knowlege"):
        resolve_tasks(["knowledge"], ["linscale_knowlege"])
    with pytest.raises(ConfigError, match="unknown suite"):
        resolve_tasks(["knowlege"])
    with pytest.raises(ConfigError, match="unknown option.*bacth_size"):
        LinscaleLM(model=fx.tiny_model(), tokenizer=fx.tokenizer(), bacth_size=4)


def test_niah_metrics():
    # one length column fully right, one fully wrong, one alternating (pass, fail, pass: m = 3)
    records = [(0, j, 1) for j in range(3)] + [(1, j, 0) for j in range(3)] + [(2, 0, 1), (2, 1, 0), (2, 2, 1)]
    a = metrics.ALPHA
    w = {(i, j): a ** i * a ** (2 - j) for i in range(3) for j in range(3)}
    acc = {(i, j): c for i, j, c in records}
    total = sum(w.values())
    assert metrics.weighted_accuracy(records) == pytest.approx(sum(w[c] * acc[c] for c in w) / total)
    penalty = {0: 1.0, 1: 0.0, 2: 2 ** ((1 - 3) / 2)}
    assert metrics.niah_score(records) == pytest.approx(sum(w[c] * acc[c] * penalty[c[0]] for c in w) / total)
    assert metrics.column_penalty([True, True, False, False]) == pytest.approx(2 ** -0.5)
    # a cell passes at accuracy a_ij >= 0.5 (the threshold itself passes): 1, 0.5, 1 is one passing segment
    half = [(0, 0, 1), (0, 1, 1), (0, 1, 0), (0, 2, 1)]
    assert metrics.niah_score(half) == pytest.approx(metrics.weighted_accuracy(half))
    # harder cells weigh more: longer contexts and needles farther from the question
    assert metrics.weighted_accuracy([(0, 0, 0), (1, 0, 1)]) > 0.5
    assert metrics.weighted_accuracy([(0, 0, 1), (0, 1, 0)]) > 0.5


def test_lm_evals_defaults_give_the_gpu_its_own_budget_and_one_process_only(tmp_path, monkeypatch):
    """As lm_eval runs it without --device and with a task that sets no max_gen_toks: the linscale model
    took the CPU without a word (lm-eval 0.4.10 passes no device) and cut generations at 32 tokens where
    lm-eval's Hugging Face model gives 256 (a chain of thought or a summary cut short: scores that do not
    compare). Under accelerate (WORLD_SIZE > 1) every process evaluated every request on one device."""
    import linscale.eval.adapter as adapter

    ckpt = fx.export(tmp_path / "ck", fx.tiny_model("tnl"))
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    lm = LinscaleLM(checkpoint=str(ckpt))
    assert lm.device == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert lm.max_gen_toks == 256  # lm_eval/models/huggingface.py, HFLM.max_gen_toks (importing it needs accelerate)
    chosen = []
    monkeypatch.setattr(adapter.torch.cuda, "is_available", lambda: True)  # a GPU machine: the GPU is taken
    monkeypatch.setattr(adapter.torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(adapter, "load_checkpoint", lambda path, device: chosen.append(device) or (_ for _ in ()).throw(
        RuntimeError("stop here")))
    with pytest.raises(RuntimeError, match="stop here"):
        LinscaleLM(checkpoint=str(ckpt))
    assert chosen == [torch.device("cuda")]
    monkeypatch.setenv("WORLD_SIZE", "8")
    with pytest.raises(adapter.ConfigError, match="^WORLD_SIZE=8: the linscale model evaluates in one process"):
        LinscaleLM(checkpoint=str(ckpt))


def test_a_batch_is_cut_where_its_logits_would_pass_the_memory_budget(lm, monkeypatch):
    """A forward pass keeps the logits of every position, (B, T, vocab) in fp32: at the paper's vocabulary
    and context a batch of 16 rolling windows was 49 GiB. Batches stop at LOGITS_BYTES (one row at least),
    and the scores are those of any other batching."""
    import linscale.eval.adapter as adapter

    text = fx.fact_corpus(40, seed=3)  # three windows of max_length 64, and shorter inputs
    pairs = [("s1 r0", " o3"), ("s2 r1 o4 . the s5", " r0 o7 ."), ("k1 v2 k3 v4 k1", " v2")]
    requests = [request("loglikelihood", c, x) for c, x in pairs]
    want = lm.loglikelihood(requests), lm.loglikelihood_rolling([request("loglikelihood_rolling", text)])
    sizes, forward = [], lm._logits
    monkeypatch.setattr(lm, "_logits",
                        lambda inputs: sizes.append((len(inputs), max(map(len, inputs)))) or forward(inputs))
    vocab = lm.model.config.vocab_size
    monkeypatch.setattr(adapter, "LOGITS_BYTES", 2 * 4 * vocab * 64)  # two rows of 64 tokens
    got = lm.loglikelihood(requests), lm.loglikelihood_rolling([request("loglikelihood_rolling", text)])
    assert all(b * t <= 2 * 64 or b == 1 for b, t in sizes) and max(b for b, _ in sizes) > 1, sizes
    assert [b for b, t in sizes if t == 64] == [2, 1]  # the three full windows: 3 rows of batch_size 3 before
    for a, b in zip(want[0], got[0]):
        assert a[1] == b[1] and abs(a[0] - b[0]) < 1e-5
    assert abs(want[1][0] - got[1][0]) < 1e-4 * max(1.0, abs(want[1][0]))
    # generation: prompts of one length, batched together unless their prefill's logits pass the budget
    prompts = [request("generate_until", p, {"until": ["<eod>"], "max_gen_toks": 3})
               for p in ("s1 r0", "s2 r1", "s3 r0")]
    batches, generate = [], lm.model.generate
    monkeypatch.setattr(lm.model, "generate",
                        lambda prompt, **kw: batches.append(len(prompt)) or generate(prompt, **kw))
    together = lm.generate_until(prompts)
    monkeypatch.setattr(adapter, "LOGITS_BYTES", 4 * vocab * len(lm.tok_encode("s1 r0")))  # one prompt's prefill
    assert lm.generate_until(prompts) == together and batches == [3, 1, 1, 1]


def test_generation_stops_at_the_stop_string_not_after_max_gen_toks(lm, monkeypatch):
    """Stop strings were applied to the text after max_gen_toks tokens had been generated: with lm-eval's
    default budget (256) every answer cost 256 decoding steps. A row now stops at the step its text holds
    a stop string; the text is the same as before."""
    prompts = ["s1 r0 o3 . s2", "k1 v2 k3", "s4 r1", "the s5 r0 o7 ."]
    fulls = lm.generate_until([request("generate_until", p, {"until": ["<eod>"], "max_gen_toks": 12}) for p in prompts])
    prompt, full = next((p, f) for p, f in zip(prompts, fulls) if len(lm.tok_encode(f)) >= 6)
    stop = full.split()[1]  # its second word: ends a few tokens in
    steps, forward = [], lm.model.forward
    monkeypatch.setattr(lm.model, "forward", lambda *args, **kw: steps.append(1) or forward(*args, **kw))
    (cut,) = lm.generate_until([request("generate_until", prompt, {"until": [stop], "max_gen_toks": 50})])
    assert cut == full[: full.index(stop)]
    # the prefill, then a step a token up to the stop string
    assert len(steps) <= len(lm.tok_encode(full[: full.index(stop) + len(stop)])) + 1


# Fast checks of the adapter's parts: each guards a behaviour a mutant of linscale/eval/adapter.py changed without
# any test above failing.


def test_is_greedy_needs_every_continuation_token_to_be_the_argmax(lm):
    """A two-token continuation whose first token is the model's argmax and whose second is not is not greedy
    (lm-eval's exact-match of a multi-token answer); is_greedy of "any token is the argmax" called it greedy."""
    ctx = lm.tokenizer.encode("s4 r1 o2 . s4").ids
    first = int(forward_logprobs(lm.model, ctx)[-1].argmax())
    ranked = forward_logprobs(lm.model, ctx + [first])[-1].argsort(descending=True).tolist()
    word = lambda i: " " + lm.tokenizer.id_to_token(i)
    (_, both), (_, second_wrong) = lm.loglikelihood(
        [request("loglikelihood", "s4 r1 o2 . s4", word(first) + word(ranked[0])),
         request("loglikelihood", "s4 r1 o2 . s4", word(first) + word(ranked[1]))])
    assert both is True and second_wrong is False


def test_left_truncation_keeps_the_end_of_the_context(lm):
    """truncation=left scores a long request as the model reads its last max_length tokens (the context next
    to the continuation, as lm-eval's HF model does), and generates from the prompt's last max_length -
    max_gen_toks tokens: a model that was fed the start of the context, or one token less, scored otherwise."""
    lm.truncation = "left"
    W, tok = lm.max_length, lm.tokenizer
    long = fx.fact_corpus(30, seed=5)  # 120 tokens > 64
    ctx, cont = tok.encode(long).ids, tok.encode(" o1 .").ids
    ((logprob, _),) = lm.loglikelihood([request("loglikelihood", long, " o1 .")])
    inp = (ctx + cont)[-(W + 1): -1]
    assert len(inp) == W
    lp = forward_logprobs(lm.model, inp)[-len(cont):]
    assert logprob == pytest.approx(lp.gather(-1, torch.tensor(cont)[:, None]).sum().item(), abs=1e-5)
    # generation: the same text as from a prompt of the last W - max_gen_toks tokens only
    words = long.split()  # one token a word
    assert len(words) == len(ctx)
    greedy = {"until": ["<eod>"], "max_gen_toks": 5}
    got, want = lm.generate_until([request("generate_until", long, greedy),
                                   request("generate_until", " ".join(words[-(W - 5):]), greedy)])
    assert got == want


def test_the_longest_request_that_fits_is_scored_whole(lm):
    """A continuation of exactly max_length tokens fits the model's window with truncation=left (its input is
    the context's last token and the continuation but one); refusing it refused a request that fits."""
    lm.truncation = "left"
    W, tok = lm.max_length, lm.tokenizer
    cont_text = " " + " ".join(fx.fact_corpus(W // 4, seed=2).split()[:W])
    cont = tok.encode(cont_text).ids
    assert len(cont) == W
    ((logprob, _),) = lm.loglikelihood([request("loglikelihood", "s1 r0 o3 .", cont_text)])
    inp = (tok.encode("s1 r0 o3 .").ids + cont)[-(W + 1): -1]
    lp = forward_logprobs(lm.model, inp)
    assert logprob == pytest.approx(lp.gather(-1, torch.tensor(cont)[:, None]).sum().item(), abs=1e-4)


def test_generations_come_back_in_the_order_asked_whatever_the_batching(lm):
    """generate_until batches prompts longest first and by their settings; each answer must go back to its own
    request (the Collator's reordering undone): shortest first, two budgets for prompts of one length."""
    asked = [("k1 v2", 2), ("s1 r0 o3", 6), ("s2 r1 o4", 2), ("s1 r0 o3 . s2 r1", 6), ("s2 r1 o4", 6)]
    requests = [request("generate_until", p, {"until": ["<eod>"], "max_gen_toks": n}) for p, n in asked]
    alone = [lm.generate_until([r])[0] for r in requests]
    assert lm.generate_until(requests) == alone
    # each alone: greedy decoding of its own prompt, at most its own budget
    for (prompt, budget), out in zip(asked, alone):
        assert out == greedy_reference(lm, prompt, budget)


def test_sampling_settings_reach_the_model(lm, monkeypatch):
    """do_sample with a temperature samples at that temperature; without do_sample decoding is greedy
    (temperature 0) whatever temperature the task names, and max_gen_toks is the task's or the model's."""
    lm.max_gen_toks = 4  # the model's budget, where the task gives none
    calls, generate = [], lm.model.generate
    monkeypatch.setattr(lm.model, "generate", lambda prompt, **kw: calls.append(kw) or generate(prompt, **kw))
    lm.generate_until([request("generate_until", "s1 r0", {"until": ["."], "do_sample": True, "temperature": 0.7,
                                                           "max_gen_toks": 3})])
    lm.generate_until([request("generate_until", "s1 r0", {"until": ["."], "temperature": 0.7})])
    assert [(kw["temperature"], kw["max_new_tokens"]) for kw in calls] == [(0.7, 3), (0.0, lm.max_gen_toks)]


def test_a_batch_size_or_max_length_too_small_to_work_is_refused(tmp_path):
    """batch_size=0 made every batch empty (the loglikelihood loop never ended); max_length=1 leaves no token
    to condition on: both one line naming the option."""
    ckpt = fx.export(tmp_path / "ck", fx.tiny_model("llama"))
    with pytest.raises(ConfigError, match=r"^batch_size: expected a positive integer, got 0$"):
        LinscaleLM(checkpoint=str(ckpt), batch_size=0)
    with pytest.raises(ConfigError, match=r"^max_length: expected an integer >= 2, got 1$"):
        LinscaleLM(checkpoint=str(ckpt), max_length=1)
    assert LinscaleLM(checkpoint=str(ckpt), max_length="2", batch_size="1").max_length == 2


def test_a_request_too_long_names_its_task_and_document(lm):
    """lm-eval's requests know their task and document: the error says which item is too long."""
    long = fx.fact_corpus(30)  # 120 tokens > 64
    item = Instance(request_type="loglikelihood", doc={}, arguments=(long, " o1"), idx=0, metadata=("mine", 7, 1))
    with pytest.raises(ContextLengthError, match=r"^loglikelihood input of 120 tokens \(task mine, doc 7\) is longer"):
        lm.loglikelihood([item])


HOOK = """
import importlib.util, sys
sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, "linscale_lm_eval_hook", False)]  # the .pth's
spec = importlib.util.spec_from_file_location("_linscale_lm_eval_hook", sys.argv[1])  # as linscale-lm-eval.pth does
hook = importlib.util.module_from_spec(spec)
spec.loader.exec_module(hook)
if sys.argv[2] == "registry first":
    import lm_eval.api.registry
hook.install()
from lm_eval.api import registry
print("linscale" in registry.model_registry, "linscale.eval.adapter" in sys.modules,
      registry.get_model("dummy").__name__)
"""


@pytest.mark.parametrize("order", ["hook first", "registry first"])
def test_the_start_up_hook_registers_the_model_lazily_beside_lm_evals_own(order):
    """The hook linscale-lm-eval.pth installs (linscale/_lm_eval_plugin.py) in a fresh interpreter, whether
    lm_eval's registry is imported after it or already was: `linscale` is registered without importing the
    adapter (torch), and lm-eval's own models stay visible. test_install.py checks the installed .pth; this
    runs without one."""
    import subprocess
    import sys
    from pathlib import Path

    import linscale

    plugin = Path(linscale.__file__).with_name("_lm_eval_plugin.py")
    proc = subprocess.run([sys.executable, "-c", HOOK, str(plugin), order], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["True", "False", "DummyLM"], proc.stdout + proc.stderr[-2000:]


def test_a_continuation_without_tokens_or_a_model_given_twice_is_refused(lm):
    """An empty continuation has nothing to score: log-likelihood 0 and "greedy" said that the model chose it
    for certain. A checkpoint and a model given together would leave one of them unused."""
    with pytest.raises(ValueError, match=r"^loglikelihood: continuation '' has no tokens of its own after context "
                                         r"'s1 r0'"):
        lm.loglikelihood([request("loglikelihood", "s1 r0", "")])
    with pytest.raises(ConfigError, match=r"^model_args: pass either checkpoint= or model= and tokenizer=, not both$"):
        LinscaleLM(checkpoint=lm.checkpoint, model=lm.model, tokenizer=lm.tokenizer)


def test_model_args_that_leave_the_model_without_a_part_or_misspell_a_setting_are_refused(tmp_path, monkeypatch):
    """A checkpoint with a model but no tokenizer (the model silently replaced by the checkpoint's), a model without
    its tokenizer (an AttributeError later), a tokenizer without <eod> and truncation=right (taken as "error") are
    one line each; lm_eval's empty `max_length=` is the training context, its batch_size=auto or auto:N is 16, and
    an empty WORLD_SIZE is one process."""
    model, tok = fx.tiny_model("llama"), fx.tokenizer()
    with pytest.raises(ConfigError, match=r"^model_args: pass either checkpoint= or model= and tokenizer=, not both$"):
        LinscaleLM(checkpoint=str(tmp_path), model=model)
    for part in ({"model": model}, {"tokenizer": tok}):
        with pytest.raises(ConfigError, match=r"^model_args: checkpoint=<export folder> is required"):
            LinscaleLM(**part)
    from tokenizers import Tokenizer, models

    words = {w: i for i, w in enumerate(fx.vocabulary()) if w != "<eod>"}
    no_eod = Tokenizer(models.WordLevel(words, unk_token="[UNK]"))
    with pytest.raises(CheckpointError, match=r"^tokenizer: has no end-of-document token '<eod>'$"):
        LinscaleLM(model=model, tokenizer=no_eod)
    with pytest.raises(ConfigError, match=r"^truncation: 'right' is not one of error, left$"):
        LinscaleLM(model=model, tokenizer=tok, truncation="right")
    meta = {"seq_len": fx.SEQ_LEN}
    assert model.config.max_seq_len != fx.SEQ_LEN  # the meta's context, not the model's longest
    assert LinscaleLM(model=model, tokenizer=tok, meta=meta, max_length="").max_length == fx.SEQ_LEN
    for auto in ("auto", "auto:4", None):  # lm-eval's batch_size=auto:N recomputes the size N times
        assert LinscaleLM(model=model, tokenizer=tok, meta=meta, batch_size=auto).batch_size == 16
    monkeypatch.setenv("WORLD_SIZE", "")
    assert LinscaleLM(model=model, tokenizer=tok, meta=meta).max_length == fx.SEQ_LEN


def test_each_batch_holds_at_most_batch_size_rows_and_its_logits_fit_the_budget_at_its_longest_input(lm, monkeypatch):
    """Inputs of many lengths in one call: a batch's rows were counted at its shortest input (or the inputs taken
    shortest first), so a long input rode in a batch sized for short ones; and without the memory budget binding,
    a batch still holds batch_size rows at most."""
    import linscale.eval.adapter as adapter

    words = fx.fact_corpus(20, seed=4).split()
    requests = [request("loglikelihood", " ".join(words[k: k + n]), " o1") for k, n in
                ((0, 60), (1, 60), (2, 60), (0, 40), (0, 5), (1, 5), (2, 5))]
    sizes, forward = [], lm._logits
    monkeypatch.setattr(lm, "_logits",
                        lambda inputs: sizes.append((len(inputs), max(map(len, inputs)))) or forward(inputs))
    want = lm.loglikelihood(requests)
    assert sorted(b for b, _ in sizes) == [1, 3, 3] and sum(b for b, _ in sizes) == len(requests), sizes
    sizes.clear()
    monkeypatch.setattr(adapter, "LOGITS_BYTES", 2 * 4 * lm.model.config.vocab_size * 64)  # two rows of 64 tokens
    got = lm.loglikelihood(requests)
    assert all(b * t <= 2 * 64 or b == 1 for b, t in sizes) and sum(b for b, _ in sizes) == len(requests), sizes
    assert [a[1] for a in got] == [b[1] for b in want] and np.allclose([a[0] for a in got], [b[0] for b in want],
                                                                        atol=1e-5)
    # generation: the prefill's rows are counted at the longest prompt, not the shortest
    prompts = [request("generate_until", p, {"until": ["<eod>"], "max_gen_toks": 2})
               for p in [" ".join(words[k: k + 30]) for k in range(3)] + ["s1 r0"]]
    shapes, generate = [], lm.model.generate
    monkeypatch.setattr(lm.model, "generate",
                        lambda prompt, **kw: shapes.append(tuple(prompt.shape)) or generate(prompt, **kw))
    monkeypatch.setattr(adapter, "LOGITS_BYTES", 2 * 4 * lm.model.config.vocab_size * 30)  # two prompts of 30 tokens
    lm.generate_until(prompts)
    assert sorted(shapes) == [(1, 2), (1, 30), (2, 30)], shapes


def test_a_malformed_stop_list_is_refused_and_an_empty_stop_string_stops_nothing(lm):
    """`until: 5` was lm-eval's traceback and `until: [5]` a TypeError later: one line naming the field. An empty
    stop string (lm-eval keeps one a task lists) is in every text: read as a stop, it ended each answer at once."""
    for bad in (5, [5]):
        with pytest.raises(ConfigError, match=rf"^generation_kwargs.until: expected a string or a list of strings, "
                                              rf"got {re.escape(repr(bad))}$"):
            lm.generate_until([request("generate_until", "s1 r0", {"until": bad, "max_gen_toks": 2})])
    prompts = ["s1 r0 o3 . s2", "k1 v2 k3", "s4 r1", "the s5 r0 o7 ."]
    prompt, want = next((p, w) for p, w in ((p, greedy_reference(lm, p, 6)) for p in prompts) if len(w.split()) >= 2)
    (got,) = lm.generate_until([request("generate_until", prompt, {"until": ["", "<eod>"], "max_gen_toks": 6})])
    assert got == want


def test_an_empty_prompt_is_generated_from_eod_and_sampling_is_batched_apart_from_greedy_decoding(lm, monkeypatch):
    """An empty prompt reads <eod> (as an empty loglikelihood context does), not nothing. do_sample without a
    temperature samples at 1 (Hugging Face's default), not greedily; a sampled and a greedy request of one
    prompt length and budget go to the model apart, each at its own temperature."""
    ids, want = [lm.eot_token_id], []
    for _ in range(4):
        nxt = int(forward_logprobs(lm.model, ids + want)[-1].argmax())
        if nxt == lm.eot_token_id:
            break
        want.append(nxt)
    (got,) = lm.generate_until([request("generate_until", "", {"until": ["<eod>"], "max_gen_toks": 4})])
    assert got == lm.tokenizer.decode(want)
    calls, generate = [], lm.model.generate
    monkeypatch.setattr(lm.model, "generate",
                        lambda prompt, **kw: calls.append((len(prompt), kw["temperature"])) or generate(prompt, **kw))
    lm.generate_until([request("generate_until", "s1 r0", {"until": ["."], "do_sample": True, "max_gen_toks": 2}),
                       request("generate_until", "s2 r1", {"until": ["."], "max_gen_toks": 2})])
    assert sorted(calls) == [(1, 0.0), (1, 1.0)], calls


def test_a_count_given_as_other_text_a_fraction_or_a_bool_is_refused_naming_its_option():
    """lm_eval passes its --batch_size as text: `--batch_size abc` was int()'s traceback, naming no option, and
    2.5 (lm_eval parses model_args' numbers) was 2; model_args' max_length=64.5 was 64 and max_length=true was
    "got 1". Digits (spaces around them too) and numpy's integers are counts."""
    model, tok, meta = fx.tiny_model("llama"), fx.tokenizer(), {"seq_len": fx.SEQ_LEN}
    for bad in ("abc", "2.5", 2.5, True):
        with pytest.raises(ConfigError, match=rf"^batch_size: expected a positive integer, got {re.escape(repr(bad))}"):
            LinscaleLM.create_from_arg_obj({"model": model, "tokenizer": tok, "meta": meta}, {"batch_size": bad})
    for bad in (64.5, "64.5", True, np.float64(64)):
        with pytest.raises(ConfigError, match=rf"^max_length: expected an integer >= 2, got {re.escape(repr(bad))}$"):
            LinscaleLM(model=model, tokenizer=tok, meta=meta, max_length=bad)
    lm = LinscaleLM(model=model, tokenizer=tok, meta=meta, batch_size=" 4 ", max_length=np.int64(32), max_gen_toks=" 3")
    assert (lm.batch_size, lm.max_length, lm.max_gen_toks) == (4, 32, 3)


def test_a_prompt_that_fits_but_not_with_its_budget_is_refused_and_the_error_keeps_its_advice_across_processes(lm):
    """A prompt shorter than max_length whose generation would run past it is too long (the model would read
    positions it never trained at); the error crosses the evaluation pool's processes (pickled) with its advice."""
    import pickle

    prompt = " ".join(fx.fact_corpus(20, seed=6).split()[:60])
    assert len(lm.tok_encode(prompt)) == 60 < lm.max_length
    with pytest.raises(ContextLengthError, match=r"^generation prompt \+ max_gen_toks of 70 tokens is longer than the "
                                                 r"model's context max_length=64; pass max_length=\.\.\. or "
                                                 r"truncation=left$") as caught:
        lm.generate_until([request("generate_until", prompt, {"until": ["<eod>"], "max_gen_toks": 10})])
    again = pickle.loads(pickle.dumps(caught.value))
    assert (str(again), again.problem, again.advice) == (str(caught.value), caught.value.problem, caught.value.advice)
