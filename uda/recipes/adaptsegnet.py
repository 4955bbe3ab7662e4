"""AdaptSegNet: "Learning to Adapt Structured Output Space for Semantic Segmentation" (Tsai et al., CVPR 2018).

Algorithm (multi-level output-space alignment, one discriminator per output level):
    repeat: sample (x_s, y_s), x_t
      G phase (D frozen): L = L_seg(x_s) + Σ_l λ_l·BCE(D_l(softmax(P_t^l)), source=0)
      D phase: Σ_l ½BCE(D_l(softmax(P_s^l).detach()), 0) + ½BCE(D_l(softmax(P_t^l).detach()), 1)
    λ_logits = 1e-3, λ_aux = 2e-4; SGD 2.5e-4 (heads 10×), Adam 1e-4 for D.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .._registry import register
from ._base import Recipe, TermsConfig


@dataclass
class AdaptSegNetConfig(TermsConfig):
    """Output levels with their λ, discriminator, GAN loss and update style (``alternate`` or ``grl``)."""

    name: str = "adaptsegnet"
    levels: dict[str, float] = field(default_factory=lambda: {"logits": 1e-3, "aux": 2e-4})
    discriminator: str = "fc"
    gan_loss: Literal["bce", "lsgan", "hinge"] = "bce"
    update: Literal["alternate", "grl"] = "alternate"


@register("recipe", "adaptsegnet")
class AdaptSegNet(Recipe):
    """Source-only loss + adversarial alignment of the softmax outputs (``output`` aligner)."""

    Config = AdaptSegNetConfig
    aligner_name = "output"

    def __init__(self, cfg: AdaptSegNetConfig, model, **kw) -> None:
        super().__init__(cfg, model, **kw)
        self.add_term("aligner", self.build_term(self.aligner_name, levels=cfg.levels, discriminator=cfg.discriminator,
                                                 gan_loss=cfg.gan_loss, mode=cfg.update))
