"""``attnlab viz``: the attention of one sentence, as viewer payloads, from the pretrained encoder or a checkpoint.

- ``"minilm"``: all-MiniLM-L6-v2 (:meth:`attnlab.models.Encoder.from_pretrained`), every layer and head of its
  self-attention over the sentence's word pieces (``[CLS] ... [SEP]``).
- a GPT checkpoint (``attnlab train gpt``): the causal self-attention of every block over the sentence's tokens.
- a seq2seq checkpoint (``attnlab train seq2seq``): the greedy translation's cross-attention (rows: the target
  tokens produced, columns: the source tokens), the alignment of Bahdanau et al. 2015, figure 3.

The checkpoint's JSON state (``state["kind"]``) says which kind it is.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from attnlab.experiments.base import viewer_payload

MINILM = "minilm"


def sentence_payloads(sentence: str, model: str | os.PathLike[str] = MINILM) -> list[dict[str, Any]]:
    """The attention maps of ``sentence`` under ``model`` (``"minilm"`` or a checkpoint file or run folder), as
    :func:`attnlab.experiments.base.viewer_payload` dicts (one per sentence).

    Raises ValueError for an empty sentence, FileNotFoundError for a checkpoint that does not exist and
    :class:`attnlab.train.CheckpointError` (a ValueError) for a file that is not an attnlab checkpoint.
    """
    if not isinstance(sentence, str):
        raise TypeError(f"sentence: expected a str, got {type(sentence).__name__}")
    if not sentence.strip():
        raise ValueError("sentence: expected a non-empty sentence, got an empty one")
    if str(model) == MINILM:
        return [minilm_payload(sentence)]
    kind, path = checkpoint_kind(model)
    if kind == "gpt":
        return [gpt_payload(sentence, path)]
    return [seq2seq_payload(sentence, path)]


def checkpoint_kind(ckpt: str | os.PathLike[str]) -> tuple[str, Path]:
    """``("gpt" | "seq2seq", path of the .safetensors file)`` for a checkpoint file or the run folder holding it."""
    from attnlab.train import CKPT_NAME, run_kind

    path = Path(ckpt)
    if not (path / CKPT_NAME if path.is_dir() else path).is_file():
        raise FileNotFoundError(
            f"model: expected {MINILM!r} or a checkpoint (a {CKPT_NAME} file or its run folder); no such file: {path}"
        )
    return run_kind(path)


def minilm_payload(sentence: str) -> dict[str, Any]:
    """all-MiniLM-L6-v2's self-attention over the sentence's word pieces: ``(L=6, nh=12, T, T)``."""
    from attnlab.models import Encoder

    tokens, weights = Encoder.from_pretrained().attend(sentence)  # weights (L, nh, T, T)
    return viewer_payload(f"all-MiniLM-L6-v2: {sentence}", tokens, tokens, weights, kind="self")


def gpt_payload(sentence: str, ckpt: str | os.PathLike[str]) -> dict[str, Any]:
    """A GPT checkpoint's causal self-attention over the sentence's tokens: ``(n_layer, n_head, T, T)``."""
    import torch

    from attnlab.train.gpt import load_gpt

    model, (encode, decode, _) = load_gpt(str(ckpt))
    try:
        ids = encode(sentence)
    except ValueError as exc:
        raise ValueError(f"sentence: the checkpoint's tokenizer cannot encode it ({exc})") from None
    block_size = model.config.block_size
    if len(ids) > block_size:
        raise ValueError(f"sentence: {len(ids)} tokens exceed the model's block_size of {block_size}")
    with torch.no_grad():
        per_block = model.attention_weights(torch.tensor([ids], dtype=torch.long))  # n_layer x (1, nh, T, T)
    weights = torch.cat(per_block, dim=0)  # (n_layer, nh, T, T)
    tokens = [decode([i]) for i in ids]
    return viewer_payload(f"GPT {Path(ckpt).parent.name or ckpt}: {sentence}", tokens, tokens, weights, kind="self")


def seq2seq_payload(sentence: str, ckpt: str | os.PathLike[str]) -> dict[str, Any]:
    """A seq2seq checkpoint's greedy translation of the sentence and its cross-attention ``(T, S)``."""
    from attnlab.train.seq2seq import load_seq2seq, translate

    model, src_vocab, tgt_vocab, run = load_seq2seq(ckpt)
    (out,) = translate(model, src_vocab, tgt_vocab, [sentence], chars=run.chars)
    if out.weights is None:
        raise ValueError(f"model: {ckpt} is a seq2seq model without attention; it has no weights to show")
    if not out.target_tokens:
        raise ValueError(f"model: {ckpt} translated {sentence!r} into nothing (EOS first); no attention to show")
    title = f"seq2seq: {sentence} \u2192 {out.text}"
    return viewer_payload(title, out.target_tokens, out.source_tokens, out.weights, kind="cross")


__all__ = ["checkpoint_kind", "gpt_payload", "minilm_payload", "sentence_payloads", "seq2seq_payload"]
