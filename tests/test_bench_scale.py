"""benchmarks/bench_scale.py's release-size part: the output comparison, the process-tree memory, the command."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pandas as pd
import pytest


def _write(folder, ambiguity, summary):
    folder.mkdir()
    pd.DataFrame({"camera": ["400002", "400004"], "ambiguity_mm": ambiguity, "keep": [True, False]}) \
        .to_csv(folder / "ranking.csv", index=False)
    (folder / "summary.json").write_text(json.dumps(summary))


def test_compare_outputs_values_not_provenance(tmp_path):
    from benchmarks.bench_scale import compare_outputs

    doc = {"provenance": {"date_utc": "a"}, "selection": {"drop_list": ["400004"]},
           "summary": [{"mean_regret_mm": 1.5, "n": 3, "best": float("nan")}]}
    _write(tmp_path / "a", [10.0, float("nan")], doc)
    _write(tmp_path / "b", [10.0, float("nan")], {**doc, "provenance": {"date_utc": "b"}})
    assert compare_outputs(tmp_path / "a", tmp_path / "b") == (True, 0.0)  # NaN = NaN, provenance ignored
    _write(tmp_path / "c", [10.0 + 2e-5, float("nan")], doc)
    same, diff = compare_outputs(tmp_path / "a", tmp_path / "c")
    assert not same and diff == pytest.approx(2e-5, rel=1e-3)
    _write(tmp_path / "d", [10.0, float("nan")], {**doc, "selection": {"drop_list": ["400002"]}})
    assert compare_outputs(tmp_path / "a", tmp_path / "d") == (False, float("inf"))


def test_tree_memory_counts_the_children():
    import os

    from benchmarks.bench_scale import _tree_memory_mib

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        time.sleep(0.3)  # the child's interpreter is up
        tree = _tree_memory_mib(os.getpid())
        assert set(tree) >= {os.getpid(), child.pid}
        rss, hwm = tree[child.pid]
        assert 1.0 < rss <= hwm < tree[os.getpid()][1]  # its own interpreter only, not a copy of ours
    finally:
        child.kill()
        child.wait()
    assert _tree_memory_mib(child.pid) == {}


def test_rank_command_runs_the_cli_in_a_fresh_cache(tiny_data_root, tmp_path):
    from benchmarks.bench_scale import _rank_command
    from handflow.synth.mano import default_mano_dir

    r = _rank_command(tiny_data_root, tmp_path / "run", processes=1, threads=1, mano=default_mano_dir())
    assert r["wall_s"] > 0 and r["peak_mib"] == r["largest_process_mib"] > 50  # a torch process
    ranking = pd.read_csv(r["out"] / "ranking.csv", dtype={"camera": str})
    assert len(ranking) == 8  # the tiny rig's cameras, one sequence
    assert list((tmp_path / "run" / "cache" / "rank").rglob("cam*.json"))  # its own view cache
