import importlib.util
from pathlib import Path

import pytest
import torch

from handflow.config import from_dict
from handflow.errors import HandflowError
from handflow.model.config import ModelConfig
from handflow.model.handflownet import HandFlowNet
from handflow.model.pose_params import Y_DIM


def _fake_hand_model():
    spec = importlib.util.spec_from_file_location("fake_hand", Path(__file__).with_name("fake_hand.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.FakeHandModel(dtype=torch.float32)


CFG = ModelConfig(crop_px=64, context_dim=32, flow_steps=2, flow_hidden=32, flow_blocks=1)


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    m = HandFlowNet(CFG, _fake_hand_model())
    m.set_y_normalization(torch.randn(Y_DIM), torch.rand(Y_DIM) + 0.5)
    m.data_init(torch.randn(16, Y_DIM), torch.randn(16, 512))
    return m.eval()


def test_encode_normalises_inside(net):
    img = torch.rand(2, 3, 64, 64)
    ctx = net.encode(img)
    assert ctx.shape == (2, 512)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    assert torch.allclose(ctx, net.encoder((img - mean) / std), atol=1e-6)


def test_y_normalisation_is_accounted_for(net):
    torch.manual_seed(1)
    ctx = torch.randn(2, 512)
    y, lp = net.sample(ctx, 3)
    assert y.shape == (2, 3, Y_DIM)
    assert torch.allclose(net.log_prob_multi(y, ctx), lp, atol=1e-3)
    assert torch.allclose(net.log_prob(y[:, 0], ctx), lp[:, 0], atol=1e-3)
    expect = net.flow.log_prob((y[:, 0] - net.y_mean) / net.y_std, ctx) - torch.log(net.y_std).sum()
    assert torch.allclose(net.log_prob(y[:, 0], ctx), expect, atol=1e-4)
    m = net.mode(ctx)
    assert torch.allclose(m, net.inverse(torch.zeros(2, Y_DIM), ctx)[0], atol=1e-5)
    z, logdet, _ = net.latents(y, ctx)
    _, logdet_inv = net.inverse(z, ctx)
    assert torch.allclose(logdet, logdet_inv, atol=1e-3)


def test_detmag_gradient_stops_at_the_encoder():
    torch.manual_seed(2)
    m = HandFlowNet(CFG, _fake_hand_model()).train()
    ctx = m.encode(torch.rand(2, 3, 64, 64))
    y = torch.randn(2, 3, Y_DIM)
    m.data_init(y, ctx.detach())
    _, logdet, _ = m.latents(y, ctx, detach_context=True)
    (-logdet.mean()).backward()
    assert m.encoder.conv1.weight.grad is None or m.encoder.conv1.weight.grad.abs().max() == 0
    coupling = m.flow.steps[0].coupling.transform_net
    assert coupling.initial_layer.weight.grad.abs().max() > 0
    assert m.flow.embed[0].weight.grad.abs().max() > 0  # the context embedding belongs to the flow
    m.zero_grad()
    _, _, logp = m.latents(y, m.encode(torch.rand(2, 3, 64, 64)))
    (-logp.mean()).backward()
    assert m.encoder.conv1.weight.grad.abs().max() > 0  # NLL does reach it


def test_predict_lift_and_state_dict(net):
    torch.manual_seed(3)
    img = torch.rand(2, 3, 64, 64)
    K = torch.tensor([[450.0, 0, 31.5], [0, 450.0, 31.5], [0, 0, 1]]).repeat(2, 1, 1)
    out = net.predict(img, K, n_samples=5)
    assert out["samples_joints"].shape == (2, 5, 42, 3) and out["mode_joints"].shape == (2, 42, 3)
    assert torch.allclose(out["mode_y"], net.mode(net.encode(img)), atol=1e-5)
    assert torch.allclose(out["mode_joints"], net.lift(out["mode_y"], K), atol=1e-3)
    sd = net.state_dict()
    assert not any(k.startswith("hand_model") for k in sd) and "y_std" in sd
    other = HandFlowNet(CFG, None)
    other.load_state_dict(sd)
    with pytest.raises(HandflowError, match="hand model"):
        other.lift(out["mode_y"], K)


def test_double_moves_hand_model_too():
    m = HandFlowNet(CFG, _fake_hand_model()).double()
    assert m.hand_model.J_rest.dtype == torch.float64 and m.y_std.dtype == torch.float64


def test_model_config():
    cfg = from_dict(ModelConfig, {"backbone_depth": 50, "crop_px": 96}, "t.toml")
    assert cfg.feature_dim == 2048 and ModelConfig().feature_dim == 512
    p = ModelConfig.paper()
    assert (p.backbone_depth, p.crop_px, p.context_dim, p.flow_hidden, p.flow_steps) == (50, 224, 0, 1024, 4)
    for bad in ({"kind": "vae"}, {"backbone_depth": 101}, {"crop_px": 16}, {"flow_steps": 0}):
        with pytest.raises(HandflowError):
            from_dict(ModelConfig, bad, "t.toml")
    with pytest.raises(HandflowError, match="unknown key"):
        from_dict(ModelConfig, {"depth": 18}, "t.toml")


def test_raw_feature_context_and_backbone_weights(tmp_path):
    from handflow.model.resnet import ResNet

    src = ResNet(18, num_classes=1000)
    torch.save(src.state_dict(), tmp_path / "r18.pth")
    cfg = ModelConfig(crop_px=64, context_dim=0, flow_steps=1, flow_hidden=16, flow_blocks=1,
                      backbone_weights=str(tmp_path / "r18.pth"))
    m = HandFlowNet(cfg)
    assert torch.equal(m.encoder.conv1.weight, src.conv1.weight)
    assert m.flow.embedded_dim == 512
    y, lp = m.sample(torch.randn(2, 512), 2)
    assert torch.isfinite(lp).all()
