"""ACDC (Sakaridis et al., "ACDC: The Adverse Conditions Dataset with Correspondences for Semantic Driving Scene
Understanding", ICCV 2021).

Layout, as extracted from ``rgb_anon_trainvaltest.zip`` and ``gt_trainval.zip`` (no restructuring):
``rgb_anon/<condition>/<split>/<sequence>/<sequence>_frame_<NNNNNN>_rgb_anon.png``, labels
``gt/<condition>/<split>/<sequence>/<stem>_gt_labelTrainIds.png`` (also ``_gt_labelIds.png``), reference images of
the same places in normal conditions ``rgb_anon/<condition>/<split>_ref/<sequence>/<stem>_rgb_ref_anon.png``.
Conditions fog, night, rain, snow (about 1,000 images each: 400 train, 100 val (night: 106), 500 test); test has
no public labels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from .._errors import DataError
from .._registry import register
from ._base import OnBadSample, Sample, SegmentationFiles, as_choices, require_dir, resolve_images_root
from .cityscapes import TRAIN_IDS
from .gta5 import CITYSCAPES_IDS

CONDITIONS = ("fog", "night", "rain", "snow")
SPLITS = ("train", "val", "test", "train_ref", "val_ref", "test_ref")
_IMG, _REF = "_rgb_anon.png", "_rgb_ref_anon.png"


@register("dataset", "acdc")
class ACDCDataset(SegmentationFiles):
    """ACDC adverse-condition driving images (1920×1080) with Cityscapes classes.

    Args:
        root: folder holding ``rgb_anon/`` (and ``gt/``).
        split: ``"train"``, ``"val"``, ``"test"`` (no labels), or ``"train_ref"``/``"val_ref"``/``"test_ref"``: the
            normal-condition reference images as the samples (no labels).
        size: resize to ``(W, H)`` / ``"WxH"``, or ``None``.
        conditions: the conditions to read, a list or ``"fog,night"`` (default all four, in this order).
        labels: read labels.
        label_type: ``"labelTrainIds"`` (read as is, the default) or ``"labelIds"`` (Cityscapes label ids, mapped
            with the official table).
        reference: also load each image's reference image as ``item["reference"]`` (a missing one is a problem
            like a missing label).
        on_bad_sample: ``"stop"`` or ``"skip"``.
        images_root: read images from this folder instead; labels stay under ``root``.
        interpolation: ``"bicubic"`` or ``"bilinear"``.
        class_map: a class-map YAML for the ids of the ``label_type`` files.

    Item names are ``"<condition>/<sequence>/<sequence>_frame_<NNNNNN>"``.

    Example:
        >>> import uda
        >>> ds = uda.create("dataset", "acdc", root="/data/ACDC", split="val", conditions="night")  # doctest: +SKIP
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        size: str | tuple[int, int] | None = None,
        *,
        conditions: str | list[str] | tuple[str, ...] = CONDITIONS,
        labels: bool = True,
        label_type: Literal["labelIds", "labelTrainIds"] = "labelTrainIds",
        reference: bool = False,
        on_bad_sample: OnBadSample = "stop",
        images_root: str | Path | None = None,
        interpolation: str = "bicubic",
        class_map: str | Path | None = None,
    ) -> None:
        root = Path(root)
        require_dir(root, "acdc", "root", "point --root at the folder holding rgb_anon/ and gt/")
        require_dir(root / "rgb_anon", "acdc", "image folder", "extract rgb_anon_trainvaltest.zip into --root")
        if split not in SPLITS:
            raise DataError(f"acdc: split {split!r} does not exist; choose from {', '.join(SPLITS)}")
        if label_type not in ("labelIds", "labelTrainIds"):
            raise DataError(f"acdc: label_type must be 'labelIds' or 'labelTrainIds', not {label_type!r}")
        conds = as_choices(conditions, CONDITIONS, "acdc", "condition")
        is_ref = split.endswith("_ref")
        labels = labels and split in ("train", "val")  # test and the reference images have no labels
        if reference and is_ref:
            raise DataError(f"acdc: split '{split}' already reads the reference images; drop reference=True")
        samples, problems = [], []
        for cond in conds:
            img_dir = root / "rgb_anon" / cond / split
            require_dir(img_dir, "acdc", f"condition '{cond}' split folder",
                        "extract the condition's images or leave it out of `conditions`")
            gt_dir = root / "gt" / cond / split
            if labels:
                require_dir(gt_dir, "acdc", "label folder", "extract gt_trainval.zip into --root (or labels=False)")
            suffix = _REF if is_ref else _IMG
            for img in sorted(img_dir.glob(f"*/*{suffix}")):
                seq, stem = img.parent.name, img.name[: -len(suffix)]
                label = gt_dir / seq / f"{stem}_gt_{label_type}.png" if labels else None
                ref = root / "rgb_anon" / cond / f"{split}_ref" / seq / f"{stem}{_REF}" if reference else None
                missing = [(what, p) for what, p in (("label", label), ("reference", ref)) if p and not p.is_file()]
                if missing:
                    problems += [f"{img}: no {what} file {p}" for what, p in missing]
                    continue
                samples.append(Sample(f"{cond}/{seq}/{stem}", img, label, ref))
        if not samples and not problems:
            raise DataError(f"acdc: split '{split}' is empty: no rgb_anon/<condition>/{split}/<sequence>/*{_IMG} "
                            f"for {', '.join(conds)}; fix --root or the split")
        super().__init__(
            resolve_images_root(samples, root, images_root),
            size=size,
            label_map=(TRAIN_IDS if label_type == "labelTrainIds" else CITYSCAPES_IDS) if labels else None,
            on_bad_sample=on_bad_sample,
            interpolation=interpolation,
            excluded=problems,
            dataset="acdc",
            class_map=class_map,
        )
        self.root, self.split, self.conditions, self.label_type = root, split, conds, label_type
