"""Held-out evaluation: keys, units, and the constant predictor is computed on the same images."""

from __future__ import annotations

import math

from handflow.data.preload import preload_split
from handflow.evaluate import evaluate_split
from handflow.hand.model import HandModel
from handflow.model.registry import load_model


def test_evaluate_split_on_tiny_test(tiny_data_root, tiny_model):
    hm = HandModel.from_dir()
    model, _ = load_model(tiny_model, hm)
    data = preload_split(tiny_data_root, "test", model.cfg.crop_px, hm)
    res = evaluate_split(model, data, n_samples=4)
    assert res["images"] == len(data["image"]) and res["samples_per_image"] == 4
    for al in ("global", "rrr", "rr"):
        assert math.isfinite(res[f"mode_mpjpe_{al}_mm"]) and res[f"constant_mpjpe_{al}_mm"] > 0
    # aligning can only remove error components that Global keeps
    assert res["constant_mpjpe_rr_mm"] <= res["constant_mpjpe_global_mm"] + 1e-6
    assert res["sample_std_mm"] > 0
