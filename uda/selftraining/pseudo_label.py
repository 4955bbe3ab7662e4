"""Confidence-weighted pseudo-labels from a teacher's logits, and the pixel-weighted cross-entropy they train.

Papers: Tranheden et al., "DACS: Domain Adaptation via Cross-domain Mixed Sampling", WACV 2021 (one confidence
weight per batch, threshold 0.968); Hoyer et al., "DAFormer", CVPR 2022 (ignore the top 15 and bottom 120 rows);
Hoyer et al., "HRDA: Context-Aware High-Resolution Domain-Adaptive Semantic Segmentation", ECCV 2022 (margins
top 30, bottom 240, left 30, right 30).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .._errors import ConfigError
from .._registry import register
from ..labels import IGNORE_INDEX


def _margins(m: int | Sequence[int] | None) -> tuple[int, int, int, int]:
    if m is None:
        return (0, 0, 0, 0)
    if isinstance(m, int):
        return (m, m, m, m)
    m = tuple(int(v) for v in m)
    if len(m) == 2:  # (top, bottom)
        m = (m[0], m[1], 0, 0)
    if len(m) != 4 or min(m) < 0:
        raise ConfigError(f"pseudo-labels: margins must be (top, bottom) or (top, bottom, left, right) >= 0, got {m}")
    return m  # type: ignore[return-value]


@register("pseudo_label", "confidence")
class PseudoLabeler(nn.Module):
    """Teacher logits → argmax pseudo-labels and pixel weights (one confidence scalar per batch).

    The weight of every pixel is the fraction of the batch's pixels whose maximum softmax probability is
    ``>= threshold`` (kept as a 0-d tensor on the device: no host synchronisation). Pixels inside the ignore
    margins get weight 0 (the fraction itself is computed over all pixels, margins included, as in DAFormer).

    Args:
        threshold: confidence threshold, 0.968 in DACS and DAFormer.
        margins: rows/columns whose weight is 0: ``(top, bottom)`` or ``(top, bottom, left, right)``;
            DAFormer ``(15, 120)``, HRDA ``(30, 240, 30, 30)``; ``None`` for none.
        size: ``(H, W)`` to resize the logits to first (bilinear), or ``None`` to keep them (the originals
            compute pseudo-labels at the input image's size).
        align_corners: of that resize: ``False`` as DAFormer, ``True`` as the original DACS code.

    Calling it returns:
        The pair ``(labels, weights)``, labels (B, H, W) int64 and weights (B, H, W) float.

    Shape:
        logits (B, C, h, w).

    Example:
        >>> import torch, uda
        >>> pl = uda.create("pseudo_label", "confidence", margins=(1, 1))
        >>> labels, weights = pl(torch.randn(2, 19, 8, 8))
        >>> labels.shape, weights[:, 0].abs().sum().item()
        (torch.Size([2, 8, 8]), 0.0)
    """

    def __init__(
        self,
        *,
        threshold: float = 0.968,
        margins: int | Sequence[int] | None = None,
        size: Sequence[int] | None = None,
        align_corners: bool = False,
    ) -> None:
        super().__init__()
        self.threshold, self.align_corners = float(threshold), bool(align_corners)
        self.margins = _margins(margins)
        self.size = tuple(size) if size is not None else None

    @torch.no_grad()
    def forward(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = logits.detach().float()
        if self.size is not None and tuple(logits.shape[-2:]) != self.size:
            logits = F.interpolate(logits, size=self.size, mode="bilinear", align_corners=self.align_corners)
        prob, labels = torch.softmax(logits, dim=1).max(dim=1)
        confident = (prob >= self.threshold).float().mean()
        weights = confident.expand_as(prob).clone()
        top, bottom, left, right = self.margins
        if top:
            weights[:, :top] = 0
        if bottom:
            weights[:, weights.shape[1] - bottom :] = 0
        if left:
            weights[:, :, :left] = 0
        if right:
            weights[:, :, weights.shape[2] - right :] = 0
        return labels, weights


def pixel_weighted_ce(
    logits: torch.Tensor,
    labels: torch.Tensor,
    weights: torch.Tensor | None = None,
    *,
    ignore_index: int = IGNORE_INDEX,
    align_corners: bool = False,
) -> torch.Tensor:
    """Cross-entropy per pixel × its weight, averaged over ALL pixels (ignored ones count as 0), as mmseg 0.x.

    The logits are resized to the labels' size first (bilinear; ``align_corners=False`` as the DAFormer head,
    ``True`` as the original DACS code).

    Args:
        logits: (B, C, h, w).
        labels: (B, H, W) int64, ``ignore_index`` ignored.
        weights: (B, H, W) float or ``None`` (all 1).
        ignore_index: label value contributing 0.
        align_corners: of the logits' resize.

    Returns:
        A scalar.

    Example:
        >>> import torch
        >>> x = torch.zeros(1, 2, 2, 2); y = torch.tensor([[[0, 1], [255, 1]]])
        >>> round(pixel_weighted_ce(x, y).item(), 4)  # 3 pixels of log 2, divided by 4
        0.5199
    """
    if logits.shape[-2:] != labels.shape[-2:]:
        logits = F.interpolate(logits, size=labels.shape[-2:], mode="bilinear", align_corners=align_corners)
    loss = F.cross_entropy(logits.float(), labels, reduction="none", ignore_index=ignore_index)
    if weights is not None:
        loss = loss * weights
    return loss.mean()


@register("loss", "pixel_weighted_ce")
class PixelWeightedCE(nn.Module):
    """Module form of `pixel_weighted_ce`: the DACS/DAFormer segmentation loss on sources and mixed images.

    Args:
        ignore_index: label value contributing 0.
        align_corners: of the logits' resize to the label size (``False``: DAFormer; ``True``: DACS).

    Shape:
        logits (B, C, h, w), labels (B, H, W), weights (B, H, W) or ``None`` → scalar.

    Example:
        >>> import torch, uda
        >>> ce = uda.create("loss", "pixel_weighted_ce")
        >>> ce(torch.zeros(1, 3, 4, 4), torch.zeros(1, 8, 8, dtype=torch.long)).shape
        torch.Size([])
    """

    def __init__(self, *, ignore_index: int = IGNORE_INDEX, align_corners: bool = False) -> None:
        super().__init__()
        self.ignore_index, self.align_corners = ignore_index, bool(align_corners)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        return pixel_weighted_ce(
            logits, labels, weights, ignore_index=self.ignore_index, align_corners=self.align_corners
        )


__all__ = ["PixelWeightedCE", "PseudoLabeler", "pixel_weighted_ce"]
