"""The report: one section per experiment, the results.json contract, self-contained HTML, replot, errors.

Real experiments take minutes; these tests register tiny fake ones in place of the registry.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
import types
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest

from attnlab import experiments
from attnlab.cli import main
from attnlab.experiments.base import ExperimentConfig, ExperimentSpec, Words
from attnlab.report import ExperimentsFailed, build_report, replot


@dataclass(frozen=True)
class FakeConfig(ExperimentConfig):
    points: int = 8
    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {"quick": {"points": 3}, "full": {}}


class FakeExperiment:
    """A fake experiment that counts its runs and plots; ``held`` fixes its verdict, ``fail`` makes it raise."""

    def __init__(self, name: str, held: bool | None = True, claim: str = "", fail: bool = False) -> None:
        self.runs = 0
        self.plots = 0
        self.held = held
        self.fail = fail
        self.spec = ExperimentSpec(
            name=name,
            claim=claim or f"{name} behaves as the chapter says",
            source="Chapter 1, section 2",
            config_cls=FakeConfig,
            run=self.run,
            plot=self.plot,
            title=f"The {name} experiment",
        )

    def run(self, cfg: FakeConfig) -> dict[str, Any]:
        self.runs += 1
        if self.fail:
            raise RuntimeError("kaput: the fake experiment broke")
        xs = list(range(cfg.points))
        return {
            "held": self.held,
            "metrics": {"slope": 2.0, "points": cfg.points},
            "setup": "A line through the origin.",
            "summary": "The slope is two.",
            "data": {"x": xs, "y": [2 * x for x in xs]},
        }

    def plot(self, result: dict[str, Any]) -> dict[str, Any]:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        self.plots += 1
        fig, ax = plt.subplots(figsize=(3, 2))
        ax.plot(result["data"]["x"], result["data"]["y"], "o-")
        ax.set_title("y = 2x")
        return {"line": fig}


def register(monkeypatch: pytest.MonkeyPatch, *fakes: FakeExperiment) -> None:
    """Replace the registry with the fakes, each as a module ``attnlab.experiments._fake_<i>``."""
    modules = {}
    for i, fake in enumerate(fakes):
        module_name = f"_fake_{i}"
        module = types.ModuleType(f"attnlab.experiments.{module_name}")
        module.SPEC = fake.spec
        monkeypatch.setitem(sys.modules, module.__name__, module)
        modules[fake.spec.name] = module_name
    monkeypatch.setattr(experiments, "_MODULES", modules)


def section_ids(html: str) -> list[str]:
    return re.findall(r'<section[^>]*\bid="([^"]+)"', html)


def test_report_sections_schema_and_self_contained(tmp_path, monkeypatch):
    alpha, beta = FakeExperiment("alpha", held=True), FakeExperiment("beta-gamma", held=None)
    register(monkeypatch, alpha, beta)

    index = build_report(tmp_path, profile="quick")

    html = index.read_text(encoding="utf-8")
    assert index == tmp_path / "index.html"
    assert section_ids(html) == ["alpha", "beta-gamma"]
    assert 'href="#beta-gamma"' in html  # the summary table links to the section
    assert "did not hold" not in re.sub(r"<header.*?</header>", "", html, flags=re.DOTALL)
    assert "not measurable" in html

    results = json.loads((tmp_path / "results.json").read_text())
    assert list(results) == ["alpha", "beta-gamma"]
    for entry in results.values():
        assert set(entry) == {"claim", "held", "metrics", "seconds"}
        assert isinstance(entry["seconds"], float)
    assert results["alpha"]["held"] is True and results["beta-gamma"]["held"] is None
    assert results["alpha"]["metrics"] == {"slope": 2.0, "points": 3}  # the quick profile
    assert results["alpha"]["claim"] == "alpha behaves as the chapter says"

    # the figures are inlined, without prolog, with ids made unique across the two copies of matplotlib's ids
    assert html.count("<svg") == 2
    assert "<?xml" not in html and "<!DOCTYPE svg" not in html
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids))
    for ref in re.findall(r'href="#([^"]+)"|url\(#([^)]+)\)', html):
        assert (ref[0] or ref[1]) in ids
    # nothing fetched at view time: no src/href to any network address
    assert not re.search(r"""\b(src|href)\s*=\s*["']?\s*(https?:)?//""", html, flags=re.IGNORECASE)
    assert "<link" not in html and "<script" not in html
    without_namespaces = re.sub(r'\bxmlns(:\w+)?="[^"]*"', "", html)
    assert "http://" not in without_namespaces and "https://" not in without_namespaces


def test_only_restricts_and_out_is_honoured(tmp_path, monkeypatch, capsys):
    alpha, beta = FakeExperiment("alpha"), FakeExperiment("beta")
    register(monkeypatch, alpha, beta)
    out = tmp_path / "custom" / "place"

    status = main(["report", "--only", "beta", "--out", str(out)])

    assert status == 0
    assert (alpha.runs, beta.runs) == (0, 1)
    assert section_ids((out / "index.html").read_text()) == ["beta"]
    assert list(json.loads((out / "results.json").read_text())) == ["beta"]
    assert (out / "beta" / "results.json").is_file() and (out / "beta" / "line.svg").is_file()
    assert not (out / "alpha").exists()
    assert str(out / "index.html") in capsys.readouterr().out


def test_replot_redraws_without_running(tmp_path, monkeypatch):
    alpha, beta = FakeExperiment("alpha"), FakeExperiment("beta", held=False)
    register(monkeypatch, alpha, beta)
    build_report(tmp_path)
    before = json.loads((tmp_path / "results.json").read_text())
    (tmp_path / "alpha" / "line.svg").unlink()
    (tmp_path / "index.html").unlink()

    assert main(["report", "--replot", "--out", str(tmp_path)]) == 0

    assert (alpha.runs, beta.runs) == (1, 1)  # nothing ran again
    assert (alpha.plots, beta.plots) == (2, 2)  # every figure was redrawn from the saved JSON
    assert (tmp_path / "alpha" / "line.svg").is_file()
    html = (tmp_path / "index.html").read_text()
    assert section_ids(html) == ["alpha", "beta"]
    assert "did not hold" in html
    assert json.loads((tmp_path / "results.json").read_text()) == before


def test_replot_of_an_empty_folder_is_a_usage_error(tmp_path, monkeypatch):
    register(monkeypatch, FakeExperiment("alpha"))
    with pytest.raises(ValueError, match="no experiment results"):
        replot(tmp_path)


def test_failing_experiment_becomes_error_section_and_nonzero_exit(tmp_path, monkeypatch, capsys):
    alpha, boom, omega = FakeExperiment("alpha"), FakeExperiment("boom", fail=True), FakeExperiment("omega")
    register(monkeypatch, alpha, boom, omega)

    status = main(["report", "--out", str(tmp_path)])

    assert status == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("attnlab: error:") and "boom" in err[-1]
    assert omega.runs == 1  # the build went on after the failure
    html = (tmp_path / "index.html").read_text()
    assert section_ids(html) == ["alpha", "boom", "omega"]
    boom_section = html.split('id="boom"')[1].split("</section>")[0]
    assert "kaput: the fake experiment broke" in boom_section
    assert 'class="badge error"' in boom_section and "<svg" not in boom_section
    assert html.split('id="omega"')[1].count("<svg") == 1
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["boom"]["held"] is None and results["boom"]["metrics"] == {}
    assert results["omega"]["held"] is True
    assert "RuntimeError" in (tmp_path / "boom" / "error.txt").read_text()

    # replot keeps the error section (the saved results have no result for boom) and fails the same way
    with pytest.raises(ExperimentsFailed) as info:
        replot(tmp_path)
    assert list(info.value.failed) == ["boom"]
    assert boom.runs == 1


def test_claim_is_html_escaped(tmp_path, monkeypatch):
    register(monkeypatch, FakeExperiment("xss", claim='<script>alert("x")</script> & more'))

    html = build_report(tmp_path).read_text()

    assert "<script" not in html
    assert "&lt;script&gt;alert(" in html and "&amp; more" in html
    claim = json.loads((tmp_path / "results.json").read_text())["xss"]["claim"]
    assert claim == '<script>alert("x")</script> & more'  # the JSON keeps the text as it is


class ViewerExperiment(FakeExperiment):
    """A fake whose result hands attention maps to the report's viewer (``data["viewer"]``)."""

    def __init__(self, name: str, payloads: Any) -> None:
        super().__init__(name)
        self.payloads = payloads

    def run(self, cfg: FakeConfig) -> dict[str, Any]:
        body = super().run(cfg)
        body["data"]["viewer"] = self.payloads
        return body


def test_sections_with_viewer_payloads_embed_a_viewer_and_the_script_once(tmp_path, monkeypatch):
    import base64
    import hashlib

    from attnlab.experiments.base import viewer_payload

    evil = "</script><img src=x onerror=alert(1)>"
    maps = [viewer_payload("m", ["a", evil], ["a", evil], [[[[1.0, 0.0], [0.25, 0.75]]]])]
    cross = [viewer_payload("c", ["x"], ["y", "z"], [[0.5, 0.5]], kind="cross")]
    bad = [{"title": "broken", "kind": "self", "query_tokens": ["a"], "key_tokens": ["a"], "layers": [[[[2.0]]]]}]
    register(
        monkeypatch,
        ViewerExperiment("maps", maps),
        FakeExperiment("plain"),
        ViewerExperiment("cross", cross),
        ViewerExperiment("broken", bad),
    )

    html = build_report(tmp_path).read_text()

    sections = {name: html.split(f'<section class="experiment" id="{name}">')[1].split("</section>")[0]
                for name in ("maps", "plain", "cross", "broken")}  # fmt: skip
    data = re.compile(r'<script type="application/json" class="attnlab-viewer-data">(.*?)</script>', re.DOTALL)
    assert 'id="attnlab-viewer-maps"' in sections["maps"] and json.loads(data.search(sections["maps"])[1]) == maps
    assert 'id="attnlab-viewer-cross"' in sections["cross"] and json.loads(data.search(sections["cross"])[1]) == cross
    assert "attnlab-viewer" not in sections["plain"]
    assert "attnlab-viewer" not in sections["broken"]  # a malformed payload: a message, and the report still builds
    assert "The attention viewer could not be built" in sections["broken"] and "weights in [0, 1]" in sections["broken"]
    assert html.count('class="attnlab-viewer"') == 2
    # the viewer's CSS and JS once per page; no token escapes its JSON; the CSP allows that one script only
    assert html.count('<style class="attnlab-viewer-css">') == 1
    scripts = re.findall(r"<script>(.*?)</script>", html, flags=re.DOTALL)
    assert len(scripts) == 1 and "window.attnlabViewer" in scripts[0]
    assert evil not in html and "<img" not in html
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
    assert f"script-src &#39;sha256-{digest}&#39;" in html
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids))
    # replot re-embeds the viewers from the saved results
    (tmp_path / "index.html").unlink()
    replotted = replot(tmp_path).read_text()
    assert json.loads(data.search(replotted.split('id="maps"')[1])[1]) == maps
    assert replotted.count('class="attnlab-viewer"') == 2


class WordyExperiment(FakeExperiment):
    """A fake with words (setup, summary, headline), two figures and a nested config: the report's layout."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        words = Words(
            setup=lambda cfg, r: f"Measured {cfg.points} points.",
            summary=lambda cfg, r: f"The slope is {r['metrics']['slope']:g}.",
            headline=lambda cfg, r: [("slope", r["metrics"]["slope"]), ("points", cfg.points)],
        )
        self.spec = dataclasses.replace(self.spec, words=words, main_figure="second", config_cls=NestedFakeConfig)

    def run(self, cfg: Any) -> dict[str, Any]:
        body = super().run(cfg)
        return {k: v for k, v in body.items() if k not in ("setup", "summary")}  # the words say them

    def plot(self, result: dict[str, Any]) -> dict[str, Any]:
        figs = super().plot(result)
        return {"first": figs["line"], "second": super().plot(result)["line"]}


@dataclass(frozen=True)
class Inner:
    rate: float = 0.5


INNER = Inner()


@dataclass(frozen=True)
class NestedFakeConfig(FakeConfig):
    inner: Inner = INNER


def test_a_section_reads_first_claim_verdict_main_figure_headline_then_details(tmp_path, monkeypatch):
    register(monkeypatch, WordyExperiment("wordy"))

    html = build_report(tmp_path, device="cpu").read_text()

    section = html.split('<section class="experiment" id="wordy">')[1].split("</section>")[0]
    order = [section.index(mark) for mark in (
        'class="claim"', 'class="verdict"', 'class="main"', 'class="headline"', "What the numbers say", "Setup",
        "<details>", "All metrics and the configuration", "Configuration")]  # fmt: skip
    assert order == sorted(order)
    main = section.split('class="main"')[1].split("</figure>")[0]
    assert "<figcaption>second</figcaption>" in main  # the spec's main figure first, the other after
    assert section.count("<svg") == 2 and section.index("<figcaption>first") > section.index('class="headline"')
    headline = section.split('class="headline"')[1].split("</table>")[0]
    assert "<td>slope</td>" in headline and ">2<" in headline and ">3<" in headline
    details = section.split("<details>")[1]
    assert "inner.rate" in details and "slope" in details  # the nested config by dotted name; every metric
    assert "The slope is 2." in section and "Measured 3 points." in section
    assert "measured on cpu (" in section  # where it ran, in the section
    header = html.split("</header>")[0]
    assert "<dt>Device</dt><dd>cpu (" in header
    saved = json.loads((tmp_path / "wordy" / "results.json").read_text())
    assert saved["headline"] == [["slope", 2.0], ["points", 3]] and saved["device"] == "cpu"
    assert saved["seconds"] >= 0 and saved["cpu_seconds"] >= 0  # wall clock, and CPU time (busy-machine proxy)


def test_experiments_that_share_cores_run_in_workers_the_others_here_alone(tmp_path, monkeypatch):
    """jobs=2: the registered experiments that share cores (here two real, quick ones) run in two spawned workers
    and give what a run here gives; one that does not share (the fake, like complexity and parallelism, which
    time themselves) runs in this process, before them."""
    fake = FakeExperiment("alone")
    real = ["gradient-paths", "dictionary-lookup"]
    specs = {n: experiments.get(n) for n in real}
    monkeypatch.setattr(experiments, "get", lambda name: fake.spec if name == "alone" else specs[name])
    monkeypatch.setattr(experiments, "names", lambda: ["alone", *real])
    build_report(tmp_path, "quick", jobs=2, progress=False)
    assert fake.runs == 1  # here, not in a worker (where the fake does not exist)
    meta = json.loads((tmp_path / "report.json").read_text())
    assert meta["jobs"] == 2 and meta["errors"] == {} and meta["experiments"] == ["alone", *real]
    summary = json.loads((tmp_path / "results.json").read_text())
    spec = specs["gradient-paths"]
    here = experiments.run_experiment(spec, spec.config_cls.for_profile("quick"))
    timeless = {k: v for k, v in here["metrics"].items() if "seconds" not in k}
    assert timeless and timeless.items() <= summary["gradient-paths"]["metrics"].items()  # as measured here
    assert all((tmp_path / n / "results.json").is_file() and list((tmp_path / n).glob("*.svg")) for n in real)


def test_which_experiments_share_cores():
    timed = {n for n in experiments.names() if not experiments.get(n).shares_cores}
    # they measure time: each runs with nothing beside it
    assert timed == {"complexity", "parallelism", "variants", "decode-cost"}


@pytest.mark.parametrize("jobs", [0, -1, 1.5, True])
def test_bad_jobs_is_a_value_error_before_anything_runs(tmp_path, monkeypatch, jobs):
    fake = FakeExperiment("alpha")
    register(monkeypatch, fake)
    with pytest.raises(ValueError, match="jobs: expected an integer >= 1"):
        build_report(tmp_path / "out", jobs=jobs)
    assert fake.runs == 0 and not (tmp_path / "out").exists()
