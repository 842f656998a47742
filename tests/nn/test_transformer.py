"""TransformerEncoderLayer against torch.nn.TransformerEncoderLayer (weights loaded with from_torch), and the
positional encodings (sinusoidal, learned, rotary) by their defining properties.

Mask conventions are translated for the oracle: our ``key_mask`` (B, S) is True at real keys (torch's
``src_key_padding_mask``: True at padding); our ``is_causal=True`` is given to torch as an explicit causal
``src_mask`` together with ``is_causal=True`` (torch takes the flag only as a hint about the mask).

Devices: the comparisons with torch (and with the float64 rotary reference) run on every device of the ``device``
fixture (both layers initialised on the CPU, torch's moved and ours built from it there; the rotary reference on
the CPU); the other properties and the argument errors run on the CPU.

Shapes: B batch, T time, C model width, nh heads, hs = C / nh head size.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnlab.functional import AttentionMask
from attnlab.nn import (
    KVCache,
    LearnedPositionalEmbedding,
    MultiHeadAttention,
    SinusoidalPositionalEncoding,
    TransformerEncoderLayer,
    apply_rotary,
    sinusoidal_positions,
)

# float64: the same math in (nearly) the same order on both sides; differences are a few ulps.
F64 = {"rtol": 1e-10, "atol": 1e-12}


pytestmark = pytest.mark.usefixtures("one_thread")


def randn(*shape: int, dtype=torch.float32, seed: int = 0, device="cpu") -> Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype).to(device)


def twins(
    *, norm_first: bool, activation: str, bias: bool, dtype=torch.float32, dropout: float = 0.0, seed=0, device="cpu"
):
    """``nn.TransformerEncoderLayer(batch_first=True)`` (C=24, nh=3, hs=8, FFN 40) with every parameter
    randomised (torch zeroes the attention biases and sets the norms to 1/0: a bug would hide behind them),
    initialised on the CPU and moved to ``device``, and ours from it (on its device)."""
    torch.manual_seed(seed)
    theirs = nn.TransformerEncoderLayer(
        24,
        3,
        dim_feedforward=40,
        dropout=dropout,
        activation=activation,
        batch_first=True,
        norm_first=norm_first,
        bias=bias,
        dtype=dtype,
    )
    with torch.no_grad():
        for name, p in theirs.named_parameters():
            if name.endswith("bias") or name.startswith("norm"):
                p.copy_(0.5 * torch.randn_like(p) + (1.0 if name.endswith("norm1.weight") else 0.0))
    theirs = theirs.to(device)
    ours = TransformerEncoderLayer.from_torch(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    return theirs, ours


def check_against_torch(theirs, ours, x: Tensor, *, key_mask=None, is_causal=False, tol=None) -> None:
    """Forward and backward (the input's gradient and every parameter's, by name) of ours and torch's."""
    tol = tol or {}
    T = x.shape[1]
    # torch: True = masked out
    src_mask = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1) if is_causal else None
    padding = None if key_mask is None else ~key_mask  # torch: True = padding
    x_ours, x_pt = x.detach().clone().requires_grad_(), x.detach().clone().requires_grad_()
    y, weights = ours(x_ours, key_mask=key_mask, is_causal=is_causal)
    y_pt = theirs(x_pt, src_mask=src_mask, src_key_padding_mask=padding, is_causal=is_causal)
    assert weights is None
    torch.testing.assert_close(y, y_pt, **tol)
    g = randn(*y.shape, dtype=y.dtype, seed=99, device=y.device)
    ours_params, theirs_params = dict(ours.named_parameters()), dict(theirs.named_parameters())
    assert list(ours_params) == list(theirs_params)
    grads = torch.autograd.grad(y, [x_ours, *ours_params.values()], g)
    grads_pt = torch.autograd.grad(y_pt, [x_pt, *theirs_params.values()], g)
    for name, ours_grad, theirs_grad in zip(["input", *ours_params], grads, grads_pt, strict=True):
        torch.testing.assert_close(ours_grad, theirs_grad, **tol, msg=lambda m, name=name: f"d {name}: {m}")


def padding_mask(lengths: list[int], T: int) -> Tensor:
    return torch.arange(T) < torch.tensor(lengths).unsqueeze(1)  # (B, T), True at real tokens


BLOCKS = pytest.mark.parametrize(
    ("norm_first", "activation", "bias"),
    [(False, "relu", True), (True, "relu", True), (False, "gelu", True), (True, "gelu", False), (False, "gelu", False)],
    ids=["post-relu", "pre-relu", "post-gelu", "pre-gelu-nobias", "post-gelu-nobias"],
)
MASKS = pytest.mark.parametrize(("masking"), ["none", "key_mask", "causal", "both"])


def masks_for(masking: str, B: int, T: int, device="cpu") -> dict:
    key_mask = padding_mask([T, 3, 1][:B], T).to(device) if masking in ("key_mask", "both") else None
    return {"key_mask": key_mask, "is_causal": masking in ("causal", "both")}


@BLOCKS
@MASKS
def test_matches_torch_float32(norm_first, activation, bias, masking, device):
    theirs, ours = twins(norm_first=norm_first, activation=activation, bias=bias, device=device)
    check_against_torch(theirs, ours, randn(3, 7, 24, device=device), **masks_for(masking, 3, 7, device))


@BLOCKS
@MASKS
def test_matches_torch_float64(norm_first, activation, bias, masking, device):
    theirs, ours = twins(norm_first=norm_first, activation=activation, bias=bias, dtype=torch.float64, device=device)
    check_against_torch(
        theirs, ours, randn(3, 7, 24, dtype=torch.float64, device=device), **masks_for(masking, 3, 7, device), tol=F64
    )


def test_batch_of_one_and_single_token(device):
    theirs, ours = twins(norm_first=True, activation="gelu", bias=True, device=device)
    check_against_torch(theirs, ours, randn(1, 1, 24, device=device), is_causal=True)


@pytest.mark.parametrize("norm_first", [False, True])
def test_dropout_layer_in_eval_mode_matches_torch(norm_first, device):
    theirs, ours = twins(norm_first=norm_first, activation="relu", bias=True, dropout=0.3, device=device)
    assert ours.self_attn.dropout == 0.3 and ours.dropout.p == ours.dropout1.p == ours.dropout2.p == 0.3
    theirs.eval(), ours.eval()
    x = randn(2, 6, 24, device=device)
    with torch.no_grad():
        torch.testing.assert_close(ours(x)[0], theirs(x))
    check_against_torch(theirs, ours, x)  # with gradients (torch leaves its fused inference path)


def test_dropout_is_active_in_training_mode():
    _, ours = twins(norm_first=True, activation="relu", bias=True, dropout=0.3)
    x = randn(2, 6, 24)
    ours.train()
    torch.manual_seed(1)
    a = ours(x)[0]
    torch.manual_seed(2)
    b = ours(x)[0]
    assert not torch.allclose(a, b)
    ours.eval()
    torch.testing.assert_close(ours(x)[0], ours(x)[0], rtol=0, atol=0)


def test_need_weights_returns_per_head_weights():
    _, ours = twins(norm_first=False, activation="relu", bias=True)
    x = randn(2, 5, 24)
    y, weights = ours(x, is_causal=True, need_weights=True)
    assert weights.shape == (2, 3, 5, 5)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3, 5))
    assert torch.all(weights.triu(1) == 0)
    torch.testing.assert_close(y, ours(x, is_causal=True)[0])


def test_error_bad_activation():
    with pytest.raises(ValueError, match=r"activation: expected one of \['gelu', 'relu'\], got 'tanh'"):
        TransformerEncoderLayer(16, 2, 32, activation="tanh")


@pytest.mark.parametrize("module", [nn.Linear(4, 4), nn.TransformerDecoderLayer(8, 2, batch_first=True), None])
def test_error_from_torch_of_a_non_layer(module):
    with pytest.raises(TypeError, match=r"m: expected a torch.nn.TransformerEncoderLayer, got"):
        TransformerEncoderLayer.from_torch(module)


@pytest.mark.parametrize(
    "activation", [nn.GELU(approximate="tanh"), F.silu, nn.Tanh()], ids=["gelu-tanh", "silu", "tanh-module"]
)
def test_error_from_torch_of_another_activation(activation):
    m = nn.TransformerEncoderLayer(8, 2, 16, activation=activation, batch_first=True)
    with pytest.raises(ValueError, match=r"m: expected a relu or exact-gelu activation"):
        TransformerEncoderLayer.from_torch(m)


@pytest.mark.parametrize("activation", [nn.GELU(), nn.ReLU()], ids=["GELU", "ReLU"])
def test_from_torch_accepts_activation_modules(activation, device):
    torch.manual_seed(0)
    theirs = nn.TransformerEncoderLayer(24, 3, 40, dropout=0.0, activation=activation, batch_first=True)
    theirs = theirs.to(device)
    ours = TransformerEncoderLayer.from_torch(theirs)
    assert ours.activation_name == type(activation).__name__.lower()
    check_against_torch(theirs, ours, randn(2, 4, 24, device=device))


# --- positional encodings ----------------------------------------------------------------------------------


def test_sinusoidal_known_values():
    pe = sinusoidal_positions(50, 16, dtype=torch.float64)
    assert pe.shape == (50, 16)
    torch.testing.assert_close(pe[0], torch.tensor([0.0, 1.0] * 8, dtype=torch.float64), rtol=0, atol=0)
    p = torch.arange(50, dtype=torch.float64)
    torch.testing.assert_close(pe[:, 0], torch.sin(p), **F64)  # frequency 1 in the first pair
    torch.testing.assert_close(pe[:, 1], torch.cos(p), **F64)
    # the last pair: 10000^(-14/16)
    torch.testing.assert_close(pe[:, 15], torch.cos(p * 10000.0 ** (-14 / 16)), **F64)
    assert pe.abs().max() <= 1.0
    assert sinusoidal_positions(3, 4).dtype == torch.get_default_dtype()


def test_sinusoidal_odd_width():
    pe = sinusoidal_positions(10, 5, dtype=torch.float64)
    p = torch.arange(10, dtype=torch.float64)
    assert pe.shape == (10, 5)
    torch.testing.assert_close(pe[:, 4], torch.sin(p * 10000.0 ** (-4 / 5)), **F64)
    torch.testing.assert_close(pe[:, 3], torch.cos(p * 10000.0 ** (-2 / 5)), **F64)


@pytest.mark.parametrize("k", [1, 7, 30])
def test_sinusoidal_shift_is_a_fixed_rotation_per_pair(k):
    """For each frequency pair there is one 2x2 matrix M_k, the same at every position p, with
    PE(p + k) = M_k PE(p); it is a rotation (orthogonal, det 1) by the angle k * w_i."""
    d, L = 12, 60
    pe = sinusoidal_positions(L, d, dtype=torch.float64)
    for i in range(d // 2):
        now, later = pe[: L - k, 2 * i : 2 * i + 2], pe[k:, 2 * i : 2 * i + 2]  # (L - k, 2) each
        M_t = torch.linalg.lstsq(now, later).solution  # later = now @ M^T, fitted over all positions at once
        torch.testing.assert_close(now @ M_t, later, rtol=0, atol=1e-12)  # one map serves every position
        M = M_t.T
        torch.testing.assert_close(M @ M.T, torch.eye(2, dtype=torch.float64), rtol=0, atol=1e-10)
        assert torch.linalg.det(M).item() == pytest.approx(1.0, abs=1e-10)
        angle = math.atan2(M[0, 1].item(), M[0, 0].item())  # (sin, cos) -> rotated by +angle
        w = 10000.0 ** (-2 * i / d)
        assert math.remainder(angle - k * w, 2 * math.pi) == pytest.approx(0.0, abs=1e-9)


def test_sinusoidal_module_adds_the_table_at_an_offset():
    enc = SinusoidalPositionalEncoding(8, max_len=20)
    assert list(enc.parameters()) == [] and list(enc.state_dict()) == []
    x = randn(2, 5, 8)
    torch.testing.assert_close(enc(x, offset=3) - x, sinusoidal_positions(20, 8)[3:8].expand(2, 5, 8))
    assert enc(randn(1, 20, 8)).shape == (1, 20, 8)  # exactly max_len fits
    with pytest.raises(ValueError, match=r"x: positions up to 21 exceed max_len=20"):
        enc(randn(1, 5, 8), offset=16)
    with pytest.raises(ValueError, match=r"max_len=20"):
        enc(randn(1, 21, 8))


def test_learned_embedding_offset():
    torch.manual_seed(0)
    emb = LearnedPositionalEmbedding(12, 6)
    assert emb.weight.shape == (12, 6)
    x = randn(2, 4, 6)
    torch.testing.assert_close(emb(x, offset=5) - x, emb.weight[5:9].detach().expand(2, 4, 6))
    torch.testing.assert_close(emb(x) - x, emb.weight[:4].detach().expand(2, 4, 6))
    emb(x, offset=8).sum().backward()  # only the rows used get gradient
    assert emb.weight.grad[8:12].abs().min() > 0 and emb.weight.grad[:8].abs().max() == 0
    with pytest.raises(ValueError, match=r"x: positions up to 13 exceed max_len=12"):
        emb(x, offset=9)


@pytest.mark.parametrize(("length", "dim"), [(0, 4), (4, 0), (-1, 4)])
def test_error_sinusoidal_sizes(length, dim):
    with pytest.raises(ValueError, match=r"(length|dim): expected an integer >= 1"):
        sinusoidal_positions(length, dim)


def test_rotary_preserves_norms_and_pairs():
    x = randn(2, 3, 9, 16)
    y = apply_rotary(x, offset=4)
    assert y.shape == x.shape
    torch.testing.assert_close(y.norm(dim=-1), x.norm(dim=-1))
    pair_norms = x.unflatten(-1, (8, 2)).norm(dim=-1)  # each (x_2i, x_2i+1) pair is rotated on its own
    torch.testing.assert_close(y.unflatten(-1, (8, 2)).norm(dim=-1), pair_norms)
    torch.testing.assert_close(apply_rotary(x[..., :1, :], 0), x[..., :1, :], rtol=0, atol=0)  # position 0: identity


def test_rotary_offset_continues_positions():
    x = randn(2, 10, 8)
    whole = apply_rotary(x, offset=3)
    parts = torch.cat([apply_rotary(x[:, :4], offset=3), apply_rotary(x[:, 4:], offset=7)], dim=1)
    torch.testing.assert_close(parts, whole)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("m", "n", "shift"), [(7, 3, 11), (0, 5, 20), (4, 4, 9)])
def test_rotary_dot_product_depends_on_offset_only(dtype, m, n, shift):
    q, k = randn(32, dtype=dtype, seed=1), randn(32, dtype=dtype, seed=2)

    def score(m: int, n: int) -> Tensor:
        q_m = apply_rotary(q.view(1, 32), offset=m)  # q at position m
        k_n = apply_rotary(k.view(1, 32), offset=n)  # k at position n
        return (q_m * k_n).sum()

    torch.testing.assert_close(score(m, n), score(m + shift, n + shift))
    assert not torch.allclose(score(m, n), score(m + 1, n))  # it does depend on m - n
    if m == n:
        torch.testing.assert_close(score(m, n), q @ k)  # offset 0: the plain dot product


def test_error_rotary_odd_head_size():
    with pytest.raises(ValueError, match=r"x: expected an even head size for rotary embeddings, got 5"):
        apply_rotary(randn(2, 3, 5))
    with pytest.raises(ValueError, match=r"rotary: needs an even head size, got embed_dim/num_heads = 5"):
        MultiHeadAttention(10, 2, rotary=True)


def test_rotary_attention_is_relative():
    """With rotary and no other position signal, a causal window of the same tokens gives the same outputs
    wherever it starts: only relative positions enter the scores."""
    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 2, rotary=True)
    x = randn(1, 6, 16)
    at_0 = mha(x, is_causal=True).output
    cache = KVCache()
    mha(randn(1, 5, 16, seed=3), is_causal=True, cache=cache)  # five unrelated earlier positions...
    cache.reset()  # ...dropped: the next call starts at position 0 again
    torch.testing.assert_close(mha(x, is_causal=True, cache=cache).output, at_0)
    plain = MultiHeadAttention(16, 2, rotary=False)
    plain.load_state_dict(mha.state_dict())
    assert not torch.allclose(plain(x, is_causal=True).output, at_0)  # rotary changes the scores


@pytest.mark.parametrize("pieces", [[1] * 20, [5, 1, 1, 13], [20]], ids=["token-by-token", "mixed", "one-call"])
def test_rotary_kv_cached_decoding_equals_full_causal_forward(pieces, device):
    """20 positions (past the cache's first capacity of 16) fed in pieces through one KVCache: each piece's
    rotation continues at the cached length."""
    torch.manual_seed(0)
    mha = MultiHeadAttention(24, 3, rotary=True).to(device)
    x = randn(2, 20, 24, device=device)
    full = mha(x, is_causal=True).output
    cache, outs, t = KVCache(), [], 0
    for n in pieces:
        outs.append(mha(x[:, t : t + n], attn_mask=AttentionMask(causal="lower_right"), cache=cache).output)
        t += n
    assert cache.length == 20
    torch.testing.assert_close(torch.cat(outs, dim=1), full)


def rotary_reference(x: Tensor, offset: int) -> Tensor:
    """RoPE written with complex numbers in float64: ``(x_2i + i x_2i+1) * exp(i p w_i)``, ``w_i = 10000^(-2i/hs)``."""
    T, hs = x.shape[-2], x.shape[-1]
    p = torch.arange(offset, offset + T, dtype=torch.float64).unsqueeze(1)  # (T, 1)
    w = 10000.0 ** (-torch.arange(0, hs, 2, dtype=torch.float64) / hs)  # (hs/2,)
    z = torch.view_as_complex(x.double().unflatten(-1, (hs // 2, 2)).contiguous())  # (..., T, hs/2)
    return torch.view_as_real(z * torch.polar(torch.ones_like(p * w), p * w)).flatten(-2)  # (..., T, hs)


@pytest.mark.parametrize("offset", [0, 5, 1000])
def test_rotary_matches_a_reference_rotation(offset, device):
    """float32 within torch's default tolerances, float64 at float64 precision (far positions included)."""
    x = randn(3, 6, 10, dtype=torch.float64)
    torch.testing.assert_close(apply_rotary(x.float().to(device), offset).cpu(), rotary_reference(x, offset).float())
    torch.testing.assert_close(apply_rotary(x.to(device), offset).cpu(), rotary_reference(x, offset), **F64)
