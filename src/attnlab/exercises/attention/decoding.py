"""Exercises 3.2 ``greedy_decode`` and ``beam_search_step``: decoding from a model's next-token log-probs, checked on
random toy models against the package's reference and against the properties of the search."""

from __future__ import annotations

import torch
from torch import Tensor

from attnlab.exercises.engine import Check, Exercise, Mistake
from attnlab.exercises.trial import Fail, Trial
from attnlab.models.seq2seq import Seq2Seq


def greedy_decode(step, bos, eos, max_len):
    """The most probable token at every step (the library's Seq2Seq._greedy does this for a batch)."""
    prefix, tokens = [bos], []
    for _ in range(max_len):
        y = int(step(prefix).argmax())  # step: the log-probs (V,) of the next token after prefix
        tokens.append(y)
        prefix = [*prefix, y]
        if y == eos:
            break
    return tokens


def beam_search_step(scores, log_probs, beam_size):
    """Every live beam extended by every token, the beam_size best kept (the library's Seq2Seq._beam, one sequence)."""
    V = log_probs.shape[-1]
    cand = (scores.unsqueeze(1) + log_probs).flatten()  # (k * V,): log p(prefix) + log p(token | prefix)
    top, idx = cand.topk(beam_size)  # best first
    return top, idx // V, idx % V  # row idx // V is the parent beam, column idx % V the token


# --- greedy ----------------------------------------------------------------------------------------------------


class _Model:
    """A toy model: the next token's log-probs from the last token and the position (random tables)."""

    def __init__(self, t: Trial, V: int, bos: int, eos: int, eos_at: int | None = None, eos_banned: bool = False):
        self.table, self.pos = t.randn(V, V, scale=2.0), t.randn(40, V, scale=2.0)
        self.bos, self.eos, self.eos_at, self.banned = bos, eos, eos_at, eos_banned
        self.calls: list[list[int]] = []

    def __call__(self, prefix) -> Tensor:
        prefix = [int(y) for y in prefix]
        if not prefix or prefix[0] != self.bos:
            raise Fail(f"step was called with the prefix {prefix}: every prefix starts with bos={self.bos}")
        self.calls.append(prefix)
        logits = self.table[prefix[-1]] + self.pos[len(prefix)]
        logits[self.bos] = float("-inf")  # never predicted
        if self.banned or (self.eos_at is not None and len(prefix) < self.eos_at):
            logits[self.eos] = float("-inf")
        elif self.eos_at is not None:
            logits[self.eos] = 100.0
        return torch.log_softmax(logits, -1)


def _greedy(t: Trial, model: _Model, max_len: int) -> list[int]:
    out = t.call(model, model.bos, model.eos, max_len)
    if isinstance(out, Tensor) and out.dim() == 1:
        out = out.tolist()
    t.expect(
        isinstance(out, (list, tuple)) and all(isinstance(y, int) for y in out),
        f"expected a list of ints, got {type(out).__name__}",
    )
    return list(out)


def _greedy_compare(t: Trial, what: str, max_len: int, **kw) -> None:
    model = _Model(t, 9, 0, 1, **kw)
    got = _greedy(t, model, max_len)
    want = greedy_decode(model, 0, 1, max_len)
    t.expect(got == want, f"{what}: expected the tokens {want}, got {got}")


def _greedy_prefixes(t: Trial) -> None:
    model = _Model(t, 9, 0, 1, eos_at=5)
    got = _greedy(t, model, 10)
    want = [[0, *got[:i]] for i in range(len(got))]
    t.expect(model.calls == want, f"step should be called with {want}, was called with {model.calls}")


def _greedy_variant(kind: str):
    def greedy_decode(step, bos, eos, max_len):
        prefix, tokens = [bos], []
        for _ in range(max_len + (kind == "off_by_one")):
            y = int(step(prefix).argmax())
            if y == eos and kind == "drops_eos":
                break
            tokens.append(y)
            prefix = [*prefix, y]
            if y == eos and kind != "ignores_eos":
                break
        return [bos, *tokens] if kind == "includes_bos" else tokens

    return greedy_decode


GREEDY_MISTAKES = (
    Mistake(
        "greedy.ignores_eos",
        "decoding goes on after eos",
        "stop as soon as the chosen token is eos",
        _greedy_variant("ignores_eos"),
    ),
    Mistake(
        "greedy.includes_bos",
        "bos in the result",
        "return only the generated tokens; bos is the prompt, not output",
        _greedy_variant("includes_bos"),
    ),
    Mistake(
        "greedy.drops_eos",
        "eos left out",
        "append eos too, then stop: the result ends with eos when the model produced it",
        _greedy_variant("drops_eos"),
    ),
    Mistake(
        "greedy.off_by_one",
        "max_len + 1 tokens",
        "at most max_len tokens, eos included: range(max_len)",
        _greedy_variant("off_by_one"),
    ),
)

GREEDY = Exercise(
    name="greedy_decode",
    section="3.2",
    title="Greedy decoding",
    task=(
        "Generate from a model one token at a time: step(prefix) returns the log-probs (V,) of the next token given "
        "the list of tokens so far (starting with bos). Take the most probable token, append it, and stop after "
        "eos (included) or after max_len tokens."
    ),
    equation="y_t = argmax_y log p(y | bos, y_1..y_{t-1}), until y_t = eos or t = max_len",
    shapes="step: list[int] -> Tensor (V,); bos, eos, max_len: int; returns list[int] (without bos)",
    returns="the generated tokens, a list of ints",
    reference=greedy_decode,
    solution=(greedy_decode, Seq2Seq._greedy),
    checks=(
        Check("shape and dtype", "a list of ints", "", lambda t: _greedy(t, _Model(t, 5, 0, 1), 4)),
        Check(
            "random models",
            "against the reference on a random toy model",
            "",
            lambda t: _greedy_compare(t, "a random model", 12),
        ),
        Check(
            "stops at eos",
            "eos forced at the 4th token: it is the last token returned",
            "",
            lambda t: _greedy_compare(t, "eos at step 4", 10, eos_at=4),
        ),
        Check(
            "max_len",
            "eos never produced: exactly max_len tokens",
            "",
            lambda t: _greedy_compare(t, "no eos", t.integer(1, 8), eos_banned=True),
        ),
        Check("prefixes", "step is called with [bos], then [bos, y_1], ... once per token", "", _greedy_prefixes),
    ),
    mistakes=GREEDY_MISTAKES,
)


# --- beam search step ------------------------------------------------------------------------------------------


def _beam(t: Trial, scores: Tensor, logp: Tensor, k: int) -> tuple[Tensor, Tensor, Tensor]:
    s, parents, tokens = t.parts(t.call(scores, logp, k), 3, "the result (scores, parents, tokens)")
    t.tensor(s, (k,), scores.dtype, "new scores")
    t.tensor(parents, (k,), torch.int64, "parents")
    t.tensor(tokens, (k,), torch.int64, "tokens")
    return s, parents, tokens


def _logp(t: Trial, k: int, V: int) -> Tensor:
    return torch.log_softmax(t.randn(k, V, scale=2.0), -1)


def _beam_compare(t: Trial, scores: Tensor, logp: Tensor, what: str) -> None:
    k = scores.shape[0]
    got = _beam(t, scores, logp, k)
    want = beam_search_step(scores, logp, k)
    for name, g, w in zip(("new scores", "parents", "tokens"), got, want, strict=True):
        t.expect(
            torch.equal(g, w) if name != "new scores" else bool(torch.isclose(g, w).all()),
            f"{what}: expected {name} {w.tolist()}, got {g.tolist()}",
        )


def _beam_random(t: Trial) -> None:
    _beam_compare(t, -t.uniform(4, high=6.0), _logp(t, 4, 11), "four live beams")


def _beam_first(t: Trial) -> None:
    scores = torch.tensor([0.0, float("-inf"), float("-inf")])
    _beam_compare(t, scores, _logp(t, 3, 7), "the first step (one live beam, the others -inf)")


def _beam_greedy(t: Trial) -> None:
    logp = _logp(t, 1, 9)
    _, parents, tokens = _beam(t, torch.tensor([-1.5]), logp, 1)
    t.expect(int(tokens[0]) == int(logp[0].argmax()), f"beam_size 1: expected the argmax {int(logp[0].argmax())}")
    t.expect(int(parents[0]) == 0, "beam_size 1: the parent is beam 0")


def _beam_consistent(t: Trial) -> None:
    scores, logp = -t.uniform(3, high=4.0), _logp(t, 3, 6)
    s, parents, tokens = _beam(t, scores, logp, 3)
    t.expect(
        bool((parents >= 0).all() and (parents < 3).all() and (tokens >= 0).all() and (tokens < 6).all()),
        f"parents {parents.tolist()} / tokens {tokens.tolist()} out of range",
    )
    t.close(s, scores[parents] + logp[parents, tokens], "new scores = scores[parent] + log_probs[parent, token]")
    t.expect(bool((s[:-1] >= s[1:]).all()), f"the new scores must be best first, got {s.tolist()}")


def _beam_strong(t: Trial) -> None:
    scores = torch.tensor([0.0, -40.0, -40.0, -40.0])  # beam 0's children outrank everything else
    _beam_compare(t, scores, _logp(t, 4, 8), "one strong beam and three weak ones")


def _beam_compete(t: Trial) -> None:
    V = 8
    scores = torch.tensor([0.0, -0.5, -30.0, -30.0])
    logp = torch.log_softmax(t.randn(4, V, scale=0.1), -1)  # beam 0 unsure: every token near log(1/8) = -2.1
    logp[1] = torch.log_softmax(torch.cat([torch.tensor([12.0]), t.randn(V - 1, scale=0.1)]), -1)  # beam 1 sure
    _beam_compare(t, scores, logp, "a weaker prefix with a confident next token (it must win the first place)")


def _beam_variant(kind: str):
    def beam_search_step(scores, log_probs, beam_size):
        V = log_probs.shape[1]
        if kind == "per_beam":
            top, tok = (scores.unsqueeze(1) + log_probs).max(1)  # the best child of each beam
            order = top.argsort(descending=True)[:beam_size]
            return top[order], order, tok[order]
        if kind == "best_beam_only":
            b = int(scores.argmax())
            top, tok = (scores[b] + log_probs[b]).topk(beam_size)
            return top, torch.full_like(tok, b), tok
        total = (scores.unsqueeze(1) + log_probs).flatten()  # (k * V,)
        _, idx = (log_probs.flatten() if kind == "ignores_prefix" else total).topk(beam_size)
        parent, token = (idx % V, idx // V) if kind == "div_mod_swapped" else (idx // V, idx % V)
        return total[idx], parent, token

    return beam_search_step


BEAM_MISTAKES = (
    Mistake(
        "beam.per_beam",
        "one child per beam",
        "all k * V extensions compete together: a strong beam may keep several children and a weak one none "
        "(flatten scores[:, None] + log_probs, then topk)",
        _beam_variant("per_beam"),
    ),
    Mistake(
        "beam.ignores_prefix",
        "ranked by the new token's log-prob only",
        "rank by the whole hypothesis, scores[parent] + log_probs[parent, token]: the prefix's log-prob counts",
        _beam_variant("ignores_prefix"),
    ),
    Mistake(
        "beam.div_mod_swapped",
        "parent and token swapped in the flat index",
        "in the flattened (k, V) candidates, index i is beam i // V and token i % V",
        _beam_variant("div_mod_swapped"),
    ),
    Mistake(
        "beam.best_beam_only",
        "only the best beam extended",
        "extend EVERY live beam: the best prefix now can lose to another beam's continuation",
        _beam_variant("best_beam_only"),
    ),
)

BEAM = Exercise(
    name="beam_search_step",
    section="3.2",
    title="One step of beam search",
    task=(
        "k live hypotheses have cumulative log-probs `scores`; the model gives log_probs (k, V) for each one's next "
        "token. Extend every hypothesis by every token and keep the beam_size best extensions by cumulative "
        "log-prob, best first: return their scores, the index of the beam each extends, and the token added."
    ),
    equation="cand(b, y) = scores[b] + log_probs[b, y];  keep the beam_size largest over all (b, y)",
    shapes="scores (k,), log_probs (k, V); returns new scores (beam_size,), parents and tokens (beam_size,) int64",
    returns="a tuple (new_scores, parents, tokens)",
    reference=beam_search_step,
    solution=(beam_search_step, Seq2Seq._beam),
    checks=(
        Check("shape and dtype", "k = 3, V = 5", "", lambda t: _beam(t, -t.uniform(3), _logp(t, 3, 5), 3)),
        Check("random beams", "four live beams over 11 tokens, against the reference", "", _beam_random),
        Check("first step", "one live beam (the others -inf): all children come from it", "", _beam_first),
        Check("beam size 1", "k = 1 is greedy: the argmax", "", _beam_greedy),
        Check("consistent indices", "scores[parent] + log_probs[parent, token], best first", "", _beam_consistent),
        Check("a strong beam", "one beam far ahead keeps every place", "", _beam_strong),
        Check(
            "beams compete", "a weaker prefix with a confident next token beats the best prefix's", "", _beam_compete
        ),
    ),
    mistakes=BEAM_MISTAKES,
)

EXERCISES = (GREEDY, BEAM)
