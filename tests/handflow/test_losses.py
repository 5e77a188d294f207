import importlib.util
import math
from pathlib import Path

import pytest
import torch

from handflow.errors import HandflowError
from handflow.losses import LossConfig, LossTargets, handflow_loss, orthonormal_penalty
from handflow.model.config import ModelConfig
from handflow.model.handflownet import HandFlowNet
from handflow.model.pose_params import Y_DIM, project_crop, y_from_rotmats
from handflow.geometry.rotation import axis_angle_to_matrix

S = 64


def _fake_hand_model():
    path = Path(__file__).parent / "model" / "fake_hand.py"
    spec = importlib.util.spec_from_file_location("fake_hand", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.FakeHandModel(dtype=torch.float32)


def _setup(B=2, K=3, seed=0):
    torch.manual_seed(seed)
    hm = _fake_hand_model()
    net = HandFlowNet(ModelConfig(crop_px=S, context_dim=32, flow_steps=2, flow_hidden=32, flow_blocks=1), hm)
    Kc = torch.tensor([[300.0, 0, 31.5], [0, 300.0, 31.5], [0, 0, 1]]).repeat(B, 1, 1)
    ys, joints = [], None
    for k in range(K):
        rot = axis_angle_to_matrix(0.3 * torch.randn(B, 2, 16, 3))
        betas = torch.randn(B, 2, 10)
        roots = torch.tensor([[40.0, 0, 600], [-40.0, 0, 600]]) + 5 * torch.randn(B, 2, 3)
        ys.append(y_from_rotmats(rot, betas, roots, Kc, S))
        if k == 1:  # annotation used for the mode: its keypoints are the 3D/2D targets
            rel = hm.keypoints_from_rotmats(rot, betas)
            joints = rel + torch.repeat_interleave(roots, 21, dim=1)
    y = torch.stack(ys, 1)
    tg = LossTargets(
        y=y,
        mode_index=torch.tensor([1] * B),
        joints_cam_mm=joints,
        joints2d_px=project_crop(joints, Kc),
        visible=(torch.rand(B, 42) > 0.3),
        K_crop=Kc,
        mask=torch.tensor([[True, True, False]] + [[True, True, True]] * (B - 1)),
    )
    net.set_y_normalization(y.reshape(-1, Y_DIM).mean(0), y.reshape(-1, Y_DIM).std(0) + 0.1)
    net.train()
    img = torch.rand(B, 3, S, S)
    return net, img, tg


def test_total_and_parts_and_backward():
    net, img, tg = _setup()
    ctx = net.encode(img)
    total, parts = handflow_loss(net, ctx, tg)
    assert torch.isfinite(total)
    assert set(parts) >= {"nll", "detmag", "y", "j3d", "j2d_mode", "j2d_samples", "q", "total", "mpjpe_rr_mm"}
    assert all(isinstance(v, float) and math.isfinite(v) for v in parts.values())
    c = LossConfig()
    recomposed = (c.w_nll * parts["nll"] + c.w_detmag * parts["detmag"] + c.w_y * parts["y"] + c.w_j3d * parts["j3d"]
                  + c.w_j2d * parts["j2d_mode"] + c.w_j2d_samples * parts["j2d_samples"] + c.w_q * parts["q"])
    assert abs(recomposed - parts["total"]) < 1e-4 * max(1.0, abs(recomposed))
    total.backward()
    grads = [p.grad for p in net.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert net.encoder.conv1.weight.grad.abs().max() > 0


def test_deterministic_parts_match_their_definitions():
    net, img, tg = _setup(seed=1)
    net.eval()
    ctx = net.encode(img)
    cfg = LossConfig(nll_noise=0.0)
    _, parts = handflow_loss(net, ctx, tg, cfg)
    with torch.no_grad():
        lp = net.log_prob_multi(tg.y, ctx, tg.mask)
        nll = (-(lp * tg.mask).sum(1) / tg.mask.sum(1)).mean()
        mode = net.mode(ctx)
        y_star = tg.y[:, 1]
        l_y = (((mode - y_star) / net.y_std) ** 2).sum(-1).mean()
        joints = net.lift(mode, tg.K_crop)
        j3d = (((joints - tg.joints_cam_mm) / 1000) ** 2).sum((-1, -2)).mean()
        e2 = (((project_crop(joints, tg.K_crop) - tg.joints2d_px) / S) ** 2).sum(-1)
        j2d = (e2 * tg.visible).sum(-1).mean()
    assert parts["nll"] == pytest.approx(float(nll), rel=1e-4)
    assert parts["y"] == pytest.approx(float(l_y), rel=1e-4)
    assert parts["j3d"] == pytest.approx(float(j3d), rel=1e-4)
    assert parts["j2d_mode"] == pytest.approx(float(j2d), rel=1e-4)


def test_masked_annotations_do_not_matter():
    net, img, tg = _setup(seed=2)
    net.eval()
    ctx = net.encode(img).detach()
    cfg = LossConfig(nll_noise=0.0, n_samples=0)
    _, a = handflow_loss(net, ctx, tg, cfg)
    tg.y = tg.y.clone()
    tg.y[0, 2] = 1e4  # the masked-out slot
    _, b = handflow_loss(net, ctx, tg, cfg)
    for k in ("nll", "detmag", "y", "j3d", "j2d_mode", "q"):
        assert a[k] == pytest.approx(b[k], rel=1e-6), k


@pytest.mark.parametrize("where", ["annotations", "samples"])
def test_detmag_alone_trains_flow_not_encoder(where):
    net, img, tg = _setup(seed=3)
    ctx = net.encode(img)
    zero = dict(w_nll=0.0, w_y=0.0, w_j3d=0.0, w_j2d=0.0, w_j2d_samples=0.0, w_q=0.0)
    total, parts = handflow_loss(net, ctx, tg, LossConfig(w_detmag=1.0, detmag_at=where, **zero))
    total.backward()
    g = net.encoder.conv1.weight.grad
    assert g is None or g.abs().max() == 0
    assert net.flow.transform._transforms[2].transform_net.initial_layer.weight.grad.abs().max() > 0
    assert net.flow.transform._transforms[1].unconstrained_upper_diag.grad.abs().max() > 0


def test_orthonormal_penalty():
    torch.manual_seed(0)
    _, _, tg = _setup(seed=4)
    assert orthonormal_penalty(tg.y).abs().max() < 1e-8
    y = torch.randn(3, Y_DIM)
    assert (orthonormal_penalty(y) > 1).all()
    y2 = tg.y[:, 0].clone()
    y2[:, 0:3] *= 2  # right global orientation: first column length 2 -> (4-1)^2 = 9
    assert orthonormal_penalty(y2) == pytest.approx(torch.full((2,), 9.0), abs=1e-4)


def test_bad_targets():
    net, img, tg = _setup(seed=5)
    ctx = net.encode(img)
    tg.mask = torch.zeros_like(tg.mask)
    with pytest.raises(HandflowError, match="at least one valid"):
        handflow_loss(net, ctx, tg)
    with pytest.raises(HandflowError):
        LossConfig(detmag_at="everywhere")
