"""Forward and forward+backward time and peak memory of the segmentation models (batch 1, fp32).

Usage:
    python benchmarks/bench_models.py            # deeplabv2 at 1280×720 and 1024×512 (slow on a small CPU)
    python benchmarks/bench_models.py --smoke    # deeplabv2_tiny at 128×64, for CI
    python benchmarks/bench_models.py --device cuda --iters 10

Peak memory: on CUDA ``torch.cuda.max_memory_allocated``; on CPU the growth of the process's maximum resident
set size (``resource.getrusage`` maxrss) over the measurement, i.e. an upper bound on what the step added
(the first, largest size measured shows the most; later sizes only show growth beyond the earlier peak).
Writes ``benchmarks/results/models.json`` and ``models.md`` (``--out`` to change).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

import torch

import uda


def _maxrss_mib() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 1024 / (1024 if sys.platform == "darwin" else 1)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(model: torch.nn.Module, size: tuple[int, int], device: torch.device, iters: int, backward: bool) -> dict:
    w, h = size
    x = torch.rand(1, 3, h, w, device=device)
    model.train(backward)

    def step() -> None:
        if backward:
            model.zero_grad(set_to_none=True)
            out = model(x)
            loss = out.logits.float().mean() + (out.aux.float().mean() if out.aux is not None else 0.0)
            loss.backward()
        else:
            with torch.no_grad():
                model(x)

    rss0 = _maxrss_mib()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    step()  # warm-up
    _sync(device)
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - t)
    model.zero_grad(set_to_none=True)
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else _maxrss_mib() - rss0
    return {
        "mode": "forward+backward" if backward else "forward",
        "size": f"{w}x{h}",
        "iters": iters,
        "mean_s": sum(times) / len(times),
        "min_s": min(times),
        "peak_mib": round(peak, 1),
        "peak_kind": "cuda max_memory_allocated" if device.type == "cuda" else "maxrss growth",
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="deeplabv2_tiny at 128x64, 2 iterations (CI)")
    ap.add_argument("--model", default=None)
    ap.add_argument("--sizes", default=None, help="comma-separated WxH list")
    ap.add_argument("--iters", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU; 1 avoids oversubscription)")
    ap.add_argument("--note", default="", help="free text stored with the results (e.g. machine load)")
    args = ap.parse_args(argv)

    name = args.model or ("deeplabv2_tiny" if args.smoke else "deeplabv2")
    sizes = args.sizes or ("128x64" if args.smoke else "1280x720,1024x512")
    iters = args.iters or (2 if args.smoke else 3)
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = uda.create("model", name, num_classes=19).to(device)
    rows: list[dict] = []
    for s in sizes.split(","):
        size = uda.config.parse_size(s)
        for backward in (False, True):
            row = measure(model, size, device, iters, backward)
            rows.append(row)
            print(
                f"{name} {row['size']} {row['mode']}: {row['mean_s']:.3f} s/it, peak {row['peak_mib']} MiB", flush=True
            )
            _write(args, name, model, device, rows, argv)  # after every row: a cut-short run keeps its numbers
    return 0


def _write(
    args: argparse.Namespace, name: str, model: torch.nn.Module, device: torch.device, rows: list[dict], argv
) -> None:
    result = {
        "model": name,
        "params": sum(p.numel() for p in model.parameters()),
        "batch": 1,
        "dtype": "float32",
        "device": str(device) if device.type != "cuda" else torch.cuda.get_device_name(device),
        "machine": f"{platform.machine()} {platform.processor() or ''} {os.cpu_count()} logical CPUs".strip(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *(argv if argv is not None else sys.argv[1:])]),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "note": args.note,
        "results": rows,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "models_smoke" if args.smoke else "models"
    (out / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        f"# Model benchmark: `{name}` ({result['params']:,} parameters), batch 1, fp32",
        "",
        f"- device: {result['device']}; machine: {result['machine']}; torch {result['torch']}, {result['threads']} threads",
        f"- command: `{result['command']}`",
        f"- date: {result['date']}",
        f"- note: {args.note or '-'}",
        "",
        "| input (W×H) | pass | mean s/it | min s/it | peak MiB |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['size']} | {r['mode']} | {r['mean_s']:.3f} | {r['min_s']:.3f} | {r['peak_mib']} ({r['peak_kind']}) |"
        for r in rows
    ]
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
