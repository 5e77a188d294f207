"""The default test motions as a proposed rig would see them, written in the InterHand2.6M layout.

``render_rig_capture(cameras, image_hw, frames)`` renders the seven test sequences of the embedded
capture (:data:`handflow.synth.motions.TEST_SEQUENCES`: same motions, same two subjects and skin as
:func:`handflow.synth.capture.synthesize` for the same seed) through every camera of the given rig, and
writes a ``test`` split that :class:`handflow.data.interhand.InterHandDataset` reads like any
capture — so ``rank``'s engine scores it unchanged. Only the cameras (and their image sizes)
differ from the default capture.

Rendered captures are cached under ``$VIEWSELECT_CACHE/plan/<digest>`` where the digest covers the
cameras, image sizes, frame count, seed, generator version and MANO files: planning the same rig
again reuses the images (and so ``rank``'s per-view cache). Written into a temporary folder that is
renamed into place, so an interrupted render leaves nothing half-written.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch

from handflow.cache import cache_dir
from handflow.errors import HandflowError
from handflow.geometry.camera import Camera
from handflow.geometry.rig import camera_angles, rig_center
from handflow.synth.capture import (SYNTH_VERSION, Renderer, SplitWriter, SynthConfig, build_and_publish,
                                    mano_digests, render_test_split, render_workers)
from handflow.synth.mano import default_mano_dir
from handflow.synth.rig import RIG_CENTER_MM, Rig

MANIFEST = "viewselect_plan.json"


def rig_digest(cameras: dict[str, Camera], image_hw: dict[str, tuple[int, int]], frames: int, seed: int) -> str:
    """Digest of everything a rendered capture depends on."""
    blob = {
        "version": SYNTH_VERSION, "frames": frames, "seed": seed, "mano": mano_digests(None),
        "cameras": {c: [np.round(cam.R, 9).tolist(), np.round(cam.campos_mm, 6).tolist(),
                        np.round(cam.focal_px, 6).tolist(), np.round(cam.princpt_px, 6).tolist(),
                        list(image_hw[c])] for c, cam in cameras.items()},
    }
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:16]


def render_rig_capture(cameras: dict[str, Camera], image_hw: dict[str, tuple[int, int]], frames: int = 6,
                       seed: int = 0, root: str | os.PathLike | None = None) -> Path:
    """Render (or reuse) the test motions through ``cameras``; returns the capture root.

    cameras: id -> Camera (world mm); image_hw: id -> (H, W) px; frames: frames per sequence
    (6 = the embedded capture's). Camera ids must be digits, as InterHand2.6M's (they become
    ``cam<id>`` folders).
    """
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
        raise HandflowError(f"--frames must be at least 1, found {frames!r}")
    bad = [c for c in cameras if not str(c).isdigit()]
    if bad:
        raise HandflowError(f"camera id {bad[0]!r}: rendered rigs need numeric ids, as InterHand2.6M's (e.g. 400002)")
    root = Path(root) if root is not None else cache_dir() / "plan" / rig_digest(cameras, image_hw, frames, seed)
    if (root / MANIFEST).is_file():
        return root
    return build_and_publish(root, MANIFEST, lambda tmp: _render(cameras, image_hw, frames, seed, tmp))


def _render(cameras, image_hw, frames: int, seed: int, tmp: Path) -> dict:
    """The test split through ``cameras`` into ``tmp``; returns the manifest."""
    from handflow.hand.model import HandModel

    cfg = SynthConfig(seed=seed, test_frames=frames)
    torch.manual_seed(seed)
    center = rig_center(cameras, fallback_mm=RIG_CENTER_MM)  # one camera, parallel axes: where the motions are
    angles = {c: camera_angles(cam.campos_mm, center) for c, cam in cameras.items()}
    rig = Rig(dict(cameras), {c: a[0] for c, a in angles.items()}, {c: a[1] for c, a in angles.items()},
              next(iter(image_hw.values())), center)
    writer = SplitWriter(tmp, "test")  # the embedded capture's writer: the same layout, byte for byte
    with Renderer(render_workers(cfg.test_sequences * frames * len(cameras))) as renderer:
        render_test_split(writer, HandModel.from_dir(default_mano_dir()), cfg, rig, image_hw, "rendering the rig:",
                          renderer)
    # the generator's name when the layout was fixed: it is part of the capture's bytes
    return {"generator": "handflow.data.render_rig", "version": SYNTH_VERSION, "seed": seed,
            "frames": frames, "cameras": len(cameras), "splits": {"test": writer.finish()}}
