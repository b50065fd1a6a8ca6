"""Every figure of the book is legible at the size the book shows it (linscale.plotting.legibility_problems):
no wider than the text column, no text under 9 pt, no overlapping tick labels or other texts, no log axis
with fewer than two labelled ticks. Each figure function is drawn from the committed results of the default
study (results/cpu), the data the published book shows."""
from __future__ import annotations

import inspect
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from linscale import accounting, architectures, findings, laws, plotting, results
from linscale.data.synthetic import ROLE_LABELS
from linscale.eval import chance as eval_chance

PRESET = "cpu"


@pytest.fixture(scope="module")
def figures():
    runs = results.read_runs(PRESET, "results")
    envelope = findings.try_fit(runs, "approach1").fit
    scores = findings.downstream_table(results.read_eval(PRESET, "results"), runs)
    largest = findings.compare_at_largest(scores, ["knowledge_acc", "niah_easy_wa", "niah_standard_wa", "mqar_acc"])
    spec = results.study_preset(PRESET, "results")  # the downstream chapter's references: chance and copying
    copy_level = eval_chance.copy_baseline(spec.get("data"), max_length=int(spec["train"]["seq_len"]))
    retrieval = findings.retrieval_long(largest, findings.downstream_chance(results.read_eval(PRESET, "results")),
                                        baselines={"mqar_acc": copy_level})
    aspect = findings.ablation_summary(findings.read_ablation(PRESET, "results", "aspect"))
    context = findings.ablation_summary(findings.read_ablation(PRESET, "results", "context"))
    budgets = np.geomspace(1e18, 1e22, 9)  # neither committed grid supports approach 2: Chinchilla's law does
    approach2 = laws.fit_approach2(laws.simulate_isoflop(budgets=budgets), budgets=budgets, compute_unit="flops")
    approach2.points["group"] = "tnl"  # the simulated runs' group, drawn as one architecture
    irreducible = pd.DataFrame({"arch": list(plotting.ARCH_ORDER), "E": [1.2, 1.5, 0.4, 1.6],
                                "ci_low": [1.0, 1.3, 0.0, 1.5], "ci_high": [1.4, 1.6, 0.9, 1.7], "bayes_loss": 1.5})
    noise = findings.sized_noise(PRESET, "results")
    order = findings.size_order(runs)
    cells = noise.cells("loss", ["arch", "size"]).assign(params=lambda t: t["size"].map(noise.size_params()),
                                                         sd=lambda t: t["rel_sd"]).dropna(subset=["sd"])
    roles = results.read_optional(PRESET, "results", "roles")
    role_ends = findings.role_finals(roles)
    ratio = pd.DataFrame({"arch": ["llama"] * 4 + ["tnl"] * 4, "seq_len": [256, 512, 1024, 2048] * 2,
                          "vs_ref": [0.6, 1, 1.4, 2.1, 1, 1, 1.01, 0.99]})
    one_arch = findings.narrowed(findings.stored_attempts(PRESET, "results"), ["hgrn2"])["approach1"].fit
    one_arch = laws.compare_with_paper(one_arch).merge(one_arch.params[["group", "law", "parameter", "identified"]],
                                                       on=["group", "law", "parameter"])
    return {
        "exponents of one architecture, two not identified": plotting.plot_exponents(one_arch),
        "plot_state_memory": plotting.plot_state_memory(architectures.decode_memory(
            list(plotting.ARCH_ORDER), contexts=[64, 128, 256, 512, 1024], d_model=32, n_layer=1, n_head=2, chunk_size=16)),
        "plot_flops_per_token": plotting.plot_flops_per_token(
            accounting.flops_per_token_curve("paper", "410M", [512, 1024, 2048, 4096, 8192, 16384])),
        "plot_loss_curves": plotting.plot_loss_curves(runs, x="pf_days", fit=envelope),
        "plot_envelopes": plotting.plot_envelopes(envelope, bayes_loss=1.5),
        "plot_metric_against": plotting.plot_metric_against(aspect, x="aspect", metric="loss"),
        "plot_niah_heatmaps": plotting.plot_niah_heatmaps(findings.largest_model_cells(
            results.read_optional(PRESET, "results", "niah_cells"), list(plotting.ARCH_ORDER))),
        "plot_seed_spread": plotting.plot_seed_spread(
            findings.ablation_summary(findings.read_ablation(PRESET, "results", "seeds")), tolerance=0.01),
        "plot_grouped_bars": plotting.plot_grouped_bars(retrieval, x="task", y="score", ylabel="accuracy",
                                                        chance="chance", baseline="baseline"),  # as the book calls it
        "plot_ratio_lines": plotting.plot_ratio_lines(ratio.assign(low=ratio["vs_ref"] - 0.1, high=ratio["vs_ref"] + 0.1),
                                                      x="seq_len", y="vs_ref", xlabel="T", ylabel="ratio",
                                                      low="low", high="high"),
        "plot_law_panels": plotting.plot_law_panels(envelope),
        "plot_noise_trend": plotting.plot_noise_trend(cells, noise.trend("loss", relative=True),
                                                      {size: noise.size_params()[size] for size in order}),
        "plot_isoflop_profiles": plotting.plot_isoflop_profiles(approach2),
        "plot_exponents": plotting.plot_exponents(laws.compare_with_paper(envelope)),
        "plot_irreducible_loss": plotting.plot_irreducible_loss(irreducible),
        "plot_role_excess": plotting.plot_role_excess(role_ends, findings.ROLE_SKILLS, ROLE_LABELS,
                                                      findings.context_blind_excess(roles, {"n_vars": 16, "n_values": 32})),
        "message_figure": plotting.message_figure("Approach 2 could not be fitted on this grid: for cosFormer2 only "
                                                  "2 compute budgets have a minimum inside the sampled sizes."),
        "context": plotting.plot_metric_against(context, x="seq_len", metric="loss"),
        "compute": plotting.plot_metric_against(scores, x="pf_days", metric="knowledge_acc"),
    }


def test_every_figure_function_is_checked(figures):
    public = {name for name, f in inspect.getmembers(plotting, inspect.isfunction)
              if f.__module__ == plotting.__name__ and (name.startswith("plot_") or name == "message_figure")}
    assert public <= set(figures), sorted(public - set(figures))


def test_every_figure_is_legible_at_the_size_the_book_shows_it(figures):
    problems = {name: plotting.legibility_problems(fig) for name, fig in figures.items()}
    assert {name: p for name, p in problems.items() if p} == {}


def test_the_legibility_check_can_fail():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(12, 3), dpi=plotting.DPI)  # 1200 px: shown at 56%
    ax.plot([1, 10], [1, 2])
    ax.set_xscale("log")
    ax.set_xticks([1, 1.05, 10], ["one", "one and a bit", "ten"])  # two labels on top of each other
    ax.set_xlabel("small", fontsize=7)
    problems = "\n".join(plotting.legibility_problems(fig))
    plt.close(fig)
    assert "1200 px wide, wider than the 672-px column" in problems
    assert "text 'small' at" in problems and "overlapping x tick labels" in problems
    fig, ax = plt.subplots(figsize=(6, 3), dpi=plotting.DPI)
    ax.plot([2, 3], [1, 2])
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(plt.NullFormatter())
    assert "log x axis with 0 labelled tick(s)" in "\n".join(plotting.legibility_problems(fig))
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 3), dpi=plotting.DPI)
    ax.plot([0, 1], [0, 1], label="a legend")
    ax.text(0.5, -0.08, "a note", transform=ax.transAxes, ha="center")  # over the x tick labels
    ax.set_xticks([0.45, 1.0])
    problems = "\n".join(plotting.legibility_problems(fig))
    plt.close(fig)
    assert "text '0.45' drawn over 'a note'" in problems or "text 'a note' drawn over '0.45'" in problems


def test_log_axes_label_the_values_a_reader_looks_for():
    """Context lengths 64/128/256 on a log axis are labelled as such (the ablations' figures showed one
    label for three points); many or unround values get decade ticks instead."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([64, 128, 256], [1, 2, 3])
    plotting._log_axis(ax, "x", [64, 128, 256])
    fig.canvas.draw()
    assert [t.get_text() for t in ax.get_xticklabels() if t.get_text()] == ["64", "128", "256"]
    plt.close(fig)
    fig, ax = plt.subplots()
    ax.plot([3.0943e-10, 3.7712e-10, 3.1234e-9], [1, 2, 3])  # compute values: not round, decade ticks
    plotting._log_axis(ax, "x", [3.0943e-10, 3.7712e-10, 3.1234e-9])
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert "$10^{-9}$" in labels and len(labels) >= 2 and not any("3.09" in label for label in labels)
    plt.close(fig)


def test_laws_the_design_check_does_not_identify_are_not_drawn():
    """The scaling-laws chapter promises that a law the design check does not identify is shown as
    'not identified', never as numbers: its figures draw no fitted line and no estimate for it."""
    fit = findings.stored_attempts(PRESET, "results")["approach1"].fit
    hidden = {(a, law) for a, law in zip(fit.params["group"], fit.params["law"])
              if not bool(fit.params.set_index(["group", "law"]).loc[(a, law), "identified"].iloc[0])}
    assert ("llama", "N_opt(C)") in hidden and ("tnl", "N_opt(C)") not in hidden  # as committed
    fig = plotting.plot_law_panels(fit)
    panel = {ax.get_title(): ax for ax in fig.axes}
    colour = {a: plotting.ARCH_COLORS[a] for a in plotting.ARCH_ORDER}

    def dashed(ax, arch):
        import matplotlib.colors as mc
        return [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"
                and mc.to_hex(ln.get_color()) == mc.to_hex(colour[arch])]
    assert dashed(panel["N_opt(C)"], "tnl") and not dashed(panel["N_opt(C)"], "llama")
    assert dashed(panel["L(C)"], "llama")  # its loss law is identified
    comparison = laws.compare_with_paper(fit).merge(fit.params[["group", "law", "parameter", "identified"]],
                                                   on=["group", "law", "parameter"])
    fig = plotting.plot_exponents(comparison)
    fig.canvas.draw()
    ax = next(ax for ax in fig.axes if ax.get_title() == "N_opt(C) exponent")
    dots = {round(float(y)) for ln in ax.get_lines() if ln.get_marker() == "o" for y in ln.get_ydata()}
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]  # shared y: labelled once
    assert labels.index(plotting.arch_label("tnl")) in dots
    assert labels.index(plotting.arch_label("llama")) not in dots
    assert "not identified" in [t.get_text() for t in ax.texts]


def test_ratio_ticks_label_every_part_of_a_wide_log_range():
    """A log axis labels only its decades; ratio_ticks puts round ratios inside the data's range, so that the
    largest point (a kernel 6.7 times as fast as attention) has a labelled tick within a factor of 2, and x
    ticks at the measured lengths only."""
    ratio = pd.DataFrame({"arch": ["tnl"] * 3, "T": [1024, 4096, 16384], "r": [0.1, 1.6, 6.69]})
    fig = plotting.ratio_ticks(plotting.plot_ratio_lines(ratio, x="T", y="r", xlabel="T", ylabel="r", logy=True),
                               ratio["r"], xs=ratio["T"])
    ax = fig.axes[0]
    ys = [float(v) for v in ax.get_yticks()]
    assert all(0.1 / 1.15 <= v <= 6.69 * 1.15 for v in ys)
    assert max(ys) >= 6.69 / 2 and min(ys) <= 0.1 * 2
    assert [float(v) for v in ax.get_xticks()] == [1024.0, 4096.0, 16384.0]


def test_isoflop_shades_are_one_compute_scale_across_panels():
    """Fig. 4.3's key promises that equal shades are equal compute in every panel: a budget two
    architectures share gets the same place on each one's light-to-full map (shading by a budget's rank
    within its own panel gave them different shades), and larger budgets are darker."""
    import seaborn as sns

    budgets = np.geomspace(1e18, 1e22, 9)
    fit = laws.fit_approach2(laws.simulate_isoflop(budgets=budgets), budgets=budgets, compute_unit="flops")
    shifted = fit.points.assign(group="llama", compute=fit.points["compute"] * 100)  # budgets 1e20 to 1e24
    fig = plotting.plot_isoflop_profiles(SimpleNamespace(
        points=pd.concat([fit.points.assign(group="tnl"), shifted], ignore_index=True)))

    def places(ax, arch):  # each profile's place on its architecture's map, by its first x value's order
        cmap = sns.light_palette(plotting.ARCH_COLORS[arch], as_cmap=True)
        grid = np.linspace(0, 1, 2001)
        ramp = cmap(grid)[:, :3]
        lines = [line for line in ax.get_lines() if line.get_marker() == "o"]
        return [float(grid[np.argmin(((ramp - np.array(line.get_color())[:3]) ** 2).sum(axis=1))]) for line in lines]

    panels = {ax.get_title(): ax for ax in fig.axes if ax.get_title()}
    tnl, llama = places(panels["TNL"], "tnl"), places(panels["LLaMA"], "llama")
    assert len(tnl) == len(llama) == len(budgets)
    assert tnl == sorted(tnl) and tnl[0] < tnl[-1]  # darker with the budget
    assert tnl[4] == pytest.approx(llama[0], abs=5e-3)  # 1e20: TNL's middle budget, LLaMA's smallest
    assert llama[-1] == pytest.approx(1.0, abs=5e-3)  # the 256-colour map ends at 0.996


def test_dodged_points_stay_centred_on_their_x():
    """Dodged architectures (the ablations' NIAH figures) sit side by side around the x they were measured
    at: on a log axis their geometric mean is that x, on a linear one their mean, and no two coincide."""
    df = pd.DataFrame({"arch": ["llama", "tnl", "hgrn2", "cosformer2"] * 2, "seq_len": [64] * 4 + [256] * 4,
                       "score": [0.5] * 8})
    for logx, centre in ((True, lambda xs: float(np.exp(np.log(xs).mean()))), (False, lambda xs: float(np.mean(xs)))):
        fig = plotting.plot_metric_against(df, x="seq_len", metric="score", logx=logx, dodge=0.04)
        firsts = [float(line.get_xdata()[0]) for line in fig.axes[0].get_lines() if len(line.get_xdata()) == 2]
        assert len(set(firsts)) == 4 and centre(firsts) == pytest.approx(64)


def test_a_narrow_ratio_range_still_has_two_labelled_ticks():
    """The efficiency chapter with one architecture (-p archs '["hgrn2"]') drew ratios within +-4% of 1 on
    a log axis labelled '1' alone."""
    ratio = pd.DataFrame({"arch": ["hgrn2"] * 3, "T": [512, 1024, 2048], "r": [1.0, 0.97, 1.04]})
    fig = plotting.ratio_ticks(plotting.plot_ratio_lines(ratio, x="T", y="r", xlabel="T", ylabel="r", logy=True),
                               ratio["r"])
    assert plotting.legibility_problems(fig) == []
    bottom, top = fig.axes[0].get_ylim()
    assert sum(bottom <= v <= top for v in fig.axes[0].get_yticks()) >= 2


# ----------------------------------------------------------------------------- what each figure draws
# The figures above are checked for legibility only; these pin the data a reader reads off them.


def _solid(ax):
    return [line for line in ax.get_lines() if line.get_linestyle() == "-"]


def _envelope_fit():
    """An approach-1 fit of two architectures whose observed envelope and fitted law differ everywhere."""
    compute = np.array([1e-4, 1e-3, 1e-2])
    points = pd.concat([pd.DataFrame({"law": "L(C)", "group": arch, "compute": compute, "observed": observed,
                                      "fitted": np.array(observed) * 0.9})
                        for arch, observed in (("llama", [3.0, 2.5, 2.0]), ("tnl", [3.2, 2.6, 2.1]))])
    return SimpleNamespace(points=points.reset_index(drop=True), params=None)


def test_state_memory_is_drawn_in_mib():
    """The decoding-memory figure's y axis says MiB: each point is the state's bytes / 2**20."""
    memory = pd.DataFrame({"arch": ["llama"] * 2 + ["tnl"] * 2, "context": [64, 128] * 2,
                           "state_bytes": [2**20, 2**21, 3 * 2**19, 3 * 2**19]})
    ax = plotting.plot_state_memory(memory).axes[0]
    assert [list(line.get_ydata()) for line in ax.get_lines()] == [[1.0, 2.0], [1.5, 1.5]]
    assert ax.get_ylabel() == "decoding state (MiB)" and ax.get_yscale() == "log"


def test_grouped_bars_draw_chance_and_each_groups_level_over_its_own_bars():
    """A chance level for every group is one line across at that level; a level per group (a column) is a
    segment over that group's bars only, and a group without one gets none."""
    import matplotlib.colors as mc
    from matplotlib.collections import LineCollection

    df = pd.DataFrame({"arch": ["llama", "tnl"] * 2, "task": ["a"] * 2 + ["b"] * 2, "score": [0.5, 0.6, 0.7, 0.8],
                       "floor": [0.25, 0.25, np.nan, np.nan], "copy": [0.1, 0.1, 0.3, 0.3]})
    ax = plotting.plot_grouped_bars(df, x="task", y="score", ylabel="accuracy", chance=0.2).axes[0]
    chance = [line for line in ax.get_lines() if line.get_label() == "chance"]
    assert len(chance) == 1 and list(chance[0].get_ydata()) == [0.2, 0.2]
    ax = plotting.plot_grouped_bars(df, x="task", y="score", ylabel="accuracy", chance="floor", baseline="copy").axes[0]
    names = [t.get_text() for t in ax.get_xticklabels()]
    colour = {"chance": "#000000", "copy baseline": mc.to_hex("dimgrey")}  # a segment a group, the first labelled
    lines = [c for c in ax.collections if isinstance(c, LineCollection)]
    segments = {name: [s for c in lines if mc.to_hex(c.get_color()[0]) == hex_ for s in c.get_segments()]
                for name, hex_ in colour.items()}
    assert {c.get_label() for c in lines} >= set(colour)
    [(start, end)] = segments["chance"]  # group b has no chance level
    assert start[1] == end[1] == 0.25 and (start[0] + end[0]) / 2 == pytest.approx(names.index("a"))
    assert {(round((s[0] + e[0]) / 2), s[1]) for s, e in segments["copy baseline"]} == \
        {(names.index("a"), 0.1), (names.index("b"), 0.3)}
    assert all(e[0] - s[0] < 1 for s, e in segments["chance"] + segments["copy baseline"])  # one group's width
    numeric = df.assign(task=df["task"].map({"a": 64, "b": 256}))  # numeric groups (context lengths)
    ax = plotting.plot_grouped_bars(numeric, x="task", y="score", ylabel="accuracy", baseline="copy").axes[0]
    lines = [c for c in ax.collections if isinstance(c, LineCollection)]
    assert sum(len(c.get_segments()) for c in lines) == 2  # one a group: matched to "64", "256" on the axis
    assert "copy baseline" in [t.get_text() for t in ax.get_legend().get_texts()]  # a baseline alone is named too


def test_grouped_bars_legend_with_references_is_no_smaller_than_the_book_allows():
    """With a chance level or a baseline the legend is drawn again (seaborn's has the bars only); it was drawn at
    8 pt, shown at 8.3, under the 9 pt every other text of the book keeps (the retrieval figure)."""
    df = pd.DataFrame({"arch": ["llama", "tnl"] * 2, "task": ["a"] * 2 + ["b"] * 2, "score": [0.5, 0.6, 0.7, 0.8],
                       "chance": [0.25, 0.25, 0.2, 0.2], "baseline": [0.1, 0.1, np.nan, np.nan]})
    fig = plotting.plot_grouped_bars(df, x="task", y="score", ylabel="accuracy", chance="chance", baseline="baseline")
    assert plotting.legibility_problems(fig) == []
    assert {t.get_fontsize() for t in fig.axes[0].get_legend().get_texts()} == {plotting.TICK_PT}


def test_envelopes_are_drawn_solid_their_laws_dashed_with_the_floor_and_its_value():
    """The envelopes figure: each architecture's observed minimum loss solid (in the legend), its fitted law
    dashed, the language's floor a dotted line labelled with its value to three decimals, and the compute the
    text ranks at a vertical line."""
    fit = _envelope_fit()
    ax = plotting.plot_envelopes(fit, bayes_loss=1.5, ranked_at=1e-3).axes[0]
    solid = {line.get_label(): list(line.get_ydata()) for line in _solid(ax) if not line.get_label().startswith("_")}
    assert solid["LLaMA"] == [3.0, 2.5, 2.0] and solid["TNL"] == [3.2, 2.6, 2.1]
    dashed = [list(line.get_ydata()) for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert dashed == [pytest.approx([2.7, 2.25, 1.8]), pytest.approx([2.88, 2.34, 1.89])]
    floor = [line for line in ax.get_lines() if line.get_linestyle() == ":"]
    assert len(floor) == 1 and list(floor[0].get_ydata()) == [1.5, 1.5]
    assert floor[0].get_label() == "exact entropy rate (1.500)"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["LLaMA", "TNL", "exact entropy rate (1.500)", "compute the text ranks at"]
    assert [list(line.get_xdata()) for line in ax.get_lines() if line.get_label() == "compute the text ranks at"] == \
        [[1e-3, 1e-3]]
    assert ax.get_xscale() == ax.get_yscale() == "log"


def test_metric_against_draws_the_chance_level_and_names_each_architecture_once():
    """Several runs of an architecture are several lines of one colour but one legend entry, and the chance
    level is a line at that level (a reader compares the scores with it)."""
    df = pd.DataFrame({"arch": ["llama"] * 4 + ["tnl"] * 4, "run_id": ["l1", "l1", "l2", "l2", "t1", "t1", "t2", "t2"],
                       "pf_days": [1e-4, 1e-3] * 4, "acc": [0.3, 0.4, 0.35, 0.5, 0.3, 0.45, 0.32, 0.55]})
    ax = plotting.plot_metric_against(df, x="pf_days", metric="acc", chance=0.25).axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["LLaMA", "TNL", "chance"]
    chance = [line for line in ax.get_lines() if line.get_label() == "chance"]
    assert len(chance) == 1 and list(chance[0].get_ydata()) == [0.25, 0.25]
    assert ax.get_xlabel() == "compute C (PF-days)" and ax.get_xscale() == "log"


def test_loss_curves_shade_sizes_light_to_dark_and_draw_the_envelope_law():
    """One line per size, darker for larger models as the legend says (its first entry the smallest), and the
    envelope's fitted law (not its observed points) dashed on top."""
    import matplotlib.colors as mc

    runs = pd.concat([pd.DataFrame({"arch": "llama", "size": size, "params": params, "pf_days": [1e-4, 1e-3, 1e-2],
                                    "train_loss": np.array([3.0, 2.6, 2.3]) - shift})
                      for size, params, shift in (("s2", 2000, 0.2), ("s1", 1000, 0.0), ("s3", 4000, 0.3))])
    fit = _envelope_fit()
    fig = plotting.plot_loss_curves(runs, x="pf_days", fit=fit)
    ax = fig.axes[0]
    curves = _solid(ax)
    assert [line.get_ydata()[0] for line in curves] == pytest.approx([3.0, 2.8, 2.7])  # s1, s2, s3
    lightness = [sum(mc.to_rgb(line.get_color())) for line in curves]
    assert lightness == sorted(lightness, reverse=True) and lightness[0] > lightness[-1]
    [law] = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert list(law.get_ydata()) == pytest.approx([2.7, 2.25, 1.8])
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["s1 (smallest)", "s2", "s3 (largest)", "envelope law"]


def test_irreducible_loss_marks_each_estimate_first_architecture_on_top_and_the_floor_with_its_value():
    """Approach 3's figure: the dot at E inside its interval bar, rows in the paper's order from the top, the
    floor a vertical line whose legend gives its value."""
    table = pd.DataFrame({"arch": ["tnl", "llama"], "E": [1.3, 1.2], "ci_low": [1.1, 1.0], "ci_high": [1.6, 1.5],
                          "bayes_loss": 1.25})
    ax = plotting.plot_irreducible_loss(table).axes[0]
    dots = {float(line.get_ydata()[0]): float(line.get_xdata()[0]) for line in ax.get_lines()
            if line.get_marker() == "o"}
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["LLaMA", "TNL"] and dots == {0.0: 1.2, 1.0: 1.3}
    bottom, top = ax.get_ylim()
    assert top < bottom  # row 0 (LLaMA) on top
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["exact entropy rate (1.250)"]


def test_irreducible_loss_and_niah_heatmaps_of_an_empty_table_say_so_in_words():
    """No row to draw (no architecture with an identified E, a store without NIAH cells) was an IndexError and
    matplotlib's "Number of rows must be a positive integer" traceback: now a figure that says so."""
    shown = {
        "irreducible": plotting.plot_irreducible_loss(pd.DataFrame(columns=["arch", "E", "ci_low", "ci_high",
                                                                            "bayes_loss"])),
        "niah": plotting.plot_niah_heatmaps(pd.DataFrame(columns=["arch", "context", "depth", "score"])),
    }
    for name, fig in shown.items():
        [ax] = fig.axes
        texts = [t.get_text() for t in ax.texts]
        assert not ax.axison and len(texts) == 1 and texts[0].startswith("No "), name


def test_seed_spread_marks_each_mean_with_a_band_of_the_tolerance_around_it():
    """The bar is the mean of the seeds' final losses and the grey band spans the tolerance (relative) around
    it: mean·(1 ± tolerance/2), how far apart two single-seed runs may end by chance."""
    from matplotlib.collections import PolyCollection

    summary = pd.DataFrame({"arch": ["llama"] * 3, "loss": [2.0, 2.0, 2.6]})
    ax = plotting.plot_seed_spread(summary, tolerance=0.1).axes[0]
    [bar] = [line for line in ax.get_lines() if len(line.get_xdata()) == 2]
    assert list(bar.get_ydata()) == pytest.approx([2.2, 2.2])
    [band] = [c for c in ax.collections if isinstance(c, PolyCollection)]
    ys = band.get_paths()[0].vertices[:, 1]
    assert (ys.min(), ys.max()) == pytest.approx((2.2 * 0.95, 2.2 * 1.05))


def test_figures_keep_the_books_colours_markers_and_draw_the_same_every_time():
    """Sizes shaded light to dark through the colour (the largest darker than it, neighbours apart: a light
    palette ending at the colour left s4-s6 alike), bars in the palette's own colours (seaborn mutes them to 75%
    saturation), each architecture's marker in the FLOPs figure (seaborn's own were x, square and +), the
    seed dots at fixed places (a random jitter drew a new figure every build), the noise in percents."""
    import matplotlib.colors as mc

    runs = pd.DataFrame({"arch": "tnl", "size": [f"s{i}" for i in range(1, 7)], "params": range(1, 7),
                         "tokens": 1e6, "train_loss": 2.0})
    shades = [sum(mc.to_rgb(line.get_color())) for line in plotting.plot_loss_curves(runs).axes[0].get_lines()]
    assert shades[-1] < sum(mc.to_rgb(plotting.ARCH_COLORS["tnl"])) - 0.3 and min(-np.diff(shades)) > 0.15
    bars = pd.DataFrame({"arch": ["llama", "tnl"], "task": "recall", "score": [0.5, 0.4]})
    drawn = plotting.plot_grouped_bars(bars, "task", "score", "acc").axes[0].patches
    fills = {mc.to_hex(p.get_facecolor()) for p in drawn if p.get_height() > 0}
    assert fills == {mc.to_hex(plotting.ARCH_COLORS[a]) for a in ("llama", "tnl")}
    flops = pd.DataFrame({"arch": ["tnl", "tnl", "hgrn2", "hgrn2"], "seq_len": [512, 1024] * 2,
                          "flops_per_token": [1e9, 1.1e9, 1.2e9, 1.3e9]})
    markers = {line.get_label(): line.get_marker() for line in plotting.plot_flops_per_token(flops).axes[0].get_lines()
               if line.get_label() in ("TNL", "HGRN2")}
    assert markers == {"TNL": plotting.ARCH_MARKERS["tnl"], "HGRN2": plotting.ARCH_MARKERS["hgrn2"]}
    seeds = pd.DataFrame({"arch": ["llama"] * 3 + ["tnl"] * 2, "loss": [2.0, 2.1, 2.2, 2.3, 2.4]})
    dots = [np.asarray(c.get_offsets()) for c in plotting.plot_seed_spread(seeds).axes[0].collections
            if len(c.get_offsets())]
    again = [np.asarray(c.get_offsets()) for c in plotting.plot_seed_spread(seeds).axes[0].collections
             if len(c.get_offsets())]
    assert [d.tolist() for d in dots] == [d.tolist() for d in again]
    assert dots[0][:, 0].tolist() == pytest.approx([-0.15, 0.0, 0.15]) and dots[1][:, 0].tolist() == [0.85, 1.15]
    cells = pd.DataFrame({"arch": ["llama", "tnl"], "params": [1e3, 1e4], "sd": [0.001, 0.012], "runs": [2, 3]})
    ax = plotting.plot_noise_trend(cells).axes[0]
    ax.figure.canvas.draw()
    assert {"0.2%", "0.5%", "1%"} <= {t.get_text() for t in ax.get_yticklabels()}


def test_niah_heatmaps_put_context_across_and_depth_down_with_chance_on_the_key():
    """Each heatmap's columns are the context lengths (x, labelled so) and its rows the depths; the chance
    level is a line on the colour bar."""
    niah = pd.DataFrame({"arch": "llama", "context": [32, 32, 128, 128, 512, 512], "depth": [0, 50] * 3,
                         "score": [1.0, 0.9, 0.8, 0.7, 0.6, 0.5]})
    fig = plotting.plot_niah_heatmaps(niah, chance=0.25)
    ax, bar = fig.axes
    assert ax.images[0].get_array().tolist() == [[1.0, 0.8, 0.6], [0.9, 0.7, 0.5]]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["32", "128", "512"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0", "50"]
    assert [list(line.get_ydata()) for line in bar.get_lines()] == [[0.25, 0.25]]
    # six lengths are all labelled; more (the study's eight, whose 112 and 128 touched in a half-width panel)
    # every other one, always with the longest
    for lengths, labelled in ((range(16, 97, 16), list(range(16, 97, 16))), (range(16, 129, 16), [32, 64, 96, 128]),
                              (range(16, 161, 16), [32, 64, 96, 128, 160])):
        many = pd.DataFrame({"arch": "llama", "context": list(lengths), "depth": 0, "score": 0.5})
        ax = plotting.plot_niah_heatmaps(many).axes[0]
        assert [t.get_text() for t in ax.get_xticklabels()] == [f"{c}" for c in labelled]


def test_noise_trend_draws_the_trend_at_each_size():
    """The trend line is the fitted sd at each N along the axis (the verdicts read it there)."""
    cells = pd.DataFrame({"arch": ["llama", "tnl"], "params": [1e3, 1e4], "sd": [0.01, 0.02], "runs": [2, 3]})
    trend = SimpleNamespace(sd=lambda n: 0.1 * n ** -0.25)
    ax = plotting.plot_noise_trend(cells, trend, {"s1": 1e3, "s2": 1e4}).axes[0]
    [line] = [line for line in ax.get_lines() if line.get_label() == "trend (loss verdicts)"]
    assert list(line.get_ydata()) == pytest.approx([0.1 * x ** -0.25 for x in line.get_xdata()])
    assert line.get_xdata()[0] == pytest.approx(1e3) and line.get_xdata()[-1] == pytest.approx(1e4)


def test_role_excess_joins_the_main_sweep_and_marks_the_seeds_and_the_blind_reader():
    """Per role: the main sweep's runs joined by a line in order of N, the seed ablations' runs as markers
    only, and the context-blind level a dotted line at that level."""
    finals = pd.DataFrame({"arch": "llama", "role": "value", "params": [4e3, 1e3, 2e3, 1e3],
                           "excess": [0.1, 0.3, 0.2, 0.35], "main": [True, True, True, False]})
    ax = plotting.plot_role_excess(finals, ["value"], reference={"value": 0.5}).axes[0]
    [main] = [line for line in ax.get_lines() if line.get_label() == "LLaMA"]
    assert list(main.get_xdata()) == [1e3, 2e3, 4e3] and list(main.get_ydata()) == [0.3, 0.2, 0.1]
    assert [c.get_offsets().tolist() for c in ax.collections] == [[[1e3, 0.35]]]
    [blind] = [line for line in ax.get_lines() if line.get_label() == "not reading the document"]
    assert list(blind.get_ydata()) == [0.5, 0.5]


def test_ratio_lines_band_spans_low_to_high_around_a_reference_line():
    """With low/high columns each line has a band from low to high (a live re-run's min and max), and the
    reference ratio is a dotted line."""
    df = pd.DataFrame({"arch": "tnl", "T": [256, 512], "r": [1.0, 2.0], "lo": [0.9, 1.5], "hi": [1.2, 2.5]})
    ax = plotting.plot_ratio_lines(df, x="T", y="r", xlabel="T", ylabel="r", low="lo", high="hi").axes[0]
    ys = ax.collections[0].get_paths()[0].vertices[:, 1]
    assert {0.9, 1.5, 1.2, 2.5} <= set(np.round(ys, 6)) and ys.max() == 2.5 and ys.min() == 0.9
    assert [list(line.get_ydata()) for line in ax.get_lines() if line.get_linestyle() == ":"] == [[1.0, 1.0]]


def test_exponents_put_the_papers_value_beside_the_estimate():
    """The black cross is the paper's Table 3 value, the dot the fitted exponent, the bar its interval."""
    comparison = pd.DataFrame({"parameter": "exponent", "group": "tnl", "law": "L(C)", "paper": -0.05,
                               "estimate": -0.08, "ci_low": -0.1, "ci_high": -0.06}, index=[0])
    ax = plotting.plot_exponents(comparison).axes[0]
    marks = {line.get_marker(): list(line.get_xdata()) for line in ax.get_lines()}
    assert marks["x"] == [-0.05] and marks["o"] == [-0.08]
    assert [list(line.get_xdata()) for line in ax.get_lines() if len(line.get_xdata()) == 2] == [[-0.1, -0.06]]


def test_exponents_key_names_the_papers_crosses_once_whichever_architecture_comes_first():
    """The legend says what the black crosses are, once, also when the first architecture (LLaMA) has no row for
    the first law (the key was labelled by the first row only, so it was empty)."""
    for laws_ in (["L(C)", "L(C)"], ["L(C)", "N_opt(C)"]):
        comparison = pd.DataFrame({"parameter": "exponent", "group": ["tnl", "llama"], "law": laws_, "paper": -0.05,
                                   "estimate": [-0.08, -0.07], "ci_low": -0.1, "ci_high": -0.06})
        fig = plotting.plot_exponents(comparison)
        assert [t.get_text() for legend in fig.legends for t in legend.get_texts()] == ["paper"], laws_


def test_tick_labels_read_as_numbers():
    """Context lengths such as 2048 read as written (not 2.05e+03); large and small values as powers of ten."""
    assert [plotting._plain(v) for v in (2048, 64, 0.5, 0)] == ["2048", "64", "0.5", "0"]
    assert plotting._plain(1e5) == "$10^{5}$" and plotting._plain(2.5e-3) == "$2.5\\times10^{-3}$"


# ----------------------------------------------------------------------------- what a mutation audit found unpinned


def test_architecture_colours_can_be_told_apart():
    """One colour per architecture, far enough apart to tell lines apart where they overlap: the colour-blind
    palette's orange and vermilion (TNL's and the next one's) were not, so no two colours may be that close."""
    import itertools

    import matplotlib.colors as mc

    assert set(plotting.ARCH_COLORS) >= set(plotting.ARCH_ORDER)
    rgb = {a: np.array(mc.to_rgb(plotting.ARCH_COLORS[a])) for a in plotting.ARCH_ORDER}
    orange, vermilion = (np.array(mc.to_rgb(c)) for c in ("#de8f05", "#d55e00"))
    too_close = float(np.linalg.norm(orange - vermilion))
    for a, b in itertools.combinations(plotting.ARCH_ORDER, 2):
        assert np.linalg.norm(rgb[a] - rgb[b]) > 1.5 * too_close, (a, b)
    assert plotting.arch_palette(["tnl", "llama"]) == {"TNL": plotting.ARCH_COLORS["tnl"],
                                                        "LLaMA": plotting.ARCH_COLORS["llama"]}


def test_architectures_come_in_the_papers_order_and_an_unknown_one_last():
    """Every figure lists the architectures as the paper does (the softmax baseline first), whatever the table's
    row order, and an architecture the palette does not know is drawn after them rather than dropped."""
    fit = _envelope_fit()
    points = pd.concat([fit.points.assign(group=group) for group in ("mamba", "cosformer2", "tnl", "llama")])
    ax = plotting.plot_envelopes(SimpleNamespace(points=points)).axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["LLaMA", "TNL", "cosFormer2", "mamba"]


def test_an_unknown_floor_is_not_drawn():
    """Without the language's exact loss (NaN: a text corpus has none), the envelopes and irreducible-loss
    figures draw no floor line and no legend entry reading 'nan'."""
    ax = plotting.plot_envelopes(_envelope_fit(), bayes_loss=float("nan")).axes[0]
    assert not [line for line in ax.get_lines() if line.get_linestyle() == ":"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["LLaMA", "TNL"]
    table = pd.DataFrame({"arch": ["llama"], "E": [1.2], "ci_low": [1.0], "ci_high": [1.4], "bayes_loss": np.nan})
    ax = plotting.plot_irreducible_loss(table).axes[0]
    assert [line.get_marker() for line in ax.get_lines()] == ["None", "o"] and ax.get_legend() is None


def test_metric_against_joins_the_checkpoints_of_each_run_and_takes_the_callers_label():
    """With a run_id column each run is its own line (two runs of an architecture are not joined into one
    zigzag), and ``ylabel`` names the y axis (the metric's column name only without it)."""
    df = pd.DataFrame({"arch": ["llama"] * 4, "run_id": ["l1", "l1", "l2", "l2"], "pf_days": [1e-4, 1e-3] * 2,
                       "acc": [0.3, 0.4, 0.35, 0.5]})
    ax = plotting.plot_metric_against(df, x="pf_days", metric="acc", ylabel="accuracy").axes[0]
    assert [list(line.get_ydata()) for line in ax.get_lines()] == [[0.3, 0.4], [0.35, 0.5]]
    assert ax.get_ylabel() == "accuracy"
    assert plotting.plot_metric_against(df, x="pf_days", metric="acc").axes[0].get_ylabel() == "acc"


def test_empty_tables_draw_a_sentence_not_an_error():
    """A study run without ablations has empty seed and ablation tables: their figures say so in words."""
    empty = pd.DataFrame({"arch": [], "seq_len": [], "loss": []})
    ax = plotting.plot_metric_against(empty, x="seq_len", metric="loss").axes[0]
    assert [t.get_text() for t in ax.texts] == ["no runs in this table"] and not ax.get_lines()
    ax = plotting.plot_seed_spread(pd.DataFrame({"arch": [], "loss": []}), tolerance=0.01).axes[0]
    assert [t.get_text() for t in ax.texts] == ["no seeds ablation in this study"] and not ax.get_lines()


def test_niah_heatmaps_name_the_context_axis_and_the_value_on_the_key():
    niah = pd.DataFrame({"arch": "llama", "context": [32, 128], "depth": 0, "recall": [1.0, 0.5]})
    fig = plotting.plot_niah_heatmaps(niah, value="recall")
    ax, bar = fig.axes
    assert ax.get_xlabel() == "context length (tokens)" and bar.get_ylabel() == "recall"
    assert plotting.plot_niah_heatmaps(niah.rename(columns={"recall": "score"})).axes[1].get_ylabel() == "accuracy"


def test_noise_trend_keys_the_dot_sizes_and_leaves_room_above_the_dots():
    """The key says how many seeds a dot's size stands for, a dot's area grows with the square of that count
    (two and three seeds could not be told apart otherwise), and the dots sit in the lower half of the log axis,
    under the legend."""
    cells = pd.DataFrame({"arch": ["llama", "tnl"], "params": [1e3, 1e4], "sd": [0.01, 0.02], "runs": [2, 3]})
    ax = plotting.plot_noise_trend(cells).axes[0]
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts == ["LLaMA", "TNL", "2 seeds", "3 seeds"]
    key = {c.get_label(): float(c.get_sizes()[0]) for c in ax.collections if c.get_label().endswith("seeds")}
    assert key["3 seeds"] / key["2 seeds"] == pytest.approx((3 / 2) ** 2)
    low, high = ax.get_ylim()
    assert np.log10(0.02) < (np.log10(low) + np.log10(high)) / 2


def test_role_excess_draws_the_roles_it_has_from_zero_with_every_reference_in_the_legend():
    """A role the table lacks gets no empty panel; a reference level given for a later role only is drawn in
    that panel alone and still named in the one legend; excess loss is read from 0."""
    finals = pd.DataFrame({"arch": "llama", "role": ["value", "value", "key", "key"], "params": [1e3, 2e3] * 2,
                           "excess": [0.3, 0.2, 0.6, 0.4], "main": True})
    fig = plotting.plot_role_excess(finals, ["value", "key", "absent"], reference={"key": 0.5})
    panels = {ax.get_title(): ax for ax in fig.axes}
    assert list(panels) == ["value", "key"]
    assert [line.get_label() for line in panels["value"].get_lines()] == ["LLaMA"]
    assert [list(line.get_ydata()) for line in panels["key"].get_lines()
            if line.get_label() == "not reading the document"] == [[0.5, 0.5]]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["LLaMA", "not reading the document"]
    assert all(ax.get_ylim()[0] == 0 for ax in panels.values())


def test_grouped_bars_name_each_level_once_in_the_legend():
    df = pd.DataFrame({"arch": ["llama", "tnl"] * 2, "task": ["a"] * 2 + ["b"] * 2, "score": [0.5, 0.6, 0.7, 0.8],
                       "floor": [0.25, 0.25, 0.2, 0.2], "copy": [0.1, 0.1, 0.3, 0.3]})
    ax = plotting.plot_grouped_bars(df, x="task", y="score", ylabel="accuracy", chance="floor", baseline="copy").axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["LLaMA", "TNL", "copy baseline", "chance"]


def test_ratio_lines_log_y_only_when_asked():
    df = pd.DataFrame({"arch": "tnl", "T": [256, 512], "r": [1.0, 2.0]})
    for logy, scale in ((False, "linear"), (True, "log")):
        ax = plotting.plot_ratio_lines(df, x="T", y="r", xlabel="T", ylabel="r", logy=logy).axes[0]
        assert (ax.get_xscale(), ax.get_yscale()) == ("log", scale)


def _three_law_fit(identified):
    """An approach-1 fit of LLaMA and TNL with points for each of the three laws; ``identified``: the params'
    column (None: a table without one)."""
    compute = np.array([1e-4, 1e-3, 1e-2])
    points = pd.concat([pd.DataFrame({"law": law, "group": arch, "compute": compute, "observed": base * compute ** 0.1,
                                      "fitted": 0.9 * base * compute ** 0.1})
                        for law, base in (("L(C)", 3.0), ("N_opt(C)", 1e5), ("D_opt(C)", 1e7))
                        for arch in ("llama", "tnl")], ignore_index=True)
    params = pd.DataFrame([(arch, law) for law in ("L(C)", "N_opt(C)", "D_opt(C)") for arch in ("llama", "tnl")],
                          columns=["group", "law"])
    if identified is not None:
        params["identified"] = params.apply(lambda r: identified.get((r["group"], r["law"]), True), axis=1)
    return SimpleNamespace(points=points, params=params)


def test_law_panels_note_the_laws_left_undrawn_and_draw_the_rest():
    """The legend cell names, per architecture, the shown laws the design check does not identify; a law whose
    check gave no answer (NaN) or a parameter table without the check is drawn; every panel labels its x ticks
    (the legend fills the fourth cell, so the first row's panels have none below them)."""
    import matplotlib.colors as mc

    def dashed(fig):
        return {(ax.get_title(), mc.to_hex(line.get_color())) for ax in fig.axes for line in ax.get_lines()
                if line.get_linestyle() == "--"}

    every = {(law, plotting.ARCH_COLORS[a]) for law in ("L(C)", "N_opt(C)", "D_opt(C)") for a in ("llama", "tnl")}
    fig = plotting.plot_law_panels(_three_law_fit({("llama", "N_opt(C)"): False, ("tnl", "D_opt(C)"): np.nan}))
    assert dashed(fig) == every - {("N_opt(C)", plotting.ARCH_COLORS["llama"])}
    legend = [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]
    assert legend == ["LLaMA", "TNL", "the fitted law", "not identified, no law:\nLLaMA: N_opt"]
    fig.canvas.draw()
    for ax in fig.axes[:3]:
        assert [t for t in ax.get_xticklabels() if t.get_visible() and t.get_text()], ax.get_title()
    fig = plotting.plot_law_panels(_three_law_fit({("llama", "N_opt(C)"): False}), law_names=("L(C)",))
    legend = [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]
    assert legend == ["LLaMA", "TNL", "the fitted law"]  # N_opt is not shown: nothing to note
    assert dashed(plotting.plot_law_panels(_three_law_fit(None))) == every


def test_isoflop_crosses_mark_each_budgets_minimum_at_its_loss():
    """A black cross per budget at (the parabola's N_opt, the loss at that budget's minimum)."""
    compute = [1e-3, 1e-2]
    points = pd.concat([
        pd.DataFrame({"law": "isoflop profile", "compute": np.repeat(compute, 3), "params": [1e3, 2e3, 4e3] * 2,
                      "observed": [3.0, 2.8, 2.9, 2.6, 2.5, 2.55], "fitted": np.nan}),
        pd.DataFrame({"law": "N_opt(C)", "compute": compute, "params": np.nan, "observed": [1.9e3, 2.2e3],
                      "fitted": [2e3, 2.1e3]}),
        pd.DataFrame({"law": "L(C)", "compute": compute, "params": np.nan, "observed": [2.79, 2.49],
                      "fitted": [2.8, 2.5]})]).assign(group="tnl")
    ax = plotting.plot_isoflop_profiles(SimpleNamespace(points=points)).axes[0]
    [crosses] = [line for line in ax.get_lines() if line.get_marker() == "x"]
    assert list(crosses.get_xdata()) == [1.9e3, 2.2e3] and list(crosses.get_ydata()) == [2.79, 2.49]


def test_exponents_put_the_first_architecture_on_top():
    comparison = pd.DataFrame({"parameter": "exponent", "group": ["tnl", "llama"], "law": "L(C)", "paper": -0.05,
                               "estimate": [-0.08, -0.07], "ci_low": -0.1, "ci_high": -0.06})
    ax = plotting.plot_exponents(comparison).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["LLaMA", "TNL"]
    bottom, top = ax.get_ylim()
    assert top < 0 < 1 < bottom  # row 0 (LLaMA) at the top


def test_the_legibility_check_wants_two_labelled_ticks_on_a_log_axis():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3), dpi=plotting.DPI)
    ax.plot([2, 30], [1, 2])
    ax.set_xscale("log")
    ax.set_xticks([10], ["10"])
    ax.xaxis.set_minor_formatter(plt.NullFormatter())
    assert "log x axis with 1 labelled tick(s)" in "\n".join(plotting.legibility_problems(fig))
    plt.close(fig)


def test_ten_thousand_reads_as_a_power_of_ten():
    assert [plotting._plain(v) for v in (9999, 1e4, 3e4)] == ["9999", "$10^{4}$", "$3\\times10^{4}$"]


def test_one_log_axis_reads_in_one_notation():
    """An axis from 500 to 20000 read "500, 1000, 2000, 5000, $10^4$": once one label it shows must be a
    power of ten, all are; an axis whose labels are all plain stays plain; whole numbers under 10^5 that
    are the ticks themselves (context lengths up to 16384) are written out."""
    import matplotlib.pyplot as plt

    for values, powers in (([500, 600, 20000], True), ([63.71, 91.23, 2011.5], False)):  # decade ticks, 2 and 5
        fig, ax = plt.subplots(figsize=(6, 3), dpi=plotting.DPI)
        ax.plot(values, range(3))
        plotting._log_axis(ax, "x", values)
        fig.canvas.draw()
        labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text() and plotting._within_axis(ax, "x", t)]
        assert ("$10^{3}$" if powers else "1000") in labels and len(labels) >= 3, labels
        assert all(label.startswith("$") == powers for label in labels), labels
        plt.close(fig)
    lengths = [512, 1024, 2048, 4096, 8192, 16384]  # context lengths are ticks, written out as numbers
    fig, ax = plt.subplots(figsize=(6, 3), dpi=plotting.DPI)
    ax.plot(lengths, range(6))
    plotting._log_axis(ax, "x", lengths)
    fig.canvas.draw()
    assert [t.get_text() for t in ax.get_xticklabels()] == [str(n) for n in lengths]
    plt.close(fig)


def test_three_panels_leave_no_empty_fourth():
    """Panels come two to a row; a third architecture's row has no empty frame beside it."""
    niah = pd.DataFrame({"arch": ["llama", "tnl", "hgrn2"], "context": 64, "depth": 0, "score": 0.5})
    fig = plotting.plot_niah_heatmaps(niah)
    assert [ax.get_title() for ax in fig.axes] == ["LLaMA", "TNL", "HGRN2", ""]  # the last: the colour key


def test_log_axes_skip_non_positive_values_and_give_long_labels_decades():
    """A zero (a step-0 checkpoint) does not cost the round values their ticks; six parameter counts whose
    labels do not fit side by side get decade ticks rather than six crowded labels."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([64, 128, 256], [1, 2, 3])
    plotting._log_axis(ax, "x", [0, 64, 128, 256])
    assert [float(v) for v in ax.get_xticks()] == [64.0, 128.0, 256.0]
    plt.close(fig)
    counts = [3712, 13056, 28672, 65536, 130896, 262144]
    fig, ax = plt.subplots()
    ax.plot(counts, range(6))
    plotting._log_axis(ax, "x", counts)
    fig.canvas.draw()
    labelled = [t.get_text() for t in ax.get_xticklabels() if t.get_text() and plotting._within_axis(ax, "x", t)]
    assert "$10^{4}$" in labelled and "3712" not in labelled
    plt.close(fig)


def test_the_legibility_check_flags_text_just_under_the_smallest_size_and_ignores_hidden_axes():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(plotting.WIDTH, 3), dpi=plotting.DPI)  # shown at its drawn size
    ax.set_xlabel("nearly", fontsize=8.5)
    assert any(p.startswith("text 'nearly' at") for p in plotting.legibility_problems(fig))
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(plotting.WIDTH, 2), dpi=plotting.DPI)
    ax.axis("off")  # its tick labels are not drawn, so a note where they would be overlaps nothing
    ax.text(0.0, -0.04, "a note where the tick labels would be", transform=ax.transAxes, va="top")
    assert plotting.legibility_problems(fig) == []
    plt.close(fig)


def test_loss_curves_name_the_x_axis_of_the_bottom_panels():
    runs = pd.DataFrame({"arch": "llama", "size": "s1", "params": 1000, "tokens": [1e3, 1e4], "pf_days": [1e-4, 1e-3],
                         "train_loss": [3.0, 2.5]})
    assert plotting.plot_loss_curves(runs, x="pf_days").axes[0].get_xlabel() == "compute C (PF-days)"
    assert plotting.plot_loss_curves(runs).axes[0].get_xlabel() == "tokens D"


def test_the_legibility_check_measures_text_at_the_size_a_wide_figure_is_shrunk_to():
    """A figure wider than the column is shown shrunk to it: its 10 pt label reads at 10 · 672/1200 · 100/96."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(12, 3), dpi=plotting.DPI)
    ax.set_xlabel("shrunk", fontsize=10)
    shown = 10 * plotting.COLUMN_PX / 1200 * plotting.DPI / 96
    assert f"text 'shrunk' at {shown:.1f} pt, smaller than 9.0 pt" in plotting.legibility_problems(fig)
    plt.close(fig)


def test_ratio_ticks_over_two_decades_are_one_two_five_steps():
    """Over a range of 100 the ticks are 1-2-5 steps (0.1, 0.2, 0.5, 1, ...), not the finer steps of a narrower
    range, which would crowd a log axis."""
    ratio = pd.DataFrame({"arch": ["tnl"] * 3, "T": [1024, 4096, 16384], "r": [0.1, 1.0, 10.0]})
    fig = plotting.ratio_ticks(plotting.plot_ratio_lines(ratio, x="T", y="r", xlabel="T", ylabel="r", logy=True),
                               ratio["r"])
    mantissas = {round(float(v) / 10 ** np.floor(np.log10(float(v))), 6) for v in fig.axes[0].get_yticks()}
    assert mantissas == {1.0, 2.0, 5.0}


def test_the_role_figure_of_a_study_without_a_role_table_does_not_say_it_is_not_the_synthetic_language():
    """A re-run of the synthetic language committed before the study wrote roles.parquet (2026-12-03-seed6) was told
    'roles exist for the synthetic language only', as if it had trained on other text."""
    from linscale import findings

    fig = plotting.plot_role_excess(findings.role_finals(None), findings.ROLE_SKILLS)
    text = " ".join(t.get_text() for t in fig.axes[0].texts).replace("\n", " ")
    plotting.plt.close(fig)
    assert "committed before it did so has none" in text
