"""attnlab.configs: nested frozen configs by dotted name (leaves, replace, JSON both ways, the flat form of older
runs), and command-line values parsed to their fields' types with errors that name the option."""

import dataclasses

import pytest

from attnlab import configs
from attnlab.train.gpt import GPTRunConfig
from attnlab.train.loop import TrainConfig
from attnlab.train.seq2seq import Seq2SeqRunConfig


@dataclasses.dataclass(frozen=True)
class Inner:
    lr: float = 1e-3
    sizes: tuple[int, ...] = (1, 2)

    def __post_init__(self) -> None:
        if self.lr <= 0:
            raise ValueError(f"lr: expected a positive number, got {self.lr}")


INNER = Inner(lr=2e-3)


@dataclasses.dataclass(frozen=True)
class Outer:
    name: str = "x"
    inner: Inner = INNER
    steps: int = 3


def test_leaves_expand_nested_configs_with_their_defaults():
    got = [(f.name, f.default) for f in configs.leaves(Outer)]
    assert got == [("name", "x"), ("inner.lr", 2e-3), ("inner.sizes", (1, 2)), ("steps", 3)]
    assert {f.name: f.annotation for f in configs.leaves(Outer)}["inner.sizes"] == tuple[int, ...]


def test_replace_by_dotted_name_validates_every_level():
    cfg = configs.replace(Outer(), **{"inner.lr": 0.5, "steps": 4})
    assert cfg == Outer(inner=Inner(lr=0.5), steps=4) and configs.get(cfg, "inner.lr") == 0.5
    with pytest.raises(ValueError, match="lr: expected a positive number"):
        configs.replace(Outer(), **{"inner.lr": -1.0})
    with pytest.raises(ValueError, match=r"unknown config field 'inner\.nope' for Outer; known: name, inner\.lr"):
        configs.replace(Outer(), **{"inner.nope": 1})
    with pytest.raises(ValueError, match=r"unknown config field 'steps\.x'"):
        configs.replace(Outer(), **{"steps.x": 1})


def test_json_round_trip_and_the_flat_form_of_older_versions():
    cfg = Outer(name="y", inner=Inner(lr=0.25, sizes=(3,)), steps=9)
    assert configs.to_json(cfg) == {"name": "y", "inner": {"lr": 0.25, "sizes": [3]}, "steps": 9}
    assert configs.from_json(Outer, configs.to_json(cfg)) == cfg
    assert configs.from_json(Outer, {"name": "y", "lr": 0.25, "sizes": [3], "steps": 9}) == cfg  # flat
    assert configs.from_json(Outer, {"lr": 0.25}) == Outer(inner=Inner(lr=0.25))  # the default nest, one field moved
    with pytest.raises(ValueError, match="Outer has no field 'epochs'"):
        configs.from_json(Outer, {"epochs": 3})


def test_run_configs_nest_train_and_read_their_flat_form():
    gpt = GPTRunConfig.from_json({"n_embd": 64, "lr": 3e-4, "max_iters": 10, "seed": 1, "device": "cpu"})
    assert gpt.train == dataclasses.replace(TrainConfig(), lr=3e-4, max_iters=10, seed=1, device="cpu")
    assert GPTRunConfig.from_json(configs.to_json(gpt)) == gpt
    s2s = Seq2SeqRunConfig.from_json({"task": "copy", "eval_iters": 3})
    assert s2s.train.eval_iters == 3 and s2s.train.lr == 2e-3  # the seq2seq defaults, one field changed
    assert Seq2SeqRunConfig().train != TrainConfig() and GPTRunConfig().train == TrainConfig()


@pytest.mark.parametrize(
    ("annotation", "text", "value"),
    [(int, "3", 3), (float, "1e-3", 1e-3), (bool, "false", False), (tuple[int, ...], "1, 2,3", (1, 2, 3)),
     (str | None, "none", None), (int | None, "7", 7)],
)  # fmt: skip
def test_parse_value(annotation, text, value):
    assert configs.parse_value("train.max_iters", annotation, text) == value


def test_parse_value_errors_name_the_option():
    with pytest.raises(ValueError, match=r"^--train\.max-iters: expected an integer, got 'x'$"):
        configs.parse_value("train.max_iters", int, "x")
    with pytest.raises(ValueError, match=r"^--use-bias: expected true or false, got 'maybe'$"):
        configs.parse_value("use_bias", bool, "maybe")
