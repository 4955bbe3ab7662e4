"""Write the built-in synthetic domains to disk in the real layouts and label encodings of GTA5, SYNTHIA and
Cityscapes, so that every loader and command can be tried end to end without downloading anything."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .._errors import DataError
from .._utils import parse_size
from ..labels import TRAINID_TO_SYNTHIA_ID, build_lut, palette_array, trainid_to_labelid_lut
from .synthetic import VAL_OFFSET, render_scene

LAYOUTS = ("gta5", "synthia", "cityscapes")
TRAIN_CITIES = ("aachen", "bochum", "bremen")
VAL_CITIES = ("frankfurt", "lindau", "munster")


def _labelid_palette() -> list[int]:
    """A 256-colour palette indexed by Cityscapes label id (the class colours of GTA5's label PNGs)."""
    pal = np.zeros((256, 3), dtype=np.uint8)
    for lid, tid in enumerate(build_lut({v: k for k, v in enumerate(trainid_to_labelid_lut())}, default=255)):
        if tid < 19:
            pal[lid] = palette_array()[tid]
    return pal.reshape(-1).tolist()


def write_palettized(path: Path, ids: np.ndarray) -> None:
    """Write (H, W) uint8 ids as a palettized PNG (GTA5's label encoding)."""
    img = Image.fromarray(ids.astype(np.uint8), mode="P")
    img.putpalette(_labelid_palette())
    img.save(path)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def write_png16(path: Path, channels: np.ndarray) -> None:
    """Write (H, W, 3) uint16 as a 16-bit RGB PNG (SYNTHIA's label encoding).

    PIL cannot write 16-bit RGB and torchvision's encoder is 8-bit only, so the PNG is assembled here:
    IHDR (bit depth 16, colour type 2), one IDAT of big-endian rows each with filter byte 0, IEND.
    """
    h, w, c = channels.shape
    rows = channels.astype(">u2").reshape(h, w * c).view(np.uint8)  # (H, 6W) big-endian bytes
    raw = np.concatenate([np.zeros((h, 1), dtype=np.uint8), rows], axis=1).tobytes()
    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(raw, 6)) + _chunk(b"IEND", b"")
    Path(path).write_bytes(data)


def write_synthetic(
    out: str | Path,
    domain: str = "source",
    layout: str = "gta5",
    num: int = 10,
    size: tuple[int, int] | str = (256, 128),
    seed: int = 0,
    *,
    splits: tuple[str, ...] = ("train", "val"),
) -> dict[str, Any]:
    """Write synthetic scenes in a real dataset layout.

    Args:
        out: destination folder (created).
        domain: ``"source"`` or ``"target"``.
        layout: ``"gta5"`` (``images/NNNNN.png``, palettized ``labels/NNNNN.png`` of Cityscapes label ids),
            ``"synthia"`` (``RGB/NNNNNNN.png``, 16-bit 3-channel ``GT/LABELS/NNNNNNN.png``, SYNTHIA id in channel 0,
            instance id 0 in the others) or ``"cityscapes"`` (``leftImg8bit/<split>/<city>/…_leftImg8bit.png``,
            ``gtFine/…_gtFine_labelIds.png`` and ``…_gtFine_labelTrainIds.png``).
        num: scenes per split.
        size: ``(W, H)`` or ``"WxH"``.
        seed: the synthetic seed (the same scenes as ``uda.create("dataset", "synthetic", seed=seed, ...)``).
        splits: Cityscapes only: the splits to write (train cities aachen/bochum/bremen, val frankfurt/lindau/munster;
            val scenes are the synthetic ``val`` split).

    Returns:
        ``{"root", "layout", "domain", "num_files"}``.

    Example:
        >>> import tempfile
        >>> write_synthetic(tempfile.mkdtemp(), "source", "gta5", num=2, size=(64, 32))["num_files"]
        2
    """
    if layout not in LAYOUTS:
        raise DataError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    if num < 1:
        raise DataError(f"num must be ≥ 1, not {num}")
    size = parse_size(size) or (256, 128)
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"{out}: cannot create the output folder ({e}); choose a writable --out") from e
    count = 0
    if layout == "gta5":
        (out / "images").mkdir(exist_ok=True)
        (out / "labels").mkdir(exist_ok=True)
        to_id = trainid_to_labelid_lut()
        for i in range(num):
            img, lab = render_scene(i, domain, size, seed)
            Image.fromarray(img).save(out / "images" / f"{i + 1:05d}.png")
            write_palettized(out / "labels" / f"{i + 1:05d}.png", to_id[lab])
            count += 1
    elif layout == "synthia":
        (out / "RGB").mkdir(exist_ok=True)
        (out / "GT" / "LABELS").mkdir(parents=True, exist_ok=True)
        to_id = build_lut(TRAINID_TO_SYNTHIA_ID, default=0).astype(np.uint16)
        for i in range(num):
            img, lab = render_scene(i, domain, size, seed)
            Image.fromarray(img).save(out / "RGB" / f"{i:07d}.png")
            chans = np.zeros((*lab.shape, 3), dtype=np.uint16)
            chans[..., 0] = to_id[lab]
            write_png16(out / "GT" / "LABELS" / f"{i:07d}.png", chans)
            count += 1
    else:
        to_id = trainid_to_labelid_lut()
        for split in splits:
            if split not in ("train", "val"):
                raise DataError(f"cityscapes layout: split {split!r} must be 'train' or 'val'")
            cities = TRAIN_CITIES if split == "train" else VAL_CITIES
            offset = VAL_OFFSET if split == "val" else 0
            for i in range(num):
                city = cities[i % len(cities)]
                stem = f"{city}_{i // len(cities):06d}_{19:06d}"
                img_dir = out / "leftImg8bit" / split / city
                gt_dir = out / "gtFine" / split / city
                img_dir.mkdir(parents=True, exist_ok=True)
                gt_dir.mkdir(parents=True, exist_ok=True)
                img, lab = render_scene(offset + i, domain, size, seed)
                Image.fromarray(img).save(img_dir / f"{stem}_leftImg8bit.png")
                Image.fromarray(to_id[lab]).save(gt_dir / f"{stem}_gtFine_labelIds.png")
                Image.fromarray(lab).save(gt_dir / f"{stem}_gtFine_labelTrainIds.png")
                count += 1
    return {"root": str(out), "layout": layout, "domain": domain, "num_files": count}
