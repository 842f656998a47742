"""The measuring of ``heads``: the two-marker task, trained and probed at each head count (see the package
docstring)."""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor

from attnlab._checks import resolve_device
from attnlab.experiments.training import one_thread, train
from attnlab.models.markers import TwoMarkerModel

# the report may run it beside another experiment: trains on one thread; it measures accuracy and attention, not time
SHARES_CORES = True

PLAIN, MARKER1, MARKER2, QUERY = range(4)  # the kinds of position


class MarkerBatch(NamedTuple):
    """contents ``(B, T, d)`` float; kinds ``(B, T)`` long (PLAIN, MARKER1, MARKER2, QUERY); targets ``(B,)`` long
    in ``[0, d)``; marks ``(B, 2)`` long, the positions of marker 1 and marker 2."""

    contents: Tensor
    kinds: Tensor
    targets: Tensor
    marks: Tensor


def two_marker_batch(n: int, seq_len: int, value_dim: int, generator: torch.Generator) -> MarkerBatch:
    """n examples of the two-marker task (see the module docstring): target ``argmax_j (a_j - b_j)``."""
    B, T, d = n, seq_len, value_dim
    contents = torch.randn(B, T, d, generator=generator)  # (B, T, d)
    contents[:, -1] = 0  # the query position carries no content
    kinds = torch.full((B, T), PLAIN, dtype=torch.long)
    kinds[:, -1] = QUERY
    marks = torch.rand(B, T - 1, generator=generator).argsort(-1)[:, :2]  # (B, 2): two distinct places < T - 1
    rows = torch.arange(B)
    kinds[rows, marks[:, 0]] = MARKER1
    kinds[rows, marks[:, 1]] = MARKER2
    a, b = contents[rows, marks[:, 0]], contents[rows, marks[:, 1]]  # (B, d) each
    return MarkerBatch(contents, kinds, (a - b).argmax(-1), marks)


def marker_mass(weights: Tensor, marks: Tensor) -> tuple[Tensor, Tensor]:
    """Each head's mean attention mass on marker 1 and on marker 2: weights ``(B, nh, T)``, marks ``(B, 2)`` ->
    two ``(nh,)`` tensors."""
    rows = torch.arange(weights.shape[0], device=weights.device)
    return weights[rows, :, marks[:, 0]].mean(0), weights[rows, :, marks[:, 1]].mean(0)  # (B, nh) -> (nh,)


def specialization(mass1: list[float], mass2: list[float]) -> float | None:
    """``max_{i != j} (mass1_i + mass2_j) / 2``: the best assignment of two distinct heads to the two markers;
    None for a single head."""
    h = len(mass1)
    if h < 2:
        return None
    return max((mass1[i] + mass2[j]) / 2 for i in range(h) for j in range(h) if i != j)


def one_marker_bayes(value_dim: int, n: int = 200_000, seed: int = 0) -> float:
    """Accuracy of the best guess of ``argmax(a - b)`` from ``a`` alone (``argmax a``), by Monte Carlo: the ceiling
    of a head that reads one marker perfectly and ignores the other."""
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(n, value_dim, generator=gen)
    b = torch.randn(n, value_dim, generator=gen)
    return (a.argmax(-1) == (a - b).argmax(-1)).double().mean().item()


def _train_eval(cfg: Any, heads: int, seed: int, device: str) -> dict[str, Any]:
    torch.manual_seed(seed)  # the same initialisation stream for every head count
    model = TwoMarkerModel(cfg.value_dim, cfg.embed_dim, heads, cfg.mlp_hidden)

    def get_batch(split: str, gen: torch.Generator):
        b = two_marker_batch(cfg.batch_size, cfg.seq_len, cfg.value_dim, gen)
        return b.contents, b.kinds, b.targets

    fit = train(model, cfg.train, get_batch, seed=10_000 + seed, device=device, evaluate=False)  # the same batches
    test = two_marker_batch(cfg.eval_examples, cfg.seq_len, cfg.value_dim, torch.Generator().manual_seed(20_000 + seed))
    with torch.no_grad():
        out = model(test.contents.to(device), test.kinds.to(device), need_weights=True)
    weights = out.weights.float().cpu()  # (N, nh, T)
    mass1, mass2 = marker_mass(weights, test.marks)
    return {
        "accuracy": (out.logits.argmax(-1).cpu() == test.targets).double().mean().item(),
        "final_loss": fit["final_loss"],
        "mass1": mass1.tolist(),
        "mass2": mass2.tolist(),
        "example": weights[0].tolist(),  # (nh, T): the query's weights on the first test example
        "example_kinds": test.kinds[0].tolist(),
    }


def run(cfg: Any) -> dict[str, Any]:
    device = resolve_device(cfg.device)
    with one_thread(device):  # B=128, T=12, E=32: intra-op threads only cost (3x on 2 busy cores)
        runs = {h: [_train_eval(cfg, h, cfg.seed + s, device) for s in range(cfg.seeds)] for h in cfg.head_counts}
    chance, bayes = 1 / cfg.value_dim, one_marker_bayes(cfg.value_dim, seed=cfg.seed)

    metrics: dict[str, Any] = {"chance": round(chance, 4), "one_marker_bayes": round(bayes, 4)}
    single = [r["accuracy"] for r in runs[1]]
    verdict: dict[str, bool] = {}
    for h, rs in runs.items():
        accs = [r["accuracy"] for r in rs]
        metrics[f"accuracy/h={h}"] = round(sum(accs) / len(accs), 4)
        metrics[f"accuracy_min/h={h}"] = round(min(accs), 4)
        metrics[f"final_loss/h={h}"] = round(sum(r["final_loss"] for r in rs) / len(rs), 4)
        if h == 1:  # the single head: how it splits its mass between the markers
            metrics["single_head/mass_marker1"] = round(sum(r["mass1"][0] for r in rs) / len(rs), 4)
            metrics["single_head/mass_marker2"] = round(sum(r["mass2"][0] for r in rs) / len(rs), 4)
            metrics["single_head/larger_share"] = round(
                sum(max(r["mass1"][0], r["mass2"][0]) / (r["mass1"][0] + r["mass2"][0]) for r in rs) / len(rs), 4
            )
            continue
        specs = [specialization(r["mass1"], r["mass2"]) for r in rs]
        metrics[f"specialization/h={h}"] = round(sum(specs) / len(specs), 4)
        # per seed, against the single head trained on the same batches from the same initialisation stream
        beats = sum(acc >= one + cfg.margin for acc, one in zip(accs, single, strict=True))
        split = sum(sp >= cfg.specialization for sp in specs)
        metrics[f"seeds_beating_single_head/h={h}"] = beats
        metrics[f"seeds_specialized/h={h}"] = split
        verdict[f"h={h}_beats_single_head"] = beats > cfg.seeds / 2
        verdict[f"h={h}_heads_specialize"] = split > cfg.seeds / 2
    held = all(verdict.values())
    example_h = {str(h): rs[0]["example"] for h, rs in runs.items()}
    return {
        "held": held,
        "metrics": metrics,
        "device": device,
        "data": {
            "head_counts": list(cfg.head_counts),
            "embed_dim": cfg.embed_dim,
            "accuracy": {str(h): [r["accuracy"] for r in rs] for h, rs in runs.items()},
            "mass": {str(h): [{"marker1": r["mass1"], "marker2": r["mass2"]} for r in rs] for h, rs in runs.items()},
            "example": {"kinds": runs[cfg.head_counts[0]][0]["example_kinds"], "weights": example_h},
            "chance": chance,
            "one_marker_bayes": bayes,
            "verdict": verdict,
        },
    }


__all__ = [
    "MARKER1",
    "MARKER2",
    "PLAIN",
    "QUERY",
    "MarkerBatch",
    "marker_mass",
    "one_marker_bayes",
    "run",
    "specialization",
    "two_marker_batch",
]
