"""Recipes (kind ``recipe``): each a short composition of registered components over the one training loop.

The public building blocks for writing a recipe: `Recipe` (the segmentation stage's task; `Recipe.add_term`,
`Recipe.build_term`, `Recipe.carry`, `Recipe.after_step`), `TermsConfig` / `TranslationConfig` (config bases),
and the seam with the loop: `Task`, `Stage`, `SegStep`, `TranslatorTask` (see docs/training.md).
"""

from . import adaptsegnet, advent, cyclegan, dacs, fda, minent, mlfa, source_only  # noqa: F401
from ._base import Recipe, TermsConfig, TranslationConfig, build_aligner
from .task import Batch, Losses, SegStep, Stage, Task, TranslatorTask

__all__ = ["Batch", "Losses", "Recipe", "SegStep", "Stage", "Task", "TermsConfig", "TranslationConfig",
           "TranslatorTask", "build_aligner"]
