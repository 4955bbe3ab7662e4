"""Picture grids written at evaluation time: image | prediction | label, and source | translated."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .._utils import to_uint8
from ..labels import IGNORE_INDEX, colorize


def _colorize(lbl: torch.Tensor) -> np.ndarray:
    arr = lbl.detach().cpu().numpy().astype(np.int64)
    out = colorize(np.where(arr == IGNORE_INDEX, 0, arr))
    out[arr == IGNORE_INDEX] = 0
    return out


def _save_rows(rows: list[list[np.ndarray]], path: Path) -> np.ndarray:
    grid = np.concatenate([np.concatenate(r, axis=1) for r in rows], axis=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid).save(path)
    return grid


@torch.no_grad()
def prediction_grid(model: torch.nn.Module, dataset, path: Path, device: torch.device, num: int = 4) -> np.ndarray | None:
    """Rows of image | prediction | label for the first ``num`` items of ``dataset``; saved as PNG."""
    rows = []
    for i in range(min(num, len(dataset))):
        item = dataset[i]
        img = item["image"].to(device)[None]
        logits = model(img).logits
        pred = F.interpolate(logits.float(), size=img.shape[-2:], mode="bilinear", align_corners=True).argmax(1)[0]
        row = [to_uint8(img[0]), _colorize(pred)]
        if "label" in item:
            lbl = item["label"]
            if tuple(lbl.shape) != tuple(img.shape[-2:]):
                lbl = F.interpolate(lbl[None, None].float(), size=img.shape[-2:], mode="nearest")[0, 0].long()
            row.append(_colorize(lbl))
        rows.append(row)
    return _save_rows(rows, path) if rows else None


@torch.no_grad()
def translation_grid(translator: torch.nn.Module, source: torch.Tensor, target: torch.Tensor, path: Path,
                     num: int = 4) -> np.ndarray:
    """Rows of source | translated source | a target image; saved as PNG."""
    out = translator(source[:num], target[:num]).clamp(0, 1)
    rows = [[to_uint8(source[i]), to_uint8(out[i]), to_uint8(target[i % len(target)])] for i in range(len(out))]
    return _save_rows(rows, path)
