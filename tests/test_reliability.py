"""Issue 9 beyond the catalogue: numerics (finite outputs, training stops on non-finite values and keeps
the last good checkpoint), checkpoint integrity, and MANO pickles converted to plain ``.npz``."""

from __future__ import annotations


import numpy as np
import pytest
import torch
from cli_runner import run_cli

from handflow.checkpoint import load_checkpoint, save_checkpoint
from handflow.errors import HandflowError




# ------------------------------------------------------------------------------------------ numerics
@pytest.fixture(scope="module")
def net(tiny_model):
    from handflow.hand.model import HandModel
    from handflow.synth.mano import default_mano_dir
    from handflow.model.registry import load_model

    model, _ = load_model(tiny_model, HandModel.from_dir(default_mano_dir()))
    return model


def _images(kind: str, S: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    shape = (2, 3, S, S)
    return {
        "zeros": torch.zeros(shape),
        "ones": torch.ones(shape),
        "noise": torch.randint(0, 256, shape, generator=g).float() / 255,
        "1e6": torch.full(shape, 1e6),
        "-1e6": torch.full(shape, -1e6),
        "random-1e20": torch.randn(shape, generator=g) * 1e20,
        "checker-1e12": (torch.arange(S)[None, :] + torch.arange(S)[:, None]).remainder(2).float().expand(shape) * 2e12 - 1e12,
        "float32-max": torch.full(shape, torch.finfo(torch.float32).max),
        "random-3e38": torch.randn(shape, generator=g).clamp(-1, 1) * 3e38,
    }[kind]


@pytest.mark.parametrize("kind", ["zeros", "ones", "noise", "1e6", "-1e6", "random-1e20", "checker-1e12",
                                  "float32-max", "random-3e38"])
def test_flow_outputs_are_finite_for_extreme_images(net, kind):
    S = net.cfg.crop_px
    K = torch.tensor([[80.0, 0, S / 2], [0, 80.0, S / 2], [0, 0, 1]]).expand(2, 3, 3)
    with torch.no_grad():
        out = net.predict(_images(kind, S), K, n_samples=16)
    for key, value in out.items():
        if isinstance(value, torch.Tensor):
            assert torch.isfinite(value).all(), f"{key} not finite for {kind} images"


# ------------------------------------------------------------------------------------------ training stops
def test_non_finite_loss_or_gradient_stops_training_and_keeps_last_good_checkpoint(
        tmp_path, tiny_train_config, monkeypatch, capsys):
    import handflow.train as T

    real_log, real_loss = T._append_log, T.handflow_loss
    state = {"epochs_done": 0, "mode": "loss"}

    def log(path, row):
        real_log(path, row)
        state["epochs_done"] += 1

    def loss(model, ctx, targets, cfg):
        total, parts = real_loss(model, ctx, targets, cfg)
        if state["epochs_done"] >= 1:  # epoch 2 goes bad
            if state["mode"] == "loss":
                total = total * float("nan")
            else:  # finite loss, NaN gradient: d/dx sqrt(|x|) at 0
                p = next(model.parameters())
                total = total + (p.sum() - p.sum().detach()).abs().sqrt()
        return total, parts

    monkeypatch.setattr(T, "_append_log", log)
    monkeypatch.setattr(T, "handflow_loss", loss)
    out = tmp_path / "run"
    code, _, err = run_cli(["train-model", "--config", tiny_train_config, "--out", out], capsys, monkeypatch)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "loss became non-finite at epoch 2 step 1" in err and str(out / "last.pt") in err
    good = load_checkpoint(out / "last.pt")
    assert good["epoch"] == 1 and all(torch.isfinite(v).all() for v in good["state_dict"].values()
                                      if v.is_floating_point())
    before = (out / "last.pt").read_bytes()

    state["mode"] = "gradient"
    state["epochs_done"] = 1
    code, _, err = run_cli(["train-model", "--config", tiny_train_config, "--out", out, "--resume"], capsys,
                           monkeypatch)
    assert code == 2 and "gradient became non-finite at epoch 2 step 1" in err
    assert (out / "last.pt").read_bytes() == before  # the good checkpoint is untouched
    assert not list(out.glob(".*.tmp"))


# ------------------------------------------------------------------------------------------ checkpoints
def test_checkpoint_checksum_detects_a_changed_weight_and_legacy_files_load(tmp_path):
    sd = {"w": torch.arange(10.0), "b": torch.zeros(2, dtype=torch.float16), "n": torch.tensor(3)}
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"kind": "handflow", "config": {}, "state_dict": sd})
    payload = load_checkpoint(path)
    assert len(payload["state_sha256"]) == 64
    payload["state_dict"]["w"][4] = 4.5
    torch.save(payload, path)
    with pytest.raises(HandflowError, match="checksum"):
        load_checkpoint(path)
    del payload["state_sha256"]  # written before checksums existed: still loads
    torch.save(payload, path)
    assert load_checkpoint(path)["state_dict"]["w"][4] == 4.5


def test_shipped_model_still_loads():
    """The model `rank` uses by default is part of the repository: it is there, loads (its checksum holds
    where it has one) and builds a HandFlowNet that turns an image into finite two-hand keypoints."""
    from handflow.hand.model import HandModel
    from handflow.synth.mano import default_mano_dir
    from handflow.model.registry import load_model
    from viewselect.ranking.pipeline import DEFAULT_MODEL

    assert DEFAULT_MODEL.is_file(), f"the shipped model {DEFAULT_MODEL} is missing"
    model, _ = load_model(DEFAULT_MODEL, HandModel.from_dir(default_mano_dir()))
    S = model.cfg.crop_px
    K = torch.tensor([[2.0 * S, 0.0, S / 2], [0.0, 2.0 * S, S / 2], [0.0, 0.0, 1.0]])[None]
    with torch.no_grad():
        out = model.predict(torch.full((1, 3, S, S), 0.5), K, n_samples=2)
    assert out["mode_joints"].shape == (1, 42, 3) and torch.isfinite(out["samples_joints"]).all()


# ------------------------------------------------------------------------------------------ MANO .npz
def test_hand_convert_writes_npz_that_loads_without_pickle(tmp_path, capsys, monkeypatch):
    import shutil

    from handflow.hand.mano import load_mano_dir, mano_file
    from handflow.hand.model import HandModel
    from handflow.synth.mano import default_mano_dir

    src = default_mano_dir()
    out = tmp_path / "npz"
    code, stdout, err = run_cli(["hand", "convert", "--mano-dir", src, "--out", out], capsys, monkeypatch)
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["MANO_LEFT.npz", "MANO_RIGHT.npz"]
    for p in out.iterdir():
        with np.load(p, allow_pickle=False) as z:  # no unpickling needed
            assert "v_template" in z.files and all(z[k].dtype != object for k in z.files)
    (r0, l0), (r1, l1) = load_mano_dir(src), load_mano_dir(out)
    for a, b in ((r0, r1), (l0, l1)):
        for key, value in a.items():
            if isinstance(value, np.ndarray):
                np.testing.assert_array_equal(value, b[key])
    # the same keypoints through either folder
    pose = torch.randn(3, 2, 48, generator=torch.Generator().manual_seed(0)) * 0.3
    betas, trans = torch.zeros(3, 2, 10), torch.zeros(3, 2, 3)
    k0 = HandModel.from_dir(src).keypoints_from_mano(pose, betas, trans)
    k1 = HandModel.from_dir(out).keypoints_from_mano(pose, betas, trans)
    assert torch.equal(k0, k1)
    # a folder holding both prefers the .npz
    both = tmp_path / "both"
    shutil.copytree(src, both)
    shutil.copy(out / "MANO_RIGHT.npz", both)
    assert mano_file(both, "right").suffix == ".npz" and mano_file(both, "left").suffix == ".pkl"
