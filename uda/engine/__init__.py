"""The one training loop (`Trainer`), the building of a run's parts, the loop's callbacks, checkpoints and
multi-process support. The Task/Stage seam a recipe implements lives in `uda.recipes`.

Example:
    >>> from uda.engine import train, Trainer, Callback  # noqa: F401
"""

from .._utils import autocast_context, set_requires_grad
from ._optim import build_optimizer, build_scheduler, lr_factor
from .build import RunParts, build_parts, seed_everything
from .callbacks import EVENTS, Callback, StepLosses, TrainingInterrupted
from .checkpoint import load_latest_checkpoint, write_checkpoint
from .trainer import Trainer, train

__all__ = [
    "EVENTS",
    "Callback",
    "RunParts",
    "StepLosses",
    "Trainer",
    "TrainingInterrupted",
    "autocast_context",
    "build_optimizer",
    "build_parts",
    "build_scheduler",
    "load_latest_checkpoint",
    "lr_factor",
    "seed_everything",
    "set_requires_grad",
    "train",
    "write_checkpoint",
]
