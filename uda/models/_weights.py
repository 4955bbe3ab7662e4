"""Model weights from local files, in our own format or in the layouts of the original projects.

Never downloads: every file comes from a path. Read with `uda._io.load_checkpoint`
(``torch.load(weights_only=True)`` or safetensors).

Layouts recognised by `load_weights`:

==================  ========================================================  ==================
layout              recognised by                                              normalization
==================  ========================================================  ==================
``uda``             our keys (``backbone.…``, ``head.…``); a run checkpoint   the one saved in
                    (dict with a ``"model"`` key) or a plain state dict        the file
``deeplab_init``    DeepLab-v2 init file: every key prefixed (``Scale.``);     ``caffe``
                    the prefix is stripped and its ``layer5`` skipped
``advent``          AdaptSegNet/ADVENT checkpoints: ``layer5`` = auxiliary     ``caffe``
                    head on layer3, ``layer6`` = main head
``torchvision``     timm/torchvision ResNet files (``fc.*`` present,           ``imagenet``
                    skipped); into ``deeplabv2`` they load by name/shape but
                    compute a different network (stride on the 3×3 there)
``backbone``        (timm/smp models) a timm or encoder state dict, matched    ``imagenet``
                    under the model's backbone prefix; classifier keys skipped
``timm_vit``        (``vfm``) a bare timm ViT state dict, under ``encoder.``   ``imagenet``
``dinov2``          (``vfm``) the official DINOv2 checkpoint (``mask_token``,  ``imagenet``
                    ``register_tokens``), converted by timm's filter
==================  ========================================================  ==================
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._errors import CheckpointError
from .._io import load_checkpoint, save_checkpoint

__all__ = ["WEIGHTS_HINT", "LoadReport", "load_weights", "save_weights"]

WEIGHTS_HINT = (
    "DeepLab-v2 ImageNet init weights are ADVENT's release DeepLab_resnet_pretrained_imagenet.pth "
    "(https://github.com/valeoai/ADVENT/releases/download/v0.1/DeepLab_resnet_pretrained_imagenet.pth); "
    "timm/torchvision weights come from their model hubs: download them on a machine with network access "
    "and pass the local path"
)

_CLASSIFIER_PREFIXES = ("fc.", "head.", "classifier.", "last_linear.", "head_dist.", "pre_logits.")


@dataclass
class LoadReport:
    """What `load_weights` did.

    Attributes:
        layout: the recognised layout (``uda``, ``deeplab_init``, ``advent``, ``torchvision``, ``backbone``).
        loaded: number of tensors copied into the model.
        skipped: checkpoint keys not loaded (non-strict mismatches and skipped classifiers).
        missing: model keys the file did not provide (left at their current values).
        normalization: the input normalization now set on the model (name), or ``None`` if unchanged.
    """

    layout: str
    loaded: int = 0
    skipped: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    normalization: str | None = None


def _few(items: list[str], n: int = 5) -> str:
    more = f" … ({len(items)} in all)" if len(items) > n else f" ({len(items)})"
    return ", ".join(items[:n]) + more


def _extract_state_dict(obj: Any, path: Path) -> tuple[dict[str, torch.Tensor], Any]:
    extra = None
    if isinstance(obj, dict):
        for key in ("model", "state_dict", "model_state_dict"):
            if isinstance(obj.get(key), dict):
                extra = obj.get("normalization")
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj:
        raise CheckpointError(f"{path}: holds no state dict (expected a dict of tensors or a dict with a 'model' key)")
    sd = {}
    for k, v in obj.items():
        if isinstance(v, torch.Tensor):
            sd[k[len("module.") :] if k.startswith("module.") else k] = v
    return sd, extra


def _backbone_layout(model: nn.Module, sd: dict[str, torch.Tensor]) -> tuple[dict, str, str | None] | None:
    """Match a bare backbone/encoder state dict under the model's backbone prefixes (best overlap wins)."""
    own = model.state_dict()
    best, best_n = None, 0
    for prefix in getattr(model, "backbone_prefixes", ()):
        n = sum(prefix + k in own for k in sd)
        if n > best_n:
            best, best_n = prefix, n
    if best is None:
        return None
    out = {}
    for k, v in sd.items():
        if best + k in own or not k.startswith(_CLASSIFIER_PREFIXES):
            out[best + k] = v
    return out, "backbone", "imagenet"


def load_weights(
    model: nn.Module, path: str | os.PathLike, *, strict: bool = True, keep_normalization: bool = False
) -> LoadReport:
    """Load local weights into ``model``, translating the original projects' layouts.

    Args:
        model: a ``uda`` segmentation model.
        path: a ``.pt``/``.pth`` file (read with ``weights_only=True``) or ``.safetensors``.
        strict: raise on any missing/unexpected/mis-shaped tensor (partial layouts such as the DeepLab init file
            or a bare backbone only require the backbone to be complete); ``False`` loads what fits and reports
            the rest.
        keep_normalization: keep the model's input normalization instead of the one the file's layout implies.

    Returns:
        A `LoadReport`.

    Raises:
        CheckpointError: missing/corrupt file, unknown layout, class-count mismatch (suggests ``num_classes``),
            or key/shape mismatches (first few listed, with the count).

    Example:
        >>> import uda, tempfile, os
        >>> from uda.models import load_weights, save_weights
        >>> m = uda.create("model", "deeplabv2_tiny", num_classes=3)
        >>> p = os.path.join(tempfile.mkdtemp(), "w.pt")
        >>> _ = save_weights(m, p)
        >>> load_weights(uda.create("model", "deeplabv2_tiny", num_classes=3), p).layout
        'uda'
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such weights file; check the path. {WEIGHTS_HINT}")
    sd, saved_norm = _extract_state_dict(load_checkpoint(path), path)
    own = model.state_dict()

    partial = False
    norm: Any = None
    if sum(k in own for k in sd) >= max(1, len(sd) // 2):
        layout, norm = "uda", saved_norm
    else:
        translated = None
        if hasattr(model, "translate_foreign_state_dict"):
            translated = model.translate_foreign_state_dict(sd)
        if translated is None:
            translated = _backbone_layout(model, sd)
        if translated is None:
            raise CheckpointError(
                f"{path}: unrecognised weights layout for {type(model).__name__} (first keys: {_few(list(sd), 3)}); "
                "expected our checkpoints, the DeepLab-v2 init file, an AdaptSegNet/ADVENT checkpoint or a "
                "timm/torchvision backbone"
            )
        sd, layout, norm = translated
        partial = layout in ("deeplab_init", "torchvision", "deeplab_backbone", "backbone", "dinov2", "timm_vit")

    report = LoadReport(layout=layout)
    _check_classes(model, sd, own, path)
    unexpected = [k for k in sd if k not in own]
    mis_shaped = [
        f"{k} {tuple(v.shape)}≠{tuple(own[k].shape)}" for k, v in sd.items() if k in own and v.shape != own[k].shape
    ]
    required = [k for k in own if not k.endswith(("num_batches_tracked", "_extra_state"))]
    if partial:  # a backbone file: only the part under its prefix must be complete
        prefixes = [p for p in getattr(model, "backbone_prefixes", ()) if all(k.startswith(p) for k in sd)]
        prefix = max(prefixes, key=len, default="")
        required = [k for k in required if k.startswith(prefix)]
    missing = [k for k in required if k not in sd]
    if strict and (unexpected or mis_shaped or missing):
        parts = []
        if missing:
            parts.append(f"missing {_few(missing)}")
        if unexpected:
            parts.append(f"unexpected {_few(unexpected)}")
        if mis_shaped:
            parts.append(f"shape mismatch {_few(mis_shaped)}")
        raise CheckpointError(
            f"{path}: weights ({layout} layout) do not fit {type(model).__name__}: {'; '.join(parts)}; "
            "check the model options (layers, multi_level, backbone) or load with strict=False"
        )
    good = {k: v for k, v in sd.items() if k in own and v.shape == own[k].shape}
    report.skipped = sorted(set(sd) - set(good))
    report.missing = [k for k in own if k not in good and not k.endswith(("num_batches_tracked", "_extra_state"))]
    with torch.no_grad():
        for k, v in good.items():
            own[k].copy_(v)
    report.loaded = len(good)

    if not keep_normalization and norm is not None and hasattr(model, "set_extra_state"):
        if isinstance(norm, str):
            model.set_normalization(norm)
            report.normalization = norm
        elif isinstance(norm, dict):
            model.set_extra_state({"normalization": norm})
            report.normalization = "saved"
    return report


def _check_classes(model: nn.Module, sd: dict[str, torch.Tensor], own: dict[str, torch.Tensor], path: Path) -> None:
    num_classes = getattr(model, "num_classes", None)
    if num_classes is None:
        return
    heads = tuple(getattr(model, "head_prefixes", ("",)))
    for k, v in sd.items():
        if not (k in own and k.startswith(heads) and k.endswith(".weight") and v.dim() >= 1):
            continue
        mine = own[k].shape
        if mine[0] == num_classes and v.shape[0] != num_classes and v.shape[1:] == mine[1:]:
            raise CheckpointError(
                f"{path}: the checkpoint's classifier ({k}) has {v.shape[0]} classes but the model has "
                f"{num_classes}; build the model with num_classes={v.shape[0]} (model.num_classes in the config)"
            )


def save_weights(model: nn.Module, path: str | os.PathLike) -> str:
    """Save ``{"model": state_dict, "normalization": ..., "num_classes": ...}`` atomically (with .sha256).

    Returns:
        The SHA-256 of the written file.
    """
    norm = None
    if hasattr(model, "get_extra_state"):
        norm = model.get_extra_state().get("normalization")
    obj = {"model": model.state_dict(), "normalization": norm, "num_classes": getattr(model, "num_classes", None)}
    return save_checkpoint(obj, path)
