"""benchmarks.ambiguity_crops's scorer on a dump whose spreads and errors are known."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.ambiguity_crops import table


def _dump(path):
    """2 sequences x 4 cameras x 2 frames, 3 crops. Camera k's crops scale the pose by 1 + 0.1 c k about
    the camera (crop c), its ground truth is the pose scaled by 1 + 0.05 k: spread and error both grow with k."""
    rng = np.random.default_rng(0)
    pose = rng.normal(0, 30, (42, 3)) + np.array([0, 0, 500])
    rows = {"modes": [], "gt": [], "sequence": [], "camera": []}
    for seq in ("Capture0/a", "Capture0/b"):
        for k in range(4):
            for _frame in range(2):
                rows["modes"].append([pose * (1 + 0.1 * c * k) for c in range(3)])
                rows["gt"].append(pose * (1 + 0.05 * k))
                rows["sequence"].append(seq)
                rows["camera"].append(str(k))
    n = len(rows["gt"])
    modes = np.asarray(rows["modes"], np.float32)
    visible = np.ones((n, 42), np.float32)
    visible[:, 5:10] = 0
    np.savez(path, modes=modes, gt=np.asarray(rows["gt"], np.float32), valid=np.ones((n, 42), np.float32),
             visible=visible, sequence=np.array(rows["sequence"]), camera=np.array(rows["camera"]),
             frame=np.zeros(n, int), crops=np.zeros((3, 3)), model="test")


def test_spread_growing_with_the_error_ranks_perfectly(tmp_path):
    _dump(tmp_path / "d.npz")
    rows = table(str(tmp_path / "d.npz"), {"all": [0, 1, 2]})
    assert [r["spread"] for r in rows] == ["rr", "global"]
    for r in rows:
        # regrets 0, 1, 2, 3 (x const): best-ranked 0, worst-ranked 3 / mean 1.5
        assert r["rho_global"] == pytest.approx(1.0) and r["rho_rr"] == pytest.approx(1.0)
        assert r["best_global"] == pytest.approx(0.0, abs=1e-6) and r["worst_global"] == pytest.approx(2.0, rel=1e-4)
        assert r["best_rr"] == pytest.approx(0.0, abs=1e-6) and r["worst_rr"] == pytest.approx(2.0, rel=1e-4)


def test_occluded_over_visible_articulation_spread(tmp_path):
    """Wrists still, the other visible joints moved by 2 mm steps between the crops, occluded ones by 5 mm:
    5 / 2 — the two wrists (never moving after the alignment) are left out, visible or not."""
    from handflow.metrics import LEFT_WRIST, RIGHT_WRIST

    _dump(tmp_path / "d.npz")
    d = dict(np.load(tmp_path / "d.npz"))
    step = np.zeros((42, 1), np.float32)
    step[d["visible"][0] > 0] = 2.0
    step[d["visible"][0] == 0] = 5.0
    step[[RIGHT_WRIST, LEFT_WRIST]] = 0.0
    offsets = np.arange(3, dtype=np.float32)[:, None, None] * step * np.array([1.0, 0.0, 0.0], np.float32)
    d["modes"] = np.broadcast_to(d["gt"][:, None], d["modes"].shape) + offsets
    np.savez(tmp_path / "e.npz", **d)
    r = table(str(tmp_path / "e.npz"), {"all": [0, 1, 2]})[0]
    assert r["occluded_vs_visible"] == pytest.approx(5 / 2, rel=1e-5)
    d["visible"][:, [RIGHT_WRIST, LEFT_WRIST]] = 0  # as a depth test labels most wrists: still left out
    assert table(d, {"all": [0, 1, 2]})[0]["occluded_vs_visible"] == pytest.approx(5 / 2, rel=1e-5)


def test_pooled_heads_spread_across_dumps_and_keep_the_first_heads_error(tmp_path):
    """Head A predicts the same pose on every crop (no spread of its own); head B's third crop scales it by
    1 + 0.2 k on camera k. Pooled, A's plain crop and B's third crop spread more with k, and the error (A's
    plain crop against the pose scaled by 1 + 0.05 k) grows with k too: a perfect ranking."""
    from benchmarks.ambiguity_crops import pooled

    _dump(tmp_path / "b.npz")
    a = dict(np.load(tmp_path / "b.npz"))
    a["modes"] = np.broadcast_to(a["modes"][:, :1], a["modes"].shape).copy()  # every crop = the pose
    np.savez(tmp_path / "a.npz", **a)
    d = pooled(str(tmp_path / "a.npz"), str(tmp_path / "b.npz"))
    assert d["modes"].shape[1] == 6
    np.testing.assert_array_equal(d["modes"][:, 0], a["modes"][:, 0])
    both = table(d, {"A0 + B2": [0, 5]})[0]
    assert both["rho_global"] == pytest.approx(1.0) and both["rho_rr"] == pytest.approx(1.0)


def test_pooled_refuses_dumps_of_different_images(tmp_path):
    from benchmarks.ambiguity_crops import pooled

    _dump(tmp_path / "a.npz")
    b = dict(np.load(tmp_path / "a.npz"))
    b["camera"] = b["camera"][::-1].copy()
    np.savez(tmp_path / "b.npz", **b)
    with pytest.raises(SystemExit, match="camera differs"):
        pooled(str(tmp_path / "a.npz"), str(tmp_path / "b.npz"))


def test_occluded_over_visible_error_of_the_plain_crop(tmp_path):
    """The plain crop's mode off the ground truth by 3 mm on the occluded joints and 1 mm on the visible ones
    but the wrists (exact, so 0 after the alignment, and left out): 3 / 1; the other crops do not count."""
    from handflow.metrics import LEFT_WRIST, RIGHT_WRIST

    _dump(tmp_path / "d.npz")
    d = dict(np.load(tmp_path / "d.npz"))
    off = np.where(d["visible"][0] > 0, 1.0, 3.0).astype(np.float32)
    off[[RIGHT_WRIST, LEFT_WRIST]] = 0.0
    modes = np.broadcast_to(d["gt"][:, None], d["modes"].shape).copy()
    modes[:, 0, :, 1] += off
    modes[:, 1:, :, 2] += 50.0 * np.arange(42, dtype=np.float32)  # far off, but not the plain crop
    d["modes"] = modes
    r = table(d, {"all": [0, 1, 2]})[0]
    assert r["error_occluded_vs_visible"] == pytest.approx(3.0, rel=1e-5)


def test_heads_on_one_encoder_share_its_key():
    """dump encodes each crop once for heads whose encoders are equal: a changed flow keeps the key, a changed
    encoder weight or BatchNorm statistic does not."""
    import torch

    from handflow.hand.model import HandModel
    from handflow.model.config import ModelConfig
    from handflow.model.registry import build_model, encoder_hash
    from handflow.synth.mano import default_mano_dir

    hm = HandModel.from_dir(default_mano_dir())
    cfg = ModelConfig(backbone_width=8, crop_px=32, context_dim=16, flow_steps=2, flow_hidden=32, flow_blocks=1)
    torch.manual_seed(0)
    a = build_model(cfg, hm)
    b = build_model(cfg, hm)
    b.load_state_dict(a.state_dict())
    with torch.no_grad():
        next(b.flow.parameters()).add_(1.0)
    assert encoder_hash(a).hexdigest() == encoder_hash(b).hexdigest()
    bn = next(m for m in b.encoder.modules() if isinstance(m, torch.nn.BatchNorm2d))
    bn.running_mean += 0.5
    assert encoder_hash(a).hexdigest() != encoder_hash(b).hexdigest()


def test_occluded_over_visible_joint_by_joint_leaves_out_the_joints_mix(tmp_path):
    """Joint 0 always errs 10 mm, joint 1 always 1 mm, hidden or not; joint 0 is hidden in 3 of 4 cameras and
    joint 1 shown everywhere but one: pooled, the hidden joints err more (their mix is mostly joint 0), joint
    by joint they err exactly as much (1.0). The other joints, all shown, err 1 mm."""
    _dump(tmp_path / "d.npz")
    d = dict(np.load(tmp_path / "d.npz"))
    n = len(d["camera"])
    cam = d["camera"].astype(int)
    d["visible"] = np.ones((n, 42), np.float32)
    d["visible"][:, 0] = (cam == 0)
    d["visible"][:, 1] = (cam != 3)
    off = np.ones(42, np.float32)
    off[0] = 10.0
    off[[20, 41]] = 0.0
    modes = np.broadcast_to(d["gt"][:, None], d["modes"].shape).copy()
    modes[:, 0, :, 1] += off
    d["modes"] = modes
    r = table(d, {"all": [0, 1, 2]})[0]
    assert r["error_occluded_vs_visible_per_joint"] == pytest.approx(1.0, rel=1e-5)
    # 16 images, 4 per camera; pooled, hidden: 12 x joint 0 (10 mm) + 4 x joint 1 (1 mm); shown: 4 x joint 0,
    # 12 x joint 1 and 16 x the 38 other joints but the wrists (1 mm)
    pooled = (12 * 10 + 4 * 1) / 16 / ((4 * 10 + 12 * 1 + 16 * 38) / (4 + 12 + 16 * 38))
    assert r["error_occluded_vs_visible"] == pytest.approx(pooled, rel=1e-5)
