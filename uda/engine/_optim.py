"""Optimizers, learning-rate schedules and the freeze helper of the one training loop.

AdaptSegNet (Tsai et al., CVPR 2018) and ADVENT (Vu et al., CVPR 2019): SGD lr 2.5e-4, momentum 0.9,
wd 5e-4 with the classifier heads at 10x; Adam 1e-4, betas (0.9, 0.99) for the discriminators; poly
decay ``lr * (1 - it / total) ** 0.9`` every iteration. CycleGAN (Zhu et al., ICCV 2017): Adam 2e-4,
betas (0.5, 0.999), constant then linear decay to 0.
"""

from __future__ import annotations

import torch
from torch import nn

from .._errors import ConfigError
from ..config import OptimizerConfig


def build_optimizer(groups: list[dict] | list[nn.Parameter], cfg: OptimizerConfig) -> torch.optim.Optimizer:
    """An optimizer from a config section over parameter groups (each group may carry its own ``lr``).

    Args:
        groups: parameter groups (dicts with ``params`` and optionally ``lr``) or a plain parameter list.
        cfg: ``optim.generator`` / ``optim.discriminator`` / a recipe's translator optimizer section.

    Returns:
        ``torch.optim.SGD``, ``Adam`` or ``AdamW``.
    """
    if groups and not isinstance(groups[0], dict):
        groups = [{"params": list(groups), "lr": cfg.lr}]
    groups = [g for g in groups if len(g["params"])]  # type: ignore[index]
    if cfg.name == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if cfg.name == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)
    if cfg.name == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)
    raise ConfigError(f"optim: unknown optimizer '{cfg.name}'; use sgd, adam or adamw")  # pragma: no cover


def lr_factor(cfg: OptimizerConfig, it: int, max_iters: int) -> float:
    """The schedule's multiplier at iteration ``it``.

    ``poly``: ``(1 - it / total) ** power`` with ``total = cfg.total_iters or max_iters`` (the papers decay
    over a 250k horizon and stop at 120k); ``linear_decay``: 1 until ``decay_start`` then linear to 0 at
    ``total``; ``constant``: 1.

    Example:
        >>> from uda.config import OptimizerConfig
        >>> lr_factor(OptimizerConfig(total_iters=100), 50, 10)
        0.5358867312681466
    """
    total = cfg.total_iters or max_iters
    if cfg.schedule == "constant":
        f = 1.0
    elif cfg.schedule == "poly":
        f = max(0.0, 1.0 - it / total) ** cfg.power
    elif cfg.schedule == "linear_decay":
        f = 1.0 if it < cfg.decay_start else max(0.0, 1.0 - (it - cfg.decay_start) / max(1, total - cfg.decay_start))
    else:  # pragma: no cover
        raise ConfigError(f"optim: unknown schedule '{cfg.schedule}'")
    warm = getattr(cfg, "warmup_iters", 0)
    if warm and it < warm:  # mmcv's linear warm-up on top of the schedule (DAFormer: 1500 iterations from 1e-6)
        f *= 1.0 - (1.0 - it / warm) * (1.0 - cfg.warmup_ratio)
    return f




def build_scheduler(opt: torch.optim.Optimizer, cfg: OptimizerConfig, max_iters: int) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` applying `lr_factor` to every group's own base lr (so heads keep their 10x)."""
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda it: lr_factor(cfg, it, max_iters))
