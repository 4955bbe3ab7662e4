"""GPU augmentation with kornia: image and label transformed together on the batch's device.

Off by default in the paper presets (AdaptSegNet/ADVENT use none); a recipe or config turns it on with
``data.augmentation: standard``. Geometric ops sample once and move image and mask alike
(``AugmentationSequential(data_keys=["input", "mask"])``), masks with nearest resampling, so labels stay exact
integers and 255 stays 255.
"""

from __future__ import annotations

import kornia.augmentation as K
import torch
from torch import nn

from .._registry import register


@register("augmentation", "none")
class NoAugmentation(nn.Module):
    """Identity: returns ``(image, label)`` unchanged."""

    def forward(
        self, image: torch.Tensor, label: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        return image, label


@register("augmentation", "standard")
class StandardAugmentation(nn.Module):
    """Random resized crop (scale jitter), horizontal flip, colour jitter and Gaussian blur, with kornia.

    Args:
        scale: area range of the random resized crop (the output keeps the input size).
        ratio: width/height range of the crop; default ``(0.75, 1.33)`` × the input's aspect ratio.
        flip: probability of a horizontal flip.
        jitter: ColorJitter strength (brightness, contrast, saturation; hue is a quarter of it).
        jitter_p: probability of colour jitter.
        blur_p: probability of a Gaussian blur (σ in 0.1..2).

    Shape:
        image (B, 3, H, W) float in [0, 1]; label (B, H, W) int64 trainIds (or ``None``). Same shapes out.

    Example:
        >>> import torch, uda
        >>> aug = uda.create("augmentation", "standard")
        >>> img, lab = aug(torch.rand(2, 3, 32, 64), torch.randint(0, 19, (2, 32, 64)))
        >>> img.shape, lab.dtype
        (torch.Size([2, 3, 32, 64]), torch.int64)
    """

    def __init__(
        self,
        *,
        scale: tuple[float, float] = (0.5, 1.0),
        ratio: tuple[float, float] | None = None,
        flip: float = 0.5,
        jitter: float = 0.3,
        jitter_p: float = 0.8,
        blur_p: float = 0.2,
    ) -> None:
        super().__init__()
        self.scale, self.ratio = tuple(scale), (tuple(ratio) if ratio is not None else None)
        self.flip, self.jitter, self.jitter_p, self.blur_p = flip, jitter, jitter_p, blur_p
        self._pipes = nn.ModuleDict()

    def _pipe(self, h: int, w: int) -> K.AugmentationSequential:
        key = f"{h}x{w}"
        if key not in self._pipes:
            j = self.jitter
            ratio = self.ratio or (0.75 * w / h, 1.33 * w / h)
            self._pipes[key] = K.AugmentationSequential(
                K.RandomResizedCrop((h, w), scale=self.scale, ratio=ratio, p=1.0),
                K.RandomHorizontalFlip(p=self.flip),
                K.ColorJitter(j, j, j, j / 4, p=self.jitter_p),
                K.RandomGaussianBlur((5, 5), (0.1, 2.0), p=self.blur_p),
                data_keys=["input", "mask"],
            )
        return self._pipes[key]

    def forward(
        self, image: torch.Tensor, label: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        h, w = image.shape[-2:]
        pipe = self._pipe(h, w)
        if label is None:
            return pipe(image, torch.zeros_like(image[:, :1]))[0].clamp_(0, 1), None
        mask = label[:, None].to(image.dtype)  # (B, 1, H, W); nearest keeps the integer values
        out, m = pipe(image, mask)
        return out.clamp_(0, 1), m[:, 0].round().long()
