"""The measuring of ``experts``: total and active parameters, counted FLOPs per token, validation loss after the
same budget and the router's load, for a dense GPT and mixtures of E experts at equal compute (see the package
docstring)."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from attnlab._checks import resolve_device
from attnlab.data.text import CharCorpus
from attnlab.experiments.base import measured
from attnlab.experiments.training import one_thread, train
from attnlab.experiments.transformer.depth.measure import load_corpus
from attnlab.models.gpt import GPT, GPTConfig

# beside other experiments: it trains on one thread and reports losses and counts, not times
SHARES_CORES = True

# Mixtral 8x7B (Jiang et al. 2024, Table 1): dim, layers, heads of 128, kv heads, SwiGLU hidden, vocabulary (input
# embedding and output head untied), experts, experts per token.
MIXTRAL = {"dim": 4096, "n_layers": 32, "n_heads": 32, "n_kv_heads": 8, "head_dim": 128, "hidden_dim": 14336,
           "vocab_size": 32000, "num_experts": 8, "top_k": 2}  # fmt: skip


def mixtral_counts(c: dict[str, int] = MIXTRAL) -> dict[str, int]:
    """Total and active parameters of Mixtral from its published configuration: per layer grouped-query attention
    ``d (nh + 2 n_kv) hd + nh hd d``, two RMSNorms, the router ``d E`` and E SwiGLU experts of ``3 d h``; an input
    embedding and an output head of ``V d`` each and a final norm. Active: k experts instead of E."""
    d, L, E, k = c["dim"], c["n_layers"], c["num_experts"], c["top_k"]
    attention = d * (c["n_heads"] + 2 * c["n_kv_heads"]) * c["head_dim"] + c["n_heads"] * c["head_dim"] * d
    expert = 3 * d * c["hidden_dim"]  # w1, w3: d -> h; w2: h -> d; no biases
    shared = L * (attention + 2 * d + d * E) + 2 * c["vocab_size"] * d + d
    return {"total": shared + L * E * expert, "active": shared + L * k * expert}


def model_config(cfg: Any, n_expert: int, vocab_size: int) -> GPTConfig:
    return GPTConfig(vocab_size=vocab_size, block_size=cfg.block_size, n_layer=cfg.n_layer, n_head=cfg.n_head,
                     n_embd=cfg.n_embd, n_expert=n_expert, top_k=1 if n_expert == 1 else cfg.top_k)  # fmt: skip


def parameters(model: GPT) -> dict[str, int]:
    """Total parameters and those one token uses: all but the ``E - k`` experts each MoE layer leaves out."""
    total = sum(p.numel() for p in model.parameters())
    idle = 0
    for block in model.blocks:
        if block.moe is not None:
            moe = block.moe
            per_expert = sum(p.numel() for p in (moe.w1, moe.w2, moe.b1, moe.b2) if p is not None) // moe.n_expert
            idle += (moe.n_expert - moe.top_k) * per_expert
    return {"total": total, "active": total - idle}


@torch.no_grad()
def flops_per_token(model: GPT, x: torch.Tensor, y: torch.Tensor) -> float:
    """FLOPs of one forward (logits at every position) per token, counted by ``torch.utils.flop_counter``."""
    with FlopCounterMode(display=False) as counter:
        model(x, y)
    return counter.get_total_flops() / x.numel()


@torch.no_grad()
def router_balance(model: GPT, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> dict[str, Any]:
    """Each MoE layer's load f_i (share of the router's choices per expert) averaged over ``batches``, and the
    imbalance ``E max_i f_i`` (1: every expert takes its share; E / k: all choices on k experts), averaged over
    layers."""
    loads = None
    for x, y in batches:
        model(x, y)
        step = torch.stack(model.router_loads())  # (L, E)
        loads = step if loads is None else loads + step
    loads = loads / len(batches)  # (L, E)
    E = loads.shape[1]
    return {"loads": loads.tolist(), "max_over_share": float((E * loads.max(1).values).mean())}


def _run_one(cfg: Any, E: int, seed: int, corpus: CharCorpus, device: str) -> dict[str, Any]:
    torch.manual_seed(seed)
    model = GPT(model_config(cfg, E, corpus.vocab_size))

    def get_batch(split: str, gen: torch.Generator):
        return corpus.batch(split, cfg.batch_size, cfg.block_size, gen)

    fit = train(model, cfg.train, get_batch, seed=seed, device=device)  # the same batches for every E
    out = {"val_loss": fit["history"][-1]["val"], "seconds": fit["seconds"],
           "history": [{"iter": h["iter"], "train": h["train"], "val": h["val"]} for h in fit["history"]]}  # fmt: skip
    if E > 1:
        gen = torch.Generator().manual_seed(seed + 104_729)
        batches = [tuple(t.to(device) for t in get_batch("val", gen)) for _ in range(cfg.balance_batches)]
        out["balance"] = router_balance(model, batches)
    return out


def run(cfg: Any) -> dict[str, Any]:
    device = resolve_device(cfg.device)
    corpus = load_corpus(cfg)
    V = corpus.vocab_size
    probe = corpus.batch("val", cfg.batch_size, cfg.block_size, torch.Generator().manual_seed(cfg.seed))
    counts, flops = {}, {}
    for E in cfg.experts:
        torch.manual_seed(cfg.seed)
        model = GPT(model_config(cfg, E, V)).to(device).eval()
        counts[E] = parameters(model)
        flops[E] = flops_per_token(model, *(t.to(device) for t in probe))
    runs: dict[int, list[dict[str, Any]]] = {E: [] for E in cfg.experts}
    with one_thread(device):  # models this small gain nothing from intra-op threads (and lose on a shared machine)
        for s in range(cfg.seeds):
            for E in cfg.experts:
                runs[E].append(_run_one(cfg, E, cfg.seed + s, corpus, device))
    return measured(*_summarise(cfg, counts, flops, runs), device)


def _summarise(cfg: Any, counts, flops, runs) -> tuple[dict[str, bool] | None, dict, dict]:
    dense = cfg.experts[0]
    val = {E: [r["val_loss"] for r in runs[E]] for E in cfg.experts}
    mean = {E: sum(v) / len(v) if v else None for E, v in val.items()}
    sparse = [n for n in cfg.experts if n > cfg.top_k]  # more parameters than the dense model (E = k: the same)
    m: dict[str, Any] = {}
    for E in cfg.experts:
        if cfg.seeds:
            m[f"val_loss/E={E}"] = round(mean[E], 4)
        m[f"params_total/E={E}"] = counts[E]["total"]
        m[f"params_active/E={E}"] = counts[E]["active"]
        m[f"flops_per_token/E={E}"] = round(flops[E])
        if E > 1 and cfg.seeds:
            m[f"router_max_over_share/E={E}"] = round(
                sum(r["balance"]["max_over_share"] for r in runs[E]) / len(runs[E]), 3
            )
    mixtral = mixtral_counts()
    m["mixtral_total"], m["mixtral_active"] = mixtral["total"], mixtral["active"]
    m["total_over_active/mixtral"] = round(mixtral["total"] / mixtral["active"], 2)
    top = cfg.experts[-1]
    m[f"total_over_active/E={top}"] = round(counts[top]["total"] / counts[top]["active"], 2)
    spread = max(abs(flops[E] / flops[dense] - 1) for E in cfg.experts)
    m["flops_spread"] = round(spread, 4)
    verdict: dict[str, bool] | None = None
    if cfg.seeds and sparse:
        verdict = {"equal_compute": spread <= 0.01}
        for E in sparse:
            verdict[f"E={E}_below_dense"] = mean[E] < mean[dense]
        verdict["loss_falls_with_experts"] = all(mean[b] < mean[a] for a, b in pairwise(sparse))
    data = {
        "experts": list(cfg.experts),
        "sparse": sparse,
        "params": {str(E): counts[E] for E in cfg.experts},
        "flops_per_token": [flops[E] for E in cfg.experts],
        "val_loss": {str(E): val[E] for E in cfg.experts},
        "val_loss_mean": [mean[E] for E in cfg.experts],
        "history": {str(E): runs[E][0]["history"] for E in cfg.experts if cfg.seeds},
        "seconds": {str(E): [r["seconds"] for r in runs[E]] for E in cfg.experts},
        "loads": {str(E): runs[E][0]["balance"]["loads"] for E in cfg.experts if E > 1 and cfg.seeds},
        "mixtral": {**mixtral, "config": MIXTRAL},
        "seeds": [cfg.seed + s for s in range(cfg.seeds)],
    }
    return verdict, m, data


__all__ = ["MIXTRAL", "flops_per_token", "mixtral_counts", "model_config", "parameters", "router_balance", "run"]
