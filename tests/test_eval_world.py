"""The suites on the real synthetic language: items come from the checkpoint's own world
(linscale.data.synthetic), a model trained on that world beats chance, random weights do not."""
import json

import pytest
import torch

from linscale.models.checkpoint import save_checkpoint
from linscale.config import ModelConfig
from linscale.data import build_datamodule
from linscale.eval import items as items_module
from linscale.eval.items import (MIN_CONTEXT, NIAH_RESERVE, TaskDataError, cache_file, item_params, load_items,
                                 training_seq_len, write_items)
from linscale.eval.runner import evaluate_checkpoint
from linscale.models import build_model

SEQ_LEN = 64
# The language's own bands (head 50 %, torso 40 %, tail 10 % of the Zipf mass): every fact of a small world,
# and the frequent facts that even a smoke-sized model learns, where difficulty.yaml's bands are cut for
# the CPU grid.
WHOLE_WORLD = {"knowledge_bands": "0:0.5:0.9:1"}
# a small world (32 facts, flat Zipf, many fact sentences) that a tiny model learns in seconds
SMALL = {"source": "synthetic", "n_first": 4, "n_last": 4, "n_relations": 2, "n_objects": 16,
         "objects_per_relation": 8, "n_values": 16, "n_vars": 8, "fact_zipf": 0.5, "world_seed": 3,
         "type_probs": [0.5, 0.2, 0.1, 0.1, 0.1]}


def tiny(vocab_size, seed=0, arch="llama"):
    torch.manual_seed(seed)
    return build_model(ModelConfig(arch=arch, n_layer=2, d_model=64, n_head=2, vocab_size=vocab_size,
                                   d_ffn=128, chunk_size=16))


def export(path, model, data, tokenizer, step=0):
    meta = {"run_id": path.name, "arch": model.config.arch, "size": "tiny", "step": step, "tokens": 0,
            "flops": 0.0, "data": data, "seq_len": SEQ_LEN}
    return save_checkpoint(model, path, meta, tokenizer=tokenizer)


def micro_acc(results):
    """Item-weighted knowledge accuracy over the three bands."""
    bands = [v for k, v in results["results"].items() if k.startswith("linscale_knowledge_")]
    return sum(b["acc,none"] * b["sample_len"] for b in bands) / sum(b["sample_len"] for b in bands), \
        sum(b["sample_len"] for b in bands)


def test_trained_on_the_world_beats_chance(tmp_path):
    dm = build_datamodule(SMALL, seq_len=SEQ_LEN, batch_size=16, seed=0)
    model = tiny(dm.vocab_size)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    for j in range(250):
        batch = dm.train_batch(j)
        loss = model(batch["input_ids"], labels=batch["labels"]).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    ckpt = export(tmp_path / "trained", model.eval(), SMALL, dm.tokenizer, step=250)
    acc, n = micro_acc(evaluate_checkpoint(ckpt, ["linscale_knowledge"], task_cache=tmp_path / "cache",
                                           task_options=WHOLE_WORLD))
    assert n == 32  # every fact of the world, once
    assert acc > 0.25 + 4 * (0.25 * 0.75 / n) ** 0.5, (acc, loss.item())


def test_smoke_preset_models_beat_chance_on_knowledge(smoke_sweep, tmp_path):
    """The issue's check on the real pipeline: the s2 models of `linscale sweep --preset smoke` (600 steps on
    the default world), pooled over the four architectures, answer the knowledge suite above chance by more
    than 4 standard errors, and each of them has learnt the frequent ("head") facts."""
    out, _ = smoke_sweep
    right = total = 0
    for arch in ("llama", "tnl", "hgrn2", "cosformer2"):
        (ckpt,) = sorted((out / "runs" / f"{arch}-s2" / "export").glob("step=*"))
        results = evaluate_checkpoint(ckpt, ["linscale_knowledge"], task_cache=tmp_path / "cache",
                                      task_options=WHOLE_WORLD)
        acc, n = micro_acc(results)
        right, total = right + acc * n, total + n
        head = results["results"]["linscale_knowledge_head"]
        head_n = head["sample_len"]
        assert head["acc,none"] > 0.25 + 4 * (0.25 * 0.75 / head_n) ** 0.5, (arch, head["acc,none"])
    assert total >= 1000
    assert right / total > 0.25 + 4 * (0.25 * 0.75 / total) ** 0.5, right / total


def test_random_weights_score_at_chance(tmp_path):
    data = {"source": "synthetic", "world_seed": 1}  # the default world: a few hundred questions
    dm = build_datamodule(data, seq_len=SEQ_LEN, batch_size=4)
    ckpt = export(tmp_path / "random", tiny(dm.vocab_size, seed=5, arch="hgrn2"), data, dm.tokenizer)
    acc, n = micro_acc(evaluate_checkpoint(ckpt, ["linscale_knowledge"], task_cache=tmp_path / "cache"))
    assert n > 150
    assert abs(acc - 0.25) < 3 * (0.25 * 0.75 / n) ** 0.5, acc


def test_items_follow_the_checkpoints_world(tmp_path):
    dm = build_datamodule(SMALL, seq_len=SEQ_LEN, batch_size=4)
    other = {**SMALL, "world_seed": 4}
    a = export(tmp_path / "a", tiny(dm.vocab_size), SMALL, dm.tokenizer)
    b = export(tmp_path / "b", tiny(dm.vocab_size), other, dm.tokenizer)
    opts = lambda c: {"checkpoint": str(c), "task_cache": str(tmp_path / "cache")}
    first = load_items("knowledge", **opts(a))
    file = cache_file("knowledge", item_params("knowledge", opts(a)), tmp_path / "cache")
    assert file.is_file() and load_items("knowledge", **opts(a)) == first  # cached, deterministic
    file.unlink()
    assert load_items("knowledge", **opts(a)) == first  # regenerated identically
    assert load_items("knowledge", **opts(b)) != first  # another world, other facts
    # every NIAH prompt plus its answer budget fits the model's context
    tok = dm.tokenizer
    niah = load_items("niah", **opts(a))
    assert {i["mode"] for i in niah} == {"easy", "standard"}
    assert max(len(tok.encode(f"{i['context']} {i['question']}").ids) for i in niah) + NIAH_RESERVE <= SEQ_LEN
    assert all(i["answer"] in i["context"].split() for i in niah)
    docs = load_items("documents", **opts(a))
    assert all(len(tok.encode(d["text"]).ids) == SEQ_LEN for d in docs)
    json.dumps(load_items("mqar", **opts(a)) + load_items("cloze", **opts(a)))  # plain JSON


def test_context_factor_scales_the_window(tmp_path):
    """`linscale eval --context-factor 2`: the model's window and the task data follow (max_length 128)."""
    from linscale.eval.runner import evaluate_sweep

    dm = build_datamodule(SMALL, seq_len=SEQ_LEN, batch_size=4)
    export(tmp_path / "sweep" / "runs" / "r" / "export" / "step=0", tiny(dm.vocab_size, arch="tnl"), SMALL,
           dm.tokenizer)
    table = evaluate_sweep(tmp_path / "sweep", ["linguistic"], context_factor=2.0, progress=lambda m: None,
                           task_options={"n_documents": 2, "n_cloze": 4})
    assert set(table.max_length) == {2 * SEQ_LEN}
    docs = load_items("documents", checkpoint=str(tmp_path / "sweep" / "runs" / "r" / "export" / "step=0"),
                      task_cache=str(tmp_path / "sweep" / "eval" / "tasks"), max_length=2 * SEQ_LEN,
                      n_documents=2)
    assert [len(dm.tokenizer.encode(d["text"]).ids) for d in docs] == [2 * SEQ_LEN] * 2


def meta_only_checkpoint(path, meta):
    """An export folder with only its config.json: all the item functions read of a checkpoint."""
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"model": {}, "meta": meta}))
    return path


def test_items_need_a_checkpoint_named_in_the_task_options():
    """lm_eval with the linscale tasks but without checkpoint=... in --model_args: the suites cannot know
    which world the model learned; one line that says what to pass, not a TypeError from Path(None)."""
    with pytest.raises(TaskDataError, match=r"checkpoint: .*need checkpoint=<export folder> in --model_args") as err:
        item_params("knowledge", {})
    assert "\n" not in str(err.value)


def test_items_need_a_synthetic_checkpoint_and_a_context_of_at_least_min_context(tmp_path):
    """The suites' items come from the synthetic world a checkpoint learned: a text checkpoint (or one
    without a data block) is refused in one line that points to real tasks, and so is a context shorter
    than MIN_CONTEXT (given, or read from the meta); MIN_CONTEXT itself is enough. These were caught only by
    the 80-second CLI tests."""
    text = meta_only_checkpoint(tmp_path / "text", {"data": {"source": "text"}, "seq_len": SEQ_LEN})
    # `linscale eval SWEEP --tasks piqa,hellaswag`, as it advised, still ran the suites and stopped here again
    with pytest.raises(TaskDataError, match=r"meta.data.source is 'text'; .*--tasks TASK --include_path DIR, .*"
                                            r"e.g. --tasks piqa,hellaswag; `linscale eval` runs them with --suites "
                                            r"\"\", lm-eval's with --real-tasks\)$"):
        item_params("knowledge", {"checkpoint": str(text)})
    bare = meta_only_checkpoint(tmp_path / "bare", {"seq_len": SEQ_LEN})
    with pytest.raises(TaskDataError, match=r"meta.data.source is None; "):
        item_params("knowledge", {"checkpoint": str(bare)})
    synthetic = {"source": "synthetic"}
    short = str(meta_only_checkpoint(tmp_path / "short", {"data": synthetic, "seq_len": MIN_CONTEXT - 1}))
    long = str(meta_only_checkpoint(tmp_path / "long", {"data": synthetic, "seq_len": SEQ_LEN}))
    for options in ({"checkpoint": short}, {"checkpoint": short, "max_length": ""},  # read from the meta
                    {"checkpoint": long, "max_length": str(MIN_CONTEXT - 1)}):  # given
        with pytest.raises(TaskDataError, match=rf"^max_length: .* of at least {MIN_CONTEXT} tokens \(got "
                                                 rf"{MIN_CONTEXT - 1}\)"):
            item_params("niah", options)
    assert item_params("niah", {"checkpoint": short, "max_length": str(MIN_CONTEXT)})["max_length"] == MIN_CONTEXT
    assert item_params("niah", {"checkpoint": long})["max_length"] == SEQ_LEN


def test_the_training_context_is_read_from_the_meta_or_its_train_block():
    """Exports record seq_len at the top of their meta or in its train block; one read only at the top
    would find no context for the second kind and refuse its items (max_length 0 < MIN_CONTEXT)."""
    assert training_seq_len({"train": {"seq_len": 64}}) == 64
    assert training_seq_len({"seq_len": 32, "train": {"seq_len": 64}}) == 32
    assert training_seq_len({"train": None}) is None


def test_the_item_cache_is_keyed_by_the_language_version(tmp_path, monkeypatch):
    """A change in the synthetic language's generators (LANGUAGE_VERSION) makes other items from the same data
    dict: a cache file kept across it would serve items of the old language to models of the new."""
    import linscale.data.synthetic as synthetic

    params = {"data": {"source": "synthetic"}, "eval_seed": 0, "n_per_band": 4}
    before = cache_file("knowledge", params, tmp_path)
    assert cache_file("knowledge", params, tmp_path) == before and before.parent == tmp_path
    monkeypatch.setattr(synthetic, "LANGUAGE_VERSION", synthetic.LANGUAGE_VERSION + 1)
    assert cache_file("knowledge", params, tmp_path) != before


def test_cached_items_are_read_not_generated_again(tmp_path, monkeypatch):
    """The cache is what makes every checkpoint of a sweep score the same items without regenerating them
    (seconds per kind, each evaluation): items in the cache file are returned as they are."""
    ckpt = meta_only_checkpoint(tmp_path / "ckpt", {"data": {"source": "synthetic"}, "seq_len": SEQ_LEN})
    options = {"checkpoint": str(ckpt), "task_cache": str(tmp_path / "cache")}
    sentinel = [{"question": "cached", "choices": ["a", "b"], "label": 0, "band": "head"}]
    write_items(cache_file("knowledge", item_params("knowledge", options), tmp_path / "cache"), sentinel)

    def generate(kind, params):
        raise AssertionError(f"{kind} items generated again despite the cache")

    monkeypatch.setattr(items_module, "generate", generate)
    assert load_items("knowledge", **options) == sentinel


def test_a_generator_without_items_is_an_error_and_caches_nothing(tmp_path, monkeypatch):
    """Knobs that leave a generator nothing to make (an empty band): an empty cache file would be read
    back as "no items" by every later evaluation, which would score a task over zero items."""
    ckpt = meta_only_checkpoint(tmp_path / "ckpt", {"data": {"source": "synthetic"}, "seq_len": SEQ_LEN})
    options = {"checkpoint": str(ckpt), "task_cache": str(tmp_path / "cache")}
    monkeypatch.setitem(items_module._GENERATORS, "knowledge", lambda synthetic, lang, params: [])
    with pytest.raises(TaskDataError, match="knowledge: the generator returned no items for"):
        load_items("knowledge", **options)
    assert not cache_file("knowledge", item_params("knowledge", options), tmp_path / "cache").exists()


def test_an_unknown_item_kind_is_one_line_naming_the_kinds(tmp_path):
    """A misspelt kind (a task file's custom_dataset) is a TaskDataError listing the kinds, not a KeyError
    from the knob table after the checkpoint was read."""
    ckpt = meta_only_checkpoint(tmp_path / "ckpt", {"data": {"source": "synthetic"}, "seq_len": SEQ_LEN})
    with pytest.raises(TaskDataError, match="kind: unknown item kind 'nope'; expected one of knowledge, cloze"):
        load_items("nope", checkpoint=str(ckpt), task_cache=str(tmp_path / "cache"))


def test_held_out_documents_are_as_long_as_the_training_documents(tmp_path):
    """The perplexity suite's documents are the training language's documents: doc_len tokens where the data
    cuts documents at doc_len, at most the training seq_len (where training cut them: a doc_len of 500 was
    scored on documents of 500 tokens that the model never saw), else one document per context (max_length
    tokens), which --context-factor scales."""
    def checkpoint(name, **data):
        return meta_only_checkpoint(tmp_path / name, {"data": {"source": "synthetic", **data}, "seq_len": SEQ_LEN})

    cut, long, whole = checkpoint("cut", doc_len=10), checkpoint("long", doc_len=5 * SEQ_LEN), checkpoint("whole")
    for ckpt, length, options in ((cut, 10, {}), (long, SEQ_LEN, {}), (long, SEQ_LEN, {"max_length": 2 * SEQ_LEN}),
                                  (whole, SEQ_LEN, {}), (whole, 2 * SEQ_LEN, {"max_length": 2 * SEQ_LEN})):
        docs = load_items("documents", checkpoint=str(ckpt), task_cache=str(tmp_path / "cache"), n_documents=3,
                          **options)
        assert [len(doc["text"].split()) for doc in docs] == [length] * 3  # the language's words are its tokens


def test_a_checkpoint_without_a_readable_config_is_one_line_naming_the_file(tmp_path):
    """The items read a checkpoint's meta from its config.json: a folder without one, or with one that is not
    a linscale config, is a CheckpointError naming the file (not a FileNotFoundError's traceback)."""
    from linscale.models.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match=rf"^{tmp_path / 'none' / 'config.json'}: checkpoint file is missing$"):
        item_params("knowledge", {"checkpoint": str(tmp_path / "none")})
    (tmp_path / "list").mkdir()
    (tmp_path / "list" / "config.json").write_text("[1, 2]")
    with pytest.raises(CheckpointError, match=rf"^{tmp_path / 'list' / 'config.json'}: not a linscale checkpoint "):
        item_params("knowledge", {"checkpoint": str(tmp_path / "list")})
