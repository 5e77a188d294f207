"""A tiny stand-in for ``handflow.hand.model.HandModel`` (same interface, a 16-joint kinematic chain).

Used by the flow/loss tests, which need *a* differentiable hand model but not MANO. The lifting
test (test_pose_params.py) uses the real ``HandModel`` when it is importable.
"""

from __future__ import annotations

import torch

from handflow.geometry.rotation import axis_angle_to_matrix

PARENTS = [-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14]  # MANO kinematic tree
# InterHand order per hand: thumb tip->base, index, middle, ring, pinky, wrist; ('tip', k) = tip of chain k
_ORDER = [("tip", 15), 15, 14, 13, ("tip", 3), 3, 2, 1, ("tip", 6), 6, 5, 4, ("tip", 12), 12, 11, 10,
          ("tip", 9), 9, 8, 7, 0]
_TIP_SLOT = {15: 0, 3: 1, 6: 2, 12: 3, 9: 4}


class FakeHandModel(torch.nn.Module):
    def __init__(self, seed: int = 0, dtype=torch.float64):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        J = torch.zeros(16, 3, dtype=dtype)
        base = {1: (30.0, 85.0), 4: (10.0, 90.0), 7: (-25.0, 75.0), 10: (-8.0, 85.0), 13: (35.0, 25.0)}
        for root, (x, y) in base.items():
            J[root] = torch.tensor([x, y, 0.0])
            J[root + 1] = J[root] + torch.tensor([0.0, 35.0, 0.0])
            J[root + 2] = J[root + 1] + torch.tensor([0.0, 25.0, 0.0])
        J = J + torch.randn(16, 3, generator=g, dtype=dtype)
        self.register_buffer("J_rest", torch.stack([J, J * torch.tensor([-1.0, 1.0, 1.0], dtype=dtype)]))
        self.register_buffer("J_dirs", 2.0 * torch.randn(2, 16, 3, 10, generator=g, dtype=dtype))
        self.register_buffer("tip_off", torch.tensor([[0.0, 20.0, 0.0]] * 5, dtype=dtype).expand(2, 5, 3).clone())
        self.register_buffer("hands_mean", 0.1 * torch.randn(2, 45, generator=g, dtype=dtype))

    def _joints(self, betas):
        return self.J_rest + (self.J_dirs.to(betas) @ betas[:, :, None, :, None])[..., 0]  # (B,2,16,3)

    def keypoints_from_rotmats(self, rotmats, betas):
        J = self._joints(betas).to(rotmats)
        G = [rotmats[:, :, 0]]
        p = [torch.zeros_like(J[:, :, 0])]
        for i in range(1, 16):
            par = PARENTS[i]
            p.append(p[par] + (G[par] @ (J[:, :, i] - J[:, :, par])[..., None])[..., 0])
            G.append(G[par] @ rotmats[:, :, i])
        tips = {k: p[k] + (G[k] @ self.tip_off[:, _TIP_SLOT[k]].to(rotmats)[None, :, :, None])[..., 0]
                for k in _TIP_SLOT}
        per_hand = [tips[o[1]] if isinstance(o, tuple) else p[o] for o in _ORDER]
        kp = torch.stack(per_hand, dim=2)  # (B,2,21,3)
        return kp.reshape(kp.shape[0], 42, 3)

    def keypoints_from_mano(self, pose, betas, trans_m):
        B = pose.shape[0]
        aa = pose.reshape(B, 2, 16, 3).clone()
        aa[:, :, 1:] = aa[:, :, 1:] + self.hands_mean.reshape(1, 2, 15, 3).to(aa)
        rel = self.keypoints_from_rotmats(axis_angle_to_matrix(aa), betas)
        root = self._joints(betas).to(pose)[:, :, 0] + 1000.0 * trans_m  # (B,2,3)
        return rel + torch.repeat_interleave(root, 21, dim=1)
