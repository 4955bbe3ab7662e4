"""GTA5 (Richter et al., "Playing for Data: Ground Truth from Computer Games", ECCV 2016).

Layout: ``images/NNNNN.png`` and ``labels/NNNNN.png`` (1914×1052); labels are palettized (or grey) PNGs whose
pixel values are Cityscapes label ids, mapped to the 19 trainIds (``uda.labels``).
"""

from __future__ import annotations

from pathlib import Path

from .._errors import DataError
from .._registry import register
from ..labels import CITYSCAPES_ID_TO_TRAINID, CITYSCAPES_VALID_LABEL_IDS
from ._base import OnBadSample, Sample, SegmentationFiles, require_dir, resolve_images_root
from ._decode import LabelMap

CITYSCAPES_IDS = LabelMap(
    "Cityscapes label ids",
    CITYSCAPES_ID_TO_TRAINID,
    frozenset(CITYSCAPES_VALID_LABEL_IDS) | {255},  # 255 = id -1 (license plate) stored in 8 bits
)
"""Cityscapes/GTA5 label ids 0..33 (and -1 stored as 255) → trainIds."""


def list_pairs(
    root: Path, image_dir: str, label_dir: str, pattern: str, labels: bool, dataset: str
) -> tuple[list[Sample], list[str]]:
    """Pair ``image_dir/<stem>.png`` with ``label_dir/<stem>.png``; return (samples, missing-pair problems)."""
    images = {p.stem: p for p in sorted((root / image_dir).glob(pattern))}
    if not labels:
        return [Sample(k, v, None) for k, v in sorted(images.items())], []
    require_dir(root / label_dir, dataset, "label folder", f"--root must contain {label_dir}/ (or load without labels)")
    label_files = {p.stem: p for p in sorted((root / label_dir).glob(pattern))}
    problems = [
        f"{images[k]}: no label file {root / label_dir / images[k].name}"
        for k in sorted(images.keys() - label_files.keys())
    ]
    problems += [
        f"{label_files[k]}: no image file {root / image_dir / label_files[k].name}"
        for k in sorted(label_files.keys() - images.keys())
    ]
    samples = [Sample(k, images[k], label_files[k]) for k in sorted(images.keys() & label_files.keys())]
    return samples, problems


class FlatPairDataset(SegmentationFiles):
    """Same-named image and label PNGs in two folders under ``root``, one split (the GTA5 and SYNTHIA layouts).

    Subclasses set the folder names, the hints of their error messages and the label encoding.
    """

    dataset_name = "flat"
    image_dir = "images"
    label_dir = "labels"
    root_hint = "point --root at the dataset folder"
    file_hint = "NNNNN.png"
    label_encoding: LabelMap = CITYSCAPES_IDS
    label_channel: int | None = None

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
        class_map: str | Path | None = None,
    ) -> None:
        root, name = Path(root), self.dataset_name
        require_dir(root, name, "root", self.root_hint)
        if split not in ("train", "all"):
            raise DataError(f"{name}: split {split!r} does not exist; {name.upper()} has one split, use 'train' "
                            "(all images)")
        require_dir(root / self.image_dir, name, "image folder", f"--root must contain {self.image_dir}/{self.file_hint}")
        samples, problems = list_pairs(root, self.image_dir, self.label_dir, "*.png", labels, name)
        if not samples and not problems:
            raise DataError(f"{name}: no images in {root / self.image_dir}; expected {self.image_dir}/{self.file_hint} "
                            f"and {self.label_dir}/{self.file_hint}")
        super().__init__(
            resolve_images_root(samples, root, images_root),
            size=size,
            label_map=self.label_encoding if labels else None,
            label_channel=self.label_channel,
            on_bad_sample=on_bad_sample,
            interpolation=interpolation,
            excluded=problems,
            dataset=name,
            class_map=class_map,
        )
        self.root, self.split = root, split


@register("dataset", "gta5")
class GTA5Dataset(FlatPairDataset):
    """GTA5 synthetic driving images with Cityscapes label ids (24,966 pairs, 1914×1052).

    Args:
        root: folder holding ``images/`` and ``labels/``.
        split: ``"train"`` or ``"all"`` (GTA5 has no official split; UDA works train on all images).
        size: resize to ``(W, H)`` / ``"WxH"`` (the papers: 1280×720), or ``None``.
        labels: read labels (``False`` for use as unlabelled data).
        on_bad_sample: ``"stop"`` or ``"skip"`` (missing pairs, corrupt files, unknown label ids).
        images_root: read images from this folder instead (e.g. a translated cache); labels stay under ``root``.
        interpolation: ``"bicubic"`` (default, as the originals) or ``"bilinear"``.
        class_map: a class-map YAML for the stored label ids (replaces the Cityscapes table).

    Example:
        >>> import uda
        >>> ds = uda.create("dataset", "gta5", root="/data/GTA5", size="1280x720")  # doctest: +SKIP
    """

    dataset_name = "gta5"
    root_hint = "point --root at the folder holding images/ and labels/"
