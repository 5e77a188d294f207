"""The frozen encoder's feature store: rows match the encoder, built once per (store, encoder), rebuilt when damaged."""

from __future__ import annotations

import torch

from handflow.data.features import open_features
from handflow.data.store import StoreWriter


def _store(tmp_path, n=10):
    """A crop store of ``n`` random 4 x 4 images (its features go to a cache of this test's own)."""
    g = torch.Generator().manual_seed(0)
    w = StoreWriter(tmp_path / "crops" / "train-abc")
    w.append({"image": torch.randint(0, 256, (n, 3, 4, 4), dtype=torch.uint8, generator=g),
              "y": torch.randn(n, 5, generator=g)})
    return w.finish()


class _Encoder:
    """``images (B, 3, 4, 4)`` -> per-channel means ``(B, 3)``; counts the images it was given."""

    def __init__(self):
        self.images = 0

    def __call__(self, images):
        self.images += len(images)
        return images.mean((2, 3)).double()  # stored as float32 whatever the encoder returns


def test_rows_are_the_encoder_features_of_the_same_rows(tmp_path, monkeypatch):
    monkeypatch.setenv("VIEWSELECT_CACHE", str(tmp_path / "cache"))
    store = _store(tmp_path)
    enc = _Encoder()
    feats = open_features(store, enc, "enc-1", batch=4)
    assert len(feats) == 10 and feats.columns == ("ctx",) and enc.images == 10
    idx = torch.tensor([7, 0, 3])
    expect = store.rows(idx, ("image",))["image"].float().div(255).mean((2, 3))
    got = feats.rows(idx)["ctx"]
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, expect, rtol=0, atol=1e-6)


def test_built_once_per_encoder_and_rebuilt_when_damaged(tmp_path, monkeypatch):
    monkeypatch.setenv("VIEWSELECT_CACHE", str(tmp_path / "cache"))
    store = _store(tmp_path)
    enc = _Encoder()
    first = open_features(store, enc, "enc-1")
    open_features(store, enc, "enc-1")
    assert enc.images == 10  # the second call read the store
    other = open_features(store, enc, "enc-2")
    assert other.path != first.path and enc.images == 20  # another encoder: another store
    (first.path / "ctx.bin").write_bytes(b"\0" * 8)  # a torn file is never trusted
    again = open_features(store, enc, "enc-1")
    assert enc.images == 30 and len(again) == 10
