"""A tiny `rank` + report run gives the numbers stored before the engine/report restructuring.

`data/rank_golden.json` was captured from the code before the move of the engine into typed
records, the report into a renderer, and the one triangulation computation: per-view ambiguity
and MPJPE, regret tables, drop list, the kept-vs-full-vs-random triangulation summary, the
triangulation-vs-cameras-kept curve and the overlay samples. The model is an untrained HandFlowNet
with seeded weights (not the trained tiny model), so the stored values do not move when the
training recipe does; the tiny capture's annotation digest is stored beside them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

GOLDEN = Path(__file__).parent / "data" / "rank_golden.json"
TINY_MODEL = dict(backbone_depth=18, backbone_width=8, crop_px=32, context_dim=16, flow_steps=2, flow_hidden=32,
                  flow_blocks=1)


@pytest.fixture(scope="module")
def seeded_model(tmp_path_factory) -> Path:
    from handflow.checkpoint import save_checkpoint
    from handflow.config import to_dict
    from handflow.hand.model import HandModel
    from handflow.model.config import ModelConfig
    from handflow.model.registry import build_model

    cfg = ModelConfig(**TINY_MODEL)
    torch.manual_seed(0)
    model = build_model(cfg, HandModel.from_dir(None))
    path = tmp_path_factory.mktemp("seeded") / "model.pt"
    save_checkpoint(path, {"kind": cfg.kind, "config": {"model": to_dict(cfg)}, "state_dict": model.state_dict()})
    return path


def _close(a, b, where):
    if isinstance(b, dict):
        for k in b:
            _close(a[k], b[k], f"{where}.{k}")
    elif isinstance(b, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _close(x, y, f"{where}[{i}]")
    elif isinstance(b, float) or (b is None and isinstance(a, float)):
        if b is None or not math.isfinite(b):
            assert a is None or not math.isfinite(a), (where, a, b)
        else:
            assert a == pytest.approx(b, rel=1e-5, abs=1e-6), where
    else:
        assert a == b, (where, a, b)


def _stats(a) -> dict:
    a = np.asarray(a, float)
    return {"shape": list(a.shape), "mean": float(np.nanmean(a)), "std": float(np.nanstd(a)),
            "first": a.reshape(-1)[:6].tolist()}


def test_rank_and_report_numbers_match_the_stored_run(tiny_data_root, seeded_model):
    from handflow.data.interhand import annotation_digest
    from viewselect.engine import RankConfig
    from viewselect.rank import RankRequest, run_rank

    golden = json.loads(GOLDEN.read_text())
    assert annotation_digest(tiny_data_root, "test") == golden["annotation_digest"], (
        "the tiny capture changed (configs/synth/tiny.toml or the generator): the stored values no longer "
        "apply; recapture them with the code of the commit that changed the data")
    out = run_rank(RankRequest(sequence="Capture0-1", data_root=str(tiny_data_root), model=str(seeded_model),
                               keep=3, rank=RankConfig(samples=8, frames=2), overlay_samples=6,
                               triangulation_curve=True))
    assert out.provenance["model_digest"] == golden["model_digest"]
    as_json = lambda df: json.loads(df.to_json(orient="records"))  # noqa: E731
    _close(as_json(out.views), golden["views"], "views")
    _close(as_json(out.result.sequences), golden["sequences"], "sequences")
    _close(as_json(out.result.summary), golden["summary"], "summary")
    assert list(out.result.drop_list) == golden["drop_list"]
    _close({k: v for k, v in out.triangulation.items() if k != "per_sequence"}, golden["triangulation"],
           "triangulation")
    _close(as_json(out.triangulation_curve), golden["triangulation_curve"], "triangulation_curve")
    panels = []
    for ov in out.overlays:
        for v in ov.views:
            title = f"{ov.sequence} (frame {ov.frame})"
            panels.append({"title": title, "samples_px": _stats(v.samples_px), "mode_px": _stats(v.mode_px)})
            panels.append({"title": title, "samples_world": _stats(v.samples_world),
                           "to_camera": np.asarray(v.to_camera).tolist()})
    stored = [{k: v for k, v in p.items() if k != "label"} for p in golden["overlays"]]
    _close(panels, stored, "overlays")
    assert pd.Series([v.role for ov in out.overlays for v in ov.views]).tolist() == \
        [p["label"].split(":")[0] for p in golden["overlays"] if "samples_px" in p]
