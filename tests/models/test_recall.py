"""attnlab.models.recall: the recall classifiers read the state at each sequence's last valid step (padding changes
nothing), the forget-gate bias is set as documented, the loss is cross-entropy, bad arguments are named."""

import pytest
import torch
import torch.nn.functional as F

from attnlab.models.recall import CELLS, RecallAttention, RecallRNN, recall_params


@pytest.mark.parametrize("cell", list(CELLS))
def test_recurrent_model_reads_the_state_at_the_last_valid_step(cell):
    torch.manual_seed(0)
    model = RecallRNN(cell, 10, 4, 6, 3).eval()
    tokens = torch.randint(0, 10, (2, 7))
    lengths = torch.tensor([4, 7])
    padded = tokens.clone()
    padded[0, 4:] = 9  # changing what follows a sequence's end changes nothing
    torch.testing.assert_close(model(tokens, lengths).logits, model(padded, lengths).logits)
    torch.testing.assert_close(model(tokens[:1, :4], lengths[:1]).logits, model(tokens, lengths).logits[:1])


def test_attention_model_masks_padding_and_reads_the_query():
    torch.manual_seed(0)
    model = RecallAttention(10, 8, 9, 3).eval()
    tokens = torch.randint(0, 10, (2, 7))
    lengths = torch.tensor([4, 7])
    padded = tokens.clone()
    padded[0, 4:] = 9
    torch.testing.assert_close(model(tokens, lengths).logits, model(padded, lengths).logits)
    torch.testing.assert_close(model(tokens[:1, :4], lengths[:1]).logits, model(tokens, lengths).logits[:1])


def test_loss_is_the_cross_entropy_of_the_logits():
    torch.manual_seed(0)
    model = RecallRNN("gru", 10, 4, 6, 3)
    tokens, lengths, targets = torch.randint(0, 10, (5, 6)), torch.full((5,), 6), torch.tensor([0, 1, 2, 0, 1])
    out = model(tokens, lengths, targets)
    torch.testing.assert_close(out.loss, F.cross_entropy(out.logits, targets))
    assert model(tokens, lengths).loss is None


def test_forget_bias_sets_the_forget_gate_alone():
    torch.manual_seed(0)
    default = RecallRNN("lstm", 10, 4, 6, 3)
    torch.manual_seed(0)
    opened = RecallRNN("lstm", 10, 4, 6, 3, forget_bias=1.0)
    H = 6
    total = opened.rnn.bias_ih_l0 + opened.rnn.bias_hh_l0  # the gates see the sum of the two biases
    torch.testing.assert_close(total[H : 2 * H], torch.ones(H))
    for name in ("bias_ih_l0", "bias_hh_l0"):  # i, g and o keep PyTorch's initialisation
        keep = torch.cat([getattr(default.rnn, name)[:H], getattr(default.rnn, name)[2 * H :]])
        torch.testing.assert_close(torch.cat([getattr(opened.rnn, name)[:H], getattr(opened.rnn, name)[2 * H :]]), keep)


@pytest.mark.parametrize("cell", list(CELLS))
def test_parameter_formula_counts_the_model(cell):
    model = RecallRNN(cell, 26, 16, 37, 8)
    assert sum(p.numel() for p in model.parameters()) == recall_params(cell, 26, 16, 37, 8)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="cell"):
        RecallRNN("transformer", 10, 4, 6, 3)
    with pytest.raises(ValueError, match="forget_bias"):
        RecallRNN("gru", 10, 4, 6, 3, forget_bias=1.0)
