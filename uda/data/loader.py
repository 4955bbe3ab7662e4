"""Building datasets from configs and the infinite, resumable, rank-sharded batch iterator.

Determinism: the index stream of a rank is a pure function of ``(seed, iteration, rank, world_size)``. Epoch ``e``
uses one permutation of the dataset drawn from a ``torch.Generator`` seeded with ``(seed, e)`` (the same on every
rank); rank ``r`` takes positions ``r, r + world_size, …`` of it, so ranks see disjoint shards. Batch ``k`` holds
stream positions ``k·B … k·B + B − 1``; position ``p`` lies in epoch ``p // m`` at offset ``p % m`` with
``m = len // world_size`` samples per rank and epoch. A dataset whose class sets ``stream_sampling = True`` (rare-class
sampling, random crops) receives the global stream position ``p · world_size + rank`` itself as the index and
derives its sample and crop from it. Resuming at iteration ``k`` therefore yields exactly the
batches an uninterrupted run would have seen, whatever ``num_workers`` is.
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from .._errors import DataError
from .._registry import create
from ..config import DatasetConfig


def build_dataset(cfg: DatasetConfig, *, labels: bool = True, on_bad_sample: str = "stop") -> Dataset:
    """Build the dataset a config section describes.

    Args:
        cfg: ``name``, ``root``, ``split``, ``size`` and extra ``options`` (forwarded to the factory).
        labels: read labels (``False`` for the unlabelled target stream).
        on_bad_sample: ``"stop"`` or ``"skip"``.

    Returns:
        The dataset (``torch.utils.data.Dataset``).

    Example:
        >>> from uda.config import DatasetConfig
        >>> ds = build_dataset(DatasetConfig(name="synthetic", size="64x32", options={"num": 3}))
        >>> len(ds)
        3
    """
    opts = dict(cfg.options)
    opts.update(split=cfg.split, size=cfg.size, labels=labels, on_bad_sample=on_bad_sample)
    if cfg.root is not None:
        opts["root"] = cfg.root
    elif cfg.name != "synthetic":
        raise DataError(
            f"dataset '{cfg.name}' needs a root folder; set data.*.root or pass --source/--target NAME:ROOT"
        )
    return create("dataset", cfg.name, **opts)


def _epoch_perm(n: int, seed: int, epoch: int) -> torch.Tensor:
    g = torch.Generator()
    g.manual_seed((int(seed) * 1_000_003 + int(epoch) * 7919 + 12345) % (2**63 - 1))
    return torch.randperm(n, generator=g)


class _StreamSampler(Sampler[list[int]]):
    """Infinite batch sampler over the rank's index stream, starting at a given iteration."""

    def __init__(self, n: int, batch_size: int, seed: int, rank: int, world_size: int, start_iter: int,
                 stream: bool = False) -> None:
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.rank, self.world_size, self.start_iter = rank, world_size, start_iter
        self.per_rank = max(1, n // world_size)
        self._cache: tuple[int, torch.Tensor] | None = None
        self.stream = stream

    def index(self, pos: int) -> int:
        if self.stream:  # a `stream_sampling` dataset picks its own sample from (its seed, this position)
            return pos * self.world_size + self.rank
        epoch, off = divmod(pos, self.per_rank)
        if self._cache is None or self._cache[0] != epoch:
            self._cache = (epoch, _epoch_perm(self.n, self.seed, epoch))
        return int(self._cache[1][(off * self.world_size + self.rank) % self.n])

    def batch(self, it: int) -> list[int]:
        return [self.index(it * self.batch_size + j) for j in range(self.batch_size)]

    def __iter__(self) -> Iterator[list[int]]:
        it = self.start_iter
        while True:
            yield self.batch(it)
            it += 1


def _collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    skipped = [f for it in items for f in it.pop("skipped", [])]
    out: dict[str, Any] = {}
    for key in items[0]:
        vals = [it[key] for it in items]
        if isinstance(vals[0], torch.Tensor):
            out[key] = torch.stack(vals)
        elif isinstance(vals[0], int):
            out[key] = torch.tensor(vals)
        else:
            out[key] = vals
    out["skipped"] = skipped
    return out


class _WorkerInit:
    def __init__(self, seed: int, rank: int) -> None:
        self.seed, self.rank = seed, rank

    def __call__(self, worker_id: int) -> None:
        s = (self.seed * 1000 + self.rank * 100 + worker_id) % (2**32)
        random.seed(s)
        np.random.seed(s)
        torch.manual_seed(s)


class InfiniteLoader:
    """An endless iterator of batches, deterministic given ``(seed, iteration, rank)`` and exactly resumable.

    Args:
        dataset: a map-style dataset of item dicts.
        batch_size: items per batch (per rank).
        seed: data seed.
        rank: this process's rank.
        world_size: number of processes; ranks see disjoint shards of every epoch.
        num_workers: DataLoader worker processes (seeded per worker).
        device: where batches go; on CUDA memory is pinned and copies are non-blocking.
        start_iter: the first iteration to produce (resume).
        prefetch_factor: batches prefetched per worker.

    Batch:
        ``{"image": (B, 3, H, W) float32, "label": (B, H, W) int64 (if the dataset has labels),
        "index": (B,) int64, "name": list[str]}``.

    Attributes:
        iteration: the iteration of the next batch.
        num_skipped: bad samples skipped so far (``on_bad_sample="skip"``), for logging.
        skipped_files: their files, in order.

    Example:
        >>> import uda
        >>> ds = uda.create("dataset", "synthetic", num=5, size="32x16")
        >>> loader = InfiniteLoader(ds, batch_size=2, seed=0)
        >>> b = next(loader); b["image"].shape, loader.iteration
        (torch.Size([2, 3, 16, 32]), 1)
    """

    def __init__(
        self,
        dataset: Dataset,
        *,
        batch_size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        num_workers: int = 0,
        device: torch.device | str = "cpu",
        start_iter: int = 0,
        prefetch_factor: int = 2,
    ) -> None:
        n = len(dataset)  # type: ignore[arg-type]
        if n == 0:
            raise DataError(f"{getattr(dataset, 'dataset', 'dataset')}: no samples to load; run `uda data check`")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside 0..{world_size - 1}")
        if n < world_size:
            warnings.warn(f"dataset has {n} samples for {world_size} ranks: ranks will share samples", stacklevel=2)
        self.dataset, self.batch_size, self.seed = dataset, int(batch_size), int(seed)
        self.rank, self.world_size, self.num_workers = int(rank), int(world_size), int(num_workers)
        self.device = torch.device(device)
        self.prefetch_factor = prefetch_factor
        self.iteration = int(start_iter)
        self.num_skipped = 0
        self.skipped_files: list[str] = []
        self._it: Iterator[dict[str, Any]] | None = None

    def sampler(self, start_iter: int | None = None) -> _StreamSampler:
        """The batch-index stream from ``start_iter`` (default: the current iteration)."""
        n = len(self.dataset)  # type: ignore[arg-type]
        start = self.iteration if start_iter is None else start_iter
        return _StreamSampler(n, self.batch_size, self.seed, self.rank, self.world_size, start,
                              stream=bool(getattr(self.dataset, "stream_sampling", False)))

    def generator(self) -> torch.Generator:
        """The loader's own generator, a function of `(seed, rank, iteration)`.

        The DataLoader draws its base seed from it when an iterator starts (at the first batch and after a
        resume); with the global generator that draw would shift every later random number of the run.
        """
        return torch.Generator().manual_seed((self.seed * 1_000_003 + self.rank * 7919 + self.iteration) % 2**63)

    def _make(self) -> Iterator[dict[str, Any]]:
        cuda = self.device.type == "cuda"
        kw: dict[str, Any] = {}
        if self.num_workers > 0:
            kw = {"worker_init_fn": _WorkerInit(self.seed, self.rank), "prefetch_factor": self.prefetch_factor,
                  "persistent_workers": False}  # fmt: skip
        loader = DataLoader(
            self.dataset,
            batch_sampler=self.sampler(),
            num_workers=self.num_workers,
            collate_fn=_collate,
            pin_memory=cuda,
            generator=self.generator(),  # never the global generator: resume restores that one exactly
            **kw,
        )
        return iter(loader)

    def __iter__(self) -> InfiniteLoader:
        return self

    def __next__(self) -> dict[str, Any]:
        if self._it is None:
            self._it = self._make()
        try:
            batch = next(self._it)
        except RuntimeError as e:
            if "DataLoader worker" not in str(e) or isinstance(e, DataError):
                raise
            raise DataError(self._worker_death(e)) from e
        except DataError as e:  # raised in a worker: torch appends the worker's traceback; keep the one line
            self._it = None
            lines = [x for x in str(e).strip().splitlines() if x.strip()] or ["bad sample"]
            if lines[0].startswith("Caught ") and len(lines) > 1:  # the original message is the traceback's last line
                lines = [lines[-1].split(": ", 1)[-1] if lines[-1].split(": ", 1)[0].endswith("Error") else lines[-1]]
            raise DataError(lines[0]) from None
        self.iteration += 1
        skipped = batch.pop("skipped")
        if skipped:
            self.num_skipped += len(skipped)
            self.skipped_files.extend(skipped)
        non_blocking = self.device.type == "cuda"
        return {k: v.to(self.device, non_blocking=non_blocking) if isinstance(v, torch.Tensor) else v
                for k, v in batch.items()}  # fmt: skip

    def _worker_death(self, err: RuntimeError) -> str:
        """A one-line account of a dead worker process with its cause (exit code or signal)."""
        import signal

        causes = []
        for w in getattr(self._it, "_workers", []):
            code = getattr(w, "exitcode", None)
            if code is None or code == 0:
                continue
            if code < 0:
                try:
                    name = signal.Signals(-code).name
                except ValueError:
                    name = f"signal {-code}"
                oom = " (the kernel's out-of-memory killer sends SIGKILL)" if -code == signal.SIGKILL else ""
                causes.append(f"pid {w.pid} killed by {name}{oom}")
            else:
                causes.append(f"pid {w.pid} exited with exit code {code}")
        self._it = None
        cause = "; ".join(causes) or str(err).strip().splitlines()[0]
        return (
            f"{getattr(self.dataset, 'dataset', type(self.dataset).__name__)}: a DataLoader worker died while "
            f"loading batch {self.iteration} ({cause}); lower data.num_workers or data.batch_size if memory is "
            "short, or set data.num_workers=0 to see the error in the main process"
        )

    def state_dict(self) -> dict[str, Any]:
        """The data position: ``{"iteration", "seed", "rank", "world_size", "batch_size", "num_skipped"}``."""
        return {
            "iteration": self.iteration,
            "seed": self.seed,
            "rank": self.rank,
            "world_size": self.world_size,
            "batch_size": self.batch_size,
            "num_skipped": self.num_skipped,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a saved position; the next batch is the one the saved run would have seen next."""
        for key in ("seed", "batch_size"):
            if key in state and state[key] != getattr(self, key):
                warnings.warn(f"data {key} changed on resume ({state[key]} → {getattr(self, key)})", stacklevel=2)
        self.iteration = int(state["iteration"])
        self.num_skipped = int(state.get("num_skipped", 0))
        self.close()

    def close(self) -> None:
        """Stop worker processes (a later ``next`` restarts them at the current iteration)."""
        self._it = None

    def __repr__(self) -> str:
        return (f"InfiniteLoader({self.dataset!r}, batch_size={self.batch_size}, rank={self.rank}/{self.world_size}, "
                f"iteration={self.iteration})")  # fmt: skip
