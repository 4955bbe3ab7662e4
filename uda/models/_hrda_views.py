"""HRDA's views of its base network that other parts reuse: the context view (for the feature distance)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..types import SegOutput


class ContextEncoder(nn.Module):
    """An HRDA model's base network on the context view (the input downscaled by ``context_scale``).

    The frozen network of the ImageNet feature distance: its features are those of the student's
    low-resolution view, so the distance is computed on the LR features as in HRDA.

    Args:
        model: an [HRDA][uda.models.hrda.HRDA] model (its ``base`` and ``context_scale`` are used).

    Example:
        >>> import torch, uda
        >>> m = uda.create("model", "hrda_tiny", num_classes=3)
        >>> enc = m.feature_network()
        >>> x = torch.rand(1, 3, 64, 64)
        >>> enc(x).features["stage4"].shape == m(x).features["stage4"].shape
        True
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.base, self.context_scale = model.base, float(model.context_scale)

    def _lr(self, x: torch.Tensor) -> torch.Tensor:
        # the HRDA model's own order: normalize, then downscale (bit-identical context features)
        return F.interpolate(self.base.normalizer(x), scale_factor=self.context_scale, mode="bilinear",
                             align_corners=False)

    def forward_features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The context view's features without the base network's head."""
        return self.base.features_normalized(self._lr(x))

    def forward(self, x: torch.Tensor) -> SegOutput:
        return self.base.forward_normalized(self._lr(x))
