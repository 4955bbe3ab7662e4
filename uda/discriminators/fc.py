"""Fully convolutional discriminators for segmentation outputs and feature maps.

Paper: AdaptSegNet (Tsai et al., "Learning to Adapt Structured Output Space for Semantic Segmentation",
CVPR 2018) — the FCDiscriminator used by AdaptSegNet, ADVENT and CLAN. The shallow ``feature`` variant is
ours, for stride-8 feature maps (MLFA's multi-level features), where five stride-2 convolutions would leave a
2×4 map.
"""

from __future__ import annotations

from itertools import pairwise

import torch
from torch import nn

from .._registry import register
from ._common import conv


@register("discriminator", "fc")
class FCDiscriminator(nn.Module):
    """AdaptSegNet's FCDiscriminator: five 4×4 stride-2 convs, LeakyReLU 0.2 after the first four, no norm.

    Channels ``in → ndf → 2ndf → 4ndf → 8ndf → 1``; 2,781,121 parameters for ``in_channels=19, ndf=64``.

    Args:
        in_channels: channels of the input map (e.g. the number of classes).
        ndf: width of the first conv.
        spectral_norm: wrap every conv in spectral normalization.

    Shape:
        (B, in_channels, H, W) → (B, 1, ~H/32, ~W/32) patch logits.

    Example:
        >>> d = FCDiscriminator(in_channels=19)
        >>> d(torch.rand(1, 19, 64, 64)).shape
        torch.Size([1, 1, 2, 2])
    """

    def __init__(self, in_channels: int, *, ndf: int = 64, spectral_norm: bool = False) -> None:
        super().__init__()
        chans = [in_channels, ndf, ndf * 2, ndf * 4, ndf * 8]
        layers: list[nn.Module] = []
        for a, b in pairwise(chans):
            layers += [conv(a, b, 4, 2, 1, sn=spectral_norm), nn.LeakyReLU(0.2, inplace=True)]
        layers.append(conv(chans[-1], 1, 4, 2, 1, sn=spectral_norm))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@register("discriminator", "feature")
class FeatureDiscriminator(nn.Module):
    """Shallow discriminator for stride-8 feature maps: three 4×4 stride-2 convs and a 3×3 classifier.

    Channels ``in → ndf → 2ndf → 4ndf → 1``, LeakyReLU 0.2 after each stride-2 conv, no normalization. A
    1024×512 input gives 65×129 features at stride 8 and an 8×16 logit map here (the 5-conv ``fc`` would
    leave 2×4).

    Args:
        in_channels: channels of the feature map (e.g. 3584 for DeepLab-v2 layer2+layer3+layer4).
        ndf: width of the first conv.
        spectral_norm: wrap every conv in spectral normalization.

    Shape:
        (B, in_channels, H, W) → (B, 1, ~H/8, ~W/8).

    Example:
        >>> d = FeatureDiscriminator(in_channels=32, ndf=8)
        >>> d(torch.rand(2, 32, 65, 129)).shape
        torch.Size([2, 1, 8, 16])
    """

    def __init__(self, in_channels: int, *, ndf: int = 64, spectral_norm: bool = False) -> None:
        super().__init__()
        chans = [in_channels, ndf, ndf * 2, ndf * 4]
        layers: list[nn.Module] = []
        for a, b in pairwise(chans):
            layers += [conv(a, b, 4, 2, 1, sn=spectral_norm), nn.LeakyReLU(0.2, inplace=True)]
        layers.append(conv(chans[-1], 1, 3, 1, 1, sn=spectral_norm))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@register("discriminator", "fc_tiny")
def fc_tiny(in_channels: int, *, ndf: int = 8, spectral_norm: bool = False) -> FCDiscriminator:
    """FCDiscriminator with ``ndf=8`` for tests and CPU demos."""
    return FCDiscriminator(in_channels, ndf=ndf, spectral_norm=spectral_norm)


@register("discriminator", "feature_tiny")
def feature_tiny(in_channels: int, *, ndf: int = 8, spectral_norm: bool = False) -> FeatureDiscriminator:
    """Shallow feature discriminator with ``ndf=8`` for tests and CPU demos."""
    return FeatureDiscriminator(in_channels, ndf=ndf, spectral_norm=spectral_norm)
