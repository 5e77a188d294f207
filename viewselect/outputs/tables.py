"""Write the ``rank`` tables for rig-planning spreadsheets: CSV, Parquet, XLSX and a JSON summary.

Files written into ``out_dir`` (all or nothing — see :func:`write_rank_tables`):

* ``ranking.csv`` / ``ranking.parquet`` — the camera-level table (one row per camera over the
  selected sequences, in ranking order, with ``keep``). Machine-readable snake_case headers that
  carry the unit (``ambiguity_mm``); floats written at full precision. With the bootstrap
  (:mod:`viewselect.stats.bootstrap`): ``ambiguity_ci_low_mm`` / ``ambiguity_ci_high_mm`` and
  ``regret_<alignment>_ci_low_mm`` / ``_ci_high_mm`` (95 % intervals, mm) and, with a drop list,
  ``drop_consensus`` (0–1: share of resamples in which the camera is among the dropped count's most
  ambiguous).
* ``ranking.xlsx`` — sheets ``cameras``, ``sequences`` (per sequence × camera), ``summary``
  (best/worst/mean regret and Spearman per ranker), ``drop list`` and ``provenance`` (config,
  version, command, date as key/value rows). Numeric cells are typed numbers with 16 significant
  digits (openpyxl's precision; Excel itself keeps 15), NaN an empty cell, booleans are booleans;
  headers are human-readable with units ("ambiguity (mm)").
* ``summary.json`` — the provenance dict, the selection (kept cameras, drop list) and the summary
  rows, plus what ``rank`` adds (triangulation, bootstrap settings, the default rule's reason, the
  verdict); NaN is written as ``null``.
* ``error_vs_cameras.csv`` (``rank --error-vs-cameras``) — :func:`viewselect.rig.subsets.subset_curves`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from handflow.errors import HandflowError
from handflow.io import atomic_path
from viewselect.stats.ranking import to_polars

# pandas here: the tables arrive as RankResult's pandas frames, CSV keeps pandas' float formatting
# (the stored CSVs), and openpyxl is fed row tuples; only the Parquet file is written by polars.

FILES = ("ranking.csv", "ranking.parquet", "ranking.xlsx", "summary.json")
CURVE_FILE = "error_vs_cameras.csv"  # with rank --error-vs-cameras
SHEETS = ("cameras", "sequences", "summary", "drop list", "provenance")

_UNITS = {"_mm": "mm", "_deg": "deg", "_px": "px", "_m": "m", "_s": "s"}
_WORDS = {"mpjpe": "MPJPE", "rrr": "RRR", "rr": "RR", "global": "Global", "n": "number of", "ci": "95 % CI"}
_SHARES = ("visible_fraction", "drop_consensus", "failed_fraction")  # dimensionless, 0–1


def display_header(column: str) -> str:
    """Spreadsheet header for a snake_case column: ``mpjpe_rrr_mm`` -> ``MPJPE RRR (mm)``."""
    unit = None
    for suffix, name in _UNITS.items():
        if column.endswith(suffix) and len(column) > len(suffix):
            column, unit = column[: -len(suffix)], name
            break
    words = " ".join(_WORDS.get(w, w) for w in column.split("_"))
    if column in _SHARES:
        unit = "0–1"
    return f"{words} ({unit})" if unit else words


def _cell(value: Any) -> Any:
    """A value openpyxl stores as a typed cell: numpy scalars -> Python, NaN -> empty."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if not math.isfinite(float(value)) else float(value)
    if isinstance(value, str):
        return value
    return str(value)


def _jsonable(value: Any) -> Any:
    """JSON-safe copy: numpy -> Python, NaN/inf -> None, tuples -> lists, paths -> str."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in list(value)]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(float(value)) else None
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise HandflowError(f"summary.json: cannot store a value of type {type(value).__name__}")


def _flatten(d: dict, prefix: str = "") -> list[tuple[str, Any]]:
    rows = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            rows.extend(_flatten(v, key + "."))
        elif isinstance(v, (list, tuple, dict)):
            rows.append((key, json.dumps(_jsonable(v))))
        else:
            rows.append((key, _cell(_jsonable(v))))
    return rows


def _number_format(column: str) -> str | None:
    if column.endswith(("_mm", "_deg", "_px")):
        return "0.00"
    if column in ("spearman", *_SHARES):
        return "0.000"
    return None


def _write_sheet(wb, title: str, df: pd.DataFrame) -> None:
    from openpyxl.styles import Font

    ws = wb.create_sheet(title)
    headers = [display_header(str(c)) for c in df.columns]
    if len(set(headers)) != len(headers):  # two columns would read the same in the spreadsheet
        raise HandflowError(f"sheet {title!r}: ambiguous column headers {headers}")
    ws.append(headers)
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for row in df.itertuples(index=False, name=None):
        ws.append([_cell(v) for v in row])
    for j, col in enumerate(df.columns, start=1):
        letter = ws.cell(row=1, column=j).column_letter
        ws.column_dimensions[letter].width = max(10, len(headers[j - 1]) + 2)
        fmt = _number_format(str(col))
        if fmt:
            for (cell,) in ws.iter_rows(min_row=2, min_col=j, max_col=j):
                cell.number_format = fmt
    ws.freeze_panes = "A2"


def _write_xlsx(path: Path, sheets: dict[str, pd.DataFrame], provenance: dict) -> None:
    from openpyxl import Workbook

    wb = Workbook()
    wb.remove(wb.active)
    for title, df in sheets.items():
        _write_sheet(wb, title, df)
    ws = wb.create_sheet("provenance")
    ws.append(["key", "value"])
    for key, value in _flatten(provenance):
        ws.append([key, value])
    ws.column_dimensions["A"].width = 28
    ws.column_dimensions["B"].width = 60
    wb.save(path)


def write_rank_tables(
    out_dir: str | os.PathLike,
    *,
    cameras: pd.DataFrame,
    sequences: pd.DataFrame,
    summary: pd.DataFrame,
    drop_list: list,
    provenance: dict,
    extra: dict | None = None,
    error_vs_cameras: pd.DataFrame | None = None,
) -> dict[str, Path]:
    """Write :data:`FILES` into ``out_dir``; returns ``{file name: path}``.

    error_vs_cameras: :func:`viewselect.rig.subsets.subset_curves`' table, written as
    ``error_vs_cameras.csv`` with the others (same all-or-nothing rule) when given.

    cameras / sequences / summary / drop_list: the fields of :class:`viewselect.stats.ranking.RankResult`.
    provenance: JSON-able dict (config, model, data, version …) recorded in the XLSX and JSON;
    ``version`` is added when absent. extra: more JSON-able content for ``summary.json`` (e.g. the
    triangulation comparison).

    All-or-nothing: every file is first written to a temporary file beside its target; only when
    all four are complete are they renamed into place. A failure (unwritable directory, a value
    that cannot be stored) raises :class:`HandflowError` naming the path and leaves neither
    partial files nor temporaries behind.
    """
    out_dir = Path(out_dir)
    if not isinstance(provenance, dict):
        raise HandflowError(f"provenance must be a dict, found {type(provenance).__name__}")
    if "version" not in provenance:
        from handflow.provenance import code_version

        provenance = {"version": code_version(), **provenance}
    dropped = cameras[~cameras["keep"]] if "keep" in cameras.columns else cameras.iloc[:0]
    drop_cols = [c for c in ("camera", "ambiguity_mm", "ambiguity_ci_low_mm", "ambiguity_ci_high_mm", "drop_consensus",
                             "ambiguity_rank", "n_sequences") if c in cameras.columns]
    drop_sheet = dropped[drop_cols].reset_index(drop=True)
    doc = {
        "provenance": provenance,
        "selection": {
            "n_cameras": int(len(cameras)),
            "n_kept": int(len(cameras) - len(drop_list)),
            "kept": [c for c in cameras["camera"].tolist() if c not in set(drop_list)],
            "drop_list": list(drop_list),
        },
        "summary": summary.to_dict(orient="records"),
        **(extra or {}),
    }
    paths = {name: out_dir / name for name in FILES}
    if error_vs_cameras is not None:
        paths[CURVE_FILE] = out_dir / CURVE_FILE
    current = out_dir
    try:
        json_text = json.dumps(_jsonable(doc), indent=2, allow_nan=False)
        with contextlib.ExitStack() as stack:
            tmp = {name: stack.enter_context(atomic_path(p)) for name, p in paths.items()}
            current = paths["ranking.csv"]
            cameras.to_csv(tmp["ranking.csv"], index=False)
            current = paths["ranking.parquet"]
            to_polars(cameras).write_parquet(tmp["ranking.parquet"])  # polars: no pyarrow needed
            current = paths["ranking.xlsx"]
            sheets = {"cameras": cameras, "sequences": sequences, "summary": summary, "drop list": drop_sheet}
            _write_xlsx(tmp["ranking.xlsx"], sheets, provenance)
            current = paths["summary.json"]
            tmp["summary.json"].write_text(json_text, encoding="utf-8")
            if error_vs_cameras is not None:
                current = paths[CURVE_FILE]
                error_vs_cameras.to_csv(tmp[CURVE_FILE], index=False)
            current = out_dir
    except HandflowError as err:
        if str(current) in str(err):
            raise
        raise HandflowError(f"cannot write {current}: {err}") from err
    except (OSError, ValueError, TypeError, ImportError, pl.exceptions.PolarsError) as err:
        # polars/openpyxl raise a variety of types; the user needs the path and the reason.
        reason = getattr(err, "strerror", None) or str(err) or type(err).__name__
        raise HandflowError(f"cannot write {current}: {reason}") from err
    return paths


def write_rank_result(out_dir: str | os.PathLike, result, provenance: dict, extra: dict | None = None,
                      error_vs_cameras: pd.DataFrame | None = None):
    """:func:`write_rank_tables` for a :class:`viewselect.stats.ranking.RankResult`."""
    return write_rank_tables(
        out_dir,
        cameras=result.cameras,
        sequences=result.sequences,
        summary=result.summary,
        drop_list=result.drop_list,
        provenance=provenance,
        extra=extra,
        error_vs_cameras=error_vs_cameras,
    )
