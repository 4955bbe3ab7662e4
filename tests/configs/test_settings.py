"""The Cityscapes → ACDC / Dark Zurich presets: the originals' values, composed from the GTA5 → Cityscapes presets,
and the synthetic stand-ins train from trees written by `uda data synth`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import uda
from uda.cli import main
from uda.config import get_builtin, parse_scalar
from uda.config.presets_settings import SETTING_OVERRIDES, SETTINGS_RECIPES

SETTINGS = ("cityscapes_acdc", "cityscapes_darkzurich")
STAND_INS = ("acdc_synthetic", "darkzurich_synthetic")


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_every_recipe_has_both_settings_and_stand_ins():
    names = set(uda.list_components("config"))
    for recipe in SETTINGS_RECIPES:
        for setting in (*SETTINGS, *STAND_INS):
            assert f"{recipe}_{setting}" in names
    assert set(SETTINGS_RECIPES) == {"source_only", "daformer", "hrda", "mic"}


@pytest.mark.parametrize("setting", SETTINGS)
def test_data_of_the_settings(setting):
    target = "acdc" if setting == "cityscapes_acdc" else "darkzurich"
    for recipe in SETTINGS_RECIPES:
        d = get_builtin(f"{recipe}_{setting}").data
        assert (d.source.name, d.source.root, d.source.split) == ("cityscapes", "data/cityscapes", "train")
        assert (d.target.name, d.target.split, d.val.name, d.val.split, d.val.size) == (target, "train", target,
                                                                                      "val", None)
        # Dark Zurich: the night train sequences only (rgb_anon/train/night in DAFormer's, HRDA's and MIC's configs)
        assert d.target.options == ({"times": ["night"]} if target == "darkzurich" else {})
        assert d.val.options == {}
        assert d.target.root == ("data/acdc" if target == "acdc" else "data/dark_zurich")


@pytest.mark.parametrize("setting", SETTINGS)
def test_daformer_values(setting):
    cfg = get_builtin(f"daformer_{setting}")
    rc, g = cfg.recipe, cfg.optim.generator
    # DAFormer's uda_cityscapes_to_{acdc,darkzurich}_512x512: Cityscapes 1024x512, target 960x540, 512 crops
    assert (cfg.data.source.size, cfg.data.target.size, rc.crop) == ("1024x512", "960x540", "512x512")
    # experiment 8 of DAFormer's experiments.py keeps plcrop=True (top 15, bottom 120) and RCS T=0.01, ratio 0.5
    mix = rc.terms["mix"]
    assert mix["pseudo_margins"] == [15, 120, 0, 0]
    assert (rc.rcs, rc.rcs_temperature, rc.rcs_min_crop_ratio, rc.rcs_min_pixels) == (True, 0.01, 0.5, 3000)
    assert (mix["alpha"], mix.get("pseudo_threshold", 0.968), rc.terms["fd"]["weight"], mix["mix_classes"]) == (
        0.999, 0.968, 0.005, "batch")
    assert (g.name, g.lr, g.head_lr_mult, g.warmup_iters) == ("adamw", 6e-5, 10.0, 1500)
    assert (cfg.trainer.max_iters, cfg.data.batch_size, cfg.model.name) == (40000, 2, "daformer_mitb5")
    # the whole 960x540 image (mmseg test pipeline img_scale (960, 540)), logits upsampled to the 1920x1080 labels
    e = cfg.eval
    assert (e.mode, e.size, e.resize_interpolation, e.align_corners) == ("resize", "960x540", "bilinear", False)


@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize("recipe", ["hrda", "mic"])
def test_hrda_and_mic_values(setting, recipe):
    cfg = get_builtin(f"{recipe}_{setting}")
    rc = cfg.recipe
    # uda_cityscapesHR_to_{acdc,darkzurich}HR_1024x1024: Cityscapes 2048x1024, target 1920x1080, 1024 crops
    assert (cfg.data.source.size, cfg.data.target.size, rc.crop) == ("2048x1024", "1920x1080", "1024x1024")
    assert rc.terms["mix"]["pseudo_margins"] == [0, 0, 0, 0]  # "ACDC and DarkZurich have no rectification artifacts"
    assert (rc.rcs_min_crop_ratio, rc.detail_weight, cfg.model.name) == (2.0, 0.1, "hrda_mitb5")
    assert (cfg.trainer.max_iters, cfg.data.batch_size) == (40000, 2)
    e = cfg.eval
    assert (e.mode, e.size, e.crop, e.stride) == ("slide", "1920x1080", "1024x1024", "512x512")
    if recipe == "mic":  # MIC's mask_mode 'separate' here: the masked image is not colour-augmented
        assert rc.terms["mic"] == {"kind": "mic", "weight": 1.0, "ratio": 0.7, "block": 64, "augmentation": False}
    else:
        assert "mic" not in rc.terms


@pytest.mark.parametrize("setting", SETTINGS)
def test_source_only_values(setting):
    cfg = get_builtin(f"source_only_{setting}")
    assert (cfg.model.name, cfg.recipe.name, cfg.data.source.size) == ("deeplabv2", "source_only", "1024x512")
    assert (cfg.eval.mode, cfg.eval.size) == ("resize", "960x540")


@pytest.mark.parametrize("setting", [*SETTINGS, *STAND_INS])
@pytest.mark.parametrize("recipe", SETTINGS_RECIPES)
def test_composed_from_the_recipe_preset(setting, recipe):
    """Everything but the data sets, the evaluation size and the table's keys is the recipe's own preset."""
    cfg = get_builtin(f"{recipe}_{setting}").to_dict()
    base = get_builtin(f"{recipe}_{'synthetic' if setting in STAND_INS else 'gta5_cityscapes'}").to_dict()
    changed = {o.partition("=")[0] for o in SETTING_OVERRIDES[setting][recipe]}
    for section in ("model", "optim", "trainer"):
        assert cfg[section] == base[section]
    for key, value in base["recipe"].items():
        if not any(c == f"recipe.{key}" or c.startswith(f"recipe.{key}.") for c in changed):
            assert cfg["recipe"][key] == value, key
    for key in ("crop", "stride", "resize_interpolation", "align_corners", "protocol", "flip"):
        assert cfg["eval"][key] == base["eval"][key]
    assert cfg["data"]["batch_size"] == base["data"]["batch_size"]
    if setting in STAND_INS:  # the tiny models keep their sizes
        for part in ("source", "target", "val"):
            assert cfg["data"][part]["size"] == base["data"][part]["size"]
        assert cfg["eval"] == base["eval"]


def test_every_override_lands_in_the_preset():
    for setting, table in SETTING_OVERRIDES.items():
        for recipe, overrides in table.items():
            cfg = get_builtin(f"{recipe}_{setting}").to_dict()
            for item in overrides:
                key, _, raw = item.partition("=")
                node = cfg
                for part in key.split("."):
                    node = node[part]
                assert node == parse_scalar(raw), (setting, recipe, item)


@pytest.fixture(scope="module")
def trees(tmp_path_factory) -> dict[str, Path]:
    """A synthetic Cityscapes source tree and ACDC / Dark Zurich target trees, written by `uda data synth`."""
    root = tmp_path_factory.mktemp("settings")
    out = {"cityscapes": root / "cityscapes", "acdc": root / "acdc", "darkzurich": root / "dark_zurich"}
    r = invoke("data", "synth", "--out", out["cityscapes"], "--domain", "source", "--layout", "cityscapes",
               "--num", "2", "--size", "64x32")
    assert r.exit_code == 0, r.output
    r = invoke("data", "synth", "--out", out["acdc"], "--layout", "acdc", "--num", "1", "--size", "128x72",
               "--splits", "train,val", "--no-ref")
    assert r.exit_code == 0, r.output
    r = invoke("data", "synth", "--out", out["darkzurich"], "--layout", "darkzurich", "--num", "2",
               "--size", "128x72", "--splits", "train,val")
    assert r.exit_code == 0, r.output
    return out


@pytest.mark.parametrize("target", ["acdc", "darkzurich"])
@pytest.mark.parametrize("recipe", SETTINGS_RECIPES)
def test_stand_in_trains_from_generated_trees(tmp_path, trees, recipe, target):
    name = f"{recipe}_{target}_synthetic"
    out = tmp_path / "run"
    r = invoke("train", name, "--out", out, "--device", "cpu", "--set", "trainer.max_iters=2",
               "--set", "trainer.checkpoint_every=2", "--set", "trainer.tensorboard=false",
               "--set", "data.batch_size=2",
               "--set", f"data.source.root={trees['cityscapes']}", "--set", f"data.target.root={trees[target]}",
               "--set", f"data.val.root={trees[target]}")
    assert r.exit_code == 0, r.output
    final = json.loads((out / "final.json").read_text())
    # ACDC val: 1 image per condition x 4 conditions; Dark Zurich val: night only, 2 images
    assert final["num_images"] == (4 if target == "acdc" else 2)
    assert 0.0 <= final["miou"] <= 100.0
    cfg = uda.config.load_config(out / "config.yaml")
    assert (cfg.name, cfg.data.target.name, cfg.data.val.name, cfg.trainer.max_iters) == (name, target, target, 2)
    assert cfg.data.target.options == ({"times": ["night"]} if target == "darkzurich" else {})
    # the run's report shows the setting's published test-server rows beside it, named as such
    table = (out / "table.md").read_text()
    assert "| HRDA (test) |" in table and "test (evaluation server), not on the split scored here" in table


@pytest.mark.parametrize("name", ["hrda_cityscapes_acdc", "daformer_cityscapes_darkzurich"])
def test_paper_preset_trains_on_generated_trees_with_a_tiny_model(tmp_path, trees, name):
    """The real presets' data plumbing (Cityscapes source with RCS, the target's layout and options, the
    evaluation mode) runs end to end; only the model and the sizes are shrunk."""
    target = "acdc" if "acdc" in name else "darkzurich"
    hrda = name.startswith("hrda")
    tiny = ["model.name=" + ("hrda_tiny" if hrda else "daformer_tiny"), "model.pretrained=null",
            "data.source.size=64x64", "data.target.size=64x64", "recipe.crop=" + ("64x64" if hrda else "32x32"),
            "eval.mode=slide" if hrda else "eval.size=64x36", "recipe.rcs_min_pixels=10", "recipe.fd_weight=0",
            "data.num_workers=0", "trainer.max_iters=2", "trainer.checkpoint_every=2", "trainer.tensorboard=false",
            f"data.source.root={trees['cityscapes']}", f"data.target.root={trees[target]}",
            f"data.val.root={trees[target]}"]
    if hrda:
        tiny += ["model.options={detail_size: 32}", "eval.size=128x72", "eval.crop=64x64", "eval.stride=32x32"]
    out = tmp_path / "run"
    r = invoke("train", name, "--out", out, "--device", "cpu", *[a for s in tiny for a in ("--set", s)])
    assert r.exit_code == 0, r.output
    cfg = uda.config.load_config(out / "config.yaml")
    assert cfg.recipe.terms["mix"]["pseudo_margins"] == ([0, 0, 0, 0] if hrda else [15, 120, 0, 0])
    assert cfg.eval.mode == ("slide" if hrda else "resize") and cfg.recipe.rcs
    assert json.loads((out / "final.json").read_text())["num_images"] == (4 if target == "acdc" else 2)
