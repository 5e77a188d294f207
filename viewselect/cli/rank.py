"""The view-selection commands: ``rank``, ``report``, ``plan``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from handflow.errors import HandflowError
from viewselect.cli.app import (
    Cameras,
    CompareModel,
    DataRoot,
    Device,
    Drop,
    EXIT_SKIPPED,
    Frames,
    Keep,
    ManoDir,
    MaxAmbiguity,
    ModelPath,
    RankSamples,
    Seed,
    Sequence,
    Split,
    Strategy,
    app,
    console,
    err_console,
    print_notes,
)


def _rank_request(*, sequence: str, data_root, split: str, model, compare_model, mano_dir, cameras,
                  drop, keep, max_ambiguity, strategy: str, samples: int, frames, seed: int, device,
                  alignment: str = "global", bootstrap: int = 1000, error_vs_cameras: bool = False):
    """The ``RankRequest`` that ``rank`` and ``report`` share, from their command-line values."""
    from viewselect.engine.scoring import RankConfig
    from viewselect.ranking.pipeline import RankRequest

    text = lambda p: str(p) if p else None  # noqa: E731
    return RankRequest(
        sequence=sequence, data_root=text(data_root), split=split, model=text(model),
        compare_model=text(compare_model), mano_dir=text(mano_dir),
        cameras=[c.strip() for c in cameras.split(",") if c.strip()] if cameras else None,
        drop=drop, keep=keep, max_ambiguity_mm=max_ambiguity, strategy=strategy, alignment=alignment,
        engine=RankConfig(samples=samples, frames=frames, seed=seed), device=device,
        bootstrap_resamples=bootstrap, error_vs_cameras=error_vs_cameras,
    )


@app.command("rank")
def rank(
    sequence: Sequence = "Capture0-1",
    data_root: DataRoot = None,
    split: Split = "test",
    model: ModelPath = None,
    compare_model: CompareModel = None,
    mano_dir: ManoDir = None,
    samples: RankSamples = 50,
    frames: Frames = None,
    cameras: Cameras = None,
    drop: Drop = None,
    keep: Keep = None,
    max_ambiguity: MaxAmbiguity = None,
    strategy: Strategy = "ambiguity",
    alignment: str = typer.Option("global", help="Alignment shown in the terminal: global, rrr or rr."),
    out: Path = typer.Option(Path("viewselect-results"), help="Folder for ranking.csv/.parquet/.xlsx and summary.json."),
    seed: Seed = 0,
    bootstrap: int = typer.Option(1000, help="Bootstrap resamples behind the intervals and the drop consensus."),
    error_vs_cameras: bool = typer.Option(False, "--error-vs-cameras",
                                          help="Also write error_vs_cameras.csv: triangulation error and regret vs K kept."),
    device: Device = None,
) -> None:
    """Rank the cameras of a capture by HandFlowNet ambiguity; MPJPE, regret and the drop list.

    Without --drop / --keep / --max-ambiguity the drop list comes from the default rule (README)."""
    from viewselect.ranking.pipeline import run_rank
    from viewselect.outputs.tables import write_rank_result
    from viewselect.outputs.terminal import print_rank

    outcome = run_rank(_rank_request(
        sequence=sequence, data_root=data_root, split=split, model=model, compare_model=compare_model,
        mano_dir=mano_dir, cameras=cameras, drop=drop, keep=keep, max_ambiguity=max_ambiguity,
        strategy=strategy, alignment=alignment, samples=samples, frames=frames, seed=seed, device=device,
        bootstrap=bootstrap, error_vs_cameras=error_vs_cameras,
    ))
    if outcome.process_rank != 0:  # under torchrun every process holds the same result; process 0 writes it
        return
    paths = write_rank_result(out, outcome.result, outcome.provenance, extra=outcome.summary_extra(),
                              error_vs_cameras=outcome.error_vs_cameras)
    print_rank(console, outcome, alignment)
    console.print(f"wrote {', '.join(str(p) for p in paths.values())}", markup=False, highlight=False, soft_wrap=True)
    print_notes(outcome.notes)
    if outcome.skipped_views or outcome.skipped_images:
        err_console.print(
            f"warning: skipped {outcome.skipped_images} unreadable image(s) and {len(outcome.skipped_views)} view(s) "
            f"that could not be scored (no readable image, or no annotated joint in the image); listed in "
            f"{out / 'summary.json'} (provenance.skipped_*)",
            markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_SKIPPED)


@app.command("report")
def report(
    html: bool = typer.Option(False, "--html", help="Write one self-contained HTML file (the default format)."),
    format: Optional[str] = typer.Option(None, "--format", help="html (default) or md (Markdown + PNG folder)."),
    out: Optional[Path] = typer.Option(None, help="Output (default: viewselect-results/view-report.html; md: viewselect-results/view-report/)."),
    sequence: Sequence = "Capture0-1",
    data_root: DataRoot = None,
    split: Split = "test",
    model: ModelPath = None,
    compare_model: CompareModel = None,
    mano_dir: ManoDir = None,
    samples: RankSamples = 50,
    frames: Frames = None,
    cameras: Cameras = None,
    drop: Drop = None,
    keep: Keep = None,
    max_ambiguity: MaxAmbiguity = None,
    strategy: Strategy = "ambiguity",
    overlay_samples: int = typer.Option(50, help="Poses drawn in each sample overlay."),
    triangulation: bool = typer.Option(True, "--triangulation/--no-triangulation",
                                       help="Plot triangulation error vs cameras kept."),
    seed: Seed = 0,
    device: Device = None,
) -> None:
    """Write the view-selection report: dome, ranking, regret, sample overlays, provenance."""
    from viewselect.outputs.build import build_report
    from viewselect.outputs.report import ReportRequest

    if html and format not in (None, "html"):
        raise HandflowError(f"--html and --format {format} conflict: give one")
    req = _rank_request(
        sequence=sequence, data_root=data_root, split=split, model=model, compare_model=compare_model,
        mano_dir=mano_dir, cameras=cameras, drop=drop, keep=keep, max_ambiguity=max_ambiguity,
        strategy=strategy, samples=samples, frames=frames, seed=seed, device=device,
    )
    path, outcome = build_report(ReportRequest(rank=req, out=str(out) if out else None, format=format or "html",
                                               overlay_samples=overlay_samples, triangulation=triangulation))
    console.print(f"wrote {path}", markup=False, highlight=False, soft_wrap=True)
    print_notes(outcome.notes)


@app.command("plan")
def plan(
    rig: Path = typer.Option(..., help="Proposed rig: InterHand2.6M camera JSON or CSV (camera,campos_x_mm,...,height_px)."),
    compare: Optional[Path] = typer.Option(None, help="A second rig file, evaluated side by side."),
    model: ModelPath = None,
    frames: int = typer.Option(6, help="Frames rendered per test sequence (6: as the embedded capture)."),
    samples: RankSamples = 50,
    image_size: Optional[str] = typer.Option(None, help="Image size HxW in px for every camera (JSON rigs: default 2 x principal point)."),
    out: Path = typer.Option(Path("viewselect-results/plan"), help="Output folder."),
    seed: Seed = 0,
    device: Device = None,
) -> None:
    """Evaluate a proposed rig before it is built: render the test motions through it, score every camera."""
    from viewselect.plan.run import PlanRequest, rig_row, run_plan, write_plan

    hw = None
    if image_size is not None:
        try:
            hw = tuple(int(v) for v in image_size.lower().split("x"))
        except ValueError:
            raise HandflowError(f"--image-size {image_size!r}: expected HxW, e.g. 256x168") from None
    plans = run_plan(PlanRequest(rig=str(rig), compare=str(compare) if compare else None,
                                 model=str(model) if model else None, frames=frames, samples=samples, seed=seed,
                                 device=device, image_hw=hw))
    paths = write_plan(out, plans)
    for p in plans:
        r = rig_row(p)
        console.print(f"{p.label} ({r['n_cameras']} cameras, {p.rig.source}): median ambiguity "
                      f"{r['median_ambiguity_mm']:.1f} mm, joint-frames seen by >=3 cameras {r['seen_by_3_share']:.1%}, "
                      f"triangulation error {_mm(r['triangulation_error_mm'])}",
                      markup=False, highlight=False, soft_wrap=True)
    console.print(f"wrote {out / 'plan.md'} and {len(paths) - 1} more files under {out}",
                  markup=False, highlight=False, soft_wrap=True)
    for p in plans:
        print_notes(p.outcome.notes, prefix=f"{p.label}: ")


def _mm(x: float) -> str:
    """A triangulation error for a line of text: NaN (fewer than 2 cameras see any joint) as "-"."""
    return f"{x:.2f} mm" if x == x else "- (no joint seen by 2 cameras)"
