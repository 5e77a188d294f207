"""The random walk of one image: ground truth first, only plausible members, reproducible per generator."""

from __future__ import annotations

import dataclasses

import torch

from handflow.multihands.walk import walk_image


def _walk(plaus, tg, gt, seed, cfg=None):
    cfg = cfg or plaus.cfg
    g = {k: v[0] for k, v in zip(("pose", "shape", "trans"), gt)}
    return walk_image(plaus, g, tg, cfg, torch.Generator().manual_seed(seed))


def test_walk_keeps_the_ground_truth_first_and_only_plausible_members(plaus, case):
    _, tg, gt = case(18)
    ann, stats = _walk(plaus, tg, gt, 0)
    K = len(ann["pose"])
    assert 2 <= K <= plaus.cfg.per_image
    assert ann["pose"].shape == (K, 2, 48) and ann["shape"].shape == (K, 2, 10) and ann["trans"].shape == (K, 2, 3)
    assert all(v.dtype == torch.float32 for v in ann.values())
    for k, v in zip(("pose", "shape", "trans"), gt):
        assert torch.equal(ann[k][0], v[0])
        assert not bool((ann[k][1:] == v).flatten(1).all(1).any())  # every walked member moved
    flat = torch.cat([ann[k].flatten(1) for k in ("pose", "shape", "trans")], 1)
    assert len(torch.unique(flat, dim=0)) == K  # no member twice
    v = plaus.check(ann["pose"], ann["shape"], ann["trans"], tg, render_all=True)
    assert bool(v["plausible"].all())
    assert stats.proposals == plaus.cfg.iterations * plaus.cfg.proposals
    assert 0 < stats.accepted < stats.proposals
    assert stats.proposals - stats.accepted <= sum(stats.rejected_by.values())


def test_walk_is_reproducible_per_generator_seed(plaus, case):
    _, tg, gt = case(9)
    a, sa = _walk(plaus, tg, gt, 5)
    b, sb = _walk(plaus, tg, gt, 5)
    c, _ = _walk(plaus, tg, gt, 6)
    assert all(torch.equal(a[k], b[k]) for k in a) and sa == sb
    assert len(c["pose"]) > 1 and not (len(a["pose"]) == len(c["pose"]) and torch.equal(a["pose"], c["pose"]))


def test_no_walk_returns_the_ground_truth_alone(plaus, case):
    _, tg, gt = case(9)
    for cfg in (dataclasses.replace(plaus.cfg, per_image=1), dataclasses.replace(plaus.cfg, iterations=0)):
        ann, stats = _walk(plaus, tg, gt, 0, cfg)
        assert len(ann["pose"]) == 1 and torch.equal(ann["trans"][0], gt[2][0]) and stats.proposals == 0
