"""Where the cameras of any rig sit: its centre of attention, its own up axis and frame, and each
camera's azimuth, elevation and distance in it.

Input: ``{camera id: Camera}`` (:mod:`handflow.geometry.camera`, world frame in mm, InterHand2.6M
convention ``X_cam = R @ (X_world - campos)``, image y pointing down). Nothing here knows how the rig
was built: the same functions serve a real capture's cameras, a proposed rig and the synthetic dome.
Angles in degrees (azimuth in [0, 360), elevation in [-90, 90]), distances in mm.
"""

from __future__ import annotations

import numpy as np

from handflow.errors import HandflowError
from handflow.geometry.camera import Camera


def camera_angles(campos_mm: np.ndarray, center_mm: np.ndarray) -> tuple[float, float]:
    """(azimuth, elevation) in degrees of a camera position seen from ``center_mm``, in the world frame
    taken as +Z up (azimuth in the XY plane from +X towards +Y); :func:`rig_angles` uses the rig's own frame."""
    d = np.asarray(campos_mm, float) - np.asarray(center_mm, float)
    az = float(np.degrees(np.arctan2(d[1], d[0])) % 360.0)
    el = float(np.degrees(np.arcsin(np.clip(d[2] / np.linalg.norm(d), -1.0, 1.0))))
    return az, el


def rig_center(cameras: dict[str, Camera]) -> np.ndarray:
    """(3,) the point closest (least squares) to every camera's optical axis: the rig's centre of
    attention, for real rigs whose centre is not known."""
    A = np.zeros((3, 3))
    b = np.zeros(3)
    for cam in cameras.values():
        d = cam.optical_axis_world
        P = np.eye(3) - np.outer(d, d)
        A += P
        b += P @ cam.campos_mm
    return np.linalg.lstsq(A, b, rcond=None)[0]


def rig_up(cameras: dict[str, Camera]) -> np.ndarray:
    """(3,) unit world "up" estimated as the mean image-up direction (camera -Y) of the cameras."""
    up = -np.mean([cam.R[1] for cam in cameras.values()], axis=0)
    return up / max(np.linalg.norm(up), 1e-12)


def dome_angles(cameras: dict[str, Camera], center_mm: np.ndarray | None = None,
                up: np.ndarray | None = None) -> dict[str, tuple[float, float]]:
    """``{camera id: (azimuth_deg, elevation_deg)}`` of each camera seen from ``center_mm`` with
    elevation measured towards ``up``. Defaults: :func:`rig_center` and :func:`rig_up` (for real
    rigs); a rig whose centre and up axis are known (the synthetic dome: its centre and +Z) passes them.
    Azimuth is measured around ``up`` from the world X axis projected on the horizontal plane."""
    c = rig_center(cameras) if center_mm is None else np.asarray(center_mm, float)
    u = rig_up(cameras) if up is None else np.asarray(up, float) / np.linalg.norm(up)
    x = np.array([1.0, 0.0, 0.0]) - u * u[0]
    if np.linalg.norm(x) < 1e-6:
        x = np.array([0.0, 1.0, 0.0]) - u * u[1]
    x /= np.linalg.norm(x)
    y = np.cross(u, x)
    out = {}
    for cid, cam in cameras.items():
        d = cam.campos_mm - c
        d = d / np.linalg.norm(d)
        out[cid] = (float(np.degrees(np.arctan2(d @ y, d @ x)) % 360.0),
                    float(np.degrees(np.arcsin(np.clip(d @ u, -1.0, 1.0)))))
    return out


def rig_axes(cameras: dict[str, Camera]) -> np.ndarray:
    """(3, 3) orthonormal rows ``(x, y, up)`` of a rig, from its cameras alone (any world frame).

    ``up`` is :func:`rig_up` (the mean image-up direction: InterHand2.6M's image y points down, so
    up is minus the mean camera y axis, ``-mean(R[1])``); ``x`` is the horizontal direction
    (perpendicular to ``up``) from :func:`rig_center` to the first camera by id, so that camera is at
    azimuth 0; ``y = up x x`` (azimuth grows counter-clockwise seen from above). Rotating the whole
    rig rotates these axes with it.
    """
    u = rig_up(cameras)
    c = rig_center(cameras)
    for cid in sorted(cameras):
        d = cameras[cid].campos_mm - c
        x = d - u * (d @ u)
        if np.linalg.norm(x) > 1e-6 * max(np.linalg.norm(d), 1.0):
            x = x / np.linalg.norm(x)
            return np.stack([x, np.cross(u, x), u])
    raise HandflowError("cannot derive a horizontal axis: every camera sits on the rig's up axis")


def rig_angles(cameras: dict[str, Camera], center_mm: np.ndarray) -> dict[str, tuple[float, float, float]]:
    """``{camera id: (azimuth_deg, elevation_deg, distance_mm)}`` of each camera seen from ``center_mm``
    in the rig's own frame (:func:`rig_axes`): the same numbers whatever way the world is oriented."""
    axes = rig_axes(cameras)
    out = {}
    for cid, cam in cameras.items():
        d = axes @ (cam.campos_mm - np.asarray(center_mm, float))
        r = float(np.linalg.norm(d))
        out[cid] = (float(np.degrees(np.arctan2(d[1], d[0])) % 360.0),
                    float(np.degrees(np.arcsin(np.clip(d[2] / max(r, 1e-12), -1.0, 1.0)))), r)
    return out
