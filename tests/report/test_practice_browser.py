"""The practice page in a real browser (Debian's chromium driven by Playwright, opened from file://).

Flashcards turn over and back; clicking a word in the pronoun exercise records the choice once and reveals the
heads, whose counts and weights are the page data's; hostile text from a results.json stays text; nothing is
fetched and nothing is logged to the console.

These tests never skip: without /usr/bin/chromium they fail and say how to install it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from attnlab.models import Encoder
from attnlab.report.flashcards import DECKS
from attnlab.report.practice import load_results, pronoun_exercise, write_practice

EVIL = "</script><img src=x onerror=alert(1)>"
N_CARDS = sum(len(d.cards) for d in DECKS)

# Installed before the page's own script: counts every <img> ever inserted and every alert.
WATCH = """
window.__imgs = 0; window.__alerts = 0;
new MutationObserver(function (records) {
  records.forEach(function (r) { r.addedNodes.forEach(function (n) {
    if (n.nodeType === 1 && (n.tagName === 'IMG' || (n.querySelector && n.querySelector('img')))) window.__imgs++;
  }); });
}).observe(document, {childList: true, subtree: true});
window.alert = function () { window.__alerts++; };
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, dict]:
    """The page built from a results.json with hostile text and the report's chosen head; and its exercise data."""
    folder = tmp_path_factory.mktemp("practice")
    results = {
        "scaling": {"claim": EVIL, "held": True, "metrics": {"variance_slope": 0.98765, EVIL: 1}, "seconds": 1.0},
        "pronoun": {
            "claim": "c",
            "held": False,
            "metrics": {"pretrained/best_head": "L4H7", "pretrained/best_head_heldout_accuracy": 0.5},
            "seconds": 1.0,
        },
    }
    (folder / "results.json").write_text(json.dumps(results), encoding="utf-8")
    loaded = load_results(folder / "results.json")
    encoder = Encoder.from_pretrained()
    path = write_practice(folder / "practice.html", loaded, folder / "results.json", encoder=encoder)
    return path, pronoun_exercise(encoder, loaded)


class Watched:
    """The page with its console messages, page errors, dialogs and requests recorded; non-file requests fail."""

    def __init__(self, browser, url: str) -> None:
        self.context = browser.new_context()
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.blocked: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type in ("error", "warning") else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", lambda d: (self.errors.append(f"dialog {d.message}"), d.dismiss()))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.context.route("**/*", self._route)
        self.page.add_init_script(WATCH)
        self.page.goto(url)
        self.page.wait_for_selector("body[data-practice-ready='true']", timeout=15_000)

    def _route(self, route) -> None:
        if route.request.url.split(":", 1)[0] == "file":
            route.continue_()
        else:
            self.blocked.append(route.request.url)
            route.abort()

    def assert_clean(self) -> None:
        assert self.errors == []
        assert self.blocked == []
        assert {u.split(":", 1)[0] for u in self.requests} == {"file"}, self.requests
        assert len(self.requests) == 1  # the page itself, nothing else
        assert self.page.evaluate("[window.__imgs, window.__alerts, document.querySelectorAll('img').length]") == [
            0,
            0,
            0,
        ]


@pytest.fixture
def page(browser, built):
    w = Watched(browser, built[0].as_uri())
    yield w
    w.context.close()


def shown(locator) -> bool:
    return locator.evaluate("e => !e.hidden && e.getClientRects().length > 0")


def test_flashcards_turn_over_and_back(page):
    p = page.page
    assert p.locator(".fc-card").count() == N_CARDS
    assert p.locator("#fc-count").text_content() == f"0 of {N_CARDS} cards turned"
    card = p.locator("#card-sqrt-dk")
    question, answer = card.locator(".fc-question"), card.locator(".fc-answer")
    assert not shown(answer) and question.get_attribute("aria-expanded") == "false"
    question.click()
    assert shown(answer) and question.get_attribute("aria-expanded") == "true"
    assert "variance_slope = 0.9877" in answer.text_content()  # the results' number, 4 significant digits
    assert p.locator("#fc-count").text_content() == f"1 of {N_CARDS} cards turned"
    question.click()
    assert not shown(answer) and question.get_attribute("aria-expanded") == "false"
    assert p.locator("#fc-count").text_content() == f"0 of {N_CARDS} cards turned"
    p.locator("#fc-show-all").click()
    assert all(shown(a) for a in p.locator(".fc-answer").all())
    assert p.locator("#fc-count").text_content() == f"{N_CARDS} of {N_CARDS} cards turned"
    p.locator("#fc-hide-all").click()
    assert not any(shown(a) for a in p.locator(".fc-answer").all())
    # the hostile claim and metric key, shown as text
    p.locator("#card-sqrt-dk .fc-question").click()
    assert EVIL in p.locator("#card-sqrt-dk .fc-claim").text_content()
    page.assert_clean()


def agree(s: dict, k: int, w: int) -> bool:
    """The page's rule: head k agrees with word w when w outweighs every competing candidate."""
    if w in s["candidates"]:
        return s["pick"][k] == w
    return all(s["weights"][w][k] > s["weights"][c][k] for c in s["candidates"])


def test_a_wrong_choice_is_recorded_once_and_reveals_the_heads(page, built):
    p, data = page.page, built[1]
    s = data["sentences"][0]  # the animal / street ... tired pair
    wrong = next(c for c in s["candidates"] if c != s["referent"])
    root = p.locator("#sentence-0")
    assert not shown(root.locator(".px-reveal")) and root.get_attribute("data-choice") is None
    root.locator(f"button.px-word[data-word='{wrong}']").click()
    assert root.get_attribute("data-choice") == str(wrong) and root.get_attribute("data-correct") == "false"
    box = root.locator(".px-reveal")
    assert shown(box)
    assert f"here \u201cit\u201d is the {s['words'][s['referent']]}" in box.text_content()
    n = data["layers"] * data["heads"]
    assert box.get_attribute("data-agree-answer") == str(sum(agree(s, k, s["referent"]) for k in range(n)))
    assert box.get_attribute("data-agree-choice") == str(sum(agree(s, k, wrong) for k in range(n)))
    heads = box.locator("button.px-head")
    assert heads.count() == n
    classes = heads.evaluate_all("bs => bs.map(b => b.className)")
    for k, cls in enumerate(classes):
        assert ("px-yes" in cls) == agree(s, k, s["referent"]) and ("px-you" in cls) == agree(s, k, wrong)
        assert ("px-report" in cls) == (k == 3 * 12 + 6)  # L4H7, from the results
    # the strip opens on the report's head; clicking another head shows its weights
    strip = box.locator(".px-strip")
    assert strip.get_attribute("data-head") == str(3 * 12 + 6)
    heads.nth(5).click()
    assert strip.get_attribute("data-head") == "5" and heads.nth(5).get_attribute("aria-pressed") == "true"
    numbers = strip.locator(".px-num").all_text_contents()
    assert numbers == [f"{row[5]:.2f}" for row in s["weights"]]
    box.locator("button.px-mean").click()
    assert strip.get_attribute("data-head") == "mean"
    # the first click was the answer: another click changes nothing
    assert root.locator(f"button.px-word[data-word='{s['referent']}']").is_disabled()
    root.locator(f"button.px-word[data-word='{s['referent']}']").click(force=True)
    assert root.get_attribute("data-choice") == str(wrong)
    assert p.locator("#px-score").get_attribute("data-answered") == "1"
    assert p.locator("#px-score").get_attribute("data-right") == "0"
    page.assert_clean()


def test_right_and_other_choices_and_the_score(page, built):
    p, data = page.page, built[1]
    s1 = data["sentences"][1]
    p.locator(f"#sentence-1 button.px-word[data-word='{s1['referent']}']").click()
    assert p.locator("#sentence-1").get_attribute("data-correct") == "true"
    assert "Right:" in p.locator("#sentence-1 .px-feedback").text_content()
    # a word that is no candidate ("because"): heads agree when it outweighs both nouns
    s2 = data["sentences"][2]
    because = s2["words"].index("because")
    p.locator(f"#sentence-2 button.px-word[data-word='{because}']").click()
    n = data["layers"] * data["heads"]
    box = p.locator("#sentence-2 .px-reveal")
    assert box.get_attribute("data-agree-choice") == str(sum(agree(s2, k, because) for k in range(n)))
    score = p.locator("#px-score")
    assert (score.get_attribute("data-answered"), score.get_attribute("data-right")) == ("2", "1")
    # answer the rest (all right): the summary names the best head on these sentences, and says it flatters
    for i, s in enumerate(data["sentences"]):
        if i not in (1, 2):
            p.locator(f"#sentence-{i} button.px-word[data-word='{s['referent']}']").click()
    total = len(data["sentences"])
    assert score.get_attribute("data-answered") == str(total)
    assert score.get_attribute("data-right") == str(total - 1)
    best = max(sum(s["pick"][k] == s["referent"] for s in data["sentences"]) for k in range(n))
    text = score.text_content()
    assert f"with {best} of {total}, picked after seeing the answers" in text
    report = sum(s["pick"][3 * 12 + 6] == s["referent"] for s in data["sentences"])
    assert f"The report's head L4H7: {report} of {total}." in text
    page.assert_clean()
