"""Built-in experiment configs (kind ``config``): ``<recipe>_gta5_cityscapes``, ``<recipe>_synthia_cityscapes``,
``<recipe>_synthetic`` and MLFA's ablations."""

from . import presets  # noqa: F401
from ._setups import DEEPLAB_INIT, paper_setup, synthetic_setup

__all__ = ["DEEPLAB_INIT", "paper_setup", "synthetic_setup"]
