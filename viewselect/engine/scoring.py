"""The ranking engine: HandFlowNet on every (sequence, camera), cached per view.

For each camera of each selected sequence, all its frames go through the encoder once per test-time
crop (the crop itself and ``crops - 1`` slightly shifted re-crops,
:mod:`handflow.geometry.recrop`); each gives a mode ``f_v(0)``; N poses are also sampled from the flow
on the plain crop. Poses are lifted to 3D through the hand model and the crop camera, and moved to
world coordinates with the camera's extrinsics. Per view we keep:

* ``ambiguity_mm`` — mean over frames and the 42 joints of the per-joint std of the modes over the
  test-time crops (``sqrt(trace(cov))``, so independent of the camera's rotation), after moving each
  hand to its own wrist (:data:`~viewselect.records.RANKED_ALIGNMENT`): how much the reconstructed
  hands move when the image is framed a little differently. It ranks cameras by their error where the
  flow's spread does not (``reports/ambiguity.md``), and it is deterministic: no sampling noise;
* ``ambiguity_{global,rrr}_mm`` — the same spread without alignment and after moving both hands by the
  right wrist, so each alignment's error has a spread measured the same way;
* ``flow_spread_mm`` — the same statistic over the N poses sampled from the flow (the HandFlow paper's
  ambiguity), kept as a ranker to compare with;
* ``mpjpe_{global,rrr,rr}_mm`` — mean over frames of the mode's error against the ground truth;
* ``visible_fraction`` — fraction of the valid joints visible in the view (a simple ranker);
* the per-frame visibility (for triangulation) and the camera's position / azimuth / elevation;
* per frame, the ambiguity, the ambiguity of each of G disjoint groups of the crops and the
  mode's MPJPE: what :mod:`viewselect.stats.bootstrap` resamples without running the model again.

Each view becomes a :class:`~viewselect.records.ViewRecord`, cached per view
(:mod:`viewselect.engine.viewcache`); the flow's base noise is a pure function of each image's key
(:mod:`viewselect.engine.noise`; by default the same draws for every camera of a frame) and the re-crops
are fixed, so results do not depend on batching, order, or how cameras are sharded over processes; the
flow's spread is accumulated over sample chunks (:mod:`viewselect.engine.streaming`) and images are
loaded one batch ahead (:mod:`viewselect.engine.prefetch`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from handflow.data.index import annotation_digest
from handflow.data.interhand import InterHandDataset
from handflow.data.selection import pick_frames
from handflow.data.views import NoReadableImage
from handflow.geometry.recrop import TEST_TIME_CROPS, recrop
from handflow.geometry.rig import rig_angles
from handflow.errors import HandflowError
from handflow.hand.model import hand_model_digest
from handflow.metrics import ALIGNMENTS, align, mpjpe, sample_std
from handflow.model.pose_params import Y_DIM, joints_to_world
from handflow.model.protocol import PoseModel, SamplesInChunks
from handflow.progress import make_progress
from viewselect.engine.noise import ViewNoise, check_scheme, chunks
from viewselect.engine.prefetch import Prefetch
from viewselect.records import RANKED_ALIGNMENT, SkippedView, ViewRecord, ambiguity_field, hands_center
from viewselect.engine.streaming import GroupedSpread, group_bounds
from viewselect.rig.triangulation import Scene
from viewselect.engine.viewcache import ViewCache, cache_key, images_stamp


@dataclass(frozen=True)
class RankConfig:
    # the flow's spread only (the ambiguity is the re-crop spread): 50 poses per image with common noise rank
    # closer to a 400-sample flow ranking than 100 independent ones (reports/benchmarks.md, samples)
    samples: int = 50  # poses sampled per image (the flow's spread, the paper's figure)
    sampling: str = "common-normal"  # base noise (viewselect.engine.noise.SCHEMES): every camera of a frame draws the same z
    crops: int = len(TEST_TIME_CROPS)  # test-time crops per image behind the ambiguity (handflow.geometry.recrop)
    frames: int | None = None  # --frames: N evenly spaced per sequence (handflow.data.selection.pick_frames); None = all
    batch_images: int = 96  # images per model call (frames of several cameras together)
    seed: int = 0
    # flow rows (image x sample) per chunk: bounds memory (flow activations, lifted joints) whatever
    # --samples is; results do not depend on it, so it is not part of the cache key
    chunk_rows: int = 16384

    def __post_init__(self):
        if self.samples < 2:
            raise HandflowError(f"--samples must be at least 2 (a spread needs two samples), found {self.samples}")
        if not 2 <= self.crops <= len(TEST_TIME_CROPS):
            raise HandflowError(f"crops must be between 2 and {len(TEST_TIME_CROPS)} (a spread needs two crops), "
                                f"found {self.crops}")
        if self.frames is not None and self.frames < 1:
            raise HandflowError(f"--frames must be at least 1, found {self.frames}")
        if self.chunk_rows < 1:
            raise HandflowError(f"chunk_rows must be at least 1, found {self.chunk_rows}")
        check_scheme(self.sampling)


@torch.inference_mode()
def evaluate_batch(model: PoseModel, views: list[dict], cfg: RankConfig) -> list[ViewRecord]:
    """Run the model on the frames of several views at once; one record per view.

    The ambiguity is the spread of the mode ``f_v(0)`` over ``cfg.crops`` test-time crops of each image
    (:data:`handflow.geometry.recrop.TEST_TIME_CROPS`: the encoder sees the image framed slightly
    differently each time), after each alignment; the flow's own spread over ``cfg.samples`` sampled poses
    is kept beside it (``flow_spread_mm``, the paper's figure). The encoder runs once per crop on all
    images; the flow runs in chunks of at most ``cfg.chunk_rows`` image x sample rows, each lifted to
    joints and folded into per-image spread statistics at once. Spreads are taken in camera coordinates:
    ``sqrt(trace(cov))`` does not change under the camera's rigid motion, so only the mode is moved to
    world coordinates (for MPJPE).
    """
    images = torch.cat([v["image"] for v in views])
    device = next(model.parameters()).device
    images, K = images.to(device), torch.cat([v["K_crop"] for v in views]).to(device)
    noise = ViewNoise(views, cfg.samples, cfg.seed, cfg.sampling)
    B, N = images.shape[0], cfg.samples
    crops = TEST_TIME_CROPS[:cfg.crops]
    if isinstance(model, SamplesInChunks):
        ctx = model.encode(images)
        zero = ctx.new_zeros(B, 1, Y_DIM)
        mode_cam = model.predict_joints(ctx, K, zero)[:, 0]  # f_v(0), (B,42,3) mm
        flow_std, _ = sample_spread(model, ctx, K, noise, cfg)
        del ctx
        modes = [mode_cam]
        for jitter in crops[1:]:
            img_j, K_j = recrop(images, K, jitter)
            modes.append(model.predict_joints(model.encode(img_j), K_j, zero)[:, 0])
    else:  # a model without the chunked interface: all samples in one call per crop
        out = model.predict(images, K, n_samples=N, z=noise.take(0, B, 0, N).to(device))
        mode_cam, flow_std = out["mode_joints"], sample_std(out["samples_joints"])
        modes = [mode_cam] + [model.predict(*recrop(images, K, j), n_samples=2)["mode_joints"] for j in crops[1:]]
    modes = torch.stack(modes, dim=1)  # (B, crops, 42, 3) mm
    # the ranked spread, also on disjoint groups of crops (resampled by the bootstrap)
    groups = GroupedSpread(B, group_bounds(len(crops)), device)
    groups.add(0, B, 0, align(modes, RANKED_ALIGNMENT))
    group_std = groups.std()  # (B, G)
    # the ranked spread from the groups' statistics (merged, not recomputed); the others directly
    std = {a: groups.total_std() if a == RANKED_ALIGNMENT else sample_std(modes, a) for a in ALIGNMENTS}  # {a: (B,)}
    R = torch.cat([v["R"] for v in views]).to(device)
    campos = torch.cat([v["campos_mm"] for v in views]).to(device)
    mode_w = joints_to_world(mode_cam, R, campos)  # (B,42,3) mm
    gt = torch.cat([v["joints_world_mm"] for v in views]).to(device)
    valid = torch.cat([v["joint_valid"] for v in views]).to(device)
    errs = {a: mpjpe(mode_w, gt, valid, a) for a in ("global", "rrr", "rr")}
    records, a = [], 0
    for v in views:
        n = len(v["frame"])
        sl = slice(a, a + n)
        a += n
        vis = (v["joint_visible"] * v["joint_valid"]).numpy()
        nvalid = max(1.0, float(v["joint_valid"].sum()))
        records.append(ViewRecord(
            capture=v["capture"], seq=v["seq"], camera=v["camera"], frames=list(v["frame"]),
            **{ambiguity_field(a): _mean(std[a][sl]) for a in ALIGNMENTS}, flow_spread_mm=_mean(flow_std[sl]),
            mpjpe_global_mm=_mean(errs["global"][sl]), mpjpe_rrr_mm=_mean(errs["rrr"][sl]),
            mpjpe_rr_mm=_mean(errs["rr"][sl]),
            visible_fraction=float(vis.sum() / nvalid),
            hands_center_mm=_center(v["joints_world_mm"], v["joint_valid"]),
            visible=vis.astype(int).tolist(),
            **{ambiguity_field(a, frame=True): _floats(std[a][sl]) for a in ALIGNMENTS},
            frame_flow_spread_mm=_floats(flow_std[sl]),
            frame_group_ambiguity_mm=[_floats(g) for g in group_std[sl]],
            frame_mpjpe_global_mm=_floats(errs["global"][sl]), frame_mpjpe_rrr_mm=_floats(errs["rrr"][sl]),
            frame_mpjpe_rr_mm=_floats(errs["rr"][sl]),
            skipped_images=list(v.get("skipped", [])),
        ))
    return records


def sample_spread(model: SamplesInChunks, ctx: torch.Tensor, K: torch.Tensor, noise: ViewNoise,
                  cfg: RankConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image spread of ``cfg.samples`` poses ``f_v(z)``, ``z`` from ``noise``: ``(B,)`` mm over all samples
    and ``(B, G)`` mm per disjoint sample group (:func:`viewselect.streaming.group_bounds`).

    ``ctx (B, C)`` encoder features, ``K (B, 3, 3)`` crop intrinsics px. The flow runs in chunks of at most
    ``cfg.chunk_rows`` image x sample rows, each lifted to joints and folded into the statistics at once.
    """
    B, N = ctx.shape[0], cfg.samples
    groups = GroupedSpread(B, group_bounds(N), ctx.device)
    for i0, i1, s0, s1 in chunks(B, N, cfg.chunk_rows):
        z = noise.take(i0, i1, s0, s1).to(ctx.device)
        groups.add(i0, i1, s0, model.predict_joints(ctx[i0:i1], K[i0:i1], z))
    return groups.total_std(), groups.std()


def _center(joints: torch.Tensor, valid: torch.Tensor) -> list[float]:
    """Mean of the valid ground-truth joints over frames, (3,) mm: where the rig looks."""
    w = valid[..., None].float()
    return (joints * w).sum((0, 1)).div(w.sum().clamp_min(1)).tolist()


def _floats(t: torch.Tensor) -> list[float | None]:
    """A 1-D tensor as JSON-safe floats (None where not finite)."""
    return [v if math.isfinite(v) else None for v in t.double().cpu().tolist()]


def _mean(t: torch.Tensor) -> float:
    t = t[torch.isfinite(t)]
    return float(t.mean()) if t.numel() else math.nan


def evaluate_views(model: PoseModel, model_key: str, dataset: InterHandDataset, pairs: list[tuple[int, str]],
                   cfg: RankConfig, cache_root: Path, cameras: list[str] | None = None,
                   shard: tuple[int, int] = (0, 1), label: str = "ranking",
                   skipped_views: list[SkippedView] | None = None) -> list[ViewRecord]:
    """Per-view records for every (capture, sequence) in ``pairs`` and each camera (cached).

    ``shard = (rank, world)`` evaluates only every world-th view (for torch.distributed).
    ``skipped_views``: when a list is given, a view that cannot be scored (none of its images can be read,
    with a dataset that skips bad images; or no annotated joint lies inside its images in any frame) is left
    out of the result and appended there as a :class:`SkippedView`; otherwise it raises.
    """
    hand_model = getattr(model, "hand_model", None)  # lifts samples to joints: another MANO, other numbers
    cache = ViewCache(cache_root, cache_key(model_key, annotation_digest(dataset.root, dataset.split),
                                            hand_model_digest(hand_model) if hand_model is not None else None,
                                            dataset.crop_px, cfg))
    jobs = []
    for capture, seq in pairs:
        cams = dataset.camera_ids(capture, seq)
        if cameras is not None:
            unknown = [c for c in cameras if c not in cams]
            if unknown:
                raise HandflowError(f"unknown camera {unknown[0]!r} in Capture{capture}/{seq}")
            cams = [c for c in cams if c in cameras]
        frames = pick_frames(dataset.frames(capture, seq), cfg.frames)
        jobs += [(capture, seq, cam, frames) for cam in cams]
    rank, world = shard
    jobs = jobs[rank::world]
    records: dict[tuple, ViewRecord] = {}
    todo = []
    stamps = {job[:3]: images_stamp([dataset.image_path(dataset.index_of(*job[:3], f)) for f in job[3]])
              for job in jobs}
    for job in jobs:
        rec = cache.get(*job[:3], stamps[job[:3]])
        if rec is not None and rec.frames and set(rec.frames) <= set(job[3]):
            records[job[:3]] = rec
        else:
            todo.append(job)
    with make_progress() as progress:
        task = progress.add_task(f"{label} ({len(jobs) - len(todo)} cached)", total=len(jobs),
                                 completed=len(jobs) - len(todo))
        batch: list[dict] = []
        n_img = 0
        # views are decoded and cropped one batch ahead in a thread (PIL releases the GIL), overlapping the model
        ahead = max(1, math.ceil(cfg.batch_images / max(1, len(todo[0][3])))) if todo else 1
        loads = Prefetch(lambda job: dataset.load_view(*job), todo, ahead)
        for i, (capture, seq, cam, frames) in enumerate(todo):
            reason = None  # why this view cannot be scored, if it cannot
            try:
                view = loads.result(i)  # = dataset.load_view(capture, seq, cam, frames)
                if not bool(view["joint_valid"].any()):
                    # a camera that never sees the hands (every joint outside its image, or unannotated, in
                    # every frame) has no MPJPE to rank by: left out and listed, like an unreadable view
                    reason = f"no annotated joint inside the image in any of its {len(view['frame'])} frame(s)"
            except NoReadableImage as err:  # raised only with skip_bad_images
                if skipped_views is None:
                    raise
                reason = str(err)
            if reason is not None:
                if skipped_views is None:
                    raise HandflowError(f"Capture{capture}/{seq} cam{cam}: {reason}; it cannot be scored")
                skipped_views.append(SkippedView(capture, seq, cam, reason))
                progress.advance(task, 1)
                view = None
            if view is not None:
                batch.append(view)
                n_img += len(view["frame"])
            if batch and (n_img >= cfg.batch_images or i == len(todo) - 1):
                progress.update(task, description=f"{label}: Capture{capture}/{seq} cam{cam}")
                for rec in evaluate_batch(model, batch, cfg):
                    cache.put(rec, stamps[rec.key])
                    records[rec.key] = rec
                progress.advance(task, len(batch))
                batch, n_img = [], 0
        loads.close()
    return [records[j[:3]] for j in jobs if j[:3] in records]  # views without a readable image are absent


def view_table(records: list[ViewRecord], dataset: InterHandDataset) -> pd.DataFrame:
    """Per-(sequence, camera) table for :func:`viewselect.stats.ranking.rank_views`, with camera geometry."""
    # One centre for the whole selection (where the rig looks), so a camera's angles are the same in
    # every sequence and capture and reach the camera-level table. Angles are in the rig's own frame (up:
    # the cameras' mean image-up; azimuth 0: the first camera), from all cameras of the selected captures,
    # so they depend neither on the world frame nor on --cameras.
    center = hands_center(records)
    captures = sorted({r.capture for r in records})
    angles = rig_angles({f"{c}/{cid}": cam for c in captures for cid, cam in dataset.cameras(c).items()}, center)
    rows = []
    for r in records:
        cam = dataset.camera(r.capture, r.camera)
        az, el, dist = angles[f"{r.capture}/{r.camera}"]
        rows.append({
            "sequence": r.sequence, "camera": r.camera,
            "campos_x_mm": float(cam.campos_mm[0]), "campos_y_mm": float(cam.campos_mm[1]),
            "campos_z_mm": float(cam.campos_mm[2]), "azimuth_deg": az, "elevation_deg": el,
            "distance_mm": dist,
            **{ambiguity_field(a): getattr(r, ambiguity_field(a)) for a in ALIGNMENTS},
            "flow_spread_mm": r.flow_spread_mm,
            "mpjpe_global_mm": r.mpjpe_global_mm,
            "mpjpe_rrr_mm": r.mpjpe_rrr_mm, "mpjpe_rr_mm": r.mpjpe_rr_mm,
            "visible_fraction": r.visible_fraction, "n_frames": len(r.frames),
        })
    return pd.DataFrame(rows)


def triangulation_scenes(records: list[ViewRecord], dataset: InterHandDataset) -> list[Scene]:
    """Per sequence, what triangulation needs: every scored camera, the ground-truth joints of the
    frames every view could read, and which camera sees which valid joint in each of them."""
    by_seq: dict[tuple, list[ViewRecord]] = {}
    for r in records:
        by_seq.setdefault((r.capture, r.seq), []).append(r)
    scenes = []
    for (capture, seq), recs in by_seq.items():
        recs = sorted(recs, key=lambda r: r.camera)
        cam_ids = [r.camera for r in recs]
        # frames every view could read (a skipped unreadable image drops its frame from that view's record)
        frames = sorted(set.intersection(*(set(r.frames) for r in recs)))
        if not frames:
            continue
        view = dataset.load_view(capture, seq, cam_ids[0], frames)
        visible = np.stack([np.asarray(r.visible, bool)[[r.frames.index(f) for f in frames]]
                            for r in recs])  # (V,F,42)
        valid = view["joint_valid"].numpy() > 0
        scenes.append(Scene(name=f"Capture{capture}/{seq}", camera_ids=cam_ids,
                            cameras=[dataset.camera(capture, c) for c in cam_ids],
                            joints_world_mm=view["joints_world_mm"].numpy(), visible=visible & valid[None]))
    return scenes


__all__ = ["RankConfig", "evaluate_views", "evaluate_batch", "sample_spread", "view_table", "triangulation_scenes"]
