"""The design check (linscale.design): simulated grids, known laws, the study's own fits."""
from __future__ import annotations

import copy
import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest

from linscale.config import ConfigError
from linscale.probes import benchmark_script
from linscale.design import (A_VALUES, ENVELOPE, Law, check_design, checked_by, fit_settings, grid_points,
                             holdout_bounds, holdout_expectation, reference_law, simulate, true_allocation)
from linscale.train.settings import resolve_preset

FIRST_GRID = Path(__file__).parent / "data" / "cpu_first_grid.yaml"


def write_probe_fits(folder: Path, column: str, reference: str, variant: str, misfits) -> None:
    """A refit probe's fits.csv as its script writes it: TNL and LLaMA with committed misfits 0.02 and 0.01
    (``reference`` rows) and ``misfits`` (TNL's, LLaMA's) for ``variant``; a stale ratio column of 9 that
    the readers must not trust."""
    import pandas as pd

    pd.DataFrame({"arch": ["tnl", "tnl", "llama", "llama"], column: [reference, variant] * 2,
                  "misfit": [0.02, misfits[0], 0.01, misfits[1]], "ratio": [None, 9.0, None, 9.0]}
                 ).to_csv(folder / "fits.csv", index=False)


def test_law_variants_keep_the_optimum_and_turn_the_allocation():
    """with_allocation(a, C6): same E, same α+β, same (N_opt, D_opt, loss) at C6, allocation exponent a."""
    ref = Law(E=1.3, A=2.4, B=7.8e5, alpha=0.24, beta=1.13)
    n0, d0 = ref.optimum(3e11)
    for a in A_VALUES:
        law = ref.with_allocation(a, 3e11)
        n, d = law.optimum(3e11)
        assert law.a == pytest.approx(a)
        assert law.alpha + law.beta == pytest.approx(ref.alpha + ref.beta)
        assert (n, d) == (pytest.approx(n0, rel=1e-9), pytest.approx(d0, rel=1e-9))
        assert law.loss(n, d) == pytest.approx(ref.loss(n0, d0), rel=1e-12)
        # and it is the optimum: moving N along C6 = N·D only raises the loss
        assert law.loss(n * 1.5, d / 1.5) > law.loss(n, d) < law.loss(n / 1.5, d * 1.5)


def test_grid_points_follow_the_preset():
    """Every checkpoint of every run, with the study's FLOPs and each size's own token budget."""
    points = grid_points("cpu")
    preset = resolve_preset("cpu")
    assert set(points["run_id"]) == {f"{a}-{s}" for a in preset["archs"] for s in preset["sizes"]}
    last = points.sort_values("step").groupby("run_id").tail(1).set_index("run_id")
    for size, shape in preset["sizes"].items():
        assert last.loc[f"llama-{size}", "tokens"] == pytest.approx(float(shape["train"]["tokens"]), rel=0.001)
    assert (points["flops"] == points["flops_per_token"] * points["tokens"]).all()


def test_true_allocation_counts_flops_as_the_study_does():
    """With FLOPs exactly 6N per token, the allocation exponent under the study's accounting is the law's."""
    points = grid_points("cpu")
    points = points[points["arch"] == "tnl"].copy()
    points["flops_per_token"] = 6 * points["params"]
    points["flops"] = points["flops_per_token"] * points["tokens"]
    law = Law(E=1.3, A=2.4, B=7.8e5, alpha=0.24, beta=1.13)
    assert true_allocation(points, law) == pytest.approx(law.a, abs=0.02)


def test_simulated_noise_has_the_asked_size():
    points = grid_points("cpu")
    law = reference_law(resolve_preset("cpu"), "llama")
    clean = simulate(points, law, {"run": 0.0, "checkpoint": 0.0}, np.random.default_rng(0))
    noisy = simulate(points, law, {"run": 0.0, "checkpoint": 0.01}, np.random.default_rng(0))
    ratio = np.log(noisy["train_loss"] / clean["train_loss"])
    assert ratio.std() == pytest.approx(0.01, rel=0.15)


def test_cpu_grid_identifies_the_laws_and_the_first_grid_does_not():
    """On the cpu preset (simulated from its reference law) every neighbouring pair of sizes crosses,
    every approach recovers TNL's allocation exponent and approach 3 LLaMA's, with E fixed for every a in
    0.5, 0.7, 0.85; on the first cpu grid (every size on the same 3M tokens) no pair crosses, so the envelope and
    approach 1 are not identified."""
    tnl = check_design("cpu", replicates=2, archs=["tnl"]).verdicts().set_index("method")
    for method in (ENVELOPE, "approach1", "approach2", "approach3", "approach3_fixed_e"):
        assert tnl.loc[method, "identified"], (method, tnl.loc[method, "reason"])
    # LLaMA's attention FLOPs bend its N_opt(C) at these widths: approach 3 still recovers a, and the
    # envelope's crossovers exist; approach 2's verdict is whatever the rule says (it sits at the margin)
    new = check_design("cpu", replicates=2, archs=["llama"]).verdicts().set_index("method")
    assert new.loc[ENVELOPE, "identified"], new.loc[ENVELOPE, "reason"]
    for method in ("approach3", "approach3_fixed_e"):
        assert new.loc[method, "identified"], (method, new.loc[method, "reason"])
    assert new.loc["approach3_fixed_e", "also_identified"] == ", ".join(f"{a:g}" for a in A_VALUES)

    old = check_design(FIRST_GRID, replicates=2, archs=["llama"]).verdicts().set_index("method")
    assert not old.loc[ENVELOPE, "identified"] and "never cross" in old.loc[ENVELOPE, "reason"]
    assert not old.loc["approach1", "identified"]


def test_the_design_check_fits_approach1_over_the_compute_the_study_fits_it_over(monkeypatch):
    """The study fits approach 1 inside the FLOPs every architecture's runs span (common_compute_range);
    the check simulates one architecture at a time, so it must take that range from the whole grid, or it
    would check each envelope over a range the study does not fit (on the cpu grid the common range made
    HGRN2's approach 1 identified)."""
    from linscale import design
    from linscale.laws.suite import common_compute_range

    points = grid_points("cpu")
    expected = common_compute_range(points, int(points["warmup_steps"].max()))
    assert expected is not None and expected[0] > points["flops"].min() and expected[1] < points["flops"].max()
    seen = []

    class Enough(Exception):
        pass

    def recovered(runs, settings, arch):
        seen.append(settings.compute_range)
        raise Enough

    monkeypatch.setattr(design, "_recovered", recovered)
    with pytest.raises(Enough):
        check_design("cpu", replicates=1, archs=["tnl"])  # one architecture's check: the whole grid's range
    studies = design.simulated_studies("cpu", (), 1, None, 0, ["llama"], 4)
    assert seen == [expected] and next(studies)[3].compute_range == expected


def test_e_free_recovers_a_true_laws_floor_without_misfit_and_loses_it_with_one():
    """e_free_expectation: approach 3 with E free on simulated cpu studies of LLaMA's reference law finds E
    almost exactly without noise; when every run also misses the law by 5% (a misfit far beyond the seed
    noise) it misses E by more than the design check's 5% in some studies."""
    from linscale.design import E_TOLERANCE, e_free_expectation, language_entropy

    clean = e_free_expectation("cpu", replicates=1, archs=["llama"], noise={"run": 0, "checkpoint": 0})
    assert len(clean) == 1 and clean["E_true"].iloc[0] == pytest.approx(language_entropy(resolve_preset("cpu")))
    assert abs(clean["error"].iloc[0]) < 1e-3, clean
    missed = e_free_expectation("cpu", replicates=4, archs=["llama"], noise={"run": 0.05}, seed=1)
    assert list(missed["replicate"]) == [0, 1, 2, 3] and missed["E"].notna().all()
    assert (missed["error"].abs() > E_TOLERANCE).any(), missed


def test_a_true_law_predicts_held_out_runs_within_the_design_bound_and_a_broken_one_does_not():
    """holdout_expectation: the study's hold-out check on simulated cpu studies of LLaMA's reference law.
    Without noise the refits predict the held-out final losses almost exactly; with the design noise
    within a few percent. A study whose top compute decade sits 4% above the law (a form that does not
    describe its largest runs) misses by more than that bound, and holdout_against_design says so."""
    from linscale.findings.laws import holdout_against_design
    from linscale.laws.suite import holdout_check, windowed

    clean = holdout_bounds(holdout_expectation("cpu", replicates=1, archs=["llama"], noise={"run": 0, "checkpoint": 0}))
    assert (clean["fitted"] == 1).all() and (clean["bound"] < 0.003).all(), clean
    bounds = holdout_bounds(holdout_expectation("cpu", replicates=4, archs=["llama"]))
    assert set(bounds["method"]) == {"approach3", "approach3_fixed_e"}
    assert (bounds["fitted"] == 4).all() and (bounds["bound"] < 0.03).all() and (bounds["bound"] > 0.002).all()

    preset = resolve_preset("cpu")
    points = grid_points(preset)
    law = reference_law(preset, "llama")
    runs = simulate(points[points["arch"] == "llama"], law, {"run": 0.0, "checkpoint": 0.0}, np.random.default_rng(1))
    settings = fit_settings(preset, bootstrap=0)
    honest = holdout_against_design(holdout_check(windowed(runs, settings), settings), bounds)
    assert not honest["beyond_design"].astype(bool).any() and honest["within_target"].all(), honest
    top = runs["flops"] > runs["flops"].max() / 10
    broken = runs.assign(train_loss=runs["train_loss"].where(~top, runs["train_loss"] * 1.04))
    verdict = holdout_against_design(holdout_check(windowed(broken, settings), settings), bounds)
    assert verdict["beyond_design"].astype(bool).all() and not verdict["within_target"].any(), verdict
    assert (verdict["bias"] < -0.02).all()  # the runs sit above the law: it predicts less loss than they reach
    # without a design check there is nothing to read the errors against
    assert holdout_against_design(holdout_check(windowed(runs, settings), settings), None)["beyond_design"].isna().all()


def test_holdout_bounds_are_the_asked_quantile_of_the_refits_that_succeeded():
    import pandas as pd

    draws = pd.DataFrame(dict(arch="tnl", method="approach3", replicate=range(21),
                              worst=[*np.linspace(0.0, 0.02, 20), np.nan], runs=3, reason=""))
    row = holdout_bounds(draws).iloc[0]
    assert (row["replicates"], row["fitted"]) == (21, 20)  # a failed refit counts, but has no error
    assert row["bound"] == pytest.approx(np.quantile(np.linspace(0.0, 0.02, 20), 0.95))
    assert row["median"] == pytest.approx(0.01)
    assert holdout_bounds(draws, quantile=0.5).iloc[0]["bound"] == pytest.approx(0.01)


def test_a_preset_without_a_reference_law_is_a_clear_error():
    from linscale.config import ConfigError

    with pytest.raises(ConfigError, match="design.law"):
        check_design("smoke", replicates=1)


def test_which_check_covers_which_law():
    assert checked_by("approach1", "L(C)") == ENVELOPE == checked_by("approach1_excess", "L(C)-E")
    assert checked_by("approach1", "N_opt(C)") == "approach1" == checked_by("approach1_excess", "D_opt(C)")
    assert checked_by("approach3_fixed_e", "N_opt(C)") == "approach3_fixed_e"


def test_the_command_line_and_the_study_check_and_fit_with_the_same_settings():
    """`linscale sweep --check-design` must reprint the design verdicts the study commits, and `linscale
    study --bootstrap` must default to the resamples behind every committed interval: one setting each,
    copied as literals where an import would slow the command line down."""
    from linscale import study
    from linscale.cli import build_parser
    from linscale.design import FITS_BOOTSTRAP, REPLICATES

    assert study.DESIGN_REPLICATES == REPLICATES and study.FITS_BOOTSTRAP == FITS_BOOTSTRAP
    parser = build_parser()
    assert parser.parse_args(["sweep", "--preset", "cpu", "--check-design"]).replicates == REPLICATES
    assert parser.parse_args(["study"]).bootstrap == FITS_BOOTSTRAP


def test_the_interval_probe_is_read_per_architecture_and_design(tmp_path):
    """findings.interval_probe: the noisy designs' widths per architecture and seeds (the noise-free
    check left out), and per architecture the size whose absence moves a most, in either direction."""
    import pandas as pd

    from linscale.findings import interval_probe

    assert interval_probe(tmp_path) is None  # no probe tables: nothing to read
    pd.DataFrame({"arch": ["llama"] * 5, "seeds": [1, 1, 2, 2, 1],
                  "design": ["1 seed per size"] * 2 + ["2 seeds per size"] * 2 + ["1 seed per size, no noise"],
                  "width": [0.010, 0.030, 0.004, 0.006, 0.0]}).to_csv(tmp_path / "simulated.csv", index=False)
    pd.DataFrame({"arch": ["llama"] * 4, "left_out": ["none", "s1", "s2", "s3"], "a": [0.70, 0.66, 0.72, 0.71],
                  "change": [0.0, -0.04, 0.02, 0.01]}).to_csv(tmp_path / "left_out.csv", index=False)
    found = interval_probe(tmp_path)
    sim = found["simulated"].set_index("seeds")
    assert sim.loc[1, "median"] == pytest.approx(0.02) and sim.loc[1, "largest"] == 0.03 and sim.loc[1, "replicates"] == 2
    assert sim.loc[2, "largest"] == 0.006 and len(sim) == 2
    assert found["left_out"].to_dict("records") == [{"arch": "llama", "size": "s1", "a": 0.66, "change": -0.04}]
    assert found["misfit"] is None  # the probe's misfit grids are optional
    pd.DataFrame({"sizes": [6, 6, 12, 12, 6], "seeds": [1, 1, 1, 1, 2], "misfit": [0.02] * 5,
                  "width": [0.3, 0.1, 0.08, 0.12, 0.5], "covers": [True, False, True, True, False]}).to_csv(
        tmp_path / "misfit.csv", index=False)
    misfit = interval_probe(tmp_path)["misfit"].set_index(["sizes", "seeds"])
    assert list(misfit.index) == [(6, 1), (6, 2), (12, 1)] and misfit.loc[(6, 1), "median"] == pytest.approx(0.2)
    assert misfit.loc[(12, 1), "largest"] == 0.12 and misfit.loc[(6, 2), "replicates"] == 1
    assert list(misfit["covered"]) == [1, 0, 2]  # how often the interval holds the true a


def test_the_lr_probe_rule_reaches_each_verdict_and_is_read_from_its_tables(tmp_path):
    """findings.lr_misfit_verdict (benchmarks/probe_lr_misfit.py's registered rule): every ratio at most
    0.5 explains, every one at least 0.8 does not, a mix is partly, a missing ratio inconclusive; and
    findings.lr_probe computes the ratios from the probe's fits table, not from its own column."""
    import pandas as pd

    from linscale.findings import lr_misfit_verdict, lr_probe

    assert lr_misfit_verdict({"llama": 0.5, "tnl": 0.2}) == "explains"
    assert lr_misfit_verdict({"llama": 0.8, "tnl": 1.3}) == "does not explain"
    assert lr_misfit_verdict({"llama": 0.4, "tnl": 0.9}) == "partly"
    assert lr_misfit_verdict({"llama": 0.6, "tnl": 0.7}) == "partly"
    assert lr_misfit_verdict({"llama": 0.3, "tnl": float("nan")}) == "inconclusive"
    assert lr_misfit_verdict({}) == "inconclusive"

    assert lr_probe(tmp_path) is None  # no probe tables: nothing to read
    pd.DataFrame({"arch": ["llama", "llama"], "size": ["s1", "s2"], "val_0.5x": [1.8, 1.7], "val_1x": [1.9, 1.7],
                  "val_2x": [2.0, 1.75], "best": [0.5, 1.0], "gain": [0.05, 0.0]}).to_csv(tmp_path / "losses.csv",
                                                                                          index=False)
    pd.DataFrame({"arch": ["llama", "llama", "tnl", "tnl"], "runs": ["rule LR", "best LR"] * 2,
                  "a": [0.7, 0.8, 0.75, 0.76], "misfit": [0.02, 0.006, 0.03, 0.027],
                  "ratio": [None, 0.99, None, 0.99]}).to_csv(tmp_path / "fits.csv", index=False)
    pd.DataFrame({"arch": ["llama"], "run_id": ["llama-s1"], "size": ["s1"], "residual": [0.01],
                  "runs": ["rule LR"]}).to_csv(tmp_path / "residuals.csv", index=False)
    found = lr_probe(tmp_path)
    assert found["ratios"] == pytest.approx({"llama": 0.3, "tnl": 0.9})
    assert found["verdict"] == "partly" and list(found["losses"]["best"]) == [0.5, 1.0]
    assert found["ends"] is None  # the after-the-fact table is optional


def test_the_embedding_probe_rule_reaches_each_verdict():
    """findings.embedding_verdict (benchmarks/probe_total_params.py's registered rule), per architecture: a
    misfit ratio (total count over non-embedding) at most 0.5 explains, at least 0.8 does not, between is
    partly, missing inconclusive."""
    from linscale.findings import EMBEDDING_DOES_NOT, EMBEDDING_EXPLAINS, embedding_verdict

    assert (EMBEDDING_EXPLAINS, EMBEDDING_DOES_NOT) == (0.5, 0.8)  # the registered thresholds
    assert embedding_verdict({"tnl": 0.5, "llama": 0.8, "hgrn2": 0.79, "cosformer2": float("nan")}) == {
        "tnl": "explains", "llama": "does not explain", "hgrn2": "partly", "cosformer2": "inconclusive"}
    assert embedding_verdict({"tnl": 0.51})["tnl"] == "partly"
    assert embedding_verdict({"tnl": 1.3})["tnl"] == "does not explain"


def test_the_law_form_probe_fits_both_forms_and_its_rule_reaches_each_verdict():
    """benchmarks/probe_law_form.py: both forms' analytic gradients match finite differences, each form's
    fit recovers a noise-free law of its own form on a grid like the cpu one (the separable law's runs,
    fitted by Kaplan's form, miss it: the forms differ), and findings.form_verdict (the registered rule)
    reaches each verdict at its thresholds."""
    import numpy as np

    from linscale.findings import FORM_DOES_NOT, FORM_EXPLAINS, form_verdict

    assert (FORM_EXPLAINS, FORM_DOES_NOT) == (0.5, 0.8)  # the registered thresholds
    assert form_verdict({"tnl": 0.5, "llama": 0.8, "hgrn2": 0.79, "cosformer2": float("nan")}) == {
        "tnl": "explains", "llama": "does not explain", "hgrn2": "partly", "cosformer2": "inconclusive"}
    probe = benchmark_script("probe_law_form")
    n = np.repeat([1e3, 3.5e3, 6.7e3, 1.4e4, 4e4, 1.2e5], 12)
    d = np.tile(np.geomspace(2e5, 8e6, 12), 6)
    log_n, log_d, log_e = np.log(n), np.log(d), np.log(1.5)
    truth = {"separable": np.array([np.log(2.1), np.log(5.7e5), 0.23, 1.1]),
             "kaplan": np.array([np.log(30.0), np.log(3e4), 0.35, 0.6])}
    for form, theta in truth.items():
        log_loss = probe.predicted_log_loss(form, theta, log_n, log_d, log_e)[0] + 0.01 * np.sin(np.arange(72))
        value, grad = probe.huber(theta, form, log_n, log_d, log_loss, log_e)
        for i in range(4):
            step = np.zeros(4)
            step[i] = 1e-6
            numeric = (probe.huber(theta + step, form, log_n, log_d, log_loss, log_e)[0]
                       - probe.huber(theta - step, form, log_n, log_d, log_loss, log_e)[0]) / 2e-6
            assert numeric == pytest.approx(grad[i], rel=1e-4, abs=1e-9)
    residual = {}
    for form, theta in truth.items():
        exact = probe.predicted_log_loss(form, theta, log_n, log_d, log_e)[0]
        for fitted_form in truth:
            got = probe.fit_form(fitted_form, log_n, log_d, exact, log_e)
            residual[form, fitted_form] = np.abs(probe.predicted_log_loss(fitted_form, got, log_n, log_d, log_e)[0]
                                                 - exact).max()
    assert residual["separable", "separable"] < 1e-4 and residual["kaplan", "kaplan"] < 1e-4
    assert residual["separable", "kaplan"] > 1e-3  # the forms are not the same law


def test_the_law_form_probe_is_read_from_its_tables(tmp_path):
    """findings.form_probe recomputes the ratios from the fits table's misfits (not its own ratio column)
    and the verdicts by the registered rule; it adopts Kaplan's form only when the separable form explains
    every architecture's misfit."""
    import pandas as pd

    from linscale.findings import form_probe

    assert form_probe(tmp_path) is None  # no probe tables: nothing to read

    def write(kaplan):
        write_probe_fits(tmp_path, "form", "separable", "kaplan", kaplan)
    write((0.005, 0.009))
    pd.DataFrame({"arch": ["tnl"], "size": ["s1"], "residual": [0.01], "form": ["kaplan"]}).to_csv(
        tmp_path / "residuals.csv", index=False)
    assert form_probe(tmp_path) is None  # every table or none: the hold-out table is still missing
    pd.DataFrame({"arch": "tnl", "form": ["separable", "separable", "kaplan"], "run_id": ["tnl-s5", "tnl-s6", "tnl-s6"],
                  "rel_error": [0.01, -0.03, 0.02]}).to_csv(tmp_path / "holdout.csv", index=False)
    found = form_probe(tmp_path)
    assert found["worst"].loc["tnl", "separable"] == pytest.approx(0.03)  # the largest |error|, not the largest error
    assert found["worst"].loc["tnl", "kaplan"] == pytest.approx(0.02)
    assert found["ratios"] == pytest.approx({"tnl": 0.25, "llama": 0.9})
    assert found["verdicts"] == {"tnl": "explains", "llama": "does not explain"}
    assert found["verdict"] == "partly" and not found["adopt"]
    write((0.005, 0.004))
    assert form_probe(tmp_path)["adopt"]


def test_a_probe_report_starts_with_its_command_time_and_machine(monkeypatch):
    """probes.probe_report_head: the title, the command that produced the report (the script under
    benchmarks/ with its arguments) followed by its provenance, the start and end time, and the machine."""
    import datetime as dt

    from linscale import probes

    monkeypatch.setattr(sys, "argv", ["/x/benchmarks/probe_law_form.py", "--tables", "out"])
    head = probes.probe_report_head("Registered probe: X", "the rule is in the docstring.",
                                   dt.datetime(2026, 12, 4, 9, 30, tzinfo=dt.timezone.utc))
    assert head[:3] == ["# Registered probe: X", "",
                        "Produced by `python benchmarks/probe_law_form.py --tables out`; the rule is in the docstring."]
    assert head[4].startswith("- date: 2026-12-04 09:30 UTC (start) to ")
    assert any(line.startswith("- cpu: ") for line in head[5:]) and any(line.startswith("- torch: ") for line in head[5:])


def test_the_finite_knowledge_probe_rule_and_its_language():
    """findings.knowledge_verdict (benchmarks/probe_finite_knowledge.py's registered rule) reaches each
    verdict at its thresholds, and the probe's language is the cpu one with four times the facts and the
    grammar's transition entries (every changed key exists in the preset, and nothing else changes)."""
    from linscale.findings import KNOWLEDGE_DOES_NOT, KNOWLEDGE_EXPLAINS, knowledge_verdict
    from linscale.presets import load_preset

    assert (KNOWLEDGE_EXPLAINS, KNOWLEDGE_DOES_NOT) == (0.5, 0.8)  # the registered thresholds
    assert knowledge_verdict({"tnl": 0.5, "llama": 0.8, "hgrn2": 0.79, "cosformer2": float("nan")}) == {
        "tnl": "explains", "llama": "does not explain", "hgrn2": "partly", "cosformer2": "inconclusive"}
    larger = benchmark_script("probe_finite_knowledge").LARGER
    data = load_preset("cpu")["data"]
    assert set(larger) <= set(data)
    facts = lambda d: d["n_first"] * d["n_last"] * d["n_relations"]
    assert facts({**data, **larger}) == 4 * facts(data) == 32768
    for word in ("n_adj", "n_noun", "n_verb"):
        assert larger[word] ** 2 == 4 * data[word] ** 2


def test_the_finite_knowledge_probe_is_read_from_its_tables(tmp_path):
    """findings.knowledge_probe recomputes the ratios from the fits table's misfits (larger language over
    committed, not its own ratio column) and the verdicts by the registered rule; it adopts the larger
    tables only when they explain every architecture's misfit."""
    import pandas as pd

    from linscale.findings import knowledge_probe

    assert knowledge_probe(tmp_path) is None  # no probe tables: nothing to read

    def write(larger):
        write_probe_fits(tmp_path, "language", "committed", "larger", larger)
    write((0.012, 0.004))
    for name in ("residuals", "by_role"):
        pd.DataFrame({"arch": ["tnl"]}).to_csv(tmp_path / f"{name}.csv", index=False)
    found = knowledge_probe(tmp_path)
    assert found["ratios"] == pytest.approx({"tnl": 0.6, "llama": 0.4})
    assert found["verdicts"] == {"tnl": "partly", "llama": "explains"}
    assert found["verdict"] == "partly" and not found["adopt"]
    write((0.01, 0.005))
    assert knowledge_probe(tmp_path)["adopt"]


def test_the_fit_window_probe_rule_reaches_each_verdict():
    """findings.window_verdict (benchmarks/probe_fit_window.py's registered rule), per architecture: a
    misfit ratio (late-row law over all-row law, on the late rows) at most 0.5 explains, at least 0.8 does
    not, between is partly, missing inconclusive; the probe's window starts at 0.3 of each run."""
    import pandas as pd

    from linscale.findings import WINDOW_DOES_NOT, WINDOW_EXPLAINS, window_verdict

    assert (WINDOW_EXPLAINS, WINDOW_DOES_NOT) == (0.5, 0.8)  # the registered thresholds
    assert window_verdict({"tnl": 0.5, "llama": 0.8, "hgrn2": 0.79, "cosformer2": float("nan")}) == {
        "tnl": "explains", "llama": "does not explain", "hgrn2": "partly", "cosformer2": "inconclusive"}
    probe = benchmark_script("probe_fit_window")
    assert probe.WINDOW_START == 0.3
    runs = pd.DataFrame({"run_id": ["a"] * 4 + ["b"] * 2, "tokens": [10.0, 29.0, 30.0, 100.0, 5.0, 50.0]})
    assert list(probe.late_rows(runs)["tokens"]) == [30.0, 100.0, 50.0]  # 0.3 of each run's own final tokens


def test_the_context_roles_probe_rule_and_its_split_of_the_loss():
    """findings.context_verdict (benchmarks/probe_context_roles.py's registered rule), per architecture: a
    misfit ratio (context-free law over every-label law) at most 0.5 explains, at least 0.8 does not,
    between is partly, missing inconclusive. The probe's split: the parts are share-weighted means of the
    roles' nll, the in-context part holds exactly the three roles that read the document's bindings."""
    import pandas as pd

    from linscale.findings import CONTEXT_DOES_NOT, CONTEXT_EXPLAINS, context_verdict

    assert (CONTEXT_EXPLAINS, CONTEXT_DOES_NOT) == (0.5, 0.8)  # the registered thresholds
    assert context_verdict({"tnl": 0.5, "llama": 0.8, "hgrn2": 0.79, "cosformer2": float("nan")}) == {
        "tnl": "explains", "llama": "does not explain", "hgrn2": "partly", "cosformer2": "inconclusive"}
    probe = benchmark_script("probe_context_roles")
    assert probe.CONTEXT_ROLES == ("binding", "query_variable", "query_value")
    roles = pd.DataFrame({"run_id": "r", "step": 5, "role": ["grammar", "fact_object", "binding", "query_value"],
                          "share": [0.5, 0.25, 0.125, 0.125], "model_nll": [1.0, 3.0, 2.0, 4.0],
                          "bayes_nll": [0.5, 0.0, 1.0, 2.0]})
    parts = probe.part_losses(roles).set_index("part")
    assert parts.loc["every label", "loss"] == 0.5 * 1 + 0.25 * 3 + 0.125 * 2 + 0.125 * 4  # the validation loss
    assert parts.loc["context-free", "loss"] == (0.5 * 1 + 0.25 * 3) / 0.75
    assert parts.loc["context-free", "bayes"] == 0.5 * 0.5 / 0.75
    assert parts.loc["in-context", "loss"] == 3.0 and parts.loc["in-context", "share"] == 0.25


def test_the_context_roles_probe_is_read_from_its_tables(tmp_path):
    """findings.context_probe recomputes the ratios from the fits table's misfits (not its own ratio
    column) and the verdicts by the registered rule, adopts the context-free law only when the in-context
    skills explain every architecture's misfit, and reads the control's largest change."""
    import pandas as pd

    from linscale.findings import context_probe

    assert context_probe(tmp_path) is None  # no probe tables: nothing to read

    def write(free):
        pd.DataFrame({"arch": ["tnl"] * 3 + ["llama"] * 3, "part": ["every label", "context-free", "in-context"] * 2,
                      "a": 0.7, "misfit": [0.02, free[0], 0.5, 0.01, free[1], 0.5], "ratio": 9.0}
                     ).to_csv(tmp_path / "fits.csv", index=False)
    write((0.004, 0.007))
    pd.DataFrame({"arch": ["tnl"], "size": ["s1"], "residual": [0.01], "part": ["context-free"]}).to_csv(
        tmp_path / "residuals.csv", index=False)
    pd.DataFrame({"run_id": ["tnl-s1", "tnl-s2"], "val_loss": [2.0, 1.5], "val_loss_committed": [2.0, 1.503]}).to_csv(
        tmp_path / "control.csv", index=False)
    assert context_probe(tmp_path) is None  # every table or none: by_role is still missing
    pd.DataFrame({"role": ["grammar"], "arch": ["tnl"], "share": [0.09], "misfit": [0.03]}).to_csv(
        tmp_path / "by_role.csv", index=False)
    found = context_probe(tmp_path)
    assert found["ratios"] == pytest.approx({"tnl": 0.2, "llama": 0.7})
    assert found["verdicts"] == {"tnl": "explains", "llama": "partly"}
    assert found["verdict"] == "partly" and not found["adopt"]
    assert found["control_change"] == pytest.approx(1 - 1.5 / 1.503, abs=1e-12)  # the largest |change|
    write((0.004, 0.005))
    assert context_probe(tmp_path)["adopt"]


def test_the_fit_window_probe_is_read_from_its_tables(tmp_path):
    """findings.window_probe recomputes the ratios from the fits table's late-row misfits (not its own
    ratio column) and the verdicts by the registered rule; it adopts the window only when the early
    checkpoints explain every architecture's misfit."""
    import pandas as pd

    from linscale.findings import window_probe

    assert window_probe(tmp_path) is None

    def write(late):
        pd.DataFrame({"arch": ["tnl", "tnl", "llama", "llama"], "fit": ["all rows", "late rows"] * 2,
                      "a": 0.7, "misfit_late": [0.02, late[0], 0.01, late[1]], "ratio": [None, 9.0, None, 9.0]}
                     ).to_csv(tmp_path / "fits.csv", index=False)
    write((0.02, 0.006))
    for name in ("residuals", "intervals", "holdout"):
        pd.DataFrame({"arch": ["tnl"]}).to_csv(tmp_path / f"{name}.csv", index=False)
    found = window_probe(tmp_path)
    assert found["ratios"] == pytest.approx({"tnl": 1.0, "llama": 0.6})
    assert found["verdicts"] == {"tnl": "does not explain", "llama": "partly"}
    assert found["verdict"] == "partly" and not found["adopt"]
    write((0.01, 0.004))
    assert window_probe(tmp_path)["adopt"]


def test_the_embedding_probe_is_read_from_its_tables(tmp_path):
    """findings.embedding_probe recomputes the ratios from the fits table's misfits (not its own ratio
    column), the verdicts by the registered rule, and the worst held-out error per count, method and
    architecture; it adopts the total count only when the count explains every architecture's misfit."""
    import pandas as pd

    from linscale.findings import embedding_probe

    assert embedding_probe(tmp_path) is None  # no probe tables: nothing to read

    def write(misfit_total):
        pd.DataFrame({"arch": ["tnl", "tnl", "llama", "llama"], "count": ["non-embedding", "total"] * 2,
                      "a": [0.75, 0.70, 0.72, 0.64], "misfit": [0.02, misfit_total[0], 0.01, misfit_total[1]],
                      "ratio": [None, 9.0, None, 9.0]}).to_csv(tmp_path / "fits.csv", index=False)
    write((0.016, 0.005))
    pd.DataFrame({"arch": ["tnl"], "run_id": ["tnl-s1"], "size": ["s1"], "residual": [-0.01],
                  "count": ["total"]}).to_csv(tmp_path / "residuals.csv", index=False)
    pd.DataFrame({"count": ["total"], "method": ["approach3"], "arch": ["tnl"], "a": [0.8], "a_low": [0.5],
                  "a_high": [0.9], "a_width": [0.4], "E_over_entropy": [-0.2]}).to_csv(tmp_path / "intervals.csv",
                                                                                    index=False)
    pd.DataFrame({"method": ["approach3_fixed_e"] * 3 + ["approach3"], "arch": ["tnl"] * 4,
                  "rel_error": [0.01, -0.03, None, 0.02], "count": ["total", "total", "total", "non-embedding"],
                  "reason": ["", "", "refit failed", ""]}).to_csv(tmp_path / "holdout.csv", index=False)
    found = embedding_probe(tmp_path)
    assert found["ratios"] == pytest.approx({"tnl": 0.8, "llama": 0.5})
    assert found["verdicts"] == {"tnl": "does not explain", "llama": "explains"}
    assert found["verdict"] == "partly" and not found["adopt"]
    worst = found["worst"].set_index(["count", "method", "arch"])["worst"]
    assert worst[("total", "approach3_fixed_e", "tnl")] == pytest.approx(0.03)  # |-0.03|, the failed row skipped
    assert worst[("non-embedding", "approach3", "tnl")] == pytest.approx(0.02)
    write((0.009, 0.005))
    assert embedding_probe(tmp_path)["adopt"]  # every architecture explained: the next grid counts the embedding


def test_the_holdout_reach_simulation_is_read_per_level(tmp_path):
    """findings.holdout_reach reads benchmarks/probe_holdout_reach.py's tables: the share of simulated
    studies in which all four architectures meet the hold-out target (for the chosen method) and find E
    within 5% (E free), per level, and the fixed misfit levels (one misfit for every architecture) keyed
    by their misfit; without all four tables it reads nothing."""
    import pandas as pd

    from linscale.findings import holdout_reach

    assert holdout_reach(tmp_path) is None
    levels = ["design noise only", "measured, non-embedding count", "0.50%"]
    pd.DataFrame({"level": levels * 2, "method": ["approach3_fixed_e"] * 3 + ["approach3"] * 3,
                  "llama": 0.5, "all_four_within": [0.9, 0.02, 0.4, 0.8, 0.01, 0.3]}).to_csv(tmp_path / "summary.csv",
                                                                                           index=False)
    pd.DataFrame({"level": [lv for lv in levels for _ in range(2)] * 2,
                  "method": ["approach3_fixed_e"] * 6 + ["approach3"] * 6, "arch": ["llama", "tnl"] * 6,
                  "misfit": [0.0, 0.0, 0.0096, 0.0217, 0.005, 0.005] * 2}).to_csv(tmp_path / "per_arch.csv", index=False)
    assert holdout_reach(tmp_path) is None  # the E-free tables are missing
    pd.DataFrame({"level": levels, "llama": 0.5, "all_four_within": [0.95, 0.1, 0.6]}).to_csv(
        tmp_path / "e_summary.csv", index=False)
    pd.DataFrame({"level": [lv for lv in levels for _ in range(2)], "arch": ["llama", "tnl"] * 3,
                  "misfit": [0.0, 0.0, 0.0096, 0.0217, 0.005, 0.005]}).to_csv(tmp_path / "e_per_arch.csv", index=False)
    found = holdout_reach(tmp_path)
    assert found["all_four"] == {"design noise only": 0.9, "measured, non-embedding count": 0.02, "0.50%": 0.4}
    assert found["e_all_four"] == {"design noise only": 0.95, "measured, non-embedding count": 0.1, "0.50%": 0.6}
    assert found["e_fixed"] == {0.005: 0.6}
    assert found["fixed"] == {0.005: 0.4}  # the measured level differs by architecture; the noise-only level is no %
    assert holdout_reach(tmp_path, method="approach3")["fixed"] == {0.005: 0.3}


def test_the_heads_probe_rule_reaches_each_verdict_and_is_read_from_its_tables(tmp_path):
    """findings.heads_verdict (benchmarks/probe_s6_heads.py's registered rule), per architecture: a shrink
    of s6's residual at most 0.5 explains, at least 0.8 does not, between is partly, missing inconclusive;
    findings.heads_probe recomputes the shrinks from the fits table's residuals (not its own columns) and
    keeps 2 heads only when TNL's miss is explained and every 2-head s6 overtakes s5."""
    import pandas as pd

    from linscale.findings import heads_probe, heads_verdict

    assert heads_verdict({"tnl": 0.5, "llama": 0.8, "hgrn2": 0.79, "cosformer2": float("nan")}) == {
        "tnl": "explains", "llama": "does not explain", "hgrn2": "partly", "cosformer2": "inconclusive"}
    assert heads_verdict({"tnl": 0.51})["tnl"] == "partly" and heads_verdict({"tnl": 1.4})["tnl"] == "does not explain"

    assert heads_probe(tmp_path) is None  # no probe tables: nothing to read
    pd.DataFrame({"arch": ["tnl", "tnl", "llama", "llama"], "heads": [4, 2, 4, 2],
                  "s6_residual": [-0.04, 0.01, -0.01, -0.009], "shrink": [None, 0.9, None, 0.1],
                  "verdict": [None, "does not explain", None, "explains"]}).to_csv(tmp_path / "fits.csv", index=False)
    pd.DataFrame({"arch": ["tnl"], "run_id": ["tnl-s6"], "size": ["s6"], "residual": [-0.04],
                  "heads": [4]}).to_csv(tmp_path / "residuals.csv", index=False)
    crossings = pd.DataFrame({"arch": ["tnl", "tnl", "llama", "llama"], "heads": [4, 2, 4, 2], "small": "s5",
                              "large": "s6", "crossover": [7e11, 9e11, 5e11, 6e11], "gap_at_end": -0.02})
    crossings.to_csv(tmp_path / "crossings.csv", index=False)
    pd.DataFrame({"arch": ["tnl"], "size": ["s6"], "linscale_niah_easy": [0.4], "heads": [4]}).to_csv(
        tmp_path / "retrieval.csv", index=False)
    found = heads_probe(tmp_path)
    assert found["shrinks"] == pytest.approx({"tnl": 0.25, "llama": 0.9})
    assert found["verdicts"] == {"tnl": "explains", "llama": "does not explain"} and found["keep"] is True
    crossings.loc[3, "crossover"] = float("nan")  # LLaMA's 2-head s6 never overtakes s5: keep the 4 heads
    crossings.to_csv(tmp_path / "crossings.csv", index=False)
    assert heads_probe(tmp_path)["keep"] is False


def test_the_uniform_heads_probe_is_read_from_its_tables_by_its_registered_rules(tmp_path):
    """findings.uniform_probe (benchmarks/probe_uniform_heads.py): TNL's deficit ratio per size and each
    architecture's misfit ratio are recomputed from the tables and judged by findings.ratio_verdict
    (every ratio at most 0.5 explains, every one at least 0.8 does not, a mix partly, a missing one
    inconclusive); the next grid adopts 4 heads only when every pair crosses and no misfit ratio is above 1."""
    import pandas as pd

    from linscale.findings import ratio_verdict, uniform_probe

    assert ratio_verdict({"s1": 0.5, "s2": -0.3}, 0.5, 0.8) == "explains"  # negative: TNL below LLaMA now
    assert ratio_verdict({"s1": 0.8, "s2": 2.0}, 0.5, 0.8) == "does not explain"
    assert ratio_verdict({"s1": 0.49, "s2": 0.81}, 0.5, 0.8) == "partly"
    assert ratio_verdict({"s1": 0.2, "s2": float("nan")}, 0.5, 0.8) == "inconclusive"

    assert uniform_probe(tmp_path) is None
    pd.DataFrame({"arch": ["tnl"], "size": ["s1"], "val_committed": [2.0], "val_4 heads": [1.9],
                  "change": [-0.05]}).to_csv(tmp_path / "losses.csv", index=False)
    pd.DataFrame({"size": ["s1", "s2"], "deficit_committed": [0.06, 0.08], "deficit_4 heads": [0.03, 0.01],
                  "ratio": [9.0, 9.0]}).to_csv(tmp_path / "deficits.csv", index=False)
    pd.DataFrame({"arch": ["tnl", "tnl", "llama", "llama"], "ladder": ["committed", "4 heads"] * 2,
                  "a": 0.7, "misfit": [0.02, 0.008, 0.01, 0.0105], "ratio": [None, 5.0, None, 5.0]}).to_csv(
        tmp_path / "fits.csv", index=False)
    pd.DataFrame({"arch": ["tnl"], "run_id": ["tnl-s1"], "size": ["s1"], "residual": [0.01],
                  "ladder": ["committed"]}).to_csv(tmp_path / "residuals.csv", index=False)
    crossings = pd.DataFrame({"arch": ["tnl", "tnl", "llama"], "ladder": ["committed", "4 heads", "4 heads"],
                              "small": "s1", "large": "s2", "crossover": [1e11, 2e11, 3e11], "gap_at_end": -0.01})
    crossings.to_csv(tmp_path / "crossings.csv", index=False)
    pd.DataFrame({"arch": ["tnl"], "size": ["s5"], "linscale_mqar": [0.2], "heads": [4]}).to_csv(
        tmp_path / "retrieval.csv", index=False)
    found = uniform_probe(tmp_path)
    assert found["deficit_ratios"] == pytest.approx({"s1": 0.5, "s2": 0.125}) and found["deficit_verdict"] == "explains"
    assert found["misfit_ratios"] == pytest.approx({"tnl": 0.4, "llama": 1.05})
    assert found["misfit_verdicts"] == {"tnl": "explains", "llama": "does not explain"}
    assert found["uncrossed"].empty and found["adopt"] is False  # LLaMA's misfit grew: keep the ladder
    pd.DataFrame({"arch": ["tnl", "tnl", "llama", "llama"], "ladder": ["committed", "4 heads"] * 2,
                  "a": 0.7, "misfit": [0.02, 0.008, 0.01, 0.009]}).to_csv(tmp_path / "fits.csv", index=False)
    assert uniform_probe(tmp_path)["adopt"] is True
    crossings.loc[2, "crossover"] = float("nan")  # LLaMA's s2 never overtakes its s1 with 4 heads
    crossings.to_csv(tmp_path / "crossings.csv", index=False)
    again = uniform_probe(tmp_path)
    assert again["adopt"] is False and again["uncrossed"].to_dict("records") == [{"arch": "llama", "small": "s1", "large": "s2"}]


def test_the_cooldown_probe_rule_and_its_schedules():
    """findings.cooldown_verdict (benchmarks/probe_cooldown.py's registered rule) reaches each verdict at its
    thresholds, and every cooldown of the probe, on every run of the cpu grid, keeps its source's LR until
    the branch step, decays from exactly there and reaches 0 at its target, a record step of the source."""
    from linscale.findings import COOLDOWN_DOES_NOT, COOLDOWN_EXPLAINS, cooldown_verdict
    from linscale.train import TrainSettings, lr_factor

    assert (COOLDOWN_EXPLAINS, COOLDOWN_DOES_NOT) == (0.5, 0.8)  # the registered thresholds
    assert cooldown_verdict({"tnl": 0.5, "llama": 0.8, "hgrn2": 0.79, "cosformer2": float("nan")}) == {
        "tnl": "explains", "llama": "does not explain", "hgrn2": "partly", "cosformer2": "inconclusive"}
    probe = benchmark_script("probe_cooldown")
    for size in ("s1", "s6"):
        source = TrainSettings.from_dict(probe.spec_for("tnl", size, [])["train"])
        record = source.checkpoint_steps()
        for t in probe.TARGETS:
            start, target = record[t - 1], record[t]
            branch = TrainSettings.from_dict(probe.spec_for(
                "tnl", size, probe.cooldown_overrides(size, start, target, source.tokens_per_step))["train"])
            factor = lambda s: lr_factor(s, branch.total_steps, branch)
            assert branch.total_steps == target and branch.checkpoint_steps() == [target]
            assert branch.lr == source.lr and factor(start - 1) == lr_factor(start - 1, source.total_steps, source)
            assert factor(start) < 1 and factor(target - 1) == 0
            assert 0.17 < 1 - start / target < 0.19  # about Hägele et al.'s 20% cooldown


def test_the_cooldown_probe_is_read_from_its_tables(tmp_path):
    """findings.cooldown_probe recomputes the ratios from the fits table's misfits (cooldown over constant,
    not its own ratio column) and the verdicts by the registered rule, and reads each run's gain at its last
    step; it adopts annealed points only when they explain every architecture's misfit."""
    import pandas as pd

    from linscale.findings import cooldown_probe

    assert cooldown_probe(tmp_path) is None  # no probe tables: nothing to read

    def write(cooled):
        write_probe_fits(tmp_path, "schedule", "constant", "cooldown", cooled)
    write((0.012, 0.004))
    pd.DataFrame({"arch": ["tnl"]}).to_csv(tmp_path / "residuals.csv", index=False)
    pd.DataFrame({"run_id": ["tnl-s1"] * 2 + ["tnl-s2"], "arch": "tnl", "size": ["s1", "s1", "s2"],
                  "step": [10, 20, 15], "gain": [0.05, 0.03, 0.02]}).to_csv(tmp_path / "points.csv", index=False)
    pd.DataFrame({"val_loss": [1.0, 2.02], "val_loss_committed": [1.0, 2.0]}).to_csv(tmp_path / "control.csv",
                                                                                  index=False)
    found = cooldown_probe(tmp_path)
    assert found["ratios"] == pytest.approx({"tnl": 0.6, "llama": 0.4})
    assert found["verdicts"] == {"tnl": "partly", "llama": "explains"}
    assert found["verdict"] == "partly" and not found["adopt"]
    assert found["final_gain"].loc["tnl"].to_dict() == {"s1": 0.03, "s2": 0.02}
    assert found["control_change"] == pytest.approx(0.01)
    write((0.01, 0.005))
    assert cooldown_probe(tmp_path)["adopt"]


def test_the_s1_depth_probe_rule_its_runs_and_its_reader(tmp_path):
    """findings.depth_verdict (benchmarks/probe_s1_depth.py's registered rule) reaches each verdict at its
    thresholds; the probe's s1 differs from the study's in its layer count alone; findings.depth_probe
    recomputes the ratios from the fits table (two-layer s1 over committed, not its ratio column)."""
    import pandas as pd

    from linscale.findings import DEPTH_DOES_NOT, DEPTH_EXPLAINS, depth_probe, depth_verdict
    from linscale.train import plan_runs

    assert (DEPTH_EXPLAINS, DEPTH_DOES_NOT) == (0.5, 0.8)  # the registered thresholds
    assert depth_verdict({"tnl": 0.5, "llama": 0.8, "hgrn2": 0.79, "cosformer2": float("nan")}) == {
        "tnl": "explains", "llama": "does not explain", "hgrn2": "partly", "cosformer2": "inconclusive"}
    s1 = lambda overrides: next(s for s in plan_runs("cpu", overrides)[1] if s["run_id"] == "hgrn2-s1")
    variants = benchmark_script("probe_s1_depth").VARIANTS
    study, deeper, wide = s1([]), s1(list(variants["two-layer s1"])), s1(list(variants["wide one-layer s1"]))
    assert (study["model"]["n_layer"], deeper["model"]["n_layer"]) == (1, 2)
    assert {**deeper["model"], "n_layer": 1} == study["model"] and deeper["train"] == study["train"]
    assert {**wide["model"], "d_model": 8} == study["model"] and wide["model"]["d_model"] == 12
    assert wide["train"]["lr"] == pytest.approx(study["train"]["lr"] * (8 / 12) ** 0.5)  # its width's LR
    assert {**wide["train"], "lr": study["train"]["lr"]} == study["train"]

    assert depth_probe(tmp_path) is None  # no probe tables: nothing to read

    def write(deeper_misfits):
        write_probe_fits(tmp_path, "grid", "committed", "two-layer s1", deeper_misfits)
    write((0.012, 0.004))
    for name in ("residuals", "finals"):
        pd.DataFrame({"arch": ["tnl"]}).to_csv(tmp_path / f"{name}.csv", index=False)
    found = depth_probe(tmp_path)
    assert found["ratios"] == pytest.approx({"tnl": 0.6, "llama": 0.4})
    assert found["verdicts"] == {"tnl": "partly", "llama": "explains"}
    assert found["verdict"] == "partly" and not found["adopt"]
    write((0.01, 0.005))
    assert depth_probe(tmp_path)["adopt"] and depth_probe(tmp_path)["variant"] == "two-layer s1"
    fits = pd.read_csv(tmp_path / "fits.csv").replace("two-layer s1", "wide one-layer s1")
    fits.to_csv(tmp_path / "fits.csv", index=False)
    control = depth_probe(tmp_path)  # the control is read by the same rule, and never changes the grid
    assert control["variant"] == "wide one-layer s1" and control["verdict"] == "explains" and not control["adopt"]


def test_judge_probe_applies_the_registered_rule_to_each_architecture(capsys):
    """probes.judge_probe: ratios of the variant's misfit over the reference's, each architecture judged by
    the rule it is given, the overall verdict by the thresholds, and the ratios and verdicts written on the
    variant's rows only; a failed fit (NaN misfit) is inconclusive."""
    import pandas as pd

    from linscale.probes import judge_probe
    from linscale.findings import COOLDOWN_DOES_NOT, COOLDOWN_EXPLAINS, cooldown_verdict

    fits = pd.DataFrame({"arch": ["tnl", "tnl", "llama", "llama", "hgrn2", "hgrn2"],
                         "grid": ["committed", "new"] * 3, "misfit": [0.02, 0.008, 0.01, 0.012, 0.01, float("nan")]})
    ratios, verdicts, overall = judge_probe(fits, "grid", "new", "committed", ["tnl", "llama"], cooldown_verdict,
                                            (COOLDOWN_EXPLAINS, COOLDOWN_DOES_NOT))
    assert ratios == pytest.approx({"tnl": 0.4, "llama": 1.2})
    assert verdicts == {"tnl": "explains", "llama": "does not explain"} and overall == "partly"
    assert fits.loc[fits["grid"] == "new", "verdict"].tolist()[:2] == ["explains", "does not explain"]
    assert fits.loc[fits["grid"] == "committed", "verdict"].isna().all()
    assert fits.loc[fits["grid"] == "new", "ratio"].tolist()[:2] == pytest.approx([0.4, 1.2])
    assert fits.loc[fits["grid"] == "committed", "ratio"].isna().all()  # a ratio is the variant's, not both rows'
    assert "tnl: misfit committed 0.0200, new 0.0080, ratio 0.40: explains" in capsys.readouterr().out
    _, verdicts, overall = judge_probe(fits, "grid", "new", "committed", ["tnl", "hgrn2"], cooldown_verdict,
                                       (COOLDOWN_EXPLAINS, COOLDOWN_DOES_NOT))
    assert verdicts["hgrn2"] == "inconclusive" and overall == "inconclusive"


def test_a_probe_reports_its_verdicts_and_its_retrain_control_in_one_form(capsys):
    """probes.verdict_lines writes each architecture's verdict with its ratio and the rule's thresholds, the
    verdict over all four and the decision; probes.retrain_control finds a retrained checkpoint that moved
    (outside the tolerance) or is missing."""
    import pandas as pd

    from linscale.probes import retrain_control, verdict_lines

    lines = verdict_lines("Does X explain the misfit?", ["tnl"], {"tnl": 0.456}, {"tnl": "explains"}, "explains",
                          (0.5, 0.8), "X is adopted")
    assert lines == ["", "## Verdict", "", "Does X explain the misfit?", "",
                     "- tnl: **explains** (ratio 0.46; explains: at most 0.5, does not explain: at least 0.8)",
                     "- over all four: **explains**", "- what it decides: X is adopted"]
    committed = pd.DataFrame({"run_id": ["a", "a"], "step": [1, 2], "val_loss": [2.0, 1.0]})
    both, line = retrain_control(committed.assign(val_loss=[2.0, 1.0]), committed, 0.001)
    assert line.endswith("largest relative change of the validation loss 0 (within the registered 0.1%)")
    assert both["val_loss_committed"].tolist() == [2.0, 1.0]
    _, line = retrain_control(committed.assign(val_loss=[2.0, 1.01]), committed, 0.001)
    assert "0.01 (OUTSIDE" in line
    _, line = retrain_control(committed.iloc[:1], committed, 0.001)
    assert line.startswith("1 of the committed 2 checkpoints retrained") and "OUTSIDE" in line
    assert "OUTSIDE" in capsys.readouterr().out


def test_sizes_off_law_needs_every_architecture_beyond_the_noise_on_one_side():
    """The misfit's pattern (the scaling-laws chapter and its appendix of probes read it): a size is off
    the law only where every architecture puts it beyond the simulated noise, on the same side."""
    import pandas as pd

    from linscale.design import simulated_noise
    from linscale.findings import sizes_off_law, sizes_split, split_sentence

    rows = {("llama", "s1"): 0.004, ("tnl", "s1"): 0.02,     # inside the noise for one architecture
            ("llama", "s2"): 0.01, ("tnl", "s2"): 0.02,      # above in both
            ("llama", "s6"): -0.03, ("tnl", "s6"): -0.006,   # below in both
            ("llama", "s3"): 0.01, ("tnl", "s3"): -0.01}     # off, but on opposite sides
    residuals = pd.DataFrame([dict(arch=a, run_id=f"{a}-{z}", size=z, residual=r) for (a, z), r in rows.items()])
    assert sizes_off_law(residuals, 0.005) == (["s2"], ["s6"])
    assert sizes_off_law(residuals, 0.0) == (["s1", "s2"], ["s6"])
    # a size on opposite sides beyond the noise breaks the one pattern the chapter would otherwise claim
    assert sizes_split(residuals, 0.005) == ["s3"] and sizes_split(residuals, 0.02) == []
    # and says which architecture is on which side (a third, hgrn2, within the noise at s3, on neither)
    three = pd.concat([residuals, pd.DataFrame([dict(arch="hgrn2", run_id="hgrn2-s3", size="s3", residual=0.001),
                                                dict(arch="cosformer2", run_id="cosformer2-s3", size="s3",
                                                     residual=0.02)])], ignore_index=True)
    assert split_sentence(three, 0.005) == "s3 sits above it in LLaMA and cosFormer2 and below it in TNL"
    assert split_sentence(residuals, 0.02) == ""
    assert simulated_noise({"design": {"noise": {"run": 0.003, "checkpoint": 0.004}}}) == pytest.approx(0.005)
    assert simulated_noise({}) == 0.0


def test_a_refit_that_could_not_be_made_is_explained_in_words():
    """The hold-out section of a small grid (the smoke study's) says why no law was refitted once, in words,
    not the fitting code's message for one architecture; another reason is passed on as given."""
    from linscale.findings import refit_failure_words

    reasons = [f"{arch}: approach3: needs at least 6 rows for 5 parameters, got {n}" for arch, n in
               (("llama", 4), ("tnl", 4), ("hgrn2", 5))]
    assert refit_failure_words(reasons) == ("below the cut each architecture keeps 4 to 5 checkpoints, fewer than "
                                            "the 6 a law of 5 parameters needs")
    assert refit_failure_words(reasons[:2]).startswith("below the cut each architecture keeps 4 checkpoints")
    assert refit_failure_words(["tnl: the fit did not converge", *reasons]) == "tnl: the fit did not converge"
    assert refit_failure_words([]) == ""


def test_a_fit_that_failed_for_every_architecture_reads_as_its_reasons_not_a_page_of_budgets():
    """A user's three-size grid failed approach 2 in all four architectures, each with a list of every compute
    budget's reason: the page's figure gave 20 lines of budgets and ran out of its frame (tight_layout warned
    into the page). The sentence gives each architecture's reason and points to fits/status.csv for the
    budgets; one architecture's list is still given by compute budget; the figure grows to hold its text."""
    import warnings

    from linscale import plotting
    from linscale.findings import FitAttempt

    budgets = "(2.46e+09 FLOPs: no minimum (parabola not convex); 2.97e+09 FLOPs: minimum outside the sampled sizes)"
    several = FitAttempt(error="; ".join(f"approach2 [{arch}]: 0 of 2 compute budgets have an interior minimum, "
                                         f"3 needed {budgets}" for arch in ("hgrn2", "llama")), method="approach2")
    assert several.sentence() == ("Chinchilla's second approach (IsoFLOP profiles) could not be fitted on this grid: "
                                  "for HGRN2, 0 of 2 compute budgets have an interior minimum, 3 needed; for LLaMA, 0 "
                                  "of 2 compute budgets have an interior minimum, 3 needed (each compute budget's "
                                  "reason: fits/status.csv).")
    one = FitAttempt(error=f"approach2 [tnl]: 0 of 2 compute budgets have an interior minimum, 3 needed {budgets}",
                     method="approach2")
    assert one.sentence().endswith("(by compute budget: 2.46e+09 FLOPs: no minimum (parabola not convex); "
                                   "2.97e+09 FLOPs: minimum outside the sampled sizes).")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # tight_layout's warning is an error here
        fig = plotting.message_figure(one.sentence() * 4)
    assert fig.get_figheight() > 1.2 and plotting.legibility_problems(fig) == []


def test_a_hold_out_the_grid_cannot_make_is_said_with_its_reason():
    """A grid on which no simulated hold-out refit succeeded printed "misses held-out runs by up to nan%
    (95% of 0 simulated studies)": the reason each refit gave was collected and dropped."""
    import pandas as pd

    from linscale.design import holdout_lines

    draws = pd.DataFrame([dict(arch="tnl", method="approach1", replicate=r, runs=3, worst=w, reason="")
                          for r, w in enumerate([0.01, 0.02, 0.03])] +
                         [dict(arch="tnl", method="approach3", replicate=r, runs=0, worst=np.nan,
                               reason="fit window: no compute decade left to hold out") for r in range(3)])
    lines = holdout_lines(draws)
    assert lines[0].startswith("tnl approach1: a true law's refit misses held-out runs by up to 2.9% (95% of 3 ")
    assert lines[1] == ("tnl approach3: no hold-out check possible on this grid; none of 3 simulated refits "
                        "succeeded (fit window: no compute decade left to hold out)")
    assert not any("nan" in line for line in lines)


def test_the_design_summary_names_each_rule_a_method_misses():
    """Replicates made by hand, so that approach 3's median a and approach 3 with E fixed are right, but
    approach 3's 95% range is twice as wide as allowed and its E is off by twice the tolerance."""
    import pandas as pd

    from linscale.design import A_RANGE_WIDTH, E_TOLERANCE, MIN_BUDGETS, DesignCheck

    n = 41
    draws = pd.DataFrame(dict(arch="tnl", law="a = 0.5", a_true=0.5, a_flops=0.5, replicate=range(n), E_true=1.5,
                              approach1_a=0.5, approach2_a=0.5, approach2_budgets=MIN_BUDGETS,
                              approach3_a=0.5 + np.linspace(-1, 1, n) * A_RANGE_WIDTH, approach3_fixed_e_a=0.5,
                              approach3_E=1.5 * (1 + 2 * E_TOLERANCE)))
    crossings = pd.DataFrame(dict(arch=["tnl"], law=["a = 0.5"], crossover=[1.0], a_true=[0.5]))
    summary = DesignCheck("hand", draws, crossings, {}).summary().set_index("method")
    assert summary.loc[["approach1", "approach2", "approach3_fixed_e"], "identified"].all(), summary
    reason = summary.loc["approach3", "reason"]
    assert not summary.loc["approach3", "identified"]
    assert reason == (f"95% range of a {1.9 * A_RANGE_WIDTH:.3f} wide (at most {A_RANGE_WIDTH:g}); "
                      f"median |E/E_true − 1| {2 * E_TOLERANCE:.1%} (at most {E_TOLERANCE:.0%})"), reason


def test_grid_points_count_each_checkpoints_tokens_from_its_own_step():
    """A checkpoint's D is its step times the run's tokens per step (an off-by-one in the step moved every
    early checkpoint's D, which the final budgets alone did not show)."""
    from linscale.presets import split_size
    from linscale.train.settings import TrainSettings

    preset = resolve_preset("cpu")
    points = grid_points(preset)
    for size, shape in preset["sizes"].items():
        train = TrainSettings.from_dict({**preset["train"], **split_size(size, shape)[1]})
        run = points[points["run_id"] == f"tnl-{size}"]
        assert list(run["step"]) == list(train.checkpoint_steps())
        assert (run["tokens"] == run["step"] * train.tokens_per_step).all(), size


def test_a_reference_law_missing_a_parameter_is_a_one_line_error():
    """--set design.law={...} without B passes the preset's validation; the check must say which number is
    missing, not end in a KeyError."""
    from linscale.config import ConfigError

    preset = resolve_preset("cpu", ["design.law={A: 1, alpha: 0.2, beta: 1.0}"])
    with pytest.raises(ConfigError, match=r"design.law: expected numbers E, A, B, alpha, beta \('B'\)"):
        reference_law(preset, "tnl")


def test_the_true_law_takes_the_languages_exact_entropy_over_a_recorded_e():
    from linscale.design import language_entropy, true_law

    preset = resolve_preset("cpu", ["design.law.E=5.0"])
    assert reference_law(preset).E == 5.0
    assert true_law(preset, "tnl").E == pytest.approx(language_entropy(preset))
    assert true_law(preset, "tnl").A == reference_law(preset).A


def test_true_allocation_reads_the_grids_flops_per_token_in_any_row_order():
    """With FLOPs per token growing as N^1.5 (not 6N), C ∝ N^1.5·D and N_opt(C) ∝ C^(β/(α + 1.5β)): the
    allocation the study's accounting sees, not the law's β/(α+β); the points' order does not matter."""
    points = grid_points("cpu")
    points = points[points["arch"] == "tnl"].copy()
    points["flops_per_token"] = 6 * points["params"] ** 1.5
    points["flops"] = points["flops_per_token"] * points["tokens"]
    law = Law(E=1.3, A=2.4, B=7.8e5, alpha=0.24, beta=1.13)
    expected = law.beta / (law.alpha + 1.5 * law.beta)  # 0.58, far from law.a = 0.82
    assert true_allocation(points, law) == pytest.approx(expected, abs=0.02)
    assert true_allocation(points.sample(frac=1, random_state=0), law) == pytest.approx(expected, abs=0.02)


def test_check_design_pivots_its_variants_at_the_central_compute_and_simulates_each_as_the_rules_say(monkeypatch):
    """Per law: one noise-free table (the crossovers), then ``replicates`` tables with the preset's noise;
    each variant keeps the reference law's optimum at the grid's central N·D (the geometric middle of its
    range). The fits are stand-ins: only the simulation is checked."""
    from linscale import design

    calls = []
    real = design.simulate

    def simulate(points, law, noise, rng):
        calls.append((law, dict(noise)))
        return real(points, law, noise, rng)

    monkeypatch.setattr(design, "simulate", simulate)
    monkeypatch.setattr(design, "_recovered", lambda runs, settings, arch: dict(
        approach1_a=0.5, approach2_a=0.5, approach2_budgets=3, approach3_a=0.5, approach3_fixed_e_a=0.5,
        approach3_E=1.3))
    check = check_design("cpu", replicates=2, archs=["tnl"], a_values=(0.5,))
    preset = resolve_preset("cpu")
    noise = {**design.DEFAULT_NOISE, **preset["design"]["noise"]}
    assert [n for _, n in calls] == [{"run": 0.0, "checkpoint": 0.0}, noise, noise] * 2
    variant, ref = calls[0][0], calls[3][0]
    assert ref == design.true_law(preset, "tnl") and variant.a == pytest.approx(0.5)
    points = grid_points(preset).query("arch == 'tnl'")
    nd = points["params"] * points["tokens"]
    central = float(np.sqrt(nd.min() * nd.max()))
    for got, want in zip(variant.optimum(central), ref.optimum(central)):
        assert got == pytest.approx(want, rel=1e-9)
    assert len(check.draws) == 4 and list(check.draws["replicate"]) == [0, 1, 0, 1]
    assert set(check.crossings["law"]) == {"a = 0.5", "reference"}


def test_the_check_fits_the_rows_the_study_fits(monkeypatch):
    """The check's fits drop what the study's drop (its warmup and the language's unigram entropy, from
    fit_settings) and read approach 1 inside the grid's common compute: a check that kept rows the study
    drops could call a law identified that the study's own fit cannot see. Only the law's E and the
    check's own starts and methods differ."""
    from linscale import design
    from linscale.laws.suite import common_compute_range

    seen = []
    monkeypatch.setattr(design, "_recovered", lambda runs, settings, arch: seen.append(settings) or dict(
        approach1_a=0.5, approach2_a=0.5, approach2_budgets=3, approach3_a=0.5, approach3_fixed_e_a=0.5,
        approach3_E=1.3))
    check_design("cpu", replicates=1, archs=["tnl"], a_values=(0.5,), n_refine=3)
    study = fit_settings("cpu", bootstrap=0)
    assert study.max_loss is not None and study.warmup_steps > 0
    expected = dataclasses.replace(study, n_refine=3, methods=design.METHODS,
                                   compute_range=common_compute_range(grid_points("cpu"), study.warmup_steps))
    assert seen and all(dataclasses.replace(s, entropy=study.entropy) == expected for s in seen)
    assert [s.entropy for s in seen] == [design.true_law(resolve_preset("cpu"), "tnl").E] * len(seen)


def test_a_grid_without_three_overlapping_sizes_is_refused_in_words_of_the_grid():
    """Two sizes span no compute range three sizes share: the check says so of the grid's sizes (it said
    "approach2: no compute budget is spanned by ...", a reason the study then gave every method)."""
    preset = copy.deepcopy(resolve_preset("cpu"))
    preset["sizes"] = {k: preset["sizes"][k] for k in ("s2", "s3")}
    preset["context_size"] = "s3"
    with pytest.raises(ConfigError, match=r"^sizes: the design check needs .* this grid's 2 size\(s\) span none"):
        check_design(preset, replicates=1, archs=["tnl"])


def _law_fit(estimates: dict, diagnostics=None):
    """A stand-in LawFit: ``estimates`` {(law, parameter, group): value}, in that order."""
    import types

    import pandas as pd

    params = pd.DataFrame([dict(law=law, parameter=p, group=g, estimate=v) for (law, p, g), v in estimates.items()])
    return types.SimpleNamespace(params=params, diagnostics=diagnostics)


def test_each_recovered_number_is_read_from_its_own_method_law_and_architecture(monkeypatch):
    """design._recovered on stand-in fits: every number from its method's fit, its law and parameter, and
    the architecture asked for (another architecture's row comes first); approach 3's E from the fit with E
    free (the fixed one returns the truth); approach 2's budgets 0 when it failed."""
    import types

    import pandas as pd

    from linscale import design

    def fits(a2_ok):
        out = {}
        for i, method in enumerate(("approach1", "approach2", "approach3", "approach3_fixed_e")):
            values = {}
            for arch, shift in (("llama", 0.5), ("tnl", 0.0)):
                values.update({("N_opt(C)", "exponent", arch): 0.1 + i / 100 + shift,
                               ("D_opt(C)", "exponent", arch): 0.9 + shift,
                               ("N_opt(C)", "a", arch): 0.2 + i / 100 + shift,
                               ("L(N,D)", "E", arch): 1.0 + i + shift})
            diag = pd.DataFrame({"group": ["llama", "tnl"], "n_budgets_used": [7, 5]})
            ok = a2_ok or method != "approach2"
            out[method] = types.SimpleNamespace(fit=_law_fit(values, diag), ok=ok)
        return out

    monkeypatch.setattr(design, "fit_suite", lambda runs, settings, jobs: fits(True))
    got = design._recovered(None, None, "tnl")
    assert got == pytest.approx(dict(approach1_a=0.1, approach2_a=0.11, approach2_budgets=5, approach3_a=0.22,
                                     approach3_fixed_e_a=0.23, approach3_E=3.0))
    monkeypatch.setattr(design, "fit_suite", lambda runs, settings, jobs: fits(False))
    assert design._recovered(None, None, "tnl")["approach2_budgets"] == 0
    assert np.isnan(design.estimate(_law_fit({("L(N,D)", "E", "llama"): 1.0}), "L(N,D)", "E", "tnl"))
    assert np.isnan(design.estimate(None, "L(N,D)", "E", "tnl"))


def _hand_check(n=10, crossover=(1.0,), **columns):
    """A DesignCheck made by hand: ``n`` replicates of law a = 0.5 on which every method recovers a, E and
    the budgets exactly, except ``columns``."""
    import pandas as pd

    from linscale.design import DesignCheck

    draws = pd.DataFrame({**dict(arch="tnl", law="a = 0.5", a_true=0.5, a_flops=0.5, replicate=range(n), E_true=1.5,
                                 approach1_a=0.5, approach2_a=0.5, approach2_budgets=3, approach3_a=0.5,
                                 approach3_fixed_e_a=0.5, approach3_E=1.5), **columns})
    crossings = pd.DataFrame(dict(arch="tnl", law="a = 0.5", crossover=list(crossover), a_true=0.5))
    return DesignCheck("hand", draws, crossings, {}).summary().set_index("method")


def test_the_design_rules_at_their_margins():
    """Each rule of the module docstring on hand-made replicates: a failed fit is reported; approach 2 needs
    interior minima in at least 90% of replicates (9 of 10 is enough); approach 3's median a within half the
    tolerance of approaches 1 and 2; E too low fails as E too high does; only approach 1 needs crossings,
    and a grid with no pair of sizes has none."""
    from linscale.design import A_TOLERANCE, E_TOLERANCE

    assert _hand_check()["identified"].all()
    failed = _hand_check(approach3_fixed_e_a=[np.nan] + [0.5] * 9)
    assert failed.loc["approach3_fixed_e", "reason"] == "fit failed in 1 of 10 replicates"
    assert failed.drop(index="approach3_fixed_e")["identified"].all()
    assert _hand_check(approach2_budgets=[2] + [3] * 9).loc["approach2", "identified"]
    short = _hand_check(approach2_budgets=[2, 2] + [3] * 8).loc["approach2"]
    assert not short["identified"] and short["reason"] == "interior minima at 3+ budgets in 80% of replicates"
    off = 0.5 + 0.7 * A_TOLERANCE  # inside approach 1 and 2's tolerance, outside approach 3's
    summary = _hand_check(**{f"{m}_a": off for m in ("approach1", "approach2", "approach3", "approach3_fixed_e")})
    assert summary.loc[["approach1", "approach2"], "identified"].all()
    assert not summary.loc[["approach3", "approach3_fixed_e"], "identified"].any()
    low = _hand_check(approach3_E=1.5 * (1 - 2 * E_TOLERANCE)).loc["approach3"]
    assert not low["identified"] and "median |E/E_true − 1| 10.0%" in low["reason"]
    apart = _hand_check(crossover=(1.0, np.nan))
    assert apart.loc["approach1", "reason"] == "1 of 2 neighbouring sizes never cross"
    assert apart.drop(index="approach1")["identified"].all()
    assert not _hand_check(crossover=()).loc["approach1", "identified"]


def test_holdout_expectation_fits_windowed_studies_and_keeps_each_refits_largest_miss(monkeypatch):
    """holdout_expectation on a stand-in hold-out check: it is given the windowed runs (as the study's check
    is), and ``worst`` is the largest |error| (an over-prediction counts as an under-prediction does)."""
    import pandas as pd

    from linscale.laws import suite

    seen = []

    def holdout_check(runs, settings):
        seen.append(runs)
        return pd.DataFrame({"method": ["approach3"] * 3 + ["approach3_fixed_e"],
                             "rel_error": [-0.05, 0.01, np.nan, np.nan], "reason": ["", "", "", "it failed"]})

    monkeypatch.setattr(suite, "holdout_check", holdout_check)
    draws = holdout_expectation("cpu", replicates=1, archs=["tnl"]).set_index("method")
    assert draws.loc["approach3", "worst"] == pytest.approx(0.05) and draws.loc["approach3", "runs"] == 2
    assert np.isnan(draws.loc["approach3_fixed_e", "worst"]) and draws.loc["approach3_fixed_e", "reason"] == "it failed"
    warmup = resolve_preset("cpu")["train"]["warmup_steps"]
    assert len(seen) == 1 and seen[0]["step"].min() >= 2 * warmup  # windowed: the fits' rows only


def test_e_free_expectation_reports_the_relative_error_of_e(monkeypatch):
    import types

    from linscale.design import e_free_expectation
    from linscale.laws import suite

    def fit_method(runs, method, settings):
        return types.SimpleNamespace(ok=True, fit=_law_fit({("L(N,D)", "E", "tnl"): settings.entropy * 1.1}))

    monkeypatch.setattr(suite, "fit_method", fit_method)
    row = e_free_expectation("cpu", replicates=1, archs=["tnl"]).iloc[0]
    assert row["E"] == pytest.approx(1.1 * row["E_true"]) and row["error"] == pytest.approx(0.1)


def test_a_hold_out_the_grid_cannot_make_gives_its_most_common_reason():
    import pandas as pd

    from linscale.design import holdout_lines

    draws = pd.DataFrame(dict(arch="tnl", method="approach3", replicate=range(3), runs=0, worst=np.nan,
                              reason=["rare", "common", "common"]))
    assert holdout_lines(draws)[0].endswith("none of 3 simulated refits succeeded (common)")


def test_the_study_fit_settings_come_from_the_presets_language_and_warmup():
    from linscale.design import language_entropy, unigram_entropy

    preset = resolve_preset("cpu")
    settings = fit_settings("cpu", bootstrap=7, seed=3, loss_column="val_loss")
    assert settings.entropy == pytest.approx(language_entropy(preset))
    assert settings.max_loss == pytest.approx(unigram_entropy(preset)) and settings.max_loss > settings.entropy
    assert (settings.warmup_steps, settings.bootstrap, settings.seed, settings.loss_column) == (50, 7, 3, "val_loss")
