"""The one training loop of ``uda``, shared by every recipe and every stage.

Per iteration (the update order of AdaptSegNet, Tsai et al., CVPR 2018, and ADVENT, Vu et al., CVPR 2019):
zero the gradients → freeze the task's ``frozen_in_generator_phase()`` modules → backward of the
generator-side losses (segmentation + λ·adversarial) → unfreeze → backward of the discriminator losses on the
detached maps of this iteration → (all-reduce) → non-finite check → clip → optimizer steps → the task's
``after_step`` → schedules. Counted in iterations over paired infinite source/target iterators; a recipe only
supplies the named losses (see `uda.recipes.Task`). MLFA's translator stage runs through the same loop.

The parts are built by `uda.engine.build.build_parts`; checkpoints, logging, progress, the evaluation schedule,
pictures and the report are callbacks (`uda.engine.callbacks`) on the loop's events.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from .._errors import UdaError
from .._io import atomic_write_text
from .._utils import resolve_device, set_requires_grad
from ..config import ExperimentConfig
from ..recipes.task import Batch, Stage
from . import callbacks as C
from . import distributed as D
from .build import build_parts, check_writable
from .callbacks import EVENTS, StepLosses
from .checkpoint import release_finished_stage
from .ddp import micro_batch
from .loggers import build_loggers, logger_names
from .rundir import prepare_run_dir
from .step import apply_updates, generator_phase, skip_nonfinite


class Trainer:
    """Trains an `ExperimentConfig`'s recipe through its stages, emitting events to callbacks.

    Args:
        cfg: the resolved experiment config.
        out_dir: the run directory (config.yaml, command.txt, metrics.jsonl, checkpoints/, final.json,
            report, pictures/).
        resume: continue from the newest valid checkpoint in ``out_dir/checkpoints``.
        overwrite: ``out_dir`` may hold another run: it is moved aside (see `uda.engine.rundir`).
        device: overrides ``cfg.trainer.device`` (``auto``, ``cpu``, ``cuda``, ``cuda:N``).

    Example:
        >>> from uda.config import load_config
        >>> cfg = load_config("source_only_synthetic", ["trainer.max_iters=2"])  # doctest: +SKIP
        >>> Trainer(cfg, "runs/demo").fit()["miou"]  # doctest: +SKIP
    """

    def __init__(self, cfg: ExperimentConfig, out_dir: str | os.PathLike, *, resume: bool = False,
                 overwrite: bool = False, device: str | torch.device | None = None) -> None:
        self.cfg = cfg
        self.out_dir = Path(out_dir)
        self._callbacks: dict[str, list[tuple[int, Callable[[Trainer], Any]]]] = defaultdict(list)
        self._objects: list[C.Callback] = []
        info = D.env_info()
        self.device = resolve_device(device or cfg.trainer.device, info.local_rank)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        self.dist = D.init_distributed(self.device, cfg.trainer.dist_timeout_s)
        # An elastic restart (torchrun --max-restarts; of this or another node) continues from the last checkpoint.
        self.elastic_restart = self.dist.restarted
        self.resume = resume or self.elastic_restart
        self.overwrite = overwrite
        self.stage_idx = self.stage_iter = self.global_iter = self.skipped = 0
        self.last_checkpoint: Path | None = None
        self.last_losses: dict[str, float] = {}
        self.last_eval: dict[str, Any] = {}
        self.last_step = StepLosses([], torch.zeros(0))
        self.signal: int | None = None
        self._stop = False
        self.checkpointer = C.Checkpointer()
        self.metrics: C.MetricsLogger | None = None
        self._built = False

    def add_callback(self, event: str, fn: Callable[[Trainer], Any], order: int = 0) -> None:
        """Call ``fn(trainer)`` at ``event`` (one of `EVENTS`); lower ``order`` first (built-ins: see callbacks)."""
        if event not in EVENTS:
            raise UdaError(f"unknown callback event '{event}'; use one of {', '.join(EVENTS)}")
        self._callbacks[event].append((order, fn))
        self._callbacks[event].sort(key=lambda x: x[0])

    def attach(self, cb: C.Callback) -> None:
        """Attach a `Callback` object: each of its ``on_<event>`` methods at its ``order``."""
        self._objects.append(cb)
        for event in EVENTS:
            if callable(fn := getattr(cb, event, None)):
                self.add_callback(event, fn, cb.order)

    def emit(self, event: str) -> None:
        """Run the callbacks of ``event``."""
        for _, fn in list(self._callbacks[event]):
            fn(self)

    @property
    def is_main(self) -> bool:
        """Rank 0 (the process that writes files)."""
        return self.dist.is_main

    @property
    def stage(self) -> Stage:
        """The stage being trained."""
        return self.stages[self.stage_idx]

    @property
    def lr(self) -> float:
        """The current learning rate of the stage's first generator parameter group."""
        return self.optimizers[self.stage.name]["generator"].param_groups[0]["lr"]

    @property
    def stop_requested(self) -> bool:
        """A SIGTERM/SIGINT arrived (on any rank, under torchrun)."""
        return self._stop or (not self.dist.enabled and self.signal is not None)

    def build(self) -> None:
        """Build the parts (`build_parts`), attach the built-in callbacks, restore a checkpoint when resuming."""
        if not self.elastic_restart:  # a run is never overwritten
            prepare_run_dir(self.out_dir, resume=self.resume, overwrite=self.overwrite, move=self.is_main)
        if self.is_main:
            check_writable(self.out_dir)
        p = self.parts = build_parts(self.cfg, self.device, self.dist)
        self.model, self.recipe, self.stages, self.optimizers = p.model, p.recipe, p.stages, p.optimizers
        self.scaler, self.autocast, self.augment = p.scaler, p.autocast, p.augment
        self.source_ds, self.target_ds, self.val_ds = p.source_ds, p.target_ds, p.val_ds
        self.source_iter, self.target_iter, self.ddp = p.source_iter, p.target_iter, p.ddp
        self.add_callback("on_stage_end", release_finished_stage)  # e.g. CycleGAN's image pools after stage 1
        if self.resume:
            self.checkpointer.restore(self)
        self.attach(self.checkpointer)
        self.attach(C.EvalSchedule())
        if self.is_main:
            atomic_write_text(self.out_dir / "config.yaml", self.cfg.to_yaml())
            atomic_write_text(self.out_dir / "command.txt", " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) + "\n")
            t = self.cfg.trainer
            names = logger_names(t.loggers, t.tensorboard)
            self.metrics = C.MetricsLogger(self.out_dir, build_loggers(names, t.logger_options, self.cfg, self.out_dir))
            for cb in (self.metrics, C.Progress(), C.Pictures(self.metrics), C.Report()):
                self.attach(cb)
        self._built = True

    def log(self, record: dict[str, Any]) -> None:
        """Append one JSON object to metrics.jsonl (rank 0) and pass it to the experiment loggers."""
        if self.metrics is not None:
            self.metrics.write(self, record)

    def _handle_signal(self, signum, frame) -> None:
        self.signal = signum

    def next_batches(self) -> tuple[Batch, Batch]:
        """The next source and target batches (source augmented; channels-last when configured)."""
        src, tgt = next(self.source_iter), next(self.target_iter)
        if self.augment is not None:
            src["image"], src["label"] = self.augment(src["image"], src["label"])
        if self.cfg.trainer.channels_last:
            src["image"] = src["image"].contiguous(memory_format=torch.channels_last)
            tgt["image"] = tgt["image"].contiguous(memory_format=torch.channels_last)
        return src, tgt

    def backward(self, loss: torch.Tensor) -> None:
        """Backpropagate ``loss`` (scaled under fp16)."""
        self.scaler.scale(loss).backward() if self.scaler.is_enabled() else loss.backward()

    def train_step(self, stage: Stage) -> None:
        """One optimizer step of ``stage`` (``grad_accum`` micro-batches), then ``stage.task.after_step``."""
        t = self.cfg.trainer
        task, opts = stage.task, self.optimizers[stage.name]
        opt_g, opt_d = opts["generator"], opts.get("discriminator")
        frozen = task.frozen_in_generator_phase()
        for o in filter(None, (opt_g, opt_d)):
            o.zero_grad(set_to_none=True)
        for i in range(t.grad_accum):
            src, tgt = self.next_batches()
            with micro_batch(self.ddp, sync=i == t.grad_accum - 1):  # DDP: no_sync but for the last micro-batch
                set_requires_grad(frozen, False)
                g_losses, state = generator_phase(self, task, src, tgt)
                set_requires_grad(frozen, True)
                d_losses = {}
                if opt_d is not None:
                    with self.autocast:
                        d_losses = task.discriminator_losses(state)
                    if d_losses:
                        self.backward(sum(d_losses.values()) / t.grad_accum)
        names = list(g_losses) + [f"D/{k}" for k in d_losses]
        values = torch.stack([v.detach().float() for v in (*g_losses.values(), *d_losses.values())])
        self.last_step = StepLosses(names, values)
        bad = (~torch.isfinite(values)).any()
        params = [p for o in (opt_g, opt_d) if o is not None for g in o.param_groups for p in g["params"]]
        if self.dist.enabled:
            unique = list({id(p): p for p in params}.values())
            stop = torch.tensor(float(self.signal is not None), device=bad.device)
            flags = self.ddp.finish(unique, torch.stack([bad.float(), stop]))
            bad, self._stop = bool(flags[0] > 0), bool(flags[1] > 0)
        else:
            bad = bool(bad)  # the one host sync per step: no step may apply a non-finite update
        if bad:
            skip_nonfinite(self, stage, names, values, opt_g, opt_d)
        else:
            apply_updates(self, stage, opt_g, opt_d)
            task.after_step(self.global_iter + 1)
        opts["generator_sched"].step()
        if opt_d is not None:
            opts["discriminator_sched"].step()

    def set_modes(self, stage: Stage) -> None:
        """Eval mode for the whole recipe (carried modules stay there), then train mode for the stage's modules."""
        self.recipe.eval()
        for m in stage.task.trained_modules():
            m.train()

    def fit(self) -> dict[str, Any]:
        """Run the remaining stages, then the final evaluation; returns the evaluation JSON (also final.json)."""
        if not self._built:
            self.build()
        handlers = {}
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGTERM, signal.SIGINT):
                handlers[s] = signal.signal(s, self._handle_signal)
        try:
            self.emit("on_train_start")
            offset = sum(st.iters for st in self.stages[: self.stage_idx])
            while True:
                stage = self.stage
                self.set_modes(stage)
                self.emit("on_stage_start")
                while self.stage_iter < stage.iters:
                    self.train_step(stage)
                    self.stage_iter += 1
                    self.global_iter = offset + self.stage_iter
                    self.emit("on_step_end")
                offset += stage.iters
                self.emit("on_stage_end")
                if self.stage_idx + 1 == len(self.stages):
                    break
                self.stage_idx, self.stage_iter = self.stage_idx + 1, 0
            while handlers:  # the final evaluation runs with the default handlers
                signal.signal(*handlers.popitem())
            result = self.evaluate(final=True)
            self.emit("on_train_end")
            return result or {}
        finally:
            while handlers:
                signal.signal(*handlers.popitem())
            for cb in self._objects:
                cb.close(self)

    def evaluate(self, final: bool = False) -> dict[str, Any]:
        """Evaluate the segmentation network on the validation set (every rank scores a shard; counts are
        all-reduced), log the scores (rank 0), then the ``on_eval_end`` event (picture grids)."""
        self.last_eval = C.evaluate_run(self, final)
        self.emit("on_eval_end")
        return self.last_eval


def train(cfg: ExperimentConfig, out_dir: str | os.PathLike, *, resume: bool = False, overwrite: bool = False,
          device: str | torch.device | None = None,
          callbacks: dict[str, list[Callable[[Trainer], Any]]] | None = None) -> dict[str, Any]:
    """Train ``cfg`` into ``out_dir`` and return the final evaluation (the content of ``final.json``).

    Args:
        cfg: the resolved experiment config (`uda.config.load_config`).
        out_dir: run directory.
        resume: continue from the newest valid checkpoint (automatic on a torchrun elastic restart).
        overwrite: ``out_dir`` may already hold a run; it is moved aside to ``<out_dir>.replaced-<UTC time>``.
            Without ``resume`` or ``overwrite`` a directory that holds a run is refused.
        device: overrides ``cfg.trainer.device``.
        callbacks: event → list of ``fn(trainer)`` (see `EVENTS`).

    Returns:
        The evaluation JSON of the target validation split (``miou``, ``per_class``, ...).

    Raises:
        UdaError: unwritable output dir, checkpoint write failure; `TrainingInterrupted` after SIGTERM/SIGINT.
        NonFiniteLossError: a NaN/Inf loss with ``trainer.nonfinite="stop"``.
    """
    trainer = Trainer(cfg, out_dir, resume=resume, overwrite=overwrite, device=device)
    try:
        for event, fns in (callbacks or {}).items():
            for fn in fns:
                trainer.add_callback(event, fn)
        return trainer.fit()
    finally:
        D.cleanup()
