"""Compose a new method from registered parts: AdvEnt + the FRU-reinforced feature discriminator at layer3 + FDA.

The recipe below is the whole method: a config dataclass and a constructor that picks a translator and two
aligners. The one training loop does the rest (phases, freezing, optimizers, checkpoints, evaluation).

    python examples/custom_recipe.py                      # a short CPU run on the built-in synthetic pair
    python examples/custom_recipe.py --iters 2 --size 64x32 --out /tmp/custom
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

import uda
from uda.config import load_config
from uda.engine import train
from uda.evaluation import format_table
from uda.recipes._base import Recipe, TranslationConfig, build_aligner


class Aligners(nn.Module):
    """Several aligners used as one: their losses are summed by name, their discriminators frozen together."""

    def __init__(self, **aligners: nn.Module) -> None:
        super().__init__()
        self.parts = nn.ModuleDict(aligners)

    def _merge(self, method: str, *args: Any, **kw: Any) -> dict[str, torch.Tensor]:
        return {f"{n}_{k}": v for n, a in self.parts.items() for k, v in getattr(a, method)(*args, **kw).items()}

    def generator_loss(self, source, target, **sizes):
        return self._merge("generator_loss", source, target, **sizes)

    def discriminator_loss(self, source, target, **sizes):
        return self._merge("discriminator_loss", source, target, **sizes)

    def frozen_in_generator_phase(self) -> list[nn.Module]:
        return [m for a in self.parts.values() for m in a.frozen_in_generator_phase()]

    def generator_parameters(self) -> list[nn.Parameter]:
        return [p for a in self.parts.values() for p in getattr(a, "generator_parameters", list)()]


@dataclass
class AdvEntFRUFDAConfig(TranslationConfig):
    """AdvEnt's output levels, one FRU-reinforced feature level, and FDA's β."""

    name: str = "advent_fru_fda"
    translator: str = "fda"
    translator_options: dict[str, Any] = field(default_factory=lambda: {"beta": 0.01})
    levels: dict[str, float] = field(default_factory=lambda: {"logits": 1e-3, "aux": 2e-4})
    discriminator: str = "fc"
    feature_level: str = "layer3"
    feature_weight: float = 2e-4
    feature_discriminator: str = "feature"
    fru_options: dict[str, Any] = field(default_factory=dict)


@uda.register("recipe", "advent_fru_fda")
class AdvEntFRUFDA(Recipe):
    """AdvEnt (entropy maps at the outputs) + FRU feature alignment at layer3, on FDA-translated source."""

    Config = AdvEntFRUFDAConfig

    def __init__(self, cfg: AdvEntFRUFDAConfig, model: nn.Module, **kw: Any) -> None:
        super().__init__(cfg, model, **kw)
        self.build_translator()  # FDA: training-free, applied on the fly to every source batch
        self.aligner = Aligners(
            entropy=build_aligner(self, "entropy", levels=cfg.levels, discriminator=cfg.discriminator),
            feature=build_aligner(self, "multilevel", levels=[cfg.feature_level], weight=cfg.feature_weight,
                                  fru=True, fru_kwargs=cfg.fru_options, discriminator=cfg.feature_discriminator),
        )


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iters", type=int, default=300, help="training iterations")
    parser.add_argument("--size", default="128x64", help="training and evaluation size WxH")
    parser.add_argument("--num", type=int, default=200, help="synthetic images per domain")
    parser.add_argument("--out", default="runs/advent_fru_fda_synthetic", help="run directory")
    args = parser.parse_args(argv)

    # Start from the AdvEnt CPU preset and switch the recipe by name; the tiny discriminators suit tiny models.
    cfg = load_config("advent_synthetic", [
        "recipe.name=advent_fru_fda", "recipe.discriminator=fc_tiny", "recipe.feature_discriminator=feature_tiny",
        "recipe.fru_options={groups: 8}",
        f"trainer.max_iters={args.iters}", f"trainer.checkpoint_every={args.iters}", "trainer.tensorboard=false",
        f"data.source.size={args.size}", f"data.target.size={args.size}", f"data.val.size={args.size}",
        f"eval.size={args.size}", f"data.source.options.num={args.num}", f"data.target.options.num={args.num}",
        f"data.val.options.num={max(2, args.num // 4)}", "trainer.device=cpu",
    ])
    result = train(cfg, args.out)
    print(format_table(result))
    return result


if __name__ == "__main__":
    main()
