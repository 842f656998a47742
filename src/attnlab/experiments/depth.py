r"""Experiment ``depth`` (claim C8, seed 002 §4.3): composability. Transformer blocks stack: the parameter count
grows linearly with the number of blocks, and the loss improves with size.

Parameters. A :class:`attnlab.models.GPT` of depth L at width C, vocabulary V and context ``block_size``
holds, with biases (the output head is tied to the token embedding, so it adds nothing):

.. math::
    N(L) = \underbrace{V C + \mathit{block\_size}\, C + 2C}_{\text{embeddings, final LayerNorm}}
           + L \underbrace{(12 C^2 + 13 C)}_{\text{one block}}, \qquad
    12C^2 + 13C = \underbrace{4C^2 + 4C}_{W^{Q,K,V,O}} + \underbrace{8C^2 + 5C}_{\text{FFN } C \to 4C \to C}
                  + \underbrace{4C}_{2\ \text{LayerNorms}}

Measured: the real models' counts for every L, the least-squares line through them (slope = parameters per
block, intercept = what does not depend on depth), checked to pass exactly through every point (integer
arithmetic: :func:`exact_line`) and to equal the formula above.

Loss. Every depth is trained with the same budget (iterations, batch, context, learning-rate schedule, seed) on
char-level Shakespeare (the built-in corpus, or its first ``text_chars`` characters; 90/10 train/validation
split, :class:`attnlab.data.text.CharCorpus`) by the project's :class:`~attnlab.train.loop.Trainer`; the
validation loss at the end, against the non-embedding parameter count ``L (12 C^2 + 13 C)`` (Kaplan et al. 2020
count parameters so), and the fitted slope of log loss on log parameters, the exponent of a power law
``loss ~ N^slope`` (the shape of a scaling curve; a negative slope: bigger is better). Same iterations is not
the same compute: a block costs the same in every layer, so the deeper model spends L times the FLOPs of one
block per token; the seconds of each run are reported with it. A small budget can leave deep models
under-trained: whatever the order of the losses, it is reported as measured.

In development the quick profile (C=64, 400 iterations) held in seeds 0-2: each doubling of depth lowered the
validation loss by 0.01-0.02 nats (2.52 -> 2.48 from L=1 to L=8 in seed 0), a log-log slope of about -0.009, a
very shallow curve at this budget. On the tiny budget (150 iterations) the deepest model beat the shallowest in
every seed tried (0-4), but the losses fell monotonically in only two of the five.
"""

from __future__ import annotations

import math
import sys
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from itertools import pairwise
from typing import Any, ClassVar

import torch

from attnlab._checks import resolve_device
from attnlab.data.text import CharCorpus, shakespeare_text
from attnlab.experiments.base import ExperimentConfig, ExperimentSpec
from attnlab.experiments.fitting import loglog_slope
from attnlab.models.gpt import GPT, GPTConfig
from attnlab.train.loop import TrainConfig, Trainer


@dataclass(frozen=True)
class Config(ExperimentConfig):
    """Depths at one width, and the training budget every depth gets (defaults: the full profile).

    ``held`` needs both: the parameter count exactly linear in depth (every point on the fitted line, slope and
    intercept equal to the formula) and the validation loss decreasing with size (each deeper model's loss
    below that of the next shallower one).
    """

    depths: tuple[int, ...] = (1, 2, 4, 8)
    n_embd: int = 128
    n_head: int = 4
    block_size: int = 64
    batch_size: int = 12
    train_steps: int = 2000
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup_steps: int = 100
    eval_iters: int = 100  # batches of each split per evaluation
    evals: int = 4  # evaluations along training (the last at the end)
    text_chars: int = 0  # 0: the whole built-in corpus; else its first text_chars characters

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "full": {},
        "quick": {"n_embd": 64, "train_steps": 400, "warmup_steps": 40, "eval_iters": 20, "text_chars": 1_000_000},
        "tiny": {
            "depths": (1, 2, 4),
            "n_embd": 32,
            "n_head": 2,
            "block_size": 32,
            "train_steps": 150,
            "warmup_steps": 15,
            "lr": 3e-3,
            "min_lr": 3e-4,
            "eval_iters": 10,
            "evals": 2,
            "text_chars": 200_000,
        },
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        d = self.depths
        if (
            len(d) < 2
            or any(isinstance(x, bool) or not isinstance(x, int) or x < 1 for x in d)
            or list(d) != sorted(set(d))
        ):
            raise ValueError(f"depths: expected at least two strictly increasing integers >= 1, got {d!r}")
        for name, minimum in (
            ("n_embd", 1),
            ("n_head", 1),
            ("block_size", 1),
            ("batch_size", 1),
            ("train_steps", 1),
            ("warmup_steps", 0),
            ("eval_iters", 1),
            ("evals", 1),
            ("text_chars", 0),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd: expected a multiple of n_head={self.n_head}, got {self.n_embd}")
        if self.evals > self.train_steps:
            raise ValueError(f"evals: expected at most train_steps={self.train_steps}, got {self.evals}")
        if self.warmup_steps >= self.train_steps:
            raise ValueError(
                f"warmup_steps: expected fewer than train_steps={self.train_steps}, got {self.warmup_steps}"
            )
        if not isinstance(self.lr, (int, float)) or not 0 < self.lr < math.inf:
            raise ValueError(f"lr: expected a positive finite number, got {self.lr!r}")
        if not isinstance(self.min_lr, (int, float)) or not 0 <= self.min_lr <= self.lr:
            raise ValueError(f"min_lr: expected a number in [0, lr={self.lr}], got {self.min_lr!r}")


def block_params(C: int) -> int:
    """Parameters of one pre-norm block with biases: attention ``4C^2 + 4C``, FFN ``8C^2 + 5C``, norms ``4C``."""
    return 12 * C * C + 13 * C


def fixed_params(vocab_size: int, block_size: int, C: int) -> int:
    """Parameters that do not depend on depth: token and position embeddings, final LayerNorm (tied head)."""
    return vocab_size * C + block_size * C + 2 * C


def exact_line(xs: list[int], ys: list[int]) -> tuple[Fraction, Fraction, list[Fraction]]:
    """Least-squares ``y = slope x + intercept`` in exact rational arithmetic; returns slope, intercept and the
    residuals ``y - (slope x + intercept)`` (all zero when the points lie on one line)."""
    n = len(xs)
    mx, my = Fraction(sum(xs), n), Fraction(sum(ys), n)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)
    intercept = my - slope * mx
    return slope, intercept, [y - (slope * x + intercept) for x, y in zip(xs, ys, strict=True)]


def model_config(cfg: Config, depth: int, vocab_size: int) -> GPTConfig:
    return GPTConfig(
        vocab_size=vocab_size, block_size=cfg.block_size, n_layer=depth, n_head=cfg.n_head, n_embd=cfg.n_embd
    )


def load_corpus(cfg: Config) -> CharCorpus:
    text = shakespeare_text()
    corpus = CharCorpus(text[: cfg.text_chars] if cfg.text_chars else text)
    corpus.check_block_size(cfg.block_size)
    return corpus


def _train(cfg: Config, depth: int, corpus: CharCorpus, device: str) -> dict[str, Any]:
    torch.manual_seed(cfg.seed)  # the same initialisation stream for every depth
    model = GPT(model_config(cfg, depth, corpus.vocab_size))
    train_cfg = TrainConfig(
        max_iters=cfg.train_steps,
        lr=cfg.lr,
        min_lr=cfg.min_lr,
        warmup_iters=cfg.warmup_steps,
        eval_interval=max(1, cfg.train_steps // cfg.evals),
        eval_iters=cfg.eval_iters,
        ckpt_interval=cfg.train_steps,
        seed=cfg.seed,  # the same batches for every depth
        device=device,
    )

    def get_batch(split: str, gen: torch.Generator):
        return corpus.batch(split, cfg.batch_size, cfg.block_size, gen)

    with tempfile.TemporaryDirectory(prefix="attnlab-depth-") as run_dir:  # the Trainer's checkpoint goes here
        fit = Trainer(model, train_cfg, get_batch, run_dir, progress=sys.stderr.isatty()).fit()
    last = fit["history"][-1]
    return {
        "val_loss": last["val"],
        "train_loss": last["train"],
        "seconds": fit["seconds"],
        "history": [{"iter": h["iter"], "train": h["train"], "val": h["val"]} for h in fit["history"]],
    }


def run(cfg: Config) -> dict[str, Any]:
    device = resolve_device(cfg.device)
    corpus = load_corpus(cfg)
    V, C = corpus.vocab_size, cfg.n_embd

    # parameters: the real models' counts against depth, and the exact line through them
    counts = []
    for depth in cfg.depths:
        model = GPT(model_config(cfg, depth, V))
        counts.append(sum(p.numel() for p in model.parameters()))
    slope, intercept, residuals = exact_line(list(cfg.depths), counts)
    formula = {"per_block": block_params(C), "fixed": fixed_params(V, cfg.block_size, C)}
    exact = all(r == 0 for r in residuals) and slope == formula["per_block"] and intercept == formula["fixed"]
    non_embedding = [depth * block_params(C) for depth in cfg.depths]

    runs = [_train(cfg, depth, corpus, device) for depth in cfg.depths]
    val = [r["val_loss"] for r in runs]
    decreasing = all(b < a for a, b in pairwise(val))
    exponent = loglog_slope(non_embedding, val)
    verdict = {"params_linear_in_depth": exact, "loss_decreases_with_params": decreasing}
    held = all(verdict.values())

    m: dict[str, Any] = {
        "params_per_block": int(slope) if slope.denominator == 1 else float(slope),
        "params_fixed": int(intercept) if intercept.denominator == 1 else float(intercept),
        "params_per_block_formula": formula["per_block"],
        "params_fixed_formula": formula["fixed"],
        "max_abs_residual": float(max(abs(r) for r in residuals)),
        "loglog_slope_loss_vs_params": None if exponent is None else round(exponent, 4),
        "vocab_size": V,
    }
    for depth, n, r in zip(cfg.depths, counts, runs, strict=True):
        m[f"params/L={depth}"] = n
        m[f"val_loss/L={depth}"] = round(r["val_loss"], 4)
        m[f"seconds/L={depth}"] = round(r["seconds"], 2)
    return {
        "held": held,
        "metrics": m,
        "setup": _setup(cfg, V, len(corpus.splits["train"]) + len(corpus.splits["val"])),
        "summary": _summary(cfg, m, val, exact, decreasing, held),
        "data": {
            "depths": list(cfg.depths),
            "params": counts,
            "non_embedding_params": non_embedding,
            "fit": {"slope": float(slope), "intercept": float(intercept)},
            "val_loss": val,
            "train_loss": [r["train_loss"] for r in runs],
            "seconds": [r["seconds"] for r in runs],
            "history": [r["history"] for r in runs],
            "loglog_slope": exponent,
            "verdict": verdict,
        },
    }


def _setup(cfg: Config, V: int, chars: int) -> str:
    return (
        f"attnlab GPT (pre-norm blocks, GELU FFN 4C, learned positions, tied head, biases) at width "
        f"C={cfg.n_embd}, {cfg.n_head} heads, context {cfg.block_size}, depths L in {list(cfg.depths)}. Parameters: "
        f"the models' own counts against L, least-squares line in exact arithmetic. Loss: each depth trained by "
        f"the attnlab Trainer for the same {cfg.train_steps} iterations at batch {cfg.batch_size} (AdamW, lr "
        f"{cfg.lr:g} -> {cfg.min_lr:g}, {cfg.warmup_steps} warm-up, weight decay 0.1, clip 1.0, seed {cfg.seed}: "
        f"the same batches and initialisation stream) on char-level Shakespeare ({chars:,} characters, vocabulary "
        f"{V}; first 90% train, last 10% validate); validation loss over {cfg.eval_iters} batches at the end, "
        f"against non-embedding parameters L(12C^2 + 13C); log-log least-squares slope."
    )


def _summary(cfg: Config, m: dict[str, Any], val: list[float], exact: bool, decreasing: bool, held: bool) -> str:
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
        f"Validation loss after the same {cfg.train_steps} iterations: {losses} (seconds of training: {secs}); "
        f"log-log slope of loss on non-embedding parameters {m['loglog_slope_loss_vs_params']}.",
    ]
    if held:
        parts.append("The claim held: stacking blocks adds a constant number of parameters per block, and each "
                     "deeper model reached a lower validation loss on the same budget.")  # fmt: skip
    else:
        failed = []
        if not exact:
            failed.append("the parameter count is not exactly linear in depth")
        if not decreasing:
            worse = [f"L={b} ({vb:.3f}) >= L={a} ({va:.3f})" for (a, va), (b, vb) in
                     pairwise(zip(cfg.depths, val, strict=True)) if vb >= va]  # fmt: skip
            failed.append("the loss does not fall with every step in size on this budget: " + ", ".join(worse))
        parts.append("The claim did not hold here: " + "; ".join(failed) + ". Reported as measured.")
    return " ".join(parts)


def plot(result: dict[str, Any]) -> dict[str, Any]:
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FormatStrFormatter

    data = result["data"]
    depths, params = data["depths"], data["params"]
    fig, ax = plt.subplots(figsize=(5.6, 4.2))
    ax.plot(depths, params, "o", color="tab:blue", label="model's parameter count")
    xs = [0, max(depths)]
    fit = data["fit"]
    ax.plot(xs, [fit["slope"] * x + fit["intercept"] for x in xs], "--", color="tab:red",
            label=f"fit: {fit['slope']:,.0f} L + {fit['intercept']:,.0f}")  # fmt: skip
    ax.set_xlabel("depth L (blocks)")
    ax.set_ylabel("parameters")
    ax.set_title("Parameters grow linearly with depth")
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)

    fig2, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    n, val = data["non_embedding_params"], data["val_loss"]
    a.loglog(n, val, "o-", color="tab:blue")
    a.yaxis.set_major_formatter(FormatStrFormatter("%.2f"))  # plain numbers on a narrow log range
    a.yaxis.set_minor_formatter(FormatStrFormatter("%.2f"))
    for d, x, y in zip(depths, n, val, strict=True):
        a.annotate(f"L={d}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    slope = data["loglog_slope"]
    a.set_xlabel("non-embedding parameters")
    a.set_ylabel("validation loss (nats/char)")
    a.set_title(f"Loss against size, same budget (log-log slope {slope:.3f})" if slope is not None else "Loss")
    a.grid(True, which="both", alpha=0.3)
    for d, hist in zip(depths, data["history"], strict=True):
        b.plot([h["iter"] for h in hist], [h["val"] for h in hist], "o-", label=f"L={d}")
    b.set_xlabel("iteration")
    b.set_ylabel("validation loss")
    b.set_title("Validation loss during training")
    b.legend(fontsize=8)
    b.grid(True, alpha=0.3)
    return {"params": fig, "loss": fig2}


SPEC = ExperimentSpec(
    name="depth",
    title="Stacking blocks: parameters grow linearly, loss improves with size",
    claim=(
        "Transformer blocks compose: stacking L blocks scales the parameter count linearly in L, and the loss "
        "improves as the model grows."
    ),
    source="Seed 002 (chapter 4), section 4.3; Kaplan et al. 2020 for the power-law shape",
    config_cls=Config,
    run=run,
    plot=plot,
)

__all__ = ["SPEC", "Config", "block_params", "exact_line", "fixed_params", "load_corpus", "model_config", "plot", "run"]
