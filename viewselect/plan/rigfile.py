"""Read a proposed rig for ``viewselect plan --rig FILE``: InterHand2.6M camera JSON or a planner's CSV.

**JSON** — the InterHand2.6M camera file (``InterHand2.6M_<split>_camera.json``) or one capture of
it: ``{"campos": {id: [x, y, z] mm}, "camrot": {id: 3×3}, "focal": {id: [fx, fy] px},
"princpt": {id: [cx, cy] px}}``, optionally wrapped as ``{capture: {...}}`` (the first capture,
by number, is used). The file carries no image size; each camera's image is taken as
``round(2·cx + 1) × round(2·cy + 1)`` px (the principal point at the image centre).

**CSV** — one row per camera, columns ``camera, campos_x_mm, campos_y_mm, campos_z_mm, target_x_mm,
target_y_mm, target_z_mm, focal_px, width_px, height_px``: the camera at ``campos`` looks at
``target``, with its image up along the rig's up axis (world +Z, as the synthetic dome; a camera
looking straight up or down gets world +Y as image up), square pixels of focal ``focal_px``, the
principal point at the image centre ``((W − 1)/2, (H − 1)/2)``.

Every problem is one :class:`HandflowError` line naming the file, and the row / camera and column.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from handflow.data.index import parse_capture_cameras
from handflow.errors import HandflowError
from handflow.geometry.camera import Camera, look_at

CSV_COLUMNS = ("camera", "campos_x_mm", "campos_y_mm", "campos_z_mm", "target_x_mm", "target_y_mm",
               "target_z_mm", "focal_px", "width_px", "height_px")
UP = np.array([0.0, 0.0, 1.0])
MAX_IMAGE_PX = 8192


@dataclass(frozen=True)
class PlannedRig:
    """``cameras``: id -> :class:`Camera` (file order); ``image_hw``: id -> (H, W) px; ``source``: the file."""

    cameras: dict[str, Camera]
    image_hw: dict[str, tuple[int, int]]
    source: str

    def __post_init__(self):
        if not self.cameras:
            raise HandflowError(f"{self.source}: the rig has no camera")


def read_rig(path: str | Path) -> PlannedRig:
    """A rig from ``.json`` (InterHand2.6M cameras) or ``.csv`` (planner's table); see the module docstring."""
    path = Path(path)
    if not path.is_file():
        raise HandflowError(f"rig file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".json":
        return _read_json(path)
    if suffix == ".csv":
        return _read_csv(path)
    raise HandflowError(f"{path}: unknown rig file type {path.suffix!r} (expected .json or .csv)")


# ---------------------------------------------------------------- CSV


def _number(path: Path, row: int, col: str, text: str | None, positive: bool = False, whole: bool = False) -> float:
    where = f"{path} row {row}, column {col}"
    if text is None or str(text).strip() == "":
        raise HandflowError(f"{where}: empty cell")
    try:
        value = float(text)
    except ValueError:
        raise HandflowError(f"{where}: expected a number, found {text!r}") from None
    if not math.isfinite(value):
        raise HandflowError(f"{where}: expected a finite number, found {text!r}")
    if positive and value <= 0:
        raise HandflowError(f"{where}: must be positive, found {text!r}")
    if whole and (value != int(value) or value > MAX_IMAGE_PX):
        raise HandflowError(f"{where}: expected a whole number of pixels up to {MAX_IMAGE_PX}, found {text!r}")
    return value


def _read_csv(path: Path) -> PlannedRig:
    try:
        text = path.read_text(encoding="utf-8-sig")  # spreadsheets often write a byte-order mark
    except (OSError, UnicodeDecodeError) as err:
        raise HandflowError(f"cannot read {path}: {getattr(err, 'strerror', None) or err}") from None
    reader = csv.DictReader(text.splitlines())
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in CSV_COLUMNS if c not in header]
    if missing:
        raise HandflowError(f"{path}: missing column(s) {', '.join(missing)} (expected {','.join(CSV_COLUMNS)})")
    reader.fieldnames = header
    cams, sizes = {}, {}
    for row_no, row in enumerate(reader, start=2):  # row 1 is the header, as a spreadsheet numbers it
        if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
            continue  # blank line
        cid = (row.get("camera") or "").strip()
        if not cid:
            raise HandflowError(f"{path} row {row_no}, column camera: empty camera id")
        if cid in cams:
            raise HandflowError(f"{path} row {row_no}, column camera: duplicate camera id {cid!r}")
        pos = np.array([_number(path, row_no, f"campos_{a}_mm", row.get(f"campos_{a}_mm")) for a in "xyz"])
        tgt = np.array([_number(path, row_no, f"target_{a}_mm", row.get(f"target_{a}_mm")) for a in "xyz"])
        if np.linalg.norm(tgt - pos) < 1e-6:
            raise HandflowError(f"{path} row {row_no}, column target_x_mm: camera {cid} looks at its own position")
        focal = _number(path, row_no, "focal_px", row.get("focal_px"), positive=True)
        w = int(_number(path, row_no, "width_px", row.get("width_px"), positive=True, whole=True))
        h = int(_number(path, row_no, "height_px", row.get("height_px"), positive=True, whole=True))
        cams[cid] = Camera(R=look_at(pos, tgt, UP), campos_mm=pos, focal_px=np.array([focal, focal]),
                           princpt_px=np.array([(w - 1) / 2.0, (h - 1) / 2.0]))
        sizes[cid] = (h, w)
    return PlannedRig(cams, sizes, str(path))


# ---------------------------------------------------------------- JSON


def _read_json(path: Path) -> PlannedRig:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise HandflowError(f"cannot read {path}: {getattr(err, 'strerror', None) or err}") from None
    except ValueError as err:
        raise HandflowError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(doc, dict):
        raise HandflowError(f"{path}: expected an object with campos/camrot/focal/princpt, found {type(doc).__name__}")
    where = str(path)
    if "campos" not in doc:  # {capture: {...}}: the release's file
        keys = [k for k in doc if isinstance(doc[k], dict) and "campos" in doc[k]]
        if not keys:
            raise HandflowError(f"{path}: missing key campos (expected campos, camrot, focal, princpt per camera)")
        first = min(keys, key=lambda k: (int(k) if str(k).isdigit() else math.inf, str(k)))
        doc, where = doc[first], f"{path} capture {first}"
    cams = parse_capture_cameras(doc, where)  # the release's own camera checks (handflow.data.index)
    sizes = {}
    for cid, cam in cams.items():
        cx, cy = cam.princpt_px
        w, h = int(round(2 * cx + 1)), int(round(2 * cy + 1))
        if not (2 <= w <= MAX_IMAGE_PX and 2 <= h <= MAX_IMAGE_PX):
            raise HandflowError(f"{where} camera {cid}, princpt: {cam.princpt_px.tolist()} gives a {w}x{h} px "
                                "image (the principal point is taken as the image centre)")
        sizes[cid] = (h, w)
    return PlannedRig(cams, sizes, where)
