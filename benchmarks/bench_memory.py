"""Peak memory of one AdvEnt training step: joint backward vs ``trainer.sequential_backward`` (vs + checkpointing).

The joint backward holds the source and the target graphs of the segmentation network at once; the sequential
backward frees the source graph before the target forward, as the original AdaptSegNet/ADVENT loops do;
activation checkpointing (``model.options.activation_checkpointing=true``) recomputes the encoder stages'
activations in the backward pass. Each mode runs in its own process (peak RSS, ``ru_maxrss``, is process-wide
and monotonic; on CUDA ``torch.cuda.max_memory_allocated``): the process builds the experiment through the real
``Trainer``, then runs ``--steps`` training steps. Figures: the peak, the memory after the build (weights,
optimizer state, datasets) and the step's growth above it; the ratio is peak / peak of the joint backward.

Usage::

    python benchmarks/bench_memory.py                  # full DeepLab-v2 AdvEnt at 512x256 on the CPU, 1 step
    python benchmarks/bench_memory.py --device cuda    # the same on a GPU (also run by gpu_check.py)
    python benchmarks/bench_memory.py --smoke          # tiny model at 64x32 (CI), writes nothing unless --out

MIC-HRDA (``--experiment mic_hrda``): one training step of ``mic_synthetic`` with the paper's network
(``hrda_mitb5``, random init, batch 2, detail crop = half the crop) at ``--size`` crops, in fp32, fp32 +
activation checkpointing of the encoder, bf16 autocast, and bf16 + checkpointing; the ratio is peak / peak of
fp32. On the CPU bf16 is hundreds of times slower, so the CPU run takes the fp32 modes at a reduced size::

    python benchmarks/bench_memory.py --experiment mic_hrda --size 256x256 --modes mic_hrda,mic_hrda+checkpointing
    python benchmarks/bench_memory.py --experiment mic_hrda --size 1024x1024 --device cuda   # target bf16+ckpt <= 20 GB
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header, machine_line, maxrss_mib, md_table, out_dir, write_results

MODES = {
    "joint": [],
    "sequential": ["trainer.sequential_backward=true"],
    "sequential+checkpointing": ["trainer.sequential_backward=true", "model.options.activation_checkpointing=true"],
}

_CKPT, _BF16 = "model.options.activation_checkpointing=true", "trainer.amp=bf16"
MIC_HRDA_MODES = {
    "mic_hrda": [],
    "mic_hrda+checkpointing": [_CKPT],
    "mic_hrda+bf16": [_BF16],
    "mic_hrda+bf16+checkpointing": [_BF16, _CKPT],
}
EXPERIMENTS = {"advent": MODES, "mic_hrda": MIC_HRDA_MODES}


def mic_hrda_overrides(smoke: bool, size: str, device: str) -> list[str]:
    """``mic_synthetic`` (MIC on HRDA) at ``size`` crops, batch 2; ``hrda_mitb5`` unless ``smoke``."""
    w, h = (int(v) for v in size.split("x"))
    over = [f"data.{s}.size={size}" for s in ("source", "target")] + [
        f"recipe.crop={size}", "data.source.options.num=4", "data.target.options.num=4", "data.val.options.num=1",
        "data.batch_size=2", "trainer.eval_every=0", "trainer.tensorboard=false", f"trainer.device={device}",
        "trainer.checkpoint_every=100000", "data.num_workers=0", f"model.options.detail_size={min(w, h) // 2}",
        "recipe.mic_options.block=64" if not smoke else "recipe.mic_options.block=8"]
    if not smoke:
        over += ["model.name=hrda_mitb5"]
    return over


def overrides(smoke: bool, size: str, device: str) -> list[str]:
    """The experiment: ``advent_synthetic`` (synthetic data, random init) at ``size``, batch 1, one thread."""
    over = [f"data.{s}.size={size}" for s in ("source", "target", "val")] + [
        f"eval.size={size}", "data.source.options.num=4", "data.target.options.num=4", "data.val.options.num=1",
        "data.batch_size=1", "trainer.eval_every=0", "trainer.tensorboard=false", f"trainer.device={device}",
        "trainer.checkpoint_every=100000", "data.num_workers=0"]
    if not smoke:  # full DeepLab-v2 ResNet-101 (multi-level, frozen BN), the paper's discriminator
        # random init: frozen (identity) BN statistics overflow a random ResNet-101 to NaN, so the originals'
        # "moving" BN (as in bench_train.py); a skipped step still runs both full backward passes.
        over += ["model.name=deeplabv2", "model.options.bn_mode=moving", "recipe.discriminator=fc",
                 "trainer.nonfinite=skip"]
    else:
        over += ["model.options.width=4"]
    return over


def child(mode: str, smoke: bool, size: str, device: str, steps: int) -> dict[str, Any]:
    """One mode in this process: build, ``steps`` training steps, the memory figures."""
    import tempfile

    import torch

    from uda.config import load_config
    from uda.engine import Trainer

    torch.set_num_threads(1)
    if mode in MIC_HRDA_MODES:
        cfg = load_config("mic_synthetic", [*mic_hrda_overrides(smoke, size, device), *MIC_HRDA_MODES[mode],
                                            f"trainer.max_iters={steps}"])
    else:
        cfg = load_config("advent_synthetic", [*overrides(smoke, size, device), *MODES[mode],
                                               f"trainer.max_iters={steps}"])
    with tempfile.TemporaryDirectory() as tmp:
        tr = Trainer(cfg, tmp)
        tr.build()
        stage = tr.stages[-1]
        tr.set_modes(stage)
        cuda = tr.device.type == "cuda"
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated() / 2**20
        else:
            base = maxrss_mib()
        start = time.perf_counter()
        for _ in range(steps):
            tr.train_step(stage)
        if cuda:
            torch.cuda.synchronize()
        seconds = (time.perf_counter() - start) / steps
        peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else maxrss_mib()
    return {"mode": mode, "model": cfg.model.name, "size": size, "device": str(tr.device), "steps": steps,
            "after_build_mib": round(base, 1), "peak_mib": round(peak, 1), "step_growth_mib": round(peak - base, 1),
            "s_per_step": seconds}


def run(smoke: bool, size: str, device: str, steps: int, modes: list[str], timeout_s: float) -> list[dict[str, Any]]:
    """Every mode in a fresh interpreter, one after the other."""
    rows = []
    for mode in modes:
        cmd = [sys.executable, __file__, "--child", mode, "--size", size, "--device", device, "--steps", str(steps)]
        if smoke:
            cmd.append("--smoke")
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        if proc.returncode != 0:
            raise RuntimeError(f"bench_memory child '{mode}' failed:\n{proc.stderr[-3000:]}")
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    joint = next((r for r in rows if r["mode"] in ("joint", "mic_hrda")), None)  # the reference: no saving
    for r in rows:
        r["peak_vs_joint"] = r["peak_mib"] / joint["peak_mib"] if joint else None
        r["growth_vs_joint"] = r["step_growth_mib"] / joint["step_growth_mib"] if joint and joint["step_growth_mib"] > 0 else None
    return rows


def markdown(res: dict[str, Any]) -> str:
    r0 = res["rows"][0]
    unit = "CUDA max_memory_allocated" if r0["device"].startswith("cuda") else "peak RSS (ru_maxrss)"
    if r0["mode"] in MIC_HRDA_MODES:
        return "\n".join([
            "# Memory: MIC-HRDA training step (fp32 / checkpointing / bf16)", "", machine_line(res), "",
            f"`mic_synthetic` with `{r0['model']}` at {r0['size']} crops, batch 2, {r0['steps']} step(s), one "
            f"process per mode; {unit}; `peak_vs_joint` = peak / fp32 peak. Target on a GPU at 1024x1024: "
            "bf16 + checkpointing <= 20 GB.", "",
            md_table(res["rows"], ["mode", "after_build_mib", "peak_mib", "step_growth_mib", "peak_vs_joint",
                                   "growth_vs_joint", "s_per_step"])])
    return "\n".join([
        "# Memory: joint vs sequential backward (AdvEnt)", "", machine_line(res), "",
        f"`advent_synthetic` with `{r0['model']}` at {r0['size']}, batch 1 per domain, fp32, {r0['steps']} step(s), "
        f"one process per mode; {unit}. Target: sequential peak <= 0.85x of the joint peak.", "",
        md_table(res["rows"], ["mode", "after_build_mib", "peak_mib", "step_growth_mib", "peak_vs_joint",
                               "growth_vs_joint", "s_per_step"])])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny model at 64x32 (CI); writes nothing unless --out")
    ap.add_argument("--size", help="WxH [default 512x256, smoke 64x32]")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", type=int, default=1)
    ap.add_argument("--experiment", choices=list(EXPERIMENTS), default="advent",
                    help="advent (joint vs sequential backward) or mic_hrda (fp32 / checkpointing / bf16)")
    ap.add_argument("--modes", help="comma-separated subset of the experiment's modes [default: all]")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per mode")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    default = {"advent": ("64x32", "512x256"), "mic_hrda": ("64x64", "256x256")}[args.experiment]
    size = args.size or default[0 if args.smoke else 1]
    if args.child:
        print(json.dumps(child(args.child, args.smoke, size, args.device, args.steps)))
        return {}
    known = EXPERIMENTS[args.experiment]
    modes = [m for m in args.modes.split(",") if m] if args.modes else list(known)
    bad = [m for m in modes if m not in known]
    if bad:
        ap.error(f"unknown mode(s) {bad}; use {', '.join(known)}")
    res = {**header(args.device, "benchmarks/bench_memory.py", argv),
           "rows": run(args.smoke, size, args.device, args.steps, modes, args.timeout), "smoke": args.smoke}
    name = "memory_smoke" if args.smoke else ("memory" if args.device == "cpu" else "memory_cuda")
    if args.experiment == "mic_hrda":
        name = name.replace("memory", "memory_mic_hrda")
    write_results(out_dir(args), name, res, markdown(res))
    print(markdown(res))
    return res


if __name__ == "__main__":
    main()
