"""``attnlab.train.seq2seq``: a tiny reversal run learns (exact match on the test split), a stopped-and-resumed run
equals the uninterrupted one, a --pairs run's BLEU and chrF are sacrebleu's on the written hypotheses, checkpoints
hold the vocabularies and run config as JSON, and the Trainer passes a batch of any number of tensors as
``model(*batch)``."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import NamedTuple

import pytest
import sacrebleu
import torch
from torch import Tensor, nn

from attnlab.data.seq2seq import (
    CorpusNotFoundError,
    Pair,
    Vocab,
    detokenize,
    load_pairs_tsv,
    make_batch,
    reverse_pairs,
    split_pairs,
)
from attnlab.train import TrainConfig, Trainer, read_checkpoint
from attnlab.train.seq2seq import (
    Seq2SeqRunConfig,
    Translation,
    evaluate,
    fit,
    load_data,
    load_seq2seq,
    prepare_seq2seq,
    resume_seq2seq,
    train_seq2seq,
    translate,
)

TOL = 1e-6
TINY = {
    "task": "reverse", "min_len": 2, "max_len": 6, "n_symbols": 6, "n_train": 2000, "n_test": 64,
    "emb": 16, "hidden": 32, "dropout": 0.1, "batch_size": 32, "max_iters": 150, "lr": 1e-2, "warmup_iters": 10,
    "weight_decay": 0.0, "eval_interval": 50, "eval_iters": 2, "ckpt_interval": 40, "beam_size": 2, "device": "cpu",
}  # fmt: skip

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_run(out: Path, **kw) -> Seq2SeqRunConfig:
    return Seq2SeqRunConfig.from_json({**TINY, "out": str(out), **kw})  # flat: optimisation fields map into train


def read_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


@pytest.fixture(scope="module")
def reverse_run(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("reverse") / "run"
    return out, train_seq2seq(tiny_run(out), progress=False)


def test_reverse_run_learns_and_scores_exact_match(reverse_run):
    out, result = reverse_run
    assert result["done"] and result["iter"] == 150 and [h["iter"] for h in result["history"]] == [50, 100, 150]
    assert result["history"][-1]["val"] < 0.1 < result["history"][0]["val"]  # it learned
    test = result["test"]
    assert test["n"] == 64 and test["beam_size"] == 2
    assert set(test["greedy"]) == {"accuracy"}  # synthetic: exact match only
    assert test["greedy"]["accuracy"] >= 0.9 and test["beam"]["accuracy"] >= 0.9
    # the accuracy is the fraction of hypothesis lines equal to their reference, the reference the reversed source
    src, ref = read_lines(out / "test.src.txt"), read_lines(out / "test.ref.txt")
    assert ref == [" ".join(s.split()[::-1]) for s in src] and len(src) == 64
    for search in ("greedy", "beam"):
        hyp = read_lines(out / f"test.{search}.txt")
        assert test[search]["accuracy"] == sum(h == r for h, r in zip(hyp, ref, strict=True)) / 64
    assert json.loads((out / "results.json").read_text())["test"] == test
    config = json.loads((out / "config.json").read_text())
    assert config["max_len"] == 6 and config["attention"] == "bahdanau" and config["cell"] == "gru"


def test_the_test_split_is_held_out_and_seeded(tmp_path):
    run = tiny_run(tmp_path / "run", n_train=50, n_test=7)
    data = load_data(run)
    assert (len(data.train), len(data.valid), len(data.test)) == (50, 7, 7)
    expected = reverse_pairs(64, 2, 6, 6, torch.Generator().manual_seed(run.train.seed))
    assert data.train + data.valid + data.test == expected  # one seeded stream: train, then valid, then test
    assert load_data(run) == data


def test_checkpoint_holds_vocabularies_and_run_config_as_json(reverse_run):
    out, _ = reverse_run
    state = read_checkpoint(out / "ckpt.safetensors")[0]["state"]
    assert state["kind"] == "seq2seq" and state["iter"] == 150
    assert state["run"] == json.loads((out / "config.json").read_text())
    itos = state["src_vocab"]["itos"]
    assert itos[:4] == ["<pad>", "<bos>", "<eos>", "<unk>"] and sorted(itos[4:]) == list("abcdef")  # 6 symbols
    assert state["model"]["src_vocab"] == 10 and state["model"]["hidden"] == 32

    model, src_vocab, tgt_vocab, run = load_seq2seq(out)
    assert not model.training and run == tiny_run(out) and src_vocab == tgt_vocab
    trained = load_seq2seq(out / "ckpt.safetensors")[0]
    for (name, p), q in zip(model.state_dict().items(), trained.state_dict().values(), strict=True):
        assert torch.equal(p, q), name


def test_translate_reverses_and_reports_the_model_log_prob(reverse_run):
    out, _ = reverse_run
    model, src_vocab, tgt_vocab, _ = load_seq2seq(out)
    sentences = ["a b c d", "f e e"]
    (first, second), beam = (
        translate(model, src_vocab, tgt_vocab, sentences),
        translate(model, src_vocab, tgt_vocab, sentences, beam_size=2),
    )
    assert isinstance(first, Translation) and first.source_tokens == ["a", "b", "c", "d"]
    assert (first.text, second.text) == ("d c b a", "e e f")
    assert first.target_tokens == ["d", "c", "b", "a"] and first.weights.shape == (4, 4)
    assert torch.allclose(first.weights.sum(-1), torch.ones(4))  # each row a distribution over the source
    batch = make_batch([Pair(first.source_tokens, first.target_tokens)], src_vocab, tgt_vocab)
    with torch.no_grad():
        score = model.score(batch.src, batch.src_lengths, batch.tgt_out)  # log p(d c b a EOS | a b c d)
    assert first.log_prob == pytest.approx(float(score[0]), abs=1e-5)
    assert beam[0].log_prob >= first.log_prob - 1e-6 and [t.text for t in beam] == ["d c b a", "e e f"]


def test_evaluate_counts_exact_matches(reverse_run):
    out, _ = reverse_run
    model, src_vocab, tgt_vocab, _ = load_seq2seq(out)
    good = reverse_pairs(20, 2, 6, 6, torch.Generator().manual_seed(5))
    wrong = [type(p)(p.src, list(p.src)) for p in good[:10] if p.src != p.src[::-1]]  # copy targets: wrong
    result = evaluate(model, good + wrong, src_vocab, tgt_vocab, batch_size=7)
    hyps = evaluate(model, good, src_vocab, tgt_vocab)["hypotheses"]
    n_good = sum(h == " ".join(p.tgt) for h, p in zip(hyps, good, strict=True))
    assert n_good >= 18 and result["n"] == 20 + len(wrong) > 20
    assert result["accuracy"] == n_good / result["n"]  # the copy targets never match a reversal
    assert result["hypotheses"][:20] == hyps  # batching does not change the hypotheses


# --- resume --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stop", [70])
def test_stopped_and_resumed_equals_uninterrupted(reverse_run, tmp_path, stop):
    _, reference = reverse_run
    out = tmp_path / "run"
    partial = train_seq2seq(tiny_run(out), progress=False, stop_after=stop)
    assert partial["iter"] == stop and not partial["done"] and "test" not in partial
    assert read_checkpoint(out / "ckpt.safetensors")[0]["state"]["iter"] == stop
    assert not (out / "test.greedy.txt").exists()  # evaluated only once training is done

    resumed = resume_seq2seq(out, progress=False)

    assert resumed["iter"] == 150 and resumed["done"]
    assert resumed["last_train_loss"] == pytest.approx(reference["last_train_loss"], abs=TOL)
    for h, ref in zip(resumed["history"], reference["history"], strict=True):
        assert h["iter"] == ref["iter"] and (h["train"], h["val"]) == pytest.approx((ref["train"], ref["val"]), abs=TOL)
    assert resumed["test"] == reference["test"]


# --- sentence pairs: BLEU and chrF from sacrebleu --------------------------------------------------------------

NOUNS = {"hund": "dog", "katze": "cat", "mann": "man", "frau": "woman", "kind": "child", "vogel": "bird"}
VERBS = {"sieht": "sees", "mag": "likes", "ruft": "calls", "hört": "hears", "sucht": "seeks"}


@pytest.fixture(scope="module")
def pairs_file(tmp_path_factory) -> Path:
    """180 German -> English sentences ("Der Hund sieht den Vogel." -> "The dog sees the bird.")."""
    lines = [
        f"Der {n1.capitalize()} {v} den {n2.capitalize()}.\tThe {e1} {ve} the {e2}."
        for n1, e1 in NOUNS.items()
        for v, ve in VERBS.items()
        for n2, e2 in NOUNS.items()
    ]
    random.Random(0).shuffle(lines)
    path = tmp_path_factory.mktemp("pairs") / "de-en.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_pairs_run_scores_bleu_and_chrf_with_sacrebleu(pairs_file, tmp_path):
    out = tmp_path / "run"
    run = tiny_run(out, pairs=str(pairs_file), max_iters=30, eval_interval=30, beam_size=3)
    result = train_seq2seq(run, progress=False)

    test = result["test"]
    _, _, expected_test = split_pairs(load_pairs_tsv(pairs_file))
    refs = read_lines(out / "test.ref.txt")
    assert refs == [detokenize(p.tgt) for p in expected_test] and len(refs) == test["n"] == 9
    assert refs[0].startswith("the ") and refs[0].endswith(".")  # detokenized: no space before the full stop
    for search in ("greedy", "beam"):
        hyps = read_lines(out / f"test.{search}.txt")
        assert len(hyps) == 9
        assert 10 < test[search]["bleu"] < 100  # half-trained: neither all wrong nor all right
        assert test[search]["bleu"] == sacrebleu.corpus_bleu(hyps, [refs]).score
        assert test[search]["chrf"] == sacrebleu.corpus_chrf(hyps, [refs]).score
        assert test[search]["accuracy"] == sum(h == r for h, r in zip(hyps, refs, strict=True)) / 9
    assert test["bleu_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp")
    assert json.loads((out / "config.json").read_text())["pairs"] == str(pairs_file.resolve())


def test_dates_are_characters(tmp_path):
    out = tmp_path / "run"
    run = tiny_run(out, task="dates", n_train=40, n_test=5, max_iters=2, eval_interval=2, beam_size=1)
    result = train_seq2seq(run, progress=False)
    assert set(result["test"]) == {"n", "beam_size", "greedy"}  # beam 1: greedy only
    refs, src = read_lines(out / "test.ref.txt"), read_lines(out / "test.src.txt")
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d", r) for r in refs) and len(refs) == 5
    assert any(" " in s for s in src)  # the written dates, characters joined as they were
    model, src_vocab, tgt_vocab, run = load_seq2seq(out)
    (t,) = translate(model, src_vocab, tgt_vocab, ["3 Mar 2021"], chars=run.chars)
    assert t.source_tokens == list("3 Mar 2021") and t.text == "".join(t.target_tokens)


# --- the real German-English corpus, and its absence -----------------------------------------------------------


def test_de_en_run_reads_the_debian_dictionary(tmp_path):
    if not Path("/usr/share/trans/de-en").is_file():
        pytest.fail("trans-de-en is part of this project's set-up (apt-get install trans-de-en)")
    trainer = prepare_seq2seq(tiny_run(tmp_path / "run", task="de-en", max_len=None), progress=False)
    data, run = trainer.data, trainer.run
    n = len(data.train) + len(data.valid) + len(data.test)
    assert run.max_len == 12 and n > 10000 and len(data.test) == len(data.valid) == round(0.05 * n)
    assert max(max(len(p.src), len(p.tgt)) for p in data.test) <= 12
    assert trainer.src_vocab == Vocab.build(p.src for p in data.train)
    assert trainer.extra_state["tgt_vocab"]["itos"][:4] == list(Vocab.SPECIALS)


def test_missing_corpus_says_how_to_install_it(tmp_path):
    run = tiny_run(tmp_path / "run", task="de-en", corpus=str(tmp_path / "de-en"))
    with pytest.raises(CorpusNotFoundError, match=r"apt-get install trans-de-en.*--pairs FILE"):
        prepare_seq2seq(run, progress=False)
    assert not (tmp_path / "run").exists()


def test_config_validation():
    with pytest.raises(ValueError, match=r"task: expected one of copy, reverse, dates, de-en, got 'sort'"):
        Seq2SeqRunConfig(task="sort")
    with pytest.raises(ValueError, match=r"attention: expected one of .*, got 'luong'"):
        Seq2SeqRunConfig(attention="luong")
    with pytest.raises(ValueError, match=r"cell: expected one of .*, got 'rnn'"):
        Seq2SeqRunConfig(cell="rnn")
    with pytest.raises(ValueError, match=r"max_len: expected >= min_len=5, got 4"):
        Seq2SeqRunConfig(min_len=5, max_len=4)
    with pytest.raises(ValueError, match=r"beam_size: expected an integer >= 1, got 0"):
        Seq2SeqRunConfig(beam_size=0)
    with pytest.raises(ValueError, match=r"pairs: expected the path of a TSV file or None, got ''"):
        Seq2SeqRunConfig(pairs="")
    with pytest.raises(ValueError, match=r"max_iters: expected an integer >= 1, got 0"):
        Seq2SeqRunConfig.from_json({"max_iters": 0})
    defaults = Seq2SeqRunConfig()
    assert (defaults.task, defaults.attention, defaults.cell, defaults.max_len) == ("reverse", "bahdanau", "gru", 10)
    assert Seq2SeqRunConfig(task="de-en").max_len == 12 and Seq2SeqRunConfig(task="dates").max_len is None


def test_a_run_is_not_started_over_an_existing_one(reverse_run):
    out, _ = reverse_run
    with pytest.raises(ValueError, match=r"already holds a run; continue it with `attnlab resume"):
        prepare_seq2seq(tiny_run(out), progress=False)


# --- the Trainer with batches of any number of tensors, and fit() ----------------------------------------------


class _Out(NamedTuple):
    loss: Tensor


class ThreeInputs(nn.Module):
    """loss = mean((w * a + b - c)^2): three positional inputs, the first (B, 5) and the others (B, 1)."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(5))

    def forward(self, a: Tensor, b: Tensor, c: Tensor) -> _Out:
        return _Out(((a @ self.w).unsqueeze(1) + b - c).pow(2).mean())  # (B, 5) @ (5,) -> (B,) -> (B, 1)


def three_tensor_batches(split: str, gen: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
    a = torch.randn(8, 5, generator=gen)
    b = torch.randn(8, 1, generator=gen)
    return a, b, (a @ torch.arange(5.0)).unsqueeze(1) + b  # c: the target w = (0, 1, 2, 3, 4)


def test_trainer_passes_every_tensor_of_a_batch_to_the_model(tmp_path):
    cfg = TrainConfig(max_iters=300, lr=0.1, min_lr=0.01, warmup_iters=0, weight_decay=0.0, eval_interval=300,
                      eval_iters=2, ckpt_interval=300, device="cpu")  # fmt: skip
    trainer = fit(ThreeInputs(), three_tensor_batches, cfg, tmp_path / "run", progress=False)
    assert torch.allclose(trainer.model.w.detach(), torch.arange(5.0), atol=1e-2)
    assert trainer.result["history"][-1]["val"] < 1e-4 and trainer.tokens == 300 * 8 * 5  # counted from `a`
    assert not trainer.model.training and (tmp_path / "run/results.json").exists()

    again = fit(ThreeInputs(), three_tensor_batches, cfg, progress=False)  # a temporary folder, removed
    assert not Path(again.run_dir).exists() and again.result["iter"] == 300
    assert isinstance(again, Trainer)
