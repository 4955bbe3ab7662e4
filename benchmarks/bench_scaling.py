"""Multi-process scaling: 1 vs 2 ``torchrun`` processes on CPU (gloo), and a compute-vs-all-reduce model for N GPUs.

Issue 8, item 5. Three parts:

1. ``allreduce``: the gloo all-reduce time of one flat fp32 tensor of DeepLab-v2's gradient size
   (44.6M parameters → 178 MB) between 2 local processes; bus bandwidth = ``2(N−1)/N × bytes / t``.
2. ``torchrun``: ``torchrun --nproc-per-node N -m uda train source_only_synthetic --set ...`` for N = 1, 2 with a
   tiny model and with the full ``deeplabv2`` at a small size; per-iteration time from ``metrics.jsonl``
   (``log_every=1``, ``1 / it_per_s``, the first iterations dropped: start-up is not in it).
3. ``model``: the engine wraps every trained network in DistributedDataParallel (:mod:`uda.engine.ddp`), whose
   gradient buckets (25 MiB) are all-reduced while the backward pass goes on. ``predict_ddp`` charges each
   iteration its compute plus the communication that does not fit under the backward pass, and at least the last
   bucket: ``T(N) = T_compute + max(C_last, C − f·T_compute)`` with ``C = 2(N−1)/N · B / busbw + 2(N−1)·α·#buckets``;
   the scaling efficiency is ``T_compute / T(N)``. ``predict`` is the same without overlap (one flat all-reduce
   after the backward pass, the engine before DDP), kept as the pessimistic bound. Both are checked against part 2
   (measured 1-process compute + the measured gloo bandwidth → predicted 2-process iteration) and then evaluated
   for DeepLab-v2 at the paper sizes on GPUs (compute from FLOPs counted on the meta device × an assumed MFU; link
   bandwidths of PCIe and NVLink generations, stated below as assumptions).

Usage:
    python benchmarks/bench_scaling.py                  # full run → benchmarks/results/scaling.{json,md}
    python benchmarks/bench_scaling.py --smoke --out /tmp/b   # seconds, for CI (small tensor, 2 iterations)
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import header, load_average, machine_line, md_table, out_dir, write_results

DEEPLAB_PARAMS = 44.6e6  # DeepLab-v2 ResNet-101 with both heads, 19 classes

# Assumed per-GPU all-reduce bus bandwidths (GB/s) as achieved by NCCL ring all-reduce, and fp32 peaks (TFLOP/s).
LINKS = {"PCIe 3.0 x16": 10.0, "PCIe 4.0 x16": 20.0, "NVLink 2 (V100)": 130.0, "NVLink 3 (A100)": 230.0,
         "NVLink 4 (H100)": 360.0}
GPUS = {"V100 fp32": 15.7e12, "A100 fp32 (no TF32)": 19.5e12, "A100 bf16": 312e12, "H100 SXM bf16": 989e12}
ASSUMED_MFU = 0.35
ALPHA_S = 20e-6  # per-step latency of one ring hop (s), NCCL-like


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _allreduce_worker(rank: int, world: int, port: int, numel: int, repeats: int, q) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    x = torch.ones(numel)
    dist.all_reduce(x)  # warm-up (connections, buffers)
    times = []
    for _ in range(repeats):
        dist.barrier()
        t = time.perf_counter()
        dist.all_reduce(x)
        times.append(time.perf_counter() - t)
    if rank == 0:
        q.put(times)
    dist.barrier()
    dist.destroy_process_group()


def measure_allreduce(numel: int, world: int = 2, repeats: int = 5) -> dict[str, Any]:
    """gloo all-reduce of ``numel`` fp32 values between ``world`` local processes."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    port = _free_port()
    procs = [ctx.Process(target=_allreduce_worker, args=(r, world, port, numel, repeats, q)) for r in range(world)]
    for p in procs:
        p.start()
    times = q.get(timeout=600)
    for p in procs:
        p.join(timeout=120)
    nbytes = numel * 4
    t = statistics.median(times)
    return {"world": world, "numel": numel, "mbytes": nbytes / 1e6, "times_s": times, "median_s": t,
            "algbw_gb_s": nbytes / t / 1e9, "busbw_gb_s": 2 * (world - 1) / world * nbytes / t / 1e9}


def run_torchrun(nproc: int, sets: list[str], iters: int, drop: int, out: Path) -> dict[str, Any]:
    """``torchrun --nproc-per-node N -m uda train source_only_synthetic`` and its per-iteration times."""
    run = out / f"run_n{nproc}"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", "-m", "uda",
           "train", "source_only_synthetic", "--device", "cpu", "--out", str(run),
           "--set", f"trainer.max_iters={iters}", "--set", "trainer.log_every=1",
           "--set", "trainer.checkpoint_every=1000000", "--set", "trainer.tensorboard=false",
           "--set", "data.val.options.num=2"]
    for s in sets:
        cmd += ["--set", s]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"torchrun failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    recs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.strip()]
    steps = [r for r in recs if "it_per_s" in r]
    per_it = [1.0 / r["it_per_s"] for r in steps[drop:]]
    return {"nproc": nproc, "iters": iters, "dropped": drop, "per_it_s": per_it,
            "median_s_per_it": statistics.median(per_it), "wall_s": wall,
            "command": "torchrun " + " ".join(cmd[3:])}


def _skipped(run: Path) -> int:
    recs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.strip()]
    return max([int(r.get("skipped", 0)) for r in recs] or [0])


def grad_numel(model: str, num_classes: int = 19) -> int:
    """Trainable parameters of a registered model (what the engine all-reduces for source_only)."""
    import uda

    with torch.device("meta"):
        m = uda.create("model", model, num_classes=num_classes)
    return sum(p.numel() for p in m.parameters() if p.requires_grad)


def deeplab_flops(src: tuple[int, int], tgt: tuple[int, int]) -> dict[str, float]:
    """FLOPs of one AdvEnt-style iteration of DeepLab-v2 (source fwd+bwd, target fwd+bwd), counted on meta."""
    from torch.utils.flop_counter import FlopCounterMode

    import uda

    with torch.device("meta"):
        m = uda.create("model", "deeplabv2", num_classes=19)
    out = {}
    for name, (w, h) in (("source", src), ("target", tgt)):
        x = torch.empty(1, 3, h, w, device="meta")
        fc = FlopCounterMode(display=False)
        with fc:
            o = m(x)
            (o.logits.sum() + o.aux.sum()).backward()
        out[name] = fc.get_total_flops()
    out["iteration"] = out["source"] + out["target"]
    return out


def predict(t_compute: float, nbytes: float, n: int, busbw: float, alpha: float = ALPHA_S) -> float:
    """Predicted iteration time with one flat ring all-reduce after the backward pass."""
    if n == 1:
        return t_compute
    return t_compute + 2 * (n - 1) / n * nbytes / busbw + 2 * (n - 1) * alpha


BACKWARD_FRACTION = 2 / 3  # share of a step's compute in the backward pass (backward ~ 2x forward FLOPs)
BUCKET_BYTES = 25 * 2**20  # DDP's default bucket


def predict_ddp(t_compute: float, nbytes: float, n: int, busbw: float, alpha: float = ALPHA_S,
                bucket_bytes: float = BUCKET_BYTES) -> float:
    """A model (not a measurement) of the iteration time with DDP's bucketed all-reduce overlapped with the backward.

    The buckets are reduced while the backward pass goes on; what stays exposed is the communication that does
    not fit under the backward time, and at least the last bucket (it can only start when the backward ends):
    ``T(N) = T_compute + max(C_last, C − f·T_compute)`` with ``C = 2(N−1)/N · B / busbw + 2(N−1)·α·#buckets``.
    """
    if n == 1:
        return t_compute
    buckets = max(1, int(-(-nbytes // bucket_bytes)))
    comm = 2 * (n - 1) / n * nbytes / busbw + 2 * (n - 1) * alpha * buckets
    last = 2 * (n - 1) / n * min(nbytes, bucket_bytes) / busbw + 2 * (n - 1) * alpha
    return t_compute + max(last, comm - BACKWARD_FRACTION * t_compute)


def efficiency(t_compute: float, nbytes: float, n: int, busbw: float, alpha: float = ALPHA_S) -> float:
    """Modelled scaling efficiency ``T_compute / T(N)`` of the DDP loop (see ``predict_ddp``)."""
    return t_compute / predict_ddp(t_compute, nbytes, n, busbw, alpha)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="small tensor, 2 iterations of the tiny model (CI)")
    ap.add_argument("--out", default=None, help="output folder (default benchmarks/results; --smoke: a temporary folder)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    res: dict[str, Any] = header("cpu", __file__, argv)
    res["smoke"] = args.smoke
    numel = 1_000_000 if args.smoke else int(DEEPLAB_PARAMS)
    ar = measure_allreduce(numel, 2, repeats=2 if args.smoke else 5)
    res["allreduce"] = ar
    busbw = ar["busbw_gb_s"] * 1e9

    # Each torchrun start imports torch and uda in every process (tens of seconds on a loaded machine): the smoke
    # mode keeps CI fast by measuring the all-reduce and the model only.
    configs = {} if args.smoke else {"tiny": ["data.source.size=128x64", "data.target.size=128x64",
                                              "data.batch_size=2"]}
    if not args.smoke:
        configs["deeplabv2"] = ["model.name=deeplabv2", "data.source.size=160x96", "data.target.size=160x96",
                                "data.val.size=160x96", "data.batch_size=1", "eval.size=160x96",
                                # random-init ResNet-101: train-mode BN keeps it finite (see bench_train.py)
                                "optim.generator.lr=2.5e-4", "model.options.bn_mode=moving", "trainer.nonfinite=skip"]
    iters, drop = (3, 1) if args.smoke else (12, 2)
    runs: dict[str, Any] = {}
    check_rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, sets in configs.items():
            it = iters if name == "tiny" else 6
            r = {n: run_torchrun(n, sets, it, drop, Path(tmp) / name) for n in (1, 2)}
            model = "deeplabv2" if name == "deeplabv2" else "deeplabv2_tiny"
            nbytes = grad_numel(model) * 4
            t1, t2 = r[1]["median_s_per_it"], r[2]["median_s_per_it"]
            pred = predict_ddp(t1, nbytes, 2, busbw, alpha=0.0)
            flat = predict(t1, nbytes, 2, busbw, alpha=0.0)
            skipped = {n: _skipped(Path(tmp) / name / f"run_n{n}") for n in (1, 2)}
            runs[name] = {"sets": sets, "model": model, "grad_mbytes": nbytes / 1e6, "n1": r[1], "n2": r[2],
                          "skipped_steps": skipped}
            check_rows.append({"config": name, "model": model, "grad MB": nbytes / 1e6, "T1 s/it": t1,
                               "T2 s/it measured": t2, "T2 predicted": pred, "predicted/measured": pred / t2,
                               "T2 predicted (no overlap)": flat, "no overlap/measured": flat / t2,
                               "throughput gain (2·T1/T2)": 2 * t1 / t2})
    res["torchrun"] = runs
    res["check"] = check_rows

    # The on-paper model for N GPUs, DeepLab-v2 at the paper sizes (1280x720 source + 1024x512 target).
    flops = deeplab_flops((1280, 720), (1024, 512))
    nbytes = DEEPLAB_PARAMS * 4
    model_rows = []
    for gpu, peak in GPUS.items():
        t_comp = flops["iteration"] / (peak * ASSUMED_MFU)
        for link, bw in LINKS.items():
            row: dict[str, Any] = {"GPU": gpu, "link": link, "T_compute s": t_comp}
            for n in (2, 4, 8):
                row[f"eff N={n}"] = efficiency(t_comp, nbytes, n, bw * 1e9)
            for n in (2, 4, 8):
                row[f"no-overlap eff N={n}"] = t_comp / predict(t_comp, nbytes, n, bw * 1e9)
            model_rows.append(row)
    # The same model fed with this machine's figures: 1-process step times measured above + the gloo bandwidth.
    cpu_rows = []
    for c in check_rows:
        nb = c["grad MB"] * 1e6
        cpu_rows.append({"config": c["config"], "T1 s/it": c["T1 s/it"], "busbw GB/s (gloo)": busbw / 1e9,
                         **{f"eff N={n}": efficiency(c["T1 s/it"], nb, n, busbw) for n in (2, 4, 8)}})
    res["model_cpu"] = cpu_rows
    res["model"] = {"flops_per_iteration": flops, "grad_bytes": nbytes, "assumed_mfu": ASSUMED_MFU,
                    "alpha_s": ALPHA_S, "links_busbw_gb_s": LINKS, "gpu_peak_flops": GPUS, "rows": model_rows}
    res["machine"]["load_average_end"] = load_average()
    md = to_markdown(res)
    name = "scaling_smoke" if args.smoke else "scaling"
    jp, mp_ = write_results(out_dir(args), name, res, md)
    print(md)
    print(f"wrote {jp} and {mp_}")
    return res


def to_markdown(res: dict) -> str:
    ar = res["allreduce"]
    m = res["model"]
    lines = [
        "# Scaling: 1 vs 2 processes (gloo, CPU) and a model for N GPUs", "", machine_line(res), "",
        f"gloo all-reduce of {ar['mbytes']:.0f} MB fp32 between 2 local processes: median {ar['median_s']:.3f} s "
        f"→ bus bandwidth **{ar['busbw_gb_s']:.2f} GB/s** (algorithm bandwidth {ar['algbw_gb_s']:.2f} GB/s).", "",
        "## torchrun, 1 vs 2 processes (OMP_NUM_THREADS=1 each, per-rank batch fixed)", "",
        "Predicted T2 (DDP, `predict_ddp`) = T1 + the all-reduce time (2(N−1)/N · grad bytes / measured gloo bus "
        f"bandwidth) that does not fit under {BACKWARD_FRACTION:.2f} of T1, and at least the last 25 MiB bucket; "
        "\"no overlap\" = T1 + the whole all-reduce time (`predict`).", "",
        md_table(res["check"]),
        "## Model for N GPUs: DeepLab-v2, 1280×720 + 1024×512, batch 1+1 per GPU", "",
        f"FLOPs per iteration (forward + backward of both images, meta-device count): "
        f"{m['flops_per_iteration']['iteration'] / 1e12:.2f} TFLOP. Gradients: {m['grad_bytes'] / 1e6:.0f} MB fp32 "
        f"in DDP's 25 MiB buckets. Assumed MFU {m['assumed_mfu']:.0%}, "
        f"per-hop latency {m['alpha_s'] * 1e6:.0f} µs; assumed NCCL bus bandwidths (GB/s): "
        + ", ".join(f"{k} {v:g}" for k, v in m["links_busbw_gb_s"].items()) + ".", "",
        md_table(m["rows"]),
        "Columns \"eff N=\": DDP's bucketed all-reduce overlapped with the backward pass (`predict_ddp`: the exposed "
        f"communication is what does not fit under {BACKWARD_FRACTION:.2f} of the step, and at least the last 25 MiB "
        "bucket); \"no-overlap eff N=\": one flat all-reduce after the backward pass (`predict`, the pessimistic "
        "bound). A model, not a "
        "measurement; `benchmarks/gpu_check.py` feeds it the step time measured on a lent GPU.", "",
        "### The same model with this machine's CPU figures (gloo)", "",
        md_table(res.get("model_cpu") or []),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
