"""Fourier Domain Adaptation: a training-free translator.

Paper: Yang & Soatto, "FDA: Fourier Domain Adaptation for Semantic Segmentation" (CVPR 2020).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .._errors import UdaError
from .._registry import register
from ._base import Translator


def low_freq_mutate(source: torch.Tensor, target: torch.Tensor, beta: float) -> torch.Tensor:
    """Replace the low-frequency amplitude of ``source`` by that of ``target``, keeping the source phase.

    With ``b = floor(β·min(H, W))``, the swapped region is the centred square of half-size ``b`` of the
    ``fftshift``-ed spectrum: frequencies ``−b…b`` on both axes (side ``2b + 1``, symmetric about DC, so the
    inverse transform is real). ``b = 0`` returns ``source`` itself.

    Args:
        source: (B, C, H, W) images.
        target: (B or 1, C, H, W) images of the same size.
        beta: the band size, 0 ≤ β ≤ 0.5.

    Returns:
        (B, C, H, W) real images (not clamped).
    """
    h, w = source.shape[-2:]
    b = math.floor(beta * min(h, w))
    if b == 0:
        return source
    dims = (-2, -1)
    fs = torch.fft.fftshift(torch.fft.fft2(source.float(), dim=dims), dim=dims)
    ft = torch.fft.fftshift(torch.fft.fft2(target.float(), dim=dims), dim=dims)
    amp, pha = fs.abs(), fs.angle()
    amp_t = ft.abs().expand_as(amp)
    cy, cx = h // 2, w // 2
    amp = amp.clone()
    amp[..., cy - b : cy + b + 1, cx - b : cx + b + 1] = amp_t[..., cy - b : cy + b + 1, cx - b : cx + b + 1]
    mixed = torch.polar(amp, pha)
    out = torch.fft.ifft2(torch.fft.ifftshift(mixed, dim=dims), dim=dims).real
    return out.to(source.dtype)


@register("translator", "fda")
class FDATranslator(Translator):
    """FDA: swap the low-frequency amplitude spectrum of source images with that of target images.

    Args:
        beta: band half-size as a fraction of ``min(H, W)`` (paper: 0.01–0.09); 0 is the exact identity.
        clamp: clamp the result to [0, 1].

    Shape:
        source (B, 3, H, W) in [0, 1]; target (B or 1, 3, H', W') in [0, 1], resized bilinearly to (H, W)
        if it differs; target images are paired with source images by index modulo the target batch.

    Example:
        >>> import uda, torch
        >>> fda = uda.create("translator", "fda", beta=0.05)
        >>> fda(torch.rand(2, 3, 32, 32), torch.rand(2, 3, 40, 40)).shape
        torch.Size([2, 3, 32, 32])
    """

    spec_name = "fda"

    def __init__(self, beta: float = 0.01, *, clamp: bool = True) -> None:
        super().__init__()
        if not 0.0 <= beta <= 0.5:
            raise UdaError(f"FDA beta must be in [0, 0.5] (the paper uses 0.01-0.09), got {beta}")
        self.beta = beta
        self.clamp = clamp
        self.spec_kwargs = {"beta": beta, "clamp": clamp}

    def forward(self, source: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
        if target is None:
            raise UdaError("FDA needs target images: call fda(source, target)")
        if math.floor(self.beta * min(source.shape[-2:])) == 0:
            return source
        if target.shape[-2:] != source.shape[-2:]:
            target = F.interpolate(target, size=source.shape[-2:], mode="bilinear", align_corners=False)
        if target.shape[0] not in (1, source.shape[0]):
            target = target[torch.arange(source.shape[0], device=target.device) % target.shape[0]]
        out = low_freq_mutate(source, target, self.beta)
        return out.clamp(0.0, 1.0) if self.clamp else out

    def extra_repr(self) -> str:
        return f"beta={self.beta}, clamp={self.clamp}"
