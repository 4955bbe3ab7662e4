"""Recipes (kind ``recipe``): each a short composition of registered components over the one training loop.

The public building blocks for writing a recipe: `Recipe` (the segmentation stage's task; `Recipe.add_term`,
`Recipe.build_term`, `Recipe.carry`, `Recipe.after_step`), `TermsConfig` / `TranslationConfig` (config bases),
the loss-term seam shared by both lineages: `Term`, `SegStep`, `PseudoLabels` (`uda.term`), and the seam with
the loop: `Task`, `Stage`, `TranslatorTask` (see docs/write-your-own.md and docs/training.md).
"""

from ..term import PseudoLabels, SegStep, Term
from . import adaptsegnet, advent, cyclegan, dacs, fda, minent, mlfa, source_only  # noqa: F401
from ._base import Recipe, TermsConfig, TranslationConfig, normalize_terms
from .task import Batch, Losses, Stage, Task, TranslatorTask

__all__ = ["Batch", "Losses", "PseudoLabels", "Recipe", "SegStep", "Stage", "Task", "Term", "TermsConfig",
           "TranslationConfig", "TranslatorTask", "normalize_terms"]
