"""The columnar annotation index: same rows as the JSONs, rebuilt when they change, resumable."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import handflow.data.index as index_mod
from handflow.data.index import annotation_path, ensure_index
from handflow.data.interhand import InterHandDataset


@pytest.fixture
def data_copy(tmp_path, tiny_data_root):
    root = tmp_path / "data"
    shutil.copytree(tiny_data_root / "annotations", root / "annotations")
    (root / "images").symlink_to(tiny_data_root / "images")
    return root


def test_rows_are_the_json_annotations(tmp_path, tiny_data_root):
    index = ensure_index(tiny_data_root, "test", cache=tmp_path)
    data = json.loads(annotation_path(tiny_data_root, "test", "data").read_text())
    images = {img["id"]: img for img in data["images"]}
    rows = index.rows()
    assert len(rows) == len(data["annotations"])
    want = sorted((images[a["image_id"]]["capture"], images[a["image_id"]]["seq_name"], images[a["image_id"]]["frame_idx"],
                   images[a["image_id"]]["camera"], np.ravel(a["joint_valid"]).tolist()) for a in data["annotations"])
    got = list(zip(rows["capture"], rows["seq"], rows["frame"], rows["camera"], rows["valid"].to_list()))
    assert [w[:4] for w in want] == [g[:4] for g in got]  # sorted by (capture, seq, frame, camera)
    assert all(np.array_equal(w[4], g[4]) for w, g in zip(want, got))
    one = index.rows({(0, data["images"][0]["seq_name"])})
    assert set(one["seq"]) == {data["images"][0]["seq_name"]} and 0 < len(one) < len(rows)
    seqs = index.sequences()
    assert sum(map(len, seqs.values())) == len({(i["capture"], i["seq_name"]) for i in data["images"]})
    cams = json.loads(annotation_path(tiny_data_root, "test", "camera").read_text())
    R = index.cameras()["0"]["400002"].R
    np.testing.assert_array_equal(R, np.asarray(cams["0"]["camrot"]["400002"]))


def test_rebuilt_when_a_json_changes(data_copy):
    seq = "Capture0/" + InterHandDataset(data_copy, "test").available()[0][0]
    before = InterHandDataset(data_copy, "test", selection=seq)
    path = annotation_path(data_copy, "test", "data")
    data = json.loads(path.read_text())
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] != data["images"][0]["id"]]
    path.write_text(json.dumps(data))
    after = InterHandDataset(data_copy, "test", selection=seq)
    assert after.index.dir != before.index.dir
    assert len(after) == len(before) - 1


def test_interrupted_build_resumes(data_copy, monkeypatch):
    real = index_mod._data_frames

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(index_mod, "_data_frames", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ensure_index(data_copy, "test")
    out = index_mod.index_dir(data_copy, "test")
    assert not (out / "manifest.json").exists() and (out / "joints.parquet").is_file()
    assert not list(out.glob(".*.tmp"))  # nothing half-written

    def again(*a, **k):
        raise AssertionError("joint_3d.json was converted again")

    monkeypatch.setattr(index_mod, "_joints_frame", again)
    monkeypatch.setattr(index_mod, "_data_frames", real)
    index = ensure_index(data_copy, "test")
    assert index.manifest()["counts"]["rows"] == len(InterHandDataset(data_copy, "test"))
