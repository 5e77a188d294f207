"""The four plausibility criteria of MultiHands (see ``handflow/multihands/__init__.py``), batched over images × proposals.

A proposal is a two-hand MANO parameter set in the world frame (InterHand NeuralAnnot semantics:
``pose (…,2,48)`` rad, ``shape (…,2,10)``, ``trans (…,2,3)`` m). For one image it is plausible when

1. every joint visible in the ground truth projects within ``reproj_px`` of where the ground-truth MANO
   keypoint projects (equal to the annotated 2D joint on synthetic data);
2. every joint occluded in the ground truth is still occluded by the proposal's own meshes, under the
   data's visibility rule (:func:`handflow.data.raster.visibility`, same tolerance) — the depth buffer
   is evaluated only at those joints' pixels, with the rasteriser's own face tests (exactly equal);
3. each hand's finger pose has a prior log-likelihood of at least ``min(threshold, ground truth's - slack)``;
4. the hands' one-σ bone spheres overlap by at most ``max(0, ground truth's overlap)``.

The ground truth itself always passes: (3) and (4) are bounded by its own values (a captured pose can be
more extreme than the prior's quantile, or touch more than the proxies allow; the slack of (3) lets a walk
leave a ground truth that sits below the threshold, where every step in articulation would otherwise
be refused half the time), and the occluded set of
(2) is the ground truth's occluded joints that the same depth test also finds occluded for the
ground-truth meshes (the two can differ on a few joints of real data, whose visibility comes from
another renderer); :attr:`ImageTargets.occluded_disagree` counts those.

Criteria 1, 3 and 4 need keypoints only (the joints-only hand model); criterion 2 renders meshes and
runs only on the proposals that passed the others.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from handflow.data.raster import NEAR_MM, depth_at_pixels, joint_pixels, visibility_rule
from handflow.keypoints import JOINT_HAND, N_JOINTS
from handflow.multihands.config import MultiHandsConfig
from handflow.multihands.prior import PosePrior
from handflow.multihands.proxies import BoneSpheres

CRITERIA = ("reprojection", "occlusion", "prior", "collision")


@dataclass
class ImageTargets:
    """What a proposal for one image is checked against (tensors, float32 unless said)."""

    K: torch.Tensor  # (3,3) image intrinsics, px
    R: torch.Tensor  # (3,3) world -> camera rotation
    campos_mm: torch.Tensor  # (3,)
    image_hw: tuple[int, int]
    gt_px: torch.Tensor  # (42,2) ground-truth keypoints in the image
    visible: torch.Tensor  # (42,) bool: valid and visible in the ground truth
    occluded: torch.Tensor  # (42,) bool: valid, occluded in the ground truth and by its meshes
    prior_floor: torch.Tensor  # (2,) per-hand log-likelihood floor
    overlap_ceiling_mm: float
    occluded_disagree: int = 0  # joints marked occluded that the depth test of the GT meshes sees


class Plausibility:
    """Checks proposals against :class:`ImageTargets`; holds the hand model, prior and proxies."""

    def __init__(self, hand_model, cfg: MultiHandsConfig):
        self.hand_model = hand_model
        self.cfg = cfg
        self.prior = PosePrior.from_hand_model(hand_model)
        self.prior_threshold = self.prior.threshold(cfg.prior_quantile)  # (2,)
        self.spheres = BoneSpheres.from_hand_model(hand_model, cfg.spheres_per_bone)
        faces = hand_model.faces  # (2,F,3)
        V = hand_model.num_vertices
        self.mesh_faces = torch.cat([faces[0], faces[1] + V]).long()  # both hands as one mesh
        self.face_label = torch.cat([torch.zeros(faces.shape[1], dtype=torch.long),
                                     torch.ones(faces.shape[1], dtype=torch.long)])
        self.joint_hand = torch.as_tensor(JOINT_HAND)

    # ------------------------------------------------------------------ keypoint criteria (1, 3, 4)
    def keypoints_mm(self, pose: torch.Tensor, shape: torch.Tensor, trans_m: torch.Tensor) -> torch.Tensor:
        """``(...,2,48), (...,2,10), (...,2,3)`` -> world keypoints ``(...,42,3)`` mm (joints-only path)."""
        lead = pose.shape[:-2]
        kp = self.hand_model.keypoints_from_mano(pose.reshape(-1, 2, 48), shape.reshape(-1, 2, 10),
                                                 trans_m.reshape(-1, 2, 3))
        return kp.reshape(*lead, 42, 3).float()

    def reprojection_ok(self, joints_mm: torch.Tensor, tg: ImageTargets) -> torch.Tensor:
        """``joints (P,42,3)`` world mm -> ``(P,)`` bool."""
        cam = (joints_mm - tg.campos_mm) @ tg.R.T
        z = cam[..., 2]
        uv = cam[..., :2] / z.clamp_min(NEAR_MM)[..., None] * tg.K[[0, 1], [0, 1]] + tg.K[:2, 2]
        err = (uv - tg.gt_px).norm(dim=-1)
        ok = (err <= self.cfg.reproj_px) & (z > NEAR_MM)
        return (ok | ~tg.visible).all(-1)

    def prior_ok(self, pose: torch.Tensor, tg: ImageTargets) -> torch.Tensor:
        """``pose (P,2,48)`` -> ``(P,)`` bool."""
        ll = self.prior.log_likelihood(pose[..., 3:])
        return (ll >= tg.prior_floor - 1e-4).all(-1)

    def collision_ok(self, joints_mm: torch.Tensor, tg: ImageTargets) -> torch.Tensor:
        """``joints (P,42,3)`` mm -> ``(P,)`` bool."""
        return self.spheres.penetration_mm(joints_mm) <= tg.overlap_ceiling_mm + 1e-4

    # ------------------------------------------------------------------ depth criterion (2)
    def seen(self, pose: torch.Tensor, shape: torch.Tensor, trans_m: torch.Tensor, joints_mm: torch.Tensor,
             tg: ImageTargets, which: torch.Tensor | None = None) -> torch.Tensor:
        """Visibility ``(P,42)`` bool of each proposal's joints against its own two meshes in the image.

        Only the joints in ``which (42,)`` bool are tested (others are False): the depth buffer is read at
        their pixels only (:func:`handflow.data.raster.depth_at_pixels`, identical to a full z-buffer).
        """
        P = pose.shape[0]
        which = torch.ones(42, dtype=torch.bool) if which is None else which
        idx = torch.nonzero(which)[:, 0]
        out = torch.zeros(P, N_JOINTS, dtype=torch.bool)
        if not len(idx):
            return out
        with torch.no_grad():
            verts = self.hand_model.mesh_from_mano(pose, shape, trans_m).double()  # (P,2,V,3) world mm
        R, c = tg.R.double(), tg.campos_mm.double()
        V = verts.shape[2]
        vc = ((verts.reshape(P, 2 * V, 3) - c) @ R.T).float()  # as the data generator renders
        jc = ((joints_mm[:, idx].double() - c) @ R.T).float()
        px, py, inside = joint_pixels(jc, tg.K[None], tg.image_hw)
        depth, label = depth_at_pixels(vc, self.mesh_faces, tg.K, tg.image_hw, px, py, self.face_label)
        out[:, idx] = visibility_rule(jc[..., 2], depth, label, inside, self.joint_hand[idx], self.cfg.visibility_tol_mm)
        return out

    def occlusion_ok(self, pose, shape, trans_m, joints_mm, tg: ImageTargets) -> torch.Tensor:
        """``(P,)`` bool: the ground truth's occluded joints are all still occluded."""
        if not bool(tg.occluded.any()):
            return torch.ones(pose.shape[0], dtype=torch.bool)
        return ~self.seen(pose, shape, trans_m, joints_mm, tg, tg.occluded).any(-1)

    # ------------------------------------------------------------------ all four
    def check(self, pose: torch.Tensor, shape: torch.Tensor, trans_m: torch.Tensor, tg: ImageTargets,
              render_all: bool = False) -> dict[str, torch.Tensor]:
        """Each criterion's ``(P,)`` verdict and ``plausible`` (all four). The depth test runs on the
        proposals that passed the other three unless ``render_all`` (its verdict is False elsewhere)."""
        pose, shape, trans_m = pose.float(), shape.float(), trans_m.float()
        joints = self.keypoints_mm(pose, shape, trans_m)
        out = {"reprojection": self.reprojection_ok(joints, tg), "prior": self.prior_ok(pose, tg),
               "collision": self.collision_ok(joints, tg)}
        cheap = out["reprojection"] & out["prior"] & out["collision"]
        occl = torch.zeros_like(cheap)
        idx = torch.arange(len(cheap)) if render_all else torch.nonzero(cheap)[:, 0]
        if len(idx):
            occl[idx] = self.occlusion_ok(pose[idx], shape[idx], trans_m[idx], joints[idx], tg)
        out["occlusion"] = occl
        out["plausible"] = cheap & occl
        return out

    # ------------------------------------------------------------------ targets from the ground truth
    def targets(self, geometry: dict, image_hw: tuple[int, int]) -> ImageTargets:
        """:class:`ImageTargets` from ``InterHandDataset.geometry(i, image_hw)``."""
        f32 = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
        pose, shape, trans = (f32(geometry[k])[None] for k in ("pose", "shape", "trans"))
        valid = np.asarray(geometry["valid"]) > 0
        vis = (np.asarray(geometry["visible"]) > 0) & valid
        tg = ImageTargets(
            K=f32(geometry["K"]), R=f32(geometry["R"]), campos_mm=f32(geometry["campos"]),
            image_hw=(int(image_hw[0]), int(image_hw[1])), gt_px=f32(geometry["img"]),
            visible=torch.as_tensor(vis), occluded=torch.as_tensor(valid & ~vis),
            prior_floor=torch.zeros(2), overlap_ceiling_mm=0.0,
        )
        joints = self.keypoints_mm(pose, shape, trans)
        # Criterion 1's targets are the ground-truth MANO keypoints' own projections: on real data the
        # NeuralAnnot fit is a few mm off joint_3d, which must not make the ground truth implausible.
        cam = (joints[0] - tg.campos_mm) @ tg.R.T
        tg.gt_px = cam[:, :2] / cam[:, 2:].clamp_min(NEAR_MM) * tg.K[[0, 1], [0, 1]] + tg.K[:2, 2]
        ll = self.prior.log_likelihood(pose[..., 3:])[0]
        tg.prior_floor = torch.minimum(self.prior_threshold, ll - self.cfg.prior_slack)
        tg.overlap_ceiling_mm = max(0.0, float(self.spheres.penetration_mm(joints)[0]))
        if bool(tg.occluded.any()):
            seen = self.seen(pose, shape, trans, joints, tg, tg.occluded)[0]
            tg.occluded_disagree = int((seen & tg.occluded).sum())
            tg.occluded = tg.occluded & ~seen
        return tg
