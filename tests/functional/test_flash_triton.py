"""``impl="triton"``: the FlashAttention-2 kernels against the float64 reference, forward and backward.

Where CUDA is absent (CI) the kernels run in Triton's interpreter on the CPU, on small odd shapes (T, S up to 203,
head sizes 16, 40, 59, 64, 128, 256) in float32 and float16; with CUDA the same tests run compiled, on shapes ten
times longer, in bfloat16, float16 and float32. The rule is flash-attention's (STYLE.md): against the float64
reference (:func:`test_sdpa.attention_ref`), our error is at most 2x torch's own SDPA error at the same precision for
the output and 3x for the gradients (plus a floor of 4 float32 ulps); in float32 our result also meets
``assert_close``'s float32 tolerances against torch's. Torch's comparator is its SDPA with the equivalent mask: the
default kernel where no mask is needed (its flash kernel on CUDA), the math kernel for boolean masks on CUDA (its
fused kernels may return NaN for rows with no allowed key; the math one returns 0, as ours does).

Triton picks its interpreter when it is first imported (``TRITON_INTERPRET=1``): ``tests/conftest.py`` sets the
variable when CUDA is absent, before anything imports triton; nothing else in the suite uses Triton.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from test_sdpa import assert_within_torch_error, attention_ref, forward_backward
from torch import Tensor
from torch.nn.attention import SDPBackend, sdpa_kernel

import attnlab.functional
from attnlab.functional import scaled_dot_product_attention
from attnlab.functional.masks import AttentionMask

pytest.importorskip("triton", reason="the `gpu` extra (Triton) is not installed; `make test` installs it")

MODULE = "attnlab.functional.flash_triton"
CUDA = torch.cuda.is_available()
DEVICE = "cuda" if CUDA else "cpu"

# name: (batch, T, S, hs, hv, causal, key padding). Padding: "random" (40% of keys padded, one real key kept per
# sequence) or "dead" (the first sequence has no real key: all its queries see nothing).
CASES = {
    "T17-S203-hs40": ((2, 2), 17, 203, 40, 40, None, None),
    "T113-S203-hs59-causal": ((1, 2), 113, 203, 59, 59, "upper_left", None),
    "T203-S113-hs64-causal": ((1, 2), 203, 113, 64, 64, "upper_left", None),
    "T1-S17-hs16-keypad-3D": ((3,), 1, 17, 16, 16, None, "random"),
    "T97-hs64-causal-keypad": ((2, 1), 97, 97, 64, 64, "upper_left", "random"),
    "T120-S50-hs16-lower-right": ((1, 2), 120, 50, 16, 16, "lower_right", None),  # queries 0..69 see no key
    "T50-S70-hs40-hv24-dead-batch": ((2, 2), 50, 70, 40, 24, None, "dead"),
}
LONGER = 10 if CUDA else 1  # compiled kernels take sequences ten times longer
# (case, dtype): every case in float16 and float32 in the interpreter (no bfloat16 there); compiled, every case in
# bfloat16 and the first two also in float16 and float32 (each new combination costs seconds of compilation).
CASE_DTYPES = (
    [(c, d) for c in CASES for d in (torch.bfloat16,)]
    + [(c, d) for c in list(CASES)[:2] for d in (torch.float16, torch.float32)]
    if CUDA
    else [(c, d) for c in CASES for d in (torch.float16, torch.float32)]
)


@pytest.fixture(scope="module")
def flash():
    """``attnlab.functional.flash_triton``: interpreted on the CPU; compiled with CUDA, where each kernel runs its
    first configuration (autotuning every tested shape would cost minutes of compilation)."""
    module = importlib.import_module(MODULE)
    assert (not CUDA) == module.INTERPRETED, "on the CPU, TRITON_INTERPRET=1 must be set before triton is imported"
    module.CONFIG_CHOICE = 0 if CUDA else None
    yield module
    module.CONFIG_CHOICE = None


def private_copy(interpret: bool):
    """A copy of the module whose kernels were decorated compiled or interpreted, outside sys.modules: for the
    errors of the other mode (its kernels are never launched)."""
    saved = os.environ.pop("TRITON_INTERPRET", None)
    if interpret:
        os.environ["TRITON_INTERPRET"] = "1"
    try:
        spec = importlib.util.find_spec(MODULE)
        copy = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(copy)
    finally:
        os.environ.pop("TRITON_INTERPRET", None)
        if saved is not None:
            os.environ["TRITON_INTERPRET"] = saved
    assert interpret == copy.INTERPRETED
    return copy


def randn(*shape: int, dtype=torch.float32, seed: int = 0) -> Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)).to(DEVICE, dtype)


def make_case(spec: tuple, dtype, seed: int = 0):
    """Inputs ``(q, k, v)`` for a ``CASES`` entry, its key mask ``(B, 1, S)`` / ``(B, S)`` or None, and the allowed
    mask ``(*batch, T, S)``."""
    batch, T, S, hs, hv, causal, padding = spec
    T, S = (T * LONGER if T > 1 else 1), S * LONGER
    q, k, v = (randn(*batch, n, d, dtype=dtype, seed=seed + i) for i, (n, d) in enumerate([(T, hs), (S, hs), (S, hv)]))
    allowed = torch.ones(*batch, T, S, dtype=torch.bool, device=DEVICE)
    if causal is not None:
        offset = 0 if causal == "upper_left" else S - T
        allowed &= torch.ones(T, S, dtype=torch.bool, device=DEVICE).tril(offset)  # key j <= query i + offset
    key_mask = None
    if padding is not None:
        g = torch.Generator().manual_seed(seed + 7)
        shape = (batch[0], 1, S) if len(batch) == 2 else (batch[0], S)  # broadcast over the heads
        key_mask = torch.rand(shape, generator=g) > 0.4
        key_mask[..., torch.randint(0, S, (1,), generator=g)] = True
        if padding == "dead":
            key_mask[0] = False
        key_mask = key_mask.to(DEVICE)
        allowed &= key_mask.unsqueeze(-2)  # (..., 1, S)
    return (q, k, v), key_mask, allowed


def ours(q, k, v, spec: tuple, key_mask, scale=None):
    """Through the SDPA: torch's arguments where they can say it (is_causal, a key-padding attn_mask ``(..., 1, S)``),
    else an :class:`AttentionMask`."""
    causal = spec[5]
    if causal is None:
        mask = None if key_mask is None else key_mask.unsqueeze(-2)  # (..., 1, S): the same for every query
        return scaled_dot_product_attention(q, k, v, mask, scale=scale, impl="triton")
    if causal == "upper_left" and key_mask is None:
        return scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale, impl="triton")
    mask = AttentionMask(causal=causal, key_padding=key_mask)
    return scaled_dot_product_attention(q, k, v, mask, scale=scale, impl="triton")


def torch_sdpa(q, k, v, spec: tuple, allowed, scale=None):
    """Torch's SDPA on the same low-precision inputs: its own error is the yardstick."""
    causal, padding = spec[5:]
    if scale is not None and scale < 0:  # torch 2.13's fused CPU kernel returns NaN for is_causal with scale < 0
        with sdpa_kernel([SDPBackend.MATH]):
            return F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, scale=scale)
    if causal is None and padding is None:
        return F.scaled_dot_product_attention(q, k, v, scale=scale)
    if causal == "upper_left" and padding is None:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale)
    with sdpa_kernel([SDPBackend.MATH]) if CUDA else contextlib.nullcontext():
        return F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, scale=scale)


def check_against_reference(flash, spec: tuple, dtype, scale=None, seed=0):
    """Forward and backward of ours, torch's and the float64 reference on one case; returns ours and the mask.
    A scale above 1 makes a sharp, ill-conditioned softmax where torch's own float32 error exceeds assert_close's
    float32 tolerances (as in test_sdpa.test_explicit_scale): there the float64 reference alone is the judge."""
    (q, k, v), key_mask, allowed = make_case(spec, dtype, seed)
    g = randn(*q.shape[:-1], v.shape[-1], seed=seed + 99)
    out, grads, _ = forward_backward(lambda q, k, v: ours(q, k, v, spec, key_mask, scale), [q, k, v], g)
    out_pt, grads_pt, _ = forward_backward(lambda q, k, v: torch_sdpa(q, k, v, spec, allowed, scale), [q, k, v], g)
    inputs64 = [x.double() for x in (q, k, v)]
    out_ref, grads_ref, _ = forward_backward(
        lambda q, k, v: attention_ref(q, k, v, allowed, scale=scale)[0], inputs64, g
    )
    assert out.dtype == dtype and out.shape == out_ref.shape
    assert_within_torch_error(out, out_pt, out_ref, 2.0, "output")
    for name, grad, grad_pt, grad_ref in zip("qkv", grads, grads_pt, grads_ref, strict=True):
        assert grad.dtype == dtype
        assert_within_torch_error(grad, grad_pt, grad_ref, 3.0, f"d{name}")
    if dtype == torch.float32 and (scale is None or abs(scale) <= 1):
        torch.testing.assert_close(out, out_pt)
        for grad, grad_pt in zip(grads, grads_pt, strict=True):
            torch.testing.assert_close(grad, grad_pt)
    return out, grads, allowed


# --- numbers --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("case", "dtype"), CASE_DTYPES, ids=[f"{c}-{str(d)[6:]}" for c, d in CASE_DTYPES])
def test_forward_and_backward_within_torch_error(flash, case, dtype):
    out, (dq, dk, dv), allowed = check_against_reference(flash, CASES[case], dtype)
    dead = ~allowed.any(-1)  # (*batch, T): queries that see no key
    unseen = ~allowed.any(-2)  # (*batch, S): keys that no query sees (padded, or beyond every causal row)
    assert torch.all(out[dead] == 0) and torch.all(dq[dead] == 0)  # zeros, not NaN, and no gradient
    assert torch.all(dk[unseen] == 0) and torch.all(dv[unseen] == 0)
    if CUDA:  # every gradient element is written by one program: the same bits run to run
        (q, k, v), key_mask, _ = make_case(CASES[case], dtype)
        g = randn(*q.shape[:-1], v.shape[-1], seed=99)
        again = [forward_backward(lambda *x: ours(*x, CASES[case], key_mask), [q, k, v], g)[1] for _ in "12"]
        assert all(torch.equal(a, b) for a, b in zip(*again, strict=True))


@pytest.mark.parametrize("hs", [64, 128, 256])
@pytest.mark.parametrize(
    ("choice", "causal", "T", "S"),
    [(0, "lower_right", 100, 160), (1, "upper_left", 160, 100)],
    ids=["0-lower-right", "1-upper-left"],
)
def test_every_gpu_configuration(flash, monkeypatch, choice, hs, causal, T, S):
    """Each (BLOCK_M, BLOCK_N) of GPU_CONFIGS: tiles of 16 to 128 rows against unequal T, S, a shifted diagonal
    and key padding. Interpreted, this checks the tiling; compiled, also that each one builds and fits."""
    monkeypatch.setattr(flash, "CONFIG_CHOICE", choice)
    spec = ((2, 1), T, S, hs, hs, causal, "random")
    check_against_reference(flash, spec, torch.bfloat16 if CUDA else torch.float32, seed=hs + choice)


@pytest.mark.parametrize("atomic", [False, True], ids=["dq-kernel", "atomic-dq"])
def test_autotuned_launch(flash, monkeypatch, atomic):
    """The autotuner's path: each kernel times its configurations once per shape class and keeps one (in the
    interpreter: two tile shapes timed by a CPU clock; on a GPU: GPU_CONFIGS by CUDA events). With atomic dQ, the
    timing runs' additions must be cleared before the real one."""
    monkeypatch.setattr(flash, "CONFIG_CHOICE", None)
    monkeypatch.setattr(flash, "DQ_ATOMIC", atomic)
    monkeypatch.setattr(flash, "_TUNED", {})
    if not CUDA:
        monkeypatch.setattr(flash, "INTERPRETER_CONFIGS", [(16, 32, 1, 1), (32, 16, 1, 1)])
        monkeypatch.setattr(flash, "TUNE_BENCH", lambda call, quantiles: [cpu_seconds(call)] * len(quantiles))
    check_against_reference(flash, CASES["T97-hs64-causal-keypad"], torch.float16)
    report = flash.tuning_report()
    assert sorted(report) == ["dkdv hs<=64", "fwd hs<=64"] if atomic else ["dkdv hs<=64", "dq hs<=64", "fwd hs<=64"]
    assert all(len(choices) == 1 and "BLOCK_M" in next(iter(choices.values())) for choices in report.values())


def cpu_seconds(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


@pytest.mark.parametrize(
    "case", ["T97-hs64-causal-keypad", "T120-S50-hs16-lower-right", "T50-S70-hs40-hv24-dead-batch"]
)
def test_dq_by_atomic_additions(flash, monkeypatch, case):
    """DQ_ATOMIC: dQ added by every key block into float32 memory (Algorithm 2 as written) gives the same numbers."""
    monkeypatch.setattr(flash, "DQ_ATOMIC", True)
    _, (dq, _, _), allowed = check_against_reference(flash, CASES[case], torch.bfloat16 if CUDA else torch.float32)
    assert torch.all(dq[~allowed.any(-1)] == 0)


@pytest.mark.parametrize("scale", [0.3, -0.2, 2.0])
def test_explicit_scale(flash, scale):
    spec = CASES["T113-S203-hs59-causal"]
    out, _, _ = check_against_reference(flash, spec, torch.float32, scale=scale)
    (q, k, v), key_mask, _ = make_case(spec, torch.float32)
    assert not torch.allclose(out, ours(q, k, v, spec, key_mask), atol=1e-3)  # the scale is really used


@pytest.mark.parametrize("layout", ["transposed-heads", "kv-shared-by-heads", "2-D", "5-D"])
def test_strides_and_broadcast_batch_dims(flash, layout):
    """Views with any strides, broadcast leading dims (dK, dV summed over the heads that share them), 2-D and
    5-D inputs, all through the SDPA, against the reference in float64 (float32 tolerances)."""
    B, H, T, S, hs = 2, 3, 37 * LONGER, 45 * LONGER, 40
    if layout == "transposed-heads":  # (B, T, H, hs) memory seen as (B, H, T, hs), as multi-head attention makes
        q, k, v = (randn(B, n, H, hs, seed=i).transpose(1, 2) for i, n in enumerate((T, S, S)))
    elif layout == "kv-shared-by-heads":
        q, k, v = randn(B, H, T, hs, seed=0), randn(B, 1, S, hs, seed=1), randn(B, 1, S, hs, seed=2)
    elif layout == "2-D":
        q, k, v = randn(T, hs, seed=0), randn(S, hs, seed=1), randn(S, hs, seed=2)
    else:
        q, k, v = randn(2, 2, 2, T, hs, seed=0), randn(2, 1, 2, S, hs, seed=1), randn(1, 2, 2, S, hs, seed=2)
    g = randn(*torch.broadcast_shapes(q.shape[:-2], k.shape[:-2]), T, hs, seed=9)
    out, grads, _ = forward_backward(lambda q, k, v: scaled_dot_product_attention(q, k, v, impl="triton"), [q, k, v], g)
    out_ref, grads_ref, _ = forward_backward(
        lambda q, k, v: attention_ref(q, k, v)[0], [x.double() for x in (q, k, v)], g
    )
    torch.testing.assert_close(out, out_ref.float())
    for grad, grad_ref, x in zip(grads, grads_ref, (q, k, v), strict=True):
        assert grad.shape == x.shape
        torch.testing.assert_close(grad, grad_ref.float())


@pytest.mark.skipif(CUDA, reason="with CUDA every other test compiles the kernels for the GPU at hand")
def test_kernels_compile_for_a_gpu():
    """The interpreter checks the numbers; this checks that the kernels also compile for an H100 (sm_90) with
    Triton's own ptxas and no GPU: configuration 0 of each kernel (dK/dV with and without the atomic dQ), head size
    64, bfloat16, causal with key padding."""
    script = Path(__file__).with_name("compile_flash_for_gpu.py")
    env = {key: value for key, value in os.environ.items() if key != "TRITON_INTERPRET"}
    run = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.splitlines()
    assert [line.split(" hs=")[0] for line in lines] == ["fwd", "dkdv", "dkdv (atomic dQ)", "dq", "preprocess"]
    shared = [int(line.split("shared memory ")[1].split()[0]) for line in lines]
    assert all(0 < size <= 227 * 1024 for size in shared), shared  # an H100's shared memory per block


# --- what it refuses --------------------------------------------------------------------------------------------


def small(dtype=torch.float32, T=5, S=7, hs=16):
    return (
        randn(2, 2, T, hs, dtype=dtype, seed=1),
        randn(2, 2, S, hs, dtype=dtype, seed=2),
        randn(2, 2, S, hs, dtype=dtype, seed=3),
    )


def test_refuses_unsupported_dtype(flash):
    with pytest.raises(
        TypeError, match=r"^query: impl='triton' supports float16, bfloat16 and float32, got torch.float64"
    ):
        scaled_dot_product_attention(*small(torch.float64), impl="triton")


@pytest.mark.parametrize("kind", ["float", "bool-TS"])
def test_refuses_masks_other_than_key_padding(flash, kind):
    q, k, v = small()
    mask = torch.zeros(5, 7, device=DEVICE) if kind == "float" else torch.ones(5, 7, dtype=torch.bool, device=DEVICE)
    with pytest.raises(
        ValueError, match=r"^attn_mask: impl='triton' takes causal masks and key padding: a bool mask broadcastable to"
    ):
        scaled_dot_product_attention(q, k, v, mask, impl="triton")


def test_refuses_a_sliding_window(flash):
    mask = AttentionMask(causal="lower_right", window=3)
    with pytest.raises(
        ValueError, match=r"^attn_mask: impl='triton' has no sliding window, got AttentionMask\(window=3\)"
    ):
        scaled_dot_product_attention(*small(), mask, impl="triton")


def test_refuses_dropout_and_weights(flash):
    with pytest.raises(ValueError, match=r"^dropout_p: impl='triton' has no dropout; expected 0, got 0.1"):
        scaled_dot_product_attention(*small(), dropout_p=0.1, impl="triton")
    with pytest.raises(ValueError, match=r"^return_weights"):
        scaled_dot_product_attention(*small(), impl="triton", return_weights=True)


def test_refuses_head_sizes_above_256_and_bad_arguments(flash):
    with pytest.raises(ValueError, match=r"^query: impl='triton' supports head sizes up to 256, got 300"):
        scaled_dot_product_attention(*small(hs=300), impl="triton")
    q, k, v = small()
    with pytest.raises(ValueError, match=r"^causal: expected None, 'upper_left' or 'lower_right', got 'top'"):
        flash.flash_attention(q, k, v, 0.25, (2, 2), "top")
    with pytest.raises(TypeError, match=r"^key_mask: expected a bool tensor"):
        flash.flash_attention(q, k, v, 0.25, (2, 2), None, torch.ones(2, 1, 7, device=DEVICE))


def test_cpu_tensors_need_the_interpreter():
    q, k, v = (x.cpu() for x in small())
    with pytest.raises(ValueError, match=r"^query: impl='triton' on CPU tensors needs Triton's interpreter: set TRI"):
        private_copy(interpret=False).flash_attention(q, k, v, 0.25, (2, 2))


def test_no_bfloat16_in_the_interpreter():
    q, k, v = (x.cpu() for x in small(torch.bfloat16))
    with pytest.raises(TypeError, match=r"^query: bfloat16 on the CPU: Triton's interpreter has no bfloat16"):
        private_copy(interpret=True).flash_attention(q, k, v, 0.25, (2, 2))


def test_triton_missing_is_one_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "triton", None)  # `import triton` now raises ImportError
    monkeypatch.delitem(sys.modules, MODULE, raising=False)
    monkeypatch.delattr(attnlab.functional, "flash_triton", raising=False)
    with pytest.raises(ModuleNotFoundError, match=r"^impl='triton' needs the package triton, which is not installed"):
        scaled_dot_product_attention(*small(), impl="triton")


def test_auto_never_picks_triton(flash, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("impl='auto' called the Triton kernel")

    monkeypatch.setattr(flash, "flash_attention", refuse)
    monkeypatch.setattr(flash, "from_sdpa", refuse)
    q, k, v = small()
    for kwargs in ({}, {"is_causal": True}, {"attn_mask": torch.ones(2, 1, 1, 7, dtype=torch.bool, device=DEVICE)}):
        out = scaled_dot_product_attention(q, k, v, impl="auto", **kwargs)
        torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, **kwargs))
