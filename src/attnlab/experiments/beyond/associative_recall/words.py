"""The words of ``recall``: claim, setup, summary and headline, filled from the result."""

from __future__ import annotations

from typing import Any

from attnlab.experiments.base import Words
from attnlab.experiments.beyond.decode_cost.words import NAMES
from attnlab.experiments.words import closing, fill, table

TITLE = "The bottleneck returns: a fixed-size state recalls fewer pairs than attention"
CLAIM = (
    "At the same model size, softmax attention keeps recalling key-value pairs as their number grows, while models "
    "with a fixed-size state (linear attention, a selective state-space model) fall off once the pairs outgrow "
    "their state."
)
SOURCE = "Arora et al. 2023 (Zoology, section 3 and Figure 2: multi-query associative recall)"
MAIN_FIGURE = "accuracy"

SETUP = """
Multi-query associative recall with one token per pair: D key-value pairs in context (D in {cfg.pairs}; {cfg.n_keys}
keys and {cfg.n_values} values, distinct within an example), then each key queried once in a random order; the
model must name its value (vocabulary <vocab> tokens). attnlab GPT, {cfg.n_layer}
layers, {cfg.n_head} heads, one model per mixer at matched parameters: <models>. Each trained by the attnlab Trainer
for {cfg.train.max_iters} iterations at batch {cfg.batch_size} of fresh examples (D drawn per batch; Adam at a
constant {cfg.train.lr:g}, no weight decay; the same batches and initialisation stream for every mixer), seeds
{d[seeds]}; accuracy on {cfg.eval_examples} held-out examples per D (the same for every mixer). Measured on
{r[device_name]}.
"""


def setup(cfg: Any, r: dict[str, Any]) -> str:
    sizes = r["data"]["sizes"]
    models = "; ".join(
        f"{NAMES[k]} C={s['width']} ({s['params']:,} parameters, {s['state'][0]:,} -> {s['state'][-1]:,} numbers "
        f"of decoding memory per layer from D={cfg.pairs[0]} to {cfg.pairs[-1]})"
        for k, s in sizes.items()
    )
    vocab = cfg.n_keys + cfg.n_values + cfg.n_keys * cfg.n_values
    return fill(SETUP, cfg, r, models=models, vocab=vocab)


def summary(cfg: Any, r: dict[str, Any]) -> str:
    d = r["data"]
    if not d["seeds"]:
        return (
            "Only the models' sizes were measured here: training them to recall takes minutes on a CPU, more than "
            "this profile's budget (run it with --profile full). " + closing(None, {})
        )
    parts = []
    for mixer, row in d["accuracy_mean"].items():
        accs = ", ".join(f"D={D}: {a:.2f}" for D, a in zip(d["pairs"], row, strict=True))
        parts.append(f"{NAMES[mixer]} {accs}.")
    parts.append(f"(Answering with a random value of the context would score 1/D; guessing, {d['chance']:.3f}.)")
    last = d["pairs"][-1]
    gains = ", ".join(f"{NAMES[k]} {r['metrics'][f'late_gain/{k}/D={last}']:+.2f}" for k in d["accuracy_mean"])
    parts.append(
        f"Over the last quarter of training the accuracy at D={last} changed by {gains} (near zero: the model had "
        "stopped improving; a large rise would say the budget, not the state, limited it)."
    )
    held_text = (
        f"The claim held: attention recalled at least {cfg.recall_min:.0%} at every D, while each fixed-state model "
        f"at D={cfg.pairs[-1]} fell at least {cfg.gap:.0%} below it and {cfg.drop:.0%} below its own recall at "
        f"D={cfg.pairs[0]}."
    )
    return " ".join(parts) + " " + closing(r["held"], d["verdict"], held_text)


HEADLINE = """
accuracy at D = <last>: <names> | <last_acc>
accuracy at D = <first>: <names> | <first_acc>
parameters: <names> | <params>
decoding memory per layer at D = <last> (numbers): <names> | <state>
"""


def headline(cfg: Any, r: dict[str, Any]) -> list[tuple[str, Any]]:
    d = r["data"]
    mean, sizes = d["accuracy_mean"], d["sizes"]
    join = " / ".join
    rows = table(
        HEADLINE,
        cfg,
        r,
        names=join(NAMES[k] for k in sizes),
        first=cfg.pairs[0],
        last=cfg.pairs[-1],
        last_acc=join(f"{mean[k][-1]:.2f}" for k in mean) if mean else "not trained",
        first_acc=join(f"{mean[k][0]:.2f}" for k in mean) if mean else "not trained",
        params=join(f"{s['params']:,}" for s in sizes.values()),
        state=join(f"{s['state'][-1]:,}" for s in sizes.values()),
    )
    return rows


WORDS = Words(setup, summary, headline)
