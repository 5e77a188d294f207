"""ResNet-18/34/50 image encoders with torchvision's exact parameter names.

The layout (``conv1``, ``bn1``, ``layer1.0.conv1`` ... ``layer4.*``, ``downsample.0/1``, optional ``fc``)
and the initialisation follow ``torchvision.models.resnet`` (ResNet v1.5: in a Bottleneck the stride sits
on the 3x3 convolution), so a standard ImageNet state dict saved by torchvision loads unchanged with
:func:`load_backbone_weights` (torchvision itself is not a dependency).

``ResNet.forward(images (B,3,H,W)) -> (B, feature_dim)`` returns the globally average-pooled feature of
the last residual stage (512-d for ResNet-18/34, 2048-d for ResNet-50; HandFlow's ``v``). The input
size is free (adaptive average pooling); at least 32 px, since the network downsamples by 32.
Normalisation of the input (ImageNet mean/std) is the caller's job (``HandFlowNet.encode`` does it).
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import torch
from torch import nn

from handflow.errors import HandflowError

__all__ = [
    "BasicBlock", "Bottleneck", "ResNet", "resnet", "feature_dim_for_depth", "load_backbone_weights",
]

_LAYERS = {18: ("basic", (2, 2, 2, 2)), 34: ("basic", (3, 4, 6, 3)), 50: ("bottleneck", (3, 4, 6, 3))}


def feature_dim_for_depth(depth: int, width: int = 64) -> int:
    """Pooled feature size of ResNet-``depth`` of base ``width``: 512 (18, 34) or 2048 (50) at width 64."""
    if depth not in _LAYERS:
        raise HandflowError(f"unsupported ResNet depth {depth}: choose one of {sorted(_LAYERS)}")
    return (8 if _LAYERS[depth][0] == "basic" else 32) * width


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)


def _conv1x1(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = _conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = _conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = _conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """ResNet-``depth`` trunk; ``forward`` returns the pooled feature ``(B, feature_dim)``.

    ``num_classes``: when given, an ``fc`` layer exists (torchvision's classifier head) and
    :meth:`logits` applies it; the encoder path never uses it.
    ``width``: channels of the first stage (torchvision: 64; every stage scales with it). Narrower
    trunks keep the parameter names but not the shapes, so ImageNet weights need ``width=64``; the
    CPU default uses 32, a quarter of the compute and parameters.
    """

    def __init__(self, depth: int = 18, num_classes: int | None = None, width: int = 64):
        super().__init__()
        if width < 8 or width % 8:
            raise HandflowError(f"ResNet width must be a positive multiple of 8, found {width}")
        self.feature_dim = feature_dim_for_depth(depth, width)
        self.depth = depth
        kind, layers = _LAYERS[depth]
        block = BasicBlock if kind == "basic" else Bottleneck
        w = width
        self.inplanes = w
        self.conv1 = nn.Conv2d(3, w, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(w)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, w, layers[0])
        self.layer2 = self._make_layer(block, 2 * w, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 4 * w, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 8 * w, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(8 * w * block.expansion, num_classes) if num_classes else None
        # torchvision's initialisation
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def _make_layer(self, block, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                _conv1x1(self.inplanes, planes * block.expansion, stride), nn.BatchNorm2d(planes * block.expansion)
            )
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 3:
            raise HandflowError(f"ResNet expects images (B,3,H,W), found shape {tuple(x.shape)}")
        if min(x.shape[-2:]) < 32:
            raise HandflowError(f"ResNet input must be at least 32x32 px, found {tuple(x.shape[-2:])}")
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        if self.fc is None:
            raise HandflowError("this ResNet was built without a classifier head (num_classes=None)")
        return self.fc(self.forward(x))


def resnet(depth: int, num_classes: int | None = None, width: int = 64) -> ResNet:
    return ResNet(depth, num_classes, width)


def load_backbone_weights(model: ResNet, path: str | Path) -> None:
    """Load a torchvision-style ImageNet state dict from a local file into ``model`` (strict).

    ``fc.*`` entries are ignored on both sides. Files written before BatchNorm tracked its batch
    count (the classic ``resnet18-5c106cde.pth``) lack ``*.num_batches_tracked``; those are allowed to
    be absent. Every other missing, unexpected or mis-shaped key is a one-line ``HandflowError``
    naming the file and the key. A ``{"state_dict": ...}`` wrapper and a DataParallel ``module.``
    prefix are accepted.
    """
    path = Path(path)
    if not path.is_file():
        raise HandflowError(f"missing backbone weights file: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, zipfile.BadZipFile, io.UnsupportedOperation, OSError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise HandflowError(f"corrupt or unreadable backbone weights {path}: {first[:200]}") from err
    except Exception as err:  # the safe unpickler rejects foreign objects with assorted exception types
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise HandflowError(f"backbone weights {path} are not a plain state dict: {first[:200]}") from err
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise HandflowError(f"backbone weights {path} are not a state dict of tensors")
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    own = {k: v for k, v in model.state_dict().items() if not k.startswith("fc.")}
    for k in own:
        if k not in state and not k.endswith("num_batches_tracked"):
            raise HandflowError(
                f"backbone weights {path} do not fit ResNet-{model.depth}: missing key {k!r}"
            )
    for k, v in state.items():
        if k not in own:
            raise HandflowError(
                f"backbone weights {path} do not fit ResNet-{model.depth}: unexpected key {k!r}"
            )
        if tuple(v.shape) != tuple(own[k].shape):
            raise HandflowError(
                f"backbone weights {path}: key {k!r} has shape {tuple(v.shape)}, "
                f"ResNet-{model.depth} expects {tuple(own[k].shape)}"
            )
        if not torch.is_floating_point(v) and torch.is_floating_point(own[k]):
            raise HandflowError(f"backbone weights {path}: key {k!r} is not a floating-point tensor")
    if any(torch.is_floating_point(v) and not torch.isfinite(v).all() for v in state.values()):
        bad = next(k for k, v in state.items() if torch.is_floating_point(v) and not torch.isfinite(v).all())
        raise HandflowError(f"backbone weights {path}: key {bad!r} holds non-finite values")
    with torch.no_grad():
        for k, v in state.items():
            own[k].copy_(v.to(own[k].dtype))
