"""Synthetic capture: determinism, motions, visibility with the hand model, config, atomicity, overlay."""

import dataclasses
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from handflow.config import to_dict
from handflow.synth import motions
from handflow.synth import capture as synth_mod
from handflow.data.interhand import InterHandDataset
from handflow.keypoints import JOINT_HAND
from handflow.data.raster import rasterize, visibility
from handflow.synth.rig import RIG_CENTER_MM
from handflow.synth.capture import (
    MANIFEST,
    SynthConfig,
    default_data_root,
    ensure_default_data,
    load_synth_config,
    synthesize,
)
from handflow.errors import HandflowError
from handflow.geometry.camera import Camera, look_at

REPO = Path(__file__).resolve().parents[3]
TINY = REPO / "configs" / "synth" / "tiny.toml"


@pytest.fixture(scope="module")
def hand_model():
    from handflow.hand.model import HandModel
    from handflow.synth.mano import default_mano_dir

    return HandModel.from_dir(default_mano_dir())


def _digests(root: Path) -> dict:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_other_seed_differs(tiny_data_root, tmp_path):
    cfg = load_synth_config(TINY)
    again = synthesize(cfg, tmp_path / "again")
    a, b = _digests(tiny_data_root), _digests(again)
    assert a == b and len(a) > 100
    manifest = json.loads((again / MANIFEST).read_text())
    assert manifest["seed"] == 0 and manifest["version"] == synth_mod.SYNTH_VERSION
    assert manifest["config"] == to_dict(cfg) and manifest["splits"]["test"]["images"] == 112
    cfg.seed = 1
    cfg.train_captures = 0
    other = synthesize(cfg, tmp_path / "other")
    c = _digests(other)
    key = "annotations/test/InterHand2.6M_test_joint_3d.json"
    assert c[key] != a[key]
    assert not list(tmp_path.glob(".*tmp"))  # no temporary folders left


def test_rendering_processes_write_the_same_bytes(tiny_data_root, tmp_path):
    """Two worker processes render the batches; results are written in job order, so every file is the one
    process's, byte for byte (same machine, same run)."""
    two = synthesize(load_synth_config(TINY), tmp_path / "two", workers=2)
    assert _digests(two) == _digests(tiny_data_root)


def test_images_and_workers_of_a_capture():
    tiny = load_synth_config(TINY)
    assert synth_mod.n_images(tiny) == 7 * 2 * 8 + 2 * 2 * 3 * 3 + 1 * 2 * 3  # the counts tiny.toml states
    assert synth_mod.render_workers(synth_mod.n_images(tiny)) == 1  # too small to pay for a second process
    assert synth_mod.render_workers(synth_mod.n_images(SynthConfig())) == len(os.sched_getaffinity(0))


def test_existing_root_and_failure_leave_nothing_half_written(tmp_path, monkeypatch):
    cfg = load_synth_config(TINY)
    root = tmp_path / "root"
    root.mkdir()
    (root / "x").write_text("keep")
    with pytest.raises(HandflowError, match="not empty"):
        synthesize(cfg, root)

    def boom(*a, **k):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(synth_mod, "_training_capture", boom)
    with pytest.raises(RuntimeError):
        synthesize(cfg, tmp_path / "new")
    assert not (tmp_path / "new").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["root"]


def test_a_capture_published_meanwhile_by_another_process_is_kept(tmp_path):
    """Two processes build the same capture at once (rank and train-model on an empty cache): the second to
    finish keeps the first's folder, whose images a reader may already hold open, instead of replacing it.
    A stale root (another manifest) is still replaced."""
    from handflow.synth.capture import build_and_publish

    root = tmp_path / "synth-1"

    def build(marker: str, manifest: dict):
        def write(tmp: Path) -> dict:
            (tmp / "images").mkdir()
            (tmp / "images" / "who").write_text(marker)
            return manifest
        return write

    build_and_publish(root, "m.json", build("first", {"version": "1"}))
    build_and_publish(root, "m.json", build("second", {"version": "1"}))
    assert (root / "images" / "who").read_text() == "first"
    build_and_publish(root, "m.json", build("newer", {"version": "2"}))
    assert (root / "images" / "who").read_text() == "newer"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["synth-1"]  # no temporary or old folder left


def test_config_files_and_default_root(tmp_path, monkeypatch):
    assert load_synth_config(REPO / "configs" / "synth" / "default.toml") == SynthConfig()
    bad = tmp_path / "bad.toml"
    bad.write_text("seed = 0\nimage_hieght = 3\n")
    with pytest.raises(HandflowError, match="image_hieght"):
        load_synth_config(bad)
    bad.write_text("test_frames = 0\n")
    with pytest.raises(HandflowError, match="test_frames"):
        load_synth_config(bad)
    monkeypatch.setenv("VIEWSELECT_CACHE", str(tmp_path / "cache"))
    root = default_data_root()
    assert root == tmp_path / "cache" / "data" / f"synth-{synth_mod.SYNTH_VERSION}"
    assert default_data_root(load_synth_config(TINY)).name.startswith(root.name + "-")
    # generated on first use, then reused; regenerated when stale (other MANO files)
    tiny = load_synth_config(TINY)
    troot = ensure_default_data(tiny)
    assert troot.parent == root.parent and (troot / MANIFEST).is_file()
    stamp = (troot / MANIFEST).stat().st_mtime_ns
    assert ensure_default_data(tiny) == troot and (troot / MANIFEST).stat().st_mtime_ns == stamp
    m = json.loads((troot / MANIFEST).read_text())
    del m["config"]["test_sequences"]  # a manifest from before the knob: it rendered all 7, the default
    (troot / MANIFEST).write_text(json.dumps(m))
    stamp = (troot / MANIFEST).stat().st_mtime_ns
    assert ensure_default_data(tiny) == troot and (troot / MANIFEST).stat().st_mtime_ns == stamp
    m["mano"] = {"MANO_RIGHT.pkl": "0000"}
    (troot / MANIFEST).write_text(json.dumps(m))
    assert ensure_default_data(tiny) == troot
    assert json.loads((troot / MANIFEST).read_text())["mano"] == synth_mod.mano_digests()


def test_first_test_sequences_alone_same_bytes(tiny_data_root, tmp_path):
    """``test_sequences = N`` writes the first N test motions, each byte for byte as in the full capture."""
    cfg = dataclasses.replace(load_synth_config(TINY), test_sequences=1, train_captures=0, val_sequences=0)
    assert default_data_root(cfg) != default_data_root(load_synth_config(TINY))  # part of the config's digest
    root = synthesize(cfg, tmp_path / "one")
    ds = InterHandDataset(root, "test", crop_px=32)
    assert {c: list(s) for c, s in ds.available().items()} == {0: ["0001_touch_fingertips"]}
    one = {k: v for k, v in _digests(root).items() if k.startswith("images/")}
    full = _digests(tiny_data_root)
    assert len(one) == 16 and all(full[k] == v for k, v in one.items())  # 8 cameras x 2 frames
    for bad in (0, 8):
        with pytest.raises(HandflowError, match="test_sequences must be in 1..7"):
            SynthConfig(test_sequences=bad)


def test_test_sequences_interact_smoothly(hand_model):
    for cap, names in motions.TEST_SEQUENCES.items():
        for name in names:
            mf = motions.test_motion(hand_model, cap, name, 6, seed=0)
            st = motions.interaction_stats(mf.keypoints_mm)
            assert st["min_dist_mm"].min() < 40, name  # the hands come within a few cm
            assert (st["min_dist_mm"] < 70).all(), name
            assert (st["min_inner_dist_mm"] > 8).all(), name  # joints never inside the other hand
            step = np.linalg.norm(np.diff(mf.keypoints_mm, axis=0), axis=-1).max()
            assert step < 80, name  # smooth over 6 frames
    assert sum(len(v) for v in motions.TEST_SEQUENCES.values()) == 7


def test_contact_shift_closed_form():
    fixed = np.array([[0.0, 0.0, 0.0]])
    moving = np.array([[100.0, 3.0, 0.0]])
    t = motions.contact_shift(fixed, moving, np.array([1.0, 0, 0]), gap=5.0)
    assert abs(np.linalg.norm(moving + t * np.array([1.0, 0, 0]) - fixed) - 5.0) < 1e-9 and t < -90


def test_visibility_hand_on_hand(hand_model):
    """The right hand lies on the back of the left one: from above the left hand's joints are hidden,
    from below the right hand's."""
    mf = motions.build_frames(hand_model, [motions.TEMPLATES["cover_hand"](0.0)], np.zeros((2, 10)))
    with torch.no_grad():
        verts = hand_model.mesh_from_mano(*(torch.tensor(a) for a in (mf.pose, mf.shape, mf.trans_m)))[0].double()
    faces = hand_model.faces
    V = verts.shape[1]
    fs = torch.cat([faces[0], faces[1] + V])
    lab = torch.cat([torch.zeros(faces.shape[1]), torch.ones(faces.shape[1])]).long()
    kp = torch.tensor(mf.keypoints_mm[0], dtype=torch.float64)
    out = {}
    for name, off in (("above", [0.0, 1.0, 1000.0]), ("below", [0.0, 1.0, -1000.0])):
        c = RIG_CENTER_MM + np.array(off)
        cam = Camera(look_at(c, RIG_CENTER_MM), c, np.array([500.0, 500.0]), np.array([83.5, 127.5]))
        K = torch.tensor(cam.K)
        fr = rasterize(cam.world_to_cam(verts.reshape(-1, 3))[None], fs, K, (256, 168), lab)
        vis = visibility(cam.world_to_cam(kp)[None], fr, K, torch.tensor(JOINT_HAND))[0]
        out[name] = (int(vis[:21].sum()), int(vis[21:].sum()))
    # the hand on top is the one seen from above, the hand below the one seen from below: each view sees
    # more of its near hand than of the far one, and each hand is seen more from its own side
    (r_above, l_above), (r_below, l_below) = out["above"], out["below"]
    assert r_above > l_above and l_below > r_below, out
    assert r_above > r_below and l_below > l_above, out


def test_show_overlay(tiny_data_root, tmp_path):
    from PIL import Image

    from handflow.data.show import render_overlay

    ds = InterHandDataset(tiny_data_root, "test", crop_px=32)
    cam = ds.camera_ids(0)[1]
    frame = ds.frames(0, "0003_cover_hand")[0]
    out = tmp_path / "o.png"
    render_overlay(ds, 0, "0003_cover_hand", cam, frame, out)
    im = Image.open(out)
    assert im.format == "PNG" and im.size[0] > 100
    with pytest.raises(HandflowError):
        render_overlay(ds, 0, "0003_cover_hand", cam, 1, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
