"""The perturbation random walk of MultiHands for one image (the criteria: ``criteria.py``).

Round 0 starts from the ground truth. Every round draws ``proposals`` parents at random from the current
population, perturbs each (finger pose in prior-σ units along the PCA directions, global orientation,
root translation mostly along the camera ray through each wrist — the direction a single image
constrains least — and shape, plus a larger rotation of every finger joint whose whole distal part is
occluded in the ground truth: the image says nothing about those, and small PCA steps that must keep
the visible fingers in place would barely move them), checks all four criteria and makes the accepted proposals the new
population, topped up with earlier members when fewer than needed were accepted. The result is the
ground truth followed by up to ``per_image - 1`` members of the final population.

All randomness comes from the image's own generator, so an image's annotations do not depend on which
other images were processed with it or in which order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from handflow.multihands.config import MultiHandsConfig
from handflow.multihands.criteria import CRITERIA, ImageTargets, Plausibility


@dataclass
class WalkStats:
    proposals: int = 0
    accepted: int = 0
    rejected_by: dict[str, int] = field(default_factory=lambda: {c: 0 for c in CRITERIA})

    def add(self, other: "WalkStats") -> None:
        self.proposals += other.proposals
        self.accepted += other.accepted
        for k, v in other.rejected_by.items():
            self.rejected_by[k] += v


def _ray_frame(tg: ImageTargets, wrists_mm: torch.Tensor) -> torch.Tensor:
    """Per hand an orthonormal frame ``(2,3,3)`` whose first row is the camera ray through the wrist."""
    ray = wrists_mm - tg.campos_mm
    ray = ray / ray.norm(dim=-1, keepdim=True)
    up = torch.where((ray[:, 2].abs() < 0.9)[:, None], torch.tensor([0.0, 0.0, 1.0]), torch.tensor([1.0, 0.0, 0.0]))
    e1 = torch.linalg.cross(ray, up)
    e1 = e1 / e1.norm(dim=-1, keepdim=True)
    e2 = torch.linalg.cross(ray, e1)
    return torch.stack([ray, e1, e2], dim=1)


# MANO finger chains (joint indices 1..15, then the fingertip as source index 16..20 of the keypoints),
# in the order of handflow.hand.model.INTERHAND_FROM_JOINTS_AND_TIPS.
def _distal_table() -> torch.Tensor:
    """``(15, 42)`` bool for the right hand: which InterHand keypoints each MANO finger joint (1..15) moves.

    MANO finger chains are joint indices then the fingertip (source index 16..20 of
    :data:`handflow.hand.model.INTERHAND_FROM_JOINTS_AND_TIPS`); a joint's rotation moves only what lies
    further along its finger.
    """
    from handflow.hand.model import INTERHAND_FROM_JOINTS_AND_TIPS

    chains = ((1, 2, 3, 17), (4, 5, 6, 18), (7, 8, 9, 20), (10, 11, 12, 19), (13, 14, 15, 16))
    keypoint_of = {src: k for k, src in enumerate(INTERHAND_FROM_JOINTS_AND_TIPS)}
    table = torch.zeros(15, 42, dtype=torch.bool)
    for chain in chains:
        for i, j in enumerate(chain[:3]):
            table[j - 1, [keypoint_of[s] for s in chain[i + 1:]]] = True
    return table


_DISTAL = _distal_table()


def free_joints(occluded: torch.Tensor) -> torch.Tensor:
    """``(2,15)`` bool: MANO finger joints whose every keypoint further along the finger is occluded.

    ``occluded (42,)`` bool in InterHand order.
    """
    right, left = _DISTAL, _DISTAL.roll(21, dims=1)
    return torch.stack([(~t | occluded).all(-1) for t in (right, left)])


def perturb(plaus: Plausibility, pose, shape, trans_m, frame: torch.Tensor, cfg: MultiHandsConfig,
            gen: torch.Generator, free: torch.Tensor | None = None):
    """One random step of ``(M,2,48), (M,2,10), (M,2,3)`` parameters; ``frame (2,3,3)`` from :func:`_ray_frame`,
    ``free (2,15)`` the joints that also get the occluded-finger step (:func:`free_joints`)."""
    M = pose.shape[0]
    dc = torch.randn(M, 2, 45, generator=gen) * plaus.prior.std * cfg.step_finger_sigma
    dg = torch.randn(M, 2, 3, generator=gen) * cfg.step_global_rad
    steps = torch.tensor([cfg.step_depth_mm, cfg.step_lateral_mm, cfg.step_lateral_mm])
    dt_mm = torch.einsum("mhk,hkc->mhc", torch.randn(M, 2, 3, generator=gen) * steps, frame)
    db = torch.randn(M, 2, 10, generator=gen) * cfg.step_shape
    # Occluded fingers: a larger step along the prior's own directions (axis-angle noise would leave its
    # support at once), kept only on the free joints.
    do = plaus.prior.finger_pose(torch.randn(M, 2, 45, generator=gen) * plaus.prior.std * cfg.step_occluded_sigma)
    do = do * (free if free is not None else torch.zeros(2, 15, dtype=torch.bool)).repeat_interleave(3, -1)
    pose = pose + torch.cat([dg, plaus.prior.finger_pose(dc) + do], dim=-1)
    return pose, shape + db, trans_m + dt_mm / 1000.0


def walk_image(plaus: Plausibility, gt: dict[str, torch.Tensor], tg: ImageTargets, cfg: MultiHandsConfig,
               gen: torch.Generator) -> tuple[dict[str, torch.Tensor], WalkStats]:
    """``gt``: ``pose (2,48)``, ``shape (2,10)``, ``trans (2,3)`` m. Returns annotations ``pose (K,2,48)``,
    ``shape (K,2,10)``, ``trans (K,2,3)`` float32 with the ground truth first, ``1 <= K <= per_image``."""
    keys = ("pose", "shape", "trans")
    gt = {k: gt[k].float()[None] for k in keys}
    stats = WalkStats()
    keep = cfg.per_image - 1
    if keep == 0 or cfg.iterations == 0:
        return gt, stats
    wrists = plaus.keypoints_mm(gt["pose"], gt["shape"], gt["trans"])[0, [20, 41]]
    frame = _ray_frame(tg, wrists)
    free = free_joints(tg.occluded)
    pop = {k: v.clone() for k, v in gt.items()}
    for _ in range(cfg.iterations):
        parents = torch.randint(len(pop["pose"]), (cfg.proposals,), generator=gen)
        prop = dict(zip(keys, perturb(plaus, *(pop[k][parents] for k in keys), frame, cfg, gen, free)))
        verdict = plaus.check(prop["pose"], prop["shape"], prop["trans"], tg)
        ok = verdict["plausible"]
        stats.proposals += cfg.proposals
        stats.accepted += int(ok.sum())
        cheap = verdict["reprojection"] & verdict["prior"] & verdict["collision"]
        for c in ("reprojection", "prior", "collision"):
            stats.rejected_by[c] += int((~verdict[c]).sum())
        stats.rejected_by["occlusion"] += int((cheap & ~verdict["occlusion"]).sum())
        acc = torch.nonzero(ok)[:, 0]
        acc = acc[torch.randperm(len(acc), generator=gen)][:keep]
        new = {k: prop[k][acc] for k in keys}
        if len(acc) < keep and len(acc) < cfg.proposals:
            # Too few accepted: earlier members stay in the population (the ground truth only in round 0).
            old = torch.randperm(len(pop["pose"]), generator=gen)[: keep - len(acc)]
            new = {k: torch.cat([new[k], pop[k][old]]) for k in keys}
        if len(new["pose"]):
            pop = new
    same = ((pop["pose"] == gt["pose"]).flatten(1).all(1) & (pop["shape"] == gt["shape"]).flatten(1).all(1)
            & (pop["trans"] == gt["trans"]).flatten(1).all(1))
    return {k: torch.cat([gt[k], pop[k][~same][:keep]]) for k in keys}, stats
