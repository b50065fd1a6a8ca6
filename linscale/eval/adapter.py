"""The ``linscale`` model for lm-evaluation-harness: any exported checkpoint, all four architectures.

    lm_eval --model linscale --model_args checkpoint=runs/cpu/runs/<run>/export/step=2000 \
            --tasks linscale_knowledge --include_path $(python -m linscale.eval tasks-dir)

    from linscale.eval import LinscaleLM
    lm = LinscaleLM(checkpoint="…/export/step=2000")          # or LinscaleLM(model=m, tokenizer=tok)
    lm_eval.simple_evaluate(model=lm, tasks=[...], task_manager=TaskManager(include_path=…))

The three request types of ``lm_eval.api.model.LM``:

* ``loglikelihood(context, continuation)``: log p(continuation | context) summed over the continuation
  tokens, and whether greedy decoding would have produced it (``is_greedy``). Tokens are split as
  lm-eval's ``TemplateLM`` does: encode(context + continuation) and take everything after
  len(encode(context)); an empty context is replaced by the end-of-document token ``<eod>``.
* ``loglikelihood_rolling(text)``: the document's total log-likelihood, conditioned only on ``<eod>``,
  computed in disjoint windows of ``max_length`` predicted tokens
  (``lm_eval.utils.get_rolling_token_windows`` with context_len=1, as lm-eval's HF model does):

      window 1: input [<eod>, x1 … x(W-1)]          predicts x1 … xW
      window 2: input [x(W) … x(2W-1)]               predicts x(W+1) … x(2W)   (one token of overlap)
      …        log p(doc) = Σ_windows Σ_predicted log p(x_t | window input before t)

* ``generate_until(context, gen_kwargs)``: greedy decoding (or sampling if ``do_sample``) through
  ``CausalLM.generate``: one parallel prefill, then one recurrent step per token (an O(1) state for
  the linear models, the KV cache for LLaMA); the text is cut before the first stop string.

``max_length`` (default: the training context ``seq_len`` from the checkpoint's meta) is the longest
input the adapter feeds the model. A longer request raises :class:`ContextLengthError` unless
``truncation=left`` (keep the last ``max_length`` tokens, as lm-eval's HF model silently does).
"""
from __future__ import annotations

import numbers
import os
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.nn.functional as F
from lm_eval.api.model import TemplateLM
from lm_eval.api.registry import register_model
from lm_eval.models.utils import Collator, handle_stop_sequences
from lm_eval.utils import get_rolling_token_windows, make_disjoint_window
from tqdm import tqdm

from linscale.models.checkpoint import CheckpointError, load_checkpoint, load_tokenizer, usable_device
from linscale.config import ConfigError
from linscale.eval.items import TASK_OPTIONS, training_seq_len


EOD = "<eod>"
TRUNCATION = ("error", "left")
LOGITS_BYTES = 4 << 30  # the largest fp32 logits one forward pass makes (LinscaleLM._batches); 4 GiB


class ContextLengthError(ValueError):
    """A request is longer than the model's context window ``max_length`` (and truncation is off):
    ``problem`` says which, ``advice`` what lm_eval's model_args can do about it (`linscale eval`, which
    takes no model_args, gives its own)."""

    def __init__(self, problem: str, advice: str = ""):
        super().__init__(problem, advice)  # both in args: the error crosses the evaluation pool's processes
        self.problem, self.advice = problem, advice

    def __str__(self) -> str:
        return f"{self.problem}; {self.advice}" if self.advice else self.problem


def _integer(value, field: str, least: int = 1) -> int:
    """A count (new tokens to generate, a batch's rows, a context's tokens): an integer of at least ``least``, or
    its digits (a bool or a fraction is a mistake, not 1 or its floor; numpy's integers are integers)."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
        expected = "a positive integer" if least == 1 else f"an integer >= {least}"
        raise ConfigError(f"{field}: expected {expected}, got {value!r}")
    return int(value)


def _where(request) -> str:
    """Which item an error is about: " (task T, doc D)" for an lm-eval request that names them, else ""."""
    if request is not None and getattr(request, "task_name", None) is not None:
        return f" (task {request.task_name}, doc {request.doc_id})"
    return ""


@register_model("linscale")
class LinscaleLM(TemplateLM):
    """lm-eval adapter for a linscale ``CausalLM`` and its ``tokenizers.Tokenizer``.

    Args:
        checkpoint: folder written by ``linscale.models.checkpoint.save_checkpoint`` (config.json,
            model.safetensors, tokenizer.json). Alternatively pass ``model`` and ``tokenizer``.
        batch_size: sequences per forward pass ("auto" means 16: the CPU sweet spot for tiny models); fewer
            where their logits would pass :data:`LOGITS_BYTES` (long inputs, a large vocabulary).
        device: "cpu", "cuda", "cuda:1", ...; default (lm_eval without ``--device``) the GPU where there
            is one, as lm-eval's own Hugging Face model does.
        max_length: longest input in tokens; default the checkpoint's training ``seq_len``.
        truncation: "error" (default) or "left" for requests longer than ``max_length``.
        max_gen_toks: generation budget when a task does not give one; default lm-eval's Hugging Face
            model's (256), so that a task's scores compare with that model's.
        **task_options: lm-eval passes model_args to the tasks as metadata too, so options meant for
            the linscale task suites (``linscale.eval.items.TASK_OPTIONS``) are accepted and ignored here.

    One process evaluates all requests: under ``accelerate launch`` (``WORLD_SIZE`` > 1) every process would
    evaluate all of them on one device, so that is refused.
    """

    def __init__(self, checkpoint: str | os.PathLike | None = None, *, model=None, tokenizer=None,
                 meta: dict | None = None, batch_size: int | str = 16, max_batch_size: int | None = None,
                 device: str | None = None, max_length: int | None = None, truncation: str = "error",
                 max_gen_toks: int = 256, **task_options):
        super().__init__()
        unknown = sorted(set(task_options) - set(TASK_OPTIONS))
        if unknown:
            raise ConfigError(f"model_args: unknown option(s) {', '.join(unknown)} for the linscale model; "
                              f"expected checkpoint, batch_size, device, max_length, truncation, max_gen_toks "
                              f"or a task option ({', '.join(TASK_OPTIONS)})")
        world = os.environ.get("WORLD_SIZE", "1").strip() or "1"
        if world != "1":
            raise ConfigError(f"WORLD_SIZE={world}: the linscale model evaluates in one process (it does not split "
                              "requests over processes, so each would evaluate all of them on one device); run "
                              "lm_eval once per GPU, each with its own --device cuda:N and its share of --tasks")
        self._device = usable_device(device)
        if checkpoint is not None:
            if model is not None or tokenizer is not None:
                raise ConfigError("model_args: pass either checkpoint= or model= and tokenizer=, not both")
            if not Path(checkpoint).is_dir():
                raise CheckpointError(f"{checkpoint}: checkpoint folder does not exist")
            model, meta = load_checkpoint(checkpoint, device=self._device)
            tokenizer = load_tokenizer(checkpoint)
        elif model is None or tokenizer is None:
            raise ConfigError("model_args: checkpoint=<export folder> is required (or model= and tokenizer=)")
        self.model = model.to(self._device).eval()
        self.tokenizer = tokenizer
        self.meta = dict(meta or {})
        self.checkpoint = None if checkpoint is None else str(checkpoint)

        eod = tokenizer.token_to_id(EOD)
        if eod is None:
            raise CheckpointError(f"tokenizer: has no end-of-document token {EOD!r}")
        self._eot_token_id = eod
        # a max_length of 0 given (--context-factor 0.01 rounds to it) is refused, not read as "not given"
        if max_length is None or max_length == "":
            max_length = training_seq_len(self.meta) or model.config.max_seq_len
        # model_args' max_length=64.5 or =true (lm_eval parses them to a float, a bool) was 64 or 1, not refused
        self._max_length = _integer(max_length, "max_length", least=2)
        if truncation not in TRUNCATION:
            raise ConfigError(f"truncation: {truncation!r} is not one of {', '.join(TRUNCATION)}")
        self.truncation = truncation
        # lm_eval's --batch_size abc (it passes the text) was int()'s traceback, naming no option; 2.5 was 2
        self.batch_size = 16 if batch_size in (None, "auto") or str(batch_size).startswith("auto") \
            else _integer(batch_size, "batch_size")
        self.max_gen_toks = _integer(max_gen_toks, "max_gen_toks")

    @classmethod
    def create_from_arg_obj(cls, arg_dict: dict, additional_config: dict | None = None) -> "LinscaleLM":
        """As lm-eval's, but a keyword given both in ``--model_args`` and by lm_eval's own option (its
        ``--batch_size`` is always passed, default 1) is one line naming it, not Python's TypeError."""
        given = {k: v for k, v in (additional_config or {}).items() if v is not None}
        twice = sorted(set(arg_dict) & set(given))
        if twice:
            key = twice[0]
            raise ConfigError(f"model_args: {key}={arg_dict[key]!r} is also given by lm_eval's --{key} "
                              f"({given[key]!r}; lm_eval passes its own even when not asked); give it once, as --{key}")
        return cls(**arg_dict, **given)

    @classmethod
    def create_from_arg_string(cls, arg_string: str, additional_config: dict | None = None) -> "LinscaleLM":
        from lm_eval.utils import simple_parse_args_string

        return cls.create_from_arg_obj(simple_parse_args_string(arg_string), additional_config)

    # ----------------------------------------------------------------------------- tokenizer

    @property
    def eot_token_id(self) -> int:
        return self._eot_token_id

    @property
    def max_length(self) -> int:
        return self._max_length

    @property
    def device(self) -> torch.device:
        return self._device

    def tok_encode(self, string: str, add_special_tokens: bool | None = None, **kwargs) -> list[int]:
        return self.tokenizer.encode(string, add_special_tokens=False).ids

    def tok_decode(self, tokens: list[int], **kwargs) -> str:
        return self.tokenizer.decode(tokens, skip_special_tokens=False)

    def _check_length(self, n_tokens: int, what: str, request=None) -> bool:
        """True if the input must be left-truncated; raises if it is too long and truncation is off."""
        if n_tokens <= self.max_length:
            return False
        if self.truncation == "left":
            return True
        raise ContextLengthError(f"{what} of {n_tokens} tokens{_where(request)} is longer than the model's context "
                                 f"max_length={self.max_length}", "pass max_length=... or truncation=left")

    # ----------------------------------------------------------------------------- scoring

    def _rows(self, length: int) -> int:
        """Rows of ``length`` tokens a forward pass takes: ``batch_size``, fewer where their fp32 logits
        (B, T, vocab) would pass :data:`LOGITS_BYTES` (one at least): at the paper's vocabulary (100,280) a
        batch of 16 windows of 8192 tokens is 49 GiB of logits, beside a 7B model's 26 GiB of weights."""
        return min(self.batch_size, max(1, LOGITS_BYTES // (4 * self.model.config.vocab_size * max(1, length))))

    def _batches(self, inputs: list) -> Iterator[list]:
        """``inputs`` (longest first) in batches of :meth:`_rows` of the longest."""
        start = 0
        while start < len(inputs):
            chunk = inputs[start: start + self._rows(len(inputs[start]))]
            start += len(chunk)
            yield chunk

    @torch.no_grad()
    def _logits(self, inputs: list[list[int]]) -> torch.Tensor:
        """Logits for a batch of right-padded inputs: (B, T, vocab). Right padding is harmless: every
        model here is causal, so padding only follows the real tokens."""
        T = max(len(x) for x in inputs)
        batch = torch.zeros(len(inputs), T, dtype=torch.long)
        for i, x in enumerate(inputs):
            batch[i, : len(x)] = torch.tensor(x, dtype=torch.long)
        return self.model(batch.to(self._device)).logits

    def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, instances=None):
        """requests: [((context, continuation), context_ids, continuation_ids)] -> [(logprob, is_greedy)]."""
        prepared = []
        for i, (_, context_enc, continuation_enc) in enumerate(requests):
            if not continuation_enc:
                raise ValueError(f"loglikelihood: continuation {requests[i][0][1]!r} has no tokens of its own after "
                                 f"context {requests[i][0][0][-40:]!r} (does it start with a word boundary?)")
            tokens = (context_enc + continuation_enc)
            request = instances[i] if instances is not None else None
            if self._check_length(len(tokens) - 1, "loglikelihood input", request):
                if len(continuation_enc) > self.max_length:  # left truncation keeps no room to score it in
                    raise ContextLengthError(f"loglikelihood continuation of {len(continuation_enc)} tokens"
                                             f"{_where(request)} is longer than the model's context max_length="
                                             f"{self.max_length}, which truncation=left cannot shorten",
                                             "pass a larger max_length=...")
                tokens = tokens[-(self.max_length + 1):]
            prepared.append((tokens[:-1], continuation_enc))

        # Requests that feed the model the same tokens share one forward pass: the choices of a multiple-
        # choice question with one-token answers differ only in the token scored, not in the input.
        readers: dict[tuple, list[int]] = {}
        for k, (inp, _) in enumerate(prepared):
            readers.setdefault(tuple(inp), []).append(k)
        inputs = sorted(readers, key=lambda inp: (-len(inp), inp))  # longest first: little padding
        results: list = [None] * len(prepared)
        progress = tqdm(total=len(inputs), disable=disable_tqdm, desc="loglikelihood")
        for chunk in self._batches(inputs):
            progress.update(len(chunk))
            logits = self._logits([list(inp) for inp in chunk])
            for row, inp in zip(logits, chunk):
                for k in readers[inp]:
                    cont = prepared[k][1]
                    n = len(cont)
                    # (n, vocab) in fp32: the predictions of the continuation tokens only
                    lp = F.log_softmax(row[len(inp) - n: len(inp)].float(), dim=-1)
                    target = torch.tensor(cont, dtype=torch.long, device=lp.device)
                    is_greedy = bool((lp.argmax(-1) == target).all())
                    results[k] = (float(lp.gather(-1, target[:, None]).sum()), is_greedy)
        progress.close()
        return results

    def loglikelihood(self, requests, disable_tqdm: bool = False):
        new_reqs = []
        for context, continuation in (req.args for req in requests):
            if context == "":
                continuation_enc = self.tok_encode(continuation)
                context_enc = [self.prefix_token_id]
            else:
                context_enc, continuation_enc = self._encode_pair(context, continuation)
            new_reqs.append(((context, continuation), context_enc, continuation_enc))
        return self._loglikelihood_tokens(new_reqs, disable_tqdm=disable_tqdm, instances=requests)

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
        """Total log-likelihood of each document, in disjoint windows of ``max_length`` tokens."""
        windows, owner = [], []
        for i, (text,) in enumerate(req.args for req in requests):
            for context_enc, pred in map(make_disjoint_window, get_rolling_token_windows(
                    token_list=self.tok_encode(text), prefix_token=self.prefix_token_id,
                    max_seq_len=self.max_length, context_len=1)):
                windows.append(((None, None), context_enc, pred))
                owner.append(i)
        scores = self._loglikelihood_tokens(windows, disable_tqdm=disable_tqdm) if windows else []
        totals = [0.0] * len(requests)
        for i, (logprob, _) in zip(owner, scores):
            totals[i] += logprob
        return totals

    # ----------------------------------------------------------------------------- generation

    @torch.no_grad()
    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        prepared = []
        for request in requests:
            context, gen_kwargs = request.args
            gen_kwargs = dict(gen_kwargs or {})
            until = gen_kwargs.pop("until", None)
            if not (until is None or isinstance(until, str) or
                    (isinstance(until, list) and all(isinstance(stop, str) for stop in until))):
                # a task of one's own with `until: 5` was lm-eval's traceback, `until: [5]` a TypeError later
                raise ConfigError(f"generation_kwargs.until{_where(request)}: expected a string or a list of "
                                  f"strings, got {until!r}")
            until = handle_stop_sequences(until, eos=EOD)
            # a task's max_gen_toks of 0 is named, not read as "not given" (the model's 256 in silence)
            budget = gen_kwargs.pop("max_gen_toks", None)
            max_new = self.max_gen_toks if budget is None else \
                _integer(budget, f"generation_kwargs.max_gen_toks{_where(request)}")
            if max_new >= self.max_length:  # left truncation kept one prompt token and generated past max_length
                raise ContextLengthError(f"max_gen_toks={max_new}{_where(request)} leaves no room for the prompt in "
                                         f"the model's context max_length={self.max_length}",
                                         f"ask for at most {self.max_length - 1} new tokens (lm_eval's "
                                         "--gen_kwargs max_gen_toks=..., or model_args where the task gives none)")
            temperature = float(gen_kwargs.pop("temperature", 1.0)) if gen_kwargs.pop("do_sample", False) else 0.0
            context_enc = self.tok_encode(context) if context else [self.prefix_token_id]
            if self._check_length(len(context_enc) + max_new, "generation prompt + max_gen_toks", request):
                context_enc = context_enc[-max(1, self.max_length - max_new):]
            prepared.append((context_enc, until, max_new, temperature))

        # batches of equal prompt length and settings: the models take no attention mask, so
        # prompts are never padded.
        collator = Collator(prepared, sort_fn=lambda x: (-len(x[0]), x[2], x[3]),
                            group_fn=lambda x: (len(x[0]), x[2], x[3]), group_by="gen_kwargs")
        results = []
        # the prefill's logits, (B, T, vocab), under the budget for the longest prompt
        rows = self._rows(max((len(p[0]) for p in prepared), default=1))
        for chunk in tqdm(collator.get_batched(n=rows), disable=disable_tqdm, desc="generate_until"):
            _, _, max_new, temperature = chunk[0]
            prompt = torch.tensor([c[0] for c in chunk], dtype=torch.long, device=self._device)
            untils = [c[1] for c in chunk]

            def stopped(new: torch.Tensor, untils=untils) -> torch.Tensor:  # a row's text holds a stop string
                texts = map(self.tok_decode, new.tolist())
                return torch.tensor([any(s and s in t for s in u) for t, u in zip(texts, untils)], device=new.device)

            # stopped at a stop string, not after max_gen_toks tokens (lm-eval's default budget is 256)
            out = self.model.generate(prompt, max_new_tokens=max_new, temperature=temperature,
                                      eos_token_id=self.eot_token_id, stop=stopped)
            for (context_enc, until, _, _), row in zip(chunk, out[:, prompt.shape[1]:].tolist()):
                if self.eot_token_id in row:
                    row = row[: row.index(self.eot_token_id)]
                text = self.tok_decode(row)
                for stop in until:
                    if stop and stop in text:
                        text = text[: text.index(stop)]
                results.append(text)
        return collator.get_original(results)
