"""The ``viewselect`` command line: parses arguments and calls library functions, nothing more.

Every user-facing failure is a ``HandflowError``: printed as one ``error: ...`` line on stderr,
exit code 2. Ctrl-C exits 130 (work already cached or checkpointed stays valid). A command that
finished but skipped some unreadable inputs (``rank`` with missing or truncated images) writes its
outputs, prints one ``warning: ...`` line on stderr and exits 3 (``EXIT_SKIPPED``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from handflow.errors import HandflowError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Which cameras of a hand-capture rig earn their place.")
data_app = typer.Typer(no_args_is_help=True, help="The capture data: synthesise the embedded default, look at frames.")
app.add_typer(data_app, name="data")
hand_app = typer.Typer(no_args_is_help=True, help="The MANO hand model files.")
app.add_typer(hand_app, name="hand")
EXIT_ERROR = 2  # a HandflowError: bad input, nothing (half-)written
EXIT_SKIPPED = 3  # completed, but some inputs were unreadable and skipped (counted in the outputs)
# Piped output (logs, CI) gets wide tables instead of rich's 80-column default.
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True)


def configs_dir() -> Path:
    """The shipped configs: ``configs/`` of the source tree, reached as the package's ``configs``
    (a link in the source tree, a folder in an installed wheel), so any working folder finds them."""
    from importlib import resources

    return Path(str(resources.files("viewselect") / "configs"))

# ---------------------------------------------------------------- options shared by several commands
# Declared once here; a command names its option by its type. Defaults stay with the parameter.
Sequence = Annotated[str, typer.Option(help="Capture0-1, Capture3, Capture0/SEQ_NAME or a comma list.")]
SequenceOrAll = Annotated[Optional[str], typer.Option(
    "--sequence", help="Sequences, e.g. Capture0-1 or Capture0/SEQ (default: the whole split).")]
DataRoot = Annotated[Optional[Path], typer.Option(
    "--data-root", help="InterHand2.6M-layout root (default: the embedded synthetic capture).")]
Split = Annotated[str, typer.Option(help="Split: train, val or test.")]
ModelPath = Annotated[Optional[Path], typer.Option("--model", help="Model checkpoint (default: the shipped model).")]
CompareModel = Annotated[Optional[Path], typer.Option(
    "--compare-model", help="A baseline model whose spread is ranked alongside.")]
ManoDir = Annotated[Optional[Path], typer.Option(
    "--mano-dir", help="Folder with MANO_RIGHT/MANO_LEFT (.pkl or .npz; default: the synthetic MANO).")]
# --frames means one thing everywhere (handflow.data.selection.pick_frames)
Frames = Annotated[Optional[int], typer.Option("--frames", help="N evenly spaced frames per sequence, first and last "
                                               "included (N=1: the first frame; default: all).")]
Cameras = Annotated[Optional[str], typer.Option("--cameras", help="Comma list of camera ids to score (default: all).")]
Drop = Annotated[Optional[int], typer.Option("--drop", help="Drop the K most ambiguous cameras.")]
Keep = Annotated[Optional[int], typer.Option("--keep", help="Keep K cameras.")]
MaxAmbiguity = Annotated[Optional[float], typer.Option(
    "--max-ambiguity", help="Keep cameras whose ambiguity is at most MM.")]
Strategy = Annotated[str, typer.Option(
    help="With --keep: ambiguity (least ambiguous) or coverage (also spread directions).")]
RankSamples = Annotated[int, typer.Option(
    "--samples", help="Poses sampled per image (the same value reuses rank's per-view cache).")]
Seed = Annotated[int, typer.Option("--seed", help="Seed of the pose samples (and of rank's bootstrap).")]
Device = Annotated[Optional[str], typer.Option("--device", help="cpu or cuda (default: cuda when available).")]


def _config_path(config: str) -> Path:
    """``NAME`` means the shipped ``configs/NAME.toml``; anything else is a path."""
    p = Path(config)
    if p.suffix == "" and not p.exists():
        p = configs_dir() / f"{config}.toml"
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

    from handflow.synth.capture import default_data_root, load_synth_config, synthesize

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


@data_app.command("index")
def data_index(
    data_root: DataRoot = None,
    split: Annotated[Optional[str], typer.Option(help="Split: train, val or test (default: every split present).")] = None,
) -> None:
    """Convert a release's annotation JSONs, streaming, into the columnar index every command reads
    (once; commands also build it on first use). Interrupted: run again to resume."""
    from handflow.data.index import ensure_index
    from handflow.synth.capture import ensure_default_data

    root = data_root or ensure_default_data()
    if not root.is_dir():
        raise HandflowError(f"data root does not exist: {root}")
    splits = [split] if split else sorted(p.name for p in (root / "annotations").glob("*") if p.is_dir())
    if not splits:
        raise HandflowError(f"no annotation folder under {root / 'annotations'}")
    for s in splits:
        if not (root / "annotations" / s).is_dir():
            raise HandflowError(f"missing annotation folder: {root / 'annotations' / s}")
        index = ensure_index(root, s)
        n = index.manifest()["counts"]
        console.print(f"{s}: {n['rows']:,} annotated images, {n['sequences']:,} sequences, {n['frames']:,} frames, "
                      f"{n['cameras']:,} cameras -> {index.dir}", markup=False, highlight=False, soft_wrap=True)


@data_app.command("show")
def data_show(
    sequence: str = typer.Option(..., help="Capture<N>/<sequence name>."),
    camera: str = typer.Option(..., help="Camera id, e.g. 400002."),
    frame: Optional[int] = typer.Option(None, help="Frame index (default: the sequence's first)."),
    split: Split = "test",
    data_root: DataRoot = None,
    out: Optional[Path] = typer.Option(None, help="Output PNG (default: show-<capture>-<seq>-cam<id>-<frame>.png)."),
    annotations: bool = typer.Option(False, "--annotations", help="Draw the frame's MultiHands annotations (image "
                                     "and a novel 3D view) instead; needs `viewselect annotate` first."),
    mano_dir: Optional[Path] = typer.Option(None, help="Folder with MANO_RIGHT/MANO_LEFT that annotate used "
                                            "(default: the synthetic MANO); --annotations draws this model's joints."),
) -> None:
    """Write a PNG of one frame with the projected keypoints (visible / occluded) and skeletons."""
    from handflow.data.interhand import InterHandDataset
    from handflow.data.show import render_annotations, render_overlay
    from handflow.synth.capture import ensure_default_data
    from viewselect.manodir import mano_folder

    root = data_root or ensure_default_data()
    folder = mano_folder(mano_dir)
    ds = InterHandDataset(root, split, selection=sequence, mano_dir=str(folder))
    pairs = ds.sequences()  # what --sequence resolved to
    if len(pairs) != 1:
        raise HandflowError(f"--sequence {sequence!r} selects {len(pairs)} sequences; name one as Capture<N>/<name>")
    capture, seq = pairs[0]
    frames = ds.frames(capture, seq)
    frame = frames[0] if frame is None else frame
    if frame not in frames:
        raise HandflowError(f"unknown frame {frame} of Capture{capture}/{seq} (frames {frames[0]}..{frames[-1]})")
    ds.camera(capture, camera)
    if annotations:
        from handflow.hand.model import HandModel
        from handflow.multihands.store import AnnotationReader

        reader = AnnotationReader(root, split, HandModel.from_dir(folder))
        path = reader.path(capture, seq)
        if not path.is_file():
            raise HandflowError(f"Capture{capture}/{seq} has no MultiHands file ({path}); run viewselect annotate first")
        ann = reader.of(capture, seq, camera, frame)
        if ann is None:  # the walk skips images without MANO parameters for both hands
            raise HandflowError(f"{path} has no annotations of cam{camera} frame {frame} (listed as skipped in its meta?)")
        out = out or Path(f"show-Capture{capture}-{seq}-cam{camera}-{frame}-multihands.png")
        n = render_annotations(ds, capture, seq, camera, frame, ann, out)
        console.print(f"wrote {out} ({n} annotations)")
        return
    out = out or Path(f"show-Capture{capture}-{seq}-cam{camera}-{frame}.png")
    render_overlay(ds, capture, seq, camera, frame, out)
    console.print(f"wrote {out}")


@app.command("annotate")
def annotate(
    sequence: SequenceOrAll = None,
    split: Split = "test",
    per_image: Optional[int] = typer.Option(None, help="Annotations kept per image, ground truth included (overrides the config)."),
    config: str = typer.Option("multihands", help="MultiHands config: NAME under configs/ or a TOML path."),
    frames: Frames = None,
    data_root: DataRoot = None,
    mano_dir: ManoDir = None,
    seed: Optional[int] = typer.Option(None, help="Random seed (overrides the config)."),
    force: bool = typer.Option(False, help="Recompute sequences whose file is already up to date."),
) -> None:
    """MultiHands: plausible alternative two-hand annotations per image, one .npz per sequence beside the
    split's annotations (annotations/<split>/InterHand2.6M_<split>_MultiHands/). Resumable per sequence.
    Under torchrun the sequences are shared out over the processes (and nodes); the files are the same."""
    import dataclasses

    from handflow.config import load_config
    from handflow.data.index import ensure_index
    from handflow.data.interhand import InterHandDataset
    from handflow.data.selection import select_sequences
    from handflow.synth.capture import ensure_default_data
    from handflow.hand.model import HandModel
    from handflow.multihands.annotate import AnnotateSummary, annotate_split, merge_summaries, shard_sequences
    from handflow.multihands.config import MultiHandsConfig
    from viewselect.distributed import ProcessGroup
    from viewselect.manodir import mano_folder

    cfg = load_config(MultiHandsConfig, _config_path(config))
    changes = {k: v for k, v in (("per_image", per_image), ("seed", seed)) if v is not None}
    cfg = dataclasses.replace(cfg, **changes)
    proc = ProcessGroup.join("cpu")
    try:
        root = data_root or proc.local_first(ensure_default_data)
        selection = sequence
        if proc.world > 1:  # this process's share of the sequences, balanced by image count
            if not (root / "annotations" / split).is_dir():
                raise HandflowError(f"missing annotation folder: {root / 'annotations' / split}")
            index = proc.local_first(lambda: ensure_index(root, split))  # one builder per node
            sizes = index.sequence_sizes()
            # --sequence resolved against the index before any dataset exists: this process reads its share only
            pairs = select_sequences(sequence, index.sequences())
            if not any(sizes.get(p, 0) for p in pairs):
                raise HandflowError(f"no images selected in split {split!r} under {root}")
            selection = shard_sequences({p: sizes.get(p, 0) for p in pairs}, proc.rank, proc.world)
        folder = proc.local_first(lambda: mano_folder(mano_dir))  # may generate the synthetic MANO
        hand_model = HandModel.from_dir(folder)
        ds = InterHandDataset(root, split, selection=selection, max_frames=frames, mano_dir=str(folder))
        if len(ds) == 0 and proc.world == 1:
            raise HandflowError(f"no images selected in split {split!r} under {root}")
        mine = annotate_split(ds, hand_model, cfg, force=force) if len(ds) else AnnotateSummary(split=split)
        summary = merge_summaries(proc.all_gather(mine)).as_dict()
    finally:
        proc.leave()
    if proc.rank != 0:  # process 0 reports for the job
        return
    from viewselect.terminal import print_annotate_summary

    print_annotate_summary(console, summary)
    if summary["skipped_no_mano"]:
        err_console.print(f"warning: {summary['skipped_no_mano']} image(s) without MANO parameters for both hands "
                          "were skipped (listed in each sequence file's meta)", markup=False, highlight=False,
                          soft_wrap=True)
        raise typer.Exit(EXIT_SKIPPED)


@app.command("evaluate")
def evaluate(
    models: str = typer.Option(..., help="Checkpoints to compare: NAME=PATH,NAME=PATH (or PATH,PATH)."),
    split: Split = "test",
    sequence: SequenceOrAll = None,
    frames: Frames = None,
    samples: int = typer.Option(100, help="Samples per image for MMD and the sample std."),
    annotations: int = typer.Option(100, help="At most this many MultiHands annotations per image."),
    data_root: DataRoot = None,
    mano_dir: ManoDir = None,
    out: Path = typer.Option(Path("reports"), help="Folder for evaluation.md and the CSV tables."),
    seed: int = typer.Option(0, help="Seed of the sampling noise."),
    notes: Optional[Path] = typer.Option(None, help="Markdown file whose text goes under the title (findings)."),
) -> None:
    """Tables 1-2 of the paper and the ablation table (MPJPE against the closest/farthest plausible
    annotation, MMD against the MultiHands annotations, sample spread) for several models."""
    from handflow.provenance import provenance
    from viewselect.evaluation import EvaluationRequest, parse_models, run_evaluation, tables, write_evaluation

    if samples < 2 or annotations < 2:
        raise HandflowError("--samples and --annotations must be at least 2")
    req = EvaluationRequest(models=parse_models(models), split=split, sequence=sequence, frames=frames,
                            data_root=data_root, mano_dir=mano_dir, samples=samples, annotations=annotations, seed=seed)
    note_text = ""
    if notes is not None:
        try:
            note_text = notes.read_text()
        except OSError as err:
            raise HandflowError(f"cannot read --notes {notes}: {err.strerror or err}") from err
    results = run_evaluation(req)
    paths = write_evaluation(results, out, provenance(config={k: str(v) for k, v in req.__dict__.items()}), note_text)
    t = tables(results)["table2"]
    for _, r in t.iterrows():
        console.print(f"{r['model']:>24}: MMD global {r['mmd_global']:.3f}  RRR {r['mmd_rrr']:.3f}  RR {r['mmd_rr']:.3f}"
                      f"  sample std {r['sample_std_mm']:.1f} mm", markup=False, highlight=False)
    console.print(f"wrote {paths[-1]}", markup=False, highlight=False)


@app.command("evaluate-model")
def evaluate_model(
    model: Path = typer.Option(..., "--model", help="Model checkpoint."),
    split: Split = "test",
    data_root: DataRoot = None,
    mano_dir: ManoDir = None,
    samples: int = typer.Option(100, help="Samples per image for the sample spread."),
    max_images: Optional[int] = typer.Option(None, help="At most this many images of the split (default: all)."),
    seed: Seed = 0,
) -> None:
    """Held-out figures of one model: the mode's MPJPE (global, RRR, RR) against the constant mean-pose
    predictor, and the sample spread; printed as JSON."""
    import json

    from handflow.preload import preload_split
    from handflow.synth.capture import ensure_default_data
    from handflow.evaluate import evaluate_split
    from handflow.hand.model import HandModel
    from handflow.model.registry import load_model
    from viewselect.manodir import mano_folder

    if samples < 2:
        raise HandflowError(f"--samples must be at least 2, found {samples}")
    if not model.is_file():
        raise HandflowError(f"missing model checkpoint: {model}")
    hm = HandModel.from_dir(mano_folder(mano_dir))
    net, _ = load_model(model, hm)
    root = data_root or ensure_default_data()
    data = preload_split(root, split, net.cfg.crop_px, hm, max_images=max_images)
    console.print(json.dumps(evaluate_split(net, data, samples, seed=seed), indent=2), markup=False, highlight=False)


@app.command("multihands-report")
def multihands_report(
    split: Split = "test",
    sequence: SequenceOrAll = None,
    frames: Frames = None,
    data_root: DataRoot = None,
    mano_dir: ManoDir = None,
    out: Path = typer.Option(Path("reports/multihands.md"), help="Markdown file to write."),
) -> None:
    """Where the MultiHands annotations spread (along the viewing ray vs in the image plane, visible vs
    occluded joints) and the walk's acceptance figures, from the files `viewselect annotate` wrote."""
    import json

    from handflow.data.interhand import InterHandDataset
    from handflow.synth.capture import ensure_default_data
    from viewselect.manodir import mano_folder
    from viewselect.multihands_report import write_multihands_report

    root = data_root or ensure_default_data()
    ds = InterHandDataset(root, split, selection=sequence, max_frames=frames, mano_dir=str(mano_folder(mano_dir)))
    command = " ".join(["viewselect multihands-report", *sys.argv[2:]]) if sys.argv[1:2] == ["multihands-report"] \
        else "viewselect multihands-report"
    res = write_multihands_report(ds, out, command)
    console.print(json.dumps(res["spread"], indent=2), markup=False, highlight=False)
    console.print(f"wrote {out}", markup=False, highlight=False, soft_wrap=True)


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
                  alignment: str = "global", bootstrap: int = 1000, error_vs_cameras: bool = False):
    """The ``RankRequest`` that ``rank`` and ``report`` share, from their command-line values."""
    from viewselect.engine import RankConfig
    from viewselect.rank_pipeline import RankRequest

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
    from viewselect.rank_pipeline import run_rank
    from viewselect.tables import write_rank_result
    from viewselect.terminal import print_rank

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
    if outcome.skipped_views or outcome.skipped_images:
        err_console.print(
            f"warning: skipped {outcome.skipped_images} unreadable image(s) and {len(outcome.skipped_views)} view(s) "
            f"with no readable image; listed in {out / 'summary.json'} (provenance.skipped_*)",
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
    from viewselect.pipeline import build_report
    from viewselect.report import ReportRequest

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
    from viewselect.plan import PlanRequest, rig_row, run_plan, write_plan

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
                      f"triangulation error {r['triangulation_error_mm']:.2f} mm",
                      markup=False, highlight=False, soft_wrap=True)
    console.print(f"wrote {out / 'plan.md'} and {len(paths) - 1} more files under {out}",
                  markup=False, highlight=False, soft_wrap=True)


@hand_app.command("convert")
def hand_convert(
    mano_dir: Path = typer.Option(..., help="Folder with MANO_RIGHT.pkl / MANO_LEFT.pkl (read once, restricted unpickler)."),
    out: Path = typer.Option(..., help="Folder for MANO_RIGHT.npz / MANO_LEFT.npz (plain arrays, no pickle)."),
) -> None:
    """Convert MANO pickles to .npz files that load without unpickling; then pass --mano-dir OUT."""
    from handflow.hand.mano import convert_mano_dir

    for path in convert_mano_dir(mano_dir, out):
        console.print(f"wrote {path}", markup=False, highlight=False, soft_wrap=True)


def main() -> None:
    try:
        rc = app(standalone_mode=False)
    except HandflowError as err:
        err_console.print(f"error: {err}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(EXIT_ERROR)
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
    if isinstance(rc, int) and rc:  # typer.Exit(code) inside a command returns the code here
        sys.exit(rc)


if __name__ == "__main__":
    main()
