"""Cost growth of ``rank``, and ``viewselect rank`` on one sequence of the real release's size.

Both parts use one generated capture: one test sequence (``Capture0/0001_touch_fingertips``) of 100
frames x 140 cameras = 14,000 images, the real release's size per sequence, on the 140-camera test
dome at the default image size, written into a temporary folder (``release_config``; its generation
time is its own figure, ``release_seq_100x140_generate_s``). Everything this benchmark caches goes to
temporary caches too, with the user's synthetic MANO files linked in.

Sweeps (:func:`evaluate_sweeps`): ``viewselect.engine.scoring.evaluate_views`` (what ``rank`` runs:
loading overlapped in a thread, encoder on every re-crop, chunked sampling, statistics, per-view cache
writes into a fresh temporary cache) with the shipped model on that sequence. Three sweeps from a base
of 10 cameras x 6 frames x 100 samples: cameras (10 -> 140), frames per sequence (1 -> 6, evenly
spaced) and samples per image (10 -> 1000). Peak memory is the process's resident set size sampled
every 2 ms during the call, minus the resident size just before it: what the call adds. It must stay
bounded: images are processed one camera batch (``batch_images``) at a time and the flow in chunks of
``chunk_rows`` image x sample rows, so it grows with neither cameras nor samples. Writes
``reports/rank-scaling.png``.

Release-size runs (:func:`release_runs`): the command a user runs, ``viewselect rank --data-root ROOT
--split test --sequence Capture0/0001_touch_fingertips --out DIR`` (the CLI's defaults otherwise), each in
a fresh empty ``VIEWSELECT_CACHE`` (the annotation index built, every view scored; the shipped model is
in the repository): one process with 2 threads (``OMP_NUM_THREADS=2``), ``torchrun --standalone
--nproc_per_node 2`` with ``OMP_NUM_THREADS=1`` per process, and one process with 1 thread (each torchrun
worker's arithmetic). Figures: wall seconds of the whole command (start-up, index, scoring, bootstrap,
outputs), camera-images/s, peak memory -- one process: its peak resident set (the kernel's high-water
mark ``VmHWM``; not ``wait4``'s ``ru_maxrss``, which also holds the forking parent's size); torchrun: the
peak of the summed resident sets of its whole process tree (the agent and the workers, sampled from
``/proc`` every 50 ms; pages shared between processes count once per process) -- and whether torchrun wrote the same values as each single process: ``ranking.csv`` and
``summary.json`` without its ``provenance`` (request, dates, paths), with the largest absolute
difference of any number in them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from benchmarks.timing import print_figures

REPO = Path(__file__).resolve().parent.parent
PNG = REPO / "reports" / "rank-scaling.png"


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _trim() -> None:
    """Hand freed heap back to the OS (glibc), so the baseline is not padded by earlier runs' free lists."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass


def measure(fn) -> tuple[float, float]:
    """``(wall seconds, peak added resident MiB)`` of ``fn()``."""
    _trim()
    base = _rss_mb()
    peak = [base]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], _rss_mb())
            time.sleep(0.002)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    t0 = time.perf_counter()
    try:
        fn()
    finally:
        wall = time.perf_counter() - t0
        stop.set()
        th.join()
    return wall, max(peak[0], _rss_mb()) - base


SEQUENCE = "Capture0/0001_touch_fingertips"  # the first test motion, the one a 1-sequence capture holds


def release_config(frames: int = 100, cameras: int = 140):
    """The synthetic capture of one test sequence, ``frames`` x ``cameras`` images (default image size);
    the training and validation splits empty (rank reads the test split alone)."""
    from dataclasses import replace

    from handflow.synth.capture import SynthConfig

    return replace(SynthConfig(), test_frames=frames, test_cameras=cameras, test_sequences=1,
                   train_captures=0, val_sequences=0)


def run(base_cams: int = 10, base_frames: int = 6, base_samples: int = 100,
        release_frames: int = 100, release_cameras: int = 140) -> dict:
    """Generate the release-size sequence, run :func:`evaluate_sweeps` on it, then :func:`release_runs`."""
    from handflow.synth.capture import synthesize
    from handflow.synth.mano import default_mano_dir

    tag = f"release_seq_{release_frames}x{release_cameras}"
    load_before = os.getloadavg()[0]
    mano = default_mano_dir()  # the user's synthetic MANO: every cache below links it
    with tempfile.TemporaryDirectory(prefix="viewselect-scale-") as tmp, _cache_at(Path(tmp) / "cache", mano):
        t0 = time.perf_counter()
        root = synthesize(release_config(release_frames, release_cameras), Path(tmp) / "capture")
        generate_s = time.perf_counter() - t0
        out = evaluate_sweeps(root, base_cams, base_frames, base_samples)
        out.update({f"{tag}_images": release_frames * release_cameras, f"{tag}_generate_s": generate_s})
        runs = release_runs(root, Path(tmp), mano, release_frames * release_cameras)
        out.update({f"{tag}_{k}": v for k, v in runs.items()})
    out.update({f"{tag}_load_avg_before": load_before, f"{tag}_load_avg_after": os.getloadavg()[0]})
    return out


@contextmanager
def _cache_at(folder: Path, mano: Path):
    """``VIEWSELECT_CACHE`` at ``folder`` (the synthetic MANO linked in) meanwhile: the temporary capture's
    annotation index is not left behind in the user's cache."""
    folder.mkdir(parents=True)
    (folder / "mano").symlink_to(mano)
    old = os.environ.get("VIEWSELECT_CACHE")
    os.environ["VIEWSELECT_CACHE"] = str(folder)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("VIEWSELECT_CACHE")
        else:
            os.environ["VIEWSELECT_CACHE"] = old


def evaluate_sweeps(root: Path, base_cams: int = 10, base_frames: int = 6, base_samples: int = 100) -> dict:
    """Wall seconds and peak added MiB of ``evaluate_views`` along the three axes on :data:`SEQUENCE` of
    ``root``'s test split, the shipped model; writes the plot."""
    os.environ["VIEWSELECT_PROGRESS"] = "0"
    from handflow.data.interhand import InterHandDataset
    from handflow.hand.model import HandModel
    from handflow.model.registry import load_model
    from handflow.synth.mano import default_mano_dir
    from viewselect.engine.scoring import RankConfig, evaluate_views
    from viewselect.ranking.pipeline import resolve_model_path

    model, _ = load_model(resolve_model_path(None), HandModel.from_dir(default_mano_dir()))
    ds = InterHandDataset(root, "test", selection=SEQUENCE, crop_px=model.cfg.crop_px)
    (capture, seq), = ds.sequences()
    all_cams = ds.camera_ids(capture, seq)
    n_frames = len(ds.frames(capture, seq))

    def point(cams: int, frames: int, samples: int) -> tuple[float, float]:
        cfg = RankConfig(samples=samples, frames=min(frames, n_frames))
        with tempfile.TemporaryDirectory() as cache:
            return measure(lambda: evaluate_views(model, "bench-scale", ds, [(capture, seq)], cfg, Path(cache),
                                                  cameras=all_cams[:cams]))

    point(2, 1, 10)  # warm-up: the inference plan, allocator pools
    cams_axis = sorted({c for c in (10, 35, 70, 140) if c <= len(all_cams)} | {min(base_cams, len(all_cams))})
    frames_axis = sorted({f for f in (1, 2, 3, 6) if f <= n_frames})
    samples_axis = [10, 100, 300, 1000]
    b_cams, b_frames = min(base_cams, len(all_cams)), min(base_frames, n_frames)
    sweeps = {
        "cameras": [(c, point(c, b_frames, base_samples)) for c in cams_axis],
        "frames": [(f, point(b_cams, f, base_samples)) for f in frames_axis],
        "samples": [(s, point(b_cams, b_frames, s)) for s in samples_axis],
    }
    _plot(sweeps, b_cams, b_frames, base_samples)
    out: dict = {"base": f"{b_cams} cameras x {b_frames} frames x {base_samples} samples, 1 sequence"}
    for name, pts in sweeps.items():
        for x, (wall, mem) in pts:
            out[f"{name}_{x}_s"] = wall
            out[f"{name}_{x}_peak_mib"] = mem
    cam_pts = sweeps["cameras"]
    if len(cam_pts) > 1:
        (c0, (w0, m0)), (c1, (w1, m1)) = cam_pts[0], cam_pts[-1]
        out["time_per_camera_growth"] = (w1 / c1) / (w0 / c0)  # 1.0 = linear in cameras
        out["peak_mib_growth_cameras"] = m1 / max(m0, 1.0)
    s_pts = sweeps["samples"]
    out["peak_mib_growth_samples_10_to_1000"] = s_pts[-1][1][1] / max(s_pts[0][1][1], 1.0)
    out["plot"] = str(PNG.relative_to(REPO))
    return out


def release_runs(root: Path, work: Path, mano: Path, images: int) -> dict:
    """``viewselect rank`` on :data:`SEQUENCE` (``images`` camera-images) of ``root``: one process on 2
    threads, ``torchrun --nproc_per_node 2`` on 1 thread each, one process on 1 thread. Figures (no prefix):
    wall s, images/s and peak MiB of each run, the CLI defaults it ran with, and whether torchrun's outputs
    equal each single process's (with the largest absolute difference)."""
    # (processes, threads each): the 2 cores as one process, as torchrun's 2; one process on 1 thread
    # is the same arithmetic as each torchrun worker's (a thread count reorders float32 sums)
    plan = {"single": (1, 2), "torchrun2": (2, 1), "single_1thread": (1, 1)}
    runs = {name: _rank_command(root, work / name, n, threads, mano) for name, (n, threads) in plan.items()}
    out: dict = {}
    for name, r in runs.items():
        out[f"{name}_s"] = r["wall_s"]
        out[f"{name}_cpu_s"] = r["cpu_s"]
        out[f"{name}_images_per_s"] = images / r["wall_s"]
        out[f"{name}_peak_mib"] = r["peak_mib"]
        out[f"{name}_others_cores"] = r["others_cores"]  # > 0: another job shared the machine
    out["torchrun2_largest_process_peak_mib"] = runs["torchrun2"]["largest_process_mib"]
    out["torchrun2_speedup"] = runs["single"]["wall_s"] / runs["torchrun2"]["wall_s"]
    for ref, key in (("single", "identical"), ("single_1thread", "identical_to_single_1thread")):
        same, diff = compare_outputs(runs[ref]["out"], runs["torchrun2"]["out"])
        out[f"torchrun2_{key}"] = same
        out[f"torchrun2_{key}_max_abs_diff"] = diff
    request = json.loads((runs["single"]["out"] / "summary.json").read_text())["provenance"]["config"]["request"]
    out.update(samples=request["engine"]["samples"], crops=request["engine"]["crops"],
               bootstrap=request["bootstrap_resamples"])  # the CLI's defaults, as the runs used them
    return out


def _rank_command(root: Path, work: Path, processes: int, threads: int, mano: Path) -> dict:
    """Run ``viewselect rank`` on :data:`SEQUENCE` of ``root`` (``processes`` > 1: under torchrun), with
    ``OMP_NUM_THREADS=threads`` per process, in a fresh cache under ``work`` (``mano`` linked in).

    Returns ``wall_s``; ``cpu_s``: the command's CPU seconds (all its processes); ``others_cores``: the
    cores other processes of the machine kept busy meanwhile, on average; ``peak_mib``: one process, its peak RSS; torchrun, the peak of the process tree's
    summed RSS; ``largest_process_mib``: the largest peak RSS of any one process; ``out``: the output folder."""
    cache = work / "cache"
    cache.mkdir(parents=True)
    (cache / "mano").symlink_to(mano)  # shared; the view cache and the index start empty
    rank = ["-m", "viewselect", "rank", "--data-root", str(root), "--split", "test", "--sequence", SEQUENCE,
            "--out", str(work / "out")]
    if processes > 1:  # torchrun's own entry point, run by this interpreter
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}", *rank]
    else:
        cmd = [sys.executable, *rank]
    env = {**os.environ, "VIEWSELECT_CACHE": str(cache), "VIEWSELECT_PROGRESS": "0", "OMP_NUM_THREADS": str(threads),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    peak_sum, hwm = [0.0], {}  # summed RSS; each process's high-water mark (monotonic: the last sample holds)
    stop = threading.Event()
    cpu0 = _cpu_s()
    with open(work / "log.txt", "wb") as log:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)

        def sample():
            while not stop.is_set():
                tree = _tree_memory_mib(proc.pid)
                peak_sum[0] = max(peak_sum[0], sum(rss for rss, _ in tree.values()))
                hwm.update({p: max(hwm.get(p, 0.0), h) for p, (_, h) in tree.items()})
                time.sleep(0.05)

        th = threading.Thread(target=sample, daemon=True)
        th.start()
        rc = proc.wait()
        wall = time.perf_counter() - t0
        stop.set()
        th.join()
    machine, children, me = (b - a for a, b in zip(cpu0, _cpu_s()))
    if rc != 0:
        tail = (work / "log.txt").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{' '.join(cmd)} exited {rc}:\n{tail}")
    largest = max(hwm.values(), default=0.0)
    return {"wall_s": wall, "cpu_s": children, "others_cores": max(0.0, machine - children - me) / wall,
            "peak_mib": hwm.get(proc.pid, 0.0) if processes == 1 else peak_sum[0],
            "largest_process_mib": largest, "out": work / "out"}


def _cpu_s() -> tuple[float, float, float]:
    """CPU seconds so far: the whole machine's busy time (``/proc/stat``), this process's finished
    children's (a torchrun agent waits for its workers, so theirs are in it), this process's own."""
    import resource

    with open("/proc/stat") as f:
        ticks = [int(v) for v in f.readline().split()[1:8]]  # user nice system idle iowait irq softirq
    busy = (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")
    cpu = lambda u: u.ru_utime + u.ru_stime  # noqa: E731
    return busy, cpu(resource.getrusage(resource.RUSAGE_CHILDREN)), cpu(resource.getrusage(resource.RUSAGE_SELF))


def _tree_memory_mib(pid: int) -> dict[int, tuple[float, float]]:
    """``{pid: (resident MiB, peak resident MiB)}`` of ``pid`` and all its descendants, from ``/proc``
    (``VmRSS``, ``VmHWM``: the peak since the process's last exec, so a forked copy's memory is not
    counted); empty once they are gone."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])  # the name in () may hold spaces
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = {}, [pid]
    while todo:
        p = todo.pop()
        todo.extend(children.get(p, []))
        try:
            with open(f"/proc/{p}/status") as f:
                kib = {k: int(v.split()[0]) for k, _, v in (line.partition(":") for line in f)
                       if k in ("VmRSS", "VmHWM")}
            out[p] = (kib["VmRSS"] / 1024, kib["VmHWM"] / 1024)
        except (OSError, KeyError, ValueError):
            pass  # exited meanwhile (a zombie has no Vm lines)
    return out


def compare_outputs(a: Path, b: Path) -> tuple[bool, float]:
    """Whether two ``rank --out`` folders hold equal values in ``ranking.csv`` and in ``summary.json``
    (its ``provenance`` left out: request, dates, paths), and the largest absolute difference of any
    number in them (0.0 when equal; inf when anything but a number differs: a string, a key, a shape)."""
    import pandas as pd

    csv = [pd.read_csv(d / "ranking.csv", dtype={"camera": str}) for d in (a, b)]
    docs = [json.loads((d / "summary.json").read_text()) for d in (a, b)]
    for doc in docs:
        doc.pop("provenance", None)
    diff = _max_diff(csv[0].to_dict(orient="list"), csv[1].to_dict(orient="list"))
    diff = max(diff, _max_diff(docs[0], docs[1]))
    return diff == 0.0, diff


def _max_diff(x, y) -> float:
    """Largest absolute difference between the numbers of two nested JSON-like values (NaN equals NaN)."""
    if isinstance(x, dict) and isinstance(y, dict):
        if x.keys() != y.keys():
            return float("inf")
        return max((_max_diff(x[k], y[k]) for k in x), default=0.0)
    if isinstance(x, list) and isinstance(y, list):
        if len(x) != len(y):
            return float("inf")
        return max((_max_diff(u, v) for u, v in zip(x, y)), default=0.0)
    numbers = (int, float)
    if isinstance(x, numbers) and isinstance(y, numbers) and not isinstance(x, bool) and not isinstance(y, bool):
        if x != x and y != y:  # NaN in both
            return 0.0
        return abs(float(x) - float(y)) if x == x and y == y else float("inf")
    return 0.0 if x == y else float("inf")


def _plot(sweeps: dict, cams: int, frames: int, samples: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(12, 6.5))
    labels = {"cameras": f"cameras ({frames} frames, {samples} samples)",
              "frames": f"frames ({cams} cameras, {samples} samples)",
              "samples": f"samples per image ({cams} cameras, {frames} frames)"}
    for j, (name, pts) in enumerate(sweeps.items()):
        xs = [x for x, _ in pts]
        axes[0, j].plot(xs, [w for _, (w, _) in pts], "o-")
        axes[1, j].plot(xs, [m for _, (_, m) in pts], "o-", color="tab:red")
        axes[0, j].set_ylabel("wall time (s)")
        axes[1, j].set_ylabel("peak added RSS (MiB)")
        axes[1, j].set_xlabel(labels[name])
        if name == "samples":
            for ax in axes[:, j]:
                ax.set_xscale("log")
        for ax in axes[:, j]:
            ax.grid(alpha=0.3)
            ax.set_ylim(bottom=0)
    fig.suptitle("viewselect rank: cost growth (evaluate_views, one sequence, fresh cache)")
    fig.tight_layout()
    PNG.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(PNG, dpi=110)
    plt.close(fig)


def notes(f: dict) -> str:
    return _sweep_notes(f) + "\n\n" + _release_notes(f)


def _sweep_notes(f: dict) -> str:
    return f"""![rank cost growth](rank-scaling.png)

Wall time grows linearly with cameras x frames (time per camera at the largest rig vs. the smallest:
{f.get('time_per_camera_growth', float('nan')):.2f}x; below 1 where small runs pay fixed start-up costs) and
with samples per image (the flow and lifting dominate). Peak memory is bounded: it rises until one
camera batch (`batch_images` = 96 images, plus the next batch decoded ahead) is full, then stays flat
however many cameras follow ({f.get('peak_mib_growth_cameras', float('nan')):.2f}x from the smallest to the largest rig),
and 10 -> 1000 samples per image adds {f['peak_mib_growth_samples_10_to_1000']:.2f}x, not 100x: the flow runs in
chunks of `chunk_rows` = 16384 image x sample rows whose joints are folded into streaming per-image
statistics at once."""


def _release_notes(f: dict) -> str:
    keys = [k for k in f if k.startswith("release_seq_") and k.endswith("_generate_s")]
    if not keys:
        return ""
    tag = keys[0][: -len("_generate_s")]
    frames, cameras = tag[len("release_seq_"):].split("x")
    g = lambda name: f[f"{tag}_{name}"]  # noqa: E731

    def agree(key: str) -> str:
        if g(key):
            return "equal values"
        return f"equal to {g(key + '_max_abs_diff'):.2g} at most (largest absolute difference of any number)"

    if not g("torchrun2_identical_to_single_1thread"):
        cause = ("Sharding the views itself changed numbers, against `viewselect/engine/distributed.py`'s promise "
                 "that results do not depend on the number of processes.")
    elif not g("torchrun2_identical"):
        cause = "Sharding the views changes no number; the thread count alone moved float32 sums in their last bits."
    else:
        cause = "Neither sharding the views nor the thread count changes a number."
    return f"""**One sequence of the real release's size** (`release_seq_*`, {frames} frames x {cameras} cameras =
{g('images')} images, the capture the sweeps above also read; generated in {g('generate_s'):.0f} s on one thread, not
part of any time below): `viewselect rank --data-root ROOT
--split test --sequence {SEQUENCE} --out DIR` with the CLI's defaults ({g('samples')} samples, {g('crops')} re-crops
per image, {g('bootstrap')} bootstrap resamples), each run in a fresh empty `VIEWSELECT_CACHE` (the annotation index
is built and every view scored; the MANO files shared), timed as the whole command:

| run | wall | CPU | camera-images/s | peak memory | other jobs meanwhile |
| --- | --- | --- | --- | --- | --- |
| one process, 2 threads | {g('single_s'):.0f} s | {g('single_cpu_s'):.0f} s | {g('single_images_per_s'):.0f} | {g('single_peak_mib'):.0f} MiB (its peak RSS) | {g('single_others_cores'):.2f} cores |
| `torchrun --standalone --nproc_per_node 2`, `OMP_NUM_THREADS=1` each | {g('torchrun2_s'):.0f} s | {g('torchrun2_cpu_s'):.0f} s | {g('torchrun2_images_per_s'):.0f} | {g('torchrun2_peak_mib'):.0f} MiB summed over the process tree (largest process {g('torchrun2_largest_process_peak_mib'):.0f} MiB) | {g('torchrun2_others_cores'):.2f} cores |
| one process, 1 thread | {g('single_1thread_s'):.0f} s | {g('single_1thread_cpu_s'):.0f} s | {g('single_1thread_images_per_s'):.0f} | {g('single_1thread_peak_mib'):.0f} MiB (its peak RSS) | {g('single_1thread_others_cores'):.2f} cores |

torchrun's `ranking.csv` and `summary.json` (without `provenance`) against the 2-thread process:
{agree('torchrun2_identical')}; against the 1-thread process, whose arithmetic per view is each
torchrun worker's: {agree('torchrun2_identical_to_single_1thread')}. {cause} The tree's sum counts
the torch libraries once per process (the agent and 2 workers), so it overstates the memory in use.
"Other jobs meanwhile": the machine's busy CPU (`/proc/stat`) beyond this benchmark's, per second of the
run; above 0 the runs shared the {os.cpu_count()} cores and their wall times are longer than on a quiet machine.
Load average (1 min) {g('load_avg_before'):.2f} before the capture was generated, {g('load_avg_after'):.2f} after the last run."""


if __name__ == "__main__":
    print_figures(run())
