"""Synthetic MANO: a procedurally built, MANO-format hand model that smplx loads like the real one.

The real MANO files are licence-restricted, so the project generates its own ``MANO_RIGHT.pkl`` /
``MANO_LEFT.pkl``: plain-numpy pickles holding the keys smplx reads plus ``hands_coeffs`` (pose-prior
samples, as in the real files) and a few extras (``tip_vertex_ids``, ``prior_axes``,
``prior_limits``, ``synthetic_version``) that smplx ignores.

Geometry convention (rest pose = the MANO-like flat hand, metres, wrist joint at the origin):

* right hand: fingers along **+x**, back of the hand **+y** (palm normal -y), thumb on the **-z**
  side. (Check of chirality: for a right hand, thumb side = finger direction x palm normal,
  ``x cross -y = -z``.)
* left hand = the right hand mirrored by ``x -> -x``: vertices, joints and shape directions have
  their x negated, faces have their winding flipped (outward normals stay outward), pose vectors
  mirror as pseudo-vectors ``(ax, ay, az) -> (ax, -ay, -az)`` (so ``hands_mean`` and
  ``hands_components`` mirror, ``hands_coeffs`` are unchanged) and pose correctives follow
  ``posedirs_L = M posedirs_R S`` with ``M = diag(-1, 1, 1)`` and ``S`` the sign pattern that
  ``R -> M R M`` puts on the 9 entries of ``R - I``. So posing the left hand with the mirrored pose
  gives exactly the mirrored surface.

Topology (one closed, consistently oriented genus-0 surface; ~900 vertices): the palm is a tube of
rounded-box (superellipse) rings from a capped wrist to the knuckles; the distal palm ring is
stitched to the base rings of the four finger tubes (dorsal and palmar strips, a web quad between
neighbouring fingers, fans at the two outer sides); the thumb tube leaves through a rectangular hole
in the palm's thenar corner, joined to it by two outward-bulging collar rings (the thenar eminence);
every finger ends in a hemispherical cap whose apex vertex is the
fingertip keypoint. Joints are regressed as means of vertex rings (``J_regressor`` rows sum to 1).

Joint order and kinematic tree are MANO's: 0 wrist, 1-3 index, 4-6 middle, 7-9 pinky, 10-12 ring,
13-15 thumb (parents ``[-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14]``, the root stored as
4294967295 like the real files).

Pose prior: every finger joint has an anatomical frame (flexion axis, abduction axis = palmar normal,
twist axis = bone) and box joint limits on the rotation-vector coordinates in that frame
(``prior_axes (15,3,3)`` rows = axes, ``prior_limits (15,3,2)`` radians). ``N`` poses are sampled
from a latent grasp model (overall closure, per-finger closure, spread, thumb opposition) and
clipped to the limits; ``hands_mean`` is their mean, ``hands_components`` the PCA rows
(``pose = coeffs @ hands_components + hands_mean``, as smplx uses them) and ``hands_coeffs`` the
projected samples.

Units: metres; shape directions in metres per unit beta; posedirs in metres per unit of the
``R - I`` feature.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from handflow.cache import cache_dir
from handflow.errors import HandflowError
from handflow.io import atomic_path


# Stored in every generated file; ``default_mano_dir`` regenerates cached files whose version differs.
# Pinned: the suffix is the digest of this generator's source when the files last changed (it used to be
# recomputed from the source, so moving or re-importing the module changed every file and every capture's
# digest). A change to what the generator writes must bump it: ``tests/handflow/synth/test_synth_mano.py``
# pins a digest of the generated arrays and fails until both are updated.
SYNTHETIC_VERSION = "handflow-synthetic-mano-2+78022f7c1c41"
NUM_JOINTS = 16
NUM_BETAS = 10
NUM_PRIOR_SAMPLES = 2000
ROOT_PARENT = 4294967295  # uint32(-1): how the real MANO kintree_table marks the root
PARENTS = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14)
TIP_ORDER = ("thumb", "index", "middle", "ring", "pinky")
MIRROR = np.diag([-1.0, 1.0, 1.0])
# Sign of each entry of R - I (row-major) under R -> M R M.
_MIRROR_FEATURE_SIGNS = np.outer(np.diag(MIRROR), np.diag(MIRROR)).reshape(9)


@dataclass(frozen=True)
class _Finger:
    name: str
    joints: tuple[int, int, int]  # MANO joint ids MCP, PIP, DIP
    mcp: tuple[float, float, float]  # metres, before the wrist is moved to the origin
    splay: float  # rad, + rotates the finger toward the pinky (+z)
    lengths: tuple[float, float, float]  # MCP->PIP, PIP->DIP, DIP->tip (m)
    radius: float  # m at the MCP
    spread_abd: float  # abduction of a spread hand (rad, + toward the pinky)
    fist_abd: float  # abduction in a fist: fingers converge toward the middle/index


# Ordered thumb side -> pinky side (-z -> +z): the palm is stitched to them in this order.
# Adult proportions: wrist -> middle tip ~185 mm, palm breadth ~85 mm.
_FINGERS = (
    _Finger("index", (1, 2, 3), (0.086, 0.0, -0.0310), -0.07, (0.041, 0.024, 0.021), 0.0097, -0.20, 0.06),
    _Finger("middle", (4, 5, 6), (0.090, 0.0, -0.0100), 0.00, (0.046, 0.028, 0.023), 0.0100, 0.00, 0.00),
    _Finger("ring", (10, 11, 12), (0.085, 0.0, 0.0105), 0.07, (0.043, 0.027, 0.022), 0.0094, 0.14, -0.06),
    _Finger("pinky", (7, 8, 9), (0.076, 0.0, 0.0300), 0.16, (0.033, 0.020, 0.020), 0.0085, 0.30, -0.14),
)
_THUMB_JOINTS = (13, 14, 15)
_THUMB_ANGLE = np.deg2rad(48.0)  # between the thumb and the index direction in the flat hand
_THUMB_DIP = 0.35  # palmar component of the thumb direction (before normalising)
_COLLAR_TAUS = (0.35, 0.7)  # thenar rings between the palm's thumb hole and the thumb's MCP ring
_COLLAR_BULGE = 0.006  # m, outward bulge of the thenar rings
_CMC_HOLE_MIX = 0.65  # CMC joint = mix * mean(hole loop) + (1 - mix) * mean(palm ring)
_THUMB_LENGTHS = (0.040, 0.032, 0.031)  # CMC->MCP, MCP->IP, IP->tip from the (regressed) CMC joint
_THUMB_RADII = (0.0112, 0.0106, 0.0103)  # at the MCP, mid-phalanx, IP

_HALF = 5  # a finger ring has 2*_HALF vertices: thumb-side point, dorsal arc, pinky-side point, palmar arc
_NF = 2 * _HALF
_SIDE = 3  # palm vertices on each outer side wall between the dorsal and palmar chains
_PALM_T = (0.0, 0.22, 0.40, 0.62, 0.80, 0.92, 1.0)  # palm rings, wrist (0) -> knuckles (1)
_WRIST_RING_FOR_JOINT = 1  # the wrist joint is the mean of this palm ring
_HOLE_RING = 2  # thumb hole spans palm rings 2..3 ...
_HOLE_COLS = 5  # ... and this many column intervals at the thenar corner ...
_HOLE_K0 = _HALF + 2  # ... starting at this palmar vertex of the index finger's column set
_NT = 2 + 2 * _HOLE_COLS  # thumb ring vertex count = hole perimeter
_FLAT_FINGER = 0.88  # finger cross-sections are a little flatter dorsal-palmar than wide

# Joint limits on (flexion, abduction, twist) rotation-vector coordinates, radians.
_LIMITS_FINGER = (
    ((-0.35, 1.60), (-0.45, 0.45), (-0.20, 0.20)),  # MCP
    ((-0.05, 1.90), (-0.10, 0.10), (-0.10, 0.10)),  # PIP
    ((-0.15, 1.45), (-0.08, 0.08), (-0.08, 0.08)),  # DIP
)
_LIMITS_THUMB = (
    ((-0.35, 0.90), (-0.50, 0.60), (-0.30, 0.70)),  # CMC: flexion across the palm, abduction, opposition twist
    ((-0.20, 1.10), (-0.20, 0.20), (-0.20, 0.20)),  # MCP
    ((-0.35, 1.40), (-0.10, 0.10), (-0.10, 0.10)),  # IP
)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _ramp(s: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return _smoothstep((s - lo) / (hi - lo))


class _Builder:
    """Accumulates vertices (with per-vertex metadata for skinning/shape/correctives) and faces."""

    def __init__(self):
        self.points: list[np.ndarray] = []
        self.faces: list[tuple[int, int, int]] = []
        self.count = 0

    def add(self, pts: np.ndarray) -> np.ndarray:
        pts = np.asarray(pts, dtype=np.float64).reshape(-1, 3)
        ids = np.arange(self.count, self.count + len(pts))
        self.points.append(pts)
        self.count += len(pts)
        return ids

    def quad(self, a: int, b: int, c: int, d: int) -> None:
        # (a, b) runs along a ring counter-clockwise about the tube axis, (b, c) along the axis:
        # the triangles then face outward.
        self.faces.append((a, b, c))
        self.faces.append((a, c, d))

    def strip(self, ring0: np.ndarray, ring1: np.ndarray) -> None:
        n = len(ring0)
        for k in range(n):
            k1 = (k + 1) % n
            self.quad(ring0[k], ring0[k1], ring1[k1], ring1[k])


@dataclass
class _Tube:
    """Rings of one finger/thumb tube: ids (R, n), arc position s (R,), ring angle phi (n,)."""

    ids: np.ndarray
    s: np.ndarray
    phi: np.ndarray
    radial: np.ndarray  # (R, n, 3) unit outward directions
    apex: int
    frame: tuple[np.ndarray, np.ndarray, np.ndarray]  # d (bone), n (dorsal), u = d x n
    origin: np.ndarray  # where s = 0 (the MCP / CMC joint)
    joint_s: tuple[float, float, float]  # arc positions of the chain's three joints
    joint_width: tuple[float, float, float]  # blend half-widths of the three joints
    root_blend: tuple[float, float]  # s range over which weight moves from the wrist to the first joint


def _ring_points(center, d, n, u, radius, flat, n_vertices):
    phi = 2.0 * np.pi * np.arange(n_vertices) / n_vertices
    # phi = 0 on the thumb side (-u), pi/2 dorsal (+n), pi on the pinky side (+u): counter-clockwise about d.
    radial = -np.cos(phi)[:, None] * u + np.sin(phi)[:, None] * n
    pts = center + radius * (-np.cos(phi)[:, None] * u + flat * np.sin(phi)[:, None] * n)
    return pts, radial, phi


def _tube_rings(origin, d, n, s_list, radii, flat, n_vertices, tip_length):
    """Ring centres along a straight bone line plus a hemispherical cap ending at ``tip_length``."""
    u = np.cross(d, n)
    r_end = radii[-1]
    s_c = tip_length - r_end
    s_all, r_all = list(s_list), list(radii[:-1])
    s_all.append(s_c)
    r_all.append(r_end)
    for theta in np.deg2rad([40.0, 70.0]):
        s_all.append(s_c + r_end * np.sin(theta))
        r_all.append(r_end * np.cos(theta))
    pts, rad = [], []
    for s, r in zip(s_all, r_all):
        p, radial, phi = _ring_points(origin + s * d, d, n, u, r, flat, n_vertices)
        pts.append(p)
        rad.append(radial)
    apex = origin + tip_length * d
    return np.array(pts), np.array(rad), phi, np.array(s_all), apex, u


def _finger_geometry(f: _Finger):
    d = np.array([np.cos(f.splay), 0.0, np.sin(f.splay)])
    n = np.array([0.0, 1.0, 0.0])
    mcp = np.array(f.mcp)
    l1, l2, l3 = f.lengths
    total = l1 + l2 + l3
    r0 = f.radius

    def radius(s):  # taper toward the tip, slightly fuller at the knuckles
        bump = 0.04 * (np.exp(-(((s - l1) / 0.004) ** 2)) + np.exp(-(((s - l1 - l2) / 0.004) ** 2)))
        return r0 * (1.0 - 0.25 * np.clip(s / total, 0.0, 1.0)) * (1.0 + bump)

    s_list = [-0.006, 0.0, 0.5 * l1, l1, l1 + 0.5 * l2, l1 + l2]
    r_end = radius(total) * 0.95
    s_list.append(l1 + l2 + 0.5 * (total - r_end - l1 - l2))
    radii = [radius(s) for s in s_list] + [r_end]
    return mcp, d, n, s_list, radii, total


def _superellipse(psi, width, h_dorsal, h_palmar, exponent):
    c, s = np.cos(psi), np.sin(psi)
    z = width * np.sign(c) * np.abs(c) ** exponent
    y = np.where(s >= 0, h_dorsal, h_palmar) * np.sign(s) * np.abs(s) ** exponent
    return z, y


def _build_right_hand():
    """The right-hand template and everything needed to derive weights, shapes and correctives."""
    b = _Builder()

    # Finger base rings first: the palm's distal ring is laid out to meet them.
    fingers = []
    for f in _FINGERS:
        mcp, d, n, s_list, radii, total = _finger_geometry(f)
        pts, rad, phi, s_all, apex, u = _tube_rings(mcp, d, n, s_list, radii, _FLAT_FINGER, _NF, total)
        fingers.append(dict(spec=f, mcp=mcp, d=d, n=n, u=u, pts=pts, rad=rad, phi=phi, s=s_all, apex=apex))

    # Palm columns, in ring order (counter-clockwise about +x): dorsal chain (-z -> +z), pinky-side
    # wall, palmar chain (+z -> -z), thumb-side wall. A chain column is tied to one finger vertex.
    cols = []
    for i in range(4):
        cols += [("chain", i, k) for k in range(_HALF + 1)]
    cols += [("side", +1, j) for j in range(1, _SIDE + 1)]
    for i in reversed(range(4)):
        cols += [("chain", i, k % _NF) for k in range(_HALF, _NF + 1)]
    cols += [("side", -1, j) for j in range(1, _SIDE + 1)]
    n_cols = len(cols)
    dorsal = np.array([c[0] == "chain" and idx < 4 * (_HALF + 1) for idx, c in enumerate(cols)])

    base = np.full((n_cols, 3), np.nan)  # the finger base-ring vertex each chain column meets
    for idx, c in enumerate(cols):
        if c[0] == "chain":
            base[idx] = fingers[c[1]]["pts"][0, c[2]]
    chain = ~np.isnan(base[:, 0])
    z_min, z_max = base[chain, 2].min(), base[chain, 2].max()
    z0_d = 0.5 * (z_min + z_max)
    w_d = (z_max - z0_d) / 0.93
    zeta = np.clip((base[:, 2] - z0_d) / w_d, -0.97, 0.97)
    cpsi = np.sign(zeta) * zeta**2  # inverse of the superellipse's |cos|^0.5 map
    psi = np.where(dorsal, 1.0, -1.0) * np.arccos(np.clip(cpsi, -1.0, 1.0))
    x_d = base[:, 0] - 0.007
    # Side walls: angles between the chain ends, x of the outer finger's side point.
    plus = [idx for idx, c in enumerate(cols) if c[0] == "side" and c[1] > 0]
    minus = [idx for idx, c in enumerate(cols) if c[0] == "side" and c[1] < 0]
    a, bb = plus[0] - 1, plus[-1] + 1  # last dorsal, first palmar
    for j, idx in enumerate(plus, 1):
        psi[idx] = psi[a] + (psi[bb] - psi[a]) * j / (_SIDE + 1)
        x_d[idx] = 0.5 * (x_d[a] + x_d[bb])
    a, bb = minus[0] - 1, 0  # last palmar, first dorsal (wrapping through psi = -pi)
    for j, idx in enumerate(minus, 1):
        psi[idx] = psi[a] + ((psi[bb] - 2 * np.pi) - psi[a]) * j / (_SIDE + 1)
        x_d[idx] = 0.5 * (x_d[a] + x_d[bb])

    # Palm rings: blend the wrist's ellipse into the knuckles' rounded box.
    x_w = -0.022
    palm = np.zeros((len(_PALM_T), n_cols, 3))
    for r, t in enumerate(_PALM_T):
        g = 1.0 - (1.0 - t) ** 1.8  # the palm widens quickly after the wrist
        width = (1 - g) * 0.029 + g * w_d
        h_d = (1 - g) * 0.0175 + g * 0.0115 + 0.002 * np.sin(np.pi * t)
        h_p = (1 - g) * 0.0175 + g * 0.0135 + 0.003 * np.sin(np.pi * t)
        expo = (1 - g) * 0.8 + g * 0.5
        z, y = _superellipse(psi, width, h_d, h_p, expo)
        palm[r, :, 0] = x_w + t * (x_d - x_w)
        palm[r, :, 1] = y
        palm[r, :, 2] = (1 - g) * 0.5 * z0_d + g * z0_d + z
    # The distal ring meets the finger vertices laterally exactly.
    palm[-1, chain, 2] = base[chain, 2]

    palm_ids = np.stack([b.add(ring) for ring in palm])  # (K, n_cols)
    wrist_center = b.add(np.array([[x_w - 0.004, 0.0, 0.5 * z0_d]]))[0]

    # Palm tube, with the thumb hole removed.
    hole_c0 = next(idx for idx, c in enumerate(cols) if c == ("chain", 0, _HOLE_K0))
    hole_cols = [(hole_c0 + j) % n_cols for j in range(_HOLE_COLS)]
    for r in range(len(_PALM_T) - 1):
        for k in range(n_cols):
            if r == _HOLE_RING and k in hole_cols:
                continue
            k1 = (k + 1) % n_cols
            b.quad(palm_ids[r, k], palm_ids[r, k1], palm_ids[r + 1, k1], palm_ids[r + 1, k])
    for k in range(n_cols):  # wrist cap
        b.faces.append((wrist_center, palm_ids[0, (k + 1) % n_cols], palm_ids[0, k]))

    # Finger tubes and their stitching to the distal palm ring.
    distal = palm_ids[-1]
    tubes = []
    for i, fg in enumerate(fingers):
        f = fg["spec"]
        ids = np.stack([b.add(ring) for ring in fg["pts"]])
        apex = b.add(fg["apex"][None])[0]
        for r in range(len(ids) - 1):
            b.strip(ids[r], ids[r + 1])
        for k in range(_NF):
            b.faces.append((ids[-1, k], ids[-1, (k + 1) % _NF], apex))
        l1, l2, _ = f.lengths
        tubes.append(_Tube(ids, fg["s"], fg["phi"], fg["rad"], apex, (fg["d"], fg["n"], fg["u"]), fg["mcp"],
                           (0.0, l1, l1 + l2), (0.008, 0.0055, 0.0045), (-0.020, 0.006)))
        d_cols = [idx for idx, c in enumerate(cols) if dorsal[idx] and c[1] == i]
        p_cols = [idx for idx, c in enumerate(cols) if c[0] == "chain" and not dorsal[idx] and c[1] == i]
        for k in range(_HALF):  # dorsal strip
            b.quad(distal[d_cols[k]], distal[d_cols[k + 1]], ids[0, k + 1], ids[0, k])
        for j in range(_HALF):  # palmar strip, finger vertices _HALF.._NF
            k = _HALF + j
            b.quad(distal[p_cols[j]], distal[p_cols[j + 1]], ids[0, (k + 1) % _NF], ids[0, k])
    for i in range(3):  # webs between neighbouring fingers
        left, right = tubes[i].ids[0], tubes[i + 1].ids[0]
        cd_a = [idx for idx, c in enumerate(cols) if dorsal[idx] and c[1] == i][-1]
        cp_a = [idx for idx, c in enumerate(cols) if c[0] == "chain" and not dorsal[idx] and c[1] == i][0]
        b.quad(distal[cd_a], distal[cd_a + 1], right[0], left[_HALF])
        b.quad(distal[cp_a - 1], distal[cp_a], left[_HALF], right[0])
    # Outer side walls fan into the side points of the index and pinky base rings.
    run = [plus[0] - 1] + plus + [plus[-1] + 1]
    for a_, c_ in zip(run[:-1], run[1:]):
        b.faces.append((distal[a_], distal[c_], tubes[3].ids[0, _HALF]))
    run = [minus[0] - 1] + minus + [0]
    for a_, c_ in zip(run[:-1], run[1:]):
        b.faces.append((distal[a_], distal[c_], tubes[0].ids[0, 0]))

    # Thumb: leaves through the hole; its CMC joint is a fixed mix of the hole loop and a palm ring.
    r0 = _HOLE_RING
    loop = [palm_ids[r0, c] for c in hole_cols + [(hole_cols[-1] + 1) % n_cols]]
    loop += [palm_ids[r0 + 1, c] for c in reversed(hole_cols + [(hole_cols[-1] + 1) % n_cols])]
    loop = np.array(loop)
    all_pts = np.concatenate(b.points)
    cmc_rows = {int(v): _CMC_HOLE_MIX / len(loop) for v in loop}
    for v in palm_ids[r0]:
        cmc_rows[int(v)] = cmc_rows.get(int(v), 0.0) + (1.0 - _CMC_HOLE_MIX) / n_cols
    cmc = sum(w * all_pts[v] for v, w in cmc_rows.items())
    d_t = _unit(np.array([np.cos(_THUMB_ANGLE), -_THUMB_DIP, -np.sin(_THUMB_ANGLE)]))
    p_t = np.array([0.50, -0.66, 0.56])
    p_t = _unit(p_t - p_t.dot(d_t) * d_t)  # palmar side of the thumb (its pad)
    n_t = -p_t
    l1, l2, l3 = _THUMB_LENGTHS
    total = l1 + l2 + l3
    s_list = [l1, l1 + 0.5 * l2, l1 + l2]
    r_end = 0.0092
    s_list.append(l1 + l2 + 0.5 * (total - r_end - l1 - l2))
    radii = list(_THUMB_RADII) + [0.5 * (_THUMB_RADII[-1] + r_end), r_end]
    pts, rad, phi, s_all, apex_p, u_t = _tube_rings(cmc, d_t, n_t, s_list, radii, 0.92, _NT, total)
    # Rotate the loop's start to the MCP ring vertex it best matches (both run counter-clockwise
    # about the thumb axis, so only the offset is free).
    costs = [np.linalg.norm(all_pts[np.roll(loop, -o)] - pts[0], axis=1).sum() for o in range(_NT)]
    loop = np.roll(loop, -int(np.argmin(costs)))
    # Collar (the thenar): rings blended from the hole loop to the MCP ring, bulging outward so the
    # thumb leaves the palm without folding back into it.
    collar, collar_rad, collar_s = [], [], []
    for tau in _COLLAR_TAUS:
        ring = (1 - tau) * all_pts[loop] + tau * pts[0]
        s_v = (ring - cmc) @ d_t
        out = ring - (cmc + s_v[:, None] * d_t)
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        collar.append(ring + _COLLAR_BULGE * np.sin(np.pi * tau) * out)
        collar_rad.append(out)
        collar_s.append(s_v.mean())
    pts = np.concatenate([np.array(collar), pts])
    rad = np.concatenate([np.array(collar_rad), rad])
    s_all = np.concatenate([collar_s, s_all])
    ids = np.stack([b.add(ring) for ring in pts])
    apex = b.add(apex_p[None])[0]
    b.strip(loop, ids[0])
    for r in range(len(ids) - 1):
        b.strip(ids[r], ids[r + 1])
    for k in range(_NT):
        b.faces.append((ids[-1, k], ids[-1, (k + 1) % _NT], apex))
    thumb = _Tube(ids, s_all, phi, rad, apex, (d_t, n_t, u_t), cmc, (0.0, l1, l1 + l2), (0.010, 0.007, 0.006),
                  (0.008, 0.030))

    verts = np.concatenate(b.points)
    faces = np.array(b.faces, dtype=np.int64)
    return dict(verts=verts, faces=faces, palm_ids=palm_ids, wrist_center=wrist_center, cols=cols,
                chain=chain, tubes=tubes, thumb=thumb, cmc_rows=cmc_rows, hole_loop=loop)


def _chain_weights(s, tube: _Tube, joints):
    """Weights over [wrist, j1, j2, j3] along a chain: smooth hand-overs at every joint."""
    t1 = _ramp(s, *tube.root_blend)
    t2 = _ramp(s, tube.joint_s[1] - tube.joint_width[1], tube.joint_s[1] + tube.joint_width[1])
    t3 = _ramp(s, tube.joint_s[2] - tube.joint_width[2], tube.joint_s[2] + tube.joint_width[2])
    w = np.zeros((len(s), NUM_JOINTS))
    w[:, 0] = 1 - t1
    w[:, joints[0]] = t1 - t2
    w[:, joints[1]] = t2 - t3
    w[:, joints[2]] = t3
    return w


def _skinning_weights(h) -> np.ndarray:
    verts = h["verts"]
    V = len(verts)
    W = np.zeros((V, NUM_JOINTS))
    # Tube vertices: by arc position along their chain.
    for tube, joints in [(t, f.joints) for t, f in zip(h["tubes"], _FINGERS)] + [(h["thumb"], _THUMB_JOINTS)]:
        ids = np.append(tube.ids.reshape(-1), tube.apex)
        s = np.append(np.repeat(tube.s, tube.ids.shape[1]), tube.s[-1] + 1.0)
        W[ids] = _chain_weights(s, tube, joints)
    # Palm vertices: wrist, blending into the MCP of the finger they face near the knuckles and into
    # the thumb's CMC around the thenar hole.
    palm_ids = h["palm_ids"]
    for col, c in enumerate(h["cols"]):
        finger = c[1] if c[0] == "chain" else (3 if c[1] > 0 else 0)
        tube = h["tubes"][finger]
        ids = palm_ids[:, col]
        s = (verts[ids] - tube.origin) @ tube.frame[0]
        W[ids] = _chain_weights(s, tube, _FINGERS[finger].joints)
    W[h["wrist_center"], 0] = 1.0
    thumb = h["thumb"]
    ids = palm_ids.reshape(-1)
    rel = verts[ids] - thumb.origin
    s = rel @ thumb.frame[0]
    rho = np.linalg.norm(rel - s[:, None] * thumb.frame[0], axis=1)
    w13 = _ramp(s, *thumb.root_blend) * (1 - _ramp(rho, 0.014, 0.026))
    W[ids] *= (1 - w13)[:, None]
    W[ids, _THUMB_JOINTS[0]] += w13
    return W


def _joint_regressor(h) -> np.ndarray:
    V = len(h["verts"])
    J = np.zeros((NUM_JOINTS, V))
    J[0, h["palm_ids"][_WRIST_RING_FOR_JOINT]] = 1.0 / h["palm_ids"].shape[1]
    for tube, joints in [(t, f.joints) for t, f in zip(h["tubes"], _FINGERS)] + [(h["thumb"], _THUMB_JOINTS)]:
        for js, j in zip(tube.joint_s, joints):
            match = np.flatnonzero(np.isclose(tube.s, js))
            if len(match):  # joints with a ring of their own: the ring's mean is its centre
                J[j, tube.ids[match[0]]] = 1.0 / tube.ids.shape[1]
    for v, w in h["cmc_rows"].items():
        J[_THUMB_JOINTS[0], v] = w
    return J


def _shape_dirs(h) -> np.ndarray:
    """10 shape directions (V,3,10), metres per unit beta, mutually orthogonal like MANO's PCA basis.

    Designed directions, in order: 0 overall size, 1 palm width, 2 finger length, 3 finger thickness,
    4 thumb length, 5 palm length, 6 palm thickness, 7 index longer / ring shorter, 8 pinky length,
    9 fleshy finger tips and palm pad. Fingers move rigidly with their MCP and the thumb with its
    (regressed) CMC joint, then stretch/thicken along their own axes. Each direction is then made
    orthogonal to the ones before it (Gram-Schmidt over the flattened displacement field) and rescaled
    to its designed magnitude, so the betas are identifiable (overall size is not also a mix of
    width, length and thickness) and keep their meaning to first order.
    """
    verts = h["verts"]
    V = len(verts)
    D = np.zeros((V, 3, NUM_BETAS))
    palm = np.append(h["palm_ids"].reshape(-1), h["wrist_center"])
    p = verts[palm]
    z_mid = p[:, 2].mean()
    knuckle = np.clip(p[:, 0] / 0.08, 0.0, 1.0)  # 0 at the wrist, 1 at the knuckles
    D[:, :, 0] = 0.07 * verts
    D[palm, 2, 1] = 0.10 * (p[:, 2] - z_mid) * (0.4 + 0.6 * knuckle)  # the knuckle end widens most
    D[palm, 0, 5] = 0.12 * np.maximum(p[:, 0] - 0.02, 0.0)  # the metacarpals lengthen, not the wrist
    D[palm, 1, 6] = 0.15 * p[:, 1] * np.clip(1.0 - ((p[:, 2] - z_mid) / 0.045) ** 2, 0.2, 1.0)
    palmar = palm[verts[palm, 1] < 0]
    D[palmar, 1, 9] += 0.10 * verts[palmar, 1]
    cmc_ids = np.array(list(h["cmc_rows"]))
    cmc_w = np.array(list(h["cmc_rows"].values()))
    tube_list = [(t, f.name) for t, f in zip(h["tubes"], _FINGERS)] + [(h["thumb"], "thumb")]
    carried = {}
    for tube, name in tube_list:  # rigid motion of each chain with its attachment point
        if name == "thumb":
            carried[name] = np.einsum("v,vck->ck", cmc_w, D[cmc_ids][:, :, [1, 5, 6]])
        else:
            # Nearest distal palm vertex on the finger's axis line stands in for the MCP.
            dist = np.linalg.norm(p - tube.origin, axis=1)
            carried[name] = D[palm[np.argmin(dist)]][:, [1, 5, 6]]
    for tube, name in tube_list:
        ids = tube.ids.reshape(-1)
        s = np.repeat(tube.s, tube.ids.shape[1])
        radial = verts[ids] - (tube.origin + s[:, None] * tube.frame[0])
        all_ids = np.append(ids, tube.apex)
        s_all = np.append(s, (verts[tube.apex] - tube.origin) @ tube.frame[0])
        stretch = np.maximum(s_all, 0.0)[:, None] * tube.frame[0]
        D[all_ids[:, None], :, [1, 5, 6]] = carried[name][None]
        if name == "thumb":
            D[all_ids, :, 4] = 0.08 * stretch
        else:
            D[all_ids, :, 2] = 0.06 * stretch
            if name == "index":
                D[all_ids, :, 7] = 0.06 * stretch
            elif name == "ring":
                D[all_ids, :, 7] = -0.06 * stretch
            elif name == "pinky":
                D[all_ids, :, 8] = 0.08 * stretch
        D[ids, :, 3] = 0.12 * radial
        frac = np.clip(s / (tube.joint_s[2] + 0.02), 0, 1)[:, None]
        D[ids, :, 9] += 0.10 * frac * radial
    flat = D.reshape(-1, NUM_BETAS)
    out = np.zeros_like(flat)
    for k in range(NUM_BETAS):
        r = flat[:, k] - out[:, :k] @ np.linalg.lstsq(out[:, :k], flat[:, k], rcond=None)[0] if k else flat[:, k]
        out[:, k] = r * (np.abs(flat[:, k]).max() / np.abs(r).max())
    return out.reshape(V, 3, NUM_BETAS)


def _pose_dirs(h) -> np.ndarray:
    """Pose correctives (V,3,135): knuckle bulges, linear in the ``R - I`` features of each joint.

    For a joint rotating about its flexion axis ``a`` by ``theta``: the dorsal skin over it is pushed
    outward by ``alpha * sin(theta)`` and the palmar flesh bulges by ``beta * (1 - cos(theta))``.
    ``sin`` of the flexion component is ``a . vee((R - R^T) / 2)`` and ``1 - cos`` is
    ``-trace(R - I) / 2``: both linear in ``R - I``, as MANO's posedirs require.
    """
    V = len(h["verts"])
    P = np.zeros((V, 3, 9 * (NUM_JOINTS - 1)))
    alpha, beta = 0.0025, 0.0015
    for tube, joints in [(t, f.joints) for t, f in zip(h["tubes"], _FINGERS)] + [(h["thumb"], _THUMB_JOINTS)]:
        d, n, u = tube.frame
        flex_axis = -u  # = d x palmar: positive rotation curls the chain toward the palm
        c_sin = np.zeros(9)
        for row, col, sign, comp in ((2, 1, 1, 0), (1, 2, -1, 0), (0, 2, 1, 1), (2, 0, -1, 1), (1, 0, 1, 2), (0, 1, -1, 2)):
            c_sin[3 * row + col] += 0.5 * sign * flex_axis[comp]
        c_cos = np.zeros(9)
        c_cos[[0, 4, 8]] = -0.5
        dorsal = np.maximum(np.sin(tube.phi), 0.0)
        palmar = np.maximum(-np.sin(tube.phi), 0.0)
        for js, width, j in zip(tube.joint_s, tube.joint_width, joints):
            s_bump = js + (0.02 if j == _THUMB_JOINTS[0] else 0.0)  # the CMC bulge shows at the thenar exit
            bump = np.exp(-(((tube.s - s_bump) / (1.5 * width)) ** 2))  # (R,)
            amount_sin = alpha * bump[:, None] * dorsal[None, :]  # (R, n)
            amount_cos = beta * bump[:, None] * palmar[None, :]
            ids = tube.ids.reshape(-1)
            disp_dir = tube.radial.reshape(-1, 3)
            block = (amount_sin.reshape(-1)[:, None, None] * disp_dir[:, :, None] * c_sin[None, None, :]
                     + amount_cos.reshape(-1)[:, None, None] * disp_dir[:, :, None] * c_cos[None, None, :])
            P[ids, :, 9 * (j - 1):9 * j] += block
    return P


def _prior_frames(h) -> np.ndarray:
    """(15,3,3): for joints 1..15 the rows (flexion axis, abduction axis, twist axis), orthonormal."""
    axes = np.zeros((NUM_JOINTS - 1, 3, 3))
    for tube, joints in [(t, f.joints) for t, f in zip(h["tubes"], _FINGERS)] + [(h["thumb"], _THUMB_JOINTS)]:
        d, n, u = tube.frame
        palmar = -n
        for j in joints:
            axes[j - 1] = np.stack([np.cross(d, palmar), palmar, d])
    return axes


def _prior_limits() -> np.ndarray:
    lim = np.zeros((NUM_JOINTS - 1, 3, 2))
    for f in _FINGERS:
        for j, l in zip(f.joints, _LIMITS_FINGER):
            lim[j - 1] = l
    for j, l in zip(_THUMB_JOINTS, _LIMITS_THUMB):
        lim[j - 1] = l
    return lim


def _sample_prior(rng: np.random.Generator, n: int, axes: np.ndarray, limits: np.ndarray) -> np.ndarray:
    """(n,45) right-hand finger poses (axis-angle, rad) from a latent grasp model clipped to the limits."""
    coord = np.zeros((n, NUM_JOINTS - 1, 3))
    closure = rng.beta(1.3, 1.6, size=n)  # 0 open ... 1 fist
    spread = rng.uniform(-0.2, 1.0, size=n)
    for f in _FINGERS:
        c = np.clip(closure + 0.22 * rng.standard_normal(n), 0, 1)
        pointing = rng.random(n) < 0.12  # an extended finger in an otherwise closed hand
        c = np.where(pointing, np.clip(0.1 * np.abs(rng.standard_normal(n)), 0, 1), c)
        mcp, pip, dip = (j - 1 for j in f.joints)
        coord[:, mcp, 0] = -0.15 + 1.55 * c + 0.08 * rng.standard_normal(n)
        coord[:, pip, 0] = 1.75 * c + 0.10 * rng.standard_normal(n)
        coord[:, dip, 0] = 0.7 * coord[:, pip, 0] + 0.08 * rng.standard_normal(n)  # DIP-PIP coupling
        coord[:, mcp, 1] = spread * (1 - c) * f.spread_abd + c * f.fist_abd + 0.05 * rng.standard_normal(n)
        coord[:, mcp, 2] = 0.04 * rng.standard_normal(n)
        for j in (pip, dip):
            coord[:, j, 1:] = 0.02 * rng.standard_normal((n, 2))
    opposition = rng.uniform(0, 1, size=n)
    c_t = np.clip(0.6 * closure + 0.4 * rng.random(n) + 0.15 * rng.standard_normal(n), 0, 1)
    cmc, mcp, ip = (j - 1 for j in _THUMB_JOINTS)
    coord[:, cmc, 0] = -0.2 + 0.9 * opposition + 0.08 * rng.standard_normal(n)
    coord[:, cmc, 1] = 0.35 * (opposition - 0.3) + 0.08 * rng.standard_normal(n)
    coord[:, cmc, 2] = 0.5 * opposition + 0.06 * rng.standard_normal(n)
    coord[:, mcp, 0] = 0.1 + 0.7 * c_t + 0.08 * rng.standard_normal(n)
    coord[:, ip, 0] = -0.1 + 1.1 * c_t + 0.10 * rng.standard_normal(n)
    for j in (mcp, ip):
        coord[:, j, 1:] = 0.04 * rng.standard_normal((n, 2))
    coord = np.clip(coord, limits[None, :, :, 0], limits[None, :, :, 1])
    return np.einsum("njk,jkc->njc", coord, axes).reshape(n, 45)


def mirror_pose(pose: np.ndarray) -> np.ndarray:
    """Mirror axis-angle vectors (..., 3k) through x -> -x: ``(ax, ay, az) -> (ax, -ay, -az)``."""
    pose = np.asarray(pose)
    return (pose.reshape(*pose.shape[:-1], -1, 3) * np.array([1.0, -1.0, -1.0])).reshape(pose.shape)


def build_synthetic_mano(seed: int = 0, n_prior: int = NUM_PRIOR_SAMPLES) -> tuple[dict, dict]:
    """(right, left) MANO-format dicts of numpy arrays (see the module docstring). Deterministic."""
    h = _build_right_hand()
    J_reg = _joint_regressor(h)
    shift = J_reg[0] @ h["verts"]  # put the wrist joint at the origin
    h["verts"] = h["verts"] - shift
    for tube in h["tubes"] + [h["thumb"]]:
        tube.origin = tube.origin - shift
    verts, faces = h["verts"], h["faces"]
    weights = _skinning_weights(h)
    shapedirs = _shape_dirs(h)
    posedirs = _pose_dirs(h)
    axes = _prior_frames(h)
    limits = _prior_limits()
    samples = _sample_prior(np.random.default_rng(seed), n_prior, axes, limits)
    mean = samples.mean(axis=0)
    _, _, vt = np.linalg.svd(samples - mean, full_matrices=False)
    # Fix each component's sign so the output is reproducible across LAPACK builds.
    vt = vt * np.where(vt[np.arange(len(vt)), np.abs(vt).argmax(axis=1)] < 0, -1.0, 1.0)[:, None]
    coeffs = (samples - mean) @ vt.T
    kintree = np.array([[ROOT_PARENT if p < 0 else p for p in PARENTS], list(range(NUM_JOINTS))], dtype=np.int64)
    tips = np.array([h["thumb"].apex] + [h["tubes"][[f.name for f in _FINGERS].index(n)].apex for n in TIP_ORDER[1:]],
                    dtype=np.int64)
    right = dict(
        v_template=verts, f=faces, J_regressor=J_reg, weights=weights, kintree_table=kintree,
        shapedirs=shapedirs, posedirs=posedirs, hands_components=vt, hands_mean=mean, hands_coeffs=coeffs,
        tip_vertex_ids=tips, prior_axes=axes, prior_limits=limits, synthetic_version=SYNTHETIC_VERSION,
    )
    left = mirror_hand(right)
    return right, left


def mirror_hand(right: dict) -> dict:
    """The left-hand dict of a right-hand MANO-format dict: mirror ``x -> -x`` (see module docstring)."""
    left = dict(right)
    left["v_template"] = right["v_template"] @ MIRROR
    left["f"] = right["f"][:, [0, 2, 1]]
    left["shapedirs"] = np.einsum("xy,vyk->vxk", MIRROR, right["shapedirs"])
    P = right["posedirs"].reshape(len(right["posedirs"]), 3, -1, 9) * _MIRROR_FEATURE_SIGNS
    left["posedirs"] = np.einsum("xy,vyjk->vxjk", MIRROR, P).reshape(right["posedirs"].shape)
    left["hands_mean"] = mirror_pose(right["hands_mean"])
    left["hands_components"] = mirror_pose(right["hands_components"])
    if "prior_axes" in right:
        # Rotation vectors are pseudo-vectors: they mirror as -M w, so the same coordinates apply.
        left["prior_axes"] = -np.einsum("xy,jky->jkx", MIRROR, right["prior_axes"])
    return left


def write_synthetic_mano(out_dir: str | os.PathLike, seed: int = 0) -> Path:
    """Write ``MANO_RIGHT.pkl`` and ``MANO_LEFT.pkl`` into ``out_dir`` (atomically); return the folder."""
    out_dir = Path(out_dir)
    right, left = build_synthetic_mano(seed)
    for name, data in (("MANO_RIGHT.pkl", right), ("MANO_LEFT.pkl", left)):
        with atomic_path(out_dir / name) as tmp:
            with open(tmp, "wb") as fh:
                pickle.dump(data, fh, protocol=4)
    return out_dir


def _needs_regeneration(path: Path) -> bool:
    if not path.is_file():
        return True
    from handflow.hand.mano import load_mano_file

    try:
        data = load_mano_file(path)
    except HandflowError:
        return True
    # A file without the version key is a user's (real) MANO file: never overwrite it.
    return "synthetic_version" in data and str(data["synthetic_version"]) != SYNTHETIC_VERSION


def default_mano_dir() -> Path:
    """The synthetic MANO folder ``<cache>/mano``, generated on first use or when out of date.

    ``smplx.create(<cache>, model_type="mano")`` finds the same files.
    """
    folder = cache_dir() / "mano"
    if any(_needs_regeneration(folder / n) for n in ("MANO_RIGHT.pkl", "MANO_LEFT.pkl")):
        write_synthetic_mano(folder)
    return folder
