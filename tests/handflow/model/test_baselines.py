"""Baselines (regressor, MC-dropout, Gaussian, cVAE): HandFlowNet's interface, sampling semantics, losses,
checkpoints, configs, and one ``viewselect train-model`` run per kind on the tiny capture."""

from __future__ import annotations

import dataclasses
import importlib.util
import math
from pathlib import Path

import pytest
import torch

from handflow.checkpoint import save_checkpoint
from handflow.config import from_dict, to_dict
from handflow.errors import HandflowError
from handflow.geometry.rotation import axis_angle_to_matrix
from handflow.losses import LossConfig, LossTargets
from handflow.model.baselines import BASELINES
from handflow.model.config import MODEL_KINDS, ModelConfig
from handflow.model.handflownet import HandFlowNet
from handflow.model.pose_params import Y_DIM, project_crop, y_from_rotmats
from handflow.model.registry import build_model, export_model, load_model

REPO = Path(__file__).resolve().parents[3]
KINDS = ("regressor", "mc_dropout", "gaussian", "cvae")
S = 32


def _fake_hand_model():
    spec = importlib.util.spec_from_file_location("fake_hand", Path(__file__).with_name("fake_hand.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.FakeHandModel(dtype=torch.float32)


def _cfg(kind: str, **kw) -> ModelConfig:
    return ModelConfig(kind=kind, backbone_width=8, crop_px=S, head_hidden=32, head_layers=2, latent_dim=4,
                       dropout_p=0.2, **kw)


def _K(B: int) -> torch.Tensor:
    return torch.tensor([[150.0, 0, 15.5], [0, 150.0, 15.5], [0, 0, 1]]).repeat(B, 1, 1)


def _model(kind: str, seed: int = 0):
    """A tiny model with a non-trivial y normalisation and head outputs (so σ, masks and latents matter)."""
    torch.manual_seed(seed)
    m = build_model(_cfg(kind), _fake_hand_model())
    y = _poses(64, seed)
    m.set_y_normalization(y.mean(0), y.std(0))
    with torch.no_grad():
        for p in m.parameters():  # the heads start near zero: make their outputs depend on the image
            if p.ndim == 2 and p.shape[0] in (Y_DIM, 2 * Y_DIM, 2 * 4):
                p.normal_(0.0, 0.3 / math.sqrt(p.shape[1]))
    return m.eval()


def _poses(B: int, seed: int, with_joints: bool = False):
    g = torch.Generator().manual_seed(seed)
    hm = _fake_hand_model()
    rot = axis_angle_to_matrix(0.3 * torch.randn(B, 2, 16, 3, generator=g))
    betas = torch.randn(B, 2, 10, generator=g)
    roots = torch.tensor([[40.0, 0, 600], [-40.0, 0, 600]]) + 5 * torch.randn(B, 2, 3, generator=g)
    y = y_from_rotmats(rot, betas, roots, _K(B), S)
    if not with_joints:
        return y
    return y, hm.keypoints_from_rotmats(rot, betas) + torch.repeat_interleave(roots, 21, dim=1)


def _targets(B: int = 4, K: int = 3, seed: int = 0, nan_pad: bool = True) -> LossTargets:
    """K annotations per image, the first one of image 0 padded (invalid, NaN when ``nan_pad``)."""
    ys = [_poses(B, seed + 10 * k) for k in range(K)]
    ys[1], joints = _poses(B, seed + 10, with_joints=True)  # the mode annotation: 3D/2D targets
    y = torch.stack(ys, 1)
    mask = torch.ones(B, K, dtype=torch.bool)
    mask[0, 0] = False
    if nan_pad:
        y[0, 0] = float("nan")
    return LossTargets(y=y, mode_index=torch.ones(B, dtype=torch.long), joints_cam_mm=joints,
                       joints2d_px=project_crop(joints, _K(B)), visible=torch.rand(B, 42) > 0.3, K_crop=_K(B),
                       mask=mask)


@pytest.fixture(scope="module")
def models():
    return {kind: _model(kind) for kind in KINDS}


# ------------------------------------------------------------------------------------------ interface
@pytest.mark.parametrize("kind", KINDS)
def test_predict_shapes_mode_and_logp(models, kind):
    m = models[kind]
    assert m.kind == kind and isinstance(m, BASELINES[kind])
    img = torch.rand(3, 3, S, S)
    out = m.predict(img, _K(3), n_samples=5, z=torch.randn(3, 5, Y_DIM))
    shapes = {k: tuple(v.shape) for k, v in out.items()}
    assert shapes == {"mode_y": (3, Y_DIM), "mode_joints": (3, 42, 3), "samples_y": (3, 5, Y_DIM),
                      "samples_joints": (3, 5, 42, 3), "samples_logp": (3, 5)}
    for k in ("mode_y", "mode_joints", "samples_y", "samples_joints"):
        assert torch.isfinite(out[k]).all(), k
    # logp is exact for the Gaussian and undefined (NaN) for the others
    assert torch.isfinite(out["samples_logp"]).all() if kind == "gaussian" else out["samples_logp"].isnan().all()
    with torch.no_grad():
        ctx = m.encode(img)
        assert torch.allclose(out["mode_y"], m.mode(ctx), atol=1e-5)
        assert torch.allclose(out["mode_joints"], m.lift(out["mode_y"], _K(3)), atol=1e-3)
        y, lp = m.sample(ctx, 4)  # z drawn inside
    assert y.shape == (3, 4, Y_DIM) and lp.shape == (3, 4)
    m.data_init(y[:, 0], ctx)  # a no-op, but callable as on HandFlowNet
    with pytest.raises(HandflowError, match="noise z"):
        m.sample(ctx, 4, torch.randn(3, 5, Y_DIM))


@pytest.mark.parametrize("kind", KINDS)
def test_sampling_is_deterministic_given_z_and_independent_of_batching(models, kind):
    m = models[kind]
    img, z = torch.rand(5, 3, S, S), torch.randn(5, 7, Y_DIM)
    a = m.predict(img, _K(5), n_samples=7, z=z)
    b = m.predict(img, _K(5), n_samples=7, z=z)
    assert all(torch.equal(a[k], b[k]) or (a[k].isnan().all() and b[k].isnan().all()) for k in a)
    parts = [m.predict(img[a0:a1], _K(a1 - a0), n_samples=7, z=z[a0:a1]) for a0, a1 in ((0, 2), (2, 3), (3, 5))]
    for k in ("mode_y", "samples_y", "samples_joints"):
        assert torch.allclose(torch.cat([p[k] for p in parts]), a[k], atol=1e-4, rtol=1e-5), k
    if kind != "regressor":
        spread = a["samples_y"].std(1).mean()
        assert spread > 1e-4, "samples must differ when their noise does"


def test_regressor_samples_are_its_prediction(models):
    m = models["regressor"]
    out = m.predict(torch.rand(2, 3, S, S), _K(2), n_samples=6, z=torch.randn(2, 6, Y_DIM))
    assert torch.equal(out["samples_y"], out["mode_y"][:, None].expand(-1, 6, -1))
    assert torch.equal(out["samples_joints"], out["mode_joints"][:, None].expand(-1, 6, -1, -1))
    assert out["samples_joints"].std(1).max() == 0


def test_gaussian_samples_have_the_predicted_std_and_density(models):
    m = models["gaussian"]
    with torch.no_grad():
        ctx = m.encode(torch.rand(2, 3, S, S))
        mu, log_std = m.params(ctx)
        z = torch.randn(2, 20000, Y_DIM, generator=torch.Generator().manual_seed(3))
        y, logp = m.sample(ctx, 20000, z)
    std = m.y_std * torch.exp(log_std)  # (2,218) in y units
    assert log_std.std() > 0.05  # σ varies over dimensions, so this checks more than a constant
    assert ((y.std(1) / std - 1).abs().max() < 0.05)  # sampling error ~0.5 % per dimension
    assert ((y.mean(1) - m.denormalize_y(mu)).abs() / std).max() < 0.05
    y0, _ = m.sample(ctx, 1, torch.zeros(2, 1, Y_DIM))
    assert torch.allclose(y0[:, 0], m.mode(ctx), atol=1e-5)
    assert torch.allclose(m.log_prob_multi(y[:, :5], ctx), logp[:, :5], atol=1e-2, rtol=1e-5)
    # against torch's own Normal
    ref = torch.distributions.Normal(m.denormalize_y(mu)[:, None], std[:, None]).log_prob(y[:, :5]).sum(-1)
    assert torch.allclose(logp[:, :5], ref, atol=1e-2, rtol=1e-5)


def test_mc_dropout_masks_from_z(models):
    m = models["mc_dropout"]
    p = m.cfg.dropout_p
    keep = m.keep_masks(torch.randn(1, 20000, Y_DIM, generator=torch.Generator().manual_seed(4)))
    assert keep.shape == (1, 20000, 2, 32)
    assert keep.unique().tolist() == [0.0, pytest.approx(1 / (1 - p))]
    dropped = (keep == 0).float().reshape(20000, -1)
    assert abs(dropped.mean().item() - p) < 0.005 and (dropped.mean(0) - p).abs().max() < 0.03
    z = torch.randn(64, 3, Y_DIM)
    assert torch.equal(m.keep_masks(z[5:6]), m.keep_masks(z)[5:6])  # a mask depends on its own z row only
    corr = torch.corrcoef(dropped.T)
    assert (corr - torch.eye(corr.shape[0])).abs().max() < 0.15  # drop decisions are nearly independent
    with torch.no_grad():
        ctx = m.encode(torch.rand(2, 3, S, S))
        assert torch.equal(m.mode(ctx), m.denormalize_y(m.head(ctx)[:, 0]))  # dropout off
        y0, _ = m.sample(ctx, 1, torch.zeros(2, 1, Y_DIM))  # z = 0 keeps every unit, scaled: not the mode
        assert not torch.allclose(y0[:, 0], m.mode(ctx))


def test_cvae_latent_is_a_prefix_of_z(models):
    m = models["cvae"]
    with torch.no_grad():
        ctx = m.encode(torch.rand(2, 3, S, S))
        z = torch.randn(2, 3, Y_DIM)
        z2 = z.clone()
        z2[..., m.cfg.latent_dim :] = torch.randn(2, 3, Y_DIM - m.cfg.latent_dim)
        assert torch.equal(m.sample(ctx, 3, z)[0], m.sample(ctx, 3, z2)[0])
        assert torch.allclose(m.sample(ctx, 1, torch.zeros(2, 1, Y_DIM))[0][:, 0], m.mode(ctx), atol=1e-6)
        elbo, kl = m.elbo(_targets(2, 3, nan_pad=False).y, ctx)
    assert elbo.shape == kl.shape == (2, 3) and (kl >= 0).all() and torch.isfinite(elbo).all()


def test_encoder_and_buffers_are_handflownets(models):
    hf = HandFlowNet(dataclasses.replace(_cfg("regressor"), kind="handflow"), None).eval()
    for kind, m in models.items():
        shared = {k for k in hf.state_dict() if not k.startswith("flow.")}
        assert shared <= set(m.state_dict()), kind
        assert not any(k.startswith("hand_model") for k in m.state_dict())
        hf.load_state_dict({k: v for k, v in m.state_dict().items() if k in shared}, strict=False)
        img = torch.rand(2, 3, S, S)
        with torch.no_grad():
            # HandFlowNet's eval path folds BatchNorm into the convolutions: equal up to float rounding
            assert torch.allclose(m.encode(img), hf.encode(img), atol=1e-4, rtol=1e-4)
    m = _model("mc_dropout").double()
    assert m.hand_model.J_rest.dtype == torch.float64 and m.y_std.dtype == torch.float64
    m.predict(torch.rand(1, 3, S, S, dtype=torch.float64), _K(1).double(), n_samples=2)


# ------------------------------------------------------------------------------------------ losses
@pytest.mark.parametrize("kind", KINDS)
def test_loss_decreases_on_one_batch(kind):
    torch.manual_seed(5)
    m = build_model(_cfg(kind), _fake_hand_model()).train()
    tg = _targets()
    valid = tg.y[tg.mask]
    m.set_y_normalization(valid.mean(0), valid.std(0))
    img = torch.rand(4, 3, S, S)
    # at the default w_nll the geometric terms dominate; a large one shows the likelihood term trains too
    cfg = LossConfig(w_nll=1.0)
    opt = torch.optim.Adam(m.parameters(), lr=2e-3)

    def loss_at(seed):
        torch.manual_seed(seed)
        return m.loss(m.encode(img), tg, cfg)

    first, parts = loss_at(0)
    assert {"y", "j3d", "j2d_mode", "j2d_samples", "q", "total", "mpjpe_rr_mm"} <= set(parts)
    assert ("nll" in parts) == (kind in ("gaussian", "cvae")) and ("kl" in parts) == (kind == "cvae")
    assert all(math.isfinite(v) for v in parts.values())
    recomposed = (cfg.w_nll * parts.get("nll", 0.0) + cfg.w_y * parts["y"] + cfg.w_j3d * parts["j3d"]
                  + cfg.w_j2d * parts["j2d_mode"] + cfg.w_j2d_samples * parts["j2d_samples"] + cfg.w_q * parts["q"])
    assert abs(recomposed - parts["total"]) < 1e-4 * max(1.0, abs(recomposed))
    assert (parts["j2d_samples"] == 0) == (kind == "regressor")
    for step in range(8):
        total, _ = loss_at(100 + step)
        opt.zero_grad()
        total.backward()
        assert all(torch.isfinite(p.grad).all() for p in m.parameters() if p.grad is not None)
        opt.step()
    last, last_parts = loss_at(0)
    assert last.item() < first.item() - 0.05 * abs(first.item())
    if "nll" in parts:
        assert last_parts["nll"] < parts["nll"] - 1.0


def test_likelihoods_average_over_valid_annotations():
    cfg = LossConfig(nll_noise=0.0)
    for kind in ("gaussian", "cvae"):
        m = _model(kind)
        tg = _targets(nan_pad=True)
        img = torch.rand(4, 3, S, S)
        ctx = m.encode(img)
        torch.manual_seed(6)
        total, parts = m.loss(ctx, tg, cfg)
        total.backward()
        assert all(torch.isfinite(p.grad).all() for p in m.parameters() if p.grad is not None), kind
        clean = torch.where(tg.mask[..., None], tg.y, m.y_mean)
        with torch.no_grad():
            if kind == "gaussian":
                lp = m.log_prob_multi(clean, ctx)
            else:  # the same eps as inside the loss: the first draw after the seed
                torch.manual_seed(6)
                lp = m.elbo(clean, ctx, torch.randn(4, 3, m.cfg.latent_dim))[0]
        expect = -torch.stack([lp[b][tg.mask[b]].mean() for b in range(4)]).mean()
        assert parts["nll"] == pytest.approx(float(expect), rel=1e-5), kind


# ------------------------------------------------------------------------------------------ checkpoints, configs
@pytest.mark.parametrize("kind", KINDS)
def test_checkpoint_round_trip(tmp_path, models, kind):
    m = models[kind]
    train_ckpt = tmp_path / "last.pt"
    save_checkpoint(train_ckpt, {"kind": kind, "config": {"model": to_dict(m.cfg)}, "state_dict": m.state_dict(),
                                 "optimizer": {}, "rng": {}})
    img, z = torch.rand(2, 3, S, S), torch.randn(2, 4, Y_DIM)
    ref = m.predict(img, _K(2), n_samples=4, z=z)
    full, _ = load_model(export_model(train_ckpt, tmp_path / "full.pt", half=False), _fake_hand_model())
    assert full.kind == kind and not full.training
    got = full.predict(img, _K(2), n_samples=4, z=z)
    assert all(torch.equal(got[k], ref[k]) or (got[k].isnan().all() and ref[k].isnan().all()) for k in ref)
    half, meta = load_model(export_model(train_ckpt, tmp_path / "half.pt"), _fake_hand_model())
    assert meta["kind"] == kind and half.kind == kind
    out = half.predict(img, _K(2), n_samples=4, z=z)
    assert torch.isfinite(out["samples_joints"]).all() and torch.isfinite(out["mode_joints"]).all()
    wrong = "regressor" if kind != "regressor" else "gaussian"
    save_checkpoint(tmp_path / "wrong.pt", {"kind": wrong, "config": {"model": to_dict(m.cfg)},
                                            "state_dict": m.state_dict()})
    with pytest.raises(HandflowError, match="marked"):
        load_model(tmp_path / "wrong.pt", _fake_hand_model())


def test_model_config_fields():
    assert set(KINDS) | {"handflow"} == set(MODEL_KINDS) == set(BASELINES) | {"handflow"}
    for bad in ({"kind": "vae"}, {"dropout_p": 0.0}, {"dropout_p": 1.0}, {"latent_dim": 0},
                {"latent_dim": Y_DIM + 1}, {"head_hidden": 0}, {"head_layers": 0}):
        with pytest.raises(HandflowError, match=next(iter(bad))):
            from_dict(ModelConfig, bad, "t.toml")
    with pytest.raises(HandflowError, match="'cvae' model"):
        BASELINES["cvae"](_cfg("gaussian"))


def test_eval_configs_load_and_mirror_default():
    """Every evaluation model trains exactly like the full HandFlowNet of the protocol, except its own
    head fields (baselines) or the one ablated setting (w_detmag, data.annotations)."""
    from handflow.train import load_train_config

    full = to_dict(load_train_config(REPO / "configs" / "eval" / "handflow.toml"))
    head_fields = {"kind", "head_hidden", "head_layers", "dropout_p", "latent_dim"}
    ablated = {"handflow-no-detmag": ("loss", "w_detmag"), "handflow-no-multihands": ("data", "annotations")}
    seen = set()
    for path in sorted((REPO / "configs" / "eval").glob("*.toml")):
        cfg = load_train_config(path)
        seen.add(cfg.model.kind)
        d = to_dict(cfg)
        if path.stem in ablated:
            table, key = ablated[path.stem]
            assert d[table][key] != full[table][key]
            d[table][key] = full[table][key]
        if cfg.model.kind == "handflow":
            assert d == full
            continue
        assert path.stem == cfg.model.kind
        assert {k: v for k, v in d.items() if k != "model"} == {k: v for k, v in full.items() if k != "model"}
        assert {k: v for k, v in d["model"].items() if k not in head_fields} == \
            {k: v for k, v in full["model"].items() if k not in head_fields}
        assert isinstance(build_model(cfg.model, None), BASELINES[cfg.model.kind])
    assert seen >= set(KINDS)


# ------------------------------------------------------------------------------------------ end to end
@pytest.mark.parametrize("kind", KINDS)
def test_train_model_command_per_kind(tmp_path, tiny_train_config, kind):
    """``viewselect train-model`` (the typer app in-process: the subprocess start would double the time)."""
    import csv

    from typer.testing import CliRunner

    from handflow.hand.model import HandModel
    from handflow.synth.mano import default_mano_dir
    from viewselect.cli import app

    config = tmp_path / f"{kind}.toml"
    config.write_text(tiny_train_config.read_text().replace(
        "[model]", f"[model]\nkind = {kind!r}\nhead_hidden = 16\nhead_layers = 1\nlatent_dim = 4"))
    out = tmp_path / "run"
    r = CliRunner().invoke(app, ["train-model", "--config", str(config), "--out", str(out)])
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(open(out / "log.csv")))
    assert [row["epoch"] for row in rows] == ["1", "2"]
    assert all(math.isfinite(float(v)) for v in rows[-1].values())
    std = float(rows[-1]["val_sample_std_mm"])
    assert std == 0 if kind == "regressor" else std > 0
    model, meta = load_model(out / "model.pt", HandModel.from_dir(default_mano_dir()))
    assert meta["kind"] == kind and model.kind == kind and model.cfg.head_hidden == 16
