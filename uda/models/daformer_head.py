"""The DAFormer head: context-aware fusion of the four encoder levels.

Hoyer, Dai, Van Gool, "DAFormer: Improving Network Architectures and Training Strategies for Domain-Adaptive
Semantic Segmentation", CVPR 2022 (Sec. 3.2): per level an MLP embedding, resize to stride 4, concatenation, a
depthwise-separable ASPP fusion, dropout and a 1x1 classifier. Our own code; the module names follow the
original mmseg layout so that released weights load by name. Used by `uda.models.daformer.DAFormer`, the HRDA
scale-attention head and the VFM segmenter.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .._errors import UdaError

__all__ = ["ConvBNReLU", "DAFormerHead", "MLPEmbed", "SepASPP", "SepConvBNReLU"]


class ConvBNReLU(nn.Sequential):
    """``conv`` (no bias) → ``bn`` → ReLU (mmcv's ``ConvModule`` with BN and ReLU)."""

    def __init__(self, cin: int, cout: int, k: int, *, dilation: int = 1, groups: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, padding=dilation * (k // 2), dilation=dilation, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.act = nn.ReLU(inplace=True)


class SepConvBNReLU(nn.Module):
    """Depthwise 3×3 (dilated) conv→BN→ReLU, then pointwise 1×1 conv→BN→ReLU."""

    def __init__(self, cin: int, cout: int, dilation: int) -> None:
        super().__init__()
        self.depthwise_conv = ConvBNReLU(cin, cin, 3, dilation=dilation, groups=cin)
        self.pointwise_conv = ConvBNReLU(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise_conv(self.depthwise_conv(x))


class SepASPP(nn.Module):
    """Depthwise-separable ASPP without image pooling: a 1×1 branch and 3×3 separable branches, concatenated and
    fused by a 3×3 ``bottleneck`` conv→BN→ReLU."""

    def __init__(self, cin: int, cout: int, dilations: Sequence[int] = (1, 6, 12, 18)) -> None:
        super().__init__()
        self.aspp_modules = nn.ModuleList(
            [ConvBNReLU(cin, cout, 1) if d == 1 else SepConvBNReLU(cin, cout, d) for d in dilations]
        )
        self.bottleneck = ConvBNReLU(len(dilations) * cout, cout, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bottleneck(torch.cat([m(x) for m in self.aspp_modules], dim=1))


class MLPEmbed(nn.Module):
    """Per-pixel linear embedding of a (B, C, h, w) map to (B, D, h, w) (``proj`` is an ``nn.Linear``)."""

    def __init__(self, cin: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(cin, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        y = self.proj(x.flatten(2).transpose(1, 2))
        return y.transpose(1, 2).reshape(b, -1, h, w)


class DAFormerHead(nn.Module):
    """The DAFormer decoder: multi-level MLP embedding, context-aware fusion, classifier.

    Each level is embedded to ``embed_dim`` channels by a linear layer, resized to the first level's size
    (bilinear, ``align_corners=False``), the levels are concatenated and fused by a depthwise-separable ASPP
    (``fusion="aspp"``: 1×1 branch and 3×3 separable branches at dilations 6, 12, 18, each conv→BN→ReLU, no image
    pooling, then a 3×3 bottleneck conv→BN→ReLU) or by one 1×1 conv→BN→ReLU (``fusion="conv"``: HRDA's
    scale-attention head), then ``Dropout2d(dropout)`` and a 1×1 classifier ``conv_seg``.

    Submodule names follow the original mmseg layout (``embed_layers.{i}.proj``, ``fuse_layer.aspp_modules``,
    ``fuse_layer.bottleneck``, ``conv_seg``) so released weights map one to one.

    Args:
        in_channels: channels of the input levels (DAFormer: MiT's 64, 128, 320, 512).
        num_classes: output channels of the classifier.
        embed_dim: embedding channels per level (DAFormer: 256).
        channels: fusion output channels (default: ``embed_dim``).
        dropout: dropout ratio before the classifier (``Dropout2d``; 0 disables it).
        dilations: ASPP dilations (1 = the 1×1 branch).
        fusion: ``"aspp"`` (DAFormer) or ``"conv"`` (HRDA's attention head).

    Shape:
        - input: a list of (B, C_i, h_i, w_i) maps, finest first
        - output: (B, num_classes, h_0, w_0)

    Example:
        >>> import torch
        >>> head = DAFormerHead(in_channels=[8, 16], num_classes=3, embed_dim=16)
        >>> head([torch.rand(1, 8, 16, 16), torch.rand(1, 16, 8, 8)]).shape
        torch.Size([1, 3, 16, 16])
    """

    def __init__(
        self,
        *,
        in_channels: Sequence[int],
        num_classes: int,
        embed_dim: int = 256,
        channels: int | None = None,
        dropout: float = 0.1,
        dilations: Sequence[int] = (1, 6, 12, 18),
        fusion: str = "aspp",
    ) -> None:
        super().__init__()
        channels = channels or embed_dim
        self.in_channels = list(in_channels)
        self.embed_layers = nn.ModuleDict({str(i): MLPEmbed(c, embed_dim) for i, c in enumerate(self.in_channels)})
        cat = embed_dim * len(self.in_channels)
        if fusion == "aspp":
            self.fuse_layer: nn.Module = SepASPP(cat, channels, dilations)
        elif fusion == "conv":
            self.fuse_layer = ConvBNReLU(cat, channels, 1)
        else:
            raise UdaError(f"DAFormerHead: unknown fusion '{fusion}'; use 'aspp' or 'conv'")
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        self.conv_seg = nn.Conv2d(channels, num_classes, 1)
        self.channels = channels

    def fuse(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        """The fused (B, channels, h_0, w_0) map before dropout and classifier."""
        if len(feats) != len(self.in_channels):
            raise UdaError(f"DAFormerHead expects {len(self.in_channels)} feature levels, got {len(feats)}")
        size = feats[0].shape[-2:]
        embedded = []
        for i, f in enumerate(feats):
            e = self.embed_layers[str(i)](f)
            if e.shape[-2:] != size:
                e = F.interpolate(e, size=size, mode="bilinear", align_corners=False)
            embedded.append(e)
        return self.fuse_layer(torch.cat(embedded, dim=1))

    def forward(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        return self.conv_seg(self.dropout(self.fuse(feats)))
