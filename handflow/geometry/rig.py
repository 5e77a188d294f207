"""Where the cameras of any rig sit: its centre of attention, its own up axis and frame, and each
camera's azimuth, elevation and distance in it.

Input: ``{camera id: Camera}`` (:mod:`handflow.geometry.camera`, world frame in mm, InterHand2.6M
convention ``X_cam = R @ (X_world - campos)``, image y pointing down). Nothing here knows how the rig
was built: the same functions serve a real capture's cameras, a proposed rig and the synthetic dome.
Angles in degrees (azimuth in [0, 360), elevation in [-90, 90]), distances in mm.

Any rig has a frame, even where its angles do not all exist: when the optical axes meet at no one
point (one camera, or parallel axes: a camera bar) the centre is the caller's fallback (the hands'
mean position); an angle that the cameras cannot define (no mean image-up; no camera off the up axis;
a camera at the centre) is NaN, never an error: the ranking does not need the angles.
"""

from __future__ import annotations

import math

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


# Below these the axes do not pin one point down (A's smallest eigenvalue, per camera) and the image-ups
# cancel (|mean image-up|): both are exact zeros in the degenerate rigs, far above in any usable one.
_AXES_TOL = 1e-9
_UP_TOL = 1e-6


def rig_center(cameras: dict[str, Camera], fallback_mm: np.ndarray | None = None) -> np.ndarray:
    """(3,) the point closest (least squares) to every camera's optical axis: the rig's centre of
    attention, for real rigs whose centre is not known.

    When the axes do not meet at one point — one camera, or all axes parallel — any point of a line
    is as close, so the answer would depend on where the world's origin lies: ``fallback_mm`` (3,)
    is returned instead (the hands' mean position); without one that is an error."""
    A = np.zeros((3, 3))
    b = np.zeros(3)
    for cam in cameras.values():
        d = cam.optical_axis_world
        P = np.eye(3) - np.outer(d, d)
        A += P
        b += P @ cam.campos_mm
    if np.linalg.eigvalsh(A)[0] <= _AXES_TOL * len(cameras):
        if fallback_mm is None:
            raise HandflowError(f"the optical axes of the {len(cameras)} camera(s) meet at no single point: "
                                "the rig has no centre of its own")
        return np.asarray(fallback_mm, float)
    return np.linalg.lstsq(A, b, rcond=None)[0]


def rig_up(cameras: dict[str, Camera]) -> np.ndarray:
    """(3,) unit world "up" estimated as the mean image-up direction (camera -Y) of the cameras;
    NaN when the image-ups cancel (e.g. one of two cameras mounted upside down)."""
    up = -np.mean([cam.R[1] for cam in cameras.values()], axis=0)
    n = np.linalg.norm(up)
    return up / n if n > _UP_TOL else np.full(3, np.nan)


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


def _horizontal(d: np.ndarray, u: np.ndarray) -> np.ndarray | None:
    """The part of ``d`` perpendicular to ``u``, or None when ``d`` lies on the up axis (or is zero)."""
    x = d - u * (d @ u)
    return x if np.linalg.norm(x) > 1e-6 * max(np.linalg.norm(d), 1.0) else None


def rig_axes(cameras: dict[str, Camera], fallback_center_mm: np.ndarray | None = None) -> np.ndarray:
    """(3, 3) orthonormal rows ``(x, y, up)`` of a rig, from its cameras alone (any world frame).

    ``up`` is :func:`rig_up` (the mean image-up direction: InterHand2.6M's image y points down, so
    up is minus the mean camera y axis, ``-mean(R[1])``); ``x`` is the horizontal direction
    (perpendicular to ``up``) from :func:`rig_center` (``fallback_center_mm`` where the axes do not
    meet) to the first camera by id, so that camera is at azimuth 0; ``y = up x x`` (azimuth grows
    counter-clockwise seen from above). Rotating the whole rig rotates these axes with it. Rows that
    the cameras cannot define are NaN: all three without an up, ``x`` and ``y`` when every camera
    sits on the up axis through the centre.
    """
    u = rig_up(cameras)
    nan = np.full(3, np.nan)
    if not np.all(np.isfinite(u)):
        return np.stack([nan, nan, nan])
    c = rig_center(cameras, fallback_center_mm)
    for cid in sorted(cameras):
        x = _horizontal(cameras[cid].campos_mm - c, u)
        if x is not None:
            x = x / np.linalg.norm(x)
            return np.stack([x, np.cross(u, x), u])
    return np.stack([nan, nan, u])


def rig_angles(cameras: dict[str, Camera], center_mm: np.ndarray) -> dict[str, tuple[float, float, float]]:
    """``{camera id: (azimuth_deg, elevation_deg, distance_mm)}`` of each camera seen from ``center_mm``
    in the rig's own frame (:func:`rig_axes`, with ``center_mm`` as the fallback centre): the same
    numbers whatever way the world is oriented. An angle the rig cannot define is NaN (module
    docstring): the azimuth of a camera on the up axis, both angles of a camera at ``center_mm``."""
    center = np.asarray(center_mm, float)
    axes = rig_axes(cameras, center)
    out = {}
    for cid, cam in cameras.items():
        v = cam.campos_mm - center
        d = axes @ v
        r = float(np.linalg.norm(d if np.all(np.isfinite(d)) else v))
        on_axis = not np.all(np.isfinite(axes[2])) or _horizontal(v, axes[2]) is None
        az = math.nan if on_axis else float(np.degrees(np.arctan2(d[1], d[0])) % 360.0)
        el = math.nan if r == 0.0 else float(np.degrees(np.arcsin(np.clip(d[2] / r, -1.0, 1.0))))
        out[cid] = (az, el, r)
    return out
