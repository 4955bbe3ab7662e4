"""DistributedDataParallel for every trained module of a recipe, correct with the two-phase adversarial update.

The recipes call their networks directly (``self.model(x)``, ``self.discriminators[level](x)``), several
times per iteration, with the discriminators frozen in the generator phase. [DDPRouter][uda.engine.ddp.DDPRouter]
wraps each trained network ("unit": the segmentation network, every discriminator, the translators' generators
and discriminators, extra heads) in a ``torch.nn.parallel.DistributedDataParallel`` and routes the unit's own
calls through its wrapper, so no recipe changes:

- a call with autograd on and at least one trainable parameter goes through the wrapper: its gradients are
  reduced in buckets, overlapped with the backward pass (PyTorch's DDP reducer);
- a call of a frozen unit (the discriminators in the generator phase: ``requires_grad=False``) or under
  ``torch.no_grad`` (pseudo-labels, evaluation, pictures) runs the plain module, so the reducer of a frozen
  network never waits for gradients that cannot come;
- ``find_unused_parameters=True``: a parameter without a gradient on every rank keeps ``grad=None`` (it is not
  reduced as zeros), so Adam does not move it — exactly as in one process;
- [DDPRouter.micro_batch][uda.engine.ddp.DDPRouter.micro_batch] enters ``no_sync`` for all but the last
  micro-batch of an accumulated step (and for the source part of a sequential backward);
- [DDPRouter.finish][uda.engine.ddp.DDPRouter.finish] runs one small all-reduce that carries the per-rank flags
  (non-finite loss, stop signal) and, for any trained parameter whose unit was not called through a wrapper
  this step, a presence mask followed by the plain average of those gradients (a safety net: no gradient is
  ever left unreduced).

Teachers (EMA copies) and frozen networks are not wrapped: a unit needs trainable parameters, and routing is
looked up by object identity, so a ``copy.deepcopy`` of a unit calls its own plain forward.

Reference: Li et al., "PyTorch Distributed: Experiences on Accelerating Data Parallel Training", VLDB 2020.
"""

from __future__ import annotations

import contextlib
import types
from collections.abc import Iterable, Iterator
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

_ROUTES: dict[int, DDPRouter] = {}


def _routed_forward(self: nn.Module, *args: Any, **kwargs: Any) -> Any:
    router = _ROUTES.get(id(self))
    if router is None:  # a deepcopy (EMA teacher) or an unwrapped module
        return type(self).forward(self, *args, **kwargs)
    return router._call(self, args, kwargs)


def _has_trainable(m: nn.Module) -> bool:
    return any(p.requires_grad for p in m.parameters())


def find_units(tasks: Iterable[Any]) -> list[nn.Module]:
    """The networks of ``tasks`` that get a DDP wrapper (called as modules, with trainable parameters).

    A unit is the task's ``model``, each module of ``frozen_in_generator_phase()`` (discriminators), and each
    child of a trained container (aligner, translator) that holds trainable parameters and does not contain a
    unit found otherwise (containers such as a ``ModuleDict`` of discriminators are searched recursively).

    Args:
        tasks: stage tasks (see `uda.recipes.Task`).

    Returns:
        The units, without duplicates, in a deterministic order (identical on every rank).
    """
    units: list[nn.Module] = []
    seen: set[int] = set()

    def add(m: nn.Module) -> None:
        if id(m) not in seen and _has_trainable(m):
            seen.add(id(m))
            units.append(m)

    for task in tasks:
        model = getattr(task, "model", None)
        named = ([model] if isinstance(model, nn.Module) else []) + list(task.frozen_in_generator_phase())
        for m in named:
            add(m)
        named_ids = {id(m) for m in named}
        for container in task.trained_modules():
            if id(container) in named_ids:
                continue
            stack = list(container.children())
            while stack:
                c = stack.pop(0)
                if id(c) in named_ids:
                    continue
                inner = {id(x) for x in c.modules()}
                if inner & named_ids:
                    stack = list(c.children()) + stack
                else:
                    add(c)
    return units


class DDPRouter:
    """DDP wrappers for the units of a recipe's stages, and the per-step bookkeeping of the loop.

    Args:
        tasks: the tasks of every stage (units are wrapped once, at build time, on every rank in the same order).
        device: this rank's device (``cuda:N`` → ``device_ids=[N]``).
        bucket_cap_mb: DDP bucket size.

    It needs an initialised process group; tests/engine/test_ddp.py trains with it on two gloo ranks.
    """

    def __init__(self, tasks: Iterable[Any], device: torch.device, *, bucket_cap_mb: float = 25.0) -> None:
        self.units = find_units(tasks)
        self.wrappers: dict[int, DistributedDataParallel] = {}
        self._inside: set[int] = set()
        self._used: set[int] = set()
        ids = [device.index] if device.type == "cuda" else None
        for m in self.units:
            # broadcast_buffers=False: BatchNorm statistics stay per rank (as before); frozen BN has none to sync.
            self.wrappers[id(m)] = DistributedDataParallel(
                m, device_ids=ids, find_unused_parameters=True, broadcast_buffers=False,
                bucket_cap_mb=bucket_cap_mb)
            m.forward = types.MethodType(_routed_forward, m)
            _ROUTES[id(m)] = self

    def close(self) -> None:
        """Remove the routing (the modules call their own forward again)."""
        for m in self.units:
            _ROUTES.pop(id(m), None)
            if "forward" in m.__dict__:
                del m.forward
        self.wrappers.clear()

    def _call(self, m: nn.Module, args: tuple, kwargs: dict) -> Any:
        key = id(m)
        if key in self._inside or not torch.is_grad_enabled() or not _has_trainable(m):
            return type(m).forward(m, *args, **kwargs)
        wrapper = self.wrappers[key]
        if wrapper.require_backward_grad_sync:  # outside no_sync: DDP reduces this unit's gradients
            self._used.add(key)
        self._inside.add(key)
        try:
            return wrapper(*args, **kwargs)
        finally:
            self._inside.discard(key)

    @contextlib.contextmanager
    def micro_batch(self, sync: bool) -> Iterator[None]:
        """Forward + backward of one part of a step; ``sync=False`` accumulates locally (``no_sync``)."""
        if sync:
            yield
            return
        with contextlib.ExitStack() as stack:
            for w in self.wrappers.values():
                stack.enter_context(w.no_sync())
            yield

    def finish(self, params: list[nn.Parameter], flags: torch.Tensor) -> torch.Tensor:
        """After the last backward of a step: agree on ``flags`` and reduce the gradients DDP did not see.

        Args:
            params: every parameter the optimizers step (duplicates allowed).
            flags: (k,) float tensor of per-rank flags (e.g. non-finite, stop).

        Returns:
            The flags summed over ranks.
        """
        covered = {id(p) for m in self.units if id(m) in self._used for p in m.parameters()}
        self._used.clear()
        rest = [p for p in {id(p): p for p in params}.values() if id(p) not in covered]
        device = flags.device
        mask = torch.tensor([float(p.grad is not None) for p in rest], device=device)
        head = torch.cat([flags.float(), mask])
        dist.all_reduce(head)
        k = flags.numel()
        present = [p for p, n in zip(rest, head[k:].tolist()) if n > 0]
        if present:
            world = dist.get_world_size()
            grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in present]
            flat = torch.cat([g.reshape(-1).float() for g in grads])
            dist.all_reduce(flat)
            offset = 0
            for p, g in zip(present, grads):
                n = g.numel()
                p.grad = (flat[offset:offset + n] / world).view_as(g).to(g.dtype)
                offset += n
        return head[:k]


def micro_batch(router: DDPRouter | None, sync: bool) -> contextlib.AbstractContextManager:
    """``router.micro_batch(sync)``, or a no-op for a single process."""
    return router.micro_batch(sync) if router is not None else contextlib.nullcontext()
