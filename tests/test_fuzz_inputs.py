"""Fuzzing (hypothesis) of the annotation reader and the sequence-spec parser: whatever the input,
the only exception is the project's own ``HandflowError``, with a one-line message."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from handflow.data.interhand import InterHandDataset
from handflow.data.selection import parse_selection, select_sequences
from handflow.errors import HandflowError

FUZZ = settings(max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                        HealthCheck.too_slow])


def _one_line(err: Exception) -> None:
    assert isinstance(err, HandflowError), f"{type(err).__name__}: {err}"
    assert "\n" not in str(err) and str(err)


# ------------------------------------------------------------------------------------------ a valid base
def _hand_joints(offset: float) -> list:
    return [[offset + 10.0 * (j % 5), 5.0 * (j // 5), 0.0] for j in range(21)]


BASE = {
    "data": {
        "images": [{"id": 0, "file_name": "Capture0/seq/cam1/image0.jpg", "width": 64, "height": 64,
                    "capture": 0, "seq_name": "seq", "camera": "1", "frame_idx": 0}],
        "annotations": [{"id": 0, "image_id": 0, "bbox": [0, 0, 64, 64], "joint_valid": [[1]] * 42,
                         "hand_type": "interacting", "hand_type_valid": 1}],
    },
    "camera": {"0": {"campos": {"1": [0.0, 0.0, -500.0]}, "camrot": {"1": [[1, 0, 0], [0, 1, 0], [0, 0, 1]]},
                     "focal": {"1": [500.0, 500.0]}, "princpt": {"1": [32.0, 32.0]}}},
    "joint_3d": {"0": {"0": {"world_coord": _hand_joints(-60) + _hand_joints(20), "joint_valid": [1] * 42,
                             "hand_type": "interacting", "hand_type_valid": True}}},
    "MANO_NeuralAnnot": {"0": {"0": {"right": {"pose": [0.0] * 48, "shape": [0.0] * 10, "trans": [0, 0, 0]},
                                     "left": None}}},
}

json_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8),
)
json_value = st.recursive(json_leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)), max_leaves=12)


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:3]):  # the first entries are enough: the rest have the same shape
            yield from _paths(v, prefix + (i,))


ALL_PATHS = [(kind, p) for kind in BASE for p in _paths(BASE[kind])]


def _set(obj, path, value):
    if not path:
        return value
    parent = obj
    for k in path[:-1]:
        parent = parent[k]
    parent[path[-1]] = value
    return obj


def _special_numbers():
    """Occasionally a NaN / infinity / huge value, which json.dumps writes as NaN / Infinity / digits."""
    return st.sampled_from([math.nan, math.inf, -math.inf, 1e308, 10**400, -1, 0, 41, "42", [], {}])


@pytest.fixture(scope="module")
def fuzz_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fuzz")
    img = root / "images" / "test" / "Capture0" / "seq" / "cam1" / "image0.jpg"
    img.parent.mkdir(parents=True)
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(img)
    (root / "annotations" / "test").mkdir(parents=True)
    return root


@pytest.fixture(scope="module")
def synthetic_mano() -> str:
    """The MANO folder the reader computes visibility with (BASE stores no ``joint_visible``)."""
    from handflow.synth.mano import default_mano_dir

    return str(default_mano_dir())


def _write(root: Path, files: dict) -> None:
    for kind, obj in files.items():
        text = obj if isinstance(obj, str) else json.dumps(obj)
        (root / "annotations" / "test" / f"InterHand2.6M_test_{kind}.json").write_text(text)


def _read(root: Path, mano_dir: str) -> None:
    """Build the dataset and touch every item the way ``rank`` and training do."""
    try:
        ds = InterHandDataset(root, "test", crop_px=16, mano_dir=mano_dir)
        for i in range(len(ds)):
            ds.geometry(i, (64, 64))
        ds.available()
    except Exception as err:  # noqa: BLE001 - the point of the test
        _one_line(err)


def test_base_annotations_are_valid(fuzz_root, synthetic_mano):
    _write(fuzz_root, BASE)
    ds = InterHandDataset(fuzz_root, "test", crop_px=16, mano_dir=synthetic_mano)
    assert len(ds) == 1 and ds[0]["image"].shape == (3, 16, 16)


@FUZZ
@given(which=st.sampled_from(ALL_PATHS), value=st.one_of(json_value, _special_numbers()))
def test_fuzz_annotation_field(fuzz_root, synthetic_mano, which, value):
    """One field (or a whole subtree, or a whole file) of a valid annotation set replaced."""
    kind, path = which
    files = copy.deepcopy(BASE)
    files[kind] = _set(files[kind], path, value)
    _write(fuzz_root, files)
    _read(fuzz_root, synthetic_mano)


@FUZZ
@given(kind=st.sampled_from(list(BASE)), cut=st.floats(0, 1), raw=st.binary(max_size=40))
def test_fuzz_annotation_bytes(fuzz_root, synthetic_mano, kind, cut, raw):
    """A file truncated at a random point, or replaced by random bytes."""
    files = copy.deepcopy(BASE)
    text = json.dumps(files[kind])
    _write(fuzz_root, files)
    p = fuzz_root / "annotations" / "test" / f"InterHand2.6M_test_{kind}.json"
    p.write_text(text[: int(len(text) * cut)])
    _read(fuzz_root, synthetic_mano)
    p.write_bytes(raw)
    _read(fuzz_root, synthetic_mano)


# ------------------------------------------------------------------------------------------ sequence specs
AVAILABLE = {0: ["0001_touch", "0002_lock"], 1: ["0005_point"], 3: ["ROM"]}
spec_term = st.one_of(
    st.text(max_size=12),
    st.builds(lambda a, b, s: f"Capture{a}{b}{s}", st.integers(0, 10**20),
              st.sampled_from(["", "-0", "-1", "-3", "-99999999999", "-x", "--1"]),
              st.sampled_from(["", "/0001_touch", "/ROM", "/", "/a/b", "/ ", "/nope"])),
    st.sampled_from(["Capture", "capture0", " Capture0 ", "Capture٣", "Capture0-1/ROM", "Capture-1"]),
)


@settings(max_examples=300, deadline=None, database=None)
@given(terms=st.lists(spec_term, min_size=0, max_size=4), sep=st.sampled_from([",", ", ", ",,", ";"]),
       available=st.one_of(st.just(AVAILABLE), st.dictionaries(st.integers(0, 5), st.lists(
           st.text(min_size=1, max_size=5), max_size=3), max_size=3)))
def test_fuzz_sequence_spec(terms, sep, available):
    spec = sep.join(terms)
    try:
        parse_selection(spec)
        pairs = select_sequences(spec, available)
    except Exception as err:  # noqa: BLE001
        _one_line(err)
    else:
        assert pairs and all(c in available and s in available[c] for c, s in pairs)


@settings(max_examples=100, deadline=None, database=None)
@given(st.one_of(st.none(), st.integers(), st.lists(st.text(max_size=3), max_size=2), st.binary(max_size=5)))
def test_fuzz_sequence_spec_wrong_type(spec):
    try:
        parse_selection(spec)
    except Exception as err:  # noqa: BLE001
        _one_line(err)
