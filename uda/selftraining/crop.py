"""Random crop (with mmseg's ``cat_max_ratio`` rule) and horizontal flip as a stream-sampling dataset wrapper.

Papers: Hoyer et al., "DAFormer", CVPR 2022 (512×512 crops, source ``cat_max_ratio`` 0.75, flip 0.5, the
MMSegmentation pipeline); Tranheden et al., "DACS", WACV 2021 (512 crops).
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import Dataset

from .._errors import ConfigError
from .._registry import register
from .._utils import parse_size
from ..labels import IGNORE_INDEX
from ._rng import epoch_index, stream_generator


def _randint(high: int, g: torch.Generator) -> int:
    return int(torch.randint(0, high, (1,), generator=g))


@register("sampler", "crop_flip")
class RandomCropFlip(Dataset):
    """Random ``size`` crops and horizontal flips of a dataset's items, drawn from ``(seed, pos)``.

    With ``stream_sampling = True`` the `InfiniteLoader` passes the stream position ``pos`` as the index. Epoch
    ``pos // len`` visits the samples in one permutation (seeded by ``(seed, epoch)``), and the crop offsets and
    the flip come from a generator seeded by ``(seed, pos)``: deterministic, resumable, independent of the worker
    count, and a new crop of a sample every epoch.

    The crop follows MMSegmentation's ``RandomCrop``: offsets uniform in ``[0, H − h]`` × ``[0, W − w]``; when
    ``cat_max_ratio < 1`` and the item has a label, the crop is redrawn (up to ``max_tries`` times) until it holds
    more than one class and no class covers ``cat_max_ratio`` or more of its labelled pixels (255 excluded); after
    the last failed check the last draw is kept. Images smaller than the crop are padded (image 0, label 255).
    Then a horizontal flip with probability ``flip``.

    Args:
        dataset: a map-style dataset of items ``{"image": (3, H, W), "label": (H, W) (optional), ...}``.
        size: crop ``(W, H)``, ``"WxH"`` or one int (square); 512.
        cat_max_ratio: 0.75 for the source, 1.0 (off) for the target.
        flip: horizontal-flip probability, 0.5.
        seed: the data seed.
        max_tries: crop redraws for the ``cat_max_ratio`` rule (10).
        ignore_index: the ignore label.

    Example:
        >>> import uda
        >>> ds = uda.create("dataset", "synthetic", num=3, size="64x32")
        >>> crops = uda.create("sampler", "crop_flip", dataset=ds, size=16, cat_max_ratio=0.75, seed=0)
        >>> item = crops[5]  # stream position 5
        >>> item["image"].shape, item["label"].shape
        (torch.Size([3, 16, 16]), torch.Size([16, 16]))
    """

    stream_sampling = True

    def __init__(
        self,
        dataset: Dataset,
        *,
        size: int | str | tuple[int, int] = 512,
        cat_max_ratio: float = 1.0,
        flip: float = 0.5,
        seed: int = 0,
        max_tries: int = 10,
        ignore_index: int = IGNORE_INDEX,
    ) -> None:
        wh = (int(size), int(size)) if isinstance(size, int) else parse_size(size, "crop_flip: size")
        if wh is None or min(wh) <= 0:
            raise ConfigError(f"crop_flip: size must be a positive int, (W, H) or 'WxH', got {size!r}")
        if not 0.0 < cat_max_ratio <= 1.0:
            raise ConfigError(f"crop_flip: cat_max_ratio must lie in (0, 1], got {cat_max_ratio}")
        if not 0.0 <= flip <= 1.0:
            raise ConfigError(f"crop_flip: flip must lie in [0, 1], got {flip}")
        self.dataset, self.size = dataset, wh
        self.cat_max_ratio, self.flip, self.seed = float(cat_max_ratio), float(flip), int(seed)
        self.max_tries, self.ignore_index = int(max_tries), int(ignore_index)
        self._perm: dict[int, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def _bbox(self, h: int, w: int, g: torch.Generator) -> tuple[int, int]:
        ch, cw = self.size[1], self.size[0]
        return _randint(max(h - ch, 0) + 1, g), _randint(max(w - cw, 0) + 1, g)

    def _ok(self, label: torch.Tensor) -> bool:
        cnt = torch.bincount(label[label != self.ignore_index].flatten())
        cnt = cnt[cnt > 0]
        return cnt.numel() > 1 and float(cnt.max()) / float(cnt.sum()) < self.cat_max_ratio

    def _pad(self, item: dict[str, Any]) -> dict[str, Any]:
        cw, ch = self.size
        img = item["image"]
        h, w = img.shape[-2:]
        if h >= ch and w >= cw:
            return item
        ph, pw = max(ch - h, 0), max(cw - w, 0)
        out = dict(item)
        out["image"] = torch.nn.functional.pad(img, (0, pw, 0, ph), value=0.0)
        if "label" in item:
            out["label"] = torch.nn.functional.pad(item["label"], (0, pw, 0, ph), value=self.ignore_index)
        return out

    def transform(self, item: dict[str, Any], g: torch.Generator) -> dict[str, Any]:
        """Crop and flip one item with draws from ``g`` (used by `RareClassSampling` for its retries)."""
        item = self._pad(item)
        cw, ch = self.size
        h, w = item["image"].shape[-2:]
        label = item.get("label")
        y, x = self._bbox(h, w, g)
        if label is not None and self.cat_max_ratio < 1.0:
            for _ in range(self.max_tries):
                if self._ok(label[y : y + ch, x : x + cw]):
                    break
                y, x = self._bbox(h, w, g)
        out = dict(item)
        out["image"] = item["image"][:, y : y + ch, x : x + cw]
        if label is not None:
            out["label"] = label[y : y + ch, x : x + cw]
        if float(torch.rand((), generator=g)) < self.flip:
            out["image"] = out["image"].flip(-1)
            if label is not None:
                out["label"] = out["label"].flip(-1)
        out["image"] = out["image"].contiguous()
        if label is not None:
            out["label"] = out["label"].contiguous()
        return out

    def __getitem__(self, pos: int) -> dict[str, Any]:
        idx = epoch_index(len(self), self.seed, pos, "crop", self._perm)
        item = self.dataset[idx]
        return self.transform(item, stream_generator(self.seed, pos, "crop"))

    def __repr__(self) -> str:
        return f"RandomCropFlip({self.dataset!r}, size={self.size}, cat_max_ratio={self.cat_max_ratio})"


__all__ = ["RandomCropFlip"]
