"""Small helpers shared across the package (one definition each): parsing a ``WxH`` size, freezing parameters,
choosing a device, its autocast context, converting an image tensor to 8-bit."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

import numpy as np
import torch
from torch import nn

from ._errors import ConfigError, UdaError


def parse_size(size: str | tuple[int, int] | list[int] | None, key: str = "size") -> tuple[int, int] | None:
    """Parse ``"WxH"`` (or a ``(W, H)`` pair) into ``(W, H)``; ``None`` stays ``None``.

    Raises:
        ConfigError: not a positive ``WxH`` size (the message names ``key``).

    Example:
        >>> parse_size("1280x720"), parse_size((64, 32)), parse_size(None)
        ((1280, 720), (64, 32), None)
    """
    if size is None:
        return None
    try:
        w, h = (int(v) for v in (str(size).lower().split("x") if isinstance(size, str) else size))
        if w <= 0 or h <= 0:
            raise ValueError
    except (ValueError, TypeError):
        raise ConfigError(f"{key}: '{size}' is not a size WxH such as 1280x720") from None
    return w, h


def set_requires_grad(modules: Iterable[nn.Module], flag: bool) -> None:
    """Switch ``requires_grad`` of every parameter of ``modules`` (the generator-phase freeze of discriminators).

    Example:
        >>> d = torch.nn.Linear(2, 1)
        >>> set_requires_grad([d], False)
        >>> d.weight.requires_grad
        False
    """
    for m in modules:
        for p in m.parameters():
            p.requires_grad_(flag)


def resolve_device(name: str | torch.device | None, local_rank: int = 0) -> torch.device:
    """``auto`` (or ``None``) → ``cuda:LOCAL_RANK`` when CUDA is available, else ``cpu``; ``cuda`` → ``cuda:LOCAL_RANK``.

    Raises:
        UdaError: a CUDA device is asked for but CUDA is not available.

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    name = str(name or "auto")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(name)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UdaError(f"device '{name}' requested but CUDA is not available; use --device cpu")
        if dev.index is None:
            dev = torch.device("cuda", local_rank)
    return dev


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """(3, H, W) float in [0, 1] → (H, W, 3) uint8 (clamped, rounded).

    Example:
        >>> to_uint8(torch.ones(3, 1, 2)).tolist()
        [[[255, 255, 255], [255, 255, 255]]]
    """
    return (image.detach().float().clamp(0, 1) * 255.0).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()


AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast_context(amp: str | bool | None, device: torch.device) -> contextlib.AbstractContextManager:
    """The autocast context of a precision on ``device``: the training loop's ``trainer.amp`` and evaluation's
    ``eval.amp`` alike.

    ``bf16`` runs ``torch.autocast`` on the device, CPU included (bfloat16 needs no loss scaling, so the same path
    runs in CI on tiny models; whether it is faster than float32 there depends on the CPU's native bfloat16 support,
    see docs/training.md); ``fp16`` needs CUDA and,
    when training, its gradient scaler (Micikevicius et al., "Mixed Precision Training", ICLR 2018).

    Args:
        amp: ``"none"``/``None``/``False`` (no autocast), ``"bf16"``, ``"fp16"``, or ``True``: the device's
            half precision (``fp16`` on CUDA, ``bf16`` elsewhere; ``eval.amp``).
        device: where the model runs.

    Returns:
        A reusable context manager (``contextlib.nullcontext`` without autocast).

    Raises:
        ConfigError: an unknown precision, or ``fp16`` on a device other than CUDA.

    Example:
        >>> with autocast_context("bf16", torch.device("cpu")):
        ...     y = torch.nn.Linear(4, 2)(torch.ones(1, 4))
        >>> y.dtype
        torch.bfloat16
    """
    if amp is True:
        amp = "fp16" if device.type == "cuda" else "bf16"
    if amp in (None, False, "none"):
        return contextlib.nullcontext()
    if amp not in AMP_DTYPES:
        raise ConfigError(f"trainer.amp='{amp}' is not one of none, bf16, fp16")
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=AMP_DTYPES[amp])
    if amp == "fp16":
        raise ConfigError(f"trainer.amp=fp16 needs a CUDA device (float16 with a gradient scaler), not '{device}'; "
                          "use trainer.amp=bf16 on the CPU or --device cuda")
    return torch.autocast(device.type, dtype=torch.bfloat16)
