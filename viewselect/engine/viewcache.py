"""The per-view result cache: one JSON record per (capture, sequence, camera), keyed by what decides it.

The key covers the model's weights digest, the data's annotation digest, the hand model's digest
(``--mano-dir``: samples are lifted to joints through it), the crop size and the sampling settings;
each record also carries its images' identity (:func:`images_stamp`: size and modification time), so
an interrupted run resumes where it stopped and a changed model, hand model, dataset or image (e.g.
one repaired after a run that skipped it) never reads stale results. A damaged record is recomputed,
never trusted.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, astuple
from pathlib import Path

from handflow.geometry.recrop import TEST_TIME_CROPS
from handflow.io import safe_name, write_json
from viewselect.records import ViewRecord

CACHE_VERSION = 4  # 2: hand model in the key, images' identity in each record; 4: the ambiguity over test-time crops, per alignment, and the flow spread
_NOT_IN_KEY = ("chunk_rows",)  # RankConfig fields that do not change results


def cache_key(model_key: str, annotation_digest: str, hand_model_key: str | None, crop_px: int, cfg) -> str:
    """16 hex digits naming the cache folder of one (model, data, hand model, crop, sampling settings)."""
    fields = {k: v for k, v in asdict(cfg).items() if k not in _NOT_IN_KEY}
    crops = [astuple(j) for j in TEST_TIME_CROPS[:cfg.crops]]  # which crops, not only how many
    blob = json.dumps([CACHE_VERSION, model_key, annotation_digest, hand_model_key, crop_px, fields, crops])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def images_stamp(paths: list[Path]) -> str:
    """Identity of one view's images: size and modification time of each (``-`` when missing), hashed."""
    h = hashlib.sha256()
    for p in paths:
        try:
            st = Path(p).stat()
            h.update(f"{Path(p).name}:{st.st_size}:{st.st_mtime_ns};".encode())
        except OSError:
            h.update(f"{Path(p).name}:-;".encode())
    return h.hexdigest()[:16]


class ViewCache:
    """One JSON record per (capture, sequence, camera) under ``root/<key>/``."""

    def __init__(self, root: Path, key: str):
        self.dir = Path(root) / key
        self.key = key

    def path(self, capture: int, seq: str, cam: str) -> Path:
        return self.dir / f"Capture{capture}" / safe_name(seq) / f"cam{safe_name(cam)}.json"

    def get(self, capture: int, seq: str, cam: str, images: str) -> ViewRecord | None:
        """The stored record, if it was computed from images with the stamp ``images``."""
        p = self.path(capture, seq, cam)
        if not p.is_file():
            return None
        try:
            d = json.loads(p.read_text())
            if d.get("cache_key") != self.key or d.get("images") != images:
                return None
            return ViewRecord.from_json(d)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None  # a damaged record is recomputed, never trusted

    def put(self, rec: ViewRecord, images: str) -> None:
        write_json(self.path(*rec.key), {**rec.to_json(), "cache_key": self.key, "images": images})


def default_cache_root() -> Path:
    from handflow.cache import cache_dir

    return cache_dir() / "rank"
