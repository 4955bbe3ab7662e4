"""The faithful paper presets: moving BN statistics, duplicated 1x parameters, AdaptSegNet's two-branch classifier."""

from __future__ import annotations

import pytest

import uda
from uda.config import get_builtin, load_config


@pytest.mark.parametrize("recipe", ["adaptsegnet", "advent", "minent"])
@pytest.mark.parametrize("setup", ["gta5_cityscapes", "synthia_cityscapes"])
def test_faithful_presets(recipe, setup):
    plain, faithful = get_builtin(f"{recipe}_{setup}"), get_builtin(f"{recipe}_{setup}_faithful")
    assert faithful.name == f"{recipe}_{setup}_faithful"
    assert faithful.model.options.get("bn_mode") == "moving" and "bn_mode" not in plain.model.options
    assert faithful.optim.generator.faithful_duplicate_params and not plain.optim.generator.faithful_duplicate_params
    assert faithful.model.options.get("classifier_branches") == (2 if recipe == "adaptsegnet" else None)
    assert faithful.recipe == plain.recipe and faithful.data == plain.data and faithful.trainer == plain.trainer


def test_faithful_preset_builds_its_model():
    cfg = load_config("adaptsegnet_gta5_cityscapes_faithful", ["model.pretrained=null"])
    m = uda.create("model", cfg.model.name, num_classes=cfg.model.num_classes, **cfg.model.options)
    assert m.bn_mode == "moving" and m.head.num_summed == 2 and m.aux_head.num_summed == 2
    assert "adaptsegnet_gta5_cityscapes_faithful" in uda.list_components("config")
