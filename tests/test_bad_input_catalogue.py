"""The bad-input catalogue (issue 9): every case runs the real ``viewselect`` entry point in-process
(``viewselect.cli.main``, the console script's function) on a fresh copy of the tiny capture.

Each case states what it breaks, the command, the expected exit code and a text the one output line
must contain (the file and/or field at fault). For every case:

* the exit code is the documented one: 2 (``error: ...``) for bad input, 3 for a run that completed
  but skipped unreadable images (``warning: ...``), 0 for an unusual rig that ranks (one camera, two, a
  camera bar, no up axis), saying once what it cannot define (``note: ...``) or nothing;
* stderr is exactly one line, starting ``error:`` / ``warning:`` / ``note:``, containing the expected text
  (for exit 0 with no expected text: nothing on stderr): the file
  (its path below the case's folder) and the field at fault, so the promise that every message names
  both is checked, not just a keyword. ``{frame}``, ``{camera}`` and ``{key}`` in the text stand for the
  frame / camera / weight the case broke (filled in from the case's data);
* with exit 2 the output path does not exist afterwards (or, where it existed before, is byte for
  byte unchanged), and no temporary file (``.NAME.*.tmp``) is left anywhere in the case's folder; with exit 3 the outputs are complete and count the skips.

``python -m tests.catalogue_report`` runs this module and writes ``reports/reliability.md``.
"""

from __future__ import annotations

import json
import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
from captures import add_upside_down_twin, keep_cameras, one_camera_release
from cli_runner import run_cli

SEQ = "Capture0/0001_touch_fingertips"
ANN = Path("annotations") / "test"


def _ann(root: Path, kind: str) -> Path:
    return root / ANN / f"InterHand2.6M_test_{kind}.json"


def _edit(path: Path, fn) -> None:
    obj = json.loads(path.read_text())
    fn(obj)
    path.write_text(json.dumps(obj))


def _first_cam(root: Path) -> str:
    return sorted(json.loads(_ann(root, "camera").read_text())["0"]["campos"])[0]


def _images(root: Path, cam: str) -> list[Path]:
    return sorted((root / "images" / "test" / SEQ / f"cam{cam}").glob("*.jpg"))


class Env:
    """What a case gets: a scratch folder, a fresh data copy on demand, the shared model/config/MANO."""

    def __init__(self, tmp: Path, data: Path, model: Path, config: Path, mano: Path):
        self.tmp, self._data, self.model, self.config, self.mano = tmp, data, model, config, mano
        self.out = tmp / "out"
        self.fields: dict[str, str] = {}  # what a setup broke, for the {placeholders} of the expected text

    def root(self) -> Path:
        root = self.tmp / "data"
        if not root.exists():
            for sub in ("annotations/test", "images/test"):
                shutil.copytree(self._data / sub, root / sub)
        return root

    def mano_copy(self) -> Path:
        d = self.tmp / "mano"
        if not d.exists():
            shutil.copytree(self.mano, d)
        return d

    def rank(self, *extra, root: Path | None = None, model: Path | None = None, mano: Path | None = None,
             sequence: str = SEQ) -> list:
        return ["rank", "--data-root", root or self.root(), "--model", model or self.model,
                "--mano-dir", mano or self.mano, "--sequence", sequence, "--samples", "4", "--out", self.out,
                *extra]

    def plan(self, *rigs: str) -> list:
        """``plan`` of the rig CSV(s) ``rigs`` (one row per camera: id, position, target), tiny images."""
        files = []
        for i, rows in enumerate(rigs):
            path = self.tmp / f"rig{i + 1}.csv"
            path.write_text(PLAN_HEADER + "".join(f"{r},{PLAN_CAMERA}\n" for r in rows.split(";")))
            files.append(path)
        compare = ["--compare", files[1]] if len(files) > 1 else []
        return ["plan", "--rig", files[0], *compare, "--model", self.model, "--frames", "1", "--samples", "4",
                "--out", self.out]

    def train(self, config_text: str | None = None, *extra) -> list:
        cfg = self.config
        if config_text is not None:
            cfg = self.tmp / "config.toml"
            cfg.write_text(config_text)
        return ["train-model", "--config", cfg, "--out", self.out, "--mano-dir", self.mano, *extra]


PLAN_HEADER = ("camera,campos_x_mm,campos_y_mm,campos_z_mm,target_x_mm,target_y_mm,target_z_mm,"
               "focal_px,width_px,height_px\n")
PLAN_CAMERA = "90,84,128"  # focal, width, height (px): the tiny capture's image size, a wide lens
# around the synthetic motions (handflow.synth.rig.RIG_CENTER_MM: 1 m above the origin)
ONE_CAMERA = "400002,900,0,1200,0,0,1000"
TWO_CAMERAS = "400002,900,0,1200,0,0,1000;400003,0,900,1100,0,0,1000"
CAMERA_BAR = "400002,900,-100,1000,0,-100,1000;400003,900,0,1000,0,0,1000;400004,900,100,1000,0,100,1000"


@dataclass(frozen=True)
class Case:
    id: str
    area: str
    what: str  # the bad input, in words (goes into reports/reliability.md)
    setup: Callable[[Env], list]  # breaks something, returns the command line
    expect: str  # text the one stderr line must contain (paths relative to the case's folder)
    code: int = 2
    check: Callable[[Env], None] | None = None  # extra checks of the outputs or side effects


# ------------------------------------------------------------------------------------------ setups
def _rm_images_folder(env):
    shutil.rmtree(env.root() / "images" / "test")
    return env.rank()


def _rm_one_image(env):
    root = env.root()
    _images(root, _first_cam(root))[0].unlink()
    return env.rank()


def _rm_one_image_keep(env):
    return _rm_one_image(env) + ["--keep", "3"]


def _truncate_one_image(env):
    root = env.root()
    p = _images(root, _first_cam(root))[0]
    p.write_bytes(p.read_bytes()[:300])
    return env.rank()


def _rm_one_view(env):
    root = env.root()
    for p in _images(root, _first_cam(root)):
        p.unlink()
    return env.rank("--keep", "3")


def _no_joint_in_one_view(env):
    """Every annotation of one camera's images marks all joints invalid: a camera that never sees the hands."""
    import json

    root, cam = env.root(), _first_cam(env.root())
    path = _ann(root, "data")
    data = json.loads(path.read_text())
    ids = {im["id"] for im in data["images"] if im["camera"] == cam}
    for a in data["annotations"]:
        if a["image_id"] in ids:
            a["joint_valid"] = [[0]] * len(a["joint_valid"])
    path.write_text(json.dumps(data))
    return env.rank("--keep", "3")


def _rm_sequence_images(env):
    shutil.rmtree(env.root() / "images" / "test" / SEQ)
    return env.rank()


def _json(kind: str, text: str):
    def setup(env):
        _ann(env.root(), kind).write_text(text)
        return env.rank()
    return setup


def _truncated(kind: str):
    def setup(env):
        p = _ann(env.root(), kind)
        p.write_text(p.read_text()[: len(p.read_text()) // 2])
        return env.rank()
    return setup


def _missing(kind: str):
    def setup(env):
        _ann(env.root(), kind).unlink()
        return env.rank()
    return setup


def _edit_case(kind: str, fn):
    def setup(env):
        _edit(_ann(env.root(), kind), fn)
        return env.rank()
    return setup


def _first_frame(obj: dict) -> dict:
    return obj["0"][sorted(obj["0"])[0]]


def _joint3d_text(replace_from: str, replace_to: str):
    """Edit joint_3d.json as text (JSON has no NaN/Infinity literals; Python's json writes them)."""
    def setup(env):
        p = _ann(env.root(), "joint_3d")
        obj = json.loads(p.read_text())
        _first_frame(obj)["world_coord"][0][0] = float(replace_from)
        p.write_text(json.dumps(obj))
        assert replace_to in p.read_text()
        return env.rank()
    return setup


def _camera(field: str, value):
    def setup(env):
        root = env.root()
        cam = _first_cam(root)
        _edit(_ann(root, "camera"), lambda o: o["0"][field].__setitem__(cam, value))
        return env.rank()
    return setup


def _mano_missing_left(env):
    d = env.mano_copy()
    (d / "MANO_LEFT.pkl").unlink()
    return env.rank(mano=d)


def _mano_wrong_shape(env):
    from handflow.hand.mano import load_mano_file

    d = env.mano_copy()
    data = load_mano_file(d / "MANO_RIGHT.pkl")
    data["shapedirs"] = data["shapedirs"][:, :2]
    (d / "MANO_RIGHT.pkl").write_bytes(pickle.dumps(data))
    return env.rank(mano=d)


class _Evil:
    """Unpickling this runs ``touch PATH``: the file existing afterwards means the code ran."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        import os

        return (os.system, (f"touch '{self.path}'",))


def _mano_code(env):
    d = env.mano_copy()
    (d / "MANO_RIGHT.pkl").write_bytes(pickle.dumps({"v_template": _Evil(env.tmp / "pwned")}))
    return env.rank(mano=d)


def _no_code_ran(env):
    assert not (env.tmp / "pwned").exists(), "unpickling the MANO file ran its code"


def _mano_npz_objects(env):
    d = env.mano_copy()
    np.savez(d / "MANO_RIGHT.npz", v_template=np.array([{"a": 1}], dtype=object))
    return env.rank(mano=d)


def _convert_missing_hand(env):
    d = env.mano_copy()
    (d / "MANO_RIGHT.pkl").unlink()
    return ["hand", "convert", "--mano-dir", d, "--out", env.out]


def _checkpoint(payload_fn):
    def setup(env):
        path = env.tmp / "model.pt"
        payload_fn(env, path)
        return env.rank(model=path)
    return setup


def _foreign_ckpt(env, path):
    torch.save({"weights": torch.zeros(3)}, path)


class _Obj:
    pass


def _code_ckpt(env, path):
    torch.save({"format": "handflow-checkpoint/1", "obj": _Obj()}, path)


def _other_arch_ckpt(env, path):
    from handflow.checkpoint import load_checkpoint, save_checkpoint

    payload = load_checkpoint(env.model)
    key = next(k for k, v in payload["state_dict"].items() if v.ndim == 2)
    env.fields["key"] = key
    payload["state_dict"][key] = torch.zeros(3, 3)
    save_checkpoint(path, payload)


def _truncated_ckpt(env, path):
    path.write_bytes(env.model.read_bytes()[:5000])


def _bitflip_ckpt(env, path):
    from handflow.checkpoint import load_checkpoint

    payload = load_checkpoint(env.model)  # has its checksum
    key = next(k for k, v in payload["state_dict"].items() if v.is_floating_point() and v.numel() > 10)
    payload["state_dict"][key].view(-1)[3] += 1  # one weight changed behind the checksum's back
    torch.save(payload, path)


def _resume_other_config(env):
    from handflow.checkpoint import load_checkpoint, save_checkpoint

    env.out.mkdir()
    payload = load_checkpoint(env.model)  # a compact model of the tiny config
    payload["config"] = {**payload["config"], "seed": 123}
    save_checkpoint(env.out / "last.pt", payload)
    return env.train(None, "--resume")


def _out_under_file(env):
    blocker = env.tmp / "a-file"
    blocker.write_text("x")
    env.out = blocker / "results"
    return env.rank()


def _train_out_under_file(env):
    blocker = env.tmp / "a-file"
    blocker.write_text("x")
    env.out = blocker / "run"
    return env.train()


def _train_bad_data_root(env):
    return env.train(None, "--data-root", env.tmp / "nope")


def _config(text):
    return lambda env: env.train(text)


def _one_camera(env, *extra, command="rank"):
    root = one_camera_release(env._data, env.tmp / "one", _first_cam(env._data))
    if command == "report":
        return ["report", "--format", "md", "--data-root", root, "--model", env.model, "--mano-dir", env.mano,
                "--sequence", SEQ, "--samples", "4", "--out", env.out, "--overlay-samples", "4"]
    return env.rank(*extra, root=root)


def _two_cameras(env):
    root = env.root()
    keep_cameras(root, sorted(json.loads(_ann(root, "camera").read_text())["0"]["campos"])[:2])
    return env.rank("--keep", "1")


def _no_up_axis(env):
    root = env.root()
    cam = _first_cam(root)
    keep_cameras(root, [cam])
    add_upside_down_twin(root, cam, "499999")
    return env.rank()


def _rank_args(*args):
    return lambda env: env.rank(*args)


# ------------------------------------------------------------------------------------------ checks
def _summary(env) -> dict:
    return json.loads((env.out / "summary.json").read_text())


def _ranking(env):
    return __import__("pandas").read_csv(env.out / "ranking.csv", dtype={"camera": str})


def _one_camera_ranked(env):
    cams = _ranking(env)
    assert len(cams) == 1 and bool(cams["keep"].iloc[0]) and min(cams["azimuth_deg"].iloc[0], 360 - cams["azimuth_deg"].iloc[0]) < 1e-9
    assert np.isfinite(cams[["elevation_deg", "distance_mm", "ambiguity_mm", "mpjpe_global_mm"]].to_numpy()).all()
    assert "notes" not in _summary(env)


def _one_camera_report(env):
    assert "Note: error vs cameras kept not computed" in (env.out / "report.md").read_text()


def _two_ranked(env):
    cams = _ranking(env)
    assert len(cams) == 2 and cams["keep"].sum() == 1 and np.isfinite(cams["azimuth_deg"]).all()
    assert np.isfinite(_summary(env)["triangulation"]["full_error_mm"])


def _angles_empty(env):
    import openpyxl

    cams = _ranking(env)
    assert len(cams) == 2 and cams[["azimuth_deg", "elevation_deg"]].isna().all().all()
    assert np.isfinite(cams[["ambiguity_mm", "distance_mm"]].to_numpy()).all()
    sheet = openpyxl.load_workbook(env.out / "ranking.xlsx")["cameras"]
    head = [c.value for c in sheet[1]]
    for row in sheet.iter_rows(min_row=2, values_only=True):  # blank cells, not "nan" text
        assert row[head.index("azimuth (deg)")] is None and row[head.index("elevation (deg)")] is None
    assert len(_summary(env)["notes"]) == 1


def _planned(*labels):
    def check(env):
        import pandas as pd

        table = pd.read_csv(env.out / "plan.csv")
        assert table["rig"].tolist() == list(labels) and (env.out / "plan.md").is_file()
        for label in labels:
            assert len(pd.read_csv(env.out / label / "ranking.csv")) == table.set_index("rig").loc[label, "n_cameras"]
    return check


def _one_image_skipped(env):
    prov = _summary(env)["provenance"]
    assert prov["skipped_images"] == 1 and prov["skipped_views"] == [] and len(prov["skipped_image_errors"]) == 1
    assert len(__import__("pandas").read_csv(env.out / "ranking.csv")) == 8


def _one_view_skipped(env, reason: str = "no readable image"):
    prov = _summary(env)["provenance"]
    assert len(prov["skipped_views"]) == 1 and f"cam{_first_cam(env.root())}: {reason}" in prov["skipped_views"][0]
    cams = __import__("pandas").read_csv(env.out / "ranking.csv", dtype={"camera": str})
    assert len(cams) == 7 and _first_cam(env.root()) not in set(cams["camera"]) and cams["keep"].sum() == 3


SKIPPED_IMAGE = ("skipped 1 unreadable image(s) and 0 view(s) that could not be scored (no readable image, or no "
                 "annotated joint in the image); listed in out/summary.json")
SKIPPED_VIEW = ("skipped 0 unreadable image(s) and 1 view(s) that could not be scored (no readable image, or no "
                "annotated joint in the image); listed in out/summary.json")

CASES = [
    # ---- images
    Case("images-folder-missing", "images", "`images/test` folder deleted", _rm_images_folder,
         "missing images folder: data/images/test"),
    Case("image-missing", "images", "one image referenced by data.json deleted (partial input)", _rm_one_image,
         SKIPPED_IMAGE, code=3, check=_one_image_skipped),
    Case("image-missing-keep", "images", "one image deleted, `--keep 3` (triangulation over the kept views)",
         _rm_one_image_keep, SKIPPED_IMAGE, code=3, check=_one_image_skipped),
    Case("image-truncated", "images", "one JPEG truncated to 300 bytes (partial input)", _truncate_one_image,
         SKIPPED_IMAGE, code=3, check=_one_image_skipped),
    Case("view-unreadable", "images", "every image of one camera deleted (partial input), `--keep 3`",
         _rm_one_view, SKIPPED_VIEW, code=3, check=_one_view_skipped),
    Case("view-no-joint", "images", "one camera never sees the hands (every joint_valid 0 in its images), `--keep 3`",
         _no_joint_in_one_view, SKIPPED_VIEW, code=3,
         check=lambda env: _one_view_skipped(env, "no annotated joint inside the image")),
    Case("sequence-unreadable", "images", "every image of the selected sequence deleted", _rm_sequence_images,
         "no view of --sequence Capture0/0001_touch_fingertips in data/images/test could be scored"),
    # ---- annotation JSON
    Case("data-json-empty", "json", "data.json empty", _json("data", ""),
         "empty JSON file: data/annotations/test/InterHand2.6M_test_data.json"),
    Case("data-json-truncated", "json", "data.json cut in half", _truncated("data"),
         "corrupt JSON in data/annotations/test/InterHand2.6M_test_data.json: "),
    Case("data-json-wrong-type", "json", "data.json holds a list", _json("data", "[1, 2]"),
         "InterHand2.6M_test_data.json: expected a JSON dict, found list"),
    Case("data-json-missing", "json", "data.json deleted", _missing("data"),
         "missing file: data/annotations/test/InterHand2.6M_test_data.json"),
    Case("data-json-missing-key", "json", "data.json without `annotations`",
         _edit_case("data", lambda o: o.pop("annotations")),
         "InterHand2.6M_test_data.json: missing or malformed key 'annotations'"),
    Case("data-json-image-missing-key", "json", "images[0] without `frame_idx`",
         _edit_case("data", lambda o: o["images"][0].pop("frame_idx")),
         "InterHand2.6M_test_data.json: images[0]: missing key 'frame_idx'"),
    Case("data-json-wrong-field-type", "json", "images[0].capture is a list",
         _edit_case("data", lambda o: o["images"][0].__setitem__("capture", [0])),
         "InterHand2.6M_test_data.json: images[0].capture: expected an integer"),
    Case("data-json-joint-valid-41", "json", "annotations[0].joint_valid has 41 entries",
         _edit_case("data", lambda o: o["annotations"][0].__setitem__("joint_valid", [[1]] * 41)),
         "InterHand2.6M_test_data.json: annotations[0].joint_valid: has 41 joints, expected 42"),
    Case("joint3d-nan", "json", "a NaN in joint_3d.json world_coord", _joint3d_text("nan", "NaN"),
         "InterHand2.6M_test_joint_3d.json: non-finite number"),
    Case("joint3d-inf", "json", "an Infinity in joint_3d.json world_coord", _joint3d_text("inf", "Infinity"),
         "InterHand2.6M_test_joint_3d.json: non-finite number"),
    Case("joint3d-41-joints", "json", "world_coord with 41 joints",
         _edit_case("joint_3d", lambda o: _first_frame(o).__setitem__("world_coord", _first_frame(o)["world_coord"][:41])),
         "InterHand2.6M_test_joint_3d.json: capture 0 frame {frame} world_coord: has 41 joints, expected 42"),
    Case("joint3d-missing-key", "json", "a frame without world_coord",
         _edit_case("joint_3d", lambda o: _first_frame(o).pop("world_coord")),
         "InterHand2.6M_test_joint_3d.json: capture 0 frame {frame}: missing 'world_coord'"),
    Case("joint3d-wrong-type", "json", "joint_3d.json holds a string", _json("joint_3d", '"x"'),
         "InterHand2.6M_test_joint_3d.json: expected a JSON dict, found str"),
    Case("mano-json-wrong-shape", "json", "MANO_NeuralAnnot.json pose with 47 values",
         _edit_case("MANO_NeuralAnnot", lambda o: _first_frame(o)["right"].__setitem__("pose", [0.0] * 47)),
         "InterHand2.6M_test_MANO_NeuralAnnot.json: capture 0 frame {frame} right pose: expected 48 values"),
    # ---- cameras
    Case("camera-json-missing", "camera", "camera.json deleted", _missing("camera"),
         "missing file: data/annotations/test/InterHand2.6M_test_camera.json"),
    Case("camera-singular-rotation", "camera", "camrot all zeros (singular)", _camera("camrot", [[0, 0, 0]] * 3),
         "InterHand2.6M_test_camera.json: capture 0 camera {camera}: camera rotation is not a rotation matrix"),
    Case("camera-zero-focal", "camera", "focal = [0, 0]", _camera("focal", [0, 0]),
         "InterHand2.6M_test_camera.json: capture 0 camera {camera}: camera focal must be positive"),
    Case("camera-missing-entry", "camera", "a camera without `princpt`",
         lambda env: (_edit(_ann(env.root(), "camera"), lambda o: o["0"]["princpt"].pop(_first_cam(env.root()))),
                      env.rank())[1],
         "InterHand2.6M_test_camera.json: capture 0: camera {camera} has no 'princpt' entry"),
    Case("capture-not-in-camera-json", "camera", "capture 1 in joint_3d.json but not in camera.json",
         _edit_case("camera", lambda o: o.pop("1")),
         "InterHand2.6M_test_joint_3d.json: capture 1 is not in InterHand2.6M_test_camera.json"),
    # ---- MANO files
    Case("mano-folder-missing", "mano", "--mano-dir names no folder",
         lambda env: env.rank(mano=env.tmp / "nope"), "MANO folder not found: nope"),
    Case("mano-missing-left", "mano", "MANO folder without MANO_LEFT.pkl", _mano_missing_left,
         "MANO folder mano has no MANO_LEFT.pkl"),
    Case("mano-wrong-shape", "mano", "MANO_RIGHT.pkl shapedirs (V,2,10)", _mano_wrong_shape,
         "mano/MANO_RIGHT.pkl: key 'shapedirs' has shape (892, 2, 10)"),
    Case("mano-pickle-code", "mano", "MANO_RIGHT.pkl whose pickle calls os.system", _mano_code,
         "mano/MANO_RIGHT.pkl: refusing to unpickle posix.system", check=_no_code_ran),
    Case("mano-npz-object-array", "mano", "MANO_RIGHT.npz holding an object array (needs unpickling)",
         _mano_npz_objects, "mano/MANO_RIGHT.npz: not a readable plain-array .npz"),
    Case("hand-convert-missing-right", "mano", "`hand convert` of a folder without MANO_RIGHT.pkl",
         _convert_missing_hand, "MANO folder mano has no MANO_RIGHT.pkl"),
    # ---- configs
    Case("config-unknown-key", "config", "training config with `[optim] batchsize`",
         _config("[optim]\nbatchsize = 8\n"), "config.toml.optim: unknown key 'batchsize'"),
    Case("config-wrong-type", "config", "training config with `seed = \"zero\"`", _config('seed = "zero"\n'),
         "config.toml.seed: expected an integer, found 'zero'"),
    Case("config-corrupt", "config", "training config that is not TOML", _config("[model\n"),
         "corrupt config config.toml: "),
    Case("config-missing", "config", "--config names no file",
         lambda env: ["train-model", "--config", env.tmp / "none.toml", "--out", env.out],
         "missing config file: none.toml"),
    Case("train-data-root-missing", "config", "--data-root names no folder", _train_bad_data_root,
         "data root does not exist: nope"),
    # ---- checkpoints
    Case("checkpoint-missing", "checkpoint", "--model names no file",
         lambda env: env.rank(model=env.tmp / "none.pt"), "missing model checkpoint: none.pt"),
    Case("checkpoint-foreign", "checkpoint", "a torch file that is not a handflow checkpoint",
         _checkpoint(_foreign_ckpt), "model.pt is not a viewselect/handflow checkpoint"),
    Case("checkpoint-code", "checkpoint", "a checkpoint holding a pickled class (refused by weights_only)",
         _checkpoint(_code_ckpt), "checkpoint model.pt is not a plain-tensor checkpoint"),
    Case("checkpoint-other-architecture", "checkpoint", "a checkpoint whose weight shapes differ",
         _checkpoint(_other_arch_ckpt),
         "checkpoint model.pt does not fit this architecture: '{key}' has shape (3, 3)"),
    Case("checkpoint-truncated", "checkpoint", "a checkpoint cut to 5000 bytes", _checkpoint(_truncated_ckpt),
         "corrupt or unreadable checkpoint model.pt"),
    Case("checkpoint-bitflip", "checkpoint", "a weight changed after the checksum was stored",
         _checkpoint(_bitflip_ckpt),
         "corrupt checkpoint model.pt: the weights do not match their stored checksum"),
    Case("resume-other-config", "checkpoint", "--resume of a last.pt trained with another config",
         _resume_other_config, "out/last.pt was trained with another config"),
    # ---- outputs
    Case("rank-out-not-writable", "output", "rank --out below a regular file", _out_under_file,
         "cannot write a-file/results/"),
    Case("train-out-not-writable", "output", "train-model --out below a regular file", _train_out_under_file,
         "cannot write a-file/run"),
    # ---- options and sequence specs
    Case("spec-selects-nothing", "spec", "--sequence Capture5-6 (no such captures)",
         lambda env: env.rank(sequence="Capture5-6"), "sequence spec Capture5-6 selects nothing"),
    Case("spec-unknown-sequence", "spec", "--sequence Capture0/nope", lambda env: env.rank(sequence="Capture0/nope"),
         "unknown sequence Capture0/nope"),
    Case("spec-syntax", "spec", "--sequence Kapture0", lambda env: env.rank(sequence="Kapture0"),
         "bad sequence spec term 'Kapture0'"),
    Case("spec-unknown-camera", "spec", "--cameras 999", _rank_args("--cameras", "999"),
         "unknown camera '999' in Capture0/0001_touch_fingertips"),
    Case("options-conflict", "spec", "--drop 1 --keep 2", _rank_args("--drop", "1", "--keep", "2"),
         "--drop and --keep conflict"),
    # ---- unusual rigs: they rank, report and plan; what they cannot define is said once (exit 0)
    Case("rig-one-camera-own-frame", "rig", "a one-camera release stored in its camera's frame (`campos` 0, "
         "`camrot` the identity)", _one_camera, "", code=0, check=_one_camera_ranked),
    Case("rig-one-camera-report", "rig", "`report` of the one-camera release (no subsets to compare)",
         lambda env: _one_camera(env, command="report"),
         "note: error vs cameras kept not computed: it compares subsets of at least 2 cameras, and 1 camera "
         "was scored", code=0, check=_one_camera_report),
    Case("rig-two-cameras", "rig", "a release of two cameras, `--keep 1`", _two_cameras, "", code=0,
         check=_two_ranked),
    Case("rig-no-up-axis", "rig", "two cameras whose image-ups cancel (the second the first mounted upside "
         "down): no up axis, so no azimuth or elevation", _no_up_axis,
         "note: the rig's frame does not define the azimuth of 2 and the elevation of 2 of 2 camera(s)", code=0,
         check=_angles_empty),
    Case("plan-two-and-one-cameras", "rig", "`plan` of a two-camera rig beside a one-camera rig",
         lambda env: env.plan(TWO_CAMERAS, ONE_CAMERA), "", code=0, check=_planned("rig", "compare")),
    Case("plan-camera-bar", "rig", "`plan` of three cameras on one line with parallel optical axes (no point "
         "they all aim at)", lambda env: env.plan(CAMERA_BAR), "", code=0, check=_planned("rig")),
]


# ------------------------------------------------------------------------------------------ runner


def _snapshot(path: Path) -> dict | None:
    if not path.exists():
        return None
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def mano_dir():
    from handflow.synth.mano import default_mano_dir

    return default_mano_dir()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_catalogue(case: Case, tmp_path, tiny_data_root, tiny_model, tiny_train_config, mano_dir, capsys,
                   monkeypatch, record_property):
    import viewselect.ranking.pipeline as rank_mod

    # a private rank cache: a cached view would (rightly) not look at its images again
    monkeypatch.setattr(rank_mod, "default_cache_root", lambda: tmp_path / "rank-cache")
    env = Env(tmp_path, tiny_data_root, tiny_model, tiny_train_config, mano_dir)
    args = case.setup(env)
    before = _snapshot(env.out)
    code, out, err = run_cli(args, capsys, monkeypatch)
    lines = err.strip().splitlines()
    shown = lines[0].replace(str(tmp_path) + "/", "") if lines else ""  # paths relative to the case's folder
    # for reports/reliability.md (tests/catalogue_report.py): the command and what the user saw
    short = lambda a: Path(str(a)).name if str(a).startswith("/") else str(a)  # noqa: E731
    record_property("command", "viewselect " + " ".join(short(a) for a in args))
    record_property("exit", code)
    record_property("stderr", shown)
    assert code == case.code, f"exit {code}, expected {case.code}\nstdout:\n{out}\nstderr:\n{err}"
    if case.code == 0 and not case.expect:  # an unusual rig with nothing to say
        assert not lines, f"expected nothing on stderr, got:\n{err}"
        case.check(env)
        return
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    assert lines[0].startswith({2: "error: ", 3: "warning: ", 0: "note: "}[case.code]), lines[0]
    expect = case.expect
    if "{" in expect:
        root = env.root()
        joint_3d = json.loads(_ann(root, "joint_3d").read_text())
        expect = expect.format(frame=sorted(joint_3d["0"])[0], camera=_first_cam(root), **env.fields)
    assert expect in shown, f"{expect!r} not in {shown!r}"
    assert not list(tmp_path.rglob(".*.tmp")), "a temporary file was left behind"
    if case.code == 2:  # nothing written: no output, or a pre-existing one untouched
        assert _snapshot(env.out) == before, f"{env.out} was written"
    if case.check is not None:
        case.check(env)
