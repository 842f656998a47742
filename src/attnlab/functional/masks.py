r"""Which keys a query may attend to, described once and materialized only where an implementation needs it.

An :class:`AttentionMask` combines four independent restrictions; a key is allowed when all of them allow it:

- ``causal``: the queries are positions too. ``"upper_left"`` (torch's ``is_causal``): query i sits at position
  i, so it sees keys ``j <= i``. ``"lower_right"``: the T queries are the *last* T of the S positions (what a
  KV cache needs: the new tokens follow the cached ones), so query i sits at position ``p_i = i + S - T`` and
  sees keys ``j <= p_i``. With ``T == S`` the two are the same lower triangle. (torch spells the two
  ``causal_upper_left`` and ``causal_lower_right``, in ``torch.nn.attention.bias``.)
- ``window`` (with ``causal``): a sliding window of ``w`` positions back, ``p_i - w <= j <= p_i`` (w + 1 keys,
  as in Mistral 7B, Jiang et al. 2023: "attends to hidden states ... between i - W and i"), so L layers reach
  ``w L`` positions back.
- ``key_padding``: a bool tensor ``(..., S)`` broadcastable to ``(*batch, S)``, True at real keys (for 4-D
  ``(B, nh, T, hs)`` inputs give ``(B, 1, S)``).
- ``dense``: a user's ``(..., T, S)`` mask: bool (True = may attend) or float (added to the scores).

Only ``dense`` is an O(T S) input. The naive implementations build the ``(T, S)`` additive form with
:meth:`AttentionMask.bias`; the chunked one asks for one tile at a time (:meth:`AttentionMask.tile`) and skips the
key blocks a query block cannot see (:meth:`AttentionMask.key_range`), so causal, windowed and padded attention
keep its O(T + S) extra memory.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor

from attnlab._checks import broadcast_shapes, check_tensor, shape_str

CAUSAL_ALIGNMENTS = ("upper_left", "lower_right")


@dataclass(frozen=True, eq=False)
class AttentionMask:
    """A structured attention mask (see the module docstring). All fields optional; an empty mask allows all."""

    causal: str | None = None
    window: int | None = None
    key_padding: Tensor | None = None
    dense: Tensor | None = None

    def __post_init__(self) -> None:
        if self.causal is not None and self.causal not in CAUSAL_ALIGNMENTS:
            raise ValueError(f"causal: expected None or one of {CAUSAL_ALIGNMENTS}, got {self.causal!r}")
        if self.window is not None:
            if isinstance(self.window, bool) or not isinstance(self.window, int) or self.window < 1:
                raise ValueError(f"window: expected None or an integer >= 1, got {self.window!r}")
            if self.causal is None:
                raise ValueError("window: a sliding window needs causal='upper_left' or 'lower_right'")
        if self.key_padding is not None:
            check_tensor("key_padding", self.key_padding)
            if self.key_padding.dtype != torch.bool:
                raise TypeError(
                    f"key_padding: expected a bool tensor (True at real keys), got {self.key_padding.dtype}"
                )
        if self.dense is not None:
            check_tensor("dense", self.dense)

    # --- geometry -----------------------------------------------------------------------------------------
    def offset(self, T: int, S: int) -> int:
        """The position of query 0: 0 top-left, ``S - T`` bottom-right."""
        return S - T if self.causal == "lower_right" else 0

    def allows_all(self, T: int, S: int) -> bool:
        """True when nothing is masked for these lengths (e.g. one query after a cache, bottom-right)."""
        if self.key_padding is not None or self.dense is not None:
            return False
        if self.causal is None:
            return True
        lo, hi = self.key_range(0, T, T, S)
        return T == 1 and lo == 0 and hi == S

    def key_range(self, i0: int, i1: int, T: int, S: int) -> tuple[int, int]:
        """Keys ``[lo, hi)`` that some query of ``[i0, i1)`` may see under causal/window (others are skipped)."""
        if self.causal is None:
            return 0, S
        off = self.offset(T, S)
        hi = min(S, i1 - 1 + off + 1)  # the last query sees keys up to its own position
        lo = 0 if self.window is None else max(0, i0 + off - self.window)
        return lo, max(lo, hi)

    # --- materialization ----------------------------------------------------------------------------------
    def tile(self, i0: int, i1: int, j0: int, j1: int, T: int, S: int, device) -> tuple[Tensor | None, Tensor | None]:
        """The tile of queries ``[i0, i1)`` x keys ``[j0, j1)``: ``(allowed, bias)``, each broadcastable to
        ``(..., i1 - i0, j1 - j0)`` or None: ``allowed`` bool (False = masked), ``bias`` a float mask to add."""
        allowed = None
        if self.causal is not None:
            off = self.offset(T, S)
            straddles = j1 - 1 > i0 + off  # some key of the tile is after some query
            cut = self.window is not None and j0 < i1 - 1 + off - self.window  # some key left of some window
            if straddles or cut:
                pos = torch.arange(i0, i1, device=device).unsqueeze(1) + off  # (bq, 1): query positions
                cols = torch.arange(j0, j1, device=device)  # (bk,)
                allowed = cols <= pos  # (bq, bk): key j <= p_i
                if self.window is not None:
                    allowed = allowed & (cols >= pos - self.window)  # p_i - w <= j
        if self.key_padding is not None:
            pad = self.key_padding[..., j0:j1].unsqueeze(-2)  # (..., 1, bk)
            allowed = pad if allowed is None else allowed & pad
        bias = None
        if self.dense is not None:
            d = self.dense.expand(*self.dense.shape[:-2], T, S)[..., i0:i1, j0:j1]  # a view: no (T, S) copy
            if d.dtype == torch.bool:
                allowed = d if allowed is None else allowed & d
            else:
                bias = d
        return allowed, bias

    def bias(self, T: int, S: int, like: Tensor) -> Tensor | None:
        """The whole mask in additive form ``(..., T, S)`` (0 allowed, -inf masked; a float mask added), in
        ``like``'s dtype, or None when nothing is masked. O(T S): only for implementations that hold the scores."""
        if self.allows_all(T, S):
            return None
        allowed, extra = self.tile(0, T, 0, S, T, S, like.device)
        out = None if allowed is None else additive_mask(allowed, like)
        if extra is not None:
            out = extra if out is None else out + extra
        return out

    def dense_for_torch(self, T: int, S: int, like: Tensor) -> tuple[Tensor | None, bool]:
        """``(attn_mask, is_causal)`` for ``torch.nn.functional.scaled_dot_product_attention``, the smallest that
        says the same: its own ``is_causal`` for a top-left triangle, a ``(..., 1, S)`` mask for padding alone,
        otherwise one dense mask (torch's kernel takes one mask)."""
        if self.allows_all(T, S):
            return None, False
        plain_causal = self.causal is not None and self.window is None and self.offset(T, S) == 0
        if plain_causal and self.key_padding is None and self.dense is None:
            return None, True
        if self.causal is None and self.dense is None:
            return self.key_padding.unsqueeze(-2), False  # (..., 1, S): broadcast over the queries
        allowed, extra = self.tile(0, T, 0, S, T, S, like.device)
        if extra is None:
            return allowed, False
        return (extra if allowed is None else additive_mask(allowed, like) + extra), False

    def to_float(self) -> AttentionMask:
        """The same mask with a float ``dense`` part in float32 (for computing low precision in float32)."""
        if self.dense is None or self.dense.dtype == torch.bool:
            return self
        return replace(self, dense=self.dense.float())

    def check(self, batch: tuple[int, ...], T: int, S: int, dtype: torch.dtype) -> None:
        """Dtypes and shapes against the call: ``key_padding`` broadcasts to ``(*batch, S)``, the dense mask
        (named ``attn_mask`` in errors, as the user gave it) to ``(*batch, T, S)``."""
        if self.dense is not None and self.dense.dtype not in (torch.bool, dtype):
            raise TypeError(f"attn_mask: expected dtype torch.bool or {dtype} (query's), got {self.dense.dtype}")
        for name, x, want in (
            ("key_padding", self.key_padding, (*batch, S)),
            ("attn_mask", self.dense, (*batch, T, S)),
        ):
            if x is None:
                continue
            try:
                full = broadcast_shapes(x.shape, want)
            except ValueError:
                full = None
            if full != want:
                raise ValueError(f"{name}: expected a shape that broadcasts to {want}, got {shape_str(x)}")


def as_mask(attn_mask: Tensor | AttentionMask | None, is_causal: bool) -> AttentionMask | None:
    """torch's two arguments as one :class:`AttentionMask` (``is_causal``: top-left, as torch), or None."""
    if isinstance(attn_mask, AttentionMask):
        if is_causal:
            raise ValueError("attn_mask: expected None when is_causal=True (give one or the other)")
        return attn_mask
    if is_causal:
        if attn_mask is not None:
            raise ValueError("attn_mask: expected None when is_causal=True (give one or the other)")
        return AttentionMask(causal="upper_left")
    return None if attn_mask is None else AttentionMask(dense=check_tensor("attn_mask", attn_mask))


def additive_mask(mask: Tensor, like: Tensor) -> Tensor:
    """A bool mask (True = may attend) as 0 / -inf in ``like``'s dtype; a float mask is returned as it is."""
    if mask.dtype != torch.bool:
        return mask
    return torch.zeros(mask.shape, dtype=like.dtype, device=mask.device).masked_fill(~mask, float("-inf"))
