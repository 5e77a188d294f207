"""``annotate_split`` on the tiny capture: every stored annotation re-checks as plausible, a seed fixes the
output, another seed changes it, and an image's annotations do not depend on the other images."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest
import torch

from handflow.data.interhand import InterHandDataset
from handflow.multihands.annotate import annotate_split
from handflow.multihands.config import MultiHandsConfig
from handflow.multihands.store import AnnotationReader, read_sequence, sequence_path

SEQS = ["0001_touch_fingertips", "0002_interlock_fingers"]
SELECTION = ",".join(f"Capture0/{s}" for s in SEQS)
CFG = MultiHandsConfig(per_image=8, iterations=3, proposals=32)


def _annotate(src, dst, cfg=CFG, **selection):
    """Annotate the two sequences (first frame: 8 cameras each) of a copy of ``src`` at ``dst``."""
    shutil.copytree(src, dst)
    ds = InterHandDataset(dst, "test", selection=SELECTION, max_frames=1, **selection)
    return ds, annotate_split(ds, _hand_model(), cfg)


def _hand_model():
    from handflow.hand.model import HandModel
    from handflow.synth.mano import default_mano_dir

    return HandModel.from_dir(default_mano_dir())


def _files(root):
    return {s: read_sequence(sequence_path(root, "test", 0, s)) for s in SEQS}


@pytest.fixture(scope="module")
def annotated(tmp_path_factory, tiny_data_root):
    ds, summary = _annotate(tiny_data_root, tmp_path_factory.mktemp("mh") / "a")
    return ds, summary


def _annotations(ds, i: int) -> dict | None:
    """MultiHands annotations of item ``i`` of ``ds``, read the way the layers above the data read them."""
    it = ds.items[i]
    return AnnotationReader(ds.root, ds.split, _hand_model()).of(it["capture"], it["seq"], it["camera"], it["frame"])


def test_every_stored_annotation_passes_all_four_criteria(annotated, plaus):
    ds, summary = annotated
    assert summary.sequences == 2 and summary.images == summary.annotated == 16 and summary.skipped_no_mano == 0
    assert len(summary.files) == 2 and summary.proposals == 16 * CFG.iterations * CFG.proposals
    total = 0
    for i, it in enumerate(ds.items):
        hw = (it["height"], it["width"])
        g = ds.geometry(i, hw)
        ann = _annotations(ds, i)
        K = len(ann["pose"])
        assert 1 <= K <= CFG.per_image
        for k in ("pose", "shape", "trans"):  # annotation 0 is the ground truth
            assert torch.equal(ann[k][0], torch.as_tensor(g[k], dtype=torch.float32))
        tg = plaus.targets(g, hw)  # independently of the walk: fresh targets, every criterion on every row
        v = plaus.check(ann["pose"], ann["shape"], ann["trans"], tg, render_all=True)
        for c in ("reprojection", "occlusion", "prior", "collision"):
            assert bool(v[c].all()), (i, c, v[c])
        assert torch.allclose(ann["joints_world_mm"], plaus.keypoints_mm(ann["pose"], ann["shape"], ann["trans"]))
        total += K
    assert total == summary.annotations > 16  # the walk added members beyond the ground truths
    for arrays, meta in _files(ds.root).values():
        assert meta["counts"]["annotations"] == int(arrays["count"].sum())
        assert meta["counts"]["annotated"] == len(arrays["camera"]) == 8 and meta["counts"]["skipped_no_mano"] == []
        assert meta["provenance"]["config"]["multihands"] == dataclasses.asdict(CFG)


def test_the_same_seed_gives_the_same_files(annotated, tiny_data_root, tmp_path):
    ds, _ = annotated
    _annotate(tiny_data_root, tmp_path / "b")
    a, b = _files(ds.root), _files(tmp_path / "b")
    for s in SEQS:
        assert a[s][0].keys() == b[s][0].keys()
        for k in a[s][0]:
            assert np.array_equal(a[s][0][k], b[s][0][k]), (s, k)
        assert a[s][1]["key"] == b[s][1]["key"] and a[s][1]["counts"] == b[s][1]["counts"]


def test_another_seed_gives_other_annotations_and_the_same_ground_truth(annotated, tiny_data_root, tmp_path):
    ds, _ = annotated
    _annotate(tiny_data_root, tmp_path / "c", dataclasses.replace(CFG, seed=1))
    a, c = _files(ds.root), _files(tmp_path / "c")
    for s in SEQS:
        (xa, ma), (xc, mc) = a[s], c[s]
        assert ma["key"] != mc["key"]
        assert np.array_equal(xa["pose"][:, 0], xc["pose"][:, 0])  # the ground truths
        n = min(xa["pose"].shape[1], xc["pose"].shape[1])
        assert not np.array_equal(xa["pose"][:, 1:n], xc["pose"][:, 1:n])


def test_an_image_does_not_depend_on_the_other_images(annotated, tiny_data_root, tmp_path):
    ds, _ = annotated
    few, _ = _annotate(tiny_data_root, tmp_path / "d", cameras=["400004", "400007"])
    assert len(few) == 4
    for i in range(len(few)):
        it = few.items[i]
        a = _annotations(ds, ds.index_of(it["capture"], it["seq"], it["camera"], it["frame"]))
        b = _annotations(few, i)
        assert all(torch.equal(a[k], b[k]) for k in ("pose", "shape", "trans"))
