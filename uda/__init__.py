"""uda: unsupervised domain adaptation for semantic segmentation in PyTorch.

Components are registered by name and built with `create`; `list_components` lists them; `load` rebuilds a
trained model from a checkpoint or run directory.

Example:
    >>> import uda
    >>> "mlfa" in uda.list_components("recipe")
    True
"""

__version__ = "0.1.0"

# Importing the component packages registers every component by name.
from . import (
    alignment,
    config,
    data,
    discriminators,
    evaluation,
    labels,
    losses,
    models,
    recipes,
    selftraining,
    translators,
)
from ._errors import CheckpointError, ConfigError, DataError, NonFiniteLossError, UdaError
from ._load import load
from ._registry import KINDS, create, list_components, register, registry
from .term import PseudoLabels, SegStep, Term
from .types import LevelInfo, SegOutput

__all__ = [
    "KINDS",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "LevelInfo",
    "NonFiniteLossError",
    "PseudoLabels",
    "SegOutput",
    "SegStep",
    "Term",
    "UdaError",
    "__version__",
    "alignment",
    "config",
    "create",
    "data",
    "discriminators",
    "evaluation",
    "labels",
    "list_components",
    "load",
    "losses",
    "models",
    "recipes",
    "register",
    "registry",
    "selftraining",
    "translators",
]
