"""``ModelConfig``: architecture of HandFlowNet (TOML table ``[model]`` via ``handflow.config``).

CPU-sized defaults, chosen so a 2-core machine trains in minutes on the embedded synthetic data:

=====================  ==========  =============================================================
field                  default     paper / ProHMR value
=====================  ==========  =============================================================
``backbone_depth``     18          50 (ResNet-50)
``backbone_width``     64          64 (``configs/default.toml`` uses 32 on a 2-core CPU)
``crop_px``            128         224
``context_dim``        128         0 here means "no embedding": the 2048-d ResNet-50 feature is the
                                   flow context as is (ProHMR ``context_features=2048``)
``flow_steps``         4           4
``flow_hidden``        256         1024
``flow_blocks``        2           2
``max_log_scale``      3.0         (nflows' sigmoid scale in ProHMR's fork; see ``flow.py``)
=====================  ==========  =============================================================

``feature_dim`` is derived from the depth (512 for ResNet-18/34, 2048 for ResNet-50).

``kind`` picks the model (``handflow.model.registry.build_model``): ``"handflow"`` (HandFlowNet) or one of
the baselines of ``handflow.model.baselines``, which share the encoder fields above and ignore the
``flow_*`` / ``context_dim`` ones; their heads use:

=====================  ==========  =============================================================
``head_hidden``        256         width of the baselines' MLP heads (HandFlowNet's coupling nets
                                   are ``flow_hidden`` wide)
``head_layers``        2           hidden layers of those heads
``dropout_p``          0.1         ``mc_dropout``: probability of dropping a hidden unit
``latent_dim``         16          ``cvae``: size of the latent (the first entries of the noise ``z``)
=====================  ==========  =============================================================
"""

from __future__ import annotations

from dataclasses import dataclass

from handflow.errors import HandflowError
from handflow.model.pose_params import Y_DIM

# Model kinds this package builds: HandFlowNet and the baselines (handflow.model.baselines).
MODEL_KINDS: tuple[str, ...] = ("handflow", "regressor", "mc_dropout", "gaussian", "cvae")


@dataclass
class ModelConfig:
    kind: str = "handflow"
    backbone_depth: int = 18
    backbone_width: int = 64  # channels of the first ResNet stage; ImageNet weights need 64
    crop_px: int = 128
    context_dim: int = 128
    flow_steps: int = 4
    flow_hidden: int = 256
    flow_blocks: int = 2
    max_log_scale: float = 3.0
    backbone_weights: str | None = None  # local torchvision ImageNet state dict (.pth), optional
    head_hidden: int = 256
    head_layers: int = 2
    dropout_p: float = 0.1
    latent_dim: int = 16

    def __post_init__(self):
        if self.kind not in MODEL_KINDS:
            raise HandflowError(f"model.kind: {self.kind!r} is not one of {MODEL_KINDS}")
        if self.backbone_depth not in (18, 34, 50):
            raise HandflowError(f"model.backbone_depth: {self.backbone_depth} is not one of (18, 34, 50)")
        if self.backbone_width < 8 or self.backbone_width % 8:
            raise HandflowError(f"model.backbone_width must be a positive multiple of 8, found {self.backbone_width}")
        if self.backbone_weights and self.backbone_width != 64:
            raise HandflowError("model.backbone_weights needs backbone_width = 64 (ImageNet ResNets are that wide)")
        if self.crop_px < 32:
            raise HandflowError(f"model.crop_px: {self.crop_px} is below the ResNet minimum of 32")
        for name in ("flow_steps", "flow_hidden", "flow_blocks"):
            if getattr(self, name) < 1:
                raise HandflowError(f"model.{name} must be at least 1, found {getattr(self, name)}")
        if self.context_dim < 0:
            raise HandflowError(f"model.context_dim must be >= 0 (0 = raw feature), found {self.context_dim}")
        if not self.max_log_scale > 0:
            raise HandflowError(f"model.max_log_scale must be positive, found {self.max_log_scale}")
        for name in ("head_hidden", "head_layers"):
            if getattr(self, name) < 1:
                raise HandflowError(f"model.{name} must be at least 1, found {getattr(self, name)}")
        if not 0 < self.dropout_p < 1:
            raise HandflowError(f"model.dropout_p must lie strictly between 0 and 1, found {self.dropout_p}")
        if not 1 <= self.latent_dim <= Y_DIM:  # the latent is a prefix of the noise z (B,n,218)
            raise HandflowError(f"model.latent_dim must be between 1 and {Y_DIM}, found {self.latent_dim}")

    @property
    def feature_dim(self) -> int:
        """Pooled ResNet feature size: 512 (ResNet-18/34) or 2048 (ResNet-50) at width 64."""
        return (32 if self.backbone_depth == 50 else 8) * self.backbone_width

    @classmethod
    def paper(cls) -> "ModelConfig":
        """HandFlow / ProHMR sizes: ResNet-50 at 224 px, 2048-d context, 4 steps, hidden 1024, 2 blocks."""
        return cls(backbone_depth=50, crop_px=224, context_dim=0, flow_steps=4, flow_hidden=1024, flow_blocks=2)
