"""What every kernel file shares: the interpreter switch, a bf16-safe tl.dot, autotune configs,
input validation and the chunk-local cumulative sums of the gates.

Triton's interpreter (``TRITON_INTERPRET=1``, the CPU test route) computes a tl.dot on bf16 operands
silently wrong and has no bf16 elementwise math (``kernels.md`` §5), so :func:`dot` casts both
operands to fp32 when interpreting and keeps the native dtype (tensor cores) when compiling.
"""
from __future__ import annotations

import os

import torch
import torch.nn.functional as F
import triton
import triton.language as tl

# Read once at import, like triton.jit itself: set TRITON_INTERPRET before importing linscale.kernels.
INTERPRET = os.environ.get("TRITON_INTERPRET", "0") == "1"
IS_INTERPRETING = tl.constexpr(INTERPRET)


def interpreter_problem(triton_version: str = triton.__version__, numpy_version: str | None = None) -> str | None:
    """Why Triton's interpreter cannot run these kernels with these versions, or None.

    Triton 3.6's interpreter turns loop bounds into ints with int() of a 1-element array, which NumPy
    2.4 made an error: every kernel then fails deep inside the interpreter (3.7 and later are fine;
    compiled kernels are not affected)."""
    import numpy
    from packaging.version import Version

    numpy_version = numpy_version or numpy.__version__
    if Version(triton_version).release < (3, 7) and Version(numpy_version).release >= (2, 4):
        return (f"TRITON_INTERPRET=1: Triton {triton_version}'s interpreter fails with NumPy {numpy_version}; "
                "install triton>=3.7 or numpy<2.4 to run the kernels on a CPU")
    return None


INTERPRETER_PROBLEM = interpreter_problem() if INTERPRET else None

# Block widths: head dims are split into BK/BV tiles of at most this size (masked, so any width works);
# tl.dot needs every dimension >= 16 on the GPU, hence the floor.
MAX_BLOCK = 64
MIN_BLOCK = 16


@triton.jit
def dot(a, b):
    """a @ b with an fp32 accumulator; fp32 operands under the interpreter (bf16 dots are wrong there)."""
    if IS_INTERPRETING:
        return tl.dot(a.to(tl.float32), b.to(tl.float32))
    else:
        return tl.dot(a, b)


@triton.jit
def load_tile(x, bos, o_t, i_h, o_c, T, H: tl.constexpr, C: tl.constexpr, TRANS: tl.constexpr = False):
    """Tokens o_t × channels o_c of head i_h of a [B, T, H, C] tensor x, for the sequence whose first
    token is row ``bos``: a [BT, BC] tile, or its transpose [BC, BT] with TRANS; zero past T and C."""
    if TRANS:
        offsets = ((bos + o_t[None, :]) * H + i_h) * C + o_c[:, None]
        mask = (o_c < C)[:, None] & (o_t < T)[None, :]
    else:
        offsets = ((bos + o_t[:, None]) * H + i_h) * C + o_c[None, :]
        mask = (o_t < T)[:, None] & (o_c < C)[None, :]
    return tl.load(x + offsets, mask=mask, other=0)


@triton.jit
def store_tile(x, value, bos, o_t, i_h, o_c, T, H: tl.constexpr, C: tl.constexpr):
    """Write a [BT, BC] tile where :func:`load_tile` reads it, cast to x's dtype; nothing past T and C."""
    offsets = ((bos + o_t[:, None]) * H + i_h) * C + o_c[None, :]
    tl.store(x + offsets, value.to(x.dtype.element_ty), mask=(o_t < T)[:, None] & (o_c < C)[None, :])


@triton.jit
def load_token(x, bos, t, i_h, o_c, T, H: tl.constexpr, C: tl.constexpr):
    """Channels o_c of token t (a scalar) of head i_h of a [B, T, H, C] tensor x: a [BC] vector,
    zero past C, and all zero if t >= T."""
    # t + 0 * o_c: a vector mask, as the interpreter rejects a scalar & vector one
    return tl.load(x + ((bos + t) * H + i_h) * C + o_c, mask=(o_c < C) & (t + 0 * o_c < T), other=0)


def autotune_configs(num_warps=(2, 4, 8), num_stages=(2, 3)) -> list[triton.Config]:
    """Candidates for @triton.autotune; only the first when interpreting (autotune needs a GPU timer) or
    when ``LINSCALE_AUTOTUNE=0`` (tests on a GPU: many shapes, each would be tuned).

    Few candidates (each is a compile): warps {2, 4, 8} (fla keeps {2, 4} on Hopper) at the first stage
    count, plus 4 warps at the others."""
    configs = [triton.Config({}, num_warps=w, num_stages=num_stages[0]) for w in num_warps]
    configs += [triton.Config({}, num_warps=4, num_stages=s) for s in num_stages[1:] if 4 in num_warps]
    if INTERPRET or not torch.cuda.is_available() or os.environ.get("LINSCALE_AUTOTUNE", "1") == "0":
        return configs[:1]
    return configs


def block(width: int) -> int:
    """Tile width for a head dimension: a power of two in [16, 64], masked where it overhangs."""
    return min(MAX_BLOCK, max(MIN_BLOCK, triton.next_power_of_2(width)))


# ----------------------------------------------------------------------------- validation

FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def check_inputs(q, k, v, g=None, g_gamma=None, initial_state=None) -> None:
    """One clear ValueError for each input the kernels cannot take (shapes, dtypes, layout, decays)."""
    if INTERPRETER_PROBLEM:
        raise RuntimeError(INTERPRETER_PROBLEM)
    for name, x in (("q", q), ("k", k), ("v", v)):
        if not isinstance(x, torch.Tensor) or x.dim() != 4:
            raise ValueError(f"{name}: expected a 4-D tensor [B, T, H, D], got "
                             f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
    B, T, H, K = q.shape
    V = v.shape[-1]
    if k.shape != q.shape:
        raise ValueError(f"k: shape {tuple(k.shape)} must equal q's {tuple(q.shape)} [B, T, H, K]")
    if v.shape[:3] != q.shape[:3]:
        raise ValueError(f"v: shape {tuple(v.shape)} must share [B, T, H] = {tuple(q.shape[:3])} with q")
    if q.dtype not in FLOAT_DTYPES:
        raise ValueError(f"q: dtype {q.dtype} is not supported; expected float32, float16 or bfloat16")
    for name, x in (("k", k), ("v", v)):
        if x.dtype != q.dtype:
            raise ValueError(f"{name}: dtype {x.dtype} must equal q's dtype {q.dtype}")
    if g is not None and g_gamma is not None:
        raise ValueError("g, g_gamma: pass at most one decay (per-channel g or per-head g_gamma)")
    if g is not None:
        if g.shape != q.shape:
            raise ValueError(f"g: shape {tuple(g.shape)} must equal q's {tuple(q.shape)} [B, T, H, K]")
        if not g.is_floating_point():
            raise ValueError(f"g: dtype {g.dtype} must be floating point (log-decays)")
    if g_gamma is not None:
        if g_gamma.shape != (H,):
            raise ValueError(f"g_gamma: shape {tuple(g_gamma.shape)} must be [H] = ({H},)")
        if not g_gamma.is_floating_point():
            raise ValueError(f"g_gamma: dtype {g_gamma.dtype} must be floating point (log-decays)")
    if initial_state is not None:
        if initial_state.shape != (B, H, K, V):
            raise ValueError(f"initial_state: shape {tuple(initial_state.shape)} must be [B, H, K, V] = "
                             f"{(B, H, K, V)}")
        if initial_state.dtype not in FLOAT_DTYPES:
            raise ValueError(f"initial_state: dtype {initial_state.dtype} is not supported; expected float32, "
                             "float16 or bfloat16")
    tensors = {"q": q, "k": k, "v": v, "g": g, "g_gamma": g_gamma, "initial_state": initial_state}
    for name, x in tensors.items():
        if x is None:
            continue
        if x.device != q.device:
            raise ValueError(f"{name}: on {x.device}, but q is on {q.device}")
        if not x.is_contiguous():
            raise ValueError(f"{name}: the Triton kernels need contiguous tensors; call .contiguous() first")
    # Decays must lie in (0, 1]: log-decays finite and <= 0. Skipped while a CUDA graph is captured
    # (the check reads a value back to the host).
    capturing = q.is_cuda and torch.cuda.is_current_stream_capturing()
    for name, x in (("g", g), ("g_gamma", g_gamma)):
        if x is not None and x.numel() and not capturing:
            if not bool(((x <= 0) & (x > float("-inf"))).all()):
                raise ValueError(f"{name}: log-decays must be finite and <= 0 (decays in (0, 1]); "
                                 f"got values in [{x.min().item():.3g}, {x.max().item():.3g}]")


# ----------------------------------------------------------------------------- chunk-local cumsums


def empty_sequence(q: torch.Tensor, v: torch.Tensor, initial_state: torch.Tensor | None,
                   output_final_state: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The kernels' answer for T = 0 (no kernel launches on an empty grid): no output, and the initial state
    (zeros where none) as the final one, in fp32 and a tensor of its own, as for any T: handing back the
    caller's tensor let an in-place update of either change the other."""
    if not output_final_state:
        return v.new_zeros(v.shape), None
    B, _, H, K = q.shape
    ht = (torch.zeros(B, H, K, v.shape[-1], dtype=torch.float32, device=q.device) if initial_state is None
          else initial_state.to(torch.float32, copy=True))
    return v.new_zeros(v.shape), ht


def chunk_local_cumsum(g: torch.Tensor, chunk_size: int) -> torch.Tensor:
    """b[t] = Σ g[s] over the chunk of t up to and including t, in fp32: [B, T, H, K] -> same shape.

    Partial sums of non-positive numbers never increase, so later-minus-earlier differences of b stay
    <= 0 in floating point too: exp() of them cannot overflow.
    """
    B, T, H, K = g.shape
    N = triton.cdiv(T, chunk_size)
    b = F.pad(g.float(), (0, 0, 0, 0, 0, N * chunk_size - T)).view(B, N, chunk_size, H, K).cumsum(2)
    return b.view(B, N * chunk_size, H, K)[:, :T].contiguous()


def chunk_local_reverse_cumsum(db: torch.Tensor, chunk_size: int) -> torch.Tensor:
    """The adjoint of :func:`chunk_local_cumsum`: dg[t] = Σ db[s] over s >= t in t's chunk (fp32)."""
    B, T, H, K = db.shape
    N = triton.cdiv(T, chunk_size)
    x = F.pad(db.float(), (0, 0, 0, 0, 0, N * chunk_size - T)).view(B, N, chunk_size, H, K)
    x = x.flip(2).cumsum(2).flip(2)
    return x.reshape(B, N * chunk_size, H, K)[:, :T]
