"""Figures of the study, with one colour per architecture everywhere (the book's palette).

Every figure function takes tidy DataFrames (the results tables, or the outputs of ``linscale.laws`` /
``linscale.eval``) and returns a matplotlib Figure, so a notebook calls one function per figure and
the same colours, labels and axes come out in every chapter::

    >>> from linscale.plotting import ARCH_COLORS, arch_label
    >>> arch_label("cosformer2")
    'cosFormer2'

Compute is plotted in PFLOP/s-days (1 PF-day = 8.64e19 FLOPs), as in the paper's figures.

Figures are drawn for the width the book shows them at: at most :data:`COLUMN_PX` pixels wide (the text
column of the book's theme in a 1280-pixel window), at :data:`DPI`, so a browser shows them at their
drawn size, with every text at least :data:`MIN_FONT_PT` points. Figures of one panel per architecture
are 2 × 2 grids rather than a row of four. :func:`legibility_problems` checks a figure against these
rules (the tests run it on every figure function).
"""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
from matplotlib.cm import ScalarMappable
from matplotlib.colors import ListedColormap, LogNorm
from matplotlib.ticker import Formatter, MaxNLocator
import numpy as np
import pandas as pd
import seaborn as sns

from linscale.config import ARCH_LABELS, ARCHITECTURES, arch_label  # noqa: F401 (the chapters use plotting.arch_label)

# Paper order: the softmax baseline first, then the linear models.
ARCH_ORDER: tuple[str, ...] = ARCHITECTURES
# seaborn's colour-blind palette, fixed per architecture (not per plot): LLaMA is always blue. Its first four
# colours give TNL orange and cosFormer2 vermilion, which readers could not tell apart where lines overlap, so
# cosFormer2 takes the palette's fifth (reddish purple).
ARCH_COLORS = dict(zip(("llama", "tnl", "hgrn2", "cosformer2"),
                       [sns.color_palette("colorblind").as_hex()[i] for i in (0, 1, 2, 4)]))
ARCH_MARKERS = {"llama": "o", "tnl": "s", "hgrn2": "D", "cosformer2": "^"}
# an architecture added to linscale.config.ARCHITECTURES needs a colour (the palette's 3 and 5-9 are free) and
# a marker here, and a label in linscale.config.ARCH_LABELS (tests/test_flops.py checks every architecture)


def arch_palette(archs=None) -> dict:
    """{display label: colour} for seaborn's ``palette=`` when the hue column holds display labels."""
    return {arch_label(a): ARCH_COLORS[a] for a in (archs or ARCH_ORDER)}


DPI = 100  # pixels per inch of the PNGs the notebooks store
COLUMN_PX = 672  # width of the book's text column (sphinx-book-theme, 1280-pixel window)
MIN_FONT_PT = 9.0  # smallest text of a figure, at the size the book shows it
WIDTH = 6.5  # inches: one figure across the column (650 px)
TEXT_PT = 10.0  # labels and titles
TICK_PT = 9.0  # tick labels, legends


def set_style() -> None:
    """The book's matplotlib style (called by every figure function; idempotent)."""
    sns.set_theme(context="notebook", style="whitegrid")
    plt.rcParams.update({"figure.dpi": DPI, "savefig.dpi": DPI, "axes.titleweight": "bold",
                         "legend.frameon": False, "font.size": TEXT_PT, "axes.labelsize": TEXT_PT,
                         "axes.titlesize": TEXT_PT, "xtick.labelsize": TICK_PT, "ytick.labelsize": TICK_PT,
                         "legend.fontsize": TICK_PT, "legend.title_fontsize": TICK_PT,
                         "figure.titlesize": TEXT_PT})


def _finish(fig: plt.Figure) -> plt.Figure:
    """Lay out and close the figure: a notebook shows it once, as the cell's returned value (pyplot's
    inline backend would otherwise draw it a second time), and scripts save it with ``fig.savefig``."""
    fig.tight_layout()
    plt.close(fig)
    return fig


def _panels(n: int, height_per_row: float = 2.6, sharey: bool = False, sharex: bool = False):
    """A figure with one panel per item, two per row (the column is too narrow for four in a row);
    unused panels are removed. Returns (fig, flat list of the n axes)."""
    cols = 1 if n == 1 else 2
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(WIDTH, 0.4 + height_per_row * rows), sharey=sharey,
                             sharex=sharex, squeeze=False)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.remove()
    return fig, flat[:n]


def _needs_power(value: float) -> bool:
    return value != 0 and (abs(value) >= 1e4 or abs(value) < 1e-2)


def _plain(value: float, power: bool | None = None) -> str:
    """A tick label as a reader writes the number: 64, 0.5, 2.5, 10^5 only when it must (``power``: write
    it as a power of ten whatever its size, so that one axis reads in one notation)."""
    if value == 0:
        return "0"
    if _needs_power(value) if power is None else power:
        exponent = math.floor(math.log10(abs(value)))
        mantissa = value / 10 ** exponent
        return f"$10^{{{exponent}}}$" if abs(mantissa - 1) < 1e-9 else f"${mantissa:.3g}\\times10^{{{exponent}}}$"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.4g}"


class _AxisNumbers(Formatter):
    """A tick formatter that writes every label of one axis in one notation: plainly, or all as powers of ten
    when any label it shows must be one (an axis read 500, 1000, 2000, 5000, 10^4 mixed the two)."""

    power = False

    def set_locs(self, locs):
        super().set_locs(locs)
        low, high = sorted(self.axis.get_view_interval()) if self.axis is not None else (-np.inf, np.inf)
        shown = [v for v in locs if low * (1 - 1e-9) <= v <= high * (1 + 1e-9)]
        self.power = any(_needs_power(v) for v in shown)

    def __call__(self, value, pos=None):
        return _plain(value, self.power)


def _log_axis(ax, which: str = "x", values=None, label: str | None = None) -> None:
    """A log axis a reader can read: when the data take a few round values (at most 8, each with at
    most 3 significant digits, spread apart: lengths 64/128/256, aspect ratios) the ticks sit on those
    values and say them; otherwise matplotlib's decade ticks, plus 2 and 5 within a decade when the
    axis spans less than two decades, so at least two ticks are labelled. Minor ticks are unlabelled
    (their labels collide)."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullFormatter

    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    distinct = sorted({float(v) for v in values if np.isfinite(v) and v > 0}) if values is not None else []
    logs = np.log10(distinct) if distinct else np.array([])
    spread = len(distinct) > 1 and np.diff(logs).min() >= 0.06 * (logs[-1] - logs[0])
    round_values = all(v.is_integer() or v == float(f"{v:.3g}") for v in distinct)
    # whole numbers under 10^5 (context lengths 512 .. 16384) are written out when they are the ticks
    whole = bool(distinct) and all(v.is_integer() for v in distinct) and distinct[-1] < 1e5
    # labels that fit side by side in a panel (six parameter counts such as 3712, 130896 do not)
    short = sum(len(_plain(v, False if whole else None)) for v in distinct) <= 24
    formatter = _AxisNumbers()
    if 1 < len(distinct) <= 8 and spread and round_values and short:
        axis.set_major_locator(FixedLocator(distinct))
        if whole:
            formatter = FuncFormatter(lambda v, _: _plain(v, power=False))
    else:
        low, high = (ax.get_xlim() if which == "x" else ax.get_ylim())
        if distinct:
            low, high = distinct[0], distinct[-1]
        decades = math.log10(high / low) if low > 0 and high > low else 0
        subs = (1.0, 2.0, 5.0) if decades < 2 else (1.0,)
        axis.set_major_locator(LogLocator(base=10, subs=subs, numticks=8))
    axis.set_major_formatter(formatter)
    axis.set_minor_formatter(NullFormatter())
    if label is not None:
        (ax.set_xlabel if which == "x" else ax.set_ylabel)(label)


def message_figure(text: str, height: float = 1.2) -> plt.Figure:
    """A figure that says, in words, why there is nothing to draw (a fit impossible on this grid, a study
    without ablations): a numbered figure never holds raw text or a Python object."""
    import textwrap

    set_style()
    lines = textwrap.wrap(text, 80)
    # tall enough for every wrapped line (a line of TEXT_PT type and its leading, about 0.2 in): a long reason
    # in a figure of fixed height ran off its top and bottom, and tight_layout warned into the page
    fig, ax = plt.subplots(figsize=(WIDTH, max(height, 0.2 * len(lines) + 0.4)))
    ax.axis("off")
    ax.text(0.5, 0.5, "\n".join(lines), ha="center", va="center", transform=ax.transAxes, color="0.35",
            fontsize=TEXT_PT)
    return _finish(fig)


def legibility_problems(fig: plt.Figure, column_px: int = COLUMN_PX, min_pt: float = MIN_FONT_PT) -> list[str]:
    """What makes ``fig`` hard to read in the book (an empty list when nothing does): drawn wider than
    the column (the browser would shrink it), text smaller than ``min_pt`` at the size shown,
    tick labels of one axis that overlap, a log axis with fewer than two labelled ticks, two texts drawn
    over each other (a legend on tick labels, a note on another panel's labels)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    problems = []
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)  # closed figures
    canvas.draw()
    renderer = canvas.get_renderer()
    width_px = fig.get_figwidth() * fig.dpi
    scale = min(1.0, column_px / width_px)
    if width_px > column_px:
        problems.append(f"{width_px:.0f} px wide, wider than the {column_px}-px column")
    texts = [t for t in fig.findobj(plt.Text) if t.get_visible() and t.get_text().strip()]
    for text in texts:
        shown = text.get_fontsize() * fig.dpi / 96 * scale  # points as a browser shows them (96 px/in)
        if shown < min_pt - 1e-6:
            problems.append(f"text {text.get_text()!r} at {shown:.1f} pt, smaller than {min_pt} pt")
    for ax in fig.axes:
        for name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            visible = [t for t in axis.get_ticklabels() if t.get_visible()]
            if not visible:  # labels switched off (an inner panel of a shared axis)
                continue
            inside = [t for t in visible if t.get_text().strip() and _within_axis(ax, name, t)]
            boxes = sorted((t.get_window_extent(renderer) for t in inside), key=lambda b: b.x0 if name == "x" else b.y0)
            for a, b in zip(boxes, boxes[1:]):
                if (a.x1 > b.x0 + 0.5 if name == "x" else a.y1 > b.y0 + 0.5):
                    problems.append(f"{ax.get_title() or 'panel'}: overlapping {name} tick labels")
                    break
            if axis.get_scale() == "log" and len(inside) < 2:
                problems.append(f"{ax.get_title() or 'panel'}: log {name} axis with {len(inside)} labelled tick(s)")
    problems += _overlapping_texts(fig, renderer)
    return problems


def _overlapping_texts(fig: plt.Figure, renderer) -> list[str]:
    """Pairs of drawn texts whose boxes overlap by more than a pixel each way (tick labels beyond their
    axis's limits are not drawn, so not counted; nor are the texts of an axes switched off)."""
    hidden = set()
    for ax in fig.axes:
        for name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            for label in axis.get_ticklabels(which="both"):
                if not ax.axison or not _within_axis(ax, name, label):
                    hidden.add(id(label))
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in fig.findobj(plt.Text)
             if t.get_visible() and t.get_text().strip() and id(t) not in hidden]
    problems = []
    for i, (text, box) in enumerate(boxes):
        for other, other_box in boxes[i + 1:]:
            if min(box.x1, other_box.x1) - max(box.x0, other_box.x0) > 1 and \
                    min(box.y1, other_box.y1) - max(box.y0, other_box.y0) > 1:
                problems.append(f"text {text!r} drawn over {other!r}")
    return problems


def _within_axis(ax, name: str, label) -> bool:
    low, high = sorted(ax.get_xlim() if name == "x" else ax.get_ylim())
    x, y = label.get_position()
    value = x if name == "x" else y
    return low * (1 - 1e-9) <= value <= high * (1 + 1e-9) if low > 0 else low - 1e-9 <= value <= high + 1e-9


def _archs_in(df: pd.DataFrame) -> list[str]:
    present = set(df["arch"])
    return [a for a in ARCH_ORDER if a in present] + sorted(present - set(ARCH_ORDER))


def _loss_axis(ax) -> None:
    """Log scale for a loss axis with plain-number tick labels (1.5, 2, 3 rather than 2×10⁰); a loss
    axis spans a factor of a few, so the ticks are the steps a reader expects within one decade."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_yscale("log")
    low, high = ax.get_ylim()
    subs = (1.0, 1.2, 1.4, 1.6, 1.8, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0) if high / max(low, 1e-12) < 2.5 else \
        (1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0)
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=subs))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.3g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _logx(ax, label, values=None):
    _log_axis(ax, "x", values, label)


# ----------------------------------------------------------------------------- architectures


def plot_state_memory(memory: pd.DataFrame) -> plt.Figure:
    """Decoding memory (MiB) against context length: the KV cache grows, the recurrent state does not.

    ``memory``: columns arch, context, state_bytes (``linscale.architectures.decode_memory``).
    """
    set_style()
    fig, ax = plt.subplots(figsize=(WIDTH, 3.4))
    for arch in _archs_in(memory):
        part = memory[memory["arch"] == arch].sort_values("context")
        ax.plot(part["context"], part["state_bytes"] / 2**20, marker=ARCH_MARKERS.get(arch, "o"),
                color=ARCH_COLORS.get(arch), label=arch_label(arch))
    _logx(ax, "context length (tokens)", memory["context"])
    _log_axis(ax, "y", None, "decoding state (MiB)")
    ax.legend()
    return _finish(fig)


def plot_flops_per_token(flops: pd.DataFrame) -> plt.Figure:
    """Training FLOPs per token against context length for one model shape, per architecture.

    ``flops``: columns arch, seq_len, flops_per_token.
    """
    set_style()
    fig, ax = plt.subplots(figsize=(WIDTH, 3.4))
    sns.lineplot(flops.assign(architecture=flops["arch"].map(arch_label)), x="seq_len", y="flops_per_token",
                 hue="architecture", style="architecture", dashes=False,
                 markers={arch_label(a): ARCH_MARKERS.get(a, "o") for a in _archs_in(flops)},
                 palette=arch_palette(_archs_in(flops)), ax=ax)
    _logx(ax, "context length n (tokens)", flops["seq_len"])
    _log_axis(ax, "y", None, "training FLOPs per token")
    return _finish(fig)


# ----------------------------------------------------------------------------- training curves


def _law_points(fit, law: str = "L(C)") -> pd.DataFrame:
    """The envelope points of an approach-1 LawFit for one law, with an ``arch`` column."""
    points = fit.points[fit.points["law"] == law]
    return points.rename(columns={"group": "arch"})


def _size_shades(colour, n: int) -> list:
    """``n`` shades of ``colour``, light (smallest size) through the colour itself to a dark one (largest),
    evenly: a light palette that ended at the colour left the largest sizes' lines nearly alike."""
    import matplotlib.colors as mc

    rgb = np.array(mc.to_rgb(colour))
    light, dark = rgb + (1 - rgb) * 0.75, rgb * 0.45
    return [tuple(rgb)] if n == 1 else [tuple(c) for c in sns.blend_palette([light, rgb, dark], n_colors=n)]


def plot_loss_curves(runs: pd.DataFrame, x: str = "tokens", loss: str = "train_loss", fit=None) -> plt.Figure:
    """Loss against tokens or compute, one panel per architecture, one line per model size.

    Sizes are shaded light (small) to dark (large) in the architecture's colour. With ``fit`` (the
    paper's method, ``linscale.laws.fit_approach1``; x must then be ``pf_days``), the fitted law
    L = β·C^α of the minimum-loss envelope is drawn on top as a dashed black line: the paper's Figure 1.
    """
    set_style()
    archs = _archs_in(runs)
    fig, axes = _panels(len(archs), sharey=True, sharex=True)
    names: list = []  # the size names of the architecture with the most sizes (every other page says s1-s6)
    for i, (ax, arch) in enumerate(zip(axes, archs)):
        part = runs[runs["arch"] == arch]
        sizes = part.groupby("size")["params"].first().sort_values().index.tolist()
        names = sizes if len(sizes) > len(names) else names
        shades = _size_shades(ARCH_COLORS.get(arch, "grey"), len(sizes))
        for size, shade in zip(sizes, shades):
            curve = part[part["size"] == size].sort_values(x)
            curve = curve[curve[x] > 0]
            ax.plot(curve[x], curve[loss], color=shade, lw=1.4)
        if fit is not None:
            env = _law_points(fit)
            env = env[env["arch"] == arch].sort_values("compute")
            ax.plot(env["compute"], env["fitted"], color="black", lw=1.0, ls="--")
        _logx(ax, {"tokens": "tokens D", "pf_days": "compute C (PF-days)", "flops": "compute C (FLOPs)"}.get(x, x)
              if i >= len(archs) - 2 else "")
        _loss_axis(ax)
        ax.set_title(arch_label(arch), color=ARCH_COLORS.get(arch))
        ax.set_ylabel(loss.replace("_", " ") + " (nats/token)" if i % 2 == 0 else "")
    # One legend for all panels: the shade is the size (light: smallest), in grey, since each panel
    # shades its own colour.
    greys = _size_shades("dimgrey", len(names))  # shaded as the panels are: light, the grey, dark
    handles = [plt.Line2D([], [], color=g, lw=2) for g in greys]
    labels = [str(name) for name in names]
    labels[0] += " (smallest)"
    labels[-1] += " (largest)"
    if fit is not None:
        handles.append(plt.Line2D([], [], color="black", lw=1, ls="--"))
        labels.append("envelope law")
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), bbox_to_anchor=(0.5, 0.0))
    fig.tight_layout(rect=(0, 0.12 if len(labels) > 4 else 0.07, 1, 1))
    plt.close(fig)
    return fig


def plot_envelopes(fit, bayes_loss: float | None = None, floor_label: str = "exact entropy rate",
                   ranked_at: float | None = None) -> plt.Figure:
    """The minimum-loss envelopes (solid) and their fitted laws (dashed) of all architectures on one
    log-log panel, with the language's floor ``bayes_loss`` (dotted, labelled ``floor_label``) when known
    and a thin vertical line at ``ranked_at``, the compute at which the text ranks the envelopes."""
    set_style()
    env = _law_points(fit)
    fig, ax = plt.subplots(figsize=(WIDTH, 3.8))
    for arch in _archs_in(env):
        part = env[env["arch"] == arch].sort_values("compute")
        ax.plot(part["compute"], part["observed"], color=ARCH_COLORS.get(arch), label=arch_label(arch), lw=1.6)
        ax.plot(part["compute"], part["fitted"], color=ARCH_COLORS.get(arch), lw=1, ls="--")
    if bayes_loss is not None and math.isfinite(bayes_loss):
        ax.axhline(bayes_loss, color="grey", ls=":", lw=1, label=f"{floor_label} ({bayes_loss:.3f})")
    if ranked_at is not None:
        ax.axvline(ranked_at, color="black", lw=0.8, alpha=0.6, label="compute the text ranks at")
    _logx(ax, "compute C (PF-days)", env["compute"])
    _loss_axis(ax)
    ax.set_ylabel("minimum loss (nats/token)")
    ax.legend()
    return _finish(fig)


# ----------------------------------------------------------------------------- scaling laws


def _dodged(xs, k: int, n: int, fraction: float, log: bool = True, span: float = 0.0):
    """The k-th of n series moved sideways so that equal points of different series do not hide each other:
    ``fraction`` per step, centred (the middle series stays on its x); a factor of (1 + fraction) per step
    on a log axis, ``fraction`` of ``span`` (the x range) per step on a linear one."""
    step = k - (n - 1) / 2
    return xs * (1 + fraction) ** step if log else xs + fraction * step * span


def plot_metric_against(df: pd.DataFrame, x: str, metric: str, ylabel: str | None = None,
                        logx: bool = True, chance: float | None = None, dodge: float = 0.0) -> plt.Figure:
    """A downstream metric against compute (``pf_days``) or loss, one colour per architecture; the
    checkpoints of one run are joined by a line (with a ``run_id`` column), runs are not: without that
    column, each architecture's points are one line (an ablation's runs, in ``x`` order). ``dodge``: shift
    each architecture's points sideways by this fraction of x (of the x range on a linear axis), one
    step per architecture, so that architectures with the same score at the same x do not hide each other."""
    set_style()
    fig, ax = plt.subplots(figsize=(WIDTH, 3.5))
    if not len(df):  # e.g. the ablation tables of a study run with --no-ablations: say so, do not fail
        ax.text(0.5, 0.5, "no runs in this table", ha="center", va="center", transform=ax.transAxes, color="grey")
        ax.set_xticks([])
        ax.set_yticks([])
        return _finish(fig)
    archs = _archs_in(df)
    for k, arch in enumerate(archs):
        part = df[df["arch"] == arch]
        runs = part.groupby("run_id") if "run_id" in part else [(arch, part)]
        for i, (_, run) in enumerate(runs):
            run = run.sort_values(x)
            xs = _dodged(run[x], k, len(archs), dodge, logx, span=df[x].max() - df[x].min())
            ax.plot(xs, run[metric], marker=ARCH_MARKERS.get(arch, "o"), ms=4, lw=1,
                    color=ARCH_COLORS.get(arch), label=arch_label(arch) if i == 0 else None)
    if chance is not None:
        ax.axhline(chance, color="grey", ls=":", lw=1, label="chance")
    if logx:
        _logx(ax, "", df[x])
    ax.set_xlabel({"pf_days": "compute C (PF-days)", "val_loss": "validation loss (nats/token)",
                   "train_loss": "training loss (nats/token)", "loss": "loss at the checkpoint (nats/token)",
                   "aspect": "aspect ratio d/l", "seq_len": "training context n (tokens)"}.get(x, x))
    ax.set_ylabel(ylabel or metric)
    ax.legend()
    return _finish(fig)


def plot_niah_heatmaps(niah: pd.DataFrame, value: str = "score", vmin: float = 0.0,
                       vmax: float = 1.0, chance: float | None = None) -> plt.Figure:
    """Needle-in-a-haystack accuracy per (context length, depth), one heatmap per architecture
    (``niah``: arch, context, depth, score), the paper's NIAH figures; ``chance`` is marked on the colour bar."""
    set_style()
    archs = _archs_in(niah)
    if not archs:  # a figure of no panels was matplotlib's "Number of rows must be a positive integer" traceback
        return message_figure("No needle-in-a-haystack scores to show.")
    fig, axes = _panels(len(archs), height_per_row=2.5)
    image = None
    for i, (ax, arch) in enumerate(zip(axes, archs)):
        grid = niah[niah["arch"] == arch].pivot_table(index="depth", columns="context", values=value,
                                                      aggfunc="mean")
        image = ax.imshow(grid.to_numpy(), vmin=vmin, vmax=vmax, cmap="RdYlGn", aspect="auto", origin="upper")
        ax.grid(False)
        # every context length labelled when they fit (up to six; at eight, 112 and 128 touched in a half-width
        # panel), else every other one counted from the longest, which a reader looks for first ("worse the
        # longer the haystack"); depths as percents
        step = 1 if len(grid.columns) <= 6 else 2
        ticks = list(range(len(grid.columns) - 1, -1, -step))[::-1]
        ax.set_xticks(ticks, [f"{grid.columns[j]:g}" for j in ticks])
        ax.set_yticks(range(len(grid.index)), [f"{d:.0f}" for d in grid.index])
        ax.set_title(arch_label(arch), color=ARCH_COLORS.get(arch))
        ax.set_xlabel("context length (tokens)" if i >= len(archs) - 2 else "")
        # depth 0 % is the haystack's start, farthest from the question (linscale/eval/metrics.py)
        ax.set_ylabel("needle depth (%):\n0 = farthest" if i % 2 == 0 else "")
    fig.tight_layout(rect=(0, 0, 0.88, 1))
    if image is not None:
        bar = fig.add_axes((0.9, 0.15, 0.025, 0.7))
        fig.colorbar(image, cax=bar, label="accuracy" if value == "score" else value)
        if chance is not None:  # chance marked on the colour bar
            bar.axhline(chance, color="black", ls=":", lw=1.5)
            bar.text(1.05, chance, " chance", transform=bar.get_yaxis_transform(), va="bottom", fontsize=9)
    plt.close(fig)
    return fig


def plot_seed_spread(summary: pd.DataFrame, tolerance: float | None = None) -> plt.Figure:
    """The final loss of each seed (one dot each) per architecture, with the mean as a bar; with
    ``tolerance`` (relative), a grey band of that width around each mean: how far apart two single-seed
    runs may end by chance."""
    set_style()
    fig, ax = plt.subplots(figsize=(WIDTH, 3.4))
    if not len(summary):
        ax.text(0.5, 0.5, "no seeds ablation in this study", ha="center", va="center", transform=ax.transAxes,
                color="grey")
        ax.set_xticks([])
        ax.set_yticks([])
        return _finish(fig)
    archs = _archs_in(summary)
    order = [arch_label(a) for a in archs]
    for i, arch in enumerate(archs):
        losses = summary.loc[summary["arch"] == arch, "loss"]
        mean = float(losses.mean())
        if tolerance is not None and np.isfinite(tolerance):
            ax.fill_between([i - 0.3, i + 0.3], mean * (1 - tolerance / 2), mean * (1 + tolerance / 2),
                            color="grey", alpha=0.2, lw=0)
        ax.plot([i - 0.3, i + 0.3], [mean, mean], color=ARCH_COLORS.get(arch), lw=1.5)
        # the seeds side by side at fixed offsets: a random jitter drew a new figure at every build
        offsets = np.linspace(-0.15, 0.15, len(losses)) if len(losses) > 1 else np.zeros(len(losses))
        ax.scatter(i + offsets, losses.to_numpy(dtype=float), s=36, color=ARCH_COLORS.get(arch), zorder=3)
    ax.set_xticks(range(len(order)), order)
    ax.set_xlim(-0.5, len(order) - 0.5)
    ax.set_xlabel("")
    ax.set_ylabel("final loss (nats/token)")
    return _finish(fig)


def _seed_dot_area(runs):
    """A dot's area for a cell of ``runs`` seeds, growing with the square: at 18 points² per seed the dots of
    two and three seeds could not be told apart."""
    return 12 * np.asarray(runs, dtype=float) ** 2


def plot_noise_trend(cells: pd.DataFrame, trend=None, grid: dict | None = None, ylabel: str = "seed sd / mean") -> plt.Figure:
    """The run-to-run noise of the final loss by size: each architecture's measured sd at each measured
    size (``cells``: arch, params, sd, runs; a dot, larger for more runs) and the trend the verdicts on the
    fitted loss read (``trend``: a :class:`~linscale.findings.rules.SizeTrend`), marked at the grid's sizes
    (``grid``: {size name: parameters}), whose names stand on the top axis, clear of the dots."""
    set_style()
    fig, ax = plt.subplots(figsize=(WIDTH, 3.2))
    cells = cells[cells["sd"] > 0]
    archs = _archs_in(cells)
    for k, arch in enumerate(archs):
        part = cells[cells["arch"] == arch]
        # each architecture a little to the side (6% in N, a hair on this log axis) and with its own marker:
        # cells of equal size and near-equal noise hid each other (HGRN2's s1 under LLaMA's)
        ax.scatter(_dodged(part["params"], k, len(archs), 0.06), part["sd"], s=_seed_dot_area(part["runs"]),
                   color=ARCH_COLORS.get(arch), alpha=0.8, marker=ARCH_MARKERS.get(arch, "o"), edgecolors="white",
                   linewidths=0.5, label=arch_label(arch), zorder=3)
    if trend is not None and grid:
        n = np.array(sorted(grid.values()))
        line = np.geomspace(n.min(), n.max(), 50)
        ax.plot(line, [trend.sd(x) for x in line], color="black", lw=1.2, label="trend (loss verdicts)")
        ax.scatter(n, [trend.sd(x) for x in n], marker="x", color="black", zorder=4)
    ax.set_xscale("log")
    ax.set_yscale("log")
    # the noise as percents (0.2%, 0.5%, 1%: the table below and the prose give percents), 2 and 5 within a
    # decade: decade ticks alone labelled only 10^-3 and 10^-2 over data from 0.08% to 1.4%
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{100 * v:.3g}%"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    if trend is not None and grid:  # the sizes' names on a top axis: beside the line the dots overprinted them
        top = ax.secondary_xaxis("top")
        top.set_xticks(list(grid.values()), labels=[str(name) for name in grid], fontsize=TICK_PT)
        top.xaxis.set_minor_locator(plt.NullLocator())
    for runs in sorted(cells["runs"].unique()) if "runs" in cells else ():  # the key to the dots' sizes
        ax.scatter([], [], s=_seed_dot_area(runs), color="grey", alpha=0.8, label=f"{int(runs)} seeds")
    ax.set_xlabel("non-embedding parameters N")
    ax.set_ylabel(ylabel)
    ax.legend(loc="upper right", ncol=2)
    lo, hi = ax.get_ylim()
    ax.set_ylim(lo, hi * 4)  # headroom for the legend above the dots
    return _finish(fig)


# Why a study has no role table: it did not train on the synthetic language, or it was committed before the
# study wrote one (re-runs such as 2026-12-03-seed6, a synthetic-language study told "roles exist for the
# synthetic language only")
NO_ROLE_TABLE = ("No role table in this study (results/<preset>/roles.parquet): the study writes one for the "
                 "synthetic language only, and a study committed before it did so has none.")


def plot_role_excess(finals: pd.DataFrame, roles, labels: dict | None = None,
                     reference: dict | None = None) -> plt.Figure:
    """Excess loss on tokens of one role (nats per token of that role, above the language's exact loss)
    against N, one panel per role: each architecture's main-sweep runs joined by a line, the seed
    ablations' runs as open markers of the same colour at their sizes, and (``reference``: {role: level})
    a dotted line at what a model that does not read the document pays.

    ``finals``: :func:`linscale.findings.role_finals` (columns arch, params, role, excess, main)."""
    set_style()
    roles = [r for r in roles if r in set(finals.get("role", []))]
    if not roles:
        return message_figure(NO_ROLE_TABLE)
    fig, axes = _panels(len(roles), height_per_row=2.8)
    for ax, role in zip(axes, roles):
        part = finals[finals["role"] == role]
        for arch in _archs_in(part):
            mine = part[part["arch"] == arch]
            main, seeds = mine[mine["main"]].sort_values("params"), mine[~mine["main"]]
            ax.plot(main["params"], main["excess"], marker=ARCH_MARKERS.get(arch, "o"), ms=4, lw=1,
                    color=ARCH_COLORS.get(arch), label=arch_label(arch))
            ax.scatter(seeds["params"], seeds["excess"], marker=ARCH_MARKERS.get(arch, "o"), s=30,
                       facecolors="none", edgecolors=ARCH_COLORS.get(arch), zorder=3)
        if reference and role in reference:
            ax.axhline(reference[role], color="grey", ls=":", lw=1, label="not reading the document")
        ax.set_ylim(bottom=0)
        _logx(ax, "non-embedding parameters N", part["params"])
        ax.set_title((labels or {}).get(role, role), fontsize=TICK_PT)
        ax.set_ylabel("excess loss (nats/token)")
    handles, names = axes[0].get_legend_handles_labels()
    for ax in axes[1:]:  # the reference line of a later panel, when the first has none
        for handle, name in zip(*ax.get_legend_handles_labels()):
            if name not in names:
                handles.append(handle)
                names.append(name)
    if len(axes) % 2:  # the empty half of the last row holds the legend
        fig.legend(handles, names, loc="lower right", bbox_to_anchor=(0.95, 0.08), ncol=1)
    else:
        fig.legend(handles, names, loc="upper center", ncol=len(names))
    return _finish(fig)


def plot_grouped_bars(df: pd.DataFrame, x: str, y: str, ylabel: str, chance: float | str | None = None,
                      baseline: str | None = None, baseline_label: str = "copy baseline") -> plt.Figure:
    """A bar per architecture within each group of ``x`` (e.g. associative recall per model size).
    ``chance``: one level for every group (a line across), or the name of a column of ``df`` holding each
    group's (a dotted segment over each group's bars). ``baseline``: a column of ``df`` with a second
    reference per group where it has one (a dashed segment, labelled ``baseline_label``)."""
    set_style()
    fig, ax = plt.subplots(figsize=(WIDTH, 3.4))
    data = df.assign(architecture=df["arch"].map(arch_label))
    sns.barplot(data, x=x, y=y, hue="architecture", palette=arch_palette(_archs_in(df)),
                hue_order=[arch_label(a) for a in _archs_in(df)], saturation=1, ax=ax)  # the book's colours
    if baseline is not None and baseline in df:
        _level_per_group(ax, df, x, baseline, baseline_label, color="dimgrey", ls="--", lw=1.5)
    if isinstance(chance, str):
        _level_per_group(ax, df, x, chance, "chance", color="black", ls=":", lw=1.5)
    elif chance is not None:
        ax.axhline(chance, color="grey", ls=":", lw=1, label="chance")
    if chance is not None or (baseline is not None and baseline in df):
        # again, after the references: seaborn's own legend has the bars only; at the book's legend size (8 pt
        # showed at 8.3, under MIN_FONT_PT)
        ax.legend()
    ax.set_ylabel(ylabel)
    return _finish(fig)


def _level_per_group(ax, df: pd.DataFrame, x: str, column: str, label: str, **style) -> None:
    """A horizontal segment over each group's bars at that group's ``column`` (groups without one get
    none), labelled once for the legend."""
    levels = df.groupby(x, sort=False)[column].first()
    levels.index = levels.index.map(str)  # matched to the tick labels' text: numeric groups (64, 256) too
    drawn = False
    for k, name in enumerate(t.get_text() for t in ax.get_xticklabels()):
        if name in levels and pd.notna(levels[name]):
            ax.hlines(levels[name], k - 0.45, k + 0.45, label=None if drawn else label, **style)
            drawn = True


# ----------------------------------------------------------------------------- efficiency


def ratio_ticks(figure: plt.Figure, ys, xs=None) -> plt.Figure:
    """Ticks to read a ratio figure's points off by: y (a log axis, which alone labels only its decades) at
    round ratios inside the data's range, x (when given) at the measured lengths themselves."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    ax = figure.axes[0]
    low, high = float(min(ys)), float(max(ys))
    steps = ((0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100) if high / low > 30 else
             (0.1, 0.2, 0.3, 0.5, 0.7, 1, 1.5, 2, 3, 5, 7, 10, 15, 20) if high / low > 3 else
             (0.5, 0.6, 0.7, 0.8, 0.9, 1, 1.1, 1.2, 1.3, 1.5, 2, 3) if high / low > 1.25 else
             (0.8, 0.85, 0.9, 0.95, 1, 1.05, 1.1, 1.15, 1.2))
    ticks = [v for v in steps if low / 1.15 <= v <= high * 1.15]
    ax.yaxis.set_major_locator(FixedLocator(ticks))
    bottom, top = ax.get_ylim()
    if sum(bottom <= v <= top for v in ticks) < 2:  # a narrow range (one architecture within +-4%) showed
        # only the tick at 1: the limits reach out to the nearest round ratio on each side
        below = max([v for v in steps if v <= low] or [low])
        above = min([v for v in steps if v >= high] or [high])
        ax.set_ylim(min(bottom, below / 1.01), max(top, above * 1.01))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_locator(NullLocator())
    if xs is not None:
        ax.xaxis.set_major_locator(FixedLocator(sorted({float(x) for x in xs})))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0f}"))
        ax.xaxis.set_minor_locator(NullLocator())
    figure.tight_layout()
    return figure


def plot_ratio_lines(df: pd.DataFrame, x: str, y: str, xlabel: str, ylabel: str,
                     logy: bool = False, reference: float | None = 1.0, low: str | None = None,
                     high: str | None = None) -> plt.Figure:
    """A measured quantity (usually a ratio normalised to the shortest length) against length; with
    ``low``/``high`` columns, a band of that spread around each line."""
    set_style()
    fig, ax = plt.subplots(figsize=(WIDTH, 3.5))
    for arch in _archs_in(df):
        part = df[df["arch"] == arch].sort_values(x)
        ax.plot(part[x], part[y], marker=ARCH_MARKERS.get(arch, "o"), color=ARCH_COLORS.get(arch),
                label=arch_label(arch))
        if low is not None and high is not None:  # the spread of a live re-run: min to max over rounds
            ax.fill_between(part[x], part[low], part[high], color=ARCH_COLORS.get(arch), alpha=0.18, lw=0)
    if reference is not None:
        ax.axhline(reference, color="grey", ls=":", lw=1)
    _log_axis(ax, "x", df[x], xlabel)
    if logy:
        _log_axis(ax, "y", None)
    ax.set_ylabel(ylabel)
    ax.legend()
    return _finish(fig)


# ----------------------------------------------------------------------------- scaling-law fits (linscale.laws)

_LAW_LABELS = {"L(C)": "fitted loss (nats/token)", "N_opt(C)": "optimal parameters N_opt",
               "D_opt(C)": "optimal tokens D_opt"}


def plot_law_panels(fit, law_names=("L(C)", "N_opt(C)", "D_opt(C)")) -> plt.Figure:
    """The points a power-law fit used (approach 1: the envelope; approach 2: the IsoFLOP minima) and
    the fitted laws, one panel per law, one colour per architecture, log-log axes."""
    set_style()
    points = fit.points.rename(columns={"group": "arch"})
    hidden = _not_identified(fit.params)
    fig, axes = _panels(len(law_names) + 1, sharex=True)
    legend_ax = axes.pop()  # the fourth cell of the 2 × 2 grid holds the legend
    for i, (ax, law) in enumerate(zip(axes, law_names)):
        part = points[points["law"] == law]
        for arch in _archs_in(part):
            p = part[part["arch"] == arch].sort_values("compute")
            many = len(p) > 50
            ax.plot(p["compute"], p["observed"], lw=2.5 if many else 0, marker=None if many else
                    ARCH_MARKERS.get(arch, "o"), ms=4, alpha=0.35 if many else 0.8, color=ARCH_COLORS.get(arch),
                    label=arch_label(arch) if i == 0 else None)
            if (arch, law) not in hidden:  # a law the design check does not identify is not drawn
                ax.plot(p["compute"], p["fitted"], lw=1.2, ls="--", color=ARCH_COLORS.get(arch))
        _logx(ax, "compute C (PF-days)")  # every panel: the first row's too, since the legend fills a cell
        ax.xaxis.set_tick_params(labelbottom=True)
        if law == "L(C)":
            _loss_axis(ax)
        else:
            _log_axis(ax, "y", None)
        ax.set_ylabel(_LAW_LABELS.get(law, law))
        ax.set_title(law)
    legend_ax.axis("off")
    handles, labels = axes[0].get_legend_handles_labels()
    handles.append(plt.Line2D([], [], color="grey", lw=1.2, ls="--"))
    labels.append("the fitted law")
    shown_hidden = sorted((a, law) for a, law in hidden if law in law_names)
    if shown_hidden:  # one line per architecture: which of its laws are left undrawn
        by_arch = {}
        for a, law in shown_hidden:
            by_arch.setdefault(arch_label(a), []).append(law.split("(")[0])
        handles.append(plt.Line2D([], [], lw=0))
        labels.append("not identified, no law:\n" + "\n".join(f"{a}: {', '.join(ls)}" for a, ls in by_arch.items()))
    legend_ax.legend(handles, labels, loc="center")
    return _finish(fig)


def _not_identified(params: pd.DataFrame | None) -> set[tuple[str, str]]:
    """(arch, law) pairs a fit's parameter table marks as not identified by the design check."""
    if params is None or "identified" not in params:
        return set()
    rows = params[~params["identified"].fillna(True).astype(bool)]
    return set(zip(rows["group"], rows["law"]))


def plot_isoflop_profiles(fit) -> plt.Figure:
    """Approach 2: loss against N along each compute budget, one panel per architecture, and the minimum
    of the parabola fitted in log N (black crosses). A curve's shade is its budget on one log scale
    shared by the panels (light: the smallest budget of any architecture, full hue: the largest), read
    off the grey key beside them, so that equal shades are equal compute across panels."""
    set_style()
    points = fit.points.rename(columns={"group": "arch"})
    profiles = points[points["law"] == "isoflop profile"]
    minima = points[points["law"] == "N_opt(C)"]
    archs = _archs_in(profiles)
    norm = LogNorm(profiles["compute"].min(), profiles["compute"].max())
    lightest = 0.25  # the smallest budget's shade on each map: lighter is lost against the white panel
    fig, axes = _panels(len(archs), sharey=True, sharex=True)
    for i, (ax, arch) in enumerate(zip(axes, archs)):
        part = profiles[profiles["arch"] == arch]
        shades = sns.light_palette(ARCH_COLORS.get(arch, "grey"), as_cmap=True)
        for budget, b in part.groupby("compute"):
            b = b.sort_values("params")
            ax.plot(b["params"], b["observed"], marker="o", ms=3, lw=1,
                    color=shades(lightest + (1 - lightest) * float(norm(budget))))
        m = minima[minima["arch"] == arch]
        loss_at = points[(points["law"] == "L(C)") & (points["arch"] == arch)].set_index("compute")["observed"]
        ax.plot(m["observed"], m["compute"].map(loss_at), "x", color="black", ms=6, label="parabola minimum")
        _logx(ax, "parameters N" if i >= len(archs) - 2 else "", part["params"])
        _loss_axis(ax)
        ax.set_title(arch_label(arch), color=ARCH_COLORS.get(arch))
        ax.set_ylabel("loss at fixed compute (nats/token)" if i % 2 == 0 else "")
    axes[0].legend()
    fig.tight_layout(rect=(0, 0, 0.83, 1))
    key = fig.add_axes((0.85, 0.15, 0.022, 0.7))
    greys = ListedColormap(plt.get_cmap("Greys")(np.linspace(lightest, 1, 256)))
    fig.colorbar(ScalarMappable(norm=norm, cmap=greys), cax=key, label="compute budget (PF-days)")
    plt.close(fig)
    return fig


def plot_exponents(comparison: pd.DataFrame) -> plt.Figure:
    """Fitted exponents of L(C), N_opt(C), D_opt(C) with their 95% intervals (bars) beside the paper's
    Table 3 values (black crosses); ``comparison`` is ``linscale.laws.compare_with_paper``'s table."""
    set_style()
    part = comparison[comparison["parameter"] == "exponent"].rename(columns={"group": "arch"})
    law_names = [law for law in ("L(C)", "N_opt(C)", "D_opt(C)") if law in set(part["law"])]
    archs = _archs_in(part)
    height = 1.6 + 0.55 * len(archs)  # a row per architecture, room for its note, and the legend below
    fig, axes = plt.subplots(1, len(law_names), figsize=(WIDTH, height), sharey=True, squeeze=False)
    for ax, law in zip(axes[0], law_names):
        for i, arch in enumerate(archs):
            row = part[(part["arch"] == arch) & (part["law"] == law)]
            if not len(row):
                continue
            row = row.iloc[0]
            colour = ARCH_COLORS.get(arch)
            # the first cross drawn names the legend's key (with i == 0 a first architecture without this law
            # left the crosses unexplained)
            first = not ax.get_lines()
            ax.plot(row["paper"], i, "x", color="black", ms=7, label="paper" if first else None)
            identified = row.get("identified", True)
            if pd.notna(identified) and not bool(identified):
                # centred just under the row's cross, inside the row's band (the y limits below)
                ax.text(0.5, i + 0.28, "not identified", transform=ax.get_yaxis_transform(), ha="center",
                        va="center", color="grey")
                continue  # the design check says this grid cannot recover it: no estimate drawn
            if np.isfinite(row.get("ci_low", np.nan)):
                ax.plot([row["ci_low"], row["ci_high"]], [i, i], color=colour, lw=4, alpha=0.45,
                        solid_capstyle="butt")
            ax.plot(row["estimate"], i, "o", color=colour)
        ax.set_yticks(range(len(archs)), [arch_label(a) for a in archs])
        ax.xaxis.set_major_locator(MaxNLocator(3))
        ax.set_title(f"{law} exponent")
    # one band a row, the first on top (shared y: set once); autoscaled, one row left its note outside
    axes[0][0].set_ylim(len(archs) - 0.5, -0.5)
    fig.legend(*axes[0][0].get_legend_handles_labels(), loc="lower center", ncol=2, bbox_to_anchor=(0.5, 0.0))
    fig.tight_layout(rect=(0, 0.4 / height, 1, 1))  # the legend's 0.4 inches kept free at any height
    plt.close(fig)
    return fig


def plot_irreducible_loss(table: pd.DataFrame, floor_label: str = "exact entropy rate") -> plt.Figure:
    """Approach 3's fitted irreducible loss E per architecture (95% interval) beside the floor in
    ``table["bayes_loss"]`` (grey line, labelled ``floor_label``; the language's exact entropy rate when
    the caller has it, which is not the sampled loss of the validation tokens). ``table``: arch, E,
    ci_low, ci_high, bayes_loss."""
    set_style()
    archs = _archs_in(table)
    if not archs:  # no row to read the floor from (an IndexError traceback)
        return message_figure("No architecture has a fitted irreducible loss to show.")
    fig, ax = plt.subplots(figsize=(WIDTH, 1.2 + 0.5 * len(archs)))
    for i, arch in enumerate(archs):
        row = table[table["arch"] == arch].iloc[0]
        colour = ARCH_COLORS.get(arch)
        if np.isfinite(row["ci_low"]):
            ax.plot([row["ci_low"], row["ci_high"]], [i, i], color=colour, lw=4, alpha=0.45, solid_capstyle="butt")
        ax.plot(row["E"], i, "o", color=colour)
    bayes = float(table["bayes_loss"].iloc[0])
    if np.isfinite(bayes):
        ax.axvline(bayes, color="grey", ls=":", label=f"{floor_label} ({bayes:.3f})")
        ax.legend()
    ax.set_yticks(range(len(archs)), [arch_label(a) for a in archs])
    ax.invert_yaxis()
    ax.set_xlabel("irreducible loss E (nats/token)")
    return _finish(fig)
