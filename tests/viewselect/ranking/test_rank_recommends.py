"""`rank` without flags recommends a drop list, with intervals, consensus and a verdict (tiny data)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from viewselect.engine.scoring import RankConfig
from viewselect.ranking.pipeline import RankRequest, run_rank


def _req(root, model, seed=0, **kw):
    return RankRequest(sequence="Capture0-1", data_root=str(root), model=str(model),
                       engine=RankConfig(samples=8, frames=2, seed=seed), bootstrap_resamples=200, **kw)


def test_default_run_recommends_with_intervals(tiny_data_root, tiny_model):
    out = run_rank(_req(tiny_data_root, tiny_model))
    rec, cams = out.recommendation, out.result.cameras
    assert rec is not None and out.result.drop_list == sorted(rec.drop_list, key=list(cams["camera"]).index)
    assert rec.reason.startswith(("dropping", "no camera dropped"))
    # the rule, checked against the table: every dropped camera's interval lies above the median
    median = float(np.median(cams["ambiguity_mm"]))
    assert rec.median_mm == pytest.approx(median)
    dropped = cams[~cams["keep"]]
    assert (dropped["ambiguity_ci_low_mm"] > median).all()
    assert (cams["ambiguity_ci_low_mm"] <= cams["ambiguity_ci_high_mm"]).all()
    assert (cams["regret_global_ci_low_mm"] >= 0).all()
    assert out.verdict is not None and ("beat random" in out.verdict.text)
    again = run_rank(_req(tiny_data_root, tiny_model))
    pd.testing.assert_frame_equal(cams, again.result.cameras)  # deterministic for a seed
    other = run_rank(_req(tiny_data_root, tiny_model, seed=1))
    assert not np.allclose(other.result.cameras["ambiguity_ci_low_mm"], cams["ambiguity_ci_low_mm"])


def test_explicit_selection_gets_consensus_not_the_rule(tiny_data_root, tiny_model):
    out = run_rank(_req(tiny_data_root, tiny_model, drop=2))
    cams = out.result.cameras
    assert out.recommendation is None and len(out.result.drop_list) == 2
    assert cams["drop_consensus"].sum() == pytest.approx(2)  # two cameras dropped in every resample
    assert cams.loc[~cams["keep"], "drop_consensus"].min() >= cams.loc[cams["keep"], "drop_consensus"].max() - 1
    assert set(out.verdict.consensus) == set(out.result.drop_list)


def test_cli_default_run_says_why(tmp_path, tiny_data_root, tiny_model):
    out = tmp_path / "r"
    env = {**os.environ, "VIEWSELECT_PROGRESS": "0", "PYTHONPATH": os.getcwd()}
    p = subprocess.run([sys.executable, "-m", "viewselect", "rank", "--data-root", str(tiny_data_root), "--model",
                        str(tiny_model), "--samples", "8", "--frames", "2", "--bootstrap", "100", "--error-vs-cameras",
                        "--out", str(out)], capture_output=True, text=True, env=env, timeout=600)
    assert p.returncode == 0, p.stderr
    why = [line for line in p.stdout.splitlines() if line.startswith("why: ")]
    assert len(why) == 1 and "median" in why[0]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["recommendation"]["reason"] in why[0] and summary["verdict"]["text"]
    assert summary["bootstrap"]["n_resamples"] == 100
    curve = pd.read_csv(out / "error_vs_cameras.csv")
    assert set(curve["strategy"]) == {"ambiguity", "coverage", "uniform", "random"}
    assert curve["n_cameras"].min() == 2 and curve["n_cameras"].max() == 8
    cams = pd.read_csv(out / "ranking.csv", dtype={"camera": str})
    assert {"ambiguity_ci_low_mm", "regret_global_ci_high_mm"} <= set(cams.columns)
    headers = pd.read_excel(out / "ranking.xlsx", sheet_name="cameras").columns
    assert "ambiguity 95 % CI low (mm)" in headers


def test_report_opens_with_the_verdict(tiny_data_root, tiny_model):
    from viewselect.outputs.report import report_content

    out = run_rank(_req(tiny_data_root, tiny_model, error_vs_cameras=True))
    content = report_content(out, {})
    assert content.intro.startswith(out.verdict.text)
    assert "Why: " in content.intro
    titles = [t.title for s in content.sections for t in s.tables]
    assert "Error against the number of cameras kept" in titles
