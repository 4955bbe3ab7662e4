"""A custom layout: an image folder, a label folder, a filename mapping and a label map file.

This is the documented path for a user's own data (see docs/datasets.md). Image ``<images>/<rel>/<stem><image_suffix>``
pairs with label ``<labels>/<rel>/<stem><label_suffix>``; the label map (YAML or JSON, ``id: trainId``) or a class
map (``classes:`` + ``ids:``, see `uda.data.class_map`) says what each stored id means. Without one, labels must
already be trainIds (0..18, 255).
"""

from __future__ import annotations

import json
from pathlib import Path

from .._errors import DataError
from .._io import load_yaml
from .._registry import register
from ..labels import IGNORE_INDEX, NUM_CLASSES
from ._base import OnBadSample, Sample, SegmentationFiles, require_dir, resolve_images_root
from ._decode import LabelMap
from .cityscapes import TRAIN_IDS
from .class_map import ClassMap, is_class_map, load_class_map


def load_label_map(path: str | Path) -> LabelMap | ClassMap:
    """Read a label map file: a YAML/JSON mapping ``{stored id: trainId}`` (trainId 0..18 or 255 = ignore).

    Ids not listed are unknown: a label containing them raises instead of being silently mapped. A file with an
    ``ids:`` key is a class map instead (``classes:`` + ``ids:``, see `uda.data.class_map.load_class_map`).

    Args:
        path: ``.yaml``/``.yml``/``.json`` file; a top-level ``mapping:`` key is also accepted.

    Returns:
        The `LabelMap`, or the `ClassMap` of a class-map file.

    Example:
        >>> # map.yaml:  {0: 255, 1: 0, 2: 13}   (0 = unlabelled, 1 = road, 2 = car)
        >>> load_label_map("map.yaml")  # doctest: +SKIP
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"label map {path} does not exist; write a YAML/JSON file of 'id: trainId' lines")
    try:
        data = json.loads(path.read_text()) if path.suffix == ".json" else load_yaml(path)
    except Exception as e:  # any parse error is a user error here
        raise DataError(f"label map {path}: cannot parse ({e}); write a YAML/JSON mapping of id: trainId") from e
    if is_class_map(data):
        return load_class_map(path)
    if isinstance(data, dict) and "mapping" in data and isinstance(data["mapping"], dict):
        data = data["mapping"]
    if not isinstance(data, dict) or not data:
        raise DataError(f"label map {path}: expected a non-empty mapping of id: trainId")
    mapping: dict[int, int] = {}
    for k, v in data.items():
        try:
            ki, vi = int(k), int(v)
        except (TypeError, ValueError):
            raise DataError(f"label map {path}: entry {k!r}: {v!r} is not integer id: trainId") from None
        if not (0 <= ki < 65536) or not (0 <= vi < NUM_CLASSES or vi == IGNORE_INDEX):
            raise DataError(f"label map {path}: entry {ki}: {vi} out of range (ids 0..65535, trainIds 0..18 or 255)")
        mapping[ki] = vi
    return LabelMap(f"ids listed in {path}", mapping, frozenset(mapping))


@register("dataset", "folder")
class FolderDataset(SegmentationFiles):
    """Your own data: images and labels in two folders, matched by file name.

    Args:
        root: base folder; ``images``/``labels`` are relative to it (or absolute).
        split: substituted for ``{split}`` in ``images``/``labels`` (e.g. ``images="img/{split}"``).
        size: resize to ``(W, H)`` / ``"WxH"``, or ``None``.
        images: image folder (searched recursively).
        labels_dir: label folder; ``None`` for an unlabelled folder.
        image_suffix: the image file ending, e.g. ``".jpg"`` or ``"_leftImg8bit.png"``.
        label_suffix: the label file ending that replaces it, e.g. ``"_gtFine_labelIds.png"``.
        label_map: YAML/JSON file ``id: trainId`` (or a class map); ``None`` if labels already hold trainIds.
        label_channel: channel of the id in multi-channel labels (``None``: single-channel/palettized).
        labels: read labels.
        on_bad_sample: ``"stop"`` or ``"skip"``.
        images_root: read images from this folder instead.
        interpolation: ``"bicubic"`` or ``"bilinear"``.
        class_map: a class-map YAML (``classes:`` and ``ids:``); instead of ``label_map``.

    Example:
        >>> import uda
        >>> ds = uda.create("dataset", "folder", root="/data/mine", images="img", labels_dir="ann",
        ...                 image_suffix=".jpg", label_suffix=".png", label_map="/data/mine/map.yaml")  # doctest: +SKIP
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        size: str | tuple[int, int] | None = None,
        *,
        images: str = "images",
        labels_dir: str | None = "labels",
        image_suffix: str = ".png",
        label_suffix: str = ".png",
        label_map: str | Path | None = None,
        label_channel: int | None = None,
        labels: bool = True,
        on_bad_sample: OnBadSample = "stop",
        images_root: str | Path | None = None,
        interpolation: str = "bicubic",
        class_map: str | Path | None = None,
    ) -> None:
        root = Path(root)
        require_dir(root, "folder", "root", "point --root at your dataset folder")
        if label_map is not None and class_map is not None:
            raise DataError("folder: give either label_map (id: trainId) or class_map, not both")
        cmap: ClassMap | None = load_class_map(class_map) if class_map is not None else None
        lmap_file: LabelMap | ClassMap | None = load_label_map(label_map) if label_map is not None else None
        if isinstance(lmap_file, ClassMap):  # a class map given as label_map
            cmap, lmap_file = lmap_file, None
        img_dir = root / images.format(split=split)
        require_dir(img_dir, "folder", "image folder", "set the 'images' option to your image folder")
        labels = labels and labels_dir is not None
        lbl_dir = root / labels_dir.format(split=split) if labels and labels_dir is not None else None
        if lbl_dir is not None:
            require_dir(lbl_dir, "folder", "label folder", "set 'labels_dir' (or labels=False for unlabelled data)")
        lmap = (lmap_file or TRAIN_IDS) if labels else None
        samples, problems = [], []
        for img in sorted(img_dir.rglob(f"*{image_suffix}")):
            rel = img.relative_to(img_dir).as_posix()
            name = rel[: -len(image_suffix)]
            label = lbl_dir / f"{name}{label_suffix}" if lbl_dir is not None else None
            if label is not None and not label.is_file():
                problems.append(f"{img}: no label file {label}")
                continue
            samples.append(Sample(name, img, label))
        if not samples and not problems:
            raise DataError(f"folder: no '*{image_suffix}' files under {img_dir}; check 'images' and 'image_suffix'")
        samples = resolve_images_root(samples, root, images_root)
        super().__init__(
            samples,
            size=size,
            label_map=lmap,
            label_channel=label_channel,
            on_bad_sample=on_bad_sample,
            interpolation=interpolation,
            excluded=problems,
            dataset="folder",
            class_map=cmap,
        )
        self.root, self.split = root, split
