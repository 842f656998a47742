"""The section's three token mixers in one GPT, at matched size: softmax attention, linear attention
(Katharopoulos et al. 2020) and a selective state-space layer (Mamba, Gu & Dao 2023).

``decode-cost`` and ``recall`` compare the mixers with everything else equal: the same
:class:`~attnlab.models.GPT` (embeddings, pre-norm blocks, GELU FFN, tied head), depth, heads and position
table; only ``GPTConfig.mixer`` differs, and the width where it must. Linear attention has multi-head
attention's projections, so at the same width its model has exactly attention's parameters. Mamba's mixer (with
``expand = 2``) holds about ``6 C^2`` parameters against attention's ``4 C^2``, so its width is the multiple of
``n_head`` whose whole model has the parameter count closest to attention's (:func:`matched_width`; 112 for
C = 128 and N = 16).

What each mixer carries from token to token (:func:`state_numbers`): attention's KV cache, ``2 C`` numbers per
position per layer, growing with the context; linear attention's ``S`` and ``z`` (``nh (hs^2 + hs)`` per layer)
and Mamba's scan and convolution state (``D_in (N + K - 1)`` per layer), fixed whatever the context.
"""

from __future__ import annotations

import torch

from attnlab.models.gpt import GPT
from attnlab.models.gpt_config import GPTConfig

MIXERS = ("attention", "linear", "ssm")


def gpt_config(mixer: str, n_embd: int, **fields) -> GPTConfig:
    """A GPTConfig with ``mixer`` at width ``n_embd``; ``fields`` are the other GPTConfig fields (shared)."""
    return GPTConfig(mixer=mixer, n_embd=n_embd, **fields)


def count(cfg: GPTConfig) -> int:
    """The parameters of a GPT built from ``cfg`` (the position table included)."""
    return sum(p.numel() for p in GPT(cfg).parameters())


def matched_width(mixer: str, reference: int, **fields) -> int:
    """The width, a multiple of ``n_head``, at which a GPT with ``mixer`` (and ``fields``) has the parameter count
    closest to ``reference`` (ties: the smaller width). The count grows with the width: bisection."""
    step = fields["n_head"]
    lo, hi = 1, 2
    while count(gpt_config(mixer, hi * step, **fields)) < reference:
        lo, hi = hi, 2 * hi
    while hi - lo > 1:  # invariant: count(lo * step) < reference <= count(hi * step), or lo = 1
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if count(gpt_config(mixer, mid * step, **fields)) < reference else (lo, mid)
    gaps = {k: abs(count(gpt_config(mixer, k * step, **fields)) - reference) for k in (lo, hi)}
    return step * min(gaps, key=lambda k: (gaps[k], k))


def matched_configs(mixers: tuple[str, ...], n_embd: int, **fields) -> dict[str, GPTConfig]:
    """One config per mixer: attention and linear attention at ``n_embd``, the others at the width whose model
    has the parameter count closest to attention's at ``n_embd``."""
    reference = count(gpt_config("attention", n_embd, **fields))
    same = ("attention", "linear")
    return {m: gpt_config(m, n_embd if m in same else matched_width(m, reference, **fields), **fields) for m in mixers}


@torch.no_grad()
def state_numbers(model: GPT, context: int) -> int:
    """The numbers one sequence's decoding memory holds in the first layer after ``context`` tokens: the cache's
    bytes over 4 (float32), read from a real prefill (a cache sized to the context)."""
    caches = [block.new_cache(context) for block in model.blocks]
    device = next(model.parameters()).device
    model(torch.zeros(1, context, dtype=torch.long, device=device), caches=caches)
    return caches[0].nbytes() // 4


__all__ = ["MIXERS", "count", "gpt_config", "matched_configs", "matched_width", "state_numbers"]
