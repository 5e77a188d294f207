import hashlib
import pickle
from collections import Counter

import numpy as np
import pytest
import smplx
import torch

from handflow.hand.mano import load_mano_file
from handflow.synth.mano import (
    PARENTS,
    SYNTHETIC_VERSION,
    build_synthetic_mano,
    default_mano_dir,
    mirror_pose,
    write_synthetic_mano,
)


@pytest.fixture(scope="module")
def hands():
    return build_synthetic_mano(seed=0)


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_smplx_loads_the_generated_files_without_help(mano_dir):
    # smplx.create(<parent>, model_type="mano") looks in <parent>/mano and unpickles on its own.
    for is_rhand in (True, False):
        layer = smplx.create(str(mano_dir.parent), model_type="mano", is_rhand=is_rhand, use_pca=False,
                             flat_hand_mean=False)
        out = layer(betas=torch.zeros(1, 10), global_orient=torch.zeros(1, 3), hand_pose=torch.zeros(1, 45))
        V = load_mano_file(mano_dir / ("MANO_RIGHT.pkl" if is_rhand else "MANO_LEFT.pkl"))["v_template"].shape[0]
        assert out.vertices.shape == (1, V, 3)
        assert out.joints.shape == (1, 16, 3)
        assert torch.isfinite(out.vertices).all()


def test_keys_shapes_and_tree(hands):
    for data in hands:
        V = data["v_template"].shape[0]
        assert 300 <= V <= 1200
        assert data["f"].shape[1] == 3 and data["f"].dtype.kind == "i"
        assert data["J_regressor"].shape == (16, V)
        assert data["weights"].shape == (V, 16)
        assert data["shapedirs"].shape == (V, 3, 10)
        assert data["posedirs"].shape == (V, 3, 135)
        assert data["hands_components"].shape == (45, 45)
        assert data["hands_mean"].shape == (45,)
        assert data["hands_coeffs"].shape[1] == 45
        assert data["tip_vertex_ids"].shape == (5,)
        assert data["synthetic_version"] == SYNTHETIC_VERSION
        kin = data["kintree_table"]
        assert kin[0, 0] == 4294967295
        assert list(kin[0, 1:]) == list(PARENTS[1:])
        assert list(kin[1]) == list(range(16))
        np.testing.assert_allclose(data["weights"].sum(1), 1.0, atol=1e-12)
        assert data["weights"].min() >= 0
        np.testing.assert_allclose(data["J_regressor"].sum(1), 1.0, atol=1e-12)
        assert data["J_regressor"].min() >= 0


def _edges(faces):
    return Counter((int(a), int(b)) for f in faces for a, b in ((f[0], f[1]), (f[1], f[2]), (f[2], f[0])))


def _signed_volume(v, f):
    tri = v[f]
    return np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6.0


@pytest.mark.parametrize("hand", [0, 1])
def test_surface_is_closed_connected_and_outward(hands, hand):
    data = hands[hand]
    v, f = data["v_template"], data["f"]
    directed = _edges(f)
    # Closed and consistently oriented: every directed edge once, its reverse once.
    assert all(c == 1 for c in directed.values())
    assert all(directed.get((b, a)) == 1 for a, b in directed)
    assert np.unique(f).size == len(v)  # no stray vertices
    # One connected piece, genus 0 (Euler characteristic 2).
    parent = list(range(len(v)))

    def find(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a, b in directed:
        parent[find(a)] = find(b)
    assert len({find(i) for i in range(len(v))}) == 1
    assert len(v) - len(directed) // 2 + len(f) == 2
    # Outward normals: positive enclosed volume, of a plausible hand size (200-500 cm^3).
    vol = _signed_volume(v, f)
    assert 2e-4 < vol < 5e-4
    area = np.linalg.norm(np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]]), axis=1) / 2
    assert area.min() > 1e-7  # no degenerate triangles (0.1 mm^2)


def test_posed_surface_keeps_its_volume(mano_dir):
    layer = smplx.create(str(mano_dir.parent), model_type="mano", is_rhand=True, use_pca=False,
                         flat_hand_mean=False, dtype=torch.float64)
    coeffs = torch.tensor(load_mano_file(mano_dir / "MANO_RIGHT.pkl")["hands_coeffs"][:8])
    comps = torch.tensor(load_mano_file(mano_dir / "MANO_RIGHT.pkl")["hands_components"])
    out = layer(betas=torch.zeros(8, 10, dtype=torch.float64), global_orient=torch.zeros(8, 3, dtype=torch.float64),
                hand_pose=coeffs @ comps)
    faces = layer.faces_tensor.numpy()
    for verts in out.vertices.detach().numpy():
        assert _signed_volume(verts, faces) > 1.5e-4  # fingers curl but the hand keeps its volume


def test_proportions(hands):
    right = hands[0]
    v = right["v_template"]
    J = right["J_regressor"] @ v
    tips = v[right["tip_vertex_ids"]]
    np.testing.assert_allclose(J[0], 0.0, atol=1e-12)  # wrist joint at the origin
    length = np.linalg.norm(tips[2] - J[0])  # wrist -> middle fingertip
    assert 0.180 <= length <= 0.190
    w = right["weights"]
    palm = (w.argmax(1) == 0) & (w[:, 13:].sum(1) < 0.05)
    breadth = np.ptp(v[palm, 2])
    assert 0.078 <= breadth <= 0.092
    # Convention: fingers along +x, back of the hand +y, thumb on -z (right hand).
    assert np.all(tips[1:, 0] > 0.14)
    assert tips[0, 2] < -0.06 and tips[4, 2] > 0.03
    # Finger length order: middle > ring > index > pinky.
    order = np.argsort([-np.linalg.norm(t - J[0]) for t in tips[1:]])
    assert list(order) == [1, 2, 0, 3]
    # Each bone is a plausible phalanx/metacarpal length (15-100 mm).
    bones = [np.linalg.norm(J[j] - J[p]) for j, p in enumerate(PARENTS) if p >= 0]
    assert min(bones) > 0.015 and max(bones) < 0.1


def test_shape_blend_shapes_change_the_hand(hands):
    right = hands[0]
    v, D, tips = right["v_template"], right["shapedirs"], right["tip_vertex_ids"]
    J = right["J_regressor"]

    def length(beta):
        vs = v + D @ beta
        return np.linalg.norm(vs[tips[2]] - J[0] @ vs)

    unit = np.eye(10)
    # Size and finger length make the hand longer; every direction moves something by >1 mm.
    assert length(unit[0]) - length(0 * unit[0]) > 0.008
    assert length(unit[2]) - length(0 * unit[0]) > 0.004
    assert np.all(np.abs(D).max(axis=(0, 1)) > 0.001)
    # Directions are distinct (not multiples of one another).
    flat = D.reshape(-1, 10)
    s = np.linalg.svd(flat / np.linalg.norm(flat, axis=0), compute_uv=False)
    assert s.min() > 0.05


def test_pose_prior_respects_joint_limits(hands):
    for data in hands:
        axes, limits = data["prior_axes"], data["prior_limits"]
        for j in range(15):
            np.testing.assert_allclose(axes[j] @ axes[j].T, np.eye(3), atol=1e-12)
        samples = data["hands_coeffs"] @ data["hands_components"] + data["hands_mean"]
        coord = np.einsum("njc,jkc->njk", samples.reshape(-1, 15, 3), axes)
        assert np.all(coord >= limits[None, :, :, 0] - 1e-9)
        assert np.all(coord <= limits[None, :, :, 1] + 1e-9)
        # Flexion dominates: mostly positive, with a wide range; abduction and twist stay small.
        flex = coord[:, :, 0]
        assert np.mean(flex > 0) > 0.8
        assert flex.max() > 1.2
        assert np.abs(coord[:, :12, 1:]).mean() < 0.2 * np.abs(flex[:, :12]).mean()


def test_hands_components_are_an_orthonormal_pca(hands):
    for data in hands:
        C = data["hands_components"]
        np.testing.assert_allclose(C @ C.T, np.eye(45), atol=1e-10)
        coeffs = data["hands_coeffs"]
        np.testing.assert_allclose(coeffs.mean(0), 0.0, atol=1e-10)
        var = coeffs.var(0)
        assert np.all(np.diff(var) <= 1e-12)  # sorted by explained variance
        assert var[:6].sum() / var.sum() > 0.6  # a few components explain most of the pose


def test_left_is_the_mirror_of_the_right(hands):
    right, left = hands
    M = np.diag([-1.0, 1.0, 1.0])
    np.testing.assert_allclose(left["v_template"], right["v_template"] @ M)
    np.testing.assert_array_equal(left["f"], right["f"][:, [0, 2, 1]])
    np.testing.assert_allclose(left["shapedirs"][:, 0], -right["shapedirs"][:, 0])
    np.testing.assert_allclose(left["hands_mean"], mirror_pose(right["hands_mean"]))
    np.testing.assert_array_equal(left["hands_coeffs"], right["hands_coeffs"])
    np.testing.assert_array_equal(left["tip_vertex_ids"], right["tip_vertex_ids"])


def test_deterministic_and_seeded(tmp_path, mano_dir):
    again = write_synthetic_mano(tmp_path / "a", seed=0)
    for name in ("MANO_RIGHT.pkl", "MANO_LEFT.pkl"):
        assert _sha(again / name) == _sha(mano_dir / name)
    other = build_synthetic_mano(seed=1)[0]
    same = load_mano_file(mano_dir / "MANO_RIGHT.pkl")
    np.testing.assert_array_equal(other["v_template"], same["v_template"])  # geometry is fixed
    assert not np.array_equal(other["hands_coeffs"], same["hands_coeffs"])  # the prior sample is seeded


def test_default_mano_dir_generates_once_and_refreshes(tmp_path, monkeypatch):
    monkeypatch.setenv("VIEWSELECT_CACHE", str(tmp_path / "cache"))
    folder = default_mano_dir()
    assert folder == tmp_path / "cache" / "mano"
    right = folder / "MANO_RIGHT.pkl"
    stamp = right.stat().st_mtime_ns
    assert default_mano_dir() == folder and right.stat().st_mtime_ns == stamp  # reused

    # An out-of-date synthetic file is regenerated.
    data = pickle.loads(right.read_bytes())
    data["synthetic_version"] = "old"
    right.write_bytes(pickle.dumps(data))
    default_mano_dir()
    assert load_mano_file(right)["synthetic_version"] == SYNTHETIC_VERSION

    # A user's own MANO file (no synthetic_version) is never overwritten.
    del data["synthetic_version"]
    data["v_template"] = data["v_template"] * 1.01
    right.write_bytes(pickle.dumps(data))
    before = _sha(right)
    default_mano_dir()
    assert _sha(right) == before


def _arrays_digest(hands) -> str:
    """Digest of what the generator writes (every key, arrays rounded to 1e-6), without the version."""
    h = hashlib.sha256()
    for data in hands:
        for key in sorted(k for k in data if k != "synthetic_version"):
            a = np.asarray(data[key])
            h.update(f"{key}:{a.dtype.kind}:{a.shape}".encode())
            h.update((np.round(a, 6) if a.dtype.kind == "f" else a).tobytes())
    return h.hexdigest()[:16]


def test_generated_arrays_match_the_pinned_version():
    """``SYNTHETIC_VERSION`` is pinned: a generator change that alters the files must bump it (so cached
    files are regenerated) and then update the digest here."""
    assert SYNTHETIC_VERSION == "handflow-synthetic-mano-2+78022f7c1c41"
    assert _arrays_digest(build_synthetic_mano(seed=0)) == "54d9a8c8766f80f9", (
        "the synthetic MANO generator writes other arrays: bump SYNTHETIC_VERSION in handflow/synth/mano.py, "
        "then update both pins in this test")
