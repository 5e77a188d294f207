"""``viewselect report``: one self-contained HTML file (or Markdown + PNG folder) for rig planners (DESIGN §8).

The report reads rank's results through :func:`viewselect.rank.run_rank` (served from the per-view
cache when the sampling settings match an earlier ``rank``), then draws:

* the camera dome (3D) and an azimuth/elevation map, coloured by ambiguity, dropped cameras marked;
* the cameras sorted by ambiguity (bars);
* the ranker summary (best / worst / average regret, Spearman) and a regret table per sequence;
* average and best-kept regret vs number of cameras dropped, ambiguity order vs random order;
* optionally, triangulation error vs number of cameras kept (least ambiguous, coverage, random);
* sample overlays (paper Fig. 5): for the least and the most ambiguous camera of each sequence,
  many transparent skeletons of sampled poses over the crop, and the same samples from a fixed
  3D viewpoint in world coordinates with the ground truth in black;
* the run's provenance.

HTML: every figure is a base64 PNG data URI, the style sheet is inline, there are no scripts, fonts
or links, and every interpolated value goes through :func:`html.escape`. The file is written
atomically. ``format="md"`` writes a folder (``report.md`` + ``figures/*.png``) into a temporary
folder beside the target and renames it into place.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from handflow.errors import HandflowError
from handflow.io import write_text
from viewselect.ranking import RANKER_LABELS
from viewselect.rank import RankOutcome, RankRequest, resolve_model_path, run_rank

FORMATS = ("html", "md")
# beside rank's tables, never inside the repository's tracked reports/
DEFAULT_OUT = {"html": Path("viewselect-results/view-report.html"), "md": Path("viewselect-results/view-report")}


@dataclass
class ReportRequest:
    rank: RankRequest = field(default_factory=RankRequest)
    out: str | None = None  # None: DEFAULT_OUT[format]
    format: str = "html"
    overlay_samples: int = 50  # poses drawn per overlay (independent of rank's --samples)
    triangulation: bool = True  # triangulation error vs cameras kept (a few K values)
    random_orders: int = 200  # random camera orders averaged for the "random order" regret curve


@dataclass
class Figure:
    key: str  # file stem in the Markdown folder: [a-z0-9-]
    caption: str
    png: bytes


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list]
    note: str = ""


@dataclass
class Section:
    title: str
    text: str = ""
    figures: list[Figure] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)


@dataclass
class ReportContent:
    title: str
    intro: str
    sections: list[Section]


# ---------------------------------------------------------------- the one call


def build_report(req: ReportRequest) -> Path:
    """Run (or read) the ranking, draw the figures, write the report; returns the path written."""
    if req.format not in FORMATS:
        raise HandflowError(f"unknown --format {req.format!r} (expected html or md)")
    if req.overlay_samples < 1:
        raise HandflowError(f"--overlay-samples must be at least 1, found {req.overlay_samples}")
    out = Path(req.out) if req.out else DEFAULT_OUT[req.format]
    if req.format == "html" and out.is_dir():
        raise HandflowError(f"--out {out} is a folder; the HTML report is one file (e.g. {out / 'report.html'})")
    outcome = run_rank(req.rank)
    ds, model = _load(req.rank, outcome)
    settings = {"format": req.format, "out": str(out), "overlay_samples": req.overlay_samples,
                "triangulation": req.triangulation, "random_orders": req.random_orders}
    content = report_content(outcome, make_figures(outcome, ds, model, req), settings)
    if req.format == "html":
        write_text(out, render_html(content))
    else:
        write_markdown_folder(out, content)
    return out


def _load(rreq: RankRequest, outcome: RankOutcome):
    import torch

    from handflow.data.interhand import InterHandDataset
    from handflow.hand.model import HandModel
    from handflow.model.registry import load_model

    device = torch.device(rreq.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model, _ = load_model(resolve_model_path(rreq.model), HandModel.from_dir(rreq.mano_dir), device)
    ds = InterHandDataset(outcome.provenance["data_root"], rreq.split, crop_px=model.cfg.crop_px,
                          mano_dir=rreq.mano_dir, skip_bad_images=True)
    return ds, model


# ---------------------------------------------------------------- figures


def random_order_curve(per: pd.DataFrame, cameras: pd.DataFrame, n_orders: int = 200, seed: int = 0) -> pd.DataFrame:
    """:func:`viewselect.ranking.regret_vs_dropped` averaged over random camera orders (expected values)."""
    from viewselect.ranking import regret_vs_dropped

    rng = np.random.default_rng(seed)
    ids = cameras["camera"].to_numpy()
    curves = [regret_vs_dropped(per, pd.DataFrame({"camera": ids[rng.permutation(len(ids))]}))
              for _ in range(max(1, n_orders))]
    out = curves[0].copy()
    for col in ("mean_regret_mm", "best_regret_mm"):
        out[col] = np.mean([c[col].to_numpy() for c in curves], axis=0)
    return out


def triangulation_rows(outcome: RankOutcome, ds, seed: int = 0, pixel_noise_px: float = 1.0,
                       n_random: int = 10, ks=(2, 4, 8, 16, 32, 64)) -> pd.DataFrame:
    """Triangulation error (mean over sequences) for K kept cameras: the K least ambiguous, the
    coverage rule's K, ``n_random`` random K-subsets (mean), and the full rig — the computation of
    :func:`viewselect.engine.triangulation_summary`, with the full rig triangulated once per sequence."""
    from viewselect.coverage import keep_cameras, viewing_directions
    from viewselect.triangulation import triangulation_error

    cams = outcome.result.cameras
    n = len(cams)
    ks = [k for k in ks if 2 <= k < n] or ([n] if n >= 2 else [])
    geo = {}
    for c in sorted({r["capture"] for r in outcome.records}):
        geo.update(ds.cameras(c))
    dirs = viewing_directions({c: geo[c] for c in cams["camera"]})
    chosen = {k: (keep_cameras(cams, k, "ambiguity"), keep_cameras(cams, k, "coverage", directions=dirs))
              for k in ks}
    by_seq: dict[tuple, list[dict]] = {}
    for r in outcome.records:
        by_seq.setdefault((r["capture"], r["seq"]), []).append(r)
    acc = {k: {"ambiguity_mm": [], "coverage_mm": [], "random_mm": [], "full_mm": []} for k in ks}
    for (capture, seq), recs in by_seq.items():
        recs = sorted(recs, key=lambda r: r["camera"])
        ids = [r["camera"] for r in recs]
        view = ds.load_view(capture, seq, ids[0], recs[0]["frames"])
        joints = view["joints_world_mm"].numpy()
        visible = np.stack([np.asarray(r["visible"], bool) for r in recs]) & (view["joint_valid"].numpy() > 0)[None]
        geom = [ds.camera(capture, c) for c in ids]

        def err(subset):
            return triangulation_error(geom, joints, visible, subset, pixel_noise_px, seed).mean_error_mm

        full = err(None)
        for k in ks:
            rng = np.random.default_rng([seed, 1])  # the draws of compare_subsets, so rank's numbers match
            for col, kept in zip(("ambiguity_mm", "coverage_mm"), chosen[k]):
                sub = [i for i, c in enumerate(ids) if c in set(kept)]
                if len(sub) >= 2:
                    acc[k][col].append(err(sub))
            if len(ids) >= k:
                acc[k]["random_mm"].append(np.nanmean([err(rng.choice(len(ids), size=k, replace=False))
                                                       for _ in range(n_random)]))
            acc[k]["full_mm"].append(full)

    def mean(vals):
        vals = [v for v in vals if v is not None and math.isfinite(v)]
        return float(np.mean(vals)) if vals else math.nan

    return pd.DataFrame([{"n_kept": k, **{col: mean(v) for col, v in acc[k].items()}} for k in ks])


def overlay_panels(outcome: RankOutcome, ds, model, n_samples: int, seed: int = 0) -> list[tuple[str, list[dict]]]:
    """Per sequence: panels for the least and the most ambiguous camera (crop overlay + novel 3D view)."""
    import torch

    from handflow.model.pose_params import Y_DIM, joints_to_world, project_crop

    recs = {(f"Capture{r['capture']}/{r['seq']}", r["camera"]): r for r in outcome.records}
    per = outcome.result.sequences
    device = next(model.parameters()).device
    out = []
    for i, (seq_name, grp) in enumerate(per.groupby("sequence", sort=True)):
        grp = grp.sort_values(["ambiguity_mm", "camera"], kind="stable")
        picks = [("least ambiguous", grp.iloc[0]), ("most ambiguous", grp.iloc[-1])]
        panels = []
        for label, row in picks:
            rec = recs[(seq_name, row["camera"])]
            frame = rec["frames"][len(rec["frames"]) // 2]
            view = ds.load_view(rec["capture"], rec["seq"], rec["camera"], [frame])
            gen = torch.Generator().manual_seed(seed * 1_000_003 + i)
            z = torch.randn(1, n_samples, Y_DIM, generator=gen)
            with torch.no_grad():
                pred = model.predict(view["image"].to(device), view["K_crop"].to(device), n_samples=n_samples,
                                     z=z.to(device))
            K = view["K_crop"].to(device)
            s_px = project_crop(pred["samples_joints"], K)[0].cpu().numpy()
            m_px = project_crop(pred["mode_joints"], K)[0].cpu().numpy()
            R, campos = view["R"].to(device), view["campos_mm"].to(device)
            s_w = joints_to_world(pred["samples_joints"], R, campos)[0].cpu().numpy()
            gt = view["joints_world_mm"][0].numpy().copy()
            gt[view["joint_valid"][0].numpy() <= 0] = np.nan
            head = (f"{label}: cam {row['camera']}\nambiguity {row['ambiguity_mm']:.1f} mm, "
                    f"regret {row['regret_global_mm']:.1f} mm")
            panels.append({"label": head, "image": view["image"][0].permute(1, 2, 0).numpy(),
                           "samples_px": s_px, "mode_px": m_px})
            novel = f"cam {row['camera']}: the same {n_samples} samples\n(world frame, fixed view; black: truth)"
            panels.append({"label": novel,
                           "samples_world": s_w, "gt_world": gt,
                           "to_camera": view["campos_mm"][0].numpy() - np.nanmean(gt, axis=0)})
        out.append((f"{seq_name} (frame {frame})", panels))
    return out


def make_figures(outcome: RankOutcome, ds, model, req: ReportRequest) -> dict[str, list[Figure]]:
    from handflow.data.interhand import SKELETON
    from viewselect import figures as F
    from viewselect.ranking import regret_vs_dropped

    res = outcome.result
    cams = res.cameras
    center = np.mean([r["hands_center_mm"] for r in outcome.records], axis=0)
    figs: dict[str, list[Figure]] = {
        "dome": [Figure("dome-3d", "Camera positions coloured by ambiguity (mm); red crosses: dropped cameras.",
                        F.dome_3d(cams, center)),
                 Figure("dome-map", "Azimuth / elevation of each camera seen from the hands, coloured by ambiguity.",
                        F.dome_map(cams))],
        "ranking": [Figure("ranking", "Cameras sorted by ambiguity (mean over the selected sequences).",
                           F.ranking_bars(cams))],
    }
    amb_curve = regret_vs_dropped(res.sequences, cams)
    rnd_curve = random_order_curve(res.sequences, cams, req.random_orders, seed=req.rank.rank.seed)
    figs["curves"] = [Figure("regret-vs-dropped",
                             "Regret (Global MPJPE, mm) of the average and of the best kept camera, averaged over "
                             f"sequences, as cameras are dropped most-ambiguous first vs in random order "
                             f"(mean of {req.random_orders} orders).", F.regret_curve(amb_curve, rnd_curve))]
    figs["_triangulation"] = []
    if req.triangulation and len(cams) >= 3:
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # hundreds of tiny SVDs: threads only spin, badly so on a busy machine
        try:
            rows = triangulation_rows(outcome, ds, seed=req.rank.rank.seed, pixel_noise_px=req.rank.pixel_noise_px)
        finally:
            torch.set_num_threads(threads)
        if len(rows) and rows[["ambiguity_mm", "coverage_mm", "random_mm"]].notna().any().any():
            figs["curves"].append(Figure("triangulation", "Triangulation error of the 42 joints (DLT from the "
                                         f"ground-truth 2D joints + {req.rank.pixel_noise_px:g} px noise) vs number "
                                         "of cameras kept.", F.triangulation_curve(rows)))
            figs["_triangulation"] = rows  # type: ignore[assignment]
    figs["overlays"] = [
        Figure(f"overlay-{i + 1:02d}", f"{title}: {req.overlay_samples} sampled poses (right hand red, left "
               "blue; white: the mode) over the crop, and the same samples in 3D with the ground truth in black.",
               F.sample_overlay(panels, SKELETON, title))
        for i, (title, panels) in enumerate(overlay_panels(outcome, ds, model, req.overlay_samples,
                                                           seed=req.rank.rank.seed))
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
    intro = (f"{len(cams)} cameras scored on {n_seq} sequences ({', '.join(sorted(per['sequence'].unique()))}). "
             + headline + f"Selection: {kept} kept, {len(res.drop_list)} dropped.")

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
    cam_rows = [[str(i + 1), str(r["camera"]), _f(r.get("azimuth_deg")), _f(r.get("elevation_deg")),
                 _f(r["ambiguity_mm"]), _f(r["mpjpe_global_mm"]), _f(r["regret_global_mm"]),
                 _f(r["visible_fraction"], 2), "keep" if r["keep"] else "drop"]
                for i, (_, r) in enumerate(cams.reset_index(drop=True).iterrows())]
    cam_table = Table("All cameras in ranking order",
                      ["rank", "camera", "azimuth (deg)", "elevation (deg)", "ambiguity (mm)",
                       "MPJPE Global (mm)", "regret (mm)", "visible fraction", "selection"], cam_rows)

    sections = [
        Section("Camera dome", "Each dot is a camera, coloured by its ambiguity (mean per-joint spread of the "
                "sampled 3D poses, mm). Red crosses mark the cameras the selection drops.", figures.get("dome", [])),
        Section("Ranking", "", figures.get("ranking", [])),
        Section("Regret", "Does the ambiguity order find the good views? Compare with the simple rankers.",
                tables=[summary, per_seq]),
        Section("Dropping cameras", "", figures.get("curves", [])),
    ]
    tri = figures.get("_triangulation")
    if isinstance(tri, pd.DataFrame) and len(tri):
        sections[-1].tables.append(Table(
            "Triangulation error vs cameras kept (mm; random: mean of 10 random subsets)",
            ["cameras kept", "least ambiguous", "coverage", "random subsets", "full rig"],
            [[str(int(r["n_kept"])), _f(r["ambiguity_mm"], 2), _f(r["coverage_mm"], 2), _f(r["random_mm"], 2),
              _f(r["full_mm"], 2)] for _, r in tri.iterrows()]))
    sections.append(Section(
        "Sample overlays", "For the least and the most ambiguous camera of each sequence: sampled poses over "
        "the network's input crop, and the same samples in world coordinates from a fixed viewpoint. A "
        "confident view keeps the samples together; an ambiguous one spreads them, mostly in depth.",
        figures.get("overlays", [])))
    drop = ", ".join(map(str, res.drop_list)) if res.drop_list else "none"
    sections.append(Section("Cameras", f"Drop list ({len(res.drop_list)}): {drop}.", tables=[cam_table]))
    sections.append(Section("Provenance", "", tables=[Table("Run", ["key", "value"],
                                                            _flatten({**prov, "report": settings or {}}))]))
    return ReportContent("Camera view selection report", intro, sections)


# ---------------------------------------------------------------- HTML

_CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:2em auto;max-width:1180px;
padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;border-bottom:1px solid #ddd;padding-bottom:.2em;
margin-top:1.8em}h3{font-size:1em;margin-bottom:.3em}
figure{display:inline-table;vertical-align:top;margin:1em 1.5em 1em 0}
figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{display:table-caption;caption-side:bottom;font-size:.85em;color:#555;padding-top:.3em}
table{border-collapse:collapse;font-size:.82em;margin:.4em 0 1em}
th,td{border:1px solid #ddd;padding:.2em .5em;text-align:right;vertical-align:top}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}
.kv td,.kv th{text-align:left;font-family:monospace;word-break:break-all}.kv td:first-child{white-space:nowrap}
.note{font-size:.82em;color:#555}.scroll{max-height:32em;overflow:auto;display:inline-block}
"""


def _e(x) -> str:
    return html.escape(str(x), quote=True)


def _html_table(t: Table, kv: bool = False) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in t.columns)
    body = "".join("<tr>" + "".join(f"<td>{_e(v)}</td>" for v in row) + "</tr>" for row in t.rows)
    cls = ' class="kv"' if kv else ""
    wrap = len(t.rows) > 30 and not kv
    table = f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    if wrap:
        table = f'<div class="scroll">{table}</div>'
    note = f'<p class="note">{_e(t.note)}</p>' if t.note else ""
    return f"<h3>{_e(t.title)}</h3>{table}{note}"


def _html_figure(f: Figure) -> str:
    data = base64.b64encode(f.png).decode("ascii")
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{_e(f.caption)}">'
            f"<figcaption>{_e(f.caption)}</figcaption></figure>")


def render_html(content: ReportContent) -> str:
    """One self-contained page: inline CSS, data-URI images, no scripts; every value escaped."""
    parts = [f"<h1>{_e(content.title)}</h1>", f"<p>{_e(content.intro)}</p>"]
    for s in content.sections:
        parts.append(f"<h2>{_e(s.title)}</h2>")
        if s.text:
            parts.append(f"<p>{_e(s.text)}</p>")
        parts += [_html_figure(f) for f in s.figures]
        parts += [_html_table(t, kv=s.title == "Provenance") for t in s.tables]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{_e(content.title)}</title><style>{_CSS}</style></head><body>\n"
            + "\n".join(parts) + "\n</body></html>\n")


# ---------------------------------------------------------------- Markdown folder


def _md(x) -> str:
    """A Markdown table cell / paragraph: HTML-escaped, pipes and backslashes escaped, one line."""
    s = html.escape(str(x), quote=False).replace("\\", "\\\\").replace("|", "\\|")
    for ch in "`*_[]":
        s = s.replace(ch, "\\" + ch)
    return " ".join(s.split())


def render_markdown(content: ReportContent, image_dir: str = "figures") -> tuple[str, dict[str, bytes]]:
    """Markdown text and ``{relative PNG path: bytes}``."""
    lines = [f"# {_md(content.title)}", "", _md(content.intro), ""]
    files: dict[str, bytes] = {}
    for s in content.sections:
        lines += [f"## {_md(s.title)}", ""]
        if s.text:
            lines += [_md(s.text), ""]
        for f in s.figures:
            name = f"{image_dir}/{f.key}.png"
            files[name] = f.png
            lines += [f"![{_md(f.caption)}]({name})", "", f"*{_md(f.caption)}*", ""]
        for t in s.tables:
            lines += [f"**{_md(t.title)}**", "", "| " + " | ".join(_md(c) for c in t.columns) + " |",
                      "|" + "|".join(" --- " for _ in t.columns) + "|"]
            lines += ["| " + " | ".join(_md(v) for v in row) + " |" for row in t.rows]
            lines += ["", _md(t.note), ""] if t.note else [""]
    return "\n".join(lines) + "\n", files


def write_markdown_folder(out: str | os.PathLike, content: ReportContent) -> Path:
    """Write ``out/report.md`` and ``out/figures/*.png`` as a whole: a temporary folder renamed into place.

    An existing ``out`` is replaced only when it is an earlier report (holds ``report.md``) or empty.
    """
    out = Path(out)
    if out.exists():
        if not out.is_dir() or (any(out.iterdir()) and not (out / "report.md").is_file()):
            raise HandflowError(f"--out {out} exists and is not an earlier Markdown report; choose another folder")
    text, files = render_markdown(content)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    except OSError as err:
        raise HandflowError(f"cannot write {out}: {err.strerror or err}") from err
    old = None
    try:
        (tmp / "report.md").write_text(text, encoding="utf-8")
        for rel, data in files.items():
            p = tmp / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)
        if out.exists():
            old = out.with_name(f".{out.name}.old.{os.getpid()}")
            os.replace(out, old)
        os.replace(tmp, out)
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not out.exists():
            os.replace(old, out)
        raise HandflowError(f"cannot write {out}: {err.strerror or err}") from err
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return out
