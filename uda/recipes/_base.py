"""The base of every recipe: the segmentation stage's task (losses per phase, parameters) and its stages.

A recipe is a short composition: a ``Config`` dataclass, named loss terms (`uda.term.Term`: aligners,
self-training terms, regularisers) and/or a translator built from it, and at most a few overridden hooks. The one
loop (`uda.engine.Trainer`) owns everything else. Loss terms are data: ``recipe.terms`` in the config maps
``name → {kind: <registered term or aligner>, <its options>}``; they are added before the recipe's own terms.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .._errors import CheckpointError, ConfigError
from .._io import load_checkpoint
from .._registry import _check_kwargs as check_kwargs
from .._registry import create, registry
from ..config import ExperimentConfig, OptimizerConfig, RecipeConfig, parse_size
from ..losses import seg_ce
from ..models import duplicated_backbone_params, model_param_groups, split_no_decay
from ..selftraining.hrda import multires_ce
from ..term import SegStep, Term, TermSpecs, normalize_terms, term_loss_name
from ..translators import translator_state_dict
from ..types import LevelInfo, SegOutput
from .task import Batch, Losses, Stage, TranslatorTask


@dataclass
class TermsConfig(RecipeConfig):
    """Base of the built-in recipes' configs: extra loss terms given as data.

    Attributes:
        terms: ``{NAME: {"kind": KIND, **options}}`` (a list of ``{"name": NAME, "kind": KIND, ...}`` is accepted
            and converted); each is built with ``create("term", KIND, **options)`` — or, for an aligner,
            ``create("aligner", KIND, feature_info=..., num_classes=..., **options)`` — and added to the recipe
            under ``NAME`` before the recipe's own terms (e.g. AdvEnt's ``aligner``). With more than one term,
            every loss is reported as ``NAME_<loss>`` (unless it already starts with ``NAME``). Dotted overrides
            reach into it (``recipe.terms.mix.alpha=0.999``); ``recipe.terms.NAME=null`` removes a term.

    Example:
        >>> cfg = TermsConfig(terms=[{"name": "feature", "kind": "multilevel", "levels": ["layer3"]}])
        >>> cfg.terms["feature"]["kind"]
        'multilevel'
    """

    terms: dict[str, dict[str, Any] | None] | list[dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.terms = normalize_terms(self.terms)
        super().__post_init__()


@dataclass
class TranslationConfig(TermsConfig):
    """Fields shared by the recipes that train on translated source images (``cyclegan``, ``fda``, ``mlfa``).

    Attributes:
        translator: registered translator name (``cyclegan``, ``cyclegan_tiny``, ``fda``, ``identity``).
        translator_options: extra factory arguments (e.g. ``{"beta": 0.01}`` for FDA).
        translator_checkpoint: reuse trained translator weights (a run checkpoint or a state dict) and skip stage 1.
        translator_iters: length of stage 1 (CycleGAN training); 0 skips it.
        translator_optim: stage-1 optimizer of generators and discriminators (CycleGAN: Adam 2e-4, (0.5, 0.999),
            constant then linear decay).
        translator_crop: stage 1 trains on random ``WxH`` crops (CycleGAN practice; ``None``: full images).
        translator_decay_start: fraction of ``translator_iters`` after which stage 1's learning rate decays
            linearly to 0 (CycleGAN: constant for half the epochs → 0.5); resolved when the run starts, so it
            follows ``--set recipe.translator_iters=…`` (it replaces ``translator_optim.decay_start``).
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
    translator_decay_start: float = 0.5


class Recipe(nn.Module):
    """Source-only segmentation task; subclasses add loss terms (`add_term`) and/or a translator.

    Args:
        cfg: the recipe's config (a `uda.config.RecipeConfig` subclass; a `TermsConfig` adds its ``terms``).
        model: the segmentation network.
        num_classes: number of classes.
        feature_info: the model's feature levels (defaults to ``model.feature_info``).

    Per iteration the loop calls `generator_losses` and `discriminator_losses`, then `after_step` once the
    optimizers stepped (see `uda.recipes.Task`). A submodule that is neither the model nor a term nor the
    translator, with ``requires_grad=False`` (`carry`), moves and is checkpointed with the recipe, is never
    optimized and stays in eval mode.

    Example:
        >>> import uda
        >>> from uda.recipes import Recipe, TermsConfig
        >>> model = uda.create("model", "deeplabv2_tiny", num_classes=4, width=4)
        >>> r = Recipe(TermsConfig(terms=[{"name": "ent", "kind": "minent", "levels": {"logits": 1.0}}]),
        ...            model, num_classes=4)
        >>> list(r.terms)
        ['ent']
    """

    Config = RecipeConfig
    aux_weight = 0.1
    #: weight of a multi-resolution output's detail loss in `pixel_loss` (HRDA: 0.1)
    detail_weight = 0.1

    def __init__(self, cfg: RecipeConfig, model: nn.Module, *, num_classes: int,
                 feature_info: dict[str, LevelInfo] | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.model = model
        self.num_classes = num_classes
        self.feature_info = feature_info if feature_info is not None else model.feature_info
        self.aligner: nn.Module | None = None  # the slot of a recipe's primary term (``add_term("aligner", ...)``)
        self.translator: nn.Module | None = None
        self._terms: list[str] = []
        self._register_load_state_dict_pre_hook(self._upgrade_legacy_keys)
        if isinstance(cfg, TermsConfig):
            self.add_config_terms(cfg.terms)

    def _upgrade_legacy_keys(self, state: dict[str, Any], prefix: str, *_: Any) -> None:
        """Rename the keys of checkpoints written before a part became a term (`uda.term.Term.legacy_prefixes`)."""
        for name, term in self.terms.items():
            for old, new in term.legacy_prefixes(name).items():
                for key in [k for k in state if k.startswith(prefix + old)]:
                    renamed = prefix + new + key[len(prefix + old):]
                    if renamed not in state:
                        state[renamed] = state.pop(key)

    # --- building blocks ------------------------------------------------------------------------------
    def add_term(self, name: str, term: Term, *, bind: bool = True) -> Term:
        """Add a loss term (a `uda.term.Term`: an aligner, a self-training term, ...) as the submodule ``name``.

        Args:
            name: the term's name (its losses are logged as ``<name>_<loss>`` next to other terms).
            term: the term.
            bind: call ``term.bind(self, name)`` now (`add_config_terms` binds after adding all of them).

        Returns:
            The term.

        Raises:
            ConfigError: ``name`` is taken or not an identifier, or ``term`` is not a `uda.term.Term`.
        """
        free = name == "aligner" and self.aligner is None
        if not name.isidentifier() or name in self._terms or (hasattr(self, name) and not free):
            raise ConfigError(f"recipe.terms: the term name {name!r} is taken or not an identifier; choose another")
        if not isinstance(term, Term):
            raise ConfigError(f"recipe.terms.{name}: a {type(term).__name__} is not a loss term; subclass uda.Term "
                              "(see docs/write-your-own.md)")
        setattr(self, name, term)
        self._terms.append(name)
        if bind:
            term.bind(self, name)
        return term

    def build_term(self, kind: str, **options: Any) -> Term:
        """Create a registered term ``kind`` (kind ``term``), or a registered aligner for this recipe's model (its
        feature levels and classes)."""
        if kind in registry("term"):  # unlike `create`, an option given as None stays (``classes: null``)
            factory = registry("term").get(kind)
            check_kwargs("term", kind, factory, options)
            return factory(**options)
        if kind in registry("aligner"):
            return create("aligner", kind, feature_info=self.feature_info, num_classes=self.num_classes, **options)
        names = sorted({*registry("term").names(), *registry("aligner").names()})
        raise ConfigError(f"recipe.terms: unknown term kind {kind!r}; registered terms and aligners: "
                          f"{', '.join(names)}")

    def add_config_terms(self, specs: TermSpecs | list[dict[str, Any]]) -> None:
        """Add terms given as data (``cfg.terms``): build and add them all, then bind each in order."""
        added = [self.add_term(name, self.build_term(spec["kind"], **{k: v for k, v in spec.items() if k != "kind"}),
                               bind=False) for name, spec in normalize_terms(specs).items()]
        for term in added:
            term.bind(self, term_name(self, term))

    def carry(self, name: str, module: nn.Module) -> nn.Module:
        """Add a carried module (EMA teacher, frozen encoder): frozen, in eval mode, saved with the recipe."""
        for p in module.parameters():
            p.requires_grad_(False)
        self.add_module(name, module.eval())
        return module

    @property
    def terms(self) -> dict[str, Term]:
        """Term name → term, in the order they were added."""
        return {n: self._modules[n] for n in self._terms}

    def term_losses(self, phase: str, step: SegStep, names: list[str] | None = None) -> Losses:
        """The losses of the terms ``names`` (default all) for ``phase`` (``"generator"`` or ``"discriminator"``),
        named by `uda.term.term_loss_name`."""
        out: Losses = {}
        many = len(self._terms) > 1
        for name in names if names is not None else self._terms:
            term = self._modules[name]
            losses = term.generator_loss(step) if phase == "generator" else term.discriminator_loss(step)
            out.update({term_loss_name(name, k, many): v for k, v in losses.items()})
        return out

    # --- hooks -------------------------------------------------------------------------------------
    def source_images(self, src: Batch, tgt: Batch) -> torch.Tensor:
        """The source images the segmentation network trains on (translated by ``self.translator`` if any)."""
        if self.translator is None:
            return src["image"]
        with torch.no_grad():
            return self.translator(src["image"], tgt["image"]).clamp(0, 1)

    def seg_losses(self, out: SegOutput, label: torch.Tensor) -> Losses:
        """L_seg = CE(main) + 0.1·CE(aux), logits upsampled to the label size (Tsai et al., CVPR 2018)."""
        losses = {"seg": seg_ce(out.logits, label)}
        if out.aux is not None and self.aux_weight:
            losses["seg_aux"] = self.aux_weight * seg_ce(out.aux, label)
        return losses

    def pixel_loss(self, out: SegOutput, label: torch.Tensor, weight: torch.Tensor | None = None) -> Losses:
        """The loss terms train the student with on (pseudo-)labels: pixel-weighted CE of the logits (``""``),
        plus, for a multi-resolution output (HRDA's ``detail_logits``), ``detail_weight`` × the detail crop's."""
        return multires_ce(out, label, weight, detail_weight=self.detail_weight)

    def source_dataset_options(self) -> dict[str, Any]:
        """Extra options for the source dataset (a translated cache)."""
        cfg = self.cfg
        return {"images_root": cfg.translated_root} if isinstance(cfg, TranslationConfig) and cfg.translated_root else {}

    def wrap_datasets(self, source: Any, target: Any) -> tuple[Any, Any]:
        """Wrap the training datasets (random crops, rare-class sampling); called once by the builder."""
        return source, target

    def after_step(self, step: int) -> None:
        """Called after every applied optimizer step with the 1-based global iteration (EMA updates go here)."""
        for term in self.terms.values():
            term.after_step(step)

    # --- the Task of the segmentation stage ----------------------------------------------------------
    def new_step(self, out_s: SegOutput, x_s: torch.Tensor, src: Batch, tgt: Batch) -> SegStep:
        """The step object of one iteration (the target output is computed when first read)."""
        x_t = tgt["image"]
        return SegStep(out_s, None, tuple(x_s.shape[-2:]), tuple(x_t.shape[-2:]),
                       target_fn=lambda: self.model(x_t), source_image=x_s, source_label=src.get("label"),
                       target_image=x_t, pixel_loss=self.pixel_loss)

    def _needs_target_first(self, names: list[str]) -> bool:
        return any(self._modules[n].needs_target_output for n in names)

    def generator_losses(self, src: Batch, tgt: Batch) -> tuple[Losses, SegStep]:
        x_s = self.source_images(src, tgt)
        out_s = self.model(x_s)
        losses = self.seg_losses(out_s, src["label"])
        step = self.new_step(out_s, x_s, src, tgt)
        if self._terms:
            if self._needs_target_first(self._terms):
                _ = step.target  # the target forward before the terms, as the original adversarial loops
            losses.update(self.term_losses("generator", step))
        return losses, step

    def generator_loss_parts(self, src: Batch, tgt: Batch) -> Generator[Losses, None, SegStep]:
        """``trainer.sequential_backward``: yield the source losses, then the target losses; return the state.

        The loop backpropagates each yielded part before asking for the next, so the source graph is freed
        before the target graph is built (as the original AdaptSegNet/ADVENT loops do). Terms that train through
        the source output (``backprops_through_source``: gradient reversal, a style term, the feature distance)
        join the first part; the others see a detached source output. A recipe that overrides
        ``generator_losses`` without this hook yields its losses as one part.
        """
        if type(self).generator_losses is not Recipe.generator_losses:
            losses, state = self.generator_losses(src, tgt)
            yield losses
            return state
        x_s = self.source_images(src, tgt)
        out_s = self.model(x_s)
        step = self.new_step(out_s, x_s, src, tgt)
        first = [n for n in self._terms if self._modules[n].backprops_through_source]
        rest = [n for n in self._terms if n not in first]
        losses = self.seg_losses(out_s, src["label"])
        if first:
            if self._needs_target_first(first):
                _ = step.target
            losses.update(self.term_losses("generator", step, first))
        yield losses
        step.source = SegOutput(out_s.logits.detach(), None if out_s.aux is None else out_s.aux.detach(),
                                {k: v.detach() for k, v in out_s.features.items()})
        if rest:
            if self._needs_target_first(rest):
                _ = step.target
            yield self.term_losses("generator", step, rest)
        return step

    def discriminator_losses(self, state: SegStep) -> Losses:
        if not self._terms:
            return {}
        return self.term_losses("discriminator", state)

    def generator_param_groups(self, cfg: OptimizerConfig) -> list[dict]:
        groups = model_param_groups(self.model, cfg)  # encoder_lr_mult / layer_decay (no-ops by default)
        if cfg.faithful_duplicate_params:
            groups[0] = dict(groups[0], params=duplicated_backbone_params(self.model))
        if cfg.no_decay_keys:
            groups = split_no_decay(groups, self.model.named_parameters(), cfg.no_decay_keys)
        extra = [p for t in self.terms.values() for p in t.generator_parameters() if p.requires_grad]
        if extra:
            groups.append({"params": extra, "lr": cfg.lr, "lr_mult": 1.0, "name": "terms_g"})
        return groups

    def discriminator_parameters(self) -> list[nn.Parameter]:
        return [p for t in self.terms.values() for p in t.discriminator_parameters()]

    def frozen_in_generator_phase(self) -> list[nn.Module]:
        return [m for t in self.terms.values() for m in t.frozen_in_generator_phase()]

    def trained_modules(self) -> list[nn.Module]:
        """The model and every term (terms keep their carried parts — teachers, frozen networks — in eval mode)."""
        return [self.model, *self.terms.values()]

    def stages(self, exp: ExperimentConfig) -> list[Stage]:
        """The stages in order; the segmentation stage runs ``trainer.max_iters`` iterations."""
        stages: list[Stage] = []
        cfg = self.cfg
        if isinstance(cfg, TranslationConfig) and self.translator is not None and self._translator_trainable():
            task = TranslatorTask(self.translator, parse_size(cfg.translator_crop, "recipe.translator_crop"))
            t_optim = translator_stage_optim(cfg)
            stages.append(Stage("translator", task, cfg.translator_iters, t_optim, t_optim))
        d_opt = exp.optim.discriminator if self.discriminator_parameters() else None
        stages.append(Stage("seg", self, exp.trainer.max_iters, exp.optim.generator, d_opt))
        return stages

    # --- translation helpers ---------------------------------------------------------------------------
    def build_translator(self) -> None:
        """Build ``self.translator`` from a `TranslationConfig` and load ``translator_checkpoint`` if given."""
        cfg = self.cfg
        assert isinstance(cfg, TranslationConfig)
        if cfg.translated_root:
            self.translator = None
            return
        self.translator = create("translator", cfg.translator, **cfg.translator_options)
        if cfg.translator_checkpoint:
            state = load_checkpoint(cfg.translator_checkpoint)
            if isinstance(state, dict) and "recipe" in state:  # a training checkpoint
                state = translator_state_dict(state) or {}
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
        assert isinstance(cfg, TranslationConfig)
        # a training-free translator (FDA) has no losses of its own
        return hasattr(self.translator, "generator_losses") and not cfg.translator_checkpoint and cfg.translator_iters > 0


def translator_stage_optim(cfg: TranslationConfig) -> OptimizerConfig:
    """Stage 1's optimizer config with ``decay_start = translator_decay_start × translator_iters`` (at run time)."""
    frac = cfg.translator_decay_start
    if not 0.0 <= frac <= 1.0:
        raise ConfigError(f"recipe.translator_decay_start: {frac} is not a fraction in [0, 1]; CycleGAN uses 0.5")
    return dataclasses.replace(cfg.translator_optim, decay_start=round(frac * cfg.translator_iters))



def term_name(recipe: Recipe, term: Term) -> str:
    """The name under which ``term`` was added to ``recipe``."""
    return next(n for n in recipe._terms if recipe._modules[n] is term)
