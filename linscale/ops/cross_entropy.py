"""The language-model loss fused with its output projection, for CPU training.

    loss = mean over rows r with labels_r ≠ ignore_index of  logsumexp(z_r) − z_r[labels_r],   z = hidden · Wᵀ

Unfused (``F.cross_entropy(F.linear(hidden, W))``) the (N, vocab) logits are written to memory, read
by log-softmax, written again as log-probabilities, and read twice more in backward (log-softmax's
backward recomputes the exponentials and nll-loss's backward fills a zero matrix to scatter −1 into).
For the study's small models, whose vocabulary is large next to their width, that traffic was about a
third of a training step. Here the rows go through in chunks small enough to stay in cache, and each
chunk is used once: logits, softmax, loss and, when a gradient is wanted, the gradient of the loss with
respect to the logits, softmax − one-hot (scaled by 1/count), which is multiplied straight into the
gradients of ``hidden`` and ``W``. Backward then only scales those by the incoming gradient. Nothing of
size (N, vocab) is kept, so memory falls too.

Same arithmetic as the unfused pair up to fp32 rounding (``tests/test_ops.py`` checks values and
gradients against ``F.cross_entropy``). The logsumexp comes from the softmax's largest probability,
lse = max(z) − log(max p): max p ≥ 1/vocab never underflows, however large the loss.
"""
from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

# A chunk's logits are about this many numbers (1 MiB in fp32): they stay in the core's L2 cache
# between the GEMM that makes them and the two that consume their gradient. Timed with
# `linscale bench`: chunks of 256 to 640 rows of a 393-word vocabulary were within 5% of each other,
# the whole (2048, 393) matrix at once 10-40% slower.
CHUNK_ELEMENTS = 2**18


def linear_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor,
                         ignore_index: int = -100, chunk_rows: int | None = None) -> torch.Tensor:
    """Mean cross-entropy of the logits ``hidden @ weight.T`` against ``labels``, without the logits.

    Args:
        hidden: (N, d) final hidden states (one row per predicted token).
        weight: (vocab, d) output projection (the tied embedding).
        labels: (N,) target ids; rows equal to ``ignore_index`` count for nothing.
        chunk_rows: rows per chunk (default: about ``CHUNK_ELEMENTS`` logits per chunk).

    Returns the mean over counted rows as a 0-dim tensor of ``hidden``'s dtype, differentiable with
    respect to ``hidden`` and ``weight`` (once: no double backward). As ``F.cross_entropy``, a batch
    with no counted row gives NaN.
    """
    if hidden.dim() != 2 or weight.dim() != 2 or hidden.shape[1] != weight.shape[1]:
        raise ValueError(f"linear_cross_entropy: expected hidden (N, d) and weight (vocab, d), got "
                         f"{tuple(hidden.shape)} and {tuple(weight.shape)}")
    if labels.shape != hidden.shape[:1]:
        raise ValueError(f"linear_cross_entropy: expected labels ({hidden.shape[0]},), got {tuple(labels.shape)}")
    rows = chunk_rows or max(1, CHUNK_ELEMENTS // weight.shape[0])
    # Inside Function.forward grad mode is always off and needs_input_grad ignores torch.no_grad():
    # decide here whether the gradients are wanted (evaluation computes the loss alone).
    grad = torch.is_grad_enabled()
    want = (grad and hidden.requires_grad, grad and weight.requires_grad)
    return _LinearCrossEntropy.apply(hidden, weight, labels, ignore_index, rows, want)


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, labels, ignore_index, rows, want):
        want_hidden, want_weight = want
        n = hidden.shape[0]
        counted = labels != ignore_index
        count = counted.sum()
        targets = torch.where(counted, labels, 0)[:, None]  # ignored rows gather a valid id, then weigh 0
        row_losses = hidden.new_empty(n)
        grad_hidden = torch.empty_like(hidden) if want_hidden else None
        grad_weight = torch.zeros_like(weight) if want_weight else None
        scale = 1.0 / count.to(hidden.dtype)  # inf with no counted row: the loss is then 0·inf = NaN, as torch's
        for start in range(0, n, rows):
            stop = min(n, start + rows)
            h, target, keep = hidden[start:stop], targets[start:stop], counted[start:stop]
            z = h @ weight.t()  # (c, vocab)
            p = torch.softmax(z, dim=1)
            lse = z.amax(dim=1) - p.amax(dim=1).log()  # max p = exp(max z − lse) ≥ 1/vocab: never 0
            row_losses[start:stop] = torch.where(keep, lse - z.gather(1, target).squeeze(1), 0.0)
            if want_hidden or want_weight:
                # d loss / d z = (softmax − one-hot) / count on counted rows, 0 on the others
                weight_of_row = (keep.to(p.dtype) * scale)[:, None]
                grad_z = p.mul_(weight_of_row).scatter_add_(1, target, -weight_of_row)
                if want_hidden:
                    torch.mm(grad_z, weight, out=grad_hidden[start:stop])
                if want_weight:
                    grad_weight.addmm_(grad_z.t(), h)
        ctx.save_for_backward(grad_hidden, grad_weight)
        return row_losses.sum() * scale

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_loss):
        grad_hidden, grad_weight = ctx.saved_tensors
        return (None if grad_hidden is None else grad_hidden * grad_loss,
                None if grad_weight is None else grad_weight * grad_loss, None, None, None, None)
