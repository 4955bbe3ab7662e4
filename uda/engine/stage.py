"""A training stage: one task (its named losses per phase and its parameters), its length and optimizers.

A recipe declares its stages (MLFA: ``translator`` then ``seg``); the one loop in :mod:`uda.engine.trainer`
runs them in order with the same machinery (freeze, AMP, accumulation, clipping, checkpoints, resume).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import nn

from ..config import OptimizerConfig


class Task(Protocol):
    """What a stage trains. The loop calls, per iteration: freeze :meth:`frozen_in_generator_phase`,
    backward of the sum of :meth:`generator_losses`, unfreeze, backward of the sum of
    :meth:`discriminator_losses`, then the optimizer steps."""

    def generator_losses(self, src: dict, tgt: dict) -> tuple[dict[str, torch.Tensor], Any]: ...

    def discriminator_losses(self, state: Any) -> dict[str, torch.Tensor]: ...

    def generator_param_groups(self, cfg: OptimizerConfig) -> list[dict]: ...

    def discriminator_parameters(self) -> list[nn.Parameter]: ...

    def frozen_in_generator_phase(self) -> list[nn.Module]: ...

    def trained_modules(self) -> list[nn.Module]: ...


@dataclass
class Stage:
    """One stage of a recipe.

    Attributes:
        name: ``"seg"`` for the segmentation stage, ``"translator"`` for CycleGAN training, ...
        task: the :class:`Task` providing the losses and parameters.
        iters: number of optimizer steps of this stage.
        generator_optim: optimizer/schedule of the generator side (segmentation net or translators).
        discriminator_optim: optimizer/schedule of the discriminator side (``None``: no discriminators).
    """

    name: str
    task: Any
    iters: int
    generator_optim: OptimizerConfig
    discriminator_optim: OptimizerConfig | None = None


class TranslatorTask:
    """Stage-1 task training a CycleGAN-like translator (its own generator/discriminator losses and parameters).

    Args:
        crop: train on random ``(W, H)`` crops of both batches (``None``: full images).
        translator: a translator with ``generator_losses(source, target)``, ``discriminator_losses(state)``,
            ``generator_parameters()``, ``discriminator_parameters()`` and ``discriminator_modules()``.
    """

    def __init__(self, translator: nn.Module, crop: tuple[int, int] | None = None) -> None:
        self.translator = translator
        self.crop = crop

    def _crop(self, x: torch.Tensor) -> torch.Tensor:
        # CycleGAN practice: train on random crops (the generator is fully convolutional); torch RNG → resumable
        if self.crop is None:
            return x
        w, h = self.crop
        top = int(torch.randint(0, max(1, x.shape[-2] - h + 1), ()))
        left = int(torch.randint(0, max(1, x.shape[-1] - w + 1), ()))
        return x[..., top:top + h, left:left + w]

    def generator_losses(self, src: dict, tgt: dict) -> tuple[dict[str, torch.Tensor], Any]:
        return self.translator.generator_losses(self._crop(src["image"]), self._crop(tgt["image"]))

    def discriminator_losses(self, state: Any) -> dict[str, torch.Tensor]:
        return self.translator.discriminator_losses(state)

    def generator_param_groups(self, cfg: OptimizerConfig) -> list[dict]:
        return [{"params": list(self.translator.generator_parameters()), "lr": cfg.lr, "name": "translator_g"}]

    def discriminator_parameters(self) -> list[nn.Parameter]:
        return list(self.translator.discriminator_parameters())

    def frozen_in_generator_phase(self) -> list[nn.Module]:
        return list(self.translator.discriminator_modules())

    def trained_modules(self) -> list[nn.Module]:
        return [self.translator]
