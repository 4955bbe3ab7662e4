"""Export a trained segmentation model to ONNX, TorchScript, a `torch.export` ExportedProgram or shareable
weights, and check it.

The exported graph maps a fixed-size batch of RGB images in [0, 1], ``(1, 3, H, W)`` float32, to the main
head's logits ``(1, C, h, w)`` at the model's output stride (no upsampling, no argmax): the input normalisation
the weights were trained with is inside the graph, as it is inside the PyTorch model. After writing the file,
the export is run on a seeded random input and compared with the PyTorch model; the result reports the largest
absolute difference of the logits. Exports run on the CPU in float32.

Formats and the library behind each: ``torchscript`` (`torch.jit.trace`, read back with `torch.jit.load`),
``exported-program`` (`torch.export.export` + `torch.export.save`, a ``.pt2`` file read with
`torch.export.load`), ``onnx`` (`torch.onnx.export`, checked with ONNX Runtime; needs the ``export`` extra:
``pip install 'uda[export]'``), ``weights`` (the PyTorch model for `uda.load`: its state dict and model card,
no optimizer or run state; read back with `uda.load`).
"""

from __future__ import annotations

import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ._errors import UdaError

__all__ = ["DEFAULT_TOLERANCE", "FORMATS", "WEIGHTS_FORMAT", "ExportResult", "LogitsOnly", "MissingExtraError", "export"]

FORMATS: tuple[str, ...] = ("onnx", "torchscript", "exported-program", "weights")
WEIGHTS_FORMAT = "uda.weights/1"
DEFAULT_TOLERANCE = 1e-4
"""Largest absolute logit difference accepted by the check (float32 kernels differ by ~1e-6 on tiny models)."""


class MissingExtraError(UdaError):
    """An optional package that a format needs is not installed (the message names the extra)."""


class LogitsOnly(nn.Module):
    """A segmentation model as a plain tensor function, ``images -> logits`` (exporters need tensors out).

    Example:
        >>> import torch, uda
        >>> net = LogitsOnly(uda.create("model", "deeplabv2_tiny", num_classes=3).eval())
        >>> net(torch.rand(1, 3, 32, 32)).shape[1]
        3
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        out = self.model(images)
        return out.logits if hasattr(out, "logits") else out


@dataclass(frozen=True)
class ExportResult:
    """What `export` wrote and how close the export is to PyTorch.

    Attributes:
        path: the written file.
        format: one of `FORMATS`.
        input_shape: ``(1, 3, H, W)``.
        output_shape: the logits' shape.
        max_abs_diff: largest absolute difference of the logits, export vs PyTorch, on a random input.
        tolerance: the accepted difference.
    """

    path: Path
    format: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    max_abs_diff: float
    tolerance: float

    @property
    def ok(self) -> bool:
        """Whether the check passed (``max_abs_diff <= tolerance``)."""
        return self.max_abs_diff <= self.tolerance


def _need(module: str, what: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(f"{what} needs the '{module}' package, which is not installed; "
                                "pip install 'uda[export]'") from None


def _write(fmt: str, net: nn.Module, example: torch.Tensor, path: Path) -> None:
    if fmt == "torchscript":
        with warnings.catch_warnings():  # torch.jit is in maintenance; tracing a fixed-shape model is what we want
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(net, (example,), check_trace=False)
            torch.jit.save(traced, str(path))
    elif fmt == "exported-program":
        program = torch.export.export(net, (example,))
        torch.export.save(program, str(path))
    elif fmt == "weights":
        card = getattr(net.model, "card", None)
        if not isinstance(card, dict) or not card.get("model"):
            raise UdaError("--format weights needs a model loaded with uda.load (its model card says which network "
                           "it is); load it with uda.load(path, model=NAME) first")
        torch.save({"format": WEIGHTS_FORMAT, "model": net.model.state_dict(), "model_card": card}, str(path))
    else:
        _need("onnx", "ONNX export")
        _need("onnxscript", "ONNX export (torch's dynamo exporter)")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(net, (example,), str(path), input_names=["images"], output_names=["logits"],
                              dynamo=True, external_data=False, verbose=False)


def _run(fmt: str, path: Path, x: torch.Tensor) -> torch.Tensor:
    if fmt == "torchscript":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load's deprecation notice
            return torch.jit.load(str(path), map_location="cpu")(x)
    if fmt == "exported-program":
        return torch.export.load(str(path)).module()(x)
    if fmt == "weights":
        from ._load import load

        return load(path)(x).logits
    ort = _need("onnxruntime", "The check of an ONNX export")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return torch.from_numpy(session.run(None, {name: x.numpy()})[0])


def export(
    model: nn.Module,
    out: str | os.PathLike,
    *,
    format: str,
    size: tuple[int, int],
    tolerance: float = DEFAULT_TOLERANCE,
    seed: int = 0,
) -> ExportResult:
    """Export ``model`` (e.g. from `uda.load`) to ``out`` and compare the export with PyTorch.

    The file is written under a temporary name in ``out``'s folder and renamed into place only after the export
    ran and was read back, so ``out`` never holds a half-written file. A check above ``tolerance`` still leaves the
    file (look at it); `ExportResult.ok` is then ``False`` (``uda export`` exits with 1).

    Args:
        model: a segmentation model (returns `SegOutput`) or a module returning logits; exported in eval mode.
        out: the file to write.
        format: ``"onnx"``, ``"torchscript"``, ``"exported-program"`` or ``"weights"``.
        size: input ``(W, H)``, fixed in the exported graph.
        tolerance: largest accepted absolute difference of the logits.
        seed: seed of the random check input (uniform in [0, 1]).

    Returns:
        An `ExportResult`.

    Raises:
        UdaError: an unknown format; `MissingExtraError` when ONNX packages are missing.

    Example:
        >>> import os, tempfile, uda
        >>> net = uda.create("model", "deeplabv2_tiny", num_classes=3)
        >>> r = export(net, os.path.join(tempfile.mkdtemp(), "m.pt"), format="torchscript", size=(32, 32))
        >>> r.ok, r.input_shape, r.output_shape[1]
        (True, (1, 3, 32, 32), 3)
    """
    if format not in FORMATS:
        raise UdaError(f"unknown export format '{format}'; use one of {', '.join(FORMATS)}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    net = LogitsOnly(model).cpu().eval()
    w, h = size
    example = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(seed + 1))
    x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(seed))
    # The temporary name keeps the suffix (torch.export.save/load want a .pt2 name).
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=f".tmp{out.suffix}", dir=out.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o666 & ~umask)  # an ordinary file's permissions, not mkstemp's 0600
    try:
        with torch.no_grad():
            _write(format, net, example, tmp)
            expected = net(x)
            got = _run(format, tmp, x)
        diff = float((got.float() - expected.float()).abs().max())
        if format == "weights":  # never a new file beside the old one's checksum
            Path(str(out) + ".sha256").unlink(missing_ok=True)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    if format == "weights":  # the checksum sidecar uda's checkpoint reader verifies
        from ._io import atomic_write_text, sha256_file

        atomic_write_text(str(out) + ".sha256", sha256_file(out) + "\n")
    return ExportResult(path=out, format=format, input_shape=tuple(x.shape), output_shape=tuple(expected.shape),
                        max_abs_diff=diff, tolerance=tolerance)
