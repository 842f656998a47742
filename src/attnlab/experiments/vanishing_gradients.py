"""Experiment ``vanishing-gradients`` (claim C1; seed 001, objectives 1-2).

How much of a gradient at the last step T reaches the input at step t = T - d? For a tanh RNN the chain
``dh_T/dh_t = prod_k diag(1 - h_k^2) W_hh`` multiplies d Jacobians, so its norm decays (or grows) about
geometrically in d. The LSTM's cell update ``c_t = f c_{t-1} + i g`` gives ``dc_t/dc_{t-1} = f`` (an additive
path, no squashing) and the GRU's ``h_t = (1 - z) n + z h_{t-1}`` gives ``z``: gates near 1 carry the gradient.

Measured: ``||dL/dx_{T-d}||`` with ``L = u . h_T`` (u a random unit vector), per example, averaged in log10
over examples and seeds; the per-step factor is ``10^slope`` of a least-squares line through log10 norm
against d. Then the same after a short training run on a memory task (recall x_0's first K channels at step
T through a linear readout). Exploding: a tanh RNN with ``W_hh = rho Q`` (Q random orthogonal, spectral radius
rho) for rho below and above 1; clipping: the norm of an SGD update with and without ``clip_grad_norm_``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

import attnlab.nn as ann
from attnlab._checks import resolve_device
from attnlab.experiments.base import ExperimentConfig, ExperimentSpec
from attnlab.experiments.fitting import linear_fit

CELLS = {"rnn": ann.RNN, "lstm": ann.LSTM, "gru": ann.GRU}


@dataclass(frozen=True)
class Config(ExperimentConfig):
    seq_len: int = 30  # T: the longest distance measured is T - 1
    batch_size: int = 32
    input_size: int = 16
    hidden_size: int = 64
    memory_channels: int = 4  # K: channels of x_0 the trained task must recall at step T
    train_steps: int = 1500
    lr: float = 1e-2
    grad_clip: float = 1.0
    seeds: int = 3
    radii: tuple[float, ...] = (0.5, 0.9, 1.0, 1.1, 1.5, 2.0)
    explode_input_scale: float = 0.1  # small inputs keep the tanh RNN out of saturation at first
    clip_max_norm: float = 1.0
    clip_batches: int = 20

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "full": {},
        "quick": {"train_steps": 400, "seeds": 2},
        "tiny": {"seq_len": 16, "batch_size": 16, "hidden_size": 32, "train_steps": 0, "seeds": 1, "clip_batches": 4},
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("seq_len", "batch_size", "input_size", "hidden_size", "memory_channels", "seeds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
        if self.seq_len < 3:
            raise ValueError(f"seq_len: expected at least 3 steps to fit a decay, got {self.seq_len}")
        if self.memory_channels > self.input_size:
            raise ValueError(
                f"memory_channels: expected at most input_size={self.input_size}, got {self.memory_channels}"
            )
        if self.train_steps < 0 or self.clip_batches < 1:
            raise ValueError(
                f"train_steps/clip_batches: expected >= 0 / >= 1, got {self.train_steps}/{self.clip_batches}"
            )
        for name in ("lr", "grad_clip", "explode_input_scale", "clip_max_norm"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}: expected a positive number, got {getattr(self, name)!r}")
        if not self.radii or any(r <= 0 for r in self.radii):
            raise ValueError(f"radii: expected positive spectral radii, got {self.radii!r}")


def memory_batch(cfg: Config, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Inputs ``(T, B, I)`` and targets ``(B, K)``: x_0 carries K values on channels [0, K), later steps carry
    noise on the other channels only; the target is x_0's K values."""
    T, B, I, K = cfg.seq_len, cfg.batch_size, cfg.input_size, cfg.memory_channels
    x = torch.randn(T, B, I, generator=generator)  # (T, B, I)
    x[1:, :, :K] = 0  # the channels to remember are silent after t = 0
    x[0, :, K:] = 0
    return x, x[0, :, :K].clone()


def gradient_profile(model: nn.Module, x: Tensor, generator: torch.Generator) -> Tensor:
    """Mean log10 ||dL/dx_{T-d}|| over the batch, for d = 0..T-1, with L = u . h_T summed over the batch."""
    x = x.detach().clone().requires_grad_()
    out, _ = model(x)  # (T, B, H)
    u = torch.randn(out.shape[-1], generator=generator).to(out)
    u = u / u.norm()
    (out[-1] @ u).sum().backward()  # each example's L depends only on its own inputs
    norms = x.grad.norm(dim=2)  # (T, B)
    return norms.clamp_min(torch.finfo(norms.dtype).tiny).log10().mean(1).flip(0)  # (T,) index d = T-1-t


def per_step_factor(log10_norms: list[float]) -> float:
    """10^slope of the least-squares line through log10 norm against distance: the geometric rate per step."""
    return 10 ** linear_fit(range(len(log10_norms)), log10_norms)[0]


def _train(model: nn.Module, head: nn.Linear, cfg: Config, generator: torch.Generator) -> tuple[float, float]:
    """Adam with gradient clipping on the memory task; returns the mean loss of the first and last 20 steps."""
    params = [*model.parameters(), *head.parameters()]
    opt = torch.optim.Adam(params, lr=cfg.lr)
    losses = []
    for _ in range(cfg.train_steps):
        x, y = memory_batch(cfg, generator)
        out, _ = model(x)  # (T, B, H)
        loss = ((head(out[-1]) - y) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        losses.append(loss.item())
    k = min(20, len(losses))
    return sum(losses[:k]) / k, sum(losses[-k:]) / k


def _mean(rows: list[list[float]]) -> list[float]:
    return [sum(col) / len(col) for col in zip(*rows, strict=True)]


def _radius_rnn(cfg: Config, rho: float, seed: int) -> ann.RNN:
    torch.manual_seed(seed)
    m = ann.RNN(cfg.input_size, cfg.hidden_size)
    with torch.no_grad():
        q, _ = torch.linalg.qr(torch.randn(cfg.hidden_size, cfg.hidden_size))
        m.weight_hh_l0.copy_(rho * q)  # spectral radius exactly rho
        m.bias_hh_l0.zero_()
        m.bias_ih_l0.zero_()
    return m


def run(cfg: Config) -> dict[str, Any]:
    resolve_device(cfg.device)  # validates; these sizes run on the CPU
    T = cfg.seq_len
    bar = tqdm(total=len(CELLS) * cfg.seeds + len(cfg.radii) + 1, disable=not sys.stderr.isatty(), leave=False)
    init: dict[str, list[list[float]]] = {c: [] for c in CELLS}
    trained: dict[str, list[list[float]]] = {c: [] for c in CELLS}
    losses: dict[str, list[tuple[float, float]]] = {c: [] for c in CELLS}
    for cell, cls in CELLS.items():
        for s in range(cfg.seeds):
            seed = cfg.seed + s
            torch.manual_seed(seed)
            model = cls(cfg.input_size, cfg.hidden_size)
            head = nn.Linear(cfg.hidden_size, cfg.memory_channels)
            x_eval, _ = memory_batch(cfg, torch.Generator().manual_seed(10_000 + seed))  # same inputs for all cells
            init[cell].append(gradient_profile(model, x_eval, torch.Generator().manual_seed(seed)).tolist())
            if cfg.train_steps:
                losses[cell].append(_train(model, head, cfg, torch.Generator().manual_seed(20_000 + seed)))
                trained[cell].append(gradient_profile(model, x_eval, torch.Generator().manual_seed(seed)).tolist())
            bar.update()

    # Exploding: the spectral radius of W_hh decides whether the linearised chain shrinks or grows.
    explode: dict[str, list[float]] = {}
    for rho in cfg.radii:
        rows = []
        for s in range(cfg.seeds):
            m = _radius_rnn(cfg, rho, cfg.seed + s)
            x = torch.randn(T, cfg.batch_size, cfg.input_size, generator=torch.Generator().manual_seed(cfg.seed + s))
            rows.append(gradient_profile(m, x * cfg.explode_input_scale, torch.Generator().manual_seed(s)).tolist())
        explode[f"{rho:g}"] = _mean(rows)
        bar.update()

    # Clipping: SGD update norms on the memory task with the most explosive radius, with and without clipping.
    rho_max = max(cfg.radii)
    m = _radius_rnn(cfg, rho_max, cfg.seed)
    head = nn.Linear(cfg.hidden_size, cfg.memory_channels)
    gen = torch.Generator().manual_seed(cfg.seed)
    grad_norms, step_raw, step_clipped = [], [], []
    sgd_lr = 0.1
    for _ in range(cfg.clip_batches):
        x, y = memory_batch(cfg, gen)
        out, _ = m(x * cfg.explode_input_scale)
        loss = ((head(out[-1]) - y) ** 2).mean()
        params = [*m.parameters(), *head.parameters()]
        grads = torch.autograd.grad(loss, params)
        g_norm = torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])).item()
        clipped = [g.clone() for g in grads]
        for p, g in zip(params, clipped, strict=True):
            p.grad = g
        nn.utils.clip_grad_norm_(params, cfg.clip_max_norm)
        c_norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params])).item()
        grad_norms.append(g_norm)
        step_raw.append(sgd_lr * g_norm)  # ||lr * g||: the update SGD would take
        step_clipped.append(sgd_lr * c_norm)
        for p in params:
            p.grad = None
    bar.update()
    bar.close()

    curves = {c: {"init": _mean(init[c]), "trained": _mean(trained[c]) if trained[c] else None} for c in CELLS}
    metrics: dict[str, Any] = {}
    for c in CELLS:
        for phase in ("init", "trained"):
            if curves[c][phase] is not None:
                prof = curves[c][phase]
                metrics[f"factor/{c}/{phase}"] = round(per_step_factor(prof), 4)
                metrics[f"log10_drop/{c}/{phase}"] = round(prof[0] - prof[-1], 2)  # decades lost over T-1 steps
        if losses[c]:
            metrics[f"loss/{c}/start"] = round(sum(a for a, _ in losses[c]) / len(losses[c]), 4)
            metrics[f"loss/{c}/end"] = round(sum(b for _, b in losses[c]) / len(losses[c]), 4)
    for rho, prof in explode.items():
        metrics[f"factor/rnn_rho={rho}"] = round(per_step_factor(prof), 4)
    metrics["clip/max_grad_norm"] = round(max(grad_norms), 4)
    metrics["clip/max_update_unclipped"] = round(max(step_raw), 4)
    metrics["clip/max_update_clipped"] = round(max(step_clipped), 4)
    metrics["clip/update_bound"] = sgd_lr * cfg.clip_max_norm

    verdict = _verdict(cfg, metrics, explode)
    held = all(v for v in verdict.values() if v is not None)
    return {
        "held": held,
        "metrics": metrics,
        "setup": _setup(cfg, sgd_lr),
        "summary": _summary(cfg, metrics, verdict, held),
        "data": {
            "distance": list(range(T)),
            "curves": curves,
            "explode": explode,
            "verdict": verdict,
            "clip": {"grad_norm": grad_norms, "update_unclipped": step_raw, "update_clipped": step_clipped},
        },
    }


# A gated cell "decays clearly slower" when its per-step factor is at least 5% above the RNN's (a rate, so the
# criterion does not depend on T; over 30 steps it means keeping >= 4x more of the gradient).
MARGIN_RATIO = 1.05


def _verdict(cfg: Config, m: dict[str, Any], explode: dict[str, list[float]]) -> dict[str, bool | None]:
    v: dict[str, bool | None] = {}
    v["rnn_decays_geometrically"] = m["factor/rnn/init"] < 0.9 and m["log10_drop/rnn/init"] > 3
    for phase in ("init", "trained"):
        for c in ("lstm", "gru"):
            key = f"factor/{c}/{phase}"
            v[f"{c}_slower_than_rnn_{phase}"] = (
                None if key not in m else m[key] >= MARGIN_RATIO * m[f"factor/rnn/{phase}"]
            )
    above = [r for r in explode if float(r) > 1.05]
    below = [r for r in explode if float(r) < 0.95]
    v["explodes_above_radius_1"] = bool(above) and all(m[f"factor/rnn_rho={r}"] > 1 for r in above)
    v["vanishes_below_radius_1"] = bool(below) and all(m[f"factor/rnn_rho={r}"] < 1 for r in below)
    v["clipping_bounds_update"] = m["clip/max_update_clipped"] <= m["clip/update_bound"] * (1 + 1e-6) and (
        m["clip/max_update_unclipped"] > m["clip/update_bound"]
    )
    return v


def _setup(cfg: Config, sgd_lr: float) -> str:
    return (
        f"attnlab.nn RNN (tanh), LSTM and GRU with I={cfg.input_size}, H={cfg.hidden_size}, PyTorch's default "
        f"initialisation (no forget-gate bias trick), T={cfg.seq_len}, batch {cfg.batch_size}, {cfg.seeds} seed(s). "
        f"Gradient: ||dL/dx_(T-d)|| for L = u.h_T (u a random unit vector), geometric mean over examples and seeds; "
        f"per-step factor = 10^slope of a least-squares fit of log10 norm on d. Training: {cfg.train_steps} Adam "
        f"steps (lr {cfg.lr:g}, clip {cfg.grad_clip:g}) on a memory task: x_0 carries {cfg.memory_channels} values "
        f"that a linear readout of h_T must return (MSE), later steps carry noise on the other channels. "
        f"Exploding: tanh RNN with W_hh = rho * (random orthogonal), zero biases, inputs scaled by "
        f"{cfg.explode_input_scale:g}, rho in {list(cfg.radii)}. Clipping: SGD (lr {sgd_lr:g}) update norms at "
        f"rho={max(cfg.radii):g} over {cfg.clip_batches} batches, without and with clip_grad_norm_(max_norm="
        f"{cfg.clip_max_norm:g})."
    )


def _summary(cfg: Config, m: dict[str, Any], verdict: dict[str, bool | None], held: bool) -> str:
    d = cfg.seq_len - 1
    parts = [
        f"At initialisation the gradient reaching {d} steps back shrinks by 10^{m['log10_drop/rnn/init']:.1f} for "
        f"the RNN (x{m['factor/rnn/init']:.3f} per step), 10^{m['log10_drop/lstm/init']:.1f} for the LSTM "
        f"(x{m['factor/lstm/init']:.3f}) and 10^{m['log10_drop/gru/init']:.1f} for the GRU "
        f"(x{m['factor/gru/init']:.3f})."
    ]
    if "factor/rnn/trained" in m:
        parts.append(
            f"After {cfg.train_steps} training steps (memory-task loss RNN {m['loss/rnn/start']:.3f}->"
            f"{m['loss/rnn/end']:.3f}, LSTM {m['loss/lstm/start']:.3f}->{m['loss/lstm/end']:.3f}, GRU "
            f"{m['loss/gru/start']:.3f}->{m['loss/gru/end']:.3f}): RNN x{m['factor/rnn/trained']:.3f}, LSTM "
            f"x{m['factor/lstm/trained']:.3f}, GRU x{m['factor/gru/trained']:.3f} per step."
        )
    rhos = ", ".join(f"rho={r}: x{m[f'factor/rnn_rho={r}']:.3f}" for r in (f"{x:g}" for x in cfg.radii))
    parts.append(f"Spectral radius sweep (per-step factor): {rhos}.")
    parts.append(
        f"Clipping: unclipped SGD updates reached {m['clip/max_update_unclipped']:.3g}; clipped ones at most "
        f"{m['clip/max_update_clipped']:.3g} (bound lr*max_norm = {m['clip/update_bound']:.3g})."
    )
    failed = [k for k, v in verdict.items() if v is False]
    if held:
        parts.append("Every part of the claim held.")
    else:
        parts.append(
            "Not every part held: "
            + ", ".join(failed)
            + f" (a gated cell counts as slower when its per-step factor is >= {MARGIN_RATIO:g}x the RNN's). "
            "A gated cell only carries the gradient when its gates open (forget gate / update gate near 1), "
            "which training on a memory task must first teach it; where a cell did not learn the task in this "
            "budget (its loss stayed near the start), its gradient decays like the RNN's."
        )
    return " ".join(parts)


def plot(result: dict[str, Any]) -> dict[str, Any]:
    import matplotlib.pyplot as plt

    data = result["data"]
    dist = data["distance"]
    colors = {"rnn": "tab:red", "lstm": "tab:blue", "gru": "tab:green"}
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for c, curves in data["curves"].items():
        ax.plot(dist, [10**v for v in curves["init"]], "--", color=colors[c], label=f"{c.upper()} at init")
        if curves["trained"] is not None:
            ax.plot(dist, [10**v for v in curves["trained"]], "-", color=colors[c], label=f"{c.upper()} trained")
    ax.set_yscale("log")
    ax.set_xlabel("distance d = T - t (steps)")
    ax.set_ylabel("||dL/dx_t||  (geometric mean)")
    ax.set_title("Gradient reaching step t from the output at T")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)

    fig2, ax2 = plt.subplots(figsize=(6.4, 4.2))
    cmap = plt.get_cmap("coolwarm")
    radii = sorted(data["explode"], key=float)
    for k, rho in enumerate(radii):
        ax2.plot(
            dist, [10**v for v in data["explode"][rho]], color=cmap(k / max(1, len(radii) - 1)), label=f"rho={rho}"
        )
    ax2.set_yscale("log")
    ax2.set_xlabel("distance d = T - t (steps)")
    ax2.set_ylabel("||dL/dx_t||")
    ax2.set_title("tanh RNN, W_hh = rho * orthogonal: vanishing below 1, exploding above")
    ax2.legend(fontsize=8, ncol=2)
    ax2.grid(True, which="both", alpha=0.3)

    fig3, ax3 = plt.subplots(figsize=(6.4, 3.6))
    clip = data["clip"]
    steps = range(1, len(clip["update_unclipped"]) + 1)
    ax3.plot(steps, clip["update_unclipped"], "o-", color="tab:red", label="without clipping")
    ax3.plot(steps, clip["update_clipped"], "o-", color="tab:blue", label="with clip_grad_norm_")
    ax3.axhline(result["metrics"]["clip/update_bound"], ls=":", color="k", label="lr * max_norm")
    ax3.set_yscale("log")
    ax3.set_xlabel("batch")
    ax3.set_ylabel("SGD update norm")
    ax3.set_title("Gradient-norm clipping bounds the update")
    ax3.legend(fontsize=8)
    ax3.grid(True, which="both", alpha=0.3)
    return {"decay": fig, "exploding": fig2, "clipping": fig3}


SPEC = ExperimentSpec(
    name="vanishing-gradients",
    title="Vanishing and exploding gradients",
    claim=(
        "RNN gradients vanish (or explode) over long spans: the gradient is a product of one Jacobian per step. "
        "The gating mechanisms of LSTM and GRU cells mitigate the vanishing gradient problem."
    ),
    source="Seed 001 (chapter 3), learning objectives 1-2; section 3.1",
    config_cls=Config,
    run=run,
    plot=plot,
)

__all__ = ["SPEC", "Config", "gradient_profile", "memory_batch", "per_step_factor", "plot", "run"]
