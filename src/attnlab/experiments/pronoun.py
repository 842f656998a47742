r"""Experiment ``pronoun`` (claim C9, seed 003, practice): attention links "it" to its referent.

"The animal didn't cross the street because it was too tired": "it" is the animal; "... too wide": the street.
The seed's pen-and-paper exercise says that attention is what makes that link: the representation of "it" is
built by attending to the noun it stands for.

Task (:mod:`attnlab.data.pronoun`): minimal pairs from nine frames, 20 animate and 20 inanimate nouns and 16 + 16
adjectives that fit only one of them; in three frames either noun may come first, so that only the meaning of
the words says which noun "it" is. Training pairs use training words; the test pairs use held-out words only
(4 nouns and 4 adjectives of each kind), which the model met in the lexicon alone (masked-word sentences such as
"the donkey was [MASK]", mixed into every batch), never in a pronoun pair.

Model (:class:`PronounModel`): word embedding + learned positions -> ``num_layers`` pre-norm
:class:`attnlab.nn.TransformerEncoderLayer` blocks with bidirectional self-attention (padding masked out) ->
LayerNorm -> logits over the vocabulary through the embedding's transpose (tied). One objective for both kinds
of sentence: name the word a position stands for, the hidden word at ``[MASK]`` in the lexicon and the referent
noun at "it" in a pronoun sentence (cross-entropy over the whole vocabulary). The resolution is read as the
comparison of the two candidates' logits at "it" (chance 0.5).

Why name the noun rather than choose between two positions: with a two-way choice, an "animate vs inanimate"
direction at "it", read off the adjective, scores the pair without any look at either noun; naming the noun
asks for its identity at "it", which must come from the noun's position by some route of attention. Which route
is the question measured: from "it" straight to the referent, or through another position (for instance the
adjective attending to the noun that fits it and "it" attending to the adjective).

Attention measured (``need_weights=True``), on held-out sentences, from the row of "it" in every layer and head:

- the strongest link (:func:`strongest_link`, the primary measure, with no choice made on any data): the head
  with the most weight on either noun, over all layers and heads, puts it on the referent; "it" resolved by
  where it attends most, as one reads the figure of an attention map. Chance 0.5.
- a fixed head, and a fixed layer with its heads averaged, chosen on validation sentences of training words
  and scored on held-out ones: the share of sentences in which the row points to the referent (more weight on
  it than on the other noun, and at least ``min_weight``); and the same per kind of referent (animate,
  inanimate), which shows whether one head serves both kinds or each kind has its own.
- the same for the adjective's row: the other route by which the referent can reach "it".

Measured in development (two-layer models only; no other size was tried):

- full profile (3000 steps, seeds 0-4): held-out accuracy 1.00, 1.00, 0.93, 1.00, 1.00; the strongest link from
  "it" on the referent in 1.00, 0.56, 0.50, 1.00, 0.50 of held-out sentences: both in two seeds of five, so
  ``held`` False. In the three seeds without the link the adjective's row pointed to the referent (>= 0.99),
  the other route by which the referent can reach "it" (in seed 2 of the quick profile, which had no link
  either, "it" put a mean weight of 0.51 on the adjective in one head of layer 2).
- 1200 steps, seeds 0-5: the link in four seeds of six, held-out accuracy >= 0.7 in five: the route depends on
  the seed, and can change with training (seed 1 had the link at 1200 steps, not at 3000). The sixth (seed 3)
  scored 0.37 on held-out words, below chance, although its strongest link from "it" fell on the referent in
  every held-out sentence: attending to the right new noun is not yet naming it (the quick profile's seed 0,
  at 600 steps, shows the same).
- At no budget and in no seed did a single head point to the referent in both kinds of sentence. In seed 0
  (looked at closely) one head of the first layer goes from "it" to the animate noun unless an inanimate
  adjective draws its weight away, another to the inanimate noun unless an animate adjective does: the query
  of "it" and the nouns' keys are the same in both sentences of a pair, and the adjective's key wins the
  softmax of the head that would pick the wrong noun.

The quick profile trains three seeds for 600 steps, so that the report shows the spread between seeds.
"""

from __future__ import annotations

import math
import sys
import tempfile
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnlab._checks import resolve_device
from attnlab.data.pronoun import (
    FRAMES,
    HELD_OUT_ADJECTIVES,
    HELD_OUT_NOUNS,
    WordTokenizer,
    encode_lexicon,
    encode_pronoun,
    lexicon_sentences,
    make_example,
    max_length,
    minimal_pairs,
)
from attnlab.experiments.base import ExperimentConfig, ExperimentSpec
from attnlab.nn import LearnedPositionalEmbedding, TransformerEncoderLayer
from attnlab.train.loop import TrainConfig, Trainer

# The example sentences drawn in the report: (name, frame, animate, inanimate, adjective, animate_first)
EXAMPLES = (
    ("animal_tired", 0, "animal", "street", "tired", True),
    ("animal_wide", 0, "animal", "street", "wide", True),
    ("donkey_weary", 0, "donkey", "avenue", "weary", True),
    ("donkey_vast", 0, "donkey", "avenue", "vast", True),
    ("moat_puppy_drowsy", 6, "puppy", "moat", "drowsy", False),
    ("moat_puppy_bumpy", 6, "puppy", "moat", "bumpy", False),
)


@dataclass(frozen=True)
class Config(ExperimentConfig):
    """Model size, training budget, evaluation sizes and the thresholds that decide ``held`` (defaults: full).

    ``held`` needs a majority of seeds in which both the model's held-out accuracy and the strongest link from
    "it" on held-out sentences reach 0.5 + ``margin``.
    """

    d_model: int = 64
    nhead: int = 4
    num_layers: int = 2
    train_steps: int = 3000
    batch_size: int = 64
    lexicon_fraction: float = 0.5  # share of each batch that is lexicon (masked-word) sentences
    lr: float = 3e-3
    weight_decay: float = 0.01
    warmup_steps: int = 100
    eval_pairs: int = 500  # minimal pairs (2 sentences each) per evaluation set
    seeds: int = 5
    margin: float = 0.2
    min_weight: float = 0.1  # a row "points to" a noun with at least this weight on it (uniform over 10 words)
    pretrained_pairs: int = 200  # minimal pairs read by the pretrained all-MiniLM-L6-v2 (0: skip that part)

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "full": {},
        "quick": {"train_steps": 600, "seeds": 3},
        "tiny": {"train_steps": 600, "seeds": 1, "eval_pairs": 200, "pretrained_pairs": 0},
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        for name, minimum in (
            ("d_model", 1),
            ("nhead", 1),
            ("num_layers", 1),
            ("train_steps", 1),
            ("batch_size", 2),
            ("warmup_steps", 0),
            ("eval_pairs", 1),
            ("seeds", 1),
            ("pretrained_pairs", 0),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
        if self.d_model % self.nhead:
            raise ValueError(f"d_model: expected a multiple of nhead={self.nhead}, got {self.d_model}")
        if not 0 <= self.lexicon_fraction < 1:
            raise ValueError(f"lexicon_fraction: expected a number in [0, 1), got {self.lexicon_fraction!r}")
        if not isinstance(self.lr, (int, float)) or not 0 < self.lr < math.inf:
            raise ValueError(f"lr: expected a positive finite number, got {self.lr!r}")
        if not isinstance(self.weight_decay, (int, float)) or not 0 <= self.weight_decay < math.inf:
            raise ValueError(f"weight_decay: expected a finite number >= 0, got {self.weight_decay!r}")
        if not isinstance(self.margin, (int, float)) or not 0 < self.margin < 0.5:
            raise ValueError(f"margin: expected a number in (0, 0.5), got {self.margin!r}")
        if not isinstance(self.min_weight, (int, float)) or not 0 < self.min_weight <= 0.5:
            raise ValueError(f"min_weight: expected a number in (0, 0.5], got {self.min_weight!r}")


class PronounOutput(NamedTuple):
    """logits ``(B, T, V)``; loss (mean cross-entropy at the target positions) or None; weights: one
    ``(B, nh, T, T)`` tensor per layer when asked for, else None."""

    logits: Tensor
    loss: Tensor | None
    weights: list[Tensor] | None


class PronounModel(nn.Module):
    """Embedding + learned positions -> bidirectional pre-norm transformer blocks -> LayerNorm -> tied logits."""

    def __init__(self, vocab_size: int, max_len: int, d_model: int, nhead: int, num_layers: int, pad_id: int = 0):
        super().__init__()
        self.pad_id = pad_id
        self.embed = nn.Embedding(vocab_size, d_model)  # also the output layer (tied)
        self.pos = LearnedPositionalEmbedding(max_len, d_model)
        self.layers = nn.ModuleList(
            TransformerEncoderLayer(d_model, nhead, 4 * d_model, 0.0, "gelu", norm_first=True)
            for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(d_model)
        nn.init.normal_(self.embed.weight, std=0.02)  # GPT-2's scale: N(0, 1) rows would give logits of std ~sqrt(C)

    def forward(self, tokens: Tensor, targets: Tensor | None = None, *, need_weights: bool = False) -> PronounOutput:
        """tokens ``(B, T)`` (``pad_id`` marks padding); targets ``(B, T)`` word ids, -1 where there is none."""
        key_mask = tokens != self.pad_id  # (B, S): True at real words
        x = self.pos(self.embed(tokens))  # (B, T, C)
        weights = []
        for layer in self.layers:
            x, w = layer(x, key_mask=key_mask, need_weights=need_weights)  # (B, T, C), (B, nh, T, S)
            weights.append(w)
        logits = self.norm(x) @ self.embed.weight.t()  # (B, T, C) @ (C, V) -> (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1)
        return PronounOutput(logits, loss, weights if need_weights else None)


def make_get_batch(cfg: Config, tok: WordTokenizer):
    """The Trainer's ``get_batch(split, generator)``: a batch of training-word minimal pairs and lexicon
    sentences (``lexicon_fraction`` of it), fresh from the generator every call; (tokens, targets) ``(B, T)``.
    ``split`` is not used: both of the Trainer's splits draw training words (the experiment evaluates on its own
    validation and held-out sets)."""
    T = max_length()
    n_lex = round(cfg.batch_size * cfg.lexicon_fraction)
    n_pairs = max(1, (cfg.batch_size - n_lex) // 2)

    def get_batch(split: str, gen: torch.Generator) -> tuple[Tensor, Tensor]:
        seed = int(torch.randint(2**62, (1,), generator=gen))  # the python-side generators follow torch's stream
        pron = encode_pronoun(minimal_pairs(n_pairs, "train", seed=seed), tok, T)
        if not n_lex:
            return pron.tokens, pron.targets
        lex_tokens, lex_targets = encode_lexicon(lexicon_sentences(n_lex, seed=seed), tok, T)
        return torch.cat([pron.tokens, lex_tokens]), torch.cat([pron.targets, lex_targets])  # (B, T) each

    return get_batch


def train_model(cfg: Config, seed: int, device: str) -> tuple[PronounModel, WordTokenizer, dict[str, Any]]:
    """Train one model with the project's :class:`~attnlab.train.loop.Trainer` (AdamW, warm-up + cosine
    learning rate, gradient clipping); returns it, its tokenizer and the Trainer's result."""
    tok = WordTokenizer()
    torch.manual_seed(seed)
    model = PronounModel(len(tok), max_length(), cfg.d_model, cfg.nhead, cfg.num_layers, tok.pad_id)
    train_cfg = TrainConfig(
        max_iters=cfg.train_steps,
        lr=cfg.lr,
        min_lr=cfg.lr / 10,
        warmup_iters=min(cfg.warmup_steps, cfg.train_steps - 1),
        weight_decay=cfg.weight_decay,
        eval_interval=cfg.train_steps,
        eval_iters=4,
        ckpt_interval=cfg.train_steps,
        seed=seed,
        device=device,
    )
    with tempfile.TemporaryDirectory(prefix="attnlab-pronoun-") as run_dir:  # the Trainer's checkpoint goes here
        fit = Trainer(model, train_cfg, make_get_batch(cfg, tok), run_dir, progress=sys.stderr.isatty()).fit()
    return model, tok, fit


def _rows_and_mass(weights: list[Tensor], query: Tensor, candidates: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """One query position per sentence: its rows ``(N, L, nh, S)`` in every layer's weights ``(N, nh, T, S)``, and
    their weight on the referent and on the other candidate ``(N, L, nh, 2)``."""
    rows = torch.arange(len(query), device=weights[0].device)
    q = query.to(weights[0].device)
    it_rows = torch.stack([w[rows, :, q].cpu() for w in weights], 1)  # (N, L, nh, S)
    on_cands = it_rows.gather(3, candidates[:, None, None, :].expand(-1, *it_rows.shape[1:3], 2))  # (N, L, nh, 2)
    referent_first = (labels == 0)[:, None, None]  # (N, 1, 1)
    mass = torch.stack(
        [
            torch.where(referent_first, on_cands[..., 0], on_cands[..., 1]),  # on the referent
            torch.where(referent_first, on_cands[..., 1], on_cands[..., 0]),  # on the other candidate
        ],
        -1,
    )  # (N, L, nh, 2)
    return it_rows, mass


@torch.no_grad()
def evaluate(model: PronounModel, tok: WordTokenizer, examples, device: str) -> dict[str, Any]:
    """Resolution by the logits at "it" and by every head's weights from "it", on ``examples``.

    Returns ``correct`` ``(N,)`` bool (the referent's logit beats the other candidate's), ``mass`` ``(N, L, nh, 2)``
    (weight from "it" on the referent and on the other candidate), ``rows`` ``(N, L, nh, T)`` (the whole row of
    "it"), ``adjective_mass`` ``(N, L, nh, 2)`` (the same from the adjective, the other route a link can take),
    ``it_on_adjective`` ``(N, L, nh)`` (the weight from "it" on the adjective) and
    ``animate`` ``(N,)`` bool (the referent is the animate noun).
    """
    model.eval()
    b = encode_pronoun(examples, tok, max_length())
    out = model(b.tokens.to(device), need_weights=True)
    it_logits = out.logits[torch.arange(len(examples), device=device), b.it_index.to(device)].cpu()  # (N, V)
    cand = it_logits.gather(1, b.candidate_ids)  # (N, 2): logits of the first and second noun
    correct = cand.argmax(1) == b.labels  # (N,)
    rows, mass = _rows_and_mass(out.weights, b.it_index, b.candidates, b.labels)
    adjective = torch.tensor([e.words.index(e.adjective) for e in examples])  # (N,)
    _, adjective_mass = _rows_and_mass(out.weights, adjective, b.candidates, b.labels)
    on_adjective = rows[torch.arange(len(examples)), :, :, adjective]  # (N, L, nh): weight from "it" on the adjective
    animate = torch.tensor([(e.label == 0) == e.animate_first for e in examples])  # (N,): the referent is animate
    return {
        "correct": correct,
        "mass": mass,
        "rows": rows,
        "adjective_mass": adjective_mass,
        "it_on_adjective": on_adjective,
        "animate": animate,
    }


def points_to_referent(mass: Tensor, min_weight: float) -> Tensor:
    """``(..., 2)`` weights (referent, other candidate) -> ``(...)`` bool: the referent gets more weight than the
    other candidate, and at least ``min_weight`` (a row that hardly looks at either noun points at neither)."""
    ref, other = mass[..., 0], mass[..., 1]
    return (ref > other) & (ref >= min_weight)


def attention_table(mass: Tensor, animate: Tensor, min_weight: float) -> dict[str, dict[str, list]]:
    """From ``mass`` ``(N, L, nh, 2)``: per head ``(L, nh)`` and per layer with its heads averaged ``(L,)``, the mean
    weight from "it" on the referent and on the other candidate, and the share of sentences in which the row
    points to the referent (:func:`points_to_referent`: the attention-based resolution accuracy), over all
    sentences and over those whose referent is the animate noun (``animate`` ``(N,)`` True) or the inanimate one.

    Chance: a head that always looks at the first noun (or at either, at random) points to the referent in half
    of the sentences; one that looks at neither noun, in none.
    """
    out = {}
    for name, m in (("head", mass), ("layer", mass.mean(2))):  # (N, L, nh, 2) and (N, L, 2)
        prefers = points_to_referent(m, min_weight).double()  # (N, L, nh) or (N, L)
        out[name] = {
            "referent": m[..., 0].mean(0).tolist(),
            "other": m[..., 1].mean(0).tolist(),
            "resolution": prefers.mean(0).tolist(),
            "resolution_animate": prefers[animate].mean(0).tolist(),
            "resolution_inanimate": prefers[~animate].mean(0).tolist(),
        }
    return out


def strongest_link(mass: Tensor, min_weight: float) -> Tensor:
    """``(N,)`` bool: the head with the most weight from "it" on either candidate, over every layer and head,
    puts it on the referent (and at least ``min_weight`` of it): "it" resolved by where it attends most."""
    flat = mass.flatten(1)  # (N, L * nh * 2): weight on the referent at even indices, on the other at odd ones
    top, where = flat.max(1)  # (N,), (N,)
    return (where % 2 == 0) & (top >= min_weight)


def choose(table: dict[str, dict[str, list]], key: str = "resolution") -> tuple[tuple[int, int], int]:
    """The head ``(layer, head)`` and the layer (heads averaged) with the largest ``table[...][key]`` (the share of
    sentences in which the row points to the referent; ties: the larger mean weight on the referent minus the
    other candidate).

    Chosen by the share, not by the mean weight: in a head of the first layer the query of "it" and the keys of
    the nouns are the same in both sentences of a minimal pair (the adjective comes later), so the head ranks
    the two nouns alike in both and points to the referent in at most half of them; yet its mean weight on the
    referent can be far above that on the other noun when, in the other half, the adjective draws its weight
    away from both nouns.
    """
    h, lay = table["head"], table["layer"]
    L, nh = len(h[key]), len(h[key][0])
    best_head = max(
        ((i, j) for i in range(L) for j in range(nh)),
        key=lambda ij: (h[key][ij[0]][ij[1]], h["referent"][ij[0]][ij[1]] - h["other"][ij[0]][ij[1]]),
    )
    best_layer = max(range(L), key=lambda i: (lay[key][i], lay["referent"][i] - lay["other"][i]))
    return best_head, best_layer


def _train_eval(cfg: Config, seed: int, device: str) -> dict[str, Any]:
    model, tok, fit = train_model(cfg, seed, device)
    sets = {
        "val": minimal_pairs(cfg.eval_pairs, "train", seed=1_000_000 + seed),
        "heldout": minimal_pairs(cfg.eval_pairs, "heldout", seed=2_000_000 + seed),
    }
    res: dict[str, Any] = {"final_loss": fit["history"][-1]["train"]}
    for name, examples in sets.items():
        ev = evaluate(model, tok, examples, device)
        either = torch.tensor([FRAMES[e.frame].order == "either" for e in examples])
        res[name] = {
            "accuracy": ev["correct"].double().mean().item(),
            "accuracy_fixed_order": ev["correct"][~either].double().mean().item(),
            "accuracy_either_order": ev["correct"][either].double().mean().item(),
            "attention": attention_table(ev["mass"], ev["animate"], cfg.min_weight),
            "strongest_link": strongest_link(ev["mass"], cfg.min_weight).double().mean().item(),
            "adjective": attention_table(ev["adjective_mass"], ev["animate"], cfg.min_weight),
            "it_on_adjective": ev["it_on_adjective"].mean(0).tolist(),  # (L, nh)
        }
    (bl, bh), layer = choose(res["val"]["attention"])  # chosen on training words, scored on held-out ones
    held_out = res["heldout"]["attention"]
    res["best_head"] = [bl, bh]
    res["best_layer"] = layer
    res["best_head_heldout"] = {k: held_out["head"][k][bl][bh] for k in ("resolution", "referent", "other")}
    res["best_layer_heldout"] = {k: held_out["layer"][k][layer] for k in ("resolution", "referent", "other")}
    (al, ah), _ = choose(res["val"]["adjective"])  # the other route: the adjective's row
    res["adjective_best_head"] = [al, ah]
    res["adjective_best_head_heldout"] = res["heldout"]["adjective"]["head"]["resolution"][al][ah]
    for kind in ("animate", "inanimate"):  # the head that links "it" to referents of one kind
        (kl, kh), _ = choose(res["val"]["attention"], f"resolution_{kind}")
        res[f"best_head_{kind}"] = [kl, kh]
        res[f"best_head_{kind}_heldout"] = held_out["head"][f"resolution_{kind}"][kl][kh]
    # the row of "it" in every layer and head for the example sentences
    exs = [make_example(f, a, i, adj, first) for (_n, f, a, i, adj, first) in EXAMPLES]
    ev = evaluate(model, tok, exs, device)
    res["examples"] = [
        {
            "name": name,
            "words": list(e.words),
            "it_index": e.it_index,
            "candidates": list(e.candidates),
            "referent": e.referent,
            "resolved": bool(ev["correct"][k]),
            "rows": ev["rows"][k, :, :, : len(e.words)].tolist(),  # (L, nh, T)
        }
        for k, (e, (name, *_)) in enumerate(zip(exs, EXAMPLES, strict=True))
    ]
    return res


def _judge(cfg: Config, accuracy: list[float], link: list[float]) -> tuple[bool, dict[str, bool]]:
    """held, from per-seed held-out shares: in a majority of seeds both the model's accuracy and the strongest
    link from "it" (:func:`strongest_link`: where "it" attends most is its referent) reach 0.5 + margin."""
    bar, n = 0.5 + cfg.margin, len(accuracy)
    acc = [a >= bar for a in accuracy]
    att = [x >= bar for x in link]
    verdict = {
        "heldout_accuracy_above_chance": sum(acc) > n / 2,
        "attention_from_it_points_to_referent": sum(att) > n / 2,
        "both_in_the_same_seeds": sum(a and b for a, b in zip(acc, att, strict=True)) > n / 2,
    }
    return all(verdict.values()), verdict


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


def _to_adjective(r: dict[str, Any]) -> str:
    """Where "it" looks at the adjective most, in words: the head and its mean weight (held-out sentences)."""
    table = r["heldout"]["it_on_adjective"]  # (L, nh)
    layer, head = max(
        ((i, j) for i in range(len(table)) for j in range(len(table[0]))), key=lambda ij: table[ij[0]][ij[1]]
    )
    return f"'it' put a mean weight of {table[layer][head]:.2f} on the adjective in {_head_name([layer, head])}"


def _head_name(lh: list[int]) -> str:
    return f"layer {lh[0] + 1}, head {lh[1] + 1}"


def run(cfg: Config) -> dict[str, Any]:
    device = resolve_device(cfg.device)
    runs = [_train_eval(cfg, cfg.seed + s, device) for s in range(cfg.seeds)]
    held, verdict = _judge(
        cfg, [r["heldout"]["accuracy"] for r in runs], [r["heldout"]["strongest_link"] for r in runs]
    )
    bar = 0.5 + cfg.margin
    m: dict[str, Any] = {"chance": 0.5}
    for split in ("val", "heldout"):
        for key in ("accuracy", "accuracy_fixed_order", "accuracy_either_order"):
            m[f"{split}/{key}"] = round(_mean([r[split][key] for r in runs]), 4)
    m["heldout/accuracy_min"] = round(min(r["heldout"]["accuracy"] for r in runs), 4)
    for kind in ("head", "layer"):
        for key in ("resolution", "referent", "other"):
            m[f"attention/best_{kind}/heldout_{key}"] = round(_mean([r[f"best_{kind}_heldout"][key] for r in runs]), 4)
    m["attention/strongest_link/heldout"] = round(_mean([r["heldout"]["strongest_link"] for r in runs]), 4)
    m["adjective/best_head/heldout_resolution"] = round(_mean([r["adjective_best_head_heldout"] for r in runs]), 4)
    single = sum(r["best_head_heldout"]["resolution"] >= bar for r in runs)
    m["attention/seeds_with_single_head"] = single
    m["best_head/first_seed"] = _head_name(runs[0]["best_head"])
    m["best_layer/first_seed"] = runs[0]["best_layer"] + 1
    for kind in ("animate", "inanimate"):
        m[f"attention/best_head_{kind}_referents/heldout_resolution"] = round(
            _mean([r[f"best_head_{kind}_heldout"] for r in runs]), 4
        )
        m[f"best_head_{kind}_referents/first_seed"] = _head_name(runs[0][f"best_head_{kind}"])
    m["final_train_loss"] = round(_mean([r["final_loss"] for r in runs]), 4)
    setup, summary = _setup(cfg), _summary(cfg, m, runs, held, verdict)
    extra: dict[str, Any] = {}
    if cfg.pretrained_pairs:  # the same question asked of a real pretrained encoder (issue 6)
        from attnlab.experiments import pronoun_pretrained

        real = pronoun_pretrained.analyse(cfg.pretrained_pairs, cfg.seed)
        m.update({f"pretrained/{k}": v for k, v in real["metrics"].items()})
        setup += " Pretrained encoder: " + real["setup"]
        summary += " Pretrained all-MiniLM-L6-v2 (not part of the verdict above): " + real["summary"]
        extra = {
            "pretrained": {
                "metrics": real["metrics"],
                "data": {k: v for k, v in real["data"].items() if k != "viewer"},
            },
            "viewer": real["data"]["viewer"],
        }
    return {
        "held": held,
        "metrics": m,
        "setup": setup,
        "summary": summary,
        "data": {
            **extra,
            "num_layers": cfg.num_layers,
            "nhead": cfg.nhead,
            "chance": 0.5,
            "margin": cfg.margin,
            "attention": {"val": runs[0]["val"]["attention"], "heldout": runs[0]["heldout"]["attention"]},
            "adjective_attention": {"heldout": runs[0]["heldout"]["adjective"]},
            "seeds": [
                {
                    "seed": cfg.seed + k,
                    "val_accuracy": r["val"]["accuracy"],
                    "heldout_accuracy": r["heldout"]["accuracy"],
                    "best_head": r["best_head"],
                    "best_head_heldout_resolution": r["best_head_heldout"]["resolution"],
                    "best_layer": r["best_layer"],
                    "best_layer_heldout_resolution": r["best_layer_heldout"]["resolution"],
                    "strongest_link_val": r["val"]["strongest_link"],
                    "strongest_link_heldout": r["heldout"]["strongest_link"],
                    "adjective_best_head": r["adjective_best_head"],
                    "adjective_best_head_heldout_resolution": r["adjective_best_head_heldout"],
                }
                for k, r in enumerate(runs)
            ],
            "examples": runs[0]["examples"],
            "held_out_words": {"nouns": list(HELD_OUT_NOUNS), "adjectives": list(HELD_OUT_ADJECTIVES)},
            "verdict": verdict,
        },
    }


def _setup(cfg: Config) -> str:
    return (
        f"Minimal pairs from {len(FRAMES)} frames (3 of which take either noun order) with 16 + 16 training nouns "
        f"and 12 + 12 training adjectives; held-out test pairs made only of held-out words ({len(HELD_OUT_NOUNS)} "
        f"nouns, {len(HELD_OUT_ADJECTIVES)} adjectives) that the model met only in masked-word lexicon sentences "
        f"({cfg.lexicon_fraction:.0%} of every batch), never in a pronoun pair. Model: word embedding + learned "
        f"positions, {cfg.num_layers} pre-norm attnlab TransformerEncoderLayer blocks (d_model {cfg.d_model}, "
        f"{cfg.nhead} heads, bidirectional), tied output; trained to name the referent at 'it' (and the hidden "
        f"word at [MASK]), {cfg.train_steps} AdamW steps (attnlab Trainer, lr {cfg.lr:g}, warm-up + cosine), "
        f"batch {cfg.batch_size}, {cfg.seeds} seed(s). Resolution: referent's logit at 'it' above the other "
        f"candidate's (chance 0.5), on {2 * cfg.eval_pairs} validation sentences of training words and "
        f"{2 * cfg.eval_pairs} held-out sentences. Attention: the row of 'it' per layer and head "
        f"(need_weights=True); the head with the largest mean weight on the referent minus the other candidate "
        f"on validation sentences is scored on held-out ones (share of sentences where it weights the referent "
        f"more)."
    )


def _summary(cfg: Config, m: dict[str, Any], runs: list[dict[str, Any]], held: bool, verdict: dict) -> str:
    bar = 0.5 + cfg.margin
    n = len(runs)
    single = m["attention/seeds_with_single_head"]
    animate_head = m["best_head_animate_referents/first_seed"]
    inanimate_head = m["best_head_inanimate_referents/first_seed"]
    parts = [
        f"Resolution by the model's output at 'it': {m['val/accuracy']:.3f} on validation sentences of training "
        f"words and {m['heldout/accuracy']:.3f} on sentences made only of held-out words (chance 0.5; held-out "
        f"fixed-order frames {m['heldout/accuracy_fixed_order']:.3f}, either-order frames "
        f"{m['heldout/accuracy_either_order']:.3f}; mean over {n} seed(s)).",
        f"Resolution by attention: in {m['attention/strongest_link/heldout']:.1%} of held-out sentences the "
        f"strongest weight from 'it' on either noun, over all layers and heads, falls on the referent. A row "
        f"points to the referent when it puts more weight on it than on the other noun, and at least "
        f"{cfg.min_weight:g}: the best single head chosen on validation ({m['best_head/first_seed']} in the first "
        f"seed) does so in {m['attention/best_head/heldout_resolution']:.1%} of held-out sentences (mean weight "
        f"{m['attention/best_head/heldout_referent']:.2f} on the referent, "
        f"{m['attention/best_head/heldout_other']:.2f} on the other noun), the best layer with its heads averaged "
        f"(layer {m['best_layer/first_seed']}) in {m['attention/best_layer/heldout_resolution']:.1%}.",
        f"By kind of referent: the head chosen for animate referents ({animate_head} in the first seed) points to "
        f"them in {m['attention/best_head_animate_referents/heldout_resolution']:.1%} of held-out sentences with "
        f"an animate referent, the head chosen for inanimate ones ({inanimate_head}) in "
        f"{m['attention/best_head_inanimate_referents/heldout_resolution']:.1%} of those with an inanimate one. "
        f"The adjective's own row (best head chosen on validation) points to the referent in "
        f"{m['adjective/best_head/heldout_resolution']:.1%}.",
    ]
    if n == 1:
        parts.append(f"One seed only (the full profile runs {Config().seeds} and reports each).")
    else:
        per_seed = "; ".join(
            f"seed {cfg.seed + k}: accuracy {r['heldout']['accuracy']:.2f}, strongest link "
            f"{r['heldout']['strongest_link']:.2f}"
            for k, r in enumerate(runs)
        )
        parts.append(f"Held-out, per seed: {per_seed}.")
    for k, r in enumerate(runs):
        if r["heldout"]["accuracy"] >= bar and r["heldout"]["strongest_link"] < bar:
            parts.append(
                f"Seed {cfg.seed + k} resolved {r['heldout']['accuracy']:.1%} of held-out sentences without 'it' "
                f"attending to the referent: its adjective's row pointed to the referent in "
                f"{r['adjective_best_head_heldout']:.1%} of them, and {_to_adjective(r)}."
            )
    if held and single > n / 2:
        parts.append(
            f"The claim held: the model resolves 'it' in sentences of words it never met in a pronoun pair "
            f"(>= {bar:g}), and the attention from 'it' points to the referent, not the other noun, in one head "
            f"(>= {bar:g})."
        )
    elif held:
        split = (
            f" ({animate_head} for animate referents and {inanimate_head} for inanimate ones in the first seed)"
            if animate_head != inanimate_head
            else ""
        )
        parts.append(
            f"The claim held, with a nuance: the model resolves held-out sentences (>= {bar:g}) and where 'it' "
            f"attends most is its referent (>= {bar:g}), but no single head points to the referent in both kinds "
            f"of sentence in a majority of seeds: the link is split between heads{split}; see the maps."
        )
    else:
        acc_ok = sum(r["heldout"]["accuracy"] >= bar for r in runs)
        link_ok = sum(r["heldout"]["strongest_link"] >= bar for r in runs)
        both = sum(r["heldout"]["accuracy"] >= bar and r["heldout"]["strongest_link"] >= bar for r in runs)
        failed = []
        if not verdict["heldout_accuracy_above_chance"]:
            failed.append(f"the model's held-out accuracy reached {bar:g} in only {acc_ok} of {n} seed(s)")
        if not verdict["attention_from_it_points_to_referent"]:
            failed.append(
                f"the strongest weight from 'it' fell on the referent in >= {bar:g} of held-out sentences in only "
                f"{link_ok} of {n} seed(s): the model resolves 'it' without 'it' attending to its referent"
            )
        if verdict["heldout_accuracy_above_chance"] and verdict["attention_from_it_points_to_referent"]:
            failed.append(f"each held in a majority of seeds, but both together in only {both} of {n}")
        parts.append("The claim did not hold here: " + "; ".join(failed) + ". Reported as measured.")
    return " ".join(parts)


def _with_layer_mean(per_head: list[list[float]], per_layer: list[float]) -> list[list[float]]:
    """``(L, nh)`` and ``(L,)`` -> ``(L, nh + 1)``: each layer's heads, then their average."""
    return [[*row, mean] for row, mean in zip(per_head, per_layer, strict=True)]


def plot(result: dict[str, Any]) -> dict[str, Any]:
    import matplotlib.pyplot as plt

    data = result["data"]
    L, nh = data["num_layers"], data["nhead"]
    figs: dict[str, Any] = {}

    seeds = data["seeds"]
    bars = (
        ("model: training words", "val_accuracy", "tab:gray"),
        ("model: held-out words", "heldout_accuracy", "tab:blue"),
        ("strongest link from 'it'", "strongest_link_heldout", "tab:red"),
        ("best single head", "best_head_heldout_resolution", "tab:orange"),
        ("adjective's row", "adjective_best_head_heldout_resolution", "tab:green"),
    )
    fig, ax = plt.subplots(figsize=(1.4 * len(seeds) + 4.5, 4.2), layout="constrained")
    width = 0.8 / len(bars)
    for k, (label, key, color) in enumerate(bars):
        xs = [i + (k - (len(bars) - 1) / 2) * width for i in range(len(seeds))]
        ax.bar(xs, [sd[key] for sd in seeds], width=width, color=color, label=label)
    ax.axhline(data["chance"], ls=":", color="k", label="chance")
    ax.axhline(data["chance"] + data["margin"], ls="--", color="k", lw=0.8, label="bar for held")
    ax.set_xticks(range(len(seeds)), [f"seed {sd['seed']}" for sd in seeds])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("share of sentences resolved (held-out, unless marked)")
    ax.set_title("Who resolves 'it': the model's output, and attention")
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    ax.grid(True, axis="y", alpha=0.3)
    figs["resolution"] = fig

    att = data["attention"]["heldout"]
    head, layer = att["head"], att["layer"]
    gap_h = [[r - o for r, o in zip(*ro, strict=True)] for ro in zip(head["referent"], head["other"], strict=True)]
    gap_l = [r - o for r, o in zip(layer["referent"], layer["other"], strict=True)]
    panels = (
        ("points to the referent: all", _with_layer_mean(head["resolution"], layer["resolution"]), 0, 1, "RdBu"),
        (
            "... animate referents",
            _with_layer_mean(head["resolution_animate"], layer["resolution_animate"]),
            0,
            1,
            "RdBu",
        ),
        (
            "... inanimate referents",
            _with_layer_mean(head["resolution_inanimate"], layer["resolution_inanimate"]),
            0,
            1,
            "RdBu",
        ),
        ("weight on referent - other", _with_layer_mean(gap_h, gap_l), -1, 1, "PuOr"),
    )
    fig, axes = plt.subplots(1, 4, figsize=(4 * 3.3, 0.7 * L + 2.4), layout="constrained")
    for ax, (title, table, lo, hi, cmap) in zip(axes, panels, strict=True):
        im = ax.imshow(table, vmin=lo, vmax=hi, cmap=cmap, aspect="auto")
        for i in range(L):
            for j in range(nh + 1):
                dark = abs((table[i][j] - lo) / (hi - lo) - 0.5) > 0.3  # the ends of both colour maps are dark
                ax.text(j, i, f"{table[i][j]:.2f}", ha="center", va="center", fontsize=8, color="w" if dark else "k")
        ax.axvline(nh - 0.5, color="k", lw=1)
        ax.set_xticks(range(nh + 1), [f"H{h + 1}" for h in range(nh)] + ["mean"])
        ax.set_yticks(range(L), [f"layer {i + 1}" for i in range(L)])
        ax.set_title(title, fontsize=10)
        fig.colorbar(im, ax=ax, fraction=0.05)
    fig.suptitle("Attention from 'it' on held-out sentences, per layer and head (first seed; chance share 0.5)")
    figs["heads"] = fig

    for ex in data["examples"]:
        words, T = ex["words"], len(ex["words"])
        rows, labels = [], []
        for i, heads in enumerate(ex["rows"]):  # (nh, T) per layer
            rows += [*heads, [sum(col) / nh for col in zip(*heads, strict=True)]]
            labels += [f"L{i + 1} H{h + 1}" for h in range(nh)] + [f"L{i + 1} mean"]
        fig, ax = plt.subplots(figsize=(0.6 * T + 2.0, 0.3 * len(rows) + 1.8), layout="constrained")
        im = ax.imshow(rows, vmin=0, vmax=1, cmap="viridis", aspect="auto")
        ax.set_xticks(range(T), words, rotation=45, ha="right")
        for k, label in enumerate(ax.get_xticklabels()):
            if k in ex["candidates"]:
                label.set_fontweight("bold")
                label.set_color("tab:red" if words[k] == ex["referent"] else "k")
        ax.set_yticks(range(len(rows)), labels, fontsize=8)
        for i in range(1, L):
            ax.axhline(i * (nh + 1) - 0.5, color="w", lw=2)
        verdict = "resolved" if ex["resolved"] else "NOT resolved by the model"
        ax.set_title(f"'{' '.join(words)}'\nrow of 'it' (referent in red: {ex['referent']}; {verdict})", fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.03, label="weight from 'it'")
        figs[f"map_{ex['name']}"] = fig
    if "pretrained" in data:
        from attnlab.experiments import pronoun_pretrained

        figs.update(pronoun_pretrained.plot(data["pretrained"]))
    return figs


SPEC = ExperimentSpec(
    name="pronoun",
    title='Attention links "it" to its referent',
    claim=(
        'Attention links "it" to its referent: in "The animal didn\'t cross the street because it was too tired" '
        '"it" attends to "animal"; with "too wide", to "street".'
    ),
    source="Seed 003 (attention and transformers, in brief), practice: the pronoun-resolution exercise",
    config_cls=Config,
    run=run,
    plot=plot,
)

__all__ = [
    "EXAMPLES",
    "SPEC",
    "Config",
    "PronounModel",
    "PronounOutput",
    "attention_table",
    "choose",
    "evaluate",
    "make_get_batch",
    "plot",
    "points_to_referent",
    "run",
    "strongest_link",
    "train_model",
]
