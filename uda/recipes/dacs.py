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

The recipe is the source loss, the data wrapping (crops, flip, rare-class sampling) and a list of terms
(`uda.term.Term`): ``mix`` (`uda.selftraining.SelfTrainingTerm`: teacher, pseudo-labels, ClassMix, strong
augmentation), and, in the DAFormer/HRDA/MIC/VFM-UDA presets, ``fd`` (`uda.selftraining.FeatureDistanceTerm`)
before it and ``mic`` (`uda.selftraining.MICTerm`, sharing the ``mix`` teacher) after it. Any other term composes
(an AdvEnt discriminator, entropy minimisation); the model's output carries HRDA's multi-resolution parts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from .._registry import register
from ..config import parse_size
from ..selftraining import RandomCropFlip, RareClassSampling
from ..types import LevelInfo, SegOutput
from ._base import Recipe, TermsConfig, normalize_terms

#: The ``dacs`` recipe's default term: ClassMix self-training with DACS's values.
DEFAULT_TERMS = {"mix": {"kind": "self_training"}}
#: Flat keys of earlier versions (and short aliases) → (term kind, default term name, option).
LEGACY_KEYS: dict[str, tuple[str, str, str]] = {
    **{k: ("self_training", "mix", k) for k in ("alpha", "teacher_buffers", "pseudo_threshold", "pseudo_margins",
                                                "mix_classes", "strong_augmentation", "augmentation_options")},
    "fd_weight": ("feature_distance", "fd", "weight"), "fd_classes": ("feature_distance", "fd", "classes"),
    "fd_scale_ratio": ("feature_distance", "fd", "scale_ratio"), "fd_level": ("feature_distance", "fd", "level"),
    "fd_target": ("feature_distance", "fd", "target"),
    "mic_weight": ("mic", "mic", "weight"), "mic_options": ("mic", "mic", ""),
}


def upgrade_legacy_keys(data: dict[str, Any]) -> dict[str, Any]:
    """Move the flat self-training keys of earlier configs (``alpha``, ``fd_weight``, ``mic_weight``, ...) into
    the terms they configure; ``fd_weight: 0`` / ``mic_weight: 0`` remove that term, a positive one adds it.

    Example:
        >>> upgrade_legacy_keys({"name": "dacs", "alpha": 0.999, "fd_weight": 0.005})["terms"]
        {'fd': {'kind': 'feature_distance', 'weight': 0.005}, 'mix': {'kind': 'self_training', 'alpha': 0.999}}
    """
    legacy = {k: data.pop(k) for k in sorted(data, key=lambda k: not k.endswith("_weight")) if k in LEGACY_KEYS}
    if not legacy:
        return data
    terms = normalize_terms(data.get("terms", DEFAULT_TERMS))
    by_kind = {spec["kind"]: name for name, spec in terms.items()}
    for key, value in legacy.items():
        kind, default_name, option = LEGACY_KEYS[key]
        name = by_kind.get(kind)
        if key in ("fd_weight", "mic_weight") and not value:  # λ 0: the term is off
            if name is not None:
                terms.pop(name)
                by_kind.pop(kind)
            continue
        if name is None:
            if key not in ("fd_weight", "mic_weight") and kind != "self_training":
                continue  # options of a term that is off (λ 0), as before
            name = default_name
            spec = {"kind": kind}
            # the feature distance runs before the teacher (DAFormer's order), MIC after the mixed loss
            terms = {name: spec, **terms} if kind == "feature_distance" else {**terms, name: spec}
            by_kind[kind] = name
        if option:
            terms[name][option] = value
        else:
            terms[name].update(value or {})
    data["terms"] = terms
    return data


@dataclass
class DACSConfig(TermsConfig):
    """The ``dacs`` recipe: its terms (default: ``mix``, ClassMix self-training with DACS's values), the source
    loss and the data wrapping. The ``daformer_*``/``hrda_*``/``mic_*``/``vfm_uda_*`` presets add terms.

    Flat keys of earlier versions are still read (`upgrade_legacy_keys`): ``alpha`` is ``terms.mix.alpha``,
    ``fd_weight`` is ``terms.fd.weight``, ``mic_weight`` is ``terms.mic.weight``, and so on.

    Attributes:
        terms: the loss terms (see `TermsConfig`), e.g. ``{"fd": {"kind": "feature_distance"}, "mix":
            {"kind": "self_training", "alpha": 0.999}}``.
        detail_weight: weight of a multi-resolution (HRDA) output's detail-crop loss next to the fused one (0.1).
        crop: random ``WxH`` training crops of source and target (``None``: whole images).
        cat_max_ratio: source crops are redrawn (up to 10 times) while one class covers more than this share.
        flip: random horizontal flip (p 0.5) of source and target crops.
        rcs: rare-class sampling of the source (DAFormer).
        rcs_temperature: T of p(c) ∝ exp((1 − f_c)/T) (0.01).
        rcs_min_pixels: a sample is a candidate for class c with at least this many pixels of it (3000).
        rcs_min_crop_ratio: crops are retried until the sampled class covers ``ratio·min_pixels`` pixels (0.5).

    Example:
        >>> from uda.config import from_dict, RecipeConfig
        >>> cfg = from_dict(RecipeConfig, {"name": "dacs", "alpha": 0.999, "mic_weight": 1.0})
        >>> list(cfg.terms), cfg.terms["mix"]["alpha"], cfg.terms["mic"]["weight"]
        (['mix', 'mic'], 0.999, 1.0)
    """

    name: str = "dacs"
    terms: dict[str, dict[str, Any] | None] | list[dict[str, Any]] = field(default_factory=lambda: dict(DEFAULT_TERMS))
    detail_weight: float = 0.1
    crop: str | None = None
    cat_max_ratio: float = 0.75
    flip: bool = True
    rcs: bool = False
    rcs_temperature: float = 0.01
    rcs_min_pixels: int = 3000
    rcs_min_crop_ratio: float = 0.5

    @classmethod
    def __config_upgrade__(cls, data: dict[str, Any]) -> dict[str, Any]:
        return upgrade_legacy_keys(data)


def dacs_config(**options: Any) -> DACSConfig:
    """A `DACSConfig` from keyword options, the flat keys of `upgrade_legacy_keys` included.

    Example:
        >>> cfg = dacs_config(alpha=0.999, fd_weight=0.005, crop="512x512")
        >>> list(cfg.terms), cfg.crop
        (['fd', 'mix'], '512x512')
    """
    from ..config import from_dict

    return from_dict(DACSConfig, {"name": "dacs", **options}, prefix="recipe")


@register("recipe", "dacs")
class DACS(Recipe):
    """Self-training: the supervised source loss (HRDA: + its detail part), crops/flip/RCS of the data, and terms.

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

    def __init__(self, cfg: DACSConfig, model: torch.nn.Module, *, num_classes: int,
                 feature_info: dict[str, LevelInfo] | None = None) -> None:
        self.detail_weight = cfg.detail_weight
        super().__init__(cfg, model, num_classes=num_classes, feature_info=feature_info)

    def seg_losses(self, out: SegOutput, label: torch.Tensor) -> dict[str, torch.Tensor]:
        """The source loss: pixel-averaged CE (mmseg's, logits resized with ``align_corners=False``), and for a
        multi-resolution output ``detail_weight`` × the detail crop's (``seg_detail``)."""
        return {("seg" if not k else f"seg_{k}"): v for k, v in self.pixel_loss(out, label).items()}

    def wrap_datasets(self, source: Any, target: Any) -> tuple[Any, Any]:
        """Random crops + flip of both domains and, with ``rcs``, rare-class sampling of the source."""
        cfg = self.cfg
        crop = parse_size(cfg.crop, "recipe.crop")
        seed = torch.initial_seed()  # the loop seeds torch with trainer.seed before it builds the recipe and data
        flip = 0.5 if cfg.flip else 0.0
        if crop is not None:
            source = RandomCropFlip(source, size=crop, cat_max_ratio=cfg.cat_max_ratio, flip=flip, seed=seed)
            target = RandomCropFlip(target, size=crop, flip=flip, seed=seed + 7919)
        if cfg.rcs:
            source = RareClassSampling(source, num_classes=self.num_classes, temperature=cfg.rcs_temperature,
                                       min_pixels=cfg.rcs_min_pixels, min_crop_ratio=cfg.rcs_min_crop_ratio,
                                       seed=seed)
        return source, target
