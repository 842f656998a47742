"""The HTML report: every experiment's claim, figures and numbers in one self-contained ``index.html``; and the
attention viewer (:class:`AttentionView`, :func:`viewer_html`), standalone or embedded in the report."""

from attnlab.report.build import ExperimentsFailed, build_report, replot
from attnlab.report.viewer import AttentionView, viewer_html

__all__ = ["AttentionView", "ExperimentsFailed", "build_report", "replot", "viewer_html"]
