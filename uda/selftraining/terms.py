"""Self-training as loss terms (kind ``term``): ClassMix self-training, the ImageNet feature distance and MIC.

Papers: Tranheden et al., "DACS: Domain Adaptation via Cross-domain Mixed Sampling", WACV 2021; Hoyer, Dai,
Van Gool, "DAFormer", CVPR 2022 (feature distance); Hoyer et al., "MIC: Masked Image Consistency for
Context-Enhanced Domain Adaptation", CVPR 2023.

Each is a `uda.term.Term`, so it composes with any recipe — DAFormer is the ``dacs`` recipe with the terms
``fd`` and ``mix``; AdvEnt + MIC is the ``advent`` recipe with a ``mic`` term; DACS on FDA-translated source is
the ``fda`` recipe with a ``mix`` term (see docs/write-your-own.md). One iteration of the ``mix`` term (student
g_θ, teacher g_φ = a copy of g_θ at step 0):

    p = softmax(g_φ(x_t)); ŷ_t = argmax p; q = mean(max p ≥ 0.968)      (step.pseudo; margins → weight 0)
    M = ClassMix mask of half the classes of y_s
    x_m = M·x_s + (1 − M)·x_t,  y_m = M·y_s + (1 − M)·ŷ_t,  w_m = M·1 + (1 − M)·q
    L_mix = mean(w_m · CE(g_θ(aug(x_m)), y_m))                        (aug: colour jitter + Gaussian blur)
    after the step: φ ← α_t·φ + (1 − α_t)·θ,  α_t = min(1 − 1/(t + 1), α)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .._errors import ConfigError
from .._registry import create, register
from ..term import Losses, PseudoLabels, SegStep, Term
from .feature_distance import THING_CLASSES, ImageNetFeatureDistance
from .mic import MaskedImageConsistency


def _resize(x: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x.float(), size=tuple(size), mode="bilinear", align_corners=False)


class _Student:
    """A plain reference to the recipe's model (not a submodule: the term must not own or save it)."""

    def __init__(self) -> None:
        self._model: list[nn.Module] = []

    def set(self, model: nn.Module) -> None:
        self._model = [model]

    def get(self, who: str) -> nn.Module:
        if not self._model:
            raise ConfigError(f"{who}: add it to a recipe (recipe.terms) so it has a student model")
        return self._model[0]


def teacher_pseudo_labels(teacher: nn.Module, labeler: nn.Module, image: torch.Tensor, source: str) -> PseudoLabels:
    """The teacher's confidence pseudo-labels of ``image``, at the image's resolution."""
    with torch.no_grad():
        logits = teacher(image).logits
        label, weight = labeler(_resize(logits, image.shape[-2:]))
    return PseudoLabels(label, weight, source)


@register("term", "self_training")
class SelfTrainingTerm(Term):
    """ClassMix self-training (DACS): EMA teacher → pseudo-labels → ClassMix → strong augmentation → student CE.

    Every part is created by its registered name, so a variant swaps one by config
    (``recipe.terms.mix.mixing=...``). The pseudo-labels go into ``step.pseudo`` for the terms after it (MIC).

    Args:
        teacher: registered ``teacher`` (``ema``).
        alpha: EMA momentum ceiling (DACS 0.99, DAFormer 0.999).
        teacher_buffers: the teacher's batch-norm statistics (`uda.selftraining.EMATeacher`'s ``buffers``:
            ``batch``, the batch's own as DAFormer's code; ``ema``, ``copy``, ``keep``).
        pseudo_label: registered ``pseudo_label`` (``confidence``).
        pseudo_threshold: confidence threshold of the per-batch weight (0.968).
        pseudo_margins: ``[top, bottom, left, right]`` rows/columns with pseudo-label weight 0 (DAFormer
            ``[15, 120, 0, 0]``).
        mixing: registered ``mixing`` (``classmix``).
        mix_classes: ClassMix draws half of the classes of each image (``image``, the DACS paper) or of the whole
            batch (``batch``, DAFormer's code).
        strong_augmentation: colour jitter + blur of the mixed image.
        augmentation: registered ``augmentation`` used for it (``dacs_strong``).
        augmentation_options: its options (defaults: strength 0.2).

    Example:
        >>> import torch, uda
        >>> from uda.recipes import Recipe, TermsConfig
        >>> model = uda.create("model", "deeplabv2_tiny", num_classes=4, width=4, multi_level=False)
        >>> r = Recipe(TermsConfig(terms={"mix": {"kind": "self_training"}}), model, num_classes=4)
        >>> src = {"image": torch.rand(2, 3, 32, 32), "label": torch.randint(0, 4, (2, 32, 32))}
        >>> losses, step = r.generator_losses(src, {"image": torch.rand(2, 3, 32, 32)})
        >>> sorted(losses), step.pseudo.label.shape, step.has_target
        (['mix', 'seg'], torch.Size([2, 32, 32]), False)
    """

    provides_pseudo_labels = True

    def __init__(self, *, teacher: str = "ema", alpha: float = 0.99, teacher_buffers: str = "batch",
                 pseudo_label: str = "confidence", pseudo_threshold: float = 0.968,
                 pseudo_margins: Sequence[int] = (0, 0, 0, 0), mixing: str = "classmix", mix_classes: str = "image",
                 strong_augmentation: bool = True, augmentation: str = "dacs_strong",
                 augmentation_options: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.teacher_name, self.alpha, self.teacher_buffers = teacher, float(alpha), teacher_buffers
        self.pseudo_labeler = create("pseudo_label", pseudo_label, threshold=pseudo_threshold,
                                     margins=list(pseudo_margins))
        self.mixing = create("mixing", mixing, choice=mix_classes)
        self.augment = (create("augmentation", augmentation, **(augmentation_options or {}))
                        if strong_augmentation else None)
        self.teacher: nn.Module | None = None
        self._student = _Student()

    def bind(self, recipe: nn.Module, name: str) -> None:
        """Build the teacher: a copy of the recipe's model (a carried part of this term: frozen, eval, saved)."""
        super().bind(recipe, name)
        self._student.set(recipe.model)
        self.teacher = create("teacher", self.teacher_name, student=recipe.model, alpha=self.alpha,
                              buffers=self.teacher_buffers)

    def pseudo_labels(self, step: SegStep) -> PseudoLabels:
        """``step.pseudo``, computed with this term's teacher when no term filled it yet this step."""
        if step.pseudo is None:
            if self.teacher is None:
                raise ConfigError(f"term {self.name or 'self_training'}: add it to a recipe so it has a teacher")
            step.pseudo = teacher_pseudo_labels(self.teacher, self.pseudo_labeler, step.target_image, self.name)
        return step.pseudo

    def generator_loss(self, step: SegStep) -> Losses:
        if step.source_label is None or step.pixel_loss is None:
            raise ConfigError(f"term {self.name}: the step carries no source labels; use it in a recipe")
        pl = self.pseudo_labels(step)
        with torch.no_grad():
            mixed, label, weight, _ = self.mixing(step.source_image, step.source_label, step.target_image,
                                                  pl.label, pl.weight)
            if self.augment is not None:
                mixed = self.augment(mixed)
        out = self._student.get(self.name)(mixed)
        return {("mix" if not k else f"mix_{k}"): v for k, v in step.pixel_loss(out, label, weight).items()}

    @torch.no_grad()
    def after_step(self, step: int) -> None:
        """The EMA teacher update after optimizer step ``step`` (ranks keep one teacher: `EMATeacher.update`)."""
        if self.teacher is not None:
            self.teacher.update(self._student.get(self.name), step)

    def legacy_prefixes(self, name: str) -> dict[str, str]:
        """Checkpoint keys of the ``dacs`` recipe before self-training became a term."""
        return {"teacher.": f"{name}.teacher."}


@register("term", "feature_distance")
class FeatureDistanceTerm(Term):
    """DAFormer's ImageNet feature distance: λ·‖F_θ(x_s) − F_ImageNet(x_s)‖ on thing-class pixels of y_s.

    At `bind` a frozen copy of the recipe's model — of its ``feature_network()`` (HRDA: the context view), as
    built, i.e. ImageNet-initialised — is kept (a carried part: frozen, eval, saved).

    Args:
        weight: λ (DAFormer 0.005; VFM-UDA++ 0.1).
        classes: trainIds the distance is restricted to (the thing classes 6, 7, 11–18; ``None`` = every pixel).
        scale_ratio: a feature pixel keeps its label when the class covers this share of its block (0.75).
        level: feature level compared (``None``: the model's last level).
        target: also the target images, every pixel (VFM-UDA++: ``fd_target``).

    Example:
        >>> import torch, uda
        >>> from uda.recipes import Recipe, TermsConfig
        >>> model = uda.create("model", "deeplabv2_tiny", num_classes=19, width=4, multi_level=False)
        >>> r = Recipe(TermsConfig(terms={"fd": {"kind": "feature_distance"}}), model, num_classes=19).eval()
        >>> src = {"image": torch.rand(1, 3, 32, 32), "label": torch.full((1, 32, 32), 13)}
        >>> losses, _ = r.generator_losses(src, {"image": torch.rand(1, 3, 32, 32)})
        >>> losses["fd"].item()  # the student is still the network the frozen copy was taken of
        0.0
    """

    backprops_through_source = True

    def __init__(self, *, weight: float = 0.005, classes: Sequence[int] | None = THING_CLASSES,
                 scale_ratio: float = 0.75, level: str | None = None, target: bool = False) -> None:
        super().__init__()
        self.weight, self.scale_ratio, self.target = float(weight), float(scale_ratio), bool(target)
        self.classes = None if classes is None else [int(c) for c in classes]
        self.level = level
        self.distance: ImageNetFeatureDistance | None = None

    def bind(self, recipe: nn.Module, name: str) -> None:
        super().bind(recipe, name)
        levels = [k for k in recipe.feature_info if k not in ("logits", "aux")]
        self.level = self.level or levels[-1]
        model = recipe.model
        encoder = model.feature_network() if hasattr(model, "feature_network") else model
        self.distance = ImageNetFeatureDistance(encoder, weight=self.weight, classes=self.classes,
                                                ratio=self.scale_ratio, level=self.level,
                                                num_classes=recipe.num_classes)

    def generator_loss(self, step: SegStep) -> Losses:
        if self.distance is None:
            raise ConfigError(f"term {self.name or 'feature_distance'}: add it to a recipe (recipe.terms)")
        losses = {"fd": self.distance(step.source.features[self.level], step.source_image, step.source_label)}
        if self.target:
            losses["fd_target"] = self.distance(step.target.features[self.level], step.target_image)
        return losses

    def legacy_prefixes(self, name: str) -> dict[str, str]:
        return {"feature_distance.": f"{name}.distance."}


@register("term", "mic")
class MICTerm(Term):
    """MIC's masked image consistency: λ·mean(w·CE(g_θ(M ⊙ aug(x_t)), ŷ_t)) with the teacher's pseudo-labels.

    With a self-training term in the recipe (``teacher="auto"``, the default) it reuses that term's teacher,
    pseudo-labels (``step.pseudo``) and strong augmentation — one teacher, as MIC on DAFormer/HRDA. Without one
    (AdvEnt + MIC, MLFA + MIC) it builds an EMA teacher of its own (a carried part: frozen, eval, saved).

    Args:
        weight: λ (1.0).
        ratio: masked block fraction (0.7).
        block: block side in input pixels (64).
        fill: masked colour: ``"mean"`` (the ImageNet mean), ``"zero"`` or a number.
        teacher: ``"auto"`` (share a self-training term's, else own), ``"own"`` or ``"shared"`` (refused when the
            recipe has no self-training term).
        alpha: the own teacher's EMA momentum ceiling (0.999, MIC/DAFormer).
        teacher_buffers: the own teacher's batch-norm statistics (``batch``).
        threshold: the own pseudo-labels' confidence threshold (0.968).
        margins: the own pseudo-labels' ignore margins ``[top, bottom, left, right]``.
        augmentation: colour-augment the target image before masking (``None``: the shared term's augmentation,
            or DACS's strong augmentation with an own teacher).
        augmentation_options: options of an own augmentation.

    Example:
        >>> import torch, uda
        >>> from uda.recipes.advent import AdvEntConfig
        >>> model = uda.create("model", "deeplabv2_tiny", num_classes=4, width=4)
        >>> cfg = AdvEntConfig(discriminator="fc_tiny", terms={"mic": {"kind": "mic", "block": 8}})
        >>> recipe = uda.create("recipe", "advent", cfg=cfg, model=model, num_classes=4)
        >>> src = {"image": torch.rand(1, 3, 32, 32), "label": torch.randint(0, 4, (1, 32, 32))}
        >>> losses, _ = recipe.generator_losses(src, {"image": torch.rand(1, 3, 32, 32)})
        >>> sorted(losses)
        ['aligner_adv_aux', 'aligner_adv_logits', 'mic', 'seg', 'seg_aux']
    """

    TEACHERS = ("auto", "own", "shared")

    def __init__(self, *, weight: float = 1.0, ratio: float = 0.7, block: int = 64, fill: str | float = "mean",
                 teacher: str = "auto", alpha: float = 0.999, teacher_buffers: str = "batch",
                 threshold: float = 0.968, margins: Sequence[int] = (0, 0, 0, 0), augmentation: bool | None = None,
                 augmentation_options: dict[str, Any] | None = None) -> None:
        super().__init__()
        if teacher not in self.TEACHERS:
            raise ConfigError(f"mic term: teacher must be one of {', '.join(self.TEACHERS)}, got {teacher!r}")
        self.mic = MaskedImageConsistency(weight=weight, ratio=ratio, block=block, fill=fill)
        self.teacher_mode, self.alpha, self.teacher_buffers = teacher, float(alpha), teacher_buffers
        self.threshold, self.margins = float(threshold), list(margins)
        self.augmentation, self.augmentation_options = augmentation, dict(augmentation_options or {})
        self.teacher: nn.Module | None = None
        self.pseudo_labeler: nn.Module | None = None
        self._provider: list[SelfTrainingTerm] = []
        self._student = _Student()

    def bind(self, recipe: nn.Module, name: str) -> None:
        """Share the recipe's self-training term (``teacher="auto"``/``"shared"``) or build an own EMA teacher."""
        super().bind(recipe, name)
        self._student.set(recipe.model)
        providers = [t for t in recipe.terms.values() if getattr(t, "provides_pseudo_labels", False)]
        if providers and self.teacher_mode != "own":
            self._provider = [providers[0]]
            if self.augmentation is None:
                self.mic.augmentation = providers[0].augment
            elif self.augmentation:
                self.mic.augmentation = create("augmentation", "dacs_strong", **self.augmentation_options)
            return
        if self.teacher_mode == "shared":
            raise ConfigError(f"recipe.terms.{name}: teacher=shared needs a self-training term (kind self_training) "
                              "in the recipe; add one or use teacher=own")
        if self.augmentation is None or self.augmentation:
            self.mic.augmentation = create("augmentation", "dacs_strong", **self.augmentation_options)
        self.teacher = create("teacher", "ema", student=recipe.model, alpha=self.alpha, buffers=self.teacher_buffers)
        self.pseudo_labeler = create("pseudo_label", "confidence", threshold=self.threshold, margins=self.margins)

    def pseudo_labels(self, step: SegStep) -> PseudoLabels:
        if self._provider:
            return self._provider[0].pseudo_labels(step)
        if step.pseudo is None:
            if self.teacher is None:
                raise ConfigError(f"term {self.name or 'mic'}: add it to a recipe (recipe.terms) so it has a teacher")
            step.pseudo = teacher_pseudo_labels(self.teacher, self.pseudo_labeler, step.target_image, self.name)
        return step.pseudo

    def generator_loss(self, step: SegStep) -> Losses:
        pl = self.pseudo_labels(step)
        return self.mic(self._student.get(self.name), step.target_image, pl.label, pl.weight,
                        loss_fn=step.pixel_loss)

    @torch.no_grad()
    def after_step(self, step: int) -> None:
        """Move the own teacher toward the student (a shared teacher is moved by its term)."""
        if self.teacher is not None:
            self.teacher.update(self._student.get(self.name), step)

    def legacy_prefixes(self, name: str) -> dict[str, str]:
        """The checkpoint keys of the former ``mic`` aligner, which carried its teacher on the recipe."""
        return {f"{name}_teacher.": f"{name}.teacher."}


__all__ = ["FeatureDistanceTerm", "MICTerm", "SelfTrainingTerm", "teacher_pseudo_labels"]
