"""The rank tables: same numbers in CSV, Parquet and XLSX; typed cells; all-or-nothing writes."""

import json
import re

import numpy as np
import pandas as pd
import polars as pl
import pytest
from openpyxl import load_workbook

import viewselect.outputs.tables as tables
from handflow.errors import HandflowError
from viewselect.stats.ranking import rank_views, to_pandas
from viewselect.outputs.tables import FILES, display_header, write_rank_result

ROWS = [
    ("Capture0/seq_a", "400002", 10.0, 20.0, 15.0, 10.0, 0.90, 0.0, 300.5),
    ("Capture0/seq_a", "400003", 20.0, 25.0, 14.0, 11.0, 0.80, 90.0, 320.25),
    ("Capture0/seq_a", "400004", 30.0, 40.0, 20.0, 12.0, 0.50, 180.0, 340.0),
    ("Capture1/seq_b", "400002", 25.0, 30.0, 18.0, 10.0, 0.70, 0.0, 300.5),
    ("Capture1/seq_b", "400003", 5.123456789, 22.0, 16.0, 10.0, 0.70, 90.0, 320.25),
    ("Capture1/seq_b", "400004", 15.0, 50.0, 19.0, 10.0, 0.70, 180.0, 340.0),
]
COLS = ["sequence", "camera", "ambiguity_mm", "mpjpe_global_mm", "mpjpe_rrr_mm", "mpjpe_rr_mm",
        "visible_fraction", "azimuth_deg", "campos_x_mm"]  # fmt: skip
PROVENANCE = {"version": "0.1.0+gtest", "command": "viewselect rank --drop 1",
              "config": {"model": "handflownet", "n_samples": 100, "sequences": ["Capture0-1"]}}  # fmt: skip


@pytest.fixture()
def result():
    return rank_views(pd.DataFrame(ROWS, columns=COLS), drop=1)


def _read_csv(path):
    return pd.read_csv(path, dtype={"camera": str})


def test_writes_all_files_with_same_numbers(tmp_path, result):
    out = tmp_path / "out"
    paths = write_rank_result(out, result, PROVENANCE)
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    assert set(paths) == set(FILES)

    csv = _read_csv(out / "ranking.csv")
    pq = to_pandas(pl.read_parquet(out / "ranking.parquet"))  # polars reads it: pyarrow is not a dependency
    pd.testing.assert_frame_equal(csv, pq, check_dtype=False)
    assert list(pq.columns) == list(result.cameras.columns)
    for col in result.cameras.columns:  # the Parquet file keeps each column's type and exact values
        assert pq[col].tolist() == result.cameras[col].tolist(), col
    assert csv["ambiguity_mm"].tolist() == result.cameras["ambiguity_mm"].tolist()  # full precision
    assert csv["keep"].tolist() == [True, True, False]

    sheets = pd.read_excel(out / "ranking.xlsx", sheet_name=None, engine="openpyxl", dtype={"camera": str})
    assert list(sheets) == ["cameras", "sequences", "summary", "drop list", "provenance"]
    cams = sheets["cameras"]
    assert list(cams.columns) == [display_header(c) for c in csv.columns]
    assert "ambiguity (mm)" in cams.columns and "MPJPE RRR (mm)" in cams.columns
    for col in csv.columns:
        x, y = csv[col], cams[display_header(col)]
        if pd.api.types.is_numeric_dtype(x) and not pd.api.types.is_bool_dtype(x):
            # openpyxl stores 16 significant digits (Excel itself keeps 15).
            np.testing.assert_allclose(x.to_numpy(float), y.to_numpy(float), rtol=1e-15, atol=0, err_msg=col)
        else:
            assert x.astype(str).tolist() == y.astype(str).tolist(), col
    assert sheets["drop list"]["camera"].astype(str).tolist() == result.drop_list == ["400004"]
    assert len(sheets["sequences"]) == 6

    summary = sheets["summary"]
    ref = result.summary
    np.testing.assert_allclose(summary["best regret (mm)"], ref["best_regret_mm"], rtol=1e-15, atol=0)
    # Undefined Spearman (constant visible fraction in seq_b) is an empty cell, not a string.
    assert summary["spearman"].isna().sum() == ref["spearman"].isna().sum() > 0


def test_xlsx_cells_are_typed_and_provenance_recorded(tmp_path, result):
    write_rank_result(tmp_path, result, PROVENANCE)
    wb = load_workbook(tmp_path / "ranking.xlsx")
    ws = wb["cameras"]
    header = [c.value for c in ws[1]]
    amb = header.index("ambiguity (mm)") + 1
    keep = header.index("keep") + 1
    cam = header.index("camera") + 1
    assert all(ws.cell(row=r, column=amb).data_type == "n" for r in range(2, ws.max_row + 1))
    assert ws.cell(row=2, column=keep).data_type == "b"
    assert ws.cell(row=2, column=cam).value == "400003"  # ids stay text
    prov = {row[0].value: row[1].value for row in wb["provenance"].iter_rows(min_row=2)}
    assert prov["version"] == "0.1.0+gtest"
    assert prov["config.n_samples"] == 100
    assert json.loads(prov["config.sequences"]) == ["Capture0-1"]


def test_summary_json(tmp_path, result):
    write_rank_result(tmp_path, result, PROVENANCE, extra={"triangulation": {"kept": {"mean_error_mm": 1.5}}})
    doc = json.loads((tmp_path / "summary.json").read_text())
    assert doc["provenance"] == PROVENANCE
    assert doc["selection"] == {"n_cameras": 3, "n_kept": 2, "kept": ["400003", "400002"], "drop_list": ["400004"]}
    assert doc["triangulation"]["kept"]["mean_error_mm"] == 1.5
    rows = {(r["sequence"], r["ranker"], r["alignment"]): r for r in doc["summary"]}
    assert rows[("overall", "oracle", "global")]["best_regret_mm"] == 0
    assert rows[("Capture1/seq_b", "visible_fraction", "global")]["spearman"] is None  # NaN -> null


def test_version_added_when_missing(tmp_path, result):
    write_rank_result(tmp_path, result, {"command": "x"})
    assert json.loads((tmp_path / "summary.json").read_text())["provenance"]["version"]


def test_unwritable_directory_names_path(tmp_path, result):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(HandflowError, match=re.escape(str(blocker / "out"))):
        write_rank_result(blocker / "out", result, PROVENANCE)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_failure_mid_write_leaves_nothing(tmp_path, result, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "ranking.csv").write_text("previous run\n")

    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tables, "_write_xlsx", boom)
    with pytest.raises(HandflowError, match=r"ranking\.xlsx.*No space left"):
        write_rank_result(out, result, PROVENANCE)
    # The CSV and Parquet were complete in temporaries but never renamed; nothing else is left.
    assert sorted(p.name for p in out.iterdir()) == ["ranking.csv"]
    assert (out / "ranking.csv").read_text() == "previous run\n"


def test_unstorable_provenance_is_an_error(tmp_path, result):
    with pytest.raises(HandflowError, match="cannot store"):
        write_rank_result(tmp_path / "o", result, {"config": {"bad": object()}})
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_display_header():
    assert display_header("ambiguity_mm") == "ambiguity (mm)"
    assert display_header("regret_global_mm") == "regret Global (mm)"
    assert display_header("visible_fraction") == "visible fraction (0–1)"
    assert display_header("azimuth_deg") == "azimuth (deg)"
    assert display_header("n_sequences") == "number of sequences"
    assert display_header("camera") == "camera"
