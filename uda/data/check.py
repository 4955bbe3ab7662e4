"""``uda data check``: count samples, histogram the classes and list every problem by file."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch

from .._errors import DataError
from .._registry import create
from ..labels import CITYSCAPES_CLASSES, IGNORE_INDEX
from ._base import SegmentationFiles
from ._decode import decode_label_png, decode_rgb


def check_dataset(dataset: str, root: str | Path | None = None, split: str = "train", **options: Any) -> dict[str, Any]:
    """Check a dataset on disk without stopping at the first problem.

    Every image, reference image and label is decoded at full resolution. Problems are one line each, starting with
    the file: missing pair, unreadable/corrupt file, image/label size mismatch, label values outside the map.

    Args:
        dataset: registered dataset name (``gta5``, ``synthia``, ``cityscapes``, ``acdc``, ``darkzurich``,
            ``bdd100k``, ``mapillary``, ``folder``, ``synthetic``).
        root: its root folder (``None`` for ``synthetic``).
        split: the split to check.
        **options: extra dataset options (e.g. ``label_type``, ``label_map``, ``conditions``, ``class_map``).

    Returns:
        ``{"dataset", "split", "num_samples", "class_pixels": {class name: n}, "ignored_pixels", "problems": [str]}``;
        the class names are the dataset's (those of its class map, if any).

    Raises:
        DataError: a missing root or an empty split (nothing to check).

    Example:
        >>> r = check_dataset("synthetic", None, "val", num=2, size="32x16")
        >>> r["num_samples"], r["problems"]
        (2, [])
    """
    kw = dict(options, split=split, on_bad_sample="skip")
    if root is not None:
        kw["root"] = root
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = create("dataset", dataset, **kw)
    counts = torch.zeros(256, dtype=torch.int64)
    problems: list[str] = list(getattr(ds, "excluded", []))
    if isinstance(ds, SegmentationFiles):
        for s in ds.samples:
            try:
                img = decode_rgb(s.image)
            except DataError as e:
                problems.append(str(e))
                img = None
            if s.reference is not None:
                try:
                    decode_rgb(s.reference)
                except DataError as e:
                    problems.append(str(e))
            if s.label is None or ds.label_map is None:
                continue
            try:
                raw = decode_label_png(s.label, channel=ds.label_channel)
            except DataError as e:
                problems.append(str(e))
                continue
            if img is not None and tuple(img.shape[-2:]) != tuple(raw.shape):
                problems.append(
                    f"{s.label}: size {raw.shape[1]}x{raw.shape[0]} differs from its image {s.image} "
                    f"({img.shape[2]}x{img.shape[1]}); both are resized separately when loading"
                )
            try:
                label = ds.label_map.apply(raw, s.label)
            except DataError as e:
                problems.append(str(e))
                continue
            counts += torch.bincount(label.reshape(-1).long(), minlength=256)
    else:
        for i in range(len(ds)):
            item = ds[i]
            if "label" in item:
                counts += torch.bincount(item["label"].reshape(-1), minlength=256)
    if len(ds) == 0 and not problems:  # with problems (every sample left out), report them instead
        raise DataError(f"{dataset}: split '{split}' has no samples under {root}; fix --root or --split")
    names = tuple(getattr(ds, "class_names", CITYSCAPES_CLASSES))
    known = counts[: len(names)].sum() + counts[IGNORE_INDEX]
    if int(counts.sum()) != int(known):  # cannot happen with a LabelMap; guards the invariant
        raise RuntimeError(f"trainIds outside 0..{len(names) - 1}/255 after mapping")
    return {
        "dataset": dataset,
        "split": split,
        "num_samples": len(ds),
        "class_pixels": {name: int(counts[i]) for i, name in enumerate(names)},
        "ignored_pixels": int(counts[IGNORE_INDEX]),
        "problems": problems,
    }
