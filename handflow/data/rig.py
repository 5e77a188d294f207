"""Camera rigs of the synthetic capture: a 140-camera dome like InterHand2.6M's, and random training rigs.

World frame (synthetic data): millimetres, +Z up, the hands interact around ``RIG_CENTER_MM``
(about a table height above the origin, so that world coordinates are not trivially zero and a
reader that forgets ``campos`` fails loudly). Cameras follow the InterHand2.6M convention
``X_cam = R @ (X_world - campos)`` (OpenCV axes: +Z forward, +X right, +Y down), see
:mod:`handflow.geometry.camera`.

Intrinsics: InterHand2.6M images are 334 x 512 (W x H, portrait) with focal lengths of roughly
1000-1300 px and the principal point near the image centre. ``FULL_RES_FOCAL_PX`` is that focal at
the full 512-px height; a rig for another image size scales focal and principal point by
``height / 512`` (the default synthetic image 168 x 256 is the full size halved). Every camera gets
a small focal (+-3 %) and principal-point (+-2 % of the size) jitter, as a calibrated real rig has.

Camera ids are strings shaped like InterHand2.6M's (``"400002"``, ``"400003"``, ..., then
``"410001"``, ...). Azimuth is measured in the world XY plane from +X towards +Y, elevation from
the XY plane towards +Z, both of the camera position seen from the rig centre, in degrees.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from handflow.errors import HandflowError
from handflow.geometry.camera import Camera, look_at

RIG_CENTER_MM = np.array([0.0, 0.0, 1000.0])
DOME_CAMERAS = 140
DOME_RADIUS_MM = 1000.0
ELEVATION_RANGE_DEG = (-35.0, 80.0)
FULL_RES_HW = (512, 334)
FULL_RES_FOCAL_PX = 1050.0


@dataclass(frozen=True)
class Rig:
    """Cameras of one capture, with the dome angles of each camera (for tables and plots)."""

    cameras: dict[str, Camera]
    azimuth_deg: dict[str, float]
    elevation_deg: dict[str, float]
    image_hw: tuple[int, int]
    center_mm: np.ndarray = field(default_factory=lambda: RIG_CENTER_MM.copy())

    @property
    def ids(self) -> list[str]:
        return list(self.cameras)

    def subset(self, ids: list[str]) -> "Rig":
        missing = [c for c in ids if c not in self.cameras]
        if missing:
            raise HandflowError(f"unknown camera {missing[0]!r} in rig")
        return Rig(
            {c: self.cameras[c] for c in ids},
            {c: self.azimuth_deg[c] for c in ids},
            {c: self.elevation_deg[c] for c in ids},
            self.image_hw,
            self.center_mm,
        )


def camera_ids(n: int) -> list[str]:
    """InterHand2.6M-like camera names: 400002..400069, then 410001, 410002, ..."""
    ids = []
    for i in range(n):
        ids.append(str(400002 + i) if i < 68 else str(410001 + (i - 68)))
    return ids


def scaled_intrinsics(image_hw: tuple[int, int]) -> tuple[float, np.ndarray]:
    """Base focal (px) and principal point (x, y) for an image of ``(H, W)`` pixels."""
    h, w = image_hw
    scale = h / FULL_RES_HW[0]
    return FULL_RES_FOCAL_PX * scale, np.array([(w - 1) / 2.0, (h - 1) / 2.0])


def camera_angles(campos_mm: np.ndarray, center_mm: np.ndarray = RIG_CENTER_MM) -> tuple[float, float]:
    """(azimuth, elevation) in degrees of a camera position seen from ``center_mm``."""
    d = np.asarray(campos_mm, float) - np.asarray(center_mm, float)
    az = float(np.degrees(np.arctan2(d[1], d[0])) % 360.0)
    el = float(np.degrees(np.arcsin(np.clip(d[2] / np.linalg.norm(d), -1.0, 1.0))))
    return az, el


def _make_camera(
    rng: np.random.Generator,
    az_deg: float,
    el_deg: float,
    radius_mm: float,
    image_hw: tuple[int, int],
    center_mm: np.ndarray,
    aim_jitter_mm: float,
    roll_deg: float,
    focal_jitter: float = 0.03,
    princpt_jitter: float = 0.02,
) -> Camera:
    az, el = np.radians(az_deg), np.radians(el_deg)
    direction = np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
    campos = center_mm + radius_mm * direction
    target = center_mm + rng.uniform(-aim_jitter_mm, aim_jitter_mm, size=3)
    R = look_at(campos, target)
    if roll_deg:
        a = np.radians(roll_deg)
        roll = np.array([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0], [0.0, 0.0, 1.0]])
        R = roll @ R
    f0, c0 = scaled_intrinsics(image_hw)
    h, w = image_hw
    fx = f0 * (1.0 + rng.uniform(-focal_jitter, focal_jitter))
    focal = np.array([fx, fx * (1.0 + rng.uniform(-0.003, 0.003))])  # near-square pixels, as real calibrations
    princpt = c0 + rng.uniform(-princpt_jitter, princpt_jitter, size=2) * np.array([w, h])
    return Camera(R=R, campos_mm=campos, focal_px=focal, princpt_px=princpt)


def dome_rig(
    image_hw: tuple[int, int] = (256, 168),
    n_cameras: int = DOME_CAMERAS,
    seed: int = 0,
    radius_mm: float = DOME_RADIUS_MM,
    center_mm: np.ndarray = RIG_CENTER_MM,
) -> Rig:
    """The test dome: ``n_cameras`` cameras on a spherical band (elevation -35..+80 deg, all azimuths).

    Directions come from a Fibonacci lattice restricted to the band (even coverage), with a little
    angular jitter; distances are ``radius_mm`` +-10 %; each camera aims at the rig centre within
    +-30 mm, with up to +-5 deg roll.
    """
    if n_cameras < 1:
        raise HandflowError(f"a rig needs at least one camera, asked for {n_cameras}")
    rng = np.random.default_rng([seed, 7919])
    lo, hi = np.sin(np.radians(ELEVATION_RANGE_DEG[0])), np.sin(np.radians(ELEVATION_RANGE_DEG[1]))
    golden = np.pi * (3.0 - np.sqrt(5.0))
    cams, az, el = {}, {}, {}
    for i, cid in enumerate(camera_ids(n_cameras)):
        z = lo + (hi - lo) * (i + 0.5) / n_cameras
        el_deg = float(np.degrees(np.arcsin(z))) + rng.uniform(-2.0, 2.0)
        az_deg = float(np.degrees(i * golden) % 360.0) + rng.uniform(-3.0, 3.0)
        radius = radius_mm * rng.uniform(0.9, 1.1)
        cam = _make_camera(rng, az_deg, el_deg, radius, image_hw, np.asarray(center_mm, float), 20.0,
                           rng.uniform(-5.0, 5.0))
        cams[cid] = cam
        az[cid], el[cid] = camera_angles(cam.campos_mm, center_mm)
    return Rig(cams, az, el, tuple(image_hw), np.asarray(center_mm, float).copy())


def random_rig(
    rng: np.random.Generator,
    image_hw: tuple[int, int],
    n_cameras: int,
    center_mm: np.ndarray = RIG_CENTER_MM,
) -> Rig:
    """A training rig: the dome re-drawn with more spread (distance 0.8-1.25 m, elevation -45..85 deg,
    aim +-40 mm, roll +-12 deg, focal +-8 %), so training views are not exactly the test views."""
    cams, az, el = {}, {}, {}
    lo, hi = np.sin(np.radians(-45.0)), np.sin(np.radians(85.0))
    for cid in camera_ids(n_cameras):
        el_deg = float(np.degrees(np.arcsin(rng.uniform(lo, hi))))
        az_deg = float(rng.uniform(0.0, 360.0))
        radius = DOME_RADIUS_MM * rng.uniform(0.8, 1.25)
        cam = _make_camera(rng, az_deg, el_deg, radius, image_hw, np.asarray(center_mm, float), 40.0,
                           rng.uniform(-12.0, 12.0), focal_jitter=0.08, princpt_jitter=0.04)
        cams[cid] = cam
        az[cid], el[cid] = camera_angles(cam.campos_mm, center_mm)
    return Rig(cams, az, el, tuple(image_hw), np.asarray(center_mm, float).copy())


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
    rigs); for the synthetic rig pass ``RIG_CENTER_MM`` and ``(0, 0, 1)`` to get :class:`Rig`'s angles.
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
