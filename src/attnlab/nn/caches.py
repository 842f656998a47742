"""KV caches for incremental decoding: what a layer keeps of the positions it has seen.

- :class:`KVCache`: keys and values of every position so far, appended in one buffer (grows by doubling);
- :class:`StaticKVCache`: fixed buffers written at a position held on the device, so one decode step can be
  captured as a CUDA graph and replayed.

Every cache speaks one protocol: ``offset`` (the position of the next query), ``update(k, v) -> (keys, values)``
and ``adapt(mask, T)`` (the caller's mask over the cache's keys). The sliding-window cache
(:mod:`attnlab.nn.rolling_cache`), the latent cache of MLA (:mod:`attnlab.nn.mla`) and the recurrent state of
linear attention and Mamba (:mod:`attnlab.nn.linear_mixer`) follow the same protocol.
"""

from __future__ import annotations

import torch
from torch import Tensor

from attnlab._checks import check_positive_int, check_tensor, shape_str
from attnlab.functional.masks import AttentionMask


class KVCache:
    """Keys and values of the positions seen so far, per layer, for incremental decoding.

    ``update(k, v)`` appends ``(B, nh, T_new, hs)`` keys/values and returns all of them ``(B, nh, S, hs)`` (views
    of one buffer: nothing is copied but the new positions). ``capacity``: positions to allocate at the first
    update (e.g. the model's context length), so decoding never reallocates; past it, storage grows by doubling.
    """

    def __init__(self, capacity: int | None = None) -> None:
        self._k: Tensor | None = None
        self._v: Tensor | None = None
        self.capacity = 16 if capacity is None else check_positive_int("capacity", capacity)
        self.length = 0

    @property
    def offset(self) -> int:
        """The position of the next query: new positions continue after the cached ones."""
        return self.length

    def update(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        n = k.shape[2]
        if self._k is None:
            cap = max(self.capacity, n)
            self._k = k.new_empty(*k.shape[:2], cap, k.shape[3])
            self._v = v.new_empty(*v.shape[:2], cap, v.shape[3])
        elif self._k.shape[:2] != k.shape[:2]:
            raise ValueError(f"cache: holds batch/heads {tuple(self._k.shape[:2])}, got keys of shape {shape_str(k)}")
        if self.length + n > self._k.shape[2]:
            cap = max(2 * self._k.shape[2], self.length + n)
            self._k, self._v = (_grow(buf, self.length, cap) for buf in (self._k, self._v))
        self._k.narrow(2, self.length, n).copy_(k)  # (B, nh, n, hs) into the buffer: the only copy
        self._v.narrow(2, self.length, n).copy_(v)
        self.length += n
        return self._k.narrow(2, 0, self.length), self._v.narrow(2, 0, self.length)  # (B, nh, S, hs) views

    def adapt(self, mask: AttentionMask | None, T: int) -> AttentionMask | None:
        """The caller's mask over the cached keys: unchanged (they are the first S positions, in order). Refuses
        top-left causal once earlier positions are cached: the new queries are the last ones (bottom-right)."""
        if mask is not None and mask.causal == "upper_left" and self.length != T:
            raise ValueError(
                "is_causal: top-left causal (as in the SDPA) does not fit queries that follow cached keys; "
                "pass attn_mask=AttentionMask(causal='lower_right')"
            )
        return mask

    def nbytes(self) -> int:
        """Bytes held by the key and value buffers (allocated capacity included; 0 before the first update)."""
        return 0 if self._k is None else (self._k.numel() + self._v.numel()) * self._k.element_size()

    def reset(self) -> None:
        self._k = self._v = None
        self.length = 0


class StaticKVCache:
    """A KV cache whose shapes never change, for a decode step captured once as a CUDA graph and replayed.

    The buffers hold ``capacity`` positions from the first update on; ``position`` is a 0-d int64 tensor *on the
    device* (shared by all layers of a model, advanced by the decoder), and ``update`` writes the new keys/values
    at ``position, position + 1, ...`` and returns the whole buffers ``(B, nh, capacity, hs)``. Which keys a query
    sees is then a mask computed on the device (:meth:`adapt`): no host value enters the step, so replaying it
    needs no Python. It serves causal decoding only (``AttentionMask(causal="lower_right")``, windowed or not).
    """

    def __init__(self, capacity: int, position: Tensor) -> None:
        self.capacity = check_positive_int("capacity", capacity)
        check_tensor("position", position)
        if position.dim() != 0 or position.dtype != torch.int64:
            raise ValueError(
                f"position: expected a 0-d int64 tensor, got {position.dtype} of shape {shape_str(position)}"
            )
        self.position = position
        self._k: Tensor | None = None
        self._v: Tensor | None = None

    @property
    def offset(self) -> Tensor:
        return self.position

    def update(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        if self._k is None:
            self._k = k.new_zeros(*k.shape[:2], self.capacity, k.shape[3])
            self._v = v.new_zeros(*v.shape[:2], self.capacity, v.shape[3])
        idx = self.position + torch.arange(k.shape[2], device=k.device)  # (T,): where the new positions go
        self._k.index_copy_(2, idx, k)  # (B, nh, capacity, hs)
        self._v.index_copy_(2, idx, v)
        return self._k, self._v

    def adapt(self, mask: AttentionMask | None, T: int) -> AttentionMask:
        """Causal over positions as a ``(T, capacity)`` bool mask: query i (position p + i) sees keys ``j <= p + i``
        (and ``j >= p + i - w`` with a window); unwritten positions are never seen."""
        plain = mask is not None and mask.key_padding is None and mask.dense is None
        if not (plain and mask.causal == "lower_right"):
            raise ValueError(
                "cache: a StaticKVCache serves causal decoding only: attn_mask=AttentionMask(causal='lower_right')"
            )
        pos = self.position + torch.arange(T, device=self.position.device).unsqueeze(1)  # (T, 1)
        cols = torch.arange(self.capacity, device=self.position.device)  # (capacity,)
        allowed = cols <= pos  # (T, capacity)
        if mask.window is not None:
            allowed = allowed & (cols >= pos - mask.window)
        return AttentionMask(dense=allowed)


def _grow(buf: Tensor, used: int, capacity: int) -> Tensor:
    """A ``(B, nh, capacity, hs)`` buffer holding the first ``used`` positions of ``buf``."""
    fresh = buf.new_empty(*buf.shape[:2], capacity, buf.shape[3])
    fresh[:, :, :used] = buf[:, :, :used]
    return fresh
