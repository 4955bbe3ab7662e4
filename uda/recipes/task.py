"""The seam between a recipe and the training loop: a stage trains one task, step by step.

A recipe declares its stages (MLFA: ``translator`` then ``seg``); the one loop (`uda.engine.Trainer`) runs
them in order with the same machinery (freeze, AMP, accumulation, clipping, checkpoints, resume). Per
iteration the loop calls, on the stage's task:

1. ``generator_losses(src, tgt) -> (losses, state)`` with the modules of ``frozen_in_generator_phase()``
   frozen, and backpropagates the sum of ``losses``;
2. ``discriminator_losses(state) -> losses`` and backpropagates their sum;
3. the optimizer steps (skipped when a loss is not finite), then ``after_step(step)`` when they were applied.

``state`` is a typed object the task hands from phase 1 to phase 2 (`SegStep` for the segmentation stage).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import torch
from torch import nn

from ..config import OptimizerConfig

Batch = dict[str, Any]
Losses = dict[str, torch.Tensor]
StateT = TypeVar("StateT")
Size = tuple[int, int]


class Task(Protocol[StateT]):
    """What a stage trains: its losses per phase, its parameters and the modules it puts in train mode.

    Implemented by `uda.recipes.Recipe` (the segmentation stage) and `TranslatorTask` (MLFA/CycleGAN stage 1).
    """

    def generator_losses(self, src: Batch, tgt: Batch) -> tuple[Losses, StateT]: ...

    def discriminator_losses(self, state: StateT) -> Losses: ...

    def generator_param_groups(self, cfg: OptimizerConfig) -> list[dict]: ...

    def discriminator_parameters(self) -> list[nn.Parameter]: ...

    def frozen_in_generator_phase(self) -> list[nn.Module]: ...

    def trained_modules(self) -> list[nn.Module]: ...

    def after_step(self, step: int) -> None: ...


@dataclass
class Stage(Generic[StateT]):
    """One stage of a recipe.

    Attributes:
        name: ``"seg"`` for the segmentation stage, ``"translator"`` for CycleGAN training, ...
        task: the `Task` providing the losses and parameters.
        iters: number of optimizer steps of this stage.
        generator_optim: optimizer/schedule of the generator side (segmentation net or translators).
        discriminator_optim: optimizer/schedule of the discriminator side (``None``: no discriminators).

    Example:
        >>> from uda.config import OptimizerConfig
        >>> Stage("seg", task=None, iters=10, generator_optim=OptimizerConfig()).iters
        10
    """

    name: str
    task: Task[StateT]
    iters: int
    generator_optim: OptimizerConfig
    discriminator_optim: OptimizerConfig | None = None


class TranslatorTask:
    """Stage-1 task training a CycleGAN-like translator (its own generator/discriminator losses and parameters).

    Args:
        translator: a translator with ``generator_losses(source, target)``, ``discriminator_losses(state)``,
            ``generator_parameters()``, ``discriminator_parameters()`` and ``discriminator_modules()``.
        crop: train on random ``(W, H)`` crops of both batches (``None``: full images).
    """

    def __init__(self, translator: nn.Module, crop: Size | None = None) -> None:
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

    def generator_losses(self, src: Batch, tgt: Batch) -> tuple[Losses, Any]:
        return self.translator.generator_losses(self._crop(src["image"]), self._crop(tgt["image"]))

    def discriminator_losses(self, state: Any) -> Losses:
        return self.translator.discriminator_losses(state)

    def generator_param_groups(self, cfg: OptimizerConfig) -> list[dict]:
        return [{"params": list(self.translator.generator_parameters()), "lr": cfg.lr, "name": "translator_g"}]

    def discriminator_parameters(self) -> list[nn.Parameter]:
        return list(self.translator.discriminator_parameters())

    def frozen_in_generator_phase(self) -> list[nn.Module]:
        return list(self.translator.discriminator_modules())

    def trained_modules(self) -> list[nn.Module]:
        return [self.translator]

    def after_step(self, step: int) -> None:
        """Nothing to do after a translator step."""
