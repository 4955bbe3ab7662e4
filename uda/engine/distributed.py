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
import time
import uuid
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class DistInfo:
    """Rank, world size and local rank of this process (``world_size == 1``: not distributed).

    ``restarted``: this process is a worker that torchrun restarted (on any node of the group: every rank of a
    group agrees, see `init_distributed`); the run then continues from its last checkpoint.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    restarted: bool = False

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_info() -> DistInfo:
    """Read ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` (set by torchrun); ``restarted`` from this process's own
    ``TORCHELASTIC_RESTART_COUNT`` (the group-wide answer comes from `init_distributed`)."""
    return DistInfo(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                    int(os.environ.get("LOCAL_RANK", 0)), int(os.environ.get("TORCHELASTIC_RESTART_COUNT", 0)) > 0)


def _fresh_epoch(store: dist.Store, info: DistInfo, timeout_s: float) -> int:
    """Agree on a number that names this worker group in torchrun's agent store, fresh for every group.

    The agent's store outlives the workers (several rendezvous rounds use it) and no variable that torchrun gives
    the workers names the round: ``TORCHELASTIC_RESTART_COUNT`` counts only the restarts of the node's own agent
    (after a failure on one node, the other agents restart their workers for the new round without counting).
    Rank 0 takes the next number from a counter in the store and hands it to every other rank of its group: each
    of them posts a random token (``uda/hello/<rank>``, re-posted until answered) and waits for rank 0's answer
    under that token. Rank 0 first deletes the tokens left by a previous group, whose processes are gone (torchrun
    stops all workers before the next rendezvous round starts new ones), so only the live ranks are answered.
    """
    deadline = time.monotonic() + timeout_s
    if info.rank == 0:
        epoch = store.add("uda/epoch", 1)
        for r in range(1, info.world_size):
            store.delete_key(f"uda/hello/{r}")
        pending = set(range(1, info.world_size))
        while pending:
            for r in sorted(pending):
                if store.check([f"uda/hello/{r}"]):
                    token = store.get(f"uda/hello/{r}").decode()
                    store.set(f"uda/ack/{token}", str(epoch))
                    pending.discard(r)
            if pending:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"rank 0: ranks {sorted(pending)} did not join within {timeout_s:.0f} s")
                time.sleep(0.02)
        return epoch
    token = uuid.uuid4().hex
    while True:
        store.set(f"uda/hello/{info.rank}", token)
        if store.check([f"uda/ack/{token}"]):
            return int(store.get(f"uda/ack/{token}").decode())
        if time.monotonic() > deadline:
            raise RuntimeError(f"rank {info.rank}: rank 0 did not answer within {timeout_s:.0f} s")
        time.sleep(0.02)


def init_distributed(device: torch.device, timeout_s: int = 600) -> DistInfo:
    """Join the process group described by the environment (no-op for a single process).

    Args:
        device: this rank's device; CUDA selects NCCL, otherwise gloo.
        timeout_s: collective timeout in seconds.

    Returns:
        This process's [`DistInfo`][uda.engine.distributed.DistInfo], with ``restarted`` agreed by all ranks.
    """
    info = env_info()
    if not info.enabled or (dist.is_available() and dist.is_initialized()):
        return info
    backend = "nccl" if device.type == "cuda" else "gloo"
    timeout = datetime.timedelta(seconds=timeout_s)
    attempt = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", 0))
    epoch = 1
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE", "").lower() == "true" and "MASTER_ADDR" in os.environ:
        # torchrun's agent hosts the store and keeps it across restarts and rendezvous rounds: a restarted group
        # must not read the previous group's peer addresses, so each group builds on its own key space.
        store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), info.world_size,
                              is_master=False, timeout=timeout)
        epoch = _fresh_epoch(store, info, timeout_s)
        dist.init_process_group(backend=backend, store=dist.PrefixStore(f"uda/epoch_{epoch}", store),
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
    # A restart anywhere restarts the whole group: if any rank's agent counted one (or the store has seen an
    # earlier group), every rank continues the run from its checkpoint.
    flag = torch.tensor([int(info.restarted or epoch > 1)], device=device if backend == "nccl" else "cpu")
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    info.restarted = bool(flag.item())
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
