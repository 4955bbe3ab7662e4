"""Prediction on image files and folders: trainId PNGs, colour PNGs (official Cityscapes palette), overlays
and labelId PNGs for the official Cityscapes evaluation server (Cordts et al.,
"The Cityscapes Dataset for Semantic Urban Scene Understanding", CVPR 2016).

Output layout: ``out_dir/<kind>/<relative path>/<image stem>.png`` for each kind in ``save``, where the
relative path is the image's path below the folder it was found in (e.g. the city subfolder), so that
``out_dir/trainid`` can be scored with [`evaluate_predictions`][uda.evaluation.evaluate_predictions] and
``out_dir/labelid`` zipped for the server.

Example:
    >>> import tempfile, torch
    >>> from PIL import Image
    >>> from uda.config import EvalConfig
    >>> d = tempfile.mkdtemp()
    >>> Image.new("RGB", (16, 8)).save(f"{d}/a.png")
    >>> model = lambda x: torch.zeros(x.shape[0], 19, x.shape[2], x.shape[3])
    >>> [p.name for p in predict(model, [f"{d}/a.png"], f"{d}/out", cfg=EvalConfig(size=None), progress=False)]
    ['a.png', 'a.png']
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import torch

from .._errors import DataError, UdaError
from .._io import atomic_write_bytes
from ..config import EvalConfig
from ..labels import colorize, trainid_to_labelid_lut
from .inference import infer

__all__ = ["IMAGE_EXTENSIONS", "SAVE_KINDS", "collect_images", "predict"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
SAVE_KINDS = ("trainid", "color", "overlay", "labelid")


def collect_images(inputs: list[str | os.PathLike]) -> list[tuple[Path, Path]]:
    """Expand files and folders (recursively) into ``(image path, relative output path)`` pairs, sorted.

    Raises:
        DataError: an input that does not exist, or a folder without images.
    """
    pairs: list[tuple[Path, Path]] = []
    for inp in inputs:
        path = Path(inp)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
            if not found:
                raise DataError(
                    f"folder {path} holds no images ({', '.join(IMAGE_EXTENSIONS)}); pass images or folders"
                )
            pairs.extend((p, p.relative_to(path).with_suffix(".png")) for p in found)
        elif path.is_file():
            pairs.append((path, Path(path.name).with_suffix(".png")))
        else:
            raise DataError(f"input {path} does not exist; pass image files or folders of images")
    return pairs


def _read_image(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as img:
            return np.array(img.convert("RGB"))
    except Exception as e:  # any decoder failure is a bad file
        raise DataError(f"cannot read image {path} ({type(e).__name__}); pass a PNG/JPEG image or remove it") from None


def _png_bytes(array: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def predict(
    model: torch.nn.Module,
    inputs: list[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    save: tuple[str, ...] | list[str] | str = ("trainid", "color"),
    cfg: EvalConfig | None = None,
    device: torch.device | str | None = None,
    progress: bool = True,
    alpha: float = 0.5,
) -> list[Path]:
    """Segment images and write the requested PNGs atomically.

    Args:
        model: a segmentation model (put in eval mode for the call, mode restored afterwards).
        inputs: image files and/or folders (searched recursively).
        out_dir: output folder; files go to ``out_dir/<kind>/<relative path>.png``.
        save: any of ``"trainid"`` (uint8 trainIds), ``"color"`` (official palette), ``"overlay"`` (colour
            blended over the image with ``alpha``), ``"labelid"`` (Cityscapes label ids for the official server);
            a comma-separated string is accepted.
        cfg: inference mode (default: the papers' resize protocol); logits are upsampled to each image's size.
        device: where to run (default: the model's device).
        progress: show a tqdm progress bar.
        alpha: overlay opacity of the colour map.

    Returns:
        The written paths, in input order, kinds in the order of ``save``.
    """
    if isinstance(save, str):
        save = tuple(s.strip() for s in save.split(",") if s.strip())
    unknown = [s for s in save if s not in SAVE_KINDS]
    if unknown or not save:
        raise UdaError(f"unknown --save kind(s) {', '.join(unknown) or '(none)'}; use any of {', '.join(SAVE_KINDS)}")
    cfg = cfg or EvalConfig()
    if device is None:
        params = list(model.parameters()) if isinstance(model, torch.nn.Module) else []
        device = params[0].device if params else torch.device("cpu")
    device = torch.device(device)
    out = Path(out_dir)
    pairs = collect_images(inputs)
    lut = trainid_to_labelid_lut()
    written: list[Path] = []
    was_training = model.training if isinstance(model, torch.nn.Module) else False
    if isinstance(model, torch.nn.Module):
        model.eval()
    try:
        from tqdm.auto import tqdm

        for src, rel in tqdm(pairs, desc="predict", unit="img", disable=not progress):
            rgb = _read_image(src)  # (H, W, 3) uint8
            x = torch.from_numpy(rgb).to(device).permute(2, 0, 1).unsqueeze(0).float().div_(255)
            logits = infer(model, x, cfg, out_size=rgb.shape[:2])
            trainid = logits.argmax(1)[0].to(torch.uint8).cpu().numpy()
            for kind in save:
                if kind == "trainid":
                    data = trainid
                elif kind == "color":
                    data = colorize(trainid)
                elif kind == "overlay":
                    data = (rgb * (1 - alpha) + colorize(trainid) * alpha).round().astype(np.uint8)
                else:
                    data = lut[trainid]
                path = out / kind / rel
                atomic_write_bytes(path, _png_bytes(data))
                written.append(path)
    finally:
        if isinstance(model, torch.nn.Module):
            model.train(was_training)
    return written
