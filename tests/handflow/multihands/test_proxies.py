"""Bone-sphere proxies: radii from the rest mesh, centres on the bones, penetration sign and value."""

from __future__ import annotations

import torch

from handflow.multihands.proxies import BONES, BoneSpheres


def test_penetration_closed_form_on_point_hands():
    # Every joint of the right hand at the origin, of the left hand at (d,0,0): all spheres of a hand
    # share one centre, so the deepest overlap is r_right + r_left - d.
    spheres = BoneSpheres(torch.full((2, 20), 5.0), per_bone=2)
    joints = torch.zeros(3, 42, 3)
    d = torch.tensor([4.0, 10.0, 30.0])
    joints[:, 21:, 0] = d[:, None]
    assert torch.allclose(spheres.penetration_mm(joints), 10.0 - d)


def test_far_apart_negative_coincident_positive(hand_model, plaus, case):
    spheres = BoneSpheres.from_hand_model(hand_model, per_bone=3)
    assert spheres.sigma_mm.shape == (2, 20) and bool(torch.all(spheres.sigma_mm > 0.5))
    assert bool(torch.all(spheres.sigma_mm < 25.0))  # a finger or palm cross-section, not a hand
    _, _, (pose, shape, trans) = case(0)
    far = trans.clone()
    far[0, 1, 0] += 1.0  # the left hand one metre away along world x
    joints = plaus.keypoints_mm(torch.cat([pose, pose]), torch.cat([shape, shape]), torch.cat([trans, far]))
    same = joints.clone()
    same[:, 21:] = same[:, :21]  # the left hand's skeleton exactly on the right's
    pen = spheres.penetration_mm(torch.cat([joints[1:], same[:1]]))
    assert pen.shape == (2,)
    assert float(pen[0]) < -500.0
    r = spheres.radii()
    assert float(pen[1]) >= float((r[0] + r[1]).max()) - 1e-4  # matching spheres coincide: d = 0


def test_centres_lie_on_the_bones_and_radii_match():
    spheres = BoneSpheres(torch.arange(40, dtype=torch.float32).reshape(2, 20) + 1, per_bone=4)
    joints = torch.randn(5, 42, 3, generator=torch.Generator().manual_seed(0)) * 50
    c = spheres.centers(joints)
    assert c.shape == (5, 2, 80, 3) and spheres.radii().shape == (2, 80)
    kp = joints.reshape(5, 2, 21, 3)
    for b, (child, parent) in enumerate(BONES.tolist()):
        for k, f in enumerate([0.125, 0.375, 0.625, 0.875]):
            expect = kp[:, :, parent] + f * (kp[:, :, child] - kp[:, :, parent])
            assert torch.allclose(c[:, :, 4 * b + k], expect, atol=1e-4)
            assert torch.equal(spheres.radii()[:, 4 * b + k], spheres.sigma_mm[:, b])
