"""Self-training components of DACS, DAFormer, HRDA and MIC: EMA teacher, pseudo-labels, ClassMix, strong
augmentation, rare-class sampling, random crop + flip, ImageNet feature distance and block masking.

See the "Self-training components" docs page.
"""

from .augment import StrongAugmentation, blur_kernel_size
from .ema import EMATeacher, ema_alpha
from .mixing import ClassMix, class_masks, mix
from .pseudo_label import PixelWeightedCE, PseudoLabeler, pixel_weighted_ce

__all__ = [
    "ClassMix",
    "EMATeacher",
    "PixelWeightedCE",
    "PseudoLabeler",
    "StrongAugmentation",
    "blur_kernel_size",
    "class_masks",
    "ema_alpha",
    "mix",
    "pixel_weighted_ce",
]
