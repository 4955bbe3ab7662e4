"""Self-training components of DACS, DAFormer, HRDA and MIC: EMA teacher, pseudo-labels, ClassMix, strong
augmentation, rare-class sampling, random crop + flip, ImageNet feature distance and block masking.

See the "Self-training components" docs page.
"""

from .augment import StrongAugmentation, blur_kernel_size
from .crop import RandomCropFlip
from .ema import EMATeacher, ema_alpha
from .feature_distance import ImageNetFeatureDistance, downscale_label_ratio
from .masking import BlockMasking
from .mixing import ClassMix, class_masks, mix
from .pseudo_label import PixelWeightedCE, PseudoLabeler, pixel_weighted_ce
from .rcs import RareClassSampling, class_pixel_counts, class_probabilities

__all__ = [
    "BlockMasking",
    "ClassMix",
    "EMATeacher",
    "ImageNetFeatureDistance",
    "PixelWeightedCE",
    "PseudoLabeler",
    "RandomCropFlip",
    "RareClassSampling",
    "StrongAugmentation",
    "blur_kernel_size",
    "class_masks",
    "class_pixel_counts",
    "class_probabilities",
    "downscale_label_ratio",
    "ema_alpha",
    "mix",
    "pixel_weighted_ce",
]
