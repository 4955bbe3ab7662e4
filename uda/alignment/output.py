"""Output-space alignment (AdaptSegNet) and entropy-map alignment (AdvEnt).

Papers: Tsai et al., "Learning to Adapt Structured Output Space for Semantic Segmentation" (CVPR 2018);
Vu et al., "ADVENT: Adversarial Entropy Minimization for Domain Adaptation in Semantic Segmentation" (CVPR 2019).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from .._registry import register
from ..losses import _functional as Fn
from ..types import LevelInfo, SegOutput
from ._base import DiscriminatorSpec, LevelAligner, Size, level_tensor, upsample_scores


@register("aligner", "output")
class OutputAligner(LevelAligner):
    """AdaptSegNet: one discriminator per output level sees the softmax of the (upsampled) logits.

    Defaults are the paper's: levels ``{"logits": 1e-3, "aux": 2e-4}``, ``fc`` discriminators, BCE,
    alternating updates, logits upsampled to the input size before the softmax.

    Args:
        feature_info: the model's declared levels (gives the stride used when no input size is passed).
        num_classes: number of classes (channels of ``logits``/``aux``).
        levels: level name → λ.
        discriminator: registered discriminator name or factory (called with ``in_channels=C``).
        discriminator_kwargs: extra arguments of each discriminator.
        gan_loss: ``"bce"``, ``"lsgan"`` or ``"hinge"``.
        mode: ``"alternate"`` or ``"grl"``.
        upsample: upsample the logits bilinearly (``align_corners=True``) to the input image size before
            the softmax, as the originals do. The size is the ``source_size``/``target_size`` passed to the
            loss methods, or the logits' size times the level's stride when none is passed.

    Example:
        >>> import uda, torch
        >>> from uda.types import SegOutput
        >>> al = uda.create("aligner", "output", num_classes=4, levels={"logits": 1e-3}, discriminator="fc_tiny")
        >>> s, t = SegOutput(torch.randn(2, 4, 8, 8)), SegOutput(torch.randn(2, 4, 8, 8))
        >>> sorted(al.generator_loss(s, t)), sorted(al.discriminator_loss(s, t))
        (['adv_logits'], ['d_logits'])
    """

    def __init__(
        self,
        *,
        feature_info: Mapping[str, LevelInfo] | None = None,
        num_classes: int | None = None,
        levels: Mapping[str, float] | None = None,
        discriminator: DiscriminatorSpec = "fc",
        discriminator_kwargs: Mapping[str, Any] | None = None,
        gan_loss: str = "bce",
        mode: str = "alternate",
        upsample: bool = True,
    ) -> None:
        super().__init__(
            feature_info=feature_info,
            num_classes=num_classes,
            levels=levels,
            discriminator=discriminator,
            discriminator_kwargs=discriminator_kwargs,
            gan_loss=gan_loss,
            mode=mode,
        )
        self.upsample = upsample

    def scores(self, out: SegOutput, level: str, size: Size | None) -> torch.Tensor:
        """Softmax of the (upsampled) class scores of ``level``."""
        x = upsample_scores(level_tensor(out, level), level, size, self.upsample, self.feature_info)
        return x.softmax(dim=1)

    def d_input(self, out: SegOutput, level: str, size: Size | None) -> torch.Tensor:
        return self.scores(out, level, size)


@register("aligner", "entropy")
class EntropyAligner(OutputAligner):
    """AdvEnt: the discriminators see weighted self-information maps ``−p·log2(p) / log2(C)`` (per channel).

    Same arguments and defaults as [`OutputAligner`][uda.alignment.output.OutputAligner] (levels ``{"logits": 1e-3, "aux": 2e-4}``).
    The map keeps C channels (ADVENT's ``prob_2_entropy``); its channel sum is the normalized entropy.

    Example:
        >>> import uda, torch
        >>> from uda.types import SegOutput
        >>> al = uda.create("aligner", "entropy", num_classes=4, levels={"logits": 1e-3}, discriminator="fc_tiny")
        >>> x = SegOutput(torch.randn(1, 4, 8, 8))
        >>> al.d_input(x, "logits", None).shape
        torch.Size([1, 4, 64, 64])
    """

    def d_input(self, out: SegOutput, level: str, size: Size | None) -> torch.Tensor:
        return Fn.self_information(self.scores(out, level, size))
