"""The checking engine: each check runs a function on fresh random inputs against an oracle; when the function
fails, the diagnosis reruns the exercise's known mistakes on the *same* inputs and names the one that behaves alike.

A check is a small function of a :class:`Trial`. The trial makes the inputs from its seed, calls the function
under test on fresh copies of them (:meth:`Trial.call`), backpropagates through it (:meth:`Trial.grad`) and
compares (:meth:`Trial.close`); it records everything the function returned. Rerunning the check with a
mistake's function and the same seed reproduces the inputs exactly, so "does the learner's output match that
mistake's output?" is a plain comparison of the two recordings (or of the two errors raised).
"""

from __future__ import annotations

import inspect
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from attnlab.exercises.result import CheckResult, Result
from attnlab.exercises.trial import Fail, Fatal, Raised, Trial


@dataclass(frozen=True)
class Mistake:
    """A known wrong implementation, kept as code: ``fn`` has the exercise's signature.

    ``error`` (a regular expression): the mistake shows as an exception whose message matches it (e.g. an
    in-place op that autograd refuses); otherwise it is recognised by its outputs.
    """

    id: str
    title: str
    hint: str
    fn: Callable[..., Any]
    error: str | None = None


@dataclass(frozen=True)
class Check:
    """One check: ``run(trial)`` raises :class:`Fail` (or lets the function's own error out) when it fails.

    ``about`` says what is checked (the docs list it); ``hint`` explains a failure no known mistake matches.
    """

    name: str
    about: str
    hint: str
    run: Callable[[Trial], None]


@dataclass(frozen=True)
class Exercise:
    """One exercise: the contract, the reference solution, the checks and the catalogue of known mistakes.

    ``reference`` has exactly the exercise's signature and passes every check. ``solution`` lists what
    ``attnlab exercises solution`` shows: the library's own functions (by file and line) or, where the library
    has no standalone one, the package's. ``checks[0]`` is the contract (one basic call: type, shape, dtype);
    when it fails, nothing else runs. ``forbidden``: dotted names of torch functions that would solve the
    exercise outright; calling them during a check raises.
    """

    name: str
    section: str
    title: str
    task: str
    equation: str
    shapes: str
    returns: str
    reference: Callable[..., Any]
    solution: tuple[Callable[..., Any], ...]
    checks: tuple[Check, ...]
    mistakes: tuple[Mistake, ...]
    forbidden: tuple[str, ...] = ()
    imports: tuple[str, ...] = ("import math", "", "import torch", "import torch.nn.functional as F")

    @property
    def signature(self) -> str:
        """``name(a, b, c=None)``: the reference's parameters, defaults shown."""
        params = inspect.signature(self.reference).parameters.values()
        shown = [p.name if p.default is inspect.Parameter.empty else f"{p.name}={p.default!r}" for p in params]
        return f"{self.name}({', '.join(shown)})"


# ---------------------------------------------------------------------------------------- running the checks


@dataclass
class _Observation:
    """What one trial saw: whether it passed, the verdict, what the function returned or the error it raised."""

    passed: bool
    message: str = ""
    seen: list[Tensor] = field(default_factory=list)
    error: str | None = None  # "Type: message", first line, memory addresses blanked (for matching)


def observe(check: Check, fn: Callable[..., Any], seed: int, forbidden: Sequence[str] = ()) -> _Observation:
    trial = Trial(fn, seed, forbidden)
    try:
        check.run(trial)
    except Fail as exc:
        return _Observation(False, str(exc), trial.seen)
    except Raised as exc:
        message = f"raised {type(exc.exc).__name__}: {_one_line(str(exc.exc))}{exc.where}"
        return _Observation(False, message, trial.seen, _normalise(f"{type(exc.exc).__name__}: {exc.exc}"))
    return _Observation(True, "", trial.seen)


def run_check(ex: Exercise, check: Check, fn: Callable[..., Any], seed: int) -> CheckResult:
    """Run one check; on failure, name the known mistake whose behaviour on the same inputs is the learner's."""
    seen = observe(check, fn, seed, ex.forbidden)
    if seen.passed:
        return CheckResult(check.name, True)
    mistake = diagnose(ex, check, seen, seed)
    if mistake is not None:
        return CheckResult(check.name, False, f"{mistake.title}: {mistake.hint}", mistake.id, seen.message)
    return CheckResult(check.name, False, check.hint, None, seen.message)


def diagnose(ex: Exercise, check: Check, seen: _Observation, seed: int) -> Mistake | None:
    """The first mistake of the catalogue that fails this check the way the learner's function did."""
    if seen.error is not None:
        for m in ex.mistakes:
            if m.error is not None and re.search(m.error, seen.error):
                return m
    for m in ex.mistakes:
        theirs = observe(check, m.fn, seed, ex.forbidden)
        if not theirs.passed and _alike(seen, theirs):
            return m
    return None


def _alike(a: _Observation, b: _Observation) -> bool:
    if a.error is not None or b.error is not None:
        return a.error == b.error
    n = min(len(a.seen), len(b.seen))
    if n == 0:
        return False
    for x, y in zip(a.seen[:n], b.seen[:n], strict=True):
        if x.shape != y.shape:
            return False
        loose = x.dtype in (torch.float16, torch.bfloat16) or y.dtype in (torch.float16, torch.bfloat16)
        rtol, atol = (2e-2, 2e-3) if loose else (1e-3, 1e-4)
        if x.dtype == torch.bool or y.dtype == torch.bool or not x.is_floating_point():
            if not torch.equal(x.long(), y.long()):
                return False
        elif not bool(torch.isclose(x.double(), y.double(), rtol=rtol, atol=atol, equal_nan=True).all()):
            return False
    return True


def _normalise(message: str) -> str:
    """The first line of an error, memory addresses blanked: two codes making the same mistake raise the same."""
    return re.sub(r"0x[0-9a-f]+", "0x", message.splitlines()[0] if message else message)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def signature_problem(ex: Exercise, fn: Callable[..., Any]) -> str | None:
    """One line when ``fn`` cannot be called the way the checks call it (required arguments by position,
    optional ones by name), else None."""
    if not callable(fn):
        return f"{ex.name}: expected a function, got {type(fn).__name__}"
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None  # a builtin: nothing to check
    params = list(inspect.signature(ex.reference).parameters.values())
    required = [p for p in params if p.default is inspect.Parameter.empty]
    optional = {p.name: None for p in params if p.default is not inspect.Parameter.empty}
    try:
        sig.bind(*[None] * len(required), **optional)
    except TypeError:
        name = getattr(fn, "__name__", ex.name)
        return f"{ex.name}: wrong signature {name}{sig}; expected {ex.signature}"
    return None


def run_checks(
    ex: Exercise,
    fn: Callable[..., Any],
    seed: int | None = None,
    on_start: Callable[[str], None] | None = None,
    on_result: Callable[[CheckResult], None] | None = None,
) -> Result:
    """Every check of ``ex`` on ``fn``. The contract (the first check) failing ends the run with one line."""
    seed = secrets.randbits(62) if seed is None else int(seed)
    problem = signature_problem(ex, fn)
    if problem is not None:
        return Result(ex.name, [], problem, seed)
    results: list[CheckResult] = []
    for i, check in enumerate(ex.checks):
        if on_start is not None:
            on_start(check.name)
        try:
            r = _contract(ex, check, fn, seed) if i == 0 else run_check(ex, check, fn, _derive(seed, i))
        except Fatal as exc:
            return Result(ex.name, results, f"{ex.name}: {exc} (during the check '{check.name}')", seed)
        if on_result is not None:
            on_result(r)
        if i == 0 and not r.passed:
            return Result(ex.name, [], f"{ex.name}: {r.text()}", seed, contract=r)
        results.append(r)
    return Result(ex.name, results, None, seed)


def _contract(ex: Exercise, check: Check, fn: Callable[..., Any], seed: int) -> CheckResult:
    trial = Trial(fn, seed, ex.forbidden)
    try:
        check.run(trial)
    except Raised as exc:
        if isinstance(exc.exc, NotImplementedError):
            return CheckResult(
                check.name, False, f"not implemented yet (the body raises NotImplementedError){exc.where}"
            )
    except Fail:
        pass
    else:
        return CheckResult(check.name, True)
    return run_check(ex, check, fn, seed)  # diagnose the failure like any other check's


def _derive(seed: int, i: int) -> int:
    return (seed * 1_000_003 + i) % 2**62
