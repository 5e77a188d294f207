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
import pytest
import torch

GOLDEN = Path(__file__).parent / "data" / "rank_golden.json"
TINY_MODEL = dict(backbone_depth=18, backbone_width=8, crop_px=32, context_dim=16, flow_steps=2, flow_hidden=32,
                  flow_blocks=1)


def make_seeded_model(path: Path) -> Path:
    """An untrained HandFlowNet of the tiny architecture with weights from ``torch.manual_seed(0)``."""
    from handflow.checkpoint import save_checkpoint
    from handflow.config import to_dict
    from handflow.hand.model import HandModel
    from handflow.synth.mano import default_mano_dir
    from handflow.model.config import ModelConfig
    from handflow.model.registry import build_model

    cfg = ModelConfig(**TINY_MODEL)
    torch.manual_seed(0)
    model = build_model(cfg, HandModel.from_dir(default_mano_dir()))
    save_checkpoint(path, {"kind": cfg.kind, "config": {"model": to_dict(cfg)}, "state_dict": model.state_dict()})
    return path


@pytest.fixture(scope="module")
def seeded_model(tmp_path_factory) -> Path:
    return make_seeded_model(tmp_path_factory.mktemp("seeded") / "model.pt")


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


def outputs(data_root: Path, model_path: Path) -> dict:
    """The key outputs of the tiny run, in the layout of ``data/rank_golden.json``."""
    from handflow.data.index import annotation_digest
    from viewselect.engine import RankConfig
    from viewselect.rank_pipeline import RankRequest, run_rank

    out = run_rank(RankRequest(sequence="Capture0-1", data_root=str(data_root), model=str(model_path),
                               keep=3, engine=RankConfig(samples=8, frames=2), overlay_samples=6,
                               error_vs_cameras=True))
    as_json = lambda df: json.loads(df.to_json(orient="records"))  # noqa: E731
    # the stored triangulation curve (least ambiguous / coverage rule / full rig at K = 2, 4, ...) is
    # part of the richer error-vs-cameras table now (viewselect.subsets); its random draws are new
    err = out.error_vs_cameras.set_index(["strategy", "n_cameras"])["triangulation_error_mm"]
    n_cams = int(out.error_vs_cameras["n_cameras"].max())
    curve = [{"n_kept": k, "ambiguity_mm": float(err[("ambiguity", k)]), "coverage_mm": float(err[("coverage", k)]),
              "full_mm": float(err[("ambiguity", n_cams)])} for k in (2, 4, 8, 16, 32, 64) if k < n_cams]
    overlays = []
    for ov in out.overlays:
        title = f"{ov.sequence} (frame {ov.frame})"
        for v in ov.views:
            overlays.append({"title": title, "label": f"{v.role}: cam {v.camera}",
                             "samples_px": _stats(v.samples_px), "mode_px": _stats(v.mode_px)})
            overlays.append({"title": title, "label": f"cam {v.camera}", "samples_world": _stats(v.samples_world),
                             "to_camera": np.asarray(v.to_camera).tolist()})
    return {
        "annotation_digest": annotation_digest(data_root, "test"), "model_digest": out.provenance["model_digest"],
        "views": as_json(out.views), "summary": as_json(out.result.summary),
        "sequences": as_json(out.result.sequences), "drop_list": list(out.result.drop_list),
        "triangulation": {k: v for k, v in out.triangulation.items() if k != "per_sequence"},
        "triangulation_curve": curve, "overlays": overlays,
    }


def test_rank_and_report_numbers_match_the_stored_run(tiny_data_root, seeded_model):
    golden = json.loads(GOLDEN.read_text())
    got = outputs(tiny_data_root, seeded_model)
    assert got["annotation_digest"] == golden["annotation_digest"], (
        "the tiny capture changed (configs/synth/tiny.toml or the generator): the stored values no longer "
        "apply; after checking the change is meant, rewrite them: python tests/viewselect/test_golden_rank.py")
    assert got["model_digest"] == golden["model_digest"]
    for key in ("views", "sequences", "summary", "drop_list", "triangulation"):
        _close(got[key], golden[key], key)
    no_random = lambda rows: [{k: v for k, v in r.items() if k != "random_mm"} for r in rows]  # noqa: E731
    _close(got["triangulation_curve"], no_random(golden["triangulation_curve"]), "triangulation_curve")
    strip = lambda panels: [{k: v for k, v in p.items() if k != "label"} for p in panels]  # noqa: E731
    _close(strip(got["overlays"]), strip(golden["overlays"]), "overlays")
    roles = lambda panels: [p["label"].split(":")[0] for p in panels if "samples_px" in p]  # noqa: E731
    assert roles(got["overlays"]) == roles(golden["overlays"])


if __name__ == "__main__":  # rewrite the stored values (only when the tiny capture changes on purpose)
    import os
    import tempfile

    from handflow.synth.capture import load_synth_config, synthesize

    REPO = Path(__file__).resolve().parents[2]
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.update(VIEWSELECT_CACHE=str(Path(tmp) / "cache"), VIEWSELECT_PROGRESS="0")
        root = synthesize(load_synth_config(REPO / "configs" / "synth" / "tiny.toml"), Path(tmp) / "tiny")
        GOLDEN.write_text(json.dumps(outputs(root, make_seeded_model(Path(tmp) / "model.pt")), indent=1) + "\n")
    print(f"wrote {GOLDEN}")
