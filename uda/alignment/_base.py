"""Base classes of the aligners: the objects that turn both domains' model outputs into the generator's
adversarial terms and the discriminators' losses.

Two update styles:

- ``mode="alternate"`` (AdaptSegNet/ADVENT): the generator term ``λ·L(D(target), source label)`` is computed
  with the discriminators frozen (`Aligner.frozen_in_generator_phase`), then the discriminator loss
  ``½L(D(source.detach()), 0) + ½L(D(target.detach()), 1)`` trains them.
- ``mode="grl"`` (gradient reversal, DANN): the discriminator loss is computed once on non-detached inputs
  passed through a `GradientReversal` layer of coefficient λ and returned by
  `Aligner.generator_loss`; its backward trains the discriminators with the plain gradient and sends
  ``−λ`` times the gradient into the segmentation network. `Aligner.discriminator_loss` is then empty
  and nothing is frozen.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .._errors import UdaError
from .._registry import create
from .._utils import set_requires_grad  # noqa: F401  (re-exported by uda.alignment)
from ..losses import _functional as Fn
from ..term import SegStep, Term
from ..types import LevelInfo, SegOutput

MODES = ("alternate", "grl")
Size = tuple[int, int]
DiscriminatorSpec = str | Callable[..., nn.Module]
Memo = dict[str, torch.Tensor]


class _ReverseGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, coeff: float) -> torch.Tensor:
        ctx.coeff = coeff
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.coeff * grad, None


def grad_reverse(x: torch.Tensor, coeff: float = 1.0) -> torch.Tensor:
    """Identity in the forward pass; multiplies the gradient by ``-coeff`` in the backward pass."""
    return _ReverseGrad.apply(x, coeff)


class GradientReversal(nn.Module):
    """Gradient reversal layer (Ganin & Lempitsky, "Unsupervised Domain Adaptation by Backpropagation", 2015).

    Args:
        coeff: the gradient is multiplied by ``-coeff`` on its way back.

    Example:
        >>> x = torch.ones(3, requires_grad=True)
        >>> GradientReversal(0.5)(x).sum().backward()
        >>> x.grad
        tensor([-0.5000, -0.5000, -0.5000])
    """

    def __init__(self, coeff: float = 1.0) -> None:
        super().__init__()
        self.coeff = coeff

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return grad_reverse(x, self.coeff)

    def extra_repr(self) -> str:
        return f"coeff={self.coeff}"


@contextlib.contextmanager
def frozen(modules: Iterable[nn.Module]) -> Iterator[None]:
    """Context manager: parameters of ``modules`` do not require grad inside; previous flags restored after.

    Example:
        >>> d = nn.Linear(2, 1)
        >>> with frozen([d]):
        ...     d.weight.requires_grad
        False
    """
    params = [p for m in modules for p in m.parameters()]
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, f in zip(params, flags):
            p.requires_grad_(f)


def level_tensor(out: SegOutput, level: str) -> torch.Tensor:
    """The tensor of one level: ``"logits"`` → ``out.logits``, ``"aux"`` → ``out.aux``, else ``out.features[level]``."""
    if level == "logits":
        return out.logits
    if level == "aux":
        if out.aux is None:
            raise UdaError(
                "aligner level 'aux' needs auxiliary logits but the model returned aux=None; "
                "build the model with multi_level=True or drop 'aux' from the aligner's levels"
            )
        return out.aux
    if level not in out.features:
        raise UdaError(
            f"aligner level {level!r} is not among the model's features ({', '.join(out.features) or 'none'}); "
            "choose levels from the model's feature_info"
        )
    return out.features[level]


def level_channels(level: str, feature_info: Mapping[str, LevelInfo] | None, num_classes: int | None) -> int:
    """Declared channels of a level: ``num_classes`` for ``logits``/``aux``, else ``feature_info[level]``."""
    if level in ("logits", "aux"):
        if num_classes is None:
            raise UdaError(f"aligner level {level!r} needs num_classes; pass num_classes=C")
        return num_classes
    if not feature_info or level not in feature_info:
        known = ", ".join(feature_info or {}) or "none"
        raise UdaError(
            f"aligner level {level!r} is not declared in the model's feature_info ({known}); choose a declared level"
        )
    return feature_info[level].channels


def build_discriminator(
    spec: DiscriminatorSpec | nn.Module, in_channels: int, kwargs: Mapping[str, Any] | None
) -> nn.Module:
    """A discriminator from a registered name (``create("discriminator", name, in_channels=C, **kwargs)``)
    or from a factory called as ``factory(in_channels=C, **kwargs)``."""
    kwargs = dict(kwargs or {})
    if isinstance(spec, str):
        return create("discriminator", spec, in_channels=in_channels, **kwargs)
    if isinstance(spec, nn.Module):
        raise UdaError(
            "pass a discriminator name or a factory (e.g. a class), not a built module: one D is built per level"
        )
    return spec(in_channels=in_channels, **kwargs)


def check_mode(mode: str, gan_loss: str) -> None:
    if mode not in MODES:
        raise UdaError(f"unknown aligner mode {mode!r}; use one of {', '.join(MODES)}")
    Fn._check_gan(gan_loss)


def _step_adapter(fn: Callable[..., dict[str, torch.Tensor]]) -> Callable[..., dict[str, torch.Tensor]]:
    """Let an aligner's two-domain method also take the recipe's `uda.term.SegStep` (the `Term` hook form)."""

    def hook(self: Aligner, source: Any, target: Any = None, **kw: Any) -> dict[str, torch.Tensor]:
        if isinstance(source, SegStep):
            step = source
            kw = {"source_size": step.source_size, "target_size": step.target_size,
                  "memo": step.memo.setdefault(self.name, {})}
            if getattr(self, "needs_target_image", False):  # a legacy aligner that reads the target images
                kw["target_image"] = step.target_image
            return fn(self, step.source, step.target, **kw)
        return fn(self, source, target, **kw)

    hook.__doc__, hook.__name__, hook.__qualname__ = fn.__doc__, fn.__name__, fn.__qualname__
    hook.__wrapped__ = fn  # type: ignore[attr-defined]
    return hook


class Aligner(Term):
    """Base class of every aligner: a `uda.term.Term` that compares the two domains' model outputs.

    Subclasses own their discriminators in ``discriminators`` (so the parameters outside
    `generator_parameters` are exactly the discriminator side, for the D optimizer) and implement
    `generator_loss` and `discriminator_loss` over the two domains' outputs,
    ``(source, target, *, source_size=None, target_size=None, memo=None) -> {name: loss}``. Both take an optional
    ``memo``: a dict the recipe creates per term and step and passes to both phases, so the discriminator phase
    can reuse maps the generator phase computed (without it they are recomputed). As a term in a recipe, the same
    methods receive the step (`uda.term.SegStep`) instead and read both domains from it: a subclass only writes
    the two-domain form.

    Attributes:
        discriminators: map name → discriminator (empty for ``minent``).
        mode: ``"alternate"`` or ``"grl"``.
    """

    mode: str = "alternate"
    needs_target_output = True

    def __init__(self) -> None:
        super().__init__()
        self.discriminators = nn.ModuleDict()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for hook in ("generator_loss", "discriminator_loss"):
            fn = cls.__dict__.get(hook)
            if fn is not None and not hasattr(fn, "__wrapped__"):
                setattr(cls, hook, _step_adapter(fn))

    @property
    def backprops_through_source(self) -> bool:  # type: ignore[override]
        return self.mode == "grl" or getattr(self, "style_weight", 0) > 0

    def generator_loss(self, source: SegOutput, target: SegOutput, *, source_size: Size | None = None,
                       target_size: Size | None = None, memo: Memo | None = None) -> dict[str, torch.Tensor]:
        """The λ-weighted terms added to the segmentation loss (named, e.g. ``"adv_logits"``)."""
        raise NotImplementedError

    def discriminator_loss(self, source: SegOutput, target: SegOutput, *, source_size: Size | None = None,
                           target_size: Size | None = None, memo: Memo | None = None) -> dict[str, torch.Tensor]:
        """The discriminators' losses (inputs detached here); empty for ``minent`` and in GRL mode."""
        raise NotImplementedError

    def frozen_in_generator_phase(self) -> list[nn.Module]:
        """Modules the training loop freezes while the generator terms are backpropagated."""
        if self.mode == "grl":
            return []
        return list(self.discriminators.values())

    def generator_parameters(self) -> list[nn.Parameter]:
        """Parameters of this term trained with the segmentation network (none by default)."""
        return []

    def forward(self, source: SegOutput, target: SegOutput) -> dict[str, torch.Tensor]:
        """Same as `generator_loss`."""
        return self.generator_loss(source, target)


class AdversarialAligner(Aligner):
    """The one adversarial mechanism: named maps of each domain, one discriminator and one λ per map.

    Subclasses define `weights` (map name → λ, the keys of ``discriminators``) and `d_maps` (the maps the
    discriminators see). The generator term is ``λ·L(D(target map), source label)`` (``alternate``) or the
    discriminator loss through a gradient reversal of coefficient λ (``grl``); the discriminator loss is
    ``½L(D(source map.detach()), 0) + ½L(D(target map.detach()), 1)``.

    Args:
        gan_loss: ``"bce"``, ``"lsgan"`` or ``"hinge"``.
        mode: ``"alternate"`` (the originals) or ``"grl"``.
    """

    def __init__(self, *, gan_loss: str = "bce", mode: str = "alternate") -> None:
        super().__init__()
        check_mode(mode, gan_loss)
        self.mode = mode
        self.gan_loss = gan_loss
        self.weights: dict[str, float] = {}

    def d_maps(self, out: SegOutput, size: Size | None) -> dict[str, torch.Tensor]:
        """Map name → the discriminator input of one domain's output (``size``: the input image size)."""
        raise NotImplementedError

    def gan(self, logits: torch.Tensor, label: float, for_discriminator: bool) -> torch.Tensor:
        """The configured GAN loss of discriminator ``logits`` against ``label`` (0 source, 1 target)."""
        return Fn.gan_loss(logits, label, self.gan_loss, for_discriminator=for_discriminator)

    def d_loss(self, name: str, x_s: torch.Tensor, x_t: torch.Tensor) -> torch.Tensor:
        """``½L(D(x_s), 0) + ½L(D(x_t), 1)`` for the discriminator of map ``name``."""
        d = self.discriminators[name]
        return 0.5 * (self.gan(d(x_s), Fn.SOURCE_LABEL, True) + self.gan(d(x_t), Fn.TARGET_LABEL, True))

    def generator_loss(self, source: SegOutput, target: SegOutput, *, source_size: Size | None = None,
                       target_size: Size | None = None, memo: Memo | None = None) -> dict[str, torch.Tensor]:
        """λ-weighted adversarial terms ``adv_<map>``.

        Args:
            source: the model's output on source images (used in GRL mode only).
            target: the model's output on target images.
            source_size: (H, W) of the source input images, for aligners that upsample to it.
            target_size: (H, W) of the target input images.
            memo: per-step scratch dict shared with `discriminator_loss` (the target maps are kept in it).

        Returns:
            ``{"adv_<map>": tensor}``: in ``alternate`` mode ``λ·L(D(target), 0)``; in ``grl`` mode the
            discriminator loss through a gradient reversal of coefficient λ.
        """
        maps_t = self.d_maps(target, target_size)
        if memo is not None:
            memo.update(maps_t)
        if self.mode == "alternate":
            return {f"adv_{n}": lam * self.gan(self.discriminators[n](maps_t[n]), Fn.SOURCE_LABEL, False)
                    for n, lam in self.weights.items()}
        maps_s = self.d_maps(source, source_size)
        return {f"adv_{n}": self.d_loss(n, grad_reverse(maps_s[n], lam), grad_reverse(maps_t[n], lam))
                for n, lam in self.weights.items()}

    def discriminator_loss(self, source: SegOutput, target: SegOutput, *, source_size: Size | None = None,
                           target_size: Size | None = None, memo: Memo | None = None) -> dict[str, torch.Tensor]:
        """``{"d_<map>": ½L(D(src.detach()), 0) + ½L(D(tgt.detach()), 1)}``; empty in GRL mode."""
        if self.mode == "grl":
            return {}
        maps_t = memo if memo and all(n in memo for n in self.weights) else self.d_maps(target, target_size)
        maps_s = self.d_maps(source, source_size)
        return {f"d_{n}": self.d_loss(n, maps_s[n].detach(), maps_t[n].detach()) for n in self.weights}


class LevelAligner(AdversarialAligner):
    """An adversarial aligner with one discriminator per level and one λ per level (levels given as data).

    Subclasses define `d_input`, the map a level's discriminator sees.

    Args:
        feature_info: the model's level name → `uda.types.LevelInfo`.
        num_classes: channels of the ``logits`` and ``aux`` levels.
        levels: level name → λ, e.g. ``{"logits": 1e-3, "aux": 2e-4}``.
        discriminator: registered discriminator name, or a factory called with ``in_channels=C``.
        discriminator_kwargs: extra keyword arguments for each discriminator.
        gan_loss: ``"bce"``, ``"lsgan"`` or ``"hinge"``.
        mode: ``"alternate"`` (the originals) or ``"grl"``.
    """

    def __init__(
        self,
        *,
        feature_info: Mapping[str, LevelInfo] | None = None,
        num_classes: int | None = None,
        levels: Mapping[str, float] | None = None,
        discriminator: DiscriminatorSpec = "fc",
        discriminator_kwargs: Mapping[str, Any] | None = None,
        gan_loss: str = "bce",
        mode: str = "alternate",
    ) -> None:
        super().__init__(gan_loss=gan_loss, mode=mode)
        self.levels = dict(levels if levels is not None else {"logits": 1e-3, "aux": 2e-4})
        if not self.levels:
            raise UdaError("aligner needs at least one level, e.g. levels={'logits': 0.001}")
        self.weights = self.levels
        self.feature_info = dict(feature_info or {})
        self.num_classes = num_classes
        for level in self.levels:
            ch = level_channels(level, feature_info, num_classes)
            self.discriminators[level] = build_discriminator(discriminator, ch, discriminator_kwargs)

    def d_input(self, out: SegOutput, level: str, size: Size | None) -> torch.Tensor:
        """The discriminator input of ``level`` for one domain's output (``size``: the input image size)."""
        raise NotImplementedError

    def d_maps(self, out: SegOutput, size: Size | None) -> dict[str, torch.Tensor]:
        return {level: self.d_input(out, level, size) for level in self.levels}


def upsample_scores(
    x: torch.Tensor, level: str, size: Size | None, upsample: bool, feature_info: Mapping[str, LevelInfo]
) -> torch.Tensor:
    """Bilinearly upsample (``align_corners=True``) class scores to ``size``, or by the level's stride when no
    size is given (stride 8 when the level is undeclared); unchanged when ``upsample`` is false."""
    if not upsample:
        return x
    if size is None:
        stride = feature_info[level].stride if level in feature_info else 8
        size = (x.shape[-2] * stride, x.shape[-1] * stride)
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=True)


def as_level_list(levels: Sequence[str] | Mapping[str, Any] | str) -> list[str]:
    if isinstance(levels, str):
        return [levels]
    return list(levels)
