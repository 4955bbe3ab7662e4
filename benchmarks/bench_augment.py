"""Kornia augmentation per batch: on the GPU against the same augmentation on CPU tensors.

Issue 8, item 2 ("Kornia GPU augmentation vs the same augmentation on CPU tensors per batch"). Times
``uda.create("augmentation", "standard")`` (random resized crop, flip, colour jitter, Gaussian blur; image and
label moved together) on a batch of images already in memory, per batch, for the training sizes of the papers.
The CPU side always runs; the CUDA side runs when CUDA is available (or ``--device cuda``), side by side in
the same process with interleaved repeats, so the ratio is fair. Host→device copies are not included (the
engine augments batches that are already on the device).

Usage:
    python benchmarks/bench_augment.py                     # → benchmarks/results/augment.{json,md}
    python benchmarks/bench_augment.py --smoke --out /tmp/b  # seconds, for CI
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import header, interleaved, load_average, machine_line, md_table, out_dir, write_results

import uda


def measure(size: tuple[int, int], batch: int, repeats: int, devices: list[torch.device]) -> dict[str, Any]:
    w, h = size
    fns, syncs = {}, {}
    for dev in devices:
        g = torch.Generator().manual_seed(0)
        img = torch.rand(batch, 3, h, w, generator=g).to(dev)
        lab = torch.randint(0, 19, (batch, h, w), generator=g).to(dev)
        aug = uda.create("augmentation", "standard").to(dev)
        fns[dev.type] = (lambda a=aug, i=img, lb=lab: a(i, lb))
        syncs[dev.type] = (lambda d=dev: torch.cuda.synchronize(d)) if dev.type == "cuda" else None
        fns[dev.type]()  # warm-up (kornia builds its pipeline per size)

    def sync() -> None:
        for s in syncs.values():
            if s is not None:
                s()

    times = interleaved(fns, repeats, sync)
    row: dict[str, Any] = {"size": f"{w}x{h}", "batch": batch, "repeats": repeats}
    for k, ts in times.items():
        row[f"{k}_s_per_batch"] = statistics.median(ts)
        row[f"{k}_images_per_s"] = batch / statistics.median(ts)
    if "cuda" in times:
        row["gpu_speedup"] = row["cpu_s_per_batch"] / row["cuda_s_per_batch"]
    return row


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="one small size, 2 repeats (CI)")
    ap.add_argument("--out", default=None, help="output folder (default benchmarks/results; --smoke: a temporary folder)")
    ap.add_argument("--device", default="auto", help="auto (CUDA too when available), cpu or cuda[:N]")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads on the CPU side")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    devices = [torch.device("cpu")]
    if args.device.startswith("cuda") or (args.device == "auto" and torch.cuda.is_available()):
        devices.append(torch.device("cuda" if args.device == "auto" else args.device))
    res: dict[str, Any] = header(devices[-1], __file__, argv)
    res["smoke"] = args.smoke
    cases = [((128, 64), 2)] if args.smoke else [((1280, 720), 1), ((1024, 512), 1), ((1024, 512), 4)]
    res["rows"] = [measure(s, b, 2 if args.smoke else 7, devices) for s, b in cases]
    res["devices"] = [str(d) for d in devices]
    res["machine"]["load_average_end"] = load_average()
    md = ["# Kornia augmentation per batch (`standard`: resized crop, flip, colour jitter, blur; image + label)", "",
          machine_line(res), "", md_table(res["rows"])]
    if len(devices) == 1:
        md.append("CUDA side not measured (no GPU in this run); on a GPU machine: "
                  "`python benchmarks/bench_augment.py --device cuda`.\n")
    name = "augment_smoke" if args.smoke else "augment"
    jp, mp = write_results(out_dir(args), name, res, "\n".join(md))
    print("\n".join(md))
    print(f"wrote {jp} and {mp}")
    return res


if __name__ == "__main__":
    main()
