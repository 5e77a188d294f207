"""``HandModel``: both MANO hands as one torch module, with a joints-only fast path for keypoints.

Keypoints are 21 per hand in InterHand2.6M order -- thumb tip->base (0-3), index (4-7), middle (8-11),
ring (12-15), pinky (16-19), wrist (20) -- right hand 0-20, left hand 21-41, in millimetres.

Keypoint definition (per hand):

* default: the 16 MANO joints (smplx's ``joints`` output) plus 5 fingertip vertices. Synthetic
  MANO files store their ``tip_vertex_ids``; for the real MANO files (no such key) we follow
  InterHand2.6M's regressor, whose tips are single vertices thumb 745, index 317, middle 445,
  ring 556, pinky 673 -- not smplx's own ``VERTEX_IDS['mano']`` (744, 320, 443, 554, 671).
* ``regressor_path``: a ``.npy`` 21 x V regressor in InterHand order (as the toolkit's
  ``J_regressor_mano_ih26m.npy``), applied to the posed mesh; the same matrix serves both hands.

The fast path never skins the full mesh: it precomputes ``J_template = J_regressor @ v_template`` and
``J_shapedirs = J_regressor @ shapedirs``, runs forward kinematics over the 16-joint tree level by
level (batched over samples and hands) and skins only the few vertices the keypoints need (the 5
tips, or the regressor's support) with their shape blend, pose correctives and LBS weights. It matches
smplx's full forward to float precision (tested to 1e-6 m in float64).

Model parameters are rounded to float32 first, as smplx does (``smplx.utils.to_np``), so a
``.double()`` model reproduces a float64 smplx model exactly.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from handflow.errors import HandflowError
from handflow.geometry.rotation import axis_angle_to_matrix
from handflow.hand.mano import NUM_BETAS, NUM_JOINTS, build_smplx_mano, load_mano_dir
from handflow.keypoints import WRIST_IN_HAND

INTERHAND_TIP_IDS = (745, 317, 445, 556, 673)  # thumb, index, middle, ring, pinky
NUM_KEYPOINTS = 21
WRIST = WRIST_IN_HAND  # the wrist among one hand's 21 keypoints
# InterHand order from [16 MANO joints, 5 tips (thumb, index, middle, ring, pinky)].
INTERHAND_FROM_JOINTS_AND_TIPS = (16, 15, 14, 13, 17, 3, 2, 1, 18, 6, 5, 4, 19, 12, 11, 10, 20, 9, 8, 7, 0)


def _f32(a) -> np.ndarray:
    # smplx casts every model array through float32; do the same so both agree bit for bit.
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def load_regressor(path: str | os.PathLike, num_vertices: int) -> np.ndarray:
    """A 21 x V keypoint regressor (InterHand order) from a ``.npy`` file, validated."""
    path = Path(path)
    if not path.is_file():
        raise HandflowError(f"missing keypoint regressor file: {path}")
    try:
        reg = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise HandflowError(f"keypoint regressor {path}: not a readable .npy array ({err})") from err
    if reg.ndim != 2 or reg.shape != (NUM_KEYPOINTS, num_vertices):
        raise HandflowError(
            f"keypoint regressor {path}: shape {tuple(reg.shape)}, expected ({NUM_KEYPOINTS},{num_vertices})"
        )
    reg = reg.astype(np.float64)
    if not np.all(np.isfinite(reg)):
        raise HandflowError(f"keypoint regressor {path}: holds non-finite numbers")
    return reg


class HandModel(nn.Module):
    """Right (index 0) and left (index 1) MANO hands.

    Buffers follow the module's device and dtype (float32 by default); everything is differentiable.
    The module has no trainable parameters. Attributes: ``num_vertices`` (V), ``faces`` (2,F,3),
    ``hands_mean`` buffer (2,45), ``tip_vertex_ids`` (2,5) numpy,
    ``mano_dir``; the pose prior as float64 numpy ``hands_components`` (2,45,45) and ``hands_coeffs``
    (2,N,45) (None when a file lacks it), ``smplx_layers`` (the two ``smplx.MANO`` modules).
    """

    def __init__(self, right: dict, left: dict, tip_ids: np.ndarray | None = None,
                 regressor: np.ndarray | None = None, mano_dir: str | os.PathLike | None = None):
        super().__init__()
        self.mano_dir = Path(mano_dir) if mano_dir is not None else None
        hands = (right, left)
        V = right["v_template"].shape[0]
        self.num_vertices = V
        parents = [int(p) for p in right["kintree_table"][0]]
        if [int(p) for p in left["kintree_table"][0][1:]] != parents[1:]:
            raise HandflowError(f"MANO folder {mano_dir}: left and right kinematic trees differ")
        parents[0] = -1
        self.parents = parents
        depth = [0] * NUM_JOINTS
        for j in range(1, NUM_JOINTS):
            depth[j] = depth[parents[j]] + 1
        # Forward kinematics runs in "level order" (joints sorted by tree depth), one batched matmul
        # per level on contiguous slices: for MANO, root | 5 MCP/CMC | 5 PIP | 5 DIP.
        order = sorted(range(NUM_JOINTS), key=lambda j: (depth[j], j))
        pos = {j: i for i, j in enumerate(order)}
        self._fk_levels = []  # (start, end, parent positions inside the previous level or None)
        prev_start = 0
        for d in range(1, max(depth) + 1):
            members = [j for j in order if depth[j] == d]
            start = pos[members[0]]
            ppos = [pos[parents[j]] - prev_start for j in members]
            same = ppos == list(range(len(members)))
            self._fk_levels.append((start, start + len(members), None if same else torch.tensor(ppos)))
            prev_start = start
        # Parent of each level-ordered joint (the root points at an appended zero row).
        parent_sorted = [NUM_JOINTS if parents[j] < 0 else parents[j] for j in order]
        self.register_buffer("_order", torch.tensor(order), persistent=False)
        self.register_buffer("_parent_sorted", torch.tensor(parent_sorted), persistent=False)

        v_template = np.stack([_f32(h["v_template"]) for h in hands])  # (2,V,3)
        shapedirs = np.stack([_f32(h["shapedirs"][:, :, :NUM_BETAS]) for h in hands])  # (2,V,3,10)
        posedirs = np.stack([_f32(h["posedirs"]) for h in hands])  # (2,V,3,135)
        weights = np.stack([_f32(h["weights"]) for h in hands])  # (2,V,16)
        J_reg = np.stack([_f32(h["J_regressor"]) for h in hands])  # (2,16,V)

        if regressor is None:
            if tip_ids is None:
                raise HandflowError("HandModel needs tip vertex ids or a keypoint regressor")
            tip_ids = np.asarray(tip_ids, dtype=np.int64).reshape(2, 5)
            support = tip_ids
            self.uses_regressor = False
        else:
            # Skin only the vertices some keypoint depends on (the wrist row mixes ~100 of them).
            cols = np.flatnonzero(np.any(regressor != 0, axis=0))
            support = np.stack([cols, cols])
            self.register_buffer("kp_regressor", torch.tensor(_f32(regressor)[:, cols], dtype=torch.float32))
            self.uses_regressor = True
        self.register_buffer("kp_vertex_ids", torch.tensor(support, dtype=torch.long), persistent=False)
        take = lambda a: np.stack([a[h][support[h]] for h in range(2)])  # noqa: E731
        S = support.shape[1]

        def buf(name, arr):
            self.register_buffer(name, torch.tensor(arr, dtype=torch.float32))

        buf("J_template", np.einsum("hjv,hvc->hjc", J_reg, v_template))  # (2,16,3)
        buf("J_shapedirs", np.einsum("hjv,hvck->hjck", J_reg, shapedirs))  # (2,16,3,10)
        buf("kp_v_template", take(v_template))  # (2,S,3)
        buf("kp_shapedirs", take(shapedirs))  # (2,S,3,10)
        buf("kp_posedirs", take(posedirs).transpose(0, 3, 1, 2).reshape(2, -1, S, 3))  # (2,135,S,3)
        buf("kp_weights", take(weights)[:, :, order])  # (2,S,16), joints in level order
        buf("hands_mean", np.stack([_f32(h["hands_mean"]) for h in hands]))  # (2,45)
        # InterHand order from [level-ordered joints, tips].
        sorted_gather = [pos[i] if i < NUM_JOINTS else i for i in INTERHAND_FROM_JOINTS_AND_TIPS]
        self.register_buffer("_gather_sorted", torch.tensor(sorted_gather, dtype=torch.long), persistent=False)
        self.register_buffer("_faces", torch.tensor(np.stack([h["f"] for h in hands]), dtype=torch.long),
                             persistent=False)
        self.tip_vertex_ids = None if tip_ids is None else tip_ids
        # Pose prior as plain float64 arrays (data generators sample from it; no need on the device).
        self.hands_components = np.stack([np.asarray(h["hands_components"], np.float64) for h in hands])  # (2,45,45)
        coeffs = [h.get("hands_coeffs") for h in hands]
        self.hands_coeffs = (np.stack(coeffs) if all(c is not None for c in coeffs)
                             and coeffs[0].shape == coeffs[1].shape else None)  # (2,N,45) or None
        self.smplx_layers = nn.ModuleList([build_smplx_mano(right, True), build_smplx_mano(left, False)])

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dir(cls, mano_dir: str | os.PathLike,
                 regressor_path: str | os.PathLike | None = None) -> "HandModel":
        """Load ``MANO_RIGHT``/``MANO_LEFT`` (``.pkl`` or ``.npz``) from ``mano_dir``.

        The folder is the caller's choice: the hand model has no default. Entry points that default to
        the generated synthetic MANO (the CLI's ``--mano-dir``, training's ``data.mano_dir``, the
        synthetic capture) resolve a missing folder with :func:`handflow.synth.mano.default_mano_dir`.
        """
        right, left = load_mano_dir(mano_dir)
        V = right["v_template"].shape[0]
        if "tip_vertex_ids" in right and "tip_vertex_ids" in left:
            tips = np.stack([right["tip_vertex_ids"], left["tip_vertex_ids"]])
        else:
            if V <= max(INTERHAND_TIP_IDS):
                raise HandflowError(
                    f"MANO folder {mano_dir}: {V} vertices and no 'tip_vertex_ids'; the InterHand2.6M tip vertices "
                    f"{INTERHAND_TIP_IDS} need the 778-vertex MANO topology (or pass a keypoint regressor)"
                )
            tips = np.stack([INTERHAND_TIP_IDS, INTERHAND_TIP_IDS])
        regressor = None if regressor_path is None else load_regressor(regressor_path, V)
        return cls(right, left, tip_ids=tips, regressor=regressor, mano_dir=mano_dir)

    @property
    def faces(self) -> torch.Tensor:
        """(2,F,3) long: right, left (the left file's own, flipped winding)."""
        return self._faces

    # ------------------------------------------------------------------ fast path
    def _dtype(self) -> torch.dtype:
        return self.J_template.dtype

    def rotmats_from_mano(self, pose: torch.Tensor) -> torch.Tensor:
        """(B,2,48) axis-angle (rad, ``flat_hand_mean=False``) -> (B,2,16,3,3) effective rotations."""
        pose = pose.to(dtype=self._dtype())
        mean = torch.cat([torch.zeros_like(self.hands_mean[:, :3]), self.hands_mean], dim=1)  # (2,48)
        full = (pose + mean).reshape(*pose.shape[:-1], NUM_JOINTS, 3)
        return axis_angle_to_matrix(full)

    def _forward_kinematics(self, rotmats: torch.Tensor, joints: torch.Tensor):
        """Level-ordered FK. rotmats (...,16,3,3), rest joints (...,16,3), both in MANO order ->
        world rotations G (...,16,3,3), posed joints t (...,16,3), rest joints J, all in level order."""
        R = rotmats.index_select(-3, self._order)
        Jpad = torch.cat([joints, torch.zeros_like(joints[..., :1, :])], dim=-2)
        J = Jpad.index_select(-2, self._order)
        rel = J - Jpad.index_select(-2, self._parent_sorted)  # root: its own position
        G_prev, t_prev = R[..., :1, :, :], rel[..., :1, :]
        Gs, ts = [G_prev], [t_prev]
        for start, end, ppos in self._fk_levels:
            if ppos is None:
                Gp, tp = G_prev, t_prev
            elif G_prev.shape[-3] == 1:  # every joint hangs off the single root
                Gp = G_prev.expand(*G_prev.shape[:-3], end - start, 3, 3)
                tp = t_prev.expand(*t_prev.shape[:-2], end - start, 3)
            else:
                ppos = ppos.to(G_prev.device)
                Gp, tp = G_prev.index_select(-3, ppos), t_prev.index_select(-2, ppos)
            G_prev = Gp @ R[..., start:end, :, :]
            t_prev = (Gp @ rel[..., start:end, :].unsqueeze(-1)).squeeze(-1) + tp
            Gs.append(G_prev)
            ts.append(t_prev)
        return torch.cat(Gs, dim=-3), torch.cat(ts, dim=-2), J

    def _keypoints_m(self, rotmats: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
        """(B,2,16,3,3), (B,2,10) -> (B,2,21,3) keypoints in the model frame, metres (no translation)."""
        dtype = self._dtype()
        rotmats, betas = rotmats.to(dtype=dtype), betas.to(dtype=dtype)
        J_rest = self.J_template + torch.einsum("bhk,hjck->bhjc", betas, self.J_shapedirs)
        G, t, J = self._forward_kinematics(rotmats, J_rest)
        eye = torch.eye(3, dtype=dtype, device=rotmats.device)
        feat = (rotmats[:, :, 1:] - eye).flatten(2)  # (B,2,135), smplx's pose feature layout
        v = (self.kp_v_template + torch.einsum("bhk,hsck->bhsc", betas, self.kp_shapedirs)
             + torch.einsum("bhp,hpsc->bhsc", feat, self.kp_posedirs))
        # LBS with the rest-pose-relative transforms A_j = [G_j | t_j - G_j J_j].
        A = torch.cat([G.flatten(-2), t - (G @ J.unsqueeze(-1)).squeeze(-1)], dim=-1)  # (B,2,16,12)
        T = torch.einsum("hsj,bhjk->bhsk", self.kp_weights, A)  # (B,2,S,12)
        T_R = T[..., :9].unflatten(-1, (3, 3))
        verts = (T_R @ v.unsqueeze(-1)).squeeze(-1) + T[..., 9:]  # (B,2,S,3)
        if self.uses_regressor:
            return torch.einsum("ks,bhsc->bhkc", self.kp_regressor, verts)
        return torch.cat([t, verts], dim=2).index_select(2, self._gather_sorted)

    def keypoints_from_rotmats(self, rotmats: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
        """rotmats (B,2,16,3,3) effective rotations (hands_mean included, 0 = global), betas (B,2,10)
        -> (B,42,3) mm, each hand relative to its own wrist keypoint (indices 20 and 41 are zero)."""
        kp = self._keypoints_m(rotmats, betas)
        kp = kp - kp[:, :, WRIST:WRIST + 1]
        return (kp * 1000.0).reshape(kp.shape[0], 2 * NUM_KEYPOINTS, 3)

    def keypoints_from_mano(self, pose: torch.Tensor, betas: torch.Tensor, trans_m: torch.Tensor) -> torch.Tensor:
        """InterHand NeuralAnnot parameters -> absolute keypoints (B,42,3) mm, through the fast path.

        pose (B,2,48) axis-angle rad (global + 15 joints, ``flat_hand_mean=False``), betas (B,2,10),
        trans_m (B,2,3) metres.
        """
        kp = self._keypoints_m(self.rotmats_from_mano(pose), betas)
        kp = kp + trans_m.to(dtype=kp.dtype).unsqueeze(2)
        return (kp * 1000.0).reshape(kp.shape[0], 2 * NUM_KEYPOINTS, 3)

    # ------------------------------------------------------------------ full mesh (smplx)
    def mesh_from_mano(self, pose: torch.Tensor, betas: torch.Tensor, trans_m: torch.Tensor) -> torch.Tensor:
        """Full smplx skinning: (B,2,48) rad, (B,2,10), (B,2,3) m -> vertices (B,2,V,3) mm."""
        dtype = self._dtype()
        pose, betas, trans_m = (x.to(dtype=dtype) for x in (pose, betas, trans_m))
        out = []
        for h, layer in enumerate(self.smplx_layers):
            res = layer(betas=betas[:, h], global_orient=pose[:, h, :3], hand_pose=pose[:, h, 3:],
                        transl=trans_m[:, h])
            out.append(res.vertices)
        return torch.stack(out, dim=1) * 1000.0

    def vertices_from_rotmats(self, rotmats: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
        """Full mesh (B,2,V,3) mm relative to each hand's wrist keypoint, the frame of
        ``keypoints_from_rotmats``. rotmats (B,2,16,3,3) effective rotations, betas (B,2,10)."""
        from smplx.lbs import lbs

        dtype = self._dtype()
        rotmats, betas = rotmats.to(dtype=dtype), betas.to(dtype=dtype)
        out = []
        for h, layer in enumerate(self.smplx_layers):
            verts, joints = lbs(betas[:, h], rotmats[:, h].contiguous(), layer.v_template, layer.shapedirs,
                                layer.posedirs, layer.J_regressor, layer.parents, layer.lbs_weights, pose2rot=False)
            if self.uses_regressor:
                wrist = torch.einsum("s,bsc->bc", self.kp_regressor[WRIST], verts[:, self.kp_vertex_ids[h]])
            else:
                wrist = joints[:, 0]
            out.append(verts - wrist[:, None])
        return torch.stack(out, dim=1) * 1000.0


def hand_model_digest(hand_model) -> str:
    """16 hex digits naming a hand model: its buffers (as ``handflow.model.registry.model_digest`` hashes
    weights) plus its pose prior and faces. Part of every cache key of results lifted through it."""
    from handflow.checkpoint import weights_hash

    h = weights_hash(hand_model.state_dict())  # the weights as model_digest hashes them, then the rest
    for arr in (hand_model.hands_components, hand_model.hands_coeffs, hand_model.faces.numpy()):
        if arr is not None:
            h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()[:16]
