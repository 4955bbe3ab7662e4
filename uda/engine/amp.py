"""Mixed precision of the training loop: ``trainer.amp`` → one autocast context (CUDA or CPU).

``bf16`` runs ``torch.autocast`` on the loop's device, CPU included (bfloat16 needs no loss scaling, so the
same path runs in CI on tiny models); ``fp16`` needs CUDA and its gradient scaler (Micikevicius et al.,
"Mixed Precision Training", ICLR 2018).
"""

from __future__ import annotations

import contextlib

import torch

from .._errors import ConfigError

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast_context(amp: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The autocast context of ``trainer.amp`` on ``device``.

    Args:
        amp: ``none``, ``bf16`` or ``fp16``.
        device: the loop's device.

    Returns:
        A reusable context manager (``contextlib.nullcontext`` for ``none``).

    Raises:
        ConfigError: ``fp16`` on a device other than CUDA.

    Example:
        >>> with autocast_context("bf16", torch.device("cpu")):
        ...     y = torch.nn.Linear(4, 2)(torch.ones(1, 4))
        >>> y.dtype
        torch.bfloat16
    """
    if amp in (None, "none"):
        return contextlib.nullcontext()
    if amp not in DTYPES:
        raise ConfigError(f"trainer.amp='{amp}' is not one of none, bf16, fp16")
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=DTYPES[amp])
    if amp == "fp16":
        raise ConfigError(f"trainer.amp=fp16 needs a CUDA device (float16 with a gradient scaler), not '{device}'; "
                          "use trainer.amp=bf16 on the CPU or --device cuda")
    return torch.autocast(device.type, dtype=torch.bfloat16)
