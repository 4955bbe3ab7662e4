"""What happens around the loop, as callbacks on its events: checkpoints, metrics and the experiment loggers
(TensorBoard, W&B, MLflow), progress, the evaluation schedule, picture grids and the final report.

The loop (`uda.engine.Trainer`) only trains and emits events (`uda.engine.EVENTS`); every built-in callback
below is attached to it the same way a user's is. A `Callback` defines ``on_<event>(trainer)`` methods and an
``order``: on one event lower orders run first; plain functions given to ``Trainer.add_callback`` run at
order 0, before logging and checkpointing (at 10 and 20), after the final report (at -10).
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from .._errors import CheckpointError, NonFiniteLossError, UdaError
from .._io import atomic_write_json, atomic_write_text
from . import distributed as D
from ._optim import lr_factor
from .checkpoint import FORMAT, load_latest_checkpoint, rank_rng_states, restore_rank_rng, rng_state, write_checkpoint

if TYPE_CHECKING:
    from .loggers import Logger
    from .trainer import Trainer

EVENTS = ("on_train_start", "on_stage_start", "on_step_end", "on_log", "on_eval_end", "on_checkpoint",
          "on_stage_end", "on_train_end")


@dataclass
class StepLosses:
    """The detached losses of the last optimizer step: generator losses, then ``D/<name>`` discriminator losses.

    Attributes:
        names: the loss names, in the order of ``values``.
        values: (N,) float tensor on the device (read on the host only when logged).
    """

    names: list[str]
    values: torch.Tensor

    def as_dict(self) -> dict[str, float]:
        """Name → value (one host sync)."""
        return dict(zip(self.names, self.values.tolist()))


def evaluate_run(tr: Trainer, final: bool = False) -> dict[str, Any]:
    """Score ``tr.model`` on ``tr.val_ds`` (each rank a shard, counts all-reduced) and log the scores (rank 0)."""
    from ..evaluation import evaluate

    tr.recipe.eval()
    cfg = tr.cfg
    result = evaluate(tr.model, tr.val_ds, cfg.eval, device=tr.device, protocol=cfg.eval.protocol,
                      source=cfg.data.source.name, rank=tr.dist.rank, world_size=tr.dist.world_size,
                      progress=final and tr.is_main)
    if tr.is_main:
        scores = {k: v for k, v in result.items() if isinstance(v, int | float) and not isinstance(v, bool)}
        for k, v in (result.get("label_free") or {}).items():
            if isinstance(v, int | float) and not isinstance(v, bool):
                scores[f"label_free/{k}"] = v
        tr.log({"stage": "seg", "iter": tr.stage_iter, "global_iter": tr.global_iter, "eval": scores})
    D.barrier()
    return result


class Callback:
    """Base of the loop's callbacks: override ``on_<event>(trainer)`` methods; ``close`` runs at the very end
    (also after an error)."""

    order = 0

    def close(self, trainer: Trainer) -> None:
        """Release files and writers."""


class TrainingInterrupted(UdaError):
    """SIGTERM/SIGINT: the current step finished, a checkpoint was saved; continue with ``--resume``."""


class Checkpointer(Callback):
    """Saves every ``trainer.checkpoint_every`` iterations, at each stage end and on a signal; restores on resume."""

    order = 20

    def __init__(self) -> None:
        self.saved_at = -1

    def state_dict(self, tr: Trainer) -> dict[str, Any]:
        """Everything needed to continue bit-for-bit (see `uda.engine.checkpoint`)."""
        return {
            "format": FORMAT,
            "stage": tr.stage_idx,
            "stage_name": tr.stages[min(tr.stage_idx, len(tr.stages) - 1)].name,
            "iter": tr.stage_iter,
            "global_iter": tr.global_iter,
            "model_name": tr.cfg.model.name,
            "num_classes": tr.cfg.model.num_classes,
            "model": tr.model.state_dict(),
            "recipe": tr.recipe.state_dict(),
            "optimizers": {n: {k: v.state_dict() for k, v in e.items() if not k.endswith("_sched")}
                           for n, e in tr.optimizers.items()},
            "schedulers": {n: {k: v.state_dict() for k, v in e.items() if k.endswith("_sched")}
                           for n, e in tr.optimizers.items()},
            "scaler": tr.scaler.state_dict(),
            "rng": [rng_state()],  # this rank's; save() stores every rank's
            "data": {"source": tr.source_iter.state_dict(), "target": tr.target_iter.state_dict()},
            "skipped": tr.skipped,
            "config": tr.cfg.to_dict(),
        }

    def save(self, tr: Trainer) -> Path | None:
        """Write a checkpoint (rank 0); refuse to save non-finite weights; a write failure keeps the last good one."""
        self.saved_at = tr.global_iter
        rngs = rank_rng_states()  # a collective: every rank's RNG state goes into the checkpoint
        if not tr.is_main:
            return None
        params = list(tr.recipe.parameters())
        if params and not bool(torch.stack([torch.isfinite(p).all() for p in params]).all()):
            raise NonFiniteLossError(f"refusing to save non-finite weights at iteration {tr.global_iter}; "
                                     f"last good checkpoint: {tr.last_checkpoint or 'none'}")
        try:
            path = write_checkpoint({**self.state_dict(tr), "rng": rngs}, tr.out_dir / "checkpoints",
                                    tr.cfg.trainer.keep_last)
        except OSError as e:
            raise UdaError(f"cannot write a checkpoint in {tr.out_dir / 'checkpoints'} ({e.strerror or e}); "
                           f"the last good checkpoint {tr.last_checkpoint or '(none)'} is intact; "
                           "free disk space, then continue with --resume") from None
        tr.last_checkpoint = path
        tr.emit("on_checkpoint")
        return path

    def restore(self, tr: Trainer) -> None:
        """Load the newest valid checkpoint of the run directory into the built parts."""
        ckpt_dir = tr.out_dir / "checkpoints"
        try:
            state, path = load_latest_checkpoint(ckpt_dir)
        except CheckpointError:
            if tr.elastic_restart and not any(ckpt_dir.glob("*.pt")):
                return  # elastic restart before the first checkpoint: start over
            raise
        try:
            tr.recipe.load_state_dict(state["recipe"])
        except RuntimeError as e:
            raise CheckpointError(f"{path}: does not fit this experiment ({str(e).splitlines()[0]}); "
                                  "resume with the config the run was started with") from None
        for name, entry in tr.optimizers.items():
            for key, obj in entry.items():
                src = state["schedulers" if key.endswith("_sched") else "optimizers"].get(name, {}).get(key)
                if src is not None:
                    obj.load_state_dict(src)
        # Overrides given with --resume (e.g. a larger max_iters) change the schedule from here on.
        for st in tr.stages:
            e = tr.optimizers[st.name]
            for key, ocfg in (("generator", st.generator_optim), ("discriminator", st.discriminator_optim)):
                if key in e:
                    sched = e[key + "_sched"]
                    for g, base in zip(e[key].param_groups, sched.base_lrs):
                        g["lr"] = base * lr_factor(ocfg, sched.last_epoch, st.iters)
        tr.scaler.load_state_dict(state["scaler"])
        tr.source_iter.load_state_dict(state["data"]["source"])
        tr.target_iter.load_state_dict(state["data"]["target"])
        restore_rank_rng(state["rng"], tr.dist.rank, tr.dist.world_size)
        tr.stage_idx, tr.stage_iter = int(state["stage"]), int(state["iter"])
        tr.global_iter, tr.skipped = int(state["global_iter"]), int(state["skipped"])
        tr.last_checkpoint = path
        if tr.is_main:
            self._truncate_metrics(tr.out_dir / "metrics.jsonl", tr.global_iter)
            print(f"uda: resumed from {path} (stage {state['stage_name']}, iteration {tr.global_iter})",
                  file=sys.stderr)

    @staticmethod
    def _truncate_metrics(path: Path, global_iter: int) -> None:
        """Drop log lines written after the checkpoint, so the resumed log equals the uninterrupted one."""
        if not path.is_file():
            return
        keep = []
        for line in path.read_text().splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                if json.loads(line).get("global_iter", 0) <= global_iter:
                    keep.append(line)
        atomic_write_text(path, "".join(x + "\n" for x in keep))

    def on_step_end(self, tr: Trainer) -> None:
        if tr.stop_requested:
            path = self.save(tr)
            D.barrier()
            name = signal.Signals(tr.signal).name if tr.signal else "a signal on another rank"
            raise TrainingInterrupted(
                f"training interrupted by {name} at iteration {tr.global_iter}; checkpoint saved to "
                f"{path or tr.out_dir / 'checkpoints'}; continue with --resume")
        if tr.global_iter % tr.cfg.trainer.checkpoint_every == 0 or tr.stage_iter == tr.stage.iters:
            self.save(tr)

    def on_stage_start(self, tr: Trainer) -> None:
        self.saved_at = tr.global_iter

    def on_stage_end(self, tr: Trainer) -> None:
        if self.saved_at != tr.global_iter:
            self.save(tr)


class MetricsLogger(Callback):
    """Every ``trainer.log_every`` iterations (and at a stage's end): one JSON line in metrics.jsonl (rank 0),
    passed on to the experiment loggers (`uda.engine.loggers`: TensorBoard, W&B, MLflow); then the ``on_log``
    event."""

    order = 10

    def __init__(self, out_dir: Path, loggers: Sequence[Logger] | bool = ()) -> None:
        from .loggers import build_loggers

        self.path = out_dir / "metrics.jsonl"
        if isinstance(loggers, bool):  # the old signature: MetricsLogger(out_dir, tensorboard)
            loggers = build_loggers(["tensorboard"] if loggers else [], {}, None, out_dir)
        self.loggers = list(loggers)
        self._tick, self._last_it = time.perf_counter(), 0

    @property
    def tb(self) -> Any:
        """The TensorBoard ``SummaryWriter``, or None."""
        return next((lg.writer for lg in self.loggers if lg.name == "tensorboard"), None)

    def log_image(self, tag: str, image: Any, step: int) -> None:
        """A picture grid (H, W, 3) to the loggers that take images."""
        for lg in self.loggers:
            lg.log_image(tag, image, step)

    def write(self, tr: Trainer, record: dict[str, Any]) -> None:
        """Append ``record`` to metrics.jsonl and mirror its numbers to TensorBoard."""
        try:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
        except OSError as e:
            raise UdaError(f"cannot append to {self.path} ({e.strerror or e}); the last good checkpoint "
                           f"{tr.last_checkpoint or '(none)'} is intact; free disk space, then continue with "
                           "--resume") from None
        for lg in self.loggers:
            lg.log_record(record)

    def on_stage_start(self, tr: Trainer) -> None:
        self._tick, self._last_it = time.perf_counter(), tr.stage_iter

    def on_step_end(self, tr: Trainer) -> None:
        if tr.stage_iter % tr.cfg.trainer.log_every and tr.stage_iter != tr.stage.iters:
            return
        now = time.perf_counter()
        tr.last_losses = tr.last_step.as_dict()
        rate = (tr.stage_iter - self._last_it) / max(now - self._tick, 1e-9)
        self._tick, self._last_it = now, tr.stage_iter
        tr.log({"stage": tr.stage.name, "iter": tr.stage_iter, "global_iter": tr.global_iter,
                "loss": {k: v for k, v in tr.last_losses.items() if not k.startswith("D/")},
                "loss_d": {k[2:]: v for k, v in tr.last_losses.items() if k.startswith("D/")},
                "lr": tr.lr, "it_per_s": rate, "skipped": tr.skipped,
                "data_skipped": tr.source_iter.num_skipped + tr.target_iter.num_skipped})
        tr.emit("on_log")

    def close(self, tr: Trainer) -> None:
        loggers, self.loggers = self.loggers, []
        for lg in loggers:
            lg.close()


def nonfinite_advice(cfg: Any, model: torch.nn.Module) -> str:
    """The fix a non-finite loss message suggests: the real cause for a random-init model with frozen BN."""
    if cfg.model.pretrained is None and getattr(model, "bn_mode", None) == "frozen":
        return ("the likely cause: random weights (model.pretrained=null) with frozen BatchNorm statistics "
                "(bn_mode=frozen) normalize nothing, so activations grow until they overflow; set "
                "model.options.bn_mode=moving (or train) or give model.pretrained weights")
    return "lower the learning rate or set trainer.nonfinite=skip"


class Progress(Callback):
    """A tqdm bar per stage on a terminal; plain log lines (``uda: seg 50/400 seg=1.2 lr=2.5e-04 3.1 it/s``)
    when stderr is not a terminal (batch jobs, nohup). Rank 0 only."""

    order = 11

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.bar = None
        self.plain = not (hasattr(self.stream, "isatty") and self.stream.isatty())

    def on_stage_start(self, tr: Trainer) -> None:
        if not self.plain:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=tr.stage.iters, initial=tr.stage_iter, desc=tr.stage.name, dynamic_ncols=True,
                            mininterval=1.0, file=self.stream)

    def on_step_end(self, tr: Trainer) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def on_log(self, tr: Trainer) -> None:
        losses = {k: f"{v:.3g}" for k, v in list(tr.last_losses.items())[:4]}
        if self.bar is not None:
            self.bar.set_postfix({**losses, "lr": f"{tr.lr:.2e}"}, refresh=False)
        else:
            parts = " ".join(f"{k}={v}" for k, v in losses.items())
            print(f"uda: {tr.stage.name} {tr.stage_iter}/{tr.stage.iters} {parts} lr={tr.lr:.2e}",
                  file=self.stream, flush=True)

    def on_stage_end(self, tr: Trainer) -> None:
        self.close(tr)

    def close(self, tr: Trainer) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class EvalSchedule(Callback):
    """Evaluates the segmentation stage every ``trainer.eval_every`` iterations (not at its end: the final
    evaluation follows)."""

    order = 30

    def on_step_end(self, tr: Trainer) -> None:
        every, st = tr.cfg.trainer.eval_every, tr.stage
        if st.name == "seg" and every and tr.stage_iter % every == 0 and tr.stage_iter != st.iters:
            tr.evaluate()
            tr.set_modes(st)


class Pictures(Callback):
    """After each evaluation (rank 0): image | prediction | label grids, and source | translated | target."""

    order = 10

    def __init__(self, metrics: MetricsLogger) -> None:
        self.metrics = metrics

    def on_eval_end(self, tr: Trainer) -> None:
        from ._visual import prediction_grid, translation_grid

        pic = tr.out_dir / "pictures"
        grid = prediction_grid(tr.model, tr.val_ds, pic / f"predictions_{tr.global_iter:07d}.png", tr.device)
        if grid is not None:
            self.metrics.log_image("predictions", grid, tr.global_iter)
        translator = tr.recipe.translator
        if translator is not None:
            n = min(4, len(tr.source_ds), len(tr.target_ds))
            src = torch.stack([tr.source_ds[i]["image"] for i in range(n)]).to(tr.device)
            tgt = torch.stack([tr.target_ds[i]["image"] for i in range(n)]).to(tr.device)
            grid = translation_grid(translator, src, tgt, pic / f"translated_{tr.global_iter:07d}.png")
            self.metrics.log_image("translated", grid, tr.global_iter)


class Report(Callback):
    """At the end (rank 0, before the user's ``on_train_end`` callbacks): final.json and the report files."""

    order = -10

    def on_train_end(self, tr: Trainer) -> None:
        from ..evaluation import write_report

        if isinstance(tr.last_eval, dict):
            tr.last_eval["method"] = tr.cfg.recipe.name  # the row label of the reports
        atomic_write_json(tr.out_dir / "final.json", tr.last_eval)
        src, val = tr.cfg.data.source.name, tr.cfg.data.val.name
        # the published rows of the run's setting: GTA5/SYNTHIA -> Cityscapes, Cityscapes -> ACDC / Dark Zurich
        setup = src if src in ("gta5", "synthia") else val if (src, val) in (("cityscapes", "acdc"),
                                                                            ("cityscapes", "darkzurich")) else None
        write_report(tr.last_eval, tr.out_dir, setup=setup)
