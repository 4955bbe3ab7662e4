"""CycleGAN-translated source only: "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial
Networks" (Zhu et al., ICCV 2017) as a pixel-level adaptation baseline (CyCADA's pixel step).

Algorithm:
    stage 1 (``recipe.translator_iters`` > 0, no ``translator_checkpoint``): train I_S→T, I_T→S, D_S, D_T
      with LSGAN + 10·cycle + 5·identity (the translator's own losses), Adam 2e-4 (0.5, 0.999)
    stage 2: x̄_s = I_S→T(x_s); L = L_seg(x̄_s); SGD as source only
"""

from __future__ import annotations

from dataclasses import dataclass

from .._registry import register
from ._base import Recipe, TranslationConfig


@dataclass
class CycleGANRecipeConfig(TranslationConfig):
    """The translator fields of `uda.recipes.TranslationConfig`."""

    name: str = "cyclegan"


@register("recipe", "cyclegan")
class CycleGANSourceOnly(Recipe):
    """Source-only training on CycleGAN-translated source images (a cache via ``translated_root`` also works)."""

    Config = CycleGANRecipeConfig

    def __init__(self, cfg: CycleGANRecipeConfig, model, **kw) -> None:
        super().__init__(cfg, model, **kw)
        self.build_translator()
