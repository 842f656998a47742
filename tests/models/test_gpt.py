"""The mini-GPT: config validation, the loss against F.cross_entropy, causality, weight tying, and generation
(KV-cached decoding gives the same tokens as full recomputation, before and past block_size).

Devices: the loss, causality, batching, caching and generation tests run on every device of the ``device`` fixture
(the model initialised on the CPU from the seed and moved; tokens drawn on the CPU and moved; a sampling generator
on the model's device, as ``torch.multinomial`` needs); config, structure and argument errors run on the CPU.

Shapes: B batch, T time, C n_embd, V vocab_size.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from attnlab.models import GPT, GPTConfig, GPTOutput
from attnlab.nn import KVCache

TINY = {"vocab_size": 11, "block_size": 12, "n_layer": 2, "n_head": 2, "n_embd": 16}


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_gpt(seed: int = 0, device="cpu", **overrides) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig(**{**TINY, **overrides})).to(device).eval()


def tokens(B: int, T: int, seed: int = 0, V: int = TINY["vocab_size"], device="cpu") -> Tensor:
    return torch.randint(V, (B, T), generator=torch.Generator().manual_seed(seed)).to(device)


# --- config ------------------------------------------------------------------------------------------------


def test_config_defaults_are_nanogpt_names():
    c = GPTConfig()
    assert c.to_json() == {
        "vocab_size": 65,
        "block_size": 256,
        "n_layer": 6,
        "n_head": 6,
        "n_embd": 384,
        "dropout": 0.0,
        "bias": True,
    }
    with pytest.raises(AttributeError):
        c.n_layer = 3  # frozen


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"n_embd": 30, "n_head": 4}, r"n_embd: expected a multiple of n_head=4, got 30"),
        ({"vocab_size": 0}, r"vocab_size: expected an integer >= 1, got 0"),
        ({"block_size": 0}, r"block_size: expected an integer >= 1, got 0"),
        ({"n_layer": 0}, r"n_layer: expected an integer >= 1, got 0"),
        ({"n_head": 0}, r"n_head: expected an integer >= 1, got 0"),
        ({"n_embd": 0}, r"n_embd: expected an integer >= 1, got 0"),
        ({"n_layer": 2.0}, r"n_layer: expected an integer >= 1, got 2.0"),
        ({"n_layer": True}, r"n_layer: expected an integer >= 1, got True"),
        ({"dropout": -0.1}, r"dropout: expected a probability in \[0, 1\), got -0.1"),
        ({"dropout": 1.0}, r"dropout: expected a probability in \[0, 1\), got 1.0"),
    ],
)
def test_config_validation_names_the_field(kw, message):
    with pytest.raises(ValueError, match=message):
        GPTConfig(**{**TINY, **kw})


def test_error_config_of_another_type():
    with pytest.raises(TypeError, match=r"config: expected a GPTConfig, got dict"):
        GPT(TINY)


# --- forward -----------------------------------------------------------------------------------------------


def test_forward_shapes():
    model = tiny_gpt()
    idx = tokens(3, 7)
    out = model(idx, idx)
    assert isinstance(out, GPTOutput)
    assert out.logits.shape == (3, 7, 11) and out.loss.shape == ()
    last = model(idx)
    assert last.loss is None and last.logits.shape == (3, 1, 11)  # generation needs only the last position
    torch.testing.assert_close(last.logits, out.logits[:, -1:])
    assert model.logits(idx).shape == (3, 7, 11)


def test_loss_is_cross_entropy_of_the_logits(device):
    model = tiny_gpt(device=device)
    idx, targets = tokens(3, 7, seed=1, device=device), tokens(3, 7, seed=2, device=device)
    out = model(idx, targets)
    torch.testing.assert_close(out.loss, F.cross_entropy(out.logits.reshape(-1, 11), targets.reshape(-1)))
    # at initialisation the model is close to uniform over V: loss near ln V
    assert abs(out.loss.item() - torch.log(torch.tensor(11.0)).item()) < 0.1


def test_targets_minus_one_are_ignored(device):
    model = tiny_gpt(device=device)
    idx, targets = tokens(2, 6, seed=1, device=device), tokens(2, 6, seed=2, device=device)
    masked = targets.clone()
    masked[0, :4] = -1
    masked[1, 5] = -1
    out = model(idx, masked)
    keep = masked != -1
    log_probs = out.logits.log_softmax(-1)  # (B, T, V)
    nll = -log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # (B, T)
    torch.testing.assert_close(out.loss, nll[keep].mean())  # the mean over the 7 kept positions only
    assert not torch.allclose(out.loss, model(idx, targets).loss)


def test_logits_equals_the_training_forwards_logits(device):
    model = tiny_gpt(device=device)
    idx = tokens(2, 12, seed=3, device=device)  # a full block
    torch.testing.assert_close(model.logits(idx), model(idx, idx).logits, rtol=0, atol=0)


def test_causal_future_tokens_do_not_change_earlier_logits(device):
    model = tiny_gpt(device=device)
    idx = tokens(2, 10, seed=4, device=device)
    changed = idx.clone()
    changed[:, 6:] = (changed[:, 6:] + 1) % 11
    a, b = model.logits(idx), model.logits(changed)
    torch.testing.assert_close(a[:, :6], b[:, :6])
    assert not torch.allclose(a[:, 6:], b[:, 6:])


def test_batched_equals_one_by_one(device):
    model = tiny_gpt(device=device)
    idx = tokens(3, 8, seed=5, device=device)
    rows = torch.cat([model.logits(idx[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(model.logits(idx), rows)


def test_weight_tying_the_head_is_the_token_embedding():
    model = tiny_gpt()
    C, V = TINY["n_embd"], TINY["vocab_size"]
    names = [n for n, p in model.named_parameters() if p.shape in ((V, C), (C, V))]
    assert names == ["wte.weight"]  # no separate (V, C) head
    idx = torch.tensor([[1, 2, 3, 1]])  # token 7 never appears in the input...
    model(idx, idx).loss.backward()
    assert model.wte.weight.grad[7].abs().max() > 0  # ...yet its row gets gradient: through the output head
    with torch.no_grad():
        model.wte.weight[7] += 1.0  # moves the logit of token 7 only
    model.zero_grad()
    before = tiny_gpt().logits(idx)
    after = model.logits(idx)
    others = [v for v in range(V) if v != 7]
    torch.testing.assert_close(after[..., others], before[..., others])
    assert not torch.allclose(after[..., 7], before[..., 7])


def test_num_params():
    model = tiny_gpt()
    total = sum(p.numel() for p in model.parameters())
    assert model.num_params(non_embedding=False) == total
    assert model.num_params() == total - TINY["block_size"] * TINY["n_embd"]


def test_bias_false_has_no_biases():
    model = tiny_gpt(bias=False)
    assert not [n for n, _ in model.named_parameters() if n.endswith("bias")]
    assert model(tokens(1, 4), tokens(1, 4)).loss.isfinite()


def test_dropout_only_in_training(device):
    model = tiny_gpt(dropout=0.2, device=device)
    idx = tokens(2, 8, device=device)
    torch.testing.assert_close(model.logits(idx), model.logits(idx), rtol=0, atol=0)
    model.train()
    torch.manual_seed(1)
    a = model.logits(idx)
    torch.manual_seed(2)
    assert not torch.allclose(a, model.logits(idx))


def test_forward_with_caches_equals_full_forward(device):
    model = tiny_gpt(device=device)
    idx = tokens(2, 9, seed=6, device=device)
    full = model.logits(idx)
    caches = [KVCache() for _ in model.blocks]
    first = model(idx[:, :5], caches=caches).logits  # the last position of the prompt
    torch.testing.assert_close(first[:, 0], full[:, 4])
    for t in range(5, 9):
        torch.testing.assert_close(model(idx[:, t : t + 1], caches=caches).logits[:, 0], full[:, t])
    assert caches[0].length == 9


# --- generate ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("T0", "new"), [(1, 5), (4, 8), (3, 25), (12, 6)], ids=["short", "to-block", "past", "full"])
def test_greedy_cached_equals_uncached(T0, new, device):
    """Token for token, also past block_size=12 (the context is cropped and the cache rebuilt)."""
    model = tiny_gpt(device=device)
    idx = tokens(2, T0, seed=7, device=device)
    cached = model.generate(idx, new, temperature=0, use_cache=True)
    uncached = model.generate(idx, new, temperature=0, use_cache=False)
    assert cached.shape == (2, T0 + new) and cached.dtype == idx.dtype
    assert torch.equal(cached[:, :T0], idx)
    assert torch.equal(cached, uncached)


def test_greedy_is_the_argmax_of_the_logits(device):
    model = tiny_gpt(device=device)
    idx = tokens(2, 3, seed=8, device=device)
    out = model.generate(idx, 4, temperature=0)
    for t in range(3, 7):
        assert torch.equal(out[:, t], model.logits(out[:, :t])[:, -1].argmax(-1))


def test_sampling_with_a_seeded_generator_is_reproducible(device):
    model = tiny_gpt(device=device)
    idx = tokens(3, 2, seed=9, device=device)

    def sample(seed: int, **kw) -> Tensor:
        return model.generate(idx, 20, temperature=1.5, generator=torch.Generator(device).manual_seed(seed), **kw)

    assert torch.equal(sample(1), sample(1))
    assert not torch.equal(sample(1), sample(2))
    assert torch.equal(sample(1, top_k=3), sample(1, top_k=3))


def test_top_k_one_is_greedy(device):
    model = tiny_gpt(device=device)
    idx = tokens(2, 3, seed=10, device=device)
    greedy = model.generate(idx, 15, temperature=0)
    gen = torch.Generator(device).manual_seed(0)
    assert torch.equal(model.generate(idx, 15, temperature=1.0, top_k=1, generator=gen), greedy)


def test_top_k_restricts_the_choice(device):
    """With top_k=2 every sampled token is one of the two most likely after its context."""
    model = tiny_gpt(device=device)
    idx = tokens(1, 2, seed=11, device=device)
    out = model.generate(idx, 10, temperature=5.0, top_k=2, generator=torch.Generator(device).manual_seed(0))
    for t in range(2, 12):
        top2 = model.logits(out[:, max(0, t - 12) : t])[0, -1].topk(2).indices
        assert out[0, t] in top2


def test_max_new_tokens_zero_returns_the_prompt():
    model = tiny_gpt()
    idx = tokens(2, 3)
    assert torch.equal(model.generate(idx, 0), idx)


def test_generate_leaves_the_model_mode_and_needs_no_grad():
    model = tiny_gpt()
    model.train()
    out = model.generate(tokens(1, 2), 3, temperature=0)
    assert model.training and not out.requires_grad


# --- errors ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("idx", "error", "message"),
    [
        (torch.zeros(2, 3), TypeError, r"idx: expected an integer tensor of token ids, got dtype torch.float32"),
        (torch.zeros(3, dtype=torch.long), ValueError, r"idx: expected a 2-D tensor .* got shape \(3\)"),
        (torch.zeros(1, 2, 3, dtype=torch.long), ValueError, r"idx: expected a 2-D tensor"),
        (torch.tensor([[1, 11]]), ValueError, r"idx: token ids must be in \[0, 11\), got \[1, 11\]"),
        (torch.tensor([[-1, 3]]), ValueError, r"idx: token ids must be in \[0, 11\), got \[-1, 3\]"),
        (torch.zeros(1, 13, dtype=torch.long), ValueError, r"idx: 13 positions exceed block_size=12"),
        ([[1, 2]], TypeError, r"idx: expected a torch.Tensor, got list"),
    ],
)
def test_error_forward_idx(idx, error, message):
    model = tiny_gpt()
    with pytest.raises(error, match=message):
        model(idx)


def test_error_targets_shape():
    model = tiny_gpt()
    with pytest.raises(ValueError, match=r"targets: expected the shape of idx \(2, 3\), got \(2, 4\)"):
        model(tokens(2, 3), tokens(2, 4))


def test_error_context_too_long_for_the_cache():
    model = tiny_gpt()
    caches = [KVCache() for _ in model.blocks]
    model(tokens(1, 10), caches=caches)
    model(tokens(1, 2), caches=caches)  # 12 positions: exactly block_size
    with pytest.raises(ValueError, match=r"idx: 13 positions exceed block_size=12"):
        model(tokens(1, 1), caches=caches)


@pytest.mark.parametrize(
    ("kw", "error", "message"),
    [
        ({"max_new_tokens": -1}, ValueError, r"max_new_tokens: expected an integer >= 0, got -1"),
        ({"max_new_tokens": 2.0}, ValueError, r"max_new_tokens: expected an integer >= 0, got 2.0"),
        ({"temperature": -0.5}, ValueError, r"temperature: expected >= 0, got -0.5"),
        ({"top_k": 0}, ValueError, r"top_k: expected None or an integer >= 1, got 0"),
        ({"idx": torch.zeros(1, 0, dtype=torch.long)}, ValueError, r"idx: expected at least one prompt token"),
        ({"idx": torch.zeros(2, 3)}, TypeError, r"idx: expected an integer tensor"),
        ({"idx": torch.zeros(3, dtype=torch.long)}, ValueError, r"idx: expected a 2-D tensor"),
        ({"idx": torch.tensor([[3, 20]])}, ValueError, r"idx: token ids must be in \[0, 11\)"),
    ],
)
def test_error_generate(kw, error, message):
    model = tiny_gpt()
    args = {"idx": tokens(1, 2), "max_new_tokens": 3, **kw}
    with pytest.raises(error, match=message):
        model.generate(**args)
