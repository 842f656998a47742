"""Models built from attnlab's modules: the mini-GPT (later: seq2seq, the pretrained BERT-style encoder)."""

from attnlab.models.encoder import Encoder, EncoderConfig, EncoderOutput
from attnlab.models.gpt import GPT, GPTConfig, GPTOutput
from attnlab.models.seq2seq import Decoded, EncoderState, Seq2Seq, Seq2SeqConfig, Seq2SeqOutput

__all__ = [
    "GPT",
    "Decoded",
    "Encoder",
    "EncoderConfig",
    "EncoderOutput",
    "EncoderState",
    "GPTConfig",
    "GPTOutput",
    "Seq2Seq",
    "Seq2SeqConfig",
    "Seq2SeqOutput",
]
