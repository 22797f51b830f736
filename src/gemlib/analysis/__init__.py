"""Reading finished runs: dataset statistics, the end-of-run report, the summary, the viewer."""

from gemlib.analysis.report import html_report, text_report
from gemlib.analysis.stats import DatasetStats, dataset_stats
from gemlib.analysis.summary import RunSummary, load_summary
from gemlib.analysis.viewer import serve_viewer, write_viewer

__all__ = [
    "DatasetStats",
    "RunSummary",
    "dataset_stats",
    "html_report",
    "load_summary",
    "serve_viewer",
    "text_report",
    "write_viewer",
]
