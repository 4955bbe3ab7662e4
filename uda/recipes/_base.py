"""The base of every recipe: the segmentation stage's task (losses per phase, parameters) and its stages.

A recipe is a short composition: a ``Config`` dataclass, an aligner and/or a translator built from it,
and at most a few overridden hooks. The one loop (:mod:`uda.engine.trainer`) owns everything else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .._errors import CheckpointError
from .._io import load_checkpoint
from .._registry import create
from ..config import ExperimentConfig, OptimizerConfig, RecipeConfig, parse_size
from ..engine._optim import duplicated_backbone_params, split_no_decay
from ..engine.stage import Stage, TranslatorTask
from ..losses._functional import seg_ce
from ..types import LevelInfo, SegOutput


@dataclass
class TranslationConfig(RecipeConfig):
    """Fields shared by the recipes that train on translated source images (``cyclegan``, ``fda``, ``mlfa``).

    Attributes:
        translator: registered translator name (``cyclegan``, ``cyclegan_tiny``, ``fda``, ``identity``).
        translator_options: extra factory arguments (e.g. ``{"beta": 0.01}`` for FDA).
        translator_checkpoint: reuse trained translator weights (a run checkpoint or a state dict) and skip stage 1.
        translator_iters: length of stage 1 (CycleGAN training); 0 skips it.
        translator_optim: stage-1 optimizer of generators and discriminators (CycleGAN: Adam 2e-4, (0.5, 0.999),
            constant then linear decay).
        translator_crop: stage 1 trains on random ``WxH`` crops (CycleGAN practice; ``None``: full images).
        translated_root: a translated source cache (``uda translate``): source images are read from it and
            no on-the-fly translation or stage 1 happens.
    """

    translator: str = "cyclegan"
    translator_options: dict[str, Any] = field(default_factory=dict)
    translator_checkpoint: str | None = None
    translator_iters: int = 0
    translator_optim: OptimizerConfig = field(
        default_factory=lambda: OptimizerConfig(
            name="adam", lr=2e-4, betas=(0.5, 0.999), weight_decay=0.0, head_lr_mult=1.0,
            schedule="linear_decay", total_iters=None, decay_start=0,
        )
    )
    translated_root: str | None = None
    translator_crop: str | None = None


class Recipe(nn.Module):
    """Source-only segmentation task; subclasses add an aligner (``self.aligner``) and/or a translator.

    Args:
        cfg: the recipe's config (a :class:`RecipeConfig` subclass).
        model: the segmentation network.
        num_classes: number of classes.
        feature_info: the model's feature levels (defaults to ``model.feature_info``).

    Per iteration the loop calls :meth:`generator_losses` and :meth:`discriminator_losses` (see
    :class:`uda.engine.stage.Task`).
    """

    Config = RecipeConfig
    aux_weight = 0.1

    def __init__(self, cfg: RecipeConfig, model: nn.Module, *, num_classes: int,
                 feature_info: dict[str, LevelInfo] | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.model = model
        self.num_classes = num_classes
        self.feature_info = feature_info if feature_info is not None else model.feature_info
        self.aligner: nn.Module | None = None
        self.translator: nn.Module | None = None

    # --- hooks -------------------------------------------------------------------------------------
    def source_images(self, src: dict, tgt: dict) -> torch.Tensor:
        """The source images the segmentation network trains on (translated by ``self.translator`` if any)."""
        if self.translator is None or getattr(self.cfg, "translated_root", None):
            return src["image"]
        with torch.no_grad():
            return self.translator(src["image"], tgt["image"]).clamp(0, 1)

    def seg_losses(self, out: SegOutput, label: torch.Tensor) -> dict[str, torch.Tensor]:
        """L_seg = CE(main) + 0.1·CE(aux), logits upsampled to the label size (REFERENCE.md §3)."""
        losses = {"seg": seg_ce(out.logits, label)}
        if out.aux is not None and self.aux_weight:
            losses["seg_aux"] = self.aux_weight * seg_ce(out.aux, label)
        return losses

    def source_dataset_options(self) -> dict[str, Any]:
        """Extra options for the source dataset (a translated cache)."""
        root = getattr(self.cfg, "translated_root", None)
        return {"images_root": root} if root else {}

    # --- the Task of the segmentation stage ----------------------------------------------------------
    def generator_losses(self, src: dict, tgt: dict) -> tuple[dict[str, torch.Tensor], Any]:
        out_s = self.model(self.source_images(src, tgt))
        losses = self.seg_losses(out_s, src["label"])
        if self.aligner is None:
            return losses, None
        out_t = self.model(tgt["image"])
        # Output-space aligners upsample the logits to the input sizes (as the originals do).
        sizes = {"source_size": tuple(src["image"].shape[-2:]), "target_size": tuple(tgt["image"].shape[-2:])}
        losses.update(self.aligner.generator_loss(out_s, out_t, **sizes))
        return losses, (out_s, out_t, sizes)

    def discriminator_losses(self, state: Any) -> dict[str, torch.Tensor]:
        if self.aligner is None or state is None:
            return {}
        out_s, out_t, sizes = state
        return self.aligner.discriminator_loss(out_s, out_t, **sizes)

    def generator_param_groups(self, cfg: OptimizerConfig) -> list[dict]:
        groups = self.model.param_groups(cfg.lr, cfg.head_lr_mult)
        if cfg.faithful_duplicate_params:
            groups[0] = dict(groups[0], params=duplicated_backbone_params(self.model))
        if cfg.no_decay_keys:
            groups = split_no_decay(groups, self.model.named_parameters(), cfg.no_decay_keys)
        extra = [p for p in getattr(self.aligner, "generator_parameters", list)() if p.requires_grad]
        if extra:
            groups.append({"params": extra, "lr": cfg.lr, "lr_mult": 1.0, "name": "aligner_g"})
        return groups

    def discriminator_parameters(self) -> list[nn.Parameter]:
        if self.aligner is None:
            return []
        g = {id(p) for p in getattr(self.aligner, "generator_parameters", list)()}
        return [p for p in self.aligner.parameters() if id(p) not in g]

    def frozen_in_generator_phase(self) -> list[nn.Module]:
        return list(self.aligner.frozen_in_generator_phase()) if self.aligner is not None else []

    def trained_modules(self) -> list[nn.Module]:
        return [m for m in (self.model, self.aligner) if m is not None]

    def after_step(self, step: int) -> None:
        """Called by the loop after every applied optimizer step (``step``: the 1-based iteration); no-op here."""

    def wrap_datasets(self, source: Any, target: Any) -> tuple[Any, Any]:
        """Wrap the training datasets once after they are built (crops, rare-class sampling); identity here."""
        return source, target

    def stages(self, exp: ExperimentConfig) -> list[Stage]:
        """The stages in order; the segmentation stage runs ``trainer.max_iters`` iterations."""
        stages = []
        if self.translator is not None and self._translator_trainable():
            cfg = self.cfg
            task = TranslatorTask(self.translator, parse_size(cfg.translator_crop, "recipe.translator_crop"))
            stages.append(Stage("translator", task, cfg.translator_iters,
                                cfg.translator_optim, cfg.translator_optim))
        d_opt = exp.optim.discriminator if self.discriminator_parameters() else None
        stages.append(Stage("seg", self, exp.trainer.max_iters, exp.optim.generator, d_opt))
        return stages

    # --- translation helpers ---------------------------------------------------------------------------
    def build_translator(self) -> None:
        """Build ``self.translator`` from a :class:`TranslationConfig` and load ``translator_checkpoint`` if given."""
        cfg = self.cfg
        if cfg.translated_root:
            self.translator = None
            return
        self.translator = create("translator", cfg.translator, **cfg.translator_options)
        if cfg.translator_checkpoint:
            state = load_checkpoint(cfg.translator_checkpoint)
            state = state.get("translator", state) if isinstance(state, dict) else state
            if isinstance(state, dict) and "state_dict" in state:  # uda.translators.save_translator format
                state = state["state_dict"]
            try:
                self.translator.load_state_dict(state)
            except (RuntimeError, KeyError) as e:
                msg = str(e).splitlines()[0]
                raise CheckpointError(f"{cfg.translator_checkpoint}: does not fit translator '{cfg.translator}' "
                                      f"({msg}); check recipe.translator and its options") from None

    def _translator_trainable(self) -> bool:
        cfg = self.cfg
        return (hasattr(self.translator, "generator_losses") and not getattr(cfg, "translator_checkpoint", None)
                and getattr(cfg, "translator_iters", 0) > 0)


def build_aligner(recipe: Recipe, name: str, **options: Any) -> nn.Module:
    """Create a registered aligner for ``recipe.model`` (its feature levels and classes), λs and mode as data."""
    return create("aligner", name, feature_info=recipe.feature_info, num_classes=recipe.num_classes, **options)
