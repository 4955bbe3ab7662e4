"""Rare-class sampling (RCS) as a stream-sampling dataset wrapper, with class statistics cached by content hash.

Paper: Hoyer et al., "DAFormer: Improving Network Architectures and Training Strategies for Domain-Adaptive
Semantic Segmentation", CVPR 2022 (T = 0.01, 3000 pixels, crop ratio 0.5); Hoyer et al., "HRDA", ECCV 2022
(crop ratio 2.0).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from .._errors import ConfigError, DataError
from .._io import atomic_write_text
from .._registry import register
from ..labels import IGNORE_INDEX
from ._rng import stream_generator
from .crop import RandomCropFlip

log = logging.getLogger(__name__)
CACHE_VERSION = 1


def default_cache_dir() -> Path:
    """``$UDA_CACHE_DIR/rcs`` when set, else ``~/.cache/uda/rcs``."""
    base = os.environ.get("UDA_CACHE_DIR")
    return (Path(base) if base else Path.home() / ".cache" / "uda") / "rcs"


def class_probabilities(counts: torch.Tensor, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``p(c) ∝ exp((1 − f_c)/T)`` over the classes present in ``counts`` (N, C) pixel counts.

    Returns:
        ``(classes, probs)``: the present class ids (int64) and their probabilities.

    Example:
        >>> import torch
        >>> c, p = class_probabilities(torch.tensor([[90, 10, 0]]), 0.1)
        >>> c.tolist(), [round(v, 4) for v in p.tolist()]
        ([0, 1], [0.0003, 0.9997])
    """
    total = counts.sum(0).double()
    classes = torch.nonzero(total > 0).flatten()
    freq = total[classes] / total[classes].sum()
    return classes, torch.softmax((1.0 - freq) / temperature, dim=0).float()


def _label_of(ds: Dataset, i: int) -> torch.Tensor | None:
    """The label of sample ``i`` as the dataset returns it, without decoding the image where possible."""
    if hasattr(ds, "load_label") and hasattr(ds, "samples"):
        sample = ds.samples[i]  # type: ignore[attr-defined]
        try:
            return ds.load_label(sample, getattr(ds, "size", None)).long()  # type: ignore[attr-defined]
        except DataError:
            if getattr(ds, "on_bad_sample", "stop") == "skip":
                return None  # never sampled by RCS
            raise
    item = ds[i]
    if "label" not in item:
        raise DataError("rare-class sampling needs a labelled (source) dataset; this one returns no 'label'")
    return item["label"]


def content_hash(ds: Dataset) -> str:
    """SHA-256 over the dataset's label content: the label files' bytes (file datasets) or the label tensors.

    A changed, added, removed or renamed label file, another resize or another dataset changes the hash.
    """
    h = hashlib.sha256()
    h.update(f"v{CACHE_VERSION}:{type(ds).__name__}:{getattr(ds, 'dataset', '')}:{getattr(ds, 'size', None)}:".encode())
    h.update(f"{getattr(ds, 'label_channel', None)}:{len(ds)}:".encode())  # type: ignore[arg-type]
    samples = getattr(ds, "samples", None)
    if samples is not None and all(getattr(s, "label", None) is not None for s in samples):
        for s in samples:
            h.update(s.name.encode() + b"\0")
            try:
                h.update(hashlib.sha256(Path(s.label).read_bytes()).digest())
            except OSError:
                h.update(b"<missing>")
        return h.hexdigest()
    for i in range(len(ds)):  # type: ignore[arg-type]
        lab = _label_of(ds, i)
        h.update(b"<none>" if lab is None else lab.to(torch.int16).numpy().tobytes() + str(tuple(lab.shape)).encode())
    return h.hexdigest()


def class_pixel_counts(ds: Dataset, num_classes: int, cache_dir: str | Path | None = None) -> torch.Tensor:
    """Per-sample pixel counts of every class, (N, num_classes) int64, cached on disk by `content_hash`.

    The cache file ``<cache_dir>/<hash>.json`` is written atomically; a different dataset content gives another
    file, so a changed dataset is never served stale statistics.
    """
    digest = content_hash(ds)
    path = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = path / f"{digest}.json"
    if path.is_file():
        try:
            obj = json.loads(path.read_text())
            counts = torch.tensor(obj["counts"], dtype=torch.long).reshape(-1, num_classes)
            if obj.get("hash") == digest and obj.get("num_classes") == num_classes and len(counts) == len(ds):  # type: ignore[arg-type]
                return counts
        except (ValueError, KeyError, RuntimeError):
            pass  # a foreign or damaged file: recompute and replace it
    log.info("rare-class sampling: counting the classes of %d source labels (cached in %s)", len(ds), path)  # type: ignore[arg-type]
    rows = []
    for i in range(len(ds)):  # type: ignore[arg-type]
        lab = _label_of(ds, i)
        if lab is None:
            rows.append(torch.zeros(num_classes, dtype=torch.long))
            continue
        lab = lab[lab != IGNORE_INDEX]
        rows.append(torch.bincount(lab.flatten(), minlength=num_classes)[:num_classes])
    counts = torch.stack(rows) if rows else torch.zeros(0, num_classes, dtype=torch.long)
    obj = {"hash": digest, "num_classes": num_classes, "counts": counts.tolist()}
    atomic_write_text(path, json.dumps(obj, separators=(",", ":")) + "\n")
    return counts


@register("sampler", "rcs")
class RareClassSampling(Dataset):
    """DAFormer's rare-class sampling: pick a class by rarity, then a source sample holding it, then a crop showing it.

    For stream position ``pos`` (``stream_sampling = True``), a generator seeded by ``(seed, pos)`` draws a class
    ``c`` with ``p(c) ∝ exp((1 − f_c)/T)`` (``f_c``: the class's share of all labelled source pixels), then a sample
    uniformly among those with more than ``min_pixels`` pixels of ``c``, then crops: when the dataset is a
    `RandomCropFlip`, its crop (with its ``cat_max_ratio`` retries) is redrawn up to ``max_tries`` times until
    more than ``min_crop_ratio · min_pixels`` pixels of ``c`` are in the crop (the last draw is kept otherwise).

    Class statistics are counted on first use from the labels as the dataset returns them (after its resize)
    and cached by a content hash of the label files (`class_pixel_counts`): no preprocessing command.

    Scale: the original counts ``min_pixels`` on the native-resolution label files (GTA5 1914×1052) but checks
    the crop at the training resolution (1280×720). Pass ``reference_size=(1914, 1052)`` to reproduce that: the
    sample threshold becomes ``min_pixels × (loaded area / reference area)`` while the crop threshold stays
    ``min_crop_ratio · min_pixels``. Without it, both thresholds count pixels at the loaded resolution.

    Args:
        dataset: the source dataset, or a `RandomCropFlip` around it (the crops RCS retries).
        num_classes: number of classes (19).
        temperature: T, 0.01.
        min_pixels: 3000.
        min_crop_ratio: 0.5 (DAFormer), 2.0 (HRDA); 0 disables the crop retries.
        max_tries: crop retries, 10.
        reference_size: ``(W, H)`` at which ``min_pixels`` is counted, or ``None`` (the loaded resolution).
        seed: the data seed.
        cache_dir: where statistics are cached (default `default_cache_dir`).

    Attributes:
        classes: the sampled class ids; probs: their probabilities; candidates: class id → sample indices.

    Example:
        >>> import tempfile, uda
        >>> ds = uda.create("dataset", "synthetic", num=4, size="64x32")
        >>> crops = uda.create("sampler", "crop_flip", dataset=ds, size=16, cat_max_ratio=0.75)
        >>> rcs = uda.create("sampler", "rcs", dataset=crops, min_pixels=20, cache_dir=tempfile.mkdtemp())
        >>> item = rcs[0]
        >>> item["image"].shape, int(item["rcs_class"]) in rcs.classes.tolist()
        (torch.Size([3, 16, 16]), True)
    """

    stream_sampling = True

    def __init__(
        self,
        dataset: Dataset,
        *,
        num_classes: int = 19,
        temperature: float = 0.01,
        min_pixels: int = 3000,
        min_crop_ratio: float = 0.5,
        max_tries: int = 10,
        reference_size: tuple[int, int] | None = None,
        seed: int = 0,
        cache_dir: str | Path | None = None,
    ) -> None:
        if temperature <= 0:
            raise ConfigError(f"rcs: temperature must be > 0, got {temperature}")
        if min_pixels < 0 or min_crop_ratio < 0:
            raise ConfigError(f"rcs: min_pixels and min_crop_ratio must be >= 0, got {min_pixels}, {min_crop_ratio}")
        self.crop = dataset if isinstance(dataset, RandomCropFlip) else None
        self.dataset = dataset.dataset if isinstance(dataset, RandomCropFlip) else dataset
        self.num_classes, self.temperature = int(num_classes), float(temperature)
        self.min_pixels, self.min_crop_ratio, self.max_tries = int(min_pixels), float(min_crop_ratio), int(max_tries)
        self.seed = int(seed)
        self.counts = class_pixel_counts(self.dataset, self.num_classes, cache_dir)
        sample_min = float(self.min_pixels)
        if reference_size is not None:
            size = getattr(self.dataset, "size", None)
            if size is None:
                raise ConfigError("rcs: reference_size needs a dataset resized to a fixed size (data.*.size)")
            sample_min *= (size[0] * size[1]) / (reference_size[0] * reference_size[1])
        self.sample_min_pixels = sample_min
        classes, probs = class_probabilities(self.counts, self.temperature)
        self.candidates: dict[int, torch.Tensor] = {}
        keep = []
        for k, c in enumerate(classes.tolist()):
            idx = torch.nonzero(self.counts[:, c] > sample_min).flatten()
            if idx.numel():
                self.candidates[c] = idx
                keep.append(k)
        if not keep:
            raise DataError(
                f"rcs: no source sample has more than {sample_min:.0f} pixels of any class; lower min_pixels"
            )
        dropped = sorted(set(classes.tolist()) - set(self.candidates))
        if dropped:
            log.warning("rcs: classes %s have no sample with more than %.0f pixels; not sampled", dropped, sample_min)
        self.classes = classes[keep]
        self.probs = probs[keep] / probs[keep].sum()

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, pos: int) -> dict[str, Any]:
        g = stream_generator(self.seed, pos, "rcs")
        c = int(self.classes[torch.multinomial(self.probs, 1, generator=g)])
        cand = self.candidates[c]
        idx = int(cand[int(torch.randint(0, cand.numel(), (1,), generator=g))])
        raw = self.dataset[idx]
        item = raw if self.crop is None else self.crop.transform(raw, g)
        if self.crop is not None and self.min_crop_ratio > 0:
            need = self.min_crop_ratio * self.min_pixels
            for _ in range(self.max_tries):
                if int((item["label"] == c).sum()) > need:
                    break
                item = self.crop.transform(raw, g)
        item = dict(item)
        item["rcs_class"] = c
        return item

    def __repr__(self) -> str:
        return f"RareClassSampling({self.dataset!r}, {len(self.classes)} classes, T={self.temperature})"


__all__ = ["RareClassSampling", "class_pixel_counts", "class_probabilities", "content_hash", "default_cache_dir"]
