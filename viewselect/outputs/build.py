"""The product end to end, as functions the CLI calls: rank the views, then render what was computed."""

from __future__ import annotations

from pathlib import Path

from viewselect.ranking.pipeline import RankOutcome, run_rank
from viewselect.outputs.report import ReportRequest, write_report


def build_report(req: ReportRequest) -> tuple[Path, RankOutcome]:
    """Run (or read from the per-view cache) the ranking with the report's extras, write the report;
    returns the path written and the ranking it drew (its notes are the caller's to print)."""
    req.check()  # a bad format or output fails before any model work
    outcome = run_rank(req.rank_request())
    return write_report(outcome, req), outcome
