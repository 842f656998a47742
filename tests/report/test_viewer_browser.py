"""The attention viewer in a real browser (Debian's chromium driven by Playwright, opened from file://).

A page with two viewers (one self-attention map of 2 layers x 3 heads, one cross-attention map plus a second
self-attention map) whose tokens include markup: every view draws the data's weights, the controls redraw with
the selected layer and head, hover and click-lock work, the exports download the right bytes, nothing is
fetched, no token becomes markup, and the two viewers do not touch each other.

These tests never skip: without /usr/bin/chromium they fail and say how to install it.
"""

from __future__ import annotations

import json
import struct
import sys
import types
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch

from attnlab.experiments.base import ExperimentConfig, ExperimentSpec, viewer_payload
from attnlab.report.viewer import content_security_policy, viewer_assets, viewer_fragment, viewer_html

EVIL = "</script><img src=x onerror=alert(1)>"
QUOTES = "\"'&<b>"
SELF_TOKENS = ["[CLS]", EVIL, "the", QUOTES, "[SEP]"]  # T = S = 5
SRC_TOKENS = ["Das", "Haus", EVIL, "."]  # S = 4
TGT_TOKENS = ["The", QUOTES, "house"]  # T = 3
SVG_NS = "{http://www.w3.org/2000/svg}"
TOL = 1e-5  # the viewer writes opacities rounded to 5 decimals

# Installed by the page before any of its own scripts: records every <img> ever inserted and every alert.
WATCH = """
window.__imgs = 0; window.__alerts = 0;
new MutationObserver(function (records) {
  records.forEach(function (r) { r.addedNodes.forEach(function (n) {
    if (n.nodeType === 1 && (n.tagName === 'IMG' || (n.querySelector && n.querySelector('img')))) window.__imgs++;
  }); });
}).observe(document, {childList: true, subtree: true});
window.alert = function () { window.__alerts++; };
"""


def random_weights(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(3 * torch.randn(*shape, generator=g), dim=-1)


SELF_A = viewer_payload("self-attention A", SELF_TOKENS, SELF_TOKENS, random_weights((2, 3, 5, 5), 0))
CROSS_B = viewer_payload("cross B", TGT_TOKENS, SRC_TOKENS, random_weights((3, 4), 1), kind="cross")
SELF_B2 = viewer_payload("self B2", ["x", "y"], ["x", "y"], random_weights((1, 2, 2, 2), 2))


@dataclass(frozen=True)
class MapsConfig(ExperimentConfig):
    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {"quick": {}, "full": {}}


@pytest.fixture(scope="module")
def two_viewers(tmp_path_factory) -> Path:
    """A page like the report's: two viewers, the JS and CSS once, the report's CSP."""
    assets = viewer_assets()
    csp = content_security_policy(scripts=True)
    page = (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
        f"{assets['css']}</head><body><h1>two viewers</h1>"
        f"{viewer_fragment([SELF_A], element_id='viewer-a')}"
        f"<p>between</p>{viewer_fragment([CROSS_B, SELF_B2], element_id='viewer-b')}"
        f"{assets['js']}</body></html>"
    )
    path = tmp_path_factory.mktemp("viewer") / "two.html"
    path.write_text(page, encoding="utf-8")
    return path


class Watched:
    """A page with its console errors, page errors, dialogs and requests recorded."""

    def __init__(self, browser, url: str) -> None:
        self.context = browser.new_context(accept_downloads=True)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.requests: list[str] = []
        self.blocked: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type in ("error", "warning") else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", self._dialog)
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.context.route("**/*", self._route)
        self.page.add_init_script(WATCH)
        self.page.goto(url)
        self.page.wait_for_function(
            "document.querySelectorAll('.attnlab-viewer').length > 0 && "
            "Array.from(document.querySelectorAll('.attnlab-viewer'))"
            ".every(r => r.getAttribute('data-attnlab-ready') === 'true')",
            timeout=15_000,
        )

    def _dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def _route(self, route) -> None:
        url = route.request.url
        if url.split(":", 1)[0] in ("file", "data", "blob"):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()

    def assert_clean(self) -> None:
        assert self.errors == []
        assert self.dialogs == []
        assert self.blocked == []
        assert {u.split(":", 1)[0] for u in self.requests} <= {"file", "data", "blob"}, self.requests
        assert self.page.evaluate("[window.__imgs, window.__alerts, document.querySelectorAll('img').length]") == [
            0,
            0,
            0,
        ]

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def page(browser, two_viewers):
    w = Watched(browser, two_viewers.as_uri())
    yield w
    w.close()


# --- reading the drawn state -------------------------------------------------------------------------------

LINES = """(root) => Array.from(root.querySelectorAll('.av-view-head line.av-line')).map(l => ({
  q: +l.dataset.q, k: +l.dataset.k, head: +l.dataset.head, opacity: +l.getAttribute('stroke-opacity'),
  shown: l.getAttribute('display') !== 'none'}))"""
CELLS = """(root, view) => Array.from(root.querySelectorAll('.av-view-' + view + ' rect.av-cell')).map(c => ({
  q: +c.dataset.q, k: +c.dataset.k, opacity: +c.getAttribute('fill-opacity'),
  layer: c.closest('.av-thumb') ? +c.closest('.av-thumb').dataset.layer : null,
  head: c.closest('.av-thumb') ? +c.closest('.av-thumb').dataset.head : null}))"""


def lines(root) -> list[dict[str, Any]]:
    return root.evaluate(LINES)


def cells(root, view: str) -> list[dict[str, Any]]:
    return root.evaluate(CELLS, view)


def assert_matrix(items: list[dict[str, Any]], matrix: list[list[float]]) -> None:
    """Every drawn item (line or cell) has the opacity of its (q, k) entry, and every entry is drawn once."""
    assert sorted((i["q"], i["k"]) for i in items) == [
        (q, k) for q in range(len(matrix)) for k in range(len(matrix[0]))
    ]
    for i in items:
        assert abs(i["opacity"] - matrix[i["q"]][i["k"]]) <= TOL, i


def mean_over_heads(heads: list[list[list[float]]]) -> list[list[float]]:
    return torch.tensor(heads, dtype=torch.float64).mean(0).tolist()


# --- tests -------------------------------------------------------------------------------------------------


def test_every_view_of_both_viewers_renders_the_data(page):
    a, b = page.page.locator("#viewer-a"), page.page.locator("#viewer-b")

    # viewer A opens on layer 0, all 3 heads: 3 x 5 x 5 lines, one color per head
    drawn = lines(a)
    assert len(drawn) == 3 * 5 * 5
    for h in range(3):
        assert_matrix([d for d in drawn if d["head"] == h], SELF_A["layers"][0][h])
    colors = a.evaluate("r => Array.from(r.querySelectorAll('line.av-line')).map(l => l.getAttribute('stroke'))")
    assert len(set(colors)) == 3
    # model view: every layer and head, each a 5 x 5 heatmap of its own weights
    model = cells(a, "model")
    assert len(model) == 2 * 3 * 5 * 5
    for l in range(2):
        for h in range(3):
            assert_matrix([c for c in model if (c["layer"], c["head"]) == (l, h)], SELF_A["layers"][l][h])
    # heatmap: the mean over heads for "all"
    assert_matrix(cells(a, "heatmap"), mean_over_heads(SELF_A["layers"][0]))

    # viewer B (cross-attention, 3 target x 4 source tokens, one head): rows are the queries, columns the keys
    assert_matrix(lines(b), CROSS_B["layers"][0][0])
    assert_matrix(cells(b, "heatmap"), CROSS_B["layers"][0][0])
    assert len(cells(b, "model")) == 3 * 4
    texts = b.evaluate(
        """r => [Array.from(r.querySelectorAll('.av-view-head .av-tokens-q text')).map(t => t.textContent),
                 Array.from(r.querySelectorAll('.av-view-head .av-tokens-k text')).map(t => t.textContent),
                 Array.from(r.querySelectorAll('.av-view-heatmap .av-row-label')).map(t => t.textContent),
                 Array.from(r.querySelectorAll('.av-view-heatmap .av-col-label')).map(t => t.textContent)]"""
    )
    assert texts == [TGT_TOKENS, SRC_TOKENS, TGT_TOKENS, SRC_TOKENS]
    assert a.locator(".av-layer option").count() == 2 and a.locator(".av-head option").count() == 4  # all, 0, 1, 2
    page.assert_clean()


def test_switching_layer_and_head_redraws_with_that_heads_weights(page):
    a = page.page.locator("#viewer-a")
    opacity_13 = []
    for layer in range(2):
        for head in range(3):
            a.locator(".av-layer").select_option(str(layer))
            a.locator(".av-head").select_option(str(head))
            drawn = lines(a)
            assert len(drawn) == 25 and {d["head"] for d in drawn} == {head}
            expected = SELF_A["layers"][layer][head]
            assert_matrix(drawn, expected)
            assert_matrix(cells(a, "heatmap"), expected)
            selected = a.evaluate("r => Array.from(r.querySelectorAll('.av-thumb.av-selected')).map(g => "
                                  "[+g.dataset.layer, +g.dataset.head])")  # fmt: skip
            assert selected == [[layer, head]]
            line = a.locator(".av-view-head line.av-line[data-q='1'][data-k='3']")
            opacity_13.append(float(line.get_attribute("stroke-opacity")))
            assert abs(opacity_13[-1] - expected[1][3]) <= TOL
    assert len({round(o, 4) for o in opacity_13}) == 6  # six different heads, six different weights
    a.locator(".av-head").select_option("all")
    assert len(lines(a)) == 75
    assert_matrix(cells(a, "heatmap"), mean_over_heads(SELF_A["layers"][1]))
    page.assert_clean()


def test_clicking_a_model_view_thumbnail_selects_its_layer_and_head(page):
    a = page.page.locator("#viewer-a")
    a.locator(".av-tab[data-view='model']").click()
    assert a.locator(".av-view-model").is_visible() and not a.locator(".av-view-head").is_visible()

    a.locator(".av-thumb[data-layer='1'][data-head='2']").click()

    assert a.locator(".av-layer").input_value() == "1" and a.locator(".av-head").input_value() == "2"
    assert_matrix(lines(a), SELF_A["layers"][1][2])
    assert_matrix(cells(a, "heatmap"), SELF_A["layers"][1][2])
    a.locator(".av-tab[data-view='heatmap']").click()
    assert a.locator(".av-view-heatmap").is_visible() and not a.locator(".av-view-model").is_visible()
    page.assert_clean()


def test_hover_shows_one_tokens_links_and_click_locks_them(page):
    p = page.page
    a = p.locator("#viewer-a")
    a.locator(".av-head").select_option("0")
    query2 = a.locator(".av-view-head g.av-token[data-side='q'][data-index='2']")
    key1 = a.locator(".av-view-head g.av-token[data-side='k'][data-index='1']")
    w = SELF_A["layers"][0][0]

    def shown() -> set[tuple[int, int]]:
        return {(d["q"], d["k"]) for d in lines(a) if d["shown"]}

    def key_shades() -> list[float]:
        return a.evaluate("r => Array.from(r.querySelectorAll('.av-tokens-k .av-token-bg'))"
                          ".map(b => +b.getAttribute('fill-opacity'))")  # fmt: skip

    everything = {(q, k) for q in range(5) for k in range(5)}
    assert shown() == everything
    query2.hover()
    assert shown() == {(2, k) for k in range(5)}
    assert all(abs(s - e) <= TOL for s, e in zip(key_shades(), w[2], strict=True))  # keys shaded by weight
    p.locator("h1").hover()  # away: every link again
    assert shown() == everything

    key1.hover()
    assert shown() == {(q, 1) for q in range(5)}
    p.locator("h1").hover()

    query2.click()  # lock
    p.locator("h1").hover()
    assert shown() == {(2, k) for k in range(5)}
    assert a.locator(".av-svg-head").get_attribute("data-locked") == "true"
    key1.hover()  # hovering another token does not move a lock
    assert shown() == {(2, k) for k in range(5)}
    a.locator(".av-head").select_option("1")  # the lock survives a change of head, with the new head's lines
    assert shown() == {(2, k) for k in range(5)}
    query2.click()  # unlock
    p.locator("h1").hover()
    assert shown() == everything
    assert a.locator(".av-svg-head").get_attribute("data-locked") == "false"
    page.assert_clean()


def download(page: Watched, root, fmt: str):
    with page.page.expect_download() as info:
        root.locator(f".av-export[data-format='{fmt}']").click()
    d = info.value
    return d.suggested_filename, Path(d.path()).read_bytes(), d.url


def test_exports_download_svg_png_and_json(page):
    a = page.page.locator("#viewer-a")
    a.locator(".av-layer").select_option("1")
    a.locator(".av-head").select_option("2")

    name, data, url = download(page, a, "svg")
    assert name == "self-attention-a-head-l1-h2.svg" and url.startswith("blob:")
    svg = ET.fromstring(data)
    assert svg.tag == f"{SVG_NS}svg"
    exported = [
        (int(x.get("data-q")), int(x.get("data-k")), float(x.get("stroke-opacity"))) for x in svg.iter(f"{SVG_NS}line")
    ]
    assert len(exported) == 25
    assert all(abs(o - SELF_A["layers"][1][2][q][k]) <= TOL for q, k, o in exported)
    token_texts = [t.text for t in svg.iter(f"{SVG_NS}text") if t.get("class") == "av-token-text"]
    assert token_texts == SELF_TOKENS * 2  # the markup tokens are text in the SVG too

    a.locator(".av-tab[data-view='heatmap']").click()
    name, data, _ = download(page, a, "svg")
    assert name.endswith("-heatmap-l1-h2.svg")
    assert sum(1 for r in ET.fromstring(data).iter(f"{SVG_NS}rect") if r.get("class") == "av-cell") == 25

    name, data, url = download(page, a, "png")
    assert name == "self-attention-a-heatmap-l1-h2.png" and url.startswith("blob:")
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])  # IHDR
    svg_size = a.locator(".av-svg-heatmap").evaluate("s => [+s.getAttribute('width'), +s.getAttribute('height')]")
    assert (width, height) == (2 * svg_size[0], 2 * svg_size[1])  # drawn at twice the size

    name, data, _ = download(page, a, "json")
    assert name == "self-attention-a.json"
    assert json.loads(data) == SELF_A
    page.assert_clean()


def test_markup_in_tokens_stays_text(page, two_viewers):
    p = page.page
    html = two_viewers.read_text(encoding="utf-8")
    assert EVIL not in html and QUOTES not in html  # escaped inside the JSON

    for root in (p.locator("#viewer-a"), p.locator("#viewer-b")):
        texts = root.evaluate("r => Array.from(r.querySelectorAll('svg text')).map(t => t.textContent)")
        assert EVIL in texts and QUOTES in texts
        assert root.evaluate("r => r.querySelectorAll('svg b, svg img, svg script, b, img').length") == 0
    evil_node = p.locator("#viewer-a .av-view-head .av-tokens-q text").nth(1)
    assert evil_node.evaluate("t => [t.textContent, t.childNodes.length, t.firstChild.nodeType]") == [EVIL, 1, 3]
    tips = p.locator("#viewer-b .av-view-heatmap rect.av-cell title").all_text_contents()
    assert f"{QUOTES} \u2192 {EVIL}: {CROSS_B['layers'][0][0][1][2]:.4f}" in tips
    p.locator("#viewer-a .av-view-head g.av-token[data-side='q'][data-index='1']").click()
    assert (
        p.locator("#viewer-a .av-readout").text_content()
        == f"Locked on query 1 \u201c{EVIL}\u201d (click it again to unlock)"
    )
    assert p.evaluate("document.scripts.length") == 3  # two JSON blocks and the viewer's script, nothing injected
    page.assert_clean()


def test_two_viewers_do_not_collide(page):
    p = page.page
    a, b = p.locator("#viewer-a"), p.locator("#viewer-b")

    def state(root) -> dict[str, Any]:
        return {
            "lines": lines(root),
            "heatmap": cells(root, "heatmap"),
            "selects": [root.locator(s).input_value() for s in (".av-payload", ".av-layer", ".av-head")],
            "visible": [root.locator(f".av-view-{v}").is_visible() for v in ("head", "model", "heatmap")],
        }

    b_before = state(b)
    a.locator(".av-head").select_option("1")
    a.locator(".av-tab[data-view='model']").click()
    a.locator(".av-view-model .av-thumb[data-layer='1'][data-head='0']").click()
    assert state(b) == b_before

    a_before = state(a)
    b.locator(".av-payload").select_option("1")  # B's second map: self-attention, 1 layer x 2 heads
    b.locator(".av-head").select_option("1")
    b.locator(".av-view-head g.av-token[data-side='q'][data-index='0']").click()
    assert_matrix(lines(b), SELF_B2["layers"][0][1])
    assert state(a) == a_before

    ids = p.evaluate("Array.from(document.querySelectorAll('[id]')).map(e => e.id)")
    assert ids == ["viewer-a", "viewer-b"]  # no id inside a viewer, so none can clash
    page.assert_clean()


def test_standalone_file_with_its_csp_runs_and_exports(browser, tmp_path):
    words = [f"w{i}" for i in range(40)]
    long = viewer_payload("long", words, words, random_weights((1, 1, 40, 40), 3))
    path = tmp_path / "standalone.html"
    path.write_text(viewer_html([CROSS_B, SELF_A, long], title="standalone"), encoding="utf-8")
    w = Watched(browser, path.as_uri())
    try:
        root = w.page.locator(".attnlab-viewer")
        assert_matrix(lines(root), CROSS_B["layers"][0][0])
        name, data, _ = download(w, root, "png")  # drawing the data: SVG is allowed by the CSP
        assert name == "cross-b-head-l0-h0.png"
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        root.locator(".av-payload").select_option("1")
        assert len(lines(root)) == 75
        # 40 tokens: the model view's thumbnail pools 2 x 2 blocks (at most 32 cells a side)
        root.locator(".av-payload").select_option("2")
        assert_matrix(lines(root), long["layers"][0][0])
        pooled = torch.tensor(long["layers"][0][0], dtype=torch.float64).view(20, 2, 20, 2).mean((1, 3))  # (20, 20)
        drawn = [{**c, "q": c["q"] // 2, "k": c["k"] // 2} for c in cells(root, "model")]
        assert_matrix(drawn, pooled.tolist())
        w.assert_clean()
    finally:
        w.close()


def test_report_page_embeds_a_working_viewer(browser, tmp_path, monkeypatch):
    """A report whose experiment hands the viewer a payload: the viewer starts under the report's CSP."""
    from attnlab import experiments
    from attnlab.report import build_report

    def run(cfg):
        return {"held": True, "metrics": {}, "setup": "s", "summary": "s", "data": {"viewer": [SELF_A, CROSS_B]}}

    def plot(result):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(2, 2))
        ax.imshow(result["data"]["viewer"][0]["layers"][0][0])  # an inline PNG inside the SVG: img-src data:
        return {"map": fig}

    module = types.ModuleType("attnlab.experiments._fake_viewer")
    module.SPEC = ExperimentSpec(name="maps", claim="c", source="s", config_cls=MapsConfig, run=run, plot=plot)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setattr(experiments, "_MODULES", {"maps": "_fake_viewer"})
    index = build_report(tmp_path, progress=False)

    w = Watched(browser, index.as_uri())
    try:
        root = w.page.locator("section#maps .attnlab-viewer")
        assert root.count() == 1
        assert len(lines(root)) == 75
        assert w.page.locator("section#maps figure svg image").count() == 1
        assert w.page.evaluate("document.querySelector('section#maps figure svg image').getBBox().width") > 0
        w.assert_clean()
    finally:
        w.close()
