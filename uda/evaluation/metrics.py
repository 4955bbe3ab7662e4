"""Streaming semantic-segmentation metrics: a confusion matrix on the device, per-class IoU, mIoU over the
classes present and pixel accuracy, with the 19/16/13-class Cityscapes protocols (the
protocol of AdaptSegNet/ADVENT and of the MLFA paper, which reports GTA5→Cityscapes on 19 classes and
SYNTHIA→Cityscapes on 16).

Design (docs/evaluation.md): every batch costs **one** ``torch.bincount`` on the batch's device and no
host synchronisation. Predictions and targets are brought to ``uint8`` and encoded into a small code space
of ``(C + 2) × (C + 1)`` bins, so that no boolean mask is needed:

- target row ``t + 1`` for ``t`` in ``[0, C)``; the ignore label 255 wraps to row 0 (``uint8`` arithmetic);
  every other target value lands in the "bad target" row ``C + 1``;
- prediction column ``p`` for ``p`` in ``[0, C)``; every other prediction lands in the "bad prediction"
  column ``C``.

Out-of-range values are therefore *counted apart*, never silently mixed into the matrix, and reading any
result raises a [`UdaError`][uda.UdaError] when there were some. Integer inputs that are not ``uint8`` are
range-checked lazily (a running min/max on the device) for the same reason.

Example:
    >>> import torch
    >>> cm = ConfusionMatrix(3)
    >>> cm.update(torch.tensor([[0, 1, 2, 2]]), torch.tensor([[0, 1, 1, 255]]))
    >>> cm.matrix.tolist()
    [[1, 0, 0], [0, 1, 1], [0, 0, 0]]
    >>> [round(v, 3) for v in cm.iou().tolist()]
    [1.0, 0.5, 0.0]
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from .._errors import UdaError
from ..labels import CITYSCAPES_CLASSES, IGNORE_INDEX, NUM_CLASSES, PROTOCOLS

__all__ = ["ConfusionMatrix", "class_names", "miou_of", "resolve_protocol", "to_percent"]


def class_names(num_classes: int) -> tuple[str, ...]:
    """The 19 Cityscapes class names for a 19-class label space, ``class_0 …`` otherwise."""
    if num_classes == NUM_CLASSES:
        return CITYSCAPES_CLASSES
    return tuple(f"class_{i}" for i in range(num_classes))


def resolve_protocol(protocol: str | None, source: str | None = None) -> str:
    """Resolve ``"auto"`` to a concrete protocol.

    Args:
        protocol: ``"19"``, ``"16"``, ``"13"``, ``"auto"`` or ``None`` (= ``"auto"``).
        source: name of the source dataset the model was trained on, if known; ``"auto"`` picks ``"16"``
            for SYNTHIA-trained models (the paper's Table II) and ``"19"`` otherwise.

    Returns:
        ``"19"``, ``"16"`` or ``"13"``.

    Example:
        >>> resolve_protocol("auto", source="synthia")
        '16'
    """
    protocol = "auto" if protocol is None else str(protocol)
    if protocol == "auto":
        return "16" if source is not None and "synthia" in source.lower() else "19"
    if protocol not in PROTOCOLS:
        raise UdaError(f"unknown evaluation protocol '{protocol}'; use one of auto, {', '.join(PROTOCOLS)}")
    return protocol


def miou_of(iou: np.ndarray, classes: tuple[int, ...] | list[int] | None = None) -> float:
    """NaN-aware mean of an IoU vector over ``classes`` (all when ``None``); NaN when none is present."""
    values = np.asarray(iou, dtype=np.float64)
    if classes is not None:
        values = values[list(classes)]
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else float("nan")


def to_percent(value: float, digits: int = 2) -> float | None:
    """A ratio in [0, 1] as a percentage rounded to ``digits``; NaN → ``None`` (JSON ``null``)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return round(100.0 * float(value), digits)


class ConfusionMatrix:
    """A streaming confusion matrix (rows: ground truth, columns: prediction) kept on the device.

    Args:
        num_classes: number of classes ``C`` (at most 254: values are encoded as ``uint8``).
        device: where the counts live; ``None`` = the device of the first batch.

    Shape:
        - pred, target in `update`: any equal shapes, e.g. (B, H, W) or (H, W); integer dtypes.
        - `matrix`: (C, C) int64.

    Example:
        >>> cm = ConfusionMatrix(19)
        >>> cm.update(torch.zeros(2, 4, 4, dtype=torch.long), torch.zeros(2, 4, 4, dtype=torch.long))
        >>> cm.summary("19")["per_class"]["road"], cm.summary("19")["per_class"]["sidewalk"]
        (100.0, None)
    """

    def __init__(self, num_classes: int, device: torch.device | str | None = None) -> None:
        if not 1 <= int(num_classes) <= 254:
            raise UdaError(f"ConfusionMatrix supports 1..254 classes, got {num_classes}")
        self.num_classes = int(num_classes)
        self.device = torch.device(device) if device is not None else None
        self.num_images = 0
        self._hist: torch.Tensor | None = None  # ((C + 2) * (C + 1),) int64 on the device
        self._range: torch.Tensor | None = None  # (2,) int64: [-min, max] of non-uint8 inputs

    # ------------------------------------------------------------------ accumulation
    def _lazy_init(self, device: torch.device) -> None:
        if self.device is None:
            self.device = device
        c = self.num_classes
        self._hist = torch.zeros((c + 2) * (c + 1), dtype=torch.int64, device=self.device)
        self._range = torch.zeros(2, dtype=torch.int64, device=self.device)

    def _as_uint8(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.uint8:
            return x
        if x.dtype.is_floating_point or x.dtype == torch.bool or x.is_complex():
            raise UdaError(f"ConfusionMatrix.update expects integer class maps, got {x.dtype}; pass argmax(logits)")
        if x.numel():
            # values outside [0, 255] would wrap in the uint8 cast: remember the range, raise when read.
            lo, hi = torch.aminmax(x.reshape(-1))
            self._range = torch.maximum(self._range, torch.stack([-lo.long(), hi.long()]))
        return x.to(torch.uint8)

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch of predicted and ground-truth class maps (``target == 255`` is ignored).

        Args:
            pred: predicted trainIds in ``[0, C)``.
            target: ground-truth trainIds in ``[0, C)`` or 255 (ignore).
        """
        if pred.shape != target.shape:
            raise UdaError(
                f"prediction shape {tuple(pred.shape)} differs from label shape {tuple(target.shape)}; "
                "upsample the logits to the label size before the argmax"
            )
        if self._hist is None:
            self._lazy_init(target.device)
        pred = pred.to(self.device, non_blocking=True)
        target = target.to(self.device, non_blocking=True)
        self.num_images += pred.shape[0] if pred.dim() >= 3 else 1
        c = self.num_classes
        # uint8 arithmetic: 255 (ignore) + 1 wraps to row 0; [0, C) -> rows 1..C; the rest -> row C + 1.
        codes = (self._as_uint8(target) + 1).clamp_max_(c + 1).to(torch.int16)
        codes.mul_(c + 1).add_(self._as_uint8(pred).clamp_max(c))  # (…) int16 in [0, (C + 2)(C + 1)), in place
        self._hist += torch.bincount(codes.reshape(-1), minlength=(c + 2) * (c + 1))

    def reset(self) -> None:
        """Forget all counts."""
        self._hist = None
        self._range = None
        self.num_images = 0

    def all_reduce_(self) -> ConfusionMatrix:
        """Sum the counts of all processes (in place) when ``torch.distributed`` is initialized.

        Returns:
            ``self``.
        """
        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return self
        if self._hist is None:
            raise UdaError(
                "ConfusionMatrix.all_reduce_: call update() at least once on every process (or pass device=)"
            )
        dist.all_reduce(self._hist, op=dist.ReduceOp.SUM)
        dist.all_reduce(self._range, op=dist.ReduceOp.MAX)
        n = torch.tensor([self.num_images], dtype=torch.int64, device=self._hist.device)
        dist.all_reduce(n, op=dist.ReduceOp.SUM)
        self.num_images = int(n.item())
        return self

    @classmethod
    def from_matrix(cls, matrix: np.ndarray | torch.Tensor, num_images: int = 0) -> ConfusionMatrix:
        """Build from a (C, C) count matrix (rows ground truth, columns prediction)."""
        m = torch.as_tensor(np.asarray(matrix), dtype=torch.int64)
        if m.dim() != 2 or m.shape[0] != m.shape[1]:
            raise UdaError(f"a confusion matrix must be square (C, C), got {tuple(m.shape)}")
        cm = cls(m.shape[0], device="cpu")
        cm._lazy_init(torch.device("cpu"))
        c = cm.num_classes
        cm._hist.view(c + 2, c + 1)[1 : c + 1, :c] = m
        cm.num_images = num_images
        return cm

    # ------------------------------------------------------------------ results (host)
    def _table(self) -> np.ndarray:
        c = self.num_classes
        if self._hist is None:
            return np.zeros((c + 2, c + 1), dtype=np.int64)
        return self._hist.view(c + 2, c + 1).cpu().numpy()

    def check(self) -> None:
        """Raise [`UdaError`][uda.UdaError] if any counted value was outside the label space."""
        c = self.num_classes
        table = self._table()
        if self._range is not None:
            neg, hi = (int(v) for v in self._range.cpu())
            if neg > 0 or hi > 255:
                raise UdaError(
                    f"class maps hold values outside [0, {c}) and 255 (min {-neg}, max {hi}); "
                    "labels must be trainIds (convert label ids with uda.labels.labelid_to_trainid_lut)"
                )
        bad_target = int(table[c + 1].sum())
        if bad_target:
            raise UdaError(
                f"{bad_target} label pixels are outside [0, {c}) and not {IGNORE_INDEX}; labels must be trainIds "
                f"for {c} classes (convert label ids with uda.labels.labelid_to_trainid_lut)"
            )
        bad_pred = int(table[:, c].sum())
        if bad_pred:
            raise UdaError(
                f"{bad_pred} predicted pixels are outside [0, {c}); predictions must be trainIds of a {c}-class model"
            )

    @property
    def matrix(self) -> np.ndarray:
        """(C, C) int64 counts on the host, rows ground truth, columns prediction (ignored pixels excluded)."""
        self.check()
        c = self.num_classes
        return self._table()[1 : c + 1, :c].copy()

    @property
    def ignored_pixels(self) -> int:
        """Number of pixels whose label was 255."""
        return int(self._table()[0].sum())

    def iou(self) -> np.ndarray:
        """Per-class IoU = TP / (TP + FP + FN), float64 (C,), NaN for classes absent from both GT and prediction."""
        m = self.matrix.astype(np.float64)
        tp = np.diag(m)
        denom = m.sum(0) + m.sum(1) - tp
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(denom > 0, tp / np.maximum(denom, 1), np.nan)

    def miou(self, classes: tuple[int, ...] | list[int] | None = None) -> float:
        """Mean IoU over ``classes`` (all by default), ignoring NaN (classes absent from GT and prediction)."""
        return miou_of(self.iou(), classes)

    def pixel_accuracy(self) -> float:
        """Correct pixels / labelled pixels (NaN when nothing was labelled)."""
        m = self.matrix
        total = m.sum()
        return float(np.trace(m) / total) if total else float("nan")

    def summary(self, protocol: str = "19", digits: int = 2) -> dict[str, Any]:
        """The evaluation JSON (docs/evaluation.md), percentages rounded to ``digits``.

        Args:
            protocol: ``"19"``, ``"16"`` or ``"13"`` (``"auto"`` = ``"19"``): which mIoU is reported as ``miou``.
                ``miou19``, ``miou16`` and ``miou13`` are always present for the 19-class label space.
            digits: decimals of the rounded percentages.

        Returns:
            ``{"miou", "per_class", "num_images", "protocol", "miou19", "miou16", "miou13", "pixel_accuracy"}``;
            IoU values in percent, ``None`` for NaN.
        """
        protocol = resolve_protocol(protocol)
        iou = self.iou()
        names = class_names(self.num_classes)
        out: dict[str, Any] = {}
        if self.num_classes == NUM_CLASSES:
            subsets = {p: miou_of(iou, PROTOCOLS[p]) for p in ("19", "16", "13")}
            out["miou"] = to_percent(subsets[protocol], digits)
        elif protocol != "19":
            raise UdaError(
                f"protocol {protocol} needs the 19 Cityscapes classes, this evaluation has {self.num_classes}; "
                "use protocol 19"
            )
        else:
            subsets = {}
            out["miou"] = to_percent(miou_of(iou), digits)
        out["per_class"] = {n: to_percent(v, digits) for n, v in zip(names, iou.tolist())}
        out["num_images"] = int(self.num_images)
        out["protocol"] = protocol
        for p, v in subsets.items():
            out[f"miou{p}"] = to_percent(v, digits)
        out["pixel_accuracy"] = to_percent(self.pixel_accuracy(), digits)
        return out
