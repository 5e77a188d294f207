"""Rich tables for the terminal: the summary a rig planner reads first."""

from __future__ import annotations

import math

from rich.console import Console
from rich.table import Table

from viewselect.stats.ranking import RANKER_LABELS


def _f(x, digits: int = 1) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def print_rank(console: Console, outcome, alignment: str = "global", top: int = 5) -> None:
    res = outcome.result
    s = res.summary
    overall = s[(s["sequence"] == "overall") & (s["alignment"] == alignment)]
    n_seq = s.loc[s["sequence"] != "overall", "sequence"].nunique()
    t = Table(title=f"Regret ({alignment} MPJPE, mm) over {n_seq} sequences: view ranked best / worst / average camera")
    for col in ("ranker", "best-ranked view", "worst-ranked view", "average camera", "Spearman"):
        t.add_column(col, justify="left" if col == "ranker" else "right")
    for _, r in overall.iterrows():
        t.add_row(RANKER_LABELS.get(r["ranker"], r["ranker"]), _f(r["best_regret_mm"]), _f(r["worst_regret_mm"]),
                  _f(r["mean_regret_mm"]), _f(r["spearman"], 2))
    console.print(t)

    cams = res.cameras.reset_index(drop=True)
    mp = f"mpjpe_{alignment}_mm"
    rg = f"regret_{alignment}_mm"
    ct = Table(title=f"Cameras: {top} least and {top} most ambiguous of {len(cams)}")
    for col in ("rank", "camera", "azimuth (deg)", "elevation (deg)", "ambiguity (mm)", f"MPJPE {alignment} (mm)",
                "regret (mm)", "keep"):
        ct.add_column(col, justify="right")
    rows = list(range(min(top, len(cams)))) + list(range(max(top, len(cams) - top), len(cams)))
    for i in rows:
        r = cams.iloc[i]
        ct.add_row(str(i + 1), str(r["camera"]), _f(r.get("azimuth_deg")), _f(r.get("elevation_deg")),
                   _f(r["ambiguity_mm"]), _f(r[mp]), _f(r[rg]), "keep" if r["keep"] else "drop")
    console.print(ct)
    if res.drop_list:
        if "drop_consensus" in cams.columns:
            cons = cams.set_index("camera")["drop_consensus"]
            listed = ", ".join(f"{c} ({cons[c]:.0%})" for c in res.drop_list)
            console.print(f"drop ({len(res.drop_list)}; share of bootstrap resamples dropping each): {listed}",
                          markup=False, highlight=False, soft_wrap=True)
        else:
            console.print(f"drop ({len(res.drop_list)}): {', '.join(map(str, res.drop_list))}", markup=False)
    if outcome.recommendation is not None:  # the default rule chose the list: say why, in one line
        console.print(f"why: {outcome.recommendation.reason}", markup=False, highlight=False, soft_wrap=True)
    if outcome.verdict is not None:
        console.print(outcome.verdict.text, markup=False, highlight=False, soft_wrap=True)
    if outcome.reliability:
        rel = {c.alignment: c for c in outcome.reliability}
        console.print("reliability (per image, spread vs error after the same alignment): ρ " + ", ".join(
            f"{a} {_f(c.spearman, 2)}" for a, c in rel.items()) + "; a camera's error repeats between halves of the "
            "frames with split-half ρ " + ", ".join(f"{a} {_f(c.split_half, 2)}" for a, c in rel.items()),
            markup=False, highlight=False, soft_wrap=True)
    tri = outcome.triangulation
    if tri:
        console.print(
            f"triangulation error, {tri['n_kept']} kept cameras: {_f(tri['kept_error_mm'], 2)} mm; full rig "
            f"{_f(tri['full_error_mm'], 2)} mm; random subsets of the same size {_f(tri['random_error_mm'], 2)} mm "
            f"(GT 2D + {tri['pixel_noise_px']:g} px noise)", markup=False)


def print_annotate_summary(console: Console, s: dict) -> None:
    t = Table(title=f"MultiHands, split {s['split']}: {s['sequences']} sequences ({s['sequences_cached']} up to date)")
    t.add_column("figure")
    t.add_column("value", justify="right")
    rows = [
        ("images annotated", f"{s['annotated']} of {s['images']}"),
        ("skipped (no MANO for a hand)", str(s["skipped_no_mano"])),
        ("annotations per image (GT included)", _f(s["annotations_per_image"])),
        ("proposals checked", str(s["proposals"])),
        ("acceptance rate", _f(100 * s["acceptance_rate"]) + " %"),
        *[(f"rejected by {k}", str(v)) for k, v in s["rejected_by"].items()],
        ("seconds per image (this run)", _f(s["seconds_per_image"], 3)),
    ]
    for r in rows:
        t.add_row(*r)
    console.print(t)
    for f in s["files"][:3]:
        console.print(f"wrote {f}", markup=False, highlight=False)
    if len(s["files"]) > 3:
        console.print(f"... and {len(s['files']) - 3} more under the same folder", markup=False, highlight=False)
