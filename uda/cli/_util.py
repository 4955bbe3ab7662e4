"""Helpers shared by the ``uda`` commands: parameter types, device resolution, a run's config (its model:
`uda.load`)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import click

from .._errors import UdaError
from .._load import RUN_CHECKPOINTS, find_checkpoint  # noqa: F401  (a run directory's checkpoint, as uda.load finds it)
from .._registry import registry
from .._utils import resolve_device  # noqa: F401  (used by the commands)
from ..config import ExperimentConfig, load_config, parse_size

_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


class DatasetRoot(click.ParamType):
    """``DATASET:ROOT``: a registered dataset name and its root folder."""

    name = "DATASET:ROOT"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[str, str]:
        if isinstance(value, tuple):
            return value
        dataset, sep, root = str(value).partition(":")
        if not sep or not dataset or not root:
            self.fail(f"'{value}' is not DATASET:ROOT; write e.g. gta5:/data/GTA5", param, ctx)
        try:
            registry("dataset").get(dataset)
        except UdaError as e:
            self.fail(str(e), param, ctx)
        if not Path(root).exists():
            self.fail(f"root folder '{root}' does not exist; pass the folder that holds the {dataset} data", param, ctx)
        return dataset, root


class Device(click.ParamType):
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N``."""

    name = "auto|cpu|cuda|cuda:N"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        if not _DEVICE.match(str(value)):
            self.fail(f"'{value}' is not a device; use auto, cpu, cuda or cuda:N", param, ctx)
        return str(value)


class Size(click.ParamType):
    """``WxH``, e.g. ``1280x720``."""

    name = "WxH"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[int, int]:
        if isinstance(value, tuple):
            return value
        try:
            size = parse_size(str(value), "--size")
        except UdaError as e:
            self.fail(str(e), param, ctx)
        assert size is not None
        return size


def quote(value: Any) -> str:
    """A value as a YAML scalar for a ``KEY=VALUE`` override (strings quoted, so ``/data/123`` stays a path)."""
    return json.dumps(value)


def dataset_overrides(section: str, spec: tuple[str, str] | None, split: str | None = None) -> list[str]:
    """Overrides that point ``data.<section>`` at another dataset (its options reset to the new dataset's)."""
    if spec is None:
        return []
    name, root = spec
    out = [f"data.{section}.name={quote(name)}", f"data.{section}.root={quote(root)}", f"data.{section}.options={{}}"]
    if split is not None:  # a validation set: scored at its native label size (the papers' protocol)
        out += [f"data.{section}.split={quote(split)}", f"data.{section}.size=null"]
    return out


def run_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> ExperimentConfig | None:
    """The resolved config saved with a run checkpoint (or beside it), or ``None`` for bare weights."""
    from .._io import load_checkpoint

    ckpt_path = find_checkpoint(path)
    ckpt = load_checkpoint(ckpt_path)
    data = ckpt.get("config") if isinstance(ckpt, dict) else None
    if data is None:
        for folder in (ckpt_path.parent, ckpt_path.parent.parent):
            if (folder / "config.yaml").is_file():
                return load_config(folder / "config.yaml", overrides)
        return None
    if isinstance(data, ExperimentConfig):
        data = data.to_dict()
    if overrides:
        from ..config import apply_overrides

        data = apply_overrides(dict(data), overrides)
    return ExperimentConfig.from_dict(data)
