"""DACS: self-training with an EMA teacher and ClassMix; DAFormer's additions (RCS, feature distance, margins).

Papers: Tranheden, Olsson, Pinto, Svensson, "DACS: Domain Adaptation via Cross-domain Mixed Sampling", WACV 2021;
Hoyer, Dai, Van Gool, "DAFormer: Improving Network Architectures and Training Strategies for Domain-Adaptive
Semantic Segmentation", CVPR 2022; HRDA (ECCV 2022) and MIC (CVPR 2023) by Hoyer et al. as options.

Algorithm (one iteration; student g_θ, teacher g_φ = a copy of g_θ at step 0):
    sample (x_s, y_s) (random crop + flip; DAFormer: rare-class sampling picks the sample), x_t
    L_src = CE(g_θ(x_s), y_s)                                       (mean over all pixels)
    [DAFormer] L_fd = λ_fd · ‖F_θ(x_s) − F_ImageNet(x_s)‖ on thing-class pixels of y_s
    [VFM-UDA++] fd_target: also L_fd_t = λ_fd · ‖F_θ(x_t) − F_0(x_t)‖ on every pixel (F_0: the frozen initial
    encoder; fd_classes null makes the source term use every pixel too)
    p = softmax(g_φ(x_t)); ŷ_t = argmax p; q = mean(max p ≥ 0.968)  (one scalar per batch; margins → 0)
    M = ClassMix mask of half the classes of y_s
    x_m = M·x_s + (1 − M)·x_t,  y_m = M·y_s + (1 − M)·ŷ_t,  w_m = M·1 + (1 − M)·q
    L_mix = mean(w_m · CE(g_θ(aug(x_m)), y_m))                      (aug: colour jitter + Gaussian blur)
    [MIC] L_mic = λ_mic · mean(w_t · CE(g_θ(M_b ⊙ aug(x_t)), ŷ_t))       (64×64 block masks, ratio 0.7)
    [HRDA] every CE on the fused prediction + 0.1 · CE of the detail crop; FD on the context-view features
    θ ← optimizer step on L_src + L_fd + L_mix (+ L_mic)
    φ ← α_t·φ + (1 − α_t)·θ,  α_t = min(1 − 1/(t + 1), α)           (``after_step``; DACS α 0.99, DAFormer 0.999)

The teacher (and the frozen ImageNet encoder of the feature distance) are carried modules: moved with the
recipe, saved in its checkpoint, never optimized, always in eval mode; the teacher's batch norm normalises with
the target batch's statistics (``teacher_buffers="batch"``, as DAFormer's teacher in training mode).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from .._registry import register
from ..config import RecipeConfig, parse_size
from ..models.hrda import HRDA
from ..selftraining import (
    ClassMix,
    EMATeacher,
    ImageNetFeatureDistance,
    PseudoLabeler,
    RandomCropFlip,
    RareClassSampling,
    StrongAugmentation,
)
from ..selftraining.feature_distance import THING_CLASSES
from ..selftraining.hrda import ContextEncoder, multires_ce
from ..selftraining.mic import MaskedImageConsistency
from ..types import LevelInfo
from ._base import Recipe


@dataclass
class DACSConfig(RecipeConfig):
    """DACS's options and DAFormer's additions (the defaults are DACS's; ``daformer_*`` configs switch them on).

    Attributes:
        alpha: EMA momentum ceiling (DACS 0.99, DAFormer 0.999).
        teacher_buffers: the teacher's batch-norm statistics: the batch's own (``batch``, default: DAFormer's, HRDA's
            and MIC's code), or running ones that follow the student (``ema``, ``copy``) or are left (``keep``).
        pseudo_threshold: confidence threshold of the per-batch pseudo-label weight (0.968).
        pseudo_margins: ``[top, bottom, left, right]`` rows/columns of the target crop whose pseudo-label weight
            is 0 (DAFormer ``[15, 120, 0, 0]``).
        mix_classes: ClassMix draws half of the classes of each image's source label (``image``, the DACS paper)
            or of the whole batch's labels (``batch``, DAFormer's code).
        strong_augmentation: colour jitter + Gaussian blur of the mixed image.
        augmentation_options: options of the strong augmentation (defaults: strength 0.2 with probability 0.2).
        fd_weight: λ of the ImageNet feature distance (0 = off; DAFormer 0.005).
        fd_classes: trainIds the feature distance is restricted to (``null`` = every pixel; DAFormer: the thing
            classes 6, 7, 11–18).
        fd_scale_ratio: a feature pixel keeps its label when the class covers this share of its block (0.75).
        fd_level: feature level compared (``None``: the model's last level).
        crop: random ``WxH`` training crops of source and target (``None``: whole images).
        cat_max_ratio: source crops are redrawn (up to 10 times) while one class covers more than this share.
        flip: random horizontal flip (p 0.5) of source and target crops.
        rcs: rare-class sampling of the source (DAFormer).
        rcs_temperature: T of p(c) ∝ exp((1 − f_c)/T) (0.01).
        rcs_min_pixels: a sample is a candidate for class c with at least this many pixels of it (3000).
        rcs_min_crop_ratio: crops are retried until the sampled class covers ``ratio·min_pixels`` pixels (0.5).
        detail_weight: with an HRDA model, weight of the detail-crop loss next to the fused one (0.1, HRDA).
        mic_weight: λ of MIC's masked image consistency term (0 = off; MIC 1.0).
        mic_options: options of the term (``ratio`` 0.7, ``block`` 64, ``fill``; see the MIC recipe page).
        fd_target: the feature distance also on the target images (VFM-UDA++: source and target, every pixel;
            the target term ignores ``fd_classes``: there is no label).
    """

    name: str = "dacs"
    alpha: float = 0.99
    teacher_buffers: Literal["ema", "copy", "keep", "batch"] = "batch"
    pseudo_threshold: float = 0.968
    pseudo_margins: list[int] = field(default_factory=lambda: [0, 0, 0, 0])
    mix_classes: Literal["image", "batch"] = "image"
    strong_augmentation: bool = True
    augmentation_options: dict[str, Any] = field(default_factory=dict)
    fd_weight: float = 0.0
    fd_classes: list[int] | None = field(default_factory=lambda: list(THING_CLASSES))
    fd_scale_ratio: float = 0.75
    fd_level: str | None = None
    crop: str | None = None
    cat_max_ratio: float = 0.75
    flip: bool = True
    rcs: bool = False
    rcs_temperature: float = 0.01
    rcs_min_pixels: int = 3000
    rcs_min_crop_ratio: float = 0.5
    detail_weight: float = 0.1
    mic_weight: float = 0.0
    mic_options: dict[str, Any] = field(default_factory=dict)
    fd_target: bool = False


@register("recipe", "dacs")
class DACS(Recipe):
    """Student + EMA teacher: supervised source loss, ClassMix'd pseudo-label loss, optional ImageNet FD.

    Args:
        cfg: a `DACSConfig`.
        model: the segmentation network (the student).
        num_classes: number of classes.
        feature_info: the model's feature levels.

    Example:
        >>> import torch, uda
        >>> model = uda.create("model", "deeplabv2_tiny", num_classes=4, width=4, multi_level=False)
        >>> recipe = uda.create("recipe", "dacs", cfg=DACSConfig(), model=model, num_classes=4)
        >>> src = {"image": torch.rand(2, 3, 32, 32), "label": torch.randint(0, 4, (2, 32, 32))}
        >>> losses, _ = recipe.generator_losses(src, {"image": torch.rand(2, 3, 32, 32)})
        >>> sorted(losses)
        ['mix', 'seg']
        >>> recipe.after_step(1)  # the loop calls this after the optimizer step: the EMA update
    """

    Config = DACSConfig

    def __init__(self, cfg: DACSConfig, model: nn.Module, *, num_classes: int,
                 feature_info: dict[str, LevelInfo] | None = None) -> None:
        super().__init__(cfg, model, num_classes=num_classes, feature_info=feature_info)
        self.teacher = EMATeacher(model, alpha=cfg.alpha, buffers=cfg.teacher_buffers)
        self.pseudo_labeler = PseudoLabeler(threshold=cfg.pseudo_threshold, margins=list(cfg.pseudo_margins))
        self.classmix = ClassMix(choice=cfg.mix_classes)
        self.augment = StrongAugmentation(**cfg.augmentation_options) if cfg.strong_augmentation else None
        self.feature_distance: ImageNetFeatureDistance | None = None
        if cfg.fd_weight:
            levels = [k for k in self.feature_info if k not in ("logits", "aux")]
            self.fd_level = cfg.fd_level or levels[-1]
            # the network as built (ImageNet-initialised), frozen: a carried module
            encoder = ContextEncoder(model) if isinstance(model, HRDA) else model  # HRDA: the LR features
            self.feature_distance = ImageNetFeatureDistance(encoder, weight=cfg.fd_weight, classes=cfg.fd_classes,
                                                            ratio=cfg.fd_scale_ratio, level=self.fd_level,
                                                            num_classes=self.num_classes)
        self.mic: MaskedImageConsistency | None = None
        if cfg.mic_weight:
            self.mic = MaskedImageConsistency(weight=cfg.mic_weight, augmentation=self.augment, **cfg.mic_options)

    # --- the update ------------------------------------------------------------------------------------
    def generator_losses(self, src: dict, tgt: dict) -> tuple[dict[str, torch.Tensor], Any]:
        out_s = self.model(src["image"])
        losses = self._ce("seg", out_s, src["label"])
        if self.feature_distance is not None:
            losses["fd"] = self.feature_distance(out_s.features[self.fd_level], src["image"], src["label"])
            if self.cfg.fd_target:
                out_t = self.model(tgt["image"])
                losses["fd_target"] = self.feature_distance(out_t.features[self.fd_level], tgt["image"])
        with torch.no_grad():
            logits_t = self.teacher(tgt["image"]).logits
            pseudo, weight = self.pseudo_labeler(_resize(logits_t, tgt["image"].shape[-2:]))
            mixed, mixed_label, mixed_weight, _ = self.classmix(src["image"], src["label"], tgt["image"], pseudo,
                                                               weight)
            if self.augment is not None:
                mixed = self.augment(mixed)
        out_m = self.model(mixed)
        losses.update(self._ce("mix", out_m, mixed_label, mixed_weight))
        if self.mic is not None:
            losses.update(self.mic(self.model, tgt["image"], pseudo, weight, loss_fn=self._parts))
        return losses, None

    def _parts(self, out: Any, label: torch.Tensor, weight: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        return multires_ce(out, label, weight, detail_weight=self.cfg.detail_weight)  # HRDA: + detail loss

    def _ce(self, name: str, out: Any, label: torch.Tensor, weight: torch.Tensor | None = None) -> dict:
        return {(f"{name}_{k}" if k else name): v for k, v in self._parts(out, label, weight).items()}

    @torch.no_grad()
    def after_step(self, step: int) -> None:
        """The EMA teacher update after optimizer step ``step`` (ranks keep one teacher: see `EMATeacher.update`)."""
        super().after_step(step)  # config terms with a teacher of their own
        self.teacher.update(self.model, step)

    def trained_modules(self) -> list[nn.Module]:
        return [self.model]

    # --- data ------------------------------------------------------------------------------------------
    def wrap_datasets(self, source: Any, target: Any) -> tuple[Any, Any]:
        """Random crops + flip of both domains and, with ``rcs``, rare-class sampling of the source."""
        return _wrap_datasets(self.cfg, source, target, self.num_classes)


def _resize(x: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x.float(), size=tuple(size), mode="bilinear", align_corners=False)


def _wrap_datasets(cfg: DACSConfig, source: Any, target: Any, num_classes: int) -> tuple[Any, Any]:
    crop = parse_size(cfg.crop, "recipe.crop")
    seed = torch.initial_seed()  # the loop seeds torch with trainer.seed before it builds the recipe and datasets
    flip = 0.5 if cfg.flip else 0.0
    if crop is not None:
        source = RandomCropFlip(source, size=crop, cat_max_ratio=cfg.cat_max_ratio, flip=flip, seed=seed)
        target = RandomCropFlip(target, size=crop, flip=flip, seed=seed + 7919)
    if cfg.rcs:
        source = RareClassSampling(source, num_classes=num_classes, temperature=cfg.rcs_temperature,
                                   min_pixels=cfg.rcs_min_pixels, min_crop_ratio=cfg.rcs_min_crop_ratio, seed=seed)
    return source, target
