"""``attnlab practice``: the lesson's practice as one offline HTML page, flashcards and the pronoun exercise.

Flashcards: the decks of :mod:`attnlab.report.flashcards`, one per section of the chapter. A card that cites a
measured number takes it from the ``results.json`` of an ``attnlab report`` run (``name -> {claim, held, metrics,
seconds}``) and says which experiment measured it and whether its claim held; without results it says how to
produce them.

Pronoun exercise (:mod:`attnlab.report.pronoun_exercise`): the learner clicks the word "it" refers to in each
sentence of a few minimal pairs; the page records the choice and shows what each head of the pretrained
all-MiniLM-L6-v2 attends to from "it" (computed at build time), which heads agree with the choice and which with
the answer, and outlines the head the report chose (``pronoun``'s ``pretrained/best_head``) when results are given.

The page follows the attention viewer's conventions (:mod:`attnlab.report.viewer`): inline CSS and JS, a
Content-Security-Policy that forbids any fetch, data as JSON that cannot close its script element, text put into
the page only as text. The product never reads anything at view time.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import os
import re
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from attnlab.fileio import atomic_write, check_file_path, read_json
from attnlab.report.flashcards import DECKS, OBJECTIVES, Card
from attnlab.report.pronoun_exercise import exercise_data
from attnlab.report.viewer import json_for_script

DEFAULT_RESULTS = Path("runs/report/results.json")
DEFAULT_OUT = Path("practice.html")
MAX_VALUES = 12  # metric values shown per pattern on a card
_VERDICTS = {True: ("held", "held"), False: ("did not hold", "failed"), None: ("not measurable", "unknown")}


# ------------------------------------------------------------------------------------------------ results


def results_file(path: str | os.PathLike[str]) -> Path:
    """The results file for ``--results``: the file itself, or ``results.json`` in a report folder."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"--results: no such file: {path} (run `attnlab report` to write runs/report/results.json)"
        )
    return path


def load_results(path: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """Read and check a report's ``results.json`` (``name -> {claim, held, metrics, seconds}``); one experiment's
    ``results.json`` from ``attnlab exp NAME`` (the same keys plus ``name``) is taken as ``{NAME: ...}``.

    Raises FileNotFoundError for a missing file and ValueError naming the file and the entry for anything else.
    """
    path = results_file(path)
    try:
        data = read_json(path)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"--results: {path} is not valid JSON ({exc})") from None
    except OSError as exc:  # unreadable (permissions, a broken disk): say so in one line
        raise ValueError(f"--results: cannot read {path} ({exc.strerror or exc})") from None
    if isinstance(data, dict) and isinstance(data.get("name"), str) and "metrics" in data:
        data = {data["name"]: data}  # one experiment's result
    if not isinstance(data, dict):
        raise ValueError(f"--results: {path}: expected a JSON object (name -> result), got {type(data).__name__}")
    for name, entry in data.items():
        where = f"--results: {path}: entry {name!r}"
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: expected an object with claim, held, metrics, seconds; got {entry!r:.60}")
        if not isinstance(entry.get("metrics"), dict):
            raise ValueError(f"{where}: expected 'metrics' to be an object, got {entry.get('metrics')!r:.60}")
        if not any(entry.get("held") is v for v in (True, False, None)):  # 1 == True, but 1 is not a verdict
            raise ValueError(f"{where}: expected 'held' true, false or null, got {entry.get('held')!r:.60}")
        if not isinstance(entry.get("claim", ""), str):
            raise ValueError(f"{where}: expected 'claim' to be a string, got {entry.get('claim')!r:.60}")
    return data


def format_value(value: Any) -> str:
    """A metric value as text: 4 significant digits for floats, ``n/a`` for null, objects as ``key value, ...``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {format_value(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(format_value(v) for v in value)
    return str(value)


def measured_view(card: Card, results: dict[str, dict[str, Any]] | None) -> dict[str, Any] | None:
    """What a card shows of its measured numbers: the experiment, the verdict, and per pattern the matching
    metrics as ``(key, text)``; or why there are none (``reason``: ``"no-results"``, ``"no-entry"`` for results
    without this experiment, ``"no-metrics"``)."""
    if card.measured is None:
        return None
    name = card.measured.experiment
    view: dict[str, Any] = {"experiment": name, "rows": [], "reason": None}
    entry = None if results is None else results.get(name)
    if entry is None:  # the template says how to measure it
        view.update(status="absent", verdict="not measured", reason="no-results" if results is None else "no-entry")
        return view
    verdict, status = _VERDICTS[entry.get("held")]
    view.update(status=status, verdict=verdict, claim=entry.get("claim", ""))
    metrics = entry["metrics"]
    for pattern, label in card.measured.metrics:
        keys = [k for k in metrics if fnmatch.fnmatchcase(k, pattern)]
        shown = [(k, format_value(metrics[k])) for k in keys[:MAX_VALUES]]
        view["rows"].append({"pattern": pattern, "label": label, "shown": shown, "more": len(keys) - len(shown)})
    if not metrics:
        view["reason"] = "no-metrics"  # an experiment that raised in the report has none
    return view


def decks_view(results: dict[str, dict[str, Any]] | None) -> list[dict[str, Any]]:
    """The flashcard decks, ready to render: each card with its objective's text and its measured numbers."""
    return [
        {
            "id": deck.id,
            "title": deck.title,
            "cards": [
                {
                    "id": card.id,
                    "question": card.question,
                    "answer": card.answer,
                    "objective": OBJECTIVES[card.objective],
                    "measured": measured_view(card, results),
                }
                for card in deck.cards
            ],
        }
        for deck in DECKS
    ]


# ----------------------------------------------------------------------------------------- pronoun exercise


def chosen_head(results: dict[str, dict[str, Any]] | None, layers: int, heads: int) -> dict[str, Any] | None:
    """The pretrained head the report chose (``pronoun``'s ``pretrained/best_head``, e.g. ``"L4H2"``), if any."""
    entry = (results or {}).get("pronoun")
    metrics = entry["metrics"] if entry else {}
    match = re.fullmatch(r"L(\d+)H(\d+)", str(metrics.get("pretrained/best_head", "")))
    if not match or not (1 <= int(match[1]) <= layers and 1 <= int(match[2]) <= heads):
        return None
    accuracy = metrics.get("pretrained/best_head_heldout_accuracy")
    return {
        "index": (int(match[1]) - 1) * heads + int(match[2]) - 1,
        "label": match[0],
        "heldout_accuracy": accuracy if isinstance(accuracy, (int, float)) else None,
        "p_value": format_value(metrics.get("pretrained/best_head_heldout_sign_test_p")),
        "above_chance": metrics.get("pretrained/above_chance"),
    }


def pronoun_exercise(encoder: Any = None, results: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The exercise's data for the page (:func:`attnlab.report.pronoun_exercise.exercise_data`, computed with
    ``encoder``, default all-MiniLM-L6-v2) and the head the report chose, from ``results``."""
    data = exercise_data(encoder)
    return {**data, "chosen": chosen_head(results, data["layers"], data["heads"])}


# -------------------------------------------------------------------------------------------------- page


@cache
def _asset(name: str) -> str:
    text = resources.files("attnlab.report").joinpath("templates", name).read_text(encoding="utf-8")
    if name.endswith(".js") and ("<script" in text.lower() or "</script" in text.lower() or "<!--" in text):
        raise RuntimeError(f"{name} must not contain '<script', '</script' or '<!--' (it is inlined in a script)")
    if name.endswith(".css") and "</style" in text.lower():
        raise RuntimeError(f"{name} must not contain '</style' (it is inlined in a style element)")
    return text


def content_security_policy() -> str:
    """No fetch of any kind (no network, no file), no images, and only the page's own script (by its hash)."""
    digest = base64.b64encode(hashlib.sha256(_asset("practice.js").encode("utf-8")).digest()).decode("ascii")
    return (
        f"default-src 'none'; script-src 'sha256-{digest}'; style-src 'unsafe-inline'; img-src 'none'; "
        "font-src 'none'; connect-src 'none'; base-uri 'none'; form-action 'none'"
    )


def practice_html(
    results: dict[str, dict[str, Any]] | None = None,
    results_path: str | os.PathLike[str] | None = None,
    *,
    encoder: Any = None,
) -> str:
    """The whole page: flashcards (with ``results``' numbers, read from ``results_path``) and the exercise."""
    from jinja2 import Environment, PackageLoader, select_autoescape
    from markupsafe import Markup

    exercise = pronoun_exercise(encoder, results)
    env = Environment(
        loader=PackageLoader("attnlab.report", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html", "j2"), default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.get_template("practice.html.j2").render(
        csp=content_security_policy(),
        css=Markup(_asset("practice.css")),
        js=Markup(_asset("practice.js")),
        data=Markup(json_for_script({"pronoun": exercise})),
        decks=decks_view(results),
        exercise=exercise,
        results_path=None if results_path is None else str(results_path),
        measured=sorted(results) if results else [],
    )


def check_out(path: str | os.PathLike[str]) -> Path:
    """``--out``: a file path (an existing file is replaced); a folder, or a file in the way of its folder, is a
    ValueError: the page never replaces a folder."""
    return check_file_path(path, "--out", DEFAULT_OUT.name)


def find_results(path: str | os.PathLike[str] | None) -> Path | None:
    """The results file to read: ``path`` (a file or a report folder; missing is a FileNotFoundError), or when
    None, :data:`DEFAULT_RESULTS` if it exists (else None: the page has no measured numbers)."""
    if path is None:
        return DEFAULT_RESULTS if DEFAULT_RESULTS.is_file() else None
    return results_file(path)


def write_practice(
    out: str | os.PathLike[str] = DEFAULT_OUT,
    results: dict[str, dict[str, Any]] | None = None,
    results_path: str | os.PathLike[str] | None = None,
    *,
    encoder: Any = None,
) -> Path:
    """Write the practice page to ``out`` atomically; returns its path. ``results``: a report's results as
    :func:`load_results` returns them (read from ``results_path``), or None."""
    out = check_out(out)
    text = practice_html(results, results_path, encoder=encoder)
    with atomic_write(out) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")
    return out


__all__ = [
    "DEFAULT_OUT",
    "DEFAULT_RESULTS",
    "check_out",
    "chosen_head",
    "content_security_policy",
    "decks_view",
    "find_results",
    "format_value",
    "load_results",
    "measured_view",
    "practice_html",
    "pronoun_exercise",
    "write_practice",
]
