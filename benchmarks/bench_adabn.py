"""AdaBN on the built-in synthetic pair: the source-only model with target batch-norm statistics.

AdaBN (Li et al., *Adaptive Batch Normalization for practical domain adaptation*, Pattern Recognition 2018)
adapts a source-trained network by replacing its batch-norm statistics with the target domain's. Three ways of
normalising the same source-only model (``source_only_synthetic``, tiny DeepLab-v2 with trainable batch norm,
400 iterations) are scored on the target validation split, per seed (``uda train --seeds`` layout):

- ``source statistics``: the running statistics of the training (the run's ``final.json``);
- ``AdaBN``: the running statistics re-estimated on the target *training* images (cumulative average over one
  pass, ``momentum=None``), then evaluation as usual;
- ``batch-statistics teacher``: every evaluation batch of ``--batch`` target images normalised with its own
  statistics, through `uda.selftraining.EMATeacher(buffers="batch")`, the teacher of the self-training recipes
  (``recipe.teacher_buffers=batch``), copied from the source-only model, so it measures what that teacher's
  normalisation alone gives before any adaptation.

Usage::

    python benchmarks/bench_adabn.py                 # 3 seeds, about 4 minutes on one core
    python benchmarks/bench_adabn.py --smoke         # 2 iterations, 64x32 (CI); writes nothing unless --out
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header, machine_line, md_table, out_dir, write_results

VARIANTS = ("source statistics", "AdaBN", "batch-statistics teacher")


def overrides(smoke: bool) -> list[str]:
    base = ["trainer.tensorboard=false", "trainer.device=cpu", "trainer.eval_every=0"]
    if smoke:
        base += ["trainer.max_iters=2", "model.options.width=4", "data.source.options.num=4",
                 "data.target.options.num=4", "data.val.options.num=4"]
        base += [f"{k}=64x32" for k in ("data.source.size", "data.target.size", "data.val.size", "eval.size")]
    return base


@torch.no_grad()
def adabn(model: torch.nn.Module, dataset: Any, batch: int) -> torch.nn.Module:
    """A copy of ``model`` whose batch norms hold the statistics of ``dataset`` (one pass, cumulative average)."""
    m = copy.deepcopy(model).eval()
    norms = [x for x in m.modules() if isinstance(x, torch.nn.modules.batchnorm._BatchNorm)]
    for bn in norms:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative moving average: every image counts the same
        bn.train()
    for i in range(0, len(dataset), batch):
        images = torch.stack([dataset[j]["image"] for j in range(i, min(i + batch, len(dataset)))])
        m(images)
    return m.eval()


def measure(smoke: bool, seeds: list[int], batch: int) -> list[dict[str, Any]]:
    from uda import create
    from uda.config import load_config
    from uda.data import build_dataset
    from uda.engine.seeds import seed_dir, train_seeds
    from uda.evaluation import evaluate
    from uda.models import load_weights
    from uda.selftraining import EMATeacher

    torch.set_num_threads(1)
    cfg = load_config("source_only_synthetic", overrides(smoke))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        train_seeds(cfg, Path(tmp) / "runs", seeds)
        for s in seeds:
            run = seed_dir(Path(tmp) / "runs", s)
            run_cfg = load_config(run / "config.yaml")
            mc = run_cfg.model
            model = create("model", mc.name, num_classes=mc.num_classes, **dict(mc.options))
            load_weights(model, run / "checkpoints" / "last.pt")
            model.eval()
            target = build_dataset(run_cfg.data.target, labels=False)
            val = build_dataset(run_cfg.data.val, labels=True)
            models = {"source statistics": model, "AdaBN": adabn(model, target, batch),
                      "batch-statistics teacher": EMATeacher(model, alpha=0.99, buffers="batch")}
            ev = copy.deepcopy(run_cfg.eval)
            ev.batch_size = batch
            final = json.loads((run / "final.json").read_text())["miou"]
            for name, m in models.items():
                r = evaluate(m, val, ev, device="cpu", protocol=run_cfg.eval.protocol, source="synthetic",
                             progress=False)
                if name == VARIANTS[0] and abs(r["miou"] - final) > 0.01:  # the same model, the same scores
                    raise RuntimeError(f"seed {s}: source statistics give {r['miou']}, final.json {final}")
                rows.append({"seed": s, "variant": name, "miou": r["miou"], "pixel_accuracy": r["pixel_accuracy"]})
    return rows


def summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    base = {r["seed"]: r["miou"] for r in rows if r["variant"] == VARIANTS[0]}
    for v in VARIANTS:
        m = [r["miou"] for r in rows if r["variant"] == v]
        gain = [r["miou"] - base[r["seed"]] for r in rows if r["variant"] == v]
        out.append({"variant": v, "seeds": len(m), "miou_mean": statistics.fmean(m), "miou_std": statistics.pstdev(m),
                    "gain_mean": statistics.fmean(gain), "gain_min": min(gain), "gain_max": max(gain)})
    return out


def markdown(res: dict[str, Any]) -> str:
    return "\n".join([
        "# AdaBN: the source-only model with target batch-norm statistics", "", machine_line(res), "",
        f"`source_only_synthetic` (tiny DeepLab-v2, trainable batch norm), {len(res['seeds'])} seeds, scored on the "
        f"synthetic target val split (mIoU19, %); evaluation batches of {res['batch']} images; std over seeds with "
        "divisor n; gain = variant − source statistics, per seed.", "",
        md_table(res["summary"], ["variant", "seeds", "miou_mean", "miou_std", "gain_mean", "gain_min", "gain_max"]),
        "", "Per seed:", "", md_table(res["rows"], ["seed", "variant", "miou", "pixel_accuracy"])])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="2 iterations at 64x32, one seed (CI)")
    ap.add_argument("--seeds", type=int, nargs="+", default=None, help="seeds [default 0 1 2, smoke 0]")
    ap.add_argument("--batch", type=int, default=4, help="images per evaluation batch (the training batch)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    seeds = args.seeds or ([0] if args.smoke else [0, 1, 2])
    rows = measure(args.smoke, seeds, args.batch)
    res = {**header("cpu", "benchmarks/bench_adabn.py", argv), "seeds": seeds, "batch": args.batch,
           "rows": rows, "summary": summary(rows), "smoke": args.smoke}
    write_results(out_dir(args), "adabn_smoke" if args.smoke else "adabn", res, markdown(res))
    print(markdown(res))
    return res


if __name__ == "__main__":
    main()
