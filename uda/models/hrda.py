"""HRDA: multi-resolution training with a learned scale attention, around any ``uda`` segmentation model.

Hoyer, Dai, Van Gool, "HRDA: Context-Aware High-Resolution Domain-Adaptive Semantic Segmentation", ECCV 2022.

Training (``model.train()``): the input crop (1024×1024 in the paper) is seen twice by the same network:

- the **context** view: the whole crop downscaled by ``context_scale`` (0.5), giving low-resolution (LR) logits;
- the **detail** view: a ``detail_size`` (512×512) crop at full resolution, at a random position (torch's global
  RNG) whose coordinates are multiples of the LR logits' stride in input pixels (8 for DAFormer), giving
  high-resolution (HR) logits;
- a **scale attention** head (a DAFormer-style head with a 1×1 fusion) on the context features, class-wise
  sigmoid, set to zero outside the detail crop;
- fused = up(att) · HR + up((1 − att) · LR), where HR is placed into the crop's box and ``up`` is bilinear ×2
  (as in the original code, the attention and ``(1 − att) · LR`` are upsampled, which is
  ``att · HR + (1 − att) · up(LR)`` up to the interpolation of the product).

The output [HRDAOutput][uda.models.hrda.HRDAOutput] carries the fused logits (stride 4 of the input crop), the
detail logits and the detail box, so that a recipe adds the detail loss (weight 0.1) on the cropped label.

Inference (``model.eval()``, no ``detail_box``): LR on the downscaled input, HR by overlapping sliding windows of
``detail_size`` with stride ``detail_size // 2`` over the full-resolution input (averaged logits), attention
everywhere. Whole images are then processed by the evaluation's sliding window (1024 window, 512 stride:
``EvalConfig(mode="slide", crop="1024x1024", stride="512x512")`` in ``uda.evaluation.infer``), as in the paper.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .._errors import UdaError
from .._registry import register
from ..types import LevelInfo, SegOutput
from ._base import SegmentationModel
from ._common import UdaSegmentationModel, sliding_windows
from ._hrda_views import ContextEncoder
from .daformer import DAFormerHead, load_pretrained, param_groups_no_decay, split_checkpoint

__all__ = ["HRDA", "HRDAOutput", "hrda", "hrda_mitb5", "hrda_tiny"]


@dataclass
class HRDAOutput(SegOutput):
    """A [SegOutput][uda.types.SegOutput] with HRDA's extra predictions.

    Attributes:
        logits: fused logits (B, C, H/s, W/s) of the whole input (s = the base model's output stride).
        features: the context (low-resolution) features of the base model, plus ``logits``.
        detail_logits: HR logits of the detail crop (B, C, h/s, w/s), ``None`` in sliding-window inference.
        detail_box: the detail crop ``(y0, y1, x0, x1)`` in input pixels, ``None`` in sliding-window inference.
        context_logits: LR logits (B, C, H/(2s), W/(2s)) of the downscaled input.
        attention: scale attention (B, C, H/(2s), W/(2s)) in [0, 1], zero outside the detail crop.
    """

    detail_logits: torch.Tensor | None = None
    detail_box: tuple[int, int, int, int] | None = None
    context_logits: torch.Tensor | None = None
    attention: torch.Tensor | None = None


class HRDA(UdaSegmentationModel):
    """HRDA multi-resolution wrapper (Hoyer et al., ECCV 2022) around a base segmentation model.

    The base model computes both views (shared weights); the wrapper adds the scale-attention head. Parameter
    names: ``base.*`` (the base model) and ``scale_attention.*``.

    Args:
        base: the segmentation model (e.g. ``daformer_mitb5``): its ``forward_normalized`` gives logits and
            features; its normalization is the wrapper's.
        context_scale: downscale of the context view (0.5).
        detail_size: side of the square detail crop in input pixels (512).
        attention_levels: base feature levels fed to the attention head (default: every level but ``logits``
            and ``aux``).
        attention_embed_dim: attention head channels (default: the base head's ``channels``, else 256).
        attention_classwise: one attention map per class (HRDA) or a single one.
        crop_divisible: detail-crop coordinates are multiples of it (default: the LR logits' stride in input
            pixels, 8 for DAFormer).

    Shape:
        - input: (B, 3, H, W) RGB in [0, 1], H and W multiples of ``crop_divisible``
        - logits: (B, num_classes, H/s, W/s)

    Example:
        >>> import torch, uda
        >>> m = uda.create("model", "hrda_tiny", num_classes=4)
        >>> out = m(torch.rand(1, 3, 64, 64))  # train mode: a random 32×32 detail crop
        >>> out.logits.shape, out.detail_logits.shape, out.context_logits.shape
        (torch.Size([1, 4, 16, 16]), torch.Size([1, 4, 8, 8]), torch.Size([1, 4, 8, 8]))
    """

    def __init__(
        self,
        base: SegmentationModel,
        *,
        context_scale: float = 0.5,
        detail_size: int = 512,
        attention_levels: list[str] | None = None,
        attention_embed_dim: int | None = None,
        attention_classwise: bool = True,
        crop_divisible: int | None = None,
    ) -> None:
        if not isinstance(base, SegmentationModel):
            raise UdaError(f"hrda: base must be a uda segmentation model, got {type(base).__name__}")
        if not 0 < context_scale <= 1:
            raise UdaError(f"hrda: context_scale must be in (0, 1], got {context_scale}")
        super().__init__(base.num_classes, "none", getattr(base, "bn_mode", "train"))
        self.base = base
        self.context_scale = float(context_scale)
        self.detail_size = int(detail_size)
        levels = attention_levels or [k for k in base.feature_info if k not in ("logits", "aux")]
        base.check_levels(levels)
        self.attention_levels = list(levels)
        if attention_embed_dim is None:
            attention_embed_dim = int(getattr(getattr(base, "head", None), "channels", 256))
        self.scale_attention = DAFormerHead(
            in_channels=[base.feature_info[k].channels for k in levels],
            num_classes=base.num_classes if attention_classwise else 1,
            embed_dim=attention_embed_dim,
            fusion="conv",
        )
        self.os = base.output_stride
        self.lr_stride = round(self.os / self.context_scale)
        self.crop_divisible = int(crop_divisible or self.lr_stride)
        if self.detail_size % self.crop_divisible:
            raise UdaError(f"hrda: detail_size {detail_size} must be a multiple of {self.crop_divisible}")
        self.input_divisor = self.crop_divisible
        self.min_input_size = max(self.crop_divisible, -(-getattr(base, "min_input_size", 1) // self.context_scale))
        self.min_input_size = int(self.min_input_size)
        self.feature_info = {
            k: LevelInfo(i.channels, round(i.stride / self.context_scale))
            for k, i in base.feature_info.items()
            if k not in ("logits", "aux")
        }
        self.feature_info["logits"] = LevelInfo(base.num_classes, self.os)
        self.backbone_prefixes = tuple("base." + p for p in getattr(base, "backbone_prefixes", ()))
        self.head_prefixes = (*("base." + p for p in getattr(base, "head_prefixes", ())), "scale_attention.")
        self.checkpoint_key = "model"
        self.apply_bn_mode()
        self.train()

    # -- normalization belongs to the base model --------------------------------------------------------------
    @property
    def normalization(self):
        return self.base.normalizer.norm

    def set_normalization(self, normalization) -> None:
        self.base.set_normalization(normalization)

    def get_extra_state(self) -> dict[str, Any]:
        get = getattr(self.base, "get_extra_state", None)
        return get() if get is not None else {}

    def set_extra_state(self, state: Any) -> None:
        if isinstance(state, dict) and state.get("normalization"):
            self.base.set_extra_state(state)

    # -- forward ---------------------------------------------------------------------------------------------
    def random_detail_box(self, height: int, width: int) -> tuple[int, int, int, int]:
        """A detail crop ``(y0, y1, x0, x1)`` with coordinates divisible by ``crop_divisible`` (torch's RNG)."""
        ch, cw = min(self.detail_size, height), min(self.detail_size, width)
        d = self.crop_divisible
        y0 = int(torch.randint(0, max(1, (height - ch + 1) // d), ())) * d
        x0 = int(torch.randint(0, max(1, (width - cw + 1) // d), ())) * d
        return y0, y0 + ch, x0, x0 + cw

    def forward(self, x: torch.Tensor, detail_box: tuple[int, int, int, int] | None = None) -> HRDAOutput:
        """Fused multi-resolution prediction of RGB images in [0, 1].

        Args:
            x: (B, 3, H, W) images.
            detail_box: the detail crop ``(y0, y1, x0, x1)``; default: random in train mode, sliding windows over
                the whole input in eval mode.

        Returns:
            An [HRDAOutput][uda.models.hrda.HRDAOutput].
        """
        if x.dim() != 4 or x.shape[1] != 3:
            raise UdaError(f"expected images of shape (B, 3, H, W), got {tuple(x.shape)}")
        return self._forward(self.base.normalizer(x), detail_box)

    def forward_normalized(self, x: torch.Tensor) -> HRDAOutput:
        return self._forward(x, None)

    def _base(self, x: torch.Tensor) -> SegOutput:
        return self.base.forward_normalized(x)

    def _forward(self, x: torch.Tensor, box: tuple[int, int, int, int] | None) -> HRDAOutput:
        self.check_input_size(x)
        h, w = int(x.shape[-2]), int(x.shape[-1])
        lr_out = self._base(F.interpolate(x, scale_factor=self.context_scale, mode="bilinear", align_corners=False))
        lr = lr_out.logits
        lr_feats = [lr_out.features[k] for k in self.attention_levels]
        att = torch.sigmoid(self.scale_attention(lr_feats))
        if att.shape[-2:] != lr.shape[-2:]:
            att = F.interpolate(att, size=lr.shape[-2:], mode="bilinear", align_corners=False)
        if box is None and self.training:
            box = self.random_detail_box(h, w)
        os = self.os
        size_hr = (h // os, w // os)
        detail = None
        if box is not None:
            y0, y1, x0, x1 = (int(v) for v in box)
            d = self.crop_divisible
            if min(y0, y1, x0, x1) < 0 or y1 > h or x1 > w or y0 >= y1 or x0 >= x1 or any(v % d for v in box):
                raise UdaError(
                    f"hrda: detail_box {tuple(box)} must lie inside {h}×{w} with coordinates divisible by {d}"
                )
            box = (y0, y1, x0, x1)
            detail = self._base(x[:, :, y0:y1, x0:x1]).logits
            s = self.lr_stride
            mask = att.new_zeros(att.shape[0], 1, *att.shape[-2:])
            mask[:, :, y0 // s : y1 // s, x0 // s : x1 // s] = 1
            att = att * mask
            hr = detail.new_zeros(detail.shape[0], detail.shape[1], *size_hr)
            hr[:, :, y0 // os : y1 // os, x0 // os : x1 // os] = _fit(detail, ((y1 - y0) // os, (x1 - x0) // os))
        else:
            hr = self._slide_hr(x, size_hr)
        # bilinear to the HR grid: the original's ×(1/context_scale) resize when the sizes are exact
        up_lr = F.interpolate((1 - att) * lr, size=size_hr, mode="bilinear", align_corners=False)
        up_att = F.interpolate(att, size=size_hr, mode="bilinear", align_corners=False)
        fused = up_att * hr + up_lr
        feats = {k: v for k, v in lr_out.features.items() if k in self.feature_info}
        feats["logits"] = fused
        return HRDAOutput(
            logits=fused,
            aux=None,
            features=feats,
            detail_logits=detail,
            detail_box=box,
            context_logits=lr,
            attention=att,
        )

    def _slide_hr(self, x: torch.Tensor, size_hr: tuple[int, int]) -> torch.Tensor:
        h, w = x.shape[-2:]
        c = self.detail_size
        boxes = sliding_windows(h, w, (c, c), (c // 2, c // 2))
        crops = torch.cat([x[:, :, y0:y1, x0:x1] for y0, y1, x0, x1 in boxes], dim=0)
        logits = self._base(crops).logits
        b, os = x.shape[0], self.os
        acc = logits.new_zeros(b, logits.shape[1], *size_hr)
        count = logits.new_zeros(1, 1, *size_hr)
        for i, (y0, y1, x0, x1) in enumerate(boxes):
            win = _fit(logits[i * b : (i + 1) * b], ((y1 - y0) // os, (x1 - x0) // os))
            acc[:, :, y0 // os : y1 // os, x0 // os : x1 // os] += win
            count[:, :, y0 // os : y1 // os, x0 // os : x1 // os] += 1
        return acc / count

    # -- optimizer and weights -------------------------------------------------------------------------------
    def feature_network(self) -> nn.Module:
        """The context view (`ContextEncoder`): the feature distance compares HRDA's low-resolution features."""
        return ContextEncoder(self)

    def head_parameters(self) -> list[nn.Parameter]:
        """The base model's heads and the scale-attention head."""
        return list(self.base.head_parameters()) + list(self.scale_attention.parameters())

    def param_groups(self, lr: float, head_lr_mult: float = 10.0, *, weight_decay: float | None = None) -> list[dict]:
        """As [DAFormer.param_groups][uda.models.daformer.DAFormer.param_groups], with the attention head among
        the heads."""
        return param_groups_no_decay(self, super().param_groups(lr, head_lr_mult), weight_decay)

    def translate_foreign_state_dict(self, sd: dict[str, torch.Tensor]) -> tuple[dict, str, str | None] | None:
        """Map released HRDA/MIC checkpoints (``model.``/``ema_model.`` prefixes) and their bare mmseg layout:
        ``backbone.*`` and ``decode_head.head.*`` go to the base model (through its own translation),
        ``decode_head.scale_attention.*`` to ``scale_attention.*``. A DAFormer checkpoint (no HRDA head) maps onto
        the base model; strict loading then reports the attention head as missing."""
        released = any(k.startswith(("model.", "ema_model.")) for k in sd)
        sd = split_checkpoint(sd, self.checkpoint_key)
        if not any(k.startswith("decode_head.") for k in sd):
            return None
        hrda_head = any(k.startswith(("decode_head.head.", "decode_head.scale_attention.")) for k in sd)
        base_sd, out = {}, {}
        for k, v in sd.items():
            if k.startswith("decode_head.scale_attention."):
                out["scale_attention." + k[len("decode_head.scale_attention.") :]] = v
            elif k.startswith("decode_head.head."):
                base_sd["decode_head." + k[len("decode_head.head.") :]] = v
            elif k.startswith("decode_head.") and hrda_head:
                out[k] = v  # reported as unexpected
            else:  # the encoder, or a single-scale (DAFormer) head: the attention head is then missing
                base_sd[k] = v
        translate = getattr(self.base, "translate_foreign_state_dict", None)
        got = translate(base_sd) if translate is not None else None
        if got is None:
            return None
        out |= {"base." + k: v for k, v in got[0].items()}
        return out, "hrda_release" if released else "mmseg_hrda", got[2]


def _fit(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Logits resized (bilinear) to ``size`` when a base model's output is not exactly input / stride."""
    if tuple(logits.shape[-2:]) == tuple(size):
        return logits
    return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)


@register("model", "hrda")
def hrda(
    num_classes: int = 19,
    *,
    base: str | SegmentationModel = "daformer_mitb5",
    base_kwargs: dict | None = None,
    pretrained: str | None = None,
    pretrained_key: str = "model",
    context_scale: float = 0.5,
    detail_size: int = 512,
    attention_embed_dim: int | None = None,
    attention_classwise: bool = True,
    normalization: str | None = None,
) -> HRDA:
    """HRDA around a registered base model (default ``daformer_mitb5``, the paper's network) or a model object.

    Args:
        num_classes: output classes (ignored when ``base`` is a model object).
        base: a registered model name or a model.
        base_kwargs: keyword arguments of the base model's factory.
        pretrained: a local file: a released HRDA/MIC checkpoint, its bare mmseg layout, a SegFormer
            ``mit_b*.pth`` (encoder only) or our own checkpoint; ``None`` = random init.
        pretrained_key: ``"model"`` (student, default) or ``"ema_model"`` (EMA teacher) of a released checkpoint.
        context_scale: context downscale (0.5).
        detail_size: detail crop side (512).
        attention_embed_dim: attention head channels (default: the base head's).
        attention_classwise: class-wise attention (HRDA) or one map.
        normalization: input normalization (default: the base model's).

    Returns:
        An [HRDA][uda.models.hrda.HRDA].
    """
    if isinstance(base, str):
        from .._registry import create

        base = create("model", base, num_classes=num_classes, **(base_kwargs or {}))
    model = HRDA(
        base,
        context_scale=context_scale,
        detail_size=detail_size,
        attention_embed_dim=attention_embed_dim,
        attention_classwise=attention_classwise,
    )
    if normalization is not None:
        model.set_normalization(normalization)
    if pretrained:
        load_pretrained(model, pretrained, pretrained_key, normalization is not None)
    return model


_VARIANT_ARGS = """

    Args:
        num_classes: output classes.
        pretrained: a local weights file (see ``hrda``), or ``None``.
        pretrained_key: ``"model"`` or ``"ema_model"``.
        detail_size: detail crop side.
        normalization: input normalization (default ``"imagenet"``).
        activation_checkpointing: recompute the encoder blocks in the backward pass (saves memory).

    Returns:
        An [HRDA][uda.models.hrda.HRDA].
"""


def _variant(name: str, base: str, default_detail: int, summary: str, example: str = ""):
    def factory(
        num_classes: int = 19,
        *,
        pretrained: str | None = None,
        pretrained_key: str = "model",
        detail_size: int = default_detail,
        normalization: str | None = None,
        activation_checkpointing: bool = False,
    ) -> HRDA:
        return hrda(num_classes, base=base, base_kwargs={"activation_checkpointing": activation_checkpointing},
                    pretrained=pretrained, pretrained_key=pretrained_key, detail_size=detail_size,
                    normalization=normalization)

    factory.__name__ = factory.__qualname__ = name
    factory.__doc__ = summary + _VARIANT_ARGS + example
    return register("model", name)(factory)


hrda_mitb5 = _variant("hrda_mitb5", "daformer_mitb5", 512, "HRDA with DAFormer MiT-B5 (the paper's network; MiT "
                      "under the NVIDIA Source Code License, non-commercial); 512x512 detail crops.")
hrda_tiny = _variant("hrda_tiny", "daformer_tiny", 32, """Tiny HRDA (``daformer_tiny`` base, 32x32 detail crops) for tests and CPU demos; inputs at least 64x64,
    multiples of 8.""", """
    Example:
        >>> import torch, uda
        >>> m = uda.create("model", "hrda_tiny", num_classes=3).eval()
        >>> m(torch.rand(1, 3, 64, 96)).logits.shape  # sliding-window HR branch
        torch.Size([1, 3, 16, 24])
""")
