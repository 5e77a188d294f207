"""The ranking engine: HandFlowNet on every (sequence, camera), cached per view.

For each camera of each selected sequence, all its frames go through the encoder once; N poses
are sampled per image (plus the mode, z = 0), lifted to 3D through the hand model and the crop
camera, and moved to world coordinates with the camera's extrinsics. Per view we keep:

* ``ambiguity_mm`` — mean over frames and the 42 joints of the per-joint sample std
  (``sqrt(trace(cov))``, so independent of the camera's rotation), DESIGN §7;
* ``mpjpe_{global,rrr,rr}_mm`` — mean over frames of the mode's error against the ground truth;
* ``visible_fraction`` — fraction of the valid joints visible in the view (a simple ranker);
* the per-frame visibility (for triangulation) and the camera's position / azimuth / elevation.

Every view's record is written atomically to a JSON file under the cache, keyed by the model's
weights digest, the data's annotation digest and the sampling settings, so an interrupted run
resumes where it stopped and a changed model or dataset never reads stale results.
Noise is drawn per view from a generator seeded by ``(seed, capture, sequence, camera)``: results
do not depend on batching, order, or how cameras are sharded over processes.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from handflow.data.interhand import InterHandDataset, annotation_digest
from handflow.data.rig import camera_angles
from handflow.errors import HandflowError
from handflow.io import write_json
from handflow.metrics import mpjpe, sample_std
from handflow.model.pose_params import Y_DIM, joints_to_world
from handflow.progress import make_progress

CACHE_VERSION = 1


@dataclass(frozen=True)
class RankConfig:
    samples: int = 100  # poses sampled per image
    frames: int | None = None  # at most this many frames per sequence (evenly spaced); None = all
    batch_images: int = 96  # images per model call (frames of several cameras together)
    seed: int = 0

    def __post_init__(self):
        if self.samples < 2:
            raise HandflowError(f"--samples must be at least 2 (a spread needs two samples), found {self.samples}")
        if self.frames is not None and self.frames < 1:
            raise HandflowError(f"--frames must be at least 1, found {self.frames}")




def _seed_for(seed: int, capture: int, seq: str, cam: str) -> int:
    blob = f"{seed}|{capture}|{seq}|{cam}".encode()
    return int.from_bytes(hashlib.sha256(blob).digest()[:8], "little") & ((1 << 63) - 1)


def pick_frames(frames: list[int], limit: int | None) -> list[int]:
    if limit is None or limit >= len(frames):
        return list(frames)
    idx = np.linspace(0, len(frames) - 1, limit).round().astype(int)
    return [frames[i] for i in idx]


class ViewCache:
    """One JSON record per (capture, sequence, camera) under ``root/<key>/``."""

    def __init__(self, root: Path, key: str):
        self.dir = Path(root) / key
        self.key = key

    def path(self, capture: int, seq: str, cam: str) -> Path:
        return self.dir / f"Capture{capture}" / _safe(seq) / f"cam{_safe(cam)}.json"

    def get(self, capture: int, seq: str, cam: str) -> dict | None:
        p = self.path(capture, seq, cam)
        if not p.is_file():
            return None
        try:
            rec = json.loads(p.read_text())
        except (OSError, ValueError):
            return None  # a damaged record is recomputed, never trusted
        return rec if rec.get("cache_key") == self.key else None

    def put(self, rec: dict) -> None:
        write_json(self.path(rec["capture"], rec["seq"], rec["camera"]), {**rec, "cache_key": self.key})


def _safe(name: str) -> str:
    """A path component that cannot escape the cache folder."""
    s = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(name))
    return s if s not in ("", ".", "..") else "_"


@torch.no_grad()
def evaluate_batch(model, views: list[dict], cfg: RankConfig) -> list[dict]:
    """Run the model on the frames of several views at once; one record per view."""
    images = torch.cat([v["image"] for v in views])
    K = torch.cat([v["K_crop"] for v in views])
    z = torch.cat([
        torch.randn(len(v["frame"]), cfg.samples, Y_DIM,
                    generator=torch.Generator().manual_seed(_seed_for(cfg.seed, v["capture"], v["seq"], v["camera"])))
        for v in views
    ])
    device = next(model.parameters()).device
    out = model.predict(images.to(device), K.to(device), n_samples=cfg.samples, z=z.to(device))
    R = torch.cat([v["R"] for v in views]).to(device)
    campos = torch.cat([v["campos_mm"] for v in views]).to(device)
    samples_w = joints_to_world(out["samples_joints"], R, campos)  # (B,N,42,3) mm
    mode_w = joints_to_world(out["mode_joints"], R, campos)  # (B,42,3) mm
    gt = torch.cat([v["joints_world_mm"] for v in views]).to(device)
    valid = torch.cat([v["joint_valid"] for v in views]).to(device)
    std = sample_std(samples_w)  # (B,)
    errs = {a: mpjpe(mode_w, gt, valid, a) for a in ("global", "rrr", "rr")}
    records, a = [], 0
    for v in views:
        n = len(v["frame"])
        sl = slice(a, a + n)
        a += n
        vis = (v["joint_visible"] * v["joint_valid"]).numpy()
        nvalid = max(1.0, float(v["joint_valid"].sum()))
        records.append({
            "capture": v["capture"], "seq": v["seq"], "camera": v["camera"], "frames": list(v["frame"]),
            "ambiguity_mm": _mean(std[sl]),
            **{f"mpjpe_{k}_mm": _mean(e[sl]) for k, e in errs.items()},
            "visible_fraction": float(vis.sum() / nvalid),
            "hands_center_mm": _center(v["joints_world_mm"], v["joint_valid"]),
            "visible": vis.astype(int).tolist(),
            "skipped_images": list(v.get("skipped", [])),
        })
    return records


def _center(joints: torch.Tensor, valid: torch.Tensor) -> list[float]:
    """Mean of the valid ground-truth joints over frames, (3,) mm: where the rig looks."""
    w = valid[..., None].float()
    return (joints * w).sum((0, 1)).div(w.sum().clamp_min(1)).tolist()


def _mean(t: torch.Tensor) -> float:
    t = t[torch.isfinite(t)]
    return float(t.mean()) if t.numel() else math.nan


def evaluate_views(model, model_key: str, dataset: InterHandDataset, pairs: list[tuple[int, str]],
                   cfg: RankConfig, cache_root: Path, cameras: list[str] | None = None,
                   shard: tuple[int, int] = (0, 1), label: str = "ranking") -> list[dict]:
    """Per-view records for every (capture, sequence) in ``pairs`` and each camera (cached).

    ``shard = (rank, world)`` evaluates only every world-th view (for torch.distributed).
    """
    key = hashlib.sha256(json.dumps([CACHE_VERSION, model_key, annotation_digest(dataset.root, dataset.split),
                                     dataset.crop_px, asdict(cfg)]).encode()).hexdigest()[:16]
    cache = ViewCache(cache_root, key)
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
    records: dict[tuple, dict] = {}
    todo = []
    for job in jobs:
        rec = cache.get(*job[:3])
        if rec is not None and rec["frames"] and set(rec["frames"]) <= set(job[3]):
            records[job[:3]] = rec
        else:
            todo.append(job)
    with make_progress() as progress:
        task = progress.add_task(f"{label} ({len(jobs) - len(todo)} cached)", total=len(jobs),
                                 completed=len(jobs) - len(todo))
        batch: list[dict] = []
        n_img = 0
        for i, (capture, seq, cam, frames) in enumerate(todo):
            view = dataset.load_view(capture, seq, cam, frames)
            batch.append(view)
            n_img += len(view["frame"])
            if n_img >= cfg.batch_images or i == len(todo) - 1:
                progress.update(task, description=f"{label}: Capture{capture}/{seq} cam{cam}")
                for rec in evaluate_batch(model, batch, cfg):
                    cache.put(rec)
                    records[(rec["capture"], rec["seq"], rec["camera"])] = rec
                progress.advance(task, len(batch))
                batch, n_img = [], 0
    return [records[j[:3]] for j in jobs]


def view_table(records: list[dict], dataset: InterHandDataset) -> pd.DataFrame:
    """Per-(sequence, camera) table for :func:`viewselect.ranking.rank_views`, with camera geometry."""
    # One centre for the whole selection (where the rig looks), so a camera's angles are the same in
    # every sequence and capture and reach the camera-level table.
    center = np.mean([r["hands_center_mm"] for r in records], axis=0)
    rows = []
    for r in records:
        cam = dataset.camera(r["capture"], r["camera"])
        az, el = camera_angles(cam.campos_mm, center)
        rows.append({
            "sequence": f"Capture{r['capture']}/{r['seq']}", "camera": r["camera"],
            "campos_x_mm": float(cam.campos_mm[0]), "campos_y_mm": float(cam.campos_mm[1]),
            "campos_z_mm": float(cam.campos_mm[2]), "azimuth_deg": float(az), "elevation_deg": float(el),
            "ambiguity_mm": r["ambiguity_mm"], "mpjpe_global_mm": r["mpjpe_global_mm"],
            "mpjpe_rrr_mm": r["mpjpe_rrr_mm"], "mpjpe_rr_mm": r["mpjpe_rr_mm"],
            "visible_fraction": r["visible_fraction"], "n_frames": len(r["frames"]),
        })
    return pd.DataFrame(rows)


def triangulation_summary(records: list[dict], dataset: InterHandDataset, kept: list[str],
                          pixel_noise_px: float = 1.0, n_random: int = 10, seed: int = 0) -> dict:
    """Triangulation error of the kept cameras vs the full rig vs random subsets, mean over sequences."""
    from viewselect.triangulation import compare_subsets

    by_seq: dict[tuple, list[dict]] = {}
    for r in records:
        by_seq.setdefault((r["capture"], r["seq"]), []).append(r)
    per_seq = {}
    for (capture, seq), recs in by_seq.items():
        recs = sorted(recs, key=lambda r: r["camera"])
        cam_ids = [r["camera"] for r in recs]
        subset = [i for i, c in enumerate(cam_ids) if c in set(kept)]
        if not subset:
            continue
        frames = recs[0]["frames"]
        view = dataset.load_view(capture, seq, cam_ids[0], frames)
        joints = view["joints_world_mm"].numpy()
        visible = np.stack([np.asarray(r["visible"], bool) for r in recs])  # (V,F,42)
        valid = view["joint_valid"].numpy() > 0
        cams = [dataset.camera(capture, c) for c in cam_ids]
        res = compare_subsets(cams, joints, visible & valid[None], subset, n_random=n_random,
                              pixel_noise_px=pixel_noise_px, seed=seed)
        per_seq[f"Capture{capture}/{seq}"] = res
    if not per_seq:
        return {}

    def avg(path):
        vals = [v[path[0]][path[1]] for v in per_seq.values()]
        vals = [x for x in vals if x is not None and math.isfinite(x)]
        return float(np.mean(vals)) if vals else math.nan

    return {
        "pixel_noise_px": pixel_noise_px, "n_kept": len(kept), "n_random_subsets": n_random,
        "kept_error_mm": avg(("kept", "mean_error_mm")), "full_error_mm": avg(("full", "mean_error_mm")),
        "random_error_mm": avg(("random", "mean_error_mm")),
        "kept_failed_fraction": avg(("kept", "failed_fraction")),
        "random_failed_fraction": avg(("random", "failed_fraction")),
        "per_sequence": per_seq,
    }


def default_cache_root() -> Path:
    from handflow.data.synth import cache_dir

    return cache_dir() / "rank"


__all__ = ["RankConfig", "evaluate_views", "view_table", "triangulation_summary", "default_cache_root"]
