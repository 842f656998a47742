"""GPTConfig's block options (n_kv_head, window, attention, pos, norm, mlp, mixer, n_expert/top_k): validation,
the default block equal to GPT-2's, decoding with every cache equal to the full forward and to uncached
generation (past block_size too), the MoE balancing loss in training only, initialisation, autocast."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from attnlab.models import GPT, GPTConfig
from attnlab.models.gpt import Decoder
from attnlab.nn import LinearAttention, Mamba, TransformerEncoderLayer
from attnlab.nn.decoder_block import DecoderBlock
from attnlab.nn.multihead import MultiHeadAttention

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = {"vocab_size": 30, "block_size": 12, "n_layer": 2, "n_head": 4, "n_embd": 32}
OPTIONS = {
    "gqa": {"n_kv_head": 2},
    "mqa": {"n_kv_head": 1},
    "rope": {"pos": "rope"},
    "window": {"window": 3},
    "window-rope": {"window": 3, "pos": "rope", "n_kv_head": 2},
    "mla": {"attention": "mla", "pos": "rope", "d_latent": 16, "d_rope": 4},
    "mla-window": {"attention": "mla", "pos": "rope", "window": 3},
    "modern": {"pos": "rope", "norm": "rmsnorm", "mlp": "swiglu", "bias": False, "n_kv_head": 2},
    "linear": {"mixer": "linear"},
    "linear-rope": {"mixer": "linear", "pos": "rope"},
    "ssm": {"mixer": "ssm", "pos": "rope", "d_state": 4},
    "ssm-learned": {"mixer": "ssm", "d_state": 4},
    "moe": {"n_expert": 4, "top_k": 2},
}
UNLIMITED = {"window-rope", "mla-window", "linear-rope", "ssm"}  # no context limit: no crop


def tiny_gpt(name: str, seed: int = 0, dtype=torch.float64, device="cpu", sharp: float = 1.0, **kw) -> GPT:
    """``sharp``: every matrix but Mamba's A scaled by it, so that the next token depends on the context strongly
    (at GPT-2's std 0.02 a random model's attention is near uniform and a wrong key barely moves a logit)."""
    torch.manual_seed(seed)
    model = GPT(GPTConfig(**{**TINY, **OPTIONS[name], **kw})).to(device=device, dtype=dtype).eval()
    with torch.no_grad():
        for n, p in model.named_parameters():
            if p.dim() >= 2 and not n.endswith("A_log"):
                p.mul_(sharp)
    return model


# --- config ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"n_kv_head": 3}, r"n_kv_head: expected None or a divisor of n_head=4, got 3"),
        ({"n_kv_head": 0}, r"n_kv_head: expected None or a divisor of n_head=4, got 0"),
        ({"window": 0}, r"window: expected None or an integer >= 1, got 0"),
        (
            {"attention": "mla", "pos": "rope", "d_latent": 64},
            r"d_latent: expected None or an integer in \[1, n_embd=32\]",
        ),
        ({"attention": "mla", "pos": "rope", "d_rope": 3}, r"d_rope: expected None or an even integer >= 2"),
        ({"attention": "gqa"}, r"attention: expected one of \('mha', 'mla'\), got 'gqa'"),
        ({"norm": "batchnorm"}, r"norm: expected one of \('layernorm', 'rmsnorm'\), got 'batchnorm'"),
        ({"mlp": "relu"}, r"mlp: expected one of \('gelu', 'swiglu'\), got 'relu'"),
        ({"pos": "alibi"}, r"pos: expected one of \('learned', 'rope'\), got 'alibi'"),
        ({"mixer": "rnn"}, r"mixer: expected one of \('attention', 'linear', 'ssm'\), got 'rnn'"),
        ({"n_expert": 4, "top_k": 5}, r"top_k: expected an integer in \[1, n_expert=4\], got 5"),
        ({"top_k": 2}, r"top_k: expected an integer in \[1, n_expert=1\], got 2"),
        ({"d_state": 0}, r"d_state: expected an integer >= 1, got 0"),
        ({"n_expert": 0}, r"n_expert: expected an integer >= 1, got 0"),
        ({"mixer": "ssm", "window": 4}, r"window: applies to mixer='attention', got mixer='ssm'"),
        ({"mixer": "linear", "n_kv_head": 2}, r"n_kv_head: applies to mixer='attention', got mixer='linear'"),
        ({"d_latent": 8}, r"d_latent: applies to attention='mla', got attention='mha'"),
        ({"attention": "mla", "pos": "rope", "n_kv_head": 2}, r"n_kv_head: applies to attention='mha'"),
        ({"attention": "mla"}, r"pos: attention='mla' rotates its own d_rope part: expected 'rope', got 'learned'"),
        ({"n_expert": 2, "mlp": "swiglu"}, r"mlp: the experts are GELU FFNs: expected 'gelu' with n_expert > 1"),
        ({"n_embd": 36, "n_head": 4, "pos": "rope"}, r"pos: 'rope' rotates pairs: expected an even head size"),
    ],
)
def test_config_errors_name_the_option(kw, message):
    with pytest.raises(ValueError, match=message):
        GPTConfig(**{**TINY, **kw})


def test_config_json_lists_nanogpt_fields_and_the_options_set():
    c = GPTConfig(**TINY, n_kv_head=2, norm="rmsnorm")
    assert c.to_json() == {**TINY, "dropout": 0.0, "bias": True, "n_kv_head": 2, "norm": "rmsnorm"}
    assert GPTConfig(**c.to_json()) == c
    mla = GPTConfig(**TINY, attention="mla", pos="rope")  # DeepSeek's ratios: d_c = 4 hs, d_rope = hs / 2
    assert (mla.d_latent, mla.d_rope) == (min(4 * 8, 32), 4)


def test_context_limit_rule():
    limits = {name: GPTConfig(**TINY, **kw).context_limit for name, kw in OPTIONS.items()}
    assert {name for name, limit in limits.items() if limit is None} == UNLIMITED
    assert all(limit == TINY["block_size"] for name, limit in limits.items() if name not in UNLIMITED)


# --- the default block is GPT-2's -------------------------------------------------------------------------


@pytest.mark.parametrize("bias", [True, False])
def test_default_block_equals_transformer_encoder_layer(bias):
    """Same seed -> same parameters (creation order), same keys, same outputs and gradients, with dropout too."""
    torch.manual_seed(0)
    ref = TransformerEncoderLayer(32, 4, 128, 0.1, "gelu", norm_first=True, bias=bias)
    torch.manual_seed(0)
    ours = DecoderBlock(MultiHeadAttention(32, 4, dropout=0.1, bias=bias), 32, dropout=0.1, bias=bias)
    assert list(ours.state_dict()) == list(ref.state_dict())
    for (n, a), b in zip(ours.state_dict().items(), ref.state_dict().values(), strict=True):
        assert torch.equal(a, b), n
    x = torch.randn(2, 7, 32, requires_grad=True)
    for mode in ("eval", "train"):
        getattr(ours, mode)(), getattr(ref, mode)()
        torch.manual_seed(1)
        y = ours(x, is_causal=True)[0]
        torch.manual_seed(1)
        y_ref = ref(x, is_causal=True)[0]
        assert torch.equal(y, y_ref)
        g = torch.randn_like(y)
        assert torch.equal(torch.autograd.grad(y, x, g)[0], torch.autograd.grad(y_ref, x, g)[0])


def test_decoder_block_errors():
    with pytest.raises(TypeError, match=r"mixer: expected one of \['MultiHeadAttention'.*got Linear"):
        DecoderBlock(torch.nn.Linear(8, 8), 8)
    with pytest.raises(ValueError, match="window: applies to softmax attention, got a Mamba mixer"):
        DecoderBlock(Mamba(8), 8, window=4)
    with pytest.raises(ValueError, match="top_k: expected 1 without experts"):
        DecoderBlock(MultiHeadAttention(8, 2), 8, top_k=2)
    block = DecoderBlock(LinearAttention(8, 2), 8)
    with pytest.raises(ValueError, match="attn_mask: a LinearAttention mixer is causal by construction"):
        block(torch.zeros(1, 3, 8), attn_mask=torch.ones(3, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="attn_mask: expected None when is_causal=True"):
        DecoderBlock(MultiHeadAttention(8, 2), 8)(
            torch.zeros(1, 3, 8), attn_mask=torch.ones(3, 3).bool(), is_causal=True
        )


# --- decoding ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(OPTIONS))
def test_decoder_steps_equal_full_forwards(name):
    """The logits after a prefill of 4 and after each later token equal the full forward's last-position logits
    (every kind of cache: KV, rolling KV, MLA latent, linear-attention state, Mamba state)."""
    model = tiny_gpt(name, sharp=5.0)
    tokens = torch.randint(0, 30, (2, 12), generator=torch.Generator().manual_seed(3))
    decoder = Decoder(model, 2, torch.device("cpu"))
    with torch.no_grad():
        got = [decoder.prefill(tokens[:, :4])] + [decoder.step(tokens[:, t : t + 1]) for t in range(4, 12)]
        want = [model.logits(tokens[:, : t + 1])[:, -1] for t in range(3, 12)]
    for t, (a, b) in enumerate(zip(got, want, strict=True)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10, msg=f"{name}, step {t}")


@pytest.mark.parametrize("name", list(OPTIONS))
@pytest.mark.parametrize("temperature", [0.0, 1.0], ids=["greedy", "sampled"])
def test_cached_generation_equals_uncached_past_block_size(name, temperature):
    """30 new tokens after a prompt of 5 with block_size 12: a model with a context limit crops (its cache is
    rebuilt from the cropped context); one without reads everything (its cache rolls or is a state). Greedy, and
    sampled with one seed on both sides (the same logits up to rounding draw the same tokens): a random tiny
    GPT's greedy text soon repeats one token, the sampled one visits many contexts."""
    model = tiny_gpt(name, sharp=5.0)
    idx = torch.randint(0, 30, (2, 5), generator=torch.Generator().manual_seed(2))
    kw = {"temperature": temperature, "generator": None if temperature == 0 else torch.Generator().manual_seed(8)}
    want = model.generate(idx, 30, use_cache=False, **kw)
    kw["generator"] = None if temperature == 0 else torch.Generator().manual_seed(8)
    got = model.generate(idx, 30, use_cache=True, **kw)
    assert torch.equal(got, want)
    if temperature > 0:
        assert all(len(set(row[5:].tolist())) >= 10 for row in got)  # not one repeated token


@pytest.mark.parametrize("name", ["gqa", "mqa", "window", "modern"])
def test_static_cache_decoding_serves_grouped_and_windowed_attention(name, device):
    """The CUDA-graph decoder's static buffers (run eagerly on the CPU) with kv heads and a window mask."""
    model = tiny_gpt(name, dtype=torch.float32, device=device)
    assert model.supports_static_decoding
    tokens = torch.randint(0, 30, (2, 12), generator=torch.Generator().manual_seed(3)).to(device)
    decoder = Decoder(model, 2, torch.device(device), graphs=True)
    with torch.no_grad():
        got = [decoder.prefill(tokens[:, :4])] + [decoder.step(tokens[:, t : t + 1]).clone() for t in range(4, 12)]
        want = [model.logits(tokens[:, : t + 1])[:, -1] for t in range(3, 12)]
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b)


def test_static_decoding_refused_where_it_does_not_apply():
    for name in ("mla", "linear", "moe", "window-rope"):
        assert not tiny_gpt(name).supports_static_decoding
    with pytest.raises(ValueError, match="graphs: static decoding serves multi-head attention blocks"):
        Decoder(tiny_gpt("mla"), 1, torch.device("cpu"), graphs=True)


def test_unlimited_models_read_past_block_size_and_limited_ones_refuse():
    long = torch.randint(0, 30, (1, 20), generator=torch.Generator().manual_seed(4))
    assert tiny_gpt("ssm").logits(long).shape == (1, 20, 30)
    with pytest.raises(ValueError, match="idx: 20 positions exceed block_size=12"):
        tiny_gpt("gqa").logits(long)


# --- experts, initialisation, autocast, weights ------------------------------------------------------------


def test_moe_balancing_loss_joins_the_training_loss_only():
    model = tiny_gpt("moe").train()
    idx = torch.randint(0, 30, (3, 10), generator=torch.Generator().manual_seed(5))
    out = model(idx, idx)
    assert isinstance(out, tuple) and len(out) == 2  # GPTOutput stays (logits, loss)
    ce = F.cross_entropy(out.logits.view(-1, 30), idx.view(-1))
    aux = [b.aux_loss for b in model.blocks]
    assert all(a > 0 for a in aux)
    torch.testing.assert_close(out.loss, ce + aux[0] + aux[1], rtol=1e-12, atol=0)
    loads = model.router_loads()
    assert len(loads) == 2 and all(torch.isclose(f.sum(), torch.tensor(1.0, dtype=f.dtype)) for f in loads)
    model.eval()
    out = model(idx, idx)
    torch.testing.assert_close(out.loss, F.cross_entropy(out.logits.view(-1, 30), idx.view(-1)), rtol=1e-12, atol=0)


def test_initialisation_keeps_mambas_own_and_scales_expert_outputs():
    """GPT-2's normal(0, 0.02) init would give Mamba a random A (not the S4D-real -(n + 1)), zero skip D and zero
    step-size bias: they keep the authors' values. Each expert's W_2 feeds the residual stream: std 0.02/sqrt(2L)."""
    model = tiny_gpt("ssm-learned")
    for block in model.blocks:
        m: Mamba = block.mixer
        n = torch.arange(1, m.d_state + 1, dtype=torch.float64)
        torch.testing.assert_close(m.A_log, n.log().expand(m.d_inner, -1))
        assert torch.equal(m.D, torch.ones_like(m.D))
        dt = F.softplus(m.dt_proj.bias)
        assert (dt >= 1e-3 * 0.999).all() and (dt <= 0.1 * 1.001).all()
    torch.manual_seed(0)
    big = GPT(GPTConfig(vocab_size=30, block_size=8, n_layer=2, n_head=4, n_embd=64, n_expert=4, top_k=2))
    for block in big.blocks:  # 4 * 64 * 128 = 32768 draws each: the std within 3%
        assert block.moe.w2.std().item() == pytest.approx(0.02 / math.sqrt(4), rel=0.03)
        assert block.moe.w1.std().item() == pytest.approx(0.02, rel=0.03)


@pytest.mark.parametrize("name", ["modern", "mla", "window", "linear", "ssm", "moe"])
def test_trains_one_step_under_autocast(name):
    model = tiny_gpt(name, dtype=torch.float32).train()
    idx = torch.randint(0, 30, (2, 12), generator=torch.Generator().manual_seed(6))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model(idx, idx).loss
    assert loss.isfinite()
    loss.backward()
    for n, p in model.named_parameters():
        assert p.grad is not None and p.grad.isfinite().all(), n


def test_attention_weights_only_for_attention_mixers():
    idx = torch.randint(0, 30, (1, 6), generator=torch.Generator().manual_seed(7))
    assert [w.shape for w in tiny_gpt("mla").attention_weights(idx)] == [(1, 4, 6, 6)] * 2
    with pytest.raises(ValueError, match="attention_weights: mixer='ssm' has no attention weights"):
        tiny_gpt("ssm").attention_weights(idx)


def test_parameters_per_layer():
    """The counts the experiments balance (C = 32, 4 heads of 8, bias False): attention 4C^2 for MHA,
    2C^2 + 2 C n_kv hs with kv heads, the MLA matrices of its docstring; GELU 8C^2, SwiGLU 3 C round(8C/3)."""

    def per_layer(**kw):
        model = GPT(GPTConfig(**{**TINY, "bias": False, **kw}))
        return sum(p.numel() for p in model.blocks[0].parameters()) - 2 * 32  # without the two norm gains

    C = 32
    assert per_layer() == 4 * C * C + 8 * C * C
    assert per_layer(n_kv_head=1) == 2 * C * C + 2 * C * 8 + 8 * C * C
    d_c, d_r = 16, 4  # MLA: W^DQ, W^UQ, W^QR, W^DKV, W^KR, W^UK, W^UV, W^O (+ two latent norm gains)
    mla = C * d_c + d_c * C + d_c * 4 * d_r + C * d_c + C * d_r + 2 * d_c * C + C * C + 2 * d_c
    assert per_layer(attention="mla", pos="rope", d_latent=d_c, d_rope=d_r) == mla + 8 * C * C
    assert per_layer(mlp="swiglu") == 4 * C * C + 3 * C * round(8 * C / 3)
