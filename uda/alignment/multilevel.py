"""Multi-level feature alignment (MLFA).

Paper: "Multi-level feature alignment" for UDA semantic segmentation (MLFA; known from its slides only):
features of several stages are concatenated into one multi-level map ``F_m``, optionally reinforced by a
feature reinforcement unit (FRU: group convolution + group normalization), and ONE domain classifier
discriminates it (source 0, target 1) with λ = 0.001.

Design choices (ours, documented in docs/components.md):

- Levels whose spatial sizes differ are resized bilinearly (``align_corners=False``) to a common size: the
  finest level (smallest declared stride, else the largest map) unless ``common_level`` names one.
- The FRU sits between the generator's features and the classifier. The paper can be read two ways, so its
  side is an option (``fru_side``): ``"discriminator"`` (the default) trains it with the domain classifier
  (it belongs to ``aligner.discriminators``, is frozen in the generator phase, its parameters go to the D
  optimizer) so it "reinforces" the features the classifier reads; ``"generator"`` trains it with the
  segmentation network (its parameters go to the generator optimizer; the classifier sees its output,
  detached in the discriminator phase).
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
    AdversarialAligner,
    DiscriminatorSpec,
    Memo,
    Size,
    as_level_list,
    build_discriminator,
    level_channels,
    level_tensor,
)

FRU_SIDES = ("discriminator", "generator")


@register("aligner", "multilevel")
class MultiLevelAligner(AdversarialAligner):
    """MLFA: concatenated multi-level features → (FRU) → one domain classifier.

    Args:
        feature_info: the model's level name → [`LevelInfo`][uda.types.LevelInfo].
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
        fru_side: train the FRU with the discriminator (``"discriminator"``) or with the segmentation
            network (``"generator"``).
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
        fru_side: str = "discriminator",
    ) -> None:
        super().__init__(gan_loss=gan_loss, mode=mode)
        if fru_side not in FRU_SIDES:
            raise UdaError(f"fru_side {fru_side!r} is not one of {', '.join(FRU_SIDES)}; pick one of them")
        self.fru_side = fru_side
        self.levels = as_level_list(levels)
        if not self.levels:
            raise UdaError("multilevel aligner needs at least one level, e.g. levels=['layer3', 'layer4']")
        self.feature_info = dict(feature_info or {})
        self.weight = weight
        self.weights = {"multilevel": weight}
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
            if fru_side == "generator":
                self.fru = unit
            else:
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

    def d_maps(self, out: SegOutput, size: Size | None) -> dict[str, torch.Tensor]:
        """``{"multilevel": F_m}`` (through the FRU first when it is on the generator side)."""
        f = self.fuse(out)
        return {"multilevel": self.fru(f) if self.fru_side == "generator" and "fru" in self._modules else f}

    def generator_parameters(self) -> list[nn.Parameter]:
        """The FRU's parameters when it is on the generator side, else none."""
        return list(self.fru.parameters()) if "fru" in self._modules else []

    def generator_loss(self, source: SegOutput, target: SegOutput, *, source_size: Size | None = None,
                       target_size: Size | None = None, memo: Memo | None = None) -> dict[str, torch.Tensor]:
        """``{"adv_multilevel": ..., "style_multilevel": ...}`` (style only when ``style_weight > 0``).

        In ``alternate`` mode ``adv = λ·L(D(F_m(target)), 0)``; in ``grl`` mode the discriminator loss on
        ``F_m`` of both domains through a gradient reversal of coefficient λ.
        """
        losses = super().generator_loss(source, target, source_size=source_size, target_size=target_size, memo=memo)
        if self.style_weight > 0:
            losses["style_multilevel"] = self.style_weight * Fn.style(self.fuse(source), self.fuse(target))
        return losses
