"""``viewselect evaluate`` end to end on the tiny capture with MultiHands annotations."""

from __future__ import annotations

import json
import math
import sys

import pytest

import pandas as pd
from typer.testing import CliRunner

from viewselect.cli import app
from viewselect.multihands.evaluation import _md, parse_models


def test_parse_models_names():
    assert parse_models("a=x/model.pt,runs/b/model.pt")[1][0] == "b"
    assert parse_models("x.pt")[0][0] == "x"


def test_markdown_cells_keep_small_weights_and_round_the_rest():
    row = _md(pd.DataFrame([{"w": 0.0005, "zero": 0.0, "mmd": 0.82470, "mm": 83.894, "none": float("nan")}])).splitlines()[-1]
    assert row == "| 0.0005 | 0.000 | 0.825 | 83.9 | – |"


def test_evaluate_writes_tables(tmp_path, tiny_multihands_root, tiny_model):
    out = tmp_path / "reports"
    res = CliRunner().invoke(app, ["evaluate", "--models", f"flow={tiny_model},again={tiny_model}", "--data-root",
                                   str(tiny_multihands_root), "--samples", "8", "--annotations", "5",
                                   "--frames", "2", "--out", str(out)])
    assert res.exit_code == 0, res.output
    t1 = pd.read_csv(out / "evaluation-table1.csv")
    t2 = pd.read_csv(out / "evaluation-table2.csv")
    assert list(t2["model"]) == ["flow", "again"]
    # The same checkpoint with the same noise gives the same figures; closest <= ground truth <= farthest
    # (the ground truth is one of the annotations).
    assert t2.iloc[0]["mmd_global"] == t2.iloc[1]["mmd_global"]
    for _, r in t1.iterrows():
        assert r["global_min_mm"] <= r["gt_global_mm"] + 1e-3 <= r["global_max_mm"] + 2e-3
    for v in t2[["mmd_global", "mmd_rrr", "mmd_rr"]].values.ravel():
        assert 0 <= v <= math.sqrt(2)
    md = (out / "evaluation.md").read_text()
    assert "Table 1" in md and str(tiny_model) in md
    assert json.loads((out / "evaluation.json").read_text())["provenance"]["version"]


def test_evaluate_without_annotations_is_one_line_error(tmp_path, tiny_data_root, tiny_model, capsys, monkeypatch):
    from viewselect import cli

    out = tmp_path / "reports"
    monkeypatch.setattr(sys, "argv", ["viewselect", "evaluate", "--models", str(tiny_model), "--data-root",
                                      str(tiny_data_root), "--out", str(out)])
    capsys.readouterr()
    with pytest.raises(SystemExit) as ex:
        cli.main()
    err = capsys.readouterr().err
    assert ex.value.code == 2
    assert "viewselect annotate" in err and len(err.strip().splitlines()) == 1
    assert not out.exists() or not any(out.iterdir())


def test_evaluate_model_prints_held_out_figures(tiny_data_root, tiny_model):
    res = CliRunner().invoke(app, ["evaluate-model", "--model", str(tiny_model), "--data-root", str(tiny_data_root),
                                   "--samples", "4", "--max-images", "6"])
    assert res.exit_code == 0, res.output
    figures = json.loads(res.output)
    assert figures["images"] == 6 and figures["samples_per_image"] == 4
    for al in ("global", "rrr", "rr"):
        assert math.isfinite(figures[f"mode_mpjpe_{al}_mm"]) and figures[f"constant_mpjpe_{al}_mm"] > 0
    assert figures["sample_std_mm"] > 0
