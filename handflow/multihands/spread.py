"""Where the MultiHands annotations spread: per joint, along the viewing ray vs in the image plane, for
joints visible vs occluded in the ground truth; and the walk's acceptance figures summed over the
sequence files. ``viewselect multihands-report`` writes them as ``reports/multihands.md``.

Per image with K >= 2 annotations, in its camera frame: a joint's depth spread is the standard deviation
of its camera-z over the annotations, its image-plane spread ``sqrt(var x + var y)``; both are averaged
over the image's visible (resp. occluded) valid joints, then over images.
"""

from __future__ import annotations

import json

import numpy as np
import torch

from handflow.data.interhand import InterHandDataset
from handflow.multihands.store import AnnotationReader, read_sequence, sequence_path
from handflow.progress import track


def annotation_spread(dataset: InterHandDataset) -> dict:
    """Mean per-joint spread (mm) of the annotations: ``{visible,occluded}_{depth,plane}_mm`` and counts."""
    from handflow.hand.model import HandModel
    from handflow.synth.mano import default_mano_dir

    # the MANO the annotations were made with: the dataset's folder, else the synthetic default (annotate's)
    reader = AnnotationReader(dataset.root, dataset.split, HandModel.from_dir(dataset.mano_dir or default_mano_dir()))
    acc = {k: [] for k in ("visible_depth_mm", "visible_plane_mm", "occluded_depth_mm", "occluded_plane_mm",
                           "all_depth_mm", "all_plane_mm")}
    images = annotated = 0
    for i in track(range(len(dataset)), "annotation spread"):
        it = dataset.items[i]
        ann = reader.of(it["capture"], it["seq"], it["camera"], it["frame"])
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


def annotation_counts(dataset: InterHandDataset) -> dict:
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
