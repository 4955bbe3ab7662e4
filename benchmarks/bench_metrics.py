"""Confusion-matrix throughput and end-to-end evaluation speed (docs/benchmarks.md).

Measures, for 2048×1024 label maps (Cityscapes val size):

1. pixels/s of a plain NumPy confusion matrix, ``np.bincount(19 * gt[valid] + pred[valid])`` on int64 arrays
   (the baseline), against ``uda.evaluation.ConfusionMatrix.update`` (one ``torch.bincount`` per batch, no
   boolean mask) with int64 inputs, uint8 inputs, and several uint8 maps batched in one call;
2. images/s of ``uda.evaluation.evaluate`` (resize protocol 1024×512 → 2048×1024, label-free scores on) with
   a tiny model on synthetic Cityscapes-size data, and the share of that time spent in the metric.

Usage:
    python benchmarks/bench_metrics.py            # full run, writes benchmarks/results/metrics.{json,md}
    python benchmarks/bench_metrics.py --smoke    # quick CI check (small maps, nothing written)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from uda.config import EvalConfig
from uda.evaluation import ConfusionMatrix, evaluate
from uda.models._base import SegmentationModel
from uda.types import SegOutput

C = 19


def _timeit(fn, repeat: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def _maps(n: int, h: int, w: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    gt = rng.integers(0, C, (n, h, w)).astype(np.int64)
    gt[rng.random((n, h, w)) < 0.1] = 255  # ~10 % ignored, like Cityscapes val
    pred = np.where(rng.random((n, h, w)) < 0.7, np.minimum(gt, C - 1), rng.integers(0, C, (n, h, w)))
    return pred.astype(np.int64), gt


def bench_metric(n: int, h: int, w: int, repeat: int) -> dict:
    pred, gt = _maps(n, h, w)
    pixels = n * h * w

    def numpy_baseline():
        for i in range(n):
            valid = gt[i] != 255
            np.bincount(C * gt[i][valid] + pred[i][valid], minlength=C * C)

    tp, tg = torch.from_numpy(pred), torch.from_numpy(gt)
    tp8, tg8 = tp.to(torch.uint8), tg.to(torch.uint8)

    def ours(p, g, batched):
        def run():
            cm = ConfusionMatrix(C, "cpu")
            if batched:
                cm.update(p, g)
            else:
                for i in range(n):
                    cm.update(p[i], g[i])
            return cm._hist.sum()

        return run

    # correctness: identical matrices
    ref = np.zeros(C * C, np.int64)
    for i in range(n):
        valid = gt[i] != 255
        ref += np.bincount(C * gt[i][valid] + pred[i][valid], minlength=C * C)
    cm = ConfusionMatrix(C)
    cm.update(tp8, tg8)
    assert (cm.matrix.reshape(-1) == ref).all()

    timings = {
        "numpy_bincount_int64": _timeit(numpy_baseline, repeat),
        "uda_per_map_int64": _timeit(ours(tp, tg, False), repeat),
        "uda_per_map_uint8": _timeit(ours(tp8, tg8, False), repeat),
        f"uda_batched{n}_uint8": _timeit(ours(tp8, tg8, True), repeat),
    }
    base = timings["numpy_bincount_int64"]
    return {
        name: {
            "seconds": round(t, 5),
            "mpixels_per_s": round(pixels / t / 1e6, 1),
            "speedup_vs_numpy": round(base / t, 2),
        }
        for name, t in timings.items()
    }


class _TinyNet(SegmentationModel):
    def __init__(self) -> None:
        super().__init__(C, normalization="imagenet")
        self.head = torch.nn.Conv2d(3, C, 1)

    def forward_normalized(self, x: torch.Tensor) -> SegOutput:
        return SegOutput(self.head(torch.nn.functional.avg_pool2d(x, 8)))  # stride 8 like DeepLab-v2


def bench_evaluate(n: int, h: int, w: int, size: str) -> dict:
    g = torch.Generator().manual_seed(0)
    label = torch.randint(0, C, (h, w), generator=g)
    data = [{"image": torch.rand(3, h, w, generator=g), "label": label, "name": f"img{i}"} for i in range(n)]
    model = _TinyNet().eval()
    cfg = EvalConfig(size=size)
    evaluate(model, data[:1], cfg, device="cpu", progress=False)  # warm-up
    t = time.perf_counter()
    evaluate(model, data, cfg, device="cpu", progress=False)
    total = time.perf_counter() - t
    t = time.perf_counter()
    evaluate(model, data, cfg, device="cpu", progress=False, label_free=False)
    no_lf = time.perf_counter() - t
    pred = torch.randint(0, C, (h, w), generator=g).to(torch.uint8)
    metric = _timeit(lambda: ConfusionMatrix(C).update(pred, label), 3) * n
    return {
        "images": n,
        "image_size": f"{w}x{h}",
        "eval_size": size,
        "images_per_s": round(n / total, 2),
        "images_per_s_without_label_free": round(n / no_lf, 2),
        "metric_share_of_time": round(metric / total, 3),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="small maps, few repeats, write nothing")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch intra-op threads (1: stable timings on a shared CPU)"
    )
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"), help="results folder")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.smoke:
        n, h, w, repeat, ev_n, ev_size = 2, 256, 512, 1, 1, "256x128"
    else:
        n, h, w, repeat, ev_n, ev_size = 4, 1024, 2048, 5, 4, "1024x512"
    result = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "torch": torch.__version__,
            "numpy": np.__version__,
            "torch_threads": torch.get_num_threads(),
        },
        "metric": {
            "maps": n,
            "map_size": f"{w}x{h}",
            "repeat_best_of": repeat,
            "results": bench_metric(n, h, w, repeat),
        },
        "evaluate": bench_evaluate(ev_n, h, w, ev_size),
    }
    print(json.dumps(result, indent=2))
    if not args.smoke:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(result, indent=2) + "\n")
        lines = [
            "# Metric throughput and evaluation speed",
            "",
            f"`{result['command']}` on {result['date']}; {result['machine']['platform']}, "
            f"{result['machine']['processor']}, torch {result['machine']['torch']} "
            f"({result['machine']['torch_threads']} threads), numpy {result['machine']['numpy']}.",
            "",
            f"Confusion matrix over {n} maps of {w}x{h} (best of {repeat}):",
            "",
            "| implementation | seconds | Mpixels/s | speed-up vs NumPy |",
            "|---|---:|---:|---:|",
        ]
        for name, r in result["metric"]["results"].items():
            lines.append(f"| {name} | {r['seconds']} | {r['mpixels_per_s']} | {r['speedup_vs_numpy']}× |")
        e = result["evaluate"]
        lines += [
            "",
            f"`evaluate` (resize {e['eval_size']} → {e['image_size']}, tiny stride-8 model, CPU): "
            f"{e['images_per_s']} images/s ({e['images_per_s_without_label_free']} without label-free scores); "
            f"the confusion matrix takes {100 * e['metric_share_of_time']:.1f} % of the time.",
            "",
        ]
        (out / "metrics.md").write_text("\n".join(lines))
    return result


if __name__ == "__main__":
    main()
