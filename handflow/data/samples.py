"""One annotated image as the model sees it: decoded, its joints in every frame, cropped.

:func:`load_image` decodes a capture's JPEG (one-line errors for missing or broken files);
:func:`image_geometry` puts the image's ground truth in the camera (``X_cam = R @ (X_world - campos)``,
mm) and on the image (px), applies the toolkit's validity rule (a hand whose root joint is invalid is
invalid), takes the stored or computed visibility and the square crop around the hands
(:mod:`handflow.data.crop`); :func:`crop_sample` cuts the crop out of the decoded image and returns the
float32 tensors one sample holds (the crop ``(3,S,S)`` in [0,1], ``K_crop = A @ K``, joints in mm and px).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from handflow.data.crop import crop_affine, crop_box, crop_image
from handflow.errors import HandflowError
from handflow.geometry.camera import Camera
from handflow.keypoints import HAND_SLICES, ROOT_IDX


def load_image(path: Path) -> np.ndarray:
    """(H,W,3) uint8 RGB; missing, empty, corrupt or truncated files raise HandflowError."""
    if not path.is_file():
        raise HandflowError(f"missing image: {path}")
    try:
        with Image.open(path) as im:
            im.load()
            return np.array(im.convert("RGB"))
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as err:
        raise HandflowError(f"corrupt or truncated image: {path} ({err})") from err


def image_geometry(it: dict, cam: Camera, world: np.ndarray, valid3d: np.ndarray, mano: tuple,
                   image_hw: tuple[int, int], crop_px: int, camera_path: Path,
                   computed_visibility: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> dict:
    """One annotated image's geometry as float64 numpy, no image decoded.

    ``it`` the image's row (:class:`handflow.data.items.Items`), ``cam`` its camera, ``world (42,3)`` mm and
    ``valid3d (42,)`` its frame's joints, ``mano`` its frame's ``(pose (2,48), shape (2,10), trans (2,3) m,
    valid (2,))``, ``image_hw = (H, W)`` px, ``crop_px`` the crop side ``S``; ``camera_path`` names the file
    in errors; ``computed_visibility(joints_cam (42,3), valid (42,))`` gives the visibility when the row
    stores none. Returns ``world``, ``cam`` (42x3 mm), ``img`` (42x2 px), ``valid``, ``visible`` (42; a
    hand whose root is invalid is invalid), crop ``box`` and affine ``A`` (3x3), ``K``, ``R``, ``campos``,
    MANO ``pose``/``shape``/``trans``/``mvalid``.
    """
    jc = cam.world_to_cam(world)
    ji = cam.project(jc)
    valid = it["valid"] * valid3d
    for hand, sl in HAND_SLICES.items():
        valid[sl] = valid[sl] * valid[ROOT_IDX[hand]]
    visible = it["visible"]
    if visible is None:
        visible = computed_visibility(jc, valid)
    visible = visible * (valid > 0)
    if not np.all(np.abs(ji[valid > 0]) < 1e9):  # also false for NaN
        raise HandflowError(f"{camera_path}: capture {it['capture']} camera {it['camera']}: the joints of "
                            f"frame {it['frame']} project to non-finite or absurd pixels (check the camera)")
    box = crop_box(ji, valid, image_hw)
    if box.side > 8 * max(image_hw):  # would allocate a huge crop; the joints are nowhere near the image
        raise HandflowError(f"{camera_path}: capture {it['capture']} camera {it['camera']}: the joints of "
                            f"frame {it['frame']} span {box.side} px, far beyond the {image_hw[1]}x{image_hw[0]} "
                            "image (check the camera and joint_3d.json)")
    A = crop_affine(box, crop_px)
    pose, shape, trans, mvalid = mano
    return dict(
        world=world, cam=jc, img=ji, valid=valid, visible=visible, box=box, A=A, K=cam.K, R=cam.R,
        campos=cam.campos_mm, pose=pose, shape=shape, trans=trans, mvalid=mvalid,
    )


def crop_sample(it: dict, g: dict, img: np.ndarray, crop_px: int) -> dict:
    """The model's sample of one image: ``img (H,W,3) uint8`` cropped with ``g`` (:func:`image_geometry`).

    ``image`` (3,S,S) float in [0,1]; ``K``, ``K_crop``, ``crop_affine`` (3x3); ``joints_world_mm``,
    ``joints_cam_mm`` (42x3); ``joints_img_px``, ``joints_crop_px`` (42x2); ``joint_valid``,
    ``joint_visible`` (42); ``mano_pose`` (2x48), ``mano_shape`` (2x10), ``mano_trans_m`` (2x3),
    ``mano_valid`` (2); ``R`` (3x3), ``campos_mm`` (3); ``image_hw`` (2) -- float32 tensors -- and the
    row's ``capture``, ``seq``, ``camera``, ``frame``.
    """
    H, W = img.shape[:2]
    image = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float() / 255.0
    crop = crop_image(image, g["box"], crop_px).clamp(0.0, 1.0)
    f32 = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
    return {
        "image": crop,
        "K": f32(g["K"]),
        "K_crop": f32(g["A"] @ g["K"]),
        "crop_affine": f32(g["A"]),
        "joints_world_mm": f32(g["world"]),
        "joints_cam_mm": f32(g["cam"]),
        "joints_img_px": f32(g["img"]),
        "joints_crop_px": f32(g["img"] @ g["A"][:2, :2].T + g["A"][:2, 2]),
        "joint_valid": f32(g["valid"]),
        "joint_visible": f32(g["visible"]),
        "mano_pose": f32(g["pose"]),
        "mano_shape": f32(g["shape"]),
        "mano_trans_m": f32(g["trans"]),
        "mano_valid": f32(g["mvalid"]),
        "R": f32(g["R"]),
        "campos_mm": f32(g["campos"]),
        "image_hw": torch.tensor([H, W]),
        "capture": it["capture"],
        "seq": it["seq"],
        "camera": it["camera"],
        "frame": it["frame"],
    }
