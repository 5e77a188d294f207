"""Annotate a split with MultiHands: every image of the selected sequences, one file per sequence.

A sequence whose file exists with the same key (walk config, annotation digest, hand model, image list)
is skipped, so an interrupted run resumes with the sequence it was working on. Images where a hand has
no MANO parameters are skipped and counted (their file rows are absent). Each image's walk draws from
its own generator seeded by ``(seed, capture, sequence, camera, frame)``.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from handflow.data.index import annotation_digest
from handflow.data.interhand import InterHandDataset
from handflow.hand.model import hand_model_digest
from handflow.multihands.config import MultiHandsConfig
from handflow.multihands.criteria import CRITERIA, Plausibility
from handflow.multihands.store import read_sequence, sequence_path, write_sequence
from handflow.multihands.walk import WalkStats, walk_image
from handflow.progress import make_progress
from handflow.provenance import provenance

VERSION = 2  # bump when the walk changes what it produces for a given config


@dataclass
class AnnotateSummary:
    split: str
    sequences: int = 0
    sequences_cached: int = 0
    images: int = 0
    annotated: int = 0
    skipped_no_mano: int = 0
    annotations: int = 0  # stored, ground truth included
    proposals: int = 0
    accepted: int = 0
    rejected_by: dict[str, int] = field(default_factory=lambda: {c: 0 for c in CRITERIA})
    occluded_disagree: int = 0  # joints marked occluded that the GT meshes' depth test sees (real data)
    seconds: float = 0.0  # walking time of the sequences computed in this run
    images_walked: int = 0
    files: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["acceptance_rate"] = self.accepted / self.proposals if self.proposals else float("nan")
        d["annotations_per_image"] = self.annotations / self.annotated if self.annotated else float("nan")
        d["seconds_per_image"] = self.seconds / self.images_walked if self.images_walked else float("nan")
        return d


def shard_sequences(sizes: dict[tuple[int, str], int], rank: int, world: int) -> list[tuple[int, str]]:
    """The sequences process ``rank`` of ``world`` annotates: largest first, each to the process with the
    fewest images so far (ties: lowest rank), so processes get similar work. Every process computes the
    same split from the same sizes; a sequence's file does not depend on which process writes it."""
    load = [0] * world
    mine = []
    for key in sorted(sizes, key=lambda k: (-sizes[k], k)):
        r = min(range(world), key=lambda i: (load[i], i))
        load[r] += sizes[key]
        if r == rank:
            mine.append(key)
    return sorted(mine)


def merge_summaries(parts: list[AnnotateSummary]) -> AnnotateSummary:
    """One summary of the processes' summaries (their sequences are disjoint)."""
    out = AnnotateSummary(split=parts[0].split)
    for p in parts:
        for f in ("sequences", "sequences_cached", "images", "annotated", "skipped_no_mano", "annotations",
                  "proposals", "accepted", "occluded_disagree", "seconds", "images_walked"):
            setattr(out, f, getattr(out, f) + getattr(p, f))
        for k, v in p.rejected_by.items():
            out.rejected_by[k] = out.rejected_by.get(k, 0) + v
        out.files += p.files
    out.files.sort()
    return out


def image_seed(seed: int, capture: int, seq: str, cam: str, frame: int) -> int:
    blob = f"multihands|{seed}|{capture}|{seq}|{cam}|{frame}".encode()
    return int.from_bytes(hashlib.sha256(blob).digest()[:8], "little") & ((1 << 63) - 1)


def annotate_split(dataset: InterHandDataset, hand_model, cfg: MultiHandsConfig, force: bool = False) -> AnnotateSummary:
    """Write the MultiHands file of every selected sequence of ``dataset``; returns what happened.

    Many small tensor operations: next to other jobs, ``OMP_NUM_THREADS=1`` is much faster."""
    plaus = Plausibility(hand_model, cfg)
    by_seq = {key: list(dataset.items.rows_of(*key)) for key in dataset.items.sequences()}
    base_key = [VERSION, asdict(cfg), annotation_digest(dataset.root, dataset.split), hand_model_digest(hand_model)]
    summary = AnnotateSummary(split=dataset.split, sequences=len(by_seq), images=len(dataset))
    with make_progress() as progress:
        task = progress.add_task("MultiHands", total=len(dataset))
        for (capture, seq), idx in sorted(by_seq.items()):
            images = list(zip(dataset.items.column("camera", capture, seq).tolist(),
                              dataset.items.column("frame", capture, seq).tolist()))
            key = hashlib.sha256(json.dumps([*base_key, capture, seq, images]).encode()).hexdigest()[:16]
            path = sequence_path(dataset.root, dataset.split, capture, seq)
            done = _cached(path, key) if not force else None
            if done is not None:
                summary.sequences_cached += 1
                _add_counts(summary, done)
                summary.files.append(str(path))
                progress.advance(task, len(idx))
                continue
            progress.update(task, description=f"MultiHands Capture{capture}/{seq}")
            cams, frames, anns, counts = [], [], [], _SequenceCounts()
            t0 = time.perf_counter()
            for i in idx:
                it = dataset.items[i]
                hw = dataset.image_hw(i)
                g = dataset.geometry(i, hw)
                counts.images += 1
                if float(np.min(g["mvalid"])) < 1:
                    counts.skipped.append(f"cam{it['camera']} frame {it['frame']}")
                    progress.advance(task)
                    continue
                tg = plaus.targets(g, hw)
                gen = torch.Generator().manual_seed(image_seed(cfg.seed, capture, seq, it["camera"], it["frame"]))
                gt = {k: torch.as_tensor(g[k], dtype=torch.float32) for k in ("pose", "shape", "trans")}
                ann, stats = walk_image(plaus, gt, tg, cfg, gen)
                cams.append(it["camera"])
                frames.append(it["frame"])
                anns.append({k: v.numpy() for k, v in ann.items()})
                counts.stats.add(stats)
                counts.annotations += len(ann["pose"])
                counts.occluded_disagree += tg.occluded_disagree
                progress.advance(task)
            seconds = time.perf_counter() - t0
            meta = {"key": key, "version": VERSION, "split": dataset.split, "capture": capture, "sequence": seq,
                    "counts": counts.as_dict(), "seconds": seconds,
                    "provenance": provenance(config={"multihands": asdict(cfg)})}
            write_sequence(path, cams, frames, anns, meta)
            summary.seconds += seconds
            summary.images_walked += len(anns)
            _add_counts(summary, meta["counts"])
            summary.files.append(str(path))
    return summary


@dataclass
class _SequenceCounts:
    images: int = 0
    annotations: int = 0
    occluded_disagree: int = 0
    skipped: list[str] = field(default_factory=list)
    stats: WalkStats = field(default_factory=WalkStats)

    def as_dict(self) -> dict:
        return {"images": self.images, "annotated": self.images - len(self.skipped), "skipped_no_mano": self.skipped,
                "annotations": self.annotations, "proposals": self.stats.proposals, "accepted": self.stats.accepted,
                "rejected_by": dict(self.stats.rejected_by), "occluded_disagree": self.occluded_disagree}


def _cached(path: Path, key: str) -> dict | None:
    if not path.is_file():
        return None
    try:
        _, meta = read_sequence(path)
    except Exception:  # a damaged file is recomputed, never trusted
        return None
    return meta["counts"] if meta.get("key") == key else None


def _add_counts(s: AnnotateSummary, c: dict) -> None:
    s.annotated += c["annotated"]
    s.skipped_no_mano += len(c["skipped_no_mano"])
    s.annotations += c["annotations"]
    s.proposals += c["proposals"]
    s.accepted += c["accepted"]
    s.occluded_disagree += c["occluded_disagree"]
    for k, v in c["rejected_by"].items():
        s.rejected_by[k] = s.rejected_by.get(k, 0) + v
