"""One reader for InterHand2.6M-layout data: the real release or the embedded synthetic capture.

Layout (checked against the public toolkit ``facebookresearch/InterHand2.6M``: ``DATASET.md``,
``data/InterHand2.6M/dataset.py``, ``tool/MANO_render/render.py``,
``tool/MANO_world_to_camera/convert.py``)::

    ROOT/images/{split}/Capture{c}/{seq_name}/cam{cam_id}/image{frame}.jpg
    ROOT/annotations/{split}/InterHand2.6M_{split}_data.json
    ROOT/annotations/{split}/InterHand2.6M_{split}_camera.json
    ROOT/annotations/{split}/InterHand2.6M_{split}_joint_3d.json
    ROOT/annotations/{split}/InterHand2.6M_{split}_MANO_NeuralAnnot.json   (optional)

Facts used here, as the toolkit has them:

* ``data.json`` is COCO-style. ``images[i]``: ``id``, ``file_name`` (relative to ``images/{split}``),
  ``width``, ``height``, ``capture`` (int), ``subject`` (int; absent in synthetic data), ``seq_name``,
  ``camera`` (str), ``frame_idx`` (int). ``annotations[i]``: ``id``, ``image_id``, ``bbox``
  ``[xmin, ymin, w, h]``, ``joint_valid`` (42 values, nested ``[[v], ...]`` in the release),
  ``hand_type`` (``right``/``left``/``interacting``), ``hand_type_valid``. The synthetic data adds
  ``joint_visible`` (42, from the depth buffer) and ``joint_img`` (42x2 px, the projection used when
  rendering); the reader uses ``joint_visible`` when present.
* ``camera.json``: ``{capture (str): {campos|camrot|focal|princpt: {camera (str): value}}}``; ``campos``
  in mm, ``camrot`` 3x3 world->camera rotation, ``focal``/``princpt`` in px.
* ``joint_3d.json``: ``{capture (str): {frame (str): {world_coord (42x3 mm), joint_valid,
  hand_type, hand_type_valid}}}``. (The toolkit's ``DATASET.md`` shows a bare Jx3 list per frame, its
  code reads ``['world_coord']`` and ``['joint_valid']``: the code is what the release holds.)
* ``MANO_NeuralAnnot.json``: ``{capture: {frame: {right|left: {pose 48, shape 10, trans 3} | null}}}``,
  world frame, ``trans`` in metres, for ``smplx`` MANO with ``use_pca=False`` (``flat_hand_mean=False``).
* World -> camera: ``X_cam = R @ (X_world - campos)`` with ``R = camrot`` (toolkit ``world2cam``;
  ``render.py`` writes it ``R @ X + t`` with ``t = -R @ campos``), millimetres. Projection
  ``u = fx * X / Z + cx``, ``v = fy * Y / Z + cy`` (``cam2pixel``).
* 42 joints: right hand 0-20, left hand 21-41; per hand thumb tip->base (0-3), index (4-7),
  middle (8-11), ring (12-15), pinky (16-19), wrist 20 (root; toolkit ``root_joint_idx`` 20 / 41).
  As in the toolkit's ``dataset.py``, a hand whose root joint is not valid has all its joints
  marked invalid.

Every malformed input raises
:class:`~handflow.errors.HandflowError` with one line naming the file and key.
"""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from handflow.data.crop import crop_affine, crop_box, crop_image
from handflow.data.selection import select_sequences
from handflow.errors import HandflowError
from handflow.geometry.camera import Camera
from handflow.io import file_digest, read_json

# the layout lives in handflow.keypoints; the names stay importable from here for older imports
from handflow.keypoints import (FINGERS, HAND_SLICES, HANDS, JOINT_HAND, JOINT_NAMES, N_JOINTS,  # noqa: F401
                                PARENTS, ROOT_IDX, SKELETON)


def annotation_path(root: Path, split: str, kind: str) -> Path:
    return Path(root) / "annotations" / split / f"InterHand2.6M_{split}_{kind}.json"


def annotation_digest(root: Path, split: str) -> str:
    """Cache key of a split's annotations: content digest of each JSON, size+mtime for huge ones (> 256 MiB)."""
    h = hashlib.sha256()
    ann = Path(root) / "annotations" / split
    for p in sorted(ann.glob("*.json")):
        st = p.stat()
        h.update(p.name.encode())
        h.update(file_digest(p).encode() if st.st_size < (256 << 20) else f"{st.st_size}:{st.st_mtime_ns}".encode())
    manifest = Path(root) / "viewselect_synth.json"  # the synthetic capture's generator settings
    if manifest.is_file():
        h.update(file_digest(manifest).encode())
    return h.hexdigest()[:16]


def _arr(value, shape, where: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError, OverflowError) as err:
        raise HandflowError(f"{where}: not a numeric array ({str(err)[:80]})") from err
    if arr.size != int(np.prod(shape)):
        if shape[0] == N_JOINTS and arr.ndim >= 1:
            raise HandflowError(f"{where}: has {arr.shape[0]} joints, expected {N_JOINTS}")
        raise HandflowError(f"{where}: expected {int(np.prod(shape))} values {shape}, found shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise HandflowError(f"{where}: non-finite number")
    return arr.reshape(shape)


class NoReadableImage(HandflowError):
    """Every requested image of one view is missing or unreadable (``load_view`` with skipping on)."""


def _int(value, where: str) -> int:
    """An integer field (``capture``, ``frame_idx``): ints or integral strings, else a one-line error."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise HandflowError(f"{where}: expected an integer, found {type(value).__name__}")
    try:
        return int(value)
    except ValueError:
        raise HandflowError(f"{where}: expected an integer, found {str(value)[:40]!r}") from None


def _key(value, where: str):
    """A JSON value usable as an id (``images[i].id``, ``annotations[i].image_id``)."""
    if isinstance(value, (list, dict)):
        raise HandflowError(f"{where}: expected a number or string, found {type(value).__name__}")
    return value


def load_image(path: Path) -> np.ndarray:
    """(H,W,3) uint8 RGB; missing, empty, corrupt or truncated files raise HandflowError."""
    if not path.is_file():
        raise HandflowError(f"missing image: {path}")
    try:
        with Image.open(path) as im:
            im.load()
            return np.array(im.convert("RGB"))
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as err:
        raise HandflowError(f"corrupt or truncated image: {path} ({err})") from err


class InterHandDataset(torch.utils.data.Dataset):
    """Index of (capture, sequence, camera, frame) images of one split, with cropped samples.

    ``selection`` a sequence spec (``Capture0-1``, ``Capture0/SEQ``, comma lists; see
    :mod:`handflow.data.selection`), ``cameras`` camera ids to keep, ``max_frames`` the first N frames
    (by frame id) of each sequence, ``crop_px`` the square crop size, ``hand_types`` which
    ``hand_type`` values to keep (``None`` = all), ``skip_bad_images`` count and skip unreadable
    images in :meth:`load_view` / :meth:`check_images` instead of raising, ``mano_dir`` the MANO
    model folder used only when visibility must be computed (no ``joint_visible`` stored).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "test",
        selection: str | None = None,
        cameras: list[str] | None = None,
        max_frames: int | None = None,
        crop_px: int = 128,
        hand_types: tuple[str, ...] | None = None,
        skip_bad_images: bool = False,
        mano_dir: str | None = None,
    ):
        self.root = Path(root)
        self.split = split
        self.crop_px = int(crop_px)
        self.skip_bad_images = skip_bad_images
        self.mano_dir = mano_dir
        self.skipped: list[str] = []
        self._hand_model = None
        self._vis_cache: dict[int, np.ndarray] = {}
        if self.crop_px < 1:
            raise HandflowError(f"crop size must be positive, got {crop_px}")
        if not (self.root / "annotations" / split).is_dir():
            raise HandflowError(f"missing annotation folder: {self.root / 'annotations' / split}")
        if not (self.root / "images" / split).is_dir():
            raise HandflowError(f"missing images folder: {self.root / 'images' / split}")

        self.data_path = annotation_path(self.root, split, "data")
        self.camera_path = annotation_path(self.root, split, "camera")
        self.joint_path = annotation_path(self.root, split, "joint_3d")
        self.mano_path = annotation_path(self.root, split, "MANO_NeuralAnnot")
        data = read_json(self.data_path)
        cams_raw = read_json(self.camera_path)
        joints_raw = read_json(self.joint_path)
        self._mano_raw = read_json(self.mano_path) if self.mano_path.exists() else None

        self._cameras = self._parse_cameras(cams_raw)
        for cap in joints_raw:
            if cap not in self._cameras:
                raise HandflowError(f"{self.joint_path}: capture {cap} is not in {self.camera_path.name}")
        self._joints_raw = joints_raw

        # ---- images and annotations
        for key in ("images", "annotations"):
            if not isinstance(data.get(key), list):
                raise HandflowError(f"{self.data_path}: missing or malformed key {key!r}")
        images = {}
        for i, img in enumerate(data["images"]):
            where = f"{self.data_path}: images[{i}]"
            if not isinstance(img, dict):
                raise HandflowError(f"{where}: not an object")
            for k in ("id", "file_name", "capture", "seq_name", "camera", "frame_idx"):
                if k not in img:
                    raise HandflowError(f"{where}: missing key {k!r}")
            for k in ("file_name", "seq_name", "camera"):
                if isinstance(img[k], (list, dict)) or img[k] is None:
                    raise HandflowError(f"{where}.{k}: expected a string, found {type(img[k]).__name__}")
            img = {**img, "capture": _int(img["capture"], f"{where}.capture"),
                   "frame_idx": _int(img["frame_idx"], f"{where}.frame_idx")}
            images[_key(img["id"], f"{where}.id")] = img
        all_seqs: dict[int, set] = defaultdict(set)
        for img in images.values():
            all_seqs[img["capture"]].add(str(img["seq_name"]))
        self.all_sequences = {c: sorted(s) for c, s in sorted(all_seqs.items())}
        if selection is not None:
            chosen = set(select_sequences(selection, self.all_sequences))
        else:
            chosen = {(c, s) for c, seqs in self.all_sequences.items() for s in seqs}
        if cameras is not None:
            cameras = [str(c) for c in cameras]
            known = set()
            for cap, _ in chosen:
                known |= set(self._cameras.get(str(cap), {}))
            for c in cameras:
                if c not in known:
                    raise HandflowError(f"unknown camera {c!r} (not in {self.camera_path.name} for the selected captures)")
            cam_set = set(cameras)
        else:
            cam_set = None

        items = []
        for i, ann in enumerate(data["annotations"]):
            where = f"{self.data_path}: annotations[{i}]"
            if not isinstance(ann, dict) or "image_id" not in ann:
                raise HandflowError(f"{where}: missing key 'image_id'")
            img = images.get(_key(ann["image_id"], f"{where}.image_id"))
            if img is None:
                raise HandflowError(f"{where}: image_id {ann['image_id']} is not in images")
            cap, seq, cam, frame = int(img["capture"]), str(img["seq_name"]), str(img["camera"]), int(img["frame_idx"])
            if (cap, seq) not in chosen or (cam_set is not None and cam not in cam_set):
                continue
            if hand_types is not None and ann.get("hand_type") not in hand_types:
                continue
            if "joint_valid" not in ann:
                raise HandflowError(f"{where}: missing key 'joint_valid'")
            valid = _arr(ann["joint_valid"], (N_JOINTS,), f"{where}.joint_valid")
            visible = _arr(ann["joint_visible"], (N_JOINTS,), f"{where}.joint_visible") if "joint_visible" in ann else None
            if str(cap) not in self._cameras:
                raise HandflowError(f"{self.camera_path}: missing capture {cap} (used by {self.data_path.name})")
            if cam not in self._cameras[str(cap)]:
                raise HandflowError(f"{self.camera_path}: capture {cap} has no camera {cam!r}")
            items.append(dict(
                capture=cap, seq=seq, camera=cam, frame=frame, file_name=str(img["file_name"]),
                width=img.get("width"), height=img.get("height"), ann_id=ann.get("id", i),
                valid=valid, visible=visible, hand_type=ann.get("hand_type"),
            ))
        # first max_frames frames per sequence
        if max_frames is not None:
            frames_of = defaultdict(set)
            for it in items:
                frames_of[(it["capture"], it["seq"])].add(it["frame"])
            keep = {k: set(sorted(v)[:max_frames]) for k, v in frames_of.items()}
            items = [it for it in items if it["frame"] in keep[(it["capture"], it["seq"])]]
        items.sort(key=lambda it: (it["capture"], it["seq"], it["frame"], it["camera"]))
        self.items = items
        self._where = {(it["capture"], it["seq"], it["camera"], it["frame"]): i for i, it in enumerate(items)}

        # ---- world joints of the frames used, validated once
        self._joints: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        for it in items:
            key = (it["capture"], it["frame"])
            if key in self._joints:
                continue
            cap_j = joints_raw.get(str(key[0]))
            if not isinstance(cap_j, dict):
                raise HandflowError(f"{self.joint_path}: missing capture {key[0]}")
            fr = cap_j.get(str(key[1]))
            if not isinstance(fr, dict) or "world_coord" not in fr:
                raise HandflowError(f"{self.joint_path}: capture {key[0]} frame {key[1]}: missing 'world_coord'")
            w = _arr(fr["world_coord"], (N_JOINTS, 3), f"{self.joint_path}: capture {key[0]} frame {key[1]} world_coord")
            v = (_arr(fr["joint_valid"], (N_JOINTS,), f"{self.joint_path}: capture {key[0]} frame {key[1]} joint_valid")
                 if "joint_valid" in fr else np.ones(N_JOINTS))
            self._joints[key] = (w, v)

        self._mano: dict[tuple[int, int], tuple] = {}

    # ------------------------------------------------------------------ parsing helpers
    def _parse_cameras(self, raw: dict) -> dict[str, dict[str, Camera]]:
        out = {}
        for cap, entry in raw.items():
            where = f"{self.camera_path}: capture {cap}"
            if not isinstance(entry, dict):
                raise HandflowError(f"{where}: not an object")
            for k in ("campos", "camrot", "focal", "princpt"):
                if not isinstance(entry.get(k), dict):
                    raise HandflowError(f"{where}: missing key {k!r}")
            cams = {}
            for cid in entry["campos"]:
                for k in ("camrot", "focal", "princpt"):
                    if cid not in entry[k]:
                        raise HandflowError(f"{where}: camera {cid} has no {k!r} entry")
                try:
                    cams[str(cid)] = Camera(
                        R=_arr(entry["camrot"][cid], (3, 3), f"{where} camrot {cid}"),
                        campos_mm=_arr(entry["campos"][cid], (3,), f"{where} campos {cid}"),
                        focal_px=_arr(entry["focal"][cid], (2,), f"{where} focal {cid}"),
                        princpt_px=_arr(entry["princpt"][cid], (2,), f"{where} princpt {cid}"),
                    )
                except KeyError as err:
                    raise HandflowError(f"{where}: camera {cid} has no {err.args[0]!r} entry") from err
                except HandflowError as err:
                    msg = str(err)
                    raise HandflowError(msg if msg.startswith(str(self.camera_path)) else f"{where} camera {cid}: {msg}") from err
            out[str(cap)] = cams
        return out

    def _mano_params(self, capture: int, frame: int):
        key = (capture, frame)
        if key in self._mano:
            return self._mano[key]
        pose = np.zeros((2, 48))
        shape = np.zeros((2, 10))
        trans = np.zeros((2, 3))
        valid = np.zeros(2)
        if self._mano_raw is not None:
            cap_m = self._mano_raw.get(str(capture))
            fr = cap_m.get(str(frame)) if isinstance(cap_m, dict) else None
            if isinstance(fr, dict):
                for h, hand in enumerate(HANDS):
                    p = fr.get(hand)
                    if p is None:
                        continue
                    where = f"{self.mano_path}: capture {capture} frame {frame} {hand}"
                    if not isinstance(p, dict) or not all(k in p for k in ("pose", "shape", "trans")):
                        raise HandflowError(f"{where}: expected pose/shape/trans")
                    pose[h] = _arr(p["pose"], (48,), f"{where} pose")
                    shape[h] = _arr(p["shape"], (10,), f"{where} shape")
                    trans[h] = _arr(p["trans"], (3,), f"{where} trans")
                    valid[h] = 1.0
        self._mano[key] = (pose, shape, trans, valid)
        return self._mano[key]

    # ------------------------------------------------------------------ public queries
    def __len__(self) -> int:
        return len(self.items)

    def available(self) -> dict[int, list[str]]:
        """``{capture: [sequence names]}`` of what this dataset indexes (after selection)."""
        out = defaultdict(set)
        for it in self.items:
            out[it["capture"]].add(it["seq"])
        return {c: sorted(s) for c, s in sorted(out.items())}

    def cameras(self, capture: int) -> dict[str, Camera]:
        cams = self._cameras.get(str(capture))
        if cams is None:
            raise HandflowError(f"unknown capture Capture{capture} in {self.camera_path}")
        return dict(cams)

    def camera(self, capture: int, cam_id: str) -> Camera:
        cams = self.cameras(capture)
        if str(cam_id) not in cams:
            raise HandflowError(f"unknown camera {cam_id!r} for Capture{capture} in {self.camera_path}")
        return cams[str(cam_id)]

    def camera_ids(self, capture: int, seq: str | None = None) -> list[str]:
        """Camera ids with indexed images for a capture (and sequence)."""
        return sorted({it["camera"] for it in self.items if it["capture"] == capture and (seq is None or it["seq"] == seq)})

    def frames(self, capture: int, seq: str) -> list[int]:
        fr = sorted({it["frame"] for it in self.items if it["capture"] == capture and it["seq"] == seq})
        if not fr:
            raise HandflowError(f"unknown sequence Capture{capture}/{seq} in {self.data_path}")
        return fr

    def index_of(self, capture: int, seq: str, cam_id: str, frame: int) -> int:
        key = (int(capture), str(seq), str(cam_id), int(frame))
        if key not in self._where:
            self.frames(int(capture), str(seq))
            self.camera(int(capture), str(cam_id))
            raise HandflowError(f"no image Capture{capture}/{seq} cam{cam_id} frame {frame} in {self.data_path}")
        return self._where[key]

    def image_path(self, i: int) -> Path:
        return self.root / "images" / self.split / self.items[i]["file_name"]

    def check_images(self) -> list[str]:
        """Open every indexed image; bad ones raise, or (``skip_bad_images``) are dropped and listed."""
        bad = []
        for i in range(len(self.items)):
            try:
                load_image(self.image_path(i))
            except HandflowError as err:
                if not self.skip_bad_images:
                    raise
                bad.append(str(err))
        if bad:
            keep = [i for i in range(len(self.items)) if not any(str(self.image_path(i)) in b for b in bad)]
            self.items = [self.items[i] for i in keep]
            self._where = {(it["capture"], it["seq"], it["camera"], it["frame"]): i for i, it in enumerate(self.items)}
            self.skipped.extend(bad)
        return bad

    # ------------------------------------------------------------------ samples
    def geometry(self, i: int, image_hw: tuple[int, int]) -> dict:
        """Annotations of item ``i`` as float64 numpy (no image decoding): ``world``, ``cam``, ``img``
        (42x3/42x2), ``valid``, ``visible`` (42), crop ``box`` and affine ``A``, ``K``, ``R``, ``campos``,
        MANO ``pose``/``shape``/``trans``/``mvalid``. ``image_hw`` is the image size (for the crop and a
        visibility computed from MANO)."""
        it = self.items[i]
        cam = self._cameras[str(it["capture"])][it["camera"]]
        world, valid3d = self._joints[(it["capture"], it["frame"])]
        jc = cam.world_to_cam(world)
        ji = cam.project(jc)
        valid = it["valid"] * valid3d
        for hand, sl in HAND_SLICES.items():
            valid[sl] = valid[sl] * valid[ROOT_IDX[hand]]
        visible = it["visible"]
        if visible is None:
            visible = self._computed_visibility(i, image_hw, cam, jc, valid)
        visible = visible * (valid > 0)
        if not np.all(np.abs(ji[valid > 0]) < 1e9):  # also false for NaN
            raise HandflowError(f"{self.camera_path}: capture {it['capture']} camera {it['camera']}: the joints of "
                                f"frame {it['frame']} project to non-finite or absurd pixels (check the camera)")
        box = crop_box(ji, valid, image_hw)
        if box.side > 8 * max(image_hw):  # would allocate a huge crop; the joints are nowhere near the image
            raise HandflowError(f"{self.camera_path}: capture {it['capture']} camera {it['camera']}: the joints of "
                                f"frame {it['frame']} span {box.side} px, far beyond the {image_hw[1]}x{image_hw[0]} "
                                "image (check the camera and joint_3d.json)")
        A = crop_affine(box, self.crop_px)
        pose, shape, trans, mvalid = self._mano_params(it["capture"], it["frame"])
        return dict(
            world=world, cam=jc, img=ji, valid=valid, visible=visible, box=box, A=A, K=cam.K, R=cam.R,
            campos=cam.campos_mm, pose=pose, shape=shape, trans=trans, mvalid=mvalid,
        )

    def _computed_visibility(self, i, image_hw, cam, joints_cam, valid) -> np.ndarray:
        if i in self._vis_cache:
            return self._vis_cache[i]
        it = self.items[i]
        pose, shape, trans, mvalid = self._mano_params(it["capture"], it["frame"])
        if mvalid.sum() == 0:
            vis = valid.copy()
        else:
            vis = mano_visibility(self._get_hand_model(), pose, shape, trans, mvalid, cam, image_hw, joints_cam)
        self._vis_cache[i] = vis
        return vis

    def _get_hand_model(self):
        if self._hand_model is None:
            from handflow.hand.model import HandModel

            self._hand_model = HandModel.from_dir(self.mano_dir)
        return self._hand_model

    def _sample(self, i: int, img: np.ndarray) -> dict:
        it = self.items[i]
        H, W = img.shape[:2]
        g = self.geometry(i, (H, W))
        image = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float() / 255.0
        crop = crop_image(image, g["box"], self.crop_px).clamp(0.0, 1.0)
        f32 = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
        return {
            "image": crop,
            "K": f32(g["K"]),
            "K_crop": f32(g["A"] @ g["K"]),
            "crop_affine": f32(g["A"]),
            "joints_world_mm": f32(g["world"]),
            "joints_cam_mm": f32(g["cam"]),
            "joints_img_px": f32(g["img"]),
            "joints_crop_px": f32(g["img"] @ g["A"][:2, :2].T + g["A"][:2, 2]),
            "joint_valid": f32(g["valid"]),
            "joint_visible": f32(g["visible"]),
            "mano_pose": f32(g["pose"]),
            "mano_shape": f32(g["shape"]),
            "mano_trans_m": f32(g["trans"]),
            "mano_valid": f32(g["mvalid"]),
            "R": f32(g["R"]),
            "campos_mm": f32(g["campos"]),
            "image_hw": torch.tensor([H, W]),
            "capture": it["capture"],
            "seq": it["seq"],
            "camera": it["camera"],
            "frame": it["frame"],
        }

    def __getitem__(self, i: int) -> dict:
        """One sample (see the keys in the README / module docstring). A bad image raises HandflowError."""
        if not 0 <= i < len(self.items):
            raise IndexError(i)
        return self._sample(i, load_image(self.image_path(i)))

    def load_full_image(self, i: int) -> np.ndarray:
        return load_image(self.image_path(i))

    def load_view(self, capture: int, seq: str, cam_id: str, frames: list[int] | None = None,
                  skip_bad_images: bool | None = None) -> dict:
        """All (or the given) frames of one camera of one sequence as batched tensors (B leading).

        Keys as :meth:`__getitem__` stacked, plus ``frame`` (list[int]) and ``skipped`` (list of
        one-line messages for unreadable images, skipped when ``skip_bad_images``, else raised).
        """
        capture, seq, cam_id = int(capture), str(seq), str(cam_id)
        all_frames = self.frames(capture, seq)
        self.camera(capture, cam_id)
        if frames is None:
            frames = all_frames
        skip = self.skip_bad_images if skip_bad_images is None else skip_bad_images
        samples, used, skipped = [], [], []
        for fr in frames:
            i = self.index_of(capture, seq, cam_id, fr)
            try:
                img = load_image(self.image_path(i))
            except HandflowError as err:
                if not skip:
                    raise
                skipped.append(str(err))
                continue
            samples.append(self._sample(i, img))
            used.append(fr)
        self.skipped.extend(skipped)
        if not samples:
            raise NoReadableImage(f"no readable image for Capture{capture}/{seq} cam{cam_id}: {skipped[0] if skipped else 'no frames'}")
        out = {k: torch.stack([s[k] for s in samples]) for k, v in samples[0].items() if isinstance(v, torch.Tensor)}
        out.update(capture=capture, seq=seq, camera=cam_id, frame=used, skipped=skipped)
        return out

    def image_hw(self, i: int) -> tuple[int, int]:
        """``(H, W)`` px of item ``i``: from data.json, or by decoding the image when it lacks them."""
        it = self.items[i]
        if it.get("width") and it.get("height"):
            return int(it["height"]), int(it["width"])
        return tuple(self.load_full_image(i).shape[:2])

    def annotations(self, i: int) -> dict | None:
        """MultiHands annotations of item ``i`` (written by ``viewselect annotate``), ground truth first:
        ``pose (K,2,48)`` rad, ``shape (K,2,10)``, ``trans (K,2,3)`` m (world frame, NeuralAnnot semantics) and
        ``joints_world_mm (K,42,3)``; None when the sequence has no MultiHands file or lacks the image."""
        from handflow.multihands.store import read_sequence, sequence_path

        it = self.items[i]
        cache = self.__dict__.setdefault("_multihands", {})
        key = (it["capture"], it["seq"])
        if key not in cache:
            path = sequence_path(self.root, self.split, *key)
            if path.is_file():
                arrays, _ = read_sequence(path)
                rows = {(str(c), int(f)): r for r, (c, f) in enumerate(zip(arrays["camera"], arrays["frame"]))}
                cache[key] = (arrays, rows)
            else:
                cache[key] = None
        if cache[key] is None:
            return None
        arrays, rows = cache[key]
        r = rows.get((it["camera"], it["frame"]))
        if r is None:
            return None
        n = int(arrays["count"][r])
        out = {k: torch.from_numpy(arrays[k][r, :n].copy()) for k in ("pose", "shape", "trans")}
        with torch.no_grad():
            out["joints_world_mm"] = self._get_hand_model().keypoints_from_mano(out["pose"], out["shape"], out["trans"]).float()
        return out


def mano_visibility(hand_model, pose, shape, trans, mano_valid, cam: Camera, image_hw, joints_cam) -> np.ndarray:
    """(42,) float visibility of ``joints_cam (42,3)`` against the MANO meshes rendered in ``cam``.

    Hands without parameters (``mano_valid == 0``) do not occlude; their joints are tested against
    the other hand only.
    """
    from handflow.data.raster import rasterize, visibility

    with torch.no_grad():
        t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)[None]  # noqa: E731
        verts = hand_model.mesh_from_mano(t(pose), t(shape), t(trans))[0]  # (2,V,3) mm world
        faces = torch.as_tensor(np.asarray(hand_model.faces), dtype=torch.long)
        V = verts.shape[1]
        keep = [h for h in range(2) if mano_valid[h] > 0]
        vs = torch.cat([verts[h] for h in keep], 0).double()
        fs = torch.cat([faces[h] + k * V for k, h in enumerate(keep)], 0)
        labels = torch.cat([torch.full((faces.shape[1],), h, dtype=torch.long) for h in keep])
        vc = cam.world_to_cam(vs)
        frags = rasterize(vc[None], fs, torch.as_tensor(cam.K), image_hw, labels)
        vis = visibility(torch.as_tensor(joints_cam)[None], frags, torch.as_tensor(cam.K), torch.as_tensor(JOINT_HAND))[0]
    return vis.numpy().astype(np.float64)
