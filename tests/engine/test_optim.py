"""Optimizers and schedules: heads at 10x, poly over the 250k horizon, the originals' duplicate-parameter quirk."""

from __future__ import annotations

import warnings

import pytest

import uda
from uda.config import OptimizerConfig, RecipeConfig
from uda.engine import build_optimizer, build_scheduler, lr_factor
from uda.recipes import Recipe


def test_poly_linear_constant():
    poly = OptimizerConfig(total_iters=250000)
    assert lr_factor(poly, 0, 120000) == 1.0
    assert lr_factor(poly, 125000, 120000) == pytest.approx(0.5**0.9)
    assert lr_factor(OptimizerConfig(total_iters=None), 10, 10) == 0.0  # horizon = max_iters when null
    lin = OptimizerConfig(schedule="linear_decay", total_iters=100, decay_start=50)
    assert [lr_factor(lin, i, 0) for i in (0, 50, 75, 100)] == [1.0, 1.0, 0.5, 0.0]
    assert lr_factor(OptimizerConfig(schedule="constant"), 99, 100) == 1.0


def _recipe(**ocfg):
    model = uda.create("model", "deeplabv2_tiny", num_classes=3, width=4)
    return Recipe(RecipeConfig(), model, num_classes=3), OptimizerConfig(**ocfg)


def test_heads_at_10x_and_schedule_steps():
    recipe, ocfg = _recipe(lr=1e-3, total_iters=10)
    opt = build_optimizer(recipe.generator_param_groups(ocfg), ocfg)
    sched = build_scheduler(opt, ocfg, max_iters=5)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([1e-3, 1e-2])
    opt.step()
    sched.step()
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([1e-3 * 0.9**0.9, 1e-2 * 0.9**0.9])


def test_faithful_duplicate_params_lists_backbone_tensors_repeatedly():
    recipe, plain = _recipe()
    _, faithful = _recipe(faithful_duplicate_params=True)
    g_plain = recipe.generator_param_groups(plain)
    g_dup = recipe.generator_param_groups(faithful)
    assert len(g_dup[0]["params"]) > 2 * len(g_plain[0]["params"])
    assert {id(p) for p in g_dup[0]["params"]} == {id(p) for p in g_plain[0]["params"]}
    assert g_dup[1]["params"] == g_plain[1]["params"]  # heads are not duplicated
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        build_optimizer(g_dup, faithful)
