import os
import pickle
import sys
import types

import numpy as np
import pytest
import scipy.sparse
import torch

from handflow.errors import HandflowError
from handflow.hand.mano import (
    build_smplx_mano,
    fix_left_shapedirs,
    has_left_shapedirs_bug,
    load_mano_dir,
    load_mano_file,
)


@pytest.fixture(scope="module")
def right(mano_dir):
    return load_mano_file(mano_dir / "MANO_RIGHT.pkl")


def _chumpy_module(monkeypatch):
    """Register fake ``chumpy`` / ``chumpy.ch`` modules whose ``Ch`` pickles like chumpy's (state in __dict__)."""
    chumpy = types.ModuleType("chumpy")
    ch = types.ModuleType("chumpy.ch")

    class Ch:
        def __init__(self, x):
            self.x = x
            self._dirty_vars = set()
            self.label = None

    Ch.__module__ = "chumpy.ch"
    Ch.__qualname__ = Ch.__name__ = "Ch"
    ch.Ch = Ch
    chumpy.ch = ch
    monkeypatch.setitem(sys.modules, "chumpy", chumpy)
    monkeypatch.setitem(sys.modules, "chumpy.ch", ch)
    return Ch


def _real_like(data, Ch):
    """The layout of the official MANO pickles: chumpy arrays, a scipy sparse J_regressor, no extras."""
    out = {k: v for k, v in data.items() if k not in ("tip_vertex_ids", "prior_axes", "prior_limits",
                                                       "synthetic_version")}
    for key in ("v_template", "shapedirs", "hands_mean", "hands_components"):
        out[key] = Ch(np.asarray(data[key]))
    out["J_regressor"] = scipy.sparse.csc_matrix(data["J_regressor"])
    out["f"] = data["f"].astype(np.uint32)
    out["kintree_table"] = data["kintree_table"].astype(np.uint32)
    out["bs_style"] = "lbs"
    return out


@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_loads_chumpy_objects_and_sparse_regressor(tmp_path, monkeypatch, right, protocol):
    Ch = _chumpy_module(monkeypatch)
    blob = pickle.dumps(_real_like(right, Ch), protocol=protocol)
    monkeypatch.delitem(sys.modules, "chumpy.ch")
    monkeypatch.delitem(sys.modules, "chumpy")  # as on Python 3.11 / numpy 2: chumpy does not import
    path = tmp_path / "MANO_RIGHT.pkl"
    path.write_bytes(blob)
    data = load_mano_file(path)
    for key in ("v_template", "shapedirs", "hands_mean", "hands_components", "J_regressor", "posedirs", "weights"):
        assert type(data[key]) is np.ndarray and data[key].dtype == np.float64
        np.testing.assert_array_equal(data[key], right[key])
    assert data["f"].dtype == np.int64
    np.testing.assert_array_equal(data["f"], right["f"])
    assert data["kintree_table"][0, 0] == 4294967295
    assert data["bs_style"] == "lbs"


def test_validated_dict_builds_smplx_without_trainable_parameters(right):
    layer = build_smplx_mano(right, is_rhand=True)
    assert list(layer.parameters()) == []
    out = layer(betas=torch.zeros(2, 10), global_orient=torch.zeros(2, 3), hand_pose=torch.zeros(2, 45),
                transl=torch.zeros(2, 3))
    assert out.vertices.shape == (2, right["v_template"].shape[0], 3)


class _Evil:
    """Unpickling this runs ``touch PATH``: the file existing afterwards means the code ran."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch '{self.path}'",))


def test_refuses_code_in_a_pickle(tmp_path):
    path = tmp_path / "MANO_RIGHT.pkl"
    marker = tmp_path / "pwned"
    path.write_bytes(pickle.dumps({"v_template": _Evil(marker)}))
    try:
        with pytest.raises(HandflowError, match=r"refusing to unpickle .*system") as err:
            load_mano_file(path)
    finally:
        assert not marker.exists(), "unpickling the MANO file ran its code"
    assert str(path) in str(err.value)


def test_left_shapedirs_bug_is_detected_and_fixed(mano_dir):
    right, left = load_mano_dir(mano_dir)
    assert not has_left_shapedirs_bug(left, right)  # the synthetic left is a correct mirror
    assert fix_left_shapedirs(left, right) is left
    buggy = dict(left, shapedirs=left["shapedirs"].copy())
    buggy["shapedirs"][:, 0, :] *= -1  # what the official MANO_LEFT.pkl ships
    assert has_left_shapedirs_bug(buggy, right)
    fixed = fix_left_shapedirs(buggy, right)
    np.testing.assert_array_equal(fixed["shapedirs"], left["shapedirs"])
    assert buggy["shapedirs"][0, 0, 0] == -left["shapedirs"][0, 0, 0]  # input untouched


def test_load_mano_dir_fixes_a_buggy_left_file(tmp_path, mano_dir):
    folder = tmp_path / "mano"
    folder.mkdir()
    (folder / "MANO_RIGHT.pkl").write_bytes((mano_dir / "MANO_RIGHT.pkl").read_bytes())
    left = pickle.loads((mano_dir / "MANO_LEFT.pkl").read_bytes())
    good = left["shapedirs"].copy()
    left["shapedirs"][:, 0, :] *= -1
    (folder / "MANO_LEFT.pkl").write_bytes(pickle.dumps(left))
    _, loaded = load_mano_dir(folder)
    np.testing.assert_array_equal(loaded["shapedirs"], good)


def test_missing_folder_and_files(tmp_path):
    with pytest.raises(HandflowError, match="MANO folder not found") as err:
        load_mano_dir(tmp_path / "nope")
    assert str(tmp_path / "nope") in str(err.value)
    (tmp_path / "MANO_RIGHT.pkl").write_bytes(b"")
    with pytest.raises(HandflowError, match="MANO_LEFT.pkl"):
        load_mano_dir(tmp_path)
    with pytest.raises(HandflowError, match="missing MANO file"):
        load_mano_file(tmp_path / "MANO_LEFT.pkl")


@pytest.mark.parametrize(
    "blob, message",
    [
        (b"", "not a readable pickle"),
        (b"this is not a pickle", "not a readable pickle"),
        (pickle.dumps([1, 2, 3]), "not a MANO pickle"),
        (pickle.dumps({"v_template": np.zeros((5, 3))}), "missing keys 'J_regressor', .*'f'"),
    ],
    ids=["empty", "text", "list", "keys"],
)
def test_not_a_mano_pickle(tmp_path, blob, message):
    path = tmp_path / "MANO_RIGHT.pkl"
    path.write_bytes(blob)
    with pytest.raises(HandflowError, match=message) as err:
        load_mano_file(path)
    assert str(path) in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "key, bad, expected",
    [
        ("shapedirs", lambda a: a[:, :, :5], r"key 'shapedirs' has shape \(\d+, 3, 5\), expected \(V,3,10\)"),
        ("J_regressor", lambda a: a[:, :-1], r"key 'J_regressor' has shape \(16, \d+\), expected \(16,V\)"),
        ("posedirs", lambda a: a[:-1], r"key 'posedirs' has shape .*expected \(V,3,135\)"),
        ("weights", lambda a: a[:, :15], r"key 'weights'"),
        ("hands_mean", lambda a: a[:44], r"key 'hands_mean' has shape \(44,\), expected \(45,\)"),
        ("kintree_table", lambda a: a[:, :15], r"key 'kintree_table'"),
        ("f", lambda a: a + 10_000, r"key 'f' indexes vertices outside"),
        ("v_template", lambda a: a * np.nan, r"key 'v_template' holds non-finite"),
    ],
)
def test_bad_shapes_name_file_and_key(tmp_path, right, key, bad, expected):
    data = dict(right)
    data[key] = bad(np.asarray(right[key]))
    path = tmp_path / "MANO_LEFT.pkl"
    path.write_bytes(pickle.dumps(data))
    with pytest.raises(HandflowError, match=expected) as err:
        load_mano_file(path)
    assert str(err.value).startswith(f"MANO file {path}: ")


def test_more_than_ten_shape_components_are_accepted(tmp_path, right):
    data = dict(right, shapedirs=np.concatenate([right["shapedirs"], right["shapedirs"]], axis=2))
    path = tmp_path / "MANO_RIGHT.pkl"
    path.write_bytes(pickle.dumps(data))
    assert load_mano_file(path)["shapedirs"].shape[2] == 20


def test_mismatched_hands_are_rejected(tmp_path, mano_dir, right):
    folder = tmp_path / "mano"
    folder.mkdir()
    (folder / "MANO_RIGHT.pkl").write_bytes((mano_dir / "MANO_RIGHT.pkl").read_bytes())
    V = right["v_template"].shape[0]
    small = {k: v for k, v in right.items() if k != "tip_vertex_ids"}
    small["v_template"] = right["v_template"][: V - 1]
    small["J_regressor"] = right["J_regressor"][:, : V - 1]
    small["weights"] = right["weights"][: V - 1]
    small["shapedirs"] = right["shapedirs"][: V - 1]
    small["posedirs"] = right["posedirs"][: V - 1]
    small["f"] = right["f"][np.all(right["f"] < V - 1, axis=1)]
    (folder / "MANO_LEFT.pkl").write_bytes(pickle.dumps(small))
    with pytest.raises(HandflowError, match="must match"):
        load_mano_dir(folder)


def test_unusable_chumpy_object_fails_only_where_needed(tmp_path, monkeypatch, right):
    Ch = _chumpy_module(monkeypatch)
    expr = Ch(None)
    del expr.x  # a chumpy expression node: no stored value
    data = _real_like(right, Ch)
    extra, needed = tmp_path / "extra.pkl", tmp_path / "needed.pkl"
    extra.write_bytes(pickle.dumps(dict(data, J=expr), protocol=2))  # an extra key nobody uses
    needed.write_bytes(pickle.dumps(dict(data, shapedirs=expr), protocol=2))
    monkeypatch.delitem(sys.modules, "chumpy.ch")
    monkeypatch.delitem(sys.modules, "chumpy")
    assert "J" not in load_mano_file(extra)
    with pytest.raises(HandflowError, match=r"key 'shapedirs': unsupported chumpy object"):
        load_mano_file(needed)
