"""Exercises: the learner implements each piece of the chapter; attnlab checks it and says what is wrong.

Each exercise is one function with a precise contract (:class:`~attnlab.exercises.engine.Exercise`). Its checks
are built from the library's own oracles (torch's modules and functions with copied weights, float64
references, ``gradcheck``, the properties of attention) on fresh random inputs every run; when a check fails,
the catalogue of known mistakes (each a wrong implementation kept in this package) is run on the same inputs
and the mistake that behaves like the learner's code is named with a hint.

In a notebook::

    from attnlab.exercises import check
    check("scaled_dot_product_attention", my_attention)   # a table: check, passed, hint

From the shell: ``attnlab exercises``, ``attnlab exercises start NAME``, ``attnlab check NAME [FILE]`` (which runs
the learner's file in a subprocess with a time limit). This package imports the library; the library never
imports it. The catalogue below is plain data, so the command line can check a name without importing torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from attnlab.exercises.result import CheckResult, Result

if TYPE_CHECKING:
    from attnlab.exercises.engine import Exercise

SECTIONS = {
    "3.1": "Recurrence: RNN, LSTM and GRU cells, a layer over lengths, gradients through time",
    "3.2": "Attention in the encoder-decoder: Bahdanau and Luong scores, the softmax backward, decoding",
    "3.3": "Self-attention and the transformer: SDPA, masks, multi-head, KV cache, positions, the block",
}

# name -> (section, module under attnlab.exercises), in the order they are listed
CATALOGUE = {
    "rnn_cell": ("3.1", "recurrence.cells"),
    "lstm_cell": ("3.1", "recurrence.cells"),
    "gru_cell": ("3.1", "recurrence.cells"),
    "rnn_layer": ("3.1", "recurrence.layers"),
    "bptt": ("3.1", "recurrence.bptt"),
    "clip_grad_norm": ("3.1", "recurrence.layers"),
    "additive_score": ("3.2", "attention.scores"),
    "luong_scores": ("3.2", "attention.scores"),
    "attention_context": ("3.2", "attention.context"),
    "softmax_backward": ("3.2", "attention.context"),
    "greedy_decode": ("3.2", "attention.decoding"),
    "beam_search_step": ("3.2", "attention.decoding"),
    "scaled_dot_product_attention": ("3.3", "transformer.sdpa"),
    "causal_mask": ("3.3", "transformer.causal_mask"),
    "multi_head_attention": ("3.3", "transformer.multihead"),
    "kv_cache_step": ("3.3", "transformer.kv_cache"),
    "online_softmax_update": ("3.3", "transformer.online_softmax"),
    "sinusoidal_encoding": ("3.3", "transformer.positions"),
    "rotary": ("3.3", "transformer.positions"),
    "layer_norm": ("3.3", "transformer.block"),
    "transformer_block": ("3.3", "transformer.block"),
}


def names() -> list[str]:
    """Every exercise, section by section (no import of torch)."""
    return list(CATALOGUE)


def check_name(name: str) -> str:
    """``name`` if it is an exercise; a ValueError that lists the known ones otherwise."""
    if name not in CATALOGUE:
        raise ValueError(f"exercise: expected one of {', '.join(CATALOGUE)}; got {name!r}")
    return name


def get(name: str) -> Exercise:
    """The exercise called ``name`` (imports its module, and torch)."""
    module = importlib.import_module(f"attnlab.exercises.{CATALOGUE[check_name(name)][1]}")
    found = {ex.name: ex for ex in getattr(module, "EXERCISES", None) or (module.EXERCISE,)}
    return found[name]


def by_section() -> dict[str, list[Exercise]]:
    out: dict[str, list[Exercise]] = {s: [] for s in SECTIONS}
    for name, (section, _) in CATALOGUE.items():
        out[section].append(get(name))
    return out


def check(name: str, fn: Callable[..., Any], *, seed: int | None = None) -> Result:
    """Run every check of exercise ``name`` on ``fn`` in this process; returns a :class:`Result` (a table in a
    notebook). ``seed`` reproduces a run's random inputs (the result records it). No time limit here: for
    isolation and a time limit use ``attnlab check NAME FILE``."""
    from attnlab.exercises.engine import run_checks

    return run_checks(get(name), fn, seed)


def __getattr__(attr: str) -> Any:
    if attr in ("Check", "Exercise", "Mistake"):  # the engine imports torch: only when asked for
        from attnlab.exercises import engine

        return getattr(engine, attr)
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")


__all__ = [
    "CATALOGUE",
    "SECTIONS",
    "Check",
    "CheckResult",
    "Exercise",
    "Mistake",
    "Result",
    "by_section",
    "check",
    "check_name",
    "get",
    "names",
]
