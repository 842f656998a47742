"""The lab's shared tools: fits, training until a check says stop, Adam at a constant rate, config checks, and the
word templates."""

import math

import pytest
import torch
from torch import nn

from attnlab.experiments import checks
from attnlab.experiments.fits import exact_line, linear_fit, per_step_factor
from attnlab.experiments.training import adam, one_thread, train
from attnlab.experiments.words import closing, fill, table


def test_fits_known_answers():
    assert per_step_factor([k * -0.25 for k in range(10)]) == pytest.approx(10**-0.25)
    assert linear_fit([0, 1, 2], [1, 3, 5]) == pytest.approx((2.0, 1.0))
    assert exact_line([1, 2, 3], [5, 7, 9]) == (2, 3, [0, 0, 0])


class Linear(nn.Module):
    """y = w x, trained on the squared error; returns an object with ``.loss`` as the Trainer expects."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, x, y):
        return type("Out", (), {"loss": ((self.w * x - y) ** 2).mean()})()


def batches(split, gen):
    x = torch.randn(16, generator=gen)
    return x, 3.0 * x


def test_train_records_every_interval_and_stops_when_the_check_says_so():
    model = Linear()
    checked = []

    def check(step):
        checked.append((step, model.w.item()))
        return abs(model.w.item() - 3.0) < 0.05

    fit = train(model, adam(0.1, 500, eval_interval=10), batches, seed=0, device="cpu", evaluate=False, check=check)
    assert fit["stopped"] and fit["iters"] == checked[-1][0] < 500 and fit["iters"] % 10 == 0
    assert [p["iter"] for p in fit["history"]] == [s for s, _ in checked] == list(range(10, fit["iters"] + 1, 10))
    assert abs(model.w.item() - 3.0) < 0.05 and not model.training
    again = train(Linear(), adam(0.1, 30, eval_interval=10), batches, seed=0, device="cpu")  # no check: all steps
    assert (
        not again["stopped"] and again["iters"] == 30 and set(again["history"][-1]) == {"iter", "loss", "train", "val"}
    )


def test_train_with_the_same_seed_is_the_same_run():
    runs = [train(Linear(), adam(0.05, 20, eval_interval=5), batches, seed=3, device="cpu", evaluate=False)
            for _ in range(2)]  # fmt: skip
    assert runs[0]["history"] == runs[1]["history"]


def test_adam_is_a_constant_rate_without_decay():
    cfg = adam(3e-3, 100, grad_clip=1.0)
    assert cfg.learning_rate(0) == cfg.learning_rate(99) == 3e-3
    assert (cfg.weight_decay, cfg.beta2, cfg.grad_clip, cfg.warmup_iters) == (0.0, 0.999, 1.0, 0)


def test_one_thread_restores_the_count():
    before = torch.get_num_threads()
    with one_thread("cpu"):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


class Cfg:
    n = 0
    p = 1.5
    f = 1.0
    xs = (3, 2)
    lag = 7


@pytest.mark.parametrize(
    ("call", "message"),
    [(lambda: checks.ints(Cfg, ("n",)), "n: expected an integer >= 1, got 0"),
     (lambda: checks.fractions(Cfg, ("f",), below_one=True), r"f: expected a number in \(0, 1\), got 1.0"),
     (lambda: checks.increasing("xs", Cfg.xs, low=1), "xs: expected at least 2 strictly increasing numbers"),
     (lambda: checks.choice("cell", "rnn", ("gru", "lstm")), "cell: expected one of gru, lstm, got 'rnn'"),
     (lambda: checks.choices("models", ("a", "a"), ("a", "b")), "models: expected at least 1 distinct names"),
     (lambda: checks.multiple("d_model", 30, 4, "heads"), "d_model: expected a multiple of heads=4, got 30")],
)  # fmt: skip
def test_checks_name_the_field(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_templates_fill_from_the_config_and_the_result():
    r = {"metrics": {"acc/rnn/d=7": 0.5, "rho=0.5": 0.25}, "data": {"params": {"lstm": 12345}}, "device_name": "cpu"}
    text = "lag {cfg.lag}: {m[acc/rnn/d=<dist>]:.2f}\n   with {d[params][lstm]:,} on {r[device_name]}"
    assert fill(text, Cfg, r, dist=7) == "lag 7: 0.50 with 12,345 on cpu"
    rows = table("a | {m[rho=0.5]:.2f}\nb | {m[missing]}\nc | {cfg.lag}\n  more\n", Cfg, r)
    assert rows == [("a", "0.25"), ("c", "7 more")]  # a row naming a missing metric is left out
    assert closing(False, {"x": True, "y": False, "z": None}) == "Not every part held: y."
    assert closing(None, {}).startswith("The claim could not be measured") and math.isfinite(1.0)
