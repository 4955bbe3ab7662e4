"""Test-server submissions: the exact files, label encoding and zip layout the ACDC, Dark Zurich and Cityscapes
benchmark servers take, written by ``uda predict ... --submission acdc|darkzurich|cityscapes --out DIR``.

The rules are data (`SUBMISSION_FORMATS`); docs/settings/submissions.md lists them with their sources:

- ``acdc`` (ACDC, Sakaridis et al., ICCV 2021; server acdc.vision.ee.ethz.ch/submit): one PNG per test image
  at the image's full 1920x1080 resolution, named as the image (``<stem>_rgb_anon.png``), pixel values the 19
  Cityscapes trainIds (uint8), all at the top level of one zip. This is what the HRDA and MIC code writes for
  its ACDC test rows (``tools/test.py --format-only --eval-option imgfile_prefix=labelTrainIds
  to_label_id=False``: trainId PNGs named after the image).
- ``darkzurich`` (Dark Zurich, Sakaridis et al., ICCV 2019 / TPAMI 2020; CodaLab server of GCMA/UIoU): the zip
  holds three top-level folders with one PNG per test image each, named as the image: ``labelTrainIds/``
  (trainIds, uint8), ``confidence/`` (the prediction's confidence as uint16, 0…65535 ↔ 0…1) and
  ``labelTrainIds_invalid/`` (trainIds with 255 where the prediction is declared invalid; we declare none, so
  the uncertainty-aware UIoU equals the IoU). Here the confidence is the softmax maximum.
- ``cityscapes`` (Cordts et al., CVPR 2016; cityscapes-dataset.com/submit, cityscapesScripts): one PNG per test
  image at 2048x1024, Cityscapes **labelIds** (uint8), named so that it contains ``<city>_<seq>_<frame>``
  (we keep the image's name ``<city>_<seq>_<frame>_leftImg8bit.png``), folders free (we write none).

Example:
    >>> SUBMISSION_FORMATS["darkzurich"].folders
    ('labelTrainIds', 'confidence', 'labelTrainIds_invalid')
    >>> submission_name("acdc", "GOPR0475_frame_000041_rgb_anon.png")
    'GOPR0475_frame_000041_rgb_anon.png'
"""

from __future__ import annotations

import io
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .._errors import DataError, UdaError
from .._io import atomic_open
from ..config import EvalConfig
from ..labels import trainid_to_labelid_lut
from .inference import infer

__all__ = ["SUBMISSION_FORMATS", "SubmissionFormat", "submission_name", "write_submission"]


@dataclass(frozen=True)
class SubmissionFormat:
    """One server's rules.

    Attributes:
        name: the ``--submission`` value.
        image_suffix: how the test images' names end (a file that does not is refused).
        folders: the zip's top-level folders, one PNG per image in each (``("",)``: files at the top level).
        encodings: per folder, ``"trainid"`` (uint8 0–18), ``"labelid"`` (uint8 Cityscapes ids),
            ``"confidence"`` (uint16, 0…65535 ↔ 0…1) or ``"trainid_invalid"`` (trainIds, 255 = invalid).
        test_images: how many images the server's test split has (a different count is reported, not refused:
            a partial zip is the user's choice).
        resolution: ``(W, H)`` of the test images; the PNGs have each image's own size (logits upsampled to it).
        zip_name: the file written into ``--out``.
    """

    name: str
    image_suffix: str
    folders: tuple[str, ...]
    encodings: tuple[str, ...]
    test_images: int
    resolution: tuple[int, int]
    zip_name: str


SUBMISSION_FORMATS: dict[str, SubmissionFormat] = {
    "acdc": SubmissionFormat("acdc", "_rgb_anon.png", ("",), ("trainid",), 2000, (1920, 1080), "acdc_submission.zip"),
    "darkzurich": SubmissionFormat(
        "darkzurich", "_rgb_anon.png", ("labelTrainIds", "confidence", "labelTrainIds_invalid"),
        ("trainid", "confidence", "trainid_invalid"), 151, (1920, 1080), "darkzurich_submission.zip"),
    "cityscapes": SubmissionFormat("cityscapes", "_leftImg8bit.png", ("",), ("labelid",), 1525, (2048, 1024),
                                   "cityscapes_submission.zip"),
}
"""The servers' rules, by ``--submission`` name."""


def _format(name: str) -> SubmissionFormat:
    if name not in SUBMISSION_FORMATS:
        raise UdaError(f"unknown submission format '{name}'; choose {', '.join(SUBMISSION_FORMATS)}")
    return SUBMISSION_FORMATS[name]


def submission_name(fmt: str, image: str | os.PathLike) -> str:
    """The PNG name the server expects for a test image (the image's own name, as a ``.png``).

    Raises:
        DataError: the image's name does not end as that benchmark's test images do.
    """
    f = _format(fmt)
    name = Path(image).name
    if not name.endswith(f.image_suffix):
        raise DataError(f"{image} is not a {fmt} test image (its name must end in {f.image_suffix}); pass the "
                        f"{fmt} test images or their folder")
    return name


def _png(array: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    # uint16 arrays become 16-bit greyscale PNGs ("I;16"), uint8 ones 8-bit greyscale
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def _encode(kind: str, probs: torch.Tensor, lut: np.ndarray) -> np.ndarray:
    conf, trainid = probs.max(0)
    ids = trainid.to(torch.uint8).cpu().numpy()
    if kind in ("trainid", "trainid_invalid"):  # no pixel is declared invalid
        return ids
    if kind == "labelid":
        return lut[ids]
    return (conf.clamp(0, 1) * 65535).round().to(torch.int32).cpu().numpy().astype(np.uint16)


def write_submission(
    model: torch.nn.Module,
    inputs: list[str | os.PathLike],
    out_dir: str | os.PathLike,
    fmt: str,
    *,
    cfg: EvalConfig | None = None,
    device: torch.device | str | None = None,
    progress: bool = True,
) -> tuple[Path, list[str]]:
    """Predict every test image and write the server's zip into ``out_dir``.

    The zip is written to a temporary file next to it and renamed when complete, so a failed run leaves no
    half-written archive (and an earlier one stays intact).

    Args:
        model: a segmentation model (eval mode for the call, its mode restored afterwards).
        inputs: test image files and/or folders (searched recursively).
        out_dir: where ``<format>_submission.zip`` goes.
        fmt: ``"acdc"``, ``"darkzurich"`` or ``"cityscapes"``.
        cfg: the inference mode (the run's ``eval`` section); logits are upsampled to each image's size.
        device: where to run (default: the model's device).
        progress: show a tqdm bar.

    Returns:
        ``(zip path, the archive's member names in order)``.

    Raises:
        DataError: an image whose name is not the benchmark's, two images with the same name, no images.

    Example:
        >>> import tempfile, zipfile, torch
        >>> from PIL import Image
        >>> d = tempfile.mkdtemp()
        >>> Image.new("RGB", (16, 9)).save(f"{d}/GOPR0356_frame_000321_rgb_anon.png")
        >>> model = lambda x: torch.zeros(x.shape[0], 19, x.shape[2], x.shape[3])
        >>> path, members = write_submission(model, [d], f"{d}/out", "darkzurich", cfg=EvalConfig(size=None),
        ...                                  device="cpu", progress=False)
        >>> path.name, zipfile.ZipFile(path).namelist()[1]
        ('darkzurich_submission.zip', 'confidence/GOPR0356_frame_000321_rgb_anon.png')
    """
    from .prediction import _read_image, collect_images

    f = _format(fmt)
    cfg = cfg or EvalConfig()
    pairs = collect_images(inputs)
    names = [submission_name(fmt, src) for src, _ in pairs]
    seen: dict[str, Path] = {}
    for (src, _), name in zip(pairs, names):
        if name in seen:
            raise DataError(f"two test images named {name} ({seen[name]} and {src}); the server needs unique "
                            "names: pass each image once")
        seen[name] = src
    if device is None:
        params = list(model.parameters()) if isinstance(model, torch.nn.Module) else []
        device = params[0].device if params else torch.device("cpu")
    device = torch.device(device)
    lut = trainid_to_labelid_lut()
    members: list[str] = []
    zip_path = Path(out_dir) / f.zip_name
    was_training = model.training if isinstance(model, torch.nn.Module) else False
    if isinstance(model, torch.nn.Module):
        model.eval()
    try:
        from tqdm.auto import tqdm

        with atomic_open(zip_path, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as zf:
            for (src, _), name in tqdm(list(zip(pairs, names)), desc=f"{fmt} submission", unit="img",
                                       disable=not progress):
                rgb = _read_image(src)
                x = torch.from_numpy(rgb).to(device).permute(2, 0, 1).unsqueeze(0).float().div_(255)
                probs = infer(model, x, cfg, out_size=rgb.shape[:2])[0].float().softmax(0)
                for folder, kind in zip(f.folders, f.encodings):
                    member = f"{folder}/{name}" if folder else name
                    zf.writestr(member, _png(_encode(kind, probs, lut)))
                    members.append(member)
    finally:
        if isinstance(model, torch.nn.Module):
            model.train(was_training)
    return zip_path, members
