"""Square crops and their intrinsics."""

import numpy as np
import torch

from handflow.data.crop import crop, crop_affine, crop_box, crop_image, crop_to_image, image_to_crop


def test_crop_matches_affine_exactly_without_resize():
    img = torch.zeros(3, 60, 40)
    img[:, 30, 20] = 1.0
    uv = np.array([[15.0, 25.0], [25.0, 35.0]])
    box = crop_box(uv, np.ones(2), (60, 40), pad=1.0, min_side=16)
    A = crop_affine(box, box.side)
    c = crop_image(img, box, box.side)
    y, x = np.unravel_index(int(c[0].argmax()), c[0].shape)
    assert np.allclose(image_to_crop(np.array([20.0, 30.0]), A), [x, y])


def test_k_crop_projects_into_crop_pixels():
    K = np.array([[300.0, 0, 40.0], [0, 300.0, 60.0], [0, 0, 1]])
    X = np.array([[10.0, -20.0, 500.0], [-30.0, 25.0, 450.0], [5.0, 5.0, 520.0]])
    uv = (X @ K.T)[:, :2] / X[:, 2:]
    img = torch.rand(3, 120, 80)
    out, K_crop, A, box = crop(img, uv, np.ones(3), K, 64)
    assert out.shape == (3, 64, 64)
    uvc = (X @ K_crop.T)[:, :2] / X[:, 2:]
    assert np.allclose(uvc, image_to_crop(uv, A), atol=1e-9)
    assert np.allclose(crop_to_image(uvc, A), uv, atol=1e-9)
    assert np.allclose(crop_to_image(torch.tensor(uvc), A).numpy(), uv, atol=1e-6)
    # the box is square, padded and holds every joint
    assert box.side >= np.ptp(uv, 0).max() * 1.3 - 1
    assert ((uvc >= -0.5) & (uvc <= 63.5)).all()


def test_resized_crop_keeps_a_blob_at_its_mapped_place():
    img = torch.zeros(1, 100, 100)
    img[0, 40:43, 60:63] = 1.0  # centre (61, 41)
    box = crop_box(np.array([[30.0, 20.0], [90.0, 70.0]]), np.ones(2), (100, 100))
    A = crop_affine(box, 32)
    c = crop_image(img, box, 32)[0].numpy()
    yy, xx = np.mgrid[0:32, 0:32]
    cen = np.array([(c * xx).sum(), (c * yy).sum()]) / c.sum()
    assert np.allclose(cen, image_to_crop(np.array([61.0, 41.0]), A), atol=0.15)


def test_no_valid_joints_gives_centred_square():
    box = crop_box(np.zeros((42, 2)), np.zeros(42), (256, 168))
    assert box.side == 168 and box.top == 44
