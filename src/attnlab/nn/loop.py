"""The loop over time shared by every recurrent layer, and its handling of variable lengths.

Variable lengths follow torch's packed-sequence semantics: a step past a sequence's length leaves its state
unchanged (so the final state is the one at its last valid step; in the reverse direction the state stays at
h0 until the sequence's last valid step) and its output is zero.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

State = tuple[Tensor, ...]
StepFn = Callable[[Tensor, State], State]


class TimeMasks:
    """Which sequences are still running at each step, computed once per forward.

    ``at(t)`` is ``None`` when every sequence is valid at t (no masking needed) or a ``(B, 1)`` bool tensor;
    ``t_end = max(lengths)``: steps from there on are skipped entirely (outputs zero, state unchanged).
    """

    def __init__(self, lengths: list[int] | None, T: int, device: torch.device) -> None:
        self.T = T
        if lengths is None:
            self.t_end, self.min_len, self.len_t = T, T, None
        else:
            self.t_end, self.min_len = max(lengths), min(lengths)
            self.len_t = torch.tensor(lengths, device=device)  # (B,)

    def at(self, t: int) -> Tensor | None:
        if self.len_t is None or t < self.min_len:
            return None
        return (t < self.len_t).unsqueeze(1)  # (B, 1)

    def order(self, reverse: bool) -> range:
        return range(self.t_end - 1, -1, -1) if reverse else range(self.t_end)

    def finish(self, out: Tensor) -> Tensor:
        """Pad ``(t_end, B, H)`` outputs to T steps and zero every padded step: ``(T, B, H)``."""
        if self.t_end < self.T:
            out = torch.cat([out, out.new_zeros(self.T - self.t_end, *out.shape[1:])], 0)  # (T, B, H)
        if self.len_t is not None and self.min_len < self.T:
            valid = torch.arange(self.T, device=out.device).unsqueeze(1) < self.len_t  # (T, B)
            out = out * valid.unsqueeze(2).to(out.dtype)
        return out


def run_direction(
    step: StepFn, xw: Tensor, state: State, lengths: list[int] | None = None, reverse: bool = False
) -> tuple[Tensor, State]:
    """Run one direction of a recurrent layer over time, differentiated by autograd.

    Args:
        step: one time step, ``(xw_t (B, G*H), state) -> state``; ``state[0]`` is the output h.
        xw: the hoisted input projections ``(T, B, G*H)``.
        state: the initial state, a tuple of ``(B, ·)`` tensors.
        lengths: valid steps per sequence (Python ints), or None when all run T steps.
        reverse: run from the last step to the first (the backward direction of a bidirectional layer).

    Returns:
        outputs ``(T, B, H_out)`` and the final state.
    """
    masks = TimeMasks(lengths, xw.shape[0], xw.device)
    xs = xw.unbind(0)  # T x (B, G*H); unbind, not xw[t]: indexing makes each step's backward O(T)
    outs: list[Tensor] = [xw] * masks.t_end  # placeholders, each overwritten below
    for t in masks.order(reverse):
        new = step(xs[t], state)
        m = masks.at(t)
        if m is not None:  # ended sequences keep their state; in reverse, not-yet-started ones keep h0
            new = tuple(torch.where(m, n, s) for n, s in zip(new, state, strict=True))
        state = new
        outs[t] = state[0]
    return masks.finish(torch.stack(outs, 0)), state  # (T, B, H_out)
