r"""The matrix products of the LSTM's hand-derived BPTT, on oneDNN where it applies.

PyTorch sends a float32 ``torch.mm``/``addmm`` on the CPU to MKL. On the AMD EPYC machines this project runs on,
oneDNN (which PyTorch also ships, and which ``torch.nn.LSTM`` uses for its fused layer) does the same products
in about half the time: 1024^3 at ~370 GFLOP/s against ~180 on 2 threads, the LSTM's per-step
``(32, 256) @ (256, 1024)`` in ~64 us against 120-200 us (``attnlab bench gemm``; figures in
``docs/benchmarks.md``). These helpers call oneDNN's inner product (``torch.ops.mkldnn._linear_pointwise``,
the op TorchInductor emits for ``nn.Linear`` on the CPU) for float32 CPU tensors, and plain ``torch`` matmuls
otherwise (float64, other devices, a build without oneDNN or without these ops, ``USE_ONEDNN = False``, or
under a ``TorchDispatchMode``). They carry no autograd: they are for code that writes its own backward
(:mod:`attnlab.nn.lstm_bptt`).

Every function computes ``x @ w.T`` in the convention of ``F.linear``: ``x (M, K)``, ``w (N, K)`` -> ``(M, N)``.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.utils._python_dispatch import is_in_torch_dispatch_mode

#: Use oneDNN when it applies; set False to force the plain ``torch`` path (the tests run both).
USE_ONEDNN: bool = True

# The ops are private (TorchInductor's): a torch build without them takes the plain path.
_HAS_OPS = all(hasattr(torch.ops.mkldnn, op) for op in ("_linear_pointwise", "_reorder_linear_weight"))


def uses_onednn(x: Tensor) -> bool:
    """Whether to use oneDNN for ``x``: float32 on the CPU, oneDNN available, and no ``TorchDispatchMode``
    active (a FLOP counter, :class:`attnlab.experiments.sequential.SequentialDepth`, fake tensors): such modes
    see the same arithmetic as the standard ``aten.mm``/``addmm`` they know how to count."""
    return (
        USE_ONEDNN
        and _HAS_OPS
        and x.dtype == torch.float32
        and x.device.type == "cpu"
        and torch.backends.mkldnn.enabled
        and torch.backends.mkldnn.is_available()
        and not is_in_torch_dispatch_mode()
    )


class Weight:
    """A weight ``(N, K)`` used in many products, reordered once into oneDNN's blocked layout when it applies.

    ``batch`` is the number of rows M of the inputs it will meet (oneDNN picks the blocking for it).
    """

    def __init__(self, w: Tensor, batch: int) -> None:
        self.dense = w  # (N, K)
        self.packed = torch.ops.mkldnn._reorder_linear_weight(w.contiguous(), batch) if uses_onednn(w) else None

    def linear(self, x: Tensor, add: Tensor | None = None) -> Tensor:
        """``x @ w.T`` (+ ``add``): ``(M, K)`` -> ``(M, N)``."""
        if self.packed is not None and x.dtype == torch.float32:
            if add is None:
                return torch.ops.mkldnn._linear_pointwise(x, self.packed, None, "none", [], "")
            return torch.ops.mkldnn._linear_pointwise.binary(x, add, self.packed, None, "add")
        if add is None:
            return x @ self.dense.t()  # (M, K) @ (K, N)
        return torch.addmm(add, x, self.dense.t())  # (M, N) + (M, K) @ (K, N)


def linear(x: Tensor, w: Tensor, bias: Tensor | None = None) -> Tensor:
    """``x @ w.T + bias`` for a weight used once: ``(M, K)``, ``(N, K)`` -> ``(M, N)``. Either operand may be a
    transposed view (oneDNN reads the strides)."""
    if uses_onednn(x) and w.dtype == torch.float32:
        return torch.ops.mkldnn._linear_pointwise(x, w, bias, "none", [], "")
    if bias is None:
        return x @ w.t()  # (M, K) @ (K, N)
    return torch.addmm(bias, x, w.t())  # (N,) + (M, K) @ (K, N)


def linear_grad_weight(dy: Tensor, x: Tensor) -> Tensor:
    """``dy.T @ x``, the weight gradient of ``y = x @ w.T``: ``dy (M, N)``, ``x (M, K)`` -> ``(N, K)``.

    Computed as ``(x.T @ dy).T`` when ``dy`` is the wider operand, so that it is oneDNN's weight: the faster
    orientation (11 ms against 15 ms for the LSTM's ``dW_hh`` at T*B = 4096, H = 256, one thread)."""
    if dy.shape[1] >= x.shape[1]:
        return linear(x.t(), dy.t()).t()  # ((K, M) @ (M, N)).T -> (N, K)
    return linear(dy.t(), x.t())  # (N, M) @ (M, K) -> (N, K)
