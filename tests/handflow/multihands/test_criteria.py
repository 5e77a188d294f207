"""The four plausibility criteria: each accepts the ground truth and rejects a proposal built by hand
to violate it; the batched check equals one-by-one checks and skipping the depth test changes nothing."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from handflow.data.raster import depth_at_pixels, joint_pixels
from handflow.multihands.criteria import CRITERIA
from handflow.multihands.walk import _ray_frame, perturb


def _verdict(plaus, tg, pose, shape, trans):
    return {k: bool(v[0]) for k, v in plaus.check(pose, shape, trans, tg, render_all=True).items()}


def test_ground_truth_passes_every_criterion(tiny_test, plaus, case):
    for i in range(0, len(tiny_test), 7):  # 16 images across all seven sequences and eight cameras
        _, tg, gt = case(i)
        v = _verdict(plaus, tg, *gt)
        assert all(v.values()), (i, v)


def test_reprojection_rejects_a_hand_moved_sideways(plaus, case):
    g, tg, (pose, shape, trans) = case(0)
    assert bool(tg.visible[:21].any())  # the right hand has visible joints to move
    # 40 mm along the camera's x axis (R's first row, in the world frame): f * 40 / z pixels, ~10+ here
    moved = trans.clone()
    moved[0, 0] += tg.R[0] * 0.040
    z = float(g["cam"][20, 2])
    assert float(tg.K[0, 0]) * 40.0 / z > 3 * plaus.cfg.reproj_px
    v = _verdict(plaus, tg, pose, shape, moved)
    assert not v["reprojection"] and not v["plausible"]
    # a 0.1 mm shift stays well inside the pixel threshold
    nudged = trans.clone()
    nudged[0, 0] += tg.R[0] * 0.0001
    assert _verdict(plaus, tg, pose, shape, nudged)["reprojection"]


def _occluded_by_other_hand(plaus, tg, gt):
    """``(42,)`` bool: ground-truth occluded joints whose pixel shows the other hand's mesh in front."""
    pose, shape, trans = gt
    joints = plaus.keypoints_mm(pose, shape, trans)
    verts = plaus.hand_model.mesh_from_mano(pose, shape, trans).reshape(1, -1, 3)
    vc = (verts - tg.campos_mm) @ tg.R.T
    jc = (joints - tg.campos_mm) @ tg.R.T
    px, py, _ = joint_pixels(jc, tg.K[None], tg.image_hw)
    _, label = depth_at_pixels(vc, plaus.mesh_faces, tg.K, tg.image_hw, px, py, plaus.face_label)
    return tg.occluded & (label[0] >= 0) & (label[0] != plaus.joint_hand)


@pytest.fixture(scope="module")
def hidden(plaus, case):
    """``(i, h)``: the image (of the first four sequences) where most joints of hand ``h`` hide behind
    the other hand in the ground truth."""
    best = None
    for i in range(32):
        _, tg, gt = case(i)
        n = _occluded_by_other_hand(plaus, tg, gt).reshape(2, 21).sum(1)
        for h in range(2):
            if best is None or int(n[h]) > best[0]:
                best = (int(n[h]), i, h)
    assert best[0] >= 5
    return best[1:]


def test_occlusion_rejects_moving_the_occluding_hand_away(plaus, case, hidden):
    i, h = hidden
    _, tg, (pose, shape, trans) = case(i)
    assert _verdict(plaus, tg, pose, shape, trans)["occlusion"]
    away = trans.clone()
    away[0, 1 - h] += tg.R[0] * 1.0  # the occluder 1 m to the side: out of the picture
    v = _verdict(plaus, tg, pose, shape, away)
    assert not v["occlusion"] and not v["plausible"]
    # the joints now seen are among those the ground truth occludes, on the hand that was hidden
    joints = plaus.keypoints_mm(pose, shape, away)
    seen = plaus.seen(pose, shape, away, joints, tg, tg.occluded)[0]
    assert bool(seen[21 * h: 21 * h + 21].any()) and not bool((seen & ~tg.occluded).any())


def test_occlusion_rejects_pushing_the_hidden_hand_in_front(plaus, case, hidden):
    i, h = hidden
    _, tg, (pose, shape, trans) = case(i)
    wrist = plaus.keypoints_mm(pose, shape, trans)[0, 20 + 21 * h]
    ray = (wrist - tg.campos_mm) / (wrist - tg.campos_mm).norm()
    front = trans.clone()
    front[0, h] -= ray * 0.150  # 150 mm towards the camera along the ray through its wrist
    v = _verdict(plaus, tg, pose, shape, front)
    assert not v["occlusion"] and not v["plausible"]


def test_prior_rejects_ten_sigma_along_a_pca_component(plaus, case):
    _, tg, (pose, shape, trans) = case(0)
    prior = plaus.prior
    for h in range(2):
        c = prior.coefficients(pose[..., 3:])  # (1,2,45)
        z0 = (c[0, h, 0] - prior.mean[h, 0]) / prior.std[h, 0]
        c[0, h, 0] += (1.0 if z0 >= 0 else -1.0) * 10.0 * prior.std[h, 0]  # 10 σ further from the mean
        extreme = pose.clone()
        extreme[..., 3:] = prior.finger_pose(c)
        ll_gt = prior.log_likelihood(pose[..., 3:])[0, h]
        ll = prior.log_likelihood(extreme[..., 3:])[0, h]
        assert float(ll_gt - ll) >= 50.0 - 1e-2  # closed form: (|z0|+10)²/2 - z0²/2 >= 50
        assert float(ll) < float(tg.prior_floor[h])
        v = _verdict(plaus, tg, extreme, shape, trans)
        assert not v["prior"] and not v["plausible"]


def test_collision_rejects_the_left_hand_on_the_right(plaus, case):
    _, tg, (pose, shape, trans) = case(0)
    joints = plaus.keypoints_mm(pose, shape, trans)[0]
    onto = trans.clone()
    onto[0, 1] += (joints[20] - joints[41]) / 1000.0  # left wrist onto the right wrist
    assert float(plaus.spheres.penetration_mm(plaus.keypoints_mm(pose, shape, onto))[0]) > tg.overlap_ceiling_mm + 5
    v = _verdict(plaus, tg, pose, shape, onto)
    assert not v["collision"] and not v["plausible"]


def _proposals(plaus, tg, gt, seed=0):
    """32 random-walk steps from the ground truth: 16 of the configured size (mostly passing the cheap
    criteria, some failing occlusion) and 16 four times larger (failing more, some the cheap ones)."""
    pose, shape, trans = gt
    frame = _ray_frame(tg, plaus.keypoints_mm(pose, shape, trans)[0, [20, 41]])
    big = dataclasses.replace(plaus.cfg, **{k: 4 * getattr(plaus.cfg, k) for k in (
        "step_finger_sigma", "step_global_rad", "step_depth_mm", "step_lateral_mm", "step_shape")})
    g = torch.Generator().manual_seed(seed)
    out = [perturb(plaus, pose.expand(16, 2, 48), shape.expand(16, 2, 10), trans.expand(16, 2, 3), frame, cfg, g)
           for cfg in (plaus.cfg, big)]
    return tuple(torch.cat(x) for x in zip(*out))


def test_batched_check_equals_one_by_one_and_render_all(plaus, case):
    _, tg, gt = case(18)  # hands in contact: small steps already collide now and then
    props = _proposals(plaus, tg, gt)
    batch = plaus.check(*props, tg)
    full = plaus.check(*props, tg, render_all=True)
    cheap = full["reprojection"] & full["prior"] & full["collision"]
    # the case exercises every path: plausible, rejected by the depth test, skipped by a cheap criterion
    assert int(full["plausible"].sum()) > 0 and int((cheap & ~full["occlusion"]).sum()) > 0 and not bool(cheap.all())
    assert torch.equal(batch["plausible"], full["plausible"])
    for k in ("reprojection", "prior", "collision"):
        assert torch.equal(batch[k], full[k])
    assert torch.equal(batch["occlusion"], full["occlusion"] & cheap)  # skipped proposals read False
    for p in range(len(props[0])):
        one = plaus.check(*(x[p: p + 1] for x in props), tg, render_all=True)
        for k in (*CRITERIA, "plausible"):
            assert bool(one[k][0]) == bool(full[k][p]), (p, k)
