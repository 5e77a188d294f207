"""Training data that streams: peak memory and images/s of training steps on a 100,000-image split,
crops read by batch from the on-disk crop store vs the same crops held in memory.

Workload: ``configs/default.toml``'s model, loss and batch size. A 100,000-row crop store
(``handflow.data.store``, 128 px uint8 crops, 4.9 GB of images) is written by repeating the rows of the
tiny synthetic capture's training split (decoding 100,000 JPEGs would take ~20 minutes and measures the
decoder, not the trainer). Each arm runs in its own process (so peak RSS is its own): ``store`` reads every
batch with ``CropStore.rows`` (what ``train-model`` does), ``in-memory`` first loads the whole split into
tensors (what ``train-model`` did before the store) and indexes them. Both run the same optimisation steps
(full HandFlowNet loss + backward + AdamW) on random batches drawn from the whole split, after the same
warm-up. ``peak_rss_gib`` is the process's ``ru_maxrss``; images/s over the timed steps.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.timing import print_figures

REPO = Path(__file__).resolve().parent.parent
N_IMAGES = 100_000
STEPS = 40
WARMUP = 5


def _arm(store_path: str, in_memory: bool) -> dict:
    """One arm in this process: returns peak RSS (GiB) and training images/s."""
    from handflow.data.store import CropStore
    from handflow.hand.model import HandModel
    from handflow.synth.mano import default_mano_dir
    from handflow.model.registry import build_model
    from handflow.train import _TrainStep, _targets, load_train_config

    torch.manual_seed(0)
    cfg = load_train_config(REPO / "configs" / "default.toml")
    B = cfg.optim.batch_size
    store = CropStore(store_path)
    data = store.load() if in_memory else store
    hm = HandModel.from_dir(default_mano_dir())
    model = build_model(cfg.model, hm)
    y = store.column("y")
    model.set_y_normalization(y.mean(0), y.std(0))
    step = _TrainStep(model, cfg.loss)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    g = torch.Generator().manual_seed(0)
    t0 = None
    for i in range(WARMUP + STEPS):
        if i == WARMUP:
            t0 = time.perf_counter()
        idx = torch.randint(0, len(store), (B,), generator=g)
        images, tg = _targets(data, idx, "cpu")
        total, _ = step(images, tg)
        opt.zero_grad()
        total.backward()
        opt.step()
    dt = time.perf_counter() - t0
    return {"peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, "images_per_s": STEPS * B / dt}


def _build_store(path: Path) -> int:
    from handflow.preload import open_split
    from handflow.data.store import StoreWriter
    from handflow.synth.capture import load_synth_config, synthesize
    from handflow.hand.model import HandModel
    from handflow.synth.mano import default_mano_dir

    os.environ["VIEWSELECT_CACHE"] = str(path.parent / "cache")
    root = synthesize(load_synth_config(REPO / "configs" / "synth" / "tiny.toml"), path.parent / "tiny")
    src = open_split(root, "train", 128, HandModel.from_dir(default_mano_dir())).load()
    src.pop("skipped_no_mano")
    n = len(src["image"])
    w = StoreWriter(path)
    done = 0
    while done < N_IMAGES:  # whole copies of the source rows, in chunks of <= 4096
        k = min(N_IMAGES - done, 4096)
        rep = torch.arange(done, done + k) % n
        w.append({c: v[rep] for c, v in src.items()})
        done += k
    w.finish()
    return n


def run() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        t0 = time.perf_counter()
        distinct = _build_store(store)
        build_s = time.perf_counter() - t0
        arms = {}
        for name, mem in (("store", False), ("in_memory", True)):
            out = subprocess.run([sys.executable, "-m", "benchmarks.bench_store", "--arm", str(store), str(int(mem))],
                                 cwd=REPO, check=True, capture_output=True, text=True,
                                 env={**os.environ, "VIEWSELECT_CACHE": str(Path(tmp) / "cache")})
            arms[name] = json.loads(out.stdout.strip().splitlines()[-1])
    s, m = arms["store"], arms["in_memory"]
    return {
        "split_images": N_IMAGES,
        "distinct_source_images": distinct,
        "store_write_s": build_s,
        "store_peak_rss_gib": s["peak_rss_gib"],
        "in_memory_peak_rss_gib": m["peak_rss_gib"],
        "store_images_per_s": s["images_per_s"],
        "in_memory_images_per_s": m["images_per_s"],
        "store_vs_in_memory_speed": s["images_per_s"] / m["images_per_s"],
    }


def notes(f: dict) -> str:
    rss_ok = "met" if f["store_peak_rss_gib"] <= 6 else "**not met**"
    sp_ok = "met" if f["store_vs_in_memory_speed"] >= 0.9 else "**not met**"
    return (f"Goal: peak RSS of training on a {f['split_images']:,}-image split <= 6 GiB: "
            f"{f['store_peak_rss_gib']:.2f} GiB reading by batch from the crop store ({rss_ok}) against "
            f"{f['in_memory_peak_rss_gib']:.2f} GiB with the split in memory. Goal: images/s within 10 % of the "
            f"in-memory path: {f['store_vs_in_memory_speed']:.2f} of it ({sp_ok}; "
            f"{f['store_images_per_s']:.0f} vs {f['in_memory_images_per_s']:.0f} images/s, same run).")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--arm":
        print(json.dumps(_arm(sys.argv[2], bool(int(sys.argv[3])))))
    else:
        print_figures(run())
