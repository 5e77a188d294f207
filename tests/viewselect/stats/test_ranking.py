"""Regret / rank / selection / ranker arithmetic on a hand-made table with known answers."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from handflow.errors import HandflowError
from viewselect.stats.ranking import (
    add_regret_and_rank,
    camera_ranking,
    rank_views,
    regret_vs_dropped,
    selection_mask,
    spearman,
    summarize,
)

# S1: regrets (global) A 0, B 5, C 20, D 15 -> mean 10.
# S2: regrets (global) A 8, B 0, C 28, D 4 -> mean 10; C and D tie on ambiguity.
ROWS = [
    # sequence, camera, ambiguity, global, rrr, rr, visible, azimuth
    ("S1", "A", 10.0, 20.0, 15.0, 10.0, 0.90, 0.0),
    ("S1", "B", 20.0, 25.0, 14.0, 11.0, 0.80, 90.0),
    ("S1", "C", 30.0, 40.0, 20.0, 12.0, 0.50, 180.0),
    ("S1", "D", 40.0, 35.0, 30.0, 9.0, 0.95, 270.0),
    ("S2", "A", 25.0, 30.0, 18.0, 10.0, 0.70, 0.0),
    ("S2", "B", 5.0, 22.0, 16.0, 10.0, 0.70, 90.0),
    ("S2", "C", 15.0, 50.0, 19.0, 10.0, 0.70, 180.0),
    ("S2", "D", 15.0, 26.0, 17.0, 10.0, 0.70, 270.0),
]


def table(with_baseline=False):
    df = pd.DataFrame(
        ROWS,
        columns=[
            "sequence",
            "camera",
            "ambiguity_mm",
            "mpjpe_global_mm",
            "mpjpe_rrr_mm",
            "mpjpe_rr_mm",
            "visible_fraction",
            "azimuth_deg",
        ],
    )
    if with_baseline:
        df["baseline_spread_mm"] = [4.0, 3.0, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    # Shuffle the rows: nothing may depend on input order.
    return df.sample(frac=1.0, random_state=3).reset_index(drop=True)


def row(df, **where):
    sel = np.ones(len(df), bool)
    for k, v in where.items():
        sel &= (df[k] == v).to_numpy()
    assert sel.sum() == 1, where
    return df.loc[sel].iloc[0]


def test_regret_and_rank():
    per = add_regret_and_rank(table())
    expected_regret = {("S1", "A"): 0, ("S1", "B"): 5, ("S1", "C"): 20, ("S1", "D"): 15,
                       ("S2", "A"): 8, ("S2", "B"): 0, ("S2", "C"): 28, ("S2", "D"): 4}  # fmt: skip
    for (s, c), r in expected_regret.items():
        assert row(per, sequence=s, camera=c)["regret_global_mm"] == r
    assert row(per, sequence="S1", camera="B")["regret_rrr_mm"] == 0
    assert row(per, sequence="S1", camera="A")["regret_rr_mm"] == 1
    ranks = {(s, c): row(per, sequence=s, camera=c)["ambiguity_rank"] for s, c in expected_regret}
    assert [ranks["S1", c] for c in "ABCD"] == [1, 2, 3, 4]
    assert [ranks["S2", c] for c in "ABCD"] == [4, 1, 2, 2]  # tie shares the lowest rank


def test_summary_known_values():
    s = summarize(add_regret_and_rank(table()))

    def get(seq, ranker, col, alignment="global"):
        return row(s, sequence=seq, ranker=ranker, alignment=alignment)[col]

    assert get("S1", "ambiguity", "best_regret_mm") == 0
    assert get("S1", "ambiguity", "worst_regret_mm") == 15
    assert get("S1", "ambiguity", "mean_regret_mm") == 10
    assert get("S1", "ambiguity", "spearman") == pytest.approx(0.8)
    assert get("S2", "ambiguity", "best_regret_mm") == 0
    assert get("S2", "ambiguity", "worst_regret_mm") == 8
    assert get("S2", "ambiguity", "spearman") == pytest.approx(3 / math.sqrt(22.5))
    assert get("overall", "ambiguity", "best_regret_mm") == 0
    assert get("overall", "ambiguity", "worst_regret_mm") == 11.5
    assert get("overall", "ambiguity", "mean_regret_mm") == 10
    assert get("overall", "ambiguity", "spearman") == pytest.approx((0.8 + 3 / math.sqrt(22.5)) / 2)
    # Random: expected values.
    for col in ("best_regret_mm", "worst_regret_mm", "mean_regret_mm"):
        assert get("overall", "random", col) == 10
    assert get("overall", "random", "spearman") == 0
    # Visible fraction: S1 best D (15), worst C (20); S2 all tied -> expected = mean (10), Spearman undefined.
    assert get("S1", "visible_fraction", "best_regret_mm") == 15
    assert get("S1", "visible_fraction", "worst_regret_mm") == 20
    assert get("S1", "visible_fraction", "spearman") == pytest.approx(0.4)
    assert get("S2", "visible_fraction", "best_regret_mm") == 10
    assert math.isnan(get("S2", "visible_fraction", "spearman"))
    assert get("overall", "visible_fraction", "best_regret_mm") == 12.5
    assert get("overall", "visible_fraction", "spearman") == pytest.approx(0.4)
    # Oracle.
    assert get("overall", "oracle", "best_regret_mm") == 0
    assert get("overall", "oracle", "worst_regret_mm") == 24
    assert get("overall", "oracle", "spearman") == 1
    assert get("overall", "oracle", "n_cameras") == 8
    assert "baseline_spread" not in set(s["ranker"])
    assert set(s["alignment"]) == {"global", "rrr", "rr"}


def test_baseline_ranker_when_present():
    s = summarize(add_regret_and_rank(table(with_baseline=True)))
    r = row(s, sequence="S1", ranker="baseline_spread", alignment="global")
    assert (r["best_regret_mm"], r["worst_regret_mm"]) == (15, 0)


def test_camera_ranking_means_over_sequences():
    cams = camera_ranking(table())
    assert list(cams["camera"]) == ["B", "A", "C", "D"]  # mean ambiguity 12.5, 17.5, 22.5, 27.5
    assert list(cams["ambiguity_mm"]) == [12.5, 17.5, 22.5, 27.5]
    assert list(cams["ambiguity_rank"]) == [1, 2, 3, 4]
    assert list(cams["regret_global_mm"]) == [2.5, 4.0, 24.0, 9.5]
    assert list(cams["n_sequences"]) == [2, 2, 2, 2]
    assert list(cams["azimuth_deg"]) == [90.0, 0.0, 180.0, 270.0]  # constant per camera: carried


@pytest.mark.parametrize(
    "opts, kept",
    [
        ({}, ["A", "B", "C", "D"]),
        ({"keep": 2}, ["A", "B"]),
        ({"keep": 4}, ["A", "B", "C", "D"]),
        ({"drop": 1}, ["A", "B", "C"]),
        ({"drop": 0}, ["A", "B", "C", "D"]),
        ({"max_ambiguity_mm": 20.0}, ["A", "B"]),
        ({"max_ambiguity_mm": 22.5}, ["A", "B", "C"]),
    ],
)
def test_selection(opts, kept):
    res = rank_views(table(), **opts)
    assert sorted(res.cameras.loc[res.cameras["keep"], "camera"]) == kept
    assert res.drop_list == [c for c in ["B", "A", "C", "D"] if c not in kept]


def test_selection_per_sequence_tie_broken_by_camera_id():
    res = rank_views(table(), keep=2)
    per = res.sequences
    s2 = per[per["sequence"] == "S2"]
    assert sorted(s2.loc[s2["keep_in_sequence"], "camera"]) == ["B", "C"]  # C/D tie at 15 mm -> C
    assert list(s2["camera"]) == ["B", "C", "D", "A"]  # ordered by rank within sequence


@pytest.mark.parametrize(
    "opts, match",
    [
        ({"drop": 1, "keep": 2}, "choose one of"),
        ({"keep": 2, "max_ambiguity_mm": 10.0}, "choose one of"),
        ({"keep": 0}, "out of range"),
        ({"keep": 5}, "out of range"),
        ({"drop": 4}, "out of range"),
        ({"drop": -1}, "out of range"),
        ({"keep": 2.5}, "whole number"),
        ({"keep": True}, "whole number"),
        ({"max_ambiguity_mm": 1.0}, "keeps no camera"),
        ({"max_ambiguity_mm": float("nan")}, "non-negative"),
    ],
)
def test_selection_errors(opts, match):
    with pytest.raises(HandflowError, match=match):
        rank_views(table(), **opts)


def test_selection_mask_clip():
    scores, cams = pd.Series([3.0, 1.0, 2.0]), pd.Series(["x", "y", "z"])
    assert selection_mask(scores, cams, keep=10, clip=True).tolist() == [True, True, True]
    assert selection_mask(scores, cams, drop=10, clip=True).tolist() == [False, True, False]


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda d: d.drop(columns=["mpjpe_rr_mm"]), "missing column"),
        (lambda d: pd.concat([d, d.iloc[:1]]), "duplicate"),
        (lambda d: d.assign(ambiguity_mm=np.nan), "non-finite"),
        (lambda d: d.assign(visible_fraction=1.5), "visible_fraction"),
        (lambda d: d.assign(mpjpe_global_mm="x"), "not numeric"),
        (lambda d: d.iloc[:0], "no rows"),
    ],
)
def test_validation(mutate, match):
    with pytest.raises(HandflowError, match=match):
        add_regret_and_rank(mutate(table()))


def test_spearman_known_permutations_and_scipy():
    assert spearman([1, 2, 3, 4, 5], [5, 4, 3, 2, 1]) == pytest.approx(-1)
    assert spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]) == pytest.approx(0.8)  # 1 − 6·4 / (5·24)
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 5, 30), rng.normal(size=30)  # ties in x
    assert spearman(x, y) == pytest.approx(spearmanr(x, y).statistic)
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))


def test_regret_vs_dropped():
    per = add_regret_and_rank(table())
    curve = regret_vs_dropped(per, camera_ranking(per))
    assert list(curve["n_dropped"]) == [0, 1, 2, 3]
    assert list(curve["n_kept"]) == [4, 3, 2, 1]
    np.testing.assert_allclose(curve["mean_regret_mm"], [10.0, (25 / 3 + 12) / 2, 3.25, 2.5])
    np.testing.assert_allclose(curve["best_regret_mm"], [0.0, 0.0, 0.0, 2.5])


def test_camera_missing_from_a_sequence():
    df = table()
    df = df[~((df["sequence"] == "S2") & (df["camera"] == "D"))]
    cams = camera_ranking(df)
    d = row(cams, camera="D")
    assert d["n_sequences"] == 1 and d["ambiguity_mm"] == 40.0
    curve = regret_vs_dropped(add_regret_and_rank(df), cams)
    assert np.all(np.isfinite(curve["mean_regret_mm"]))


# ---------------------------------------------------------------- keep K: ambiguity vs coverage


def _coverage_table():
    from math import cos, radians, sin

    cams = pd.DataFrame({"camera": ["A", "B", "C", "D"], "ambiguity_mm": [10.0, 11.0, 15.0, 30.0]})
    dirs = {
        "A": np.array([1.0, 0.0, 0.0]),
        "B": np.array([cos(radians(5)), sin(radians(5)), 0.0]),  # 5° from A: near-duplicate view
        "C": np.array([0.0, 1.0, 0.0]),
        "D": np.array([-2.0, 0.0, 0.0]),  # not normalised on purpose
    }
    return cams, dirs


def test_keep_cameras_strategies():
    from viewselect.rig.coverage import keep_cameras

    cams, dirs = _coverage_table()
    assert keep_cameras(cams, 2, "ambiguity") == ["A", "B"]
    # B pays 0.5 mm/deg · (20 − 5)° = 7.5 mm -> 18.5 > C's 15.
    assert keep_cameras(cams, 2, "coverage", dirs) == ["A", "C"]
    assert keep_cameras(cams, 3, "coverage", dirs) == ["A", "C", "B"]  # 18.5 < D's 30
    assert keep_cameras(cams, 3, "coverage", dirs, mm_per_deg=2.0) == ["A", "C", "D"]  # 11 + 30 > 30
    assert keep_cameras(cams, 4, "coverage", dirs, mm_per_deg=0.0) == keep_cameras(cams, 4, "ambiguity")
    # Deterministic regardless of input row order.
    assert keep_cameras(cams.iloc[::-1], 2, "coverage", dirs) == ["A", "C"]


@pytest.mark.parametrize(
    "args, match",
    [
        ((2, "spread"), "unknown --strategy"),
        ((0, "ambiguity"), "out of range"),
        ((5, "ambiguity"), "out of range"),
        ((2, "coverage"), "viewing direction"),
    ],
)
def test_keep_cameras_errors(args, match):
    from viewselect.rig.coverage import keep_cameras

    cams, _ = _coverage_table()
    with pytest.raises(HandflowError, match=match):
        keep_cameras(cams, *args)
    with pytest.raises(HandflowError, match="no viewing direction"):
        keep_cameras(cams, 2, "coverage", {"A": np.ones(3)})


def test_viewing_directions():
    from handflow.geometry.camera import Camera, look_at
    from viewselect.rig.coverage import viewing_directions

    target = np.array([0.0, 0.0, 1000.0])
    pos = np.array([600.0, -800.0, 1000.0])
    cam = Camera(look_at(pos, target), pos, np.array([1000.0, 1000.0]), np.array([100.0, 100.0]))
    np.testing.assert_allclose(viewing_directions({"c": cam}, target)["c"], [0.6, -0.8, 0.0])
    np.testing.assert_allclose(viewing_directions({"c": cam})["c"], [0.6, -0.8, 0.0], atol=1e-12)
