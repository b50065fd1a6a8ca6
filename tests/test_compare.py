"""`linscale compare`: two studies' results folders side by side (tables, fitted laws, verdicts).

The end-to-end tests compare the committed smoke study with its sweep, evaluation and fits re-run with
train.seed=1, and check what compare reports against the tables themselves; the others check the
table arithmetic, the noise units and the command line on small folders built from the committed smoke
results.
"""
from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from linscale import compare, findings

SMOKE = Path(__file__).resolve().parent.parent / "results" / "smoke"


def linscale(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "linscale", *map(str, args)], capture_output=True, text=True,
                          timeout=1200)


def copy_results(dst: Path, src: Path = SMOKE) -> Path:
    shutil.copytree(src, dst)
    return dst


# ----------------------------------------------------------------------------- table arithmetic (fast)


def test_table_diff_matches_rows_by_key_and_keeps_wall_clock_and_paths_apart():
    a = pd.DataFrame({"run_id": ["x", "x", "y"], "step": [1, 2, 1], "loss": [2.0, 1.0, np.nan],
                      "arch": ["tnl", "tnl", "llama"], "wall_time_s": [1.0, 2.0, 3.0],
                      "checkpoint": ["runs/a/x", "runs/a/x", "runs/a/y"]})
    b = a.iloc[[1, 0]].copy()  # row order does not matter; row (y, 1) is gone
    b["wall_time_s"] *= 1.5
    b["checkpoint"] = ["elsewhere/x", "elsewhere/x"]
    summary, columns = compare.diff_tables("t", a, b)
    assert summary["status"] == compare.DIFFERS and summary["key"] == "run_id, step"
    assert (summary["rows_only_a"], summary["rows_only_b"]) == (1, 0)
    assert summary["changed_columns"] == ""  # only the missing row makes it differ
    kinds = {c["column"]: c["kind"] for c in columns}
    assert kinds == {"wall_time_s": "wall clock", "checkpoint": "location"}

    b = a.copy()
    b.loc[1, "loss"] = 1.03  # +3% at (x, 2)
    b.loc[0, "loss"] = 1.99  # -0.5% at (x, 1)
    b.loc[2, "arch"] = "hgrn2"
    summary, columns = compare.diff_tables("t", a, b)
    loss = next(c for c in columns if c["column"] == "loss")
    assert loss["changed"] == 2 and loss["compared"] == 3  # NaN against NaN is no change
    assert loss["largest_rel_change"] == pytest.approx(0.03) and loss["at"] == "run_id=x, step=2"
    assert loss["min_rel_change"] == pytest.approx(-0.005) and loss["max_rel_change"] == pytest.approx(0.03)
    assert summary["changed_columns"] == "loss, arch" and summary["status"] == compare.DIFFERS
    same, changed = compare.diff_tables("t", a, a.assign(wall_time_s=0.0))
    assert same["status"] == compare.SAME and [c["kind"] for c in changed] == ["wall clock"]


def test_rows_with_a_missing_key_are_matched_by_their_order_among_their_like():
    # an IsoFLOP profile's points have a run id, its fitted minima none (read back as a string column)
    a = pd.DataFrame({"run_id": pd.array(["x", None, None], dtype="string"), "group": ["g", "g", "g"],
                      "value": [1.0, 2.0, 3.0]})
    b = pd.concat([a, a.iloc[[1]]], ignore_index=True).assign(value=[1.0, 2.0, 3.5, 9.0])
    summary, columns = compare.diff_tables("t", a, b)
    assert (summary["rows_only_a"], summary["rows_only_b"]) == (0, 1)
    value = next(c for c in columns if c["column"] == "value")
    assert (value["changed"], value["compared"]) == (1, 3) and value["largest_rel_change"] == pytest.approx(0.5 / 3)


def test_a_column_that_changed_only_from_values_to_none_is_reported_without_warnings():
    """A column whose every change is a value against none (a metric a re-run's evaluation did not
    score) has no finite absolute change: reported as such, not with numpy's all-NaN RuntimeWarning on
    the user's terminal (`linscale compare results/cpu results/smoke` printed three)."""
    import warnings

    a = pd.DataFrame({"run_id": ["x", "y"], "score": [0.5, 0.7]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, columns = compare.diff_tables("t", a, a.assign(score=[np.nan, 0.7]))
    score = next(c for c in columns if c["column"] == "score")
    assert score["changed"] == 1 and math.isinf(score["largest_rel_change"]) and math.isnan(score["largest_abs_change"])


def test_folders_of_two_presets_are_named_as_such_in_the_text(tmp_path):
    """`linscale compare results/cpu results/smoke` lists every table as different: the text says why
    (two presets, as their runs tables record them), and a re-run of the same preset gets no such note,
    whatever its folder is called (a user's copy of their study in `mystudy/` is still a cpu study)."""
    assert compare.preset_note("results/cpu", "results/reruns/2026-12-05-intel-xeon-m207/cpu") is None
    assert compare.preset_note("results/cpu", "results/smoke").startswith(
        "note: A is a study of preset cpu, B of preset smoke: their grids differ")
    for name, preset in (("mystudy", "cpu"), ("other", "smoke")):
        (tmp_path / name).mkdir()
        pd.DataFrame({"run_id": ["r"], "preset": [preset]}).to_parquet(tmp_path / name / "runs.parquet")
    assert compare.preset_note("results/cpu", tmp_path / "mystudy") is None
    assert compare.preset_note(tmp_path / "other", "results/cpu").startswith("note: A is a study of preset smoke")
    assert compare.study_preset(tmp_path / "elsewhere") == "elsewhere"  # no runs table: the folder's name
    (tmp_path / "csv_only").mkdir()  # a folder of CSV alone, which compare takes as a results folder
    pd.DataFrame({"run_id": ["r"], "preset": ["smoke"]}).to_csv(tmp_path / "csv_only" / "runs.csv", index=False)
    assert compare.study_preset(compare.check_results_folder(tmp_path / "csv_only")) == "smoke"


def test_noise_shift_is_the_largest_change_in_units_of_the_larger_tolerance():
    shift, moved = compare.noise_shift({"x": 1.0, "y": 0.50, "z": 3.0}, {"x": 1.1, "y": 0.56, "w": 1.0},
                                       {"x": 0.2, "y": 0.02, "z": 1.0}, {"x": 0.05, "y": 0.03})
    assert moved == "y" and shift == pytest.approx(0.06 / 0.03)  # x: 0.1 / 0.2 = 0.5; z, w in one study only
    assert np.isnan(compare.noise_shift({"x": 1.0}, {"x": 2.0}, {"x": np.nan}, {})[0])  # no noise known
    assert compare.noise_shift({"x": 1.0}, {"x": 1.0}, {"x": 0.0}, {"x": 0.0})[0] == 0.0
    assert compare.noise_shift({"x": 1.0}, {"x": 1.5}, {"x": 0.0}, {"x": 0.0})[0] == np.inf


def test_bound_change_is_the_largest_ratio_of_the_two_studies_own_bounds():
    ratio, which = compare.bound_change({"x": 0.2, "y": 0.02, "z": 1.0, "n": np.nan},
                                        {"x": 0.05, "y": 0.03, "w": 1.0, "n": 0.1})
    assert which == "x" and ratio == pytest.approx(4.0)  # larger over smaller, whichever study is larger
    assert np.isnan(compare.bound_change({"x": 0.0}, {"x": 0.1})[0])  # a bound of 0 or NaN is not compared
    assert compare.bound_change({"x": 0.1}, {"x": 0.1}) == (1.0, "x")


def test_a_verdict_that_changed_because_its_bound_moved_says_so():
    """The Intel re-run's aspect flip in miniature: the evidence moves a third of its bound, the bound
    shrinks fourfold, the verdict changes. ``within_noise`` marks it and ``bound_ratio`` names the cause."""
    def claims(verdict, spread, bound):
        return pd.DataFrame([{"id": "aspect", "claim": "c", "verdict": verdict, "evidence": "e",
                              "numbers": {"spread": spread}, "tolerance": {"spread": bound}}])
    row = compare.compare_verdicts(claims("inconclusive", 0.012, 0.028), claims("reproduced", 0.021, 0.007)).iloc[0]
    assert row["differs"] and row["within_noise"] and row["shift"] == pytest.approx(0.009 / 0.028)
    assert row["bound_ratio"] == pytest.approx(4.0) and row["bound_moved"] == "spread"


def test_a_comparison_holds_what_a_predicted_against_what_b_found():
    def claims(verdicts, agreement=None):
        rows = [{"id": f"c{i}", "claim": "c", "verdict": v, "evidence": "e", "numbers": {}, "tolerance": {}}
                for i, v in enumerate(verdicts)]
        if agreement is not None:
            rows = [dict(r, agreement=p) for r, p in zip(rows, agreement)]
        return pd.DataFrame(rows)
    v = compare.compare_verdicts(claims(["reproduced", "inconclusive", "inconclusive"], [0.5, 0.9, float("nan")]),
                                 claims(["inconclusive", "inconclusive", "inconclusive"]))
    assert v["agreement_a"].tolist()[:2] == [0.5, 0.9]
    # a claim no re-run can move counts as agreeing for sure: 0.5 + 0.9 + 1 expected, 0.45 all three
    assert compare.expected_agreement_line(v) == ("A predicted 2.4 of 3 verdicts to agree with a re-run (all 3: "
                                                  "probability 0.45); 2 agree")
    older = compare.compare_verdicts(claims(["reproduced"]), claims(["reproduced"]))  # a table without agreement
    assert older["agreement_a"].isna().all()


def verdict_claims(rows: list[tuple]) -> pd.DataFrame:
    """A claims table of (id, verdict, numbers, tolerance) rows, as findings.claims_from_results gives one."""
    return pd.DataFrame([{"id": key, "claim": "c", "verdict": verdict, "evidence": "e", "numbers": numbers,
                          "tolerance": tolerance} for key, verdict, numbers, tolerance in rows])


def test_a_flip_inside_the_noise_is_a_changed_verdict_whose_numbers_moved_one_noise_at_most():
    """``within_noise`` (the report's "!!", the book's count of flips inside the noise) marks a verdict that
    changed although no number it rests on moved by more than its noise: a move of exactly one noise is
    inside it, a verdict that did not change is never marked whatever moved, and a changed verdict with no
    number to measure the move by (B's ablations missing: "not testable") is not called a flip inside the
    noise, as nothing says how far its evidence moved."""
    half = {"x": 0.5}
    a = verdict_claims([("edge", "reproduced", {"x": 1.0}, half), ("beyond", "reproduced", {"x": 1.0}, half),
                        ("kept", "reproduced", {"x": 1.0}, half), ("gone", "reproduced", {"x": 1.0}, half)])
    b = verdict_claims([("edge", "inconclusive", {"x": 1.5}, half), ("beyond", "inconclusive", {"x": 1.75}, half),
                        ("kept", "reproduced", {"x": 1.25}, half), ("gone", "not testable", {}, {})])
    v = compare.compare_verdicts(a, b).set_index("id")
    assert v["shift"].iloc[:3].tolist() == [1.0, 1.5, 0.5] and np.isnan(v.loc["gone", "shift"])
    assert v["differs"].to_dict() == {"edge": True, "beyond": True, "kept": False, "gone": True}
    assert v["within_noise"].to_dict() == {"edge": True, "beyond": False, "kept": False, "gone": False}


def test_the_report_lists_files_of_one_study_only_marks_flips_inside_the_noise_and_exits_on_verdicts_alone(
        tmp_path):
    """A file only in A or only in B (a table a re-run did not write, a fit's error note) is a changed file,
    named with the side that has it, and a note that differs in content differs; hidden stamps and a CSV
    twin of a Parquet table are not compared. The verdicts: "≠" marks one that changed beyond its noise,
    "!!" one inside it, with the warning line only then; the exit status follows the verdicts alone."""
    runs = pd.DataFrame({"run_id": ["x", "y"], "step": [1, 1], "val_loss": [2.0, 3.0]})
    for side, note in (("a", "diverged at step 3"), ("b", "diverged at step 4")):
        folder = tmp_path / side
        (folder / "fits").mkdir(parents=True)
        runs.to_parquet(folder / "runs.parquet")
        runs.assign(val_loss=runs["val_loss"] * (1.5 if side == "b" else 1)).to_csv(folder / "runs.csv")  # twin
        (folder / "fits" / "approach3.error.txt").write_text(note)
        pd.DataFrame({"method": ["approach3"], "status": [note]}).to_csv(folder / "fits" / "status.csv")  # no twin
        (folder / f".stamp-{side}").write_text(side)
        (folder / f"only-{side}.parquet").write_bytes((folder / "runs.parquet").read_bytes())
    tables, columns = compare.compare_tables(tmp_path / "a", tmp_path / "b")
    assert tables.set_index("table")["status"].to_dict() == {
        "fits/approach3.error.txt": compare.DIFFERS, "fits/status.csv": compare.DIFFERS,
        "only-a.parquet": compare.ONLY_A, "only-b.parquet": compare.ONLY_B, "runs.parquet": compare.SAME}
    half = {"x": 0.5}
    verdicts = compare.compare_verdicts(
        verdict_claims([("moved", "reproduced", {"x": 1.0}, half), ("noise", "reproduced", {"x": 1.0}, half),
                        ("kept", "reproduced", {"x": 1.0}, half)]),
        verdict_claims([("moved", "not reproduced", {"x": 3.0}, half), ("noise", "inconclusive", {"x": 1.2}, half),
                        ("kept", "reproduced", {"x": 1.0}, half)]))
    result = compare.Comparison(str(tmp_path / "a"), str(tmp_path / "b"), tables, columns,
                                compare.compare_fits(tmp_path / "a", tmp_path / "b"), verdicts)
    assert result.changed_tables == ["fits/approach3.error.txt", "fits/status.csv", "only-a.parquet", "only-b.parquet"]
    assert result.differing_verdicts == ["moved", "noise"] and result.exit_status == 1
    text = result.format_text()
    assert "\nonly-a.parquet: only in A\n" in text and "\nonly-b.parquet: only in B\n" in text
    for mark, claim in (("≠", "moved"), ("!!", "noise"), ("", "kept")):  # the verdicts table's first column
        assert re.search(rf"^{mark} +{claim} ", text, re.M), text
    assert "\n!! the verdict changed although no number it rests on moved beyond its noise\n" in text
    calm = compare.Comparison(result.a, result.b, tables, columns, result.fits, verdicts.drop(index=1))
    assert not any(line.startswith("!! the verdict") for line in calm.format_text().splitlines())
    same = compare.Comparison(result.a, result.b, tables, columns, result.fits, verdicts.iloc[[2]])
    assert same.changed_tables and same.exit_status == 0


def test_relative_changes_keep_their_sign_from_a_negative_value_and_the_largest_is_by_size():
    """A relative change is B's move over the size of A's value, so a negative value (a log residual, a
    fitted offset) that rises reads as a rise; and the change reported as the largest, with its row, is the
    largest either way: a value that fell by 75% is not hidden behind one that rose by 50%."""
    a = pd.DataFrame({"run_id": ["x", "y", "z"], "value": [-2.0, 1.0, 4.0]})
    _, columns = compare.diff_tables("t", a, a.assign(value=[-1.0, 1.01, 1.0]))
    (value,) = columns
    assert value["min_rel_change"] == pytest.approx(-0.75) and value["max_rel_change"] == pytest.approx(0.5)
    assert value["largest_rel_change"] == pytest.approx(-0.75) and value["at"] == "run_id=z"
    assert (value["a_value"], value["b_value"], value["largest_abs_change"]) == (4.0, 1.0, 3.0)


def test_a_table_with_rows_only_in_b_differs():
    """Rows that only the re-run has (an extra seed, a checkpoint more) make its table differ, as rows only
    in A do, though every shared row is the same."""
    a = pd.DataFrame({"run_id": ["x", "y"], "value": [1.0, 2.0]})
    summary, columns = compare.diff_tables("t", a, pd.concat([a, a.iloc[[0]].assign(run_id="z")], ignore_index=True))
    assert (summary["status"], summary["rows_only_a"], summary["rows_only_b"], columns) == (compare.DIFFERS, 0, 1, [])
    summary, _ = compare.diff_tables("t", a, a.copy())
    assert summary["status"] == compare.SAME


def test_a_key_column_one_table_lacks_is_a_column_of_one_study_only():
    """Rows are matched by the key columns both tables have: a table whose other side lacks one (written by
    an older linscale, say) is still compared, the missing column reported as in one study only, rather
    than the comparison failing on it."""
    a = pd.DataFrame({"run_id": ["x", "y"], "step": [1, 1], "value": [1.0, 2.0]})
    summary, columns = compare.diff_tables("t", a, a.drop(columns="step"))
    assert summary["key"] == "run_id" and (summary["rows_only_a"], summary["rows_only_b"]) == (0, 0)
    assert [(c["column"], c["note"]) for c in columns] == [("step", "column only in A")]


def test_a_results_folder_is_one_with_a_runs_table_in_either_format(tmp_path):
    """A results folder holds runs.parquet or, from a study that wrote CSV only, runs.csv."""
    (tmp_path / "csv").mkdir()
    pd.DataFrame({"run_id": ["x"], "step": [1]}).to_csv(tmp_path / "csv" / "runs.csv", index=False)
    assert compare.check_results_folder(tmp_path / "csv", "B") == tmp_path / "csv"


def test_a_missing_key_read_as_none_in_one_study_and_as_na_in_the_other_is_the_same_key():
    """One study's table read back with an object column (a missing run id as None), the other's with a
    pandas string column (missing as NA): the key is missing in both, and the rows match."""
    a = pd.DataFrame({"run_id": pd.Series(["x", None], dtype=object), "value": [1.0, 2.0]})
    b = pd.DataFrame({"run_id": pd.array(["x", None], dtype="string"), "value": [1.0, 2.5]})
    summary, columns = compare.diff_tables("t", a, b)
    assert (summary["rows_only_a"], summary["rows_only_b"]) == (0, 0)
    assert [(c["column"], c["changed"], c["at"]) for c in columns] == [("value", 1, "run_id=<missing>")]


def test_evaluation_time_is_wall_clock_and_a_column_of_one_study_names_that_study():
    """An evaluation's time changes on every run, as training's does: shown apart, never a difference."""
    a = pd.DataFrame({"run_id": ["x", "y"], "eval_time_s": [1.0, 2.0], "extra": [0, 0]})
    b = pd.DataFrame({"run_id": ["x", "y"], "eval_time_s": [3.0, 2.0], "new": [1, 1]})
    summary, columns = compare.diff_tables("t", a, b)
    kinds = {c["column"]: (c["kind"], c.get("note")) for c in columns}
    assert kinds == {"eval_time_s": ("wall clock", None), "extra": ("value", "column only in A"),
                     "new": ("value", "column only in B")}
    assert summary["wall_clock_columns"] == "eval_time_s" and summary["changed_columns"] == "extra, new"


def test_a_claim_only_one_study_has_keeps_its_text_and_the_verdicts_keep_as_order():
    """A claim only B's rules have (a newer linscale) keeps its text, and is listed after A's claims, which
    keep A's order."""
    def claims(rows):
        return pd.DataFrame([{"id": key, "claim": f"the {key} claim", "verdict": "reproduced", "evidence": "e",
                              "numbers": {}, "tolerance": {}} for key in rows])
    v = compare.compare_verdicts(claims(["b", "a", "c"]), claims(["new", "c", "a", "b"]))
    assert v["id"].tolist() == ["b", "a", "c", "new"]  # A's order, then B's claims A lacks
    assert v.set_index("id").loc["new", "claim"] == "the new claim" and v.set_index("id").loc["new", "differs"]


def test_the_comparisons_json_has_no_nan_and_its_text_reads_moves_and_factors():
    """JSON has no NaN or infinity: to_dict writes null for them (a strict parser reads it). A move of no
    noise names no number; a change of 900% or more reads as a factor."""
    tables = pd.DataFrame({"table": ["t"], "status": [compare.SAME], "rows_a": [1.0]})
    verdicts = pd.DataFrame({"id": ["x"], "differs": [False], "shift": [math.nan], "bound_ratio": [math.inf]})
    data = compare.Comparison("a", "b", tables, pd.DataFrame(), pd.DataFrame(), verdicts).to_dict()
    json.loads(json.dumps(data, allow_nan=False))
    assert data["verdicts"][0]["shift"] is None and data["verdicts"][0]["bound_ratio"] is None
    assert compare._move(0.0, "x") == "0.00" and compare._move(1.5, "x") == "1.50 (x)"
    assert compare._pct(9.0) == "x10" and compare._pct(8.99) == "+899.00%"


def test_the_tally_reads_a_claim_without_a_prediction_as_sure_and_as_few_counts_from_below():
    """A claim whose prediction is NaN (no re-run can move it) is predicted to agree for sure; the
    surprise of a count is the probability of as few agreeing or fewer, so three of three is no surprise."""
    verdicts = pd.DataFrame([dict(id="sure", agreement_a=math.nan, differs=False),
                             dict(id="likely", agreement_a=0.9, differs=False)])
    tally = compare.agreement_tally([{"verdicts": verdicts}] * 3).set_index("claim")
    assert tally.loc["sure", "expected_differ"] == 0.0 and tally.loc["likely", "p_as_few"] == pytest.approx(1.0)


def test_a_runs_table_of_several_presets_names_none_and_a_definite_flip_is_reproduced_against_not(tmp_path):
    """A runs table recording two presets (a merged folder) says no single preset: the folder's name is
    the study's. summarise counts reproduced <-> not reproduced as a definite flip, a flip to or from
    inconclusive not, and adds A's predictions up."""
    folder = tmp_path / "mixed"
    folder.mkdir()
    pd.DataFrame({"run_id": ["r", "s"], "preset": ["cpu", "smoke"]}).to_parquet(folder / "runs.parquet")
    assert compare.study_preset(folder) == "mixed"
    verdicts = pd.DataFrame({"verdict_a": ["reproduced", "reproduced", "inconclusive"],
                             "verdict_b": ["not reproduced", "reproduced", "reproduced"],
                             "within_noise": [False, False, True], "agreement_a": [0.5, 0.9, 0.8]})
    data = {"tables": pd.DataFrame(), "columns": pd.DataFrame(), "changed_tables": [], "fits": pd.DataFrame(),
            "verdicts": verdicts, "differing_verdicts": ["x", "z"]}
    summary = compare.summarise(data)
    assert (summary["definite_flips"], summary["flips_inside_noise"], summary["verdicts_differ"]) == (1, 1, 2)
    assert summary["expected_agree"] == pytest.approx(2.2)


def test_the_report_says_no_where_two_fitted_intervals_do_not_overlap(tmp_path):
    """The fitted-laws table of the text marks an estimate whose two 95% intervals are apart "NO"."""
    for side, (estimate, low, high) in (("a", (1.0, 0.8, 1.2)), ("b", (2.0, 1.8, 2.2))):
        (tmp_path / side / "fits").mkdir(parents=True)
        pd.DataFrame([dict(method="approach1", group="tnl", law="L(C)", parameter="alpha", estimate=estimate,
                           ci_low=low, ci_high=high)]).to_csv(tmp_path / side / "fits" / "approach1.csv", index=False)
    claims = pd.DataFrame([{"id": "c", "claim": "c", "verdict": "reproduced", "evidence": "e", "numbers": {"x": 1.0},
                            "tolerance": {"x": 0.5}}])
    tables, columns = compare.compare_tables(tmp_path / "a", tmp_path / "b")
    result = compare.Comparison(str(tmp_path / "a"), str(tmp_path / "b"), tables, columns,
                                compare.compare_fits(tmp_path / "a", tmp_path / "b"),
                                compare.compare_verdicts(claims, claims))
    text = result.format_text()
    assert "== Fitted laws (fits/*.csv): 1 of 1 estimates or intervals differ ==" in text
    (line,) = [line for line in text.splitlines() if line.startswith("    approach1 ")]
    assert line.split()[-2:] == ["+100.00%", "NO"]  # the estimate doubled; the intervals are apart


# ----------------------------------------------------------------------------- command line on the committed results


def test_bad_input_is_one_line_naming_the_folder_or_table(tmp_path):
    cases = [((tmp_path / "nowhere", SMOKE), "nowhere: no such folder")]
    empty = tmp_path / "empty"
    empty.mkdir()
    cases.append(((SMOKE, empty), "empty: not a results folder (no runs.parquet or runs.csv;"))
    no_eval = copy_results(tmp_path / "no-eval")
    (no_eval / "eval.parquet").unlink()
    cases.append(((no_eval, SMOKE), f"A {no_eval / 'eval.parquet'}: no such results table"))  # which study
    damaged = copy_results(tmp_path / "damaged")  # cut short, as by a full disk: pyarrow's reason, one line
    (damaged / "eval.parquet").write_bytes((SMOKE / "eval.parquet").read_bytes()[:500])
    cases.append(((SMOKE, damaged), f"{damaged / 'eval.parquet'}: cannot be read as a table (Could not open "
                                    f"Parquet input source"))
    cases.append(((SMOKE, SMOKE / "runs.parquet"), "runs.parquet: a file; expected a study's results folder"))
    cases.append(((empty, SMOKE, "--json", SMOKE / "runs.parquet"),  # checked before the folders
                  "--json: " + str(SMOKE / "runs.parquet") + " is in this command's study B; writing it would "
                  "replace an input"))
    for (a, b, *options), message in cases:
        proc = linscale("compare", a, b, *options)
        assert proc.returncode == 2, proc.stderr
        err = proc.stderr.strip()
        assert message in err and len(err.splitlines()) == 1, err


def test_a_study_without_ablations_compares_with_its_ablation_verdicts_not_testable(tmp_path):
    """A study run with --no-ablations is a study; comparing it failed with a TypeError in the noise model."""
    bare = copy_results(tmp_path / "bare")
    shutil.rmtree(bare / "ablations")
    proc = linscale("compare", SMOKE, bare)
    assert proc.returncode == 1 and not proc.stderr.strip(), proc.stderr
    for claim in ("aspect", "context_loss", "context_retrieval"):  # the claims the ablations decide
        assert re.search(rf"{claim} +(not )?\w+ +not testable", proc.stdout), proc.stdout


def test_a_changed_verdict_is_marked_and_makes_the_exit_status_non_zero(tmp_path):
    """The committed smoke results against themselves: nothing differs, exit 0. Against a copy whose
    training-context ablation no longer moves the linear models' loss: that table is the only one listed,
    the context verdict changes, far beyond its noise, and the exit status is 1."""
    proc = linscale("compare", SMOKE, SMOKE, "--json", tmp_path / "same.json")
    assert proc.returncode == 0, proc.stderr
    same = json.loads((tmp_path / "same.json").read_text())
    assert same["changed_tables"] == [] and same["differing_verdicts"] == []
    assert "every verdict is the same" in proc.stdout

    # the copy's training-context ablation: every linear run ends 0.1 nats above its Bayes loss at every
    # context (train and held-out), so the loss no longer moves with the context
    edited = copy_results(tmp_path / "edited")
    context = pd.read_parquet(edited / "ablations" / "context.parquet")
    linear = context["arch"] != "llama"
    context.loc[linear, "val_loss"] = context.loc[linear, "bayes_loss"] + 0.1
    context.loc[linear, "train_loss"] = context.loc[linear, "train_bayes_loss"] + 0.1
    context.to_parquet(edited / "ablations" / "context.parquet")
    before = findings.claims_from_results(str(SMOKE.parent), SMOKE.name).set_index("id").loc["context_loss", "verdict"]
    proc = linscale("compare", SMOKE, edited, "--json", "-")
    assert proc.returncode == 1, proc.stderr
    result = json.loads(proc.stdout)
    assert result["changed_tables"] == ["ablations/context.parquet"]
    assert result["differing_verdicts"] == ["context_loss"]
    (row,) = [v for v in result["verdicts"] if v["id"] == "context_loss"]
    # flat: no longer "not alike"; the smoke seeds' noise (about 0.05 nats) is too wide for "alike" within 0.02
    assert (row["verdict_a"], row["verdict_b"]) == (before, findings.INCONCLUSIVE) and before != findings.INCONCLUSIVE
    assert row["shift"] > 1 and not row["within_noise"]
    text = linscale("compare", SMOKE, edited).stdout
    assert "≠  context_loss" in text and "verdicts differ: context_loss" in text


def test_tables_that_differ_with_every_verdict_the_same_exit_zero():
    """A re-run differs in its tables by design (another CPU, another seed): the exit status says whether a
    conclusion changed, so that a script can tell a re-run that agrees from one that does not."""
    tables = pd.DataFrame({"table": ["runs.parquet", "eval.parquet"], "status": [compare.DIFFERS, compare.SAME]})
    verdicts = pd.DataFrame({"id": ["context_loss", "loss_exponents"], "differs": [False, False]})
    result = compare.Comparison("a", "b", tables, pd.DataFrame(), pd.DataFrame(), verdicts)
    assert result.changed_tables == ["runs.parquet"] and result.differing_verdicts == []
    assert result.exit_status == 0
    verdicts.loc[1, "differs"] = True
    assert result.differing_verdicts == ["loss_exponents"] and result.exit_status == 1


def test_claims_from_results_gives_the_same_table_every_time():
    # the committed default study: its grid supports the bootstrap (the smoke grid's is impossible)
    first = findings.claims_from_results(str(SMOKE.parent), "cpu")
    second = findings.claims_from_results(str(SMOKE.parent), "cpu")
    tolerance = first.set_index("id").loc["lower_loss", "tolerance"]
    assert tolerance and np.isfinite(list(tolerance.values())).all()  # measured seed noise behind every number
    assert list(first.columns[:5]) == ["id", "claim", "paper", "evidence", "verdict"]
    pd.testing.assert_frame_equal(first, second)
    assert len(first) == 10 and set(first["verdict"]) <= {findings.REPRODUCED, findings.NOT_REPRODUCED,
                                                          findings.INCONCLUSIVE, findings.NOT_TESTABLE}
    for row in first.itertuples():  # every number a verdict rests on comes with its noise
        assert set(row.numbers) == set(row.tolerance), row.id
    assert first.set_index("id").loc["context_loss", "numbers"]  # the study has its ablations


# ----------------------------------------------------------------------------- two smoke studies (slow)


@pytest.fixture(scope="module")
def two_studies(tmp_path_factory, smoke_sweep):
    """The published smoke study (the committed results/smoke) and a re-executor's: the smoke study's
    sweep, evaluation and fits run again with train.seed=1, as a reader comparing their study with the
    published one would. Its main sweep is the session's shared smoke sweep, trained at that seed
    (conftest.py), so this trains only the ablations. (The committed folder is what this code produces at
    the preset's seed: `linscale compare` of a fresh smoke study against it reports no differences,
    checked whenever results/smoke is regenerated.) Fits with 20 bootstrap resamples: the tests check
    what compare reports about two studies, not the intervals themselves."""
    root = tmp_path_factory.mktemp("two-studies")
    shutil.copytree(smoke_sweep[0], root / "runs" / "smoke")
    # every stage the committed folder was made with, the design check's verdicts included (a study without
    # them counts every law as identified, so its verdicts would differ from the published ones by that alone)
    proc = linscale("study", "--preset", "smoke", "--stages", "design,sweep,eval,fits", "--runs-dir", root / "runs",
                    "--results-dir", root / "results", "--bootstrap", "20", "--set", "train.seed=1")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return SMOKE, root / "results" / "smoke"


@pytest.mark.slow
def test_a_study_compared_with_itself_reports_nothing(two_studies):
    a, _ = two_studies
    proc = linscale("compare", a, a, "--json", "-")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["changed_tables"] == [] and result["differing_verdicts"] == []
    assert {t["status"] for t in result["tables"]} == {compare.SAME} and len(result["tables"]) >= 10
    assert all(f["same"] for f in result["fits"])


@pytest.mark.slow
def test_another_seed_changes_the_trained_tables_and_compare_lists_them(two_studies, tmp_path):
    a, b = two_studies
    result = compare.compare_studies(a, b)
    tables = result.tables.set_index("table")
    # everything trained with the other seed differs; runs and checkpoints keep their keys
    for name in ("runs.parquet", "eval.parquet", "niah_cells.parquet", "ablations/aspect.parquet",
                 "ablations/context.parquet", "ablations/context-eval.parquet", "fits/approach1.csv"):
        assert tables.loc[name, "status"] == compare.DIFFERS, name
        assert tables.loc[name, "rows_only_a"] == tables.loc[name, "rows_only_b"] == 0, name
    # ... except the seeds ablation's extra runs: seeds 1, 2 beside seed 0, seeds 2, 3 beside seed 1
    seeds = pd.read_parquet(a / "ablations" / "seeds.parquet")
    per_variant = int((seeds["variant"] == seeds["variant"].iloc[-1]).sum())
    for name in ("ablations/seeds.parquet", "ablations/seeds-eval.parquet"):
        assert tables.loc[name, "status"] == compare.DIFFERS, name
    assert tables.loc["ablations/seeds.parquet", "rows_only_a"] == tables.loc["ablations/seeds.parquet", "rows_only_b"] \
        == per_variant
    # fits a new seed cannot change: where a method is impossible on the grid, the status says so in the
    # same words (the smoke grid's two sizes leave approach 2 no IsoFLOP minimum)
    status = [pd.read_csv(p / "fits" / "status.csv").query("method == 'approach2'").reset_index(drop=True)
              for p in (a, b)]
    assert (status[0]["status"] == "failed").all() and len(status[0])
    pd.testing.assert_frame_equal(status[0], status[1])
    runs = result.columns[result.columns["table"] == "runs.parquet"].set_index("column")
    # the seed moves the losses and the data order (so the training batches' Bayes loss), not the grid
    # (shapes, tokens, compute, the held-out data's Bayes loss)
    assert set(runs.index[runs["kind"] == "value"]) == {"train_loss", "val_loss", "train_bayes_loss", "seed"}
    assert runs.loc["wall_time_s", "kind"] == "wall clock"
    # the reported change is the tables' own
    ta, tb = pd.read_parquet(a / "runs.parquet"), pd.read_parquet(b / "runs.parquet")
    m = ta.merge(tb, on=["run_id", "step"], suffixes=("_a", "_b"))
    rel = m["val_loss_b"] / m["val_loss_a"] - 1
    assert runs.loc["val_loss", "changed"] == int((m["val_loss_a"] != m["val_loss_b"]).sum())
    assert runs.loc["val_loss", "max_rel_change"] == pytest.approx(rel.max())
    assert runs.loc["val_loss", "min_rel_change"] == pytest.approx(rel.min())
    # the two studies' runs live in different folders, yet their tables name each scored checkpoint by
    # its path inside the runs folder (linscale.study.portable_checkpoints): no location differs
    eval_columns = result.columns[result.columns["table"] == "eval.parquet"].set_index("column")
    assert "checkpoint" not in eval_columns.index
    assert "checkpoint" not in tables.loc["eval.parquet", "changed_columns"]
    for study in (a, b):
        assert pd.read_parquet(study / "eval.parquet")["checkpoint"].str.startswith("runs/smoke/runs/").all()
    # fitted laws: every architecture's L(C) moved, and each row carries both intervals
    fits = result.fits[(result.fits["method"] == "approach1") & (result.fits["law"] == "L(C)")]
    assert len(fits) == 8 and not fits["same"].any() and fits[["a_ci_low", "b_ci_high"]].notna().all().all()

    # A copy of A with one table of B, and only wall times and paths changed elsewhere: that table alone.
    mixed = copy_results(tmp_path / "mixed", a)
    shutil.copyfile(b / "ablations" / "aspect.parquet", mixed / "ablations" / "aspect.parquet")
    runs_table = pd.read_parquet(mixed / "runs.parquet")
    runs_table.assign(wall_time_s=runs_table["wall_time_s"] * 2).to_parquet(mixed / "runs.parquet")
    scores = pd.read_parquet(mixed / "eval.parquet")
    lost = scores.index[scores["size"] == "s1"][0]  # a small model's score: no verdict reads it
    scores.assign(checkpoint="moved/" + scores["checkpoint"], eval_time_s=0.0).drop(index=lost).to_parquet(
        mixed / "eval.parquet")
    partial = compare.compare_studies(a, mixed)
    assert partial.changed_tables == ["ablations/aspect.parquet", "eval.parquet"]
    evaluated = partial.tables.set_index("table").loc["eval.parquet"]
    assert (evaluated["rows_only_a"], evaluated["rows_only_b"], evaluated["changed_columns"]) == (1, 0, "")
    assert partial.tables.set_index("table").loc["runs.parquet", "status"] == compare.SAME
    assert set(partial.differing_verdicts) <= {"aspect"}  # the only claim that reads the aspect ablation


@pytest.mark.slow
def test_no_verdict_flips_on_differences_inside_its_own_noise(two_studies):
    """Between two honest re-runs (here: another seed), a verdict may go from reproduced to not reproduced
    (or back) only if a number it rests on moved by more than the noise the verdict itself allows for that
    number; to or from inconclusive, only if a number moved at all."""
    a, b = two_studies
    claims = [findings.claims_from_results(str(p.parent), p.name).set_index("id") for p in (a, b)]
    result = compare.compare_studies(a, b).verdicts.set_index("id")
    assert list(result.index) == list(claims[0].index)
    moved_at_all = 0
    for key, row in result.iterrows():
        assert (row["verdict_a"], row["verdict_b"]) == (claims[0].loc[key, "verdict"], claims[1].loc[key, "verdict"])
        na, nb = claims[0].loc[key, "numbers"], claims[1].loc[key, "numbers"]
        ta, tb = claims[0].loc[key, "tolerance"], claims[1].loc[key, "tolerance"]
        shifts = []
        for k in set(na) & set(nb):
            noise = max(t for t in (ta[k], tb[k]) if np.isfinite(t)) if np.isfinite([ta[k], tb[k]]).any() else np.nan
            if np.isfinite(noise):  # a change against no noise at all is infinitely many noises
                shifts.append(abs(nb[k] - na[k]) / noise if noise > 0 else np.inf if nb[k] != na[k] else 0.0)
        if shifts:
            assert row["shift"] == pytest.approx(max(shifts)), key
            moved_at_all += max(shifts) > 0
        # a verdict rule has an inconclusive band two noise bounds wide between its two definite answers: a
        # number near its edge may cross it by moving a little, but reproduced <-> not reproduced needs a
        # move beyond the noise
        if row["differs"] and {row["verdict_a"], row["verdict_b"]} == {findings.REPRODUCED, findings.NOT_REPRODUCED}:
            assert shifts and max(shifts) > 1, f"{key}: {row['verdict_a']} -> {row['verdict_b']} while its numbers " \
                                               f"moved at most {max(shifts, default=0):.2f} of their noise"
        elif row["differs"]:
            assert shifts and max(shifts) > 0, f"{key}: the verdict changed while no number moved"
    assert moved_at_all >= 5  # the other seed reached the numbers of most claims


def test_a_committed_rerun_comparison_is_found_and_summarised_for_the_book(tmp_path):
    rerun = copy_results(tmp_path / "rerun")
    runs = pd.read_parquet(rerun / "runs.parquet")
    last = runs.index[runs["val_loss"].notna()][-1]
    runs.loc[last, "val_loss"] *= 1.02  # one validation loss 2% higher: one table differs
    runs.to_parquet(rerun / "runs.parquet")
    comparison = compare.compare_studies(SMOKE, rerun, labels=("published", "re-run"))
    assert compare.rerun_comparisons(tmp_path, "smoke") == []
    path = compare.write_json(comparison, tmp_path / "reruns" / "2026-12-01-test" / "smoke-comparison.json")
    assert compare.rerun_comparisons(tmp_path, "smoke") == [path]
    data = compare.read_comparison(path)
    summary = compare.summarise(data)
    assert data["labels"] == ["published", "re-run"] and data["written"][:2] == "20"
    assert (summary["tables_changed"], summary["val_loss_changed"], summary["estimates_changed"]) == (1, 1, 0)
    assert summary["val_loss_max_change"] == pytest.approx(0.02) and summary["val_loss_min_change"] == pytest.approx(0.02)
    assert summary["val_loss_moved"].startswith("1 of ") and "+2.0%" in summary["val_loss_moved"]
    assert summary["verdicts"] == len(comparison.verdicts)
    assert summary["verdicts_differ"] == len(comparison.differing_verdicts) >= summary["definite_flips"]
    bad = tmp_path / "reruns" / "broken" / "smoke-comparison.json"
    bad.parent.mkdir()
    for text, said in (("{not json", "not readable as a comparison"), ('{"labels": []}', "no changed_tables")):
        bad.write_text(text)
        with pytest.raises(compare.CompareError, match=said) as error:
            compare.read_comparison(bad)
        assert str(bad) in str(error.value) and "\n" not in str(error.value)
    same = compare.summarise(compare.read_comparison(compare.write_json(compare.compare_studies(SMOKE, SMOKE),
                                                                        tmp_path / "same.json")))
    assert (same["tables_changed"], same["verdicts_differ"], same["val_loss_moved"]) == (0, 0, "no validation loss moved")


def test_agreement_tally_counts_re_runs_that_agreed_against_the_prediction():
    def comparison(differs):
        return {"verdicts": pd.DataFrame([dict(id="safe", agreement_a=0.99, differs=False),
                                          dict(id="coin", agreement_a=0.5, differs=differs)])}

    tally = compare.agreement_tally([comparison(True), comparison(True), comparison(False)]).set_index("claim")
    assert tally.loc["coin", ["reruns", "agreed", "differed"]].tolist() == [3, 1, 2]
    assert tally.loc["coin", "p_as_few"] == pytest.approx(0.5)  # P(at most 1 of 3 agree) at 0.5 each
    assert tally.loc["safe", "expected_differ"] == pytest.approx(0.03)
    assert tally.loc["all", "differed"] == 2 and tally.loc["all", "expected_differ"] == pytest.approx(1.53)
    # comparisons written before predictions were recorded are left out
    assert len(compare.agreement_tally([{"verdicts": pd.DataFrame([dict(id="x", differs=True)])}])) == 0


def test_the_verdicts_reached_where_re_runs_differ_are_counted_most_first():
    """The introduction says which way the re-runs went where a verdict did not hold ("4 found it reproduced")."""
    def comparison(verdict_b, predicted=True):
        row = dict(id="aspect", differs=verdict_b != "inconclusive", verdict_b=verdict_b)
        return {"verdicts": pd.DataFrame([{**row, "agreement_a": 0.74} if predicted else row])}

    draws = [comparison("reproduced"), comparison("not reproduced"), comparison("reproduced"),
             comparison("inconclusive"), comparison("reproduced", predicted=False)]  # the last is not in the tally
    assert compare.differing_verdicts_reached(draws, "aspect") == {"reproduced": 2, "not reproduced": 1}
    assert list(compare.differing_verdicts_reached(draws, "aspect")) == ["reproduced", "not reproduced"]
    assert compare.differing_verdicts_reached(draws, "other") == {}


def test_a_rerun_that_trained_to_an_earlier_reruns_bits_is_one_draw(tmp_path):
    def rerun(name, moved=None, column="val_loss", wall=1.0, tables=True):
        folder = tmp_path / "reruns" / name
        (folder / "smoke").mkdir(parents=True)
        runs = pd.read_parquet(SMOKE / "runs.parquet")
        if moved is not None:  # one logged loss in its last bit
            row = runs.index[runs[column].notna()][moved]
            runs.loc[row, column] = np.nextafter(runs.loc[row, column], np.inf)
        runs["wall_time_s"] *= wall  # another machine's clock is not another draw
        if tables:
            runs.sample(frac=1, random_state=ord(name[-1])).to_parquet(folder / "smoke" / "runs.parquet")  # row order neither
        (folder / "smoke-comparison.json").write_text("{}")
        return folder / "smoke-comparison.json"

    first = rerun("2026-12-01-a")
    same_bits = rerun("2026-12-02-b", wall=1.7)
    last_bit = rerun("2026-12-03-c", moved=-1)
    train_bit = rerun("2026-12-04-d", moved=0, column="train_loss")
    untabled = rerun("2026-12-05-e", tables=False)
    repeat_of_c = rerun("2026-12-06-f", moved=-1, wall=0.5)
    kept, repeats = compare.distinct_draws([first, same_bits, last_bit, train_bit, untabled, repeat_of_c], "smoke")
    assert kept == [first, last_bit, train_bit]
    assert repeats == {"2026-12-02-b": "2026-12-01-a", "2026-12-06-f": "2026-12-03-c"}


COMMITTED_RERUNS = sorted(p.parent.parent for p in (SMOKE.parent / "reruns").glob("*/cpu/runs.parquet"))


@pytest.mark.slow  # about 7 s a re-run
@pytest.mark.parametrize("rerun", COMMITTED_RERUNS, ids=[p.name for p in COMMITTED_RERUNS])
def test_a_committed_rerun_comparison_is_what_linscale_compare_writes_today(rerun, tmp_path):
    """The findings chapter shows each committed comparison whose B tables are committed as judged by
    today's rules against today's published study: a change to a rule, an evidence text or the published
    tables means writing them again (`linscale compare results/cpu results/reruns/X/cpu --label-a ...
    --label-b ... --json results/reruns/X/cpu-comparison.json`, the labels kept). All six showed an
    interval label that the rules had since corrected."""
    committed = json.loads((rerun / "cpu-comparison.json").read_text())
    today = compare.write_json(compare.compare_studies(SMOKE.parent / "cpu", rerun / "cpu",
                                                       labels=tuple(committed["labels"])), tmp_path / "today.json")
    today = json.loads(today.read_text())
    for key in ("written", "a", "b"):  # when, and the paths as typed
        committed.pop(key), today.pop(key)
    assert today == committed, f"{rerun.name}/cpu-comparison.json is not what linscale compare writes today"


def test_fitted_intervals_overlap_apart_touch_or_are_missing(tmp_path):
    """compare_fits says whether each estimate's two intervals overlap (touching ends count, whichever side is
    higher), and leaves it open (None) where a side has no interval; B's change is relative to the size of
    A's estimate (a negative one that rises reads as a rise); summarise counts the intervals apart."""
    def fits(folder, rows):
        (folder / "fits").mkdir(parents=True)
        pd.DataFrame([dict(method="approach1", group="tnl", law="L(C)", parameter=p, estimate=e, ci_low=lo,
                           ci_high=hi) for p, e, lo, hi in rows]).to_csv(folder / "fits" / "approach1.csv", index=False)
        pd.DataFrame({"method": ["approach1"], "arch": ["tnl"], "status": ["fitted"]}).to_csv(
            folder / "fits" / "status.csv", index=False)  # not a laws table: left out
        return folder

    a = fits(tmp_path / "a", [("overlap", 1.0, 0.8, 1.2), ("apart", 1.0, 0.8, 1.2), ("apart_below", 1.0, 0.8, 1.2),
                              ("touching", 1.0, 0.8, 1.2), ("touching_below", 1.0, 0.8, 1.2),
                              ("missing", 1.0, 0.8, 1.2), ("same", 1.0, 0.8, 1.2), ("negative", -0.5, -0.6, -0.4)])
    b = fits(tmp_path / "b", [("overlap", 1.3, 1.1, 1.5), ("apart", 1.5, 1.3, 1.7), ("apart_below", 0.5, 0.3, 0.7),
                              ("touching", 1.4, 1.2, 1.6), ("touching_below", 0.6, 0.4, 0.8),
                              ("missing", 1.1, float("nan"), float("nan")), ("same", 1.0, 0.8, 1.2),
                              ("negative", -0.45, -0.55, -0.35)])
    table = compare.compare_fits(a, b).set_index("parameter")
    assert table["intervals_overlap"].to_dict() == {"apart": False, "apart_below": False, "missing": None,
                                                    "overlap": True, "same": True, "touching": True,
                                                    "touching_below": True, "negative": True}  # touching: either side
    assert table["same"].to_dict() == {"apart": False, "apart_below": False, "missing": False, "overlap": False,
                                       "same": True, "touching": False, "touching_below": False, "negative": False}
    assert table.loc["overlap", "rel_change"] == pytest.approx(0.3)
    assert table.loc["negative", "rel_change"] == pytest.approx(0.1)  # -0.5 to -0.45: up by a tenth of its size
    data = {"tables": pd.DataFrame(), "columns": pd.DataFrame(), "changed_tables": [], "fits": table.reset_index(),
            "verdicts": pd.DataFrame(), "differing_verdicts": []}
    summary = compare.summarise(data)
    assert summary["intervals_apart"] == 2 and summary["estimates"] == 8 and summary["estimates_changed"] == 7


def test_a_study_made_with_other_settings_is_not_held_to_the_prediction_for_a_re_run(tmp_path):
    """A smoke study at another learning rate was compared as a re-run: 'A predicted 9.5 of 10 verdicts to
    agree with a re-run', with nothing said of how B was made. A seed alone is what a re-run changes."""
    import json

    seed_only, other_lr = copy_results(tmp_path / "seed" / "smoke"), copy_results(tmp_path / "lr" / "smoke")
    (seed_only / "overrides.json").write_text(json.dumps({"preset": "smoke", "set": ["train.seed=1"]}))
    (other_lr / "overrides.json").write_text(json.dumps({"preset": "smoke", "set": ["train.seed=1", "train.lr=2e-3"]}))
    assert compare.settings_note(SMOKE, seed_only) is None
    text = compare.compare_studies(SMOKE, seed_only).format_text()
    assert "A predicted" in text and "does not apply" not in text
    note = compare.settings_note(SMOKE, other_lr)
    assert note.startswith("note: A was made with no --set, B with --set train.lr=2e-3 (beyond the seed)")
    text = compare.compare_studies(SMOKE, other_lr).format_text()
    assert note in text and "A predicted 9" not in text
    assert "A's predicted agreement does not apply: B is not a re-run of A" in text


def test_relative_changes_read_as_factors_when_large_either_way():
    """A log residual of -0.001 against 4.6 read '-460922.58%'; a seed from 0 to 1 '+inf' alone."""
    assert compare._pct(-4609.2258) == "x-4.61e+03" and compare._pct(12) == "x13"
    assert compare._pct(float("inf")) == "+inf (from 0)" and compare._pct(-0.5) == "-50.00%"


def test_two_studies_without_suite_scores_compare_their_tables_and_laws_with_no_verdicts(tmp_path):
    """A study of real text has no eval.parquet (the suites need the synthetic language): comparing it with
    itself or a re-run was refused ('no such results table (run `linscale study` first'), which no study
    of text can give; its tables and laws compare, and the verdicts, which all rest on the scores, are none."""
    for side in ("a", "b"):
        shutil.copytree(SMOKE, tmp_path / side / "smoke")
        (tmp_path / side / "smoke" / "eval.parquet").unlink()
    comparison = compare.compare_studies(tmp_path / "a" / "smoke", tmp_path / "b" / "smoke")
    assert comparison.exit_status == 0 and comparison.verdicts.empty and not comparison.changed_tables
    assert "== Verdicts: none (neither folder has eval.parquet" in comparison.format_text()
    summary = compare.summarise(compare.read_comparison(compare.write_json(comparison, tmp_path / "text.json")))
    assert (summary["verdicts"], summary["verdicts_differ"]) == (0, 0)
    with pytest.raises(compare.CompareError, match="^A .+eval.parquet: no such results table"):
        compare.compare_studies(tmp_path / "a" / "smoke", SMOKE)  # one of them has scores: still refused
