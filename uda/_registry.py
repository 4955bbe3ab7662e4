"""One generic registry, one instance per component kind, and creation by name.

Example:
    >>> import uda
    >>> "fda" in uda.list_components("translator")
    True
    >>> uda.list_components("recipe", "ad*")
    ['adaptsegnet', 'advent']
"""

from __future__ import annotations

import difflib
import fnmatch
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from ._errors import UdaError

T = TypeVar("T")

KINDS = (
    "model",
    "translator",
    "discriminator",
    "aligner",
    "term",
    "loss",
    "dataset",
    "augmentation",
    "recipe",
    "config",
    "module",
    "teacher",
    "pseudo_label",
    "mixing",
    "sampler",
)


class UnknownComponentError(UdaError, ValueError):
    """An unknown kind or component name; the message lists the valid ones and the closest match."""


def _suggest(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    return f" Did you mean '{close[0]}'?" if close else ""


class Registry:
    """A name → factory table for one component kind.

    Args:
        kind: the component kind, e.g. ``"model"``.

    Registering a name twice raises instead of silently overriding the first one.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Callable[..., Any]] = {}
        self._docs: dict[str, str] = {}

    def register(self, name: str | None = None, *, doc: str | None = None) -> Callable[[T], T]:
        """Decorator that registers a class or factory function under ``name`` (default: its ``__name__``)."""

        def deco(obj: T) -> T:
            key = name or obj.__name__  # type: ignore[attr-defined]
            self.add(key, obj, doc=doc)
            return obj

        return deco

    def add(self, name: str, obj: Callable[..., Any], *, doc: str | None = None) -> None:
        """Register ``obj`` under ``name``; a duplicate name raises ``KeyError``."""
        if name in self._entries:
            raise KeyError(f"{self.kind} '{name}' is registered twice ({self._entries[name]!r} and {obj!r})")
        self._entries[name] = obj
        first = (doc or inspect.getdoc(obj) or "").strip().splitlines()
        self._docs[name] = first[0] if first else ""

    def get(self, name: str) -> Callable[..., Any]:
        """The factory registered as ``name``; an unknown name raises with the valid names and the closest."""
        try:
            return self._entries[name]
        except KeyError:
            names = sorted(self._entries)
            raise UnknownComponentError(
                f"unknown {self.kind} '{name}'.{_suggest(name, names)} Available: {', '.join(names)}"
            ) from None

    def describe(self, name: str) -> str:
        """First line of the component's docstring."""
        self.get(name)
        return self._docs[name]

    def names(self, pattern: str = "*") -> list[str]:
        """Sorted names matching a glob pattern."""
        return sorted(n for n in self._entries if fnmatch.fnmatchcase(n, pattern))

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self)} entries)"


REGISTRIES: dict[str, Registry] = {k: Registry(k) for k in KINDS}


def registry(kind: str) -> Registry:
    """The registry of one kind; an unknown kind raises with the valid kinds."""
    try:
        return REGISTRIES[kind]
    except KeyError:
        raise UnknownComponentError(
            f"unknown component kind '{kind}'.{_suggest(kind, list(KINDS))} Available: {', '.join(KINDS)}"
        ) from None


def register(kind: str, name: str | None = None, *, doc: str | None = None) -> Callable[[T], T]:
    """Decorator: ``@register("model", "deeplabv2")`` registers a class or factory of a kind."""
    return registry(kind).register(name, doc=doc)


def list_components(kind: str | None = None, pattern: str = "*") -> list[str]:
    """Sorted registered names.

    Args:
        kind: a component kind, or ``None`` for all kinds (names are then ``"kind/name"``).
        pattern: a glob pattern on the name, e.g. ``"*_tiny"``.

    Returns:
        The sorted list of names.
    """
    if kind is not None:
        return registry(kind).names(pattern)
    return sorted(f"{k}/{n}" for k, reg in REGISTRIES.items() for n in reg.names(pattern))


def create(kind: str, name: str, **kwargs: Any) -> Any:
    """Build the component registered as ``kind``/``name``.

    Keyword arguments that are ``None`` are dropped, so that command-line defaults never override a
    component's own defaults. Arguments the factory does not take raise a `UdaError` naming them.

    Args:
        kind: one of `KINDS`.
        name: the registered name.
        **kwargs: forwarded to the factory.

    Returns:
        The component (usually an ``nn.Module``).

    Example:
        >>> import uda, torch
        >>> fda = uda.create("translator", "fda", beta=0.01)
        >>> fda(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)).shape
        torch.Size([1, 3, 32, 32])
    """
    factory = registry(kind).get(name)
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    _check_kwargs(kind, name, factory, kwargs)
    return factory(**kwargs)


def _check_kwargs(kind: str, name: str, factory: Callable[..., Any], kwargs: dict[str, Any]) -> None:
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):  # builtins without a signature
        return
    params = sig.parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return
    accepted = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = [k for k in kwargs if k not in accepted]
    if unknown:
        hints = "".join(_suggest(k, accepted) for k in unknown)
        raise UnknownComponentError(
            f"{kind} '{name}' takes no argument(s) {', '.join(map(repr, unknown))}.{hints} "
            f"Accepted: {', '.join(accepted) or '(none)'}"
        )
