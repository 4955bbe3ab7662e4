"""The common file-backed segmentation dataset: a list of (name, image file, label file) pairs.

Subclasses (``gta5``, ``synthia``, ``cityscapes``, ``acdc``, ``darkzurich``, ``bdd100k``, ``mapillary``, ``folder``)
only find their files and say how labels are encoded; decoding, resizing, label mapping (or a custom class map) and
bad-sample handling live here once.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch.utils.data import Dataset

from .._errors import DataError
from .._utils import parse_size
from ..labels import CITYSCAPES_CLASSES, IGNORE_INDEX
from ._decode import LabelMap, decode_label_png, decode_rgb, resize_image, resize_label
from .class_map import ClassMap, load_class_map

OnBadSample = Literal["stop", "skip"]


@dataclass(frozen=True)
class Sample:
    """One dataset entry: ``name`` (relative stem), ``image`` path, ``label`` path (``None`` without labels), and
    an optional ``reference`` image (ACDC's normal-condition image of the same place)."""

    name: str
    image: Path
    label: Path | None
    reference: Path | None = None


class SegmentationFiles(Dataset):
    """A segmentation dataset over image/label files.

    Args:
        samples: the entries, in a fixed order.
        size: ``(W, H)`` / ``"WxH"`` to resize to (image antialiased bicubic/bilinear, label nearest), or ``None``.
        label_map: how raw label ids map to trainIds (``None`` when there are no labels).
        label_channel: channel of the class id in multi-channel labels (``None``: single-channel labels).
        on_bad_sample: ``"stop"`` raises a [`DataError`][uda.DataError] naming the file; ``"skip"`` warns, counts the
            skip and returns the next good sample instead (deterministically).
        interpolation: image resize filter, ``"bicubic"`` or ``"bilinear"``.
        excluded: problems found while listing files (e.g. missing pairs), one line per file.
        dataset: the registered name, for messages.
        class_map: a class-map YAML (or a loaded [`ClassMap`][uda.data.class_map.ClassMap]) that replaces
            ``label_map``: the ids stored in the label files map to its classes (see docs/datasets.md).

    Item:
        ``{"image": float32 (3, H, W) RGB in [0, 1], "label": int64 (H, W) trainIds, "name": str, "index": int}``;
        ``"label"`` is absent without labels; samples with a reference image add ``"reference"`` (float32
        (3, H, W), resized like the image). In skip mode an item that replaced a bad one also carries
        ``"skipped": [file, ...]`` (consumed by [`InfiniteLoader`][uda.data.InfiniteLoader]).
    """

    def __init__(
        self,
        samples: list[Sample],
        *,
        size: str | tuple[int, int] | None = None,
        label_map: LabelMap | None = None,
        label_channel: int | None = None,
        on_bad_sample: OnBadSample = "stop",
        interpolation: str = "bicubic",
        excluded: list[str] | None = None,
        dataset: str = "files",
        class_map: str | Path | ClassMap | None = None,
    ) -> None:
        if on_bad_sample not in ("stop", "skip"):
            raise DataError(f"{dataset}: on_bad_sample must be 'stop' or 'skip', not {on_bad_sample!r}")
        if interpolation not in ("bicubic", "bilinear"):
            raise DataError(f"{dataset}: interpolation must be 'bicubic' or 'bilinear', not {interpolation!r}")
        self.class_map = class_map if isinstance(class_map, ClassMap) or class_map is None else load_class_map(class_map)
        if self.class_map is not None and label_map is not None:
            label_map = self.class_map.label_map
        self._classes = self.class_map.classes if self.class_map is not None else CITYSCAPES_CLASSES
        self.samples = list(samples)
        self.size = parse_size(size)
        self.label_map = label_map
        self.label_channel = label_channel
        self.on_bad_sample = on_bad_sample
        self.interpolation = interpolation
        self.excluded = list(excluded or [])
        self.dataset = dataset
        self._has_labels = label_map is not None and all(s.label is not None for s in self.samples)
        self.num_skipped = 0
        """Bad samples skipped by this process (worker processes count their own; the loader sums them)."""
        if self.excluded:
            head = "; ".join(self.excluded[:5]) + (
                f"; … ({len(self.excluded)} in all)" if len(self.excluded) > 5 else ""
            )
            if on_bad_sample == "stop":
                raise DataError(
                    f"{dataset}: {head}. Restore the files, or set data.on_bad_sample=skip to leave them out"
                )
            warnings.warn(f"{dataset}: leaving out {len(self.excluded)} sample(s): {head}", stacklevel=3)

    @property
    def has_labels(self) -> bool:
        """Whether items carry a ``"label"``."""
        return self._has_labels

    @property
    def class_names(self) -> tuple[str, ...]:
        """The class names in trainId order: the 19 Cityscapes classes, or those of the class map."""
        return self._classes

    @property
    def num_classes(self) -> int:
        """``len(class_names)``."""
        return len(self._classes)

    def __len__(self) -> int:
        return len(self.samples)

    def load_label(self, sample: Sample, size: tuple[int, int] | None = None) -> torch.Tensor:
        """The uint8 trainIds of a sample, resized (nearest) to ``size=(W, H)`` if given.

        Unknown ids are looked for at full resolution (they raise); 8-bit ids are resized before the table
        lookup, which is then done on fewer pixels.
        """
        assert sample.label is not None and self.label_map is not None
        raw = decode_label_png(sample.label, channel=self.label_channel)
        self.label_map.check(raw, sample.label)
        if raw.dtype == torch.uint8:
            return self.label_map.apply(resize_label(raw, size), sample.label, check=False)
        return resize_label(self.label_map.apply(raw, sample.label, check=False), size)

    def load(self, index: int) -> dict[str, Any]:
        """Decode one sample without any bad-sample handling (errors raise)."""
        sample = self.samples[index]
        img = decode_rgb(sample.image)
        out: dict[str, Any] = {}
        if self.has_labels:
            out["label"] = self.load_label(sample, self.size or (img.shape[-1], img.shape[-2])).long()
        out["image"] = resize_image(img, self.size, self.interpolation)
        if sample.reference is not None:
            ref = decode_rgb(sample.reference)
            out["reference"] = resize_image(ref, self.size or (img.shape[-1], img.shape[-2]), self.interpolation)
        out["name"] = sample.name
        out["index"] = index
        return dict(sorted(out.items()))

    def __getitem__(self, index: int) -> dict[str, Any]:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"{self.dataset}: index {index} out of range (0..{len(self) - 1})")
        if self.on_bad_sample == "stop":
            return self.load(index)
        skipped: list[str] = []
        for step in range(len(self)):
            j = (index + step) % len(self)
            try:
                item = self.load(j)
            except DataError as e:
                self.num_skipped += 1
                skipped.append(str(e).split(": ")[0])
                warnings.warn(f"skipping bad sample: {e}", stacklevel=2)
                continue
            item["index"] = index
            if skipped:
                item["skipped"] = skipped
            return item
        raise DataError(f"{self.dataset}: every sample failed to load (first: {skipped[0]}); run `uda data check`")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.dataset!r}, {len(self)} samples, size={self.size})"


def as_choices(value: str | list[str] | tuple[str, ...], allowed: tuple[str, ...], dataset: str, what: str
               ) -> tuple[str, ...]:
    """An option given as ``"a,b"`` or a list, checked against ``allowed`` (order kept, no repeats)."""
    items = [v.strip() for v in value.split(",")] if isinstance(value, str) else [str(v).strip() for v in value]
    items = [v for v in items if v]
    if not items:
        raise DataError(f"{dataset}: {what} is empty; choose from {', '.join(allowed)}")
    for v in items:
        if v not in allowed:
            raise DataError(f"{dataset}: {what} '{v}' does not exist; choose from {', '.join(allowed)}")
    if len(set(items)) != len(items):
        raise DataError(f"{dataset}: {what} lists '{next(v for i, v in enumerate(items) if v in items[:i])}' twice")
    return tuple(items)


def require_dir(path: Path, dataset: str, what: str, fix: str) -> Path:
    """Raise a `DataError` naming ``path`` and ``fix`` when it is not a directory."""
    if not path.is_dir():
        raise DataError(f"{dataset}: {what} {path} does not exist; {fix}")
    return path


def resolve_images_root(samples: list[Sample], root: Path, images_root: str | Path | None) -> list[Sample]:
    """Point image paths at ``images_root`` (e.g. a translated cache), labels stay under ``root``.

    For each sample the first existing candidate wins: ``images_root/<path relative to root>``,
    ``images_root/<name>.png``, ``images_root/<name><suffix>``; when none exists the first is kept and loading
    reports the missing file.
    """
    if images_root is None:
        return samples
    iroot = Path(images_root)
    if not iroot.is_dir():
        raise DataError(f"images_root {iroot} does not exist; translate the dataset first or fix the path")
    out = []
    for s in samples:
        try:
            rel = s.image.relative_to(root)
        except ValueError:
            rel = Path(s.image.name)
        cands = [iroot / rel, iroot / f"{s.name}.png", iroot / f"{s.name}{s.image.suffix}"]
        image = next((c for c in cands if c.is_file()), cands[0])
        out.append(Sample(s.name, image, s.label, s.reference))
    return out


__all__ = [
    "IGNORE_INDEX", "OnBadSample", "Sample", "SegmentationFiles", "as_choices", "require_dir", "resolve_images_root",
]
