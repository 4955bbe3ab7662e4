"""Loading: the one config package, `_base_` as a built-in name, a path or a list, recipe keys and switching."""

from __future__ import annotations

from pathlib import Path

import pytest

from uda._errors import ConfigError, UdaError
from uda.config import load_config


def test_old_public_names_import_from_the_one_package():
    import uda.config as c

    for name in ["load_config", "ExperimentConfig", "DatasetConfig", "DataConfig", "ModelConfig", "OptimConfig",
                 "OptimizerConfig", "RecipeConfig", "TrainerConfig", "EvalConfig", "parse_size", "get_builtin",
                 "register_config", "apply_overrides", "from_dict", "to_dict", "merge", "parse_scalar",
                 "paper_setup", "synthetic_setup", "DEEPLAB_INIT"]:
        assert hasattr(c, name), name
    root = Path(c.__file__).parents[1]
    assert not (root / "configs").exists() and not (root / "_config.py").exists()  # one package now


def test_base_is_a_path_relative_to_the_file(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.yaml").write_text("_base_: advent_synthetic\ntrainer:\n  max_iters: 7\n  log_every: 3\n")
    (tmp_path / "b.yaml").write_text("_base_: sub/a.yaml\nname: b\ntrainer:\n  max_iters: 9\n")
    cfg = load_config(tmp_path / "b.yaml")
    assert (cfg.name, cfg.recipe.name, cfg.trainer.max_iters, cfg.trainer.log_every) == ("b", "advent", 9, 3)
    assert cfg.recipe.discriminator == "fc_tiny"  # from the built-in at the root of the chain


def test_base_list_merges_in_order_then_the_file(tmp_path):
    (tmp_path / "short.yaml").write_text("trainer:\n  max_iters: 5\n  eval_every: 2\n")
    (tmp_path / "c.yaml").write_text("_base_: [advent_synthetic, short.yaml]\ntrainer:\n  eval_every: 4\n")
    cfg = load_config(tmp_path / "c.yaml")
    assert (cfg.recipe.name, cfg.trainer.max_iters, cfg.trainer.eval_every) == ("advent", 5, 4)
    assert cfg.data.source.size == "128x64"  # short.yaml has no _base_: its defaults do not reset the first base


def test_base_loop_and_bad_base_are_one_line_errors(tmp_path):
    (tmp_path / "x.yaml").write_text("_base_: y.yaml\n")
    (tmp_path / "y.yaml").write_text("_base_: x.yaml\n")
    with pytest.raises(ConfigError, match="loops back"):
        load_config(tmp_path / "x.yaml")
    (tmp_path / "z.yaml").write_text("_base_: {a: 1}\n")
    with pytest.raises(ConfigError, match="built-in config name, a YAML path or a list"):
        load_config(tmp_path / "z.yaml")
    (tmp_path / "w.yaml").write_text("_base_: no_such_config\n")
    with pytest.raises(UdaError, match="no_such_config"):
        load_config(tmp_path / "w.yaml")


def test_key_of_another_recipe_is_an_error_unless_switching(tmp_path):
    with pytest.raises(ConfigError, match=r"recipe\.fru"):
        load_config("advent_synthetic", ["recipe.fru=false"])
    (tmp_path / "a.yaml").write_text("_base_: advent_synthetic\nrecipe:\n  fru: false\n")
    with pytest.raises(ConfigError, match=r"recipe\.fru"):
        load_config(tmp_path / "a.yaml")
    # switching by override leaves the old recipe's keys behind; the new recipe's keys may be set with it
    cfg = load_config("advent_synthetic", ["recipe.name=mlfa", "recipe.fru=false"])
    assert cfg.recipe.name == "mlfa" and cfg.recipe.fru is False
    assert load_config("mlfa_synthetic", ["recipe.name=source_only"]).recipe.name == "source_only"
