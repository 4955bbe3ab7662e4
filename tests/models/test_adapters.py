"""timm and smp adapters: SegOutput, declared levels, local backbone weights, input checks."""

from __future__ import annotations

import pytest
import timm
import torch

import uda
from uda.models import Normalization, load_weights


@pytest.fixture(scope="module")
def resnet10t_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("w") / "resnet10t.pth"
    net = timm.create_model("resnet10t", pretrained=False)
    torch.save(net.state_dict(), path)
    return path, net.state_dict()


def test_timm_backbone_weights_from_local_file(resnet10t_file):
    path, sd = resnet10t_file
    m = uda.create("model", "timm_tiny", num_classes=3, pretrained=str(path))
    own = m.state_dict()
    assert torch.equal(own["backbone.layer3.0.conv1.weight"], sd["layer3.0.conv1.weight"])
    assert m.normalization == Normalization.named("imagenet")


def test_smp_encoder_weights_from_local_file(resnet10t_file):
    path, sd = resnet10t_file
    m = uda.create("model", "smp_tiny", num_classes=3)
    report = load_weights(m, path)
    assert report.layout == "backbone" and report.normalization == "imagenet"
    assert torch.equal(m.state_dict()["net.encoder.model.layer2.0.conv2.weight"], sd["layer2.0.conv2.weight"])


def test_timm_incomplete_backbone_raises(resnet10t_file, tmp_path):
    _, sd = resnet10t_file
    sd = {k: v for k, v in sd.items() if not k.startswith("layer4")}
    torch.save(sd, tmp_path / "partial.pth")
    with pytest.raises(uda.CheckpointError, match=r"missing backbone\.layer4"):
        uda.create("model", "timm_tiny", num_classes=3, pretrained=str(tmp_path / "partial.pth"))


def test_timm_aspp_head_output_stride_16():
    m = uda.create(
        "model", "timm_deeplab", backbone="resnet10t", num_classes=4, head="aspp", output_stride=16, multi_level=False
    )
    out = m(torch.rand(1, 3, 64, 64))
    assert out.logits.shape == (1, 4, 4, 4) and out.aux is None
    assert m.feature_info["aspp"] == uda.LevelInfo(256, 16) and m.feature_info["layer4"].stride == 16
    assert out.features["aspp"].shape == (1, 256, 4, 4) and m.output_stride == 16


def test_timm_unknown_backbone():
    with pytest.raises(uda.UdaError, match="unknown timm backbone 'resnet_nope'"):
        uda.create("model", "timm_deeplab", backbone="resnet_nope")


def test_smp_segformer_and_deeplabv3plus():
    m = uda.create("model", "smp", arch="segformer", encoder_name="mit_b0", num_classes=3)
    out = m(torch.rand(1, 3, 64, 64))
    assert out.logits.shape == (1, 3, 64, 64) and out.aux is None
    assert "stem" not in m.feature_info and m.feature_info["layer1"] == uda.LevelInfo(32, 4)
    m = uda.create("model", "smp", arch="deeplabv3plus", encoder_name="tu-resnet10t", num_classes=3)
    assert m.feature_info["layer4"] == uda.LevelInfo(512, 16) and m.feature_info["decoder"].stride == 4
    assert m.output_stride == 1


def test_smp_input_must_be_divisible():
    m = uda.create("model", "smp_tiny", num_classes=3)
    with pytest.raises(uda.UdaError, match=r"multiples of 32.*e\.g\. 128×64"):
        m(torch.rand(1, 3, 50, 100))
    with pytest.raises(uda.UdaError, match="unknown smp arch"):
        uda.create("model", "smp", arch="nope")


def test_smp_heads_at_10x():
    m = uda.create("model", "smp_tiny", num_classes=3)
    groups = m.param_groups(1.0)
    assert groups[1]["lr"] == 10.0
    n = sum(p.numel() for g in groups for p in g["params"])
    assert n == sum(p.numel() for p in m.parameters())
