"""Multi-seed runs: one experiment trained with several seeds, one after another, and one summary.

``uda train NAME --seeds 0 1 2 --out DIR`` trains seed N into ``DIR/seedN/`` (a complete run directory, as a
single ``uda train`` writes it) and then writes ``DIR/seeds.json`` and ``DIR/seeds.md``: the mean ± standard
deviation over the seeds of every mIoU (``miou``, ``miou19``, ``miou16``, ``miou13``, ``pixel_accuracy``) and
of every class's IoU, next to each seed's value. The standard deviation is the population one (divide by n, as
``numpy.std`` and the benchmarks' seed rows); it is 0 for one seed.

Example:
    >>> s = summarize({0: {"miou": 40.0, "per_class": {"road": 80.0}},
    ...                1: {"miou": 42.0, "per_class": {"road": 90.0}}})
    >>> s["metrics"]["miou"], s["per_class"]["road"]
    ({'mean': 41.0, 'std': 1.0, 'values': [40.0, 42.0]}, {'mean': 85.0, 'std': 5.0, 'values': [80.0, 90.0]})
"""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .._errors import UdaError
from .._io import atomic_write_json, atomic_write_text
from ..config import ExperimentConfig
from .rundir import holds_run, resume_config

__all__ = ["METRICS", "seed_dir", "summarize", "train_seeds"]

#: The scalar scores summarized over seeds (those a result has).
METRICS = ("miou", "miou19", "miou16", "miou13", "pixel_accuracy")


def seed_dir(out_dir: str | os.PathLike, seed: int) -> Path:
    """The run directory of ``seed`` inside a multi-seed run: ``<out_dir>/seed<seed>``."""
    return Path(out_dir) / f"seed{seed}"


def _stats(values: list[float | None]) -> dict[str, Any]:
    known = [float(v) for v in values if v is not None]
    if len(known) < len(values):  # a class absent from one seed's prediction and labels has no IoU there
        return {"mean": None, "std": None, "values": values}
    return {"mean": round(statistics.fmean(known), 4), "std": round(statistics.pstdev(known), 4), "values": known}


def summarize(results: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """Mean ± std over seeds of every metric and every class's IoU.

    Args:
        results: seed → that seed's final evaluation (its ``final.json``).

    Returns:
        ``{"seeds": [...], "num_seeds", "metrics": {name: {"mean", "std", "values"}}, "per_class": {class: ...},
        "std": "population", ...}``; a class that is ``None`` (absent) in any seed gets ``mean``/``std`` ``None``.
    """
    if not results:
        raise UdaError("no seed results to summarize; give --seeds with at least one seed")
    seeds = sorted(results)
    first = results[seeds[0]]
    metrics = {k: _stats([results[s].get(k) for s in seeds]) for k in METRICS if all(k in results[s] for s in seeds)}
    classes = list(first.get("per_class", {}))
    per_class = {c: _stats([results[s].get("per_class", {}).get(c) for s in seeds]) for c in classes}
    out = {"seeds": seeds, "num_seeds": len(seeds), "metrics": metrics, "per_class": per_class, "std": "population"}
    for key in ("method", "dataset", "protocol", "num_images"):
        if key in first:
            out[key] = first[key]
    return out


def _load_final(run: Path) -> dict[str, Any]:
    try:
        return json.loads((run / "final.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise UdaError(f"{run / 'final.json'}: unreadable ({e}); train that seed again with --resume or "
                       "--overwrite") from None


def train_seeds(
    cfg: ExperimentConfig | None,
    out_dir: str | os.PathLike,
    seeds: Sequence[int],
    *,
    resume: bool = False,
    overwrite: bool = False,
    overrides: Sequence[str] = (),
    device: str | None = None,
    on_seed: Callable[[int, Path, str], None] | None = None,
) -> dict[str, Any]:
    """Train ``cfg`` once per seed into ``<out_dir>/seed<N>/`` (sequentially), then write the summary.

    Args:
        cfg: the resolved config (``trainer.seed`` is replaced by each seed); may be ``None`` with ``resume``:
            seeds not started yet then take the saved config of one that started.
        out_dir: the multi-seed run directory.
        seeds: the seeds, e.g. ``[0, 1, 2]`` (distinct, >= 0).
        resume: finished seeds (with ``final.json``) are read back, started ones continue from their last
            checkpoint with their saved config (``overrides`` on top), seeds not started yet start.
        overwrite: ``out_dir`` may hold another run: it is moved aside first (see `uda.engine.rundir`).
        overrides: ``KEY=VALUE`` applied on top of a resumed seed's saved config.
        device: overrides ``trainer.device``.
        on_seed: called as ``on_seed(seed, run_dir, "train" | "resume" | "done")`` before each seed.

    Returns:
        The summary (also ``seeds.json``; ``seeds.md`` is its report, `uda.evaluation.report.seeds_markdown`).

    Raises:
        UdaError: repeated or negative seeds; ``out_dir`` (or a seed's directory) already holds a run and neither
            ``resume`` nor ``overwrite`` is given; ``resume`` without ``cfg`` where no seed has started.
    """
    from ..evaluation.report import seeds_markdown
    from .trainer import train

    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise UdaError(f"--seeds {' '.join(map(str, seeds))}: give distinct seeds >= 0, e.g. --seeds 0 1 2")
    out = Path(out_dir)
    if resume and overwrite:
        raise UdaError("--resume and --overwrite contradict each other; give one of them")
    held = (out / "seeds.json").is_file() or holds_run(out) or any(holds_run(seed_dir(out, s)) for s in seeds)
    if held and not resume:  # refuse before anything is written, as a single run does
        if not overwrite:
            raise UdaError(f"{out} already holds a run (seeds.json or seed*/); continue it with --resume, "
                           "choose another --out, or pass --overwrite to move the old run aside")
        _move_aside(out)
    results: dict[int, dict[str, Any]] = {}
    for s in seeds:
        run = seed_dir(out, s)
        if resume and (run / "final.json").is_file():
            state = "done"
        elif resume and any((run / "checkpoints").glob("*.pt")):
            state = "resume"
        else:
            state = "train"
        if on_seed is not None:
            on_seed(s, run, state)
        if state == "done":
            results[s] = _load_final(run)
            continue
        if state == "resume":
            seed_cfg, _ = resume_config(run, list(overrides))
            results[s] = train(seed_cfg, run, resume=True, device=device)
            continue
        base = cfg if cfg is not None else _started_config(out, seeds, overrides)
        seed_cfg = base.replace(**{"trainer.seed": s})
        # On resume, a seed that stopped before its first checkpoint starts again; its partial files go aside.
        results[s] = train(seed_cfg, run, overwrite=resume, device=device)
    summary = summarize(results)
    summary["name"] = (cfg.name if cfg is not None else results[seeds[0]].get("method", "experiment"))
    summary["runs"] = {str(s): str(seed_dir(out, s).name) for s in seeds}
    atomic_write_json(out / "seeds.json", summary)
    atomic_write_text(out / "seeds.md", seeds_markdown(summary))
    return summary


def _started_config(out: Path, seeds: Sequence[int], overrides: Sequence[str]) -> ExperimentConfig:
    """The experiment of a resumed multi-seed run without NAME: the saved config of a seed that started."""
    for s in seeds:
        if (seed_dir(out, s) / "config.yaml").is_file():
            return resume_config(seed_dir(out, s), list(overrides))[0]
    raise UdaError(f"{out}: no seed of {list(seeds)} has started, so there is no saved experiment to resume; "
                   "give NAME_OR_YAML")


def _move_aside(out: Path) -> None:
    """``--overwrite`` of a multi-seed directory: the whole folder goes aside in one rename."""
    import time

    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    aside = out.with_name(f"{out.name}.replaced-{stamp}")
    n = 1
    while aside.exists():
        n += 1
        aside = out.with_name(f"{out.name}.replaced-{stamp}-{n}")
    os.replace(out, aside)
