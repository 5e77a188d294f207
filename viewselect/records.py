"""Typed records that cross module boundaries: what the engine computed, per view and per sequence.

The engine produces them, the ranking, tables and report consume them; nothing downstream reloads
the model or the data to recompute what a record already holds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

import numpy as np

# The alignment whose spread ranks the cameras (``ambiguity_mm``): each hand moved to its own wrist. Over
# the test-time crops it tracks both the RR and the Global error of a camera at least as well as the
# unaligned spread does (reports/ambiguity.md); the other alignments' spreads are kept beside it.
RANKED_ALIGNMENT = "rr"


def ambiguity_field(alignment: str, frame: bool = False) -> str:
    """The :class:`ViewRecord` field (and table column) holding the spread after ``alignment``:
    ``ambiguity_mm`` for :data:`RANKED_ALIGNMENT`, ``ambiguity_<a>_mm`` for the others;
    ``frame=True``: the per-frame list ``frame_ambiguity...``."""
    name = "ambiguity_mm" if alignment == RANKED_ALIGNMENT else f"ambiguity_{alignment}_mm"
    return f"frame_{name}" if frame else name


@dataclass(frozen=True)
class ViewRecord:
    """The model's result on one (capture, sequence, camera), over the view's frames.

    ``visible`` is ``(F, 42)`` 0/1, joint seen by this camera in frame ``frames[f]`` (and annotated);
    ``hands_center_mm`` the mean valid ground-truth joint in world coordinates ``(3,)`` mm.
    """

    capture: int
    seq: str
    camera: str
    frames: list[int]
    # mean over frames and joints of the modes' spread sqrt(trace(cov)) over the test-time crops, after
    # moving each hand to its wrist (RANKED_ALIGNMENT): what ranks the cameras
    ambiguity_mm: float
    ambiguity_global_mm: float  # the same without alignment (as Global MPJPE)
    ambiguity_rrr_mm: float  # the same after moving both hands by the right wrist (as RRR MPJPE)
    flow_spread_mm: float  # the same spread over poses sampled from the flow (the paper's ambiguity)
    mpjpe_global_mm: float  # the mode's error against the ground truth, mean over frames
    mpjpe_rrr_mm: float
    mpjpe_rr_mm: float
    visible_fraction: float  # visible valid joints / valid joints
    hands_center_mm: list[float]
    visible: list[list[int]]
    # per frame (aligned with `frames`; None where not finite), what the bootstrap resamples
    # (viewselect.stats.bootstrap) and the reliability figure bins (viewselect.stats.calibration): the frame's
    # ambiguity (also after each alignment), the same on each of G disjoint pose-sample groups
    # (G, streaming.group_bounds, over the test-time crops), and the mode's MPJPE per alignment, all mm
    frame_ambiguity_mm: list[float | None]
    frame_ambiguity_global_mm: list[float | None]
    frame_ambiguity_rrr_mm: list[float | None]
    frame_flow_spread_mm: list[float | None]
    frame_group_ambiguity_mm: list[list[float | None]]
    frame_mpjpe_global_mm: list[float | None]
    frame_mpjpe_rrr_mm: list[float | None]
    frame_mpjpe_rr_mm: list[float | None]
    skipped_images: list[str] = field(default_factory=list)  # unreadable images left out of `frames`

    @property
    def key(self) -> tuple[int, str, str]:
        return (self.capture, self.seq, self.camera)

    @property
    def sequence(self) -> str:
        return f"Capture{self.capture}/{self.seq}"

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "ViewRecord":
        """From :meth:`to_json`'s dict (extra keys ignored); ``KeyError``/``TypeError`` when fields are missing."""
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})


def hands_center(records: list[ViewRecord]) -> np.ndarray:
    """``(3,)`` mm: where the rig looks, the mean of the views' hand centres."""
    return np.mean([r.hands_center_mm for r in records], axis=0)


@dataclass(frozen=True)
class SkippedView:
    """A view that could not be scored (no readable image, or no annotated joint inside its images in any
    frame): left out of the ranking, listed in the outputs with ``reason``."""

    capture: int
    seq: str
    camera: str
    reason: str

    def __str__(self) -> str:
        return f"Capture{self.capture}/{self.seq} cam{self.camera}"


@dataclass(frozen=True)
class OverlayView:
    """Pose samples of one camera's middle frame, for the report's sample overlays.

    ``image (H, W, 3)`` the network's input crop in [0, 1]; ``samples_px (N, 42, 2)`` and
    ``mode_px (42, 2)`` projected into the crop; ``samples_world (N, 42, 3)`` mm and ``gt_world
    (42, 3)`` mm (NaN where not annotated) in world coordinates; ``to_camera (3,)`` mm, from the
    hands to the camera.
    """

    role: str  # "least ambiguous" / "most ambiguous"
    camera: str
    frame: int
    ambiguity_mm: float
    regret_global_mm: float
    image: np.ndarray
    samples_px: np.ndarray
    mode_px: np.ndarray
    samples_world: np.ndarray
    gt_world: np.ndarray
    to_camera: np.ndarray


@dataclass(frozen=True)
class SequenceOverlay:
    sequence: str  # Capture<N>/<name>
    views: list[OverlayView]

    @property
    def frame(self) -> int:
        return self.views[-1].frame

