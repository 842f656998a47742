"""AdditiveAttention and LuongAttention against the loop references of the papers (float64, forward and backward).

The modules' parameters are named after the equations (W, U, v, b; W_a, v_a), the same names the reference cases
use, so ``torch.func.functional_call`` runs a module on exactly the reference's tensors and every parameter
gradient is compared by name. The reference (:mod:`classic_reference`, under ``tests/functional``) is loaded by
path: it is shared with the functional tests, not written twice.

Devices: the comparisons with the reference run the module on every device of the ``device`` fixture (the inputs
moved there, the results moved back differentiably: see :func:`run_on`), the reference on the CPU in float64.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
import torch
from torch import Tensor
from torch.func import functional_call

from attnlab.functional import AttentionOutput
from attnlab.nn import AdditiveAttention, LuongAttention


def _load_reference():
    path = Path(__file__).resolve().parents[1] / "functional" / "classic_reference.py"
    spec = importlib.util.spec_from_file_location("_classic_reference_for_nn", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ref = _load_reference()
F64 = {"rtol": 1e-10, "atol": 1e-12}


pytestmark = pytest.mark.usefixtures("one_thread")


def module_for(score: str, x: dict[str, Tensor], backward: str = "autograd"):
    """The module whose parameters have the shapes of the case's tensors (float64)."""
    Dq, Dk = x["query"].shape[-1], x["keys"].shape[-1]
    kw = {"backward": backward, "dtype": torch.float64}
    if score.startswith("additive"):
        return AdditiveAttention(Dq, Dk, ref.ATTN, bias=score == "additive-bias", **kw)
    return LuongAttention(Dq, Dk, score, ref.ATTN if score == "concat" else None, **kw)


def run_module(m, score: str, x: dict[str, Tensor], key_mask):
    params = {name: x[name] for name in ref.PARAMS[score]}
    out = functional_call(m, params, (x["query"], x["keys"], x.get("values")), {"key_mask": key_mask})
    assert isinstance(out, AttentionOutput)
    return out.output, out.weights


def run_on(device: str, m, score: str, key_mask):
    """:func:`run_module` on ``device`` (``m`` moved there) for a dict of CPU tensors: the inputs and the mask moved
    there, the results moved back to the CPU. ``.to`` is differentiable, so the gradients reach the CPU leaves; on
    the CPU every move is a no-op."""
    m = m.to(device)
    mask = None if key_mask is None else key_mask.to(device)
    return lambda x: tuple(t.cpu() for t in run_module(m, score, {k: v.to(device) for k, v in x.items()}, mask))


@pytest.mark.parametrize("backward", ["autograd", "manual"])
@pytest.mark.parametrize("mask", ref.MASKS)
@pytest.mark.parametrize("separate_values", [False, True], ids=["values=keys", "values"])
@pytest.mark.parametrize("shape", list(ref.SHAPES))
@pytest.mark.parametrize("score", ref.SCORES)
def test_matches_loop_reference(score, shape, separate_values, mask, backward, device):
    x = ref.make_inputs(score, shape, separate_values=separate_values)
    key_mask = ref.key_mask_for(mask, *x["keys"].shape[:2])
    m = module_for(score, x, backward)
    assert sorted(name for name, _ in m.named_parameters()) == sorted(ref.PARAMS[score])
    c, w, grads = ref.forward_backward(run_on(device, m, score, key_mask), x)
    c_ref, w_ref, grads_ref = ref.forward_backward(lambda t: ref.reference(score, t, key_mask), x)
    torch.testing.assert_close(c, c_ref, **F64)
    torch.testing.assert_close(w, w_ref, **F64)
    for name in x:
        torch.testing.assert_close(grads[name], grads_ref[name], **F64, msg=name)


@pytest.mark.parametrize("score", ref.SCORES)
def test_manual_backward_is_the_hand_derived_function(score, device):
    x = {k: v.to(device) for k, v in ref.make_inputs(score, "step").items()}
    m = module_for(score, x, "manual").to(device)
    out = m(x["query"].requires_grad_(), x["keys"], x["values"])
    expected = "DotAttentionFunctionBackward" if score in ("dot", "general") else "AdditiveAttentionFunctionBackward"
    assert out.output.grad_fn.name() == expected
    m.backward_mode = "autograd"
    assert m(x["query"], x["keys"], x["values"]).output.grad_fn.name() != expected


def test_concat_is_additive_with_split_weights():
    # Luong's concat score v_a^T tanh(W_a [h; hbar]) equals Bahdanau's with W = W_a[:, :Dq], U = W_a[:, Dq:]
    torch.manual_seed(0)
    luong = LuongAttention(4, 3, "concat", attn_size=6, dtype=torch.float64)
    bahdanau = AdditiveAttention(4, 3, 6, dtype=torch.float64)
    with torch.no_grad():
        bahdanau.W.copy_(luong.W_a[:, :4])
        bahdanau.U.copy_(luong.W_a[:, 4:])
        bahdanau.v.copy_(luong.v_a)
    q, k = ref.randn(2, 5, 4), ref.randn(2, 7, 3, seed=1)
    a, b = luong(q, k), bahdanau(q, k)
    torch.testing.assert_close(a.output, b.output, **F64)
    torch.testing.assert_close(a.weights, b.weights, **F64)


def test_parameters_shapes_and_initialisation():
    torch.manual_seed(0)
    m = AdditiveAttention(16, 9, 25)
    assert [(n, tuple(p.shape)) for n, p in m.named_parameters()] == [("W", (25, 16)), ("U", (25, 9)), ("v", (25,))]
    for p, fan_in in ((m.W, 16), (m.U, 9), (m.v, 25)):  # nn.Linear's bound, and not a degenerate init
        assert p.abs().max() <= 1 / math.sqrt(fan_in) and p.std() > 0.3 / math.sqrt(fan_in)
    with_bias = AdditiveAttention(16, 9, 25, bias=True)
    assert list(with_bias.state_dict()) == ["W", "U", "v", "b"] and torch.equal(with_bias.b, torch.zeros(25))
    assert list(LuongAttention(8, 8).state_dict()) == []
    general = LuongAttention(8, 5, "general")
    assert [(n, tuple(p.shape)) for n, p in general.named_parameters()] == [("W_a", (8, 5))]
    concat = LuongAttention(8, 5, "concat")
    assert concat.attn_size == 8  # defaults to query_size
    assert [(n, tuple(p.shape)) for n, p in concat.named_parameters()] == [("W_a", (8, 13)), ("v_a", (8,))]


def test_float32_default_and_dtype_follow():
    torch.manual_seed(0)
    m = AdditiveAttention(4, 3, 5)
    q, k, v = torch.randn(2, 4), torch.randn(2, 6, 3), torch.randn(2, 6, 7)
    out = m(q, k, v)
    assert out.output.dtype == torch.float32 and out.output.shape == (2, 7) and out.weights.shape == (2, 6)
    m64 = AdditiveAttention(4, 3, 5, dtype=torch.float64)
    with torch.no_grad():
        for p, p32 in zip(m64.parameters(), m.parameters(), strict=True):
            p.copy_(p32)
    out64 = m64(q.double(), k.double(), v.double())
    torch.testing.assert_close(out.output, out64.output.float())  # float32 within default tolerances of float64


def test_padding_and_dead_rows_through_the_module():
    torch.manual_seed(0)
    m = LuongAttention(4, 4, "general")
    q, k = torch.randn(3, 2, 4), torch.randn(3, 5, 4)
    key_mask = torch.tensor([[True, True, False, False, False], [True] * 5, [False] * 5])
    out = m(q, k, key_mask=key_mask)
    short = m(q[:1], k[:1, :2])  # the first sequence without its padding
    torch.testing.assert_close(out.output[:1], short.output)
    torch.testing.assert_close(out.weights[0, :, :2], short.weights[0])
    assert torch.equal(out.weights[2], torch.zeros(2, 5)) and torch.equal(out.output[2], torch.zeros(2, 4))
    torch.testing.assert_close(out.weights[:2].sum(-1), torch.ones(2, 2))


# --- errors name the argument ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "error", "pattern"),
    [
        (lambda: AdditiveAttention(0, 3, 4), ValueError, r"^query_size: expected an integer >= 1, got 0"),
        (lambda: AdditiveAttention(3, 3.0, 4), ValueError, r"^key_size: expected an integer"),
        (lambda: AdditiveAttention(3, 3, -1), ValueError, r"^attn_size: expected an integer >= 1"),
        (lambda: AdditiveAttention(3, 3, 4, backward="numeric"), ValueError, r"^backward: expected one of"),
        (lambda: LuongAttention(3, 3, "cosine"), ValueError, r"^score: expected one of \('dot', 'general', 'concat'\)"),
        (lambda: LuongAttention(3, 4, "dot"), ValueError, r"^key_size: the dot score needs key_size == query_size"),
        (lambda: LuongAttention(3, 3, "dot", 8), ValueError, r"^attn_size: expected None for score='dot'"),
        (lambda: LuongAttention(3, 4, "general", 8), ValueError, r"^attn_size: expected None for score='general'"),
        (lambda: LuongAttention(3, 4, "concat", 0), ValueError, r"^attn_size: expected an integer >= 1"),
        (lambda: LuongAttention(3, 3, backward="auto"), ValueError, r"^backward: expected one of"),
    ],
)
def test_constructor_errors_name_the_argument(make, error, pattern):
    with pytest.raises(error, match=pattern):
        make()


@pytest.mark.parametrize("module", ["additive", "general"])
def test_forward_errors_name_the_argument(module):
    torch.manual_seed(0)
    m = AdditiveAttention(4, 3, 5) if module == "additive" else LuongAttention(4, 3, "general")
    q, k = torch.randn(2, 4), torch.randn(2, 6, 3)
    with pytest.raises(ValueError, match=r"^query: expected last dimension query_size=4, got shape \(2, 5\)"):
        m(torch.randn(2, 5), k)
    with pytest.raises(ValueError, match=r"^keys: expected last dimension key_size=3, got shape \(2, 6, 4\)"):
        m(q, torch.randn(2, 6, 4))
    with pytest.raises(ValueError, match=r"^query: expected a 2-D or 3-D tensor"):
        m(torch.randn(4), k)
    with pytest.raises(ValueError, match=r"^keys: expected a 3-D tensor"):
        m(q, torch.randn(6, 3))
    with pytest.raises(ValueError, match=r"^values: expected batch and length \(2, 6\)"):
        m(q, k, torch.randn(2, 5, 3))
    with pytest.raises(TypeError, match=r"^key_mask: expected a bool tensor"):
        m(q, k, key_mask=torch.ones(2, 6, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"^key_mask: expected shape \(2, 6\)"):
        m(q, k, key_mask=torch.ones(6, dtype=torch.bool))
    with pytest.raises(TypeError, match=r"^keys: expected dtype torch.float32"):
        m(q, k.double())
    m.backward_mode = "numeric"
    with pytest.raises(ValueError, match=r"^backward: expected one of"):
        m(q, k)


def test_additive_projected_keys_equal_projecting_at_every_call():
    torch.manual_seed(0)
    attn = AdditiveAttention(5, 7, 6).double()
    q, keys = torch.randn(3, 5, dtype=torch.float64), torch.randn(3, 4, 7, dtype=torch.float64)
    mask = torch.tensor([[True] * 4, [True, True, False, False], [True, False, False, False]])
    want = attn(q, keys, key_mask=mask)
    got = attn(q, keys, key_mask=mask, projected_keys=attn.project_keys(keys))
    torch.testing.assert_close(got.output, want.output, rtol=0, atol=1e-12)
    torch.testing.assert_close(got.weights, want.weights, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="projected_keys: expected shape"):
        attn(q, keys, projected_keys=torch.randn(3, 4, 5, dtype=torch.float64))
    attn.backward_mode = "manual"
    with pytest.raises(ValueError, match="projected_keys: only with backward='autograd'"):
        attn(q, keys, projected_keys=attn.project_keys(keys))
