"""Held-out evaluation: keys, units, and the constant predictor is computed on the same images."""

from __future__ import annotations

import math

import pytest
import torch

from handflow.preload import preload_split
from handflow.evaluate import evaluate_split
from handflow.hand.model import HandModel
from handflow.synth.mano import default_mano_dir
from handflow.metrics import mpjpe
from handflow.model.registry import load_model


def test_evaluate_split_on_tiny_test(tiny_data_root, tiny_model):
    hm = HandModel.from_dir(default_mano_dir())
    model, _ = load_model(tiny_model, hm)
    data = preload_split(tiny_data_root, "test", model.cfg.crop_px, hm)
    res = evaluate_split(model, data, n_samples=4)
    assert res["images"] == len(data["image"]) and res["samples_per_image"] == 4
    for al in ("global", "rrr", "rr"):
        assert math.isfinite(res[f"mode_mpjpe_{al}_mm"]) and res[f"constant_mpjpe_{al}_mm"] > 0
    # the constant predictor, lifted here with each image's crop camera, scored with handflow.metrics
    with torch.no_grad():
        const = model.lift(model.y_mean.expand(len(data["image"]), -1), data["K_crop"])
    for al in ("global", "rrr", "rr"):
        expect = mpjpe(const, data["joints_cam_mm"], data["joint_valid"] > 0, al).mean().item()
        assert res[f"constant_mpjpe_{al}_mm"] == pytest.approx(expect, rel=1e-5), al
    assert res["sample_std_mm"] > 0


def test_occluded_and_visible_spread_pool_the_right_joints(tiny_data_root, tiny_model):
    import torch

    from handflow.evaluate import predictions
    from handflow.metrics import joint_sample_std

    hm = HandModel.from_dir(default_mano_dir())
    model, _ = load_model(tiny_model, hm)
    data = preload_split(tiny_data_root, "test", model.cfg.crop_px, hm)
    res = evaluate_split(model, data, n_samples=4, batch=5)
    # the same pooled means recomputed in one pass over all images
    js = torch.cat([joint_sample_std(out["samples_joints"], "rr")
                    for _, _, _, out in predictions(model, data, 4, 5, 0)])
    valid, shown = data["joint_valid"].bool().clone(), data["joint_visible"].bool()
    valid[:, [20, 41]] = False  # the wrists: no articulation spread after the alignment, so not compared
    assert (valid & ~shown).any() and (valid & shown).any(), "the tiny capture has occluded and visible joints"
    assert res["sample_std_rr_occluded_mm"] == pytest.approx(float(js[valid & ~shown].mean()), rel=1e-5)
    assert res["sample_std_rr_visible_mm"] == pytest.approx(float(js[valid & shown].mean()), rel=1e-5)
    assert res["occluded_vs_visible_spread"] == pytest.approx(
        res["sample_std_rr_occluded_mm"] / res["sample_std_rr_visible_mm"])


def test_table1_rr_star_compares_the_hidden_joints_without_wrists(tiny_multihands_root, tiny_model):
    from handflow.evaluate import evaluate_annotations, predictions
    from handflow.metrics import articulation_masks, closest_farthest, mpjpe_occluded

    hm = HandModel.from_dir(default_mano_dir())
    model, _ = load_model(tiny_model, hm)
    data = preload_split(tiny_multihands_root, "test", model.cfg.crop_px, hm, annotations=5, max_frames=2)
    res = evaluate_annotations(model, data, n_samples=4, batch=5)
    mode = torch.cat([out["mode_joints"] for _, _, _, out in predictions(model, data, 4, 5, 0)])
    valid, visible = data["joint_valid"] > 0, data["joint_visible"] > 0
    occ = valid & ~visible
    occ[:, [20, 41]] = False  # a wrist's RR error is 0 by construction: not an occluded joint to score
    has = occ.any(-1)
    assert has.any() and (valid & ~visible)[:, [20, 41]].any(), "the tiny capture hides some wrists"
    lo, hi = closest_farthest(mode[has], data["ann_joints_cam_mm"][has], data["ann_mask"][has], "rr", occ[has])
    assert res["closest_rr_occluded_mm"] == pytest.approx(float(lo.mean()), rel=1e-5)
    assert res["farthest_rr_occluded_mm"] == pytest.approx(float(hi.mean()), rel=1e-5)
    assert res["mode_rr_occluded_mm"] == pytest.approx(
        float(mpjpe_occluded(mode, data["joints_cam_mm"], visible, valid).mean()), rel=1e-5)
    assert torch.equal(articulation_masks(visible, valid)[1], occ)
