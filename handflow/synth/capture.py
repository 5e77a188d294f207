"""The embedded synthetic capture, written in exactly the InterHand2.6M layout.

``synthesize(cfg, root)`` writes, for the splits ``train``, ``val`` and ``test``::

    ROOT/images/{split}/Capture{c}/{seq_name}/cam{cam_id}/image{frame}.jpg
    ROOT/annotations/{split}/InterHand2.6M_{split}_data.json
    ROOT/annotations/{split}/InterHand2.6M_{split}_camera.json
    ROOT/annotations/{split}/InterHand2.6M_{split}_joint_3d.json
    ROOT/annotations/{split}/InterHand2.6M_{split}_MANO_NeuralAnnot.json
    ROOT/viewselect_synth.json        (provenance: generator version, seed, resolved config, MANO digests)

Key names and nesting follow the public toolkit (see :mod:`handflow.data.interhand`). Our
additions, ignored by the toolkit: ``annotations[i].joint_visible`` (42, 1 = the joint is seen, from
the depth buffer, :func:`handflow.data.raster.visibility`) and ``annotations[i].joint_img`` (42x2 px,
the projection used when rendering, rounded to 1e-4 px). Differences from the real release (and
from what the release documents): no ``subject`` key in ``images`` (the release has it;
the reader does not need it), ``joint_valid`` is 1 for a joint that projects inside the image in
front of the camera (the release: annotated and inside the image), ``bbox`` is the tight box of the
valid 2D joints (the release's boxes come from its annotation tool), ``hand_type`` is always
``interacting`` with ``hand_type_valid = 1`` when more than 30 joints are valid (``DATASET.md``'s rule).

Splits and ids: ``test`` holds ``Capture0`` (4 sequences) and ``Capture1`` (3), all seen by the
same 140-camera dome (:func:`handflow.synth.rig.dome_rig`), every camera rendering every frame
(``test_sequences`` < 7 keeps the first N in that order, e.g. 1: ``Capture0/0001_touch_fingertips``
alone; a capture left with no sequence is not written);
``train`` holds ``Capture2 … Capture{1+train_captures}``, each a new subject on its own random rig
(:func:`handflow.synth.rig.random_rig`), each frame rendered by ``train_cameras_per_frame`` random
cameras of that rig; ``val`` holds one more capture built like a training capture. Capture numbers
are unique over the splits. Frame ids count from 10000 within a capture, so they are unique within
a capture (as in the release).

Images: default 168 x 256 (W x H, portrait), i.e. InterHand2.6M's 334 x 512 halved, with the
intrinsics scaled by the same factor (:func:`handflow.synth.rig.scaled_intrinsics`). Rendered with
the torch z-buffer of :mod:`handflow.data.raster` and the shading of :mod:`handflow.synth.appearance`:
Lambert + ambient shading, a random light
(direction and colour) per image, per-hand skin tones drawn per subject, a different random
background per image, Gaussian pixel noise, JPEG quality ``jpeg_quality`` (fixed; no timestamps, so
the same seed gives the same bytes on the same machine and software stack; another CPU's float32 kernels
change last bits, so across machines the capture agrees to float32 precision, not byte for byte).

Atomicity: everything is written into a temporary folder beside ``root`` that is renamed into place
at the end (the manifest ``viewselect_synth.json`` is the last file written inside it).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from handflow.cache import cache_dir
from handflow.config import from_dict, load_config, to_dict
from handflow.data.raster import VISIBILITY_TOL_MM, rasterize, visibility
from handflow.errors import HandflowError
from handflow.io import publish_dir
from handflow.geometry.camera import Camera
from handflow.keypoints import JOINT_HAND, N_JOINTS
from handflow.progress import track
from handflow.synth import motions
from handflow.synth.appearance import noise_like, random_background, random_lighting, random_skin, shade, skin_albedo
from handflow.synth.mano import default_mano_dir
from handflow.synth.rig import Rig, dome_rig, random_rig

SYNTH_VERSION = "1"
MANIFEST = "viewselect_synth.json"
SPLITS = ("train", "val", "test")
FIRST_FRAME = 10000


@dataclass
class SynthConfig:
    """Sizes and knobs of the synthetic capture (``configs/synth/default.toml`` holds the defaults)."""

    seed: int = 0
    image_height: int = 256  # InterHand2.6M's 512 halved
    image_width: int = 168  # InterHand2.6M's 334 halved (rounded up to an even number)
    test_cameras: int = 140  # cameras of the test dome
    test_frames: int = 20  # frames per test sequence
    test_sequences: int = 7  # the first N test motions (Capture0's 4, then Capture1's 3), 1..7
    train_captures: int = 12
    train_sequences: int = 4  # per training capture
    train_frames: int = 20  # per training sequence
    train_rig_cameras: int = 60  # cameras of each training rig
    train_cameras_per_frame: int = 6  # random cameras of the rig rendering each training frame
    val_sequences: int = 2
    val_frames: int = 30
    val_cameras_per_frame: int = 8
    jpeg_quality: int = 90
    visibility_tol_mm: float = VISIBILITY_TOL_MM
    render_batch: int = 35  # cameras rasterised together
    mano_dir: str | None = None  # MANO model folder; None = the generated synthetic MANO

    def __post_init__(self):
        for name in ("image_height", "image_width", "test_cameras", "test_frames", "train_rig_cameras",
                     "train_cameras_per_frame", "val_frames", "val_cameras_per_frame", "render_batch"):
            if getattr(self, name) < 1:
                raise HandflowError(f"synth config: {name} must be >= 1, got {getattr(self, name)}")
        for name in ("train_captures", "train_sequences", "train_frames", "val_sequences"):
            if getattr(self, name) < 0:
                raise HandflowError(f"synth config: {name} must be >= 0, got {getattr(self, name)}")
        n_motions = sum(len(v) for v in motions.TEST_SEQUENCES.values())
        if not 1 <= self.test_sequences <= n_motions:
            raise HandflowError(f"synth config: test_sequences must be in 1..{n_motions}, got {self.test_sequences}")
        if not 1 <= self.jpeg_quality <= 100:
            raise HandflowError(f"synth config: jpeg_quality must be in 1..100, got {self.jpeg_quality}")
        if self.train_cameras_per_frame > self.train_rig_cameras or self.val_cameras_per_frame > self.train_rig_cameras:
            raise HandflowError("synth config: cameras per frame exceed train_rig_cameras")

    @property
    def image_hw(self) -> tuple[int, int]:
        return (self.image_height, self.image_width)


def load_synth_config(path: str | os.PathLike) -> SynthConfig:
    return load_config(SynthConfig, path)


def config_digest(cfg: SynthConfig) -> str:
    return hashlib.sha256(json.dumps(to_dict(cfg), sort_keys=True).encode()).hexdigest()[:10]


def default_data_root(cfg: SynthConfig | None = None) -> Path:
    """``$VIEWSELECT_CACHE/data/synth-<version>`` (default cache ``~/.cache/viewselect``); a config
    other than the default gets ``synth-<version>-<config digest>``."""
    name = f"synth-{SYNTH_VERSION}"
    if cfg is not None and to_dict(cfg) != to_dict(SynthConfig()):
        name += f"-{config_digest(cfg)}"
    return cache_dir() / "data" / name


def ensure_default_data(cfg: SynthConfig | None = None) -> Path:
    """The default synthetic data root, generated first if it is missing or stale.

    Stale: its manifest names another generator version or config, or MANO files whose digests differ
    from the model files now in use (e.g. the synthetic MANO was regenerated); the root is then
    regenerated in place (atomically replaced).
    """
    cfg = cfg or SynthConfig()
    root = default_data_root(cfg)
    manifest = root / MANIFEST
    if manifest.is_file():
        try:
            old = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            old = {}
        if (old.get("version") == SYNTH_VERSION and _same_config(old.get("config"), cfg)
                and old.get("mano") == mano_digests(cfg.mano_dir)):
            return root
        return synthesize(cfg, root, overwrite=True)
    return synthesize(cfg, root, overwrite=root.exists())


def _same_config(recorded, cfg: SynthConfig) -> bool:
    """A manifest's recorded config equals ``cfg``; a key it lacks (written before the knob existed)
    counts as that knob's default, which is what the generator did then."""
    try:
        return from_dict(SynthConfig, recorded) == cfg
    except HandflowError:
        return False


# ---------------------------------------------------------------------------------------------
# rendering


@dataclass
class Subject:
    betas: np.ndarray  # (2,10)
    albedo: np.ndarray  # (2V,3) per-vertex albedo of both hands (right first)


def make_subject(rng: np.random.Generator, n_verts: int) -> Subject:
    betas = motions.subject_betas(rng)
    base = random_skin(rng)
    albedo = []
    for _ in range(2):
        tone = np.clip(base * rng.uniform(0.93, 1.07, size=3), 0.05, 1.0)
        albedo.append(skin_albedo(rng, tone, n_verts))
    return Subject(betas, np.concatenate(albedo, 0))


def render_views(
    verts_world: np.ndarray,
    faces: np.ndarray,
    cams: list[Camera],
    image_hw: tuple[int, int],
    albedo: np.ndarray,
    rngs: list[np.random.Generator],
    joints_world: np.ndarray | None = None,
    tol_mm: float = VISIBILITY_TOL_MM,
):
    """Render both hands in every camera.

    ``verts_world (2,V,3)`` mm, ``faces (2,F,3)``, ``albedo (2V,3)``, one generator per camera for its
    lighting, background and noise. Returns ``images (B,H,W,3) uint8`` and, with ``joints_world
    (42,3)``, ``visible (B,42) bool`` (else None).
    """
    V = verts_world.shape[1]
    verts = torch.as_tensor(np.concatenate([verts_world[0], verts_world[1]], 0), dtype=torch.float64)
    fcs = torch.as_tensor(np.concatenate([faces[0], faces[1] + V], 0), dtype=torch.long)
    labels = torch.cat([torch.zeros(faces.shape[1], dtype=torch.long), torch.ones(faces.shape[1], dtype=torch.long)])
    R = torch.as_tensor(np.stack([c.R for c in cams]), dtype=torch.float64)
    t = torch.as_tensor(np.stack([c.campos_mm for c in cams]), dtype=torch.float64)
    K = torch.as_tensor(np.stack([c.K for c in cams]), dtype=torch.float32)
    vc = ((verts[None] - t[:, None]) @ R.transpose(1, 2)).float()
    H, W = image_hw
    frags = rasterize(vc, fcs, K, image_hw, labels)
    light = [random_lighting(r) for r in rngs]
    ld = torch.as_tensor(np.stack([l[0] for l in light]), dtype=torch.float32)
    lc = torch.as_tensor(np.stack([l[1] for l in light]), dtype=torch.float32)
    amb = torch.as_tensor([l[2] for l in light], dtype=torch.float32)
    alb = torch.as_tensor(albedo, dtype=torch.float32)[None].expand(len(cams), -1, -1)
    rgb = shade(frags, vc, fcs, alb, ld, lc, amb).numpy()
    mask = frags.mask.numpy()[..., None]
    out = np.empty((len(cams), H, W, 3), dtype=np.uint8)
    for b, r in enumerate(rngs):
        bg = random_background(r, H, W)
        img = np.where(mask[b], rgb[b], bg)
        img += noise_like(r, H, W) * np.float32(0.012)
        out[b] = np.clip(img * np.float32(255.0) + np.float32(0.5), 0, 255).astype(np.uint8)
    vis = None
    if joints_world is not None:
        jw = torch.as_tensor(joints_world, dtype=torch.float64)
        jc = ((jw[None] - t[:, None]) @ R.transpose(1, 2)).float()
        vis = visibility(jc, frags, K, torch.as_tensor(JOINT_HAND), tol_mm).numpy()
    return out, vis


def jpeg_bytes(img: np.ndarray, quality: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=quality, subsampling=0, optimize=False)
    return buf.getvalue()


def render_batch(verts_world, faces, cams, image_hw, albedo, seeds, joints_world, tol_mm, quality):
    """One batch of views as JPEG bytes: :func:`render_views` with one generator per camera made from
    ``seeds`` (``np.random.default_rng(seed)``), then :func:`jpeg_bytes`. Returns ``(list of bytes,
    visible (B,42) bool)``. A module-level function, so a worker process can run it."""
    rngs = [np.random.default_rng(s) for s in seeds]
    imgs, vis = render_views(verts_world, faces, cams, image_hw, albedo, rngs, joints_world, tol_mm)
    return [jpeg_bytes(im, quality) for im in imgs], vis


def render_workers(n_images: int) -> int:
    """Processes to render ``n_images`` with: one per CPU this process may use, or 1 below 200 images,
    where a second process saves less than a second."""
    if n_images < 200:
        return 1
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def _worker_init() -> None:
    import signal

    torch.set_num_threads(1)  # as the parent: many small tensor operations, one thread each
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it stops the workers and cleans up


class Renderer:
    """Runs :func:`render_batch` calls in ``workers`` processes (1: in this process) and hands the results
    back in the order the jobs were given, so the capture's files and JSON are the same bytes whatever
    the number of workers. At most two jobs per worker wait at a time: memory stays that of a few batches.
    Leaving the ``with`` block on an error (Ctrl-C included) terminates the workers at once.

    Examples:
        >>> with Renderer(2) as r:
        ...     for key, (jpegs, vis) in r.imap((key, args) for key, args in jobs):
        ...         ...
    """

    def __init__(self, workers: int = 1):
        self.workers = max(1, int(workers))
        self._pool = None

    def __enter__(self) -> "Renderer":
        if self.workers > 1:
            import multiprocessing

            # fork: a worker starts in milliseconds with the modules loaded, and works from any caller (spawn
            # re-imports the caller's main script, which breaks a script without a __main__ guard). torch
            # is single-threaded in the parent by now (build_and_publish) and in the workers, as in a
            # DataLoader worker, so no OpenMP pool is inherited mid-use.
            self._pool = multiprocessing.get_context("fork").Pool(self.workers, initializer=_worker_init)
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if self._pool is not None:
            if exc_type is None:
                self._pool.close()
            else:
                self._pool.terminate()
            self._pool.join()
            self._pool = None

    def imap(self, jobs):
        """``jobs`` yields ``(key, args of render_batch)``; yields ``(key, result)`` in the same order."""
        if self._pool is None:
            for key, args in jobs:
                yield key, render_batch(*args)
            return
        from collections import deque

        pending = deque()
        for key, args in jobs:
            pending.append((key, self._pool.apply_async(render_batch, args)))
            if len(pending) > 2 * self.workers:
                key, res = pending.popleft()
                yield key, res.get()
        while pending:
            key, res = pending.popleft()
            yield key, res.get()


# ---------------------------------------------------------------------------------------------
# split writer


class SplitWriter:
    def __init__(self, root: Path, split: str):
        self.root, self.split = root, split
        self.images, self.annotations = [], []
        self.camera, self.joint_3d, self.mano = {}, {}, {}
        self.n_images = 0

    def add_rig(self, capture: int, rig: Rig) -> None:
        self.camera[str(capture)] = {
            "campos": {c: cam.campos_mm.tolist() for c, cam in rig.cameras.items()},
            "camrot": {c: cam.R.tolist() for c, cam in rig.cameras.items()},
            "focal": {c: cam.focal_px.tolist() for c, cam in rig.cameras.items()},
            "princpt": {c: cam.princpt_px.tolist() for c, cam in rig.cameras.items()},
        }

    def add_frame(self, capture: int, frame: int, mf: motions.MotionFrames, k: int) -> None:
        kp = mf.keypoints_mm[k].astype(np.float32).astype(np.float64)
        self.joint_3d.setdefault(str(capture), {})[str(frame)] = {
            "world_coord": kp.tolist(),
            "joint_valid": [[1] for _ in range(N_JOINTS)],
            "hand_type": "interacting",
            "hand_type_valid": 1,
        }
        self.mano.setdefault(str(capture), {})[str(frame)] = {
            hand: {
                "pose": mf.pose[k, h].astype(np.float64).tolist(),
                "shape": mf.shape[k, h].astype(np.float64).tolist(),
                "trans": mf.trans_m[k, h].astype(np.float64).tolist(),
            }
            for h, hand in enumerate(("right", "left"))
        }

    def add_image(self, capture: int, seq: str, cam_id: str, cam: Camera, frame: int, image_hw, jpeg: bytes,
                  joints_world: np.ndarray, visible: np.ndarray) -> None:
        H, W = image_hw
        rel = f"Capture{capture}/{seq}/cam{cam_id}/image{frame}.jpg"
        path = self.root / "images" / self.split / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(jpeg)
        jc = cam.world_to_cam(joints_world)
        uv = cam.project(jc)
        valid = (jc[:, 2] > 1.0) & (uv[:, 0] >= 0) & (uv[:, 0] <= W - 1) & (uv[:, 1] >= 0) & (uv[:, 1] <= H - 1)
        vis = visible & valid
        if valid.any():
            lo = np.clip(uv[valid].min(0), 0, [W - 1, H - 1])
            hi = np.clip(uv[valid].max(0), 0, [W - 1, H - 1])
            bbox = [round(float(lo[0]), 2), round(float(lo[1]), 2), round(float(hi[0] - lo[0]), 2), round(float(hi[1] - lo[1]), 2)]
        else:
            bbox = [0.0, 0.0, 0.0, 0.0]
        image_id = len(self.images)
        self.images.append({
            "id": image_id, "file_name": rel, "width": W, "height": H, "capture": capture,
            "seq_name": seq, "camera": cam_id, "frame_idx": frame,
        })
        self.annotations.append({
            "id": image_id, "image_id": image_id, "bbox": bbox,
            "joint_valid": [[int(v)] for v in valid],
            "hand_type": "interacting",
            "hand_type_valid": int(valid.sum() > 30),
            "joint_visible": [int(v) for v in vis],
            "joint_img": np.round(uv, 4).tolist(),
        })

    def finish(self) -> dict:
        ann = self.root / "annotations" / self.split
        ann.mkdir(parents=True, exist_ok=True)
        p = f"InterHand2.6M_{self.split}_"
        for name, obj in (("data", {"images": self.images, "annotations": self.annotations}),
                          ("camera", self.camera), ("joint_3d", self.joint_3d), ("MANO_NeuralAnnot", self.mano)):
            (ann / f"{p}{name}.json").write_text(json.dumps(obj, allow_nan=False), encoding="utf-8")
        return {"images": len(self.images), "captures": sorted(int(c) for c in self.camera)}


def _render_capture(writer: SplitWriter, hand_model, cfg: SynthConfig, capture: int, rig: Rig,
                    seqs: list[tuple[str, motions.MotionFrames, list[list[str]]]], subject: Subject, desc: str,
                    image_hw: dict[str, tuple[int, int]] | None = None, renderer: Renderer | None = None) -> None:
    """Render every (sequence, frame, camera-subset) of one capture into ``writer``; ``image_hw`` gives a
    camera its own (H, W) (default: ``cfg.image_hw`` for all); ``renderer`` the processes that render
    (default: this one)."""
    writer.add_rig(capture, rig)
    faces = np.asarray(hand_model.faces)
    frame = FIRST_FRAME
    work = []
    for seq, mf, cams_per_frame in seqs:
        for k in range(len(mf)):
            work.append((seq, mf, k, frame, cams_per_frame[k]))
            frame += 1

    def jobs():
        for seq, mf, k, frame, cam_ids in track(work, desc):
            writer.add_frame(capture, frame, mf, k)
            t = lambda a: torch.as_tensor(a[k:k + 1])  # noqa: E731
            with torch.no_grad():
                verts = hand_model.mesh_from_mano(t(mf.pose), t(mf.shape), t(mf.trans_m))[0].double().numpy()
            kp = mf.keypoints_mm[k].astype(np.float64)
            by_size: dict[tuple[int, int], list[str]] = {}  # the rasteriser renders one image size at a time
            for c in cam_ids:
                by_size.setdefault(tuple(image_hw[c]) if image_hw else cfg.image_hw, []).append(c)
            for hw, same in by_size.items():
                for c0 in range(0, len(same), cfg.render_batch):
                    ids = same[c0:c0 + cfg.render_batch]
                    cams = [rig.cameras[c] for c in ids]
                    seeds = [[cfg.seed, 3, capture, frame, int(c)] for c in ids]
                    yield (seq, frame, hw, ids, cams, kp), (verts, faces, cams, hw, subject.albedo, seeds, kp,
                                                            cfg.visibility_tol_mm, cfg.jpeg_quality)

    for (seq, frame, hw, ids, cams, kp), (jpegs, vis) in (renderer or Renderer()).imap(jobs()):
        for b, cid in enumerate(ids):
            writer.add_image(capture, seq, cid, cams[b], frame, hw, jpegs[b], kp, vis[b])


def render_test_split(writer: SplitWriter, hand_model, cfg: SynthConfig, rig: Rig,
                      image_hw: dict[str, tuple[int, int]] | None = None, desc: str = "synth test",
                      renderer: Renderer | None = None) -> None:
    """The first ``cfg.test_sequences`` test sequences (:data:`motions.TEST_SEQUENCES`, ``cfg.test_frames``
    frames each, the test subjects of ``cfg.seed``) seen by every camera of ``rig``, into ``writer``."""
    with torch.no_grad():
        n_verts = hand_model.mesh_from_mano(torch.zeros(1, 2, 48), torch.zeros(1, 2, 10),
                                            torch.zeros(1, 2, 3)).shape[2]
    kept = [(c, n) for c, names in motions.TEST_SEQUENCES.items() for n in names][:cfg.test_sequences]
    for capture in dict.fromkeys(c for c, _ in kept):  # in order, each once
        names = [n for c, n in kept if c == capture]
        subject = make_subject(np.random.default_rng([cfg.seed, 11, capture]), n_verts)
        seqs = []
        for name in names:
            mf = motions.build_frames(hand_model, motions.test_sequence_specs(name, cfg.test_frames, cfg.seed),
                                      subject.betas)
            seqs.append((name, mf, [rig.ids] * len(mf)))
        _render_capture(writer, hand_model, cfg, capture, rig, seqs, subject, f"{desc} Capture{capture}", image_hw,
                        renderer)


def _training_capture(writer, hand_model, cfg: SynthConfig, capture: int, n_seq: int, n_frames: int,
                      cams_per_frame: int, prior, n_verts: int, desc: str, renderer: Renderer | None = None) -> None:
    rng = np.random.default_rng([cfg.seed, 5, capture])
    rig = random_rig(rng, cfg.image_hw, cfg.train_rig_cameras)
    subject = make_subject(rng, n_verts)
    seqs = []
    for s in range(n_seq):
        kind = motions.TRAIN_KINDS[int(rng.integers(len(motions.TRAIN_KINDS)))] if s else "prior"
        specs = motions.training_frame_specs(rng, kind, n_frames, prior)
        mf = motions.build_frames(hand_model, specs, subject.betas)
        cams = [sorted(rng.choice(rig.ids, size=cams_per_frame, replace=False).tolist()) for _ in range(n_frames)]
        seqs.append((f"{100 + s:04d}_{kind}", mf, cams))
    _render_capture(writer, hand_model, cfg, capture, rig, seqs, subject, desc, renderer=renderer)


def build_and_publish(root: Path, manifest: str, build) -> Path:
    """Build a capture in a temporary sibling of ``root`` — ``build(tmp)`` writes it and returns its
    manifest (a dict) — write the manifest as ``manifest`` (JSON, sorted keys) and :func:`~handflow.io.publish_dir` it;
    on any failure nothing is left behind. The generated captures (this module's and
    :mod:`handflow.synth.render_rig`'s) are all made this way. torch runs single-threaded meanwhile (in
    this process and in each :class:`Renderer` worker): the work is many small tensor operations, and one
    thread is as fast and far kinder to shared cores; more cores are used by more worker processes."""
    root.parent.mkdir(parents=True, exist_ok=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", suffix=".tmp", dir=root.parent))
    try:
        doc = build(tmp)
        (tmp / manifest).write_text(json.dumps(doc, indent=1, sort_keys=True), encoding="utf-8")
        return publish_dir(tmp, root, manifest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        torch.set_num_threads(threads)


def synthesize(cfg: SynthConfig | None = None, root: str | os.PathLike | None = None, overwrite: bool = False,
               workers: int | None = None) -> Path:
    """Generate the synthetic capture into ``root`` (default :func:`default_data_root`); returns ``root``.

    An existing non-empty ``root`` is an error unless ``overwrite`` (:func:`build_and_publish`: nothing
    half-written). ``workers``: rendering processes (default :func:`render_workers`); the bytes written do
    not depend on it."""
    cfg = cfg or SynthConfig()
    root = Path(root) if root is not None else default_data_root(cfg)
    if root.exists() and any(root.iterdir()):
        if not overwrite:
            raise HandflowError(f"output folder exists and is not empty: {root} (use overwrite)")
    workers = render_workers(n_images(cfg)) if workers is None else workers
    return build_and_publish(root, MANIFEST, lambda tmp: _write_capture(cfg, tmp, workers))


def n_images(cfg: SynthConfig) -> int:
    """Images the capture of ``cfg`` holds, over its three splits."""
    test = cfg.test_sequences * cfg.test_frames * cfg.test_cameras
    train = cfg.train_captures * cfg.train_sequences * cfg.train_frames * cfg.train_cameras_per_frame
    return test + train + cfg.val_sequences * cfg.val_frames * cfg.val_cameras_per_frame


def _write_capture(cfg: SynthConfig, tmp: Path, workers: int = 1) -> dict:
    """The test, train and val splits into ``tmp``, rendered by ``workers`` processes; returns the manifest."""
    with Renderer(workers) as renderer:
        return _write_splits(cfg, tmp, renderer)


def _write_splits(cfg: SynthConfig, tmp: Path, renderer: Renderer) -> dict:
    from handflow.hand.model import HandModel

    torch.manual_seed(cfg.seed)
    hand_model = HandModel.from_dir(cfg.mano_dir or default_mano_dir())
    with torch.no_grad():
        probe = hand_model.mesh_from_mano(torch.zeros(1, 2, 48), torch.zeros(1, 2, 10), torch.zeros(1, 2, 3))
    n_verts = probe.shape[2]
    try:
        prior = motions._prior_samples(hand_model)
    except AttributeError:
        prior = None
    splits = {}
    # test
    w = SplitWriter(tmp, "test")
    render_test_split(w, hand_model, cfg, dome_rig(cfg.image_hw, cfg.test_cameras, seed=cfg.seed), renderer=renderer)
    splits["test"] = w.finish()
    # train
    w = SplitWriter(tmp, "train")
    first = 1 + max(motions.TEST_SEQUENCES)
    for c in range(first, first + cfg.train_captures):
        _training_capture(w, hand_model, cfg, c, cfg.train_sequences, cfg.train_frames, cfg.train_cameras_per_frame,
                          prior, n_verts, f"synth train Capture{c}", renderer)
    splits["train"] = w.finish()
    # val
    w = SplitWriter(tmp, "val")
    c = first + cfg.train_captures
    _training_capture(w, hand_model, cfg, c, cfg.val_sequences, cfg.val_frames, cfg.val_cameras_per_frame,
                      prior, n_verts, f"synth val Capture{c}", renderer)
    splits["val"] = w.finish()
    return {
        "generator": "handflow.data.synth",  # the generator's name when the layout was fixed: part of the bytes
        "version": SYNTH_VERSION,
        "seed": cfg.seed,
        "config": to_dict(cfg),
        "mano": mano_digests(getattr(hand_model, "mano_dir", None) or cfg.mano_dir),
        "splits": splits,
    }


def mano_digests(mano_dir: str | os.PathLike | None = None) -> dict:
    """``{file name: digest}`` of the MANO files in ``mano_dir`` (None: the synthetic default folder,
    generated if needed) -- part of the manifest, so data made with other MANO files is detectable."""
    from handflow.io import file_digest

    if mano_dir is None:
        mano_dir = default_mano_dir()
    return {p.name: file_digest(p) for p in sorted(Path(mano_dir).glob("MANO_*.pkl"))}
