"""Every ``*_synthetic`` recipe x 3 seeds on the built-in synthetic pair: target mIoU (mean ± std) and wall time.

Also the synthetic-pair gap: the source-only model evaluated on source val vs target val.
Writes ``benchmarks/results/recipes.json`` and ``.md``. ``--smoke`` runs 2 iterations of each at 64x32, one seed (CI).

Usage:
    python benchmarks/bench_recipes.py [--seeds 0 1 2] [--only mlfa source_only] [--smoke] [--out DIR]
    python benchmarks/bench_recipes.py --only source_only daformer --seeds 0 --pair-seed 1   # a second pair
    python benchmarks/bench_recipes.py --merge A/recipes.json B/recipes.json [--out DIR]

``--merge`` combines the runs of several result files (e.g. parallel one-thread processes, one per core)
into one table (a later file's run replaces an earlier one of the same config and seed); the machine figures
of every file are kept in ``sources``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch
from _common import DEFAULT_OUT, header, machine_line, md_table, write_results

import uda
from uda.config import load_config
from uda.data import build_dataset
from uda.engine import Trainer
from uda.evaluation import evaluate

SMOKE = ["data.source.size=64x32", "data.target.size=64x32", "data.val.size=64x32", "eval.size=64x32",
         "data.val.options.num=2", "trainer.max_iters=2"]


def run(name: str, seed: int, smoke: bool, workdir: Path, pair_seed: int = 0) -> dict:
    cfg = load_config(name)
    over = [f"trainer.seed={seed}", "trainer.tensorboard=false", "trainer.log_every=100"]
    if pair_seed:  # a differently generated synthetic pair
        over += [f"data.{k}.options.seed={pair_seed}" for k in ("source", "target", "val")]
    if smoke:
        over += SMOKE + (["recipe.translator_iters=1"] if hasattr(cfg.recipe, "translator_iters") else [])
        over += ["model.options.width=4"] if cfg.model.name == "deeplabv2_tiny" else []
        if getattr(cfg.recipe, "feature_alignment", None) == "multilevel":
            over = [o.replace("64x32", "128x64") for o in over]
        if cfg.model.name.startswith("hrda"):  # the context view halves the input: 64x64 images, 32x32 details
            over = [o.replace("64x32", "64x64") for o in over] + ["model.options.detail_size=32"]
    cfg = load_config(name, over)
    start = time.perf_counter()
    tr = Trainer(cfg, workdir / f"{name}_{seed}")
    result = tr.fit()
    row = {"config": name, "seed": seed, "miou": result["miou"], "seconds": time.perf_counter() - start}
    if cfg.recipe.name == "source_only":  # the synthetic pair's gap: same model on source val
        src_val = build_dataset(cfg.data.val.__class__(**{**cfg.data.val.__dict__,
                                                        "options": {**cfg.data.val.options, "domain": "source"}}))
        row["source_val_miou"] = evaluate(tr.model, src_val, cfg.eval, device="cpu", progress=False)["miou"]
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=None, help="default 0 1 2 (smoke: 0)")
    ap.add_argument("--only", nargs="+", default=None, help="recipe config prefixes (e.g. mlfa source_only)")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    ap.add_argument("--merge", nargs="+", default=None, help="recipes.json files to combine into one table")
    ap.add_argument("--pair-seed", type=int, default=0,
                    help="generate the synthetic pair with this dataset seed (0: the built-in pair); writes recipes_pairN")
    args = ap.parse_args()
    if args.merge:
        parts = [json.loads(Path(p).read_text()) for p in args.merge]
        # a later file's run replaces an earlier one of the same config and seed (a re-run after a fix)
        rows = list({(r["config"], r["seed"]): r for part in parts for r in part["runs"]}.values())
        rows.sort(key=lambda r: ({"source_only_synthetic": 0, "mlfa_synthetic": 1}.get(r["config"], 2), r["config"],
                                 r["seed"]))
        report(rows, args, sources=[{k: part[k] for k in ("command", "date", "machine")} for part in parts])
        return
    args.seeds = args.seeds or ([0] if args.smoke else [0, 1, 2])
    torch.set_num_threads(max(1, torch.get_num_threads()))
    from uda.config import get_builtin

    # the built-in pair only: the ACDC / Dark Zurich stand-ins train on trees written by `uda data synth`
    names = [n for n in uda.list_components("config", "*_synthetic")
             if (args.only is None or n.removesuffix("_synthetic") in args.only)
             and get_builtin(n).data.source.name == "synthetic"]
    # source_only and mlfa first: the comparison that matters is available early (results are rewritten per run)
    names.sort(key=lambda n: {"source_only_synthetic": 0, "mlfa_synthetic": 1}.get(n, 2))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            for seed in args.seeds:
                rows.append(run(name, seed, args.smoke, Path(tmp), args.pair_seed))
                print(json.dumps(rows[-1]), flush=True)
                report(rows, args)


def report(rows: list[dict], args: argparse.Namespace, sources: list[dict] | None = None) -> None:
    """Summarize the runs so far and write ``recipes.json`` / ``recipes.md``."""
    names = list(dict.fromkeys(r["config"] for r in rows))
    table = []
    base = None
    for name in names:
        r = [x for x in rows if x["config"] == name]
        m = [x["miou"] for x in r]
        entry = {"config": name, "miou_mean": statistics.mean(m), "miou_std": statistics.pstdev(m),
                 "seconds_mean": statistics.mean(x["seconds"] for x in r), "seeds": [x["seed"] for x in r],
                 "miou": m}
        if "source_val_miou" in r[0]:
            entry["source_val_miou_mean"] = statistics.mean(x["source_val_miou"] for x in r)
        if name == "source_only_synthetic":
            base = entry["miou_mean"]
        table.append(entry)
    for e in table:
        e["gain_vs_source_only"] = None if base is None else e["miou_mean"] - base
    result = {**header(), "smoke": args.smoke, "runs": rows, "summary": table}
    if sources:
        result["sources"] = sources
    md_rows = [{"config": e["config"], "seeds": len(e["seeds"]),
                "target mIoU": f"{e['miou_mean']:.2f} ± {e['miou_std']:.2f}",
                "gain vs source only": "" if e["gain_vs_source_only"] is None else f"{e['gain_vs_source_only']:+.2f}",
                "wall s (mean)": f"{e['seconds_mean']:.0f}"} for e in table]
    md = "# Recipes on the synthetic pair (target val mIoU, mean ± std over seeds)\n\n" + md_table(md_rows)
    so = next((e for e in table if "source_val_miou_mean" in e), None)
    if so:
        md += (f"\n\nSynthetic-pair gap (source-only model): source val {so['source_val_miou_mean']:.2f} mIoU vs "
               f"target val {so['miou_mean']:.2f} mIoU.\n")
    md += f"\n{machine_line(result)}\n"
    for src in sources or []:
        md += f"\n- merged from: {machine_line(src)}"
    pair = getattr(args, "pair_seed", 0)
    name = "recipes_smoke" if args.smoke else (f"recipes_pair{pair}" if pair else "recipes")
    if pair:
        md = md.replace("on the synthetic pair", f"on the synthetic pair generated with dataset seed {pair}", 1)
    write_results(args.out, name, result, md)


if __name__ == "__main__":
    main()
