"""Built-in experiment configs (kind ``config``): ``<recipe>_<setup>`` = a setup base + a few recipe lines.

``uda list config`` lists them; ``uda config show NAME`` prints one resolved.
"""

from __future__ import annotations

from collections.abc import Callable

from ..recipes.adaptsegnet import AdaptSegNetConfig
from ..recipes.advent import AdvEntConfig
from ..recipes.cyclegan import CycleGANRecipeConfig
from ..recipes.fda import FDAConfig
from ..recipes.minent import MinEntConfig
from ..recipes.mlfa import MLFAConfig
from ..recipes.source_only import SourceOnlyConfig
from .loading import register_config
from .schema import ExperimentConfig, RecipeConfig
from .setups import SETUPS

# Stage 1 (CycleGAN) lengths: the paper practice is ~10 + 10 epochs at batch 4 on 452x452 crops; here 100k steps at
# batch 1 with linear decay over the second half (or reuse a trained translator / a translated cache).
_PAPER_TRANSLATOR = {"translator": "cyclegan", "translator_iters": 100000}
_TINY_TRANSLATOR = {"translator": "cyclegan_tiny", "translator_iters": 300, "translator_crop": "64x64"}


def _translation(setup: str) -> dict:
    t = dict(_TINY_TRANSLATOR if setup == "synthetic" else _PAPER_TRANSLATOR)
    return t


def _mlfa(setup: str, **kw) -> MLFAConfig:
    cfg = MLFAConfig(**_translation(setup), **kw)
    if setup == "synthetic":
        cfg.discriminator = "feature_tiny"
        cfg.fru_options = {"groups": 8}
    cfg.translator_optim.decay_start = cfg.translator_iters // 2
    return cfg


def _translated(cls, setup: str, **kw) -> RecipeConfig:
    cfg = cls(**_translation(setup), **kw)
    cfg.translator_optim.decay_start = cfg.translator_iters // 2
    return cfg


def _adversarial(cls, setup: str) -> RecipeConfig:
    return cls(discriminator="fc_tiny") if setup == "synthetic" else cls()


RECIPES: dict[str, Callable[[str], RecipeConfig]] = {
    "source_only": lambda s: SourceOnlyConfig(),
    "adaptsegnet": lambda s: _adversarial(AdaptSegNetConfig, s),
    "advent": lambda s: _adversarial(AdvEntConfig, s),
    "minent": lambda s: MinEntConfig(),
    "cyclegan": lambda s: _translated(CycleGANRecipeConfig, s),
    # β = 0.01 swaps no frequency at all on 128x64 images (half-size floor(0.01·64) = 0): the synthetic preset
    # uses the paper's largest β, 0.09 (a 5-pixel band).
    "fda": lambda s: FDAConfig(translator_options={"beta": 0.09}) if s == "synthetic" else FDAConfig(),
    "mlfa": lambda s: _mlfa(s),
    # MLFA ablations: is feature-level alignment worth it next to translation?
    "mlfa_no_translation": lambda s: _mlfa(s, translation=False),
    "mlfa_no_feature_alignment": lambda s: _mlfa(s, feature_alignment="none"),
    "mlfa_output_level": lambda s: _mlfa(s, feature_alignment="output",
                                         discriminator="fc_tiny" if s == "synthetic" else "fc"),
}


def _make(recipe: str, setup: str) -> Callable[[], ExperimentConfig]:
    def build() -> ExperimentConfig:
        cfg = SETUPS[setup]()
        cfg.name = f"{recipe}_{setup}"
        cfg.recipe = RECIPES[recipe](setup)
        cfg.description = f"{recipe} on {cfg.description}"
        return cfg

    build.__doc__ = f"{recipe} on the {setup} setup."
    return build


for _recipe in RECIPES:
    for _setup in SETUPS:
        register_config(f"{_recipe}_{_setup}")(_make(_recipe, _setup))
