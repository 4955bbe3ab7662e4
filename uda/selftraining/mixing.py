"""ClassMix: paste the pixels of half of the classes of a source label onto a target image.

Papers: Olsson et al., "ClassMix: Segmentation-Based Data Augmentation for Semi-Supervised Learning", WACV 2021;
Tranheden et al., "DACS: Domain Adaptation via Cross-domain Mixed Sampling", WACV 2021 (classes chosen per
image); Hoyer et al., "DAFormer", CVPR 2022 (its code chooses among the classes of the whole source batch).
"""

from __future__ import annotations

import torch
from torch import nn

from .._errors import ConfigError
from .._registry import register
from ..labels import IGNORE_INDEX

CHOICES = ("batch", "image")


def class_masks(labels: torch.Tensor, *, choice: str = "batch", ignore_as_class: bool = True) -> torch.Tensor:
    """ClassMix masks: 1 where the source pixel's class is one of those chosen for that image.

    For each image, ``ceil(n / 2)`` of ``n`` candidate classes are drawn without replacement from torch's global
    RNG; the candidates are the classes present in the whole batch (``choice="batch"``, DAFormer's code) or in
    that image's label (``choice="image"``, the DACS paper). ``ignore_as_class`` counts the ignore value 255 as a
    class, as both original codes do (pasted ignore pixels stay ignored in the mixed label).

    Args:
        labels: (B, H, W) int64 source labels.
        choice: ``"batch"`` or ``"image"``.
        ignore_as_class: whether 255 is a candidate.

    Returns:
        (B, H, W) float masks (1 = source pixel).

    Example:
        >>> import torch
        >>> m = class_masks(torch.tensor([[[0, 1], [2, 3]]]), choice="image")
        >>> int(m.sum())
        2
    """
    if choice not in CHOICES:
        raise ConfigError(f"ClassMix: choice must be one of {', '.join(CHOICES)}, got {choice!r}")
    masks = []
    batch_classes = torch.unique(labels)
    for lab in labels:
        cls = batch_classes if choice == "batch" else torch.unique(lab)
        if not ignore_as_class:
            cls = cls[cls != IGNORE_INDEX]
        n = int(cls.numel())
        k = (n + n % 2) // 2
        chosen = cls[torch.randperm(n)[:k].to(cls.device)]
        masks.append(torch.isin(lab, chosen))
    return torch.stack(masks).float()


def mix(mask: torch.Tensor, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``mask·source + (1 − mask)·target``, with ``mask`` (B, H, W) broadcast over channels of (B, C, H, W).

    Integer inputs (labels) are mixed by selection and keep their dtype.
    """
    m = mask.bool()
    if source.dim() == 4:
        m = m[:, None]
    return torch.where(m, source, target)


@register("mixing", "classmix")
class ClassMix(nn.Module):
    """Mix a source and a target batch: image, label (source label / pseudo-label) and pixel weights.

    Source pixels get weight 1, target pixels keep their pseudo-label weight.

    Args:
        choice: ``"batch"`` (default, DAFormer's code) or ``"image"`` (DACS paper); see `class_masks`.
        ignore_as_class: count 255 as a candidate class (the originals do).

    Calling it returns:
        The tuple ``(image, label, weight, mask)`` of shapes (B, 3, H, W), (B, H, W) int64, (B, H, W) float and
        (B, H, W) float.

    Shape:
        src_image, tgt_image (B, 3, H, W); src_label, tgt_label (B, H, W); tgt_weight (B, H, W) or ``None``.

    Example:
        >>> import torch, uda
        >>> cm = uda.create("mixing", "classmix")
        >>> img, lab, w, m = cm(torch.rand(2, 3, 8, 8), torch.randint(0, 4, (2, 8, 8)),
        ...                     torch.rand(2, 3, 8, 8), torch.randint(0, 4, (2, 8, 8)), torch.full((2, 8, 8), 0.5))
        >>> bool(((w == 1) == (m == 1)).all())
        True
    """

    def __init__(self, *, choice: str = "batch", ignore_as_class: bool = True) -> None:
        super().__init__()
        if choice not in CHOICES:
            raise ConfigError(f"ClassMix: choice must be one of {', '.join(CHOICES)}, got {choice!r}")
        self.choice, self.ignore_as_class = choice, ignore_as_class

    def forward(
        self,
        src_image: torch.Tensor,
        src_label: torch.Tensor,
        tgt_image: torch.Tensor,
        tgt_label: torch.Tensor,
        tgt_weight: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        mask = class_masks(src_label, choice=self.choice, ignore_as_class=self.ignore_as_class)
        if tgt_weight is None:
            tgt_weight = torch.ones_like(mask)
        image = mix(mask, src_image, tgt_image)
        label = mix(mask, src_label, tgt_label)
        weight = mix(mask, torch.ones_like(tgt_weight), tgt_weight)
        return image, label, weight, mask


__all__ = ["ClassMix", "class_masks", "mix"]
