"""MIC's random block masking of target images (masked image consistency).

Paper: Hoyer et al., "MIC: Masked Image Consistency for Context-Enhanced Domain Adaptation", CVPR 2023
(64×64 blocks, mask ratio 0.7).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .._errors import ConfigError
from .._registry import register


@register("mixing", "block_mask")
class BlockMasking(nn.Module):
    """Zero random ``block × block`` patches of each image; returns the masked images and the keep-mask.

    The image is divided into a ``round(H / block) × round(W / block)`` grid; the grid mask is upsampled to the
    image (nearest). With ``exact=False`` (MIC's code) each block is masked independently with probability
    ``ratio``; with ``exact=True`` exactly ``round(ratio · blocks)`` blocks of every image are masked. Draws come
    from torch's global RNG on the images' device.

    Args:
        ratio: fraction of masked blocks, 0.7.
        block: block side in pixels, 64.
        exact: mask exactly ``round(ratio · blocks)`` blocks per image instead of Bernoulli draws.

    Calling it returns:
        The pair ``(masked, keep)``, the masked images (B, C, H, W) and the (B, 1, H, W) float keep-mask
        (1 = visible).

    Example:
        >>> import torch, uda
        >>> bm = uda.create("mixing", "block_mask", ratio=0.5, block=4, exact=True)
        >>> masked, keep = bm(torch.ones(2, 3, 8, 8))
        >>> keep.mean().item(), bool((masked == keep).all())
        (0.5, True)
    """

    def __init__(self, *, ratio: float = 0.7, block: int = 64, exact: bool = False) -> None:
        super().__init__()
        if not 0.0 <= ratio <= 1.0:
            raise ConfigError(f"block_mask: ratio must lie in [0, 1], got {ratio}")
        if block < 1:
            raise ConfigError(f"block_mask: block must be >= 1 pixel, got {block}")
        self.ratio, self.block, self.exact = float(ratio), int(block), bool(exact)

    @torch.no_grad()
    def mask(self, image: torch.Tensor) -> torch.Tensor:
        """The (B, 1, H, W) keep-mask for a batch of images."""
        b, _, h, w = image.shape
        gh, gw = max(1, round(h / self.block)), max(1, round(w / self.block))
        u = torch.rand(b, gh * gw, device=image.device)
        if self.exact:
            n_mask = round(self.ratio * gh * gw)
            rank = u.argsort(dim=1).argsort(dim=1)
            keep = (rank >= n_mask).float()
        else:
            keep = (u > self.ratio).float()
        return F.interpolate(keep.view(b, 1, gh, gw), size=(h, w), mode="nearest").to(image.dtype)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        keep = self.mask(image)
        return image * keep, keep


__all__ = ["BlockMasking"]
