"""The verdict rules (linscale.findings.rules) and every claim (linscale.findings.claims): each claim is
driven to each verdict it can reach by evidence built for the purpose, so that no verdict is decided by
code that cannot produce it."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from linscale import findings
from linscale.findings import claims, rules
from linscale.findings.rules import INCONCLUSIVE, NOT_REPRODUCED, NOT_TESTABLE, REPRODUCED
from linscale.laws.result import LawFit

ARCHS = ("llama", "tnl", "hgrn2", "cosformer2")


# ----------------------------------------------------------------------------- rules


def test_difference_and_equivalence_rules_reach_every_verdict():
    assert rules.difference(0.03, 0.02, "positive") == REPRODUCED
    assert rules.difference(-0.03, 0.02, "positive") == NOT_REPRODUCED
    assert rules.difference(0.01, 0.02, "positive") == INCONCLUSIVE
    assert rules.difference(-0.03, 0.02, "negative") == REPRODUCED
    assert rules.difference(np.nan, 0.02, "negative") == INCONCLUSIVE  # no noise measured: no verdict
    # equivalence: the whole band d ± u inside the margin, wholly outside, or neither
    assert rules.equivalence(0.005, 0.004, 0.01) == REPRODUCED
    assert rules.equivalence(0.03, 0.01, 0.01) == NOT_REPRODUCED
    assert rules.equivalence(0.005, 0.01, 0.01) == INCONCLUSIVE  # overlap with zero is not equality
    assert rules.equivalence(-0.005, 0.005, 0.01) == REPRODUCED  # the band reaching the margin is inside it
    assert rules.equivalence(0.015, 0.005, 0.01) == INCONCLUSIVE  # ... and not wholly outside
    assert rules.interval_equivalence(-0.004, 0.006, 0.01) == REPRODUCED
    assert rules.interval_equivalence(0.011, 0.02, 0.01) == NOT_REPRODUCED
    assert rules.interval_equivalence(-0.02, 0.0, 0.01) == INCONCLUSIVE
    assert rules.interval_equivalence(-0.02, -0.011, 0.01) == NOT_REPRODUCED  # wholly below -margin, too
    assert rules.interval_difference(0.1, 0.3, "positive") == REPRODUCED
    assert rules.interval_difference(-0.3, -0.1, "positive") == NOT_REPRODUCED
    assert rules.interval_difference(-0.1, 0.3, "positive") == INCONCLUSIVE
    # a claimed negative difference: the mirror image
    assert rules.interval_difference(-0.3, -0.1, "negative") == REPRODUCED
    assert rules.interval_difference(0.1, 0.3, "negative") == NOT_REPRODUCED
    assert rules.interval_difference(-0.1, 0.3, "negative") == INCONCLUSIVE


def test_combine_is_a_conjunction_every_part_for_reproduced_one_against_refutes():
    assert rules.combine([REPRODUCED, REPRODUCED]) == REPRODUCED
    assert rules.combine([REPRODUCED, INCONCLUSIVE]) == INCONCLUSIVE
    assert rules.combine([NOT_REPRODUCED, INCONCLUSIVE]) == NOT_REPRODUCED
    assert rules.combine([NOT_REPRODUCED, REPRODUCED]) == NOT_REPRODUCED  # one clear counterexample
    assert rules.combine([INCONCLUSIVE, NOT_TESTABLE]) == INCONCLUSIVE
    assert rules.combine([NOT_TESTABLE, NOT_TESTABLE]) == NOT_TESTABLE
    assert rules.combine([]) == NOT_TESTABLE


def test_margin_to_flip_counts_noise_bounds_to_the_nearest_boundary():
    assert rules.margin_to_flip(0.05, 0.01) == pytest.approx(4.0)  # 0.05 is 4 bounds above +0.01
    assert rules.margin_to_flip(0.0, 0.01) == pytest.approx(1.0)
    assert rules.margin_to_flip(0.002, 0.003, "equivalence", 0.01) == pytest.approx(5 / 3)  # to 0.01 - 0.003
    assert rules.margin_to_flip(-0.002, 0.003, "equivalence", 0.01) == pytest.approx(5 / 3)  # to -(0.01 - 0.003)
    assert rules.margin_to_flip(-0.015, 0.003, "equivalence", 0.01) == pytest.approx(2 / 3)  # to -(0.01 + 0.003)
    assert np.isnan(rules.margin_to_flip(0.01, 0.0))


def test_noise_bound_is_the_pooled_t_bound_of_a_difference():
    samples = pd.DataFrame({"arch": ["a"] * 3 + ["b"] * 4, "loss": [2.0, 2.1, 2.05, 3.0, 3.2, 3.1, 3.3]})
    noise = rules.Noise(samples)
    sa, sb = np.std([2.0, 2.1, 2.05], ddof=1), np.std([3.0, 3.2, 3.1, 3.3], ddof=1)
    pooled = np.sqrt((2 * sa**2 + 3 * sb**2) / 5)
    assert noise.pooled("loss") == (pytest.approx(pooled), 5)
    assert noise.bound("loss") == pytest.approx(stats.t.ppf(0.975, 5) * np.sqrt(2) * pooled)
    assert noise.bound_of_means("loss", 3, 3, ["a"]) == pytest.approx(stats.t.ppf(0.975, 2) * sa * np.sqrt(2 / 3))
    # the same bound as the seed tolerance the chapters show
    table = findings.seed_noise(samples.rename(columns={"loss": "loss"}), "loss")
    assert noise.bound("loss", relative=True) == pytest.approx(findings.seed_tolerance(table))
    assert np.isnan(rules.Noise(samples.iloc[[0, 3]]).bound("loss"))  # one run each: no noise measured


def test_an_accuracy_takes_one_noise_pooled_over_every_measured_size():
    order = ["s1", "s2", "s3", "s4", "s5"]
    rows = [dict(arch=a, size=size, acc=0.5 + z * sd) for size, sd in (("s1", 0.02), ("s3", 0.005), ("s5", 0.01))
            for a in ("a", "b") for z in ((-1.0, 1.0) if size != "s3" else (-1.0, 0.0, 1.0))]
    noise = rules.Noise(pd.DataFrame(rows))
    # cells of two runs at ±sd have variance 2·sd²; of three at (-sd, 0, sd), sd²
    pooled = np.sqrt((2 * (2 * 0.02 ** 2) + 2 * (2 * 0.005 ** 2) + 2 * (2 * 0.01 ** 2)) / 8)
    for size in order:  # the same at every size of the grid, measured or not
        assert noise.at_size(size, order, "acc") == (pytest.approx(pooled), 8)
    # a lottery at one size widens every size's bound
    lottery = pd.DataFrame(rows + [dict(arch="c", size="s5", acc=0.2), dict(arch="c", size="s5", acc=1.0)])
    assert rules.Noise(lottery).at_size("s1", order, "acc")[0] > 3 * pooled
    # a difference of an s1 run and an s3 run: t at the pooled degrees of freedom
    assert noise.bound_between("acc", ("s1", "s3"), order) == pytest.approx(stats.t.ppf(0.975, 8) * np.sqrt(2) * pooled)
    # a size outside the grid: no noise
    assert np.isnan(noise.bound_between("acc", ("s1", "s9"), order))
    # samples without sizes: one noise for every size, as before
    flat = rules.Noise(pd.DataFrame(rows).drop(columns="size"))
    assert flat.bound_between("acc", ("s1", "s5"), order) == pytest.approx(flat.bound("acc"))


def test_a_bound_between_two_sizes_takes_t_at_the_fewer_degrees_of_freedom():
    """A loss's noise at a size with a parameter count is the size trend's (its fit spends two degrees of
    freedom); at a size without one, the sd pooled over the measured cells (all of them). A difference of
    one run of each takes Student's t at the fewer of the two, the conservative choice."""
    rows = [dict(arch=a, size=size, loss=3.0 + z * sd) for size, sd in (("s1", 0.03), ("s3", 0.01))
            for a in ("a", "b") for z in (-1.0, 0.0, 1.0)]
    order = ["s1", "s2", "s3"]
    noise = rules.Noise(pd.DataFrame(rows), params={"s1": 1e4, "s3": 1e5})  # s2: no parameter count
    (sd1, dof1), (sd2, dof2) = noise.at_size("s1", order, "loss"), noise.at_size("s2", order, "loss")
    assert (dof1, dof2) == (6, 8)  # four cells of three runs: 8, less the trend's two parameters
    expected = stats.t.ppf(0.975, 6) * np.sqrt(sd1 ** 2 + sd2 ** 2)
    assert noise.bound_between("loss", ("s1", "s2"), order) == pytest.approx(expected)
    assert noise.bound_between("loss", ("s2", "s1"), order) == pytest.approx(expected)
    assert noise.dof_between("loss", ("s1", "s2"), order) == 6


def test_a_noise_says_whose_it_is_where_it_was_measured_at_one_size():
    """The training page called a bound between two sizes' runs "each size's seed noise" on a study whose
    seeds ran at one size only (no size_seeds ablation); that size's noise is taken as every size's."""
    order = ["s1", "s2", "s3"]
    rows = [dict(arch=a, size=size, loss=2.0 + z) for a in ("a", "b") for size in ("s2", "s3")
            for z in (-0.01, 0.01)]
    one = rules.Noise(pd.DataFrame([r for r in rows if r["size"] == "s2"] + [dict(arch="a", size="s3", loss=2.0)]))
    assert one.measured_sizes("loss", order) == ["s2"]
    assert one.basis_words("loss", order) == "the seed noise measured at s2, taken as the same at every size"
    two = rules.Noise(pd.DataFrame(rows))
    assert two.measured_sizes("loss", order) == ["s2", "s3"] and two.basis_words("loss", order) == "each size's seed noise"


def test_claim_margin_to_flip_is_the_smallest_single_part_move_that_changes_the_verdict():
    one = [rules.difference_part(0.05, 0.01, 10, "positive")]
    assert rules.claim_margin_to_flip(one) == pytest.approx(rules.margin_to_flip(0.05, 0.01), abs=0.011)
    # two parts against: moving either alone leaves the other refuting the claim
    against = [rules.difference_part(-0.05, 0.01, 10, "positive"), rules.difference_part(-0.02, 0.01, 10, "positive")]
    assert rules.combine([p.verdict() for p in against]) == NOT_REPRODUCED
    assert rules.claim_margin_to_flip(against) == np.inf
    # one part against, one inconclusive: the part against decides, 1 bound from its edge
    mixed = [rules.difference_part(-0.02, 0.01, 10, "positive"), rules.difference_part(0.0, 0.01, 10, "positive")]
    assert rules.claim_margin_to_flip(mixed) == pytest.approx(1.0, abs=0.011)
    assert np.isnan(rules.claim_margin_to_flip([rules.fixed_part(NOT_TESTABLE)]))


# ----------------------------------------------------------------------------- laws


def _noise(rel_sd: float = 0.005, acc_sd: float = 0.01, excess_sd: float = 0.002) -> rules.Noise:
    """Three seeds per architecture with the given spreads (losses around 2, accuracies around 0.5)."""
    rows = []
    for arch in ARCHS:
        for z in (-1.0, 0.0, 1.0):
            rows.append(dict(arch=arch, loss=2.0 * (1 + z * rel_sd), excess=0.1 + z * excess_sd,
                             knowledge_acc=0.5 + z * acc_sd, bits_per_byte=1.0 * (1 + z * rel_sd),
                             niah_easy_wa=0.5 + z * acc_sd))
    return rules.Noise(pd.DataFrame(rows))


def _grid(factor: dict) -> pd.DataFrame:
    """The cpu grid's checkpoints with losses from one law, each architecture's scaled by ``factor``
    (the same sizes and FLOPs for all, so that the factor is the only difference at equal compute)."""
    from linscale.design import Law, grid_points

    llama = grid_points("cpu").query("arch == 'llama'")  # every architecture on LLaMA's sizes and FLOPs
    points = pd.concat([llama.assign(arch=a, run_id=llama["run_id"].str.replace("llama", a)) for a in ARCHS])
    law = Law(E=1.3, A=2.4, B=7.8e5, alpha=0.24, beta=1.1)
    return points.assign(fitted_loss=law.loss(points["params"], points["tokens"]) * points["arch"].map(factor))


def test_lower_loss_compares_observed_envelopes_inside_the_data():
    def verdict(linear, noise=_noise()):
        return claims.lower_loss_claim(_grid({"llama": 1.0, **{a: linear for a in rules.LINEAR}}), noise)

    row = verdict(0.97)
    u = _noise().bound("loss", relative=True)  # pooled over the four architectures: t(8 dof)·√2·0.5% = 1.6%
    assert row["verdict"] == REPRODUCED and row["margin_to_flip"] == pytest.approx((0.03 - u) / u, rel=0.01)
    assert len(row["numbers"]) == 3 * claims.N_COMPUTE and set(row["numbers"]) == set(row["tolerance"])
    assert verdict(1.03)["verdict"] == NOT_REPRODUCED
    assert verdict(0.995)["verdict"] == INCONCLUSIVE  # 0.5% is inside a bound of 1.6%
    assert verdict(0.97, _noise(rel_sd=0.05))["verdict"] == INCONCLUSIVE  # the same gap under ten times the noise
    grid = _grid({a: 1.0 for a in ARCHS})
    assert claims.lower_loss_claim(grid[grid["arch"] != "llama"], _noise())["verdict"] == NOT_TESTABLE


def test_envelopes_are_compared_only_where_every_architecture_has_one():
    """Compute values outside one architecture's runs would compare an envelope with an extrapolation:
    with TNL's grid at a tenth of LLaMA's compute, every compute value compared lies inside both ranges."""
    grid = _grid({a: 1.0 for a in ARCHS})
    grid = grid[grid["arch"].isin(["llama", "tnl"])].copy()
    tnl = grid["arch"] == "tnl"
    grid.loc[tnl, "flops"] = grid.loc[tnl, "flops"] / 10
    llama_range = grid.loc[~tnl, "flops"].min(), grid.loc[~tnl, "flops"].max()
    tnl_range = grid.loc[tnl, "flops"].min(), grid.loc[tnl, "flops"].max()
    points = claims.envelope_losses(grid, "fitted_loss")
    assert len(points) == 2 * claims.N_COMPUTE
    assert (points["flops"] > max(llama_range[0], tnl_range[0])).all()
    assert (points["flops"] < min(llama_range[1], tnl_range[1])).all()


def test_lower_loss_sides_say_which_parts_are_beyond_the_noise_on_which_side():
    """The chapter says on which side of LLaMA each architecture is beyond the noise: one architecture
    below (for the claim), one above (against), one inside the noise, at every compute value."""
    row = claims.lower_loss_claim(_grid({"llama": 1.0, "tnl": 1.03, "hgrn2": 0.97, "cosformer2": 1.002}), _noise())
    sides = claims.lower_loss_sides(row)
    assert len(sides) == 3 * claims.N_COMPUTE
    assert sides.groupby("arch")["side"].unique().map(list).to_dict() == {
        "tnl": ["above"], "hgrn2": ["below"], "cosformer2": ["within"]}
    hgrn2 = sides[sides["arch"] == "hgrn2"]
    assert hgrn2["difference"].to_numpy() == pytest.approx(-0.03)
    assert hgrn2["bound"].tolist() == [row["tolerance"][f"loss/llama-1[hgrn2, C={c:.3g}]"] for c in hgrn2["flops"]]
    # a part just inside its bound is within, not below; the compute value is read back as a number
    key = "loss/llama-1[hgrn2, C=1e+10]"
    edge = claims.lower_loss_sides({"numbers": {key: -0.99 * 0.02}, "tolerance": {key: 0.02}})
    assert edge["side"].tolist() == ["within"] and edge["flops"].tolist() == [1e10]
    not_testable = claims.lower_loss_claim(_grid({a: 1.0 for a in ARCHS}).query("arch != 'llama'"), _noise())
    assert claims.lower_loss_sides(not_testable).empty


def test_lower_loss_judges_each_compute_value_with_the_noise_of_its_runs_sizes():
    """A 3% gap is beyond the bound where the envelope's runs are of quiet sizes and inside it where they
    are of a noisy one: the claim is reproduced only if the noise of every size it compares allows."""
    grid = _grid({"llama": 1.0, **{a: 0.97 for a in rules.LINEAR}})
    sizes = list(grid.groupby("size")["params"].median().sort_values().index)

    def noise(noisy: str | None):
        rows = [dict(arch=a, size=size, loss=2.0 * (1 + z * (0.05 if size == noisy else 0.002)))
                for size in (sizes[0], sizes[2], sizes[-1]) for a in ARCHS for z in (-1.0, 0.0, 1.0)]
        return rules.Noise(pd.DataFrame(rows), params=grid.groupby("size")["params"].median().to_dict())

    quiet = claims.lower_loss_claim(grid, noise(None))
    assert quiet["verdict"] == REPRODUCED
    loud = claims.lower_loss_claim(grid, noise(sizes[0]))  # the smallest size ten times noisier
    assert loud["verdict"] == INCONCLUSIVE
    u = {k: loud["tolerance"][k] for k in loud["tolerance"] if "[tnl," in k}
    assert max(u.values()) > 5 * min(u.values())  # only the compute values its runs reach are widened


def test_lower_loss_takes_each_architectures_own_runs_size():
    """TNL's envelope is made of a noisy small size and LLaMA's of a quiet large one: the bound of their
    difference is t·√(s_small² + s_large²), not either size's noise twice."""
    rows = []
    for arch, size, params in (("tnl", "small", 1e3), ("llama", "large", 1e5)):
        for copy, worse in (("a", 1.0), ("b", 1.1)):  # two runs each (an envelope needs them); "a" is on it
            for flops in np.geomspace(1e10, 1e12, 12):
                rows.append(dict(run_id=f"{arch}-{size}-{copy}", arch=arch, size=size, params=params, flops=flops,
                                 tokens=flops / (6 * params), fitted_loss=worse * 3.0 * (flops / 1e10) ** -0.05))
    runs = pd.DataFrame(rows)
    samples = pd.DataFrame([dict(arch=a, size=size, loss=2.0 * (1 + z * sd)) for size, sd in (("small", 0.05), ("large", 0.002))
                            for a in ("tnl", "llama") for z in (-1.0, 0.0, 1.0)])
    noise = rules.Noise(samples)
    row = claims.lower_loss_claim(runs, noise)
    order = ["small", "large"]
    (s_small, dof), (s_large, _) = (noise.at_size(size, order, "loss", ["tnl", "llama"], relative=True) for size in order)
    expected = stats.t.ppf(0.975, dof) * np.hypot(s_small, s_large)
    assert list(row["tolerance"].values()) == pytest.approx([expected] * claims.N_COMPUTE)


def _power_fit(method: str, law: str, ratio: dict, spread: float, exponent: float = 0.8,
               exponent_shift: dict | None = None, resamples: int = 200) -> LawFit:
    """A LawFit of k·C^e per architecture (C in FLOPs) with bootstrap draws: each architecture's
    coefficient is ``ratio[arch]`` times LLaMA's, drawn with a relative spread; exponents shifted by
    ``exponent_shift``."""
    rng = np.random.default_rng(0)
    params, draws, points = [], [], []
    for arch in ARCHS:
        e = exponent + (exponent_shift or {}).get(arch, 0.0)
        k = 1e-3 * ratio.get(arch, 1.0)
        params += [dict(method=method, group=arch, law=law, parameter="coefficient", estimate=k, identified=True, reason=""),
                   dict(method=method, group=arch, law=law, parameter="exponent", estimate=e, identified=True, reason="")]
        for r in range(resamples):
            draws += [dict(resample=r, group=arch, law=law, parameter="coefficient", value=k * np.exp(rng.normal(0, spread))),
                      dict(resample=r, group=arch, law=law, parameter="exponent", value=e + rng.normal(0, spread / 10))]
        points += [dict(group=arch, law=law, flops=c) for c in (1e11, 1e12, 1e13)]
    return LawFit(method, pd.DataFrame(params), pd.DataFrame(points), pd.DataFrame(), pd.DataFrame(draws))


def test_allocation_claims_read_approach_2_intervals_and_respect_identification():
    everyone = {a: (True, "") for a in ARCHS}

    def verdicts(ratio, spread=0.02, identified=everyone):
        fit = _power_fit("approach2", "N_opt(C)", {a: ratio for a in rules.LINEAR}, spread)
        fit = fit.with_(params=pd.concat([fit.params, fit.params.assign(law="D_opt(C)")]),
                        points=pd.concat([fit.points, fit.points.assign(law="D_opt(C)")]),
                        draws=pd.concat([fit.draws, fit.draws.assign(law="D_opt(C)")]))
        return {row["id"]: row["verdict"] for row in claims.allocation_claims(fit, identified)}

    assert verdicts(1.5) == {"more_parameters": REPRODUCED, "more_tokens": REPRODUCED}
    assert verdicts(0.6)["more_parameters"] == NOT_REPRODUCED
    assert verdicts(1.05, spread=0.3)["more_parameters"] == INCONCLUSIVE
    assert verdicts(1.5, identified={**everyone, "llama": (False, "design check")})["more_parameters"] == NOT_TESTABLE
    # one linear model not identified: the claim cannot be reproduced for all of them
    assert verdicts(1.5, identified={**everyone, "tnl": (False, "design check")})["more_parameters"] == INCONCLUSIVE
    assert claims.allocation_claims(None, {})[0]["verdict"] == NOT_TESTABLE


def test_exponent_claim_is_an_equivalence_test_with_the_fixed_margin():
    everyone = {a: (True, "") for a in ARCHS}

    def verdict(shift, spread=0.02, identified=everyone):
        fit = _power_fit("approach1", "L(C)", {}, spread, exponent=-0.08,
                         exponent_shift={a: shift for a in rules.LINEAR})
        return claims.exponent_claim(fit, identified)

    row = verdict(0.002)
    assert row["verdict"] == REPRODUCED and f"±{rules.MARGINS['exponent']}" in row["evidence"]
    assert verdict(0.03)["verdict"] == NOT_REPRODUCED
    assert verdict(0.0, spread=0.2)["verdict"] == INCONCLUSIVE  # intervals that overlap are not equality
    assert verdict(0.0, identified={**everyone, "llama": (False, "no crossover")})["verdict"] == NOT_TESTABLE


def test_lower_loss_needs_a_linear_model_beside_llama():
    grid = _grid({a: 1.0 for a in ARCHS})
    row = claims.lower_loss_claim(grid[grid["arch"] == "llama"], _noise())
    assert row["verdict"] == NOT_TESTABLE and row["evidence"] == "needs LLaMA and a linear model"


def test_allocation_intervals_are_95_percent_and_each_budget_is_named_with_its_half_width():
    """Each architecture's k·C^e drawn with log k of sd s and e of sd s/10 (_power_fit): log(linear / LLaMA)
    at C is normal with sd √2·√(s² + (s/10·ln C)²), so a 95% interval's half width is 1.96 of those (a 90%
    one's 1.64). A ratio whose 95% interval reaches 1 is not "more", even where a 90% one stays above it."""
    everyone = {a: (True, "") for a in ARCHS}
    spread = 0.1
    sd = np.sqrt(2) * np.hypot(spread, spread / 10 * np.log([1e11, 1e12, 1e13]))  # the three budgets
    fit = _power_fit("approach2", "N_opt(C)", {}, spread, resamples=2000)
    (row,) = [r for r in claims.allocation_claims(fit, everyone) if r["id"] == "more_parameters"]
    assert list(row["tolerance"]) == [f"log(N_opt(C) ratio)[{a}, C={c:.3g}]" for a in rules.LINEAR
                                      for c in (1e11, 1e12, 1e13)]
    assert list(row["tolerance"].values()) == pytest.approx(list(stats.norm.ppf(0.975) * sd) * 3, rel=0.08)
    # the ratio 1.8 sd above 1 at the widest budget: its 95% interval reaches 1, a 90% one would not
    for factor, verdict in ((1.8, INCONCLUSIVE), (3.6, REPRODUCED)):
        fit = _power_fit("approach2", "N_opt(C)", {a: np.exp(factor * sd.max()) for a in rules.LINEAR}, spread,
                         resamples=2000)
        assert claims.allocation_claims(fit, everyone)[0]["verdict"] == verdict, factor


def test_exponent_differences_are_read_on_90_percent_intervals_linear_minus_llama():
    """Each exponent drawn with sd s/10: a difference of two has sd s·√2/10, and a 90% interval (two
    one-sided tests at 5%) half width 1.64 of those; the estimate is the linear model's minus LLaMA's."""
    everyone = {a: (True, "") for a in ARCHS}
    spread = 0.1
    fit = _power_fit("approach1", "L(C)", {}, spread, exponent=-0.08, exponent_shift={"tnl": 0.004}, resamples=2000)
    row = claims.exponent_claim(fit, everyone)
    half = stats.norm.ppf(0.95) * spread / 10 * np.sqrt(2)
    assert list(row["tolerance"].values()) == pytest.approx([half] * 3, rel=0.08)
    assert row["numbers"]["exponent-llama[tnl]"] == pytest.approx(0.004)
    assert row["numbers"]["exponent-llama[hgrn2]"] == pytest.approx(0.0, abs=1e-12)
    # the margin itself: 1.5 margins apart on either side, each interval (half width 0.005) beyond it
    margin = rules.MARGINS["exponent"]
    for shift in (1.5 * margin, -1.5 * margin):
        fit = _power_fit("approach1", "L(C)", {}, 0.02, exponent=-0.08, exponent_shift={"tnl": shift})
        assert claims.exponent_claim(fit, everyone)["verdict"] == NOT_REPRODUCED, shift


def test_laws_without_bootstrap_draws_are_inconclusive_not_decided():
    everyone = {a: (True, "") for a in ARCHS}
    allocation = _power_fit("approach2", "N_opt(C)", {a: 1.5 for a in rules.LINEAR}, 0.02)
    allocation = allocation.with_(draws=allocation.draws.iloc[0:0])
    assert [r["verdict"] for r in claims.allocation_claims(allocation, everyone)] == [INCONCLUSIVE, INCONCLUSIVE]
    exponents = _power_fit("approach1", "L(C)", {}, 0.02, exponent=-0.08)
    row = claims.exponent_claim(exponents.with_(draws=exponents.draws.iloc[0:0]), everyone)
    assert row["verdict"] == INCONCLUSIVE and "no bootstrap draws" in row["evidence"]


def test_the_evidence_names_the_linear_models_in_the_papers_order():
    """TNL, HGRN2, cosFormer2, as the paper's tables and every chapter of the book list them."""
    everyone = {a: (True, "") for a in ARCHS}
    labels = ["TNL", "HGRN2", "cosFormer2"]
    fit = _power_fit("approach2", "N_opt(C)", {a: 1.5 for a in rules.LINEAR}, 0.02)
    exponents = _power_fit("approach1", "L(C)", {}, 0.02, exponent=-0.08)
    runs = pd.DataFrame([dict(run_id=f"{arch}-{copy}", arch=arch, size="s1", params=1e4, flops=flops,
                              tokens=flops / 6e4, fitted_loss=worse * 3.0 * (flops / 1e10) ** -0.05)
                         for arch in ARCHS for copy, worse in (("a", 1.0), ("b", 1.1))
                         for flops in np.geomspace(1e10, 1e12, 12)])  # two runs each: an envelope needs them
    rows = [claims.lower_loss_claim(runs, _noise()), claims.allocation_claims(fit, everyone)[0],
            claims.exponent_claim(exponents, everyone),
            claims.downstream_claims(_seed_scores({}), rules.Noise(_seed_scores({})), "s3")[0]]
    for row in rows:
        at = [row["evidence"].index(label) for label in labels]
        assert at == sorted(at), row["id"]


# ----------------------------------------------------------------------------- downstream


def _seed_scores(shift: dict, sd: float = 0.01) -> pd.DataFrame:
    """Three seeds per architecture: accuracies 0.5 + shift, bits per byte 1 - shift."""
    rows = []
    for arch in ARCHS:
        for z in (-1.0, 0.0, 1.0):
            s = shift.get(arch, 0.0)
            rows.append(dict(arch=arch, knowledge_acc=0.5 + s + z * sd, bits_per_byte=1.0 - s + z * sd,
                             niah_easy_wa=0.5 + s + z * sd))
    return pd.DataFrame(rows)


def _downstream(shift, sd=0.01):
    scores = _seed_scores(shift, sd)
    return {row["id"]: row for row in claims.downstream_claims(scores, rules.Noise(scores), "s3")}


def test_knowledge_claim_is_non_inferiority_within_the_margins():
    # equal means, noise of means t·0.003·√(2/3) = 0.007 (0.7% of bits per byte): inside both margins
    assert _downstream({}, sd=0.003)["knowledge"]["verdict"] == REPRODUCED
    assert _downstream({a: -0.1 for a in rules.LINEAR})["knowledge"]["verdict"] == NOT_REPRODUCED
    assert _downstream({}, sd=0.01)["knowledge"]["verdict"] == INCONCLUSIVE  # a bound of 0.023 > the margin
    assert claims.downstream_claims(pd.DataFrame(columns=["arch"]), _noise(), "s3")[0]["verdict"] == NOT_TESTABLE


def test_retrieval_claim_needs_llama_above_every_linear_model():
    assert _downstream({"llama": 0.2})["retrieval"]["verdict"] == REPRODUCED
    assert _downstream({"llama": -0.2})["retrieval"]["verdict"] == NOT_REPRODUCED
    assert _downstream({"llama": 0.2, "tnl": 0.2})["retrieval"]["verdict"] == INCONCLUSIVE


def test_decay_claim_needs_both_halves():
    # cosFormer2 worse at language (lower knowledge) but better at retrieval: both halves at once are
    # not expressible with one shift, so set the columns directly
    scores = _seed_scores({})
    cos = scores["arch"] == "cosformer2"
    both = scores.assign(knowledge_acc=np.where(cos, scores["knowledge_acc"] - 0.1, scores["knowledge_acc"]),
                         niah_easy_wa=np.where(cos, scores["niah_easy_wa"] + 0.1, scores["niah_easy_wa"]))
    verdict = {r["id"]: r["verdict"] for r in claims.downstream_claims(both, rules.Noise(both), "s3")}["decay"]
    assert verdict == REPRODUCED
    assert _downstream({"cosformer2": 0.1})["decay"]["verdict"] == NOT_REPRODUCED  # better at both: one half against
    assert _downstream({"cosformer2": -0.1})["decay"]["verdict"] == NOT_REPRODUCED  # worse at both: retrieval against
    opposite = scores.assign(knowledge_acc=np.where(cos, scores["knowledge_acc"] + 0.1, scores["knowledge_acc"]),
                             bits_per_byte=np.where(cos, scores["bits_per_byte"] - 0.1, scores["bits_per_byte"]),
                             niah_easy_wa=np.where(cos, scores["niah_easy_wa"] - 0.1, scores["niah_easy_wa"]))
    verdict = {r["id"]: r["verdict"] for r in claims.downstream_claims(opposite, rules.Noise(opposite), "s3")}["decay"]
    assert verdict == NOT_REPRODUCED
    # worse knowledge but better bits per byte, both beyond the noise: the measures disagree, so the language
    # half decides nothing (it was reproduced: either measure worse was enough)
    split = both.assign(bits_per_byte=np.where(cos, scores["bits_per_byte"] - 0.1, scores["bits_per_byte"]))
    verdict = {r["id"]: r["verdict"] for r in claims.downstream_claims(split, rules.Noise(split), "s3")}["decay"]
    assert verdict == INCONCLUSIVE
    without = _seed_scores({"llama": 0.2}).query("arch != 'cosformer2'")  # LLaMA far ahead of TNL and HGRN2
    rows = {r["id"]: r["verdict"] for r in claims.downstream_claims(without, rules.Noise(without), "s3")}
    assert rows["decay"] == NOT_TESTABLE and rows["retrieval"] == REPRODUCED
    no_llama = both[both["arch"] != "llama"]
    assert {r["id"]: r["verdict"] for r in claims.downstream_claims(no_llama, rules.Noise(no_llama), "s3")}[
        "retrieval"] == NOT_TESTABLE


def test_retrieval_is_judged_on_the_runs_given_for_it():
    # the seeds ablation's size: no retrieval gap; the largest size: LLaMA ahead by 0.2 with small noise
    base = _seed_scores({})
    largest = _seed_scores({"llama": 0.2}, sd=0.005).iloc[::3].pipe(lambda t: pd.concat([t, t.assign(
        niah_easy_wa=t["niah_easy_wa"] + 0.005)], ignore_index=True))  # two seeds each
    rows = {r["id"]: r for r in claims.downstream_claims(base, rules.Noise(base), "s3",
                                                          claims.SeedRuns(largest, rules.Noise(largest), "s6"))}
    assert rows["retrieval"]["verdict"] == REPRODUCED
    assert rows["retrieval"]["evidence"].startswith("size s6, means over 2 seeds")
    # the decay claim: language at the seeds ablation's size, retrieval at the largest
    assert "size s3" in rows["decay"]["evidence"] and "size s6" in rows["decay"]["evidence"]
    assert rows["knowledge"]["evidence"].startswith("size s3, means over 3 seeds")
    uneven = base.drop(index=base.index[base["arch"] == "tnl"][0])  # one TNL seed diverged: 2 seeds, the others 3
    assert claims.SeedRuns(uneven, rules.Noise(uneven), "s3").where() == "size s3, means over 2 to 3 seeds"
    # without runs for retrieval the seeds ablation's are used
    same = {r["id"]: r for r in claims.downstream_claims(base, rules.Noise(base), "s3",
                                                          claims.SeedRuns(base.iloc[0:0], rules.Noise(), "s6"))}
    assert same["retrieval"]["verdict"] == INCONCLUSIVE and same["retrieval"]["evidence"].startswith("size s3")
    # retrieval runs without TNL: the decay claim's retrieval half has nothing to compare, so the claim is not
    # testable (it read inconclusive), while the retrieval claim judges the linear models that are there
    no_tnl = largest[largest["arch"] != "tnl"]
    rows = {r["id"]: r for r in claims.downstream_claims(base, rules.Noise(base), "s3",
                                                          claims.SeedRuns(no_tnl, rules.Noise(no_tnl), "s6"))}
    assert rows["decay"]["verdict"] == NOT_TESTABLE and rows["decay"]["evidence"] == "needs TNL and cosFormer2"
    assert rows["retrieval"]["verdict"] == REPRODUCED and "TNL" not in rows["retrieval"]["evidence"]


def test_verdict_counts_name_every_verdict_once():
    """The findings chapter's tally: each verdict with its count, those no claim reached at 0, in the
    verdicts' fixed order."""
    table = pd.DataFrame({"verdict": [REPRODUCED, INCONCLUSIVE, REPRODUCED, NOT_TESTABLE]})
    counts = claims.verdict_counts(table)
    assert list(counts) == list(rules.VERDICTS) and sum(counts.values()) == 4
    assert counts == {**dict.fromkeys(rules.VERDICTS, 0), REPRODUCED: 2, INCONCLUSIVE: 1, NOT_TESTABLE: 1}
    assert all(type(n) is int for n in counts.values())  # glued into the prose, not numpy's int64


def test_knowledge_differences_in_bits_per_byte_are_relative_to_llamas():
    """bits per byte of 2.0 for LLaMA and 2.2 for the linear models: 10% more, not 0.2."""
    scores = _seed_scores({}).assign(bits_per_byte=lambda t: np.where(t["arch"] == "llama", 2.0, 2.2)
                                     + 0.01 * np.tile([-1.0, 0.0, 1.0], len(ARCHS)))
    (row,) = [r for r in claims.downstream_claims(scores, rules.Noise(scores), "s3") if r["id"] == "knowledge"]
    assert row["numbers"]["bits_per_byte/llama-1[tnl]"] == pytest.approx(0.1)
    assert row["verdict"] == NOT_REPRODUCED and "bits/byte +10.00%" in row["evidence"]


def test_the_decay_claims_margin_to_flip_and_agreement_follow_its_own_rule():
    """cosFormer2's knowledge 0.03 below TNL's (just beyond its bound), bits per byte alike, retrieval far
    better: reproduced. With bits per byte inside the noise the knowledge part alone carries the language
    half: the margin to flip is its distance to its edge, and a re-run agrees about as often as that part
    stays beyond it (judged as a plain conjunction, every part reproduced, the margin was the bits part's
    1 bound and the agreement 0.88)."""
    scores = _seed_scores({})
    cos = scores["arch"] == "cosformer2"
    near = scores.assign(knowledge_acc=np.where(cos, scores["knowledge_acc"] - 0.03, scores["knowledge_acc"]),
                         niah_easy_wa=np.where(cos, scores["niah_easy_wa"] + 0.1, scores["niah_easy_wa"]))
    (row,) = [r for r in claims.downstream_claims(near, rules.Noise(near), "s3") if r["id"] == "decay"]
    d, u = row["numbers"]["knowledge_acc cosformer2-tnl"], row["tolerance"]["knowledge_acc cosformer2-tnl"]
    assert row["verdict"] == REPRODUCED and -d > u
    assert row["margin_to_flip"] == pytest.approx((-d - u) / u, abs=0.01)
    # a re-run keeps the verdict about as often as it keeps that part beyond its edge
    knowledge = rules.difference_part(d, u, rules.Noise(near).dof("knowledge_acc"), "negative")
    assert row["agreement"] == pytest.approx(rules.rerun_agreement([knowledge]), abs=0.06)


def test_largest_size_seeds_takes_the_largest_retrained_size_with_two_seeds_each(monkeypatch):
    from linscale.findings import ablations

    def scores(sizes, seeds=2, niah=True):
        rows = [dict(arch=a, size=size, variant=f"v{k}", run_id=f"{a}-{size}", step=1, niah_easy_wa=0.5)
                for a in ARCHS for size in sizes for k in range(seeds)]
        table = pd.DataFrame(rows)
        return table if niah else table.drop(columns=["niah_easy_wa"])

    order = ["s1", "s2", "s3", "s6"]
    monkeypatch.setattr(ablations, "ablation_scores", lambda *a, **k: scores(["s6", "s1"]))
    found = claims.largest_size_seeds("cpu", "results", order)
    assert found.size == "s6" and set(found.scores["size"]) == {"s6"} and len(found.scores) == 2 * len(ARCHS)
    monkeypatch.setattr(ablations, "ablation_scores", lambda *a, **k: scores(["s6"], seeds=1))
    assert claims.largest_size_seeds("cpu", "results", order) is None  # one seed: no noise to judge by
    monkeypatch.setattr(ablations, "ablation_scores", lambda *a, **k: scores(["s6"], niah=False))
    assert claims.largest_size_seeds("cpu", "results", order) is None  # not evaluated on retrieval
    monkeypatch.setattr(ablations, "ablation_scores", lambda *a, **k: scores([]).iloc[0:0])
    assert claims.largest_size_seeds("cpu", "results", order) is None


# ----------------------------------------------------------------------------- ablations


def _ablation(aspect_spread: dict, context_spread: float, niah_gain: float, noise: rules.Noise):
    """Three shapes and three contexts, as the studies' ablations have: the spreads and gain end to end."""
    aspect = pd.DataFrame([dict(arch=a, aspect=x, loss=2.0 * (1 + aspect_spread[a] * i / 2))
                           for a in ("llama", "cosformer2") for i, x in enumerate((4.0, 8.0, 16.0))])
    context = pd.DataFrame([dict(arch=a, seq_len=n, excess=0.1 + context_spread * i / 2)
                            for a in rules.LINEAR for i, n in enumerate((64, 128, 256))])
    scores = pd.DataFrame([dict(arch=a, seq_len=n, niah_easy_wa=0.3 + niah_gain * i / 2)
                           for a in rules.LINEAR for i, n in enumerate((64, 128, 256))])
    return {row["id"]: row["verdict"] for row in claims.ablation_claims(aspect, context, scores, noise)}


def test_context_claims_take_the_noise_of_the_context_ablations_size():
    quiet, loud = _noise(rel_sd=0.002, acc_sd=0.01, excess_sd=0.002), _noise(rel_sd=0.05, acc_sd=0.3, excess_sd=0.05)
    # cosFormer2's loss 5% apart across shapes, LLaMA's equal: beyond the quiet noise, inside the loud one
    aspect = pd.DataFrame([dict(arch=a, aspect=x, loss=2.0 * (1 + 0.05 * i * (a == "cosformer2")))
                           for a in ("llama", "cosformer2") for i, x in enumerate((4.0, 8.0))])
    context = pd.DataFrame([dict(arch=a, seq_len=n, excess=0.1 + 0.1 * i) for a in rules.LINEAR for i, n in enumerate((64, 256))])
    scores = pd.DataFrame([dict(arch=a, seq_len=n, niah_easy_wa=0.3 + 0.2 * i) for a in rules.LINEAR for i, n in enumerate((64, 256))])

    def verdicts(*args, **kwargs):
        return {r["id"]: r for r in claims.ablation_claims(aspect, context, scores, *args, **kwargs)}

    assert verdicts(quiet)["context_retrieval"]["verdict"] == REPRODUCED
    judged = verdicts(quiet, loud, "s6")  # the context ablation's own size is noisier: its noise decides
    assert judged["context_retrieval"]["verdict"] == INCONCLUSIVE and judged["context_loss"]["verdict"] == INCONCLUSIVE
    assert judged["context_retrieval"]["evidence"].startswith("size s6, ")
    # the aspect claim takes ``noise`` (the aspect ablation's size), never the context ablation's
    assert judged["aspect"]["verdict"] == REPRODUCED and verdicts(loud, quiet, "s6")["aspect"]["verdict"] == INCONCLUSIVE
    assert verdicts(loud, quiet, "s6")["context_retrieval"]["verdict"] == REPRODUCED


def test_ablation_claims_reach_every_verdict():
    noise = _noise(rel_sd=0.002, acc_sd=0.01, excess_sd=0.002)
    assert _ablation({"llama": 0.0, "cosformer2": 0.05}, 0.0, 0.2, noise) == {
        "aspect": REPRODUCED, "context_loss": REPRODUCED, "context_retrieval": REPRODUCED}
    assert _ablation({"llama": 0.05, "cosformer2": 0.0}, 0.1, -0.2, noise) == {
        "aspect": NOT_REPRODUCED, "context_loss": NOT_REPRODUCED, "context_retrieval": NOT_REPRODUCED}
    # a context spread at the margin, differences inside the noise
    assert _ablation({"llama": 0.0, "cosformer2": 0.002}, rules.MARGINS["context_excess"], 0.005, noise) == {
        "aspect": INCONCLUSIVE, "context_loss": INCONCLUSIVE, "context_retrieval": INCONCLUSIVE}
    empty = pd.DataFrame(columns=["arch", "seq_len", "loss", "excess", "niah_easy_wa"])
    assert {r["verdict"] for r in claims.ablation_claims(empty, empty, empty, noise)} == {NOT_TESTABLE}


def test_ablation_evidence_reads_rows_in_any_order_with_the_spreads_bound():
    """The retrieval claim compares the shortest context with the longest, whatever order the rows come in
    (a table listed longest first read the gain backwards); the aspect claim's bound is that of a difference
    of two spreads, each itself a difference of two runs' losses: sqrt(2) times one relative bound."""
    noise = _noise(rel_sd=0.002, acc_sd=0.01, excess_sd=0.002)
    aspect = pd.DataFrame([dict(arch=a, aspect=x, loss=2.0 * (1 + 0.05 * i * (a == "cosformer2")))
                           for a in ("llama", "cosformer2") for i, x in enumerate((4.0, 8.0))])
    context = pd.DataFrame([dict(arch=a, seq_len=n, excess=0.1) for a in rules.LINEAR for n in (256, 64, 128)])
    scores = pd.DataFrame([dict(arch=a, seq_len=n, niah_easy_wa=x) for a in rules.LINEAR
                           for n, x in ((256, 0.5), (64, 0.3), (128, 0.4))])  # longest first: gain +0.2
    rows = {row["id"]: row for row in claims.ablation_claims(aspect, context, scores, noise)}
    assert rows["context_retrieval"]["verdict"] == REPRODUCED
    assert rows["context_retrieval"]["numbers"]["niah_easy_wa long-short[tnl]"] == pytest.approx(0.2)
    assert "TNL 0.300 (n = 64) → 0.500 (n = 256)" in rows["context_retrieval"]["evidence"]
    assert rows["aspect"]["tolerance"]["spread cosformer2-llama"] == pytest.approx(
        noise.bound("loss", relative=True) * np.sqrt(2))


def test_ablation_claims_judge_only_runs_with_finite_results():
    """pandas' max and min skip NaN, so a shape or context without a final loss (or score) narrowed a
    spread unseen: context losses (0.1, NaN, NaN) were a spread of 0, "reproduced"; cosFormer2's aspect
    losses (2.0, NaN, NaN) a spread of 0, "not reproduced". A spread is now over the shapes both
    architectures have (the contexts an architecture has), and fewer than two is not testable."""
    noise = _noise(rel_sd=0.002, acc_sd=0.01, excess_sd=0.002)
    nan = float("nan")

    def judged(aspect_losses: dict, excess: list, niah: list):
        aspect = pd.DataFrame([dict(arch=a, aspect=x, loss=loss) for a, losses in aspect_losses.items()
                               for x, loss in zip((4.0, 8.0, 16.0), losses)])
        context = pd.DataFrame([dict(arch=a, seq_len=n, excess=e) for a in rules.LINEAR
                                for n, e in zip((64, 128, 256), excess)])
        scores = pd.DataFrame([dict(arch=a, seq_len=n, niah_easy_wa=x) for a in rules.LINEAR
                               for n, x in zip((64, 128, 256), niah)])
        return {row["id"]: row for row in claims.ablation_claims(aspect, context, scores, noise)}

    rows = judged({"llama": [2.0, 2.0, 2.0], "cosformer2": [2.0, nan, nan]}, [0.1, nan, nan], [0.3, nan, nan])
    assert {claim: rows[claim]["verdict"] for claim in ("aspect", "context_loss", "context_retrieval")} == {
        "aspect": NOT_TESTABLE, "context_loss": NOT_TESTABLE, "context_retrieval": NOT_TESTABLE}
    assert "fewer than two contexts" in rows["context_loss"]["evidence"]
    # cosFormer2's widest shape lost: both spreads over the two shapes both have (LLaMA's third left out)
    rows = judged({"llama": [2.0, 2.0, 2.2], "cosformer2": [2.0, 2.1, nan]}, [0.1, 0.1, nan], [0.3, 0.3, 0.5])
    assert rows["aspect"]["verdict"] == REPRODUCED and "LLaMA 0.00%" in rows["aspect"]["evidence"]
    assert rows["context_loss"]["verdict"] == REPRODUCED and rows["context_retrieval"]["verdict"] == REPRODUCED


def test_the_context_claim_uses_loss_above_the_bayes_loss():
    """Languages of different contexts differ in entropy: a raw-loss spread of 0.04 nats that is all
    entropy is no spread at all in the excess the claim reads."""
    from linscale.findings import inputs

    table = pd.DataFrame({"arch": "tnl", "run_id": ["a", "b"], "variant": ["c64", "c256"], "step": 10,
                          "seq_len": [64, 256], "train_loss": [1.60, 1.56], "train_bayes_loss": [1.53, 1.49],
                          "diverged": False})
    with_excess = inputs.with_fitted_loss(table, "cpu")
    assert with_excess["excess"].tolist() == pytest.approx([0.07, 0.07])
    # with held-out losses, the excess is read there (thousands of tokens instead of one batch)
    held_out = table.assign(val_loss=[1.58, 1.55], bayes_loss=[1.53, 1.49])
    assert inputs.with_fitted_loss(held_out, "cpu")["excess"].tolist() == pytest.approx([0.05, 0.06])


def test_a_linear_model_left_with_one_context_leaves_the_others_judged():
    """Diverged runs are left out of an ablation's table: a linear model whose other contexts diverged
    has one context left. Its part is not testable; the other linear models' spreads are still judged
    (the claim was "not testable: no training-context ablation", as if there were none)."""
    noise = _noise(rel_sd=0.002, acc_sd=0.01, excess_sd=0.002)
    aspect = pd.DataFrame(columns=["arch", "aspect", "loss"])

    def judged(hgrn2_spread: float):
        spread = {"tnl": 0.0, "hgrn2": hgrn2_spread}
        context = pd.DataFrame([dict(arch=a, seq_len=n, excess=0.1 + spread[a] * i / 2)
                                for a in ("tnl", "hgrn2") for i, n in enumerate((64, 128, 256))]
                               + [dict(arch="cosformer2", seq_len=128, excess=0.1)])
        scores = pd.DataFrame([dict(arch=a, seq_len=n, niah_easy_wa=0.3 + (0.2 if a == "tnl" else -0.2) * i / 2)
                               for a in ("tnl", "hgrn2") for i, n in enumerate((64, 128, 256))]
                              + [dict(arch="cosformer2", seq_len=128, niah_easy_wa=0.3)])
        return {row["id"]: row for row in claims.ablation_claims(aspect, context, scores, noise)}

    rows = judged(0.0)
    assert rows["context_loss"]["verdict"] == INCONCLUSIVE  # two alike, one not testable: not for all three
    assert "cosFormer2 has a finite final loss at fewer than two contexts" in rows["context_loss"]["evidence"]
    assert set(rows["context_loss"]["numbers"]) == {"excess spread[tnl]", "excess spread[hgrn2]"}
    assert judged(0.1)["context_loss"]["verdict"] == NOT_REPRODUCED  # HGRN2's loss moves with the context
    assert rows["context_retrieval"]["verdict"] == NOT_REPRODUCED  # HGRN2 retrieves worse trained longer
    assert "cosFormer2 has a score at fewer than two contexts" in rows["context_retrieval"]["evidence"]


def test_sized_noise_holds_losses_and_retrieval_scores_of_every_measured_size():
    """The committed smoke study: its seeds ablation (s1) and size_seeds ablation (s2), each with final
    losses and NIAH scores, so that the context claims can take the noise of the context ablation's size."""
    from pathlib import Path

    results = Path(__file__).resolve().parent.parent / "results"
    samples = claims.sized_noise("smoke", str(results)).samples
    for column in ("loss", "excess", "niah_easy_wa"):
        measured = samples.dropna(subset=[column]).groupby("size")["arch"].value_counts()
        assert set(measured.index.get_level_values("size")) == {"s1", "s2"}, column
        assert measured.min() >= 2, column  # two seeds or more per architecture and size


def test_a_study_that_trained_no_seeds_has_no_measured_noise_to_set_a_difference_against(tmp_path):
    """A study without seeds or size_seeds runs (the text study of `linscale study --no-ablations`) has a noise
    whose every bound is NaN: the training and scaling-laws pages read it as measured and printed "fitted to
    seeds at ;" and "s3 nan%". measured_sized_noise refuses it, as those pages' "no seeds ablation" branch expects."""
    import shutil
    from pathlib import Path

    results = Path(__file__).resolve().parent.parent / "results"
    shutil.copytree(results / "smoke", tmp_path / "smoke", ignore=shutil.ignore_patterns("ablations"))
    empty = claims.sized_noise("smoke", str(tmp_path))
    assert empty.samples.empty and np.isnan(empty.bound_between("loss", ("s1", "s2"), ["s1", "s2"], relative=True))
    with pytest.raises(ValueError, match="measured no seed noise"):
        findings.measured_sized_noise("smoke", str(tmp_path))
    measured = findings.measured_sized_noise("smoke", str(results))
    assert np.isfinite(measured.bound_between("loss", ("s1", "s2"), ["s1", "s2"], relative=True))


# ----------------------------------------------------------------------------- the losses' noise trend


def _sized_samples(rng, sd_of, sizes=(("s1", 1e4, 2), ("s3", 1e5, 3), ("s6", 1e6, 2)), archs=ARCHS):
    """Final losses of seeds at three sizes (name, parameters, seeds), relative sd ``sd_of(N)``, and the
    parameters of every size name."""
    rows = [dict(arch=a, size=name, loss=2.0 * (1 + sd_of(n) * rng.standard_normal()))
            for name, n, seeds in sizes for a in archs for _ in range(seeds)]
    return pd.DataFrame(rows), {name: n for name, n, _ in sizes}


def test_size_trend_is_the_maximum_likelihood_line_through_the_cells_variances():
    # one size: b = 0 and σ² the pooled variance, as Noise.pooled
    one = pd.DataFrame({"var": [1e-4, 4e-4], "dof": [2, 1], "params": [1e5, 1e5]})
    trend = rules.fit_size_trend(one)
    assert (trend.b, trend.dof) == (0.0, 2) and trend.sd(1e5) ** 2 == pytest.approx((2e-4 + 4e-4) / 3)
    # many cells from a known trend: recovered
    rng = np.random.default_rng(0)
    n = np.repeat(np.geomspace(1e4, 1e7, 4), 200)
    true_var = np.exp(-7.0 - 0.5 * np.log(n))
    cells = pd.DataFrame({"var": true_var * rng.chisquare(2, len(n)) / 2, "dof": 2, "params": n})
    trend = rules.fit_size_trend(cells)
    assert trend.b == pytest.approx(-0.5, abs=0.05) and trend.a == pytest.approx(-7.0, abs=0.5)
    assert trend.dof == 2 * len(n) - 2
    # a cell whose runs agree to the bit (variance 0) is evidence of little noise, not an error
    assert rules.fit_size_trend(cells.assign(var=lambda t: t["var"].where(t.index != 0, 0.0))) is not None
    assert rules.fit_size_trend(one.assign(var=0.0)) is None  # nothing measured
    # a study without its seeds ablations: no cells, with the untyped columns of an empty table (was a TypeError)
    assert rules.fit_size_trend(pd.DataFrame(columns=["var", "dof", "params"])) is None


def test_a_loss_takes_the_trend_at_its_size_pooled_over_every_architecture():
    rng = np.random.default_rng(1)
    samples, params = _sized_samples(rng, lambda n: 0.05 * n ** -0.25)
    order = ["s1", "s2", "s3", "s4", "s5", "s6"]
    noise = rules.Noise(samples, params={**params, "s2": 3e4, "s4": 3e5, "s5": 6e5})
    trend = noise.trend("loss", relative=True)
    assert trend.dof == 4 * (1 + 2 + 1) - 2 and trend.b < 0
    sd3, dof3 = noise.at_size("s3", order, "loss", relative=True)
    assert (sd3, dof3) == (pytest.approx(trend.sd(1e5)), trend.dof)
    assert noise.at_size("s4", order, "loss", relative=True)[0] == pytest.approx(trend.sd(3e5))  # between measured sizes
    at = noise.at("s3", order)
    assert at.bound("loss", relative=True) == pytest.approx(stats.t.ppf(0.975, trend.dof) * np.sqrt(2) * sd3)
    assert at.bound("loss", ["llama", "tnl"], relative=True) < np.inf  # a pair still has a bound
    # the degrees of freedom a claim's agreement is simulated with are the trend's
    assert at.dof("loss", relative=True) == noise.dof_between("loss", ("s1", "s3"), order, relative=True) == trend.dof
    # an accuracy takes no trend: one noise pooled over every (architecture, size) cell, at every size
    scores = samples.assign(niah=0.5 + 0.1 * rng.standard_normal(len(samples)))
    cells = rules.Noise(scores).cells("niah", ["arch", "size"])
    pooled = np.sqrt(((cells["runs"] - 1) * cells["sd"] ** 2).sum() / (cells["runs"] - 1).sum())
    for size in ("s1", "s3", "s6"):
        assert rules.Noise(scores, params=params).at(size, order).pooled("niah") == (pytest.approx(pooled), 16)
    # without the sizes' parameters, a loss is pooled over the cells as an accuracy is
    assert rules.Noise(samples).at_size("s3", order, "loss", relative=True)[1] == 16


def test_pooled_trend_bounds_vary_less_between_re_runs_than_a_pairs_noise_at_one_size():
    """Why the rule pools: over 300 simulated re-runs of the seeds and size_seeds ablations from one
    known noise model, the bound a claim about LLaMA and cosFormer2 at s3 would take varies between
    re-runs far less with the pooled trend (14 degrees of freedom) than with the pair's own seeds at s3
    (4): the middle 95% of its bounds span 2.1-fold against 3.9-fold."""
    rng = np.random.default_rng(2)
    order = ["s1", "s3", "s6"]
    pair, trend = [], []
    for _ in range(300):
        samples, params = _sized_samples(rng, lambda n: 0.05 * n ** -0.25)
        s3 = samples[samples["size"] == "s3"]
        pair.append(rules.Noise(s3).bound("loss", ["llama", "cosformer2"], relative=True))
        trend.append(rules.Noise(samples, params=params).at("s3", order).bound("loss", relative=True))
    spread = {name: np.percentile(b, 97.5) / np.percentile(b, 2.5) for name, b in (("pair", pair), ("trend", trend))}
    assert spread["trend"] < 2.5 < 3.0 < spread["pair"] and spread["pair"] > 1.5 * spread["trend"]


# ----------------------------------------------------------------------------- will a re-run agree?


def test_rerun_agreement_is_near_one_far_from_an_edge_and_near_half_on_it():
    u = 0.01
    assert rules.rerun_agreement([rules.difference_part(5 * u, u, 14, "positive")]) > 0.99
    assert rules.rerun_agreement([rules.difference_part(u, u, 14, "positive")]) == pytest.approx(0.5, abs=0.05)
    # a part no re-run moves, and a claim of such parts only
    assert rules.rerun_agreement([rules.fixed_part(NOT_TESTABLE), rules.difference_part(5 * u, u, 14, "positive")]) > 0.99
    assert np.isnan(rules.rerun_agreement([rules.fixed_part(NOT_TESTABLE)]))
    # the same inputs give the same probability on every machine
    part = rules.equivalence_part(0.015, 0.004, 8, 0.02)
    assert rules.rerun_agreement([part]) == rules.rerun_agreement([part])
    # a claim refuted by one part far beyond its edge stays refuted whatever the other parts do
    both = [rules.difference_part(3 * u, u, 14, "positive"), rules.difference_part(-6 * u, u, 14, "positive"),
            rules.difference_part(u, u, 14, "positive")]
    assert rules.combine([p.verdict() for p in both]) == NOT_REPRODUCED and rules.rerun_agreement(both) > 0.99
    # an interval keeps its shape as it moves: a 90% interval [0.001, 0.009] inside ±0.01
    shifted = rules.interval_part(0.004, 0.001, 0.009, lambda lo, hi: rules.interval_equivalence(lo, hi, 0.01), 0.90)
    assert shifted.verdict() == REPRODUCED and 0.5 < rules.rerun_agreement([shifted]) < 1


def test_rerun_agreement_is_calibrated_against_simulated_pairs_of_studies():
    """Pairs of honest studies of one true difference (spread over ±4 standard deviations), each with its
    own three seeds per architecture: the mean agreement study A predicts equals how often B reached A's
    verdict."""
    rng = np.random.default_rng(3)
    sigma, dof, predicted, agreed = 1.0, 8, [], []
    t = stats.t.ppf(0.975, dof)
    for _ in range(600):
        truth = rng.uniform(-4, 4) * np.sqrt(2) * sigma
        studies = []
        for _ in range(2):
            s = sigma * np.sqrt(rng.chisquare(dof) / dof)  # the study's own noise estimate
            studies.append(rules.difference_part(truth + np.sqrt(2) * sigma * rng.standard_normal(), t * np.sqrt(2) * s,
                                                 dof, "positive"))
        predicted.append(rules.rerun_agreement([studies[0]], draws=400, seed=len(predicted)))
        agreed.append(studies[0].verdict() == studies[1].verdict())
    assert np.mean(predicted) == pytest.approx(np.mean(agreed), abs=0.05)
    assert 0.6 < np.mean(agreed) < 0.95  # the design puts many pairs near an edge: the test can tell


def test_every_claim_row_reports_the_agreement_its_evidence_predicts():
    row = claims.lower_loss_claim(_grid({"llama": 1.0, **{a: 0.97 for a in rules.LINEAR}}), _noise())
    assert row["verdict"] == REPRODUCED and 0.5 < row["agreement"] <= 1.0
    # just beyond the edge for every architecture: reproduced, and a re-run is likely to lose one of them
    just = 1 - 1.1 * _noise().bound("loss", relative=True)
    edge = claims.lower_loss_claim(_grid({"llama": 1.0, **{a: just for a in rules.LINEAR}}), _noise())
    assert edge["verdict"] == REPRODUCED and edge["agreement"] < 0.5 < row["agreement"]


def test_rerun_agreement_carries_the_uncertainty_of_its_own_noise_estimate():
    """With a noise measured on 4 degrees of freedom, the true sd may well be larger than ours: the
    agreement predicted with that uncertainty matches how often a second honest study agreed, closer than
    one that takes our sd for the true one and our bound for the re-run's."""
    rng = np.random.default_rng(4)
    sigma, dof = 1.0, 4
    t = stats.t.ppf(0.975, dof)
    predicted, naive, agreed = [], [], []
    for k in range(1500):
        truth = rng.uniform(-8, 8) * np.sqrt(2) * sigma  # wide: a flat prior on the truth, as the model assumes
        studies = [rules.difference_part(truth + np.sqrt(2) * sigma * rng.standard_normal(),
                                         t * np.sqrt(2) * sigma * np.sqrt(rng.chisquare(dof) / dof), dof, "positive")
                   for _ in range(2)]
        predicted.append(rules.rerun_agreement([studies[0]], draws=300, seed=k))
        naive.append(rules.rerun_agreement([studies[0]._replace(dof=np.inf)], draws=300, seed=k))
        agreed.append(studies[0].verdict() == studies[1].verdict())
    assert np.mean(predicted) == pytest.approx(np.mean(agreed), abs=0.025)
    assert np.mean(naive) - np.mean(agreed) > 2 * abs(np.mean(predicted) - np.mean(agreed))


def test_parts_that_share_runs_and_a_noise_estimate_move_together_in_a_re_run():
    """Two architectures just beyond the edge, each a difference from the same LLaMA runs and judged with
    one pooled noise: a re-run that moves LLaMA or the noise estimate moves both, so the claim (both
    reproduced) survives more often than if each part moved on its own."""
    u = 0.01
    parts = [rules.difference_part(1.2 * u, u, 8, "positive", shared="llama", noise="niah") for _ in range(2)]
    together = rules.rerun_agreement(parts)
    apart = rules.rerun_agreement([p._replace(shared="", noise="") for p in parts])
    assert together > apart + 0.05
    alone = rules.rerun_agreement(parts[:1])
    assert apart == pytest.approx(alone ** 2, abs=0.03)  # independent parts: the product
