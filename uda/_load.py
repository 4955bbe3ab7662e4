"""`uda.load`: a ready segmentation model from a checkpoint file or a run directory.

A training checkpoint describes its model (``model_card``: the model's registered name and options, the number
of classes and their names, the input normalisation, the evaluation size), so nothing beyond the path is needed.
Checkpoints written before the card existed are read through the resolved config they hold, or the run's
``config.yaml`` beside them. A bare weights file (a state dict, or an original ADVENT/AdaptSegNet release) does
not say which network it belongs to: name it with ``model=``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ._errors import CheckpointError

__all__ = ["describe", "find_checkpoint", "load"]

# Where a run directory keeps the checkpoint that load/evaluate/predict/export use, in order of preference.
RUN_CHECKPOINTS = ("checkpoints/last.pt", "checkpoints/final.pt", "last.pt", "model.pt")


def find_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint file, or the checkpoint of a run directory (``checkpoints/last.pt`` first).

    Raises:
        CheckpointError: no such file, or a directory without a checkpoint.
    """
    p = Path(path)
    if p.is_dir():
        for rel in RUN_CHECKPOINTS:
            if (p / rel).is_file():
                return p / rel
        raise CheckpointError(f"{p}: no checkpoint in this run directory (looked for {', '.join(RUN_CHECKPOINTS)}); "
                              "pass a checkpoint file or the --out folder of `uda train`")
    if not p.is_file():
        raise CheckpointError(f"{p}: no such checkpoint file or run directory; check the path")
    return p


def describe(path_or_run: str | os.PathLike) -> dict[str, Any] | None:
    """The model card of a checkpoint (see `uda.engine.checkpoint.model_card`), or ``None`` for bare weights.

    Read from the checkpoint's ``model_card``, else from the config it holds, else from a ``config.yaml`` in its
    folder or the folder above (a run directory).

    Example:
        >>> import os, tempfile, uda
        >>> from uda.models import save_weights
        >>> path = os.path.join(tempfile.mkdtemp(), "w.pt")
        >>> _ = save_weights(uda.create("model", "deeplabv2_tiny", num_classes=3), path)
        >>> describe(path) is None  # bare weights: which network is not written down
        True
    """
    from ._io import load_checkpoint
    from .engine.checkpoint import model_card

    ckpt_path = find_checkpoint(path_or_run)
    ckpt = load_checkpoint(ckpt_path)
    if not isinstance(ckpt, dict):
        return None
    if isinstance(ckpt.get("model_card"), dict):
        return dict(ckpt["model_card"])
    state = ckpt.get("model") if isinstance(ckpt.get("model"), dict) else None
    if isinstance(ckpt.get("config"), dict) and isinstance(ckpt["config"].get("model"), dict):
        return model_card(ckpt["config"], state)
    for folder in (ckpt_path.parent, ckpt_path.parent.parent):
        if (folder / "config.yaml").is_file():
            from .config import load_config

            return model_card(load_config(folder / "config.yaml").to_dict(), state)
    return None


def load(
    path_or_run: str | os.PathLike,
    *,
    model: str | None = None,
    num_classes: int | None = None,
    options: dict[str, Any] | None = None,
    device: torch.device | str = "cpu",
) -> nn.Module:
    """Rebuild the segmentation model of a checkpoint or run directory, load its weights, set eval mode.

    The returned model takes RGB images in [0, 1] (it normalises its input itself, with the statistics saved
    with its weights) and carries ``class_names`` (tuple of str) and ``card`` (the model card dict).

    Args:
        path_or_run: a checkpoint file or a run directory of `uda train`.
        model: registered model name, for a bare weights file (or to override the card's).
        num_classes: classes of that model [default: the card's, else 19].
        options: the model's constructor options [default: the card's when ``model`` is the card's, else none].
        device: where the model goes.

    Returns:
        The model in eval mode.

    Raises:
        CheckpointError: no checkpoint, a bare weights file without ``model=``, or weights that do not fit.

    Example:
        >>> import os, tempfile, torch, uda
        >>> from uda.models import save_weights
        >>> path = os.path.join(tempfile.mkdtemp(), "w.pt")
        >>> _ = save_weights(uda.create("model", "deeplabv2_tiny", num_classes=3), path)
        >>> net = uda.load(path, model="deeplabv2_tiny", num_classes=3)
        >>> net.training, net.class_names[:2], net(torch.rand(1, 3, 32, 32)).logits.shape[1]
        (False, ('class_0', 'class_1'), 3)
    """
    from . import create
    from .evaluation.metrics import class_names
    from .models import load_weights

    ckpt_path = find_checkpoint(path_or_run)
    card = describe(ckpt_path)
    if model is None:
        if card is None or not card.get("model"):
            raise CheckpointError(f"{ckpt_path}: bare weights do not say which model they belong to; pass "
                                  "model=NAME (uda evaluate/predict/export: --model NAME)")
        model = str(card["model"])
    same = card is not None and card.get("model") == model
    if num_classes is None:
        num_classes = int(card["num_classes"]) if same else 19
    if options is None:
        options = dict(card.get("options") or {}) if same else {}
    net = create("model", model, num_classes=int(num_classes), **dict(options))
    load_weights(net, ckpt_path)  # our checkpoints and the original layouts alike; restores the normalisation
    names = tuple(card["class_names"]) if same and card.get("class_names") and len(card["class_names"]) == num_classes \
        else class_names(int(num_classes))
    net.class_names = names
    net.card = {**(card or {}), "model": model, "options": dict(options), "num_classes": int(num_classes),
                "class_names": list(names)}
    if hasattr(net, "get_extra_state"):  # the normalisation now in force (the weights' own)
        net.card["normalization"] = dict(net.get_extra_state().get("normalization") or {}) or None
    return net.to(device).eval()
