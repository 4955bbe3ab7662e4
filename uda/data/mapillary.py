"""Mapillary Vistas v1.2 (Neuhold et al., "The Mapillary Vistas Dataset for Semantic Understanding of Street
Scenes", ICCV 2017), read with its 66 classes mapped to the 19 Cityscapes classes as in the domain-generalization
literature (RobustNet/ISW, Choi et al. CVPR 2021, and later works; the table is ``uda.labels.MAPILLARY_ID_TO_TRAINID``
and is documented class by class in docs/datasets.md).

Layout, as extracted (``config_v1.2.json`` is not needed): ``training|validation|testing/images/<key>.jpg``, labels
``<split>/v1.2/labels/<key>.png``: 8-bit PNGs (palettized with the Vistas colours, or grey) whose values are the
class ids 0..65. The v1.0/v1.1 layout ``<split>/labels/<key>.png`` (the same 66 ids) is read too; the v2.0 labels
(124 classes) are not. 18,000 training, 2,000 validation and 5,000 testing images (no public labels).
"""

from __future__ import annotations

from pathlib import Path

from .._errors import DataError
from .._registry import register
from ..labels import MAPILLARY_ID_TO_TRAINID, MAPILLARY_VALID_IDS
from ._base import OnBadSample, Sample, SegmentationFiles, require_dir, resolve_images_root
from ._decode import LabelMap

MAPILLARY_IDS = LabelMap("Mapillary Vistas v1.2 class ids", MAPILLARY_ID_TO_TRAINID, MAPILLARY_VALID_IDS)
"""Vistas ids 0..65 → Cityscapes trainIds (41 of them → 255); other values are errors."""

FOLDERS = {"training": "training", "validation": "validation", "testing": "testing",
           "train": "training", "val": "validation", "test": "testing"}  # fmt: skip


@register("dataset", "mapillary")
class MapillaryDataset(SegmentationFiles):
    """Mapillary Vistas v1.2 street-level images with labels mapped to the 19 Cityscapes classes.

    Args:
        root: folder holding ``training/``, ``validation/`` (and ``testing/``).
        split: ``"training"``, ``"validation"``, ``"testing"`` (no labels), or ``"train"``/``"val"``/``"test"``.
        size: resize to ``(W, H)`` / ``"WxH"`` (the images have various sizes), or ``None``.
        labels: read labels.
        on_bad_sample: ``"stop"`` or ``"skip"``.
        images_root: read images from this folder instead; labels stay under ``root``.
        interpolation: ``"bicubic"`` or ``"bilinear"``.
        class_map: a class-map YAML for the 66 stored ids (replaces the Cityscapes mapping, e.g. to keep more
            Vistas classes).

    Item names are the image keys.

    Example:
        >>> import uda
        >>> ds = uda.create("dataset", "mapillary", root="/data/mapillary", split="validation")  # doctest: +SKIP
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "training",
        size: str | tuple[int, int] | None = None,
        *,
        labels: bool = True,
        on_bad_sample: OnBadSample = "stop",
        images_root: str | Path | None = None,
        interpolation: str = "bicubic",
        class_map: str | Path | None = None,
    ) -> None:
        root = Path(root)
        require_dir(root, "mapillary", "root", "point --root at the folder holding training/ and validation/")
        if split not in FOLDERS:
            raise DataError(f"mapillary: split {split!r} does not exist; choose training, validation or testing "
                            "(or train, val, test)")
        base = root / FOLDERS[split]
        img_dir = require_dir(base / "images", "mapillary", f"'{FOLDERS[split]}' image folder",
                              f"extract the {FOLDERS[split]} images into --root")
        labels = labels and FOLDERS[split] != "testing"
        lbl_dir = next((d for d in (base / "v1.2" / "labels", base / "labels") if d.is_dir()), None)
        if labels and lbl_dir is None:
            hint = " (only v2.0 labels found: they have 124 classes; this loader reads v1.2)" if (
                base / "v2.0" / "labels").is_dir() else ""
            raise DataError(f"mapillary: label folder {base / 'v1.2' / 'labels'} does not exist{hint}; extract the "
                            "v1.2 labels, or labels=False")
        samples, problems = [], []
        for img in sorted(img_dir.glob("*.jpg")):
            label = lbl_dir / f"{img.stem}.png" if labels and lbl_dir is not None else None
            if label is not None and not label.is_file():
                problems.append(f"{img}: no label file {label}")
                continue
            samples.append(Sample(img.stem, img, label))
        if not samples and not problems:
            raise DataError(f"mapillary: split '{split}' is empty: no *.jpg in {img_dir}; fix --root or the split")
        super().__init__(
            resolve_images_root(samples, root, images_root),
            size=size,
            label_map=MAPILLARY_IDS if labels else None,
            on_bad_sample=on_bad_sample,
            interpolation=interpolation,
            excluded=problems,
            dataset="mapillary",
            class_map=class_map,
        )
        self.root, self.split = root, FOLDERS[split]
        self.label_dir = lbl_dir if labels else None
