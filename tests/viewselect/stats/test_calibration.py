"""Reliability bins: known answers on hand-made per-frame spreads and errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from viewselect.stats.calibration import binned, image_pairs, reliability, split_half
from viewselect.records import ViewRecord


def record(cam: str, spread: list, error: list, rr_spread: list | None = None) -> ViewRecord:
    n = len(spread)
    rr = rr_spread if rr_spread is not None else spread
    return ViewRecord(capture=0, seq="s", camera=cam, frames=list(range(n)), ambiguity_mm=0.0, ambiguity_global_mm=0.0,
                      ambiguity_rrr_mm=0.0, flow_spread_mm=0.0, mpjpe_global_mm=0.0, mpjpe_rrr_mm=0.0, mpjpe_rr_mm=0.0,
                      visible_fraction=1.0, hands_center_mm=[0.0, 0.0, 0.0], visible=[[1] * 42] * n,
                      frame_ambiguity_mm=rr, frame_ambiguity_global_mm=spread, frame_ambiguity_rrr_mm=spread, frame_flow_spread_mm=spread,
                      frame_group_ambiguity_mm=[[s] for s in spread], frame_mpjpe_global_mm=error,
                      frame_mpjpe_rrr_mm=error, frame_mpjpe_rr_mm=[e / 2 if e is not None else None for e in error])


def test_bins_are_equal_count_groups_in_ascending_spread():
    spread = np.array([5.0, 1.0, 3.0, 2.0, 4.0, 6.0])
    error = np.array([50.0, 10.0, 30.0, 20.0, 40.0, 60.0])
    s, e, n = binned(spread, error, bins=3)
    assert s == [1.5, 3.5, 5.5] and e == [15.0, 35.0, 55.0] and n == [2, 2, 2]
    # more bins than images: one image each
    assert binned(spread[:2], error[:2], bins=10)[2] == [1, 1]
    assert binned(np.array([]), np.array([]), bins=10) == ([], [], [])


def test_curves_per_alignment_use_that_alignments_spread_and_error_and_skip_missing_frames():
    recs = [record("1", [1.0, 2.0, None], [10.0, 20.0, 99.0], rr_spread=[4.0, 3.0, 1.0]),
            record("2", [3.0, 4.0, 5.0], [30.0, None, 50.0], rr_spread=[2.0, 1.0, 0.5])]
    spread, error = image_pairs(recs, "global")
    assert sorted(spread.tolist()) == [1.0, 2.0, 3.0, 5.0]  # frames without a spread or an error are left out
    curves = {c.alignment: c for c in reliability(recs, bins=2)}
    g = curves["global"]
    assert g.spread_mm == [1.5, 4.0] and g.error_mm == [15.0, 40.0] and g.n_images == [2, 2]
    assert g.spearman == pytest.approx(1.0)
    rr = curves["rr"]  # RR spread falls while RR error (error / 2) rises: a ranker pointing the wrong way
    # pairs (spread, error): (4, 5), (3, 10), (1, 49.5), (2, 15), (0.5, 25); 5 images in groups of 3 and 2
    assert rr.spread_mm == pytest.approx([(0.5 + 1.0 + 2.0) / 3, (3.0 + 4.0) / 2])
    assert rr.error_mm == pytest.approx([(25.0 + 49.5 + 15.0) / 3, (10.0 + 5.0) / 2])
    assert rr.n_images == [3, 2] and rr.spearman < 0
    assert set(curves) == {"global", "rrr", "rr"}


def test_json_has_no_nan():
    c = reliability([record("1", [1.0], [2.0])])[0]
    assert math.isnan(c.spearman) and c.to_json()["spearman"] is None
    with pytest.raises(ValueError, match="bins"):
        reliability([], bins=0)


def test_split_half_ranks_cameras_by_even_frames_against_odd_frames():
    # camera errors: "1" is worst on both halves, "3" best on both: the halves agree perfectly
    recs = [record("1", [1.0] * 4, [30.0, 31.0, 32.0, 33.0]), record("2", [1.0] * 4, [20.0, 22.0, 21.0, 23.0]),
            record("3", [1.0] * 4, [10.0, 12.0, 11.0, 13.0])]
    assert split_half(recs, "global") == pytest.approx(1.0)
    # "2" good on even frames and bad on odd ones, "1" the reverse: the halves disagree
    recs = [record("1", [1.0] * 2, [30.0, 10.0]), record("2", [1.0] * 2, [10.0, 30.0]), record("3", [1.0] * 2, [20.0, 20.0])]
    assert split_half(recs, "global") == pytest.approx(-1.0)
    assert math.isnan(split_half([record("1", [1.0], [3.0])], "global"))  # one frame: no halves
    assert reliability(recs)[0].split_half == pytest.approx(-1.0)
