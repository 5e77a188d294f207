"""benchmarks.ambiguity: the per-camera, per-sequence Spearman and the pooled spread ratio on hand-made rows."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from benchmarks.ambiguity import summarize


def _rows():
    rows = []
    # two sequences x three cameras x two frames; in s1 the ambiguity orders the cameras as the error does,
    # in s2 the reverse: per-sequence Spearman +1 and -1, mean 0
    for seq, sign in (("s1", 1), ("s2", -1)):
        for cam, err in (("a", 10.0), ("b", 20.0), ("c", 30.0)):
            for frame in range(2):
                amb = err if sign > 0 else 100 - err
                rows.append({"sequence": seq, "camera": cam, "frame": frame, "mpjpe_global_mm": err + frame, "mpjpe_rr_mm": err,
                             "ambiguity_mm": amb, "articulation_mm": err, "depth_err_mm": 2 * err + frame, "distance_mm": 1000 - err,
                             "crop_mm": err, "crop_rr_mm": -err, "visible_fraction": 1 - err / 100,
                             "vis_sum": 4.0, "vis_n": 2, "occ_sum": 3.0, "occ_n": 1})
    return pd.DataFrame(rows)


def test_summary_known_values():
    r = summarize(_rows())
    assert r["images"] == 12
    assert r["mpjpe_global_mm"] == pytest.approx(20.5)
    assert r["cam_ambiguity_vs_global"] == pytest.approx(0.0)  # +1 and -1
    assert r["cam_articulation_vs_rr"] == pytest.approx(1.0)
    assert r["cam_crop_vs_global"] == pytest.approx(1.0) and r["cam_crop_rr_vs_rr"] == pytest.approx(-1.0)
    assert r["cam_visible_vs_rr"] == pytest.approx(-1.0)
    assert r["cam_distance_vs_global"] == pytest.approx(-1.0)
    assert r["img_depth_vs_global"] == pytest.approx(1.0)  # the same order image by image
    # pooled: visible joints 4/2 = 2 mm each, occluded 3/1 = 3 mm
    assert r["occluded_vs_visible"] == pytest.approx(1.5)
    # frame 1 adds 1 mm to every camera: the halves order the cameras the same way
    assert r["cam_split_half_global"] == pytest.approx(1.0)


def test_no_visible_joints_gives_no_ratio():
    df = _rows().assign(vis_sum=0.0, vis_n=0)
    assert math.isnan(summarize(df)["occluded_vs_visible"])


def test_probe_recovers_an_error_the_features_carry():
    import torch

    from benchmarks.ambiguity import fit_probe

    g = torch.Generator().manual_seed(1)
    x = torch.randn(600, 8, generator=g)
    y = 2.0 * x[:, 3] - x[:, 5]  # the "error" is a function of the features
    pred = fit_probe(x[:500], y[:500], x[500:], steps=600)
    df = pd.DataFrame({"p": pred.numpy(), "y": y[500:].numpy()})
    assert df.corr("spearman").iloc[0, 1] > 0.95
    # features that carry nothing give nothing
    noise = torch.randn(500, generator=g)
    pred = fit_probe(x[:500], noise, x[500:], steps=600)
    assert abs(pd.DataFrame({"p": pred.numpy(), "y": y[500:].numpy()}).corr("spearman").iloc[0, 1]) < 0.3


def test_tables_are_replaced_between_their_markers_only():
    from benchmarks.ambiguity import _replace_between

    text = "intro\n<!-- a -->\nold\n<!-- b -->\nprose\n"
    assert _replace_between(text, "<!-- a -->", "<!-- b -->", "new") == "intro\n<!-- a -->\nnew\n<!-- b -->\nprose\n"
    assert _replace_between("intro\n", "<!-- a -->", "<!-- b -->", "new") == "intro\n\n<!-- a -->\nnew\n<!-- b -->\n"
