"""The words of ``experts``: claim, setup, summary and headline, filled from the result."""

from __future__ import annotations

from typing import Any

from attnlab.experiments.base import Words
from attnlab.experiments.words import closing, fill, spread, table

TITLE = "Mixture of experts: more parameters at the same compute per token"
CLAIM = (
    "A mixture of experts lowers the loss at equal compute per token by adding parameters: each token uses k of "
    "E expert feed-forward networks (Mixtral: 47B parameters in all, 13B active per token)."
)
SOURCE = "Shazeer et al. 2017; Fedus et al. 2021 (Switch Transformer); Jiang et al. 2024 (Mixtral, Table 1)"
MAIN_FIGURE = "loss"

SETUP = """
attnlab GPT, {cfg.n_layer} layers, C={cfg.n_embd}, {cfg.n_head} heads, context {cfg.block_size}; the dense
GELU feed-forward network (4C wide) against mixtures of E in {cfg.experts} GELU experts, each 4C/{cfg.top_k} wide,
top-{cfg.top_k} routing (Mixtral's softmax over the top k), the Switch load-balancing loss (weight 0.01 per layer)
in training, no capacity limit. Each model trained by the attnlab Trainer for {cfg.train.max_iters} iterations at batch
{cfg.batch_size} (AdamW, lr {cfg.train.lr:g} -> {cfg.train.min_lr:g}, {cfg.train.warmup_iters} warm-up, weight decay
{cfg.train.weight_decay:g}), seeds {d[seeds]} (the same batches and initialisation stream for every E), on
char-level Shakespeare (first 90% train, last 10% validate); validation cross-entropy over {cfg.train.eval_iters}
batches at the end. FLOPs per token counted by torch.utils.flop_counter on one forward; the router's load on
{cfg.balance_batches} validation batches after training. Mixtral's counts from its Table 1 configuration.
Measured on {r[device_name]}.
"""


def setup(cfg: Any, r: dict[str, Any]) -> str:
    return fill(SETUP, cfg, r)


def summary(cfg: Any, r: dict[str, Any]) -> str:
    m, d = r["metrics"], r["data"]
    rows = []
    for E in cfg.experts:
        losses = d["val_loss"][str(E)]
        loss = f", validation loss {m[f'val_loss/E={E}']:.3f}" if losses else ""
        seeds = f" (seeds {spread(losses)})" if len(losses) > 1 else ""
        balance = f", router max load {m[f'router_max_over_share/E={E}']:.2f}x its share" if E > 1 and losses else ""
        counted = f"E={E}: {m[f'params_total/E={E}']:,} parameters, {m[f'params_active/E={E}']:,} active"
        rows.append(counted + loss + seeds + balance)
    top = cfg.experts[-1]
    parts = [
        "; ".join(rows) + ".",
        f"FLOPs per token differ by at most {100 * m['flops_spread']:.2f}% across E (the router's share): the "
        f"compute is equal. E={top} holds {m[f'total_over_active/E={top}']}x its active parameters; Mixtral 8x7B, "
        f"counted from its configuration, {m['mixtral_total'] / 1e9:.1f}B total and {m['mixtral_active'] / 1e9:.1f}B "
        f"active ({m['total_over_active/mixtral']}x; the paper: 47B and 13B).",
    ]
    if cfg.top_k in cfg.experts:
        parts.append(
            f"E={cfg.top_k} uses every expert for every token: it has the dense model's parameters (a control)."
        )
    if not cfg.seeds:
        parts.append(
            "The models were not trained here: losses that separate from the seeds' spread take minutes of training "
            "on a CPU, more than this profile's budget (run it with --profile full)."
        )
    held_text = (
        "The claim held: every mixture with more parameters than the dense model reached a lower loss, the lower "
        "the more experts."
    )
    return " ".join(parts) + " " + closing(r["held"], d["verdict"], held_text)


HEADLINE = """
validation loss, E = <experts> | <losses>
parameters total / active at E = <top> | {m[params_total/E=<top>]:,} / {m[params_active/E=<top>]:,}
FLOPs per token, largest difference across E | {m[flops_spread]:.2%}
router max load / fair share at E = <top> | {m[router_max_over_share/E=<top>]}
Mixtral 8x7B total / active (from its configuration) | {m[mixtral_total]:,} / {m[mixtral_active]:,}
"""


def headline(cfg: Any, r: dict[str, Any]) -> list[tuple[str, Any]]:
    m = r["metrics"]
    losses = " / ".join(f"{m[f'val_loss/E={E}']:.3f}" for E in cfg.experts) if cfg.seeds else "not trained"
    return table(HEADLINE, cfg, r, experts=" / ".join(map(str, cfg.experts)), losses=losses, top=cfg.experts[-1])


WORDS = Words(setup, summary, headline)
