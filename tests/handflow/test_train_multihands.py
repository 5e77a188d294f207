"""Training on MultiHands annotations (K per image) and starting from another model's encoder."""

from __future__ import annotations

import torch

from handflow.preload import preload_split
from handflow.hand.model import HandModel
from handflow.synth.mano import default_mano_dir
from handflow.train import _fix_mode_annotations, _targets, load_train_config, train


def test_preload_annotations_ground_truth_first(tiny_multihands_root):
    hm = HandModel.from_dir(default_mano_dir())
    data = preload_split(tiny_multihands_root, "train", 32, hm, annotations=4)
    assert data["ann_y"].shape[1:] == (4, 218) and data["ann_joints_cam_mm"].shape[1:] == (4, 42, 3)
    assert data["ann_mask"][:, 0].all()
    annotated = data["ann_mask"].sum(1) > 1
    assert annotated.any(), "the walk found no plausible annotation on any image"
    # Row 0 is the ground truth: the same y and 3D joints as the ground-truth path.
    torch.testing.assert_close(data["ann_y"][:, 0], data["y"], atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(data["ann_joints_cam_mm"][:, 0], data["joints_cam_mm"], atol=1e-2, rtol=1e-5)


def test_mode_annotation_fixed_and_targets_use_it(tiny_multihands_root):
    hm = HandModel.from_dir(default_mano_dir())
    data = preload_split(tiny_multihands_root, "train", 32, hm, annotations=4)
    first = _fix_mode_annotations(data["ann_mask"], seed=0)
    assert torch.equal(first, _fix_mode_annotations(data["ann_mask"], seed=0))
    assert (first < data["ann_mask"].sum(1)).all()
    idx = torch.arange(min(8, len(first)))
    _, tg = _targets(data, idx, "cpu", first)
    assert tg.y.shape == (len(idx), 4, 218) and tg.mask.shape == (len(idx), 4)
    torch.testing.assert_close(tg.joints_cam_mm, data["ann_joints_cam_mm"][idx, first[idx]])


def test_train_with_annotations_and_encoder_init(tmp_path, tiny_multihands_root, tiny_train_config, tiny_model):
    text = tiny_train_config.read_text().replace("seed = 0", f"seed = 0\ninit_from = {str(tiny_model)!r}", 1)
    text = text.replace("[data]", f"[data]\nannotations = 4", 1)
    cfg_path = tmp_path / "mh.toml"
    cfg_path.write_text(text)
    cfg = load_train_config(cfg_path)
    cfg.data.root = str(tiny_multihands_root)
    cfg.optim.epochs = 1
    # a learning rate far below float32 resolution: the weights after training are the initial weights,
    # so they show what init_from loaded (training still runs every step, with its losses)
    cfg.optim.lr = 1e-30
    row = train(cfg, tmp_path / "run")
    assert torch.isfinite(torch.tensor(row["train_total"]))
    payload = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert payload["config"]["data"]["annotations"] == 4
    # the encoder's weights are the source model's (stored in half precision); the flow starts fresh
    source = torch.load(tiny_model, weights_only=True)["state_dict"]
    trained = payload["state_dict"]
    learned = [k for k in trained if k.startswith("encoder.") and "running_" not in k and "num_batches" not in k]
    assert learned
    for k in learned:
        torch.testing.assert_close(trained[k], source[k].to(trained[k].dtype), rtol=0, atol=1e-12, msg=k)
    flow = [k for k in trained if k.startswith("flow.") and trained[k].is_floating_point() and trained[k].numel() > 1]
    assert any(not torch.allclose(trained[k], source[k].to(trained[k].dtype)) for k in flow)
