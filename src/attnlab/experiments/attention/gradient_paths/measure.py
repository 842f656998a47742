"""The measuring of ``gradient-paths``: the gradient reaching each source token with and without attention, at
initialisation and after training (see the package docstring)."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from attnlab._checks import resolve_device
from attnlab.data.seq2seq import Batch, copy_pairs, make_batch, reverse_pairs
from attnlab.experiments.fits import linear_fit
from attnlab.experiments.seq2seq import build, symbol_vocab
from attnlab.experiments.training import one_thread, train
from attnlab.models.seq2seq import Seq2Seq

# the report may run it beside another experiment: trains on one thread; it measures gradients, not time
SHARES_CORES = True

NONE = "none"
STATES = ("init", "trained")


# --- the probe -----------------------------------------------------------------------------------------------------


def distances(S: int) -> list[int]:
    """``d_j = min(j, S - 1 - j)``: recurrent steps between source position j and the fixed vector (the forward state
    at S - 1 and the backward state at 0)."""
    return [min(j, S - 1 - j) for j in range(S)]


def _forward_with_grads(model: Seq2Seq, batch: Batch, step_mask: Tensor | None) -> dict[str, Tensor]:
    """Encode and decode (teacher forcing) with hooks that keep the gradients of the source embeddings ``x``
    ``(B, S, E)`` and of ``memory`` ``(B, S, 2H)``; backpropagate the summed cross-entropy of the target steps kept by
    ``step_mask`` ``(B, T)`` (None: every step). Returns the per-position norms ``x`` and ``memory`` ``(B, S)``."""
    kept: dict[str, Tensor] = {}

    def keep(_module, _inputs, output: Tensor) -> None:
        output.retain_grad()
        kept["x"] = output

    handle = model.src_embed.register_forward_hook(keep)
    try:
        enc = model.encode(batch.src, batch.src_lengths)
    finally:
        handle.remove()
    enc.memory.retain_grad()
    logits, _ = model.decode(enc, batch.tgt_in)  # (B, T, V)
    ce = F.cross_entropy(logits.transpose(1, 2), batch.tgt_out, reduction="none")  # (B, V, T) vs (B, T) -> (B, T)
    if step_mask is not None:
        ce = ce * step_mask
    model.zero_grad(set_to_none=True)
    ce.sum().backward()
    return {"x": kept["x"].grad.norm(dim=-1), "memory": enc.memory.grad.norm(dim=-1)}  # (B, S) each


def probe(model: Seq2Seq, batch: Batch) -> dict[str, Any]:
    """Gradient paths of ``model`` on ``batch`` (N strings, all of length S; T = S + 1 target steps with EOS).

    Returns ``g`` ``(S,)`` the mean ``||dL/dx_j||`` of the whole-sequence loss; ``by_distance`` ``(d_max + 1,)`` its
    mean over the positions at each distance; ``slope`` (decades per step) and ``far_near``; ``G`` ``(T, S)`` the mean
    ``||dL_t/dx_j||``; ``memory_reached`` the mean number of positions with a nonzero ``dL/d memory_j``."""
    was_training = model.training
    model.eval()
    N, S = batch.src.shape
    T = batch.tgt_in.shape[1]
    whole = _forward_with_grads(model, batch, None)
    g = whole["x"].mean(0)  # (S,)
    # every target step's own gradient in one pass: copy t (rows t*N .. t*N + N - 1) keeps the loss of step t only
    rep = Batch(*(x.repeat(T, *([1] * (x.dim() - 1))) for x in batch))  # (T*N, ...)
    step_mask = torch.eye(T, device=batch.src.device).repeat_interleave(N, dim=0)  # (T*N, T): row t*N + n -> step t
    per_step = _forward_with_grads(model, rep, step_mask)["x"].view(T, N, S).mean(1)  # (T*N, S) -> (T, N, S) -> (T, S)
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    d = distances(S)
    d_max = max(d)
    by_distance = [float(g[[j for j in range(S) if d[j] == k]].mean()) for k in range(d_max + 1)]
    slope = linear_fit(list(range(d_max + 1)), [math.log10(v) for v in by_distance])[0]
    return {
        "g": g.tolist(),
        "by_distance": by_distance,
        "slope": slope,
        "far_near": by_distance[-1] / by_distance[0],
        "G": per_step.tolist(),
        "memory_reached": float((whole["memory"] > 0).sum(1).float().mean()),
    }


def judge(cfg: Any, init: dict[str, dict[str, Any]]) -> tuple[bool | None, dict[str, bool]]:
    """The verdict at initialisation; None without the no-attention model or without an attention model."""
    attentive = [m for m in init if m != NONE]
    if NONE not in init or not attentive:
        return None, {}
    verdict = {"none_decays": init[NONE]["far_near"] <= cfg.decay_ratio}
    for m in attentive:
        verdict[f"{m}_flat"] = init[m]["far_near"] >= cfg.flat_ratio
    return all(verdict.values()), verdict


def run(cfg: Any) -> dict[str, Any]:
    device = resolve_device(cfg.device)
    vocab = symbol_vocab(cfg.n_symbols)
    make = reverse_pairs if cfg.task == "reverse" else copy_pairs
    gen = torch.Generator().manual_seed(1_000_003 * (cfg.seed + 1))  # held-out probe strings, the same for every model
    batch = make_batch(
        make(cfg.probe_examples, cfg.src_len, cfg.src_len, cfg.n_symbols, gen), vocab, vocab, device=device
    )

    def get_batch(split: str, gen: torch.Generator):  # fresh strings every batch; the split is not used
        return make_batch(make(cfg.batch_size, cfg.min_len, cfg.src_len, cfg.n_symbols, gen), vocab, vocab)

    results: dict[str, dict[str, Any]] = {s: {} for s in STATES}
    params, losses, seconds = {}, {}, {}
    with one_thread(device):
        for name in cfg.models:
            torch.manual_seed(cfg.seed)
            model = build(name, cfg.hidden, (len(vocab), len(vocab)), cfg.emb, cfg.cell).to(device)
            params[name] = model.num_parameters()
            results["init"][name] = probe(model, batch)
            if cfg.after_training:
                fit = train(model, cfg.train, get_batch, seed=cfg.seed, device=device, evaluate=False)
                losses[name], seconds[name] = fit["final_loss"], fit["seconds"]
                results["trained"][name] = probe(model, batch)
    states = [s for s in STATES if results[s]]
    held, verdict = judge(cfg, results["init"])

    m: dict[str, Any] = {}
    for state in states:
        for name, r in results[state].items():
            m[f"slope/{name}/{state}"] = round(r["slope"], 4)
            m[f"far_near/{name}/{state}"] = float(f"{r['far_near']:.4g}")
            m[f"memory_reached/{name}/{state}"] = round(r["memory_reached"], 2)
    for name in cfg.models:
        m[f"params/{name}"] = params[name]
        if name in losses:
            m[f"final_loss/{name}"] = round(losses[name], 4)
            m[f"train_seconds/{name}"] = seconds[name]
    data = {
        "task": cfg.task,
        "src_len": cfg.src_len,
        "distances": distances(cfg.src_len),
        "states": states,
        "train_steps": cfg.train.max_iters if cfg.after_training else 0,
        "results": {s: results[s] for s in states},
        "params": params,
        "verdict": verdict,
    }
    return {"held": held, "metrics": m, "device": device, "data": data}


__all__ = ["NONE", "distances", "judge", "probe", "run"]
