"""The measuring of ``vanishing-gradients``: the gradient at every step through h (and the LSTM's cell state c),
training on the memory task until solved, the spectral-radius sweep and clipping (see the package docstring)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

import attnlab.nn as ann
from attnlab._checks import resolve_device
from attnlab.experiments.fits import per_step_factor
from attnlab.experiments.recall import held_out, train_until_solved
from attnlab.experiments.training import one_thread
from attnlab.models.recall import RecallRNN

# the report may run it beside another experiment: trains on one thread; it measures gradients and steps, not time
SHARES_CORES = True

# the cells compared: name -> (recurrent cell, forget-gate bias; None: PyTorch's initialisation)
CELLS = {"rnn": ("rnn", None), "gru": ("gru", None), "lstm": ("lstm", None), "lstm_forget1": ("lstm", 1.0)}
STEP = {"rnn": ann.RNNCell, "gru": ann.GRUCell, "lstm": ann.LSTMCell}
SGD_LR = 0.1  # the learning rate of the clipping part's SGD step


def state_gradients(layer: nn.Module, kind: str, x: Tensor, u: Tensor) -> dict[str, list[float]]:
    """Step ``layer``'s cell through ``x`` ``(B, T, I)`` one step at a time and backpropagate ``L = sum_b u . h_T``.

    Returns, for d = 0 .. T-1 steps back from the last, the mean over the batch of ``log10 ||dL/dh_{T-d}||`` and,
    for an LSTM, ``log10 ||dL/dc_{T-d}||`` (total derivatives: every path from that state on); and ``gate``,
    the mean forget gate (LSTM) or update gate (GRU) over steps, examples and units (None for the RNN)."""
    extra = {"nonlinearity": layer.nonlinearity} if kind == "rnn" else {}
    cell = STEP[kind](layer.input_size, layer.hidden_size, **extra).to(x.device)
    cell.load_state_dict({k.removesuffix("_l0"): v for k, v in layer.state_dict().items()})
    B, H = x.shape[0], layer.hidden_size
    h = x.new_zeros(B, H)
    c = x.new_zeros(B, H) if kind == "lstm" else None
    states: dict[str, list[Tensor]] = {"h": [], "c": []}
    gates = []
    for x_t in x.unbind(1):  # x_t (B, I)
        if kind != "rnn":  # LSTM i|f|g|o and GRU r|z|n: rows [H, 2H) are f (LSTM) and z (GRU)
            pre = x_t @ cell.weight_ih[H : 2 * H].T + cell.bias_ih[H : 2 * H] + h @ cell.weight_hh[H : 2 * H].T
            gates.append(torch.sigmoid(pre + cell.bias_hh[H : 2 * H]).detach())  # f_t or z_t: (B, H)
        if kind == "lstm":
            h, c = cell(x_t, (h, c))  # c_t = f_t * c_{t-1} + i_t * g_t; h_t = o_t * tanh(c_t)
            c.retain_grad()
            states["c"].append(c)
        else:
            h = cell(x_t, h)
        h.retain_grad()
        states["h"].append(h)
    (h @ u).sum().backward()  # each example's L depends on its own inputs only
    out: dict[str, Any] = {"gate": torch.stack(gates).mean().item() if gates else None}
    for name, seq in states.items():
        if seq:
            norms = torch.stack([s.grad.norm(dim=-1) for s in reversed(seq)])  # (T, B), index d = T-1-t
            out[name] = norms.clamp_min(torch.finfo(norms.dtype).tiny).log10().mean(1).tolist()
    return out


def probe(model: RecallRNN, tokens: Tensor, u: Tensor) -> dict[str, Any]:
    """:func:`state_gradients` of a recall model on ``tokens`` ``(B, T)`` of one length, in float32 (no autocast)."""
    with torch.autocast(tokens.device.type, enabled=False):
        return state_gradients(model.rnn, model.cell, model.embed(tokens).detach().float(), u)


def orthogonal_rnn(size: int, rho: float, seed: int) -> ann.RNN:
    """A tanh RNN with ``W_hh = rho Q`` (Q random orthogonal: every singular value is rho) and zero biases."""
    torch.manual_seed(seed)
    m = ann.RNN(size, size, batch_first=True)
    with torch.no_grad():
        q, _ = torch.linalg.qr(torch.randn(size, size))
        m.weight_hh_l0.copy_(rho * q)
        m.bias_hh_l0.zero_()
        m.bias_ih_l0.zero_()
    return m


def clipping(cfg: Any, seed: int) -> dict[str, list[float]]:
    """SGD step norms ``lr ||g||`` on the most explosive radius, without and with ``clip_grad_norm_``."""
    m = orthogonal_rnn(cfg.hidden_size, max(cfg.radii), seed)
    gen = torch.Generator().manual_seed(seed)
    u = torch.randn(cfg.hidden_size, generator=gen)
    out: dict[str, list[float]] = {"grad_norm": [], "update_unclipped": [], "update_clipped": []}
    for _ in range(cfg.clip_batches):
        x = cfg.probe_scale * torch.randn(cfg.probe_examples, cfg.lag + 2, cfg.hidden_size, generator=gen)
        (m(x)[0][:, -1] @ u).mean().backward()  # (B, T, H) -> the last state's projection
        norm = nn.utils.clip_grad_norm_(m.parameters(), cfg.clip_max_norm).item()  # the norm before clipping
        clipped = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in m.parameters()])).item()
        m.zero_grad(set_to_none=True)
        out["grad_norm"].append(norm)
        out["update_unclipped"].append(SGD_LR * norm)
        out["update_clipped"].append(SGD_LR * clipped)
    return out


def _mean(rows: list[list[float]]) -> list[float]:
    return [sum(col) / len(col) for col in zip(*rows, strict=True)]


def _cell_runs(cfg: Any, name: str, device: str) -> dict[str, Any]:
    """One cell over the seeds: gradients at initialisation, training until solved, gradients after."""
    kind, forget_bias = CELLS[name]
    probes: dict[str, list[dict]] = {"init": [], "trained": []}
    runs = []
    for s in range(cfg.seeds):
        seed = cfg.seed + s
        torch.manual_seed(seed)  # the same initialisation stream for every cell
        t = cfg.task
        model = RecallRNN(kind, t.vocab_size, cfg.embed_size, cfg.hidden_size, t.n_symbols, forget_bias).to(device)
        test = held_out(t, cfg.lag, seed, device)
        tokens = test.tokens[: cfg.probe_examples]  # (B, lag + 2): every example has the same length
        u = torch.randn(cfg.hidden_size, generator=torch.Generator().manual_seed(seed)).to(device)
        u = u / u.norm()
        probes["init"].append(probe(model, tokens, u))
        runs.append(train_until_solved(model, t, cfg.train, cfg.lag, seed=seed, device=device))
        probes["trained"].append(probe(model, tokens, u))
    out: dict[str, Any] = {"runs": runs}
    for state, rows in probes.items():
        out[state] = {path: _mean([r[path] for r in rows]) for path in ("h", "c") if path in rows[0]}
        gates = [r["gate"] for r in rows if r["gate"] is not None]
        out[state]["gate"] = sum(gates) / len(gates) if gates else None
        for path in ("h", "c"):
            if path in out[state]:
                out[state][f"factor_{path}"] = per_step_factor(out[state][path])
    out["solved"] = sum(r["solved"] for r in runs) > cfg.seeds / 2
    return out


def run(cfg: Any) -> dict[str, Any]:
    device = resolve_device(cfg.device)
    with one_thread(device):
        cells = {name: _cell_runs(cfg, name, device) for name in CELLS}
    radii: dict[str, list[float]] = {}
    for rho in cfg.radii:
        rows = []
        for s in range(cfg.seeds):
            gen = torch.Generator().manual_seed(cfg.seed + s)
            x = cfg.probe_scale * torch.randn(cfg.probe_examples, cfg.lag + 2, cfg.hidden_size, generator=gen)
            u = torch.randn(cfg.hidden_size, generator=gen)
            rows.append(
                state_gradients(orthogonal_rnn(cfg.hidden_size, rho, cfg.seed + s), "rnn", x, u / u.norm())["h"]
            )
        radii[f"{rho:g}"] = _mean(rows)
    clip = clipping(cfg, cfg.seed)
    m = _metrics(cfg, cells, radii, clip)
    verdict = _verdict(cfg, m)
    return {
        "held": all(verdict.values()),
        "metrics": m,
        "device": device,
        "data": {
            "distance": list(range(cfg.lag + 2)),
            "cells": cells,
            "radii": radii,
            "clip": clip,
            "verdict": verdict,
            "update_bound": SGD_LR * cfg.clip_max_norm,
        },
    }


def _metrics(cfg: Any, cells: dict, radii: dict, clip: dict) -> dict[str, Any]:
    m: dict[str, Any] = {}
    for name, c in cells.items():
        for state in ("init", "trained"):
            for path in ("h", "c"):
                if path in c[state]:
                    m[f"factor/{name}/{path}/{state}"] = round(c[state][f"factor_{path}"], 4)
                    m[f"log10_drop/{name}/{path}/{state}"] = round(c[state][path][0] - c[state][path][-1], 2)
            if c[state]["gate"] is not None:
                m[f"gate/{name}/{state}"] = round(c[state]["gate"], 4)
        m[f"solved/{name}"] = c["solved"]
        m[f"steps/{name}"] = round(sum(r["iters"] for r in c["runs"]) / len(c["runs"]), 1)
        m[f"accuracy/{name}"] = round(sum(r["accuracy"] for r in c["runs"]) / len(c["runs"]), 4)
    for rho, prof in radii.items():
        m[f"factor/rnn_rho={rho}"] = round(per_step_factor(prof), 4)
    m["clip/max_update_unclipped"] = round(max(clip["update_unclipped"]), 4)
    m["clip/max_update_clipped"] = round(max(clip["update_clipped"]), 4)
    m["clip/update_bound"] = SGD_LR * cfg.clip_max_norm
    return m


def _verdict(cfg: Any, m: dict[str, Any]) -> dict[str, bool]:
    above = [r for r in map(float, cfg.radii) if r > 1.05]
    below = [r for r in map(float, cfg.radii) if r < 0.95]
    return {
        "rnn_vanishes": m["factor/rnn/h/init"] < 0.9 and m["log10_drop/rnn/h/init"] > 3,
        "vanishes_below_radius_1": bool(below) and all(m[f"factor/rnn_rho={r:g}"] < 1 for r in below),
        "explodes_above_radius_1": bool(above) and all(m[f"factor/rnn_rho={r:g}"] > 1 for r in above),
        "clipping_bounds_update": m["clip/max_update_clipped"]
        <= m["clip/update_bound"] * (1 + 1e-6)
        < m["clip/max_update_unclipped"],
        "open_forget_gate_carries": m["factor/lstm_forget1/c/init"] >= cfg.margin * m["factor/rnn/h/init"],
        "gated_cells_learn_the_lag": m["solved/gru"] and m["solved/lstm_forget1"],
        "rnn_does_not": not m["solved/rnn"],
    }


__all__ = ["CELLS", "clipping", "orthogonal_rnn", "probe", "run", "state_gradients"]
