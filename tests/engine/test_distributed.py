"""Two gloo processes on CPU: gradients averaged (identical models), rank 0 writes, a failing rank stops the group."""

from __future__ import annotations

import json
import os
import socket
import time

import torch
import torch.multiprocessing as mp

from uda.config import load_config

TINY = ["data.source.size=64x32", "data.target.size=64x32", "data.val.size=64x32", "eval.size=64x32",
        "data.source.options.num=8", "data.target.options.num=8", "data.val.options.num=2", "data.batch_size=1",
        "model.options.width=4", "trainer.tensorboard=false", "trainer.device=cpu", "trainer.eval_every=0",
        "trainer.log_every=1", "trainer.dist_timeout_s=30"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out: str, name: str, fail_rank: int) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from uda.engine import train

    def boom(tr):
        if tr.dist.rank == fail_rank and tr.global_iter == 2:
            raise RuntimeError(f"rank {rank} failed on purpose")

    def dump(tr):
        torch.save({k: v.detach().clone() for k, v in tr.model.state_dict().items() if isinstance(v, torch.Tensor)},
                   f"{out}.rank{rank}.pt")

    cfg = load_config(name, [*TINY, "trainer.max_iters=3"])
    train(cfg, out, callbacks={"on_step_end": [boom], "on_train_end": [dump]})


def test_two_gloo_ranks_train_identical_models(tmp_path):
    out = str(tmp_path / "run")
    mp.spawn(_worker, args=(2, _free_port(), out, "adaptsegnet_synthetic", -1), nprocs=2, join=True)
    a, b = torch.load(f"{out}.rank0.pt"), torch.load(f"{out}.rank1.pt")
    assert all(torch.equal(a[k], b[k]) for k in a if a[k].is_floating_point() and "running" not in k)
    assert json.loads((tmp_path / "run" / "final.json").read_text())["num_images"] == 2  # reduced across ranks
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len([x for x in lines if '"loss"' in x]) == 3  # rank 0 writes alone


def test_failing_rank_stops_the_other_instead_of_hanging(tmp_path):
    ctx = mp.get_context("spawn")
    port = _free_port()
    procs = [ctx.Process(target=_worker, args=(r, 2, port, str(tmp_path / "run"), "source_only_synthetic", 1))
             for r in range(2)]
    start = time.monotonic()
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    alive = [p.is_alive() for p in procs]
    for p in procs:
        if p.is_alive():
            p.kill()
    assert not any(alive), "a rank hung after its peer failed"
    assert procs[1].exitcode != 0 and procs[0].exitcode != 0
    assert time.monotonic() - start < 120
