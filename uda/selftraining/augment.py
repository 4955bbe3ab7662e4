"""DACS's strong augmentation of mixed images: colour jitter and Gaussian blur, on the device with kornia.

Papers: Tranheden et al., "DACS: Domain Adaptation via Cross-domain Mixed Sampling", WACV 2021; Hoyer et al.,
"DAFormer", CVPR 2022 (same augmentation: jitter strength 0.2, blur on).
"""

from __future__ import annotations

import math

import kornia.augmentation as K
import kornia.filters as KF
import torch
from torch import nn

from .._errors import ConfigError
from .._registry import register


def blur_kernel_size(n: int) -> int:
    """The original's blur kernel size for an image side of ``n`` pixels: ``ceil(0.1·n)``, made odd downwards.

    Example:
        >>> [blur_kernel_size(n) for n in (512, 1024, 45, 64, 8)]
        [51, 103, 5, 7, 1]
    """
    c = math.ceil(0.1 * n)
    return c if c % 2 else c - 1


@register("augmentation", "dacs_strong")
class StrongAugmentation(nn.Module):
    """Colour jitter then Gaussian blur of a batch of (mixed) images; labels are not touched.

    As in the original code, the two on/off decisions are drawn once per batch from torch's global RNG
    (``U(0, 1)``): colour jitter (kornia ``ColorJitter`` with brightness = contrast = saturation = hue =
    ``jitter``, factors per image) is applied when the draw exceeds ``1 − jitter_p``; blur when its draw exceeds
    ``1 − blur_p``, with σ ~ U(0.15, 1.15) per image and a kernel of about 10% of the image side
    (`blur_kernel_size`). Everything draws from torch's global RNG, so ``torch.manual_seed`` fixes the result.

    The originals' config says ``color_jitter_probability=0.2`` but their code jitters when ``U(0, 1) > 0.2``,
    i.e. with probability 0.8: our default ``jitter_p=0.8`` is what they run.

    Args:
        jitter: colour-jitter strength, 0.2 (DAFormer; the original DACS code runs 0.25).
        jitter_p: probability that the batch is jittered (0.8, the originals' behaviour).
        blur: whether to blur at all.
        blur_p: probability that the batch is blurred (0.5 in the originals).
        sigma: range of the blur's σ.

    Shape:
        image (B, 3, H, W) float in [0, 1] → same.

    Example:
        >>> import torch, uda
        >>> aug = uda.create("augmentation", "dacs_strong")
        >>> _ = torch.manual_seed(0)
        >>> aug(torch.rand(2, 3, 32, 32)).shape
        torch.Size([2, 3, 32, 32])
    """

    def __init__(
        self,
        *,
        jitter: float = 0.2,
        jitter_p: float = 0.8,
        blur: bool = True,
        blur_p: float = 0.5,
        sigma: tuple[float, float] = (0.15, 1.15),
    ) -> None:
        super().__init__()
        for name, p in (("jitter_p", jitter_p), ("blur_p", blur_p)):
            if not 0.0 <= p <= 1.0:
                raise ConfigError(f"dacs_strong augmentation: {name} must lie in [0, 1], got {p}")
        self.jitter, self.jitter_p, self.blur, self.blur_p = float(jitter), float(jitter_p), bool(blur), float(blur_p)
        self.sigma = (float(sigma[0]), float(sigma[1]))
        s = self.jitter
        self.color = K.ColorJitter(brightness=s, contrast=s, saturation=s, hue=s, p=1.0)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        u_jitter, u_blur = torch.rand(2).tolist()  # CPU draws from the global RNG: no device sync
        if self.jitter > 0 and u_jitter > 1.0 - self.jitter_p:
            image = self.color(image)
        if self.blur and u_blur > 1.0 - self.blur_p:
            b, _, h, w = image.shape
            lo, hi = self.sigma
            sig = (torch.rand(b) * (hi - lo) + lo).to(device=image.device, dtype=image.dtype)
            image = KF.gaussian_blur2d(image, (blur_kernel_size(h), blur_kernel_size(w)), sig[:, None].expand(b, 2))
        return image


__all__ = ["StrongAugmentation", "blur_kernel_size"]
