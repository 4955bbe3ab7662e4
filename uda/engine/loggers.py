"""Experiment loggers: TensorBoard, Weights & Biases and MLflow, each behind its extra.

``trainer.loggers: [tensorboard, wandb, mlflow]`` selects them (``trainer.tensorboard: true``, the default, is an
alias that adds ``tensorboard``). Each one receives, on rank 0, the resolved config once at the start, every record
of ``metrics.jsonl`` (the losses ``<stage>/loss/<name>``, ``<stage>/loss_d/<name>``, ``<stage>/lr`` and the
evaluation scores ``seg/eval/<name>``, at step ``global_iter``) and is closed at the end (also after an error).

A logger whose package is not installed is off, with one warning per process naming the extra to install
(``pip install 'uda-seg[wandb]'``). Nothing needs the network by default:

- ``wandb`` runs with ``mode="offline"`` into ``<run>/wandb/`` (upload later with ``wandb sync``); the run id is
  kept in ``<run>/wandb_run_id`` so ``--resume`` continues the same W&B run.
- ``mlflow`` logs into a file store in the run directory (``<run>/mlruns``; ``MLFLOW_ALLOW_FILE_STORE=true`` is set
  for it, as MLflow >= 3.7 asks) unless a ``tracking_uri`` is given (``sqlite:///mlflow.db``, a server).

``trainer.logger_options: {wandb: {...}, mlflow: {...}}`` passes options: for wandb any ``wandb.init`` keyword
(``project``, ``entity``, ``mode: online``, ``tags`` …), for mlflow ``tracking_uri`` and ``experiment``.

Example:
    >>> logger_names(["wandb", "mlflow"], tensorboard=True)  # trainer.tensorboard=true is an alias
    ['tensorboard', 'wandb', 'mlflow']
    >>> flat_metrics({"stage": "seg", "global_iter": 5, "loss": {"seg": 1.5}, "lr": 0.1, "eval": {"miou": 40.0}})
    {'seg/loss/seg': 1.5, 'seg/eval/miou': 40.0, 'seg/lr': 0.1}
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .._io import atomic_write_text

__all__ = ["LOGGERS", "Logger", "MLflowLogger", "TensorBoardLogger", "WandbLogger", "build_loggers", "flat_metrics",
           "logger_names"]

#: logger name → (module that must import, extra of ``pip install 'uda-seg[EXTRA]'``).
LOGGERS: dict[str, tuple[str, str]] = {
    "tensorboard": ("tensorboard", "tensorboard"),
    "wandb": ("wandb", "wandb"),
    "mlflow": ("mlflow", "mlflow"),
}
_WARNED: set[str] = set()


def flat_metrics(record: dict[str, Any]) -> dict[str, float]:
    """The finite numbers of a ``metrics.jsonl`` record as ``<stage>/<group>/<name>`` (and ``<stage>/lr``)."""
    out: dict[str, float] = {}
    stage = record.get("stage", "seg")
    for group in ("loss", "loss_d", "eval"):
        for k, v in (record.get(group) or {}).items():
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
                out[f"{stage}/{group}/{k}"] = float(v)
    if isinstance(record.get("lr"), int | float):
        out[f"{stage}/lr"] = float(record["lr"])
    return out


def _flat_config(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flat_config(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


class Logger:
    """Base of the experiment loggers: ``log_config`` once, ``log_record`` per ``metrics.jsonl`` line,
    ``log_image`` per picture grid, ``close`` at the end."""

    name = ""

    def log_config(self, config: dict[str, Any]) -> None:
        """The resolved config (a plain nested dict)."""

    def log_record(self, record: dict[str, Any]) -> None:
        """One ``metrics.jsonl`` record."""

    def log_image(self, tag: str, image: Any, step: int) -> None:
        """An (H, W, 3) uint8 picture grid."""

    def close(self) -> None:
        """Flush and finish."""


class TensorBoardLogger(Logger):
    """``torch.utils.tensorboard.SummaryWriter`` into ``<run>/tensorboard`` (scalars and picture grids)."""

    name = "tensorboard"

    def __init__(self, out_dir: Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer: Any = SummaryWriter(str(out_dir / "tensorboard"))

    def log_config(self, config: dict[str, Any]) -> None:
        from .._io import dump_yaml

        self.writer.add_text("config", "```yaml\n" + dump_yaml(config) + "```")

    def log_record(self, record: dict[str, Any]) -> None:
        for k, v in flat_metrics(record).items():
            self.writer.add_scalar(k, v, record["global_iter"])

    def log_image(self, tag: str, image: Any, step: int) -> None:
        self.writer.add_image(tag, image, step, dataformats="HWC")

    def close(self) -> None:
        self.writer.close()


class WandbLogger(Logger):
    """``wandb.init(mode="offline", dir=<run>)``; ``run.log(metrics, step=global_iter)``; ``run.finish()``."""

    name = "wandb"

    def __init__(self, out_dir: Path, run_name: str, options: dict[str, Any], config: dict[str, Any]) -> None:
        import wandb

        id_file = out_dir / "wandb_run_id"
        kwargs: dict[str, Any] = {"project": "uda", "name": run_name, "mode": "offline", **options}
        if id_file.is_file():  # a resumed run continues its W&B run
            kwargs.setdefault("id", id_file.read_text().strip())
            kwargs.setdefault("resume", "allow")
        self.run = wandb.init(dir=str(out_dir), config=config, **kwargs)
        run_id = getattr(self.run, "id", None)
        if run_id and not id_file.is_file():
            atomic_write_text(id_file, f"{run_id}\n")

    def log_record(self, record: dict[str, Any]) -> None:
        metrics = flat_metrics(record)
        if metrics:
            self.run.log(metrics, step=int(record["global_iter"]))

    def close(self) -> None:
        self.run.finish()


class MLflowLogger(Logger):
    """An MLflow run in a file store inside the run directory: params = the flattened config,
    ``log_metrics(metrics, step=global_iter)``, ``end_run()``."""

    name = "mlflow"

    def __init__(self, out_dir: Path, run_name: str, options: dict[str, Any], config: dict[str, Any]) -> None:
        import mlflow

        self.mlflow = mlflow
        uri = options.get("tracking_uri")
        if uri is None:
            uri = (out_dir.resolve() / "mlruns").as_uri()
            # MLflow >= 3.7 refuses a file store unless asked (it prefers a database); ours is the offline default.
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        mlflow.set_tracking_uri(uri)
        mlflow.set_experiment(options.get("experiment") or run_name)
        self.run = mlflow.start_run(run_name=run_name)
        # MLflow params are strings of at most 6000 characters (older servers: 500); long lists are cut.
        params = {k: str(v)[:500] for k, v in _flat_config(config).items()}
        mlflow.log_params(params)

    def log_record(self, record: dict[str, Any]) -> None:
        metrics = flat_metrics(record)
        if metrics:
            self.mlflow.log_metrics({k.replace("/", "."): v for k, v in metrics.items()},
                                    step=int(record["global_iter"]))

    def close(self) -> None:
        self.mlflow.end_run()


def logger_names(loggers: Sequence[str], tensorboard: bool) -> list[str]:
    """The loggers to run: ``trainer.loggers`` plus ``tensorboard`` when the ``trainer.tensorboard`` alias is on."""
    return list(dict.fromkeys([*(["tensorboard"] if tensorboard else []), *loggers]))


def _installed(name: str) -> bool:
    module = LOGGERS[name][0]
    if sys.modules.get(module) is not None:  # already imported (or a stand-in module)
        return True
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a module set to None in sys.modules (tests) or a broken install
        return False


def _warn_missing(name: str) -> None:
    if name in _WARNED:
        return
    _WARNED.add(name)
    extra = LOGGERS[name][1]
    how = "set trainer.tensorboard=false" if name == "tensorboard" else f"remove {name} from trainer.loggers"
    warnings.warn(f"trainer.loggers: {name} is not installed, so it is off; install the '{extra}' extra "
                  f"(pip install 'uda-seg[{extra}]') or {how}", stacklevel=3)


def build_loggers(
    names: Sequence[str],
    options: dict[str, dict[str, Any]],
    cfg: Any,
    out_dir: str | os.PathLike,
    *,
    available: Callable[[str], bool] = _installed,
) -> list[Logger]:
    """Start the loggers ``names`` that are installed (a missing one: one warning, then off).

    Args:
        names: logger names (`LOGGERS`), e.g. from `logger_names`.
        options: ``trainer.logger_options`` (logger name → keyword options).
        cfg: the resolved `ExperimentConfig` (its dict is logged; its ``name`` names the run); ``None`` in tests.
        out_dir: the run directory.
        available: whether a logger's package imports (replaced in tests).

    Returns:
        The started loggers, in the order of ``names``.
    """
    out = Path(out_dir)
    config = cfg.to_dict() if cfg is not None else {}
    run_name = getattr(cfg, "name", None) or out.name
    started: list[Logger] = []
    for name in names:
        if not available(name):
            _warn_missing(name)
            continue
        opts = dict((options or {}).get(name) or {})
        if name == "tensorboard":
            try:
                lg: Logger = TensorBoardLogger(out)
            except ImportError:  # torch.utils.tensorboard needs the tensorboard package itself
                _warn_missing(name)
                continue
        elif name == "wandb":
            lg = WandbLogger(out, run_name, opts, config)
        else:
            lg = MLflowLogger(out, run_name, opts, config)
        lg.log_config(config)  # W&B and MLflow took it at the start of their run
        started.append(lg)
    return started
