"""Tiny dataset trees in the exact on-disk formats, written into tmp_path."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import png
import pytest
from PIL import Image


def save_rgb(path: Path, h: int = 16, w: int = 32, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)


def save_palettized(path: Path, ids: np.ndarray) -> None:
    """GTA5's label encoding: a 'P'-mode PNG whose indices are Cityscapes label ids."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(ids.astype(np.uint8), mode="P")
    img.putpalette(list(np.random.default_rng(1).integers(0, 256, 768)))  # colours must not matter
    img.save(path)


def save_png16(path: Path, first: np.ndarray, other: int = 777) -> None:
    """SYNTHIA's label encoding: 16-bit, 3 channels, class id in the first; instance ids in the others."""
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = first.shape
    chans = np.full((h, w, 3), other, dtype=np.uint16)
    chans[..., 0] = first
    with open(path, "wb") as f:
        png.Writer(width=w, height=h, greyscale=False, bitdepth=16).write(f, chans.reshape(h, -1).tolist())


def truncate(path: Path, keep: int = 60) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:keep])


def all_ids(values: list[int], h: int = 16, w: int = 32) -> np.ndarray:
    """An (h, w) map cycling through ``values``."""
    return np.resize(np.array(values), h * w).reshape(h, w)


@pytest.fixture
def gta5_root(tmp_path: Path) -> Path:
    root = tmp_path / "GTA5"
    for i in range(1, 4):
        save_rgb(root / "images" / f"{i:05d}.png", seed=i)
        save_palettized(root / "labels" / f"{i:05d}.png", all_ids([*range(34), 255]))
    return root


@pytest.fixture
def synthia_root(tmp_path: Path) -> Path:
    root = tmp_path / "SYNTHIA"
    for i in range(3):
        save_rgb(root / "RGB" / f"{i:07d}.png", seed=i)
        save_png16(root / "GT" / "LABELS" / f"{i:07d}.png", all_ids(list(range(23))))
    return root


@pytest.fixture
def cityscapes_root(tmp_path: Path) -> Path:
    root = tmp_path / "cityscapes"
    for split, cities in (("train", ["aachen", "bochum"]), ("val", ["frankfurt"]), ("test", ["berlin"])):
        for city in cities:
            stem = f"{city}_000000_000019"
            save_rgb(root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png")
            ids = all_ids([*range(34), 255])
            gt = root / "gtFine" / split / city
            gt.mkdir(parents=True, exist_ok=True)
            Image.fromarray(ids.astype(np.uint8)).save(gt / f"{stem}_gtFine_labelIds.png")
            from uda.labels import labelid_to_trainid_lut

            Image.fromarray(labelid_to_trainid_lut()[ids]).save(gt / f"{stem}_gtFine_labelTrainIds.png")
    return root


__all__ = ["all_ids", "io", "save_palettized", "save_png16", "save_rgb", "truncate"]
