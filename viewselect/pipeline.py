"""The product end to end, as functions the CLI calls: rank the views, then render what was computed."""

from __future__ import annotations

from pathlib import Path

from viewselect.rank_pipeline import run_rank
from viewselect.report import ReportRequest, write_report


def build_report(req: ReportRequest) -> Path:
    """Run (or read from the per-view cache) the ranking with the report's extras, write the report."""
    req.check()  # a bad format or output fails before any model work
    return write_report(run_rank(req.rank_request()), req)
