"""Error against the number of cameras: grids, uniform spacing, curves on a hand-made rig."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from handflow.errors import HandflowError
from handflow.geometry.camera import Camera, look_at
from viewselect.rig.subsets import camera_counts, subset_curves, uniform_cameras
from viewselect.rig.triangulation import Scene

AXES = {"a": (1, 0, 0), "b": (-1, 0, 0), "c": (0, 1, 0), "d": (0, -1, 0), "e": (0, 0.2, 1), "f": (0, 0.2, -1)}


def rig():
    cams = {}
    for cid, d in AXES.items():
        pos = 1000.0 * np.asarray(d, float) / np.linalg.norm(d)
        up = np.array([0.0, 0.0, 1.0]) if abs(d[2]) < 0.5 else np.array([0.0, 1.0, 0.0])
        cams[cid] = Camera(R=look_at(pos, np.zeros(3), up), campos_mm=pos, focal_px=np.array([500.0, 500.0]),
                           princpt_px=np.array([100.0, 100.0]))
    return cams


def test_camera_counts():
    assert camera_counts(1) == [] and camera_counts(5) == [2, 3, 4, 5]
    k = camera_counts(140)
    assert k[0] == 2 and k[-1] == 140 and k == sorted(set(k)) and all(x in k for x in range(2, 9))


def test_uniform_spacing_picks_opposite_directions():
    dirs = {c: np.asarray(d, float) for c, d in AXES.items()}
    two = uniform_cameras(dirs, 2)
    assert np.dot(dirs[two[0]], dirs[two[1]]) < -0.9  # the second camera is the farthest from the first
    assert sorted(uniform_cameras(dirs, 6)) == sorted(AXES)
    with pytest.raises(HandflowError):
        uniform_cameras(dirs, 7)


def test_curves_on_a_known_rig():
    cams = rig()
    ids = sorted(cams)
    joints = np.random.default_rng(0).uniform(-50, 50, (3, 42, 3))
    seq = Scene("s", ids, [cams[c] for c in ids], joints, np.ones((6, 3, 42), bool))
    amb = {"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0, "e": 5.0, "f": 6.0}
    table = pd.DataFrame({"camera": ids, "ambiguity_mm": [amb[c] for c in ids],
                          "regret_global_mm": [amb[c] - 1 for c in ids]})
    dirs = {c: np.asarray(d, float) for c, d in AXES.items()}
    out = subset_curves(table, [seq], dirs, n_random=8, pixel_noise_px=0.0)
    assert sorted(out["n_cameras"].unique()) == [2, 3, 4, 5, 6]
    assert set(out["strategy"]) == {"ambiguity", "coverage", "uniform", "random"}
    # no pixel noise, every joint seen: every subset triangulates exactly
    assert (out["triangulation_error_mm"] < 1e-6).all() and (out["failed_fraction"] == 0).all()
    amb2 = out[(out.n_cameras == 2) & (out.strategy == "ambiguity")].iloc[0]
    assert amb2["mean_regret_mm"] == pytest.approx(0.5)  # cameras a (0) and b (1)
    rnd = out[out.strategy == "random"]
    assert (rnd["mean_regret_low_mm"] <= rnd["mean_regret_mm"] + 1e-9).all()
    assert (rnd["mean_regret_mm"] <= rnd["mean_regret_high_mm"] + 1e-9).all()
    full = out[out.n_cameras == 6]
    assert full["mean_regret_mm"].nunique() == 1  # the whole rig is the same set for every strategy
    again = subset_curves(table, [seq], dirs, n_random=8, pixel_noise_px=0.0)
    pd.testing.assert_frame_equal(out, again)


def test_failed_joints_when_too_few_cameras_see_them():
    cams = rig()
    ids = sorted(cams)
    vis = np.ones((6, 1, 42), bool)
    vis[1:, :, 0] = False  # joint 0 seen by camera a only
    seq = Scene("s", ids, [cams[c] for c in ids], np.zeros((1, 42, 3)) + 10.0, vis)
    table = pd.DataFrame({"camera": ids, "ambiguity_mm": np.arange(6.0), "regret_global_mm": np.zeros(6)})
    out = subset_curves(table, [seq], {c: np.asarray(d, float) for c, d in AXES.items()}, counts=[6],
                        n_random=2, pixel_noise_px=0.0)
    assert out["failed_fraction"].iloc[0] == pytest.approx(1 / 42)


def test_error_vs_cameras_figure():
    from viewselect.outputs.figures import error_vs_cameras

    cams = rig()
    ids = sorted(cams)
    joints = np.random.default_rng(0).uniform(-50, 50, (2, 42, 3))
    seq = Scene("s", ids, [cams[c] for c in ids], joints, np.ones((6, 2, 42), bool))
    table = pd.DataFrame({"camera": ids, "ambiguity_mm": np.arange(6.0), "regret_global_mm": np.arange(6.0)})
    rows = subset_curves(table, [seq], {c: np.asarray(d, float) for c, d in AXES.items()}, n_random=4)
    png = error_vs_cameras(rows)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
