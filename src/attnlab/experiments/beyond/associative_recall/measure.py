"""The measuring of ``recall``: the models' sizes and decoding memory, and, after the same training, each mixer's
multi-query associative recall against the number of key-value pairs (see the package docstring)."""

from __future__ import annotations

from typing import Any

import torch

from attnlab._checks import resolve_device
from attnlab.data.mqar import MQARBatch, mqar_batch, mqar_vocab
from attnlab.experiments.base import measured
from attnlab.experiments.beyond.mixers import matched_configs, state_numbers
from attnlab.experiments.training import one_thread, train
from attnlab.models.gpt import GPT, GPTConfig

# beside other experiments: it trains on one thread and reports accuracies, not times
SHARES_CORES = True


def configs(cfg: Any) -> dict[str, GPTConfig]:
    """One GPT config per mixer at matched parameters (a position table for the longest example)."""
    fields = {"vocab_size": mqar_vocab(cfg.n_keys, cfg.n_values).size, "block_size": 2 * max(cfg.pairs),
              "n_layer": cfg.n_layer, "n_head": cfg.n_head, "d_state": cfg.d_state}  # fmt: skip
    return matched_configs(cfg.mixers, cfg.n_embd, **fields)


def get_batch(cfg: Any):
    """The Trainer's ``get_batch(split, generator)``: fresh examples, D drawn from ``cfg.pairs`` per batch."""

    def batch(split: str, gen: torch.Generator):
        D = cfg.pairs[int(torch.randint(len(cfg.pairs), (1,), generator=gen))]
        b = mqar_batch(cfg.batch_size, D, n_keys=cfg.n_keys, n_values=cfg.n_values, generator=gen)
        return b.tokens, b.targets

    return batch


def held_out(cfg: Any, D: int, seed: int, device: str) -> MQARBatch:
    """The held-out examples with D pairs for ``seed``: the same for every mixer (their own generator)."""
    gen = torch.Generator().manual_seed(1_000_003 * (seed + 1) + D)
    return mqar_batch(cfg.eval_examples, D, n_keys=cfg.n_keys, n_values=cfg.n_values, generator=gen, device=device)


@torch.no_grad()
def accuracy(model: GPT, batch: MQARBatch) -> float:
    """The share of the queries whose value the model predicts (argmax at each query position)."""
    model.eval()
    asked = batch.targets >= 0  # (N, 2D)
    predicted = model.logits(batch.tokens).argmax(-1)  # (N, 2D)
    return (predicted[asked] == batch.targets[asked]).float().mean().item()


def sizes(cfg: Any, gpt_configs: dict[str, GPTConfig]) -> dict[str, dict[str, Any]]:
    """Per mixer: width, parameters, and the numbers one sequence's decoding memory holds per layer after each
    example's 2D tokens (attention's KV cache grows with D; the recurrent states do not)."""
    out = {}
    for mixer, c in gpt_configs.items():
        model = GPT(c)
        out[mixer] = {"width": c.n_embd, "params": sum(p.numel() for p in model.parameters()),
                      "state": [state_numbers(model, 2 * D) for D in cfg.pairs]}  # fmt: skip
    return out


def run(cfg: Any) -> dict[str, Any]:
    device = resolve_device(cfg.device)
    gpt_configs = configs(cfg)
    size = sizes(cfg, gpt_configs)
    acc: dict[str, list[list[float]]] = {m: [] for m in cfg.mixers}  # mixer -> seed -> D
    losses: dict[str, list[float]] = {m: [] for m in cfg.mixers}
    seconds: dict[str, list[float]] = {m: [] for m in cfg.mixers}
    curves: dict[str, list[list[list[float]]]] = {m: [] for m in cfg.mixers}  # mixer -> seed -> check
    with one_thread(device):
        for s in range(cfg.seeds):
            seed = cfg.seed + s
            for mixer, c in gpt_configs.items():
                torch.manual_seed(seed)
                model = GPT(c).to(device)
                tests = [held_out(cfg, D, seed, device) for D in cfg.pairs]
                history: list[list[float]] = []  # [iteration, accuracy at each D] at every check

                def check(iteration: int, model=model, tests=tests, history=history) -> bool:
                    history.append([iteration, *(accuracy(model, t) for t in tests)])
                    return False  # never stops early: every model gets the whole budget

                fit = train(model, cfg.train, get_batch(cfg), seed=seed, device=device, evaluate=False, check=check)
                acc[mixer].append(history[-1][1:])
                curves[mixer].append(history)
                losses[mixer].append(fit["final_loss"])
                seconds[mixer].append(fit["seconds"])
    return measured(*_summarise(cfg, size, acc, curves, losses, seconds), device)


def late_gain(runs: list[list[list[float]]], max_iters: int) -> float:
    """How much the accuracy at the largest D rose over the last quarter of training (from the last check at or
    before 3/4 of it), the mean over seeds: near zero when a model had stopped learning."""
    gains = []
    for history in runs:
        before = [h for h in history if h[0] <= 0.75 * max_iters] or history[:1]
        gains.append(history[-1][-1] - before[-1][-1])
    return sum(gains) / len(gains)


def _summarise(cfg: Any, size, acc, curves, losses, seconds) -> tuple[dict[str, bool] | None, dict, dict]:
    pairs, n = list(cfg.pairs), cfg.seeds
    m: dict[str, Any] = {}
    for mixer, s in size.items():
        m[f"params/{mixer}"] = s["params"]
        m[f"state_per_layer/{mixer}/D={pairs[-1]}"] = s["state"][-1]
    mean = {k: [sum(r[i] for r in rows) / n for i in range(len(pairs))] for k, rows in acc.items() if n}
    for mixer, row in mean.items():
        for D, a in zip(pairs, row, strict=True):
            m[f"acc/{mixer}/D={D}"] = round(a, 4)
        m[f"late_gain/{mixer}/D={pairs[-1]}"] = round(late_gain(curves[mixer], cfg.train.max_iters), 4)
    ref = min(s["params"] for s in size.values())
    m["params_spread"] = round(max(s["params"] for s in size.values()) / ref - 1, 4)
    verdict: dict[str, bool] | None = None
    if n and "attention" in mean and len(mean) > 1:
        att = mean["attention"]
        verdict = {"attention_recalls": min(att) >= cfg.recall_min}
        for mixer in (k for k in mean if k != "attention"):
            row = mean[mixer]
            verdict[f"{mixer}_falls_off"] = row[-1] <= att[-1] - cfg.gap and row[-1] <= row[0] - cfg.drop
    data = {
        "pairs": pairs,
        "sizes": size,
        "accuracy": acc,
        "accuracy_mean": mean,
        "curves": curves,
        "final_loss": losses,
        "seconds": seconds,
        "seeds": [cfg.seed + s for s in range(n)],
        "context_guess": [1 / D for D in pairs],  # answering with a random value of the context
        "chance": 1 / cfg.n_values,
    }
    return verdict, m, data


__all__ = ["accuracy", "configs", "get_batch", "held_out", "late_gain", "run", "sizes"]
