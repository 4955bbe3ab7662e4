"""ImageNet feature distance: keep the student's last-stage features of thing classes near a frozen ImageNet copy.

Paper: Hoyer et al., "DAFormer: Improving Network Architectures and Training Strategies for Domain-Adaptive
Semantic Segmentation", CVPR 2022 (λ = 0.005, thing classes 6, 7, 11–18, label downscale ratio 0.75).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .._errors import ConfigError
from .._registry import register
from ..labels import IGNORE_INDEX

THING_CLASSES = (6, 7, 11, 12, 13, 14, 15, 16, 17, 18)


def downscale_label_ratio(
    label: torch.Tensor, scale: int, min_ratio: float = 0.75, num_classes: int = 19, ignore_index: int = IGNORE_INDEX
) -> torch.Tensor:
    """Downscale labels by ``scale``: each output pixel takes the majority class of its ``scale×scale`` block if
    that class covers at least ``min_ratio`` of the block, else ``ignore_index`` (ignored pixels count as a class).

    Args:
        label: (B, H, W) int64.
        scale: integer block size.
        min_ratio: the majority's minimum share, 0.75.
        num_classes: number of classes.
        ignore_index: the ignore label.

    Returns:
        (B, H // scale, W // scale) int64.

    Example:
        >>> import torch
        >>> lab = torch.tensor([[[1, 1, 2, 3], [1, 0, 2, 3]]])
        >>> downscale_label_ratio(lab, 2).tolist()
        [[[1, 255]]]
    """
    if scale < 1:
        raise ConfigError(f"feature distance: label scale must be >= 1, got {scale}")
    lab = label.clone()
    lab[(lab == ignore_index) | (lab < 0) | (lab >= num_classes)] = num_classes
    onehot = F.one_hot(lab, num_classes + 1).permute(0, 3, 1, 2).float()
    share, cls = F.avg_pool2d(onehot, kernel_size=scale).max(dim=1)
    cls[cls == num_classes] = ignore_index
    cls[share < min_ratio] = ignore_index
    return cls


def masked_feature_distance(f1: torch.Tensor, f2: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over the (masked) pixels of the per-pixel L2 norm of ``f1 − f2``; 0 (with gradient) for an empty mask.

    Shape:
        f1, f2 (B, C, h, w); mask (B, h, w) bool or ``None``.
    """
    dist = torch.linalg.vector_norm(f1 - f2, ord=2, dim=1)
    if mask is None:
        return dist.mean()
    sel = dist[mask]
    return sel.mean() if sel.numel() else dist.sum() * 0.0


def _features(out: Any, level: str | int | None) -> torch.Tensor:
    feats = getattr(out, "features", out)
    if isinstance(feats, torch.Tensor):
        return feats
    if isinstance(feats, dict):
        if not feats:
            raise ConfigError("feature distance: the frozen network returned no features")
        return feats[level] if isinstance(level, str) else list(feats.values())[-1 if level is None else level]
    if isinstance(feats, (list, tuple)):
        return feats[-1 if level is None else int(level)]
    raise ConfigError(f"feature distance: cannot read features from a {type(out).__name__}")


@register("loss", "imnet_feature_distance")
class ImageNetFeatureDistance(nn.Module):
    """λ · mean over thing-class feature pixels of ‖f_student − f_ImageNet‖₂ on the last encoder stage.

    At construction a frozen deep copy of ``encoder`` (the ImageNet-initialised network, before any training) is
    kept: parameters with ``requires_grad=False``, always in eval mode, run under ``no_grad`` — a carried module
    of the recipe. ``forward(student_features, image, label)`` runs it on ``image``, reads its feature level
    ``level`` (a ``SegOutput``'s or dict's key, a list index, or the last one when ``None``), downscales ``label``
    to the feature size (`downscale_label_ratio`, scale = label width // feature width) and averages the
    per-pixel L2 distance over pixels of ``classes``.

    Args:
        encoder: the ImageNet-initialised network (not modified); it returns a ``SegOutput``, a dict/list of
            feature maps or one tensor.
        weight: λ, 0.005.
        classes: the class ids to keep (the thing classes 6, 7, 11–18), or ``None`` for every pixel.
        ratio: the label-downscale ratio, 0.75.
        level: which feature map of the frozen network to compare (``None``: the last).
        num_classes: number of classes.

    Shape:
        student_features (B, C, h, w); image (B, 3, H, W); label (B, H, W) → scalar.

    Example:
        >>> import torch, uda
        >>> enc = torch.nn.Conv2d(3, 4, 4, stride=4)
        >>> fd = uda.create("loss", "imnet_feature_distance", encoder=enc)
        >>> image, label = torch.rand(1, 3, 16, 16), torch.full((1, 16, 16), 13)
        >>> fd(enc(image), image, label).item()  # the student is still the ImageNet network
        0.0
    """

    def __init__(
        self,
        encoder: nn.Module,
        *,
        weight: float = 0.005,
        classes: Sequence[int] | None = THING_CLASSES,
        ratio: float = 0.75,
        level: str | int | None = None,
        num_classes: int = 19,
    ) -> None:
        super().__init__()
        self.frozen = copy.deepcopy(encoder)
        for p in self.frozen.parameters():
            p.requires_grad_(False)
        self.weight, self.ratio, self.level, self.num_classes = float(weight), float(ratio), level, int(num_classes)
        self.classes = tuple(int(c) for c in classes) if classes is not None else None
        self.train(False)

    def train(self, mode: bool = True) -> ImageNetFeatureDistance:
        """Keep the frozen network in eval mode whatever ``mode`` says."""
        return super().train(False)

    def mask(self, label: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """The (B, h, w) bool mask of thing-class feature pixels for a (B, H, W) label."""
        scale = label.shape[-1] // size[1]
        small = downscale_label_ratio(label, scale, self.ratio, self.num_classes) if scale > 1 else label
        if tuple(small.shape[-2:]) != tuple(size):
            raise ConfigError(
                f"feature distance: a {tuple(label.shape[-2:])} label does not downscale to the {tuple(size)} "
                "features by an integer factor; use crops divisible by the encoder's stride"
            )
        return torch.isin(small, torch.tensor(self.classes, device=label.device))

    def forward(
        self, student_features: torch.Tensor, image: torch.Tensor, label: torch.Tensor | None = None
    ) -> torch.Tensor:
        with torch.no_grad():  # a segmentation model's features only: its heads are not run
            net = self.frozen
            out = net.forward_features(image) if hasattr(net, "forward_features") else net(image)
            ref = _features(out, self.level).detach()
        if ref.shape != student_features.shape:
            raise ConfigError(
                f"feature distance: student features {tuple(student_features.shape)} and frozen features "
                f"{tuple(ref.shape)} differ; compare the same level of the same architecture"
            )
        mask = None
        if self.classes is not None and label is not None:
            mask = self.mask(label, tuple(ref.shape[-2:]))
        return self.weight * masked_feature_distance(student_features.float(), ref.float(), mask)


__all__ = ["THING_CLASSES", "ImageNetFeatureDistance", "downscale_label_ratio", "masked_feature_distance"]
