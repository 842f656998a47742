"""One training step of every model an experiment trains, under ``torch.autocast("cpu", dtype=torch.bfloat16)``:
the step the experiments take (the project's Trainer, which autocasts to bf16 on a GPU), on a batch from the
experiment's own data. On a GPU every experiment runs under autocast; this catches a dtype mismatch without one.

Each step must actually run in bf16 somewhere (a forward hook sees a bf16 output) and leave finite float32
gradients on every parameter that took part.
"""

import math
import tempfile

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from attnlab.data.pronoun import WordTokenizer, max_length
from attnlab.data.seq2seq import date_pairs, make_batch, reverse_pairs
from attnlab.experiments.attention.dictionary_lookup.dictionary import make_dictionary
from attnlab.experiments.attention.dictionary_lookup.learned import cue_batch
from attnlab.experiments.beyond.associative_recall.config import Config as Recall
from attnlab.experiments.beyond.associative_recall.measure import configs as recall_configs
from attnlab.experiments.beyond.associative_recall.measure import get_batch as mqar_batches
from attnlab.experiments.beyond.experts.config import Config as Experts
from attnlab.experiments.beyond.experts.measure import model_config as experts_config
from attnlab.experiments.beyond.variants.config import VARIANTS
from attnlab.experiments.beyond.variants.config import Config as Variants
from attnlab.experiments.beyond.variants.measure import model_config as variants_config
from attnlab.experiments.recall import RECALL, get_batch
from attnlab.experiments.recurrence.long_range.config import Config as LongRange
from attnlab.experiments.recurrence.long_range.measure import build as build_recall
from attnlab.experiments.self_attention.heads.measure import two_marker_batch
from attnlab.experiments.seq2seq import build as build_seq2seq
from attnlab.experiments.seq2seq import symbol_vocab
from attnlab.experiments.training import trainer
from attnlab.experiments.transformer.pronoun.config import Config as Pronoun
from attnlab.experiments.transformer.pronoun.measure import make_get_batch
from attnlab.models.blocks import AttentionBlock, LSTMBlock
from attnlab.models.gpt import GPT, GPTConfig
from attnlab.models.lookup import SoftLookup
from attnlab.models.markers import TwoMarkerModel
from attnlab.models.pronoun import PronounModel
from attnlab.models.recall import RecallRNN
from attnlab.train.loop import TrainConfig


def _recall(kind: str, forget_bias: float | None = None):
    model = RecallRNN(kind, RECALL.vocab_size, 8, 12, RECALL.n_symbols, forget_bias)
    return model, get_batch(RECALL, 5)("train", torch.Generator().manual_seed(0))


def _long_range_attention():
    cfg = LongRange.for_profile("tiny")
    return build_recall("attention", 8, cfg, 8), get_batch(cfg.task, 8)("train", torch.Generator().manual_seed(0))


def _seq2seq(attention: str, cell: str = "gru"):
    vocab = symbol_vocab(10)
    pairs = reverse_pairs(4, 2, 6, 10, torch.Generator().manual_seed(0))
    return build_seq2seq(attention, 12, (len(vocab), len(vocab)), 8, cell), tuple(make_batch(pairs, vocab, vocab))


def _dates():
    pairs = date_pairs(4, torch.Generator().manual_seed(0))
    from attnlab.data.seq2seq import Vocab

    src, tgt = Vocab.build(p.src for p in pairs), Vocab.build(p.tgt for p in pairs)
    return build_seq2seq("bahdanau", 12, (len(src), len(tgt)), 8, "gru"), tuple(make_batch(pairs, src, tgt))


def _lookup():
    gen = torch.Generator().manual_seed(0)
    keys, values = make_dictionary(16, 8, 4, gen, dtype=torch.float32)
    M = torch.randn(6, 8, generator=gen)
    return SoftLookup(keys, values, 6, tau=0.5), cue_batch(keys, M, 10, 0.1, gen)


def _markers():
    b = two_marker_batch(6, 8, 5, torch.Generator().manual_seed(0))
    return TwoMarkerModel(5, 8, 2, 16), (b.contents, b.kinds, b.targets)


def _blocks(kind: str):
    x, y = torch.randn(2, 6, 16), torch.randn(2, 6, 16)
    return (LSTMBlock(16, 12) if kind == "lstm" else AttentionBlock(16, 2, 2)), (x, y)


def _gpt():
    x = torch.randint(0, 20, (2, 8))
    return GPT(GPTConfig(vocab_size=20, block_size=8, n_layer=2, n_head=2, n_embd=16)), (x, torch.roll(x, -1, 1))


def _pronoun():
    tok = WordTokenizer()
    cfg = Pronoun.for_profile("tiny", batch_size=8)
    model = PronounModel(len(tok), max_length(), 16, 2, 2, tok.pad_id)
    return model, make_get_batch(cfg, tok)("train", torch.Generator().manual_seed(0))


def _mixer(mixer: str):
    """recall's models (decode-cost decodes with the same three, untrained), on the experiment's own MQAR batch."""
    cfg = Recall.for_profile("tiny")
    return GPT(recall_configs(cfg)[mixer]), mqar_batches(cfg)("train", torch.Generator().manual_seed(0))


def _experts():
    x = torch.randint(0, 20, (2, 8))
    return GPT(experts_config(Experts.for_profile("tiny"), 4, 20)), (x, torch.roll(x, -1, 1))


def _variant(variant: str):
    x = torch.randint(0, 20, (2, 16))
    return GPT(variants_config(Variants.for_profile("tiny"), variant, 32, 20)), (x, torch.roll(x, -1, 1))


CASES = {
    "vanishing-gradients/rnn": lambda: _recall("rnn"),
    "vanishing-gradients/gru": lambda: _recall("gru"),
    "vanishing-gradients/lstm": lambda: _recall("lstm"),
    "vanishing-gradients/lstm_forget1": lambda: _recall("lstm", 1.0),
    "long-range/attention": _long_range_attention,
    "bottleneck/none": lambda: _seq2seq("none"),
    "bottleneck/bahdanau": lambda: _seq2seq("bahdanau"),
    "bottleneck/luong-general": lambda: _seq2seq("luong-general"),
    "gradient-paths/lstm-luong": lambda: _seq2seq("luong-general", "lstm"),
    "alignment/dates": _dates,
    "dictionary-lookup/soft": _lookup,
    "heads/two-marker": _markers,
    "parallelism/lstm": lambda: _blocks("lstm"),
    "parallelism/attention": lambda: _blocks("attention"),
    "depth/gpt": _gpt,
    "pronoun/model": _pronoun,
    "recall/attention": lambda: _mixer("attention"),
    "recall/linear": lambda: _mixer("linear"),
    "recall/ssm": lambda: _mixer("ssm"),
    "experts/moe": _experts,
    **{f"variants/{v}": lambda v=v: _variant(v) for v in VARIANTS},
}
PRODUCTS = {torch.ops.aten.mm.default, torch.ops.aten.bmm.default, torch.ops.aten.addmm.default,
            torch.ops.aten.baddbmm.default}  # fmt: skip


class ProductDtypes(TorchDispatchMode):
    """Records the dtype of every matrix product the step runs (whatever module, or none, runs it)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[torch.dtype] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func in PRODUCTS:
            self.seen.append(out.dtype)
        return out


@pytest.mark.parametrize("case", list(CASES))
def test_one_training_step_under_bf16_autocast(case):
    torch.manual_seed(0)
    model, batch = CASES[case]()
    cfg = TrainConfig(max_iters=1, warmup_iters=0, lr=1e-3, min_lr=1e-3)
    with tempfile.TemporaryDirectory() as run_dir, torch.autocast("cpu", dtype=torch.bfloat16):
        step = trainer(model, cfg, lambda split, gen: batch, seed=0, device="cpu", run_dir=run_dir)
        with ProductDtypes() as products:
            loss = step.step(*batch)
    assert math.isfinite(loss)
    assert torch.bfloat16 in products.seen  # autocast did run the step's products in bf16
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads)
