"""Loss terms (kind ``loss``): small modules over a functional core.

Papers: AdaptSegNet, ADVENT (entropy, MinEnt), CycleGAN (LSGAN, cycle, identity); see ``docs/components.md``.
"""

from ._functional import (
    GAN_LOSSES,
    IGNORE_INDEX,
    SOURCE_LABEL,
    TARGET_LABEL,
    channel_stats,
    cycle_l1,
    entropy_map,
    gan_loss,
    identity_l1,
    minent,
    seg_ce,
    self_information,
    style,
)
from .losses import (
    BCEGANLoss,
    CycleL1Loss,
    EntropyMap,
    GANLoss,
    HingeGANLoss,
    IdentityL1Loss,
    LSGANLoss,
    MinEntLoss,
    SegCELoss,
    StyleLoss,
)

__all__ = [
    "GAN_LOSSES",
    "IGNORE_INDEX",
    "SOURCE_LABEL",
    "TARGET_LABEL",
    "BCEGANLoss",
    "CycleL1Loss",
    "EntropyMap",
    "GANLoss",
    "HingeGANLoss",
    "IdentityL1Loss",
    "LSGANLoss",
    "MinEntLoss",
    "SegCELoss",
    "StyleLoss",
    "channel_stats",
    "cycle_l1",
    "entropy_map",
    "gan_loss",
    "identity_l1",
    "minent",
    "seg_ce",
    "self_information",
    "style",
]
