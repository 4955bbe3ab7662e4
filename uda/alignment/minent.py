"""Entropy minimisation on the target domain (MinEnt).

Paper: Vu et al., "ADVENT: Adversarial Entropy Minimization for Domain Adaptation in Semantic Segmentation"
(CVPR 2019), the direct entropy-minimisation variant.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from .._errors import UdaError
from .._registry import register
from ..losses import _functional as Fn
from ..types import LevelInfo, SegOutput
from ._base import Aligner, Memo, Size, level_channels, level_tensor, upsample_scores


@register("aligner", "minent")
class MinEntAligner(Aligner):
    """MinEnt: ``λ·mean entropy`` of the target predictions per level; no discriminator.

    Args:
        feature_info: the model's declared levels (stride used for upsampling when no size is passed).
        num_classes: number of classes.
        levels: level name → λ; default ``{"logits": 1e-3, "aux": 2e-4}`` (the paper's λ_ent).
        upsample: upsample the logits (bilinear, ``align_corners=True``) to the target input size first,
            as the original does.
        mode: only ``"alternate"`` is meaningful (there is no discriminator); accepted for a uniform interface.

    Example:
        >>> import uda, torch
        >>> from uda.types import SegOutput
        >>> al = uda.create("aligner", "minent", num_classes=4, levels={"logits": 1.0})
        >>> t = SegOutput(torch.zeros(1, 4, 8, 8))
        >>> round(al.generator_loss(t, t)["ent_logits"].item(), 4), al.discriminator_loss(t, t)
        (1.0, {})
    """

    def __init__(
        self,
        *,
        feature_info: Mapping[str, LevelInfo] | None = None,
        num_classes: int | None = None,
        levels: Mapping[str, float] | None = None,
        upsample: bool = True,
        mode: str = "alternate",
    ) -> None:
        super().__init__()
        if mode not in ("alternate", "grl"):
            raise UdaError(f"unknown aligner mode {mode!r}; use 'alternate' or 'grl'")
        self.levels = dict(levels if levels is not None else {"logits": 1e-3, "aux": 2e-4})
        self.feature_info = dict(feature_info or {})
        self.num_classes = num_classes
        self.upsample = upsample
        for level in self.levels:
            level_channels(level, feature_info, num_classes)  # validates the level name

    def generator_loss(self, source: SegOutput, target: SegOutput, *, source_size: Size | None = None,
                       target_size: Size | None = None, memo: Memo | None = None) -> dict[str, torch.Tensor]:
        """``{"ent_<level>": λ · mean normalized entropy of the target prediction}``."""
        losses = {}
        for level, lam in self.levels.items():
            x = upsample_scores(level_tensor(target, level), level, target_size, self.upsample, self.feature_info)
            losses[f"ent_{level}"] = lam * Fn.minent(x)
        return losses

    def discriminator_loss(self, source: SegOutput, target: SegOutput, *, source_size: Size | None = None,
                           target_size: Size | None = None, memo: Memo | None = None) -> dict[str, torch.Tensor]:
        """Always empty: MinEnt has no discriminator."""
        return {}

    def frozen_in_generator_phase(self) -> list[nn.Module]:
        return []
