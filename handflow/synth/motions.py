"""Two-hand motions of the synthetic capture as per-frame MANO parameters.

Parameters follow InterHand2.6M's NeuralAnnot convention: per hand ``pose`` (48 = global orientation 3
+ 15 finger joints x 3, axis-angle, radians) with the finger part *relative to* ``hands_mean``
(``smplx`` ``flat_hand_mean=False``: the effective finger rotation is ``pose[3:] + hands_mean``),
``shape`` (10 betas), ``trans`` (3, metres, world frame). Hand index 0 = right, 1 = left.

Poses are built from a few interpretable controls per hand (:class:`HandSpec`): a curl per finger
(0 flat, 1 fist), spread, thumb opposition, and the hand's orientation (finger direction, palm
direction) and palm-centre position in a *pair frame* (x = the subject's right, y = forward,
z = up). The per-joint flexion / abduction axes are measured on the model's own rest geometry
(bone directions, the palm normal, whose palm side is the side ``hands_mean`` curls towards), so
the same controls work for the synthetic MANO and for the real one.

Contact: a frame may ask for the right hand to be pushed along an approach axis until its mesh
is ``gap_mm`` from the left mesh (exact first contact of the two vertex sets, computed in closed
form: for every vertex pair the range of shifts that brings them closer than the gap is an
interval along the axis). So hands touch without interpenetrating beyond the vertex spacing.

Test set: ``TEST_SEQUENCES`` (``Capture0``: 4 sequences, ``Capture1``: 3) with smooth motion over
the sequence (the controls are smooth functions of the phase ``s`` in [0, 1], and the pair frame
slowly turns and drifts). Training frames mix the same interaction templates with noise and
random pair orientations, and hands posed from the MANO pose-prior samples (``hands_coeffs``)
with random orientations, brought into contact (or kept a little apart) along random axes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from handflow.keypoints import WRIST_IN_HAND
from handflow.synth.rig import RIG_CENTER_MM

# MANO joint indices (1..15) of each finger, proximal -> distal, and the InterHand index of the joint
# base -> tip within one hand (see handflow/data/interhand.py for the order).
FINGER_ORDER = ("thumb", "index", "middle", "ring", "pinky")
MANO_FINGER = {"thumb": (13, 14, 15), "index": (1, 2, 3), "middle": (4, 5, 6), "ring": (10, 11, 12), "pinky": (7, 8, 9)}
IH_FINGER = {f: (4 * i + 3, 4 * i + 2, 4 * i + 1, 4 * i) for i, f in enumerate(FINGER_ORDER)}  # base..tip
IH_WRIST = WRIST_IN_HAND  # the wrist inside one hand's 21 InterHand keypoints

# flexion (deg) at full curl for the three joints of each finger, proximal -> distal
FLEX_DEG = {"thumb": (25.0, 45.0, 65.0), "index": (75.0, 95.0, 65.0), "middle": (78.0, 98.0, 65.0),
            "ring": (80.0, 98.0, 62.0), "pinky": (82.0, 95.0, 60.0)}
SPREAD_DEG = {"index": -1.0 * 9, "middle": 0.0, "ring": 1.0 * 8, "pinky": 2.0 * 9}
THUMB_OPP_DEG = 50.0

TEST_SEQUENCES: dict[int, list[str]] = {
    0: ["0001_touch_fingertips", "0002_interlock_fingers", "0003_cover_hand", "0004_fist_bump"],
    1: ["0005_point_palm", "0006_clasp_hands", "0007_cross_wrists"],
}


@dataclass
class HandSpec:
    """Controls of one hand in the pair frame (mm, unit vectors)."""

    curl: np.ndarray  # (5,) thumb, index, middle, ring, pinky in [-0.15, 1.1]
    spread: float = 0.3  # finger abduction, -0.5..1.2
    thumb_opp: float = 0.3  # thumb opposition 0..1
    fwd: np.ndarray = field(default_factory=lambda: np.array([0.0, 0.0, 1.0]))  # wrist -> middle knuckle
    palm: np.ndarray = field(default_factory=lambda: np.array([1.0, 0.0, 0.0]))  # direction the palm faces
    pos: np.ndarray = field(default_factory=lambda: np.zeros(3))  # palm centre, mm
    finger_pose: np.ndarray | None = None  # (45,) effective finger axis-angle; overrides curl/spread/thumb


@dataclass
class FrameSpec:
    right: HandSpec
    left: HandSpec
    approach: np.ndarray | None = None  # unit, pair frame: the right hand is moved along it into contact
    gap_mm: float = 1.0
    pair_rot: np.ndarray = field(default_factory=lambda: np.eye(3))  # pair frame -> world rotation
    center_mm: np.ndarray = field(default_factory=lambda: RIG_CENTER_MM.copy())


@dataclass
class MotionFrames:
    """MANO parameters of ``B`` frames (float32 values, stored as such) and their keypoints."""

    pose: np.ndarray  # (B,2,48)
    shape: np.ndarray  # (B,2,10)
    trans_m: np.ndarray  # (B,2,3)
    keypoints_mm: np.ndarray  # (B,42,3) world, from HandModel.keypoints_from_mano of the stored params

    def __len__(self) -> int:
        return self.pose.shape[0]


# ---------------------------------------------------------------------------------------------
# model geometry


def _prior_arrays(hand_model) -> dict[str, np.ndarray]:
    """``hands_mean (2,45)``, ``hands_components (2,K,45)``, ``hands_coeffs (2,N,K)`` of the right and
    left model: from the model's attributes when it exposes them, else from its MANO files."""
    cached = getattr(hand_model, "_viewselect_prior", None)
    if cached is not None:
        return cached
    out = {}
    for key in ("hands_mean", "hands_components", "hands_coeffs"):
        v = getattr(hand_model, key, None)
        if v is not None:
            v = v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)
            out[key] = v
    if len(out) < 3:
        from pathlib import Path

        d = getattr(hand_model, "mano_dir", None)
        if d is None:
            from handflow.synth.mano import default_mano_dir

            d = default_mano_dir()
        files = [Path(d) / "MANO_RIGHT.pkl", Path(d) / "MANO_LEFT.pkl"]
        try:
            from handflow.hand.mano import load_mano_file
        except ImportError:  # pragma: no cover
            import pickle

            def load_mano_file(p):
                with open(p, "rb") as fh:
                    return pickle.load(fh, encoding="latin1")

        data = [load_mano_file(f) for f in files]
        for key in ("hands_mean", "hands_components", "hands_coeffs"):
            if key not in out and all(key in dd for dd in data):
                out[key] = np.stack([np.asarray(dd[key], dtype=np.float64) for dd in data])
    if "hands_mean" not in out:
        raise AttributeError("the hand model has no hands_mean")
    out["hands_mean"] = np.broadcast_to(np.asarray(out["hands_mean"], np.float64).reshape(-1, 45), (2, 45)).copy()
    try:
        hand_model._viewselect_prior = out
    except AttributeError:  # pragma: no cover
        pass
    return out


def _hands_mean(hand_model) -> np.ndarray:
    """(2,45) hands_mean of the right and left model."""
    return _prior_arrays(hand_model)["hands_mean"]


def _prior_samples(hand_model) -> np.ndarray:
    """(2,N,45) effective finger axis-angle pose-prior samples (``coeffs @ components + mean``, as smplx
    and the real MANO files define them) of the right and left hand."""
    pa = _prior_arrays(hand_model)
    if "hands_coeffs" not in pa or "hands_components" not in pa:
        raise AttributeError("the hand model has no pose-prior samples")
    comps = np.asarray(pa["hands_components"], np.float64)
    coeffs = np.asarray(pa["hands_coeffs"], np.float64)
    if comps.ndim == 2:
        comps = np.stack([comps, comps])
    if coeffs.ndim == 2:
        coeffs = np.stack([coeffs, coeffs])
    k = coeffs.shape[-1]
    return np.einsum("hnk,hkd->hnd", coeffs, comps[:, :k]) + pa["hands_mean"][:, None]


def _kp(hand_model, pose, shape, trans) -> np.ndarray:
    t = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float32))  # noqa: E731
    with torch.no_grad():
        return hand_model.keypoints_from_mano(t(pose), t(shape), t(trans)).double().numpy()


def _mesh(hand_model, pose, shape, trans) -> np.ndarray:
    t = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float32))  # noqa: E731
    with torch.no_grad():
        return hand_model.mesh_from_mano(t(pose), t(shape), t(trans)).double().numpy()


@dataclass
class HandGeometry:
    """Rest-pose axes of one hand (model frame, global orientation zero, effective finger pose zero)."""

    flex_axis: np.ndarray  # (16,3) unit flexion axis per MANO joint (index 0 unused)
    palm_normal: np.ndarray  # (3,) towards the palm side
    abd_sign: dict  # finger -> +-1 so that positive spread moves the finger away from the middle finger
    opp_axis: np.ndarray  # (3,) thumb CMC opposition axis
    frame: np.ndarray  # (3,3) columns fwd, palm, side in the model frame


def hand_geometry(hand_model, betas: np.ndarray | None = None) -> list[HandGeometry]:
    """Measure the articulation axes of both hands on the model (see module docstring)."""
    mean = _hands_mean(hand_model)
    shape = np.zeros((2, 2, 10)) if betas is None else np.broadcast_to(betas, (2, 2, 10))
    pose = np.zeros((2, 2, 48))
    pose[0, :, 3:] = -mean  # effective finger pose zero (flat hand)
    # pose[1]: the mean pose (relative zero)
    kp = _kp(hand_model, pose, shape, np.zeros((2, 2, 3)))
    out = []
    for h in range(2):
        flat, curled = kp[0, 21 * h:21 * h + 21], kp[1, 21 * h:21 * h + 21]
        wrist = flat[IH_WRIST]
        mcp = {f: flat[IH_FINGER[f][0]] for f in FINGER_ORDER}
        fwd = _unit(mcp["middle"] - wrist)
        n = np.cross(mcp["index"] - wrist, mcp["pinky"] - wrist)
        n = _unit(n - fwd * np.dot(n, fwd))
        tips = [IH_FINGER[f][3] for f in ("index", "middle", "ring", "pinky")]
        move = (curled[tips] - flat[tips]).sum(0)
        if np.dot(move, n) < 0:
            n = -n
        flex = np.zeros((16, 3))
        pinky_dir = _unit(mcp["pinky"] - mcp["index"])
        for f in FINGER_ORDER:
            chain = IH_FINGER[f]
            for k, m in enumerate(MANO_FINGER[f]):
                d = _unit(flat[chain[k + 1]] - flat[chain[k]])
                target = n if f != "thumb" else _unit(n + 0.8 * pinky_dir)
                a = np.cross(d, target)
                flex[m] = _unit(a) if np.linalg.norm(a) > 1e-6 else np.cross(d, n)
        abd = {}
        for f in ("index", "middle", "ring", "pinky"):
            d = _unit(flat[IH_FINGER[f][1]] - flat[IH_FINGER[f][0]])
            away = mcp[f] - mcp["middle"] if f != "middle" else np.zeros(3)
            abd[f] = 1.0 if np.dot(np.cross(n, d), away) >= 0 else -1.0
        d_th = _unit(flat[IH_FINGER["thumb"][1]] - flat[IH_FINGER["thumb"][0]])
        opp = fwd if np.dot(np.cross(fwd, d_th), n) > 0 else -fwd
        side = np.cross(n, fwd)
        out.append(HandGeometry(flex, n, abd, opp, np.stack([fwd, n, side], 1)))
    return out


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / max(np.linalg.norm(v), 1e-12)


def articulation_to_pose(geo: HandGeometry, spec: HandSpec) -> np.ndarray:
    """(45,) effective finger axis-angle (hands_mean *not* subtracted) from the controls."""
    if spec.finger_pose is not None:
        return np.asarray(spec.finger_pose, dtype=np.float64).copy()
    aa = np.zeros((16, 3))
    curl = np.clip(np.asarray(spec.curl, dtype=np.float64), -0.15, 1.1)
    for i, f in enumerate(FINGER_ORDER):
        for k, m in enumerate(MANO_FINGER[f]):
            R = Rotation.from_rotvec(np.radians(FLEX_DEG[f][k]) * curl[i] * geo.flex_axis[m])
            if k == 0 and f != "thumb":
                R = R * Rotation.from_rotvec(np.radians(SPREAD_DEG[f]) * spec.spread * geo.abd_sign[f] * geo.palm_normal)
            if k == 0 and f == "thumb":
                R = R * Rotation.from_rotvec(np.radians(THUMB_OPP_DEG) * spec.thumb_opp * geo.opp_axis)
            aa[m] = R.as_rotvec()
    return aa[1:].reshape(45)


def orientation_aa(geo: HandGeometry, fwd_world: np.ndarray, palm_world: np.ndarray) -> np.ndarray:
    """(3,) global orientation turning the model's (fwd, palm) rest frame onto the world directions."""
    f = _unit(fwd_world)
    n = _unit(palm_world - f * np.dot(palm_world, f))
    W = np.stack([f, n, np.cross(n, f)], 1)
    return Rotation.from_matrix(W @ geo.frame.T).as_rotvec()


def contact_shift(fixed: np.ndarray, moving: np.ndarray, axis: np.ndarray, gap: float) -> float:
    """Shift ``t`` (mm) along unit ``axis`` that puts ``moving (N,3)`` at first contact ``gap`` from
    ``fixed (M,3)`` when it arrives from ``+inf * axis``; the largest ``t`` at which some pair is
    ``gap`` apart. Without any pair that can come that close, returns the shift that aligns the
    closest pair along the axis."""
    f = torch.as_tensor(fixed, dtype=torch.float64)
    m = torch.as_tensor(moving, dtype=torch.float64)
    a = torch.as_tensor(_unit(axis), dtype=torch.float64)
    d = f[None, :, :] - m[:, None, :]  # (N,M,3): where the moving vertex must go to reach the fixed one
    p = d @ a
    q2 = (d * d).sum(-1) - p * p
    ok = q2 < gap * gap
    if bool(ok.any()):
        return float((p + torch.sqrt((gap * gap - q2).clamp(min=0.0)))[ok].max())
    i = torch.argmin(q2)
    return float(p.reshape(-1)[i])


def build_frames(hand_model, specs: list[FrameSpec], betas: np.ndarray, vertex_stride: int = 2) -> MotionFrames:
    """MANO parameters (and keypoints) for a list of frame specs of one subject (``betas (2,10)`` or
    ``(B,2,10)``)."""
    B = len(specs)
    betas = np.broadcast_to(np.asarray(betas, dtype=np.float64), (B, 2, 10)).copy()
    mean = _hands_mean(hand_model)
    pose = np.zeros((B, 2, 48))
    centers = np.zeros((B, 2, 3))
    geos_cache: dict[bytes, list[HandGeometry]] = {}
    for b, sp in enumerate(specs):
        key = betas[b].tobytes()
        if key not in geos_cache:
            geos_cache[key] = hand_geometry(hand_model, betas[b])
        geo = geos_cache[key]
        for h, hs in enumerate((sp.right, sp.left)):
            pose[b, h, 3:] = articulation_to_pose(geo[h], hs) - mean[h]
            pose[b, h, :3] = orientation_aa(geo[h], sp.pair_rot @ hs.fwd, sp.pair_rot @ hs.palm)
            centers[b, h] = sp.center_mm + sp.pair_rot @ hs.pos
    # translate each hand so that its palm centre lands where asked
    kp0 = _kp(hand_model, pose, betas, np.zeros((B, 2, 3)))
    trans = np.zeros((B, 2, 3))
    for h in range(2):
        palm0 = _palm_centre(kp0[:, 21 * h:21 * h + 21])
        trans[:, h] = (centers[:, h] - palm0) / 1000.0
    # contact
    need = [b for b, sp in enumerate(specs) if sp.approach is not None]
    if need:
        verts = _mesh(hand_model, pose[need], betas[need], trans[need])
        for k, b in enumerate(need):
            sp = specs[b]
            axis = _unit(sp.pair_rot @ sp.approach)
            t = contact_shift(verts[k, 1, ::vertex_stride], verts[k, 0, ::vertex_stride], axis, sp.gap_mm)
            trans[b, 0] += t * axis / 1000.0
    # re-centre the pair on the requested centre (box centre of both hands' keypoints)
    kp = _kp(hand_model, pose, betas, trans)
    for b, sp in enumerate(specs):
        box_c = (kp[b].min(0) + kp[b].max(0)) / 2.0
        trans[b] += (sp.center_mm - box_c) / 1000.0
    pose32 = pose.astype(np.float32)
    betas32 = betas.astype(np.float32)
    trans32 = trans.astype(np.float32)
    kp = _kp(hand_model, pose32, betas32, trans32)
    return MotionFrames(pose32, betas32, trans32, kp)


def _palm_centre(kp21: np.ndarray) -> np.ndarray:
    idx = [IH_WRIST] + [IH_FINGER[f][0] for f in ("index", "middle", "ring", "pinky")]
    return kp21[..., idx, :].mean(-2)


def interaction_stats(kp: np.ndarray) -> dict:
    """Crude interaction check on keypoints ``(B,42,3)`` mm: the closest right-left keypoint pair
    (tips are surface points, so touching tips come out near 0) and the closest pair of inner joints
    (non-tips; inside the fingers, so below ~8 mm means the hands interpenetrate)."""
    r, l = kp[:, :21], kp[:, 21:]
    d = np.linalg.norm(r[:, :, None] - l[:, None], axis=-1)
    inner = [j for j in range(21) if j % 4 != 0 or j == IH_WRIST]
    di = d[:, inner][:, :, inner]
    return {"min_dist_mm": d.min(axis=(1, 2)), "min_inner_dist_mm": di.min(axis=(1, 2))}


# ---------------------------------------------------------------------------------------------
# interaction templates: phase s in [0,1] -> FrameSpec in the pair frame

X, Y, Z = np.eye(3)


def _c(*v) -> np.ndarray:
    return np.array(v, dtype=np.float64)


def _wave(s, period=1.0, phase=0.0):
    return np.sin(2 * np.pi * (s / period + phase))


def _touch_fingertips(s):
    c = 0.28 + 0.08 * _wave(s)
    r = HandSpec(_c(0.3, c, c, c, c), 0.45, 0.35, _unit(Z + 0.35 * Y), -X, _c(90, 0, 0))
    l = HandSpec(_c(0.3, c, c, c, c), 0.45, 0.35, _unit(Z + 0.35 * Y), X, _c(-90, 0, 0))
    return FrameSpec(r, l, X, 0.5 + 14.0 * (0.5 + 0.5 * _wave(s, phase=0.25)))


def _interlock_fingers(s):
    c = 0.35 + 0.15 * (0.5 - 0.5 * np.cos(2 * np.pi * s))
    r = HandSpec(_c(0.35, c, c, c, c), 0.9, 0.2, _unit(Z + 0.9 * Y), -X, _c(80, 0, 0))
    l = HandSpec(_c(0.35, c, c, c, c), 0.9, 0.2, _unit(Z - 0.9 * Y), X, _c(-80, 0, 0))
    return FrameSpec(r, l, X, 1.0)


def _cover_hand(s):
    l = HandSpec(_c(0.2, 0.12, 0.12, 0.12, 0.15), 0.3, 0.2, Y, -Z, _c(0, 0, 0))
    c = 0.3 + 0.1 * _wave(s)
    r = HandSpec(_c(0.3, c, c, c, c), 0.2, 0.3, _unit(Y - 0.35 * X), -Z, _c(15 * _wave(s), 30 * _wave(s, phase=0.2), 90))
    return FrameSpec(r, l, Z, 1.5)


def _fist_bump(s):
    r = HandSpec(_c(0.85, 1.0, 1.0, 1.0, 1.0), 0.0, 0.6, -X, _unit(-Z + 0.3 * Y), _c(90, 0, 0))
    l = HandSpec(_c(0.85, 1.0, 1.0, 1.0, 1.0), 0.0, 0.6, X, _unit(-Z + 0.3 * Y), _c(-90, 0, 0))
    return FrameSpec(r, l, X, 0.5 + 45.0 * (0.5 + 0.5 * np.cos(2 * np.pi * s)))


def _point_palm(s):
    l = HandSpec(_c(0.15, 0.1, 0.1, 0.12, 0.15), 0.5, 0.1, Z, X, _c(-70, 0, 0))
    r = HandSpec(_c(0.75, 0.02, 0.95, 1.0, 1.0), 0.0, 0.7, _unit(-X + 0.15 * Z), -Z,
                 _c(70, 20 * _wave(s), 25 * _wave(s, phase=0.25)))
    return FrameSpec(r, l, X, 0.5 + 28.0 * (0.5 + 0.5 * np.cos(2 * np.pi * s)))


def _clasp_hands(s):
    c = 0.5 + 0.12 * (0.5 - 0.5 * np.cos(2 * np.pi * s))
    r = HandSpec(_c(0.4, c, c, c, c), 0.1, 0.4, Y, -X, _c(70, 0, 0))
    l = HandSpec(_c(0.4, c, c, c, c), 0.1, 0.4, Z, X, _c(-70, 0, 0))
    return FrameSpec(r, l, X, 1.0)


def _cross_wrists(s):
    c = 0.2 + 0.1 * _wave(s)
    ang = 0.15 * _wave(s)
    r = HandSpec(_c(0.25, c, c, c, c), 0.6, 0.3, _unit(-X + (1.3 + ang) * Z), Y, _c(-45, 0, 50))
    l = HandSpec(_c(0.25, c, c, c, c), 0.6, 0.3, _unit(X + (1.3 - ang) * Z), Y, _c(45, 0, 50))
    return FrameSpec(r, l, -Y, 1.0)


TEMPLATES: dict[str, Callable[[float], FrameSpec]] = {
    "touch_fingertips": _touch_fingertips,
    "interlock_fingers": _interlock_fingers,
    "cover_hand": _cover_hand,
    "fist_bump": _fist_bump,
    "point_palm": _point_palm,
    "clasp_hands": _clasp_hands,
    "cross_wrists": _cross_wrists,
}


def _template_of(seq_name: str) -> str:
    return seq_name.split("_", 1)[1]


def _pair_motion(rng: np.random.Generator, s: float, yaw0: float, pitch0: float, phase: float):
    yaw = yaw0 + np.radians(20.0) * np.sin(2 * np.pi * (s + phase))
    pitch = pitch0 + np.radians(8.0) * np.sin(np.pi * s)
    R = Rotation.from_euler("zx", [yaw, pitch]).as_matrix()
    drift = np.array([15.0 * np.sin(2 * np.pi * s + phase), 10.0 * np.sin(np.pi * s), 10.0 * np.cos(2 * np.pi * s)])
    return R, RIG_CENTER_MM + drift


def subject_betas(rng: np.random.Generator, scale: float = 0.8) -> np.ndarray:
    """(2,10) betas of one subject (the same for both hands), N(0, scale^2) clipped to +-2."""
    b = np.clip(rng.normal(0.0, scale, size=10), -2.0, 2.0)
    return np.stack([b, b])


def test_sequence_specs(seq_name: str, n_frames: int, seed: int) -> list[FrameSpec]:
    """Smooth frame specs of one test sequence (phase 0..1 over ``n_frames``)."""
    rng = np.random.default_rng([seed, 101, int(seq_name[:4])])
    yaw0, pitch0, phase = rng.uniform(-np.pi, np.pi), rng.uniform(-0.2, 0.2), rng.uniform(0, 1)
    tpl = TEMPLATES[_template_of(seq_name)]
    specs = []
    for i in range(n_frames):
        s = i / max(n_frames - 1, 1)
        sp = tpl(s)
        R, c = _pair_motion(rng, s, yaw0, pitch0, phase)
        specs.append(replace(sp, pair_rot=R, center_mm=c))
    return specs


def test_motion(hand_model, capture: int, seq_name: str, n_frames: int, seed: int) -> MotionFrames:
    betas = subject_betas(np.random.default_rng([seed, 11, capture]))
    return build_frames(hand_model, test_sequence_specs(seq_name, n_frames, seed), betas)


# ---------------------------------------------------------------------------------------------
# training frames


def _random_unit(rng) -> np.ndarray:
    return _unit(rng.normal(size=3))


def _perturb(hs: HandSpec, rng, amount: float) -> HandSpec:
    return replace(
        hs,
        curl=np.clip(hs.curl + rng.normal(0, 0.15 * amount, 5), -0.15, 1.1),
        spread=float(np.clip(hs.spread + rng.normal(0, 0.25 * amount), -0.5, 1.2)),
        thumb_opp=float(np.clip(hs.thumb_opp + rng.normal(0, 0.2 * amount), 0.0, 1.0)),
        fwd=_unit(hs.fwd + rng.normal(0, 0.15 * amount, 3)),
        palm=_unit(hs.palm + rng.normal(0, 0.15 * amount, 3)),
        pos=hs.pos + rng.normal(0, 10.0 * amount, 3),
    )


def training_frame_specs(rng: np.random.Generator, kind: str, n: int, prior: np.ndarray | None) -> list[FrameSpec]:
    """``n`` independent frame specs of one training sequence.

    ``kind`` a template name (``touch_fingertips`` …): that interaction at a random phase with noisy
    controls and a random pair orientation; or ``prior``: both hands' finger poses drawn from the
    pose-prior samples ``prior (2,N,45)`` (effective axis-angle), random hand orientations, brought
    into contact along a random axis (gap 0.5-30 mm; 20 % of frames 30-120 mm apart).
    """
    specs = []
    for _ in range(n):
        Rp = Rotation.random(random_state=int(rng.integers(2**31))).as_matrix()
        center = RIG_CENTER_MM + rng.normal(0, 25.0, 3)
        if kind == "prior":
            hands = []
            for h in range(2):
                fp = None
                if prior is not None and prior.shape[1] > 0:
                    fp = prior[h, int(rng.integers(prior.shape[1]))]
                fwd, palm = _random_unit(rng), _random_unit(rng)
                hands.append(HandSpec(np.full(5, 0.3), fwd=fwd, palm=palm, pos=np.zeros(3), finger_pose=fp))
            gap = rng.uniform(0.5, 30.0) if rng.uniform() > 0.2 else rng.uniform(30.0, 120.0)
            axis = _random_unit(rng)
            hands[0].pos = axis * 150.0
            specs.append(FrameSpec(hands[0], hands[1], axis, float(gap), Rp, center))
        else:
            sp = TEMPLATES[kind](float(rng.uniform()))
            gap = float(np.clip(sp.gap_mm + rng.normal(0, 4.0), 0.5, 60.0))
            specs.append(FrameSpec(_perturb(sp.right, rng, 1.0), _perturb(sp.left, rng, 1.0), sp.approach, gap, Rp, center))
    return specs


TRAIN_KINDS = ("prior",) + tuple(TEMPLATES)
