"""The inference path: BatchNorm folded into the convolutions, the precomputed flow sampler, the plan cache.

Every fast result is compared with the plain eval-mode model (``fast_inference = False``).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from handflow.model.config import ModelConfig
from handflow.model.handflownet import HandFlowNet
from handflow.model.pose_params import Y_DIM
from handflow.model.inference import fold_batchnorm
from handflow.model.resnet import ResNet

CFG = ModelConfig(crop_px=64, context_dim=32, flow_steps=3, flow_hidden=32, flow_blocks=2)


def _fake_hand_model():
    spec = importlib.util.spec_from_file_location("fake_hand", Path(__file__).with_name("fake_hand.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.FakeHandModel(dtype=torch.float32)


def _randomise_batchnorm(model: torch.nn.Module, seed: int = 0) -> None:
    """Non-trivial BatchNorm statistics and affine terms, as after training."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.5)
                m.running_var.copy_(torch.rand(n, generator=g) * 2 + 0.1)
                m.weight.copy_(torch.randn(n, generator=g))
                m.bias.copy_(torch.randn(n, generator=g) * 0.3)


@pytest.mark.parametrize("depth", [18, 50])
def test_folded_resnet_equals_eval_mode(depth):
    torch.manual_seed(0)
    net = ResNet(depth, width=8)
    _randomise_batchnorm(net)
    net.eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    folded = fold_batchnorm(net)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    x = torch.rand(3, 3, 64, 64)
    with torch.no_grad():
        ref = net(x)
        out = folded(x.contiguous(memory_format=torch.channels_last))
    # float32 rounding, relative to the feature scale (random BatchNorm affines amplify it with depth)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5 * float(ref.abs().max()))
    # the original keeps its BatchNorms, names and values (training and checkpoints unaffected)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


@pytest.fixture()
def net():
    torch.manual_seed(0)
    m = HandFlowNet(CFG, _fake_hand_model())
    _randomise_batchnorm(m.encoder)
    m.set_y_normalization(torch.randn(Y_DIM), torch.rand(Y_DIM) + 0.5)
    m.data_init(torch.randn(16, Y_DIM) * 2, torch.randn(16, 512))
    with torch.no_grad():  # trained-looking flow: LU entries, coupling outputs away from their init
        for name, p in m.flow.named_parameters():
            if "lower_entries" in name or "upper_entries" in name or "final_layer" in name:
                p.add_(torch.randn_like(p) * 0.05)
    return m.eval()


def _close(a, b, what: str) -> None:
    """Equal up to float32 rounding relative to the tensor's scale (lifting through exp(s) amplifies it)."""
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * max(1.0, float(b.abs().max())),
                               msg=lambda m: f"{what}: {m}")


def _both(net, fn):
    """``fn()`` on the plain path and on the inference plan."""
    net.fast_inference = False
    try:
        ref = fn()
    finally:
        net.fast_inference = True
    return ref, fn()


def test_inference_plan_matches_plain_path(net):
    g = torch.Generator().manual_seed(1)
    images = torch.rand(3, 3, 64, 64, generator=g)
    z = torch.randn(3, 5, Y_DIM, generator=g)
    K = torch.tensor([[480.0, 0, 31.5], [0, 480.0, 31.5], [0, 0, 1]]).repeat(3, 1, 1)
    with torch.inference_mode():
        ctx_ref, ctx = _both(net, lambda: net.encode(images))
        torch.testing.assert_close(ctx, ctx_ref, rtol=1e-4, atol=1e-5)
        for name, fn in {
            "inverse": lambda: net.inverse(z, ctx_ref),
            "inverse_2d": lambda: net.inverse(z[:, 0], ctx_ref),
            "sample": lambda: net.sample(ctx_ref, 5, z),
            "mode": lambda: net.mode(ctx_ref),
            "joints": lambda: net.predict_joints(ctx_ref, K, z),
        }.items():
            ref, out = _both(net, fn)
            for a, b in zip(out if isinstance(out, tuple) else (out,), ref if isinstance(ref, tuple) else (ref,)):
                _close(a, b, name)
        ref, out = _both(net, lambda: net.predict(images, K, 5, z))
        for k in ref:
            _close(out[k], ref[k], f"predict {k}")
    assert net.inference_plan() is None  # outside inference: the plain path


def test_plan_is_rebuilt_when_weights_change_and_never_saved(net):
    keys = set(net.state_dict())
    ctx = torch.randn(2, 512)
    with torch.no_grad():
        y0 = net.mode(ctx)
        plan = net.inference_plan()
        assert net.inference_plan() is plan  # cached while nothing changes
        net.flow.steps[0].actnorm.shift.add_(0.5)  # an in-place change, as load_state_dict makes
        assert net.inference_plan() is not plan
        y1 = net.mode(ctx)
        net.fast_inference = False
        _close(y1, net.mode(ctx), "mode after a change")
        net.fast_inference = True
    assert not torch.allclose(y0, y1)
    assert set(net.state_dict()) == keys  # the plan is not part of the module state


def test_training_mode_and_autograd_use_the_plain_path(net):
    net.train()
    with torch.no_grad():
        assert net.inference_plan() is None
    net.eval()
    ctx = torch.randn(2, 512, requires_grad=True)
    y, logdet = net.inverse(torch.randn(2, Y_DIM), ctx)
    (y.sum() + logdet.sum()).backward()
    assert ctx.grad is not None and net.encoder.bn1.weight.requires_grad


def test_shipped_model_gives_the_same_numbers_on_the_inference_path():
    from handflow.model.registry import load_model
    from viewselect.ranking.pipeline import DEFAULT_MODEL

    if not DEFAULT_MODEL.is_file():
        pytest.skip("no shipped model")
    model, _ = load_model(DEFAULT_MODEL, None)
    S = model.cfg.crop_px
    g = torch.Generator().manual_seed(0)
    images = torch.rand(4, 3, S, S, generator=g)
    z = torch.randn(4, 6, Y_DIM, generator=g)
    with torch.inference_mode():
        ctx_ref, ctx = _both(model, lambda: model.encode(images))
        torch.testing.assert_close(ctx, ctx_ref, rtol=1e-4, atol=1e-5)
        ref, out = _both(model, lambda: model.sample(ctx_ref, 6, z))
    _close(out[0], ref[0], "samples")
    _close(out[1], ref[1], "log-densities")
