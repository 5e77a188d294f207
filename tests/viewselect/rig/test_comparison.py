"""Kept vs full vs random rigs: the one stream of random subsets and the means over sequences."""

import itertools

import numpy as np
import pytest

from tests.viewselect.rig.test_triangulation import joints, ring_rig
from viewselect.rig.comparison import kept_summary, random_subsets
from viewselect.rig.triangulation import Scene, triangulation_error


def test_random_subsets_and_kept_summary():
    cams = ring_rig()
    ids = [f"c{i}" for i in range(len(cams))]
    X, vis = joints(2), np.ones((len(cams), 2, 42), bool)
    scene = Scene("s", ids, cams, X, vis)
    draws = random_subsets(ids, 4, 5, seed=0)
    assert len(draws) == 5 and all(len(set(d)) == 4 and set(d) <= set(ids) for d in draws)
    assert draws == random_subsets(ids, 4, 5, seed=0) and draws != random_subsets(ids, 4, 5, seed=1)
    assert random_subsets(ids, 8, 5) == [list(random_subsets(ids, 8, 1)[0])]  # the whole rig once
    out = kept_summary([scene], ["c0", "c2", "c4", "c6"], ids, n_random=5, pixel_noise_px=1.0, seed=0)
    assert out["n_kept"] == 4 and out["n_random_subsets"] == 5
    assert out["full_error_mm"] < out["kept_error_mm"]
    # the random rigs are those draws: their mean lies within the range of all 1680 ordered 4-camera draws
    # (the noise follows the order), and it is the mean of the draws' own errors
    every = [triangulation_error(cams, X, vis, subset=list(s), pixel_noise_px=1.0, seed=0).mean_error_mm
             for s in itertools.permutations(range(8), 4)]
    assert min(every) <= out["random_error_mm"] <= max(every)
    own = [scene.error(scene.indices(d), 1.0, 0).mean_error_mm for d in draws]
    assert out["random_error_mm"] == pytest.approx(np.mean(own), rel=1e-12) and np.std(own) > 1e-6
    assert out["per_sequence"]["s"]["random"]["mean_error_mm"] == pytest.approx(out["random_error_mm"], rel=1e-12)
    assert out == kept_summary([scene], ["c0", "c2", "c4", "c6"], ids, n_random=5, pixel_noise_px=1.0, seed=0)
