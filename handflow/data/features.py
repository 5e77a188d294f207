"""A frozen encoder's features of a crop store, computed once and kept beside it.

With ``train_encoder = false`` the image encoder gives the same feature for an image on every step of every
epoch, so a training run that re-encodes each batch spends most of its time recomputing constants. The
features of the whole split are instead written once into a store of their own (the layout of
:mod:`handflow.data.store`, one column ``ctx (C,) float32``) named by the crop store it was computed from and
a digest of the encoder that computed it: another encoder, precision or split gets another store, never a
stale one. A training step then reads ``ctx`` rows instead of image rows (2 KiB against 48 KiB per image at
128 px) and runs only the heads.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Callable

import torch

from handflow.cache import cache_dir
from handflow.data.store import CropStore, StoreWriter
from handflow.errors import HandflowError
from handflow.progress import track

__all__ = ["open_features", "FEATURES_VERSION"]

# bump when what a stored feature means changes (the encoder's input scaling, the column's layout)
FEATURES_VERSION = 1


def _features_path(store: CropStore, encoder_key: str) -> Path:
    key = hashlib.sha256(json.dumps([FEATURES_VERSION, store.path.name, store.count, encoder_key]).encode())
    return cache_dir() / "features" / f"{store.path.name}-{key.hexdigest()[:16]}"


@torch.no_grad()
def open_features(store: CropStore, encode: Callable[[torch.Tensor], torch.Tensor], encoder_key: str,
                  device: torch.device | str = "cpu", batch: int = 64) -> CropStore:
    """The features of every image of ``store`` as a store with one column ``ctx`` (built on first use).

    Arguments:
        store: the crop store whose ``image`` column (uint8 ``(N, 3, S, S)``) is encoded.
        encode: ``images (B, 3, S, S)`` in [0, 1] -> ``ctx (B, C)``; must not depend on the batch it is given
            (an encoder in eval mode), since row ``i`` of the result is read alone.
        encoder_key: names ``encode`` (its weights, precision): part of the store's name.
        device: where ``encode`` runs; the features are stored as float32 on disk.
        batch: images encoded at once.

    Returns:
        a :class:`~handflow.data.store.CropStore` of ``N`` rows, ``ctx (C,) float32``, row ``i`` the feature of
        ``store``'s image ``i``.

    Example:
        >>> feats = open_features(train_store, model.encode, encoder_digest)
        >>> ctx = feats.rows(torch.tensor([3, 7]))["ctx"]      # (2, C)
    """
    path = _features_path(store, encoder_key)
    if (path / "meta.json").is_file():
        try:
            feats = CropStore(path)
            if len(feats) == len(store) and feats.columns == ("ctx",):
                return feats
        except HandflowError:
            pass
        shutil.rmtree(path, ignore_errors=True)  # damaged or foreign: rebuilt, never trusted
    writer = StoreWriter(path)
    try:
        starts = range(0, len(store), batch)
        for a in track(starts, "encoding the training split once (frozen encoder)"):
            idx = torch.arange(a, min(a + batch, len(store)))
            images = store.rows(idx, ("image",))["image"].to(device).float() / 255.0
            writer.append({"ctx": encode(images).float().cpu()})
        return writer.finish({"source": store.path.name, "encoder": encoder_key})
    except BaseException:
        writer.abort()
        raise
