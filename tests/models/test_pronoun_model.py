"""attnlab.models.pronoun: padding does not change the real positions; the loss is taken at the target positions
only; the attention read from "it" by the experiment's evaluation has the documented shapes."""

import torch

from attnlab.data.pronoun import WordTokenizer, encode_pronoun, max_length, minimal_pairs
from attnlab.experiments.transformer.pronoun.attention import evaluate
from attnlab.models.pronoun import PronounModel


def test_padding_does_not_change_the_real_positions():
    tok = WordTokenizer()
    torch.manual_seed(0)
    model = PronounModel(len(tok), 20, 16, 2, 2, tok.pad_id).eval()
    examples = minimal_pairs(3, seed=0)
    short = encode_pronoun(examples, tok)
    long = encode_pronoun(examples, tok, length=20)
    a, b = model(short.tokens), model(long.tokens)
    for i, e in enumerate(examples):
        n = len(e.words)
        torch.testing.assert_close(a.logits[i, :n], b.logits[i, :n])


def test_evaluate_shapes_and_the_models_loss():
    tok = WordTokenizer()
    torch.manual_seed(0)
    model = PronounModel(len(tok), max_length(), 16, 2, 3, tok.pad_id)
    examples = minimal_pairs(4, "heldout", seed=0)
    ev = evaluate(model, tok, examples, "cpu")
    assert ev["correct"].shape == (8,) and ev["mass"].shape == ev["adjective_mass"].shape == (8, 3, 2, 2)
    assert ev["rows"].shape == (8, 3, 2, max_length())
    assert ev["animate"].tolist() == [True, False] * 4  # minimal pairs: the animate adjective first
    b = encode_pronoun(examples, tok)
    out = model(b.tokens, b.targets)
    rows = torch.arange(8)
    manual = torch.nn.functional.cross_entropy(out.logits[rows, b.it_index], b.targets[rows, b.it_index])
    torch.testing.assert_close(out.loss, manual)  # the loss is taken at "it" only
    assert out.weights is None
