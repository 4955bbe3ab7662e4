"""The one config package: the schema (typed dataclasses), loading (YAML, `_base_`, overrides) and the presets.

- `uda.config.schema`: `ExperimentConfig` and its sections; each checks its own values.
- `uda.config.convert`: plain dicts ⇄ dataclasses, dotted `KEY=VALUE` overrides, merging.
- `uda.config.loading`: `load_config` (a built-in name or a YAML path), `register_config`, `get_builtin`.
- `uda.config.setups` and `uda.config.presets`: the built-in configs (kind `config`),
  `<recipe>_gta5_cityscapes`, `<recipe>_synthia_cityscapes`, `<recipe>_synthetic` and MLFA's ablations;
  `uda.config.presets_settings`: `<recipe>_cityscapes_acdc`, `<recipe>_cityscapes_darkzurich` and their stand-ins.

Example:
    >>> from uda.config import load_config
    >>> load_config("advent_synthetic", ["trainer.max_iters=10"]).trainer.max_iters
    10
"""

# The presets import the recipes, which import the schema: they come last.
# isort: skip_file
from .convert import apply_overrides, from_dict, merge, parse_scalar, to_dict
from .loading import get_builtin, load_config, load_config_dict, register_config
from .schema import (
    DataConfig,
    DatasetConfig,
    EvalConfig,
    ExperimentConfig,
    ModelConfig,
    OptimConfig,
    OptimizerConfig,
    RecipeConfig,
    TrainerConfig,
)
from .._utils import parse_size
from .setups import DEEPLAB_INIT, SETTINGS_SETUPS, SETUPS, cityscapes_setup, paper_setup, synthetic_setup
from . import presets  # noqa: F401  (registers the built-in configs)
from . import presets_hrda  # noqa: F401  (HRDA and MIC configs)
from . import presets_settings  # noqa: F401  (Cityscapes -> ACDC / Dark Zurich configs)

__all__ = [
    "DEEPLAB_INIT",
    "SETTINGS_SETUPS",
    "SETUPS",
    "DataConfig",
    "DatasetConfig",
    "EvalConfig",
    "ExperimentConfig",
    "ModelConfig",
    "OptimConfig",
    "OptimizerConfig",
    "RecipeConfig",
    "TrainerConfig",
    "apply_overrides",
    "cityscapes_setup",
    "from_dict",
    "get_builtin",
    "load_config",
    "load_config_dict",
    "merge",
    "paper_setup",
    "parse_scalar",
    "parse_size",
    "register_config",
    "synthetic_setup",
    "to_dict",
]
