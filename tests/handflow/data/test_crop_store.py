"""The crop store: rows written in chunks read back exactly, by batch in any order, and validated."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from handflow.preload import open_split, preload_split
from handflow.data.store import CropStore, StoreWriter
from handflow.errors import HandflowError
from handflow.hand.model import HandModel
from handflow.synth.mano import default_mano_dir


def _rows(n: int, start: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(start)
    return {"image": torch.randint(0, 256, (n, 3, 4, 4), generator=g, dtype=torch.uint8),
            "y": torch.arange(start, start + n, dtype=torch.float32)[:, None].repeat(1, 5),
            "ann_mask": torch.rand(n, 3, generator=g) > 0.5}


def test_rows_in_any_order_equal_what_was_written(tmp_path):
    w = StoreWriter(tmp_path / "s")
    chunks = [_rows(7, 0), _rows(5, 7)]
    for c in chunks:
        w.append(c)
    store = w.finish({"skipped_no_mano": 2})
    full = {k: torch.cat([c[k] for c in chunks]) for k in chunks[0]}
    assert len(store) == 12 and set(store.columns) == set(full)
    idx = torch.tensor([11, 0, 5, 5, 7])
    got = store.rows(idx)
    for k in full:
        assert got[k].dtype == full[k].dtype
        assert torch.equal(got[k], full[k][idx])
    assert torch.equal(store.column("y"), full["y"])
    loaded = store.load()
    assert int(loaded["skipped_no_mano"]) == 2 and torch.equal(loaded["image"], full["image"])
    assert got["y"][0, 0] == 11.0  # the row's own values, not its neighbour's


def test_bad_rows_and_truncated_files_are_rejected(tmp_path):
    w = StoreWriter(tmp_path / "s")
    w.append(_rows(3, 0))
    with pytest.raises(HandflowError, match="differ"):
        w.append({"image": torch.zeros(2, 3, 5, 5, dtype=torch.uint8), "y": torch.zeros(2, 5),
                  "ann_mask": torch.zeros(2, 3, dtype=torch.bool)})
    store = w.finish()
    with pytest.raises(HandflowError, match="out of range"):
        store.rows(torch.tensor([3]))
    store.close()
    with open(tmp_path / "s" / "image.bin", "r+b") as f:
        f.truncate(10)
    with pytest.raises(HandflowError, match="image.bin holds 10 bytes"):
        CropStore(tmp_path / "s")


def test_aborted_writer_leaves_nothing(tmp_path):
    w = StoreWriter(tmp_path / "s")
    w.append(_rows(2, 0))
    w.abort()
    assert not (tmp_path / "s").exists() and not any(tmp_path.iterdir())


def test_the_same_store_finished_twice_keeps_the_first_under_its_reader(tmp_path):
    """Two trainers building the same store at once: the second to finish keeps the first's folder, which the
    first already reads (its row files stay the ones it opened); a different store still replaces it."""
    first = StoreWriter(tmp_path / "s")
    first.append(_rows(4, 0))
    store = first.finish()
    inode = (tmp_path / "s" / "y.bin").stat().st_ino
    second = StoreWriter(tmp_path / "s")
    second.append(_rows(4, 0))
    assert len(second.finish()) == 4
    assert (tmp_path / "s" / "y.bin").stat().st_ino == inode
    assert torch.equal(store.rows(torch.tensor([3]))["y"], _rows(4, 0)["y"][3:4])
    other = StoreWriter(tmp_path / "s")
    other.append(_rows(5, 0))
    assert len(other.finish()) == 5 and (tmp_path / "s" / "y.bin").stat().st_ino != inode
    assert [p.name for p in tmp_path.iterdir()] == ["s"]


def test_split_store_streams_in_chunks_and_matches_the_whole_read(tiny_data_root):
    hm = HandModel.from_dir(default_mano_dir())
    store = open_split(tiny_data_root, "train", 32, hm, chunk=3)  # several chunks, last one partial
    data = preload_split(tiny_data_root, "train", 32, hm)  # same key: the same store, read whole
    assert len(store) == len(data["image"]) > 3
    assert data["image"].dtype == torch.uint8 and data["image"].shape[1:] == (3, 32, 32)
    idx = torch.randperm(len(store), generator=torch.Generator().manual_seed(0))[:5]
    batch = store.rows(idx, ("image", "y"))
    assert torch.equal(batch["image"], data["image"][idx]) and torch.equal(batch["y"], data["y"][idx])
    assert np.isfinite(data["y"].numpy()).all()
