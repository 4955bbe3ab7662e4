"""segmentation-models-pytorch architectures (DeepLabV3+ of Chen et al. 2018, U-Net, FPN, SegFormer's MLP decoder,
…) behind [`SegOutput`][uda.types.SegOutput], with the encoder's levels exposed as features.

``encoder_weights`` is always ``None`` (smp would download them): weights come from a local file through
``pretrained=PATH`` (a ``uda`` checkpoint, or an encoder/timm state dict matched under ``net.encoder.``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .._errors import ConfigError, UdaError
from .._registry import register
from ..types import SegOutput
from ._common import BNMode, UdaSegmentationModel, level_info_from, probe_shapes
from .timm_models import set_checkpointing

__all__ = ["SmpModel", "smp_model", "smp_tiny"]


class SmpModel(UdaSegmentationModel):
    """An smp model split into encoder → decoder → segmentation head so that every level is a feature.

    Feature levels: the encoder outputs after the stride-2 ``stem`` are ``layer1``, ``layer2``, … in order (strides
    4, 8, 16, 32 for ResNets; dilated encoders repeat a stride; empty levels such as the MiT stride 2 are left
    out), the decoder output is ``decoder``, and the
    logits are ``logits`` (full resolution: smp heads upsample). ``aux`` is always ``None``.

    Args:
        num_classes: output classes.
        arch: an smp architecture name (``deeplabv3plus``, ``unet``, ``fpn``, ``segformer``, ``upernet``, ...).
        encoder_name: an smp encoder (``resnet50``, ``mit_b0``, ``tu-<timm name>``, ...).
        encoder_depth: encoder stages used.
        bn_mode: ``"train"`` (default, random init), ``"moving"`` or ``"frozen"``.
        normalization: input normalization (``"imagenet"`` for smp/timm encoder weights).
        activation_checkpointing: recompute the encoder's stages in the backward pass instead of storing their
            activations: less memory, about one more encoder forward per step, the same gradients. Supported for
            the timm encoders (``tu-<timm name>``, through timm's ``set_grad_checkpointing``); smp's own encoders
            (``resnet50``, ``mit_b0``, ...) have no such switch and raise a ``ConfigError`` naming the
            ``tu-`` equivalent.
        **arch_kwargs: forwarded to ``smp.create_model`` (e.g. ``decoder_channels``).

    Example:
        >>> import torch, uda
        >>> m = uda.create("model", "smp_tiny", num_classes=4)
        >>> out = m(torch.rand(1, 3, 64, 64))
        >>> out.logits.shape, sorted(out.features)[:2]
        (torch.Size([1, 4, 64, 64]), ['decoder', 'layer1'])
    """

    backbone_prefixes = ("net.encoder.", "net.encoder.model.")
    head_prefixes = ("net.segmentation_head.",)

    def __init__(
        self,
        num_classes: int = 19,
        *,
        arch: str = "deeplabv3plus",
        encoder_name: str = "resnet50",
        encoder_depth: int = 5,
        bn_mode: BNMode = "train",
        normalization: str = "imagenet",
        activation_checkpointing: bool = False,
        **arch_kwargs: Any,
    ) -> None:
        import segmentation_models_pytorch as smp

        super().__init__(num_classes, normalization, bn_mode)
        archs = {k.lower(): k for k in smp.MODEL_ARCHITECTURES_MAPPING}
        if arch.lower() not in archs:
            raise UdaError(f"unknown smp arch '{arch}'; available: {', '.join(sorted(archs))}")
        try:
            self.net = smp.create_model(
                archs[arch.lower()],
                encoder_name=encoder_name,
                encoder_weights=None,
                classes=num_classes,
                encoder_depth=encoder_depth,
                **arch_kwargs,
            )
        except KeyError as e:
            raise UdaError(
                f"smp cannot build {arch} with encoder '{encoder_name}' ({e}); see smp's encoder list"
            ) from None
        self.arch = arch.lower()
        self.activation_checkpointing = bool(activation_checkpointing)
        if self.activation_checkpointing:
            inner = getattr(self.net.encoder, "model", None)  # smp's TimmUniversalEncoder wraps a timm model
            if not encoder_name.startswith("tu-") or inner is None:
                raise ConfigError(
                    f"smp encoder '{encoder_name}' does not support activation_checkpointing; use the timm "
                    f"encoder 'tu-{encoder_name}' (if timm has it) or set activation_checkpointing=false"
                )
            set_checkpointing(inner, f"smp encoder '{encoder_name}'")
        self.apply_bn_mode()
        self.train()
        self.input_divisor = int(getattr(self.net.encoder, "output_stride", 32))
        probe = max(64, 2 * self.input_divisor)
        enc_shapes = probe_shapes(self.net.encoder, probe, lambda m, x: [f.shape for f in m(x)])
        # Encoder outputs after the input itself: stride 2 is "stem", the following ones layer1, layer2, ...
        self.level_names: list[str | None] = [None]
        n = 0
        for s in enc_shapes[1:]:
            if s[1] == 0 or (n == 0 and probe // s[-2] <= 2):
                self.level_names.append("stem" if s[1] else None)
            else:
                n += 1
                self.level_names.append(f"layer{n}")
        shapes = probe_shapes(
            self, probe, lambda m, x: {k: v.shape for k, v in m.forward_normalized(x).features.items()}
        )
        self.feature_info = level_info_from(shapes, probe)
        self.min_input_size = self.input_divisor

    def forward_normalized(self, x: torch.Tensor) -> SegOutput:
        self.check_input_size(x)
        enc = self.net.encoder(x)
        dec = self.net.decoder(enc)
        logits = self.net.segmentation_head(dec)
        feats = {name: f for name, f in zip(self.level_names, enc) if name is not None}
        feats["decoder"] = dec
        feats["logits"] = logits
        return SegOutput(logits=logits, aux=None, features=feats)

    def head_parameters(self) -> list[nn.Parameter]:
        """Decoder and segmentation head (10× lr, like the DeepLab heads)."""
        return list(self.net.decoder.parameters()) + list(self.net.segmentation_head.parameters())


@register("model", "smp")
def smp_model(
    num_classes: int = 19,
    *,
    arch: str = "deeplabv3plus",
    encoder_name: str = "resnet101",
    pretrained: str | None = None,
    encoder_depth: int = 5,
    bn_mode: BNMode = "train",
    normalization: str | None = None,
    arch_kwargs: dict | None = None,
    activation_checkpointing: bool = False,
) -> SmpModel:
    """An smp architecture (default DeepLabV3+ on ResNet-101), random init or local weights.

    Args:
        num_classes: output classes.
        arch: smp architecture (``deeplabv3plus``, ``unet``, ``fpn``, ``segformer``, ...).
        encoder_name: smp encoder name.
        pretrained: a local weights file (``uda`` checkpoint or encoder state dict), or ``None``.
        encoder_depth: encoder stages.
        bn_mode: ``"train"``, ``"moving"`` or ``"frozen"``.
        normalization: input normalization (default ``"imagenet"``).
        arch_kwargs: extra ``smp.create_model`` arguments.
        activation_checkpointing: recompute the encoder's stages in the backward pass (``tu-`` encoders only;
            see `SmpModel`).

    Returns:
        An [`SmpModel`][uda.models.smp_models.SmpModel].
    """
    model = SmpModel(
        num_classes,
        arch=arch,
        encoder_name=encoder_name,
        encoder_depth=encoder_depth,
        bn_mode=bn_mode,
        normalization=normalization or "imagenet",
        activation_checkpointing=activation_checkpointing,
        **(arch_kwargs or {}),
    )
    if pretrained:
        from ._weights import load_weights

        load_weights(model, pretrained, keep_normalization=normalization is not None)
    return model


@register("model", "smp_tiny")
def smp_tiny(
    num_classes: int = 19,
    *,
    pretrained: str | None = None,
    arch: str = "unet",
    encoder_name: str = "tu-resnet10t",
    bn_mode: BNMode = "train",
    activation_checkpointing: bool = False,
) -> SmpModel:
    """Tiny smp model (U-Net on timm ``resnet10t``, narrow decoder) for tests and CPU demos; inputs multiple of 32.

    Args:
        num_classes: output classes.
        pretrained: a local weights file, or ``None``.
        arch: smp architecture.
        encoder_name: smp encoder.
        bn_mode: ``"train"`` (random init needs trainable BN).
        activation_checkpointing: recompute the encoder's stages in the backward pass.

    Returns:
        An [`SmpModel`][uda.models.smp_models.SmpModel].
    """
    kw = {"decoder_channels": (64, 32, 16, 16, 16)} if arch == "unet" else {}
    return smp_model(
        num_classes, arch=arch, encoder_name=encoder_name, pretrained=pretrained, bn_mode=bn_mode, arch_kwargs=kw,
        activation_checkpointing=activation_checkpointing,
    )
