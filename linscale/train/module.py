"""The science of training: a LightningModule for causal language modelling.

    loss = mean over labels ≠ -100 of  −log p_θ(label_t | tokens_≤t)        (nats per token)

Optimiser: AdamW (paper: "Adam", constant LR 3e-4, weight decay 0.1), decay on matrices and embeddings
only: not on gains, nor on cosFormer2's LRPE angles and HGRN2's lower-bound table (2-D, but not weights;
the models mark them ``no_weight_decay``). Learning-rate factor η(s)/η_peak at optimiser step s of S,
with warmup W:

    constant: 1                                  (the paper's "fixed learning rate scheduler")
    warmup:   min(1, (s+1)/W)
    cosine:   warmup, then r + (1−r)·½(1 + cos(π·(s−W)/(S−W)))         r = min_lr_ratio
    wsd:      warmup, stable at 1, then linear to r over the last decay_fraction·S steps

Only a constant schedule makes every intermediate checkpoint a valid "trained on D tokens" point, which
is what the paper's fits read; the others are there for comparison.

Everything that is not the optimisation itself (records, exports, resume checkpoints, divergence
handling) lives in callbacks (``linscale.train.callbacks``).
"""
from __future__ import annotations

import math
from contextlib import nullcontext

import lightning as L
import torch

from linscale import flops
from linscale.config import ModelConfig
from linscale.models import build_model
from linscale.train.settings import TrainSettings


def lr_factor(step: int, total_steps: int, settings: TrainSettings) -> float:
    """η(step)/η_peak for the schedule in ``settings`` (see the module docstring)."""
    warmup = settings.warmup_steps
    if settings.schedule != "constant" and warmup and step < warmup:
        return (step + 1) / warmup
    if settings.schedule in ("constant", "warmup"):
        return 1.0
    r = settings.min_lr_ratio
    if settings.schedule == "cosine":
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return r + (1 - r) * 0.5 * (1 + math.cos(math.pi * progress))
    decay_start = total_steps - round(settings.decay_fraction * total_steps)  # wsd
    if step < decay_start:
        return 1.0
    return 1.0 - (1 - r) * min(1.0, (step - decay_start + 1) / max(1, total_steps - decay_start))


def takes_weight_decay(p: torch.Tensor) -> bool:
    """Matrices and embeddings take weight decay; gains do not, nor the 2-D parameters a model marks as
    no weights (``no_weight_decay``: cosFormer2's LRPE angles θ, HGRN2's lower-bound table Γ)."""
    return p.dim() >= 2 and not getattr(p, "no_weight_decay", False)


def build_optimizer(parameters, settings: TrainSettings, fused: bool | None = None,
                    decayed=None) -> torch.optim.AdamW:
    """AdamW with weight decay on the parameters :func:`takes_weight_decay` picks, or on those in
    ``decayed`` (by identity) where the shapes no longer tell: FSDP hands the optimizer flat 1-D shards.

    ``fused`` (default: when every parameter is on the CPU) runs the update as one kernel over all
    tensors instead of a dozen small operations per tensor: 3-8x faster on the study's small models
    (16-47 tensors), where the loop cost 1-16 ms a step (`linscale bench`), and the same update to fp32
    rounding. GPUs keep torch's default (foreach), as do mixed-precision runs (see configure_optimizers).
    """
    parameters = [p for p in parameters if p.requires_grad]
    chosen = {id(p) for p in decayed} if decayed is not None else {id(p) for p in parameters if takes_weight_decay(p)}
    decay = [p for p in parameters if id(p) in chosen]
    no_decay = [p for p in parameters if id(p) not in chosen]
    groups = [{"params": decay, "weight_decay": settings.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if fused is None:
        fused = all(p.device.type == "cpu" for p in parameters)
    return torch.optim.AdamW(groups, lr=settings.lr, betas=tuple(settings.betas), eps=settings.eps,
                             fused=True if fused else None)


class LanguageModelTask(L.LightningModule):
    """Trains one ``CausalLM`` (``linscale.models``) on dict batches ``{input_ids, labels[, bayes_nll]}``.

    Accounting is exposed for the callbacks: ``params`` (non-embedding N, Table 1 terms, as the paper
    counts), ``params_total``, ``tokens_per_step`` (b·n, global) and ``flops_per_token`` (Table 1, so
    C(D) = flops_per_token · D).
    """

    def __init__(self, model: dict, train: dict):
        super().__init__()
        self.save_hyperparameters()  # plain dicts: hparams.yaml and safe (weights_only) checkpoints
        self.config = ModelConfig.from_dict(model)
        self.settings = TrainSettings.from_dict(train)
        self.model = build_model(self.config)
        self.params = flops.non_embedding_params(self.config)
        self.params_total = self.model.num_params(non_embedding=False)
        self.tokens_per_step = self.settings.tokens_per_step
        self.flops_per_token = flops.flops_per_token(self.config, self.settings.seq_len)
        # decided on the model as built: under FSDP the optimizer sees flat shards, whose shapes do not tell
        self.parameter_names = frozenset(n for n, _ in self.named_parameters())
        self.decayed_names = frozenset(n for n, p in self.named_parameters() if takes_weight_decay(p))
        self.step_losses: list[torch.Tensor] = []  # this optimiser step's micro-batch losses (rank-averaged)
        self.step_bayes: list[torch.Tensor] = []  # and the Bayes loss of their tokens (synthetic language)
        self.diverged = False
        self.diverged_step: int | None = None

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor | None = None):
        return self.model(input_ids, labels=labels)

    # ------------------------------------------------------------------ training

    def training_step(self, batch: dict, batch_idx: int):
        loss = self.model(batch["input_ids"], labels=batch["labels"]).loss  # mean CE over B·T labels
        mean_loss = self.trainer.strategy.reduce(loss.detach(), reduce_op="mean")  # average over ranks
        self.step_losses.append(mean_loss)
        if "bayes_nll" in batch:  # synthetic language: the exact loss of the ideal model on the same tokens
            mask = batch["labels"] != -100
            bayes = batch["bayes_nll"][mask].double().mean().to(mean_loss.dtype)
            self.step_bayes.append(self.trainer.strategy.reduce(bayes, reduce_op="mean"))
        # Every rank takes the same decision, so DDP never waits on a rank that skipped its step.
        if self.trainer.strategy.reduce_boolean_decision(not bool(torch.isfinite(mean_loss)), all=False):
            self.diverged = True
            # the step whose loss was not finite, counted here: Lightning counts the skipped step in its
            # global_step too by the time the callbacks run (2.6), which the recorded row once read as one more
            self.diverged_step = self.trainer.global_step + 1
            self.trainer.should_stop = True
            return None  # no optimiser step on a non-finite loss
        if self._logs_this_step():
            self.log("train_loss", loss, prog_bar=True, sync_dist=False)
        return loss

    def _logs_this_step(self) -> bool:
        """Whether Lightning writes this step's logged values: every ``log_every_n_steps`` optimiser
        steps, or every step while a progress bar shows them. ``self.log`` costs about as much as the rest
        of Lightning's step together (its result collection is rebuilt and moved every call: 0.5-1.5 ms,
        measured with cProfile on a cpu-preset s1 run), which is 2-5% of a small model's step, for a
        value the logger would discard 49 times out of 50; the CSV log is the same either way."""
        trainer = self._trainer
        if trainer is None or trainer.progress_bar_callback is not None:
            return True
        return (trainer.global_step + 1) % max(1, trainer.log_every_n_steps) == 0

    def pop_step_loss(self) -> float:
        """Mean loss of the optimiser step just taken (over micro-batches and ranks), then reset."""
        value = float(torch.stack(self.step_losses).mean()) if self.step_losses else float("nan")
        self.step_losses.clear()
        return value

    def pop_step_bayes(self) -> float:
        """Mean Bayes loss of the tokens of the optimiser step just taken (NaN without one), then reset."""
        value = float(torch.stack(self.step_bayes).mean()) if self.step_bayes else float("nan")
        self.step_bayes.clear()
        return value

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
        """Clip the global gradient norm to ``train.grad_clip``. Under FSDP each rank holds a shard of the
        gradients, so the norm must be reduced across ranks: Lightning's FSDP precision plugin refuses norm
        clipping for that reason (found by the first paper-preset run on a GPU), and the root FSDP module's
        own ``clip_grad_norm_`` does it."""
        from torch.distributed.fsdp import FullyShardedDataParallel

        root = self.trainer.strategy.model
        if gradient_clip_val and isinstance(root, FullyShardedDataParallel):
            root.clip_grad_norm_(gradient_clip_val)
            return
        self.clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm)

    def _parameters_to_decay(self) -> list[torch.nn.Parameter]:
        """The parameters named in ``decayed_names``, found under any wrapper FSDP (or activation
        checkpointing) put around the modules; a parameter whose name is unknown is an error, not a
        silent change of the decay."""
        wrappers = ("_fsdp_wrapped_module.", "_checkpoint_wrapped_module.")
        names = {}
        for name, p in self.named_parameters():
            for wrapper in wrappers:
                name = name.replace(wrapper, "")
            names[name] = p
        if unknown := set(names) - self.parameter_names:
            raise RuntimeError(f"parameters under unknown names {sorted(unknown)[:3]}: cannot tell their weight decay")
        return [p for n, p in names.items() if n in self.decayed_names]

    def configure_optimizers(self):
        s = self.settings
        # Lightning's mixed-precision plugin refuses to clip gradients for a fused optimizer (it assumes the
        # optimizer unscales them itself, as fused AdamW does with float16's GradScaler)
        mixed = self._trainer is not None and str(self.trainer.precision).endswith("-mixed")
        optimizer = build_optimizer(self.parameters(), s, fused=False if mixed else None,
                                    decayed=self._parameters_to_decay())
        total = s.total_steps

        def factor(step: int) -> float:  # a plain function: LambdaLR then stores no state for it
            return lr_factor(step, total, s)

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    # ------------------------------------------------------------------ evaluation

    def _evaluation_forward(self):
        """The model's forward for :meth:`evaluate`. Under FSDP it must go through the root FSDP module,
        whose hooks gather each unit's sharded parameters: the inner model called directly sees flat shards
        once two or more ranks share it (the embedding fails with "'weight' must be 2-D"). Lightning's own
        steps are routed through the root the same way."""
        from torch.distributed.fsdp import FullyShardedDataParallel

        root = self.trainer.strategy.model if self._trainer is not None else None
        if isinstance(root, FullyShardedDataParallel):
            return lambda input_ids, labels: root(input_ids, labels=labels)  # -> self.forward on every rank
        return lambda input_ids, labels: self.model(input_ids, labels=labels)

    @torch.no_grad()
    def evaluate(self, batches, max_batches: int | None = None) -> dict:
        """Mean validation loss over ``batches`` (token-weighted, summed over ranks) and, where the batches
        carry ``bayes_nll`` (synthetic corpus), the exact Bayes loss on the same tokens."""
        was_training = self.training
        self.eval()
        device = self.device
        forward = self._evaluation_forward()
        sums = torch.zeros(3, dtype=torch.float64, device=device)  # Σ nll, Σ bayes nll, #tokens
        has_bayes = False
        try:
            with self.trainer.precision_plugin.forward_context() if self._trainer else nullcontext():
                for i, batch in enumerate(batches):
                    if max_batches is not None and i >= max_batches:
                        break
                    input_ids, labels = batch["input_ids"].to(device), batch["labels"].to(device)
                    mask = labels != -100
                    n = mask.sum()
                    loss = forward(input_ids, labels).loss
                    sums[0] += loss.double() * n
                    sums[2] += n
                    if "bayes_nll" in batch:
                        has_bayes = True
                        sums[1] += batch["bayes_nll"].to(device).double()[mask].sum()
        finally:
            self.train(was_training)
        if self._trainer is not None:
            sums = self.trainer.strategy.reduce(sums, reduce_op="sum")
        count = float(sums[2])
        return {"val_loss": float(sums[0]) / count if count else float("nan"),
                "bayes_loss": float(sums[1]) / count if has_bayes and count else float("nan")}

    def validation_step(self, batch: dict, batch_idx: int):
        """For ``trainer.validate``: the same loss, averaged by Lightning over batches and ranks."""
        loss = self.model(batch["input_ids"], labels=batch["labels"]).loss
        self.log("val_loss", loss, prog_bar=True, sync_dist=True)
        if "bayes_nll" in batch:
            mask = batch["labels"] != -100
            self.log("bayes_loss", batch["bayes_nll"][mask].float().mean(), sync_dist=True)
        return loss

