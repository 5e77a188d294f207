"""benchmarks/bench_triangulation.py: the replaced solver it times against gives the same points and figures."""

from unittest import mock

import numpy as np
import pytest

from benchmarks.bench_triangulation import CENTER, dome, scenes, svd_null_vectors
from viewselect.rig import triangulation
from viewselect.rig.triangulation import projection_matrix, project_points, triangulate_dlt


def test_the_dome_looks_at_the_hands():
    cams = dome(12)
    uv = project_points(np.stack([projection_matrix(c) for c in cams]), CENTER[None])[:, 0]
    # the centre projects onto every camera's principal point
    np.testing.assert_allclose(uv, np.stack([c.princpt_px for c in cams]), atol=1e-6)


def test_replaced_solver_gives_the_same_points():
    sc = scenes(n_sequences=1, n_cameras=12, frames=2)[0]
    P = np.stack([projection_matrix(c) for c in sc.cameras])
    pts = sc.joints_world_mm.reshape(-1, 3)
    uv = project_points(P, pts) + np.random.default_rng(0).normal(0, 1.0, (12, len(pts), 2))
    w = sc.visible.reshape(12, -1)
    a = triangulate_dlt(P, uv, w)
    with mock.patch.object(triangulation, "_null_vectors", svd_null_vectors):
        b = triangulate_dlt(P, uv, w)
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    ok = ~np.isnan(a).any(1)
    assert ok.mean() > 0.9
    np.testing.assert_allclose(a[ok], b[ok], atol=1e-8)
    assert np.abs(a[ok] - pts[ok]).max() < 20.0  # 1 px noise at 1 m: millimetres


@pytest.mark.parametrize("frames", [1, 3])
def test_scenes_have_the_shape_asked(frames):
    sc = scenes(n_sequences=2, n_cameras=5, frames=frames)
    assert len(sc) == 2 and sc[0].joints_world_mm.shape == (frames, 42, 3) and sc[0].visible.shape == (5, frames, 42)
