"""Shared fixtures. Keep this small: module-specific fixtures live beside their tests."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def tiny_data_root(tmp_path_factory) -> Path:
    """A tiny synthetic capture (``configs/synth/tiny.toml``) in InterHand2.6M layout, generated once
    per test session (a few seconds). Treat it as read-only; copy it to modify it."""
    from handflow.synth.capture import load_synth_config, synthesize

    cfg = load_synth_config(REPO / "configs" / "synth" / "tiny.toml")
    return synthesize(cfg, tmp_path_factory.mktemp("synth") / "tiny")


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Tests never read or write the user's cache (generated MANO, data, preloads, rank results)."""
    import os

    old = {k: os.environ.get(k) for k in ("VIEWSELECT_CACHE", "VIEWSELECT_PROGRESS")}
    os.environ["VIEWSELECT_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    os.environ["VIEWSELECT_PROGRESS"] = "0"
    yield
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


TINY_TRAIN_TOML = """
seed = 0
val_samples = 4
[data]
val_max_images = 6
[model]
backbone_depth = 18
backbone_width = 8
crop_px = 32
context_dim = 16
flow_steps = 2
flow_hidden = 32
flow_blocks = 1
[optim]
batch_size = 8
epochs = 2
warmup_steps = 2
"""


@pytest.fixture(scope="session")
def tiny_train_config(tmp_path_factory, tiny_data_root) -> Path:
    """A training config (TOML) for a very small HandFlowNet on the tiny capture."""
    path = tmp_path_factory.mktemp("configs") / "tiny.toml"
    path.write_text(TINY_TRAIN_TOML.replace("[data]", f"[data]\nroot = {str(tiny_data_root)!r}"))
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, tiny_train_config) -> Path:
    """A compact model checkpoint trained for two epochs on the tiny capture."""
    from handflow.model.registry import export_model
    from handflow.train import load_train_config, train

    out = tmp_path_factory.mktemp("run")
    train(load_train_config(tiny_train_config), out)
    return export_model(out / "last.pt", out / "model.pt")


TINY_MULTIHANDS = dict(per_image=5, iterations=2, proposals=16)


@pytest.fixture(scope="session")
def tiny_multihands_root(tmp_path_factory, tiny_data_root) -> Path:
    """A copy of the tiny capture with MultiHands annotations (a short walk) for its train and test splits."""
    import shutil

    from handflow.data.interhand import InterHandDataset
    from handflow.hand.model import HandModel
    from handflow.synth.mano import default_mano_dir
    from handflow.multihands.annotate import annotate_split
    from handflow.multihands.config import MultiHandsConfig

    root = tmp_path_factory.mktemp("mh") / "tiny"
    shutil.copytree(tiny_data_root, root)
    hm = HandModel.from_dir(default_mano_dir())
    for split in ("train", "test"):
        annotate_split(InterHandDataset(root, split, max_frames=2), hm, MultiHandsConfig(**TINY_MULTIHANDS))
    return root
