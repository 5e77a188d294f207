"""reports/multihands.md: the spread figures and the report itself on the tiny capture."""

from __future__ import annotations

import math

from handflow.data.interhand import InterHandDataset
from handflow.multihands.spread import annotation_spread, write_report


def test_spread_figures_and_report(tmp_path, tiny_multihands_root):
    ds = InterHandDataset(tiny_multihands_root, "test", max_frames=2)
    s = annotation_spread(ds)
    assert s["images"] == len(ds) and s["images_with_annotations"] > 0
    for k in ("all_depth_mm", "all_plane_mm"):
        assert math.isfinite(s[k]) and s[k] > 0
    out = tmp_path / "multihands.md"
    res = write_report(ds, out, "test")
    text = out.read_text()
    assert "acceptance rate" in text and "along the viewing ray" in text
    assert res["counts"]["annotated"] == len(ds)
