"""A full-size release: the one-time annotation index, then ``rank`` on one sequence, vs whole-JSON loads.

Workload: :func:`handflow.data.fake_release.write_fake_release` writes a release holding the default
synthetic capture plus ``N`` fake annotated images (the real files' structure; ``N`` from
``VIEWSELECT_BENCH_IMAGES``, default 1,000,000: about a real split), kept under
``<cache>/bench-release-N`` for reruns. Each figure is measured in a fresh Python process (``nice``
inherited), so peak memory is that process's whole resident peak (``ru_maxrss``: interpreter, torch
and model included), and times include nothing from earlier steps:

* ``index`` — ``viewselect data index`` of the split (streaming JSON -> Parquet): wall and CPU seconds,
  peak RSS. Goal: <= 10 min, <= 4 GiB on 2 cores.
* ``whole_json`` — the straightforward alternative every command used to pay: ``json`` loads of the four
  annotation files (what the reader did before the index).
* ``rank`` — ``run_rank`` of one sequence (``Capture0/0001_touch_fingertips``, 140 cameras x 6 frames,
  100 samples, empty rank cache, the index already built): time to the first scored batch of images
  (the engine's first ``evaluate_batch``) and peak RSS, on the big release and on the default capture
  alone. Goal: <= 10 s, <= 2 GiB.

Wall times on a shared machine vary with its load; CPU seconds (user + system) vary much less.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SEQUENCE = "Capture0/0001_touch_fingertips"

_MEASURE = r"""
import json, os, resource, sys, time
t0 = time.perf_counter(); c0 = time.process_time()
out = {}
exec(sys.argv[1])
out.setdefault("wall_s", time.perf_counter() - t0)
out["cpu_s"] = time.process_time() - c0
out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print("MEASURED " + json.dumps(out))
"""

_INDEX = """
from pathlib import Path
from handflow.data.index import ensure_index
m = ensure_index(Path(os.environ["BENCH_ROOT"]), "test").manifest()
out["rows"] = m["counts"]["rows"]
"""

_WHOLE = """
from pathlib import Path
from handflow.io import read_json
root = Path(os.environ["BENCH_ROOT"]) / "annotations" / "test"
objs = [read_json(p) for p in sorted(root.glob("*.json"))]
out["files_mib"] = sum(p.stat().st_size for p in root.glob("*.json")) / 2**20
"""

_RANK = """
import viewselect.engine.scoring as engine
from viewselect.engine.scoring import RankConfig
from viewselect.ranking.pipeline import RankRequest, run_rank
real = engine.evaluate_batch
def first(*a, **k):
    r = real(*a, **k)
    out.setdefault("first_scored_s", time.perf_counter() - t0)
    out.setdefault("first_batch_images", sum(len(v["frame"]) for v in a[1]))
    return r
engine.evaluate_batch = first
res = run_rank(RankRequest(sequence=os.environ["BENCH_SEQUENCE"], data_root=os.environ["BENCH_ROOT"],
                           engine=RankConfig(samples=100)))
out["views"] = len(res.views)
out["ambiguity_mean_mm"] = float(res.views["ambiguity_mm"].mean())
"""


def _measure(code: str, env: dict) -> dict:
    proc = subprocess.run([sys.executable, "-c", _MEASURE, code], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "VIEWSELECT_PROGRESS": "0", **env})
    for line in proc.stdout.splitlines():
        if line.startswith("MEASURED "):
            return json.loads(line[len("MEASURED "):])
    raise RuntimeError(f"benchmark step failed:\n{proc.stderr[-3000:]}")


def run() -> dict:
    from handflow.data.fake_release import write_fake_release
    from handflow.synth.capture import ensure_default_data
    from handflow.cache import cache_dir

    n = int(os.environ.get("VIEWSELECT_BENCH_IMAGES", "1000000"))
    base = ensure_default_data()
    big = cache_dir() / f"bench-release-{n}"
    if not (big / "annotations" / "test" / "InterHand2.6M_test_data.json").is_file():
        write_fake_release(big, n, base=base)
    figures: dict = {"fake_images": n}
    with tempfile.TemporaryDirectory() as cache:
        env = {"VIEWSELECT_CACHE": cache, "BENCH_ROOT": str(big), "BENCH_SEQUENCE": SEQUENCE}
        idx = _measure(_INDEX, env)
        figures.update(index_rows=idx["rows"], index_wall_s=idx["wall_s"], index_cpu_s=idx["cpu_s"],
                       index_peak_rss_mib=idx["peak_rss_mib"])
        whole = _measure(_WHOLE, env)
        figures.update(json_files_mib=whole["files_mib"], whole_json_wall_s=whole["wall_s"],
                       whole_json_cpu_s=whole["cpu_s"], whole_json_peak_rss_mib=whole["peak_rss_mib"])
        rank = _measure(_RANK, env)
        figures.update(rank_first_scored_s=rank["first_scored_s"], rank_first_batch_images=rank["first_batch_images"],
                       rank_wall_s=rank["wall_s"], rank_cpu_s=rank["cpu_s"], rank_peak_rss_mib=rank["peak_rss_mib"],
                       rank_views=rank["views"], rank_ambiguity_mean_mm=rank["ambiguity_mean_mm"])
    with tempfile.TemporaryDirectory() as cache:
        env = {"VIEWSELECT_CACHE": cache, "BENCH_ROOT": str(base), "BENCH_SEQUENCE": SEQUENCE}
        _measure(_INDEX, env)
        small = _measure(_RANK, env)
        figures.update(default_rank_first_scored_s=small["first_scored_s"], default_rank_wall_s=small["wall_s"],
                       default_rank_peak_rss_mib=small["peak_rss_mib"],
                       default_rank_ambiguity_mean_mm=small["ambiguity_mean_mm"])
    figures["load_average_15min"] = os.getloadavg()[2]  # wall times grow with other work on the machine
    return figures


def notes(f: dict) -> str:
    ok = lambda cond: "met" if cond else "NOT met"  # noqa: E731
    same = f["rank_ambiguity_mean_mm"] == f["default_rank_ambiguity_mean_mm"]
    return (
        f"Release: the default capture plus {f['fake_images']:,} fake annotated images "
        f"({f['json_files_mib']:.0f} MiB of JSON, {f['index_rows']:,} index rows).\n\n"
        f"* Index build: {f['index_wall_s']:.0f} s wall ({f['index_cpu_s']:.0f} s CPU), peak "
        f"{f['index_peak_rss_mib']:.0f} MiB — goal <= 600 s and <= 4096 MiB: "
        f"{ok(f['index_wall_s'] <= 600 and f['index_peak_rss_mib'] <= 4096)}.\n"
        f"* Whole-JSON load alone (the old reader's first step, before any validation): "
        f"{f['whole_json_wall_s']:.0f} s wall, peak {f['whole_json_peak_rss_mib']:.0f} MiB — on every command.\n"
        f"* `rank` of {SEQUENCE} through the index: first scored batch ({f['rank_first_batch_images']} images) after "
        f"{f['rank_first_scored_s']:.1f} s, peak {f['rank_peak_rss_mib']:.0f} MiB (default capture alone: "
        f"{f['default_rank_first_scored_s']:.1f} s, {f['default_rank_peak_rss_mib']:.0f} MiB) — goal <= 10 s and "
        f"<= 2048 MiB: {ok(f['rank_first_scored_s'] <= 10 and f['rank_peak_rss_mib'] <= 2048)}. Mean ambiguity "
        f"identical to the capture alone: {'yes' if same else 'NO'}.\n"
    )


if __name__ == "__main__":
    from benchmarks.timing import print_figures

    figs = run()
    print_figures(figs)
    print(notes(figs))
