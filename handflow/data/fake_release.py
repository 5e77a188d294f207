"""Full-size InterHand2.6M annotation sets with fake values, for benchmarks and scale tests.

:func:`write_fake_release` writes a split's four annotation JSONs with the real release's structure
(``data.json`` images/annotations with ``subject``, ``bbox``, nested ``joint_valid [[v], ...]``,
``hand_type_valid``; ``camera.json``; ``joint_3d.json`` with ``world_coord``/``joint_valid``/
``hand_type``/``hand_type_valid``; ``MANO_NeuralAnnot.json`` with per-hand ``pose``/``shape``/``trans``)
and any number of annotated images: a real split's worth (about a million) takes a few minutes and
about 1 GB. Values are random but valid (finite, the right shapes); no image files are written, so
only the annotations are exercised.

With ``base`` (an InterHand2.6M-layout folder, e.g. the default capture), the base's annotations come
first, unchanged, and the fake captures are added after them under new capture numbers and ids, and
the base's images are linked in: a command restricted to the base's sequences must give exactly the
numbers it gives on the base alone.

The files are written record by record, never held whole in memory.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from handflow.data.index import annotation_path
from handflow.data.jsonstream import iter_values
from handflow.io import atomic_path
from handflow.keypoints import N_JOINTS
from handflow.progress import make_progress



def write_fake_release(root: str | os.PathLike, n_images: int, split: str = "test", base: str | os.PathLike | None = None,
                       cameras: int = 100, frames_per_sequence: int = 200, sequences_per_capture: int = 10,
                       seed: int = 0) -> Path:
    """Write ``n_images`` fake annotated images (one annotation each) as ``root/annotations/split``.

    Fake captures are numbered from 1000 (above any real one), with ``cameras`` cameras each, sequences
    of ``frames_per_sequence`` frames, ``sequences_per_capture`` sequences per capture. Returns ``root``.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    n_frames = -(-n_images // cameras)
    seq_of = lambda f: f // frames_per_sequence  # noqa: E731  (global sequence number of a frame)
    cap_of = lambda f: 1000 + seq_of(f) // sequences_per_capture  # noqa: E731
    n_caps = cap_of(n_frames - 1) - 999 if n_frames else 0
    cam_ids = [str(400002 + i) for i in range(cameras)]
    base = Path(base) if base is not None else None
    if base is not None:
        (root / "images").mkdir(parents=True, exist_ok=True)
        link = root / "images" / split
        if not link.exists():
            link.symlink_to((base / "images" / split).resolve(), target_is_directory=True)
        synth = base / "viewselect_synth.json"  # keeps the default data's provenance next to it
        if synth.is_file() and not (root / synth.name).exists():
            (root / synth.name).symlink_to(synth.resolve())
    with make_progress() as progress:
        _write_camera(root, split, base, n_caps, cam_ids, rng)
        _write_frames(root, split, base, n_frames, cap_of, rng, progress)
        _write_data(root, split, base, n_images, cameras, cam_ids, frames_per_sequence, cap_of, seq_of, rng, progress)
    return root


def _base_entries(base: Path | None, split: str, kind: str, depth: int):
    if base is None:
        return
    p = annotation_path(base, split, kind)
    if p.is_file():
        yield from iter_values(p, depth)


def _write_camera(root, split, base, n_caps, cam_ids, rng) -> None:
    out: dict = {}
    for key, value in _base_entries(base, split, "camera", 1):
        out[key[0]] = value
    for c in range(n_caps):
        entry = {"campos": {}, "camrot": {}, "focal": {}, "princpt": {}}
        for cid in cam_ids:
            q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
            R = q * np.sign(np.linalg.det(q))  # a proper rotation
            entry["campos"][cid] = (rng.normal(size=3) * 1000).tolist()
            entry["camrot"][cid] = R.tolist()
            entry["focal"][cid] = [1200.0 + rng.uniform(-50, 50), 1200.0 + rng.uniform(-50, 50)]
            entry["princpt"][cid] = [167.0, 256.0]
        out[str(1000 + c)] = entry
    with atomic_path(annotation_path(root, split, "camera")) as tmp:
        tmp.write_text(json.dumps(out))


def _write_frames(root, split, base, n_frames, cap_of, rng, progress) -> None:
    """``joint_3d.json`` and ``MANO_NeuralAnnot.json``: one entry per frame."""
    task = progress.add_task("fake joint_3d + MANO", total=n_frames)
    world = (rng.normal(size=(16, N_JOINTS, 3)) * 50 + [0, 0, 1000]).round(3).tolist()  # a few templates
    pose = rng.normal(size=(16, 48)).round(5).tolist()
    with atomic_path(annotation_path(root, split, "joint_3d")) as tj, atomic_path(
            annotation_path(root, split, "MANO_NeuralAnnot")) as tm:
        with open(tj, "w") as fj, open(tm, "w") as fm:
            fj.write("{")
            fm.write("{")
            for fh, kind in ((fj, "joint_3d"), (fm, "MANO_NeuralAnnot")):
                _copy_nested(fh, _base_entries(base, split, kind, 2))
            for fh in (fj, fm):
                if fh.tell() > 1 and n_frames:
                    fh.write(", ")
            prev = None
            for f in range(n_frames):
                cap = cap_of(f)
                if cap != prev:
                    if prev is not None:
                        fj.write("}, ")
                        fm.write("}, ")
                    fj.write(f'"{cap}": {{')
                    fm.write(f'"{cap}": {{')
                    prev = cap
                else:
                    fj.write(", ")
                    fm.write(", ")
                t = f % 16
                fj.write(f'"{f}": ' + json.dumps({"world_coord": world[t], "joint_valid": [1] * N_JOINTS,
                                                 "hand_type": "interacting", "hand_type_valid": 1}))
                hand = {"pose": pose[t], "shape": [0.1] * 10, "trans": [0.0, 0.0, 1.0]}
                fm.write(f'"{f}": ' + json.dumps({"right": hand, "left": hand if f % 3 else None}))
                if f % 1000 == 0:
                    progress.update(task, completed=f)
            if prev is not None:
                fj.write("}")
                fm.write("}")
            fj.write("}")
            fm.write("}")
            progress.update(task, completed=n_frames)


def _copy_nested(fh, entries) -> None:
    """Write ``{cap: {frame: value}}`` entries (without the outer braces) from a depth-2 stream."""
    prev = None
    for (cap, frame), value in ((k, v) for k, v in entries if len(k) == 2):
        if cap != prev:
            fh.write(("}, " if prev is not None else "") + json.dumps(cap) + ": {")
            prev = cap
        else:
            fh.write(", ")
        fh.write(json.dumps(frame) + ": " + json.dumps(value))
    if prev is not None:
        fh.write("}")


def _write_data(root, split, base, n_images, cameras, cam_ids, fps, cap_of, seq_of, rng, progress) -> None:
    task = progress.add_task("fake data", total=2 * n_images)
    base_images, base_anns = [], []
    for key, value in _base_entries(base, split, "data", 2):
        if key[0] == "images":
            base_images.append(value)
        elif key[0] == "annotations":
            base_anns.append(value)
    id0 = 1 + max([int(v["id"]) for v in base_images + base_anns if isinstance(v.get("id"), int)], default=-1)
    valid = [[1]] * N_JOINTS
    bbox = [100.0, 150.0, 120.0, 140.0]
    with atomic_path(annotation_path(root, split, "data")) as tmp, open(tmp, "w") as fh:
        fh.write('{"images": [')
        fh.write(", ".join(json.dumps(v) for v in base_images))
        for i in range(n_images):
            f, c = divmod(i, cameras)
            cap, seq = cap_of(f), f"{seq_of(f):04d}_fake_sequence"
            fh.write((", " if i or base_images else "") + json.dumps({
                "id": id0 + i, "file_name": f"Capture{cap}/{seq}/cam{cam_ids[c]}/image{f}.jpg", "width": 334,
                "height": 512, "capture": cap, "subject": cap % 10, "seq_name": seq, "camera": cam_ids[c],
                "frame_idx": f}))
            if i % 10000 == 0:
                progress.update(task, completed=i)
        fh.write('], "annotations": [')
        fh.write(", ".join(json.dumps(v) for v in base_anns))
        for i in range(n_images):
            fh.write((", " if i or base_anns else "") + json.dumps({
                "id": id0 + i, "image_id": id0 + i, "bbox": bbox, "joint_valid": valid,
                "hand_type": ("right", "left", "interacting")[i % 3], "hand_type_valid": 1}))
            if i % 10000 == 0:
                progress.update(task, completed=n_images + i)
        fh.write("]}")
        progress.update(task, completed=2 * n_images)


__all__ = ["write_fake_release"]
