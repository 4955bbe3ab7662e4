"""Typed objects passed between components."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class SegOutput:
    """The output of every segmentation model.

    Attributes:
        logits: main-head logits, shape (B, C, h, w) at the model's output stride.
        aux: auxiliary-head logits (B, C, h, w) or ``None`` when the model has no auxiliary head.
        features: level name → feature map, e.g. ``{"layer1": ..., "layer4": ...}``.
    """

    logits: torch.Tensor
    aux: torch.Tensor | None = None
    features: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass(frozen=True)
class LevelInfo:
    """A feature level's declared channel count and stride (so aligners size discriminators without a forward)."""

    channels: int
    stride: int
