"""Cityscapes (Cordts et al., "The Cityscapes Dataset for Semantic Urban Scene Understanding", CVPR 2016).

Layout: ``leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png`` and
``gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png`` (or ``_gtFine_labelTrainIds.png``).
Splits: train (2,975), val (500), test (1,525, no public labels).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from .._errors import DataError
from .._registry import register
from ..labels import IGNORE_INDEX, NUM_CLASSES
from ._base import OnBadSample, Sample, SegmentationFiles, require_dir, resolve_images_root
from ._decode import LabelMap
from .gta5 import CITYSCAPES_IDS

TRAIN_IDS = LabelMap("trainIds", {i: i for i in range(NUM_CLASSES)}, frozenset(range(NUM_CLASSES)) | {IGNORE_INDEX})
"""Labels already in trainIds (0..18, 255)."""

_IMG_SUFFIX = "_leftImg8bit.png"


@register("dataset", "cityscapes")
class CityscapesDataset(SegmentationFiles):
    """Cityscapes street scenes, fine annotations.

    Args:
        root: folder holding ``leftImg8bit/`` and ``gtFine/``.
        split: ``"train"``, ``"val"`` or ``"test"`` (test has no labels: items carry none).
        size: resize to ``(W, H)`` / ``"WxH"`` (the papers: 1024×512 for training), or ``None``.
        labels: read labels.
        label_type: ``"labelIds"`` (mapped with the official table) or ``"labelTrainIds"`` (read as is).
        on_bad_sample: ``"stop"`` or ``"skip"``.
        images_root: read images from this folder instead; labels stay under ``root``.
        interpolation: ``"bicubic"`` or ``"bilinear"``.
        class_map: a class-map YAML for the ids of the ``label_type`` files (replaces the built-in table).

    Item names are ``"<city>/<city>_<seq>_<frame>"``.

    Example:
        >>> import uda
        >>> ds = uda.create("dataset", "cityscapes", root="/data/cityscapes", split="val")  # doctest: +SKIP
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        size: str | tuple[int, int] | None = None,
        *,
        labels: bool = True,
        label_type: Literal["labelIds", "labelTrainIds"] = "labelIds",
        on_bad_sample: OnBadSample = "stop",
        images_root: str | Path | None = None,
        interpolation: str = "bicubic",
        class_map: str | Path | None = None,
    ) -> None:
        root = Path(root)
        require_dir(root, "cityscapes", "root", "point --root at the folder holding leftImg8bit/ and gtFine/")
        if label_type not in ("labelIds", "labelTrainIds"):
            raise DataError(f"cityscapes: label_type must be 'labelIds' or 'labelTrainIds', not {label_type!r}")
        img_dir = root / "leftImg8bit" / split
        require_dir(img_dir, "cityscapes", f"split '{split}' folder", "choose train, val or test, or fix --root")
        labels = labels and split != "test"  # the public test labels are placeholders
        gt_dir = root / "gtFine" / split
        if labels:
            require_dir(gt_dir, "cityscapes", "label folder", "extract gtFine_trainvaltest.zip into --root")
        suffix = f"_gtFine_{label_type}.png"
        samples, problems = [], []
        for img in sorted(img_dir.glob(f"*/*{_IMG_SUFFIX}")):
            city = img.parent.name
            stem = img.name[: -len(_IMG_SUFFIX)]
            label = gt_dir / city / f"{stem}{suffix}" if labels else None
            if label is not None and not label.is_file():
                problems.append(f"{img}: no label file {label}")
                continue
            samples.append(Sample(f"{city}/{stem}", img, label))
        if not samples and not problems:
            raise DataError(
                f"cityscapes: split '{split}' is empty: no {img_dir}/<city>/*{_IMG_SUFFIX}; fix --root or the split"
            )
        samples = resolve_images_root(samples, root, images_root)
        super().__init__(
            samples,
            size=size,
            label_map=(CITYSCAPES_IDS if label_type == "labelIds" else TRAIN_IDS) if labels else None,
            on_bad_sample=on_bad_sample,
            interpolation=interpolation,
            excluded=problems,
            dataset="cityscapes",
            class_map=class_map,
        )
        self.root, self.split, self.label_type = root, split, label_type
