import pickle

import numpy as np
import pytest
import smplx
import torch

from handflow.errors import HandflowError
from handflow.geometry.rotation import axis_angle_to_matrix
from handflow.hand import model as model_module
from handflow.hand.model import INTERHAND_FROM_JOINTS_AND_TIPS, INTERHAND_TIP_IDS, HandModel
from handflow.synth.mano import default_mano_dir

B = 24
MIRROR_AA = torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64)


@pytest.fixture(scope="module")
def model64(mano_dir):
    return HandModel.from_dir(mano_dir).double()


@pytest.fixture(scope="module")
def smplx64(mano_dir):
    return [smplx.create(str(mano_dir.parent), model_type="mano", is_rhand=rh, use_pca=False, flat_hand_mean=False,
                         dtype=torch.float64) for rh in (True, False)]


def _random_params(seed, n=B):
    g = torch.Generator().manual_seed(seed)
    pose = 0.6 * torch.randn(n, 2, 48, generator=g, dtype=torch.float64)
    pose[:, :, :3] *= 3  # any global orientation
    betas = 1.5 * torch.randn(n, 2, 10, generator=g, dtype=torch.float64)
    trans = 0.3 * torch.randn(n, 2, 3, generator=g, dtype=torch.float64)
    return pose, betas, trans


def _smplx_keypoints_mm(layers, tips, pose, betas, trans):
    """Reference: smplx's full forward, its 16 joints + 5 tip vertices of the full mesh, InterHand order."""
    out = []
    for h, layer in enumerate(layers):
        res = layer(betas=betas[:, h], global_orient=pose[:, h, :3], hand_pose=pose[:, h, 3:], transl=trans[:, h])
        kp = torch.cat([res.joints, res.vertices[:, torch.as_tensor(tips[h])]], dim=1)
        out.append(kp[:, list(INTERHAND_FROM_JOINTS_AND_TIPS)].detach())
    return torch.cat(out, dim=1) * 1000.0


def test_fast_path_matches_smplx_full_forward(model64, smplx64):
    pose, betas, trans = _random_params(0)
    ref = _smplx_keypoints_mm(smplx64, model64.tip_vertex_ids, pose, betas, trans)
    fast = model64.keypoints_from_mano(pose, betas, trans)
    assert fast.shape == (B, 42, 3)
    assert (fast - ref).abs().max().item() < 1e-3  # 1e-6 m, in mm

    rel = model64.keypoints_from_rotmats(model64.rotmats_from_mano(pose), betas)
    ref_rel = torch.cat([ref[:, :21] - ref[:, 20:21], ref[:, 21:] - ref[:, 41:42]], dim=1)
    assert (rel - ref_rel).abs().max().item() < 1e-3
    assert rel[:, [20, 41]].abs().max().item() == 0.0


def test_rotmats_path_matches_smplx_lbs_for_any_rotations(model64, smplx64):
    from smplx.lbs import lbs

    g = torch.Generator().manual_seed(1)
    rotmats = axis_angle_to_matrix(torch.randn(B, 2, 16, 3, generator=g, dtype=torch.float64) * 1.5)
    betas = torch.randn(B, 2, 10, generator=g, dtype=torch.float64)
    rel = model64.keypoints_from_rotmats(rotmats, betas)
    verts = model64.vertices_from_rotmats(rotmats, betas)
    for h, layer in enumerate(smplx64):
        v, j = lbs(betas[:, h], rotmats[:, h], layer.v_template, layer.shapedirs, layer.posedirs, layer.J_regressor,
                   layer.parents, layer.lbs_weights, pose2rot=False)
        kp = torch.cat([j, v[:, model64.tip_vertex_ids[h]]], dim=1)[:, list(INTERHAND_FROM_JOINTS_AND_TIPS)]
        kp = (kp - kp[:, 20:21]) * 1000.0
        assert (rel[:, 21 * h:21 * (h + 1)] - kp).abs().max().item() < 1e-3
        assert (verts[:, h] - (v - j[:, :1]) * 1000.0).abs().max().item() < 1e-3
        tips = [0, 4, 8, 12, 16]
        assert (verts[:, h, model64.tip_vertex_ids[h]] - rel[:, 21 * h + np.array(tips)]).abs().max().item() < 1e-3


def test_mesh_from_mano_agrees_with_keypoints(model64):
    pose, betas, trans = _random_params(2, n=4)
    mesh = model64.mesh_from_mano(pose, betas, trans)
    assert mesh.shape == (4, 2, model64.num_vertices, 3)
    kp = model64.keypoints_from_mano(pose, betas, trans)
    for h in range(2):
        tips = mesh[:, h, model64.tip_vertex_ids[h]]
        assert (tips - kp[:, 21 * h + np.array([0, 4, 8, 12, 16])]).abs().max().item() < 1e-3


def test_interhand_order_in_the_flat_hand(model64):
    rest = torch.zeros(1, 2, 16, 3, dtype=torch.float64)
    kp = model64.keypoints_from_rotmats(axis_angle_to_matrix(rest), torch.zeros(1, 2, 10, dtype=torch.float64))[0]
    right = kp[:21]
    tips = right[[0, 4, 8, 12, 16]]
    assert right[20].abs().max() == 0  # wrist
    assert int(tips[:, 0].argmax()) == 2  # middle tip is the farthest along the fingers (+x)
    assert int(tips[:, 2].argmin()) == 0 and int(tips[:, 2].argmax()) == 4  # thumb ... pinky along z
    for finger in range(5):  # tip -> base: distance from the wrist decreases
        d = right[4 * finger:4 * finger + 4].norm(dim=1)
        assert torch.all(d[:-1] > d[1:])


def test_left_is_the_mirror_of_the_right(model64):
    pose, betas, trans = _random_params(3)
    pose[:, 1] = pose[:, 0] * MIRROR_AA.repeat(16)
    betas[:, 1] = betas[:, 0]
    trans[:, 1] = trans[:, 0] * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    kp = model64.keypoints_from_mano(pose, betas, trans)
    mirrored = kp[:, :21] * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    assert (kp[:, 21:] - mirrored).abs().max().item() < 1e-6
    mesh = model64.mesh_from_mano(pose[:2], betas[:2], trans[:2])
    # smplx's Rodrigues adds 1e-8 to every axis-angle component, which is not mirror-symmetric.
    assert (mesh[:, 1] - mesh[:, 0] * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)).abs().max() < 1e-4


def test_defaults_dtype_faces_and_gradients(mano_dir):
    model = HandModel.from_dir(mano_dir)
    assert model.J_template.dtype == torch.float32
    assert list(model.parameters()) == []
    faces = model.faces
    assert faces.dtype == torch.long and faces.shape[0] == 2 and faces.shape[2] == 3
    assert torch.equal(faces[1], faces[0][:, [0, 2, 1]])  # left winding flipped
    g = torch.Generator().manual_seed(4)
    aa = (0.3 * torch.randn(3, 2, 16, 3, generator=g)).requires_grad_(True)
    betas = torch.randn(3, 2, 10, generator=g).requires_grad_(True)
    kp = model.keypoints_from_rotmats(axis_angle_to_matrix(aa), betas)
    assert kp.dtype == torch.float32 and kp.shape == (3, 42, 3)
    kp.square().sum().backward()
    assert torch.isfinite(aa.grad).all() and aa.grad[:, :, 1:].abs().sum() > 0
    assert torch.isfinite(betas.grad).all() and betas.grad.abs().sum() > 0


def test_default_dir_is_the_generated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VIEWSELECT_CACHE", str(tmp_path))
    model = HandModel.from_dir(default_mano_dir())
    assert model.mano_dir == tmp_path / "mano"
    assert (tmp_path / "mano" / "MANO_LEFT.pkl").is_file()


def _ih_regressor_like(mano_dir):
    """A 21 x V regressor reproducing joints + tips, with a 'wrist' that mixes many vertices."""
    data = pickle.loads((mano_dir / "MANO_RIGHT.pkl").read_bytes())
    V = data["v_template"].shape[0]
    rows = np.zeros((21, V))
    rows[:16] = data["J_regressor"]
    rows[16 + np.arange(5), data["tip_vertex_ids"]] = 1.0
    return rows[list(INTERHAND_FROM_JOINTS_AND_TIPS)]


def test_keypoint_regressor_option(tmp_path, mano_dir, model64):
    reg = _ih_regressor_like(mano_dir)
    path = tmp_path / "J_regressor_ih.npy"
    np.save(path, reg)
    with_reg = HandModel.from_dir(mano_dir, regressor_path=path).double()
    assert with_reg.uses_regressor
    pose, betas, trans = _random_params(5)
    # Regressed joints are not the skeleton's joints once posed, so compare against the posed mesh.
    mesh = with_reg.mesh_from_mano(pose, betas, trans)
    expected = torch.einsum("kv,bhvc->bhkc", torch.tensor(reg), mesh).reshape(B, 42, 3)
    got = with_reg.keypoints_from_mano(pose, betas, trans)
    assert (got - expected).abs().max().item() < 1e-3
    # Tips are the same single vertices as the default path.
    tips = np.array([0, 4, 8, 12, 16, 21, 25, 29, 33, 37])
    assert (got[:, tips] - model64.keypoints_from_mano(pose, betas, trans)[:, tips]).abs().max().item() < 1e-3
    # Root-relative frame: the regressed wrist.
    rot = with_reg.rotmats_from_mano(pose)
    rel = with_reg.keypoints_from_rotmats(rot, betas)
    assert (rel[:, :21] - (got[:, :21] - got[:, 20:21])).abs().max().item() < 1e-3
    verts = with_reg.vertices_from_rotmats(rot, betas)
    wrist = torch.einsum("v,bvc->bc", torch.tensor(reg[20]), verts[:, 0])
    assert wrist.abs().max().item() < 1e-3


def test_bad_regressor_files(tmp_path, mano_dir):
    with pytest.raises(HandflowError, match="missing keypoint regressor file"):
        HandModel.from_dir(mano_dir, regressor_path=tmp_path / "none.npy")
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((21, 7)))
    with pytest.raises(HandflowError, match=r"shape \(21, 7\), expected \(21,\d+\)") as err:
        HandModel.from_dir(mano_dir, regressor_path=bad)
    assert str(bad) in str(err.value)
    junk = tmp_path / "junk.npy"
    junk.write_bytes(b"not numpy")
    with pytest.raises(HandflowError, match="not a readable .npy"):
        HandModel.from_dir(mano_dir, regressor_path=junk)


def _copy_without_tips(src, dst):
    dst.mkdir()
    for name in ("MANO_RIGHT.pkl", "MANO_LEFT.pkl"):
        data = pickle.loads((src / name).read_bytes())
        for key in ("tip_vertex_ids", "synthetic_version"):
            data.pop(key)
        (dst / name).write_bytes(pickle.dumps(data))
    return dst


def test_files_without_tip_ids_use_interhand_tips(tmp_path, mano_dir, monkeypatch):
    folder = _copy_without_tips(mano_dir, tmp_path / "mano")
    model = HandModel.from_dir(folder).double()
    assert model.tip_vertex_ids.tolist() == [list(INTERHAND_TIP_IDS)] * 2
    pose, betas, trans = _random_params(6, n=3)
    mesh = model.mesh_from_mano(pose, betas, trans)
    kp = model.keypoints_from_mano(pose, betas, trans)
    assert (kp[:, 0] - mesh[:, 0, 745]).abs().max() < 1e-3  # thumb tip of the right hand
    assert (kp[:, 21 + 4] - mesh[:, 1, 317]).abs().max() < 1e-3  # index tip of the left hand

    monkeypatch.setattr(model_module, "INTERHAND_TIP_IDS", (745, 317, 445, 556, 100_000))
    with pytest.raises(HandflowError, match="778-vertex MANO topology"):
        HandModel.from_dir(folder)


def test_fast_path_follows_the_files_kinematic_tree(mano_dir):
    # Hang the middle finger's MCP off the index MCP: level 2 then gathers parents out of order.
    from smplx.lbs import lbs

    from handflow.hand.mano import load_mano_dir

    right, left = load_mano_dir(mano_dir)
    for data in (right, left):
        data["kintree_table"] = data["kintree_table"].copy()
        data["kintree_table"][0, 4] = 1
    tips = np.stack([right["tip_vertex_ids"], left["tip_vertex_ids"]])
    model = HandModel(right, left, tip_ids=tips).double()
    g = torch.Generator().manual_seed(7)
    rotmats = axis_angle_to_matrix(torch.randn(4, 2, 16, 3, generator=g, dtype=torch.float64))
    betas = torch.randn(4, 2, 10, generator=g, dtype=torch.float64)
    rel = model.keypoints_from_rotmats(rotmats, betas)
    for h, layer in enumerate(model.smplx_layers):
        assert layer.parents[4].item() == 1
        v, j = lbs(betas[:, h], rotmats[:, h], layer.v_template, layer.shapedirs, layer.posedirs, layer.J_regressor,
                   layer.parents, layer.lbs_weights, pose2rot=False)
        kp = torch.cat([j, v[:, tips[h]]], dim=1)[:, list(INTERHAND_FROM_JOINTS_AND_TIPS)]
        assert (rel[:, 21 * h:21 * (h + 1)] - (kp - kp[:, 20:21]) * 1000.0).abs().max().item() < 1e-3
