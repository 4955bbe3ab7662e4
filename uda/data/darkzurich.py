"""Dark Zurich (Sakaridis et al., "Guided Curriculum Model Adaptation and Uncertainty-Aware Evaluation for
Semantic Nighttime Image Segmentation", ICCV 2019).

Layout, as extracted from ``Dark_Zurich_train_anon.zip``, ``Dark_Zurich_val_anon.zip`` and
``Dark_Zurich_test_anon_withoutGt.zip`` (either merged into one folder or side by side in their
``Dark_Zurich_<split>_anon/`` folders): ``rgb_anon/<split>/<time of day>/<sequence>/<stem>_rgb_anon.png``;
train has day, twilight and night (2,416) images without labels, val 50 and test 151 night images;
val labels ``gt/val/night/<sequence>/<stem>_gt_labelTrainIds.png`` (also ``_gt_labelIds.png``).
The UDA works (DAFormer, HRDA, MIC) adapt to the train **night** images only, the default here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from .._errors import DataError
from .._registry import register
from ._base import OnBadSample, Sample, SegmentationFiles, as_choices, require_dir, resolve_images_root
from .cityscapes import TRAIN_IDS
from .gta5 import CITYSCAPES_IDS

TIMES = ("day", "twilight", "night")
SPLITS = ("train", "val", "test")
_IMG = "_rgb_anon.png"


def split_root(root: Path, split: str) -> Path:
    """The folder holding ``rgb_anon/<split>``: ``root`` itself, or its ``Dark_Zurich_<split>_anon/`` subfolder."""
    for cand in (root, root / f"Dark_Zurich_{split}_anon"):
        if (cand / "rgb_anon" / split).is_dir():
            return cand
    raise DataError(f"darkzurich: split folder {root / 'rgb_anon' / split} does not exist (nor under "
                    f"Dark_Zurich_{split}_anon/); extract Dark_Zurich_{split}_anon.zip into --root")


@register("dataset", "darkzurich")
class DarkZurichDataset(SegmentationFiles):
    """Dark Zurich driving images (1920×1080) at day, twilight and night; labelled night val.

    Args:
        root: folder holding ``rgb_anon/`` (and ``gt/``), or the ``Dark_Zurich_<split>_anon/`` folders.
        split: ``"train"`` (no labels), ``"val"`` (labelled) or ``"test"`` (no public labels).
        size: resize to ``(W, H)`` / ``"WxH"``, or ``None``.
        times: the times of day of the train split, a list or ``"day,night"`` (default ``night``, as the UDA
            works); val and test are night only.
        labels: read labels (val only; train and test have none).
        label_type: ``"labelTrainIds"`` (default) or ``"labelIds"`` (mapped with the Cityscapes table).
        on_bad_sample: ``"stop"`` or ``"skip"``.
        images_root: read images from this folder instead; labels stay under ``root``.
        interpolation: ``"bicubic"`` or ``"bilinear"``.
        class_map: a class-map YAML for the ids of the ``label_type`` files.

    Item names are ``"<time>/<sequence>/<stem>"``.

    Example:
        >>> import uda
        >>> ds = uda.create("dataset", "darkzurich", root="/data/dark_zurich", split="val")  # doctest: +SKIP
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        size: str | tuple[int, int] | None = None,
        *,
        times: str | list[str] | tuple[str, ...] = ("night",),
        labels: bool = True,
        label_type: Literal["labelIds", "labelTrainIds"] = "labelTrainIds",
        on_bad_sample: OnBadSample = "stop",
        images_root: str | Path | None = None,
        interpolation: str = "bicubic",
        class_map: str | Path | None = None,
    ) -> None:
        root = Path(root)
        require_dir(root, "darkzurich", "root", "point --root at the folder holding rgb_anon/ and gt/")
        if split not in SPLITS:
            raise DataError(f"darkzurich: split {split!r} does not exist; choose from {', '.join(SPLITS)}")
        if label_type not in ("labelIds", "labelTrainIds"):
            raise DataError(f"darkzurich: label_type must be 'labelIds' or 'labelTrainIds', not {label_type!r}")
        chosen = as_choices(times, TIMES, "darkzurich", "time of day")
        if split != "train" and chosen != ("night",):
            raise DataError(f"darkzurich: split '{split}' has night images only; set times=night (day and "
                            "twilight are train only)")
        base = split_root(root, split)
        labels = labels and split == "val"
        gt_root = next((c / "gt" / "val" for c in (base, root) if (c / "gt" / "val").is_dir()), base / "gt" / "val")
        if labels:
            require_dir(gt_root, "darkzurich", "label folder", "extract Dark_Zurich_val_anon.zip (its gt/) into --root")
        samples, problems = [], []
        for time in chosen:
            img_dir = require_dir(base / "rgb_anon" / split / time, "darkzurich", f"'{time}' folder",
                                  "extract the images or choose other `times`")
            for img in sorted(img_dir.glob(f"*/*{_IMG}")):
                seq, stem = img.parent.name, img.name[: -len(_IMG)]
                label = gt_root / time / seq / f"{stem}_gt_{label_type}.png" if labels else None
                if label is not None and not label.is_file():
                    problems.append(f"{img}: no label file {label}")
                    continue
                samples.append(Sample(f"{time}/{seq}/{stem}", img, label))
        if not samples and not problems:
            raise DataError(f"darkzurich: split '{split}' is empty: no rgb_anon/{split}/<time>/<sequence>/*{_IMG} "
                            f"for {', '.join(chosen)}; fix --root or the split")
        super().__init__(
            resolve_images_root(samples, base, images_root),
            size=size,
            label_map=(TRAIN_IDS if label_type == "labelTrainIds" else CITYSCAPES_IDS) if labels else None,
            on_bad_sample=on_bad_sample,
            interpolation=interpolation,
            excluded=problems,
            dataset="darkzurich",
            class_map=class_map,
        )
        self.root, self.split, self.times, self.label_type = root, split, chosen, label_type
