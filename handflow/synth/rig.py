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
the XY plane towards +Z, both of the camera position seen from the rig centre, in degrees
(:func:`handflow.geometry.rig.camera_angles`; the frame of any rig is in :mod:`handflow.geometry.rig`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from handflow.errors import HandflowError
from handflow.geometry.camera import Camera, look_at
from handflow.geometry.rig import camera_angles

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
