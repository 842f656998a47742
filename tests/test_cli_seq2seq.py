"""The command line's `train seq2seq`, `resume` of a seq2seq run and `sample` on a seq2seq checkpoint (translation);
bad input as one line on stderr with exit status 2, nothing written."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from attnlab.cli import main
from attnlab.train import read_checkpoint
from attnlab.train.seq2seq import load_seq2seq, translate
from cli_helpers import one_line_error

TINY = [
    "--task", "reverse", "--min-len", "2", "--max-len", "6", "--n-symbols", "6", "--n-train", "2000", "--n-test",
    "32", "--emb", "16", "--hidden", "32", "--batch-size", "32", "--train.max-iters", "150", "--train.lr", "0.01",
    "--train.warmup-iters", "10", "--train.weight-decay", "0", "--train.eval-interval", "50", "--train.eval-iters",
    "2", "--train.ckpt-interval", "50", "--beam-size", "2", "--train.device", "cpu",
]  # fmt: skip

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> tuple[Path, list[str]]:
    """One finished tiny reversal run, trained through the CLI, and what it printed."""
    out = tmp_path_factory.mktemp("cli") / "run"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert main(["train", "seq2seq", "--out", str(out), *TINY]) == 0
    return out, stdout.getvalue().splitlines()


def test_train_seq2seq_prints_loss_test_scores_and_checkpoint(run_dir):
    out, printed = run_dir
    results = json.loads((out / "results.json").read_text())
    assert printed[0].startswith("iter 150: train loss ") and f"{results['last_train_loss']:.4f}" in printed[0]
    greedy, beam = results["test"]["greedy"]["accuracy"], results["test"]["beam"]["accuracy"]
    assert printed[1] == f"test (32 pairs, greedy): accuracy {greedy:.4f}"
    assert printed[2] == f"test (32 pairs, beam 2): accuracy {beam:.4f}"
    assert printed[3] == f"checkpoint: {out / 'ckpt.safetensors'}"
    assert greedy >= 0.9 and beam >= 0.9
    assert json.loads((out / "config.json").read_text())["hidden"] == 32
    assert read_checkpoint(out / "ckpt.safetensors")[0]["state"]["kind"] == "seq2seq"


@pytest.mark.parametrize("beam", [None, "2"])
def test_sample_translates_the_prompt(run_dir, capsys, beam):
    out, _ = run_dir
    argv = ["sample", str(out), "--prompt", "a b c d e"] + ([] if beam is None else ["--beam", beam])

    assert main(argv) == 0

    printed = capsys.readouterr().out
    model, src_vocab, tgt_vocab, _ = load_seq2seq(out)
    (expected,) = translate(model, src_vocab, tgt_vocab, ["a b c d e"], beam_size=int(beam or 1))
    assert printed == expected.text + "\n" == "e d c b a\n"


def test_resume_detects_a_seq2seq_run_and_finishes_it(tmp_path, capsys):
    from attnlab.train.seq2seq import Seq2SeqRunConfig, train_seq2seq

    argv = [
        "train",
        "seq2seq",
        *TINY,
        "--train.max-iters",
        "20",
        "--train.eval-interval",
        "10",
        "--train.ckpt-interval",
        "10",
    ]
    assert main([*argv, "--out", str(tmp_path / "full")]) == 0  # uninterrupted, the reference
    config = json.loads((tmp_path / "full/config.json").read_text())
    out = tmp_path / "run"
    train_seq2seq(Seq2SeqRunConfig.from_json({**config, "out": str(out)}), progress=False, stop_after=13)
    capsys.readouterr()

    assert main(["resume", str(out)]) == 0

    printed = capsys.readouterr().out.splitlines()
    expected = json.loads((tmp_path / "full/results.json").read_text())
    result = json.loads((out / "results.json").read_text())
    assert printed[0].startswith("iter 20: train loss ") and printed[1].startswith("test (32 pairs, greedy)")
    assert read_checkpoint(out / "ckpt.safetensors")[0]["state"]["iter"] == 20
    assert result["last_train_loss"] == pytest.approx(expected["last_train_loss"], abs=1e-6)
    assert result["test"] == expected["test"]


def test_train_seq2seq_help_lists_the_config_fields(capsys):
    assert main(["train", "seq2seq", "--help"]) == 0
    out = capsys.readouterr().out
    assert all(f"--{name}" in out for name in ("task", "pairs", "attention", "cell", "beam-size", "train.max-iters"))
    assert "default bahdanau" in out


# --- bad input ---------------------------------------------------------------------------------------------


def write_tsv(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--task", "sort"], "task: expected one of copy, reverse, dates, de-en, got 'sort'"),
        (["--attention", "luong"], "attention: expected one of ('none', 'bahdanau', 'luong-dot'"),
        (["--cell", "rnn"], "cell: expected one of ('gru', 'lstm'), got 'rnn'"),
        (["--min-len", "7"], "max_len: expected >= min_len=7, got 6"),
        (["--beam-size", "0"], "beam_size: expected an integer >= 1, got 0"),
        (["--hidden", "many"], "--hidden: expected an integer, got 'many'"),
        (["--task", "de-en", "--corpus", "MISSING"], "apt-get install trans-de-en"),
        (["--pairs", "MISSING"], "does not exist (expected `source<TAB>target` lines)"),
        (["--pairs", "MALFORMED"], ":3: expected `source<TAB>target` (exactly one tab), got 0 tabs"),
        (["--pairs", "TOO_FEW"], "expected enough pairs for 5% validation and 5% test splits"),
    ],
    ids=["task", "attention", "cell", "lengths", "beam", "not-an-int", "no-corpus", "no-pairs", "bad-line", "few"],
)
def test_train_seq2seq_bad_input(tmp_path, capsys, extra, expected):
    files = {
        "MISSING": tmp_path / "missing",
        "MALFORMED": write_tsv(tmp_path / "bad.tsv", ["Hallo.\tHello.", "Danke.\tThanks.", "Tschüss. Bye."]),
        "TOO_FEW": write_tsv(tmp_path / "few.tsv", ["Hallo.\tHello.", "Danke.\tThanks.", "Ja.\tYes."]),
    }
    extra = [str(files[e]) if e in files else e for e in extra]
    out = tmp_path / "run"

    assert main(["train", "seq2seq", "--out", str(out), *TINY, *extra]) == 2

    err = one_line_error(capsys)
    assert expected in err
    if str(files["MISSING"]) in extra:
        assert str(files["MISSING"]) in err
    if expected.startswith("apt-get"):
        assert "--pairs FILE" in err
    assert not out.exists()  # nothing written


def test_missing_default_corpus(tmp_path, capsys, monkeypatch):
    """The Debian package not installed: the real loader reads a path where nothing is."""
    import attnlab.train.seq2seq as seq2seq

    real = seq2seq.load_de_en
    monkeypatch.setattr(seq2seq, "load_de_en", lambda path, max_len: real(tmp_path / "share/trans/de-en", max_len))

    assert main(["train", "seq2seq", "--task", "de-en", "--out", str(tmp_path / "run"), "--train.device", "cpu"]) == 2

    err = one_line_error(capsys)
    assert "apt-get install trans-de-en" in err and "--pairs FILE" in err
    assert not (tmp_path / "run").exists()


def test_sample_bad_input(run_dir, capsys):
    out, _ = run_dir
    assert main(["sample", str(out), "--prompt", "a b", "--beam", "0"]) == 2
    assert "--beam: expected an integer >= 1, got 0" in one_line_error(capsys)
    assert main(["sample", str(out), "--prompt", "  "]) == 2
    assert "prompt: expected a sentence to translate" in one_line_error(capsys)
    assert main(["sample", str(out)]) == 2  # the default prompt, a newline, is no sentence
    assert "prompt: expected a sentence to translate" in one_line_error(capsys)


def test_beam_on_a_gpt_checkpoint_is_refused(tmp_path, capsys):
    text = tmp_path / "t.txt"
    text.write_text("the cat sat on the mat. " * 40, encoding="utf-8")
    tiny = ["--n-layer", "1", "--n-head", "1", "--n-embd", "8", "--block-size", "8", "--batch-size", "2"]
    its = [
        "--train.max-iters",
        "1",
        "--train.eval-interval",
        "1",
        "--train.eval-iters",
        "1",
        "--train.ckpt-interval",
        "1",
    ]
    assert main(["train", "gpt", "--text", str(text), "--out", str(tmp_path / "gpt"), *tiny, *its]) == 0
    capsys.readouterr()

    assert main(["sample", str(tmp_path / "gpt"), "--beam", "2"]) == 2

    assert "--beam: beam search is for seq2seq checkpoints" in one_line_error(capsys)


def test_unknown_run_kind(run_dir, tmp_path, capsys):
    from safetensors.torch import save_file

    out, _ = run_dir
    meta, tensors = read_checkpoint(out / "ckpt.safetensors")
    meta["state"]["kind"] = "transformer"
    (tmp_path / "odd").mkdir()
    save_file(tensors, str(tmp_path / "odd/ckpt.safetensors"), metadata={"attnlab": json.dumps(meta)})

    for verb in ("resume", "sample"):
        assert main([verb, str(tmp_path / "odd")]) == 2
        assert "holds a run of unknown kind 'transformer' (expected gpt or seq2seq)" in one_line_error(capsys)
