"""The one training loop of ``uda``, shared by every recipe and every stage.

Per iteration (AdaptSegNet / ADVENT update order, REFERENCE.md §3): zero the gradients → freeze the
discriminators (``set_requires_grad(task.frozen_in_generator_phase(), False)``) → backward of the
generator-side losses (segmentation + λ·adversarial) → unfreeze → backward of the discriminator losses
on the detached maps of this iteration → (all-reduce) → non-finite check → clip → optimizer steps →
schedules. Counted in iterations over paired infinite source/target iterators; a recipe only supplies
the named losses (see :class:`uda.engine.stage.Task`). MLFA's translator stage runs through the same loop.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import signal
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._errors import CheckpointError, NonFiniteLossError, UdaError
from .._io import atomic_write_json, atomic_write_text
from .._registry import create
from ..config import DatasetConfig, ExperimentConfig
from . import distributed as D
from ._optim import build_optimizer, build_scheduler, lr_factor, set_requires_grad
from .checkpoint import FORMAT, load_latest_checkpoint, rng_state, set_rng_state, write_checkpoint

EVENTS = ("on_train_start", "on_stage_start", "on_step_end", "on_log", "on_eval_end", "on_checkpoint",
          "on_stage_end", "on_train_end")


class TrainingInterrupted(UdaError):
    """SIGTERM/SIGINT: the current step finished, a checkpoint was saved; continue with ``--resume``."""


def seed_everything(seed: int, rank: int = 0) -> None:
    """Seed python, numpy and torch (all devices) with ``seed + rank``."""
    s = seed + rank
    random.seed(s)
    np.random.seed(s % 2**32)
    torch.manual_seed(s)


def resolve_device(name: str | torch.device | None, local_rank: int = 0) -> torch.device:
    """``auto`` → ``cuda:LOCAL_RANK`` when CUDA is available, else ``cpu``."""
    name = str(name or "auto")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(name)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UdaError(f"device '{name}' requested but CUDA is not available; use --device cpu")
        if dev.index is None:
            dev = torch.device("cuda", local_rank)
    return dev


def check_writable(out_dir: Path) -> None:
    """Create ``out_dir`` and write + delete a probe file; fail early with a :class:`UdaError` naming it."""
    try:
        (out_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
        probe = out_dir / "checkpoints" / f".write_probe_{os.getpid()}"
        probe.write_bytes(b"uda")
        probe.unlink()
    except OSError as e:
        raise UdaError(f"{out_dir}: the output directory is not writable ({e.strerror or e}); "
                       "choose another --out or fix its permissions") from None


class Trainer:
    """Builds a recipe from an :class:`ExperimentConfig` and trains it through its stages.

    Args:
        cfg: the resolved experiment config.
        out_dir: the run directory (config.yaml, command.txt, metrics.jsonl, checkpoints/, final.json,
            report, pictures/).
        resume: continue from the newest valid checkpoint in ``out_dir/checkpoints``.
        device: overrides ``cfg.trainer.device`` (``auto``, ``cpu``, ``cuda``, ``cuda:N``).

    Example:
        >>> from uda.config import load_config
        >>> cfg = load_config("source_only_synthetic", ["trainer.max_iters=2"])  # doctest: +SKIP
        >>> Trainer(cfg, "runs/demo").fit()["miou"]  # doctest: +SKIP
    """

    def __init__(self, cfg: ExperimentConfig, out_dir: str | os.PathLike, *, resume: bool = False,
                 device: str | torch.device | None = None) -> None:
        self.cfg = cfg
        self.out_dir = Path(out_dir)
        self.callbacks: dict[str, list[Callable[[Trainer], Any]]] = defaultdict(list)
        info = D.env_info()
        self.device = resolve_device(device or cfg.trainer.device, info.local_rank)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        self.dist = D.init_distributed(self.device, cfg.trainer.dist_timeout_s)
        # An elastic restart (torchrun --max-restarts) continues from the last checkpoint.
        self.resume = resume or int(os.environ.get("TORCHELASTIC_RESTART_COUNT", 0)) > 0
        self.stage_idx = 0
        self.stage_iter = 0
        self.global_iter = 0
        self.skipped = 0
        self.last_checkpoint: Path | None = None
        self.last_losses: dict[str, float] = {}
        self._signal: int | None = None
        self._stop_requested = False
        self._tb = None
        self._built = False

    # ------------------------------------------------------------------------------------------ API
    def add_callback(self, event: str, fn: Callable[[Trainer], Any]) -> None:
        """Call ``fn(trainer)`` at ``event`` (one of :data:`EVENTS`)."""
        if event not in EVENTS:
            raise UdaError(f"unknown callback event '{event}'; use one of {', '.join(EVENTS)}")
        self.callbacks[event].append(fn)

    def _emit(self, event: str) -> None:
        for fn in self.callbacks[event]:
            fn(self)

    @property
    def is_main(self) -> bool:
        return self.dist.is_main

    # ---------------------------------------------------------------------------------------- build
    def build(self) -> None:
        """Create datasets, model, recipe, stages, optimizers and loaders; restore a checkpoint when resuming."""
        from ..data import InfiniteLoader, build_dataset

        cfg, t = self.cfg, self.cfg.trainer
        if self.is_main:
            check_writable(self.out_dir)
        if t.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        seed_everything(t.seed)  # identical initial weights on every rank
        self.model = create("model", cfg.model.name, num_classes=cfg.model.num_classes,
                            pretrained=cfg.model.pretrained, **cfg.model.options)
        self.recipe = create("recipe", cfg.recipe.name, cfg=cfg.recipe, model=self.model,
                             num_classes=cfg.model.num_classes, feature_info=self.model.feature_info)
        self.recipe.to(self.device)
        if t.channels_last:
            self.recipe.to(memory_format=torch.channels_last)
        if t.compile:
            self.model.forward_normalized = torch.compile(self.model.forward_normalized)
        D.broadcast_parameters([self.recipe])
        self.stages = self.recipe.stages(cfg)
        self.optimizers: dict[str, dict[str, Any]] = {}
        for st in self.stages:
            opt_g = build_optimizer(st.task.generator_param_groups(st.generator_optim), st.generator_optim)
            entry = {"generator": opt_g, "generator_sched": build_scheduler(opt_g, st.generator_optim, st.iters)}
            d_params = st.task.discriminator_parameters()
            if st.discriminator_optim is not None and d_params:
                opt_d = build_optimizer(d_params, st.discriminator_optim)
                entry.update(discriminator=opt_d, discriminator_sched=build_scheduler(opt_d, st.discriminator_optim, st.iters))
            self.optimizers[st.name] = entry
        use_cuda = self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=use_cuda and t.amp == "fp16")
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(t.amp)
        # One autocast context built once; CPU runs fp32.
        self.autocast = torch.autocast("cuda", dtype=dtype) if use_cuda and dtype else contextlib.nullcontext()

        src_cfg = DatasetConfig(**{**cfg.data.source.__dict__,
                                   "options": {**cfg.data.source.options, **self.recipe.source_dataset_options()}})
        self.source_ds = build_dataset(src_cfg, labels=True, on_bad_sample=cfg.data.on_bad_sample)
        self.target_ds = build_dataset(cfg.data.target, labels=False, on_bad_sample=cfg.data.on_bad_sample)
        wrap = getattr(self.recipe, "wrap_datasets", None)  # crops, flips, rare-class sampling
        if wrap is not None:
            self.source_ds, self.target_ds = wrap(self.source_ds, self.target_ds)
        self.val_ds = build_dataset(cfg.data.val, labels=True)
        kw = dict(batch_size=cfg.data.batch_size, rank=self.dist.rank, world_size=self.dist.world_size,
                  num_workers=cfg.data.num_workers, device=self.device)
        self.source_iter = InfiniteLoader(self.source_ds, seed=t.seed, **kw)
        self.target_iter = InfiniteLoader(self.target_ds, seed=t.seed + 7919, **kw)
        self.augment = (create("augmentation", cfg.data.augmentation, **cfg.data.augmentation_options).to(self.device)
                        if cfg.data.augmentation else None)
        seed_everything(t.seed, self.dist.rank)  # per-rank randomness from here on
        if self.resume:
            self._restore()
        if self.is_main:
            atomic_write_text(self.out_dir / "config.yaml", cfg.to_yaml())
            atomic_write_text(self.out_dir / "command.txt", " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) + "\n")
            self._open_logs()
        self._built = True

    def _open_logs(self) -> None:
        self.metrics_path = self.out_dir / "metrics.jsonl"
        if self.cfg.trainer.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(self.out_dir / "tensorboard"))
            except ImportError:  # pragma: no cover - tensorboard is optional
                self._tb = None

    # ----------------------------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue bit-for-bit (see :mod:`uda.engine.checkpoint`)."""
        translator = getattr(self.recipe, "translator", None)
        return {
            "format": FORMAT,
            "stage": self.stage_idx,
            "stage_name": self.stages[min(self.stage_idx, len(self.stages) - 1)].name,
            "iter": self.stage_iter,
            "global_iter": self.global_iter,
            "model_name": self.cfg.model.name,
            "num_classes": self.cfg.model.num_classes,
            "model": self.model.state_dict(),
            "translator": translator.state_dict() if translator is not None else None,
            "recipe": self.recipe.state_dict(),
            "optimizers": {n: {k: v.state_dict() for k, v in e.items() if not k.endswith("_sched")}
                           for n, e in self.optimizers.items()},
            "schedulers": {n: {k: v.state_dict() for k, v in e.items() if k.endswith("_sched")}
                           for n, e in self.optimizers.items()},
            "scaler": self.scaler.state_dict(),
            "rng": rng_state(),
            "data": {"source": self.source_iter.state_dict(), "target": self.target_iter.state_dict()},
            "skipped": self.skipped,
            "config": self.cfg.to_dict(),
        }

    def save_checkpoint(self) -> Path | None:
        """Write a checkpoint (rank 0); refuse to save non-finite weights; a write failure keeps the last good one."""
        if not self.is_main:
            return None
        params = [p for p in self.recipe.parameters()]
        if params and not bool(torch.stack([torch.isfinite(p).all() for p in params]).all()):
            raise NonFiniteLossError(f"refusing to save non-finite weights at iteration {self.global_iter}; "
                                     f"last good checkpoint: {self.last_checkpoint or 'none'}")
        try:
            path = write_checkpoint(self.state_dict(), self.out_dir / "checkpoints", self.cfg.trainer.keep_last)
        except OSError as e:
            raise UdaError(f"cannot write a checkpoint in {self.out_dir / 'checkpoints'} ({e.strerror or e}); "
                           f"the last good checkpoint {self.last_checkpoint or '(none)'} is intact; "
                           "free disk space, then continue with --resume") from None
        self.last_checkpoint = path
        self._emit("on_checkpoint")
        return path

    def _restore(self) -> None:
        ckpt_dir = self.out_dir / "checkpoints"
        try:
            state, path = load_latest_checkpoint(ckpt_dir)
        except CheckpointError:
            if int(os.environ.get("TORCHELASTIC_RESTART_COUNT", 0)) > 0 and not any(ckpt_dir.glob("*.pt")):
                return  # elastic restart before the first checkpoint: start over
            raise
        try:
            self.recipe.load_state_dict(state["recipe"])
        except RuntimeError as e:
            raise CheckpointError(f"{path}: does not fit this experiment ({str(e).splitlines()[0]}); "
                                  "resume with the config the run was started with") from None
        for name, entry in self.optimizers.items():
            for key, obj in entry.items():
                src = state["schedulers" if key.endswith("_sched") else "optimizers"].get(name, {}).get(key)
                if src is not None:
                    obj.load_state_dict(src)
        # Overrides given with --resume (e.g. a larger max_iters) change the schedule from here on.
        for st in self.stages:
            e = self.optimizers[st.name]
            for key, ocfg in (("generator", st.generator_optim), ("discriminator", st.discriminator_optim)):
                if key in e:
                    sched = e[key + "_sched"]
                    for g, base in zip(e[key].param_groups, sched.base_lrs):
                        g["lr"] = base * lr_factor(ocfg, sched.last_epoch, st.iters)
        self.scaler.load_state_dict(state["scaler"])
        self.source_iter.load_state_dict(state["data"]["source"])
        self.target_iter.load_state_dict(state["data"]["target"])
        set_rng_state(state["rng"])
        self.stage_idx, self.stage_iter = int(state["stage"]), int(state["iter"])
        self.global_iter, self.skipped = int(state["global_iter"]), int(state["skipped"])
        self.last_checkpoint = path
        if self.is_main:
            self._truncate_metrics()
            print(f"uda: resumed from {path} (stage {state['stage_name']}, iteration {self.global_iter})",
                  file=sys.stderr)

    def _truncate_metrics(self) -> None:
        """Drop log lines written after the checkpoint, so the resumed log equals the uninterrupted one."""
        path = self.out_dir / "metrics.jsonl"
        if not path.is_file():
            return
        keep = []
        for line in path.read_text().splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                if json.loads(line).get("global_iter", 0) <= self.global_iter:
                    keep.append(line)
        atomic_write_text(path, "".join(x + "\n" for x in keep))

    # --------------------------------------------------------------------------------------- logging
    def log(self, record: dict[str, Any]) -> None:
        """Append one JSON object to metrics.jsonl (rank 0) and mirror numbers to TensorBoard."""
        if not self.is_main:
            return
        try:
            with open(self.metrics_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
        except OSError as e:
            raise UdaError(f"cannot append to {self.metrics_path} ({e.strerror or e}); the last good checkpoint "
                           f"{self.last_checkpoint or '(none)'} is intact; free disk space, then continue with "
                           "--resume") from None
        if self._tb is not None:
            for group in ("loss", "loss_d", "eval"):
                for k, v in (record.get(group) or {}).items():
                    if isinstance(v, int | float) and v is not None and math.isfinite(v):
                        self._tb.add_scalar(f"{record['stage']}/{group}/{k}", v, record["global_iter"])
            if "lr" in record:
                self._tb.add_scalar(f"{record['stage']}/lr", record["lr"], record["global_iter"])

    # ------------------------------------------------------------------------------------------ loop
    def _handle_signal(self, signum, frame) -> None:
        self._signal = signum

    def _next(self, it_src, it_tgt) -> tuple[dict, dict]:
        src, tgt = next(it_src), next(it_tgt)
        if self.augment is not None:
            src["image"], src["label"] = self.augment(src["image"], src["label"])
        if self.cfg.trainer.channels_last:
            src["image"] = src["image"].contiguous(memory_format=torch.channels_last)
            tgt["image"] = tgt["image"].contiguous(memory_format=torch.channels_last)
        return src, tgt

    def _backward(self, loss: torch.Tensor) -> None:
        self.scaler.scale(loss).backward() if self.scaler.is_enabled() else loss.backward()

    def train_step(self, stage) -> None:
        """One optimizer step of ``stage`` (``grad_accum`` micro-batches)."""
        t = self.cfg.trainer
        task, opts = stage.task, self.optimizers[stage.name]
        opt_g, opt_d = opts["generator"], opts.get("discriminator")
        frozen = task.frozen_in_generator_phase()
        opt_g.zero_grad(set_to_none=True)
        if opt_d is not None:
            opt_d.zero_grad(set_to_none=True)
        for _ in range(t.grad_accum):
            src, tgt = self._next(self.source_iter, self.target_iter)
            set_requires_grad(frozen, False)
            with self.autocast:
                g_losses, state = task.generator_losses(src, tgt)
            self._backward(sum(g_losses.values()) / t.grad_accum)
            set_requires_grad(frozen, True)
            d_losses = {}
            if opt_d is not None:
                with self.autocast:
                    d_losses = task.discriminator_losses(state)
                if d_losses:
                    self._backward(sum(d_losses.values()) / t.grad_accum)
        names = list(g_losses) + [f"D/{k}" for k in d_losses]
        values = torch.stack([v.detach().float() for v in (*g_losses.values(), *d_losses.values())])
        self._last_values = (names, values)
        bad = (~torch.isfinite(values)).any()
        params = [p for o in (opt_g, opt_d) if o is not None for g in o.param_groups for p in g["params"]]
        stop = self._signal is not None
        if self.dist.enabled:
            unique = list({id(p): p for p in params}.values())
            flags = D.all_reduce_gradients(unique, torch.stack([bad.float(), torch.tensor(float(stop), device=bad.device)]))
            bad, stop = bool(flags[0] > 0), bool(flags[1] > 0)
        else:
            bad = bool(bad)  # the one host sync per step: no step may apply a non-finite update
        self._stop_requested = stop
        if bad:
            vals = values.tolist()
            name, val = next(((n, v) for n, v in zip(names, vals) if not math.isfinite(v)), ("(other rank)", math.nan))
            if t.nonfinite == "stop":
                raise NonFiniteLossError(
                    f"non-finite loss '{name}' = {val} at iteration {self.global_iter + 1} (stage {stage.name}); "
                    f"last good checkpoint: {self.last_checkpoint or 'none'}; lower the learning rate or set "
                    "trainer.nonfinite=skip")
            self.skipped += 1
            opt_g.zero_grad(set_to_none=True)
            if opt_d is not None:
                opt_d.zero_grad(set_to_none=True)
        else:
            for opt, ocfg in ((opt_g, stage.generator_optim), (opt_d, stage.discriminator_optim)):
                if opt is None:
                    continue
                if ocfg.grad_clip:
                    if self.scaler.is_enabled():
                        self.scaler.unscale_(opt)
                    torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], ocfg.grad_clip)
                self.scaler.step(opt) if self.scaler.is_enabled() else opt.step()
            if self.scaler.is_enabled():
                self.scaler.update()
            after = getattr(task, "after_step", None)  # e.g. the EMA teacher update
            if after is not None:
                after(self.global_iter + 1)
        opts["generator_sched"].step()
        if opt_d is not None:
            opts["discriminator_sched"].step()

    def _set_modes(self, stage) -> None:
        self.recipe.eval()
        for m in stage.task.trained_modules():
            m.train()

    def fit(self) -> dict[str, Any]:
        """Run the remaining stages, then the final evaluation; returns the evaluation JSON (also final.json)."""
        if not self._built:
            self.build()
        t = self.cfg.trainer
        handlers = {}
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGTERM, signal.SIGINT):
                handlers[s] = signal.signal(s, self._handle_signal)
        try:
            self._emit("on_train_start")
            offset = sum(st.iters for st in self.stages[: self.stage_idx])
            while self.stage_idx < len(self.stages):
                stage = self.stages[self.stage_idx]
                self._set_modes(stage)
                self._emit("on_stage_start")
                self._run_stage(stage, offset, t)
                offset += stage.iters
                self._emit("on_stage_end")
                if self.stage_idx + 1 < len(self.stages):
                    self.stage_idx, self.stage_iter = self.stage_idx + 1, 0
                else:
                    break
        finally:
            for s, h in handlers.items():
                signal.signal(s, h)
        try:
            result = self.final_evaluation()
            self._emit("on_train_end")
            return result
        finally:
            if self._tb is not None:
                self._tb.close()

    def _run_stage(self, stage, offset: int, t) -> None:
        from tqdm.auto import tqdm

        bar = tqdm(total=stage.iters, initial=self.stage_iter, desc=stage.name, disable=not self.is_main,
                   dynamic_ncols=True, mininterval=1.0, file=sys.stderr)
        tick, last_it = time.perf_counter(), self.stage_iter
        saved_at = self.global_iter
        try:
            while self.stage_iter < stage.iters:
                self.train_step(stage)
                self.stage_iter += 1
                self.global_iter = offset + self.stage_iter
                bar.update(1)
                self._emit("on_step_end")
                end = self.stage_iter == stage.iters
                if self.stage_iter % t.log_every == 0 or end:
                    now = time.perf_counter()
                    names, values = self._last_values
                    self.last_losses = dict(zip(names, values.tolist()))
                    rate = (self.stage_iter - last_it) / max(now - tick, 1e-9)
                    tick, last_it = now, self.stage_iter
                    opt_g = self.optimizers[stage.name]["generator"]
                    self.log({"stage": stage.name, "iter": self.stage_iter, "global_iter": self.global_iter,
                              "loss": {k: v for k, v in self.last_losses.items() if not k.startswith("D/")},
                              "loss_d": {k[2:]: v for k, v in self.last_losses.items() if k.startswith("D/")},
                              "lr": opt_g.param_groups[0]["lr"], "it_per_s": rate, "skipped": self.skipped,
                              "data_skipped": self.source_iter.num_skipped + self.target_iter.num_skipped})
                    bar.set_postfix({k: f"{v:.3g}" for k, v in list(self.last_losses.items())[:4]}, refresh=False)
                    self._emit("on_log")
                if self._stop_requested or (not self.dist.enabled and self._signal is not None):
                    path = self.save_checkpoint()
                    D.barrier()
                    name = signal.Signals(self._signal).name if self._signal else "a signal on another rank"
                    raise TrainingInterrupted(
                        f"training interrupted by {name} at iteration {self.global_iter}; checkpoint saved to "
                        f"{path or self.out_dir / 'checkpoints'}; continue with --resume")
                if self.global_iter % t.checkpoint_every == 0 or end:
                    self.save_checkpoint()
                    saved_at = self.global_iter
                if stage.name == "seg" and t.eval_every and self.stage_iter % t.eval_every == 0 and not end:
                    self.evaluate()
                    self._set_modes(stage)
            if saved_at != self.global_iter:
                self.save_checkpoint()
        finally:
            bar.close()

    # ------------------------------------------------------------------------------------ evaluation
    def evaluate(self, final: bool = False) -> dict[str, Any]:
        """Evaluate the segmentation network on the validation set (every rank scores a shard; counts are
        all-reduced), log the scores and draw the picture grids (rank 0)."""
        from ..evaluation import evaluate

        self.recipe.eval()
        result = evaluate(self.model, self.val_ds, self.cfg.eval, device=self.device, protocol=self.cfg.eval.protocol,
                          source=self.cfg.data.source.name, rank=self.dist.rank, world_size=self.dist.world_size,
                          progress=final and self.is_main)
        if self.is_main:
            scores = {k: v for k, v in result.items() if isinstance(v, int | float) and not isinstance(v, bool)}
            for k, v in (result.get("label_free") or {}).items():
                if isinstance(v, int | float) and not isinstance(v, bool):
                    scores[f"label_free/{k}"] = v
            self.log({"stage": "seg", "iter": self.stage_iter, "global_iter": self.global_iter, "eval": scores})
            self._pictures()
        D.barrier()
        self.last_eval = result
        self._emit("on_eval_end")
        return result

    def _pictures(self) -> None:
        from ._visual import prediction_grid, translation_grid

        pic = self.out_dir / "pictures"
        grid = prediction_grid(self.model, self.val_ds, pic / f"predictions_{self.global_iter:07d}.png", self.device)
        if self._tb is not None and grid is not None:
            self._tb.add_image("predictions", grid, self.global_iter, dataformats="HWC")
        translator = getattr(self.recipe, "translator", None)
        if translator is not None:
            n = min(4, len(self.source_ds), len(self.target_ds))
            src = torch.stack([self.source_ds[i]["image"] for i in range(n)]).to(self.device)
            tgt = torch.stack([self.target_ds[i]["image"] for i in range(n)]).to(self.device)
            grid = translation_grid(translator, src, tgt, pic / f"translated_{self.global_iter:07d}.png")
            if self._tb is not None:
                self._tb.add_image("translated", grid, self.global_iter, dataformats="HWC")

    def final_evaluation(self) -> dict[str, Any]:
        """The final evaluation (always at the end): final.json, the report and picture grids in the run dir."""
        from ..evaluation import write_report

        result = self.evaluate(final=True)
        if self.is_main:
            atomic_write_json(self.out_dir / "final.json", result)
            src = self.cfg.data.source.name
            write_report(result, self.out_dir, setup=src if src in ("gta5", "synthia") else None)
        return result or {}


def train(cfg: ExperimentConfig, out_dir: str | os.PathLike, *, resume: bool = False,
          device: str | torch.device | None = None,
          callbacks: dict[str, list[Callable[[Trainer], Any]]] | None = None) -> dict[str, Any]:
    """Train ``cfg`` into ``out_dir`` and return the final evaluation (the content of ``final.json``).

    Args:
        cfg: the resolved experiment config (:func:`uda.config.load_config`).
        out_dir: run directory.
        resume: continue from the newest valid checkpoint (automatic on a torchrun elastic restart).
        device: overrides ``cfg.trainer.device``.
        callbacks: event → list of ``fn(trainer)`` (see :data:`EVENTS`).

    Returns:
        The evaluation JSON of the target validation split (``miou``, ``per_class``, ...).

    Raises:
        UdaError: unwritable output dir, checkpoint write failure; :class:`TrainingInterrupted` after SIGTERM/SIGINT.
        NonFiniteLossError: a NaN/Inf loss with ``trainer.nonfinite="stop"``.
    """
    trainer = Trainer(cfg, out_dir, resume=resume, device=device)
    try:
        for event, fns in (callbacks or {}).items():
            for fn in fns:
                trainer.add_callback(event, fn)
        return trainer.fit()
    finally:
        D.cleanup()
