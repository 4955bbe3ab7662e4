"""DAFormer's optimizer: AdamW, head lr x10, no decay on norms and pos_block, mmcv linear warm-up then poly 1.0."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import uda
from uda.config import OptimizerConfig, RecipeConfig
from uda.engine import build_optimizer, build_scheduler, lr_factor
from uda.recipes import Recipe

DAFORMER = dict(name="adamw", lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01, head_lr_mult=10.0, schedule="poly",
                power=1.0, total_iters=None, warmup_iters=1500, warmup_ratio=1e-6, no_decay_keys=["norm", "pos_block"])


def _mmcv_lr(base: float, it: int, max_iters: int = 40000, warm: int = 1500, ratio: float = 1e-6) -> float:
    """mmcv PolyLrUpdaterHook(power 1, min_lr 0) + linear warm-up, written out independently."""
    regular = base * (1 - it / max_iters) ** 1.0
    if it >= warm:
        return regular
    k = (1 - it / warm) * (1 - ratio)
    return regular * (1 - k)


@pytest.mark.parametrize("it", [0, 1, 750, 1499, 1500, 1501, 20000, 39999, 40000])
def test_warmup_then_poly_factor(it):
    cfg = OptimizerConfig(**DAFORMER)
    assert lr_factor(cfg, it, 40000) * 6e-5 == pytest.approx(_mmcv_lr(6e-5, it), rel=1e-12, abs=1e-20)


def test_warmup_exact_endpoints():
    cfg = OptimizerConfig(**DAFORMER)
    assert lr_factor(cfg, 0, 40000) == pytest.approx(1e-6, rel=1e-12)
    assert lr_factor(cfg, 1500, 40000) == pytest.approx(1 - 1500 / 40000, rel=1e-12)
    assert lr_factor(cfg, 40000, 40000) == 0.0
    assert lr_factor(OptimizerConfig(**{**DAFORMER, "warmup_iters": 0}), 0, 40000) == 1.0


class _Tiny(nn.Module):
    """A model with the names DAFormer's keys match: norms, a pos_block, a head."""

    feature_info = None

    def __init__(self) -> None:
        super().__init__()
        self.block = nn.Linear(3, 3)
        self.norm1 = nn.LayerNorm(3)
        self.pos_block = nn.Conv2d(3, 3, 3, groups=3)
        self.head = nn.Linear(3, 2)

    def head_parameters(self):
        return list(self.head.parameters())

    def param_groups(self, lr, head_lr_mult=10.0):
        back = [p for n, p in self.named_parameters() if not n.startswith("head")]
        return [{"params": back, "lr": lr, "lr_mult": 1.0, "name": "backbone"},
                {"params": self.head_parameters(), "lr": lr * head_lr_mult, "lr_mult": head_lr_mult, "name": "heads"}]


def test_adamw_groups_decay_and_lrs_through_steps():
    model = _Tiny()
    cfg = OptimizerConfig(**DAFORMER)
    opt = build_optimizer(Recipe(RecipeConfig(), model, num_classes=2).generator_param_groups(cfg), cfg)
    assert isinstance(opt, torch.optim.AdamW) and opt.defaults["betas"] == (0.9, 0.999)
    names = {id(p): n for n, p in model.named_parameters()}
    by = {n: (g["lr"], g.get("weight_decay")) for g in opt.param_groups for n in (names[id(p)] for p in g["params"])}
    assert by["block.weight"] == (6e-5, 0.01) and by["head.weight"] == (pytest.approx(6e-4), 0.01)
    for n in ("norm1.weight", "norm1.bias", "pos_block.weight", "pos_block.bias"):
        assert by[n] == (6e-5, 0.0)
    sched = build_scheduler(opt, cfg, max_iters=40000)
    seen = []
    for it in range(1502):
        seen.append(opt.param_groups[0]["lr"])
        if it == 0:
            assert sorted(g["lr"] for g in opt.param_groups) == pytest.approx([6e-11, 6e-11, 6e-10], rel=1e-9)
        opt.step()
        sched.step()
    assert seen[0] == pytest.approx(6e-5 * 1e-6, rel=1e-9)
    assert seen[750] == pytest.approx(_mmcv_lr(6e-5, 750), rel=1e-9)
    assert seen[1500] == pytest.approx(6e-5 * (1 - 1500 / 40000), rel=1e-9)
    head = next(g for g in opt.param_groups if g["name"] == "heads")
    assert head["lr"] == pytest.approx(_mmcv_lr(6e-4, 1502), rel=1e-9)


def test_no_decay_keys_reach_registered_models():
    model = uda.create("model", "deeplabv2_tiny", num_classes=3, width=4)
    cfg = OptimizerConfig(name="adamw", lr=1e-3, no_decay_keys=["bn"])
    groups = Recipe(RecipeConfig(), model, num_classes=3).generator_param_groups(cfg)
    n_bn = sum("bn" in n for n, p in model.named_parameters() if p.requires_grad)
    off = [p for g in groups if g.get("weight_decay") == 0.0 for p in g["params"]]
    assert len(off) == n_bn > 0
    assert sum(len(g["params"]) for g in groups) == sum(p.requires_grad for p in model.parameters())
