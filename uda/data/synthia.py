"""SYNTHIA-RAND-CITYSCAPES (Ros et al., "The SYNTHIA Dataset", CVPR 2016).

Layout: ``RGB/NNNNNNN.png`` and ``GT/LABELS/NNNNNNN.png`` (1280×760, 9,400 pairs). Labels are 16-bit
multi-channel PNGs with the SYNTHIA class id in the FIRST channel (R); PIL cannot read them, ``torchvision.io``
decodes them unchanged. Ids 0..22 exist; they map to Cityscapes trainIds (``uda.labels``), others are errors.
"""

from __future__ import annotations

from .._registry import register
from ..labels import SYNTHIA_ID_TO_TRAINID, SYNTHIA_VALID_IDS
from ._decode import LabelMap
from .gta5 import FlatPairDataset

SYNTHIA_IDS = LabelMap("SYNTHIA class ids", SYNTHIA_ID_TO_TRAINID, frozenset(SYNTHIA_VALID_IDS))
"""SYNTHIA ids 0..22 → trainIds (terrain, truck and train never occur)."""


@register("dataset", "synthia")
class SynthiaDataset(FlatPairDataset):
    """SYNTHIA-RAND-CITYSCAPES: synthetic images with 16-bit labels (class id in channel 0).

    Args:
        root: folder holding ``RGB/`` and ``GT/LABELS/``.
        split: ``"train"`` or ``"all"`` (one split; UDA works train on all 9,400 images).
        size: resize to ``(W, H)`` / ``"WxH"`` (the papers: 1280×760), or ``None``.
        labels: read labels.
        on_bad_sample: ``"stop"`` or ``"skip"``.
        images_root: read images from this folder instead (a translated cache).
        interpolation: ``"bicubic"`` or ``"bilinear"``.
        class_map: a class-map YAML for the SYNTHIA ids of channel 0 (replaces the SYNTHIA table).

    Example:
        >>> import uda
        >>> ds = uda.create("dataset", "synthia", root="/data/RAND_CITYSCAPES")  # doctest: +SKIP
    """

    dataset_name = "synthia"
    image_dir = "RGB"
    label_dir = "GT/LABELS"
    root_hint = "point --root at the RAND_CITYSCAPES folder holding RGB/ and GT/LABELS/"
    file_hint = "NNNNNNN.png"
    label_encoding = SYNTHIA_IDS
    label_channel = 0
