"""Would other test-time perturbations than rank's crop shifts rank the cameras better? In-plane rotations and
photometric changes of the crop, scored beside the shifts on the same images.

    python -m benchmarks.ambiguity_perturb dump perturb.npz [MODEL]          # every test image, ~11 min on 2 quiet cores
    python -m benchmarks.ambiguity_perturb score crops.npz perturb.npz       # the table of reports/ambiguity.md

``dump`` runs the model (the shipped one where ``MODEL`` is left out) on every image of the default capture's
test split under each of :data:`PERTURBATIONS` and stores the modes in the format of
:mod:`benchmarks.ambiguity_crops` (``(N, perturbations, 42, 3)`` mm, camera frame). A rotation turns the crop
about its centre; that is the crop camera turned about its optical axis, with the principal point turned
with the pixels (:func:`perturb`), so the rotated image's mode is turned back into the camera frame before
it is stored. ``score`` pools the dump with ``benchmarks.ambiguity_crops``'s dump of the same images and
prints, for named sets, the ranker figures of :func:`benchmarks.ambiguity_crops.table` on all frames and on
each half of the frames. The MPJPE is always the plain crop's mode's (the crops dump's first).
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Perturbation:
    """``kind``: ``"plain"``, ``"rotate"`` (``value`` degrees about the crop's centre; positive turns the
    picture clockwise on screen, image y pointing down), ``"brightness"`` (pixels × value), ``"gamma"`` (pixels ** value), ``"contrast"`` (about
    the image's mean), ``"white_balance"`` (red × value, blue ÷ value), ``"blur"`` (Gaussian, σ = value px,
    5 × 5) or ``"noise"`` (Gaussian, σ = value, seeded by the batch's first index)."""

    name: str
    kind: str
    value: float = 0.0


PERTURBATIONS = (
    Perturbation("plain", "plain"),
    Perturbation("rotate +5°", "rotate", 5.0), Perturbation("rotate -5°", "rotate", -5.0),
    Perturbation("rotate +10°", "rotate", 10.0), Perturbation("rotate -10°", "rotate", -10.0),
    Perturbation("brightness ×0.8", "brightness", 0.8), Perturbation("brightness ×1.2", "brightness", 1.2),
    Perturbation("gamma 0.8", "gamma", 0.8), Perturbation("gamma 1.25", "gamma", 1.25),
    Perturbation("contrast ×0.8", "contrast", 0.8), Perturbation("contrast ×1.25", "contrast", 1.25),
    Perturbation("warmer", "white_balance", 1.1), Perturbation("cooler", "white_balance", 0.9),
    Perturbation("blur σ 0.8 px", "blur", 0.8), Perturbation("noise σ 0.03", "noise", 0.03),
    Perturbation("brightness ×0.9", "brightness", 0.9), Perturbation("brightness ×1.1", "brightness", 1.1),
)


def perturb(images: torch.Tensor, K_crop: torch.Tensor, p: Perturbation, seed: int = 0):
    """``images (B, 3, S, S)`` in [0, 1], ``K_crop (B, 3, 3)`` -> ``(images', K' (B, 3, 3), R (3, 3))``.

    ``R`` turns camera-frame points into the perturbed crop camera's frame (``X' = R X``; the identity unless
    rotated): a mode predicted from ``images'`` with ``K'`` is ``X'``, and ``X' @ R`` (row vectors) is it in
    the original camera frame. Exact for square pixels (``fx = fy``; the test crops' differ by < 0.2 %).
    """
    B, _, H, W = images.shape
    eye = torch.eye(3)
    if p.kind == "plain":
        return images, K_crop, eye
    if p.kind == "rotate":
        t = math.radians(p.value)
        R2 = torch.tensor([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
        theta = torch.zeros(B, 2, 3)
        theta[:, :, :2] = R2.T  # affine_grid maps output to input: u = R2^T (u' - c) + c, about the centre
        grid = F.affine_grid(theta, list(images.shape), align_corners=False)
        out = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        centre = torch.tensor([(W - 1) / 2, (H - 1) / 2])
        K2 = K_crop.clone()
        K2[:, :2, 2] = (K_crop[:, :2, 2] - centre) @ R2.T + centre
        R = eye.clone()
        R[:2, :2] = R2
        return out, K2, R
    x = images.clamp(0, 1)
    if p.kind == "brightness":
        out = x * p.value
    elif p.kind == "gamma":
        out = x ** p.value
    elif p.kind == "contrast":
        mean = x.mean((1, 2, 3), keepdim=True)
        out = (x - mean) * p.value + mean
    elif p.kind == "white_balance":
        out = x * torch.tensor([p.value, 1.0, 1.0 / p.value]).view(1, 3, 1, 1)
    elif p.kind == "blur":
        k = torch.exp(-torch.arange(-2.0, 3.0) ** 2 / (2 * p.value ** 2))
        k = (k[:, None] * k[None, :] / k.sum() ** 2).expand(3, 1, 5, 5)
        out = F.conv2d(F.pad(x, (2, 2, 2, 2), mode="replicate"), k, groups=3)
    elif p.kind == "noise":
        out = x + p.value * torch.randn(x.shape, generator=torch.Generator().manual_seed(seed))
    else:
        raise ValueError(f"unknown perturbation kind {p.kind!r}")
    return out.clamp(0, 1), K_crop, eye


def dump(out: str, model_path: str = "viewselect/models/default.pt", batch: int = 128) -> None:
    from benchmarks.ambiguity_crops import load_test_split, split_batches
    from handflow.hand.model import HandModel
    from handflow.model.registry import load_model
    from handflow.synth.mano import default_mano_dir

    hm = HandModel.from_dir(default_mano_dir())
    model = load_model(model_path, hm)[0].eval()
    data, stored = load_test_split(model.cfg.crop_px, hm)
    N = len(data["image"])
    modes = np.zeros((N, len(PERTURBATIONS), 42, 3), np.float32)
    t0 = time.time()
    with torch.inference_mode():
        for a, img, K, zero in split_batches(data, batch):
            for c, p in enumerate(PERTURBATIONS):
                im, Kc, R = perturb(img, K, p, seed=a)
                modes[a:a + batch, c] = (model.predict_joints(model.encode(im), Kc, zero)[:, 0] @ R).numpy()
    np.savez(out, modes=modes, **stored, crops=np.array([p.name for p in PERTURBATIONS]), model=model_path)
    print(f"wrote {out}: {N} images x {len(PERTURBATIONS)} perturbations in {time.time() - t0:.0f} s")


def subsets(shifts: list[int], offset: int) -> dict[str, list[int]]:
    """Named sets of the pooled dump: ``shifts`` are rank's crops in the crops dump (plain first), the
    perturbations follow from index ``offset``."""
    at = {p.name: offset + i for i, p in enumerate(PERTURBATIONS)}
    rot5, rot10 = [at["rotate +5°"], at["rotate -5°"]], [at["rotate +10°"], at["rotate -10°"]]
    light = [at[n] for n in ("brightness ×0.8", "brightness ×1.2", "gamma 0.8", "gamma 1.25")]
    photometric = [at[p.name] for p in PERTURBATIONS if p.kind not in ("plain", "rotate")]
    return {
        "rank's 5 (shifts of 5 %)": shifts,
        "rotations ±5°": [0] + rot5,
        "rotations ±10°": [0] + rot10,
        "rotations ±5° ±10°": [0] + rot5 + rot10,
        "brightness ×0.8/1.2, gamma 0.8/1.25": [0] + light,
        "brightness ×0.9/1.1": [0, at["brightness ×0.9"], at["brightness ×1.1"]],
        "contrast ×0.8/1.25": [0, at["contrast ×0.8"], at["contrast ×1.25"]],
        "white balance": [0, at["warmer"], at["cooler"]],
        "blur + noise": [0, at["blur σ 0.8 px"], at["noise σ 0.03"]],
        "all 12 photometric": [0] + photometric,
        "rank's 5 + rotations ±5°": shifts + rot5,
        "rank's 5 + rotations ±5° ±10°": shifts + rot5 + rot10,
        "rank's 5 + brightness, gamma": shifts + light,
        "rank's 5 + all 12 photometric": shifts + photometric,
    }


def score(crops_path: str, perturb_path: str) -> None:
    from benchmarks.ambiguity_crops import CANDIDATES, _halves, pooled, table
    from handflow.geometry.recrop import TEST_TIME_CROPS

    d = pooled(crops_path, perturb_path)
    named = subsets([CANDIDATES.index(j) for j in TEST_TIME_CROPS], len(CANDIDATES))
    rows, (even, odd) = table(d, named), [table(part, named) for part in _halves(d)]
    print(f"{len(d['camera'])} images, model {d['model']}; error: the plain crop's mode")
    print("| test-time inputs | encoder passes | spread after | Global ρ | best ÷ avg | worst ÷ avg | RR ρ | best ÷ avg "
          "| worst ÷ avg | Global ρ, even / odd frames | RR ρ, even / odd frames |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r, e, o in zip(rows, even, odd):
        print(f"| {r['subset']} | {r['crops']} | {r['spread']} | {r['rho_global']:+.3f} | {r['best_global']:.2f} "
              f"| {r['worst_global']:.2f} | {r['rho_rr']:+.3f} | {r['best_rr']:.2f} | {r['worst_rr']:.2f} "
              f"| {e['rho_global']:+.3f} / {o['rho_global']:+.3f} | {e['rho_rr']:+.3f} / {o['rho_rr']:+.3f} |")


if __name__ == "__main__":
    if sys.argv[1:2] == ["dump"] and len(sys.argv) in (3, 4):
        dump(*sys.argv[2:])
    elif sys.argv[1:2] == ["score"] and len(sys.argv) == 4:
        score(*sys.argv[2:])
    else:
        raise SystemExit(__doc__.strip().splitlines()[0] + "\nusage: python -m benchmarks.ambiguity_perturb "
                         "dump FILE.npz [MODEL] | score CROPS.npz FILE.npz")
