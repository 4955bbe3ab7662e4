"""Shared building blocks of the ``uda`` models: BatchNorm modes, input-size checks, the normalization that
travels inside every state dict, and level probing for wrapped third-party networks."""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from .._errors import UdaError
from ..types import LevelInfo
from ._base import InputNormalizer, Normalization, SegmentationModel

BNMode = Literal["frozen", "moving", "train"]
BN_MODES = ("frozen", "moving", "train")


def sliding_windows(height: int, width: int, crop_hw: tuple[int, int], stride_hw: tuple[int, int]):
    """Window boxes ``(y0, y1, x0, x1)`` covering an image; the last window of a row/column is flush with
    the border, windows larger than the image are clipped to it (sliding-window inference, HRDA's detail crops).

    Example:
        >>> sliding_windows(4, 6, (4, 4), (2, 2))
        [(0, 4, 0, 4), (0, 4, 2, 6)]
    """
    ch, cw = min(crop_hw[0], height), min(crop_hw[1], width)
    sh, sw = stride_hw
    if sh <= 0 or sw <= 0:
        raise UdaError(f"eval.stride must be positive, got {stride_hw[1]}x{stride_hw[0]}")
    ys = list(range(0, height - ch + 1, sh))
    xs = list(range(0, width - cw + 1, sw))
    if ys[-1] + ch < height:
        ys.append(height - ch)
    if xs[-1] + cw < width:
        xs.append(width - cw)
    return [(y, y + ch, x, x + cw) for y in ys for x in xs]


class UdaSegmentationModel(SegmentationModel):
    """`SegmentationModel` plus the behaviour every ``uda`` model shares.

    - ``bn_mode``: ``"frozen"`` (BN affine frozen and statistics frozen: BN layers stay in eval mode even under
      ``model.train()``), ``"moving"`` (affine frozen, running statistics updated in train mode: the behaviour
      of the AdaptSegNet/ADVENT code), ``"train"`` (ordinary trainable BatchNorm, for random-init models).
    - The input normalization is saved *inside* the state dict (``_extra_state``) so that it travels with the
      weights: loading a state dict restores the normalization the weights were trained with.
    - ``min_input_size`` / ``input_divisor``: inputs the network cannot take raise a `UdaError` naming
      the minimum size or the multiple to pad to (checked on Python ints: no host sync).
    """

    min_input_size: int = 1
    input_divisor: int = 1

    def __init__(self, num_classes: int, normalization: Normalization | str, bn_mode: BNMode) -> None:
        if bn_mode not in BN_MODES:
            raise UdaError(f"unknown bn_mode '{bn_mode}'; use one of {', '.join(BN_MODES)}")
        if not isinstance(num_classes, int) or num_classes < 1:
            raise UdaError(f"num_classes must be a positive integer, got {num_classes!r}")
        super().__init__(num_classes, normalization)
        self.bn_mode = bn_mode

    @property
    def output_stride(self) -> int:
        """Stride of `SegOutput.logits` relative to the input (the ``logits`` level)."""
        info = self.feature_info.get("logits")
        return info.stride if info is not None else super().output_stride

    # -- normalization ------------------------------------------------------------------------------------
    @property
    def normalization(self) -> Normalization:
        """The input normalization applied by `forward`."""
        return self.normalizer.norm

    def set_normalization(self, normalization: Normalization | str) -> None:
        """Replace the input normalization (e.g. after loading weights trained with another one)."""
        if isinstance(normalization, str):
            normalization = Normalization.named(normalization)
        device = self.normalizer.mean.device
        self.normalizer = InputNormalizer(normalization).to(device)

    def get_extra_state(self) -> dict[str, Any]:
        n = self.normalizer.norm
        return {"normalization": {"mean": list(n.mean), "std": list(n.std), "scale": n.scale, "bgr": n.bgr}}

    def set_extra_state(self, state: Any) -> None:
        if isinstance(state, dict) and isinstance(state.get("normalization"), dict):
            d = state["normalization"]
            self.set_normalization(
                Normalization(mean=tuple(d["mean"]), std=tuple(d["std"]), scale=float(d["scale"]), bgr=bool(d["bgr"]))
            )

    # -- BatchNorm modes -----------------------------------------------------------------------------------
    def apply_bn_mode(self) -> None:
        """Set ``requires_grad`` of BN affine parameters from `bn_mode` (call after building)."""
        trainable = self.bn_mode == "train"
        for m in self.modules():
            if isinstance(m, _BatchNorm):
                for p in m.parameters(recurse=False):
                    p.requires_grad_(trainable)

    def train(self, mode: bool = True) -> UdaSegmentationModel:
        """Like ``nn.Module.train`` but keeps BatchNorm in eval mode when ``bn_mode == "frozen"``."""
        super().train(mode)
        if mode and self.bn_mode == "frozen":
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self

    # -- input checks ----------------------------------------------------------------------------------------
    def check_input_size(self, x: torch.Tensor) -> None:
        """Raise a `UdaError` for an input of a size the network cannot take."""
        h, w = int(x.shape[-2]), int(x.shape[-1])
        name = type(self).__name__
        if h < self.min_input_size or w < self.min_input_size:
            raise UdaError(
                f"input {w}×{h} (W×H) is too small for {name}: the minimum is "
                f"{self.min_input_size}×{self.min_input_size}; resize or pad the images"
            )
        d = self.input_divisor
        if d > 1 and (h % d or w % d):
            ph, pw = -(-h // d) * d, -(-w // d) * d
            raise UdaError(
                f"input {w}×{h} (W×H) does not fit {name}: height and width must be multiples of {d}; "
                f"resize or pad the images to e.g. {pw}×{ph}"
            )


@torch.no_grad()
def probe_shapes(module: nn.Module, size: int, fn) -> Any:
    """Run ``fn(module, x)`` once on a (1, 3, size, size) zero input in eval mode (restores the mode).

    Used at construction to declare the channels/stride of wrapped third-party networks; the model's
    ``feature_info`` is then known without the user running anything.
    """
    was_training = module.training
    module.eval()
    try:
        dev = next((p.device for p in module.parameters()), torch.device("cpu"))
        return fn(module, torch.zeros(1, 3, size, size, device=dev))
    finally:
        module.train(was_training)


def level_info_from(shapes: dict[str, torch.Size], size: int) -> dict[str, LevelInfo]:
    """Level name → [`LevelInfo`][uda.types.LevelInfo] from probed (1, C, h, w) shapes at a square input of ``size``."""
    return {k: LevelInfo(int(s[1]), max(1, round(size / int(s[-1])))) for k, s in shapes.items()}
