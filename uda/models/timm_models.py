"""Any timm backbone (``features_only``, output stride 8 or 16) with a DeepLab-style head (DeepLab-v2's summed
atrous classifier, Chen et al. 2017, or the DeepLab-v3 ASPP), behind [`SegOutput`][uda.types.SegOutput].

Weights never come from a hub: the backbone is built with ``pretrained=False`` and ``pretrained=PATH`` loads a
local timm state dict (``.pth``/``.safetensors``) through [`uda.models.load_weights`][uda.models.load_weights].
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .._errors import ConfigError, UdaError
from .._registry import register
from ..types import SegOutput
from ._common import BNMode, UdaSegmentationModel, level_info_from, probe_shapes
from .deeplabv2 import ClassifierV2

__all__ = ["ASPP", "TimmDeepLab", "timm_deeplab", "timm_tiny"]


class ASPP(nn.Module):
    """DeepLab-v3 atrous spatial pyramid pooling + 1×1 classifier.

    GroupNorm instead of BatchNorm so the image-pooling branch works at batch size 1 (a documented choice).

    Args:
        in_channels: input channels.
        num_classes: output classes.
        channels: width of each branch and of the projection.
        rates: dilations of the three 3×3 branches.

    Shape:
        - input: (B, in_channels, h, w)
        - output: ``(logits (B, num_classes, h, w), projected features (B, channels, h, w))``
    """

    def __init__(
        self, in_channels: int, num_classes: int, channels: int = 256, rates: Sequence[int] = (6, 12, 18)
    ) -> None:
        super().__init__()

        def block(k: int, d: int = 1) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(in_channels, channels, k, padding=d if k == 3 else 0, dilation=d, bias=False),
                nn.GroupNorm(min(32, channels), channels),
                nn.ReLU(inplace=True),
            )

        self.branches = nn.ModuleList([block(1)] + [block(3, r) for r in rates])
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), block(1))
        self.project = nn.Sequential(
            nn.Conv2d(channels * (len(rates) + 2), channels, 1, bias=False),
            nn.GroupNorm(min(32, channels), channels),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        outs = [b(x) for b in self.branches]
        outs.append(self.pool(x).expand(-1, -1, x.shape[-2], x.shape[-1]))
        feat = self.project(torch.cat(outs, dim=1))
        return self.classifier(feat), feat


class TimmDeepLab(UdaSegmentationModel):
    """A timm backbone with a DeepLab head on its last level and an optional auxiliary head on the previous one.

    Feature levels: the last four backbone levels are named ``layer1`` … ``layer4`` (ResNet naming; for a ResNet
    they are its stages), earlier ones ``stem``/``stem0``…; channels and strides are declared in
    `feature_info` (probed once at construction), plus ``logits``, ``aux`` and (ASPP head) ``aspp``.

    Args:
        num_classes: output classes.
        backbone: a timm model name (``timm.list_models()``).
        output_stride: 8 or 16 (dilated last stages).
        head: ``"v2"`` (DeepLab-v2 summed atrous classifier) or ``"aspp"`` (DeepLab-v3 ASPP).
        multi_level: auxiliary DeepLab-v2 head on the second-to-last level.
        bn_mode: ``"train"`` (default, random init), ``"moving"`` or ``"frozen"`` (for loaded weights).
        normalization: input normalization (``"imagenet"`` for timm weights).
        dilations: dilations of the v2 classifier branches (or the ASPP rates).
        out_indices: timm feature indices to use (default: all of them).
        backbone_kwargs: extra ``timm.create_model`` arguments.
        activation_checkpointing: recompute the backbone's stages in the backward pass instead of storing their
            activations (timm's ``set_grad_checkpointing``): less memory, about one more backbone forward per step;
            the same gradients.

    Example:
        >>> import torch, uda
        >>> m = uda.create("model", "timm_tiny", num_classes=4)
        >>> out = m(torch.rand(1, 3, 64, 64))
        >>> out.logits.shape, m.feature_info["layer4"].stride
        (torch.Size([1, 4, 8, 8]), 8)
    """

    backbone_prefixes = ("backbone.",)
    head_prefixes = ("head.", "aux_head.")

    def __init__(
        self,
        num_classes: int = 19,
        *,
        backbone: str = "resnet50",
        output_stride: int = 8,
        head: str = "v2",
        multi_level: bool = True,
        bn_mode: BNMode = "train",
        normalization: str = "imagenet",
        dilations: Sequence[int] = (6, 12, 18, 24),
        out_indices: Sequence[int] | None = None,
        backbone_kwargs: dict | None = None,
        activation_checkpointing: bool = False,
    ) -> None:
        import timm

        super().__init__(num_classes, normalization, bn_mode)
        if output_stride not in (8, 16):
            raise UdaError(f"output_stride must be 8 or 16, got {output_stride}")
        if head not in ("v2", "aspp"):
            raise UdaError(f"unknown head '{head}'; use 'v2' or 'aspp'")
        kw = dict(backbone_kwargs or {})
        if out_indices is not None:
            kw["out_indices"] = tuple(out_indices)
        try:
            self.backbone = timm.create_model(
                backbone, features_only=True, output_stride=output_stride, pretrained=False, **kw
            )
        except RuntimeError as e:
            if "Unknown model" in str(e):
                raise UdaError(
                    f"unknown timm backbone '{backbone}'; see timm.list_models() (e.g. 'resnet50')"
                ) from None
            raise
        self.activation_checkpointing = bool(activation_checkpointing)
        if self.activation_checkpointing:
            set_checkpointing(self.backbone, f"timm backbone '{backbone}'")
        chans = list(self.backbone.feature_info.channels())
        n = len(chans)
        if n < 2 and multi_level:
            raise UdaError(
                f"backbone '{backbone}' exposes {n} feature level(s); multi_level needs two (set multi_level=False)"
            )
        self.level_names = [
            f"layer{i - (n - 4) + 1}" if i >= n - 4 else ("stem" if n == 5 else f"stem{i}") for i in range(n)
        ]
        self.head_type = head
        if head == "v2":
            self.head = ClassifierV2(chans[-1], num_classes, dilations)
        else:
            self.head = ASPP(chans[-1], num_classes, rates=tuple(dilations)[:3])
        self.aux_head = ClassifierV2(chans[-2], num_classes, dilations) if multi_level else None
        self.apply_bn_mode()
        self.train()
        probe = 64
        shapes = probe_shapes(
            self, probe, lambda m, x: {k: v.shape for k, v in m.forward_normalized(x, check=False).features.items()}
        )
        self.feature_info = level_info_from(shapes, probe)
        self.min_input_size = max(i.stride for i in self.feature_info.values())

    def forward_normalized(self, x: torch.Tensor, check: bool = True) -> SegOutput:
        if check:
            self.check_input_size(x)
        feats = dict(zip(self.level_names, self.backbone(x)))
        last, prev = feats[self.level_names[-1]], feats[self.level_names[-2]] if len(self.level_names) > 1 else None
        if self.head_type == "v2":
            logits = self.head(last)
        else:
            logits, feats["aspp"] = self.head(last)
        aux = self.aux_head(prev) if self.aux_head is not None else None
        if aux is not None and aux.shape[-2:] != logits.shape[-2:]:
            aux = F.interpolate(aux, size=logits.shape[-2:], mode="bilinear", align_corners=False)
        feats["logits"] = logits
        if aux is not None:
            feats["aux"] = aux
        return SegOutput(logits=logits, aux=aux, features=feats)

    def head_parameters(self) -> list[nn.Parameter]:
        """The DeepLab heads (10× lr)."""
        heads = [self.head] + ([self.aux_head] if self.aux_head is not None else [])
        return [p for h in heads for p in h.parameters()]


def set_checkpointing(module: nn.Module, what: str) -> None:
    """Turn on timm's activation checkpointing of ``module`` (a timm model or its ``features_only`` wrapper).

    Args:
        module: a timm model with ``set_grad_checkpointing``.
        what: the module's name for the error message.

    Raises:
        ConfigError: the module has no ``set_grad_checkpointing``.
    """
    if not callable(getattr(module, "set_grad_checkpointing", None)):
        raise ConfigError(f"{what} does not support activation_checkpointing (no set_grad_checkpointing); "
                          "set activation_checkpointing=false")
    module.set_grad_checkpointing(True)


def _load(model: UdaSegmentationModel, pretrained: str | None, keep_normalization: bool) -> UdaSegmentationModel:
    if pretrained:
        from ._weights import load_weights

        load_weights(model, pretrained, keep_normalization=keep_normalization)
    return model


@register("model", "timm_deeplab")
def timm_deeplab(
    num_classes: int = 19,
    *,
    backbone: str = "resnet101",
    pretrained: str | None = None,
    output_stride: int = 8,
    head: str = "v2",
    multi_level: bool = True,
    bn_mode: BNMode = "train",
    normalization: str | None = None,
    dilations: Sequence[int] = (6, 12, 18, 24),
    out_indices: Sequence[int] | None = None,
    backbone_kwargs: dict | None = None,
    activation_checkpointing: bool = False,
) -> TimmDeepLab:
    """A timm backbone (default ResNet-101, torchvision-style) with a DeepLab-v2 or ASPP head.

    Args:
        num_classes: output classes.
        backbone: timm model name.
        pretrained: a local timm weights file for the backbone (or a full ``uda`` checkpoint), or ``None``.
        output_stride: 8 or 16.
        head: ``"v2"`` or ``"aspp"``.
        multi_level: auxiliary head on the previous level.
        bn_mode: ``"train"``, ``"moving"`` or ``"frozen"``.
        normalization: input normalization (default ``"imagenet"``).
        dilations: classifier dilations.
        out_indices: timm feature indices.
        backbone_kwargs: extra ``timm.create_model`` arguments.
        activation_checkpointing: recompute the backbone's stages in the backward pass (less memory, same
            gradients; see `TimmDeepLab`).

    Returns:
        A [`TimmDeepLab`][uda.models.timm_models.TimmDeepLab].
    """
    model = TimmDeepLab(
        num_classes,
        backbone=backbone,
        output_stride=output_stride,
        head=head,
        multi_level=multi_level,
        bn_mode=bn_mode,
        normalization=normalization or "imagenet",
        dilations=dilations,
        out_indices=out_indices,
        backbone_kwargs=backbone_kwargs,
        activation_checkpointing=activation_checkpointing,
    )
    return _load(model, pretrained, normalization is not None)


@register("model", "timm_tiny")
def timm_tiny(
    num_classes: int = 19,
    *,
    pretrained: str | None = None,
    backbone: str = "resnet10t",
    multi_level: bool = True,
    bn_mode: BNMode = "train",
    dilations: Sequence[int] = (1, 2, 3, 4),
    activation_checkpointing: bool = False,
) -> TimmDeepLab:
    """Tiny timm model (``resnet10t``, output stride 8, DeepLab-v2 head with small dilations) for tests/CPU demos.

    Args:
        num_classes: output classes.
        pretrained: a local weights file, or ``None``.
        backbone: timm model name.
        multi_level: auxiliary head.
        bn_mode: ``"train"`` (random init needs trainable BN).
        dilations: classifier dilations.
        activation_checkpointing: recompute the backbone's stages in the backward pass.

    Returns:
        A [`TimmDeepLab`][uda.models.timm_models.TimmDeepLab].
    """
    model = TimmDeepLab(
        num_classes, backbone=backbone, output_stride=8, multi_level=multi_level, bn_mode=bn_mode, dilations=dilations,
        activation_checkpointing=activation_checkpointing,
    )
    return _load(model, pretrained, False)
