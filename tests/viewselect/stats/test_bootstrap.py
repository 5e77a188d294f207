"""Bootstrap intervals and drop consensus: known answers on small hand-made statistics."""

from __future__ import annotations

import numpy as np
import pytest

from handflow.errors import HandflowError
from viewselect.stats.bootstrap import (
    ViewStats,
    bootstrap,
    interval_columns,
    stats_from_records,
)


def make_stats(amb, mpjpe=None, groups=None) -> ViewStats:
    """``amb (S, C, F)``; MPJPE defaults to the ambiguity; groups (S, C, F, G) default to G = 1."""
    amb = np.asarray(amb, float)
    S, C, F = amb.shape
    mp = np.asarray(mpjpe if mpjpe is not None else amb, float)
    grp = np.asarray(groups, float) if groups is not None else amb[..., None]
    return ViewStats([f"s{i}" for i in range(S)], [f"c{i}" for i in range(C)], amb, grp,
                     np.stack([mp, mp, mp]), np.full(S, F), np.ones((S, C, F, 42), bool))


def test_no_variation_collapses_the_interval():
    amb = np.array([[[5.0, 5.0, 5.0], [9.0, 9.0, 9.0]]] * 3)  # 3 sequences, 2 cameras, 3 frames
    res = bootstrap(make_stats(amb, groups=np.repeat(amb[..., None], 4, axis=3)), n_resamples=50)
    lo, hi = res.ambiguity_interval()
    np.testing.assert_allclose(lo, [5, 9]) and np.testing.assert_allclose(hi, [5, 9])
    lo, hi = res.regret_interval("global")
    np.testing.assert_allclose(lo, [0, 4]) and np.testing.assert_allclose(hi, [0, 4])
    # the ambiguity ranking picks camera 0, whose regret 0 is 2 mm under the average (0 + 4) / 2
    np.testing.assert_allclose(res.best_view_gain_mm, -2.0)


def test_frame_resampling_distribution():
    # one sequence, one camera, two frames (2 mm, 6 mm): the resampled mean is 2, 4 or 6 mm with
    # probabilities 1/4, 1/2, 1/4
    res = bootstrap(make_stats([[[2.0, 6.0], [1.0, 1.0]]]), n_resamples=4000, seed=3)
    vals, counts = np.unique(res.ambiguity_mm[:, 0], return_counts=True)
    np.testing.assert_allclose(vals, [2, 4, 6])
    np.testing.assert_allclose(counts / 4000, [0.25, 0.5, 0.25], atol=0.03)


def test_frames_are_paired_across_cameras():
    # camera 1 is camera 0 plus 1 mm on every frame: in every resample the difference stays 1 mm
    a = np.array([[[2.0, 7.0, 4.0], [3.0, 8.0, 5.0]]])
    res = bootstrap(make_stats(a), n_resamples=200)
    np.testing.assert_allclose(res.ambiguity_mm[:, 1] - res.ambiguity_mm[:, 0], 1.0)


def test_sample_groups_spread_the_ambiguity_around_the_point():
    amb = np.full((1, 1, 1), 10.0)
    groups = np.array([[[[8.0, 12.0]]]])  # two groups: 8 and 12 mm, mean 10
    res = bootstrap(make_stats(amb, groups=groups), n_resamples=4000, seed=1)
    vals, counts = np.unique(np.round(res.ambiguity_mm[:, 0], 9), return_counts=True)
    np.testing.assert_allclose(vals, [8, 10, 12])  # 10 + (mean of 2 drawn groups − 10)
    np.testing.assert_allclose(counts / 4000, [0.25, 0.5, 0.25], atol=0.03)


def test_sample_groups_are_paired_across_cameras_with_common_noise():
    # camera 1's groups are camera 0's plus 1 mm (common noise: group g holds the same draws for both):
    # paired, the difference stays 1 mm in every resample; drawn apart, it spreads
    amb = np.array([[[10.0, 10.0], [11.0, 11.0]]])
    groups = np.array([[[[8.0, 12.0, 9.0]] * 2, [[9.0, 13.0, 10.0]] * 2]])  # (1, 2, 2, 3)
    paired = bootstrap(make_stats(amb, groups=groups), n_resamples=300, paired_groups=True)
    np.testing.assert_allclose(paired.ambiguity_mm[:, 1] - paired.ambiguity_mm[:, 0], 1.0)
    apart = bootstrap(make_stats(amb, groups=groups), n_resamples=300)
    assert np.std(apart.ambiguity_mm[:, 1] - apart.ambiguity_mm[:, 0]) > 0.5


def test_deterministic_for_a_seed():
    rng = np.random.default_rng(0)
    st = make_stats(rng.uniform(1, 20, (4, 5, 3)), groups=rng.uniform(1, 20, (4, 5, 3, 3)))
    a, b, c = bootstrap(st, 100, seed=7), bootstrap(st, 100, seed=7), bootstrap(st, 100, seed=8)
    np.testing.assert_array_equal(a.ambiguity_mm, b.ambiguity_mm)
    np.testing.assert_array_equal(a.regret_mm, b.regret_mm)
    assert not np.array_equal(a.ambiguity_mm, c.ambiguity_mm)


def test_consensus():
    # camera 2 is always the most ambiguous; cameras 0 and 1 swap places frame by frame: camera 0 is
    # the more ambiguous one when both frames drawn are frame 1 (1/4); a tie (1/2) drops the higher id
    amb = np.array([[[1.0, 3.0], [3.0, 1.0], [10.0, 10.0]]])
    res = bootstrap(make_stats(amb), n_resamples=2000, seed=0)
    np.testing.assert_allclose(res.consensus(1), [0, 0, 1])
    two = res.consensus(2)
    assert two[2] == 1 and abs(two[0] - 0.25) < 0.03 and two[0] + two[1] == pytest.approx(1)
    np.testing.assert_allclose(res.consensus(0), 0)
    with pytest.raises(HandflowError):
        res.consensus(4)
    cols = interval_columns(res, ["c2"])
    assert set(cols) >= {"ambiguity_ci_low_mm", "regret_global_ci_high_mm", "drop_consensus"}
    assert "drop_consensus" not in interval_columns(res, [])


def test_stats_from_records_aligns_frames_and_cameras():
    from viewselect.records import ViewRecord

    def rec(cap, seq, cam, frames, amb):
        return ViewRecord(capture=cap, seq=seq, camera=cam, frames=frames, ambiguity_mm=float(np.mean(amb)),
                          ambiguity_global_mm=0.0, ambiguity_rrr_mm=0.0, flow_spread_mm=0.0,
                          mpjpe_global_mm=0.0, mpjpe_rrr_mm=0.0, mpjpe_rr_mm=0.0, visible_fraction=1.0,
                          hands_center_mm=[0.0, 0.0, 0.0], visible=[[1] * 42 for _ in frames],
                          frame_ambiguity_mm=amb, frame_ambiguity_global_mm=amb, frame_ambiguity_rrr_mm=amb,
                          frame_flow_spread_mm=amb, frame_group_ambiguity_mm=[[a, a] for a in amb],
                          frame_mpjpe_global_mm=[2 * a for a in amb], frame_mpjpe_rrr_mm=[2 * a for a in amb],
                          frame_mpjpe_rr_mm=[None] * len(amb))

    recs = [rec(0, "a", "2", [10, 11], [1.0, 2.0]), rec(0, "a", "1", [11], [5.0]),
            rec(1, "b", "1", [20, 21, 22], [3.0, 3.0, 3.0])]
    st = stats_from_records(recs)
    assert st.sequences == ["Capture0/a", "Capture1/b"] and st.cameras == ["1", "2"]
    assert st.ambiguity_mm.shape == (2, 2, 3) and list(st.n_frames) == [2, 3]
    assert np.isnan(st.ambiguity_mm[0, 0, 0]) and st.ambiguity_mm[0, 0, 1] == 5.0
    assert np.isnan(st.ambiguity_mm[1, 1]).all()  # camera 2 is not in sequence b
    np.testing.assert_allclose(st.point_ambiguity(), [(5.0 + 3.0) / 2, 1.5])
    res = bootstrap(st, 100)
    # a resample that draws no frame of a camera has no value for it; intervals skip those
    assert np.isfinite(res.ambiguity_mm).mean() > 0.5 and np.isfinite(res.ambiguity_interval()).all()
    assert np.isfinite(res.consensus(1)).all() and res.consensus(1).sum() == pytest.approx(1)


def test_bad_arguments():
    st = make_stats(np.ones((1, 2, 2)))
    with pytest.raises(HandflowError, match="n_resamples"):
        bootstrap(st, 0)
    with pytest.raises(HandflowError, match="level"):
        bootstrap(st, 10, level=1.5)
