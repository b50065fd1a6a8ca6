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

PRESET = "cpu"


@pytest.fixture(scope="module")
def figures():
    runs = results.read_runs(PRESET, "results")
    envelope = findings.try_fit(runs, "approach1").fit
    scores = findings.downstream_table(results.read_eval(PRESET, "results"), runs)
    largest = findings.compare_at_largest(scores, ["knowledge_acc", "niah_easy_wa", "niah_standard_wa", "mqar_acc"])
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
        "plot_grouped_bars": plotting.plot_grouped_bars(findings.retrieval_long(largest), x="task", y="score",
                                                        ylabel="accuracy"),
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
