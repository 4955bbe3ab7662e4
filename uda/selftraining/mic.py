"""MIC: masked image consistency, a loss term for any self-training (or DeepLab-v2) recipe.

Paper: Hoyer, Dai, Wang, Van Gool, "MIC: Masked Image Consistency for Context-Enhanced Domain Adaptation",
CVPR 2023.

One step (student g_θ, EMA teacher g_φ, target image x_t):
    ŷ_t, w = pseudo-labels and confidence weights of g_φ(x_t)          (the ones the mixed loss uses)
    x_M = M ⊙ aug(x_t) + (1 − M) ⊙ fill                               (M: 64×64 blocks kept with p 0.3)
    L_mic = λ · mean(w · CE(g_θ(x_M), ŷ_t))                            (λ 1)

Two ways in: `MaskedImageConsistency` is the term itself (the DACS/DAFormer/HRDA recipe calls it with the
teacher's pseudo-labels, option ``recipe.mic_weight``); `MICAligner` (aligner ``mic``) is the same term with an
EMA teacher of its own, for recipes without one (AdvEnt, AdaptSegNet, MinEnt, source-only:
``recipe.terms=[{name: mic, kind: mic}]``). See the "MIC" recipe page.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .._errors import ConfigError
from .._registry import register
from ..types import SegOutput
from .augment import StrongAugmentation
from .ema import EMATeacher
from .masking import BlockMasking
from .pseudo_label import PseudoLabeler, pixel_weighted_ce

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


@register("aligner", "mic")
class MICAligner(nn.Module):
    """MIC as a recipe term with its own EMA teacher: ``recipe.terms=[{name: mic, kind: mic}]`` (AdvEnt + MIC).

    When added to a recipe (`bind`), it builds an EMA teacher of the recipe's model and carries it on the recipe
    as ``<name>_teacher`` (saved in the checkpoint, never optimized); ``after_step`` moves it. Its generator loss
    is `MaskedImageConsistency` on the step's target images with the teacher's confidence pseudo-labels (one
    weight per batch: the share of pixels with max softmax ≥ ``threshold``). No discriminator.

    Args:
        feature_info: the model's levels (unused; every aligner takes it).
        num_classes: number of classes (unused).
        weight: λ (1.0).
        ratio: masked block fraction (0.7).
        block: block side (64).
        fill: masked colour (``"mean"``).
        alpha: the teacher's EMA momentum ceiling (0.999, MIC/DAFormer).
        teacher_buffers: the teacher's batch-norm statistics (`EMATeacher`'s ``buffers``; ``"batch"``: the batch's
            own, as MIC's code).
        threshold: pseudo-label confidence threshold (0.968).
        margins: pseudo-label ignore margins ``[top, bottom, left, right]``.
        augmentation: colour-augment the target image before masking (DACS's strong augmentation).
        augmentation_options: its options.

    Example:
        >>> import torch, uda
        >>> from uda.recipes.advent import AdvEntConfig
        >>> model = uda.create("model", "deeplabv2_tiny", num_classes=4, width=4)
        >>> cfg = AdvEntConfig(discriminator="fc_tiny", terms=[{"name": "mic", "kind": "mic", "block": 8}])
        >>> recipe = uda.create("recipe", "advent", cfg=cfg, model=model, num_classes=4)
        >>> src = {"image": torch.rand(1, 3, 32, 32), "label": torch.randint(0, 4, (1, 32, 32))}
        >>> losses, _ = recipe.generator_losses(src, {"image": torch.rand(1, 3, 32, 32)})
        >>> sorted(losses)
        ['aligner_adv_aux', 'aligner_adv_logits', 'mic_mic', 'seg', 'seg_aux']
    """

    mode = "alternate"
    needs_target_image = True

    def __init__(self, *, feature_info: Any = None, num_classes: int = 19, weight: float = 1.0, ratio: float = 0.7,
                 block: int = 64, fill: str | float = "mean", alpha: float = 0.999, teacher_buffers: str = "batch",
                 threshold: float = 0.968, margins: Sequence[int] = (0, 0, 0, 0), augmentation: bool = True,
                 augmentation_options: dict[str, Any] | None = None) -> None:
        super().__init__()
        aug = StrongAugmentation(**(augmentation_options or {})) if augmentation else None
        self.mic = MaskedImageConsistency(weight=weight, ratio=ratio, block=block, fill=fill, augmentation=aug)
        self.pseudo_labeler = PseudoLabeler(threshold=threshold, margins=list(margins))
        self.alpha, self.teacher_buffers = float(alpha), teacher_buffers
        self._bound: list[Any] = []  # [model, teacher]: plain references, not submodules of the term

    def bind(self, recipe: nn.Module, name: str) -> None:
        """Called by the recipe when the term is added: build and carry the EMA teacher of its model."""
        teacher = EMATeacher(recipe.model, alpha=self.alpha, buffers=self.teacher_buffers)
        recipe.carry(f"{name}_teacher", teacher)
        self._bound = [recipe.model, teacher]

    def _parts(self) -> tuple[nn.Module, EMATeacher]:
        if not self._bound:
            raise ConfigError("mic term: add it to a recipe (recipe.terms) so it has a model and a teacher")
        return self._bound[0], self._bound[1]

    def generator_loss(self, source: SegOutput, target: SegOutput, *, source_size: Any = None,
                       target_size: Any = None, memo: dict | None = None,
                       target_image: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        if target_image is None:
            raise ConfigError("mic term: the recipe gave no target images; use it in a recipe's terms list")
        model, teacher = self._parts()
        with torch.no_grad():
            logits = teacher(target_image).logits.float()
            logits = F.interpolate(logits, size=target_image.shape[-2:], mode="bilinear", align_corners=False)
            pseudo, weight = self.pseudo_labeler(logits)
        return self.mic(model, target_image, pseudo, weight)

    def discriminator_loss(self, source: SegOutput, target: SegOutput, **_: Any) -> dict[str, torch.Tensor]:
        return {}

    def frozen_in_generator_phase(self) -> list[nn.Module]:
        return []

    def generator_parameters(self) -> list[nn.Parameter]:
        return []

    @torch.no_grad()
    def after_step(self, step: int) -> None:
        """Move the teacher toward the student after optimizer step ``step``."""
        model, teacher = self._parts()
        teacher.update(model, step)


__all__ = ["IMAGENET_MEAN", "MICAligner", "MaskedImageConsistency"]
