"""`rank --sequence` on a release holding the tiny capture plus many other annotated images gives exactly the
tiny capture's numbers: the index reads one sequence, nothing else leaks in."""

from __future__ import annotations

import pandas as pd

from handflow.data.fake_release import write_fake_release
from viewselect.engine.scoring import RankConfig
from viewselect.ranking.pipeline import RankRequest, run_rank


def test_rank_on_a_big_release_equals_the_capture_alone(tmp_path, tiny_data_root, tiny_model):
    big = write_fake_release(tmp_path / "big", 10_000, base=tiny_data_root, cameras=50, frames_per_sequence=60)
    req = dict(sequence="Capture0-1", model=str(tiny_model), engine=RankConfig(samples=8, frames=2), keep=3)
    alone = run_rank(RankRequest(data_root=str(tiny_data_root), **req))
    inside = run_rank(RankRequest(data_root=str(big), **req))
    pd.testing.assert_frame_equal(alone.views, inside.views, check_exact=True)
    for name in ("cameras", "sequences", "summary"):
        pd.testing.assert_frame_equal(getattr(alone.result, name), getattr(inside.result, name), check_exact=True)
    assert alone.triangulation == inside.triangulation
    assert inside.provenance["sequences"] == alone.provenance["sequences"]
