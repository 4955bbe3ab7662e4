"""The one training loop, its stages, checkpoints and multi-process support.

Example:
    >>> from uda.engine import train, Trainer, set_requires_grad  # noqa: F401
"""

from ._optim import build_optimizer, build_scheduler, lr_factor, set_requires_grad
from .checkpoint import load_latest_checkpoint, write_checkpoint
from .stage import Stage, Task, TranslatorTask
from .trainer import EVENTS, Trainer, TrainingInterrupted, seed_everything, train

__all__ = [
    "EVENTS",
    "Stage",
    "Task",
    "Trainer",
    "TrainingInterrupted",
    "TranslatorTask",
    "build_optimizer",
    "build_scheduler",
    "load_latest_checkpoint",
    "lr_factor",
    "seed_everything",
    "set_requires_grad",
    "train",
    "write_checkpoint",
]
