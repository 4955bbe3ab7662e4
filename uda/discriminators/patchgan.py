"""The 70×70 PatchGAN image discriminator.

Paper: Isola et al., "Image-to-Image Translation with Conditional Adversarial Networks" (pix2pix, CVPR 2017),
as used by CycleGAN (Zhu et al., ICCV 2017).
"""

from __future__ import annotations

import torch
from torch import nn

from .._registry import register
from ._common import conv


@register("discriminator", "patchgan")
class PatchGANDiscriminator(nn.Module):
    """70×70 PatchGAN: 4×4 convs ``ndf(s2, no norm) → 2ndf(s2) → 4ndf(s2) → 8ndf(s1) → 1(s1)``.

    InstanceNorm (``affine=False``) after convs 2–4, LeakyReLU 0.2 after convs 1–4, padding 1. Every conv
    keeps its bias even before InstanceNorm (as in the CycleGAN code, where ``use_bias`` is true for
    InstanceNorm): this is what gives 2,764,737 parameters for ``in_channels=3, ndf=64`` (without those
    biases it would be 2,763,841).

    Args:
        in_channels: image channels.
        ndf: width of the first conv.
        n_layers: number of stride-2 convs (3 gives the 70×70 receptive field).
        spectral_norm: wrap every conv in spectral normalization.

    Shape:
        (B, in_channels, H, W) → (B, 1, H/8 − 2, W/8 − 2) for H, W divisible by 8.

    Example:
        >>> PatchGANDiscriminator()(torch.rand(1, 3, 64, 64)).shape
        torch.Size([1, 1, 6, 6])
    """

    def __init__(self, in_channels: int = 3, *, ndf: int = 64, n_layers: int = 3, spectral_norm: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = [conv(in_channels, ndf, 4, 2, 1, sn=spectral_norm), nn.LeakyReLU(0.2, inplace=True)]
        ch = ndf
        for i in range(1, n_layers + 1):
            out = ndf * min(2**i, 8)
            stride = 2 if i < n_layers else 1
            layers += [
                conv(ch, out, 4, stride, 1, sn=spectral_norm),
                nn.InstanceNorm2d(out, affine=False),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            ch = out
        layers.append(conv(ch, 1, 4, 1, 1, sn=spectral_norm))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@register("discriminator", "patchgan_tiny")
def patchgan_tiny(
    in_channels: int = 3, *, ndf: int = 8, n_layers: int = 3, spectral_norm: bool = False
) -> PatchGANDiscriminator:
    """PatchGAN with ``ndf=8`` for tests and CPU demos."""
    return PatchGANDiscriminator(in_channels, ndf=ndf, n_layers=n_layers, spectral_norm=spectral_norm)
