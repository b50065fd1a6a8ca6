"""Needle-in-a-haystack scores (paper §3.4, Appendix C), as pure functions of per-item results.

Every NIAH item sits in one cell of a grid: context length index i (ascending lengths) and needle
depth index j (ascending depth, 0 % = needle at the start of the context, 100 % = at its end, next
to the question). A cell's accuracy a_ij is the mean exact-match over its items.

**Weighted accuracy** (the paper's main NIAH number). The paper weights length and depth
geometrically, w_i = w0·α^(i−1) with α > 1, as an outer product, but gives neither w0 nor α nor
the direction of the depth axis. We choose α = 1.1 on both axes and order both so that harder cells
weigh more: longer contexts, and needles farther from the question (smaller depth):

    w_ij = α^i · α^(J−1−j),      WA = Σ_ij w_ij a_ij / Σ_ij w_ij        (w0 cancels)

With 8 lengths and 6 depths the heaviest cell weighs α^12 ≈ 3.1 times the lightest, so a model
that only retrieves at short lengths cannot score like one that retrieves everywhere.

**NIAH score** (the paper's penalised variant). Each length column is binarised (a cell passes when
a_ij ≥ 0.5); with m the number of contiguous pass/fail segments along depth, the column's penalty
is 0 if no cell passes, 1 if all pass, otherwise 2^((1−m)/2). The score is the weighted accuracy
with every cell of column i multiplied by its penalty p_i.

**Standard error of the weighted accuracy.** WA = Σ_items u_k x_k with u_k = w_ij / (n_ij Σ w) for an item
of cell (i, j) holding n_ij items, so Var(WA) = Σ_k u_k² Var(x_k). Each x_k is taken as Bernoulli with
the task's pooled accuracy p̂ (per-cell estimates are 0 for a cell of all-right or all-wrong items):
SE = √(p̂(1 − p̂) Σ_ij w_ij² / n_ij) / Σ w. By concavity the pooled variance is at least the mean of the
cells' own variances, so this does not understate the error; it is largest at p̂ = 0.5.
"""
from __future__ import annotations

from collections import defaultdict

ALPHA = 1.1
PASS_THRESHOLD = 0.5


def cell_accuracy(records) -> dict[tuple[int, int], float]:
    """records: iterable of (length_index, depth_index, correct) -> {(i, j): mean correct}."""
    cells = defaultdict(list)
    for i, j, correct in records:
        cells[(int(i), int(j))].append(float(correct))
    return {cell: sum(v) / len(v) for cell, v in cells.items()}


def cell_weights(cells, alpha: float = ALPHA) -> dict[tuple[int, int], float]:
    """w_ij = α^i · α^(J−1−j) over the cells present (J = number of depth indices)."""
    n_depth = max(j for _, j in cells) + 1
    return {(i, j): alpha ** i * alpha ** (n_depth - 1 - j) for i, j in cells}


def column_penalty(passes: list[bool]) -> float:
    """0 if no cell passes, 1 if all do, else 2^((1−m)/2) with m contiguous pass/fail segments."""
    if not any(passes):
        return 0.0
    if all(passes):
        return 1.0
    segments = 1 + sum(a != b for a, b in zip(passes, passes[1:]))
    return 2.0 ** ((1 - segments) / 2)


def weighted_accuracy(records, alpha: float = ALPHA) -> float:
    acc = cell_accuracy(records)
    if not acc:
        return float("nan")
    w = cell_weights(acc, alpha)
    return sum(w[c] * acc[c] for c in acc) / sum(w.values())


def niah_score(records, alpha: float = ALPHA, threshold: float = PASS_THRESHOLD) -> float:
    acc = cell_accuracy(records)
    if not acc:
        return float("nan")
    w = cell_weights(acc, alpha)
    penalty = {}
    for i in {i for i, _ in acc}:
        column = [acc[(i, j)] >= threshold for j in sorted(j for ii, j in acc if ii == i)]
        penalty[i] = column_penalty(column)
    return sum(w[c] * acc[c] * penalty[c[0]] for c in acc) / sum(w.values())


def weighted_stderr(records, alpha: float = ALPHA) -> float:
    """Standard error of :func:`weighted_accuracy` (pooled binomial variance; see the module docstring)."""
    cells = defaultdict(list)
    for i, j, correct in records:
        cells[(int(i), int(j))].append(float(correct))
    if not cells:
        return float("nan")
    w = cell_weights(cells, alpha)
    p = sum(sum(v) for v in cells.values()) / sum(len(v) for v in cells.values())
    return (p * (1 - p) * sum(w[c] ** 2 / len(v) for c, v in cells.items())) ** 0.5 / sum(w.values())


def worst_case_stderr(n_lengths: int, n_depths: int, repeats: int, alpha: float = ALPHA) -> float:
    """The largest standard error of the weighted accuracy on a full grid (at an accuracy of 0.5)."""
    w = cell_weights({(i, j) for i in range(n_lengths) for j in range(n_depths)}, alpha)
    return 0.5 * (sum(v ** 2 / repeats for v in w.values())) ** 0.5 / sum(w.values())


def weighted_difference(first, second, alpha: float = ALPHA, pair: bool = True) -> tuple[float, float, bool]:
    """WA(first) − WA(second) of two NIAH modes, its standard error, and whether that error is the
    paired one.

    ``first`` and ``second``: iterables of (length_index, depth_index, key, correct). When every key of
    one mode is a key of the other (the items are paired: identical haystacks; ``niah_paired`` in
    difficulty.yaml), the difference is a weighted mean of per-item differences d_k = x_k − y_k, and its
    standard error is the pooled form above with d's variance: SE = √(s_d² Σ_ij w_ij² / n_ij) / Σ w,
    s_d² the variance of d over all items. Items that both modes get right (or both wrong) then add no
    noise. Otherwise, or with ``pair=False``, the two are independent samples: SE = √(SE₁² + SE₂²)."""
    first, second = list(first), list(second)
    if not first or not second:
        return float("nan"), float("nan"), False
    unkeyed = [[(i, j, c) for i, j, _, c in rows] for rows in (first, second)]
    difference = weighted_accuracy(unkeyed[0], alpha) - weighted_accuracy(unkeyed[1], alpha)
    by_key = {(int(i), int(j), key): float(c) for i, j, key, c in second}
    paired = pair and len(first) == len(second) == len(by_key) and \
        all((int(i), int(j), key) in by_key for i, j, key, _ in first)
    if not paired:
        se = (weighted_stderr(unkeyed[0], alpha) ** 2 + weighted_stderr(unkeyed[1], alpha) ** 2) ** 0.5
        return difference, se, False
    cells = defaultdict(list)
    for i, j, key, c in first:
        cells[(int(i), int(j))].append(float(c) - by_key[(int(i), int(j), key)])
    d = [x for v in cells.values() for x in v]
    mean = sum(d) / len(d)
    variance = sum((x - mean) ** 2 for x in d) / len(d)
    w = cell_weights(cells, alpha)
    se = (variance * sum(w[c] ** 2 / len(v) for c, v in cells.items())) ** 0.5 / sum(w.values())
    return difference, se, True
