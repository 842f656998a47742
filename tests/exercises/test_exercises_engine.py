"""The checking engine and the public API: independent learner-style mistakes are recognised, inputs are fresh each
run and reproducible by seed, the one-line errors (signature, not implemented, wrong shape or dtype, sys.exit,
loading a file), torch's own solution refused, the result's text, JSON and HTML, and the learner's status."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from learner_variants import VARIANTS

import attnlab.exercises as exercises
from attnlab.exercises import isolation, runner, skeleton, status
from attnlab.exercises.transformer import sdpa as sdpa_exercise

pytestmark = pytest.mark.usefixtures("one_thread")

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("name", "mistake", "fn"), VARIANTS, ids=[v[1] for v in VARIANTS])
def test_independently_written_mistakes_are_named(name, mistake, fn):
    result = exercises.check(name, fn, seed=5)
    assert not result.passed
    assert mistake in result.mistakes, result.table()


def _attention(query, key, value, attn_mask=None, is_causal=False, scale=None):
    return sdpa_exercise.scaled_dot_product_attention(query, key, value, attn_mask, is_causal, scale)


def test_inputs_are_fresh_each_run_and_a_seed_replays_them():
    seen = []

    def spy(query, key, value, attn_mask=None, is_causal=False, scale=None):
        seen.append(query.clone())
        return _attention(query, key, value, attn_mask, is_causal, scale)

    first, second = (
        exercises.check("scaled_dot_product_attention", spy),
        exercises.check("scaled_dot_product_attention", spy),
    )
    assert first.passed and second.passed and first.seed != second.seed
    n = len(seen) // 2
    assert not torch.equal(seen[0], seen[n])  # the contract's query differs between the two runs
    seen.clear()
    exercises.check("scaled_dot_product_attention", spy, seed=first.seed)
    exercises.check("scaled_dot_product_attention", spy, seed=first.seed)
    assert all(torch.equal(a, b) for a, b in zip(seen[:n], seen[n:], strict=True))


def test_public_check_returns_a_table_for_a_notebook():
    result = exercises.check("causal_mask", lambda T, S: torch.ones(T, S, dtype=torch.bool).tril())
    html = result._repr_html_()
    assert "<table>" in html and html.count("<tr>") == 1 + len(result.checks)
    assert "after a cache" in html and "FAIL" in html and "top-left alignment after a cache" in html
    assert [c.name for c in result.checks] == [c.name for c in exercises.get("causal_mask").checks]
    text = result.table().splitlines()
    assert text[0].startswith("causal_mask: 2 of 5 checks pass") and len(text) == 2 + len(result.checks)
    assert "the same mistake as above" in result.table()  # one full hint, then a reference to it
    assert repr(result) == str(result) == result.table()  # a console shows the table too


def test_result_json_round_trips_and_escapes_html():
    result = exercises.check("causal_mask", lambda T, S: torch.ones(T, S, dtype=torch.bool).triu(S - T + 1))
    back = isolation.result_from_json(result.to_json())
    assert back.to_json() == result.to_json() and back.mistakes == ["causal.inverted"]
    assert "<script>" not in result._repr_html_().replace("&lt;script&gt;", "")


@pytest.mark.parametrize(
    ("fn", "expected"),
    [
        (lambda query, key, value: None, "wrong signature"),  # optional arguments missing
        (lambda q, k, v, mask=None, is_causal=False, scale=None: q, "wrong signature"),  # attn_mask renamed
        (lambda q, k, v, attn_mask=None, is_causal=False, scale=None: q[..., :1], "expected shape (2, 3, 4, 5)"),
        (lambda q, k, v, attn_mask=None, is_causal=False, scale=None: v[..., :4, :].double(), "expected dtype"),
        (lambda q, k, v, attn_mask=None, is_causal=False, scale=None: 3.0, "expected a torch.Tensor"),
        (lambda *a, **k: sys.exit(0), "the code called sys.exit(0)"),
    ],
)
def test_one_line_errors(fn, expected):
    result = exercises.check("scaled_dot_product_attention", fn)
    assert not result.passed and result.checks == [] and expected in result.error and "\n" not in result.error


def test_an_error_in_a_later_check_names_the_line():
    def attention(query, key, value, attn_mask=None, is_causal=False, scale=None):
        if attn_mask is not None and attn_mask.dtype != torch.bool:
            raise ValueError("float masks are not done yet")
        return _attention(query, key, value, attn_mask, is_causal, scale)

    result = exercises.check("scaled_dot_product_attention", attention)
    failed = {c.name: c for c in result.checks if not c.passed}
    assert set(failed) == {"float mask", "large scores"}
    assert "raised ValueError: float masks are not done yet (test_exercises_engine.py:" in failed["float mask"].detail


def test_torchs_own_function_is_refused_and_restored():
    result = exercises.check(
        "scaled_dot_product_attention",
        lambda q, k, v, attn_mask=None, is_causal=False, scale=None: F.scaled_dot_product_attention(q, k, v),
    )
    assert not result.passed and "solves this exercise outright" in result.error
    q = torch.randn(1, 2, 3)
    torch.testing.assert_close(F.scaled_dot_product_attention(q, q, q), _attention(q, q, q))


def test_low_precision_demands_float32_inside():
    def all_half(query, key, value, attn_mask=None, is_causal=False, scale=None):
        s = query @ key.transpose(-2, -1) * (scale or 1 / math.sqrt(query.shape[-1]))
        if is_causal:
            attn_mask = torch.ones(s.shape[-2:], dtype=torch.bool).tril()
        if attn_mask is not None:
            s = s.masked_fill(~attn_mask, -math.inf) if attn_mask.dtype == torch.bool else s + attn_mask
        empty = torch.isneginf(s).all(-1, keepdim=True)
        return torch.softmax(s.masked_fill(empty, 0), -1).masked_fill(empty, 0) @ value

    result = exercises.check("scaled_dot_product_attention", all_half, seed=3)
    assert [c.name for c in result.checks if not c.passed] == ["low precision"]
    assert result.mistakes == ["sdpa.half_precision"]


def test_loading_a_file_names_file_and_line(tmp_path):
    cases = {
        "syntax.py": ("def f(:\n    pass\n", "syntax.py:1: SyntaxError"),
        "imports.py": ("import os\nimport no_such_module_here\n", "imports.py:2: ModuleNotFoundError"),
        "exits.py": ("import sys\n\nsys.exit(3)\n", "exits.py:3: the file called sys.exit(3) while being imported"),
        "other.py": ("def helper():\n    pass\n", "no function named causal_mask (it defines helper)"),
        "value.py": ("causal_mask = 3\n", "causal_mask is a int, not a function"),
    }
    for file, (source, expected) in cases.items():
        (tmp_path / file).write_text(source)
        with pytest.raises(runner.LoadError) as info:
            runner.load("causal_mask", tmp_path / file)
        assert expected in str(info.value) and "\n" not in str(info.value)


def test_skeleton_and_solution_text():
    ex = exercises.get("scaled_dot_product_attention")
    text = skeleton.skeleton(ex, "ex/sdpa.py")
    compile(text, "skeleton", "exec")
    for part in ("Task:", "Equation:", ex.equation, "Shapes:", "attnlab check scaled_dot_product_attention ex/sdpa.py"):
        assert part in text
    assert f"def {ex.signature}:\n    raise NotImplementedError" in text
    shown = skeleton.solution(ex)
    assert "attnlab/functional/sdpa.py:" in shown and "def _naive(" in shown and "def masked_softmax(" in shown
    assert shown.splitlines()[1] == f"Equation: {ex.equation}"


def test_status_follows_the_files(tmp_path):
    name = "causal_mask"
    assert status.status(name, tmp_path) == "not started"
    path = tmp_path / f"{name}.py"
    path.write_text("def causal_mask(T, S):\n    raise NotImplementedError\n")
    assert status.status(name, tmp_path) == "started"
    status.record(path, exercises.Result(name, [], "causal_mask: not implemented yet"))
    assert status.status(name, tmp_path) == "failing (does not run)"
    status.record(path, exercises.check(name, lambda T, S: torch.ones(T, S, dtype=torch.bool).tril()))
    assert status.status(name, tmp_path) == "failing (2/5 checks)"
    status.record(path, exercises.check(name, exercises.get(name).reference))
    assert status.status(name, tmp_path) == "passed"
    path.write_text(path.read_text() + "# edited\n")
    assert status.status(name, tmp_path) == "edited since last check"


def test_the_command_line_side_does_not_import_torch():
    code = (
        "import sys, attnlab.cli, attnlab.exercises, attnlab.exercises.isolation, attnlab.exercises.status; "
        "attnlab.exercises.check_name('rotary'); print('torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": ""},
        check=True,
    )
    assert out.stdout.strip() == "False"


def test_docs_list_every_exercise_check_and_mistake():
    docs = (ROOT / "docs" / "exercises.md").read_text()
    for name in exercises.names():
        ex = exercises.get(name)
        assert f"### `{name}`" in docs
        for c in ex.checks:
            assert f"| {c.name} | {c.about} |" in docs
        for m in ex.mistakes:
            assert f"| {name} | `{m.id}` | {m.title} |" in docs
