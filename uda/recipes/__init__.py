"""Recipes (kind ``recipe``): each a short composition of registered components over the one training loop."""

from . import adaptsegnet, advent, cyclegan, dacs, fda, minent, mlfa, source_only  # noqa: F401
from ._base import Recipe, TranslationConfig

__all__ = ["Recipe", "TranslationConfig"]
