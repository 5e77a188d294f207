"""The per-camera numbers of `rank`, recomputed outside the engine.

For every camera of one sequence of the tiny capture, the model is run here directly
(``HandFlowNet.predict`` on the view's crops, with the view's documented noise, and on each test-time
re-crop of them), its modes and samples are moved to world coordinates here with the camera JSON's
``campos``/``camrot``, and scored with ``handflow.metrics``. The engine's ambiguity (the modes' spread over
the crops, after each alignment), flow spread, MPJPE (Global / RRR / RR), regret and visible fraction
must equal those numbers: a run that compares camera-frame predictions with world ground truth, scores
the wrong samples or miscounts visible joints fails here, not just a run that disagrees with itself.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch

from handflow.data.index import annotation_path
from handflow.data.interhand import InterHandDataset
from handflow.geometry.recrop import TEST_TIME_CROPS, recrop
from handflow.hand.model import HandModel
from handflow.synth.mano import default_mano_dir
from handflow.metrics import mpjpe, sample_std
from handflow.model.registry import load_model
from viewselect.engine.scoring import RankConfig
from viewselect.ranking.pipeline import RankRequest, run_rank

SEQ = "0002_interlock_fingers"
SAMPLES, SEED = 6, 3


def _view_noise(seed: int, capture: int, seq: str, frames: list[int], samples: int) -> torch.Tensor:
    """The base noise of one view as the engine documents it for the default ``common-normal``: per image,
    ``standard_normal((samples, 218))`` float32 from ``numpy.random.default_rng`` seeded by
    sha256("seed|capture|sequence|*|frame") (first 8 bytes, little endian, 63 bits): the same for every
    camera of a frame."""
    out = []
    for f in frames:
        blob = f"{seed}|{capture}|{seq}|*|{f}".encode()
        rng = np.random.default_rng(int.from_bytes(hashlib.sha256(blob).digest()[:8], "little") & ((1 << 63) - 1))
        out.append(torch.from_numpy(rng.standard_normal((samples, 218), dtype=np.float32)))
    return torch.stack(out)


def _to_world(joints_cam: torch.Tensor, camrot, campos) -> torch.Tensor:
    """``X_world = R^T X_cam + campos`` (InterHand: ``X_cam = R (X_world - campos)``), any leading axes."""
    R = torch.tensor(camrot, dtype=torch.float64)
    c = torch.tensor(campos, dtype=torch.float64)
    return torch.einsum("ji,...j->...i", R, joints_cam.double()) + c


@pytest.fixture(scope="module")
def expected(tiny_data_root, tiny_model):
    """Per camera of Capture0/SEQ: the numbers computed here from the model's own output."""
    model, _ = load_model(tiny_model, HandModel.from_dir(default_mano_dir()))
    ds = InterHandDataset(tiny_data_root, "test", crop_px=model.cfg.crop_px)
    rig = json.loads(annotation_path(tiny_data_root, "test", "camera").read_text())["0"]
    out = {}
    for cam in ds.camera_ids(0, SEQ):
        view = ds.load_view(0, SEQ, cam)
        z = _view_noise(SEED, 0, SEQ, [int(f) for f in view["frame"]], SAMPLES)
        with torch.no_grad():
            pred = model.predict(view["image"], view["K_crop"], n_samples=SAMPLES, z=z)
            modes = torch.stack([model.predict(*recrop(view["image"], view["K_crop"], j), n_samples=2)["mode_joints"]
                                 for j in TEST_TIME_CROPS], dim=1)  # (F, crops, 42, 3), crop 0 = the crop itself
        mode_w = _to_world(pred["mode_joints"], rig["camrot"][cam], rig["campos"][cam])
        samples_w = _to_world(pred["samples_joints"], rig["camrot"][cam], rig["campos"][cam])
        modes_w = _to_world(modes, rig["camrot"][cam], rig["campos"][cam])
        assert torch.allclose(modes_w[:, 0], mode_w, atol=1e-3)
        gt, valid = view["joints_world_mm"].double(), view["joint_valid"] > 0
        visible = (view["joint_visible"] > 0) & valid
        out[cam] = {
            # the ambiguity: the modes' spread over the crops after the RR alignment; beside it the others
            "ambiguity_mm": sample_std(modes_w, "rr").mean().item(),
            **{f"ambiguity_{a}_mm": sample_std(modes_w, a).mean().item() for a in ("global", "rrr")},
            "flow_spread_mm": sample_std(samples_w).mean().item(),
            **{f"mpjpe_{a}_mm": mpjpe(mode_w, gt, valid, a).mean().item() for a in ("global", "rrr", "rr")},
            "visible_fraction": (visible.sum() / valid.sum()).item(),
        }
    for a in ("global", "rrr", "rr"):
        best = min(v[f"mpjpe_{a}_mm"] for v in out.values())
        for v in out.values():
            v[f"regret_{a}_mm"] = v[f"mpjpe_{a}_mm"] - best
    return out


def test_rank_numbers_equal_metrics_on_the_model_output(tiny_data_root, tiny_model, expected):
    res = run_rank(RankRequest(sequence=f"Capture0/{SEQ}", data_root=str(tiny_data_root), model=str(tiny_model),
                               engine=RankConfig(samples=SAMPLES, seed=SEED))).result
    rows = res.sequences.set_index("camera")
    assert sorted(rows.index) == sorted(expected) and len(expected) == 8
    # the views differ (a check that compares a constant with itself would pass on any of these)
    assert len({round(v["mpjpe_global_mm"], 3) for v in expected.values()}) > 1
    for cam, want in expected.items():
        for key, value in want.items():
            assert rows.loc[cam, key] == pytest.approx(value, rel=1e-4, abs=1e-3), (cam, key)
    # one sequence: the camera table holds the same numbers
    cams = res.cameras.set_index("camera")
    for cam, want in expected.items():
        for key in ("ambiguity_mm", "ambiguity_global_mm", "flow_spread_mm", "mpjpe_global_mm", "regret_global_mm",
                    "visible_fraction"):
            assert cams.loc[cam, key] == pytest.approx(want[key], rel=1e-4, abs=1e-3), (cam, key)
