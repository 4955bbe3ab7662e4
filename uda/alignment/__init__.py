"""Aligners (kind ``aligner``): ``output`` (AdaptSegNet), ``entropy`` (AdvEnt), ``minent`` (ADVENT MinEnt),
``multilevel`` (MLFA), each in ``alternate`` (frozen-D, the originals) or ``grl`` (gradient reversal) mode."""

from ._base import (
    MODES,
    AdversarialAligner,
    Aligner,
    GradientReversal,
    LevelAligner,
    frozen,
    grad_reverse,
    level_tensor,
    set_requires_grad,
)
from .minent import MinEntAligner
from .multilevel import MultiLevelAligner
from .output import EntropyAligner, OutputAligner

__all__ = [
    "MODES",
    "AdversarialAligner",
    "Aligner",
    "EntropyAligner",
    "GradientReversal",
    "LevelAligner",
    "MinEntAligner",
    "MultiLevelAligner",
    "OutputAligner",
    "frozen",
    "grad_reverse",
    "level_tensor",
    "set_requires_grad",
]
