"""The HTML report: every experiment's claim, figures and numbers in one self-contained ``index.html``."""

from attnlab.report.build import ExperimentsFailed, build_report, replot

__all__ = ["ExperimentsFailed", "build_report", "replot"]
