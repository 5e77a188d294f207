"""The ``viewselect`` command line: parses arguments and calls library functions, nothing more.

Every user-facing failure is a ``HandflowError``: printed as one ``error: ...`` line on stderr,
exit code 2. Ctrl-C exits 130 (work already cached or checkpointed stays valid).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from handflow.errors import HandflowError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Which cameras of a hand-capture rig earn their place.")
data_app = typer.Typer(no_args_is_help=True, help="The capture data: synthesise the embedded default, look at frames.")
app.add_typer(data_app, name="data")
# Piped output (logs, CI) gets wide tables instead of rich's 80-column default.
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True)


REPO_CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def _config_path(config: str) -> Path:
    """``NAME`` means ``configs/NAME.toml``; anything else is a path."""
    p = Path(config)
    if p.suffix == "" and not p.exists():
        p = REPO_CONFIGS / f"{config}.toml"
    return p


@data_app.command("synth")
def data_synth(
    root: Optional[Path] = typer.Option(None, help="Output folder (default: the embedded data's cache folder)."),
    config: str = typer.Option("synth/default", help="Synth config: NAME under configs/ or a TOML path."),
    tiny: bool = typer.Option(False, "--tiny", help="The tiny preset used by the tests (configs/synth/tiny.toml)."),
    frames: Optional[int] = typer.Option(None, help="Frames per test sequence."),
    image_size: Optional[str] = typer.Option(None, help="Image size HxW in pixels, e.g. 512x334."),
    seed: Optional[int] = typer.Option(None, help="Random seed."),
    overwrite: bool = typer.Option(False, help="Replace an existing capture at ROOT."),
) -> None:
    """Write the synthetic capture in the InterHand2.6M layout (images + annotation JSON per split)."""
    import dataclasses

    from handflow.data.synth import default_data_root, load_synth_config, synthesize

    cfg = load_synth_config(_config_path("synth/tiny" if tiny else config))
    changes = {}
    if frames is not None:
        changes["test_frames"] = frames
    if seed is not None:
        changes["seed"] = seed
    if image_size is not None:
        try:
            h, w = (int(v) for v in image_size.lower().split("x"))
        except ValueError:
            raise HandflowError(f"--image-size {image_size!r}: expected HxW, e.g. 512x334") from None
        changes.update(image_height=h, image_width=w)
    cfg = dataclasses.replace(cfg, **changes)
    out = synthesize(cfg, root or default_data_root(cfg), overwrite=overwrite)
    console.print(f"wrote synthetic capture to {out}")


@data_app.command("show")
def data_show(
    sequence: str = typer.Option(..., help="Capture<N>/<sequence name>."),
    camera: str = typer.Option(..., help="Camera id, e.g. 400002."),
    frame: Optional[int] = typer.Option(None, help="Frame index (default: the sequence's first)."),
    split: str = typer.Option("test", help="Split: train, val or test."),
    data_root: Optional[Path] = typer.Option(None, help="InterHand2.6M-layout root (default: embedded data)."),
    out: Optional[Path] = typer.Option(None, help="Output PNG (default: show-<capture>-<seq>-cam<id>-<frame>.png)."),
) -> None:
    """Write a PNG of one frame with the projected keypoints (visible / occluded) and skeletons."""
    from handflow.data.interhand import InterHandDataset
    from handflow.data.selection import select_sequences
    from handflow.data.show import render_overlay
    from handflow.data.synth import ensure_default_data

    root = data_root or ensure_default_data()
    ds = InterHandDataset(root, split)
    pairs = select_sequences(sequence, ds.available())
    if len(pairs) != 1:
        raise HandflowError(f"--sequence {sequence!r} selects {len(pairs)} sequences; name one as Capture<N>/<name>")
    capture, seq = pairs[0]
    frames = ds.frames(capture, seq)
    frame = frames[0] if frame is None else frame
    if frame not in frames:
        raise HandflowError(f"unknown frame {frame} of Capture{capture}/{seq} (frames {frames[0]}..{frames[-1]})")
    ds.camera(capture, camera)
    out = out or Path(f"show-Capture{capture}-{seq}-cam{camera}-{frame}.png")
    render_overlay(ds, capture, seq, camera, frame, out)
    console.print(f"wrote {out}")


@app.command("train-model")
def train_model(
    config: str = typer.Option("default", help="Training config: NAME under configs/ or a TOML path."),
    out: Optional[Path] = typer.Option(None, help="Run folder (default: runs/<config name>)."),
    resume: bool = typer.Option(False, help="Continue bit-for-bit from OUT/last.pt."),
    data_root: Optional[Path] = typer.Option(None, help="InterHand2.6M-layout root (overrides the config)."),
    mano_dir: Optional[Path] = typer.Option(None, help="Folder with MANO_RIGHT.pkl / MANO_LEFT.pkl (overrides the config)."),
    backbone_weights: Optional[Path] = typer.Option(None, help="Local torchvision ImageNet ResNet state dict."),
    device: Optional[str] = typer.Option(None, help="cpu or cuda (default: cuda when available)."),
) -> None:
    """Train HandFlowNet from a config; writes OUT/last.pt (resumable), OUT/model.pt (compact), OUT/log.csv."""
    import dataclasses

    from handflow.model.registry import export_model
    from handflow.train import load_train_config, train

    path = _config_path(config)
    cfg = load_train_config(path)
    data = dataclasses.replace(cfg.data, root=str(data_root) if data_root else cfg.data.root,
                               mano_dir=str(mano_dir) if mano_dir else cfg.data.mano_dir)
    model = dataclasses.replace(cfg.model, backbone_weights=str(backbone_weights)) if backbone_weights else cfg.model
    cfg = dataclasses.replace(cfg, data=data, model=model)
    out = out or Path("runs") / path.stem
    row = train(cfg, out, resume=resume, device=device)
    if row and row.get("rank", 0) == 0:  # under torchrun only rank 0 writes
        export_model(out / "last.pt", out / "model.pt")
        console.print(f"wrote {out / 'model.pt'} (val MPJPE {row.get('val_mpjpe_global_mm', float('nan')):.1f} mm)")



def _rank_request(*, sequence: str, data_root, split: str, model, compare_model, mano_dir, cameras,
                  drop, keep, max_ambiguity, strategy: str, samples: int, frames, seed: int, device,
                  alignment: str = "global"):
    """The ``RankRequest`` that ``rank`` and ``report`` share, from their command-line values."""
    from viewselect.engine import RankConfig
    from viewselect.rank import RankRequest

    text = lambda p: str(p) if p else None  # noqa: E731
    return RankRequest(
        sequence=sequence, data_root=text(data_root), split=split, model=text(model),
        compare_model=text(compare_model), mano_dir=text(mano_dir),
        cameras=[c.strip() for c in cameras.split(",") if c.strip()] if cameras else None,
        drop=drop, keep=keep, max_ambiguity_mm=max_ambiguity, strategy=strategy, alignment=alignment,
        rank=RankConfig(samples=samples, frames=frames, seed=seed), device=device,
    )


@app.command("rank")
def rank(
    sequence: str = typer.Option("Capture0-1", help="Capture0-1, Capture3, Capture0/SEQ_NAME or a comma list."),
    data_root: Optional[Path] = typer.Option(None, help="InterHand2.6M-layout root (default: embedded synthetic capture)."),
    split: str = typer.Option("test", help="Split holding the sequences."),
    model: Optional[Path] = typer.Option(None, help="Model checkpoint (default: the shipped model)."),
    compare_model: Optional[Path] = typer.Option(None, help="A baseline model whose spread is ranked alongside."),
    mano_dir: Optional[Path] = typer.Option(None, help="Folder with MANO_RIGHT.pkl / MANO_LEFT.pkl."),
    samples: int = typer.Option(100, help="Poses sampled per image."),
    frames: Optional[int] = typer.Option(None, help="At most this many frames per sequence (evenly spaced)."),
    cameras: Optional[str] = typer.Option(None, help="Comma list of camera ids to score (default: all)."),
    drop: Optional[int] = typer.Option(None, help="Drop the K most ambiguous cameras."),
    keep: Optional[int] = typer.Option(None, help="Keep K cameras."),
    max_ambiguity: Optional[float] = typer.Option(None, help="Keep cameras whose ambiguity is at most MM."),
    strategy: str = typer.Option("ambiguity", help="With --keep: ambiguity (least ambiguous) or coverage (also spread directions)."),
    alignment: str = typer.Option("global", help="Alignment shown in the terminal: global, rrr or rr."),
    out: Path = typer.Option(Path("viewselect-results"), help="Folder for ranking.csv/.parquet/.xlsx and summary.json."),
    seed: int = typer.Option(0, help="Seed of the pose samples."),
    device: Optional[str] = typer.Option(None, help="cpu or cuda (default: cuda when available)."),
) -> None:
    """Rank the cameras of a capture by HandFlowNet ambiguity; MPJPE, regret and the drop list."""
    from viewselect.rank import run_rank
    from viewselect.tables import write_rank_result
    from viewselect.terminal import print_rank

    outcome = run_rank(_rank_request(
        sequence=sequence, data_root=data_root, split=split, model=model, compare_model=compare_model,
        mano_dir=mano_dir, cameras=cameras, drop=drop, keep=keep, max_ambiguity=max_ambiguity,
        strategy=strategy, alignment=alignment, samples=samples, frames=frames, seed=seed, device=device,
    ))
    paths = write_rank_result(out, outcome.result, outcome.provenance,
                              extra={"triangulation": outcome.triangulation} if outcome.triangulation else None)
    print_rank(console, outcome, alignment)
    console.print(f"wrote {', '.join(str(p) for p in paths.values())}")


@app.command("report")
def report(
    html: bool = typer.Option(False, "--html", help="Write one self-contained HTML file (the default format)."),
    format: Optional[str] = typer.Option(None, "--format", help="html (default) or md (Markdown + PNG folder)."),
    out: Optional[Path] = typer.Option(None, help="Output (default: reports/view-report.html; md: reports/view-report/)."),
    sequence: str = typer.Option("Capture0-1", help="Capture0-1, Capture3, Capture0/SEQ_NAME or a comma list."),
    data_root: Optional[Path] = typer.Option(None, help="InterHand2.6M-layout root (default: embedded synthetic capture)."),
    split: str = typer.Option("test", help="Split holding the sequences."),
    model: Optional[Path] = typer.Option(None, help="Model checkpoint (default: the shipped model)."),
    compare_model: Optional[Path] = typer.Option(None, help="A baseline model whose spread is ranked alongside."),
    mano_dir: Optional[Path] = typer.Option(None, help="Folder with MANO_RIGHT.pkl / MANO_LEFT.pkl."),
    samples: int = typer.Option(100, help="Poses sampled per image for the ranking (100 reuses rank's cache)."),
    frames: Optional[int] = typer.Option(None, help="At most this many frames per sequence (evenly spaced)."),
    cameras: Optional[str] = typer.Option(None, help="Comma list of camera ids to score (default: all)."),
    drop: Optional[int] = typer.Option(None, help="Drop the K most ambiguous cameras."),
    keep: Optional[int] = typer.Option(None, help="Keep K cameras."),
    max_ambiguity: Optional[float] = typer.Option(None, help="Keep cameras whose ambiguity is at most MM."),
    strategy: str = typer.Option("ambiguity", help="With --keep: ambiguity or coverage."),
    overlay_samples: int = typer.Option(50, help="Poses drawn in each sample overlay."),
    triangulation: bool = typer.Option(True, "--triangulation/--no-triangulation",
                                       help="Plot triangulation error vs cameras kept."),
    seed: int = typer.Option(0, help="Seed of the pose samples."),
    device: Optional[str] = typer.Option(None, help="cpu or cuda (default: cuda when available)."),
) -> None:
    """Write the view-selection report: dome, ranking, regret, sample overlays, provenance."""
    from viewselect.report import ReportRequest, build_report

    if html and format not in (None, "html"):
        raise HandflowError(f"--html and --format {format} conflict: give one")
    req = _rank_request(
        sequence=sequence, data_root=data_root, split=split, model=model, compare_model=compare_model,
        mano_dir=mano_dir, cameras=cameras, drop=drop, keep=keep, max_ambiguity=max_ambiguity,
        strategy=strategy, samples=samples, frames=frames, seed=seed, device=device,
    )
    path = build_report(ReportRequest(rank=req, out=str(out) if out else None, format=format or "html",
                                      overlay_samples=overlay_samples, triangulation=triangulation))
    console.print(f"wrote {path}", markup=False, highlight=False, soft_wrap=True)


def main() -> None:
    try:
        app(standalone_mode=False)
    except HandflowError as err:
        err_console.print(f"error: {err}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("interrupted: finished work is kept; run the same command again to resume", markup=False)
        sys.exit(130)
    except typer.Exit as ex:
        sys.exit(ex.exit_code)
    except typer.Abort:
        sys.exit(1)
    except Exception as err:  # click usage errors carry their own exit code
        import click

        if isinstance(err, click.ClickException):
            err.show()
            sys.exit(err.exit_code)
        raise


if __name__ == "__main__":
    main()
