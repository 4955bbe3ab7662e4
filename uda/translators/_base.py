"""Base class of the image translators and the ``identity`` translator."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .._registry import register


class Translator(nn.Module):
    """A source → target image translator: ``translator(source, target=None)`` on RGB images in [0, 1].

    Subclasses record the registered name and constructor arguments that rebuild them in `spec_name`
    and `spec_kwargs`, so [`save_translator`][uda.translators.save_translator] / [`load_translator`][uda.translators.load_translator]
    restore them without pickled code.
    """

    spec_name: str = ""
    spec_kwargs: dict[str, Any]

    def __init__(self) -> None:
        super().__init__()
        self.spec_kwargs = {}

    def spec(self) -> dict[str, Any]:
        """``{"name": registered name, "kwargs": constructor arguments}``."""
        return {"name": self.spec_name, "kwargs": dict(self.spec_kwargs)}


@register("translator", "identity")
class IdentityTranslator(Translator):
    """Returns the source images unchanged (the "no translation" baseline).

    Example:
        >>> x = torch.rand(1, 3, 8, 8)
        >>> bool((IdentityTranslator()(x) == x).all())
        True
    """

    spec_name = "identity"

    def forward(self, source: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
        return source
