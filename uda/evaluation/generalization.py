"""Domain-generalization evaluation: one model scored on several labelled target datasets, one table.

The setting of the domain-generalization literature (e.g. Rein, Wei et al., CVPR 2024; HRDA's DG extension,
Hoyer et al., TPAMI 2024): train on one domain (Cityscapes, or GTA5), then report the mIoU on each unseen
dataset (ACDC, BDD100K, Mapillary Vistas, ...) on its validation split, 19 Cityscapes classes. The table has
one row per dataset: its mIoU, per-class IoU and number of images, plus the mean over the datasets; it is
written as JSON and Markdown (``generalization.json`` / ``generalization.md``, each written to a temporary file
and renamed). ``uda evaluate RUN --target acdc:PATH --target bdd100k:PATH ...`` is the command line of it;
see docs/settings/domain-generalization.md.

Example:
    >>> import torch
    >>> from uda.config import DatasetConfig, EvalConfig
    >>> model = lambda x: torch.zeros(x.shape[0], 19, x.shape[2], x.shape[3])
    >>> targets = [DatasetConfig(name="synthetic", split="val", size="32x16", options={"num": 2, "domain": "target"})]
    >>> table = evaluate_generalization(model, targets, EvalConfig(size=None), device="cpu", progress=False)
    >>> [(row["dataset"], row["num_images"]) for row in table["targets"]]
    [('synthetic', 2)]
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from .._errors import UdaError
from .._io import atomic_write_text
from ..config import DatasetConfig, EvalConfig
from .report import ABBREVIATIONS

__all__ = ["JSON_NAME", "MARKDOWN_NAME", "evaluate_generalization", "format_generalization",
           "generalization_markdown", "write_generalization"]

JSON_NAME = "generalization.json"
MARKDOWN_NAME = "generalization.md"


def evaluate_generalization(
    model: torch.nn.Module,
    targets: Sequence[DatasetConfig],
    cfg: EvalConfig | Sequence[EvalConfig] | None = None,
    *,
    device: torch.device | str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Score ``model`` on every labelled dataset in ``targets`` with `evaluate` and collect one table.

    Args:
        model: a segmentation model.
        targets: the datasets (name, root, split, options; ``size=None`` scores at the labels' native size, the
            papers' protocol); two entries with the same name, root, split and options are an error.
        cfg: the inference mode, one for all or one per target (default: `EvalConfig`'s).
        device: where to run (default: the model's device).
        progress: show tqdm bars.

    Returns:
        ``{"kind": "generalization", "classes": [...], "targets": [row, ...], "mean_miou": float}``; each row holds
        ``dataset`` (the registered name), ``label`` (the data set's own name), ``root``, ``split``,
        ``num_images``, ``miou``, ``per_class`` (IoU % or None for a class absent from that data set) and
        ``protocol``.

    Raises:
        UdaError: no targets, a repeated target, or as many eval configs as targets was not given.
    """
    from ..data import build_dataset
    from .evaluator import evaluate

    if not targets:
        raise UdaError("no target datasets to evaluate; pass --target DATASET:ROOT at least once")
    keys = [(t.name, t.root, t.split, json.dumps(t.options, sort_keys=True)) for t in targets]
    repeated = sorted({f"{k[0]}:{k[1]}" for k in keys if keys.count(k) > 1})
    if repeated:
        raise UdaError(f"target {', '.join(repeated)} is given twice; pass each dataset once")
    cfgs = list(cfg) if isinstance(cfg, Sequence) else [cfg or EvalConfig()] * len(targets)
    if len(cfgs) != len(targets):
        raise UdaError(f"{len(cfgs)} eval configs for {len(targets)} targets; pass one, or one per target")
    rows: list[dict[str, Any]] = []
    classes: list[str] = []
    for target, eval_cfg in zip(targets, cfgs):
        dataset = build_dataset(target, labels=True)
        result = evaluate(model, dataset, eval_cfg, device=device, progress=progress, label_free=False)
        per_class = dict(result["per_class"])
        classes = classes or list(per_class)
        rows.append({"dataset": target.name, "label": result.get("dataset", target.name), "root": target.root,
                     "split": target.split, "num_images": result["num_images"], "miou": result["miou"],
                     "per_class": per_class, "protocol": result.get("protocol")})
    mean = sum(r["miou"] for r in rows) / len(rows)
    return {"kind": "generalization", "classes": classes, "targets": rows, "mean_miou": mean}


def _fmt(v: float | None) -> str:
    return "–" if v is None else f"{v:.1f}"


def generalization_markdown(table: dict[str, Any], *, title: str | None = None) -> str:
    """The table as Markdown: one row per dataset (split, images, mIoU, per-class IoU), then the mean.

    Example:
        >>> t = {"classes": ["road"], "mean_miou": 50.0, "targets": [{"dataset": "acdc", "split": "val",
        ...      "num_images": 2, "miou": 50.0, "per_class": {"road": 50.0}}]}
        >>> generalization_markdown(t).splitlines()[2]
        '| dataset | split | images | mIoU | road |'
    """
    classes = table["classes"]
    heads = [ABBREVIATIONS.get(c, c) for c in classes]
    out = [f"### {title or 'Domain generalization: mIoU per target dataset'}", "",
           "| dataset | split | images | mIoU | " + " | ".join(heads) + " |",
           "|---|---|---:|---:|" + "---:|" * len(heads)]
    for row in table["targets"]:
        cells = [_fmt(row["per_class"].get(c)) for c in classes]
        out.append(f"| {row['dataset']} | {row['split']} | {row['num_images']} | **{_fmt(row['miou'])}** | "
                   + " | ".join(cells) + " |")
    out += ["", f"Mean mIoU over the {len(table['targets'])} datasets: **{_fmt(table['mean_miou'])}** "
            "(IoU in %; – = class absent from that dataset's labels).", ""]
    return "\n".join(out)


def format_generalization(table: dict[str, Any]) -> str:
    """A short terminal summary: dataset, split, images and mIoU per row, then the mean.

    Example:
        >>> t = {"mean_miou": 40.0, "targets": [{"dataset": "acdc", "split": "val", "num_images": 2, "miou": 40.0}]}
        >>> print(format_generalization(t))
        dataset     split  images   mIoU
        acdc        val         2   40.0
        mean                        40.0
    """
    lines = [f"{'dataset':<11} {'split':<5} {'images':>7} {'mIoU':>6}"]
    for row in table["targets"]:
        lines.append(f"{row['dataset']:<11} {row['split']:<5} {row['num_images']:>7} {_fmt(row['miou']):>6}")
    lines.append(f"{'mean':<11} {'':<5} {'':>7} {_fmt(table['mean_miou']):>6}")
    return "\n".join(lines)


def write_generalization(table: dict[str, Any], out_dir: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``generalization.json`` and ``generalization.md`` into ``out_dir`` (temporary file, then rename).

    Returns:
        ``(json path, markdown path)``.

    Example:
        >>> import tempfile
        >>> t = {"classes": [], "mean_miou": 1.0, "targets": [{"dataset": "acdc", "split": "val", "num_images": 1,
        ...      "miou": 1.0, "per_class": {}}]}
        >>> [p.name for p in write_generalization(t, tempfile.mkdtemp())]
        ['generalization.json', 'generalization.md']
    """
    out = Path(out_dir)
    json_path, md_path = out / JSON_NAME, out / MARKDOWN_NAME
    atomic_write_text(json_path, json.dumps(table, indent=2) + "\n")
    atomic_write_text(md_path, generalization_markdown(table))
    return json_path, md_path
