"""A vectorised z-buffer rasteriser in torch, skin shading, backgrounds and per-joint visibility.

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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

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


def vertex_normals(verts: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """(B,N,3), (F,3) -> (B,N,3) unit area-weighted vertex normals (winding-dependent sign)."""
    tri = verts[:, faces]  # (B,F,3,3)
    fn = torch.cross(tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 0], dim=-1)
    vn = torch.zeros_like(verts)
    for k in range(3):
        vn.index_add_(1, faces[:, k], fn)
    return F.normalize(vn, dim=-1, eps=1e-12)


def interpolate(frags: Fragments, faces: torch.Tensor, attr: torch.Tensor) -> torch.Tensor:
    """Interpolate per-vertex ``attr (B,N,C)`` at every pixel: (B,H,W,C) (zeros where empty)."""
    B, H, W = frags.face.shape
    f = frags.face.clamp(min=0).view(B, -1)  # (B,P)
    vid = faces[f]  # (B,P,3)
    C = attr.shape[-1]
    vals = torch.gather(attr, 1, vid.reshape(B, -1, 1).expand(-1, -1, C)).view(B, H * W, 3, C)
    out = (vals * frags.bary.view(B, H * W, 3, 1)).sum(2)
    return (out * frags.mask.view(B, H * W, 1)).view(B, H, W, C)


def shade(
    frags: Fragments,
    verts_cam: torch.Tensor,
    faces: torch.Tensor,
    albedo: torch.Tensor,
    light_dir: torch.Tensor,
    light_rgb: torch.Tensor,
    ambient: torch.Tensor,
    specular: float = 0.08,
) -> torch.Tensor:
    """Lambert + ambient (+ a faint Blinn-Phong highlight), two-sided, in camera coordinates.

    ``albedo (B,N,3)`` per-vertex colour in [0,1]; ``light_dir (B,3)`` unit vector from the surface
    towards the light (camera frame); ``light_rgb (B,3)``; ``ambient (B,)``. Returns (B,H,W,3) in [0,1]
    (zeros where empty). Only covered pixels are computed.
    """
    faces = torch.as_tensor(faces, dtype=torch.long, device=verts_cam.device)
    B, H, W = frags.face.shape
    dtype = verts_cam.dtype
    out = torch.zeros((B * H * W, 3), dtype=dtype, device=verts_cam.device)
    pix = torch.nonzero(frags.mask.reshape(-1), as_tuple=True)[0]
    if pix.numel() == 0:
        return out.view(B, H, W, 3)
    b = torch.div(pix, H * W, rounding_mode="floor")
    vid = faces[frags.face.reshape(-1)[pix]]  # (P,3)
    bary = frags.bary.reshape(-1, 3)[pix].to(dtype)[..., None]  # (P,3,1)
    vn = vertex_normals(verts_cam, faces)
    N = verts_cam.shape[1]
    flat_idx = (b[:, None] * N + vid).reshape(-1)

    def interp(attr):
        return (attr.reshape(B * N, -1)[flat_idx].view(-1, 3, attr.shape[-1]) * bary).sum(1)

    n = F.normalize(interp(vn), dim=-1, eps=1e-12)
    view = F.normalize(-interp(verts_cam), dim=-1, eps=1e-12)
    n = torch.where((n * view).sum(-1, keepdim=True) < 0, -n, n)
    col = interp(albedo.to(dtype))
    L = light_dir.to(dtype)[b]
    lc = light_rgb.to(dtype)[b]
    diff = (n * L).sum(-1, keepdim=True).clamp(min=0.0)
    half = F.normalize(L + view, dim=-1, eps=1e-12)
    spec = (n * half).sum(-1, keepdim=True).clamp(min=0.0) ** 24 * specular
    out[pix] = (col * (ambient.to(dtype)[b][:, None] + diff * lc) + spec * lc).clamp(0.0, 1.0)
    return out.view(B, H, W, 3)


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


# ----------------------------------------------------------------------------------------------
# Backgrounds and skin


SKIN_TONES = np.array(
    [  # sRGB in [0,1], from very light to very dark skin
        [0.96, 0.80, 0.69],
        [0.92, 0.72, 0.60],
        [0.87, 0.67, 0.53],
        [0.78, 0.57, 0.44],
        [0.68, 0.47, 0.34],
        [0.55, 0.37, 0.25],
        [0.42, 0.27, 0.18],
        [0.30, 0.19, 0.13],
    ]
)


def random_skin(rng: np.random.Generator) -> np.ndarray:
    """A skin albedo (3,) in [0,1]: a random mix of two neighbouring tones of :data:`SKIN_TONES`, jittered."""
    i = rng.uniform(0, len(SKIN_TONES) - 1)
    k = int(i)
    a = i - k
    tone = SKIN_TONES[k] * (1 - a) + SKIN_TONES[min(k + 1, len(SKIN_TONES) - 1)] * a
    tone = tone * rng.uniform(0.92, 1.08) + rng.normal(0, 0.02, size=3)
    return np.clip(tone, 0.05, 1.0)


def skin_albedo(rng: np.random.Generator, base: np.ndarray, n_verts: int) -> np.ndarray:
    """(n_verts,3) per-vertex albedo: ``base`` with smooth-ish blotches so the skin has some texture."""
    noise = rng.normal(0.0, 0.035, size=(n_verts, 1)) + rng.normal(0.0, 0.012, size=(n_verts, 3))
    return np.clip(base[None] * (1.0 + noise), 0.0, 1.0)


_NOISE_BANK: np.ndarray | None = None


def noise_like(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """(H,W,3) float32 standard-normal-like pixel noise: a random window (offset and flips drawn from
    ``rng``) of a fixed 640 x 640 bank (seeded, so deterministic); much cheaper than fresh normals."""
    global _NOISE_BANK
    if _NOISE_BANK is None:
        _NOISE_BANK = np.random.default_rng(12345).standard_normal((640, 640, 3), dtype=np.float32)
    bank = _NOISE_BANK
    if height > bank.shape[0] or width > bank.shape[1]:
        return rng.standard_normal((height, width, 3), dtype=np.float32)
    y = int(rng.integers(0, bank.shape[0] - height + 1))
    x = int(rng.integers(0, bank.shape[1] - width + 1))
    win = bank[y:y + height, x:x + width]
    flip = int(rng.integers(0, 4))
    if flip & 1:
        win = win[::-1]
    if flip & 2:
        win = win[:, ::-1]
    return win


def _upsample_matrix(n_out: int, n_in: int) -> np.ndarray:
    """(n_out, n_in) linear-interpolation weights, corners aligned."""
    pos = np.linspace(0.0, n_in - 1, n_out, dtype=np.float32)
    i0 = np.clip(np.floor(pos).astype(int), 0, max(n_in - 2, 0))
    frac = pos - i0
    M = np.zeros((n_out, n_in), dtype=np.float32)
    M[np.arange(n_out), i0] += 1.0 - frac
    M[np.arange(n_out), np.minimum(i0 + 1, n_in - 1)] += frac
    return M


def random_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """(H,W,3) float32 in [0,1]: a smooth gradient, low-frequency colour noise, a few random shapes
    (rectangles, ellipses, stripes; sometimes skin-coloured, so colour alone does not find hands)
    and fine texture noise. Different for every call."""
    yy = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    xx = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    c0, c1 = rng.uniform(0, 1, 3).astype(np.float32), rng.uniform(0, 1, 3).astype(np.float32)
    ang = rng.uniform(0, 2 * np.pi)
    t = float(np.cos(ang)) * xx + float(np.sin(ang)) * yy
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    img = c0 + (c1 - c0) * t[..., None]
    g = int(rng.integers(2, 7))
    grid = rng.normal(0, rng.uniform(0.03, 0.15), size=(3, g, g)).astype(np.float32)
    img += (_upsample_matrix(height, g) @ grid @ _upsample_matrix(width, g).T).transpose(1, 2, 0)
    for _ in range(int(rng.integers(0, 7))):
        kind = int(rng.choice(3, p=[0.45, 0.45, 0.1]))
        col = (random_skin(rng) if rng.uniform() < 0.15 else rng.uniform(0, 1, 3)).astype(np.float32)
        alpha = np.float32(rng.uniform(0.4, 1.0))
        cx, cy = rng.uniform(-0.1, 1.1) * width, rng.uniform(-0.1, 1.1) * height
        sx, sy = rng.uniform(0.05, 0.45) * width, rng.uniform(0.05, 0.45) * height
        x0, x1 = int(max(cx - sx / 2, 0)), int(min(cx + sx / 2, width))
        y0, y1 = int(max(cy - sy / 2, 0)), int(min(cy + sy / 2, height))
        if kind == 2:
            a = rng.uniform(0, np.pi)
            period = rng.uniform(6, 30)
            thr = rng.uniform(-0.3, 0.6)
            yi, xi = np.arange(height, dtype=np.float32)[:, None], np.arange(width, dtype=np.float32)[None, :]
            m = np.sin((float(np.cos(a)) * xi + float(np.sin(a)) * yi) * float(2 * np.pi / period)) > thr
            img = np.where(m[..., None], img * (1 - alpha / 2) + col * (alpha / 2), img)
            continue
        if x1 <= x0 or y1 <= y0:
            continue
        patch = img[y0:y1, x0:x1]
        if kind == 0:
            img[y0:y1, x0:x1] = patch * (1 - alpha) + col * alpha
        else:
            yi = (np.arange(y0, y1, dtype=np.float32)[:, None] - float(cy)) / float(sy)
            xi = (np.arange(x0, x1, dtype=np.float32)[None, :] - float(cx)) / float(sx)
            m = (xi * xi + yi * yi < 0.25)[..., None]
            img[y0:y1, x0:x1] = np.where(m, patch * (1 - alpha) + col * alpha, patch)
    img += noise_like(rng, height, width) * np.float32(rng.uniform(0.005, 0.04))
    return np.clip(img, 0.0, 1.0)


def random_lighting(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, float]:
    """(light_dir (3,) in camera coordinates, pointing from the scene towards the light, mostly from the
    camera's side; light colour (3,); ambient)."""
    d = rng.normal(size=3)
    d[2] = -abs(d[2]) - 0.3  # towards the camera (camera looks along +Z)
    d /= np.linalg.norm(d)
    temp = rng.uniform(-1, 1)
    rgb = np.array([1.0 + 0.12 * temp, 1.0, 1.0 - 0.12 * temp]) * rng.uniform(0.7, 1.1)
    return d, rgb, float(rng.uniform(0.3, 0.55))
