"""Training-iteration speed of every recipe through the real engine, and the engine's overhead against a plain loop.

Issue 8, item 1. Three measurements, all on preloaded batches (the data pipeline is ``bench_data.py``'s):

1. ``recipes``: for each recipe, the seconds per iteration of ``uda.engine.Trainer.train_step`` (the loop's
   whole per-iteration work: freeze, forward, both backward passes, non-finite check, optimizer steps,
   schedules), images/s (source + target images), peak memory, FLOPs of one full iteration
   (``torch.utils.flop_counter.FlopCounterMode``, convolutions and matmuls forward and backward) and
   MFU = achieved FLOP/s ÷ the machine's fp32 matmul rate measured in the same run (a large ``torch.mm``).
   On this CPU: ``deeplabv2_tiny`` at 256×128 for every recipe and the full ``deeplabv2`` (ResNet-101) at
   320×180 for ``advent`` (overhead comparison of the full network at 160×96); on a GPU (``--device cuda``): the full model at the paper sizes 1280×720 + 1024×512.
2. ``overhead``: ``benchmarks/plain_advent_loop.py`` (a hand-written AdvEnt step, same model and
   discriminator classes, none of the engine) against the engine running the ``advent`` recipe, same
   process, same tensors, same sizes, same threads, interleaved repeats. Target: engine within 5 %. The engine
   runs twice in the same interleaving: the default joint backward and ``trainer.sequential_backward=true``.
3. ``amp`` (CUDA only): fp32 against bf16 autocast + channels_last at 1280×720/1024×512 (speed ratio,
   peak-memory ratio). Target: ≥ 2× faster, ≤ 60 % of the memory.

How the engine is fed: a :class:`Trainer` is built from the recipe's ``<recipe>_synthetic`` config with
overrides, then its source/target iterators are replaced by iterators cycling over preloaded batches, and
``Trainer.train_step(stage)`` is timed. Logging, progress and checkpoints (the loop's callbacks) are
not in the timed region.

4. ``--dacs``: ``benchmarks/plain_dacs_step.py`` (a hand-written DACS step: teacher, pseudo-labels, ClassMix,
   strong augmentation, EMA; same model class) against the engine's ``dacs`` recipe (``dacs_synthetic``:
   tiny DeepLab-v2; ``daformer_synthetic``: tiny DAFormer), same tensors, interleaved repeats. Target: within
   5 %. Writes ``train_dacs.{json,md}`` only.

Usage:
    python benchmarks/bench_train.py --dacs          # the dacs overhead → benchmarks/results/train_dacs.{json,md}
    python benchmarks/bench_train.py                 # full CPU run → benchmarks/results/train.{json,md}
    python benchmarks/bench_train.py --overhead-only # re-measure only the overhead rows of train.{json,md}
    python benchmarks/bench_train.py --smoke --out /tmp/b   # seconds, for CI
    python benchmarks/bench_train.py --device cuda   # GPU: paper sizes, fp32 vs bf16 + channels_last
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    PeakRSS,
    count_flops,
    header,
    interleaved,
    load_average,
    machine_line,
    matmul_flops_per_s,
    maxrss_mib,
    md_table,
    out_dir,
    summarize,
    write_results,
)
from plain_advent_loop import PlainAdvEnt

import uda
from uda.config import load_config
from uda.engine.trainer import Trainer

RECIPES = ["source_only", "adaptsegnet", "advent", "minent", "fda", "cyclegan", "mlfa"]
SMOKE_RECIPES = ["source_only", "advent", "mlfa"]  # no discriminator; output-level D; translator stage + feature D


class Preloaded:
    """An endless iterator over preloaded batches (shallow copies: the loop may replace dict entries)."""

    def __init__(self, batches: list[dict[str, Any]]) -> None:
        self.batches, self.i = batches, 0

    def __next__(self) -> dict[str, Any]:
        b = self.batches[self.i % len(self.batches)]
        self.i += 1
        return dict(b)

    def __iter__(self) -> Preloaded:
        return self


def make_batches(domain: str, size: str, batch: int, n: int, device: torch.device, labels: bool) -> list[dict]:
    """``n`` preloaded batches from the built-in synthetic domain at ``size`` (WxH)."""
    ds = uda.create("dataset", "synthetic", domain=domain, num=batch * n, size=size, seed=0)
    out = []
    for k in range(n):
        items = [ds[k * batch + j] for j in range(batch)]
        b = {"image": torch.stack([it["image"] for it in items]).to(device)}
        if labels:
            b["label"] = torch.stack([it["label"] for it in items]).to(device)
        out.append(b)
    return out


def _sync(device: torch.device):
    return (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)


def build_trainer(recipe: str, *, model: str, src_size: str, tgt_size: str, batch: int, device: torch.device,
                  run_dir: str, extra: list[str] | None = None) -> Trainer:
    """A built Trainer for ``<recipe>_synthetic`` with the given model/sizes, fed by preloaded batches."""
    sets = [f"data.source.size={src_size}", f"data.target.size={tgt_size}", f"data.batch_size={batch}",
            f"model.name={model}", "trainer.tensorboard=false", "trainer.max_iters=100000", "data.num_workers=0"]
    if model == "deeplabv2":  # the paper's lr and discriminators for the full (random-init) network
        # Random init with frozen (identity) BN statistics blows activations up to ~1e7 and the first step to NaN;
        # train-mode BN with frozen affine (the originals' "moving" mode) keeps a random ResNet-101 finite.
        sets += ["optim.generator.lr=2.5e-4", "model.options.bn_mode=moving", "trainer.nonfinite=skip"]
        if recipe in ("adaptsegnet", "advent"):
            sets.append("recipe.discriminator=fc")
        if recipe == "mlfa":
            sets += ["recipe.discriminator=feature"]
    extra = list(extra or [])
    if "recipe.translator_iters=0" in extra:  # no stage 1: a random-init translator stands for a trained one
        path = Path(run_dir) / "random_translator.pt"
        torch.save(uda.create("translator", load_config(f"{recipe}_synthetic").recipe.translator).state_dict(), path)
        extra.append(f"recipe.translator_checkpoint={path}")
    cfg = load_config(f"{recipe}_synthetic", sets + extra)
    tr = Trainer(cfg, run_dir, device=device)
    tr.build()
    n = 2
    tr.source_iter = Preloaded(make_batches("source", src_size, batch, n, device, labels=True))
    tr.target_iter = Preloaded(make_batches("target", tgt_size, batch, n, device, labels=False))
    return tr


def _peak_cuda(device: torch.device, fn) -> float:
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) / 2**20


def measure_recipe(recipe: str, *, model: str, src_size: str, tgt_size: str, batch: int, iters: int,
                   device: torch.device, matmul_rate: float, extra: list[str] | None = None) -> list[dict]:
    """One row per stage of ``recipe``: s/it, images/s, peak memory, FLOPs/it, MFU."""
    rows = []
    print(f"[bench_train] {recipe} {model} {src_size}+{tgt_size}", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory() as run_dir:
        tr = build_trainer(recipe, model=model, src_size=src_size, tgt_size=tgt_size, batch=batch, device=device,
                           run_dir=run_dir, extra=extra)
        sync = _sync(device)
        for stage in tr.stages:
            tr.set_modes(stage)

            def step(stage=stage):
                tr.train_step(stage)

            step()  # warm-up (allocations, optimizer state)
            flops = count_flops(step)
            times = []
            peak_cuda = None
            local_rate = matmul_flops_per_s(device, 1024, repeats=3)  # the machine's rate right now (shared CPU)
            with PeakRSS() as rss:
                for _ in range(iters):
                    sync()
                    t = time.perf_counter()
                    step()
                    sync()
                    times.append(time.perf_counter() - t)
            local_rate = max(local_rate, matmul_flops_per_s(device, 1024, repeats=3))
            if device.type == "cuda":
                peak_cuda = _peak_cuda(device, step)
            s = statistics.median(times)
            rows.append({
                "recipe": recipe, "stage": stage.name, "model": model, "size": f"{src_size}+{tgt_size}",
                "batch": f"{batch}+{batch}", "iters": iters, "s_per_it": s, "s_per_it_min": min(times),
                "images_per_s": 2 * batch / s, "gflops_per_it": flops / 1e9,
                "mfu": flops / s / matmul_rate if matmul_rate else None,
                "matmul_gflops_now": local_rate / 1e9, "mfu_now": flops / s / local_rate,
                "peak_rss_growth_mib": round(rss.growth_mib, 1), "peak_rss_mib": round(rss.peak_mib, 1),
                "peak_cuda_mib": peak_cuda, "skipped_steps": tr.skipped,
            })
        tr = None  # free the trainer before the next recipe
    gc.collect()
    return rows


def measure_overhead(*, model: str, size: str, batch: int, repeats: int, device: torch.device, ndf: int) -> dict:
    """Plain AdvEnt loop vs the engine's ``advent`` on the same preloaded tensors, interleaved.

    Two engine variants run in the same interleaving: the default joint backward (``engine``) and
    ``trainer.sequential_backward=true`` (``engine_sequential``: source backward before the target forward, the
    structure of the plain loop and of the original ADVENT code).
    """
    print(f"[bench_train] overhead {model} {size} x{repeats}", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory() as run_dir:
        disc = "fc" if ndf == 64 else "fc_tiny"
        trs = {}
        for name, seq in (("engine", "false"), ("engine_sequential", "true")):
            tr = build_trainer("advent", model=model, src_size=size, tgt_size=size, batch=batch, device=device,
                               run_dir=str(Path(run_dir) / name),
                               extra=[f"recipe.discriminator={disc}", f"trainer.sequential_backward={seq}"])
            stage = next(s for s in tr.stages if s.name == "seg")
            tr.set_modes(stage)
            trs[name] = (tr, stage)
        tr = trs["engine"][0]
        g = tr.cfg.optim.generator
        torch.manual_seed(tr.cfg.trainer.seed)
        net = uda.create("model", model, num_classes=tr.cfg.model.num_classes, **tr.cfg.model.options).to(device)
        plain = PlainAdvEnt(net, num_classes=tr.cfg.model.num_classes, ndf=ndf, lr=g.lr, momentum=g.momentum,
                            weight_decay=g.weight_decay, max_iters=tr.cfg.trainer.max_iters)
        plain.train()
        src, tgt = tr.source_iter.batches[0], tr.target_iter.batches[0]
        for t, _ in trs.values():
            t.source_iter, t.target_iter = Preloaded([src]), Preloaded([tgt])
        fns = {name: (lambda t=t, st=st: t.train_step(st)) for name, (t, st) in trs.items()}
        fns["plain"] = lambda: plain.step(src["image"], src["label"], tgt["image"])
        for f in fns.values():  # warm-up all
            f()
        flops = {k: count_flops(f) for k, f in fns.items()}
        times = interleaved(fns, repeats, _sync(device))
        fns = tr = trs = plain = net = None  # free all before the next measurement
    gc.collect()
    out = {"model": model, "size": size, "batch": f"{batch}+{batch}", "discriminator_ndf": ndf, "repeats": repeats,
           "plain": summarize(times["plain"]), "plain_times_s": times["plain"], "gflops_plain": flops["plain"] / 1e9}
    for name in ("engine", "engine_sequential"):
        pair = [e / p for e, p in zip(times[name], times["plain"])]
        pre = "" if name == "engine" else "sequential_"
        out.update({name: summarize(times[name]), f"{name}_times_s": times[name],
                    f"{pre}ratio_of_medians": statistics.median(times[name]) / statistics.median(times["plain"]),
                    f"{pre}median_pairwise_ratio": statistics.median(pair), f"gflops_{name}": flops[name] / 1e9})
    out.update(target="engine / plain <= 1.05", met=out["ratio_of_medians"] <= 1.05,
               sequential_met=out["sequential_ratio_of_medians"] <= 1.05)
    return out


def measure_amp(*, size_src: str, size_tgt: str, repeats: int, device: torch.device, model: str) -> dict:
    """CUDA: fp32 vs bf16 autocast + channels_last for the ``advent`` recipe (speed interleaved; memory alone)."""
    variants = {"fp32": ["trainer.amp=none", "trainer.channels_last=false"],
                "bf16_channels_last": ["trainer.amp=bf16", "trainer.channels_last=true"]}
    peak = {}
    with tempfile.TemporaryDirectory() as run_dir:
        for name, sets in variants.items():  # memory: one trainer alive at a time
            tr = build_trainer("advent", model=model, src_size=size_src, tgt_size=size_tgt, batch=1, device=device,
                               run_dir=run_dir, extra=sets)
            stage = next(s for s in tr.stages if s.name == "seg")
            tr.set_modes(stage)
            tr.train_step(stage)
            peak[name] = _peak_cuda(device, lambda tr=tr, stage=stage: tr.train_step(stage))
            tr = None
            gc.collect()
            torch.cuda.empty_cache()
        trs = {}
        for name, sets in variants.items():
            tr = build_trainer("advent", model=model, src_size=size_src, tgt_size=size_tgt, batch=1, device=device,
                               run_dir=run_dir, extra=sets)
            stage = next(s for s in tr.stages if s.name == "seg")
            tr.set_modes(stage)
            tr.train_step(stage)
            trs[name] = (tr, stage)
        times = interleaved({n: (lambda t=t, s=s: t.train_step(s)) for n, (t, s) in trs.items()}, repeats,
                            _sync(device))
    speed = statistics.median(times["fp32"]) / statistics.median(times["bf16_channels_last"])
    mem = peak["bf16_channels_last"] / peak["fp32"]
    return {"model": model, "size": f"{size_src}+{size_tgt}", "recipe": "advent", "repeats": repeats,
            "fp32": summarize(times["fp32"]), "bf16_channels_last": summarize(times["bf16_channels_last"]),
            "peak_mib": peak, "speedup": speed, "memory_ratio": mem,
            "target": "speedup >= 2 and memory_ratio <= 0.6", "met": speed >= 2 and mem <= 0.6}


def to_markdown(res: dict) -> str:
    lines = ["# Training-iteration speed and engine overhead", "", machine_line(res), "",
             f"Measured fp32 matmul rate: **{res['matmul_gflops']:.1f} GFLOP/s** (best of 5 `torch.mm` "
             f"{res['matmul_n']}×{res['matmul_n']} at the start; highest probe of the run "
             f"{res.get('matmul_gflops_max', res['matmul_gflops']):.1f}). Engine fed with preloaded batches; "
             "`Trainer.train_step` timed (median of the repeats). On a shared CPU the matmul rate moves with the "
             "load, so each row probes it again (1024×1024 `torch.mm`, best of 3, before and after its timing): "
             "`mfu_now` = achieved FLOP/s ÷ that rate (`mfu` in the JSON uses the start-of-run rate).", "",
             "## Recipes", ""]
    cols = ["recipe", "stage", "model", "size", "batch", "s_per_it", "images_per_s", "gflops_per_it",
            "matmul_gflops_now", "mfu_now", "peak_rss_growth_mib", "peak_cuda_mib"]
    lines.append(md_table(res["recipes"], cols))
    lines += ["## Engine overhead against the plain AdvEnt loop (target ≤ 1.05×)", ""]
    lines += [f"Measured {res.get('overhead_date', res['date'])} (load average "
              f"{res.get('overhead_load_average', res['machine'].get('load_average'))}). `engine`: the default joint "
              "backward; `engine seq`: `trainer.sequential_backward=true` (the plain loop's structure). Ratios: "
              "median engine time ÷ median plain time, and the median of the per-round ratios.", ""]
    rows = [{"model": o["model"], "size": o["size"], "D ndf": o["discriminator_ndf"], "repeats": o["repeats"],
             "plain s/it": o["plain"]["median_s"], "engine s/it": o["engine"]["median_s"],
             "ratio (medians)": o["ratio_of_medians"], "ratio (pairwise)": o["median_pairwise_ratio"],
             "engine seq s/it": o.get("engine_sequential", {}).get("median_s"),
             "seq ratio (medians)": o.get("sequential_ratio_of_medians"),
             "seq ratio (pairwise)": o.get("sequential_median_pairwise_ratio"),
             "GFLOPs engine/plain": f"{o['gflops_engine']:.2f}/{o['gflops_plain']:.2f}", "met": o["met"]}
            for o in res["overhead"]]
    lines.append(md_table(rows))
    if res.get("amp"):
        a = res["amp"]
        lines += ["## bf16 AMP + channels_last vs fp32 (target ≥ 2× faster, ≤ 60 % memory)", "",
                  md_table([{"model": a["model"], "size": a["size"], "fp32 s/it": a["fp32"]["median_s"],
                             "bf16+CL s/it": a["bf16_channels_last"]["median_s"], "speed-up": a["speedup"],
                             "peak fp32 MiB": a["peak_mib"]["fp32"],
                             "peak bf16 MiB": a["peak_mib"]["bf16_channels_last"],
                             "memory ratio": a["memory_ratio"], "met": a["met"]}])]
    else:
        lines += ["bf16 AMP + channels_last: not measured (no GPU in this run; run with `--device cuda`).", ""]
    lines += [f"Process peak RSS (getrusage): {res['process_maxrss_mib']:.0f} MiB.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, one iteration: seconds (CI)")
    ap.add_argument("--out", default=None, help="output folder (default benchmarks/results; --smoke: a temporary folder)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch intra-op threads (1: the CPU here is shared; more threads oversubscribe it)")
    ap.add_argument("--repeats", type=int, default=None, help="interleaved repeats of the overhead comparison")
    ap.add_argument("--dacs", action="store_true", help="only the dacs recipe against plain_dacs_step.py")
    ap.add_argument("--overhead-only", action="store_true",
                    help="re-measure only the engine overhead and replace it in an existing train.json/md")
    ap.add_argument("--full-repeats", type=int, default=None,
                    help="interleaved repeats of the full-model overhead comparison (default 6 on the CPU)")
    args = ap.parse_args(argv)
    if args.dacs:
        return main_dacs(args)
    if args.overhead_only:
        return main_overhead(args, argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    res: dict[str, Any] = header(device, __file__, argv)
    n = 512 if args.smoke else (8192 if cuda else 2048)
    rate = matmul_flops_per_s(device, n)
    res.update(matmul_n=n, matmul_gflops=rate / 1e9, smoke=args.smoke)
    recipes: list[dict] = []
    if args.smoke:
        for r in SMOKE_RECIPES:
            recipes += measure_recipe(r, model="deeplabv2_tiny", src_size="128x64", tgt_size="128x64", batch=1,
                                      iters=1, device=device, matmul_rate=rate,
                                      extra=["recipe.translator_iters=1"] if r in ("cyclegan", "mlfa") else None)
        overhead = [measure_overhead(model="deeplabv2_tiny", size="128x64", batch=1, repeats=args.repeats or 2,
                                     device=device, ndf=8)]
    else:
        for r in RECIPES:
            recipes += measure_recipe(r, model="deeplabv2_tiny", src_size="256x128", tgt_size="256x128", batch=1,
                                      iters=3, device=device, matmul_rate=rate)
        # The full ResNet-101 costs ~0.4 TFLOP per iteration at 320x180: on a shared 2-core CPU one recipe only.
        full = ("1280x720", "1024x512") if cuda else ("320x180", "320x180")
        for r in (RECIPES if cuda else ["advent"]):
            recipes += measure_recipe(r, model="deeplabv2", src_size=full[0], tgt_size=full[1], batch=1,
                                      iters=10 if cuda else 2, device=device, matmul_rate=rate,
                                      extra=["recipe.translator_iters=0"] if r in ("cyclegan", "mlfa") else None)
        overhead = [measure_overhead(model="deeplabv2_tiny", size="256x128", batch=1, repeats=args.repeats or 15,
                                     device=device, ndf=8),
                    measure_overhead(model="deeplabv2", size="1024x512" if cuda else "160x96", batch=1,
                                     repeats=args.full_repeats or (20 if cuda else 6), device=device, ndf=64)]
    res["recipes"] = recipes
    res["matmul_gflops_max"] = max([res["matmul_gflops"]] + [r["matmul_gflops_now"] for r in recipes])
    res["overhead"] = overhead
    res["amp"] = None
    if cuda:
        sizes = ("128x64", "128x64") if args.smoke else ("1280x720", "1024x512")
        res["amp"] = measure_amp(size_src=sizes[0], size_tgt=sizes[1], repeats=3 if args.smoke else 10,
                                 device=device, model="deeplabv2_tiny" if args.smoke else "deeplabv2")
    res["process_maxrss_mib"] = maxrss_mib()
    res["machine"]["load_average_end"] = load_average()
    name = "train_smoke" if args.smoke else ("train_cuda" if cuda else "train")
    jp, mp = write_results(out_dir(args), name, res, to_markdown(res))
    print(to_markdown(res))
    print(f"wrote {jp} and {mp}")
    return res


def main_overhead(args: argparse.Namespace, argv: list[str] | None) -> dict:
    """``--overhead-only``: re-measure the two overhead rows (tiny and full model, CPU sizes) into the existing
    ``train.json`` of the output folder, keeping its recipe rows."""
    import json

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    name = "train_cuda" if device.type == "cuda" else "train"
    folder = out_dir(args)
    path = Path(folder) / f"{name}.json"
    if not path.is_file():
        raise SystemExit(f"--overhead-only needs an existing {path}; run bench_train.py without it first")
    res = json.loads(path.read_text())
    full = "1024x512" if device.type == "cuda" else "160x96"
    res["overhead"] = [measure_overhead(model="deeplabv2_tiny", size="256x128", batch=1, repeats=args.repeats or 15,
                                        device=device, ndf=8),
                       measure_overhead(model="deeplabv2", size=full, batch=1, device=device, ndf=64,
                                        repeats=args.full_repeats or (20 if device.type == "cuda" else 12))]
    res["overhead_command"] = header(device, __file__, argv)["command"]
    res["overhead_date"], res["overhead_load_average"] = header(device)["date"], load_average()
    jp, mp = write_results(folder, name, res, to_markdown(res))
    print(to_markdown(res))
    print(f"wrote {jp} and {mp}")
    return res


def measure_dacs_overhead(*, config: str, model: str, size: str, batch: int, repeats: int,
                          device: torch.device) -> dict:
    """Plain DACS step vs the engine's ``dacs`` recipe on the same preloaded tensors, interleaved."""
    from plain_dacs_step import PlainDACS

    print(f"[bench_train] dacs overhead {config} {model} {size} x{repeats}", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory() as run_dir:
        tr = build_trainer(config, model=model, src_size=size, tgt_size=size, batch=batch, device=device,
                           run_dir=run_dir)
        stage = next(s for s in tr.stages if s.name == "seg")
        tr.set_modes(stage)
        g, rc = tr.cfg.optim.generator, tr.cfg.recipe
        torch.manual_seed(tr.cfg.trainer.seed)
        net = uda.create("model", model, num_classes=tr.cfg.model.num_classes, **tr.cfg.model.options).to(device)
        plain = PlainDACS(net, optimizer=g.name, lr=g.lr, momentum=g.momentum, weight_decay=g.weight_decay,
                          alpha=rc.alpha, threshold=rc.pseudo_threshold, max_iters=tr.cfg.trainer.max_iters,
                          power=g.power)
        plain.train()
        src, tgt = tr.source_iter.batches[0], tr.target_iter.batches[0]
        tr.source_iter, tr.target_iter = Preloaded([src]), Preloaded([tgt])
        fns = {"engine": lambda: tr.train_step(stage),
               "plain": lambda: plain.step(src["image"], src["label"], tgt["image"])}
        for f in fns.values():  # warm-up both
            f()
        times = interleaved(fns, repeats, _sync(device))
        fns = tr = plain = net = None
    gc.collect()
    pair = [e / p for e, p in zip(times["engine"], times["plain"])]
    ratio = statistics.median(times["engine"]) / statistics.median(times["plain"])
    return {"config": config, "model": model, "size": size, "batch": f"{batch}+{batch}", "repeats": repeats,
            "engine": summarize(times["engine"]), "plain": summarize(times["plain"]),
            "engine_times_s": times["engine"], "plain_times_s": times["plain"],
            "ratio_of_medians": ratio, "median_pairwise_ratio": statistics.median(pair),
            "target": "engine / plain <= 1.05", "met": ratio <= 1.05}


def main_dacs(args: argparse.Namespace) -> dict:
    """``--dacs``: the engine overhead of the ``dacs`` step (tiny DeepLab-v2 and tiny DAFormer)."""
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    res: dict[str, Any] = header(device, __file__, None)
    res["smoke"] = args.smoke
    size = "64x32" if args.smoke else "256x128"
    reps = args.repeats or (2 if args.smoke else 15)
    res["overhead"] = [measure_dacs_overhead(config="dacs", model="deeplabv2_tiny", size=size, batch=2, repeats=reps,
                                             device=device),
                       measure_dacs_overhead(config="daformer", model="daformer_tiny", size=size, batch=2,
                                             repeats=reps, device=device)]
    res["machine"]["load_average_end"] = load_average()
    rows = [{"config": f"{o['config']}_synthetic", "model": o["model"], "size": o["size"], "batch": o["batch"],
             "repeats": o["repeats"], "engine s/it": o["engine"]["median_s"], "plain s/it": o["plain"]["median_s"],
             "ratio (medians)": o["ratio_of_medians"], "ratio (pairwise median)": o["median_pairwise_ratio"],
             "met": o["met"]} for o in res["overhead"]]
    md = "\n".join(["# Engine overhead of the dacs step against a plain hand-written DACS step (target ≤ 1.05×)", "",
                    machine_line(res), "", "Same preloaded tensors, same model class, interleaved repeats, "
                    "`Trainer.train_step` vs `PlainDACS.step` (benchmarks/plain_dacs_step.py).", "", md_table(rows), ""])
    jp, mp = write_results(out_dir(args), "train_dacs_smoke" if args.smoke else "train_dacs", res, md)
    print(md)
    print(f"wrote {jp} and {mp}")
    return res


if __name__ == "__main__":
    main()
