"""Sequential steps: the longest chain of operations that must run one after another, counted from what a
computation actually dispatches (a ``TorchDispatchMode``), with its FLOPs. The measure behind ``parallelism``
(O(T) sequential steps for an RNN, O(1) for attention) and the "sequential operations" column of ``paths``
(Vaswani et al. 2017, Table 1)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import torch
from torch import Tensor
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

# Matrix-product kernels: each multiplies whole matrices at once (all positions of a sequence, if the code
# batches them), so one of them is one parallel step. Convolutions and fused attention kernels count as one.
_MATMUL_OPS = frozenset(
    {"mm", "addmm", "bmm", "baddbmm", "addbmm", "mv", "addmv", "dot", "convolution", "convolution_backward"}
)
_MATMUL_PREFIXES = ("_scaled_dot_product", "_flash_attention", "_efficient_attention", "_cudnn_rnn", "mkldnn_rnn")


def is_matmul(func: Any) -> bool:
    """Whether an aten op is a matrix-product kernel (see ``_MATMUL_OPS``)."""
    name = func.overloadpacket.__name__
    return name in _MATMUL_OPS or name.startswith(_MATMUL_PREFIXES)


def _tensors(x: Any) -> Iterator[Tensor]:
    """The tensors in an op's arguments or results (nested tuples, lists and dicts)."""
    if isinstance(x, Tensor):
        yield x
    elif isinstance(x, (list, tuple)):
        for item in x:
            yield from _tensors(item)
    elif isinstance(x, dict):
        for item in x.values():
            yield from _tensors(item)


class SequentialDepth(TorchDispatchMode):
    """Counts the ops of a computation and the longest chain of them that must run one after another.

    Every aten op that reaches the dispatcher is recorded with a depth: one more than the deepest tensor it
    reads (views add nothing: they compute nothing). Writes, in place or through ``out=``, raise the depth of
    the written tensor. Tensors are tracked by storage, so a write into one slice of a buffer counts as a write
    to all of it: this can only lengthen chains, never shorten them (an upper bound on the true depth, exact
    for chains of fresh tensors such as a recurrent state). Tensors made outside the mode (inputs, parameters)
    have depth 0.

    After the ``with`` block: ``ops`` (ops dispatched), ``depth`` (longest dependent chain, in ops) and
    ``matmul_depth`` (matrix-product kernels on the deepest such chain, see :func:`is_matmul`).
    """

    def __init__(self) -> None:
        super().__init__()
        self._depth: dict[int, tuple[int, int]] = {}  # storage address -> (ops, matmuls) on its longest chain
        self.ops = 0

    @staticmethod
    def _key(t: Tensor) -> int:
        return t.untyped_storage().data_ptr()

    def _raise(self, t: Tensor, d: tuple[int, int]) -> None:
        k = self._key(t)
        old = self._depth.get(k, (0, 0))
        self._depth[k] = (max(old[0], d[0]), max(old[1], d[1]))

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        self.ops += 1
        inputs = list(_tensors((args, kwargs)))
        d_in = (0, 0)
        for t in inputs:
            d = self._depth.get(self._key(t), (0, 0))
            d_in = (max(d_in[0], d[0]), max(d_in[1], d[1]))
        d_out = d_in if func.is_view else (d_in[0] + 1, d_in[1] + int(is_matmul(func)))
        in_keys = {self._key(t) for t in inputs}
        for t in _tensors(out):
            if self._key(t) in in_keys:  # a view, an in-place result or an out= buffer: raise, never lower
                self._raise(t, d_out)
            else:  # fresh memory (perhaps at a freed tensor's address): its depth is this op's
                self._depth[self._key(t)] = d_out
        for i, arg in enumerate(func._schema.arguments):  # mutated arguments that are not returned (foreach ops)
            if arg.alias_info is not None and arg.alias_info.is_write:
                value = kwargs.get(arg.name) if arg.kwarg_only or i >= len(args) else args[i]
                for t in _tensors(value):
                    self._raise(t, d_out)
        return out

    @property
    def depth(self) -> int:
        return max((d[0] for d in self._depth.values()), default=0)

    @property
    def matmul_depth(self) -> int:
        return max((d[1] for d in self._depth.values()), default=0)


class StepCount(NamedTuple):
    """One computation, counted: ops dispatched, longest dependent chain (ops, matrix products), FLOPs (total
    and per aten op, e.g. ``{"aten.bmm": ...}``)."""

    ops: int
    depth: int
    matmul_depth: int
    flops: int
    flops_by_op: dict[str, int]


def _sdpa_forward_flops(q_shape, k_shape, v_shape, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(q_shape, k_shape, v_shape)


def _sdpa_backward_flops(grad_shape, q_shape, k_shape, v_shape, *args, out_shape=None, **kwargs) -> int:
    return sdpa_backward_flop_count(grad_shape, q_shape, k_shape, v_shape)


def _flop_mapping() -> dict[Any, Any]:
    """torch's own SDPA formulas for its CPU flash kernel, which FlopCounterMode does not map (they count the
    full n^2 score matrix even where a causal kernel skips the masked half)."""
    aten = torch.ops.aten
    mapping = {}
    for name, formula in (
        ("_scaled_dot_product_flash_attention_for_cpu", _sdpa_forward_flops),
        ("_scaled_dot_product_flash_attention_for_cpu_backward", _sdpa_backward_flops),
    ):
        op = getattr(aten, name, None)
        if op is not None:
            mapping[op] = formula
    return mapping


def count_step(fn: Callable[[], Any]) -> StepCount:
    """Run ``fn`` once under :class:`SequentialDepth` and ``FlopCounterMode``; return its :class:`StepCount`."""
    flops = FlopCounterMode(display=False, custom_mapping=_flop_mapping())
    with flops, SequentialDepth() as seq:
        fn()
    by_op = {str(op): int(n) for op, n in flops.get_flop_counts().get("Global", {}).items()}
    return StepCount(seq.ops, seq.depth, seq.matmul_depth, flops.get_total_flops(), by_op)


__all__ = ["SequentialDepth", "StepCount", "count_step", "is_matmul"]
