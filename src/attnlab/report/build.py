"""Assemble the report: run each experiment, write ``results.json`` and one self-contained ``index.html``.

Layout of a report folder ``OUT``::

    OUT/index.html          the report: inline CSS and SVG, no network reference of any kind
    OUT/results.json        name -> {"claim", "held", "metrics", "seconds"} (the public contract)
    OUT/report.json         how the report was made (profile, date, machine, order, errors), read by replot
    OUT/NAME/               one folder per experiment: config.json, results.json, <figure>.svg
                            (error.txt with the traceback when the experiment raised)

:func:`build_report` runs the experiments; :func:`replot` redraws every figure from the saved per-experiment
``results.json`` and re-renders the page without running anything.
"""

from __future__ import annotations

import os
import platform
import re
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from attnlab import experiments
from attnlab._checks import resolve_device
from attnlab.experiments.base import ExperimentSpec, device_name, execute, write_figures
from attnlab.fileio import read_json, write_json
from attnlab.report.viewer import content_security_policy, viewer_assets, viewer_fragment

TITLE = "Sequence Models & the Attention Mechanism: every claim, measured"

# held -> (badge text, css class); an experiment that raised gets ("error", "error").
_BADGES = {True: ("held", "held"), False: ("did not hold", "failed"), None: ("not measurable", "unknown")}


class ExperimentsFailed(RuntimeError):
    """Raised after the report is written if any experiment raised; ``failed`` maps name -> message."""

    def __init__(self, index: Path, failed: dict[str, str]) -> None:
        self.index = index
        self.failed = failed
        names = ", ".join(failed)
        super().__init__(f"{len(failed)} experiment(s) failed ({names}); the report is in {index}")


@dataclass
class _Entry:
    """One experiment's section: its result when it ran, its error message when it raised."""

    name: str
    spec: ExperimentSpec | None = None
    result: dict[str, Any] | None = None
    error: str | None = None
    seconds: float = 0.0
    figures: list[Path] = field(default_factory=list)


def build_report(
    out_dir: str | os.PathLike[str],
    profile: str = "quick",
    only: Sequence[str] | None = None,
    progress: bool | None = None,
    device: str = "cpu",
    jobs: int = 1,
) -> Path:
    """Run the experiments (all, or those in ``only``) at ``profile`` on ``device`` and write the report into
    ``out_dir``.

    ``progress``: show a progress bar; ``None`` shows it only when stderr is a terminal.
    An experiment that raises becomes an error section and the others still run; after writing the whole
    report, :class:`ExperimentsFailed` is raised if any did. Bad ``only`` names or an unknown ``profile``
    raise ``ValueError`` before anything runs, and so does a ``device`` this machine does not have (the message
    names what it has). Returns the path of ``index.html``.

    ``jobs``: how many experiments may run at once. The experiments whose measurements do not depend on time or
    on the cores they get (``spec.shares_cores``: those that train on one thread, or count) then run ``jobs`` at a
    time in worker processes, after the others, which run here one at a time with nothing beside them (they
    time themselves, or use every core). On a CPU with two cores, 2 halves the report's time for the former.
    """
    from tqdm import tqdm

    resolved = resolve_device(device)
    selected = _select(only)
    out = Path(out_dir)
    entries = [_Entry(name) for name in selected]
    for entry in entries:
        try:
            entry.spec = experiments.get(entry.name)
        except Exception as exc:  # a module that fails to import is reported, not fatal
            entry.error = _one_line(exc)
    _check_jobs(jobs)
    bad = [e.name for e in entries if e.spec is not None and profile not in e.spec.config_cls.PROFILES]
    if bad:
        raise ValueError(f"profile: {profile!r} is not defined for {', '.join(bad)} (expected quick or full)")

    out.mkdir(parents=True, exist_ok=True)
    started = _now()
    start = time.perf_counter()
    show = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(total=len(entries), desc="report", unit="exp", disable=not show, file=sys.stderr, dynamic_ncols=True)
    shared = [e for e in entries if jobs > 1 and e.spec is not None and e.spec.shares_cores]
    for entry in entries:  # first, one at a time, those that need the machine to themselves
        if entry in shared:
            continue
        bar.set_postfix_str(entry.name)
        if entry.spec is None:
            _write_error(out / entry.name, entry.error or "")
        else:
            _run_entry(entry, profile, device, out)
        _done(entry, bar)
    if shared:
        _run_shared(shared, profile, device, out, jobs, bar)
    bar.close()

    meta = {
        "title": TITLE,
        "profile": profile,
        "date": started,
        "total_seconds": round(time.perf_counter() - start, 3),
        "device": device_name(resolved),
        "jobs": jobs,
        **_environment(),
        "experiments": [e.name for e in entries],
        "errors": {e.name: e.error for e in entries if e.error is not None},
    }
    return _write_report(out, entries, meta)


def _check_jobs(jobs: Any) -> None:
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs: expected an integer >= 1, got {jobs!r}")


def _run_entry(entry: _Entry, profile: str, device: str, out: Path) -> None:
    """Run one experiment here and fill its entry: the result, or the error (its traceback in error.txt)."""
    folder = out / entry.name
    _clear_outputs(folder)
    t0 = time.perf_counter()
    try:
        cfg = entry.spec.config_cls.for_profile(profile, device=device)
        entry.result = execute(entry.spec, cfg, folder)
    except Exception as exc:  # record it and go on with the next experiment
        entry.error = _one_line(exc)
        _write_error(folder, traceback.format_exc())
    entry.seconds = time.perf_counter() - t0
    entry.figures = _figure_paths(folder)


def _run_in_worker(name: str, profile: str, device: str, out: str) -> tuple[Any, str | None, float]:
    """:func:`_run_entry` in a worker process, for a registered experiment: (result, error, seconds)."""
    entry = _Entry(name, spec=experiments.get(name))
    _run_entry(entry, profile, device, Path(out))
    return entry.result, entry.error, entry.seconds


def _run_shared(entries: list[_Entry], profile: str, device: str, out: Path, jobs: int, bar: Any) -> None:
    """Run ``entries`` ``jobs`` at a time in fresh worker processes: forked from a server that imported the lab
    once (spawned where there is no fork server); nothing of this process's threads or state carries over, so
    only registered experiments run there."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["torch", "matplotlib.pyplot", "attnlab.report.build"])
    else:
        context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        running = {pool.submit(_run_in_worker, e.name, profile, device, str(out)): e for e in entries}
        bar.set_postfix_str(f"{len(running)} sharing {jobs} workers")
        for future in as_completed(running):
            entry = running[future]
            try:
                entry.result, entry.error, entry.seconds = future.result()
            except Exception as exc:  # the worker itself died (e.g. out of memory)
                entry.error = _one_line(exc)
                _write_error(out / entry.name, traceback.format_exc())
            entry.figures = _figure_paths(out / entry.name)
            _done(entry, bar)


def _done(entry: _Entry, bar: Any) -> None:
    if entry.error is not None:
        bar.write(f"attnlab: {entry.name} failed: {entry.error}", file=sys.stderr)
    bar.update(1)


def replot(out_dir: str | os.PathLike[str]) -> Path:
    """Redraw every figure from each experiment's saved ``results.json``, re-render the page; run nothing.

    The experiments are those of the last build (``report.json``), else every registered experiment with a
    saved result. Raises ``ValueError`` when ``out_dir`` holds no results, :class:`ExperimentsFailed` (after
    writing) when a section is an error (from the original build, or a figure that fails to draw).
    """
    out = Path(out_dir)
    meta_path = out / "report.json"
    if meta_path.is_file():
        meta = read_json(meta_path)
        selected = list(meta.get("experiments", []))
        old_errors = dict(meta.get("errors", {}))
    else:
        selected = [n for n in experiments.names() if (out / n / "results.json").is_file()]
        meta = {"title": TITLE, "profile": None, "date": None, "total_seconds": None, **_environment()}
        old_errors = {}
    if not selected:
        raise ValueError(f"out: no experiment results to replot in {out}")

    entries = []
    for name in selected:
        entry = _Entry(name)
        entries.append(entry)
        result_path = out / name / "results.json"
        try:
            entry.spec = experiments.get(name)
            if not result_path.is_file():
                entry.error = old_errors.get(name) or f"no saved result ({result_path} is missing)"
                continue
            entry.result = read_json(result_path)
            entry.seconds = float(entry.result.get("seconds") or 0.0)
            for stale in (out / name).glob("*.svg"):
                stale.unlink()
            write_figures(entry.spec, entry.result, out / name)
        except Exception as exc:
            entry.error = _one_line(exc)
        entry.figures = _figure_paths(out / name)
    meta["experiments"] = selected
    meta["errors"] = {e.name: e.error for e in entries if e.error is not None}
    meta["replotted"] = _now()
    return _write_report(out, entries, meta)


# ---------------------------------------------------------------------------------------------- internals


def _select(only: Sequence[str] | None) -> list[str]:
    """The experiments to run, in report order; unknown names in ``only`` are a ValueError."""
    registered = experiments.names()
    if not only:
        return registered
    unknown = [n for n in only if n not in registered]
    if unknown:
        raise ValueError(f"--only: expected names among {', '.join(registered)}; got {', '.join(unknown)}")
    wanted = set(only)
    return [n for n in registered if n in wanted]


def _write_report(out: Path, entries: list[_Entry], meta: dict[str, Any]) -> Path:
    """Write ``results.json``, ``report.json`` and ``index.html``; raise if any entry is an error."""
    summary = {}
    for e in entries:
        r = e.result or {}
        summary[e.name] = {
            "claim": str(r.get("claim") or (e.spec.claim if e.spec else "")),
            "held": r.get("held") if e.error is None else None,
            "metrics": dict(r.get("metrics") or {}) if e.error is None else {},
            "seconds": round(float(r.get("seconds", e.seconds) if e.error is None else e.seconds), 3),
        }
    write_json(out / "results.json", summary)
    write_json(out / "report.json", meta)
    index = out / "index.html"
    _write_text(index, _render(entries, meta, summary))
    failed = {e.name: e.error for e in entries if e.error is not None}
    if failed:
        raise ExperimentsFailed(index, failed)
    return index


def _render(entries: list[_Entry], meta: dict[str, Any], summary: dict[str, Any]) -> str:
    from jinja2 import Environment, PackageLoader, select_autoescape
    from markupsafe import Markup

    env = Environment(
        loader=PackageLoader("attnlab.report", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html", "j2"), default=True),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["num"] = _format_value
    env.filters["duration"] = _format_seconds
    sections = []
    for e in entries:
        r = e.result or {}
        spec = e.spec
        badge_text, badge_class = ("error", "error") if e.error is not None else _BADGES[r.get("held")]
        viewer, viewer_error = _viewer(e.name, r) if e.error is None else (None, None)
        figures = [_inline_svg(p, prefix=f"{e.name}--{p.stem}") for p in e.figures]
        main = spec.main_figure if spec is not None and spec.main_figure else None
        first = next((f for f in figures if f["name"] == main), figures[0] if figures else None)
        sections.append(
            {
                "name": e.name,
                "title": r.get("title") or (spec.title if spec and spec.title else e.name),
                "claim": r.get("claim") or (spec.claim if spec else ""),
                "source": r.get("source") or (spec.source if spec else ""),
                "setup": r.get("setup", ""),
                "summary": r.get("summary", ""),
                "headline": r.get("headline") or [],
                "metrics": r.get("metrics") or {},
                "config": _flatten(r.get("config") or {}),
                "device": r.get("device_name") or r.get("device") or "",
                "error": e.error,
                "badge": badge_text,
                "badge_class": badge_class,
                "seconds": summary[e.name]["seconds"],
                "main_figure": first,
                "figures": [f for f in figures if f is not first],
                "viewer": viewer,
                "viewer_error": viewer_error,
            }
        )
    badges = [text for text, _ in _BADGES.values()] + ["error"]
    counts = {text: sum(s["badge"] == text for s in sections) for text in badges}
    has_viewer = any(s["viewer"] is not None for s in sections)
    page = {
        # no fetch of any kind at view time; the only script allowed is the viewer's (by its hash)
        "csp": content_security_policy(scripts=has_viewer),
        "viewer_assets": {k: Markup(v) for k, v in viewer_assets().items()} if has_viewer else None,
    }
    return env.get_template("report.html.j2").render(meta=meta, sections=sections, counts=counts, page=page)


def _viewer(name: str, result: dict[str, Any]) -> tuple[Any, str | None]:
    """The section's attention viewer (markup, without the page-wide JS/CSS) when its result has
    ``data["viewer"]`` (a list of :func:`attnlab.experiments.base.viewer_payload` maps); a malformed one gives
    an error message for the section instead of failing the whole report."""
    from markupsafe import Markup

    data = result.get("data")
    payloads = data.get("viewer") if isinstance(data, dict) else None
    if payloads is None:
        return None, None
    try:
        return Markup(viewer_fragment(payloads, element_id=f"attnlab-viewer-{_css_id(name)}")), None
    except (TypeError, ValueError) as exc:
        return None, _one_line(exc)


def _flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config as dotted keys (``train.lr``), as the command line spells them."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _css_id(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)


_PROLOG = re.compile(r"<\?xml[^>]*\?>|<!DOCTYPE[^>]*>|<metadata>.*?</metadata>", re.DOTALL)
_ID = re.compile(r'\bid="([^"]+)"')
_HREF = re.compile(r'((?:xlink:)?href=")#([^"]+)"')
_URL = re.compile(r"url\(#([^)]+)\)")


def _inline_svg(path: Path, prefix: str) -> dict[str, Any]:
    """An SVG file as markup to inline: prolog, DOCTYPE and metadata dropped, every id prefixed.

    matplotlib reuses ids (``figure_1``, glyph and clip-path ids) across files; inlined side by side they
    would collide, so each id and each reference to it (``href="#id"``, ``url(#id)``) gets ``prefix``.
    """
    from markupsafe import Markup

    prefix = _css_id(prefix) + "-"
    svg = _PROLOG.sub("", path.read_text(encoding="utf-8")).strip()
    ids = set(_ID.findall(svg))
    svg = _ID.sub(lambda m: f'id="{prefix}{m.group(1)}"', svg)
    svg = _HREF.sub(lambda m: f'{m.group(1)}#{prefix if m.group(2) in ids else ""}{m.group(2)}"', svg)
    svg = _URL.sub(lambda m: f"url(#{prefix if m.group(1) in ids else ''}{m.group(1)})", svg)
    # trusted markup: written by our own matplotlib from our own results
    return {"name": path.stem, "svg": Markup(svg)}


def _figure_paths(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.svg")) if folder.is_dir() else []


def _clear_outputs(folder: Path) -> None:
    """Remove a previous run's result and figures so that a failed run cannot leave stale ones behind."""
    if not folder.is_dir():
        return
    for stale in [folder / "results.json", folder / "error.txt", *folder.glob("*.svg")]:
        if stale.is_file():
            stale.unlink()


def _write_error(folder: Path, text: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    _write_text(folder / "error.txt", text if text.endswith("\n") else text + "\n")


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _one_line(exc: BaseException) -> str:
    message = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _now() -> str:
    return datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")


def _environment() -> dict[str, Any]:
    import torch

    return {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }


def _format_value(x: Any) -> str:
    """Numbers to 4 significant digits, integers whole, everything else as text."""
    if isinstance(x, bool) or x is None:
        return str(x).lower() if x is not None else "n/a"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        return f"{x:.4g}"
    if isinstance(x, (list, tuple)):
        return ", ".join(_format_value(v) for v in x)
    return str(x)


def _format_seconds(s: Any) -> str:
    if s is None:
        return "n/a"
    s = float(s)
    if s < 60:
        return f"{s:.1f} s"
    minutes, seconds = divmod(round(s), 60)
    return f"{minutes} min {seconds:02d} s"


__all__ = ["ExperimentsFailed", "build_report", "replot"]
