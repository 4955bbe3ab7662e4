"""Training checkpoints: what they hold, where they go, and how resume finds the newest valid one.

A checkpoint (``checkpoints/iter_XXXXXXX.pt`` and a copy ``checkpoints/last.pt``) is a plain dict of
tensors and Python scalars, loadable with ``torch.load(weights_only=True)``:

``format``, ``stage`` (index), ``stage_name``, ``iter`` (iterations done in that stage), ``global_iter``,
``model`` (segmentation network state dict), ``recipe`` (every module of the recipe: model, aligner
discriminators, translator; read the translator's part with `uda.translators.translator_state_dict`), ``optimizers`` / ``schedulers`` (per stage),
``scaler``, ``rng`` (one entry per rank: torch, numpy, python, cuda), ``data`` (loader positions), ``skipped`` (non-finite
steps skipped), ``config`` (the resolved experiment config), ``model_name``, ``num_classes``, and
``model_card`` (see `model_card`: which model with which options, its classes and input normalisation,
so that `uda.load` rebuilds the model from the file alone; checkpoints written before it are read through
their ``config``).

Writes go through `uda._io.save_checkpoint` (temp file + fsync + rename, with a ``.sha256``
sidecar), so a crash never leaves a half-written file under a final name.
"""

from __future__ import annotations

import random
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._errors import CheckpointError
from .._io import atomic_write_text, link_or_copy, load_checkpoint, save_checkpoint

FORMAT = "uda.checkpoint/1"
MODEL_CARD = "uda.model_card/1"
_ITER_RE = re.compile(r"^iter_(\d+)\.pt$")


def rng_state() -> dict[str, Any]:
    """Every RNG the loop touches, as tensors/scalars (``weights_only``-loadable)."""
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"name": np_state[0], "keys": torch.from_numpy(np_state[1].astype(np.int64)),
                  "pos": int(np_state[2]), "has_gauss": int(np_state[3]), "cached": float(np_state[4])},
        "python": _to_lists(random.getstate()),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore [`rng_state`][uda.engine.checkpoint.rng_state]."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def rank_rng_states() -> list[dict[str, Any]]:
    """`rng_state()` of every rank, in rank order (a collective under torch.distributed: call it on every rank)."""
    import torch.distributed as dist

    state = rng_state()
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return [state]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, state)
    return out


def restore_rank_rng(states: list[dict[str, Any]] | dict[str, Any], rank: int = 0, world_size: int = 1) -> None:
    """Restore this rank's RNG state from a checkpoint's `rng` list (one entry per rank).

    A checkpoint written with another number of ranks gives rank `r` the state of saved rank `r % saved`
    (with a warning: the continuation is then no longer the uninterrupted run).
    """
    if isinstance(states, dict):  # older single-state checkpoints
        states = [states]
    if len(states) != world_size:
        warnings.warn(f"the checkpoint holds the RNG states of {len(states)} rank(s), this run has {world_size}; "
                      "random draws will differ from the uninterrupted run", stacklevel=2)
    set_rng_state(states[rank % len(states)])




def model_card(config: dict[str, Any], model_state: dict[str, Any] | None = None) -> dict[str, Any]:
    """What rebuilds a checkpoint's segmentation model without its run: name, options, classes, normalisation.

    Args:
        config: the resolved experiment config as a dict (``ExperimentConfig.to_dict()``).
        model_state: the model's state dict; its ``_extra_state`` holds the input normalisation the weights
            were trained with (models without it get ``None``).

    Returns:
        ``{"format", "model", "options", "num_classes", "class_names", "normalization", "input_size"}``;
        ``input_size`` is the evaluation size ``WxH`` (``None``: the images' own size).

    Example:
        >>> from uda.config import load_config
        >>> card = model_card(load_config("source_only_synthetic").to_dict())
        >>> card["model"], card["num_classes"], card["class_names"][0], card["input_size"]
        ('deeplabv2_tiny', 19, 'road', '128x64')
    """
    from ..evaluation.metrics import class_names

    mc = config.get("model") or {}
    num_classes = int(mc.get("num_classes", 19))
    extra = (model_state or {}).get("_extra_state")
    norm = extra.get("normalization") if isinstance(extra, dict) else None
    return {
        "format": MODEL_CARD,
        "model": mc.get("name"),
        "options": dict(mc.get("options") or {}),
        "num_classes": num_classes,
        "class_names": list(class_names(num_classes)),
        "normalization": dict(norm) if isinstance(norm, dict) else None,
        "input_size": (config.get("eval") or {}).get("size"),
    }


def release_finished_stage(trainer: Any) -> None:
    """`on_stage_end` callback: drop state that only the finished stage needs (after CycleGAN's stage 1: its image
    pools and its optimizers' moments), so that it neither takes memory nor goes into the later checkpoints."""
    stage = trainer.stages[trainer.stage_idx]
    if stage.name != "translator":
        return
    for m in trainer.recipe.modules():
        release = getattr(m, "release_training_state", None)
        if callable(release):
            release()
    for key, opt in trainer.optimizers.get(stage.name, {}).items():  # the finished stage's Adam moments
        if not key.endswith("_sched"):
            opt.state.clear()


def _to_lists(obj: Any) -> Any:
    return [_to_lists(v) for v in obj] if isinstance(obj, tuple) else obj


def checkpoint_name(global_iter: int) -> str:
    """``iter_0001234.pt``."""
    return f"iter_{global_iter:07d}.pt"


def write_checkpoint(state: dict[str, Any], ckpt_dir: str | Path, keep_last: int = 3) -> Path:
    """Write ``iter_XXXXXXX.pt`` and ``last.pt`` atomically (with checksums), then keep the newest ``keep_last``.

    Returns:
        The path of the iteration checkpoint.

    Raises:
        OSError: the disk is full or the folder unwritable (the previous checkpoints stay intact).
    """
    ckpt_dir = Path(ckpt_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    if isinstance(state.get("config"), dict) and "model_card" not in state:  # self-describing (uda.load)
        state = {**state, "model_card": model_card(state["config"], state.get("model"))}
    path = ckpt_dir / checkpoint_name(int(state["global_iter"]))
    digest = save_checkpoint(state, path)
    # Drop the old digest first: a kill between the two writes then leaves an unverified (but atomically
    # written, loadable) last.pt instead of a good file beside a stale digest.
    (ckpt_dir / "last.pt.sha256").unlink(missing_ok=True)
    link_or_copy(path, ckpt_dir / "last.pt")  # a hard link: the bytes are neither re-read nor written twice
    atomic_write_text(ckpt_dir / "last.pt.sha256", digest + "\n")
    for old in iteration_checkpoints(ckpt_dir)[max(1, keep_last):]:
        old.unlink(missing_ok=True)
        Path(str(old) + ".sha256").unlink(missing_ok=True)
    return path


def iteration_checkpoints(ckpt_dir: str | Path) -> list[Path]:
    """``iter_*.pt`` files of a folder, newest first."""
    ckpt_dir = Path(ckpt_dir)
    if not ckpt_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in ckpt_dir.iterdir() if (m := _ITER_RE.match(p.name))]
    return [p for _, p in sorted(found, reverse=True)]


def load_latest_checkpoint(ckpt_dir: str | Path) -> tuple[dict[str, Any], Path]:
    """The newest checkpoint that loads and passes its checksum.

    Candidates are the ``iter_*.pt`` files (newest first), then ``last.pt``. A corrupt or truncated one is
    reported with a warning naming it, and the previous one is tried.

    Raises:
        CheckpointError: no checkpoint in the folder, or none of them is valid (the message names them).
    """
    ckpt_dir = Path(ckpt_dir)
    candidates = iteration_checkpoints(ckpt_dir)
    if (ckpt_dir / "last.pt").is_file():
        candidates.append(ckpt_dir / "last.pt")
    if not candidates:
        raise CheckpointError(f"{ckpt_dir}: no checkpoint to resume from; run without --resume to start a new run")
    bad = []
    for path in candidates:
        try:
            state = load_checkpoint(path)
            if not isinstance(state, dict) or state.get("format") != FORMAT:
                raise CheckpointError(f"{path}: not a uda training checkpoint")
            return state, path
        except CheckpointError as e:
            bad.append(path.name)
            warnings.warn(f"skipping checkpoint {path}: {e}; falling back to the previous one", stacklevel=2)
    raise CheckpointError(
        f"{ckpt_dir}: no valid checkpoint to resume from ({', '.join(bad)} are corrupt or truncated); "
        "start the run again without --resume"
    )
