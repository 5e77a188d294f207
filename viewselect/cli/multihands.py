"""The MultiHands commands: ``annotate``, ``evaluate``, ``evaluate-model``, ``multihands-report``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from handflow.errors import HandflowError
from viewselect.cli.app import (
    DataRoot,
    EXIT_SKIPPED,
    Frames,
    ManoDir,
    Seed,
    SequenceOrAll,
    Split,
    app,
    config_path,
    console,
    err_console,
)


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
    from viewselect.engine.distributed import ProcessGroup
    from viewselect.manodir import mano_folder

    cfg = load_config(MultiHandsConfig, config_path(config))
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
    from viewselect.outputs.terminal import print_annotate_summary

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
    from viewselect.multihands.evaluation import EvaluationRequest, parse_models, run_evaluation, tables, write_evaluation

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
    from viewselect.multihands.report import write_multihands_report

    root = data_root or ensure_default_data()
    ds = InterHandDataset(root, split, selection=sequence, max_frames=frames, mano_dir=str(mano_folder(mano_dir)))
    command = " ".join(["viewselect multihands-report", *sys.argv[2:]]) if sys.argv[1:2] == ["multihands-report"] \
        else "viewselect multihands-report"
    res = write_multihands_report(ds, out, command)
    console.print(json.dumps(res["spread"], indent=2), markup=False, highlight=False)
    console.print(f"wrote {out}", markup=False, highlight=False, soft_wrap=True)
