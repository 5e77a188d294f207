"""Captures derived from the tiny one for tests: the world moved rigidly, or only some cameras kept.

Cameras, 3D joints and MANO hands move together and the images stay the same, so every number of
``rank`` that does not name a world coordinate must come out unchanged.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import torch
from scipy.spatial.transform import Rotation

ANN = Path("annotations") / "test"


def _path(root: Path, kind: str) -> Path:
    return root / ANN / f"InterHand2.6M_test_{kind}.json"


def _load(root: Path, kind: str):
    return json.loads(_path(root, kind).read_text())


def _save(root: Path, kind: str, obj) -> None:
    _path(root, kind).write_text(json.dumps(obj))


def move_capture(src, dst, Q: np.ndarray, t_mm=(0.0, 0.0, 0.0)) -> None:
    """Copy the capture at ``src`` to ``dst`` with the world moved by ``X -> Q X + t_mm`` (Q (3,3) a rotation)."""
    from handflow.hand.model import HandModel
    from handflow.synth.mano import default_mano_dir

    src, dst = Path(src), Path(dst)
    Q, t = np.asarray(Q, float), np.asarray(t_mm, float)
    shutil.copytree(src, dst)
    cams = _load(dst, "camera")
    for entry in cams.values():
        for cid in entry["campos"]:
            entry["campos"][cid] = (Q @ np.asarray(entry["campos"][cid]) + t).tolist()
            entry["camrot"][cid] = (np.asarray(entry["camrot"][cid]) @ Q.T).tolist()
    _save(dst, "camera", cams)
    joints = _load(dst, "joint_3d")
    for frames in joints.values():
        for fr in frames.values():
            fr["world_coord"] = (np.asarray(fr["world_coord"]) @ Q.T + t).tolist()
    _save(dst, "joint_3d", joints)
    hands = HandModel.from_dir(default_mano_dir())
    mano = _load(dst, "MANO_NeuralAnnot")
    for frames in mano.values():
        for fr in frames.values():
            for h, hand in enumerate(("right", "left")):
                p = fr.get(hand)
                if p is None:
                    continue
                # MANO rotates about its root joint J0: world root = J0 + trans stays put under the new orient
                pose = torch.zeros(1, 2, 48, dtype=torch.float64)
                shape = torch.zeros(1, 2, 10, dtype=torch.float64)
                trans = torch.zeros(1, 2, 3, dtype=torch.float64)
                pose[0, h], shape[0, h], trans[0, h] = (torch.tensor(p[k], dtype=torch.float64)
                                                       for k in ("pose", "shape", "trans"))
                root = hands.keypoints_from_mano(pose, shape, trans)[0, 21 * h + 20].double().numpy() / 1000.0
                orient = Rotation.from_matrix(Q @ Rotation.from_rotvec(p["pose"][:3]).as_matrix()).as_rotvec()
                p["pose"] = [*orient.tolist(), *p["pose"][3:]]
                p["trans"] = (np.asarray(p["trans"]) + Q @ root + t / 1000.0 - root).tolist()
    _save(dst, "MANO_NeuralAnnot", mano)


def keep_cameras(root, ids: list[str]) -> None:
    """Edit the capture at ``root`` in place to hold only the cameras ``ids`` (their images and annotations)."""
    root = Path(root)
    keep = set(ids)
    cams = _load(root, "camera")
    for entry in cams.values():
        for field in ("campos", "camrot", "focal", "princpt"):
            entry[field] = {c: v for c, v in entry[field].items() if c in keep}
    _save(root, "camera", cams)
    data = _load(root, "data")
    images = [im for im in data["images"] if im["camera"] in keep]
    ids_kept = {im["id"] for im in images}
    data = {"images": images, "annotations": [a for a in data["annotations"] if a["image_id"] in ids_kept]}
    _save(root, "data", data)
    for cam_dir in (root / "images" / "test").glob("Capture*/*/cam*"):
        if cam_dir.name[3:] not in keep:
            shutil.rmtree(cam_dir)


def set_cameras(root, cameras: dict[str, tuple]) -> None:
    """Overwrite the extrinsics of some cameras of every capture: ``{id: (campos (3,) mm, camrot (3,3))}``
    (their images stay: only what the rig frame reads changes)."""
    root = Path(root)
    cams = _load(root, "camera")
    for entry in cams.values():
        for cid, (pos, rot) in cameras.items():
            entry["campos"][cid] = np.asarray(pos, float).tolist()
            entry["camrot"][cid] = np.asarray(rot, float).tolist()
    _save(root, "camera", cams)


def one_camera_release(src, dst, camera: str) -> Path:
    """A monocular release: only ``camera`` kept, and the world is that camera's own frame (``campos`` 0,
    ``camrot`` the identity), as monocular captures are usually stored. Returns ``dst``."""
    src, dst = Path(src), Path(dst)
    first = _load(src, "camera")
    R = {np.asarray(e["camrot"][camera]).round(12).tobytes() for e in first.values()}
    c = {np.asarray(e["campos"][camera]).round(9).tobytes() for e in first.values()}
    assert len(R) == 1 and len(c) == 1, "the camera must sit in the same place in every capture"
    entry = next(iter(first.values()))
    R, c = np.asarray(entry["camrot"][camera], float), np.asarray(entry["campos"][camera], float)
    move_capture(src, dst, R, -R @ c)  # X_cam = R (X - c): the camera's frame becomes the world
    keep_cameras(dst, [camera])
    cams = _load(dst, "camera")
    for e in cams.values():  # exactly 0 and the identity, as such a file holds them (not 1e-13 off)
        e["campos"][camera] = [0.0, 0.0, 0.0]
        e["camrot"][camera] = np.eye(3).tolist()
    _save(dst, "camera", cams)
    return dst


def add_upside_down_twin(root, camera: str, twin: str) -> None:
    """Edit the capture at ``root`` in place: add camera ``twin``, ``camera`` mounted upside down at the same
    place (rolled 180° about its optical axis; its images turned by 180°, its principal point mirrored),
    so that the two cameras' image-up directions cancel and the rig has no up axis."""
    from PIL import Image

    root = Path(root)
    data = _load(root, "data")
    size = {im["camera"]: (im["width"], im["height"]) for im in data["images"]}
    W, H = size[camera]
    cams = _load(root, "camera")
    for entry in cams.values():
        cx, cy = entry["princpt"][camera]
        entry["campos"][twin] = entry["campos"][camera]
        entry["camrot"][twin] = (np.diag([-1.0, -1.0, 1.0]) @ np.asarray(entry["camrot"][camera])).tolist()
        entry["focal"][twin] = entry["focal"][camera]
        entry["princpt"][twin] = [W - 1 - cx, H - 1 - cy]
    _save(root, "camera", cams)
    anns = {a["image_id"]: a for a in data["annotations"]}
    next_id = max(im["id"] for im in data["images"]) + 1
    for im in [im for im in data["images"] if im["camera"] == camera]:
        rel = im["file_name"].replace(f"/cam{camera}/", f"/cam{twin}/")
        out = root / "images" / "test" / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        Image.open(root / "images" / "test" / im["file_name"]).transpose(Image.Transpose.ROTATE_180).save(out, quality=95)
        a = dict(anns[im["id"]])
        x, y, w, h = a["bbox"]
        a.update(id=next_id, image_id=next_id, bbox=[W - 1 - (x + w), H - 1 - (y + h), w, h],
                 joint_img=[[W - 1 - u, H - 1 - v] for u, v in a["joint_img"]])
        data["images"].append({**im, "id": next_id, "file_name": rel, "camera": twin})
        data["annotations"].append(a)
        next_id += 1
    _save(root, "data", data)
