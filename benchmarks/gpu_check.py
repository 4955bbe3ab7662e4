"""One command for a lent GPU: speed, memory, precision, augmentation, CLI and NCCL checks in under 8 minutes.

Sections (each recorded with its wall time; a failing section is recorded with its error and the script goes on,
then exits with status 1):

1. ``throughput``: per recipe family at the paper sizes — AdvEnt and MLFA with DeepLab-v2 at 1280x720 (source) +
   1024x512 (target); DAFormer (``daformer_mitb5``, 512 crops, batch 2), HRDA / MIC-HRDA (``hrda_mitb5``, 1024
   crops) and VFM-UDA (``vfm``, ViT-L, 1024 crops) — seconds per iteration, images/s and peak memory in fp32,
   bf16 + channels_last, and bf16 + channels_last + ``torch.compile``. A model or recipe name that is not
   registered is reported as "not available", so the script runs before and after those land. The
   ``torch.compile`` variant is its own section (``compile``), run after the others: compiling each network
   takes the longest and is the first thing the time budget drops.
2. ``memory``: peak memory of the joint vs the sequential backward (``bench_memory.py``), AdvEnt DeepLab-v2.
   ``mic_hrda_memory``: one MIC-HRDA training step (``hrda_mitb5``, 1024x1024 crops, batch 2) in fp32, with
   activation checkpointing, in bf16, and in bf16 + checkpointing (``bench_memory.py --experiment mic_hrda``);
   target: bf16 + checkpointing <= 20 GB (``within_target``).
3. ``short_run``: a short synthetic AdvEnt run in fp32 and in bf16, mIoU side by side.
4. ``augment``: the kornia augmentation pipeline on the device.
5. ``cli``: ``uda predict``, ``uda evaluate`` and ``uda translate`` with ``--device``.
6. ``torchrun``: a one-process NCCL (gloo on the CPU) ``torchrun`` training run through DDP.
7. ``vfm_checkpointing``: one VFM-UDA++ training step (``vfm_uda`` config: student, EMA teacher, frozen
   feature-distance copy, masked target term) of DINOv2 ViT-L/14 + registers at 1024x1024 crops, batch 2 (the
   per-GPU batch of the published run), bf16, without and with activation checkpointing: s/it, peak memory
   and the activation bytes kept for backward. ``--device cpu`` measures the relative saving at a reduced size
   (ViT-S/14 at 224x224, fp32); ``--smoke`` uses ``vfm_tiny`` at 112x112.
8. ``scaling``: the 1 → 8 GPU efficiency model of ``bench_scaling.py`` fed with this machine's AdvEnt step
   time and all-reduce figures (a model, not a measurement).

Writes ``gpu_check.{json,md}`` (``gpu_check_smoke`` with ``--smoke``) under ``benchmarks/results`` (or ``--out``)
after every section, each time through a temporary file and a rename: a run cut short keeps what it measured.
``--budget-s`` (default 450) bounds the run: a section, or a throughput / compile variant, that would start after
the budget is spent is recorded as skipped instead of run, and the subprocesses' timeouts shrink to what is left.

Usage::

    python benchmarks/gpu_check.py --device cuda --out "$OUT"   # on a lent GPU (at most --budget-s, 450 s)
    python benchmarks/gpu_check.py --smoke --device cpu    # the same code paths at tiny sizes (CI, 1-2 minutes)
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header, machine_line, md_table, out_dir, write_results

ROOT = Path(__file__).resolve().parents[1]

# family → (config prefix, model, source size, target size, batch): the ``<prefix>_synthetic`` config with that model
FAMILIES = {
    "adversarial (AdvEnt)": ("advent", "deeplabv2", "1280x720", "1024x512", 1),
    "MLFA": ("mlfa", "deeplabv2", "1280x720", "1024x512", 1),
    "self-training (DAFormer)": ("daformer", "daformer_mitb5", "512x512", "512x512", 2),
    "self-training (HRDA)": ("hrda", "hrda_mitb5", "1024x1024", "1024x1024", 1),
    "self-training (MIC-HRDA)": ("mic", "hrda_mitb5", "1024x1024", "1024x1024", 1),
    "self-training (VFM-UDA, ViT-L)": ("vfm_uda", "vfm", "1024x1024", "1024x1024", 1),
}
SMOKE_SIZES = ("64x32", "64x32")
VARIANTS = {"fp32": ["trainer.amp=none", "trainer.channels_last=false"],
            "bf16+channels_last": ["trainer.amp=bf16", "trainer.channels_last=true"]}
COMPILE_VARIANTS = {"bf16+channels_last+compile": ["trainer.amp=bf16", "trainer.channels_last=true",
                                                   "trainer.compile=true"]}
DEFAULT_BUDGET_S = 450.0  # a lent GPU is held for about 15 minutes, start-up and transfers included


class Budget:
    """The run's time budget: what is left of it, and the line that records a step it had to leave out."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.start = time.perf_counter()

    def left(self) -> float:
        return float("inf") if self.seconds is None else self.seconds - (time.perf_counter() - self.start)

    def spent(self) -> bool:
        return self.left() <= 0

    def timeout(self, cap: float, floor: float = 60.0) -> float:
        """A subprocess timeout (per started process): ``cap`` seconds, or what is left of the budget (never under
        ``floor``)."""
        return max(floor, min(cap, self.left()))

    def skipped(self) -> str:
        return f"skipped: the {self.seconds:g} s budget (--budget-s) was spent"


def registered(kind: str, name: str) -> bool:
    """Whether ``name`` is registered under ``kind`` (importing ``uda`` registers the built-in components)."""
    import uda  # noqa: F401
    from uda._registry import registry

    return name in registry(kind).names()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_seg_steps(tr: Any, device: torch.device, *, warmup: int, iters: int) -> tuple[float, float | None]:
    """``warmup`` then ``iters`` timed steps of the trainer's seg stage: (median s/it, CUDA peak MiB or ``None``)."""
    stage = next(s for s in tr.stages if s.name == "seg")
    tr.set_modes(stage)
    for _ in range(warmup):
        tr.train_step(stage)
    _sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        tr.train_step(stage)
        _sync(device)
        times.append(time.perf_counter() - t)
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return statistics.median(times), peak


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
                PYTHONWARNINGS="ignore", OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))


def _cmd(args: list[str], timeout: float, cwd: Path | None = None) -> dict[str, Any]:
    t = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=_env(), cwd=cwd)
    row = {"command": " ".join(str(a) for a in args[1:]), "rc": proc.returncode, "s": time.perf_counter() - t}
    if proc.returncode != 0:
        raise RuntimeError(f"`{row['command']}` exited {proc.returncode}: {proc.stderr.strip()[-1500:]}")
    return row


# ------------------------------------------------------------------------------------------------ sections
def throughput(device: torch.device, smoke: bool, iters: int, budget: Budget,
               variants: dict[str, list[str]] = VARIANTS, base_rows: Sequence[dict[str, Any]] = ()
               ) -> list[dict[str, Any]]:
    """s/it, images/s and peak memory per family and precision variant (one trainer alive at a time).

    ``speedup_vs_fp32`` / ``memory_vs_fp32`` compare each row with the family's fp32 row, from these rows or
    ``base_rows`` (the ``compile`` section runs after ``throughput``)."""
    from bench_train import build_trainer

    rows = []
    for family, (recipe, model, src, tgt, batch) in FAMILIES.items():
        missing = [f"model '{model}'"] if not registered("model", model) else []
        if not registered("config", f"{recipe}_synthetic"):  # hrda/mic are configs of the dacs recipe
            missing.append(f"config '{recipe}_synthetic'")
        if missing:
            rows.append({"family": family, "variant": "—", "status": "not available (" + ", ".join(missing)
                         + " not registered)"})
            continue
        if smoke:  # MLFA's multi-level feature discriminator needs 128x64 inputs
            model = {"deeplabv2": "deeplabv2_tiny", "daformer_mitb5": "daformer_tiny", "vfm": "vfm_tiny"}.get(model, model)
            src, tgt = ("128x64", "128x64") if recipe == "mlfa" else SMOKE_SIZES
        hr = []  # HRDA: the paper's 512 detail crop (the synthetic presets use 64) and MIC's 64-pixel blocks
        if model.startswith("hrda"):
            model, src, tgt = ("hrda_tiny", "64x64", "64x64") if smoke else (model, src, tgt)
            hr = [f"model.options.detail_size={32 if smoke else 512}"]
            if recipe == "mic":
                hr.append(f"recipe.mic_options.block={8 if smoke else 64}")
        for variant, sets in variants.items():
            if budget.spent():
                rows.append({"family": family, "variant": variant, "status": budget.skipped()})
                continue
            if smoke and "compile" in variant:  # inductor needs minutes on a 2-core CPU; the GPU run measures it
                rows.append({"family": family, "variant": variant, "status": "skipped in --smoke"})
                continue
            if device.type == "cpu" and not smoke and "bf16" in variant:
                rows.append({"family": family, "variant": variant, "status": "skipped: bf16 on this CPU is slow"})
                continue
            extra = [*sets, *hr, *(["model.options.width=4"] if smoke and model == "deeplabv2_tiny" else [])]
            with tempfile.TemporaryDirectory() as run_dir:
                tr = build_trainer(recipe, model=model, src_size=src, tgt_size=tgt, batch=batch, device=device,
                                   run_dir=run_dir, extra=extra)
                # warm-up steps: compile, allocator, optimizer state
                s, peak = _time_seg_steps(tr, device, warmup=1 if smoke else 2, iters=iters)
                rows.append({"family": family, "variant": variant, "status": "ok", "model": model,
                             "size": f"{src}+{tgt}", "batch": batch, "s_per_it": s, "images_per_s": 2 * batch / s,
                             "peak_mib": peak, "skipped_steps": tr.skipped})
                tr = None
            gc.collect()
            if device.type == "cuda":
                torch.cuda.empty_cache()
    return compare_with_fp32(rows, base_rows)


def compare_with_fp32(rows: list[dict[str, Any]], base_rows: Sequence[dict[str, Any]] = ()) -> list[dict[str, Any]]:
    """Add ``speedup_vs_fp32`` and ``memory_vs_fp32`` to every measured row, against its family's fp32 row."""
    base = {r["family"]: r for r in [*base_rows, *rows] if r.get("variant") == "fp32" and r["status"] == "ok"}
    for r in rows:
        b = base.get(r["family"])
        if b and r["status"] == "ok":
            r["speedup_vs_fp32"] = b["s_per_it"] / r["s_per_it"]
            r["memory_vs_fp32"] = r["peak_mib"] / b["peak_mib"] if r["peak_mib"] and b["peak_mib"] else None
    return rows


def memory(device: torch.device, smoke: bool, budget: Budget) -> list[dict[str, Any]]:
    import bench_memory

    size = "64x32" if smoke else "1024x512"
    modes = ["joint", "sequential"] if smoke else list(bench_memory.MODES)  # one interpreter start each
    return bench_memory.run(smoke, size, str(device), 1, modes, timeout_s=budget.timeout(300))


#: MIC-HRDA at 1024 crops in bf16 with checkpointing must fit a 24 GB card with headroom.
MIC_HRDA_TARGET_MIB = 20 * 1024


def mic_hrda_memory(device: torch.device, smoke: bool, budget: Budget) -> list[dict[str, Any]]:
    """Peak memory of a MIC-HRDA step at 1024 crops: fp32, checkpointing, bf16, bf16 + checkpointing."""
    import bench_memory

    size = "64x64" if smoke else "1024x1024"
    modes = ["mic_hrda", "mic_hrda+checkpointing"] if smoke else list(bench_memory.MIC_HRDA_MODES)
    rows = bench_memory.run(smoke, size, str(device), 1, modes, timeout_s=budget.timeout(300))
    for r in rows:
        r["within_target"] = r["peak_mib"] <= MIC_HRDA_TARGET_MIB if r["mode"].endswith("bf16+checkpointing") else None
    return rows


def short_run(device: torch.device, smoke: bool, work: Path) -> list[dict[str, Any]]:
    """A short synthetic AdvEnt run in fp32 and bf16 (same seed, in this process): mIoU side by side."""
    from uda.config import load_config
    from uda.engine import train

    iters = 2 if smoke else 600
    rows = []
    for amp in ("none", "bf16"):
        sets = [f"trainer.max_iters={iters}", f"trainer.amp={amp}", "trainer.eval_every=0", "trainer.tensorboard=false",
                f"trainer.checkpoint_every={iters}", "data.num_workers=0", f"trainer.device={device}"]
        if smoke:
            sets += ["data.source.size=64x32", "data.target.size=64x32", "data.val.size=64x32", "eval.size=64x32",
                     "data.val.options.num=2", "model.options.width=4"]
        t = time.perf_counter()
        final = train(load_config("advent_synthetic", sets), work / f"short_{amp}")
        rows.append({"amp": amp, "iters": iters, "miou": final.get("miou"), "s": time.perf_counter() - t})
    return rows


def augment(device: torch.device, smoke: bool) -> dict[str, Any]:
    import uda

    size = (32, 64) if smoke else (720, 1280)
    aug = uda.create("augmentation", "standard")  # the kornia pipeline of the adversarial recipes
    aug = aug.to(device)
    x = torch.rand(2, 3, *size, device=device)
    y = torch.randint(0, 19, (2, *size), device=device)
    xo, yo = aug(x, y)
    _sync(device)
    t = time.perf_counter()
    for _ in range(3 if smoke else 20):
        xo, yo = aug(x, y)
    _sync(device)
    return {"augmentation": type(aug).__name__, "device": str(xo.device), "size": f"{size[1]}x{size[0]}",
            "batch": 2, "ms_per_batch": (time.perf_counter() - t) / (3 if smoke else 20) * 1e3,
            "label_dtype": str(yo.dtype)}


def _uda(*args: Any) -> dict[str, Any]:
    """``uda ARGS`` in this process (click's runner); raises with the output on a non-zero exit."""
    from click.testing import CliRunner

    from uda.cli import main as uda_main

    t = time.perf_counter()
    r = CliRunner().invoke(uda_main, [str(a) for a in args], catch_exceptions=False)
    row = {"command": "uda " + " ".join(str(a) for a in args[:1]), "rc": r.exit_code, "s": time.perf_counter() - t}
    if r.exit_code != 0:
        raise RuntimeError(f"`uda {' '.join(map(str, args))}` exited {r.exit_code}: {r.output.strip()[-1500:]}")
    return row


def cli(device: torch.device, work: Path) -> list[dict[str, Any]]:
    """``uda predict``, ``evaluate``, ``translate`` with ``--device`` on synthetic trees and a 2-iteration run."""
    import uda
    from uda.translators import save_translator

    dev, size = str(device), "64x32"
    gta, cs = work / "GTA5", work / "cityscapes"
    _uda("data", "synth", "--out", gta, "--domain", "source", "--layout", "gta5", "--num", "4", "--size", size)
    _uda("data", "synth", "--out", cs, "--domain", "target", "--layout", "cityscapes", "--num", "2", "--size", size,
         "--seed", "1")
    run = work / "run_cli"
    _uda("train", "source_only_synthetic", "--source", f"gta5:{gta}", "--target", f"cityscapes:{cs}", "--out", run,
         "--set", "trainer.max_iters=2", "--set", "trainer.checkpoint_every=2", "--set", "trainer.tensorboard=false",
         "--set", f"data.source.size={size}", "--set", f"data.target.size={size}", "--set", f"eval.size={size}",
         "--set", "data.batch_size=2", "--device", dev)
    translator = work / "translator.pt"
    save_translator(uda.create("translator", "cyclegan_tiny"), translator)
    images = sorted((cs / "leftImg8bit").rglob("*.png"))[:2]
    return [_uda("predict", run, *images, "--out", work / "pred", "--device", dev),
            _uda("evaluate", run, "--dataset", "cityscapes", "--root", cs, "--json", "--device", dev),
            _uda("translate", translator, "--dataset", "gta5", "--root", gta, "--out", work / "translated",
                 "--device", dev)]


def torchrun(device: torch.device, smoke: bool, work: Path, budget: Budget) -> dict[str, Any]:
    """One process through torchrun with a real process group (NCCL on CUDA) and DDP-wrapped networks."""
    out = work / "torchrun"
    args = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=1",
            str(Path(__file__).resolve()), "--child-torchrun", str(out), "--device", str(device)]
    row = _cmd(args, budget.timeout(300))
    return {**row, **json.loads((out / "child.json").read_text())}


def _child_torchrun(out: Path, device: str) -> None:
    """Inside torchrun: join the group, wrap a tiny AdvEnt task in DDP, train 3 steps, time one all-reduce."""
    import torch.distributed as dist

    from uda.config import load_config
    from uda.engine import Trainer

    dev = torch.device(device)
    if dev.type == "cuda":
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(dev)
    dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    cfg = load_config("advent_synthetic", ["data.source.size=64x32", "data.target.size=64x32", "data.val.size=64x32",
                                           "eval.size=64x32", "model.options.width=4", "trainer.max_iters=3",
                                           "trainer.tensorboard=false", "data.val.options.num=2",
                                           f"trainer.device={dev}"])
    tr = Trainer(cfg, out)
    tr.build()
    if tr.ddp is None:  # one process: the trainer needs no DDP, but this check exercises it over the real group
        from uda.engine.ddp import DDPRouter

        tr.ddp = DDPRouter([st.task for st in tr.stages], tr.device)
    stage = tr.stages[-1]
    tr.set_modes(stage)
    for _ in range(3):
        tr.train_step(stage)
    numel = 44_600_000 if dev.type == "cuda" else 1_000_000
    buf = torch.ones(numel, device=dev)
    dist.all_reduce(buf)
    _sync(dev)
    t = time.perf_counter()
    for _ in range(5):
        dist.all_reduce(buf)
    _sync(dev)
    sec = (time.perf_counter() - t) / 5
    res = {"backend": dist.get_backend(), "world_size": dist.get_world_size(),
           "ddp_units": len(tr.ddp.units) if tr.ddp is not None else 0, "allreduce_mbytes": numel * 4 / 1e6,
           "allreduce_s": sec}
    out.mkdir(parents=True, exist_ok=True)
    (out / "child.json").write_text(json.dumps(res))
    dist.destroy_process_group()


def _saved_activation_mib(fn) -> float:
    """MiB of distinct non-parameter tensors autograd keeps for backward while ``fn`` runs (device-independent)."""
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        if not (t.is_leaf and t.requires_grad):  # parameters are not activations
            st = t.untyped_storage()
            seen[st.data_ptr()] = st.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(seen.values()) / 2**20


def vfm_checkpointing(device: torch.device, smoke: bool, iters: int) -> list[dict[str, Any]]:
    """A VFM-UDA++ step without / with activation checkpointing in the encoder: s/it, peak and kept memory."""
    from bench_train import build_trainer

    if smoke:
        model, backbone, size, batch, amp = "vfm_tiny", None, "112x112", 2, "none"
    elif device.type == "cpu":  # the relative saving at a reduced size (bf16 on a CPU is ~500x slower)
        model, backbone, size, batch, amp = "vfm", "vit_small_patch14_reg4_dinov2", "224x224", 1, "none"
    else:  # the published run's per-GPU load
        model, backbone, size, batch, amp = "vfm", "vit_large_patch14_reg4_dinov2", "1024x1024", 2, "bf16"
    rows = []
    for ckpt in (False, True):
        extra = [f"trainer.amp={amp}", f"model.options.activation_checkpointing={str(ckpt).lower()}"]
        extra += [f"model.options.backbone={backbone}"] if backbone else []
        row: dict[str, Any] = {"model": model if backbone is None else backbone, "size": size, "batch": batch,
                               "amp": amp, "grad_checkpointing": ckpt}
        try:
            with tempfile.TemporaryDirectory() as run_dir:
                tr = build_trainer("vfm_uda", model=model, src_size=size, tgt_size=size, batch=batch,
                                   device=device, run_dir=run_dir, extra=extra)
                # one warm-up step: allocator, optimizer state
                row["s_per_it"], row["peak_mib"] = _time_seg_steps(tr, device, warmup=1, iters=iters)
                stage = next(s for s in tr.stages if s.name == "seg")
                row["saved_activation_mib"] = _saved_activation_mib(functools.partial(tr.train_step, stage))
                row["status"] = "ok"
                tr = None
        except torch.OutOfMemoryError as e:
            row["status"] = f"out of memory: {str(e).splitlines()[0][:160]}"
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
        rows.append(row)
    off, on = rows
    if off["status"] == on["status"] == "ok":
        off["kept_vs_off"], off["time_vs_off"] = 1.0, 1.0
        on["kept_vs_off"] = on["saved_activation_mib"] / off["saved_activation_mib"]
        on["time_vs_off"] = on["s_per_it"] / off["s_per_it"]
        if on["peak_mib"] and off["peak_mib"]:
            on["peak_vs_off"] = on["peak_mib"] / off["peak_mib"]
    return rows


def scaling(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Feed this machine's AdvEnt step time into the efficiency model of ``bench_scaling.py``."""
    import bench_scaling

    rows = [r for r in results.get("throughput", []) if r.get("status") == "ok" and r["family"].startswith("adv")]
    if not rows:
        return []
    nbytes = bench_scaling.grad_numel(rows[0]["model"]) * 4
    out = []
    for r in rows:
        for link, bw in bench_scaling.LINKS.items():
            out.append({"variant": r["variant"], "link": link, "T_compute s": r["s_per_it"],
                        **{f"eff N={n}": bench_scaling.efficiency(r["s_per_it"], nbytes, n, bw * 1e9)
                           for n in (2, 4, 8)}})
    return out


# ------------------------------------------------------------------------------------------------ driver
def markdown(res: dict[str, Any]) -> str:
    lines = ["# GPU check" + (" (smoke)" if res["smoke"] else ""), "", machine_line(res), ""]
    if res.get("budget_s") is not None:
        lines += [f"Time budget {res['budget_s']:g} s (`--budget-s`); sections took {res.get('total_s', 0):.0f} s. "
                  "A section or variant that would have started after the budget was spent says so.", ""]
    lines += ["| section | status | s |", "|---|---|---:|"]
    lines += [f"| {k} | {v['status']} | {v['s']:.1f} |" for k, v in res["sections"].items()]
    for key, title in (("throughput", "Throughput per recipe family"),
                       ("compile", "Throughput with torch.compile (bf16 + channels_last)"),
                       ("memory", "Joint vs sequential backward"),
                       ("mic_hrda_memory", "MIC-HRDA step at 1024 crops: fp32 / checkpointing / bf16 (<= 20 GB)"),
                       ("short_run", "Short synthetic AdvEnt run: fp32 vs bf16"), ("cli", "CLI with --device"),
                       ("vfm_checkpointing", "VFM-UDA++ step: activation checkpointing off / on"),
                       ("scaling", "Scaling model (not a measurement): efficiency from this step time")):
        if res.get(key):
            lines += ["", f"## {title}", "", md_table(res[key])]
    for key in ("augment", "torchrun"):
        if res.get(key):
            lines += ["", f"## {key}", "", md_table([res[key]])]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, same code paths (CI); writes to a temp folder")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--iters", type=int, help="timed iterations per variant [default 5, smoke 1]")
    ap.add_argument("--only", help="comma-separated sections to run")
    ap.add_argument("--budget-s", type=float, default=DEFAULT_BUDGET_S,
                    help=f"seconds the run may take before it skips what is left [default {DEFAULT_BUDGET_S:g}; "
                         "0 skips every section but the scaling model]")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--child-torchrun", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child_torchrun:
        _child_torchrun(args.child_torchrun, args.device)
        return {}
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda but CUDA is not available; use --device cpu (with --smoke)")
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")) if device.type == "cpu" else torch.get_num_threads())
    iters = args.iters or (1 if args.smoke else 5)
    res: dict[str, Any] = {**header(device, "benchmarks/gpu_check.py", argv), "smoke": args.smoke, "sections": {}}
    only = set(args.only.split(",")) if args.only else None
    budget = Budget(args.budget_s)
    res["budget_s"] = args.budget_s
    out = out_dir(args)
    name_out = "gpu_check_smoke" if args.smoke else "gpu_check"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        # the targets first; compiling (the slowest to start) last but the model fed with what was measured
        sections = {
            "throughput": lambda: throughput(device, args.smoke, iters, budget),
            "memory": lambda: memory(device, args.smoke, budget),
            "mic_hrda_memory": lambda: mic_hrda_memory(device, args.smoke, budget),
            "short_run": lambda: short_run(device, args.smoke, work),
            "augment": lambda: augment(device, args.smoke),
            "cli": lambda: cli(device, work),
            "torchrun": lambda: torchrun(device, args.smoke, work, budget),
            "vfm_checkpointing": lambda: vfm_checkpointing(device, args.smoke, iters),
            "compile": lambda: throughput(device, args.smoke, iters, budget, COMPILE_VARIANTS,
                                          res.get("throughput") or []),
            "scaling": lambda: scaling(res),
        }
        for name, fn in sections.items():
            if only is not None and name not in only:
                continue
            if name != "scaling" and budget.spent():  # the model costs nothing and uses what was measured
                res["sections"][name] = {"status": budget.skipped(), "s": 0.0}
                continue
            t = time.perf_counter()
            print(f"[gpu_check] {name} ...", file=sys.stderr, flush=True)
            try:
                res[name] = fn()
                status = "ok"
            except Exception as e:  # a check records every failure and goes on
                status = f"failed: {type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"
                res.setdefault("errors", {})[name] = traceback.format_exc()[-4000:]
            res["sections"][name] = {"status": status, "s": time.perf_counter() - t}
            res["total_s"] = sum(v["s"] for v in res["sections"].values())
            write_results(out, name_out, res, markdown(res))  # a run cut short keeps what it measured
    res["total_s"] = sum(v["s"] for v in res["sections"].values())
    md = markdown(res)
    jp, _ = write_results(out, name_out, res, md)
    print(md)
    print(f"wrote {jp} and its .md", file=sys.stderr)
    if any(v["status"].startswith("failed") for v in res["sections"].values()):
        sys.exit(1)
    return res


if __name__ == "__main__":
    main()
