"""The default drop rule and the report's verdict, on hand-made numbers."""

from __future__ import annotations

import numpy as np
import pytest

from viewselect.stats.bootstrap import bootstrap, interval_columns
from viewselect.stats.recommend import coverage_matrix, recommend_drop, verdict
from tests.viewselect.stats.test_bootstrap import make_stats

CAMS = ["c0", "c1", "c2", "c3", "c4", "c5"]
POINT = np.array([1.0, 2.0, 3.0, 4.0, 10.0, 11.0])
# low ends of the cameras' excess over the rig's median: c3's interval touches zero, c4 and c5 lie above
LOW = np.array([0.5, 1.5, 2.5, 3.5, 9.0, 10.5]) - 3.5


def test_interval_wholly_above_the_median_is_dropped():
    rec = recommend_drop(CAMS, POINT, LOW, np.ones((6, 5), bool))
    assert rec.median_mm == 3.5 and rec.candidates == ["c5", "c4"] and rec.drop_list == ["c5", "c4"]
    assert rec.held_for_coverage == [] and rec.reason.startswith("dropping 2 of 6 cameras")


def test_coverage_cap_keeps_three_views_of_every_joint():
    seen = np.ones((6, 3), bool)
    seen[[1, 2, 3], 0] = False  # joint-frame 0: seen by c0, c4, c5 only
    rec = recommend_drop(CAMS, POINT, LOW, seen)
    assert rec.drop_list == [] and rec.held_for_coverage == ["c5", "c4"] and "≥ 3 cameras" in rec.reason
    seen[[1, 2], 0] = True  # now 5 cameras see it: one of c4/c5 may go
    rec = recommend_drop(CAMS, POINT, LOW, seen)
    assert rec.drop_list == ["c5", "c4"]  # 5 − 2 = 3 left
    seen[2, 0] = False  # 4 cameras: only the most ambiguous goes
    assert recommend_drop(CAMS, POINT, LOW, seen).drop_list == ["c5"]


def test_joint_seen_by_fewer_than_three_in_the_full_rig_does_not_block():
    seen = np.zeros((6, 2), bool)
    seen[:, 0] = True
    seen[[0, 1], 1] = True  # seen by two cameras in the full rig, neither of them a candidate
    assert recommend_drop(CAMS, POINT, LOW, seen).drop_list == ["c5", "c4"]


def test_nothing_to_drop():
    rec = recommend_drop(CAMS, POINT, np.full(6, -0.1), np.ones((6, 2), bool))
    assert rec.drop_list == [] and rec.reason.startswith("no camera dropped")


def test_coverage_matrix_skips_padding_frames():
    st = make_stats(np.ones((2, 3, 4)))
    st = type(st)(**{**st.__dict__, "n_frames": np.array([4, 2])})
    assert coverage_matrix(st).shape == (3, (4 + 2) * 42)


def test_verdict_states_the_figures():
    amb = np.array([[[1.0, 1.2, 0.8], [5.0, 5.5, 4.5], [9.0, 9.5, 8.5]]] * 4)
    boot = bootstrap(make_stats(amb), 200)
    cons = interval_columns(boot, ["c2"])["drop_consensus"]
    v = verdict(boot, {"c2": cons[boot.cameras.index("c2")]}, gain_point_mm=-4.0, rule="test rule")
    assert v.beat_random and v.consensus == {"c2": 1.0} and v.min_consensus == 1.0
    assert "Drop 1 of 3 cameras (test rule): c2 (100%)" in v.text and "beat random" in v.text
    assert v.best_view_gain_ci_mm[1] < 0
    # a ranking that picks the worst camera does not beat random
    flipped = bootstrap(make_stats(amb, mpjpe=-amb + 20), 200)
    v2 = verdict(flipped, {}, gain_point_mm=4.0)
    assert not v2.beat_random and "did not beat random" in v2.text and v2.text.startswith("Keep all 3")
    assert np.isnan(v2.min_consensus)


def test_excess_interval_takes_the_median_inside_each_resample():
    from viewselect.stats.bootstrap import BootstrapResult

    # three resamples that move every camera together by -5, 0, +5 mm: c2 always lies 1 mm above the median
    base = np.array([1.0, 2.0, 3.0])
    amb = np.stack([base - 5, base, base + 5])
    res = BootstrapResult(["c0", "c1", "c2"], amb, np.zeros((3, 3, 3)), np.zeros((3, 3)), level=0.95, seed=0)
    low, high = res.excess_interval()
    assert low.tolist() == pytest.approx([-1.0, 0.0, 1.0]) and high.tolist() == pytest.approx([-1.0, 0.0, 1.0])
    # against a fixed median the shared shift would hide it: c2's plain interval reaches below the median 2
    assert res.ambiguity_interval()[0][2] < 2.0
    assert recommend_drop(res.cameras, base, low, np.ones((3, 2), bool)).candidates == ["c2"]
