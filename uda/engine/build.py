"""Building the parts of a run (model, recipe, stages, optimizers, loaders, augmentation) from a config.

Separate from the loop (`uda.engine.Trainer`), so that a run's parts can be built and inspected (or
stepped by hand in a test) without training.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .._errors import ConfigError, UdaError
from .._registry import create
from .._utils import autocast_context
from ..config import DatasetConfig, ExperimentConfig
from ..recipes.task import Stage
from . import distributed as D
from ._optim import build_optimizer, build_scheduler
from .ddp import DDPRouter

if TYPE_CHECKING:
    from ..recipes import Recipe

StageOptimizers = dict[str, Any]
"""``{"generator": opt, "generator_sched": sched}`` plus ``"discriminator"``/``"discriminator_sched"`` when
the stage has a discriminator side (the layout of a checkpoint's ``optimizers``/``schedulers``)."""


def seed_everything(seed: int, rank: int = 0) -> None:
    """Seed python, numpy and torch (all devices) with ``seed + rank``."""
    s = seed + rank
    random.seed(s)
    np.random.seed(s % 2**32)
    torch.manual_seed(s)


def check_writable(out_dir: Path) -> None:
    """Create ``out_dir`` and write + delete a probe file; fail early with a `UdaError` naming it."""
    try:
        (out_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
        probe = out_dir / "checkpoints" / f".write_probe_{os.getpid()}"
        probe.write_bytes(b"uda")
        probe.unlink()
    except OSError as e:
        raise UdaError(f"{out_dir}: the output directory is not writable ({e.strerror or e}); "
                       "choose another --out or fix its permissions") from None


@dataclass
class RunParts:
    """Everything a run trains with; built by `build_parts`.

    Attributes:
        model: the segmentation network (also ``recipe.model``).
        recipe: the recipe (an ``nn.Module`` holding the model, its loss terms, translator and carried modules).
        stages: the recipe's stages in order.
        optimizers: stage name → its optimizers and schedules (`StageOptimizers`).
        scaler: the AMP gradient scaler (disabled unless fp16 on CUDA).
        autocast: the autocast context of the forward passes (a no-op unless ``trainer.amp``).
        source_ds: the labelled source training set (after `Recipe.wrap_datasets`).
        target_ds: the unlabelled target training set (after `Recipe.wrap_datasets`).
        val_ds: the labelled target validation set.
        source_iter: the infinite loader over ``source_ds``.
        target_iter: the infinite loader over ``target_ds``.
        augment: the batch augmentation applied to source batches (``None``: none).
        ddp: the DistributedDataParallel wrappers of the trained networks (``None``: one process).
    """

    model: torch.nn.Module
    recipe: Recipe
    stages: list[Stage]
    optimizers: dict[str, StageOptimizers]
    scaler: torch.amp.GradScaler
    autocast: Any
    source_ds: Any
    target_ds: Any
    val_ds: Any
    source_iter: Any
    target_iter: Any
    augment: torch.nn.Module | None
    ddp: DDPRouter | None = None


def build_optimizers(stages: list[Stage]) -> dict[str, StageOptimizers]:
    """The optimizers and schedules of every stage, from the stage's task and optimizer configs."""
    optimizers = {}
    for st in stages:
        opt_g = build_optimizer(st.task.generator_param_groups(st.generator_optim), st.generator_optim)
        entry = {"generator": opt_g, "generator_sched": build_scheduler(opt_g, st.generator_optim, st.iters)}
        d_params = st.task.discriminator_parameters()
        if st.discriminator_optim is not None and d_params:
            opt_d = build_optimizer(d_params, st.discriminator_optim)
            entry.update(discriminator=opt_d,
                         discriminator_sched=build_scheduler(opt_d, st.discriminator_optim, st.iters))
        optimizers[st.name] = entry
    return optimizers


def build_parts(cfg: ExperimentConfig, device: torch.device, dist: D.DistInfo) -> RunParts:
    """Build a run's parts; seeds torch with ``trainer.seed`` first (identical initial weights on every rank)
    and with ``trainer.seed + rank`` last (per-rank randomness from there on).

    Args:
        cfg: the resolved experiment config.
        device: where the recipe and the batches go.
        dist: this process's rank and world size.

    Returns:
        The `RunParts`.
    """
    from ..data import InfiniteLoader, build_dataset

    t = cfg.trainer
    if t.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    seed_everything(t.seed)  # identical initial weights on every rank
    model = create("model", cfg.model.name, num_classes=cfg.model.num_classes,
                   pretrained=cfg.model.pretrained, **cfg.model.options)
    recipe = create("recipe", cfg.recipe.name, cfg=cfg.recipe, model=model,
                    num_classes=cfg.model.num_classes, feature_info=model.feature_info)
    recipe.to(device)
    if t.channels_last:
        recipe.to(memory_format=torch.channels_last)
    if t.compile:
        model.forward_normalized = torch.compile(model.forward_normalized)
    D.broadcast_parameters([recipe])
    stages = recipe.stages(cfg)
    optimizers = build_optimizers(stages)
    use_cuda = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_cuda and t.amp == "fp16")
    autocast = autocast_context(t.amp, device)  # built once; bf16 also on the CPU, fp16 CUDA-only
    # DDP wrappers of the trained networks (uda.engine.ddp); None for a single process.
    ddp = DDPRouter([st.task for st in stages], device) if dist.enabled else None

    src_cfg = DatasetConfig(**{**cfg.data.source.__dict__,
                               "options": {**cfg.data.source.options, **recipe.source_dataset_options()}})
    source_ds = build_dataset(src_cfg, labels=True, on_bad_sample=cfg.data.on_bad_sample)
    target_ds = build_dataset(cfg.data.target, labels=False, on_bad_sample=cfg.data.on_bad_sample)
    source_ds, target_ds = recipe.wrap_datasets(source_ds, target_ds)
    val_ds = build_dataset(cfg.data.val, labels=True)
    for section, ds in (("source", source_ds), ("val", val_ds)):  # a class map must fit the model's classes
        n = getattr(ds, "num_classes", None)
        if isinstance(n, int) and n != cfg.model.num_classes:
            raise ConfigError(f"data.{section}: its labels have {n} classes (class map) but model.num_classes is "
                              f"{cfg.model.num_classes}; set model.num_classes={n} or fix the class map")
    kw = dict(batch_size=cfg.data.batch_size, rank=dist.rank, world_size=dist.world_size,
              num_workers=cfg.data.num_workers, device=device)
    source_iter = InfiniteLoader(source_ds, seed=t.seed, **kw)
    target_iter = InfiniteLoader(target_ds, seed=t.seed + 7919, **kw)
    augment = (create("augmentation", cfg.data.augmentation, **cfg.data.augmentation_options).to(device)
               if cfg.data.augmentation else None)
    seed_everything(t.seed, dist.rank)  # per-rank randomness from here on
    return RunParts(model, recipe, stages, optimizers, scaler, autocast, source_ds, target_ds, val_ds,
                    source_iter, target_iter, augment, ddp)
