"""Sphere proxies on the bones of both hands: criterion 4 of MultiHands ("the hands do not collide").

HandFlow uses Gaussian proxies attached to MANO and calls two hands colliding when the one-σ spheres
of their Gaussians intersect. Ours: ``n`` spheres evenly spaced along each of the 20 bones of a hand
(keypoint to parent keypoint, InterHand order), with the bone's σ measured on the rest mesh: every
vertex is assigned to its nearest bone and σ is the standard deviation of a Gaussian fitted across
the bone, ``sqrt(mean(d_perp²) / 2)`` (for a cylinder of radius r that is r/√2). Spheres move with the
posed keypoints; radii stay those of the rest shape.
"""

from __future__ import annotations

import torch

from handflow.keypoints import HAND_BONES, JOINTS_PER_HAND

BONES = torch.tensor(HAND_BONES)  # (20,2) child, parent in one hand


def _segment_distance(points: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Distance of ``points (V,3)`` to segments ``a, b (S,3)`` -> ``(V,S)``."""
    ab = b - a
    t = ((points[:, None] - a[None]) * ab[None]).sum(-1) / (ab * ab).sum(-1).clamp_min(1e-9)[None]
    closest = a[None] + t.clamp(0, 1)[..., None] * ab[None]
    return (points[:, None] - closest).norm(dim=-1)


class BoneSpheres:
    """``sigma_mm (2,20)`` per bone and hand; :meth:`centers` places the spheres on posed keypoints."""

    def __init__(self, sigma_mm: torch.Tensor, per_bone: int):
        self.sigma_mm = sigma_mm.float()
        self.per_bone = int(per_bone)
        self.fractions = (torch.arange(self.per_bone, dtype=torch.float32) + 0.5) / self.per_bone  # (n,)

    @classmethod
    def from_hand_model(cls, hand_model, per_bone: int = 3) -> "BoneSpheres":
        with torch.no_grad():
            z = lambda *s: torch.zeros(1, *s)  # noqa: E731
            verts = hand_model.mesh_from_mano(z(2, 48), z(2, 10), z(2, 3))[0].float()  # (2,V,3) mm
            kp = hand_model.keypoints_from_mano(z(2, 48), z(2, 10), z(2, 3))[0].float().reshape(2, JOINTS_PER_HAND, 3)
        sig = []
        for h in range(2):
            d = _segment_distance(verts[h], kp[h, BONES[:, 0]], kp[h, BONES[:, 1]])  # (V,20)
            nearest = d.argmin(1)
            dn = d.gather(1, nearest[:, None])[:, 0]
            s = torch.stack([(dn[nearest == b] ** 2).mean() if (nearest == b).any() else torch.tensor(0.0)
                             for b in range(len(BONES))])
            sig.append((s / 2).sqrt())
        return cls(torch.stack(sig), per_bone)

    def centers(self, joints_mm: torch.Tensor) -> torch.Tensor:
        """``joints (...,42,3)`` mm -> sphere centres ``(...,2,20*n,3)``."""
        kp = joints_mm.reshape(*joints_mm.shape[:-2], 2, JOINTS_PER_HAND, 3)
        a = kp[..., BONES[:, 1], :]  # parent
        b = kp[..., BONES[:, 0], :]
        f = self.fractions.to(kp)[:, None]  # (n,1)
        c = a[..., :, None, :] + f * (b - a)[..., :, None, :]  # (...,2,20,n,3)
        return c.flatten(-3, -2)

    def radii(self) -> torch.Tensor:
        """``(2, 20*n)`` mm, matching :meth:`centers`."""
        return self.sigma_mm.repeat_interleave(self.per_bone, dim=1)

    def penetration_mm(self, joints_mm: torch.Tensor) -> torch.Tensor:
        """Deepest overlap between a right-hand and a left-hand sphere, ``(...)`` mm (<= 0: no collision)."""
        c = self.centers(joints_mm)
        r = self.radii().to(c)
        d = torch.cdist(c[..., 0, :, :], c[..., 1, :, :])  # (...,S,S)
        return (r[0][:, None] + r[1][None, :] - d).flatten(-2).amax(-1)
