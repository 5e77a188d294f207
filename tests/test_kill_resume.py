"""Interrupted work: ``train-model``, ``rank`` and ``annotate`` killed with SIGINT and SIGKILL at moments
when some of their work is done, then run again, end with the same result as an uninterrupted run.

The kills are aimed by watching the outputs: a training run is interrupted once it has started
training (``config.json`` written) and again right after its first checkpoint appears; ``rank`` once
its first per-view cache record appears and again once the second run adds a record; ``annotate`` once
its first sequence file appears and again once the second run writes another. The killed runs
are subprocesses of the real console script; the final and reference runs go in-process (same
entry point) to save process start-up. No sleeps or timing assertions: a poll loop watches the files
(a kill that arrived after the process finished would show in the asserted exit status).
"""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from handflow.checkpoint import load_checkpoint


def _start(args, env_extra=None) -> subprocess.Popen:
    env = {**os.environ, "VIEWSELECT_PROGRESS": "0", **(env_extra or {})}
    # A test run launched in the background (`cmd &`, nohup) inherits an ignored SIGINT, and Python then
    # never raises KeyboardInterrupt: give the child the default disposition so Ctrl-C means what it does
    # in a terminal.
    return subprocess.Popen([sys.executable, "-m", "viewselect", *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _kill_when(proc: subprocess.Popen, ready, sig: int) -> int:
    """Poll ``ready()`` until true, then send ``sig``; the exit status (-9 for SIGKILL).

    No deadline: the run ends by itself (a slow machine only delays it), and one that finished before
    its output appeared shows as exit 0 in the caller's assert.
    """
    while proc.poll() is None and not ready():
        time.sleep(0.01)
    if proc.poll() is None:
        proc.send_signal(sig)
    out, err = proc.communicate()
    if proc.returncode == 0:  # finished before the signal: show what it did (the caller's assert fails)
        print(f"kill arrived after the run finished; stdout:\n{out}\nstderr:\n{err}")
    return proc.returncode


def _run(args, monkeypatch, capsys) -> None:
    """The uninterrupted runs go in-process (the console script's ``main``): a process start is seconds."""
    from viewselect import cli

    monkeypatch.setattr(sys, "argv", ["viewselect", *map(str, args)])
    try:
        cli.main()
    except SystemExit as ex:
        assert ex.code in (0, None), f"exit {ex.code}\n{capsys.readouterr().err}"


def _log(path: Path) -> list[dict]:
    with open(path) as f:
        return [{k: v for k, v in r.items() if k != "train_images_per_s"} for r in csv.DictReader(f)]


def test_train_model_killed_twice_resumes_to_the_uninterrupted_result(tmp_path, tiny_train_config, tiny_model,
                                                                      monkeypatch, capsys):
    reference = tiny_model.parent  # the session's uninterrupted 2-epoch run of the same config
    out = tmp_path / "run"
    args = ["train-model", "--config", tiny_train_config, "--out", out]

    # 1. Ctrl-C during the first epoch: nothing checkpointed yet, exit 130, no last.pt
    rc = _kill_when(_start(args), lambda: (out / "config.json").exists(), signal.SIGINT)
    assert rc == 130
    assert not (out / "last.pt").exists() and not list(out.glob(".*.tmp"))

    # 2. start again; SIGKILL as soon as epoch 1 is checkpointed (possibly before log.csv is written)
    rc = _kill_when(_start(args), lambda: (out / "last.pt").exists(), signal.SIGKILL)
    assert rc == -signal.SIGKILL
    assert load_checkpoint(out / "last.pt")["epoch"] == 1  # the file under the real name is whole

    # 3. resume to the end
    _run([*args, "--resume"], monkeypatch, capsys)
    a = load_checkpoint(reference / "last.pt")
    b = load_checkpoint(out / "last.pt")
    assert b["epoch"] == a["epoch"] == 2
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    assert _log(out / "log.csv") == _log(reference / "log.csv")
    assert (out / "model.pt").is_file()


def test_rank_killed_twice_resumes_to_the_uninterrupted_result(tmp_path, tiny_model, monkeypatch, capsys):
    import dataclasses

    from handflow.synth.capture import load_synth_config, synthesize
    from handflow.synth.mano import default_mano_dir

    # 4 frames per view: the 56 views (224 images) take three model batches of 96 images, so each interrupted
    # run below is stopped with at least one whole batch still to go (with two batches, the second run could
    # write its last records before the signal landed)
    tiny = load_synth_config(Path(__file__).parent.parent / "configs" / "synth" / "tiny.toml")
    root = synthesize(dataclasses.replace(tiny, test_frames=4), tmp_path / "data")
    args = ["rank", "--sequence", "Capture0-1", "--data-root", root, "--model", tiny_model,
            "--mano-dir", default_mano_dir(), "--samples", "20"]
    ref_out, out = tmp_path / "ref", tmp_path / "out"
    monkeypatch.setenv("VIEWSELECT_CACHE", str(tmp_path / "ref-cache"))
    _run([*args, "--out", ref_out], monkeypatch, capsys)

    cache = tmp_path / "cache"
    env = {"VIEWSELECT_CACHE": str(cache)}
    records = lambda: list((cache / "rank").rglob("cam*.json"))  # noqa: E731

    # 1. Ctrl-C once the first per-view record is cached
    rc = _kill_when(_start([*args, "--out", out], env), lambda: len(records()) > 0, signal.SIGINT)
    assert rc == 130 and not out.exists()
    n_first = len(records())
    assert 0 < n_first < 56

    # 2. SIGKILL once the second run has cached a record of its own
    rc = _kill_when(_start([*args, "--out", out], env), lambda: len(records()) > n_first, signal.SIGKILL)
    assert rc == -signal.SIGKILL
    finished = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in records()}
    assert n_first < len(finished) < 56

    # 3. run to the end: only the unfinished views are computed, the finished ones are read back untouched,
    # and the table is the uninterrupted run's
    import viewselect.engine.scoring as engine

    computed = []
    real = engine.evaluate_batch

    def counting(model, views, cfg):
        computed.extend((v["capture"], v["seq"], v["camera"]) for v in views)
        return real(model, views, cfg)

    monkeypatch.setattr(engine, "evaluate_batch", counting)
    monkeypatch.setenv("VIEWSELECT_CACHE", str(cache))
    _run([*args, "--out", out], monkeypatch, capsys)
    assert len(records()) == 56
    assert len(computed) == len(set(computed)) == 56 - len(finished)
    assert all((p.stat().st_mtime_ns, p.read_bytes()) == v for p, v in finished.items())
    a = pd.read_csv(ref_out / "ranking.csv", dtype={"camera": str})
    b = pd.read_csv(out / "ranking.csv", dtype={"camera": str})
    pd.testing.assert_frame_equal(a, b, rtol=1e-4)


def test_annotate_killed_twice_resumes_to_the_uninterrupted_result(tmp_path, tiny_data_root, monkeypatch, capsys):
    from handflow.multihands.store import read_sequence, sequence_path

    config = tmp_path / "small.toml"
    config.write_text("per_image = 6\niterations = 2\nproposals = 24\n")
    ref_root, root = tmp_path / "ref", tmp_path / "data"
    shutil.copytree(tiny_data_root, ref_root)  # annotate writes beside the annotations: one copy per run
    shutil.copytree(tiny_data_root, root)
    args = ["annotate", "--sequence", "Capture0", "--split", "test", "--frames", "1", "--config", config]
    seqs = ["0001_touch_fingertips", "0002_interlock_fingers", "0003_cover_hand", "0004_fist_bump"]
    done = lambda: [s for s in seqs if sequence_path(root, "test", 0, s).is_file()]  # noqa: E731
    # The walk is many small tensor operations: on shared cores one intra-op thread is much faster.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    env = {"OMP_NUM_THREADS": "1"}
    try:
        _run([*args, "--data-root", ref_root], monkeypatch, capsys)
        capsys.readouterr()

        # 1. Ctrl-C once the first sequence file is written: exit 130, the written files whole
        rc = _kill_when(_start([*args, "--data-root", root], env), lambda: len(done()) > 0, signal.SIGINT)
        assert rc == 130
        n_first = len(done())
        assert 0 < n_first < len(seqs)

        # 2. SIGKILL once the second run has written a sequence of its own
        rc = _kill_when(_start([*args, "--data-root", root], env), lambda: len(done()) > n_first, signal.SIGKILL)
        assert rc == -signal.SIGKILL
        finished = done()
        stamps = {s: sequence_path(root, "test", 0, s).stat().st_mtime_ns for s in finished}
        for s in finished:  # a file under the real name is whole (atomic rename)
            read_sequence(sequence_path(root, "test", 0, s))

        # 3. run to the end: the finished sequences are kept, the rest computed
        _run([*args, "--data-root", root], monkeypatch, capsys)
        out = " ".join(capsys.readouterr().out.split())
        assert f"{len(seqs)} sequences ({len(finished)} up to date)" in out
        assert all(sequence_path(root, "test", 0, s).stat().st_mtime_ns == t for s, t in stamps.items())
    finally:
        torch.set_num_threads(threads)

    for s in seqs:
        a, ma = read_sequence(sequence_path(ref_root, "test", 0, s))
        b, mb = read_sequence(sequence_path(root, "test", 0, s))
        assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a), s
        assert ma["key"] == mb["key"] and ma["counts"] == mb["counts"]
