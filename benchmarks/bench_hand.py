"""Hand model cost: the joints-only keypoint path vs. smplx's full forward.

    python -m benchmarks.bench_hand           # prints a Markdown snippet
    python -m benchmarks hand                 # updates reports/benchmarks.md

Workload: ``batch`` two-hand poses (random axis-angle, betas and translations), float32, no grad,
the synthetic MANO model (or ``mano_dir``). The reference is what the fast path replaces: smplx's
``MANO`` forward for each hand (full-mesh shape blend, pose correctives and skinning of all V
vertices) followed by picking the 16 joints and 5 tip vertices into InterHand order. The fast path
is ``HandModel.keypoints_from_mano`` (axis-angle -> rotations, 16-joint forward kinematics, 5 tip
vertices skinned). ``keypoints_from_rotmats`` (the training/sampling entry point, rotations given) is
timed too. Both paths are checked to agree before timing. Best of ``repeats`` runs.
"""

from __future__ import annotations


import torch

from handflow.hand.model import INTERHAND_FROM_JOINTS_AND_TIPS, HandModel
from handflow.synth.mano import default_mano_dir

from benchmarks.timing import best_time, print_figures




def _smplx_keypoints(model: HandModel, pose, betas, trans) -> torch.Tensor:
    out = []
    for h, layer in enumerate(model.smplx_layers):
        res = layer(betas=betas[:, h], global_orient=pose[:, h, :3], hand_pose=pose[:, h, 3:], transl=trans[:, h])
        kp = torch.cat([res.joints, res.vertices[:, model.tip_vertex_ids[h]]], dim=1)
        out.append(kp[:, list(INTERHAND_FROM_JOINTS_AND_TIPS)])
    return torch.cat(out, dim=1) * 1000.0


def run(batch: int = 2000, repeats: int = 5, mano_dir: str | None = None) -> dict:
    model = HandModel.from_dir(mano_dir or default_mano_dir())
    g = torch.Generator().manual_seed(0)
    pose = 0.5 * torch.randn(batch, 2, 48, generator=g)
    betas = torch.randn(batch, 2, 10, generator=g)
    trans = 0.2 * torch.randn(batch, 2, 3, generator=g)
    with torch.no_grad():
        rot = model.rotmats_from_mano(pose)
        fast = model.keypoints_from_mano(pose, betas, trans)
        ref = _smplx_keypoints(model, pose, betas, trans)
        max_diff_mm = (fast - ref).abs().max().item()
        t_fast = best_time(lambda: model.keypoints_from_mano(pose, betas, trans), repeats)
        t_rot = best_time(lambda: model.keypoints_from_rotmats(rot, betas), repeats)
        t_smplx = best_time(lambda: _smplx_keypoints(model, pose, betas, trans), repeats)
    return {
        "model": f"{'synthetic' if mano_dir is None else mano_dir} MANO, V={model.num_vertices}",
        "batch_two_hand_poses": batch,
        "torch_threads": torch.get_num_threads(),
        "smplx_full_forward_ms": 1000.0 * t_smplx,
        "fast_keypoints_from_mano_ms": 1000.0 * t_fast,
        "fast_keypoints_from_rotmats_ms": 1000.0 * t_rot,
        "speedup_from_mano": t_smplx / t_fast,
        "fast_poses_per_s": batch / t_fast,
        "smplx_poses_per_s": batch / t_smplx,
        "max_abs_diff_fp32_mm": max_diff_mm,
    }


def _markdown(figures: dict) -> str:
    rows = "\n".join(f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in figures.items())
    return f"## hand\n\n| figure | value |\n| --- | --- |\n{rows}\n"


if __name__ == "__main__":
    print_figures(run())
