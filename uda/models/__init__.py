"""Segmentation models behind one output object ([`SegOutput`][uda.types.SegOutput]), local weights, the FRU.

- ``deeplabv2`` / ``deeplabv2_tiny``: DeepLab-v2 on a Caffe-style ResNet (AdaptSegNet, ADVENT, MLFA).
- ``timm_deeplab`` / ``timm_tiny``: any timm backbone with a DeepLab-style head.
- ``smp`` / ``smp_tiny``: segmentation-models-pytorch architectures.
- ``daformer_mitb0`` … ``daformer_mitb5`` / ``daformer_tiny``: MiT + DAFormer head (DAFormer).
- ``hrda`` / ``hrda_mitb5`` / ``hrda_tiny``: HRDA multi-resolution wrapper around any of them.
- ``vfm`` / ``vfm_tiny``: a DINOv2 ViT encoder, a simple feature pyramid and the DAFormer head (VFM-UDA).
- ``fru`` (kind ``module``): the feature reinforcement unit of MLFA.
"""

from ._base import InputNormalizer, Normalization, SegmentationModel
from ._common import UdaSegmentationModel, sliding_windows
from ._param_groups import duplicated_backbone_params, model_param_groups, split_no_decay
from ._weights import LoadReport, load_weights, save_weights
from .daformer import DAFormer, DAFormerHead, daformer_mitb5, daformer_tiny
from .deeplabv2 import ClassifierV2, DeepLabV2, deeplabv2, deeplabv2_tiny
from .fru import FeatureReinforcementUnit
from .hrda import HRDA, HRDAOutput, hrda, hrda_mitb5, hrda_tiny
from .smp_models import SmpModel
from .timm_models import TimmDeepLab
from .vfm import VFMSegmenter

__all__ = [
    "HRDA",
    "ClassifierV2",
    "DAFormer",
    "DAFormerHead",
    "DeepLabV2",
    "FeatureReinforcementUnit",
    "HRDAOutput",
    "InputNormalizer",
    "LoadReport",
    "Normalization",
    "SegmentationModel",
    "SmpModel",
    "TimmDeepLab",
    "UdaSegmentationModel",
    "VFMSegmenter",
    "daformer_mitb5",
    "daformer_tiny",
    "deeplabv2",
    "deeplabv2_tiny",
    "duplicated_backbone_params",
    "hrda",
    "hrda_mitb5",
    "hrda_tiny",
    "load_weights",
    "model_param_groups",
    "save_weights",
    "sliding_windows",
    "split_no_decay",
]
