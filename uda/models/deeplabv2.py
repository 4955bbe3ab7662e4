"""DeepLab-v2 with a Caffe-style ResNet-101, as used by AdaptSegNet (Tsai et al., CVPR 2018) and ADVENT
(Vu et al., CVPR 2019), and by MLFA on top of them.

The network: Caffe-style bottlenecks (the stride sits on the first 1×1 conv), a 7×7/2 stem
with a ``ceil_mode`` 3×3/2 max-pool, layers [3, 4, 23, 3] with layer3 at stride 1 / dilation 2 and layer4 at
stride 1 / dilation 4 in *every* block, output stride 8, and the DeepLab-v2 classifier: four 3×3 convolutions
with dilation = padding 6/12/18/24 whose outputs are summed. The main head reads layer4; the auxiliary head
(``multi_level=True``) reads layer3. 44,601,560 parameters with both heads for 19 classes.

Key layout (so that the original checkpoints map onto ours with one rule, see `uda.models._weights`):
the backbone lives under ``backbone.`` with the original torchvision-like names (``conv1``, ``bn1``,
``layer3.7.conv2``, ``layer1.0.downsample.0`` …); the original ``layer6.conv2d_list.i`` (main head) is our
``head.branches.i`` and ``layer5.conv2d_list.i`` (auxiliary head) is our ``aux_head.branches.i``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.utils.checkpoint
from torch import nn

from .._errors import UdaError
from .._registry import register
from ..types import LevelInfo, SegOutput
from ._base import Normalization
from ._common import BNMode, UdaSegmentationModel
from ._resnet_caffe import CaffeBottleneck, CaffeResNet

__all__ = ["CaffeBottleneck", "CaffeResNet", "ClassifierV2", "DeepLabV2", "deeplabv2", "deeplabv2_tiny"]


class ClassifierV2(nn.Module):
    """The DeepLab-v2 classifier ("ASPP" of v2): parallel 3×3 atrous convs whose outputs are **summed**.

    Args:
        in_channels: input channels.
        num_classes: output channels.
        dilations: dilation (= padding) of each branch; ``(6, 12, 18, 24)`` in the papers.
        branches: how many branches the forward sums, from the first; ``None`` sums all. AdaptSegNet's
            released code returns from inside its summing loop, after the first two branches, so its released
            checkpoints were trained (and are evaluated) with ``branches=2``; every branch keeps its weights so
            the checkpoints load either way.

    Shape:
        - input: (B, in_channels, h, w)
        - output: (B, num_classes, h, w)
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        dilations: Sequence[int] = (6, 12, 18, 24),
        branches: int | None = None,
    ) -> None:
        super().__init__()
        if branches is not None and not 1 <= int(branches) <= len(dilations):
            raise UdaError(f"classifier_branches: {branches} is not between 1 and {len(dilations)} (the number of "
                           "dilations); use 2 for AdaptSegNet's released checkpoints or null for all")
        self.num_summed = len(dilations) if branches is None else int(branches)
        self.branches = nn.ModuleList(
            nn.Conv2d(in_channels, num_classes, 3, padding=d, dilation=d, bias=True) for d in dilations
        )
        for conv in self.branches:
            nn.init.normal_(conv.weight, 0.0, 0.01)
            nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.branches[0](x)
        for branch in self.branches[1 : self.num_summed]:
            out = out + branch(x)
        return out


class DeepLabV2(UdaSegmentationModel):
    """DeepLab-v2 on a Caffe-style dilated ResNet (AdaptSegNet/ADVENT), with multi-level feature taps.

    Args:
        num_classes: output classes (19 for GTA5→Cityscapes, 16 or 13 for SYNTHIA).
        layers: blocks per stage; ``(3, 4, 23, 3)`` is ResNet-101.
        width: stem width (64 for ResNet-101); stage widths scale with it.
        multi_level: add the auxiliary classifier on layer3 (``SegOutput.aux``); ``False`` → ``aux is None``.
        bn_mode: ``"frozen"`` (default: eval-mode BN, affine frozen), ``"moving"`` (the originals: affine
            frozen, running statistics updated in train mode) or ``"train"`` (trainable BN, random init).
        normalization: input normalization of the weights; ``"caffe"`` (BGR, 0–255, mean subtracted) for the
            DeepLab-v2 init file. [`load_weights`][uda.models.load_weights] switches it to what the loaded file needs.
        dilations: dilations of the classifier branches.
        classifier_branches: branches each classifier sums (``None``: all); ``2`` is AdaptSegNet's released
            classifier (see [ClassifierV2][uda.models.deeplabv2.ClassifierV2]).

    Shape:
        - input: (B, 3, H, W) RGB in [0, 1]
        - logits, aux: (B, num_classes, h, w) with h = ⌈H/8⌉-ish (91×161 for a 1280×720 input)

    Example:
        >>> import torch, uda
        >>> m = uda.create("model", "deeplabv2_tiny", num_classes=5)
        >>> out = m(torch.rand(2, 3, 64, 128))
        >>> out.logits.shape, out.aux.shape, out.features["layer1"].shape[1]
        (torch.Size([2, 5, 9, 17]), torch.Size([2, 5, 9, 17]), 64)
    """

    min_input_size = 8
    activation_checkpointing = False  # recompute the four ResNet stages in the backward pass (saves memory)
    backbone_prefixes = ("backbone.",)
    head_prefixes = ("head.", "aux_head.")

    def __init__(
        self,
        num_classes: int = 19,
        *,
        layers: Sequence[int] = (3, 4, 23, 3),
        width: int = 64,
        multi_level: bool = True,
        bn_mode: BNMode = "frozen",
        normalization: Normalization | str = "caffe",
        dilations: Sequence[int] = (6, 12, 18, 24),
        classifier_branches: int | None = None,
    ) -> None:
        super().__init__(num_classes, normalization, bn_mode)
        self.multi_level = multi_level
        self.backbone = CaffeResNet(layers, width)
        c1, c2, c3, c4 = self.backbone.channels
        self.classifier_branches = classifier_branches
        self.aux_head = ClassifierV2(c3, num_classes, dilations, classifier_branches) if multi_level else None
        self.head = ClassifierV2(c4, num_classes, dilations, classifier_branches)
        for m in self.backbone.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        self.feature_info = {
            "layer1": LevelInfo(c1, 4),
            "layer2": LevelInfo(c2, 8),
            "layer3": LevelInfo(c3, 8),
            "layer4": LevelInfo(c4, 8),
            "logits": LevelInfo(num_classes, 8),
        }
        if multi_level:
            self.feature_info["aux"] = LevelInfo(num_classes, 8)
        self.apply_bn_mode()
        self.train()

    def _stages(self, x: torch.Tensor, aux_head: nn.Module | None) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
        self.check_input_size(x)
        b = self.backbone
        x = b.maxpool(b.relu(b.bn1(b.conv1(x))))  # (B, w, H/4, W/4)
        run = _checkpointed if self.activation_checkpointing and torch.is_grad_enabled() else _plain
        f1 = run(b.layer1, x)
        f2 = run(b.layer2, f1)  # (B, 8w, H/8, W/8)
        f3 = run(b.layer3, f2)
        aux = aux_head(f3) if aux_head is not None else None  # before layer4, which may reuse f3's memory
        f4 = run(b.layer4, f3)
        return {"layer1": f1, "layer2": f2, "layer3": f3, "layer4": f4}, aux

    def features_normalized(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The backbone's four stages of a normalized input (no classifier)."""
        return self._stages(x, None)[0]

    def forward_normalized(self, x: torch.Tensor) -> SegOutput:
        feats, aux = self._stages(x, self.aux_head)
        logits = self.head(feats["layer4"])
        feats["logits"] = logits
        if aux is not None:
            feats["aux"] = aux
        return SegOutput(logits=logits, aux=aux, features=feats)

    def head_parameters(self) -> list[nn.Parameter]:
        """The classifier heads (trained at 10× the base learning rate in the papers)."""
        heads = [self.head] + ([self.aux_head] if self.aux_head is not None else [])
        return [p for h in heads for p in h.parameters()]

    def faithful_backbone_parameters(self) -> list[nn.Parameter]:
        """The 1× parameter list exactly as the original AdaptSegNet/ADVENT scripts build it.

        The originals (``get_1x_lr_params_NOscale``) walk ``[conv1, bn1, layer1, …, layer4]``, and for each of
        them every module of ``.modules()`` and that module's ``.parameters()`` that require grad. A tensor
        therefore appears once per enclosing module: a block's conv three times (stage, block, conv), a
        downsample conv four times, the stem conv once; BN affine is frozen. For ResNet-101 that is 314
        entries for 104 unique tensors. SGD then applies momentum and weight decay once per entry, which is
        the behaviour an exact reproduction needs (``optim.generator.faithful_duplicate_params``).

        Returns:
            The list, with repeats, in the originals' order.

        Example:
            >>> m = DeepLabV2(3, layers=(1, 1, 1, 1), width=8)
            >>> ps = m.faithful_backbone_parameters()
            >>> len(ps), len({id(p) for p in ps})
            (53, 17)
        """
        b = self.backbone
        return [
            p
            for part in (b.conv1, b.bn1, b.layer1, b.layer2, b.layer3, b.layer4)
            for mod in part.modules()
            for p in mod.parameters()
            if p.requires_grad
        ]

    def translate_foreign_state_dict(self, sd: dict[str, torch.Tensor]) -> tuple[dict, str, str | None] | None:
        """Map the original AdaptSegNet/ADVENT layouts onto ours (used by [`load_weights`][uda.models.load_weights]).

        Returns ``(state_dict, layout, normalization)`` or ``None`` when ``sd`` is in none of them.
        """
        keys = list(sd)
        if keys and all(k.startswith("Scale.") for k in keys):
            # DeepLab-v2 init file: strip the leading prefix, skip its own (other-dataset) classifier.
            out = {}
            for k, v in sd.items():
                k = ".".join(k.split(".")[1:])
                if not k.startswith("layer5."):
                    out["backbone." + k] = v
            return out, "deeplab_init", "caffe"
        if not any(k.startswith(("conv1.", "layer1.")) for k in keys):
            return None
        if any(k.startswith(("layer5.", "layer6.")) for k in keys):
            out = {}
            for k, v in sd.items():
                if k.startswith("layer6.conv2d_list."):
                    out["head.branches." + k[len("layer6.conv2d_list.") :]] = v
                elif k.startswith("layer5.conv2d_list."):
                    out["aux_head.branches." + k[len("layer5.conv2d_list.") :]] = v
                else:
                    out["backbone." + k] = v
            return out, "advent", "caffe"
        if "fc.weight" in sd:
            # timm/torchvision ResNet: same names and shapes, but those weights were trained with the stride on
            # the 3×3 conv and first-block dilation 1: loaded here they compute a different network.
            return {"backbone." + k: v for k, v in sd.items() if not k.startswith("fc.")}, "torchvision", "imagenet"
        return {"backbone." + k: v for k, v in sd.items()}, "deeplab_backbone", "caffe"


def _plain(stage: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return stage(x)


def _checkpointed(stage: nn.Module, x: torch.Tensor) -> torch.Tensor:
    # Activation checkpointing (Chen et al., "Training Deep Nets with Sublinear Memory Cost", 2016): the stage's
    # activations are recomputed in the backward pass instead of being stored.
    return torch.utils.checkpoint.checkpoint(stage, x, use_reentrant=False)


def _build(pretrained: str | None, normalization: str | None, default_norm: str, *,
           activation_checkpointing: bool = False, **kw) -> DeepLabV2:
    model = DeepLabV2(normalization=normalization or default_norm, **kw)
    model.activation_checkpointing = activation_checkpointing
    if pretrained:
        from ._weights import load_weights

        load_weights(model, pretrained, keep_normalization=normalization is not None)
    return model


@register("model", "deeplabv2")
def deeplabv2(
    num_classes: int = 19,
    *,
    pretrained: str | None = None,
    multi_level: bool = True,
    bn_mode: BNMode | None = None,
    freeze_bn: bool | None = None,
    normalization: str | None = None,
    layers: Sequence[int] = (3, 4, 23, 3),
    dilations: Sequence[int] = (6, 12, 18, 24),
    classifier_branches: int | None = None,
    activation_checkpointing: bool = False,
) -> DeepLabV2:
    """DeepLab-v2 ResNet-101 of AdaptSegNet/ADVENT (Caffe-style, multi-level), random init or local weights.

    Args:
        num_classes: output classes.
        pretrained: a local weights file in any layout [`load_weights`][uda.models.load_weights] reads, or ``None``.
        multi_level: auxiliary head on layer3.
        bn_mode: ``"frozen"`` (default), ``"moving"`` (the originals) or ``"train"``.
        freeze_bn: shorthand: ``True`` → ``bn_mode="frozen"``, ``False`` → ``"moving"`` (ignored if ``bn_mode``).
        normalization: input normalization; default ``"caffe"``, or what the loaded weights need.
        layers: blocks per stage.
        dilations: classifier branch dilations.
        classifier_branches: branches each classifier sums; ``None`` (default) sums all four, ``2`` reproduces
            AdaptSegNet's released classifier: set it when loading AdaptSegNet's released checkpoints (the
            ``adaptsegnet_*_faithful`` presets do).
        activation_checkpointing: recompute the activations of the four ResNet stages in the backward pass
            (``torch.utils.checkpoint``): less memory, about one more encoder forward per step. With
            ``bn_mode="moving"``/``"train"`` the recomputation updates the BatchNorm statistics a second time.

    Returns:
        A [`DeepLabV2`][uda.models.deeplabv2.DeepLabV2].
    """
    if bn_mode is None:
        bn_mode = "moving" if freeze_bn is False else "frozen"
    return _build(
        pretrained,
        normalization,
        "caffe",
        num_classes=num_classes,
        multi_level=multi_level,
        bn_mode=bn_mode,
        layers=tuple(layers),
        dilations=tuple(dilations),
        classifier_branches=classifier_branches,
        activation_checkpointing=activation_checkpointing,
    )


@register("model", "deeplabv2_tiny")
def deeplabv2_tiny(
    num_classes: int = 19,
    *,
    pretrained: str | None = None,
    multi_level: bool = True,
    bn_mode: BNMode = "train",
    width: int = 16,
    layers: Sequence[int] = (1, 1, 1, 1),
    dilations: Sequence[int] = (1, 2, 3, 4),
    normalization: str | None = None,
    classifier_branches: int | None = None,
    activation_checkpointing: bool = False,
) -> DeepLabV2:
    """Tiny DeepLab-v2 (same code as ``deeplabv2``; one block per stage, width 16) for tests and CPU demos.

    Random-init defaults: trainable BatchNorm (``bn_mode="train"``: frozen statistics of a random network
    are meaningless), small classifier dilations (1/2/3/4) that fit 8×16 feature maps of 128×64 inputs, and
    ImageNet normalization.

    Args:
        num_classes: output classes.
        pretrained: a local weights file, or ``None``.
        multi_level: auxiliary head on layer3.
        bn_mode: ``"train"`` (default), ``"moving"`` or ``"frozen"``.
        width: stem width (stage outputs 4w, 8w, 16w, 32w channels).
        layers: blocks per stage.
        dilations: classifier branch dilations.
        normalization: input normalization (default ``"imagenet"``).
        classifier_branches: branches each classifier sums (``None``: all; ``2``: AdaptSegNet's released one).
        activation_checkpointing: recompute the stages' activations in the backward pass (see ``deeplabv2``).

    Returns:
        A [`DeepLabV2`][uda.models.deeplabv2.DeepLabV2].
    """
    return _build(
        pretrained,
        normalization,
        "imagenet",
        num_classes=num_classes,
        multi_level=multi_level,
        bn_mode=bn_mode,
        width=width,
        layers=tuple(layers),
        dilations=tuple(dilations),
        classifier_branches=classifier_branches,
        activation_checkpointing=activation_checkpointing,
    )
