"""The base class of every segmentation model: input normalization owned by the model, declared
feature levels, parameter groups with a learning-rate multiplier for the heads.

Design choice (documented in docs/concepts.md): images travel through ``uda`` as RGB float tensors in
[0, 1]. Each model normalizes its own input with the statistics its weights were trained with, so the
normalization *travels with the weights* (Caffe BGR mean for the DeepLab-v2 init file, ImageNet mean/std
for timm/torchvision weights) and translators, augmentations and FDA all work on plain [0, 1] images.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from .._errors import UdaError
from ..types import LevelInfo, SegOutput


@dataclass(frozen=True)
class Normalization:
    """How a model's weights expect their input, applied to RGB images in [0, 1].

    ``x' = (flip_to_bgr(x) * scale - mean) / std`` with ``mean``/``std`` in the channel order after the flip.
    """

    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    scale: float = 1.0
    bgr: bool = False

    @classmethod
    def named(cls, name: str) -> Normalization:
        """``"imagenet"`` (RGB, /255, ImageNet mean/std), ``"caffe"`` (BGR, 0–255, mean subtracted, no std),
        ``"half"`` ([-1, 1]) or ``"none"``."""
        table = {
            "imagenet": cls(),
            "caffe": cls(mean=(104.00698793, 116.66876762, 122.67891434), std=(1.0, 1.0, 1.0), scale=255.0, bgr=True),
            "half": cls(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
            "none": cls(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0)),
        }
        if name not in table:
            raise UdaError(f"unknown normalization '{name}'; use one of {', '.join(table)}")
        return table[name]


class InputNormalizer(nn.Module):
    """Applies a `Normalization` to (B, 3, H, W) RGB images in [0, 1]; buffers follow the device."""

    def __init__(self, norm: Normalization) -> None:
        super().__init__()
        self.norm = norm
        self.register_buffer("mean", torch.tensor(norm.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(norm.std).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.norm.bgr:
            x = x.flip(1)
        if self.norm.scale != 1.0:
            x = x * self.norm.scale
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)


class SegmentationModel(nn.Module):
    """Base class: subclasses implement `forward_normalized` and fill `feature_info`.

    Attributes:
        num_classes: number of output classes.
        feature_info: level name → [`LevelInfo`][uda.types.LevelInfo] (channels, stride), declared at
            construction so aligners size their discriminators without running the model.
        normalizer: the input normalization that belongs to the weights.
    """

    num_classes: int
    feature_info: dict[str, LevelInfo]

    def __init__(self, num_classes: int, normalization: Normalization | str = "imagenet") -> None:
        super().__init__()
        self.num_classes = num_classes
        if isinstance(normalization, str):
            normalization = Normalization.named(normalization)
        self.normalizer = InputNormalizer(normalization)
        self.feature_info = {}

    @property
    def output_stride(self) -> int:
        """Stride of `SegOutput.logits` ([`SegOutput`][uda.types.SegOutput]) relative to the input."""
        return max((i.stride for i in self.feature_info.values()), default=1)

    def forward(self, x: torch.Tensor) -> SegOutput:
        """Segment RGB images in [0, 1].

        Shape:
            - x: (B, 3, H, W), RGB in [0, 1]
            - logits: (B, num_classes, h, w) at `output_stride`
        """
        if x.dim() != 4 or x.shape[1] != 3:
            raise UdaError(f"expected images of shape (B, 3, H, W), got {tuple(x.shape)}")
        return self.forward_normalized(self.normalizer(x))

    def forward_normalized(self, x: torch.Tensor) -> SegOutput:  # pragma: no cover - abstract
        raise NotImplementedError

    def check_levels(self, levels: Iterable[str]) -> None:
        """Raise a clear error for level names this model does not have."""
        unknown = [lv for lv in levels if lv not in self.feature_info]
        if unknown:
            raise UdaError(
                f"{type(self).__name__} has no feature level(s) {', '.join(unknown)}; "
                f"available: {', '.join(self.feature_info)}"
            )

    def forward_features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The feature levels of images ``x`` in [0, 1] without running the heads (what a frozen reference network
        of the feature distance needs); the same tensors as ``forward(x).features`` minus ``logits``/``aux``."""
        return self.features_normalized(self.normalizer(x))

    def features_normalized(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """`forward_features` of a normalized input; models with heads override it to skip them."""
        return {k: v for k, v in self.forward_normalized(x).features.items() if k not in ("logits", "aux")}

    def feature_network(self) -> nn.Module:
        """The network whose features a feature-distance term compares with a frozen copy of it (the model
        itself; HRDA: its context view)."""
        return self

    def head_parameters(self) -> list[nn.Parameter]:
        """Parameters trained at ``head_lr_mult`` × the base learning rate (the classifier heads)."""
        return []

    def param_groups(self, lr: float, head_lr_mult: float = 10.0) -> list[dict]:
        """Optimizer parameter groups: backbone at ``lr``, heads at ``lr * head_lr_mult``.

        Frozen parameters (``requires_grad=False``) are left out.
        """
        head_ids = {id(p) for p in self.head_parameters()}
        backbone = [p for p in self.parameters() if p.requires_grad and id(p) not in head_ids]
        heads = [p for p in self.head_parameters() if p.requires_grad]
        groups = [{"params": backbone, "lr": lr, "lr_mult": 1.0, "name": "backbone"}]
        if heads:
            groups.append({"params": heads, "lr": lr * head_lr_mult, "lr_mult": head_lr_mult, "name": "heads"})
        return groups
