"""Config values are validated at load: one `ConfigError` line naming the dotted key and the allowed range."""

from __future__ import annotations

import re

import pytest

from uda._errors import ConfigError
from uda.config import DataConfig, load_config

BAD = {
    "data.batch_size=0": "data.batch_size: must be at least 1, got 0",
    "trainer.max_iters=0": "trainer.max_iters: must be at least 1, got 0",
    "trainer.max_iters=-5": "trainer.max_iters: must be at least 1, got -5",
    "trainer.checkpoint_every=0": "trainer.checkpoint_every: must be at least 1",
    "trainer.log_every=0": "trainer.log_every: must be at least 1",
    "trainer.keep_last=0": "trainer.keep_last: must be at least 1",
    "trainer.grad_accum=0": "trainer.grad_accum: must be at least 1",
    "trainer.eval_every=-1": "trainer.eval_every: must be at least 0",
    "data.num_workers=-1": "data.num_workers: must be at least 0",
    "optim.generator.lr=0": "optim.generator.lr: must be a positive number",
    "optim.discriminator.lr=-1e-4": "optim.discriminator.lr: must be a positive number",
    "optim.generator.momentum=1.5": "optim.generator.momentum: must lie in [0, 1]",
    "optim.discriminator.betas=[0.9, 2]": "optim.discriminator.betas: must lie in [0, 1]",
    "optim.generator.total_iters=0": "optim.generator.total_iters: must be at least 1",
    "data.source.size=12": "data.source.size: 12 is not a size WxH",
    "data.target.size=64x": "data.target.size: '64x' is not a size WxH",
    "eval.size=10x0": "eval.size: '10x0' is not a size WxH",
    "eval.batch_size=0": "eval.batch_size: must be at least 1",
    "eval.scales=[]": "eval.scales: must be a non-empty list",
    "model.num_classes=0": "model.num_classes: must be at least 1",
    "recipe.weight=-1": "recipe.weight: a loss weight must be at least 0",
    "recipe.translator_iters=-1": "recipe.translator_iters: must be at least 0",
}


@pytest.mark.parametrize("override", list(BAD))
def test_bad_value_is_one_line_naming_the_key(override):
    with pytest.raises(ConfigError) as e:
        load_config("mlfa_synthetic", [override])
    msg = str(e.value)
    assert msg.startswith(BAD[override]) and "\n" not in msg


def test_zero_where_it_means_skip_is_allowed():
    cfg = load_config("mlfa_synthetic", ["trainer.eval_every=0", "data.num_workers=0", "recipe.weight=0"])
    assert (cfg.trainer.eval_every, cfg.data.num_workers, cfg.recipe.weight) == (0, 0, 0.0)
    # a parameter-free translator has nothing to train
    assert load_config("fda_synthetic").recipe.translator_iters == 0


@pytest.mark.parametrize("recipe", ["cyclegan", "mlfa"])
def test_untrained_translator_is_an_error(tmp_path, recipe):
    with pytest.raises(ConfigError, match=r"recipe\.translator_iters: 0 skips training .* translator_checkpoint"):
        load_config(f"{recipe}_synthetic", ["recipe.translator_iters=0"])
    ok = load_config(f"{recipe}_synthetic", ["recipe.translator_iters=0", f"recipe.translated_root={tmp_path}"])
    assert ok.recipe.translator_iters == 0
    ok = load_config(f"{recipe}_synthetic", ["recipe.translator_iters=0", "recipe.translator_checkpoint=t.pt"])
    assert ok.recipe.translator_checkpoint == "t.pt"
    if recipe == "mlfa":  # the no-translation ablation trains no translator
        assert load_config("mlfa_no_translation_synthetic", ["recipe.translator_iters=0"]).recipe.translation is False


def test_yaml_error_names_the_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("trainer:\n  max_iters: 5\n data: [\n")
    with pytest.raises(ConfigError, match=re.escape(f"{path}: line 3, column 2: invalid YAML")):
        load_config(path)


def test_checks_run_on_direct_construction_too():
    with pytest.raises(ConfigError, match=r"^batch_size: must be at least 1"):
        DataConfig(batch_size=0)
