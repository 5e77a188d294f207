"""The data and hand-model commands: ``data synth``, ``data index``, ``data show``, ``hand convert``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from handflow.errors import HandflowError
from viewselect.cli.app import DataRoot, Split, config_path, console, data_app, hand_app


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

    cfg = load_synth_config(config_path("synth/tiny" if tiny else config))
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


@hand_app.command("convert")
def hand_convert(
    mano_dir: Path = typer.Option(..., help="Folder with MANO_RIGHT.pkl / MANO_LEFT.pkl (read once, restricted unpickler)."),
    out: Path = typer.Option(..., help="Folder for MANO_RIGHT.npz / MANO_LEFT.npz (plain arrays, no pickle)."),
) -> None:
    """Convert MANO pickles to .npz files that load without unpickling; then pass --mano-dir OUT."""
    from handflow.hand.mano import convert_mano_dir

    for path in convert_mano_dir(mano_dir, out):
        console.print(f"wrote {path}", markup=False, highlight=False, soft_wrap=True)
