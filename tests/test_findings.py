"""The findings' arithmetic: seed noise and the tolerance it gives, size inversions, and the verdicts
that compare single runs against that tolerance."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from linscale import findings


def _final(arch: str, losses, by: str = "seed", values=None) -> pd.DataFrame:
    """An ablation_summary-like table: one row per run of ``arch`` with the given final losses."""
    values = values if values is not None else list(range(len(losses)))
    return pd.DataFrame({"arch": arch, "run_id": [f"{arch}-{v}" for v in values], by: values,
                         "loss": [float(x) for x in losses]})


def test_seed_noise_and_tolerance_follow_the_pooled_t_test():
    seeds = pd.concat([_final("llama", [2.00, 2.02, 1.98]), _final("tnl", [3.0, 3.0, 3.06, 2.94]),
                       _final("hgrn2", [2.5])], ignore_index=True)
    noise = findings.seed_noise(seeds).set_index("arch")
    assert noise.loc["llama", "seeds"] == 3 and noise.loc["llama", "mean"] == pytest.approx(2.0)
    assert noise.loc["llama", "rel_sd"] == pytest.approx(np.std([2.00, 2.02, 1.98], ddof=1) / 2.0)
    assert noise.loc["llama", "spread"] == pytest.approx(2.02 / 1.98 - 1)
    assert math.isnan(noise.loc["hgrn2", "sd"])  # one seed: no spread to measure

    # pooled over llama (2 dof) and tnl (3 dof); hgrn2's single run adds nothing
    rel = {"llama": np.std([2.00, 2.02, 1.98], ddof=1) / 2.0, "tnl": np.std([3.0, 3.0, 3.06, 2.94], ddof=1) / 3.0}
    pooled = math.sqrt((2 * rel["llama"] ** 2 + 3 * rel["tnl"] ** 2) / 5)
    assert findings.seed_tolerance(noise.reset_index()) == pytest.approx(stats.t.ppf(0.975, 5) * math.sqrt(2) * pooled)
    # a wider confidence asks for a larger difference
    assert findings.seed_tolerance(noise.reset_index(), confidence=0.99) > findings.seed_tolerance(noise.reset_index())
    assert math.isnan(findings.seed_tolerance(findings.seed_noise(_final("llama", [2.0]))))
    assert math.isnan(findings.seed_tolerance(findings.seed_noise(seeds.iloc[:0])))


def test_seed_tolerance_bounds_chance_differences_as_promised():
    """Simulated seeds: the tolerance from three seeds per architecture is exceeded by the difference of
    two fresh single runs about 5% of the time, as its definition says."""
    rng = np.random.default_rng(0)
    sd = 0.01
    misses, trials = 0, 1500
    for _ in range(trials):
        table = pd.concat([_final(a, 2.0 * (1 + sd * rng.standard_normal(3))) for a in ("a", "b", "c", "d")])
        tolerance = findings.seed_tolerance(findings.seed_noise(table))
        first, second = 2.0 * (1 + sd * rng.standard_normal(2))
        misses += abs(first / second - 1) > tolerance
    assert 0.035 < misses / trials < 0.065


def test_size_inversions_name_larger_models_that_end_higher():
    rows = []
    for arch, finals in (("llama", [3.0, 2.5, 2.6, 2.4]), ("tnl", [3.1, 2.9, 2.8, 2.7])):
        for i, final in enumerate(finals):
            for step, loss in ((1, 5.0), (2, final)):  # the last checkpoint's loss is the one compared
                rows.append({"run_id": f"{arch}-s{i}", "arch": arch, "size": f"s{i}", "n_layer": 1, "d_model": 8,
                             "n_head": 1, "params": 10 ** (i + 3), "tokens": step, "pf_days": step, "step": step,
                             "train_loss": loss, "val_loss": loss, "bayes_loss": 1.0, "wall_time_s": 1.0})
    inversions = findings.size_inversions(pd.DataFrame(rows))
    assert inversions[["arch", "smaller", "larger"]].values.tolist() == [["llama", "s1", "s2"]]
    assert inversions["gap"].iloc[0] == pytest.approx(2.6 / 2.5 - 1)


def _context_scores(niah: dict) -> pd.DataFrame:
    """An ablation_scores-like table: {arch: (score at n = 64, score at n = 256)}."""
    rows = [{"run_id": f"{n}/{arch}", "arch": arch, "params": 100, "step": 10, "seq_len": n, "niah_easy_wa": score}
            for arch, scores in niah.items() for n, score in zip((64, 256), scores)]
    return pd.DataFrame(rows)


def test_measured_accuracy_tolerances_are_absolute_per_metric_and_per_architecture_set():
    seeds = pd.DataFrame({"arch": ["llama"] * 3 + ["tnl"] * 3,
                          "niah_easy_wa": [0.50, 0.52, 0.48, 0.10, 0.13, 0.16],
                          "mqar_acc": [0.3, 0.3, 0.3, np.nan, np.nan, np.nan],
                          "cloze_acc": [0.3, np.nan, np.nan, 0.2, np.nan, np.nan]})
    tol = findings.Tolerances(seed_scores=seeds)
    t2, t4 = stats.t.ppf(0.975, 2), stats.t.ppf(0.975, 4)
    # pooled over the architectures compared: sd 0.02 (llama) and 0.03 (tnl)
    assert tol.for_accuracy("niah_easy_wa", ["llama", "tnl"]) == pytest.approx(
        t4 * math.sqrt(2) * math.sqrt((0.02**2 + 0.03**2) / 2))
    assert tol.for_accuracy("niah_easy_wa", ["tnl"]) == pytest.approx(t2 * math.sqrt(2) * 0.03)
    assert tol.for_accuracy("mqar_acc", ["llama", "tnl"]) == 0.0  # three identical seeds: no spread
    assert tol.for_accuracy("cloze_acc", ["llama", "tnl"]) == findings.DEFAULT_TOLERANCE  # one seed each
    assert tol.for_accuracy("knowledge_acc", ["llama"]) == findings.DEFAULT_TOLERANCE  # not measured
    assert tol.for_loss(["llama"]) == findings.DEFAULT_TOLERANCE  # no seed losses given
    assert findings.Tolerances(accuracy=0.01, seed_scores=seeds).for_accuracy("niah_easy_wa", ["tnl"]) == 0.01
    assert "NIAH easy" in tol.describe("accuracy") and "set by hand" in findings.Tolerances(loss=0.01).describe("loss")


def test_ablation_scores_keep_runs_of_different_variants_apart(tmp_path):
    from linscale.results import RUNS_COLUMNS

    folder = tmp_path / "toy" / "ablations"
    folder.mkdir(parents=True)
    runs, scores = [], []
    for variant, seed, niah in (("base", 0, 0.2), ("toy-seed1", 1, 0.4)):  # the same run id in both sweeps
        run = {c: 0 for c in RUNS_COLUMNS} | {"run_id": "tnl-s1", "arch": "tnl", "size": "s1", "step": 5,
                                             "seq_len": 64, "seed": seed, "train_loss": 2.0 + seed, "val_loss": 2.0,
                                             "diverged": False, "preset": "toy", "variant": variant, "ablation": "seeds"}
        runs.append(run)
        scores.append({"run_id": "tnl-s1", "arch": "tnl", "size": "s1", "step": 5, "tokens": 0, "flops": 0,
                       "pf_days": 0, "params": 0, "suite": "retrieval", "task": "linscale_niah_easy",
                       "metric": "weighted_acc", "value": niah, "variant": variant})
    pd.DataFrame(runs).to_parquet(folder / "seeds.parquet")
    pd.DataFrame(scores).to_parquet(folder / "seeds-eval.parquet")
    table = findings.ablation_scores("toy", str(tmp_path), "seeds").sort_values("seed")
    assert table["seed"].tolist() == [0, 1] and table["loss"].tolist() == [2.0, 3.0]
    assert table["niah_easy_wa"].tolist() == [0.2, 0.4]
    assert len(findings.ablation_scores("toy", str(tmp_path), "context")) == 0  # not evaluated: empty


def test_accuracy_noise_has_one_column_per_measured_accuracy():
    seeds = pd.DataFrame({"arch": ["llama"] * 3 + ["tnl"] * 3, "niah_easy_wa": [0.50, 0.52, 0.48, 0.10, 0.13, 0.16],
                          "mqar_acc": [0.3, 0.3, 0.3, 0.2, 0.2, 0.2], "knowledge_acc": np.nan})
    noise = findings.accuracy_noise(seeds)
    assert list(noise.columns) == ["NIAH easy", "associative recall"]  # knowledge was not measured
    assert noise.loc["tnl", "NIAH easy"] == pytest.approx(0.03) and noise.loc["llama", "associative recall"] == 0
    assert findings.accuracy_noise(seeds.drop(columns=["niah_easy_wa", "mqar_acc"])).empty


def test_context_ablation_scores_are_read_from_one_evaluation(tmp_path):
    """The context ablation is evaluated at one common context and at twice each run's own; the verdict
    reads the common one, and the two never mix."""
    from linscale.results import RUNS_COLUMNS

    folder = tmp_path / "toy" / "ablations"
    folder.mkdir(parents=True)
    runs, scores = [], []
    for variant, seq_len, common, twice in (("base", 128, 0.5, 0.3), ("toy-context64", 64, 0.4, 0.1)):
        runs.append({c: 0 for c in RUNS_COLUMNS} | {"run_id": "tnl-s1", "arch": "tnl", "size": "s1", "step": 5,
                                                   "seq_len": seq_len, "seed": 0, "train_loss": 2.0, "val_loss": 2.0,
                                                   "diverged": False, "preset": "toy", "variant": variant,
                                                   "ablation": "context"})
        for evaluation, value in (("common", common), ("twice", twice)):
            scores.append({"run_id": "tnl-s1", "arch": "tnl", "size": "s1", "step": 5, "tokens": 0, "flops": 0,
                           "pf_days": 0, "params": 0, "suite": "retrieval", "task": "linscale_niah_easy",
                           "metric": "weighted_acc", "value": value, "variant": variant, "evaluation": evaluation})
    pd.DataFrame(runs).to_parquet(folder / "context.parquet")
    pd.DataFrame(scores).to_parquet(folder / "context-eval.parquet")
    common = findings.ablation_scores("toy", str(tmp_path), "context").sort_values("seq_len")
    assert common["niah_easy_wa"].tolist() == [0.4, 0.5]
    twice = findings.ablation_scores("toy", str(tmp_path), "context", evaluation="twice").sort_values("seq_len")
    assert twice["niah_easy_wa"].tolist() == [0.1, 0.3]
    # an older table without the column holds one evaluation: the common one, and no "twice"
    pd.DataFrame(scores).query("evaluation == 'common'").drop(columns="evaluation").to_parquet(folder / "context-eval.parquet")
    assert len(findings.ablation_scores("toy", str(tmp_path), "context")) == 2
    assert len(findings.ablation_scores("toy", str(tmp_path), "context", evaluation="twice")) == 0


def test_accuracy_tables_carry_chance_levels():
    store = pd.DataFrame({"run_id": "a", "step": 1, "task": ["linscale_knowledge", "linscale_mqar", "linscale_perplexity"],
                          "metric": ["acc", "acc", "bits_per_byte"], "value": [0.5, 0.3, 0.7],
                          "chance": [0.25, 1 / 64, np.nan]})
    chances = findings.downstream_chance(store)
    assert chances["knowledge_acc"] == 0.25 and chances["mqar_acc"] == 1 / 64 and np.isnan(chances["bits_per_byte"])
    largest = pd.DataFrame({"arch": ["llama", "tnl"], "mqar_acc": [0.5, 0.2], "niah_easy_wa": [0.9, 0.1]})
    long = findings.retrieval_long(largest, chances)
    assert set(long.loc[long["metric"] == "mqar_acc", "chance"]) == {1 / 64}
    assert long.loc[long["metric"] == "niah_easy_wa", "chance"].iloc[0] == pytest.approx(1 / 64)  # the default language
    shown = findings.with_chance(largest, chances)
    assert shown["arch"].iloc[-1] == "chance" and shown["mqar_acc"].iloc[-1] == 1 / 64
    # associative recall's copy baseline rides along where given, and only for its task
    long = findings.retrieval_long(largest, chances, baselines={"mqar_acc": 0.25})
    assert set(long.loc[long["metric"] == "mqar_acc", "baseline"]) == {0.25}
    assert long.loc[long["metric"] == "niah_easy_wa", "baseline"].isna().all()


def test_rankings_write_differences_inside_the_noise_as_equal():
    """An order inside the seed noise is no order: the downstream chapter's rankings write neighbours whose
    difference is not above the tolerance as ≈ (exact ties always), and order the rest."""
    table = pd.DataFrame({"arch": ["llama", "tnl", "hgrn2", "cosformer2"], "acc": [1.0, 0.998, 0.998, 0.5],
                          "loss": [1.50, 1.52, 1.60, 1.49]})
    assert findings.ranking(table, "acc") == "LLaMA > TNL ≈ HGRN2 > cosFormer2"  # the exact tie
    assert findings.ranking(table, "acc", tolerance=0.01) == "LLaMA ≈ TNL ≈ HGRN2 > cosFormer2"
    assert findings.ranking(table, "loss", higher_is_better=False, tolerance=0.015) == \
        "cosFormer2 ≈ LLaMA > TNL > HGRN2"
    assert findings.ranking(table.iloc[:0], "acc") == "–"


def test_a_paired_difference_of_two_accuracies_uses_the_items_both_answered():
    """Two models right on the same items: the item-by-item difference has a smaller standard error than
    two independent accuracies would give, and only items both answered count."""
    import math

    a = [1, 1, 1, 1, 0, 0, 1, 1]  # 6 of 8
    b = [1, 1, 1, 0, 0, 0, 1, 1]  # 5 of 8; differs from a on item 3 only
    items = pd.DataFrame([{"run_id": run, "step": 10, "task": "cloze", "doc_id": i, "acc": float(x)}
                          for run, scores in (("a", a), ("b", b)) for i, x in enumerate(scores)]
                         + [{"run_id": "a", "step": 10, "task": "cloze", "doc_id": 99, "acc": 1.0},  # b lacks it
                            {"run_id": "a", "step": 10, "task": "other", "doc_id": 0, "acc": 0.0}])
    diff, se, n = findings.paired_difference(items, ("a", 10), ("b", 10), "cloze")
    assert n == 8 and diff == pytest.approx(1 / 8)
    assert se == pytest.approx(math.sqrt((1 - 1 / 8) ** 2 / 7 + 7 * (1 / 8) ** 2 / 7) / math.sqrt(8))
    independent = math.sqrt(0.75 * 0.25 / 7 + 0.625 * 0.375 / 7)  # each accuracy's sd / root(n - 1), as lm-eval
    assert se < independent
    assert math.isnan(findings.paired_difference(items, ("a", 10), ("c", 10), "cloze")[0])


def test_envelope_at_names_the_run_the_envelope_follows_there():
    """envelope_at interpolates each envelope in log-log and names the run of the envelope point nearest
    in log compute: the run whose seed noise a comparison at that compute must allow for."""
    from types import SimpleNamespace

    from linscale.findings import envelope_at

    rows = []
    for arch, scale in (("llama", 1.0), ("tnl", 1.03)):
        for run, computes in ((f"{arch}-s1", (1.0, 2.0, 4.0)), (f"{arch}-s2", (8.0, 16.0))):
            rows += [dict(group=arch, law="L(C)", compute=c, run_id=run, observed=scale * 3 / c ** 0.1,
                          fitted=scale * 3 / c ** 0.1) for c in computes]
    fit = SimpleNamespace(points=pd.DataFrame(rows))
    at = envelope_at(fit, compute=5.0).set_index("arch")
    assert at.loc["llama", "run_id"] == "llama-s1" and at.loc["tnl", "run_id"] == "tnl-s1"  # 4 is nearer than 8
    at = envelope_at(fit, compute=7.0).set_index("arch")
    assert at.loc["llama", "run_id"] == "llama-s2"
    assert at.loc["tnl", "vs_llama"] == pytest.approx(1.03)
    assert at.loc["llama", "envelope_loss"] == pytest.approx(3 / 7.0 ** 0.1)
    assert envelope_at(fit)["compute"].iloc[0] == 16.0  # default: the largest compute both reach


def test_lowest_envelope_shares_finds_a_lead_that_reverses_inside_the_common_range():
    """One architecture below the other at small compute and above it at large: the ranking at the top end
    names the second, the shares over the log range name both, each with the part of the range it leads."""
    from types import SimpleNamespace

    from linscale.findings import lowest_envelope_shares

    computes = np.geomspace(1.0, 100.0, 9)
    rows = [dict(group="llama", law="L(C)", compute=c, run_id="l", observed=3 / c ** 0.10, fitted=1.0) for c in computes]
    # hgrn2 starts 5% lower and falls more slowly: equal at C = 10, the middle of the log range
    rows += [dict(group="hgrn2", law="L(C)", compute=c, run_id="h", observed=0.95 * 3 / c ** (0.10 + np.log(0.95) / np.log(10)),
                  fitted=1.0) for c in computes]
    rows += [dict(group="hgrn2", law="L(C)", compute=0.5, run_id="h", observed=9.0, fitted=1.0)]  # before llama's range
    shares, (low, high) = lowest_envelope_shares(SimpleNamespace(points=pd.DataFrame(rows)), points=101)
    assert (low, high) == (1.0, 100.0)  # where both are measured
    assert shares["hgrn2"] == pytest.approx(0.5, abs=0.02) and shares["llama"] == pytest.approx(0.5, abs=0.02)


def test_a_noise_prediction_is_checked_against_runs_it_was_not_estimated_from():
    from scipy import stats

    from linscale.findings import noise_against_prediction

    runs = pd.DataFrame({"arch": ["a"] * 3 + ["b"] * 3 + ["c"],
                         "loss": [1.0, 1.02, 1.04, 2.0, 2.01, 2.02, 5.0]})  # c: one run, no degrees of freedom
    check = noise_against_prediction(runs, "loss", predicted_sd=0.01, predicted_dof=14)
    assert check["per_arch"]["a"] == pytest.approx(0.02) and check["dof"] == 4
    pooled = np.sqrt((2 * 0.02**2 + 2 * 0.01**2) / 4)  # each architecture about its own mean, not the grand one
    assert check["pooled"] == pytest.approx(pooled) and check["ratio"] == pytest.approx(pooled / 0.01)
    assert check["p"] == pytest.approx(2 * stats.f.sf((pooled / 0.01) ** 2, 4, 14))
    agree = noise_against_prediction(runs, "loss", predicted_sd=pooled, predicted_dof=14)
    assert agree["p"] > 0.5 and agree["ratio"] == pytest.approx(1.0)  # F = 1 (its median is not, at 4 and 14 dof)
    # a prediction far too large is rejected as surely as one far too small
    assert noise_against_prediction(runs, "loss", predicted_sd=1.0, predicted_dof=14)["p"] < 1e-3
    assert np.isnan(noise_against_prediction(runs[runs["arch"] == "c"], "loss", 0.01, 14)["p"])


# ----------------------------------------------------------------------------- GPU check reports

GPU_REPORT = """# GPU check: Some GPU (2026-01-02)

## 2. Lightning, smoke preset s1

| arch | GPU val loss | CPU val loss | verdict (5%) |
|---|---|---|---|
| tnl | 2.7196 | 2.7301 | agrees |

### Agreement: Triton kernels vs the PyTorch chunked form

| arch | precision | grad_rel_diff | passed |
|:-----|:----------|--------------:|:-------|
| tnl  | bf16      |       0.02095 | True   |

### Throughput: an optimiser step

| arch  | size | backend | mfu    | triton_speedup | note          |
|:------|:-----|:--------|-------:|---------------:|:--------------|
| llama | 1B   | sdpa    | 0.5912 |                |               |
| hgrn2 | 1B   | torch   |        |                | out of memory |

### Kernel benchmark, 2026-01-02

| mixer | impl | T | fwd ms | fwd TB/s (of 4.3) | fwd vs sdpa |
|---|---|---|---|---|---|
| tnl | linscale | 16384 | 2.252 | 3.34 (78%) | 6.69x |
| sdpa | torch | 16384 | 15.072 | 0.14 (3%) | - |
"""


def test_gpu_report_tables_read_every_section(tmp_path):
    (tmp_path / "2026-01-02-gpu-check-some-gpu.md").write_text(GPU_REPORT)
    (tmp_path / "kernels-gpu.md").write_text("# a note, not a measurement\n")  # no date: not listed
    reports = findings.gpu_reports(tmp_path)
    assert reports["date"].tolist() == ["2026-01-02"] and reports["title"].iloc[0].startswith("GPU check")
    tables = findings.gpu_report_tables(reports["file"].iloc[0])
    assert tables["lightning"]["CPU val loss"].tolist() == [2.7301]
    assert tables["agreement"]["grad_rel_diff"].tolist() == [0.02095]
    training = tables["training"]
    assert len(training) == 2  # the :---: separator row is not data
    assert training["mfu"].iloc[0] == 0.5912 and math.isnan(training["mfu"].iloc[1])  # blank cells are NaN
    assert training["note"].iloc[1] == "out of memory"
    kernels = tables["kernels"].set_index("mixer")
    assert kernels.loc["tnl", "fwd_vs_sdpa"] == 6.69 and math.isnan(kernels.loc["sdpa", "fwd_vs_sdpa"])
    assert kernels.loc["tnl", "fwd_bandwidth_pct"] == 78


def test_a_kernel_table_without_bandwidth_shares_reads_them_as_unknown(tmp_path):
    """A kernels table without the "fwd TB/s" column stopped the reader with a bare StopIteration, and
    one of bare numbers (no "(78%)") with an AttributeError: the shares are NaN, the ratios still read."""
    path = tmp_path / "2026-01-02-gpu-check-some-gpu.md"
    for header, cells in (("fwd TB/s (of 4.3)", ("3.34", "0.14")), ("fwd GB", ("1", "2"))):
        path.write_text(GPU_REPORT.replace("fwd TB/s (of 4.3)", header).replace("3.34 (78%)", cells[0])
                        .replace("0.14 (3%)", cells[1]))
        kernels = findings.gpu_report_tables(path)["kernels"].set_index("mixer")
        assert kernels["fwd_bandwidth_pct"].isna().all() and kernels.loc["tnl", "fwd_vs_sdpa"] == 6.69


def test_gpu_report_tables_name_a_missing_section(tmp_path):
    path = tmp_path / "2026-01-02-gpu-check-some-gpu.md"
    path.write_text(GPU_REPORT.replace("### Throughput", "### Speed"))
    with pytest.raises(ValueError, match="Throughput.*training table"):
        findings.gpu_report_tables(path)


def test_newest_gpu_tables_fill_in_steps_a_later_run_skipped(tmp_path):
    """A later report that ran only some steps (gpu_check.sh STEPS=) supplies what it measured; the rest
    still comes from the older report. A skipped step's heading with no table of its own does not lend
    it the next section's table."""
    (tmp_path / "2026-01-02-0900-gpu-check-some-gpu.md").write_text(GPU_REPORT)
    later = GPU_REPORT.replace("6.69x", "7.00x")
    later = later.replace(later[later.index("| arch | GPU"):later.index("### Agreement")], "(step 2 not run)\n\n")
    later = later.replace(later[later.index("### Agreement"):later.index("### Kernel benchmark")], "")
    (tmp_path / "2026-01-02-1500-gpu-check-some-gpu.md").write_text(later)
    reports = findings.gpu_reports(tmp_path)
    assert reports["file"].str.contains("1500").tolist() == [False, True]  # oldest first, by time of day
    newest = findings.newest_gpu_tables(tmp_path)
    assert newest["kernels"][1].endswith("1500-gpu-check-some-gpu.md")
    assert newest["kernels"][0].set_index("mixer").loc["tnl", "fwd_vs_sdpa"] == 7.0
    assert newest["training"][1].endswith("0900-gpu-check-some-gpu.md")
    assert newest["agreement"][0]["grad_rel_diff"].tolist() == [0.02095]
    assert newest["lightning"][1].endswith("0900-gpu-check-some-gpu.md")  # not the 1500 one's kernel table
    assert "paper" not in newest  # no report ran step 3
    with pytest.raises(ValueError, match="Lightning.*lightning table"):
        findings.gpu_report_tables(reports["file"].iloc[1])


def test_committed_gpu_reports_are_readable():
    """Every committed GPU check report parses, and together the newest of them hold the tables the
    efficiency chapter shows."""
    from pathlib import Path

    results = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
    for path in findings.gpu_reports(results)["file"]:
        tables = findings.gpu_report_tables(path, required=())
        assert tables, path
    newest = findings.newest_gpu_tables(results)
    assert {"arch", "size", "backend", "mfu"} <= set(newest["training"][0].columns)
    assert newest["kernels"][0]["fwd_bandwidth_pct"].notna().any()
    assert {"lightning", "agreement"} <= set(newest)


# ----------------------------------------------------------------------------- the evaluated checkpoints read


def _checkpoints() -> pd.DataFrame:
    """A downstream_table-like table: two sizes per architecture, two checkpoints each (the later one scores
    higher), rows out of order."""
    rows = [{"run_id": f"{arch}-{size}", "arch": arch, "size": size, "step": step, "params": params,
             "tokens": step, "pf_days": step * params, "loss": 3.0 - step / 10,
             "niah_easy_wa": params / 1000 + step / 100}
            for arch, offset in (("tnl", 0), ("llama", 1))
            for size, params in (("s1", 10 + offset), ("s2", 100 + offset)) for step in (10, 5)]
    return pd.DataFrame(rows)


def test_the_largest_models_are_compared_at_their_last_checkpoint():
    """Table 4's reading: each architecture's largest model at its final checkpoint, not an earlier one
    and not a smaller model."""
    last = findings.final_checkpoints(_checkpoints())
    assert len(last) == 4 and set(last["step"]) == {10}
    largest = findings.compare_at_largest(_checkpoints(), ["niah_easy_wa", "not_a_metric"]).set_index("arch")
    assert largest["size"].to_dict() == {"llama": "s2", "tnl": "s2"}
    assert largest.loc["tnl", "niah_easy_wa"] == pytest.approx(100 / 1000 + 10 / 100)
    assert "not_a_metric" not in largest  # a metric the table lacks is left out, not an error


def test_niah_heatmap_cells_are_the_largest_models_last_checkpoint_in_one_mode():
    cells = pd.DataFrame([{"arch": arch, "params": params, "step": step, "mode": mode, "context": 64, "depth": 0.5,
                           "acc": params + step + (mode == "standard") / 2}
                          for arch in ("tnl", "llama") for params in (10, 100) for step in (5, 10)
                          for mode in ("easy", "standard")])
    heat = findings.largest_model_cells(cells)
    assert len(heat) == 2 and set(heat["params"]) == {100} and set(heat["step"]) == {10}
    assert set(heat["mode"]) == {"easy"} and heat["score"].tolist() == [110.0, 110.0]
    standard = findings.largest_model_cells(cells, archs=["tnl"], mode="standard")
    assert standard["arch"].tolist() == ["tnl"] and standard["score"].tolist() == [110.5]
    none = findings.largest_model_cells(cells, archs=["hgrn2"])  # a chapter narrowed to an architecture without cells
    assert none.empty and {"arch", "context", "depth", "score"} <= set(none.columns)


# ----------------------------------------------------------------------------- ablation tables and their words

GRID = ["s1", "s2", "s3", "s4"]  # smallest first


def _ablation(folder, name: str, runs) -> None:
    """results/<preset>/ablations/<name>.parquet with one row per (variant, run_id, size, step, train_loss[,
    diverged]) of ``runs``."""
    from linscale.results import RUNS_COLUMNS

    folder.mkdir(parents=True, exist_ok=True)
    rows = [{c: 0 for c in RUNS_COLUMNS} | {"variant": variant, "ablation": name, "run_id": run_id, "arch": "tnl",
                                           "size": size, "step": step, "train_loss": loss, "n_layer": 2,
                                           "d_model": 16, "diverged": bool(rest and rest[0]), "preset": "toy"}
            for variant, run_id, size, step, loss, *rest in runs]
    pd.DataFrame(rows).to_parquet(folder / f"{name}.parquet")


def test_an_ablation_table_leaves_out_diverged_runs_and_summarises_each_runs_last_checkpoint(tmp_path):
    folder = tmp_path / "toy" / "ablations"
    # the same run id in two variants is two runs; the diverged run is no evidence
    _ablation(folder, "seeds", [("base", "tnl-s2", "s2", 5, 3.0), ("base", "tnl-s2", "s2", 10, 2.0),
                                ("toy-seed1", "tnl-s2", "s2", 10, 2.2), ("toy-seed1", "tnl-s2", "s2", 5, 3.2),
                                ("toy-seed2", "tnl-s2", "s2", 10, 9.9, True)])
    table = findings.read_ablation("toy", str(tmp_path), "seeds")
    assert len(table) == 4 and not table["diverged"].any()
    summary = findings.ablation_summary(table)
    assert sorted(summary["loss"]) == [2.0, 2.2] and summary["aspect"].tolist() == [8.0, 8.0]  # d / l
    assert findings.read_ablation("toy", str(tmp_path), "context").empty  # not run: empty, with its columns
    assert list(findings.ablation_summary(table.iloc[:0]).columns)[-1] == "loss"


def test_loss_spread_names_each_architectures_best_and_worst_setting():
    summary = pd.concat([_final("tnl", [2.2, 2.0, 2.5], by="seq_len", values=[64, 128, 256]),
                         _final("llama", [1.9], by="seq_len", values=[128])], ignore_index=True)
    spread = findings.loss_spread(summary, "seq_len").set_index("arch")
    assert spread.loc["tnl", ["best_seq_len", "worst_seq_len", "settings"]].tolist() == [128, 256, 3]
    assert spread.loc["tnl", "spread"] == pytest.approx(2.5 / 2.0 - 1) and spread.loc["llama", "spread"] == 0
    assert list(findings.loss_spread(summary.iloc[:0], "seq_len").columns)[2] == "best_seq_len"


def test_the_context_ablations_size_is_named_by_its_place_in_the_grid(tmp_path):
    folder = tmp_path / "toy" / "ablations"

    def words(sizes):
        _ablation(folder, "context", [("base", f"tnl-{z}", z, 10, 2.0) for z in sizes])
        return findings.context_size_words("toy", str(tmp_path), GRID)

    assert findings.context_size_words("toy", str(tmp_path), GRID) == "no context ablation in this study"
    assert words(["s4"]) == "here s4, the toy grid's largest"
    assert words(["s1"]) == "here s1, the toy grid's smallest"
    assert words(["s3"]) == "here s3"  # inside the grid: no place to name
    assert words(["s1", "s4"]) == "several sizes"
    assert findings.context_size_words("cpu", str(tmp_path), GRID).startswith("the cpu preset's largest")


def test_the_size_seeds_words_place_the_retrained_sizes_and_the_seeds_ablations_size(tmp_path):
    folder = tmp_path / "toy" / "ablations"

    def words(retrained, seeded, **kwargs):
        # the base variant is the main sweep's run of a size the seeds ablation already has: not retrained
        _ablation(folder, "size_seeds", [("base", "tnl-s2", "s2", 10, 2.0)]
                  + [(f"toy-{z}-seed1", f"tnl-{z}", z, 10, 2.0) for z in retrained])
        _ablation(folder, "seeds", [("base", f"tnl-{z}", z, 10, 2.0) for z in seeded])
        return findings.size_seeds_words("toy", str(tmp_path), GRID, **kwargs)

    # the cpu study's reading
    assert words(["s4", "s1"], ["s2"]) == "the grid's smallest and largest sizes, where the base size is neither"
    assert words(["s1"], ["s4"], more="with one more seed") == \
        "the grid's smallest size, s1 (the base size, s4, is the largest), with one more seed"
    assert words(["s1", "s2"], ["s2"]) == "s1 and s2, the base size among them"
    assert words(["s3"], ["s1", "s2"]) == "s3"  # the seeds ablation at two sizes: no one base size to place
    assert words([], ["s2"], more="with one more seed") == "nothing in this study (its preset leaves that ablation out)"


def test_a_noise_prediction_of_no_spread_cannot_be_checked():
    from linscale.findings import noise_against_prediction

    runs = pd.DataFrame({"arch": ["a"] * 3, "loss": [1.0, 1.02, 1.04]})
    check = noise_against_prediction(runs, "loss", predicted_sd=0.0, predicted_dof=14)
    assert check["dof"] == 2 and np.isnan(check["p"]) and np.isnan(check["ratio"])


def test_an_architecture_without_a_measured_seed_adds_no_degrees_of_freedom():
    """An accuracy the seeds ablation measured for LLaMA but not for TNL: TNL's row (no seeds) must not take a
    degree of freedom from LLaMA's, which would widen the t quantile."""
    llama = _final("llama", [2.00, 2.02, 1.98])
    noise = findings.seed_noise(pd.concat([llama, _final("tnl", [np.nan, np.nan])], ignore_index=True))
    assert noise.set_index("arch").loc["tnl", "seeds"] == 0
    assert findings.seed_tolerance(noise) == pytest.approx(findings.seed_tolerance(findings.seed_noise(llama)))


# ----------------------------------------------------------------------------- what the claims read from a folder


def test_stored_fits_are_read_with_what_the_design_check_and_the_status_say(tmp_path):
    """fits/<method>.csv as a LawFit; fits/status.csv's failures as the attempt's error (no fit) or note
    (some architectures fitted); a law the design check does not identify named with its reasons."""
    from linscale.findings import inputs

    fits = tmp_path / "toy" / "fits"
    fits.mkdir(parents=True)
    pd.DataFrame({"group": ["llama", "tnl", "tnl", "hgrn2"], "law": "L(C)", "parameter": ["a", "a", "b", "a"],
                  "estimate": 1.0, "identified": [True, False, True, True],
                  "reason": [np.nan, "one size", "one size", np.nan]}).to_csv(fits / "approach1.csv", index=False)
    pd.DataFrame({"group": ["llama"], "law": "L(C)", "fitted": [2.0]}).to_parquet(fits / "approach1.points.parquet")
    pd.DataFrame({"method": ["approach1", "approach1", "approach2"], "arch": ["cosformer2", "tnl", "hgrn2"],
                  "status": ["failed", "not identified", "failed"],
                  "reason": ["too few sizes", np.nan, "no minimum"]}) \
        .to_csv(fits / "status.csv", index=False)
    fit = inputs.read_fit("toy", tmp_path, "approach1")
    assert fit.points["fitted"].tolist() == [2.0] and fit.draws.empty and fit.diagnostics.empty
    assert inputs.read_fit("toy", tmp_path, "approach2") is None
    assert inputs.identified_archs(fit, "L(C)") == {"hgrn2": (True, ""), "llama": (True, ""),
                                                    "tnl": (False, "one size")}
    assert inputs.identified_archs(None, "L(C)") == {}
    older = dataclasses.replace(fit, params=fit.params.drop(columns=["identified", "reason"]))
    assert inputs.identified_archs(older, "L(C)")["tnl"] == (True, "")  # from before the design check
    assert inputs.read_fit_status("toy", tmp_path)["reason"].tolist() == ["too few sizes", "", "no minimum"]
    attempts = inputs.stored_attempts("toy", tmp_path)
    # a failure of some architectures is a note beside the fit; "not identified" is no failure
    assert attempts["approach1"].ok and attempts["approach1"].error == ""
    assert attempts["approach1"].note == "not fitted [cosformer2]: too few sizes"
    assert not attempts["approach2"].ok and attempts["approach2"].error == "[hgrn2]: no minimum"
    assert not attempts["approach3"].ok and attempts["approach3"].error == ""  # absent, and no reason stored
    shown = inputs.narrowed(attempts, ["tnl"])["approach1"]
    assert set(shown.fit.params["group"]) == {"tnl"} and shown.fit.points.empty
    assert shown.note == attempts["approach1"].note
    assert set(attempts["approach1"].fit.params["group"]) == {"llama", "tnl", "hgrn2"}  # the original is kept
    assert inputs.read_fits_table("toy", tmp_path, "holdout") is None
    assert inputs.stored_attempts("other", tmp_path)["approach1"].error == ""  # no folder: no fit, no reason


def test_final_rows_are_each_runs_last_checkpoint_per_variant():
    from linscale.findings import inputs

    table = pd.DataFrame({"variant": ["a", "a", "b", "b", "b"], "run_id": "tnl-s1", "step": [10, 5, 5, 20, 10],
                          "loss": [1.0, 2.0, 3.0, 4.0, 5.0]})
    assert inputs.final_rows(table).set_index("variant")["loss"].to_dict() == {"a": 1.0, "b": 4.0}
    assert inputs.final_rows(table.drop(columns="variant"))["loss"].tolist() == [4.0]
    assert inputs.final_rows(table.iloc[:0]).empty


def test_the_excess_falls_back_to_the_training_batch_where_the_held_out_loss_is_missing():
    from linscale.findings import inputs

    table = pd.DataFrame({"train_loss": [1.60, 1.56], "train_bayes_loss": [1.53, 1.49], "val_loss": [1.58, np.nan],
                          "bayes_loss": [1.53, 1.49], "step": 10})
    assert inputs.with_fitted_loss(table, "cpu")["excess"].tolist() == pytest.approx([0.05, 0.07])
    assert inputs.with_fitted_loss(table.iloc[:0], "cpu")[["fitted_loss", "excess"]].empty


def test_a_folders_own_fit_settings_win_over_its_presets(tmp_path):
    """fits/settings.json (a study compared under another name): its lists back as tuples, and keys a later
    FitSettings no longer has are ignored rather than an error."""
    import json

    from linscale.design import fit_settings as preset_settings
    from linscale.findings import inputs

    (tmp_path / "cpu" / "fits").mkdir(parents=True)
    (tmp_path / "cpu" / "fits" / "settings.json").write_text(json.dumps(
        {"entropy": 1.25, "warmup_steps": 7, "compute_range": [1.0, 2.0], "retired_setting": 3}))
    settings = inputs.fit_settings("cpu", tmp_path)
    assert (settings.entropy, settings.warmup_steps, settings.compute_range) == (1.25, 7, (1.0, 2.0))
    assert inputs.fit_settings("cpu", tmp_path / "elsewhere") == preset_settings("cpu")


def test_sizes_are_ordered_by_their_median_parameters():
    from linscale.findings import inputs

    runs = pd.DataFrame({"size": ["s10", "s2", "s1", "s10", "s2"], "params": [900, 50, 10, 1100, 40]})
    assert inputs.size_order(runs) == ["s1", "s2", "s10"]


# The crossovers table's pairs for the crossed-behind sentence: TNL's s2 crosses and ends 0.03% behind, HGRN2's s3
# crosses and ends 2% behind, LLaMA's s2 never crosses, cosFormer2's s4 crosses and ends ahead
CROSSOVERS = pd.DataFrame({"arch": ["tnl", "hgrn2", "llama", "cosformer2"], "small": ["s1", "s2", "s1", "s3"],
                           "large": ["s2", "s3", "s2", "s4"], "crossover": [1.5e12, 2e12, float("nan"), 3e12],
                           "gap_at_end": [0.0003, 0.02, 0.01, -0.01]})


def test_a_pair_that_crosses_and_ends_behind_reads_level_under_its_noise_or_by_how_far_above():
    """Only pairs that cross and end behind are named; without a seeds ablation a gap under 0.05% is level
    and says that no noise was measured, with one a gap under the pair's bound is level inside it."""
    no_noise = findings.crossed_behind_sentence(CROSSOVERS, [])
    assert no_noise == ("A pair can cross and still not end ahead: TNL's s2 falls below its s1 at 1.50e+12 FLOPs and "
                        "ends level with it (under 0.05%: this study measured no seed noise); HGRN2's s3 falls below "
                        "its s2 at 2.00e+12 FLOPs and ends +2.0% above it.")
    measured = findings.crossed_behind_sentence(CROSSOVERS, [0.001, 0.01, 0.05, 0.05])
    assert measured == ("A pair can cross and still not end ahead: TNL's s2 falls below its s1 at 1.50e+12 FLOPs and "
                        "ends level with it, inside the seed noise; HGRN2's s3 falls below its s2 at 2.00e+12 FLOPs "
                        "and ends +2.0% above it.")
    assert "HGRN2's s3 falls below its s2 at 2.00e+12 FLOPs and ends level with it, inside the seed noise." in \
        findings.crossed_behind_sentence(CROSSOVERS, [0.001, 0.03, 0.05, 0.05])  # 2% under a 3% bound
    assert findings.crossed_behind_sentence(CROSSOVERS.iloc[2:], []) == ""  # none crossed and ended behind
    assert findings.crossed_behind_sentence(CROSSOVERS.iloc[:0], []) == ""
    assert findings.crossed_behind_sentence(None, []) == ""  # no crossovers table


def _context_spread() -> pd.DataFrame:
    """loss_spread over contexts: TNL lowest at 256 (2.0% spread), cosFormer2 lowest at 64 (2.6%, the largest)."""
    summary = pd.concat([_final("tnl", [2.04, 2.02, 2.00], by="seq_len", values=[64, 128, 256]),
                         _final("cosformer2", [1.90, 1.92, 1.95], by="seq_len", values=[64, 128, 256])],
                        ignore_index=True)
    return findings.loss_spread(summary, "seq_len").set_index("arch")


def test_the_raw_context_losses_are_read_against_how_far_the_bayes_loss_moves():
    """The Bayes loss moving more than any raw loss: the raw ranking is the languages'; moving less: part of it.
    The ranking is "another" or "the same" as the excess's, and the loss named is the one read."""
    spread, bayes_text = _context_spread(), "1.355 nats at 64 tokens, 1.311 at 256, 3.3% apart"
    assert findings.context_raw_sentence(spread, {"cosformer2": 256, "tnl": 256}, 0.033, bayes_text) == (
        "The raw training loss, of the last training batch, would suggest another ranking (lowest at cosFormer2 64, "
        "TNL 256), but the Bayes loss of those tokens changes with the context more than any model's raw loss does: "
        "1.355 nats at 64 tokens, 1.311 at 256, 3.3% apart, while the largest raw spread across contexts, "
        "cosFormer2's, is 2.6%. That ranking measures the languages, not the models.")
    less = "1.325 nats at 64 tokens, 1.311 at 256, 1.0% apart"
    assert findings.context_raw_sentence(spread, {"cosformer2": 256, "tnl": 256}, 0.01, less, loss="val_loss") == (
        "The raw validation loss would suggest another ranking (lowest at cosFormer2 64, TNL 256), but the "
        "Bayes loss of those tokens changes with the context too, if less than any model's raw loss does: "
        "1.325 nats at 64 tokens, 1.311 at 256, 1.0% apart, while the largest raw spread across contexts, "
        "cosFormer2's, is 2.6%. So part of that ranking measures the languages rather than the models.")
    # the raw ranking agreeing with the excess loss's is no reason to read it: said as such
    same = findings.context_raw_sentence(spread, {"cosformer2": 64, "tnl": 256}, 0.033, bayes_text)
    assert "would suggest the same best contexts (lowest at cosFormer2 64, TNL 256)" in same and same.endswith(
        "is 2.6%. It agrees here, but its differences measure the languages, not the models.")
    # spreads that read the same as printed: neither "more than" nor "less than"
    tie = findings.context_raw_sentence(spread, {"cosformer2": 256, "tnl": 256}, 0.0262, bayes_text)
    assert "changes with the context as much as any model's raw loss does" in tie and tie.endswith(
        "is 2.6%. So part of that ranking measures the languages as well as the models.")
    assert findings.context_raw_sentence(spread, {}, float("nan"), "not recorded in this study") == ""  # no Bayes loss
    assert findings.context_raw_sentence(spread.iloc[:0], {}, 0.033, bayes_text) == ""  # no context ablation


# the hold-out probe's E per architecture (design noise alone; measured misfit): TNL within 5% in 80% of
# simulated studies, cosFormer2 in 90%, so neither misses in 72%, one in 26%, both in 2%
E_ALONE = pd.DataFrame({"arch": ["tnl", "cosformer2"], "within": [0.8, 0.9], "median_abs_error": [0.023, 0.026]})
E_MEASURED = pd.DataFrame({"arch": ["tnl", "cosformer2"], "median_abs_error": [0.062, 0.115]})
E_MISS_TAIL = (" What sets the real misses apart is how far they miss: {misses}, while a simulated study misses by a "
               "median of {alone} with the design noise alone, and of {measured} when whole sizes also miss the law "
               "by their measured misfit (\"Three approaches, one allocation\"). Misses of that size say that the "
               "real runs pin $E$ down less well than the simulated ones: their losses depart from "
               "$E + A/N^\\alpha + B/D^\\beta$. Their fitted $E$ is then a fitting constant, not the entropy of the "
               "language; the width of its interval in the figure shows how loosely the runs hold it.")


def test_the_real_e_misses_are_read_against_the_simulated_studies_of_the_architectures_shown():
    """Several architectures: how often as many miss or more; one: its own rate, its name as written
    (cosFormer2, not "CosFormer2"); none missing: said for several or for the one; none simulated: nothing."""
    both = "cosFormer2's E lies 23% below the entropy and TNL's 79% below"
    assert findings.e_miss_reading(E_ALONE, E_MEASURED, 2, both) == (
        "If the architectures miss independently, two or more of the two miss in 2% of studies."
        + E_MISS_TAIL.format(misses=both, alone="2.3% to 2.6%", measured="6.2% to 11.5%"))
    one = "TNL's E lies 79% below the entropy"
    assert findings.e_miss_reading(E_ALONE, E_MEASURED, 1, one).startswith(
        "If the architectures miss independently, one or more of the two miss in 28% of studies. What sets")
    alone = "cosFormer2's E lies 23% below the entropy"
    assert findings.e_miss_reading(E_ALONE.iloc[1:], E_MEASURED.iloc[1:], 1, alone) == (
        "cosFormer2's E misses in 10% of simulated studies."
        + E_MISS_TAIL.format(misses=alone, alone="2.6%", measured="11.5%"))
    assert findings.e_miss_reading(E_ALONE, E_MEASURED, 0, "none") == (
        "None of the architectures shown misses the entropy by more than 5% (a simulated study misses by a median "
        "of 2.3% to 2.6% with the design noise alone).")
    assert findings.e_miss_reading(E_ALONE.iloc[:1], E_MEASURED.iloc[:1], 0, "none") == (
        "TNL's E does not miss the entropy by more than 5% (a simulated study misses by a median of 2.3% with the "
        "design noise alone).")
    assert findings.e_miss_reading(E_ALONE.iloc[:0], E_MEASURED.iloc[:0], 1, one) == ""  # none of them simulated


def test_seeds_are_a_lottery_by_their_sd_over_the_bound_not_by_their_range():
    """The ablations page of the seed-6 re-run said both that no architecture's seeds' NIAH sd exceeds the 0.1 at
    which retrieval is a lottery and that at s3 'it is a lottery' (cosFormer2's 0.17, 0.08, 0.03: a range above 0.1,
    an sd of 0.068)."""
    from linscale import findings

    assert not findings.seeds_are_a_lottery([0.166, 0.082, 0.033])
    assert findings.seeds_are_a_lottery([0.05, 0.45, 0.90])
    assert not findings.seeds_are_a_lottery([0.9]) and not findings.seeds_are_a_lottery([])
