"""``viewselect annotate`` (and ``data show --annotations``) end to end on copies of the tiny capture.

In-process through the console script's ``main`` (a process start costs seconds); exit codes and the
one-line stderr contract are what a shell sees.
"""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest
import torch

from handflow.multihands.store import multihands_dir, read_sequence, sequence_path

SEQ = "0001_touch_fingertips"
SMALL = "per_image = 8\niterations = 2\nproposals = 24\n"


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """The walk is many small tensor operations: on shared cores one intra-op thread is much faster."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _cli(args, monkeypatch, capsys) -> tuple[int, str, str]:
    from viewselect import cli

    monkeypatch.setattr(sys, "argv", ["viewselect", *map(str, args)])
    try:
        cli.main()
        code = 0
    except SystemExit as ex:
        code = ex.code or 0
    out = capsys.readouterr()
    return code, " ".join(out.out.split()), out.err  # stdout with rich's table-title wrapping undone


def _copy(tiny_data_root, tmp_path):
    root = tmp_path / "tiny"
    shutil.copytree(tiny_data_root, root)
    return root


def _stamp(path):
    st = path.stat()
    return st.st_ino, st.st_mtime_ns


def test_annotate_writes_resumes_and_recomputes_on_a_new_config(tiny_data_root, tmp_path, monkeypatch, capsys):
    root = _copy(tiny_data_root, tmp_path)
    config = tmp_path / "small.toml"
    config.write_text(SMALL)
    args = ["annotate", "--data-root", root, "--split", "test", "--sequence", f"Capture0/{SEQ}", "--per-image", 6,
            "--config", config, "--frames", 1]
    code, out, err = _cli(args, monkeypatch, capsys)
    assert code == 0 and err == "", err
    assert "1 sequences (0 up to date)" in out and "8 of 8" in out
    path = sequence_path(root, "test", 0, SEQ)
    arrays, meta = read_sequence(path)
    assert len(arrays["camera"]) == 8 and arrays["count"].max() <= 6 and arrays["count"].min() >= 1
    assert meta["provenance"]["config"]["multihands"]["per_image"] == 6  # the option overrides the config
    assert f"wrote {path}" in out

    # the same command again: nothing recomputed, the file untouched
    stamp = _stamp(path)
    code, out, _ = _cli(args, monkeypatch, capsys)
    assert code == 0 and "1 sequences (1 up to date)" in out and "8 of 8" in out
    assert _stamp(path) == stamp

    # a changed config recomputes
    config.write_text(SMALL.replace("proposals = 24", "proposals = 20"))
    code, out, _ = _cli(args, monkeypatch, capsys)
    assert code == 0 and "(0 up to date)" in out
    assert _stamp(path) != stamp
    assert read_sequence(path)[1]["counts"]["proposals"] == 8 * 2 * 20

    # the annotations drawn; a sequence without a file is a one-line error
    png = tmp_path / "ann.png"
    show = ["data", "show", "--data-root", root, "--sequence", f"Capture0/{SEQ}", "--camera", "400002", "--annotations"]
    from handflow.synth.mano import default_mano_dir

    code, out, err = _cli([*show, "--out", png, "--mano-dir", default_mano_dir()], monkeypatch, capsys)
    assert code == 0 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", err
    other = [*show[:5], "Capture0/0002_interlock_fingers", *show[6:], "--out", tmp_path / "no.png"]
    code, _, err = _cli(other, monkeypatch, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "run viewselect annotate first" in err
    assert not (tmp_path / "no.png").exists()


def test_unknown_sequence_is_a_one_line_error(tiny_data_root, monkeypatch, capsys):
    code, out, err = _cli(["annotate", "--data-root", tiny_data_root, "--sequence", "Capture0/nope"], monkeypatch, capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith("error:") and "nope" in err
    assert not multihands_dir(tiny_data_root, "test").exists()


def test_images_without_mano_are_skipped_counted_and_warned(tiny_data_root, tmp_path, monkeypatch, capsys):
    root = _copy(tiny_data_root, tmp_path)
    mano = root / "annotations" / "test" / "InterHand2.6M_test_MANO_NeuralAnnot.json"
    params = json.loads(mano.read_text())
    del params["0"]["10000"]["left"]  # the first of the sequence's two frames loses its left hand
    mano.write_text(json.dumps(params))
    config = tmp_path / "small.toml"
    config.write_text(SMALL)
    code, out, err = _cli(["annotate", "--data-root", root, "--sequence", f"Capture0/{SEQ}", "--config", config],
                          monkeypatch, capsys)
    assert code == 3
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: 8 image(s)"), err
    assert "8 of 16" in out
    arrays, meta = read_sequence(sequence_path(root, "test", 0, SEQ))
    skipped = meta["counts"]["skipped_no_mano"]
    assert len(skipped) == 8 and all(s.endswith("frame 10000") for s in skipped)
    assert meta["counts"]["annotated"] == 8 and set(arrays["frame"].tolist()) == {10001}
    assert np.all(arrays["count"] >= 1)
