"""Rasteriser and visibility on hand-made geometry."""

import torch
from meshes import K, box

from handflow.data.raster import rasterize, visibility


def test_triangle_depth_and_coverage():
    # a plane tilted in depth: Z = 500 + 2 * Y (camera mm); check depth at every covered pixel
    v = torch.tensor([[[-60.0, -50.0, 400.0], [60.0, -50.0, 400.0], [0.0, 50.0, 600.0]]], dtype=torch.float64)
    fr = rasterize(v, torch.tensor([[0, 1, 2]]), K.double(), (80, 100))
    ys, xs = torch.nonzero(fr.mask[0], as_tuple=True)
    assert len(ys) > 100
    # ray through pixel (x, y): X = (x-cx)/f * Z, Y = (y-cy)/f * Z; plane Z = 500 + 2Y -> Z = 500 / (1 - 2 (y-cy)/f)
    expect = 500.0 / (1.0 - 2.0 * (ys.double() - 40.0) / 200.0)
    assert torch.allclose(fr.depth[0, ys, xs], expect, atol=1e-6)
    # a pixel centre clearly outside the triangle is empty, one inside is covered
    assert not fr.mask[0, 5, 5] and fr.mask[0, 35, 50]
    # perspective-correct barycentrics reproduce the 3D point
    b = fr.bary[0, ys, xs]
    p = b @ v[0]
    assert torch.allclose(p[:, 2], expect, atol=1e-6)
    assert torch.allclose(p[:, 0] / p[:, 2] * 200 + 50, xs.double(), atol=1e-6)


def test_nearest_face_wins_and_labels():
    va, fa = box([0, 0, 500], [40, 40, 20])
    vb, fb = box([10, 0, 700], [80, 80, 20])
    verts = torch.cat([va, vb])[None]
    faces = torch.cat([fa, fb + 8])
    labels = torch.tensor([0] * 12 + [1] * 12)
    fr = rasterize(verts, faces, K.double(), (80, 100), labels)
    assert fr.label[0, 40, 50] == 0 and abs(fr.depth[0, 40, 50] - 490.0) < 1e-6
    assert fr.label[0, 40, 62] == 1 and abs(fr.depth[0, 40, 62] - 690.0) < 1e-6
    assert fr.label[0, 2, 2] == -1 and torch.isinf(fr.depth[0, 2, 2])


def test_visibility_front_hand_occludes_back_hand():
    # "right hand" (label 0) a slab in front, "left hand" (label 1) a bigger slab 150 mm behind
    va, fa = box([0, 0, 500], [60, 60, 20])
    vb, fb = box([0, 0, 650], [160, 120, 20])
    verts = torch.cat([va, vb])[None]
    faces = torch.cat([fa, fb + 8])
    labels = torch.tensor([0] * 12 + [1] * 12)
    fr = rasterize(verts, faces, K.double(), (80, 100), labels)
    # joints in the middle plane of each slab (8-10 mm below its front surface)
    front = [[0, 0, 500], [20, -20, 500], [-25, 25, 502]]
    back_hidden = [[0, 0, 650], [30, 30, 650], [-30, -30, 648]]  # behind the front slab
    back_free = [[70, 0, 650], [-70, 50, 650]]  # beside it
    outside = [[1000, 0, 650]]  # projects outside the image
    joints = torch.tensor([front + back_hidden + back_free + outside], dtype=torch.float64)
    jl = torch.tensor([0, 0, 0, 1, 1, 1, 1, 1, 1])
    vis = visibility(joints, fr, K.double(), jl, tol_mm=15.0)[0].tolist()
    assert vis == [True, True, True, False, False, False, True, True, False]
    # a same-hand surface far in front occludes too (tolerance exceeded)
    vis2 = visibility(torch.tensor([[[0.0, 0.0, 530.0]]], dtype=torch.float64), fr, K.double(), torch.tensor([0]))
    assert not bool(vis2[0, 0])


def test_depth_at_pixels_equals_the_z_buffer():
    # Random overlapping triangles (some crossing the near plane or leaving the image), two labels, a
    # duplicated face for the largest-face-id tie rule; every pixel and random subsets, float32 and 64.
    from handflow.data.raster import depth_at_pixels

    g = torch.Generator().manual_seed(0)
    B, F, H, W = 2, 60, 80, 100
    centre = torch.rand(B, F, 1, 3, generator=g) * torch.tensor([300.0, 240.0, 400.0]) + torch.tensor([-150.0, -120.0, 300.0])
    verts = (centre + torch.randn(B, F, 3, 3, generator=g) * 40.0).reshape(B, 3 * F, 3)
    verts[:, 0, 2] = 0.5  # one vertex behind the near plane
    faces = torch.arange(3 * F).reshape(F, 3)
    faces = torch.cat([faces, faces[5:6]])  # face F duplicates face 5 exactly
    labels = torch.cat([(torch.arange(F) % 2), torch.tensor([1 - 5 % 2])])
    ys, xs = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
    for dtype in (torch.float64, torch.float32):
        v = verts.to(dtype)
        fr = rasterize(v, faces, K.to(dtype), (H, W), labels)
        assert fr.mask.float().mean() > 0.3  # the test covers much of the image
        px = xs.reshape(1, -1).expand(B, -1)
        py = ys.reshape(1, -1).expand(B, -1)
        depth, label = depth_at_pixels(v, faces, K.to(dtype), (H, W), px, py, labels)
        assert torch.equal(depth, fr.depth.reshape(B, -1)) and torch.equal(label, fr.label.reshape(B, -1))
        sel = torch.randint(H * W, (B, 37), generator=g)
        d2, l2 = depth_at_pixels(v, faces, K.to(dtype), (H, W), px.gather(1, sel), py.gather(1, sel), labels)
        assert torch.equal(d2, fr.depth.reshape(B, -1).gather(1, sel))
        assert torch.equal(l2, fr.label.reshape(B, -1).gather(1, sel))
        dup = fr.face == F
        assert bool(dup.any()) and not bool((fr.face == 5).any())  # the tie went to the larger face id
        assert bool((fr.label[dup] == labels[F]).all())
