"""Exact resume: a run stopped (or killed) and resumed from its last checkpoint ends with the same train loss and
evaluation history as the uninterrupted run, in-process and through ``attnlab train`` / ``attnlab resume``
subprocesses killed with SIGKILL. Dropout is on, so the RNG states must be restored too."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from attnlab.train import CheckpointError, Trainer, read_checkpoint
from attnlab.train.gpt import GPTRunConfig, resume_gpt, train_gpt

TOL = 1e-6
WORDS = ["the", "king", "queen", "shall", "not", "love", "death", "night", "sweet", "good", "my", "lord", "thou"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def text_file(tmp_path_factory) -> Path:
    """About 12k characters of generated verse-like lines."""
    rnd = random.Random(0)
    lines = (" ".join(rnd.choice(WORDS) for _ in range(rnd.randint(4, 9))).capitalize() + "." for _ in range(350))
    path = tmp_path_factory.mktemp("text") / "verse.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def tiny_run(text: Path, out: Path, **kw) -> GPTRunConfig:
    cfg = {
        "text": str(text),
        "out": str(out),
        "batch_size": 4,
        "block_size": 16,
        "n_layer": 2,
        "n_head": 2,
        "n_embd": 32,
        "dropout": 0.1,
        "max_iters": 40,
        "warmup_iters": 5,
        "eval_interval": 10,
        "eval_iters": 3,
        "ckpt_interval": 7,
        "device": "cpu",
    }
    return GPTRunConfig.from_json({**cfg, **kw})  # the flat form: optimisation fields map into train


def assert_same_run(result: dict, reference: dict) -> None:
    """Same iteration, final train loss and evaluation history (timings aside) within 1e-6."""
    assert result["iter"] == reference["iter"] and result["done"] and reference["done"]
    assert result["last_train_loss"] == pytest.approx(reference["last_train_loss"], abs=TOL)
    assert [h["iter"] for h in result["history"]] == [h["iter"] for h in reference["history"]]
    for h, ref in zip(result["history"], reference["history"], strict=True):
        assert (h["train"], h["val"]) == pytest.approx((ref["train"], ref["val"]), abs=TOL), h["iter"]


def tmp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


@pytest.fixture(scope="module")
def uninterrupted(text_file, tmp_path_factory) -> dict:
    return train_gpt(tiny_run(text_file, tmp_path_factory.mktemp("full") / "run"), progress=False)


def test_uninterrupted_run_learns(uninterrupted):
    first, last = uninterrupted["history"][0], uninterrupted["history"][-1]
    assert [h["iter"] for h in uninterrupted["history"]] == [10, 20, 30, 40]
    assert last["val"] < first["val"] - 0.1  # the loss goes down: the comparisons below are not trivial
    assert uninterrupted["world"] == 1


@pytest.mark.parametrize("stop", [17, 21, 1])
def test_stopped_and_resumed_equals_uninterrupted(text_file, tmp_path, uninterrupted, stop):
    out = tmp_path / "run"
    partial = train_gpt(tiny_run(text_file, out), progress=False, stop_after=stop)
    assert partial["iter"] == stop and not partial["done"]
    assert read_checkpoint(out / "ckpt.safetensors")[0]["state"]["iter"] == stop  # saved where it stopped

    resumed = resume_gpt(str(out), progress=False)

    assert_same_run(resumed, uninterrupted)
    assert json.loads((out / "results.json").read_text())["last_train_loss"] == resumed["last_train_loss"]
    assert tmp_files(out) == []


def test_crashed_and_resumed_equals_uninterrupted(text_file, tmp_path, uninterrupted, monkeypatch):
    """A crash at iteration 19 loses the work since the checkpoint at 14; resume redoes 15-19 identically."""
    out = tmp_path / "run"
    step = Trainer.step

    def crash_at_19(self, x, y):
        if self.iter == 19:
            raise RuntimeError("crash")
        return step(self, x, y)

    with monkeypatch.context() as m:
        m.setattr(Trainer, "step", crash_at_19)
        with pytest.raises(RuntimeError, match="crash"):
            train_gpt(tiny_run(text_file, out), progress=False)
    state = read_checkpoint(out / "ckpt.safetensors")[0]["state"]
    assert state["iter"] == 14 and [h["iter"] for h in state["history"]] == [10]
    assert not (out / "results.json").exists()

    assert_same_run(resume_gpt(str(out), progress=False), uninterrupted)


def test_resume_without_a_checkpoint_is_an_error(tmp_path):
    with pytest.raises(CheckpointError, match=r"checkpoint: no file at"):
        resume_gpt(str(tmp_path), progress=False)


def test_resume_a_finished_run_changes_nothing(text_file, tmp_path, uninterrupted):
    out = tmp_path / "run"
    first = train_gpt(tiny_run(text_file, out, max_iters=10, eval_interval=5), progress=False)
    before = (out / "ckpt.safetensors").read_bytes()
    again = resume_gpt(str(out), progress=False)  # nothing left to train
    assert again["iter"] == 10 and again["done"] and again["history"] == first["history"]
    assert (out / "ckpt.safetensors").read_bytes() == before
    assert json.loads((out / "results.json").read_text())["last_train_loss"] == first["last_train_loss"]


# --- the real thing: subprocesses and SIGKILL --------------------------------------------------------------

CLI_CONFIG = [
    "--batch-size", "4", "--block-size", "16", "--n-layer", "2", "--n-head", "2", "--n-embd", "32",
    "--dropout", "0.1", "--train.max-iters", "240", "--train.warmup-iters", "5", "--train.eval-interval", "40",
    "--train.eval-iters", "3", "--train.ckpt-interval", "10", "--train.device", "cpu",
]  # fmt: skip
KILL_AT = 30  # kill once a checkpoint at iteration >= 30 exists (of 240)


def attnlab(*args: str, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "attnlab", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen, timeout: float = 240) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return out


def checkpoint_iter(path: Path) -> int:
    try:
        return read_checkpoint(path)[0]["state"]["iter"]
    except CheckpointError:
        return -1  # not written yet


def test_killed_with_sigkill_and_resumed_equals_uninterrupted(text_file, tmp_path):
    full, killed = tmp_path / "full", tmp_path / "killed"
    reference = attnlab("train", "gpt", "--text", str(text_file), "--out", str(full), *CLI_CONFIG, cwd=tmp_path)
    victim = attnlab("train", "gpt", "--text", str(text_file), "--out", str(killed), *CLI_CONFIG, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 180
        while checkpoint_iter(killed / "ckpt.safetensors") < KILL_AT:
            assert victim.poll() is None, f"the run ended before it could be killed: {victim.communicate()}"
            assert time.monotonic() < deadline, "no checkpoint appeared in time"
            time.sleep(0.005)
        os.kill(victim.pid, signal.SIGKILL)
        victim.communicate(timeout=60)
    finally:
        if victim.poll() is None:
            victim.kill()
    assert victim.returncode == -signal.SIGKILL
    at_kill = checkpoint_iter(killed / "ckpt.safetensors")
    assert KILL_AT <= at_kill < 240
    assert not (killed / "results.json").exists()  # written only at the end

    printed = finish(attnlab("resume", str(killed), cwd=tmp_path))
    finish(reference)

    assert printed.startswith("iter 240: train loss ")
    result = json.loads((killed / "results.json").read_text())
    expected = json.loads((full / "results.json").read_text())
    assert_same_run(result, expected)
    assert checkpoint_iter(killed / "ckpt.safetensors") == 240
    assert tmp_files(killed) == [] and tmp_files(full) == []
    assert json.loads((killed / "config.json").read_text()) == {
        **json.loads((full / "config.json").read_text()),
        "out": str(killed),
    }
