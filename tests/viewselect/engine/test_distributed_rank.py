"""`rank` under torch.distributed: 2 gloo processes shard the cameras and agree with one process."""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

import pandas as pd
import torch
from processes import join_all

ARGS = ["--sequence", "Capture0-1", "--samples", "8", "--frames", "2", "--keep", "3", "--out", "results"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_worker(rank: int, world: int, port: int, root: str, model: str, workdir: str, results) -> None:
    """One torchrun-like process: the CLI, a fresh per-view cache, its own working directory."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    import viewselect.ranking.pipeline as rank_mod
    from viewselect.cli import main

    rank_mod.default_cache_root = lambda: Path(workdir) / "rank-cache"  # nothing served from another run
    os.chdir(workdir)
    sys.argv = ["viewselect", "rank", "--data-root", root, "--model", model, *ARGS]
    try:
        main()
    except SystemExit as ex:  # main() exits only on errors
        results[rank] = f"exit {ex.code}"
        raise
    results[rank] = "ok"


def test_two_gloo_processes_give_the_single_process_ranking(tmp_path, tiny_data_root, tiny_model, monkeypatch):
    ctx = torch.multiprocessing.get_context("spawn")
    results = ctx.Manager().dict()
    port = _free_port()
    dirs = [tmp_path / f"proc{r}" for r in range(2)]
    for d in dirs:
        d.mkdir()
    procs = [ctx.Process(target=_rank_worker,
                         args=(r, 2, port, str(tiny_data_root), str(tiny_model), str(dirs[r]), results))
             for r in range(2)]
    for p in procs:
        p.start()
    assert join_all(procs) == [0, 0], dict(results)
    assert dict(results) == {0: "ok", 1: "ok"}
    # process 0 wrote the outputs, process 1 nothing; each scored its own half of the views
    assert (dirs[0] / "results" / "ranking.csv").is_file() and not (dirs[1] / "results").exists()
    n_views = [len(list((d / "rank-cache").rglob("cam*.json"))) for d in dirs]
    assert n_views[0] > 0 and n_views[1] > 0 and abs(n_views[0] - n_views[1]) <= 1

    # the same request in one process (its own fresh cache)
    import viewselect.ranking.pipeline as rank_mod
    from viewselect.cli import main

    monkeypatch.setattr(rank_mod, "default_cache_root", lambda: tmp_path / "single-cache")
    single = tmp_path / "single"
    single.mkdir()
    monkeypatch.chdir(single)
    monkeypatch.setattr(sys, "argv", ["viewselect", "rank", "--data-root", str(tiny_data_root),
                                      "--model", str(tiny_model), *ARGS])
    main()
    assert len(list((tmp_path / "single-cache").rglob("cam*.json"))) == sum(n_views)

    one = pd.read_csv(single / "results" / "ranking.csv", dtype={"camera": str})
    two = pd.read_csv(dirs[0] / "results" / "ranking.csv", dtype={"camera": str})
    pd.testing.assert_frame_equal(one, two, check_exact=False, rtol=1e-5, atol=1e-6)
    s1 = json.loads((single / "results" / "summary.json").read_text())
    s2 = json.loads((dirs[0] / "results" / "summary.json").read_text())
    for key in ("selection", "summary", "triangulation"):
        assert _close(s1[key], s2[key]), key


def _close(a, b) -> bool:
    """Nested JSON values equal up to float rounding."""
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= 1e-6 + 1e-5 * abs(b)
    return a == b
