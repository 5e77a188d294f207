"""The reader on a tiny capture written by hand in the real InterHand2.6M release's format.

Everything here is typed in, not produced by the project's generator: the four annotation JSONs as
the public toolkit reads them (COCO-style ``data.json`` with nested ``joint_valid`` and no
``joint_visible``; ``camera.json`` with ``campos``/``camrot``/``focal``/``princpt`` keyed by capture
and camera strings; ``joint_3d.json`` with ``world_coord``/``joint_valid`` per frame; a
``MANO_NeuralAnnot.json`` whose left hand is ``null``) and 334x512 JPEGs holding a colour ramp
(red = column, green = row), so a crop's pixels tell where in the image they came from.

Camera 400262 sits at the world origin looking along +Z (``camrot`` = identity, f = 1000 px,
principal point (167, 256)); camera 400263 at (100, 0, 0) mm also looks along +Z but is rolled 90°
(``camrot`` rows (0, -1, 0), (1, 0, 0), (0, 0, 1): not symmetric, so a transposed rotation shows;
f = (500, 600) px, principal point (170, 250)). The right hand lies in the plane Z = 1000 mm: wrist at
(0, 0), finger f's joint k (0 = tip .. 3 = base) at X = -40 + 20 f, Y = -20 - 10 (3 - k). So
``X_cam = R (X_world - campos)`` is (X, Y, 1000) in camera 400262, projecting to (X + 167, Y + 256), and
(-Y, X - 100, 1000) in 400263, projecting to (-Y / 2 + 170, 0.6 (X - 100) + 250). The expected numbers
below are worked out from those lines.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from handflow.data.interhand import InterHandDataset

SEQ = "ROM04_RT_Occlusion"
W, H = 334, 512
CAM_A, CAM_B = "400262", "400263"


def _right_hand() -> list[list[float]]:
    joints = [[-40.0 + 20.0 * (j // 4), -20.0 - 10.0 * (3 - j % 4), 1000.0] for j in range(20)]
    return joints + [[0.0, 0.0, 1000.0]]  # wrist, index 20


RIGHT = _right_hand()
LEFT_FAR = [[3000.0, 3000.0, 1000.0]] * 21  # frame 100: the left hand is not annotated (garbage, invalid)
LEFT_NEAR = [[x + 100.0, y, z] for x, y, z in RIGHT]  # frame 101: the left hand 100 mm to the right
MANO_RIGHT = {"pose": [0.1, -0.2, 0.3] + [0.0] * 45, "shape": [0.5] + [0.0] * 9, "trans": [0.01, -0.02, 1.0]}


def _nested(values) -> list[list[int]]:
    return [[int(v)] for v in values]  # the release stores joint_valid as [[1], [1], ...]


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("release") / "InterHand2.6M_5fps_batch1"
    ann = root / "annotations" / "test"
    ann.mkdir(parents=True)
    images, annotations = [], []
    valid_100 = [1] * 21 + [0] * 21
    valid_101_a = [1] * 42
    valid_101_a[5] = 0
    valid_101_b = [1] * 42
    valid_101_b[20] = 0  # the right wrist: the toolkit then drops the whole right hand
    for n, (frame, cam, valid, hand_type) in enumerate([
        (100, CAM_A, valid_100, "right"), (100, CAM_B, valid_100, "right"),
        (101, CAM_A, valid_101_a, "interacting"), (101, CAM_B, valid_101_b, "interacting"),
    ]):
        file_name = f"Capture0/{SEQ}/cam{cam}/image{frame}.jpg"
        images.append({"id": 1000 + n, "file_name": file_name, "width": W, "height": H, "capture": 0,
                       "subject": 1, "seq_name": SEQ, "camera": cam, "frame_idx": frame})
        annotations.append({"id": 1000 + n, "image_id": 1000 + n, "bbox": [100.0, 150.0, 120.0, 120.0],
                            "joint_valid": _nested(valid), "hand_type": hand_type, "hand_type_valid": 1})
        path = root / "images" / "test" / file_name
        path.parent.mkdir(parents=True, exist_ok=True)
        u, v = np.meshgrid(np.arange(W), np.arange(H))
        ramp = np.stack([np.rint(255 * u / (W - 1)), np.rint(255 * v / (H - 1)), np.full_like(u, 128)], -1)
        Image.fromarray(ramp.astype(np.uint8)).save(path, quality=100, subsampling=0)
    (ann / "InterHand2.6M_test_data.json").write_text(json.dumps({"images": images, "annotations": annotations}))
    camera = {"0": {
        "campos": {CAM_A: [0.0, 0.0, 0.0], CAM_B: [100.0, 0.0, 0.0]},
        "camrot": {CAM_A: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
                   CAM_B: [[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]},
        "focal": {CAM_A: [1000.0, 1000.0], CAM_B: [500.0, 600.0]},
        "princpt": {CAM_A: [167.0, 256.0], CAM_B: [170.0, 250.0]},
    }}
    (ann / "InterHand2.6M_test_camera.json").write_text(json.dumps(camera))
    joint_valid_101 = [1] * 42
    joint_valid_101[0] = 0  # the right thumb tip, invalid in joint_3d.json only
    joint_3d = {"0": {
        "100": {"world_coord": RIGHT + LEFT_FAR, "joint_valid": [1] * 42, "hand_type": "right",
                "hand_type_valid": True},
        "101": {"world_coord": RIGHT + LEFT_NEAR, "joint_valid": joint_valid_101, "hand_type": "interacting",
                "hand_type_valid": True},
    }}
    (ann / "InterHand2.6M_test_joint_3d.json").write_text(json.dumps(joint_3d))
    mano = {"0": {"100": {"right": MANO_RIGHT, "left": None},
                  "101": {"right": MANO_RIGHT, "left": {**MANO_RIGHT, "trans": [0.11, -0.02, 1.0]}}}}
    (ann / "InterHand2.6M_test_MANO_NeuralAnnot.json").write_text(json.dumps(mano))
    return root


@pytest.fixture(scope="module")
def ds(release) -> InterHandDataset:
    from handflow.synth.mano import default_mano_dir

    # no joint_visible stored, as in the release: visibility needs MANO files, and with no real ones
    # here the synthetic folder stands in (these tests check geometry, not which joints are hidden)
    return InterHandDataset(release, "test", crop_px=64, mano_dir=str(default_mano_dir()))


def _item(ds, cam: str, frame: int) -> dict:
    return ds[ds.index_of(0, SEQ, cam, frame)]


def test_index(ds):
    assert len(ds) == 4 and ds.available() == {0: [SEQ]}
    assert ds.camera_ids(0) == [CAM_A, CAM_B] and ds.frames(0, SEQ) == [100, 101]
    assert ds.items[0]["hand_type"] == "right" and ds.items[2]["hand_type"] == "interacting"


def test_validity_from_both_files_and_the_root_rule(ds):
    v = lambda cam, frame: _item(ds, cam, frame)["joint_valid"].numpy()  # noqa: E731
    np.testing.assert_array_equal(v(CAM_A, 100), [1] * 21 + [0] * 21)  # left hand not annotated
    expect = np.ones(42)
    expect[[0, 5]] = 0  # joint 0 invalid in joint_3d.json, joint 5 in data.json
    np.testing.assert_array_equal(v(CAM_A, 101), expect)
    expect = np.r_[np.zeros(21), np.ones(21)]  # right wrist invalid in data.json: the whole right hand
    np.testing.assert_array_equal(v(CAM_B, 101), expect)
    for cam in (CAM_A, CAM_B):
        for frame in (100, 101):
            s = _item(ds, cam, frame)
            assert not (s["joint_visible"] > s["joint_valid"]).any()  # visible only where valid


def test_world_camera_and_pixel_coordinates_by_hand(ds):
    a = _item(ds, CAM_A, 100)
    np.testing.assert_allclose(a["joints_world_mm"][:21].numpy(), RIGHT)
    np.testing.assert_allclose(a["joints_cam_mm"][:21].numpy(), RIGHT)  # identity camera at the origin
    px = a["joints_img_px"].numpy()
    np.testing.assert_allclose(px[20], [167.0, 256.0], atol=1e-4)  # wrist on the principal point
    np.testing.assert_allclose(px[0], [127.0, 206.0], atol=1e-4)  # thumb tip (-40, -50)
    np.testing.assert_allclose(px[19], [207.0, 236.0], atol=1e-4)  # pinky base (40, -20)
    b = _item(ds, CAM_B, 100)
    cam = b["joints_cam_mm"].numpy()
    np.testing.assert_allclose(cam[0], [50.0, -140.0, 1000.0], atol=1e-4)  # (-Y, X - 100, Z)
    np.testing.assert_allclose(cam[20], [0.0, -100.0, 1000.0], atol=1e-4)
    px = b["joints_img_px"].numpy()
    np.testing.assert_allclose(px[20], [170.0, 190.0], atol=1e-4)  # (0 / 2 + 170, 0.6 (-100) + 250)
    np.testing.assert_allclose(px[0], [195.0, 166.0], atol=1e-4)  # (50 / 2 + 170, 0.6 (-140) + 250)
    np.testing.assert_allclose(px[19], [180.0, 214.0], atol=1e-4)  # (20 / 2 + 170, 0.6 (-60) + 250)
    np.testing.assert_allclose(b["campos_mm"].numpy(), [100.0, 0.0, 0.0])
    np.testing.assert_allclose(b["R"].numpy(), [[0, -1, 0], [1, 0, 0], [0, 0, 1]])


@pytest.mark.parametrize("cam, box", [
    # camera A: valid joints span u 127..207, v 206..256 -> side ceil(80 * 1.3) = 104 around (167, 231):
    # left = floor(167 - 52 + 0.5) = 115, top = floor(231 - 52 + 0.5) = 179 (the far, invalid left hand
    # does not enter the box)
    (CAM_A, (115, 179, 104)),
    # camera B: u 170..195, v 166..214 -> side ceil(48 * 1.3) = 63 around (182.5, 190):
    # left = floor(182.5 - 31.5 + 0.5) = 151, top = floor(190 - 31.5 + 0.5) = 159
    (CAM_B, (151, 159, 63)),
])
def test_crop_box_intrinsics_and_pixels_by_hand(ds, cam, box):
    s = _item(ds, cam, 100)
    left, top, side = box
    k = 64 / side  # crop pixels per image pixel
    A = np.array([[k, 0, k * (0.5 - left) - 0.5], [0, k, k * (0.5 - top) - 0.5], [0, 0, 1]])
    np.testing.assert_allclose(s["crop_affine"].numpy(), A, rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(s["K_crop"].numpy(), A @ s["K"].numpy(), rtol=1e-6, atol=1e-4)
    uv = s["joints_img_px"].numpy()[20]
    np.testing.assert_allclose(s["joints_crop_px"].numpy()[20], k * (uv - [left, top] + 0.5) - 0.5, atol=1e-4)
    # the crop's pixel (p, q) shows image point (left + (p + 0.5) / k - 0.5, top + (q + 0.5) / k - 0.5):
    # the ramp's colours there say which image column / row the crop took
    img = s["image"].numpy()
    p = np.arange(4, 60)
    u_expect = left + (p + 0.5) / k - 0.5
    v_expect = top + (p + 0.5) / k - 0.5
    u_seen = img[0][32, p] * (W - 1)  # red along the middle row: the column
    v_seen = img[1][p, 32] * (H - 1)  # green along the middle column: the row
    assert np.abs(u_seen - u_expect).max() < 2.5, np.abs(u_seen - u_expect).max()
    assert np.abs(v_seen - v_expect).max() < 3.5, np.abs(v_seen - v_expect).max()


def test_mano_parameters_and_the_null_hand(ds):
    s = _item(ds, CAM_A, 100)
    np.testing.assert_allclose(s["mano_pose"][0].numpy(), MANO_RIGHT["pose"], atol=1e-7)
    np.testing.assert_allclose(s["mano_shape"][0].numpy(), MANO_RIGHT["shape"], atol=1e-7)
    np.testing.assert_allclose(s["mano_trans_m"][0].numpy(), MANO_RIGHT["trans"], atol=1e-7)
    np.testing.assert_array_equal(s["mano_valid"].numpy(), [1, 0])  # "left": null
    assert not s["mano_pose"][1].any() and not s["mano_trans_m"][1].any()
    t = _item(ds, CAM_A, 101)
    np.testing.assert_array_equal(t["mano_valid"].numpy(), [1, 1])
    np.testing.assert_allclose(t["mano_trans_m"][1].numpy(), [0.11, -0.02, 1.0], atol=1e-7)
