"""``attnlab exercises`` and ``attnlab check`` as a new user meets them: start a skeleton, check it (fails), paste a
body (passes), the status; bad input and a learner's file that hangs, exits or returns the wrong thing each give one
line and a non-zero exit. Each `check` runs the file in a child process (a few seconds: it imports torch)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from attnlab.cli import main
from cli_helpers import one_line_error

NAME = "scaled_dot_product_attention"

BODY = """    s = 1 / math.sqrt(query.shape[-1]) if scale is None else scale
    q, k, v = query.float(), key.float(), value.float()
    scores = q @ k.transpose(-2, -1) * s
    if is_causal:
        attn_mask = torch.ones(scores.shape[-2:], dtype=torch.bool).tril()
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attn_mask, float("-inf"))
        else:
            scores = scores + attn_mask.float()
    empty = torch.isneginf(scores).all(-1, keepdim=True)
    weights = torch.softmax(scores.masked_fill(empty, 0.0), -1).masked_fill(empty, 0.0)
    return (weights @ v).to(query.dtype)
"""


def test_a_new_users_round_trip(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["exercises", "start", NAME, "--dir", "ex"]) == 0
    path = Path("ex") / f"{NAME}.py"
    assert f"check it with: attnlab check {NAME} {path}" in capsys.readouterr().out
    skeleton = path.read_text()
    assert main(["exercises", "start", NAME, "--dir", "ex"]) == 2  # never overwrites
    assert "exists; pass --force" in one_line_error(capsys) and path.read_text() == skeleton

    assert main(["check", NAME, str(path)]) == 1
    assert "not implemented yet" in one_line_error(capsys)

    path.write_text(skeleton.replace(f'    raise NotImplementedError("{NAME}: not implemented yet")\n', BODY))
    assert main(["check", NAME, str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{NAME}: all checks pass") and out.count(" pass") >= 15

    assert main(["exercises", "--dir", "ex"]) == 0
    listing = capsys.readouterr().out
    assert [line.split()[-1] for line in listing.splitlines() if line.startswith(f"  {NAME} ")] == ["passed"]
    assert "  causal_mask " in listing and listing.count("not started") == 20
    path.write_text(path.read_text() + "\n# a comment\n")
    main(["exercises", "--dir", "ex"])
    assert "edited since last check" in capsys.readouterr().out
    assert main(["exercises", "start", NAME, "--dir", "ex", "--force"]) == 0 and path.read_text() == skeleton


def test_solution_is_shown_on_request(capsys):
    assert main(["exercises", "solution", "rnn_cell"]) == 0
    out = capsys.readouterr().out
    assert "attnlab/nn/cells.py:" in out and "def step(" in out and "tanh(W_ih x + b_ih + W_hh h + b_hh)" in out


@pytest.mark.parametrize(
    "argv",
    [["check", "attention"], ["exercises", "start", "attention"], ["exercises", "solution", "attention"]],
)
def test_an_unknown_name_lists_the_known_ones(argv, capsys):
    assert main(argv) == 2
    err = one_line_error(capsys)
    assert "expected one of rnn_cell, lstm_cell" in err and "scaled_dot_product_attention" in err


def test_a_missing_file(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["check", "rotary"]) == 2
    assert "no file attnlab-exercises/rotary.py (write one with: attnlab exercises start rotary)" in one_line_error(
        capsys
    )
    assert main(["check", "rotary", "elsewhere.py"]) == 2
    one_line_error(capsys)


CASES = {
    "loop": ("def causal_mask(T, S):\n    while True:\n        pass\n", "did not finish within 2 s"),
    "exit": ("import sys\n\n\ndef causal_mask(T, S):\n    sys.exit(0)\n", "the code called sys.exit(0) (exit.py:5)"),
    "signature": ("def causal_mask(T):\n    return T\n", "wrong signature causal_mask(T); expected causal_mask(T, S)"),
    "shape": (
        "import torch\n\n\ndef causal_mask(T, S):\n    return torch.ones(S, T, dtype=torch.bool)\n",
        "causal_mask(3, 5): expected shape (3, 5), got (5, 3)",
    ),
    "syntax": ("def causal_mask(T, S)\n    return 1\n", "syntax.py:1: SyntaxError"),
}


@pytest.mark.parametrize("case", CASES)
def test_a_learners_file_that_breaks_gives_one_line(case, tmp_path, capsys):
    source, expected = CASES[case]
    path = tmp_path / f"{case}.py"
    path.write_text(source)
    timeout = "2" if case == "loop" else "60"  # only the loop needs the limit; the others end on their own
    assert main(["check", "causal_mask", str(path), "--timeout", timeout]) == 1
    assert expected in one_line_error(capsys)
    assert path.read_text() == source  # the learner's file is only read


def test_json_for_an_autograder(tmp_path, capsys):
    path = tmp_path / "mask.py"
    path.write_text("import torch\n\n\ndef causal_mask(T, S):\n    return torch.ones(T, S, dtype=torch.bool).tril()\n")
    assert main(["check", "causal_mask", str(path), "--json", "--seed", "7"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["exercise"] == "causal_mask" and data["passed"] is False and data["seed"] == 7
    assert data["mistakes"] == ["causal.top_left"] and data["file"] == str(path)
    assert [(c["name"], c["passed"]) for c in data["checks"]] == [
        ("shape and dtype", True),
        ("T == S", True),
        ("after a cache", False),
        ("one new token", False),
        ("cached block = full forward", False),
    ]
    failed = [c for c in data["checks"] if not c["passed"]]
    assert all(c["mistake"] == "causal.top_left" and "bottom-right" in c["hint"] for c in failed)
