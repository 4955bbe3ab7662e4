"""Write the built-in synthetic domains to disk in the real layouts and label encodings of GTA5, SYNTHIA,
Cityscapes, ACDC, Dark Zurich, BDD100K and Mapillary Vistas, so that every loader and command can be tried end to
end without downloading anything."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .._errors import DataError
from .._io import atomic_open
from .._utils import parse_size
from ..labels import (
    MAPILLARY_ID_TO_TRAINID,
    MAPILLARY_PALETTE,
    TRAINID_TO_SYNTHIA_ID,
    build_lut,
    palette_array,
    trainid_to_labelid_lut,
)
from ._weather import render_condition
from .synthetic import DOMAINS, VAL_OFFSET, render_scene

LAYOUTS = ("gta5", "synthia", "cityscapes", "acdc", "darkzurich", "bdd100k", "mapillary")
ACDC_CONDITIONS = ("fog", "night", "rain", "snow")
DARKZURICH_TIMES = ("day", "twilight", "night")
DEFAULT_SPLITS = {
    "cityscapes": ("train", "val"),
    "acdc": ("train", "val", "test"),
    "darkzurich": ("train", "val", "test"),
    "bdd100k": ("train", "val"),
    "mapillary": ("train", "val"),
}
DEFAULT_SIZES = {"acdc": (192, 108), "darkzurich": (192, 108), "bdd100k": (160, 90), "mapillary": (192, 144)}
"""Scaled-down image sizes of the new layouts (the originals: 1920×1080, 1920×1080, 1280×720, about 4:3)."""
# Scene indices of the new layouts start at these offsets, so that no two layouts (nor the Cityscapes one) share
# a scene for the same seed; splits add 0 / VAL_OFFSET / 2·VAL_OFFSET, conditions 100,000 × their position.
_LAYOUT_OFFSET = {"acdc": 10_000_000, "darkzurich": 20_000_000, "bdd100k": 30_000_000, "mapillary": 40_000_000}
_SPLIT_OFFSET = {"train": 0, "val": VAL_OFFSET, "test": 2 * VAL_OFFSET}
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
    size: tuple[int, int] | str | None = None,
    seed: int = 0,
    *,
    splits: tuple[str, ...] | None = None,
    conditions: tuple[str, ...] | None = None,
    times: tuple[str, ...] | None = None,
    ref: bool = True,
) -> dict[str, Any]:
    """Write synthetic scenes in a real dataset layout.

    Args:
        out: destination folder (created).
        domain: ``"source"`` or ``"target"``.
        layout: ``"gta5"`` (``images/NNNNN.png``, palettized ``labels/NNNNN.png`` of Cityscapes label ids),
            ``"synthia"`` (``RGB/NNNNNNN.png``, 16-bit 3-channel ``GT/LABELS/NNNNNNN.png``, SYNTHIA id in channel 0,
            instance id 0 in the others) or ``"cityscapes"`` (``leftImg8bit/<split>/<city>/…_leftImg8bit.png``,
            ``gtFine/…_gtFine_labelIds.png`` and ``…_gtFine_labelTrainIds.png``), or one of the layouts of
            [`write_condition_layout`][uda.data._write.write_condition_layout]: ``"acdc"``, ``"darkzurich"``,
            ``"bdd100k"``, ``"mapillary"``.
        num: scenes per split (ACDC: per condition and split; Dark Zurich: per time of day and split).
        size: ``(W, H)`` or ``"WxH"``; default 256×128 (the first three), else `DEFAULT_SIZES`.
        seed: the synthetic seed (the same scenes as ``uda.create("dataset", "synthetic", seed=seed, ...)``).
        splits: the splits to write (Cityscapes: train cities aachen/bochum/bremen, val frankfurt/lindau/munster;
            val scenes are the synthetic ``val`` split); default `DEFAULT_SPLITS`; ignored by gta5/synthia.
        conditions: ACDC only: the conditions to write (default all four).
        times: Dark Zurich only: the times of day of the train split (default day, twilight, night).
        ref: ACDC only: also write the ``*_rgb_ref_anon.png`` reference images (same scene, clear).

    Returns:
        ``{"root", "layout", "domain", "num_files"}`` (``num_files``: images written, reference images not counted).

    Example:
        >>> import tempfile
        >>> write_synthetic(tempfile.mkdtemp(), "source", "gta5", num=2, size=(64, 32))["num_files"]
        2
    """
    if layout not in LAYOUTS:
        raise DataError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    if num < 1:
        raise DataError(f"num must be ≥ 1, not {num}")
    if domain not in DOMAINS:
        raise DataError(f"domain must be 'source' or 'target', not {domain!r}")
    if layout in _LAYOUT_OFFSET:
        return write_condition_layout(out, layout, num=num, size=size, seed=seed, domain=domain, splits=splits,
                                      conditions=conditions, times=times, ref=ref)
    size = parse_size(size) or (256, 128)
    splits = splits or DEFAULT_SPLITS["cityscapes"]
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


def _save(path: Path, array: np.ndarray, *, palette: list[int] | None = None, jpeg: bool = False) -> None:
    """Write an image atomically (temporary file, then rename): RGB PNG/JPEG, grey PNG, or palettized PNG."""
    img = Image.fromarray(array, mode="P" if palette is not None else None)
    if palette is not None:
        img.putpalette(palette)
    with atomic_open(path, "wb") as f:
        img.save(f, format="JPEG", quality=95) if jpeg else img.save(f, format="PNG")


def _mapillary_palette() -> list[int]:
    pal = np.zeros((256, 3), dtype=np.uint8)
    pal[: len(MAPILLARY_PALETTE)] = np.array(MAPILLARY_PALETTE, dtype=np.uint8)
    return pal.reshape(-1).tolist()


def _mapillary_ids(trainids: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Cityscapes trainIds → Vistas v1.2 ids, exercising the many-to-one mapping and the unmapped ids.

    Each pixel takes one of the Vistas ids of its class (the first with probability 0.8, e.g. road → road, else
    lane marking or manhole); the bottom 1/12 of the rows becomes ``void--ego-vehicle`` (64), which maps to 255.
    """
    cands: dict[int, list[int]] = {}
    for vid, tid in sorted(MAPILLARY_ID_TO_TRAINID.items()):
        cands.setdefault(tid, []).append(vid)
    primary = {0: 13, 1: 15, 5: 45, 12: 20}  # the class's own Vistas id first
    out = np.full(trainids.shape, 65, dtype=np.uint8)  # void--unlabeled
    draw = rng.random(trainids.shape)
    for tid, vids in cands.items():
        vids = sorted(vids, key=lambda v: v != primary.get(tid, v))
        mask = trainids == tid
        if len(vids) == 1:
            out[mask] = vids[0]
            continue
        out[mask] = vids[0]
        others = mask & (draw >= 0.8)
        pick = np.asarray(vids[1:], dtype=np.uint8)[(draw[others] * 1000).astype(np.int64) % (len(vids) - 1)]
        out[others] = pick
    h = trainids.shape[0]
    out[h - max(1, h // 12) :] = 64
    return out


def _key(layout: str, split: str, i: int, seed: int) -> str:
    """A deterministic file stem in the style of the dataset (hex pairs for BDD100K, 22-char keys for Vistas)."""
    rng = np.random.default_rng([seed, _LAYOUT_OFFSET[layout], _SPLIT_OFFSET[split], i])
    if layout == "bdd100k":
        a, b = rng.integers(0, 2**32, 2)
        return f"{a:08x}-{b:08x}"
    alphabet = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"))
    return "".join(alphabet[rng.integers(0, 64, 22)])


def _choice(values: tuple[str, ...] | None, allowed: tuple[str, ...], default: tuple[str, ...], what: str) -> tuple:
    values = tuple(values) if values else default
    bad = [v for v in values if v not in allowed]
    if bad or len(set(values)) != len(values):
        raise DataError(f"{what} {', '.join(bad) or 'listed twice'}: choose from {', '.join(allowed)}")
    return values


def write_condition_layout(
    out: str | Path,
    layout: str,
    num: int = 4,
    size: tuple[int, int] | str | None = None,
    seed: int = 0,
    *,
    domain: str = "target",
    splits: tuple[str, ...] | None = None,
    conditions: tuple[str, ...] | None = None,
    times: tuple[str, ...] | None = None,
    ref: bool = True,
) -> dict[str, Any]:
    """Write synthetic scenes under weather/light conditions in the ACDC, Dark Zurich, BDD100K or Vistas layout.

    Layouts (``<stem>`` is ``<seq>_frame_<NNNNNN>`` for ACDC/Dark Zurich, as in the originals):

    * ``acdc``: ``rgb_anon/<cond>/<split>/<seq>/<stem>_rgb_anon.png`` for each condition (fog/night/rain/snow
      painted by [`apply_condition`][uda.data._weather.apply_condition]) and split (train/val/test);
      ``gt/<cond>/<split>/<seq>/<stem>_gt_labelTrainIds.png`` and ``_gt_labelIds.png`` for train/val only;
      with ``ref``, ``rgb_anon/<cond>/<split>_ref/<seq>/<stem>_rgb_ref_anon.png`` (the same scene, clear).
    * ``darkzurich``: ``rgb_anon/train/<time>/<seq>/<stem>_rgb_anon.png`` for each time of day
      (day/twilight/night) without labels (as the original), ``rgb_anon/val/night/...`` with
      ``gt/val/night/<seq>/<stem>_gt_labelTrainIds.png`` and ``_gt_labelIds.png``, ``rgb_anon/test/night/...``
      without labels.
    * ``bdd100k``: the 2018 ``seg`` release: ``seg/images/<split>/<hex>-<hex>.jpg`` and
      ``seg/labels/<split>/<hex>-<hex>_train_id.png`` (grey PNG of trainIds, 255 = ignore); the scenes take a
      condition each from (clear, clear, twilight, night, rain), as BDD100K mixes times of day and weather.
    * ``mapillary``: ``training|validation/images/<key>.jpg`` and ``.../v1.2/labels/<key>.png``, palettized PNGs of
      the 66 Vistas ids with the Vistas palette (several ids per Cityscapes class, an ego-vehicle strip at the
      bottom that maps to ignore); conditions drawn from (clear, clear, clear, fog, snow, twilight). A ``test``
      split writes ``testing/images`` only.

    Args:
        out: destination folder (created).
        layout: ``"acdc"``, ``"darkzurich"``, ``"bdd100k"`` or ``"mapillary"``.
        num: scenes per split (and per condition / time of day where there are several).
        size: ``(W, H)`` / ``"WxH"``; default `DEFAULT_SIZES`.
        seed: the synthetic seed; the same arguments write the same bytes.
        domain: the base style of the scenes (``"target"``, the "camera", by default).
        splits: default `DEFAULT_SPLITS`.
        conditions: ACDC conditions (default all four).
        times: Dark Zurich train times of day (default all three; val and test are night).
        ref: ACDC reference images.

    Returns:
        ``{"root", "layout", "domain", "num_files"}`` (images, reference images not counted).

    Example:
        >>> import tempfile
        >>> write_condition_layout(tempfile.mkdtemp(), "acdc", num=1, size=(32, 18), conditions=("fog",),
        ...                        splits=("val",))["num_files"]
        1
    """
    if layout not in _LAYOUT_OFFSET:
        raise DataError(f"unknown layout {layout!r}; choose one of {', '.join(_LAYOUT_OFFSET)}")
    if num < 1:
        raise DataError(f"num must be ≥ 1, not {num}")
    size = parse_size(size) or DEFAULT_SIZES[layout]
    all_splits = ("train", "val", "test")
    splits = _choice(splits, all_splits, DEFAULT_SPLITS[layout], f"{layout} layout: split")
    conditions = _choice(conditions, ACDC_CONDITIONS, ACDC_CONDITIONS, "acdc layout: condition")
    times = _choice(times, DARKZURICH_TIMES, DARKZURICH_TIMES, "darkzurich layout: time of day")
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"{out}: cannot create the output folder ({e}); choose a writable --out") from e
    to_id = trainid_to_labelid_lut()
    base = _LAYOUT_OFFSET[layout]
    count = 0

    def scene(split: str, cond: str, ci: int, i: int) -> tuple[int, np.ndarray, np.ndarray]:
        index = base + _SPLIT_OFFSET[split] + 100_000 * ci + i
        return (index, *render_condition(index, cond, size, seed, domain))

    if layout in ("acdc", "darkzurich"):
        groups = (
            [(c, s) for c in conditions for s in splits]
            if layout == "acdc"
            else [(t, s) for s in splits for t in (times if s == "train" else ("night",))]
        )
        for cond, split in groups:
            ci = (ACDC_CONDITIONS if layout == "acdc" else DARKZURICH_TIMES).index(cond)
            for i in range(num):
                seq = f"GOPR{400 + 40 * ci + 10 * all_splits.index(split) + i % 2:04d}"
                stem = f"{seq}_frame_{i // 2:06d}"
                rel = Path(cond, split, seq) if layout == "acdc" else Path(split, cond, seq)
                index, img, lab = scene(split, cond, ci, i)
                _save(out / "rgb_anon" / rel / f"{stem}_rgb_anon.png", img)
                count += 1
                if layout == "acdc" and ref:
                    clear, _ = render_condition(index, "clear", size, seed, domain)
                    _save(out / "rgb_anon" / cond / f"{split}_ref" / seq / f"{stem}_rgb_ref_anon.png", clear)
                if split == "val" or (split == "train" and layout == "acdc"):  # Dark Zurich labels only val
                    _save(out / "gt" / rel / f"{stem}_gt_labelTrainIds.png", lab)
                    _save(out / "gt" / rel / f"{stem}_gt_labelIds.png", to_id[lab])
    else:
        mixes = {"bdd100k": ("clear", "clear", "twilight", "night", "rain"),
                 "mapillary": ("clear", "clear", "clear", "fog", "snow", "twilight")}[layout]
        folders = {"train": "training", "val": "validation", "test": "testing"}
        palette = _mapillary_palette()
        for split in splits:
            for i in range(num):
                key = _key(layout, split, i, seed)
                cond = mixes[np.random.default_rng([seed, base, _SPLIT_OFFSET[split], i, 3]).integers(len(mixes))]
                index, img, lab = scene(split, cond, 0, i)
                if layout == "bdd100k":
                    _save(out / "seg" / "images" / split / f"{key}.jpg", img, jpeg=True)
                    if split != "test":
                        _save(out / "seg" / "labels" / split / f"{key}_train_id.png", lab)
                else:
                    _save(out / folders[split] / "images" / f"{key}.jpg", img, jpeg=True)
                    if split != "test":
                        ids = _mapillary_ids(lab, np.random.default_rng([seed, base, index, 4]))
                        _save(out / folders[split] / "v1.2" / "labels" / f"{key}.png", ids, palette=palette)
                count += 1
    return {"root": str(out), "layout": layout, "domain": domain, "num_files": count}
