"""The feature reinforcement unit: shapes, residual identity start, groups, multi-level input."""

from __future__ import annotations

import pytest
import torch

import uda
from uda.models import FeatureReinforcementUnit


def test_registered_and_shapes():
    fru = uda.create("module", "fru", in_channels=32, out_channels=48, mid_channels=16, groups=4, gn_groups=8)
    assert fru(torch.rand(2, 32, 9, 7)).shape == (2, 48, 9, 7)
    assert isinstance(fru.shortcut, torch.nn.Sequential)  # projection when widths differ


def test_zero_init_starts_as_identity_on_nonnegative_features():
    fru = FeatureReinforcementUnit(16, groups=4, gn_groups=4)
    x = torch.rand(2, 16, 5, 5)
    assert torch.equal(fru(x), x)
    fru = FeatureReinforcementUnit(16, groups=4, gn_groups=4, zero_init=False)
    assert not torch.allclose(fru(x), x)


def test_grouped_conv_and_gn_groups():
    fru = FeatureReinforcementUnit(64, mid_channels=32, groups=8, gn_groups=4)
    assert fru.conv2.groups == 8 and fru.conv2.weight.shape == (32, 4, 3, 3)
    assert fru.gn1.num_groups == 4 and isinstance(fru.gn2, torch.nn.GroupNorm)
    with pytest.raises(uda.UdaError, match="groups=5 does not divide mid_channels=32"):
        FeatureReinforcementUnit(64, mid_channels=32, groups=5)
    with pytest.raises(uda.UdaError, match="gn_groups=6 does not divide"):
        FeatureReinforcementUnit(64, mid_channels=32, groups=8, gn_groups=6)


def test_no_residual_and_backward():
    fru = FeatureReinforcementUnit(8, 8, groups=2, gn_groups=2, residual=False, zero_init=False)
    assert fru.shortcut is None
    x = torch.rand(2, 8, 4, 4, requires_grad=True)
    fru(x).sum().backward()
    assert x.grad is not None and fru.conv2.weight.grad.abs().sum() > 0


def test_concatenated_multi_level_input():
    m = uda.create("model", "deeplabv2_tiny", num_classes=3)
    info = m.feature_info
    levels = ["layer2", "layer3", "layer4"]
    fru = FeatureReinforcementUnit(sum(info[lv].channels for lv in levels), 256, groups=16)
    feats = m(torch.rand(1, 3, 64, 64)).features
    assert fru([feats[lv] for lv in levels]).shape == (1, 256, 9, 9)
    with pytest.raises(uda.UdaError, match="in_channels=512"):
        fru(feats["layer4"])


def test_concat_resizes_to_first():
    a, b = torch.rand(1, 4, 8, 8), torch.rand(1, 6, 4, 4)
    assert FeatureReinforcementUnit.concat([a, b]).shape == (1, 10, 8, 8)
