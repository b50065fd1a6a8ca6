"""Figures of the study, with one colour per architecture everywhere (the book's palette).

Every figure function takes tidy DataFrames (the results tables, or the outputs of ``linscale.laws`` /
``linscale.eval``) and returns a matplotlib Figure, so a notebook calls one function per figure and
the same colours, labels and axes come out in every chapter::

    >>> from linscale.plotting import ARCH_COLORS, arch_label
    >>> arch_label("cosformer2")
    'cosFormer2'

Compute is plotted in PFLOP/s-days (1 PF-day = 8.64e19 FLOPs), as in the paper's figures.
"""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator
import numpy as np
import pandas as pd
import seaborn as sns

from linscale.config import ARCHITECTURES

# Paper order: the softmax baseline first, then the linear models.
ARCH_ORDER: tuple[str, ...] = ARCHITECTURES
ARCH_LABELS = {"llama": "LLaMA", "tnl": "TNL", "hgrn2": "HGRN2", "cosformer2": "cosFormer2"}
# seaborn's colour-blind palette, fixed per architecture (not per plot): LLaMA is always blue.
ARCH_COLORS = dict(zip(ARCH_ORDER, sns.color_palette("colorblind", len(ARCH_ORDER)).as_hex()))
ARCH_MARKERS = {"llama": "o", "tnl": "s", "hgrn2": "D", "cosformer2": "^"}


def arch_label(arch: str) -> str:
    """Display name of an architecture (``hgrn2`` -> ``HGRN2``)."""
    return ARCH_LABELS.get(arch, arch)


def arch_palette(archs=None) -> dict:
    """{display label: colour} for seaborn's ``palette=`` when the hue column holds display labels."""
    return {arch_label(a): ARCH_COLORS[a] for a in (archs or ARCH_ORDER)}


def set_style() -> None:
    """The book's matplotlib style (called by every figure function; idempotent)."""
    sns.set_theme(context="notebook", style="whitegrid", font_scale=0.95)
    plt.rcParams.update({"figure.dpi": 110, "savefig.dpi": 110, "axes.titleweight": "bold",
                         "legend.frameon": False})


def _finish(fig: plt.Figure) -> plt.Figure:
    """Lay out and close the figure: a notebook shows it once, as the cell's returned value (pyplot's
    inline backend would otherwise draw it a second time), and scripts save it with ``fig.savefig``."""
    fig.tight_layout()
    plt.close(fig)
    return fig


def _archs_in(df: pd.DataFrame) -> list[str]:
    present = set(df["arch"])
    return [a for a in ARCH_ORDER if a in present] + sorted(present - set(ARCH_ORDER))


def _loss_axis(ax) -> None:
    """Log scale for a loss axis with plain-number tick labels (3, 4, 6 rather than 6×10⁰)."""
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0)))
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.yaxis.set_minor_formatter(NullFormatter())


def _logx(ax, label):
    from matplotlib.ticker import NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels collide on short ranges
    ax.set_xlabel(label)


# ----------------------------------------------------------------------------- architectures


def plot_state_memory(memory: pd.DataFrame) -> plt.Figure:
    """Decoding memory (MiB) against context length: the KV cache grows, the recurrent state does not.

    ``memory``: columns arch, context, state_bytes (``linscale.architectures.decode_memory``).
    """
    set_style()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for arch in _archs_in(memory):
        part = memory[memory["arch"] == arch].sort_values("context")
        ax.plot(part["context"], part["state_bytes"] / 2**20, marker=ARCH_MARKERS.get(arch, "o"),
                color=ARCH_COLORS.get(arch), label=arch_label(arch))
    _logx(ax, "context length (tokens)")
    ax.set_yscale("log")
    ax.set_ylabel("decoding state (MiB)")
    ax.legend()
    return _finish(fig)


def plot_flops_per_token(flops: pd.DataFrame) -> plt.Figure:
    """Training FLOPs per token against context length for one model shape, per architecture.

    ``flops``: columns arch, seq_len, flops_per_token.
    """
    set_style()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    sns.lineplot(flops.assign(architecture=flops["arch"].map(arch_label)), x="seq_len", y="flops_per_token",
                 hue="architecture", style="architecture", markers=True, dashes=False,
                 palette=arch_palette(_archs_in(flops)), ax=ax)
    _logx(ax, "context length n (tokens)")
    ax.set_yscale("log")
    ax.set_ylabel("training FLOPs per token")
    return _finish(fig)


# ----------------------------------------------------------------------------- training curves


def _law_points(fit, law: str = "L(C)") -> pd.DataFrame:
    """The envelope points of an approach-1 LawFit for one law, with an ``arch`` column."""
    points = fit.points[fit.points["law"] == law]
    return points.rename(columns={"group": "arch"})


def plot_loss_curves(runs: pd.DataFrame, x: str = "tokens", loss: str = "train_loss", fit=None) -> plt.Figure:
    """Loss against tokens or compute, one panel per architecture, one line per model size.

    Sizes are shaded light (small) to dark (large) in the architecture's colour. With ``fit`` (the
    paper's method, ``linscale.laws.fit_approach1``; x must then be ``pf_days``), the fitted law
    L = β·C^α of the minimum-loss envelope is drawn on top as a dashed black line: the paper's Figure 1.
    """
    set_style()
    archs = _archs_in(runs)
    fig, axes = plt.subplots(1, len(archs), figsize=(3.1 * len(archs), 3.3), sharey=True, squeeze=False)
    for ax, arch in zip(axes[0], archs):
        part = runs[runs["arch"] == arch]
        sizes = part.groupby("size")["params"].first().sort_values().index.tolist()
        shades = sns.light_palette(ARCH_COLORS.get(arch, "grey"), n_colors=len(sizes) + 2)[2:]
        for size, shade in zip(sizes, shades):
            curve = part[part["size"] == size].sort_values(x)
            curve = curve[curve[x] > 0]
            ax.plot(curve[x], curve[loss], color=shade, lw=1.4, label=str(size))
        if fit is not None:
            env = _law_points(fit)
            env = env[env["arch"] == arch].sort_values("compute")
            ax.plot(env["compute"], env["fitted"], color="black", lw=1.0, ls="--", label="envelope law")
        _logx(ax, {"tokens": "tokens D", "pf_days": "compute C (PF-days)", "flops": "compute C (FLOPs)"}.get(x, x))
        _loss_axis(ax)
        ax.set_title(arch_label(arch), color=ARCH_COLORS.get(arch))
        ax.legend(fontsize=7, title="size", title_fontsize=7)
    axes[0][0].set_ylabel(loss.replace("_", " ") + " (nats/token)")
    return _finish(fig)


def plot_envelopes(fit, bayes_loss: float | None = None) -> plt.Figure:
    """The minimum-loss envelopes (solid) and their fitted laws (dashed) of all architectures on one
    log-log panel, with the exact Bayes loss of the synthetic language when known."""
    set_style()
    env = _law_points(fit)
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for arch in _archs_in(env):
        part = env[env["arch"] == arch].sort_values("compute")
        ax.plot(part["compute"], part["observed"], color=ARCH_COLORS.get(arch), label=arch_label(arch), lw=1.6)
        ax.plot(part["compute"], part["fitted"], color=ARCH_COLORS.get(arch), lw=1, ls="--")
    if bayes_loss is not None and math.isfinite(bayes_loss):
        ax.axhline(bayes_loss, color="grey", ls=":", lw=1, label="Bayes loss")
    _logx(ax, "compute C (PF-days)")
    _loss_axis(ax)
    ax.set_ylabel("minimum loss (nats/token)")
    ax.legend()
    return _finish(fig)


# ----------------------------------------------------------------------------- scaling laws


def plot_law_fits(points: pd.DataFrame, curves: pd.DataFrame, x: str, y: str, ylabel: str,
                  logy: bool = True) -> plt.Figure:
    """Observed points (``points``: arch, x, y) and fitted curves (``curves``: arch, x, y), one colour
    per architecture, log-log axes."""
    set_style()
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for arch in _archs_in(points):
        p = points[points["arch"] == arch]
        ax.scatter(p[x], p[y], s=14, alpha=0.6, color=ARCH_COLORS.get(arch), marker=ARCH_MARKERS.get(arch, "o"))
        if curves is not None and arch in set(curves["arch"]):
            c = curves[curves["arch"] == arch].sort_values(x)
            ax.plot(c[x], c[y], color=ARCH_COLORS.get(arch), lw=1.5, label=arch_label(arch))
    _logx(ax, "compute C (PF-days)" if x == "pf_days" else x)
    if logy:
        ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    ax.legend()
    return _finish(fig)


def plot_coefficients(table: pd.DataFrame, quantity: str, value: str = "estimate",
                      low: str = "ci_low", high: str = "ci_high", paper: str | None = "paper") -> plt.Figure:
    """A fitted coefficient per architecture with its 95% interval, the paper's value as a cross."""
    set_style()
    part = table[table["quantity"] == quantity]
    archs = _archs_in(part)
    fig, ax = plt.subplots(figsize=(5, 0.5 + 0.55 * len(archs)))
    for i, arch in enumerate(archs):
        row = part[part["arch"] == arch].iloc[0]
        colour = ARCH_COLORS.get(arch)
        if low in row and np.isfinite(row[low]):
            ax.plot([row[low], row[high]], [i, i], color=colour, lw=3, alpha=0.5)
        ax.plot(row[value], i, "o", color=colour)
        if paper and paper in row and np.isfinite(row[paper]):
            ax.plot(row[paper], i, "x", color="black", ms=8, label="paper" if i == 0 else None)
    ax.set_yticks(range(len(archs)), [arch_label(a) for a in archs])
    ax.set_xlabel(quantity)
    if paper:
        ax.legend(loc="best")
    return _finish(fig)


# ----------------------------------------------------------------------------- downstream


def plot_metric_against(df: pd.DataFrame, x: str, metric: str, ylabel: str | None = None,
                        logx: bool = True, chance: float | None = None) -> plt.Figure:
    """A downstream metric against compute (``pf_days``) or loss, one colour per architecture; the
    checkpoints of one run are joined by a line (with a ``run_id`` column), runs are not."""
    set_style()
    fig, ax = plt.subplots(figsize=(5.4, 3.6))
    if not len(df):  # e.g. the ablation tables of a study run with --no-ablations: say so, do not fail
        ax.text(0.5, 0.5, "no runs in this table", ha="center", va="center", transform=ax.transAxes, color="grey")
        ax.set_xticks([])
        ax.set_yticks([])
        return _finish(fig)
    for arch in _archs_in(df):
        part = df[df["arch"] == arch]
        runs = part.groupby("run_id") if "run_id" in part else [(arch, part)]
        for i, (_, run) in enumerate(runs):
            run = run.sort_values(x)
            ax.plot(run[x], run[metric], marker=ARCH_MARKERS.get(arch, "o"), ms=4, lw=1,
                    color=ARCH_COLORS.get(arch), label=arch_label(arch) if i == 0 else None)
    if chance is not None:
        ax.axhline(chance, color="grey", ls=":", lw=1, label="chance")
    if logx:
        _logx(ax, "")
    ax.set_xlabel({"pf_days": "compute C (PF-days)", "val_loss": "validation loss (nats/token)",
                   "train_loss": "training loss (nats/token)", "loss": "loss at the checkpoint (nats/token)",
                   "aspect": "aspect ratio d/l", "seq_len": "training context n"}.get(x, x))
    ax.set_ylabel(ylabel or metric)
    ax.legend(fontsize=8)
    return _finish(fig)


def styled(table: pd.DataFrame, formats: dict | None = None):
    """A table as the book shows it: architecture names as labels, integers with thousands separators,
    other numbers with four significant digits (scientific when tiny or huge), no index."""
    table = table.copy()
    if "arch" in table:
        table["arch"] = table["arch"].map(arch_label)
    fmt = {}
    for column in table.columns:
        if pd.api.types.is_bool_dtype(table[column]):
            continue
        if pd.api.types.is_integer_dtype(table[column]):
            fmt[column] = "{:,}"
        elif pd.api.types.is_float_dtype(table[column]):
            fmt[column] = lambda v: "–" if pd.isna(v) else (f"{v:.3e}" if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e6)
                                                           else f"{v:.4g}")
    fmt.update(formats or {})
    return table.style.format(fmt, na_rep="–").hide(axis="index")


def plot_niah_heatmaps(niah: pd.DataFrame, value: str = "score", vmin: float = 0.0,
                       vmax: float = 1.0, chance: float | None = None) -> plt.Figure:
    """Needle-in-a-haystack accuracy per (context length, depth), one heatmap per architecture
    (``niah``: arch, context, depth, score), the paper's NIAH figures; ``chance`` is marked on the colour bar."""
    set_style()
    archs = _archs_in(niah)
    fig, axes = plt.subplots(1, len(archs), figsize=(3.2 * len(archs), 3.2), squeeze=False)
    for i, (ax, arch) in enumerate(zip(axes[0], archs)):
        grid = niah[niah["arch"] == arch].pivot_table(index="depth", columns="context", values=value,
                                                      aggfunc="mean")
        sns.heatmap(grid, ax=ax, vmin=vmin, vmax=vmax, cmap="RdYlGn", cbar=i == len(archs) - 1,
                    cbar_kws={"label": value})
        if chance is not None and i == len(archs) - 1:
            ax.collections[0].colorbar.ax.axhline(chance, color="black", ls=":", lw=1.5)
            ax.collections[0].colorbar.ax.text(1.05, chance, " chance", transform=ax.collections[0].colorbar.ax
                                               .get_yaxis_transform(), va="bottom", fontsize=7)
        ax.set_title(arch_label(arch), color=ARCH_COLORS.get(arch))
        ax.set_xlabel("context length")
        ax.set_ylabel("needle depth (%)" if i == 0 else "")
    return _finish(fig)


def plot_seed_spread(summary: pd.DataFrame, tolerance: float | None = None) -> plt.Figure:
    """The final loss of each seed (one dot each) per architecture, with the mean as a bar; with
    ``tolerance`` (relative), a grey band of that width around each mean: how far apart two single-seed
    runs may end by chance."""
    set_style()
    fig, ax = plt.subplots(figsize=(5.4, 3.4))
    if not len(summary):
        ax.text(0.5, 0.5, "no seeds ablation in this study", ha="center", va="center", transform=ax.transAxes,
                color="grey")
        ax.set_xticks([])
        ax.set_yticks([])
        return _finish(fig)
    archs = _archs_in(summary)
    data = summary.assign(architecture=summary["arch"].map(arch_label))
    order = [arch_label(a) for a in archs]
    for i, arch in enumerate(archs):
        mean = float(summary.loc[summary["arch"] == arch, "loss"].mean())
        if tolerance is not None and np.isfinite(tolerance):
            ax.fill_between([i - 0.3, i + 0.3], mean * (1 - tolerance / 2), mean * (1 + tolerance / 2),
                            color="grey", alpha=0.2, lw=0)
        ax.plot([i - 0.3, i + 0.3], [mean, mean], color=ARCH_COLORS.get(arch), lw=1.5)
    sns.stripplot(data, x="architecture", y="loss", hue="architecture", order=order, hue_order=order,
                  palette=arch_palette(archs), size=6, jitter=0.15, legend=False, ax=ax)
    ax.set_xlabel("")
    ax.set_ylabel("final loss (nats/token)")
    return _finish(fig)


def plot_grouped_bars(df: pd.DataFrame, x: str, y: str, ylabel: str, chance: float | str | None = None) -> plt.Figure:
    """A bar per architecture within each group of ``x`` (e.g. associative recall per model size).
    ``chance``: one level for every group (a line across), or the name of a column of ``df`` holding each
    group's (a dotted segment over each group's bars)."""
    set_style()
    fig, ax = plt.subplots(figsize=(6, 3.4))
    data = df.assign(architecture=df["arch"].map(arch_label))
    sns.barplot(data, x=x, y=y, hue="architecture", palette=arch_palette(_archs_in(df)),
                hue_order=[arch_label(a) for a in _archs_in(df)], ax=ax)
    if isinstance(chance, str):
        levels = df.groupby(x, sort=False)[chance].first()
        for k, label in enumerate(t.get_text() for t in ax.get_xticklabels()):
            if label in levels and pd.notna(levels[label]):
                ax.hlines(levels[label], k - 0.45, k + 0.45, color="black", ls=":", lw=1.5,
                          label="chance" if k == 0 else None)
        ax.legend(fontsize=8)
    elif chance is not None:
        ax.axhline(chance, color="grey", ls=":", lw=1, label="chance")
        ax.legend(fontsize=8)
    ax.set_ylabel(ylabel)
    return _finish(fig)


# ----------------------------------------------------------------------------- efficiency


def plot_ratio_lines(df: pd.DataFrame, x: str, y: str, xlabel: str, ylabel: str,
                     logy: bool = False, reference: float | None = 1.0) -> plt.Figure:
    """A measured quantity (usually a ratio normalised to the shortest length) against length."""
    set_style()
    fig, ax = plt.subplots(figsize=(5.6, 3.6))
    for arch in _archs_in(df):
        part = df[df["arch"] == arch].sort_values(x)
        ax.plot(part[x], part[y], marker=ARCH_MARKERS.get(arch, "o"), color=ARCH_COLORS.get(arch),
                label=arch_label(arch))
    if reference is not None:
        ax.axhline(reference, color="grey", ls=":", lw=1)
    ax.set_xscale("log", base=2)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    return _finish(fig)


# ----------------------------------------------------------------------------- scaling-law fits (linscale.laws)

_LAW_LABELS = {"L(C)": "loss L (nats/token)", "N_opt(C)": "optimal parameters N_opt",
               "D_opt(C)": "optimal tokens D_opt"}


def plot_law_panels(fit, law_names=("L(C)", "N_opt(C)", "D_opt(C)")) -> plt.Figure:
    """The points a power-law fit used (approach 1: the envelope; approach 2: the IsoFLOP minima) and
    the fitted laws, one panel per law, one colour per architecture, log-log axes."""
    set_style()
    points = fit.points.rename(columns={"group": "arch"})
    fig, axes = plt.subplots(1, len(law_names), figsize=(4.0 * len(law_names), 3.5), squeeze=False)
    for ax, law in zip(axes[0], law_names):
        part = points[points["law"] == law]
        for arch in _archs_in(part):
            p = part[part["arch"] == arch].sort_values("compute")
            many = len(p) > 50
            ax.plot(p["compute"], p["observed"], lw=2.5 if many else 0, marker=None if many else
                    ARCH_MARKERS.get(arch, "o"), ms=4, alpha=0.35 if many else 0.8, color=ARCH_COLORS.get(arch))
            ax.plot(p["compute"], p["fitted"], lw=1.2, ls="--", color=ARCH_COLORS.get(arch), label=arch_label(arch))
        _logx(ax, "compute C (PF-days)")
        if law == "L(C)":
            _loss_axis(ax)
        else:
            ax.set_yscale("log")
        ax.set_ylabel(_LAW_LABELS.get(law, law))
        ax.set_title(law)
    axes[0][0].legend(fontsize=8)
    return _finish(fig)


def plot_isoflop_profiles(fit) -> plt.Figure:
    """Approach 2: loss against N along each compute budget (light to dark with the budget), one panel
    per architecture, and the minimum of the parabola fitted in log N (black crosses)."""
    set_style()
    points = fit.points.rename(columns={"group": "arch"})
    profiles = points[points["law"] == "isoflop profile"]
    minima = points[points["law"] == "N_opt(C)"]
    archs = _archs_in(profiles)
    fig, axes = plt.subplots(1, len(archs), figsize=(3.1 * len(archs), 3.3), sharey=True, squeeze=False)
    for ax, arch in zip(axes[0], archs):
        part = profiles[profiles["arch"] == arch]
        budgets = sorted(part["compute"].unique())
        shades = sns.light_palette(ARCH_COLORS.get(arch, "grey"), n_colors=len(budgets) + 2)[2:]
        for budget, shade in zip(budgets, shades):
            b = part[part["compute"] == budget].sort_values("params")
            ax.plot(b["params"], b["observed"], marker="o", ms=3, color=shade, lw=1)
        m = minima[minima["arch"] == arch]
        loss_at = points[(points["law"] == "L(C)") & (points["arch"] == arch)].set_index("compute")["observed"]
        ax.plot(m["observed"], m["compute"].map(loss_at), "x", color="black", ms=6, label="parabola minimum")
        _logx(ax, "parameters N")
        _loss_axis(ax)
        ax.set_title(arch_label(arch), color=ARCH_COLORS.get(arch))
    axes[0][0].set_ylabel("loss at fixed compute")
    axes[0][0].legend(fontsize=7)
    return _finish(fig)


def plot_exponents(comparison: pd.DataFrame) -> plt.Figure:
    """Fitted exponents of L(C), N_opt(C), D_opt(C) with their 95% intervals (bars) beside the paper's
    Table 3 values (black crosses); ``comparison`` is ``linscale.laws.compare_with_paper``'s table."""
    set_style()
    part = comparison[comparison["parameter"] == "exponent"].rename(columns={"group": "arch"})
    law_names = [law for law in ("L(C)", "N_opt(C)", "D_opt(C)") if law in set(part["law"])]
    archs = _archs_in(part)
    fig, axes = plt.subplots(1, len(law_names), figsize=(3.6 * len(law_names), 0.9 + 0.5 * len(archs)),
                             squeeze=False)
    for ax, law in zip(axes[0], law_names):
        for i, arch in enumerate(archs):
            row = part[(part["arch"] == arch) & (part["law"] == law)]
            if not len(row):
                continue
            row = row.iloc[0]
            colour = ARCH_COLORS.get(arch)
            if np.isfinite(row.get("ci_low", np.nan)):
                ax.plot([row["ci_low"], row["ci_high"]], [i, i], color=colour, lw=4, alpha=0.45,
                        solid_capstyle="butt")
            ax.plot(row["estimate"], i, "o", color=colour)
            ax.plot(row["paper"], i, "x", color="black", ms=7, label="paper" if i == 0 else None)
        ax.set_yticks(range(len(archs)), [arch_label(a) for a in archs])
        ax.invert_yaxis()
        ax.xaxis.set_major_locator(MaxNLocator(4))
        ax.set_title(f"{law} exponent")
    fig.legend(*axes[0][0].get_legend_handles_labels(), loc="lower center", ncol=2, fontsize=8,
               bbox_to_anchor=(0.5, -0.02))
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    plt.close(fig)
    return fig


def plot_irreducible_loss(table: pd.DataFrame) -> plt.Figure:
    """Approach 3's fitted irreducible loss E per architecture (95% interval) beside the exact Bayes
    loss of the synthetic language (grey line). ``table``: arch, E, ci_low, ci_high, bayes_loss."""
    set_style()
    archs = _archs_in(table)
    fig, ax = plt.subplots(figsize=(5.6, 0.9 + 0.5 * len(archs)))
    for i, arch in enumerate(archs):
        row = table[table["arch"] == arch].iloc[0]
        colour = ARCH_COLORS.get(arch)
        if np.isfinite(row["ci_low"]):
            ax.plot([row["ci_low"], row["ci_high"]], [i, i], color=colour, lw=4, alpha=0.45, solid_capstyle="butt")
        ax.plot(row["E"], i, "o", color=colour)
    bayes = float(table["bayes_loss"].iloc[0])
    if np.isfinite(bayes):
        ax.axvline(bayes, color="grey", ls=":", label="exact Bayes loss")
        ax.legend(fontsize=8)
    ax.set_yticks(range(len(archs)), [arch_label(a) for a in archs])
    ax.invert_yaxis()
    ax.set_xlabel("irreducible loss E (nats/token)")
    return _finish(fig)


def plot_extrapolation(check) -> plt.Figure:
    """The extrapolation check: held-out points' observed loss against the loss predicted by a law
    fitted without them, per architecture; the diagonal is a perfect prediction."""
    set_style()
    points = check.points.rename(columns={"group": "arch"})
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    for arch in _archs_in(points):
        p = points[points["arch"] == arch]
        ax.scatter(p["observed"], p["predicted"], s=14, color=ARCH_COLORS.get(arch),
                   marker=ARCH_MARKERS.get(arch, "o"), label=arch_label(arch), alpha=0.8)
    lo = float(min(points["observed"].min(), points["predicted"].min()))
    hi = float(max(points["observed"].max(), points["predicted"].max()))
    ax.plot([lo, hi], [lo, hi], color="grey", lw=1, ls=":")
    ax.set_xlabel("observed loss of held-out runs")
    ax.set_ylabel("predicted by the refitted law")
    ax.legend(fontsize=8)
    return _finish(fig)
