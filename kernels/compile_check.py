"""Compile every kernel variant for a GPU architecture on a machine without a GPU.

The interpreter checks no GPU limits (dot shapes, layouts, shared memory, register pressure:
``kernels.md`` §5). Triton's compiler and the ptxas it ships need no device, so this catches those
errors on a CPU: ``python -m linscale.kernels.compile_check [--arch 90] [--all]`` (without
TRITON_INTERPRET; ``--only NAME`` for a subset). It prints each variant's shared memory; exit status 1 if any fails to compile.
"""
from __future__ import annotations

import argparse
import os
import sys

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler.compiler import ASTSource

from . import chunk, fused_recurrent
from .utils import block

FLAG_SETS = {"none": dict(USE_G=False, USE_GAMMA=False), "gamma": dict(USE_G=False, USE_GAMMA=True),
             "gated": dict(USE_G=True, USE_GAMMA=False)}


def compile_kernel(kernel, pointers: dict, scalars: dict, constexprs: dict, arch: int, num_warps=4, num_stages=2):
    """triton.compile one kernel for sm_<arch>; pointer type "none" means the argument is passed as None."""
    fn = kernel.fn if hasattr(kernel, "fn") else kernel  # unwrap @triton.autotune
    names = fn.arg_names
    signature, fixed = {}, {}
    for name in names:
        if name in constexprs or pointers.get(name) == "none":
            signature[name] = "constexpr"
            fixed[(names.index(name),)] = constexprs.get(name)
        else:
            signature[name] = pointers.get(name) or scalars[name]
    target = GPUTarget("cuda", arch, 32)
    return triton.compile(ASTSource(fn, signature, fixed), target=target,
                          options={"num_warps": num_warps, "num_stages": num_stages})


def variants(dtypes=("bf16",), widths=((128, 128),)):
    """(name, kernel, pointers, scalars, constexprs) for every kernel × decay type × dtype × width."""
    for dt, (K, V), (decay, flags) in ((d, w, f) for d in dtypes for w in widths for f in FLAG_SETS.items()):
        x = "*" + dt
        BT = chunk.GATED_CHUNK_SIZE if flags["USE_G"] else chunk.CHUNK_SIZE
        g = "*fp32" if flags["USE_G"] else "none"
        gamma = "*fp32" if flags["USE_GAMMA"] else "none"
        A = "*fp32" if flags["USE_G"] else "none"
        c = dict(H=16, K=K, V=V, BT=BT, BK=block(K), BV=block(V), **flags)
        s = dict(scale="fp32", T="i32")
        tag = f"{dt} {decay} K={K} V={V}"
        yield (f"chunk_fwd_h {tag}", chunk.chunk_fwd_h_kernel,
               dict(k=x, v=x, gc=g, g_gamma=gamma, h="*fp32", h0="*fp32", ht="*fp32"), dict(T="i32"),
               dict(c, USE_H0=True, STORE_HT=True))
        if flags["USE_G"]:
            yield (f"chunk_gla_fwd_A {tag}", chunk.chunk_gla_fwd_A_kernel, dict(q=x, k=x, gc=g, A=A), s,
                   dict(H=16, K=K, BT=BT, BK=block(K)))
        yield (f"chunk_fwd_o {tag}", chunk.chunk_fwd_o_kernel,
               dict(q=x, k=x, v=x, gc=g, g_gamma=gamma, h="*fp32", A=A, o=x), s, c)
        yield (f"chunk_bwd_dh {tag}", chunk.chunk_bwd_dh_kernel,
               dict(q=x, gc=g, g_gamma=gamma, do=x, dh="*fp32", dht="*fp32", dh0="*fp32"), s,
               dict(c, USE_DHT=True, STORE_DH0=True))
        yield (f"chunk_bwd_dv {tag}", chunk.chunk_bwd_dv_kernel,
               dict(q=x, k=x, gc=g, g_gamma=gamma, A=A, do=x, dh="*fp32", dv=x), s, c)
        yield (f"chunk_bwd_dqk {tag}", chunk.chunk_bwd_dqk_kernel,
               dict(q=x, k=x, v=x, gc=g, g_gamma=gamma, h="*fp32", do=x, dh="*fp32", dq=x, dk=x,
                    db="*fp32" if flags["USE_G"] else "none"), s, c)
        BK, BV = fused_recurrent.recurrent_blocks(K, V)
        yield (f"fused_recurrent_fwd {tag}", fused_recurrent.fused_recurrent_fwd_kernel,
               dict(q=x, k=x, v=x, g=g, g_gamma=gamma, o=x, h0="*fp32", ht="*fp32"), s,
               dict(H=16, K=K, V=V, BK=BK, BV=BV, USE_H0=True, STORE_HT=True, **flags))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arch", type=int, default=90, help="compute capability ×10 (90: H100/H200)")
    parser.add_argument("--all", action="store_true", help="fp32 and bf16; widths 128/128, 256/128, 96/96")
    parser.add_argument("--only", default="", help="compile only variants whose name contains this")
    args = parser.parse_args(argv)
    if os.environ.get("TRITON_INTERPRET", "0") == "1":
        parser.error("unset TRITON_INTERPRET: this compiles for the GPU")
    dtypes, widths = (("bf16", "fp32"), ((128, 128), (256, 128), (96, 96))) if args.all else (("bf16",), ((128, 128),))
    failed = 0
    for name, kernel, pointers, scalars, constexprs in variants(dtypes, widths):
        if args.only not in name:
            continue
        try:
            compiled = compile_kernel(kernel, pointers, scalars, constexprs, args.arch)
            print(f"ok    {name}: {compiled.metadata.shared} B shared memory")
        except Exception as err:  # noqa: BLE001 - report every failure, then fail
            failed += 1
            print(f"FAIL  {name}: {type(err).__name__}: {str(err)[:1000]}")
    print(f"{failed} of the variants failed to compile for sm_{args.arch}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
