"""Azimuth/elevation in the rig's own frame: rotating the whole capture changes no number of `rank`."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from captures import move_capture
from scipy.spatial.transform import Rotation

from handflow.errors import HandflowError
from handflow.geometry.camera import Camera, look_at
from handflow.geometry.rig import rig_angles, rig_axes, rig_center
from handflow.synth.rig import dome_rig
from viewselect.engine.scoring import RankConfig
from viewselect.ranking.pipeline import RankRequest, run_rank

WORLD_COLUMNS = ["campos_x_mm", "campos_y_mm", "campos_z_mm"]  # the calibration's own numbers: they rotate


def test_rig_axes_of_the_dome_and_of_a_rotated_dome():
    rig = dome_rig()
    axes = rig_axes(rig.cameras)
    assert axes[2] @ np.array([0.0, 0.0, 1.0]) > 0.99  # the synthetic world's +z
    np.testing.assert_allclose(axes @ axes.T, np.eye(3), atol=1e-12)
    Q = Rotation.random(random_state=1).as_matrix()
    from handflow.geometry.camera import Camera

    turned = {c: Camera(R=cam.R @ Q.T, campos_mm=Q @ cam.campos_mm, focal_px=cam.focal_px, princpt_px=cam.princpt_px)
              for c, cam in rig.cameras.items()}
    np.testing.assert_allclose(rig_axes(turned), axes @ Q.T, atol=1e-9)
    a, b = rig_angles(rig.cameras, rig.center_mm), rig_angles(turned, Q @ rig.center_mm)
    for c in rig.ids:
        np.testing.assert_allclose(a[c], b[c], atol=1e-7)
    az0 = rig_angles(rig.cameras, rig_center(rig.cameras))["400002"][0]  # the first camera defines azimuth 0
    assert (az0 + 180.0) % 360.0 - 180.0 == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("Q", [
    Rotation.random(random_state=7).as_matrix(),
    np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]]),  # z up -> -y up, as the real InterHand2.6M world
], ids=["random", "y-down"])
def test_rotating_the_capture_changes_no_number(tmp_path, tiny_data_root, tiny_model, Q):
    turned = tmp_path / "turned"
    move_capture(tiny_data_root, turned, Q)
    req = dict(sequence="Capture0-1", model=str(tiny_model), engine=RankConfig(samples=8, frames=2), keep=3)
    a = run_rank(RankRequest(data_root=str(tiny_data_root), **req))
    b = run_rank(RankRequest(data_root=str(turned), **req))
    tol = dict(rtol=1e-5, atol=1e-3)
    pd.testing.assert_frame_equal(a.views.drop(columns=WORLD_COLUMNS), b.views.drop(columns=WORLD_COLUMNS), **tol)
    np.testing.assert_allclose(a.views[WORLD_COLUMNS].to_numpy() @ Q.T, b.views[WORLD_COLUMNS].to_numpy(), atol=1e-6)
    for name in ("cameras", "sequences", "summary"):
        x, y = getattr(a.result, name), getattr(b.result, name)
        keep = [c for c in x.columns if c not in WORLD_COLUMNS]
        pd.testing.assert_frame_equal(x[keep], y[keep], **tol)
    assert a.result.drop_list == b.result.drop_list
    for k in ("kept_error_mm", "full_error_mm", "random_error_mm", "kept_failed_fraction"):
        assert a.triangulation[k] == pytest.approx(b.triangulation[k], rel=1e-5, abs=1e-3)


# ---------------------------------------------------------------- rigs whose frame is partly undefined
HANDS = np.array([30.0, -20.0, 900.0])
FOCAL, PRINCPT = np.array([500.0, 500.0]), np.array([40.0, 60.0])


def _cam(pos, target=HANDS, up=(0.0, 0.0, 1.0)) -> Camera:
    pos = np.asarray(pos, float)
    return Camera(R=look_at(pos, np.asarray(target, float), np.asarray(up, float)), campos_mm=pos,
                  focal_px=FOCAL, princpt_px=PRINCPT)


def test_one_camera_in_its_own_frame_measures_from_the_hands():
    # campos 0, camrot the identity: the world is the camera's frame, the hands 1 m in front of it
    cams = {"400002": Camera(R=np.eye(3), campos_mm=np.zeros(3), focal_px=FOCAL, princpt_px=PRINCPT)}
    hands = np.array([10.0, 40.0, 1000.0])
    with pytest.raises(HandflowError, match="meet at no single point"):
        rig_center(cams)
    np.testing.assert_array_equal(rig_center(cams, hands), hands)
    az, el, dist = rig_angles(cams, hands)["400002"]
    assert min(az, 360 - az) < 1e-9 and dist == pytest.approx(np.linalg.norm(hands))
    # up is the image-up (camera -y); the camera sits 40 mm above the hands' level, seen from 1 m
    assert el == pytest.approx(math.degrees(math.asin(40.0 / np.linalg.norm(hands))))


def test_parallel_axes_fall_back_to_the_hands_and_two_cameras_meet():
    bar = {c: _cam([900.0, y, 1000.0], target=[0.0, y, 1000.0]) for c, y in (("1", -100.0), ("2", 0.0), ("3", 100.0))}
    np.testing.assert_array_equal(rig_center(bar, HANDS), HANDS)  # a camera bar aims at no one point
    ang = rig_angles(bar, HANDS)
    assert all(np.isfinite(ang[c]).all() for c in bar)
    two = {"1": _cam([900.0, 0.0, 1200.0]), "2": _cam([0.0, 900.0, 1100.0])}
    np.testing.assert_allclose(rig_center(two, np.zeros(3)), HANDS, atol=1e-6)  # the axes meet at the hands
    assert min(ang["1"][0], 360.0 - ang["1"][0]) < 1e-9  # the first camera by id is azimuth 0


def test_undefined_angles_are_nan_not_an_error():
    a = _cam([900.0, 0.0, 1200.0])
    flipped = Camera(R=np.diag([-1.0, -1.0, 1.0]) @ a.R, campos_mm=a.campos_mm, focal_px=FOCAL, princpt_px=PRINCPT)
    ang = rig_angles({"1": a, "2": flipped}, HANDS)  # the image-ups cancel: no up axis
    assert all(math.isnan(ang[c][0]) and math.isnan(ang[c][1]) for c in ang)
    assert ang["1"][2] == pytest.approx(np.linalg.norm(a.campos_mm - HANDS))
    at_hands = {"1": _cam([900.0, 0.0, 1200.0]), "2": _cam([0.0, 900.0, 1100.0]), "3": _cam(HANDS + [0, 0, 1e-9])}
    at_hands["3"] = Camera(R=at_hands["1"].R, campos_mm=HANDS.copy(), focal_px=FOCAL, princpt_px=PRINCPT)
    ang = rig_angles(at_hands, HANDS)
    assert math.isnan(ang["3"][0]) and math.isnan(ang["3"][1]) and ang["3"][2] == 0.0
    assert np.isfinite(ang["1"]).all() and np.isfinite(ang["2"]).all()
