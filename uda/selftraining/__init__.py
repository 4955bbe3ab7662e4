"""Self-training components of DACS, DAFormer, HRDA and MIC: EMA teacher, pseudo-labels, ClassMix, strong
augmentation, rare-class sampling, random crop + flip, ImageNet feature distance and block masking; and the loss
terms built from them (kind ``term``): ``self_training`` (ClassMix), ``feature_distance`` and ``mic``.

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
from .terms import FeatureDistanceTerm, MICTerm, SelfTrainingTerm

__all__ = [
    "BlockMasking",
    "ClassMix",
    "EMATeacher",
    "FeatureDistanceTerm",
    "ImageNetFeatureDistance",
    "MICTerm",
    "PixelWeightedCE",
    "PseudoLabeler",
    "RandomCropFlip",
    "RareClassSampling",
    "SelfTrainingTerm",
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
