"""The reader on the tiny synthetic capture: geometry, round trips, selection, bad input."""

import json
import shutil

import numpy as np
import pytest
import torch

from handflow.data.index import annotation_path
from handflow.data.interhand import InterHandDataset
from handflow.data.selection import pick_frames
from handflow.synth.motions import TEST_SEQUENCES
from handflow.errors import HandflowError


@pytest.fixture(scope="module")
def test_ds(tiny_data_root):
    return InterHandDataset(tiny_data_root, "test", crop_px=64)


def test_layout_and_counts(tiny_data_root, test_ds):
    assert test_ds.available() == {c: sorted(s) for c, s in TEST_SEQUENCES.items()}
    assert len(test_ds) == 7 * 8 * 2
    for split in ("train", "val", "test"):
        for kind in ("data", "camera", "joint_3d", "MANO_NeuralAnnot"):
            assert annotation_path(tiny_data_root, split, kind).is_file()
    it = test_ds.items[0]
    assert (tiny_data_root / "images" / "test" / f"Capture{it['capture']}" / it["seq"] / f"cam{it['camera']}"
            / f"image{it['frame']}.jpg").is_file()
    data = json.loads(annotation_path(tiny_data_root, "test", "data").read_text())
    img, ann = data["images"][0], data["annotations"][0]
    assert {"id", "file_name", "width", "height", "capture", "seq_name", "camera", "frame_idx"} <= set(img)
    assert isinstance(img["camera"], str) and isinstance(img["capture"], int)
    assert {"id", "image_id", "bbox", "joint_valid", "hand_type", "hand_type_valid", "joint_visible"} <= set(ann)
    assert ann["hand_type"] == "interacting" and len(ann["joint_valid"]) == 42
    # frame ids are unique within a capture
    j3d = json.loads(annotation_path(tiny_data_root, "test", "joint_3d").read_text())
    for cap in ("0", "1"):
        seqs_of = {}
        for im in data["images"]:
            if str(im["capture"]) == cap:
                seqs_of.setdefault(im["frame_idx"], set()).add(im["seq_name"])
        assert all(len(s) == 1 for s in seqs_of.values())
        assert set(j3d[cap]) == {str(f) for f in seqs_of}
    for split in ("train", "val"):
        ds = InterHandDataset(tiny_data_root, split, crop_px=32)
        assert len(ds) > 0 and not set(ds.available()) & {0, 1}


def test_projection_matches_stored_2d_and_crop(tiny_data_root, test_ds):
    data = json.loads(annotation_path(tiny_data_root, "test", "data").read_text())
    stored = {(im["capture"], im["seq_name"], im["camera"], im["frame_idx"]): np.array(a["joint_img"])
              for im, a in zip(data["images"], data["annotations"])}
    for i in range(0, len(test_ds), 5):
        s = test_ds[i]
        key = (s["capture"], s["seq"], s["camera"], s["frame"])
        assert np.abs(s["joints_img_px"].double().numpy() - stored[key]).max() < 0.01
        # K_crop projects camera joints onto the crop joints
        jc = s["joints_cam_mm"].double()
        uv = (jc @ s["K_crop"].double().T)[:, :2] / jc[:, 2:]
        assert (uv - s["joints_crop_px"].double()).abs().max() < 0.01
        # camera joints from world joints with R, campos
        assert torch.allclose((s["joints_world_mm"] - s["campos_mm"]) @ s["R"].T, s["joints_cam_mm"], atol=1e-3)
        assert s["image"].shape == (3, 64, 64) and 0 <= s["image"].min() and s["image"].max() <= 1
        v = s["joint_valid"] > 0
        assert ((s["joints_crop_px"][v] > -0.5) & (s["joints_crop_px"][v] < 63.5)).all()


def test_mano_round_trip(tiny_data_root, test_ds):
    """MANO parameters read back -> HandModel keypoints == the stored world joints, every split."""
    from handflow.hand.model import HandModel
    from handflow.synth.mano import default_mano_dir

    hm = HandModel.from_dir(default_mano_dir())
    for split in ("test", "train", "val"):
        ds = test_ds if split == "test" else InterHandDataset(tiny_data_root, split, crop_px=32)
        g = [ds.geometry(i, (128, 84)) for i in range(len(ds))]
        t = lambda k: torch.tensor(np.stack([x[k] for x in g]), dtype=torch.float32)  # noqa: E731
        with torch.no_grad():
            kp = hm.keypoints_from_mano(t("pose"), t("shape"), t("trans"))
        assert (kp.double() - t("world").double()).abs().max() < 1e-3, split
        assert t("mvalid").min() == 1
    batch = test_ds.load_view(0, "0001_touch_fingertips", test_ds.camera_ids(0)[0])
    with torch.no_grad():
        kp = hm.keypoints_from_mano(batch["mano_pose"], batch["mano_shape"], batch["mano_trans_m"])
    assert (kp - batch["joints_world_mm"]).abs().max() < 1e-3


def test_hands_close_and_images_show_hands(test_ds):
    # every test frame: the hands are within a few cm of each other
    for cap, seqs in test_ds.available().items():
        for seq in seqs:
            b = test_ds.load_view(cap, seq, test_ds.camera_ids(cap)[0])
            kp = b["joints_world_mm"]
            d = torch.cdist(kp[:, :21], kp[:, 21:]).amin((1, 2))
            assert (d < 70).all(), (seq, d)


def test_images_show_the_hands_where_the_annotations_put_them(test_ds):
    """Skin reflects more red than blue (every tone of the renderer's palette, under lights whose
    red/blue balance stays within ±12 %), so the pixel under a visible joint's 2D position is red-over-blue;
    the background away from the hands is random colours, red-over-blue about half the time. A renderer
    that drew the hands elsewhere (mirrored, shifted, another camera or frame) puts the visible joints on
    background: their red-over-blue share falls to the background's."""
    on_joint, away = [], []
    for i in range(len(test_ds)):
        img = test_ds.load_full_image(i).astype(np.int64)
        H, W = img.shape[:2]
        g = test_ds.geometry(i, (H, W))
        uv = np.rint(g["img"]).astype(int)
        vis = (g["visible"] > 0) & (uv[:, 0] >= 0) & (uv[:, 0] < W) & (uv[:, 1] >= 0) & (uv[:, 1] < H)
        px = img[uv[vis, 1], uv[vis, 0]]
        on_joint.append(px[:, 0] > px[:, 2])
        b = g["box"]  # the crop box around the hands (15 % margin): outside it is background only
        yy, xx = np.mgrid[0:H:4, 0:W:4]
        out = (xx < b.left) | (xx >= b.left + b.side) | (yy < b.top) | (yy >= b.top + b.side)
        bg = img[yy[out], xx[out]]
        away.append(bg[:, 0] > bg[:, 2])
    on_joint, away = np.concatenate(on_joint), np.concatenate(away)
    assert len(on_joint) > 1000 and len(away) > 10000
    # a few joints on a finger's silhouette at 128x84 px take the background's colour: 90 %, not 100 %
    assert on_joint.mean() > 0.9, on_joint.mean()
    assert 0.3 < away.mean() < 0.7, away.mean()


def test_load_view_matches_getitem(test_ds):
    cam = test_ds.camera_ids(1)[2]
    b = test_ds.load_view(1, "0005_point_palm", cam)
    assert b["image"].shape[0] == len(test_ds.frames(1, "0005_point_palm")) == len(b["frame"])
    s = test_ds[test_ds.index_of(1, "0005_point_palm", cam, b["frame"][1])]
    for k in ("image", "K_crop", "joints_cam_mm", "joint_visible", "mano_pose"):
        assert torch.equal(b[k][1], s[k])


def test_selection_and_filters(tiny_data_root):
    ds = InterHandDataset(tiny_data_root, "test", selection="Capture1", crop_px=32)
    assert list(ds.available()) == [1] and len(ds.available()[1]) == 3
    ds = InterHandDataset(tiny_data_root, "test", selection="Capture0/0002_interlock_fingers,Capture1",
                          cameras=["400003", "400005"], max_frames=1, crop_px=32)
    assert ds.available() == {0: ["0002_interlock_fingers"], 1: sorted(TEST_SEQUENCES[1])}
    assert len(ds) == 4 * 2 * 1
    assert set(ds.camera_ids(0)) == {"400003", "400005"}
    ds = InterHandDataset(tiny_data_root, "test", selection="Capture0-1", crop_px=32)
    assert set(ds.available()) == {0, 1}
    assert ds.sequences() == sorted((c, s) for c, seqs in ds.available().items() for s in seqs)
    # --frames: N evenly spaced frames per sequence, the first and the last included; N = 1: the first
    for n in (1, 2, 3):
        few = InterHandDataset(tiny_data_root, "test", selection="Capture0-1", max_frames=n, crop_px=32)
        for cap, seq in ds.sequences():
            assert few.frames(cap, seq) == pick_frames(ds.frames(cap, seq), n)
            assert few.frames(cap, seq)[0] == ds.frames(cap, seq)[0]
            assert n == 1 or few.frames(cap, seq)[-1] == ds.frames(cap, seq)[-1]
    with pytest.raises(HandflowError, match="Capture7"):
        InterHandDataset(tiny_data_root, "test", selection="Capture7")
    with pytest.raises(HandflowError, match="nope"):
        InterHandDataset(tiny_data_root, "test", selection="Capture0/nope")
    with pytest.raises(HandflowError, match="999999"):
        InterHandDataset(tiny_data_root, "test", cameras=["999999"])


def test_camera_queries(test_ds):
    cams = test_ds.cameras(0)
    assert len(cams) == 8
    c = test_ds.camera(0, "400004")
    assert c.K.shape == (3, 3)
    with pytest.raises(HandflowError, match="Capture5"):
        test_ds.cameras(5)
    with pytest.raises(HandflowError, match="123"):
        test_ds.camera(0, "123")
    with pytest.raises(HandflowError, match="nope"):
        test_ds.frames(0, "nope")
    with pytest.raises(HandflowError):
        test_ds.load_view(0, "0001_touch_fingertips", "123")


# ------------------------------------------------------------------------------------------ bad input


@pytest.fixture()
def copy_root(tiny_data_root, tmp_path):
    """A copy of the test split's annotations plus a few of its images."""
    root = tmp_path / "root"
    shutil.copytree(tiny_data_root / "annotations" / "test", root / "annotations" / "test")
    shutil.copytree(tiny_data_root / "images" / "test" / "Capture0" / "0001_touch_fingertips",
                    root / "images" / "test" / "Capture0" / "0001_touch_fingertips")
    return root


def _edit(path, fn):
    obj = json.loads(path.read_text())
    fn(obj)
    path.write_text(json.dumps(obj))


def test_missing_and_corrupt_annotation_files(copy_root):
    p = annotation_path(copy_root, "test", "data")
    p.write_text("")
    with pytest.raises(HandflowError, match="InterHand2.6M_test_data.json"):
        InterHandDataset(copy_root, "test")
    p.write_text('{"images": [')
    with pytest.raises(HandflowError, match="corrupt JSON.*InterHand2.6M_test_data.json"):
        InterHandDataset(copy_root, "test")
    p.unlink()
    with pytest.raises(HandflowError, match="missing file.*InterHand2.6M_test_data.json"):
        InterHandDataset(copy_root, "test")
    with pytest.raises(HandflowError, match="annotation folder"):
        InterHandDataset(copy_root, "val")


def test_nan_and_wrong_lengths(copy_root):
    p = annotation_path(copy_root, "test", "joint_3d")
    text = p.read_text()
    obj = json.loads(text)
    frame = next(iter(obj["0"]))
    obj["0"][frame]["world_coord"][3][1] = float("nan")
    p.write_text(json.dumps(obj))  # writes NaN
    with pytest.raises(HandflowError, match="InterHand2.6M_test_joint_3d.json"):
        InterHandDataset(copy_root, "test")
    obj["0"][frame]["world_coord"] = obj["0"][frame]["world_coord"][:40]
    obj["0"][frame]["world_coord"][3][1] = 1.0
    p.write_text(json.dumps(obj))
    with pytest.raises(HandflowError, match=r"joint_3d.json.*world_coord.*40 joints"):
        InterHandDataset(copy_root, "test")
    p.write_text(text)
    d = annotation_path(copy_root, "test", "data")
    _edit(d, lambda o: o["annotations"][0].__setitem__("joint_valid", [[1]] * 41))
    with pytest.raises(HandflowError, match=r"data.json.*annotations\[0\].joint_valid.*41"):
        InterHandDataset(copy_root, "test")


def test_capture_missing_from_camera_json(copy_root):
    _edit(annotation_path(copy_root, "test", "camera"), lambda o: o.pop("1"))
    with pytest.raises(HandflowError, match=r"joint_3d.json: capture 1 is not in InterHand2.6M_test_camera.json"):
        InterHandDataset(copy_root, "test")


def test_bad_camera_entry(copy_root):
    _edit(annotation_path(copy_root, "test", "camera"), lambda o: o["0"]["camrot"].__setitem__("400003", [[1, 0], [0, 1]]))
    with pytest.raises(HandflowError, match=r"camera.json: capture 0.*camrot 400003"):
        InterHandDataset(copy_root, "test")


def test_missing_and_truncated_images(copy_root):
    ds = InterHandDataset(copy_root, "test", selection="Capture0/0001_touch_fingertips", crop_px=32)
    cam = ds.camera_ids(0)[0]
    frames = ds.frames(0, "0001_touch_fingertips")
    p0 = ds.image_path(ds.index_of(0, "0001_touch_fingertips", cam, frames[0]))
    p1 = ds.image_path(ds.index_of(0, "0001_touch_fingertips", cam, frames[1]))
    p0.unlink()
    p1.write_bytes(p1.read_bytes()[:200])
    with pytest.raises(HandflowError, match=f"missing image: .*{p0.name}"):
        ds[ds.index_of(0, "0001_touch_fingertips", cam, frames[0])]
    with pytest.raises(HandflowError, match=f"truncated image: .*{p1.name}"):
        ds[ds.index_of(0, "0001_touch_fingertips", cam, frames[1])]
    with pytest.raises(HandflowError, match="missing image"):
        ds.load_view(0, "0001_touch_fingertips", cam)
    # images of other sequences are absent from this copy: skip them too
    ds2 = InterHandDataset(copy_root, "test", selection="Capture0/0001_touch_fingertips", crop_px=32,
                           skip_bad_images=True)
    with pytest.raises(HandflowError, match="no readable image"):
        ds2.load_view(0, "0001_touch_fingertips", cam)
    assert len(ds2.skipped) == 2
    bad = ds2.check_images()
    assert len(bad) == 2 and len(ds2) == len(ds) - 2
    other = ds.camera_ids(0)[1]
    b = ds2.load_view(0, "0001_touch_fingertips", other)
    assert b["image"].shape[0] == 2 and b["skipped"] == []


@pytest.fixture
def no_stored_visibility(tiny_data_root, tmp_path):
    """Capture1 of the tiny capture with ``joint_visible`` dropped from data.json (as the real release)."""
    root = tmp_path / "root"
    shutil.copytree(tiny_data_root / "annotations" / "test", root / "annotations" / "test")
    shutil.copytree(tiny_data_root / "images" / "test" / "Capture1", root / "images" / "test" / "Capture1")

    def drop(o):
        for a in o["annotations"]:
            a.pop("joint_visible")
    _edit(annotation_path(root, "test", "data"), drop)
    return root


def test_visibility_recomputed_without_stored_flags(tiny_data_root, no_stored_visibility):
    from handflow.synth.mano import default_mano_dir

    ref = InterHandDataset(tiny_data_root, "test", selection="Capture1", crop_px=32)
    # the tiny capture was generated with the synthetic MANO: its folder gives the right mesh here
    ds = InterHandDataset(no_stored_visibility, "test", selection="Capture1", crop_px=32, mano_dir=str(default_mano_dir()))
    agree, n = 0, 0
    for i in range(0, len(ds), 3):
        a, b = ds[i]["joint_visible"], ref[i]["joint_visible"]
        agree += int((a == b).sum())
        n += a.numel()
    assert agree / n > 0.97


def test_visibility_without_a_mano_folder_is_one_error(tiny_data_root, no_stored_visibility):
    """The reader has no default MANO: computing visibility without a folder names the split and --mano-dir."""
    ds = InterHandDataset(no_stored_visibility, "test", selection="Capture1", crop_px=32)
    assert len(ds) > 0  # indexing, selection and the stored 2D need no MANO
    with pytest.raises(HandflowError) as err:
        ds[0]
    msg = str(err.value)
    assert "\n" not in msg and "'test'" in msg and str(no_stored_visibility) in msg and "--mano-dir" in msg
    # a capture that stores its visibility never needs one
    assert InterHandDataset(tiny_data_root, "test", selection="Capture1", crop_px=32)[0]["joint_visible"].numel() == 42
