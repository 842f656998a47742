"""Every experiment's profiles build valid configs; a GPU profile applies only where the device is a GPU; where a
result says it was measured."""

import pytest
import torch

from attnlab.experiments import base, get, names


@pytest.mark.parametrize("name", names())
def test_every_profile_builds_a_valid_config(name):
    cls = get(name).config_cls
    assert {"quick", "full", "tiny"} <= set(cls.PROFILES)
    for profile in cls.PROFILES:
        cfg = cls.for_profile(profile)
        assert cls.from_json(cfg.to_json()) == cfg  # the saved config reads back as the same config
    assert set(cls.GPU_PROFILES) <= set(cls.PROFILES)
    assert cls.PROFILES["full"] == {} and cls.for_profile("full", device="cpu") == cls()  # full: the defaults
    assert base.ExperimentConfig.RENAMED.items() <= cls.RENAMED.items()  # the old names of the training steps


@pytest.mark.parametrize("name", ["complexity", "parallelism"])
def test_gpu_profiles_apply_on_a_gpu_only(name, monkeypatch):
    cls = get(name).config_cls
    on_cpu = cls.for_profile("quick", device="cpu")
    monkeypatch.setattr(base, "resolve_device", lambda device: "cuda" if device != "cpu" else "cpu")
    on_gpu = cls.for_profile("quick", device="cuda")
    overrides = cls.GPU_PROFILES["quick"]
    assert all(getattr(on_gpu, k) == v for k, v in overrides.items())
    assert any(getattr(on_cpu, k) != v for k, v in overrides.items())
    assert cls.for_profile("quick", device="cuda", lengths=(64, 128)).lengths == (64, 128)  # an option still wins


def test_old_training_flags_are_renamed_only_where_the_experiment_trains(capsys):
    from attnlab.cli import main

    assert main(["exp", "complexity", "--train-steps", "3"]) == 2  # no training: an unknown option
    assert "unrecognized arguments: --train-steps" in capsys.readouterr().err
    assert main(["exp", "depth", "--warmup-steps", "3"]) == 2
    assert capsys.readouterr().err == "attnlab: error: --warmup-steps is now --train.warmup-iters\n"


def test_device_name_says_where(monkeypatch):
    assert base.device_name("cpu") == f"cpu ({torch.get_num_threads()} threads)"
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device: "NVIDIA H200")
    assert base.device_name("cuda:0") == "cuda:0 (NVIDIA H200)"
