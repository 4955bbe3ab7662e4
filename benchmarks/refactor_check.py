"""Behaviour check for refactors: short fixed-seed runs whose final weights and ``final.json`` must not change.

A dev tool, not a benchmark: record the runs on the unmodified code, refactor, then compare.

    OMP_NUM_THREADS=1 python benchmarks/refactor_check.py --record benchmarks/results/refactor_baseline.json
    OMP_NUM_THREADS=1 python benchmarks/refactor_check.py --compare benchmarks/results/refactor_baseline.json

Each run trains a built-in synthetic preset for ``trainer.max_iters=12`` (CycleGAN stages for 6 iterations)
on one CPU thread with no mid-run evaluation and a small validation set, then hashes every tensor of the
final checkpoint's recipe state (model, discriminators, translator: sha256 of each tensor's bytes, keys in
sorted order) and of the optimizer states, and records ``final.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch

RUNS = ("adaptsegnet_synthetic", "advent_mic_synthetic", "advent_synthetic", "cyclegan_synthetic", "dacs_synthetic",
        "daformer_synthetic", "fda_synthetic", "hrda_synthetic", "mic_synthetic", "minent_synthetic",
        "mlfa_no_feature_alignment_synthetic", "mlfa_no_translation_synthetic", "mlfa_output_level_synthetic",
        "mlfa_synthetic", "source_only_synthetic", "vfm_uda_synthetic")
OVERRIDES = ["trainer.max_iters=12", "trainer.eval_every=0", "trainer.checkpoint_every=12",
             "trainer.tensorboard=false", "trainer.device=cpu", "trainer.log_every=4",
             "data.source.options.num=16", "data.target.options.num=16", "data.val.options.num=4",
             "data.batch_size=2"]
TRANSLATOR = ["recipe.translator_iters=6"]


def tensor_sha(t: torch.Tensor) -> str:
    t = t.detach().cpu().contiguous().reshape(-1)
    return hashlib.sha256(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"").hexdigest() + f":{t.dtype}"


def flat_tensors(obj: Any, prefix: str = "") -> dict[str, torch.Tensor]:
    """Every tensor in a nested dict/list, keyed by its dotted path."""
    out: dict[str, torch.Tensor] = {}
    if isinstance(obj, torch.Tensor):
        out[prefix] = obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            out.update(flat_tensors(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(obj, list | tuple):
        for i, v in enumerate(obj):
            out.update(flat_tensors(v, f"{prefix}.{i}" if prefix else str(i)))
    return out


def digest(tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    per_key = {k: tensor_sha(tensors[k]) for k in sorted(tensors)}
    total = hashlib.sha256("".join(per_key.values()).encode()).hexdigest()
    return {"sha256": total, "tensors": per_key}


def run_one(name: str, out: Path) -> dict[str, Any]:
    from uda.config import load_config
    from uda.engine import train

    torch.set_num_threads(1)
    overrides = list(OVERRIDES) + (TRANSLATOR if name.split("_")[0] in ("mlfa", "cyclegan") else [])
    cfg = load_config(name, overrides)
    train(cfg, out / name)
    state = torch.load(out / name / "checkpoints" / "last.pt", weights_only=True, map_location="cpu")
    recipe = digest(flat_tensors(state["recipe"]))
    optim = digest(flat_tensors(state["optimizers"]))
    final_json = json.loads((out / name / "final.json").read_text())
    return {"overrides": overrides, "recipe": recipe, "optimizers": optim, "final": final_json,
            "global_iter": int(state["global_iter"])}


def compare(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    lines = []
    for name in old:
        if name not in new:
            lines.append(f"{name}: MISSING")
            continue
        a, b = old[name], new[name]
        problems = []
        for part in ("recipe", "optimizers"):
            if a[part]["sha256"] != b[part]["sha256"]:
                ka, kb = a[part]["tensors"], b[part]["tensors"]
                if sorted(ka.values()) == sorted(kb.values()):
                    renamed = sorted(set(ka) - set(kb))
                    problems.append(f"{part}: same tensors, {len(renamed)} keys renamed (e.g. {', '.join(renamed[:2])})")
                else:
                    diff = sorted(k for k in set(ka) | set(kb) if ka.get(k) != kb.get(k))
                    problems.append(f"{part}: {len(diff)} tensors differ (e.g. {', '.join(diff[:3])})")
        if a["final"] != b["final"]:
            keys = sorted(k for k in set(a["final"]) | set(b["final"]) if a["final"].get(k) != b["final"].get(k))
            problems.append(f"final.json differs in {', '.join(keys)}")
        n = len(a["recipe"]["tensors"])
        lines.append(f"{name}: " + ("; ".join(problems) if problems else
                                    f"identical ({n} recipe tensors, miou {a['final'].get('miou')})"))
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--record", type=Path, help="write the results of every run to this JSON file")
    g.add_argument("--compare", type=Path, help="run again and compare with this recorded JSON file")
    p.add_argument("--runs", nargs="*", default=list(RUNS), help="presets to run")
    args = p.parse_args(argv)
    from uda import _registry  # noqa: F401  (imports every component)

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.runs:
            print(f"running {name} ...", file=sys.stderr, flush=True)
            results[name] = run_one(name, Path(tmp))
    if args.record:
        args.record.parent.mkdir(parents=True, exist_ok=True)
        args.record.write_text(json.dumps({"torch": torch.__version__, "runs": results}, indent=1) + "\n")
        print(f"recorded {len(results)} runs to {args.record}")
        return 0
    old = json.loads(args.compare.read_text())["runs"]
    lines = compare({k: v for k, v in old.items() if k in results}, results)
    print("\n".join(lines))
    return 0 if all(": identical" in x or (" keys renamed" in x and "differ" not in x) for x in lines) else 1


if __name__ == "__main__":
    sys.exit(main())
