"""Evaluation reports: the per-class table in the layout of the MLFA paper's Table I (GTA5→Cityscapes,
19 classes) and Table II (SYNTHIA→Cityscapes, 16 classes) with the published rows beside the evaluated
model's (only when it was scored on Cityscapes), as
Markdown, CSV and a fixed-width terminal table; a row-normalized confusion-matrix heat map and a
per-class IoU bar chart as PNGs (matplotlib, Agg backend).

Example:
    >>> result = {"miou": 50.0, "per_class": {"road": 90.0, "sidewalk": None}, "protocol": "19"}
    >>> print(format_table(result).splitlines()[0].split()[:3])
    ['method', 'road', 'sidew']
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import UdaError
from .._io import atomic_write_bytes, atomic_write_text
from ..labels import CITYSCAPES_CLASSES, CITYSCAPES_PALETTE
from .metrics import ConfusionMatrix, class_names
from .published import PUBLISHED, PUBLISHED_SPLIT, SETUP_CLASSES, SETUP_DATASET, SETUP_PROTOCOL

__all__ = ["ABBREVIATIONS", "format_seeds_table", "format_table", "seeds_markdown", "table_rows", "write_report"]

ABBREVIATIONS: dict[str, str] = {
    "road": "road", "sidewalk": "sidew", "building": "build", "wall": "wall", "fence": "fence", "pole": "pole",
    "traffic light": "light", "traffic sign": "sign", "vegetation": "veg", "terrain": "terr", "sky": "sky",
    "person": "pers", "rider": "rider", "car": "car", "truck": "truck", "bus": "bus", "train": "train",
    "motorcycle": "motor", "bicycle": "bike",
}  # fmt: skip
"""Short class names for table headers (the papers' own abbreviations)."""


def _setup(setup: str | None) -> str | None:
    if setup is None:
        return None
    s = str(setup).lower()
    if s.startswith("gta"):
        return "gta5"
    if s.startswith("synthia"):
        return "synthia"
    if s.startswith("acdc") or s.startswith("cityscapes_acdc"):
        return "acdc"
    if s.replace(" ", "").replace("_", "").startswith(("darkzurich", "cityscapesdarkzurich")):
        return "darkzurich"
    raise UdaError(f"unknown report setup '{setup}'; use gta5, synthia, acdc, darkzurich or none")


def row_name(result: dict[str, Any], name: str | None = None) -> str:
    """The label of the evaluated model's row: ``name``, else the result's ``method`` (a run's recipe), else
    ``"this model"``."""
    return name or str(result.get("method") or "this model")


def shows_published(result: dict[str, Any], setup: str | None) -> bool:
    """Whether the published rows belong beside this result: a paper ``setup`` and a Cityscapes evaluation set
    (results without a ``dataset`` entry are taken to be Cityscapes, as before)."""
    s = _setup(setup)
    if s is None:
        return False
    data = str(result.get("dataset", "Cityscapes")).lower().replace(" ", "").replace("_", "")
    return data.startswith(SETUP_DATASET[s])


def table_rows(result: dict[str, Any], *, setup: str | None = None, name: str | None = None):
    """The table as data: ``(classes, rows)`` with rows ``(method, [IoU or None per class], mIoU)``.

    ``setup="gta5"``: Table I (19 classes, mIoU19) with MLFA, AdvEnt, CLAN, DLOW; ``"synthia"``: Table II
    (16 classes, mIoU16) with MLFA; ``None``: our classes and our ``miou`` only. The published rows (Cityscapes
    val numbers) are left out when the result was scored on another dataset.
    """
    name = row_name(result, name)
    setup = _setup(setup) if shows_published(result, setup) else None
    per_class = result.get("per_class", {})
    if setup is None:
        classes = list(per_class)
        ours = result.get("miou")
        return classes, [(name, [per_class.get(c) for c in classes], ours)]
    missing = [CITYSCAPES_CLASSES[i] for i in SETUP_CLASSES[setup] if CITYSCAPES_CLASSES[i] not in per_class]
    if missing:
        raise UdaError(f"the {setup} table needs the 19 Cityscapes classes; result lacks {', '.join(missing)}")
    classes = [CITYSCAPES_CLASSES[i] for i in SETUP_CLASSES[setup]]
    key = "miou" + SETUP_PROTOCOL[setup]
    ours = result.get(key, result.get("miou"))
    rows = [(method, [r["per_class"][c] for c in classes], r["miou"]) for method, r in PUBLISHED[setup].items()]
    rows.append((name, [per_class.get(c) for c in classes], ours))
    return classes, rows


def _fmt(v: float | None) -> str:
    return "–" if v is None else f"{v:.1f}"


def _miou_label(result: dict[str, Any], setup: str | None) -> str:
    setup = _setup(setup)
    return "mIoU" + (SETUP_PROTOCOL[setup] if setup else str(result.get("protocol", "")))


def format_table(result: dict[str, Any], *, setup: str | None = None, name: str | None = None) -> str:
    """A fixed-width terminal table (class abbreviations as headers), as printed by ``uda evaluate``.

    Args:
        result: the evaluation JSON (``per_class`` percentages, ``miou``, ``miou16`` …).
        setup: ``"gta5"`` (Table I rows), ``"synthia"`` (Table II rows) or ``None`` (ours only).
        name: the label of the evaluated row (default: the result's ``method``, else "this model").

    Returns:
        The table as text, one row per method, plus a line with mIoU16/mIoU13 when available.
    """
    classes, rows = table_rows(result, setup=setup, name=name)
    setup = setup if shows_published(result, setup) else None
    heads = [ABBREVIATIONS.get(c, c[:6]) for c in classes]
    width = max(5, *(len(h) for h in heads))
    mwidth = max(12, *(len(r[0]) for r in rows))
    miou_head = _miou_label(result, setup)
    lines = [f"{'method':<{mwidth}} " + " ".join(f"{h:>{width}}" for h in heads) + f" | {miou_head:>6}"]
    lines.append("-" * len(lines[0]))
    for method, values, miou in rows:
        lines.append(f"{method:<{mwidth}} " + " ".join(f"{_fmt(v):>{width}}" for v in values) + f" | {_fmt(miou):>6}")
    extra = [f"{k}={_fmt(result[k])}" for k in ("miou19", "miou16", "miou13") if k in result]
    if extra:
        lines.append(
            f"({result.get('num_images', '?')} images; protocol {result.get('protocol')}; " + ", ".join(extra) + ")"
        )
    return "\n".join(lines)


def _markdown(result: dict[str, Any], setup: str | None, name: str | None) -> str:
    name = row_name(result, name)
    setup = setup if shows_published(result, setup) else None
    classes, rows = table_rows(result, setup=setup, name=name)
    heads = [ABBREVIATIONS.get(c, c) for c in classes]
    title = {"gta5": "GTA5 → Cityscapes (Table I layout, 19 classes)",
             "synthia": "SYNTHIA → Cityscapes (Table II layout, 16 classes)",
             "acdc": "Cityscapes → ACDC (19 classes)",
             "darkzurich": "Cityscapes → Dark Zurich (19 classes)"}.get(_setup(setup) or "", "Per-class IoU")  # fmt: skip
    out = [f"### {title}", "", "| method | " + " | ".join(heads) + f" | {_miou_label(result, setup)} |"]
    out.append("|---|" + "---:|" * (len(heads) + 1))
    for method, values, miou in rows:
        cells = [_fmt(v) for v in values] + [f"**{_fmt(miou)}**" if method == name else _fmt(miou)]
        out.append(f"| {method} | " + " | ".join(cells) + " |")
    out.append("")
    extra = ", ".join(f"{k} = {_fmt(result[k])}" for k in ("miou19", "miou16", "miou13") if k in result)
    published = ""
    if setup is not None and _setup(setup) in ("gta5", "synthia"):
        published = " Published rows: DeepLab-v2 ResNet-101 (MLFA paper), Cityscapes val."
    elif setup is not None:  # test-server numbers next to a val (or other) evaluation: say so
        published = (f" Published rows: mIoU only, measured on {PUBLISHED_SPLIT[_setup(setup)]}, not on the split "
                     "scored here.")
    out.append(
        f"IoU in %, {result.get('dataset', 'evaluation set')}, {result.get('num_images', '?')} images, "
        f"protocol {result.get('protocol')}" + (f" ({extra})" if extra else "") + "."
        + published + " – = class absent from prediction and GT."
    )
    if setup is not None:
        out.append("")
        out.append(f"Selection: {result.get('selection', 'final checkpoint (no target labels used)')}.")
    if "label_free" in result:
        lf = result["label_free"]
        out.append("")
        out.append("Label-free scores: " + ", ".join(f"{k} = {v:.4f}" for k, v in lf.items() if isinstance(v, float)))
    return "\n".join(out) + "\n"


def _csv(result: dict[str, Any], setup: str | None, name: str | None) -> str:
    classes, rows = table_rows(result, setup=setup, name=name)
    setup = setup if shows_published(result, setup) else None
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["method", *classes, _miou_label(result, setup)])
    for method, values, miou in rows:
        writer.writerow([method, *("" if v is None else v for v in values), "" if miou is None else miou])
    return buf.getvalue()


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def _iou_bar(result: dict[str, Any], name: str | None) -> bytes:
    name = row_name(result, name)
    from matplotlib.figure import Figure  # no pyplot: the global backend stays untouched (Agg canvas)

    per_class = result["per_class"]
    names = list(per_class)
    values = [np.nan if per_class[c] is None else per_class[c] for c in names]
    colors = [np.array(CITYSCAPES_PALETTE[CITYSCAPES_CLASSES.index(c)]) / 255 if c in CITYSCAPES_CLASSES else "gray"
              for c in names]  # fmt: skip
    fig = Figure(figsize=(max(6, 0.45 * len(names)), 3.6))
    ax = fig.subplots()
    ax.bar(range(len(names)), np.nan_to_num(values), color=colors, edgecolor="black", linewidth=0.5)
    ax.set_xticks(range(len(names)), [ABBREVIATIONS.get(c, c) for c in names], rotation=60, ha="right")
    ax.set_ylim(0, 100)
    ax.set_ylabel("IoU (%)")
    miou = result.get("miou")
    if miou is not None:
        ax.axhline(miou, color="black", linestyle="--", linewidth=1)
    where = f", {result['dataset']}" if result.get("dataset") else ""
    ax.set_title(f"{name}: per-class IoU{where} (mIoU{result.get('protocol', '')} = {_fmt(miou)})")
    return _png(fig)


def _confusion_png(matrix: np.ndarray, names: tuple[str, ...]) -> bytes:
    from matplotlib.figure import Figure  # no pyplot: the global backend stays untouched (Agg canvas)

    m = matrix.astype(np.float64)
    rows = m.sum(1, keepdims=True)
    norm = np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)
    n = len(names)
    fig = Figure(figsize=(1.0 + 0.42 * n, 0.6 + 0.42 * n))
    ax = fig.subplots()
    im = ax.imshow(norm, cmap="viridis", vmin=0, vmax=1)
    labels = [ABBREVIATIONS.get(c, c) for c in names]
    ax.set_xticks(range(n), labels, rotation=60, ha="right")
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("prediction")
    ax.set_ylabel("ground truth")
    ax.set_title("confusion matrix (rows normalized)")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return _png(fig)


def write_report(
    result: dict[str, Any],
    out_dir: str | os.PathLike,
    *,
    setup: str | None = None,
    name: str | None = None,
    confusion: ConfusionMatrix | np.ndarray | None = None,
) -> dict[str, Path]:
    """Write the evaluation report into ``out_dir`` (atomic writes).

    Files: ``results.json`` (the evaluation JSON), ``table.md`` and ``table.csv`` (Table I/II layout with the
    published rows when ``setup`` is given), ``table.txt`` (the terminal table), ``iou_per_class.png`` and, when
    ``confusion`` is given, ``confusion_matrix.png`` (rows normalized) and ``confusion_matrix.csv`` (counts).

    Args:
        result: the evaluation JSON from [`evaluate`][uda.evaluation.evaluate].
        out_dir: folder to write into (created).
        setup: ``"gta5"``, ``"synthia"`` or ``None``; the published rows appear only for a Cityscapes result.
        name: the label of the evaluated row (default: the result's ``method``, else "this model").
        confusion: the [`ConfusionMatrix`][uda.evaluation.metrics.ConfusionMatrix] (or its (C, C) counts) of the evaluation.

    Returns:
        Mapping ``{"json", "markdown", "csv", "text", "iou_bar", "confusion", "confusion_csv"}`` → path
        (the confusion entries only when ``confusion`` was given).

    Example:
        >>> import tempfile
        >>> r = {"miou": 50.0, "per_class": {"road": 90.0, "sidewalk": 10.0}, "protocol": "19", "num_images": 1}
        >>> sorted(write_report(r, tempfile.mkdtemp()))
        ['csv', 'iou_bar', 'json', 'markdown', 'text']
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out / "results.json",
        "markdown": out / "table.md",
        "csv": out / "table.csv",
        "text": out / "table.txt",
        "iou_bar": out / "iou_per_class.png",
    }
    atomic_write_text(paths["json"], json.dumps(result, indent=2) + "\n")
    atomic_write_text(paths["markdown"], _markdown(result, setup, name))
    atomic_write_text(paths["csv"], _csv(result, setup, name))
    atomic_write_text(paths["text"], format_table(result, setup=setup, name=name) + "\n")
    atomic_write_bytes(paths["iou_bar"], _iou_bar(result, name))
    if confusion is not None:
        matrix = confusion.matrix if isinstance(confusion, ConfusionMatrix) else np.asarray(confusion)
        names = class_names(matrix.shape[0])
        paths["confusion"] = out / "confusion_matrix.png"
        paths["confusion_csv"] = out / "confusion_matrix.csv"
        atomic_write_bytes(paths["confusion"], _confusion_png(matrix, names))
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["gt \\ pred", *names])
        for n, row in zip(names, matrix.tolist()):
            writer.writerow([n, *row])
        atomic_write_text(paths["confusion_csv"], buf.getvalue())
    return paths


# --------------------------------------------------------------------------------------------- multi-seed runs


def _pm(stat: dict[str, Any] | None) -> str:
    if stat is None or stat.get("mean") is None:
        return "–"
    return f"{stat['mean']:.2f} ± {stat['std']:.2f}"


def format_seeds_table(summary: dict[str, Any]) -> str:
    """The terminal table of a multi-seed summary (`uda.engine.seeds.summarize`): one line per metric with
    mean ± std and each seed's value, then the per-class IoU means.

    Example:
        >>> s = {"seeds": [0, 1], "metrics": {"miou": {"mean": 41.0, "std": 1.0, "values": [40.0, 42.0]}},
        ...      "per_class": {"road": {"mean": 85.0, "std": 5.0, "values": [80.0, 90.0]}}}
        >>> print(format_seeds_table(s).splitlines()[1])
        miou            41.00 ± 1.00  (seed 0: 40.00, seed 1: 42.00)
    """
    seeds = summary["seeds"]
    width = max([12, *(len(c) for c in summary.get("per_class", {}))])
    lines = [f"{len(seeds)} seeds ({', '.join(map(str, seeds))}): mean ± std (population)"]
    for name, stat in summary.get("metrics", {}).items():
        each = ", ".join(f"seed {s}: {v:.2f}" for s, v in zip(seeds, stat["values"]) if v is not None)
        lines.append(f"{name:<{width + 2}}  {_pm(stat)}  ({each})")
    for name, stat in summary.get("per_class", {}).items():
        lines.append(f"  {name:<{width}}  {_pm(stat)}")
    return "\n".join(lines)


def seeds_markdown(summary: dict[str, Any]) -> str:
    """``seeds.md`` of a multi-seed run: the metrics and the per-class IoU as mean ± std with each seed's value.

    Args:
        summary: the multi-seed summary (`uda.engine.seeds.summarize`, the content of ``seeds.json``).

    Returns:
        Markdown text.

    Example:
        >>> s = {"seeds": [0, 1], "metrics": {"miou": {"mean": 41.0, "std": 1.0, "values": [40.0, 42.0]}},
        ...      "per_class": {}, "name": "demo"}
        >>> print(seeds_markdown(s).splitlines()[4])
        | miou | **41.00 ± 1.00** | 40.00 | 42.00 |
    """
    seeds = summary["seeds"]
    head = "| | mean ± std | " + " | ".join(f"seed {s}" for s in seeds) + " |"
    rule = "|---|---:|" + "---:|" * len(seeds)

    def row(name: str, stat: dict[str, Any], bold: bool) -> str:
        pm = _pm(stat)
        cells = ["–" if v is None else f"{v:.2f}" for v in stat["values"]]
        return f"| {name} | " + (f"**{pm}**" if bold else pm) + " | " + " | ".join(cells) + " |"

    title = summary.get("name") or summary.get("method") or "experiment"
    out = [f"### {title}: {len(seeds)} seeds", "", head, rule]
    out += [row(k, v, k == "miou") for k, v in summary.get("metrics", {}).items()]
    if summary.get("per_class"):
        out += ["", "Per-class IoU (%):", "", head, rule]
        out += [row(c, v, False) for c, v in summary["per_class"].items()]
    where = f" on {summary['dataset']}" if summary.get("dataset") else ""
    out += ["", f"Final evaluation of each seed's run (seed<N>/final.json){where}; standard deviation over the "
            "seeds with divisor n (population); – = class absent in a seed."]
    return "\n".join(out) + "\n"
