"""Checkpoints: written atomically, read with ``weights_only=True`` (a checkpoint is untrusted input).

A checkpoint is a dict with ``format`` (``"handflow-checkpoint/1"``), ``kind`` (model kind, e.g.
``"handflow"``), ``config`` (resolved config as plain dict), ``version``, ``state_dict`` and, for
training checkpoints, optimiser/RNG state. Only tensors, dicts, lists and scalars, so the safe
unpickler loads it.

Integrity: files are written to a temporary name and renamed, so a killed writer never leaves a torn
checkpoint under the real name; and ``state_sha256`` (SHA-256 over the state dict's names, dtypes,
shapes and bytes) is stored in the payload and checked on load, because torch's zip reader does not
verify CRCs — a flipped byte in a weight would otherwise load silently. Checkpoints written before
the checksum existed (no ``state_sha256``) still load.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import torch

from handflow.errors import HandflowError
from handflow.io import atomic_path

FORMAT = "handflow-checkpoint/1"


def state_checksum(state_dict: dict) -> str:
    """Hex SHA-256 of a state dict: every key, dtype, shape and the raw bytes of its tensor."""
    h = hashlib.sha256()
    for k in sorted(state_dict):
        v = state_dict[k]
        h.update(str(k).encode())
        if isinstance(v, torch.Tensor):
            t = v.detach().cpu().contiguous()
            h.update(f"{t.dtype}{tuple(t.shape)}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        else:
            h.update(repr(v).encode())
    return h.hexdigest()


def weights_digest(state_dict: dict) -> str:
    """16 hex digits naming a module's weights (names and float32 values, sorted by name): the cache key of
    results computed through them (``registry.model_digest``, ``hand.model.hand_model_digest``)."""
    return weights_hash(state_dict).hexdigest()[:16]


def weights_hash(state_dict: dict):
    """The running SHA-256 behind :func:`weights_digest`, for a digest that covers more than the weights."""
    h = hashlib.sha256()
    for k, v in sorted(state_dict.items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().float().numpy().tobytes())
    return h


def save_checkpoint(path: str | Path, payload: dict) -> None:
    payload = {"format": FORMAT, **payload}
    if isinstance(payload.get("state_dict"), dict):
        payload["state_sha256"] = state_checksum(payload["state_dict"])
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | Path, kinds: tuple[str, ...] | None = None, map_location="cpu") -> dict:
    """Load and validate; one-line HandflowError for missing, corrupt, foreign or wrong-kind files."""
    path = Path(path)
    if not path.is_file():
        raise HandflowError(f"missing checkpoint: {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, zipfile.BadZipFile, io.UnsupportedOperation, OSError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise HandflowError(f"corrupt or unreadable checkpoint {path}: {first}") from err
    except Exception as err:  # the safe unpickler refuses foreign objects with assorted types
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise HandflowError(f"checkpoint {path} is not a plain-tensor checkpoint: {first[:200]}") from err
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise HandflowError(f"{path} is not a viewselect/handflow checkpoint")
    for key in ("kind", "config", "state_dict"):
        if key not in payload:
            raise HandflowError(f"checkpoint {path} lacks {key!r}")
    if not isinstance(payload["state_dict"], dict):
        raise HandflowError(f"checkpoint {path}: 'state_dict' is not a dict")
    digest = payload.get("state_sha256")
    if digest is not None and digest != state_checksum(payload["state_dict"]):
        raise HandflowError(f"corrupt checkpoint {path}: the weights do not match their stored checksum")
    if kinds is not None and payload["kind"] not in kinds:
        raise HandflowError(f"checkpoint {path} holds a {payload['kind']!r} model, expected one of {kinds}")
    return payload


def load_state_strict(module: torch.nn.Module, state_dict: dict, path: str | Path) -> None:
    """``load_state_dict`` with a one-line error naming the first mismatching key."""
    own = module.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    if missing or unexpected:
        what = f"missing key {missing[0]!r}" if missing else f"unexpected key {unexpected[0]!r}"
        raise HandflowError(f"checkpoint {path} does not fit this architecture: {what}")
    for k, v in state_dict.items():
        if tuple(v.shape) != tuple(own[k].shape):
            raise HandflowError(
                f"checkpoint {path} does not fit this architecture: {k!r} has shape {tuple(v.shape)}, "
                f"expected {tuple(own[k].shape)}"
            )
    module.load_state_dict({k: v.to(own[k].dtype) for k, v in state_dict.items()})
