"""How the synthetic hands and their surroundings look: skin, lighting, backgrounds and pixel noise.

Shading (:func:`shade`) colours the pixels that :func:`handflow.data.raster.rasterize` covered:
Lambert + ambient with a faint Blinn-Phong highlight, two-sided, in camera coordinates (mm), from
per-vertex albedo (sRGB in [0, 1]) and area-weighted vertex normals (:func:`vertex_normals`).
The rest draws from a ``numpy`` generator the caller owns, so a seeded generator gives the same image:
:func:`random_skin` / :func:`skin_albedo` (a subject's skin), :func:`random_lighting` (one image's
light), :func:`random_background` and :func:`noise_like` (``(H, W, 3)`` float32 in [0, 1] / noise).
The order of the draws is part of the synthetic capture's bytes: keep it.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from handflow.data.raster import Fragments


def vertex_normals(verts: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """(B,N,3), (F,3) -> (B,N,3) unit area-weighted vertex normals (winding-dependent sign)."""
    tri = verts[:, faces]  # (B,F,3,3)
    fn = torch.cross(tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 0], dim=-1)
    vn = torch.zeros_like(verts)
    for k in range(3):
        vn.index_add_(1, faces[:, k], fn)
    return F.normalize(vn, dim=-1, eps=1e-12)


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
