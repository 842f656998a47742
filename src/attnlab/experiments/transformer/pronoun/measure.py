"""The measuring of ``pronoun``: train the pronoun model per seed, resolve "it" by its output and by attention on
validation and held-out sentences; then the same question asked of the pretrained all-MiniLM-L6-v2 (see the
package docstring)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

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
from attnlab.experiments.training import one_thread, train
from attnlab.experiments.transformer.pronoun.attention import attention_table, choose, evaluate, strongest_link
from attnlab.experiments.transformer.pronoun.pretrained import analyse
from attnlab.models.pronoun import PronounModel

# the report may run it beside another experiment: trains on one thread; it measures accuracy and attention, not time
SHARES_CORES = True

# The example sentences drawn in the report: (name, frame, animate, inanimate, adjective, animate_first)
EXAMPLES = (
    ("animal_tired", 0, "animal", "street", "tired", True),
    ("animal_wide", 0, "animal", "street", "wide", True),
    ("donkey_weary", 0, "donkey", "avenue", "weary", True),
    ("donkey_vast", 0, "donkey", "avenue", "vast", True),
    ("moat_puppy_drowsy", 6, "puppy", "moat", "drowsy", False),
    ("moat_puppy_bumpy", 6, "puppy", "moat", "bumpy", False),
)


def make_get_batch(cfg: Any, tok: WordTokenizer):
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


def train_model(cfg: Any, seed: int, device: str) -> tuple[PronounModel, WordTokenizer, dict[str, Any]]:
    """Train one model (:func:`attnlab.experiments.training.train`: the project's Trainer); returns it, its
    tokenizer and the training's result."""
    tok = WordTokenizer()
    torch.manual_seed(seed)
    model = PronounModel(len(tok), max_length(), cfg.d_model, cfg.nhead, cfg.num_layers, tok.pad_id)
    fit = train(model, cfg.train, make_get_batch(cfg, tok), seed=seed, device=device)
    return model, tok, fit


def _train_eval(cfg: Any, seed: int, device: str) -> dict[str, Any]:
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


def _judge(cfg: Any, accuracy: list[float], link: list[float]) -> tuple[bool, dict[str, bool]]:
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


def head_name(lh: list[int]) -> str:
    return f"layer {lh[0] + 1}, head {lh[1] + 1}"


def run(cfg: Any) -> dict[str, Any]:
    device = resolve_device(cfg.device)
    with one_thread(device):  # B=64, T=13, C=64: intra-op threads only cost on a shared machine
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
    m["best_head/first_seed"] = head_name(runs[0]["best_head"])
    m["best_layer/first_seed"] = runs[0]["best_layer"] + 1
    for kind in ("animate", "inanimate"):
        m[f"attention/best_head_{kind}_referents/heldout_resolution"] = round(
            _mean([r[f"best_head_{kind}_heldout"] for r in runs]), 4
        )
        m[f"best_head_{kind}_referents/first_seed"] = head_name(runs[0][f"best_head_{kind}"])
    m["final_train_loss"] = round(_mean([r["final_loss"] for r in runs]), 4)
    extra: dict[str, Any] = {}
    if cfg.pretrained_pairs:  # the same question asked of a real pretrained encoder (issue 6)
        real = analyse(cfg.pretrained_pairs, cfg.seed)
        m.update({f"pretrained/{k}": v for k, v in real["metrics"].items()})
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
        "device": device,
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
                    "it_on_adjective_heldout": r["heldout"]["it_on_adjective"],
                }
                for k, r in enumerate(runs)
            ],
            "examples": runs[0]["examples"],
            "held_out_words": {"nouns": list(HELD_OUT_NOUNS), "adjectives": list(HELD_OUT_ADJECTIVES)},
            "verdict": verdict,
        },
    }


__all__ = ["EXAMPLES", "head_name", "make_get_batch", "run", "train_model"]
