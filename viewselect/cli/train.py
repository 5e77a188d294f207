"""Training: ``train-model``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from viewselect.cli.app import app, config_path, console, print_notes


@app.command("train-model")
def train_model(
    config: str = typer.Option("default", help="Training config: NAME under configs/ or a TOML path."),
    out: Optional[Path] = typer.Option(None, help="Run folder (default: runs/<config name>)."),
    resume: bool = typer.Option(False, help="Continue bit-for-bit from OUT/last.pt."),
    data_root: Optional[Path] = typer.Option(None, help="InterHand2.6M-layout root (overrides the config)."),
    mano_dir: Optional[Path] = typer.Option(None, help="Folder with MANO_RIGHT.pkl / MANO_LEFT.pkl (overrides the config)."),
    backbone_weights: Optional[Path] = typer.Option(None, help="Local torchvision ImageNet ResNet state dict."),
    seed: Optional[int] = typer.Option(None, help="Training seed (overrides the config's): starting weights, image order."),
    device: Optional[str] = typer.Option(None, help="cpu or cuda (default: cuda when available)."),
) -> None:
    """Train HandFlowNet from a config; writes OUT/last.pt (resumable), OUT/model.pt (compact), OUT/log.csv."""
    import dataclasses

    from handflow.model.registry import export_model
    from handflow.train import load_train_config, precision_note, train

    path = config_path(config)
    cfg = load_train_config(path)
    data = dataclasses.replace(cfg.data, root=str(data_root) if data_root else cfg.data.root,
                               mano_dir=str(mano_dir) if mano_dir else cfg.data.mano_dir)
    model = dataclasses.replace(cfg.model, backbone_weights=str(backbone_weights)) if backbone_weights else cfg.model
    cfg = dataclasses.replace(cfg, data=data, model=model, seed=cfg.seed if seed is None else seed)
    out = out or Path("runs") / path.stem
    print_notes([n for n in [precision_note(cfg, device)] if n])
    row = train(cfg, out, resume=resume, device=device)
    if row and row.get("rank", 0) == 0:  # under torchrun only rank 0 writes
        export_model(out / "last.pt", out / "model.pt")
        console.print(f"wrote {out / 'model.pt'} (val MPJPE {row.get('val_mpjpe_global_mm', float('nan')):.1f} mm)")
