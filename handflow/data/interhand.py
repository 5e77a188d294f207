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

This module holds the reader (:class:`InterHandDataset`): which rows a selection keeps and the queries on
them. The rest of the reading lives beside it, one concept a module: the columnar index and the
annotations' cache key (:mod:`handflow.data.index`), the selected rows (:mod:`handflow.data.items`), one
image decoded and cropped into a sample (:mod:`handflow.data.samples`, :mod:`handflow.data.crop`), a
camera's frames stacked into one batch (:mod:`handflow.data.views`), visibility from MANO meshes when the
capture stores none (:func:`handflow.data.raster.mano_visibility`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import polars as pl
import torch

from handflow.data.index import annotation_path, ensure_index
from handflow.data.items import Items
from handflow.data.raster import mano_visibility
from handflow.data.samples import crop_sample, image_geometry, load_image
from handflow.data.selection import pick_frames, select_sequences
from handflow.data.views import load_view
from handflow.errors import HandflowError
from handflow.geometry.camera import Camera


class InterHandDataset(torch.utils.data.Dataset):
    """Index of (capture, sequence, camera, frame) images of one split, with cropped samples.

    ``selection`` a sequence spec (``Capture0-1``, ``Capture0/SEQ``, comma lists; see
    :mod:`handflow.data.selection`) or a list of ``(capture, sequence)`` pairs, ``cameras`` camera ids to keep, ``max_frames`` N evenly
    spaced frames of each sequence (``--frames``: :func:`~handflow.data.selection.pick_frames`), ``crop_px`` the square crop size, ``hand_types`` which
    ``hand_type`` values to keep (``None`` = all), ``skip_bad_images`` count and skip unreadable
    images in :meth:`load_view` / :meth:`check_images` instead of raising, ``mano_dir`` the MANO
    model folder used only when visibility must be computed (no ``joint_visible`` stored): the reader
    has no default, since a real capture needs the real MANO files (the synthetic hand has another
    mesh); without it such a capture raises ``HandflowError`` when visibility is first needed.
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
            self._vis_cache.clear()  # keyed by row number: the rows just moved
            self.skipped.extend(bad)
        return bad

    # ------------------------------------------------------------------ samples
    def geometry(self, i: int, image_hw: tuple[int, int]) -> dict:
        """Annotations of item ``i`` as float64 numpy, no image decoded (:func:`handflow.data.samples.image_geometry`:
        joints in world / camera / pixel frames, validity, visibility, crop box and affine, camera, MANO).
        ``image_hw`` is the image size (for the crop and a visibility computed from MANO)."""
        it = self.items[i]
        cam = self._cameras[str(it["capture"])][it["camera"]]
        world, valid3d = self._joints[(it["capture"], it["frame"])]
        return image_geometry(it, cam, world, valid3d, self._mano_params(it["capture"], it["frame"]), image_hw,
                              self.crop_px, self.camera_path,
                              lambda jc, valid: self._computed_visibility(i, image_hw, cam, jc, valid))

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

            if self.mano_dir is None:
                raise HandflowError(
                    f"split {self.split!r} under {self.root} stores no joint_visible: computing it needs the "
                    "capture's real MANO files (the synthetic hand has another mesh); pass --mano-dir")
            self._hand_model = HandModel.from_dir(self.mano_dir)
        return self._hand_model

    def sample(self, i: int, img: np.ndarray) -> dict:
        """Item ``i`` cropped from its decoded image ``img (H,W,3) uint8``: the keys of :func:`handflow.data.samples.crop_sample`."""
        H, W = img.shape[:2]
        return crop_sample(self.items[i], self.geometry(i, (H, W)), img, self.crop_px)

    def __getitem__(self, i: int) -> dict:
        """One sample (see the keys in the README / module docstring). A bad image raises HandflowError."""
        if not 0 <= i < len(self.items):
            raise IndexError(i)
        return self.sample(i, load_image(self.image_path(i)))

    def load_full_image(self, i: int) -> np.ndarray:
        return load_image(self.image_path(i))

    def load_view(self, capture: int, seq: str, cam_id: str, frames: list[int] | None = None,
                  skip_bad_images: bool | None = None) -> dict:
        """All (or the given) frames of one camera of one sequence as batched tensors: :func:`handflow.data.views.load_view`."""
        return load_view(self, capture, seq, cam_id, frames, skip_bad_images)

    def image_hw(self, i: int) -> tuple[int, int]:
        """``(H, W)`` px of item ``i``: from data.json, or by decoding the image when it lacks them."""
        it = self.items[i]
        if it.get("width") and it.get("height"):
            return int(it["height"]), int(it["width"])
        return tuple(self.load_full_image(i).shape[:2])
