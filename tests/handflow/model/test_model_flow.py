import math
import warnings

import pytest
import torch
from nflows.nn.nets import ResidualNet
from nflows.transforms import LULinear
from torch.autograd.functional import jacobian

from handflow.errors import HandflowError
from handflow.model.flow import ConditionalGlow, DataInitActNorm, LULinearSolve, _CouplingNet


def _flow(d=4, c=3, seed=0, perturb=0.3, **kw):
    torch.manual_seed(seed)
    kw = {"context_dim": 5, "num_steps": 3, "hidden": 16, "num_blocks": 1, **kw}
    f = ConditionalGlow(d, c, **kw).double()
    f.data_init(torch.randn(64, d, dtype=torch.float64) * 2 + 1, torch.randn(64, c, dtype=torch.float64))
    with torch.no_grad():
        for name, p in f.named_parameters():
            if "unconstrained_upper_diag" not in name:
                p.add_(perturb * torch.randn_like(p))
    return f.eval()


def test_log_prob_is_change_of_variables():
    f = _flow()
    ctx = torch.randn(3, 3, dtype=torch.float64)
    y = torch.randn(3, 4, dtype=torch.float64)
    lp = f.log_prob(y, ctx)
    for b in range(3):
        c = ctx[b : b + 1]
        z = f.forward_and_logdet(y[b : b + 1], c)[0][0]
        J_inv = jacobian(lambda yy: f.forward_and_logdet(yy[None], c)[0][0], y[b])  # ∂f^{-1}/∂y
        expect = -0.5 * (z @ z) - 2 * math.log(2 * math.pi) + torch.linalg.slogdet(J_inv)[1]
        assert abs(lp[b].item() - expect.item()) < 1e-9
        # log|det ∂f/∂z| at z from both directions
        J_f = jacobian(lambda zz: f.inverse(zz[None], c)[0][0], z)
        logdet_ref = torch.linalg.slogdet(J_f)[1]
        assert abs(f.forward_and_logdet(y[b : b + 1], c)[1].item() - logdet_ref.item()) < 1e-9
        assert abs(f.inverse(z[None], c)[1].item() - logdet_ref.item()) < 1e-9


def test_sample_logprob_inverse_round_trip():
    f = _flow(d=6, c=3, seed=1)
    ctx = torch.randn(2, 3, dtype=torch.float64)
    z = torch.randn(2, 5, 6, dtype=torch.float64)
    y, lp = f.sample(ctx, 5, z)
    assert y.shape == (2, 5, 6) and lp.shape == (2, 5)
    assert torch.allclose(f.log_prob_multi(y, ctx), lp, atol=1e-9)
    assert torch.allclose(f.log_prob(y[:, 2], ctx), lp[:, 2], atol=1e-9)
    z_back, _ = f.forward_and_logdet(y, ctx)
    assert torch.allclose(z_back, z, atol=1e-9)  # f^{-1}(f(z)) = z
    y_back, _ = f.inverse(z_back, ctx)
    assert torch.allclose(y_back, y, atol=1e-9)  # f(f^{-1}(y)) = y
    ys, lps = f.sample(ctx, 3)  # own noise
    assert ys.shape == (2, 3, 6) and torch.allclose(f.log_prob_multi(ys, ctx), lps, atol=1e-9)


def test_mode_is_image_of_zero_and_density_mode_for_constant_jacobian():
    f = _flow(seed=2)
    ctx = torch.randn(2, 3, dtype=torch.float64)
    m = f.mode(ctx)
    assert torch.allclose(m, f.inverse(torch.zeros(2, 4, dtype=torch.float64), ctx)[0])
    assert torch.allclose(f.forward_and_logdet(m, ctx)[0], torch.zeros(2, 4, dtype=torch.float64), atol=1e-10)
    # With coupling layers that are exactly the identity only ActNorm + LU remain: constant Jacobian, so
    # f(0) is the density mode of p(y|v) (in general it is only the image of the base mode z = 0).
    g = _flow(seed=3)
    with torch.no_grad():
        for name, p in g.named_parameters():
            if "final_layer" in name:
                p.zero_()
    m = g.mode(ctx).requires_grad_(True)
    lp = g.log_prob(m, ctx)
    (grad,) = torch.autograd.grad(lp.sum(), m)
    assert grad.abs().max() < 1e-9
    for _ in range(20):
        assert (g.log_prob(m.detach() + 0.05 * torch.randn_like(m), ctx) < lp.detach()).all()


def test_context_embedded_once_grouped_rows_equal_per_row_context():
    torch.manual_seed(0)
    net = _CouplingNet(7, 10, 16, 5, 2).double()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1 * torch.randn_like(p))
    ctx = torch.randn(3, 5, dtype=torch.float64)
    x = torch.randn(3 * 4, 7, dtype=torch.float64)
    ours = net(x, ctx)
    ref = ResidualNet.forward(net, x, ctx.repeat_interleave(4, dim=0))  # plain nflows on a repeated context
    assert torch.allclose(ours, ref, atol=1e-12)
    assert torch.allclose(net(x, ctx.repeat_interleave(4, dim=0)), ref, atol=1e-12)
    with pytest.raises(HandflowError):
        net(torch.randn(5, 7, dtype=torch.float64), ctx)


def test_log_prob_multi_mask_only_valid_rows():
    f = _flow(seed=4)
    ctx = torch.randn(2, 3, dtype=torch.float64)
    y = torch.randn(2, 3, 4, dtype=torch.float64)
    mask = torch.tensor([[True, False, True], [False, True, False]])
    lp = f.log_prob_multi(y, ctx, mask)
    full = f.log_prob_multi(y, ctx)
    assert torch.allclose(lp[mask], full[mask]) and (lp[~mask] == 0).all()


def test_lu_inverse_uses_linalg_and_matches_nflows():
    torch.manual_seed(0)
    lu = LULinearSolve(12, identity_init=False)
    x = torch.randn(9, 12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out, lad = lu.inverse(x)
        w_inv = lu.weight_inverse()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref, ref_lad = LULinear.inverse_no_cache(lu, x)
        ref_w = LULinear.weight_inverse(lu)
    assert torch.allclose(out, ref, atol=5e-6) and torch.allclose(lad, ref_lad)
    assert torch.allclose(w_inv, ref_w, atol=5e-6)
    assert torch.allclose(lu.forward(out)[0], x, atol=1e-5)


def test_no_deprecation_warning_anywhere_in_the_flow():
    f = _flow(seed=5).float()
    ctx = torch.randn(2, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y, _ = f.sample(ctx, 4)
        f.mode(ctx)
        f.log_prob_multi(y, ctx)
        f.train()
        f.log_prob(y[:, 0], ctx).sum().backward()


def test_actnorm_data_init_deterministic_and_guarded():
    torch.manual_seed(0)
    y = torch.randn(32, 5) * torch.tensor([1.0, 10.0, 0.1, 3.0, 0.0]) + 4.0  # last feature constant
    ctx = torch.randn(32, 2)
    a, b = ConditionalGlow(5, 2, 4, 2, 8, 1), ConditionalGlow(5, 2, 4, 2, 8, 1)
    b.load_state_dict(a.state_dict())
    assert not a.initialized
    a.data_init(y, ctx)
    b.data_init(y, ctx)
    assert a.initialized
    for (k, v), (_, w) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(v, w), k
    first = a.steps[0].actnorm
    out = first(y)[0]
    assert torch.allclose(out[:, :4].mean(0), torch.zeros(4), atol=1e-5)
    assert torch.allclose(out[:, :4].std(0, unbiased=False), torch.ones(4), atol=1e-4)
    assert torch.isfinite(out).all()
    # batch of one: centres only, no NaN
    one = DataInitActNorm(3)
    one.train()
    o, lad = one(torch.tensor([[1.0, 2.0, 3.0]]))
    assert torch.isfinite(o).all() and torch.isfinite(lad).all()
    # first training-mode y->z pass initialises; eval passes and sampling never do
    c = ConditionalGlow(5, 2, 4, 2, 8, 1).eval()
    ys, lp = c.sample(torch.randn(3, 2), 4)  # sampling before any training works
    assert torch.isfinite(ys).all() and torch.isfinite(lp).all()
    c.log_prob(y, ctx)
    assert not c.initialized
    c.train()
    c.log_prob(y, ctx)
    assert c.initialized


def test_no_nan_for_extreme_finite_inputs():
    f = _flow(d=6, c=3, seed=6).float()
    for scale in (1e-6, 1e3, 1e6):
        ctx = scale * torch.randn(4, 3)
        y = scale * torch.randn(4, 6)
        lp = f.log_prob(y, ctx)
        assert not torch.isnan(lp).any() and torch.isfinite(lp).all(), scale
        ys, lps = f.sample(ctx, 3, 8.0 * torch.randn(4, 3, 6))
        assert torch.isfinite(ys).all() and not torch.isnan(lps).any(), scale
        assert torch.isfinite(f.mode(ctx)).all()


def test_shape_errors_are_handflow_errors():
    f = _flow()
    ctx = torch.randn(2, 3, dtype=torch.float64)
    with pytest.raises(HandflowError):
        f.log_prob(torch.randn(2, 5, dtype=torch.float64), ctx)
    with pytest.raises(HandflowError):
        f.log_prob(torch.randn(2, 4, dtype=torch.float64), torch.randn(2, 7, dtype=torch.float64))
    with pytest.raises(HandflowError):
        f.sample(ctx, 3, torch.randn(2, 2, 4, dtype=torch.float64))
