"""Checkpoint size of every paper preset, computed from the built state dicts (no data, no training).

For each `<recipe>_gta5_cityscapes` / `<recipe>_synthia_cityscapes` preset the script builds the model
(random init), the recipe and every stage's optimizers, gives each optimized parameter a zero gradient and
takes one optimizer step (so momentum / Adam moments exist), then serializes the checkpoint's parts into a
byte counter (nothing is held in memory or written). CycleGAN's two image pools (50 images each, during
stage 1 only) are counted from their shape: 8 bits per value now, 32 before.

Columns: `stage-1 MB` (a checkpoint written during the translator stage), `seg MB` (during the segmentation
stage) and the same two figures as the checkpoint format before this change stored them on a CUDA run (float32
pools kept in every checkpoint and written twice, the finished translator stage's Adam moments kept).

    python benchmarks/bench_checkpoint_size.py [--out DIR] [--smoke]
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header, machine_line, md_table, out_dir, write_results

import uda
from uda.config import load_config, parse_size
from uda.engine._optim import build_optimizer

MB = 1e6


class _Count(io.RawIOBase):
    def __init__(self) -> None:
        self.n = 0

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:  # type: ignore[override]
        self.n += len(b)
        return len(b)


def nbytes(obj) -> int:
    """Bytes of `torch.save(obj)`, counted without keeping them."""
    c = _Count()
    torch.save(obj, c)
    return c.n


def measure(name: str) -> dict:
    cfg = load_config(name, ["model.pretrained=null"])
    torch.manual_seed(0)
    model = uda.create("model", cfg.model.name, num_classes=cfg.model.num_classes, pretrained=None,
                       **cfg.model.options)
    recipe = uda.create("recipe", cfg.recipe.name, cfg=cfg.recipe, model=model, num_classes=cfg.model.num_classes,
                        feature_info=model.feature_info)
    stages = recipe.stages(cfg)
    optim = {}
    for st in stages:
        entry = {"generator": build_optimizer(st.task.generator_param_groups(st.generator_optim), st.generator_optim)}
        d = st.task.discriminator_parameters()
        if st.discriminator_optim is not None and d:
            entry["discriminator"] = build_optimizer(d, st.discriminator_optim)
        for opt in entry.values():
            for g in opt.param_groups:
                for p in g["params"]:
                    p.grad = torch.zeros_like(p)
            opt.step()
            opt.zero_grad(set_to_none=True)
        optim[st.name] = {k: v.state_dict() for k, v in entry.items()}
    weights = nbytes({"model": model.state_dict(), "recipe": recipe.state_dict()})
    translator = getattr(recipe, "translator", None)
    opt_bytes = {n: nbytes(o) for n, o in optim.items()}
    pools_u8 = pools_f32 = 0
    if "translator" in optim:
        crop = parse_size(cfg.recipe.translator_crop) if cfg.recipe.translator_crop else None
        src = crop or parse_size(cfg.data.source.size)
        tgt = crop or parse_size(cfg.data.target.size)
        size = translator.pool_t.size
        pools_u8 = size * 3 * (src[0] * src[1] + tgt[0] * tgt[1])
        pools_f32 = 4 * pools_u8
    all_opt = sum(opt_bytes.values())
    stage1 = weights + all_opt + pools_u8 if "translator" in optim else None
    seg = weights + all_opt - opt_bytes.get("translator", 0)
    if "translator" in optim:  # the translator stage's optimizers remain, their moments dropped
        empty = {k: {"state": {}, "param_groups": v["param_groups"]} for k, v in optim["translator"].items()}
        seg += nbytes(empty)
    # Before: the pools in float32, in every checkpoint and on a CUDA run twice (the top-level `translator`
    # entry copied them to the CPU a second time; shared weight tensors were written once either way).
    before_seg = weights + all_opt + 2 * pools_f32
    before_stage1 = before_seg if "translator" in optim else None
    return {
        "preset": name,
        "params_M": sum(p.numel() for p in recipe.parameters()) / 1e6,
        "stage-1 MB": stage1 / MB if stage1 else None,
        "seg MB": seg / MB,
        "stage-1 MB before": before_stage1 / MB if before_stage1 else None,
        "seg MB before": before_seg / MB,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="result folder [default: benchmarks/results]")
    ap.add_argument("--smoke", action="store_true", help="two synthetic presets only (seconds)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    names = (["advent_synthetic", "mlfa_synthetic"] if args.smoke else
             [n for n in uda.list_components("config") if n.endswith(("_gta5_cityscapes", "_synthia_cityscapes"))])
    rows = []
    for n in names:
        print(f"[bench_checkpoint_size] {n}", file=sys.stderr, flush=True)
        rows.append(measure(n))
    result = {**header(), "rows": rows}
    md = ("# Checkpoint size of the paper presets\n\n" + machine_line(result) + "\n\n"
          "Computed from the built state dicts (random init, one optimizer step for the moments); "
          "MB = 10^6 bytes.\n\n" + md_table(rows))
    jp, mp = write_results(out_dir(args), "checkpoint_size", result, md)
    print(mp.read_text())
    print(f"wrote {jp} and {mp}", file=sys.stderr)


if __name__ == "__main__":
    main()
