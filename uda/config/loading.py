"""Loading experiment configs: built-in names, YAML files with a `_base_`, dotted `KEY=VALUE` overrides.

YAML only at the edge: `load_config` takes a built-in config name (`uda list config`) or a YAML path,
applies dotted `KEY=VALUE` overrides and validates everything. A YAML file may start from a built-in
config with `_base_: mlfa_synthetic` and change a few keys.

Example:
    >>> from uda.config import load_config
    >>> cfg = load_config("source_only_synthetic", ["trainer.max_iters=10"])
    >>> cfg.trainer.max_iters
    10
"""

from __future__ import annotations

import copy
import dataclasses
import warnings
from pathlib import Path
from typing import Any

from .._errors import ConfigError
from .._io import load_yaml
from .._registry import registry
from .convert import apply_overrides, merge, parse_scalar, to_dict
from .schema import ExperimentConfig, import_recorded


def register_config(name: str):
    """Decorator registering a function that returns an `ExperimentConfig` (kind `config`).

    Example:
        >>> @register_config("my_tiny_run")
        ... def _my_tiny_run():
        ...     return get_builtin("source_only_synthetic").replace(**{"trainer.max_iters": 5})
        >>> load_config("my_tiny_run").trainer.max_iters
        5
    """
    return registry("config").register(name)


def get_builtin(name: str) -> ExperimentConfig:
    """A fresh copy of a built-in experiment config."""
    cfg = registry("config").get(name)()
    cfg = copy.deepcopy(cfg)
    if cfg.name == "experiment":
        cfg.name = name
    return cfg


def load_config(name_or_path: str | Path, overrides: list[str] | tuple[str, ...] = (), *,
                imports: list[str] | tuple[str, ...] = ()) -> ExperimentConfig:
    """Resolve a built-in config name or a YAML file, then apply `KEY=VALUE` overrides.

    A YAML file may start from `_base_`: a built-in config name, a path to another YAML file (relative
    to the file naming it) or a list of them, merged in order; the file's own keys go on top. A key that
    belongs to another recipe is an error, except when the recipe is switched (by `recipe.name` in the YAML or
    in an override): the values chosen for the old recipe that the new one also has are kept, the others are
    dropped with a warning naming them, and the new recipe's defaults fill the rest.

    Args:
        name_or_path: a built-in config name (`uda list config`) or a `.yaml`/`.yml` path.
        overrides: dotted `KEY=VALUE` strings applied last, e.g. `trainer.max_iters=100`.
        imports: user modules (`.py` paths or dotted names, `uda.plugins`) imported first, so that
            `name_or_path` and the config may name what they register; added to the config's `imports`.

    Returns:
        The validated `ExperimentConfig`.

    Raises:
        ConfigError: unknown name, missing file, bad YAML (with its line), unknown key, wrong type or value.

    Example:
        >>> load_config("mlfa_synthetic", ["recipe.name=source_only"]).recipe.name
        'source_only'
    """
    imports = import_recorded(list(imports))
    data, complete = _resolve(name_or_path, ())
    if not complete:  # a YAML chain without a built-in: start from the schema's defaults
        named = "name" in data
        data = _merge_layer(ExperimentConfig().to_dict(), data)
        if not named:
            data["name"] = Path(str(name_or_path)).stem
    return load_config_dict(data, overrides, imports=imports)


def load_config_dict(data: dict[str, Any], overrides: list[str] | tuple[str, ...] = (), *,
                     imports: list[str] | tuple[str, ...] = ()) -> ExperimentConfig:
    """Validate a plain config dict (e.g. a run's saved `config.yaml`) with `KEY=VALUE` overrides on top.

    An override of `recipe.name` to another recipe keeps the values the config chose for the old recipe where
    the new one has the same option (`recipe.terms` among them) and starts the rest from its defaults. `imports`
    (user modules, `uda.plugins`) are imported first and added to the config's own `imports`, which are imported
    next.

    Example:
        >>> data = load_config("advent_synthetic").to_dict()
        >>> load_config_dict(data, ["trainer.max_iters=3"]).trainer.max_iters
        3
    """
    data = copy.deepcopy(data)
    overrides = list(overrides)
    if imports:
        imports = import_recorded(list(imports))
        data["imports"] = _union(data.get("imports"), imports)
    for item in overrides:
        key, _, value = item.partition("=")
        if key.strip() == "recipe.name":
            _switch_recipe(data, parse_scalar(value))
    data = apply_overrides(data, overrides)
    return ExperimentConfig.from_dict(data)


def _resolve(ref: str | Path, chain: tuple[str, ...], relative_to: Path | None = None) -> tuple[dict[str, Any], bool]:
    """The plain config dict of a built-in name or a YAML file with its `_base_` chain resolved, and whether it is
    complete (rooted in a built-in config) or only the keys the files set."""
    text = str(ref)
    is_file = text.endswith((".yaml", ".yml")) or Path(text).is_file()
    if not is_file:
        if text not in registry("config"):
            registry("config").get(text)  # raises with suggestions
        return get_builtin(text).to_dict(), True
    path = Path(text)
    if relative_to is not None and not path.is_absolute():
        path = relative_to / path
    key = str(path.resolve())
    if key in chain:
        raise ConfigError(f"{path}: `_base_` chain loops back to this file; remove one of the `_base_` lines")
    raw = load_yaml(path) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of config sections")
    own = raw.pop("imports", None)
    if own is not None:  # before the bases: a base may be a config the file's imports register
        own = import_recorded(own, relative_to=path.parent, where=str(path))
    base = raw.pop("_base_", None)
    bases = [] if base is None else base if isinstance(base, list) else [base]
    if (base is not None and not bases) or not all(isinstance(b, str | Path) and str(b) for b in bases):
        raise ConfigError(f"{path}: `_base_` must be a built-in config name, a YAML path or a list of them, "
                          f"got {base!r}")
    data: dict[str, Any] = {}
    complete = False
    for b in bases:
        layer, full = _resolve(b, (*chain, key), path.parent)
        data = layer if full else _merge_layer(data, layer)
        complete = complete or full
    merged = _merge_layer(data, raw)
    if own is not None:  # a file's imports (relative paths start from its folder) add to its bases'
        merged["imports"] = _union(data.get("imports"), own)
    return merged, complete


def _union(first: Any, second: list[str]) -> Any:
    """`first` (a config's `imports`) followed by the entries of `second` it lacks."""
    if not isinstance(first, list):
        return second if first is None else first  # a malformed `first` is refused by the schema
    return first + [s for s in second if s not in first]


def _merge_layer(data: dict[str, Any], raw: dict[str, Any]) -> dict[str, Any]:
    """Merge one layer over `data`: a new recipe name starts that recipe afresh, a new dataset/model name drops
    the old factory options."""
    new_recipe = raw.get("recipe")
    if isinstance(new_recipe, dict) and "name" in new_recipe:
        _switch_recipe(data, new_recipe["name"])
    _reset_options_on_rename(data, raw)
    return merge(data, raw)


def _switch_recipe(data: dict[str, Any], name: Any) -> None:
    """Switch ``data["recipe"]`` to the recipe ``name``: the values the config sets for the old recipe (those that
    differ from that recipe's defaults) are kept where the new recipe has the same option; the others are dropped
    with a warning naming them. The new recipe's own defaults fill the rest."""
    old = data.get("recipe")
    if not isinstance(old, dict) or old.get("name") == name:
        return
    new_cls, old_cls = _recipe_config_class(name), _recipe_config_class(old.get("name"))
    if new_cls is None:
        data["recipe"] = {"name": name}  # unknown: from_dict names the valid recipes
        return
    defaults = to_dict(old_cls()) if old_cls is not None else {}
    fields = {f.name for f in dataclasses.fields(new_cls)}
    chosen = {k: v for k, v in old.items() if k != "name" and (k not in defaults or v != defaults[k])}
    dropped = sorted(k for k in chosen if k not in fields)
    if dropped:
        warnings.warn(f"recipe.name={name}: the recipe '{name}' has no option(s) {', '.join(dropped)}; the "
                      f"config's values for them are dropped", UserWarning, stacklevel=3)
    data["recipe"] = {"name": name, **{k: v for k, v in chosen.items() if k in fields}}


def _recipe_config_class(name: Any) -> type | None:
    if not isinstance(name, str) or name not in registry("recipe"):
        return None
    cls = getattr(registry("recipe").get(name), "Config", None)
    return cls if dataclasses.is_dataclass(cls) else None


def _reset_options_on_rename(base: dict[str, Any], raw: dict[str, Any]) -> None:
    """A section that names another dataset/model drops the base's factory ``options`` (they belong to the old one)."""
    sections = [(base.get("model"), raw.get("model"))]
    if isinstance(base.get("data"), dict) and isinstance(raw.get("data"), dict):
        sections += [(base["data"].get(k), raw["data"].get(k)) for k in ("source", "target", "val")]
    for old, new in sections:
        if isinstance(old, dict) and isinstance(new, dict) and "name" in new and new["name"] != old.get("name"):
            old["options"] = {}
