"""Pose samples for the report's overlays: the least and the most ambiguous camera of each sequence.

For each sequence, the two cameras at the ends of its ambiguity order; for each, the middle frame
of its record goes through the model once with its own noise, and the samples are kept projected
into the crop and in world coordinates, with the ground truth beside them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from handflow.model.pose_params import Y_DIM, joints_to_world, project_crop
from handflow.model.protocol import PoseModel
from viewselect.records import OverlayView, SequenceOverlay, ViewRecord


@torch.no_grad()
def sample_overlays(model: PoseModel, dataset, sequences: pd.DataFrame, records: list[ViewRecord], n_samples: int,
                    seed: int = 0) -> list[SequenceOverlay]:
    """One :class:`SequenceOverlay` per sequence of ``sequences`` (the ranking's per-(sequence,
    camera) table), in sequence order. Sequence ``i``'s noise is ``randn(1, n_samples, 218)`` from a
    generator seeded by ``seed * 1_000_003 + i``, the same for both of its cameras."""
    recs = {(r.sequence, r.camera): r for r in records}
    device = next(model.parameters()).device
    out = []
    for i, (seq_name, grp) in enumerate(sequences.groupby("sequence", sort=True)):
        grp = grp.sort_values(["ambiguity_mm", "camera"], kind="stable")
        views = []
        for role, row in (("least ambiguous", grp.iloc[0]), ("most ambiguous", grp.iloc[-1])):
            rec = recs[(seq_name, row["camera"])]
            frame = rec.frames[len(rec.frames) // 2]
            view = dataset.load_view(rec.capture, rec.seq, rec.camera, [frame])
            gen = torch.Generator().manual_seed(seed * 1_000_003 + i)
            z = torch.randn(1, n_samples, Y_DIM, generator=gen)
            K = view["K_crop"].to(device)
            pred = model.predict(view["image"].to(device), K, n_samples=n_samples, z=z.to(device))
            gt = view["joints_world_mm"][0].numpy().copy()
            gt[view["joint_valid"][0].numpy() <= 0] = np.nan
            views.append(OverlayView(
                role=role, camera=str(row["camera"]), frame=frame, ambiguity_mm=float(row["ambiguity_mm"]),
                regret_global_mm=float(row["regret_global_mm"]),
                image=view["image"][0].permute(1, 2, 0).numpy(),
                samples_px=project_crop(pred["samples_joints"], K)[0].cpu().numpy(),
                mode_px=project_crop(pred["mode_joints"], K)[0].cpu().numpy(),
                samples_world=joints_to_world(pred["samples_joints"], view["R"].to(device),
                                              view["campos_mm"].to(device))[0].cpu().numpy(),
                gt_world=gt, to_camera=view["campos_mm"][0].numpy() - np.nanmean(gt, axis=0),
            ))
        out.append(SequenceOverlay(sequence=seq_name, views=views))
    return out
