"""`linscale bench --quick`: the benchmark code runs end to end and its tables have the promised shape.

Speed itself is never asserted here (a loaded CI machine would make that flaky); the goals are checked by
the benchmark's own report, from ratios measured side by side."""
import pytest

from linscale import bench
from linscale.cli import main
from linscale.config import ARCHITECTURES, LINEAR_ARCHITECTURES


@pytest.fixture(scope="module")
def tables():
    return bench.run_all(quick=True, log=None)


def test_training_table(tables):
    t = tables["training"]
    assert list(t.model) == [*ARCHITECTURES, "hf_llama"]
    assert {"tokens_per_s", "step_s", "vs_hf_llama", "seq_len", "batch_size"} <= set(t.columns)
    assert (t.tokens_per_s > 0).all() and (t.vs_hf_llama > 0).all()
    assert t.loc[t.model == "hf_llama", "vs_hf_llama"].item() == 1.0


def test_length_and_decoding_tables(tables):
    length, dec = tables["length"], tables["decoding"]
    assert set(length.mixer) == set(ARCHITECTURES) and set(length.seq_len) == set(bench.QUICK["seq_lens"])
    assert (length.batch_size * length.seq_len == bench.QUICK["tokens_per_batch"]).all()  # fixed tokens/batch
    assert (length.us_per_token > 0).all() and (length[length.seq_len == length.attrs["reference_len"]].vs_ref == 1.0).all()
    assert set(dec.context) == set(bench.QUICK["contexts"]) and (dec.ms_per_token > 0).all()
    # memory is a structural fact, not a timing: constant for the linear models, growing for LLaMA's cache
    assert (dec[dec.model.isin(LINEAR_ARCHITECTURES)].state_vs_ref == 1.0).all()
    assert dec[dec.model == "llama"].state_vs_ref.max() > 1


def test_goals_and_report(tables, tmp_path):
    g = bench.goals(tables)
    assert {"goal", "figure", "threshold", "met"} <= set(g.columns) and len(g) >= 8
    path = bench.write_report(tables, tmp_path, quick=True)
    text = path.read_text()
    assert path.name.endswith("-cpu-bench-quick.md") and "torch" in text and "## Goals" in text


def test_cli_quick_prints_and_writes(tmp_path, capsys):
    assert main(["bench", "--quick", "--sections", "decoding", "--out", str(tmp_path)]) == 0
    assert "decoding" in capsys.readouterr().out and len(list(tmp_path.glob("*.md"))) == 1


def test_end_to_end_reports_failures_without_raising():
    """A preset that cannot run (or a missing `sweep` subcommand) is a row with ok=False and the reason."""
    t = bench.end_to_end(("no-such-preset",), timeout_s=120)
    assert list(t.columns) == ["preset", "wall_s", "ok", "note"]
    assert not t.ok.item() and t.note.item()
