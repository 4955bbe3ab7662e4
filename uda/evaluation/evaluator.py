"""Evaluation of a model on a labelled split, and of a folder of saved predictions (the
protocol of AdaptSegNet, ADVENT and the MLFA paper; see docs/evaluation.md), with the label-free target scores
of [`LabelFreeScores`][uda.evaluation.label_free.LabelFreeScores] for model selection.

The default report is the final checkpoint; a result selected as the best on the validation labels must
carry ``selection=SELECTED_ON_TARGET_LABELS``.

Example:
    >>> import torch
    >>> from uda.config import EvalConfig
    >>> class Net(torch.nn.Module):
    ...     num_classes = 19
    ...     def forward(self, x):
    ...         return torch.zeros(x.shape[0], 19, x.shape[2], x.shape[3])
    >>> data = [{"image": torch.rand(3, 8, 16), "label": torch.zeros(8, 16, dtype=torch.long), "name": "a"}]
    >>> r = evaluate(Net(), data, EvalConfig(size=None), device="cpu", progress=False)
    >>> r["miou"], r["per_class"]["road"], r["num_images"]
    (100.0, 100.0, 1)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, Subset

from .._errors import DataError, UdaError
from ..config import EvalConfig
from .inference import infer
from .label_free import LabelFreeScores
from .metrics import ConfusionMatrix, resolve_protocol

__all__ = [
    "FINAL_CHECKPOINT",
    "PREDICTION_SUFFIXES",
    "SELECTED_ON_TARGET_LABELS",
    "EvalOptions",
    "evaluate",
    "evaluate_predictions",
    "prediction_stem",
]

FINAL_CHECKPOINT = "final checkpoint (no target labels used for selection)"
SELECTED_ON_TARGET_LABELS = "best checkpoint on target val (selected on target labels)"

PREDICTION_SUFFIXES: tuple[str, ...] = ("_gtFine_labelTrainIds", "_labelTrainIds", "_trainIds", "_leftImg8bit")
"""Suffixes stripped from a prediction file name (before ``.png``) to find its Cityscapes stem."""


def prediction_stem(filename: str) -> str:
    """The Cityscapes stem of a prediction file name.

    Example:
        >>> prediction_stem("frankfurt_000000_000294_leftImg8bit.png")
        'frankfurt_000000_000294'
    """
    stem = Path(filename).name
    if stem.lower().endswith(".png"):
        stem = stem[:-4]
    for suffix in PREDICTION_SUFFIXES:
        if stem.endswith(suffix):
            return stem[: -len(suffix)]
    return stem


def _dist_info(rank: int | None, world_size: int | None) -> tuple[int, int]:
    initialized = dist.is_available() and dist.is_initialized()
    if rank is None:
        rank = dist.get_rank() if initialized else 0
    if world_size is None:
        world_size = dist.get_world_size() if initialized else 1
    return rank, world_size


def _collate(items: list[dict]) -> dict[str, Any]:
    shapes = {tuple(it["image"].shape) for it in items}
    if len(shapes) > 1:
        raise DataError(f"images of one evaluation batch differ in size {sorted(shapes)}; use eval.batch_size=1")
    batch: dict[str, Any] = {
        "image": torch.stack([it["image"] for it in items]),
        "name": [it.get("name", "") for it in items],
    }
    if all("label" in it for it in items):
        batch["label"] = torch.stack([torch.as_tensor(it["label"]) for it in items])
    return batch


def _dataset_name(dataset: Any) -> str:
    return str(getattr(dataset, "name", None) or getattr(dataset, "root", None) or type(dataset).__name__)


_PRETTY = {"cityscapes": "Cityscapes", "gta5": "GTA5", "synthia": "SYNTHIA", "synthetic": "synthetic"}


def dataset_label(dataset: Any) -> str:
    """What a report calls the evaluation set, e.g. ``"Cityscapes val"`` or ``"synthetic (target) val"``.

    Example:
        >>> import uda
        >>> dataset_label(uda.create("dataset", "synthetic", split="val", size="64x32", num=1, domain="target"))
        'synthetic (target) val'
    """
    name = getattr(dataset, "dataset", None) or getattr(dataset, "name", None) or type(dataset).__name__
    label = _PRETTY.get(str(name), str(name))
    domain = getattr(dataset, "domain", None)
    if domain:
        label += f" ({domain})"
    split = getattr(dataset, "split", None)
    return f"{label} {split}" if split else label


def _check_classes(model: Any, dataset: Any, num_classes: int) -> None:
    ds_classes = getattr(dataset, "num_classes", None)
    if ds_classes is not None and int(ds_classes) != num_classes:
        raise UdaError(
            f"the model predicts {num_classes} classes but dataset {_dataset_name(dataset)} has {ds_classes}; "
            f"use a checkpoint trained for {ds_classes} classes (model.num_classes={ds_classes})"
        )


@dataclass
class EvalOptions:
    """How `evaluate` runs and what it adds to the result (everything but the model, the data and `EvalConfig`).

    Attributes:
        device: where to run; default the model's device.
        protocol: ``"19"``, ``"16"``, ``"13"`` or ``"auto"``; default ``cfg.protocol``. Decides which mIoU is
            ``miou``; ``miou19``/``miou16``/``miou13`` are always reported for the 19 classes.
        source: source dataset name, used by ``"auto"`` (SYNTHIA → 16 classes).
        rank: this process's rank (default from ``torch.distributed``).
        world_size: number of processes (default from ``torch.distributed``).
        num_workers: DataLoader workers.
        progress: show a tqdm bar (rank 0 only).
        label_free: also compute the label-free scores (``result["label_free"]``).
        report_dir: when given, rank 0 writes the report (tables, plots) there with `write_report`.
        setup: ``"gta5"`` / ``"synthia"``: the paper table the report shows beside ours.
        selection: how the checkpoint was chosen; default `FINAL_CHECKPOINT`; pass
            `SELECTED_ON_TARGET_LABELS` for a best-on-val choice.

    Example:
        >>> EvalOptions(device="cpu", progress=False).num_workers
        0
    """

    device: torch.device | str | None = None
    protocol: str | None = None
    source: str | None = None
    rank: int | None = None
    world_size: int | None = None
    num_workers: int = 0
    progress: bool = True
    label_free: bool = True
    report_dir: str | os.PathLike | None = None
    setup: str | None = None
    selection: str | None = None


_OPTION_NAMES = tuple(f.name for f in fields(EvalOptions))


def _options(options: EvalOptions | None, given: dict[str, Any]) -> EvalOptions:
    unknown = sorted(set(given) - set(_OPTION_NAMES))
    if unknown:
        raise TypeError(f"evaluate() got unknown option(s) {', '.join(unknown)}; EvalOptions has "
                        f"{', '.join(_OPTION_NAMES)}")
    return replace(options or EvalOptions(), **given)


def evaluate(
    model: torch.nn.Module,
    dataset: Dataset,
    cfg: EvalConfig | None = None,
    options: EvalOptions | None = None,
    **option_fields: Any,
) -> dict[str, Any]:
    """Evaluate ``model`` on a labelled ``dataset`` with the inference mode of ``cfg``.

    Build the dataset at its native size (``size=None``): labels are scored at the GT size and [`infer`][uda.evaluation.inference.infer]
    resizes the *input* to ``cfg.size`` (the papers' protocol) and upsamples the logits to the label size.
    Under ``torchrun`` every process scores every ``world_size``-th image and the counts are all-reduced.

    Args:
        model: a segmentation model; its train/eval mode is restored afterwards.
        dataset: items ``{"image": (3, H, W) in [0, 1], "label": (H, W) trainIds, "name": str}``.
        cfg: evaluation config (mode, size, batch_size, max_images, protocol, amp); default the papers' protocol.
        options: an `EvalOptions` (device, protocol, ranks, progress, report, ...); default `EvalOptions()`.
        **option_fields: single `EvalOptions` fields by keyword (``device="cpu", progress=False``), applied on
            top of ``options``.

    Returns:
        The evaluation JSON (``miou``, ``per_class``, ``num_images``, ``protocol``, ``miou19/16/13``,
        ``pixel_accuracy``) plus ``label_free`` ``{"entropy", "im_score"}`` and ``selection``.

    Raises:
        TypeError: a keyword that is not an `EvalOptions` field.
    """
    opts = _options(options, option_fields)
    device, rank, world_size = opts.device, opts.rank, opts.world_size
    num_workers, progress, label_free = opts.num_workers, opts.progress, opts.label_free
    report_dir, setup, selection = opts.report_dir, opts.setup, opts.selection
    cfg = cfg or EvalConfig()
    protocol = resolve_protocol(opts.protocol if opts.protocol is not None else cfg.protocol, opts.source)
    rank, world_size = _dist_info(rank, world_size)
    if device is None:
        device = next(iter(model.parameters()), torch.empty(0)).device
    device = torch.device(device)
    n = len(dataset)
    if cfg.max_images is not None:
        n = min(n, int(cfg.max_images))
    if n == 0:
        raise DataError(f"dataset {_dataset_name(dataset)} is empty; check --root and --split")
    subset = Subset(dataset, list(range(rank, n, world_size)))
    loader = DataLoader(subset, batch_size=max(1, cfg.batch_size), shuffle=False, num_workers=num_workers,
                        collate_fn=_collate, pin_memory=device.type == "cuda",
                        generator=torch.Generator().manual_seed(0))  # own generator: the training RNG stays as it is
    num_classes = getattr(model, "num_classes", None)
    cm: ConfusionMatrix | None = ConfusionMatrix(num_classes, device) if num_classes else None
    scores = LabelFreeScores(num_classes) if (label_free and num_classes) else None
    if num_classes:
        _check_classes(model, dataset, num_classes)
    was_training = model.training if isinstance(model, torch.nn.Module) else False
    if isinstance(model, torch.nn.Module):
        model.eval()
    try:
        from tqdm.auto import tqdm

        bar = tqdm(loader, desc="evaluate", unit="batch", disable=not progress or rank != 0, leave=False)
        for batch in bar:
            if "label" not in batch:
                raise DataError(
                    f"dataset {_dataset_name(dataset)} returned no labels; evaluate needs a labelled split (e.g. val)"
                )
            images = batch["image"].to(device, non_blocking=True)
            labels = batch["label"].to(device, non_blocking=True)
            logits = infer(model, images, cfg, out_size=tuple(labels.shape[-2:]))
            if cm is None:
                num_classes = logits.shape[1]
                _check_classes(model, dataset, num_classes)
                cm = ConfusionMatrix(num_classes, device)
                scores = LabelFreeScores(num_classes) if label_free else None
            if logits.shape[1] != cm.num_classes:
                raise UdaError(
                    f"the model returned {logits.shape[1]} class channels but declares {cm.num_classes}; "
                    "check the checkpoint's num_classes"
                )
            cm.update(logits.argmax(1).to(torch.uint8), labels)  # argmax is in [0, C): uint8 is exact
            if scores is not None:
                scores.update(logits)
    finally:
        if isinstance(model, torch.nn.Module):
            model.train(was_training)
    if cm is None:  # this rank had no images (more processes than images)
        cm = ConfusionMatrix(num_classes or 19, device)
        scores = LabelFreeScores(cm.num_classes) if label_free else None
    # An empty batch through the public update() allocates the counts on every rank (zeros), so the all-reduce
    # below meets the same tensors everywhere even where a rank saw no image.
    empty = torch.zeros(0, 1, 1, dtype=torch.uint8, device=device)
    cm.update(empty, empty)
    cm.all_reduce_()
    try:
        result = cm.summary(protocol)
    except UdaError as e:
        raise UdaError(f"dataset {_dataset_name(dataset)}: {e}") from None
    if scores is not None:
        scores.update(torch.zeros(0, cm.num_classes, 1, 1, device=device))  # the same for the label-free sums
        result["label_free"] = scores.all_reduce_().compute()
    result["selection"] = selection or FINAL_CHECKPOINT
    result["dataset"] = dataset_label(dataset)
    if report_dir is not None and rank == 0:
        from .report import write_report

        write_report(result, report_dir, setup=setup, confusion=cm)
    return result


def _index_predictions(pred_dir: Path) -> dict[str, Path]:
    root = pred_dir / "trainid" if (pred_dir / "trainid").is_dir() else pred_dir
    index: dict[str, Path] = {}
    for path in sorted(root.rglob("*.png")):
        stem = prediction_stem(path.name)
        if stem in index:
            raise DataError(
                f"two predictions for {stem}: {index[stem]} and {path}; keep one trainId PNG per image in {root}"
            )
        index[stem] = path
    return index


def _load_prediction(path: Path, gt_hw: tuple[int, int], num_classes: int) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.load()
            pred = np.asarray(img)
    except Exception as e:  # any decoder failure is a bad file
        raise DataError(f"cannot read prediction {path} ({e}); save predictions as single-channel PNGs") from None
    if pred.ndim != 2:
        raise DataError(
            f"prediction {path} has {pred.shape[-1]} channels; save single-channel trainId PNGs "
            "(uda predict --save trainid), not colour images"
        )
    if pred.shape != tuple(gt_hw):
        raise DataError(
            f"prediction {path} is {pred.shape[1]}x{pred.shape[0]} but its label is {gt_hw[1]}x{gt_hw[0]}; "
            "save predictions at the label size (upsample logits before the argmax)"
        )
    hi, lo = int(pred.max()), int(pred.min())
    if lo < 0 or hi >= num_classes:
        raise DataError(
            f"prediction {path} holds values up to {hi} outside the trainIds 0..{num_classes - 1}; "
            "save trainIds, not label ids or colours (uda predict --save trainid)"
        )
    return pred


def evaluate_predictions(
    pred_dir: str | os.PathLike,
    dataset: Dataset,
    *,
    protocol: str = "19",
    num_classes: int = 19,
    device: torch.device | str = "cpu",
    progress: bool = True,
    report_dir: str | os.PathLike | None = None,
    setup: str | None = None,
) -> dict[str, Any]:
    """Score a folder of saved trainId PNGs against a labelled dataset, matched by the Cityscapes stem.

    Accepted names for the image with stem ``frankfurt_000000_000294`` (``name`` ``frankfurt/…`` in the dataset):
    ``<stem>.png``, ``<stem>_leftImg8bit.png``, ``<stem>_trainIds.png``, ``<stem>_labelTrainIds.png`` or
    ``<stem>_gtFine_labelTrainIds.png``, anywhere below ``pred_dir`` (city subfolders or flat). When
    ``pred_dir/trainid`` exists (the layout `predict` writes) only that subfolder is read. Predictions
    are single-channel PNGs (mode ``L``/``P``) of trainIds ``0..C-1`` at the label's size.

    Args:
        pred_dir: folder of predictions.
        dataset: the labelled split (built at native size), items with ``"label"`` and ``"name"``.
        protocol: ``"19"``, ``"16"``, ``"13"`` (``"auto"`` = ``"19"``).
        num_classes: size of the label space.
        device: where the confusion matrix lives.
        progress: show a progress bar.
        report_dir: also write the report there.
        setup: ``"gta5"`` / ``"synthia"`` for the report's paper table.

    Returns:
        The evaluation JSON (see docs/evaluation.md).

    Raises:
        DataError: a missing, unreadable, wrongly sized or out-of-range prediction (one line naming the file).
    """
    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        raise DataError(f"prediction folder {pred_dir} does not exist; pass the --out folder of uda predict")
    protocol = resolve_protocol(protocol)
    index = _index_predictions(pred_dir)
    cm = ConfusionMatrix(num_classes, device)
    from tqdm.auto import tqdm

    for i in tqdm(range(len(dataset)), desc="evaluate predictions", unit="img", disable=not progress, leave=False):
        item = dataset[i]
        if "label" not in item:
            raise DataError(f"dataset {_dataset_name(dataset)} returned no labels; use a labelled split (e.g. val)")
        label = torch.as_tensor(item["label"])
        stem = prediction_stem(str(item.get("name", i)))
        if stem not in index:
            raise DataError(
                f"no prediction for {item.get('name', stem)} in {pred_dir}; expected {stem}.png or "
                f"{stem}_leftImg8bit.png (uda predict writes them)"
            )
        pred = _load_prediction(index[stem], tuple(label.shape[-2:]), num_classes)
        cm.update(torch.from_numpy(pred.astype(np.uint8)).unsqueeze(0), label.unsqueeze(0))
    if len(dataset) == 0:
        raise DataError(f"dataset {_dataset_name(dataset)} is empty; check --root and --split")
    try:
        result = cm.summary(protocol)
    except UdaError as e:
        raise UdaError(f"dataset {_dataset_name(dataset)}: {e}") from None
    result["dataset"] = dataset_label(dataset)
    if report_dir is not None:
        from .report import write_report

        write_report(result, report_dir, setup=setup, confusion=cm)
    return result
