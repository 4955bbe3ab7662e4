"""The translation stage's outputs: a translated copy of a dataset on disk, sample grids, saved translators.

MLFA (stage 1) and CyCADA-style pipelines translate every source image once, at training resolution, and
train the segmentation network on the cached images with the original labels. The cache is a folder that
reads like the original dataset (same relative image paths), so a file dataset reads it with
``images_root=out_dir`` while its labels still come from ``root``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import nn

from .._errors import CheckpointError, UdaError
from .._io import atomic_open, load_checkpoint, save_checkpoint
from .._registry import create
from .._utils import to_uint8
from ._base import Translator

Size = tuple[int, int]


def write_png(image: torch.Tensor, path: str | os.PathLike) -> None:
    """Write a (3, H, W) [0, 1] image as an 8-bit RGB PNG, atomically (temporary file, then rename)."""
    with atomic_open(path, "wb") as f:
        Image.fromarray(to_uint8(image)).save(f, format="PNG")


def image_relpath(dataset: Any, index: int, name: str | None, suffix: str) -> str:
    """The relative path of a dataset image inside the cache.

    ``dataset.image_relpath(index)`` when the dataset provides it, else ``name + suffix`` (the file datasets
    read ``images_root/<name>.png``).
    """
    fn = getattr(dataset, "image_relpath", None)
    if callable(fn):
        return str(fn(index))
    if name is None:
        raise UdaError(f"dataset item {index} has no 'name'; the translated cache needs names to mirror the layout")
    return f"{name}{suffix}"


def _name_without_loading(dataset: Any, index: int) -> str | None:
    samples = getattr(dataset, "samples", None)
    try:
        name = samples[index].name if samples is not None else None
    except (IndexError, AttributeError, TypeError):
        return None
    return name if isinstance(name, str) else None


def _pending(dataset: Any, out_dir: Path, suffix: str, counts: dict[str, int]) -> Iterator[tuple[Path, dict[str, Any]]]:
    for i in range(len(dataset)):
        name = _name_without_loading(dataset, i)
        known = name is not None or callable(getattr(dataset, "image_relpath", None))
        if known and (out_dir / image_relpath(dataset, i, name, suffix)).is_file():  # skip without decoding
            counts["skipped"] += 1
            continue
        item = dataset[i]
        dest = out_dir / image_relpath(dataset, i, item.get("name"), suffix)
        if dest.is_file():
            counts["skipped"] += 1
            continue
        yield dest, item


@torch.no_grad()
def translate_dataset(
    translator: nn.Module,
    dataset: Any,
    out_dir: str | os.PathLike,
    *,
    suffix: str = ".png",
    batch_size: int = 1,
    device: str | torch.device | None = None,
    target: torch.Tensor | None = None,
    progress: bool = True,
) -> dict[str, int]:
    """Translate every image of ``dataset`` into ``out_dir``, mirroring its relative paths; resumable.

    Files that already exist are skipped (so an interrupted run continues where it stopped); each file is
    written to a temporary name and renamed, so a crash never leaves a truncated image. Images are written as
    8-bit PNG at the size the dataset returns (build it with the training size).

    Args:
        translator: a translator, called as ``translator(batch, target)`` in eval mode.
        dataset: a dataset whose items carry ``"image"`` (3, H, W) in [0, 1] and ``"name"``. Existing files
            are skipped without decoding when the dataset exposes ``samples[i].name`` (the file datasets) or an
            ``image_relpath(index)`` method (whose path is then used instead of ``name + suffix``).
        out_dir: the cache root (use it as the dataset's ``images_root``).
        suffix: appended to ``item["name"]`` when the dataset has no ``image_relpath``.
        batch_size: images per translator call (consecutive images of the same size are batched).
        device: where the translator runs (default: where its parameters are, else CPU).
        target: target-style images for translators that need them (FDA), (B, 3, H, W) in [0, 1].
        progress: show a tqdm progress bar.

    Returns:
        ``{"written": n, "skipped": m}``.

    Example:
        >>> import uda, tempfile
        >>> ds = [{"image": torch.rand(3, 8, 8), "name": "a/b"}]
        >>> translate_dataset(uda.create("translator", "identity"), ds, tempfile.mkdtemp(), progress=False)
        {'written': 1, 'skipped': 0}
    """
    from tqdm.auto import tqdm

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if device is None:
        p = next(iter(translator.parameters()), None)
        device = p.device if p is not None else torch.device("cpu")
    device = torch.device(device)
    was_training = translator.training
    translator.eval()
    if target is not None:
        target = target.to(device)
    counts = {"written": 0, "skipped": 0}
    batch: list[tuple[Path, torch.Tensor]] = []

    def flush() -> None:
        if not batch:
            return
        images = torch.stack([img for _, img in batch]).to(device)
        translated = translator(images, target)
        for (dest, _), img in zip(batch, translated):
            write_png(img, dest)
            counts["written"] += 1
        bar.update(len(batch))
        batch.clear()

    bar = tqdm(total=len(dataset), desc="translate", unit="img", disable=not progress)
    try:
        for dest, item in _pending(dataset, out, suffix, counts):
            bar.n = counts["written"] + counts["skipped"] + len(batch)
            image = item["image"]
            if batch and (len(batch) >= batch_size or batch[0][1].shape != image.shape):
                flush()
            batch.append((dest, image))
        flush()
        bar.n = counts["written"] + counts["skipped"]
        bar.refresh()
    finally:
        bar.close()
        translator.train(was_training)
    return counts


def save_sample_grid(
    source: torch.Tensor,
    translated: torch.Tensor,
    reconstructed: torch.Tensor | None,
    path: str | os.PathLike,
    *,
    max_rows: int = 4,
    padding: int = 2,
) -> None:
    """Save a PNG grid: one row per sample, columns source | translated | reconstructed.

    Args:
        source: (B, 3, H, W) in [0, 1].
        translated: (B, 3, H, W) in [0, 1].
        reconstructed: (B, 3, H, W) in [0, 1] or ``None`` (two columns).
        path: output PNG path (written atomically).
        max_rows: at most this many samples.
        padding: white pixels between tiles.
    """
    cols = [source, translated] + ([reconstructed] if reconstructed is not None else [])
    n = min(max_rows, source.shape[0])
    h, w = source.shape[-2:]
    grid = torch.ones(3, n * h + (n + 1) * padding, len(cols) * w + (len(cols) + 1) * padding)
    for r in range(n):
        for c, imgs in enumerate(cols):
            y, x = padding + r * (h + padding), padding + c * (w + padding)
            grid[:, y : y + h, x : x + w] = imgs[r].detach().float().cpu().clamp(0, 1)
    write_png(grid, path)


def translator_checkpoint(translator: Translator) -> dict[str, Any]:
    """``{"name", "kwargs", "state_dict"}``: everything [`load_translator`][uda.translators.cache.load_translator] needs, without pickled code."""
    spec = translator.spec()
    if not spec["name"]:
        raise UdaError(
            f"{type(translator).__name__} does not record its registered name; subclass Translator and set spec_name"
        )
    return {"name": spec["name"], "kwargs": spec["kwargs"], "state_dict": translator.state_dict()}


def save_translator(translator: Translator, path: str | os.PathLike) -> None:
    """Save a translator to ``path`` (atomic, with a ``.sha256`` sidecar) as ``{"translator": {...}}``."""
    save_checkpoint({"translator": translator_checkpoint(translator)}, path)


TRANSLATOR_FILES = ("translator.pt", "checkpoints/translator.pt", "checkpoints/last.pt")


def translator_state_dict(ckpt: dict[str, Any]) -> dict[str, Any] | None:
    """The translator's state dict inside a training checkpoint (stored once, in the recipe's), or `None`.

    Checkpoints written before the translator was stored once hold it under `translator` as well.

    Example:
        >>> translator_state_dict({"recipe": {"model.w": 1, "translator.g.w": 2}})
        {'g.w': 2}
    """
    if isinstance(ckpt.get("translator"), dict):
        return ckpt["translator"]
    recipe = ckpt.get("recipe")
    if not isinstance(recipe, dict):
        return None
    out = {k[len("translator."):]: v for k, v in recipe.items() if k.startswith("translator.")}
    return out or None


def load_translator(path_or_run_dir: str | os.PathLike, *, map_location: Any = "cpu") -> Translator:
    """Restore a saved translator from a checkpoint file or a run directory.

    A checkpoint holds ``{"translator": {"name", "kwargs", "state_dict"}}`` (or those keys at the top level),
    or is a training checkpoint of `uda.engine` (``"translator"``: a state dict; the name and options
    come from its saved ``config.recipe.translator`` / ``translator_options``).
    For a directory, the first of ``translator.pt``, ``checkpoints/translator.pt``, ``checkpoints/last.pt``
    that exists is read.

    Args:
        path_or_run_dir: a checkpoint file or a run directory.
        map_location: where tensors are loaded.

    Returns:
        The translator (eval mode).

    Raises:
        CheckpointError: nothing loadable was found, or the file holds no translator.
    """
    path = Path(path_or_run_dir)
    if path.is_dir():
        found = next((path / f for f in TRANSLATOR_FILES if (path / f).is_file()), None)
        if found is None:
            raise CheckpointError(
                f"{path}: no translator checkpoint ({', '.join(TRANSLATOR_FILES)}); train a translator first"
            )
        path = found
    ckpt = load_checkpoint(path, map_location=map_location)
    entry = ckpt.get("translator", ckpt) if isinstance(ckpt, dict) else None
    if isinstance(ckpt, dict) and "recipe" in ckpt and "config" in ckpt:
        entry = translator_state_dict(ckpt)
    if isinstance(entry, dict) and "name" not in entry and entry is not ckpt:
        # A training checkpoint (uda.engine): the translator's bare state dict, its name in the saved config.
        recipe = (ckpt.get("config") or {}).get("recipe") or {}
        if recipe.get("translator"):
            entry = {
                "name": recipe["translator"],
                "kwargs": recipe.get("translator_options") or {},
                "state_dict": entry,
            }
    if not isinstance(entry, dict) or "name" not in entry or "state_dict" not in entry:
        raise CheckpointError(
            f"{path}: holds no translator (expected a 'translator' entry with name/kwargs/state_dict)"
        )
    translator = create("translator", entry["name"], **dict(entry.get("kwargs") or {}))
    try:
        translator.load_state_dict(entry["state_dict"])
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise CheckpointError(f"{path}: translator weights do not fit '{entry['name']}' ({first})") from None
    return translator.eval()
