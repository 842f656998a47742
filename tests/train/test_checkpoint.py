"""Checkpoints: a bit-exact round trip of weights, AdamW state, RNG tensors and JSON state through one
safetensors file read without unpickling; atomic replacement; clear CheckpointErrors for files that are not
(readable) checkpoints of ours or do not fit the model."""

from __future__ import annotations

import json
import os
import pickle
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import attnlab.train.checkpoint as checkpoint_module
from attnlab.models import GPT, GPTConfig
from attnlab.train import CheckpointError, TrainConfig, load_checkpoint, make_optimizer, read_checkpoint
from attnlab.train import save_checkpoint as save

TINY = GPTConfig(vocab_size=9, block_size=8, n_layer=2, n_head=2, n_embd=16, dropout=0.0)
STATE = {"iter": 7, "history": [{"iter": 5, "val": 2.25}], "vocab": ["\n", " ", "a", "é", "😀"], "nested": {"x": None}}


pytestmark = pytest.mark.usefixtures("one_thread")


def trained(seed: int = 0, steps: int = 2, cfg: GPTConfig = TINY) -> tuple[GPT, torch.optim.Optimizer]:
    """A tiny GPT and its AdamW after a few steps (so the optimizer has state)."""
    torch.manual_seed(seed)
    model = GPT(cfg)
    opt = make_optimizer(model, TrainConfig(lr=1e-2))
    for step in range(steps):
        idx = torch.randint(cfg.vocab_size, (2, 6), generator=torch.Generator().manual_seed(step))
        opt.zero_grad()
        model(idx, idx.roll(1, 1)).loss.backward()
        opt.step()
    return model, opt


def one_more_step(model: GPT, opt: torch.optim.Optimizer) -> None:
    idx = torch.randint(TINY.vocab_size, (2, 6), generator=torch.Generator().manual_seed(100))
    opt.zero_grad()
    model(idx, idx.roll(1, 1)).loss.backward()
    opt.step()


def rng_states() -> dict[str, torch.Tensor]:
    return {"torch": torch.get_rng_state(), "gen0": torch.Generator().manual_seed(5).get_state()}


def assert_same_tensors(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name].dtype == b[name].dtype and a[name].shape == b[name].shape, name
        assert torch.equal(a[name], b[name]), name


def test_round_trip_is_bit_identical(tmp_path):
    model, opt = trained()
    rng = rng_states()
    path = tmp_path / "ckpt.safetensors"
    save(path, model, opt, STATE, rng)

    model2, opt2 = trained(seed=1, steps=1)  # other weights, other optimizer state
    state, rng2 = load_checkpoint(path, model2, opt2)

    assert state == STATE
    assert_same_tensors(model2.state_dict(), model.state_dict())
    assert_same_tensors(rng2, rng)
    osd, osd2 = opt.state_dict(), opt2.state_dict()
    assert sorted(osd2["state"]) == sorted(osd["state"]) == list(range(len(list(model.parameters()))))
    for i in osd["state"]:
        assert_same_tensors(osd2["state"][i], osd["state"][i])
    assert json.loads(json.dumps(osd2["param_groups"])) == json.loads(json.dumps(osd["param_groups"]))
    # the restored pair continues exactly as the original does
    one_more_step(model, opt)
    one_more_step(model2, opt2)
    assert_same_tensors(model2.state_dict(), model.state_dict())


def test_model_only_checkpoint(tmp_path):
    model, _ = trained()
    save(tmp_path / "c.safetensors", model, None, {"iter": 0})
    model2, opt2 = trained(seed=1)
    assert load_checkpoint(tmp_path / "c.safetensors", model2) == ({"iter": 0}, {})
    assert_same_tensors(model2.state_dict(), model.state_dict())
    with pytest.raises(CheckpointError, match=r"holds no optimizer state"):
        load_checkpoint(tmp_path / "c.safetensors", model2, opt2)


def test_the_file_is_safetensors_with_our_metadata(tmp_path):
    """Read by hand: an 8-byte little-endian header length, a JSON header naming every tensor, our JSON in
    ``__metadata__``."""
    model, opt = trained()
    path = tmp_path / "ckpt.safetensors"
    save(path, model, opt, STATE, rng_states())
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    meta = json.loads(header.pop("__metadata__")["attnlab"])
    assert meta["format"] == "attnlab-checkpoint-1" and meta["state"] == STATE
    assert {f"model.{k}" for k in model.state_dict()} <= set(header)
    assert {"rng.torch", "rng.gen0", "optim.0.exp_avg", "optim.0.exp_avg_sq"} <= set(header)
    assert max(end for t in header.values() for end in t["data_offsets"]) == len(raw) - 8 - n
    assert os.stat(path).st_mode & 0o777 == 0o644


def test_loading_unpickles_nothing(tmp_path, monkeypatch):
    model, opt = trained()
    path = tmp_path / "ckpt.safetensors"
    save(path, model, opt, STATE, rng_states())

    def refuse(*args, **kwargs):
        raise AssertionError("unpickling while loading a checkpoint")

    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    model2, opt2 = trained(seed=1)
    state, _ = load_checkpoint(path, model2, opt2)
    assert state == STATE
    assert_same_tensors(model2.state_dict(), model.state_dict())


@pytest.mark.parametrize("failure", [OSError("disk full"), KeyboardInterrupt()], ids=["OSError", "Ctrl-C"])
def test_a_failed_write_leaves_the_previous_checkpoint(tmp_path, monkeypatch, failure):
    old_model, _ = trained(seed=0)
    path = tmp_path / "ckpt.safetensors"
    save(path, old_model, None, {"iter": 1})
    before = path.read_bytes()
    written = []

    def half_written(tensors, filename, metadata=None):
        Path(filename).write_bytes(before[: len(before) // 2])  # partial data, then the failure
        written.append(filename)
        raise failure

    monkeypatch.setattr(checkpoint_module, "save_file", half_written)
    new_model, _ = trained(seed=1)
    with pytest.raises(type(failure)):
        save(path, new_model, None, {"iter": 2})

    assert written and Path(written[0]).parent == tmp_path and written[0] != str(path)  # wrote a temp file
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.safetensors"]  # no temp file left
    model, _ = trained(seed=1)
    assert load_checkpoint(path, model)[0] == {"iter": 1}
    assert_same_tensors(model.state_dict(), old_model.state_dict())


def test_a_failed_first_write_leaves_nothing(tmp_path, monkeypatch):
    def failing(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint_module, "save_file", failing)
    model, _ = trained()
    with pytest.raises(OSError, match="disk full"):
        save(tmp_path / "run" / "ckpt.safetensors", model, None, {})
    assert list((tmp_path / "run").iterdir()) == []


def test_a_second_save_replaces_the_first(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    for it in range(3):
        model, opt = trained(seed=it)
        save(path, model, opt, {"iter": it})
    assert read_checkpoint(path)[0]["state"] == {"iter": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.safetensors"]


# --- errors ------------------------------------------------------------------------------------------------


@pytest.fixture
def ckpt(tmp_path) -> Path:
    model, opt = trained()
    path = tmp_path / "ckpt.safetensors"
    save(path, model, opt, STATE, rng_states())
    return path


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda raw: raw[: len(raw) - 100],  # truncated data
        lambda raw: raw[:40],  # truncated header
        lambda raw: raw[:5],  # shorter than the length field
        lambda raw: b"",
        lambda raw: raw[:8] + b"\xff" * 20 + raw[28:],  # garbage in the JSON header
        lambda raw: struct.pack("<Q", len(raw) * 2) + raw[8:],  # header length past the end
    ],
    ids=["truncated-data", "truncated-header", "tiny", "empty", "garbage-header", "bad-length"],
)
def test_error_corrupt_file(ckpt, corrupt):
    ckpt.write_bytes(corrupt(ckpt.read_bytes()))
    model, opt = trained()
    with pytest.raises(CheckpointError, match=r"checkpoint: .*ckpt.safetensors is not a readable safetensors file"):
        load_checkpoint(ckpt, model, opt)


def test_error_not_a_safetensors_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("To be, or not to be, that is the question.\n" * 20)
    with pytest.raises(CheckpointError, match=r"notes.txt is not a readable safetensors file"):
        read_checkpoint(path)
    with pytest.raises(CheckpointError, match=r"notes.txt is not a readable safetensors file"):
        load_checkpoint(path, trained()[0])


@pytest.mark.parametrize(
    "metadata",
    [None, {"format": "pt"}, {"attnlab": "{not json"}, {"attnlab": json.dumps({"format": "other-2"})}],
    ids=["no-metadata", "other-metadata", "bad-json", "other-format"],
)
def test_error_foreign_safetensors_file(tmp_path, metadata):
    path = tmp_path / "model.safetensors"
    save_file({"weight": torch.ones(2, 3)}, str(path), metadata=metadata)
    with pytest.raises(CheckpointError, match=r"model.safetensors is a safetensors file but not an attnlab checkpoint"):
        load_checkpoint(path, trained()[0])


def test_error_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match=r"checkpoint: no file at .*nothing.safetensors"):
        read_checkpoint(tmp_path / "nothing.safetensors")
    with pytest.raises(CheckpointError, match=r"checkpoint: no file at"):
        read_checkpoint(tmp_path)  # a folder is not a checkpoint file


@pytest.mark.parametrize(
    ("other", "named"),
    [({"n_embd": 32}, "wte.weight"), ({"vocab_size": 10}, "wte.weight"), ({"n_layer": 3}, "blocks.2")],
    ids=["wider", "bigger-vocab", "deeper"],
)
def test_error_checkpoint_does_not_fit_the_model(ckpt, other, named):
    """The message says that it does not fit, and what: the first offending parameter by name."""
    model = GPT(GPTConfig(**{**TINY.to_json(), **other}))
    with pytest.raises(CheckpointError, match=r"ckpt.safetensors does not fit this model") as info:
        load_checkpoint(ckpt, model)
    assert named in str(info.value)
    assert isinstance(info.value, ValueError)  # the CLI turns it into a one-line usage error
