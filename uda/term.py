"""The one composition seam of both lineages: a recipe's loss terms and the step object they read.

A `Term` is a small ``nn.Module`` with explicit hooks, each a no-op by default. The segmentation stage's recipe
(`uda.recipes.Recipe`) runs, per iteration:

1. the source loss on the student's output of the (translated) source images;
2. ``term.generator_loss(step)`` of every term, in order, with the modules of every term's
   ``frozen_in_generator_phase()`` frozen — the sum of all losses is backpropagated;
3. ``term.discriminator_loss(step)`` of every term — backpropagated into the discriminator optimizer, which owns
   every trainable parameter of the terms outside ``generator_parameters()``;
4. after the optimizers stepped, ``term.after_step(iteration)`` (EMA teachers move here).

``term.bind(recipe, name)`` is called once when the recipe is built (all terms of the config are added before
the first one is bound, so a term can look for the others: MIC reuses the self-training term's teacher).

Adversarial aligners (`uda.alignment`), self-training (`uda.selftraining.SelfTrainingTerm`), the ImageNet feature
distance and MIC are all terms, so any of them composes with any recipe (see docs/write-your-own.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ._errors import ConfigError
from .types import SegOutput

Size = tuple[int, int]
#: A recipe's term specs: ``{name: {"kind": KIND, **options}}``.
TermSpecs = dict[str, dict[str, Any]]
Losses = dict[str, torch.Tensor]
#: ``(output, label, pixel weight or None) -> {part: loss}``: the recipe's pixel loss ("" = the main part).
PixelLoss = Callable[[SegOutput, torch.Tensor, "torch.Tensor | None"], Losses]


@dataclass
class PseudoLabels:
    """A teacher's pseudo-labels of the step's target images.

    Attributes:
        label: (B, H, W) int64 class ids at the input resolution (ignored pixels 255).
        weight: (B, H, W) float confidence weights (DACS: one scalar per image broadcast over its pixels).
        source: name of the term that made them.
    """

    label: torch.Tensor
    weight: torch.Tensor
    source: str = ""


class SegStep:
    """One iteration of the segmentation stage, as every term sees it.

    Attributes:
        source: the student's output on the (translated) source images.
        target: the student's output on the target images, computed on first access (so a recipe whose terms
            never read it costs nothing) and shared by every term and by the discriminator phase.
        source_size: (H, W) of the source input images (output-space terms upsample to it).
        target_size: (H, W) of the target input images.
        source_image: the (translated) source images the student trained on, (B, 3, H, W) in [0, 1].
        source_label: their (B, H, W) labels.
        target_image: the target images.
        pseudo: the slot for the teacher's `PseudoLabels` of ``target_image`` (``None`` until a term fills it:
            the self-training term does, MIC reuses them).
        pixel_loss: the recipe's pixel loss ``(output, label, weight) -> {part: loss}`` (HRDA adds the detail
            part through its output), for terms that train the student on (pseudo-)labels.
        memo: term name → that term's scratch maps of this step (the discriminator phase reuses the target maps
            the generator phase computed).

    Example:
        >>> import torch
        >>> from uda.types import SegOutput
        >>> calls = []
        >>> step = SegStep(SegOutput(torch.zeros(1, 2, 4, 4)), target_fn=lambda: calls.append(1) or "out_t")
        >>> step.has_target, step.target, step.target, len(calls)  # computed once, on first access
        (False, 'out_t', 'out_t', 1)
    """

    def __init__(self, source: SegOutput, target: SegOutput | None = None, source_size: Size | None = None,
                 target_size: Size | None = None, *, target_fn: Callable[[], SegOutput] | None = None,
                 source_image: torch.Tensor | None = None, source_label: torch.Tensor | None = None,
                 target_image: torch.Tensor | None = None, pixel_loss: PixelLoss | None = None) -> None:
        self.source = source
        self._target = target
        self._target_fn = target_fn
        self.source_size, self.target_size = source_size, target_size
        self.source_image, self.source_label, self.target_image = source_image, source_label, target_image
        self.pseudo: PseudoLabels | None = None
        self.pixel_loss = pixel_loss
        self.memo: dict[str, dict[str, torch.Tensor]] = {}

    @property
    def target(self) -> SegOutput | None:
        if self._target is None and self._target_fn is not None:
            self._target = self._target_fn()
        return self._target

    @target.setter
    def target(self, value: SegOutput | None) -> None:
        self._target = value

    @property
    def has_target(self) -> bool:
        """Whether the target output was computed (or given) this step."""
        return self._target is not None


class Term(nn.Module):
    """Base class of every loss term of a recipe; each hook is a no-op by default.

    Attributes:
        needs_target_output: the term reads ``step.target``; the recipe then computes it before the terms run (as
            the original adversarial loops do). A term that reads it without saying so still gets it, lazily.
        backprops_through_source: the term's generator loss trains through ``step.source`` (gradient reversal,
            a style term), which ``trainer.sequential_backward`` cannot do.
        name: the term's name in its recipe (set by `bind`).

    Example:
        >>> import torch
        >>> class Entropy(Term):  # a 6-line term: entropy of the target predictions
        ...     needs_target_output = True
        ...     def generator_loss(self, step):
        ...         p = step.target.logits.softmax(1)
        ...         return {"ent": -(p * p.clamp_min(1e-8).log()).sum(1).mean()}
        >>> from uda.types import SegOutput
        >>> step = SegStep(SegOutput(torch.zeros(1, 2, 4, 4)), SegOutput(torch.zeros(1, 2, 4, 4)))
        >>> round(Entropy().generator_loss(step)["ent"].item(), 4)
        0.6931
    """

    needs_target_output: bool = False
    backprops_through_source: bool = False
    name: str = ""

    def bind(self, recipe: nn.Module, name: str) -> None:
        """Called once by the recipe after every term of its config was added (``recipe.model`` is the student)."""
        self.name = name

    def generator_loss(self, step: SegStep) -> Losses:
        """The named losses added to the segmentation network's loss (backpropagated with the source loss)."""
        return {}

    def discriminator_loss(self, step: SegStep) -> Losses:
        """The named losses of the term's own discriminators (inputs detached by the term)."""
        return {}

    def frozen_in_generator_phase(self) -> list[nn.Module]:
        """Modules frozen while the generator losses are backpropagated (the discriminators)."""
        return []

    def generator_parameters(self) -> list[nn.Parameter]:
        """Parameters of this term trained with the segmentation network (e.g. an FRU on the generator side)."""
        return []

    def discriminator_parameters(self) -> list[nn.Parameter]:
        """Trainable parameters of this term outside `generator_parameters` (the discriminator optimizer's)."""
        g = {id(p) for p in self.generator_parameters()}
        return [p for p in self.parameters() if p.requires_grad and id(p) not in g]

    def after_step(self, step: int) -> None:
        """Called after every applied optimizer step with the 1-based global iteration."""

    def legacy_prefixes(self, name: str) -> dict[str, str]:
        """Old checkpoint key prefix → today's, for a term added as ``name`` (checkpoints of earlier versions)."""
        return {}


def normalize_terms(terms: Any, where: str = "recipe.terms") -> TermSpecs:
    """Term specs as the canonical mapping ``{name: {"kind": KIND, **options}}`` (a list of
    ``{"name": NAME, "kind": KIND, ...}`` is accepted too; ``name: null`` removes nothing and is dropped).

    Example:
        >>> normalize_terms([{"name": "ent", "kind": "minent"}])
        {'ent': {'kind': 'minent'}}
    """
    if terms is None:
        return {}
    if isinstance(terms, list | tuple):
        out: TermSpecs = {}
        for i, spec in enumerate(terms):
            if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) \
                    or not isinstance(spec.get("kind"), str):
                raise ConfigError(f"{where}[{i}]: give a 'name' and a 'kind' (a registered term or aligner), e.g. "
                                  "{name: feature, kind: multilevel, levels: [layer3]}")
            spec = dict(spec)
            name = spec.pop("name")
            if name in out:
                raise ConfigError(f"{where}: the term name {name!r} is given twice; give each term its own name")
            out[name] = spec
        return out
    if not isinstance(terms, dict):
        raise ConfigError(f"{where}: expected a mapping name: {{kind: KIND, ...}} or a list, got {terms!r}")
    out = {}
    for name, spec in terms.items():
        if spec is None:  # `--set recipe.terms.mix=null` removes a term
            continue
        if not isinstance(spec, dict) or not isinstance(spec.get("kind"), str):
            raise ConfigError(f"{where}.{name}: give its 'kind' (a registered term or aligner), e.g. "
                              f"{{kind: minent}}")
        out[str(name)] = {k: v for k, v in spec.items() if k != "name"}
    return out


def term_loss_name(term: str, loss: str, many: bool) -> str:
    """The logged name of a term's loss: ``<term>_<loss>`` when the recipe has several terms, unless the loss
    already carries the term's name (``mix``, ``mix_detail`` of the term ``mix``).

    Example:
        >>> term_loss_name("aligner", "adv_logits", True), term_loss_name("mix", "mix_detail", True)
        ('aligner_adv_logits', 'mix_detail')
    """
    if not many or loss == term or loss.startswith(f"{term}_"):
        return loss
    return f"{term}_{loss}"


__all__ = ["Losses", "PixelLoss", "PseudoLabels", "SegStep", "Size", "Term", "TermSpecs", "normalize_terms",
           "term_loss_name"]

