"""FDA: "Fourier Domain Adaptation for Semantic Segmentation" (Yang & Soatto, CVPR 2020).

Algorithm (training-free translation on the fly):
    repeat: sample (x_s, y_s), x_t
      x̄_s = F⁻¹[ |F(x_t)| on the centred low-frequency square of half-size β·min(H, W), |F(x_s)| elsewhere;
              phase of F(x_s) ]
      L = L_seg(x̄_s) (+ λ_ent · entropy of the target prediction, off by default)
    β = 0.01 by default (the paper's single-scale best: 0.01–0.09).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .._registry import register
from ._base import Recipe, TranslationConfig


@dataclass
class FDAConfig(TranslationConfig):
    """FDA translator (β in ``translator_options``) and the optional target entropy weight."""

    name: str = "fda"
    translator: str = "fda"
    translator_options: dict[str, Any] = field(default_factory=lambda: {"beta": 0.01})
    entropy_weight: float = 0.0


@register("recipe", "fda")
class FDA(Recipe):
    """Source-only loss on FDA-translated source images; optional MinEnt term on the target."""

    Config = FDAConfig

    def __init__(self, cfg: FDAConfig, model, **kw) -> None:
        super().__init__(cfg, model, **kw)
        self.build_translator()
        if cfg.entropy_weight > 0:
            self.add_term("aligner", self.build_term("minent", levels={"logits": cfg.entropy_weight}))
