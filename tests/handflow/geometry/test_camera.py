"""A camera checks its rotation: a rotation passes, anything else is rejected with one error, never a warning."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from handflow.errors import HandflowError
from handflow.geometry.camera import Camera


def _camera(R) -> Camera:
    return Camera(R=R, campos_mm=np.zeros(3), focal_px=np.array([500.0, 500.0]), princpt_px=np.array([64.0, 64.0]))


def test_a_rotation_is_accepted():
    c, s = np.cos(0.3), np.sin(0.3)
    cam = _camera(np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]))
    assert cam.R.dtype == np.float64


@pytest.mark.parametrize(
    "R",
    [
        np.diag([1.0, 1.0, -1.0]),  # orthonormal, det -1: a reflection
        2.0 * np.eye(3),  # det 8
        np.diag([1e200, 1e-200, 1.0]),  # a corrupt file: det 1, but R R^T overflows
    ],
)
def test_anything_else_is_rejected_without_a_warning(R):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(HandflowError, match="not a rotation matrix"):
            _camera(R)
