"""Each command end to end through the installed console entry point, on tiny data."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest


def run(*args, cwd=None, check=True):
    env = {**os.environ, "VIEWSELECT_PROGRESS": "0"}
    p = subprocess.run([sys.executable, "-m", "viewselect", *map(str, args)], capture_output=True, text=True,
                       env=env, cwd=cwd, timeout=600)
    if check and p.returncode != 0:
        raise AssertionError(f"exit {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}")
    return p


def test_data_synth_and_show(tmp_path):
    root = tmp_path / "capture"
    run("data", "synth", "--tiny", "--root", root)
    assert (root / "annotations" / "test" / "InterHand2.6M_test_camera.json").is_file()
    png = tmp_path / "f.png"
    cams = json.loads((root / "annotations" / "test" / "InterHand2.6M_test_camera.json").read_text())["0"]["campos"]
    run("data", "show", "--data-root", root, "--sequence", "Capture0/0001_touch_fingertips",
        "--camera", sorted(cams)[0], "--out", png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = run("data", "show", "--data-root", root, "--sequence", "Capture0/0001_touch_fingertips",
              "--camera", "nope", "--out", png, check=False)
    assert bad.returncode == 2 and "nope" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_train_model_command(tmp_path, tiny_train_config, tiny_data_root):
    out = tmp_path / "run"
    run("train-model", "--config", tiny_train_config, "--out", out, "--seed", "3")
    assert (out / "model.pt").is_file() and (out / "log.csv").is_file()
    written = json.loads((out / "config.json").read_text())
    assert written["config"]["seed"] == 3  # the flag, not the file's 0
    assert written["encoder_dtype"] == "float32"  # the tiny config leaves amp_cpu off
    again = run("train-model", "--config", tiny_train_config, "--out", out, check=False)
    assert again.returncode == 2 and "--resume" in again.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("[model]\nbackbone_depth = 19\n")
    r = run("train-model", "--config", bad, "--out", tmp_path / "x", check=False)
    assert r.returncode == 2 and "backbone_depth" in r.stderr and not (tmp_path / "x").exists()


def test_rank_command(tmp_path, tiny_data_root, tiny_model):
    out = tmp_path / "results"
    r = run("rank", "--sequence", "Capture0-1", "--data-root", tiny_data_root, "--model", tiny_model,
            "--samples", "8", "--frames", "1", "--keep", "4", "--strategy", "coverage", "--out", out)
    assert "HandFlowNet ambiguity" in r.stdout
    cams = pd.read_csv(out / "ranking.csv", dtype={"camera": str})
    assert len(cams) == 8 and cams["keep"].sum() == 4
    summary = json.loads((out / "summary.json").read_text())
    assert summary["provenance"]["version"] and summary["triangulation"]["n_kept"] == 4
    for name in ("ranking.parquet", "ranking.xlsx"):
        assert (out / name).is_file()


@pytest.mark.parametrize("args, needle", [
    (["--drop", "1", "--keep", "2"], "conflict"),
    (["--sequence", "Capture7"], "Capture7"),
    (["--sequence", "Kapture0"], "Kapture0"),
])
def test_rank_bad_input_one_line_error(tmp_path, tiny_data_root, tiny_model, args, needle):
    out = tmp_path / "results"
    r = run("rank", "--data-root", tiny_data_root, "--model", tiny_model, "--samples", "4", "--frames", "1",
            "--out", out, *args, check=False)
    assert r.returncode == 2
    assert needle in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not out.exists()
