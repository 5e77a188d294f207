"""Argument ranges are checked before any view is scored; `report` writes outside the repository."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import viewselect.ranking.pipeline as rank_module
from handflow.errors import HandflowError
from viewselect.engine.scoring import RankConfig
from viewselect.ranking.pipeline import RankRequest, run_rank


def run(*args, cwd=None):
    env = {**os.environ, "VIEWSELECT_PROGRESS": "0", "PYTHONPATH": os.getcwd()}
    return subprocess.run([sys.executable, "-m", "viewselect", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=600)


@pytest.fixture
def no_scoring(monkeypatch):
    """Fails the test if any view would be scored."""
    def boom(*a, **k):
        raise AssertionError("a view was scored before the arguments were checked")
    monkeypatch.setattr(rank_module, "evaluate_views", boom)


@pytest.mark.parametrize("kw, match", [
    (dict(drop=500), "--drop 500 is out of range: must be between 0 and 7 for 8 cameras"),
    (dict(drop=-1), "--drop -1 is out of range: must be at least 0"),
    (dict(keep=0), "--keep 0 is out of range: must be at least 1"),
    (dict(keep=9), "--keep 9 is out of range: must be between 1 and 8 for 8 cameras"),
    (dict(max_ambiguity_mm=-3.0), "--max-ambiguity must be a non-negative number of mm, found -3.0"),
    (dict(max_ambiguity_mm=float("nan")), "--max-ambiguity must be a non-negative"),
    (dict(cameras=["400002", "999999"], drop=1), "unknown camera '999999'"),
    (dict(pixel_noise_px=-1.0), "pixel noise"),
])
def test_ranges_checked_before_scoring(tiny_data_root, tiny_model, no_scoring, kw, match):
    req = RankRequest(sequence="Capture0-1", data_root=str(tiny_data_root), model=str(tiny_model),
                      engine=RankConfig(samples=4, frames=1), **kw)
    with pytest.raises(HandflowError, match=match.replace("(", r"\(").replace(")", r"\)")):
        run_rank(req)


@pytest.mark.parametrize("args, needle", [
    (["--drop", "500"], "--drop 500 is out of range"),
    (["--keep", "0"], "--keep 0 is out of range"),
    (["--max-ambiguity", "-3"], "--max-ambiguity must be a non-negative number of mm"),
    (["--samples", "1"], "--samples must be at least 2"),
    (["--frames", "0"], "--frames must be at least 1"),
])
def test_cli_one_line_error_exit_2(tmp_path, tiny_data_root, tiny_model, args, needle):
    out = tmp_path / "results"
    r = run("rank", "--data-root", tiny_data_root, "--model", tiny_model, "--samples", "4", "--frames", "1",
            "--out", out, *args)
    assert r.returncode == 2, r.stderr
    assert needle in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_report_defaults_to_the_results_folder(tmp_path, tiny_data_root, tiny_model):
    from viewselect.outputs.report import DEFAULT_OUT

    assert all(p.parts[0] == "viewselect-results" for p in DEFAULT_OUT.values())
    r = run("report", "--data-root", tiny_data_root, "--model", tiny_model, "--sequence", "Capture0",
            "--samples", "4", "--frames", "1", "--overlay-samples", "3", "--no-triangulation", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["viewselect-results"]
    assert (tmp_path / "viewselect-results" / "view-report.html").is_file()
