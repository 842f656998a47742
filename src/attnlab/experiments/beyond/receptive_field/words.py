"""The words of ``receptive-field``: claim, setup, summary and headline, filled from the result."""

from __future__ import annotations

from typing import Any

from attnlab.experiments.base import Words
from attnlab.experiments.beyond.receptive_field.config import MISTRAL
from attnlab.experiments.words import closing, fill, table

TITLE = "Sliding windows through layers: the receptive field grows by w per layer"
CLAIM = (
    "With a sliding window w, information reaches w (L - 1) + w = w L positions back through L layers, though each "
    "layer attends only w back (Mistral 7B: W = 4096 and 32 layers give about 131k tokens)."
)
SOURCE = (
    "The chapter's close (what comes after attention); Jiang et al. 2023, Mistral 7B, section 2; Beltagy et al. 2020, "
    "Longformer"
)
MAIN_FIGURE = "reach"


SETUP = """
attnlab GPTs with Mistral's block in miniature (width {cfg.n_embd}, {cfg.n_head} query heads sharing {cfg.n_kv_head}
kv heads, rotary positions, RMSNorm, SwiGLU, no biases), float64, random initialisation (seed {cfg.seed}), with a
sliding window w in {cfg.windows} (position p attends p - w .. p) and L in {cfg.depths} layers, on {d[length]} random
tokens. For each (w, L): one backward of u . logits at the last position (u random) to the input embeddings; the
gradient's norm at each distance back; reach = the farthest distance with a nonzero gradient, against w L. Control:
full causal attention, one layer. Measured on {r[device_name]}.
"""


def setup(cfg: Any, r: dict[str, Any]) -> str:
    return fill(SETUP, cfg, r)


def summary(cfg: Any, r: dict[str, Any]) -> str:
    m, verdict = r["metrics"], r["data"]["verdict"]
    rows = "; ".join(f"w={w}: " + ", ".join(str(m[f"reach/w={w}/L={L}"]) for L in cfg.depths) for w in cfg.windows)
    parts = [
        f"Reach (positions back) at L = {', '.join(map(str, cfg.depths))}: {rows}.",
        "Each is w L: the gradient was nonzero at every distance up to it and exactly zero beyond."
        if verdict["reach_is_w_L"] and verdict["every_position_within_reach"]
        else "Not every reach equals w L with every position inside it (see the data).",
        f"Full attention reached all {m['length'] - 1} earlier positions with one layer (reach {m['reach/full/L=1']}).",
        "The reach is a wiring fact; how much arrives is another: at L = "
        f"{cfg.depths[-1]} the gradient from the farthest position reached is "
        + ", ".join(f"{m[f'far_over_near/w={w}/L={cfg.depths[-1]}']:.1e}" for w in cfg.windows)
        + f" of the last position's own (w = {', '.join(map(str, cfg.windows))}; untrained weights), so the stack "
        "reaches far but, at least untrained, hears the far past faintly.",
        f"At Mistral 7B's sizes the same formula gives {MISTRAL['window']:,} x {MISTRAL['layers']} = "
        f"{m['mistral_reach']:,} tokens (the paper: about 131k), with a rolling cache of {MISTRAL['window']:,} "
        "positions per layer.",
        closing(r["held"], verdict, "Every part of the claim held."),
    ]
    return " ".join(parts)


HEADLINE = """
reach through <L> layers, w = <ws> | <reaches> (w L = <expected>)
reach per layer, w = <ws> | <per_layer>
full attention, 1 layer | {m[reach/full/L=1]} of {m[length]} positions back (all)
Mistral 7B, w L | {MISTRAL[window]:,} x {MISTRAL[layers]} = {m[mistral_reach]:,} tokens
"""


def headline(cfg: Any, r: dict[str, Any]) -> list[tuple[str, Any]]:
    m, L = r["metrics"], cfg.depths[-1]
    per_layer = " / ".join(f"{m[f'reach_per_layer/w={w}']:g}" for w in cfg.windows if f"reach_per_layer/w={w}" in m)
    return table(
        HEADLINE,
        cfg,
        r,
        L=L,
        ws=" / ".join(map(str, cfg.windows)),
        reaches=" / ".join(str(m[f"reach/w={w}/L={L}"]) for w in cfg.windows),
        expected=" / ".join(str(w * L) for w in cfg.windows),
        per_layer=per_layer or "one depth only",
        MISTRAL=MISTRAL,
    )


WORDS = Words(setup, summary, headline)
