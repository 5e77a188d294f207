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
import json
import os
from pathlib import Path

import numpy as np
import polars as pl
import torch
from PIL import Image, UnidentifiedImageError

from handflow.data.crop import crop_affine, crop_box, crop_image
from handflow.data.index import annotation_path, ensure_index
from handflow.data.selection import pick_frames, select_sequences
from handflow.errors import HandflowError
from handflow.geometry.camera import Camera
from handflow.io import file_digest

# the layout lives in handflow.keypoints; the names stay importable from here for older imports
from handflow.keypoints import (FINGERS, HAND_SLICES, HANDS, JOINT_HAND, JOINT_NAMES, N_JOINTS,  # noqa: F401
                                PARENTS, ROOT_IDX, SKELETON)


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


class NoReadableImage(HandflowError):
    """Every requested image of one view is missing or unreadable (``load_view`` with skipping on)."""


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


class Items:
    """The dataset's annotated images, columnar (a million rows cost tens of MB, not GB): ``items[i]`` is a
    dict ``capture, seq, camera, frame, file_name, width, height, ann_id, hand_type, valid (42,)``,
    ``visible (42,) | None``, rows sorted by ``(capture, seq, frame, camera)``."""

    _SCALARS = ("capture", "seq", "camera", "frame", "file_name", "width", "height", "ann_id", "hand_type")

    def __init__(self, rows: pl.DataFrame):
        self._n = len(rows)
        self._cols = {k: rows[k].to_numpy() if k in ("capture", "frame") else np.asarray(rows[k].to_list(), dtype=object)
                      for k in self._SCALARS}
        self._valid = _matrix(rows["valid"])  # (n,42) float32
        self._has_visible = rows["visible"].is_not_null().to_numpy()
        self._visible = _matrix(rows["visible"])  # NaN rows where not stored
        self._index_sequences()

    def _index_sequences(self) -> None:
        """Rows of each sequence: a contiguous slice, as rows are sorted."""
        cap, seq = self._cols["capture"], self._cols["seq"]
        starts = np.flatnonzero((cap[1:] != cap[:-1]) | (seq[1:] != seq[:-1])) + 1 if self._n else np.zeros(0, int)
        bounds = [0, *starts.tolist(), self._n]
        self._slices = {(int(cap[a]), str(seq[a])): (a, b) for a, b in zip(bounds, bounds[1:])} if self._n else {}
        self._lookup: dict[tuple[int, str], dict] = {}

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i: int) -> dict:
        if not -self._n <= i < self._n:
            raise IndexError(i)
        c = self._cols
        return {
            "capture": int(c["capture"][i]), "seq": c["seq"][i], "camera": c["camera"][i], "frame": int(c["frame"][i]),
            "file_name": c["file_name"][i], "width": c["width"][i], "height": c["height"][i],
            "ann_id": json.loads(c["ann_id"][i]), "hand_type": c["hand_type"][i],
            "valid": self._valid[i].astype(np.float64),
            "visible": self._visible[i].astype(np.float64) if self._has_visible[i] else None,
        }

    def __iter__(self):
        return (self[i] for i in range(self._n))

    def file_name(self, i: int) -> str:
        return self._cols["file_name"][i]

    def sequences(self) -> list[tuple[int, str]]:
        return list(self._slices)

    def rows_of(self, capture: int, seq: str) -> range:
        """Rows of one sequence (empty when absent)."""
        return range(*self._slices.get((int(capture), str(seq)), (0, 0)))

    def column(self, name: str, capture: int, seq: str) -> np.ndarray:
        a, b = self._slices.get((int(capture), str(seq)), (0, 0))
        return self._cols[name][a:b]

    def find(self, capture: int, seq: str, camera: str, frame: int) -> int | None:
        """Row of one image (the last annotation of it, as the JSON reader kept), or None."""
        key = (capture, seq)
        if key not in self._lookup:
            a, b = self._slices.get(key, (0, 0))
            cams, frames = self._cols["camera"], self._cols["frame"]
            self._lookup[key] = {(cams[i], int(frames[i])): i for i in range(a, b)}
        return self._lookup[key].get((camera, frame))

    def frame_keys(self) -> set[tuple[int, int]]:
        return set(zip(self._cols["capture"].tolist(), self._cols["frame"].tolist()))

    def take(self, rows: list[int]) -> "Items":
        """The given rows (in order) as a new :class:`Items`."""
        idx = np.asarray(rows, dtype=np.int64)
        out = object.__new__(Items)
        out._n = len(idx)
        out._cols = {k: v[idx] for k, v in self._cols.items()}
        out._valid, out._has_visible, out._visible = self._valid[idx], self._has_visible[idx], self._visible[idx]
        out._index_sequences()
        return out


def _matrix(col: pl.Series) -> np.ndarray:
    """An ``Array(Float32, 42)`` column as ``(n, 42)`` float32 (null rows: NaN)."""
    return col.to_numpy().reshape(len(col), N_JOINTS).astype(np.float32) if len(col) else np.zeros((0, N_JOINTS), np.float32)


class InterHandDataset(torch.utils.data.Dataset):
    """Index of (capture, sequence, camera, frame) images of one split, with cropped samples.

    ``selection`` a sequence spec (``Capture0-1``, ``Capture0/SEQ``, comma lists; see
    :mod:`handflow.data.selection`) or a list of ``(capture, sequence)`` pairs, ``cameras`` camera ids to keep, ``max_frames`` N evenly
    spaced frames of each sequence (``--frames``: :func:`~handflow.data.selection.pick_frames`), ``crop_px`` the square crop size, ``hand_types`` which
    ``hand_type`` values to keep (``None`` = all), ``skip_bad_images`` count and skip unreadable
    images in :meth:`load_view` / :meth:`check_images` instead of raising, ``mano_dir`` the MANO
    model folder used only when visibility must be computed (no ``joint_visible`` stored).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "test",
        selection: str | list[tuple[int, str]] | None = None,
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
        # everything is read through the split's columnar index (built on first use, rebuilt when a JSON
        # changes): only the selected sequences' rows and frames are loaded
        self.index = ensure_index(self.root, split)
        self._cameras = self.index.cameras()
        self.all_sequences = self.index.sequences()
        if selection is None:
            chosen = None
        elif isinstance(selection, str):
            chosen = set(select_sequences(selection, self.all_sequences))
        else:  # (capture, sequence) pairs, e.g. one process's share
            chosen = {(int(c), str(s)) for c, s in selection}
            for c, s in sorted(chosen - {(c, s) for c, ss in self.all_sequences.items() for s in ss}):
                raise HandflowError(f"unknown sequence Capture{c}/{s} in {self.data_path}")
        if cameras is not None:
            cameras = [str(c) for c in cameras]
            known = set()
            for cap in ({c for c, _ in chosen} if chosen is not None else self.all_sequences):
                known |= set(self._cameras.get(str(cap), {}))
            for c in cameras:
                if c not in known:
                    raise HandflowError(f"unknown camera {c!r} (not in {self.camera_path.name} for the selected captures)")
        rows = self.index.rows(chosen)
        if cameras is not None:
            rows = rows.filter(pl.col("camera").is_in(cameras))
        if hand_types is not None:
            rows = rows.filter(pl.col("hand_type").is_in(list(hand_types)))
        if max_frames is not None:  # --frames: N evenly spaced frames of each sequence (selection.pick_frames)
            per_seq = (rows.select("capture", "seq", "frame").unique().sort("capture", "seq", "frame")
                       .group_by("capture", "seq", maintain_order=True).agg("frame"))
            picked = [(c, s, f) for c, s, fr in per_seq.iter_rows() for f in pick_frames(fr, max_frames)]
            picked = pl.DataFrame(picked, schema={k: rows.schema[k] for k in ("capture", "seq", "frame")}, orient="row")
            rows = rows.join(picked, on=["capture", "seq", "frame"], how="semi", maintain_order="left")
        self.items = Items(rows)  # sorted by (capture, seq, frame, camera)

        # world joints (validated when the index was built) and MANO parameters of the frames used
        keys = self.items.frame_keys()
        self._joints = self.index.joints(keys)
        for cap, frame in sorted(keys - set(self._joints)):
            if str(cap) not in self.index.joint_captures():
                raise HandflowError(f"{self.joint_path}: missing capture {cap}")
            raise HandflowError(f"{self.joint_path}: capture {cap} frame {frame}: missing 'world_coord'")
        self._mano = self.index.mano(keys)

    def _mano_params(self, capture: int, frame: int):
        """``(pose (2,48), shape (2,10), trans (2,3) m, valid (2,))`` of a frame; zeros where none is stored."""
        found = self._mano.get((capture, frame))
        if found is None:
            found = (np.zeros((2, 48)), np.zeros((2, 10)), np.zeros((2, 3)), np.zeros(2))
        return found

    # ------------------------------------------------------------------ public queries
    def __len__(self) -> int:
        return len(self.items)

    def sequences(self) -> list[tuple[int, str]]:
        """The selected ``(capture, sequence)`` pairs, sorted: what ``selection`` resolved to."""
        return self.items.sequences()

    def available(self) -> dict[int, list[str]]:
        """``{capture: [sequence names]}`` of what this dataset indexes (after selection)."""
        out: dict[int, list[str]] = {}
        for cap, seq in self.items.sequences():
            out.setdefault(cap, []).append(seq)
        return out

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
        seqs = [seq] if seq is not None else [s for c, s in self.items.sequences() if c == capture]
        return sorted({c for s in seqs for c in self.items.column("camera", capture, s)})

    def frames(self, capture: int, seq: str) -> list[int]:
        fr = sorted(set(self.items.column("frame", capture, seq).tolist()))
        if not fr:
            raise HandflowError(f"unknown sequence Capture{capture}/{seq} in {self.data_path}")
        return fr

    def index_of(self, capture: int, seq: str, cam_id: str, frame: int) -> int:
        i = self.items.find(int(capture), str(seq), str(cam_id), int(frame))
        if i is None:
            self.frames(int(capture), str(seq))
            self.camera(int(capture), str(cam_id))
            raise HandflowError(f"no image Capture{capture}/{seq} cam{cam_id} frame {frame} in {self.data_path}")
        return i

    def image_path(self, i: int) -> Path:
        return self.root / "images" / self.split / self.items.file_name(i)

    def check_images(self) -> list[str]:
        """Open every indexed image; bad ones raise, or (``skip_bad_images``) are dropped and listed."""
        bad, keep = [], []
        for i in range(len(self.items)):
            try:
                load_image(self.image_path(i))
                keep.append(i)
            except HandflowError as err:
                if not self.skip_bad_images:
                    raise
                bad.append(str(err))
        if bad:
            self.items = self.items.take(keep)
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
