"""Shared test fixtures: one torch thread for tiny CPU tests, and tiny experiment configs (64x32 synthetic images,
a 4-wide DeepLab-v2, fp32 CPU) for the engine, recipe and config tests."""

from __future__ import annotations

import pytest
import torch

from uda.config import load_config

TINY = [
    "data.source.size=64x32", "data.target.size=64x32", "data.val.size=64x32", "eval.size=64x32",
    "data.source.options.num=8", "data.target.options.num=8", "data.val.options.num=2", "data.batch_size=2",
    "model.options.width=4", "trainer.log_every=1", "trainer.tensorboard=false", "trainer.device=cpu",
    "trainer.eval_every=0",
]


def tiny_config(name: str = "source_only_synthetic", *overrides: str):
    """A built-in ``*_synthetic`` config shrunk to test size, plus ``overrides``."""
    base = load_config(name)
    recipe = base.recipe
    tiny = TINY if base.model.name == "deeplabv2_tiny" else [o for o in TINY if not o.startswith("model.options.width")]
    extra = ["recipe.translator_iters=2"] if "translator_iters" in recipe.__dict__ else []
    if getattr(recipe, "feature_alignment", None) == "multilevel":  # 3 stride-2 convs need >= 16x8 stride-8 maps
        extra += [f"{k}=128x64" for k in ("data.source.size", "data.target.size", "data.val.size", "eval.size")]
    if base.model.name.startswith("hrda"):  # the context view halves the input: 64x64 crops, 32x32 detail crops
        extra += [f"{k}=64x64" for k in ("data.source.size", "data.target.size", "data.val.size", "eval.size")]
        extra += ["recipe.crop=64x64", "model.options.detail_size=32", "eval.crop=64x64", "eval.stride=32x32"]
    return load_config(name, [*tiny, *extra, *overrides])


@pytest.fixture
def tiny():
    """The :func:`tiny_config` factory."""
    return tiny_config


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny CPU tests run fastest on one thread (and avoid OpenMP oversubscription on shared machines)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
