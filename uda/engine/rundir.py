"""Run directories: a run is never overwritten, and `--resume` continues the run as it was configured.

A directory holds a run when it has a `config.yaml`, a `metrics.jsonl`, a `final.json` or a checkpoint
under `checkpoints/`. Training into such a directory is refused unless the run is resumed or the caller
asks to overwrite it; overwriting moves the old run aside (one atomic rename to
`<dir>.replaced-<UTC time>`), so nothing is deleted and a crash never leaves half of each run.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> d = Path(tempfile.mkdtemp()) / "run"
    >>> prepare_run_dir(d) is None  # an empty or missing folder is a new run
    True
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from .._errors import CheckpointError, UdaError

#: The files whose presence marks a directory as holding a run.
RUN_MARKERS = ("config.yaml", "metrics.jsonl", "final.json")


def holds_run(out_dir: str | os.PathLike) -> bool:
    """Whether `out_dir` already holds a run (config.yaml, metrics.jsonl, final.json or a checkpoint)."""
    d = Path(out_dir)
    if any((d / m).is_file() for m in RUN_MARKERS):
        return True
    ckpt = d / "checkpoints"
    return ckpt.is_dir() and any(p.suffix == ".pt" for p in ckpt.iterdir())


def prepare_run_dir(out_dir: str | os.PathLike, *, resume: bool = False, overwrite: bool = False,
                    move: bool = True) -> Path | None:
    """Check that training may write into `out_dir`; with `overwrite`, move an existing run aside.

    Args:
        out_dir: the run directory.
        resume: the run is being continued: `out_dir` must hold checkpoints.
        overwrite: an existing run is moved aside to `<out_dir>.replaced-<UTC time>` (one rename).
        move: do the move here (the main rank); other ranks only check.

    Returns:
        Where the old run was moved, or `None`.

    Raises:
        UdaError: `out_dir` holds a run and neither `resume` nor `overwrite` is given, or both are given.
        CheckpointError: `resume` without any checkpoint in `out_dir/checkpoints`.
    """
    d = Path(out_dir)
    if resume and overwrite:
        raise UdaError("--resume and --overwrite contradict each other; give one of them")
    if resume:
        ckpt = d / "checkpoints"
        if not (ckpt.is_dir() and any(p.suffix == ".pt" for p in ckpt.iterdir())):
            raise CheckpointError(f"--resume: no checkpoints in {ckpt}; pass the --out folder of the run to continue, "
                                  "or start a new run without --resume")
        return None
    if not holds_run(d):
        return None
    if not overwrite:
        raise UdaError(f"{d} already holds a run (config.yaml, checkpoints/); continue it with --resume, choose "
                       "another --out, or pass --overwrite to move the old run aside")
    if not move:
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    aside = d.with_name(f"{d.name}.replaced-{stamp}")
    n = 1
    while aside.exists():
        n += 1
        aside = d.with_name(f"{d.name}.replaced-{stamp}-{n}")
    os.replace(d, aside)
    return aside


def saved_config(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The plain config dict a run was started with (its `config.yaml`).

    Raises:
        UdaError: no `config.yaml` in `run_dir`.
    """
    from .._io import load_yaml

    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise UdaError(f"{run_dir}: no config.yaml, so this is not a uda run directory; pass the --out folder of "
                       "the run to continue")
    data = load_yaml(path)
    if not isinstance(data, dict):
        raise UdaError(f"{path}: not a run config (expected a mapping); the file is damaged")
    return data


def resume_config(run_dir: str | os.PathLike, overrides: list[str] | tuple[str, ...] = (), *,
                  imports: list[str] | tuple[str, ...] = ()) -> tuple[Any, list[str]]:
    """The run's saved config with `overrides` on top, and one `key: old -> new` line per changed value.

    The run's recorded `imports` (user modules, `uda.plugins`) are imported again; `imports` adds more.

    Example:
        >>> import tempfile
        >>> from uda.config import load_config
        >>> d = Path(tempfile.mkdtemp())
        >>> _ = (d / "config.yaml").write_text(load_config("advent_synthetic", ["trainer.max_iters=20"]).to_yaml())
        >>> cfg, changes = resume_config(d, ["trainer.log_every=5"])
        >>> cfg.trainer.max_iters, changes
        (20, ['trainer.log_every: 20 -> 5'])
    """
    from ..config import load_config_dict

    old = saved_config(run_dir)
    cfg = load_config_dict(old, list(overrides), imports=imports)
    return cfg, changed_values(old, cfg.to_dict())


def changed_values(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """`key: old -> new` for every dotted key whose value differs between two plain config dicts."""
    out = []
    for k in dict.fromkeys([*old, *new]):
        a, b = old.get(k), new.get(k)
        key = f"{prefix}{k}"
        if isinstance(a, dict) and isinstance(b, dict):
            out += changed_values(a, b, key + ".")
        elif a != b:
            out.append(f"{key}: {_show(a)} -> {_show(b)}")
    return out


def _show(v: Any) -> str:
    return "null" if v is None else str(v)
