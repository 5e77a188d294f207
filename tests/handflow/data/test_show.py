"""``render_annotations``: a frame's MultiHands annotations on the image and from a novel view."""

from __future__ import annotations

import shutil

import numpy as np
import torch

from handflow.data.interhand import InterHandDataset

SEQ = "0001_touch_fingertips"


def test_annotations_figure_is_written_and_not_blank(tiny_data_root, tmp_path):
    from matplotlib.image import imread

    from handflow.data.show import render_annotations
    from handflow.hand.model import HandModel
    from handflow.synth.mano import default_mano_dir
    from handflow.multihands.annotate import annotate_split
    from handflow.multihands.config import MultiHandsConfig
    from handflow.multihands.store import AnnotationReader

    root = tmp_path / "tiny"
    shutil.copytree(tiny_data_root, root)
    assert AnnotationReader(root, "test", HandModel.from_dir(default_mano_dir())).of(0, SEQ, "400002", 10000) is None

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # many small tensor ops: one thread is much faster on shared cores
    try:  # one image is enough: the file holds that camera's row only
        one = InterHandDataset(root, "test", selection=f"Capture0/{SEQ}", cameras=["400002"], max_frames=1)
        annotate_split(one, HandModel.from_dir(default_mano_dir()), MultiHandsConfig(per_image=6, iterations=2, proposals=24))
    finally:
        torch.set_num_threads(threads)
    ds = InterHandDataset(root, "test", selection=f"Capture0/{SEQ}")
    ann = AnnotationReader(root, "test", HandModel.from_dir(default_mano_dir())).of(0, SEQ, "400002", 10000)
    out = tmp_path / "ann.png"
    n = render_annotations(ds, 0, SEQ, "400002", 10000, ann, out)
    assert n == len(ann["pose"]) > 1
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = imread(out)
    assert img.ndim == 3 and img.shape[1] > img.shape[0]  # two panels side by side
    rgb = img[..., :3]
    assert rgb.std() > 0.05 and len(np.unique(rgb.reshape(-1, 3), axis=0)) > 100
    # the right panel (novel view, white background) holds the hand colours
    right = rgb[:, int(0.6 * rgb.shape[1]):]
    red = (right[..., 0] > 0.8) & (right[..., 1] < 0.5) & (right[..., 2] < 0.5)
    blue = (right[..., 2] > 0.8) & (right[..., 0] < 0.4)
    assert red.sum() > 20 and blue.sum() > 20
    # another camera of the same sequence was not annotated (`data show --annotations` then says so in one line)
    assert AnnotationReader(root, "test", HandModel.from_dir(default_mano_dir())).of(0, SEQ, "400003", 10000) is None
