"""Parts of one optimizer step: the generator phase (joint or sequential backward), applying the updates
(clipping, AMP scaler) or skipping a non-finite one.

Used by `uda.engine.trainer.Trainer.train_step` after the backward passes and the (multi-process) agreement
on the non-finite and stop flags.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch

from .._errors import NonFiniteLossError
from ..recipes.task import Batch, Losses, Stage
from .callbacks import nonfinite_advice

if TYPE_CHECKING:  # pragma: no cover
    from .trainer import Trainer


def generator_phase(tr: Trainer, task: Any, src: Batch, tgt: Batch) -> tuple[Losses, Any]:
    """The generator losses of one micro-batch, backpropagated at once, or part by part (source, then target)
    with ``trainer.sequential_backward`` (`uda.recipes.Recipe.generator_loss_parts`)."""
    k = tr.cfg.trainer.grad_accum
    if not tr.cfg.trainer.sequential_backward or not hasattr(task, "generator_loss_parts"):
        with tr.autocast:
            losses, state = task.generator_losses(src, tgt)
        tr.backward(sum(losses.values()) / k)
        return losses, state
    parts, losses = task.generator_loss_parts(src, tgt), {}
    while True:
        try:
            with tr.autocast:
                part = next(parts)
        except StopIteration as stop:
            return losses, stop.value
        losses.update(part)
        tr.backward(sum(part.values()) / k)


def apply_updates(tr: Trainer, stage: Stage, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer | None) -> None:
    """Clip (``optim.*.grad_clip``, on unscaled gradients under fp16) and step both optimizers."""
    for opt, ocfg in ((opt_g, stage.generator_optim), (opt_d, stage.discriminator_optim)):
        if opt is None:
            continue
        if ocfg.grad_clip:
            if tr.scaler.is_enabled():
                tr.scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], ocfg.grad_clip)
        tr.scaler.step(opt) if tr.scaler.is_enabled() else opt.step()
    if tr.scaler.is_enabled():
        tr.scaler.update()


def skip_nonfinite(tr: Trainer, stage: Stage, names: list[str], values: torch.Tensor, *opts: Any) -> None:
    """A non-finite loss: stop with the first non-finite loss named (``trainer.nonfinite="stop"``), or drop
    the step's gradients and count it (``"skip"``)."""
    pairs = zip(names, values.tolist())
    name, val = next(((n, v) for n, v in pairs if not math.isfinite(v)), ("(other rank)", math.nan))
    if tr.cfg.trainer.nonfinite == "stop":
        raise NonFiniteLossError(
            f"non-finite loss '{name}' = {val} at iteration {tr.global_iter + 1} (stage {stage.name}); "
            f"last good checkpoint: {tr.last_checkpoint or 'none'}; {nonfinite_advice(tr.cfg, tr.model)}")
    tr.skipped += 1
    for o in filter(None, opts):
        o.zero_grad(set_to_none=True)
