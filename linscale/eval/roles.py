"""Excess loss by token role: which skills a model's validation loss above the language's own is made of.

The synthetic language knows the exact probability of every token it writes and what every token is
(``linscale.data.synthetic.token_roles``: a sentence's start, which fact, a fact's object, grammar, a new
binding, the variable a query asks, a query's answer, determined words). So a checkpoint's validation
loss L splits exactly, over the run's own validation rows, into

    L - L_bayes = sum over roles r of  share_r * (mean model nll_r - mean exact nll_r)

where share_r is the fraction of the labels with role r. The role terms ("contribution") say where the
loss a model has yet to lose lives. Two of them are retrieval, measured on every validation token instead
of on a few hundred task items: ``query_variable`` (a query asks one of the variables bound earlier in
the document: a model that reads its context narrows 16 variables to the few bound, one that does not
pays log 16) and ``query_value`` (the value bound to that variable: a copy from the context, the
needle-in-a-haystack skill in its training distribution). ``fact_object`` is memorised knowledge.

``linscale study`` writes the table for the exported checkpoints of the main sweep and the final ones of
the seed ablations (results/<preset>/roles.parquet); ``checkpoint_roles`` reads one checkpoint.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from linscale.config import ConfigError

COLUMNS = ["run_id", "arch", "size", "seed", "step", "tokens", "flops", "params", "role", "labels", "share",
           "bayes_nll", "model_nll", "excess", "contribution", "val_loss", "checkpoint"]


def role_losses(lang, rows: np.ndarray, exact_nll: np.ndarray, model_nll: np.ndarray) -> pd.DataFrame:
    """One row per role: its labels, their share, mean exact and model nll, the excess and its
    contribution (share x excess; the contributions sum to the mean model nll minus the mean exact nll).

    rows: [R, T+1] token ids (position 0 is never a label); exact_nll, model_nll: [R, T], the nll of
    labels rows[:, 1:]."""
    from linscale.data.synthetic import ROLES, token_roles

    roles = token_roles(lang, rows)[:, 1:]
    if roles.shape != np.shape(exact_nll) or roles.shape != np.shape(model_nll):
        raise ConfigError(f"role_losses: labels {roles.shape}, exact nll {np.shape(exact_nll)} and model nll "
                          f"{np.shape(model_nll)} must have one shape")
    total = roles.size
    exact_nll, model_nll = np.asarray(exact_nll, dtype=np.float64), np.asarray(model_nll, dtype=np.float64)
    out = []
    for index, role in enumerate(ROLES):
        mask = roles == index
        n = int(mask.sum())
        exact = float(exact_nll[mask].mean()) if n else math.nan
        model = float(model_nll[mask].mean()) if n else math.nan
        out.append({"role": role, "labels": n, "share": n / total, "bayes_nll": exact, "model_nll": model,
                    "excess": model - exact, "contribution": (model - exact) * n / total if n else 0.0})
    return pd.DataFrame(out)


def _validation_settings(checkpoint: Path) -> tuple[int, int | None]:
    """(batch size, rows) of the run's validation: from the run folder's spec.json when the export sits in
    one (``<run>/export/step=N``); ``rows`` is None for the whole split (no ``train.val_batches`` cap)."""
    spec = checkpoint.parent.parent / "spec.json"
    if spec.is_file():
        train = json.loads(spec.read_text()).get("train") or {}
        batch_size = int(train.get("batch_size") or 16)
        val_batches = train.get("val_batches")
        return batch_size, (int(val_batches) * batch_size if val_batches else None)
    return 16, None


def checkpoint_roles(checkpoint: str | os.PathLike) -> pd.DataFrame:
    """The role table of one exported checkpoint on its run's validation rows (the rows its recorded
    ``val_loss`` was measured on: the whole validation split, or its first ``train.val_batches`` batches
    when the run capped it, read from the run folder's spec.json), with the run's columns (COLUMNS).
    An export copied out of its run folder is read on the whole split."""
    import torch

    from linscale.models.checkpoint import load_checkpoint
    from linscale.data.datamodule import SyntheticDataModule
    from linscale.eval.items import training_seq_len

    checkpoint = Path(checkpoint)
    batch_size, n_rows = _validation_settings(checkpoint)
    model, meta = load_checkpoint(checkpoint)
    data = meta.get("data") or {}
    if data.get("source", "synthetic") != "synthetic":
        raise ConfigError(f"{checkpoint}: roles need the synthetic language (data.source is {data.get('source')!r})")
    seq_len = training_seq_len(meta)
    if seq_len is None:
        raise ConfigError(f"{checkpoint}: the checkpoint's meta has no seq_len")
    module = SyntheticDataModule(data, seq_len=seq_len, batch_size=batch_size)
    split = module.split_dataset("validation")
    rows = np.asarray(split.rows)[:n_rows]
    exact = np.asarray(split.nll, dtype=np.float64)[:n_rows]
    losses = []
    with torch.no_grad():
        for start in range(0, len(rows), batch_size):
            batch = torch.as_tensor(rows[start:start + batch_size], dtype=torch.long)
            logits = model(batch[:, :-1]).logits.float()
            nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), batch[:, 1:], reduction="none")
            losses.append(nll.double().numpy())
    table = role_losses(module.language, rows, exact, np.concatenate(losses))
    run = {"run_id": str(meta.get("run_id", checkpoint)), "arch": meta.get("arch"), "size": meta.get("size"),
           "seed": int(meta.get("seed", -1)), "step": int(meta.get("step", -1)),
           "tokens": float(meta.get("tokens", math.nan)), "flops": float(meta.get("flops", math.nan)),
           "params": float(meta.get("params", math.nan)), "val_loss": float(meta.get("val_loss", math.nan)),
           "checkpoint": str(checkpoint)}
    return table.assign(**run)[COLUMNS]


def evaluate_roles(checkpoints, progress=None, pool=None) -> pd.DataFrame:
    """The role tables of several checkpoints in one frame, in the order given. ``pool``: an executor
    with ``submit`` (the study's EvalPool) to read them side by side; without one, one after another
    (each takes under a second on the cpu preset)."""
    checkpoints = [Path(c) for c in checkpoints]
    if progress and checkpoints:
        progress(f"roles: {len(checkpoints)} checkpoints")
    if pool is None:
        frames = [checkpoint_roles(c) for c in checkpoints]
    else:
        frames = [future.result() for future in [pool.submit(checkpoint_roles, c) for c in checkpoints]]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
