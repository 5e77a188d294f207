"""The MultiHands spread and count figures on the tiny capture."""

from __future__ import annotations

import math

from handflow.data.interhand import InterHandDataset
from handflow.multihands.spread import annotation_counts, annotation_spread


def test_spread_and_count_figures(tiny_multihands_root):
    ds = InterHandDataset(tiny_multihands_root, "test", max_frames=2)
    s = annotation_spread(ds)
    assert s["images"] == len(ds) and s["images_with_annotations"] > 0
    for k in ("all_depth_mm", "all_plane_mm"):
        assert math.isfinite(s[k]) and s[k] > 0
    c = annotation_counts(ds)
    assert c["proposals"] >= c["accepted"] > 0 and c["annotations"] >= c["annotated"]
