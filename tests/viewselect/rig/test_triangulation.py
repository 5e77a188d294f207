"""DLT triangulation: exact without noise, worse with noise, failure below two views."""

import math

import numpy as np
import pytest

from handflow.errors import HandflowError
from handflow.geometry.camera import Camera, look_at, project, world_to_cam
from viewselect.rig.triangulation import (
    project_points,
    projection_matrix,
    triangulate_dlt,
    triangulation_error,
)

CENTER = np.array([50.0, -30.0, 1000.0])  # hands ~1 m above the world origin, as in the synthetic rig


def ring_rig(n=8, radius=1000.0):
    cams = []
    for i in range(n):
        az = 2 * math.pi * i / n
        el = math.radians(20 if i % 2 else -10)
        pos = CENTER + radius * np.array([math.cos(az) * math.cos(el), math.sin(az) * math.cos(el), math.sin(el)])
        cams.append(Camera(look_at(pos, CENTER), pos, np.array([1200.0, 1180.0]), np.array([167.0, 256.0])))
    return cams


def joints(frames=3, seed=0):
    rng = np.random.default_rng(seed)
    return CENTER + rng.normal(0.0, 60.0, size=(frames, 42, 3))


def test_projection_matrix_matches_camera_projection():
    cam = ring_rig()[3]
    X = joints(1)[0]
    np.testing.assert_allclose(project_points(projection_matrix(cam)[None], X)[0],
                               project(world_to_cam(X, cam.R, cam.campos_mm), cam.focal_px, cam.princpt_px),
                               rtol=0, atol=1e-9)  # fmt: skip


def test_dlt_recovers_points_exactly_without_noise():
    cams = ring_rig()
    X = joints(2).reshape(-1, 3)
    P = np.stack([projection_matrix(c) for c in cams])
    uv = project_points(P, X)
    est = triangulate_dlt(P, uv, np.ones(uv.shape[:2], bool))
    assert np.max(np.linalg.norm(est - X, axis=1)) < 1e-6
    # Two views suffice.
    est2 = triangulate_dlt(P[:2], uv[:2], np.ones((2, len(X))))
    assert np.max(np.linalg.norm(est2 - X, axis=1)) < 1e-6


def test_fewer_than_two_views_fail():
    cams = ring_rig(3)
    X = joints(1).reshape(-1, 3)[:4]
    P = np.stack([projection_matrix(c) for c in cams])
    uv = project_points(P, X)
    w = np.ones((3, 4), bool)
    w[:, 1] = [True, False, False]  # seen once
    w[:, 2] = False  # never seen
    uv[1:, 1] = np.nan  # data where unseen must not matter
    est = triangulate_dlt(P, uv, w)
    assert np.isnan(est[1]).all() and np.isnan(est[2]).all()
    assert np.max(np.linalg.norm(est[[0, 3]] - X[[0, 3]], axis=1)) < 1e-6

    F = 2
    vis = np.ones((3, F, 42), bool)
    vis[1:, :, :21] = False  # right hand seen by camera 0 only -> failed
    res = triangulation_error(cams, joints(F), vis, pixel_noise_px=0.0)
    assert res.failed_fraction == pytest.approx(0.5)
    assert res.mean_error_mm < 1e-6
    assert res.n_points == F * 42
    single = triangulation_error(cams, joints(F), vis, subset=[1])
    assert single.failed_fraction == 1.0 and math.isnan(single.mean_error_mm)


def test_error_grows_with_noise_and_is_deterministic():
    cams = ring_rig()
    X = joints(4)
    vis = np.ones((len(cams), 4, 42), bool)
    errs = [triangulation_error(cams, X, vis, pixel_noise_px=s, seed=1).mean_error_mm for s in (0.0, 0.5, 2.0, 8.0)]
    assert errs[0] < 1e-6
    assert errs[0] < errs[1] < errs[2] < errs[3]
    # ~linear in sigma: 4x the noise, ~4x the error.
    assert errs[3] / errs[2] == pytest.approx(4.0, rel=0.1)
    again = triangulation_error(cams, X, vis, pixel_noise_px=2.0, seed=1).mean_error_mm
    assert again == errs[2]
    # Fewer views (same noise) -> larger error.
    assert triangulation_error(cams, X, vis, subset=[0, 2], pixel_noise_px=2.0, seed=1).mean_error_mm > errs[2]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"subset": [0, 0]}, "distinct"),
        ({"subset": [9]}, "distinct"),
        ({"pixel_noise_px": -1.0}, "noise"),
    ],
)
def test_argument_errors(kwargs, match):
    cams = ring_rig(4)
    X = joints(1)
    with pytest.raises(HandflowError, match=match):
        triangulation_error(cams, X, np.ones((4, 1, 42), bool), **kwargs)
    with pytest.raises(HandflowError, match="visible"):
        triangulation_error(cams, X, np.ones((3, 1, 42), bool))


def test_subset_by_camera_id():
    cams = ring_rig(4)
    rig = {f"40000{i}": c for i, c in enumerate(cams)}
    X, vis = joints(1), np.ones((4, 1, 42), bool)
    by_id = triangulation_error(rig, X, vis, subset=["400001", "400003"], seed=2)
    by_index = triangulation_error(cams, X, vis, subset=[1, 3], seed=2)
    assert by_id == by_index
    with pytest.raises(HandflowError, match="unknown camera"):
        triangulation_error(rig, X, vis, subset=["499999"])
