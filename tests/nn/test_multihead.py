"""MultiHeadAttention against torch.nn.MultiheadAttention (weights loaded with from_torch), and its properties.

The conventions differ on purpose, so the oracle gets translated masks: our bool ``attn_mask`` is True where
attention is allowed (torch's: True where it is not), our ``key_mask`` (B, S) is True at real keys (torch's
``key_padding_mask``: True at padding), and our ``is_causal=True`` is given to torch as an explicit mask.

Devices: the comparisons with torch run on every device of the ``device`` fixture (both layers initialised on the
CPU, torch's moved and ours built from it there; inputs and masks drawn on the CPU and moved); the properties and
the argument errors run on the CPU.

Shapes: B batch, T query length, S key length, E embed_dim, nh heads, hs = E / nh head size.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor, nn

from attnlab.functional import AttentionMask, AttentionOutput
from attnlab.nn import KVCache, MultiHeadAttention

# float64: the same math in (nearly) the same order on both sides; differences are a few ulps.
F64 = {"rtol": 1e-10, "atol": 1e-12}
IMPLS = ["naive", "manual", "chunked", "torch", "auto"]
WEIGHT_IMPLS = ["naive", "manual", "auto"]  # those that can return the weights
WIDTHS = pytest.mark.parametrize(("E", "nh"), [(80, 2), (118, 2)], ids=["hs40", "hs59"])
SETTINGS = settings(max_examples=20, deadline=None, derandomize=True, database=None)


pytestmark = pytest.mark.usefixtures("one_thread")


def randn(*shape: int, dtype=torch.float32, seed: int = 0, device="cpu") -> Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype).to(device)


def twins(E: int, nh: int, *, impl: str = "auto", dtype=torch.float32, seed: int = 0, device="cpu", **kw):
    """``nn.MultiheadAttention(batch_first=True)`` at torch's initialisation but with random biases (torch zeroes
    them, and a bias bug would hide behind zeros), initialised on the CPU and moved to ``device``, and ours from it
    (on its device)."""
    torch.manual_seed(seed)
    theirs = nn.MultiheadAttention(E, nh, batch_first=True, dtype=dtype, **kw)
    with torch.no_grad():
        for name, p in theirs.named_parameters():
            if name.endswith("bias"):
                p.copy_(0.5 * torch.randn_like(p))
    theirs = theirs.to(device)
    ours = MultiHeadAttention.from_torch(theirs, impl=impl)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    return theirs, ours


def random_allowed(shape, seed: int) -> Tensor:
    """A random bool mask, True = allowed, with key 0 always allowed (no row is left without a key)."""
    allowed = torch.rand(shape, generator=torch.Generator().manual_seed(seed)) > 0.4
    allowed[..., 0] = True
    return allowed


def check_against_torch(
    theirs,
    ours,
    query,
    key=None,
    value=None,
    *,
    attn_mask=None,
    key_mask=None,
    is_causal=False,
    need_weights=False,
    tol=None,
):
    """Forward (output, and the per-head weights when asked) and backward (input gradients and every parameter's
    gradient, by name) of ours and torch's on the same inputs, masks translated to torch's conventions."""
    tol = tol or {}
    self_attention = key is None
    T, S = query.shape[-2], (query if self_attention else key).shape[-2]
    torch_mask = attn_mask
    if attn_mask is not None and attn_mask.dtype == torch.bool:
        torch_mask = ~attn_mask  # torch: True = masked out
    if attn_mask is not None and attn_mask.dim() == 4:  # (B, nh, T, S) -> torch's (B * nh, T, S)
        torch_mask = torch_mask.expand(query.shape[0], ours.num_heads, T, S).reshape(-1, T, S)
    if is_causal:
        # True above the diagonal = masked out
        torch_mask = torch.ones(T, S, dtype=torch.bool, device=query.device).triu(1)
    key_padding_mask = None if key_mask is None else ~key_mask  # torch: True = padding
    if key_mask is not None and torch_mask is not None and torch_mask.is_floating_point():
        # the same mask in torch's preferred form (one dtype for both masks), to keep it from warning
        zeros = torch.zeros(key_mask.shape, dtype=query.dtype, device=query.device)
        key_padding_mask = zeros.masked_fill(~key_mask, float("-inf"))
    inputs = [query] if self_attention else [query, key, value]
    leaves = [x.detach().clone().requires_grad_() for x in inputs]
    res = ours(*leaves, attn_mask=attn_mask, key_mask=key_mask, is_causal=is_causal, need_weights=need_weights)
    assert isinstance(res, AttentionOutput)
    q, k, v = leaves * 3 if self_attention else leaves
    out_pt, weights_pt = theirs(
        q,
        k,
        v,
        key_padding_mask=key_padding_mask,
        attn_mask=torch_mask,
        need_weights=need_weights,
        average_attn_weights=False,
    )
    torch.testing.assert_close(res.output, out_pt, **tol)
    if need_weights:
        torch.testing.assert_close(res.weights, weights_pt, **tol)
    else:
        assert res.weights is None
    g = randn(*out_pt.shape, dtype=out_pt.dtype, seed=99, device=out_pt.device)
    ours_params, theirs_params = dict(ours.named_parameters()), dict(theirs.named_parameters())
    assert list(ours_params) == list(theirs_params)
    grads = torch.autograd.grad(res.output, [*leaves, *ours_params.values()], g)
    grads_pt = torch.autograd.grad(out_pt, [*leaves, *theirs_params.values()], g)
    names = [f"input {i}" for i in range(len(leaves))] + list(ours_params)
    for name, ours_grad, theirs_grad in zip(names, grads, grads_pt, strict=True):
        torch.testing.assert_close(ours_grad, theirs_grad, **tol, msg=lambda m, name=name: f"d {name}: {m}")


# name: (B, T, S, twins kwargs, inputs/masks); B None = unbatched; S None = self-attention
CASES = {
    "self": (3, 6, None, {}, {}),
    "self-T1": (2, 1, None, {}, {}),
    "self-B1": (1, 7, None, {}, {}),
    "self-no-bias": (2, 5, None, {"bias": False}, {}),
    "self-unbatched": (None, 6, None, {}, {}),
    "cross-same-dims": (2, 4, 9, {}, {}),
    "cross-kdim-vdim": (2, 5, 8, {"kdim": 24, "vdim": 17}, {}),
    "cross-kdim-vdim-no-bias": (2, 9, 3, {"kdim": 7, "vdim": 11, "bias": False}, {}),
    "cross-unbatched": (None, 3, 7, {"kdim": 12, "vdim": 12}, {"attn_mask": "bool-TS"}),
    "key-mask": (3, 5, 8, {}, {"key_mask": True}),
    "self-key-mask": (3, 6, None, {}, {"key_mask": True}),
    "bool-mask-TS": (2, 5, 7, {}, {"attn_mask": "bool-TS"}),
    "bool-mask-per-head": (2, 5, 7, {}, {"attn_mask": "bool-BhTS"}),
    "float-mask-TS": (2, 6, None, {}, {"attn_mask": "float-TS"}),
    "float-mask-per-head-key-mask": (2, 4, 6, {"kdim": 9, "vdim": 5}, {"attn_mask": "float-BhTS", "key_mask": True}),
    "bool-mask-key-mask": (3, 5, 6, {}, {"attn_mask": "bool-TS", "key_mask": True}),
    "causal": (2, 7, None, {}, {"is_causal": True}),
    "causal-key-mask": (3, 6, None, {}, {"is_causal": True, "key_mask": True}),
    "causal-unbatched": (None, 5, None, {}, {"is_causal": True}),
}


def case_inputs(case: str, E: int, nh: int, *, impl: str = "auto", dtype=torch.float32, device="cpu"):
    """``(theirs, ours, args, kwargs)`` for :func:`check_against_torch`, on ``device``."""
    B, T, S, twin_kw, spec = CASES[case]
    theirs, ours = twins(E, nh, impl=impl, dtype=dtype, device=device, **twin_kw)
    lead = () if B is None else (B,)
    args = [randn(*lead, T, E, dtype=dtype, seed=1)]
    if S is not None:
        args += [randn(*lead, S, ours.kdim, dtype=dtype, seed=2), randn(*lead, S, ours.vdim, dtype=dtype, seed=3)]
    args = [a.to(device) for a in args]
    S = T if S is None else S
    kwargs = {"is_causal": spec.get("is_causal", False)}
    if spec.get("key_mask"):
        kwargs["key_mask"] = random_allowed((B, S), seed=4).to(device)
    kind = spec.get("attn_mask")
    if kind is not None:
        shape = (T, S) if kind.endswith("TS") and not kind.endswith("BhTS") else (B, nh, T, S)
        allowed = random_allowed(shape, seed=5)
        mask = allowed
        if kind.startswith("float"):
            mask = randn(*shape, dtype=dtype, seed=6).masked_fill(~allowed, float("-inf"))
        kwargs["attn_mask"] = mask.to(device)
    return theirs, ours, args, kwargs


# --- against torch, forward and backward -----------------------------------------------------------------


@pytest.mark.parametrize("case", list(CASES))
@WIDTHS
@pytest.mark.parametrize("impl", IMPLS)
def test_matches_torch_float32(impl, E, nh, case, device):
    theirs, ours, args, kwargs = case_inputs(case, E, nh, impl=impl, device=device)
    check_against_torch(theirs, ours, *args, **kwargs)


@pytest.mark.parametrize("case", list(CASES))
@WIDTHS
@pytest.mark.parametrize("impl", WEIGHT_IMPLS)
def test_per_head_weights_match_torch(impl, E, nh, case, device):
    theirs, ours, args, kwargs = case_inputs(case, E, nh, impl=impl, device=device)
    check_against_torch(theirs, ours, *args, **kwargs, need_weights=True)


@pytest.mark.parametrize(
    "case", ["self", "cross-kdim-vdim", "float-mask-per-head-key-mask", "causal-key-mask", "self-unbatched"]
)
@pytest.mark.parametrize("impl", IMPLS)
def test_matches_torch_float64(impl, case, device):
    theirs, ours, args, kwargs = case_inputs(case, 118, 2, impl=impl, dtype=torch.float64, device=device)
    check_against_torch(theirs, ours, *args, **kwargs, tol=F64)
    if impl in WEIGHT_IMPLS:
        check_against_torch(theirs, ours, *args, **kwargs, need_weights=True, tol=F64)


@pytest.mark.parametrize("impl", ["chunked", "torch"])
def test_weights_not_served_by_fused_impls(impl):
    _, ours = twins(16, 2, impl=impl)
    with pytest.raises(ValueError, match=r"^return_weights"):
        ours(randn(2, 3, 16), need_weights=True)


def test_dropout_in_training_only(device):
    """Eval: torch's numbers with dropout set. Training: each weight is dropped (0) or rescaled by 1/(1-p)."""
    p = 0.4
    theirs, ours = twins(16, 2, dropout=p, impl="naive", device=device)
    theirs.eval(), ours.eval()
    x = randn(2, 6, 16, seed=1, device=device)
    check_against_torch(theirs, ours, x, need_weights=True)
    w = ours(x, need_weights=True).weights
    ours.train()
    torch.manual_seed(0)
    w_drop = ours(x, need_weights=True).weights
    dropped = w_drop == 0
    torch.testing.assert_close(w_drop[~dropped], w[~dropped] / (1 - p))
    frac = dropped.float().mean().item()
    assert abs(frac - p) <= 5 * (p * (1 - p) / dropped.numel()) ** 0.5, f"dropped fraction {frac}"


@pytest.mark.parametrize("impl", IMPLS)
def test_sequence_without_real_keys_gives_the_output_bias(impl, device):
    """A batch entry whose keys are all padding: its attention is zero (no NaN), so the layer returns out_proj's
    bias there, and no gradient is NaN."""
    _, ours = twins(16, 2, impl=impl, device=device)
    x = randn(3, 5, 16, seed=1, dtype=torch.float64, device=device).requires_grad_()
    ours = ours.double()
    key_mask = random_allowed((3, 5), seed=2)
    key_mask[1] = False
    key_mask = key_mask.to(device)
    out = ours(x, key_mask=key_mask).output
    torch.testing.assert_close(out[1], ours.out_proj.bias.expand(5, 16), rtol=0, atol=0)
    out.sum().backward()
    assert torch.isfinite(x.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in ours.parameters())


# --- properties -----------------------------------------------------------------------------------------------


@SETTINGS
@given(T=st.integers(1, 9), seed=st.integers(0, 2**16), with_key_mask=st.booleans())
@pytest.mark.parametrize("impl", IMPLS)
def test_property_permutation_equivariant(impl, T, seed, with_key_mask):
    """Without positions, self-attention is a function of the set of tokens: permuting them permutes the output."""
    _, ours = twins(16, 2, impl=impl, seed=seed % 7)
    x = randn(2, T, 16, seed=seed)
    perm = torch.randperm(T, generator=torch.Generator().manual_seed(seed))
    key_mask = random_allowed((2, T), seed=seed) if with_key_mask else None
    out = ours(x, key_mask=key_mask).output
    out_perm = ours(x[:, perm], key_mask=None if key_mask is None else key_mask[:, perm]).output
    torch.testing.assert_close(out_perm, out[:, perm])


LOWER_RIGHT = AttentionMask(causal="lower_right")  # the new queries are the last positions


@pytest.mark.parametrize(
    "steps",
    [[5] + [1] * 15, [1] * 20, [3, 4, 1, 6, 2, 4], [20]],
    ids=["prefill-then-one-at-a-time", "one-at-a-time", "several-at-a-time", "all-at-once"],
)
@pytest.mark.parametrize("with_key_mask", [False, True], ids=["", "key-mask"])
@pytest.mark.parametrize("impl", IMPLS)
def test_kv_cached_decoding_equals_full_causal_forward(impl, with_key_mask, steps, device):
    """20 positions (past the cache's first capacity of 16, so it grows) fed in pieces through one KVCache."""
    _, ours = twins(80, 2, impl=impl, device=device)
    x = randn(2, 20, 80, seed=1, device=device)
    key_mask = None
    if with_key_mask:
        key_mask = random_allowed((2, 20), seed=2).to(device)
    with torch.no_grad():
        full = ours(x, is_causal=True, key_mask=key_mask).output
        cache, pieces, t = KVCache(), [], 0
        for n in steps:
            km = None if key_mask is None else key_mask[:, : t + n]  # (B, S): every key seen so far
            pieces.append(ours(x[:, t : t + n], attn_mask=LOWER_RIGHT, key_mask=km, cache=cache).output)
            t += n
    assert cache.length == 20
    torch.testing.assert_close(torch.cat(pieces, dim=1), full)


def test_is_causal_after_a_cache_is_refused_and_names_the_explicit_mask():
    """``is_causal`` is top-left everywhere; queries after cached keys need the bottom-right mask, spelled out."""
    _, ours = twins(16, 2)
    x = randn(1, 4, 16, seed=1)
    cache = KVCache()
    ours(x, is_causal=True, cache=cache)  # an empty cache: T == S, the two alignments agree
    with pytest.raises(
        ValueError, match=r"^is_causal: top-left causal .* attn_mask=AttentionMask\(causal='lower_right'\)"
    ):
        ours(x[:, :1], is_causal=True, cache=cache)


@SETTINGS
@given(S=st.integers(2, 10), T=st.integers(1, 6), seed=st.integers(0, 2**16))
@pytest.mark.parametrize("impl", IMPLS)
def test_property_padded_keys_change_nothing(impl, S, T, seed):
    _, ours = twins(16, 2, impl=impl, kdim=6, vdim=5)
    key_mask = random_allowed((2, S), seed=seed)  # True at real keys
    pad = ~key_mask[..., None]  # (B, S, 1)
    q, k, v = randn(2, T, 16, seed=seed), randn(2, S, 6, seed=seed + 1), randn(2, S, 5, seed=seed + 2)
    k2 = torch.where(pad, randn(2, S, 6, seed=seed + 3) * 30, k)  # whatever the padding holds
    v2 = torch.where(pad, randn(2, S, 5, seed=seed + 4) * 30, v)
    out = ours(q, k, v, key_mask=key_mask).output
    torch.testing.assert_close(ours(q, k2, v2, key_mask=key_mask).output, out, rtol=0, atol=0)


@SETTINGS
@given(T=st.integers(2, 10), seed=st.integers(0, 2**16))
@pytest.mark.parametrize("impl", IMPLS)
def test_property_self_attention_padding_changes_no_real_position(impl, T, seed):
    _, ours = twins(16, 2, impl=impl)
    key_mask = random_allowed((2, T), seed=seed)
    x = randn(2, T, 16, seed=seed)
    x2 = torch.where(~key_mask[..., None], randn(2, T, 16, seed=seed + 1) * 30, x)
    out, out2 = ours(x, key_mask=key_mask).output, ours(x2, key_mask=key_mask).output
    torch.testing.assert_close(out2[key_mask], out[key_mask], rtol=0, atol=0)


# --- errors ---------------------------------------------------------------------------------------------------


def test_error_embed_dim_not_divisible():
    with pytest.raises(ValueError, match=r"^embed_dim: expected a multiple of num_heads=3"):
        MultiHeadAttention(16, 3)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"dropout": 1.0}, r"^dropout: expected a probability"),
        ({"dropout": -0.1}, r"^dropout: expected a probability"),
        ({"impl": "flash"}, r"^impl: expected one of"),
        ({"kdim": 0}, r"^kdim: expected an integer >= 1"),
    ],
)
def test_error_constructor_arguments(kw, message):
    with pytest.raises(ValueError, match=message):
        MultiHeadAttention(16, 2, **kw)


@pytest.mark.parametrize(
    ("shapes", "message"),
    [
        (((2, 4, 15), None, None), r"^query: expected last dimension 16"),
        (((2, 4, 16), (2, 5, 7), (2, 5, 5)), r"^key: expected last dimension 6"),
        (((2, 4, 16), (2, 5, 6), (2, 5, 6)), r"^value: expected last dimension 5"),
        (((2, 4, 16), (3, 5, 6), (3, 5, 5)), r"^key: expected batch size 2"),
        (((2, 4, 16), (2, 5, 6), (2, 4, 5)), r"^value: expected batch and length \(2, 5\)"),
        (((2, 4, 16), (2, 5, 6), (1, 5, 5)), r"^value: expected batch and length \(2, 5\)"),
        (((2, 4, 16), (5, 6), (5, 5)), r"^query/key/value: expected the same rank"),
        (((1, 2, 4, 16), None, None), r"^query: expected a 2-D or 3-D tensor"),
    ],
)
def test_error_inputs(shapes, message):
    mha = MultiHeadAttention(16, 2, kdim=6, vdim=5)
    tensors = [None if s is None else randn(*s) for s in shapes]
    if tensors[1] is None:
        mha = MultiHeadAttention(16, 2)
    with pytest.raises(ValueError, match=message):
        mha(*tensors)


def test_error_input_not_float():
    with pytest.raises(TypeError, match=r"^query: expected a floating-point tensor"):
        MultiHeadAttention(16, 2)(torch.zeros(2, 4, 16, dtype=torch.long))


@pytest.mark.parametrize(
    ("key_mask", "error", "message"),
    [
        (torch.ones(2, 4, dtype=torch.bool), ValueError, r"^key_mask: expected shape \(B, S\) = \(2, 5\)"),
        (torch.ones(5, dtype=torch.bool), ValueError, r"^key_mask: expected shape \(B, S\) = \(2, 5\)"),
        (torch.ones(2, 1, 5, dtype=torch.bool), ValueError, r"^key_mask: expected shape \(B, S\) = \(2, 5\)"),
        (torch.ones(2, 5), TypeError, r"^key_mask: expected a bool tensor"),
        (torch.ones(2, 5, dtype=torch.long), TypeError, r"^key_mask: expected a bool tensor"),
    ],
    ids=["short", "1-D", "3-D", "float", "long"],
)
def test_error_key_mask(key_mask, error, message):
    mha = MultiHeadAttention(16, 2)
    with pytest.raises(error, match=message):
        mha(randn(2, 4, 16), randn(2, 5, 16), key_mask=key_mask)


@pytest.mark.parametrize(
    "shape",
    [(4, 6), (5, 4), (4, 4, 5), (3, 2, 4, 5), (2, 3, 4, 5), (1, 2, 2, 4, 5)],
    ids=["wrong-S", "wrong-T", "torch-B*nh-layout", "wrong-B", "wrong-nh", "5-D"],
)
def test_error_attn_mask_does_not_broadcast(shape):
    """(The 5-D mask broadcasts *with* (B, nh, T, S) but not *to* it: the SDPA's check names it, in its words.)"""
    mha = MultiHeadAttention(16, 2)
    with pytest.raises(ValueError, match=r"^attn_mask: expected a shape (broadcastable|that broadcasts) to \("):
        mha(randn(2, 4, 16), randn(2, 5, 16), attn_mask=torch.ones(shape, dtype=torch.bool))


def test_error_attn_mask_dtype_and_with_is_causal():
    mha = MultiHeadAttention(16, 2)
    x = randn(2, 4, 16)
    with pytest.raises(TypeError, match=r"^attn_mask: expected dtype torch.bool or torch.float32"):
        mha(x, attn_mask=torch.ones(4, 4, dtype=torch.long))
    with pytest.raises(TypeError, match=r"^attn_mask: expected dtype torch.bool or torch.float32"):
        mha(x, attn_mask=torch.zeros(4, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"^attn_mask: expected None when is_causal=True"):
        mha(x, attn_mask=torch.ones(4, 4, dtype=torch.bool), is_causal=True)


@pytest.mark.parametrize("module", [nn.Linear(4, 4), nn.TransformerEncoderLayer(8, 2), None], ids=str)
def test_error_from_torch_of_a_non_mha(module):
    with pytest.raises(TypeError, match=r"^m: expected a torch.nn.MultiheadAttention"):
        MultiHeadAttention.from_torch(module)


def test_error_from_torch_unsupported_options():
    with pytest.raises(ValueError, match=r"^m: add_bias_kv and add_zero_attn are not supported"):
        MultiHeadAttention.from_torch(nn.MultiheadAttention(8, 2, add_bias_kv=True))
