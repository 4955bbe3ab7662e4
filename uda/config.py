"""The experiment config: typed dataclasses that nest (data, model, recipe, optim, trainer, eval).

YAML only at the edge: :func:`load_config` takes a built-in config name (``uda list config``) or a
YAML path, applies dotted ``KEY=VALUE`` overrides and validates everything. A YAML file may start
from a built-in config with ``_base_: mlfa_synthetic`` and change a few keys.

Example:
    >>> from uda.config import load_config
    >>> cfg = load_config("source_only_synthetic", ["trainer.max_iters=10"])
    >>> cfg.trainer.max_iters
    10
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ._config import apply_overrides, from_dict, merge, to_dict
from ._errors import ConfigError
from ._io import dump_yaml, load_yaml
from ._registry import registry


def parse_size(text: str | None, key: str = "size") -> tuple[int, int] | None:
    """Parse ``"WxH"`` into ``(W, H)``; ``None`` stays ``None``."""
    if text is None:
        return None
    try:
        w, h = (int(v) for v in str(text).lower().split("x"))
        if w <= 0 or h <= 0:
            raise ValueError
    except ValueError:
        raise ConfigError(f"{key}: '{text}' is not a size WxH such as 1280x720") from None
    return w, h


@dataclass
class DatasetConfig:
    """One dataset: registered ``name``, ``root`` folder, ``split``, training ``size`` (``WxH``) and
    extra factory ``options`` (e.g. ``{"num": 200}`` for ``synthetic``)."""

    name: str = "synthetic"
    root: str | None = None
    split: str = "train"
    size: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        parse_size(self.size, "data.*.size")


@dataclass
class DataConfig:
    """Source (labelled), target (unlabelled) and validation (target, labelled) data."""

    source: DatasetConfig = field(default_factory=lambda: DatasetConfig(options={"domain": "source"}))
    target: DatasetConfig = field(default_factory=lambda: DatasetConfig(options={"domain": "target"}))
    val: DatasetConfig = field(default_factory=lambda: DatasetConfig(split="val", options={"domain": "target"}))
    batch_size: int = 1
    num_workers: int = 0
    augmentation: str | None = None
    augmentation_options: dict[str, Any] = field(default_factory=dict)
    on_bad_sample: Literal["stop", "skip"] = "stop"


@dataclass
class ModelConfig:
    """The segmentation network: registered ``name``, ``num_classes``, local ``pretrained`` weights path
    (``null`` = random init) and extra factory ``options``."""

    name: str = "deeplabv2"
    num_classes: int = 19
    pretrained: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class OptimizerConfig:
    """One optimizer and its schedule.

    ``warmup_iters``/``warmup_ratio``: linear warm-up from ``warmup_ratio`` × the scheduled lr to it (mmcv's rule,
    DAFormer: 1500 iterations from 1e-6); ``no_decay_keys``: parameters whose name contains one of these strings get
    no weight decay (DAFormer: ``["norm", "pos_block"]``).
    """

    name: Literal["sgd", "adam", "adamw"] = "sgd"
    lr: float = 2.5e-4
    momentum: float = 0.9
    weight_decay: float = 5e-4
    betas: tuple[float, float] = (0.9, 0.99)
    head_lr_mult: float = 10.0
    schedule: Literal["poly", "constant", "linear_decay"] = "poly"
    power: float = 0.9
    total_iters: int | None = 250000
    decay_start: int = 0
    grad_clip: float | None = None
    faithful_duplicate_params: bool = False
    warmup_iters: int = 0
    warmup_ratio: float = 1e-6
    no_decay_keys: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        top = self.lr * max(self.head_lr_mult, 1.0)
        if not (math.isfinite(top) and 0 <= top < 3.0e38):
            raise ValueError(f"lr: {self.lr} (× head_lr_mult {self.head_lr_mult}) is not a usable learning rate; "
                             "use a non-negative value such as 2.5e-4")


@dataclass
class OptimConfig:
    """Optimizers of the segmentation network (``generator``) and of the discriminators."""

    generator: OptimizerConfig = field(default_factory=OptimizerConfig)
    discriminator: OptimizerConfig = field(
        default_factory=lambda: OptimizerConfig(name="adam", lr=1e-4, weight_decay=0.0, head_lr_mult=1.0)
    )


@dataclass
class RecipeConfig:
    """Base of every recipe's config; ``name`` selects the recipe and with it the config class."""

    name: str = "source_only"

    @classmethod
    def __config_resolve__(cls, data: dict[str, Any]) -> type:
        name = data.get("name", cls.name) if isinstance(data, dict) else cls.name
        recipe = registry("recipe").get(name)
        return getattr(recipe, "Config", RecipeConfig)


@dataclass
class TrainerConfig:
    """The one training loop: length, intervals, precision, determinism and failure policy."""

    max_iters: int = 120000
    checkpoint_every: int = 5000
    eval_every: int = 5000
    log_every: int = 50
    keep_last: int = 3
    amp: Literal["none", "bf16", "fp16"] = "none"
    channels_last: bool = False
    grad_accum: int = 1
    nonfinite: Literal["stop", "skip"] = "stop"
    seed: int = 0
    deterministic: bool = False
    device: str = "auto"
    compile: bool = False
    tensorboard: bool = True
    dist_timeout_s: int = 600


@dataclass
class EvalConfig:
    """How the target is evaluated (REFERENCE.md §5 by default: resize to 1024x512, upsample to GT size)."""

    mode: Literal["resize", "slide", "multiscale"] = "resize"
    size: str | None = "1024x512"
    crop: str = "1024x512"
    stride: str = "512x256"
    scales: list[float] = field(default_factory=lambda: [0.75, 1.0, 1.25])
    flip: bool = False
    batch_size: int = 1
    max_images: int | None = None
    protocol: Literal["auto", "19", "16", "13"] = "auto"
    amp: bool = False


@dataclass
class ExperimentConfig:
    """A whole experiment. Sections see only their own fields."""

    name: str = "experiment"
    description: str = ""
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    recipe: RecipeConfig = field(default_factory=RecipeConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (round-trips through :meth:`from_dict`)."""
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExperimentConfig:
        """Validate and build from a plain nested dict."""
        return from_dict(cls, data)

    def to_yaml(self) -> str:
        """The resolved config as YAML text."""
        return dump_yaml(self.to_dict())

    def replace(self, **overrides: Any) -> ExperimentConfig:
        """A deep copy with dotted-key overrides applied, e.g. ``cfg.replace(**{"trainer.max_iters": 10})``."""
        data = self.to_dict()
        apply_overrides(data, [f"{k}={_yaml_value(v)}" for k, v in overrides.items()])
        return ExperimentConfig.from_dict(data)


def _yaml_value(v: Any) -> str:
    import yaml

    return yaml.safe_dump(v, default_flow_style=True).strip().removesuffix("...").strip()


def register_config(name: str):
    """Decorator registering a function that returns an :class:`ExperimentConfig` (kind ``config``)."""
    return registry("config").register(name)


def get_builtin(name: str) -> ExperimentConfig:
    """A fresh copy of a built-in experiment config."""
    cfg = registry("config").get(name)()
    cfg = copy.deepcopy(cfg)
    if cfg.name == "experiment":
        cfg.name = name
    return cfg


def load_config(name_or_path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> ExperimentConfig:
    """Resolve a built-in config name or a YAML file, then apply ``KEY=VALUE`` overrides.

    A YAML file may name a built-in base with ``_base_: NAME`` and override a few keys.

    Raises:
        ConfigError: unknown name, missing file, unknown key, wrong type.
    """
    text = str(name_or_path)
    if text.endswith((".yaml", ".yml")) or Path(text).is_file():
        raw = load_yaml(text) or {}
        if not isinstance(raw, dict):
            raise ConfigError(f"{text}: the top level must be a mapping of config sections")
        base = raw.pop("_base_", None)
        data = get_builtin(base).to_dict() if base else ExperimentConfig().to_dict()
        new_recipe = raw.get("recipe")
        if isinstance(new_recipe, dict) and "name" in new_recipe and new_recipe["name"] != data["recipe"].get("name"):
            data["recipe"] = {"name": new_recipe["name"]}
        _reset_options_on_rename(data, raw)
        data = merge(data, raw)
        if not base and "name" not in raw:
            data["name"] = Path(text).stem
    else:
        if text not in registry("config"):
            registry("config").get(text)  # raises with suggestions
        data = get_builtin(text).to_dict()
    data = apply_overrides(data, list(overrides))
    if isinstance(data.get("recipe"), dict) and "name" in data["recipe"]:
        # switching recipe by override keeps only keys the new recipe knows
        rcls = RecipeConfig.__config_resolve__(data["recipe"])
        known = {f.name for f in dataclasses.fields(rcls)}
        data["recipe"] = {k: v for k, v in data["recipe"].items() if k in known or k not in _all_recipe_keys()}
    return ExperimentConfig.from_dict(data)


def _reset_options_on_rename(base: dict[str, Any], raw: dict[str, Any]) -> None:
    """A section that names another dataset/model drops the base's factory ``options`` (they belong to the old one)."""
    sections = [(base.get("model"), raw.get("model"))]
    if isinstance(base.get("data"), dict) and isinstance(raw.get("data"), dict):
        sections += [(base["data"].get(k), raw["data"].get(k)) for k in ("source", "target", "val")]
    for old, new in sections:
        if isinstance(old, dict) and isinstance(new, dict) and "name" in new and new["name"] != old.get("name"):
            old["options"] = {}


def _all_recipe_keys() -> set[str]:
    keys: set[str] = set()
    reg = registry("recipe")
    for n in reg.names():
        c = getattr(reg.get(n), "Config", RecipeConfig)
        keys |= {f.name for f in dataclasses.fields(c)}
    return keys
