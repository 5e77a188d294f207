import numpy as np
import pytest
import torch

from handflow.errors import HandflowError
from handflow.geometry.camera import cam_to_world, look_at, world_to_cam
from handflow.model.pose_params import (
    LOG_S_RANGE, Y_DIM, join_y, joints_to_world, lift_y, project_crop, rotmats_from_y, split_y, y_from_mano,
)

S = 128


@pytest.fixture(scope="module")
def hand_model():
    from handflow.hand.model import HandModel
    from handflow.synth.mano import default_mano_dir

    return HandModel.from_dir(default_mano_dir()).double()


def _scene(B=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    dt = torch.float64
    pose = 0.4 * torch.randn(B, 2, 48, generator=g, dtype=dt)
    betas = torch.randn(B, 2, 10, generator=g, dtype=dt)
    trans = torch.tensor([[0.06, 0.0, 0.0], [-0.06, 0.0, 0.0]], dtype=dt)
    trans = trans + 0.02 * torch.randn(B, 2, 3, generator=g, dtype=dt)
    Rs, cps = [], []
    for b in range(B):
        az, el = 2 * np.pi * b / B + 0.3, 0.4 - 0.2 * b
        campos = 1000.0 * np.array([np.cos(az) * np.cos(el), np.sin(az) * np.cos(el), np.sin(el)])
        Rs.append(look_at(campos, np.zeros(3)))
        cps.append(campos)
    R = torch.tensor(np.stack(Rs), dtype=dt)
    campos = torch.tensor(np.stack(cps), dtype=dt)
    K = torch.tensor([[900.0, 0, 61.5], [0, 905.0, 66.0], [0, 0, 1]], dtype=dt).repeat(B, 1, 1)
    K[:, 0, 0] += 10 * torch.arange(B)
    return pose, betas, trans, R, campos, K


def test_y_from_mano_then_lift_reproduces_camera_keypoints(hand_model):
    pose, betas, trans, R, campos, K = _scene()
    y = y_from_mano(pose, betas, trans, R, campos, K, S, hand_model)
    assert y.shape == (4, Y_DIM) and y.dtype == torch.float64
    kp_world = hand_model.keypoints_from_mano(pose, betas, trans).to(torch.float64)
    gt_cam = (kp_world - campos[:, None]) @ R.transpose(-1, -2)  # X_cam = R (X_world - campos)
    assert torch.allclose(gt_cam[1], world_to_cam(kp_world[1], R[1], campos[1]))
    lifted = lift_y(y, K, S, hand_model)
    assert (lifted - gt_cam).abs().max() < 1e-3  # mm
    # projecting the lifted wrists returns t exactly
    uv = project_crop(lifted, K)[:, [20, 41]]
    t = split_y(y)["t"]
    assert (2 * uv / S - 1 - t).abs().max() < 1e-6
    # back to world
    world = joints_to_world(lifted, R, campos)
    assert (world - kp_world).abs().max() < 1e-3
    assert torch.allclose(world, cam_to_world(lifted, R, campos[:, None]))
    # betas are carried, s matches the documented definition
    parts = split_y(y)
    assert torch.equal(parts["betas"], betas)
    Z = gt_cam[:, [20, 41], 2]
    assert torch.allclose(parts["s"], torch.log((K[:, None, 0, 0] / S) * 1000.0 / Z))


def test_lift_broadcasts_samples_over_images(hand_model):
    pose, betas, trans, R, campos, K = _scene(B=2, seed=1)
    y = y_from_mano(pose, betas, trans, R, campos, K, S, hand_model)
    ys = y[:, None].expand(2, 3, Y_DIM)
    out = lift_y(ys, K, S, hand_model)
    assert out.shape == (2, 3, 42, 3)
    assert torch.allclose(out[:, 1], lift_y(y, K, S, hand_model), atol=1e-9)
    joints, rel, roots = lift_y(y, K, S, hand_model, return_parts=True)
    assert rel[:, [20, 41]].abs().max() < 1e-9 and torch.allclose(joints[:, [20, 41]], roots)


def test_rot6d_blocks_give_rotations_even_for_noisy_y():
    torch.manual_seed(0)
    y = torch.randn(5, Y_DIM, dtype=torch.float64)
    Rm = rotmats_from_y(y)
    assert Rm.shape == (5, 2, 16, 3, 3)
    eye = torch.eye(3, dtype=torch.float64)
    assert (Rm.transpose(-1, -2) @ Rm - eye).abs().max() < 1e-12
    assert (torch.linalg.det(Rm) - 1).abs().max() < 1e-12


def test_extreme_log_scale_is_clamped(hand_model):
    pose, betas, trans, R, campos, K = _scene(B=2, seed=2)
    y = y_from_mano(pose, betas, trans, R, campos, K, S, hand_model).clone()
    y[0, 108] = -30.0  # right hand log-scale of image 0: would be 1e13 times too far
    y[1, 109 + 108] = 1e4  # left hand of image 1: exp overflows without the clamp
    lifted = lift_y(y, K, S, hand_model)
    assert torch.isfinite(lifted).all()
    lo, hi = LOG_S_RANGE
    assert torch.allclose(lifted[0, 20, 2], 1000.0 * K[0, 0, 0] / (S * torch.exp(torch.tensor(lo, dtype=K.dtype))))
    assert torch.allclose(lifted[1, 41, 2], 1000.0 * K[1, 0, 0] / (S * torch.exp(torch.tensor(hi, dtype=K.dtype))))
    uv = project_crop(lifted, K)
    t = split_y(y)["t"]
    assert torch.allclose(2 * uv[0, 20] / S - 1, t[0, 0], atol=1e-9)
    assert torch.allclose(2 * uv[1, 41] / S - 1, t[1, 1], atol=1e-9)


def test_split_join_layout():
    y = torch.arange(2 * Y_DIM, dtype=torch.float64).reshape(2, Y_DIM)
    p = split_y(y)
    assert p["q"].shape == (2, 2, 16, 6) and p["betas"].shape == (2, 2, 10)
    assert p["t"].shape == (2, 2, 2) and p["s"].shape == (2, 2)
    assert p["t"][0, 0].tolist() == [106.0, 107.0] and p["s"][0, 1].item() == 109 + 108  # right hand first
    assert torch.equal(join_y(p["q"], p["betas"], p["t"], p["s"]), y)
    with pytest.raises(HandflowError):
        split_y(torch.zeros(3, 217))
    with pytest.raises(HandflowError):
        lift_y(torch.zeros(2, Y_DIM), torch.eye(3).repeat(3, 1, 1), S, None)


def test_root_behind_camera_is_an_error(hand_model):
    pose, betas, trans, R, campos, K = _scene(B=1, seed=3)
    with pytest.raises(HandflowError, match="behind the camera"):
        flip = torch.diag(torch.tensor([-1.0, 1.0, -1.0], dtype=R.dtype))  # camera turned away from the hands
        y_from_mano(pose, betas, trans, flip @ R, campos, K, S, hand_model)
