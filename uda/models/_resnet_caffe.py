"""The dilated Caffe-style ResNet trunk of DeepLab-v2 (Chen et al., "DeepLab: Semantic Image Segmentation with
Deep Convolutional Nets, Atrous Convolution, and Fully Connected CRFs", TPAMI 2018), the backbone of AdaptSegNet
(Tsai et al., CVPR 2018) and ADVENT (Vu et al., CVPR 2019).

A ResNet (He et al., "Deep Residual Learning for Image Recognition", CVPR 2016) in the layout of the Caffe
model those projects converted: the stride sits on the first 1×1 conv of a bottleneck, the stem max-pool uses
``ceil_mode``, and layer3/layer4 run at stride 1 with dilation 2/4 in every block (output stride 8). The module
names are the original ones (``conv1``, ``bn1``, ``layer3.7.conv2``, ``layer1.0.downsample.0`` …), so the
original checkpoints load by name. The network built on it is [`DeepLabV2`][uda.models.deeplabv2.DeepLabV2];
both classes are importable from `uda.models.deeplabv2`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .._errors import UdaError

__all__ = ["CaffeBottleneck", "CaffeResNet"]


class CaffeBottleneck(nn.Module):
    """ResNet bottleneck with the stride on the first 1×1 conv (Caffe / original DeepLab-v2 layout).

    Args:
        inplanes: input channels.
        planes: width of the 3×3 conv; the block outputs ``4 * planes`` channels.
        stride: stride of the first 1×1 conv (and of the downsample).
        dilation: dilation (= padding) of the 3×3 conv.
        downsample: the shortcut projection, or ``None`` for identity.

    Shape:
        - input: (B, inplanes, H, W)
        - output: (B, 4 * planes, ⌈H/stride⌉, ⌈W/stride⌉)

    Example:
        >>> import torch
        >>> block = CaffeBottleneck(8, 4, stride=2, downsample=torch.nn.Conv2d(8, 16, 1, stride=2))
        >>> block(torch.rand(1, 8, 16, 16)).shape
        torch.Size([1, 16, 8, 8])
    """

    expansion = 4

    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, dilation: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class CaffeResNet(nn.Module):
    """The dilated Caffe-style ResNet trunk of DeepLab-v2 (no pooling/FC), output stride 8.

    Args:
        layers: blocks per stage, ``(3, 4, 23, 3)`` for ResNet-101.
        width: stem width; stage ``i`` has ``width * 2**i`` bottleneck planes (64 for ResNet-101).

    The stages are run by [`DeepLabV2`][uda.models.deeplabv2.DeepLabV2] (which taps every one of them), so the
    trunk has no ``forward`` of its own; ``channels`` lists the output channels of ``layer1`` … ``layer4``.

    Example:
        >>> net = CaffeResNet((1, 1, 1, 1), width=8)
        >>> net.channels, net.layer4[0].conv2.dilation, net.layer2[0].conv1.stride
        ([32, 64, 128, 256], (4, 4), (2, 2))
    """

    def __init__(self, layers: Sequence[int] = (3, 4, 23, 3), width: int = 64) -> None:
        super().__init__()
        if len(layers) != 4 or any(int(n) < 1 for n in layers):
            raise UdaError(f"layers must be four positive block counts like (3, 4, 23, 3), got {tuple(layers)}")
        self.inplanes = width
        self.conv1 = nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True)
        self.layer1 = self._make_layer(width, layers[0], stride=1, dilation=1)
        self.layer2 = self._make_layer(width * 2, layers[1], stride=2, dilation=1)
        self.layer3 = self._make_layer(width * 4, layers[2], stride=1, dilation=2)
        self.layer4 = self._make_layer(width * 8, layers[3], stride=1, dilation=4)
        self.channels = [width * 4, width * 8, width * 16, width * 32]

    def _make_layer(self, planes: int, blocks: int, stride: int, dilation: int) -> nn.Sequential:
        # Every stage's first block has a projection: the originals add one whenever stride != 1, the
        # width changes, or the stage is dilated, which is true for all four stages of ResNet-101.
        downsample = nn.Sequential(
            nn.Conv2d(self.inplanes, planes * 4, 1, stride=stride, bias=False), nn.BatchNorm2d(planes * 4)
        )
        mods = [CaffeBottleneck(self.inplanes, planes, stride, dilation, downsample)]
        self.inplanes = planes * 4
        mods += [CaffeBottleneck(self.inplanes, planes, 1, dilation) for _ in range(1, blocks)]
        return nn.Sequential(*mods)
