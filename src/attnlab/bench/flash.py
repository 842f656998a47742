"""``attnlab bench flash --device cuda``: the Triton FlashAttention-2 kernels against torch's fused SDPA kernels.

Shapes as in FlashAttention's own benchmark: 16k tokens per batch (B = 16384 / n) and a model width of 2048
(H = 2048 / hs), n in {1024, 4096, 16384}, head size 64 and 128, causal and not, bfloat16. Three implementations:
``impl="triton"`` (autotuned; the first call of each shape class compiles and tunes, outside the timing) and
``torch.nn.functional.scaled_dot_product_attention`` restricted by ``torch.nn.attention.sdpa_kernel`` to its
FlashAttention-2 backend and to its cuDNN backend. Times are medians over CUDA events
(``triton.testing.do_bench``, which also flushes the L2 cache between calls), forward alone under ``no_grad``
and forward+backward (``autograd.grad`` of all three inputs).

Throughput as FlashAttention counts it: forward ``4 B H n^2 hs`` flops (the two products ``Q K^T`` and ``P V``),
forward+backward 3.5 times that (the backward's five products are 2.5 times the forward's two), both halved when
causal. ``speed_vs_flash`` is torch-flash time / triton time: above 1, ours is faster. Forward+backward is also
timed with ``flash_triton.DQ_ATOMIC`` (dQ by atomic additions in the dK/dV kernel, as Algorithm 2 writes it,
instead of the deterministic dQ kernel), the first alternative to weigh if the default falls short. Peak memory
is the extra CUDA memory of one forward+backward above the inputs (:func:`attnlab.measure.peak_memory_bytes`). Last, the
linear-memory point: causal forward+backward at n = 65536 (B = 1, H = 16, hs = 128), whose naive form would hold
``B H n^2`` scores and weights (2 x 128 GiB in bfloat16). Each cell also records the largest difference between
our output and torch-flash's, so that a fast wrong kernel cannot pass unseen.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from attnlab.measure import machine, peak_memory_bytes

GIB = 2.0**30
TOKENS, WIDTH = 16384, 2048
IMPLS = ("triton", "flash", "cudnn")


def check_device(device: str) -> None:
    """ValueError unless ``device`` is a CUDA device this machine has (the CLI can call it before any work)."""
    if not device.startswith("cuda"):
        raise ValueError(f"device: attnlab bench flash times GPU kernels: expected --device cuda, got {device!r}")
    if not torch.cuda.is_available():
        raise ValueError("device: attnlab bench flash needs CUDA, which this machine does not have")


def _attention(impl: str):
    """``fn(q, k, v, causal)`` running one implementation (torch's restricted to one backend)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from attnlab.functional import scaled_dot_product_attention

    if impl == "triton":
        return lambda q, k, v, causal: scaled_dot_product_attention(q, k, v, is_causal=causal, impl="triton")
    backend = SDPBackend.FLASH_ATTENTION if impl == "flash" else SDPBackend.CUDNN_ATTENTION

    def fn(q, k, v, causal):
        with sdpa_kernel([backend]):
            return F.scaled_dot_product_attention(q, k, v, is_causal=causal)

    return fn


def _inputs(B: int, H: int, n: int, hs: int, device: str):
    g = torch.Generator(device=device).manual_seed(0)
    q, k, v = (torch.randn(B, H, n, hs, device=device, dtype=torch.bfloat16, generator=g) for _ in range(3))
    return [x.requires_grad_() for x in (q, k, v)], torch.randn(B, H, n, hs, device=device, dtype=torch.bfloat16)


def _calls(attn, q, k, v, grad_out, causal: bool):
    def forward():
        with torch.no_grad():
            return attn(q, k, v, causal)

    def forward_backward():
        torch.autograd.grad(attn(q, k, v, causal), (q, k, v), grad_out)

    return forward, forward_backward


def _time_ms(fn, quick: bool) -> float | None:
    from triton.testing import do_bench

    try:
        fn()  # compiles and autotunes the Triton kernels for this shape class, outside the timing
    except RuntimeError as exc:  # a torch backend that does not serve this call (e.g. no cuDNN attention)
        if "No available kernel" in str(exc) or "cuDNN" in str(exc):
            return None
        raise
    return do_bench(fn, warmup=10 if quick else 25, rep=30 if quick else 100, return_mode="median")


def run(*, quick: bool = False, device: str = "cuda") -> dict[str, Any]:
    """Every (n, hs, causal) cell: forward and forward+backward times of the three implementations."""
    check_device(device)
    import triton  # ImportError (one line in the CLI) when Triton is missing

    from attnlab.functional import flash_triton

    sizes = (1024, 4096) if quick else (1024, 4096, 16384)
    heads = (64,) if quick else (64, 128)
    rows = []
    for n in sizes:
        for hs in heads:
            B, H = TOKENS // n, WIDTH // hs
            (q, k, v), grad_out = _inputs(B, H, n, hs, device)
            for causal in (False, True):
                rows.append(_cell(q, k, v, grad_out, causal, quick))
            del q, k, v, grad_out
    n_long = 8192 if quick else 65536
    return {
        "quick": quick,
        "machine": {**machine(), "gpu": torch.cuda.get_device_name(device), "triton": triton.__version__},
        "rows": rows,
        "long": _long_point(n_long, device),
        "configs": flash_triton.GPU_CONFIGS,  # (BLOCK_M, BLOCK_N, num_warps, num_stages) per kernel and head size
        "tuned": flash_triton.tuning_report(),  # which of them the autotuner kept, per shape class
    }


def _cell(q, k, v, grad_out, causal: bool, quick: bool) -> dict[str, Any]:
    B, H, n, hs = q.shape
    flops = 4 * B * H * n * n * hs / (2 if causal else 1)
    row: dict[str, Any] = {"n": n, "hs": hs, "B": B, "H": H, "causal": causal}
    outs = {}
    for impl in IMPLS:
        attn = _attention(impl)
        forward, forward_backward = _calls(attn, q, k, v, grad_out, causal)
        ms_f, ms_fb = _time_ms(forward, quick), _time_ms(forward_backward, quick)
        row[f"{impl}_fwd_ms"], row[f"{impl}_fwdbwd_ms"] = (None if t is None else round(t, 4) for t in (ms_f, ms_fb))
        row[f"{impl}_fwd_tflops"] = None if ms_f is None else round(flops / ms_f / 1e9, 1)
        row[f"{impl}_fwdbwd_tflops"] = None if ms_fb is None else round(3.5 * flops / ms_fb / 1e9, 1)
        if impl != "cudnn":
            row[f"{impl}_fwdbwd_peak_gib"] = round(peak_memory_bytes(forward_backward, device=str(q.device)) / GIB, 3)
            outs[impl] = forward()
    for mode in ("fwd", "fwdbwd"):
        ours, theirs = row[f"triton_{mode}_ms"], row[f"flash_{mode}_ms"]
        row[f"speed_vs_flash_{mode}"] = round(theirs / ours, 3) if ours and theirs else None
    row["max_abs_diff_vs_flash"] = (outs["triton"].float() - outs["flash"].float()).abs().max().item()
    # the alternative backward: dQ by atomic float32 additions in the dK/dV kernel (Algorithm 2 as written)
    from attnlab.functional import flash_triton

    flash_triton.DQ_ATOMIC = True
    try:
        ms = _time_ms(_calls(_attention("triton"), q, k, v, grad_out, causal)[1], quick)
    finally:
        flash_triton.DQ_ATOMIC = False
    row["triton_atomic_dq_fwdbwd_ms"] = round(ms, 4)
    row["triton_atomic_dq_fwdbwd_tflops"] = round(3.5 * flops / ms / 1e9, 1)
    theirs = row["flash_fwdbwd_ms"]
    row["speed_vs_flash_fwdbwd_atomic_dq"] = round(theirs / ms, 3) if theirs else None
    return row


def _long_point(n: int, device: str) -> dict[str, Any]:
    """Causal forward+backward at a long n: the extra memory of ours and of torch's flash kernel."""
    B, H, hs = 1, 16, 128
    (q, k, v), grad_out = _inputs(B, H, n, hs, device)
    point: dict[str, Any] = {"n": n, "B": B, "H": H, "hs": hs, "causal": True}
    for impl in ("triton", "flash"):
        _, forward_backward = _calls(_attention(impl), q, k, v, grad_out, True)
        forward_backward()  # compile and tune first: the measure is of the attention, not of the autotuner
        point[f"{impl}_peak_gib"] = round(peak_memory_bytes(forward_backward, device=device) / GIB, 3)
    point["inputs_gib"] = round(3 * q.numel() * q.element_size() / GIB, 3)
    point["naive_scores_and_weights_gib"] = round(2 * B * H * n * n * 2 / GIB, 1)
    return point


def _fmt(x, spec: str = ".1f") -> str:
    return "-" if x is None else format(x, spec)


def to_markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        f"{m['gpu']}, torch {m['torch']}, triton {m['triton']}; bf16, B = 16384 / n, H = 2048 / hs; TFLOP/s "
        "(forward 4 B H n^2 hs, forward+backward 3.5x, halved when causal); speed = torch-flash time / ours",
        "",
        "| n | hs | causal | mode | triton | torch flash | torch cuDNN | speed vs flash | atomic dQ: triton | speed "
        "| peak GiB triton | flash |",
        "|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        for mode, label in (("fwd", "forward"), ("fwdbwd", "fwd+bwd")):
            backward_only = (
                (
                    _fmt(r["triton_atomic_dq_fwdbwd_tflops"]),
                    _fmt(r["speed_vs_flash_fwdbwd_atomic_dq"], ".2f"),
                    _fmt(r["triton_fwdbwd_peak_gib"], ".3f"),
                    _fmt(r["flash_fwdbwd_peak_gib"], ".3f"),
                )
                if mode == "fwdbwd"
                else ("", "", "", "")
            )
            lines.append(
                f"| {r['n']} | {r['hs']} | {'yes' if r['causal'] else 'no'} | {label} | "
                f"{_fmt(r[f'triton_{mode}_tflops'])} | {_fmt(r[f'flash_{mode}_tflops'])} | "
                f"{_fmt(r[f'cudnn_{mode}_tflops'])} | {_fmt(r[f'speed_vs_flash_{mode}'], '.2f')} | "
                + " | ".join(backward_only)
                + " |"
            )
    worst = max(r["max_abs_diff_vs_flash"] for r in result["rows"])
    p = result["long"]
    lines += [
        "",
        f"Largest |triton - flash| over every cell's output: {worst:.3g}.",
        f"Causal forward+backward at n = {p['n']} (B {p['B']}, H {p['H']}, hs {p['hs']}): extra peak "
        f"{p['triton_peak_gib']} GiB (triton) and {p['flash_peak_gib']} GiB (torch flash), beside "
        f"{p['inputs_gib']} GiB of inputs; naive scores and weights: {p['naive_scores_and_weights_gib']} GiB.",
    ]
    return "\n".join(lines)
