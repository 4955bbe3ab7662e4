"""HRDA's training parts for the self-training recipe: the multi-resolution loss and the context-view encoder.

Paper: Hoyer, Dai, Van Gool, "HRDA: Context-Aware High-Resolution Domain-Adaptive Semantic Segmentation", ECCV 2022.

With an [HRDA][uda.models.hrda.HRDA] model the recipe trains the fused prediction of the whole crop plus the
detail (high-resolution) prediction on the detail crop with weight 0.1 (`multires_ce`: it reads the detail part
from the model's output, so the same loss serves DAFormer and HRDA). The ImageNet feature distance compares the
low-resolution (context-view) features: the model's ``feature_network()`` (`uda.models.hrda.ContextEncoder`).
"""

from __future__ import annotations

import torch

from ..models.hrda import ContextEncoder
from ..types import SegOutput
from .pseudo_label import pixel_weighted_ce


def multires_ce(out: SegOutput, label: torch.Tensor, weight: torch.Tensor | None = None, *,
                detail_weight: float = 0.1) -> dict[str, torch.Tensor]:
    """Pixel-weighted CE of the (fused) logits, plus ``detail_weight`` × CE of HRDA's detail logits on the crop.

    Args:
        out: a model output; an ``HRDAOutput`` with ``detail_logits`` and ``detail_box`` adds the detail part.
        label: (B, H, W) labels at the input resolution.
        weight: (B, H, W) pixel weights or ``None``.
        detail_weight: weight of the detail loss (HRDA: 0.1; 0 = off).

    Returns:
        ``{"": fused loss}`` and, for an HRDA training output, ``{"detail": weighted detail loss}``.

    Example:
        >>> import torch, uda
        >>> m = uda.create("model", "hrda_tiny", num_classes=3)
        >>> parts = multires_ce(m(torch.rand(1, 3, 64, 64)), torch.randint(0, 3, (1, 64, 64)))
        >>> sorted(parts)
        ['', 'detail']
    """
    parts = {"": pixel_weighted_ce(out.logits, label, weight)}
    detail, box = getattr(out, "detail_logits", None), getattr(out, "detail_box", None)
    if detail_weight and detail is not None and box is not None:
        y0, y1, x0, x1 = box
        w = None if weight is None else weight[:, y0:y1, x0:x1]
        parts["detail"] = detail_weight * pixel_weighted_ce(detail, label[:, y0:y1, x0:x1], w)
    return parts


__all__ = ["ContextEncoder", "multires_ce"]
