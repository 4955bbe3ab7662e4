"""Multi-process training through ``torchrun``: the process group from the environment (one or many nodes).

``torchrun --nproc-per-node N -m uda train NAME`` starts N processes with ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK`` set (several nodes: ``--nnodes M --rdzv-backend c10d --rdzv-endpoint HOST:PORT``). Each rank
reads its own data stream (``InfiniteLoader(rank=, world_size=)``); the gradients of every trained network are
averaged by DistributedDataParallel (``uda.engine.ddp``), and one small all-reduce carries the non-finite and
stop flags, so all ranks take the same decision (step, skip, stop) at the same iteration. Rank 0 writes files.
NCCL on CUDA,
gloo on CPU; the group's timeout is ``trainer.dist_timeout_s``, so a failed rank ends the others with an
error instead of a hang.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class DistInfo:
    """Rank, world size and local rank of this process (``world_size == 1``: not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_info() -> DistInfo:
    """Read ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` (set by torchrun)."""
    return DistInfo(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                    int(os.environ.get("LOCAL_RANK", 0)))


def init_distributed(device: torch.device, timeout_s: int = 600) -> DistInfo:
    """Join the process group described by the environment (no-op for a single process).

    Args:
        device: this rank's device; CUDA selects NCCL, otherwise gloo.
        timeout_s: collective timeout in seconds.

    Returns:
        This process's [`DistInfo`][uda.engine.distributed.DistInfo].
    """
    info = env_info()
    if not info.enabled or (dist.is_available() and dist.is_initialized()):
        return info
    backend = "nccl" if device.type == "cuda" else "gloo"
    timeout = datetime.timedelta(seconds=timeout_s)
    attempt = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", 0))
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE", "").lower() == "true" and "MASTER_ADDR" in os.environ:
        # torchrun's agent hosts the store and keeps it across restarts, so a restarted group must not read the
        # previous attempt's peer addresses. The restart count cannot name the attempt: with several nodes only
        # the failed node's agent counts a restart (the others restart their workers for the new rendezvous
        # round without counting). Every rank counts its own joins in the store instead; all ranks of one
        # attempt reach the same count, which names a fresh key space.
        store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), info.world_size,
                              is_master=False, timeout=timeout)
        generation = store.add(f"uda/joins/rank_{info.rank}", 1) - 1
        dist.init_process_group(backend=backend, store=dist.PrefixStore(f"uda/generation_{generation}", store),
                                rank=info.rank, world_size=info.world_size, timeout=timeout)
    elif attempt > 0 and "MASTER_ADDR" in os.environ:
        # After an elastic restart the agent's store still holds the previous attempt's peer addresses;
        # a fresh key space per attempt keeps the new group from connecting to dead peers.
        store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), info.world_size,
                              is_master=False, timeout=timeout)
        dist.init_process_group(backend=backend, store=dist.PrefixStore(f"uda/attempt_{attempt}", store),
                                rank=info.rank, world_size=info.world_size, timeout=timeout)
    else:
        dist.init_process_group(backend=backend, timeout=timeout)
    return info


def cleanup() -> None:
    """Leave the process group if one is active."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def broadcast_parameters(modules: list[torch.nn.Module]) -> None:
    """Copy rank 0's parameters and buffers to every rank (identical start)."""
    if not (dist.is_available() and dist.is_initialized()):
        return
    with torch.no_grad():
        for m in modules:
            for t in list(m.parameters()) + list(m.buffers()):
                dist.broadcast(t.data, src=0)


def barrier() -> None:
    """Synchronize ranks (no-op for a single process)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
