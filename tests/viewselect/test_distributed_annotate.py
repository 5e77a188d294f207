"""`annotate` under torch.distributed: 2 gloo processes share out the sequences and write exactly the files
one process writes."""

from __future__ import annotations

import os
import shutil
import socket
import sys

import numpy as np
import torch

from handflow.multihands.annotate import shard_sequences
from handflow.multihands.store import multihands_dir, read_sequence

SMALL = "per_image = 4\niterations = 1\nproposals = 12\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _args(root, config):
    return ["viewselect", "annotate", "--data-root", str(root), "--split", "test", "--sequence",
            "Capture0/0001_touch_fingertips,Capture0/0002_interlock_fingers",
            "--frames", "1", "--config", str(config)]


def _worker(rank: int, world: int, port: int, root: str, config: str, results) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from viewselect.cli import main

    sys.argv = _args(root, config)
    try:
        main()
    except SystemExit as ex:
        results[rank] = f"exit {ex.code}"
        raise
    results[rank] = "ok"


def test_shard_sequences_balances_and_covers():
    sizes = {(0, "a"): 10, (0, "b"): 7, (0, "c"): 5, (1, "d"): 3, (1, "e"): 3}
    shares = [shard_sequences(sizes, r, 2) for r in range(2)]
    assert sorted(shares[0] + shares[1]) == sorted(sizes)
    assert sorted(sum(sizes[k] for k in s) for s in shares) == [13, 15]
    assert shard_sequences(sizes, 0, 1) == sorted(sizes)
    assert shard_sequences(sizes, 9, 10) == []  # more processes than sequences: some idle


def test_two_gloo_processes_write_the_single_process_files(tmp_path, tiny_data_root, monkeypatch):
    config = tmp_path / "small.toml"
    config.write_text(SMALL)
    one, two = tmp_path / "one", tmp_path / "two"
    for root in (one, two):
        shutil.copytree(tiny_data_root, root)
    ctx = torch.multiprocessing.get_context("spawn")
    results = ctx.Manager().dict()
    port = _free_port()
    procs = [ctx.Process(target=_worker, args=(r, 2, port, str(two), str(config), results)) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    assert [p.exitcode for p in procs] == [0, 0], dict(results)

    from viewselect.cli import main

    monkeypatch.setattr(sys, "argv", _args(one, config))
    main()
    files = sorted(p.relative_to(multihands_dir(one, "test")) for p in multihands_dir(one, "test").rglob("*.npz"))
    assert len(files) == 2
    assert files == sorted(p.relative_to(multihands_dir(two, "test")) for p in multihands_dir(two, "test").rglob("*.npz"))
    for name in files:
        a, meta_a = read_sequence(multihands_dir(one, "test") / name)
        b, meta_b = read_sequence(multihands_dir(two, "test") / name)
        assert a.keys() == b.keys()
        for k in a:
            if k != "meta":  # the meta holds run times and timestamps
                np.testing.assert_array_equal(a[k], b[k], err_msg=f"{name}: {k}")
        assert meta_a["key"] == meta_b["key"] and meta_a["counts"] == meta_b["counts"]
