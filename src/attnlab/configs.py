"""Nested frozen-dataclass configs: dotted names, overrides, JSON, and the values the command line gives.

A config may hold another config as a field, e.g. ``GPTRunConfig.train`` is a
:class:`~attnlab.train.loop.TrainConfig`; its fields are then named with dots (``train.lr``), on the command
line (``--train.lr 3e-4``), in overrides (``replace(cfg, **{"train.lr": 3e-4})``) and in experiment profiles.
JSON keeps the nesting (``{"train": {"lr": 0.0003}}``); :func:`from_json` also reads the flat form that configs
had before they nested (``{"lr": 0.0003}``), so that old checkpoints and results still load.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple


class Field(NamedTuple):
    """One leaf of a (nested) config: its dotted name, its resolved type annotation and its default."""

    name: str
    annotation: Any
    default: Any


def is_config(annotation: Any) -> bool:
    """Whether a field's annotation is itself a dataclass (a nested config)."""
    return isinstance(annotation, type) and dataclasses.is_dataclass(annotation)


def _types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def leaves(cls: type, prefix: str = "", defaults: Any = None) -> Iterator[Field]:
    """Every leaf field of ``cls``, nested configs expanded into dotted names, in declaration order; each with
    its default (a nested config's default instance gives its fields' defaults, e.g. ``train.lr``)."""
    types_ = _types(cls)
    for f in dataclasses.fields(cls):
        default = getattr(defaults, f.name) if defaults is not None else _default(f)
        if is_config(types_[f.name]):
            yield from leaves(types_[f.name], prefix + f.name + ".", default)
        else:
            yield Field(prefix + f.name, types_[f.name], default)


def get(cfg: Any, dotted: str) -> Any:
    """The value of a dotted field, e.g. ``get(run, "train.lr")``."""
    for part in dotted.split("."):
        cfg = getattr(cfg, part)
    return cfg


def replace(cfg: Any, **changes: Any) -> Any:
    """A copy of a frozen config with dotted fields changed (``replace(run, **{"train.lr": 1e-4})``); nested
    configs are rebuilt, so every level validates again. An unknown name is a ValueError listing the known ones."""
    known = [f.name for f in leaves(type(cfg))]
    top: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for key, value in changes.items():
        if key not in known:
            raise ValueError(f"unknown config field {key!r} for {type(cfg).__qualname__}; known: {', '.join(known)}")
        head, _, rest = key.partition(".")
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            top[head] = value
    for head, sub in nested.items():
        top[head] = replace(top.get(head, getattr(cfg, head)), **sub)
    return dataclasses.replace(cfg, **top) if top else cfg


def to_json(cfg: Any) -> dict[str, Any]:
    """The config as nested JSON-able dicts (tuples become lists)."""
    out = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            out[f.name] = to_json(value)
        elif isinstance(value, tuple):
            out[f.name] = list(value)
        else:
            out[f.name] = value
    return out


def from_json(cls: type, data: Mapping[str, Any]) -> Any:
    """The config ``cls`` from :func:`to_json`'s form, or from the flat form of an older version of it.

    Lists become tuples where the field is a tuple; a key that is not a field of ``cls`` but names exactly one
    field of one nested config (``lr`` -> ``train.lr``) goes there; any other unknown key is a ValueError.
    """
    types_ = _types(cls)
    kwargs: dict[str, Any] = {}
    moved: dict[str, dict[str, Any]] = {}
    for key, value in data.items():
        if key in types_:
            kwargs[key] = _from_json_value(types_[key], value)
            continue
        homes = [name for name, ann in types_.items() if is_config(ann) and key in _types(ann)]
        if len(homes) != 1:
            raise ValueError(f"config: {cls.__qualname__} has no field {key!r}")
        moved.setdefault(homes[0], {})[key] = value
    for home, values in moved.items():
        base = kwargs.get(home)
        if base is None:
            default = next(f for f in dataclasses.fields(cls) if f.name == home)
            base = _default(default) or types_[home]()
        kwargs[home] = from_json(types_[home], {**to_json(base), **values})
    return cls(**kwargs)


def _from_json_value(annotation: Any, value: Any) -> Any:
    if is_config(annotation) and isinstance(value, Mapping):
        return from_json(annotation, value)
    if typing.get_origin(annotation) in (tuple, list) and isinstance(value, list):
        item = typing.get_args(annotation)[0]
        return tuple(_from_json_value(item, v) for v in value)
    return value


def parse_value(name: str, annotation: Any, text: str) -> Any:
    """One command-line value for a field of type int, float, bool, str, a tuple of those (comma-separated) or an
    optional one (``none``). A bad value is a ValueError naming the option (``--train.lr: expected a number``)."""
    origin = typing.get_origin(annotation)
    if origin in (tuple, list):
        (item, *_rest) = typing.get_args(annotation)
        parts = [p for p in text.replace(" ", "").split(",") if p]
        return tuple(parse_value(name, item, p) for p in parts)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if text.lower() == "none":
            return None
        return parse_value(name, args[0], text)
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
        raise ValueError(f"{option(name)}: expected {kind}, got {text!r}") from None


def option(name: str) -> str:
    """The command-line spelling of a dotted field name: ``train.max_iters`` -> ``--train.max-iters``."""
    return "--" + name.replace("_", "-")


__all__ = ["Field", "from_json", "get", "is_config", "leaves", "option", "parse_value", "replace", "to_json"]
