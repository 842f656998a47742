"""Compile the Triton kernels of ``impl="triton"`` for an H100 (sm_90) on a machine without a GPU.

Triton's interpreter checks what the kernels compute, not that they compile: this does what the JIT does at a
kernel's first launch (the same specialization: 16-byte-aligned pointers, integers equal to 1 or divisible by 16),
with Triton's own ptxas, and prints one line per kernel and configuration with its shared memory. Triton must not
be in interpreter mode (run it as a script; the test suite runs it in a subprocess without ``TRITON_INTERPRET``)::

    python tests/functional/compile_flash_for_gpu.py            # configuration 0 of each kernel, head size 64
    python tests/functional/compile_flash_for_gpu.py --all 64 128 256   # every configuration, 16-bit and float32
"""

from __future__ import annotations

import sys

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from attnlab.functional import flash_triton as ft

TARGET = GPUTarget("cuda", 90, 32)
BACKEND = triton.compiler.compiler.make_backend(TARGET)
POINTERS = {"Q", "K", "V", "O", "DO", "DK", "DV", "DQ"}


def arguments(kernel: str, hs: int, dtype: str, causal: bool, key_mask: bool, T: int = 4096, H: int = 16) -> dict:
    """Argument values as a (B, H, T, hs) contiguous call would pass them (pointers as their Triton type)."""
    values = {name: f"*{dtype}" for name in POINTERS}
    if kernel == "dkdv":
        values["DQ"] = "*fp32"  # the float32 dQ of DQ_ATOMIC (a placeholder otherwise)
    values.update(KM="*u8", LSE="*fp32", DELTA="*fp32", H=H, T=T, S=T, causal_offset=0, scale=0.125)
    values.update(scale_log2=0.18, T_BUCKET=T, S_BUCKET=T, HEAD_QK=hs, HEAD_V=hs, CAUSAL=causal)
    values.update(BLOCK_QK=ft._block(hs), BLOCK_V=ft._block(hs), HAS_KEY_MASK=key_mask)
    values["DOT_PRECISION"] = "ieee" if dtype == "fp32" else None
    values["DQ_ATOMIC"] = False
    for p in ("q", "k", "v", "o", "d", "gk", "gv", "gq"):
        strides = {"z": H * T * hs, "h": T * hs, "t": hs, "s": hs, "d": 1}
        values.update({f"stride_{p}{axis}": value for axis, value in strides.items()})
    values.update(stride_mz=T, stride_mh=0, stride_ms=1)
    return values


def compile_kernel(kernel, values: dict, num_warps: int, num_stages: int):
    """triton.compile of ``kernel`` specialized on ``values`` as the JIT would."""
    signature, constants, attrs = {}, {}, {}
    for i, (name, param) in enumerate(zip(kernel.arg_names, kernel.params, strict=True)):
        value = values[name]
        if param.is_constexpr or (isinstance(value, int) and value == 1 and name not in ft.NOT_SPECIALIZED):
            signature[name], constants[name] = "constexpr", value
        elif isinstance(value, str):
            signature[name], attrs[(i,)] = value, BACKEND.parse_attr("D")  # a pointer, 16-byte aligned
        elif isinstance(value, float):
            signature[name] = "fp32"
        else:
            signature[name] = "i32"
            if value % 16 == 0 and name not in ft.NOT_SPECIALIZED:
                attrs[(i,)] = BACKEND.parse_attr("D")
    source = ASTSource(kernel, signature, constants, attrs)
    return triton.compile(source, target=TARGET, options={"num_warps": num_warps, "num_stages": num_stages})


def main(argv: list[str]) -> int:
    every = "--all" in argv
    heads = [int(a) for a in argv if a != "--all"] or [64]
    ft.CONFIG_CHOICE = None
    for hs in heads:
        for name, kernel in ft._KERNELS.items():
            for dtype, causal, key_mask in [("bf16", True, True)] + (
                [("fp16", False, False), ("fp32", True, False)] if every else []
            ):
                configs = ft._configs(name, (ft._block(hs), dtype == "fp32"))
                for m, n, warps, stages in configs if every else configs[:1]:
                    for atomic in (False, True) if name == "dkdv" else (False,):
                        values = {**arguments(name, hs, dtype, causal, key_mask), "BLOCK_M": m, "BLOCK_N": n}
                        compiled = compile_kernel(kernel, {**values, "DQ_ATOMIC": atomic}, warps, stages)
                        print(f"{name}{' (atomic dQ)' if atomic else ''} hs={hs} {dtype} causal={causal} "
                              f"key_mask={key_mask} ({m}, {n}, {warps}, {stages}): "
                              f"shared memory {compiled.metadata.shared} bytes", flush=True)  # fmt: skip
        values = {**arguments("preprocess", hs, "bf16", False, False), "BLOCK_M": 64}
        compiled = compile_kernel(ft._bwd_preprocess, values, 4, 2)
        print(f"preprocess hs={hs} bf16: shared memory {compiled.metadata.shared} bytes", flush=True)
    return 0


if __name__ == "__main__":
    assert not ft.INTERPRETED, "run without TRITON_INTERPRET: the kernels must be JIT functions to compile"
    sys.exit(main(sys.argv[1:]))
