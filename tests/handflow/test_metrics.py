"""Metrics on hand-made keypoints with known answers."""

import math

import pytest
import torch

from handflow.errors import HandflowError
from handflow.metrics import (
    align,
    articulation_masks,
    closest_farthest,
    mmd,
    mpjpe,
    mpjpe_occluded,
    sample_std,
)


def _rand_pose(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, 42, 3, generator=g, dtype=torch.float64) * 30.0 + 500.0


def _rotation(angle_rad):
    c, s = math.cos(angle_rad), math.sin(angle_rad)
    a = torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    b = torch.tensor([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]], dtype=torch.float64)
    return a @ b


def _move_hand(x, hand, delta):
    x = x.clone()
    sl = slice(0, 21) if hand == "right" else slice(21, 42)
    x[..., sl, :] += torch.as_tensor(delta, dtype=x.dtype)
    return x


# ---------------------------------------------------------------- alignment / MPJPE


def test_align_puts_wrists_at_origin():
    x = _rand_pose(4)
    rr = align(x, "rr")
    assert torch.all(rr[:, 20] == 0) and torch.all(rr[:, 41] == 0)
    rrr = align(x, "rrr")
    assert torch.all(rrr[:, 20] == 0)
    torch.testing.assert_close(rrr[:, 41], x[:, 41] - x[:, 20])
    assert align(x, "global") is x
    with pytest.raises(HandflowError, match="alignment"):
        align(x, "procrustes")


def test_mpjpe_known_value_and_valid_mask():
    gt = torch.zeros(42, 3, dtype=torch.float64)
    pred = gt.clone()
    pred[:21, 0] = 3.0  # right hand 3 mm off
    pred[21:, 1] = 4.0  # left hand 4 mm off
    assert mpjpe(pred, gt).item() == pytest.approx(3.5)
    valid = torch.zeros(42, dtype=torch.bool)
    valid[21:] = True
    assert mpjpe(pred, gt, valid=valid).item() == pytest.approx(4.0)
    # Each hand rigidly shifted: zero after its own root alignment.
    assert mpjpe(pred, gt, alignment="rr").item() == pytest.approx(0.0)
    # RRR: right hand aligned (0), left hand relative offset 5 mm.
    assert mpjpe(pred, gt, alignment="rrr").item() == pytest.approx(2.5)
    assert torch.isnan(mpjpe(pred, gt, valid=torch.zeros(42, dtype=torch.bool)))


def test_alignment_invariances():
    gt = _rand_pose(8, seed=1)
    pred = gt + torch.randn_like(gt)
    base = {a: mpjpe(pred, gt, alignment=a) for a in ("global", "rrr", "rr")}
    one_hand = _move_hand(pred, "left", [50.0, -20.0, 10.0])
    both = pred + torch.tensor([50.0, -20.0, 10.0], dtype=torch.float64)
    torch.testing.assert_close(mpjpe(one_hand, gt, alignment="rr"), base["rr"])
    assert torch.all(mpjpe(one_hand, gt, alignment="rrr") > base["rrr"] + 1)
    torch.testing.assert_close(mpjpe(both, gt, alignment="rrr"), base["rrr"])
    torch.testing.assert_close(mpjpe(both, gt, alignment="rr"), base["rr"])
    assert torch.all(mpjpe(both, gt, alignment="global") > base["global"] + 1)


def test_mpjpe_occluded_excludes_images_without_occlusion():
    # Hands away from the origin, each image's left hand (wrist included) rigidly shifted by 40 mm:
    # RR (each hand on its own wrist) removes the shift, Global would count it.
    gt = _rand_pose(3, seed=4)
    pred = _move_hand(gt, "left", [0.0, 40.0, 0.0])
    pred[:, 0, 0] += 10.0  # right joint 0 off by 10 mm in every image
    pred[:, 1, 0] += 2.0
    pred[:, 21, 2] += 6.0  # left joint 21 off by 6 mm on top of the hand's shift
    visible = torch.ones(3, 42, dtype=torch.bool)
    visible[0, 0] = False  # image 0: occluded joint 0 only -> 10
    visible[2, [0, 1, 21]] = False  # image 2: joints 0, 1, 21 -> (10 + 2 + 6) / 3; image 1: nothing occluded
    out = mpjpe_occluded(pred, gt, visible)
    torch.testing.assert_close(out, torch.tensor([10.0, 6.0], dtype=torch.float64))
    assert not torch.isnan(out).any()
    valid = torch.ones(3, 42, dtype=torch.bool)
    valid[0, 0] = False  # the only occluded joint of image 0 is not annotated -> image 0 dropped
    torch.testing.assert_close(mpjpe_occluded(pred, gt, visible, valid), torch.tensor([6.0], dtype=torch.float64))
    assert mpjpe_occluded(pred, gt, torch.ones(3, 42, dtype=torch.bool)).numel() == 0


def test_mpjpe_occluded_leaves_the_wrists_out():
    # After the RR alignment a wrist's error is 0, and the depth test calls most wrists occluded:
    # an occluded wrist must neither dilute RR* nor make an image count as having occlusion.
    gt = _rand_pose(2, seed=5)
    pred = gt.clone()
    pred[:, 0, 0] += 12.0  # right joint 0 off by 12 mm
    visible = torch.ones(2, 42, dtype=torch.bool)
    visible[0, [0, 20, 41]] = False  # image 0: joint 0 and both wrists hidden -> 12, not 12 / 3
    visible[1, [20, 41]] = False  # image 1: only the wrists hidden -> no occluded joint, excluded
    torch.testing.assert_close(mpjpe_occluded(pred, gt, visible), torch.tensor([12.0], dtype=torch.float64))


def test_articulation_masks_split_valid_joints_and_leave_the_wrists_out():
    visible = torch.zeros(2, 42, dtype=torch.bool)
    visible[:, :10] = True  # joints 0-9 shown; the rest, both wrists (20, 41) among them, hidden
    valid = torch.ones(2, 42, dtype=torch.bool)
    valid[1, [0, 30]] = False  # image 1: one shown and one hidden joint not annotated
    shown, hidden = articulation_masks(visible, valid)
    assert shown.shape == hidden.shape == (2, 42) and not (shown & hidden).any()
    assert shown.sum(-1).tolist() == [10, 9] and hidden.sum(-1).tolist() == [30, 29]
    assert not hidden[:, [20, 41]].any() and not shown[:, [20, 41]].any()
    visible[:, [20, 41]] = True  # a shown wrist is left out too
    assert articulation_masks(visible)[0].sum(-1).tolist() == [10, 10]
    with pytest.raises(HandflowError, match="visible"):
        articulation_masks(torch.ones(2, 21))


def test_closest_farthest():
    pred = torch.zeros(2, 42, 3, dtype=torch.float64)
    ann = torch.zeros(2, 3, 42, 3, dtype=torch.float64)
    ann[:, 0, :, 0] = 5.0
    ann[:, 1, :, 0] = 1.0
    ann[:, 2, :, 0] = 100.0  # padding slot for image 0
    mask = torch.tensor([[True, True, False], [True, True, True]])
    lo, hi = closest_farthest(pred, ann, mask)
    torch.testing.assert_close(lo, torch.tensor([1.0, 1.0], dtype=torch.float64))
    torch.testing.assert_close(hi, torch.tensor([5.0, 100.0], dtype=torch.float64))
    with pytest.raises(HandflowError, match="image 0"):
        closest_farthest(pred, ann, torch.tensor([[False] * 3, [True] * 3]))


def test_closest_farthest_uses_its_alignment():
    # Annotation 0: the prediction with the left hand moved 30 mm (RR 0, RRR 15, Global 15).
    # Annotation 1: the prediction moved rigidly by 12 mm (RR 0, RRR 0, Global 12).
    # Annotation 2: joint 0 off by 21 mm (every alignment: 21 / 42 = 0.5), wrists untouched.
    pred = _rand_pose(1, seed=5)
    ann = pred[:, None].repeat(1, 3, 1, 1)
    ann[:, 0] = _move_hand(ann[:, 0], "left", [30.0, 0.0, 0.0])
    ann[:, 1] += torch.tensor([0.0, 0.0, 12.0], dtype=torch.float64)
    ann[:, 2, 0, 1] += 21.0
    expect = {"global": (0.5, 15.0), "rrr": (0.0, 15.0), "rr": (0.0, 0.5)}
    for alignment, (closest, farthest) in expect.items():
        lo, hi = closest_farthest(pred, ann, alignment=alignment)
        assert lo.item() == pytest.approx(closest, abs=1e-9), alignment
        assert hi.item() == pytest.approx(farthest, abs=1e-9), alignment


# ---------------------------------------------------------------- MMD


def test_mmd_identical_sets_is_exactly_zero():
    x = _rand_pose(3, 20, seed=2)
    for a in ("global", "rrr", "rr"):
        assert torch.all(mmd(x, x.clone(), alignment=a) == 0)


def test_mmd_shifted_set_closed_form_one_kernel():
    # X = {p}, Y = {p + delta} with every joint shifted by |delta| = 25 mm:
    # MMD² = k(0) + k(0) − 2 k(25) = 2 − 2 exp(−25² / (2σ²)).
    x = _rand_pose(1, 1, seed=3)
    y = x + torch.tensor([15.0, 20.0, 0.0], dtype=torch.float64)
    sigma = 20.0
    expected = 2 - 2 * math.exp(-(25.0**2) / (2 * sigma**2))
    assert mmd(x, y, bandwidths_mm=[sigma]).item() == pytest.approx(expected, rel=1e-12)
    assert mmd(x, y, bandwidths_mm=[sigma], squared=False).item() == pytest.approx(math.sqrt(expected))
    # Two bandwidths: the average of the two closed forms.
    both = [2 - 2 * math.exp(-(25.0**2) / (2 * s**2)) for s in (10.0, 40.0)]
    assert mmd(x, y, bandwidths_mm=[10.0, 40.0]).item() == pytest.approx(sum(both) / 2, rel=1e-12)


def test_mmd_two_point_sets_closed_form():
    # X = {a, b} with the two poses 30 mm apart (rigid), Y = X shifted by 30 mm along the same axis
    # -> Y = {b, c}. Kernel values by distance: k(0)=1, k(30), k(60).
    # Kxx = Kyy = (2 + 2 k30)/4; Kxy = (k30 + k60 + 1 + k30)/4.
    sigma = 25.0
    k = lambda d: math.exp(-(d**2) / (2 * sigma**2))  # noqa: E731
    a = _rand_pose(1, seed=4)[0]
    step = torch.tensor([30.0, 0.0, 0.0], dtype=torch.float64)
    x = torch.stack([a, a + step])[None]
    y = torch.stack([a + step, a + 2 * step])[None]
    kxx = (2 + 2 * k(30)) / 4
    kxy = (1 + 2 * k(30) + k(60)) / 4
    assert mmd(x, y, bandwidths_mm=[sigma]).item() == pytest.approx(2 * kxx - 2 * kxy, rel=1e-12)


def test_mmd_symmetric_and_alignment_invariances():
    x = _rand_pose(2, 16, seed=5)
    y = _rand_pose(2, 12, seed=6)
    torch.testing.assert_close(mmd(x, y), mmd(y, x))
    # Moving one hand of every annotation: RR unchanged, RRR and Global change.
    y_moved = _move_hand(y, "left", [40.0, 0.0, 0.0])
    torch.testing.assert_close(mmd(x, y_moved, alignment="rr"), mmd(x, y, alignment="rr"))
    assert torch.all(mmd(x, y_moved, alignment="rrr") != mmd(x, y, alignment="rrr"))
    # Moving both hands together: RRR and RR unchanged, Global changes.
    y_both = y + torch.tensor([0.0, 40.0, 0.0], dtype=torch.float64)
    torch.testing.assert_close(mmd(x, y_both, alignment="rrr"), mmd(x, y, alignment="rrr"))
    assert torch.all(mmd(x, y_both, alignment="global") != mmd(x, y, alignment="global"))


def test_mmd_masks():
    x = _rand_pose(1, 4, seed=7)
    y = torch.cat([x, _rand_pose(1, 3, seed=8)], dim=1)  # 4 real + 3 padding slots
    mask = torch.tensor([[True] * 4 + [False] * 3])
    assert mmd(x, y, annotation_mask=mask).item() < 1e-12
    # Corrupting an invalid joint does not change the value.
    valid = torch.ones(1, 42, dtype=torch.bool)
    valid[0, 5] = False
    y2 = x.clone()
    y2[:, :, 5] += 1000.0
    assert mmd(x, y2, valid=valid).item() < 1e-12
    with pytest.raises(HandflowError, match="bandwidths"):
        mmd(x, x, bandwidths_mm=[0.0])


def test_mmd_float32_world_coordinates_accurate():
    x = _rand_pose(2, 10, seed=9) + 1500.0
    y = x + 1.0
    ref = mmd(x, y)
    got = mmd(x.float(), y.float())
    torch.testing.assert_close(got.double(), ref, atol=1e-6, rtol=1e-4)


# ---------------------------------------------------------------- sample std


def test_sample_std_known_value():
    # Two samples ±(3, 4, 0) mm around a mean: per joint sqrt(trace(cov)) with N−1 = 1:
    # var per coord = 2·c² -> trace = 2·(9 + 16) = 50 -> sqrt(50).
    base = _rand_pose(seed=10)
    d = torch.tensor([3.0, 4.0, 0.0], dtype=torch.float64)
    s = torch.stack([base + d, base - d])
    assert sample_std(s).item() == pytest.approx(math.sqrt(50.0))


def test_sample_std_same_in_world_and_camera_frames():
    world = _rand_pose(3, 25, seed=11)
    R = _rotation(0.7)
    campos = torch.tensor([300.0, -200.0, 900.0], dtype=torch.float64)
    cam = (world - campos) @ R.T  # X_cam = R (X - campos)
    torch.testing.assert_close(sample_std(cam), sample_std(world))
    assert sample_std(world).shape == (3,)
    with pytest.raises(HandflowError, match="2 samples"):
        sample_std(world[:, :1])


def test_mmd_chunked_equals_unchunked(monkeypatch):
    import handflow.metrics as m

    x, y = _rand_pose(5, 6, seed=12), _rand_pose(5, 7, seed=13)
    mask = torch.ones(5, 7, dtype=torch.bool)
    mask[2, 3:] = False
    full = mmd(x, y, annotation_mask=mask)
    monkeypatch.setattr(m, "_MMD_CHUNK", 2)
    torch.testing.assert_close(mmd(x, y, annotation_mask=mask), full, rtol=1e-12, atol=1e-15)


def test_joint_sample_std_known_answer_and_mean():
    from handflow.metrics import joint_sample_std

    s = torch.zeros(2, 42, 3)
    s[0, 0, 0], s[1, 0, 0] = 3.0, -3.0  # one joint at x = ±3 mm: unbiased var 18 mm², std 3·√2
    s[:, 30, 2] = torch.tensor([1.0, 5.0])  # another at z = 1 / 5: var 8, std 2·√2
    js = joint_sample_std(s, alignment="rr")  # wrists (20, 41) fixed at 0: RR changes nothing
    expect = torch.zeros(42)
    expect[0], expect[30] = 3 * 2**0.5, 2 * 2**0.5
    torch.testing.assert_close(js, expect)
    torch.testing.assert_close(sample_std(s, alignment="rr"), expect.mean())
