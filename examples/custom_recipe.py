"""Compose a new method from registered parts, as data: AdvEnt's entropy alignment + an FRU-reinforced feature
discriminator at layer3, on FDA-translated source images.

A recipe's loss terms are data in its config (``recipe.terms``: name → registered term or aligner and its
options); the one loop does the rest. With two terms every loss is named ``<term>_<loss>``. A short CPU run on the synthetic
pair: ``python examples/custom_recipe.py --iters 2 --size 64x32 --out /tmp/custom``
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from typing import Any

import uda
from uda.config import load_config
from uda.engine import train
from uda.evaluation import format_table
from uda.recipes.fda import FDA, FDAConfig


@dataclass
class AdvEntFRUFDAConfig(FDAConfig):
    name: str = "advent_fru_fda"
    terms: dict[str, dict[str, Any]] = field(default_factory=lambda: {
        "entropy": {"kind": "entropy", "levels": {"logits": 1e-3, "aux": 2e-4}, "discriminator": "fc"},
        "feature": {"kind": "multilevel", "levels": ["layer3"], "weight": 2e-4, "fru": True,
                    "discriminator": "feature"},
    })


@uda.register("recipe", "advent_fru_fda")
class AdvEntFRUFDA(FDA):
    Config = AdvEntFRUFDAConfig


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iters", type=int, default=300, help="training iterations")
    parser.add_argument("--size", default="128x64", help="training and evaluation size WxH")
    parser.add_argument("--num", type=int, default=200, help="synthetic images per domain")
    parser.add_argument("--out", default="runs/advent_fru_fda_synthetic", help="run directory")
    args = parser.parse_args(argv)
    # The same terms with the tiny discriminators (and 8 FRU groups) that suit the tiny CPU model.
    tiny = {n: dict(t, discriminator=t["discriminator"] + "_tiny") for n, t in AdvEntFRUFDAConfig().terms.items()}
    tiny["feature"]["fru_kwargs"] = {"groups": 8}
    cfg = load_config("fda_synthetic", [  # its FDA β 0.09 carries over to the new recipe (0.01: no change at 128x64)
        "recipe.name=advent_fru_fda", f"recipe.terms={json.dumps(tiny)}", f"trainer.max_iters={args.iters}",
        f"trainer.checkpoint_every={args.iters}", "trainer.tensorboard=false", "trainer.device=cpu",
        *(f"{k}={args.size}" for k in ("data.source.size", "data.target.size", "data.val.size", "eval.size")),
        f"data.source.options.num={args.num}", f"data.target.options.num={args.num}",
        f"data.val.options.num={max(2, args.num // 4)}"])
    result = train(cfg, args.out)
    print(format_table(result))
    return result


if __name__ == "__main__":
    main()
