"""Every built-in experiment config resolves, round-trips through YAML, and its synthetic variant trains."""

from __future__ import annotations

import json

import pytest

import uda
from uda._io import load_yaml
from uda.config import ExperimentConfig, load_config
from uda.engine import train

CONFIGS = uda.list_components("config")
# the built-in synthetic pair's presets (the *_acdc_synthetic / *_darkzurich_synthetic stand-ins read generated
# trees instead: tests/configs/test_settings.py trains them)
IN_MEMORY = [c for c in CONFIGS if c.endswith("_synthetic") and load_config(c).data.source.name == "synthetic"]
# the recipes uda ships (tests and examples register their own, e.g. `dacs_sketch`, without presets)
RECIPES = [r for r in uda.list_components("recipe") if uda.registry("recipe").get(r).__module__.startswith("uda.")]


def test_every_recipe_has_three_setups_and_mlfa_ablations():
    for r in [*RECIPES, "mlfa_no_translation", "mlfa_no_feature_alignment", "mlfa_output_level"]:
        for setup in ("gta5_cityscapes", "synthia_cityscapes", "synthetic"):
            assert f"{r}_{setup}" in CONFIGS


@pytest.mark.parametrize("name", CONFIGS)
def test_config_round_trips_through_yaml(tmp_path, name):
    cfg = load_config(name)
    assert cfg.name == name and cfg.recipe.name in RECIPES
    path = tmp_path / "c.yaml"
    path.write_text(cfg.to_yaml())
    assert ExperimentConfig.from_dict(load_yaml(path)) == cfg
    if name in IN_MEMORY:  # (load_config merges `options` mappings with the defaults' synthetic options)
        assert load_config(path) == cfg


@pytest.mark.parametrize("setup", ["gta5_cityscapes", "synthia_cityscapes"])
def test_paper_settings(setup):
    cfg = load_config(f"mlfa_{setup}")
    src = {"gta5_cityscapes": "1280x720", "synthia_cityscapes": "1280x760"}[setup]
    assert (cfg.data.source.size, cfg.data.target.size, cfg.data.batch_size) == (src, "1024x512", 1)
    g, d = cfg.optim.generator, cfg.optim.discriminator
    assert (g.name, g.lr, g.momentum, g.weight_decay, g.head_lr_mult, g.total_iters) == ("sgd", 2.5e-4, 0.9, 5e-4, 10, 250000)
    assert (d.name, d.lr, tuple(d.betas)) == ("adam", 1e-4, (0.9, 0.99))
    assert cfg.trainer.max_iters == 120000 and cfg.model.name == "deeplabv2"
    assert cfg.model.pretrained.endswith("DeepLab_resnet_pretrained_imagenet.pth")
    assert cfg.eval.size == "1024x512" and cfg.eval.protocol == ("16" if "synthia" in setup else "19")
    assert cfg.recipe.weight == 1e-3 and cfg.recipe.levels == ["layer2", "layer3", "layer4"] and cfg.recipe.fru
    assert load_config(f"adaptsegnet_{setup}").recipe.levels == {"logits": 1e-3, "aux": 2e-4}
    assert load_config(f"minent_{setup}").recipe.levels == {"logits": 1e-3, "aux": 2e-4}


@pytest.mark.parametrize("name", IN_MEMORY)
def test_synthetic_config_trains_two_iterations(tmp_path, tiny, name):
    result = train(tiny(name, "trainer.max_iters=2", "recipe.translator_iters=1"
                        if "translator_iters" in load_config(name).recipe.__dict__ else "trainer.max_iters=2"),
                   tmp_path)
    assert 0.0 <= result["miou"] <= 100.0
    assert json.loads((tmp_path / "final.json").read_text())["miou"] == result["miou"]
