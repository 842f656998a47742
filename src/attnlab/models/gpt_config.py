"""The GPT's configuration: nanoGPT's fields, and a small set of named options for the blocks of today's models.

nanoGPT's fields (``vocab_size``, ``block_size``, ``n_layer``, ``n_head``, ``n_embd``, ``dropout``, ``bias``) with
their defaults build the GPT-2 block, unchanged. The options, each one choice with a paper behind it:

=============== ==================================== ======================================================
option          values (default first)               what it builds
=============== ==================================== ======================================================
``mixer``       "attention", "linear", "ssm"         softmax attention; linear attention (Katharopoulos et
                                                     al. 2020); Mamba (Gu & Dao 2023), ``d_state`` = N
``attention``   "mha", "mla"                         multi-head; multi-head latent (DeepSeek-V2) with
                                                     ``d_latent`` = d_c = d_c' and ``d_rope`` = d_h^R
``n_kv_head``   None (= n_head), a divisor of n_head grouped-query (Ainslie et al. 2023); 1 = multi-query
``window``      None, w >= 1                         sliding-window attention (Mistral 7B): keys p-w..p
``pos``         "learned", "rope"                    GPT-2's position table; rotary (Su et al. 2021) inside
                                                     attention (none added for linear/ssm: causality
                                                     orders them)
``norm``        "layernorm", "rmsnorm"               Zhang & Sennrich 2019
``mlp``         "gelu", "swiglu"                     Shazeer 2020 (width 8C/3: equal parameters)
``n_expert``    1, E                                 a mixture of E GELU experts of width 4C/k (Switch,
``top_k``       1, k in [1, E]                       Mixtral): k of them per token, as many FLOPs as one FFN
=============== ==================================== ======================================================

The modern block of LLaMA/Mistral/Qwen is ``pos="rope", norm="rmsnorm", mlp="swiglu", bias=False`` (plus
``n_kv_head``, and ``window`` for Mistral). An option that does not apply to the chosen mixer is refused rather
than ignored (e.g. ``window`` with ``mixer="ssm"``), each with one error naming it.

Context: a model with a position table (``pos="learned"``) or full softmax attention (no window) reads at most
``block_size`` tokens (generation crops to the last ``block_size``, as nanoGPT does); a sliding window with rotary
positions, or a recurrent mixer without a table, has no such limit (:attr:`GPTConfig.context_limit` is None):
each keeps a fixed-size memory of the past (w + 1 positions, or a state) however long the text.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from attnlab.nn.decoder_block import DecoderBlock
from attnlab.nn.feedforward import MLPS
from attnlab.nn.linear_mixer import LinearAttention
from attnlab.nn.mla import MultiHeadLatentAttention
from attnlab.nn.multihead import MultiHeadAttention
from attnlab.nn.norms import NORMS
from attnlab.nn.ssm import Mamba

NANOGPT = ("vocab_size", "block_size", "n_layer", "n_head", "n_embd", "dropout", "bias")
CHOICES = {
    "mixer": ("attention", "linear", "ssm"),
    "attention": ("mha", "mla"),
    "pos": ("learned", "rope"),
    "norm": NORMS,
    "mlp": MLPS,
}


def _int(value: object, minimum: int = 1) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and value >= minimum


@dataclass(frozen=True)
class GPTConfig:
    """nanoGPT's field names and defaults, and the block options of the module docstring. ``bias``: biases in
    Linear and LayerNorm layers. With ``attention="mla"``, ``d_latent`` defaults to ``min(4 hs, n_embd)`` and
    ``d_rope`` to ``hs / 2`` (DeepSeek-V2's ratios: d_c = 4 d_h = 512, d_h^R = d_h / 2 = 64), filled in here."""

    vocab_size: int = 65
    block_size: int = 256
    n_layer: int = 6
    n_head: int = 6
    n_embd: int = 384
    dropout: float = 0.0
    bias: bool = True
    mixer: str = "attention"
    attention: str = "mha"
    n_kv_head: int | None = None
    window: int | None = None
    d_latent: int | None = None
    d_rope: int | None = None
    pos: str = "learned"
    norm: str = "layernorm"
    mlp: str = "gelu"
    n_expert: int = 1
    top_k: int = 1
    d_state: int = 16

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd", "n_expert", "d_state"):
            if not _int(getattr(self, name)):
                raise ValueError(f"{name}: expected an integer >= 1, got {getattr(self, name)!r}")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd: expected a multiple of n_head={self.n_head}, got {self.n_embd}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout: expected a probability in [0, 1), got {self.dropout!r}")
        for name, choices in CHOICES.items():
            if getattr(self, name) not in choices:
                raise ValueError(f"{name}: expected one of {choices}, got {getattr(self, name)!r}")
        if not (_int(self.top_k) and self.top_k <= self.n_expert):
            raise ValueError(f"top_k: expected an integer in [1, n_expert={self.n_expert}], got {self.top_k!r}")
        if self.n_expert > 1 and self.mlp != "gelu":
            raise ValueError(f"mlp: the experts are GELU FFNs: expected 'gelu' with n_expert > 1, got {self.mlp!r}")
        self._check_attention_options()

    def _check_attention_options(self) -> None:
        hs = self.n_embd // self.n_head
        n_kv, w, d_c, d_r = self.n_kv_head, self.window, self.d_latent, self.d_rope
        if n_kv is not None and not (_int(n_kv) and self.n_head % n_kv == 0):
            raise ValueError(f"n_kv_head: expected None or a divisor of n_head={self.n_head}, got {n_kv!r}")
        if w is not None and not _int(w):
            raise ValueError(f"window: expected None or an integer >= 1, got {w!r}")
        if d_c is not None and not (_int(d_c) and d_c <= self.n_embd):
            raise ValueError(f"d_latent: expected None or an integer in [1, n_embd={self.n_embd}], got {d_c!r}")
        if d_r is not None and not (_int(d_r, 2) and d_r % 2 == 0):
            raise ValueError(f"d_rope: expected None or an even integer >= 2 (rotary pairs), got {d_r!r}")
        for name, default in (("attention", "mha"), ("n_kv_head", None), ("window", None)):
            if self.mixer != "attention" and getattr(self, name) != default:
                raise ValueError(f"{name}: applies to mixer='attention', got mixer={self.mixer!r}")
        for name in ("d_latent", "d_rope"):
            if getattr(self, name) is not None and self.attention != "mla":
                raise ValueError(f"{name}: applies to attention='mla', got attention={self.attention!r}")
        if self.attention == "mla":
            if n_kv is not None:
                raise ValueError("n_kv_head: applies to attention='mha' (MLA's heads share one latent)")
            if self.pos != "rope":
                raise ValueError(f"pos: attention='mla' rotates its own d_rope part: expected 'rope', got {self.pos!r}")
            object.__setattr__(self, "d_latent", min(4 * hs, self.n_embd) if d_c is None else d_c)
            object.__setattr__(self, "d_rope", 2 * max(1, hs // 4) if d_r is None else d_r)
        elif self.mixer == "attention" and self.pos == "rope" and hs % 2:
            raise ValueError(f"pos: 'rope' rotates pairs: expected an even head size n_embd / n_head, got {hs}")

    @property
    def context_limit(self) -> int | None:
        """``block_size`` when the model reads at most that many tokens (a position table, or full attention),
        None when its memory of the past is fixed by design (a window with rotary positions, a recurrent mixer)."""
        bounded_memory = self.window is not None or self.mixer != "attention"
        return None if bounded_memory and self.pos == "rope" else self.block_size

    def to_json(self) -> dict:
        """nanoGPT's fields, and the options that differ from their defaults (so a GPT-2 config reads as
        nanoGPT's, and ``GPTConfig(**c.to_json()) == c``)."""
        out = asdict(self)
        return {f.name: out[f.name] for f in fields(self) if f.name in NANOGPT or out[f.name] != f.default}


def make_block(c: GPTConfig) -> DecoderBlock:
    """One decoder block as ``c`` says (the module docstring's table)."""
    rope = c.pos == "rope"
    if c.mixer == "ssm":
        mixer = Mamba(c.n_embd, c.d_state, bias=c.bias)
    elif c.mixer == "linear":
        mixer = LinearAttention(c.n_embd, c.n_head, bias=c.bias)
    elif c.attention == "mla":
        mixer = MultiHeadLatentAttention(c.n_embd, c.n_head, c.d_latent, c.d_rope, dropout=c.dropout, bias=c.bias)
    else:
        mixer = MultiHeadAttention(
            c.n_embd, c.n_head, dropout=c.dropout, bias=c.bias, rotary=rope, num_kv_heads=c.n_kv_head
        )
    return DecoderBlock(
        mixer,
        c.n_embd,
        window=c.window,
        norm=c.norm,
        mlp=c.mlp,
        n_expert=c.n_expert,
        top_k=c.top_k,
        dropout=c.dropout,
        bias=c.bias,
    )
