"""One run of one check on one function (:class:`Trial`): the inputs drawn from its seed, the calls of the function
under test on fresh copies of them, autograd through it, the comparisons, and a record of everything it returned
(what the diagnosis compares). Also the verdicts a check can end with: :class:`Fail`, :class:`Raised`, :class:`Fatal`.
"""

from __future__ import annotations

import contextlib
import importlib
import traceback
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import Tensor


class Fail(Exception):
    """A check's verdict: the function ran but its result is wrong (the message says how)."""


class Raised(Exception):
    """The function under test raised ``exc``; ``where`` is its file:line in the learner's code when known."""

    def __init__(self, exc: BaseException, where: str) -> None:
        super().__init__(f"{type(exc).__name__}: {exc}")
        self.exc, self.where = exc, where


class Fatal(Exception):
    """Checking cannot go on (the code called sys.exit); ``message`` is the one line to show."""


# --------------------------------------------------------------------------------------------------- the trial


class Trial:
    """One run of one check on one function: seeded inputs, and a record of what the function returned."""

    def __init__(self, fn: Callable[..., Any], seed: int, forbidden: Sequence[str] = ()) -> None:
        self.fn, self.seed, self.forbidden = fn, seed, tuple(forbidden)
        self.gen = torch.Generator().manual_seed(seed)
        self.seen: list[Tensor] = []  # every tensor the function returned (outputs, then gradients), in order
        self.args: tuple[Any, ...] = ()
        self.kwargs: dict[str, Any] = {}

    # --- inputs (all from the trial's own generator) ---

    def randn(self, *shape: int, dtype: torch.dtype = torch.float32, scale: float = 1.0) -> Tensor:
        return (torch.randn(shape, generator=self.gen, dtype=torch.float64) * scale).to(dtype)

    def uniform(self, *shape: int, low: float = 0.0, high: float = 1.0, dtype: torch.dtype = torch.float32) -> Tensor:
        return (torch.rand(shape, generator=self.gen, dtype=torch.float64) * (high - low) + low).to(dtype)

    def randint(self, low: int, high: int, *shape: int) -> Tensor:
        return torch.randint(low, high, shape, generator=self.gen)

    def bools(self, *shape: int, p: float = 0.5) -> Tensor:
        return torch.rand(shape, generator=self.gen) < p

    def integer(self, low: int, high: int) -> int:
        """A Python int in ``[low, high]``."""
        return int(torch.randint(low, high + 1, (1,), generator=self.gen))

    @contextlib.contextmanager
    def seeded(self) -> Iterator[None]:
        """torch's global generator seeded from this trial (for initialising an oracle module), then restored."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=self.gen)))
            yield

    # --- calling the function under test ---

    def call(self, *args: Any, **kwargs: Any) -> Any:
        """The function on fresh copies of the arguments (it may modify them; the check's own stay intact);
        the copies are leaves (``self.args``/``self.kwargs``) for :meth:`grad`. Records the tensors returned."""
        self.args, self.kwargs = _fresh(args), _fresh(kwargs)
        with _forbidding(self.forbidden):
            out = self._invoke(lambda: self.fn(*self.args, **self.kwargs))
        self.seen.extend(_tensors(out))
        return out

    def grad(self, outputs: Sequence[Tensor], inputs: Sequence[Tensor], cotangents: Sequence[Tensor]) -> list[Tensor]:
        """d(sum_i <cotangent_i, output_i>)/d(inputs) through the function's autograd graph (recorded)."""
        for i, out in enumerate(outputs):
            if not out.requires_grad:
                raise Fail(
                    f"output {i} carries no gradient: it is cut off from the inputs (.detach(), .data, .item(), "
                    "numpy, or a tensor built with torch.tensor(...) from values)"
                )
        with _forbidding(self.forbidden):
            grads = self._invoke(
                lambda: torch.autograd.grad(list(outputs), list(inputs), list(cotangents), allow_unused=True)
            )
        if any(g is None for g in grads):
            missing = [i for i, g in enumerate(grads) if g is None]
            raise Fail(f"no gradient reaches input(s) {missing}: an input is not used, or used through .detach()")
        self.seen.extend(grads)
        return list(grads)

    def _invoke(self, thunk: Callable[[], Any]) -> Any:
        try:
            return thunk()
        except (Fail, Fatal):
            raise
        except SystemExit as exc:
            raise Fatal(
                f"the code called sys.exit({exc.code!r}){_at(exc, self.fn)}; a solution returns its result"
            ) from None
        except Exception as exc:
            raise Raised(exc, _at(exc, self.fn)) from exc

    # --- verdicts ---

    def tensor(self, x: Any, shape: Sequence[int], dtype: torch.dtype, what: str = "output") -> Tensor:
        """``x`` must be a tensor of this shape and dtype."""
        if not isinstance(x, Tensor):
            raise Fail(f"{what}: expected a torch.Tensor of shape {tuple(shape)}, got {type(x).__name__}")
        if tuple(x.shape) != tuple(shape):
            raise Fail(f"{what}: expected shape {tuple(shape)}, got {tuple(x.shape)}")
        if x.dtype != dtype:
            raise Fail(f"{what}: expected dtype {dtype}, got {x.dtype}")
        return x

    def parts(self, out: Any, n: int, what: str = "the result") -> tuple[Any, ...]:
        """``out`` must be a tuple (or list) of ``n`` items."""
        if not isinstance(out, (tuple, list)) or len(out) != n:
            got = f"a {type(out).__name__} of {len(out)}" if isinstance(out, (tuple, list)) else type(out).__name__
            raise Fail(f"{what}: expected a tuple of {n} items, got {got}")
        return tuple(out)

    def close(self, got: Tensor, want: Tensor, what: str, rtol: float | None = None, atol: float | None = None) -> None:
        """``got`` equals ``want`` within torch's default tolerances for ``want``'s dtype (or those given)."""
        if tuple(got.shape) != tuple(want.shape):
            raise Fail(f"{what}: expected shape {tuple(want.shape)}, got {tuple(got.shape)}")
        g, w = got.detach().double(), want.detach().double()
        if rtol is None or atol is None:
            rtol, atol = _TOLERANCES.get(want.dtype, (1.3e-6, 1e-5))
        bad = ~torch.isclose(g, w, rtol=rtol, atol=atol, equal_nan=False)
        if not bool(bad.any()):
            return
        if bool(torch.isnan(g).any()) and not bool(torch.isnan(w).any()):
            index = tuple(torch.nonzero(torch.isnan(g))[0].tolist())
            raise Fail(f"{what}: NaN at {list(index)} (expected {w[index].item():.4g})")
        err = (g - w).abs().nan_to_num(nan=float("inf"))
        index = tuple(torch.nonzero(err == err.max())[0].tolist())
        raise Fail(
            f"{what}: {int(bad.sum())} of {bad.numel()} values differ; the largest error {err[index].item():.3g} "
            f"is at {list(index)} (expected {w[index].item():.6g}, got {g[index].item():.6g})"
        )

    def expect(self, condition: bool, message: str) -> None:
        if not condition:
            raise Fail(message)


_TOLERANCES = {  # torch.testing.assert_close's defaults
    torch.float64: (1e-7, 1e-7),
    torch.float32: (1.3e-6, 1e-5),
    torch.float16: (1e-3, 1e-5),
    torch.bfloat16: (1.6e-2, 1e-5),
}


def _fresh(x: Any) -> Any:
    """Fresh leaf copies of every tensor in ``x`` (tuples, lists and dicts walked), requires_grad kept."""
    if isinstance(x, Tensor):
        return x.detach().clone().requires_grad_(x.requires_grad)
    if isinstance(x, tuple):
        return tuple(_fresh(v) for v in x)
    if isinstance(x, list):
        return [_fresh(v) for v in x]
    if isinstance(x, dict):
        return {k: _fresh(v) for k, v in x.items()}
    return x


def _tensors(x: Any) -> list[Tensor]:
    """The tensors in a returned value, in order; a list of numbers counts as one 1-D tensor, a number as 0-D."""
    if isinstance(x, Tensor):
        return [x.detach()]
    if isinstance(x, (int, float)):
        return [torch.tensor(x)]
    if isinstance(x, (tuple, list)):
        if x and all(isinstance(v, (int, float)) for v in x):
            return [torch.tensor(list(x))]
        return [t for v in x for t in _tensors(v)]
    return []


@contextlib.contextmanager
def _forbidding(names: Sequence[str]) -> Iterator[None]:
    """Replace each dotted name by a function that raises, for the duration of one call of the learner's code."""
    saved = []
    try:
        for name in names:
            module_name, attr = name.rsplit(".", 1)
            owner = importlib.import_module(module_name)
            saved.append((owner, attr, getattr(owner, attr)))
            setattr(owner, attr, _refuse(name))
        yield
    finally:
        for owner, attr, original in reversed(saved):
            setattr(owner, attr, original)


class ForbiddenCall(Exception):
    pass


def _refuse(name: str) -> Callable[..., Any]:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise ForbiddenCall(f"{name} solves this exercise outright: write it yourself")

    return refuse


def _at(exc: BaseException, fn: Callable[..., Any]) -> str:
    """`` (file.py:LINE)``: the last frame of the traceback inside the file that defines ``fn``, if any."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return ""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == code.co_filename]
    return f" ({frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno})" if frames else ""
