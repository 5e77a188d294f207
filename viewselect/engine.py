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

from handflow.data.interhand import InterHandDataset, NoReadableImage, annotation_digest
from handflow.data.rig import camera_angles
from handflow.errors import HandflowError
from handflow.io import safe_name, write_json
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
    # flow rows (image x sample) per chunk: bounds memory (flow activations, lifted joints) whatever
    # --samples is; results do not depend on it, so it is not part of the cache key
    chunk_rows: int = 16384

    def __post_init__(self):
        if self.samples < 2:
            raise HandflowError(f"--samples must be at least 2 (a spread needs two samples), found {self.samples}")
        if self.frames is not None and self.frames < 1:
            raise HandflowError(f"--frames must be at least 1, found {self.frames}")
        if self.chunk_rows < 1:
            raise HandflowError(f"chunk_rows must be at least 1, found {self.chunk_rows}")


_NOT_IN_KEY = ("chunk_rows",)  # RankConfig fields that do not change results


def _cache_fields(cfg: RankConfig) -> dict:
    return {k: v for k, v in asdict(cfg).items() if k not in _NOT_IN_KEY}




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
        return self.dir / f"Capture{capture}" / safe_name(seq) / f"cam{safe_name(cam)}.json"

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


class _ViewNoise:
    """The sampling noise of a batch of views, drawn per view on first use and dropped once consumed.

    View ``v``'s noise is ``randn(frames_v, N, 218)`` from a generator seeded by (seed, capture,
    sequence, camera), as one draw: results do not depend on batching, chunking or sharding.
    """

    def __init__(self, views: list[dict], cfg: RankConfig):
        self.views, self.cfg = views, cfg
        self.starts = np.cumsum([0] + [len(v["frame"]) for v in views])  # first image of each view
        self.drawn: dict[int, torch.Tensor] = {}

    def take(self, i0: int, i1: int, s0: int, s1: int) -> torch.Tensor:
        """Noise of images ``i0:i1`` (batch indices), samples ``s0:s1``: ``(i1-i0, s1-s0, 218)``."""
        parts = []
        for v in range(len(self.views)):
            a, b = int(self.starts[v]), int(self.starts[v + 1])
            if b <= i0:
                self.drawn.pop(v, None)
                continue
            if a >= i1:
                break
            if v not in self.drawn:
                view = self.views[v]
                gen = torch.Generator().manual_seed(_seed_for(self.cfg.seed, view["capture"], view["seq"], view["camera"]))
                self.drawn[v] = torch.randn(b - a, self.cfg.samples, Y_DIM, generator=gen)
            parts.append(self.drawn[v][max(i0, a) - a : min(i1, b) - a, s0:s1])
        return torch.cat(parts)


def _chunks(n_images: int, n_samples: int, max_rows: int):
    """``(i0, i1, s0, s1)`` covering images x samples with at most ``max_rows`` rows each (whole
    images together while one image fits, else one image's samples in slices)."""
    if n_samples <= max_rows:
        per = max_rows // n_samples
        for i0 in range(0, n_images, per):
            yield i0, min(i0 + per, n_images), 0, n_samples
    else:
        for i in range(n_images):
            for s0 in range(0, n_samples, max_rows):
                yield i, i + 1, s0, min(s0 + max_rows, n_samples)


class _Spread:
    """Streaming per-image sample spread: count, mean and summed squared deviations per joint
    coordinate, merged over sample chunks (Chan et al.), so samples never need to be held at once."""

    def __init__(self, n_images: int, device):
        self.n = torch.zeros(n_images, 1, 1, device=device)
        self.mean = torch.zeros(n_images, 42, 3, device=device)
        self.m2 = torch.zeros(n_images, 42, 3, device=device)

    def add(self, i0: int, i1: int, joints: torch.Tensor) -> None:
        """``joints (b, s, 42, 3)`` mm: ``s`` more samples of images ``i0:i1``."""
        var_b, mean_b = torch.var_mean(joints, dim=1, correction=0)
        s = joints.shape[1]
        n_a = self.n[i0:i1]
        n = n_a + s
        delta = mean_b - self.mean[i0:i1]
        self.mean[i0:i1] += delta * (s / n)
        self.m2[i0:i1] += var_b * s + delta.square() * (n_a * s / n)
        self.n[i0:i1] = n

    def std(self) -> torch.Tensor:
        """``(B,)`` mean over joints of ``sqrt(trace(cov))`` (unbiased), as ``handflow.metrics.sample_std``."""
        return (self.m2 / (self.n - 1)).sum(-1).sqrt().mean(-1)


@torch.inference_mode()
def evaluate_batch(model, views: list[dict], cfg: RankConfig) -> list[dict]:
    """Run the model on the frames of several views at once; one record per view.

    The encoder runs once on all images; the flow runs in chunks of at most ``cfg.chunk_rows``
    image x sample rows, each lifted to joints and folded into per-image spread statistics at once.
    The spread is taken in camera coordinates: ``sqrt(trace(cov))`` does not change under the
    camera's rigid motion, so only the mode is moved to world coordinates (for MPJPE).
    """
    images = torch.cat([v["image"] for v in views])
    device = next(model.parameters()).device
    K = torch.cat([v["K_crop"] for v in views]).to(device)
    noise = _ViewNoise(views, cfg)
    B, N = images.shape[0], cfg.samples
    if hasattr(model, "predict_joints"):
        ctx = model.encode(images.to(device))
        mode_cam = model.predict_joints(ctx, K, ctx.new_zeros(B, 1, Y_DIM))[:, 0]  # f_v(0), (B,42,3) mm
        spread = _Spread(B, device)
        for i0, i1, s0, s1 in _chunks(B, N, cfg.chunk_rows):
            z = noise.take(i0, i1, s0, s1).to(device)
            spread.add(i0, i1, model.predict_joints(ctx[i0:i1], K[i0:i1], z))
        std = spread.std()  # (B,)
    else:  # a model without the chunked interface: all samples in one call
        out = model.predict(images.to(device), K, n_samples=N, z=noise.take(0, B, 0, N).to(device))
        mode_cam, std = out["mode_joints"], sample_std(out["samples_joints"])
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


class _Prefetch:
    """``fn(items[i])`` computed in order by one background thread, at most ``ahead`` items ahead.

    :meth:`result` returns item ``i``'s value or re-raises its exception, exactly where a direct
    call would have. :meth:`close` (and Ctrl-C inside :meth:`result`) cancels what was not started
    and waits for the one running load.
    """

    def __init__(self, fn, items: list, ahead: int):
        from concurrent.futures import ThreadPoolExecutor

        self.fn, self.items, self.ahead = fn, items, ahead
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="viewselect-load")
        self.futures: dict = {}
        self.submitted = 0

    def result(self, i: int):
        try:
            while self.submitted < len(self.items) and self.submitted <= i + self.ahead:
                self.futures[self.submitted] = self.pool.submit(self.fn, self.items[self.submitted])
                self.submitted += 1
            return self.futures.pop(i).result()
        except KeyboardInterrupt:
            self.close()
            raise

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.futures.clear()


def evaluate_views(model, model_key: str, dataset: InterHandDataset, pairs: list[tuple[int, str]],
                   cfg: RankConfig, cache_root: Path, cameras: list[str] | None = None,
                   shard: tuple[int, int] = (0, 1), label: str = "ranking",
                   skipped_views: list | None = None) -> list[dict]:
    """Per-view records for every (capture, sequence) in ``pairs`` and each camera (cached).

    ``shard = (rank, world)`` evaluates only every world-th view (for torch.distributed).
    ``skipped_views``: when a list is given (and the dataset skips bad images), a view none of whose
    images can be read is left out of the result and appended there as ``{capture, seq, camera, reason}``;
    otherwise it raises.
    """
    key = hashlib.sha256(json.dumps([CACHE_VERSION, model_key, annotation_digest(dataset.root, dataset.split),
                                     dataset.crop_px, _cache_fields(cfg)]).encode()).hexdigest()[:16]
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
        # views are decoded and cropped one batch ahead in a thread (PIL releases the GIL), overlapping the model
        ahead = max(1, math.ceil(cfg.batch_images / max(1, len(todo[0][3])))) if todo else 1
        loads = _Prefetch(lambda job: dataset.load_view(*job), todo, ahead)
        for i, (capture, seq, cam, frames) in enumerate(todo):
            try:
                view = loads.result(i)  # = dataset.load_view(capture, seq, cam, frames)
            except NoReadableImage as err:  # raised only with skip_bad_images: skip the view, report it
                if skipped_views is None:
                    raise
                skipped_views.append({"capture": capture, "seq": seq, "camera": cam, "reason": str(err)})
                progress.advance(task, 1)
                view = None
            if view is not None:
                batch.append(view)
                n_img += len(view["frame"])
            if batch and (n_img >= cfg.batch_images or i == len(todo) - 1):
                progress.update(task, description=f"{label}: Capture{capture}/{seq} cam{cam}")
                for rec in evaluate_batch(model, batch, cfg):
                    cache.put(rec)
                    records[(rec["capture"], rec["seq"], rec["camera"])] = rec
                progress.advance(task, len(batch))
                batch, n_img = [], 0
        loads.close()
    return [records[j[:3]] for j in jobs if j[:3] in records]  # views without a readable image are absent


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
        # frames every view could read (a skipped unreadable image drops its frame from that view's record)
        frames = sorted(set.intersection(*(set(r["frames"]) for r in recs)))
        if not frames:
            continue
        view = dataset.load_view(capture, seq, cam_ids[0], frames)
        joints = view["joints_world_mm"].numpy()
        visible = np.stack([np.asarray(r["visible"], bool)[[r["frames"].index(f) for f in frames]]
                            for r in recs])  # (V,F,42)
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
