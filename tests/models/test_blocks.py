"""attnlab.models.blocks: the compared blocks' parameter formulas count real blocks, the width solver is the nearest,
the blocks' loss is the MSE against targets, the attention block is causal, the causal convolution reaches exactly
(k - 1) dilation positions back."""

import pytest
import torch
import torch.nn.functional as F

from attnlab.models.blocks import (
    AttentionBlock,
    CausalConv,
    LSTMBlock,
    attention_block_params,
    lstm_block_params,
    solve_lstm_hidden,
)


@pytest.mark.parametrize(("C", "r"), [(32, 4), (128, 4), (96, 2)])
def test_parameter_formulas_and_the_equal_parameter_width(C, r):
    H = solve_lstm_hidden(C, attention_block_params(C, r))
    assert sum(q.numel() for q in AttentionBlock(C, 4, r).parameters()) == attention_block_params(C, r)
    assert sum(q.numel() for q in LSTMBlock(C, H).parameters()) == lstm_block_params(C, H)
    target = attention_block_params(C, r)
    for other in (H - 1, H + 1):  # the solved width is the closest in parameters
        assert abs(lstm_block_params(C, H) - target) <= abs(lstm_block_params(C, other) - target)
    assert solve_lstm_hidden(128, attention_block_params(128, 4)) == 156  # 4H^2 + 648H + 128 = 198,272


@pytest.mark.parametrize("block", [lambda: AttentionBlock(16, 2, 2), lambda: LSTMBlock(16, 12)])
def test_block_loss_is_the_mse_and_the_output_is_causal(block):
    torch.manual_seed(0)
    b = block().eval()
    x, y = torch.randn(2, 7, 16), torch.randn(2, 7, 16)
    out = b(x, y)
    torch.testing.assert_close(out.loss, F.mse_loss(out.output, y))
    later = x.clone()
    later[:, 4:] += 1.0  # changing positions 4.. changes nothing before them
    torch.testing.assert_close(b(later).output[:, :4], out.output[:, :4])
    assert b(x).loss is None


@pytest.mark.parametrize(("k", "dilation"), [(3, 1), (2, 4), (3, 3)])
def test_causal_conv_reaches_exactly_k_minus_1_times_dilation_back(k, dilation):
    torch.manual_seed(0)
    conv = CausalConv(3, k, dilation).double()
    x = torch.randn(1, 20, 3, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(conv(x)[0, 15].sum(), x)
    reached = [t for t in range(20) if grad[0, t].abs().sum() > 0]
    assert reached == [15 - j * dilation for j in reversed(range(k))]
