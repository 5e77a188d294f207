"""MultiHands throughput: annotations per second of the random walk, and the batched plausibility check
vs. checking the same proposals one at a time.

    python -m benchmarks.bench_multihands     # prints a Markdown snippet
    python -m benchmarks multihands           # updates reports/benchmarks.md

Workload: the default synthetic capture's test split (``ensure_default_data``, 256x168 images), the
first frame of each of ``n_images`` sequences, one camera each (spread over the rig), the synthetic
MANO, ``configs/multihands.toml`` (100 annotations per image, 10 rounds of 128 proposals). "walk" is
what ``viewselect annotate`` does per image: the ground truth's targets (one depth test) and
``walk_image``; annotations per second count the stored ones (ground truth included).

"batched vs loop": 128 proposals, one walk step from the ground truth of the image with the most
occluded joints (so the depth test has work), checked by one ``Plausibility.check`` call vs. 128
calls on one proposal each; the verdicts are checked equal. Both at one intra-op thread and at
torch's default count: the check is many small tensor operations, where extra threads mostly add
synchronisation, and on cores shared with other work that overhead can explode (see the notes).
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from benchmarks.timing import best_time, print_figures

REPO = Path(__file__).resolve().parent.parent


def _setup(n_images: int):
    from handflow.config import load_config
    from handflow.data.interhand import InterHandDataset
    from handflow.synth.capture import ensure_default_data
    from handflow.hand.model import HandModel
    from handflow.synth.mano import default_mano_dir
    from handflow.multihands.config import MultiHandsConfig
    from handflow.multihands.criteria import Plausibility

    cfg = load_config(MultiHandsConfig, REPO / "configs" / "multihands.toml")
    ds = InterHandDataset(ensure_default_data(), "test", max_frames=1)
    seqs = sorted({(it["capture"], it["seq"]) for it in ds.items})[:n_images]
    picks = []
    for k, (cap, seq) in enumerate(seqs):
        cams = ds.camera_ids(cap, seq)
        cam = cams[(k * len(cams)) // max(len(seqs), 1)]
        picks.append(ds.index_of(cap, seq, cam, ds.frames(cap, seq)[0]))
    return ds, picks, cfg, Plausibility(HandModel.from_dir(default_mano_dir()), cfg)


def _image(ds, plaus, i):
    it = ds.items[i]
    hw = (int(it["height"]), int(it["width"]))
    g = ds.geometry(i, hw)
    return g, plaus.targets(g, hw)


def _walk_images(ds, picks, cfg, plaus) -> tuple[float, int, int, int]:
    """Seconds, annotations, proposals and accepted proposals of walking every picked image."""
    from handflow.multihands.annotate import image_seed
    from handflow.multihands.walk import walk_image

    seconds, n_ann, n_prop, n_acc = 0.0, 0, 0, 0
    for i in picks:
        it = ds.items[i]
        t0 = time.perf_counter()
        g, tg = _image(ds, plaus, i)
        gt = {k: torch.as_tensor(g[k], dtype=torch.float32) for k in ("pose", "shape", "trans")}
        gen = torch.Generator().manual_seed(image_seed(cfg.seed, it["capture"], it["seq"], it["camera"], it["frame"]))
        ann, stats = walk_image(plaus, gt, tg, cfg, gen)
        seconds += time.perf_counter() - t0
        n_ann += len(ann["pose"])
        n_prop += stats.proposals
        n_acc += stats.accepted
    return seconds, n_ann, n_prop, n_acc


def _proposals(ds, picks, cfg, plaus):
    from handflow.multihands.walk import _ray_frame, perturb

    best = max(picks, key=lambda i: int(_image(ds, plaus, i)[1].occluded.sum()))
    g, tg = _image(ds, plaus, best)
    gt = [torch.as_tensor(g[k], dtype=torch.float32)[None] for k in ("pose", "shape", "trans")]
    frame = _ray_frame(tg, plaus.keypoints_mm(*gt)[0, [20, 41]])
    P = cfg.proposals
    props = perturb(plaus, gt[0].expand(P, 2, 48), gt[1].expand(P, 2, 10), gt[2].expand(P, 2, 3), frame, cfg,
                    torch.Generator().manual_seed(0))
    return props, tg


def run(n_images: int = 4, repeats: int = 3) -> dict:
    ds, picks, cfg, plaus = _setup(n_images)
    default_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        seconds, n_ann, n_prop, n_acc = _walk_images(ds, picks, cfg, plaus)
        props, tg = _proposals(ds, picks, cfg, plaus)
        batch = plaus.check(*props, tg)
        for p in range(len(props[0])):  # the loop must agree with the batch before timing it
            one = plaus.check(*(x[p: p + 1] for x in props), tg)
            assert all(bool(one[k][0]) == bool(batch[k][p]) for k in batch), p
        loop = lambda: [plaus.check(*(x[p: p + 1] for x in props), tg) for p in range(len(props[0]))]  # noqa: E731
        t_batch = best_time(lambda: plaus.check(*props, tg), repeats)
        t_loop = best_time(loop, repeats)
        torch.set_num_threads(default_threads)
        t_batch_threads = best_time(lambda: plaus.check(*props, tg), 2)
    finally:
        torch.set_num_threads(default_threads)
    P = len(props[0])
    cheap = batch["reprojection"] & batch["prior"] & batch["collision"]
    return {
        "images": len(picks),
        "image_size": f"{ds.items[picks[0]]['height']}x{ds.items[picks[0]]['width']}",
        "config": f"per_image {cfg.per_image}, {cfg.iterations} rounds x {cfg.proposals} proposals",
        "walk_s_per_image_1_thread": seconds / len(picks),
        "annotations_per_image": n_ann / len(picks),
        "annotations_per_s_1_thread": n_ann / seconds,
        "proposals_per_s_1_thread": n_prop / seconds,
        "acceptance_rate": n_acc / n_prop,
        "check_proposals": P,
        "check_occluded_joints": int(tg.occluded.sum()),
        "check_depth_tested": int(cheap.sum()),
        "check_plausible": int(batch["plausible"].sum()),
        "check_batched_ms_1_thread": 1000.0 * t_batch,
        "check_loop_ms_1_thread": 1000.0 * t_loop,
        "batched_vs_loop_speedup": t_loop / t_batch,
        "default_threads": default_threads,
        "check_batched_ms_default_threads": 1000.0 * t_batch_threads,
        "default_threads_vs_1_thread_slowdown": t_batch_threads / t_batch,
    }


def notes(f: dict) -> str:
    return (f"One image of the full config takes {f['walk_s_per_image_1_thread']:.2f} s at one thread "
            f"({f['annotations_per_s_1_thread']:.0f} annotations/s, {f['proposals_per_s_1_thread']:.0f} proposals/s). "
            f"Checking {f['check_proposals']} proposals in one batch is {f['batched_vs_loop_speedup']:.1f}x faster than "
            "one at a time: the keypoints, prior and sphere tests are one tensor pass each, and the depth test "
            "(the cost) evaluates only the ground truth's occluded joints' pixels of the proposals that passed the "
            f"others. At torch's default {f['default_threads']} threads the same batched check took "
            f"{f['default_threads_vs_1_thread_slowdown']:.2f}x as long as at one thread in this run. On a quiet "
            "machine extra threads help a little; on cores busy with other work they wait on each other and the "
            "check can take several times as long, so run annotate with OMP_NUM_THREADS=1 next to other jobs.")


if __name__ == "__main__":
    print_figures(run())
