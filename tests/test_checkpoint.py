"""Exported checkpoints round-trip exactly and fail clearly when damaged."""
import pytest
import torch

from linscale.models.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from linscale.config import ModelConfig
from linscale.models import build_model


@pytest.mark.parametrize("arch", ["llama", "hgrn2"])
def test_round_trip(tmp_path, arch):
    model = build_model(ModelConfig(arch=arch, n_layer=2, d_model=32, n_head=2, vocab_size=50))
    save_checkpoint(model, tmp_path / "ckpt", meta={"tokens": 123})
    loaded, meta = load_checkpoint(tmp_path / "ckpt")
    x = torch.randint(0, 50, (2, 9))
    assert meta == {"tokens": 123}
    assert torch.equal(model(x).logits, loaded(x).logits)


def test_damaged_checkpoints_raise_naming_the_file(tmp_path):
    model = build_model(ModelConfig(arch="tnl", n_layer=1, d_model=16, n_head=2, vocab_size=20))
    path = save_checkpoint(model, tmp_path / "ckpt")
    weights = path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # truncated
    with pytest.raises(CheckpointError, match="model.safetensors: corrupt or truncated"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="config.json: checkpoint file is missing"):
        load_checkpoint(tmp_path / "nowhere")


def test_a_config_edited_away_from_its_weights_is_one_line(tmp_path):
    """A config.json whose widths are not its weights' (edited by hand, or copied from another export) was
    torch's error, a line for every tensor of another shape, under a traceback."""
    import json

    path = save_checkpoint(build_model(ModelConfig(arch="tnl", n_layer=1, d_model=16, n_head=2, vocab_size=20)),
                           tmp_path / "ckpt")
    spec = json.loads((path / "config.json").read_text())
    spec["model"]["d_model"] = 32
    (path / "config.json").write_text(json.dumps(spec))
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    line = str(err.value)
    assert len(line.splitlines()) == 1, line
    assert line.startswith(f"{path / 'model.safetensors'}: weights do not match config.json (") and \
        "of another shape, first: size mismatch for " in line, line


def test_a_config_of_more_or_fewer_layers_than_its_weights_is_refused(tmp_path):
    """load_state_dict runs with strict=False (to word the errors): a layer the weights lack would keep its
    random initial values in silence, and one they hold beyond the config would be dropped."""
    import json
    import re

    path = save_checkpoint(build_model(ModelConfig(arch="tnl", n_layer=2, d_model=16, n_head=2, vocab_size=20)),
                           tmp_path / "ckpt")
    spec = json.loads((path / "config.json").read_text())
    for n_layer, which in ((3, "missing ['blocks.2."), (1, "missing [], unexpected ['blocks.1.")):
        spec["model"]["n_layer"] = n_layer
        (path / "config.json").write_text(json.dumps(spec))
        with pytest.raises(CheckpointError, match="model.safetensors: weights do not match the config "
                                                  rf"\({re.escape(which)}"):
            load_checkpoint(path)


def test_an_export_is_readable_by_whom_a_file_made_by_hand_would_be(tmp_path):
    """The export folder came from mkdtemp (0700) and safetensors wrote its weights 0600: on a shared
    cluster the rest of a group could not evaluate a run. Now the folder and its files get the modes the
    umask gives new folders and files."""
    import os
    import stat

    from linscale.atomic import default_file_mode

    save_checkpoint(build_model(ModelConfig(arch="tnl", n_layer=1, d_model=16, n_head=2, vocab_size=32)),
                    tmp_path / "export")
    file_mode = default_file_mode()
    assert stat.S_IMODE(os.stat(tmp_path / "export").st_mode) == file_mode | (file_mode & 0o444) >> 2
    for name in ("model.safetensors", "config.json"):
        assert stat.S_IMODE(os.stat(tmp_path / "export" / name).st_mode) == file_mode, name
    old = os.umask(0o077)  # a private umask keeps an export private
    try:
        default_file_mode.cache_clear()
        save_checkpoint(build_model(ModelConfig(arch="tnl", n_layer=1, d_model=16, n_head=2, vocab_size=32)),
                        tmp_path / "private")
        assert stat.S_IMODE(os.stat(tmp_path / "private").st_mode) == 0o700
        assert stat.S_IMODE(os.stat(tmp_path / "private" / "model.safetensors").st_mode) == 0o600
    finally:
        os.umask(old)
        default_file_mode.cache_clear()


def test_an_export_replaces_an_earlier_one_in_a_folder_made_for_it(tmp_path):
    """Exporting into a folder that does not exist yet makes it (and its parents); exporting again into
    one that holds an export replaces it whole; an export without meta loads with an empty one."""
    config = ModelConfig(arch="tnl", n_layer=1, d_model=16, n_head=2, vocab_size=20)
    torch.manual_seed(0)
    first, second = build_model(config), build_model(config)
    path = tmp_path / "runs" / "a" / "export" / "step=2"
    save_checkpoint(first, path, meta={"step": 1})
    save_checkpoint(second, path)
    loaded, meta = load_checkpoint(path)
    assert meta == {}
    x = torch.randint(0, 20, (1, 5))
    assert torch.equal(loaded(x).logits, second(x).logits) and not torch.equal(loaded(x).logits, first(x).logits)
    assert not loaded.training
    assert sorted(p.name for p in path.parent.iterdir()) == ["step=2"]


def test_an_export_that_fails_leaves_no_folder_behind_and_the_earlier_export_whole(tmp_path):
    class BrokenTokenizer:
        def save(self, path):
            raise OSError(28, "No space left on device")

    model = build_model(ModelConfig(arch="tnl", n_layer=1, d_model=16, n_head=2, vocab_size=20))
    path = save_checkpoint(model, tmp_path / "export", meta={"step": 1})
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint(model, path, meta={"step": 2}, tokenizer=BrokenTokenizer())
    assert [p.name for p in tmp_path.iterdir()] == ["export"]
    assert load_checkpoint(path)[1] == {"step": 1}


def test_a_missing_weights_file_or_a_config_of_another_shape_names_the_file(tmp_path):
    import json
    import re

    path = save_checkpoint(build_model(ModelConfig(arch="tnl", n_layer=1, d_model=16, n_head=2, vocab_size=20)),
                           tmp_path / "ckpt")
    config = path / "config.json"
    spec = json.loads(config.read_text())
    for text, match in ((json.dumps({"meta": {}}), "not a linscale checkpoint config"),
                        (json.dumps([spec]), "not a linscale checkpoint config"),
                        (json.dumps({**spec, "model": {**spec["model"], "n_layer": 0}}),
                         "n_layer: expected a positive integer, got 0")):
        config.write_text(text)
        with pytest.raises(CheckpointError, match=f"^{re.escape(str(config))}: {match}"):
            load_checkpoint(path)
    config.write_text(json.dumps({"model": spec["model"]}))  # written by hand, without meta
    assert load_checkpoint(path)[1] == {}
    (path / "model.safetensors").unlink()
    weights = re.escape(str(path / "model.safetensors"))
    with pytest.raises(CheckpointError, match=f"^{weights}: checkpoint file is missing$"):
        load_checkpoint(path)


def test_a_checkpoint_without_a_tokenizer_or_with_a_broken_one_says_which(tmp_path):
    import re

    from linscale.models.checkpoint import load_tokenizer

    path = save_checkpoint(build_model(ModelConfig(arch="tnl", n_layer=1, d_model=16, n_head=2, vocab_size=20)),
                           tmp_path / "ckpt")
    file = re.escape(str(path / "tokenizer.json"))
    with pytest.raises(CheckpointError, match=f"^{file}: checkpoint has no tokenizer$"):
        load_tokenizer(path)
    (path / "tokenizer.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=f"^{file}: not a valid tokenizer file \\("):
        load_tokenizer(path)
