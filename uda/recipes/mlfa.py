"""MLFA: multi-level feature alignment with a feature reinforcement unit (FRU) on CycleGAN-translated source.

Algorithm 1 of the MLFA paper (Zhang, Zhao & Zhang, Tongji University), λ = 0.001:
    stage 1: train I_S→T, I_T→S (CycleGAN) — or reuse ``translator_checkpoint`` / a cache ``translated_root``
    stage 2, repeat: sample (x_s, y_s), x_t; x̄_s = I_S→T(x_s)
      F_m = concat(layer2, layer3, layer4) → FRU → D (source 0, target 1)
      G phase (D frozen): L = L_seg(x̄_s) + λ·BCE(D(F_m(x_t)), 0)
      D phase: ½BCE(D(F_m(x̄_s).detach()), 0) + ½BCE(D(F_m(x_t).detach()), 1)
Ablations: ``translation=false`` (no stage 1), ``feature_alignment="none"``, ``feature_alignment="output"``
(AdaptSegNet output-level alignment instead of features).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from .._registry import register
from ._base import Recipe, TranslationConfig, build_aligner


@dataclass
class MLFAConfig(TranslationConfig):
    """MLFA's levels, λ, FRU, discriminator, update style and the ablation switches."""

    name: str = "mlfa"
    translator_iters: int = 5000
    levels: list[str] = field(default_factory=lambda: ["layer2", "layer3", "layer4"])
    weight: float = 1e-3
    fru: bool = True
    fru_options: dict[str, Any] = field(default_factory=dict)
    discriminator: str = "feature"
    gan_loss: Literal["bce", "lsgan", "hinge"] = "bce"
    update: Literal["alternate", "grl"] = "alternate"
    style_weight: float = 0.0
    translation: bool = True
    feature_alignment: Literal["multilevel", "output", "none"] = "multilevel"
    output_levels: dict[str, float] = field(default_factory=lambda: {"logits": 1e-3, "aux": 2e-4})


@register("recipe", "mlfa")
class MLFA(Recipe):
    """Translated source + multi-level feature alignment (``multilevel`` aligner with FRU)."""

    Config = MLFAConfig

    def __init__(self, cfg: MLFAConfig, model, **kw) -> None:
        super().__init__(cfg, model, **kw)
        if cfg.translation:
            self.build_translator()
        if cfg.feature_alignment == "multilevel":
            if hasattr(self.model, "check_levels"):
                self.model.check_levels(cfg.levels)
            self.aligner = build_aligner(self, "multilevel", levels=cfg.levels, weight=cfg.weight, fru=cfg.fru,
                                         fru_kwargs=cfg.fru_options, discriminator=cfg.discriminator,
                                         gan_loss=cfg.gan_loss, mode=cfg.update, style_weight=cfg.style_weight)
        elif cfg.feature_alignment == "output":
            self.aligner = build_aligner(self, "output", levels=cfg.output_levels, gan_loss=cfg.gan_loss,
                                         mode=cfg.update)
