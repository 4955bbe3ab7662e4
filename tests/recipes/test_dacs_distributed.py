"""Two gloo processes on CPU: the `dacs` EMA teacher stays identical on every rank (parameters and BN statistics).

With ``recipe.teacher_buffers=ema`` (running statistics that follow the student, averaged over the ranks); the
default ``batch`` teacher never uses its running statistics.
"""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from uda.config import load_config

TINY = ["data.source.size=64x32", "data.target.size=64x32", "data.val.size=64x32", "eval.size=64x32",
        "data.source.options.num=8", "data.target.options.num=8", "data.val.options.num=2", "data.batch_size=2",
        "model.options.width=4", "trainer.tensorboard=false", "trainer.device=cpu", "trainer.eval_every=0",
        "trainer.log_every=1", "trainer.dist_timeout_s=30", "trainer.max_iters=3", "recipe.teacher_buffers=ema"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from uda.engine import train

    def dump(tr):
        state = {k: v.detach().clone() for k, v in tr.recipe.state_dict().items() if isinstance(v, torch.Tensor)}
        torch.save(state, f"{out}.rank{rank}.pt")

    train(load_config("dacs_synthetic", TINY), out, callbacks={"on_train_end": [dump]})


@pytest.mark.slow
def test_two_gloo_ranks_keep_one_teacher(tmp_path):
    out = str(tmp_path / "run")
    mp.spawn(_worker, args=(2, _free_port(), out), nprocs=2, join=True)
    a, b = torch.load(f"{out}.rank0.pt"), torch.load(f"{out}.rank1.pt")
    teacher = [k for k in a if k.startswith("mix.teacher.") and a[k].is_floating_point()]
    assert any("running_mean" in k for k in teacher)
    for k in teacher:
        assert torch.equal(a[k], b[k]), k
    # the ranks saw different data: their students' BN statistics differ, the teachers' were averaged
    assert not all(torch.equal(a[k], b[k]) for k in a if k.startswith("model.") and "running_mean" in k)
    # and the teacher moved away from its initial copy (three EMA updates)
    assert not all(torch.equal(a[k], a[k.replace("mix.teacher.module.", "model.")]) for k in teacher)
