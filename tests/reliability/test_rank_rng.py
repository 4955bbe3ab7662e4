"""Under torch.distributed every rank's RNG state is saved and restored: two gloo ranks on CPU, interrupted and
resumed, equal the uninterrupted two-rank run (whole checkpoint, both ranks' RNG states)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket

import pytest
import torch
import torch.multiprocessing as mp

from uda._io import load_checkpoint

from .conftest import same, tiny_config

OVER = ("data.augmentation=standard", "data.batch_size=1", "trainer.max_iters=4", "trainer.checkpoint_every=100",
        "trainer.dist_timeout_s=30")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, port: int, out: str, interrupt_at: int, resume: bool) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2",
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from uda.engine import TrainingInterrupted, train

    def stop(tr) -> None:
        if tr.dist.rank == 0 and tr.global_iter == interrupt_at:
            tr.signal = signal.SIGTERM

    with contextlib.suppress(TrainingInterrupted):
        train(tiny_config("source_only_synthetic", *OVER), out, resume=resume, callbacks={"on_step_end": [stop]})


def _run(out, interrupt_at: int = -1, resume: bool = False) -> None:
    mp.spawn(_worker, args=(_free_port(), str(out), interrupt_at, resume), nprocs=2, join=True)


@pytest.mark.slow
def test_each_rank_rng_state_saved_and_restored(tmp_path) -> None:
    _run(tmp_path / "straight")
    _run(tmp_path / "resumed", interrupt_at=2)
    mid = load_checkpoint(tmp_path / "resumed" / "checkpoints" / "last.pt")
    assert mid["global_iter"] == 3 and len(mid["rng"]) == 2  # the stop flag travels with the next step's all-reduce
    assert not torch.equal(mid["rng"][0]["torch"], mid["rng"][1]["torch"])  # per-rank streams (seed + rank)
    _run(tmp_path / "resumed", resume=True)
    a = load_checkpoint(tmp_path / "straight" / "checkpoints" / "last.pt")
    b = load_checkpoint(tmp_path / "resumed" / "checkpoints" / "last.pt")
    assert a["global_iter"] == b["global_iter"] == 4
    assert same(a, b)
