"""Models built from attnlab's modules: the mini-GPT (later: seq2seq, the pretrained BERT-style encoder)."""

from attnlab.models.gpt import GPT, GPTConfig, GPTOutput

__all__ = ["GPT", "GPTConfig", "GPTOutput"]
