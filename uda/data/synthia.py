"""SYNTHIA-RAND-CITYSCAPES (Ros et al., "The SYNTHIA Dataset", CVPR 2016).

Layout: ``RGB/NNNNNNN.png`` and ``GT/LABELS/NNNNNNN.png`` (1280×760, 9,400 pairs). Labels are 16-bit
multi-channel PNGs with the SYNTHIA class id in the FIRST channel (R); PIL cannot read them, ``torchvision.io``
decodes them unchanged. Ids 0..22 exist; they map to Cityscapes trainIds (REFERENCE.md §4), others are errors.
"""

from __future__ import annotations

from pathlib import Path

from .._errors import DataError
from .._registry import register
from ..labels import SYNTHIA_ID_TO_TRAINID, SYNTHIA_VALID_IDS
from ._base import OnBadSample, SegmentationFiles, require_dir, resolve_images_root
from ._decode import LabelMap
from .gta5 import list_pairs

SYNTHIA_IDS = LabelMap("SYNTHIA class ids", SYNTHIA_ID_TO_TRAINID, frozenset(SYNTHIA_VALID_IDS))
"""SYNTHIA ids 0..22 → trainIds (terrain, truck and train never occur)."""


@register("dataset", "synthia")
class SynthiaDataset(SegmentationFiles):
    """SYNTHIA-RAND-CITYSCAPES: synthetic images with 16-bit labels (class id in channel 0).

    Args:
        root: folder holding ``RGB/`` and ``GT/LABELS/``.
        split: ``"train"`` or ``"all"`` (one split; UDA works train on all 9,400 images).
        size: resize to ``(W, H)`` / ``"WxH"`` (the papers: 1280×760), or ``None``.
        labels: read labels.
        on_bad_sample: ``"stop"`` or ``"skip"``.
        images_root: read images from this folder instead (a translated cache).
        interpolation: ``"bicubic"`` or ``"bilinear"``.

    Example:
        >>> import uda
        >>> ds = uda.create("dataset", "synthia", root="/data/RAND_CITYSCAPES")  # doctest: +SKIP
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        size: str | tuple[int, int] | None = None,
        *,
        labels: bool = True,
        on_bad_sample: OnBadSample = "stop",
        images_root: str | Path | None = None,
        interpolation: str = "bicubic",
    ) -> None:
        root = Path(root)
        require_dir(root, "synthia", "root", "point --root at the RAND_CITYSCAPES folder holding RGB/ and GT/LABELS/")
        if split not in ("train", "all"):
            raise DataError(f"synthia: split {split!r} does not exist; SYNTHIA has one split, use 'train'")
        require_dir(root / "RGB", "synthia", "image folder", "--root must contain RGB/NNNNNNN.png")
        samples, problems = list_pairs(root, "RGB", "GT/LABELS", "*.png", labels, "synthia")
        if not samples and not problems:
            raise DataError(f"synthia: no images in {root / 'RGB'}; expected RGB/NNNNNNN.png and GT/LABELS/NNNNNNN.png")
        samples = resolve_images_root(samples, root, images_root)
        super().__init__(
            samples,
            size=size,
            label_map=SYNTHIA_IDS if labels else None,
            label_channel=0,
            on_bad_sample=on_bad_sample,
            interpolation=interpolation,
            excluded=problems,
            dataset="synthia",
        )
        self.root, self.split = root, split
