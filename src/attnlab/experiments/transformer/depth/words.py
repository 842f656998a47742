"""The words of ``depth``: claim, setup, summary and headline, filled from the result."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from attnlab.experiments.base import Words
from attnlab.experiments.words import fill, table

TITLE = "Stacking blocks: parameters grow linearly, loss improves with size"
CLAIM = (
    "Transformer blocks compose: stacking L blocks scales the parameter count linearly in L, and the loss "
    "improves as the model grows."
)
SOURCE = "Seed 002 (chapter 4), section 4.3; Kaplan et al. 2020 for the power-law shape"
MAIN_FIGURE = "loss"


SETUP = """
attnlab GPT (pre-norm blocks, GELU FFN 4C, learned positions, tied head, biases) at width C={cfg.n_embd},
{cfg.n_head} heads, context {cfg.block_size}, depths L in {cfg.depths}. Parameters: the models' own counts against L,
least-squares line in exact arithmetic. Loss: each depth trained by the attnlab Trainer for the same
{cfg.train.max_iters} iterations at batch {cfg.batch_size} (AdamW, lr {cfg.train.lr:g} -> {cfg.train.min_lr:g},
{cfg.train.warmup_iters} warm-up, weight decay {cfg.train.weight_decay:g}, clip {cfg.train.grad_clip:g}, seed
{cfg.seed}: the same batches and initialisation stream) on char-level Shakespeare ({d[chars]:,} characters,
vocabulary {m[vocab_size]}; first 90% train, last 10% validate); validation loss over {cfg.train.eval_iters} batches
at the end, against non-embedding parameters L(12C^2 + 13C); log-log least-squares slope. Measured on
{r[device_name]}.
"""


def setup(cfg: Any, r: dict[str, Any]) -> str:
    return fill(SETUP, cfg, r)


def summary(cfg: Any, r: dict[str, Any]) -> str:
    m, val, held, verdict = r["metrics"], r["data"]["val_loss"], r["held"], r["data"]["verdict"]
    exact, decreasing = verdict["params_linear_in_depth"], verdict["loss_decreases_with_params"]
    losses = ", ".join(f"L={d}: {v:.3f}" for d, v in zip(cfg.depths, val, strict=True))
    secs = ", ".join(f"L={d}: {m[f'seconds/L={d}']:.1f}" for d in cfg.depths)
    parts = [
        f"Parameters against depth: {m['params_per_block']:,} per block and {m['params_fixed']:,} fixed "
        f"(embeddings and final LayerNorm) "
        + (
            "fit every depth exactly and equal the formula 12C^2 + 13C and VC + block_size C + 2C."
            if exact
            else f"do not fit exactly (largest residual {m['max_abs_residual']:g}) or differ from the formula "
            f"({m['params_per_block_formula']:,} and {m['params_fixed_formula']:,})."
        ),
        f"Validation loss after the same {cfg.train.max_iters} iterations: {losses} (seconds of training: {secs}); "
        f"log-log slope of loss on non-embedding parameters {m['loglog_slope_loss_vs_params']}.",
    ]
    if held:
        parts.append(
            "The claim held: stacking blocks adds a constant number of parameters per block, and each "
            "deeper model reached a lower validation loss on the same budget."
        )
    else:
        failed = []
        if not exact:
            failed.append("the parameter count is not exactly linear in depth")
        if not decreasing:
            worse = [
                f"L={b} ({vb:.3f}) >= L={a} ({va:.3f})"
                for (a, va), (b, vb) in pairwise(zip(cfg.depths, val, strict=True))
                if vb >= va
            ]
            failed.append("the loss does not fall with every step in size on this budget: " + ", ".join(worse))
        parts.append("The claim did not hold here: " + "; ".join(failed) + ". Reported as measured.")
    return " ".join(parts)


HEADLINE = """
parameters per block (formula 12C^2 + 13C) | {m[params_per_block]:,} ({m[params_per_block_formula]:,})
largest residual from the line | {m[max_abs_residual]:g}
validation loss, <depths> | <losses>
log-log slope of loss on parameters | {m[loglog_slope_loss_vs_params]}
"""


def headline(cfg: Any, r: dict[str, Any]) -> list[tuple[str, Any]]:
    losses = " / ".join(f"{r['metrics'][f'val_loss/L={d}']:.3f}" for d in cfg.depths)
    return table(HEADLINE, cfg, r, depths=" / ".join(f"L={d}" for d in cfg.depths), losses=losses)


WORDS = Words(setup, summary, headline)
