"""The feature reinforcement unit (FRU) of MLFA (multi-level feature alignment for UDA segmentation).

The paper's slides say only that the FRU is built from group convolution (GConv) and group normalization
(GN); the figure is not available. Our reading (documented in docs/models.md) is a ResNeXt-style residual
unit::

    y = ReLU( GN(conv1x1(ReLU(GN(gconv3x3(ReLU(GN(conv1x1(x)))))))) + shortcut(x) )

with ``shortcut`` the identity when the widths match and a 1×1 conv + GN projection otherwise. With
``zero_init=True`` the last GN's gamma starts at 0, so the unit starts as ``ReLU(shortcut(x))`` (= ``x`` for
post-ReLU features and an identity shortcut). ``residual=False`` drops the shortcut.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .._errors import UdaError
from .._registry import register

__all__ = ["FeatureReinforcementUnit", "fru"]


def _gn(channels: int, groups: int | None, what: str) -> nn.GroupNorm:
    g = math.gcd(32, channels) if groups is None else groups
    if channels % g:
        raise UdaError(
            f"FRU: gn_groups={g} does not divide the {channels} {what} channels; pick a divisor of {channels}"
        )
    return nn.GroupNorm(g, channels)


@register("module", "fru")
class FeatureReinforcementUnit(nn.Module):
    """Residual unit of 1×1 conv → GN → ReLU → 3×3 group conv → GN → ReLU → 1×1 conv → GN (+ shortcut), ReLU.

    Args:
        in_channels: input channels (of one level, or the sum over levels for a concatenated map).
        out_channels: output channels (default: ``in_channels``).
        mid_channels: width of the grouped 3×3 conv (default: ``out_channels // 4`` rounded up to a multiple of
            ``groups``).
        groups: groups of the 3×3 convolution (must divide ``mid_channels``).
        gn_groups: groups of every GroupNorm (must divide the channels it normalizes); ``None`` → gcd(32, C).
        residual: add the shortcut.
        zero_init: initialize the last GN's gamma to 0 so the unit starts as (ReLU of) its shortcut.

    Shape:
        - input: (B, in_channels, H, W), or a sequence of (B, C_i, H_i, W_i) maps that are resized to the first
          map's size (bilinear) and concatenated (sum of C_i must equal ``in_channels``)
        - output: (B, out_channels, H, W)

    Example:
        >>> import torch, uda
        >>> fru = uda.create("module", "fru", in_channels=64, groups=8)
        >>> fru(torch.rand(2, 64, 8, 8)).shape
        torch.Size([2, 64, 8, 8])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int | None = None,
        *,
        mid_channels: int | None = None,
        groups: int = 32,
        gn_groups: int | None = None,
        residual: bool = True,
        zero_init: bool = True,
    ) -> None:
        super().__init__()
        out_channels = out_channels or in_channels
        if mid_channels is None:
            mid_channels = max(groups, -(-(out_channels // 4) // groups) * groups)
        if mid_channels % groups:
            raise UdaError(
                f"FRU: groups={groups} does not divide mid_channels={mid_channels}; pick mid_channels a multiple of {groups}"
            )
        self.in_channels, self.out_channels, self.residual = in_channels, out_channels, residual
        self.conv1 = nn.Conv2d(in_channels, mid_channels, 1, bias=False)
        self.gn1 = _gn(mid_channels, gn_groups, "middle")
        self.conv2 = nn.Conv2d(mid_channels, mid_channels, 3, padding=1, groups=groups, bias=False)
        self.gn2 = _gn(mid_channels, gn_groups, "middle")
        self.conv3 = nn.Conv2d(mid_channels, out_channels, 1, bias=False)
        self.gn3 = _gn(out_channels, gn_groups, "output")
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module | None = None
        if residual:
            self.shortcut = (
                nn.Identity()
                if in_channels == out_channels
                else nn.Sequential(
                    nn.Conv2d(in_channels, out_channels, 1, bias=False), _gn(out_channels, gn_groups, "output")
                )
            )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if zero_init:
            nn.init.zeros_(self.gn3.weight)

    @staticmethod
    def concat(features: Sequence[torch.Tensor]) -> torch.Tensor:
        """Resize maps to the first one's (H, W) (bilinear, align_corners=False) and concatenate on channels."""
        size = features[0].shape[-2:]
        maps = [
            f if f.shape[-2:] == size else F.interpolate(f, size=size, mode="bilinear", align_corners=False)
            for f in features
        ]
        return torch.cat(maps, dim=1)

    def forward(self, x: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            x = self.concat(list(x))
        if x.shape[1] != self.in_channels:
            raise UdaError(
                f"FRU built for {self.in_channels} input channels got {x.shape[1]}; set in_channels={x.shape[1]}"
            )
        out = self.relu(self.gn1(self.conv1(x)))
        out = self.relu(self.gn2(self.conv2(out)))
        out = self.gn3(self.conv3(out))
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return self.relu(out)


fru = FeatureReinforcementUnit
