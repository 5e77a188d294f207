"""``viewselect plan --rig FILE [--compare FILE2]``: evaluate a proposed rig before it is built.

For each rig file (:mod:`viewselect.plan.rigfile`): render the default test motions as that rig sees
them (:mod:`handflow.synth.render_rig`), score every camera with ``rank``'s engine and model
(:func:`viewselect.ranking.pipeline.run_rank` on the rendered capture), and add

* **joint coverage** — for every joint of every frame, how many cameras see it (the renderer's
  depth-buffer visibility, inside the image); per joint the mean count and the share of frames seen
  by ≥ 2 and ≥ 3 cameras; over all joint-frames the share seen by ≥ 2 (triangulable) and ≥ 3;
* **triangulation error of the rig** — all cameras, DLT from the ground-truth 2D joints + pixel
  noise (:mod:`viewselect.rig.triangulation`), mean over sequences.

Output folder (default ``viewselect-results/plan/``): ``rig/`` (and ``compare/``) with ``rank``'s
tables (``ranking.csv`` / ``.parquet`` / ``.xlsx``, ``summary.json`` with coverage and
triangulation) plus ``coverage.csv``; ``plan.csv`` (one row per rig, side by side) and ``plan.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from handflow.keypoints import JOINT_NAMES, N_JOINTS
from handflow.errors import HandflowError
from handflow.io import write_text
from viewselect.stats.bootstrap import stats_from_records
from viewselect.ranking.pipeline import RankOutcome, RankRequest, run_rank
from viewselect.stats.recommend import coverage_matrix
from viewselect.records import ViewRecord
from viewselect.plan.rigfile import PlannedRig, read_rig

DEFAULT_OUT = Path("viewselect-results/plan")
LABELS = ("rig", "compare")


@dataclass
class PlanRequest:
    rig: str
    compare: str | None = None
    model: str | None = None
    frames: int = 6  # rendered frames per test sequence (6: as the embedded capture)
    samples: int = 50  # as viewselect.engine.scoring.RankConfig
    seed: int = 0
    device: str | None = None
    image_hw: tuple[int, int] | None = None  # overrides every camera's image size (H, W) px
    pixel_noise_px: float = 1.0


@dataclass
class Coverage:
    """``per_joint``: joint, mean_cameras, seen_by_2_share, seen_by_3_share (0–1) per joint;
    ``counts (P, 42)`` cameras seeing each joint of each frame; shares over all joint-frames."""

    per_joint: pd.DataFrame
    counts: np.ndarray
    seen_by_2_share: float
    seen_by_3_share: float
    min_cameras: int


@dataclass
class RigPlan:
    label: str
    rig: PlannedRig
    outcome: RankOutcome
    coverage: Coverage
    triangulation_error_mm: float
    triangulation_failed_fraction: float
    data_root: str
    extra: dict = field(default_factory=dict)


def joint_coverage(records: list[ViewRecord]) -> Coverage:
    """Cameras seeing each joint of each (sequence, frame): the default rule's
    :func:`viewselect.stats.recommend.coverage_matrix` of the engine's per-view ``visible``, counted."""
    if not records:
        raise HandflowError("coverage: no views")
    c = coverage_matrix(stats_from_records(records)).sum(0).astype(np.int64).reshape(-1, N_JOINTS)  # (P, 42)
    per_joint = pd.DataFrame({"joint": JOINT_NAMES, "mean_cameras": c.mean(0), "seen_by_2_share": (c >= 2).mean(0),
                              "seen_by_3_share": (c >= 3).mean(0), "min_cameras": c.min(0)})
    return Coverage(per_joint, c, float((c >= 2).mean()), float((c >= 3).mean()), int(c.min()))


def plan_rig(label: str, rig: PlannedRig, req: PlanRequest) -> RigPlan:
    from handflow.synth.render_rig import render_rig_capture
    from viewselect.engine.scoring import RankConfig

    hw = {c: tuple(req.image_hw) for c in rig.cameras} if req.image_hw else rig.image_hw
    root = render_rig_capture(rig.cameras, hw, frames=req.frames, seed=req.seed)
    outcome = run_rank(RankRequest(sequence="Capture0-1", data_root=str(root), model=req.model,
                                   engine=RankConfig(samples=req.samples, seed=req.seed), device=req.device,
                                   pixel_noise_px=req.pixel_noise_px))
    cov = joint_coverage(outcome.records)
    tri = outcome.triangulation  # the rank pipeline's full rig: every camera of the planned rig
    return RigPlan(label, rig, outcome, cov, tri.get("full_error_mm", math.nan),
                   tri.get("full_failed_fraction", math.nan), str(root),
                   extra={"pixel_noise_px": req.pixel_noise_px})


def _check(req: PlanRequest) -> None:
    if isinstance(req.frames, bool) or not isinstance(req.frames, int) or req.frames < 1:
        raise HandflowError(f"--frames must be at least 1, found {req.frames!r}")
    if req.samples < 2:
        raise HandflowError(f"--samples must be at least 2 (a spread needs two samples), found {req.samples}")
    if req.image_hw is not None and (len(req.image_hw) != 2 or min(req.image_hw) < 2):
        raise HandflowError(f"--image-size must be HxW with both at least 2 px, found {req.image_hw}")


def run_plan(req: PlanRequest) -> list[RigPlan]:
    """Every rig of the request, rendered, scored and summarised (``rig`` first, then ``compare``)."""
    _check(req)
    files = [req.rig] + ([req.compare] if req.compare else [])
    rigs = [read_rig(f) for f in files]  # every file read (and checked) once, before any rendering
    return [plan_rig(label, rig, req) for label, rig in zip(LABELS, rigs)]


def rig_row(p: RigPlan) -> dict:
    """The side-by-side figures of one rig (``plan.csv``)."""
    cams = p.outcome.result.cameras
    summ = p.outcome.result.summary
    amb = summ[(summ["sequence"] == "overall") & (summ["ranker"] == "ambiguity") & (summ["alignment"] == "global")]
    r = amb.iloc[0] if len(amb) else {}
    return {
        "rig": p.label, "file": p.rig.source, "n_cameras": len(p.rig.cameras),
        "mean_ambiguity_mm": float(cams["ambiguity_mm"].mean()), "median_ambiguity_mm": float(cams["ambiguity_mm"].median()),
        "min_ambiguity_mm": float(cams["ambiguity_mm"].min()), "max_ambiguity_mm": float(cams["ambiguity_mm"].max()),
        "mean_mpjpe_global_mm": float(cams["mpjpe_global_mm"].mean()),
        "best_view_regret_mm": float(r.get("best_regret_mm", math.nan)),
        "mean_regret_mm": float(r.get("mean_regret_mm", math.nan)),
        "spearman": float(r.get("spearman", math.nan)),
        "seen_by_2_share": p.coverage.seen_by_2_share, "seen_by_3_share": p.coverage.seen_by_3_share,
        "min_cameras_per_joint": p.coverage.min_cameras,
        "triangulation_error_mm": p.triangulation_error_mm,
        "triangulation_failed_fraction": p.triangulation_failed_fraction,
        "n_dropped": len(p.outcome.result.drop_list),
    }


def write_plan(out: str | Path, plans: list[RigPlan]) -> list[Path]:
    """Each rig's tables in ``out/<label>/``, then ``plan.csv`` and ``plan.md``; returns the paths."""
    from viewselect.outputs.tables import write_rank_result

    out = Path(out)
    written = []
    for p in plans:
        extra = {"rig_file": p.rig.source, "rendered_capture": p.data_root,
                 "coverage": {"seen_by_2_share": p.coverage.seen_by_2_share,
                              "seen_by_3_share": p.coverage.seen_by_3_share,
                              "min_cameras_per_joint": p.coverage.min_cameras,
                              "per_joint": p.coverage.per_joint.to_dict(orient="records")},
                 **p.outcome.summary_extra(),
                 "rig_triangulation": {"full_error_mm": p.triangulation_error_mm,
                                       "failed_fraction": p.triangulation_failed_fraction}}
        paths = write_rank_result(out / p.label, p.outcome.result, p.outcome.provenance, extra=extra)
        written += list(paths.values())
        written.append(write_text(out / p.label / "coverage.csv", p.coverage.per_joint.to_csv(index=False)))
    table = pd.DataFrame([rig_row(p) for p in plans])
    written.append(write_text(out / "plan.csv", table.to_csv(index=False)))
    noise = plans[0].extra.get("pixel_noise_px", 1.0)
    written.append(write_text(out / "plan.md", plan_markdown(plans, table, noise)))
    return written


def _f(x, d: int = 1) -> str:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return str(x)
    return "-" if not math.isfinite(x) else f"{x:.{d}f}"


def plan_markdown(plans: list[RigPlan], table: pd.DataFrame, pixel_noise_px: float = 1.0) -> str:
    """The plan as Markdown: rigs side by side, then each rig's drop list and weakest joints."""
    rows = [("cameras", "n_cameras", 0), ("mean ambiguity (mm)", "mean_ambiguity_mm", 1),
            ("median ambiguity (mm)", "median_ambiguity_mm", 1), ("mean mode MPJPE, Global (mm)", "mean_mpjpe_global_mm", 1),
            ("regret of the least ambiguous camera (mm)", "best_view_regret_mm", 1),
            ("average camera's regret (mm)", "mean_regret_mm", 1), ("Spearman (ambiguity vs MPJPE)", "spearman", 2),
            ("joint-frames seen by ≥ 2 cameras", "seen_by_2_share", 3),
            ("joint-frames seen by ≥ 3 cameras", "seen_by_3_share", 3),
            ("fewest cameras seeing a joint-frame", "min_cameras_per_joint", 0),
            ("triangulation error, all cameras (mm)", "triangulation_error_mm", 2),
            ("joint-frames not triangulable", "triangulation_failed_fraction", 3),
            ("cameras the default rule drops", "n_dropped", 0)]
    head = "| | " + " | ".join(f"{p.label}: `{Path(p.rig.source.split(' capture ')[0]).name}`" for p in plans) + " |"
    lines = ["# Rig plan", "", "The default test motions (7 sequences, two subjects) rendered through each rig and "
             "scored by the shipped HandFlowNet; triangulation from the ground-truth 2D joints + "
             f"{pixel_noise_px:g} px noise.", "",
             head, "|---" * (len(plans) + 1) + "|"]
    for title, col, d in rows:
        lines.append(f"| {title} | " + " | ".join(_f(v, d) for v in table[col]) + " |")
    for p in plans:
        pj = p.coverage.per_joint.sort_values(["seen_by_3_share", "joint"]).head(5)
        drop = ", ".join(map(str, p.outcome.result.drop_list)) or "none"
        lines += ["", f"## {p.label}: {p.rig.source}", "", f"Drop list: {drop}.", "",
                  "Least covered joints: " + "; ".join(f"{r.joint} (mean {r.mean_cameras:.1f} cameras, "
                                                       f"≥ 3 in {r.seen_by_3_share:.0%} of frames)"
                                                       for r in pj.itertuples()) + "."]
    return "\n".join(lines) + "\n"
