"""Fast PNG/JPEG decoding, resizing and label-id mapping shared by the file datasets.

Decoding uses ``torchvision.io`` (libpng/libjpeg on a tensor: no PIL round trip, 16-bit PNGs supported); images
are resized as uint8 tensors (bicubic or bilinear with antialias, the fast integer path of torchvision) and labels
with nearest neighbour. Every failure is a [`DataError`][uda.DataError] whose message starts with the file's path.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF
from torchvision.io import ImageReadMode, decode_image, decode_png, read_file

from .._errors import DataError
from ..labels import IGNORE_INDEX

# torchvision 0.29 marks its image codecs deprecated in favour of TorchCodec; they are still the fastest PNG path
# here, so the notice is silenced for these calls only (see docs/datasets.md).
warnings.filterwarnings(
    "ignore", message="The image decoding and encoding capabilities of TorchVision", category=DeprecationWarning
)

_INTERP = {"bicubic": TF.InterpolationMode.BICUBIC, "bilinear": TF.InterpolationMode.BILINEAR}


def _read(path: Path) -> torch.Tensor:
    try:
        return read_file(str(path))
    except (RuntimeError, OSError) as e:
        if not Path(path).exists():
            raise DataError(f"{path}: file not found; restore it or run `uda data check` to list all problems") from e
        raise DataError(f"{path}: cannot read the file ({e}); check its permissions") from e


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[-1] if text else type(e).__name__


def decode_rgb(path: Path) -> torch.Tensor:
    """Decode an image file to a uint8 RGB tensor.

    Args:
        path: a PNG or JPEG file.

    Returns:
        uint8 tensor (3, H, W). 16-bit PNGs are reduced to 8 bits.

    Raises:
        DataError: the file is missing, truncated or not an image (the message names the file).
    """
    data = _read(path)
    try:
        if str(path).lower().endswith(".png"):
            img = decode_png(data, mode=ImageReadMode.RGB)
        else:
            img = decode_image(data, mode=ImageReadMode.RGB)
    except (RuntimeError, ValueError) as e:
        raise DataError(
            f"{path}: corrupt or truncated image ({_first_line(e)}); re-extract it, or set "
            "data.on_bad_sample=skip to leave it out"
        ) from e
    if img.dtype == torch.uint16:
        img = (img.to(torch.int32) >> 8).to(torch.uint8)
    return img


def decode_label_png(path: Path, *, channel: int | None = None) -> torch.Tensor:
    """Decode a label PNG without any colour conversion.

    Args:
        path: the PNG file (palettized, grey, or 16-bit multi-channel).
        channel: the channel that holds the class id (``0`` = R for SYNTHIA); ``None`` requires a single-channel
            (palettized or grey) image.

    Returns:
        (H, W) uint8 or uint16 tensor of raw ids (palette *indices* for palettized PNGs).

    Raises:
        DataError: missing, corrupt, or an RGB label where ids were expected.
    """
    data = _read(path)
    try:
        raw = decode_png(data, mode=ImageReadMode.UNCHANGED)
    except (RuntimeError, ValueError) as e:
        raise DataError(
            f"{path}: corrupt or truncated label PNG ({_first_line(e)}); re-extract it, or set "
            "data.on_bad_sample=skip to leave it out"
        ) from e
    if channel is None:
        if raw.shape[0] != 1:
            raise DataError(
                f"{path}: label has {raw.shape[0]} channels but label ids in a palettized or single-channel PNG "
                "were expected (a colour-coded label?); convert it to ids"
            )
        channel = 0
    if channel >= raw.shape[0]:
        raise DataError(f"{path}: label has {raw.shape[0]} channel(s); channel {channel} holds the class id")
    return raw[channel]


@dataclass(frozen=True)
class LabelMap:
    """A table from the raw ids stored in label files to trainIds, with the set of ids that exist.

    Args:
        name: what the ids are, for messages (e.g. ``"Cityscapes label ids"``).
        mapping: raw id → trainId; ids that exist but are not among the training classes map to 255.
        known: every raw id that may occur (ids outside it are an error, never a silent label).

    Example:
        >>> from uda.data._decode import LabelMap
        >>> m = LabelMap("ids", {7: 0}, frozenset({0, 7}))
        >>> m.apply(torch.tensor([[7, 0]], dtype=torch.uint8), "x.png").tolist()
        [[0, 255]]
    """

    name: str
    mapping: dict[int, int]
    known: frozenset[int]

    def lut(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        """(trainId LUT uint8, known-id mask bool), both of length ``size``."""
        lut = np.full(size, IGNORE_INDEX, dtype=np.uint8)
        ok = np.zeros(size, dtype=bool)
        for k in self.known:
            if 0 <= k < size:
                ok[k] = True
        for k, v in self.mapping.items():
            if 0 <= k < size:
                lut[k] = v
        return lut, ok

    def unknown_values(self, raw: torch.Tensor) -> list[int]:
        """Raw ids present in ``raw`` that the map does not know (sorted)."""
        flat = raw.reshape(-1)
        if raw.dtype == torch.uint8:
            counts = torch.bincount(flat, minlength=256)
        else:
            flat = flat.to(torch.int32)  # uint16 tensors support few ops
            counts = torch.bincount(flat, minlength=int(flat.max()) + 1 if flat.numel() else 1)
        present = torch.nonzero(counts).flatten().tolist()
        return [v for v in present if v not in self.known]

    def check(self, raw: torch.Tensor, path: Path | str) -> None:
        """Raise a `DataError` naming ``path`` when ``raw`` holds ids the map does not know."""
        bad = self.unknown_values(raw)
        if bad:
            shown = ", ".join(map(str, bad[:8])) + (" …" if len(bad) > 8 else "")
            raise DataError(
                f"{path}: label values {shown} are not {self.name} (known: {_ranges(self.known)}); "
                "fix the file or give a label map that lists them"
            )

    def apply(self, raw: torch.Tensor, path: Path | str, *, check: bool = True) -> torch.Tensor:
        """Map raw ids to uint8 trainIds; unknown ids raise a `DataError` naming ``path``.

        Args:
            raw: (H, W) uint8/uint16 raw ids.
            path: the file, for the message.
            check: look for unknown ids first (skip only when ``raw`` was already checked).

        Returns:
            (H, W) uint8 trainIds (255 = ignore).
        """
        if check:
            self.check(raw, path)
        size = 256 if raw.dtype == torch.uint8 else 65536
        lut, _ = self._cached(size)
        arr = raw.numpy() if raw.dtype == torch.uint8 else raw.to(torch.int32).numpy()
        return torch.from_numpy(np.take(lut, arr))

    def _cached(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        cache = self.__dict__.setdefault("_luts", {})
        if size not in cache:
            cache[size] = self.lut(size)
        return cache[size]


def _ranges(values: frozenset[int]) -> str:
    vals = sorted(values)
    out: list[str] = []
    start = prev = vals[0] if vals else 0
    for v in [*vals[1:], None]:
        if v is not None and v == prev + 1:
            prev = v
            continue
        out.append(f"{start}" if start == prev else f"{start}..{prev}")
        if v is not None:
            start = prev = v
    return ", ".join(out)


def resize_image(img: torch.Tensor, size: tuple[int, int] | None, interpolation: str = "bicubic") -> torch.Tensor:
    """uint8 (3, H, W) → float32 (3, H', W') in [0, 1], resized to ``size=(W, H)`` with antialias.

    Args:
        img: uint8 image tensor.
        size: target ``(W, H)`` or ``None`` to keep the size.
        interpolation: ``"bicubic"`` (the originals' PIL BICUBIC) or ``"bilinear"``.

    Returns:
        float32 tensor in [0, 1].
    """
    if size is not None and (img.shape[-1], img.shape[-2]) != tuple(size):
        img = TF.resize(img, [size[1], size[0]], interpolation=_INTERP[interpolation], antialias=True)
    return img.float().div_(255.0)


def resize_label(label: torch.Tensor, size: tuple[int, int] | None) -> torch.Tensor:
    """uint8 (H, W) trainIds → (H', W') with nearest neighbour (values stay exact); ``size=(W, H)``."""
    if size is None or (label.shape[-1], label.shape[-2]) == tuple(size):
        return label
    return F.interpolate(label[None, None], size=(size[1], size[0]), mode="nearest-exact")[0, 0]
