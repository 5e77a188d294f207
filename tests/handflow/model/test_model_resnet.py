import pytest
import torch

from handflow.errors import HandflowError
from handflow.model.resnet import ResNet, feature_dim_for_depth, load_backbone_weights

# torchvision.models.resnet{18,50}().state_dict(): total key count (fc included) and some shapes.
TV_KEYS = {
    18: (122, {
        "conv1.weight": (64, 3, 7, 7),
        "bn1.running_mean": (64,),
        "bn1.num_batches_tracked": (),
        "layer1.0.conv1.weight": (64, 64, 3, 3),
        "layer1.1.bn2.weight": (64,),
        "layer2.0.downsample.0.weight": (128, 64, 1, 1),
        "layer2.0.downsample.1.running_var": (128,),
        "layer3.1.conv2.weight": (256, 256, 3, 3),
        "layer4.0.conv1.weight": (512, 256, 3, 3),
        "layer4.1.conv2.weight": (512, 512, 3, 3),
        "fc.weight": (1000, 512),
        "fc.bias": (1000,),
    }),
    50: (320, {
        "conv1.weight": (64, 3, 7, 7),
        "layer1.0.conv1.weight": (64, 64, 1, 1),
        "layer1.0.conv2.weight": (64, 64, 3, 3),
        "layer1.0.conv3.weight": (256, 64, 1, 1),
        "layer1.0.downsample.0.weight": (256, 64, 1, 1),
        "layer1.0.downsample.1.num_batches_tracked": (),
        "layer2.0.conv2.weight": (128, 128, 3, 3),
        "layer2.0.downsample.0.weight": (512, 256, 1, 1),
        "layer3.5.bn3.running_mean": (1024,),
        "layer4.2.conv3.weight": (2048, 512, 1, 1),
        "layer4.2.bn3.bias": (2048,),
        "fc.weight": (1000, 2048),
    }),
}


@pytest.mark.parametrize("depth", [18, 50])
def test_state_dict_matches_torchvision_names(depth):
    count, some = TV_KEYS[depth]
    sd = ResNet(depth, num_classes=1000).state_dict()
    assert len(sd) == count
    for k, shape in some.items():
        assert tuple(sd[k].shape) == shape, k
    no_fc = ResNet(depth).state_dict()
    assert len(no_fc) == count - 2 and not any(k.startswith("fc.") for k in no_fc)


def test_resnet34_keys_and_feature_dims():
    assert len(ResNet(34, num_classes=1000).state_dict()) == 218
    assert feature_dim_for_depth(18) == 512 and feature_dim_for_depth(34) == 512 and feature_dim_for_depth(50) == 2048
    with pytest.raises(HandflowError, match="depth"):
        ResNet(101)


def test_forward_pooled_feature_any_size():
    torch.manual_seed(0)
    m = ResNet(18).eval()
    for size in (64, 96):
        assert m(torch.rand(2, 3, size, size)).shape == (2, 512)
    with pytest.raises(HandflowError, match="32"):
        m(torch.rand(1, 3, 16, 16))


def test_load_backbone_weights_roundtrip_and_errors(tmp_path):
    torch.manual_seed(0)
    src = ResNet(18, num_classes=1000)
    with torch.no_grad():
        for p in src.parameters():
            p.add_(0.01)
    sd = src.state_dict()
    path = tmp_path / "resnet18.pth"
    torch.save(sd, path)
    dst = ResNet(18)
    load_backbone_weights(dst, path)
    for k, v in dst.state_dict().items():
        assert torch.equal(v, sd[k]), k

    # the classic model-zoo files lack num_batches_tracked: allowed
    old = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    torch.save(old, tmp_path / "old.pth")
    load_backbone_weights(ResNet(18), tmp_path / "old.pth")

    missing = {k: v for k, v in sd.items() if k != "layer1.0.conv1.weight"}
    torch.save(missing, tmp_path / "missing.pth")
    with pytest.raises(HandflowError, match=r"missing.pth.*missing key 'layer1.0.conv1.weight'"):
        load_backbone_weights(ResNet(18), tmp_path / "missing.pth")

    extra = dict(sd, **{"layer5.weight": torch.zeros(1)})
    torch.save(extra, tmp_path / "extra.pth")
    with pytest.raises(HandflowError, match=r"unexpected key 'layer5.weight'"):
        load_backbone_weights(ResNet(18), tmp_path / "extra.pth")

    bad = dict(sd, **{"conv1.weight": torch.zeros(64, 3, 3, 3)})
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(HandflowError, match=r"bad.pth: key 'conv1.weight' has shape"):
        load_backbone_weights(ResNet(18), tmp_path / "bad.pth")

    with pytest.raises(HandflowError, match="do not fit ResNet-50"):
        load_backbone_weights(ResNet(50), path)

    (tmp_path / "corrupt.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(HandflowError, match="corrupt"):
        load_backbone_weights(ResNet(18), tmp_path / "corrupt.pth")
    with pytest.raises(HandflowError, match="missing backbone"):
        load_backbone_weights(ResNet(18), tmp_path / "nope.pth")
