"""Typed dataclass configs: conversion from/to plain dicts, dotted ``KEY=VALUE`` overrides, validation.

Unknown keys and wrong types raise `ConfigError` with the dotted key, the expected
type and, for misspelt keys, the closest valid key. A dataclass may choose a subclass from its data
by defining ``__config_resolve__(cls, data: dict) -> type`` (recipes pick their own config class so), and
rewrite the keys of earlier versions with ``__config_upgrade__(cls, data: dict) -> dict``.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from .._errors import ConfigError

T = TypeVar("T")
_EXP_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def _tname(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _coerce(tp: Any, value: Any, key: str) -> Any:
    """Check ``value`` against the type hint ``tp``; convert where lossless (int → float, list → tuple)."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(a, value, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(f"{key}: expected {_tname(tp)}, got {value!r} ({type(value).__name__})")
    if origin is Literal:
        allowed = get_args(tp)
        if value not in allowed:
            hint = difflib.get_close_matches(str(value), [str(a) for a in allowed], n=1)
            extra = f" Did you mean '{hint[0]}'?" if hint else ""
            raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(repr, allowed))}.{extra}")
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping for {tp.__name__}, got {value!r}")
        return from_dict(tp, value, prefix=key)
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expected a list, got {value!r} ({type(value).__name__})")
        args = get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"{key}: expected {len(args)} values, got {len(value)}")
            return tuple(_coerce(a, v, f"{key}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
        inner = args[0] if args else Any
        out = [_coerce(inner, v, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(out) if origin is tuple else out
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r} ({type(value).__name__})")
        args = get_args(tp)
        vt = args[1] if len(args) == 2 else Any
        return {str(k): _coerce(vt, v, f"{key}.{k}") for k, v in value.items()}
    if tp is float:
        if isinstance(value, str) and _EXP_FLOAT.fullmatch(value.strip()):
            return float(value)  # PyYAML (YAML 1.1) reads `1e-4` as a string
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key}: expected a number, got {value!r} ({type(value).__name__})")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"{key}: expected an integer, got {value!r} ({type(value).__name__})")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r} ({type(value).__name__})")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r} ({type(value).__name__})")
        return value
    if isinstance(tp, type) and not isinstance(value, tp):
        raise ConfigError(f"{key}: expected {tp.__name__}, got {value!r} ({type(value).__name__})")
    return value


def from_dict(cls: type[T], data: dict[str, Any], *, prefix: str = "") -> T:
    """Build the dataclass ``cls`` from a plain dict, validating keys and types recursively.

    Keys absent from ``data`` keep their defaults; unknown keys raise.
    """
    resolve = getattr(cls, "__config_resolve__", None)
    if resolve is not None:
        cls = resolve(data)
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping, got {data!r}")
    upgrade = getattr(cls, "__config_upgrade__", None)
    if upgrade is not None:  # keys of earlier versions, moved to where they live now
        data = upgrade(dict(data))
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    for k, v in data.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if k not in fields:
            close = difflib.get_close_matches(str(k), list(fields), n=1)
            hint = f" Did you mean '{(prefix + '.' if prefix else '') + close[0]}'?" if close else ""
            raise ConfigError(f"unknown config key '{key}'.{hint} Valid keys here: {', '.join(fields)}")
        try:
            kwargs[k] = _coerce(hints[k], v, key)
        except ConfigError:
            hint = fields[k].metadata.get("hint")  # e.g. sizes: "a size WxH such as 1280x720"
            if hint is None:
                raise
            raise ConfigError(f"{key}: {v!r} is not {hint}") from None
    try:
        obj = cls(**kwargs)
    except ConfigError as e:
        if getattr(e, "unprefixed", False):  # a field check: "batch_size: ..." -> "data.batch_size: ..."
            raise ConfigError(f"{prefix}.{e}" if prefix else str(e)) from None
        raise
    except (TypeError, ValueError) as e:
        msg = str(e)
        field_name = msg.split(":", 1)[0]
        if field_name in fields:  # "lr: ..." from a __post_init__ check -> "optim.generator.lr: ..."
            raise ConfigError(f"{prefix}.{msg}" if prefix else msg) from None
        raise ConfigError(f"{prefix or 'config'}: {msg}") from None
    return obj


def to_dict(obj: Any) -> Any:
    """Convert a (nested) dataclass to plain dicts/lists that YAML and JSON can hold."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, list | tuple):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def parse_scalar(text: str) -> Any:
    """Parse a ``--set`` value as a YAML scalar (``null``, numbers, booleans, strings, ``[a, b]`` lists)."""
    try:
        return yaml.safe_load(text) if text.strip() != "" else ""
    except yaml.YAMLError:
        return text


def apply_overrides(data: dict[str, Any], overrides: typing.Iterable[str]) -> dict[str, Any]:
    """Apply dotted ``KEY=VALUE`` overrides to a nested plain dict (in place; also returned).

    Intermediate mappings are created when missing; validation of the final keys happens in
    [`from_dict`][uda.config.convert.from_dict], so a misspelt key is still reported.
    """
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' is not KEY=VALUE; write e.g. trainer.max_iters=100")
        key, _, raw = item.partition("=")
        key = key.strip()
        if not key:
            raise ConfigError(f"override '{item}' has an empty key; write e.g. trainer.max_iters=100")
        parts = key.split(".")
        node = data
        for i, p in enumerate(parts[:-1]):
            nxt = node.get(p)
            if nxt is None:
                nxt = node[p] = {}
            elif not isinstance(nxt, dict):
                raise ConfigError(f"override '{key}': '{'.'.join(parts[: i + 1])}' is a value, not a section")
            node = nxt
        value = parse_scalar(raw)
        node[parts[-1]] = _merge_named(node.get(parts[-1]), value)
    return data


def _merge_named(old: Any, new: Any) -> Any:
    """A list of named specs (``[{name: ..., ...}]``) given over a mapping (``recipe.terms``) adds to it by name
    (a spec with an existing name replaces that entry), so an override never wipes a recipe's other terms."""
    if isinstance(old, dict) and isinstance(new, list) and new and \
            all(isinstance(x, dict) and isinstance(x.get("name"), str) for x in new):
        out = dict(old)
        for spec in new:
            out[spec["name"]] = {k: v for k, v in spec.items() if k != "name"}
        return out
    return new


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Recursively merge ``update`` into a copy of ``base`` (mappings merge, everything else replaces)."""
    out = dict(base)
    for k, v in update.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out
