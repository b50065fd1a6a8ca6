"""Parameter and compute accounting exactly as the paper does it (Table 1, Appendix A.1).

Notation: l layers, d width, h heads, g GLU width, n sequence length, b sequences per step, t = d/h the
low-rank gate width, e = d/h the TPE width. FLOPs count 2 per multiply-accumulate and ×3 for forward
plus backward; embeddings, norms, activations, positional encodings and the softmax are not counted.

| arch       | N (non-embedding)          | C per step (non-embedding)                 |
|------------|----------------------------|--------------------------------------------|
| LLaMA      | 12ld²                      | 72·b·n·l·d²·(1 + n/(6d) + 5/(18d))         |
| TNL        | 12ld² + 2ld²/h             | 72·b·n·l·d²·(1 + 1/(2h) + 5/(18d))         |
| HGRN2      | 12ld² + ld                 | 72·b·n·l·d²·(1 + 1/(3h) + 29/(72d))        |
| cosFormer2 | 12ld² + 2ld²/h + d²/h      | 72·b·n·l·d²·(1 + 3/(4h) + 23/(72d))        |

12ld² stands for the attention's 4ld² plus the GLU's 3ldg at g = 8/3·d. For N we use the actual g
(4ld² + 3ldg), which is what Table 7's counts do. For C the paper's numbers follow the formula with
g = 8/3·d even where the listed g differs (70M: g = 1536 = 3d, yet 1.6 PFLOPs/step matches 8/3·d), so
``ffn="table1"`` (the default) reproduces the paper, and ``ffn="actual"`` swaps the GLU share of the
"1" term for the configured g. Only for softmax does C per token depend on the context length n. A config
with another output-gate width (``gate_rank``) or without TPE (``tpe: false``) has those terms' shares
changed accordingly (``_correction``); every preset keeps t = e = d/h and TPE, so Table 1's numbers.
"""
from __future__ import annotations

from linscale.config import ModelConfig

PF_DAY = 1e15 * 86400  # FLOPs in one PFLOP/s-day, the unit of the paper's compute axes
FFN_ACCOUNTING = ("table1", "actual")
COUNTED = ("llama", "tnl", "hgrn2", "cosformer2")  # the architectures whose Table 1 terms are written below


def require_formula(config: ModelConfig) -> None:
    """A new architecture (README, "Where to change what") without its terms here would be counted as a
    LLaMA's parameters, or fail with a bare KeyError in the middle of training."""
    if config.arch not in COUNTED:
        raise ValueError(f"linscale.flops: no FLOPs formula for architecture {config.arch!r}; add its Table 1 "
                         "terms to non_embedding_params and _correction, and its name to COUNTED")


def non_embedding_params(config: ModelConfig) -> int:
    """N with Table 1's terms and the configured GLU width (norm gains and LRPE angles not counted)."""
    require_formula(config)
    l, d, g = config.n_layer, config.d_model, config.d_ffn
    n = 4 * l * d * d + 3 * l * d * g
    if config.arch in ("tnl", "cosformer2"):
        n += 2 * l * d * config.gate_rank  # low-rank output gate W_gd, W_gu
    if config.arch == "hgrn2":
        n += l * d  # the lower-bound table Γ
    if config.arch == "cosformer2" and config.tpe:
        n += d * config.head_dim  # TPE projection, d·e
    return n


def _correction(config: ModelConfig, seq_len: int) -> float:
    require_formula(config)
    d, h = config.d_model, config.n_head
    corrections = {
        "llama": seq_len / (6 * d) + 5 / (18 * d),
        "tnl": 1 / (2 * h) + 5 / (18 * d),
        "hgrn2": 1 / (3 * h) + 29 / (72 * d),
        "cosformer2": 3 / (4 * h) + 23 / (72 * d),
    }
    correction = corrections[config.arch]
    # Table 1 takes the output gate's width t and the TPE's width e as d/h, and the TPE as present; a config
    # with another gate_rank, or without TPE, has its own share of their Appendix A.1 forward counts, 4ntd
    # and 4nde per layer (t/(6d) and e/(6d) of 72ld² each). Added only where they differ from Table 1's, so
    # that its own configs keep its numbers to the last digit.
    if config.arch in ("tnl", "cosformer2") and config.gate_rank != config.head_dim:
        correction += (config.gate_rank - config.head_dim) / (6 * d)
    if config.arch == "cosformer2" and not config.tpe:
        correction -= config.head_dim / (6 * d)
    return correction


def flops_per_token(config: ModelConfig, seq_len: int, ffn: str = "table1") -> float:
    """Training FLOPs (forward + backward) per token at context length ``seq_len`` (Table 1)."""
    if ffn not in FFN_ACCOUNTING:
        raise ValueError(f"ffn: {ffn!r} is not one of {', '.join(FFN_ACCOUNTING)}")
    if not isinstance(seq_len, int) or seq_len <= 0:
        raise ValueError(f"seq_len: expected a positive integer, got {seq_len!r}")
    l, d = config.n_layer, config.d_model
    base = 72 * l * d * d
    if ffn == "actual":  # 72ld² = 6·(4ld² + 8ld²); replace the GLU's 8ld² by its actual 3ldg
        base = 6 * (4 * l * d * d + 3 * l * d * config.d_ffn)
    return base + 72 * l * d * d * _correction(config, seq_len)


def flops_per_step(config: ModelConfig, seq_len: int, batch_size: int, ffn: str = "table1") -> float:
    """Training FLOPs of one optimiser step of ``batch_size`` sequences of ``seq_len`` tokens."""
    return flops_per_token(config, seq_len, ffn) * seq_len * batch_size


def training_flops(config: ModelConfig, tokens: float, seq_len: int, ffn: str = "table1") -> float:
    """Cumulative training compute C after ``tokens`` tokens, in FLOPs."""
    return flops_per_token(config, seq_len, ffn) * tokens
