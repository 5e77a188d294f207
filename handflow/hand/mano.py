"""Loading MANO model files (real or synthetic) without chumpy, and building smplx models from them.

A pickle is code: unpickling runs whatever constructors the file names. ``load_mano_file`` therefore
uses a restricted unpickler that only resolves numpy array/dtype reconstruction, scipy sparse
matrices, a few harmless builtins and ``chumpy`` classes (mapped to a stub whose pickled state is
turned into a plain array); any other class in the file is refused with a ``HandflowError``.

The official MANO pickles hold chumpy ``Ch`` objects (their value pickled in the instance state,
key ``'x'``) and a scipy sparse ``J_regressor``; chumpy does not import on Python 3.11 / numpy 2.
The validated plain-numpy dict is handed to smplx as ``data_struct=`` so smplx never unpickles the
file itself (see ``build_smplx_mano``).
"""

from __future__ import annotations

import codecs
import contextlib
import copyreg
import io
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from handflow.errors import HandflowError

NUM_JOINTS = 16
NUM_BETAS = 10
NUM_POSE_FEATURES = 9 * (NUM_JOINTS - 1)
HAND_FILES = {"right": "MANO_RIGHT.pkl", "left": "MANO_LEFT.pkl"}

_SAFE_BUILTINS = {
    "object", "set", "frozenset", "list", "dict", "tuple", "int", "float", "complex", "bool", "str",
    "bytes", "bytearray", "slice", "range",
}
_NUMPY_NAMES = {"_reconstruct", "scalar", "dtype", "ndarray", "_frombuffer", "matrix"}
_SPARSE_NAMES = {
    "csc_matrix", "csr_matrix", "coo_matrix", "lil_matrix", "dok_matrix", "bsr_matrix", "dia_matrix",
    "csc_array", "csr_array", "coo_array",
}


class _ChumpyStub:
    """Stands in for any ``chumpy.*`` class while unpickling; keeps the pickled state only."""

    def __init__(self, *args, **kwargs):
        self._state = None

    def __setstate__(self, state):
        self._state = state

    def to_array(self, where: str) -> np.ndarray:
        state = getattr(self, "_state", None)
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[0], dict):
            state = state[0]  # (dict, slots) form
        if isinstance(state, dict):
            for key in ("x", "r", "_x"):  # Ch keeps its value in 'x'
                value = state.get(key)
                if isinstance(value, _ChumpyStub):
                    return value.to_array(where)
                if value is not None:
                    return np.asarray(value)
        raise HandflowError(f"{where}: unsupported chumpy object (no stored value 'x'); re-save it as a numpy array")


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, fh, where: str):
        super().__init__(fh, encoding="latin1")
        self._where = where

    def find_class(self, module: str, name: str):
        if module.split(".")[0] == "chumpy":
            return _ChumpyStub
        if module in ("builtins", "__builtin__") and name in _SAFE_BUILTINS:
            return super().find_class("builtins", name)
        if module in ("copyreg", "copy_reg") and name == "_reconstructor":
            return copyreg._reconstructor
        if module == "_codecs" and name == "encode":  # how protocol <= 2 pickles store bytes
            return codecs.encode
        if module.split(".")[0] == "numpy" and name in _NUMPY_NAMES:
            if module.startswith("numpy.core") and hasattr(np, "_core"):
                module = "numpy._core" + module[len("numpy.core"):]  # numpy 1 pickles under numpy 2
            return super().find_class(module, name)
        if module.startswith("scipy.sparse") and name in _SPARSE_NAMES:
            import scipy.sparse

            return getattr(scipy.sparse, name)  # the class, whatever private module pickled it
        raise HandflowError(
            f"{self._where}: refusing to unpickle {module}.{name} (only numpy, scipy sparse and chumpy data are "
            "allowed in a MANO file)"
        )


def _to_plain(value: Any, where: str) -> Any:
    """chumpy stub -> ndarray, scipy sparse -> dense ndarray, numpy matrix -> ndarray."""
    if isinstance(value, _ChumpyStub):
        return value.to_array(where)
    if hasattr(value, "toarray") and "scipy.sparse" in type(value).__module__:
        return np.asarray(value.toarray())
    if isinstance(value, np.matrix):
        return np.asarray(value)
    return value


# key -> expected shape; "V" is the vertex count of v_template, None any size.
_FLOAT_KEYS = {
    "v_template": ("V", 3),
    "J_regressor": (NUM_JOINTS, "V"),
    "weights": ("V", NUM_JOINTS),
    "shapedirs": ("V", 3, NUM_BETAS),
    "posedirs": ("V", 3, NUM_POSE_FEATURES),
    "hands_components": (45, 45),
    "hands_mean": (45,),
}
_OPTIONAL_FLOAT_KEYS = {"hands_coeffs": (None, 45)}
_INT_KEYS = {"f": (None, 3), "kintree_table": (2, NUM_JOINTS)}


def _shape_text(spec) -> str:
    return "(" + ",".join("N" if s is None else str(s) for s in spec) + ("," if len(spec) == 1 else "") + ")"


def _check_shape(where: str, key: str, arr: np.ndarray, spec, V: int) -> None:
    want = tuple(V if s == "V" else s for s in spec)
    ok = arr.ndim == len(want) and all(w is None or a == w for a, w in zip(arr.shape, want))
    if key == "shapedirs" and arr.ndim == 3 and arr.shape[:2] == (V, 3) and arr.shape[2] >= NUM_BETAS:
        ok = True  # more than 10 shape components: the model uses the first 10
    if not ok:
        raise HandflowError(
            f"MANO file {where}: key '{key}' has shape {tuple(arr.shape)}, expected {_shape_text(spec)} with V={V}"
        )


def load_mano_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read and validate one MANO pickle (real, chumpy-based, or synthetic).

    Returns a dict with float64 arrays ``v_template (V,3)`` m, ``J_regressor (16,V)`` (dense),
    ``weights (V,16)``, ``shapedirs (V,3,>=10)``, ``posedirs (V,3,135)``, ``hands_components (45,45)``,
    ``hands_mean (45,)``, optional ``hands_coeffs (N,45)``; int64 ``f (F,3)`` and
    ``kintree_table (2,16)``; any other keys of the file as plain values. Raises ``HandflowError``
    (one line, naming the file and the key) for anything missing, misshapen or non-finite.

    Security: a pickle is code. Only numpy/scipy-sparse/chumpy data classes are resolved; see the
    module docstring.
    """
    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise HandflowError(f"missing MANO file: {path}")
    if path.suffix == ".npz":
        return _validate(_read_npz(path), where)
    try:
        with open(path, "rb") as fh:
            obj = _RestrictedUnpickler(fh, where).load()
    except HandflowError:
        raise
    except Exception as err:  # truncated/corrupt/not a pickle: many exception types
        raise HandflowError(f"MANO file {where}: not a readable pickle ({type(err).__name__}: {err})") from err
    if not isinstance(obj, dict):
        raise HandflowError(f"MANO file {where}: not a MANO pickle (top level is {type(obj).__name__}, expected a dict)")
    return _validate(obj, where)


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a ``.npz`` written by :func:`convert_mano_dir`, read with ``allow_pickle=False``."""
    import zipfile

    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as err:
        # ValueError: an object array (would need unpickling) or a damaged member
        raise HandflowError(f"MANO file {path}: not a readable plain-array .npz ({type(err).__name__}: "
                            f"{str(err).splitlines()[0][:120] if str(err) else ''})") from err


def _validate(obj: dict, where: str) -> dict[str, Any]:
    data = {}
    needed = set(_FLOAT_KEYS) | set(_OPTIONAL_FLOAT_KEYS) | set(_INT_KEYS)
    for k, v in obj.items():
        try:
            data[str(k)] = _to_plain(v, f"MANO file {where}: key '{k}'")
        except HandflowError:
            # An extra key we do not use (e.g. a chumpy expression without a stored value) is dropped.
            if str(k) in needed:
                raise

    missing = [key for key in list(_FLOAT_KEYS) + list(_INT_KEYS) if key not in data]
    if missing:
        names = ", ".join(f"'{k}'" for k in missing)
        raise HandflowError(f"MANO file {where}: not a MANO pickle, missing key{'s' if len(missing) > 1 else ''} {names}")
    for key in list(_FLOAT_KEYS) + list(_OPTIONAL_FLOAT_KEYS) + list(_INT_KEYS):
        if key not in data:
            continue
        try:
            arr = np.asarray(data[key])
            arr = arr.astype(np.int64) if key in _INT_KEYS else arr.astype(np.float64)
        except (TypeError, ValueError) as err:
            raise HandflowError(f"MANO file {where}: key '{key}' is not a numeric array ({err})") from err
        data[key] = arr
    v_template = data["v_template"]
    if v_template.ndim != 2 or v_template.shape[1] != 3 or v_template.shape[0] < 1:
        raise HandflowError(f"MANO file {where}: key 'v_template' has shape {tuple(v_template.shape)}, expected (V,3)")
    V = v_template.shape[0]
    for key, spec in {**_FLOAT_KEYS, **_OPTIONAL_FLOAT_KEYS, **_INT_KEYS}.items():
        if key in data:
            _check_shape(where, key, data[key], spec, V)
            if key not in _INT_KEYS and not np.all(np.isfinite(data[key])):
                raise HandflowError(f"MANO file {where}: key '{key}' holds non-finite numbers")
    f = data["f"]
    if f.size and (f.min() < 0 or f.max() >= V):
        raise HandflowError(f"MANO file {where}: key 'f' indexes vertices outside 0..{V - 1}")
    parents = data["kintree_table"][0]
    for j in range(1, NUM_JOINTS):
        if not 0 <= parents[j] < j:
            raise HandflowError(f"MANO file {where}: key 'kintree_table' parent of joint {j} is {parents[j]}, expected < {j}")
    if "tip_vertex_ids" in data:
        tips = np.asarray(data["tip_vertex_ids"]).astype(np.int64)
        if tips.shape != (5,) or tips.min() < 0 or tips.max() >= V:
            raise HandflowError(f"MANO file {where}: key 'tip_vertex_ids' must be 5 vertex ids below V={V}")
        data["tip_vertex_ids"] = tips
    return data


def has_left_shapedirs_bug(left: dict, right: dict) -> bool:
    """True when the left file's ``shapedirs[:, 0, :]`` is not mirrored (smplx issue 48).

    The left hand is the mirror ``x -> -x`` of the right, so its x shape directions should be the
    negated right ones. The official MANO_LEFT.pkl stores them un-negated. The InterHand2.6M toolkit
    tests ``sum|L[:,0,:] - R[:,0,:]| < 1``; we use the scale-free version: the left x column agrees
    with the right one more than with its negation. Files with different vertex counts are left alone.
    """
    L, R = left["shapedirs"], right["shapedirs"]
    if L.shape != R.shape:
        return False
    lx, rx = L[:, 0, :], R[:, 0, :]
    return float(np.abs(lx - rx).sum()) < float(np.abs(lx + rx).sum())


def fix_left_shapedirs(left: dict, right: dict) -> dict:
    """The left dict with ``shapedirs[:, 0, :]`` negated if ``has_left_shapedirs_bug``; else unchanged."""
    if not has_left_shapedirs_bug(left, right):
        return left
    fixed = dict(left)
    shapedirs = np.array(left["shapedirs"], dtype=np.float64, copy=True)
    shapedirs[:, 0, :] *= -1.0
    fixed["shapedirs"] = shapedirs
    return fixed


def load_mano_dir(folder: str | os.PathLike) -> tuple[dict, dict]:
    """``(right, left)`` validated dicts from ``folder/MANO_{RIGHT,LEFT}.npz`` or ``.pkl`` (see :func:`mano_file`).

    The left hand's shapedirs sign bug is fixed here; both hands must share vertex and face counts.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise HandflowError(f"MANO folder not found: {folder}")
    paths = [mano_file(folder, hand) for hand in ("right", "left")]  # both present before reading either
    right, left = (load_mano_file(p) for p in paths)
    if left["v_template"].shape != right["v_template"].shape or left["f"].shape != right["f"].shape:
        raise HandflowError(
            f"MANO folder {folder}: MANO_LEFT.pkl has {len(left['v_template'])} vertices / {len(left['f'])} faces, "
            f"MANO_RIGHT.pkl {len(right['v_template'])} / {len(right['f'])}; they must match"
        )
    return right, fix_left_shapedirs(left, right)


def mano_file(folder: str | os.PathLike, hand: str) -> Path:
    """The file to read for ``hand`` in ``folder``: ``MANO_<HAND>.npz`` (plain arrays, loads without
    unpickling) when present, else ``MANO_<HAND>.pkl``."""
    folder = Path(folder)
    pkl = folder / HAND_FILES[hand]
    npz = pkl.with_suffix(".npz")
    if npz.is_file():
        return npz
    if pkl.is_file():
        return pkl
    raise HandflowError(
        f"MANO folder {folder} has no {pkl.name} (expected MANO_RIGHT.pkl and MANO_LEFT.pkl, or their .npz from "
        "`viewselect hand convert`)"
    )


def convert_mano_dir(folder: str | os.PathLike, out: str | os.PathLike) -> list[Path]:
    """Write ``out/MANO_RIGHT.npz`` and ``out/MANO_LEFT.npz``: the validated numeric arrays of a MANO folder.

    The pickles are read once, through the restricted unpickler, and every key and shape is checked;
    the ``.npz`` files then load with ``np.load(allow_pickle=False)`` (no code runs) and
    ``--mano-dir OUT`` uses them. Non-numeric extras (strings, object arrays) are dropped. Each file is
    written atomically. The left hand is stored as read (the shapedirs sign fix is applied at load).
    """
    from handflow.io import atomic_path

    folder, out = Path(folder), Path(out)
    if not folder.is_dir():
        raise HandflowError(f"MANO folder not found: {folder}")
    if out.exists() and not out.is_dir():
        raise HandflowError(f"--out {out} is a file; expected a folder")
    paths = {hand: mano_file(folder, hand) for hand in ("right", "left")}
    hands = {hand: load_mano_file(p) for hand, p in paths.items()}
    right, left = hands["right"], hands["left"]
    if left["v_template"].shape != right["v_template"].shape or left["f"].shape != right["f"].shape:
        raise HandflowError(f"MANO folder {folder}: MANO_LEFT and MANO_RIGHT have different vertex or face counts")
    written = []
    for hand, data in hands.items():
        arrays = {k: np.asarray(v) for k, v in data.items()
                  if isinstance(v, (np.ndarray, np.generic, int, float)) and np.asarray(v).dtype.kind in "biuf"}
        target = out / Path(HAND_FILES[hand]).with_suffix(".npz")
        with atomic_path(target) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)
        written.append(target)
    return written


def build_smplx_mano(data: dict, is_rhand: bool, dtype=None):
    """A ``smplx.MANO`` built from a validated dict (never from smplx's own pickle load).

    InterHand2.6M NeuralAnnot semantics: ``use_pca=False``, ``flat_hand_mean=False``, 10 betas. No
    default pose/shape parameters are created (callers always pass them), so the module has no
    trainable parameters. smplx's "only 10 shape coefficients" notice is swallowed.
    """
    import smplx
    import torch
    from smplx.utils import Struct

    plain = {k: v for k, v in data.items() if isinstance(v, np.ndarray)}
    with contextlib.redirect_stdout(io.StringIO()):
        return smplx.MANO(
            model_path="", is_rhand=is_rhand, data_struct=Struct(**plain), use_pca=False, flat_hand_mean=False,
            num_betas=NUM_BETAS, dtype=dtype or torch.float32, create_global_orient=False, create_hand_pose=False,
            create_betas=False, create_transl=False, create_body_pose=False,
        )
