"""Per-frame statistics the bootstrap resamples: grouped sample spreads, and what the engine records."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from handflow.metrics import sample_std
from viewselect.engine.streaming import GroupedSpread, group_bounds, sample_groups


def test_group_bounds():
    assert sample_groups(100) == 10 and sample_groups(8) == 4 and sample_groups(3) == 1
    assert group_bounds(100)[0] == (0, 10) and group_bounds(100)[-1] == (90, 100)
    b = group_bounds(7)
    assert b[0][0] == 0 and b[-1][1] == 7 and all(s1 - s0 >= 2 for s0, s1 in b)


@pytest.mark.parametrize("chunk", [3, 7, 20])
def test_grouped_spread_equals_each_group_at_once(chunk):
    g = torch.Generator().manual_seed(0)
    joints = torch.randn(5, 20, 42, 3, generator=g, dtype=torch.float64) * 10
    bounds = group_bounds(20)
    spread = GroupedSpread(5, bounds, "cpu")
    for s0 in range(0, 20, chunk):  # sample chunks that straddle group boundaries
        spread.add(0, 5, s0, joints[:, s0:s0 + chunk])
    want = torch.stack([sample_std(joints[:, a:b]) for a, b in bounds], -1)
    torch.testing.assert_close(spread.std(), want.to(spread.std().dtype))


def test_engine_records_per_frame_statistics(tiny_data_root, tiny_model):
    from viewselect.engine.scoring import RankConfig
    from viewselect.ranking.pipeline import RankRequest, run_rank

    out = run_rank(RankRequest(sequence="Capture0", data_root=str(tiny_data_root), model=str(tiny_model),
                               engine=RankConfig(samples=8, frames=2), drop=1))
    for r in out.records:
        assert len(r.frame_ambiguity_mm) == len(r.frames) == len(r.frame_mpjpe_rr_mm)
        assert np.mean(r.frame_ambiguity_mm) == pytest.approx(r.ambiguity_mm, rel=1e-6)
        assert np.mean(r.frame_mpjpe_global_mm) == pytest.approx(r.mpjpe_global_mm, rel=1e-6)
        # the groups are disjoint groups of the test-time crops (the ranked spread), not of the flow samples
        assert all(len(g) == sample_groups(RankConfig().crops) for g in r.frame_group_ambiguity_mm)
