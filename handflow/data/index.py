"""Columnar index of a split's annotation JSONs: built once by streaming, then read per sequence.

A real InterHand2.6M split holds over a million annotated images in JSON files of hundreds of MB to
GB. Loading them whole costs many GB and minutes before the first image, for every command. The
index converts them once, streaming (:mod:`handflow.data.jsonstream`), into Parquet files (polars)
under ``<cache>/index/<split>-<key>/``:

* ``rows.parquet`` — one row per annotation joined with its image: ``capture, seq, camera, frame,
  file_name, width, height, ann_id, hand_type, valid (42), visible (42, null when not stored)``, sorted
  by ``(capture, seq, frame, camera)`` in row groups of :data:`ROW_GROUP` rows, so selecting one
  sequence reads only its row groups (Parquet statistics, polars predicate push-down);
* ``sequences.parquet`` — every ``(capture, seq)`` of ``images`` (annotated or not);
* ``cameras.parquet`` — ``capture, camera, R (9), campos (3) mm, focal (2) px, princpt (2) px``;
* ``joints.parquet`` — ``capture, frame`` (the JSON's keys, as strings), ``world (126) mm``,
  ``valid (42)``; sorted, so a sequence's frames are a few row groups;
* ``mano.parquet`` (when ``MANO_NeuralAnnot.json`` exists) — ``capture, frame, pose (96), shape (20),
  trans (6) m, valid (2)`` (right hand first);
* ``manifest.json`` — the JSONs' identity and counts, written last: an index without it is unfinished.

``<key>`` hashes each JSON's resolved path, size and modification time, so editing or replacing a file
builds a new index on next use (stale ones can simply be deleted). Each Parquet file is written
atomically as its JSON is done: an interrupted build resumes at the first unfinished file. The build
validates every record with the same one-line errors as reading the JSONs did
(:class:`~handflow.errors.HandflowError` naming file, record and key).

:func:`annotation_digest` is the other key, of content: what a split's annotations (and the synthetic
capture's manifest) hold, for caches of results computed from them.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import operator
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from handflow.cache import cache_dir
from handflow.data.jsonstream import iter_values
from handflow.errors import HandflowError
from handflow.geometry.camera import Camera
from handflow.io import atomic_path, file_digest, read_json, safe_name, write_json
from handflow.keypoints import HANDS, N_JOINTS
from handflow.progress import make_progress

INDEX_VERSION = 1
KINDS = ("data", "camera", "joint_3d", "MANO_NeuralAnnot")
ROW_GROUP = 16384  # rows per Parquet row group: a real sequence spans a few of them
_CHUNK = 100_000  # records held in Python before they become one columnar chunk


def annotation_path(root: Path, split: str, kind: str) -> Path:
    return Path(root) / "annotations" / split / f"InterHand2.6M_{split}_{kind}.json"


# ---------------------------------------------------------------------------------------- validation
def as_array(value, shape, where: str) -> np.ndarray:
    """``value`` as a float64 array of ``shape``, or a one-line error naming ``where``."""
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


def as_int(value, where: str) -> int:
    """An integer field (``capture``, ``frame_idx``): ints or integral strings, else a one-line error."""
    if isinstance(value, float) and value.is_integer():
        out = int(value)
    elif isinstance(value, bool) or not isinstance(value, (int, str)):
        raise HandflowError(f"{where}: expected an integer, found {type(value).__name__}")
    else:
        try:
            out = int(value)
        except ValueError:
            raise HandflowError(f"{where}: expected an integer, found {str(value)[:40]!r}") from None
    if not -(2**63) <= out < 2**63:  # the index stores 64-bit integers
        raise HandflowError(f"{where}: integer out of range ({str(value)[:40]})")
    return out


def _id(value, where: str) -> str:
    """A JSON id (``images[i].id``, ``annotations[i].image_id``) as a join key: numbers and strings differ."""
    if isinstance(value, (list, dict)):
        raise HandflowError(f"{where}: expected a number or string, found {type(value).__name__}")
    return json.dumps(value)


def parse_cameras(raw: dict, path: Path) -> dict[str, dict[str, Camera]]:
    """``camera.json`` -> ``{capture: {camera id: Camera}}``, validated."""
    return {str(cap): parse_capture_cameras(entry, f"{path}: capture {cap}", str(path)) for cap, entry in raw.items()}


def parse_capture_cameras(entry, where: str, path: str | None = None) -> dict[str, Camera]:
    """One capture's ``{"campos", "camrot", "focal", "princpt": {camera id: value}}`` -> ``{camera id: Camera}``,
    validated (shapes, finite numbers, positive focal, a rotation): the one check of a camera file, for the
    release's ``camera.json`` and for a proposed rig's file alike. Errors name ``where`` (and the camera)."""
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
                R=as_array(entry["camrot"][cid], (3, 3), f"{where} camrot {cid}"),
                campos_mm=as_array(entry["campos"][cid], (3,), f"{where} campos {cid}"),
                focal_px=as_array(entry["focal"][cid], (2,), f"{where} focal {cid}"),
                princpt_px=as_array(entry["princpt"][cid], (2,), f"{where} princpt {cid}"),
            )
        except HandflowError as err:
            msg = str(err)
            raise HandflowError(msg if msg.startswith(path or where) else f"{where} camera {cid}: {msg}") from err
    return cams


# ---------------------------------------------------------------------------------------- identity
def source_identity(root: Path, split: str) -> dict:
    """Path, size and modification time of each annotation JSON (the optional MANO file may be absent)."""
    out = {}
    for kind in KINDS:
        p = annotation_path(root, split, kind)
        try:
            st = p.stat()
        except OSError:
            if kind == "MANO_NeuralAnnot":
                continue
            raise HandflowError(f"missing file: {p}") from None
        out[kind] = {"path": str(p.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    return out


def index_dir(root: Path, split: str, cache: Path | None = None) -> Path:
    ident = source_identity(root, split)
    key = hashlib.sha256(json.dumps([INDEX_VERSION, ident], sort_keys=True).encode()).hexdigest()[:16]
    return Path(cache or cache_dir() / "index") / f"{safe_name(split)}-{key}"


# ---------------------------------------------------------------------------------------- reading
def _f64(col: pl.Series, width: int) -> np.ndarray:
    """An ``Array(width)`` column as a ``(n, width)`` float64 array (nulls: NaN rows)."""
    if len(col) == 0:
        return np.zeros((0, width))
    return np.array(col.cast(pl.Array(pl.Float64, width)).to_numpy().reshape(len(col), width))  # writable copy


def _scan_pairs(path: Path, pairs, col: str, capture_type) -> pl.DataFrame:
    """Rows of a Parquet file whose ``(capture, col)`` is in ``pairs``, in file order. One ``capture == c &
    col in [...]`` term per capture, so the filter is pushed down to the row-group statistics. ``capture_type``:
    how the file stores the capture (``int`` in rows.parquet, ``str`` in the per-frame tables)."""
    lf = pl.scan_parquet(path)
    by_cap: dict = {}
    for cap, value in pairs:
        by_cap.setdefault(capture_type(cap), set()).add(str(value))
    if not by_cap:
        return lf.head(0).collect()
    terms = [(pl.col("capture") == cap) & pl.col(col).is_in(sorted(vals)) for cap, vals in sorted(by_cap.items())]
    return lf.filter(functools.reduce(operator.or_, terms)).collect()


@dataclass(frozen=True)
class AnnotationIndex:
    """A finished index of one split (see the module docstring); reads only what is asked for."""

    dir: Path
    root: Path
    split: str

    def manifest(self) -> dict:
        return json.loads((self.dir / "manifest.json").read_text())

    def sequences(self) -> dict[int, list[str]]:
        df = pl.read_parquet(self.dir / "sequences.parquet")
        out: dict[int, list[str]] = {}
        for cap, seq in zip(df["capture"].to_list(), df["seq"].to_list()):
            out.setdefault(cap, []).append(seq)
        return out

    def sequence_sizes(self) -> dict[tuple[int, str], int]:
        """Annotated images per ``(capture, seq)`` (reads two columns)."""
        df = pl.scan_parquet(self.dir / "rows.parquet").group_by("capture", "seq").len().collect()
        return {(int(c), str(s)): int(n) for c, s, n in df.iter_rows()}

    def cameras(self) -> dict[str, dict[str, Camera]]:
        df = pl.read_parquet(self.dir / "cameras.parquet")
        R, pos, f, c = (_f64(df[k], w) for k, w in (("R", 9), ("campos", 3), ("focal", 2), ("princpt", 2)))
        out: dict[str, dict[str, Camera]] = {}
        for i, (cap, cid) in enumerate(zip(df["capture"].to_list(), df["camera"].to_list())):
            out.setdefault(cap, {})[cid] = Camera(R=R[i].reshape(3, 3), campos_mm=pos[i], focal_px=f[i], princpt_px=c[i])
        return out

    def rows(self, pairs: set[tuple[int, str]] | None = None) -> pl.DataFrame:
        """Annotation rows of the given ``(capture, seq)`` pairs (None: all), in index order."""
        if pairs is None:
            return pl.read_parquet(self.dir / "rows.parquet")
        return _scan_pairs(self.dir / "rows.parquet", pairs, "seq", int)

    def joint_captures(self) -> set[str]:
        """Captures present in ``joint_3d.json``."""
        return set(pl.scan_parquet(self.dir / "joints.parquet").select("capture").unique().collect()["capture"].to_list())

    def _frames(self, name: str, keys: set[tuple[int, int]]) -> pl.DataFrame:
        return _scan_pairs(self.dir / name, keys, "frame", str)

    def joints(self, keys: set[tuple[int, int]]) -> dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]:
        """``{(capture, frame): (world (42,3) mm, joint_valid (42,))}`` of the frames asked for that exist."""
        df = self._frames("joints.parquet", keys)
        w, v = _f64(df["world"], 3 * N_JOINTS), _f64(df["valid"], N_JOINTS)
        return {(int(c), int(f)): (w[i].reshape(N_JOINTS, 3), v[i])
                for i, (c, f) in enumerate(zip(df["capture"].to_list(), df["frame"].to_list()))}

    def mano(self, keys: set[tuple[int, int]]) -> dict[tuple[int, int], tuple]:
        """``{(capture, frame): (pose (2,48), shape (2,10), trans (2,3) m, valid (2,))}`` of those stored."""
        if not (self.dir / "mano.parquet").is_file():
            return {}
        df = self._frames("mano.parquet", keys)
        p, s, t, v = (_f64(df[k], w) for k, w in (("pose", 96), ("shape", 20), ("trans", 6), ("valid", 2)))
        return {(int(c), int(f)): (p[i].reshape(2, 48), s[i].reshape(2, 10), t[i].reshape(2, 3), v[i])
                for i, (c, f) in enumerate(zip(df["capture"].to_list(), df["frame"].to_list()))}


# ---------------------------------------------------------------------------------------- building
def ensure_index(root: str | os.PathLike, split: str, cache: Path | None = None) -> AnnotationIndex:
    """The split's index, built (or finished) first when missing or when a JSON changed."""
    root = Path(root)
    out = index_dir(root, split, cache)
    index = AnnotationIndex(out, root, split)
    if (out / "manifest.json").is_file():
        return index
    with _lock(out):
        if not (out / "manifest.json").is_file():  # another process may have built it meanwhile
            build_index(root, split, out)
    return index


@contextmanager
def _lock(folder: Path):
    """One builder per index folder at a time (several processes of one torchrun job, say)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fh = open(folder / ".lock", "w")
    except OSError as err:
        raise HandflowError(f"cannot write the annotation index under {folder} (VIEWSELECT_CACHE moves the cache): "
                            f"{err.strerror or err}") from err
    with fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _write(df: pl.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        df.write_parquet(tmp, row_group_size=ROW_GROUP, statistics=True)


def build_index(root: Path, split: str, out: Path) -> dict:
    """Stream the split's JSONs into ``out`` (see the module docstring); Parquet files already there are
    kept (an earlier, interrupted build). Returns the manifest."""
    paths = {k: annotation_path(root, split, k) for k in KINDS}
    ident = source_identity(root, split)
    counts: dict[str, int] = {}
    with make_progress() as progress:
        # camera.json is small (a few MB even for the full release): read whole, validated as before
        if not (out / "cameras.parquet").is_file():
            cams = parse_cameras(read_json(paths["camera"]), paths["camera"])
            _write(_cameras_frame(cams), out / "cameras.parquet")
        cam_df = pl.read_parquet(out / "cameras.parquet")
        captures = set(cam_df["capture"].to_list())
        counts["cameras"] = len(cam_df)
        if not (out / "joints.parquet").is_file():
            _write(_joints_frame(paths["joint_3d"], captures, paths["camera"].name, progress),
                   out / "joints.parquet")
        counts["frames"] = pl.scan_parquet(out / "joints.parquet").select(pl.len()).collect().item()
        if "MANO_NeuralAnnot" in ident and not (out / "mano.parquet").is_file():
            _write(_mano_frame(paths["MANO_NeuralAnnot"], progress), out / "mano.parquet")
        if not (out / "rows.parquet").is_file():
            rows, seqs = _data_frames(paths["data"], cam_df, paths["camera"], progress)
            _write(seqs, out / "sequences.parquet")
            _write(rows, out / "rows.parquet")
        counts["rows"] = pl.scan_parquet(out / "rows.parquet").select(pl.len()).collect().item()
        counts["sequences"] = pl.scan_parquet(out / "sequences.parquet").select(pl.len()).collect().item()
    manifest = {"version": INDEX_VERSION, "root": str(root), "split": split, "sources": ident, "counts": counts}
    write_json(out / "manifest.json", manifest, indent=1)
    return manifest


def _task(progress, path: Path, label: str):
    size = path.stat().st_size
    task = progress.add_task(f"index {label}", total=size)
    return lambda n: progress.update(task, completed=min(n, size))


def _cameras_frame(cams: dict[str, dict[str, Camera]]) -> pl.DataFrame:
    rows = [(cap, cid, cam) for cap, cc in cams.items() for cid, cam in cc.items()]
    arr = lambda f, w: pl.Series([np.asarray(f(c), float).reshape(w) for _, _, c in rows],  # noqa: E731
                                 dtype=pl.Array(pl.Float64, w))
    return pl.DataFrame({
        "capture": pl.Series([r[0] for r in rows], dtype=pl.String),
        "camera": pl.Series([r[1] for r in rows], dtype=pl.String),
        "R": arr(lambda c: c.R, 9), "campos": arr(lambda c: c.campos_mm, 3),
        "focal": arr(lambda c: c.focal_px, 2), "princpt": arr(lambda c: c.princpt_px, 2),
    })


def _array_col(blocks: list[np.ndarray], width: int, dtype=pl.Float64) -> pl.Series:
    a = np.concatenate(blocks) if blocks else np.zeros((0, width))
    return pl.Series(a.reshape(len(a), width)).cast(pl.Array(dtype, width))


def _joints_frame(path: Path, captures: set[str], camera_name: str, progress) -> pl.DataFrame:
    cap_col, fr_col, world, valid = [], [], [], []
    seen: set[str] = set()
    for key, fr in iter_values(path, 2, progress=_task(progress, path, "joint_3d")):
        cap = key[0]
        if cap not in seen:
            if cap not in captures:
                raise HandflowError(f"{path}: capture {cap} is not in {camera_name}")
            seen.add(cap)
        if len(key) < 2:
            raise HandflowError(f"{path}: missing capture {cap}")
        where = f"{path}: capture {cap} frame {key[1]}"
        if not isinstance(fr, dict) or "world_coord" not in fr:
            raise HandflowError(f"{where}: missing 'world_coord'")
        world.append(as_array(fr["world_coord"], (N_JOINTS, 3), f"{where} world_coord").reshape(1, -1))
        valid.append(as_array(fr["joint_valid"], (N_JOINTS,), f"{where} joint_valid")[None]
                     if "joint_valid" in fr else np.ones((1, N_JOINTS)))
        cap_col.append(cap)
        fr_col.append(str(key[1]))
    df = pl.DataFrame({"capture": pl.Series(cap_col, dtype=pl.String), "frame": pl.Series(fr_col, dtype=pl.String),
                       "world": _array_col(world, 3 * N_JOINTS), "valid": _array_col(valid, N_JOINTS)})
    return df.sort("capture", "frame")


def _mano_frame(path: Path, progress) -> pl.DataFrame:
    cap_col, fr_col, cols = [], [], {k: [] for k in ("pose", "shape", "trans", "valid")}
    for key, fr in iter_values(path, 2, progress=_task(progress, path, "MANO")):
        if len(key) < 2 or not isinstance(fr, dict):
            continue  # a capture or frame without parameters: no MANO there (as the toolkit reads it)
        pose, shape, trans, valid = np.zeros((2, 48)), np.zeros((2, 10)), np.zeros((2, 3)), np.zeros(2)
        for h, hand in enumerate(HANDS):
            p = fr.get(hand)
            if p is None:
                continue
            where = f"{path}: capture {key[0]} frame {key[1]} {hand}"
            if not isinstance(p, dict) or not all(k in p for k in ("pose", "shape", "trans")):
                raise HandflowError(f"{where}: expected pose/shape/trans")
            pose[h] = as_array(p["pose"], (48,), f"{where} pose")
            shape[h] = as_array(p["shape"], (10,), f"{where} shape")
            trans[h] = as_array(p["trans"], (3,), f"{where} trans")
            valid[h] = 1.0
        for k, v in zip(("pose", "shape", "trans", "valid"), (pose, shape, trans, valid)):
            cols[k].append(v.reshape(1, -1))
        cap_col.append(key[0])
        fr_col.append(str(key[1]))
    df = pl.DataFrame({"capture": pl.Series(cap_col, dtype=pl.String), "frame": pl.Series(fr_col, dtype=pl.String),
                       **{k: _array_col(v, w) for (k, v), w in zip(cols.items(), (96, 20, 6, 2))}})
    return df.sort("capture", "frame")


_IMAGE_SCHEMA = {"img_id": pl.String, "file_name": pl.String, "capture": pl.Int64, "seq": pl.String,
                 "camera": pl.String, "frame": pl.Int64, "width": pl.Int64, "height": pl.Int64}


def _data_frames(path: Path, cam_df: pl.DataFrame, camera_path: Path, progress) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``(rows, sequences)`` of ``data.json``, every image and annotation validated."""
    images: list[pl.DataFrame] = []
    anns: list[pl.DataFrame] = []
    img_buf: list[tuple] = []
    ann_buf: list[tuple] = []
    valid_buf: list[np.ndarray] = []
    vis_buf: list[np.ndarray | None] = []
    seen_lists: set[str] = set()

    def flush_images():
        if img_buf:
            images.append(pl.DataFrame(img_buf, schema=_IMAGE_SCHEMA, orient="row"))
            img_buf.clear()

    def flush_anns():
        if ann_buf:
            vis = np.stack([np.full(N_JOINTS, np.nan) if v is None else v for v in vis_buf])
            has_vis = np.array([v is not None for v in vis_buf])
            df = pl.DataFrame(ann_buf, schema={"ann_index": pl.Int64, "img_id": pl.String, "ann_id": pl.String,
                                               "hand_type": pl.String}, orient="row")
            anns.append(df.with_columns(
                valid=_array_col([np.stack(valid_buf)], N_JOINTS, pl.Float32),
                visible=pl.when(pl.Series(has_vis)).then(_array_col([vis], N_JOINTS, pl.Float32)),
            ))
            ann_buf.clear(), valid_buf.clear(), vis_buf.clear()

    def want(key: tuple) -> bool:  # called for each container met above depth 2
        if key in (("images",), ("annotations",)):
            seen_lists.add(key[0])  # a list (or, caught below, an object): present
        return key[0] in ("images", "annotations")

    for key, obj in iter_values(path, 2, want=want, progress=_task(progress, path, "data")):
        if key[0] not in ("images", "annotations"):
            continue
        if len(key) < 2 or not isinstance(key[1], int):
            raise HandflowError(f"{path}: missing or malformed key {key[0]!r}")
        i = key[1]
        if key[0] == "images":
            img_buf.append(_image_row(obj, f"{path}: images[{i}]"))
            if len(img_buf) >= _CHUNK:
                flush_images()
        else:
            where = f"{path}: annotations[{i}]"
            if not isinstance(obj, dict) or "image_id" not in obj:
                raise HandflowError(f"{where}: missing key 'image_id'")
            if "joint_valid" not in obj:
                raise HandflowError(f"{where}: missing key 'joint_valid'")
            valid_buf.append(as_array(obj["joint_valid"], (N_JOINTS,), f"{where}.joint_valid"))
            vis_buf.append(as_array(obj["joint_visible"], (N_JOINTS,), f"{where}.joint_visible")
                           if "joint_visible" in obj else None)
            ht = obj.get("hand_type")
            ann_buf.append((i, _id(obj["image_id"], f"{where}.image_id"), json.dumps(obj.get("id", i)),
                            ht if isinstance(ht, str) else None))
            if len(ann_buf) >= _CHUNK:
                flush_anns()
    flush_images()
    flush_anns()
    for k in ("images", "annotations"):
        if k not in seen_lists:
            raise HandflowError(f"{path}: missing or malformed key {k!r}")
    img = pl.concat(images) if images else pl.DataFrame(schema=_IMAGE_SCHEMA)
    img = img.unique("img_id", keep="last", maintain_order=True)  # a repeated id: the last image wins
    ann = pl.concat(anns) if anns else None
    seqs = img.select("capture", "seq").unique().sort("capture", "seq")
    if ann is None:
        rows = img.head(0).drop("img_id").with_columns(
            ann_id=pl.lit(None, pl.String), hand_type=pl.lit(None, pl.String),
            valid=pl.lit(None, pl.Array(pl.Float32, N_JOINTS)), visible=pl.lit(None, pl.Array(pl.Float32, N_JOINTS)))
        return rows, seqs
    rows = ann.join(img, on="img_id", how="left")
    orphan = rows.filter(pl.col("capture").is_null())
    if len(orphan):
        first = orphan.sort("ann_index").row(0, named=True)
        raise HandflowError(f"{path}: annotations[{first['ann_index']}]: image_id {json.loads(first['img_id'])} "
                            "is not in images")
    known = cam_df.select(capture=pl.col("capture"), camera=pl.col("camera"), _cam=pl.lit(True))
    caps = set(cam_df["capture"].to_list())
    check = rows.select("ann_index", pl.col("capture").cast(pl.String), "camera").join(
        known, on=["capture", "camera"], how="left").filter(pl.col("_cam").is_null())
    if len(check):
        first = check.sort("ann_index").row(0, named=True)
        if first["capture"] not in caps:
            raise HandflowError(f"{camera_path}: missing capture {first['capture']} (used by {path.name})")
        raise HandflowError(f"{camera_path}: capture {first['capture']} has no camera {first['camera']!r}")
    rows = rows.sort("capture", "seq", "frame", "camera", "ann_index").select(
        "capture", "seq", "camera", "frame", "file_name", "width", "height", "ann_id", "hand_type", "valid", "visible")
    return rows, seqs


def _image_row(img, where: str) -> tuple:
    if not isinstance(img, dict):
        raise HandflowError(f"{where}: not an object")
    for k in ("id", "file_name", "capture", "seq_name", "camera", "frame_idx"):
        if k not in img:
            raise HandflowError(f"{where}: missing key {k!r}")
    for k in ("file_name", "seq_name", "camera"):
        if isinstance(img[k], (list, dict)) or img[k] is None:
            raise HandflowError(f"{where}.{k}: expected a string, found {type(img[k]).__name__}")
    w, h = img.get("width"), img.get("height")
    return (_id(img["id"], f"{where}.id"), str(img["file_name"]), as_int(img["capture"], f"{where}.capture"),
            str(img["seq_name"]), str(img["camera"]), as_int(img["frame_idx"], f"{where}.frame_idx"),
            as_int(w, f"{where}.width") if w else None, as_int(h, f"{where}.height") if h else None)


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


__all__ = ["AnnotationIndex", "ensure_index", "build_index", "index_dir", "source_identity", "annotation_path",
           "parse_cameras", "as_array", "as_int", "annotation_digest"]
