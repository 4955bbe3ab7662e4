"""The experiment config schema: typed dataclasses that nest (data, model, recipe, optim, trainer, eval).

Each dataclass checks its own values where they are declared; `uda.config.loading` turns YAML and
`KEY=VALUE` overrides into these objects.

Example:
    >>> from uda.config import ExperimentConfig
    >>> ExperimentConfig().trainer.max_iters
    120000
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from .._errors import ConfigError
from .._io import dump_yaml
from .._registry import registry
from ..plugins import import_modules
from .checks import Checked, FieldError, at_least, check_recipe, positive, probability, size_wxh
from .convert import from_dict, to_dict


@dataclass
class DatasetConfig(Checked):
    """One dataset: registered ``name``, ``root`` folder, ``split``, training ``size`` (``WxH``) and
    extra factory ``options`` (e.g. ``{"num": 200}`` for ``synthetic``)."""

    name: str = "synthetic"
    root: str | None = None
    split: str = "train"
    size: str | None = field(default=None, metadata=size_wxh())
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class DataConfig(Checked):
    """Source (labelled), target (unlabelled) and validation (target, labelled) data."""

    source: DatasetConfig = field(default_factory=lambda: DatasetConfig(options={"domain": "source"}))
    target: DatasetConfig = field(default_factory=lambda: DatasetConfig(options={"domain": "target"}))
    val: DatasetConfig = field(default_factory=lambda: DatasetConfig(split="val", options={"domain": "target"}))
    batch_size: int = field(default=1, metadata=at_least(1))
    num_workers: int = field(default=0, metadata=at_least(0, meaning=" (0 loads in the main process)"))
    augmentation: str | None = None
    augmentation_options: dict[str, Any] = field(default_factory=dict)
    on_bad_sample: Literal["stop", "skip"] = "stop"


@dataclass
class ModelConfig(Checked):
    """The segmentation network: registered ``name``, ``num_classes``, local ``pretrained`` weights path
    (``null`` = random init) and extra factory ``options``."""

    name: str = "deeplabv2"
    num_classes: int = field(default=19, metadata=at_least(1))
    pretrained: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class OptimizerConfig(Checked):
    """One optimizer and its schedule.

    ``warmup_iters``/``warmup_ratio``: linear warm-up from ``warmup_ratio`` × the scheduled lr to it (mmcv's rule,
    DAFormer: 1500 iterations from 1e-6); ``no_decay_keys``: parameters whose name contains one of these strings get
    no weight decay (DAFormer: ``["norm", "pos_block"]``).
    """

    name: Literal["sgd", "adam", "adamw"] = "sgd"
    lr: float = field(default=2.5e-4, metadata=positive())
    momentum: float = field(default=0.9, metadata=probability())
    weight_decay: float = field(default=5e-4, metadata=at_least(0))
    betas: tuple[float, float] = field(default=(0.9, 0.99), metadata=probability())
    head_lr_mult: float = field(default=10.0, metadata=positive())
    schedule: Literal["poly", "constant", "linear_decay"] = "poly"
    power: float = field(default=0.9, metadata=positive())
    total_iters: int | None = field(default=250000, metadata=at_least(1, meaning=" (null: the stage's length)"))
    decay_start: int = field(default=0, metadata=at_least(0))
    grad_clip: float | None = field(default=None, metadata=positive())
    faithful_duplicate_params: bool = False
    # ViT encoders: block i of L at lr * layer_decay ** (L - 1 - i) (docs/training.md, "Encoder learning rates")
    layer_decay: float | None = field(default=None, metadata=positive())
    encoder_lr_mult: float = field(default=1.0, metadata=at_least(0))  # the encoder (backbone group) at lr * mult
    warmup_iters: int = field(default=0, metadata=at_least(0))
    warmup_ratio: float = field(default=1e-6, metadata=probability())
    no_decay_keys: list[str] = field(default_factory=list)

    def validate(self) -> None:
        super().validate()
        top = self.lr * max(self.head_lr_mult, 1.0)
        if not (math.isfinite(top) and top < 3.0e38):
            raise FieldError(f"lr: {self.lr} (× head_lr_mult {self.head_lr_mult}) is not a usable learning rate; "
                             "use a positive value such as 2.5e-4")


@dataclass
class OptimConfig:
    """Optimizers of the segmentation network (``generator``) and of the discriminators."""

    generator: OptimizerConfig = field(default_factory=OptimizerConfig)
    discriminator: OptimizerConfig = field(
        default_factory=lambda: OptimizerConfig(name="adam", lr=1e-4, weight_decay=0.0, head_lr_mult=1.0)
    )


@dataclass
class RecipeConfig(Checked):
    """Base of every recipe's config; ``name`` selects the recipe and with it the config class."""

    name: str = "source_only"

    @classmethod
    def __config_resolve__(cls, data: dict[str, Any]) -> type:
        name = data.get("name", cls.name) if isinstance(data, dict) else cls.name
        recipe = registry("recipe").get(name)
        return getattr(recipe, "Config", RecipeConfig)

    def validate(self) -> None:
        """Field checks, loss weights `>= 0`, and no silently untrained translator (`check_recipe`)."""
        super().validate()
        check_recipe(self)


@dataclass
class TrainerConfig(Checked):
    """The one training loop: length, intervals, precision, determinism, failure policy and experiment loggers.

    ``loggers``: any of ``tensorboard``, ``wandb``, ``mlflow`` (`uda.engine.loggers`; each needs its extra, a missing
    one is off with a warning); ``tensorboard: true`` is an alias that adds ``tensorboard`` (the default, as before);
    ``logger_options``: logger name → its options, e.g. ``{wandb: {project: uda, mode: online}}``.
    """

    max_iters: int = field(default=120000, metadata=at_least(1))
    checkpoint_every: int = field(default=5000, metadata=at_least(1))
    eval_every: int = field(default=5000, metadata=at_least(0, meaning=" (0: evaluate only at the end)"))
    log_every: int = field(default=50, metadata=at_least(1))
    keep_last: int = field(default=3, metadata=at_least(1))
    amp: Literal["none", "bf16", "fp16"] = "none"
    channels_last: bool = False
    grad_accum: int = field(default=1, metadata=at_least(1))
    sequential_backward: bool = False
    nonfinite: Literal["stop", "skip"] = "stop"
    seed: int = field(default=0, metadata=at_least(0))
    deterministic: bool = False
    device: str = "auto"
    compile: bool = False
    tensorboard: bool = True
    loggers: list[str] = field(default_factory=list)
    logger_options: dict[str, Any] = field(default_factory=dict)
    dist_timeout_s: int = field(default=600, metadata=at_least(1))


    def validate(self) -> None:
        super().validate()
        known = ("tensorboard", "wandb", "mlflow")  # uda.engine.loggers.LOGGERS (not imported: no engine here)
        bad = [n for n in [*self.loggers, *self.logger_options] if n not in known]
        if bad:
            raise FieldError(f"loggers: unknown logger '{bad[0]}'; use any of {', '.join(known)}")
        for n, opts in self.logger_options.items():
            if not isinstance(opts, dict):
                raise FieldError(f"logger_options.{n}: must be a mapping of options, e.g. {{project: uda}}")


@dataclass
class EvalConfig(Checked):
    """How the target is evaluated (the papers' protocol by default: resize to 1024x512, upsample to GT size)."""

    mode: Literal["resize", "slide", "multiscale"] = "resize"
    size: str | None = field(default="1024x512", metadata=size_wxh())
    crop: str = field(default="1024x512", metadata=size_wxh(optional=False))
    stride: str = field(default="512x256", metadata=size_wxh(optional=False))
    scales: list[float] = field(default_factory=lambda: [0.75, 1.0, 1.25])
    flip: bool = False
    batch_size: int = field(default=1, metadata=at_least(1))
    max_images: int | None = field(default=None, metadata=at_least(1, meaning=" (null: every image)"))
    protocol: Literal["auto", "19", "16", "13"] = "auto"
    amp: bool = False
    # AdaptSegNet/ADVENT: images bicubic, logits bilinear with align_corners=True; mmseg (DAFormer, HRDA, MIC):
    # images bilinear, logits align_corners=False.
    resize_interpolation: Literal["bicubic", "bilinear"] = "bicubic"
    align_corners: bool = True

    def validate(self) -> None:
        super().validate()
        if not self.scales or not all(math.isfinite(x) and x > 0 for x in self.scales):
            raise FieldError(f"scales: must be a non-empty list of positive factors such as [0.75, 1.0, 1.25], "
                             f"got {self.scales}")


@dataclass
class ExperimentConfig(Checked):
    """A whole experiment. Sections see only their own fields.

    ``imports``: user modules (``.py`` files, recorded as absolute paths, or dotted module names) imported before
    the rest is resolved, so that the components they register can be named here (`uda.plugins`).
    """

    name: str = "experiment"
    description: str = ""
    imports: list[str] = field(default_factory=list)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    recipe: RecipeConfig = field(default_factory=RecipeConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (round-trips through [`from_dict`][uda.config.convert.from_dict])."""
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExperimentConfig:
        """Validate and build from a plain nested dict; its ``imports`` are imported first (`uda.plugins`)."""
        if isinstance(data, dict) and data.get("imports"):
            data = {**data, "imports": import_recorded(data["imports"])}
        return from_dict(cls, data)

    def to_yaml(self) -> str:
        """The resolved config as YAML text."""
        return dump_yaml(self.to_dict())

    def replace(self, **overrides: Any) -> ExperimentConfig:
        """A deep copy with dotted-key overrides applied, e.g. ``cfg.replace(**{"trainer.max_iters": 10})``.

        The same rules as ``--set`` (`uda.config.load_config_dict`): a new ``recipe.name`` keeps the options both
        recipes have, and a list of named terms over ``recipe.terms`` adds to the terms by name.
        """
        from .loading import load_config_dict  # loading builds on this module

        return load_config_dict(self.to_dict(), [f"{k}={_yaml_value(v)}" for k, v in overrides.items()])


def import_recorded(imports: Any, relative_to: Any = None, where: str = "") -> list[str]:
    """Import a config's ``imports`` (a list of ``.py`` paths or dotted module names) and return them as recorded.

    Args:
        imports: the list.
        relative_to: the folder relative paths start from (a YAML file's; default: the working directory).
        where: the file that lists them, for error messages.
    """
    what = f"{where}: imports:" if where else "imports:"
    if not isinstance(imports, list) or not all(isinstance(s, str) for s in imports):
        raise ConfigError(f"{what} must be a list of .py paths or dotted module names, got {imports!r}")
    fix = ("fix the path in that file (relative paths start from its folder)" if where else
           "restore it, or give its new place with --set 'imports=[NEW.py]'")
    return import_modules(imports, what=what, relative_to=relative_to, fix=fix)


def _yaml_value(v: Any) -> str:
    import yaml

    return yaml.safe_dump(v, default_flow_style=True).strip().removesuffix("...").strip()
