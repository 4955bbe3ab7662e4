"""Source only: the segmentation network trained on labelled source images, no adaptation.

The lower bound every UDA method is compared with (DeepLab-v2 R101 on GTA5 → Cityscapes ≈ 37 mIoU).

Algorithm:
    repeat: sample (x_s, y_s); L_seg = CE(G(x_s), y_s) + 0.1·CE(G_aux(x_s), y_s); G ← G − η∇L_seg
"""

from __future__ import annotations

from dataclasses import dataclass

from .._registry import register
from ._base import Recipe, TermsConfig


@dataclass
class SourceOnlyConfig(TermsConfig):
    """No options beyond the name (and extra ``terms``)."""

    name: str = "source_only"


@register("recipe", "source_only")
class SourceOnly(Recipe):
    """Supervised training on the source domain only (the target batch is drawn but unused)."""

    Config = SourceOnlyConfig
