"""The exponential-moving-average (mean) teacher of self-training UDA.

Papers: Tarvainen & Valpola, "Mean teachers are better role models", NeurIPS 2017; Tranheden et al., "DACS:
Domain Adaptation via Cross-domain Mixed Sampling", WACV 2021 (α = 0.99); Hoyer et al., "DAFormer: Improving
Network Architectures and Training Strategies for Domain-Adaptive Semantic Segmentation", CVPR 2022 (α = 0.999).
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from .._errors import ConfigError
from .._registry import register

BUFFER_MODES = ("ema", "copy", "keep", "batch")


def ema_alpha(step: int, alpha: float) -> float:
    """The teacher's momentum after optimizer step ``step``: ``min(1 − 1/(step + 1), alpha)``.

    Step 0 gives 0 (the teacher becomes a copy of the student), step 1 gives 0.5, step 2 gives 2/3, …, until the
    ramp reaches ``alpha``.

    Example:
        >>> [round(ema_alpha(t, 0.99), 4) for t in (0, 1, 2, 99, 1000)]
        [0.0, 0.5, 0.6667, 0.99, 0.99]
    """
    return min(1.0 - 1.0 / (step + 1), alpha)


@register("teacher", "ema")
class EMATeacher(nn.Module):
    """A frozen, always-eval copy of a student network, updated as an exponential moving average of it.

    The teacher is a deep copy of ``student`` taken at construction (step 0), with ``requires_grad=False`` on every
    parameter, so a recipe carries it (moved to the device, checkpointed with the recipe, never optimized).
    ``train()`` is overridden to keep it in eval mode: dropout and drop-path are off and batch norm uses its
    running statistics (the batch's with ``buffers="batch"``). ``forward`` runs under ``torch.no_grad()``.

    ``update(student, step)`` sets every parameter to ``α_t·teacher + (1 − α_t)·student`` with
    ``α_t = min(1 − 1/(step + 1), alpha)``; call it after the optimizer step ``step`` (1-based: the recipe's
    ``after_step(step)`` hook), which is when and how the original DAFormer code updates its teacher. The
    original DACS code passes its 0-based iteration instead: ``update(student, step - 1)`` reproduces it (its first
    update copies the student).

    Buffers (batch-norm running mean/var): the originals average parameters only and run the teacher with
    batch statistics; in eval mode the running statistics are used and must follow the student. ``buffers="ema"``
    (default) averages floating-point buffers with the same α_t; ``"copy"`` copies the student's; ``"keep"`` leaves
    them (the originals' parameters-only update). ``"batch"`` is the originals'
    behaviour: batch-norm layers normalise with the statistics of the batch the teacher sees (the target images),
    never touching their running statistics, and the update leaves the buffers alone; dropout and drop-path stay
    off. Integer buffers (``num_batches_tracked``) are always copied.

    Args:
        student: the network to follow (not modified).
        alpha: the EMA momentum ceiling, 0.99 (DACS) or 0.999 (DAFormer).
        buffers: ``"ema"``, ``"copy"``, ``"keep"`` or ``"batch"`` (see above).

    Shape:
        Whatever the student takes and returns.

    Example:
        >>> import torch, uda
        >>> student = torch.nn.Linear(2, 1)
        >>> teacher = uda.create("teacher", "ema", student=student, alpha=0.99)
        >>> teacher.update(student, step=1)  # in the recipe's after_step(step); returns α_t
        0.5
        >>> teacher.training, teacher(torch.zeros(1, 2)).requires_grad
        (False, False)
    """

    def __init__(self, student: nn.Module, *, alpha: float = 0.999, buffers: str = "ema") -> None:
        super().__init__()
        if not 0.0 <= alpha <= 1.0:
            raise ConfigError(f"EMA teacher: alpha must lie in [0, 1], got {alpha}")
        if buffers not in BUFFER_MODES:
            raise ConfigError(f"EMA teacher: buffers must be one of {', '.join(BUFFER_MODES)}, got {buffers!r}")
        self.alpha, self.buffer_mode = float(alpha), buffers  # not `buffers`: nn.Module.buffers() stays callable
        self.module = copy.deepcopy(student)
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.train(False)
        # buffers="batch": the batch norms switched to batch statistics in every forward (found once, not per step)
        self._norms = [m for m in self.module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]

    def train(self, mode: bool = True) -> EMATeacher:
        """Keep the teacher in eval mode whatever ``mode`` says."""
        return super().train(False)

    @torch.no_grad()
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if self.buffer_mode != "batch":
            return self.module(*args, **kwargs)
        with _batch_statistics(self._norms):
            try:
                return self.module(*args, **kwargs)
            except ValueError as e:
                if "more than 1 value per channel" not in str(e):
                    raise
                raise ConfigError("EMA teacher: buffers='batch' normalises with batch statistics, which a batch "
                                  "norm after global pooling cannot take from one image; use a batch of 2 or "
                                  "more, or recipe.teacher_buffers=ema") from e

    @torch.no_grad()
    def update(self, student: nn.Module, step: int) -> float:
        """Move the teacher toward ``student`` after optimizer step ``step``; returns the α_t used.

        Under torchrun every rank calls it after the same step: the parameters already agree (all-reduced
        gradients), and with ``buffers="ema"`` or ``"copy"`` the floating-point buffers (per-rank batch-norm
        statistics) are then averaged over the ranks, so every rank keeps one teacher.

        Raises:
            ConfigError: when ``student`` does not have the teacher's parameters and buffers.
        """
        a = ema_alpha(int(step), self.alpha)
        t_params, s_params = list(self.module.parameters()), list(student.parameters())
        t_bufs, s_bufs = list(self.module.buffers()), list(student.buffers())
        if len(t_params) != len(s_params) or len(t_bufs) != len(s_bufs):
            raise ConfigError("EMA teacher: the student's parameters/buffers differ from the teacher's; "
                              "build the teacher from this student")  # fmt: skip
        tp = [p.data for p in t_params]
        sp = [p.data.to(p.dtype) for p in s_params]
        torch._foreach_mul_(tp, a)
        torch._foreach_add_(tp, sp, alpha=1.0 - a)
        for tb, sb in zip(t_bufs, s_bufs):
            if not tb.dtype.is_floating_point:
                tb.copy_(sb)
            elif self.buffer_mode == "ema":
                tb.mul_(a).add_(sb.to(tb.dtype), alpha=1.0 - a)
            elif self.buffer_mode == "copy":
                tb.copy_(sb)
        if self.buffer_mode in ("ema", "copy"):  # "keep" and "batch" leave the buffers as built
            self._average_buffers_over_ranks()
        return a

    def _average_buffers_over_ranks(self) -> None:
        """Average the floating-point buffers over the ranks of the process group (none: nothing to do)."""
        if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
            return
        bufs = [b for b in self.module.buffers() if b.dtype.is_floating_point]
        if bufs:
            flat = torch.cat([b.reshape(-1) for b in bufs])
            torch.distributed.all_reduce(flat)
            flat /= torch.distributed.get_world_size()
            for b, avg in zip(bufs, flat.split([b.numel() for b in bufs])):
                b.copy_(avg.view_as(b))


@contextlib.contextmanager
def _batch_statistics(norms: list[nn.Module]) -> Iterator[None]:
    """These batch norms normalise with the batch's own statistics and leave their running statistics as they are."""
    saved = [(m.training, m.track_running_stats) for m in norms]
    for m in norms:
        m.training, m.track_running_stats = True, False  # batch statistics; running_mean/var are not passed on
    try:
        yield
    finally:
        for m, (training, track) in zip(norms, saved):
            m.training, m.track_running_stats = training, track


__all__ = ["EMATeacher", "ema_alpha"]
