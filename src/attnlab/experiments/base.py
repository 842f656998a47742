"""The shape every experiment takes: a config, the measuring, the figures and the words.

An experiment (one subpackage of a section, see :mod:`attnlab.experiments`) is

- ``Config``: a frozen dataclass deriving from :class:`ExperimentConfig`, validated in ``__post_init__``, with
  a ``PROFILES`` mapping (``"quick"`` and ``"tiny"`` for the tests; ``"full"`` is the defaults, added by the
  base) of field overrides, dotted for nested configs (``"train.max_iters"``), and optionally ``GPU_PROFILES``
  applied on top when the device is a GPU;
- ``run(cfg) -> dict``: the measuring, numbers and series only: ``held`` (``True``/``False``/``None`` when not
  measurable), ``metrics`` (flat name -> number/str), ``data`` (the series the figures and words are drawn
  from) and ``device`` (where it was measured);
- ``plot(result) -> dict[str, Figure]``: figures drawn only from the saved result (re-plotting needs no re-run);
- :class:`Words`: ``setup(cfg, result)`` and ``summary(cfg, result)``, paragraphs filled from the result, and
  ``headline(cfg, result)``, the 3-6 numbers the report shows first;
- ``SPEC = ExperimentSpec(...)``, registered in :mod:`attnlab.experiments`.

:func:`run_experiment` runs one and returns its full result; :func:`execute` also writes ``config.json``,
``results.json`` and ``<figure>.svg`` into its folder.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

from attnlab import configs
from attnlab._checks import check_device_name, resolve_device
from attnlab.fileio import write_json

RESULT_KEYS = ("held", "metrics", "setup", "summary", "data")


@dataclass(frozen=True)
class ExperimentConfig:
    """Fields every experiment shares. Subclasses add their own, all with defaults (the full profile).

    ``DERIVED``: dotted fields the experiment sets itself (a nested ``train`` config's ``seed`` and ``device``
    come from the experiment's own ``seed`` and ``device``), left out of the command line. ``RENAMED``: old flat
    option names -> the dotted fields that replaced them, so that an old flag fails with one line naming the new;
    a subclass's own are added to those of its bases (the training steps' old names, here, for every experiment
    that trains). ``PROFILES``: the ``"full"`` profile is the defaults in every subclass, added here.
    """

    seed: int = 0
    device: str = "cpu"

    PROFILES: ClassVar[Mapping[str, Mapping[str, Any]]] = {"quick": {}, "full": {}}
    GPU_PROFILES: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    DERIVED: ClassVar[tuple[str, ...]] = ("train.seed", "train.device")
    RENAMED: ClassVar[Mapping[str, str]] = {"train_steps": "train.max_iters", "warmup_steps": "train.warmup_iters"}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.PROFILES = {"full": {}, **cls.PROFILES}
        renamed: dict[str, str] = {}
        for base in reversed(cls.__mro__):
            renamed.update(vars(base).get("RENAMED", {}))
        cls.RENAMED = renamed

    def __post_init__(self) -> None:
        check_device_name(self.device)

    @classmethod
    def for_profile(cls, profile: str, **overrides: Any) -> ExperimentConfig:
        """The config of a named profile (and, on a GPU, its ``GPU_PROFILES`` entry), with any field overridden
        by keyword; nested fields by dotted name (``**{"train.lr": 1e-3}``)."""
        if profile not in cls.PROFILES:
            raise ValueError(f"profile: expected one of {sorted(cls.PROFILES)}, got {profile!r}")
        values = dict(cls.PROFILES[profile])
        device = overrides.get("device", values.get("device", cls.device))
        if profile in cls.GPU_PROFILES and resolve_device(device).startswith("cuda"):
            values.update(cls.GPU_PROFILES[profile])
        return configs.replace(cls(), **{**values, **overrides})

    def to_json(self) -> dict[str, Any]:
        return configs.to_json(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ExperimentConfig:
        """The config saved in a result (``result["config"]``)."""
        return configs.from_json(cls, data)


class Words(NamedTuple):
    """An experiment's words, filled from its config and result: ``setup`` (what was measured, on what),
    ``summary`` (what the numbers say, including plainly when the claim did not hold) and ``headline`` (the
    3-6 ``(label, value)`` rows the report shows before anything else)."""

    setup: Callable[[Any, dict[str, Any]], str]
    summary: Callable[[Any, dict[str, Any]], str]
    headline: Callable[[Any, dict[str, Any]], list[tuple[str, Any]]]


@dataclass(frozen=True)
class ExperimentSpec:
    """One registered experiment: its contract name, the claim it measures, its config, measuring and figures,
    its words (None: ``run`` writes ``setup`` and ``summary`` itself) and the name of its main figure (None: the
    first one ``plot`` draws)."""

    name: str
    claim: str
    source: str
    config_cls: type[ExperimentConfig]
    run: Callable[[Any], dict[str, Any]]
    plot: Callable[[dict[str, Any]], dict[str, Any]]
    title: str = ""
    words: Words | None = None
    main_figure: str | None = None


def measured(verdict: Mapping[str, bool] | None, metrics: dict[str, Any], data: dict[str, Any], device: str) -> dict:
    """What ``run`` returns: ``held`` from the verdict (every part held; None when the claim was not measurable, a
    None verdict), the metrics, the data (with the verdict) and the device it was measured on."""
    held = None if verdict is None else all(verdict.values())
    return {"held": held, "metrics": metrics, "device": device, "data": {**data, "verdict": dict(verdict or {})}}


def assemble(name: str, package: str) -> ExperimentSpec:
    """The spec of the experiment whose package is ``package``: ``config.Config``, ``measure.run``,
    ``figures.plot``, and from ``words`` its ``TITLE``, ``CLAIM``, ``SOURCE``, ``MAIN_FIGURE`` and ``WORDS``."""
    import importlib

    config, measure, figures, words = (importlib.import_module(f"{package}.{m}") for m in _PIECES)
    return ExperimentSpec(
        name=name,
        claim=words.CLAIM,
        source=words.SOURCE,
        config_cls=config.Config,
        run=measure.run,
        plot=figures.plot,
        title=words.TITLE,
        words=words.WORDS,
        main_figure=words.MAIN_FIGURE,
    )


_PIECES = ("config", "measure", "figures", "words")


def run_experiment(spec: ExperimentSpec, cfg: ExperimentConfig) -> dict[str, Any]:
    """Run one experiment and return its full, JSON-able result: the measurements, the words filled from them,
    the claim, the config, where it was measured and how long it took."""
    start = time.perf_counter()
    body = spec.run(cfg)
    seconds = time.perf_counter() - start
    device = body.pop("device", None) or resolve_device(cfg.device)
    result = {
        "name": spec.name,
        "title": spec.title or spec.name,
        "claim": spec.claim,
        "source": spec.source,
        "config": cfg.to_json(),
        "seconds": round(seconds, 3),
        "device": device,
        "device_name": device_name(device),
        **body,
    }
    result = jsonable(result)
    if spec.words is not None:
        result.update(describe(spec, cfg, result))
    missing = [k for k in RESULT_KEYS if k not in result]
    if missing:
        raise RuntimeError(f"experiment {spec.name!r} returned a result without {missing}")
    return result


def describe(spec: ExperimentSpec, cfg: ExperimentConfig, result: dict[str, Any]) -> dict[str, Any]:
    """The words of a result: ``setup``, ``summary`` and ``headline``, filled from the saved JSON."""
    words = spec.words
    rows = [[str(label), value] for label, value in words.headline(cfg, result)]
    return {"setup": words.setup(cfg, result), "summary": words.summary(cfg, result), "headline": jsonable(rows)}


def execute(spec: ExperimentSpec, cfg: ExperimentConfig, out_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Run one experiment, write its config, result and figures into ``out_dir``; return the result."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.json", cfg.to_json())
    result = run_experiment(spec, cfg)
    write_json(out / "results.json", result)
    write_figures(spec, result, out)
    return result


def device_name(device: str) -> str:
    """Where a measurement ran, in words: the GPU's name, or the CPU with its thread count."""
    import torch

    if device.startswith("cuda"):
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"


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


def jsonable(x: Any) -> Any:
    """Numbers, strings, lists and dicts only; NaN/inf become None (JSON has neither)."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, bool) or x is None or isinstance(x, str):
        return x
    if isinstance(x, int):
        return int(x)
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if hasattr(x, "tolist"):  # numpy/torch scalars and arrays
        return jsonable(x.tolist())
    raise TypeError(f"cannot store a {type(x).__name__} in a result: {x!r}")


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
