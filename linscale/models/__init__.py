"""The four architectures, one file each, sharing the skeleton in ``common.py``.

    >>> from linscale.config import ModelConfig
    >>> model = build_model(ModelConfig(arch="tnl", n_layer=2, d_model=64, n_head=4, vocab_size=256))
    >>> model.num_params(non_embedding=True) > 0
    True

To add an architecture: write ``<name>.py`` with its token mixer and a ``build(config)``, register it
in ``BUILDERS`` below and in ``linscale.config.ARCHITECTURES`` (and ``LINEAR_ARCHITECTURES`` if its
mixer is linear: the architectures chapter then checks its three forms agree), give it a formula in
``linscale.flops`` (planning its runs refuses it until then), a label in ``linscale.config.ARCH_LABELS``
and a colour and marker in ``linscale.plotting``; a module of it whose parameters
must stay fp32 under mixed precision (angles of positions, decays' bounds) goes in ``FP32_MODULES`` below.
``tests/test_flops.py`` checks all of these for every architecture; the README lists what stays the paper's four.

``checkpoint.py``: the models' input and output, exported checkpoints (config and safetensors weights).
"""
from __future__ import annotations

from linscale.config import ARCHITECTURES, ConfigError, ModelConfig
from linscale.models import cosformer2, hgrn2, llama, tnl
from linscale.models.common import CausalLM, DecodeState, LMOutput

BUILDERS = {"llama": llama.build, "tnl": tnl.build, "hgrn2": hgrn2.build, "cosformer2": cosformer2.build}
assert set(BUILDERS) == set(ARCHITECTURES)

# Modules whose parameters must stay fp32 under mixed precision, as FSDP would otherwise gather them in bf16
# (linscale.train.run.fsdp_mixed_precision): cosFormer2's attention, whose learned LRPE angles θ enter as
# s·θ (in bf16, off by up to 11 radians at position 8191), and HGRN2's lower-bound table Γ, whose bounds
# set how long each layer remembers. A new architecture with such parameters adds its module here.
FP32_MODULES = (cosformer2.CosFormer2Attention, hgrn2.LowerBoundTable)

__all__ = ["build_model", "BUILDERS", "FP32_MODULES", "CausalLM", "DecodeState", "LMOutput"]


def build_model(config: ModelConfig | dict) -> CausalLM:
    """Instantiate the model a config describes (on the current default device; use
    ``with torch.device("meta"):`` to count parameters of paper-scale models without memory)."""
    if isinstance(config, dict):
        config = ModelConfig.from_dict(config)
    if config.arch not in BUILDERS:
        raise ConfigError(f"arch: unknown architecture {config.arch!r}; expected one of {', '.join(BUILDERS)}")
    return BUILDERS[config.arch](config)
