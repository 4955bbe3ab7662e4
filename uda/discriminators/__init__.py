"""Discriminators (kind ``discriminator``): ``fc`` (AdaptSegNet), ``feature`` (shallow, for feature maps),
``patchgan`` (70×70, pix2pix/CycleGAN), each with ``spectral_norm=True`` and a ``_tiny`` variant."""

from .fc import FCDiscriminator, FeatureDiscriminator
from .patchgan import PatchGANDiscriminator

__all__ = ["FCDiscriminator", "FeatureDiscriminator", "PatchGANDiscriminator"]
