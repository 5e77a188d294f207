"""Where the MultiHands annotations spread: per joint, along the viewing ray vs in the image plane, for
joints visible vs occluded in the ground truth. Writes ``reports/multihands.md``::

    python -m handflow.multihands.spread --split test --frames 1 --out reports/multihands.md

Per image with K >= 2 annotations, in its camera frame: a joint's depth spread is the standard deviation
of its camera-z over the annotations, its image-plane spread ``sqrt(var x + var y)``; both are averaged
over the image's visible (resp. occluded) valid joints, then over images.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from handflow.data.interhand import InterHandDataset
from handflow.io import write_text
from handflow.multihands.store import read_sequence, sequence_path
from handflow.progress import track
from handflow.provenance import provenance


def annotation_spread(dataset: InterHandDataset) -> dict:
    """Mean per-joint spread (mm) of the annotations: ``{visible,occluded}_{depth,plane}_mm`` and counts."""
    acc = {k: [] for k in ("visible_depth_mm", "visible_plane_mm", "occluded_depth_mm", "occluded_plane_mm",
                           "all_depth_mm", "all_plane_mm")}
    images = annotated = 0
    for i in track(range(len(dataset)), "annotation spread"):
        ann = dataset.annotations(i)
        images += 1
        if ann is None or len(ann["pose"]) < 2:
            continue
        annotated += 1
        g = dataset.geometry(i, dataset.image_hw(i))
        R, c = torch.as_tensor(g["R"], dtype=torch.float32), torch.as_tensor(g["campos"], dtype=torch.float32)
        cam = (ann["joints_world_mm"] - c) @ R.T  # (K,42,3)
        sd = cam.std(0, unbiased=True)  # (42,3)
        depth, plane = sd[:, 2], sd[:, :2].pow(2).sum(-1).sqrt()
        valid = torch.as_tensor(g["valid"] > 0)
        vis = torch.as_tensor(g["visible"] > 0) & valid
        occ = valid & ~vis
        for name, m in (("visible", vis), ("occluded", occ), ("all", valid)):
            if m.any():
                acc[f"{name}_depth_mm"].append(float(depth[m].mean()))
                acc[f"{name}_plane_mm"].append(float(plane[m].mean()))
    out = {k: float(np.mean(v)) if v else float("nan") for k, v in acc.items()}
    out.update(images=images, images_with_annotations=annotated)
    return out


def _counts(dataset: InterHandDataset) -> dict:
    """Acceptance and timing figures summed over the sequences' file metadata."""
    tot = {"images": 0, "annotated": 0, "skipped": 0, "annotations": 0, "proposals": 0, "accepted": 0, "seconds": 0.0,
           "rejected_by": {}}
    configs = set()
    for capture, seqs in dataset.available().items():
        for seq in seqs:
            path = sequence_path(dataset.root, dataset.split, capture, seq)
            if not path.is_file():
                continue
            _, meta = read_sequence(path)
            c = meta["counts"]
            for k in ("images", "annotated", "annotations", "proposals", "accepted"):
                tot[k] += c[k]
            tot["skipped"] += len(c["skipped_no_mano"])
            tot["seconds"] += meta["seconds"]
            for k, v in c["rejected_by"].items():
                tot["rejected_by"][k] = tot["rejected_by"].get(k, 0) + v
            configs.add(json.dumps(meta["provenance"].get("config", {}), sort_keys=True))
    tot["configs"] = [json.loads(c) for c in sorted(configs)]
    return tot


def write_report(dataset: InterHandDataset, out: Path, command: str) -> dict:
    s = annotation_spread(dataset)
    c = _counts(dataset)
    rate = c["accepted"] / c["proposals"] if c["proposals"] else float("nan")
    rej = c["rejected_by"]
    lines = [
        "# MultiHands on the default test captures",
        "",
        f"Measured with `{command}` after `viewselect annotate` (config below). "
        f"Images: split `{dataset.split}`, {sum(len(v) for v in dataset.available().values())} sequences, "
        f"{len({(it['capture'], it['seq'], it['frame']) for it in dataset.items})} frames x their cameras = "
        f"{len(dataset)} images; {c['annotated']} of {c['images']} annotated ({c['skipped']} skipped: no MANO "
        "for a hand).",
        "",
        "| figure | value |",
        "|---|---|",
        f"| proposals checked | {c['proposals']} |",
        f"| acceptance rate | {100 * rate:.1f} % |",
        *[f"| rejected by {k} (criterion {n}) | {rej.get(k, 0)} ({100 * rej.get(k, 0) / max(1, c['proposals']):.1f} %) |"
          for n, k in ((1, "reprojection"), (2, "occlusion"), (3, "prior"), (4, "collision"))],
        f"| annotations per image (ground truth included) | {c['annotations'] / max(1, c['annotated']):.1f} |",
        f"| time per image (2-core CPU, one thread; measured while other jobs ran, see reports/benchmarks.md "
        f"for a quiet figure) | {c['seconds'] / max(1, c['annotated']):.3f} s |",
        "",
        "Rejections are counted in the order the walk checks them: criteria 1, 3 and 4 on every proposal "
        "(a proposal can fail several), criterion 2 (depth test) only on proposals that passed the other three.",
        "",
        "## Where the annotations spread (mean per-joint standard deviation over an image's annotations, mm)",
        "",
        "| joints | along the viewing ray (camera z) | in the image plane (camera x, y) |",
        "|---|---|---|",
        f"| visible in the ground truth | {s['visible_depth_mm']:.1f} | {s['visible_plane_mm']:.1f} |",
        f"| occluded in the ground truth | {s['occluded_depth_mm']:.1f} | {s['occluded_plane_mm']:.1f} |",
        f"| all valid joints | {s['all_depth_mm']:.1f} | {s['all_plane_mm']:.1f} |",
        "",
        f"Over {s['images_with_annotations']} images with at least two annotations. The spread is "
        f"{s['all_depth_mm'] / s['all_plane_mm']:.1f}x larger along the viewing ray than in the image plane "
        "(criterion 1 pins visible joints to a few pixels, so what is left is mostly depth: whole-hand moves "
        "along the ray and the hand-size/depth trade-off). Occluded joints spread "
        f"{s['occluded_plane_mm'] / s['visible_plane_mm']:.2f}x as much as visible ones in the image plane and "
        f"{s['occluded_depth_mm'] / s['visible_depth_mm']:.2f}x as much in depth: the walk's extra steps on "
        "fully occluded fingers (`step_occluded_sigma`) move them, but most occluded joints belong to fingers "
        "with a visible joint further out, which criterion 1 holds in place.",
        "",
        "## Config and provenance",
        "",
        "```json",
        json.dumps(provenance(config={"walk": c["configs"]}, spread=s, counts={k: v for k, v in c.items() if k != "configs"}),
                   indent=2),
        "```",
        "",
    ]
    write_text(out, "\n".join(lines))
    return {"spread": s, "counts": c}


def main(argv: list[str] | None = None) -> None:
    from handflow.data.synth import ensure_default_data

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--split", default="test")
    p.add_argument("--sequence", default=None)
    p.add_argument("--frames", type=int, default=None)
    p.add_argument("--data-root", default=None)
    p.add_argument("--mano-dir", default=None)
    p.add_argument("--out", default="reports/multihands.md")
    a = p.parse_args(argv)
    root = Path(a.data_root) if a.data_root else ensure_default_data()
    ds = InterHandDataset(root, a.split, selection=a.sequence, max_frames=a.frames, mano_dir=a.mano_dir)
    cmd = "python -m handflow.multihands.spread " + " ".join(argv if argv is not None else __import__("sys").argv[1:])
    res = write_report(ds, Path(a.out), cmd.strip())
    print(json.dumps(res["spread"], indent=2))


if __name__ == "__main__":
    main()
