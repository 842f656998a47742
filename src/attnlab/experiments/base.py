"""The shape every experiment takes: a frozen config, ``run(cfg) -> result``, ``plot(result) -> figures``.

An experiment module defines

- ``Config``: a frozen dataclass deriving from :class:`ExperimentConfig`, validated in ``__post_init__``,
  with a ``PROFILES`` mapping (``"quick"``, ``"full"``, and optionally ``"tiny"`` for the tests) of field
  overrides;
- ``run(cfg) -> dict``: does the measuring and returns a JSON-able result with the keys
  ``held`` (``True``/``False``/``None`` when not measurable), ``metrics`` (flat name -> number/str),
  ``setup`` (one paragraph: what was trained/measured, on what), ``summary`` (what the numbers say, in words,
  including plainly when the claim did not hold) and ``data`` (the series the figures are drawn from);
- ``plot(result) -> dict[str, Figure]``: figures drawn only from the result (re-plotting needs no re-run);
- ``SPEC = ExperimentSpec(...)``, registered in :mod:`attnlab.experiments`.

:func:`execute` runs one and writes ``config.json``, ``results.json`` and ``<figure>.svg`` into its folder.
"""

from __future__ import annotations

import dataclasses
import os
import time
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from attnlab._checks import check_device_name
from attnlab.fileio import write_json

RESULT_KEYS = ("held", "metrics", "setup", "summary", "data")


@dataclass(frozen=True)
class ExperimentConfig:
    """Fields every experiment shares. Subclasses add their own, all with defaults (the full profile)."""

    seed: int = 0
    device: str = "cpu"

    PROFILES: ClassVar[Mapping[str, Mapping[str, Any]]] = {"quick": {}, "full": {}}

    def __post_init__(self) -> None:
        check_device_name(self.device)

    @classmethod
    def for_profile(cls, profile: str, **overrides: Any) -> ExperimentConfig:
        """The config of a named profile, with any field overridden by keyword."""
        if profile not in cls.PROFILES:
            raise ValueError(f"profile: expected one of {sorted(cls.PROFILES)}, got {profile!r}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise ValueError(f"unknown config field(s) {unknown} for {cls.__qualname__}; known: {sorted(names)}")
        return cls(**{**cls.PROFILES[profile], **overrides})

    def to_json(self) -> dict[str, Any]:
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}


@dataclass(frozen=True)
class ExperimentSpec:
    """One registered experiment: its contract name, the claim it measures, and its three functions."""

    name: str
    claim: str
    source: str
    config_cls: type[ExperimentConfig]
    run: Callable[[Any], dict[str, Any]]
    plot: Callable[[dict[str, Any]], dict[str, Any]]
    title: str = ""


def execute(spec: ExperimentSpec, cfg: ExperimentConfig, out_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Run one experiment, write its config, result and figures into ``out_dir``; return the result."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.json", cfg.to_json())
    start = time.perf_counter()
    body = spec.run(cfg)
    seconds = time.perf_counter() - start
    missing = [k for k in RESULT_KEYS if k not in body]
    if missing:
        raise RuntimeError(f"experiment {spec.name!r} returned a result without {missing}")
    result = {
        "name": spec.name,
        "title": spec.title or spec.name,
        "claim": spec.claim,
        "source": spec.source,
        "config": cfg.to_json(),
        "seconds": round(seconds, 3),
        **body,
    }
    result = _jsonable(result)
    write_json(out / "results.json", result)
    write_figures(spec, result, out)
    return result


def write_figures(spec: ExperimentSpec, result: dict[str, Any], out_dir: Path) -> list[Path]:
    """Draw the figures from a saved result and write each as SVG; returns the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for fig_name, fig in spec.plot(result).items():
        path = out_dir / f"{fig_name}.svg"
        fig.savefig(path, format="svg", bbox_inches="tight", metadata={"Date": None})
        plt.close(fig)
        paths.append(path)
    return paths


def _jsonable(x: Any) -> Any:
    """Numbers, strings, lists and dicts only; NaN/inf become None (JSON has neither)."""
    import math

    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, bool) or x is None or isinstance(x, str):
        return x
    if isinstance(x, int):
        return int(x)
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if hasattr(x, "tolist"):  # numpy/torch scalars and arrays
        return _jsonable(x.tolist())
    raise TypeError(f"cannot store a {type(x).__name__} in a result: {x!r}")


def field_types(cls: type) -> dict[str, Any]:
    """The resolved annotation of each dataclass field (for generating CLI options)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def parse_field(name: str, annotation: Any, text: str) -> Any:
    """Parse one CLI value for a config field of type int, float, bool, str or tuple of those."""
    origin = typing.get_origin(annotation)
    if origin in (tuple, list):
        (item, *_rest) = typing.get_args(annotation)
        parts = [p for p in text.replace(" ", "").split(",") if p]
        return tuple(parse_field(name, item, p) for p in parts)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if text.lower() == "none":
            return None
        return parse_field(name, args[0], text)
    try:
        if annotation is bool:
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError
        return annotation(text)
    except ValueError:
        kind = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(annotation, "a value")
        raise ValueError(f"--{name.replace('_', '-')}: expected {kind}, got {text!r}") from None


def viewer_payload(
    title: str, query_tokens: list[str], key_tokens: list[str], weights: Any, *, kind: str = "self", digits: int = 4
) -> dict[str, Any]:
    """One attention map for the report's viewer, as plain JSON (see :mod:`attnlab.report.viewer`).

    ``weights``: ``(L, nh, T, S)`` (layers, heads, query rows, key columns), or ``(T, S)`` for a single map
    (e.g. the cross-attention of an RNN decoder); rows are queries (``query_tokens``), columns keys
    (``key_tokens``). ``kind`` is ``"self"`` or ``"cross"``. Values are rounded to ``digits`` decimals.
    """
    import torch

    w = torch.as_tensor(weights, dtype=torch.float64).detach().cpu()
    if w.dim() == 2:
        w = w[None, None]  # (1, 1, T, S)
    if w.dim() != 4:
        raise ValueError(f"weights: expected a (L, nh, T, S) or (T, S) tensor, got shape {tuple(w.shape)}")
    if w.shape[-2:] != (len(query_tokens), len(key_tokens)):
        raise ValueError(
            f"weights: expected (..., {len(query_tokens)}, {len(key_tokens)}) for {len(query_tokens)} query and "
            f"{len(key_tokens)} key tokens, got shape {tuple(w.shape)}"
        )
    if kind not in ("self", "cross"):
        raise ValueError(f"kind: expected 'self' or 'cross', got {kind!r}")
    return {
        "title": str(title),
        "kind": kind,
        "query_tokens": [str(t) for t in query_tokens],
        "key_tokens": [str(t) for t in key_tokens],
        "layers": w.round(decimals=digits).tolist(),  # [L][nh][T][S]
    }
