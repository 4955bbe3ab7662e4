"""DistributedDataParallel in the loop (2 gloo processes on CPU): the same weights as one process summing the
per-rank gradients, no Adam step for a parameter without gradient, a failing rank ends the other promptly."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from uda.config import load_config
from uda.engine import ddp

TINY = ["data.source.size=64x32", "data.target.size=64x32", "data.val.size=32x16", "eval.size=32x16",
        "data.source.options.num=8", "data.target.options.num=8", "data.val.options.num=2", "data.batch_size=1",
        "model.options.width=4", "trainer.tensorboard=false", "trainer.device=cpu", "trainer.eval_every=0",
        "trainer.log_every=1", "trainer.dist_timeout_s=60", "trainer.checkpoint_every=1000", "trainer.max_iters=2"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(rank: int, world: int, port: int) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)


def _train_worker(rank: int, world: int, port: int, out: str, name: str, extra: list[str]) -> None:
    _env(rank, world, port)
    from uda.engine import train

    def dump(tr):
        assert tr.ddp is not None and any(id(tr.model) == id(u) for u in tr.ddp.units)
        torch.save({k: p.detach().clone() for k, p in tr.recipe.named_parameters()}, f"{out}.rank{rank}.pt")

    train(load_config(name, [*TINY, *extra]), out, callbacks={"on_stage_end": [dump]})


def _reference(name: str, extra: list[str], out: str, world: int = 2) -> dict[str, torch.Tensor]:
    """One process: per step, the gradients of each rank's shard summed with weight 1/world (what DDP averages)."""
    from uda._utils import set_requires_grad
    from uda.data import InfiniteLoader
    from uda.engine import Trainer

    cfg = load_config(name, [*TINY, *extra])
    tr = Trainer(cfg, out)
    tr.build()
    t, accum = cfg.trainer, cfg.trainer.grad_accum
    kw = dict(batch_size=cfg.data.batch_size, world_size=world, num_workers=0, device=torch.device("cpu"))
    shards = [(InfiniteLoader(tr.source_ds, seed=t.seed, rank=r, **kw),
               InfiniteLoader(tr.target_ds, seed=t.seed + 7919, rank=r, **kw)) for r in range(world)]
    stage = tr.stages[-1]
    task, opts = stage.task, tr.optimizers[stage.name]
    tr.set_modes(stage)
    for _ in range(t.max_iters):
        opts["generator"].zero_grad(set_to_none=True)
        opts["discriminator"].zero_grad(set_to_none=True)
        for src_it, tgt_it in shards:
            for _ in range(accum):
                src, tgt = next(src_it), next(tgt_it)
                set_requires_grad(task.frozen_in_generator_phase(), False)
                g, state = task.generator_losses(src, tgt)
                (sum(g.values()) / (world * accum)).backward()
                set_requires_grad(task.frozen_in_generator_phase(), True)
                (sum(task.discriminator_losses(state).values()) / (world * accum)).backward()
        for key in ("generator", "discriminator"):
            opts[key].step()
            opts[key + "_sched"].step()
    return {k: p.detach().clone() for k, p in tr.recipe.named_parameters()}


@pytest.mark.slow
@pytest.mark.parametrize("name,extra", [
    ("advent_synthetic", []),
    ("advent_synthetic", ["trainer.grad_accum=2", "trainer.sequential_backward=true"]),
    ("adaptsegnet_synthetic", []),
    # MLFA: the multi-level feature discriminator (a unit inside the aligner), a fixed translator under no_grad
    ("mlfa_synthetic", ["recipe.translation=false", "data.source.size=128x64", "data.target.size=128x64"]),
])
def test_two_ranks_match_one_process_on_the_same_shards(tmp_path, name, extra):
    out = str(tmp_path / "run")
    mp.spawn(_train_worker, args=(2, _free_port(), out, name, extra), nprocs=2, join=True)
    a, b = torch.load(f"{out}.rank0.pt"), torch.load(f"{out}.rank1.pt")
    ref = _reference(name, extra, str(tmp_path / "ref"))
    assert a.keys() == ref.keys()
    for k in ref:
        assert torch.equal(a[k], b[k]), f"ranks differ in {k}"
        torch.testing.assert_close(a[k], ref[k], rtol=1e-4, atol=2e-6, msg=f"{k} differs from the reference")
    # the reference itself trains: the comparison is not between untouched weights
    fresh = dict(_fresh_params(name, extra))
    moved = sum(not torch.equal(fresh[k], ref[k]) for k in ref)
    assert moved >= len(ref) // 2


def _fresh_params(name, extra):
    from uda._registry import create

    cfg = load_config(name, [*TINY, *extra])
    torch.manual_seed(cfg.trainer.seed)
    model = create("model", cfg.model.name, num_classes=cfg.model.num_classes, pretrained=cfg.model.pretrained,
                   **cfg.model.options)
    recipe = create("recipe", cfg.recipe.name, cfg=cfg.recipe, model=model, num_classes=cfg.model.num_classes,
                    feature_info=model.feature_info)
    return recipe.named_parameters()


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.used = nn.Linear(3, 2)
        self.unused = nn.Linear(3, 2)  # never called: no gradient on any rank

    def forward(self, x):
        return self.used(x)


class _Task:
    """A minimal stage task: ``model`` called twice per step, plus a loose parameter outside every unit."""

    def __init__(self) -> None:
        self.model = _Net()
        self.loose = nn.Parameter(torch.ones(2))

    def frozen_in_generator_phase(self):
        return []

    def trained_modules(self):
        return [self.model]


def _router_worker(rank: int, world: int, port: int, out: str) -> None:
    _env(rank, world, port)
    import torch.distributed as dist

    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(0)
    task = _Task()
    router = ddp.DDPRouter([task], torch.device("cpu"))
    params = [*task.model.parameters(), task.loose]
    opt = torch.optim.Adam(params, lr=0.1)
    before = {k: v.detach().clone() for k, v in task.model.state_dict().items()}
    g = torch.Generator().manual_seed(1 + rank)
    x1, x2 = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    loss = task.model(x1).square().mean() + (task.model(x2) * task.loose).mean()  # two calls, one backward
    loss.backward()
    flags = router.finish(params, torch.tensor([float(rank == 1), 0.0]))
    opt.step()
    torch.save({"flags": flags, "after": task.model.state_dict(), "before": before, "loose": task.loose.detach(),
                "grad_none": task.model.unused.weight.grad is None, "x": (x1, x2)}, f"{out}.rank{rank}.pt")
    router.close()
    dist.destroy_process_group()


@pytest.mark.slow
def test_router_unused_parameter_keeps_no_gradient_and_loose_parameter_is_averaged(tmp_path):
    out = str(tmp_path / "r")
    mp.spawn(_router_worker, args=(2, _free_port(), out), nprocs=2, join=True)
    r0, r1 = torch.load(f"{out}.rank0.pt"), torch.load(f"{out}.rank1.pt")
    assert r0["flags"].tolist() == [1.0, 0.0]  # rank 1's flag reaches rank 0
    assert r0["grad_none"] and r1["grad_none"]
    for k in ("unused.weight", "unused.bias"):  # Adam did not move the parameter without gradient
        assert torch.equal(r0["after"][k], r0["before"][k])
    # independent reference: one process, plain autograd on both ranks' data, gradients averaged
    torch.manual_seed(0)
    net, loose = _Net(), nn.Parameter(torch.ones(2))
    opt = torch.optim.Adam([*net.parameters(), loose], lr=0.1)
    total = sum(net(x1).square().mean() + (net(x2) * loose).mean() for x1, x2 in (r0["x"], r1["x"])) / 2
    total.backward()
    opt.step()
    for k, v in net.state_dict().items():
        torch.testing.assert_close(r0["after"][k], v)
        torch.testing.assert_close(r1["after"][k], v)
    torch.testing.assert_close(r0["loose"], loose.detach())
    assert not torch.equal(r0["after"]["used.weight"], r0["before"]["used.weight"])


def test_units_of_a_recipe_are_model_and_discriminators_and_a_copy_is_not_routed():
    import copy

    from uda._registry import create

    cfg = load_config("advent_synthetic", TINY)
    model = create("model", cfg.model.name, num_classes=cfg.model.num_classes, **cfg.model.options)
    recipe = create("recipe", cfg.recipe.name, cfg=cfg.recipe, model=model, num_classes=cfg.model.num_classes,
                    feature_info=model.feature_info)
    units = ddp.find_units([recipe])
    assert units[0] is model
    assert {id(u) for u in units[1:]} == {id(d) for d in recipe.aligner.discriminators.values()}
    teacher = copy.deepcopy(model)
    for p in teacher.parameters():
        p.requires_grad_(False)
    assert teacher not in ddp.find_units([recipe])


def _fail_worker(rank: int, world: int, port: int, out: str, where: str) -> None:
    _env(rank, world, port)
    from uda.engine import train

    def boom(tr):
        if tr.global_iter == 2 and ((where == "step" and rank == 1) or (where == "checkpoint" and rank == 0)):
            with open(f"{out}.failed_at", "w") as f:
                f.write(str(time.time()))
            raise RuntimeError(f"rank {rank} failed on purpose")

    cfg = load_config("advent_synthetic", [*TINY, "trainer.max_iters=50", "trainer.checkpoint_every=2"])
    event = "on_step_end" if where == "step" else "on_checkpoint"
    train(cfg, out, callbacks={event: [boom]})


@pytest.mark.slow
@pytest.mark.parametrize("where", ["step", "checkpoint"])
def test_a_failing_rank_ends_the_other_within_seconds(tmp_path, where):
    ctx = mp.get_context("spawn")
    port, out = _free_port(), str(tmp_path / "run")
    procs = [ctx.Process(target=_fail_worker, args=(r, 2, port, out, where)) for r in range(2)]
    for p in procs:
        p.start()
    ended = {}
    deadline = time.time() + 120
    while len(ended) < 2 and time.time() < deadline:
        for i, p in enumerate(procs):
            if i not in ended and not p.is_alive():
                ended[i] = time.time()
        time.sleep(0.05)
    for p in procs:
        if p.is_alive():
            p.kill()
        p.join()
    assert len(ended) == 2, "a rank hung after its peer failed"
    assert all(p.exitcode != 0 for p in procs)
    failed_at = float(Path(f"{out}.failed_at").read_text())
    assert max(ended.values()) - failed_at < 15, "the surviving rank waited for the collective timeout"
