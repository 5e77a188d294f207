"""MultiHands files: round trip, atomic write, and one-line errors naming the file for bad ones."""

from __future__ import annotations

import json

import numpy as np
import pytest

from handflow.errors import HandflowError
from handflow.multihands.store import FORMAT, read_sequence, sequence_path, write_sequence


def _annotations(counts, seed=0):
    rng = np.random.default_rng(seed)
    return [{"pose": rng.normal(size=(k, 2, 48)), "shape": rng.normal(size=(k, 2, 10)),
             "trans": rng.normal(size=(k, 2, 3))} for k in counts]


def _write(path, counts=(1, 3, 2)):
    anns = _annotations(counts)
    write_sequence(path, [f"40000{i}" for i in range(len(counts))], [10000 + i for i in range(len(counts))], anns,
                   {"key": "abc", "counts": {"images": len(counts)}})
    return anns


def test_round_trip_pads_ragged_images(tmp_path):
    path = sequence_path(tmp_path, "test", 0, "0001_touch")
    anns = _write(path)
    assert not [p for p in path.parent.iterdir() if p != path]  # atomic: no temporary file left
    arrays, meta = read_sequence(path)
    assert meta == {"format": FORMAT, "key": "abc", "counts": {"images": 3}}
    assert arrays["camera"].tolist() == ["400000", "400001", "400002"]
    assert arrays["frame"].dtype == np.int64 and arrays["frame"].tolist() == [10000, 10001, 10002]
    assert arrays["count"].tolist() == [1, 3, 2]
    for k, shp in (("pose", (2, 48)), ("shape", (2, 10)), ("trans", (2, 3))):
        assert arrays[k].shape == (3, 3, *shp) and arrays[k].dtype == np.float32
        for i, a in enumerate(anns):
            n = len(a[k])
            assert np.array_equal(arrays[k][i, :n], a[k].astype(np.float32))
            assert not arrays[k][i, n:].any()  # rows past the count are zero
    with np.load(path, allow_pickle=False) as z:  # plain arrays, readable without handflow
        assert set(z.files) == {"camera", "frame", "count", "pose", "shape", "trans", "meta"}


def test_a_sequence_with_every_image_skipped_round_trips(tmp_path):
    path = tmp_path / "empty.npz"
    write_sequence(path, [], [], [], {"key": "k"})
    arrays, meta = read_sequence(path)
    assert arrays["camera"].shape == (0,) and arrays["pose"].shape[0] == 0 and meta["key"] == "k"


def test_sequence_path_layout_and_odd_names(tmp_path):
    p = sequence_path(tmp_path, "val", 3, "0005_point_palm")
    assert p == tmp_path / "annotations" / "val" / "InterHand2.6M_val_MultiHands" / "Capture3" / "0005_point_palm.npz"
    for odd in ("../../escape", "a/b", "..", ""):
        q = sequence_path(tmp_path, "val", 3, odd)
        assert q.parent == p.parent and "/" not in q.name and q.name not in ("..npz", "...npz")


def _save(path, **arrays):
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def _good_arrays(n=2, K=3, meta=None):
    return dict(camera=np.array(["1", "2"][:n]), frame=np.arange(n, dtype=np.int64), count=np.full(n, K, np.int32),
                pose=np.zeros((n, K, 2, 48), np.float32), shape=np.zeros((n, K, 2, 10), np.float32),
                trans=np.zeros((n, K, 2, 3), np.float32),
                meta=np.asarray(json.dumps(meta if meta is not None else {"format": FORMAT})))


def _bad_files(tmp_path):
    good = tmp_path / "good.npz"
    _write(good)
    yield "garbage", lambda p: p.write_bytes(b"this is not a zip file"), "not a readable MultiHands file"
    yield "truncated", lambda p: p.write_bytes(good.read_bytes()[: good.stat().st_size // 2]), "not a readable"
    yield "empty", lambda p: p.write_bytes(b""), "not a readable"
    yield "no-pose", lambda p: _save(p, **{k: v for k, v in _good_arrays().items() if k != "pose"}), "missing array 'pose'"
    a = _good_arrays()
    a["pose"] = np.zeros((2, 3, 2, 47), np.float32)
    yield "pose-47", lambda p: _save(p, **a), "array 'pose' has shape"
    b = _good_arrays()
    b["trans"] = np.zeros((2, 2, 2, 3), np.float32)  # K differs from pose's
    yield "trans-K", lambda p: _save(p, **b), "array 'trans' has shape"
    c = _good_arrays()
    c["shape"][0, 0, 0, 0] = np.nan
    yield "nan", lambda p: _save(p, **c), "non-finite"
    d = _good_arrays()
    d["count"] = np.array([0, 3], np.int32)
    yield "count-0", lambda p: _save(p, **d), "'frame'/'count'"
    e = _good_arrays()
    e["frame"] = np.arange(3)
    yield "frame-n", lambda p: _save(p, **e), "'frame'/'count'"
    yield "format", lambda p: _save(p, **_good_arrays(meta={"format": "handflow-multihands/99"})), "format"
    yield "no-format", lambda p: _save(p, **_good_arrays(meta={})), "format None"
    f = _good_arrays()
    f["meta"] = np.asarray("{not json")
    yield "meta", lambda p: _save(p, **f), "'meta' is not JSON"
    g = _good_arrays()
    g["pose"] = np.array([object()], dtype=object)
    yield "pickled", lambda p: _save(p, **g), "not a readable"


def test_bad_files_are_one_line_errors_naming_the_file(tmp_path):
    names = []
    for name, make, needle in _bad_files(tmp_path):
        path = tmp_path / f"Capture0-{name}.npz"
        make(path)
        with pytest.raises(HandflowError) as err:
            read_sequence(path)
        msg = str(err.value)
        assert str(path) in msg and needle in msg and "\n" not in msg, (name, msg)
        names.append(name)
    assert len(names) == 13
    with pytest.raises(HandflowError, match="missing MultiHands file: .*nope.npz"):
        read_sequence(tmp_path / "nope.npz")
