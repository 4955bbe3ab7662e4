"""Soak test: resident memory (RSS) over a long CPU run of a tiny recipe through the real training loop.

Runs ``advent_synthetic`` (AdvEnt: segmentation + entropy-map discriminator, two optimizers, checkpoints every
500 iterations, no evaluation until the final one) for 2,000 iterations at 64×32 with a 4-wide DeepLab-v2,
fp32, one torch thread, and samples the process's RSS every 100 iterations from an ``on_step_end`` callback.
A leak (tensors kept in a list, a growing log buffer, autograd graphs held across steps) shows as a positive
slope: the result gives RSS first/last/max and the least-squares slope in MiB per 1,000 iterations, over all
samples and over the second half (after allocator warm-up).

Usage::

    python benchmarks/bench_soak.py            # 2,000 iterations, writes benchmarks/results/soak.{json,md}
    python benchmarks/bench_soak.py --smoke    # ~50 iterations (CI), writes nothing unless --out is given
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEFAULT_OUT, header, machine_line, md_table, rss_mib, write_results

SIZE = "64x32"  # the FC discriminator's five stride-2 convs need >= 4x2 maps at stride 8 from 32x16


def soak_config(iters: int, sample_every: int, recipe: str = "advent_synthetic") -> Any:
    """The tiny experiment: ``recipe`` at 64x32, 4-wide model, checkpoints every 500 iterations, final eval only."""
    from uda.config import load_config

    over = [f"data.{s}.size={SIZE}" for s in ("source", "target", "val")] + [
        f"eval.size={SIZE}", "data.source.options.num=16", "data.target.options.num=16", "data.val.options.num=2",
        "data.batch_size=2", "model.options.width=4", f"trainer.max_iters={iters}",
        f"trainer.checkpoint_every={min(500, iters)}", f"trainer.log_every={sample_every}", "trainer.eval_every=0",
        "trainer.tensorboard=false", "trainer.device=cpu", "trainer.keep_last=2",
    ]
    return load_config(recipe, over)


def slope_per_1k(points: list[tuple[int, float]]) -> float | None:
    """Least-squares slope of (iteration, MiB) in MiB per 1,000 iterations (``None`` for < 2 points)."""
    if len(points) < 2:
        return None
    n = len(points)
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    sxx = sum((p[0] - mx) ** 2 for p in points)
    sxy = sum((p[0] - mx) * (p[1] - my) for p in points)
    return 1000.0 * sxy / sxx if sxx else None


def run(iters: int, sample_every: int, out_dir: Path) -> dict[str, Any]:
    """Train ``iters`` iterations into ``out_dir``, sampling RSS; returns the figures."""
    from uda.engine import train

    torch.set_num_threads(1)
    samples: list[tuple[int, float]] = [(0, rss_mib())]

    def sample(tr) -> None:
        if tr.global_iter % sample_every == 0:
            gc.collect()
            samples.append((tr.global_iter, rss_mib()))

    start = time.perf_counter()
    train(soak_config(iters, sample_every), out_dir, callbacks={"on_step_end": [sample]})
    seconds = time.perf_counter() - start
    after = [p for p in samples if p[0] > 0]
    second_half = [p for p in after if p[0] > iters // 2]
    rss = [p[1] for p in after]
    return {
        "recipe": "advent_synthetic", "size": SIZE, "iterations": iters, "sample_every": sample_every,
        "seconds": seconds, "it_per_s": iters / seconds,
        "rss_before_mib": samples[0][1], "rss_first_mib": rss[0], "rss_last_mib": rss[-1], "rss_max_mib": max(rss),
        "slope_mib_per_1k": slope_per_1k(after), "slope_second_half_mib_per_1k": slope_per_1k(second_half),
        "samples": [{"iter": i, "rss_mib": round(m, 2)} for i, m in samples],
    }


def markdown(res: dict[str, Any]) -> str:
    row = {k: res[k] for k in ("iterations", "rss_first_mib", "rss_last_mib", "rss_max_mib", "slope_mib_per_1k",
                               "slope_second_half_mib_per_1k", "it_per_s")}
    text = ["# Soak: RSS over a long CPU run", "", machine_line(res), "",
            f"`{res['recipe']}` at {res['size']} (4-wide DeepLab-v2, batch 2, fp32, 1 thread), checkpoints every "
            f"500 iterations, RSS sampled every {res['sample_every']} iterations (first sample after "
            f"{res['sample_every']} iterations; slope = least squares, MiB per 1,000 iterations).", "",
            md_table([row]), "", "RSS samples:", "",
            md_table([{"iter": s["iter"], "rss_mib": s["rss_mib"]} for s in res["samples"]])]
    return "\n".join(text)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="~50 iterations (CI); writes nothing unless --out")
    ap.add_argument("--iters", type=int, help="iterations [default 2000, smoke 50]")
    ap.add_argument("--out", type=Path, help=f"results folder [default {DEFAULT_OUT}; none with --smoke]")
    args = ap.parse_args(argv)
    iters = args.iters or (50 if args.smoke else 2000)
    torch.set_num_threads(1)  # before header(), which records the thread count
    every = 10 if args.smoke else 100
    with tempfile.TemporaryDirectory() as tmp:
        res = {**header("cpu"), **run(iters, every, Path(tmp) / "run"), "smoke": args.smoke}
    out = args.out if args.out is not None else (None if args.smoke else DEFAULT_OUT)
    if out is not None:
        write_results(out, "soak_smoke" if args.smoke else "soak", res, markdown(res))
    print(markdown(res))
    return res


if __name__ == "__main__":
    main()
