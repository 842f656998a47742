"""The command line: exit statuses, one-line errors, and `exp` options generated from a config's fields."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest
import torch

import attnlab
from attnlab import cli, experiments
from attnlab.cli import main
from attnlab.experiments.base import ExperimentConfig, ExperimentSpec
from attnlab.train.loop import TrainConfig
from cli_helpers import one_line_error


@dataclass(frozen=True)
class FieldsConfig(ExperimentConfig):
    hidden_size: int = 128
    lr: float = 1e-3
    use_bias: bool = True
    distances: tuple[int, ...] = (5, 10, 20, 50)
    steps: int = 1000

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {"steps": 100},
        "full": {},
        "tiny": {"steps": 3, "hidden_size": 8},
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.hidden_size < 1:
            raise ValueError(f"hidden_size: expected a positive int, got {self.hidden_size}")


seen_configs: list[FieldsConfig] = []


def _run(cfg: FieldsConfig) -> dict[str, Any]:
    seen_configs.append(cfg)
    if getattr(cfg, "lr", None) == 99.0:  # a way for a test to press Ctrl-C in the middle of a run
        raise KeyboardInterrupt
    return {"held": True, "metrics": {"accuracy": 0.875}, "setup": "s", "summary": "s", "data": {}}


@pytest.fixture
def fake(monkeypatch):
    """Register one experiment, ``fake``, whose config has an int, a float, a bool and a tuple field."""
    spec = ExperimentSpec(
        name="fake", claim="Fakes hold.", source="nowhere", config_cls=FieldsConfig, run=_run, plot=lambda r: {}
    )
    module = types.ModuleType("attnlab.experiments._fake_cli")
    module.SPEC = spec
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setattr(experiments, "_MODULES", {"fake": "_fake_cli"})
    seen_configs.clear()
    return spec


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["exp", "nope"], "'nope'"),
        (["report", "--only", "fake", "nope", "--out", "IGNORED"], "nope"),
        (["exp", "fake", "--hidden-size", "abc"], "--hidden-size: expected a"),
        (["exp", "fake", "--use-bias", "maybe"], "--use-bias"),
        (["exp", "fake", "--distances", "5,x"], "--distances"),
        (["exp", "fake", "--hidden-size", "-3"], "hidden_size: expected a positive int"),
        (["exp", "fake", "--profile", "huge"], "huge"),
        (["exp", "fake", "--no-such-field", "1"], "--no-such-field"),
        (["frobnicate"], "frobnicate"),
        (["report", "--profile", "tiny"], "tiny"),
        (["report", "--jobs", "0"], "--jobs: expected a whole number >= 1 or auto, got '0'"),
        (["report", "--jobs", "many"], "--jobs: expected a whole number >= 1 or auto, got 'many'"),
        ([], "a command is required"),
    ],
)
def test_bad_input_is_one_line_and_status_2(argv, expected, fake, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    assert main(argv) == 2

    assert expected in one_line_error(capsys)
    assert seen_configs == []  # nothing ran
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_version_as_a_module():
    proc = subprocess.run(
        [sys.executable, "-m", "attnlab", "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"attnlab {attnlab.__version__}"


def test_exp_options_come_from_config_fields(fake, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["exp", "fake", "--profile", "tiny", "--lr", "0.5", "--use-bias", "false", "--distances", "5,10,20"]

    assert main([*argv, "--out", str(out)]) == 0

    (cfg,) = seen_configs
    assert cfg == FieldsConfig(hidden_size=8, lr=0.5, use_bias=False, distances=(5, 10, 20), steps=3)
    saved = json.loads((out / "config.json").read_text())
    assert saved["distances"] == [5, 10, 20] and saved["use_bias"] is False and saved["steps"] == 3
    printed = capsys.readouterr().out
    assert "fake: held" in printed and "accuracy" in printed and str(out / "results.json") in printed


def test_exp_defaults_to_quick_profile_and_runs_exp_folder(fake, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    assert main(["exp", "fake", "--hidden-size", "64"]) == 0

    assert seen_configs == [FieldsConfig(hidden_size=64, steps=100)]
    assert json.loads((tmp_path / "runs/exp/fake/results.json").read_text())["metrics"] == {"accuracy": 0.875}


TRAIN = TrainConfig(max_iters=100, lr=1e-2)


@dataclass(frozen=True)
class NestedConfig(ExperimentConfig):
    width: int = 8
    train: TrainConfig = TRAIN

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {"quick": {"train.max_iters": 10}, "full": {}}
    RENAMED: ClassVar[dict[str, str]] = {"train_steps": "train.max_iters"}


@pytest.fixture
def nested(monkeypatch):
    """Register ``nested``, an experiment whose config holds a TrainConfig as ``train``."""
    spec = ExperimentSpec(
        name="nested", claim="Nests hold.", source="nowhere", config_cls=NestedConfig, run=_run, plot=lambda r: {}
    )
    module = types.ModuleType("attnlab.experiments._fake_nested")
    module.SPEC = spec
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setattr(experiments, "_MODULES", {"nested": "_fake_nested"})
    seen_configs.clear()
    return spec


def test_exp_options_of_a_nested_config_are_dotted(nested, tmp_path, capsys):
    assert main(["exp", "nested", "--train.lr", "0.5", "--width", "4", "--out", str(tmp_path)]) == 0
    (cfg,) = seen_configs
    assert cfg == NestedConfig(width=4, train=TrainConfig(max_iters=10, lr=0.5))  # the quick profile's 10 too
    assert json.loads((tmp_path / "config.json").read_text())["train"]["lr"] == 0.5
    assert main(["exp", "nested", "--help"]) == 0
    usage = capsys.readouterr().out
    assert "--train.max-iters" in usage and "quick: 10" in usage
    assert "--train.seed" not in usage and "--train.device" not in usage  # the experiment's seed and device


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["--lr", "0.5"], "--lr is now --train.lr"), (["--train-steps", "5"], "--train-steps is now --train.max-iters"),
     (["--train.max-iters", "0"], "max_iters: expected an integer >= 1, got 0"),
     (["--train.lr", "fast"], "--train.lr: expected a number, got 'fast'")],
)  # fmt: skip
def test_exp_old_flat_flags_and_bad_nested_values_are_one_line(nested, capsys, tmp_path, argv, message):
    assert main(["exp", "nested", *argv, "--out", str(tmp_path / "out")]) == 2
    assert message in one_line_error(capsys)
    assert seen_configs == [] and not (tmp_path / "out").exists()


@pytest.mark.parametrize("device", ["tpu", "cuda:7"])
def test_report_with_a_device_this_machine_lacks_is_one_line(fake, capsys, tmp_path, device):
    if device == "cuda:7" and torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    assert main(["report", "--device", device, "--out", str(tmp_path / "report")]) == 2
    err = one_line_error(capsys)
    assert device in err and ("available: cpu" in err or "expected 'cpu'" in err)
    assert seen_configs == [] and not (tmp_path / "report").exists()


def test_report_jobs_auto_is_up_to_4_cpu_cores_and_1_on_a_gpu(monkeypatch):
    from attnlab import cli

    monkeypatch.setattr(cli.os, "sched_getaffinity", lambda pid: set(range(2)), raising=False)
    assert cli._report_jobs("auto", "cpu") == 2 and cli._report_jobs("3", "cpu") == 3
    monkeypatch.setattr(cli.os, "sched_getaffinity", lambda pid: set(range(64)), raising=False)
    assert cli._report_jobs("auto", "cpu") == 4
    monkeypatch.setattr("attnlab._checks.resolve_device", lambda device: "cuda:0")
    assert cli._report_jobs("auto", "cuda") == 1 and cli._report_jobs("2", "cuda") == 2


def test_report_passes_the_device_to_every_experiment(fake, tmp_path):
    assert main(["report", "--device", "cpu", "--out", str(tmp_path)]) == 0
    assert [c.device for c in seen_configs] == ["cpu"]
    assert json.loads((tmp_path / "report.json").read_text())["device"].startswith("cpu")


def test_exp_help_lists_generated_options(fake, capsys):
    assert main(["exp", "fake", "--help"]) == 0
    usage = capsys.readouterr().out
    for option in ("--hidden-size", "--lr", "--use-bias", "--distances", "--seed", "--profile"):
        assert option in usage
    assert "tiny: 8" in usage  # the per-profile value of hidden_size


def test_exp_list_shows_names_and_claims(fake, capsys):
    assert main(["exp", "--list"]) == 0
    assert capsys.readouterr().out.split("\n")[:2] == ["fake", "    Fakes hold."]


def test_interrupt_exits_130_with_one_line(fake, tmp_path, capsys):
    assert main(["exp", "fake", "--lr", "99", "--out", str(tmp_path)]) == 130
    assert "interrupted" in one_line_error(capsys)


def test_bench_prints_tables_and_writes_json(monkeypatch, tmp_path, capsys):
    calls = []
    bench = types.ModuleType("attnlab.bench")
    bench.names = lambda: ["sdpa", "lstm"]
    bench.CPU_ONLY = set()
    bench.run = lambda name, *, quick=False, device: (
        calls.append((name, quick, device)) or {"name": name, "ratio": 1.25}
    )
    bench.to_markdown = lambda name, result: f"| {name} | {result['ratio']} |"
    monkeypatch.setitem(sys.modules, "attnlab.bench", bench)

    assert main(["bench", "lstm", "--quick", "--device", "cpu", "--out", str(tmp_path)]) == 0

    assert calls == [("lstm", True, "cpu")]
    assert "| lstm | 1.25 |" in capsys.readouterr().out
    assert json.loads((tmp_path / "lstm.json").read_text()) == {"name": "lstm", "ratio": 1.25}
    assert not (tmp_path / "sdpa.json").exists()

    assert main(["bench", "nope", "--out", str(tmp_path)]) == 2
    assert "nope" in one_line_error(capsys)
    assert cli._bench_registry() is bench


def test_bench_missing_reference_is_one_line_when_named_and_skipped_otherwise(monkeypatch, tmp_path, capsys):
    def run(name, *, quick=False, device="cpu"):
        if name == "encoder":
            raise ImportError("bench encoder: the reference is transformers' BertModel; pip install transformers")
        return {"name": name}

    bench = types.ModuleType("attnlab.bench")
    bench.names = lambda: ["rnn", "encoder"]
    bench.CPU_ONLY = set()
    bench.run = run
    bench.to_markdown = lambda name, result: f"| {name} |"
    monkeypatch.setitem(sys.modules, "attnlab.bench", bench)
    assert main(["bench", "encoder", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install transformers" in err
    assert main(["bench", "--out", str(tmp_path)]) == 0  # the default set goes on without it
    captured = capsys.readouterr()
    assert "| rnn |" in captured.out and "skipped encoder" in captured.err
    assert (tmp_path / "rnn.json").exists() and not (tmp_path / "encoder.json").exists()


@pytest.mark.parametrize("device", ["cuda:7", "tpu"])
def test_bench_refuses_a_missing_or_misspelled_device_in_one_line(device, tmp_path, capsys):
    """``--device cuda:7`` with fewer GPUs (or none) names the device and what this machine has; exit 2."""
    assert main(["bench", "gpt", "--device", device, "--out", str(tmp_path / "b")]) == 2
    err = one_line_error(capsys)
    assert device in err and ("available: cpu" in err or "expected 'cpu', 'cuda', 'cuda:N' or 'auto'" in err)
    assert not (tmp_path / "b" / "gpt.json").exists()


def test_bench_gemm_is_cpu_only():
    from attnlab import bench

    assert "gemm" in bench.CPU_ONLY
