"""MIC: masked image consistency, a loss term for any self-training (or DeepLab-v2) recipe.

Paper: Hoyer, Dai, Wang, Van Gool, "MIC: Masked Image Consistency for Context-Enhanced Domain Adaptation",
CVPR 2023.

One step (student g_θ, EMA teacher g_φ, target image x_t):
    ŷ_t, w = pseudo-labels and confidence weights of g_φ(x_t)          (the ones the mixed loss uses)
    x_M = M ⊙ aug(x_t) + (1 − M) ⊙ fill                               (M: 64×64 blocks kept with p 0.3)
    L_mic = λ · mean(w · CE(g_θ(x_M), ŷ_t))                            (λ 1)

`MaskedImageConsistency` is the loss itself; the recipe term ``mic`` (`uda.selftraining.MICTerm`) feeds it the
pseudo-labels of the recipe's self-training term (DAFormer/HRDA + MIC) or of an EMA teacher of its own (AdvEnt +
MIC: ``recipe.terms.mic={kind: mic}``). See the "MIC" recipe page.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .._errors import ConfigError
from .._registry import register
from ..types import SegOutput
from .masking import BlockMasking
from .pseudo_label import pixel_weighted_ce

#: ImageNet mean in [0, 1] RGB: a masked block of MIC's normalized input is 0, i.e. this colour.
IMAGENET_MEAN = (0.485, 0.456, 0.406)

LossFn = Callable[[SegOutput, torch.Tensor, torch.Tensor], dict[str, torch.Tensor]]


def _main_ce(out: SegOutput, label: torch.Tensor, weight: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"": pixel_weighted_ce(out.logits, label, weight)}


@register("loss", "mic")
class MaskedImageConsistency(nn.Module):
    """λ · pixel-weighted CE of the student on the masked, colour-augmented target image vs the pseudo-labels.

    Args:
        weight: λ (1.0).
        ratio: fraction of masked blocks (0.7).
        block: block side in input pixels (64).
        fill: colour of masked blocks: ``"mean"`` (the ImageNet mean, what a 0 of MIC's normalized input is),
            ``"zero"`` (black) or a number.
        exact: mask exactly ``round(ratio · blocks)`` blocks per image (default: independent draws, as MIC).
        augmentation: the colour augmentation applied before masking (``None``: none); the recipe passes its
            strong augmentation.

    Shape:
        image (B, 3, H, W) in [0, 1]; pseudo (B, H, W) int64; pseudo_weight (B, H, W) → named scalars.

    Example:
        >>> import torch, uda
        >>> model = uda.create("model", "deeplabv2_tiny", num_classes=4, width=4, multi_level=False)
        >>> mic = uda.create("loss", "mic", block=8)
        >>> img, pl, w = torch.rand(1, 3, 32, 32), torch.randint(0, 4, (1, 32, 32)), torch.ones(1, 32, 32)
        >>> sorted(mic(model, img, pl, w))
        ['mic']
    """

    def __init__(self, *, weight: float = 1.0, ratio: float = 0.7, block: int = 64, fill: str | float = "mean",
                 exact: bool = False, augmentation: nn.Module | None = None) -> None:
        super().__init__()
        if isinstance(fill, str) and fill not in ("mean", "zero"):
            raise ConfigError(f"mic: fill must be 'mean', 'zero' or a number, got {fill!r}")
        self.weight = float(weight)
        self.masking = BlockMasking(ratio=ratio, block=block, exact=exact)
        self.fill = fill
        self.augmentation = augmentation

    def fill_value(self, image: torch.Tensor) -> torch.Tensor | float:
        """What masked pixels become: (1, 3, 1, 1) ImageNet mean, 0 or the given number."""
        if self.fill == "mean":
            return torch.tensor(IMAGENET_MEAN, device=image.device, dtype=image.dtype).view(1, 3, 1, 1)
        return 0.0 if self.fill == "zero" else float(self.fill)

    @torch.no_grad()
    def masked_images(self, image: torch.Tensor) -> torch.Tensor:
        """Colour-augment (if configured), then replace the masked blocks by the fill colour."""
        if self.augmentation is not None:
            image = self.augmentation(image)
        keep = self.masking.mask(image)
        return image * keep + (1 - keep) * self.fill_value(image)

    def forward(self, model: nn.Module, image: torch.Tensor, pseudo: torch.Tensor, pseudo_weight: torch.Tensor,
                loss_fn: LossFn | None = None) -> dict[str, torch.Tensor]:
        """The term's losses: ``mic`` (and ``mic_<part>`` for each extra part ``loss_fn`` returns, e.g. HRDA's
        ``detail``).

        Args:
            model: the student.
            image: the (unmasked, unaugmented) target images.
            pseudo: the teacher's pseudo-labels of ``image``.
            pseudo_weight: their confidence weights.
            loss_fn: ``(output, label, weight) → {part: loss}`` (default: pixel-weighted CE of the logits as
                ``""``); the recipe passes its own (HRDA adds the detail loss).
        """
        out = model(self.masked_images(image))
        parts = (loss_fn or _main_ce)(out, pseudo, pseudo_weight)
        return {("mic" if not k else f"mic_{k}"): self.weight * v for k, v in parts.items()}


__all__ = ["IMAGENET_MEAN", "MaskedImageConsistency"]
