"""``viewselect report``'s content: what the ranking computed, as figures and tables for rig planners.

The content is built from a :class:`~viewselect.ranking.pipeline.RankOutcome` alone (nothing here loads a
model or data); :mod:`viewselect.outputs.render` writes it as HTML or Markdown:

* the camera dome (3D) and an azimuth/elevation map, coloured by ambiguity, dropped cameras marked;
* the cameras sorted by ambiguity (bars);
* the ranker summary (best / worst / average regret, Spearman) and a regret table per sequence;
* average and best-kept regret vs number of cameras dropped, ambiguity order vs random order;
* optionally, triangulation error vs number of cameras kept (least ambiguous, coverage, random);
* sample overlays: for the least and the most ambiguous camera of each sequence, many transparent
  skeletons of sampled poses over the crop, and the same samples from a fixed 3D viewpoint in
  world coordinates with the ground truth in black;
* the run's provenance.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path


from handflow.errors import HandflowError
from handflow.io import write_text
from viewselect.ranking.pipeline import RankOutcome, RankRequest
from viewselect.stats.ranking import RANKER_LABELS
from viewselect.records import SequenceOverlay
from viewselect.outputs.render import Figure, ReportContent, Section, Table, render_html, write_markdown_folder

FORMATS = ("html", "md")
# beside rank's tables, never inside the repository's tracked reports/
DEFAULT_OUT = {"html": Path("viewselect-results/view-report.html"), "md": Path("viewselect-results/view-report")}


@dataclass
class ReportRequest:
    rank: RankRequest = field(default_factory=RankRequest)
    out: str | None = None  # None: DEFAULT_OUT[format]
    format: str = "html"
    overlay_samples: int = 50  # poses drawn per overlay (independent of rank's --samples)
    triangulation: bool = True  # triangulation error and regret vs cameras kept (viewselect.rig.subsets)
    random_orders: int = 200  # random camera orders averaged for the "random order" regret curve

    def check(self) -> Path:
        """The output path; one-line errors for a bad format, overlay count or output."""
        if self.format not in FORMATS:
            raise HandflowError(f"unknown --format {self.format!r} (expected html or md)")
        if self.overlay_samples < 1:
            raise HandflowError(f"--overlay-samples must be at least 1, found {self.overlay_samples}")
        if self.random_orders < 1:
            raise HandflowError(f"random_orders must be at least 1, found {self.random_orders}")
        out = Path(self.out) if self.out else DEFAULT_OUT[self.format]
        if self.format == "html" and out.is_dir():
            raise HandflowError(f"--out {out} is a folder; the HTML report is one file (e.g. {out / 'report.html'})")
        return out

    def rank_request(self) -> RankRequest:
        """The ranking this report draws: rank's request plus the overlays and triangulation curve."""
        return replace(self.rank, overlay_samples=self.overlay_samples, error_vs_cameras=self.triangulation,
                       regret_orders=self.random_orders)


def write_report(outcome: RankOutcome, req: ReportRequest) -> Path:
    """Draw the figures of a finished ranking and write the report; returns the path written."""
    out = req.check()
    settings = {"format": req.format, "out": str(out), "overlay_samples": req.overlay_samples,
                "triangulation": req.triangulation, "random_orders": req.random_orders}
    content = report_content(outcome, make_figures(outcome, req), settings)
    if req.format == "html":
        write_text(out, render_html(content))
    else:
        write_markdown_folder(out, content)
    return out


# ---------------------------------------------------------------- figures


def _overlay_panels(ov: SequenceOverlay) -> list[dict]:
    """The two panels per camera that :func:`viewselect.outputs.figures.sample_overlay` draws."""
    panels = []
    for v in ov.views:
        n = len(v.samples_px)
        panels.append({"label": f"{v.role}: cam {v.camera}\nambiguity {v.ambiguity_mm:.1f} mm, "
                                f"regret {v.regret_global_mm:.1f} mm",
                       "image": v.image, "samples_px": v.samples_px, "mode_px": v.mode_px})
        panels.append({"label": f"cam {v.camera}: the same {n} samples\n(world frame, fixed view; black: truth)",
                       "samples_world": v.samples_world, "gt_world": v.gt_world, "to_camera": v.to_camera})
    return panels


def _has_triangulation(outcome: RankOutcome) -> bool:
    rows = outcome.error_vs_cameras
    return rows is not None and len(rows) > 0 and bool(rows["triangulation_error_mm"].notna().any())


def make_figures(outcome: RankOutcome, req: ReportRequest) -> dict[str, list[Figure]]:
    from handflow.keypoints import SKELETON
    from viewselect.outputs import figures as F

    res = outcome.result
    cams = res.cameras
    figs: dict[str, list[Figure]] = {
        "dome": [Figure("dome-3d", "Camera positions coloured by ambiguity (mm); red crosses: dropped cameras.",
                        F.dome_3d(cams)),
                 Figure("dome-map", "Azimuth / elevation of each camera seen from the hands, coloured by ambiguity.",
                        F.dome_map(cams))],
        "ranking": [Figure("ranking", "Cameras sorted by ambiguity (mean over the selected sequences).",
                           F.ranking_bars(cams))],
    }
    amb_curve, rnd_curve = outcome.regret_curves
    figs["curves"] = [Figure("regret-vs-dropped",
                             "Regret (Global MPJPE, mm) of the average and of the best kept camera, averaged over "
                             f"sequences, as cameras are dropped most-ambiguous first vs in random order "
                             f"(mean of {req.random_orders} orders).", F.regret_curve(amb_curve, rnd_curve))]
    if _has_triangulation(outcome):
        from viewselect.rig.comparison import DEFAULT_RANDOM as n_random

        figs["curves"].append(Figure(
            "error-vs-cameras", "Left: triangulation error of the 42 joints (DLT from the ground-truth 2D joints + "
            f"{req.rank.pixel_noise_px:g} px noise) of the kept cameras; right: their mean regret (Global MPJPE), for K "
            "cameras kept the least ambiguous, by the coverage rule, uniformly spaced in viewing direction, or at "
            f"random (mean of {n_random} draws, band: 10th–90th percentile).",
            F.error_vs_cameras(outcome.error_vs_cameras)))
    if outcome.reliability:
        n_bins = max(len(c.n_images) for c in outcome.reliability)
        figs["reliability"] = [Figure(
            "reliability", f"Images binned by HandFlowNet's predicted spread ({n_bins} groups of equal size, per "
            "alignment: the spread after the same alignment as the error) against the mode's realised MPJPE; dashed: "
            "error = spread.", F.reliability(outcome.reliability))]
    figs["overlays"] = [
        Figure(f"overlay-{i + 1:02d}", f"{title}: {req.overlay_samples} sampled poses (right hand red, left "
               "blue; white: the mode) over the crop, and the same samples in 3D with the ground truth in black.",
               F.sample_overlay(_overlay_panels(ov), SKELETON, title))
        for i, (title, ov) in enumerate((f"{ov.sequence} (frame {ov.frame})", ov) for ov in outcome.overlays)
    ]
    return figs


# ---------------------------------------------------------------- content (plain data, no markup)


def _f(x, digits: int = 1) -> str:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return "-"
    return "-" if not math.isfinite(x) else f"{x:.{digits}f}"


def _flatten(d: dict, prefix: str = "") -> list[list[str]]:
    rows = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            rows.extend(_flatten(v, key + "."))
        elif isinstance(v, (list, tuple, dict)):
            rows.append([key, json.dumps(v, default=str)])
        else:
            rows.append([key, "-" if v is None else str(v)])
    return rows


def report_content(outcome: RankOutcome, figures: dict[str, list[Figure]],
                   settings: dict | None = None) -> ReportContent:
    """The report as plain strings, numbers and PNG bytes; markup is added (and escaped) by the renderers."""
    res = outcome.result
    cams, per, summ = res.cameras, res.sequences, res.summary
    n_seq = per["sequence"].nunique()
    kept = int(cams["keep"].sum())
    prov = outcome.provenance

    overall = summ[summ["sequence"] == "overall"]
    amb_g = overall[(overall["ranker"] == "ambiguity") & (overall["alignment"] == "global")]
    headline = ""
    if len(amb_g):
        r = amb_g.iloc[0]
        headline = (f"Over {n_seq} sequences, the camera HandFlowNet finds least ambiguous has a regret of "
                    f"{_f(r['best_regret_mm'])} mm, the most ambiguous {_f(r['worst_regret_mm'])} mm, and the "
                    f"average camera {_f(r['mean_regret_mm'])} mm (Global MPJPE; Spearman "
                    f"{_f(r['spearman'], 2)}). ")
    verdict = outcome.verdict.text + " " if outcome.verdict is not None else ""
    why = f"Why: {outcome.recommendation.reason}. " if outcome.recommendation is not None else ""
    intro = (verdict + why + f"{len(cams)} cameras scored on {n_seq} sequences "
             f"({', '.join(sorted(per['sequence'].unique()))}). " + headline
             + f"Selection: {kept} kept, {len(res.drop_list)} dropped."
             + "".join(f" Note: {n}." for n in outcome.notes))

    summary = Table(
        "Ranker summary (mean over sequences)",
        ["ranker", "alignment", "regret of best-ranked view (mm)", "regret of worst-ranked view (mm)",
         "average camera (mm)", "Spearman"],
        [[RANKER_LABELS.get(r["ranker"], r["ranker"]), r["alignment"], _f(r["best_regret_mm"]),
          _f(r["worst_regret_mm"]), _f(r["mean_regret_mm"]), _f(r["spearman"], 2)] for _, r in overall.iterrows()],
        note="Regret = a view's MPJPE minus the best camera's in the same sequence. Random: expected values.")
    seq_rows = []
    amb_seq = summ[(summ["ranker"] == "ambiguity") & (summ["alignment"] == "global") & (summ["sequence"] != "overall")]
    amb_seq = amb_seq.set_index("sequence")
    for seq, grp in per.groupby("sequence", sort=True):
        g = grp.sort_values(["ambiguity_mm", "camera"], kind="stable")
        best, worst = g.iloc[0], g.iloc[-1]
        oracle = grp.sort_values(["mpjpe_global_mm", "camera"], kind="stable").iloc[0]
        sp = amb_seq.loc[seq, "spearman"] if seq in amb_seq.index else math.nan
        seq_rows.append([seq, str(len(grp)), str(best["camera"]), _f(best["regret_global_mm"]), str(worst["camera"]),
                         _f(worst["regret_global_mm"]), _f(grp["regret_global_mm"].mean()), str(oracle["camera"]),
                         _f(oracle["mpjpe_global_mm"]), _f(sp, 2)])
    per_seq = Table(
        "Regret per sequence (Global MPJPE)",
        ["sequence", "cameras", "least ambiguous camera", "its regret (mm)", "most ambiguous camera",
         "its regret (mm)", "average regret (mm)", "best camera (oracle)", "its MPJPE (mm)", "Spearman"],
        seq_rows)
    boot = outcome.bootstrap
    level = f"{boot.level:.0%}" if boot is not None else ""

    def ci(r, stem):
        lo, hi = r.get(f"{stem}_ci_low_mm"), r.get(f"{stem}_ci_high_mm")
        return f"{_f(lo)}–{_f(hi)}" if lo is not None else "-"

    has_cons = "drop_consensus" in cams.columns
    cam_rows = [[str(i + 1), str(r["camera"]), _f(r.get("azimuth_deg")), _f(r.get("elevation_deg")),
                 _f(r["ambiguity_mm"]), ci(r, "ambiguity"), _f(r["mpjpe_global_mm"]), _f(r["regret_global_mm"]),
                 ci(r, "regret_global"), _f(r["visible_fraction"], 2), "keep" if r["keep"] else "drop"]
                + ([f"{r['drop_consensus']:.0%}"] if has_cons else [])
                for i, (_, r) in enumerate(cams.reset_index(drop=True).iterrows())]
    cam_table = Table("All cameras in ranking order",
                      ["rank", "camera", "azimuth (deg)", "elevation (deg)", "ambiguity (mm)",
                       f"ambiguity {level} interval (mm)", "MPJPE Global (mm)", "regret (mm)",
                       f"regret {level} interval (mm)", "visible fraction", "selection"]
                      + (["drop consensus"] if has_cons else []), cam_rows,
                      note=(f"Intervals: {level} bootstrap percentile intervals over sequences, frames and pose "
                            f"samples ({boot.n_resamples} resamples, seed {boot.seed}). Drop consensus: share of "
                            f"resamples in which the camera is among the {len(res.drop_list)} most ambiguous."
                            if boot is not None else ""))

    sections = [
        Section("Camera dome", "Each dot is a camera, coloured by its ambiguity (mean per-joint spread of the "
                "3D hands HandFlowNet reconstructs from slightly re-framed crops of each image, each hand at its "
                "wrist, mm). Red crosses mark the cameras the selection drops.", figures.get("dome", [])),
        Section("Ranking", "", figures.get("ranking", [])),
        Section("Regret", "Does the ambiguity order find the good views? Compare with the simple rankers.",
                tables=[summary, per_seq]),
        Section("Dropping cameras", "", figures.get("curves", [])),
    ]
    if _has_triangulation(outcome):
        curves = outcome.error_vs_cameras
        wide = {st: g.set_index("n_cameras") for st, g in curves.groupby("strategy")}
        rows = []
        for k in sorted(curves["n_cameras"].unique()):
            row = [str(int(k))]
            for stem, d in (("triangulation_error", 2), ("mean_regret", 1)):
                for st in ("ambiguity", "coverage", "uniform", "random"):
                    r = wide[st].loc[k]
                    cell = _f(r[f"{stem}_mm"], d)
                    if st == "random" and math.isfinite(float(r[f"{stem}_low_mm"])):
                        cell += f" ({_f(r[f'{stem}_low_mm'], d)}–{_f(r[f'{stem}_high_mm'], d)})"
                    row.append(cell)
            rows.append(row)
        sections[-1].tables.append(Table(
            "Error against the number of cameras kept",
            ["cameras kept", "triangulation (mm): least ambiguous", "coverage", "uniform", "random (10–90 %)",
             "mean regret (mm): least ambiguous", "coverage", "uniform", "random (10–90 %)"], rows,
            note="Same table: error_vs_cameras.csv beside rank's tables (viewselect rank --error-vs-cameras)."))
    if outcome.reliability:
        rel_rows = [[c.alignment, _f(c.spread_mm[0]), _f(c.error_mm[0]), _f(c.spread_mm[-1]), _f(c.error_mm[-1]),
                     _f(c.spearman, 2), _f(c.split_half, 2), str(sum(c.n_images))]
                    for c in outcome.reliability if c.n_images]
        sections.append(Section(
            "How far to trust the ambiguity",
            "A spread worth ranking by rises with the error: the bins climb along the dashed line. Flat bins mean "
            "the spread does not tell the worse images apart on this capture; bins above the line mean the model "
            "is over-confident. (For errors drawn from the predicted distribution the mean error lies between "
            "about 0.8 and 1.0 times the spread.)", figures.get("reliability", []),
            tables=[Table("Reliability per alignment",
                          ["alignment", "narrowest bin: spread (mm)", "its error (mm)", "widest bin: spread (mm)",
                           "its error (mm)", "image Spearman", "split-half ρ of camera error", "images"], rel_rows,
                          note="Split-half ρ: each sequence's frames split alternately in two, the cameras' mean "
                               "MPJPE on one half ranked against the other (Spearman, mean over sequences): how "
                               "much of a camera's error belongs to the camera, the ceiling for any ranker. Same "
                               "values: summary.json, reliability.curves.")]))
    sections.append(Section(
        "Sample overlays", "For the least and the most ambiguous camera of each sequence: sampled poses over "
        "the network's input crop, and the same samples in world coordinates from a fixed viewpoint. A "
        "confident view keeps the samples together; an ambiguous one spreads them, mostly in depth. (The samples "
        "are the flow's; the two cameras are chosen by the ambiguity, the spread over re-framed crops.)",
        figures.get("overlays", [])))
    if res.drop_list and has_cons:
        cons = cams.set_index("camera")["drop_consensus"]
        drop = ", ".join(f"{c} ({cons[c]:.0%})" for c in res.drop_list)
    else:
        drop = ", ".join(map(str, res.drop_list)) if res.drop_list else "none"
    rule = (f" Rule: {outcome.recommendation.reason}." if outcome.recommendation is not None else "")
    sections.append(Section("Cameras", f"Drop list ({len(res.drop_list)}; in brackets the drop consensus): {drop}."
                            + rule, tables=[cam_table]))
    sections.append(Section("Provenance", "", tables=[Table("Run", ["key", "value"],
                                                            _flatten({**prov, "report": settings or {}}))]))
    return ReportContent("Camera view selection report", intro, sections)
