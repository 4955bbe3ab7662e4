"""Segmentation models behind one output object (:class:`~uda.types.SegOutput`), local weights, the FRU.

- ``deeplabv2`` / ``deeplabv2_tiny``: DeepLab-v2 on a Caffe-style ResNet (AdaptSegNet, ADVENT, MLFA).
- ``timm_deeplab`` / ``timm_tiny``: any timm backbone with a DeepLab-style head.
- ``smp`` / ``smp_tiny``: segmentation-models-pytorch architectures.
- ``daformer_mitb0`` … ``daformer_mitb5`` / ``daformer_tiny``: MiT + DAFormer head (DAFormer).
- ``fru`` (kind ``module``): the feature reinforcement unit of MLFA.
"""

from ._base import InputNormalizer, Normalization, SegmentationModel
from ._common import UdaSegmentationModel
from ._weights import LoadReport, load_weights, save_weights
from .daformer import DAFormer, DAFormerHead, daformer_mitb5, daformer_tiny
from .deeplabv2 import ClassifierV2, DeepLabV2, deeplabv2, deeplabv2_tiny
from .fru import FeatureReinforcementUnit
from .smp_models import SmpModel
from .timm_models import TimmDeepLab

__all__ = [
    "ClassifierV2",
    "DAFormer",
    "DAFormerHead",
    "DeepLabV2",
    "FeatureReinforcementUnit",
    "InputNormalizer",
    "LoadReport",
    "Normalization",
    "SegmentationModel",
    "SmpModel",
    "TimmDeepLab",
    "UdaSegmentationModel",
    "daformer_mitb5",
    "daformer_tiny",
    "deeplabv2",
    "deeplabv2_tiny",
    "load_weights",
    "save_weights",
]
