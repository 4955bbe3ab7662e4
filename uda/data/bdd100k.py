"""BDD100K semantic segmentation (Yu et al., "BDD100K: A Diverse Driving Dataset for Heterogeneous Multitask
Learning", CVPR 2020): 10,000 images (1280×720; 7,000 train, 1,000 val, 2,000 test) labelled with the 19 Cityscapes
classes, stored directly as trainIds (0..18, 255 = ignore).

Both published layouts are read as extracted:

* the current release (``bdd100k_images_10k.zip`` + ``bdd100k_sem_seg_labels_trainval.zip``):
  ``images/10k/<split>/<name>.jpg`` and ``labels/sem_seg/masks/<split>/<name>.png``;
* the 2018 release (``bdd100k_seg.zip``): ``seg/images/<split>/<name>.jpg`` and
  ``seg/labels/<split>/<name>_train_id.png`` (``root`` may also be the ``seg/`` folder itself).

Images are looked for in ``images/10k/``, ``seg/images/``, ``images/`` (first that has the split), labels in
``labels/sem_seg/masks/``, ``seg/labels/``, ``labels/`` (the same); the colour-coded ``colormaps``/``color_labels``
are never read.
"""

from __future__ import annotations

from pathlib import Path

from .._errors import DataError
from .._registry import register
from ._base import OnBadSample, Sample, SegmentationFiles, require_dir, resolve_images_root
from .cityscapes import TRAIN_IDS

SPLITS = ("train", "val", "test")
IMAGE_DIRS = ("images/10k", "seg/images", "images")
LABEL_DIRS = (("labels/sem_seg/masks", ".png"), ("seg/labels", "_train_id.png"), ("labels", "_train_id.png"))
"""(folder, file ending that replaces the image's ``.jpg``), in the order they are looked for."""


@register("dataset", "bdd100k")
class BDD100KDataset(SegmentationFiles):
    """BDD100K semantic segmentation: JPEG images, trainId PNG labels.

    Args:
        root: the ``bdd100k/`` folder (or its ``seg/`` folder for the 2018 release).
        split: ``"train"``, ``"val"`` or ``"test"`` (no labels).
        size: resize to ``(W, H)`` / ``"WxH"``, or ``None``.
        labels: read labels.
        on_bad_sample: ``"stop"`` or ``"skip"``.
        images_root: read images from this folder instead; labels stay under ``root``.
        interpolation: ``"bicubic"`` or ``"bilinear"``.
        class_map: a class-map YAML for the stored ids (replaces reading them as trainIds).

    Attributes:
        image_dir, label_dir: the folders found (``label_dir`` is ``None`` without labels).

    Item names are the image stems (e.g. ``"7d2f7975-e0c1c5a7"``).

    Example:
        >>> import uda
        >>> ds = uda.create("dataset", "bdd100k", root="/data/bdd100k", split="val")  # doctest: +SKIP
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
        class_map: str | Path | None = None,
    ) -> None:
        root = Path(root)
        require_dir(root, "bdd100k", "root", "point --root at the bdd100k/ folder")
        if split not in SPLITS:
            raise DataError(f"bdd100k: split {split!r} does not exist; choose from {', '.join(SPLITS)}")
        img_dir = next((root / d / split for d in IMAGE_DIRS if (root / d / split).is_dir()), None)
        if img_dir is None:
            raise DataError(f"bdd100k: no image folder for split '{split}' under {root} (looked for "
                            f"{', '.join(f'{d}/{split}' for d in IMAGE_DIRS)}); extract bdd100k_images_10k.zip")
        labels = labels and split != "test"
        found = next(((root / d / split, end) for d, end in LABEL_DIRS if (root / d / split).is_dir()), None)
        if labels and found is None:
            raise DataError(f"bdd100k: no label folder for split '{split}' under {root} (looked for "
                            f"{', '.join(f'{d}/{split}' for d, _ in LABEL_DIRS)}); extract the sem_seg labels, or "
                            "labels=False")
        samples, problems = [], []
        for img in sorted(img_dir.glob("*.jpg")):
            label = found[0] / f"{img.stem}{found[1]}" if labels and found else None
            if label is not None and not label.is_file():
                problems.append(f"{img}: no label file {label}")
                continue
            samples.append(Sample(img.stem, img, label))
        if not samples and not problems:
            raise DataError(f"bdd100k: split '{split}' is empty: no *.jpg in {img_dir}; fix --root or the split")
        super().__init__(
            resolve_images_root(samples, root, images_root),
            size=size,
            label_map=TRAIN_IDS if labels else None,
            on_bad_sample=on_bad_sample,
            interpolation=interpolation,
            excluded=problems,
            dataset="bdd100k",
            class_map=class_map,
        )
        self.root, self.split = root, split
        self.image_dir, self.label_dir = img_dir, (found[0] if labels and found else None)
