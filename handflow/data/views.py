"""A view: every frame (or the given frames) of one camera of one sequence, read and stacked into one batch.

The unit the ranking engine scores and training preloads: the samples of
:meth:`handflow.data.interhand.InterHandDataset.sample` stacked along a leading ``B`` (frames) axis.
Unreadable images are raised, or with skipping on counted, listed and left out; a view with no
readable image at all raises :class:`NoReadableImage`.
"""

from __future__ import annotations

import torch

from handflow.data.samples import load_image
from handflow.errors import HandflowError


class NoReadableImage(HandflowError):
    """Every requested image of one view is missing or unreadable (``load_view`` with skipping on)."""


def load_view(dataset, capture: int, seq: str, cam_id: str, frames: list[int] | None = None,
              skip_bad_images: bool | None = None) -> dict:
    """All (or the given) frames of one camera of one sequence of ``dataset`` as batched tensors (B leading).

    ``dataset`` an :class:`~handflow.data.interhand.InterHandDataset` (which calls this for its ``load_view``;
    what is used of it: ``frames``, ``camera``, ``index_of``, ``image_path``, ``sample``, ``skip_bad_images``,
    ``skipped``).

    Keys as :func:`handflow.data.samples.crop_sample` stacked (``B`` = frames read), plus ``frame``
    (list[int]) and ``skipped`` (list of one-line messages for unreadable images, skipped when
    ``skip_bad_images`` (default: the dataset's), else raised).
    """
    capture, seq, cam_id = int(capture), str(seq), str(cam_id)
    all_frames = dataset.frames(capture, seq)
    dataset.camera(capture, cam_id)
    if frames is None:
        frames = all_frames
    skip = dataset.skip_bad_images if skip_bad_images is None else skip_bad_images
    samples, used, skipped = [], [], []
    for fr in frames:
        i = dataset.index_of(capture, seq, cam_id, fr)
        try:
            img = load_image(dataset.image_path(i))
        except HandflowError as err:
            if not skip:
                raise
            skipped.append(str(err))
            continue
        samples.append(dataset.sample(i, img))
        used.append(fr)
    dataset.skipped.extend(skipped)
    if not samples:
        raise NoReadableImage(f"no readable image for Capture{capture}/{seq} cam{cam_id}: {skipped[0] if skipped else 'no frames'}")
    out = {k: torch.stack([s[k] for s in samples]) for k, v in samples[0].items() if isinstance(v, torch.Tensor)}
    out.update(capture=capture, seq=seq, camera=cam_id, frame=used, skipped=skipped)
    return out
