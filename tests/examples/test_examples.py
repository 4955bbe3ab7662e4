"""Every example runs (tiny sizes) on the synthetic data; the GPU reproduction script is checked statically."""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import uda
from uda.config import load_config

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module


def test_custom_recipe_composes_and_trains(tmp_path: Path) -> None:
    module = _load("custom_recipe")
    assert "advent_fru_fda" in uda.list_components("recipe")
    result = module.main(["--iters", "2", "--size", "128x64", "--num", "4", "--out", str(tmp_path)])
    assert 0.0 <= result["miou"] <= 100.0 and result["num_images"] == 2
    steps = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    losses = next(s for s in steps if "loss" in s)
    # both aligners contribute, each with its own discriminator loss
    assert {"entropy_adv_logits", "entropy_adv_aux", "feature_adv_multilevel"} <= set(losses["loss"])
    assert {"entropy_d_logits", "feature_d_multilevel"} <= set(losses["loss_d"])
    recipe_src = (EXAMPLES / "custom_recipe.py").read_text()
    assert len(recipe_src.splitlines()) <= 60  # a config and a two-line class
    # "+ FDA": the run's translator changes the source images (β 0.09 of fda_synthetic, kept by the switch)
    saved = load_config(tmp_path / "config.yaml")
    assert saved.recipe.name == "advent_fru_fda" and saved.recipe.translator_options == {"beta": 0.09}
    g = torch.Generator().manual_seed(0)
    src, tgt = torch.rand(2, 3, 64, 128, generator=g), torch.rand(2, 3, 64, 128, generator=g)
    fda = uda.create("translator", saved.recipe.translator, **saved.recipe.translator_options)
    assert (fda(src, tgt) - src).abs().max() > 0.01


def test_custom_dataset_with_folder(tmp_path: Path) -> None:
    module = _load("custom_dataset")
    result = module.main(["--num", "4", "--iters", "2", "--size", "64x32", "--out", str(tmp_path)])
    assert result["num_images"] == 4
    saved = load_config(tmp_path / "run" / "config.yaml")
    assert saved.data.source.name == "folder" and saved.data.source.options["label_map"].endswith("label_map.yaml")
    assert len(list((tmp_path / "data" / "images").glob("*.jpg"))) == 4


def test_evaluate_original_checkpoint_demo(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    module = _load("evaluate_original_checkpoint")
    result = module.main(["--num", "2", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert "layout advent" in out and "same outputs as the model that was saved: True" in out
    assert result["num_images"] == 2
    import torch

    keys = set(torch.load(tmp_path / "advent_layout.pth", weights_only=True))
    assert any(k.startswith("layer5.conv2d_list.") for k in keys) and any(k.startswith("layer6.") for k in keys)
    assert not any(k.startswith(("backbone.", "head.")) for k in keys)


def _uda_commands(script: str) -> list[list[str]]:
    joined = re.sub(r"\\\n\s*", " ", script)
    commands = []
    for line in joined.splitlines():
        line = line.strip()
        if line.startswith("uda "):
            commands.append(shlex.split(line.replace('"$', '"/x/').replace("$", "/x/")))
    return commands


def test_reproduction_script_is_valid() -> None:
    script = EXAMPLES / "reproduce_mlfa_gta5.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    commands = _uda_commands(script.read_text())
    assert {c[1] for c in commands} >= {"data", "train", "evaluate", "translate"}
    from click.testing import CliRunner

    from uda.cli import main

    configs = set(uda.list_components("config"))
    for cmd in commands:
        sub = cmd[1:3] if cmd[1] == "data" else cmd[1:2]
        assert CliRunner().invoke(main, [*sub, "--help"]).exit_code == 0, cmd
        if cmd[1] == "train":
            assert cmd[2] in configs, f"{cmd[2]} is not a built-in config"
            sets = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--set"]
            load_config(cmd[2], sets)  # every --set key exists and has the right type
    for name in re.findall(r"\b(\w+_(?:gta5|synthia)_cityscapes)\b", script.read_text()):
        assert name in configs, name


def test_make_pictures(tmp_path: Path) -> None:
    from PIL import Image

    module = _load("make_pictures")
    module.main(["--out", str(tmp_path / "assets"), "--iters", "2", "--train-dir", str(tmp_path / "run"),
                 "--rows", "1", "--size", "64x32"])
    for name, columns in (("synthetic_pair.png", 4), ("fda_translation.png", 5), ("predictions.png", 4),
                          ("source_only_vs_adapted.png", 4)):
        image = Image.open(tmp_path / "assets" / name)
        assert image.width > columns * 64 and image.height > 32, name
