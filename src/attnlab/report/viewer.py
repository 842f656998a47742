"""The attention viewer: an offline bertviz in one HTML file (inline JS and CSS, no network request of any kind).

Input: a list of attention-map payloads, each the JSON of :func:`attnlab.experiments.base.viewer_payload`::

    {"title": str, "kind": "self" | "cross",
     "query_tokens": [str] (T, the rows), "key_tokens": [str] (S, the columns),
     "layers": [L][nh][T][S] weights in [0, 1]}

Three views of the selected payload, layer and head:

- head view: query tokens in the left column, key tokens in the right one, a line from query i to key j with
  opacity w_ij; with "all heads" every head's lines are overlaid, each head in its own color. Hover a token to
  see only its lines, click it to lock (click again to unlock).
- model view: the L x nh grid of small heatmaps; click one to select its layer and head in the other views.
- heatmap view: the T x S matrix with token labels and a tooltip per cell (the mean over heads for "all heads").

Export buttons download the current view as SVG or PNG and the payload as JSON (blob: URLs, ``<a download>``).

Safety: the payloads travel as JSON in a ``<script type="application/json">`` with ``<``, ``>``, ``&``,
U+2028 and U+2029 escaped (``\\u003c`` ...), so no token can close the script element; the JS puts tokens into the
page only as text nodes (``textContent``), never as markup. The standalone page carries a Content-Security-Policy
that allows only its own script (by hash) and no fetch of any kind.

Several viewers on one page do not interact: each lives in its own root element (unique ``id``), its CSS is
scoped to ``.attnlab-viewer``, its JS is one namespace (``window.attnlabViewer``) initialising each root once.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import os
import uuid
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from attnlab.fileio import atomic_write, check_file_path

KINDS = ("self", "cross")
# U+2028/U+2029 end a line in JavaScript source (before ES2019) and in some HTML tooling; escape them too.
_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


# ------------------------------------------------------------------------------------------------ payloads


def check_payload(payload: Any, name: str = "payload") -> dict[str, Any]:
    """Validate one attention-map payload (see the module docstring); returns it as a plain dict.

    Raises TypeError/ValueError naming the field, what was expected and what was given.
    """
    if not isinstance(payload, Mapping):
        raise TypeError(f"{name}: expected a dict (a viewer payload), got {type(payload).__name__}")
    missing = [k for k in ("title", "kind", "query_tokens", "key_tokens", "layers") if k not in payload]
    if missing:
        raise ValueError(f"{name}: expected the keys title, kind, query_tokens, key_tokens, layers; missing {missing}")
    if not isinstance(payload["title"], str):
        raise TypeError(f"{name}.title: expected a str, got {type(payload['title']).__name__}")
    if payload["kind"] not in KINDS:
        raise ValueError(f"{name}.kind: expected 'self' or 'cross', got {payload['kind']!r}")
    for field in ("query_tokens", "key_tokens"):
        tokens = payload[field]
        if not isinstance(tokens, Sequence) or isinstance(tokens, str) or not all(isinstance(t, str) for t in tokens):
            raise TypeError(f"{name}.{field}: expected a list of str, got {tokens!r:.80}")
        if not tokens:
            raise ValueError(f"{name}.{field}: expected at least one token, got none")
    T, S = len(payload["query_tokens"]), len(payload["key_tokens"])
    layers = payload["layers"]
    if not _is_list(layers) or not layers or not all(_is_list(heads) and heads for heads in layers):
        raise ValueError(f"{name}.layers: expected a non-empty [L][nh][T][S] nested list, got {layers!r:.80}")
    nh = len(layers[0])
    for l, heads in enumerate(layers):
        if len(heads) != nh:
            raise ValueError(f"{name}.layers[{l}]: expected {nh} heads (as layer 0), got {len(heads)}")
        for h, rows in enumerate(heads):
            where = f"{name}.layers[{l}][{h}]"
            if not _is_list(rows) or len(rows) != T or not all(_is_list(r) and len(r) == S for r in rows):
                raise ValueError(f"{where}: expected a {T} x {S} matrix (query x key tokens), got {_shape(rows)}")
            for row in rows:
                for w in row:
                    if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w):
                        raise TypeError(f"{where}: expected finite numbers, got {w!r}")
                    if not 0.0 <= w <= 1.0:
                        raise ValueError(f"{where}: expected attention weights in [0, 1], got {w!r}")
    return {
        "title": payload["title"],
        "kind": payload["kind"],
        "query_tokens": list(payload["query_tokens"]),
        "key_tokens": list(payload["key_tokens"]),
        "layers": layers,
    }


def check_payloads(payloads: Any) -> list[dict[str, Any]]:
    """One payload (a dict) or a non-empty list of them, validated; returns the list."""
    if isinstance(payloads, Mapping):
        payloads = [payloads]
    if not isinstance(payloads, Sequence) or isinstance(payloads, str):
        raise TypeError(f"payloads: expected a payload dict or a list of them, got {type(payloads).__name__}")
    if not payloads:
        raise ValueError("payloads: expected at least one attention map, got an empty list")
    return [check_payload(p, f"payloads[{i}]") for i, p in enumerate(payloads)]


def _is_list(x: Any) -> bool:
    return isinstance(x, (list, tuple))


def _shape(x: Any) -> str:
    if not _is_list(x):
        return type(x).__name__
    widths = sorted({len(r) if _is_list(r) else -1 for r in x})
    return f"{len(x)} rows of widths {widths}"


def json_for_script(obj: Any) -> str:
    """JSON safe to place inside a ``<script>`` element: ``<``, ``>``, ``&``, U+2028 and U+2029 escaped.

    The result parses back (``JSON.parse``, ``json.loads``) to ``obj`` exactly; it never contains ``</script``,
    ``<!--`` or any other markup, whatever the strings in ``obj`` hold.
    """
    text = json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return "".join(_JSON_ESCAPES.get(ch, ch) for ch in text)


# ------------------------------------------------------------------------------------------------- assets


@cache
def _asset(name: str) -> str:
    return resources.files("attnlab.report").joinpath("templates", name).read_text(encoding="utf-8")


def viewer_css() -> str:
    """The viewer's stylesheet (every rule scoped to ``.attnlab-viewer``)."""
    return _asset("viewer.css")


def viewer_js() -> str:
    """The viewer's script: defines ``window.attnlabViewer`` once and initialises every viewer root on the page."""
    js = _asset("viewer.js")
    if "<script" in js.lower() or "</script" in js.lower() or "<!--" in js:
        raise RuntimeError("viewer.js must not contain '<script', '</script' or '<!--' (it is inlined in a script)")
    return js


def script_hash() -> str:
    """The CSP source (``'sha256-...'``) of the viewer's inline script, as :func:`viewer_assets` writes it."""
    digest = hashlib.sha256(viewer_js().encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


def content_security_policy(scripts: bool = True) -> str:
    """A policy for a page of inline figures and viewers: no fetch of any kind (no network, no file), images only
    from ``data:``/``blob:`` URLs (the PNG export), and, when ``scripts``, only the viewer's own script."""
    script_src = script_hash() if scripts else "'none'"
    return (
        f"default-src 'none'; script-src {script_src}; style-src 'unsafe-inline'; img-src data: blob:; "
        "font-src 'none'; connect-src 'none'; base-uri 'none'; form-action 'none'"
    )


def viewer_assets() -> dict[str, str]:
    """``{"css": "<style>...</style>", "js": "<script>...</script>"}``: include each once per page (the CSS in the
    head, the script after the viewers or anywhere: it waits for the document)."""
    return {
        "css": f'<style class="attnlab-viewer-css">\n{viewer_css()}</style>',
        "js": f"<script>{viewer_js()}</script>",
    }


# --------------------------------------------------------------------------------------------------- HTML


def viewer_fragment(payloads: Any, *, element_id: str | None = None) -> str:
    """The markup of one viewer (its root ``<div>`` with the payloads as JSON), without the JS and CSS.

    ``element_id``: the root's id (default: a random unique one); it must be unique on the page.
    """
    checked = check_payloads(payloads)
    root_id = _element_id(element_id)
    data = json_for_script(checked)
    return (
        f'<div class="attnlab-viewer" id="{root_id}" data-attnlab-viewer="1">\n'
        f'<script type="application/json" class="attnlab-viewer-data">{data}</script>\n'
        '<noscript><p class="av-noscript">The attention viewer needs JavaScript.</p></noscript>\n'
        "</div>"
    )


def viewer_html(
    payloads: Any,
    *,
    standalone: bool = True,
    title: str | None = None,
    element_id: str | None = None,
    assets: bool = True,
) -> str:
    """The attention viewer for ``payloads`` (one payload dict or a list of them) as HTML.

    ``standalone``: a whole document (``<!DOCTYPE html>``, a CSP that forbids any fetch, ``title`` in the head and
    as a heading; default: the first payload's title); else a fragment to embed in a page: the viewer's root
    and, when ``assets``, its CSS and JS (include the assets once per page: a report passes ``assets=False``
    and adds :func:`viewer_assets` itself). ``element_id``: the root's id (default: a random unique one).
    """
    checked = check_payloads(payloads)
    fragment = viewer_fragment(checked, element_id=element_id)
    parts = viewer_assets()
    if not standalone:
        return f"{parts['css']}\n{fragment}\n{parts['js']}" if assets else fragment
    if title is not None and not isinstance(title, str):
        raise TypeError(f"title: expected a str or None, got {type(title).__name__}")
    heading = html.escape(title if title is not None else checked[0]["title"] or "Attention")
    csp = html.escape(content_security_policy(scripts=True), quote=True)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="generator" content="attnlab viewer">\n'
        f"<title>{heading}</title>\n"
        "<style>body { margin: 1.5rem; font: 15px/1.5 system-ui, sans-serif; color: #1d2330; }"
        " h1 { font-size: 1.3rem; margin: 0 0 1rem; }</style>\n"
        f"{parts['css']}\n</head>\n<body>\n<h1>{heading}</h1>\n{fragment}\n{parts['js']}\n</body>\n</html>\n"
    )


def _element_id(element_id: str | None) -> str:
    if element_id is None:
        return f"attnlab-viewer-{uuid.uuid4().hex[:12]}"
    if not isinstance(element_id, str) or not element_id or any(c.isspace() or c in "\"'<>&" for c in element_id):
        raise ValueError(f"element_id: expected a non-empty id without spaces, quotes, <, > or &, got {element_id!r}")
    return element_id


class AttentionView:
    """Attention maps to look at: in Jupyter (``_repr_html_``), or saved as one standalone HTML file.

    >>> view = AttentionView(viewer_payload("demo", ["a", "b"], ["a", "b"], [[1.0, 0.0], [0.5, 0.5]]))
    >>> view.save("attention.html")  # doctest: +SKIP
    """

    def __init__(self, payloads: Any, *, title: str | None = None) -> None:
        self.payloads = check_payloads(payloads)
        if title is not None and not isinstance(title, str):
            raise TypeError(f"title: expected a str or None, got {type(title).__name__}")
        self.title = title

    def __repr__(self) -> str:
        titles = ", ".join(repr(p["title"]) for p in self.payloads)
        return f"AttentionView([{titles}])"

    def _repr_html_(self) -> str:
        """A fragment with its own CSS and JS (several views in one notebook each get their own root)."""
        return viewer_html(self.payloads, standalone=False)

    def to_html(self) -> str:
        """The standalone page."""
        return viewer_html(self.payloads, standalone=True, title=self.title)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the standalone page to ``path`` atomically; returns the path (a folder at ``path`` is a
        ValueError: it is never replaced)."""
        path = check_file_path(path, "--out", "attention.html")
        text = self.to_html()
        with atomic_write(path) as tmp:
            Path(tmp).write_text(text, encoding="utf-8")
        return path


__all__ = [
    "AttentionView",
    "check_payload",
    "check_payloads",
    "content_security_policy",
    "json_for_script",
    "viewer_assets",
    "viewer_fragment",
    "viewer_html",
]
