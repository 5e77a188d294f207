"""`viewselect plan`: rendering a proposed rig, coverage, and the command end to end on tiny data."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd

from viewselect.plan.run import joint_coverage
from viewselect.plan.rigfile import CSV_COLUMNS


def test_joint_coverage_counts_cameras_per_joint_frame():
    vis_a = np.ones((2, 42), int)
    vis_b = np.zeros((2, 42), int)
    vis_b[:, 0] = 1
    from viewselect.records import ViewRecord

    per_frame = [1.0, 1.0]
    recs = [ViewRecord(capture=0, seq="s", camera=c, frames=[1, 2], ambiguity_mm=1.0, ambiguity_global_mm=1.0,
                       ambiguity_rrr_mm=1.0, flow_spread_mm=1.0, mpjpe_global_mm=1.0,
                       mpjpe_rrr_mm=1.0, mpjpe_rr_mm=1.0, visible_fraction=1.0, hands_center_mm=[0.0] * 3,
                       visible=v.tolist(), frame_ambiguity_mm=per_frame, frame_ambiguity_global_mm=per_frame,
                       frame_ambiguity_rrr_mm=per_frame, frame_flow_spread_mm=per_frame, frame_group_ambiguity_mm=[[1.0]] * 2,
                       frame_mpjpe_global_mm=per_frame, frame_mpjpe_rrr_mm=per_frame, frame_mpjpe_rr_mm=per_frame)
            for c, v in (("1", vis_a), ("2", vis_b), ("3", vis_b))]
    cov = joint_coverage(recs)
    assert cov.counts.shape == (2, 42) and cov.min_cameras == 1
    assert cov.per_joint.loc[0, "mean_cameras"] == 3 and cov.per_joint.loc[1, "seen_by_2_share"] == 0
    assert cov.seen_by_2_share == cov.seen_by_3_share == 1 / 42


def test_rendered_rig_matches_the_embedded_capture(tiny_data_root, tmp_path):
    """The dome's own cameras through the plan renderer give the embedded capture's images, byte for byte."""
    from handflow.data.interhand import InterHandDataset
    from handflow.synth.render_rig import render_rig_capture

    ds = InterHandDataset(tiny_data_root, "test")
    cams = {c: ds.camera(0, c) for c in ds.camera_ids(0)[:2]}
    root = render_rig_capture(cams, {c: (128, 84) for c in cams}, frames=2, root=tmp_path / "r")
    for rel in ("Capture0/0001_touch_fingertips", "Capture1/0007_cross_wrists"):
        for c in cams:
            a = sorted((tiny_data_root / "images" / "test" / rel / f"cam{c}").iterdir())
            b = sorted((root / "images" / "test" / rel / f"cam{c}").iterdir())
            assert [p.name for p in a] == [p.name for p in b]
            assert all(x.read_bytes() == y.read_bytes() for x, y in zip(a, b))


def run(*args):
    env = {**os.environ, "VIEWSELECT_PROGRESS": "0", "PYTHONPATH": os.getcwd()}
    return subprocess.run([sys.executable, "-m", "viewselect", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=900)


def test_plan_command_end_to_end(tmp_path, tiny_model):
    header = ",".join(CSV_COLUMNS)
    ring = [f"{400002 + i},{1000 * np.cos(a):.3f},{1000 * np.sin(a):.3f},1100,0,0,1000,260,84,128"
            for i, a in enumerate(np.linspace(0, 2 * np.pi, 4, endpoint=False))]
    rig = tmp_path / "ring.csv"
    rig.write_text(header + "\n" + "\n".join(ring) + "\n")
    other = tmp_path / "pair.csv"
    other.write_text(header + "\n" + "\n".join(ring[:2]) + "\n")
    out = tmp_path / "plan"
    r = run("plan", "--rig", rig, "--compare", other, "--model", tiny_model, "--frames", "1", "--samples", "4",
            "--out", out)
    assert r.returncode == 0, r.stderr
    table = pd.read_csv(out / "plan.csv")
    assert table["rig"].tolist() == ["rig", "compare"] and table["n_cameras"].tolist() == [4, 2]
    assert (table["seen_by_3_share"] <= table["seen_by_2_share"]).all()
    assert table.loc[1, "seen_by_3_share"] == 0  # two cameras never give three views
    for label in ("rig", "compare"):
        cams = pd.read_csv(out / label / "ranking.csv", dtype={"camera": str})
        assert len(cams) == table.set_index("rig").loc[label, "n_cameras"] and (cams["ambiguity_mm"] > 0).all()
        summary = json.loads((out / label / "summary.json").read_text())
        assert 0 <= summary["coverage"]["seen_by_2_share"] <= 1 and len(summary["coverage"]["per_joint"]) == 42
        assert len(pd.read_csv(out / label / "coverage.csv")) == 42
    assert "| cameras | 4 | 2 |" in (out / "plan.md").read_text()


def test_plan_bad_rig_file_is_one_line(tmp_path, tiny_model):
    bad = tmp_path / "bad.csv"
    bad.write_text(",".join(CSV_COLUMNS) + "\n400002,1000,0,1000,0,0,1000,oops,84,128\n")
    r = run("plan", "--rig", bad, "--model", tiny_model, "--out", tmp_path / "o")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "bad.csv row 2, column focal_px" in r.stderr and not (tmp_path / "o").exists()
