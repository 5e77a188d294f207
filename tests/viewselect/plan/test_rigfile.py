"""Rig files for `viewselect plan`: the planner's CSV and InterHand2.6M camera JSON; bad files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from handflow.errors import HandflowError
from viewselect.plan.rigfile import CSV_COLUMNS, read_rig

HEADER = ",".join(CSV_COLUMNS)


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_csv_camera_looks_at_its_target_with_image_up(tmp_path):
    p = write(tmp_path, "rig.csv", f"{HEADER}\nA,1000,0,1000,0,0,1000,500,168,256\n\nB,0,-800,1500,0,0,1000,600,200,100\n")
    rig = read_rig(p)
    assert list(rig.cameras) == ["A", "B"] and rig.image_hw == {"A": (256, 168), "B": (100, 200)}
    a = rig.cameras["A"]
    # the target projects to the principal point (image centre)
    uv = a.project(a.world_to_cam(np.array([0.0, 0.0, 1000.0])))
    np.testing.assert_allclose(uv, [(168 - 1) / 2, (256 - 1) / 2], atol=1e-9)
    # a point above the target (world +Z) appears higher in the image (smaller v)
    up = a.project(a.world_to_cam(np.array([0.0, 0.0, 1100.0])))
    assert up[1] < uv[1] and abs(up[0] - uv[0]) < 1e-6
    np.testing.assert_allclose(rig.cameras["B"].focal_px, [600, 600])


def test_interhand_json_flat_and_per_capture(tmp_path):
    R = np.eye(3).tolist()
    cam = {"campos": {"400002": [0, 0, -1000]}, "camrot": {"400002": R}, "focal": {"400002": [1000, 1000]},
           "princpt": {"400002": [166.5, 255.5]}}
    flat = read_rig(write(tmp_path, "c.json", json.dumps(cam)))
    assert flat.image_hw["400002"] == (512, 334)
    wrapped = read_rig(write(tmp_path, "w.json", json.dumps({"7": cam, "3": cam})))
    assert "capture 3" in wrapped.source and list(wrapped.cameras) == ["400002"]


@pytest.mark.parametrize("body, needle", [
    ("camera,campos_x_mm\nA,1\n", "missing column(s) campos_y_mm"),
    (f"{HEADER}\nA,1000,0,1000,0,0,1000,abc,168,256\n", "row 2, column focal_px: expected a number, found 'abc'"),
    (f"{HEADER}\nA,1000,0,1000,0,0,1000,500,168,256\nA,0,1000,1000,0,0,1000,500,168,256\n",
     "row 3, column camera: duplicate camera id 'A'"),
    (f"{HEADER}\nA,1000,0,1000,0,0,1000,-5,168,256\n", "row 2, column focal_px: must be positive"),
    (f"{HEADER}\nA,1000,0,1000,0,0,1000,500,16.5,256\n", "row 2, column width_px: expected a whole number"),
    (f"{HEADER}\nA,1000,0,1000,1000,0,1000,500,168,256\n", "row 2, column target_x_mm: camera A looks at its own"),
    (f"{HEADER}\nA,1000,,1000,0,0,1000,500,168,256\n", "row 2, column campos_y_mm: empty cell"),
    (f"{HEADER}\n", "the rig has no camera"),
])
def test_bad_csv(tmp_path, body, needle):
    with pytest.raises(HandflowError) as err:
        read_rig(write(tmp_path, "rig.csv", body))
    assert needle in str(err.value) and "rig.csv" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("doc, needle", [
    ([1, 2], "expected an object"),
    ({"x": 1}, "missing key campos"),
    ({"campos": {"1": [0, 0, 0]}, "camrot": {}, "focal": {}, "princpt": {}}, "camera 1 has no 'camrot' entry"),
    ({"campos": {"1": [0, 0]}, "camrot": {"1": np.eye(3).tolist()}, "focal": {"1": [1, 1]}, "princpt": {"1": [5, 5]}},
     "campos 1: expected 3 values"),
    ({"campos": {"1": [0, 0, 0]}, "camrot": {"1": (2 * np.eye(3)).tolist()}, "focal": {"1": [1, 1]},
      "princpt": {"1": [5, 5]}}, "camera 1: camera rotation is not a rotation matrix"),
])
def test_bad_json(tmp_path, doc, needle):
    with pytest.raises(HandflowError, match=needle.replace("(", r"\(")):
        read_rig(write(tmp_path, "cams.json", json.dumps(doc)))


def test_unreadable_files(tmp_path):
    with pytest.raises(HandflowError, match="not found"):
        read_rig(tmp_path / "none.csv")
    with pytest.raises(HandflowError, match="not valid JSON"):
        read_rig(write(tmp_path, "x.json", "{"))
    with pytest.raises(HandflowError, match="unknown rig file type"):
        read_rig(write(tmp_path, "x.txt", ""))
