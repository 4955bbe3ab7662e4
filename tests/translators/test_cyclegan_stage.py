"""CycleGAN stage 1 as the CycleGAN/CyCADA practice: N(0, 0.02) weights, random crops, decay from translator_iters."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import uda
from uda.config import load_config
from uda.engine._optim import lr_factor
from uda.recipes._base import translator_stage_optim


def test_cyclegan_weights_are_normal_002():
    cg = uda.create("translator", "cyclegan", ngf=16, n_blocks=2, ndf=16)
    for net in (cg.g_st, cg.g_ts, cg.d_t, cg.d_s):
        convs = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
        assert convs
        w = torch.cat([m.weight.detach().flatten() for m in convs])
        assert abs(float(w.mean())) < 1e-3 and abs(float(w.std()) - 0.02) < 1e-3  # default init: std ~0.05-0.1
        assert all(float(m.bias.detach().abs().max()) == 0.0 for m in convs if m.bias is not None)


@pytest.mark.parametrize("name", ["cyclegan_gta5_cityscapes", "mlfa_synthia_cityscapes"])
def test_paper_preset_crops_and_decays_over_the_configured_length(name):
    cfg = load_config(name)
    assert cfg.recipe.translator_crop == "452x452" and cfg.recipe.translator_iters == 100000
    assert translator_stage_optim(cfg.recipe).decay_start == 50000
    longer = load_config(name, ["recipe.translator_iters=200000"])
    opt = translator_stage_optim(longer.recipe)
    assert opt.decay_start == 100000  # fixed at 50000 when the preset was built before
    assert [lr_factor(opt, i, 200000) for i in (0, 99999, 150000, 200000)] == [1.0, 1.0, 0.5, 0.0]


def test_translator_stage_of_a_recipe_uses_the_resolved_decay():
    cfg = load_config("cyclegan_synthetic", ["recipe.translator_iters=40"])
    model = uda.create("model", cfg.model.name, num_classes=cfg.model.num_classes)
    recipe = uda.create("recipe", cfg.recipe.name, cfg=cfg.recipe, model=model, num_classes=cfg.model.num_classes)
    stage = recipe.stages(cfg)[0]
    assert stage.name == "translator" and stage.iters == 40
    assert stage.generator_optim.decay_start == stage.discriminator_optim.decay_start == 20
    assert stage.task.crop == (64, 64)
    cfg.recipe.translator_decay_start = 1.5
    with pytest.raises(uda.ConfigError, match="translator_decay_start"):
        recipe.stages(cfg)
