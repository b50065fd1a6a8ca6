"""Excess loss by token role: the synthetic language's roles, the exact split of a loss over them, and the
study's role table."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from linscale.config import ConfigError
from linscale.data.synthetic import ROLES, LanguageSpec, SyntheticLanguage, token_roles
from linscale.eval.roles import COLUMNS, checkpoint_roles, evaluate_roles, role_losses

SMALL = LanguageSpec(n_first=6, n_last=5, n_relations=4, n_objects=16, objects_per_relation=6, n_adj=4,
                     n_noun=5, n_verb=4, n_vars=5, n_values=8, fact_zipf=1.1, doc_len=40)


@pytest.fixture(scope="module")
def lang():
    return SyntheticLanguage(SMALL)


def word(lang, kind: str, i: int = 0) -> str:
    return lang.words[lang.offset[kind] + i]


def test_every_sentence_type_gets_its_roles_position_by_position(lang):
    first, last, rel, obj = word(lang, "first"), word(lang, "last"), word(lang, "relation"), word(lang, "object")
    var, val = word(lang, "var", 1), word(lang, "object", 2)
    adj, noun, verb = word(lang, "adj"), word(lang, "noun"), word(lang, "verb")
    text = (f"<eod> let {var} {val} . what {var} {val} . the {rel} of {first} {last} is {obj} . "
            f"{first} {last} {rel} {obj} . a {adj} {noun} {verb} {adj} {noun} . <eod> {first} {last}")
    row = np.array([lang.encode(text)])
    got = [ROLES[r] for r in token_roles(lang, row)[0]]
    assert got == ["determined",
                   "start", "binding", "binding", "determined",
                   "start", "query_variable", "query_value", "determined",
                   "start", "fact_choice", "determined", "fact_choice", "fact_choice", "determined", "fact_object",
                   "determined",
                   "start", "fact_choice", "fact_choice", "fact_object", "determined",
                   "start", "grammar", "grammar", "grammar", "grammar", "grammar", "determined",
                   "determined", "start", "fact_choice"]  # a new document after <eod>, cut off


def test_roles_agree_with_what_the_generator_knows(lang):
    rows, nll = lang.sample_rows(np.random.default_rng(5), 64, 96)
    roles = token_roles(lang, rows)
    labels, exact = roles[:, 1:], nll[:, 1:]
    for role in ROLES:  # every role occurs in a sample of this size
        assert (labels == ROLES.index(role)).sum() > 20, role
    for role in ("determined", "fact_object"):  # probability 1 for the generator
        assert exact[labels == ROLES.index(role)].max() == 0, role
    for role in ("start", "grammar"):  # never certain (a binding's variable is, when one is left unbound)
        assert exact[labels == ROLES.index(role)].min() > 0, role
    for role in ("binding", "query_variable", "query_value"):
        assert exact[labels == ROLES.index(role)].mean() > 0.5, role
    variables = (rows >= lang.offset["var"]) & (rows < lang.offset["var"] + SMALL.n_vars)
    assert variables[roles == ROLES.index("query_variable")].all()
    objects = (rows >= lang.offset["object"]) & (rows < lang.offset["object"] + SMALL.n_objects)
    assert objects[roles == ROLES.index("query_value")].all() and objects[roles == ROLES.index("fact_object")].all()
    previous = np.concatenate([np.full((len(rows), 1), lang.eod_id), rows[:, :-1]], axis=1)
    assert np.isin(previous[roles == ROLES.index("start")], [lang.eod_id, lang.fn["."]]).all()


def test_role_contributions_add_up_to_the_loss_above_the_exact_one(lang):
    rows, nll = lang.sample_rows(np.random.default_rng(6), 16, 64)
    model = nll[:, 1:] + np.random.default_rng(7).gamma(2.0, 0.3, size=nll[:, 1:].shape)
    table = role_losses(lang, rows, nll[:, 1:], model)
    assert table["role"].tolist() == list(ROLES)
    assert table["share"].sum() == pytest.approx(1.0) and table["labels"].sum() == model.size
    assert table["contribution"].sum() == pytest.approx(model.mean() - nll[:, 1:].mean(), rel=1e-12)
    fact_object = table.set_index("role").loc["fact_object"]
    mask = token_roles(lang, rows)[:, 1:] == ROLES.index("fact_object")
    assert fact_object["excess"] == pytest.approx(model[mask].mean())  # its exact nll is 0
    with pytest.raises(ConfigError, match="must have one shape"):
        role_losses(lang, rows, nll[:, 1:], model[:, :-1])
    with pytest.raises(ConfigError, match="rows: expected a 2-D array"):
        token_roles(lang, rows[0])


def test_a_role_that_never_occurs_contributes_nothing_not_nan(lang):
    """Validation rows without a query (a short context, a language without bindings) have no query_value
    labels: that role's mean nll is undefined, but its contribution is 0, or the contributions' sum (the
    excess loss the chapter splits) would be NaN."""
    first, last, rel, obj = word(lang, "first"), word(lang, "last"), word(lang, "relation"), word(lang, "object")
    rows = np.array([lang.encode(f"<eod> {first} {last} {rel} {obj} .")])
    exact = np.zeros((1, rows.shape[1] - 1))
    table = role_losses(lang, rows, exact, exact + 0.5).set_index("role")
    absent = table.loc["query_value"]
    assert absent["labels"] == 0 and absent["share"] == 0 and absent["contribution"] == 0.0
    assert np.isfinite(table["contribution"]).all() and table["contribution"].sum() == pytest.approx(0.5)


@pytest.mark.parametrize("meta, message", [
    ({"seq_len": None}, "the checkpoint's meta has no seq_len"),
    ({"data": {"source": "text", "path": "corpus.txt"}},
     r"roles need the synthetic language \(data.source is 'text'\)"),
], ids=["no seq_len", "real text"])
def test_a_checkpoint_without_a_context_or_the_synthetic_language_has_no_roles_one_line(tmp_path, meta, message):
    """Roles are measured on the synthetic language's validation rows at the training context: an export
    of real text, or one whose meta lost its seq_len, is a one-line ConfigError naming the checkpoint, not a
    traceback from the data module."""
    import eval_fixtures as fx
    from linscale.models.checkpoint import save_checkpoint

    model = fx.tiny_model()
    full = {"run_id": "r", "arch": "llama", "size": "tiny", "step": 0, "data": fx.DATA, "seq_len": fx.SEQ_LEN}
    checkpoint = save_checkpoint(model, tmp_path / "export", {k: v for k, v in {**full, **meta}.items()
                                                              if v is not None}, tokenizer=fx.tokenizer())
    with pytest.raises(ConfigError, match=message) as err:
        checkpoint_roles(checkpoint)
    assert str(err.value).startswith(str(checkpoint)) and "\n" not in str(err.value)


def test_a_checkpoints_roles_are_read_on_the_validation_rows_its_run_capped_them_to(tmp_path):
    """An export inside its run folder (``<run>/export/step=N``) is read on the rows its run validated on:
    ``train.val_batches`` batches of ``train.batch_size`` rows from the run's spec.json; the same export
    copied out of its run folder on the whole split. Its meta names the run (a data dict without a source
    is the synthetic language), and the roles' split of the loss is the model's own mean loss on those rows."""
    import json
    import shutil

    import torch

    import eval_fixtures as fx
    from linscale.data.datamodule import SyntheticDataModule
    from linscale.models.checkpoint import save_checkpoint

    data, seq_len = {"seed": 7, "val_tokens": 160}, 16  # 10 validation rows
    module = SyntheticDataModule(data, seq_len=seq_len, batch_size=2)
    model = fx.tiny_model(vocab_size=module.language.vocab_size)
    meta = {"run_id": "llama-tiny", "arch": "llama", "size": "tiny", "seed": 5, "step": 3, "data": data,
            "seq_len": seq_len}
    export = save_checkpoint(model, tmp_path / "llama-tiny" / "export" / "step=3", meta)
    (tmp_path / "llama-tiny" / "spec.json").write_text(json.dumps({"train": {"batch_size": 2, "val_batches": 2}}))
    said = []
    table = evaluate_roles([export], progress=said.append)
    assert said == ["roles: 1 checkpoints"] and table.columns.tolist() == COLUMNS
    assert table["labels"].sum() == 2 * 2 * seq_len  # two batches of two rows
    assert (table["run_id"].iloc[0], table["seed"].iloc[0], table["step"].iloc[0]) == ("llama-tiny", 5, 3)
    rows = torch.as_tensor(np.asarray(module.split_dataset("validation").rows)[:4], dtype=torch.long)
    with torch.no_grad():
        mean = torch.nn.functional.cross_entropy(model(rows[:, :-1]).logits.float().transpose(1, 2), rows[:, 1:])
    assert (table["share"] * table["model_nll"]).sum() == pytest.approx(float(mean), rel=1e-5)
    copied = shutil.copytree(export, tmp_path / "elsewhere" / "step=3")
    assert checkpoint_roles(copied)["labels"].sum() == 10 * seq_len  # the whole split


def test_no_checkpoints_give_an_empty_role_table_with_its_columns():
    """A study whose sweep exported nothing yet (or --eval-checkpoints of none) writes an empty roles table
    the chapters can still select columns of (pd.concat of no frames would raise)."""
    said = []
    table = evaluate_roles([], progress=said.append)
    assert table.empty and table.columns.tolist() == COLUMNS and said == []


def test_a_checkpoints_roles_split_the_validation_loss_it_recorded(smoke_sweep):
    """The role table is measured on the run's own validation rows: its contributions plus the exact loss
    of those rows give the validation loss the run recorded at that step."""
    out, _ = smoke_sweep
    exports = sorted(out.glob("runs/*/export/step=*"))
    assert len(exports) >= 8
    for export in exports[::3]:
        table = checkpoint_roles(export)
        assert table.columns.tolist() == COLUMNS and len(table) == len(ROLES)
        recorded = table["val_loss"].iloc[0]
        assert np.isfinite(recorded)
        split = table["contribution"].sum() + (table["share"] * table["bayes_nll"]).sum()
        assert split == pytest.approx(recorded, abs=2e-5), export
        assert table["run_id"].iloc[0] == export.parent.parent.name and table["step"].iloc[0] == int(export.name[5:])


def test_the_study_tables_roles_of_the_main_sweep_and_the_seed_ablations(tmp_path, monkeypatch):
    import linscale.eval.roles as roles_module
    from linscale.study import _eval_roles

    from test_study import BASE

    runs_dir, results = tmp_path / "runs", tmp_path / "results"
    for sweep in ("toy", "toy-seed1", "toy-ends-seed1", "toy-context64", "toy-aspect"):
        for step in (5, 10):
            (runs_dir / sweep / "runs" / "tnl-a" / "export" / f"step={step}").mkdir(parents=True)
            (runs_dir / sweep / "runs" / "tnl-a" / "export" / f"step={step}" / "config.json").write_text("{}")
    results.mkdir()
    read = []

    def fake_roles(checkpoint):
        read.append(Path(checkpoint).relative_to(runs_dir).as_posix())
        return pd.DataFrame([{c: 0.0 for c in COLUMNS} | {"checkpoint": str(checkpoint), "role": "start"}])

    monkeypatch.setattr(roles_module, "checkpoint_roles", fake_roles)
    main = [runs_dir / "toy" / "runs" / "tnl-a" / "export" / f"step={s}" for s in (5, 10)]
    _eval_roles({**BASE, "name": "toy"}, runs_dir, results, main)
    # every main checkpoint asked for, then each seed ablation's final one; not the context or aspect ablations
    assert read == ["toy/runs/tnl-a/export/step=5", "toy/runs/tnl-a/export/step=10",
                    "toy-seed1/runs/tnl-a/export/step=10", "toy-ends-seed1/runs/tnl-a/export/step=10"]
    table = pd.read_parquet(results / "roles.parquet")
    assert table["sweep"].tolist() == ["toy", "toy", "toy-seed1", "toy-ends-seed1"]
    assert table["ablation"].tolist() == ["main", "main", "seeds", "size_seeds"]
    assert table["checkpoint"].tolist() == [f"runs/{r}" for r in read]  # portable paths
    # real text has no roles: no table, and the one of an earlier study is not left to pass for it
    read.clear()
    _eval_roles({**BASE, "name": "toy", "data": {"source": "text", "path": "x.txt"}}, runs_dir, results, main)
    assert read == [] and not (results / "roles.parquet").exists()


def test_the_chapters_role_tables_read_each_runs_last_checkpoint_and_the_largest_size():
    from linscale import findings

    rows = []
    for sweep, arch, size, params, seed in [("cpu", "llama", "s1", 10, 0), ("cpu", "llama", "s2", 100, 0),
                                            ("cpu", "tnl", "s1", 11, 0), ("cpu", "tnl", "s2", 110, 0),
                                            ("cpu-ends-seed1", "llama", "s2", 100, 1)]:
        for step in (5, 10):
            for role, share, bayes in (("query_variable", 0.25, 2.0), ("query_value", 0.25, 1.0), ("fact_object", 0.5, 0.0)):
                excess = params / 100 + step / 10 + (seed * 0.5)
                rows.append({"sweep": sweep, "ablation": "main" if sweep == "cpu" else "size_seeds",
                             "run_id": f"{arch}-{size}", "arch": arch, "size": size, "params": params,
                             "seed": seed, "step": step, "role": role, "share": share, "bayes_nll": bayes,
                             "excess": excess, "contribution": share * excess})
    table = pd.DataFrame(rows)
    finals = findings.role_finals(table)
    assert set(finals["step"]) == {10} and len(finals) == 15  # each run of each sweep once per role
    assert finals.loc[finals["sweep"] == "cpu-ends-seed1", "main"].eq(False).all() and finals["main"].sum() == 12
    blind = findings.context_blind_excess(table, {"n_vars": 16, "n_values": 32})
    assert blind == pytest.approx({"query_variable": np.log(16) - 2.0, "query_value": np.log(32) - 1.0})
    assert findings.context_blind_excess(table, {}) == {}
    wide = findings.role_contributions(finals)
    # the largest size of the main sweep only (not the seed ablation's run of the same size), per role and arch
    assert wide.loc["fact_object", "llama"] == pytest.approx(0.5 * (1.0 + 1.0))
    assert wide.loc["total", "tnl"] == pytest.approx(1.0 * (1.1 + 1.0)) and wide.loc["total", "share"] == 1.0
    assert findings.role_finals(None).empty


def test_the_seed_group_probe_is_read_as_two_groups_and_when_each_run_learned_the_skill(tmp_path):
    from linscale import findings

    lower, upper = findings.split_at_largest_gap(pd.Series({0: 1.471, 1: 1.475, 4: 1.499, 6: 1.498, 2: 1.472}))
    assert sorted(lower.index) == [0, 1, 2] and sorted(upper.index) == [4, 6]
    assert findings.mode_probe(tmp_path) is None  # no probe tables: nothing to say
    pd.DataFrame({"study": ["published", "published", "rerun", "rerun"], "arch": "llama", "seed": [0, 1, 0, 6],
                  "step": 100, "val_loss": [1.47, 1.475, 1.48, 1.50]}).to_csv(tmp_path / "s6_final_losses.csv")
    pd.DataFrame({"arch": ["llama"], "seed": [6], "query_variable": [0.9]}).to_csv(tmp_path / "s6_roles.csv")
    pd.DataFrame({"arch": "llama", "seed": 6, "step": [50, 100, 200], "val_loss": [1.6, 1.5, 1.45]}) \
        .to_csv(tmp_path / "longer_curves.csv")
    pd.DataFrame({"arch": ["llama"] * 3 + ["tnl"] * 3 + ["cosformer2"] * 3, "seed": [6] * 3 + [0] * 3 + [0] * 3,
                  "step": [50, 100, 200] * 3, "query_variable": [0.9, 0.8, 0.2, 0.9, 0.9, 0.9, 0.3, 0.2, 0.1]}) \
        .to_csv(tmp_path / "longer_roles.csv")
    probe = findings.mode_probe(tmp_path, learned_below=0.45)
    # each seed's first committed run: seed 0's published loss, not the re-run's
    assert sorted(probe["lower"].index) == [0, 1] and list(probe["upper"].index) == [6]
    assert probe["lower"][0] == 1.47 and probe["base"] == 100
    assert probe["learned"] == {("llama", 6): (100, 200), ("tnl", 0): None, ("cosformer2", 0): (None, 50)}


def test_seeds_committed_after_the_group_probe_are_placed_against_its_groups(tmp_path):
    from linscale import findings

    probe = {"lower": pd.Series({0: 1.470, 1: 1.475}), "upper": pd.Series({6: 1.498, 7: 1.500})}

    def study(folder, runs, roles=None):
        folder.mkdir(parents=True)
        pd.DataFrame([{"run_id": f"{a}-s6", "arch": a, "size": "s6", "seed": seed, "step": step, "val_loss": loss}
                      for a, seed, step, loss in runs]).to_parquet(folder / "runs.parquet")
        if roles is not None:
            pd.DataFrame([{"arch": "llama", "size": "s6", "seed": seed, "step": step, "role": "query_variable",
                           "excess": x} for seed, step, x in roles]).to_parquet(folder / "roles.parquet")

    # the published study's seed 0 is the probe's; a later study adds seed 9 (in the lower group's range),
    # seed 10 (in the gap: caught while learning), seed 11 (in the upper's) and a TNL run, which is not LLaMA's
    study(tmp_path / "cpu", [("llama", 0, 100, 1.470), ("llama", 0, 50, 1.60)])
    study(tmp_path / "reruns" / "late" / "cpu", [("llama", 9, 100, 1.473), ("llama", 10, 100, 1.487),
                                                 ("llama", 10, 50, 1.55), ("llama", 11, 100, 1.499),
                                                 ("tnl", 12, 100, 1.40)],
          roles=[(10, 50, 0.9), (10, 100, 0.63), (9, 100, 0.1)])
    finals = findings.committed_finals(tmp_path)
    assert len(finals) == 5 and set(finals["step"]) == {100}  # each run's last checkpoint only
    later = findings.later_seeds(probe, tmp_path).set_index("seed")
    assert list(later.index) == [9, 10, 11] and list(later["place"]) == ["lower", "between", "upper"]
    assert later.loc[10, "excess"] == 0.63 and later.loc[9, "study"] == "late"


def _binding_rows(learned: dict[str, list[float]]) -> pd.DataFrame:
    """Final-checkpoint role rows of one run per excess: arch -> excesses on a query's variable (seeds 10...)."""
    return pd.DataFrame([{"arch": arch, "seed": 10 + i, "role": "query_variable", "bayes_nll": 2.0, "excess": x}
                         for arch, values in learned.items() for i, x in enumerate(values)])


def test_the_registered_binding_test_reaches_each_verdict_by_its_rule():
    from linscale import findings

    data = {"n_vars": 16}  # context-blind excess log 16 - 2.0 = 0.77: learned under 0.386
    lo, hi = 0.2, 0.9
    rows = _binding_rows({"llama": [lo] * 4 + [hi], "tnl": [hi] * 5, "hgrn2": [hi] * 5, "cosformer2": [hi] * 5})
    learned = findings.binding_learned(rows, data)
    assert learned["threshold"].iloc[0] == pytest.approx(0.5 * (np.log(16) - 2.0))
    assert learned.groupby("arch")["learned"].sum().to_dict() == {"llama": 4, "tnl": 0, "hgrn2": 0, "cosformer2": 0}
    result = findings.binding_verdict(learned)
    assert result["verdict"] == findings.REPRODUCED and result["llama"] == (4, 5) and result["linear"] == (0, 15)
    assert result["p_llama_higher"] == pytest.approx(5 / 4845)  # C(5,4)/C(20,4): all 4 learners among LLaMA's 5
    # two of five against none of fifteen: p = C(5,2)/C(20,2) = 0.053 > 0.05, so not enough
    two = findings.binding_verdict(findings.binding_learned(
        _binding_rows({"llama": [lo] * 2 + [hi] * 3, "tnl": [hi] * 5, "hgrn2": [hi] * 5, "cosformer2": [hi] * 5}), data))
    assert two["verdict"] == findings.INCONCLUSIVE and two["p_llama_higher"] == pytest.approx(10 / 190)
    # the linear models learning it while LLaMA does not is the claim refuted
    against = findings.binding_verdict(findings.binding_learned(
        _binding_rows({"llama": [hi] * 5, "tnl": [lo] * 5, "hgrn2": [lo] * 5, "cosformer2": [hi] * 5}), data))
    assert against["verdict"] == findings.NOT_REPRODUCED and against["counts"]["tnl"] == (5, 5)
    # the threshold is strict, and a table without the language's counts cannot be judged
    at = findings.binding_learned(_binding_rows({"llama": [0.5 * (np.log(16) - 2.0)]}), data)
    assert not at["learned"].any()
    with pytest.raises(ValueError, match="n_vars"):
        findings.binding_learned(rows, {})
    assert findings.binding_verdict(learned[learned["arch"] == "llama"])["verdict"] == findings.INCONCLUSIVE


def test_the_registered_tests_tables_are_judged_again_by_the_rule_not_by_the_report(tmp_path):
    from linscale import findings

    data = {"n_vars": 16}
    assert findings.binding_probe(tmp_path, data) is None  # no tables: nothing to say
    roles = _binding_rows({"llama": [0.9, 0.9, 0.9], "tnl": [0.9, 0.9, 0.9]})
    early = roles.assign(step=10)
    final = roles.assign(step=20, excess=[0.2, 0.3, 0.9, 0.9, 0.9, 0.9])  # LLaMA seeds 10, 11 learn it late
    pd.concat([early, final]).to_csv(tmp_path / "roles.csv", index=False)
    runs = final[["arch", "seed"]].assign(val_loss=[1.40, 1.42, 1.47, 1.50, 1.52, 1.51],
                                          niah_easy=[0.5, 0.7, 0.3, 0.9, 1.0, 0.8], learned=True)  # a wrong column
    runs.to_csv(tmp_path / "runs.csv", index=False)
    probe = findings.binding_probe(tmp_path, data)
    assert probe["learned"].groupby("arch")["learned"].sum().to_dict() == {"llama": 2, "tnl": 0}
    assert probe["result"]["llama"] == (2, 3) and probe["result"]["linear"] == (0, 3)
    assert probe["result"]["verdict"] == findings.INCONCLUSIVE  # 2 of 3 against 0 of 3: p = 0.2
    assert probe["spread"].loc["llama", ("niah_easy", "mean")] == pytest.approx(0.5)
    assert probe["spread"].loc["tnl", ("val_loss", "std")] == pytest.approx(np.std([1.50, 1.52, 1.51], ddof=1))


def test_linscale_eval_roles_writes_the_role_table_of_the_checkpoints_asked_for(smoke_sweep, tmp_path, capsys):
    from linscale.cli import main

    out, _ = smoke_sweep
    export = sorted(out.glob("runs/llama-*/export/step=*"))[-1]
    dst = tmp_path / "roles.parquet"
    assert main(["eval", str(out), "--suites", "", "--roles", str(dst), "--checkpoint", str(export)]) == 0
    table = pd.read_parquet(dst)
    assert set(table["checkpoint"]) == {str(export)} and table["role"].tolist() == list(ROLES)
    assert "excess loss by token role of 1 checkpoints" in capsys.readouterr().out
    assert not (out / "eval" / "roles.parquet").exists()  # only where it was asked to go


# ------------------------------------------------------------- NIAH easy's needle against standard's

def test_first_requeries_take_each_variables_first_requery_and_say_how_its_value_was_stated(lang):
    from linscale.data.synthetic import DataError, first_requeries

    a, b, c = (word(lang, "var", i) for i in range(3))
    u, v, w = (word(lang, "object", i) for i in range(3))
    filler = f"a {word(lang, 'adj')} {word(lang, 'noun')} {word(lang, 'verb')} {word(lang, 'adj')} {word(lang, 'noun')} ."
    text = (f"what {a} {u} . let {b} {v} . {filler} what {a} {u} . what {b} {v} . what {a} {u} . "
            f"let {c} {w} . what {c}")  # c's query is cut off by the document's end
    doc = np.array(lang.encode(text))
    items = first_requeries(lang, doc[None])
    # a: stated by a fresh query (value at 2), asked again at 15..18 (answer at 17); its third query is
    # skipped. b: stated by let (value at 6), asked at 19..22 (answer at 21); c's answer is cut off
    assert items == [{"doc": 0, "position": 17, "answer": int(doc[17]), "binder": "what", "distance": 15},
                     {"doc": 0, "position": 21, "answer": int(doc[21]), "binder": "let", "distance": 15}]
    assert lang.words[doc[17]] == u and lang.words[doc[21]] == v
    broken = doc.copy()
    broken[17] = lang.offset["object"] + 5  # a query answering another value: not this language
    with pytest.raises(DataError, match=r"docs\[0\]: a query at 16"):
        first_requeries(lang, broken[None])
    with pytest.raises(DataError, match="2-D"):
        first_requeries(lang, doc)


def test_first_requeries_of_sampled_documents_are_all_determined_by_the_language(lang):
    """In the generator's own documents every item's answer has probability 1 (nll 0), and both kinds of
    statement occur."""
    from linscale.data.synthetic import first_requeries

    docs, nll = lang.sample(np.random.default_rng(3), 300, 40)
    items = first_requeries(lang, docs)
    assert {item["binder"] for item in items} == {"let", "what"}
    assert all(nll[item["doc"], item["position"]] == 0 for item in items)
    assert all(docs[item["doc"], item["position"]] == item["answer"] for item in items)


def _binder_counts(cells: dict) -> pd.DataFrame:
    """counts.csv rows from {(run_id, binder, bucket): (n, correct)}."""
    return pd.DataFrame([dict(run_id=run_id, arch=run_id.split("-")[0], size=run_id.split("-")[1], binder=binder,
                              bucket=bucket, n=n, correct=correct)
                         for (run_id, binder, bucket), (n, correct) in cells.items()])


def test_the_binder_gap_compares_the_two_statements_at_equal_distances():
    from linscale import findings

    # near: let 0.9 (100 items), what 0.8 (300); far: let 0.5 (300), what 0.5 (300). The raw accuracies
    # differ by 0.6 - 0.65 = -0.05 because "what" items sit mostly near; stratified, each stratum weighted
    # by its items (0.4 and 0.6): 0.4·0.1 + 0.6·0 = +0.04
    counts = _binder_counts({("m-s5", "let", "near"): (100, 90), ("m-s5", "what", "near"): (300, 240),
                             ("m-s5", "let", "far"): (300, 150), ("m-s5", "what", "far"): (300, 150),
                             ("m-s5", "let", "lonely"): (50, 50)})  # a stratum without "what": dropped
    (row,) = findings.binder_gap(counts).to_dict("records")
    assert row["gap"] == pytest.approx(0.04)
    assert row["acc_let"] == pytest.approx(240 / 400) and row["acc_what"] == pytest.approx(390 / 600)
    assert (row["n_let"], row["n_what"]) == (400, 600)
    variance = 0.16 * (0.9 * 0.1 / 100 + 0.8 * 0.2 / 300) + 0.36 * (0.25 / 300 + 0.25 / 300)
    assert row["se"] == pytest.approx(np.sqrt(variance))
    only_let = findings.binder_gap(_binder_counts({("m-s6", "let", "near"): (10, 5)}))
    assert np.isnan(only_let["gap"].iloc[0]) and only_let["n_what"].iloc[0] == 0


def test_the_binder_rule_reaches_each_verdict():
    from linscale import findings

    assert findings.binder_verdict(0.05, 0.01, 0.04) == findings.BINDER_EXPLAINS   # beyond 2 SE, over half
    assert findings.binder_verdict(0.015, 0.005, 0.04) == findings.BINDER_PARTLY   # beyond 2 SE, under half
    assert findings.binder_verdict(0.02, 0.01, 0.04) == findings.BINDER_DOES_NOT   # exactly 2 SE: not beyond
    assert findings.binder_verdict(-0.05, 0.01, 0.04) == findings.BINDER_DOES_NOT  # the other way round
    assert findings.binder_verdict(0.02, 0.005, 0.04) == findings.BINDER_EXPLAINS  # exactly half counts
    assert findings.binder_verdict(float("nan"), 0.01, 0.04) == findings.BINDER_NOT_MEASURED


def test_the_binder_probes_tables_are_judged_again_by_the_rule(tmp_path):
    from linscale import findings

    assert findings.binder_probe(tmp_path) is None
    cells = {}
    for run_id, (let, what) in {"cosformer2-s5": (90, 80), "cosformer2-s6": (90, 89), "llama-s6": (80, 80)}.items():
        cells.update({(run_id, "let", "near"): (1000, let * 10), (run_id, "what", "near"): (1000, what * 10)})
    _binder_counts(cells).to_csv(tmp_path / "counts.csv", index=False)
    pd.DataFrame({"run_id": ["cosformer2-s5", "cosformer2-s6", "llama-s6"], "difference": [-0.03, -0.04, 0.006],
                  "se": [0.008, 0.01, 0.01]}).to_csv(tmp_path / "niah.csv", index=False)
    probe = findings.binder_probe(tmp_path)
    table = probe["table"].set_index("run_id")
    assert table.loc["cosformer2-s5", "niah_gap"] == pytest.approx(0.03)  # standard − easy
    assert table.loc["cosformer2-s5", "gap"] == pytest.approx(0.10)
    # s5: +0.10 against a NIAH gap of 0.03: explains; s6: +0.01 with SE 0.0136: not beyond 2 SE
    assert probe["verdicts"] == {"s5": findings.BINDER_EXPLAINS, "s6": findings.BINDER_DOES_NOT}
    assert probe["overall"] == findings.BINDER_PARTLY
    assert findings.binder_probe(tmp_path, arch="llama")["overall"] == findings.BINDER_DOES_NOT
    strata = probe["strata"].set_index(["run_id", "bucket"])
    assert strata.loc[("cosformer2-s5", "near"), "let"] == pytest.approx(0.9)
    assert strata.loc[("cosformer2-s5", "near"), "what"] == pytest.approx(0.8)


def test_the_binder_probe_scores_each_item_by_the_models_own_next_token(smoke_sweep):
    """benchmarks/probe_binder.py's scorer against a direct reading of one document: the greedy token and
    the nll at each item's answer position, with the document after <eod> as the model was trained."""
    import torch

    from linscale.probes import benchmark_script
    from linscale.models.checkpoint import load_checkpoint
    from linscale.data.datamodule import SyntheticDataModule
    from linscale.data.synthetic import SPLITS
    from linscale.eval.items import training_seq_len

    out, _ = smoke_sweep
    export = sorted(out.glob("runs/*/export/step=*"), key=lambda p: int(p.name[5:]))[-1]
    scored = benchmark_script("probe_binder").score_requeries(export, n_docs=64, batch_size=16)
    assert {"let", "what"} <= set(scored["binder"]) and scored["nll"].gt(0).all()
    model, meta = load_checkpoint(export)
    seq_len = training_seq_len(meta)
    language = SyntheticDataModule(meta["data"], seq_len=seq_len, batch_size=16).language
    docs, _ = language.sample(np.random.default_rng([0, SPLITS["eval"], 0xB1D]), 64, seq_len)
    d = int(scored["doc"].iloc[-1])
    with torch.no_grad():
        logits = model(torch.as_tensor([[language.eod_id, *docs[d, :-1]]], dtype=torch.long)).logits[0].float()
    for item in scored[scored["doc"] == d].itertuples():
        assert item.correct == (int(logits[item.position].argmax()) == int(docs[d, item.position]))
        expected = float(torch.nn.functional.cross_entropy(logits[item.position], torch.tensor(int(docs[d, item.position]))))
        assert item.nll == pytest.approx(expected, abs=1e-5)


def test_the_long_range_replication_rule_and_its_reader(tmp_path):
    from linscale import findings

    assert findings.replication_verdict(-0.05, 0.02) == findings.REPLICATED
    assert findings.replication_verdict(-0.04, 0.02) == findings.NOT_REPLICATED   # exactly 2 SE: not beyond
    assert findings.replication_verdict(0.03, 0.01) == findings.NOT_REPLICATED
    assert findings.replication_verdict(float("nan"), 0.01) == findings.BINDER_NOT_MEASURED
    assert findings.binder_distance_probe(tmp_path) is None
    far = findings.LONG_STRATUM
    cells = {("cosformer2-s5", "let", far): (1000, 250), ("cosformer2-s5", "what", far): (500, 90),
             ("cosformer2-s6", "let", far): (1000, 250), ("cosformer2-s6", "what", far): (500, 120),
             ("cosformer2-s6", "what", "(0, 16]"): (500, 500),  # another stratum: not read
             ("llama-s6", "let", far): (1000, 100), ("llama-s6", "what", far): (500, 60)}
    _binder_counts(cells).to_csv(tmp_path / "counts.csv", index=False)
    probe = findings.binder_distance_probe(tmp_path)
    table = probe["table"].set_index("run_id")
    assert table.loc["cosformer2-s5", "difference"] == pytest.approx(0.18 - 0.25)
    assert table.loc["cosformer2-s5", "se"] == pytest.approx(np.sqrt(0.25 * 0.75 / 1000 + 0.18 * 0.82 / 500))
    assert table.loc["cosformer2-s6", "n_what"] == 500
    # s5: -0.07, SE 0.0211: replicated; s6: -0.01: not
    assert probe["verdicts"] == {"s5": findings.REPLICATED, "s6": findings.NOT_REPLICATED}
    assert probe["overall"] == "partly"
    assert findings.binder_distance_probe(tmp_path, arch="llama")["overall"] == findings.NOT_REPLICATED


def test_role_finals_take_each_sweeps_own_last_checkpoint():
    """A seed ablation's run has the main sweep's run id (llama-s2) and trains longer here: the main run's
    last checkpoint is still its own, not missing because the other sweep's run went further."""
    from linscale import findings

    table = pd.DataFrame([{"sweep": sweep, "ablation": ablation, "run_id": "llama-s2", "arch": "llama", "step": step,
                           "role": "query_variable", "excess": step / 100}
                          for sweep, ablation, steps in (("cpu", "main", (5, 10)), ("cpu-seed1", "seeds", (5, 10, 20)))
                          for step in steps])
    finals = findings.role_finals(table).set_index("sweep")
    assert finals["step"].to_dict() == {"cpu": 10, "cpu-seed1": 20}
    assert finals["main"].to_dict() == {"cpu": True, "cpu-seed1": False}


def test_a_later_seed_on_a_groups_edge_is_inside_it_and_each_seed_is_placed_once(tmp_path):
    """A group's range includes its ends; a seed committed in two studies is placed once, by its first
    (the published study's) run."""
    from linscale import findings

    probe = {"lower": pd.Series({0: 1.470, 1: 1.475}), "upper": pd.Series({6: 1.498, 7: 1.500})}
    for folder, runs in ((tmp_path / "cpu", [(0, 1.470), (20, 1.475), (21, 1.500), (22, 1.460), (23, 1.510)]),
                         (tmp_path / "reruns" / "late" / "cpu", [(20, 1.490)])):
        folder.mkdir(parents=True)
        pd.DataFrame([{"run_id": "llama-s6", "arch": "llama", "size": "s6", "seed": seed, "step": 100, "val_loss": loss}
                      for seed, loss in runs]).to_parquet(folder / "runs.parquet")
    later = findings.later_seeds(probe, tmp_path).set_index("seed")
    assert later["place"].to_dict() == {20: "lower", 21: "upper", 22: "below", 23: "above"}
    assert later.loc[20, "study"] == "published" and later["excess"].isna().all()  # no roles table: no excess


def test_the_binding_verdict_has_no_p_value_without_runs_on_both_sides():
    from linscale import findings

    learned = findings.binding_learned(_binding_rows({"llama": [0.2, 0.9]}), {"n_vars": 16})
    result = findings.binding_verdict(learned)
    assert result["verdict"] == findings.INCONCLUSIVE and result["linear"] == (0, 0)
    assert np.isnan(result["p_llama_higher"]) and np.isnan(result["p_linear_higher"])


def test_a_probe_without_the_architecture_asked_for_has_measured_nothing(tmp_path):
    """An architecture the probe's tables lack has no verdict at any size: "not measured", not "partly"."""
    from linscale import findings

    far = findings.LONG_STRATUM
    _binder_counts({("cosformer2-s5", "let", far): (100, 50), ("cosformer2-s5", "what", far): (100, 40)}) \
        .to_csv(tmp_path / "counts.csv", index=False)
    pd.DataFrame({"run_id": ["cosformer2-s5"], "difference": [-0.03], "se": [0.01]}).to_csv(tmp_path / "niah.csv",
                                                                                            index=False)
    for probe in (findings.binder_probe(tmp_path, arch="hgrn2"),
                  findings.binder_distance_probe(tmp_path, arch="hgrn2")):
        assert probe["verdicts"] == {} and probe["overall"] == findings.BINDER_NOT_MEASURED


def test_the_replication_reads_the_long_stratum_alone():
    """The nearest stratum has both statements (unlike the reader's test, where it lacks "let" and would be
    dropped anyway): it must not enter the long stratum's difference."""
    from linscale import findings

    far, near = findings.LONG_STRATUM, "(0, 16]"
    counts = _binder_counts({("cosformer2-s5", "let", far): (100, 50), ("cosformer2-s5", "what", far): (100, 30),
                             ("cosformer2-s5", "let", near): (1000, 900),
                             ("cosformer2-s5", "what", near): (1000, 1000)})
    (row,) = findings.stratum_difference(counts).to_dict("records")
    assert row["difference"] == pytest.approx(0.3 - 0.5) and (row["n_let"], row["n_what"]) == (100, 100)
    assert row["se"] == pytest.approx(np.sqrt(0.5 * 0.5 / 100 + 0.3 * 0.7 / 100))
    assert findings.stratum_difference(counts, "(16, 32]").empty


def test_a_study_without_a_role_table_gives_an_empty_table_the_downstream_chapter_can_select_on():
    """Re-runs committed before roles.parquet existed (2026-12-03-seed6) have no role table: role_finals gave a
    frame with the column ``main`` only, and the downstream chapter's ``role_ends["arch"]`` raised KeyError."""
    from linscale import findings

    finals = findings.role_finals(None)
    assert {"arch", "size", "params", "role", "excess", "main", "sweep"} <= set(finals.columns) and finals.empty
    assert finals[finals["arch"].isin(["llama", "tnl"])].empty
