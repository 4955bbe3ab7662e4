"""Multi-level feature alignment (MLFA).

Paper: "Multi-level feature alignment" for UDA semantic segmentation (MLFA; known from its slides only):
features of several stages are concatenated into one multi-level map ``F_m``, optionally reinforced by a
feature reinforcement unit (FRU: group convolution + group normalization), and ONE domain classifier
discriminates it (source 0, target 1) with λ = 0.001.

Design choices (ours, documented in docs/components.md):

- Levels whose spatial sizes differ are resized bilinearly (``align_corners=False``) to a common size: the
  finest level (smallest declared stride, else the largest map) unless ``common_level`` names one.
- The FRU sits between the generator's features and the classifier and is trained with the discriminator
  (it belongs to ``aligner.discriminators``, is frozen in the generator phase, and its parameters go to the
  D optimizer): it "reinforces" the features that the domain classifier reads.
- The optional style term (``style_weight``, default 0) matches per-channel mean/std of ``F_m`` between the
  domains: our reading of the paper's "content and style alignment module".
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .._errors import UdaError
from .._registry import create, register
from ..losses import _functional as Fn
from ..types import LevelInfo, SegOutput
from ._base import (
    Aligner,
    DiscriminatorSpec,
    Size,
    as_level_list,
    build_discriminator,
    check_mode,
    grad_reverse,
    level_channels,
    level_tensor,
)


@register("aligner", "multilevel")
class MultiLevelAligner(Aligner):
    """MLFA: concatenated multi-level features → (FRU) → one domain classifier.

    Args:
        feature_info: the model's level name → :class:`~uda.types.LevelInfo`.
        num_classes: channels of ``logits``/``aux`` if those are chosen as levels.
        levels: the feature levels to concatenate, e.g. ``["layer2", "layer3", "layer4"]`` (a mapping is
            accepted; only its keys are used).
        weight: λ of the adversarial term (the paper's 0.001).
        discriminator: registered name or factory of the domain classifier (default ``"feature"``).
        discriminator_kwargs: extra arguments of the classifier.
        gan_loss: ``"bce"``, ``"lsgan"`` or ``"hinge"``.
        mode: ``"alternate"`` or ``"grl"``.
        fru: put a feature reinforcement unit (``create("module", "fru", in_channels=C, **fru_kwargs)``)
            before the classifier.
        fru_kwargs: arguments of the FRU (e.g. ``out_channels``, ``groups``).
        common_level: level whose spatial size all levels are resized to (default: the finest).
        style_weight: λ of the per-channel mean/std style term on ``F_m`` (0 disables it).

    Example:
        >>> import uda, torch
        >>> from uda.types import LevelInfo, SegOutput
        >>> info = {"layer3": LevelInfo(8, 8), "layer4": LevelInfo(16, 8)}
        >>> al = uda.create("aligner", "multilevel", feature_info=info, levels=["layer3", "layer4"],
        ...                 discriminator="feature_tiny", fru=False)
        >>> f = lambda: SegOutput(torch.randn(2, 4, 16, 16), features={"layer3": torch.randn(2, 8, 16, 16),
        ...                                                            "layer4": torch.randn(2, 16, 16, 16)})
        >>> sorted(al.generator_loss(f(), f())), sorted(al.discriminator_loss(f(), f()))
        (['adv_multilevel'], ['d_multilevel'])
    """

    def __init__(
        self,
        *,
        feature_info: Mapping[str, LevelInfo] | None = None,
        num_classes: int | None = None,
        levels: Sequence[str] | Mapping[str, Any] = ("layer2", "layer3", "layer4"),
        weight: float = 1e-3,
        discriminator: DiscriminatorSpec = "feature",
        discriminator_kwargs: Mapping[str, Any] | None = None,
        gan_loss: str = "bce",
        mode: str = "alternate",
        fru: bool = True,
        fru_kwargs: Mapping[str, Any] | None = None,
        common_level: str | None = None,
        style_weight: float = 0.0,
    ) -> None:
        super().__init__()
        check_mode(mode, gan_loss)
        self.mode = mode
        self.gan_loss = gan_loss
        self.levels = as_level_list(levels)
        if not self.levels:
            raise UdaError("multilevel aligner needs at least one level, e.g. levels=['layer3', 'layer4']")
        self.feature_info = dict(feature_info or {})
        self.weight = weight
        self.style_weight = style_weight
        if common_level is not None and common_level not in self.levels:
            raise UdaError(f"common_level {common_level!r} is not one of the levels {self.levels}; pick one of them")
        self.common_level = common_level
        in_ch = sum(level_channels(lv, feature_info, num_classes) for lv in self.levels)
        self.in_channels = in_ch
        parts: OrderedDict[str, nn.Module] = OrderedDict()
        d_in = in_ch
        if fru:
            fkw = dict(fru_kwargs or {})
            unit = create("module", "fru", in_channels=in_ch, **fkw)
            parts["fru"] = unit
            d_in = int(getattr(unit, "out_channels", fkw.get("out_channels", in_ch)))
        parts["classifier"] = build_discriminator(discriminator, d_in, discriminator_kwargs)
        self.discriminators["multilevel"] = nn.Sequential(parts)

    def _common_size(self, maps: list[torch.Tensor]) -> Size:
        if self.common_level is not None:
            return tuple(maps[self.levels.index(self.common_level)].shape[-2:])  # type: ignore[return-value]
        strides = [self.feature_info[lv].stride if lv in self.feature_info else None for lv in self.levels]
        if all(s is not None for s in strides):
            i = min(range(len(maps)), key=lambda k: strides[k])  # type: ignore[arg-type,return-value]
        else:
            i = max(range(len(maps)), key=lambda k: maps[k].shape[-2] * maps[k].shape[-1])
        return tuple(maps[i].shape[-2:])  # type: ignore[return-value]

    def fuse(self, out: SegOutput) -> torch.Tensor:
        """The multi-level map ``F_m``: chosen levels resized to the common size and concatenated.

        Shape:
            (B, Σ channels, h, w) at the common size.
        """
        maps = [level_tensor(out, lv) for lv in self.levels]
        size = self._common_size(maps)
        maps = [
            m if tuple(m.shape[-2:]) == size else F.interpolate(m, size=size, mode="bilinear", align_corners=False)
            for m in maps
        ]
        return torch.cat(maps, dim=1)

    def _gan(self, logits: torch.Tensor, label: float, for_discriminator: bool) -> torch.Tensor:
        return Fn.gan_loss(logits, label, self.gan_loss, for_discriminator=for_discriminator)

    def _d_loss(self, x_s: torch.Tensor, x_t: torch.Tensor) -> torch.Tensor:
        d = self.discriminators["multilevel"]
        return 0.5 * (self._gan(d(x_s), Fn.SOURCE_LABEL, True) + self._gan(d(x_t), Fn.TARGET_LABEL, True))

    def generator_loss(self, source: SegOutput, target: SegOutput, **sizes: Size | None) -> dict[str, torch.Tensor]:
        """``{"adv_multilevel": ..., "style_multilevel": ...}`` (style only when ``style_weight > 0``).

        In ``alternate`` mode ``adv = λ·L(D(F_m(target)), 0)``; in ``grl`` mode the discriminator loss on
        ``F_m`` of both domains through a gradient reversal of coefficient λ.
        """
        f_t = self.fuse(target)
        need_source = self.mode == "grl" or self.style_weight > 0
        f_s = self.fuse(source) if need_source else None
        losses = {}
        if self.mode == "alternate":
            losses["adv_multilevel"] = self.weight * self._gan(
                self.discriminators["multilevel"](f_t), Fn.SOURCE_LABEL, False
            )
        else:
            losses["adv_multilevel"] = self._d_loss(grad_reverse(f_s, self.weight), grad_reverse(f_t, self.weight))
        if self.style_weight > 0:
            losses["style_multilevel"] = self.style_weight * Fn.style(f_s, f_t)
        return losses

    def discriminator_loss(self, source: SegOutput, target: SegOutput, **sizes: Size | None) -> dict[str, torch.Tensor]:
        """``{"d_multilevel": ½L(D(F_m(src).detach()), 0) + ½L(D(F_m(tgt).detach()), 1)}``; empty in GRL mode."""
        if self.mode == "grl":
            return {}
        return {"d_multilevel": self._d_loss(self.fuse(source).detach(), self.fuse(target).detach())}
