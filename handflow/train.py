"""Training HandFlowNet: ``viewselect train-model --config configs/NAME.toml``.

One epoch = one pass over the training split in an order drawn from ``(seed, epoch)``; a checkpoint
(model, optimiser, step, RNG state, resolved config, code version) is written atomically after every
epoch, so ``--resume`` continues bit-for-bit from the last finished epoch. Under ``torchrun`` the
batch of every step is split across ranks with DistributedDataParallel (gloo on CPU, nccl on GPU);
rank 0 validates, logs and writes. With ``train_encoder = false`` the frozen encoder runs once over the
training split before the first step (:mod:`handflow.data.features`) and every step trains the heads on
those features.
"""

from __future__ import annotations

import csv
import io
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist

from handflow.checkpoint import load_checkpoint, load_state_strict, save_checkpoint
from handflow.config import load_config, to_dict
from handflow.data.store import CropStore
from handflow.synth.capture import SynthConfig
from handflow.synth.mano import default_mano_dir
from handflow.errors import HandflowError
from handflow.geometry.recrop import shift_crops
from handflow.hand.model import HandModel
from handflow.io import write_text
from handflow.losses import LossConfig, LossTargets, handflow_loss
from handflow.model.config import ModelConfig
from handflow.model.protocol import OwnLoss
from handflow.model.registry import build_model
from handflow.progress import make_progress
from handflow.provenance import code_version, provenance


@dataclass
class DataConfig:
    root: str | None = None  # None: the embedded synthetic capture, generated on first use
    mano_dir: str | None = None  # None: the generated synthetic MANO
    train_split: str = "train"
    val_split: str = "val"
    train_selection: str | None = None
    val_max_images: int = 240
    annotations: int = 1  # per training image: 1 = ground truth only, more = MultiHands (`viewselect annotate`)
    # Each training crop shifted by up to this fraction of its side along each axis (uniform, drawn per image
    # and step), the way a detector's box wobbles; 0 = the crops as stored. Validation crops are never shifted.
    crop_shift: float = 0.0
    # With root = None: the training split comes from a synthetic capture of these sizes (generated once into
    # the cache) instead of the embedded default's 960 training frames; validation stays on the default's.
    synth: SynthConfig | None = None


@dataclass
class OptimConfig:
    lr: float = 3e-4
    weight_decay: float = 1e-4
    batch_size: int = 32
    epochs: int = 10
    warmup_steps: int = 100
    lr_final_factor: float = 0.05  # cosine decay to lr * this at the last step
    grad_clip: float = 10.0


@dataclass
class TrainConfig:
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    val_samples: int = 20
    init_from: str | None = None  # checkpoint whose encoder (and any same-shaped weights) start the run
    init_encoder_only: bool = True  # with init_from: take the image encoder only, the rest starts fresh
    # False: the encoder stays as init_from left it (eval-mode BatchNorm, no gradient); only the flow and heads
    # train. A calibration stage: the flow learns its spread from features it did not fit (reports/training-recipe.md).
    train_encoder: bool = True
    amp: bool = True  # bfloat16 autocast of the encoder on CUDA
    amp_cpu: bool = False  # the same on CPU, where it has bfloat16 instructions (encoder_bf16); reports/training-recipe.md

    def __post_init__(self):
        o = self.optim
        if o.batch_size < 2 or o.epochs < 1 or not o.lr > 0:
            raise HandflowError("optim: batch_size must be >= 2, epochs >= 1, lr > 0")
        if not 0.0 <= self.data.crop_shift < 0.5:
            raise HandflowError(f"data.crop_shift must be in [0, 0.5) (a fraction of the crop side), found {self.data.crop_shift}")
        if self.data.annotations < 1:
            raise HandflowError(f"data.annotations must be >= 1 (1 = ground truth only), found {self.data.annotations}")
        if self.val_samples < 2:
            raise HandflowError("val_samples must be >= 2 (a spread needs two samples)")
        if self.data.crop_shift > 0 and not self.train_encoder:
            raise HandflowError("data.crop_shift needs train_encoder = true (a frozen encoder's features are computed once, unshifted)")
        if not self.train_encoder and not self.init_from:
            raise HandflowError("train_encoder = false needs init_from (a frozen encoder must come from somewhere)")


def load_train_config(path: str | Path) -> TrainConfig:
    return load_config(TrainConfig, path)


# ------------------------------------------------------------------------------------------ helpers
def _dist_info() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_distributed(device: torch.device) -> bool:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return False
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return True


def _lr_at(step: int, total: int, o: OptimConfig) -> float:
    if step < o.warmup_steps:
        return o.lr * (step + 1) / o.warmup_steps
    p = min(1.0, (step - o.warmup_steps) / max(1, total - o.warmup_steps))
    return o.lr * (o.lr_final_factor + (1 - o.lr_final_factor) * 0.5 * (1 + math.cos(math.pi * p)))


def resolve_device(device: str | None = None) -> torch.device:
    """The device a run trains on: ``device`` if given, else CUDA when available, else the CPU."""
    return torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))


def cpu_bf16_native() -> bool:
    """Whether this CPU has bfloat16 instructions (AVX512-BF16 or AMX).

    Without them oneDNN emulates bfloat16, and the default encoder's forward + backward runs 12-20x slower
    than in float32 (4.2 against 85.2 images/s on an AVX2-only 2-core EPYC, ``python -m benchmarks train``);
    with them the whole training step runs at 224 against 171 images/s (``reports/training-recipe.md``)."""
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def encoder_bf16(cfg: "TrainConfig", device: torch.device) -> bool:
    """Whether the encoder trains under bfloat16 autocast: ``amp`` on CUDA; ``amp_cpu`` on a CPU, only
    where it has bfloat16 instructions (:func:`cpu_bf16_native`) — elsewhere float32 is the faster."""
    if device.type == "cuda":
        return cfg.amp
    return cfg.amp_cpu and cpu_bf16_native()


def precision_note(cfg: "TrainConfig", device: str | None = None) -> str | None:
    """One line for the user when the config asks for a bfloat16 encoder this machine does not run in it."""
    dev = resolve_device(device)
    if dev.type != "cuda" and cfg.amp_cpu and not encoder_bf16(cfg, dev):
        return ("amp_cpu = true is ignored: this CPU has no bfloat16 instructions (AVX512-BF16 or AMX), where a "
                "bfloat16 encoder trains 12-20x slower than float32; the encoder trains in float32")
    return None


def _encode(model, images: torch.Tensor, bf16: bool) -> torch.Tensor:
    """``model.encode``, under bfloat16 autocast when ``bf16`` (:func:`encoder_bf16`); float32 features either way."""
    if bf16:
        with torch.autocast(images.device.type, dtype=torch.bfloat16):
            return model.encode(images).float()
    return model.encode(images)


def _frozen_features(model, data: CropStore, bf16: bool, device: torch.device) -> CropStore:
    """The frozen encoder's features of the training split, computed once (a store keyed by the crop store,
    the encoder's weights and BatchNorm statistics, and the autocast setting)."""
    from handflow.data.features import open_features
    from handflow.model.registry import encoder_hash

    h = encoder_hash(model)
    # the key's former (CUDA autocast, CPU autocast) pair, so stores written before stay found
    h.update(repr((bf16 and device.type == "cuda", bf16 and device.type != "cuda")).encode())
    model.train()  # the training path of `encode` (not the folded inference plan) ...
    model.encoder.eval()  # ... with eval-mode BatchNorm: an image's feature does not depend on its batch
    return open_features(data, lambda im: _encode(model, im, bf16), h.hexdigest()[:16], device)


class _TrainStep(torch.nn.Module):
    """The whole loss as one ``forward`` so DistributedDataParallel sees every parameter use."""

    def __init__(self, model, loss_cfg: LossConfig, bf16: bool = False):
        super().__init__()
        self.model = model
        self.loss_cfg = loss_cfg
        self.bf16 = bf16

    def forward(self, inputs, targets: LossTargets):
        """``inputs``: images ``(B, 3, S, S)`` in [0, 1], or with a frozen encoder its features ``ctx (B, C)``
        read from the feature store (:func:`handflow.data.features.open_features`)."""
        ctx = inputs if inputs.dim() == 2 else _encode(self.model, inputs, self.bf16)
        if isinstance(self.model, OwnLoss):  # the baselines carry their own loss; HandFlowNet's is handflow_loss
            return self.model.loss(ctx, targets, self.loss_cfg)
        return handflow_loss(self.model, ctx, targets, self.loss_cfg)


_BATCH_COLUMNS = ("image", "y", "joints_cam_mm", "joints_crop_px", "joint_visible", "joint_valid", "K_crop")
_ANN_COLUMNS = ("ann_y", "ann_mask", "ann_joints_cam_mm")


def _targets(data, idx: torch.Tensor, device, mode_index: torch.Tensor | None = None,
             features: CropStore | None = None) -> tuple[torch.Tensor, LossTargets]:
    """One batch: ``data`` a :class:`CropStore` (rows read from disk) or a dict of in-memory columns.

    Returns ``(images (B, 3, S, S) in [0, 1], targets)``, or with ``features`` (a frozen encoder's store,
    :func:`_frozen_features`) ``(ctx (B, C), targets)``: the image rows are then not read at all.
    ``mode_index (N,)``: with MultiHands annotations, the one annotation per image that ``L_y`` / ``L_J3D``
    use for the whole run (:func:`_fix_mode_annotations`); ``None`` = the ground truth.
    """
    multi = "ann_y" in (data.columns if isinstance(data, CropStore) else data)
    cols = tuple(c for c in _BATCH_COLUMNS if features is None or c != "image") + (_ANN_COLUMNS if multi else ())
    b = data.rows(idx, cols) if isinstance(data, CropStore) else {k: data[k][idx] for k in cols}
    b = {k: v.to(device) for k, v in b.items()}
    images = features.rows(idx)["ctx"].to(device) if features is not None else b["image"].float() / 255.0
    n = len(idx)
    if multi:  # MultiHands: all annotations, L_y / L_J3D on the one fixed for each image
        y, mask = b["ann_y"], b["ann_mask"]
        mi = (mode_index[idx] if mode_index is not None else torch.zeros(n, dtype=torch.long)).to(device)
        joints = b["ann_joints_cam_mm"][torch.arange(n, device=device), mi]
    else:
        y, mask = b["y"][:, None], None  # K = 1: the ground truth
        mi = torch.zeros(n, dtype=torch.long, device=device)
        joints = b["joints_cam_mm"]
    tg = LossTargets(
        y=y,
        mode_index=mi,
        joints_cam_mm=joints,
        joints2d_px=b["joints_crop_px"],
        visible=b["joint_visible"] * b["joint_valid"],
        K_crop=b["K_crop"],
        mask=mask,
        joints_valid=b["joint_valid"],
    )
    return images, tg


def _shift_batch(images: torch.Tensor, tg: LossTargets, max_shift: float, seed: int) -> tuple[torch.Tensor, LossTargets]:
    """Training's crop jitter: every crop of ``images (B, 3, S, S)`` shifted by its own uniform draw in
    ``[-max_shift, max_shift] * S`` pixels per axis, its targets moved with it. ``seed`` fixes the draw, so a
    resumed run shifts the same way."""
    B, S = images.shape[0], images.shape[-1]
    u = torch.rand(B, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    d = ((2 * u - 1) * max_shift * S).to(device=images.device, dtype=torch.float32)
    images, K = shift_crops(images, tg.K_crop, d)
    return images, tg.shifted(d, K, S)


def _fix_mode_annotations(ann_mask: torch.Tensor, seed: int) -> torch.Tensor:
    """HandFlow: one annotation per image, drawn once, is the L_y / L_J3D target for the whole run.
    ``ann_mask (N,A)`` -> ``(N,)`` annotation indices."""
    count = ann_mask.sum(1)
    u = torch.rand(len(count), generator=torch.Generator().manual_seed(seed + 7919))
    return (u * count).long().clamp(max=count - 1)


def _init_weights(model, path: str, encoder_only: bool) -> None:
    """Start from another checkpoint's weights: its encoder (with the image normalisation it was trained with,
    as the checkpoint stores it), or every weight of the same name and shape."""
    from handflow.model.registry import is_encoder_key

    payload = load_checkpoint(path)
    own = model.state_dict()
    take = {k: v for k, v in payload["state_dict"].items()
            if k in own and own[k].shape == v.shape and (is_encoder_key(k) or not encoder_only)}
    if not any(k.startswith("encoder.") for k in take):
        raise HandflowError(f"init_from {path}: no encoder weights of this model's shape")
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in take.items()}, strict=False)


def validate(model, data: dict, n_samples: int, seed: int = 0) -> dict:
    """Mode MPJPE (Global, RR) against the ground truth and mean per-joint sample std (mm)."""
    from handflow.evaluate import evaluate_split

    res = evaluate_split(model, data, n_samples, seed=seed)
    return {"val_mpjpe_global_mm": res["mode_mpjpe_global_mm"], "val_mpjpe_rr_mm": res["mode_mpjpe_rr_mm"],
            "val_sample_std_mm": res["sample_std_mm"]}


def _param_digest(model) -> str:
    """Hash of the trainable parameters (BatchNorm running stats are per-rank by design)."""
    import hashlib

    h = hashlib.sha256()
    for name, p in model.named_parameters():
        h.update(name.encode())
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _write_log(path: Path, rows: list[dict]) -> None:
    """The whole CSV log from the checkpoint's history (on resume: a run killed between writing
    ``last.pt`` and ``log.csv`` gets the missing row back, and rows past the checkpoint are dropped)."""
    if not rows:
        return
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[-1].keys()))
    w.writeheader()
    w.writerows([{k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()} for r in rows])
    write_text(path, buf.getvalue())


def _append_log(path: Path, row: dict) -> None:
    """Rewrite the CSV log atomically with the new row (it is tiny; never a torn line)."""
    rows = []
    if path.is_file():
        rows = list(csv.DictReader(io.StringIO(path.read_text())))
    rows.append({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[-1].keys()))
    w.writeheader()
    w.writerows(rows)
    write_text(path, buf.getvalue())


def _non_finite(what: str, epoch: int, it: int, ckpt_path: Path) -> HandflowError:
    """Training stops on a non-finite loss, gradient or parameter; ``last.pt`` (if any) is the last good epoch,
    never overwritten by the bad state."""
    return HandflowError(
        f"training stopped: {what} became non-finite at epoch {epoch + 1} step {it + 1}; the last good checkpoint "
        f"is {ckpt_path if ckpt_path.exists() else 'not written yet'} (resume from it with --resume, or lower optim.lr)"
    )


# ------------------------------------------------------------------------------------------ training
def train(cfg: TrainConfig, out_dir: str | Path, resume: bool = False, device: str | None = None) -> dict:
    """Train; returns the last epoch's log row. Writes ``out_dir/{last.pt, log.csv, config.json}``."""
    from handflow.preload import open_split, preload_split
    from handflow.synth.capture import ensure_default_data

    out_dir = Path(out_dir)
    dev = resolve_device(device)
    if dev.type == "cuda" and "LOCAL_RANK" in os.environ:
        dev = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    started_dist = init_distributed(dev)
    bf16 = encoder_bf16(cfg, dev)
    rank, world = _dist_info()
    try:
        ckpt_path = out_dir / "last.pt"
        if not resume and ckpt_path.exists():
            raise HandflowError(f"{ckpt_path} exists: pass --resume to continue it or choose another --out")
        if resume and not ckpt_path.exists():
            raise HandflowError(f"nothing to resume: {ckpt_path} does not exist")
        if cfg.data.root is not None and not Path(cfg.data.root).is_dir():
            raise HandflowError(f"data root does not exist: {cfg.data.root}")
        torch.manual_seed(cfg.seed)
        hand_model = HandModel.from_dir(cfg.data.mano_dir or default_mano_dir())
        root = Path(cfg.data.root) if cfg.data.root else ensure_default_data()
        train_root = ensure_default_data(cfg.data.synth) if cfg.data.synth and not cfg.data.root else root
        S = cfg.model.crop_px
        train_data = open_split(train_root, cfg.data.train_split, S, hand_model, cfg.data.train_selection,
                                annotations=cfg.data.annotations)
        mode_index = (_fix_mode_annotations(train_data.column("ann_mask"), cfg.seed)
                      if "ann_mask" in train_data.columns else None)
        val_data = preload_split(root, cfg.data.val_split, S, hand_model, max_images=cfg.data.val_max_images)
        N = len(train_data)
        o = cfg.optim
        steps_per_epoch = N // o.batch_size
        if steps_per_epoch < 1:
            raise HandflowError(f"training split holds {N} images, fewer than one batch of {o.batch_size}")
        total_steps = steps_per_epoch * o.epochs
        model = build_model(cfg.model, hand_model).to(dev)
        model.encoder.requires_grad_(cfg.train_encoder)  # frozen: no graph through it, no optimiser state
        optim = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=o.lr,
                                  weight_decay=o.weight_decay)
        start_epoch = 0
        history: list[dict] = []  # the log rows so far, kept in the checkpoint
        if resume:
            payload = load_checkpoint(ckpt_path, kinds=(cfg.model.kind,))
            if payload["config"] != to_dict(cfg):
                raise HandflowError(f"{ckpt_path} was trained with another config; resume with the same --config and --seed")
            load_state_strict(model, payload["state_dict"], ckpt_path)
            optim.load_state_dict(payload["optimizer"])
            start_epoch = int(payload["epoch"])
            history = list(payload.get("history", []))
            if rank == 0 and history:
                _write_log(out_dir / "log.csv", history)
            torch.set_rng_state(payload["rng"]["torch"])
        elif cfg.init_from:
            _init_weights(model, cfg.init_from, cfg.init_encoder_only)
        # a frozen encoder is run once over the split, not on every step (and its BatchNorm statistics,
        # in eval mode from here on, stay those it was loaded with)
        features = None
        if not cfg.train_encoder:  # rank 0 writes the store, the others then read it
            if rank > 0:
                dist.barrier()
            features = _frozen_features(model, train_data, bf16, dev)
            if rank == 0 and world > 1:
                dist.barrier()
        if not resume and (not cfg.init_from or cfg.init_encoder_only):  # a whole loaded model keeps its y
            y = train_data.column("y")                                    # scale and ActNorms
            model.set_y_normalization(y.mean(0), y.std(0))
            gen = torch.Generator().manual_seed(cfg.seed)
            first = torch.randperm(N, generator=gen)[: max(o.batch_size, 64)]
            with torch.no_grad():
                inputs, tg = _targets(train_data, first, dev, mode_index, features)
                model.data_init(tg.y[:, 0], inputs if features is not None else model.encode(inputs))
        step_module = _TrainStep(model, cfg.loss, bf16)
        if world > 1:
            step_module = torch.nn.parallel.DistributedDataParallel(step_module)
        if rank == 0:
            try:
                out_dir.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise HandflowError(f"cannot write {out_dir}: {err.strerror or err}") from err
            import json

            write_text(out_dir / "config.json", json.dumps(
                provenance(to_dict(cfg), data_root=str(root), encoder_dtype="bfloat16" if bf16 else "float32"), indent=2))
        row: dict = {}
        model.train()
        with make_progress() as progress:
            task = progress.add_task("training", total=total_steps, completed=start_epoch * steps_per_epoch)
            for epoch in range(start_epoch, o.epochs):
                order = torch.randperm(N, generator=torch.Generator().manual_seed(cfg.seed * 100003 + epoch))
                if not cfg.train_encoder:
                    model.encoder.eval()  # its BatchNorm statistics stay init_from's (validation left it in train mode)
                sums: dict[str, float] = {}
                t0 = time.perf_counter()
                for it in range(steps_per_epoch):
                    step = epoch * steps_per_epoch + it
                    for group in optim.param_groups:
                        group["lr"] = _lr_at(step, total_steps, o)
                    idx = order[it * o.batch_size : (it + 1) * o.batch_size][rank::world]
                    inputs, tg = _targets(train_data, idx, dev, mode_index, features)
                    if cfg.data.crop_shift > 0:
                        inputs, tg = _shift_batch(inputs, tg, cfg.data.crop_shift, cfg.seed * 1_000_003 + step)
                    total, parts = step_module(inputs, tg)
                    if not torch.isfinite(total):
                        raise _non_finite("loss", epoch, it, ckpt_path)
                    optim.zero_grad(set_to_none=True)
                    total.backward()
                    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), o.grad_clip)
                    if not torch.isfinite(grad_norm):  # same value on every rank (DDP averaged the grads)
                        raise _non_finite("gradient", epoch, it, ckpt_path)
                    optim.step()
                    for k, v in parts.items():
                        sums[k] = sums.get(k, 0.0) + float(v)
                    progress.update(task, advance=1, description=f"epoch {epoch + 1}/{o.epochs} loss {total.item():.3f}")
                train_s = time.perf_counter() - t0
                row = {"epoch": epoch + 1, "step": (epoch + 1) * steps_per_epoch, "lr": _lr_at(step, total_steps, o),
                       **{f"train_{k}": v / steps_per_epoch for k, v in sums.items()},
                       "train_images_per_s": steps_per_epoch * o.batch_size / train_s}
                if not all(bool(torch.isfinite(p).all()) for p in model.parameters()):
                    raise _non_finite("parameters", epoch, steps_per_epoch - 1, ckpt_path)
                if rank == 0:
                    row.update(validate(model, val_data, cfg.val_samples, seed=cfg.seed))
                    save_checkpoint(ckpt_path, {
                        "kind": cfg.model.kind, "config": to_dict(cfg), "version": code_version(),
                        "state_dict": model.state_dict(), "optimizer": optim.state_dict(), "epoch": epoch + 1,
                        "rng": {"torch": torch.get_rng_state()}, "log": row, "data_root": str(root),
                        "history": history + [row],
                    })
                    history.append(row)
                    _append_log(out_dir / "log.csv", row)
                    progress.console.print(
                        f"epoch {epoch + 1}: val MPJPE {row['val_mpjpe_global_mm']:.1f} mm (RR "
                        f"{row['val_mpjpe_rr_mm']:.1f}), sample std {row['val_sample_std_mm']:.1f} mm"
                    )
                if world > 1:
                    dist.barrier()
        row["param_digest"] = _param_digest(model)  # equal on every rank when DDP kept them in sync
        row["rank"] = rank
        return row
    finally:
        if started_dist:
            dist.destroy_process_group()
