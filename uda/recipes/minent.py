"""MinEnt: direct entropy minimization on the target ("ADVENT", Vu et al., CVPR 2019, §3.1).

Algorithm:
    repeat: sample (x_s, y_s), x_t
      L = L_seg(x_s) + Σ_l λ_ent^l · mean_h,w[−Σ_c p_t·log p_t / log C]
    λ_ent main 1e-3, aux 2e-4; no discriminator.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .._registry import register
from ._base import Recipe, TermsConfig


@dataclass
class MinEntConfig(TermsConfig):
    """λ_ent per output level."""

    name: str = "minent"
    levels: dict[str, float] = field(default_factory=lambda: {"logits": 1e-3, "aux": 2e-4})


@register("recipe", "minent")
class MinEnt(Recipe):
    """Source-only loss + λ·target entropy (``minent`` aligner; nothing to freeze, no D phase)."""

    Config = MinEntConfig

    def __init__(self, cfg: MinEntConfig, model, **kw) -> None:
        super().__init__(cfg, model, **kw)
        self.add_term("aligner", self.build_term("minent", levels=cfg.levels))
