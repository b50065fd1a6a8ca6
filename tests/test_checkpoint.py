"""Exported checkpoints round-trip exactly and fail clearly when damaged."""
import pytest
import torch

from linscale.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
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
