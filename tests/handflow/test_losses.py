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
from handflow.geometry.recrop import shift_crops
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


class _LiftStub:
    """Just what ``pose_terms`` reads from a model: ``y_std``, ``cfg.crop_px`` and ``lift`` returning fixed joints."""

    def __init__(self, joints_cam, joints_rel):
        self.y_std = torch.ones(Y_DIM)
        self.cfg = ModelConfig(crop_px=S)
        self._j, self._r = joints_cam, joints_rel

    def lift(self, y, K, return_parts=False):
        return self._j, self._r, None


def test_root_relative_term_known_value():
    from handflow.losses import pose_terms, rr_keypoints

    gt = torch.randn(1, 42, 3, generator=torch.Generator().manual_seed(0)) * 50 + torch.tensor([0, 0, 600.0])
    pred = gt + torch.tensor([100.0, 0, 0])  # both hands shifted 10 cm: no articulation error at all
    pred[0, 3] += torch.tensor([3.0, 4.0, 0.0])  # right thumb base 5 mm off: 25 mm² = 25e-6 m²
    pred[0, 25] += torch.tensor([0.0, 0.0, 12.0])  # a left-hand joint off, but the left wrist is invalid
    valid = torch.ones(1, 42)
    valid[0, 41] = 0
    tg = LossTargets(y=torch.zeros(1, 1, Y_DIM), mode_index=torch.zeros(1, dtype=torch.long), joints_cam_mm=gt,
                     joints2d_px=torch.zeros(1, 42, 2), visible=torch.zeros(1, 42), K_crop=torch.eye(3)[None],
                     joints_valid=valid)
    t = pose_terms(_LiftStub(pred[:, None], rr_keypoints(pred)[:, None]), torch.zeros(1, 1, Y_DIM), tg, LossConfig())
    assert float(t["j3d_rr"]) == pytest.approx(25e-6, rel=1e-4)
    # the camera-frame term sees the 10 cm shift on the 41 valid joints, plus both offsets
    shifted = ((pred - gt) / 1000) ** 2
    assert float(t["j3d"]) == pytest.approx(float((shifted.sum(-1) * valid).sum()), rel=1e-5)
    assert float(t["j3d"]) > 41 * 0.01


def test_root_relative_term_enters_the_total_with_its_weight():
    net, img, tg = _setup(seed=4)
    net.eval()
    ctx = net.encode(img).detach()
    torch.manual_seed(0)
    _, a = handflow_loss(net, ctx, tg, LossConfig(nll_noise=0.0, w_j3d_rr=0.0))
    torch.manual_seed(0)
    _, b = handflow_loss(net, ctx, tg, LossConfig(nll_noise=0.0, w_j3d_rr=7.0))
    assert a["j3d_rr"] == pytest.approx(b["j3d_rr"]) and a["j3d_rr"] > 0
    assert b["total"] - a["total"] == pytest.approx(7.0 * a["j3d_rr"], rel=1e-4)


def test_shifted_targets_follow_the_shifted_crop():
    """Known answer: a crop shifted by d pixels moves every annotation's wrist t by 2 d / S, the 2D keypoints and
    the principal point by d; lifting the shifted y with the shifted intrinsics gives the same camera-frame hand."""
    net, _, tg = _setup(B=2, K=3)
    d = torch.tensor([[3.0, -2.0], [-40.0, 0.5]])  # the second crop's shift pushes keypoints out of it
    _, K = shift_crops(torch.zeros(2, 3, S, S), tg.K_crop, d)
    out = tg.shifted(d, K, S)
    t_r, t_l = slice(106, 108), slice(215, 217)
    for t in (t_r, t_l):
        assert torch.allclose(out.y[..., t] - tg.y[..., t], (2 * d / S)[:, None].expand(2, 3, 2))
    rest = torch.ones(Y_DIM, dtype=torch.bool)
    rest[t_r] = rest[t_l] = False
    assert torch.equal(out.y[..., rest], tg.y[..., rest])  # rotations, shape, depth
    assert torch.allclose(out.joints2d_px, tg.joints2d_px + d[:, None])
    assert torch.allclose(out.K_crop[:, :2, 2], tg.K_crop[:, :2, 2] + d)
    assert torch.allclose(out.joints2d_px, project_crop(tg.joints_cam_mm, out.K_crop), atol=1e-3)
    k = tg.mode_index[0]
    lifted = net.lift(out.y[torch.arange(2), tg.mode_index], out.K_crop)
    before = net.lift(tg.y[torch.arange(2), tg.mode_index], tg.K_crop)
    assert torch.allclose(lifted, before, atol=1e-2) and int(k) == 1
    inside = ((out.joints2d_px >= -0.5) & (out.joints2d_px <= S - 0.5)).all(-1)
    assert not bool(inside[1].all())  # some of them left the crop ...
    assert torch.equal(out.visible, tg.visible & inside)  # ... and are no longer visible
    assert torch.equal(out.joints_cam_mm, tg.joints_cam_mm) and torch.equal(out.mask, tg.mask)
    assert torch.equal(tg.shifted(torch.zeros(2, 2), tg.K_crop, S).y, tg.y)  # no shift, no change
