"""A vectorised z-buffer rasteriser in torch and per-joint visibility (also against posed MANO meshes).

Pixel convention (as InterHand2.6M / OpenCV): pixel ``(x, y)`` has its centre at integer coordinates,
so a camera point projects with ``u = fx*X/Z + cx`` straight into the pixel grid, and the pixel that
"contains" ``(u, v)`` is ``(round(u), round(v))``.

Rasterisation has no Python loop over faces or pixels: every face's bounding box of pixel centres is
enumerated with ``repeat_interleave``, an edge-function test keeps the centres inside the triangle
(either winding), perspective-correct depth ``Z = 1 / sum(b_i / Z_i)`` is reduced per pixel with
``scatter_reduce(amin)``, and the winning face (largest face id on exact ties) gives the face id,
the hand id and perspective-correct barycentrics. Faces with a vertex nearer than ``near_mm`` to the
camera plane are dropped (never the case for a dome around the hands).

Visibility of a joint (:func:`visibility`): it projects inside the image, in front of the camera, and
the nearest surface at its pixel is either empty, or belongs to the joint's own hand and is at most
``tol_mm`` (default :data:`VISIBILITY_TOL_MM` = 20 mm) in front of the joint, or belongs to the other
hand and is not in front of the joint. Joints are inside the hand: a finger joint sits ~8 mm below
the skin facing the camera when seen across the finger and up to ~16 mm when seen obliquely, the
wrist joint ~17 mm below the back of the synthetic wrist; fingertips are surface vertices. A finger or
the palm of the same hand lying in front of a joint puts a surface >= ~24 mm in front of it (its own
thickness plus the skin over the joint), so 20 mm separates "seen through its own skin" from
"hidden by another part of the hand"; any surface of the other hand in front hides the joint.
A fingertip pointing away from the camera is hidden by its own finger (correctly).

:func:`mano_visibility` applies the rule to one image of a capture that stores no visibility (the real
release): both hands' MANO meshes posed from their parameters and rasterised in the image's camera.
The synthetic capture's shading and textures live in :mod:`handflow.synth.appearance`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from handflow.geometry.camera import Camera
from handflow.keypoints import JOINT_HAND

VISIBILITY_TOL_MM = 20.0
NEAR_MM = 1.0


@dataclass
class Fragments:
    """Per-pixel results of :func:`rasterize` for a batch of ``B`` images of ``H x W`` pixels."""

    depth: torch.Tensor  # (B,H,W) camera Z in mm of the nearest surface, +inf where empty
    face: torch.Tensor  # (B,H,W) long face index, -1 where empty
    label: torch.Tensor  # (B,H,W) long face label (hand id: 0 right, 1 left), -1 where empty
    bary: torch.Tensor  # (B,H,W,3) perspective-correct barycentrics of the face's three vertices

    @property
    def mask(self) -> torch.Tensor:
        return self.face >= 0


def _as_K(K, B: int, dtype, device) -> torch.Tensor:
    K = torch.as_tensor(np.asarray(K) if not isinstance(K, torch.Tensor) else K, dtype=dtype, device=device)
    if K.dim() == 2:
        K = K.expand(B, 3, 3)
    return K


def project_points(points_cam: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """(B,N,3) camera mm, (B,3,3) -> (B,N,2) px."""
    z = points_cam[..., 2:3]
    xy = points_cam[..., :2] / z
    f = torch.stack([K[:, 0, 0], K[:, 1, 1]], -1)[:, None]
    c = torch.stack([K[:, 0, 2], K[:, 1, 2]], -1)[:, None]
    return xy * f + c


@dataclass
class _Triangles:
    """Per-face screen-space setup shared by :func:`rasterize` and :func:`depth_at_pixels`."""

    faces: torch.Tensor  # (F,3) long
    face_label: torch.Tensor  # (F,) long
    ok: torch.Tensor  # (B,F) bool: drawable (in front, non-degenerate, overlaps the image)
    x0: torch.Tensor  # (B,F) bounding box of pixel centres, clamped to the image (float)
    x1: torch.Tensor
    y0: torch.Tensor
    y1: torch.Tensor
    coef: torch.Tensor  # (B,F,9): w0, w1 (screen-space barycentrics) and 1/Z, each affine in (x, y)
    iz: torch.Tensor  # (B,F,3) 1/Z of the corners


def _triangles(verts_cam, faces, K, H: int, W: int, face_label, near_mm: float) -> _Triangles:
    dtype, device = verts_cam.dtype, verts_cam.device
    B = verts_cam.shape[0]
    faces = torch.as_tensor(faces, dtype=torch.long, device=device)
    K = _as_K(K, B, dtype, device)
    if face_label is None:
        face_label = torch.zeros(faces.shape[0], dtype=torch.long, device=device)
    face_label = torch.as_tensor(face_label, dtype=torch.long, device=device)
    z = verts_cam[..., 2]
    uv = project_points(torch.cat([verts_cam[..., :2], z.clamp(min=near_mm)[..., None]], -1), K)
    tri_uv = uv[:, faces]  # (B,F,3,2)
    tri_z = z[:, faces]  # (B,F,3)
    ok = (tri_z > near_mm).all(-1)
    lo = tri_uv.amin(2)
    hi = tri_uv.amax(2)
    x0 = torch.ceil(lo[..., 0]).clamp(0, W - 1)
    x1 = torch.floor(hi[..., 0]).clamp(-1, W - 1)
    y0 = torch.ceil(lo[..., 1]).clamp(0, H - 1)
    y1 = torch.floor(hi[..., 1]).clamp(-1, H - 1)
    ok &= (hi[..., 0] >= 0) & (lo[..., 0] <= W - 1) & (hi[..., 1] >= 0) & (lo[..., 1] <= H - 1)
    ax, ay = tri_uv[..., 0, 0], tri_uv[..., 0, 1]
    bx, by = tri_uv[..., 1, 0], tri_uv[..., 1, 1]
    cx, cy = tri_uv[..., 2, 0], tri_uv[..., 2, 1]
    area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
    ok &= area.abs() > 1e-9
    inv_area = 1.0 / torch.where(ok, area, torch.ones_like(area))
    iz = 1.0 / tri_z.clamp(min=near_mm)
    A0, B0, C0 = (by - cy) * inv_area, (cx - bx) * inv_area, (bx * cy - by * cx) * inv_area
    A1, B1, C1 = (cy - ay) * inv_area, (ax - cx) * inv_area, (cx * ay - cy * ax) * inv_area
    # 1/Z = w0/z0 + w1/z1 + (1 - w0 - w1)/z2
    d0, d1, z2 = iz[..., 0] - iz[..., 2], iz[..., 1] - iz[..., 2], iz[..., 2]
    coef = torch.stack([A0, B0, C0, A1, B1, C1, A0 * d0 + A1 * d1, B0 * d0 + B1 * d1, C0 * d0 + C1 * d1 + z2], -1)
    return _Triangles(faces, face_label, ok, x0, x1, y0, y1, coef, iz)


def rasterize(
    verts_cam: torch.Tensor,
    faces: torch.Tensor,
    K,
    image_hw: tuple[int, int],
    face_label: torch.Tensor | None = None,
    near_mm: float = NEAR_MM,
) -> Fragments:
    """Z-buffer ``B`` meshes sharing one face list.

    ``verts_cam (B,N,3)`` camera coordinates (mm), ``faces (F,3)`` long, ``K (3,3)`` or ``(B,3,3)``,
    ``image_hw = (H, W)``, ``face_label (F,)`` optional long label per face (e.g. hand id).
    """
    verts_cam = torch.as_tensor(verts_cam)
    if verts_cam.dim() != 3 or verts_cam.shape[-1] != 3:
        raise ValueError(f"verts_cam must be (B,N,3), got {tuple(verts_cam.shape)}")
    dtype, device = verts_cam.dtype, verts_cam.device
    B = verts_cam.shape[0]
    H, W = int(image_hw[0]), int(image_hw[1])
    t = _triangles(verts_cam, faces, K, H, W, face_label, near_mm)
    faces, face_label, nF, ok, iz = t.faces, t.face_label, t.faces.shape[0], t.ok, t.iz
    x0, x1, y0, y1 = (v.long() for v in (t.x0, t.x1, t.y0, t.y1))
    coef = t.coef.reshape(-1, 9)

    bw = (x1 - x0 + 1).clamp(min=0)
    bh = (y1 - y0 + 1).clamp(min=0)
    counts = (bw * bh * ok).reshape(-1)

    depth = torch.full((B * H * W,), float("inf"), dtype=dtype, device=device)
    face_buf = torch.full((B * H * W,), -1, dtype=torch.long, device=device)
    bary_buf = torch.zeros((B * H * W, 3), dtype=dtype, device=device)

    sel = torch.nonzero(counts, as_tuple=True)[0]
    if sel.numel():
        cnt = counts[sel]
        rep = torch.repeat_interleave(sel, cnt)  # flat (b*F + f) per candidate pixel
        starts = torch.cumsum(cnt, 0) - cnt
        local = torch.arange(rep.numel(), device=device) - torch.repeat_interleave(starts, cnt)
        bw_r = bw.reshape(-1).index_select(0, rep)
        # exact: local < 2^24 and the quotient's distance to the next integer exceeds float32 rounding
        oy = torch.floor(local.to(torch.float32) / bw_r.to(torch.float32)).long()
        px = x0.reshape(-1).index_select(0, rep) + local - oy * bw_r
        py = y0.reshape(-1).index_select(0, rep) + oy
        del local, bw_r, oy

        c = coef.index_select(0, rep)  # (M,9)
        pxf, pyf = px.to(dtype), py.to(dtype)
        w0 = c[:, 0] * pxf + c[:, 1] * pyf + c[:, 2]
        w1 = c[:, 3] * pxf + c[:, 4] * pyf + c[:, 5]
        eps = -1e-6
        inv_z = c[:, 6] * pxf + c[:, 7] * pyf + c[:, 8]
        inside = (w0 >= eps) & (w1 >= eps) & (w0 + w1 <= 1.0 - eps) & (inv_z > 0)
        keep = torch.nonzero(inside, as_tuple=True)[0]
        rep, px, py, w0, w1 = (a.index_select(0, keep) for a in (rep, px, py, w0, w1))
        z_i = 1.0 / inv_z.index_select(0, keep)
        b_idx = torch.div(rep, nF, rounding_mode="floor")
        f_i = rep - b_idx * nF
        pix_i = (b_idx * H + py) * W + px

        depth.scatter_reduce_(0, pix_i, z_i, reduce="amin", include_self=True)
        win = torch.nonzero(z_i == depth[pix_i], as_tuple=True)[0]
        face_buf.scatter_reduce_(0, pix_i[win], f_i[win], reduce="amax", include_self=True)
        win = win[f_i[win] == face_buf[pix_i[win]]]
        izv = iz.reshape(-1, 3)[rep[win]]
        w = torch.stack([w0[win], w1[win], 1.0 - w0[win] - w1[win]], -1)
        bary_buf[pix_i[win]] = w * izv * z_i[win][:, None]

    face_buf = face_buf.view(B, H, W)
    label = torch.where(face_buf >= 0, face_label[face_buf.clamp(min=0)], torch.full_like(face_buf, -1))
    return Fragments(depth.view(B, H, W), face_buf, label, bary_buf.view(B, H, W, 3))


def interpolate(frags: Fragments, faces: torch.Tensor, attr: torch.Tensor) -> torch.Tensor:
    """Interpolate per-vertex ``attr (B,N,C)`` at every pixel: (B,H,W,C) (zeros where empty)."""
    B, H, W = frags.face.shape
    f = frags.face.clamp(min=0).view(B, -1)  # (B,P)
    vid = faces[f]  # (B,P,3)
    C = attr.shape[-1]
    vals = torch.gather(attr, 1, vid.reshape(B, -1, 1).expand(-1, -1, C)).view(B, H * W, 3, C)
    out = (vals * frags.bary.view(B, H * W, 3, 1)).sum(2)
    return (out * frags.mask.view(B, H * W, 1)).view(B, H, W, C)


def visibility(
    joints_cam: torch.Tensor,
    frags: Fragments,
    K,
    joint_label: torch.Tensor,
    tol_mm: float = VISIBILITY_TOL_MM,
    near_mm: float = NEAR_MM,
) -> torch.Tensor:
    """(B,J) bool: is each joint seen by the camera (rule in the module docstring)?

    ``joints_cam (B,J,3)`` mm in the camera of each image, ``frags`` from :func:`rasterize` of the
    occluding meshes in the same cameras, ``joint_label (J,)`` the label (hand id) of each joint's mesh.
    Works for any pose: rasterise the meshes once and test other joint sets against that depth.
    """
    B, H, W = frags.depth.shape
    joints_cam = torch.as_tensor(joints_cam, dtype=frags.depth.dtype)
    K = _as_K(K, B, joints_cam.dtype, joints_cam.device)
    px, py, inside = joint_pixels(joints_cam, K, (H, W), near_mm)
    b = torch.arange(B, device=joints_cam.device)[:, None].expand_as(px)
    return visibility_rule(joints_cam[..., 2], frags.depth[b, py, px], frags.label[b, py, px], inside,
                           joint_label, tol_mm)


def joint_pixels(joints_cam: torch.Tensor, K: torch.Tensor, image_hw: tuple[int, int], near_mm: float = NEAR_MM):
    """Pixel ``(px, py)`` (B,J) long (clamped into the image) holding each joint, and ``inside (B,J)``."""
    H, W = image_hw
    zj = joints_cam[..., 2]
    uv = project_points(torch.cat([joints_cam[..., :2], zj.clamp(min=near_mm)[..., None]], -1), K)
    px = torch.round(uv[..., 0])
    py = torch.round(uv[..., 1])
    inside = (zj > near_mm) & (px >= 0) & (px <= W - 1) & (py >= 0) & (py <= H - 1)
    return px.clamp(0, W - 1).long(), py.clamp(0, H - 1).long(), inside


def visibility_rule(zj, depth, label, inside, joint_label, tol_mm: float = VISIBILITY_TOL_MM) -> torch.Tensor:
    """The visibility rule on the nearest surface at each joint's pixel: ``zj``, ``depth`` (B,J) mm,
    ``label`` (B,J) long (-1 = empty), ``inside (B,J)``, ``joint_label (J,)`` -> (B,J) bool."""
    jl = torch.as_tensor(joint_label, dtype=torch.long, device=label.device)[None].expand_as(label)
    empty = label < 0
    same = (label == jl) & (zj - depth <= tol_mm)
    other = (label != jl) & (depth >= zj)
    return inside & (empty | same | other)


def depth_at_pixels(
    verts_cam: torch.Tensor,
    faces: torch.Tensor,
    K,
    image_hw: tuple[int, int],
    px: torch.Tensor,
    py: torch.Tensor,
    face_label: torch.Tensor | None = None,
    near_mm: float = NEAR_MM,
) -> tuple[torch.Tensor, torch.Tensor]:
    """What :func:`rasterize` would store at a few pixels, without the whole image.

    ``px, py (B,J)`` long pixel coordinates; returns ``depth (B,J)`` (inf where empty) and ``label (B,J)``
    (-1 where empty). Same face tests, bounding boxes and tie rule (largest face id) as :func:`rasterize`,
    so a depth test at a handful of joint pixels costs ``B*J*F`` edge tests instead of a z-buffer.
    """
    verts_cam = torch.as_tensor(verts_cam)
    dtype, device = verts_cam.dtype, verts_cam.device
    B = verts_cam.shape[0]
    t = _triangles(verts_cam, faces, K, int(image_hw[0]), int(image_hw[1]), face_label, near_mm)
    ok, x0, x1, y0, y1, face_label = t.ok, t.x0, t.x1, t.y0, t.y1, t.face_label
    # Bounding-box candidates first (cheap comparisons), edge tests only on those few (pixel, face) pairs.
    pxf, pyf = px.to(dtype), py.to(dtype)
    e = lambda t: t[:, None, :]  # noqa: E731  (B,F) against pixels (B,J,1)
    cand = (e(ok) & (pxf[..., None] >= e(x0)) & (pxf[..., None] <= e(x1))
            & (pyf[..., None] >= e(y0)) & (pyf[..., None] <= e(y1)))
    bi, ji, fi = torch.nonzero(cand, as_tuple=True)
    c = t.coef[bi, fi]  # (M,9)
    x, y = pxf[bi, ji], pyf[bi, ji]
    w0 = c[:, 0] * x + c[:, 1] * y + c[:, 2]
    w1 = c[:, 3] * x + c[:, 4] * y + c[:, 5]
    inv_z = c[:, 6] * x + c[:, 7] * y + c[:, 8]
    eps = -1e-6
    hit = (w0 >= eps) & (w1 >= eps) & (w0 + w1 <= 1.0 - eps) & (inv_z > 0)
    J = px.shape[1]
    slot = (bi * J + ji)[hit]
    zz = 1.0 / inv_z[hit]
    fh = fi[hit]
    depth = torch.full((B * J,), float("inf"), dtype=dtype, device=device)
    depth.scatter_reduce_(0, slot, zz, reduce="amin", include_self=True)
    win = torch.full((B * J,), -1, dtype=torch.long, device=device)
    top = zz == depth[slot]
    win.scatter_reduce_(0, slot[top], fh[top], reduce="amax", include_self=True)
    depth, win = depth.view(B, J), win.view(B, J)
    label = torch.where(win >= 0, face_label[win.clamp(min=0)], torch.full_like(win, -1))
    return depth, label


def mano_visibility(hand_model, pose, shape, trans, mano_valid, cam: Camera, image_hw, joints_cam) -> np.ndarray:
    """(42,) float visibility of ``joints_cam (42,3)`` mm against the MANO meshes rendered in ``cam``.

    ``hand_model`` a :class:`handflow.hand.model.HandModel`; ``pose (2,48)``, ``shape (2,10)``, ``trans (2,3)``
    metres, ``mano_valid (2,)`` per hand (right, left), world frame; ``image_hw = (H, W)`` px.
    Hands without parameters (``mano_valid == 0``) do not occlude; their joints are tested against
    the other hand only.
    """
    with torch.no_grad():
        t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)[None]  # noqa: E731
        verts = hand_model.mesh_from_mano(t(pose), t(shape), t(trans))[0]  # (2,V,3) mm world
        faces = torch.as_tensor(np.asarray(hand_model.faces), dtype=torch.long)
        V = verts.shape[1]
        keep = [h for h in range(2) if mano_valid[h] > 0]
        vs = torch.cat([verts[h] for h in keep], 0).double()
        fs = torch.cat([faces[h] + k * V for k, h in enumerate(keep)], 0)
        labels = torch.cat([torch.full((faces.shape[1],), h, dtype=torch.long) for h in keep])
        vc = cam.world_to_cam(vs)
        frags = rasterize(vc[None], fs, torch.as_tensor(cam.K), image_hw, labels)
        vis = visibility(torch.as_tensor(joints_cam)[None], frags, torch.as_tensor(cam.K), torch.as_tensor(JOINT_HAND))[0]
    return vis.numpy().astype(np.float64)
