"""Build and load models by kind; export a training checkpoint as a compact shipped model."""

from __future__ import annotations

from pathlib import Path

import torch

from handflow.checkpoint import load_checkpoint, load_state_strict, save_checkpoint
from handflow.config import from_dict, to_dict
from handflow.errors import HandflowError
from handflow.model.baselines import BASELINES
from handflow.model.config import MODEL_KINDS, ModelConfig
from handflow.model.handflownet import HandFlowNet
from handflow.model.protocol import PoseModel


def build_model(cfg: ModelConfig, hand_model) -> PoseModel:
    """The model ``cfg.kind`` names: HandFlowNet or a baseline (``handflow.model.baselines``)."""
    if cfg.kind == "handflow":
        return HandFlowNet(cfg, hand_model)
    if cfg.kind in BASELINES:
        return BASELINES[cfg.kind](cfg, hand_model)
    raise HandflowError(f"model.kind: {cfg.kind!r} is not one of {MODEL_KINDS}")


def model_config_of(payload: dict, path: str | Path) -> ModelConfig:
    cfg = payload["config"]
    model_cfg = cfg.get("model", cfg) if isinstance(cfg, dict) else None
    if not isinstance(model_cfg, dict):
        raise HandflowError(f"checkpoint {path}: config has no model table")
    model_cfg = {k: v for k, v in model_cfg.items() if k != "backbone_weights"}
    return from_dict(ModelConfig, model_cfg, where=f"{path}:config.model")


def load_model(path: str | Path, hand_model, device: str | torch.device = "cpu") -> tuple[PoseModel, dict]:
    """A model ready for inference (eval mode, float32) and its checkpoint payload (minus weights)."""
    payload = load_checkpoint(path, kinds=MODEL_KINDS)
    cfg = model_config_of(payload, path)
    if cfg.kind != payload["kind"]:
        raise HandflowError(f"checkpoint {path} is marked {payload['kind']!r} but its config builds {cfg.kind!r}")
    model = build_model(cfg, hand_model)
    load_state_strict(model, payload["state_dict"], path)
    model.to(device).float().eval()
    meta = {k: v for k, v in payload.items() if k not in ("state_dict", "optimizer", "rng")}
    return model, meta


def export_model(train_checkpoint: str | Path, out: str | Path, half: bool = True, **extra) -> Path:
    """Strip optimiser/RNG state and store weights in half precision (running stats stay float32)."""
    payload = load_checkpoint(train_checkpoint, kinds=MODEL_KINDS)
    state = {}
    for k, v in payload["state_dict"].items():
        keep32 = not v.is_floating_point() or "running_" in k or k.endswith(("y_mean", "y_std"))
        state[k] = v if (keep32 or not half) else v.to(torch.float16)
    shipped = {k: v for k, v in payload.items() if k not in ("optimizer", "rng", "state_dict", "format")}
    shipped.update(state_dict=state, **extra)
    save_checkpoint(out, shipped)
    return Path(out)


def is_encoder_key(name: str) -> bool:
    """Whether a state-dict entry is part of what ``model.encode`` computes with: the encoder's weights and
    BatchNorm statistics, and the image normalisation (``img_mean``, ``img_std``)."""
    return name.startswith("encoder.") or name in ("img_mean", "img_std")


def encoder_hash(model: torch.nn.Module):
    """Running SHA-256 over the model's :func:`is_encoder_key` entries: equal for heads on one frozen encoder.
    Key of the feature store; the caller may ``update`` it with how the encoder runs (precision)."""
    from handflow.checkpoint import weights_hash

    return weights_hash({k: v for k, v in model.state_dict().items() if is_encoder_key(k)})


def model_digest(model: torch.nn.Module) -> str:
    """Content hash of the weights: a cache key that changes whenever the model does."""
    from handflow.checkpoint import weights_digest

    return weights_digest(model.state_dict())


__all__ = ["build_model", "load_model", "export_model", "model_digest", "encoder_hash", "is_encoder_key", "model_config_of", "to_dict"]
