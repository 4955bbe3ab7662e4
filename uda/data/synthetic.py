"""The built-in synthetic domain pair: procedural street scenes in a "game" and a "camera" style.

Not from a paper: a stand-in for GTA5 → Cityscapes that runs on a CPU in minutes. One layout generator draws
street scenes with Cityscapes classes (road, sidewalk, building, wall, fence, pole, traffic light/sign, vegetation,
terrain, sky, person, rider, car, bus, bicycle) into a trainId map; two renderers paint it:

* ``source`` ("game"): flat class colours with per-instance jitter, windows, lane marks, a soft sky gradient.
* ``target`` ("camera"): the same kind of scene seen through a different camera: per-class colour shifts, then a
  smooth global colour transform (hue rotation, desaturation, gain, haze, gamma), low-frequency texture, sensor
  noise, blur and vignetting.

Both domains use the same layout generator (so class frequencies match) but different scenes (no paired images).
The gap is mostly photometric and global, which image translation (CycleGAN, FDA) and feature alignment can
partly undo. Everything is deterministic per ``(seed, domain, index)``.

Example:
    >>> from uda.data.synthetic import render_scene
    >>> img, lab = render_scene(0, "source", (128, 64), seed=0)
    >>> img.shape, img.dtype, lab.shape, lab.dtype
    ((64, 128, 3), dtype('uint8'), (64, 128), dtype('uint8'))
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from .._errors import DataError
from .._registry import register
from .._utils import parse_size
from ..labels import CITYSCAPES_CLASSES
from .class_map import load_class_map

DOMAINS = ("source", "target")
VAL_OFFSET = 1_000_000
"""Validation scenes use indices ``VAL_OFFSET + i``: disjoint from training scenes."""

ROAD, SIDEWALK, BUILDING, WALL, FENCE, POLE, LIGHT, SIGN, VEG, TERRAIN, SKY = range(11)
PERSON, RIDER, CAR, TRUCK, BUS, TRAIN, MOTO, BICYCLE = range(11, 19)

# "game" base colours per trainId (RGB in [0, 1]); deliberately not the Cityscapes palette.
_SOURCE_COLOURS = np.array(
    [
        (0.45, 0.42, 0.45),  # road
        (0.70, 0.62, 0.58),  # sidewalk
        (0.60, 0.45, 0.35),  # building
        (0.55, 0.55, 0.50),  # wall
        (0.50, 0.38, 0.25),  # fence
        (0.30, 0.30, 0.32),  # pole
        (0.15, 0.15, 0.10),  # traffic light
        (0.90, 0.80, 0.10),  # traffic sign
        (0.20, 0.55, 0.15),  # vegetation
        (0.55, 0.65, 0.30),  # terrain
        (0.55, 0.75, 0.95),  # sky
        (0.80, 0.30, 0.30),  # person
        (0.85, 0.45, 0.10),  # rider
        (0.15, 0.25, 0.70),  # car
        (0.30, 0.20, 0.40),  # truck
        (0.85, 0.85, 0.80),  # bus
        (0.40, 0.40, 0.60),  # train
        (0.10, 0.10, 0.60),  # motorcycle
        (0.60, 0.10, 0.25),  # bicycle
    ],
    dtype=np.float32,
)

_DOMAIN_CODE = {"source": 0, "target": 1}


def _hue_matrix(degrees: float, saturation: float) -> np.ndarray:
    """3×3 RGB matrix: rotate hue around the grey axis and scale saturation."""
    a = np.deg2rad(degrees)
    c, s = np.cos(a), np.sin(a)
    grey = np.full((3, 3), 1.0 / 3.0)
    k = np.array([[0, -1, 1], [1, 0, -1], [-1, 1, 0]]) / np.sqrt(3.0)
    rot = c * np.eye(3) + s * k + (1 - c) * grey
    return (grey + saturation * (rot - grey)).astype(np.float32)


# The "camera": fixed per domain (independent of the user's seed), so that it is one learnable domain.
_CAMERA = {
    "class_shift": np.random.default_rng(20240613).uniform(-0.06, 0.06, size=(19, 3)).astype(np.float32),
    "matrix": _hue_matrix(30.0, 0.75),
    "gain": np.array([0.75, 0.90, 1.10], dtype=np.float32),
    "haze": np.array([0.10, 0.10, 0.12], dtype=np.float32),
    "gamma": 0.8,
}


class _Canvas:
    """Paints class ids and colours together (painter's algorithm: later shapes cover earlier ones)."""

    def __init__(self, w: int, h: int, rng: np.random.Generator) -> None:
        self.w, self.h, self.rng = w, h, rng
        self.label = np.full((h, w), SKY, dtype=np.uint8)
        self.rgb = np.zeros((h, w, 3), dtype=np.float32)
        self.ys = np.arange(h, dtype=np.float32)[:, None]
        self.xs = np.arange(w, dtype=np.float32)[None, :]

    def colour(self, cls: int, jitter: float = 0.06) -> np.ndarray:
        return np.clip(_SOURCE_COLOURS[cls] + self.rng.uniform(-jitter, jitter, 3), 0, 1).astype(np.float32)

    def fill(self, mask: np.ndarray | tuple[slice, slice], cls: int, colour: np.ndarray | None = None) -> None:
        self.label[mask] = cls
        self.rgb[mask] = self.colour(cls) if colour is None else colour

    def rect(self, x0: float, y0: float, x1: float, y1: float, cls: int, colour: np.ndarray | None = None) -> None:
        xa, xb = int(np.clip(round(x0), 0, self.w)), int(np.clip(round(x1), 0, self.w))
        ya, yb = int(np.clip(round(y0), 0, self.h)), int(np.clip(round(y1), 0, self.h))
        if xb > xa and yb > ya:
            self.fill((slice(ya, yb), slice(xa, xb)), cls, colour)

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, cls: int, colour: np.ndarray | None = None) -> None:
        rx, ry = max(rx, 0.6), max(ry, 0.6)
        mask = ((self.xs - cx) / rx) ** 2 + ((self.ys - cy) / ry) ** 2 <= 1.0
        if mask.any():
            self.fill(mask, cls, colour)


def _layout(c: _Canvas) -> None:
    """Draw one street scene on ``c`` (label and "game" colours)."""
    rng, w, h = c.rng, c.w, c.h
    hz = h * rng.uniform(0.36, 0.50)  # horizon row
    vx = w * rng.uniform(0.35, 0.65)  # vanishing point column
    road_w = rng.uniform(0.55, 0.9)  # road half-width at the bottom, in image widths
    side_w = rng.uniform(0.25, 0.5)  # sidewalk width relative to the road half-width
    # sky: vertical gradient
    sky = c.colour(SKY, 0.05)
    c.rgb[:] = sky * (0.85 + 0.15 * (c.ys / h))[..., None]
    # skyline of buildings and trees, left to right
    x = 0.0
    while x < w:
        seg = w * rng.uniform(0.08, 0.25)
        top = h * rng.uniform(0.03, 0.9) * hz / h
        if rng.random() < 0.25:  # a tree
            r = seg * 0.6
            c.rect(x + seg / 2 - max(1, seg * 0.06), hz - r, x + seg / 2 + max(1, seg * 0.06), hz + 1, VEG)  # trunk
            c.ellipse(x + seg / 2, hz - r, r, r * rng.uniform(0.8, 1.3), VEG)
        else:
            col = c.colour(BUILDING, 0.1)
            c.rect(x, top, x + seg, hz + 1, BUILDING, col)
            # windows: darker cells of the same class
            win = col * 0.55
            step = max(3.0, seg / 4)
            for wy in np.arange(top + step * 0.5, hz - step * 0.5, step):
                for wx in np.arange(x + step * 0.3, x + seg - step * 0.5, step):
                    c.rect(wx, wy, wx + step * 0.45, wy + step * 0.45, BUILDING, win)
        x += seg
    # ground below the horizon, row by row geometry (vectorised)
    t = np.clip((c.ys - hz) / (h - hz), 0, 1)  # (h, 1) 0 at horizon, 1 at bottom
    cx = vx + (w / 2 - vx) * t
    hw = t * w * road_w
    dx = np.abs(c.xs - cx)
    ground = c.ys >= hz
    side_l, side_r = rng.choice([TERRAIN, BUILDING, VEG, WALL], 2, p=[0.4, 0.3, 0.2, 0.1])
    beyond = ground & (dx >= hw * (1 + side_w))
    left = beyond & (c.xs < cx)
    c.fill(left, int(side_l))
    c.fill(beyond & ~left, int(side_r))
    c.fill(ground & (dx >= hw) & (dx < hw * (1 + side_w)), SIDEWALK)
    road = ground & (dx < hw)
    c.fill(road, ROAD)
    # lane marks: lighter dashes on the centre line, still road
    dash = road & (dx < np.maximum(0.6, hw * 0.02)) & ((np.floor((c.ys - hz) / max(2.0, h / 20)) % 2) == 0)
    c.rgb[dash] = np.clip(c.rgb[dash] + 0.35, 0, 1)
    # a fence along one sidewalk edge
    if rng.random() < 0.5:
        sgn = rng.choice([-1.0, 1.0])
        for yy in range(int(hz) + 1, h):
            tt = (yy - hz) / (h - hz)
            ex = vx + (w / 2 - vx) * tt + sgn * tt * w * road_w * (1 + side_w)
            fh = max(1.0, tt * h * 0.12)
            c.rect(ex - max(1, tt * w * 0.03), yy - fh, ex + max(1, tt * w * 0.03), yy, FENCE)

    def ground_point(tt: float, side: float) -> tuple[float, float]:
        yy = hz + tt * (h - hz)
        return vx + (w / 2 - vx) * tt + side * tt * w * road_w, yy

    # far to near: objects with increasing t
    objects: list[tuple[float, str, float]] = []
    for _ in range(rng.integers(1, 4)):
        objects.append((rng.uniform(0.1, 0.9), "pole", rng.choice([-1, 1]) * (1 + side_w * 0.5)))
    for _ in range(rng.integers(1, 5)):
        objects.append((rng.uniform(0.15, 1.0), "car", rng.uniform(-0.7, 0.7)))
    if rng.random() < 0.2:
        objects.append((rng.uniform(0.2, 0.8), "bus", rng.uniform(-0.5, 0.5)))
    for _ in range(rng.integers(0, 4)):
        objects.append((rng.uniform(0.15, 1.0), "person", rng.choice([-1, 1]) * (1 + side_w * rng.uniform(0.2, 0.8))))
    if rng.random() < 0.35:
        objects.append((rng.uniform(0.2, 1.0), "rider", rng.uniform(-0.8, 0.8)))
    for tt, kind, side in sorted(objects):
        x0, y0 = ground_point(tt, side)
        s = tt * h  # scale of an object at that depth
        if kind == "pole":
            pw = max(1.0, s * 0.03)
            ph = s * 0.9
            c.rect(x0 - pw / 2, y0 - ph, x0 + pw / 2, y0, POLE)
            if rng.random() < 0.5:
                c.rect(x0 - s * 0.06, y0 - ph - s * 0.02, x0 + s * 0.06, y0 - ph + s * 0.15, LIGHT)
                c.ellipse(x0, y0 - ph + s * 0.03, s * 0.025, s * 0.025, LIGHT, np.array([0.9, 0.2, 0.1], np.float32))
            else:
                c.rect(x0 - s * 0.09, y0 - ph * 0.95, x0 + s * 0.09, y0 - ph * 0.95 + s * 0.14, SIGN)
        elif kind in ("car", "bus"):
            cw = s * (0.55 if kind == "car" else 0.9) * rng.uniform(0.8, 1.2)
            ch = cw * (0.5 if kind == "car" else 0.7)
            cls = CAR if kind == "car" else BUS
            col = c.colour(cls, 0.15)
            c.rect(x0 - cw / 2, y0 - ch, x0 + cw / 2, y0, cls, col)
            c.rect(x0 - cw * 0.35, y0 - ch * 0.95, x0 + cw * 0.35, y0 - ch * 0.6, cls, col * 0.4 + 0.1)  # windows
            c.rect(x0 - cw / 2, y0 - ch * 0.15, x0 + cw / 2, y0, cls, col * 0.3)  # wheels / shadow
        elif kind == "person":
            ph = s * rng.uniform(0.3, 0.4)
            col = c.colour(PERSON, 0.15)
            c.ellipse(x0, y0 - ph * 0.45, ph * 0.14, ph * 0.45, PERSON, col)
            c.ellipse(x0, y0 - ph * 0.95, ph * 0.09, ph * 0.09, PERSON, col * 0.7 + 0.2)
        else:  # rider on a bicycle
            bw = s * 0.3
            c.rect(x0 - bw / 2, y0 - bw * 0.45, x0 + bw / 2, y0, BICYCLE)
            rh = s * 0.3
            c.ellipse(x0, y0 - bw * 0.45 - rh * 0.4, rh * 0.15, rh * 0.4, RIDER)
            c.ellipse(x0, y0 - bw * 0.45 - rh * 0.85, rh * 0.1, rh * 0.1, RIDER)


def _smooth(img: np.ndarray, passes: int) -> np.ndarray:
    """Separable binomial [1, 2, 1]/4 blur applied ``passes`` times along H and W (edge padding)."""
    for _ in range(passes):
        p = np.pad(img, ((1, 1), (0, 0), (0, 0)), mode="edge")
        img = (p[:-2] + 2 * p[1:-1] + p[2:]) * 0.25
        p = np.pad(img, ((0, 0), (1, 1), (0, 0)), mode="edge")
        img = (p[:, :-2] + 2 * p[:, 1:-1] + p[:, 2:]) * 0.25
    return img


def _low_freq(rng: np.random.Generator, h: int, w: int, cells: int, channels: int) -> np.ndarray:
    """Smooth random field (h, w, channels) in about [-1, 1] (bilinear upsampling of a coarse grid)."""
    gh, gw = max(2, h // cells + 2), max(2, w // cells + 2)
    grid = torch.from_numpy(rng.uniform(-1, 1, (1, channels, gh, gw)).astype(np.float32))
    up = F.interpolate(grid, size=(h, w), mode="bicubic", align_corners=True)[0]
    return up.permute(1, 2, 0).numpy()


def _camera(rgb: np.ndarray, label: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The "camera" style applied to a "game" rendering (all in float32 [0, 1])."""
    h, w = label.shape
    scale = max(1, round(w / 128))
    img = rgb + _CAMERA["class_shift"][label]  # per-class colour shift
    img = img * (1.0 + 0.18 * _low_freq(rng, h, w, 6 * scale, 1))  # texture / uneven lighting
    img = np.clip(img, 0, 1) @ _CAMERA["matrix"].T  # hue rotation + desaturation
    img = np.clip(img * _CAMERA["gain"] * rng.uniform(0.85, 1.1) + _CAMERA["haze"], 0, 1) ** _CAMERA["gamma"]
    img = _smooth(img, scale)  # slight blur
    yy = (np.arange(h, dtype=np.float32)[:, None] / h - 0.5) * 2
    xx = (np.arange(w, dtype=np.float32)[None, :] / w - 0.5) * 2
    img = img * (1.0 - 0.25 * (xx**2 + yy**2) / 2)[..., None]  # vignetting
    img = img + rng.normal(0.0, 0.035, img.shape).astype(np.float32)  # sensor noise
    return img


def render_scene(
    index: int, domain: str = "source", size: tuple[int, int] = (128, 64), seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Render one synthetic street scene.

    Args:
        index: scene index (any non-negative int; the dataset's val split uses ``VAL_OFFSET + i``).
        domain: ``"source"`` (clean "game" style) or ``"target"`` (the "camera" style).
        size: ``(W, H)``.
        seed: the dataset seed.

    Returns:
        ``(image, label)``: uint8 (H, W, 3) RGB and uint8 (H, W) trainIds (every pixel is labelled).

    Example:
        >>> img, lab = render_scene(3, "target", (64, 32))
        >>> bool((lab < 19).all())
        True
    """
    if domain not in DOMAINS:
        raise DataError(f"synthetic: domain must be 'source' or 'target', not {domain!r}")
    w, h = int(size[0]), int(size[1])
    if w < 8 or h < 8:
        raise DataError(f"synthetic: size {w}x{h} is too small; use at least 8x8")
    code = _DOMAIN_CODE[domain]
    c = _Canvas(w, h, np.random.default_rng([seed, code, index, 0]))
    _layout(c)
    style = np.random.default_rng([seed, code, index, 1])
    rgb = c.rgb + style.normal(0.0, 0.01, c.rgb.shape).astype(np.float32)  # the game's faint dither
    if domain == "target":
        rgb = _camera(rgb, c.label, style)
    image = (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)
    return image, c.label


@register("dataset", "synthetic")
class SyntheticDataset(Dataset):
    """Procedural street scenes rendered on the fly (no disk), in the ``source`` or ``target`` style.

    Args:
        split: ``"train"`` (indices ``0..num-1``) or ``"val"`` (disjoint indices ``VAL_OFFSET + i``).
        size: ``(W, H)`` / ``"WxH"``; default 128×64.
        domain: ``"source"`` or ``"target"``.
        num: number of scenes.
        seed: the dataset seed (scenes are a function of ``(seed, domain, index)``).
        labels: include ``"label"`` in items.
        root: unused (there is no disk); accepted so that every dataset takes the same arguments.
        class_map: a class-map YAML whose ``ids`` are the scene's trainIds (0..18), e.g. to merge classes.

    Example:
        >>> import uda
        >>> ds = uda.create("dataset", "synthetic", domain="target", num=4, size="64x32")
        >>> ds[0]["image"].shape, ds[0]["label"].dtype
        (torch.Size([3, 32, 64]), torch.int64)
    """

    def __init__(
        self,
        split: str = "train",
        size: str | tuple[int, int] | None = None,
        *,
        domain: str = "source",
        num: int | None = None,
        seed: int = 0,
        labels: bool = True,
        root: str | Path | None = None,
        on_bad_sample: str = "stop",
        class_map: str | Path | None = None,
    ) -> None:
        if domain not in DOMAINS:
            raise DataError(f"synthetic: domain must be 'source' or 'target', not {domain!r}")
        if split not in ("train", "val"):
            raise DataError(f"synthetic: split must be 'train' or 'val', not {split!r}")
        num = num if num is not None else (400 if split == "train" else 100)
        if num < 1:
            raise DataError(f"synthetic: num must be ≥ 1, not {num}")
        self.split, self.domain, self.num, self.seed, self.labels = split, domain, int(num), int(seed), labels
        self.size = parse_size(size) or (128, 64)
        self.dataset = "synthetic"
        self.num_skipped = 0
        self.excluded: list[str] = []
        self.class_map = load_class_map(class_map) if class_map is not None else None

    @property
    def has_labels(self) -> bool:
        """Whether items carry a ``"label"``."""
        return self.labels

    @property
    def class_names(self) -> tuple[str, ...]:
        """The class names in trainId order: the 19 Cityscapes classes, or those of the class map."""
        return self.class_map.classes if self.class_map is not None else CITYSCAPES_CLASSES

    @property
    def num_classes(self) -> int:
        """``len(class_names)``."""
        return len(self.class_names)

    def scene_index(self, index: int) -> int:
        """The generator index of item ``index`` (val items are offset to be disjoint from train)."""
        return index + (VAL_OFFSET if self.split == "val" else 0)

    def __len__(self) -> int:
        return self.num

    def __getitem__(self, index: int) -> dict[str, Any]:
        if index < 0:
            index += self.num
        if not 0 <= index < self.num:
            raise IndexError(f"synthetic: index {index} out of range (0..{self.num - 1})")
        img, lab = render_scene(self.scene_index(index), self.domain, self.size, self.seed)
        item: dict[str, Any] = {
            "image": torch.from_numpy(img).permute(2, 0, 1).float().div_(255.0),
            "index": index,
            "name": f"{self.domain}/{self.split}_{index:06d}",
        }
        if self.labels:
            label = torch.from_numpy(lab)
            if self.class_map is not None:
                label = self.class_map.label_map.apply(label, f"synthetic {self.split} scene {index}")
            item["label"] = label.long()
        return item

    def __repr__(self) -> str:
        return f"SyntheticDataset({self.domain!r}, {self.split!r}, num={self.num}, size={self.size}, seed={self.seed})"
