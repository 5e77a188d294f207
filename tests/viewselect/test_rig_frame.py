"""Azimuth/elevation in the rig's own frame: rotating the whole capture changes no number of `rank`."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.spatial.transform import Rotation

from handflow.geometry.rig import rig_angles, rig_axes, rig_center
from handflow.synth.rig import dome_rig
from viewselect.engine import RankConfig
from viewselect.rank_pipeline import RankRequest, run_rank

WORLD_COLUMNS = ["campos_x_mm", "campos_y_mm", "campos_z_mm"]  # the calibration's own numbers: they rotate


def rotate_capture(src, dst, Q: np.ndarray) -> None:
    """Copy the capture at ``src`` to ``dst`` with the world rotated by ``Q`` (3,3): cameras, 3D joints and
    MANO hands move together, the images stay the same."""
    from handflow.hand.model import HandModel
    from handflow.synth.mano import default_mano_dir

    shutil.copytree(src, dst)
    ann = dst / "annotations" / "test"
    cams = json.loads((ann / "InterHand2.6M_test_camera.json").read_text())
    for entry in cams.values():
        for cid in entry["campos"]:
            entry["campos"][cid] = (Q @ np.asarray(entry["campos"][cid])).tolist()
            entry["camrot"][cid] = (np.asarray(entry["camrot"][cid]) @ Q.T).tolist()
    (ann / "InterHand2.6M_test_camera.json").write_text(json.dumps(cams))
    joints = json.loads((ann / "InterHand2.6M_test_joint_3d.json").read_text())
    for frames in joints.values():
        for fr in frames.values():
            fr["world_coord"] = (np.asarray(fr["world_coord"]) @ Q.T).tolist()
    (ann / "InterHand2.6M_test_joint_3d.json").write_text(json.dumps(joints))
    hands = HandModel.from_dir(default_mano_dir())
    mano = json.loads((ann / "InterHand2.6M_test_MANO_NeuralAnnot.json").read_text())
    for frames in mano.values():
        for fr in frames.values():
            for h, hand in enumerate(("right", "left")):
                p = fr.get(hand)
                if p is None:
                    continue
                # MANO rotates about its root joint J0: world root = J0 + trans stays put under the new orient
                pose = torch.zeros(1, 2, 48, dtype=torch.float64)
                shape = torch.zeros(1, 2, 10, dtype=torch.float64)
                trans = torch.zeros(1, 2, 3, dtype=torch.float64)
                pose[0, h], shape[0, h], trans[0, h] = (torch.tensor(p[k], dtype=torch.float64)
                                                       for k in ("pose", "shape", "trans"))
                root = hands.keypoints_from_mano(pose, shape, trans)[0, 21 * h + 20].double().numpy() / 1000.0
                orient = Rotation.from_matrix(Q @ Rotation.from_rotvec(p["pose"][:3]).as_matrix()).as_rotvec()
                p["pose"] = [*orient.tolist(), *p["pose"][3:]]
                p["trans"] = (np.asarray(p["trans"]) + Q @ root - root).tolist()
    (ann / "InterHand2.6M_test_MANO_NeuralAnnot.json").write_text(json.dumps(mano))


def test_rig_axes_of_the_dome_and_of_a_rotated_dome():
    rig = dome_rig()
    axes = rig_axes(rig.cameras)
    assert axes[2] @ np.array([0.0, 0.0, 1.0]) > 0.99  # the synthetic world's +z
    np.testing.assert_allclose(axes @ axes.T, np.eye(3), atol=1e-12)
    Q = Rotation.random(random_state=1).as_matrix()
    from handflow.geometry.camera import Camera

    turned = {c: Camera(R=cam.R @ Q.T, campos_mm=Q @ cam.campos_mm, focal_px=cam.focal_px, princpt_px=cam.princpt_px)
              for c, cam in rig.cameras.items()}
    np.testing.assert_allclose(rig_axes(turned), axes @ Q.T, atol=1e-9)
    a, b = rig_angles(rig.cameras, rig.center_mm), rig_angles(turned, Q @ rig.center_mm)
    for c in rig.ids:
        np.testing.assert_allclose(a[c], b[c], atol=1e-7)
    az0 = rig_angles(rig.cameras, rig_center(rig.cameras))["400002"][0]  # the first camera defines azimuth 0
    assert (az0 + 180.0) % 360.0 - 180.0 == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("Q", [
    Rotation.random(random_state=7).as_matrix(),
    np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]]),  # z up -> -y up, as the real InterHand2.6M world
], ids=["random", "y-down"])
def test_rotating_the_capture_changes_no_number(tmp_path, tiny_data_root, tiny_model, Q):
    turned = tmp_path / "turned"
    rotate_capture(tiny_data_root, turned, Q)
    req = dict(sequence="Capture0-1", model=str(tiny_model), engine=RankConfig(samples=8, frames=2), keep=3)
    a = run_rank(RankRequest(data_root=str(tiny_data_root), **req))
    b = run_rank(RankRequest(data_root=str(turned), **req))
    tol = dict(rtol=1e-5, atol=1e-3)
    pd.testing.assert_frame_equal(a.views.drop(columns=WORLD_COLUMNS), b.views.drop(columns=WORLD_COLUMNS), **tol)
    np.testing.assert_allclose(a.views[WORLD_COLUMNS].to_numpy() @ Q.T, b.views[WORLD_COLUMNS].to_numpy(), atol=1e-6)
    for name in ("cameras", "sequences", "summary"):
        x, y = getattr(a.result, name), getattr(b.result, name)
        keep = [c for c in x.columns if c not in WORLD_COLUMNS]
        pd.testing.assert_frame_equal(x[keep], y[keep], **tol)
    assert a.result.drop_list == b.result.drop_list
    for k in ("kept_error_mm", "full_error_mm", "random_error_mm", "kept_failed_fraction"):
        assert a.triangulation[k] == pytest.approx(b.triangulation[k], rel=1e-5, abs=1e-3)
