"""AdvEnt: "ADVENT: Adversarial Entropy Minimization for Domain Adaptation in Semantic Segmentation"
(Vu et al., CVPR 2019).

Algorithm (adversarial alignment of the weighted self-information maps):
    I = −p·log2(p)/log2(C) per channel, p = softmax of the upsampled logits
    repeat: sample (x_s, y_s), x_t
      G phase (D frozen): L = L_seg(x_s) + Σ_l λ_l·BCE(D_l(I_t^l), source=0)
      D phase: Σ_l ½BCE(D_l(I_s^l.detach()), 0) + ½BCE(D_l(I_t^l.detach()), 1)
    λ_logits = 1e-3, λ_aux = 2e-4.
"""

from __future__ import annotations

from dataclasses import dataclass

from .._registry import register
from .adaptsegnet import AdaptSegNet, AdaptSegNetConfig


@dataclass
class AdvEntConfig(AdaptSegNetConfig):
    """Same fields as AdaptSegNet's."""

    name: str = "advent"


@register("recipe", "advent")
class AdvEnt(AdaptSegNet):
    """AdaptSegNet with entropy maps as discriminator input (``entropy`` aligner)."""

    Config = AdvEntConfig
    aligner_name = "entropy"
