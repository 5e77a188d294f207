"""The camera dome and training rigs."""

import numpy as np

from handflow.synth.rig import RIG_CENTER_MM, camera_ids, dome_rig, random_rig


def test_dome_has_140_cameras_around_the_hands():
    rig = dome_rig()
    assert len(rig.cameras) == 140 and rig.ids[0] == "400002" and len(set(rig.ids)) == 140
    el = np.array([rig.elevation_deg[c] for c in rig.ids])
    az = np.array([rig.azimuth_deg[c] for c in rig.ids])
    assert el.min() < -25 and el.max() > 70 and el.min() >= -40 and el.max() <= 85
    assert np.histogram(az, bins=8, range=(0, 360))[0].min() >= 10  # all around
    for cam in rig.cameras.values():
        d = np.linalg.norm(cam.campos_mm - RIG_CENTER_MM)
        assert 880 <= d <= 1120
        uv = cam.project(cam.world_to_cam(RIG_CENTER_MM))
        assert 0 < uv[0] < 168 and 0 < uv[1] < 256  # the hands' centre is in view
        assert 480 < cam.focal_px[0] < 570


def test_rigs_deterministic_and_distinct():
    a, b = dome_rig(seed=1), dome_rig(seed=1)
    assert all(np.array_equal(a.cameras[c].R, b.cameras[c].R) for c in a.ids)
    r1 = random_rig(np.random.default_rng(0), (256, 168), 20)
    r2 = random_rig(np.random.default_rng(1), (256, 168), 20)
    assert not np.allclose(r1.cameras["400002"].campos_mm, r2.cameras["400002"].campos_mm)
    assert camera_ids(70)[-1] == "410002"


def test_dome_angles_from_cameras_alone():
    from handflow.geometry.rig import dome_angles, rig_center, rig_up

    rig = dome_rig()
    assert np.linalg.norm(rig_center(rig.cameras) - RIG_CENTER_MM) < 15
    assert rig_up(rig.cameras)[2] > 0.99
    exact = dome_angles(rig.cameras, RIG_CENTER_MM, np.array([0.0, 0.0, 1.0]))
    for c in rig.ids:
        assert abs(exact[c][1] - rig.elevation_deg[c]) < 1e-9
        assert abs((exact[c][0] - rig.azimuth_deg[c] + 180) % 360 - 180) < 1e-9
    est = dome_angles(rig.cameras)
    assert max(abs(est[c][1] - rig.elevation_deg[c]) for c in rig.ids) < 5
