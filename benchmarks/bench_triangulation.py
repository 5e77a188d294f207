"""The triangulation comparison every ``rank`` runs (kept vs full vs random rigs), quiet and beside a busy process.

    python -m benchmarks.bench_triangulation    # prints a Markdown snippet
    python -m benchmarks triangulation          # updates reports/benchmarks.md

Workload: :func:`viewselect.rig.comparison.kept_summary` over 7 sequences of a 140-camera dome, 20 frames each
(the default test captures' shape): 22 subsets (kept, full rig, 20 random rigs) × 7 sequences = 154 DLT solves
of 840 points each. The solve inside :func:`viewselect.rig.triangulation.triangulate_dlt` (one batched numpy
``eigh`` of each point's 4 × 4 normal matrix) is timed against the one it replaced (a batched torch SVD of each
point's (2V, 4) system, with torch's threads), both quiet and while another process keeps both cores busy — the case of
a ``rank`` re-run beside a training, where the threaded solver's workers spin. Both give the same points.
"""

from __future__ import annotations

import math
import subprocess
import sys
import time
from unittest import mock

import numpy as np
import torch

from benchmarks.timing import best_time, print_figures
from handflow.geometry.camera import Camera, look_at
from viewselect.rig import triangulation
from viewselect.rig.comparison import kept_summary
from viewselect.rig.triangulation import Scene

CENTER = np.array([0.0, 0.0, 1000.0])
# a process keeping both cores busy with torch's own threads, as a training run does
BUSY = "import torch\ntorch.set_num_threads(2)\na = torch.randn(1500, 1500)\nwhile True:\n    a = torch.tanh(a @ a)\n"


def dome(n: int = 140, radius: float = 1000.0) -> list[Camera]:
    """``n`` cameras on a Fibonacci sphere cap around the hands, looking at them."""
    cams = []
    for i in range(n):
        z = 1.0 - 1.6 * (i + 0.5) / n  # elevations from above to well below the hands
        r, az = math.sqrt(1.0 - z * z), math.pi * (3.0 - math.sqrt(5.0)) * i
        pos = CENTER + radius * np.array([r * math.cos(az), r * math.sin(az), z])
        cams.append(Camera(look_at(pos, CENTER), pos, np.array([1200.0, 1180.0]), np.array([167.0, 256.0])))
    return cams


def scenes(n_sequences: int = 7, n_cameras: int = 140, frames: int = 20, seed: int = 0) -> list[Scene]:
    """Sequences of random two-hand joints (60 mm around the centre), each joint seen by 70 % of the cameras."""
    rng = np.random.default_rng(seed)
    cams, ids = dome(n_cameras), [f"{400000 + i}" for i in range(n_cameras)]
    return [Scene(f"Capture0/{s:04d}", ids, cams, CENTER + rng.normal(0.0, 60.0, (frames, 42, 3)),
                  rng.random((n_cameras, frames, 42)) < 0.7) for s in range(n_sequences)]


def svd_null_vectors(A: np.ndarray) -> np.ndarray:
    """The solve ``triangulate_dlt`` replaced: each point's (2V, 4) system through one batched torch SVD
    (torch's threads), the right singular vector of the smallest singular value."""
    return torch.linalg.svd(torch.from_numpy(A), full_matrices=False)[2][:, -1, :].numpy()


def run(repeats: int = 3) -> dict:
    sc = scenes()
    ids = sc[0].camera_ids
    for scene in sc:
        scene.error([0, 1], 1.0, 0)  # each scene projects its joints once, for both paths
    kept = ids[3:]  # three cameras dropped, as the default rule did on the embedded capture

    def eigh_path():
        return kept_summary(sc, kept, ids)

    def svd_path():
        with mock.patch.object(triangulation, "_null_vectors", svd_null_vectors):
            return kept_summary(sc, kept, ids)

    a, b = eigh_path(), svd_path()
    diff = max(abs(a[k] - b[k]) for k in ("kept_error_mm", "full_error_mm", "random_error_mm"))
    quiet_eigh, quiet_svd = best_time(eigh_path, repeats), best_time(svd_path, repeats)
    busy = subprocess.Popen([sys.executable, "-c", BUSY], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(2.0)  # let it start its threads
        busy_eigh = best_time(eigh_path, repeats)
        busy_svd = best_time(svd_path, 1)  # one run: it takes minutes
    finally:
        busy.kill()
        busy.wait()
    return {
        "sequences_x_cameras_x_frames": f"{len(sc)}x{len(ids)}x{sc[0].joints_world_mm.shape[0]}",
        "dlt_solves": len(sc) * 22,
        "quiet_eigh_s": quiet_eigh,
        "quiet_threaded_svd_s": quiet_svd,
        "quiet_svd_over_eigh": quiet_svd / quiet_eigh,
        "busy_eigh_s": busy_eigh,
        "busy_threaded_svd_s": busy_svd,
        "busy_svd_over_eigh": busy_svd / busy_eigh,
        "max_abs_diff_mm": diff,
        "torch_threads": torch.get_num_threads(),
    }


def notes(f: dict) -> str:
    return (
        f"`rank`'s triangulation comparison ({f['dlt_solves']} DLT solves) takes {f['quiet_eigh_s']:.2f} s on a quiet "
        f"machine and {f['busy_eigh_s']:.2f} s beside a process keeping both cores busy. The threaded SVD it replaced "
        f"took {f['quiet_svd_over_eigh']:.1f}x as long quiet and {f['busy_svd_over_eigh']:.0f}x as long beside the busy "
        "process: its workers spin waiting for cores the other process holds (a `rank` re-run beside a training took "
        "minutes). The same figures to "
        f"{f['max_abs_diff_mm']:.0e} mm."
    )


if __name__ == "__main__":
    print_figures(run())
