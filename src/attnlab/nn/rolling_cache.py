r"""The rolling buffer cache of sliding-window attention (Mistral 7B, Jiang et al. 2023, section 2).

With a window w, the query at position p attends keys ``p - w <= j <= p`` (:class:`~attnlab.functional.
AttentionMask` ``window``). A key older than that is never seen again, so a decoder needs only the last
``w + 1`` positions (the w before the newest token, and the newest itself): position p lives in slot
``p mod (w + 1)`` of a fixed buffer, and each new position overwrites the one that just left every later
query's window. Memory stays ``(w + 1)`` positions per layer however long the generation runs, where a
:class:`~attnlab.nn.KVCache` grows by one position per token. (Mistral's paper counts the same buffer as
"a fixed size of W"; we count the newest position too, as our mask includes it.)

Order: attention is a weighted sum over a *set* of keys (their positions are already inside them, by
rotary embeddings or by what earlier layers mixed in), so the buffer need not be in time order for a query
that sees all of it. :meth:`RollingBuffer.update` therefore returns

- for one new position (decoding): the filled slots as they lie, a view, no copy; the newest query sees every
  one of them, so no mask is needed (the window mask of one query over ``<= w + 1`` keys allows all);
- for several new positions (a prompt, a chunk): the cached positions the first new query may see, in time
  order, followed by the new ones, so that ``AttentionMask(causal="lower_right", window=w)`` applies as it is.

Shapes: ``(..., n, d)`` along dim -2 (keys/values ``(B, n_kv, n, hs)``; the MLA latent ``(B, 1, n, d)``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from attnlab._checks import check_positive_int, shape_str
from attnlab.functional.masks import AttentionMask


class RollingBuffer:
    """One tensor's last ``window + 1`` positions along dim -2, in slots ``p mod (window + 1)``.

    ``update(x)`` takes the new positions ``(..., n, d)`` and returns what the new queries attend to (see the
    module docstring); ``length`` counts every position seen, so it is also the next position's index.
    """

    def __init__(self, window: int) -> None:
        self.window = check_positive_int("window", window)
        self.slots = window + 1
        self._buf: Tensor | None = None
        self.length = 0

    def update(self, x: Tensor) -> Tensor:
        n = x.shape[-2]
        if self._buf is None:
            self._buf = x.new_empty(*x.shape[:-2], self.slots, x.shape[-1])  # (..., w + 1, d)
        elif self._buf.shape[:-2] != x.shape[:-2] or self._buf.shape[-1] != x.shape[-1]:
            raise ValueError(
                f"x: expected leading dims {tuple(self._buf.shape[:-2])} and {self._buf.shape[-1]} features (those "
                f"the cache holds), got {shape_str(x)}"
            )
        if n == 1:  # decoding: write, then attend over the filled slots in ring order (a view)
            self._write(x)
            return self._buf.narrow(-2, 0, min(self.length, self.slots))
        past = min(self.length, self.window)  # cached positions the first new query may see
        if past:
            pos = torch.arange(self.length - past, self.length, device=x.device) % self.slots  # time order
            x_all = torch.cat([self._buf.index_select(-2, pos), x], dim=-2)  # (..., past + n, d)
        else:
            x_all = x
        self._write(x)
        return x_all

    def _write(self, x: Tensor) -> None:
        """Store the last ``min(n, w + 1)`` of the new positions in their slots (at most two contiguous runs)."""
        n = x.shape[-2]
        m = min(n, self.slots)
        first = self.length + n - m  # position of the first one stored
        s = first % self.slots
        head = min(m, self.slots - s)
        self._buf.narrow(-2, s, head).copy_(x.narrow(-2, n - m, head))
        if m > head:  # wrapped around the end of the buffer
            self._buf.narrow(-2, 0, m - head).copy_(x.narrow(-2, n - m + head, m - head))
        self.length += n

    def nbytes(self) -> int:
        """Bytes held by the buffer (0 before the first update)."""
        return 0 if self._buf is None else self._buf.numel() * self._buf.element_size()

    def reset(self) -> None:
        self._buf = None
        self.length = 0


class RollingKVCache:
    """Keys and values of the last ``window + 1`` positions, for decoding with a sliding window of ``window``.

    A drop-in for :class:`~attnlab.nn.KVCache` in :class:`~attnlab.nn.MultiHeadAttention` (``update(k, v)`` with
    ``(B, n_kv, n, hs)``; ``length`` and ``offset``: positions seen), for
    ``attn_mask=AttentionMask(causal="lower_right", window=window)`` only (:meth:`adapt` refuses any other).
    """

    def __init__(self, window: int) -> None:
        self._k, self._v = RollingBuffer(window), RollingBuffer(window)
        self.window = window

    @property
    def length(self) -> int:
        return self._k.length

    @property
    def offset(self) -> int:
        """The position of the next query."""
        return self._k.length

    def adapt(self, mask: AttentionMask | None, T: int) -> AttentionMask:
        """The caller's mask, which must be the window this cache keeps (:func:`check_cache_mask`)."""
        check_cache_mask(self, mask)
        return mask

    def update(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        if k.shape[:-1] != v.shape[:-1]:
            raise ValueError(f"v: expected the leading dims and length of k {shape_str(k)}, got {shape_str(v)}")
        return self._k.update(k), self._v.update(v)

    def nbytes(self) -> int:
        """Bytes held by the key and value buffers."""
        return self._k.nbytes() + self._v.nbytes()

    def reset(self) -> None:
        self._k.reset()
        self._v.reset()


def check_cache_mask(cache: object, attn_mask: object) -> None:
    """A rolling cache (one with a ``window``) serves exactly one mask: ``AttentionMask(causal="lower_right",
    window=cache.window)``; anything else would attend to positions it no longer holds, or in the wrong order."""
    w = getattr(cache, "window", None)
    if w is None:
        return
    plain = isinstance(attn_mask, AttentionMask) and attn_mask.key_padding is None and attn_mask.dense is None
    if not (plain and attn_mask.causal == "lower_right" and attn_mask.window == w):
        raise ValueError(
            f"attn_mask: a rolling cache of window {w} needs AttentionMask(causal='lower_right', window={w}), "
            f"got {attn_mask!r}"
        )
