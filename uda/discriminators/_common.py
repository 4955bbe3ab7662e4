"""Shared helpers of the discriminators: the conv builder with optional spectral normalization."""

from __future__ import annotations

from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm


def conv(
    in_ch: int, out_ch: int, kernel: int, stride: int, padding: int, *, bias: bool = True, sn: bool = False
) -> nn.Conv2d:
    """A ``Conv2d``, wrapped in spectral normalization when ``sn`` (parameter count unchanged)."""
    layer = nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=padding, bias=bias)
    return _spectral_norm(layer) if sn else layer
