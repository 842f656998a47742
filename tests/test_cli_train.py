"""The command line's `train gpt`, `resume` and `sample`: what a run writes and prints, and bad input as one line
on stderr with exit status 2 (nothing written)."""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from attnlab.cli import main
from attnlab.models.gpt_config import NANOGPT, GPTConfig
from attnlab.nn.norms import RMSNorm
from attnlab.train import read_checkpoint
from attnlab.train.gpt import OPTIONS, GPTRunConfig, load_gpt
from cli_helpers import one_line_error

WORDS = ["the", "king", "queen", "shall", "not", "love", "death", "night", "sweet", "good", "my", "lord"]
TINY = [
    "--batch-size", "4", "--block-size", "16", "--n-layer", "2", "--n-head", "2", "--n-embd", "32",
    "--train.max-iters", "6", "--train.warmup-iters", "2", "--train.eval-interval", "3", "--train.eval-iters", "2",
    "--train.ckpt-interval", "4", "--train.device", "cpu",
]  # fmt: skip


pytestmark = pytest.mark.usefixtures("one_thread")


def write_text(path: Path, n_lines: int = 120) -> Path:
    rnd = random.Random(0)
    path.write_text("\n".join(" ".join(rnd.choice(WORDS) for _ in range(6)) for _ in range(n_lines)) + "\n")
    return path


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """One finished tiny run (6 iterations) to sample from."""
    folder = tmp_path_factory.mktemp("cli")
    text = write_text(folder / "verse.txt")
    assert main(["train", "gpt", "--text", str(text), "--out", str(folder / "run"), *TINY]) == 0
    return folder / "run"


def test_train_writes_checkpoint_config_and_results(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = write_text(tmp_path / "verse.txt")

    assert main(["train", "gpt", "--text", str(text), "--out", "run", *TINY, "--dropout", "0.1"]) == 0

    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("iter 6: train loss ") and ", val loss " in printed[0]
    assert printed[1] == f"checkpoint: {Path('run') / 'ckpt.safetensors'}"
    results = json.loads((tmp_path / "run/results.json").read_text())
    assert results["iter"] == 6 and results["done"] and [h["iter"] for h in results["history"]] == [3, 6]
    assert f"{results['last_train_loss']:.4f}" in printed[0]
    config = json.loads((tmp_path / "run/config.json").read_text())
    assert config["n_embd"] == 32 and config["dropout"] == 0.1 and config["text"] == str(text)
    state = read_checkpoint(tmp_path / "run/ckpt.safetensors")[0]["state"]
    assert state["iter"] == 6 and state["kind"] == "gpt"
    assert state["tokenizer"] == {"kind": "char", "vocab": sorted(set(text.read_text()))}
    files = ["best.safetensors", "ckpt.safetensors", "config.json", "results.json"]
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == files


def test_train_into_an_existing_run_is_refused(run_dir, capsys):
    before = (run_dir / "ckpt.safetensors").read_bytes()
    text = run_dir.parent / "verse.txt"

    assert main(["train", "gpt", "--text", str(text), "--out", str(run_dir), *TINY]) == 2

    err = one_line_error(capsys)
    assert f"out: {run_dir} already holds a run" in err and f"attnlab resume {run_dir}" in err
    assert (run_dir / "ckpt.safetensors").read_bytes() == before


def test_sample_prints_the_prompt_and_its_continuation(run_dir, capsys):
    vocab = read_checkpoint(run_dir / "ckpt.safetensors")[0]["state"]["tokenizer"]["vocab"]
    argv = ["sample", str(run_dir), "--prompt", "the k", "--max-new-tokens", "30", "--seed", "3"]

    assert main(argv) == 0
    text = capsys.readouterr().out
    assert text.endswith("\n") and text.startswith("the k")
    text = text[:-1]  # print's newline
    assert len(text) == 5 + 30 and set(text) <= set(vocab)

    assert main(argv) == 0  # the same seed: the same text
    assert capsys.readouterr().out == text + "\n"
    assert main([*argv[:-1], "4"]) == 0
    assert capsys.readouterr().out != text + "\n"


def test_sample_greedy_cached_equals_no_cache(run_dir, capsys):
    ckpt = str(run_dir / "ckpt.safetensors")
    argv = ["sample", ckpt, "--prompt", "my", "--max-new-tokens", "40", "--temperature", "0"]
    assert main(argv) == 0
    cached = capsys.readouterr().out
    assert main([*argv, "--no-cache"]) == 0  # 2 + 40 characters: past block_size=16
    assert capsys.readouterr().out == cached and len(cached) == 2 + 40 + 1


def flat_run(run: dict) -> dict:
    """A nested run config in the flat form GPTRunConfig had before ``train`` nested (``lr``, not ``train.lr``)."""
    return {**{k: v for k, v in run.items() if k != "train"}, **run["train"]}


@pytest.mark.parametrize("form", ["nested", "flat"])
def test_resume_continues_a_stopped_run(tmp_path, capsys, form):
    """Also from a checkpoint written by the flat GPTRunConfig of earlier versions (``form="flat"``)."""
    text = write_text(tmp_path / "verse.txt")
    out = tmp_path / "run"
    assert main(["train", "gpt", "--text", str(text), "--out", str(out), *TINY, "--train.max-iters", "4"]) == 0
    ckpt = out / "ckpt.safetensors"
    meta, tensors = read_checkpoint(ckpt)
    meta["state"]["run"]["train"]["max_iters"] = 7  # as if it had been started with 7 and stopped at 4
    meta["state"]["train"]["max_iters"] = 7
    if form == "flat":
        meta["state"]["run"] = flat_run(meta["state"]["run"])
        assert meta["state"]["run"]["max_iters"] == 7 and "train" not in meta["state"]["run"]
    save_file(tensors, str(ckpt), metadata={"attnlab": json.dumps(meta)})
    capsys.readouterr()

    assert main(["resume", str(out)]) == 0

    assert capsys.readouterr().out.startswith("iter 7: train loss ")
    assert read_checkpoint(ckpt)[0]["state"]["iter"] == 7


def test_sample_reads_a_checkpoint_of_the_flat_run_config(run_dir, tmp_path, capsys):
    meta, tensors = read_checkpoint(run_dir / "ckpt.safetensors")
    meta["state"]["run"] = flat_run(meta["state"]["run"])
    legacy = tmp_path / "legacy.safetensors"
    save_file(tensors, str(legacy), metadata={"attnlab": json.dumps(meta)})
    argv = ["--prompt", "the k", "--max-new-tokens", "20", "--seed", "3"]

    assert main(["sample", str(run_dir), *argv]) == 0
    expected = capsys.readouterr().out
    assert main(["sample", str(legacy), *argv]) == 0
    assert capsys.readouterr().out == expected


@pytest.mark.parametrize(
    ("old", "new"),
    [(["--lr", "1e-3"], "--train.lr"), (["--max-iters", "5"], "--train.max-iters"), (["--device", "cpu"],
     "--train.device"), (["--seed=3"], "--train.seed")],
)  # fmt: skip
def test_old_flat_flags_name_their_new_spelling(tmp_path, capsys, old, new):
    assert main(["train", "gpt", "--out", str(tmp_path / "run"), *old]) == 2
    assert one_line_error(capsys) == f"attnlab: error: {old[0].split('=')[0]} is now {new}\n"
    assert not (tmp_path / "run").exists()


MODERN = ["--n-kv-head", "1", "--pos", "rope", "--norm", "rmsnorm", "--mlp", "swiglu", "--window", "8"]


def test_train_takes_the_block_options_and_samples_and_resumes(tmp_path, capsys):
    """``--n-kv-head --pos --norm --mlp --window`` build that block; the run samples (cached decoding equal to none)
    and resumes with it."""
    text = write_text(tmp_path / "verse.txt")
    out = tmp_path / "run"
    assert main(["train", "gpt", "--text", str(text), "--out", str(out), *TINY, "--train.max-iters", "4", *MODERN]) == 0

    config = json.loads((out / "config.json").read_text())
    assert {k: config[k] for k in ("n_kv_head", "pos", "norm", "mlp", "window", "attention")} == {
        "n_kv_head": 1, "pos": "rope", "norm": "rmsnorm", "mlp": "swiglu", "window": 8, "attention": "mha"
    }  # fmt: skip
    model, _ = load_gpt(str(out))
    attn = model.blocks[0].self_attn
    assert (attn.num_heads, attn.num_kv_heads, attn.rotary, model.wpe) == (2, 1, True, None)
    assert isinstance(model.blocks[0].norm1, RMSNorm) and model.blocks[0].mlp == "swiglu"
    assert model.blocks[0].window == 8 and model.config.context_limit is None  # a window with rotary: no limit
    argv = ["sample", str(out), "--prompt", "my", "--max-new-tokens", "30", "--temperature", "0"]
    capsys.readouterr()
    assert main(argv) == 0
    cached = capsys.readouterr().out
    assert main([*argv, "--no-cache"]) == 0  # 32 characters: past the window of 8, through the rolling cache
    assert capsys.readouterr().out == cached and len(cached) == 2 + 30 + 1

    ckpt = out / "ckpt.safetensors"
    meta, tensors = read_checkpoint(ckpt)
    meta["state"]["run"]["train"]["max_iters"] = meta["state"]["train"]["max_iters"] = 6
    save_file(tensors, str(ckpt), metadata={"attnlab": json.dumps(meta)})
    assert main(["resume", str(out)]) == 0
    assert capsys.readouterr().out.startswith("iter 6: train loss ")
    assert load_gpt(str(out))[0].config == model.config


@pytest.mark.parametrize("form", ["nested", "flat"])
def test_runs_saved_before_the_block_options_load_as_gpt2_blocks(run_dir, tmp_path, capsys, form):
    """A run config without the option keys (as saved before they existed) samples and resumes as before: every
    option takes GPTConfig's default, nanoGPT's GPT-2 block."""
    meta, tensors = read_checkpoint(run_dir / "ckpt.safetensors")
    run = {k: v for k, v in meta["state"]["run"].items() if k not in OPTIONS}
    assert set(OPTIONS) <= set(meta["state"]["run"]) and not set(OPTIONS) & set(run)
    meta["state"]["run"] = flat_run(run) if form == "flat" else run
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    save_file(tensors, str(legacy / "ckpt.safetensors"), metadata={"attnlab": json.dumps(meta)})
    defaults = GPTConfig()
    assert all(getattr(load_gpt(str(legacy))[0].config, k) == getattr(defaults, k) for k in OPTIONS)
    argv = ["--prompt", "the k", "--max-new-tokens", "20", "--seed", "3"]

    assert main(["sample", str(run_dir), *argv]) == 0
    expected = capsys.readouterr().out
    assert main(["sample", str(legacy), *argv]) == 0
    assert capsys.readouterr().out == expected

    run = {**run, "train": {**run["train"], "max_iters": 7}}  # as if started with 7 and stopped at 6
    meta["state"]["run"] = flat_run(run) if form == "flat" else run
    meta["state"]["train"]["max_iters"] = 7
    save_file(tensors, str(legacy / "ckpt.safetensors"), metadata={"attnlab": json.dumps(meta)})
    assert main(["resume", str(legacy)]) == 0
    assert capsys.readouterr().out.startswith("iter 7: train loss ")


def test_run_config_option_defaults_are_gpt_configs():
    """The command line's defaults for the block options are GPTConfig's (GPT-2's block), one place to change."""
    run, defaults = GPTRunConfig(), GPTConfig()
    assert all(getattr(run, k) == getattr(defaults, k) for k in OPTIONS)
    assert set(OPTIONS) == {f.name for f in dataclasses.fields(GPTConfig)} - set(NANOGPT)


def test_train_help_lists_the_nested_options(capsys):
    assert main(["train", "gpt", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--train.lr" in out and "--train.max-iters" in out and "--n-embd" in out
    assert "--lr " not in out  # the old flat spelling is not offered


# --- bad input ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "extra", "expected"),
    [
        ("", [], "text: expected a non-empty text"),
        ("to be or not to be, that is the question\n", [], "fewer than block_size + 1 = 17"),
        (None, ["--n-embd", "30", "--n-head", "4"], "n_embd: expected a multiple of n_head=4, got 30"),
        (None, ["--n-layer", "0"], "n_layer: expected an integer >= 1, got 0"),
        (None, ["--dropout", "1.5"], "dropout: expected a probability in [0, 1), got 1.5"),
        (None, ["--n-layer", "two"], "--n-layer: expected an integer, got 'two'"),
        (None, ["--train.max-iters", "0"], "max_iters: expected an integer >= 1, got 0"),
        (None, ["--norm", "batchnorm"], "norm: expected one of ('layernorm', 'rmsnorm'), got 'batchnorm'"),
        (None, ["--n-kv-head", "3"], "n_kv_head: expected None or a divisor of n_head=2, got 3"),
        (b"\xff\xfe not utf-8", [], "is not UTF-8 text"),
    ],
    ids=[
        "empty",
        "too-short",
        "n_embd",
        "n_layer",
        "dropout",
        "not-an-int",
        "max_iters",
        "norm",
        "n_kv_head",
        "not-utf8",
    ],
)
def test_train_bad_input(tmp_path, capsys, content, extra, expected):
    text = tmp_path / "input.txt"
    if content is None:
        write_text(text)
    elif isinstance(content, bytes):
        text.write_bytes(content)
    else:
        text.write_text(content)
    out = tmp_path / "run"

    assert main(["train", "gpt", "--text", str(text), "--out", str(out), *TINY, *extra]) == 2

    assert expected in one_line_error(capsys)
    assert not out.exists()  # nothing written


def test_train_missing_text_file(tmp_path, capsys):
    assert main(["train", "gpt", "--text", str(tmp_path / "nope.txt"), "--out", str(tmp_path / "run"), *TINY]) == 2
    assert f"text: no file at {tmp_path / 'nope.txt'}" in one_line_error(capsys)
    assert not (tmp_path / "run").exists()


def test_train_unknown_model(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "lstm", "--out", "run"]) == 2
    assert "train: expected a model among gpt, seq2seq; got 'lstm'" in one_line_error(capsys)
    assert main(["train"]) == 2
    assert "train: expected a model among gpt, seq2seq; got None" in one_line_error(capsys)
    assert list(tmp_path.iterdir()) == []


def test_sample_prompt_outside_the_vocabulary(run_dir, capsys):
    assert main(["sample", str(run_dir), "--prompt", "the KING!"]) == 2
    assert "prompt: characters outside the model's vocabulary: '!GIKN'" in one_line_error(capsys)
    assert main(["sample", str(run_dir), "--prompt", ""]) == 2
    assert "prompt: expected at least one character" in one_line_error(capsys)


@pytest.mark.parametrize("verb", ["sample", "resume"])
def test_corrupt_checkpoint(run_dir, tmp_path, capsys, verb):
    bad = tmp_path / "run"
    bad.mkdir()
    raw = (run_dir / "ckpt.safetensors").read_bytes()
    (bad / "ckpt.safetensors").write_bytes(raw[: len(raw) // 2])

    assert main([verb, str(bad)]) == 2

    assert "is not a readable safetensors file" in one_line_error(capsys)


@pytest.mark.parametrize("verb", ["sample", "resume"])
def test_foreign_safetensors_file(tmp_path, capsys, verb):
    folder = tmp_path / "run"
    folder.mkdir()
    save_file({"weight": torch.zeros(4, 4)}, str(folder / "ckpt.safetensors"), metadata={"format": "pt"})

    assert main([verb, str(folder)]) == 2

    assert "is a safetensors file but not an attnlab checkpoint" in one_line_error(capsys)


def test_resume_or_sample_without_a_checkpoint(tmp_path, capsys):
    assert main(["resume", str(tmp_path)]) == 2
    assert f"checkpoint: no file at {tmp_path / 'ckpt.safetensors'}" in one_line_error(capsys)
    assert main(["sample", str(tmp_path / "missing.safetensors")]) == 2
    assert "checkpoint: no file at" in one_line_error(capsys)


def test_train_with_bpe_then_sample_and_resume(tmp_path, capsys):
    """Byte-level BPE: trained on the training split, saved in the checkpoint, any prompt encodes."""
    from attnlab.cli import main
    from attnlab.train import read_checkpoint

    text = tmp_path / "t.txt"
    text.write_text("the cat sat on the mat. " * 300, encoding="utf-8")
    out = tmp_path / "bpe"
    args = ["train", "gpt", "--text", str(text), "--out", str(out), "--tokenizer", "bpe", "--bpe-vocab-size", "300"]
    small = ["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "8", "--batch-size", "4"]
    its = [
        "--train.max-iters",
        "4",
        "--train.eval-interval",
        "2",
        "--train.eval-iters",
        "1",
        "--train.ckpt-interval",
        "2",
    ]
    assert main(args + small + its) == 0
    state = read_checkpoint(out / "ckpt.safetensors")[0]["state"]
    assert state["tokenizer"]["kind"] == "bpe"
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(state["tokenizer"]["tokenizer"])
    assert 256 < tok.get_vocab_size() <= 300
    assert tok.decode(tok.encode("the cat sat").ids) == "the cat sat"  # lossless round trip
    capsys.readouterr()
    assert main(["sample", str(out), "--prompt", "the ☃", "--max-new-tokens", "5"]) == 0  # any character encodes
    assert capsys.readouterr().out.startswith("the ☃")
    assert main(["resume", str(out)]) == 0  # nothing left to train; the tokenizer is rebuilt from the checkpoint


def test_best_checkpoint_holds_the_lowest_validation_loss_and_samples(run_dir, capsys):
    """best.safetensors: the weights of the evaluation with the lowest val loss (nanoGPT keeps those), written with
    the same JSON state as ckpt.safetensors, so `sample` (and `viz`) read it like the last checkpoint."""
    results = json.loads((run_dir / "results.json").read_text())
    best_eval = min(results["history"], key=lambda h: h["val"])
    meta, tensors = read_checkpoint(run_dir / "best.safetensors")
    assert meta["state"]["best"]["iter"] == best_eval["iter"]
    assert meta["state"]["best"]["val"] == pytest.approx(best_eval["val"]) == results["best_val"]
    assert meta["state"]["kind"] == "gpt" and "param_groups" not in meta  # weights only: not for resuming
    assert not any(k.startswith("optim.") for k in tensors)
    argv = [
        "sample",
        str(run_dir / "best.safetensors"),
        "--prompt",
        "my",
        "--max-new-tokens",
        "10",
        "--temperature",
        "0",
    ]
    assert main(argv) == 0
    assert capsys.readouterr().out.startswith("my")


def test_best_checkpoint_follows_the_validation_loss(tmp_path, monkeypatch):
    """A validation loss that rises after its minimum leaves best.safetensors at the minimum; one that falls again
    replaces it (the trainer's evaluation is replaced by a scripted sequence)."""
    from attnlab.train import loop

    vals = iter([3.0, 2.0, 2.5, 1.5])
    monkeypatch.setattr(loop.Trainer, "evaluate", lambda self: {"train": 0.0, "val": next(vals)})
    text = write_text(tmp_path / "verse.txt")
    seen = []
    original = loop.Trainer.save_best

    def spy(self, losses):
        seen.append((self.iter, losses["val"]))
        original(self, losses)

    monkeypatch.setattr(loop.Trainer, "save_best", spy)
    argv = ["train", "gpt", "--text", str(text), "--out", str(tmp_path / "run"), *TINY]
    argv[argv.index("--train.max-iters") + 1], argv[argv.index("--train.eval-interval") + 1] = "8", "2"
    assert main(argv) == 0
    assert seen == [(2, 3.0), (4, 2.0), (8, 1.5)]
    assert read_checkpoint(tmp_path / "run" / "best.safetensors")[0]["state"]["best"] == {
        "iter": 8,
        "train": 0.0,
        "val": 1.5,
    }
